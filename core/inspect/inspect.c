/* The inspection: one image's forward pass, stopped at every residual block
 * (rn_block) to measure its shortcut s, its residual branch F and its output
 * y, and forked there into a second walk that lesions the block (F set to
 * zero) and runs only the ops after it, from that activation, to new logits.
 *
 * The main walk runs the same ops on the same buffers as rn_infer, so its
 * logits and embedding are rn_infer's bit for bit; F is computed once more,
 * into a scratch buffer, by the block's last convolution without the
 * accumulation onto s. The fork runs on buffers of its own, allocated per
 * call (rn_inspect_bytes), since after a block only its output is live.
 *
 * Norms and dot products are summed in double over whole buffers: NCHW, or
 * NCHW16c, whose padding channels are zero (core/engine/engine.h).
 *
 * An INT8 model's buffers hold bytes (docs/int8.md); its blocks are measured
 * on their tensors dequantized to NCHW floats, and F, which its last
 * convolution adds inside its requantization, is made again from that
 * convolution's int32 sums (branch_q). Its lesion is the same epilogue with
 * those sums left out: y = rint(clamp(f32(s) * R)), then the ops after it on
 * the integer path. docs/int8.md, "Inspecting an INT8 model", defines both.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ctx.h"
#include "engine/kernels.h"

rn_inspect_params rn_inspect_default_params(void)
{
    return (rn_inspect_params){.lesions = 1};
}

/* Floats per image that a buffer of shape sh holds in the layout the model runs. */
static size_t elems(const rn_ctx *ctx, const int sh[3])
{
    int c = ctx->blocked ? rn_cblocks(sh[0]) * 16 : sh[0];
    return (size_t)c * sh[1] * sh[2];
}

/* a.a, b.b and a.b in one pass, each summed in double over 8 lanes (fixed
 * order: the same numbers every run) */
static void dots(const float *a, const float *b, size_t n, double *aa, double *bb, double *ab)
{
    double s[3][8] = {{0}};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            double x = a[i + j], y = b[i + j];
            s[0][j] += x * x;
            s[1][j] += y * y;
            s[2][j] += x * y;
        }
    for (int j = 0; i + j < n; j++) {
        double x = a[i + j], y = b[i + j];
        s[0][j] += x * x;
        s[1][j] += y * y;
        s[2][j] += x * y;
    }
    double r[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 8; j++)
            r[k] += s[k][j];
    *aa = r[0];
    *bb = r[1];
    *ab = r[2];
}

static double dot(const float *a, const float *b, size_t n)
{
    double aa, bb, ab;
    dots(a, b, n, &aa, &bb, &ab);
    return ab;
}

static double cosine(double ab, double na, double nb)
{
    return na > 0 && nb > 0 ? ab / (na * nb) : 0.0;
}

/* 1 if, after op add, every op reads only buffers the ops after add write
 * first or add's own output: the lesion's walk can start from that alone. */
static int forkable(const rn_model *m, int add)
{
    unsigned live = 1u << m->ops[add].out;
    for (int i = add + 1; i < m->n_ops; i++) {
        const rn_op *op = &m->ops[i];
        if (op->in >= 0 && !(live & (1u << op->in)))
            return 0;
        if (op->kind == RN_OP_CONV && op->accumulate && !(live & (1u << op->out)))
            return 0;
        if (rn_op_writes_buffer(op))
            live |= 1u << op->out;
    }
    return 1;
}

/* log-softmax of n logits into out (double). */
static void log_softmax(const float *x, int n, double *out)
{
    double mx = x[0], sum = 0;
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < n; i++)
        out[i] = (double)x[i] - lse;
}

static int argmax(const float *x, int n)
{
    int k = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[k])
            k = i;
    return k;
}

/* Everything rn_inspect allocates beyond the context. */
struct scratch {
    float *fbuf[RN_BUF_COUNT];
    uint16_t *fbufb[RN_BUF_COUNT];
    float *s, *f;
    float *t;           /* INT8: x, then y, dequantized */
    uint8_t *sq;        /* INT8: the shortcut's bytes, for the lesion */
    float *logits, *embed; /* each block's lesioned logits and embedding, one after another */
    double *lp, *lq;
};

static void scratch_free(struct scratch *sc)
{
    for (int b = 0; b < RN_BUF_COUNT; b++) {
        rn_free(sc->fbuf[b]);
        rn_free(sc->fbufb[b]);
    }
    rn_free(sc->s);
    rn_free(sc->f);
    rn_free(sc->t);
    rn_free(sc->sq);
    free(sc->logits);
    free(sc->embed);
    free(sc->lp);
    free(sc->lq);
}

static size_t largest(const size_t sizes[RN_BUF_COUNT])
{
    size_t mx = 0;
    for (int b = 0; b < RN_BUF_COUNT; b++)
        mx = sizes[b] > mx ? sizes[b] : mx;
    return mx;
}

/* INT8 models: the floats of the largest tensor any op writes, c * h * w (its
 * buffers' sizes count bytes); 0 when out of memory. */
static size_t qfloats(const rn_model *m, int h, int w)
{
    size_t sizes[RN_BUF_COUNT], col, mx = 0;
    int *shapes = malloc((size_t)m->n_ops * 3 * sizeof(int));
    if (!shapes)
        return 0;
    rn_plan_sizes(m, m->kern, h, w, sizes, &col, shapes);
    for (int i = 0; i < m->n_ops; i++) {
        const int *sh = shapes + 3 * i;
        if (rn_op_writes_buffer(&m->ops[i]))
            mx = RN_MAX(mx, (size_t)sh[0] * sh[1] * sh[2]);
    }
    free(shapes);
    return mx;
}

size_t rn_inspect_bytes(const rn_model *m, int h, int w)
{
    if (!m || h < 32 || w < 32 || h > 8192 || w > 8192)
        return 0;
    size_t sizes[RN_BUF_COUNT], col, floats = 0, bytes = 0;
    rn_plan_sizes(m, m->kern, h, w, sizes, &col, NULL);
    int bf16 = m->info.precision == RN_PRECISION_BF16;
    /* scratch_new's rn_alloc buffers (each rounded up as rn_alloc does) */
    for (int b = 0; b < RN_BUF_COUNT; b++) {
        bytes += rn_alloc_bytes((sizes[b] + 1) * sizeof(float));
        bytes += bf16 ? rn_alloc_bytes((sizes[b] + 1) * sizeof(uint16_t)) : 0;
    }
    /* s and F (INT8: and x or y as floats, and s's bytes) */
    size_t tensor = largest(sizes);
    if (m->info.precision == RN_PRECISION_INT8) {
        tensor = qfloats(m, h, w);
        bytes += rn_alloc_bytes((tensor + 1) * sizeof(float)) +
                 rn_alloc_bytes((largest(sizes) + 1) * sizeof(float));
    }
    bytes += 2 * rn_alloc_bytes((tensor + 1) * sizeof(float));
    floats += ((size_t)m->n_blocks + 2) * ((size_t)m->info.embed_dim + m->info.n_classes) +
              4 * (size_t)m->info.n_classes;
    /* the result: the final map, at most the largest tensor, and the reports */
    floats += tensor + (size_t)m->n_blocks * sizeof(rn_block_report) / sizeof(float);
    return bytes + floats * sizeof(float);
}

/* The fork's buffers and the lesions' results only when there are lesions. */
static int scratch_new(const rn_ctx *ctx, int h, int w, int lesions, struct scratch *sc)
{
    const rn_model *m = ctx->m;
    size_t sizes[RN_BUF_COUNT], col;
    rn_plan_sizes(m, m->kern, h, w, sizes, &col, NULL);
    memset(sc, 0, sizeof *sc);
    for (int b = 0; lesions && b < RN_BUF_COUNT; b++) {
        if (!(sc->fbuf[b] = rn_alloc((sizes[b] + 1) * sizeof(float))))
            return RN_ERR_NOMEM;
        if (ctx->bf16 && !(sc->fbufb[b] = rn_alloc((sizes[b] + 1) * sizeof(uint16_t))))
            return RN_ERR_NOMEM;
    }
    size_t mx = largest(sizes) + 1;
    int nc = m->info.n_classes;
    if (ctx->int8) {
        size_t fl = qfloats(m, h, w) + 1;
        if (fl == 1 || !(sc->sq = rn_alloc(mx * sizeof(float))) ||
            !(sc->t = rn_alloc(fl * sizeof(float))))
            return RN_ERR_NOMEM;
        mx = fl;
    }
    if (!(sc->s = rn_alloc(mx * sizeof(float))) || !(sc->f = rn_alloc(mx * sizeof(float))))
        return RN_ERR_NOMEM;
    if (lesions &&
        (!(sc->logits = malloc((size_t)m->n_blocks * nc * sizeof(float))) ||
        !(sc->embed = malloc((size_t)m->n_blocks * m->info.embed_dim * sizeof(float))) ||
        !(sc->lp = malloc((size_t)nc * sizeof(double))) ||
        !(sc->lq = malloc((size_t)nc * sizeof(double)))))
        return RN_ERR_NOMEM;
    return RN_OK;
}

void rn_inspection_free(rn_inspection *r)
{
    if (!r)
        return;
    free(r->logits);
    free(r->probs);
    free(r->embed);
    free(r->blocks);
    free(r->map);
    free(r->lesion_logits);
    free(r->lesion_embed);
    free(r);
}

/* The block's numbers from s, F and y (cnt floats each, one layout). */
static void block_stats(const float *s, const float *f, const float *y, size_t cnt,
                        rn_block_report *br)
{
    double ss, ff, sf, yy, sy;
    dots(s, f, cnt, &ss, &ff, &sf);
    dots(s, y, cnt, &ss, &yy, &sy);
    br->s_norm = sqrt(ss);
    br->f_norm = sqrt(ff);
    br->y_norm = sqrt(yy);
    br->cos_sf = cosine(sf, br->s_norm, br->f_norm);
    br->f_over_s = br->s_norm > 0 ? br->f_norm / br->s_norm : 0;
    br->f_over_x = br->x_norm > 0 ? br->f_norm / br->x_norm : 0;
    /* an identity block's x is s */
    br->cos_xy = br->projection ? NAN : cosine(sy, br->s_norm, br->y_norm);
}

/* Block b's add op i: s is in its out buffer; F into scratch, then the add. */
static void measure(rn_ctx *ctx, rn_walk *wk, struct scratch *sc, const rn_block *b, int i,
                    rn_block_report *br)
{
    const rn_model *m = ctx->m;
    const rn_op *op = &m->ops[i];
    const rn_conv *cv = &m->convs[op->conv];
    size_t cnt = elems(ctx, wk->shape[op->out]);
    memcpy(sc->s, wk->buf[op->out], cnt * sizeof(float));
    const int *ish = wk->shape[op->in];
    rn_conv_args a = {.c = cv, .in = wk->buf[op->in],
                      .in_b = ctx->bf16 && (cv->wb || cv->wub) ? wk->bufb[op->in] : NULL,
                      .n = 1, .ih = ish[1], .iw = ish[2], .out = sc->f,
                      .bias = op->bias ? cv->b : NULL};
    rn_walk_conv(ctx, &a);
    rn_walk_op(ctx, wk, i);
    memcpy(br->out_shape, wk->shape[op->out], sizeof br->out_shape);
    br->projection = b->proj >= 0;
    block_stats(sc->s, sc->f, wk->buf[op->out], cnt, br);
}

/* ---- INT8 ---- */

/* Buffer b of an INT8 walk (one image) as NCHW floats: f32(q - z) * its scale. */
static void dequantize(rn_ctx *ctx, const rn_walk *wk, const void *q, int b, float *out)
{
    const int *sh = wk->shape[b];
    rn_q_dequantize(&ctx->exec, q, 1, sh[0], sh[1], sh[2], wk->qs8[b], wk->qzp[b], wk->qscale[b], out);
}

struct branch_job {
    const rn_conv *c;
    const uint8_t *in;   /* u8 NCHW16c with its border, one image */
    int ih, iw, oh, ow;
    float *out;          /* (out_c, oh, ow) */
};

/* Weight (input i of a group of 4, output o of 16) of the group at element
 * g of c's packed weights, in either layout rn_qconv_pack writes. */
static inline float packed_weight(const rn_conv *c, size_t g, int i, int o)
{
    if (c->q_w16)
        return ((const int16_t *)(const void *)c->wq)[g + (o / 8 * 2 + i % 2) * 16 + o % 8 * 2 + i / 2];
    return c->wq[g + o * 4 + i];
}

#define BRANCH_PIXELS 32 /* output pixels a task's int32 sums cover at a time */

/* Task t: output block t / oh, row t % oh. The int32 sums of docs/int8.md
 * (acc = bias + the sum of w * x, exact, so in any order) from the packed
 * weights the tiles read (engine.h: (ceil(out_c/16), wp_ibg, kh, kw, 4, 16
 * out, 4 in)), then F = f32(f32(acc) * M[o]) * s_out. Each tap's 16 products
 * per output are summed in float, a loop the baseline ISA vectorizes: exact,
 * since |u8 * s8| <= 255 * 127 and 16 of them stay below 2^24; then added to
 * acc in int32. */
static void branch_task(void *arg, int t, int thread)
{
    const struct branch_job *j = arg;
    const rn_conv *c = j->c;
    int oy = t % j->oh, ob = t / j->oh, ib_n = c->wp_ibg, kh = c->kh, kw = c->kw, st = c->stride;
    size_t in_plane = rn_qplane(j->ih, j->iw), in_row = (size_t)(j->iw + 2 * RN_QB) * 16;
    const uint8_t *in = j->in + (size_t)(ob / c->wp_obg) * ib_n * in_plane;
    size_t w0 = (size_t)ob * ib_n * kh * kw * 256; /* the block's first weight, in elements */
    for (int x0 = 0; x0 < j->ow; x0 += BRANCH_PIXELS) {
        int r = RN_MIN(BRANCH_PIXELS, j->ow - x0);
        int32_t acc[BRANCH_PIXELS][16];
        float wt[16][16];
        for (int p = 0; p < r; p++)
            for (int o = 0; o < 16; o++)
                acc[p][o] = c->bq[ob * 16 + o];
        for (int ib = 0; ib < ib_n; ib++)
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++) {
                    size_t tap = w0 + (((size_t)ib * kh + ky) * kw + kx) * 256;
                    for (int i = 0; i < 16; i++)
                        for (int o = 0; o < 16; o++)
                            wt[i][o] = packed_weight(c, tap + (size_t)(i / 4) * 64, i % 4, o);
                    const uint8_t *row = in + ib * in_plane +
                                         (size_t)(oy * st + ky - c->pad + RN_QB) * in_row;
                    for (int p = 0; p < r; p++) {
                        const uint8_t *px = row + (size_t)((x0 + p) * st + kx - c->pad + RN_QB) * 16;
                        float sum[16] = {0};
                        for (int i = 0; i < 16; i++) {
                            float v = px[i];
                            for (int o = 0; o < 16; o++)
                                sum[o] += v * wt[i][o];
                        }
                        for (int o = 0; o < 16; o++)
                            acc[p][o] += (int32_t)sum[o];
                    }
                }
        for (int o = 0; o < 16 && ob * 16 + o < c->out_c; o++) {
            float mq = c->mq[ob * 16 + o], *out = j->out + ((size_t)(ob * 16 + o) * j->oh + oy) * j->ow + x0;
            for (int p = 0; p < r; p++) {
                float v = (float)acc[p][o] * mq;
                out[p] = v * c->out_scale;
            }
        }
    }
}

/* F of the block whose last convolution is op i: that convolution on its
 * input as the tiles compute it, up to the residual, as NCHW floats. */
static void branch_q(rn_ctx *ctx, const rn_walk *wk, int i, float *out)
{
    const rn_op *op = &ctx->m->ops[i];
    const rn_conv *c = &ctx->m->convs[op->conv];
    const int *ish = wk->shape[op->in];
    struct branch_job j = {.c = c, .in = (const uint8_t *)wk->buf[op->in], .ih = ish[1], .iw = ish[2],
                           .oh = rn_out_dim(ish[1], c->kh, c->stride, c->pad),
                           .ow = rn_out_dim(ish[2], c->kw, c->stride, c->pad), .out = out};
    rn_pool_run(ctx->exec.pool, rn_cblocks(c->out_c) * j.oh, branch_task, &j);
}

/* measure() on an INT8 model: s's bytes kept for the lesion, s, F and y
 * as floats. */
static void measure_q(rn_ctx *ctx, rn_walk *wk, struct scratch *sc, const rn_block *b, int i,
                      rn_block_report *br)
{
    const rn_op *op = &ctx->m->ops[i];
    const int *sh = wk->shape[op->out];
    memcpy(sc->sq, wk->buf[op->out], rn_qbytes(1, sh[0], sh[1], sh[2]));
    dequantize(ctx, wk, sc->sq, op->out, sc->s);
    branch_q(ctx, wk, i, sc->f);
    rn_walk_op(ctx, wk, i);
    dequantize(ctx, wk, wk->buf[op->out], op->out, sc->t);
    memcpy(br->out_shape, wk->shape[op->out], sizeof br->out_shape);
    br->projection = b->proj >= 0;
    block_stats(sc->s, sc->f, sc->t, (size_t)sh[0] * sh[1] * sh[2], br);
}

/* The lesioned output (shape sh, one image) of an INT8 block from its
 * shortcut's bytes s: the requantization with acc left out,
 * rint(clamp(f32(s - z_s) * R, lo - z, hi - z)) + z. Padding channels hold
 * the shortcut's zero point and so get the output's; the border is written
 * 0 again, as every op writing an INT8 tensor does (engine.h). */
static void lesion_q(const rn_op *op, const rn_conv *cv, const int *sh, const uint8_t *s, uint8_t *y)
{
    size_t cnt = rn_qbytes(1, sh[0], sh[1], sh[2]);
    int zo = op->relu ? 0 : cv->out_zp, zs = op->q_res_zp;
    float lo = op->relu ? 0.0f : (float)(-128 - zo), hi = op->relu ? 255.0f : (float)(127 - zo), rq = cv->rq;
    for (size_t j = 0; j < cnt; j++) {
        float v = (float)((op->q_res_s8 ? (int8_t)s[j] : s[j]) - zs) * rq;
        v = v < lo ? lo : v > hi ? hi : v;
        y[j] = (uint8_t)((int)rn_rint_small(v) + zo);
    }
    for (int b = 0; b < rn_cblocks(sh[0]); b++)
        rn_qborder(y + (size_t)b * rn_qplane(sh[1], sh[2]), sh[1], sh[2], 0, sh[1]);
}

/* The lesion of block k, whose add op i just ran on wk: y := [relu](s)
 * (INT8: lesion_q),
 * then the ops after it on the fork's buffers, to block k's lesioned logits
 * and embedding. */
static void lesion(rn_ctx *ctx, const rn_walk *wk, struct scratch *sc, int i, int k,
                   rn_inspection *r, rn_block_report *br)
{
    const rn_model *m = ctx->m;
    const rn_op *op = &m->ops[i];
    rn_walk fk = *wk;
    for (int b = 0; b < RN_BUF_COUNT; b++) {
        fk.buf[b] = sc->fbuf[b];
        fk.bufb[b] = sc->fbufb[b];
    }
    fk.pooled = sc->embed + (size_t)k * m->info.embed_dim;
    fk.logits = sc->logits + (size_t)k * m->info.n_classes;
    if (ctx->int8) {
        const int *sh = wk->shape[op->out];
        lesion_q(op, &m->convs[op->conv], sh, sc->sq,
                 (uint8_t *)fk.buf[op->out]);
    } else {
        size_t cnt = elems(ctx, wk->shape[op->out]);
        float *y = fk.buf[op->out];
        for (size_t j = 0; j < cnt; j++)
            y[j] = op->relu && !(sc->s[j] > 0) ? 0.0f : sc->s[j];
        if (ctx->bf16 && op->write_b)
            rn_blocked_to_bf16(&ctx->exec, y, cnt, fk.bufb[op->out]);
    }
    double flops = 0;
    for (int j = i + 1; j < m->n_ops; j++) {
        rn_walk_op(ctx, &fk, j);
        const rn_op *o = &m->ops[j];
        flops += rn_op_flops(m, o, rn_op_writes_buffer(o) ? fk.shape[o->out] : wk->shape[0]);
    }
    br->lesion_ops = m->n_ops - 1 - i;
    br->lesion_gflops = flops / 1e9;
    r->lesion_gflops += br->lesion_gflops;
}

/* What block k's lesion did to the class scores and the embedding. */
static void lesion_stats(const rn_model *m, struct scratch *sc, int k, const rn_inspection *r,
                         rn_block_report *br)
{
    int nc = m->info.n_classes, e = m->info.embed_dim, top = argmax(r->logits, nc);
    const float *lg = sc->logits + (size_t)k * nc, *em = sc->embed + (size_t)k * e;
    log_softmax(r->logits, nc, sc->lp);
    log_softmax(lg, nc, sc->lq);
    double kl = 0;
    for (int j = 0; j < nc; j++)
        kl += exp(sc->lp[j]) * (sc->lp[j] - sc->lq[j]);
    br->lesion_top1 = argmax(lg, nc);
    br->lesion_top1_prob = exp(sc->lq[br->lesion_top1]);
    br->lesion_orig_prob = exp(sc->lq[top]);
    br->lesion_kl = kl > 0 ? kl : 0;
    br->lesion_embed_cos = cosine(dot(r->embed, em, e), sqrt(dot(r->embed, r->embed, e)),
                                  sqrt(dot(em, em, e)));
}

int rn_inspect(rn_ctx *ctx, const float *input, int h, int w, const rn_inspect_params *params,
               rn_inspection **out, char *err, size_t errlen)
{
    if (!out)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "rn_inspect: no output");
    *out = NULL;
    if (!ctx || !input)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "rn_inspect: missing context or input");
    if (h < 32 || w < 32 || h > 8192 || w > 8192)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                       "input of %dx%d: need 32..8192 pixels a side", h, w);
    const rn_model *m = ctx->m;
    rn_inspect_params p = params ? *params : rn_inspect_default_params();
    if (m->n_blocks == 0)
        return rn_errf(err, errlen, RN_ERR_UNSUPPORTED, "the model records no residual blocks");
    int gap = -1;
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind == RN_OP_GAP)
            gap = i;
    if (gap < 0 || m->ops[m->n_ops - 1].kind != RN_OP_FC)
        return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                       "the model does not end in a global pool and a classifier");
    for (int k = 0; p.lesions && k < m->n_blocks; k++)
        if (!forkable(m, m->blocks[k].add))
            return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                           "%s: the layers after it read more than its output; no lesion",
                           m->blocks[k].name);
    int rc = rn_ctx_reserve(ctx, 1, h, w, err, errlen);
    if (rc < 0)
        return rc;
    struct scratch sc;
    rn_inspection *r = calloc(1, sizeof *r);
    int nc = m->info.n_classes, e = m->info.embed_dim;
    if (!r || (rc = scratch_new(ctx, h, w, p.lesions, &sc)) < 0 ||
        !(r->logits = malloc((size_t)nc * sizeof(float))) ||
        !(r->probs = malloc((size_t)nc * sizeof(float))) ||
        !(r->embed = malloc((size_t)e * sizeof(float))) ||
        !(r->blocks = calloc((size_t)m->n_blocks, sizeof *r->blocks))) {
        if (r)
            scratch_free(&sc);
        rn_inspection_free(r);
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory for the inspection of %dx%d", h, w);
    }
    r->n_classes = nc;
    r->embed_dim = e;
    r->n_blocks = m->n_blocks;
    r->lesions = p.lesions;
    rn_walk wk;
    rn_walk_init(ctx, &wk, input, 1, h, w, r->embed, r->logits);
    int k = 0;
    for (int i = 0; i < m->n_ops; i++) {
        const rn_op *op = &m->ops[i];
        const rn_block *b = k < m->n_blocks ? &m->blocks[k] : NULL;
        rn_block_report *br = b ? &r->blocks[k] : NULL;
        if (b && i == b->first) {
            snprintf(br->name, sizeof br->name, "%s", b->name);
            memcpy(br->in_shape, wk.shape[b->in], sizeof br->in_shape);
            const float *x = wk.buf[b->in];
            size_t cnt = elems(ctx, wk.shape[b->in]);
            if (ctx->int8) { /* bytes: as floats first */
                dequantize(ctx, &wk, x, b->in, sc.t);
                x = sc.t;
                cnt = (size_t)wk.shape[b->in][0] * wk.shape[b->in][1] * wk.shape[b->in][2];
            }
            br->x_norm = sqrt(dot(x, x, cnt));
            br->lesion_top1 = -1;
        }
        if (op->kind == RN_OP_GAP) {
            const int *sh = wk.shape[op->in];
            r->map_c = sh[0];
            r->map_h = sh[1];
            r->map_w = sh[2];
            size_t hw = (size_t)sh[1] * sh[2];
            if (!(r->map = malloc((size_t)sh[0] * hw * sizeof(float)))) {
                rc = rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory for the final map");
                break;
            }
            if (ctx->int8)
                dequantize(ctx, &wk, wk.buf[op->in], op->in, r->map);
            else if (ctx->blocked)
                rn_unblock(&ctx->exec, wk.buf[op->in], 1, sh[0], (int)hw, r->map);
            else
                memcpy(r->map, wk.buf[op->in], (size_t)sh[0] * hw * sizeof(float));
        }
        if (b && i == b->add) {
            if (ctx->int8)
                measure_q(ctx, &wk, &sc, b, i, br);
            else
                measure(ctx, &wk, &sc, b, i, br);
            if (p.lesions)
                lesion(ctx, &wk, &sc, i, k, r, br);
            k++;
        } else {
            rn_walk_op(ctx, &wk, i);
        }
        r->forward_gflops += rn_op_flops(m, op, rn_op_writes_buffer(op) ? wk.shape[op->out]
                                                                     : wk.shape[0]) / 1e9;
    }
    for (k = 0; rc == RN_OK && p.lesions && k < m->n_blocks; k++)
        lesion_stats(m, &sc, k, r, &r->blocks[k]);
    if (rc == RN_OK && p.lesions) { /* the caller's now */
        r->lesion_logits = sc.logits;
        r->lesion_embed = sc.embed;
        sc.logits = sc.embed = NULL;
    }
    scratch_free(&sc);
    if (rc < 0) {
        rn_inspection_free(r);
        return rc;
    }
    memcpy(r->probs, r->logits, (size_t)nc * sizeof(float));
    rn_softmax(r->probs, nc);
    *out = r;
    return RN_OK;
}

int rn_inspection_cam(const rn_model *m, const rn_inspection *r, int cls, float *out)
{
    if (!m || !r || !out || !r->map || cls < 0 || cls >= m->info.n_classes ||
        r->map_c != m->info.embed_dim)
        return RN_ERR_INVALID_ARG;
    size_t hw = (size_t)r->map_h * r->map_w;
    for (size_t p = 0; p < hw; p++) {
        double s = 0;
        for (int c = 0; c < r->map_c; c++)
            s += (double)m->fc_wt[rn_fc_at(r->map_c, c, cls)] * r->map[c * hw + p];
        out[p] = (float)s;
    }
    return RN_OK;
}
