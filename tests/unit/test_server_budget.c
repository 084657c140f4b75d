/* Unit tests of the start-up memory check (server/budget.c): the activation
 * activations of a model's contexts, and which configurations fit a machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "budget.h"

#define GIB ((uint64_t)1 << 30)

/* A small fixture model: the budget counts what its contexts allocate. */
static rn_model *fixture(void)
{
    char err[256];
    rn_model *m = NULL;
    rn_set_log(NULL, NULL, 0);
    if (rn_model_load("tests/fixtures/parity/bottleneck.safetensors", NULL, &m, err, sizeof err) < 0)
        fail_msg("%s", err);
    return m;
}

static void parse(struct config *cfg, const char *queue, const char *batch)
{
    char *argv[] = {"resnetd", "--model", "m.safetensors", "--max-queue", (char *)queue,
                    "--max-batch", (char *)batch, NULL};
    char err[512];
    unsetenv("RESNETD_MODEL");
    assert_int_equal(config_parse(cfg, 7, argv, 2, err, sizeof err), 0);
}

/* A worker's context is what rn_ctx_bytes says (test_noalloc holds that to
 * what rn_ctx_new allocates), and it grows with the batch. */
static void test_activations(void **state)
{
    static struct config cfg;
    rn_model *m = fixture();
    struct mem_budget b8, b256;
    parse(&cfg, "64", "8");
    memset(&b8, 0, sizeof b8);
    budget_add_model(&b8, &cfg, m, 224);
    rn_ctx_params cp = rn_ctx_default_params();
    cp.n_threads = cfg.threads;
    cp.max_batch = 8;
    cp.max_size = 224;
    assert_true(b8.activations >= (uint64_t)cfg.workers * rn_ctx_bytes(m, &cp));
    parse(&cfg, "256", "256");
    memset(&b256, 0, sizeof b256);
    budget_add_model(&b256, &cfg, m, 224);
    assert_true(b256.activations > 16 * b8.activations);
    /* a queued image may hold the largest layer whole: maxpool, 16 x 56 x 56 */
    assert_true(b8.activations >= 64 * (uint64_t)16 * 56 * 56 * sizeof(float));
    rn_model_free(m);
}

static void test_budget(void **state)
{
    static struct config cfg;
    rn_model *m = fixture();
    struct mem_budget b;

    parse(&cfg, "64", "8"); /* the defaults: about 2 GiB, mostly the queue */
    memset(&b, 0, sizeof b);
    budget_add_model(&b, &cfg, m, 224);
    assert_true(b.queue >= 64 * ((uint64_t)32 << 20));
    assert_true(b.total > 2 * GIB && b.total < 4 * GIB);
    assert_true(b.weights >= (uint64_t)rn_model_info_get(m)->n_params * 4);

    parse(&cfg, "65536", "8"); /* 65536 x 32 MiB: 2 TiB */
    memset(&b, 0, sizeof b);
    budget_add_model(&b, &cfg, m, 224);
    assert_true(b.total > 2048 * GIB);
    rn_model_free(m);
}

static void test_check(void **state)
{
    static struct config cfg;
    char err[512];
    /* No model is loaded in this test: only the queue and decode terms count. */
    parse(&cfg, "65536", "8");
    assert_int_equal(budget_check(&cfg, 64 * GIB, err, sizeof err), -1);
    assert_non_null(strstr(err, "--max-queue"));
    assert_non_null(strstr(err, "64.0 GiB"));
    parse(&cfg, "64", "8");
    assert_int_equal(budget_check(&cfg, 64 * GIB, err, sizeof err), 0);
    assert_int_equal(budget_check(&cfg, GIB, err, sizeof err), -1);
    assert_true(budget_machine_memory() > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
