/* AVX2 INT8 micro-kernels (core/engine/kernels.h, docs/int8.md): x86-64
 * CPUs with AVX2 but without AVX-512 VNNI (AMD Zen 3, Intel Haswell to
 * Skylake client; also an AVX-512 CPU without VNNI, core/engine/cpu.c).
 *
 * Exact, as every table: AVX2 has no VPDPBUSD, and VPMADDUBSW (u8 x s8
 * pairs summed into int16) saturates (255 * 127 * 2 > 32767), which gives
 * bytes other than the C table's on some inputs. Every product here goes
 * through VPMADDWD (s16 x s16 pairs summed into int32): a pair is at most
 * 2 * 255 * 128 in magnitude, and the whole sum with its bias stays inside
 * int32 (rn_qconv_ok bounds it), so the sums are exact, in any order.
 *
 * Operands: the weights as rn_qconv_pack writes them for this table
 * (rn_qkernels.w16: int16, 4 vectors per group of 4 input channels): for
 * channels 0-7, lane 2o holds input 0 of channel o and lane 2o+1 input 2
 * (the even inputs), then the same for inputs 1 and 3 (the odd ones), then
 * channels 8-15. The pixel's 4 bytes, broadcast to every 32-bit lane
 * (VPBROADCASTD from memory, a load), split the same way (VPAND 0x00ff:
 * bytes 0 and 2; VPSRLW 8: bytes 1 and 3, zero-extended). Then
 * VPMADDWD(even x, even w) + VPMADDWD(odd x, odd w) is each of the 8
 * channels' 4-input sum in its own int32 lane: one accumulator per 8
 * channels, already in channel order. (Until the packing wrote int16, the
 * tiles split the shared int8 weights with 6 shifts per 4 input channels:
 * ResNet-50's convolutions, one thread, took 54.5 ms against 51.9 now.)
 *
 * Why this one, measured on AMD EPYC (Zen 4) running this AVX2 code, one
 * thread: VPMADDWD runs 2 a cycle; VPSHUFB and VPMOVSXBW share a pipe with
 * it (a madd + shuffle mix runs 3 instructions a cycle), shifts and logic
 * do not (madd + shift: 4 a cycle). The obvious formulation, 16 weight
 * bytes (4 channels x 4 inputs) sign-extended by VPMOVSXBW and the pixel's
 * 4 bytes zero-extended into every 64-bit lane by VPSHUFB, gives two
 * partial sums per channel (4 accumulators per pixel, 3-pixel tiles) and
 * spends its preparation on the madd pipe: 3x3 256->256 at 14x14 67 GMAC/s,
 * 3x3 64->64 at 56x56 65, 1x1 1024->256 at 14x14 58, the 7x7/2 stem 48;
 * this one 74, 76, 64 and 56 (medians, batch 8; the stem's 4th channel, the
 * image's padding, counted as no work). Widening the first one's input
 * pixels to int16 once per input block and tap row, so that every use is a
 * plain broadcast load, won 4% on the 3x3 64->64 and lost 20% on 1x1
 * convolutions (a buffer written and read back for 4 steps). Compiled from
 * intrinsics, this one with 2 output blocks x 2 pixels ran 1-5% behind
 * 1 block x 4 pixels (its weights split twice as often): nb 1 only. Not
 * measured on Intel, where the shifts share ports 0 and 1 with VPMADDWD and
 * the shuffles run on port 5: there the balance may favour the shuffles.
 *
 * Tile: R <= 4 output pixels of one row x 16 output channels: 8
 * accumulators, 4 weight registers (even and odd x two halves), the
 * pixel's even and odd halves and 2 products: the 16 ymm registers. Per 4
 * input channels: 4 weight loads, then per pixel a broadcast, 2 splitting
 * instructions, 4 VPMADDWD and 4 VPADDD: 40 vector operations besides the
 * loads for 256 multiply-adds, about 20-22 multiply-adds a cycle on Zen 4
 * where the VPMADDWD + VPADDD pair alone reaches 25 (32 for VPMADDWD
 * alone): within a fifth of what any exact VPMADDWD formulation can reach.
 * Beating FP32's Winograd 3x3 convolutions needs fewer multiplies, not
 * faster ones: the 3x3 stride-1 convolutions run as an integer Winograd
 * F(2x2, 3x3) (below), which gives the same sums.
 *
 * The epilogue is rn_requant's sequence in vector form: convert, multiply,
 * [residual: convert, multiply, add], clamp, round to nearest even
 * (VCVTPS2DQ in the default rounding mode), narrow to bytes with the
 * output's sign; separate multiply and add instructions (the build does not
 * contract them, -ffp-contract=off), so every table gives the same bytes.
 */
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Compiled for AVX2 whatever the build flags; core/engine/cpu.c decides at
 * run time whether it runs (rn_qkernels_get). */
#define AVX2 __attribute__((target("avx2,fma")))
#define NO_PTR_CHECK __attribute__((no_sanitize("pointer-overflow")))

static const uint16_t lo_bytes[16] __attribute__((aligned(32))) = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* One step of 4 input channels, in inline assembly: from intrinsics GCC 12
 * reassociated the adds of the unrolled loop (sums of products first),
 * hoisted the next step's loads and ran out of the 16 registers, spilling
 * accumulators to the stack inside the loop. The compiler allocates the 8
 * accumulators (ymm0-7); ymm8-15 are the step's: even and odd weights of
 * channels 0-7 (9, 8) and 8-15 (11, 10), the pixel's even and odd halves
 * (12, 13), products (14, 15). SPLIT_W only loads them now (the packing
 * split them). */
#define SPLIT_W                                                     \
    "vmovdqa %[w0], %%ymm9\n\t"                                     \
    "vmovdqa %[w1], %%ymm8\n\t"                                     \
    "vmovdqa %[w2], %%ymm11\n\t"                                    \
    "vmovdqa %[w3], %%ymm10\n\t"
/* pixel X into accumulators A0 (channels 0-7) and A1 (8-15) */
#define PIXEL(X, A0, A1)                                            \
    "vpbroadcastd %[" #X "], %%ymm12\n\t"                           \
    "vpsrlw $8, %%ymm12, %%ymm13\n\t"                               \
    "vpand %[lo], %%ymm12, %%ymm12\n\t"                             \
    "vpmaddwd %%ymm9, %%ymm12, %%ymm14\n\t"                         \
    "vpmaddwd %%ymm8, %%ymm13, %%ymm15\n\t"                         \
    "vpaddd %%ymm14, %" #A0 ", %" #A0 "\n\t"                        \
    "vpaddd %%ymm15, %" #A0 ", %" #A0 "\n\t"                        \
    "vpmaddwd %%ymm11, %%ymm12, %%ymm12\n\t"                        \
    "vpmaddwd %%ymm10, %%ymm13, %%ymm13\n\t"                        \
    "vpaddd %%ymm12, %" #A1 ", %" #A1 "\n\t"                        \
    "vpaddd %%ymm13, %" #A1 ", %" #A1 "\n\t"
#define STEP_OPERANDS                                                                               \
    : "+x"(acc[0][0]), "+x"(acc[0][1]), "+x"(acc[1][0]), "+x"(acc[1][1]), "+x"(acc[2][0]),          \
      "+x"(acc[2][1]), "+x"(acc[3][0]), "+x"(acc[3][1])                                             \
    : [x0] "m"(*(const uint32_t *)(const void *)x0), [x1] "m"(*(const uint32_t *)(const void *)x1), \
      [x2] "m"(*(const uint32_t *)(const void *)x2), [x3] "m"(*(const uint32_t *)(const void *)x3), \
      [w0] "m"(*(const __m256i *)(const void *)w), [w1] "m"(*(const __m256i *)(const void *)(w + 16)), \
      [w2] "m"(*(const __m256i *)(const void *)(w + 32)),                                           \
      [w3] "m"(*(const __m256i *)(const void *)(w + 48)),                                           \
      [lo] "m"(*(const __m256i *)(const void *)lo_bytes)                                            \
    : "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* acc[r] += the 4 input channels at x + r * XS (r < R) times the 16
 * channels' weights at w (64 int16, 64-byte aligned) */
static inline AVX2 NO_PTR_CHECK __attribute__((always_inline)) void
step(__m256i acc[4][2], const uint8_t *x, const int16_t *w, const int R, const int XS)
{
    const uint8_t *x0 = x, *x1 = R > 1 ? x + XS : x, *x2 = R > 2 ? x + 2 * XS : x,
                  *x3 = R > 3 ? x + 3 * XS : x;
    if (R == 4)
        __asm__(SPLIT_W PIXEL(x0, 0, 1) PIXEL(x1, 2, 3) PIXEL(x2, 4, 5) PIXEL(x3, 6, 7) STEP_OPERANDS);
    else if (R == 3)
        __asm__(SPLIT_W PIXEL(x0, 0, 1) PIXEL(x1, 2, 3) PIXEL(x2, 4, 5) STEP_OPERANDS);
    else if (R == 2)
        __asm__(SPLIT_W PIXEL(x0, 0, 1) PIXEL(x1, 2, 3) STEP_OPERANDS);
    else
        __asm__(SPLIT_W PIXEL(x0, 0, 1) STEP_OPERANDS);
}

/* One pixel's 16 int32 sums (channels 0-7 in a0, 8-15 in a1) requantized
 * into its 16 bytes at out; res: the residual's 16 bytes, or NULL. */
static inline AVX2 __attribute__((always_inline)) void requant16(const rn_qtile *t, __m256i a0, __m256i a1,
                                                                 __m256 m0, __m256 m1, __m256 lo, __m256 hi,
                                                                 const uint8_t *res, uint8_t *out)
{
    __m256 y0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), m0);
    __m256 y1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), m1);
    if (res) {
        __m128i rb = _mm_loadu_si128((const __m128i *)(const void *)res);
        __m256i r0, r1;
        if (t->res_s8) {
            r0 = _mm256_cvtepi8_epi32(rb);
            r1 = _mm256_cvtepi8_epi32(_mm_srli_si128(rb, 8));
        } else {
            r0 = _mm256_cvtepu8_epi32(rb);
            r1 = _mm256_cvtepu8_epi32(_mm_srli_si128(rb, 8));
        }
        __m256 rmul = _mm256_set1_ps(t->rmul);
        __m256i zr = _mm256_set1_epi32(t->zres);
        r0 = _mm256_sub_epi32(r0, zr);
        r1 = _mm256_sub_epi32(r1, zr);
        y0 = _mm256_add_ps(y0, _mm256_mul_ps(_mm256_cvtepi32_ps(r0), rmul));
        y1 = _mm256_add_ps(y1, _mm256_mul_ps(_mm256_cvtepi32_ps(r1), rmul));
    }
    y0 = _mm256_min_ps(_mm256_max_ps(y0, lo), hi);
    y1 = _mm256_min_ps(_mm256_max_ps(y1, lo), hi);
    /* clamped, so no pack saturates; VPACKSSDW works within 128-bit lanes
     * (channels 0-3 8-11 | 4-7 12-15), VPERMQ puts them back in order */
    __m256i zo = _mm256_set1_epi32(t->relu ? 0 : t->zout);
    __m256i q0 = _mm256_add_epi32(_mm256_cvtps_epi32(y0), zo), q1 = _mm256_add_epi32(_mm256_cvtps_epi32(y1), zo);
    __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
    __m128i pl = _mm256_castsi256_si128(p), ph = _mm256_extracti128_si256(p, 1);
    __m128i b = t->relu ? _mm_packus_epi16(pl, ph) : _mm_packs_epi16(pl, ph);
    _mm_storeu_si128((__m128i *)(void *)out, b);
}

/* R pixels (<= 4) of stride S, CP bytes per input pixel (16, or 4 for the
 * stem's NHWC4 image), one output block. */
static inline AVX2 NO_PTR_CHECK __attribute__((always_inline)) void qtile(const rn_qtile *t, const int R,
                                                                          const int S, const int CP)
{
    __m256i acc[4][2];
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)t->bias);
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(t->bias + 8));
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        acc[r][0] = b0;
        acc[r][1] = b1;
    }
    const int taps = t->kh * t->kw;
    for (int ib = 0; ib < t->ib_n; ib++) {
        const uint8_t *in = t->in + ib * t->in_ib;
        const int16_t *w = (const int16_t *)(const void *)t->w + (size_t)ib * taps * CP * 16;
        for (int ky = 0; ky < t->kh; ky++)
            for (int kx = 0; kx < t->kw; kx++) {
                const uint8_t *ip = in + ky * t->irow + kx * CP;
                const int16_t *wk = w + (ky * t->kw + kx) * CP * 16;
#pragma GCC unroll 4
                for (int c4 = 0; c4 < CP / 4; c4++)
                    step(acc, ip + c4 * 4, wk + c4 * 64, R, S * CP);
            }
    }
    const __m256 lo = _mm256_set1_ps(t->relu ? 0.0f : (float)(-128 - t->zout));
    const __m256 hi = _mm256_set1_ps(t->relu ? 255.0f : (float)(127 - t->zout));
    const __m256 m0 = _mm256_loadu_ps(t->mult), m1 = _mm256_loadu_ps(t->mult + 8);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        requant16(t, acc[r][0], acc[r][1], m0, m1, lo, hi, t->res ? t->res + r * 16 : NULL, t->out + r * 16);
}

/* Instances of 4, 3, 2 and 1 pixels; a width r runs as 4-pixel tiles from
 * the left and the rest as 3 + 2 (5), 3 + 3 (6), 3 or 2: a 1-pixel tile,
 * which splits every weight for one pixel, only for a row of 1. Any cut
 * gives the same bytes. */
#define QTILE_FN(name, S, CP)                                                \
    static AVX2 void name(const rn_qtile *t, int r)                          \
    {                                                                        \
        rn_qtile u = *t;                                                     \
        while (r > 0) {                                                      \
            int w = r >= 4 && r != 5 && r != 6 ? 4 : r >= 3 ? 3 : r;         \
            switch (w) {                                                     \
            case 4: qtile(&u, 4, S, CP); break;                              \
            case 3: qtile(&u, 3, S, CP); break;                              \
            case 2: qtile(&u, 2, S, CP); break;                              \
            default: qtile(&u, 1, S, CP); break;                             \
            }                                                                \
            u.in += (size_t)w * S * CP;                                      \
            u.out += (size_t)w * 16;                                         \
            if (u.res)                                                       \
                u.res += (size_t)w * 16;                                     \
            r -= w;                                                          \
        }                                                                    \
    }

QTILE_FN(qtile_s1, 1, 16)
QTILE_FN(qtile_s2, 2, 16)
QTILE_FN(qtile_s1_nhwc4, 1, 4)
QTILE_FN(qtile_s2_nhwc4, 2, 4)

/* ---- Winograd F(2x2, 3x3) on the integers ----
 * A 3x3 convolution's 9 multiplies per output and input channel become 4
 * (16 per 2x2 tile), which is what limits this table: VPMADDWD. Every step
 * is an integer one, so the result is the direct convolution's to the bit:
 * V = B^T d B of u8 pixels (B^T's entries 0 and +-1) lies in -1020..1020, an
 * int16; the weights come doubled, U' = (2G) g (2G)^T = 4 U, |U'| <= 1143
 * (rn_qconv_pack); their products, summed over the input channels in int32,
 * and Y = A^T M A (A's entries 0 and +-1) give 4 x the direct sum exactly,
 * for integer adds are exact modulo 2^32 and rn_qconv_wino_ok keeps 4 x any
 * true sum inside int32 (a partial sum may wrap: the total comes back).
 * Then Y >> 2 (exact: a multiple of 4), the bias, and rn_requant's epilogue.
 *
 * V is stored per position, input block and tile: 16 channels of int16
 * (32 bytes), so that one VPBROADCASTD gives a tile's pair of input
 * channels to VPMADDWD against 8 output channels x that pair of U'.
 * Per pair: 2 weight loads for R tiles, R broadcasts, 2R VPMADDWD and 2R
 * VPADDD for 32R multiply-adds; the direct tile (above) spends 4 VPMADDWD
 * and 6 other operations on 64 of them, and 9/4 times as many of them. */

#define WINO_R 6 /* tiles per register block: 12 accumulators, 2 weights, 2 temporaries */

/* acc (channels 0-7, 8-15) += the pair of V at x times the pair's U' (w0, w1).
 * In inline assembly for the reason step() is: from intrinsics GCC 12 ran
 * every product of an unrolled loop first and spilled them. */
#define WINO_PAIR(A0, A1, X)                                                            \
    __asm__("vpbroadcastd %[x], %%ymm15\n\t"                                             \
            "vpmaddwd %[w0], %%ymm15, %%ymm14\n\t"                                       \
            "vpmaddwd %[w1], %%ymm15, %%ymm15\n\t"                                       \
            "vpaddd %%ymm14, %[a0], %[a0]\n\t"                                           \
            "vpaddd %%ymm15, %[a1], %[a1]\n\t"                                           \
            : [a0] "+x"(A0), [a1] "+x"(A1)                                                \
            : [w0] "x"(w0), [w1] "x"(w1), [x] "m"(*(const int32_t *)(const void *)(X))   \
            : "xmm14", "xmm15")

/* M[tl + r] (r < R) = the sum over input blocks and channels of V x U'
 * at one position: tiles' V at v (ib_stride int16 between input blocks),
 * U' at u (256 int16 per input block). */
static inline AVX2 NO_PTR_CHECK __attribute__((always_inline)) void
wino_gemm(const int16_t *v, size_t ib_stride, const int16_t *u, int ib_n, int32_t *m, const int R)
{
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
            a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    for (int ib = 0; ib < ib_n; ib++) {
        const int16_t *x = v + ib * ib_stride, *w = u + ib * 256;
        for (int cp = 0; cp < 8; cp++) {
            __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)(w + cp * 32));
            __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(w + cp * 32 + 16));
            const int16_t *xp = x + cp * 2;
            WINO_PAIR(a00, a01, xp);
            if (R > 1)
                WINO_PAIR(a10, a11, xp + 16);
            if (R > 2)
                WINO_PAIR(a20, a21, xp + 32);
            if (R > 3)
                WINO_PAIR(a30, a31, xp + 48);
            if (R > 4)
                WINO_PAIR(a40, a41, xp + 64);
            if (R > 5)
                WINO_PAIR(a50, a51, xp + 80);
        }
    }
    __m256i acc[WINO_R][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        _mm256_store_si256((__m256i *)(void *)(m + r * 16), acc[r][0]);
        _mm256_store_si256((__m256i *)(void *)(m + r * 16 + 8), acc[r][1]);
    }
}

/* V of tiles [ty0, ty1) x [0, tw) of image img: for each input block and
 * tile, the 4 x 4 pixels (16 channels widened to int16) through B^T . B,
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static AVX2 NO_PTR_CHECK void wino_input(const rn_qwino *j, int img, int ty0, int ty1, int16_t *V)
{
    int tw = j->tw, tc = (ty1 - ty0) * tw;
    const int ylast = j->h + 2 * RN_QB - 1, xlast = j->w + 2 * RN_QB - 1; /* bordered plane */
    for (int ib = 0; ib < j->ib_n; ib++) {
        const uint8_t *plane = j->a->in + ((size_t)img * j->ib_n + ib) * j->in_plane;
        for (int ty = ty0; ty < ty1; ty++)
            for (int tx = 0; tx < tw; tx++) {
                __m256i t[4][4]; /* B^T d: [row of B^T][column] */
                for (int dx = 0; dx < 4; dx++) {
                    __m256i d[4];
                    int xb = 2 * tx + dx;
                    for (int dy = 0; dy < 4; dy++) {
                        int yb = 2 * ty + dy;
                        d[dy] = yb <= ylast && xb <= xlast
                                    ? _mm256_cvtepu8_epi16(_mm_loadu_si128(
                                          (const __m128i *)(const void *)(plane + (size_t)yb * j->in_row +
                                                                          (size_t)xb * 16)))
                                    : _mm256_setzero_si256();
                    }
                    t[0][dx] = _mm256_sub_epi16(d[0], d[2]);
                    t[1][dx] = _mm256_add_epi16(d[1], d[2]);
                    t[2][dx] = _mm256_sub_epi16(d[2], d[1]);
                    t[3][dx] = _mm256_sub_epi16(d[1], d[3]);
                }
                int16_t *v = V + ((size_t)ib * tc + (size_t)(ty - ty0) * tw + tx) * 16;
                for (int a = 0; a < 4; a++) {
                    __m256i r[4] = {_mm256_sub_epi16(t[a][0], t[a][2]), _mm256_add_epi16(t[a][1], t[a][2]),
                                    _mm256_sub_epi16(t[a][2], t[a][1]), _mm256_sub_epi16(t[a][1], t[a][3])};
                    for (int b = 0; b < 4; b++)
                        _mm256_store_si256((__m256i *)(void *)(v + (size_t)(a * 4 + b) * j->vp), r[b]);
                }
            }
    }
}

static AVX2 NO_PTR_CHECK void qwino(const rn_qwino *j, int img, int ty0, int ty1, int ob0, int ob1,
                                    void *scratch)
{
    const rn_qconv_args *a = j->a;
    const rn_conv *c = a->c;
    int tw = j->tw, tc = (ty1 - ty0) * tw;
    int16_t *V = scratch;
    int32_t *M = (int32_t *)(void *)(V + 16 * j->vp);
    wino_input(j, img, ty0, ty1, V);
    rn_qtile t = {.rmul = c->rq, .res_s8 = a->res_s8, .relu = a->relu, .zres = a->res_zp, .zout = c->out_zp};
    const __m256 lo = _mm256_set1_ps(a->relu ? 0.0f : (float)(-128 - c->out_zp));
    const __m256 hi = _mm256_set1_ps(a->relu ? 255.0f : (float)(127 - c->out_zp));
    size_t u_pos = (size_t)j->ob_n * j->ib_n * 256;
    for (int ob = ob0; ob < ob1; ob++) {
        for (int p = 0; p < 16; p++) {
            const int16_t *u = c->qwu + p * u_pos + (size_t)ob * j->ib_n * 256;
            const int16_t *v = V + p * j->vp;
            int32_t *m = M + p * j->mp;
            int tl = 0;
            for (; tl + WINO_R <= tc; tl += WINO_R)
                wino_gemm(v + tl * 16, (size_t)tc * 16, u, j->ib_n, m + tl * 16, WINO_R);
            switch (tc - tl) {
            case 5: wino_gemm(v + tl * 16, (size_t)tc * 16, u, j->ib_n, m + tl * 16, 5); break;
            case 4: wino_gemm(v + tl * 16, (size_t)tc * 16, u, j->ib_n, m + tl * 16, 4); break;
            case 3: wino_gemm(v + tl * 16, (size_t)tc * 16, u, j->ib_n, m + tl * 16, 3); break;
            case 2: wino_gemm(v + tl * 16, (size_t)tc * 16, u, j->ib_n, m + tl * 16, 2); break;
            case 1: wino_gemm(v + tl * 16, (size_t)tc * 16, u, j->ib_n, m + tl * 16, 1); break;
            default: break;
            }
        }
        /* Y = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1], then requantized */
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)(c->bq + ob * 16));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(c->bq + ob * 16 + 8));
        const __m256 m0 = _mm256_loadu_ps(c->mq + ob * 16), m1 = _mm256_loadu_ps(c->mq + ob * 16 + 8);
        size_t plane = ((size_t)img * j->ob_n + ob) * j->out_plane;
        uint8_t *out = (uint8_t *)a->out + plane;
        const uint8_t *res = a->res ? (const uint8_t *)a->res + plane : NULL;
        for (int ty = ty0; ty < ty1; ty++)
            for (int tx = 0; tx < tw; tx++) {
                const int32_t *mt = M + ((size_t)(ty - ty0) * tw + tx) * 16;
                __m256i y[2][2][2]; /* [row][column][half] */
                for (int h = 0; h < 2; h++) {
                    __m256i s[2][4];
                    for (int x = 0; x < 4; x++) {
                        __m256i m_0 = _mm256_load_si256((const __m256i *)(const void *)(mt + (0 * 4 + x) * j->mp + h * 8));
                        __m256i m_1 = _mm256_load_si256((const __m256i *)(const void *)(mt + (1 * 4 + x) * j->mp + h * 8));
                        __m256i m_2 = _mm256_load_si256((const __m256i *)(const void *)(mt + (2 * 4 + x) * j->mp + h * 8));
                        __m256i m_3 = _mm256_load_si256((const __m256i *)(const void *)(mt + (3 * 4 + x) * j->mp + h * 8));
                        s[0][x] = _mm256_add_epi32(_mm256_add_epi32(m_0, m_1), m_2);
                        s[1][x] = _mm256_sub_epi32(_mm256_sub_epi32(m_1, m_2), m_3);
                    }
                    __m256i bias = h ? b1 : b0;
                    for (int r = 0; r < 2; r++) {
                        __m256i y0 = _mm256_add_epi32(_mm256_add_epi32(s[r][0], s[r][1]), s[r][2]);
                        __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(s[r][1], s[r][2]), s[r][3]);
                        y[r][0][h] = _mm256_add_epi32(_mm256_srai_epi32(y0, 2), bias);
                        y[r][1][h] = _mm256_add_epi32(_mm256_srai_epi32(y1, 2), bias);
                    }
                }
                for (int r = 0; r < 2; r++) {
                    int oy = 2 * ty + r;
                    if (oy >= j->h)
                        break;
                    for (int q = 0; q < 2; q++) {
                        int ox = 2 * tx + q;
                        if (ox >= j->w)
                            break;
                        size_t at = (size_t)(oy + RN_QB) * j->out_row + (size_t)(ox + RN_QB) * 16;
                        requant16(&t, y[r][q][0], y[r][q][1], m0, m1, lo, hi, res ? res + at : NULL, out + at);
                    }
                }
            }
        rn_qborder(out, j->h, j->w, 2 * ty0, RN_MIN(j->h, 2 * ty1));
    }
}

const rn_qkernels rn_qkernels_avx2 = {
    .name = "avx2",
    .isa = RN_ISA_AVX2,
    .tile = {
        [RN_QIN_C16] = {{qtile_s1}, {qtile_s2}},
        [RN_QIN_NHWC4] = {{qtile_s1_nhwc4}, {qtile_s2_nhwc4}},
    },
    /* whole rows (the tile cuts them), so a row never ends in a 1-pixel
     * remainder the driver made */
    .rmax = {1024, 0, 0},
    .chunk_pixels = 256,
    .w16 = 1,
    .wino = qwino,
};

#endif
