/* The layer kernels against naive reference loops, on awkward shapes:
 * stride 2, padding, 1x1, 7x7, groups, odd and non-square sizes, with bias,
 * ReLU and residual accumulation, on one and three threads. */
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
#include "engine/engine.h"

struct shape {
    int in_c, out_c, k, stride, groups, ih, iw;
};

static const struct shape shapes[] = {
    {3, 8, 7, 2, 1, 19, 23},   /* stem-like 7x7/2, odd sizes */
    {16, 24, 1, 1, 1, 9, 7},   /* 1x1 direct */
    {16, 24, 1, 2, 1, 9, 7},   /* 1x1 stride 2 (projection, v1) */
    {12, 12, 3, 1, 4, 10, 13}, /* grouped 3x3 */
    {8, 16, 3, 2, 2, 11, 8},   /* grouped 3x3 stride 2 */
    {5, 7, 3, 1, 1, 1, 1},     /* 1x1 input: all padding but the centre */
    {4, 6, 5, 1, 1, 6, 6},     /* 5x5 */
    {64, 32, 3, 1, 1, 40, 37}, /* big enough to split columns into chunks */
};

static void run_conv_case(const struct shape *s, int threads, int relu, int accumulate, int bias_on)
{
    rn_conv c = {.in_c = s->in_c, .out_c = s->out_c, .kh = s->k, .kw = s->k, .stride = s->stride,
                 .pad = s->k / 2, .groups = s->groups};
    int n = 2, oh = rn_out_dim(s->ih, s->k, s->stride, s->k / 2),
        ow = rn_out_dim(s->iw, s->k, s->stride, s->k / 2);
    c.w = rand_buf((size_t)c.out_c * c.in_c / c.groups * c.kh * c.kw);
    c.b = rand_buf((size_t)c.out_c);
    float *in = rand_buf((size_t)n * c.in_c * s->ih * s->iw);
    size_t on = (size_t)n * c.out_c * oh * ow;
    float *out = rand_buf(on), *ref = malloc(on * sizeof(float));
    memcpy(ref, out, on * sizeof(float));

    rn_exec x = {.pool = rn_pool_new(threads)};
    x.col_stride = rn_conv_col_floats(&c, s->ih, s->iw);
    x.col = malloc((x.col_stride + 1) * threads * sizeof(float));
    rn_conv_args a = {.c = &c, .in = in, .n = n, .ih = s->ih, .iw = s->iw, .out = out,
                      .bias = bias_on ? c.b : NULL, .relu = relu, .accumulate = accumulate};
    rn_conv_forward(&x, &a);
    naive_conv(&c, in, n, s->ih, s->iw, ref, a.bias, relu, accumulate);
    double md = 0;
    for (size_t i = 0; i < on; i++)
        md = fmax(md, fabs((double)out[i] - ref[i]));
    if (md > 1e-4)
        fail_msg("conv %dx%d/%d g%d %d->%d on %dx%d, %d threads: max diff %g", s->k, s->k,
                 s->stride, s->groups, s->in_c, s->out_c, s->ih, s->iw, threads, md);
    rn_pool_free(x.pool);
    free(x.col);
    free(c.w);
    free(c.b);
    free(in);
    free(out);
    free(ref);
}

static void test_conv_shapes(void **state)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int threads = 1; threads <= 3; threads += 2) {
            run_conv_case(&shapes[i], threads, 0, 0, 0);
            run_conv_case(&shapes[i], threads, 1, 0, 1);
            run_conv_case(&shapes[i], threads, 1, 1, 1);
        }
}

static void test_maxpool(void **state)
{
    int n = 2, c = 3, h = 9, w = 6, oh = rn_out_dim(h, 3, 2, 1), ow = rn_out_dim(w, 3, 2, 1);
    float *in = rand_buf((size_t)n * c * h * w), *out = malloc((size_t)n * c * oh * ow * 4);
    rn_exec x = {.pool = rn_pool_new(2)};
    rn_maxpool3x3s2(&x, in, n, c, h, w, out);
    for (int p = 0; p < n * c; p++)
        for (int y = 0; y < oh; y++)
            for (int xx = 0; xx < ow; xx++) {
                float m = -INFINITY;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int iy = 2 * y + dy, ix = 2 * xx + dx;
                        if (iy >= 0 && ix >= 0 && iy < h && ix < w)
                            m = fmaxf(m, in[(p * h + iy) * w + ix]);
                    }
                assert_float_equal(out[(p * oh + y) * ow + xx], m, 0);
            }
    rn_pool_free(x.pool);
    free(in);
    free(out);
}

static void test_avgpool_linear(void **state)
{
    int n = 3, c = 70, hw = 13, classes = 37;
    float *in = rand_buf((size_t)n * c * hw), *pooled = malloc((size_t)n * c * 4);
    /* rn_model.fc_wt's layout, blocks of 16 classes; the padding classes
     * random too: they must not reach a real class */
    float *wt = rand_buf(rn_fc_floats(classes, c)), *b = rand_buf((size_t)classes);
    float *out = malloc((size_t)n * classes * 4), *one = malloc((size_t)classes * 4);
    rn_exec x = {.pool = rn_pool_new(2)};
    rn_global_avgpool(&x, in, n, c, hw, pooled);
    for (int i = 0; i < n * c; i++) {
        double s = 0;
        for (int q = 0; q < hw; q++)
            s += in[i * hw + q];
        assert_float_equal(pooled[i], s / hw, 1e-6);
    }
    rn_linear(&x, pooled, n, c, wt, b, classes, out);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < classes; o++) {
            double s = b[o];
            for (int j = 0; j < c; j++)
                s += (double)pooled[i * c + j] * wt[rn_fc_at(c, j, o)];
            assert_float_equal(out[i * classes + o], s, 1e-4);
        }
    /* each image alone, on 1 to 3 threads: the same bits as in the batch */
    for (int threads = 1; threads <= 3; threads++) {
        rn_exec xt = {.pool = rn_pool_new(threads)};
        for (int i = 0; i < n; i++) {
            rn_linear(&xt, pooled + (size_t)i * c, 1, c, wt, b, classes, one);
            assert_memory_equal(one, out + (size_t)i * classes, (size_t)classes * 4);
        }
        rn_pool_free(xt.pool);
    }
    rn_pool_free(x.pool);
    free(in);
    free(pooled);
    free(wt);
    free(b);
    free(out);
    free(one);
}

static void test_softmax_topk(void **state)
{
    float x[6] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, 1000.0f};
    int idx[6];
    assert_int_equal(rn_topk(x, 6, 3, idx), 3);
    assert_int_equal(idx[0], 5);
    assert_int_equal(idx[1], 1); /* ties: lower index first */
    assert_int_equal(idx[2], 3);
    assert_int_equal(rn_topk(x, 6, 10, idx), 6);
    assert_int_equal(idx[5], 2);
    assert_int_equal(rn_topk(x, 6, 0, idx), 0);
    rn_softmax(x, 6); /* 1000 must not overflow */
    double s = 0;
    for (int i = 0; i < 6; i++) {
        assert_true(x[i] >= 0 && x[i] <= 1);
        s += x[i];
    }
    assert_float_equal(s, 1.0, 1e-6);
    assert_float_equal(x[5], 1.0, 1e-6);
}

int main(void)
{
    rn_set_log(NULL, NULL, 0);
    if (rn_blas_init(NULL, 0) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_shapes),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_avgpool_linear),
        cmocka_unit_test(test_softmax_topk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
