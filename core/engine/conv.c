/* Convolution as GEMM on OpenBLAS, with bias, residual and ReLU fused.
 *
 * Per image and group, the product is W (M x K) times the im2col matrix
 * (K x P), P = oh*ow output pixels. We split P into column chunks small enough
 * that a chunk's im2col slice (K x NC) stays in L2, and each task builds its
 * own slice in its thread's buffer, multiplies, and applies the epilogue
 * (bias, ReLU) to the tile while it is still in cache. A residual is added by
 * the GEMM itself: beta = 1 with the output pre-filled. 1x1 stride-1
 * convolutions multiply the input directly, without im2col.
 */
#include <string.h>

#include "blas.h"
#include "engine.h"

#define COL_BUDGET (512 * 1024) /* floats of im2col per task (2 MB, ~L2) */
#define MIN_CHUNK 64

struct geom {
    int K, M, P, NC, n_cchunks, n_mchunks, MC, oh, ow;
    int direct; /* 1x1, stride 1, no padding: multiply the input directly */
};

static void geometry(const rn_conv *c, int n, int ih, int iw, int threads, struct geom *g)
{
    g->oh = rn_out_dim(ih, c->kh, c->stride, c->pad);
    g->ow = rn_out_dim(iw, c->kw, c->stride, c->pad);
    g->K = c->in_c / c->groups * c->kh * c->kw;
    g->M = c->out_c / c->groups;
    g->P = g->oh * g->ow;
    g->direct = c->kh == 1 && c->kw == 1 && c->stride == 1 && c->pad == 0;
    int nc = COL_BUDGET / g->K;
    if (nc < MIN_CHUNK)
        nc = MIN_CHUNK;
    g->NC = nc < g->P ? nc : g->P;
    g->n_cchunks = (g->P + g->NC - 1) / g->NC;
    /* The split of M follows one image's work, not the batch's: OpenBLAS may
     * sum a product differently for other sizes of M, and an image's result
     * must not depend on the batch it is in. */
    (void)n;
    int units = c->groups * g->n_cchunks;
    g->n_mchunks = 1;
    if (units < 2 * threads) {
        int want = (2 * threads + units - 1) / units;
        int most = g->M / 16 > 0 ? g->M / 16 : 1;
        g->n_mchunks = want < most ? want : most;
    }
    g->MC = (g->M + g->n_mchunks - 1) / g->n_mchunks;
}

size_t rn_conv_col_floats(const rn_conv *c, int ih, int iw)
{
    struct geom g;
    geometry(c, 1, ih, iw, 1, &g);
    return g.direct ? 0 : (size_t)g.K * (size_t)g.NC;
}

/* im2col of columns [q0, q0 + len) of one image and group into col (K x len).
 * Each (channel, ky, kx) row is built one output row at a time: the in-range
 * span of ox is computed once, padding is zero-filled around it, and stride-1
 * spans are plain copies. */
static void im2col(const rn_conv *c, const float *in, int ih, int iw, int ow, int q0, int len,
                   float *col)
{
    int cg = c->in_c / c->groups, s = c->stride, pad = c->pad;
    for (int ci = 0; ci < cg; ci++) {
        const float *src = in + (size_t)ci * ih * iw;
        for (int ky = 0; ky < c->kh; ky++) {
            for (int kx = 0; kx < c->kw; kx++) {
                float *dst = col + ((size_t)(ci * c->kh + ky) * c->kw + kx) * len;
                /* output columns ox in [lo, hi) read inside the input row */
                int lo = pad - kx > 0 ? (pad - kx + s - 1) / s : 0;
                int hi = iw - 1 + pad - kx >= 0 ? (iw - 1 + pad - kx) / s + 1 : 0;
                hi = RN_MIN(hi, ow);
                int q = q0, end = q0 + len;
                while (q < end) {
                    int oy = q / ow, ox0 = q % ow;
                    int ox1 = RN_MIN(ow, ox0 + (end - q));
                    int iy = oy * s - pad + ky;
                    float *d = dst + (q - q0);
                    if ((unsigned)iy >= (unsigned)ih) {
                        memset(d, 0, sizeof(float) * (size_t)(ox1 - ox0));
                    } else {
                        const float *row = src + (size_t)iy * iw - pad + kx;
                        int a = RN_MAX(ox0, lo), b = RN_MIN(ox1, hi);
                        int ox = ox0;
                        for (; ox < a && ox < ox1; ox++)
                            d[ox - ox0] = 0.0f;
                        if (s == 1) {
                            if (b > a)
                                memcpy(d + (a - ox0), row + a, sizeof(float) * (size_t)(b - a));
                            ox = RN_MAX(ox, b);
                        } else {
                            for (; ox < b; ox++)
                                d[ox - ox0] = row[ox * s];
                        }
                        for (; ox < ox1; ox++)
                            d[ox - ox0] = 0.0f;
                    }
                    q += ox1 - ox0;
                }
            }
        }
    }
}

struct gemm_job {
    const rn_exec *ex;
    const rn_conv_args *a;
    struct geom g;
};

static void conv_task(void *arg, int t, int thread)
{
    const struct gemm_job *j = arg;
    const rn_conv_args *a = j->a;
    const rn_conv *c = a->c;
    const struct geom *g = &j->g;

    int mi = t % g->n_mchunks;
    t /= g->n_mchunks;
    int ci = t % g->n_cchunks;
    t /= g->n_cchunks;
    int grp = t % c->groups;
    int img = t / c->groups;

    int m0 = mi * g->MC, m1 = RN_MIN(g->M, m0 + g->MC);
    int q0 = ci * g->NC, len = RN_MIN(g->P, q0 + g->NC) - q0;
    if (m0 >= m1)
        return;
    int cg = c->in_c / c->groups;
    const float *in = a->in + ((size_t)img * c->in_c + (size_t)grp * cg) * a->ih * a->iw;
    const float *b;
    int ldb;
    if (g->direct) {
        b = in + q0;
        ldb = g->P;
    } else {
        float *col = j->ex->col + (size_t)thread * j->ex->col_stride;
        im2col(c, in, a->ih, a->iw, g->ow, q0, len, col);
        b = col;
        ldb = len;
    }
    int row0 = grp * g->M + m0;
    float *out = a->out + ((size_t)img * c->out_c + row0) * g->P + q0;
    rn_sgemm(m1 - m0, len, g->K, c->w + (size_t)row0 * g->K, g->K, b, ldb,
             a->accumulate ? 1.0f : 0.0f, out, g->P);

    if (!a->bias && !a->relu)
        return;
    for (int r = 0; r < m1 - m0; r++) {
        float *o = out + (size_t)r * g->P;
        float bias = a->bias ? a->bias[row0 + r] : 0.0f;
        if (a->relu)
            for (int q = 0; q < len; q++) {
                float v = o[q] + bias;
                o[q] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int q = 0; q < len; q++)
                o[q] += bias;
    }
}

void rn_conv_forward(const rn_exec *ex, const rn_conv_args *a)
{
    struct gemm_job j = {.ex = ex, .a = a};
    geometry(a->c, a->n, a->ih, a->iw, rn_pool_size(ex->pool), &j.g);
    int tasks = a->n * a->c->groups * j.g.n_cchunks * j.g.n_mchunks;
    rn_pool_run(ex->pool, tasks, conv_task, &j);
}
