/* The request API (request.h) over the transport's per-request state: what
 * a route reads (query, headers, path, body, uploads), its own state, and
 * its reply. A reply is only decided here; http.c queues it when
 * libmicrohttpd can take it. */
#include "http_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

const struct route *route_find(const struct route_table *t, const char *path)
{
    for (int i = 0; i < t->n; i++) {
        const struct route *rt = &t->routes[i];
        if (rt->path ? strcmp(path, rt->path) == 0 : rt->match(path))
            return rt;
    }
    return NULL;
}

/* ---- what the request holds ---- */

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
    return r->path;
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
    snprintf(r->model_name, sizeof r->model_name, "%s", name);
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

/* ---- the reply ---- */

static void set_reply(struct request *r, int status, struct MHD_Response *resp, size_t len)
{
    if (r->resp || r->queued) { /* the first reply wins */
        MHD_destroy_response(resp);
        return;
    }
    /* Every reply, errors and early refusals too, names its request: the
     * id a client sent (or was given) joins its logs to ours. */
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
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
        if (!r->resp && !r->queued)
            r->reply_lost = 1; /* on_access returns MHD_NO: the connection is closed */
        return;
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
    if (request_replied(r))
        return;
    /* A readiness probe's 503 answers its question; it refuses nothing. */
    const char *reason = srv_err_reason(e);
    if (reason && !(r->route && r->route->metric == MR_V2_HEALTH))
        metrics_rejected(reason);
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
        if (!s) {
            r->reply_lost = 1;
            return;
        }
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
