/* Unit tests of the start-up memory check (server/budget.c): the activation
 * estimate for ResNet-50's shapes, and which configurations fit a machine. */
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

static rn_model_info resnet50(void)
{
    rn_model_info i;
    memset(&i, 0, sizeof i);
    i.block = RN_BLOCK_BOTTLENECK;
    i.stem_channels = 64;
    i.n_stages = 4;
    int w[4] = {64, 128, 256, 512}, b[4] = {3, 4, 6, 3};
    for (int s = 0; s < 4; s++) {
        i.widths[s] = w[s];
        i.out_channels[s] = 4 * w[s];
        i.blocks[s] = b[s];
    }
    i.groups = 1;
    i.n_classes = 1000;
    i.embed_dim = 2048;
    i.n_params = 25557032;
    return i;
}

static void parse(struct config *cfg, const char *queue, const char *batch)
{
    char *argv[] = {"resnetd", "--model", "m.safetensors", "--max-queue", (char *)queue,
                    "--max-batch", (char *)batch, NULL};
    char err[512];
    unsetenv("RESNETD_MODEL");
    assert_int_equal(config_parse(cfg, 7, argv, 2, err, sizeof err), 0);
}

static void test_activations(void **state)
{
    rn_model_info i = resnet50();
    uint64_t col;
    /* the largest tensors are 64x112x112 = 256x56x56 = 802816 floats */
    assert_int_equal(budget_activation_bytes(&i, 224, &col), 4 * 802816 * 4);
    assert_true(col >= (uint64_t)3 * 49 * 112 * 112 * 4);
    assert_true(budget_activation_bytes(&i, 448, NULL) > 3 * budget_activation_bytes(&i, 224, NULL));
}

static void test_budget(void **state)
{
    static struct config cfg;
    rn_model_info i = resnet50();
    struct mem_budget b;

    parse(&cfg, "64", "8"); /* the defaults: about 2 GiB, mostly the queue */
    memset(&b, 0, sizeof b);
    budget_add_model(&b, &cfg, &i, 224);
    assert_true(b.queue >= 64 * ((uint64_t)32 << 20));
    assert_true(b.total > 2 * GIB && b.total < 4 * GIB);
    assert_true(b.weights >= (uint64_t)25557032 * 4);

    parse(&cfg, "65536", "8"); /* 65536 x 32 MiB: 2 TiB */
    memset(&b, 0, sizeof b);
    budget_add_model(&b, &cfg, &i, 224);
    assert_true(b.total > 2048 * GIB);

    parse(&cfg, "256", "256"); /* 256 images of activations per worker */
    memset(&b, 0, sizeof b);
    budget_add_model(&b, &cfg, &i, 224);
    assert_true(b.activations > (uint64_t)cfg.workers * 256 * 12 * 1000000);
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
