/* NEON (AArch64 Advanced SIMD) INT8 micro-kernels (core/engine/kernels.h,
 * docs/int8.md): two tables, chosen at run time by core/engine/cpu.c.
 *
 * rn_qkernels_neon_dot, for cores with the dot-product extension (ARMv8.2
 * FEAT_DotProd, asimddp: every Neoverse): UDOT adds the 4 products of 4 u8
 * pairs into each int32 lane, but it is u8 x u8 and SDOT s8 x s8, while the
 * convolutions are u8 input x s8 weights (USDOT, u8 x s8, is ARMv8.6 I8MM,
 * which fewer cores have). So the weights are made unsigned in registers,
 * w ^ 0x80 = w + 128 (0..255 for any s8), and the excess is taken back per
 * pixel:
 *
 *     sum x*w = sum x*(w + 128) - 128 * sum x
 *
 * where sum x runs over exactly the bytes the UDOTs read (taps, input
 * blocks, padding channels and border pixels included: those are 0, or the
 * stem's 128 beside zero weights, and cancel the same way). sum x does not
 * depend on the output channel: a pre-pass over the tile's input (one UDOT
 * against a vector of ones per pixel and tap: 1/16 of the main loop's
 * UDOTs, 1/4 on the stem's 4-byte pixels) gives it per pixel, and the
 * accumulators start at bias - 128 * sum x.
 * The alternative, SDOT on x ^ 0x80 = x - 128 plus 128 * sum w per output
 * channel, needs 4 more registers (or a pass over all the weights) per tile
 * and an extra SDOT per weight vector, where this needs one EOR per weight
 * vector, shared by the tile's pixels. Every step is an integer addition
 * modulo 2^32, and the exact sum fits int32 (as the C table's int32 sums
 * assume), so the result is that exact sum, bit for bit.
 *
 * rn_qkernels_neon, plain ARMv8.0 NEON: LD4 splits a group of 4 input
 * channels' weights (packed [o 16][i%4] for the dot products) into one
 * vector per input channel, SXTL widens them to s16, the input bytes are
 * widened with UXTL, and SMLAL/SMLAL2 by element add s16 x s16 products into
 * int32: exact, no compensation.
 *
 * Tiles: R pixels of one output row times one block of 16 output channels,
 * the 4R accumulators in q registers: R = 6 with dot products (24
 * accumulators, 4 weight vectors, the input's 4 bytes and the 0x80 mask:
 * 30 of the 32 registers), R = 4 plain (16 accumulators, 8 widened weight
 * vectors, LD4's 4 consecutive registers and the input, which SMLAL by
 * element wants in v0-v15: at R = 5 GCC 12 spilled accumulators in the
 * loop). Per tap and group of 4 input channels each pixel's 4 bytes are
 * loaded alone, so no register holds a pixel across groups.
 * Wider tiles run as the fewest instances of near-equal width (7 pixels:
 * 4 + 3, not 6 + 1, whose one pixel has too few independent accumulators
 * to hide the latency of its chain of dot products).
 *
 * The epilogue is rn_requant's sequence in vector form: SCVTF, FMUL,
 * [residual: widen, SCVTF, FMUL, FADD], FMAX/FMIN (rn_requant's comparisons
 * on finite values; they differ only on the sign of a zero, which rounds to
 * 0 either way), FCVTNS (round to nearest, ties to even, as rn_rint_small),
 * then a truncating narrow, exact for both u8 and s8 since the values are
 * already clamped. Separate multiply and add intrinsics (never FMLA: the
 * build also has -ffp-contract=off), so every table gives the same bytes.
 */
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))
/* The dot-product functions are compiled for ARMv8.2 dot products whatever
 * the build flags, so the file builds for the ARMv8.0 baseline; cpu.c
 * decides at run time which table runs (rn_qkernels_get). Not "+dotprod"
 * alone: GCC 12's arm_neon.h defines vdotq_* for "arch=armv8.2-a+dotprod",
 * and inlines them only into functions with at least that target (a core
 * with dot products implements ARMv8.2). */
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

#define RDOT 6   /* widest instance with dot products */
#define RPLAIN 4 /* widest plain instance */

/* The 4 bytes at p in the low 32-bit lane and zeros in the rest (LDR S
 * zeroes them; one load, the offset an immediate; p is 4-byte aligned).
 * Inline assembly: from memcpy and vdup_n_u32 GCC 12 loaded each value
 * into a general register, stored it on the stack, reloaded and duplicated
 * it. Volatile, which makes it a barrier GCC's scheduler moves nothing
 * across: the loops then run in the order written, one pixel's 4 bytes and
 * its 4 multiply-adds after another; otherwise GCC hoisted all of a tap's
 * 24 loads above the dot products and spilled accumulators to the stack. */
INLINE uint8x16_t load4(const uint8_t *p)
{
    uint8x16_t v;
    __asm__ volatile("ldr %s0, %1" : "=w"(v) : "m"(*(const uint32_t *)(const void *)p));
    return v;
}

/* The offset from t->in of the tap after (ky, kx): taps run in the order
 * of the packed weights (input block, tap row, tap column), so that one
 * loop walks them all with the weights consecutive, and the accumulators
 * stay in the same registers from the first tap to the last (around nested
 * loops GCC 12 moved all 24 from register to register at every row of
 * taps, and for a 1x1 at every input block). An integer, not a pointer:
 * after the last tap it is past the input. */
INLINE size_t next_tap(const rn_qtile *t, size_t off, int *ky, int *kx, const int CP)
{
    off += CP;
    if (++*kx == t->kw) {
        *kx = 0;
        off += (size_t)t->irow - (size_t)t->kw * CP;
        if (++*ky == t->kh) {
            *ky = 0;
            off += t->in_ib - (size_t)t->kh * t->irow;
        }
    }
    return off;
}

/* One pixel's 16 output channels: out = rn_requant(acc, mult, res, ...),
 * as in kern_int8_c.c. */
INLINE void requant16(const int32x4_t acc[4], const float *mult, const uint8_t *res, int res_s8,
                      int32x4_t zr, float32x4_t rmul, float32x4_t lo, float32x4_t hi, int32x4_t zo,
                      uint8_t *out)
{
    float32x4_t y[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++)
        y[q] = vmulq_f32(vcvtq_f32_s32(acc[q]), vld1q_f32(mult + 4 * q));
    if (res) {
        uint8x16_t rb = vld1q_u8(res);
        int16x8_t r16[2];
        if (res_s8) {
            r16[0] = vmovl_s8(vget_low_s8(vreinterpretq_s8_u8(rb)));
            r16[1] = vmovl_high_s8(vreinterpretq_s8_u8(rb));
        } else {
            r16[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(rb)));
            r16[1] = vreinterpretq_s16_u16(vmovl_high_u8(rb));
        }
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            int32x4_t ri = q % 2 ? vmovl_high_s16(r16[q / 2]) : vmovl_s16(vget_low_s16(r16[q / 2]));
            ri = vsubq_s32(ri, zr);
            y[q] = vaddq_f32(y[q], vmulq_f32(vcvtq_f32_s32(ri), rmul));
        }
    }
    int32x4_t n[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++)
        n[q] = vaddq_s32(vcvtnq_s32_f32(vminq_f32(vmaxq_f32(y[q], lo), hi)), zo);
    /* UZP1 keeps the low half of each lane: a truncating narrow, 8 lanes
     * an instruction */
    int16x8_t h0 = vuzp1q_s16(vreinterpretq_s16_s32(n[0]), vreinterpretq_s16_s32(n[1]));
    int16x8_t h1 = vuzp1q_s16(vreinterpretq_s16_s32(n[2]), vreinterpretq_s16_s32(n[3]));
    vst1q_u8(out, vuzp1q_u8(vreinterpretq_u8_s16(h0), vreinterpretq_u8_s16(h1)));
}

/* The epilogue of a tile of R pixels. */
INLINE void store(const rn_qtile *t, int32x4_t acc[][4], const int R)
{
    const int zout = t->relu ? 0 : t->zout;
    const float32x4_t lo = vdupq_n_f32(t->relu ? 0.0f : (float)(-128 - zout));
    const float32x4_t hi = vdupq_n_f32(t->relu ? 255.0f : (float)(127 - zout));
    const float32x4_t rmul = vdupq_n_f32(t->rmul);
    const int32x4_t zr = vdupq_n_s32(t->zres), zo = vdupq_n_s32(zout);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
        requant16(acc[r], t->mult, t->res ? t->res + r * 16 : NULL, t->res_s8, zr, rmul, lo, hi, zo,
                  t->out + r * 16);
}

/* ---- with dot products ---- */

/* The sum of the CP bytes at p, in a vector whose lanes add up to it. */
INLINE DOTPROD uint32x4_t sum_px(uint32x4_t s, const uint8_t *p, const int CP)
{
    const uint8x16_t ones = vdupq_n_u8(1);
    return vdotq_u32(s, CP == 16 ? vld1q_u8(p) : load4(p), ones);
}

INLINE DOTPROD void qtile_dot(const rn_qtile *t, const int R, const int S, const int CP)
{
    const int steps = t->ib_n * t->kh * t->kw;
    /* each pixel's sum of the input bytes it reads */
    uint32x4_t sx[RDOT];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
        sx[r] = vdupq_n_u32(0);
    size_t off = 0;
    for (int n = 0, ky = 0, kx = 0; n < steps; n++) {
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            sx[r] = sum_px(sx[r], t->in + off + r * S * CP, CP);
        off = next_tap(t, off, &ky, &kx, CP);
    }
    uint32x4_t acc[RDOT][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        uint32x4_t c = vdupq_n_u32(vaddvq_u32(sx[r]) << 7);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            acc[r][q] = vsubq_u32(vreinterpretq_u32_s32(vld1q_s32(t->bias + 4 * q)), c);
    }
    const uint8x16_t flip = vdupq_n_u8(0x80);
    const uint8_t *wk = (const uint8_t *)t->w;
    off = 0;
    for (int n = 0, ky = 0, kx = 0; n < steps; n++, wk += CP * 16) {
        const uint8_t *ip = t->in + off;
#pragma GCC unroll 4
        for (int c4 = 0; c4 < CP / 4; c4++) {
            uint8x16_t wv[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                wv[q] = veorq_u8(vld1q_u8(wk + c4 * 64 + 16 * q), flip);
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                uint8x16_t x = load4(ip + r * S * CP + c4 * 4);
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++)
                    acc[r][q] = vdotq_laneq_u32(acc[r][q], wv[q], x, 0);
            }
        }
        off = next_tap(t, off, &ky, &kx, CP);
    }
    int32x4_t a[RDOT][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            a[r][q] = vreinterpretq_s32_u32(acc[r][q]);
    store(t, a, R);
}

/* ---- plain ARMv8.0 ---- */

/* acc (one pixel's 16 output channels, int32) += one input channel's s16
 * weights (lo: outputs 0-7, hi: 8-15) times lane j of x. A macro: a lane
 * index must be a constant even where nothing is inlined or unrolled (-O0). */
#define MAC4(acc, lo, hi, x, j)                                        \
    do {                                                               \
        (acc)[0] = vmlal_lane_s16((acc)[0], vget_low_s16(lo), (x), j); \
        (acc)[1] = vmlal_high_lane_s16((acc)[1], (lo), (x), j);        \
        (acc)[2] = vmlal_lane_s16((acc)[2], vget_low_s16(hi), (x), j); \
        (acc)[3] = vmlal_high_lane_s16((acc)[3], (hi), (x), j);        \
    } while (0)

INLINE void qtile_plain(const rn_qtile *t, const int R, const int S, const int CP)
{
    const int steps = t->ib_n * t->kh * t->kw;
    int32x4_t acc[RPLAIN][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            acc[r][q] = vld1q_s32(t->bias + 4 * q);
    const int8_t *wk = t->w;
    size_t off = 0;
    for (int n = 0, ky = 0, kx = 0; n < steps; n++, wk += CP * 16) {
        const uint8_t *ip = t->in + off;
#pragma GCC unroll 4
        for (int c4 = 0; c4 < CP / 4; c4++) {
            /* wl.val[j]: input channel c4*4 + j's weights of the 16 output
             * channels; lo: outputs 0-7, hi: 8-15 */
            int8x16x4_t wl = vld4q_s8(wk + c4 * 64);
            int16x8_t lo[4], hi[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                lo[j] = vmovl_s8(vget_low_s8(wl.val[j]));
                hi[j] = vmovl_high_s8(wl.val[j]);
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                uint8x8_t xb = vget_low_u8(load4(ip + r * S * CP + c4 * 4));
                int16x4_t x = vreinterpret_s16_u16(vget_low_u16(vmovl_u8(xb)));
                MAC4(acc[r], lo[0], hi[0], x, 0);
                MAC4(acc[r], lo[1], hi[1], x, 1);
                MAC4(acc[r], lo[2], hi[2], x, 2);
                MAC4(acc[r], lo[3], hi[3], x, 3);
            }
        }
        off = next_tap(t, off, &ky, &kx, CP);
    }
    store(t, acc, R);
}

/* One instance per width up to RDOT or RPLAIN. */
INLINE DOTPROD void qtile_dot_w(const rn_qtile *t, int w, const int S, const int CP)
{
    switch (w) {
    case 6: qtile_dot(t, 6, S, CP); break;
    case 5: qtile_dot(t, 5, S, CP); break;
    case 4: qtile_dot(t, 4, S, CP); break;
    case 3: qtile_dot(t, 3, S, CP); break;
    case 2: qtile_dot(t, 2, S, CP); break;
    default: qtile_dot(t, 1, S, CP); break;
    }
}

INLINE void qtile_plain_w(const rn_qtile *t, int w, const int S, const int CP)
{
    switch (w) {
    case 4: qtile_plain(t, 4, S, CP); break;
    case 3: qtile_plain(t, 3, S, CP); break;
    case 2: qtile_plain(t, 2, S, CP); break;
    default: qtile_plain(t, 1, S, CP); break;
    }
}

/* A tile r pixels wide as the fewest instances of at most RW pixels, of
 * near-equal widths, widest first. */
#define QTILE_FN(name, ATTR, RW, KERNEL_W, S, CP)                               \
    static ATTR void name(const rn_qtile *t, int r)                             \
    {                                                                           \
        rn_qtile u = *t;                                                        \
        for (int n = (r + RW - 1) / RW; n > 0; n--) {                           \
            int w = (r + n - 1) / n;                                            \
            KERNEL_W(&u, w, S, CP);                                             \
            u.in += (size_t)w * S * CP;                                         \
            u.out += (size_t)w * 16;                                            \
            if (u.res)                                                          \
                u.res += (size_t)w * 16;                                        \
            r -= w;                                                             \
        }                                                                       \
    }

QTILE_FN(dot_s1, DOTPROD, RDOT, qtile_dot_w, 1, 16)
QTILE_FN(dot_s2, DOTPROD, RDOT, qtile_dot_w, 2, 16)
QTILE_FN(dot_s1_nhwc4, DOTPROD, RDOT, qtile_dot_w, 1, 4)
QTILE_FN(dot_s2_nhwc4, DOTPROD, RDOT, qtile_dot_w, 2, 4)
QTILE_FN(plain_s1, , RPLAIN, qtile_plain_w, 1, 16)
QTILE_FN(plain_s2, , RPLAIN, qtile_plain_w, 2, 16)
QTILE_FN(plain_s1_nhwc4, , RPLAIN, qtile_plain_w, 1, 4)
QTILE_FN(plain_s2_nhwc4, , RPLAIN, qtile_plain_w, 2, 4)

/* rmax: four instances' worth, so that a row is cut into few tiles of
 * near-equal width (56 pixels: 24 + 24 + 8) */
const rn_qkernels rn_qkernels_neon_dot = {
    .name = "neon-dotprod",
    .isa = RN_ISA_NEON,
    .tile = {
        [RN_QIN_C16] = {{dot_s1}, {dot_s2}},
        [RN_QIN_NHWC4] = {{dot_s1_nhwc4}, {dot_s2_nhwc4}},
    },
    .rmax = {4 * RDOT, 0, 0},
    .chunk_pixels = 128,
};

const rn_qkernels rn_qkernels_neon = {
    .name = "neon",
    .isa = RN_ISA_NEON,
    .tile = {
        [RN_QIN_C16] = {{plain_s1}, {plain_s2}},
        [RN_QIN_NHWC4] = {{plain_s1_nhwc4}, {plain_s2_nhwc4}},
    },
    .rmax = {4 * RPLAIN, 0, 0},
    .chunk_pixels = 128,
};

#endif
