/* PyTorch torch.save files as a tensor source, read without Python.
 *
 * The zip format (torch >= 1.6): stored entries PREFIX/data.pkl (the pickle),
 * PREFIX/data/KEY (each storage's raw bytes), PREFIX/byteorder ("little" or
 * "big", absent before torch 1.12: little). The legacy format
 * (_use_new_zipfile_serialization=False, timm's released checkpoints): five
 * pickles in a row, the magic number, the protocol version (1001), sys_info
 * (its little_endian flag), the object, the list of storage keys, then each
 * storage in that order as an 8-byte little-endian element count and its raw
 * bytes.
 *
 * The object is a state_dict, or a checkpoint dict holding one under
 * "state_dict", "model", "state_dict_ema", ...; DataParallel's "module."
 * prefix is dropped. Tensors point into the image when their strides are
 * contiguous and their bytes little-endian, and are copied into contiguous
 * order otherwise; every storage is checked to hold the tensors made of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"
#include "zip.h"

/* The legacy format's first pickle: PROTO 2, LONG1 of 10 bytes 0x1950a86a20f9469cfc6c */
static const uint8_t legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                       0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

/* Where a checkpoint dict keeps its state_dict, in the order looked at. */
static const char *const sd_keys[] = {"state_dict", "model", "module", "net",
                                      "state_dict_ema", "model_ema", "params"};

struct pth {
    pk_arena a;
    char **names;
    int n_names;
    void **copies;
    int n_copies;
};

static void release(st_file *f)
{
    struct pth *P = f->priv;
    if (!P)
        return;
    pk_free(&P->a);
    for (int i = 0; i < P->n_names; i++)
        free(P->names[i]);
    free(P->names);
    for (int i = 0; i < P->n_copies; i++)
        free(P->copies[i]);
    free(P->copies);
    free(P);
    f->priv = NULL;
}

int pth_is_pth(const void *data, size_t size)
{
    return zip_is_zip(data, size) ||
           (size >= sizeof legacy_magic && !memcmp(data, legacy_magic, sizeof legacy_magic));
}

/* A storage's bytes: the zip entry, or the legacy record. */
struct storage_bytes {
    const char *key;
    size_t key_len;
    const uint8_t *data;
    size_t size;
    int dtype;
};

struct reader {
    st_file *f;
    struct pth *P;
    int big_endian;
    struct storage_bytes *sb;
    int n_sb;
    char *err;
    size_t errlen;
};

static const struct storage_bytes *find_storage(const struct reader *R, const char *key, size_t len)
{
    for (int i = 0; i < R->n_sb; i++)
        if (R->sb[i].key_len == len && !memcmp(R->sb[i].key, key, len))
            return &R->sb[i];
    return NULL;
}

static int keep(struct reader *R, void *copy)
{
    void **nc = realloc(R->P->copies, (size_t)(R->P->n_copies + 1) * sizeof *nc);
    if (!nc) {
        free(copy);
        return rn_errf(R->err, R->errlen, RN_ERR_NOMEM, "out of memory");
    }
    R->P->copies = nc;
    nc[R->P->n_copies++] = copy;
    return RN_OK;
}

/* Tensor `name` of storage bytes sb: checked against the storage, pointed
 * at when contiguous and little-endian, else copied. */
static int make_tensor(struct reader *R, const char *name, const pk_value *t, st_tensor *out)
{
    const pk_value *s = t->storage;
    const struct storage_bytes *sb = find_storage(R, s->key, s->key_len);
    size_t es = st_dtype_size(s->dtype);
    if (!sb)
        return rn_errf(R->err, R->errlen, RN_ERR_FORMAT, "%s: storage %.*s is missing from the file",
                       name, (int)s->key_len, s->key);
    if (sb->dtype >= 0 && sb->dtype != s->dtype)
        return rn_errf(R->err, R->errlen, RN_ERR_FORMAT, "%s: storage %.*s has two dtypes", name,
                       (int)s->key_len, s->key);
    if (sb->size / es < (uint64_t)s->numel)
        return rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                       "%s: storage %.*s holds %zu bytes, shorter than its %lld %s elements", name,
                       (int)s->key_len, s->key, sb->size, (long long)s->numel,
                       st_dtype_name(s->dtype));
    out->name = name;
    out->dtype = s->dtype;
    out->ndim = t->ndim;
    int64_t numel = 1, span = 0, contiguous = 1, expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        out->shape[d] = t->shape[d];
        if (t->shape[d] && numel > (1ll << 40) / t->shape[d])
            return rn_errf(R->err, R->errlen, RN_ERR_FORMAT, "%s: shape too large", name);
        numel *= t->shape[d];
        if (t->shape[d] > 1) {
            if (t->stride[d] != expect)
                contiguous = 0;
            if (t->stride[d] > (1ll << 40) / t->shape[d])
                return rn_errf(R->err, R->errlen, RN_ERR_FORMAT, "%s: stride too large", name);
            span += (t->shape[d] - 1) * t->stride[d];
        }
        expect *= t->shape[d];
    }
    out->numel = numel;
    out->nbytes = (size_t)numel * es;
    if (numel && t->offset + span >= s->numel)
        return rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                       "%s: offset %lld and strides reach element %lld of storage %.*s, which has %lld",
                       name, (long long)t->offset, (long long)(t->offset + span), (int)s->key_len,
                       s->key, (long long)s->numel);
    const uint8_t *base = sb->data + (size_t)t->offset * es;
    if (contiguous && !R->big_endian) {
        out->data = numel ? base : sb->data;
        return RN_OK;
    }
    /* gather into contiguous little-endian order */
    uint8_t *copy = malloc(out->nbytes ? out->nbytes : 1);
    if (!copy)
        return rn_errf(R->err, R->errlen, RN_ERR_NOMEM, "out of memory");
    int64_t idx[PK_MAX_DIMS] = {0};
    for (int64_t i = 0; i < numel; i++) {
        int64_t src = 0;
        for (int d = 0; d < t->ndim; d++)
            src += idx[d] * t->stride[d];
        for (size_t b = 0; b < es; b++)
            copy[(size_t)i * es + b] = base[(size_t)src * es + (R->big_endian ? es - 1 - b : b)];
        for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d]; d--)
            idx[d] = 0;
    }
    out->data = copy;
    return keep(R, copy);
}

/* The dict of tensors in the unpickled object. */
static int find_state_dict(struct reader *R, const pk_value *root, const pk_value **sd)
{
    char what[256];
    if (root->kind != PK_DICT)
        return rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                       "the pickle holds %s, not a state_dict or a checkpoint dict%s",
                       pk_describe(root, what, sizeof what),
                       root->kind == PK_CALL ? ": refused" : "");
    for (size_t k = 0; k < RN_ARRAY_LEN(sd_keys); k++) {
        const pk_value *v = pk_dict_get(root, sd_keys[k]);
        if (!v)
            continue;
        if (v->kind == PK_DICT) {
            rn_log(RN_LOG_INFO, "checkpoint: the state_dict under \"%s\"", sd_keys[k]);
            *sd = v;
            return RN_OK;
        }
        if (v->kind == PK_CALL)
            return rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                           "checkpoint \"%s\" is %s, a pickled object, not a state_dict: "
                           "save model.state_dict() instead", sd_keys[k],
                           pk_describe(v, what, sizeof what));
    }
    *sd = root;
    return RN_OK;
}

static int fill_tensors(struct reader *R, const pk_value *root)
{
    const pk_value *sd = NULL;
    int rc = find_state_dict(R, root, &sd);
    if (rc < 0)
        return rc;
    int n = sd->n / 2;
    if (n <= 0)
        return rn_errf(R->err, R->errlen, RN_ERR_ARCH, "the state_dict holds no tensors");
    int strip = 1;
    char what[256];
    for (int i = 0; i < n; i++) {
        const pk_value *k = sd->v[2 * i], *v = sd->v[2 * i + 1];
        if (k->kind != PK_STR || k->len == 0 || k->len > 200 || memchr(k->s, 0, k->len))
            return rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                           "state_dict key %d is %s, not a tensor name", i,
                           pk_describe(k, what, sizeof what));
        if (v->kind != PK_TENSOR)
            return rn_errf(R->err, R->errlen, RN_ERR_FORMAT, "%.*s: %s, not a tensor", (int)k->len,
                           k->s, pk_describe(v, what, sizeof what));
        if (k->len <= 7 || memcmp(k->s, "module.", 7))
            strip = 0;
    }
    R->P->names = calloc((size_t)n, sizeof *R->P->names);
    R->f->tensors = calloc((size_t)n + 1, sizeof *R->f->tensors);
    if (!R->P->names || !R->f->tensors)
        return rn_errf(R->err, R->errlen, RN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const pk_value *k = sd->v[2 * i];
        char *name = strndup(k->s + 7 * strip, k->len - 7 * strip);
        if (!name)
            return rn_errf(R->err, R->errlen, RN_ERR_NOMEM, "out of memory");
        R->P->names[R->P->n_names++] = name;
        for (int j = 0; j < R->f->n_tensors; j++)
            if (!strcmp(R->f->tensors[j].name, name))
                return rn_errf(R->err, R->errlen, RN_ERR_FORMAT, "%s: duplicate tensor name", name);
        if ((rc = make_tensor(R, name, sd->v[2 * i + 1], &R->f->tensors[R->f->n_tensors])) < 0)
            return rc;
        R->f->n_tensors++;
    }
    return RN_OK;
}

static int parse_zip(struct reader *R, const void *data, size_t size)
{
    zip_archive z;
    int rc = zip_open(data, size, &z, R->err, R->errlen);
    if (rc < 0)
        return rc;
    const zip_entry *pkl = NULL;
    for (int i = 0; i < z.n && !pkl; i++) {
        const zip_entry *e = &z.entries[i];
        const char *slash = memchr(e->name, '/', e->name_len);
        if (slash && (size_t)(e->name + e->name_len - slash) == 9 && !memcmp(slash, "/data.pkl", 9))
            pkl = e;
    }
    size_t plen;
    const zip_entry *bo;
    char name[512];
    if (!pkl) {
        rc = rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                     "zip: no PREFIX/data.pkl entry; not a torch.save file");
        goto out;
    }
    plen = pkl->name_len - 8; /* "PREFIX/" */
    if ((rc = zip_stored(pkl, R->err, R->errlen)) < 0)
        goto out;
    snprintf(name, sizeof name, "%.*sbyteorder", (int)plen, pkl->name);
    if ((bo = zip_find(&z, name, strlen(name)))) {
        if ((rc = zip_stored(bo, R->err, R->errlen)) < 0)
            goto out;
        if (bo->size == 3 && !memcmp(bo->data, "big", 3)) {
            R->big_endian = 1;
        } else if (!(bo->size == 6 && !memcmp(bo->data, "little", 6))) {
            rc = rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                         "zip: %s: expected \"little\" or \"big\"", name);
            goto out;
        }
    }
    /* the storages: PREFIX/data/KEY */
    R->sb = calloc((size_t)z.n + 1, sizeof *R->sb);
    if (!R->sb) {
        rc = rn_errf(R->err, R->errlen, RN_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < z.n; i++) {
        const zip_entry *e = &z.entries[i];
        if (e->name_len <= plen + 5 || memcmp(e->name, pkl->name, plen) ||
            memcmp(e->name + plen, "data/", 5))
            continue;
        if ((rc = zip_stored(e, R->err, R->errlen)) < 0)
            goto out;
        R->sb[R->n_sb++] = (struct storage_bytes){.key = e->name + plen + 5,
                                                  .key_len = e->name_len - plen - 5,
                                                  .data = e->data, .size = e->size, .dtype = -1};
    }
    pk_value *root;
    size_t used;
    if ((rc = pk_load(pkl->data, pkl->size, pkl->offset, &R->P->a, &root, &used, R->err,
                      R->errlen)) < 0) {
        rn_err_prefix(R->err, R->errlen, "%.*s", (int)pkl->name_len, pkl->name);
        goto out;
    }
    R->f->format = "pytorch-zip";
    rc = fill_tensors(R, root);
out:
    zip_close(&z);
    return rc;
}

/* The legacy format's storages: for each key of the key list, its element
 * count and bytes, each storage's dtype taken from the tensors made of it. */
static int legacy_storages(struct reader *R, const pk_value *keys, const uint8_t *p,
                           size_t at, size_t size)
{
    if (keys->kind != PK_LIST)
        return rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                       "byte %zu: the storage keys are not a list", at);
    R->sb = calloc((size_t)keys->n + 1, sizeof *R->sb);
    if (!R->sb)
        return rn_errf(R->err, R->errlen, RN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < keys->n; i++) {
        const pk_value *k = keys->v[i];
        if (k->kind != PK_STR)
            return rn_errf(R->err, R->errlen, RN_ERR_FORMAT, "storage key %d is not a string", i);
        /* the dtype: from any storage value of that key */
        int dtype = -1;
        for (size_t j = 0; j < R->P->a.n; j++) {
            const pk_value *s = R->P->a.all[j];
            if (s->kind == PK_STORAGE && s->key_len == k->len && !memcmp(s->key, k->s, k->len))
                dtype = s->dtype;
        }
        if (dtype < 0)
            return rn_errf(R->err, R->errlen, RN_ERR_FORMAT, "storage %.*s: listed but never used",
                           (int)k->len, k->s);
        if (size - at < 8)
            return rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                           "storage %.*s: truncated at byte %zu (no element count)", (int)k->len,
                           k->s, at);
        uint64_t count = 0;
        for (int b = 7; b >= 0; b--)
            count = count << 8 | p[at + (size_t)b];
        if (R->big_endian) {
            uint64_t c = 0;
            for (int b = 0; b < 8; b++)
                c = c << 8 | p[at + (size_t)b];
            count = c;
        }
        at += 8;
        size_t es = st_dtype_size(dtype);
        if (count > (size - at) / es)
            return rn_errf(R->err, R->errlen, RN_ERR_FORMAT,
                           "storage %.*s: %llu %s elements at byte %zu run past the end of the "
                           "%zu-byte file", (int)k->len, k->s, (unsigned long long)count,
                           st_dtype_name(dtype), at, size);
        R->sb[R->n_sb++] = (struct storage_bytes){.key = k->s, .key_len = k->len, .data = p + at,
                                                  .size = (size_t)count * es, .dtype = dtype};
        at += (size_t)count * es;
    }
    return RN_OK;
}

static int parse_legacy(struct reader *R, const uint8_t *p, size_t size)
{
    pk_value *v[5];
    size_t at = 0, used;
    int rc;
    for (int i = 0; i < 5; i++) {
        if ((rc = pk_load(p + at, size - at, at, &R->P->a, &v[i], &used, R->err, R->errlen)) < 0)
            return rc;
        at += used;
        if (i == 1 && (v[1]->kind != PK_INT || v[1]->i != 1001))
            return rn_errf(R->err, R->errlen, RN_ERR_UNSUPPORTED,
                           "legacy torch.save protocol version is not 1001");
        if (i == 2) {
            const pk_value *le = pk_dict_get(v[2], "little_endian");
            R->big_endian = le && le->kind == PK_BOOL && !le->i;
        }
    }
    if ((rc = legacy_storages(R, v[4], p, at, size)) < 0)
        return rc;
    R->f->format = "pytorch-legacy";
    return fill_tensors(R, v[3]);
}

int pth_parse(const void *data, size_t size, st_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    struct pth *P = calloc(1, sizeof *P);
    if (!P)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    f->base = data;
    f->size = size;
    f->priv = P;
    f->release = release;
    struct reader R = {.f = f, .P = P, .err = err, .errlen = errlen};
    int rc = zip_is_zip(data, size) ? parse_zip(&R, data, size) : parse_legacy(&R, data, size);
    free(R.sb);
    if (rc < 0) {
        rn_err_prefix(err, errlen, "%s", zip_is_zip(data, size) ? "torch.save zip" : "torch.save legacy");
        st_close(f);
    }
    return rc;
}
