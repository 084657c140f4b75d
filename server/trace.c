/* Request ids and W3C traceparent: the checks of what a client sends, and
 * request ids made up for those that send none (or an invalid one). */
#include "trace.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '-';
}

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || !whylen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

int trace_check_request_id(const char *s, char *why, size_t whylen)
{
    if (!s) {
        say(why, whylen, "absent");
        return -1;
    }
    size_t i = 0;
    for (; s[i]; i++) {
        if (i == TRACE_ID_MAX) {
            say(why, whylen, "longer than %d characters", TRACE_ID_MAX);
            return -1;
        }
        if (!id_char((unsigned char)s[i])) {
            say(why, whylen, "character %zu (0x%02x) is not one of A-Z a-z 0-9 . _ : -", i + 1,
                (unsigned char)s[i]);
            return -1;
        }
    }
    if (i == 0) {
        say(why, whylen, "empty");
        return -1;
    }
    return 0;
}

/* splitmix64's finalizer: a bijection of 64-bit values, so distinct counters
 * give distinct ids. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static atomic_uint_fast64_t id_counter;
static _Atomic uint64_t id_key;       /* 0 until drawn */

static uint64_t key(void)
{
    uint64_t k = atomic_load(&id_key);
    if (k)
        return k;
    if (getrandom(&k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
        /* No entropy yet (early boot): the clock and pid still tell
         * restarts and replicas apart. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k = mix((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)getpid();
    }
    k |= 1; /* never 0, the "not drawn" mark */
    uint64_t expected = 0;
    /* Two threads racing here: the first key stored wins for both. */
    if (!atomic_compare_exchange_strong(&id_key, &expected, k))
        k = expected;
    return k;
}

void trace_new_request_id(char out[33])
{
    uint64_t k = key();
    uint64_t n = atomic_fetch_add(&id_counter, 1);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)mix(k),
             (unsigned long long)mix(n ^ k));
}

/* ---- traceparent ---- */

/* Whether s[0..n) is lowercase hex; the offset of the first that is not in
 * *bad. */
static int lower_hex(const char *s, size_t n, size_t *bad)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            *bad = i;
            return 0;
        }
    return 1;
}

static int all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return 0;
    return 1;
}

static unsigned hex_byte(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 2; i++)
        v = v * 16 + (unsigned)(s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
    return v;
}

/* The fields of version 00, in order: where each starts, its length, its
 * name for messages. */
static const struct {
    size_t at, len;
    const char *name;
} fields[] = {{0, 2, "version"}, {3, 32, "trace-id"}, {36, 16, "parent-id"},
              {53, 2, "trace-flags"}};
#define TP_LEN 55

int trace_parse_traceparent(const char *s, struct traceparent *tp, char *why, size_t whylen)
{
    if (!s) {
        say(why, whylen, "absent");
        return -1;
    }
    size_t len = strnlen(s, TP_LEN + 1);
    /* Fields first, over what there is: a short value is named by the
     * field it cuts. */
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        size_t bad;
        if (len < fields[f].at + fields[f].len) {
            say(why, whylen, "%zu characters, cut in its %s (at least %d)", len, fields[f].name,
                TP_LEN);
            return -1;
        }
        if (f > 0 && s[fields[f].at - 1] != '-') {
            say(why, whylen, "character %zu: '-' expected before the %s", fields[f].at,
                fields[f].name);
            return -1;
        }
        if (!lower_hex(s + fields[f].at, fields[f].len, &bad)) {
            say(why, whylen, "%s: character %zu (0x%02x) is not lowercase hex", fields[f].name,
                fields[f].at + bad + 1, (unsigned char)s[fields[f].at + bad]);
            return -1;
        }
    }
    unsigned version = hex_byte(s);
    if (version == 0xff) {
        say(why, whylen, "version ff is invalid");
        return -1;
    }
    if (len > TP_LEN) {
        if (version == 0) {
            say(why, whylen, "version 00 is %d characters, this one is longer", TP_LEN);
            return -1;
        }
        if (s[TP_LEN] != '-') {
            say(why, whylen, "character %d: '-' expected after the trace-flags of version %02x",
                TP_LEN + 1, version);
            return -1;
        }
    }
    if (all_zero(s + 3, 32)) {
        say(why, whylen, "trace-id is all zero");
        return -1;
    }
    if (all_zero(s + 36, 16)) {
        say(why, whylen, "parent-id is all zero");
        return -1;
    }
    tp->version = version;
    memcpy(tp->trace_id, s + 3, 32);
    tp->trace_id[32] = '\0';
    memcpy(tp->parent_id, s + 36, 16);
    tp->parent_id[16] = '\0';
    tp->flags = hex_byte(s + 53);
    return 0;
}
