/* AVX-512 micro-kernels of the blocked engine (core/engine/kernels.h).
 *
 * Tile: R output pixels of one row times NB blocks of 16 output channels,
 * R x NB accumulators in zmm registers: R = 14, NB = 2, or R = 7, NB = 4 on
 * rows of 7 and chunks of 16 Winograd tiles (layer 4's strided 1x1 and batch
 * 1): 28 accumulators, NB weight vectors and one broadcast. R = 7, NB = 4
 * spills one accumulator, so it runs only where a row leaves 14 x 2 tiles
 * half empty (.worth below). Per input channel and tap it loads NB weight
 * vectors (16 output channels each, packed by core/engine/pack.c) and, per pixel,
 * broadcasts the pixel's input value once (VBROADCASTSS, a load uop) and
 * FMAs it into NB accumulators: R + NB loads per R x NB FMAs. An FMA with
 * the broadcast as its memory operand would load the value NB times: on an
 * Intel Xeon (Sapphire Rapids class, no SMT) that ran the 14 x 2 tile at
 * 180 GFLOP/s on one core against 195 (build/bench-tiles, in L1) and
 * ResNet-50 at batch 1 6% slower; NB = 1 keeps it (one FMA per value
 * either way). R, NB, the stride and the input block (16, or 1 for the
 * stem's NCHW input) are compile-time constants of each instance, so
 * accumulators stay in registers and pixel offsets are immediates.
 *
 * Instances: every (input kind, stride, NB) has tiles of R = RMAX, RMAX - 1
 * (the edge passes of a 3x3 row), 8, 4, 2 and 1 pixels; any other width runs
 * as a sum of those (TILE_FN), each pixel's sum in the same order. The driver
 * cuts rows into these widths (.pieces), so a row's last pixels run as, say,
 * 13 + 8 rather than 14 + 4 + 2 + 1. Fourteen instances each would cost four
 * times the build time.
 *
 * BF16 (RN_PRECISION_BF16): the same tile reads bf16 input and weights and
 * replaces each pair of FMAs over two input channels by one VDPBF16PS (FP32
 * accumulation), half the instructions per MAC; it can store its result as
 * bf16 for the next convolution (rn_conv_args.out_b).
 */
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Every function here is compiled for AVX-512 whatever the build flags (GCC
 * and clang alike); core/engine/cpu.c decides at run time whether it runs. */
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
/* UBSan's pointer-overflow check on every pixel and weight address of the
 * unrolled tiles triples the file's sanitizer build time (clang: 63 s instead
 * of 20), for addresses that stay inside buffers whose sizes come from
 * validated shapes; ASan still checks every access. */
#define NO_PTR_CHECK __attribute__((no_sanitize("pointer-overflow")))

/* acc + the dot products of the bf16 pairs in x and w (VDPBF16PS), and the
 * round-to-nearest-even bf16 of 16 floats (VCVTNEPS2BF16), as inline
 * assembly: the BF16 path then needs no avx512_bf16 target attribute, which
 * would spread to everything tile() is inlined into. Run only on CPUs that
 * have the instructions (rn_model_pack checks). */
static inline AVX512 __m512 dpbf16(__m512 acc, __m512i x, __m512i w)
{
    __asm__("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
    return acc;
}

/* acc + broadcast(*p) * w as one FMA with a broadcast memory operand: one
 * fused uop instead of a broadcast and an FMA, which matters when the core's
 * front end is shared (SMT). */
static inline AVX512 __m512 fma_bcast(__m512 acc, const float *p, __m512 w)
{
    __asm__("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*p));
    return acc;
}

/* broadcast(*p) into a register, as inline assembly: GCC would fold
 * _mm512_set1_ps(*p) back into each FMA's memory operand. */
static inline AVX512 __m512 bcast(const float *p)
{
    __m512 r;
    __asm__("vbroadcastss %1, %0" : "=v"(r) : "m"(*p));
    return r;
}

static inline AVX512 __m256i cvt_bf16(__m512 v)
{
    __m256i r;
    __asm__("vcvtneps2bf16 %1, %0" : "=v"(r) : "v"(v));
    return r;
}

/* The lines of a 1x1 tile's next input block, into L1 while the tile runs
 * the current one: one for each of its r pixels, px bytes apart, from next
 * (the next block at the tile's first pixel). Without it the broadcasts of
 * a block's first channel waited for their lines from L2, one line per
 * pixel per block: ResNet-50 ran about 3% slower at batch 1 and 2% at
 * batch 8 (Intel Xeon, AVX-512). */
static inline __attribute__((always_inline)) void prefetch_in(const void *next, int r, size_t px)
{
    for (int q = 0; q < r; q++)
        __builtin_prefetch((const char *)next + q * px, 0, 3);
}

/* acc += one tap's CB input channels (fp32) of R pixels, S * CB floats
 * apart from ip, times the weights at wk (NB blocks, w_ob floats apart). */
static inline AVX512 NO_PTR_CHECK __attribute__((always_inline)) void
taps_f32(__m512 acc[14][4], const float *ip, const float *wk, size_t w_ob, const int R, const int NB,
         const int S, const int CB)
{
#pragma GCC unroll 2
    for (int i = 0; i < CB; i++) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int nb = 0; nb < NB; nb++)
            wv[nb] = _mm512_load_ps(wk + nb * w_ob + i * 16);
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) {
            if (NB == 1) {
                acc[r][0] = fma_bcast(acc[r][0], ip + r * S * CB + i, wv[0]);
                continue;
            }
            __m512 x = bcast(ip + r * S * CB + i);
#pragma GCC unroll 4
            for (int nb = 0; nb < NB; nb++)
                acc[r][nb] = _mm512_fmadd_ps(x, wv[nb], acc[r][nb]);
        }
    }
}

/* The same for bf16 input and weights: 8 pairs of channels. */
static inline AVX512 NO_PTR_CHECK __attribute__((always_inline)) void
taps_bf16(__m512 acc[14][4], const uint16_t *ip, const uint16_t *wk, size_t w_ob, const int R,
          const int NB, const int S)
{
#pragma GCC unroll 2
    for (int i = 0; i < 16; i += 2) {
        __m512i wv[4];
#pragma GCC unroll 4
        for (int nb = 0; nb < NB; nb++)
            wv[nb] = _mm512_load_si512(wk + nb * w_ob + i * 16);
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) {
            int32_t pair;
            memcpy(&pair, ip + r * S * 16 + i, sizeof pair);
            __m512i x = _mm512_set1_epi32(pair);
#pragma GCC unroll 4
            for (int nb = 0; nb < NB; nb++)
                acc[r][nb] = dpbf16(acc[r][nb], x, wv[nb]);
        }
    }
}

static inline AVX512 NO_PTR_CHECK __attribute__((always_inline)) void tile(const rn_tile *t, const int R,
                                                       const int NB, const int S, const int CB,
                                                       const int BF)
{
    __m512 acc[14][4];
#pragma GCC unroll 4
    for (int nb = 0; nb < NB; nb++) {
        int ch = t->ch0 + nb * 16, rem = t->out_c - ch;
        __mmask16 m = rem >= 16 ? 0xffff : rem > 0 ? (__mmask16)((1u << rem) - 1) : 0;
        __m512 b = t->bias ? _mm512_maskz_loadu_ps(m, t->bias + (rem > 0 ? ch : 0))
                           : _mm512_setzero_ps();
#pragma GCC unroll 14
        for (int r = 0; r < R; r++)
            acc[r][nb] = t->accumulate ? _mm512_add_ps(b, _mm512_load_ps(t->out + nb * t->out_ob + r * 16))
                                       : b;
    }
    const char *pf = t->pf;
    size_t pf_left = t->pf_len;
    int fast = CB == 16 && t->taps == 1;
    size_t pf_lines = rn_tile_pf_lines(t);
    if (fast) {
        /* 1x1 (and Winograd's products): input blocks and their channels,
         * with nothing else in the loop (the general loop's bookkeeping of
         * taps cost the 1x1 tiles about 5% in L1). The next input block's
         * lines go to L1 first: FP32 only, the bf16 tiles (two pixels per
         * line) and the AVX2 table (tiles of 3 pixels) ran no faster with it */
        for (int ib = 0; ib < t->ib_n; ib++) {
            for (size_t l = 0; l < pf_lines; l++)
                rn_tile_prefetch(&pf, &pf_left, t->pf_ob, NB);
            if (BF) {
                taps_bf16(acc, (const uint16_t *)t->in + t->at + ib * t->in_ib,
                          (const uint16_t *)t->w + (size_t)ib * 256, t->w_ob, R, NB, S);
                continue;
            }
            const float *ip = (const float *)t->in + t->at + ib * t->in_ib;
            if (ib + 1 < t->ib_n)
                prefetch_in(ip + t->in_ib, R, S * CB * sizeof *ip);
            taps_f32(acc, ip, (const float *)t->w + (size_t)ib * 256, t->w_ob, R, NB, S, 16);
        }
    }
    for (int ib = 0; ib < t->ib_n && !fast; ib++) {
        for (int ky = t->ky0; ky < t->ky1; ky++) {
            for (int kx = t->kx0; kx < t->kx1; kx++) {
                for (size_t l = 0; l < pf_lines; l++)
                    rn_tile_prefetch(&pf, &pf_left, t->pf_ob, NB);
                size_t tap = (size_t)ib * t->taps + ky * t->kw + kx;
                if (BF)
                    taps_bf16(acc, (const uint16_t *)t->in + ib * t->in_ib + t->at + ky * t->irow + kx * 16,
                              (const uint16_t *)t->w + tap * 256, t->w_ob, R, NB, S);
                else
                    taps_f32(acc, (const float *)t->in + ib * t->in_ib + t->at + ky * t->irow + kx * CB,
                             (const float *)t->w + tap * CB * 16, t->w_ob, R, NB, S, CB);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int nb = 0; nb < NB; nb++)
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) {
            __m512 v = t->relu ? _mm512_max_ps(acc[r][nb], zero) : acc[r][nb];
            if (t->outb)
                _mm256_store_si256((__m256i *)(t->outb + nb * t->out_ob + r * 16), cvt_bf16(v));
            else
                _mm512_store_ps(t->out + nb * t->out_ob + r * 16, v);
        }
}

/* The widths tile() has instances of, for tiles of up to RMAX pixels: bit r
 * for r pixels (the table's .pieces, which the driver cuts rows into). */
#define PIECES(RMAX) \
    (1u << (RMAX) | 1u << ((RMAX) - 1) | ((RMAX) - 1 > 8 ? 1u << 8 : 0u) | 1u << 4 | 1u << 2 | 1u << 1)

/* tile() with constant R, NB, stride, input block and input type, so that the
 * accumulators live in registers and the pixel offsets are immediates; other
 * widths as a sum of the instances (the widest that fits first), left to
 * right. */
#define TILE_FN(name, NB, S, CB, BF, RMAX)                                  \
    static AVX512 void name(const rn_tile *t0, int r)                       \
    {                                                                       \
        rn_tile t = *t0;                                                    \
        while (r > 0) {                                                     \
            int q = 31 - __builtin_clz(PIECES(RMAX) & ((2u << RN_MIN(r, RMAX)) - 1)); \
            switch (q) {                                                    \
            case RMAX: tile(&t, RMAX, NB, S, CB, BF); break;                \
            case RMAX - 1: tile(&t, RMAX - 1, NB, S, CB, BF); break;        \
            case 8: tile(&t, 8 < RMAX - 1 ? 8 : 1, NB, S, CB, BF); break;   \
            case 4: tile(&t, 4, NB, S, CB, BF); break;                      \
            case 2: tile(&t, 2, NB, S, CB, BF); break;                      \
            default: tile(&t, 1, NB, S, CB, BF); break;                     \
            }                                                               \
            t.pf_len = 0; /* the first piece runs the prefetch hint */     \
            t.at += (ptrdiff_t)q * S * CB;                                  \
            t.out += q * 16;                                                \
            if (t.outb)                                                     \
                t.outb += q * 16;                                           \
            r -= q;                                                         \
        }                                                                   \
    }

TILE_FN(tile_nb1_s1, 1, 1, 16, 0, 14)
TILE_FN(tile_nb2_s1, 2, 1, 16, 0, 14)
TILE_FN(tile_nb4_s1, 4, 1, 16, 0, 7)
TILE_FN(tile_nb1_s2, 1, 2, 16, 0, 14)
TILE_FN(tile_nb2_s2, 2, 2, 16, 0, 14)
TILE_FN(tile_nb4_s2, 4, 2, 16, 0, 7)
/* NCHW input (the stem): one input channel per block */
TILE_FN(tile_nb1_s1_c1, 1, 1, 1, 0, 14)
TILE_FN(tile_nb2_s1_c1, 2, 1, 1, 0, 14)
TILE_FN(tile_nb4_s1_c1, 4, 1, 1, 0, 7)
TILE_FN(tile_nb1_s2_c1, 1, 2, 1, 0, 14)
TILE_FN(tile_nb2_s2_c1, 2, 2, 1, 0, 14)
TILE_FN(tile_nb4_s2_c1, 4, 2, 1, 0, 7)
/* BF16 input and weights */
TILE_FN(tile_nb1_s1_bf, 1, 1, 16, 1, 14)
TILE_FN(tile_nb2_s1_bf, 2, 1, 16, 1, 14)
TILE_FN(tile_nb4_s1_bf, 4, 1, 16, 1, 7)
TILE_FN(tile_nb1_s2_bf, 1, 2, 16, 1, 14)
TILE_FN(tile_nb2_s2_bf, 2, 2, 16, 1, 14)
TILE_FN(tile_nb4_s2_bf, 4, 2, 16, 1, 7)

/* The epilogue of a tile whose edge pixels needed extra taps: ReLU on its R
 * pixels in place, or into outb as bf16. */
static AVX512 void finish(const rn_tile *t, int r, int nb, int relu, uint16_t *outb)
{
    for (int b = 0; b < nb; b++)
        for (int q = 0; q < r; q++) {
            float *o = t->out + b * t->out_ob + q * 16;
            __m512 v = _mm512_load_ps(o);
            if (relu)
                v = _mm512_max_ps(v, _mm512_setzero_ps());
            if (outb)
                _mm256_store_si256((__m256i *)(outb + b * t->out_ob + q * 16), cvt_bf16(v));
            else
                _mm512_store_ps(o, v);
        }
}

/* 16 bf16 values widened to floats (exactly). */
static inline AVX512 __m512 load_bf16(const uint16_t *p)
{
    __m256i h = _mm256_load_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The Winograd transforms (core/engine/wino_tmpl.h) on zmm: a whole block per register. */
#define V_VEC __m512
#define V_PARTS 1
#define V_INLINE static inline AVX512 __attribute__((always_inline))
#define V_FN static AVX512
#define V_LOAD(p) _mm512_load_ps(p)
#define V_STORE(p, v) _mm512_store_ps((p), (v))
#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_SUB(a, b) _mm512_sub_ps((a), (b))
#define V_MAX(a, b) _mm512_max_ps((a), (b))
#define V_ZERO() _mm512_setzero_ps()
#define V_FMA(k, a, c) _mm512_fmadd_ps(_mm512_set1_ps(k), (a), (c))
#define V_BIAS(bias, ch, out_c, part) wt_bias((bias), (ch), (out_c))
#define V_BF16
#define V_LOAD_BF16(p) load_bf16(p)
#define V_STORE_BF16(p, v) _mm256_store_si256((__m256i *)(p), cvt_bf16(v))

static inline AVX512 __m512 wt_bias(const float *bias, int ch, int out_c)
{
    int rem = out_c - ch;
    __mmask16 mask = rem >= 16 ? 0xffff : (__mmask16)((1u << rem) - 1);
    return bias ? _mm512_maskz_loadu_ps(mask, bias + ch) : _mm512_setzero_ps();
}

#define V_SET1(x) _mm512_set1_ps(x)
#define V_MUL(a, b) _mm512_mul_ps((a), (b))

#include "wino_tmpl.h"
#include "pooling_tmpl.h"

static AVX512 void to_bf16(const float *in, uint16_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 16)
        _mm256_store_si256((__m256i *)(out + i), cvt_bf16(_mm512_load_ps(in + i)));
}

const rn_kernels rn_kernels_avx512 = {
    .name = "avx512",
    .isa = RN_ISA_AVX512,
    .tile = {
        [RN_TILE_F32] = {{tile_nb1_s1, tile_nb2_s1, tile_nb4_s1}, {tile_nb1_s2, tile_nb2_s2, tile_nb4_s2}},
        [RN_TILE_NCHW] = {{tile_nb1_s1_c1, tile_nb2_s1_c1, tile_nb4_s1_c1},
                          {tile_nb1_s2_c1, tile_nb2_s2_c1, tile_nb4_s2_c1}},
        [RN_TILE_BF16] = {{tile_nb1_s1_bf, tile_nb2_s1_bf, tile_nb4_s1_bf},
                          {tile_nb1_s2_bf, tile_nb2_s2_bf, tile_nb4_s2_bf}},
    },
    .rmax = {14, 14, 7},
    /* 7 x 4 spills an accumulator: on an Intel Xeon 49-pixel rows (layer 4's
     * 1x1, batch 8) ran 3-4% faster in ResNet-50 (7-10% alone) as 14 + 14 +
     * 14 + 7 pixels x 2 blocks (since cut as 14 + 14 + 13 + 8, .pieces), and
     * 32 Winograd tiles (layer 4 at batch 8) 11% faster as 14 + 14 + 4,
     * while 7- and 16-pixel rows stay faster as 7 x 4 */
    .worth = {[RN_NB_4] = 22},
    .pieces = {PIECES(14), PIECES(14), PIECES(7)},
    .wino_in = {wino2_input, wino4_input, wino2_input_bf16},
    .wino_out = {wino2_output, wino4_output},
    .finish = finish,
    .maxpool = maxpool3x3s2,
    .bn_relu = bn_relu16,
    .to_bf16 = to_bf16,
    .l1_weights = 16 * 1024,
    .chunk_pixels = 128,
    .wino_slice = 192 * 1024,
};

#endif
