/* The model in memory: a plan of folded convolutions that the engine walks. */
#ifndef RN_MODEL_H
#define RN_MODEL_H

#include "rn_internal.h"

/* A convolution with its batch norm folded in: y = w * x + b. */
typedef struct rn_conv {
    int in_c, out_c, kh, kw, stride, pad, groups;
    float *w; /* (out_c, in_c/groups * kh * kw) */
    float *b; /* (out_c) */
    /* Set by rn_model_pack for the blocked AVX-512 engine, else NULL:
     * (ceil(out_c/16), ceil(in_c/wp_icb), kh, kw, wp_icb in, 16 out),
     * zero-padded; wp_icb is 16 (NCHW16c input) or 1 (NCHW input: the stem). */
    float *wp;
    int wp_icb;
    /* RN_PRECISION_BF16 models, instead of wp for the block convolutions:
     * (ceil(out_c/16), ceil(in_c/16), kh, kw, 8 input pairs, 16 out, 2 in). */
    uint16_t *wb;
    /* FP32 3x3 stride-1 convolutions, instead of wp: Winograd F(m x m, 3x3)
     * weights U = G g G^T, one packed 1x1 convolution per position p of the
     * (m+2) x (m+2) transform: ((m+2)^2, ceil(out_c/16), ceil(in_c/16), 16 in,
     * 16 out); m is wu_m, 2 or 4. */
    float *wu;
    int wu_m;
    /* The same for BF16 models, as bf16 in wb's layout:
     * (16, ceil(out_c/16), ceil(in_c/16), 8 input pairs, 16 out, 2 in). */
    uint16_t *wub;
} rn_conv;

/* One residual block. Basic: c1 3x3, c2 3x3. Bottleneck: c1 1x1, c2 3x3
 * (grouped for ResNeXt), c3 1x1. The last convolution's bias and the
 * projection's bias are summed into out_bias, which is added once after the
 * residual, right before the final ReLU. */
typedef struct rn_block {
    int kind;           /* enum rn_block_kind */
    rn_conv c1, c2, c3; /* c3 unused by basic blocks */
    rn_conv ds;         /* 1x1 projection shortcut; ds.out_c == 0: identity */
    float *out_bias;    /* (out_c) */
} rn_block;

struct rn_model {
    rn_model_info info;
    rn_conv stem;       /* conv1 + bn1 + ReLU, then 3x3/2 max pool */
    rn_block *blocks;
    int n_blocks;
    float *fc_wt;       /* (embed_dim, n_classes): fc.weight transposed */
    float *fc_b;        /* (n_classes) */
    float *arena;       /* every float above lives here */
    void *packed;       /* every rn_conv.wp, .wb and .wu lives here (rn_model_pack), or NULL */
    const struct rn_kernels *kern; /* the micro-kernels it runs on; NULL: im2col + BLAS */
    char **labels;      /* n_classes names, or NULL */
    char **meta_keys;   /* n_meta, NULL-terminated */
    char **meta_values;
    int n_meta;
    rn_preprocess pp;
};

/* Choose the micro-kernels (isa: enum rn_isa, see rn_isa_choose) and pack
 * every convolution's weights for the blocked engine (core/pack.c); for
 * RN_ISA_BLAS, or grouped convolutions (logged), leave the model as it is.
 * Sets m->kern and m->info.isa. With precision RN_PRECISION_BF16 and
 * kernels that have bf16 tiles this CPU runs, the block convolutions get
 * bf16 weights (wb); otherwise a log line and FP32. Call once at the end of
 * loading. RN_ERR_UNSUPPORTED or RN_ERR_INVALID_ARG for an isa this CPU
 * cannot run or that does not exist. A packed model keeps no unpacked weights: every
 * rn_conv.w is NULL, and the arena holds only biases and the classifier.
 * rn_model_unpack (accepts a model never packed) frees the packing, for
 * rn_model_free. RN_ERR_NOMEM on failure, with nothing packed. */
int rn_model_pack(rn_model *m, int precision, int isa, char *err, size_t errlen);
void rn_model_unpack(rn_model *m);

/* 1 if the block has a projection shortcut (ds), 0 for identity. */
static inline int rn_block_has_ds(const rn_block *b)
{
    return b->ds.out_c > 0;
}

/* The last convolution of a block (the one that takes the residual). */
static inline const rn_conv *rn_block_last(const rn_block *b)
{
    return b->kind == RN_BLOCK_BOTTLENECK ? &b->c3 : &b->c2;
}

/* Output size of a convolution or pooling window along one axis. */
static inline int rn_out_dim(int in, int k, int stride, int pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

#endif
