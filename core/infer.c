/* Inference contexts and the forward pass.
 *
 * A context owns a thread pool and four activation buffers, sized once by
 * walking the model for the largest batch and input it was planned for:
 *   x   block input and output          d   projection shortcut / next output
 *   t1  first conv of a block (and the stem conv before pooling)
 *   t2  second conv of a bottleneck
 * A block with an identity shortcut writes its last convolution into x in
 * place (the GEMM adds x as it goes); one with a projection writes the
 * projection into d, accumulates the last convolution onto it, and swaps
 * x and d. No memory is allocated on the inference path.
 *
 * A packed model (rn_model_pack) runs on the blocked engine: the stem reads
 * the NCHW input and writes NCHW16c, every later layer reads and writes
 * NCHW16c (core/blocked.c, on the kernels chosen at load), and the average pool turns it into (n, c).
 * Buffers are sized for channel counts rounded up to 16. A BF16 model's
 * block convolutions read bf16 copies of their inputs: the first two of a
 * block write theirs directly (xb, t1b, t2b), the block input is converted
 * once for the first convolution and the projection; the last convolution
 * and the residual stay FP32.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* XB, T1B, T2B: bf16 copies of x, t1, t2 for a BF16 model (half the floats) */
enum { BUF_X, BUF_D, BUF_T1, BUF_T2, BUF_XB, BUF_T1B, BUF_T2B, BUF_COUNT };

struct rn_ctx {
    const rn_model *m;
    int blocked;             /* the model is packed: blocks run on NCHW16c */
    int bf16;                /* ... with bf16 weights (RN_PRECISION_BF16) */
    rn_exec exec;
    int n_threads;
    float *buf[BUF_COUNT];
    size_t cap[BUF_COUNT];   /* floats */
    float *pooled;           /* (max_batch, embed_dim) when the caller wants no embedding */
    size_t pooled_cap;
    size_t col_cap;          /* per thread */
};

/* Floats each buffer needs per image, and im2col per thread, for h x w. */
struct plan {
    size_t need[BUF_COUNT];
    size_t col;
};

static void plan_for(const rn_model *m, int h, int w, struct plan *p)
{
    memset(p, 0, sizeof *p);
#define NEED(b, v) (p->need[b] = RN_MAX(p->need[b], (size_t)(v)))
#define COL(c, ih, iw)                                                                     \
    (p->col = RN_MAX(p->col, RN_MAX(rn_conv_col_floats(c, ih, iw),                         \
                                    (c)->wu || (c)->wub ? rn_conv_wino_floats(m->kern, c) : 0)))
    const rn_conv *s = &m->stem;
    int oh = rn_out_dim(h, s->kh, s->stride, s->pad), ow = rn_out_dim(w, s->kw, s->stride, s->pad);
    NEED(BUF_T1, (size_t)rn_cblocks(s->out_c) * 16 * oh * ow);
    COL(s, h, w);
    h = rn_out_dim(oh, 3, 2, 1);
    w = rn_out_dim(ow, 3, 2, 1);
    NEED(BUF_X, (size_t)rn_cblocks(s->out_c) * 16 * h * w);
    for (int k = 0; k < m->n_blocks; k++) {
        const rn_block *b = &m->blocks[k];
        const rn_conv *cs[3] = {&b->c1, &b->c2, &b->c3};
        int n_convs = b->kind == RN_BLOCK_BOTTLENECK ? 3 : 2, ch = h, cw = w;
        for (int i = 0; i < n_convs; i++) {
            COL(cs[i], ch, cw);
            ch = rn_out_dim(ch, cs[i]->kh, cs[i]->stride, cs[i]->pad);
            cw = rn_out_dim(cw, cs[i]->kw, cs[i]->stride, cs[i]->pad);
            size_t v = (size_t)rn_cblocks(cs[i]->out_c) * 16 * ch * cw;
            NEED(i == n_convs - 1 ? BUF_X : i == 0 ? BUF_T1 : BUF_T2, v);
            if (i == n_convs - 1)
                NEED(BUF_D, v);
        }
        if (rn_block_has_ds(b))
            COL(&b->ds, h, w);
        h = ch;
        w = cw;
    }
#undef NEED
#undef COL
}

/* Make sure the buffers hold n images of h x w; allocates only when larger. */
static int reserve(rn_ctx *ctx, int n, int h, int w, char *err, size_t errlen)
{
    struct plan p;
    plan_for(ctx->m, h, w, &p);
    if (ctx->bf16)
        for (int b = BUF_XB; b <= BUF_T2B; b++)
            p.need[b] = (p.need[b - BUF_XB] + 1) / 2;
    for (int b = 0; b < BUF_COUNT; b++) {
        size_t want = p.need[b] * (size_t)n;
        if (want <= ctx->cap[b])
            continue;
        rn_free(ctx->buf[b]);
        ctx->cap[b] = 0;
        if (!(ctx->buf[b] = rn_alloc(want * sizeof(float))))
            return rn_errf(err, errlen, RN_ERR_NOMEM,
                           "out of memory for activations (%zu MB) of %d images of %dx%d",
                           want * sizeof(float) >> 20, n, h, w);
        ctx->cap[b] = want;
    }
    p.col = (p.col + 15) & ~(size_t)15; /* each thread's part 64-byte aligned */
    if (p.col > ctx->col_cap) {
        rn_free(ctx->exec.col);
        ctx->col_cap = 0;
        if (!(ctx->exec.col = rn_alloc(p.col * (size_t)ctx->n_threads * sizeof(float))))
            return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory for im2col buffers");
        ctx->col_cap = p.col;
        ctx->exec.col_stride = p.col;
    }
    size_t pooled = (size_t)n * ctx->m->info.embed_dim;
    if (pooled > ctx->pooled_cap) {
        rn_free(ctx->pooled);
        ctx->pooled_cap = 0;
        if (!(ctx->pooled = rn_alloc(pooled * sizeof(float))))
            return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
        ctx->pooled_cap = pooled;
    }
    return RN_OK;
}

rn_ctx_params rn_ctx_default_params(void)
{
    return (rn_ctx_params){.n_threads = 0, .max_batch = 1, .max_size = 224};
}

int rn_ctx_new(const rn_model *m, const rn_ctx_params *params, rn_ctx **out, char *err,
               size_t errlen)
{
    *out = NULL;
    rn_ctx_params p = params ? *params : rn_ctx_default_params();
    if (!m)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "no model");
    if (p.n_threads < 0 || p.n_threads > 1024 || p.max_batch < 1 || p.max_batch > 4096 ||
        p.max_size < 32 || p.max_size > 8192)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                       "context parameters out of range: threads %d (0..1024), max_batch %d "
                       "(1..4096), max_size %d (32..8192)",
                       p.n_threads, p.max_batch, p.max_size);
    if (p.n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = n > 0 ? (int)n : 1;
    }
    rn_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    ctx->m = m;
    ctx->blocked = m->kern != NULL;
    ctx->exec.k = m->kern;
    ctx->bf16 = m->info.precision == RN_PRECISION_BF16;
    ctx->n_threads = p.n_threads;
    int rc = reserve(ctx, p.max_batch, p.max_size, p.max_size, err, errlen);
    if (rc < 0)
        goto out_free_ctx;
    if (!(ctx->exec.pool = rn_pool_new(p.n_threads))) {
        rc = rn_errf(err, errlen, RN_ERR_INTERNAL, "cannot start %d threads", p.n_threads);
        goto out_free_ctx;
    }
    *out = ctx;
    return RN_OK;

out_free_ctx:
    rn_ctx_free(ctx);
    return rc;
}

void rn_ctx_free(rn_ctx *ctx)
{
    if (!ctx)
        return;
    rn_pool_free(ctx->exec.pool);
    for (int b = 0; b < BUF_COUNT; b++)
        rn_free(ctx->buf[b]);
    rn_free(ctx->exec.col);
    rn_free(ctx->pooled);
    free(ctx);
}

/* in_b, out_b: bf16 copies of in and out for a BF16 model, else NULL */
static void conv(rn_ctx *ctx, const rn_conv *c, const float *in, const uint16_t *in_b, int n,
                 int *h, int *w, float *out, uint16_t *out_b, const float *bias, int relu,
                 int accumulate)
{
    rn_conv_args a = {.c = c, .in = in, .in_b = in_b, .n = n, .ih = *h, .iw = *w, .out = out,
                      .out_b = out_b, .bias = bias, .relu = relu, .accumulate = accumulate};
    if (ctx->blocked) /* rn_model_pack packs every convolution or none */
        rn_conv_blocked_forward(&ctx->exec, &a);
    else
        rn_conv_forward(&ctx->exec, &a);
    *h = rn_out_dim(*h, c->kh, c->stride, c->pad);
    *w = rn_out_dim(*w, c->kw, c->stride, c->pad);
}

int rn_infer(rn_ctx *ctx, const float *input, int n, int h, int w, float *logits, float *embed,
             char *err, size_t errlen)
{
    if (!ctx || !input || (!logits && !embed))
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "rn_infer: missing context, input or output");
    if (n < 1 || n > 4096 || h < 32 || w < 32 || h > 8192 || w > 8192)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                       "input of %d images of %dx%d: need 1..4096 images of 32..8192 pixels a side",
                       n, h, w);
    int rc = reserve(ctx, n, h, w, err, errlen);
    if (rc < 0)
        return rc;
    const rn_model *m = ctx->m;
    float *x = ctx->buf[BUF_X], *d = ctx->buf[BUF_D], *t1 = ctx->buf[BUF_T1],
          *t2 = ctx->buf[BUF_T2];
    uint16_t *xb = NULL, *t1b = NULL, *t2b = NULL;
    if (ctx->bf16) {
        xb = (uint16_t *)ctx->buf[BUF_XB];
        t1b = (uint16_t *)ctx->buf[BUF_T1B];
        t2b = (uint16_t *)ctx->buf[BUF_T2B];
    }

    conv(ctx, &m->stem, input, NULL, n, &h, &w, t1, NULL, m->stem.b, 1, 0);
    if (ctx->blocked)
        rn_maxpool3x3s2_blocked(&ctx->exec, t1, n, m->stem.out_c, h, w, x);
    else
        rn_maxpool3x3s2(&ctx->exec, t1, n, m->stem.out_c, h, w, x);
    h = rn_out_dim(h, 3, 2, 1);
    w = rn_out_dim(w, 3, 2, 1);

    for (int k = 0; k < m->n_blocks; k++) {
        const rn_block *b = &m->blocks[k];
        const rn_conv *last = rn_block_last(b);
        int bh = h, bw = w;
        float *out = x;
        if (xb)
            rn_blocked_to_bf16(&ctx->exec, x, (size_t)n * rn_cblocks(b->c1.in_c) * 16 * h * w, xb);
        if (rn_block_has_ds(b)) {
            int dh = h, dw = w;
            conv(ctx, &b->ds, x, xb, n, &dh, &dw, d, NULL, NULL, 0, 0);
            out = d;
        }
        conv(ctx, &b->c1, x, xb, n, &bh, &bw, t1, t1b, b->c1.b, 1, 0);
        const float *prev = t1;
        const uint16_t *prev_b = t1b;
        if (b->kind == RN_BLOCK_BOTTLENECK) {
            conv(ctx, &b->c2, t1, t1b, n, &bh, &bw, t2, t2b, b->c2.b, 1, 0);
            prev = t2;
            prev_b = t2b;
        }
        conv(ctx, last, prev, prev_b, n, &bh, &bw, out, NULL, b->out_bias, 1, 1);
        if (out == d) {
            d = x;
            x = out;
        }
        h = bh;
        w = bw;
    }

    int e = m->info.embed_dim;
    float *pooled = embed ? embed : ctx->pooled;
    if (ctx->blocked)
        rn_global_avgpool_blocked(&ctx->exec, x, n, e, h * w, pooled);
    else
        rn_global_avgpool(&ctx->exec, x, n, e, h * w, pooled);
    if (logits)
        rn_linear(&ctx->exec, pooled, n, e, m->fc_wt, m->fc_b, m->info.n_classes, logits);
    return RN_OK;
}

void rn_softmax(float *x, int n)
{
    if (n <= 0)
        return;
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    for (int i = 0; i < n; i++)
        x[i] = (float)(exp((double)x[i] - mx) / sum);
}

int rn_topk(const float *x, int n, int k, int *idx)
{
    if (k > n)
        k = n;
    if (k <= 0)
        return 0;
    int cnt = 0;
    for (int i = 0; i < n; i++) {
        if (cnt == k && !(x[i] > x[idx[k - 1]]))
            continue;
        int j = cnt < k ? cnt++ : k - 1;
        while (j > 0 && x[i] > x[idx[j - 1]]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return cnt;
}
