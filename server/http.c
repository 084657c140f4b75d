/* The HTTP transport: libmicrohttpd's callbacks, a request's life, and
 * suspend/resume around the batcher. It knows no route: it finds the
 * request's in the table it was given and calls that route's handlers.
 *
 * libmicrohttpd calls on_access several times per request: first with the
 * headers (we check the framing, find the route, let it read its query
 * (begin), check Content-Length, Content-Type and the queue, and refuse at
 * once what will be refused), then with each piece of the body (appended or
 * fed to the multipart parser, http_body.c; past the cap or on a malformed
 * part the reply is decided and the rest of the body dropped), then with no
 * data once the body is complete (the route's end() parses it and either
 * answers or submits a job, which suspends the connection), and once more
 * after a worker resumes the connection (the route's finish() builds the
 * reply). Replies are queued on that last call, when the connection can stay
 * open; only refusals of a request with a body go out with the headers,
 * closing it. Per-request state (struct request, http_internal.h) is created
 * on the first call and freed only in on_completed, which libmicrohttpd also
 * calls when a client goes away mid-request. */
#include "http_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "trace.h"

/* ---- request life ---- */

void http_client_address(struct MHD_Connection *c, char *buf, size_t len)
{
    snprintf(buf, len, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
}

/* r's request id (the client's X-Request-Id when valid, else a new one, and
 * why in the access log) and trace context (traceparent: an invalid one is
 * ignored, and why logged). */
static void request_identify(struct request *r, struct MHD_Connection *c)
{
    char why[96];
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (trace_check_request_id(id, why, sizeof why) == 0) {
        snprintf(r->request_id, sizeof r->request_id, "%s", id);
    } else {
        trace_new_request_id(r->request_id);
        if (id)
            snprintf(r->request_id_note, sizeof r->request_id_note,
                     "X-Request-Id replaced: %s", why);
    }
    const char *tp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent");
    if (tp && trace_parse_traceparent(tp, &r->trace, why, sizeof why) == 0)
        r->has_trace = 1;
    else if (tp)
        snprintf(r->trace_note, sizeof r->trace_note, "traceparent ignored: %s", why);
}

static struct request *request_new(struct server *s, struct MHD_Connection *c, const char *url,
                                   const char *method)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->path = strdup(url);
    if (!r->path) {
        free(r);
        return NULL;
    }
    r->srv = s;
    r->conn = c;
    r->t_start_ns = now_ns();
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->log_path, sizeof r->log_path, "%s", url);
    http_client_address(c, r->client, sizeof r->client);
    request_identify(r, c);
    pthread_mutex_init(&r->lock, NULL);
    r->late = atomic_load(&s->draining);
    atomic_fetch_add(&s->active, 1);
    metrics_in_flight(1);
    return r;
}

/* Only from on_completed: after the route's last handler call, and after
 * its job's done() (libmicrohttpd completes a suspended connection only
 * once it is resumed), so the route's state goes with it. */
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
    free(r->path);
    atomic_fetch_sub(&r->srv->active, 1);
    metrics_in_flight(-1);
    free(r);
}

/* ---- jobs ---- */

static void on_job_done(struct infer_job *job)
{
    struct request *r = job->user;
    pthread_mutex_lock(&r->lock);
    r->t_done_ns = now_ns();
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
    r->t_read_ns = now_ns();
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

/* ---- libmicrohttpd callbacks ---- */

/* Queue the reply decided, if any. libmicrohttpd 0.9.75 accepts one only with
 * the headers (then it reads no body and closes the connection: the refusals)
 * or once the whole request is in (then the connection stays open, except
 * while draining: a keep-alive client behind a load balancer then opens its
 * next connection to another replica, rather than sending its next request
 * here to be refused). A reply that could not be made closes the connection
 * (MHD_NO). */
static enum MHD_Result flush(struct request *r)
{
    if (r->queued)
        return MHD_YES;
    if (!r->resp)
        return r->reply_lost ? MHD_NO : MHD_YES;
    if (!r->body_complete || atomic_load(&r->srv->draining))
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (MHD_queue_response(r->conn, (unsigned)r->status, r->resp) != MHD_YES)
        return MHD_NO;
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    r->queued = 1;
    return MHD_YES;
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

/* The first call, with the headers: route, API key, and refuse what will
 * be refused before any body is read (libmicrohttpd then sends no 100
 * Continue). */
static void request_begin(struct request *r, const char *url)
{
    http_check_framing(r);
    if (request_replied(r) || find_route(r, url) < 0)
        return;
    if (http_authorize(r, http_route_auth_mask(r->route)) < 0)
        return;
    if (r->route->begin)
        r->route->begin(r);
    if (request_replied(r) || !r->route->body_kind)
        return;
    if (r->late) {
        reply_error(r, SRV_ERR_NOT_READY, "server shutting down");
        return;
    }
    http_body_begin(r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct server *s = cls;
    struct request *r = *con_cls;
    if (!r) {
        http_early_forget(c); /* its headers were fine */
        r = request_new(s, c, url, method);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        request_begin(r, url);
        if (request_replied(r))
            r->t_read_ns = now_ns(); /* refused on its headers */
        /* A refusal goes out now only when there is a body not to read; a
         * reply queued on this first call would close the connection. */
        if (r->reply_lost)
            return MHD_NO;
        return r->resp && r->has_body ? flush(r) : MHD_YES;
    }
    if (*upload_size) {
        http_body_data(r, upload_data, *upload_size);
        *upload_size = 0;
        /* An error mid-body is answered once the body is in, so that the
         * reply can be sent at all; a chunked body going on past twice the
         * limit is cut without one. */
        if (r->reply_lost || (r->resp && r->body_seen > 2 * s->cfg->max_body_bytes))
            return MHD_NO;
        return MHD_YES;
    }
    r->body_complete = 1;
    if (request_replied(r))
        return flush(r);
    if (r->submitted) {
        if (r->job_done)
            r->route->finish(r);
        return flush(r);
    }
    http_body_end(r);
    if (!request_replied(r))
        r->route->end(r);
    if (!r->t_read_ns)
        r->t_read_ns = now_ns(); /* answered by end(), or refused mid-body */
    return flush(r);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
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

/* The phases of r into its histograms (labelled by its model and route) and
 * its access line e: per image its queue wait, decode and share of its
 * batch's inference; per request its read, its reply and its total. The
 * line has the longest queue wait and inference of its images (they may
 * have run in parallel batches) and the sum of their decodes. A phase not
 * reached (the client went away mid-body) is not observed. */
static void observe_request(const struct request *r, int route, int64_t t_end,
                            struct access_entry *e)
{
    int model = metrics_model_index(r->model_name);
    for (int i = 0; i < e->images; i++) {
        const struct infer_image *it = &r->job->images[i];
        if (it->queue_s > e->queue_ms / 1e3)
            e->queue_ms = it->queue_s * 1e3;
        metrics_phase(MP_QUEUE, model, route, it->queue_s);
        if (it->preprocess_s > 0) {
            e->preprocess_ms += it->preprocess_s * 1e3;
            metrics_phase(MP_PREPROCESS, model, route, it->preprocess_s);
        }
        if (it->batch_n > 0 && it->status == SRV_OK) {
            if (it->compute_s > e->inference_ms / 1e3)
                e->inference_ms = it->compute_s * 1e3;
            metrics_phase(MP_INFER_IMAGE, model, route, it->compute_s / it->batch_n);
        }
    }
    if (r->t_read_ns) {
        e->read_ms = (double)(r->t_read_ns - r->t_start_ns) / 1e6;
        metrics_phase(MP_READ, model, route, e->read_ms / 1e3);
        int64_t t_reply = r->t_done_ns ? r->t_done_ns : r->t_read_ns;
        if (r->queued && t_end >= t_reply) {
            e->reply_ms = (double)(t_end - t_reply) / 1e6;
            metrics_phase(MP_REPLY, model, route, e->reply_ms / 1e3);
        }
    }
    metrics_phase(MP_TOTAL, model, route, e->total_ms / 1e3);
    metrics_request(route, r->status);
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
    int64_t t_end = now_ns();
    int route = r->route ? r->route->metric : r->srv->routes->unmatched_metric;
    struct access_entry e = {
        .request_id = r->request_id,
        .request_id_note = r->request_id_note[0] ? r->request_id_note : NULL,
        .trace_id = r->has_trace ? r->trace.trace_id : NULL,
        .parent_id = r->has_trace ? r->trace.parent_id : NULL,
        .trace_note = r->trace_note[0] ? r->trace_note : NULL,
        .method = r->method, .route = metrics_route_name(route), .path = r->log_path,
        .client = r->client, .status = r->status, .bytes_out = r->bytes_out,
        .images = r->submitted ? r->job->n : 0,
        .total_ms = (double)(t_end - r->t_start_ns) / 1e6,
        .model = r->model_name[0] ? r->model_name : NULL,
        .error = r->error[0] ? r->error
                 : toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? "connection closed early"
                                                              : NULL,
    };
    observe_request(r, route, t_end, &e);
    log_access(&e);
    request_free(r);
}

/* A connection opens or closes: for the early refusals (http_early.c) and,
 * with TLS, for the certificate its handshake holds (tls.c). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    const struct server *s = cls;
    if (s->cfg->tls_cert[0])
        tls_notify_connection(c, socket_context, code);
    http_early_notify(cls, c, socket_context, code);
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
    if (cfg->tls_cert[0])
        flags |= MHD_USE_TLS; /* tls_init() has loaded the pair */
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
        MHD_OPTION_EXTERNAL_LOGGER, http_early_log, s, /* first: see its doc */
        MHD_OPTION_URI_LOG_CALLBACK, http_early_uri, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_ARRAY, tls_mhd_options(), /* MHD_OPTION_END alone without TLS */
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
