/* AVX-512 VNNI INT8 micro-kernels (core/engine/kernels.h, docs/int8.md).
 *
 * Tile: R output pixels of one row times NB blocks of 16 output channels,
 * R x NB int32 accumulators in zmm registers (R <= 14, NB <= 2: 28
 * accumulators, NB weight vectors, one broadcast). Per tap and group of 4
 * input channels it loads NB weight vectors (16 output channels x 4 input
 * channels of int8, packed by rn_qconv_pack) and, per pixel, broadcasts the
 * pixel's 4 input bytes as one 32-bit value into VPDPBUSD, which adds the 4
 * products u8 x s8 of each lane to its int32: 64 multiply-adds an
 * instruction, against FP32's 16 per FMA. The sums are exact, so their order
 * is free; the epilogue is rn_requant's sequence in vector form: convert,
 * multiply, [residual: convert, multiply, add], clamp, round to nearest even
 * (VCVTPS2DQ in the default rounding mode), narrow to bytes, 4 pixels at a
 * time (store4; a ReLU's clamp below 0 is the narrowing's saturation). Separate
 * multiply and add instructions: the build does not contract them
 * (-ffp-contract=off), so every table gives the same bytes.
 *
 * Instances: R of 14, 7, 4, 2 and 1 pixels for each (input kind, stride,
 * NB); any other width runs as a sum of those, which changes no result.
 */
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Compiled for AVX-512 VNNI whatever the build flags; core/engine/cpu.c
 * decides at run time whether it runs (rn_qkernels_get). */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#define NO_PTR_CHECK __attribute__((no_sanitize("pointer-overflow")))

/* The 4 bytes at p in every lane (VPBROADCASTD from memory), as inline
 * assembly: from _mm512_set1_epi32 GCC 12 loaded each value into a general
 * register, spilled it to the stack and broadcast it from there, and ran
 * ResNet-50's 1x1 convolutions at half the VNNI peak. */
/* acc += the dot products of 4 u8 of x and 4 s8 of w in each lane
 * (VPDPBUSD), as inline assembly with the accumulator read and written in
 * place: from the intrinsic GCC 12 copied every accumulator into another
 * register and back around each VPDPBUSD of a loop (two moves an
 * instruction on the 7-pixel tiles). */
static inline VNNI __m512i dpbusd(__m512i acc, __m512i x, __m512i w)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
    return acc;
}

static inline VNNI __m512i bcast4(const uint8_t *p)
{
    __m512i r;
    __asm__("vpbroadcastd %1, %0" : "=v"(r) : "m"(*(const int32_t *)(const void *)p));
    return r;
}

/* y = f32(acc) * m [+ f32(res - zres) * R] for pixel r of res (or none). */
static inline VNNI __attribute__((always_inline)) __m512 requant_y(__m512i acc, __m512 m, const uint8_t *res,
                                                                   int r, const rn_qtile *t, int zres)
{
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), m);
    if (res) {
        __m128i rb = _mm_loadu_si128((const __m128i *)(const void *)(res + r * 16));
        __m512i ri = t->res_s8 ? _mm512_cvtepi8_epi32(rb) : _mm512_cvtepu8_epi32(rb);
        if (zres)
            ri = _mm512_sub_epi32(ri, _mm512_set1_epi32(t->zres));
        y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(ri), _mm512_set1_ps(t->rmul)));
    }
    return y;
}

/* ReLU (zres 0): rint(min(y, 255)) as int32; what is below 0 the unsigned
 * saturation of store4 makes 0, the same as clamping first (the bounds are
 * integers); the min keeps a y beyond int32 from converting to INT_MIN. */
static inline VNNI __attribute__((always_inline)) __m512i requant_relu(__m512i acc, __m512 m, const uint8_t *res,
                                                                       int r, const rn_qtile *t)
{
    __m512 y = requant_y(acc, m, res, r, t, 0);
    return _mm512_cvtps_epi32(_mm512_min_ps(y, _mm512_set1_ps(255.0f)));
}

/* Any output: rint(clamp(y, lo, hi)) [+ zout], within the output's range. */
static inline VNNI __attribute__((always_inline)) __m512i requant_any(__m512i acc, __m512 m, const uint8_t *res,
                                                                      int r, const rn_qtile *t)
{
    __m512 y = requant_y(acc, m, res, r, t, 1);
    const int zout = t->relu ? 0 : t->zout;
    const __m512 lo = _mm512_set1_ps(t->relu ? 0.0f : (float)(-128 - zout));
    const __m512 hi = _mm512_set1_ps(t->relu ? 255.0f : (float)(127 - zout));
    y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
    return _mm512_add_epi32(_mm512_cvtps_epi32(y), _mm512_set1_epi32(zout));
}

/* n (1..4) pixels' 16 int32 each, q0..q3, narrowed to bytes (unsigned, or
 * signed saturation: u8) and stored at out, 16 bytes a pixel: two packs
 * (within 128-bit lanes: lane j holds channels 4j..4j+3 of q0, q1, q2, q3)
 * and a transpose of the 4 x 4 dwords, instead of a VPMOVDB a pixel. */
static inline VNNI __attribute__((always_inline)) void store4(uint8_t *out, int n, int u8, __m512i q0, __m512i q1,
                                                              __m512i q2, __m512i q3)
{
    const __m512i tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i p;
    if (u8)
        p = _mm512_packus_epi16(_mm512_packus_epi32(q0, q1), _mm512_packus_epi32(q2, q3));
    else
        p = _mm512_packs_epi16(_mm512_packs_epi32(q0, q1), _mm512_packs_epi32(q2, q3));
    p = _mm512_permutexvar_epi32(tr, p);
    if (n == 4)
        _mm512_storeu_si512((void *)out, p);
    else
        _mm512_mask_storeu_epi32((void *)out, (__mmask16)((1u << (n * 4)) - 1), p);
}

static inline VNNI NO_PTR_CHECK __attribute__((always_inline)) void
qtile(const rn_qtile *t, const int R, const int NB, const int S, const int CP)
{
    __m512i acc[14][2];
#pragma GCC unroll 2
    for (int b = 0; b < NB; b++) {
        __m512i bias = _mm512_loadu_si512(t->bias + b * 16);
#pragma GCC unroll 14
        for (int r = 0; r < R; r++)
            acc[r][b] = bias;
    }
    const int taps = t->kh * t->kw;
    for (int ib = 0; ib < t->ib_n; ib++) {
        const uint8_t *in = t->in + ib * t->in_ib;
        const int8_t *w = t->w + (size_t)ib * taps * CP * 16;
        for (int ky = 0; ky < t->kh; ky++)
            for (int kx = 0; kx < t->kw; kx++) {
                const uint8_t *ip = in + ky * t->irow + kx * CP;
                const int8_t *wk = w + (ky * t->kw + kx) * CP * 16;
#pragma GCC unroll 4
                for (int c4 = 0; c4 < CP / 4; c4++) {
                    __m512i wv[2];
#pragma GCC unroll 2
                    for (int b = 0; b < NB; b++)
                        wv[b] = _mm512_load_si512(wk + b * t->w_ob + c4 * 64);
#pragma GCC unroll 14
                    for (int r = 0; r < R; r++) {
                        __m512i x = bcast4(ip + r * S * CP + c4 * 4);
#pragma GCC unroll 2
                        for (int b = 0; b < NB; b++)
                            acc[r][b] = dpbusd(acc[r][b], x, wv[b]);
                    }
                }
            }
    }
    /* the epilogue: 4 pixels at a time (the last group may be short) */
    const __m512 m[2] = {_mm512_loadu_ps(t->mult), NB > 1 ? _mm512_loadu_ps(t->mult + 16) : _mm512_setzero_ps()};
#pragma GCC unroll 2
    for (int b = 0; b < NB; b++) {
        uint8_t *out = t->out + b * t->out_ob;
        const uint8_t *res = t->res ? t->res + b * t->out_ob : NULL;
        if (t->relu && t->zres == 0) {
            /* ReLU, and a residual (if any) without a zero point to take away */
#pragma GCC unroll 4
            for (int r0 = 0; r0 < R; r0 += 4)
                store4(out + r0 * 16, R - r0 < 4 ? R - r0 : 4, 1,
                       requant_relu(acc[r0][b], m[b], res, r0, t),
                       requant_relu(acc[r0 + 1 < R ? r0 + 1 : r0][b], m[b], res, r0 + 1 < R ? r0 + 1 : r0, t),
                       requant_relu(acc[r0 + 2 < R ? r0 + 2 : r0][b], m[b], res, r0 + 2 < R ? r0 + 2 : r0, t),
                       requant_relu(acc[r0 + 3 < R ? r0 + 3 : r0][b], m[b], res, r0 + 3 < R ? r0 + 3 : r0, t));
        } else {
#pragma GCC unroll 4
            for (int r0 = 0; r0 < R; r0 += 4)
                store4(out + r0 * 16, R - r0 < 4 ? R - r0 : 4, t->relu,
                       requant_any(acc[r0][b], m[b], res, r0, t),
                       requant_any(acc[r0 + 1 < R ? r0 + 1 : r0][b], m[b], res, r0 + 1 < R ? r0 + 1 : r0, t),
                       requant_any(acc[r0 + 2 < R ? r0 + 2 : r0][b], m[b], res, r0 + 2 < R ? r0 + 2 : r0, t),
                       requant_any(acc[r0 + 3 < R ? r0 + 3 : r0][b], m[b], res, r0 + 3 < R ? r0 + 3 : r0, t));
        }
    }
}

/* One instance per width in 14, 7, 4, 2, 1; a width r runs as the widest
 * instances that fit, from the left. */
#define QTILE_FN(name, NB, S, CP)                                                          \
    static VNNI void name(const rn_qtile *t, int r)                                         \
    {                                                                                       \
        rn_qtile u = *t;                                                                    \
        while (r > 0) {                                                                     \
            int w = r >= 14 ? 14 : r >= 7 ? 7 : r >= 4 ? 4 : r >= 2 ? 2 : 1;                \
            switch (w) {                                                                    \
            case 14: qtile(&u, 14, NB, S, CP); break;                                       \
            case 7: qtile(&u, 7, NB, S, CP); break;                                         \
            case 4: qtile(&u, 4, NB, S, CP); break;                                         \
            case 2: qtile(&u, 2, NB, S, CP); break;                                         \
            default: qtile(&u, 1, NB, S, CP); break;                                        \
            }                                                                               \
            u.in += (size_t)w * S * CP;                                                     \
            u.out += (size_t)w * 16;                                                        \
            if (u.res)                                                                      \
                u.res += (size_t)w * 16;                                                    \
            r -= w;                                                                         \
        }                                                                                   \
    }

QTILE_FN(qtile_1_s1, 1, 1, 16)
QTILE_FN(qtile_1_s2, 1, 2, 16)
QTILE_FN(qtile_2_s1, 2, 1, 16)
QTILE_FN(qtile_2_s2, 2, 2, 16)
QTILE_FN(qtile_1_s1_nhwc4, 1, 1, 4)
QTILE_FN(qtile_1_s2_nhwc4, 1, 2, 4)
QTILE_FN(qtile_2_s1_nhwc4, 2, 1, 4)
QTILE_FN(qtile_2_s2_nhwc4, 2, 2, 4)

const rn_qkernels rn_qkernels_avx512 = {
    .name = "avx512-vnni",
    .isa = RN_ISA_AVX512,
    .tile = {
        [RN_QIN_C16] = {{qtile_1_s1, qtile_2_s1}, {qtile_1_s2, qtile_2_s2}},
        [RN_QIN_NHWC4] = {{qtile_1_s1_nhwc4, qtile_2_s1_nhwc4}, {qtile_1_s2_nhwc4, qtile_2_s2_nhwc4}},
    },
    .rmax = {14, 14, 0},
    .chunk_pixels = 256,
};

#endif
