/* Request identity: the X-Request-Id a client sends (checked) or one made up,
 * and the W3C Trace Context traceparent header (parsed, for the logs). The
 * checks are pure functions of their input, so that they can be fuzzed and
 * unit-tested alone (tests/fuzz/fuzz_trace.c, tests/unit/test_trace.c). */
#ifndef RESNETD_TRACE_H
#define RESNETD_TRACE_H

#include <stddef.h>

/* A request id is 1 to TRACE_ID_MAX characters of A-Z a-z 0-9 . _ : -, so
 * that it can go into a header, a log line or a file name unescaped. */
#define TRACE_ID_MAX 128

/* 0 when s is a valid request id; else -1 and, in why (whylen bytes; may be
 * NULL), what is wrong and where ("character 5 (0x0a) is not one of ...").
 * s may be NULL (absent: -1). */
int trace_check_request_id(const char *s, char *why, size_t whylen);

/* A new request id into out: 32 lowercase hex characters and a NUL. Two
 * calls never give the same id within a process, from any thread: the low
 * half is a bijective mix of a process-wide counter, the high half a random
 * key drawn once (getrandom) so that restarts and replicas differ. */
void trace_new_request_id(char out[33]);

/* A parsed traceparent (W3C Trace Context, level 1). */
struct traceparent {
    unsigned version;    /* 0 .. 254 */
    char trace_id[33];   /* 32 lowercase hex, not all zero */
    char parent_id[17];  /* 16 lowercase hex, not all zero */
    unsigned flags;      /* trace-flags; bit 0: sampled */
};

/* Parse a traceparent header value s into *tp. Version 00 is exactly
 * "00-<32 hex>-<16 hex>-<2 hex>" in lowercase hex; version ff is invalid;
 * a later version is read by its 00 prefix and may go on past it only after
 * a '-'. Returns 0, or -1 with what is wrong and where in why (may be NULL);
 * *tp is then untouched. s may be NULL (absent: -1). */
int trace_parse_traceparent(const char *s, struct traceparent *tp, char *why, size_t whylen);

#endif
