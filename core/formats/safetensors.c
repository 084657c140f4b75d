/* safetensors reader: map the file, parse and validate the JSON header.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON, then the data
 * region. Each header entry is {"dtype":..., "shape":[...], "data_offsets":
 * [begin, end]} with offsets relative to the data region. Nothing is trusted:
 * the length, every dtype, shape and offset are checked against the file size,
 * byte sizes against the shape, and no two tensors may overlap.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cjson/cJSON.h>

#include "weights.h"

/* A header larger than this is not a ResNet's (ResNet-152 needs ~60 KB). */
#define ST_MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_DTYPE_COUNT] = {
    [ST_F64] = {"F64", 8}, [ST_F32] = {"F32", 4},   [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},     [ST_U64] = {"U64", 8},
    [ST_U32] = {"U32", 4}, [ST_U16] = {"U16", 2},   [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

size_t st_dtype_size(int dtype)
{
    return dtype >= 0 && dtype < ST_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

const char *st_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < ST_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

/* A JSON number that is a non-negative integer exactly representable. */
static int json_u64(const cJSON *n, uint64_t *out)
{
    if (!cJSON_IsNumber(n))
        return -1;
    double d = n->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d)
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_tensor(const cJSON *e, const uint8_t *data, size_t data_size, st_tensor *t,
                        char *err, size_t errlen)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: header entry is not an object", name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: missing or non-string \"dtype\"", name);
    if (!cJSON_IsArray(sh))
        return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: missing or non-array \"shape\"", name);
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "%s: \"data_offsets\" must be an array [begin, end]", name);

    t->name = name;
    t->dtype = -1;
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (!strcmp(dt->valuestring, dtypes[i].name))
            t->dtype = i;
    if (t->dtype < 0)
        return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: unknown dtype \"%.32s\"", name,
                       dt->valuestring);

    int ndim = cJSON_GetArraySize(sh);
    if (ndim > ST_MAX_DIMS)
        return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: %d dimensions, at most %d supported",
                       name, ndim, ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        uint64_t d;
        if (json_u64(cJSON_GetArrayItem(sh, i), &d) < 0 || d > (1ull << 40))
            return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: shape[%d] is not a valid dimension",
                           name, i);
        t->shape[i] = (int64_t)d;
        if (d && numel > (1ull << 40) / d)
            return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: shape is too large", name);
        numel *= d;
    }
    t->numel = (int64_t)numel;

    uint64_t begin, end;
    if (json_u64(cJSON_GetArrayItem(off, 0), &begin) < 0 ||
        json_u64(cJSON_GetArrayItem(off, 1), &end) < 0)
        return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: data_offsets are not valid integers",
                       name);
    if (begin > end)
        return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: data_offsets [%llu, %llu] end before begin",
                       name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "%s: data_offsets [%llu, %llu] outside the data region of %zu bytes",
                       name, (unsigned long long)begin, (unsigned long long)end, data_size);
    uint64_t want = numel * dtypes[t->dtype].size;
    if (end - begin != want)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "%s: data_offsets span %llu bytes, but %s shape needs %llu", name,
                       (unsigned long long)(end - begin), dtypes[t->dtype].name,
                       (unsigned long long)want);
    t->data = data + begin;
    t->nbytes = (size_t)want;
    return RN_OK;
}

static int by_offset(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data ? 1 : (int)(x->nbytes > y->nbytes) - (int)(x->nbytes < y->nbytes);
}

static int parse_meta(const cJSON *m, st_file *f, char *err, size_t errlen)
{
    if (!cJSON_IsObject(m))
        return rn_errf(err, errlen, RN_ERR_FORMAT, "__metadata__ is not an object");
    int n = cJSON_GetArraySize(m);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc((size_t)n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, m)
    {
        if (!cJSON_IsString(e))
            return rn_errf(err, errlen, RN_ERR_FORMAT, "__metadata__.%s is not a string",
                           e->string);
        f->meta_keys[f->n_meta] = e->string;
        f->meta_values[f->n_meta++] = e->valuestring;
    }
    return RN_OK;
}

int st_parse(const void *image, size_t size, st_file *f, char *err, size_t errlen)
{
    const uint8_t *p = image;
    memset(f, 0, sizeof *f);
    if (size < 8)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "file is %zu bytes, too short for a safetensors header length", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > size - 8)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "header length %llu runs past the end of the file (%zu bytes)",
                       (unsigned long long)hlen, size);
    if (hlen > ST_MAX_HEADER || hlen < 2)
        return rn_errf(err, errlen, RN_ERR_FORMAT, "implausible header length %llu",
                       (unsigned long long)hlen);

    f->base = p;
    f->size = size;
    f->format = "safetensors";
    f->header = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    int rc;
    if (!f->header) {
        const char *at = cJSON_GetErrorPtr();
        long pos = at ? (long)(at - (const char *)p - 8) : -1;
        rc = rn_errf(err, errlen, RN_ERR_FORMAT, "header is not valid JSON (near byte %ld)", pos);
        goto out_close;
    }
    if (!cJSON_IsObject(f->header)) {
        rc = rn_errf(err, errlen, RN_ERR_FORMAT, "header is not a JSON object");
        goto out_close;
    }

    const uint8_t *data = p + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    int n = cJSON_GetArraySize(f->header);
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
        goto out_close;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, f->header)
    {
        if (!e->string) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT, "header entry without a name");
            goto out_close;
        }
        if (!strcmp(e->string, "__metadata__")) {
            if (f->meta_keys) {
                rc = rn_errf(err, errlen, RN_ERR_FORMAT, "duplicate __metadata__");
                goto out_close;
            }
            if ((rc = parse_meta(e, f, err, errlen)) < 0)
                goto out_close;
            continue;
        }
        st_tensor *t = &f->tensors[f->n_tensors];
        if ((rc = parse_tensor(e, data, data_size, t, err, errlen)) < 0)
            goto out_close;
        for (int i = 0; i < f->n_tensors; i++)
            if (!strcmp(f->tensors[i].name, t->name)) {
                rc = rn_errf(err, errlen, RN_ERR_FORMAT, "%s: duplicate tensor name", t->name);
                goto out_close;
            }
        f->n_tensors++;
    }

    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, by_offset);
    for (int i = 1; i < f->n_tensors; i++) {
        const st_tensor *a = &f->tensors[i - 1], *b = &f->tensors[i];
        if (a->data + a->nbytes > b->data && b->nbytes && a->nbytes) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT, "%s: data overlaps that of %s", b->name,
                         a->name);
            goto out_close;
        }
    }
    return RN_OK;

out_close:
    st_close(f);
    return rc;
}

void st_drop_pages(st_file *f)
{
    if (f->map)
        madvise(f->map, f->size, MADV_DONTNEED);
}

void st_close(st_file *f)
{
    if (!f)
        return;
    if (f->release)
        f->release(f);
    cJSON_Delete(f->header);
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    if (f->map)
        munmap(f->map, f->size);
    memset(f, 0, sizeof *f);
}

st_tensor *st_find(st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key))
            return f->meta_values[i];
    return NULL;
}

float rn_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | exp << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float rn_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int st_read_f32(const st_tensor *t, float *dst, char *err, size_t errlen)
{
    const uint8_t *s = t->data;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, s, t->nbytes); /* little-endian host assumed, as x86/ARM */
        break;
    case ST_F16:
    case ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h = (uint16_t)(s[2 * i] | s[2 * i + 1] << 8);
            dst[i] = t->dtype == ST_F16 ? rn_half_to_float(h) : rn_bf16_to_float(h);
        }
        break;
    default:
        return rn_errf(err, errlen, RN_ERR_FORMAT, "%s: dtype %s, expected F32, F16 or BF16",
                       t->name, st_dtype_name(t->dtype));
    }
    for (int64_t i = 0; i < t->numel; i++)
        if (!(dst[i] - dst[i] == 0.0f)) /* NaN or infinity */
            return rn_errf(err, errlen, RN_ERR_FORMAT,
                           "%s: element %lld is not a finite number", t->name, (long long)i);
    return RN_OK;
}
