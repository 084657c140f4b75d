/* NEON (AArch64 Advanced SIMD) micro-kernels of the blocked engine
 * (core/engine/kernels.h). FP32 only: no bf16 tiles (BFMMLA/BFDOT are optional
 * ARMv8.6 features this table does not use), so BF16 models run in FP32.
 *
 * One pixel's block of 16 channels is four q registers. Tile: R output
 * pixels of one row times NB blocks of 16 output channels, R x NB x 4
 * accumulators out of the 32 q registers:
 *   NB = 1, R = 6: 24 accumulators, the 4 weight vectors of one input channel
 *     and the broadcast input value (FMLA by element from an S register
 *     loaded per pixel): 24 FMAs per 4 + 6 loads;
 *   NB = 2, R = 3: 24 accumulators; per input channel the 3 pixels' values are
 *     loaded once (LD1R) and each block's 4 weight vectors in turn, so 24 + 3 +
 *     4 registers live; for rows of up to 5 pixels, where R = 6 would idle.
 * R, NB, the stride and the input block (16, or 1 for the stem's NCHW input)
 * are compile-time constants of each instance, so the accumulators stay in
 * registers and pixel offsets are immediates. Every width from 1 to RMAX is
 * an instance (6 + 3 per input kind and stride: small enough to build fast),
 * so no tile is split.
 *
 * Determinism: each accumulator is one pixel's 4 channels and gets its FMAs
 * in the order (input block, tap row, tap column, input channel) whatever R,
 * NB and the tile's position; the start value is bias + residual, as in
 * kern_avx512.c. No reassociation anywhere (-std=c11 does not contract the
 * few plain-C operations either).
 *
 * Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms: core/engine/wino_tmpl.h's,
 * shared with the AVX-512 and AVX2 tables, on the 4 q of a block in turn.
 *
 * Sizes for Neoverse N1/V1 and Ampere Altra class cores (64 KiB L1d, 1 MiB
 * L2 per core): 32 KiB of weights per pass (three input blocks of a 3x3,
 * leaving half of L1 for the input rows streaming past), Winograd slices of
 * 128 KiB.
 */
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))

/* The bias of output channels [ch, ch + 16): zero past out_c, and the array
 * is not read past its end. */
INLINE void load_bias(const float *bias, int ch, int out_c, float32x4_t b[4])
{
    int rem = out_c - ch;
    if (bias && rem >= 16) {
        for (int q = 0; q < 4; q++)
            b[q] = vld1q_f32(bias + ch + 4 * q);
    } else {
        float v[16] = {0};
        for (int k = 0; k < rem && bias; k++)
            v[k] = bias[ch + k];
        for (int q = 0; q < 4; q++)
            b[q] = vld1q_f32(v + 4 * q);
    }
}

/* acc += one tap's CB input channels of R pixels, S * CB floats apart from
 * ip, times the weights at wk (NB blocks, w_ob floats apart). */
INLINE void taps(float32x4_t acc[6][2][4], const float *ip, const float *wk, size_t w_ob, const int R,
                 const int NB, const int S, const int CB)
{
    if (NB == 1) {
#pragma GCC unroll 2
        for (int i = 0; i < CB; i++) {
            float32x4_t wv[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                wv[q] = vld1q_f32(wk + i * 16 + 4 * q);
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                float x = ip[r * S * CB + i];
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++)
                    acc[r][0][q] = vfmaq_n_f32(acc[r][0][q], wv[q], x);
            }
        }
        return;
    }
#pragma GCC unroll 2
    for (int i = 0; i < CB; i++) {
        float32x4_t x[6];
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            x[r] = vld1q_dup_f32(ip + r * S * CB + i);
#pragma GCC unroll 2
        for (int nb = 0; nb < NB; nb++) {
            float32x4_t wv[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                wv[q] = vld1q_f32(wk + nb * w_ob + i * 16 + 4 * q);
#pragma GCC unroll 6
            for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++)
                    acc[r][nb][q] = vfmaq_f32(acc[r][nb][q], wv[q], x[r]);
        }
    }
}

INLINE void tile(const rn_tile *t, const int R, const int NB, const int S, const int CB)
{
    float32x4_t acc[6][2][4];
#pragma GCC unroll 2
    for (int nb = 0; nb < NB; nb++) {
        float32x4_t b[4];
        load_bias(t->bias, t->ch0 + nb * 16, t->out_c, b);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                acc[r][nb][q] = t->accumulate
                                    ? vaddq_f32(b[q], vld1q_f32(t->out + nb * t->out_ob + r * 16 + 4 * q))
                                    : b[q];
    }
    const char *pf = t->pf;
    size_t pf_left = t->pf_len, pf_lines = rn_tile_pf_lines(t);
    if (CB == 16 && t->taps == 1) {
        /* 1x1 (and Winograd's products): input blocks and their channels,
         * with nothing else in the loop */
        const float *ip = (const float *)t->in + t->at, *wk = (const float *)t->w;
        for (int ib = 0; ib < t->ib_n; ib++, ip += t->in_ib, wk += 256) {
            for (size_t l = 0; l < pf_lines; l++)
                rn_tile_prefetch(&pf, &pf_left, t->pf_ob, NB);
            taps(acc, ip, wk, t->w_ob, R, NB, S, 16);
        }
    }
    for (int ib = 0; ib < t->ib_n && !(CB == 16 && t->taps == 1); ib++) {
        for (int ky = t->ky0; ky < t->ky1; ky++) {
            for (int kx = t->kx0; kx < t->kx1; kx++) {
                for (size_t l = 0; l < pf_lines; l++)
                    rn_tile_prefetch(&pf, &pf_left, t->pf_ob, NB);
                taps(acc, (const float *)t->in + ib * t->in_ib + t->at + ky * t->irow + kx * CB,
                     (const float *)t->w + ((size_t)ib * t->taps + ky * t->kw + kx) * CB * 16, t->w_ob,
                     R, NB, S, CB);
            }
        }
    }
    const float32x4_t zero = vdupq_n_f32(0.0f);
#pragma GCC unroll 2
    for (int nb = 0; nb < NB; nb++)
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                vst1q_f32(t->out + nb * t->out_ob + r * 16 + 4 * q,
                          t->relu ? vmaxq_f32(acc[r][nb][q], zero) : acc[r][nb][q]);
}

/* tile() with constant R, NB, stride and input block: one instance per width
 * from 1 to 6 (NB = 1) or 3 (NB = 2). */
#define TILE_FN1(name, S, CB)                                   \
    static void name(const rn_tile *t, int r)                   \
    {                                                           \
        switch (r) {                                            \
        case 6: tile(t, 6, 1, S, CB); break;                    \
        case 5: tile(t, 5, 1, S, CB); break;                    \
        case 4: tile(t, 4, 1, S, CB); break;                    \
        case 3: tile(t, 3, 1, S, CB); break;                    \
        case 2: tile(t, 2, 1, S, CB); break;                    \
        default: tile(t, 1, 1, S, CB); break;                   \
        }                                                       \
    }
#define TILE_FN2(name, S, CB)                                   \
    static void name(const rn_tile *t, int r)                   \
    {                                                           \
        switch (r) {                                            \
        case 3: tile(t, 3, 2, S, CB); break;                    \
        case 2: tile(t, 2, 2, S, CB); break;                    \
        default: tile(t, 1, 2, S, CB); break;                   \
        }                                                       \
    }

TILE_FN1(tile_nb1_s1, 1, 16)
TILE_FN2(tile_nb2_s1, 1, 16)
TILE_FN1(tile_nb1_s2, 2, 16)
TILE_FN2(tile_nb2_s2, 2, 16)
/* NCHW input (the stem): one input channel per block */
TILE_FN1(tile_nb1_s1_c1, 1, 1)
TILE_FN2(tile_nb2_s1_c1, 1, 1)
TILE_FN1(tile_nb1_s2_c1, 2, 1)
TILE_FN2(tile_nb2_s2_c1, 2, 1)

/* The epilogue of a tile whose edge pixels needed extra taps: ReLU on its r
 * pixels in place (no bf16 tiles, so never a bf16 output). */
static void finish(const rn_tile *t, int r, int nb, int relu, uint16_t *outb)
{
    (void)outb;
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb && relu; b++)
        for (int q = 0; q < r * 4; q++) {
            float *o = t->out + b * t->out_ob + q * 4;
            vst1q_f32(o, vmaxq_f32(vld1q_f32(o), zero));
        }
}

/* ---- Winograd (core/engine/wino_tmpl.h): a block of 16 channels as four q registers ---- */

/* Quarter `part` of the bias block at ch: zero past out_c, and the array is
 * not read past its end. */
INLINE float32x4_t wt_bias(const float *bias, int ch, int out_c, int part)
{
    int rem = out_c - ch - 4 * part;
    if (!bias || rem <= 0)
        return vdupq_n_f32(0.0f);
    if (rem >= 4)
        return vld1q_f32(bias + ch + 4 * part);
    float v[4] = {0};
    for (int k = 0; k < rem; k++)
        v[k] = bias[ch + 4 * part + k];
    return vld1q_f32(v);
}

#define V_VEC float32x4_t
#define V_PARTS 4
#define V_INLINE INLINE
#define V_FN static
#define V_LOAD(p) vld1q_f32(p)
#define V_STORE(p, v) vst1q_f32((p), (v))
#define V_ADD(a, b) vaddq_f32((a), (b))
#define V_SUB(a, b) vsubq_f32((a), (b))
#define V_MAX(a, b) vmaxq_f32((a), (b))
#define V_ZERO() vdupq_n_f32(0.0f)
#define V_FMA(k, a, c) vfmaq_n_f32((c), (a), (k))
#define V_BIAS(bias, ch, out_c, part) wt_bias((bias), (ch), (out_c), (part))

#define V_SET1(x) vdupq_n_f32(x)
#define V_MUL(a, b) vmulq_f32((a), (b))

#include "wino_tmpl.h"
#include "pooling_tmpl.h"

const rn_kernels rn_kernels_neon = {
    .name = "neon",
    .isa = RN_ISA_NEON,
    .tile = {
        [RN_TILE_F32] = {{tile_nb1_s1, tile_nb2_s1}, {tile_nb1_s2, tile_nb2_s2}},
        [RN_TILE_NCHW] = {{tile_nb1_s1_c1, tile_nb2_s1_c1}, {tile_nb1_s2_c1, tile_nb2_s2_c1}},
    },
    .rmax = {6, 3, 0},
    .wino_in = {wino2_input, wino4_input, NULL},
    .wino_out = {wino2_output, wino4_output},
    .finish = finish,
    .maxpool = maxpool3x3s2,
    .bn_relu = bn_relu16,
    .to_bf16 = NULL,
    .l1_weights = 32 * 1024,
    .chunk_pixels = 128,
    .wino_slice = 128 * 1024,
};

#endif
