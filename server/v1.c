/* The /v1 API: classify and embed images sent raw or as
 * multipart/form-data, and list the models. Inspection, which shares the
 * images and the state, is in v1_inspect.c. */
#include "v1.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "routes.h"

static void v1_state_free(void *p)
{
    struct v1_state *st = p;
    if (!st)
        return;
    infer_job_free(&st->job);
    model_release(st->model);
    free(st);
}

static int parse_topk(struct request *r, struct v1_state *st)
{
    const char *s = request_arg(r, "topk");
    if (!s)
        return 0;
    if (routes_parse_topk(s, &st->topk) < 0) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "topk=%.40s: expected an integer of at least 1 (larger ones are cut to "
                    "the number of classes)", s);
        return -1;
    }
    return 0;
}

struct v1_state *v1_begin(struct request *r)
{
    struct v1_state *st = calloc(1, sizeof *st);
    if (!st) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    request_set_state(r, st, v1_state_free);
    st->topk = 5;
    infer_job_init(&st->job);
    st->model = routes_take_model(r, request_arg(r, "model"));
    if (!st->model)
        return NULL;
    st->job.model = st->model;
    if (parse_topk(r, st) < 0 || routes_parse_orient(r, &st->job.exif_orient) < 0)
        return NULL;
    return st;
}

/* /v1/embed?layer=NAME&pool=avg|none: a named layer's output instead of the
 * embedding; an unknown name is answered with the names the model has. */
static void parse_layer(struct request *r, struct v1_state *st)
{
    const struct model *m = st->model;
    struct infer_job *job = &st->job;
    const char *name = request_arg(r, "layer"), *pool = request_arg(r, "pool");
    job->pool = RN_POOL_AVG;
    if (pool && !strcmp(pool, "none"))
        job->pool = RN_POOL_NONE;
    else if (pool && strcmp(pool, "avg")) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "pool=%.40s: expected avg or none", pool);
        return;
    }
    if (!name) {
        job->layer = -1;
        if (pool && job->pool == RN_POOL_NONE)
            reply_error(r, SRV_ERR_BAD_REQUEST, "pool=none needs a layer=NAME");
        return;
    }
    job->layer = rn_model_layer_find(m->m, name);
    if (job->layer >= 0)
        return;
    char list[1536];
    size_t n = 0;
    list[0] = '\0';
    for (int i = 0; i < rn_model_layer_count(m->m) && n < sizeof list - 64; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
                              rn_model_layer_name(m->m, i));
    reply_error(r, SRV_ERR_BAD_REQUEST, "layer=%.60s: model %s has no such layer; it has: %s",
                name, m->name, list);
}

void v1_classify_begin(struct request *r)
{
    v1_begin(r);
}

/* A layer's output is the features group's (auth.h), the embedding the
 * infer group's: the query says which, so the key is checked here, before
 * the body is read. */
void v1_embed_begin(struct request *r)
{
    int group = request_arg(r, "layer") ? AUTH_FEATURES : AUTH_INFER;
    if (request_authorize(r, group) < 0)
        return;
    struct v1_state *st = v1_begin(r);
    if (st)
        parse_layer(r, st);
}

/* ---- /v1/classify, /v1/embed (and /v1/inspect) ---- */

void v1_images_end(struct request *r)
{
    struct v1_state *st = request_state(r);
    struct infer_job *job = &st->job;
    int crop = st->model->pp->crop;
    if (request_multipart(r)) {
        int n = request_n_uploads(r);
        if (n == 0) {
            reply_error(r, SRV_ERR_NO_FILE,
                        "multipart body without a file part (curl -F img=@photo.jpg)");
            return;
        }
        job->images = calloc((size_t)n, sizeof *job->images);
        if (!job->images) {
            reply_error(r, SRV_ERR_NOMEM, "out of memory");
            return;
        }
        job->n = n;
        for (int i = 0; i < n; i++) {
            const struct upload *u = request_upload(r, i);
            if (u->len == 0) {
                reply_error(r, SRV_ERR_EMPTY_BODY, "file part '%s' is empty", u->name);
                return;
            }
            job->images[i].data = u->data;
            job->images[i].len = u->len;
            job->images[i].h = job->images[i].w = crop;
        }
        routes_submit(r, job);
        return;
    }
    size_t len;
    const char *body = request_body(r, &len);
    if (len == 0) {
        reply_error(r, SRV_ERR_EMPTY_BODY,
                    "empty body: send an image (curl --data-binary @photo.jpg)");
        return;
    }
    job->images = calloc(1, sizeof *job->images);
    if (!job->images) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return;
    }
    job->n = 1;
    job->images[0].data = body;
    job->images[0].len = len;
    job->images[0].h = job->images[0].w = crop;
    routes_submit(r, job);
}

int v1_reply_failure(struct request *r, const struct v1_state *st)
{
    for (int i = 0; i < st->job.n; i++) {
        const struct infer_image *it = &st->job.images[i];
        if (it->status == SRV_OK)
            continue;
        if (request_multipart(r))
            reply_error(r, it->status, "%s: %s", request_upload(r, i)->name, it->err);
        else
            reply_error(r, it->status, "%s", it->err);
        return 1;
    }
    return 0;
}

static cJSON *predictions(const struct model *m, float *logits, int topk)
{
    int nc = m->info->n_classes;
    int k = topk < nc ? topk : nc;
    int *idx = malloc(sizeof *idx * (size_t)k);
    cJSON *a = cJSON_CreateArray();
    if (!idx || !a) {
        free(idx);
        cJSON_Delete(a);
        return NULL;
    }
    rn_softmax(logits, nc);
    k = rn_topk(logits, nc, k, idx);
    for (int i = 0; i < k; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToArray(a, p);
        cJSON_AddNumberToObject(p, "index", idx[i]);
        /* as `resnet classify`: the class name, else the index as a string */
        const char *label = rn_model_label(m->m, idx[i]);
        char num[16];
        snprintf(num, sizeof num, "%d", idx[i]);
        cJSON_AddStringToObject(p, "label", label ? label : num);
        cJSON_AddItemToObject(p, "score", json_float(logits[idx[i]]));
    }
    free(idx);
    return a;
}

static cJSON *floats(const float *e, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, json_float(e[i]));
    return a;
}

/* {"model":..., KEY:...} for a raw body, {"model":..., "results":[{"name":..., KEY:...}]}
 * for a multipart one. */
static void reply_images(struct request *r, const char *key, int classify)
{
    struct v1_state *st = request_state(r);
    const struct model *m = st->model;
    const struct infer_job *job = &st->job;
    if (v1_reply_failure(r, st))
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", m->name);
    if (!classify && job->layer >= 0) {
        int shape[3];
        rn_model_layer_shape(m->m, job->layer, job->images[0].h, job->images[0].w, shape);
        cJSON_AddStringToObject(o, "layer", rn_model_layer_name(m->m, job->layer));
        cJSON_AddStringToObject(o, "pool", job->pool == RN_POOL_AVG ? "avg" : "none");
        /* the array's layout: channels, or channels x height x width */
        cJSON_AddItemToObject(o, "shape",
                              cJSON_CreateIntArray(shape, job->pool == RN_POOL_AVG ? 1 : 3));
    }
    cJSON *results = request_multipart(r) ? cJSON_AddArrayToObject(o, "results") : NULL;
    for (int i = 0; i < job->n; i++) {
        struct infer_image *it = &job->images[i];
        cJSON *v = classify ? predictions(m, it->logits, st->topk)
                   : job->layer >= 0 ? floats(it->layer_out, job->layer_floats)
                                     : floats(it->embed, (size_t)m->info->embed_dim);
        if (!v) {
            cJSON_Delete(o);
            reply_error(r, SRV_ERR_NOMEM, "out of memory building the reply");
            return;
        }
        cJSON *dst = o;
        if (results) {
            dst = cJSON_CreateObject();
            cJSON_AddItemToArray(results, dst);
            cJSON_AddStringToObject(dst, "name", request_upload(r, i)->name);
        }
        if (!classify)
            cJSON_AddNumberToObject(dst, "dim", job->layer >= 0 ? (double)job->layer_floats
                                                                : m->info->embed_dim);
        cJSON_AddItemToObject(dst, key, v);
    }
    reply_json(r, 200, o);
}

void v1_classify_finish(struct request *r)
{
    reply_images(r, "predictions", 1);
}

void v1_embed_finish(struct request *r)
{
    reply_images(r, "embedding", 0);
}

/* ---- GET /v1/models ---- */

void v1_models(struct request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "models");
    int n = models_count();
    for (int i = 0; i < n; i++) {
        struct model *m = models_acquire_index(i);
        if (!m)
            continue;
        const rn_model_info *info = m->info;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(a, e);
        cJSON_AddStringToObject(e, "name", m->name);
        cJSON_AddBoolToObject(e, "default", i == 0);
        cJSON_AddStringToObject(e, "arch", info->arch);
        cJSON_AddStringToObject(e, "variant", info->variant == RN_VARIANT_V1 ? "v1" : "v1.5");
        cJSON_AddStringToObject(e, "block",
                                info->block == RN_BLOCK_BOTTLENECK ? "bottleneck" : "basic");
        cJSON_AddNumberToObject(e, "classes", info->n_classes);
        cJSON_AddNumberToObject(e, "embed_dim", info->embed_dim);
        int shape[3] = {3, m->pp->crop, m->pp->crop};
        cJSON_AddItemToObject(e, "input_shape", cJSON_CreateIntArray(shape, 3));
        cJSON_AddNumberToObject(e, "parameters", (double)info->n_params);
        cJSON_AddBoolToObject(e, "labels", rn_model_label(m->m, 0) != NULL);
        /* What runs, not what --precision asked: bf16 can fall back to fp32. */
        cJSON_AddStringToObject(e, "precision", models_precision_name(m->info->precision));
        cJSON_AddStringToObject(e, "isa", rn_isa_name(m->info->isa)); /* the kernels it runs on */
        /* the layers /v1/embed?layer= offers, with their shapes at the crop */
        cJSON *layers = cJSON_AddArrayToObject(e, "layers");
        for (int li = 0; li < rn_model_layer_count(m->m); li++) {
            int sh[3];
            if (rn_model_layer_shape(m->m, li, m->pp->crop, m->pp->crop, sh) < 0)
                continue;
            cJSON *l = cJSON_CreateObject();
            cJSON_AddStringToObject(l, "name", rn_model_layer_name(m->m, li));
            cJSON_AddItemToObject(l, "shape", cJSON_CreateIntArray(sh, 3));
            cJSON_AddItemToArray(layers, l);
        }
        model_release(m);
    }
    cJSON *types = cJSON_AddArrayToObject(o, "image_types"); /* what the image routes decode */
    for (int i = 0; rn_image_format_mime(i); i++)
        cJSON_AddItemToArray(types, cJSON_CreateString(rn_image_format_mime(i)));
    reply_json(r, 200, o);
}
