/* The resize's passes (resize.h) with AVX2 and AVX-512: the same integer sums
 * as resize.c's C, lane by lane, so the same bytes out.
 *
 * Horizontal: one output pixel at a time, its taps in chunks of whole RGB
 * pixels spread over 32-bit lanes (AVX-512: 5 pixels in lanes 0..14 from one
 * masked 15-byte load; AVX2: 2 pixels in lanes 0..5 from a 6-byte load),
 * multiplied by the taps' coefficients laid out the same way (an expanded
 * copy of the axis, built per call), then the lanes of each channel summed.
 * No byte outside the taps is read, as in the C passes.
 * Vertical: 64 (AVX-512) or 32 (AVX2) bytes of a row at a time, every tap's
 * row times its broadcast coefficient. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "resize.h"

#define AVX2 __attribute__((target("avx2")))
#define AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512dq,avx512vl")))
#define BITS RN_RESIZE_PRECISION_BITS

/* The coefficients of each output pixel in chunks of `lanes` int32, `per`
 * pixels a chunk: lane 3 * (t % per) + c of chunk t / per holds k[t] for
 * every channel c, every other lane 0. */
static int32_t *expand(const rn_resize_axis *ax, int cw, int per, int lanes, int *nch)
{
    *nch = (ax->ksize + per - 1) / per;
    size_t bytes = (size_t)cw * *nch * lanes * sizeof(int32_t);
    int32_t *kx = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!kx)
        return NULL;
    memset(kx, 0, bytes);
    for (int xx = 0; xx < cw; xx++) {
        const int32_t *k = ax->k + (size_t)xx * ax->ksize;
        int32_t *o = kx + (size_t)xx * *nch * lanes;
        for (int t = 0; t < ax->n[xx]; t++)
            for (int c = 0; c < 3; c++)
                o[(t / per) * lanes + (t % per) * 3 + c] = k[t];
    }
    return kx;
}

static inline uint8_t clip8(int32_t ss)
{
    int32_t v = ss >> BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* ---- AVX2 ---------------------------------------------------------------- */

/* The n (1 or 2) RGB pixels at p in the low bytes: no byte past them is read
 * (a decode around the crop leaves the bytes past its margin unwritten). */
AVX2 static inline __m128i load_px(const uint8_t *p, int n)
{
    uint32_t a;
    uint16_t b;
    if (n >= 2) {
        memcpy(&a, p, 4);
        memcpy(&b, p + 4, 2);
        return _mm_insert_epi16(_mm_cvtsi32_si128((int)a), b, 2);
    }
    memcpy(&b, p, 2);
    return _mm_insert_epi8(_mm_cvtsi32_si128(b), p[2], 2);
}

AVX2 static int h_avx2(const uint8_t *src, size_t src_stride, int rows, const rn_resize_axis *ax,
                       int cw, uint8_t *dst, size_t dst_stride)
{
    int nch;
    int32_t *kx = expand(ax, cw, 2, 8, &nch);
    if (!kx)
        return -1;
    const __m256i bias = _mm256_setr_epi32(1 << (BITS - 1), 1 << (BITS - 1), 1 << (BITS - 1), 0,
                                           0, 0, 0, 0);
    const __m256i hi = _mm256_setr_epi32(3, 4, 5, 3, 4, 5, 3, 4);
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)y * src_stride;
        uint8_t *o = dst + (size_t)y * dst_stride;
        for (int xx = 0; xx < cw; xx++) {
            const uint8_t *p = in + (size_t)ax->first[xx] * 3;
            const __m256i *kk = (const __m256i *)(kx + (size_t)xx * nch * 8);
            __m256i acc = bias;
            for (int n = ax->n[xx]; n > 0; n -= 2, p += 6, kk++) {
                __m256i v = _mm256_cvtepu8_epi32(load_px(p, n));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, _mm256_load_si256(kk)));
            }
            acc = _mm256_add_epi32(acc, _mm256_permutevar8x32_epi32(acc, hi));
            __m128i r = _mm_srai_epi32(_mm256_castsi256_si128(acc), BITS);
            r = _mm_packus_epi16(_mm_packus_epi32(r, r), r);
            int32_t b = _mm_cvtsi128_si32(r);
            memcpy(o + (size_t)xx * 3, &b, 3);
        }
    }
    free(kx);
    return 0;
}

/* Eight int32 sums of a row -> eight bytes, as clip8. */
AVX2 static inline __m256i finish8(__m256i a)
{
    return _mm256_srai_epi32(a, BITS);
}

AVX2 static int v_avx2(const uint8_t *src, size_t src_stride, int row0, const rn_resize_axis *ax,
                       int ch, int bytes, uint8_t *dst, size_t dst_stride)
{
    const __m256i bias = _mm256_set1_epi32(1 << (BITS - 1));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int yy = 0; yy < ch; yy++) {
        const int32_t *k = ax->k + (size_t)yy * ax->ksize;
        const uint8_t *in = src + (size_t)(ax->first[yy] - row0) * src_stride;
        int n = ax->n[yy];
        uint8_t *o = dst + (size_t)yy * dst_stride;
        int x = 0;
        for (; x + 32 <= bytes; x += 32) {
            __m256i a0 = bias, a1 = bias, a2 = bias, a3 = bias;
            const uint8_t *p = in + x;
            for (int t = 0; t < n; t++, p += src_stride) {
                __m256i kv = _mm256_set1_epi32(k[t]);
                a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)), kv));
                a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8))), kv));
                a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 16))), kv));
                a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 24))), kv));
            }
            /* packs work within 128-bit halves: groups of 4 bytes come out
             * as a0lo a1lo a2lo a3lo a0hi a1hi a2hi a3hi */
            __m256i w01 = _mm256_packus_epi32(finish8(a0), finish8(a1));
            __m256i w23 = _mm256_packus_epi32(finish8(a2), finish8(a3));
            __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w01, w23), order);
            _mm256_storeu_si256((__m256i *)(o + x), b);
        }
        for (; x < bytes; x++) {
            int32_t s = 1 << (BITS - 1);
            const uint8_t *p = in + x;
            for (int t = 0; t < n; t++, p += src_stride)
                s += *p * k[t];
            o[x] = clip8(s);
        }
    }
    return 0;
}

const rn_resize_kernels rn_resize_avx2 = {"avx2", h_avx2, v_avx2};

/* ---- AVX-512 ------------------------------------------------------------- */

AVX512 static int h_avx512(const uint8_t *src, size_t src_stride, int rows,
                           const rn_resize_axis *ax, int cw, uint8_t *dst, size_t dst_stride)
{
    /* masked loads: no byte past the taps is read */
    int nch;
    int32_t *kx = expand(ax, cw, 5, 16, &nch);
    if (!kx)
        return -1;
    const __m512i bias = _mm512_maskz_set1_epi32(0x7, 1 << (BITS - 1));
    const __m512i zero = _mm512_setzero_si512();
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)y * src_stride;
        uint8_t *o = dst + (size_t)y * dst_stride;
        for (int xx = 0; xx < cw; xx++) {
            const uint8_t *p = in + (size_t)ax->first[xx] * 3;
            const __m512i *kk = (const __m512i *)(kx + (size_t)xx * nch * 16);
            __m512i acc = bias;
            for (int n = ax->n[xx]; n > 0; n -= 5, p += 15, kk++) {
                __mmask16 m = n >= 5 ? 0x7fff : (__mmask16)((1u << (3 * n)) - 1);
                __m512i v = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
                acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(v, _mm512_load_si512(kk)));
            }
            /* lane c + 3t holds tap t of channel c (t < 5; lane 15 is 0) */
            acc = _mm512_add_epi32(acc, _mm512_alignr_epi32(zero, acc, 3));
            acc = _mm512_add_epi32(acc, _mm512_alignr_epi32(zero, acc, 6));
            acc = _mm512_add_epi32(acc, _mm512_alignr_epi32(zero, acc, 12));
            __m128i r = _mm_srai_epi32(_mm512_castsi512_si128(acc), BITS);
            r = _mm_packus_epi16(_mm_packus_epi32(r, r), r);
            _mm_mask_storeu_epi8(o + (size_t)xx * 3, 0x7, r);
        }
    }
    free(kx);
    return 0;
}

/* Sixteen int32 sums -> sixteen bytes, as clip8. */
AVX512 static inline __m128i finish16(__m512i a)
{
    a = _mm512_max_epi32(_mm512_srai_epi32(a, BITS), _mm512_setzero_si512());
    return _mm512_cvtusepi32_epi8(a);
}

AVX512 static int v_avx512(const uint8_t *src, size_t src_stride, int row0,
                           const rn_resize_axis *ax, int ch, int bytes, uint8_t *dst,
                           size_t dst_stride)
{
    const __m512i bias = _mm512_set1_epi32(1 << (BITS - 1));
    for (int yy = 0; yy < ch; yy++) {
        const int32_t *k = ax->k + (size_t)yy * ax->ksize;
        const uint8_t *in = src + (size_t)(ax->first[yy] - row0) * src_stride;
        int n = ax->n[yy];
        uint8_t *o = dst + (size_t)yy * dst_stride;
        int x = 0;
        for (; x + 64 <= bytes; x += 64) {
            __m512i a0 = bias, a1 = bias, a2 = bias, a3 = bias;
            const uint8_t *p = in + x;
            for (int t = 0; t < n; t++, p += src_stride) {
                __m512i kv = _mm512_set1_epi32(k[t]);
                a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(
                    _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)), kv));
                a1 = _mm512_add_epi32(a1, _mm512_mullo_epi32(
                    _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 16))), kv));
                a2 = _mm512_add_epi32(a2, _mm512_mullo_epi32(
                    _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 32))), kv));
                a3 = _mm512_add_epi32(a3, _mm512_mullo_epi32(
                    _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 48))), kv));
            }
            _mm_storeu_si128((__m128i *)(o + x), finish16(a0));
            _mm_storeu_si128((__m128i *)(o + x + 16), finish16(a1));
            _mm_storeu_si128((__m128i *)(o + x + 32), finish16(a2));
            _mm_storeu_si128((__m128i *)(o + x + 48), finish16(a3));
        }
        for (; x < bytes; x += 16) {
            int left = bytes - x;
            __mmask16 m = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
            __m512i a = bias;
            const uint8_t *p = in + x;
            for (int t = 0; t < n; t++, p += src_stride)
                a = _mm512_add_epi32(a, _mm512_mullo_epi32(
                    _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)), _mm512_set1_epi32(k[t])));
            _mm_mask_storeu_epi8(o + x, m, finish16(a));
        }
    }
    return 0;
}

const rn_resize_kernels rn_resize_avx512 = {"avx512", h_avx512, v_avx512};

#else
typedef int rn_resize_x86_unused; /* ISO C: no empty translation unit */
#endif
