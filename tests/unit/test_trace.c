/* Unit tests of request ids and W3C traceparent parsing (server/trace.c):
 * valid values, absent ones, too long, hostile characters, and each rule of
 * the Trace Context spec (level 1, section 3.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "trace.h"

static int id_ok(const char *s)
{
    char why[128] = "";
    int rc = trace_check_request_id(s, why, sizeof why);
    if (rc == 0)
        assert_string_equal(why, "");
    else
        assert_true(why[0] != '\0'); /* a refusal always says why */
    return rc == 0;
}

static void request_id_valid(void **state)
{
    (void)state;
    assert_true(id_ok("a"));
    assert_true(id_ok("abc-123"));
    assert_true(id_ok("req:2026.12.08_x-Y"));
    assert_true(id_ok("0af7651916cd43dd8448eb211c80319c"));
    char max[TRACE_ID_MAX + 1];
    memset(max, 'z', TRACE_ID_MAX);
    max[TRACE_ID_MAX] = '\0';
    assert_true(id_ok(max));
}

static void request_id_absent_empty_long(void **state)
{
    (void)state;
    assert_false(id_ok(NULL));
    assert_false(id_ok(""));
    char longer[TRACE_ID_MAX + 2];
    memset(longer, 'z', TRACE_ID_MAX + 1);
    longer[TRACE_ID_MAX + 1] = '\0';
    char why[128];
    assert_int_equal(trace_check_request_id(longer, why, sizeof why), -1);
    assert_non_null(strstr(why, "longer than 128"));
}

static void request_id_hostile(void **state)
{
    (void)state;
    static const char *bad[] = {"a b", "a\nb", "a\r\nX-Evil: 1", "a\"b", "a/b", "a%0ab",
                                "a;b", "a,b", "\x7f", "caf\xc3\xa9", "a\tb", "<script>", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(id_ok(bad[i]));
    char why[128];
    trace_check_request_id("ab\ncd", why, sizeof why);
    assert_string_equal(why, "character 3 (0x0a) is not one of A-Z a-z 0-9 . _ : -");
    /* a NULL or empty buffer for why is allowed */
    assert_int_equal(trace_check_request_id("a b", NULL, 0), -1);
}

/* Ids from several threads at once: all valid, all distinct. */
#define N_THREADS 4
#define PER_THREAD 2000
static char ids[N_THREADS * PER_THREAD][33];

static void *make_ids(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++)
        trace_new_request_id(ids[t * PER_THREAD + i]);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void request_id_generated(void **state)
{
    (void)state;
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, make_ids, (void *)(intptr_t)t), 0);
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int i = 0; i < N_THREADS * PER_THREAD; i++) {
        assert_int_equal(strlen(ids[i]), 32);
        assert_int_equal(strspn(ids[i], "0123456789abcdef"), 32);
        assert_true(id_ok(ids[i]));
    }
    qsort(ids, N_THREADS * PER_THREAD, sizeof ids[0], cmp);
    for (int i = 1; i < N_THREADS * PER_THREAD; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
}

/* ---- traceparent ---- */

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

/* parse s; on failure check that why names `says` */
static int tp(const char *s, struct traceparent *out, const char *says)
{
    char why[160] = "";
    struct traceparent t;
    memset(&t, 0x55, sizeof t);
    int rc = trace_parse_traceparent(s, &t, why, sizeof why);
    if (rc == 0) {
        if (out)
            *out = t;
    } else if (says && !strstr(why, says)) {
        fail_msg("'%s': message '%s' does not say '%s'", s ? s : "(null)", why, says);
    }
    return rc;
}

static void traceparent_valid(void **state)
{
    (void)state;
    struct traceparent t;
    assert_int_equal(tp("00-" TID "-" PID "-01", &t, NULL), 0);
    assert_int_equal(t.version, 0);
    assert_string_equal(t.trace_id, TID);
    assert_string_equal(t.parent_id, PID);
    assert_int_equal(t.flags, 1);
    assert_int_equal(tp("00-" TID "-" PID "-00", &t, NULL), 0);
    assert_int_equal(t.flags, 0);
    /* unknown flags are kept, not refused */
    assert_int_equal(tp("00-" TID "-" PID "-ff", &t, NULL), 0);
    assert_int_equal(t.flags, 0xff);
}

static void traceparent_absent_short_long(void **state)
{
    (void)state;
    assert_int_equal(tp(NULL, NULL, "absent"), -1);
    assert_int_equal(tp("", NULL, "cut in its version"), -1);
    assert_int_equal(tp("00-" TID "-" PID, NULL, "cut in its trace-flags"), -1);
    assert_int_equal(tp("00-" TID "-" PID "-0", NULL, "cut in its trace-flags"), -1);
    assert_int_equal(tp("00-4bf92f35", NULL, "cut in its trace-id"), -1);
    /* version 00 is exactly 55 characters */
    assert_int_equal(tp("00-" TID "-" PID "-01-", NULL, "longer"), -1);
    assert_int_equal(tp("00-" TID "-" PID "-01x", NULL, "longer"), -1);
}

static void traceparent_hex_rules(void **state)
{
    (void)state;
    /* uppercase hex is invalid, in every field */
    assert_int_equal(tp("00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", NULL, "trace-id"), -1);
    assert_int_equal(tp("00-" TID "-00F067AA0BA902B7-01", NULL, "parent-id"), -1);
    assert_int_equal(tp("00-" TID "-" PID "-0A", NULL, "trace-flags"), -1);
    assert_int_equal(tp("0A-" TID "-" PID "-01", NULL, "version"), -1);
    /* non-hex and hostile bytes */
    assert_int_equal(tp("00-" TID "-00f067aa0ba902bz-01", NULL, "character 52 (0x7a)"), -1);
    assert_int_equal(tp("00-4bf92f3577b34da6a3ce929d0e0e473\n-" PID "-01", NULL, "0x0a"), -1);
    /* separators */
    assert_int_equal(tp("00_" TID "-" PID "-01", NULL, "'-' expected before the trace-id"), -1);
    assert_int_equal(tp("00-" TID "_" PID "-01", NULL, "before the parent-id"), -1);
    assert_int_equal(tp("00-" TID "-" PID "_01", NULL, "before the trace-flags"), -1);
}

static void traceparent_zero_ids(void **state)
{
    (void)state;
    assert_int_equal(
        tp("00-00000000000000000000000000000000-" PID "-01", NULL, "trace-id is all zero"), -1);
    assert_int_equal(tp("00-" TID "-0000000000000000-01", NULL, "parent-id is all zero"), -1);
}

static void traceparent_versions(void **state)
{
    (void)state;
    struct traceparent t;
    assert_int_equal(tp("ff-" TID "-" PID "-01", NULL, "version ff"), -1);
    /* a later version: read by the 00 prefix; more only after a '-' */
    assert_int_equal(tp("01-" TID "-" PID "-01", &t, NULL), 0);
    assert_int_equal(t.version, 1);
    assert_string_equal(t.trace_id, TID);
    assert_int_equal(tp("cc-" TID "-" PID "-01-what-the-future-holds", &t, NULL), 0);
    assert_int_equal(t.version, 0xcc);
    assert_string_equal(t.parent_id, PID);
    assert_int_equal(t.flags, 1);
    assert_int_equal(tp("cc-" TID "-" PID "-01.more", NULL, "'-' expected after"), -1);
    assert_int_equal(tp("cc-" TID "-" PID, NULL, "cut"), -1);
    /* a refusal leaves *tp as it was */
    struct traceparent u;
    memset(&u, 0x7e, sizeof u);
    assert_int_equal(trace_parse_traceparent("ff-" TID "-" PID "-01", &u, NULL, 0), -1);
    assert_int_equal(((unsigned char *)&u)[0], 0x7e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_id_valid),
        cmocka_unit_test(request_id_absent_empty_long),
        cmocka_unit_test(request_id_hostile),
        cmocka_unit_test(request_id_generated),
        cmocka_unit_test(traceparent_valid),
        cmocka_unit_test(traceparent_absent_short_long),
        cmocka_unit_test(traceparent_hex_rules),
        cmocka_unit_test(traceparent_zero_ids),
        cmocka_unit_test(traceparent_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
