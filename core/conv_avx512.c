/* Direct convolution with AVX-512 FMA, NCHW16c out (core/engine.h).
 *
 * Micro-kernel (tile): R output pixels of one row times NB blocks of 16
 * output channels, R x NB accumulators in zmm registers: R = 14, NB = 2, or
 * R = 7, NB = 4 on rows narrower than 14 (layer 4), so 28 accumulators plus
 * NB weight vectors and one broadcast fill the 32 registers. Per input channel
 * and tap it loads NB weight vectors (16 output channels each, packed by
 * core/pack.c) and, per pixel, FMAs the pixel's input value, broadcast from
 * memory by the FMA itself, into NB accumulators: 28 FMAs and NB loads, few
 * enough instructions to keep both FMA ports busy even with a busy SMT
 * sibling. R, NB, the stride and the input block (16, or 1 for the stem's NCHW
 * input) are compile-time constants of each instance, so accumulators stay in
 * registers and pixel offsets are immediates. The accumulators start at the
 * bias plus the residual already in the output and get ReLU on the way out:
 * bias, residual add and ReLU cost no extra pass.
 *
 * BF16 (RN_PRECISION_BF16): the same tile reads bf16 input and weights and
 * replaces each pair of FMAs over two input channels by one VDPBF16PS (FP32
 * accumulation), half the instructions per MAC; it can store its result as
 * bf16 for the next convolution (rn_conv_args.out_b).
 *
 * No im2col and no padded copy: out-of-range tap rows are skipped per output
 * row, and a tile runs the tap columns that are in range for all its pixels;
 * a tile at the left or right edge then adds each other tap column on the
 * pixels that have it (core of conv_row). A 1x1 stride-1 convolution sees the
 * image as one row of h*w pixels.
 *
 * Blocking: input channels are taken L1_WEIGHTS bytes of weights at a time
 * (8 blocks of 16 for a 1x1, one block for a 3x3), accumulating into the
 * output, so the weights of a pass stay in L1 while the tiles of a chunk of
 * about CHUNK_PIXELS output pixels stream past them. Tasks are (image, chunk,
 * NB output blocks), output blocks innermost: the threads working at the same
 * time read the same input chunk. Enough tasks at batch 1 for 2-4 threads.
 */
#include <string.h>

#include "engine.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Every function here is compiled for AVX-512 whatever the build flags (GCC
 * and clang alike); rn_blocked_available() decides at run time. */
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

#define CHUNK_PIXELS 128       /* output pixels per task, about */
#define L1_WEIGHTS (16 * 1024) /* bytes of weights per pass over a chunk */

/* One tile: R pixels from (oy, ox0) of one image, NB output blocks from ob.
 * Offsets count elements: floats, or bf16 values for a BF16 convolution's
 * input and weights (same layouts, pairs of input channels adjacent). */
struct tile {
    const void *in;    /* the image's input, block 0 */
    ptrdiff_t at;      /* elements from in to input pixel (oy*s - pad, ox0*s - pad) */
    size_t in_ib;      /* elements between input channel blocks: ih*iw*CB */
    int ib_n, kw, taps, irow; /* irow: elements between input rows, iw*CB */
    int ky0, ky1, kx0, kx1; /* taps in range */
    const void *w;     /* wp or wb at output block ob */
    size_t w_ob;       /* elements between output blocks' weights */
    float *out;        /* output pixel (oy, ox0) of block ob */
    uint16_t *outb;    /* the same pixel in the BF16 copy of the output, or NULL */
    size_t out_ob;     /* floats between output blocks: oh*ow*16 */
    const float *bias; /* (out_c) or NULL */
    int ch0, out_c;    /* ob*16 and the real channel count */
    int relu, accumulate;
};

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

static inline AVX512 __m256i cvt_bf16(__m512 v)
{
    __m256i r;
    __asm__("vcvtneps2bf16 %1, %0" : "=v"(r) : "v"(v));
    return r;
}

static inline AVX512 __attribute__((always_inline)) void tile(const struct tile *t, const int R,
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
    for (int ib = 0; ib < t->ib_n && BF; ib++) {
        const uint16_t *in = (const uint16_t *)t->in + ib * t->in_ib + t->at;
        const uint16_t *w = (const uint16_t *)t->w + (size_t)ib * t->taps * 256;
        for (int ky = t->ky0; ky < t->ky1; ky++) {
            for (int kx = t->kx0; kx < t->kx1; kx++) {
                const uint16_t *ip = in + ky * t->irow + kx * 16;
                const uint16_t *wk = w + (ky * t->kw + kx) * 256;
#pragma GCC unroll 2
                for (int i = 0; i < 16; i += 2) {
                    __m512i wv[4];
#pragma GCC unroll 4
                    for (int nb = 0; nb < NB; nb++)
                        wv[nb] = _mm512_load_si512(wk + nb * t->w_ob + i * 16);
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
        }
    }
    for (int ib = 0; ib < t->ib_n && !BF; ib++) {
        const float *in = (const float *)t->in + ib * t->in_ib + t->at;
        const float *w = (const float *)t->w + (size_t)ib * t->taps * CB * 16;
        for (int ky = t->ky0; ky < t->ky1; ky++) {
            for (int kx = t->kx0; kx < t->kx1; kx++) {
                const float *ip = in + ky * t->irow + kx * CB;
                const float *wk = w + (ky * t->kw + kx) * CB * 16;
#pragma GCC unroll 2
                for (int i = 0; i < CB; i++) {
                    __m512 wv[4];
#pragma GCC unroll 4
                    for (int nb = 0; nb < NB; nb++)
                        wv[nb] = _mm512_load_ps(wk + nb * t->w_ob + i * 16);
#pragma GCC unroll 14
                    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                        for (int nb = 0; nb < NB; nb++)
                            acc[r][nb] = fma_bcast(acc[r][nb], ip + r * S * CB + i, wv[nb]);
                }
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

/* tile() with constant R, NB, stride, input block and input type, so that the
 * accumulators live in registers and the pixel offsets are immediates. */
#define TILE_CASE(R, NB, S, CB, BF) \
    case R:                         \
        tile(t, R, NB, S, CB, BF);  \
        break;
#define TILES_14(NB, S, CB, BF)                                                                \
    TILE_CASE(1, NB, S, CB, BF) TILE_CASE(2, NB, S, CB, BF) TILE_CASE(3, NB, S, CB, BF)        \
    TILE_CASE(4, NB, S, CB, BF) TILE_CASE(5, NB, S, CB, BF) TILE_CASE(6, NB, S, CB, BF)        \
    TILE_CASE(7, NB, S, CB, BF) TILE_CASE(8, NB, S, CB, BF) TILE_CASE(9, NB, S, CB, BF)        \
    TILE_CASE(10, NB, S, CB, BF) TILE_CASE(11, NB, S, CB, BF) TILE_CASE(12, NB, S, CB, BF)     \
    TILE_CASE(13, NB, S, CB, BF) TILE_CASE(14, NB, S, CB, BF)
#define TILES_7(NB, S, CB, BF)                                                                 \
    TILE_CASE(1, NB, S, CB, BF) TILE_CASE(2, NB, S, CB, BF) TILE_CASE(3, NB, S, CB, BF)        \
    TILE_CASE(4, NB, S, CB, BF) TILE_CASE(5, NB, S, CB, BF) TILE_CASE(6, NB, S, CB, BF)        \
    TILE_CASE(7, NB, S, CB, BF)
#define TILE_FN(name, NB, S, CB, BF, CASES)                \
    static AVX512 void name(const struct tile *t, int r)   \
    {                                                      \
        switch (r) { CASES(NB, S, CB, BF) }                \
    }

typedef void (*tile_fn)(const struct tile *t, int r);

TILE_FN(tile_nb1_s1, 1, 1, 16, 0, TILES_14)
TILE_FN(tile_nb2_s1, 2, 1, 16, 0, TILES_14)
TILE_FN(tile_nb4_s1, 4, 1, 16, 0, TILES_7)
TILE_FN(tile_nb1_s2, 1, 2, 16, 0, TILES_14)
TILE_FN(tile_nb2_s2, 2, 2, 16, 0, TILES_14)
TILE_FN(tile_nb4_s2, 4, 2, 16, 0, TILES_7)
/* NCHW input (the stem): one input channel per block */
TILE_FN(tile_nb1_s1_c1, 1, 1, 1, 0, TILES_14)
TILE_FN(tile_nb2_s1_c1, 2, 1, 1, 0, TILES_14)
TILE_FN(tile_nb4_s1_c1, 4, 1, 1, 0, TILES_7)
TILE_FN(tile_nb1_s2_c1, 1, 2, 1, 0, TILES_14)
TILE_FN(tile_nb2_s2_c1, 2, 2, 1, 0, TILES_14)
TILE_FN(tile_nb4_s2_c1, 4, 2, 1, 0, TILES_7)
/* BF16 input and weights */
TILE_FN(tile_nb1_s1_bf, 1, 1, 16, 1, TILES_14)
TILE_FN(tile_nb2_s1_bf, 2, 1, 16, 1, TILES_14)
TILE_FN(tile_nb4_s1_bf, 4, 1, 16, 1, TILES_7)
TILE_FN(tile_nb1_s2_bf, 1, 2, 16, 1, TILES_14)
TILE_FN(tile_nb2_s2_bf, 2, 2, 16, 1, TILES_14)
TILE_FN(tile_nb4_s2_bf, 4, 2, 16, 1, TILES_7)

enum { IN_F32, IN_F32_NCHW, IN_BF16 };

/* [input kind][stride 2][nb 1, 2, 4] */
static const tile_fn tiles[3][2][3] = {
    {{tile_nb1_s1, tile_nb2_s1, tile_nb4_s1}, {tile_nb1_s2, tile_nb2_s2, tile_nb4_s2}},
    {{tile_nb1_s1_c1, tile_nb2_s1_c1, tile_nb4_s1_c1},
     {tile_nb1_s2_c1, tile_nb2_s2_c1, tile_nb4_s2_c1}},
    {{tile_nb1_s1_bf, tile_nb2_s1_bf, tile_nb4_s1_bf},
     {tile_nb1_s2_bf, tile_nb2_s2_bf, tile_nb4_s2_bf}},
};

struct job {
    const rn_conv_args *a;
    int ib_n, ob_n, nb, rmax;
    int ih, iw, oh, ow;     /* the view: one row of h*w pixels for 1x1/1 */
    int kh, kw, s, pad, cb; /* cb: input channels per block, 16 or 1 (NCHW) */
    int kind;               /* IN_F32, IN_F32_NCHW or IN_BF16 */
    int rows, n_chunks;     /* rows per chunk (or pixels, for one-row views) */
    int ibc;                /* input blocks per pass over a chunk */
    tile_fn run;
};

/* The epilogue of a tile whose edge pixels needed extra taps: ReLU on its R
 * pixels in place, or into outb as bf16. */
static AVX512 void finish_tile(const struct tile *t, int r, int nb, int relu, uint16_t *outb)
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

/* Output row oy, pixels [x0, x1), in tiles of up to rmax pixels. A tile runs
 * the tap columns in range for all its pixels; when it touches the left or
 * right edge, each other tap column then runs, on top of the stored result, on
 * the pixels that have it in range (a tile one pixel narrower for a 3x3), and
 * the tile gets its epilogue last. */
static AVX512 void conv_row(const struct job *j, struct tile *t, int oy, int x0, int x1)
{
    int s = j->s, pad = j->pad, relu = t->relu;
    t->ky0 = RN_MAX(0, pad - oy * s);
    t->ky1 = RN_MIN(j->kh, j->ih + pad - oy * s);
    float *out0 = t->out;
    uint16_t *outb0 = t->outb;
    for (int ox = x0; ox < x1;) {
        int r = RN_MIN(j->rmax, x1 - ox), last = ox + r - 1;
        /* taps in range: [max(0, pad - x*s), min(kw, iw + pad - x*s)) for pixel x */
        int kxa = RN_MAX(0, pad - ox * s), kxb = RN_MIN(j->kw, j->iw + pad - last * s);
        kxb = RN_MAX(kxb, kxa);
        int edges = RN_MAX(0, pad - last * s) < kxa || RN_MIN(j->kw, j->iw + pad - ox * s) > kxb;
        t->kx0 = kxa;
        t->kx1 = kxb;
        size_t off = ((size_t)oy * j->ow + ox) * 16;
        t->relu = relu && !edges;
        t->at = ((ptrdiff_t)(oy * s - pad) * j->iw + (ox * s - pad)) * j->cb;
        t->out = out0 + off;
        t->outb = outb0 && !edges ? outb0 + off : NULL;
        j->run(t, r);
        if (edges) {
            /* each remaining tap column kx, on the pixels that have it in range */
            struct tile e = *t;
            e.bias = NULL;
            e.accumulate = 1;
            e.relu = 0;
            for (int kx = 0; kx < j->kw; kx++) {
                if (kx >= kxa && kx < kxb)
                    continue;
                int lo = ox, hi = last;
                while (lo <= hi && lo * s - pad + kx < 0)
                    lo++;
                while (hi >= lo && hi * s - pad + kx >= j->iw)
                    hi--;
                if (lo > hi)
                    continue;
                e.kx0 = kx;
                e.kx1 = kx + 1;
                e.at = ((ptrdiff_t)(oy * s - pad) * j->iw + (lo * s - pad)) * j->cb;
                e.out = t->out + (size_t)(lo - ox) * 16;
                j->run(&e, hi - lo + 1);
            }
            if (relu || outb0)
                finish_tile(t, r, j->nb, relu, outb0 ? outb0 + off : NULL);
        }
        ox += r;
    }
    t->out = out0;
    t->outb = outb0;
    t->relu = relu;
}

static AVX512 void conv_task(void *arg, int task, int thread)
{
    const struct job *j = arg;
    const rn_conv_args *a = j->a;
    int obg_n = j->ob_n / j->nb;
    int obg = task % obg_n;
    task /= obg_n;
    int chunk = task % j->n_chunks, img = task / j->n_chunks;
    int ob = obg * j->nb;
    size_t w_ib = (size_t)j->kh * j->kw * j->cb * 16; /* elements of one input block's taps */
    struct tile t = {
        .in_ib = (size_t)j->ih * j->iw * j->cb,
        .kw = j->kw, .taps = j->kh * j->kw, .irow = j->iw * j->cb,
        .w_ob = (size_t)j->ib_n * w_ib,
        .out = a->out + ((size_t)img * j->ob_n + ob) * j->oh * j->ow * 16,
        .out_ob = (size_t)j->oh * j->ow * 16,
        .ch0 = ob * 16, .out_c = a->c->out_c,
    };
    size_t in_at = (size_t)img * j->ib_n * t.in_ib, w_at = (size_t)ob * t.w_ob;
    uint16_t *outb = a->out_b ? a->out_b + (t.out - a->out) : NULL;
    for (int ib0 = 0; ib0 < j->ib_n; ib0 += j->ibc) {
        int last = ib0 + j->ibc >= j->ib_n;
        size_t in_off = in_at + ib0 * t.in_ib, w_off = w_at + ib0 * w_ib;
        t.ib_n = RN_MIN(j->ibc, j->ib_n - ib0);
        if (j->kind == IN_BF16) {
            t.in = a->in_b + in_off;
            t.w = a->c->wb + w_off;
        } else {
            t.in = a->in + in_off;
            t.w = a->c->wp + w_off;
        }
        t.outb = last ? outb : NULL;
        t.bias = ib0 == 0 ? a->bias : NULL;
        t.accumulate = ib0 > 0 || a->accumulate;
        t.relu = last && a->relu;
        if (j->oh == 1) {
            int x0 = chunk * j->rows;
            conv_row(j, &t, 0, x0, RN_MIN(j->ow, x0 + j->rows));
        } else {
            int y0 = chunk * j->rows, y1 = RN_MIN(j->oh, y0 + j->rows);
            for (int oy = y0; oy < y1; oy++)
                conv_row(j, &t, oy, 0, j->ow);
        }
    }
}

/* ---- Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3 stride-1 convolutions ----
 *
 * The output is cut into 2x2 tiles, each computed from the 4x4 input patch
 * around it: V = B^T d B per input channel (16 positions p), M_p = U_p V_p
 * summed over input channels (U = G g G^T, packed by core/pack.c), Y = A^T M A.
 * 16 products per 2x2 outputs instead of 36: 2.25x fewer multiplies, with
 * transforms of additions only (and halves in G), so the result stays within
 * a few float ulps of the direct convolution. FP32 convolutions of up to 128
 * channels use 4x4 tiles from 6x6 patches instead (36 positions, 36 products
 * per 16 outputs instead of 144, 4x fewer): transform coefficients up to 8 cost
 * about 1e-5 of the output's scale, still far inside the 1e-4 parity bound
 * (ResNet-50 logits stay within 6e-7 of PyTorch's).
 *
 * M_p = U_p V_p is a 1x1 convolution over "pixels" that are tiles: V_p is laid
 * out as an NCHW16c image of one row of tiles and runs on the same tile()
 * micro-kernel as every other convolution. A task takes a chunk of tiles
 * (consecutive in (image, tile row, tile column) order, across images) and a
 * group of output blocks: it transforms the chunk's input into V, runs the 16
 * products into M, and transforms M into the output with bias, residual and
 * ReLU. V and M are the thread's scratch (rn_exec.col), sized so that the
 * slices of one position stay in L2.
 *
 * BF16 (wub): the transforms run in FP32 on the bf16 input (a->in_b), V is
 * stored as bf16 and the products run on the BF16 tile with FP32
 * accumulation; M and the output transform stay FP32, and the output goes
 * to a->out_b as bf16 when the next convolution wants it.
 */
#define WINO_SLICE (192 * 1024) /* bytes of V_p and M_p of a chunk, about */

/* Positions of c's transform: 16 for F(2x2, 3x3), 36 for F(4x4, 3x3). */
static int wino_positions(const rn_conv *c)
{
    return (c->wu_m + 2) * (c->wu_m + 2);
}

/* Tiles per chunk: the slices of a position within WINO_SLICE, and the
 * whole scratch within 16 such slices */
static int wino_tmax(const rn_conv *c)
{
    int t = WINO_SLICE / (64 * (rn_cblocks(c->in_c) + rn_cblocks(c->out_c)));
    t = t * 16 / wino_positions(c);
    return RN_MAX(14, RN_MIN(126, t / 14 * 14));
}

size_t rn_conv_wino_floats(const rn_conv *c)
{
    return (size_t)16 * wino_positions(c) * wino_tmax(c) *
           (rn_cblocks(c->in_c) + rn_cblocks(c->out_c));
}

struct wino_job {
    const rn_conv_args *a;
    const rn_exec *x;
    int m, P;                         /* m x m output tiles, P positions */
    int ib_n, ob_n, h, w, th, tw, nt; /* nt: tiles in the batch */
    int T, n_og, og_size;             /* tiles per chunk, output block groups */
    int nb, rmax, ibc;
    int bf;                           /* BF16: wub, in_b, V in bf16 */
    tile_fn run;
};

/* 16 bf16 values widened to floats (exactly). */
static inline AVX512 __m512 load_bf16(const uint16_t *p)
{
    __m256i h = _mm256_load_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* r = B^T d for F(4x4, 3x3), B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
 * 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1], with FMAs:
 * r0 = 4 d0 - 5 d2 + d4, r1,2 = (d4 - 4 d2) +- (d3 - 4 d1),
 * r3,4 = (d4 - d2) +- 2 (d3 - d1), r5 = 4 d1 - 5 d3 + d5. */
static inline AVX512 __attribute__((always_inline)) void wino4_bt(const __m512 d[6], __m512 r[6])
{
    const __m512 four = _mm512_set1_ps(4), mfive = _mm512_set1_ps(-5), mfour = _mm512_set1_ps(-4);
    __m512 a = _mm512_fmadd_ps(mfour, d[2], d[4]), b = _mm512_fmadd_ps(mfour, d[1], d[3]);
    __m512 c = _mm512_sub_ps(d[4], d[2]), e = _mm512_sub_ps(d[3], d[1]);
    e = _mm512_add_ps(e, e);
    r[0] = _mm512_fmadd_ps(four, d[0], _mm512_fmadd_ps(mfive, d[2], d[4]));
    r[1] = _mm512_add_ps(a, b);
    r[2] = _mm512_sub_ps(a, b);
    r[3] = _mm512_add_ps(c, e);
    r[4] = _mm512_sub_ps(c, e);
    r[5] = _mm512_fmadd_ps(four, d[1], _mm512_fmadd_ps(mfive, d[3], d[5]));
}

/* r = B^T d for F(2x2, 3x3), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static inline AVX512 __attribute__((always_inline)) void wino2_bt(const __m512 d[4], __m512 r[4])
{
    r[0] = _mm512_sub_ps(d[0], d[2]);
    r[1] = _mm512_add_ps(d[1], d[2]);
    r[2] = _mm512_sub_ps(d[2], d[1]);
    r[3] = _mm512_sub_ps(d[1], d[3]);
}

/* V[p][ib][tl] = (B^T d B)[p] for the tl-th tile of the chunk from t0, with
 * MT x MT output tiles from (MT + 2) x (MT + 2) input patches (B^T above:
 * wino2_bt, wino4_bt); BF: the input is bf16 (in_b) and V is stored as bf16.
 * Input block by input block, tiles in order: a tile's patch overlaps its
 * left neighbour's by two columns, whose transforms (down the columns) are
 * reused. */
static inline AVX512 __attribute__((always_inline)) void wino_input_t(const struct wino_job *j,
                                                                      int t0, int tc, void *V,
                                                                      const int MT, const int BF)
{
    enum { A = 6 }; /* MT + 2 at most */
    const int NA = MT + 2;
    const void *in = BF ? (const void *)j->a->in_b : (const void *)j->a->in;
    size_t plane = (size_t)j->h * j->w * 16, vp = (size_t)j->ib_n * j->T * 16;
    int per_img = j->th * j->tw;
    for (int ib = 0; ib < j->ib_n; ib++) {
        int img = t0 / per_img, ty = t0 % per_img / j->tw, tx = t0 % j->tw;
        __m512 c[A][A]; /* the tile's input columns, transformed */
        for (int tl = 0; tl < tc; tl++) {
            size_t src = ((size_t)img * j->ib_n + ib) * plane;
            int y0 = ty * MT - 1, x0 = tx * MT - 1, x = 0;
            if (tl > 0 && tx > 0) {
                for (int k = 0; k < NA; k++) {
                    c[0][k] = c[MT][k];
                    c[1][k] = c[MT + 1][k];
                }
                x = 2;
            }
            for (; x < NA; x++) {
                __m512 d[A];
                for (int k = 0; k < NA; k++) {
                    int y = y0 + k, xx = x0 + x;
                    size_t at = src + ((size_t)y * j->w + xx) * 16;
                    d[k] = xx < 0 || xx >= j->w || y < 0 || y >= j->h ? _mm512_setzero_ps()
                           : BF ? load_bf16((const uint16_t *)in + at)
                                : _mm512_load_ps((const float *)in + at);
                }
                if (MT == 4)
                    wino4_bt(d, c[x]);
                else
                    wino2_bt(d, c[x]);
            }
            size_t v = ((size_t)ib * j->T + tl) * 16;
            for (int a = 0; a < NA; a++) {
                __m512 row[A], r[A];
                for (int k = 0; k < NA; k++)
                    row[k] = c[k][a];
                if (MT == 4)
                    wino4_bt(row, r);
                else
                    wino2_bt(row, r);
                for (int b = 0; b < NA; b++) {
                    size_t at = v + (NA * a + b) * vp;
                    if (BF)
                        _mm256_store_si256((__m256i *)((uint16_t *)V + at), cvt_bf16(r[b]));
                    else
                        _mm512_store_ps((float *)V + at, r[b]);
                }
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

/* BF16 models use F(2x2, 3x3) only (core/pack.c). */
static AVX512 void wino_input(const struct wino_job *j, int t0, int tc, float *V)
{
    if (j->m == 4)
        wino_input_t(j, t0, tc, V, 4, 0);
    else if (j->bf)
        wino_input_t(j, t0, tc, V, 2, 1);
    else
        wino_input_t(j, t0, tc, V, 2, 0);
}

/* y = A^T m A for F(2x2, 3x3), A^T = [1 1 1 0; 0 1 -1 -1]; m: the 16
 * positions of one tile, mp floats apart. */
static inline AVX512 __attribute__((always_inline)) void wino2_out(const float *m, size_t mp,
                                                                   __m512 y[4][4])
{
    __m512 s[2][4];
    for (int b = 0; b < 4; b++) {
        __m512 m0 = _mm512_load_ps(m + b * mp), m1 = _mm512_load_ps(m + (4 + b) * mp),
               m2 = _mm512_load_ps(m + (8 + b) * mp), m3 = _mm512_load_ps(m + (12 + b) * mp);
        s[0][b] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        s[1][b] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    for (int r = 0; r < 2; r++) {
        y[r][0] = _mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), s[r][2]);
        y[r][1] = _mm512_sub_ps(_mm512_sub_ps(s[r][1], s[r][2]), s[r][3]);
    }
}

/* y = A^T m for F(4x4, 3x3) along one dimension, A^T = [1 1 1 1 1 0;
 * 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
static inline AVX512 __attribute__((always_inline)) void wino4_at(const __m512 m[6], __m512 y[4])
{
    __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    y[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2), d34, d12);
    y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4), s34, s12);
    y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8), d34, d12), m[5]);
}

/* y = A^T m A for F(4x4, 3x3): m, the 36 positions of one tile. */
static inline AVX512 __attribute__((always_inline)) void wino4_out(const float *m, size_t mp,
                                                                   __m512 y[4][4])
{
    __m512 s[4][6];
    for (int b = 0; b < 6; b++) {
        __m512 col[6], r[4];
        for (int k = 0; k < 6; k++)
            col[k] = _mm512_load_ps(m + (6 * k + b) * mp);
        wino4_at(col, r);
        for (int k = 0; k < 4; k++)
            s[k][b] = r[k];
    }
    for (int r = 0; r < 4; r++)
        wino4_at(s[r], y[r]);
}

/* The output of the chunk's tiles for output blocks [ob0, ob1): Y = A^T M A
 * plus bias and the residual, ReLU, into out, or into out_b as bf16; MT, the
 * tile size j->m as a constant. */
static inline AVX512 __attribute__((always_inline)) void wino_output_t(const struct wino_job *j,
                                                                       int t0, int tc, int ob0,
                                                                       int ob1, const float *M,
                                                                       const int MT)
{
    const rn_conv_args *a = j->a;
    size_t mp = (size_t)j->og_size * j->T * 16; /* floats between positions */
    const __m512 zero = _mm512_setzero_ps();
    for (int ob = ob0; ob < ob1; ob++) {
        int rem = a->c->out_c - ob * 16;
        __mmask16 mask = rem >= 16 ? 0xffff : (__mmask16)((1u << rem) - 1);
        __m512 bias = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + ob * 16) : zero;
        for (int tl = 0; tl < tc; tl++) {
            int t = t0 + tl, img = t / (j->th * j->tw), q = t % (j->th * j->tw);
            int oy = q / j->tw * MT, ox = q % j->tw * MT;
            const float *m = M + ((size_t)(ob - ob0) * j->T + tl) * 16;
            __m512 y[4][4];
            if (MT == 4)
                wino4_out(m, mp, y);
            else
                wino2_out(m, mp, y);
            size_t o = (((size_t)img * j->ob_n + ob) * j->h + oy) * j->w * 16 + ox * 16;
            for (int dy = 0; dy < MT && oy + dy < j->h; dy++)
                for (int dx = 0; dx < MT && ox + dx < j->w; dx++) {
                    size_t at = o + ((size_t)dy * j->w + dx) * 16;
                    __m512 v = _mm512_add_ps(bias, y[dy][dx]);
                    if (a->accumulate)
                        v = _mm512_add_ps(v, _mm512_load_ps(a->out + at));
                    if (a->relu)
                        v = _mm512_max_ps(v, zero);
                    if (a->out_b)
                        _mm256_store_si256((__m256i *)(a->out_b + at), cvt_bf16(v));
                    else
                        _mm512_store_ps(a->out + at, v);
                }
        }
    }
}

static AVX512 void wino_output(const struct wino_job *j, int t0, int tc, int ob0, int ob1,
                               const float *M)
{
    if (j->m == 4)
        wino_output_t(j, t0, tc, ob0, ob1, M, 4);
    else
        wino_output_t(j, t0, tc, ob0, ob1, M, 2);
}

static AVX512 void wino_task(void *arg, int task, int thread)
{
    const struct wino_job *j = arg;
    const rn_conv *c = j->a->c;
    int og = task % j->n_og, chunk = task / j->n_og;
    int t0 = chunk * j->T, tc = RN_MIN(j->T, j->nt - t0);
    int ob0 = og * j->og_size, ob1 = RN_MIN(j->ob_n, ob0 + j->og_size);
    if (tc <= 0 || ob0 >= ob1)
        return;
    float *V = j->x->col + (size_t)thread * j->x->col_stride;
    float *M = V + (size_t)j->P * j->ib_n * j->T * 16;
    wino_input(j, t0, tc, V);
    size_t up = (size_t)j->ob_n * j->ib_n * 256;
    for (int p = 0; p < j->P; p++) {
        size_t vp = (size_t)p * j->ib_n * j->T * 16; /* elements, floats or bf16 */
        float *Mp = M + (size_t)p * j->og_size * j->T * 16;
        for (int ob = ob0; ob < ob1; ob += j->nb) {
            for (int ib0 = 0; ib0 < j->ib_n; ib0 += j->ibc) {
                size_t vi = vp + (size_t)ib0 * j->T * 16, wi = p * up + ((size_t)ob * j->ib_n + ib0) * 256;
                struct tile t = {
                    .in = j->bf ? (const void *)((const uint16_t *)V + vi) : (const void *)(V + vi),
                    .in_ib = (size_t)j->T * 16,
                    .ib_n = RN_MIN(j->ibc, j->ib_n - ib0), .kw = 1, .taps = 1,
                    .ky1 = 1, .kx1 = 1,
                    .w = j->bf ? (const void *)(c->wub + wi) : (const void *)(c->wu + wi),
                    .w_ob = (size_t)j->ib_n * 256, .out_ob = (size_t)j->T * 16,
                    .out_c = c->out_c, .accumulate = ib0 > 0,
                };
                for (int tl = 0; tl < tc; tl += j->rmax) {
                    t.at = (ptrdiff_t)tl * 16;
                    t.out = Mp + ((size_t)(ob - ob0) * j->T + tl) * 16;
                    j->run(&t, RN_MIN(j->rmax, tc - tl));
                }
            }
        }
    }
    wino_output(j, t0, tc, ob0, ob1, M);
}

static void wino_forward(const rn_exec *x, const rn_conv_args *a)
{
    const rn_conv *c = a->c;
    int nthr = rn_pool_size(x->pool);
    struct wino_job j = {.a = a, .x = x, .ib_n = rn_cblocks(c->in_c), .ob_n = rn_cblocks(c->out_c),
                         .h = a->ih, .w = a->iw, .n_og = 1, .m = c->wu_m};
    j.P = wino_positions(c);
    j.th = (j.h + j.m - 1) / j.m;
    j.tw = (j.w + j.m - 1) / j.m;
    j.nt = a->n * j.th * j.tw;
    int tmax = wino_tmax(c), n_chunks = (j.nt + tmax - 1) / tmax;
    /* every thread gets the same work: chunks in multiples of the threads,
     * or, when the batch has too few tiles for that, output block groups */
    if (n_chunks % nthr) {
        if (j.nt >= 28 * nthr)
            n_chunks = (n_chunks + nthr - 1) / nthr * nthr;
        else
            j.n_og = RN_MIN(nthr, j.ob_n);
    }
    j.T = (j.nt + n_chunks - 1) / n_chunks;
    j.nb = j.ob_n % 2 ? 1 : 2;
    j.og_size = (j.ob_n + j.n_og - 1) / j.n_og;
    j.og_size = (j.og_size + j.nb - 1) / j.nb * j.nb;
    j.rmax = 14;
    if (j.T < 14 && j.og_size % 4 == 0) {
        j.nb = 4;
        j.rmax = 7;
    }
    j.bf = c->wub != NULL;
    j.run = tiles[j.bf ? IN_BF16 : IN_F32][0][j.nb / 2];
    j.ibc = RN_MAX(1, L1_WEIGHTS / (j.nb * 256 * (j.bf ? 2 : 4)));
    rn_pool_run(x->pool, n_chunks * j.n_og, wino_task, &j);
}

AVX512 void rn_conv_blocked_forward(const rn_exec *x, const rn_conv_args *a)
{
    if (a->c->wu || a->c->wub) {
        wino_forward(x, a);
        return;
    }
    const rn_conv *c = a->c;
    struct job j = {.a = a, .ob_n = rn_cblocks(c->out_c), .ih = a->ih, .iw = a->iw,
                    .kh = c->kh, .kw = c->kw, .s = c->stride, .pad = c->pad,
                    .cb = c->wb ? 16 : c->wp_icb};
    j.ib_n = (c->in_c + j.cb - 1) / j.cb;
    j.oh = rn_out_dim(a->ih, c->kh, c->stride, c->pad);
    j.ow = rn_out_dim(a->iw, c->kw, c->stride, c->pad);
    if (c->kh == 1 && c->kw == 1 && c->stride == 1 && c->pad == 0) {
        j.iw = j.ih * j.iw;
        j.ih = 1;
        j.ow = j.oh * j.ow;
        j.oh = 1;
    }
    if (j.ow < 14 && j.ob_n % 4 == 0) {
        j.nb = 4;
        j.rmax = 7;
    } else {
        j.nb = j.ob_n % 2 == 0 ? 2 : 1;
        j.rmax = 14;
    }
    j.kind = c->wb ? IN_BF16 : j.cb == 1 ? IN_F32_NCHW : IN_F32;
    j.run = tiles[j.kind][c->stride == 2][j.nb / 2];
    int elem = j.kind == IN_BF16 ? 2 : 4;
    j.ibc = RN_MAX(1, L1_WEIGHTS / (j.nb * c->kh * c->kw * j.cb * 16 * elem));
    /* chunks of about CHUNK_PIXELS, all of the same size (load balance) */
    int n_chunks = RN_MAX(1, (j.oh * j.ow + CHUNK_PIXELS / 2) / CHUNK_PIXELS);
    if (j.oh == 1) {
        j.rows = (j.ow + n_chunks - 1) / n_chunks;
        j.rows = (j.rows + j.rmax - 1) / j.rmax * j.rmax;
        j.n_chunks = (j.ow + j.rows - 1) / j.rows;
    } else {
        j.rows = (j.oh + RN_MIN(n_chunks, j.oh) - 1) / RN_MIN(n_chunks, j.oh);
        j.n_chunks = (j.oh + j.rows - 1) / j.rows;
    }
    rn_pool_run(x->pool, a->n * j.n_chunks * (j.ob_n / j.nb), conv_task, &j);
}

struct cvt_job {
    const float *in;
    uint16_t *out;
    size_t n, chunk;
};

static AVX512 void cvt_task(void *arg, int t, int thread)
{
    const struct cvt_job *j = arg;
    size_t i0 = (size_t)t * j->chunk, i1 = RN_MIN(j->n, i0 + j->chunk);
    for (size_t i = i0; i < i1; i += 16)
        _mm256_store_si256((__m256i *)(j->out + i), cvt_bf16(_mm512_load_ps(j->in + i)));
}

AVX512 void rn_blocked_to_bf16(const rn_exec *x, const float *in, size_t n, uint16_t *out)
{
    struct cvt_job j = {.in = in, .out = out, .n = n, .chunk = 16 * 4096};
    rn_pool_run(x->pool, (int)((n + j.chunk - 1) / j.chunk), cvt_task, &j);
}

#else

size_t rn_conv_wino_floats(const rn_conv *c)
{
    (void)c;
    return 0;
}

/* Never called: rn_blocked_available() is 0 off x86-64, so nothing is packed. */
void rn_conv_blocked_forward(const rn_exec *x, const rn_conv_args *a)
{
    (void)x;
    (void)a;
}

void rn_blocked_to_bf16(const rn_exec *x, const float *in, size_t n, uint16_t *out)
{
    (void)x;
    (void)in;
    (void)n;
    (void)out;
}

#endif
