/* The model in memory: its layers as a plan of ops over named buffers, which
 * one executor (core/model/infer.c) walks. Builders (core/model/model.c for torchvision
 * and timm ResNet names, core/model/resnetv2.c for timm's pre-activation ResNet v2)
 * make plans; the executor does not know which one made it. */
#ifndef RN_MODEL_H
#define RN_MODEL_H

#include "engine/engine.h"

/* A batch norm that cannot be folded into a convolution (it comes before
 * one, as in v2 blocks), with its ReLU: y = max(0, x * scale + shift). */
typedef struct rn_bn {
    int c;
    float *scale; /* (c): weight / sqrt(running_var + eps) */
    float *shift; /* (c): bias - running_mean * scale */
    /* INT8 models: the scale of the u8 tensor it writes (from the file), and
     * docs/int8.md's A and B (16 * ceil(c/16), padding zero; rn_model_pack) */
    float out_scale;
    float *qa, *qb;
} rn_bn;

/* Buffers the ops read and write. RN_BUF_INPUT is the caller's NCHW image;
 * the others are the context's, planned by walking the plan (rn_plan_sizes).
 * Each has a bf16 twin for BF16 models (rn_op.write_b, RN_OP_TO_BF16). */
enum { RN_BUF_X, RN_BUF_D, RN_BUF_T1, RN_BUF_T2, RN_BUF_P, RN_BUF_Q, RN_BUF_COUNT, RN_BUF_INPUT = -1 };
/* RN_BUF_Q: INT8 models only, the stem's u8 NHWC4 image (engine.h), made
 * from the caller's input by the executor just before the stem runs. INT8
 * models keep bytes in the buffers: u8 or s8 NCHW16c with a border. */

enum rn_op_kind {
    RN_OP_CONV,     /* out = [relu](conv(in) + bias [+ out]) */
    RN_OP_BN_RELU,  /* out = relu(in * scale + shift) per channel */
    RN_OP_MAXPOOL,  /* 3x3, stride 2, padding 1 */
    RN_OP_AVGPOOL,  /* 2x2, stride 2, ceil mode, padding not counted (ResNet-D) */
    RN_OP_TO_BF16,  /* the bf16 twin of in, for the convolutions that read it (BF16 only) */
    RN_OP_GAP,      /* global average pool: the embedding (n, c) */
    RN_OP_FC,       /* the classifier on the embedding: logits (n, classes) */
    RN_OP_NORM_INPUT, /* out = in * scale + shift per channel, NCHW in and out: a batch
                         norm on the caller's input, which cannot be folded into the
                         zero-padded stem convolution after it (MXNet's bn_data) */
};

typedef struct rn_op {
    int kind;
    int in, out;     /* buffers; GAP writes the embedding, FC reads it */
    int conv;        /* index into rn_model.convs (RN_OP_CONV) */
    int bn;          /* index into rn_model.bns (RN_OP_BN_RELU, RN_OP_NORM_INPUT) */
    int bias;        /* conv: add rn_conv.b */
    int relu, accumulate; /* conv: ReLU on the way out; out holds a residual on entry */
    int write_b;     /* BF16 models: write only the bf16 twin of out (every reader is a
                        BF16 convolution); out then holds no usable values */
    /* INT8 models (rn_model_pack walks the plan): the scale, signedness
     * and zero point of the tensor op reads, of the one it writes, and
     * (accumulating convolutions) of the residual out held */
    float q_in_scale, q_out_scale;
    int q_in_s8, q_out_s8, q_res_s8;
    int q_in_zp, q_out_zp, q_res_zp;
} rn_op;

/* An output a caller may ask for by its PyTorch module name: the buffer
 * after op `after` ran (taps), or the embedding / logits. */
enum { RN_LAYER_BUF, RN_LAYER_EMBED, RN_LAYER_LOGITS };
typedef struct rn_layer {
    char name[48]; /* "layer3.5", "layer3", "stages.2.blocks.1", "maxpool", "fc", ... */
    int kind;      /* RN_LAYER_* */
    int after;     /* op index */
    int buf;
} rn_layer;

/* A residual block, y = [relu](s + F(x)): ops first .. add, where op add is
 * the convolution that accumulates the residual branch F onto the shortcut s
 * (the contents of its out buffer on entry), and op proj, if not -1, the
 * projection that wrote s; otherwise s is the block input x itself. x is
 * buffer `in` before op first. core/inspect/inspect.c measures and lesions blocks. */
typedef struct rn_block {
    char name[48]; /* the block's layer name: "layer3.4", "stages.2.blocks.1" */
    int first, add, proj;
    int in;
} rn_block;

struct rn_model {
    rn_model_info info;
    rn_conv *convs;     /* every convolution, in plan order; convs[0] reads the NCHW input */
    int n_convs, cap_convs;
    rn_bn *bns;
    int n_bns, cap_bns;
    rn_op *ops;
    int n_ops, cap_ops;
    rn_layer *layers;
    int n_layers, cap_layers;
    rn_block *blocks;
    int n_blocks, cap_blocks;
    /* The classifier's weight in the engine's layout (engine.h, rn_fc_at) */
    float *fc_wt;
    float *fc_b;        /* (n_classes) */
    float *arena;       /* every float above lives here */
    void *packed;       /* every rn_conv.wp, .wb and .wu lives here (rn_model_pack), or NULL */
    const struct rn_kernels *kern; /* the micro-kernels it runs on; NULL: im2col + BLAS,
                                      or INT8 */
    const struct rn_qkernels *qkern; /* INT8 models: their micro-kernels */
    float q_input_scale;             /* INT8 models: the image's scale (input_scale) */
    int q_input_zp;                  /* ... and zero point (input_zero_point, else 128) */
    char **labels;      /* n_classes names, or NULL */
    /* The PyTorch module names the file gave: convs[i] is conv_names[i]
     * ("layer1.0.conv1"), bns[i] bn_names[i]; the classifier's two tensors */
    char **conv_names, **bn_names;
    char *fc_names[2];
    char **meta_keys;   /* n_meta, NULL-terminated */
    char **meta_values;
    int n_meta;
    rn_preprocess pp;
};

/* Append an op, a layer name (for the output of the last op appended), a
 * convolution or a batch norm; RN_ERR_NOMEM, or the new index. */
int rn_plan_op(rn_model *m, const rn_op *op);
int rn_plan_layer(rn_model *m, int kind, int buf, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int rn_plan_conv(rn_model *m);
/* The ops from first to the last one appended are a residual block reading
 * buffer in (see rn_block); RN_ERR_INTERNAL if they do not end in an
 * accumulating convolution onto the input or onto a projection of it. */
int rn_plan_block(rn_model *m, int first, int in, const char *name);
int rn_plan_bn(rn_model *m);

/* The shape (c, h, w) of every buffer and output as the plan runs on an
 * h x w input, walked once. sizes[b]: the largest floats per image any op
 * writes to buffer b (channels rounded up to 16, for NCHW16c); col: scratch
 * floats per thread (im2col, Winograd) on kernels k (NULL: BLAS path);
 * shapes: if not NULL, (c, h, w) of each op's output, 3 ints per op. */
void rn_plan_sizes(const rn_model *m, const struct rn_kernels *k, int h, int w,
                   size_t sizes[RN_BUF_COUNT], size_t *col, int *shapes);

/* The output shape (c, h, w) of op given its input's, and whether op writes
 * its out buffer (GAP, FC and TO_BF16 do not: the embedding, the logits, the
 * bf16 twin). */
void rn_op_shape(const rn_model *m, const rn_op *op, const int in[3], int out[3]);
int rn_op_writes_buffer(const rn_op *op);
/* Multiply-adds x2 of op, given its output's shape (convolutions and the
 * classifier; the other ops count 0). */
double rn_op_flops(const rn_model *m, const rn_op *op, const int out[3]);

/* rn_model_load on a tensor source already open (core/model/model.c); f
 * stays the caller's. */
struct st_file;
int rn_model_from_file(struct st_file *f, const rn_model_params *params, rn_model **out, char *err,
                       size_t errlen);

/* Choose the micro-kernels (isa: enum rn_isa, see rn_isa_choose) and pack
 * every convolution's weights for the blocked engine (core/model/pack.c,
 * each convolution by rn_conv_pack, core/engine/pack.c); for
 * RN_ISA_BLAS, or grouped convolutions (logged), leave the model as it is.
 * Sets m->kern and m->info.isa. With precision RN_PRECISION_BF16 and
 * kernels that have bf16 tiles this CPU runs, the convolutions on NCHW16c
 * input get bf16 weights (wb); otherwise a log line and FP32. Call once at
 * the end of loading. A packed model keeps no unpacked weights: every
 * rn_conv.w is NULL, and the arena holds only biases, batch norms and the
 * classifier. rn_model_unpack (accepts a model never packed) frees the
 * packing, for rn_model_free. RN_ERR_NOMEM on failure, with nothing packed;
 * RN_ERR_UNSUPPORTED or RN_ERR_INVALID_ARG for an isa this CPU cannot run
 * or that does not exist. */
int rn_model_pack(rn_model *m, int precision, int isa, char *err, size_t errlen);
void rn_model_unpack(rn_model *m);

#endif
