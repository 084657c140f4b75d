/* A small safetensors writer: tensors and string metadata collected in memory,
 * then written in one go through a temporary file that is renamed into place
 * only when everything succeeded.
 *
 *     stw_writer *w = stw_new();
 *     stw_add_meta(w, "resnet.variant", "v1");
 *     stw_add_tensor(w, "fc.bias", "F32", 1, (int64_t[]){1000}, bias, 4000);
 *     if (stw_write(w, "out.safetensors", err, sizeof err) < 0) die("%s", err);
 *     stw_free(w);
 *
 * Layout: 8-byte little-endian header length, the JSON header ("__metadata__"
 * first, then the tensors in the order they were added, data_offsets relative
 * to the end of the header), padded with spaces to a multiple of 8 bytes, then
 * the tensors' bytes in the same order.
 */
#ifndef RESNET_ST_WRITE_H
#define RESNET_ST_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct stw_writer stw_writer;

/* A new, empty writer; NULL when out of memory. Free with stw_free. */
stw_writer *stw_new(void);
void stw_free(stw_writer *w); /* accepts NULL */

/* Add a string metadata entry (both strings are copied). Returns 0, or -1 when
 * out of memory or when key is already present. */
int stw_add_meta(stw_writer *w, const char *key, const char *value);

/* Add a tensor. name and shape are copied; data is borrowed and must stay
 * valid until stw_write returns. nbytes must match dtype and shape (checked by
 * stw_write for F32/F16/BF16/I32/I64/U8). Returns 0, or -1 when out of memory
 * or the name is already present. */
int stw_add_tensor(stw_writer *w, const char *name, const char *dtype, int ndim,
                   const int64_t *shape, const void *data, size_t nbytes);

/* Write the file at path. The bytes go to a temporary file in the same folder
 * (PATH.tmp.XXXXXX), are flushed to disk, and the file is renamed to path only
 * on success; on failure no file is left behind and path is untouched.
 * Returns 0, or -1 with a message in err. */
int stw_write(const stw_writer *w, const char *path, char *err, size_t errlen);

#endif
