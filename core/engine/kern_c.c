/* Plain-C micro-kernels of the blocked engine (core/engine/kernels.h): any CPU, and
 * the reference the SIMD tables are tested against. The same tile, Winograd
 * transforms and epilogues as the SIMD files, one 16-lane loop where they
 * hold a register; FP32 only. Tiles of up to 4 pixels and one output block:
 * 64 accumulators, which the compiler keeps in whatever vectors the baseline
 * has. A multiply and an add per product (the build does not contract them),
 * so this table's sums are rounded differently from the FMA tables': equal
 * within the tests' tolerance, not in the last bit. */
#include <float.h>
#include <string.h>

#include "kernels.h"

#define RMAX 4

static inline __attribute__((always_inline)) void tile(const rn_tile *t, const int R, const int S,
                                                       const int CB)
{
    float acc[RMAX][16];
    float b[16] = {0};
    for (int k = 0; k < 16 && t->bias; k++)
        b[k] = t->ch0 + k < t->out_c ? t->bias[t->ch0 + k] : 0.0f;
    for (int r = 0; r < R; r++)
        for (int k = 0; k < 16; k++)
            acc[r][k] = t->accumulate ? b[k] + t->out[r * 16 + k] : b[k];
    for (int ib = 0; ib < t->ib_n; ib++) {
        const float *in = (const float *)t->in + ib * t->in_ib + t->at;
        const float *w = (const float *)t->w + (size_t)ib * t->taps * CB * 16;
        for (int ky = t->ky0; ky < t->ky1; ky++)
            for (int kx = t->kx0; kx < t->kx1; kx++) {
                const float *ip = in + ky * t->irow + kx * CB;
                const float *wk = w + (ky * t->kw + kx) * CB * 16;
                for (int i = 0; i < CB; i++)
                    for (int r = 0; r < R; r++) {
                        float x = ip[r * S * CB + i];
                        for (int k = 0; k < 16; k++)
                            acc[r][k] += x * wk[i * 16 + k];
                    }
            }
    }
    for (int r = 0; r < R; r++)
        for (int k = 0; k < 16; k++)
            t->out[r * 16 + k] = t->relu && acc[r][k] < 0.0f ? 0.0f : acc[r][k];
}

#define TILE_FN(name, S, CB)                    \
    static void name(const rn_tile *t, int r)   \
    {                                           \
        switch (r) {                            \
        case 4: tile(t, 4, S, CB); break;       \
        case 3: tile(t, 3, S, CB); break;       \
        case 2: tile(t, 2, S, CB); break;       \
        default: tile(t, 1, S, CB); break;      \
        }                                       \
    }

TILE_FN(tile_s1, 1, 16)
TILE_FN(tile_s2, 2, 16)
TILE_FN(tile_s1_c1, 1, 1)
TILE_FN(tile_s2_c1, 2, 1)

static void finish(const rn_tile *t, int r, int nb, int relu, uint16_t *outb)
{
    (void)outb; /* no bf16 tiles, so never a bf16 output */
    for (int b = 0; b < nb && relu; b++)
        for (int q = 0; q < r * 16; q++) {
            float *o = t->out + b * t->out_ob + q;
            *o = *o < 0.0f ? 0.0f : *o;
        }
}

/* Max pool 3x3, stride 2, padding 1 of one block of 16 channels: the
 * running max from -FLT_MAX over the window in (row, column) order. */
static void maxpool3x3s2(const float *in, int h, int w, float *out, int oh, int ow)
{
    for (int oy = 0; oy < oh; oy++) {
        int y0 = RN_MAX(oy * 2 - 1, 0), y1 = RN_MIN(oy * 2 + 2, h);
        for (int ox = 0; ox < ow; ox++) {
            int x0 = RN_MAX(ox * 2 - 1, 0), x1 = RN_MIN(ox * 2 + 2, w);
            float m[16];
            for (int k = 0; k < 16; k++)
                m[k] = -FLT_MAX;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) {
                    const float *p = in + ((size_t)y * w + x) * 16;
                    for (int k = 0; k < 16; k++)
                        m[k] = p[k] > m[k] ? p[k] : m[k];
                }
            memcpy(out + ((size_t)oy * ow + ox) * 16, m, sizeof m);
        }
    }
}

/* out = max(in * scale + shift, 0) on pixels pixels of one block of 16. */
static void bn_relu16(const float *in, size_t pixels, const float *scale, const float *shift, float *out)
{
    for (size_t q = 0; q < pixels; q++)
        for (int k = 0; k < 16; k++) {
            float v = in[q * 16 + k] * scale[k] + shift[k];
            out[q * 16 + k] = v > 0.0f ? v : 0.0f;
        }
}

/* r = B^T d along one dimension, 16 lanes; F(2x2): B^T = [1 0 -1 0;
 * 0 1 1 0; 0 -1 1 0; 0 1 0 -1]; F(4x4): B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
 * 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. */
static void bt(const int MT, float d[6][16], float r[6][16])
{
    for (int k = 0; k < 16; k++) {
        if (MT == 2) {
            r[0][k] = d[0][k] - d[2][k];
            r[1][k] = d[1][k] + d[2][k];
            r[2][k] = d[2][k] - d[1][k];
            r[3][k] = d[1][k] - d[3][k];
        } else {
            float a = d[4][k] - 4 * d[2][k], b = d[3][k] - 4 * d[1][k];
            float c = d[4][k] - d[2][k], e = 2 * (d[3][k] - d[1][k]);
            r[0][k] = 4 * d[0][k] - 5 * d[2][k] + d[4][k];
            r[1][k] = a + b;
            r[2][k] = a - b;
            r[3][k] = c + e;
            r[4][k] = c - e;
            r[5][k] = 4 * d[1][k] - 5 * d[3][k] + d[5][k];
        }
    }
}

/* V[p][ib][tl] = (B^T d B)[p] for the tiles [t0, t0 + tc). */
static inline void wino_input_t(const rn_wino *j, int t0, int tc, float *V, const int MT)
{
    const int NA = MT + 2;
    const float *in = j->a->in;
    size_t plane = (size_t)j->h * j->w * 16, vp = j->vp;
    int per_img = j->th * j->tw;
    for (int tl = 0; tl < tc; tl++) {
        int t = t0 + tl, img = t / per_img, ty = t % per_img / j->tw, tx = t % j->tw;
        for (int ib = 0; ib < j->ib_n; ib++) {
            const float *src = in + ((size_t)img * j->ib_n + ib) * plane;
            float c[6][6][16]; /* c[x]: column x of the patch, transformed */
            for (int x = 0; x < NA; x++) {
                float d[6][16];
                for (int y = 0; y < NA; y++) {
                    int iy = ty * MT - 1 + y, ix = tx * MT - 1 + x;
                    if (iy < 0 || iy >= j->h || ix < 0 || ix >= j->w)
                        memset(d[y], 0, sizeof d[y]);
                    else
                        memcpy(d[y], src + ((size_t)iy * j->w + ix) * 16, sizeof d[y]);
                }
                bt(MT, d, c[x]);
            }
            for (int a = 0; a < NA; a++) {
                float row[6][16], r[6][16];
                for (int x = 0; x < NA; x++)
                    memcpy(row[x], c[x][a], sizeof row[x]);
                bt(MT, row, r);
                for (int b = 0; b < NA; b++)
                    memcpy(V + ((size_t)ib * j->T + tl) * 16 + (NA * a + b) * vp, r[b], sizeof r[b]);
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

/* y = A^T m along one dimension, 16 lanes; F(2x2): A^T = [1 1 1 0;
 * 0 1 -1 -1]; F(4x4): A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
 * 0 1 -1 8 -8 1]. */
static void at(const int MT, float m[6][16], float y[4][16])
{
    for (int k = 0; k < 16; k++) {
        if (MT == 2) {
            y[0][k] = m[0][k] + m[1][k] + m[2][k];
            y[1][k] = m[1][k] - m[2][k] - m[3][k];
        } else {
            float s12 = m[1][k] + m[2][k], d12 = m[1][k] - m[2][k];
            float s34 = m[3][k] + m[4][k], d34 = m[3][k] - m[4][k];
            y[0][k] = m[0][k] + s12 + s34;
            y[1][k] = 2 * d34 + d12;
            y[2][k] = 4 * s34 + s12;
            y[3][k] = 8 * d34 + d12 + m[5][k];
        }
    }
}

static inline void wino_output_t(const rn_wino *j, int t0, int tc, int ob0, int ob1,
                                 const float *M, const int MT)
{
    const rn_conv_args *a = j->a;
    const int NA = MT + 2;
    size_t mp = j->mp; /* floats between positions */
    for (int ob = ob0; ob < ob1; ob++) {
        float bias[16] = {0};
        for (int k = 0; k < 16 && a->bias; k++)
            bias[k] = ob * 16 + k < a->c->out_c ? a->bias[ob * 16 + k] : 0.0f;
        for (int tl = 0; tl < tc; tl++) {
            int t = t0 + tl, img = t / (j->th * j->tw), q = t % (j->th * j->tw);
            int oy = q / j->tw * MT, ox = q % j->tw * MT;
            const float *m = M + ((size_t)(ob - ob0) * j->T + tl) * 16;
            float s[4][6][16], y[4][4][16];
            for (int b = 0; b < NA; b++) {
                float col[6][16], r[4][16];
                for (int k = 0; k < NA; k++)
                    memcpy(col[k], m + (NA * k + b) * mp, sizeof col[k]);
                at(MT, col, r);
                for (int k = 0; k < MT; k++)
                    memcpy(s[k][b], r[k], sizeof r[k]);
            }
            for (int r = 0; r < MT; r++)
                at(MT, s[r], y[r]);
            size_t o = (((size_t)img * j->ob_n + ob) * j->h + oy) * j->w * 16 + ox * 16;
            for (int dy = 0; dy < MT && oy + dy < j->h; dy++)
                for (int dx = 0; dx < MT && ox + dx < j->w; dx++) {
                    float *out = a->out + o + ((size_t)dy * j->w + dx) * 16;
                    for (int k = 0; k < 16; k++) {
                        float v = bias[k] + y[dy][dx][k];
                        if (a->accumulate)
                            v += out[k];
                        out[k] = a->relu && v < 0.0f ? 0.0f : v;
                    }
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

const rn_kernels rn_kernels_c = {
    .name = "c",
    .isa = RN_ISA_C,
    .tile = {
        [RN_TILE_F32] = {{tile_s1}, {tile_s2}},
        [RN_TILE_NCHW] = {{tile_s1_c1}, {tile_s2_c1}},
    },
    .rmax = {RMAX, 0, 0},
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
