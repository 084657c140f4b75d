/* The transport's insides, shared by its files only: http.c (the
 * libmicrohttpd callbacks, a request's life, suspend and resume),
 * http_body.c (framing, the body and its cap, multipart) and request.c (the
 * request API over this state). Routes never include it: they see a request
 * through request.h. */
#ifndef RESNETD_HTTP_INTERNAL_H
#define RESNETD_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "http.h"
#include "multipart.h"
#include "request.h"
#include "trace.h"

/* The transport's state of one request: made on libmicrohttpd's first
 * callback, freed only in its request-completed callback (also when the
 * client goes away mid-request). What a route keeps of its own (its query,
 * its model, its job) is its state, which this one holds and frees. */
struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    const struct route *route;
    char *path;             /* as sent, without the query: request_path */
    char method[16];
    char log_path[256];     /* the path as the access log shows it */
    char client[64];
    char model_name[64];    /* for the access log (request_log_model); "" when none */
    int64_t t_start_ns;
    int64_t t_read_ns;      /* the request read and parsed (by its route): end of the
                               read phase; 0 until then */
    int64_t t_done_ns;      /* its job done (a worker's on_job_done); 0 without one */
    char request_id[TRACE_ID_MAX + 1]; /* the client's X-Request-Id, or one made up */
    char request_id_note[128]; /* why the client's was replaced; "" when it was not */
    struct traceparent trace;  /* the client's traceparent, when has_trace */
    int has_trace;
    char trace_note[128];   /* why a traceparent sent was ignored; "" otherwise */
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

    /* the route's own state, freed with the request */
    void *state;
    void (*free_state)(void *);

    /* inference */
    struct infer_job *job;  /* the route's (in its state), once submitted */
    pthread_mutex_t lock;   /* orders suspend against the worker's resume */
    int submitted, suspended, job_done;

    /* reply */
    struct MHD_Response *resp; /* decided, not yet queued */
    int status, queued;
    int reply_lost;         /* one was decided but could not be made (out of
                               memory): the connection is closed instead */
    size_t bytes_out;
    char error[256];        /* an error reply's message, for the access log */
};

/* Whether r's reply is decided (made, queued, or lost). */
static inline int request_replied(const struct request *r)
{
    return r->resp || r->queued || r->reply_lost;
}

/* How the body is framed (RFC 9112 6): r->has_body, and a 400 for framings
 * a proxy in front could read differently from us. */
void http_check_framing(struct request *r);
/* Headers are in (route found, body expected): refuse by the declared
 * length, the queue and the media type; set up the multipart parser. */
void http_body_begin(struct request *r);
/* The next n bytes of the body: appended, or fed to the multipart parser;
 * past the cap or on a malformed part the reply is decided and the rest is
 * read and dropped. */
void http_body_data(struct request *r, const char *data, size_t n);
/* The body is complete: a truncated multipart body is a 400. */
void http_body_end(struct request *r);

/* libmicrohttpd's refusal of a Content-Length it cannot read, made ours
 * (http_early.c): its URI log, connection notice and logger callbacks, and
 * on_access's word that a connection reached it. */
void *http_early_uri(void *cls, const char *uri, struct MHD_Connection *c);
void http_early_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
void http_early_log(void *cls, const char *fmt, va_list ap);
void http_early_forget(struct MHD_Connection *c);

/* Whether r's API key (Authorization: Bearer, X-API-Key) opens one of the
 * groups of mask (auth.h's auth_check): 0, or -1 after a 401 (with
 * WWW-Authenticate) or a 403, counted in the metrics (http_auth.c). */
int http_authorize(struct request *r, unsigned mask);
/* The groups whose key lets a request to rt past its headers. */
unsigned http_route_auth_mask(const struct route *rt);

/* The client's address of connection c as text (IPv4 or IPv6), "-" when
 * unknown: the access log's client. */
void http_client_address(struct MHD_Connection *c, char *buf, size_t len);

#endif
