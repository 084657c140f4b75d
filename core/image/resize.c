/* Antialiased bilinear resize of 8-bit RGB, bit-identical to Pillow 9.4's ImagingResample. */
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "resize.h"
#include "rn_internal.h"

#define PRECISION_BITS RN_RESIZE_PRECISION_BITS

typedef rn_resize_axis axis;

static void axis_free(axis *a)
{
    free(a->first);
    free(a->n);
    free(a->k);
}

static double bilinear(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for the output indices
 * [o0, o0+count) of an in_size -> out_size resample with box (0, in_size).
 * The doubles are computed exactly as Pillow does so that rounding to fixed
 * point lands on the same integers. */
static int axis_init(axis *a, int in_size, int out_size, int o0, int count, char *err,
                     size_t errlen)
{
    float in0 = 0.0f, in1 = (float)in_size; /* Pillow keeps the box in floats */
    double scale = (double)(in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale; /* BILINEAR support is 1 */
    memset(a, 0, sizeof *a);
    a->ksize = (int)ceil(support) * 2 + 1;
    double *w = malloc(sizeof(double) * (size_t)a->ksize);
    a->first = malloc(sizeof(int) * (size_t)count);
    a->n = malloc(sizeof(int) * (size_t)count);
    a->k = calloc((size_t)count * (size_t)a->ksize, sizeof(int32_t));
    if (!w || !a->first || !a->n || !a->k) {
        free(w);
        axis_free(a);
        return rn_errf(err, errlen, RN_ERR_NOMEM, "resize: out of memory for %d x %d taps", count,
                       a->ksize);
    }
    for (int i = 0; i < count; i++) {
        int xx = o0 + i;
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = bilinear((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = a->k + (size_t)i * a->ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        a->first[i] = xmin;
        a->n[i] = xmax < 0 ? 0 : xmax;
    }
    free(w);
    return RN_OK;
}

void rn_resize_span(int in_size, int out_size, int o0, int count, int *lo, int *hi)
{
    if (in_size == out_size) { /* copied, not resampled */
        *lo = o0;
        *hi = o0 + count;
        return;
    }
    /* axis_init's window bounds, which grow with the output index */
    float in0 = 0.0f, in1 = (float)in_size;
    double scale = (double)(in1 - in0) / out_size;
    double support = scale < 1.0 ? 1.0 : scale;
    double c0 = in0 + (o0 + 0.5) * scale, c1 = in0 + (o0 + count - 1 + 0.5) * scale;
    int xmin = (int)(c0 - support + 0.5), xmax = (int)(c1 + support + 0.5);
    *lo = RN_MAX(0, xmin);
    *hi = RN_MIN(in_size, xmax);
}

static inline uint8_t clip8(int32_t ss)
{
    int32_t v = ss >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Horizontal pass: rows of src (stride src_stride) -> rows of cw RGB pixels. */
static int pass_h(const uint8_t *src, size_t src_stride, int rows, const axis *ax, int cw,
                  uint8_t *dst, size_t dst_stride)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)y * src_stride;
        uint8_t *o = dst + (size_t)y * dst_stride;
        for (int xx = 0; xx < cw; xx++) {
            const int32_t *k = ax->k + (size_t)xx * ax->ksize;
            const uint8_t *p = in + (size_t)ax->first[xx] * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0, n = ax->n[xx]; x < n; x++, p += 3) {
                s0 += p[0] * k[x];
                s1 += p[1] * k[x];
                s2 += p[2] * k[x];
            }
            o[xx * 3 + 0] = clip8(s0);
            o[xx * 3 + 1] = clip8(s1);
            o[xx * 3 + 2] = clip8(s2);
        }
    }
    return 0;
}

/* Vertical pass: row yy of the window is a weighted sum of whole rows of src,
 * accumulated tap by tap over the row so the inner loop vectorises. */
static int pass_v(const uint8_t *src, size_t src_stride, int row0, const axis *ax, int ch,
                  int bytes, uint8_t *dst, size_t dst_stride)
{
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)bytes);
    if (!acc)
        return -1;
    for (int yy = 0; yy < ch; yy++) {
        const int32_t *k = ax->k + (size_t)yy * ax->ksize;
        for (int x = 0; x < bytes; x++)
            acc[x] = 1 << (PRECISION_BITS - 1);
        for (int y = 0, n = ax->n[yy]; y < n; y++) {
            const uint8_t *in = src + (size_t)(ax->first[yy] - row0 + y) * src_stride;
            int32_t ky = k[y];
            for (int x = 0; x < bytes; x++)
                acc[x] += in[x] * ky;
        }
        uint8_t *o = dst + (size_t)yy * dst_stride;
        for (int x = 0; x < bytes; x++)
            o[x] = clip8(acc[x]);
    }
    free(acc);
    return 0;
}

const rn_resize_kernels rn_resize_c = {"c", pass_h, pass_v};

/* The table of isa (enum rn_isa) if this CPU runs it, else NULL. */
static const rn_resize_kernels *kernels_of(int isa)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    if (isa == RN_ISA_AVX512)
        return avx512 ? &rn_resize_avx512 : NULL;
    if (isa == RN_ISA_AVX2)
        return avx2 ? &rn_resize_avx2 : NULL;
#endif
    return isa == RN_ISA_C ? &rn_resize_c : NULL;
}

/* RN_ISA_AUTO: the RN_ISA environment variable's table when this CPU runs
 * it (as the engine reads it, resnet.h), else the best one. */
static const rn_resize_kernels *kernels_auto(void)
{
    const char *env = getenv("RN_ISA");
    const rn_resize_kernels *k = !env                   ? NULL
                                 : !strcmp(env, "avx512") ? kernels_of(RN_ISA_AVX512)
                                 : !strcmp(env, "avx2")   ? kernels_of(RN_ISA_AVX2)
                                 : !strcmp(env, "c")      ? kernels_of(RN_ISA_C)
                                                          : NULL;
    static const int best[] = {RN_ISA_AVX512, RN_ISA_AVX2, RN_ISA_C};
    for (size_t i = 0; !k && i < RN_ARRAY_LEN(best); i++)
        k = kernels_of(best[i]);
    return k;
}

static _Atomic(const rn_resize_kernels *) kernels;

static const rn_resize_kernels *current(void)
{
    const rn_resize_kernels *k = atomic_load_explicit(&kernels, memory_order_relaxed);
    if (!k) {
        k = kernels_auto();
        atomic_store_explicit(&kernels, k, memory_order_relaxed);
    }
    return k;
}

int rn_resize_set_isa(int isa)
{
    const rn_resize_kernels *k = isa == RN_ISA_AUTO ? kernels_auto() : kernels_of(isa);
    if (!k)
        return RN_ERR_UNSUPPORTED;
    atomic_store_explicit(&kernels, k, memory_order_relaxed);
    return RN_OK;
}

const char *rn_resize_isa_name(void)
{
    return current()->name;
}

int rn_resize_window(const uint8_t *src, int w, int h, int out_w, int out_h, int x0, int y0, int cw,
                     int ch, uint8_t *dst, size_t dst_stride, char *err, size_t errlen)
{
    if (w < 1 || h < 1 || out_w < 1 || out_h < 1 || cw < 1 || ch < 1 || x0 < 0 || y0 < 0 ||
        x0 > out_w - cw || y0 > out_h - ch || (size_t)cw * 3 > dst_stride)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                       "resize: bad window %dx%d+%d+%d of %dx%d -> %dx%d", cw, ch, x0, y0, w, h,
                       out_w, out_h);
    /* Pillow's need_horizontal / need_vertical: an axis of equal size is copied. */
    int need_h = out_w != w, need_v = out_h != h;
    axis ah = {0}, av = {0};
    const rn_resize_kernels *kern = current();
    uint8_t *tmp = NULL;
    int rc = RN_OK;
    int row0 = y0, rows = ch; /* input rows the vertical pass reads */
    if (need_v) {
        if ((rc = axis_init(&av, h, out_h, y0, ch, err, errlen)) < 0)
            return rc;
        row0 = av.first[0]; /* Pillow's ybox_first / ybox_last: bounds are monotonic */
        rows = av.first[ch - 1] + av.n[ch - 1] - row0;
    }
    const uint8_t *vsrc = src + (size_t)row0 * w * 3 + (size_t)x0 * 3;
    size_t vstride = (size_t)w * 3;
    if (need_h) {
        if ((rc = axis_init(&ah, w, out_w, x0, cw, err, errlen)) < 0)
            goto out_free_axes;
        if (!need_v) { /* straight into the caller's buffer */
            if (kern->pass_h(src + (size_t)y0 * w * 3, (size_t)w * 3, ch, &ah, cw, dst,
                             dst_stride) < 0)
                rc = rn_errf(err, errlen, RN_ERR_NOMEM, "resize: out of memory");
            goto out_free_axes;
        }
        tmp = malloc((size_t)rows * cw * 3);
        if (!tmp) {
            rc = rn_errf(err, errlen, RN_ERR_NOMEM, "resize: out of memory (%d rows)", rows);
            goto out_free_axes;
        }
        if (kern->pass_h(src + (size_t)row0 * w * 3, (size_t)w * 3, rows, &ah, cw, tmp,
                         (size_t)cw * 3) < 0) {
            rc = rn_errf(err, errlen, RN_ERR_NOMEM, "resize: out of memory");
            goto out_free_tmp;
        }
        vsrc = tmp;
        vstride = (size_t)cw * 3;
    }
    if (need_v) {
        if (kern->pass_v(vsrc, vstride, row0, &av, ch, cw * 3, dst, dst_stride) < 0)
            rc = rn_errf(err, errlen, RN_ERR_NOMEM, "resize: out of memory");
    } else if (!need_h) {
        for (int y = 0; y < ch; y++)
            memcpy(dst + (size_t)y * dst_stride, vsrc + (size_t)y * vstride, (size_t)cw * 3);
    }
out_free_tmp:
    free(tmp);
out_free_axes:
    axis_free(&ah);
    axis_free(&av);
    return rc;
}
