/* Antialiased bilinear resize of 8-bit RGB, bit-identical to Pillow 9.4's ImagingResample. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "rn_internal.h"

/* Pillow: 8 bits for the result, two for overflow, the rest for the fraction. */
#define PRECISION_BITS (32 - 8 - 2)

/* One axis of the resample: for each output index i of the window, taps
 * k[i*ksize .. +n[i]) applied to input samples starting at first[i]. */
typedef struct axis {
    int ksize;
    int *first; /* (count) first input index */
    int *n;     /* (count) number of taps */
    int32_t *k; /* (count, ksize) fixed-point coefficients */
} axis;

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

static inline uint8_t clip8(int32_t ss)
{
    int32_t v = ss >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Horizontal pass: rows of src (stride src_stride) -> rows of cw RGB pixels. */
static void pass_h(const uint8_t *src, size_t src_stride, int rows, const axis *ax, int cw,
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
}

/* Vertical pass: row yy of the window is a weighted sum of whole rows of src,
 * accumulated tap by tap over the row so the inner loop vectorises. */
static void pass_v(const uint8_t *src, size_t src_stride, int row0, const axis *ax, int ch,
                   int bytes, int32_t *acc, uint8_t *dst, size_t dst_stride)
{
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
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
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
            pass_h(src + (size_t)y0 * w * 3, (size_t)w * 3, ch, &ah, cw, dst, dst_stride);
            goto out_free_axes;
        }
        tmp = malloc((size_t)rows * cw * 3);
        if (!tmp) {
            rc = rn_errf(err, errlen, RN_ERR_NOMEM, "resize: out of memory (%d rows)", rows);
            goto out_free_axes;
        }
        pass_h(src + (size_t)row0 * w * 3, (size_t)w * 3, rows, &ah, cw, tmp, (size_t)cw * 3);
        vsrc = tmp;
        vstride = (size_t)cw * 3;
    }
    if (need_v) {
        acc = malloc(sizeof(int32_t) * (size_t)cw * 3);
        if (!acc) {
            rc = rn_errf(err, errlen, RN_ERR_NOMEM, "resize: out of memory");
            goto out_free_tmp;
        }
        pass_v(vsrc, vstride, row0, &av, ch, cw * 3, acc, dst, dst_stride);
    } else if (!need_h) {
        for (int y = 0; y < ch; y++)
            memcpy(dst + (size_t)y * dst_stride, vsrc + (size_t)y * vstride, (size_t)cw * 3);
    }
    free(acc);
out_free_tmp:
    free(tmp);
out_free_axes:
    axis_free(&ah);
    axis_free(&av);
    return rc;
}
