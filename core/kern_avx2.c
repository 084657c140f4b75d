/* AVX2 + FMA micro-kernels of the blocked engine (core/kernels.h).
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
 * The Winograd transforms are kern_avx512.c's, the same formulas lane by
 * lane, on both halves of a block in turn, tile by tile.
 */
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Every function here is compiled for AVX2 + FMA whatever the build flags;
 * core/cpu.c decides at run time whether it runs. */
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
    for (int ib = 0; ib < t->ib_n; ib++) {
        const float *in = (const float *)t->in + ib * t->in_ib + t->at;
        const float *w = (const float *)t->w + (size_t)ib * t->taps * CB * 16;
        for (int ky = t->ky0; ky < t->ky1; ky++) {
            for (int kx = t->kx0; kx < t->kx1; kx++) {
                const float *ip = in + ky * t->irow + kx * CB;
                const float *wk = w + (ky * t->kw + kx) * CB * 16;
#pragma GCC unroll 2
                for (int i = 0; i < CB && NB == 2; i++) {
                    /* R broadcasts held, each weight vector loaded once and
                     * FMAed into R accumulators: 12 + R + 1 registers */
                    __m256 x[3];
#pragma GCC unroll 3
                    for (int r = 0; r < R; r++)
                        x[r] = _mm256_broadcast_ss(ip + r * S * CB + i);
#pragma GCC unroll 2
                    for (int nb = 0; nb < NB; nb++)
#pragma GCC unroll 2
                        for (int h = 0; h < 2; h++) {
                            __m256 wv = _mm256_load_ps(wk + nb * t->w_ob + i * 16 + h * 8);
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

/* r = B^T d for F(4x4, 3x3), B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
 * 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1], with FMAs:
 * r0 = 4 d0 - 5 d2 + d4, r1,2 = (d4 - 4 d2) +- (d3 - 4 d1),
 * r3,4 = (d4 - d2) +- 2 (d3 - d1), r5 = 4 d1 - 5 d3 + d5 (kern_avx512.c's). */
static inline AVX2 __attribute__((always_inline)) void wino4_bt(const __m256 d[6], __m256 r[6])
{
    const __m256 four = _mm256_set1_ps(4), mfive = _mm256_set1_ps(-5), mfour = _mm256_set1_ps(-4);
    __m256 a = _mm256_fmadd_ps(mfour, d[2], d[4]), b = _mm256_fmadd_ps(mfour, d[1], d[3]);
    __m256 c = _mm256_sub_ps(d[4], d[2]), e = _mm256_sub_ps(d[3], d[1]);
    e = _mm256_add_ps(e, e);
    r[0] = _mm256_fmadd_ps(four, d[0], _mm256_fmadd_ps(mfive, d[2], d[4]));
    r[1] = _mm256_add_ps(a, b);
    r[2] = _mm256_sub_ps(a, b);
    r[3] = _mm256_add_ps(c, e);
    r[4] = _mm256_sub_ps(c, e);
    r[5] = _mm256_fmadd_ps(four, d[1], _mm256_fmadd_ps(mfive, d[3], d[5]));
}

/* r = B^T d for F(2x2, 3x3), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static inline AVX2 __attribute__((always_inline)) void wino2_bt(const __m256 d[4], __m256 r[4])
{
    r[0] = _mm256_sub_ps(d[0], d[2]);
    r[1] = _mm256_add_ps(d[1], d[2]);
    r[2] = _mm256_sub_ps(d[2], d[1]);
    r[3] = _mm256_sub_ps(d[1], d[3]);
}

/* V[p][ib][tl] = (B^T d B)[p] for the tl-th tile of the chunk from t0, with
 * MT x MT output tiles from (MT + 2) x (MT + 2) input patches, both halves
 * of a block per tile (one pass over the input chunk, not two). Input block by input block, tiles in order: a
 * tile's patch overlaps its left neighbour's by two columns, whose
 * transforms (down the columns) are reused. */
static inline AVX2 __attribute__((always_inline)) void wino_input_t(const rn_wino *j, int t0,
                                                                    int tc, void *V, const int MT)
{
    enum { A = 6 }; /* MT + 2 at most */
    const int NA = MT + 2;
    const float *in = j->a->in;
    float *Vf = V;
    size_t plane = (size_t)j->h * j->w * 16, vp = (size_t)j->ib_n * j->T * 16;
    int per_img = j->th * j->tw;
    for (int ib = 0; ib < j->ib_n; ib++) {
        int img = t0 / per_img, ty = t0 % per_img / j->tw, tx = t0 % j->tw;
        __m256 c[2][A][A]; /* the tile's input columns, transformed, per half */
        for (int tl = 0; tl < tc; tl++) {
            size_t src = ((size_t)img * j->ib_n + ib) * plane;
            int y0 = ty * MT - 1, x0 = tx * MT - 1, x = 0;
            if (tl > 0 && tx > 0) {
                for (int h = 0; h < 2; h++)
                    for (int k = 0; k < NA; k++) {
                        c[h][0][k] = c[h][MT][k];
                        c[h][1][k] = c[h][MT + 1][k];
                    }
                x = 2;
            }
            for (; x < NA; x++)
                for (int h = 0; h < 2; h++) {
                    __m256 d[A];
                    for (int k = 0; k < NA; k++) {
                        int y = y0 + k, xx = x0 + x;
                        size_t at = src + ((size_t)y * j->w + xx) * 16 + h * 8;
                        d[k] = xx < 0 || xx >= j->w || y < 0 || y >= j->h ? _mm256_setzero_ps()
                                                                          : _mm256_load_ps(in + at);
                    }
                    if (MT == 4)
                        wino4_bt(d, c[h][x]);
                    else
                        wino2_bt(d, c[h][x]);
                }
            size_t v = ((size_t)ib * j->T + tl) * 16;
            for (int a = 0; a < NA; a++)
                for (int h = 0; h < 2; h++) {
                    __m256 row[A], r[A];
                    for (int k = 0; k < NA; k++)
                        row[k] = c[h][k][a];
                    if (MT == 4)
                        wino4_bt(row, r);
                    else
                        wino2_bt(row, r);
                    for (int b = 0; b < NA; b++)
                        _mm256_store_ps(Vf + v + (NA * a + b) * vp + h * 8, r[b]);
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

static AVX2 void wino2_input(const rn_wino *j, int t0, int tc, void *V)
{
    wino_input_t(j, t0, tc, V, 2);
}

static AVX2 void wino4_input(const rn_wino *j, int t0, int tc, void *V)
{
    wino_input_t(j, t0, tc, V, 4);
}

/* y = A^T m A for F(2x2, 3x3), A^T = [1 1 1 0; 0 1 -1 -1]; m: the 16
 * positions of one tile (one half), mp floats apart. */
static inline AVX2 __attribute__((always_inline)) void wino2_out(const float *m, size_t mp,
                                                                 __m256 y[4][4])
{
    __m256 s[2][4];
    for (int b = 0; b < 4; b++) {
        __m256 m0 = _mm256_load_ps(m + b * mp), m1 = _mm256_load_ps(m + (4 + b) * mp),
               m2 = _mm256_load_ps(m + (8 + b) * mp), m3 = _mm256_load_ps(m + (12 + b) * mp);
        s[0][b] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s[1][b] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    for (int r = 0; r < 2; r++) {
        y[r][0] = _mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]), s[r][2]);
        y[r][1] = _mm256_sub_ps(_mm256_sub_ps(s[r][1], s[r][2]), s[r][3]);
    }
}

/* y = A^T m for F(4x4, 3x3) along one dimension, A^T = [1 1 1 1 1 0;
 * 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
static inline AVX2 __attribute__((always_inline)) void wino4_at(const __m256 m[6], __m256 y[4])
{
    __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
    __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
    y[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
    y[1] = _mm256_fmadd_ps(_mm256_set1_ps(2), d34, d12);
    y[2] = _mm256_fmadd_ps(_mm256_set1_ps(4), s34, s12);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8), d34, d12), m[5]);
}

/* y = A^T m A for F(4x4, 3x3): m, the 36 positions of one tile (one half). */
static inline AVX2 __attribute__((always_inline)) void wino4_out(const float *m, size_t mp,
                                                                 __m256 y[4][4])
{
    __m256 s[4][6];
    for (int b = 0; b < 6; b++) {
        __m256 col[6], r[4];
        for (int k = 0; k < 6; k++)
            col[k] = _mm256_load_ps(m + (6 * k + b) * mp);
        wino4_at(col, r);
        for (int k = 0; k < 4; k++)
            s[k][b] = r[k];
    }
    for (int r = 0; r < 4; r++)
        wino4_at(s[r], y[r]);
}

/* The output of the chunk's tiles for output blocks [ob0, ob1): Y = A^T M A
 * plus bias and the residual, ReLU, into out; tile by tile, both halves of
 * a block in turn (the tile's M and output stay in L1); MT, the tile size j->m as a constant. */
static inline AVX2 __attribute__((always_inline)) void wino_output_t(const rn_wino *j, int t0,
                                                                     int tc, int ob0, int ob1,
                                                                     const float *M, const int MT)
{
    const rn_conv_args *a = j->a;
    size_t mp = (size_t)j->og_size * j->T * 16; /* floats between positions */
    const __m256 zero = _mm256_setzero_ps();
    for (int ob = ob0; ob < ob1; ob++) {
        int rem = a->c->out_c - ob * 16;
        __m256 bias[2] = {bias_half(a->bias, ob * 16, rem, 0), bias_half(a->bias, ob * 16, rem, 1)};
        for (int tl = 0; tl < tc; tl++) {
            int t = t0 + tl, img = t / (j->th * j->tw), q = t % (j->th * j->tw);
            int oy = q / j->tw * MT, ox = q % j->tw * MT;
            for (int h = 0; h < 2; h++) {
                const float *m = M + ((size_t)(ob - ob0) * j->T + tl) * 16 + h * 8;
                __m256 y[4][4];
                if (MT == 4)
                    wino4_out(m, mp, y);
                else
                    wino2_out(m, mp, y);
                size_t o = (((size_t)img * j->ob_n + ob) * j->h + oy) * j->w * 16 + ox * 16 + h * 8;
                for (int dy = 0; dy < MT && oy + dy < j->h; dy++)
                    for (int dx = 0; dx < MT && ox + dx < j->w; dx++) {
                        size_t at = o + ((size_t)dy * j->w + dx) * 16;
                        __m256 v = _mm256_add_ps(bias[h], y[dy][dx]);
                        if (a->accumulate)
                            v = _mm256_add_ps(v, _mm256_load_ps(a->out + at));
                        if (a->relu)
                            v = _mm256_max_ps(v, zero);
                        _mm256_store_ps(a->out + at, v);
                    }
            }
        }
    }
}

static AVX2 void wino2_output(const rn_wino *j, int t0, int tc, int ob0, int ob1, const float *M)
{
    wino_output_t(j, t0, tc, ob0, ob1, M, 2);
}

static AVX2 void wino4_output(const rn_wino *j, int t0, int tc, int ob0, int ob1, const float *M)
{
    wino_output_t(j, t0, tc, ob0, ob1, M, 4);
}

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
    .to_bf16 = NULL,
    .l1_weights = 16 * 1024,
    .chunk_pixels = 128,
    .wino_slice = 192 * 1024,
};

#endif
