/* Shared by the kernel tests: deterministic random data and the naive
 * reference convolution they are checked against. */
#ifndef RN_TEST_CONV_REF_H
#define RN_TEST_CONV_REF_H

#include <stddef.h>

#include "engine/engine.h"

static unsigned ref_seed = 1;

/* Uniform in [-1, 1), the same sequence on every run. */
static float frand(void)
{
    ref_seed = ref_seed * 1103515245u + 12345u;
    return (float)((ref_seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* n random floats, 64-byte aligned (rn_alloc); free with rn_free or free. */
static float *rand_buf(size_t n)
{
    float *p = rn_alloc(n * sizeof(float));
    for (size_t i = 0; i < n && p; i++)
        p[i] = frand();
    return p;
}

/* out = [relu](conv(in) + bias [+ out]) in NCHW with groups, accumulated in
 * double: the reference. */
static void naive_conv(const rn_conv *c, const float *in, int n, int ih, int iw, float *out,
                       const float *bias, int relu, int accumulate)
{
    int oh = rn_out_dim(ih, c->kh, c->stride, c->pad), ow = rn_out_dim(iw, c->kw, c->stride, c->pad);
    int cg = c->in_c / c->groups, og = c->out_c / c->groups;
    for (int b = 0; b < n; b++)
        for (int o = 0; o < c->out_c; o++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    int g = o / og;
                    double s = 0;
                    for (int ci = 0; ci < cg; ci++)
                        for (int ky = 0; ky < c->kh; ky++)
                            for (int kx = 0; kx < c->kw; kx++) {
                                int iy = y * c->stride - c->pad + ky, ix = x * c->stride - c->pad + kx;
                                if (iy < 0 || ix < 0 || iy >= ih || ix >= iw)
                                    continue;
                                s += (double)c->w[((o * cg + ci) * c->kh + ky) * c->kw + kx] *
                                     in[(((size_t)b * c->in_c + g * cg + ci) * ih + iy) * iw + ix];
                            }
                    float *dst = &out[(((size_t)b * c->out_c + o) * oh + y) * ow + x];
                    double v = s + (bias ? bias[o] : 0) + (accumulate ? *dst : 0);
                    *dst = (float)(relu && v < 0 ? 0 : v);
                }
}

#endif
