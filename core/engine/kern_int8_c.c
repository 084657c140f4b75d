/* Plain-C INT8 micro-kernels (core/engine/kernels.h, docs/int8.md): any
 * CPU, and the oracle the SIMD tables are tested against. Tiles of up to 4
 * pixels and one output block; the sums are integers, so any order gives
 * the same; the requantization is rn_requant, the scalar form every table
 * matches bit for bit. */
#include "kernels.h"

#define QRMAX 4

static inline __attribute__((always_inline)) void qtile(const rn_qtile *t, const int R, const int S,
                                                        const int CP)
{
    int32_t acc[QRMAX][16];
    for (int r = 0; r < R; r++)
        for (int k = 0; k < 16; k++)
            acc[r][k] = t->bias[k];
    const int taps = t->kh * t->kw;
    for (int ib = 0; ib < t->ib_n; ib++) {
        const uint8_t *in = t->in + ib * t->in_ib;
        const int8_t *w = t->w + (size_t)ib * taps * CP * 16;
        for (int ky = 0; ky < t->kh; ky++)
            for (int kx = 0; kx < t->kw; kx++) {
                const uint8_t *ip = in + ky * t->irow + kx * CP;
                const int8_t *wk = w + (ky * t->kw + kx) * CP * 16;
                for (int c4 = 0; c4 < CP / 4; c4++)
                    for (int r = 0; r < R; r++) {
                        const uint8_t *x = ip + r * S * CP + c4 * 4;
                        const int8_t *wc = wk + c4 * 64;
                        for (int k = 0; k < 16; k++)
                            acc[r][k] += x[0] * wc[k * 4] + x[1] * wc[k * 4 + 1] +
                                         x[2] * wc[k * 4 + 2] + x[3] * wc[k * 4 + 3];
                    }
            }
    }
    for (int r = 0; r < R; r++)
        for (int k = 0; k < 16; k++) {
            int res = 0;
            if (t->res)
                res = t->res_s8 ? (int8_t)t->res[r * 16 + k] : t->res[r * 16 + k];
            t->out[r * 16 + k] =
                (uint8_t)rn_requant(acc[r][k], t->mult[k], t->res != NULL, res, t->zres, t->rmul, t->relu,
                                    t->zout);
        }
}

#define QTILE_FN(name, S, CP)                   \
    static void name(const rn_qtile *t, int r)  \
    {                                           \
        switch (r) {                            \
        case 4: qtile(t, 4, S, CP); break;      \
        case 3: qtile(t, 3, S, CP); break;      \
        case 2: qtile(t, 2, S, CP); break;      \
        default: qtile(t, 1, S, CP); break;     \
        }                                       \
    }

QTILE_FN(qtile_s1, 1, 16)
QTILE_FN(qtile_s2, 2, 16)
QTILE_FN(qtile_s1_nhwc4, 1, 4)
QTILE_FN(qtile_s2_nhwc4, 2, 4)

const rn_qkernels rn_qkernels_c = {
    .name = "c",
    .isa = RN_ISA_C,
    .tile = {
        [RN_QIN_C16] = {{qtile_s1}, {qtile_s2}},
        [RN_QIN_NHWC4] = {{qtile_s1_nhwc4}, {qtile_s2_nhwc4}},
    },
    .rmax = {QRMAX, 0, 0},
    .chunk_pixels = 128,
};
