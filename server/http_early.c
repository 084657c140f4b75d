/* Requests libmicrohttpd refuses before any handler of ours runs, and its
 * own messages.
 *
 * libmicrohttpd 0.9.75 reads Content-Length before it calls on_access. A
 * value it cannot read ("abc", "5, 6", "-1", "", a number over 2^64) gets
 * its own 400 (413 past 2^64), whose status line and headers it sends twice
 * (the state it sets for the error is overwritten once parsing returns, and
 * the reply's header is built again): a proxy in front may read the second
 * copy as the reply to the next request. No option avoids it, and no
 * callback of ours runs between its parsing and its reply, but it logs why
 * first (MHD_OPTION_EXTERNAL_LOGGER, on the thread handling the
 * connection). So the connection whose request line this thread read last
 * (MHD_OPTION_URI_LOG_CALLBACK) is checked: when its Content-Length is one
 * libmicrohttpd cannot read, it gets our JSON 400 on its socket and the
 * socket is shut for writing, so libmicrohttpd's reply fails to go out and
 * it closes the connection. The request line and the end of the headers
 * may come in different reads, with another connection's request line in
 * between: then the check fails and libmicrohttpd's reply goes out as it
 * did (tests/e2e/server_framing.sh). */
#include "http_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "trace.h"

/* The connection whose request line this thread parsed last and that has
 * not yet reached on_access, with that line's URI for the access log. */
static _Thread_local struct {
    struct MHD_Connection *conn;
    char uri[256];
    int swallow; /* drop libmicrohttpd's word of the reply it could not send */
} slot;

void *http_early_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    slot.conn = c;
    slot.swallow = 0;
    /* the path only, as the access log shows every request */
    snprintf(slot.uri, sizeof slot.uri, "%.*s", (int)strcspn(uri, "?"), uri);
    return NULL;
}

void http_early_forget(struct MHD_Connection *c)
{
    if (slot.conn == c)
        slot.conn = NULL;
}

void http_early_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        http_early_forget(c); /* no pointer to a freed connection stays behind */
}

/* Whether libmicrohttpd 0.9.75 reads v as a Content-Length: decimal digits
 * only, at least one, at most 2^64 - 1 (it has trimmed the blanks). */
static int readable_length(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || strspn(v, "0123456789") != n)
        return 0;
    while (n > 1 && *v == '0') {
        v++;
        n--;
    }
    return n < 20 || (n == 20 && strcmp(v, "18446744073709551615") <= 0);
}

/* Our 400 straight onto c's socket, which is then shut for writing. Returns
 * 0, or -1 when c is not the connection libmicrohttpd is refusing. */
static int refuse(struct server *s, struct MHD_Connection *c)
{
    if (s->cfg->tls_cert[0])
        return -1; /* the socket carries TLS records: libmicrohttpd's own reply goes out */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    /* with chunked, libmicrohttpd does not read Content-Length at all */
    if (!cl || readable_length(cl) || (te && !strcasecmp(te, "chunked")) || !ci)
        return -1;
    char err[160];
    snprintf(err, sizeof err,
             "Content-Length '%.40s' is not a length: decimal digits only, below 2^64", cl);
    cJSON *o = cJSON_CreateObject();
    char *body = NULL;
    if (o && cJSON_AddStringToObject(o, "error", err) &&
        cJSON_AddStringToObject(o, "code", srv_err_code(SRV_ERR_BAD_REQUEST)))
        body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char date[64];
    struct tm tm;
    time_t now = time(NULL);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
    char rid[33]; /* the client's X-Request-Id is not read: a request this broken is not trusted */
    trace_new_request_id(rid);
    char reply[704];
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 400 Bad Request\r\nDate: %s\r\nConnection: close\r\n"
                     "X-Request-Id: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s\n",
                     date, rid, body ? strlen(body) + 1 : 1, body ? body : "");
    cJSON_free(body);
    if (n < 0 || (size_t)n >= sizeof reply)
        return -1;
    /* A fresh request's socket has an empty send buffer: a few hundred bytes
     * go at once. */
    ssize_t sent = send(ci->connect_fd, reply, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(ci->connect_fd, SHUT_WR);
    metrics_request(s->routes->unmatched_metric, 400);
    metrics_rejected(srv_err_reason(SRV_ERR_BAD_REQUEST));
    char client[64];
    http_client_address(c, client, sizeof client);
    struct access_entry e = {
        .method = "-", .path = slot.uri, .client = client, .status = 400, .request_id = rid,
        .bytes_out = sent > 0 ? (size_t)sent : 0, .error = err,
    };
    log_access(&e);
    return 0;
}

void http_early_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (slot.swallow && (strncmp(msg, "Error processing request", 24) == 0 ||
                         strncmp(msg, "Failed to send the response headers", 35) == 0))
        return; /* the reply it speaks of never went out: ours did */
    if (slot.conn && strstr(msg, "Content-Length") && refuse(cls, slot.conn) == 0) {
        slot.conn = NULL;
        slot.swallow = 1;
        return;
    }
    log_msg("info", "libmicrohttpd: %s", msg);
}
