/* The routing table: which handler serves which method and path. */
#ifndef RESNETD_ROUTES_H
#define RESNETD_ROUTES_H

#include "http.h"

enum body_kind {
    BODY_NONE = 0,  /* GET routes */
    BODY_IMAGES,    /* one raw image, or multipart/form-data with image files */
    BODY_RAW,       /* anything, kept whole (v2 JSON, binary extension) */
};

struct route {
    const char *method;
    int metric;                        /* enum metric_route */
    int body;                          /* enum body_kind */
    void (*end)(struct request *r);    /* body complete: reply or request_submit */
    void (*finish)(struct request *r); /* the job is done: reply */
};

/* Find r's route from its method and url, take the model reference the path
 * or the query names, and parse the query. On a miss replies 404/405/400 and
 * leaves r->route NULL. */
void routes_dispatch(struct request *r, const char *url);

/* The route serving path url (no query), or NULL; a model named in a
 * /v2/models/NAME path goes to name (namelen bytes; "" otherwise). */
const struct route *routes_match(const char *url, char *name, size_t namelen);

/* The topk query value: decimal digits of a number of at least 1 into *k,
 * those past INT_MAX read as INT_MAX (the caller cuts it to the number of
 * classes). Returns 0, or -1 (and *k untouched) when s is anything else. */
int routes_parse_topk(const char *s, int *k);

/* Model names, in URLs and --model alike: 1 to ROUTES_MAX_NAME characters of
 * A-Z a-z 0-9 . _ - (so never a NUL, a '/' or a '%'). */
#define ROUTES_MAX_NAME 63
int routes_valid_name(const char *s);

/* The route of unknown paths, for metrics. */
extern const struct route route_not_found;

/* v1 handlers (routes.c) */
void v1_images_end(struct request *r);
void v1_classify_finish(struct request *r);
void v1_inspect_end(struct request *r);
void v1_inspect_finish(struct request *r);
void page_asset(struct request *r);
void v1_embed_finish(struct request *r);
void v1_models(struct request *r);
void metrics_page(struct request *r);
void openapi_page(struct request *r);

/* KServe v2 handlers (kserve.c) */
void v2_server_meta(struct request *r);
void v2_live(struct request *r);
void v2_ready(struct request *r);
void v2_model_meta(struct request *r);
void v2_model_ready(struct request *r);
void v2_infer_end(struct request *r);
void v2_infer_finish(struct request *r);

#endif
