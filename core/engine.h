/* The layer functions the forward pass is made of (conv.c, pool.c). */
#ifndef RN_ENGINE_H
#define RN_ENGINE_H

#include "model.h"
#include "threads.h"

struct rn_kernels;

/* What a layer may use: the thread pool, each thread's scratch, for im2col
 * (BLAS path) or the Winograd transforms (blocked engine), and the blocked
 * engine's micro-kernels (core/kernels.h). */
typedef struct rn_exec {
    rn_pool *pool;
    const struct rn_kernels *k; /* NULL on the BLAS path */
    float *col;        /* n_threads * col_stride floats */
    size_t col_stride; /* floats per thread, a multiple of 16 (64-byte aligned parts) */
} rn_exec;

typedef struct rn_conv_args {
    const rn_conv *c;
    const float *in; /* (n, in_c, ih, iw) */
    int n, ih, iw;
    float *out;      /* (n, out_c, oh, ow) */
    const float *bias; /* (out_c) added after the product, or NULL */
    int relu;
    int accumulate;  /* out += conv(in): out holds the residual on entry */
    /* Blocked engine only. in_b: the NCHW16c bf16 copy of in that a BF16
     * convolution (c->wb) reads. out_b: if set, the result goes there as bf16
     * instead (out then only holds partial sums). */
    const uint16_t *in_b;
    uint16_t *out_b;
} rn_conv_args;

/* im2col floats one thread needs for c on an ih x iw input (0 for 1x1/1). */
size_t rn_conv_col_floats(const rn_conv *c, int ih, int iw);

/* out = [relu](conv(in) + bias [+ out]), parallel over images, groups,
 * column chunks and (when that is not enough work) output-channel chunks. */
void rn_conv_forward(const rn_exec *x, const rn_conv_args *a);

/* 3x3, stride 2, padding 1 max pooling of (n, c, h, w). */
void rn_maxpool3x3s2(const rn_exec *x, const float *in, int n, int c, int h, int w, float *out);

/* out (n, c) = mean over h*w of in (n, c, h, w). */
void rn_global_avgpool(const rn_exec *x, const float *in, int n, int c, int hw, float *out);

/* out (n, classes) = in (n, e) * wt + b, wt in rn_model.fc_wt's layout
 * (blocks of 16 classes: rn_fc_at). */
void rn_linear(const rn_exec *x, const float *in, int n, int e, const float *wt, const float *b,
               int classes, float *out);

/* ---- the blocked engine: activations in NCHW16c ----
 * (n, ceil(c/16), h, w, 16): element (i, ch, y, x) at
 * (((i * ceil(c/16) + ch/16) * h + y) * w + x) * 16 + ch % 16; the padding
 * channels of the last block are zero. Used from the stem's output on when the
 * model is packed (rn_model_pack, core/pack.c). */

static inline int rn_cblocks(int c)
{
    return (c + 15) / 16;
}

/* How rn_model_pack (core/pack.c) packs a convolution for the blocked engine:
 * direct FP32 weights (wp) for NCHW16c input, or for the stem's NCHW input,
 * bf16 weights (wb), or Winograd weights: F(2x2, 3x3) FP32 (wu) or bf16
 * (wub), F(4x4, 3x3) FP32 (wu, for up to 256 channels). */
enum { RN_PACK_F32, RN_PACK_NCHW, RN_PACK_BF16, RN_PACK_WINO, RN_PACK_WINO_BF16, RN_PACK_WINO4 };
int rn_conv_pack_kind(const rn_conv *c, int nchw_input, int bf16);
size_t rn_conv_packed_bytes(const rn_conv *c, int kind);
/* Pack c->w into dst (rn_conv_packed_bytes, 64-byte aligned) and point c->wp,
 * c->wb, c->wu or c->wub at it. */
void rn_conv_pack(rn_conv *c, int kind, void *dst);

/* rn_conv_forward with a->c packed, on the micro-kernels x->k (core/blocked.c):
 * NCHW16c out (or a->out_b); NCHW16c in, NCHW for a->c->wp_icb == 1 (the
 * stem), or a->in_b for bf16 weights (a->c->wb, tables with bf16 tiles).
 * Parallel over images, output-channel blocks and rows, or Winograd chunks. */
void rn_conv_blocked_forward(const rn_exec *x, const rn_conv_args *a);

/* Scratch floats per thread of a convolution with Winograd weights (wu, wub)
 * on the micro-kernels k. */
size_t rn_conv_wino_floats(const struct rn_kernels *k, const rn_conv *c);

/* out[i] = bf16(in[i]) for NCHW16c activations of n floats (n % 16 == 0);
 * x->k has bf16 kernels. */
void rn_blocked_to_bf16(const rn_exec *x, const float *in, size_t n, uint16_t *out);

/* out = max(0, in * scale[ch] + shift[ch]) of (n, c, h, w), NCHW16c if
 * blocked (padding channels stay zero), else NCHW. */
void rn_bn_relu(const rn_exec *x, const float *in, int n, int c, int h, int w, const float *scale,
                const float *shift, int blocked, float *out);

/* out = in * scale + shift per channel of (n, c, h, w) NCHW (no ReLU). */
void rn_channel_affine(const rn_exec *x, const float *in, int n, int c, int h, int w,
                       const float *scale, const float *shift, float *out);

/* 2x2, stride 2, ceil-mode average pooling without padding (ResNet-D's
 * shortcut): each output the mean of the input pixels its window holds. */
void rn_avgpool2x2(const rn_exec *x, const float *in, int n, int c, int h, int w, int blocked,
                   float *out);

/* out (n, c, hw) NCHW = in (n, ceil(c/16), hw, 16) NCHW16c. */
void rn_unblock(const rn_exec *x, const float *in, int n, int c, int hw, float *out);

/* rn_maxpool3x3s2 on NCHW16c. */
void rn_maxpool3x3s2_blocked(const rn_exec *x, const float *in, int n, int c, int h, int w,
                             float *out);

/* rn_global_avgpool of NCHW16c in; out (n, c). */
void rn_global_avgpool_blocked(const rn_exec *x, const float *in, int n, int c, int hw,
                               float *out);

#endif
