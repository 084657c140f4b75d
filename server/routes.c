/* Routing and the /v1 API: classify and embed images sent raw or as
 * multipart/form-data, list the models, serve the metrics page. */
#include "routes.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "openapi.h"
#include "page.h"

static const struct route r_classify = {"POST", MR_CLASSIFY, BODY_IMAGES, v1_images_end,
                                        v1_classify_finish};
static const struct route r_embed = {"POST", MR_EMBED, BODY_IMAGES, v1_images_end,
                                     v1_embed_finish};
static const struct route r_inspect = {"POST", MR_INSPECT, BODY_IMAGES, v1_inspect_end,
                                       v1_inspect_finish};
static const struct route r_page = {"GET", MR_PAGE, BODY_NONE, page_asset, NULL};
static const struct route r_models = {"GET", MR_MODELS, BODY_NONE, v1_models, NULL};
static const struct route r_metrics = {"GET", MR_METRICS, BODY_NONE, metrics_page, NULL};
static const struct route r_openapi = {"GET", MR_OPENAPI, BODY_NONE, openapi_page, NULL};
static const struct route r_v2 = {"GET", MR_V2_META, BODY_NONE, v2_server_meta, NULL};
static const struct route r_live = {"GET", MR_V2_HEALTH, BODY_NONE, v2_live, NULL};
static const struct route r_ready = {"GET", MR_V2_HEALTH, BODY_NONE, v2_ready, NULL};
static const struct route r_v2_model = {"GET", MR_V2_MODEL, BODY_NONE, v2_model_meta, NULL};
static const struct route r_v2_model_ready = {"GET", MR_V2_MODEL, BODY_NONE, v2_model_ready,
                                              NULL};
static const struct route r_v2_infer = {"POST", MR_V2_INFER, BODY_RAW, v2_infer_end,
                                        v2_infer_finish};
const struct route route_not_found = {NULL, MR_OTHER, BODY_NONE, NULL, NULL};

static const struct {
    const char *path;
    const struct route *route;
} exact[] = {
    {"/v1/classify", &r_classify}, {"/v1/embed", &r_embed},         {"/v1/models", &r_models},
    {"/metrics", &r_metrics},      {"/v2", &r_v2},                  {"/v2/health/live", &r_live},
    {"/v2/health/ready", &r_ready}, {"/openapi.json", &r_openapi}, {"/v1/inspect", &r_inspect},
    {"/", &r_page},                {"/ui/app.js", &r_page},         {"/ui/style.css", &r_page},
    {"/ui/icon.svg", &r_page},
};

/* /v2/models/NAME[/versions/V][/ready|/infer]: the route, and NAME in name. */
static const struct route *match_v2_model(const char *url, char *name, size_t namelen)
{
    static const char prefix[] = "/v2/models/";
    if (strncmp(url, prefix, sizeof prefix - 1) != 0)
        return NULL;
    const char *p = url + sizeof prefix - 1;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= namelen)
        return NULL;
    memcpy(name, p, n);
    name[n] = '\0';
    p += n;
    if (strncmp(p, "/versions/", 10) == 0) {
        p += 10;
        size_t v = strcspn(p, "/");
        if (v == 0)
            return NULL;
        p += v;
    }
    if (*p == '\0')
        return &r_v2_model;
    if (strcmp(p, "/ready") == 0)
        return &r_v2_model_ready;
    if (strcmp(p, "/infer") == 0)
        return &r_v2_infer;
    return NULL;
}

int routes_parse_topk(const char *s, int *k)
{
    /* Digits only: no sign, space or base prefix that strtol would take. */
    if (!*s || strspn(s, "0123456789") != strlen(s))
        return -1;
    while (*s == '0' && s[1])
        s++;
    long long v = strlen(s) > 10 ? INT_MAX : strtoll(s, NULL, 10);
    if (v < 1)
        return -1;
    *k = v > INT_MAX ? INT_MAX : (int)v;
    return 0;
}

/* /v1/embed?layer=NAME&pool=avg|none: a named layer's output instead of the
 * embedding; an unknown name is answered with the names the model has. */
static int parse_layer(struct request *r)
{
    const char *name = request_arg(r, "layer"), *pool = request_arg(r, "pool");
    r->pool = RN_POOL_AVG;
    if (pool && !strcmp(pool, "none"))
        r->pool = RN_POOL_NONE;
    else if (pool && strcmp(pool, "avg")) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "pool=%.40s: expected avg or none", pool);
        return -1;
    }
    if (!name) {
        r->layer = -1;
        if (pool && r->pool == RN_POOL_NONE) {
            reply_error(r, SRV_ERR_BAD_REQUEST, "pool=none needs a layer=NAME");
            return -1;
        }
        return 0;
    }
    r->layer = rn_model_layer_find(r->model->m, name);
    if (r->layer >= 0)
        return 0;
    char list[1536];
    size_t n = 0;
    list[0] = '\0';
    for (int i = 0; i < rn_model_layer_count(r->model->m) && n < sizeof list - 64; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
                              rn_model_layer_name(r->model->m, i));
    reply_error(r, SRV_ERR_BAD_REQUEST, "layer=%.60s: model %s has no such layer; it has: %s",
                name, r->model->name, list);
    return -1;
}

int routes_valid_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= ROUTES_MAX_NAME &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* /v1/inspect?lesions=0|1&format=json|png&class=K */
static int parse_inspect(struct request *r)
{
    const char *les = request_arg(r, "lesions"), *fmt = request_arg(r, "format");
    const char *cls = request_arg(r, "class");
    r->inspect = 1;
    r->lesions = 1;
    if (les && (!strcmp(les, "0") || !strcmp(les, "false")))
        r->lesions = 0;
    else if (les && strcmp(les, "1") && strcmp(les, "true")) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "lesions=%.40s: expected 0, 1, true or false", les);
        return -1;
    }
    int png = fmt && !strcmp(fmt, "png");
    if (fmt && !png && strcmp(fmt, "json")) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "format=%.40s: expected json or png", fmt);
        return -1;
    }
    r->png_class = png ? -2 : -1;
    if (!cls)
        return 0;
    int k, nc = r->model->info->n_classes;
    if (!png) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "class=%.40s: only for format=png (the JSON has the maps of the top-k classes)",
                    cls);
        return -1;
    }
    /* class 0 is valid: routes_parse_topk takes 1.. */
    if (!strcmp(cls, "0"))
        k = 0;
    else if (routes_parse_topk(cls, &k) < 0 || k >= nc) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "class=%.40s: model %s has classes 0..%d", cls,
                    r->model->name, nc - 1);
        return -1;
    }
    r->png_class = k;
    return 0;
}

static int parse_topk(struct request *r)
{
    const char *s = request_arg(r, "topk");
    if (!s)
        return 0;
    if (routes_parse_topk(s, &r->topk) < 0) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "topk=%.40s: expected an integer of at least 1 (larger ones are cut to "
                    "the number of classes)", s);
        return -1;
    }
    return 0;
}

/* ?orient=exif|none, for any route with a body (whatever decodes images):
 * exif turns each image upright by its EXIF orientation first, as PIL's
 * ImageOps.exif_transpose; none (the default) decodes it as stored, as the
 * training pipeline did. */
static int parse_orient(struct request *r)
{
    const char *s = request_arg(r, "orient");
    if (!s || !strcmp(s, "none"))
        return 0;
    if (!strcmp(s, "exif")) {
        r->exif_orient = 1;
        return 0;
    }
    reply_error(r, SRV_ERR_BAD_REQUEST, "orient=%.40s: expected exif or none", s);
    return -1;
}

const struct route *routes_match(const char *url, char *name, size_t namelen)
{
    name[0] = '\0';
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(url, exact[i].path) == 0)
            return exact[i].route;
    return match_v2_model(url, name, namelen);
}

void routes_dispatch(struct request *r, const char *url)
{
    char name[256];
    const struct route *rt = routes_match(url, name, sizeof name);
    if (!rt) {
        reply_error(r, SRV_ERR_NOT_FOUND, "no route %.200s", url);
        return;
    }
    int head_ok = strcmp(rt->method, "GET") == 0 && strcmp(r->method, "HEAD") == 0;
    if (strcmp(r->method, rt->method) != 0 && !head_ok) {
        r->route = rt; /* for metrics; the reply is already decided */
        reply_error(r, SRV_ERR_METHOD, "%s %s: method not allowed, use %s", r->method, url,
                    rt->method);
        if (r->resp)
            MHD_add_response_header(r->resp, MHD_HTTP_HEADER_ALLOW, rt->method);
        return;
    }
    if (rt->metric == MR_V2_MODEL || rt->metric == MR_V2_INFER || rt->body == BODY_IMAGES) {
        const char *want = name[0] ? name : request_arg(r, "model");
        if (want && !routes_valid_name(want)) {
            r->route = rt;
            reply_error(r, SRV_ERR_BAD_REQUEST,
                        "model name '%.100s' is invalid: 1 to %d of A-Z a-z 0-9 . _ -",
                        want, ROUTES_MAX_NAME);
            return;
        }
        r->model = models_acquire(want);
        if (!r->model) {
            r->route = rt;
            reply_error(r, SRV_ERR_NO_MODEL, "no model named '%.100s' (see GET /v1/models)",
                        want ? want : "");
            return;
        }
    }
    if (rt->body == BODY_IMAGES && parse_topk(r) < 0) {
        r->route = rt;
        return;
    }
    if (rt->body != BODY_NONE && parse_orient(r) < 0) {
        r->route = rt;
        return;
    }
    if (rt == &r_embed && parse_layer(r) < 0) {
        r->route = rt;
        return;
    }
    if (rt == &r_inspect && parse_inspect(r) < 0) {
        r->route = rt;
        return;
    }
    r->route = rt;
}

/* ---- /v1/classify and /v1/embed ---- */


void v1_images_end(struct request *r)
{
    int crop = r->model->pp->crop;
    if (r->mp) {
        if (r->n_uploads == 0) {
            reply_error(r, SRV_ERR_NO_FILE,
                        "multipart body without a file part (curl -F img=@photo.jpg)");
            return;
        }
        r->images = calloc((size_t)r->n_uploads, sizeof *r->images);
        if (!r->images) {
            reply_error(r, SRV_ERR_NOMEM, "out of memory");
            return;
        }
        for (int i = 0; i < r->n_uploads; i++) {
            if (r->uploads[i].len == 0) {
                reply_error(r, SRV_ERR_EMPTY_BODY, "file part '%s' is empty", r->uploads[i].name);
                return;
            }
            r->images[i].data = r->uploads[i].data;
            r->images[i].len = r->uploads[i].len;
            r->images[i].h = r->images[i].w = crop;
        }
        request_submit(r, r->n_uploads);
        return;
    }
    if (r->body_len == 0) {
        reply_error(r, SRV_ERR_EMPTY_BODY,
                    "empty body: send an image (curl --data-binary @photo.jpg)");
        return;
    }
    r->images = calloc(1, sizeof *r->images);
    if (!r->images) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return;
    }
    r->images[0].data = r->body;
    r->images[0].len = r->body_len;
    r->images[0].h = r->images[0].w = crop;
    request_submit(r, 1);
}

/* The first failed image's error as the reply; returns 1 if there was one. */
static int reply_failure(struct request *r)
{
    for (int i = 0; i < r->job.n; i++) {
        const struct infer_image *it = &r->images[i];
        if (it->status == SRV_OK)
            continue;
        if (r->mp)
            reply_error(r, it->status, "%s: %s", r->uploads[i].name, it->err);
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
    if (reply_failure(r))
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", r->model->name);
    if (!classify && r->layer >= 0) {
        int shape[3];
        rn_model_layer_shape(r->model->m, r->layer, r->images[0].h, r->images[0].w, shape);
        cJSON_AddStringToObject(o, "layer", rn_model_layer_name(r->model->m, r->layer));
        cJSON_AddStringToObject(o, "pool", r->pool == RN_POOL_AVG ? "avg" : "none");
        /* the array's layout: channels, or channels x height x width */
        cJSON_AddItemToObject(o, "shape", cJSON_CreateIntArray(shape, r->pool == RN_POOL_AVG ? 1 : 3));
    }
    cJSON *results = r->mp ? cJSON_AddArrayToObject(o, "results") : NULL;
    for (int i = 0; i < r->job.n; i++) {
        struct infer_image *it = &r->images[i];
        cJSON *v = classify ? predictions(r->model, it->logits, r->topk)
                   : r->layer >= 0 ? floats(it->layer_out, r->layer_floats)
                                   : floats(it->embed, (size_t)r->model->info->embed_dim);
        if (!v) {
            cJSON_Delete(o);
            reply_error(r, SRV_ERR_NOMEM, "out of memory building the reply");
            return;
        }
        cJSON *dst = o;
        if (results) {
            dst = cJSON_CreateObject();
            cJSON_AddItemToArray(results, dst);
            cJSON_AddStringToObject(dst, "name", r->uploads[i].name);
        }
        if (!classify)
            cJSON_AddNumberToObject(dst, "dim", r->layer >= 0 ? (double)r->layer_floats
                                                              : r->model->info->embed_dim);
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

/* ---- /v1/inspect ---- */

void v1_inspect_end(struct request *r)
{
    if (r->mp && r->n_uploads > 1) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "%d file parts: an inspection takes one image (send one per request)",
                    r->n_uploads);
        return;
    }
    v1_images_end(r);
}

void v1_inspect_finish(struct request *r)
{
    if (reply_failure(r))
        return;
    struct infer_image *it = &r->images[0];
    if (it->png) {
        void *png = it->png;
        it->png = NULL; /* the response frees it */
        reply_buffer(r, 200, "image/png", png, it->png_len, NULL, NULL);
        return;
    }
    char *s = rn_inspection_json(r->model->m, it->inspection, r->topk, r->topk);
    /* {"model":..., ["name":...,] "input_shape":[...], then the inspection's fields} */
    cJSON *head = cJSON_CreateObject();
    cJSON_AddStringToObject(head, "model", r->model->name);
    if (r->mp)
        cJSON_AddStringToObject(head, "name", r->uploads[0].name);
    int shape[3] = {3, it->h, it->w};
    cJSON_AddItemToObject(head, "input_shape", cJSON_CreateIntArray(shape, 3));
    char *h = cJSON_PrintUnformatted(head);
    cJSON_Delete(head);
    size_t hn = h ? strlen(h) : 0, sn = s ? strlen(s) : 0;
    char *body = h && s && hn >= 2 && sn >= 2 ? malloc(hn + sn + 2) : NULL;
    if (!body) {
        free(h);
        free(s);
        reply_error(r, SRV_ERR_NOMEM, "out of memory building the reply");
        return;
    }
    memcpy(body, h, hn - 1); /* without its closing brace */
    body[hn - 1] = ',';
    memcpy(body + hn, s + 1, sn - 1); /* without the opening one */
    body[hn + sn - 1] = '\n';
    body[hn + sn] = '\0';
    free(h);
    free(s);
    reply_buffer(r, 200, "application/json", body, hn + sn, NULL, NULL);
}

/* ---- GET /v1/models, /metrics, /openapi.json ---- */

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

void metrics_page(struct request *r)
{
    size_t len;
    char *page = metrics_render(&len);
    if (!page) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory rendering metrics");
        return;
    }
    reply_buffer(r, 200, "text/plain; version=0.0.4; charset=utf-8", page, len, NULL, NULL);
}

/* GET /, /ui/app.js, /ui/style.css: the inspection page. Everything it
 * loads is its own (Content-Security-Policy 'self'); images it shows are
 * the user's photo and the heat maps, as blob: URLs. */
void page_asset(struct request *r)
{
    const struct page_asset *a = page_assets;
    while (a->path && strcmp(a->path, r->path))
        a++;
    if (!a->path) {
        reply_error(r, SRV_ERR_NOT_FOUND, "no route %.200s", r->path);
        return;
    }
    size_t len = (size_t)(a->end - a->start);
    char *body = malloc(len ? len : 1);
    if (!body) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return;
    }
    memcpy(body, a->start, len);
    reply_buffer(r, 200, a->type, body, len, "Content-Security-Policy",
                 "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; "
                 "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    if (r->resp) {
        MHD_add_response_header(r->resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r->resp, "Cache-Control", "no-cache");
    }
}

void openapi_page(struct request *r)
{
    size_t len = (size_t)(openapi_json_end - openapi_json);
    char *page = malloc(len);
    if (!page) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return;
    }
    memcpy(page, openapi_json, len);
    reply_buffer(r, 200, "application/json", page, len, NULL, NULL);
}
