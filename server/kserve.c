/* KServe v2 (Open Inference Protocol) over REST: server and model metadata,
 * health, and inference with FP32 [N,3,H,W] tensors or BYTES inputs holding
 * encoded images, in JSON or with the binary tensor data extension
 * (Inference-Header-Content-Length), and the classification extension. */
#include "kserve.h"

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "kserve_request.h"
#include "auth.h"
#include "routes.h"

/* The state of a /v2/models/NAME route (request_state), made by begin(),
 * freed with the request. */
struct v2_state {
    struct model *model;    /* NAME, referenced; released with the state */
    struct v2_request req;  /* the parsed inference request (kserve_request.c) */
    struct infer_job job;   /* its images, handed to the batcher */
};

static void v2_state_free(void *p)
{
    struct v2_state *st = p;
    if (!st)
        return;
    infer_job_free(&st->job);
    v2_request_free(&st->req); /* the images' bytes and tensors */
    model_release(st->model);
    free(st);
}

/* The state, with the model the path names; NULL after a reply. */
static struct v2_state *v2_begin(struct request *r)
{
    struct v2_state *st = calloc(1, sizeof *st);
    if (!st) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    request_set_state(r, st, v2_state_free);
    infer_job_init(&st->job);
    char name[256];
    routes_v2_path(request_path(r), name, sizeof name);
    st->model = routes_take_model(r, name);
    st->job.model = st->model;
    if (!st->model)
        return NULL;
    /* Each model has one version, V2_VERSION: a path naming another must not
     * be answered by it (a client pinning a version would never notice). */
    char version[64];
    if (routes_v2_version(request_path(r), version, sizeof version) &&
        strcmp(version, V2_VERSION) != 0) {
        reply_error(r, SRV_ERR_NO_MODEL,
                    "model %s has no version '%.40s': its versions are [\"" V2_VERSION "\"]",
                    st->model->name, version);
        return NULL;
    }
    return st;
}

void v2_model_begin(struct request *r)
{
    v2_begin(r);
}

void v2_infer_begin(struct request *r)
{
    struct v2_state *st = v2_begin(r);
    if (st)
        routes_parse_orient(r, &st->job.exif_orient);
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
    if (request_draining(r)) {
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

/* A parameter holding a list of tensor descriptions as JSON text: the
 * protocol's parameter values are strings, numbers or booleans only. */
static void add_json_param(cJSON *params, const char *key, cJSON *value)
{
    char *text = cJSON_PrintUnformatted(value);
    cJSON_Delete(value);
    if (text)
        cJSON_AddStringToObject(params, key, text);
    cJSON_free(text);
}

/* The shortest decimal that reads back as v: 103.939, not 103.939003. */
static void shortest_float(char *s, size_t n, float v)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(s, n, "%.*g", digits, (double)v);
        if (strtof(s, NULL) == v)
            return;
    }
}

/* Three floats as "a,b,c". */
static void add_triple(cJSON *params, const char *key, const float *v)
{
    char a[3][24], s[80];
    for (int i = 0; i < 3; i++)
        shortest_float(a[i], sizeof a[i], v[i]);
    snprintf(s, sizeof s, "%s,%s,%s", a[0], a[1], a[2]);
    cJSON_AddStringToObject(params, key, s);
}

/* The preprocessing an FP32 "input" must already have had, as the model's
 * resnet.preprocess says (the BYTES input gets it from the server): the
 * shorter side resized to resize, the center crop x crop taken, pixels
 * (0..255) times scale, minus mean, divided by std, channels in order
 * (mean and std per channel in that order), NCHW. */
static void add_preprocess(cJSON *params, const rn_preprocess *pp)
{
    cJSON_AddNumberToObject(params, "preprocess_resize", pp->resize);
    cJSON_AddNumberToObject(params, "preprocess_crop", pp->crop);
    cJSON_AddItemToObject(params, "preprocess_scale", json_float(pp->scale));
    add_triple(params, "preprocess_mean", pp->mean);
    add_triple(params, "preprocess_std", pp->std);
    cJSON_AddStringToObject(params, "preprocess_order", pp->bgr ? "BGR" : "RGB");
    cJSON_AddStringToObject(params, "preprocess_layout", "NCHW");
}

/* The metadata lists what a request that names nothing gets and must send,
 * since the protocol has no optional inputs and says a request without
 * "outputs" gets every output: one input, "input" (FP32), and the two
 * outputs such a request returns. A generic client that fills every listed
 * input with values of the listed shape (perf_analyzer) then sends a valid
 * request; had BYTES been listed, it would send bytes that are no image.
 * The alternative BYTES input "image" and the layers a request may name as
 * an output instead (alone, pooled unless {"pool": "none"}) are in
 * "parameters", as JSON text of the same tensor descriptions. */
void v2_model_meta(struct request *r)
{
    const struct v2_state *st = request_state(r);
    const struct model *m = st->model;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    const char *versions[] = {V2_VERSION};
    cJSON_AddItemToObject(o, "versions", cJSON_CreateStringArray(versions, 1));
    cJSON_AddStringToObject(o, "platform", "resnetd_safetensors");
    cJSON *in = cJSON_AddArrayToObject(o, "inputs");
    int ishape[4] = {-1, 3, m->pp->crop, m->pp->crop}, bshape[1] = {-1};
    cJSON_AddItemToArray(in, tensor_meta(V2_IN_TENSOR, "FP32", ishape, 4));
    cJSON *out = cJSON_AddArrayToObject(o, "outputs");
    int oshape[2] = {-1, m->info->n_classes};
    for (int i = 0; i < V2_N_OUT; i++)
        cJSON_AddItemToArray(out, tensor_meta(v2_out_names[i], "FP32", oshape, 2));
    /* The protocol's optional "parameters" object (as in MLServer) rather
     * than new top-level fields. */
    cJSON *params = cJSON_AddObjectToObject(o, "parameters");
    cJSON_AddStringToObject(params, "precision", models_precision_name(m->info->precision));
    cJSON_AddStringToObject(params, "isa", rn_isa_name(m->info->isa));
    add_preprocess(params, m->pp);
    cJSON *alt = cJSON_CreateArray();
    cJSON_AddItemToArray(alt, tensor_meta(V2_IN_IMAGE, "BYTES", bshape, 1));
    add_json_param(params, "alternative_inputs", alt);
    cJSON *layers = cJSON_CreateArray();
    for (int i = 0; i < rn_model_layer_count(m->m); i++) {
        int sh[3], lshape[2] = {-1, 0};
        if (rn_model_layer_shape(m->m, i, m->pp->crop, m->pp->crop, sh) < 0)
            continue;
        lshape[1] = sh[0];
        cJSON_AddItemToArray(layers, tensor_meta(rn_model_layer_name(m->m, i), "FP32", lshape, 2));
    }
    add_json_param(params, "extra_outputs", layers);
    reply_json(r, 200, o);
}

void v2_model_ready(struct request *r)
{
    const struct v2_state *st = request_state(r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", st->model->name);
    cJSON_AddBoolToObject(o, "ready", !request_draining(r));
    reply_json(r, request_draining(r) ? 503 : 200, o);
}

/* ---- inference ---- */

void v2_infer_end(struct request *r)
{
    struct v2_state *st = request_state(r);
    struct infer_job *job = &st->job;
    const struct model *m = st->model;
    size_t len;
    const char *body = request_body(r, &len);
    char err[256];
    enum srv_err e = v2_parse_request(body, len,
                                      request_header(r, "Inference-Header-Content-Length"),
                                      m->pp->crop, request_config(r)->max_queue, &st->req, err,
                                      sizeof err);
    if (e != SRV_OK) {
        reply_error(r, e, "%s", err);
        return;
    }
    /* Only the body tells a layer's output (features group) from logits
     * (infer group); the headers let in a key of either (routes.c). */
    if (request_authorize(r, st->req.layer[0] ? AUTH_FEATURES : AUTH_INFER) < 0)
        return;
    if (st->req.layer[0]) {
        job->layer = rn_model_layer_find(m->m, st->req.layer);
        job->pool = st->req.layer_pool;
        if (job->layer < 0) {
            reply_error(r, SRV_ERR_BAD_REQUEST,
                        "unknown output '%.60s': outputs are \"logits\", \"probabilities\" or a "
                        "layer of model %s (GET /v2/models/%s lists them in "
                        "parameters.extra_outputs)",
                        st->req.layer, m->name, m->name);
            return;
        }
    }
    job->images = st->req.images; /* the job frees its images */
    job->n = st->req.n;
    st->req.images = NULL;
    routes_submit(r, job);
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
static cJSON *output_json(const struct v2_state *st, int k, float **values, struct blob *bin)
{
    const struct v2_request *req = &st->req;
    const struct model *m = st->model;
    int n = req->n, nc = m->info->n_classes;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", v2_out_names[k]);
    size_t start = bin->len;
    int cls = req->out[k].cls < nc ? req->out[k].cls : nc;
    if (req->out[k].cls) {
        cJSON_AddStringToObject(t, "datatype", "BYTES");
        int shape[2] = {n, cls};
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, 2));
        cJSON *data = req->out[k].binary ? NULL : cJSON_AddArrayToObject(t, "data");
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
        cJSON *data = req->out[k].binary ? NULL : cJSON_AddArrayToObject(t, "data");
        for (int i = 0; i < n; i++)
            for (int j = 0; j < nc; j++) {
                if (data)
                    cJSON_AddItemToArray(data, json_float(values[i][j]));
                else
                    blob_put(bin, &values[i][j], sizeof(float));
            }
    }
    if (req->out[k].binary) {
        cJSON *p = cJSON_AddObjectToObject(t, "parameters");
        cJSON_AddNumberToObject(p, "binary_data_size", (double)(bin->len - start));
    }
    return t;
}

/* A layer output: one FP32 tensor [n, c] or [n, c, h, w] named after it. */
static void reply_layer(struct request *r, const struct v2_state *st)
{
    const struct v2_request *req = &st->req;
    const struct infer_job *job = &st->job;
    const struct model *m = st->model;
    int shape[4] = {req->n, 0, 0, 0}, sh[3];
    rn_model_layer_shape(m->m, job->layer, job->images[0].h, job->images[0].w, sh);
    memcpy(shape + 1, sh, sizeof sh);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model_name", m->name);
    cJSON_AddStringToObject(o, "model_version", V2_VERSION);
    if (req->has_id)
        cJSON_AddStringToObject(o, "id", req->id);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "outputs"), t);
    cJSON_AddStringToObject(t, "name", rn_model_layer_name(m->m, job->layer));
    cJSON_AddStringToObject(t, "datatype", "FP32");
    cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, job->pool == RN_POOL_AVG ? 2 : 4));
    size_t per = job->layer_floats, total = per * (size_t)req->n;
    if (!req->layer_binary) {
        cJSON *data = cJSON_AddArrayToObject(t, "data");
        for (int i = 0; i < req->n; i++)
            for (size_t j = 0; j < per; j++)
                cJSON_AddItemToArray(data, json_float(job->images[i].layer_out[j]));
        reply_json(r, 200, o);
        return;
    }
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(t, "parameters"), "binary_data_size",
                            (double)(total * sizeof(float)));
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    size_t jl = json ? strlen(json) : 0;
    char *body = json ? malloc(jl + total * sizeof(float) + 1) : NULL;
    if (!body) {
        cJSON_free(json);
        reply_error(r, SRV_ERR_NOMEM, "out of memory building the reply");
        return;
    }
    memcpy(body, json, jl);
    cJSON_free(json);
    for (int i = 0; i < req->n; i++) /* the images' outputs are consecutive */
        memcpy(body + jl + (size_t)i * per * sizeof(float), job->images[i].layer_out, per * sizeof(float));
    char hl[32];
    snprintf(hl, sizeof hl, "%zu", jl);
    reply_buffer(r, 200, "application/octet-stream", body, jl + total * sizeof(float),
                 "Inference-Header-Content-Length", hl);
}

void v2_infer_finish(struct request *r)
{
    const struct v2_state *st = request_state(r);
    const struct v2_request *req = &st->req;
    const struct infer_job *job = &st->job;
    const struct model *m = st->model;
    for (int i = 0; i < req->n; i++)
        if (job->images[i].status != SRV_OK) {
            reply_error(r, job->images[i].status, "input %d: %s", i, job->images[i].err);
            return;
        }
    if (job->layer >= 0) {
        reply_layer(r, st);
        return;
    }
    int nc = m->info->n_classes;
    size_t n = req->n > 0 ? (size_t)req->n : 1;
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
    for (int i = 0; i < req->n; i++) {
        logits[i] = job->images[i].logits;
        pp[i] = probs + (size_t)nc * i;
        memcpy(pp[i], logits[i], sizeof *probs * (size_t)nc);
        rn_softmax(pp[i], nc);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model_name", m->name);
    cJSON_AddStringToObject(o, "model_version", V2_VERSION);
    if (req->has_id)
        cJSON_AddStringToObject(o, "id", req->id);
    cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
    struct blob bin = {0};
    int any_binary = 0;
    for (int i = 0; i < req->n_order; i++) {
        int k = req->order[i];
        cJSON_AddItemToArray(outs, output_json(st, k, k == V2_OUT_LOGITS ? logits : pp, &bin));
        any_binary |= req->out[k].binary;
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
