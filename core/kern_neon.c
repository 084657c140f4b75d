/* NEON (AArch64 Advanced SIMD) micro-kernels of the blocked engine
 * (core/kernels.h). FP32 only: no bf16 tiles (BFMMLA/BFDOT are optional
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
 * Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms: the formulas of
 * kern_avx512.c, operation for operation (the same FMAs), on 4 q per block.
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
    for (int ib = 0; ib < t->ib_n; ib++) {
        const float *in = (const float *)t->in + ib * t->in_ib + t->at;
        const float *w = (const float *)t->w + (size_t)ib * t->taps * CB * 16;
        for (int ky = t->ky0; ky < t->ky1; ky++) {
            for (int kx = t->kx0; kx < t->kx1; kx++) {
                const float *ip = in + ky * t->irow + kx * CB;
                const float *wk = w + (ky * t->kw + kx) * CB * 16;
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
                } else {
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
                                wv[q] = vld1q_f32(wk + nb * t->w_ob + i * 16 + 4 * q);
#pragma GCC unroll 6
                            for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                                for (int q = 0; q < 4; q++)
                                    acc[r][nb][q] = vfmaq_f32(acc[r][nb][q], wv[q], x[r]);
                        }
                    }
                }
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

/* ---- Winograd: one block of 16 channels as four q registers ---- */

typedef struct {
    float32x4_t q[4];
} v16;

INLINE v16 ld16(const float *p)
{
    v16 r;
    for (int i = 0; i < 4; i++)
        r.q[i] = vld1q_f32(p + 4 * i);
    return r;
}

INLINE void st16(float *p, v16 v)
{
    for (int i = 0; i < 4; i++)
        vst1q_f32(p + 4 * i, v.q[i]);
}

INLINE v16 zero16(void)
{
    v16 r;
    for (int i = 0; i < 4; i++)
        r.q[i] = vdupq_n_f32(0.0f);
    return r;
}

INLINE v16 add16(v16 a, v16 b)
{
    for (int i = 0; i < 4; i++)
        a.q[i] = vaddq_f32(a.q[i], b.q[i]);
    return a;
}

INLINE v16 sub16(v16 a, v16 b)
{
    for (int i = 0; i < 4; i++)
        a.q[i] = vsubq_f32(a.q[i], b.q[i]);
    return a;
}

INLINE v16 max16(v16 a, v16 b)
{
    for (int i = 0; i < 4; i++)
        a.q[i] = vmaxq_f32(a.q[i], b.q[i]);
    return a;
}

/* k * a + c, fused (kern_avx512.c's _mm512_fmadd_ps(set1(k), a, c)) */
INLINE v16 fmadd16(float k, v16 a, v16 c)
{
    for (int i = 0; i < 4; i++)
        c.q[i] = vfmaq_n_f32(c.q[i], a.q[i], k);
    return c;
}

/* r = B^T d for F(4x4, 3x3), B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
 * 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1], with FMAs:
 * r0 = 4 d0 - 5 d2 + d4, r1,2 = (d4 - 4 d2) +- (d3 - 4 d1),
 * r3,4 = (d4 - d2) +- 2 (d3 - d1), r5 = 4 d1 - 5 d3 + d5. */
INLINE void wino4_bt(const v16 d[6], v16 r[6])
{
    v16 a = fmadd16(-4, d[2], d[4]), b = fmadd16(-4, d[1], d[3]);
    v16 c = sub16(d[4], d[2]), e = sub16(d[3], d[1]);
    e = add16(e, e);
    r[0] = fmadd16(4, d[0], fmadd16(-5, d[2], d[4]));
    r[1] = add16(a, b);
    r[2] = sub16(a, b);
    r[3] = add16(c, e);
    r[4] = sub16(c, e);
    r[5] = fmadd16(4, d[1], fmadd16(-5, d[3], d[5]));
}

/* r = B^T d for F(2x2, 3x3), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
INLINE void wino2_bt(const v16 d[4], v16 r[4])
{
    r[0] = sub16(d[0], d[2]);
    r[1] = add16(d[1], d[2]);
    r[2] = sub16(d[2], d[1]);
    r[3] = sub16(d[1], d[3]);
}

/* V[p][ib][tl] = (B^T d B)[p] for the tl-th tile of the chunk from t0, MT x MT
 * output tiles from (MT + 2) x (MT + 2) input patches. Input block by input
 * block, tiles in order: a tile's patch overlaps its left neighbour's by two
 * columns, whose transforms (down the columns) are reused. */
INLINE void wino_input_t(const rn_wino *j, int t0, int tc, float *V, const int MT)
{
    enum { A = 6 }; /* MT + 2 at most */
    const int NA = MT + 2;
    const float *in = j->a->in;
    size_t plane = (size_t)j->h * j->w * 16, vp = (size_t)j->ib_n * j->T * 16;
    int per_img = j->th * j->tw;
    for (int ib = 0; ib < j->ib_n; ib++) {
        int img = t0 / per_img, ty = t0 % per_img / j->tw, tx = t0 % j->tw;
        v16 c[A][A]; /* the tile's input columns, transformed */
        for (int tl = 0; tl < tc; tl++) {
            size_t src = ((size_t)img * j->ib_n + ib) * plane;
            int y0 = ty * MT - 1, x0 = tx * MT - 1, x = 0;
            if (tl > 0 && tx > 0) {
                for (int k = 0; k < NA; k++) {
                    c[0][k] = c[MT][k];
                    c[1][k] = c[MT + 1][k];
                }
                x = 2;
            }
            for (; x < NA; x++) {
                v16 d[A];
                for (int k = 0; k < NA; k++) {
                    int y = y0 + k, xx = x0 + x;
                    d[k] = xx < 0 || xx >= j->w || y < 0 || y >= j->h
                               ? zero16()
                               : ld16(in + src + ((size_t)y * j->w + xx) * 16);
                }
                if (MT == 4)
                    wino4_bt(d, c[x]);
                else
                    wino2_bt(d, c[x]);
            }
            size_t v = ((size_t)ib * j->T + tl) * 16;
            for (int a = 0; a < NA; a++) {
                v16 row[A], r[A];
                for (int k = 0; k < NA; k++)
                    row[k] = c[k][a];
                if (MT == 4)
                    wino4_bt(row, r);
                else
                    wino2_bt(row, r);
                for (int b = 0; b < NA; b++)
                    st16(V + v + (NA * a + b) * vp, r[b]);
            }
            if (++tx == j->tw) {
                tx = 0;
                if (++ty == j->th) {
                    ty = 0;
                    img++;
                }
            }
        }
    }
}

static void wino2_input(const rn_wino *j, int t0, int tc, void *V)
{
    wino_input_t(j, t0, tc, V, 2);
}

static void wino4_input(const rn_wino *j, int t0, int tc, void *V)
{
    wino_input_t(j, t0, tc, V, 4);
}

/* y = A^T m A for F(2x2, 3x3), A^T = [1 1 1 0; 0 1 -1 -1]; m: the 16
 * positions of one tile, mp floats apart. */
INLINE void wino2_out(const float *m, size_t mp, v16 y[4][4])
{
    v16 s[2][4];
    for (int b = 0; b < 4; b++) {
        v16 m0 = ld16(m + b * mp), m1 = ld16(m + (4 + b) * mp), m2 = ld16(m + (8 + b) * mp),
            m3 = ld16(m + (12 + b) * mp);
        s[0][b] = add16(add16(m0, m1), m2);
        s[1][b] = sub16(sub16(m1, m2), m3);
    }
    for (int r = 0; r < 2; r++) {
        y[r][0] = add16(add16(s[r][0], s[r][1]), s[r][2]);
        y[r][1] = sub16(sub16(s[r][1], s[r][2]), s[r][3]);
    }
}

/* y = A^T m for F(4x4, 3x3) along one dimension, A^T = [1 1 1 1 1 0;
 * 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
INLINE void wino4_at(const v16 m[6], v16 y[4])
{
    v16 s12 = add16(m[1], m[2]), d12 = sub16(m[1], m[2]);
    v16 s34 = add16(m[3], m[4]), d34 = sub16(m[3], m[4]);
    y[0] = add16(add16(m[0], s12), s34);
    y[1] = fmadd16(2, d34, d12);
    y[2] = fmadd16(4, s34, s12);
    y[3] = add16(fmadd16(8, d34, d12), m[5]);
}

/* y = A^T m A for F(4x4, 3x3): m, the 36 positions of one tile. */
INLINE void wino4_out(const float *m, size_t mp, v16 y[4][4])
{
    v16 s[4][6];
    for (int b = 0; b < 6; b++) {
        v16 col[6], r[4];
        for (int k = 0; k < 6; k++)
            col[k] = ld16(m + (6 * k + b) * mp);
        wino4_at(col, r);
        for (int k = 0; k < 4; k++)
            s[k][b] = r[k];
    }
    for (int r = 0; r < 4; r++)
        wino4_at(s[r], y[r]);
}

/* The output of the chunk's tiles for output blocks [ob0, ob1): Y = A^T M A
 * plus bias and the residual, ReLU, into out; MT, the tile size j->m. */
INLINE void wino_output_t(const rn_wino *j, int t0, int tc, int ob0, int ob1, const float *M,
                          const int MT)
{
    const rn_conv_args *a = j->a;
    size_t mp = (size_t)j->og_size * j->T * 16; /* floats between positions */
    const v16 zero = zero16();
    for (int ob = ob0; ob < ob1; ob++) {
        v16 bias;
        load_bias(a->bias, ob * 16, a->c->out_c, bias.q);
        for (int tl = 0; tl < tc; tl++) {
            int t = t0 + tl, img = t / (j->th * j->tw), q = t % (j->th * j->tw);
            int oy = q / j->tw * MT, ox = q % j->tw * MT;
            const float *m = M + ((size_t)(ob - ob0) * j->T + tl) * 16;
            v16 y[4][4];
            if (MT == 4)
                wino4_out(m, mp, y);
            else
                wino2_out(m, mp, y);
            size_t o = (((size_t)img * j->ob_n + ob) * j->h + oy) * j->w * 16 + ox * 16;
            for (int dy = 0; dy < MT && oy + dy < j->h; dy++)
                for (int dx = 0; dx < MT && ox + dx < j->w; dx++) {
                    float *out = a->out + o + ((size_t)dy * j->w + dx) * 16;
                    v16 v = add16(bias, y[dy][dx]);
                    if (a->accumulate)
                        v = add16(v, ld16(out));
                    if (a->relu)
                        v = max16(v, zero);
                    st16(out, v);
                }
        }
    }
}

static void wino2_output(const rn_wino *j, int t0, int tc, int ob0, int ob1, const float *M)
{
    wino_output_t(j, t0, tc, ob0, ob1, M, 2);
}

static void wino4_output(const rn_wino *j, int t0, int tc, int ob0, int ob1, const float *M)
{
    wino_output_t(j, t0, tc, ob0, ob1, M, 4);
}

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
    .to_bf16 = NULL,
    .l1_weights = 32 * 1024,
    .chunk_pixels = 128,
    .wino_slice = 128 * 1024,
};

#endif
