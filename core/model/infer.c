/* Inference contexts and the executor that walks a model's plan.
 *
 * A context owns a thread pool and the plan's buffers (core/model/model.h: X, D,
 * T1, T2, P and, for BF16 models, their bf16 twins), sized once by walking
 * the plan for the largest batch and input it was planned for, and grown
 * (the only allocation outside rn_ctx_new) when a call needs more.
 *
 * The executor runs the ops in order. A packed model runs on the blocked
 * engine: the first convolution reads the caller's NCHW input and writes
 * NCHW16c, every later op reads and writes NCHW16c (core/engine/blocked.c, on the
 * kernels chosen at load), and the global average pool turns it into (n, c).
 * Otherwise every op runs on NCHW (im2col + BLAS). A BF16 model's
 * convolutions on NCHW16c input read bf16 twins of their inputs: written by
 * the op before when only convolutions read them (rn_op.write_b), or by a
 * TO_BF16 op; residuals and outputs stay FP32.
 *
 * Named outputs (rn_infer_outputs) are copied out right after the op that
 * completes them, and the walk stops after the last op any output needs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "engine/kernels.h"

/* *p holds at least want elements of elem bytes; allocates only when larger. */
static int ensure(void **p, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return RN_OK;
    rn_free(*p);
    *cap = 0;
    if (!(*p = rn_alloc(want * elem)))
        return RN_ERR_NOMEM;
    *cap = want;
    return RN_OK;
}

/* Make sure the buffers hold n images of h x w. */
int rn_ctx_reserve(rn_ctx *ctx, int n, int h, int w, char *err, size_t errlen)
{
    const rn_model *m = ctx->m;
    size_t sizes[RN_BUF_COUNT], col;
    rn_plan_sizes(m, m->kern, h, w, sizes, &col, NULL);
    for (int b = 0; b < RN_BUF_COUNT; b++) {
        if (ensure((void **)&ctx->buf[b], &ctx->cap[b], sizes[b] * (size_t)n, sizeof(float)) < 0 ||
            (ctx->bf16 && ensure((void **)&ctx->bufb[b], &ctx->capb[b], sizes[b] * (size_t)n,
                                 sizeof(uint16_t)) < 0))
            return rn_errf(err, errlen, RN_ERR_NOMEM,
                           "out of memory for activations (%zu MB) of %d images of %dx%d",
                           sizes[b] * (size_t)n * sizeof(float) >> 20, n, h, w);
    }
    col = (col + 15) & ~(size_t)15; /* each thread's part 64-byte aligned */
    if (col > ctx->col_cap) {
        rn_free(ctx->exec.col);
        ctx->col_cap = 0;
        if (!(ctx->exec.col = rn_alloc(col * (size_t)ctx->n_threads * sizeof(float))))
            return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory for scratch buffers");
        ctx->col_cap = col;
        ctx->exec.col_stride = col;
    }
    if (ensure((void **)&ctx->pooled, &ctx->pooled_cap, (size_t)n * m->info.embed_dim,
               sizeof(float)) < 0 ||
        ensure((void **)&ctx->logits, &ctx->logits_cap, (size_t)n * m->info.n_classes,
               sizeof(float)) < 0)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    return RN_OK;
}

size_t rn_ctx_bytes(const rn_model *m, const rn_ctx_params *params)
{
    if (!m || !params)
        return 0;
    rn_ctx_params p = *params;
    if (p.n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = n > 0 ? (int)n : 1;
    }
    /* what rn_ctx_reserve allocates, buffer by buffer (rn_alloc rounds up) */
    size_t sizes[RN_BUF_COUNT], col, bytes = 0, n = (size_t)p.max_batch;
    rn_plan_sizes(m, m->kern, p.max_size, p.max_size, sizes, &col, NULL);
    int bf16 = m->info.precision == RN_PRECISION_BF16;
    for (int b = 0; b < RN_BUF_COUNT; b++)
        if (sizes[b]) {
            bytes += rn_alloc_bytes(sizes[b] * n * sizeof(float));
            bytes += bf16 ? rn_alloc_bytes(sizes[b] * n * sizeof(uint16_t)) : 0;
        }
    col = (col + 15) & ~(size_t)15;
    bytes += col ? rn_alloc_bytes(col * (size_t)p.n_threads * sizeof(float)) : 0;
    bytes += rn_alloc_bytes(n * m->info.embed_dim * sizeof(float));
    bytes += rn_alloc_bytes(n * m->info.n_classes * sizeof(float));
    return bytes;
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
    ctx->int8 = m->info.precision == RN_PRECISION_INT8;
    ctx->exec.qk = m->qkern;
    ctx->n_threads = p.n_threads;
    int rc = rn_ctx_reserve(ctx, p.max_batch, p.max_size, p.max_size, err, errlen);
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
    for (int b = 0; b < RN_BUF_COUNT; b++) {
        rn_free(ctx->buf[b]);
        rn_free(ctx->bufb[b]);
    }
    rn_free(ctx->exec.col);
    rn_free(ctx->pooled);
    rn_free(ctx->logits);
    free(ctx->prof);
    free(ctx);
}

void rn_walk_init(const rn_ctx *ctx, rn_walk *wk, const float *input, int n, int h, int w,
                  float *pooled, float *logits)
{
    memset(wk, 0, sizeof *wk);
    for (int b = 0; b < RN_BUF_COUNT; b++) {
        wk->buf[b] = ctx->buf[b];
        wk->bufb[b] = ctx->bufb[b];
    }
    wk->input = input;
    wk->n = n;
    wk->h = h;
    wk->w = w;
    wk->pooled = pooled;
    wk->logits = logits;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void walk_op(rn_ctx *ctx, rn_walk *wk, int i);

void rn_walk_op(rn_ctx *ctx, rn_walk *wk, int i)
{
    if (!ctx->prof) {
        walk_op(ctx, wk, i);
        return;
    }
    double t0 = now_s();
    walk_op(ctx, wk, i);
    double dt = now_s() - t0;
    struct rn_op_time *p = &ctx->prof[i];
    const rn_op *op = &ctx->m->ops[i];
    p->calls++;
    p->images += wk->n;
    p->seconds += dt;
    p->best = p->calls == 1 ? dt / wk->n : RN_MIN(p->best, dt / wk->n);
    p->flops = rn_op_flops(ctx->m, op, rn_op_writes_buffer(op) ? wk->shape[op->out] : NULL);
}

int rn_ctx_profile(rn_ctx *ctx, int on)
{
    if (!ctx)
        return RN_ERR_INVALID_ARG;
    free(ctx->prof);
    ctx->prof = NULL;
    if (on && !(ctx->prof = calloc((size_t)ctx->m->n_ops, sizeof *ctx->prof)))
        return RN_ERR_NOMEM;
    return RN_OK;
}

/* What op i is, for a profile: the convolution's shape and the path it runs on. */
static void describe(const rn_ctx *ctx, const rn_op *op, char *s, size_t len)
{
    static const char *const names[] = {
        [RN_OP_BN_RELU] = "batch norm + relu", [RN_OP_MAXPOOL] = "maxpool 3x3/2",
        [RN_OP_AVGPOOL] = "avgpool 2x2/2", [RN_OP_TO_BF16] = "to bf16",
        [RN_OP_GAP] = "global average pool", [RN_OP_FC] = "fc",
        [RN_OP_NORM_INPUT] = "input batch norm"};
    if (op->kind != RN_OP_CONV) {
        snprintf(s, len, "%s%s", names[op->kind],
                 op->kind == RN_OP_TO_BF16 && !ctx->bf16 ? " (nothing in fp32)" : "");
        return;
    }
    const rn_conv *c = &ctx->m->convs[op->conv];
    char groups[24] = "";
    if (c->groups > 1)
        snprintf(groups, sizeof groups, " groups %d", c->groups);
    const char *path = ctx->int8      ? (c->qwu ? "winograd F(2x2)" : "direct")
                       : !ctx->blocked ? "im2col + gemm"
                       : c->wu || c->wub ? (c->wu_m == 4 ? "winograd F(4x4)" : "winograd F(2x2)")
                                         : "direct";
    snprintf(s, len, "conv %dx%d/%d %d->%d%s %s%s", c->kh, c->kw, c->stride, c->in_c, c->out_c,
             groups, path, c->wb || c->wub ? " bf16" : ctx->int8 ? " int8" : "");
}

int rn_ctx_profile_get(const rn_ctx *ctx, rn_op_profile *out, int cap)
{
    if (!ctx)
        return 0;
    if (!out)
        cap = 0;
    const rn_model *m = ctx->m;
    static const struct rn_op_time none;
    for (int i = 0; i < m->n_ops && i < cap; i++) {
        const struct rn_op_time *p = ctx->prof ? &ctx->prof[i] : &none;
        rn_op_profile *o = &out[i];
        /* the layer that ends soonest at or after op i, the first listed on a tie */
        o->layer = "";
        int best = -1;
        for (int l = 0; l < m->n_layers; l++)
            if (m->layers[l].after >= i && (best < 0 || m->layers[l].after < m->layers[best].after))
                best = l;
        if (best >= 0)
            o->layer = m->layers[best].name;
        describe(ctx, &m->ops[i], o->what, sizeof o->what);
        o->calls = p->calls;
        o->images = p->images;
        o->seconds = p->seconds;
        o->best = p->best;
        o->flops = p->flops;
    }
    return m->n_ops;
}

/* Op i of an INT8 model (docs/int8.md): bytes in the buffers, the image
 * quantized just before the stem, floats again from the global pool on. */
static void walk_qop(rn_ctx *ctx, rn_walk *wk, int i)
{
    const rn_model *m = ctx->m;
    const rn_op *op = &m->ops[i];
    const int input_shape[3] = {3, wk->h, wk->w};
    const int *shape = op->in >= 0 ? wk->shape[op->in] : input_shape;
    int n = wk->n, c = shape[0], ih = shape[1], iw = shape[2];
    const void *in = op->in >= 0 ? (const void *)wk->buf[op->in] : (const void *)wk->input;
    void *out = op->out >= 0 ? (void *)wk->buf[op->out] : NULL;
    switch (op->kind) {
    case RN_OP_CONV: {
        const rn_conv *cv = &m->convs[op->conv];
        if (cv->q_stem) {
            uint8_t *img = (uint8_t *)wk->buf[RN_BUF_Q];
            rn_q_image(&ctx->exec, in, n, c, ih, iw, 1.0f / cv->in_scale, cv->in_zp, cv->pad, img);
            in = img;
        }
        rn_qconv_args a = {.c = cv, .in = in, .n = n, .ih = ih, .iw = iw, .out = out,
                           .res = op->accumulate ? out : NULL, .res_s8 = op->q_res_s8,
                           .res_zp = op->q_res_zp,
                           .relu = op->relu};
        rn_qconv_forward(&ctx->exec, &a);
        break;
    }
    case RN_OP_BN_RELU: {
        const rn_bn *b = &m->bns[op->bn];
        rn_q_bn_relu(&ctx->exec, in, n, c, ih, iw, op->q_in_s8, op->q_in_zp, b->qa, b->qb, out);
        break;
    }
    case RN_OP_NORM_INPUT: {
        const rn_bn *b = &m->bns[op->bn];
        rn_channel_affine(&ctx->exec, in, n, c, ih, iw, b->scale, b->shift, out);
        break;
    }
    case RN_OP_MAXPOOL:
        rn_q_maxpool3x3s2(&ctx->exec, in, n, c, ih, iw, op->q_in_s8, out);
        break;
    case RN_OP_AVGPOOL:
        rn_q_avgpool2x2(&ctx->exec, in, n, c, ih, iw, op->q_in_s8, out);
        break;
    case RN_OP_GAP:
        rn_q_global_avgpool(&ctx->exec, in, n, c, ih, iw, op->q_in_s8, op->q_in_zp, op->q_in_scale,
                            wk->pooled);
        break;
    case RN_OP_FC:
        rn_linear(&ctx->exec, wk->pooled, n, m->info.embed_dim, m->fc_wt, m->fc_b,
                  m->info.n_classes, wk->logits);
        break;
    default: /* TO_BF16: nothing */
        break;
    }
    if (rn_op_writes_buffer(op)) {
        rn_op_shape(m, op, shape, wk->shape[op->out]);
        wk->qscale[op->out] = op->q_out_scale;
        wk->qs8[op->out] = op->q_out_s8;
        wk->qzp[op->out] = op->q_out_zp;
    }
}

static void walk_op(rn_ctx *ctx, rn_walk *wk, int i)
{
    if (ctx->int8) {
        walk_qop(ctx, wk, i);
        return;
    }
    const rn_model *m = ctx->m;
    const rn_op *op = &m->ops[i];
    const int input_shape[3] = {3, wk->h, wk->w};
    const int *shape = op->in >= 0 ? wk->shape[op->in] : input_shape;
    int n = wk->n, c = shape[0], ih = shape[1], iw = shape[2];
    const float *in = op->in >= 0 ? wk->buf[op->in] : wk->input;
    const uint16_t *in_b = op->in >= 0 && ctx->bf16 ? wk->bufb[op->in] : NULL;
    float *out = op->out >= 0 ? wk->buf[op->out] : NULL;
    uint16_t *out_b = op->out >= 0 && ctx->bf16 && op->write_b ? wk->bufb[op->out] : NULL;
    switch (op->kind) {
    case RN_OP_CONV: {
        const rn_conv *cv = &m->convs[op->conv];
        rn_conv_args a = {.c = cv, .in = in, .in_b = cv->wb || cv->wub ? in_b : NULL, .n = n,
                          .ih = ih, .iw = iw, .out = out, .out_b = out_b,
                          .bias = op->bias ? cv->b : NULL, .relu = op->relu,
                          .accumulate = op->accumulate};
        rn_walk_conv(ctx, &a);
        break;
    }
    case RN_OP_BN_RELU: {
        const rn_bn *b = &m->bns[op->bn];
        rn_bn_relu(&ctx->exec, in, n, c, ih, iw, b->scale, b->shift, ctx->blocked, out);
        if (out_b)
            rn_blocked_to_bf16(&ctx->exec, out, (size_t)n * rn_cblocks(c) * 16 * ih * iw, out_b);
        break;
    }
    case RN_OP_NORM_INPUT: {
        const rn_bn *b = &m->bns[op->bn];
        rn_channel_affine(&ctx->exec, in, n, c, ih, iw, b->scale, b->shift, out);
        break;
    }
    case RN_OP_MAXPOOL:
        if (ctx->blocked)
            rn_maxpool3x3s2_blocked(&ctx->exec, in, n, c, ih, iw, out);
        else
            rn_maxpool3x3s2(&ctx->exec, in, n, c, ih, iw, out);
        break;
    case RN_OP_AVGPOOL:
        rn_avgpool2x2(&ctx->exec, in, n, c, ih, iw, ctx->blocked, out);
        break;
    case RN_OP_TO_BF16:
        if (ctx->bf16)
            rn_blocked_to_bf16(&ctx->exec, in, (size_t)n * rn_cblocks(c) * 16 * ih * iw,
                               wk->bufb[op->in]);
        break;
    case RN_OP_GAP:
        if (ctx->blocked)
            rn_global_avgpool_blocked(&ctx->exec, in, n, c, ih * iw, wk->pooled);
        else
            rn_global_avgpool(&ctx->exec, in, n, c, ih * iw, wk->pooled);
        break;
    case RN_OP_FC:
        rn_linear(&ctx->exec, wk->pooled, n, m->info.embed_dim, m->fc_wt, m->fc_b,
                  m->info.n_classes, wk->logits);
        break;
    }
    if (rn_op_writes_buffer(op))
        rn_op_shape(m, op, shape, wk->shape[op->out]);
}

void rn_walk_conv(rn_ctx *ctx, const rn_conv_args *a)
{
    if (ctx->blocked) /* rn_model_pack packs every convolution or none */
        rn_conv_blocked_forward(&ctx->exec, a);
    else
        rn_conv_forward(&ctx->exec, a);
}

/* Copy a tapped buffer (c, h, w per image; NCHW16c if blocked, INT8
 * bytes of buffer b's scale in an INT8 model) to an output. */
static void tap(rn_ctx *ctx, const rn_walk *wk, int b, int n, int c, int h, int w, const rn_output *o)
{
    const float *in = wk->buf[b];
    if (ctx->int8 && o->pool == RN_POOL_AVG) {
        rn_q_global_avgpool(&ctx->exec, in, n, c, h, w, wk->qs8[b], wk->qzp[b], wk->qscale[b], o->data);
    } else if (ctx->int8) {
        rn_q_dequantize(&ctx->exec, in, n, c, h, w, wk->qs8[b], wk->qzp[b], wk->qscale[b], o->data);
    } else if (o->pool == RN_POOL_AVG) {
        if (ctx->blocked)
            rn_global_avgpool_blocked(&ctx->exec, in, n, c, h * w, o->data);
        else
            rn_global_avgpool(&ctx->exec, in, n, c, h * w, o->data);
    } else if (ctx->blocked) {
        rn_unblock(&ctx->exec, in, n, c, h * w, o->data);
    } else {
        memcpy(o->data, in, (size_t)n * c * h * w * sizeof(float));
    }
}

static int run(rn_ctx *ctx, const float *input, int n, int h, int w, float *logits, float *embed,
               const rn_output *outs, int n_outs, char *err, size_t errlen)
{
    const rn_model *m = ctx->m;
    if (n < 1 || n > 4096 || h < 32 || w < 32 || h > 8192 || w > 8192)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                       "input of %d images of %dx%d: need 1..4096 images of 32..8192 pixels a side",
                       n, h, w);
    int last = -1, gap = -1;
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind == RN_OP_GAP)
            gap = i;
    if (logits)
        last = m->n_ops - 1;
    else if (embed)
        last = gap;
    for (int j = 0; j < n_outs; j++) {
        if (!outs[j].data || outs[j].layer < 0 || outs[j].layer >= m->n_layers ||
            (outs[j].pool != RN_POOL_NONE && outs[j].pool != RN_POOL_AVG))
            return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                           "rn_infer_outputs: output %d: no buffer, or no such layer or pooling", j);
        last = RN_MAX(last, m->layers[outs[j].layer].after);
    }
    if (last < 0)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "rn_infer: no output asked for");
    int rc = rn_ctx_reserve(ctx, n, h, w, err, errlen);
    if (rc < 0)
        return rc;
    rn_walk wk;
    rn_walk_init(ctx, &wk, input, n, h, w, embed ? embed : ctx->pooled, logits ? logits : ctx->logits);
    for (int i = 0; i <= last; i++) {
        rn_walk_op(ctx, &wk, i);
        for (int j = 0; j < n_outs; j++) {
            const rn_layer *l = &m->layers[outs[j].layer];
            if (l->after != i)
                continue;
            const int *sh = l->kind == RN_LAYER_BUF ? wk.shape[l->buf] : NULL;
            if (l->kind == RN_LAYER_EMBED)
                memcpy(outs[j].data, wk.pooled, (size_t)n * m->info.embed_dim * sizeof(float));
            else if (l->kind == RN_LAYER_LOGITS)
                memcpy(outs[j].data, wk.logits, (size_t)n * m->info.n_classes * sizeof(float));
            else
                tap(ctx, &wk, l->buf, n, sh[0], sh[1], sh[2], &outs[j]);
        }
    }
    return RN_OK;
}

int rn_infer(rn_ctx *ctx, const float *input, int n, int h, int w, float *logits, float *embed,
             char *err, size_t errlen)
{
    if (!ctx || !input || (!logits && !embed))
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "rn_infer: missing context, input or output");
    return run(ctx, input, n, h, w, logits, embed, NULL, 0, err, errlen);
}

int rn_infer_outputs(rn_ctx *ctx, const float *input, int n, int h, int w, const rn_output *outs,
                     int n_outs, char *err, size_t errlen)
{
    if (!ctx || !input || !outs || n_outs < 1)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                       "rn_infer_outputs: missing context, input or outputs");
    return run(ctx, input, n, h, w, NULL, NULL, outs, n_outs, err, errlen);
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
