/* The HTTP front end on libmicrohttpd: per-request state, incremental body
 * reading with a hard cap, suspend/resume around the batcher, and the reply
 * helpers every route uses. Routes live in routes.c and kserve.c. */
#ifndef RESNETD_HTTP_H
#define RESNETD_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "batcher.h"
#include "config.h"
#include "errors.h"
#include "multipart.h"

struct server {
    const struct config *cfg;
    batcher *batcher;
    struct MHD_Daemon *daemon;
    atomic_int draining; /* SIGTERM seen: not ready, new requests get 503 */
    atomic_int active;   /* requests between their first callback and completion */
};

/* An uploaded file of a multipart body. */
struct upload {
    char name[256]; /* filename, or the field name */
    char *data;
    size_t len, cap;
};

struct route;

struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    const struct route *route;
    char method[16];
    char path[256];
    char client[64];
    int64_t t_start_ns;
    int late;               /* arrived while draining */
    int has_body;           /* Content-Length other than 0, or Transfer-Encoding */

    /* body, read incrementally, never more than cfg->max_body_bytes */
    int64_t body_seen;
    char *body;             /* raw bodies (images, v2 JSON); NUL-terminated */
    size_t body_len, body_cap;
    mp_parser *mp;          /* multipart bodies go here instead */
    struct upload *uploads;
    int n_uploads, uploads_cap, in_upload;
    int body_complete;      /* the whole body was read */

    /* query */
    struct model *model;    /* referenced; released when the request is freed */
    int topk;
    int layer, pool;        /* /v1/embed?layer=&pool=: rn_model_layer_find, enum rn_pooling;
                               layer -1: the logits and the embedding */
    int inspect, lesions, png_class; /* /v1/inspect?lesions=&format=png&class= (struct infer_job) */
    int exif_orient;        /* ?orient=exif on any route that decodes images */

    /* inference */
    struct infer_job job;
    struct infer_image *images;
    float *outputs;         /* per image: n_classes logits then embed_dim floats, or
                               the layer's floats (layer_floats) */
    size_t layer_floats;
    pthread_mutex_t lock;   /* orders suspend against the worker's resume */
    int submitted, suspended, job_done;
    void *route_state;      /* owned by the route (kserve request); freed by it */
    void (*free_state)(void *);

    /* reply */
    struct MHD_Response *resp;
    int status, queued;
    size_t bytes_out;
    char error[256];
};

/* Start listening on cfg's address. Returns 0, or -1 with a message. */
int http_start(struct server *s, char *err, size_t errlen);
/* Stop accepting connections (SIGTERM); requests in flight go on. */
void http_quiesce(struct server *s);
/* Wait until no request is in flight, at most timeout_ms: 0 idle, -1 not. */
int http_wait_idle(struct server *s, int timeout_ms);
void http_stop(struct server *s);

/* ---- for routes: replies (call from the access handler only) ---- */

/* Reply with JSON; takes ownership of body. */
void reply_json(struct request *r, int status, cJSON *body);
/* Reply with an error JSON {"error": message, "code": ...}; 503s get Retry-After. */
void reply_error(struct request *r, enum srv_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reply with a malloc'd buffer (ownership taken). header/value may be NULL. */
void reply_buffer(struct request *r, int status, const char *content_type, char *data,
                  size_t len, const char *header, const char *value);

/* Queue r->images[0..n) for inference (outputs allocated here) and suspend
 * the connection until they are done; the route's finish() then runs. On
 * failure (queue full, ...) the error reply is made here. */
void request_submit(struct request *r, int n);

/* A query parameter, or NULL. */
const char *request_arg(struct request *r, const char *key);
/* A request header, or NULL. */
const char *request_header(struct request *r, const char *key);

/* The JSON number for a float: shortest text that reads back as the same float. */
cJSON *json_float(float v);

#endif
