/* KServe v2 (Open Inference Protocol) over REST: server and model metadata,
 * health, and inference with FP32 [N,3,H,W] tensors or BYTES inputs holding
 * encoded images, in JSON or with the binary tensor data extension
 * (Inference-Header-Content-Length), and the classification extension. */
#include "routes.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define V2_MAX_SIDE 512 /* FP32 inputs: h, w from 32 to this */

enum { OUT_LOGITS, OUT_PROBS, N_OUT };
static const char *out_names[N_OUT] = {"logits", "probabilities"};

struct v2_state {
    float *tensor;   /* FP32 input, n x 3 x h x w */
    char **blobs;    /* BYTES input decoded from base64, n of them */
    int n, h, w;
    char id[256];
    int has_id;
    struct {
        int want, binary, cls; /* requested; binary data; top-k classification */
    } out[N_OUT];
    int order[N_OUT], n_order; /* outputs in the order the request named them */
};

static void v2_state_free(void *p)
{
    struct v2_state *st = p;
    if (!st)
        return;
    for (int i = 0; st->blobs && i < st->n; i++)
        free(st->blobs[i]);
    free(st->blobs);
    free(st->tensor);
    free(st);
}

/* ---- metadata and health ---- */

void v2_server_meta(struct request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", "resnetd");
    cJSON_AddStringToObject(o, "version", "0.1.0");
    const char *ext[] = {"binary_tensor_data", "classification"};
    cJSON_AddItemToObject(o, "extensions", cJSON_CreateStringArray(ext, 2));
    reply_json(r, 200, o);
}

void v2_live(struct request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "live", 1);
    reply_json(r, 200, o);
}

void v2_ready(struct request *r)
{
    if (atomic_load(&r->srv->draining)) {
        reply_error(r, SRV_ERR_NOT_READY, "shutting down");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ready", 1);
    reply_json(r, 200, o);
}

static cJSON *tensor_meta(const char *name, const char *dtype, const int *shape, int nd)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", dtype);
    cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, nd));
    return t;
}

void v2_model_meta(struct request *r)
{
    const struct model *m = r->model;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    const char *versions[] = {"1"};
    cJSON_AddItemToObject(o, "versions", cJSON_CreateStringArray(versions, 1));
    cJSON_AddStringToObject(o, "platform", "resnetd_safetensors");
    cJSON *in = cJSON_AddArrayToObject(o, "inputs");
    int ishape[4] = {-1, 3, m->pp->crop, m->pp->crop}, bshape[1] = {-1};
    cJSON_AddItemToArray(in, tensor_meta("input", "FP32", ishape, 4));
    cJSON_AddItemToArray(in, tensor_meta("image", "BYTES", bshape, 1));
    cJSON *out = cJSON_AddArrayToObject(o, "outputs");
    int oshape[2] = {-1, m->info->n_classes};
    for (int i = 0; i < N_OUT; i++)
        cJSON_AddItemToArray(out, tensor_meta(out_names[i], "FP32", oshape, 2));
    reply_json(r, 200, o);
}

void v2_model_ready(struct request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->model->name);
    cJSON_AddBoolToObject(o, "ready", !atomic_load(&r->srv->draining));
    reply_json(r, atomic_load(&r->srv->draining) ? 503 : 200, o);
}

/* ---- request parsing ---- */

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

static int bad(struct request *r, const char *msg)
{
    reply_error(r, SRV_ERR_BAD_TENSOR, "%s", msg);
    return -1;
}

/* Read "outputs" and request parameters into st. */
static int parse_outputs(struct request *r, const cJSON *root, struct v2_state *st)
{
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    int all_binary = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(params, "binary_data_output"));
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (!outs) {
        for (int i = 0; i < N_OUT; i++) {
            st->out[i].want = 1;
            st->out[i].binary = all_binary;
            st->order[st->n_order++] = i;
        }
        return 0;
    }
    if (!cJSON_IsArray(outs))
        return bad(r, "\"outputs\" must be an array");
    const cJSON *o;
    cJSON_ArrayForEach(o, outs)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        int k = -1;
        for (int i = 0; i < N_OUT && cJSON_IsString(name); i++)
            if (strcmp(name->valuestring, out_names[i]) == 0)
                k = i;
        if (k < 0)
            return bad(r, "unknown output: outputs are \"logits\" and \"probabilities\"");
        if (st->out[k].want)
            return bad(r, "an output is named twice in \"outputs\"");
        st->out[k].want = 1;
        st->order[st->n_order++] = k;
        st->out[k].binary = all_binary;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "binary_data");
        if (cJSON_IsBool(b))
            st->out[k].binary = cJSON_IsTrue(b);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(p, "classification");
        if (c) {
            if (!cJSON_IsNumber(c) || c->valuedouble < 1 || c->valuedouble > 1e6 ||
                c->valuedouble != floor(c->valuedouble))
                return bad(r, "\"classification\" must be a positive integer");
            st->out[k].cls = c->valueint;
        }
    }
    return 0;
}

/* Read the single input tensor into st and r->images. */
static int parse_input(struct request *r, const cJSON *root, const char *bin, size_t bin_len,
                       struct v2_state *st)
{
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 1)
        return bad(r, "\"inputs\" must be an array of exactly one tensor");
    const cJSON *in = cJSON_GetArrayItem(inputs, 0);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(in, "parameters");
    const cJSON *bsize = cJSON_GetObjectItemCaseSensitive(params, "binary_data_size");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape))
        return bad(r, "input needs \"datatype\" and \"shape\"");
    int nd = cJSON_GetArraySize(shape);
    long dims[4] = {0};
    if (nd < 1 || nd > 4)
        return bad(r, "input shape: expected [N,3,H,W] (FP32) or [N] (BYTES)");
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 1e6 ||
            d->valuedouble != floor(d->valuedouble))
            return bad(r, "input shape: dimensions must be positive integers");
        dims[i] = (long)d->valuedouble;
    }
    if (bsize && (!cJSON_IsNumber(bsize) || bsize->valuedouble < 0 ||
                  (size_t)bsize->valuedouble != bin_len))
        return bad(r, "binary_data_size does not match the binary data after the JSON header");
    if (!bsize && bin_len)
        return bad(r, "binary data after the JSON header but no binary_data_size parameter");
    if (!bsize && !data)
        return bad(r, "input has neither \"data\" nor binary_data_size");
    int crop = r->model->pp->crop;

    if (strcmp(dtype->valuestring, "FP32") == 0) {
        if (nd != 4 || dims[1] != 3 || dims[2] < 32 || dims[3] < 32 || dims[2] > V2_MAX_SIDE ||
            dims[3] > V2_MAX_SIDE) {
            reply_error(r, SRV_ERR_BAD_TENSOR,
                        "FP32 input shape must be [N,3,H,W] with 32 <= H,W <= %d", V2_MAX_SIDE);
            return -1;
        }
        st->n = (int)dims[0];
        st->h = (int)dims[2];
        st->w = (int)dims[3];
        size_t per = (size_t)3 * st->h * st->w, total = per * (size_t)st->n;
        if (bsize) {
            if (bin_len != total * sizeof(float))
                return bad(r, "binary FP32 data size does not match the shape");
        } else if (count_numbers(data) != (long)total) {
            return bad(r, "FP32 \"data\" must hold N*3*H*W numbers, as the shape says");
        }
        st->tensor = malloc(total * sizeof(float));
        r->images = calloc((size_t)st->n, sizeof *r->images);
        if (!st->tensor || !r->images) {
            reply_error(r, SRV_ERR_NOMEM, "out of memory for the input");
            return -1;
        }
        if (bsize) {
            memcpy(st->tensor, bin, bin_len);
        } else {
            size_t i = 0;
            fill_numbers(data, st->tensor, &i);
        }
        for (size_t i = 0; i < total; i++)
            if (!isfinite(st->tensor[i]))
                return bad(r, "FP32 input holds a NaN or infinity");
        for (int i = 0; i < st->n; i++) {
            r->images[i].tensor = st->tensor + per * (size_t)i;
            r->images[i].h = st->h;
            r->images[i].w = st->w;
        }
        return 0;
    }
    if (strcmp(dtype->valuestring, "BYTES") != 0)
        return bad(r, "input datatype must be FP32 or BYTES");
    if (!(nd == 1 || (nd == 2 && dims[1] == 1)))
        return bad(r, "BYTES input shape must be [N] or [N,1]: one encoded image each");
    st->n = (int)dims[0];
    r->images = calloc((size_t)st->n, sizeof *r->images);
    if (!r->images) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory for the input");
        return -1;
    }
    if (bsize) { /* each element: 4-byte little-endian length, then the bytes */
        size_t off = 0;
        for (int i = 0; i < st->n; i++) {
            if (bin_len - off < 4)
                return bad(r, "binary BYTES data truncated");
            const unsigned char *p = (const unsigned char *)bin + off;
            size_t len = p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
            off += 4;
            if (len > bin_len - off)
                return bad(r, "binary BYTES element longer than the data");
            r->images[i].data = bin + off;
            r->images[i].len = len;
            off += len;
        }
        if (off != bin_len)
            return bad(r, "binary BYTES data longer than the shape says");
    } else {
        if (!cJSON_IsArray(data) || cJSON_GetArraySize(data) != st->n)
            return bad(r, "BYTES \"data\" must be an array of N base64 strings");
        st->blobs = calloc((size_t)st->n, sizeof *st->blobs);
        if (!st->blobs) {
            reply_error(r, SRV_ERR_NOMEM, "out of memory for the input");
            return -1;
        }
        for (int i = 0; i < st->n; i++) {
            const cJSON *e = cJSON_GetArrayItem(data, i);
            while (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 1)
                e = cJSON_GetArrayItem(e, 0);
            size_t len = 0;
            if (!cJSON_IsString(e) || !(st->blobs[i] = base64_decode(e->valuestring, &len)))
                return bad(r, "BYTES \"data\" elements must be base64-encoded images");
            r->images[i].data = st->blobs[i];
            r->images[i].len = len;
        }
    }
    for (int i = 0; i < st->n; i++) {
        if (r->images[i].len == 0)
            return bad(r, "BYTES input element is empty");
        r->images[i].h = r->images[i].w = crop;
    }
    return 0;
}

void v2_infer_end(struct request *r)
{
    size_t json_len = r->body_len;
    const char *hl = request_header(r, "Inference-Header-Content-Length");
    if (hl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(hl, &end, 10);
        if (errno || end == hl || *end || v > r->body_len) {
            reply_error(r, SRV_ERR_BAD_REQUEST,
                        "Inference-Header-Content-Length %.40s: not a length within the body",
                        hl);
            return;
        }
        json_len = (size_t)v;
    }
    if (r->body_len == 0) {
        reply_error(r, SRV_ERR_EMPTY_BODY, "empty body: send a v2 inference request");
        return;
    }
    cJSON *root = cJSON_ParseWithLength(r->body ? r->body : "", json_len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        reply_error(r, SRV_ERR_BAD_REQUEST, "the body is not a JSON object");
        return;
    }
    struct v2_state *st = calloc(1, sizeof *st);
    if (!st) {
        cJSON_Delete(root);
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return;
    }
    r->route_state = st;
    r->free_state = v2_state_free;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (cJSON_IsString(id)) {
        snprintf(st->id, sizeof st->id, "%s", id->valuestring);
        st->has_id = 1;
    }
    int ok = parse_outputs(r, root, st) == 0 &&
             parse_input(r, root, r->body + json_len, r->body_len - json_len, st) == 0;
    cJSON_Delete(root);
    if (ok)
        request_submit(r, st->n);
}

/* ---- reply ---- */

struct blob {
    char *p;
    size_t len, cap;
};

static int blob_put(struct blob *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 4096;
        while (c < b->len + n)
            c *= 2;
        char *p = realloc(b->p, c);
        if (!p)
            return -1;
        b->p = p;
        b->cap = c;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

/* One output tensor: values[n][nc], or its top-k "value:index:label" strings. */
static cJSON *output_json(struct request *r, int k, float **values, struct blob *bin)
{
    struct v2_state *st = r->route_state;
    const struct model *m = r->model;
    int n = st->n, nc = m->info->n_classes;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", out_names[k]);
    size_t start = bin->len;
    int cls = st->out[k].cls < nc ? st->out[k].cls : nc;
    if (st->out[k].cls) {
        cJSON_AddStringToObject(t, "datatype", "BYTES");
        int shape[2] = {n, cls};
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, 2));
        cJSON *data = st->out[k].binary ? NULL : cJSON_AddArrayToObject(t, "data");
        int *idx = malloc(sizeof *idx * (size_t)cls);
        for (int i = 0; idx && i < n; i++) {
            int got = rn_topk(values[i], nc, cls, idx);
            for (int j = 0; j < got; j++) {
                char s[512];
                const char *label = rn_model_label(m->m, idx[j]);
                int len = snprintf(s, sizeof s, "%.9g:%d%s%s", (double)values[i][idx[j]], idx[j],
                                   label ? ":" : "", label ? label : "");
                if (len >= (int)sizeof s)
                    len = sizeof s - 1;
                if (data) {
                    cJSON_AddItemToArray(data, cJSON_CreateString(s));
                } else {
                    unsigned char le[4] = {(unsigned char)len, (unsigned char)(len >> 8), 0, 0};
                    blob_put(bin, le, 4);
                    blob_put(bin, s, (size_t)len);
                }
            }
        }
        free(idx);
    } else {
        cJSON_AddStringToObject(t, "datatype", "FP32");
        int shape[2] = {n, nc};
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, 2));
        cJSON *data = st->out[k].binary ? NULL : cJSON_AddArrayToObject(t, "data");
        for (int i = 0; i < n; i++)
            for (int j = 0; j < nc; j++) {
                if (data)
                    cJSON_AddItemToArray(data, json_float(values[i][j]));
                else
                    blob_put(bin, &values[i][j], sizeof(float));
            }
    }
    if (st->out[k].binary) {
        cJSON *p = cJSON_AddObjectToObject(t, "parameters");
        cJSON_AddNumberToObject(p, "binary_data_size", (double)(bin->len - start));
    }
    return t;
}

void v2_infer_finish(struct request *r)
{
    struct v2_state *st = r->route_state;
    for (int i = 0; i < st->n; i++)
        if (r->images[i].status != SRV_OK) {
            reply_error(r, r->images[i].status, "input %d: %s", i, r->images[i].err);
            return;
        }
    int nc = r->model->info->n_classes;
    size_t n = st->n > 0 ? (size_t)st->n : 1;
    float **logits = calloc(n, sizeof *logits);
    float *probs = malloc(sizeof *probs * (size_t)nc * n);
    float **pp = calloc(n, sizeof *pp);
    if (!logits || !probs || !pp) {
        free(logits);
        free(probs);
        free(pp);
        reply_error(r, SRV_ERR_NOMEM, "out of memory building the reply");
        return;
    }
    for (int i = 0; i < st->n; i++) {
        logits[i] = r->images[i].logits;
        pp[i] = probs + (size_t)nc * i;
        memcpy(pp[i], logits[i], sizeof *probs * (size_t)nc);
        rn_softmax(pp[i], nc);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model_name", r->model->name);
    cJSON_AddStringToObject(o, "model_version", "1");
    if (st->has_id)
        cJSON_AddStringToObject(o, "id", st->id);
    cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
    struct blob bin = {0};
    int any_binary = 0;
    for (int i = 0; i < st->n_order; i++) {
        int k = st->order[i];
        cJSON_AddItemToArray(outs, output_json(r, k, k == OUT_LOGITS ? logits : pp, &bin));
        any_binary |= st->out[k].binary;
    }
    free(logits);
    free(probs);
    free(pp);
    if (!any_binary) {
        free(bin.p);
        reply_json(r, 200, o);
        return;
    }
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    size_t jl = json ? strlen(json) : 0;
    struct blob body = {0};
    if (!json || blob_put(&body, json, jl) < 0 || blob_put(&body, bin.p ? bin.p : "", bin.len) < 0) {
        cJSON_free(json);
        free(bin.p);
        free(body.p);
        reply_error(r, SRV_ERR_NOMEM, "out of memory building the reply");
        return;
    }
    cJSON_free(json);
    free(bin.p);
    char hl[32];
    snprintf(hl, sizeof hl, "%zu", jl);
    reply_buffer(r, 200, "application/octet-stream", body.p, body.len,
                 "Inference-Header-Content-Length", hl);
}
