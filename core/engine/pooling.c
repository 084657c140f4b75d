/* Pooling and the classifier head: max pool, global average pool, fc, on
 * NCHW activations, and max and average pool on the blocked engine's NCHW16c
 * (its max pool and batch norm + ReLU on the table's kernels, core/engine/kernels.h). */
#include <float.h>
#include <string.h>

#include "kernels.h"

struct pooling_job {
    const rn_kernels *k; /* the blocked engine's table */
    const float *in;
    float *out;
    int c, h, w, oh, ow;
    const float *wt, *b;
    int e, classes, n, chunk;
};

static void maxpool_task(void *arg, int t, int thread)
{
    const struct pooling_job *j = arg;
    const float *in = j->in + (size_t)t * j->h * j->w;
    float *out = j->out + (size_t)t * j->oh * j->ow;
    for (int oy = 0; oy < j->oh; oy++) {
        int y0 = oy * 2 - 1, y1 = RN_MIN(y0 + 3, j->h);
        y0 = RN_MAX(y0, 0);
        for (int ox = 0; ox < j->ow; ox++) {
            int x0 = ox * 2 - 1, x1 = RN_MIN(x0 + 3, j->w);
            x0 = RN_MAX(x0, 0);
            float m = -FLT_MAX;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++)
                    m = in[y * j->w + x] > m ? in[y * j->w + x] : m;
            out[oy * j->ow + ox] = m;
        }
    }
}

void rn_maxpool3x3s2(const rn_exec *ex, const float *in, int n, int c, int h, int w, float *out)
{
    struct pooling_job j = {.in = in, .out = out, .c = c, .h = h, .w = w,
                         .oh = rn_out_dim(h, 3, 2, 1), .ow = rn_out_dim(w, 3, 2, 1)};
    rn_pool_run(ex->pool, n * c, maxpool_task, &j);
}

/* Task t: one channel block of one image, on the table's kernel. */
static void maxpool_blocked_task(void *arg, int t, int thread)
{
    const struct pooling_job *j = arg;
    j->k->maxpool(j->in + (size_t)t * j->h * j->w * 16, j->h, j->w,
                  j->out + (size_t)t * j->oh * j->ow * 16, j->oh, j->ow);
}

void rn_maxpool3x3s2_blocked(const rn_exec *ex, const float *in, int n, int c, int h, int w,
                             float *out)
{
    struct pooling_job j = {.k = ex->k, .in = in, .out = out, .c = c, .h = h, .w = w,
                         .oh = rn_out_dim(h, 3, 2, 1), .ow = rn_out_dim(w, 3, 2, 1)};
    rn_pool_run(ex->pool, n * rn_cblocks(c), maxpool_blocked_task, &j);
}

/* Task t: channel block t % cb of image t / cb. */
static void avgpool_blocked_task(void *arg, int t, int thread)
{
    const struct pooling_job *j = arg;
    int cb = rn_cblocks(j->c), img = t / cb, ch0 = t % cb * 16, hw = j->h;
    const float *in = j->in + (size_t)t * hw * 16;
    double s[16] = {0};
    for (int q = 0; q < hw; q++)
        for (int k = 0; k < 16; k++)
            s[k] += in[q * 16 + k];
    for (int k = 0; k < 16 && ch0 + k < j->c; k++)
        j->out[(size_t)img * j->c + ch0 + k] = (float)(s[k] / hw);
}

void rn_global_avgpool_blocked(const rn_exec *ex, const float *in, int n, int c, int hw,
                               float *out)
{
    struct pooling_job j = {.in = in, .out = out, .c = c, .h = hw};
    rn_pool_run(ex->pool, n * rn_cblocks(c), avgpool_blocked_task, &j);
}

static void avgpool_task(void *arg, int t, int thread)
{
    const struct pooling_job *j = arg;
    int hw = j->h, c0 = t * j->chunk, c1 = RN_MIN(j->n * j->c, c0 + j->chunk);
    for (int i = c0; i < c1; i++) {
        const float *p = j->in + (size_t)i * hw;
        double s = 0;
        for (int q = 0; q < hw; q++)
            s += p[q];
        j->out[i] = (float)(s / hw);
    }
}

void rn_global_avgpool(const rn_exec *ex, const float *in, int n, int c, int hw, float *out)
{
    struct pooling_job j = {.in = in, .out = out, .n = n, .c = c, .h = hw, .chunk = 64};
    rn_pool_run(ex->pool, (n * c + j.chunk - 1) / j.chunk, avgpool_task, &j);
}

/* Task t: class blocks [t*chunk, +chunk) of every image (rn_model.fc_wt:
 * 16 classes per block, each block's weights one contiguous run), each class
 * as b + the sum over k in ascending order of in[k] * wt[k]: the same order
 * for an image alone as in any batch (a BLAS GEMM may block the sum
 * differently by batch size). A multiply and an add per term: ISO C builds
 * do not contract them. Two images at a time, their accumulators in
 * registers (8 SSE registers at the baseline); the block's weights (e x 64
 * bytes) stay in L2 for the next two. The weights (8 MB for ResNet-50) come
 * from memory at batch 1: prefetched 4 KB ahead, the layer took 0.33 ms
 * instead of 0.63 (Intel Xeon, 2 threads). */
static void linear_task(void *arg, int t, int thread)
{
    const struct pooling_job *j = arg;
    int nblk = rn_cblocks(j->classes);
    int b0 = t * j->chunk, b1 = RN_MIN(nblk, b0 + j->chunk);
    const float *w_end = j->wt + (size_t)b1 * j->e * 16; /* the task's weights */
    for (int blk = b0; blk < b1; blk++) {
        const float *w = j->wt + (size_t)blk * j->e * 16;
        int o0 = blk * 16, len = RN_MIN(16, j->classes - o0);
        for (int i0 = 0; i0 < j->n; i0 += 2) {
            int ni = RN_MIN(2, j->n - i0); /* a lone last image runs as both */
            float acc[2][16];
            for (int i = 0; i < 2; i++)
                for (int q = 0; q < 16; q++)
                    acc[i][q] = q < len ? j->b[o0 + q] : 0.0f;
            const float *x0 = j->in + (size_t)i0 * j->e, *x1 = ni > 1 ? x0 + j->e : x0;
            for (int k = 0; k < j->e; k++) {
                const float *wk = w + (size_t)k * 16;
                if (w_end - wk > 1024)
                    __builtin_prefetch(wk + 1024, 0, 2);
                float v0 = x0[k], v1 = x1[k];
                for (int q = 0; q < 16; q++) {
                    acc[0][q] += v0 * wk[q];
                    acc[1][q] += v1 * wk[q];
                }
            }
            for (int i = 0; i < ni; i++)
                memcpy(j->out + (size_t)(i0 + i) * j->classes + o0, acc[i], (size_t)len * sizeof(float));
        }
    }
}

void rn_linear(const rn_exec *ex, const float *in, int n, int e, const float *wt, const float *b,
               int classes, float *out)
{
    int threads = rn_pool_size(ex->pool), nblk = rn_cblocks(classes);
    struct pooling_job j = {.in = in, .out = out, .n = n, .e = e, .wt = wt, .b = b,
                         .classes = classes, .chunk = (nblk + threads - 1) / threads};
    rn_pool_run(ex->pool, (nblk + j.chunk - 1) / j.chunk, linear_task, &j);
}

/* ---- the ops of pre-activation blocks and ResNet-D, on either layout ----
 * A layout is planes of h*w pixels of `lanes` values: NCHW (n*c planes, one
 * channel each) or NCHW16c (n*ceil(c/16) planes of 16 channels). */

struct plane_job {
    const rn_kernels *k; /* batch norm + ReLU on NCHW16c: the table's kernel */
    const float *in;
    float *out;
    int c, h, w, lanes, planes_per_img;
    const float *scale, *shift;
    int relu;
};

static void bn_relu_task(void *arg, int t, int thread)
{
    const struct plane_job *j = arg;
    int pl = t % j->planes_per_img;
    _Alignas(64) float s[16], b[16];
    for (int l = 0; l < j->lanes; l++) {
        int ch = pl * j->lanes + l;
        s[l] = ch < j->c ? j->scale[ch] : 0.0f; /* padding channels stay zero */
        b[l] = ch < j->c ? j->shift[ch] : 0.0f;
    }
    size_t n = (size_t)j->h * j->w, at = (size_t)t * n * j->lanes;
    const float *in = j->in + at;
    float *out = j->out + at;
    if (j->k) {
        j->k->bn_relu(in, n, s, b, out);
        return;
    }
    for (size_t q = 0; q < n; q++)
        for (int l = 0; l < j->lanes; l++) {
            float v = in[q * j->lanes + l] * s[l] + b[l];
            out[q * j->lanes + l] = v > 0.0f || !j->relu ? v : 0.0f;
        }
}

void rn_bn_relu(const rn_exec *ex, const float *in, int n, int c, int h, int w, const float *scale,
                const float *shift, int blocked, float *out)
{
    int lanes = blocked ? 16 : 1, planes = blocked ? rn_cblocks(c) : c;
    struct plane_job j = {.k = blocked ? ex->k : NULL, .in = in, .out = out, .c = c, .h = h, .w = w,
                          .lanes = lanes, .planes_per_img = planes, .scale = scale, .shift = shift,
                          .relu = 1};
    rn_pool_run(ex->pool, n * planes, bn_relu_task, &j);
}

void rn_channel_affine(const rn_exec *ex, const float *in, int n, int c, int h, int w,
                       const float *scale, const float *shift, float *out)
{
    struct plane_job j = {.in = in, .out = out, .c = c, .h = h, .w = w, .lanes = 1,
                          .planes_per_img = c, .scale = scale, .shift = shift, .relu = 0};
    rn_pool_run(ex->pool, n * c, bn_relu_task, &j);
}

/* 2x2 windows at stride 2 from (2oy, 2ox), cut at the bottom and right edges
 * (ceil mode), each the mean of the pixels it holds (padding not counted). */
static void avgpool2x2_task(void *arg, int t, int thread)
{
    const struct plane_job *j = arg;
    int oh = rn_avgpool_dim(j->h), ow = rn_avgpool_dim(j->w), L = j->lanes;
    const float *in = j->in + (size_t)t * j->h * j->w * L;
    float *out = j->out + (size_t)t * oh * ow * L;
    for (int oy = 0; oy < oh; oy++) {
        int y1 = RN_MIN(2 * oy + 2, j->h);
        for (int ox = 0; ox < ow; ox++) {
            int x1 = RN_MIN(2 * ox + 2, j->w);
            float cnt = (float)((y1 - 2 * oy) * (x1 - 2 * ox));
            for (int l = 0; l < L; l++) {
                float s = 0.0f;
                for (int y = 2 * oy; y < y1; y++)
                    for (int xx = 2 * ox; xx < x1; xx++)
                        s += in[((size_t)y * j->w + xx) * L + l];
                out[((size_t)oy * ow + ox) * L + l] = s / cnt;
            }
        }
    }
}

void rn_avgpool2x2(const rn_exec *ex, const float *in, int n, int c, int h, int w, int blocked,
                   float *out)
{
    int lanes = blocked ? 16 : 1, planes = blocked ? rn_cblocks(c) : c;
    struct plane_job j = {.in = in, .out = out, .c = c, .h = h, .w = w, .lanes = lanes,
                          .planes_per_img = planes};
    rn_pool_run(ex->pool, n * planes, avgpool2x2_task, &j);
}

static void unblock_task(void *arg, int t, int thread)
{
    const struct plane_job *j = arg;
    int cb = rn_cblocks(j->c), img = t / cb, b = t % cb, hw = j->h;
    const float *in = j->in + (size_t)t * hw * 16;
    for (int k = 0; k < 16 && b * 16 + k < j->c; k++) {
        float *o = j->out + ((size_t)img * j->c + b * 16 + k) * hw;
        for (int q = 0; q < hw; q++)
            o[q] = in[(size_t)q * 16 + k];
    }
}

void rn_unblock(const rn_exec *ex, const float *in, int n, int c, int hw, float *out)
{
    struct plane_job j = {.in = in, .out = out, .c = c, .h = hw};
    rn_pool_run(ex->pool, n * rn_cblocks(c), unblock_task, &j);
}
