/* The PyTorch and ONNX readers on broken files (tests/fixtures/formats,
 * made by make_corrupt.py): each gets its status and a message that says
 * what and where, and the pickles that would run a command run nothing.
 * Every prefix of good files (cut at many points) is refused cleanly, and a
 * good file loads from memory as from its path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "fixture.h"
#include "resnet.h"

#define DIR "tests/fixtures/formats/"
#define MARKER "/tmp/resnetd-pickle-ran"


static int status_of(const char *name)
{
    static const struct { const char *n; int s; } t[] = {
        {"RN_ERR_IO", RN_ERR_IO}, {"RN_ERR_FORMAT", RN_ERR_FORMAT}, {"RN_ERR_ARCH", RN_ERR_ARCH},
        {"RN_ERR_UNSUPPORTED", RN_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].n, name))
            return t[i].s;
    fail_msg("unknown status %s", name);
    return 0;
}

static void test_corrupt(void **state)
{
    (void)state;
    unlink(MARKER);
    size_t len;
    char *text = fixture_read(DIR "expected.json", &len);
    cJSON *exp = cJSON_Parse(text);
    free(text);
    assert_non_null(exp);
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, exp)
    {
        char path[512], err[1024] = "";
        snprintf(path, sizeof path, DIR "%s", e->string);
        rn_model *m = (rn_model *)1;
        rn_model_params mp = rn_model_default_params();
        int rc = rn_model_load(path, &mp, &m, err, sizeof err);
        int want = status_of(cJSON_GetObjectItem(e, "status")->valuestring);
        const char *msg = cJSON_GetObjectItem(e, "message")->valuestring;
        print_message("%s: %s\n", e->string, err);
        if (rc != want)
            fail_msg("%s: status %d (%s), expected %d", e->string, rc, err, want);
        if (!strstr(err, msg))
            fail_msg("%s: message \"%s\" lacks \"%s\"", e->string, err, msg);
        if (!strstr(err, path))
            fail_msg("%s: message \"%s\" does not name the file", e->string, err);
        assert_null(m);
        n++;
    }
    assert_true(n >= 20);
    cJSON_Delete(exp);
    if (access(MARKER, F_OK) == 0)
        fail_msg("a pickle ran a command: %s exists", MARKER);
}

/* Cut at many points, from the front: every prefix is refused, none crashes. */
static void test_prefixes(void **state)
{
    (void)state;
    static const char *const files[] = {"tests/fixtures/parity/basic_bf16.pth",
                                        "tests/fixtures/parity/bottleneck_legacy.pth",
                                        "tests/fixtures/parity/basic_folded.onnx"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len;
        char *buf = fixture_read(files[i], &len);
        for (size_t cut = 0; cut < len; cut += 1 + len / 150) {
            char err[512] = "";
            rn_model *m = NULL;
            int rc = rn_model_load_buffer(buf, cut, NULL, &m, err, sizeof err);
            if (rc == RN_OK || !err[0])
                fail_msg("%s cut at %zu: status %d, message \"%s\"", files[i], cut, rc, err);
            assert_null(m);
        }
        char err[512];
        rn_model *m = NULL;
        if (rn_model_load_buffer(buf, len, NULL, &m, err, sizeof err) != RN_OK)
            fail_msg("%s from memory: %s", files[i], err);
        assert_string_equal(rn_model_info_get(m)->format,
                            strstr(files[i], ".onnx") ? "onnx" : strstr(files[i], "legacy") ? "pytorch-legacy" : "pytorch-zip");
        rn_model_free(m);
        free(buf);
    }
}

int main(void)
{
    rn_set_log(NULL, NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
