/* A read-only zip reader over an image in memory (core/formats/zip.c), for the
 * archives torch.save writes. Private to libresnet. */
#ifndef RN_ZIP_H
#define RN_ZIP_H

#include "rn_internal.h"

typedef struct zip_entry {
    const char *name; /* into the image, name_len bytes, not NUL-terminated */
    size_t name_len;
    int method;       /* 0: stored; anything else cannot be read (zip_stored) */
    int encrypted;
    const uint8_t *data; /* size bytes into the image (the stored bytes) */
    size_t offset, size;
} zip_entry;

typedef struct zip_archive {
    const uint8_t *base;
    size_t size;
    zip_entry *entries;
    int n;
} zip_archive;

/* 1 if the image starts with a zip local header. */
int zip_is_zip(const void *data, size_t size);
/* Read the central directory; every entry's local header and data range are
 * checked against the image. On failure z is empty. zip_close frees. */
int zip_open(const void *data, size_t size, zip_archive *z, char *err, size_t errlen);
void zip_close(zip_archive *z);
const zip_entry *zip_find(const zip_archive *z, const char *name, size_t len);
/* RN_OK if e's bytes can be read as they are (stored, not encrypted), else a
 * message naming the entry. */
int zip_stored(const zip_entry *e, char *err, size_t errlen);

#endif
