/* Streaming multipart/form-data parser. The body is a sequence of parts
 * separated by the delimiter CRLF "--" boundary; the first delimiter may start
 * the body without its CRLF (we pretend the body starts with one), text before
 * it is a preamble and text after the closing "--boundary--" an epilogue, both
 * ignored. Inside a part's data the delimiter is found with a one-byte-at-a-time
 * matcher that survives any chunk split: since '\r' occurs only at the start of
 * the delimiter (boundaries cannot hold it), a mismatch can only restart the
 * match at the current byte, so no backtracking (and no buffering) is needed. */
#include "multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum st { ST_PREAMBLE, ST_AFTER_DELIM, ST_HEADERS, ST_DATA, ST_EPILOGUE, ST_ERROR };

struct mp_parser {
    struct mp_callbacks cb;
    void *user;
    char delim[MP_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
    size_t dlen;
    size_t mi;      /* bytes of delim matched so far */
    int state;
    int ad;         /* sub-state of the line after a delimiter */
    char hbuf[MP_MAX_HEADERS];
    size_t hlen;
    int parts;
    char err[160];
};

static int is_bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           strchr("'()+_,-./:=? ", c) != NULL;
}

/* Copy a parameter value (token or quoted-string) starting at s into out.
 * Returns a pointer past the value. */
static const char *param_value(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1])
                s++;
            if (n + 1 < outlen)
                out[n++] = *s;
            s++;
        }
        if (*s == '"')
            s++;
    } else {
        while (*s && *s != ';' && *s != ' ' && *s != '\t') {
            if (n + 1 < outlen)
                out[n++] = *s;
            s++;
        }
    }
    out[n] = '\0';
    return s;
}

/* Find parameter `key` in a header value "type; k=v; k2="v2"". Returns 1 and
 * fills out when present. */
static int header_param(const char *v, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    const char *s = strchr(v, ';');
    while (s) {
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncasecmp(s, key, klen) == 0) {
            const char *e = s + klen;
            while (*e == ' ' || *e == '\t')
                e++;
            if (*e == '=') {
                e++;
                while (*e == ' ' || *e == '\t')
                    e++;
                param_value(e, out, outlen);
                return 1;
            }
        }
        /* skip this parameter, respecting quotes */
        int q = 0;
        while (*s && (q || *s != ';')) {
            if (*s == '\\' && q && s[1])
                s++;
            else if (*s == '"')
                q = !q;
            s++;
        }
        s = *s ? s : NULL;
    }
    return 0;
}

int mp_boundary(const char *ct, char *out)
{
    static const char type[] = "multipart/form-data";
    if (!ct)
        return -1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, type, sizeof type - 1) != 0)
        return -1;
    char c = ct[sizeof type - 1];
    if (c != '\0' && c != ';' && c != ' ' && c != '\t')
        return -1;
    char b[256];
    if (!header_param(ct, "boundary", b, sizeof b))
        return -2;
    size_t n = strlen(b);
    if (n == 0 || n > MP_MAX_BOUNDARY || b[n - 1] == ' ')
        return -2;
    for (size_t i = 0; i < n; i++)
        if (!is_bchar((unsigned char)b[i]))
            return -2;
    memcpy(out, b, n + 1);
    return 0;
}

mp_parser *mp_new(const char *boundary, const struct mp_callbacks *cb, void *user)
{
    size_t n = strlen(boundary);
    if (n == 0 || n > MP_MAX_BOUNDARY)
        return NULL;
    mp_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cb = *cb;
    p->user = user;
    p->dlen = (size_t)snprintf(p->delim, sizeof p->delim, "\r\n--%s", boundary);
    p->mi = 2; /* the body behaves as if it began with CRLF */
    p->state = ST_PREAMBLE;
    return p;
}

void mp_free(mp_parser *p)
{
    free(p);
}

int mp_parts(const mp_parser *p)
{
    return p->parts;
}

const char *mp_error(const mp_parser *p)
{
    return p->err[0] ? p->err : "no error";
}

static int fail(mp_parser *p, const char *msg)
{
    if (p->state != ST_ERROR)
        snprintf(p->err, sizeof p->err, "%s", msg);
    p->state = ST_ERROR;
    return -1;
}

static int parse_headers(mp_parser *p)
{
    struct mp_part part;
    memset(&part, 0, sizeof part);
    int disposition = 0;
    p->hbuf[p->hlen] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(p->hbuf, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            return fail(p, "malformed part header (no ':')");
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(line, "Content-Disposition") == 0) {
            if (strncasecmp(v, "form-data", 9) != 0)
                return fail(p, "part Content-Disposition is not form-data");
            disposition = 1;
            header_param(v, "name", part.name, sizeof part.name);
            part.has_filename = header_param(v, "filename", part.filename, sizeof part.filename);
        } else if (strcasecmp(line, "Content-Type") == 0) {
            snprintf(part.content_type, sizeof part.content_type, "%s", v);
        }
    }
    if (!disposition)
        return fail(p, "part without a Content-Disposition header");
    p->parts++;
    if (p->cb.part_begin && p->cb.part_begin(p->user, &part))
        return fail(p, "stopped");
    return 0;
}

static int emit(mp_parser *p, const char *d, size_t n)
{
    if (n && p->state == ST_DATA && p->cb.part_data && p->cb.part_data(p->user, d, n))
        return fail(p, "stopped");
    return 0;
}

/* Run the delimiter matcher over data[0..len) in the preamble or a part.
 * Returns bytes consumed (up to and including a full delimiter), or -1. */
static long match_delim(mp_parser *p, const char *data, size_t len)
{
    size_t i = 0, run = 0; /* data[run..i) is pending part data */
    while (i < len) {
        if (p->mi == 0) {
            const char *cr = memchr(data + i, '\r', len - i);
            if (!cr) {
                i = len;
                break;
            }
            i = (size_t)(cr - data);
        }
        if (data[i] == p->delim[p->mi]) {
            if (p->mi == 0 && emit(p, data + run, i - run) < 0)
                return -1;
            p->mi++;
            i++;
            run = i;
            if (p->mi == p->dlen) {
                p->mi = 0;
                if (p->state == ST_DATA && p->cb.part_end && p->cb.part_end(p->user))
                    return fail(p, "stopped");
                p->state = ST_AFTER_DELIM;
                p->ad = 0;
                return (long)i;
            }
        } else {
            /* The matched prefix was data after all. */
            size_t was = p->mi;
            p->mi = 0;
            if (was) {
                if (emit(p, p->delim, was) < 0)
                    return -1;
                run = i;
            }
            if (data[i] != '\r')
                i++;
        }
    }
    if (p->mi == 0 && emit(p, data + run, i - run) < 0)
        return -1;
    return (long)i;
}

int mp_feed(mp_parser *p, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        switch (p->state) {
        case ST_ERROR:
            return -1;
        case ST_EPILOGUE:
            return 0;
        case ST_PREAMBLE:
        case ST_DATA: {
            long n = match_delim(p, data + i, len - i);
            if (n < 0)
                return -1;
            i += (size_t)n;
            break;
        }
        case ST_AFTER_DELIM: {
            char c = data[i++];
            switch (p->ad) {
            case 0:
                p->ad = c == '-' ? 1 : (c == ' ' || c == '\t') ? 2 : c == '\r' ? 3 : -1;
                break;
            case 1:
                if (c != '-')
                    return fail(p, "malformed delimiter line");
                p->state = ST_EPILOGUE;
                break;
            case 2:
                p->ad = (c == ' ' || c == '\t') ? 2 : c == '\r' ? 3 : -1;
                break;
            case 3:
                if (c != '\n')
                    return fail(p, "delimiter line not ended by CRLF");
                p->state = ST_HEADERS;
                p->hlen = 0;
                break;
            }
            if (p->ad < 0)
                return fail(p, "malformed delimiter line");
            break;
        }
        case ST_HEADERS: {
            if (p->hlen + 1 >= sizeof p->hbuf)
                return fail(p, "part headers too long");
            p->hbuf[p->hlen++] = data[i++];
            int end = (p->hlen == 2 && memcmp(p->hbuf, "\r\n", 2) == 0) ||
                      (p->hlen >= 4 && memcmp(p->hbuf + p->hlen - 4, "\r\n\r\n", 4) == 0);
            if (end) {
                if (parse_headers(p) < 0)
                    return -1;
                p->state = ST_DATA;
                p->mi = 0;
            }
            break;
        }
        }
    }
    return p->state == ST_ERROR ? -1 : 0;
}

int mp_finish(mp_parser *p)
{
    switch (p->state) {
    case ST_EPILOGUE: return 0;
    case ST_ERROR: return -1;
    case ST_PREAMBLE: return fail(p, "no multipart boundary found in the body");
    default: return fail(p, "multipart body truncated: no closing boundary");
    }
}
