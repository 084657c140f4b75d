/* The INT8 layers against docs/int8.md written out as naive loops here, on
 * every kernel table this CPU runs: byte for byte, not within a tolerance.
 * Awkward shapes (stride 2, 1x1 and 3x3, groups, channel counts that are no
 * multiple of 16, rows wider and narrower than a tile), residuals u8 and s8
 * (also in place), with and without ReLU, the stem from a float image, on
 * one and three threads; and the pooling, batch norm, global pool and
 * dequantization ops. The reference pads with zeros itself and never sees
 * the engine's bordered layout, packing or zero-point compensation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/cpu.h"
#include "engine/kernels.h"

static uint32_t seed = 12345;
static uint32_t rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}
static int rnd_in(int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(rnd() % (uint32_t)(hi - lo + 1));
}
static float rnd_f(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd() % 1000000) / 1e6f;
}

/* docs/int8.md, "Arithmetic", one element. */
static int ref_requant(int64_t acc, float m, int has_res, int res, int zres, float R, int relu, int zout)
{
    float y = (float)acc * m;
    if (has_res) {
        float t = (float)(res - zres) * R;
        y = y + t;
    }
    if (relu)
        zout = 0;
    float lo = relu ? 0.0f : (float)(-128 - zout), hi = relu ? 255.0f : (float)(127 - zout);
    if (y < lo)
        y = lo;
    if (y > hi)
        y = hi;
    return (int)rintf(y) + zout;
}

/* NCHW ints (n, c, h, w) <-> the engine's bordered NCHW16c bytes: the
 * border 0, the padding channels zp, the tensor's zero point (engine.h). */
static void to_q(const int *src, int n, int c, int h, int w, int zp, uint8_t *dst)
{
    memset(dst, 0, rn_qbytes(n, c, h, w));
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < rn_cblocks(c) * 16; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    if (ch >= c)
                        dst[((size_t)i * rn_cblocks(c) + ch / 16) * rn_qplane(h, w) +
                            ((size_t)(y + RN_QB) * (w + 2 * RN_QB) + x + RN_QB) * 16 + ch % 16] = (uint8_t)zp;
                    else
                    dst[((size_t)i * rn_cblocks(c) + ch / 16) * rn_qplane(h, w) +
                        ((size_t)(y + RN_QB) * (w + 2 * RN_QB) + x + RN_QB) * 16 + ch % 16] =
                        (uint8_t)src[(((size_t)i * c + ch) * h + y) * w + x];
}

/* 1 if every border byte of q is 0 and every padding channel zp. */
static int clean_edges(const uint8_t *q, int n, int c, int h, int w, int zp)
{
    for (int i = 0; i < n; i++)
        for (int b = 0; b < rn_cblocks(c); b++)
            for (int y = -RN_QB; y < h + RN_QB; y++)
                for (int x = -RN_QB; x < w + RN_QB; x++)
                    for (int k = 0; k < 16; k++) {
                        int border = y < 0 || y >= h || x < 0 || x >= w;
                        const uint8_t *p = q + ((size_t)i * rn_cblocks(c) + b) * rn_qplane(h, w) +
                                           ((size_t)(y + RN_QB) * (w + 2 * RN_QB) + x + RN_QB) * 16 + k;
                        if (border ? *p != 0 : b * 16 + k >= c && *p != (uint8_t)zp)
                            return 0;
                    }
    return 1;
}

static int from_q(const uint8_t *q, int n, int c, int h, int w, int i, int ch, int y, int x, int s8)
{
    uint8_t v = q[((size_t)i * rn_cblocks(c) + ch / 16) * rn_qplane(h, w) +
                  ((size_t)(y + RN_QB) * (w + 2 * RN_QB) + x + RN_QB) * 16 + ch % 16];
    return s8 ? (int8_t)v : v;
}

struct qshape {
    int in_c, out_c, k, stride, groups, ih, iw, n;
};

static const struct qshape shapes[] = {
    {16, 32, 1, 1, 1, 7, 7, 2},    /* 1x1, 7-pixel rows */
    {24, 40, 1, 1, 1, 5, 31, 1},   /* 1x1, a row wider than any tile, odd channels */
    {32, 16, 1, 2, 1, 9, 11, 2},   /* 1x1 stride 2 (v1 projection) */
    {16, 16, 3, 1, 1, 6, 5, 3},    /* 3x3 */
    {20, 36, 3, 2, 1, 11, 8, 1},   /* 3x3 stride 2, odd channels */
    {64, 64, 3, 1, 32, 9, 10, 1},  /* grouped 3x3 (ResNeXt, 2 channels a group) */
    {64, 128, 3, 2, 4, 8, 8, 2},   /* grouped 3x3 stride 2 */
    {3, 1, 3, 1, 1, 1, 1, 1},      /* one pixel: all border but the centre */
    {48, 80, 3, 1, 1, 14, 14, 1},  /* several chunks */
    {32, 48, 3, 2, 1, 7, 9, 1},    /* stride 2, rows of 5 (a table's tiles of 3 and 2) */
    {24, 16, 1, 2, 1, 3, 1, 2},    /* stride 2, rows of 1 */
    /* 3x3 stride 1 as the Winograd tables run them (rn_qconv_wino_ok; from
     * 32 tiles of 2x2 a batch, core/engine/qconv.c) */
    {512, 32, 3, 1, 1, 7, 7, 2},   /* layer 4's: odd size, tiles past the plane */
    {64, 48, 3, 1, 1, 57, 9, 1},   /* rows of tiles in several tasks */
    {1024, 16, 3, 1, 1, 9, 7, 3},  /* many input blocks */
    {2048, 16, 3, 1, 1, 3, 2, 1},  /* too many for Winograd's int32 bound: direct */
};

/* A convolution with random int8 weights, bias and scales. */
/* 1: weights of +-127 and inputs of 0 or 255 only, the sums' and the
 * Winograd transforms' extremes */
static int extremes;

static void make_conv(rn_conv *c, int8_t **w, float **ws, int32_t **b)
{
    size_t nw = (size_t)c->out_c * (c->in_c / c->groups) * c->kh * c->kw;
    *w = malloc(nw);
    *ws = malloc(c->out_c * sizeof(float));
    *b = malloc(c->out_c * sizeof(int32_t));
    for (size_t i = 0; i < nw; i++)
        (*w)[i] = (int8_t)(extremes ? (rnd_in(0, 1) ? 127 : -127) : rnd_in(-127, 127));
    for (int o = 0; o < c->out_c; o++) {
        (*ws)[o] = rnd_f(0.002f, 0.02f);
        (*b)[o] = rnd_in(-40000, 40000);
    }
    c->qw = *w;
    c->qscale = *ws;
    c->qbias = *b;
    c->in_scale = rnd_f(0.01f, 0.05f);
    /* outputs of about +-100 before clamping: some clamp, most do not */
    float typical = sqrtf((float)(c->in_c / c->groups * c->kh * c->kw)) * 127.0f * 73.0f;
    c->out_scale = c->in_scale * 0.01f * typical / 100.0f;
}

/* in: NCHW ints (u8) or, for the stem, NCHW floats fimg with scale */
static void ref_conv(const rn_conv *c, const int *in, const float *fimg, float qimg, int n, int ih,
                     int iw, const int *res, int zres, int relu, int *out)
{
    int oh = rn_out_dim(ih, c->kh, c->stride, c->pad), ow = rn_out_dim(iw, c->kw, c->stride, c->pad);
    int in_g = c->in_c / c->groups, out_g = c->out_c / c->groups;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < c->out_c; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    int64_t acc = c->qbias[o];
                    for (int ci = 0; ci < in_g; ci++)
                        for (int ky = 0; ky < c->kh; ky++)
                            for (int kx = 0; kx < c->kw; kx++) {
                                int y = oy * c->stride - c->pad + ky, x = ox * c->stride - c->pad + kx;
                                if (y < 0 || y >= ih || x < 0 || x >= iw)
                                    continue;
                                int ch = o / out_g * in_g + ci, v;
                                size_t at = (((size_t)i * c->in_c + ch) * ih + y) * iw + x;
                                if (fimg) {
                                    float t = fimg[at] * qimg;
                                    t = t == t ? t : 0.0f; /* NaN reads as 0 */
                                    float lo = (float)-c->in_zp, hi = (float)(255 - c->in_zp);
                                    t = t < lo ? lo : t > hi ? hi : t;
                                    v = (int)rintf(t); /* the signed value: u - zero point */
                                } else {
                                    v = in[at];
                                }
                                acc += (int64_t)v * c->qw[(((size_t)o * in_g + ci) * c->kh + ky) * c->kw + kx];
                            }
                    float m = c->in_scale * c->qscale[o] / c->out_scale;
                    size_t at = (((size_t)i * c->out_c + o) * oh + oy) * ow + ox;
                    float R = res ? c->res_scale / c->out_scale : 0.0f;
                    out[at] = ref_requant(acc, m, res != NULL, res ? res[at] : 0, zres, R, relu, c->out_zp);
                }
}

static rn_exec make_exec(const rn_qkernels *k, int threads)
{
    /* RN_TEST_MAX_THREADS=1 under qemu-user (tests/aarch64.sh) */
    const char *mt = getenv("RN_TEST_MAX_THREADS");
    if (mt && atoi(mt) > 0 && threads > atoi(mt))
        threads = atoi(mt);
    return (rn_exec){.pool = rn_pool_new(threads), .qk = k};
}

/* mode: 0 no residual, 1 u8 residual, 2 s8 residual, 3 s8 residual in place;
 * an s8 output and an s8 residual have a zero point of their own (but in
 * place, where they are the same tensor) */
static void run_case(const rn_qkernels *k, const struct qshape *s, int relu, int mode, int threads)
{
    rn_conv c = {.in_c = s->in_c, .out_c = s->out_c, .kh = s->k, .kw = s->k, .stride = s->stride,
                 .pad = s->k / 2, .groups = s->groups};
    int8_t *w;
    float *ws;
    int32_t *b;
    make_conv(&c, &w, &ws, &b);
    int n = s->n, oh = rn_out_dim(s->ih, s->k, s->stride, c.pad), ow = rn_out_dim(s->iw, s->k, s->stride, c.pad);
    size_t ni = (size_t)n * s->in_c * s->ih * s->iw, no = (size_t)n * s->out_c * oh * ow;
    int *in = malloc(ni * sizeof(int)), *res = mode ? malloc(no * sizeof(int)) : NULL;
    int *ref = malloc(no * sizeof(int));
    for (size_t i = 0; i < ni; i++)
        in[i] = extremes ? 255 * rnd_in(0, 1) : rnd_in(0, 255);
    for (size_t i = 0; mode && i < no; i++)
        res[i] = mode == 1 ? rnd_in(0, 255) : rnd_in(-128, 127);
    c.res_scale = mode ? rnd_f(0.5f, 2.0f) * c.out_scale : 0.0f;
    c.out_zp = relu ? 0 : rnd_in(-128, 127);
    int zres = mode == 2 ? rnd_in(-128, 127) : mode == 3 ? c.out_zp : 0;
    assert_true(rn_qconv_ok(&c, 0));
    void *packed = rn_alloc(rn_qconv_packed_bytes(&c, 0, k));
    rn_qconv_pack(&c, 0, k, packed);
    uint8_t *qin = rn_alloc(rn_qbytes(n, s->in_c, s->ih, s->iw));
    uint8_t *qout = rn_alloc(rn_qbytes(n, s->out_c, oh, ow));
    uint8_t *qres = mode == 1 || mode == 2 ? rn_alloc(rn_qbytes(n, s->out_c, oh, ow)) : NULL;
    to_q(in, n, s->in_c, s->ih, s->iw, 0, qin);
    memset(qout, 0x5a, rn_qbytes(n, s->out_c, oh, ow)); /* the engine writes every byte */
    if (mode == 3)
        to_q(res, n, s->out_c, oh, ow, zres, qout);
    else if (qres)
        to_q(res, n, s->out_c, oh, ow, zres, qres);
    rn_exec ex = make_exec(k, threads);
    /* the scratch a plan would give it (Winograd's transforms) */
    size_t scratch = (rn_qconv_scratch_bytes(&c, s->ih, s->iw) + 63) / 64 * 16;
    if (k->wino && rn_qconv_wino_ok(&c, 0))
        assert_non_null(c.qwu);
    else
        assert_null(c.qwu);
    ex.col = scratch ? rn_alloc(scratch * sizeof(float) * (size_t)rn_pool_size(ex.pool)) : NULL;
    ex.col_stride = scratch;
    rn_qconv_args a = {.c = &c, .in = qin, .n = n, .ih = s->ih, .iw = s->iw, .out = qout,
                       .res = mode == 3 ? qout : qres, .res_s8 = mode >= 2, .res_zp = zres, .relu = relu};
    rn_qconv_forward(&ex, &a);
    ref_conv(&c, in, NULL, 0, n, s->ih, s->iw, res, zres, relu, ref);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < s->out_c; o++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    int got = from_q(qout, n, s->out_c, oh, ow, i, o, y, x, !relu);
                    int want = ref[(((size_t)i * s->out_c + o) * oh + y) * ow + x];
                    if (got != want)
                        fail_msg("%s: %dx%d/%d g%d %d->%d on %dx%d, relu %d, residual mode %d, %d threads: "
                                 "image %d channel %d (%d,%d): %d, want %d",
                                 k->name, s->k, s->k, s->stride, s->groups, s->in_c, s->out_c, s->ih, s->iw,
                                 relu, mode, threads, i, o, y, x, got, want);
                }
    assert_true(clean_edges(qout, n, s->out_c, oh, ow, c.out_zp));
    rn_free(ex.col);
    rn_pool_free(ex.pool);
    rn_free(packed);
    rn_free(qin);
    rn_free(qout);
    rn_free(qres);
    free(in);
    free(res);
    free(ref);
    free(w);
    free(ws);
    free(b);
}

/* state: the enum rn_isa to test */
static void test_qconv_shapes(void **state)
{
    const rn_qkernels *k = rn_qkernels_get((int)(intptr_t)*state);
    if (!k)
        skip(); /* this CPU or build cannot run the table, or it has no INT8 tiles */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int mode = 0; mode < 4; mode++)
            run_case(k, &shapes[i], mode != 2, mode, 1 + 2 * (i % 2));
    run_case(k, &shapes[3], 0, 0, 3);
    extremes = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (shapes[i].k == 3 && shapes[i].stride == 1)
            run_case(k, &shapes[i], i % 2, (int)(i % 4), 2);
    extremes = 0;
}

/* The stem: the float image quantized with its zero point (128, as our
 * files have it, or another, as a QDQ graph's) into the padded
 * NHWC4 buffer, a 7x7 stride-2 convolution (and a deep stem's 3x3 stride
 * 2, and a 3x3 stride 1). */
static void test_qconv_stem(void **state)
{
    const rn_qkernels *k = rn_qkernels_get((int)(intptr_t)*state);
    if (!k)
        skip();
    /* k, stride, pad, ih, iw: rows of 10, 8, 16, 5 and 1 pixels, and a
     * stride-1 stem (CIFAR's 3x3) with rows of 9 and 1 */
    static const int cases[][5] = {{7, 2, 3, 23, 19}, {3, 2, 1, 17, 16}, {7, 2, 3, 32, 32}, {7, 2, 3, 9, 9},
                                   {7, 2, 3, 6, 1},   {3, 1, 1, 8, 9},   {3, 1, 1, 4, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        rn_conv c = {.in_c = 3, .out_c = 24, .kh = cases[t][0], .kw = cases[t][0], .stride = cases[t][1],
                     .pad = cases[t][2], .groups = 1};
        int ih = cases[t][3], iw = cases[t][4], n = 2;
        int8_t *w;
        float *ws;
        int32_t *b;
        make_conv(&c, &w, &ws, &b);
        c.in_scale = 2.7f / 127.0f;
        c.in_zp = t % 3 == 0 ? 128 : rnd_in(0, 255);
        size_t ni = (size_t)n * 3 * ih * iw;
        float *img = malloc(ni * sizeof(float));
        for (size_t i = 0; i < ni; i++)
            img[i] = rnd_f(-3.0f, 3.0f); /* some beyond the scale's range: clamped */
        img[ni / 3] = NAN; /* a hostile caller's tensor */
        img[ni / 2] = INFINITY;
        int oh = rn_out_dim(ih, c.kh, c.stride, c.pad), ow = rn_out_dim(iw, c.kw, c.stride, c.pad);
        assert_true(rn_qconv_ok(&c, 1));
        void *packed = rn_alloc(rn_qconv_packed_bytes(&c, 1, k));
        rn_qconv_pack(&c, 1, k, packed);
        uint8_t *qimg = rn_alloc(rn_qimage_bytes(n, ih, iw, c.pad));
        uint8_t *qout = rn_alloc(rn_qbytes(n, c.out_c, oh, ow));
        int *ref = malloc((size_t)n * c.out_c * oh * ow * sizeof(int));
        rn_exec ex = make_exec(k, 2);
        float q = 1.0f / c.in_scale;
        rn_q_image(&ex, img, n, 3, ih, iw, q, c.in_zp, c.pad, qimg);
        rn_qconv_args a = {.c = &c, .in = qimg, .n = n, .ih = ih, .iw = iw, .out = qout, .relu = 1};
        rn_qconv_forward(&ex, &a);
        ref_conv(&c, NULL, img, q, n, ih, iw, NULL, 0, 1, ref);
        for (int i = 0; i < n; i++)
            for (int o = 0; o < c.out_c; o++)
                for (int y = 0; y < oh; y++)
                    for (int x = 0; x < ow; x++) {
                        int got = from_q(qout, n, c.out_c, oh, ow, i, o, y, x, 0);
                        int want = ref[(((size_t)i * c.out_c + o) * oh + y) * ow + x];
                        if (got != want)
                            fail_msg("%s: stem %dx%d/%d on %dx%d, zero point %d: image %d channel %d (%d,%d): "
                                     "%d, want %d",
                                     k->name, c.kh, c.kw, c.stride, ih, iw, c.in_zp, i, o, y, x, got, want);
                    }
        assert_true(clean_edges(qout, n, c.out_c, oh, ow, 0));
        rn_pool_free(ex.pool);
        rn_free(packed);
        rn_free(qimg);
        rn_free(qout);
        free(img);
        free(ref);
        free(w);
        free(ws);
        free(b);
    }
}

/* The other ops, against their lines of docs/int8.md. */
static void test_qops(void **state)
{
    rn_exec ex = make_exec(rn_qkernels_get(RN_ISA_C), 3);
    int n = 2, c = 21, h = 9, w = 7;
    for (int s8 = 0; s8 <= 1; s8++) {
        size_t ne = (size_t)n * c * h * w;
        int *v = malloc(ne * sizeof(int));
        for (size_t i = 0; i < ne; i++)
            v[i] = s8 ? rnd_in(-128, 127) : rnd_in(0, 255);
        uint8_t *in = rn_alloc(rn_qbytes(n, c, h, w));
        to_q(v, n, c, h, w, 0, in);

        int mh = rn_out_dim(h, 3, 2, 1), mw = rn_out_dim(w, 3, 2, 1);
        uint8_t *mp = rn_alloc(rn_qbytes(n, c, mh, mw));
        rn_q_maxpool3x3s2(&ex, in, n, c, h, w, s8, mp);
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int oy = 0; oy < mh; oy++)
                    for (int ox = 0; ox < mw; ox++) {
                        int m = -1000;
                        for (int y = oy * 2 - 1; y <= oy * 2 + 1; y++)
                            for (int x = ox * 2 - 1; x <= ox * 2 + 1; x++)
                                if (y >= 0 && y < h && x >= 0 && x < w)
                                    m = fmax(m, v[(((size_t)i * c + ch) * h + y) * w + x]);
                        assert_int_equal(from_q(mp, n, c, mh, mw, i, ch, oy, ox, s8), m);
                    }
        assert_true(clean_edges(mp, n, c, mh, mw, 0));

        int ah = rn_avgpool_dim(h), aw = rn_avgpool_dim(w);
        uint8_t *ap = rn_alloc(rn_qbytes(n, c, ah, aw));
        rn_q_avgpool2x2(&ex, in, n, c, h, w, s8, ap);
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int oy = 0; oy < ah; oy++)
                    for (int ox = 0; ox < aw; ox++) {
                        int sum = 0, cnt = 0;
                        for (int y = oy * 2; y < oy * 2 + 2 && y < h; y++)
                            for (int x = ox * 2; x < ox * 2 + 2 && x < w; x++, cnt++)
                                sum += v[(((size_t)i * c + ch) * h + y) * w + x];
                        assert_int_equal(from_q(ap, n, c, ah, aw, i, ch, oy, ox, s8),
                                         (int)rintf((float)sum / (float)cnt));
                    }
        assert_true(clean_edges(ap, n, c, ah, aw, 0));

        float *a = calloc(rn_cblocks(c) * 16, sizeof(float)), *bb = calloc(rn_cblocks(c) * 16, sizeof(float));
        for (int ch = 0; ch < c; ch++) {
            a[ch] = rnd_f(-1.5f, 1.5f);
            bb[ch] = rnd_f(-40.0f, 90.0f);
        }
        uint8_t *bn = rn_alloc(rn_qbytes(n, c, h, w));
        int zp = s8 ? rnd_in(-128, 127) : 0; /* an s8 tensor's zero point */
        rn_q_bn_relu(&ex, in, n, c, h, w, s8, zp, a, bb, bn);
        float *emb = malloc((size_t)n * c * sizeof(float)), *deq = malloc(ne * sizeof(float));
        float scale = 0.0173f;
        rn_q_global_avgpool(&ex, in, n, c, h, w, s8, zp, scale, emb);
        rn_q_dequantize(&ex, in, n, c, h, w, s8, zp, scale, deq);
        float kgap = scale / (float)(h * w);
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++) {
                int sum = 0;
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++) {
                        size_t at = (((size_t)i * c + ch) * h + y) * w + x;
                        float t = (float)(v[at] - zp) * a[ch];
                        t = t + bb[ch];
                        int want = (int)rintf(t < 0.0f ? 0.0f : t > 255.0f ? 255.0f : t);
                        assert_int_equal(from_q(bn, n, c, h, w, i, ch, y, x, 0), want);
                        assert_true(deq[at] == (float)(v[at] - zp) * scale);
                        sum += v[at] - zp;
                    }
                assert_true(emb[(size_t)i * c + ch] == (float)sum * kgap);
            }
        assert_true(clean_edges(bn, n, c, h, w, 0));
        rn_free(in);
        rn_free(mp);
        rn_free(ap);
        rn_free(bn);
        free(v);
        free(a);
        free(bb);
        free(emb);
        free(deq);
    }
    rn_pool_free(ex.pool);
}

int main(int argc, char **argv)
{
    rn_set_log(NULL, NULL, 0);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        {"qconv_avx512", test_qconv_shapes, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"qconv_avx2", test_qconv_shapes, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"qconv_neon", test_qconv_shapes, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"qconv_c", test_qconv_shapes, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
        {"qconv_stem_avx512", test_qconv_stem, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"qconv_stem_avx2", test_qconv_stem, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"qconv_stem_neon", test_qconv_stem, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"qconv_stem_c", test_qconv_stem, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
        cmocka_unit_test(test_qops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
