/* The HTTP transport, and the request API (request.h) over its per-request
 * state. It knows no route: it finds the request's in the table it was given
 * and calls that route's handlers. libmicrohttpd calls
 * on_access several times per request: first with the headers (we check the
 * framing, find the route, let it read its query (begin), check
 * Content-Length, Content-Type and the queue, and refuse at once what will be
 * refused), then with each piece of the body (appended or fed to the
 * multipart parser; past the cap or on a malformed part the reply is decided
 * and the rest of the body dropped), then with no data once the body is
 * complete (the route's end() parses it and either answers or queues a job
 * and suspends the connection), and once more after a worker resumes the
 * connection (the route's finish() builds the reply). Replies are queued on
 * that last call, when the connection can stay open; only refusals of a
 * request with a body go out with the headers, closing it. Per-request state is created on
 * the first call and freed only in on_completed, which libmicrohttpd also
 * calls when a client goes away mid-request. */
#include "http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "multipart.h"

/* The transport's state of one request. Routes see it only through the
 * request API (request.h); what a route keeps of its own (its query, its
 * model, its job) is its state, which this one owns and frees. */
struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    const struct route *route;
    char *url;              /* the path as sent, whole: request_path */
    char method[16];
    char path[256];         /* the path for the access log */
    char client[64];
    char model[64];         /* for the access log: request_log_model, "" when none */
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

    /* the route's own state, freed with the request */
    void *state;
    void (*free_state)(void *);

    /* inference */
    struct infer_job *job;  /* the route's (in its state), once submitted */
    pthread_mutex_t lock;   /* orders suspend against the worker's resume */
    int submitted, suspended, job_done;

    /* reply */
    struct MHD_Response *resp;
    int status, queued;
    size_t bytes_out;
    char error[256];
};

/* ---- replies ---- */

static void set_reply(struct request *r, int status, struct MHD_Response *resp, size_t len)
{
    if (!resp)
        return;
    if (r->resp || r->queued) { /* the first reply wins */
        MHD_destroy_response(resp);
        return;
    }
    r->resp = resp;
    r->status = status;
    r->bytes_out = len;
}

void reply_buffer(struct request *r, int status, const char *content_type, char *data,
                  size_t len, const char *header, const char *value)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return; /* on_access returns MHD_NO: the connection is closed */
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (header)
        MHD_add_response_header(resp, header, value);
    set_reply(r, status, resp, len);
}

void reply_json(struct request *r, int status, cJSON *body)
{
    char *s = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!s) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory building the reply");
        return;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2); /* a final newline for people using curl */
    if (t) {
        t[n++] = '\n';
        t[n] = '\0';
        s = t;
    }
    reply_buffer(r, status, "application/json", s, n, NULL, NULL);
}

void reply_error(struct request *r, enum srv_err e, const char *fmt, ...)
{
    if (r->resp || r->queued)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    char *s = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "error", r->error) &&
        cJSON_AddStringToObject(o, "code", srv_err_code(e)))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    size_t n = 0;
    if (s) {
        n = strlen(s);
        char *t = realloc(s, n + 2);
        if (t) {
            t[n++] = '\n';
            t[n] = '\0';
            s = t;
        }
    } else {
        static const char oom[] = "{\"error\":\"out of memory\",\"code\":\"out_of_memory\"}\n";
        s = strdup(oom);
        n = s ? strlen(s) : 0;
        if (!s)
            return;
    }
    reply_buffer(r, srv_err_http(e), "application/json", s, n,
                 srv_err_retry(e) ? "Retry-After" : NULL, "1");
}

void reply_header(struct request *r, const char *name, const char *value)
{
    if (r->resp)
        MHD_add_response_header(r->resp, name, value);
}

cJSON *json_float(float v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)v);
    return cJSON_CreateNumber(strtod(buf, NULL));
}

const char *request_arg(struct request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *request_header(struct request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}

const char *request_path(const struct request *r)
{
    return r->url;
}

const char *request_body(const struct request *r, size_t *len)
{
    *len = r->body_len;
    return r->body;
}

int request_multipart(const struct request *r)
{
    return r->mp != NULL;
}

int request_n_uploads(const struct request *r)
{
    return r->n_uploads;
}

const struct upload *request_upload(const struct request *r, int i)
{
    return &r->uploads[i];
}

const struct config *request_config(const struct request *r)
{
    return r->srv->cfg;
}

int request_draining(const struct request *r)
{
    return atomic_load(&r->srv->draining);
}

void request_log_model(struct request *r, const char *name)
{
    snprintf(r->model, sizeof r->model, "%s", name);
}

void request_set_state(struct request *r, void *state, void (*free_state)(void *))
{
    r->state = state;
    r->free_state = free_state;
}

void *request_state(const struct request *r)
{
    return r->state;
}

/* ---- request life ---- */

static struct request *request_new(struct server *s, struct MHD_Connection *c, const char *url,
                                   const char *method)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->url = strdup(url);
    if (!r->url) {
        free(r);
        return NULL;
    }
    r->srv = s;
    r->conn = c;
    r->t_start_ns = now_ns();
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    snprintf(r->client, sizeof r->client, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client,
                      sizeof r->client);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client,
                      sizeof r->client);
    }
    pthread_mutex_init(&r->lock, NULL);
    r->late = atomic_load(&s->draining);
    atomic_fetch_add(&s->active, 1);
    return r;
}

static void request_free(struct request *r)
{
    /* A worker may still be unlocking after its resume call. */
    pthread_mutex_lock(&r->lock);
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_destroy(&r->lock);
    if (r->free_state)
        r->free_state(r->state); /* with the job, whose images point into the body */
    if (r->resp)
        MHD_destroy_response(r->resp);
    mp_free(r->mp);
    for (int i = 0; i < r->n_uploads; i++)
        free(r->uploads[i].data);
    free(r->uploads);
    free(r->body);
    free(r->url);
    atomic_fetch_sub(&r->srv->active, 1);
    free(r);
}

/* ---- jobs ---- */

static void on_job_done(struct infer_job *job)
{
    struct request *r = job->user;
    pthread_mutex_lock(&r->lock);
    r->job_done = 1;
    if (r->suspended)
        MHD_resume_connection(r->conn);
    pthread_mutex_unlock(&r->lock);
}

/* Whether the peer of a suspended connection has closed it: a read-side
 * peek that never consumes data, so the connection is untouched otherwise. */
static int client_gone(struct infer_job *job)
{
    struct request *r = job->user;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0;
}

void request_submit(struct request *r, struct infer_job *job)
{
    const struct config *cfg = r->srv->cfg;
    int n = job->n;
    job->deadline_ns = now_ns() + (int64_t)cfg->request_timeout_ms * 1000000;
    job->done = on_job_done;
    job->gone = client_gone;
    job->user = r;
    r->job = job;

    pthread_mutex_lock(&r->lock);
    enum srv_err e = batcher_submit(r->srv->batcher, job);
    if (e != SRV_OK) {
        pthread_mutex_unlock(&r->lock);
        if (e == SRV_ERR_QUEUE_FULL)
            reply_error(r, e, "queue full (%d images waiting at most), retry later",
                        cfg->max_queue);
        else if (e == SRV_ERR_TOO_MANY_IMAGES)
            reply_error(r, e, "%d images in one request, at most %d", n, cfg->max_queue);
        else
            reply_error(r, e, "server shutting down");
        return;
    }
    r->submitted = 1;
    if (!r->job_done) {
        MHD_suspend_connection(r->conn);
        r->suspended = 1;
    }
    int done = r->job_done;
    pthread_mutex_unlock(&r->lock);
    if (done)
        r->route->finish(r);
}

/* ---- body ---- */

static int on_part_begin(void *user, const struct mp_part *part)
{
    struct request *r = user;
    r->in_upload = part->has_filename;
    if (!r->in_upload)
        return 0; /* plain form fields are ignored */
    if (r->n_uploads == r->uploads_cap) {
        int cap = r->uploads_cap ? r->uploads_cap * 2 : 4;
        struct upload *u = realloc(r->uploads, sizeof *u * (size_t)cap);
        if (!u)
            return 1;
        r->uploads = u;
        r->uploads_cap = cap;
    }
    struct upload *u = &r->uploads[r->n_uploads++];
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", part->filename[0] ? part->filename : part->name);
    return 0;
}

static int append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 65536;
        while (c < *len + n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int on_part_data(void *user, const char *data, size_t len)
{
    struct request *r = user;
    if (!r->in_upload)
        return 0;
    struct upload *u = &r->uploads[r->n_uploads - 1];
    return append(&u->data, &u->len, &u->cap, data, len) < 0;
}

static int on_part_end(void *user)
{
    ((struct request *)user)->in_upload = 0;
    return 0;
}

static const struct mp_callbacks mp_cb = {on_part_begin, on_part_data, on_part_end};

/* Headers are in: check the declared length, the queue and the media type. */
static void body_begin(struct request *r)
{
    const struct config *cfg = r->srv->cfg;
    const char *cl = request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoll(cl, NULL, 10) > cfg->max_body_bytes) {
        reply_error(r, SRV_ERR_TOO_LARGE, "body of %s bytes is over the limit of %lld bytes", cl,
                    (long long)cfg->max_body_bytes);
        return;
    }
    /* A request holds at least one image: with the queue full it would get
     * 503 after its upload; it gets it now instead. */
    if (batcher_queued(r->srv->batcher) >= cfg->max_queue) {
        reply_error(r, SRV_ERR_QUEUE_FULL, "queue full (%d images waiting at most), retry later",
                    cfg->max_queue);
        return;
    }
    if (r->route->body_kind != BODY_IMAGES)
        return;
    const char *ct = request_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return;
    char boundary[MP_MAX_BOUNDARY + 1];
    int rc = mp_boundary(ct, boundary);
    if (rc == -2) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "multipart/form-data without a valid boundary parameter");
    } else if (rc == 0) {
        r->mp = mp_new(boundary, &mp_cb, r);
        if (!r->mp)
            reply_error(r, SRV_ERR_NOMEM, "out of memory");
    } else if (strncasecmp(ct, "multipart/", 10) == 0 || strncasecmp(ct, "text/", 5) == 0 ||
               strncasecmp(ct, "application/json", 16) == 0 ||
               strncasecmp(ct, "application/xml", 15) == 0) {
        reply_error(r, SRV_ERR_MEDIA_TYPE,
                    "Content-Type %.100s: send an image as the body, or multipart/form-data",
                    ct);
    }
}

static void body_data(struct request *r, const char *data, size_t n)
{
    const struct config *cfg = r->srv->cfg;
    r->body_seen += (int64_t)n;
    if (r->resp)
        return; /* refused mid-body: the rest is read and dropped (see on_access) */
    if (r->body_seen > cfg->max_body_bytes) {
        reply_error(r, SRV_ERR_TOO_LARGE, "body over the limit of %lld bytes",
                    (long long)cfg->max_body_bytes);
        return;
    }
    if (!r->route->body_kind)
        return; /* a body sent to a GET route is ignored */
    if (r->mp) {
        if (mp_feed(r->mp, data, n) < 0)
            reply_error(r, strcmp(mp_error(r->mp), "stopped") ? SRV_ERR_BAD_REQUEST
                                                               : SRV_ERR_NOMEM,
                        "multipart body: %s", mp_error(r->mp));
    } else if (append(&r->body, &r->body_len, &r->body_cap, data, n) < 0) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory for the body");
    }
}

/* Collects the values of one header (MHD_get_connection_values_n). */
struct header_scan {
    const char *name;
    int count, differ;
    const char *first;
};

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_len, const char *value, size_t value_len)
{
    (void)kind;
    (void)value_len;
    struct header_scan *h = cls;
    if (strlen(h->name) != key_len || strncasecmp(key, h->name, key_len) != 0)
        return MHD_YES;
    if (h->count++ == 0)
        h->first = value;
    else if (strcmp(h->first, value) != 0)
        h->differ = 1;
    return MHD_YES;
}

/* How the body is framed (RFC 9112 6): whether there is one, and 400 for
 * framings a proxy in front could read differently from us (two different
 * Content-Length values; Transfer-Encoding with Content-Length; a transfer
 * coding other than chunked). libmicrohttpd 0.9.75 itself reads the first
 * Content-Length, or Transfer-Encoding over Content-Length. */
static void check_framing(struct request *r)
{
    struct header_scan cl = {MHD_HTTP_HEADER_CONTENT_LENGTH, 0, 0, NULL};
    struct header_scan te = {MHD_HTTP_HEADER_TRANSFER_ENCODING, 0, 0, NULL};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &cl);
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &te);
    r->has_body = te.count > 0 || (cl.count > 0 && strcmp(cl.first, "0") != 0);
    if (cl.differ) {
        r->has_body = 1;
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "two different Content-Length headers: the body's length is unknown");
    } else if (te.count && cl.count) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "both Transfer-Encoding and Content-Length: send only one");
    } else if (te.count > 1 || (te.count && strcasecmp(te.first, "chunked") != 0)) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "Transfer-Encoding %.60s: only chunked is supported", te.first);
    }
}

/* ---- libmicrohttpd callbacks ---- */

/* Queue the reply decided, if any. libmicrohttpd 0.9.75 accepts one only with
 * the headers (then it reads no body and closes the connection: the refusals)
 * or once the whole request is in (then the connection stays open). */
static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static enum MHD_Result flush(struct request *r)
{
    if (!r->resp || r->queued)
        return MHD_YES;
    if (!r->body_complete)
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (MHD_queue_response(r->conn, (unsigned)r->status, r->resp) != MHD_YES)
        return MHD_NO;
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    r->queued = 1;
    return MHD_YES;
}

const struct route *route_find(const struct route_table *t, const char *path)
{
    for (int i = 0; i < t->n; i++) {
        const struct route *rt = &t->routes[i];
        if (rt->path ? strcmp(path, rt->path) == 0 : rt->match(path))
            return rt;
    }
    return NULL;
}

/* r's route from its path, or a 404; a 405 (with Allow) when the route
 * takes another method. HEAD is GET without the body (libmicrohttpd drops
 * it). r->route is set for the metrics even on a 405. Returns 0, or -1 when
 * the request is refused. */
static int find_route(struct request *r, const char *url)
{
    const struct route *rt = route_find(r->srv->routes, url);
    if (!rt) {
        reply_error(r, SRV_ERR_NOT_FOUND, "no route %.200s", url);
        return -1;
    }
    r->route = rt;
    int head_ok = strcmp(rt->method, "GET") == 0 && strcmp(r->method, "HEAD") == 0;
    if (strcmp(r->method, rt->method) != 0 && !head_ok) {
        reply_error(r, SRV_ERR_METHOD, "%s %s: method not allowed, use %s", r->method, url,
                    rt->method);
        reply_header(r, MHD_HTTP_HEADER_ALLOW, rt->method);
        return -1;
    }
    return 0;
}

/* The first call, with the headers: route, and refuse what will be refused
 * before any body is read (libmicrohttpd then sends no 100 Continue). */
static void request_begin(struct request *r, const char *url)
{
    check_framing(r);
    if (r->resp)
        return;
    if (find_route(r, url) < 0)
        return;
    if (r->route->begin)
        r->route->begin(r);
    if (r->resp || !r->route->body_kind)
        return;
    if (r->late) {
        reply_error(r, SRV_ERR_NOT_READY, "server shutting down");
        return;
    }
    body_begin(r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct server *s = cls;
    struct request *r = *con_cls;
    if (!r) {
        r = request_new(s, c, url, method);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        request_begin(r, url);
        /* A refusal goes out now only when there is a body not to read; a
         * reply queued on this first call would close the connection. */
        return r->resp && r->has_body ? flush(r) : MHD_YES;
    }
    if (*upload_size) {
        body_data(r, upload_data, *upload_size);
        *upload_size = 0;
        /* An error mid-body is answered once the body is in, so that the
         * reply can be sent at all; a chunked body going on past twice the
         * limit is cut without one. */
        if (r->resp && r->body_seen > 2 * s->cfg->max_body_bytes)
            return MHD_NO;
        return MHD_YES;
    }
    r->body_complete = 1;
    if (r->resp || r->queued)
        return flush(r);
    if (r->submitted) {
        if (r->job_done)
            r->route->finish(r);
        return flush(r);
    }
    if (r->mp && mp_finish(r->mp) < 0) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "multipart body: %s", mp_error(r->mp));
        return flush(r);
    }
    r->route->end(r);
    return flush(r);
}

/* libmicrohttpd's unescaping, but "%00" stays as it is: a NUL would cut the
 * path or a query value short (NAME%00junk served as NAME). Names and numbers
 * are then checked on the text as sent. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *p = s; *p; p++) {
        int hi, lo;
        if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    if (!r->queued && !r->resp)
        r->status = 499; /* the client went away before its reply (nginx's code) */
    else if (!r->queued) /* a chunked body going on past twice the limit */
        snprintf(r->error + strlen(r->error), sizeof r->error - strlen(r->error), "%s",
                 "; connection closed");
    double total_ms = (double)(now_ns() - r->t_start_ns) / 1e6;
    double q = 0, cmp = 0;
    int n_img = r->submitted ? r->job->n : 0;
    for (int i = 0; i < n_img; i++) {
        const struct infer_image *it = &r->job->images[i];
        if (it->queue_s > q)
            q = it->queue_s;
        if (it->compute_s > cmp)
            cmp = it->compute_s;
    }
    metrics_request(r->route ? r->route->metric : r->srv->routes->unmatched_metric, r->status,
                    total_ms / 1e3);
    struct access_entry e = {
        .method = r->method, .path = r->path, .client = r->client, .status = r->status,
        .bytes_out = r->bytes_out, .images = n_img, .queue_ms = q * 1e3,
        .compute_ms = cmp * 1e3, .total_ms = total_ms,
        .model = r->model[0] ? r->model : NULL,
        .error = r->error[0] ? r->error
                 : toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? "connection closed early"
                                                              : NULL,
    };
    log_access(&e);
    request_free(r);
}

int http_start(struct server *s, const struct route_table *table, char *err, size_t errlen)
{
    const struct config *cfg = s->cfg;
    s->routes = table;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    /* poll(), not epoll: libmicrohttpd 0.9.75's edge-triggered epoll mode
     * misses a peer's FIN that arrives together with request data (a client
     * that sends part of a body and hangs up), leaving the connection in
     * CLOSE-WAIT until --connection-timeout-s. poll() is level-triggered, and
     * ample for --max-connections (1024 by default) spread over the
     * --http-threads pool (tests/e2e/reliability_faults.sh). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->listen_host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)cfg->listen_port);
    } else if (inet_pton(AF_INET6, cfg->listen_host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)cfg->listen_port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "listen address %s is not numeric", cfg->listen_host);
        return -1;
    }
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->listen_port, NULL, NULL, on_access, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not local?)",
                 cfg->listen_host, cfg->listen_port);
        return -1;
    }
    return 0;
}

void http_quiesce(struct server *s)
{
    atomic_store(&s->draining, 1);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int http_wait_idle(struct server *s, int timeout_ms)
{
    for (int waited = 0; atomic_load(&s->active) > 0; waited += 10) {
        if (waited >= timeout_ms)
            return -1;
        usleep(10000);
    }
    return 0;
}

void http_stop(struct server *s)
{
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
