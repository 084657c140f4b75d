/* Scratch memory is planned once: after a context is created (or has grown
 * to a larger batch or input), libresnet allocates nothing in rn_infer.
 * Counted by interposing malloc/calloc/realloc in this binary and counting
 * the calls made from its own code, where libresnet is linked statically
 * (not under ASan, which owns the allocator: there the test is skipped).
 * Calls from shared libraries are not ours to count: OpenBLAS 0.3.21's
 * small-matrix SGEMM kernel (N of 8, 16 or 32) mallocs on every call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resnet.h"

#if defined(__SANITIZE_ADDRESS__)
#define INTERPOSE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define INTERPOSE 0
#endif
#endif
#ifndef INTERPOSE
#define INTERPOSE 1
#endif

static volatile int counting;
static volatile long allocations;
static volatile size_t aligned_bytes; /* asked of posix_memalign: rn_alloc's buffers */

/* The main executable's code: libresnet, statically linked, and this test. */
extern char __executable_start[], etext[];
#define FROM_US(ra) ((char *)(ra) >= __executable_start && (char *)(ra) < etext)

#if INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n)
{
    if (counting && FROM_US(__builtin_return_address(0)))
        __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    if (counting && FROM_US(__builtin_return_address(0)))
        __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    if (counting && FROM_US(__builtin_return_address(0)))
        __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (counting && FROM_US(__builtin_return_address(0))) {
        __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&aligned_bytes, n, __ATOMIC_RELAXED);
    }
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}
#endif

static long count_infer(rn_ctx *ctx, const float *in, int n, int size, float *logits)
{
    char err[256];
    allocations = 0;
    counting = 1;
    int rc = rn_infer(ctx, in, n, size, size, logits, NULL, err, sizeof err);
    counting = 0;
    assert_int_equal(rc, RN_OK);
    return allocations;
}

/* state: a fixture model: ResNeXt (im2col + BLAS), a v1 bottleneck and a
 * pre-activation v2 (blocked engine where the CPU has kernels for it) */
static void test_no_alloc_on_inference(void **state)
{
    if (!INTERPOSE)
        skip();
    char err[256];
    rn_model *m;
    rn_ctx *ctx;
    assert_int_equal(rn_model_load(*state, NULL, &m, err, sizeof err), RN_OK);
    rn_ctx_params cp = rn_ctx_default_params();
    cp.n_threads = 2;
    cp.max_batch = 2;
    cp.max_size = 64;
    aligned_bytes = 0;
    counting = 1;
    int rc = rn_ctx_new(m, &cp, &ctx, err, sizeof err);
    counting = 0;
    assert_int_equal(rc, RN_OK);
    /* what the server's memory budget counts is what the context allocates */
    size_t want = rn_ctx_bytes(m, &cp), got = aligned_bytes;
    if (got < want || got > want + 64 * (size_t)allocations)
        fail_msg("%s: rn_ctx_new allocated %zu bytes, rn_ctx_bytes says %zu", (char *)*state, got,
                 want);
    float *in = calloc(4 * 3 * 96 * 96, sizeof(float));
    float *logits = calloc(4 * 1000, sizeof(float));
    for (int i = 0; i < 4 * 3 * 96 * 96; i++)
        in[i] = (float)(i % 97) / 97.0f - 0.5f;

    count_infer(ctx, in, 2, 64, logits); /* first run: BLAS may set up its buffers */
    assert_int_equal(count_infer(ctx, in, 2, 64, logits), 0);
    assert_int_equal(count_infer(ctx, in, 1, 48, logits), 0); /* smaller fits */
    assert_true(count_infer(ctx, in, 4, 96, logits) > 0);     /* larger grows once */
    assert_int_equal(count_infer(ctx, in, 4, 96, logits), 0);
    assert_int_equal(count_infer(ctx, in, 2, 64, logits), 0);

    /* profiling allocates when it starts, then nothing per run, and counts
     * every op of every run with its images */
    assert_int_equal(rn_ctx_profile(ctx, 1), RN_OK);
    assert_int_equal(count_infer(ctx, in, 2, 64, logits), 0);
    assert_int_equal(count_infer(ctx, in, 2, 64, logits), 0);
    assert_int_equal(count_infer(ctx, in, 1, 64, logits), 0);
    int n_ops = rn_ctx_profile_get(ctx, NULL, 0);
    assert_true(n_ops > 10);
    rn_op_profile *p = calloc((size_t)n_ops, sizeof *p);
    assert_int_equal(rn_ctx_profile_get(ctx, p, n_ops), n_ops);
    for (int i = 0; i < n_ops; i++) {
        if (p[i].calls != 3 || p[i].images != 5 || p[i].seconds <= 0 || !p[i].layer[0])
            fail_msg("op %d (%s, %s): %ld calls of %ld images in %g s", i, p[i].layer, p[i].what,
                     p[i].calls, p[i].images, p[i].seconds);
        if (!strncmp(p[i].what, "conv ", 5) && p[i].flops <= 0)
            fail_msg("op %d (%s): no FLOPs", i, p[i].what);
    }
    assert_int_equal(rn_ctx_profile(NULL, 1), RN_ERR_INVALID_ARG);
    assert_int_equal(rn_ctx_profile_get(NULL, p, n_ops), 0);
    assert_int_equal(rn_ctx_profile(ctx, 0), RN_OK);
    rn_ctx_profile_get(ctx, p, n_ops);
    for (int i = 0; i < n_ops; i++)
        assert_true(p[i].calls == 0 && p[i].seconds == 0);
    free(p);

    free(in);
    free(logits);
    rn_ctx_free(ctx);
    rn_model_free(m);
}

int main(void)
{
    rn_set_log(NULL, NULL, 0);
    const struct CMUnitTest tests[] = {
        {"no_alloc_resnext", test_no_alloc_on_inference, NULL, NULL,
         "tests/fixtures/parity/resnext.safetensors"},
        {"no_alloc_bottleneck", test_no_alloc_on_inference, NULL, NULL,
         "tests/fixtures/parity/bottleneck.safetensors"},
        {"no_alloc_resnetv2_basic_d", test_no_alloc_on_inference, NULL, NULL,
         "tests/fixtures/parity/resnetv2_basic_d.safetensors"},
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
