/* The request body, as the transport reads it: how it is framed, its cap
 * (--max-body-bytes, from the declared length and again as it arrives),
 * the early refusals that need only the headers, and multipart/form-data
 * split into uploads as it streams in. */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- multipart: parts with a filename become uploads ---- */

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

/* ---- the body ---- */

void http_body_begin(struct request *r)
{
    const struct config *cfg = r->srv->cfg;
    /* Bodies are read as sent: a compressed one would otherwise fail later
     * as a body that is no JSON or no image, blaming the wrong thing. RFC
     * 9110 15.5.16 and RFC 7694: 415, with the codings accepted. */
    const char *ce = request_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (ce && strcasecmp(ce, "identity") != 0) {
        reply_error(r, SRV_ERR_MEDIA_TYPE,
                    "Content-Encoding %.60s: request bodies are not decompressed here, send "
                    "them uncompressed (identity)", ce);
        reply_header(r, "Accept-Encoding", "identity");
        return;
    }
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

void http_body_data(struct request *r, const char *data, size_t n)
{
    const struct config *cfg = r->srv->cfg;
    r->body_seen += (int64_t)n;
    if (request_replied(r))
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

/* ---- framing ---- */

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

/* The framings refused: two different Content-Length values;
 * Transfer-Encoding with Content-Length; a transfer coding other than
 * chunked. libmicrohttpd 0.9.75 itself reads the first Content-Length, or
 * Transfer-Encoding over Content-Length. */
void http_check_framing(struct request *r)
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

void http_body_end(struct request *r)
{
    if (r->mp && mp_finish(r->mp) < 0)
        reply_error(r, SRV_ERR_BAD_REQUEST, "multipart body: %s", mp_error(r->mp));
}
