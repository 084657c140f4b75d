/* A safe subset of Python's unpickler, for the pickles torch.save writes
 * (core/formats/pickle.c). Private to libresnet.
 *
 * It never executes anything. The globals that rebuild tensors and
 * containers (torch._utils._rebuild_tensor_v2 and kin, the storage types,
 * collections.OrderedDict) are interpreted; any other global becomes an
 * inert value that remembers its name, and calling it (REDUCE, NEWOBJ) makes
 * another inert value, "a call of os.system", which the caller refuses or
 * skips by that name. The memo, the stack, the marks and the number of
 * values are bounded.
 */
#ifndef RN_PICKLE_H
#define RN_PICKLE_H

#include "weights.h"

#define PK_MAX_DIMS ST_MAX_DIMS

enum pk_kind {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES, PK_TUPLE, PK_LIST, PK_DICT,
    PK_GLOBAL,  /* a global by name: s = "module.name" */
    PK_CALL,    /* an inert call or instance of a global not interpreted: s names it */
    PK_STORAGE, /* a persistent id ('storage', type, key, location, numel[, view]) */
    PK_TENSOR,  /* _rebuild_tensor_v2 and kin */
    PK_MARK,    /* only on the stack */
};

typedef struct pk_value pk_value;
struct pk_value {
    int kind;
    int64_t i;          /* BOOL, INT */
    double f;           /* FLOAT */
    const char *s;      /* STR, BYTES: into the image; GLOBAL, CALL: owned, NUL-terminated */
    size_t len;
    pk_value **v;       /* TUPLE, LIST: items; DICT: key, value pairs (n counts items) */
    int n, cap;
    /* STORAGE */
    int dtype;          /* enum st_dtype */
    const char *key;    /* into the image, key_len bytes */
    size_t key_len;
    int64_t numel;
    /* TENSOR */
    pk_value *storage;
    int64_t offset;     /* in elements */
    int ndim;
    int64_t shape[PK_MAX_DIMS], stride[PK_MAX_DIMS];
    size_t at;          /* byte offset in the pickle where it was made, for messages */
};

/* Every value of one or more pickles; pk_free releases them all. */
typedef struct pk_arena {
    pk_value **all;
    size_t n, cap;
} pk_arena;

/* Unpickle the pickle at data (at most size bytes; it ends at its STOP).
 * *used: the bytes it took. Values live in a; *root is the result. Messages
 * name the byte offset, counted from base_offset (the pickle's place in its
 * file). */
int pk_load(const uint8_t *data, size_t size, size_t base_offset, pk_arena *a, pk_value **root,
            size_t *used, char *err, size_t errlen);
void pk_free(pk_arena *a);

/* A dict's value for a string key, or NULL. */
pk_value *pk_dict_get(const pk_value *d, const char *key);
/* "a dict", "a call of os.system", ...: what v is, for messages. */
const char *pk_describe(const pk_value *v, char *buf, size_t len);

#endif
