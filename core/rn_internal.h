/* The base every folder of libresnet may use: error messages, logging,
 * aligned allocation (core/status.c). Not installed. Each subsystem has its
 * own header beside its files (image/image.h, formats/weights.h,
 * engine/engine.h, model/model.h); see README.md, "Development". */
#ifndef RN_INTERNAL_H
#define RN_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

#define RN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Write a formatted message into err (if not NULL) and return status, so that
 * error paths read `return rn_errf(err, errlen, RN_ERR_FORMAT, "...", ...);`. */
int rn_errf(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefix an existing message in err with "prefix: ". */
void rn_err_prefix(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void rn_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Aligned allocation for float buffers (64 bytes: one AVX-512 vector; 2 MB
 * and huge pages from 2 MB up, core/status.c). */
void *rn_alloc(size_t bytes);
/* The bytes rn_alloc(bytes) takes: what memory budgets count. */
size_t rn_alloc_bytes(size_t bytes);
void rn_free(void *p);

#endif
