/* libFuzzer target: the streaming multipart/form-data parser (server/multipart.c).
 * The first input line is the Content-Type header (boundary extraction); the
 * rest is the body, fed in chunks whose sizes come from the input's first
 * byte, then once more byte by byte: both runs must agree on the parts seen
 * and on the outcome, and every part's data must be within the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    int parts, ends, open;
    size_t bytes;
    unsigned hash;
};

static int on_begin(void *u, const struct mp_part *p)
{
    struct seen *s = u;
    if (s->open || strlen(p->name) >= sizeof p->name || strlen(p->filename) >= sizeof p->filename)
        abort();
    s->open = 1;
    s->parts++;
    return s->parts > 1000; /* a limit a caller may impose: stop */
}

static int on_data(void *u, const char *d, size_t n)
{
    struct seen *s = u;
    if (!s->open || n == 0)
        abort();
    for (size_t i = 0; i < n; i++) /* touches every byte: ASan checks the range */
        s->hash = s->hash * 31 + (unsigned char)d[i];
    s->bytes += n;
    return 0;
}

static int on_end(void *u)
{
    struct seen *s = u;
    if (!s->open)
        abort();
    s->open = 0;
    s->ends++;
    return 0;
}

static const struct mp_callbacks cb = {on_begin, on_data, on_end};

static int run(const char *boundary, const char *body, size_t len, size_t chunk, struct seen *s)
{
    memset(s, 0, sizeof *s);
    mp_parser *p = mp_new(boundary, &cb, s);
    if (!p)
        abort();
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        char *piece = malloc(n); /* exact size: an over-read is caught */
        memcpy(piece, body + off, n);
        rc = mp_feed(p, piece, n);
        free(piece);
    }
    if (rc == 0)
        rc = mp_finish(p);
    if (rc < 0 && strlen(mp_error(p)) == 0)
        abort();
    if (mp_parts(p) != s->parts)
        abort();
    mp_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    if (!nl)
        return 0;
    size_t hl = (size_t)(nl - (const char *)data);
    char *ct = malloc(hl + 1);
    memcpy(ct, data, hl);
    ct[hl] = '\0';
    char boundary[MP_MAX_BOUNDARY + 1];
    int rc = mp_boundary(ct, boundary);
    free(ct);
    if (rc != 0)
        return 0;
    const char *body = (const char *)nl + 1;
    size_t len = size - hl - 1;
    size_t chunk = len ? 1 + (unsigned char)body[0] % 64 : 1;
    struct seen a, b;
    int ra = run(boundary, body, len, chunk, &a);
    int rb = run(boundary, body, len, 1, &b);
    /* Splitting must never change what was parsed. */
    if (ra != rb || a.parts != b.parts || a.ends != b.ends || a.bytes != b.bytes ||
        a.hash != b.hash)
        abort();
    return 0;
}
