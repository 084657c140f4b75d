/* Unit tests of the API key file parser and check (server/auth.c): what a
 * file may hold, the message for each thing it must not (naming the line,
 * never the key), and which key opens which group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

static char err[512];

static struct auth_table *parse(const char *text)
{
    err[0] = '\0';
    return auth_parse(text, strlen(text), "keys.txt", err, sizeof err);
}

/* refused TEXT WANT: the parser refuses TEXT with a message holding WANT */
static void refused(const char *text, const char *want)
{
    struct auth_table *t = parse(text);
    assert_null(t);
    if (!strstr(err, want))
        fail_msg("message '%s' lacks '%s'", err, want);
}

/* comments, blank lines, CRLF, blanks around, several keys per group */
static void test_parse_valid(void **state)
{
    struct auth_table *t = parse("# rotated monthly\n\n  infer\tAAAAAAAAAAAAAAAA-1  \r\n"
                                 "infer BBBBBBBBBBBBBBBB-2\n"
                                 "metrics   #not-a-comment-key1\n"
                                 "features CCCCCCCCCCCCCCCC"); /* no final newline */
    assert_non_null(t);
    assert_int_equal(auth_table_keys(t, AUTH_INFER), 2);
    assert_int_equal(auth_table_keys(t, AUTH_FEATURES), 1);
    assert_int_equal(auth_table_keys(t, AUTH_METRICS), 1);
    assert_int_equal(auth_table_keys(t, AUTH_INSPECT), 0);
    assert_int_equal(auth_table_keys(t, AUTH_METADATA), 0);
    auth_table_free(t);
}

static void test_parse_refused(void **state)
{
    refused("", "keys.txt: no key in it");
    refused("# only a comment\n\n   \n", "keys.txt: no key in it");
    refused("infer AAAAAAAAAAAAAAAA\nadmin SECRETSECRETSECRET\n", "keys.txt:2: unknown group");
    refused("AAAAAAAAAAAAAAAAAAAA\n", "keys.txt:1: unknown group");
    refused("\n\ninfer short-key\n", "keys.txt:3: key of group infer is shorter than 16");
    refused("infer\n", "keys.txt:1: group infer without a key");
    refused("infer AAAAAAAAAAAAAAAA BBBB\n", "keys.txt:1: more than GROUP KEY");
    refused("infer AAAAAAAA\x01" "AAAAAAAAAA\n", "keys.txt:1: column 15: a control or non-ASCII");
    refused("infer AAAAAAAAAAAAAAAA\xc3\xa9\n", "keys.txt:1: column 23");
    char nul[] = "infer AAAAAAAAAAAAAAAA\0B\n";
    assert_null(auth_parse(nul, sizeof nul - 1, "k", err, sizeof err));
    assert_non_null(strstr(err, "k:1: column 23"));
    char line[700];
    memset(line, 'A', sizeof line);
    memcpy(line, "infer ", 6);
    line[sizeof line - 1] = '\0';
    refused(line, "keys.txt:1: line longer than 512");
    line[6 + 257] = '\0';
    refused(line, "keys.txt:1: key of group infer is longer than 256");
}

/* No message quotes the key, or a line that might be one. */
static void test_messages_hold_no_key(void **state)
{
    const char *secret = "S3cretS3cretS3cret";
    const char *bad[] = {"S3cretS3cretS3cret\n", "admin S3cretS3cretS3cret\n",
                         "infer S3cretS3cretS3cret extra\n", "infer S3cretS3cretS3cret\x7f\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(parse(bad[i]));
        assert_null(strstr(err, secret));
        assert_null(strstr(err, "S3cret"));
    }
}

static void test_allows(void **state)
{
    struct auth_table *t = parse("infer AAAAAAAAAAAAAAAA-1\ninfer BBBBBBBBBBBBBBBB-2\n"
                                 "metrics MMMMMMMMMMMMMMMM\n");
    assert_non_null(t);
    assert_true(auth_table_allows(t, AUTH_INFER, "AAAAAAAAAAAAAAAA-1"));
    assert_true(auth_table_allows(t, AUTH_INFER, "BBBBBBBBBBBBBBBB-2"));
    assert_false(auth_table_allows(t, AUTH_INFER, "MMMMMMMMMMMMMMMM"));  /* another group's */
    assert_false(auth_table_allows(t, AUTH_INFER, "AAAAAAAAAAAAAAAA-"));  /* a prefix */
    assert_false(auth_table_allows(t, AUTH_INFER, "AAAAAAAAAAAAAAAA-12")); /* longer */
    assert_false(auth_table_allows(t, AUTH_INFER, ""));
    assert_false(auth_table_allows(t, AUTH_INFER, NULL));
    char huge[1000];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_false(auth_table_allows(t, AUTH_INFER, huge));
    assert_true(auth_table_allows(t, AUTH_METRICS, "MMMMMMMMMMMMMMMM"));
    /* groups without a key are open, to anyone */
    assert_true(auth_table_allows(t, AUTH_METADATA, NULL));
    assert_true(auth_table_allows(t, AUTH_FEATURES, "anything"));
    assert_true(auth_table_allows(t, AUTH_OPEN, NULL));
    auth_table_free(t);
}

/* The file: its mode bits (not access(): root reads anything), its kind. */
static void test_file_checks(void **state)
{
    char dir[] = "/tmp/test_auth.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    snprintf(path, sizeof path, "%s/keys", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("metrics MMMMMMMMMMMMMMMM\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
    assert_null(auth_read_file(path, err, sizeof err));
    assert_non_null(strstr(err, "mode 0644 lets group or others read"));
    assert_int_equal(chmod(path, 0620), 0);
    assert_null(auth_read_file(path, err, sizeof err));
    assert_int_equal(chmod(path, 0600), 0);
    struct auth_table *t = auth_read_file(path, err, sizeof err);
    assert_non_null(t);
    auth_table_free(t);
    assert_null(auth_read_file(dir, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));
    char missing[700];
    snprintf(missing, sizeof missing, "%s/none", dir);
    assert_null(auth_read_file(missing, err, sizeof err));
    assert_non_null(strstr(err, "No such file"));

    /* the keys in force: a bad file keeps the previous ones */
    assert_int_equal(auth_check(1u << AUTH_METRICS, NULL, NULL), AUTH_OK); /* none yet */
    assert_int_equal(auth_load(path, err, sizeof err), 0);
    int g = -1;
    assert_int_equal(auth_check(1u << AUTH_METRICS, NULL, &g), AUTH_MISSING);
    assert_int_equal(g, AUTH_METRICS);
    assert_int_equal(auth_check(1u << AUTH_METRICS, "MMMMMMMMMMMMMMMX", NULL), AUTH_INVALID);
    assert_int_equal(auth_check(1u << AUTH_METRICS, "MMMMMMMMMMMMMMMM", NULL), AUTH_OK);
    assert_int_equal(auth_check(1u << AUTH_INFER, NULL, NULL), AUTH_OK);
    assert_int_equal(auth_check((1u << AUTH_METRICS) | (1u << AUTH_INFER), NULL, NULL), AUTH_OK);
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(auth_load(path, err, sizeof err), -1);
    assert_int_equal(auth_check(1u << AUTH_METRICS, "MMMMMMMMMMMMMMMM", NULL), AUTH_OK);
    assert_int_equal(auth_check(1u << AUTH_METRICS, NULL, NULL), AUTH_MISSING);
    auth_shutdown();
    assert_int_equal(auth_check(1u << AUTH_METRICS, NULL, NULL), AUTH_OK);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_messages_hold_no_key),
        cmocka_unit_test(test_allows),
        cmocka_unit_test(test_file_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
