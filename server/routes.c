/* The route table: which handlers serve which method and path, as data for
 * the transport (http_start), and the checks every API makes the same way:
 * model names, topk, orient. The handlers live with their API: v1.c,
 * kserve.c, page.c. */
#include "routes.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "kserve.h"
#include "metrics.h"
#include "page.h"
#include "v1.h"

/* /v2/models/NAME[/versions/V][/ready|/infer] */
int routes_v2_path(const char *url, char *name, size_t namelen)
{
    static const char prefix[] = "/v2/models/";
    if (strncmp(url, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *p = url + sizeof prefix - 1;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= namelen)
        return 0;
    memcpy(name, p, n);
    name[n] = '\0';
    p += n;
    if (strncmp(p, "/versions/", 10) == 0) {
        p += 10;
        size_t v = strcspn(p, "/");
        if (v == 0)
            return 0;
        p += v;
    }
    if (*p == '\0')
        return ROUTES_V2_MODEL;
    if (strcmp(p, "/ready") == 0)
        return ROUTES_V2_READY;
    if (strcmp(p, "/infer") == 0)
        return ROUTES_V2_INFER;
    return 0;
}

int routes_v2_version(const char *url, char *ver, size_t verlen)
{
    static const char prefix[] = "/v2/models/";
    if (strncmp(url, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *p = url + sizeof prefix - 1;
    p += strcspn(p, "/");
    if (strncmp(p, "/versions/", 10) != 0)
        return 0;
    p += 10;
    snprintf(ver, verlen, "%.*s", (int)strcspn(p, "/"), p);
    return 1;
}

/* The matchers of the three /v2/models/NAME routes; NAME as the handlers
 * read it (256 bytes at most). */
static int v2_path_is(const char *url, int which)
{
    char name[256];
    return routes_v2_path(url, name, sizeof name) == which;
}

static int is_v2_model(const char *url)
{
    return v2_path_is(url, ROUTES_V2_MODEL);
}

static int is_v2_model_ready(const char *url)
{
    return v2_path_is(url, ROUTES_V2_READY);
}

static int is_v2_infer(const char *url)
{
    return v2_path_is(url, ROUTES_V2_INFER);
}

/* The API key groups (auth.h): health and readiness are always open; /v1/embed
 * and v2 infer serve the features group instead when asked for a layer, which
 * embed reads from its query (v1_embed_begin) and infer from its body
 * (v2_infer_end). */
static const struct route table[] = {
    /* method, path, match, metric, body_kind, begin, end, finish, auth, auth_also */
    {"POST", "/v1/classify", NULL, MR_CLASSIFY, BODY_IMAGES, v1_classify_begin, v1_images_end,
     v1_classify_finish, AUTH_INFER, 0},
    {"POST", "/v1/embed", NULL, MR_EMBED, BODY_IMAGES, v1_embed_begin, v1_images_end,
     v1_embed_finish, AUTH_INFER, AUTH_FEATURES},
    {"GET", "/v1/models", NULL, MR_MODELS, BODY_NONE, NULL, v1_models, NULL, AUTH_METADATA, 0},
    {"GET", "/metrics", NULL, MR_METRICS, BODY_NONE, NULL, metrics_page, NULL, AUTH_METRICS, 0},
    {"GET", "/v2", NULL, MR_V2_META, BODY_NONE, NULL, v2_server_meta, NULL, AUTH_METADATA, 0},
    {"GET", "/v2/health/live", NULL, MR_V2_HEALTH, BODY_NONE, NULL, v2_live, NULL, AUTH_OPEN, 0},
    {"GET", "/v2/health/ready", NULL, MR_V2_HEALTH, BODY_NONE, NULL, v2_ready, NULL, AUTH_OPEN, 0},
    {"GET", "/openapi.json", NULL, MR_OPENAPI, BODY_NONE, NULL, openapi_page, NULL, AUTH_METADATA,
     0},
    {"POST", "/v1/inspect", NULL, MR_INSPECT, BODY_IMAGES, v1_inspect_begin, v1_inspect_end,
     v1_inspect_finish, AUTH_INSPECT, 0},
    {"GET", "/", NULL, MR_PAGE, BODY_NONE, NULL, page_asset, NULL, AUTH_INSPECT, 0},
    {"GET", "/ui/app.js", NULL, MR_PAGE, BODY_NONE, NULL, page_asset, NULL, AUTH_INSPECT, 0},
    {"GET", "/ui/style.css", NULL, MR_PAGE, BODY_NONE, NULL, page_asset, NULL, AUTH_INSPECT, 0},
    {"GET", "/ui/icon.svg", NULL, MR_PAGE, BODY_NONE, NULL, page_asset, NULL, AUTH_INSPECT, 0},
    {"GET", NULL, is_v2_model, MR_V2_MODEL, BODY_NONE, v2_model_begin, v2_model_meta, NULL,
     AUTH_METADATA, 0},
    {"GET", NULL, is_v2_model_ready, MR_V2_MODEL, BODY_NONE, v2_model_begin, v2_model_ready,
     NULL, AUTH_OPEN, 0},
    {"POST", NULL, is_v2_infer, MR_V2_INFER, BODY_RAW, v2_infer_begin, v2_infer_end,
     v2_infer_finish, AUTH_INFER, AUTH_FEATURES},
};

const struct route_table routes_table = {table, (int)(sizeof table / sizeof table[0]), MR_OTHER};

const struct route *routes_match(const char *url, char *name, size_t namelen)
{
    name[0] = '\0';
    const struct route *rt = route_find(&routes_table, url);
    if (rt && rt->match && !routes_v2_path(url, name, namelen))
        return NULL; /* NAME longer than the caller's buffer */
    return rt;
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

int routes_valid_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= ROUTES_MAX_NAME &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

struct model *routes_take_model(struct request *r, const char *name)
{
    if (name && !routes_valid_name(name)) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "model name '%.100s' is invalid: 1 to %d of A-Z a-z 0-9 . _ -", name,
                    ROUTES_MAX_NAME);
        return NULL;
    }
    struct model *m = models_acquire(name);
    if (!m) {
        reply_error(r, SRV_ERR_NO_MODEL, "no model named '%.100s' (see GET /v1/models)",
                    name ? name : "");
        return NULL;
    }
    request_log_model(r, m->name);
    return m;
}

/* exif turns each image upright by its EXIF orientation first, as PIL's
 * ImageOps.exif_transpose; none (the default) decodes it as stored, as the
 * training pipeline did. */
int routes_parse_orient(struct request *r, int *exif_orient)
{
    const char *s = request_arg(r, "orient");
    if (!s || !strcmp(s, "none"))
        return 0;
    if (!strcmp(s, "exif")) {
        *exif_orient = 1;
        return 0;
    }
    reply_error(r, SRV_ERR_BAD_REQUEST, "orient=%.40s: expected exif or none", s);
    return -1;
}

void routes_submit(struct request *r, struct infer_job *job)
{
    if (infer_job_outputs(job) < 0) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory for %d images", job->n);
        return;
    }
    request_submit(r, job);
}
