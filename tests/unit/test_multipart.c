/* Unit tests of the streaming multipart/form-data parser (server/multipart.c):
 * every body is also fed in every split into two chunks and byte by byte, so
 * delimiters straddling chunk boundaries are covered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "multipart.h"

struct got {
    int n;
    char name[8][256], filename[8][256], ctype[8][128];
    int has_filename[8];
    char data[8][256];
    size_t len[8];
    int open, ends;
};

static int on_begin(void *u, const struct mp_part *p)
{
    struct got *g = u;
    if (g->n == 8)
        return 1;
    snprintf(g->name[g->n], 256, "%s", p->name);
    snprintf(g->filename[g->n], 256, "%s", p->filename);
    snprintf(g->ctype[g->n], 128, "%s", p->content_type);
    g->has_filename[g->n] = p->has_filename;
    g->len[g->n] = 0;
    g->open = 1;
    g->n++;
    return 0;
}

static int on_data(void *u, const char *d, size_t n)
{
    struct got *g = u;
    assert_true(g->open);
    size_t *len = &g->len[g->n - 1];
    assert_true(*len + n < sizeof g->data[0]);
    memcpy(g->data[g->n - 1] + *len, d, n);
    *len += n;
    return 0;
}

static int on_end(void *u)
{
    struct got *g = u;
    g->open = 0;
    g->ends++;
    return 0;
}

static const struct mp_callbacks cb = {on_begin, on_data, on_end};

/* Parse body split at `split` (or byte by byte when split < 0); returns the
 * mp_finish result (or -1 on a feed error) and fills g. */
static int parse(const char *boundary, const char *body, size_t len, long split, struct got *g)
{
    memset(g, 0, sizeof *g);
    mp_parser *p = mp_new(boundary, &cb, g);
    assert_non_null(p);
    int rc = 0;
    if (split < 0) {
        for (size_t i = 0; i < len && rc == 0; i++)
            rc = mp_feed(p, body + i, 1);
    } else {
        rc = mp_feed(p, body, (size_t)split);
        if (rc == 0)
            rc = mp_feed(p, body + split, len - (size_t)split);
    }
    if (rc == 0)
        rc = mp_finish(p);
    mp_free(p);
    return rc;
}

/* Every split of body must give the same result; returns it. */
static int parse_all_splits(const char *boundary, const char *body, size_t len, struct got *out)
{
    int rc0 = parse(boundary, body, len, 0, out);
    struct got g;
    for (long s = -1; s <= (long)len; s++) {
        int rc = parse(boundary, body, len, s, &g);
        assert_int_equal(rc, rc0);
        assert_int_equal(g.n, out->n);
        for (int i = 0; i < g.n && rc == 0; i++) {
            assert_int_equal(g.len[i], out->len[i]);
            assert_memory_equal(g.data[i], out->data[i], g.len[i]);
        }
    }
    return rc0;
}

#define BODY(s) s, sizeof(s) - 1

static void test_two_files(void **state)
{
    struct got g;
    static const char body[] = "--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"img\"; filename=\"a.jpg\"\r\n"
                               "Content-Type: image/jpeg\r\n\r\n"
                               "AAA\r\nA-\r\n--Xy-not-yet\r\n-"
                               "\r\n--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"img\"; filename=\"b.png\"\r\n\r\n"
                               "\r\n\r\n\r"
                               "\r\n--XyZ--\r\n";
    assert_int_equal(parse_all_splits("XyZ", BODY(body), &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.ends, 2);
    assert_string_equal(g.name[0], "img");
    assert_string_equal(g.filename[0], "a.jpg");
    assert_string_equal(g.ctype[0], "image/jpeg");
    assert_int_equal(g.len[0], strlen("AAA\r\nA-\r\n--Xy-not-yet\r\n-"));
    assert_memory_equal(g.data[0], "AAA\r\nA-\r\n--Xy-not-yet\r\n-", g.len[0]);
    assert_string_equal(g.filename[1], "b.png");
    assert_int_equal(g.len[1], 5);
    assert_memory_equal(g.data[1], "\r\n\r\n\r", 5);
}

static void test_preamble_epilogue(void **state)
{
    struct got g;
    static const char body[] = "This is a preamble\r\n--a--not\r\n--\r\nstill preamble\r\n--b\r\n"
                               "content-disposition: form-data; name=f; filename=x\r\n\r\n"
                               "data\r\n--b--\r\nepilogue --b\r\n garbage";
    assert_int_equal(parse_all_splits("b", BODY(body), &g), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.name[0], "f");
    assert_string_equal(g.filename[0], "x");
    assert_memory_equal(g.data[0], "data", 4);
    assert_int_equal(g.len[0], 4);
}

static void test_field_without_filename(void **state)
{
    struct got g;
    static const char body[] = "--b\r\nContent-Disposition: form-data; name=\"topk\"\r\n\r\n3\r\n--b--";
    assert_int_equal(parse_all_splits("b", BODY(body), &g), 0);
    assert_int_equal(g.n, 1);
    assert_false(g.has_filename[0]);
    assert_string_equal(g.name[0], "topk");
}

static void test_empty_file_and_padding(void **state)
{
    struct got g;
    /* transport padding after the delimiter, an empty part, quoted escapes */
    static const char body[] = "--b \t\r\nContent-Disposition: form-data; name=\"a\\\"q\"; "
                               "filename=\"x;y.jpg\"\r\n\r\n\r\n--b--";
    assert_int_equal(parse_all_splits("b", BODY(body), &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], 0);
    assert_string_equal(g.name[0], "a\"q");
    assert_string_equal(g.filename[0], "x;y.jpg");
}

static void test_truncated(void **state)
{
    struct got g;
    static const char body[] = "--b\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n"
                               "data without end";
    assert_int_equal(parse_all_splits("b", BODY(body), &g), -1);
    static const char body2[] = "--b\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n"
                                "data\r\n--b";
    assert_int_equal(parse_all_splits("b", BODY(body2), &g), -1);
    static const char body3[] = "--b\r\nContent-Disposition: form-data; na";
    assert_int_equal(parse_all_splits("b", BODY(body3), &g), -1);
}

static void test_no_boundary_in_body(void **state)
{
    struct got g;
    assert_int_equal(parse_all_splits("b", BODY("just some bytes\r\n--c\r\n"), &g), -1);
    assert_int_equal(g.n, 0);
    assert_int_equal(parse_all_splits("b", BODY(""), &g), -1);
}

static void test_malformed(void **state)
{
    struct got g;
    /* delimiter followed by junk instead of CRLF */
    assert_int_equal(parse_all_splits("b", BODY("--bX\r\n\r\n--b--"), &g), -1);
    /* LF-only line endings are not multipart */
    assert_int_equal(parse_all_splits("b", BODY("--b\nContent-Disposition: form-data\n\n--b--"), &g),
                     -1);
    /* a part without Content-Disposition */
    assert_int_equal(parse_all_splits("b", BODY("--b\r\nContent-Type: a/b\r\n\r\nx\r\n--b--"), &g),
                     -1);
    /* a header line without a colon */
    assert_int_equal(parse_all_splits("b", BODY("--b\r\nbogus\r\n\r\nx\r\n--b--"), &g), -1);
}

static void test_header_limit(void **state)
{
    size_t n = MP_MAX_HEADERS + 100;
    char *body = malloc(n + 64);
    int k = snprintf(body, 64, "--b\r\nX-Long: ");
    memset(body + k, 'a', n);
    struct got g;
    assert_int_equal(parse("b", body, (size_t)k + n, 10, &g), -1);
    free(body);
}

static void test_boundary_header(void **state)
{
    char b[MP_MAX_BOUNDARY + 1];
    assert_int_equal(mp_boundary("multipart/form-data; boundary=abc", b), 0);
    assert_string_equal(b, "abc");
    assert_int_equal(mp_boundary("Multipart/Form-Data;boundary=\"a b:c\"; charset=x", b), 0);
    assert_string_equal(b, "a b:c");
    assert_int_equal(mp_boundary("multipart/form-data; charset=\"x;boundary=no\"; boundary=yes", b),
                     0);
    assert_string_equal(b, "yes");
    assert_int_equal(mp_boundary("multipart/form-data", b), -2);
    assert_int_equal(mp_boundary("multipart/form-data; boundary=", b), -2);
    assert_int_equal(mp_boundary("multipart/form-data; boundary=\"\"", b), -2);
    assert_int_equal(mp_boundary("multipart/form-data; boundary=\"ends with space \"", b), -2);
    assert_int_equal(mp_boundary("multipart/form-data; boundary=bad\x01" "char", b), -2);
    char longb[200];
    snprintf(longb, sizeof longb, "multipart/form-data; boundary=%071d", 0);
    assert_int_equal(mp_boundary(longb, b), -2);
    assert_int_equal(mp_boundary("multipart/mixed; boundary=abc", b), -1);
    assert_int_equal(mp_boundary("multipart/form-dataX; boundary=abc", b), -1);
    assert_int_equal(mp_boundary("image/jpeg", b), -1);
    assert_int_equal(mp_boundary(NULL, b), -1);
}

static int stop_begin(void *u, const struct mp_part *p)
{
    return 1;
}

static void test_callback_stops(void **state)
{
    static const struct mp_callbacks stop = {stop_begin, NULL, NULL};
    mp_parser *p = mp_new("b", &stop, NULL);
    static const char body[] = "--b\r\nContent-Disposition: form-data; name=f\r\n\r\nx\r\n--b--";
    assert_int_equal(mp_feed(p, body, sizeof body - 1), -1);
    assert_string_equal(mp_error(p), "stopped");
    assert_int_equal(mp_feed(p, "x", 1), -1);
    mp_free(p);
    mp_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_files),
        cmocka_unit_test(test_preamble_epilogue),
        cmocka_unit_test(test_field_without_filename),
        cmocka_unit_test(test_empty_file_and_padding),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_no_boundary_in_body),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_boundary_header),
        cmocka_unit_test(test_callback_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
