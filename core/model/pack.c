/* The model packed for the blocked engine: choose the kernel table, ask the
 * engine to pack each convolution of the plan (engine/pack.c), and keep only
 * what the packed engine still reads. INT8 models get their scales walked
 * through the plan and their convolutions packed for the INT8 tiles. */
#include <math.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/kernels.h"
#include "model.h"

/* 1 if convolution c reads an NCHW image: the caller's, or the caller's after
 * an input batch norm (RN_OP_NORM_INPUT), as the first of the stem does. */
static int reads_input(const rn_model *m, int c)
{
    int nchw[RN_BUF_COUNT] = {0};
    for (int i = 0; i < m->n_ops; i++) {
        const rn_op *op = &m->ops[i];
        if (op->kind == RN_OP_CONV && op->conv == c && (op->in == RN_BUF_INPUT || (op->in >= 0 && nchw[op->in])))
            return 1;
        if (rn_op_writes_buffer(op))
            nchw[op->out] = op->kind == RN_OP_NORM_INPUT;
    }
    return 0;
}

/* Once packed, the engine reads no unpacked weights (rn_conv.w): move what it
 * still reads (biases, batch norms, the classifier) into a small arena and
 * free the big one, which for ResNet-50 is 100 MB of resident memory. */
static int shrink_arena(rn_model *m, char *err, size_t errlen)
{
#define ROUND16(v) (((size_t)(v) + 15) & ~(size_t)15) /* 64-byte aligned pieces */
    int nc = m->info.n_classes, e = m->info.embed_dim;
    size_t floats = ROUND16(nc) + ROUND16(rn_fc_floats(nc, e));
    for (int i = 0; i < m->n_convs; i++)
        floats += ROUND16(m->convs[i].out_c);
    for (int i = 0; i < m->n_bns; i++)
        floats += 2 * ROUND16(m->bns[i].c);
    float *arena = rn_alloc(floats * sizeof(float)), *p = arena;
    if (!arena)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
#define MOVE(ptr, count)                                       \
    do {                                                       \
        memcpy(p, (ptr), (size_t)(count) * sizeof(float));     \
        (ptr) = p;                                             \
        p += ROUND16(count);                                   \
    } while (0)
    for (int i = 0; i < m->n_convs; i++) {
        rn_conv *c = &m->convs[i];
        if (c->b)
            MOVE(c->b, c->out_c);
        c->w = NULL;
        c->qw = NULL; /* INT8: packed, with the scales folded into M and the bias */
        c->qscale = NULL;
        c->qbias = NULL;
    }
    for (int i = 0; i < m->n_bns; i++) {
        MOVE(m->bns[i].scale, m->bns[i].c);
        MOVE(m->bns[i].shift, m->bns[i].c);
    }
    MOVE(m->fc_b, nc);
    MOVE(m->fc_wt, rn_fc_floats(nc, e));
#undef MOVE
#undef ROUND16
    rn_free(m->arena);
    m->arena = arena;
    return RN_OK;
}

/* ---- INT8 (docs/int8.md) ----
 * The plan is walked once to give every tensor its scale and signedness:
 * the image's from the file, each convolution's and unfolded batch norm's
 * output from the file, pooling keeping its input's. From them each
 * convolution gets its input and residual scales (M and R when packed),
 * and each batch norm its A and B. */

static int walk_scales(rn_model *m, char *err, size_t errlen)
{
    float scale[RN_BUF_COUNT] = {0};
    int s8[RN_BUF_COUNT] = {0}, zp[RN_BUF_COUNT] = {0}, image[RN_BUF_COUNT] = {0};
    for (int i = 0; i < m->n_ops; i++) {
        rn_op *op = &m->ops[i];
        int in = op->in, is_image = in == RN_BUF_INPUT || (in >= 0 && image[in]);
        op->q_in_scale = in >= 0 ? scale[in] : 0.0f;
        op->q_in_s8 = in >= 0 ? s8[in] : 0;
        op->q_in_zp = in >= 0 ? zp[in] : 0;
        int quantized_in = in >= 0 && scale[in] > 0;
        float out_scale = 0.0f;
        int out_s8 = 0, out_zp = 0;
        switch (op->kind) {
        case RN_OP_CONV: {
            rn_conv *c = &m->convs[op->conv];
            if (!quantized_in && !is_image)
                return rn_errf(err, errlen, RN_ERR_INTERNAL, "INT8 plan: convolution %d reads no tensor", op->conv);
            c->in_scale = is_image ? m->q_input_scale : scale[in];
            c->in_zp = is_image ? m->q_input_zp : 0;
            if (!is_image && (s8[in] || zp[in]))
                return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                               "INT8: convolution %s reads a tensor that no ReLU wrote (s8 or a zero point)",
                               m->conv_names ? m->conv_names[op->conv] : "");
            c->res_scale = 0.0f;
            if (op->accumulate) {
                if (!(scale[op->out] > 0))
                    return rn_errf(err, errlen, RN_ERR_INTERNAL, "INT8 plan: convolution %d adds no residual",
                                   op->conv);
                c->res_scale = scale[op->out];
                op->q_res_s8 = s8[op->out];
                op->q_res_zp = zp[op->out];
            }
            if (!rn_qconv_ok(c, is_image))
                return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                               "INT8: a %dx%d stride-%d convolution of %d to %d channels in %d groups%s "
                               "has no INT8 kernel",
                               c->kh, c->kw, c->stride, c->in_c, c->out_c, c->groups,
                               is_image ? " on the image" : "");
            out_scale = c->out_scale;
            out_s8 = !op->relu;
            out_zp = op->relu ? 0 : c->out_zp;
            if (op->relu && c->out_zp)
                return rn_errf(err, errlen, RN_ERR_FORMAT,
                               "%s.output_zero_point: %d, but a ReLU follows: its u8 output has zero point 0",
                               m->conv_names ? m->conv_names[op->conv] : "a convolution", c->out_zp);
            break;
        }
        case RN_OP_BN_RELU:
            if (!quantized_in)
                return rn_errf(err, errlen, RN_ERR_UNSUPPORTED, "INT8: a batch norm on the image");
            out_scale = m->bns[op->bn].out_scale;
            break;
        case RN_OP_MAXPOOL:
        case RN_OP_AVGPOOL:
            if (!quantized_in)
                return rn_errf(err, errlen, RN_ERR_UNSUPPORTED, "INT8: pooling the image");
            out_scale = scale[in];
            out_s8 = s8[in];
            out_zp = zp[in];
            break;
        case RN_OP_GAP:
            if (!quantized_in)
                return rn_errf(err, errlen, RN_ERR_INTERNAL, "INT8 plan: the global pool reads no tensor");
            break;
        default: /* NORM_INPUT: a float image; TO_BF16: nothing; FC: floats */
            break;
        }
        op->q_out_scale = out_scale;
        op->q_out_s8 = out_s8;
        op->q_out_zp = out_zp;
        if (rn_op_writes_buffer(op)) {
            scale[op->out] = out_scale;
            s8[op->out] = out_s8;
            zp[op->out] = out_zp;
            image[op->out] = op->kind == RN_OP_NORM_INPUT;
        }
    }
    return RN_OK;
}

static int pack_int8(rn_model *m, int isa, char *err, size_t errlen)
{
    const rn_qkernels *qk = rn_qkernels_get(isa);
    if (!qk) {
        rn_log(RN_LOG_WARN, "no INT8 kernels for %s on this CPU: INT8 runs on plain C", rn_isa_name(isa));
        qk = rn_qkernels_get(RN_ISA_C);
    }
    int rc = walk_scales(m, err, errlen);
    if (rc < 0)
        return rc;
    size_t total = 0;
    for (int i = 0; i < m->n_convs; i++)
        total += rn_qconv_packed_bytes(&m->convs[i], reads_input(m, i), qk);
    for (int i = 0; i < m->n_bns; i++)
        total += 2 * (size_t)rn_cblocks(m->bns[i].c) * 16 * sizeof(float);
    if (!(m->packed = rn_alloc(total)))
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory packing weights (%zu MB)", total >> 20);
    char *p = m->packed;
    for (int i = 0; i < m->n_convs && rc == RN_OK; i++) {
        rn_conv *c = &m->convs[i];
        int stem = reads_input(m, i);
        rn_qconv_pack(c, stem, qk, p);
        p += rn_qconv_packed_bytes(c, stem, qk);
        /* finite scales can still make an infinite multiplier (a tiny output scale) */
        for (int o = 0; o < c->out_c && rc == RN_OK; o++)
            if (!isfinite(c->mq[o]) || !isfinite(c->rq))
                rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                             "%s: its scales make an infinite requantization multiplier (channel %d)",
                             m->conv_names ? m->conv_names[i] : "a convolution", o);
    }
    for (int i = 0; i < m->n_ops; i++) {
        const rn_op *op = &m->ops[i];
        if (op->kind != RN_OP_BN_RELU)
            continue;
        rn_bn *b = &m->bns[op->bn];
        size_t n = (size_t)rn_cblocks(b->c) * 16;
        b->qa = (float *)(void *)p;
        b->qb = b->qa + n;
        p += 2 * n * sizeof(float);
        memset(b->qa, 0, 2 * n * sizeof(float));
        for (int c = 0; c < b->c; c++) {
            b->qa[c] = op->q_in_scale * b->scale[c] / b->out_scale;
            b->qb[c] = b->shift[c] / b->out_scale;
            if (rc == RN_OK && !(isfinite(b->qa[c]) && isfinite(b->qb[c])))
                rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                             "%s: its scales make an infinite batch norm constant (channel %d)",
                             m->bn_names ? m->bn_names[op->bn] : "a batch norm", c);
        }
    }
    if (rc < 0) {
        rn_model_unpack(m);
        return rc;
    }
    if ((rc = shrink_arena(m, err, errlen)) < 0) {
        rn_model_unpack(m);
        return rc;
    }
    m->qkern = qk;
    m->info.isa = qk->isa;
    m->info.precision = RN_PRECISION_INT8;
    rn_log(RN_LOG_INFO, "kernels: %s, int8", qk->name);
    return RN_OK;
}

int rn_model_pack(rn_model *m, int precision, int isa, char *err, size_t errlen)
{
    if (m->packed)
        return RN_OK;
    int rc = rn_isa_choose(isa, &isa, err, errlen);
    if (rc < 0)
        return rc;
    if (precision == RN_PRECISION_INT8)
        return pack_int8(m, isa == RN_ISA_BLAS ? RN_ISA_C : isa, err, errlen);
    m->info.isa = RN_ISA_BLAS;
    m->info.precision = RN_PRECISION_FP32;
    int n = m->n_convs;
    for (int i = 0; i < n && isa != RN_ISA_BLAS; i++) {
        rn_conv *c = &m->convs[i];
        if (c->stride > 2 || (c->groups != 1 && reads_input(m, i))) {
            /* the tiles have strides 1 and 2, and the stem's NCHW tiles no groups */
            rn_log(RN_LOG_INFO, "a %s convolution: running on im2col + OpenBLAS, not %s%s",
                   c->stride > 2 ? "stride > 2" : "grouped stem", rn_isa_name(isa),
                   precision == RN_PRECISION_BF16 ? ", in FP32" : "");
            isa = RN_ISA_BLAS;
        }
    }
    if (isa == RN_ISA_BLAS) {
        if (precision == RN_PRECISION_BF16)
            rn_log(RN_LOG_WARN, "im2col + OpenBLAS: running in FP32");
        rn_log(RN_LOG_INFO, "kernels: blas (im2col + OpenBLAS)");
        return RN_OK;
    }
    const rn_kernels *k = rn_kernels_get(isa);
    int bf16 = precision == RN_PRECISION_BF16 && rn_isa_bf16(isa);
    if (precision == RN_PRECISION_BF16 && !bf16)
        rn_log(RN_LOG_WARN, "%s", isa == RN_ISA_AVX512 ? "this CPU has no avx512_bf16: running in FP32"
                                 : "no bf16 kernels for this ISA: running in FP32");
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += rn_conv_packed_bytes(&m->convs[i], rn_conv_pack_kind(&m->convs[i], reads_input(m, i), bf16));
    if (!(m->packed = rn_alloc(total)))
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory packing weights (%zu MB)",
                       total >> 20);
    char *p = m->packed;
    for (int i = 0; i < n; i++) {
        rn_conv *c = &m->convs[i];
        int kind = rn_conv_pack_kind(c, reads_input(m, i), bf16);
        rn_conv_pack(c, kind, p);
        p += rn_conv_packed_bytes(c, kind);
    }
    rc = shrink_arena(m, err, errlen);
    if (rc < 0) {
        rn_model_unpack(m);
        return rc;
    }
    m->kern = k;
    m->info.isa = isa;
    rn_log(RN_LOG_INFO, "kernels: %s%s", k->name, bf16 ? ", bf16" : "");
    m->info.precision = bf16 ? RN_PRECISION_BF16 : RN_PRECISION_FP32;
    return RN_OK;
}

void rn_model_unpack(rn_model *m)
{
    if (!m || !m->packed)
        return;
    for (int i = 0; i < m->n_convs; i++) {
        rn_conv *c = &m->convs[i];
        c->wp = NULL;
        c->wb = NULL;
        c->wu = NULL;
        c->wub = NULL;
        c->wq = NULL;
        c->bq = NULL;
        c->mq = NULL;
    }
    for (int i = 0; i < m->n_bns; i++)
        m->bns[i].qa = m->bns[i].qb = NULL;
    rn_free(m->packed);
    m->packed = NULL;
    m->kern = NULL;
    m->qkern = NULL;
}
