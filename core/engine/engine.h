/* The engine: what it computes, in its own words. It is given a convolution
 * (rn_conv: shape, weights, bias, and the packed forms it makes of them), a
 * pooling, a per-channel affine, a classifier, and runs them on the thread
 * pool, on im2col + BLAS (conv.c) or on the blocked NCHW16c driver
 * (blocked.c) with the micro-kernels chosen for this CPU (kernels.h, cpu.c).
 * It knows no model, plan or file format: core/model/ builds plans out of
 * these pieces. May use: core/rn_internal.h. */
#ifndef RN_ENGINE_H
#define RN_ENGINE_H

#include "rn_internal.h"
#include "threads.h"

struct rn_kernels;
struct rn_qkernels;

/* A convolution with the batch norm that follows it folded in: y = w * x + b
 * (b is zero where no batch norm follows, as in v2 blocks). */
typedef struct rn_conv {
    int in_c, out_c, kh, kw, stride, pad, groups;
    float *w; /* (out_c, in_c/groups * kh * kw) */
    float *b; /* (out_c) */
    /* Set by rn_conv_pack (core/engine/pack.c) for the blocked engine, else NULL:
     * (ceil(out_c/16), ceil(in_c/wp_icb), kh, kw, wp_icb in, 16 out),
     * zero-padded; wp_icb is 16 (NCHW16c input) or 1 (NCHW input: the stem).
     * Grouped convolutions (ResNeXt) pack each group of blocks apart: groups
     * are merged until a merged group spans whole blocks of 16 on both sides
     * (groups of 4 channels: 4 at a time), and output block ob reads only the
     * wp_ibg input blocks of its merged group, which holds wp_obg output
     * blocks; the weights between different groups of a merged group are
     * zero. Without groups wp_ibg is every input block and wp_obg every
     * output block. Every packed layout below replaces ceil(in_c/16) by
     * wp_ibg in the same way. */
    float *wp;
    int wp_icb, wp_ibg, wp_obg;
    /* RN_PRECISION_BF16 models, instead of wp for convolutions on NCHW16c input:
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
    /* INT8 models (docs/int8.md), else NULL and 0. Set by the model before
     * packing: the file's int8 weights (out_c, in_c/groups * kh * kw), their
     * per-channel scales and int32 bias (out_c); the scales of the tensor it
     * reads (the image's, for the stem), of the tensor it writes, and of the
     * residual it adds (0: none); the zero points of the image (the stem's
     * in_zp, u8) and of an s8 output (out_zp; a ReLU's u8 output has 0). */
    const int8_t *qw;
    const float *qscale;
    const int32_t *qbias;
    float in_scale, out_scale, res_scale;
    int in_zp, out_zp;
    /* Set by rn_qconv_pack: weights for 4-channel dot products,
     * (ceil(out_c/16), wp_ibg, kh, kw, cpix/4, 16 out, 4 in), cpix 16 bytes
     * per pixel of a block, or 4 for the stem's NHWC4 image (q_stem); for
     * an INT8 table with w16 (AVX2), the last two (16 out, 4 in) are instead
     * 4 x 16 int16: (8 out, inputs 0 and 2) and (8 out, inputs 1 and 3) of
     * channels 0-7, then the same of channels 8-15 (q_w16 says which); the
     * bias with the stem's zero-point compensation, and the multipliers M,
     * both (16 * ceil(out_c/16)), padding zero; the residual's R. */
    int8_t *wq;
    int32_t *bq;
    float *mq;
    float rq;
    int q_stem, q_w16;
    /* Set by rn_qconv_pack for an INT8 table with Winograd tiles
     * (rn_qkernels.wino) and a convolution rn_qconv_wino_ok accepts, else
     * NULL: U' = (2G) g (2G)^T = 4 G g G^T of F(2x2, 3x3), exact integers,
     * as int16 (16 positions, ceil(out_c/16), ceil(in_c/16), 8 input pairs,
     * 2 halves of 8 out, 2 in): per position a 1x1 convolution's weights in
     * VPMADDWD's operand order (core/engine/kern_int8_avx2.c). */
    int16_t *qwu;
} rn_conv;

/* The classifier's weight in blocks of 16 classes, the layout rn_linear
 * reads: (ceil(n_classes / 16), embed_dim, 16), the padding classes zero;
 * its floats, and the index of input k, class o in it. Each block is one
 * contiguous run, which the prefetcher follows. */
static inline size_t rn_fc_floats(int n_classes, int embed_dim)
{
    return (size_t)(n_classes + 15) / 16 * 16 * embed_dim;
}
static inline size_t rn_fc_at(int embed_dim, int k, int o)
{
    return ((size_t)(o / 16) * embed_dim + k) * 16 + o % 16;
}

/* Output size of a convolution or pooling window along one axis. */
static inline int rn_out_dim(int in, int k, int stride, int pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

/* The same for ceil-mode 2x2 stride-2 average pooling without padding. */
static inline int rn_avgpool_dim(int in)
{
    return (in + 1) / 2;
}

/* What a layer may use: the thread pool, each thread's scratch, for im2col
 * (BLAS path) or the Winograd transforms (blocked engine), and the blocked
 * engine's micro-kernels (core/engine/kernels.h). */
typedef struct rn_exec {
    rn_pool *pool;
    const struct rn_kernels *k; /* NULL on the BLAS path */
    const struct rn_qkernels *qk; /* INT8 models: the INT8 tiles (kernels.h) */
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
void rn_conv_forward(const rn_exec *ex, const rn_conv_args *a);

/* 3x3, stride 2, padding 1 max pooling of (n, c, h, w). */
void rn_maxpool3x3s2(const rn_exec *ex, const float *in, int n, int c, int h, int w, float *out);

/* out (n, c) = mean over h*w of in (n, c, h, w). */
void rn_global_avgpool(const rn_exec *ex, const float *in, int n, int c, int hw, float *out);

/* out (n, classes) = in (n, e) * wt + b, wt in rn_model.fc_wt's layout
 * (blocks of 16 classes: rn_fc_at). */
void rn_linear(const rn_exec *ex, const float *in, int n, int e, const float *wt, const float *b,
               int classes, float *out);

/* ---- the blocked engine: activations in NCHW16c ----
 * (n, ceil(c/16), h, w, 16): element (i, ch, y, x) at
 * (((i * ceil(c/16) + ch/16) * h + y) * w + x) * 16 + ch % 16; the padding
 * channels of the last block are zero. Used from the stem's output on when the
 * convolutions are packed (rn_conv_pack, core/engine/pack.c). */

static inline int rn_cblocks(int c)
{
    return (c + 15) / 16;
}

/* How rn_conv_pack (core/engine/pack.c) packs a convolution for the blocked engine:
 * direct FP32 weights (wp) for NCHW16c input, or for the stem's NCHW input,
 * bf16 weights (wb), or Winograd weights: F(2x2, 3x3) FP32 (wu) or bf16
 * (wub), F(4x4, 3x3) FP32 (wu, for up to 256 channels). */
enum { RN_PACK_F32, RN_PACK_NCHW, RN_PACK_BF16, RN_PACK_WINO, RN_PACK_WINO_BF16, RN_PACK_WINO4 };
int rn_conv_pack_kind(const rn_conv *c, int nchw_input, int bf16);
size_t rn_conv_packed_bytes(const rn_conv *c, int kind);
/* Pack c->w into dst (rn_conv_packed_bytes, 64-byte aligned) and point c->wp,
 * c->wb, c->wu or c->wub at it. */
void rn_conv_pack(rn_conv *c, int kind, void *dst);

/* rn_conv_forward with a->c packed, on the micro-kernels ex->k (core/engine/blocked.c):
 * NCHW16c out (or a->out_b); NCHW16c in, NCHW for a->c->wp_icb == 1 (the
 * stem), or a->in_b for bf16 weights (a->c->wb, tables with bf16 tiles).
 * Parallel over images, output-channel blocks and rows, or Winograd chunks. */
void rn_conv_blocked_forward(const rn_exec *ex, const rn_conv_args *a);

/* Scratch floats per thread of a convolution with Winograd weights (wu, wub)
 * on the micro-kernels k. */
size_t rn_conv_wino_floats(const struct rn_kernels *k, const rn_conv *c);

/* out[i] = bf16(in[i]) for NCHW16c activations of n floats (n % 16 == 0);
 * ex->k has bf16 kernels. */
void rn_blocked_to_bf16(const rn_exec *ex, const float *in, size_t n, uint16_t *out);

/* out = max(0, in * scale[ch] + shift[ch]) of (n, c, h, w), NCHW16c if
 * blocked (padding channels stay zero), else NCHW. */
void rn_bn_relu(const rn_exec *ex, const float *in, int n, int c, int h, int w, const float *scale,
                const float *shift, int blocked, float *out);

/* out = in * scale + shift per channel of (n, c, h, w) NCHW (no ReLU). */
void rn_channel_affine(const rn_exec *ex, const float *in, int n, int c, int h, int w,
                       const float *scale, const float *shift, float *out);

/* 2x2, stride 2, ceil-mode average pooling without padding (ResNet-D's
 * shortcut): each output the mean of the input pixels its window holds. */
void rn_avgpool2x2(const rn_exec *ex, const float *in, int n, int c, int h, int w, int blocked,
                   float *out);

/* out (n, c, hw) NCHW = in (n, ceil(c/16), hw, 16) NCHW16c. */
void rn_unblock(const rn_exec *ex, const float *in, int n, int c, int hw, float *out);

/* rn_maxpool3x3s2 on NCHW16c. */
void rn_maxpool3x3s2_blocked(const rn_exec *ex, const float *in, int n, int c, int h, int w,
                             float *out);

/* rn_global_avgpool of NCHW16c in; out (n, c). */
void rn_global_avgpool_blocked(const rn_exec *ex, const float *in, int n, int c, int hw,
                               float *out);

/* ---- INT8 (docs/int8.md) ----
 * Activations are u8 with zero point 0 (after a ReLU: what convolutions
 * read) or s8 with a zero point of their own, in NCHW16c with a border of
 * RN_QB zero pixels around every image's plane of each block:
 * (n, ceil(c/16), h + 2*RN_QB, w + 2*RN_QB, 16) bytes. The border is the
 * convolutions' zero padding, so their tiles never meet an edge; each op
 * that writes a tensor writes its border too (only convolutions read it).
 * The image the stem reads is u8 with its zero point z (128 in files of
 * our own), NHWC4 (3 channels and one of z), its border of the stem's
 * padding filled with z: (n, h + 2*pad, w + 2*pad, 4). */
#define RN_QB 1

/* Bytes of one image's plane of one block of 16 channels. */
static inline size_t rn_qplane(int h, int w)
{
    return (size_t)(h + 2 * RN_QB) * (w + 2 * RN_QB) * 16;
}
/* Bytes of n images of c channels. */
static inline size_t rn_qbytes(int n, int c, int h, int w)
{
    return (size_t)n * rn_cblocks(c) * rn_qplane(h, w);
}
/* Bytes of n stem images (NHWC4, padded by pad). */
static inline size_t rn_qimage_bytes(int n, int h, int w, int pad)
{
    return (size_t)n * (h + 2 * pad) * (w + 2 * pad) * 4;
}

/* 1 if the engine runs c in INT8: its padding fits the border (the stem's
 * is any), strides 1 or 2. */
int rn_qconv_ok(const rn_conv *c, int stem);
/* Bytes rn_qconv_pack writes for c, and packing: from c->qw, c->qscale,
 * c->qbias and the scales, into dst (64-byte aligned), in the layouts the
 * INT8 table qk reads (core/engine/kernels.h: int8, or int16 for w16; and
 * the Winograd weights c->qwu where qk has Winograd tiles and
 * rn_qconv_wino_ok(c, stem)). stem: c reads the NHWC4 image. */
size_t rn_qconv_packed_bytes(const rn_conv *c, int stem, const struct rn_qkernels *qk);
void rn_qconv_pack(rn_conv *c, int stem, const struct rn_qkernels *qk, void *dst);

/* 1: c can run as an exact integer Winograd F(2x2, 3x3) (docs/int8.md):
 * 3x3, stride 1, padding 1, one group, and few enough input channels that
 * four times any output's sum fits int32. */
int rn_qconv_wino_ok(const rn_conv *c, int stem);

/* Scratch bytes per thread rn_qconv_forward needs for c (packed) on an
 * ih x iw input: 0 but for a Winograd convolution. */
size_t rn_qconv_scratch_bytes(const rn_conv *c, int ih, int iw);

typedef struct rn_qconv_args {
    const rn_conv *c;   /* packed by rn_qconv_pack */
    const uint8_t *in;  /* n images of ih x iw: the NHWC4 image (c->q_stem) or u8 NCHW16c */
    int n, ih, iw;
    void *out;          /* u8 (relu) or s8 NCHW16c */
    const void *res;    /* the residual, s8 or u8 NCHW16c of out's shape, or NULL; may be out */
    int res_s8, res_zp; /* its type and zero point */
    int relu;           /* u8 out (zero point 0), else s8 with zero point c->out_zp */
} rn_qconv_args;

/* out = requantized(conv(in) + bias [+ res * R]) as docs/int8.md defines it,
 * on the INT8 micro-kernels ex->qk, parallel over images, output-block groups and
 * rows. Bit for bit the same on every table and batch. */
void rn_qconv_forward(const rn_exec *ex, const rn_qconv_args *a);

/* The NCHW float image (n, c, h, w), c <= 4, as the stem's u8 NHWC4 image
 * padded by pad: z + rint(clamp(x * q, -z, 255 - z)), q = 1 / the image's
 * scale, z its zero point; the border and the channels past c z. */
void rn_q_image(const rn_exec *ex, const float *in, int n, int c, int h, int w, float q, int z,
                int pad, uint8_t *out);
/* Max pool 3x3, stride 2, padding 1 of u8 or s8 (is_s8) tensors. */
void rn_q_maxpool3x3s2(const rn_exec *ex, const void *in, int n, int c, int h, int w, int is_s8,
                       void *out);
/* Average pool 2x2, stride 2, ceil mode (ResNet-D): rint(sum / count). */
void rn_q_avgpool2x2(const rn_exec *ex, const void *in, int n, int c, int h, int w, int is_s8,
                     void *out);
/* out (u8) = rint(clamp((in - zp) * a[c] + b[c], 0, 255)) per channel; a
 * and b (16 * ceil(c/16)), padding zero; zp: in's zero point. */
void rn_q_bn_relu(const rn_exec *ex, const void *in, int n, int c, int h, int w, int is_s8, int zp,
                  const float *a, const float *b, uint8_t *out);
/* out (n, c) = f32(sum of (in - zp)) * (scale / hw) per channel: the global
 * average pool. */
void rn_q_global_avgpool(const rn_exec *ex, const void *in, int n, int c, int h, int w,
                         int is_s8, int zp, float scale, float *out);
/* out (n, c, h, w) NCHW floats = (in - zp) * scale. */
void rn_q_dequantize(const rn_exec *ex, const void *in, int n, int c, int h, int w, int is_s8,
                     int zp, float scale, float *out);

#endif
