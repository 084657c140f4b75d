/* AVX2 + FMA micro-kernels of the blocked engine (core/engine/kernels.h).
 *
 * One pixel's block of 16 channels is two ymm (halves 0-7 and 8-15). Tile:
 * R output pixels of one row times NB blocks of 16 output channels, R x NB x 2
 * accumulators in the 16 ymm registers:
 *   NB = 2, R <= 3 (the tile every convolution with an even block count
 *     runs): 12 accumulators, R broadcasts held, each of the 4 weight vectors
 *     loaded once and FMAed into R accumulators; per input channel and tap
 *     3 + 4 loads for 12 FMAs.
 *   NB = 1, R <= 6 (odd block counts): 12 accumulators, 2 weight vectors, one
 *     broadcast; 6 + 2 loads for 12 FMAs.
 * AVX2 has no broadcast memory operand: a VBROADCASTSS load is a load uop
 * without ALU work. Zen 4 sustains about 2 such 256-bit loads per cycle, so a
 * 7 x 1 tile (14 accumulators, one weight half read by each FMA: 15 loads per
 * 14 FMAs) ran at 0.8 of the 6 x 1 tile. The driver gives NB = 2 tiles of up
 * to 9 pixels (rmax), run as pieces of 3 and 2 (TILE_FN): ResNet's 7- and
 * 14-pixel rows then need no 1-pixel tile, which is FMA-latency bound (0.6 of
 * the AVX-512 table on the 7x7 stride-2 layers with 6 x 1 tiles; 0.85 with
 * these). R, NB, the stride and the input block (16, or 1 for the stem's
 * NCHW input) are compile-time constants of each instance, so accumulators
 * stay in registers and pixel offsets are immediates. FP32 only (no bf16
 * tiles).
 *
 * The Winograd transforms are core/engine/wino_tmpl.h's, shared with the AVX-512
 * and NEON tables, on both halves of a block in turn, tile by tile.
 */
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Every function here is compiled for AVX2 + FMA whatever the build flags;
 * core/engine/cpu.c decides at run time whether it runs. */
#define AVX2 __attribute__((target("avx2,fma")))


/* The 8 values of half h of a bias block at ch (rem = out_c - ch channels
 * real, the rest read as 0), without touching memory past the real ones. */
static inline AVX2 __m256 bias_half(const float *bias, int ch, int rem, int h)
{
    int n = rem - h * 8;
    if (!bias || n <= 0)
        return _mm256_setzero_ps();
    if (n >= 8)
        return _mm256_loadu_ps(bias + ch + h * 8);
    __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_maskload_ps(bias + ch + h * 8, m);
}

/* acc += one tap's CB input channels of R pixels, S * CB floats apart from
 * ip, times the weights at wk (NB blocks, w_ob floats apart). */
static inline AVX2 __attribute__((always_inline)) void taps(__m256 acc[6][2][2], const float *ip,
                                                     const float *wk, size_t w_ob, const int R,
                                                     const int NB, const int S, const int CB)
{
#pragma GCC unroll 2
    for (int i = 0; i < CB && NB == 2; i++) {
        /* R broadcasts held, each weight vector loaded once and FMAed into
         * R accumulators: 12 + R + 1 registers */
        __m256 x[3];
#pragma GCC unroll 3
        for (int r = 0; r < R; r++)
            x[r] = _mm256_broadcast_ss(ip + r * S * CB + i);
#pragma GCC unroll 2
        for (int nb = 0; nb < NB; nb++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256 wv = _mm256_load_ps(wk + nb * w_ob + i * 16 + h * 8);
#pragma GCC unroll 3
                for (int r = 0; r < R; r++)
                    acc[r][nb][h] = _mm256_fmadd_ps(x[r], wv, acc[r][nb][h]);
            }
    }
#pragma GCC unroll 2
    for (int i = 0; i < CB && NB == 1; i++) {
        __m256 w0 = _mm256_load_ps(wk + i * 16), w1 = _mm256_load_ps(wk + i * 16 + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m256 x = _mm256_broadcast_ss(ip + r * S * CB + i);
            acc[r][0][0] = _mm256_fmadd_ps(x, w0, acc[r][0][0]);
            acc[r][0][1] = _mm256_fmadd_ps(x, w1, acc[r][0][1]);
        }
    }
}

static inline AVX2 __attribute__((always_inline)) void tile(const rn_tile *t, const int R,
                                                     const int NB, const int S, const int CB)
{
    __m256 acc[6][2][2]; /* [pixel][block][half] */
#pragma GCC unroll 2
    for (int nb = 0; nb < NB; nb++) {
        int ch = t->ch0 + nb * 16, rem = t->out_c - ch;
        __m256 b0 = bias_half(t->bias, ch, rem, 0), b1 = bias_half(t->bias, ch, rem, 1);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const float *o = t->out + nb * t->out_ob + r * 16;
            acc[r][nb][0] = t->accumulate ? _mm256_add_ps(b0, _mm256_load_ps(o)) : b0;
            acc[r][nb][1] = t->accumulate ? _mm256_add_ps(b1, _mm256_load_ps(o + 8)) : b1;
        }
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
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int nb = 0; nb < NB; nb++)
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            float *o = t->out + nb * t->out_ob + r * 16;
            __m256 v0 = acc[r][nb][0], v1 = acc[r][nb][1];
            if (t->relu) {
                v0 = _mm256_max_ps(v0, zero);
                v1 = _mm256_max_ps(v1, zero);
            }
            _mm256_store_ps(o, v0);
            _mm256_store_ps(o + 8, v1);
        }
}

/* tile() with constant R, NB, stride and input block, so that the
 * accumulators live in registers and the pixel offsets are immediates. NB = 1:
 * one instance per width up to 6. NB = 2: instances of 1, 2 and 3 pixels (12
 * accumulators at most) and tiles of up to 9 pixels as sums of them, left to
 * right, in pieces of 3 and 2 (7 = 2 + 3 + 2, 14 = 9 + 2 + 3): no 1-pixel
 * piece, whose 4 accumulators cannot hide the FMA latency, unless the row is
 * 1 pixel wide. */
#define TILE_FN(name, NB, S, CB)                                            \
    static AVX2 void name(const rn_tile *t0, int r)                         \
    {                                                                       \
        rn_tile t = *t0;                                                    \
        while (r > 0) {                                                     \
            int q = NB == 1 ? RN_MIN(r, 6) : r % 3 == 1 && r > 1 ? 2 : RN_MIN(r, 3); \
            if (NB == 1 && q >= 4) {                                        \
                if (q == 6)                                                 \
                    tile(&t, 6, 1, S, CB);                                  \
                else if (q == 5)                                            \
                    tile(&t, 5, 1, S, CB);                                  \
                else                                                        \
                    tile(&t, 4, 1, S, CB);                                  \
            } else if (q == 3) {                                            \
                tile(&t, 3, NB, S, CB);                                     \
            } else if (q == 2) {                                            \
                tile(&t, 2, NB, S, CB);                                     \
            } else {                                                        \
                tile(&t, 1, NB, S, CB);                                     \
            }                                                               \
            t.pf_len = 0; /* the first piece runs the prefetch hint */     \
            t.at += (ptrdiff_t)q * S * CB;                                  \
            t.out += q * 16;                                                \
            r -= q;                                                         \
        }                                                                   \
    }

TILE_FN(tile_nb1_s1, 1, 1, 16)
TILE_FN(tile_nb2_s1, 2, 1, 16)
TILE_FN(tile_nb1_s2, 1, 2, 16)
TILE_FN(tile_nb2_s2, 2, 2, 16)
/* NCHW input (the stem): one input channel per block */
TILE_FN(tile_nb1_s1_c1, 1, 1, 1)
TILE_FN(tile_nb2_s1_c1, 2, 1, 1)
TILE_FN(tile_nb1_s2_c1, 1, 2, 1)
TILE_FN(tile_nb2_s2_c1, 2, 2, 1)

/* The epilogue of a tile whose edge pixels needed extra taps: ReLU on its r
 * pixels in place (no bf16 tiles here, so outb is never set). */
static AVX2 void finish(const rn_tile *t, int r, int nb, int relu, uint16_t *outb)
{
    (void)outb;
    if (!relu)
        return;
    const __m256 zero = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++)
        for (int q = 0; q < r; q++) {
            float *o = t->out + b * t->out_ob + q * 16;
            _mm256_store_ps(o, _mm256_max_ps(_mm256_load_ps(o), zero));
            _mm256_store_ps(o + 8, _mm256_max_ps(_mm256_load_ps(o + 8), zero));
        }
}

/* The Winograd transforms (core/engine/wino_tmpl.h) on ymm: a block as two halves. */
#define V_VEC __m256
#define V_PARTS 2
#define V_INLINE static inline AVX2 __attribute__((always_inline))
#define V_FN static AVX2
#define V_LOAD(p) _mm256_load_ps(p)
#define V_STORE(p, v) _mm256_store_ps((p), (v))
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_SUB(a, b) _mm256_sub_ps((a), (b))
#define V_MAX(a, b) _mm256_max_ps((a), (b))
#define V_ZERO() _mm256_setzero_ps()
#define V_FMA(k, a, c) _mm256_fmadd_ps(_mm256_set1_ps(k), (a), (c))
#define V_BIAS(bias, ch, out_c, part) bias_half((bias), (ch), (out_c) - (ch), (part))

#define V_SET1(x) _mm256_set1_ps(x)
#define V_MUL(a, b) _mm256_mul_ps((a), (b))

#include "wino_tmpl.h"
#include "pooling_tmpl.h"

const rn_kernels rn_kernels_avx2 = {
    .name = "avx2",
    .isa = RN_ISA_AVX2,
    .tile = {
        [RN_TILE_F32] = {{tile_nb1_s1, tile_nb2_s1, NULL}, {tile_nb1_s2, tile_nb2_s2, NULL}},
        [RN_TILE_NCHW] = {{tile_nb1_s1_c1, tile_nb2_s1_c1, NULL}, {tile_nb1_s2_c1, tile_nb2_s2_c1, NULL}},
    },
    .rmax = {6, 9, 0},
    .wino_in = {wino2_input, wino4_input, NULL},
    .wino_out = {wino2_output, wino4_output},
    .finish = finish,
    .maxpool = maxpool3x3s2,
    .bn_relu = bn_relu16,
    .to_bf16 = NULL,
    .l1_weights = 16 * 1024,
    .chunk_pixels = 128,
    .wino_slice = 192 * 1024,
};

#endif
