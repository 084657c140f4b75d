/* safetensors writer: see st_write.h. */
#include "st_write.h"

#include <cjson/cJSON.h>

#include "tools.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STW_MAX_DIMS 8

struct stw_tensor {
    char *name;
    char dtype[8];
    int ndim;
    int64_t shape[STW_MAX_DIMS];
    const void *data;
    size_t nbytes;
};

struct stw_writer {
    cJSON *meta; /* object of strings */
    struct stw_tensor *t;
    int n, cap;
};

stw_writer *stw_new(void)
{
    stw_writer *w = calloc(1, sizeof *w);
    if (w && !(w->meta = cJSON_CreateObject())) {
        free(w);
        w = NULL;
    }
    return w;
}

void stw_free(stw_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->t[i].name);
    free(w->t);
    cJSON_Delete(w->meta);
    free(w);
}

int stw_add_meta(stw_writer *w, const char *key, const char *value)
{
    if (cJSON_GetObjectItemCaseSensitive(w->meta, key))
        return -1;
    return cJSON_AddStringToObject(w->meta, key, value) ? 0 : -1;
}

int stw_add_tensor(stw_writer *w, const char *name, const char *dtype, int ndim,
                   const int64_t *shape, const void *data, size_t nbytes)
{
    if (ndim < 0 || ndim > STW_MAX_DIMS || strlen(dtype) >= sizeof w->t[0].dtype ||
        !strcmp(name, "__metadata__"))
        return -1;
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return -1;
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        struct stw_tensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t)
            return -1;
        w->t = t;
        w->cap = cap;
    }
    struct stw_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return -1;
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = data;
    t->nbytes = nbytes;
    w->n++;
    return 0;
}

static size_t dtype_size(const char *dtype)
{
    static const struct {
        const char *name;
        size_t size;
    } sizes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                 {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (!strcmp(dtype, sizes[i].name))
            return sizes[i].size;
    return 0;
}

/* The header JSON, padded with spaces to a multiple of 8; malloc'd. */
static char *build_header(const stw_writer *w, size_t *len, char *err, size_t errlen)
{
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    char *text = NULL;
    if (!h)
        goto out_nomem;
    if (cJSON_GetArraySize(w->meta)) {
        cJSON *m = cJSON_Duplicate(w->meta, 1);
        if (!m)
            goto out_nomem;
        cJSON_AddItemToObject(h, "__metadata__", m);
    }
    for (int i = 0; i < w->n; i++) {
        const struct stw_tensor *t = &w->t[i];
        size_t want = dtype_size(t->dtype);
        if (!want) {
            tool_errf(err, errlen, "%s: unknown dtype %s", t->name, t->dtype);
            goto out_free;
        }
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || (t->shape[d] && want > SIZE_MAX / (size_t)t->shape[d])) {
                tool_errf(err, errlen, "%s: invalid shape", t->name);
                goto out_free;
            }
            want *= (size_t)t->shape[d];
        }
        if (want != t->nbytes) {
            tool_errf(err, errlen, "%s: %zu bytes of data for a shape of %zu bytes", t->name, t->nbytes,
                 want);
            goto out_free;
        }
        cJSON *e = cJSON_AddObjectToObject(h, t->name), *shape = NULL, *offs = NULL;
        if (!e || !cJSON_AddStringToObject(e, "dtype", t->dtype) ||
            !(shape = cJSON_AddArrayToObject(e, "shape")))
            goto out_nomem;
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        if (!(offs = cJSON_AddArrayToObject(e, "data_offsets")))
            goto out_nomem;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t->nbytes)));
        if (cJSON_GetArraySize(shape) != t->ndim || cJSON_GetArraySize(offs) != 2)
            goto out_nomem;
        off += t->nbytes;
    }
    char *json = cJSON_PrintUnformatted(h);
    if (!json)
        goto out_nomem;
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    text = malloc(padded);
    if (!text) {
        free(json);
        goto out_nomem;
    }
    memcpy(text, json, n);
    memset(text + n, ' ', padded - n);
    free(json);
    *len = padded;
    cJSON_Delete(h);
    return text;

out_nomem:
    tool_errf(err, errlen, "out of memory building the safetensors header");
out_free:
    cJSON_Delete(h);
    return NULL;
}

static int put(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1;
}

int stw_write(const stw_writer *w, const char *path, char *err, size_t errlen)
{
    size_t hlen;
    char *header = build_header(w, &hlen, err, errlen);
    if (!header)
        return -1;

    char *tmp = malloc(strlen(path) + sizeof ".tmp.XXXXXX");
    int rc = -1, fd;
    FILE *f = NULL;
    if (!tmp) {
        tool_errf(err, errlen, "out of memory");
        goto out_free_header;
    }
    sprintf(tmp, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        tool_errf(err, errlen, "%s: cannot create a temporary file: %s", tmp, strerror(errno));
        goto out_free_tmp;
    }
    /* mkstemp makes the file 0600; a model file is ordinary readable data. */
    mode_t mask = umask(022);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) < 0 || !(f = fdopen(fd, "wb"))) {
        tool_errf(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        goto out_unlink;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = put(f, len8, 8) || put(f, header, hlen);
    for (int i = 0; i < w->n && !bad; i++)
        bad = put(f, w->t[i].data, w->t[i].nbytes);
    if (bad || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        tool_errf(err, errlen, "%s: write error: %s", tmp, strerror(errno));
        fclose(f);
        goto out_unlink;
    }
    if (fclose(f) != 0) {
        tool_errf(err, errlen, "%s: write error: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    if (rename(tmp, path) < 0) {
        tool_errf(err, errlen, "%s: cannot rename into place: %s", path, strerror(errno));
        goto out_unlink;
    }
    rc = 0;
    goto out_free_tmp;

out_unlink:
    unlink(tmp);
out_free_tmp:
    free(tmp);
out_free_header:
    free(header);
    return rc;
}
