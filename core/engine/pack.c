/* A convolution's weights packed once at load for the blocked engine
 * (blocked.c); the model asks for it convolution by convolution
 * (model/pack.c).
 *
 * The blocked engine keeps activations in NCHW16c: channels in blocks of 16,
 * the 16 channels of one pixel contiguous, so that one AVX-512 vector holds
 * one pixel's block. A convolution's weights are packed to match: for output
 * block ob and input block ib, the kh x kw taps each hold a 16 x 16 matrix,
 * input channel major, so the kernel loads one vector of 16 output channels
 * per (input channel, tap) and FMAs it with a broadcast input value:
 *
 *     wp[ob][ib][ky][kx][i][o] = w[ob*16 + o][ib*16 + i][ky][kx]
 *
 * Channel counts that are not multiples of 16 are zero-padded, so the padded
 * channels of every activation stay zero through conv, bias (zero), residual
 * and ReLU. The stem reads the caller's NCHW image (3 channels): its input
 * "blocks" are single channels, wp[ob][i][ky][kx][0][o], and it writes
 * NCHW16c like every other convolution.
 *
 * A BF16 model (RN_PRECISION_BF16) gets bf16 weights for its block
 * convolutions instead, the same layout with the 16 x 16 matrix of a tap
 * stored as 8 rows of input-channel pairs: see pack_conv_bf16.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* Round to nearest even, as VCVTNEPS2BF16 does (weights are finite). */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* Groups merged into one group of blocks (engine.h, rn_conv): the fewest that divide
 * c->groups and span whole blocks of icb input and 16 output channels, or all
 * of them (one dense convolution, zero-padded as any other). */
static int merged_groups(const rn_conv *c, int icb)
{
    int g = c->groups, in_g = c->in_c / g, out_g = c->out_c / g;
    for (int k = 1; k < g; k++)
        if (g % k == 0 && k * in_g % icb == 0 && k * out_g % 16 == 0)
            return k;
    return g;
}

/* Input blocks of one output block's weights, output blocks per merged
 * group; returns the groups merged (merged_groups). */
static int group_blocks(const rn_conv *c, int icb, int *ibg, int *obg)
{
    int k = merged_groups(c, icb), g = c->groups;
    *ibg = (k * (c->in_c / g) + icb - 1) / icb;
    *obg = k == g ? rn_cblocks(c->out_c) : k * (c->out_c / g) / 16;
    return k;
}

/* Channel ci of the group of output channel o, as an input channel of o's
 * merged group: its block there is the result / icb. */
static int merged_channel(const rn_conv *c, int k, int o, int ci)
{
    int in_g = c->in_c / c->groups, grp = o / (c->out_c / c->groups);
    return (grp % k) * in_g + ci;
}

static size_t packed_floats(const rn_conv *c, int icb)
{
    int ibg, obg;
    group_blocks(c, icb, &ibg, &obg);
    return (size_t)rn_cblocks(c->out_c) * ibg * icb * c->kh * c->kw * 16;
}

static void pack_conv(rn_conv *c, int icb, float *dst)
{
    int taps = c->kh * c->kw, in_g = c->in_c / c->groups;
    int k = group_blocks(c, icb, &c->wp_ibg, &c->wp_obg);
    memset(dst, 0, packed_floats(c, icb) * sizeof(float));
    for (int o = 0; o < c->out_c; o++)
        for (int ci = 0; ci < in_g; ci++) {
            int i = merged_channel(c, k, o, ci);
            for (int t = 0; t < taps; t++) {
                size_t at = ((((size_t)(o / 16) * c->wp_ibg + i / icb) * taps + t) * icb + i % icb) * 16 +
                            o % 16;
                dst[at] = c->w[((size_t)o * in_g + ci) * taps + t];
            }
        }
    c->wp = dst;
    c->wp_icb = icb;
}

/* BF16 weights for NCHW16c bf16 input: input channels in adjacent pairs, the
 * operand order of VDPBF16PS: wb[ob][ib][ky][kx][i/2][o][i%2]. */
static void pack_conv_bf16(rn_conv *c, uint16_t *dst)
{
    int taps = c->kh * c->kw, in_g = c->in_c / c->groups;
    int k = group_blocks(c, 16, &c->wp_ibg, &c->wp_obg);
    memset(dst, 0, packed_floats(c, 16) * sizeof(uint16_t));
    for (int o = 0; o < c->out_c; o++)
        for (int ci = 0; ci < in_g; ci++) {
            int i = merged_channel(c, k, o, ci);
            for (int t = 0; t < taps; t++) {
                size_t at = (((size_t)(o / 16) * c->wp_ibg + i / 16) * taps + t) * 256 +
                            (i % 16 / 2) * 32 + o % 16 * 2 + i % 2;
                dst[at] = to_bf16(c->w[((size_t)o * in_g + ci) * taps + t]);
            }
        }
    c->wb = dst;
}

/* Positions of the Winograd transform of F(m x m, 3x3): (m + 2)^2. */
static size_t wino_floats(const rn_conv *c, int m)
{
    int ibg, obg;
    group_blocks(c, 16, &ibg, &obg);
    return (size_t)(m + 2) * (m + 2) * rn_cblocks(c->out_c) * ibg * 256;
}

/* U = G g G^T for each (output, input) channel pair, computed in double,
 * with, for m = 2, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] and, for
 * m = 4, G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 * 1/24 -1/12 1/6; 0 0 1] (interpolation points 0, 1, -1, 2, -2, and
 * infinity). Position p = (m + 2) a + b of U is the weight matrix of one 1x1
 * convolution, packed as wp is, wu[p][ob][ib][i][o], or for BF16 (dst NULL)
 * as wb is, wub[p][ob][ib][i/2][o][i%2]. */
static void pack_wino(rn_conv *c, int m, float *dst, uint16_t *dst_b)
{
    static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}};
    const double(*G)[3] = m == 4 ? G4 : G2;
    int A = m + 2, ob_n = rn_cblocks(c->out_c), in_g = c->in_c / c->groups;
    int mg = group_blocks(c, 16, &c->wp_ibg, &c->wp_obg);
    size_t per_p = (size_t)ob_n * c->wp_ibg * 256;
    if (dst)
        memset(dst, 0, wino_floats(c, m) * sizeof(float));
    else
        memset(dst_b, 0, wino_floats(c, m) * sizeof(uint16_t));
    for (int o = 0; o < c->out_c; o++)
        for (int ci = 0; ci < in_g; ci++) {
            const float *g = c->w + ((size_t)o * in_g + ci) * 9;
            int i = merged_channel(c, mg, o, ci);
            double gt[6][3]; /* G g */
            for (int a = 0; a < A; a++)
                for (int k = 0; k < 3; k++)
                    gt[a][k] = G[a][0] * g[k] + G[a][1] * g[3 + k] + G[a][2] * g[6 + k];
            size_t blk = ((size_t)(o / 16) * c->wp_ibg + i / 16) * 256;
            for (int a = 0; a < A; a++)
                for (int b = 0; b < A; b++) {
                    double u = gt[a][0] * G[b][0] + gt[a][1] * G[b][1] + gt[a][2] * G[b][2];
                    size_t p = (size_t)(A * a + b) * per_p + blk;
                    if (dst)
                        dst[p + (i % 16) * 16 + o % 16] = (float)u;
                    else
                        dst_b[p + (i % 16 / 2) * 32 + o % 16 * 2 + i % 2] = to_bf16((float)u);
                }
        }
    c->wu_m = m;
    if (dst)
        c->wu = dst;
    else
        c->wub = dst_b;
}

int rn_conv_pack_kind(const rn_conv *c, int nchw_input, int bf16)
{
    if (nchw_input)
        return RN_PACK_NCHW;
    /* 3x3 stride-1 convolutions run as Winograd: F(4x4, 3x3) in FP32 up to
     * 256 channels, where its larger transforms cost least against the GEMMs
     * they shrink and its weights (36 positions) stay small; F(2x2, 3x3)
     * beyond, and for BF16, whose rounding the larger transform
     * coefficients would amplify. ResNet-50's 256-channel layer (14x14, 16
     * tiles of 4x4 per image, against 49 of 2x2): 17% less time alone at
     * batch 8 and ResNet-50 1-2% faster, the same at batch 1, where the
     * 9.4 MB of weights per convolution (against 4.2) come from memory;
     * 512 channels on 7x7 ran 30% slower at batch 1 (Intel Xeon, AVX-512) */
    int wino = c->kh == 3 && c->kw == 3 && c->stride == 1 && c->pad == 1;
    if (bf16)
        return wino ? RN_PACK_WINO_BF16 : RN_PACK_BF16;
    if (wino)
        return c->in_c <= 256 && c->out_c <= 256 ? RN_PACK_WINO4 : RN_PACK_WINO;
    return RN_PACK_F32;
}

size_t rn_conv_packed_bytes(const rn_conv *c, int kind)
{
    switch (kind) {
    case RN_PACK_NCHW:
        return packed_floats(c, 1) * sizeof(float);
    case RN_PACK_BF16:
        return packed_floats(c, 16) * sizeof(uint16_t);
    case RN_PACK_WINO:
        return wino_floats(c, 2) * sizeof(float);
    case RN_PACK_WINO4:
        return wino_floats(c, 4) * sizeof(float);
    case RN_PACK_WINO_BF16:
        return wino_floats(c, 2) * sizeof(uint16_t);
    default:
        return packed_floats(c, 16) * sizeof(float);
    }
}

void rn_conv_pack(rn_conv *c, int kind, void *dst)
{
    switch (kind) {
    case RN_PACK_NCHW:
        pack_conv(c, 1, dst);
        break;
    case RN_PACK_BF16:
        pack_conv_bf16(c, dst);
        break;
    case RN_PACK_WINO:
        pack_wino(c, 2, dst, NULL);
        break;
    case RN_PACK_WINO4:
        pack_wino(c, 4, dst, NULL);
        break;
    case RN_PACK_WINO_BF16:
        pack_wino(c, 2, NULL, dst);
        break;
    default:
        pack_conv(c, 16, dst);
        break;
    }
}

/* ---- INT8 (docs/int8.md) ---- */

int rn_qconv_ok(const rn_conv *c, int stem)
{
    if (c->stride < 1 || c->stride > 2 || !c->qw || !c->qscale || !c->qbias)
        return 0;
    /* the int32 sum cannot overflow: 255 * 128 per product, a bias within
     * +-2^30 (the model checks it), the stem's compensation */
    int64_t k = (int64_t)c->in_c / c->groups * c->kh * c->kw;
    if (k * 255 * 128 * (stem ? 2 : 1) >= (int64_t)1 << 30)
        return 0;
    return stem ? c->groups == 1 && c->in_c <= 4 : c->pad <= RN_QB;
}

#define ALIGN64(v) (((size_t)(v) + 63) & ~(size_t)63)

/* Bytes of c's packed weights (int8, or int16 for w16); cpix bytes per
 * input pixel of a block. */
static size_t qweight_bytes(const rn_conv *c, int cpix, int w16, int *ibg, int *obg)
{
    group_blocks(c, cpix == 4 ? 4 : 16, ibg, obg);
    return (size_t)rn_cblocks(c->out_c) * *ibg * c->kh * c->kw * cpix * 16 * (w16 ? 2 : 1);
}

int rn_qconv_wino_ok(const rn_conv *c, int stem)
{
    /* |sum| <= in_c * 9 * 255 * 128 and Y = 4 * sum must fit int32 (the
     * sums on the way may wrap: integer adds are exact modulo 2^32) */
    return !stem && c->kh == 3 && c->kw == 3 && c->stride == 1 && c->pad == 1 && c->groups == 1 &&
           (int64_t)c->in_c * 9 * 255 * 128 < (int64_t)1 << 29;
}

/* Bytes of c->qwu: 16 positions x out blocks x in blocks x 256 int16 */
static size_t qwino_bytes(const rn_conv *c, int stem, const rn_qkernels *qk)
{
    if (!qk->wino || !rn_qconv_wino_ok(c, stem))
        return 0;
    return (size_t)16 * rn_cblocks(c->out_c) * rn_cblocks(c->in_c) * 256 * sizeof(int16_t);
}

size_t rn_qconv_packed_bytes(const rn_conv *c, int stem, const rn_qkernels *qk)
{
    int ibg, obg;
    size_t ch = (size_t)rn_cblocks(c->out_c) * 16;
    return ALIGN64(qweight_bytes(c, stem ? 4 : 16, qk->w16, &ibg, &obg)) + ALIGN64(ch * sizeof(int32_t)) +
           ALIGN64(ch * sizeof(float)) + ALIGN64(qwino_bytes(c, stem, qk));
}

/* U' = (2G) g (2G)^T for each output and input channel, G of F(2x2, 3x3)
 * doubled to integers, 2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2]: |U'| <= 9 * 127,
 * an int16. At position p, out block ob, in block ib: input pair i / 2,
 * half o / 8 (8 outputs), lane (o % 8) * 2 + i % 2 (kern_int8_avx2.c). */
static void pack_qwino(rn_conv *c, int16_t *u)
{
    static const int g2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
    int ob_n = rn_cblocks(c->out_c), ib_n = rn_cblocks(c->in_c);
    for (int o = 0; o < c->out_c; o++)
        for (int i = 0; i < c->in_c; i++) {
            const int8_t *g = c->qw + ((size_t)o * c->in_c + i) * 9;
            int t[4][3]; /* (2G) g */
            for (int a = 0; a < 4; a++)
                for (int x = 0; x < 3; x++)
                    t[a][x] = g2[a][0] * g[x] + g2[a][1] * g[3 + x] + g2[a][2] * g[6 + x];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    int v = t[a][0] * g2[b][0] + t[a][1] * g2[b][1] + t[a][2] * g2[b][2];
                    size_t at = (((size_t)(a * 4 + b) * ob_n + o / 16) * ib_n + i / 16) * 256 +
                                (size_t)(i % 16 / 2 * 2 + o % 16 / 8) * 16 + o % 8 * 2 + i % 2;
                    u[at] = (int16_t)v;
                }
        }
    c->qwu = u;
}

/* wq[ob][ib][ky][kx][i/4][o][i%4] = w[ob*16 + o][ib*cpix + i][ky][kx], the
 * operand order of VPDPBUSD (4 input channels of one output channel in one
 * 32-bit lane) and SDOT; the stem's image has one block of 4 channels.
 * w16: the 4 x 4 int8 of a group of 4 input channels and 4 output channels
 * become int16, for VPMADDWD without unpacking (kern_int8_avx2.c): per
 * group of 4 input channels, 64 int16 in 4 vectors of 16, vector
 * (o / 8) * 2 + i % 2, lane (o % 8) * 2 + i % 4 / 2. */
void rn_qconv_pack(rn_conv *c, int stem, const rn_qkernels *qk, void *dst)
{
    int w16 = qk->w16, cpix = stem ? 4 : 16, taps = c->kh * c->kw, in_g = c->in_c / c->groups;
    int ibg, obg;
    size_t wbytes = qweight_bytes(c, cpix, w16, &ibg, &obg), ch = (size_t)rn_cblocks(c->out_c) * 16;
    int k = group_blocks(c, cpix == 4 ? 4 : 16, &c->wp_ibg, &c->wp_obg);
    int8_t *wq = dst;
    int32_t *bq = (int32_t *)((char *)dst + ALIGN64(wbytes));
    float *mq = (float *)((char *)bq + ALIGN64(ch * sizeof(int32_t)));
    int16_t *wq16 = dst;
    memset(dst, 0, rn_qconv_packed_bytes(c, stem, qk));
    for (int o = 0; o < c->out_c; o++) {
        int64_t sum = 0;
        for (int ci = 0; ci < in_g; ci++) {
            int i = stem ? ci : merged_channel(c, k, o, ci);
            for (int t = 0; t < taps; t++) {
                int8_t v = c->qw[((size_t)o * in_g + ci) * taps + t];
                size_t at4 = (((size_t)(o / 16) * ibg + i / cpix) * taps + t) * (cpix / 4) + i % cpix / 4;
                if (w16)
                    wq16[at4 * 64 + (o % 16 / 8 * 2 + i % 2) * 16 + o % 8 * 2 + i % 4 / 2] = v;
                else
                    wq[at4 * 64 + o % 16 * 4 + i % 4] = v;
                sum += v;
            }
        }
        /* the stem reads u = x + z: take z * sum(w) back out of the sum */
        bq[o] = (int32_t)(c->qbias[o] - (stem ? c->in_zp * sum : 0));
        mq[o] = c->in_scale * c->qscale[o] / c->out_scale;
    }
    c->wq = wq;
    c->bq = bq;
    c->mq = mq;
    c->rq = c->res_scale > 0.0f ? c->res_scale / c->out_scale : 0.0f;
    c->q_stem = stem;
    c->q_w16 = w16;
    c->qwu = NULL;
    if (qwino_bytes(c, stem, qk))
        pack_qwino(c, (int16_t *)(void *)((char *)mq + ALIGN64(ch * sizeof(float))));
    (void)obg;
}
