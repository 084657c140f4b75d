/* The request API a route sees: its path, query, headers and body (whole,
 * or as the files of a multipart upload), a state of its own, its reply,
 * and handing a job to the batcher. The connection behind a request is the
 * transport's (http.c): routes never see it. Also the route table the
 * transport is given (http_start), since a route is what it is made of.
 *
 * Handlers run on libmicrohttpd's threads, one call at a time per request,
 * never on a worker's: they may reply at any call, and the first reply
 * decided is the one sent. */
#ifndef RESNETD_REQUEST_H
#define RESNETD_REQUEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "errors.h"

struct request;   /* one HTTP request, created and freed by the transport */
struct infer_job; /* job.h */

/* ---- routes ---- */

enum body_kind {
    BODY_NONE = 0,  /* GET routes: a body sent anyway is read and dropped */
    BODY_IMAGES,    /* one raw image, or multipart/form-data with image files */
    BODY_RAW,       /* anything, kept whole (v2 JSON, binary extension) */
};

/* One route: a method and a path, and the handlers the transport calls. */
struct route {
    const char *method;                 /* GET routes also answer HEAD */
    const char *path;                   /* the exact path, or NULL: match() decides */
    int (*match)(const char *path);     /* 1 when path (no query) is this route's */
    int metric;                         /* enum metric_route: its requests_total label */
    enum body_kind body_kind;
    void (*begin)(struct request *r);   /* optional; headers in, no body read yet:
                                           read the query, take the model; may reply
                                           (a refusal: the body is then not read) */
    void (*end)(struct request *r);     /* the body is complete (a route without one:
                                           at once): reply, or request_submit */
    void (*finish)(struct request *r);  /* the submitted job is done: reply */
    int auth;                           /* enum auth_group (auth.h) whose API key the
                                           transport asks for, from the headers */
    int auth_also;                      /* 0, or a group the request may need instead,
                                           known only from its query or body: the
                                           headers then pass with a key of either, and
                                           the route calls request_authorize with the
                                           one it needs */
};

/* The routes a server serves, in the order they are tried; one path has one
 * route (the others answer 405). */
struct route_table {
    const struct route *routes;
    int n;
    int unmatched_metric;               /* enum metric_route of paths none serves */
};

/* The first route of t whose path is path (no query), or NULL. */
const struct route *route_find(const struct route_table *t, const char *path);

/* ---- what the request holds ---- */

/* A query parameter (unescaped; "%00" kept as sent), or NULL. */
const char *request_arg(struct request *r, const char *key);
/* A request header, or NULL. */
const char *request_header(struct request *r, const char *key);
/* The path as sent, unescaped, without the query. */
const char *request_path(const struct request *r);

/* The body of a route that takes one, once it is complete: *len bytes,
 * NUL-terminated; NULL (and 0) when it is empty or multipart. The request
 * owns it: it lives until the request is freed. */
const char *request_body(const struct request *r, size_t *len);

/* An uploaded file of a multipart/form-data body, owned by the request. */
struct upload {
    char name[256]; /* its filename, or the field name */
    char *data;
    size_t len;
    size_t cap;     /* the transport's */
};

/* Whether the body came as multipart/form-data; its files (parts with a
 * filename; plain fields are dropped) are then uploads 0..n-1. */
int request_multipart(const struct request *r);
int request_n_uploads(const struct request *r);
const struct upload *request_upload(const struct request *r, int i);

/* The daemon's settings. */
const struct config *request_config(const struct request *r);
/* Whether the server is shutting down (SIGTERM seen): not ready. */
int request_draining(const struct request *r);

/* The model the access log line names (copied; at most 63 characters). */
void request_log_model(struct request *r, const char *name);

/* The route's own state: set once, usually by begin(); free_state(state)
 * runs when the request is freed, which is after the last handler call and
 * after any job submitted is done, also when the client went away. */
void request_set_state(struct request *r, void *state, void (*free_state)(void *));
void *request_state(const struct request *r);

/* Whether the request's API key opens group (enum auth_group): 0, or -1
 * after a 401 (no key) or 403 (a key of no use here) reply. For routes with
 * an auth_also group, once they know which of the two they serve. */
int request_authorize(struct request *r, int group);

/* ---- the reply ---- */

/* Reply with JSON; takes ownership of body. */
void reply_json(struct request *r, int status, cJSON *body);
/* Reply with an error JSON {"error": message, "code": ...}; 503s get Retry-After. */
void reply_error(struct request *r, enum srv_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reply with a malloc'd buffer (ownership taken, also on failure). header and
 * value may be NULL. */
void reply_buffer(struct request *r, int status, const char *content_type, char *data,
                  size_t len, const char *header, const char *value);
/* Add a header to the reply decided, if one is. */
void reply_header(struct request *r, const char *name, const char *value);

/* The JSON number for a float: shortest text that reads back as the same float. */
cJSON *json_float(float v);

/* ---- inference ---- */

/* Queue job (job.h: its images, model and outputs set; it must live in the
 * route's state until the request is freed) and suspend the connection
 * until every image is done; the route's finish() then runs. On failure
 * (queue full, shutting down, ...) the error reply is made here and
 * finish() never runs. Call from end() only. */
void request_submit(struct request *r, struct infer_job *job);

#endif
