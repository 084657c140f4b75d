/* The model in memory: a plan of folded convolutions that the engine walks. */
#ifndef RN_MODEL_H
#define RN_MODEL_H

#include "rn_internal.h"

/* A convolution with its batch norm folded in: y = w * x + b. */
typedef struct rn_conv {
    int in_c, out_c, kh, kw, stride, pad, groups;
    float *w; /* (out_c, in_c/groups * kh * kw) */
    float *b; /* (out_c) */
} rn_conv;

/* One residual block. Basic: c1 3x3, c2 3x3. Bottleneck: c1 1x1, c2 3x3
 * (grouped for ResNeXt), c3 1x1. The last convolution's bias and the
 * projection's bias are summed into out_bias, which is added once after the
 * residual, right before the final ReLU. */
typedef struct rn_block {
    int kind;           /* enum rn_block_kind */
    rn_conv c1, c2, c3; /* c3 unused by basic blocks */
    rn_conv ds;         /* 1x1 projection shortcut; ds.w == NULL: identity */
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
    char **labels;      /* n_classes names, or NULL */
    char **meta_keys;   /* n_meta, NULL-terminated */
    char **meta_values;
    int n_meta;
    rn_preprocess pp;
};

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
