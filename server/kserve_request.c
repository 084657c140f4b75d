/* Reading a KServe v2 inference request: the JSON header (cJSON), its single
 * input tensor (FP32 [N,3,H,W] as numbers or binary; BYTES as base64 strings
 * or length-prefixed binary elements) and the requested outputs. Every size
 * is checked against the body before it is used. */
#include "kserve_request.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

const char *const v2_out_names[V2_N_OUT] = {"logits", "probabilities"};

void v2_request_free(struct v2_request *req)
{
    for (int i = 0; req->blobs && i < req->n; i++)
        free(req->blobs[i]);
    free(req->blobs);
    free(req->tensor);
    free(req->images);
    memset(req, 0, sizeof *req);
}

static enum srv_err fail(enum srv_err e, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum srv_err fail(enum srv_err e, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return e;
}

#define BAD(msg) fail(SRV_ERR_BAD_TENSOR, err, errlen, "%s", msg)

/* Standard base64 with optional padding into a malloc'd buffer. */
static char *base64_decode(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return NULL;
    char *out = malloc(n / 4 * 3 + 3);
    if (!out)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
              : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    *out_len = o;
    return out;
}

/* Count the numbers in a (nested) JSON array; -1 on a non-number. */
static long count_numbers(const cJSON *a)
{
    if (cJSON_IsNumber(a))
        return 1;
    if (!cJSON_IsArray(a))
        return -1;
    long n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        long k = count_numbers(e);
        if (k < 0)
            return -1;
        n += k;
    }
    return n;
}

static void fill_numbers(const cJSON *a, float *out, size_t *i)
{
    if (cJSON_IsNumber(a)) {
        out[(*i)++] = (float)a->valuedouble;
        return;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, a) fill_numbers(e, out, i);
}

/* Read "outputs" and request parameters into req. */
static enum srv_err parse_outputs(const cJSON *root, struct v2_request *req, char *err,
                                  size_t errlen)
{
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    int all_binary = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(params, "binary_data_output"));
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (!outs) {
        for (int i = 0; i < V2_N_OUT; i++) {
            req->out[i].want = 1;
            req->out[i].binary = all_binary;
            req->order[req->n_order++] = i;
        }
        return SRV_OK;
    }
    if (!cJSON_IsArray(outs))
        return BAD("\"outputs\" must be an array");
    const cJSON *o;
    cJSON_ArrayForEach(o, outs)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        int k = -1;
        for (int i = 0; i < V2_N_OUT && cJSON_IsString(name); i++)
            if (strcmp(name->valuestring, v2_out_names[i]) == 0)
                k = i;
        if (k < 0) {
            /* a layer of the model, by name: one, and alone */
            if (!cJSON_IsString(name) || !name->valuestring[0] ||
                strlen(name->valuestring) >= sizeof req->layer)
                return BAD("an output needs a \"name\": \"logits\", \"probabilities\" or a layer");
            if (req->layer[0] || req->n_order || cJSON_GetArraySize(outs) > 1)
                return BAD("a layer output is asked for alone, without other outputs");
            snprintf(req->layer, sizeof req->layer, "%s", name->valuestring);
            const cJSON *lp = cJSON_GetObjectItemCaseSensitive(o, "parameters");
            const cJSON *pool = cJSON_GetObjectItemCaseSensitive(lp, "pool");
            req->layer_pool = 1; /* RN_POOL_AVG */
            if (pool && (!cJSON_IsString(pool) || (strcmp(pool->valuestring, "avg") &&
                                                   strcmp(pool->valuestring, "none"))))
                return BAD("\"pool\" must be \"avg\" or \"none\"");
            if (pool && !strcmp(pool->valuestring, "none"))
                req->layer_pool = 0; /* RN_POOL_NONE */
            const cJSON *lb = cJSON_GetObjectItemCaseSensitive(lp, "binary_data");
            req->layer_binary = cJSON_IsBool(lb) ? cJSON_IsTrue(lb) : all_binary;
            continue;
        }
        if (req->layer[0])
            return BAD("a layer output is asked for alone, without other outputs");
        if (req->out[k].want)
            return BAD("an output is named twice in \"outputs\"");
        req->out[k].want = 1;
        req->order[req->n_order++] = k;
        req->out[k].binary = all_binary;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "binary_data");
        if (cJSON_IsBool(b))
            req->out[k].binary = cJSON_IsTrue(b);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(p, "classification");
        if (c) {
            /* as topk: at least 1, larger ones cut to the number of classes */
            if (!cJSON_IsNumber(c) || c->valuedouble < 1 ||
                c->valuedouble != floor(c->valuedouble))
                return BAD("\"classification\" must be an integer of at least 1");
            req->out[k].cls = c->valuedouble > INT_MAX ? INT_MAX : (int)c->valuedouble;
        }
    }
    return SRV_OK;
}

static enum srv_err parse_fp32(const cJSON *data, int has_bsize, const char *bin, size_t bin_len,
                               const long *dims, int nd, struct v2_request *req, char *err,
                               size_t errlen)
{
    if (nd != 4 || dims[1] != 3 || dims[2] < 32 || dims[3] < 32 || dims[2] > V2_MAX_SIDE ||
        dims[3] > V2_MAX_SIDE)
        return fail(SRV_ERR_BAD_TENSOR, err, errlen,
                    "FP32 input shape must be [N,3,H,W] with 32 <= H,W <= %d", V2_MAX_SIDE);
    req->n = (int)dims[0];
    req->h = (int)dims[2];
    req->w = (int)dims[3];
    size_t per = (size_t)3 * req->h * req->w, total = per * (size_t)req->n;
    if (has_bsize) {
        if (bin_len != total * sizeof(float))
            return BAD("binary FP32 data size does not match the shape");
    } else if (count_numbers(data) != (long)total) {
        return BAD("FP32 \"data\" must hold N*3*H*W numbers, as the shape says");
    }
    req->tensor = malloc(total * sizeof(float));
    req->images = calloc((size_t)req->n, sizeof *req->images);
    if (!req->tensor || !req->images)
        return fail(SRV_ERR_NOMEM, err, errlen, "out of memory for the input");
    if (has_bsize) {
        memcpy(req->tensor, bin, bin_len);
    } else {
        size_t i = 0;
        fill_numbers(data, req->tensor, &i);
    }
    for (size_t i = 0; i < total; i++)
        if (!isfinite(req->tensor[i]))
            return BAD("FP32 input holds a NaN or infinity");
    for (int i = 0; i < req->n; i++) {
        req->images[i].tensor = req->tensor + per * (size_t)i;
        req->images[i].h = req->h;
        req->images[i].w = req->w;
    }
    return SRV_OK;
}

static enum srv_err parse_bytes(const cJSON *data, int has_bsize, const char *bin,
                                size_t bin_len, const long *dims, int nd, int crop,
                                struct v2_request *req, char *err, size_t errlen)
{
    if (!(nd == 1 || (nd == 2 && dims[1] == 1)))
        return BAD("BYTES input shape must be [N] or [N,1]: one encoded image each");
    req->n = (int)dims[0];
    req->images = calloc((size_t)req->n, sizeof *req->images);
    if (!req->images)
        return fail(SRV_ERR_NOMEM, err, errlen, "out of memory for the input");
    if (has_bsize) { /* each element: 4-byte little-endian length, then the bytes */
        size_t off = 0;
        for (int i = 0; i < req->n; i++) {
            if (bin_len - off < 4)
                return BAD("binary BYTES data truncated");
            const unsigned char *p = (const unsigned char *)bin + off;
            size_t len = p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
            off += 4;
            if (len > bin_len - off)
                return BAD("binary BYTES element longer than the data");
            req->images[i].data = bin + off;
            req->images[i].len = len;
            off += len;
        }
        if (off != bin_len)
            return BAD("binary BYTES data longer than the shape says");
    } else {
        if (!cJSON_IsArray(data) || cJSON_GetArraySize(data) != req->n)
            return BAD("BYTES \"data\" must be an array of N base64 strings");
        req->blobs = calloc((size_t)req->n, sizeof *req->blobs);
        if (!req->blobs)
            return fail(SRV_ERR_NOMEM, err, errlen, "out of memory for the input");
        for (int i = 0; i < req->n; i++) {
            const cJSON *e = cJSON_GetArrayItem(data, i);
            while (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 1)
                e = cJSON_GetArrayItem(e, 0);
            size_t len = 0;
            if (!cJSON_IsString(e) || !(req->blobs[i] = base64_decode(e->valuestring, &len)))
                return BAD("BYTES \"data\" elements must be base64-encoded images");
            req->images[i].data = req->blobs[i];
            req->images[i].len = len;
        }
    }
    for (int i = 0; i < req->n; i++) {
        if (req->images[i].len == 0)
            return BAD("BYTES input element is empty");
        req->images[i].h = req->images[i].w = crop;
    }
    return SRV_OK;
}

/* Read the single input tensor into req. */
static enum srv_err parse_input(const cJSON *root, const char *bin, size_t bin_len, int crop,
                                int max_images, struct v2_request *req, char *err,
                                size_t errlen)
{
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 1)
        return BAD("\"inputs\" must be an array of exactly one tensor: \"" V2_IN_TENSOR
                   "\" (FP32 [N,3,H,W]) or \"" V2_IN_IMAGE "\" (BYTES [N], encoded images), "
                   "not both");
    const cJSON *in = cJSON_GetArrayItem(inputs, 0);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    /* The protocol matches inputs by name; the datatype alone would let a
     * client's typo (or another model's request) through unnoticed. */
    if (!cJSON_IsString(name))
        return BAD("input needs a \"name\": \"" V2_IN_TENSOR "\" (FP32) or \"" V2_IN_IMAGE
                   "\" (BYTES)");
    int is_tensor = strcmp(name->valuestring, V2_IN_TENSOR) == 0;
    if (!is_tensor && strcmp(name->valuestring, V2_IN_IMAGE) != 0)
        return fail(SRV_ERR_BAD_TENSOR, err, errlen,
                    "input '%.60s': no such input; the model's inputs are \"" V2_IN_TENSOR
                    "\" (FP32 [N,3,H,W]) and \"" V2_IN_IMAGE "\" (BYTES [N]), one at a time",
                    name->valuestring);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(in, "parameters");
    const cJSON *bsize = cJSON_GetObjectItemCaseSensitive(params, "binary_data_size");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape))
        return BAD("input needs \"datatype\" and \"shape\"");
    int nd = cJSON_GetArraySize(shape);
    long dims[4] = {0};
    if (nd < 1 || nd > 4)
        return BAD("input shape: expected [N,3,H,W] (FP32) or [N] (BYTES)");
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 1e6 ||
            d->valuedouble != floor(d->valuedouble))
            return BAD("input shape: dimensions must be positive integers");
        dims[i] = (long)d->valuedouble;
    }
    if (bsize && (!cJSON_IsNumber(bsize) || bsize->valuedouble < 0 ||
                  (size_t)bsize->valuedouble != bin_len))
        return BAD("binary_data_size does not match the binary data after the JSON header");
    if (!bsize && bin_len)
        return BAD("binary data after the JSON header but no binary_data_size parameter");
    if (!bsize && !data)
        return BAD("input has neither \"data\" nor binary_data_size");
    /* Refused before anything is allocated for them. */
    if (dims[0] > max_images)
        return fail(SRV_ERR_TOO_MANY_IMAGES, err, errlen,
                    "%ld images in one request, at most %d", dims[0], max_images);
    const char *want = is_tensor ? "FP32" : "BYTES";
    if (strcmp(dtype->valuestring, want) != 0)
        return fail(SRV_ERR_BAD_TENSOR, err, errlen, "input '%s' is %s, not %.20s",
                    name->valuestring, want, dtype->valuestring);
    if (is_tensor)
        return parse_fp32(data, bsize != NULL, bin, bin_len, dims, nd, req, err, errlen);
    return parse_bytes(data, bsize != NULL, bin, bin_len, dims, nd, crop, req, err, errlen);
}

enum srv_err v2_parse_request(const char *body, size_t body_len, const char *header_len,
                              int crop, int max_images, struct v2_request *req, char *err,
                              size_t errlen)
{
    memset(req, 0, sizeof *req);
    size_t json_len = body_len;
    if (header_len) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(header_len, &end, 10);
        if (errno || end == header_len || *end || v > body_len)
            return fail(SRV_ERR_BAD_REQUEST, err, errlen,
                        "Inference-Header-Content-Length %.40s: not a length within the body",
                        header_len);
        json_len = (size_t)v;
    }
    if (body_len == 0)
        return fail(SRV_ERR_EMPTY_BODY, err, errlen, "empty body: send a v2 inference request");
    cJSON *root = cJSON_ParseWithLength(body, json_len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(SRV_ERR_BAD_REQUEST, err, errlen, "the body is not a JSON object");
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (cJSON_IsString(id)) {
        snprintf(req->id, sizeof req->id, "%s", id->valuestring);
        req->has_id = 1;
    }
    enum srv_err e = parse_outputs(root, req, err, errlen);
    if (e == SRV_OK)
        e = parse_input(root, body + json_len, body_len - json_len, crop, max_images, req, err,
                        errlen);
    cJSON_Delete(root);
    return e;
}
