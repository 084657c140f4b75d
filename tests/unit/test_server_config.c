/* Unit tests of resnetd's flag parsing (server/config.c) and of the one
 * mapping from failures to HTTP statuses (server/errors.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "errors.h"
#include "resnet.h"

static struct config cfg;
static char err[512];

static int run(int ncpu, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[6] = {"resnetd", (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    int argc = 1;
    while (argc < 5 && argv[argc])
        argc++;
    err[0] = '\0';
    return config_parse(&cfg, argc, argv, ncpu, err, sizeof err);
}

static int setup(void **state)
{
    unsetenv("RESNETD_MODEL");
    unsetenv("RESNETD_MAX_BATCH");
    unsetenv("RESNETD_PRECISION");
    unsetenv("RESNETD_LABELS");
    unsetenv("RESNETD_TLS_CERT");
    unsetenv("RESNETD_TLS_KEY");
    unsetenv("RESNETD_MODEL_DIR");
    unsetenv("RESNETD_MODEL_NAME");
    return 0;
}

/* --model-dir instead of --model, one of them; the command line's wins over
 * the environment's; --model-name names the one model of either. */
static void test_model_dir(void **state)
{
    assert_int_equal(run(2, "--model-dir", "/mnt/models", "--model-name", "isvc-1.b"), 0);
    assert_string_equal(cfg.model_dir, "/mnt/models");
    assert_string_equal(cfg.model_name, "isvc-1.b");
    assert_int_equal(cfg.n_models, 0);
    assert_int_equal(run(2, "--model-dir=/d", "--model=/m/a.onnx", NULL, NULL), -1);
    assert_non_null(strstr(err, "give one of them"));
    assert_int_equal(run(2, "--model-dir=/d", "--model-name=a/b", NULL, NULL), -1);
    assert_non_null(strstr(err, "--model-name 'a/b'"));
    assert_int_equal(run(2, "--model-dir=/d", "--labels=/l.txt", NULL, NULL), -1);
    assert_non_null(strstr(err, "not with --model-dir"));
    assert_int_equal(run(2, "--model=/m/a.onnx", "--model-name=web", NULL, NULL), 0);
    assert_string_equal(cfg.models[0].name, "web");
    assert_int_equal(run(2, "--model=/m/a.onnx", "--model=/m/b.onnx", "--model-name=web", NULL), -1);
    setenv("RESNETD_MODEL", "/m/a.onnx", 1);
    assert_int_equal(run(2, "--model-dir", "/d", NULL, NULL), 0); /* the flag wins */
    assert_int_equal(cfg.n_models, 0);
    unsetenv("RESNETD_MODEL");
    setenv("RESNETD_MODEL_DIR", "/d", 1);
    assert_int_equal(run(2, "--model", "/m/a.onnx", NULL, NULL), 0);
    assert_string_equal(cfg.model_dir, "");
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), 0);
    assert_string_equal(cfg.model_dir, "/d");
    assert_int_equal(run(2, "--threads=1", NULL, NULL, NULL), 0);
    unsetenv("RESNETD_MODEL_DIR");
    assert_int_equal(run(2, "--threads=1", NULL, NULL, NULL), -1);
    assert_non_null(strstr(err, "--model-dir DIR"));
}

/* --labels [NAME=]FILE: to the named model or the default, refused for an
 * unknown name or twice for one model; RESNETD_LABELS, replaced by flags */
static void test_labels(void **state)
{
    assert_int_equal(run(2, "--model=a=/m/a.onnx", "--model=b=/m/b.pth", "--labels=b=/l/b.txt",
                         "--labels=/l/x=1.json"), 0);
    assert_string_equal(cfg.models[0].labels, "/l/x=1.json"); /* a path, not NAME= */
    assert_string_equal(cfg.models[1].labels, "/l/b.txt");
    assert_int_equal(run(2, "--labels", "c=/l/c.txt", "--model", "/m/a.onnx"), -1);
    assert_non_null(strstr(err, "no model named 'c'"));
    assert_int_equal(run(2, "--model=/m/a.onnx", "--labels=/l/1", "--labels=a=/l/2", NULL), -1);
    assert_non_null(strstr(err, "has labels already"));
    assert_int_equal(run(2, "--model=/m/a.onnx", "--labels=b c=/l/1", NULL, NULL), -1);
    assert_non_null(strstr(err, "--labels b c=/l/1: model name may hold only"));
    assert_int_equal(run(2, "--model=/m/a.onnx", "--labels=", NULL, NULL), -1);
    setenv("RESNETD_MODEL", "a=/m/a.onnx,b=/m/b.onnx", 1);
    setenv("RESNETD_LABELS", "b=/l/b.txt, /l/a.txt", 1);
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), 0);
    assert_string_equal(cfg.models[0].labels, "/l/a.txt");
    assert_string_equal(cfg.models[1].labels, "/l/b.txt");
    assert_int_equal(run(2, "--labels", "b=/l/other.txt", NULL, NULL), 0);
    assert_string_equal(cfg.models[0].labels, "");
    assert_string_equal(cfg.models[1].labels, "/l/other.txt");
    unsetenv("RESNETD_MODEL");
    unsetenv("RESNETD_LABELS");
}

static void test_defaults(void **state)
{
    assert_int_equal(run(2, "--model", "/m/resnet50.safetensors", NULL, NULL), 0);
    assert_int_equal(cfg.n_models, 1);
    assert_string_equal(cfg.models[0].name, "resnet50");
    assert_string_equal(cfg.models[0].path, "/m/resnet50.safetensors");
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 8080);
    assert_int_equal(cfg.max_batch, 8);
    assert_int_equal(cfg.max_queue, 64);
    assert_int_equal(cfg.max_delay_us, 0);
    assert_int_equal(cfg.max_body_bytes, 32 << 20);
    assert_true(cfg.workers * cfg.threads <= 2);
    assert_int_equal(cfg.precision, RN_PRECISION_FP32);
    assert_int_equal(run(16, "--model", "a.safetensors", NULL, NULL), 0);
    assert_true(cfg.workers * cfg.threads <= 16 && cfg.workers * cfg.threads >= 8);
    assert_int_equal(run(8, "--model", "a", "--threads", "8"), 0);
    assert_int_equal(cfg.workers, 1);
}

static void test_values(void **state)
{
    assert_int_equal(run(2, "--model=x=/p/a.st", "--listen=[::1]:9000", "--max-body-bytes", "1M"), 0);
    assert_string_equal(cfg.models[0].name, "x");
    assert_string_equal(cfg.listen_host, "::1");
    assert_int_equal(cfg.listen_port, 9000);
    assert_int_equal(cfg.max_body_bytes, 1 << 20);
    assert_int_equal(run(2, "--model", "a", "--model", "b=a"), 0);
    assert_int_equal(cfg.n_models, 2);
    assert_int_equal(run(2, "--model", "a", "--log-format", "json"), 0);
    assert_int_equal(cfg.log_format, LOG_JSON);
    assert_int_equal(run(2, "--model", "a", "--precision", "bf16"), 0);
    assert_int_equal(cfg.precision, RN_PRECISION_BF16);
    assert_int_equal(run(2, "--model", "a", "--precision=fp32", NULL), 0);
    assert_int_equal(cfg.precision, RN_PRECISION_FP32);
}

static void test_errors(void **state)
{
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), -1);
    assert_non_null(strstr(err, "no model"));
    assert_int_equal(run(2, "--model", "a", "--max-batch", "0"), -1);
    assert_non_null(strstr(err, "--max-batch"));
    assert_int_equal(run(2, "--model", "a", "--max-batch", "8x"), -1);
    assert_int_equal(run(2, "--model", "a", "--max-queue", "99999999"), -1);
    assert_int_equal(run(2, "--model", "a", "--listen", "localhost:80"), -1);
    assert_non_null(strstr(err, "numeric"));
    assert_int_equal(run(2, "--model", "a", "--listen", "127.0.0.1:70000"), -1);
    assert_int_equal(run(2, "--model", "a", "--bogus", "1"), -1);
    assert_non_null(strstr(err, "unknown option"));
    assert_int_equal(run(2, "--model", "a", "--threads", NULL), -1);
    assert_int_equal(run(2, "--model", "a", "--model", "a"), -1);
    assert_non_null(strstr(err, "already"));
    assert_int_equal(run(2, "--model", "bad name=x", NULL, NULL), -1);
    assert_int_equal(run(2, "--model", "a", "--log-format", "xml"), -1);
    /* the error names the flag and the accepted values */
    assert_int_equal(run(2, "--model", "a", "--precision", "fp64"), -1);
    assert_non_null(strstr(err, "--precision fp64"));
    assert_non_null(strstr(err, "fp32 or bf16"));
    assert_int_equal(run(2, "--model", "a", "--precision", "BF16"), -1);
    assert_int_equal(run(2, "--model", "a", "--precision", NULL), -1);
    assert_non_null(strstr(err, "--precision needs a value"));
    assert_int_equal(run(2, "--model", "a", "stray", NULL), -1);
    assert_int_equal(run(2, "--model", "a", "--max-queue", "4"), -1); /* batch 8 > queue 4 */
}

static void test_environment(void **state)
{
    setenv("RESNETD_MODEL", "a=/x/a.st, /y/b.st", 1);
    setenv("RESNETD_MAX_BATCH", "4", 1);
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(cfg.n_models, 2);
    assert_string_equal(cfg.models[1].name, "b");
    assert_int_equal(cfg.max_batch, 4);
    assert_int_equal(run(2, "--max-batch", "2", "--model", "c"), 0); /* flags win */
    assert_int_equal(cfg.max_batch, 2);
    assert_int_equal(cfg.n_models, 1);
    setenv("RESNETD_PRECISION", "bf16", 1);
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(cfg.precision, RN_PRECISION_BF16);
    assert_int_equal(run(2, "--precision", "fp32", NULL, NULL), 0); /* flags win */
    assert_int_equal(cfg.precision, RN_PRECISION_FP32);
    setenv("RESNETD_PRECISION", "half", 1);
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), -1);
    assert_non_null(strstr(err, "RESNETD_PRECISION half: expected fp32 or bf16"));
    unsetenv("RESNETD_PRECISION");
    setenv("RESNETD_MAX_BATCH", "many", 1);
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), -1);
    assert_non_null(strstr(err, "RESNETD_MAX_BATCH"));
    setup(state);
}

/* --tls-cert and --tls-key: both or neither, from flags or the environment */
static void test_tls(void **state)
{
    setenv("RESNETD_MODEL", "a", 1);
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), 0);
    assert_string_equal(cfg.tls_cert, "");
    assert_int_equal(run(2, "--tls-cert", "/c.pem", "--tls-key", "/k.pem"), 0);
    assert_string_equal(cfg.tls_cert, "/c.pem");
    assert_string_equal(cfg.tls_key, "/k.pem");
    assert_int_equal(run(2, "--tls-cert", "/c.pem", NULL, NULL), -1);
    assert_non_null(strstr(err, "--tls-cert given without --tls-key"));
    assert_int_equal(run(2, "--tls-key", "/k.pem", NULL, NULL), -1);
    assert_non_null(strstr(err, "--tls-key given without --tls-cert"));
    assert_int_equal(run(2, "--tls-key", "", "--tls-cert", "/c.pem"), -1); /* "": not given */
    assert_non_null(strstr(err, "--tls-cert given without --tls-key"));
    setenv("RESNETD_TLS_CERT", "/env.pem", 1);
    assert_int_equal(run(2, NULL, NULL, NULL, NULL), -1);
    assert_int_equal(run(2, "--tls-key", "/k.pem", NULL, NULL), 0);
    assert_string_equal(cfg.tls_cert, "/env.pem");
    assert_int_equal(run(2, "--tls-key", "/k.pem", "--tls-cert", "/c.pem"), 0); /* flags win */
    assert_string_equal(cfg.tls_cert, "/c.pem");
    setup(state);
}

static void test_error_mapping(void **state)
{
    assert_int_equal(srv_err_http(srv_err_from_rn(RN_OK)), 200);
    assert_int_equal(srv_err_http(srv_err_from_rn(RN_ERR_IMAGE_FORMAT)), 415); /* names the types we decode */
    assert_int_equal(srv_err_http(srv_err_from_rn(RN_ERR_IMAGE_CORRUPT)), 400);
    assert_int_equal(srv_err_http(srv_err_from_rn(RN_ERR_IMAGE_TOO_LARGE)), 413);
    assert_int_equal(srv_err_http(srv_err_from_rn(RN_ERR_INTERNAL)), 500);
    assert_int_equal(srv_err_http(SRV_ERR_QUEUE_FULL), 503);
    assert_true(srv_err_retry(SRV_ERR_QUEUE_FULL));
    assert_false(srv_err_retry(SRV_ERR_TIMEOUT));
    assert_int_equal(srv_err_http(SRV_ERR_TIMEOUT), 504);
    /* every error has a status and a code, and bad input is never a 500 */
    for (int e = SRV_ERR_BAD_REQUEST; e < SRV_ERR_COUNT; e++) {
        assert_true(srv_err_http(e) >= 400);
        assert_true(strlen(srv_err_code(e)) > 0);
        if (e != SRV_ERR_INTERNAL)
            assert_int_not_equal(srv_err_http(e), 500);
    }
    assert_int_equal(srv_err_http((enum srv_err)999), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_values, setup),
        cmocka_unit_test_setup(test_errors, setup),
        cmocka_unit_test_setup(test_environment, setup),
        cmocka_unit_test_setup(test_labels, setup),
        cmocka_unit_test_setup(test_tls, setup),
        cmocka_unit_test_setup(test_model_dir, setup),
        cmocka_unit_test(test_error_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
