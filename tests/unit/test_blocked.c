/* The blocked engine (core/engine/blocked.c) on every table of micro-kernels this
 * CPU runs (core/engine/kernels.h: AVX-512, AVX2, NEON, plain C) against a naive
 * reference convolution in double, one convolution at a time, on shapes that reach
 * every path of it: direct tiles of 1..14 pixels with 1, 2 and 4 output
 * blocks, stride 1 and 2, edge tiles with extra tap columns, the stem's NCHW
 * input, Winograd F(2x2, 3x3) on odd sizes with tiles split across images
 * and output-block groups, channel counts that are not multiples of 16, and
 * BF16 weights, direct and Winograd, with FP32 or bf16 output, grouped
 * convolutions (ResNeXt) merged into blocks in every way; with bias,
 * ReLU and residual accumulation, on 1, 2 and 3 threads. BF16 cases on the
 * tables with bf16 tiles that this CPU runs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv_ref.h"
#include "engine/cpu.h"
#include "engine/kernels.h"

/* NCHW (n, c, h, w) <-> NCHW16c (n, ceil(c/16), h, w, 16), padding channels 0 */
static void to_blocked(const float *src, int n, int c, int hw, float *dst)
{
    int cb = rn_cblocks(c);
    memset(dst, 0, (size_t)n * cb * 16 * hw * sizeof(float));
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int q = 0; q < hw; q++)
                dst[(((size_t)b * cb + ch / 16) * hw + q) * 16 + ch % 16] =
                    src[((size_t)b * c + ch) * hw + q];
}

static void from_blocked(const float *src, int n, int c, int hw, float *dst)
{
    int cb = rn_cblocks(c);
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int q = 0; q < hw; q++)
                dst[((size_t)b * c + ch) * hw + q] = src[(((size_t)b * cb + ch / 16) * hw + q) * 16 + ch % 16];
}

struct shape {
    int in_c, out_c, k, stride, n, ih, iw;
    int kind;   /* RN_PACK_* */
    int groups;
};

static const struct shape shapes[] = {
    {3, 64, 7, 2, 2, 29, 23, RN_PACK_NCHW, 1},  /* the stem, odd sizes */
    {3, 20, 7, 2, 1, 8, 9, RN_PACK_NCHW, 1},    /* stem, one partial output block */
    {64, 256, 1, 1, 2, 14, 14, RN_PACK_F32, 1}, /* 1x1: one row of 196 pixels */
    {512, 128, 1, 1, 2, 7, 7, RN_PACK_F32, 1},  /* rows of 49 (AVX-512: 14 + 14 + 13 + 8) */
    {48, 40, 1, 1, 3, 5, 3, RN_PACK_F32, 1},    /* partial blocks, odd block count */
    {256, 128, 1, 2, 2, 15, 13, RN_PACK_F32, 1}, /* 1x1 stride 2 (v1 projection) */
    {64, 128, 3, 2, 2, 17, 12, RN_PACK_F32, 1},  /* 3x3 stride 2 (v1.5) */
    {128, 128, 3, 2, 1, 13, 13, RN_PACK_F32, 1}, /* 7-wide rows: 4 output blocks */
    {32, 64, 3, 2, 2, 4, 4, RN_PACK_F32, 1},     /* 2x2 output: every tap at an edge */
    {64, 64, 3, 1, 2, 56, 56, RN_PACK_WINO, 1},  /* many chunks */
    {32, 48, 3, 1, 3, 7, 5, RN_PACK_WINO, 1},    /* odd sizes, tiles across images */
    {512, 512, 3, 1, 1, 7, 7, RN_PACK_WINO, 1},  /* few tiles: output-block groups */
    {128, 128, 3, 1, 2, 7, 7, RN_PACK_WINO, 1},  /* 32 tiles (AVX-512: 14 + 14 + 4) */
    {20, 36, 3, 1, 1, 1, 1, RN_PACK_WINO, 1},    /* 1x1 input, partial blocks */
    {16, 16, 3, 1, 2, 2, 9, RN_PACK_WINO, 1},
    {64, 64, 3, 1, 2, 9, 11, RN_PACK_BF16, 1},
    {64, 32, 1, 2, 1, 9, 7, RN_PACK_BF16, 1},
    {64, 64, 3, 1, 2, 56, 56, RN_PACK_WINO4, 1}, /* F(4x4, 3x3): many chunks */
    {128, 128, 3, 1, 2, 28, 28, RN_PACK_WINO4, 1},
    {32, 48, 3, 1, 3, 7, 5, RN_PACK_WINO4, 1},   /* partial tiles, across images */
    {20, 36, 3, 1, 1, 1, 1, RN_PACK_WINO4, 1},
    {16, 16, 3, 1, 2, 6, 10, RN_PACK_WINO4, 1},
    {64, 64, 3, 1, 2, 9, 11, RN_PACK_WINO_BF16, 1},
    {48, 40, 3, 1, 3, 5, 7, RN_PACK_WINO_BF16, 1},
    /* groups (ResNeXt): 4 or 2 groups of 4 or 8 channels merged into one
     * block, groups of whole blocks, groups that only merge all together
     * (3 x 8 channels), different input and output group widths, nb > 1
     * within a group of 4 blocks */
    {128, 128, 3, 1, 2, 9, 11, RN_PACK_WINO4, 32},
    {256, 256, 3, 2, 2, 9, 8, RN_PACK_F32, 32},
    {64, 64, 3, 1, 2, 7, 7, RN_PACK_F32, 8},
    {512, 512, 3, 1, 1, 7, 7, RN_PACK_WINO, 32},
    {128, 256, 1, 1, 2, 5, 6, RN_PACK_F32, 4},
    {24, 24, 3, 1, 2, 6, 5, RN_PACK_WINO4, 3},
    {48, 96, 3, 2, 1, 9, 9, RN_PACK_F32, 3},
    {256, 512, 3, 1, 1, 6, 6, RN_PACK_WINO, 2},
    {256, 256, 3, 2, 1, 14, 14, RN_PACK_F32, 2},
    {64, 64, 3, 1, 2, 9, 11, RN_PACK_BF16, 16},
    {128, 128, 3, 1, 2, 9, 11, RN_PACK_WINO_BF16, 32},
    {256, 128, 3, 1, 1, 8, 8, RN_PACK_WINO_BF16, 8},
};

static const char *kind_name[] = {"fp32", "nchw", "bf16", "winograd", "winograd-bf16",
                                  "winograd-4x4"};

/* bf16_out: the result as bf16 (rn_conv_args.out_b), as a BF16 model's
 * first convolutions of a block write it. The same inputs and reference on 1,
 * 2 and 3 threads: the reference costs more than the engine (most of the
 * run under qemu, tests/aarch64.sh). */
static void run_case(const rn_kernels *k, const struct shape *s, int relu, int accumulate, int bias_on,
                     int bf16_out)
{
    rn_conv c = {.in_c = s->in_c, .out_c = s->out_c, .kh = s->k, .kw = s->k, .stride = s->stride,
                 .pad = s->k / 2, .groups = s->groups};
    int n = s->n, ih = s->ih, iw = s->iw, oh = rn_out_dim(ih, s->k, s->stride, s->k / 2),
        ow = rn_out_dim(iw, s->k, s->stride, s->k / 2);
    int bf16 = s->kind == RN_PACK_BF16 || s->kind == RN_PACK_WINO_BF16;
    c.w = rand_buf((size_t)c.out_c * c.in_c / c.groups * c.kh * c.kw);
    c.b = rand_buf((size_t)c.out_c);
    void *packed = rn_alloc(rn_conv_packed_bytes(&c, s->kind));
    rn_conv_pack(&c, s->kind, packed);

    size_t in_n = (size_t)n * c.in_c * ih * iw, in_bn = (size_t)n * rn_cblocks(c.in_c) * 16 * ih * iw;
    size_t on = (size_t)n * c.out_c * oh * ow, obn = (size_t)n * rn_cblocks(c.out_c) * 16 * oh * ow;
    float *in = rand_buf(in_n), *in_b = rn_alloc(in_bn * sizeof(float));
    float *ref = rand_buf(on), *out = rn_alloc(on * sizeof(float)), *outf = rn_alloc(obn * sizeof(float));
    float *res = rn_alloc(obn * sizeof(float)); /* the residual, if accumulating, blocked */
    uint16_t *in_h = rn_alloc(in_bn * sizeof(uint16_t));
    to_blocked(ref, n, c.out_c, oh * ow, res);
    to_blocked(in, n, c.in_c, ih * iw, in_b);
    const float *bias = bias_on ? c.b : NULL;
    naive_conv(&c, in, n, ih, iw, ref, bias, relu, accumulate);
    uint16_t *res_h = bf16_out ? rn_alloc(obn * sizeof(uint16_t)) : NULL;

    /* RN_TEST_MAX_THREADS (tests/aarch64.sh: 1 under qemu-user, whose threads
     * hang in this sandbox): the pool's sizes to try, 1 to 3 */
    const char *mt = getenv("RN_TEST_MAX_THREADS");
    int max_threads = mt && atoi(mt) >= 1 && atoi(mt) <= 3 ? atoi(mt) : 3;
    for (int threads = 1; threads <= max_threads; threads++) {
        rn_exec x = {.pool = rn_pool_new(threads), .k = k};
        /* any multiple of 16 floats will do (engine.h), not only the scratch size */
        x.col_stride = s->kind >= RN_PACK_WINO
                           ? rn_conv_wino_floats(k, &c) + 16
                           : 0;
        x.col = rn_alloc((x.col_stride + 16) * threads * sizeof(float));
        memcpy(outf, res, obn * sizeof(float));
        rn_conv_args a = {.c = &c, .in = s->kind == RN_PACK_NCHW ? in : in_b, .n = n, .ih = ih,
                          .iw = iw, .out = outf, .bias = bias, .relu = relu,
                          .accumulate = accumulate};
        if (bf16) {
            rn_blocked_to_bf16(&x, in_b, in_bn, in_h);
            a.in_b = in_h;
        }
        a.out_b = res_h;
        rn_conv_blocked_forward(&x, &a);
        if (res_h)
            for (size_t i = 0; i < obn; i++) {
                uint32_t u = (uint32_t)res_h[i] << 16;
                memcpy(&outf[i], &u, sizeof u);
            }
        from_blocked(outf, n, c.out_c, oh * ow, out);

        /* FP32: float rounding of sums of up to in_c * 9 terms, amplified by the
         * coefficients (up to 8) of F(4x4, 3x3)'s transforms; BF16: 8-bit
         * mantissas of inputs and weights; relative to the output's scale */
        double md = 0, scale = 0;
        for (size_t i = 0; i < on; i++) {
            md = fmax(md, fabs((double)out[i] - ref[i]));
            scale = fmax(scale, fabs(ref[i]));
        }
        double tol = (bf16 ? 2e-2 : s->kind == RN_PACK_WINO4 ? 2e-5 : 2e-6) * fmax(scale, 1.0);
        if (md > tol)
            fail_msg("%s: %s conv %dx%d/%d %d->%d in %d groups on %d x %dx%d, %d threads, relu %d acc %d "
                     "bias %d bf16 out %d: max diff %g (tolerance %g)",
                     k->name, kind_name[s->kind], s->k, s->k, s->stride, s->in_c, s->out_c, c.groups, n, ih, iw,
                     threads, relu, accumulate, bias_on, bf16_out, md, tol);
        /* the padding channels of the last output block stay zero */
        for (int b = 0; b < n; b++)
            for (int ch = c.out_c; ch < rn_cblocks(c.out_c) * 16; ch++)
                for (int q = 0; q < oh * ow; q++) {
                    float v = outf[(((size_t)b * rn_cblocks(c.out_c) + ch / 16) * oh * ow + q) * 16 + ch % 16];
                    if (v != 0.0f)
                        fail_msg("%s conv %d->%d: padding channel %d is %g", kind_name[s->kind],
                                 c.in_c, c.out_c, ch, v);
                }
        rn_pool_free(x.pool);
        rn_free(x.col);
    }
    rn_free(packed);
    rn_free(c.w);
    rn_free(c.b);
    rn_free(in);
    rn_free(in_b);
    rn_free(in_h);
    rn_free(res_h);
    rn_free(res);
    rn_free(ref);
    rn_free(out);
    rn_free(outf);
}

/* state: the enum rn_isa to test */
static void test_blocked_shapes(void **state)
{
    int isa = (int)(intptr_t)*state;
    const rn_kernels *k = rn_kernels_get(isa);
    if (!k)
        skip(); /* this CPU or build cannot run the table */
    /* RN_TEST_QUICK=1 (tests/aarch64.sh, under qemu): not the shapes of over
     * 20 M multiply-adds, whose double-precision reference qemu takes minutes
     * over; every kernel path still runs, the driver's many-chunk cases only
     * natively */
    const char *quick = getenv("RN_TEST_QUICK");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct shape *sh = &shapes[i];
        int so = rn_out_dim(sh->ih, sh->k, sh->stride, sh->k / 2) *
                 rn_out_dim(sh->iw, sh->k, sh->stride, sh->k / 2);
        if (quick && *quick == '1' &&
            (double)sh->n * sh->in_c * sh->out_c * sh->k * sh->k * so > 20e6)
            continue;
        int bf16 = shapes[i].kind == RN_PACK_BF16 || shapes[i].kind == RN_PACK_WINO_BF16;
        if (bf16 && !rn_isa_bf16(isa))
            continue;
        run_case(k, &shapes[i], 0, 0, 0, 0);
        run_case(k, &shapes[i], 1, 0, 1, 0);
        run_case(k, &shapes[i], 1, 1, 1, 0);
        if (bf16)
            run_case(k, &shapes[i], 1, 0, 1, 1);
    }
}

/* Every row length a tile plan may cut (core/engine/blocked.c plan_row: whole
 * tiles, then the last pixels in the table's one-instance pieces): 1x1 rows
 * of 1 to 60 pixels and a few chunked ones, with 2 and 4 output blocks;
 * strided 3x3 rows with their edge passes; Winograd chunks of 1 to 60
 * tiles. */
static void test_row_lengths(void **state)
{
    int isa = (int)(intptr_t)*state;
    const rn_kernels *k = rn_kernels_get(isa);
    if (!k)
        skip();
    static const int longer[] = {97, 130, 141, 200, 257};
    for (int i = 0; i < 60 + (int)(sizeof longer / sizeof *longer); i++) {
        int len = i < 60 ? i + 1 : longer[i - 60];
        const struct shape cases[] = {
            {16, 32, 1, 1, 1, 1, len, RN_PACK_F32, 1},
            {16, 64, 1, 1, 1, 1, len, RN_PACK_F32, 1},
            {16, 64, 3, 2, 1, 3, 2 * len, RN_PACK_F32, 1},
            {16, 64, 3, 1, 1, 2, 2 * len, RN_PACK_WINO, 1},
        };
        for (size_t q = 0; q < sizeof cases / sizeof *cases; q++)
            if (len <= 60 || q < 2)
                run_case(k, &cases[q], 1, 1, 1, 0);
    }
}

/* The table's max pool 3x3/2 (padding 1) of one block of 16 channels,
 * against the window's max taken here, exactly (a max rounds nothing). */
static void test_maxpool(void **state)
{
    const rn_kernels *k = rn_kernels_get((int)(intptr_t)*state);
    if (!k)
        skip();
    static const int sizes[][2] = {{1, 1}, {2, 3}, {3, 2}, {7, 7}, {5, 8}, {56, 41}, {112, 112}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int h = sizes[i][0], w = sizes[i][1], oh = rn_out_dim(h, 3, 2, 1), ow = rn_out_dim(w, 3, 2, 1);
        float *in = rand_buf((size_t)h * w * 16), *out = rn_alloc((size_t)oh * ow * 16 * sizeof(float));
        k->maxpool(in, h, w, out, oh, ow);
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ch = 0; ch < 16; ch++) {
                    float want = -INFINITY;
                    for (int y = oy * 2 - 1; y <= oy * 2 + 1; y++)
                        for (int x = ox * 2 - 1; x <= ox * 2 + 1; x++)
                            if (y >= 0 && y < h && x >= 0 && x < w)
                                want = fmaxf(want, in[((size_t)y * w + x) * 16 + ch]);
                    float got = out[((size_t)oy * ow + ox) * 16 + ch];
                    if (got != want)
                        fail_msg("%s maxpool %dx%d: output (%d, %d) channel %d is %g, want %g", k->name,
                                 h, w, oy, ox, ch, got, want);
                }
        rn_free(in);
        rn_free(out);
    }
}

/* The table's batch norm + ReLU of one block, against in * scale + shift
 * rounded as here (a multiply, then an add: no table fuses them), exactly. */
static void test_bn_relu(void **state)
{
    const rn_kernels *k = rn_kernels_get((int)(intptr_t)*state);
    if (!k)
        skip();
    size_t pixels = 3 * 57;
    float *in = rand_buf(pixels * 16), *out = rn_alloc(pixels * 16 * sizeof(float));
    float *scale = rand_buf(16), *shift = rand_buf(16);
    k->bn_relu(in, pixels, scale, shift, out);
    for (size_t i = 0; i < pixels * 16; i++) {
        float v = in[i] * scale[i % 16];
        v = v + shift[i % 16];
        v = v > 0.0f ? v : 0.0f;
        if (out[i] != v)
            fail_msg("%s bn_relu: element %zu is %g, want %g", k->name, i, out[i], v);
    }
    rn_free(in);
    rn_free(out);
    rn_free(scale);
    rn_free(shift);
}

/* argv[1]: run only the tests whose names match this pattern (cmocka's
 * filter, e.g. "blocked_neon"; tests/aarch64.sh) */
int main(int argc, char **argv)
{
    rn_set_log(NULL, NULL, 0);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        {"blocked_avx512", test_blocked_shapes, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"blocked_avx2", test_blocked_shapes, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"blocked_neon", test_blocked_shapes, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"blocked_c", test_blocked_shapes, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
        {"row_lengths_avx512", test_row_lengths, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"row_lengths_avx2", test_row_lengths, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"row_lengths_neon", test_row_lengths, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"row_lengths_c", test_row_lengths, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
        {"maxpool_avx512", test_maxpool, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"maxpool_avx2", test_maxpool, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"maxpool_neon", test_maxpool, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"maxpool_c", test_maxpool, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
        {"bn_relu_avx512", test_bn_relu, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"bn_relu_avx2", test_bn_relu, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"bn_relu_neon", test_bn_relu, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"bn_relu_c", test_bn_relu, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
