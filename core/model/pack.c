/* The model packed for the blocked engine: choose the kernel table, ask the
 * engine to pack each convolution of the plan (engine/pack.c), and keep only
 * what the packed engine still reads. */
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
        MOVE(c->b, c->out_c);
        c->w = NULL;
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

int rn_model_pack(rn_model *m, int precision, int isa, char *err, size_t errlen)
{
    if (m->packed)
        return RN_OK;
    int rc = rn_isa_choose(isa, &isa, err, errlen);
    if (rc < 0)
        return rc;
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
    }
    rn_free(m->packed);
    m->packed = NULL;
    m->kern = NULL;
}
