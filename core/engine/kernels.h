/* The blocked engine's micro-kernels, one table per ISA.
 *
 * The driver (core/engine/blocked.c) cuts every convolution into tasks, chunks,
 * input-channel passes and tiles, and orchestrates Winograd; it is compiled
 * for the baseline and never names an ISA. What runs inside a tile, the
 * Winograd transforms, max pooling and the bf16 conversion live in one file
 * per ISA (kern_avx512.c, kern_avx2.c, kern_neon.c, and kern_c.c in plain C:
 * the fallback and the oracle the others are tested against); the transforms
 * and the pooling are written once over one register (wino_tmpl.h,
 * pool_tmpl.h) and instantiated by the SIMD files. Each file compiles
 * its functions with its own target attributes and exports one const table;
 * core/engine/cpu.c chooses the table once, at load, from the CPU's features.
 *
 * Activations are NCHW16c on every ISA (core/engine/engine.h): one pixel's block of
 * 16 channels is one zmm, two ymm or four q registers. Weights are packed the
 * same way on every ISA (core/engine/pack.c), so a packed model runs on any table.
 *
 * Determinism: every kernel sums an output pixel's products in the same
 * order (input block, tap row, tap column, input channel) whatever tile,
 * chunk or batch position the pixel falls in, so that an image's result does
 * not depend on the batch it is computed in.
 */
#ifndef RN_KERNELS_H
#define RN_KERNELS_H

#include "engine.h"

/* One tile: r pixels from (oy, ox0) of one image's output row, times nb
 * blocks of 16 output channels from block ob. Offsets count elements:
 * floats, or bf16 values for a BF16 convolution's input and weights (same
 * layouts, pairs of input channels adjacent). */
typedef struct rn_tile {
    const void *in;    /* the image's input, block 0 of this pass */
    ptrdiff_t at;      /* elements from in to input pixel (oy*s - pad, ox0*s - pad) */
    size_t in_ib;      /* elements between input channel blocks: ih*iw*CB */
    int ib_n, kw, taps, irow; /* input blocks of this pass; irow: elements between input rows */
    int ky0, ky1, kx0, kx1; /* the taps to run, all in range for every pixel of the tile */
    const void *w;     /* wp, wb, wu or wub at output block ob and this pass's first input block */
    size_t w_ob;       /* elements between output blocks' weights */
    float *out;        /* output pixel (oy, ox0) of block ob */
    uint16_t *outb;    /* the same pixel in the bf16 copy of the output, or NULL */
    size_t out_ob;     /* floats between output blocks */
    const float *bias; /* (out_c) or NULL */
    int ch0, out_c;    /* ob*16 and the real channel count (bias past it reads as 0) */
    int relu, accumulate;
    /* A hint: weights the driver wants in L2 before it needs them (the next
     * pass's): pf_len bytes, a multiple of 64, of each of the tile's nb
     * streams pf + b * pf_ob. The tile prefetches them while it runs, a
     * share before each block of channels it multiplies (one tap of one
     * input block: rn_tile_pf_lines, rn_tile_prefetch); a table may ignore
     * it. pf_len 0: nothing. */
    const char *pf;
    size_t pf_ob, pf_len;
} rn_tile;

/* Lines of each stream of t's prefetch hint to issue before each of its
 * blocks of channels (one tap of one input block): all of them, spread over
 * the blocks. Not a line per channel step, which put a test and a branch in
 * the channel loop: that cost the AVX-512 1x1 tiles 3-7% in L1 and ResNet-50
 * 6-9% at batches 1 and 8 (Intel Xeon). */
static inline __attribute__((always_inline)) size_t rn_tile_pf_lines(const rn_tile *t)
{
    size_t blocks = (size_t)t->ib_n * (t->ky1 - t->ky0) * (t->kx1 - t->kx0);
    return blocks ? (t->pf_len / 64 + blocks - 1) / blocks : 0;
}

/* One step of a tile's prefetch hint: a line of each of nb streams. */
static inline __attribute__((always_inline)) void rn_tile_prefetch(const char **pf, size_t *left,
                                                                   size_t ob, int nb)
{
    if (*left) {
        for (int b = 0; b < nb; b++)
            __builtin_prefetch(*pf + b * ob, 0, 2);
        *pf += 64;
        *left = *left > 64 ? *left - 64 : 0;
    }
}

/* out[pixel q < r][block b < nb] = [relu]([out +] bias + sum over the pass's
 * input blocks and taps of in * w), stored as bf16 into outb instead when
 * outb is set. Pixel q reads input at t->at + q*S*CB (S: the stride, CB:
 * channels per input block, 16, or 1 for NCHW input). Preconditions:
 * 1 <= r <= the table's rmax for nb; out, outb and every 16-element block of
 * in and w are 64-byte aligned; the padding channels of the weights are zero. */
typedef void (*rn_tile_fn)(const rn_tile *t, int r);

/* Input kinds of a tile: NCHW16c floats, the stem's NCHW floats (one channel
 * per block), NCHW16c bf16 with bf16 weights. */
enum { RN_TILE_F32, RN_TILE_NCHW, RN_TILE_BF16, RN_TILE_INPUTS };

/* One Winograd convolution as its transforms see it (F(m x m, 3x3), stride 1,
 * padding 1): the output is cut into m x m tiles, th x tw per image, numbered
 * across the batch in (image, tile row, tile column) order. A chunk of T
 * tiles from t0 is transformed into V (P = (m+2)^2 positions, each an NCHW16c
 * "image" of one row of T tiles: V[p][ib][tl][16], positions vp elements
 * apart), multiplied into M (M[p][ob - ob0][tl][16], og_size blocks,
 * positions mp floats apart), and M transformed into the output. */
typedef struct rn_wino {
    const rn_conv_args *a;
    int m, P;
    int ib_n, ob_n, h, w, th, tw;
    int T, og_size;
    int bf;        /* bf16 input (a->in_b) and V */
    size_t vp, mp; /* elements between positions of V and of M (RN_WINO_PAD) */
} rn_wino;

/* Positions of V and M lie RN_WINO_PAD elements more than their slice
 * apart: a slice is often a multiple of 4 KB (ib_n * T * 64 bytes), and a
 * tile's 16 or 36 stores and loads, one per position, then all fell into
 * the same L1 set. */
#define RN_WINO_PAD 16

/* V = B^T d B for tiles [t0, t0 + tc), tc <= T, as floats, or bf16 for j->bf. */
typedef void (*rn_wino_in_fn)(const rn_wino *j, int t0, int tc, void *V);
/* Y = A^T M A for those tiles and output blocks [ob0, ob1), plus bias and the
 * residual, ReLU, into a->out or, when set, a->out_b as bf16. */
typedef void (*rn_wino_out_fn)(const rn_wino *j, int t0, int tc, int ob0, int ob1,
                               const float *M);

enum { RN_NB_1, RN_NB_2, RN_NB_4, RN_NB_COUNT }; /* tiles of 1, 2 or 4 output blocks */

/* One INT8 tile (docs/int8.md): r pixels of one output row times nb blocks
 * of 16 output channels from block ob, every tap in range (the input's
 * border is its padding). Offsets in bytes. */
typedef struct rn_qtile {
    const uint8_t *in;  /* input block 0 at the first pixel's first tap */
    size_t in_ib;       /* between input channel blocks */
    int ib_n, kh, kw;   /* input blocks an output block reads; taps */
    int irow;           /* between input rows */
    const int8_t *w;    /* c->wq at output block ob */
    size_t w_ob;        /* between output blocks' weights */
    const int32_t *bias; /* (nb * 16) from channel ob*16 */
    const float *mult;  /* (nb * 16) from channel ob*16 */
    uint8_t *out;       /* output pixel 0 of block ob */
    size_t out_ob;      /* between output blocks */
    const uint8_t *res; /* the residual at out's place, or NULL */
    float rmul;         /* R */
    int res_s8, relu;   /* relu: u8 out, else s8 */
    int zres, zout;     /* the residual's and an s8 output's zero points */
} rn_qtile;

/* acc = bias + the sum over input blocks, taps and channels of in * w
 * (u8 x s8, int32), then y = f32(acc) * mult [+ f32(res - zres) * rmul],
 * stored as rint(clamp(y, 0, 255)) (relu) or
 * rint(clamp(y, -128 - zout, 127 - zout)) + zout, with no contraction of the
 * multiply and the add. Pixel q reads input at
 * t->in + q * S * CP (CP: bytes per input pixel, 16, or 4 for the stem's
 * NHWC4 image). 1 <= r <= the table's rmax for nb (rn_qkernels); w 64-byte aligned. */
typedef void (*rn_qtile_fn)(const rn_qtile *t, int r);

/* y rounded to the nearest integer, ties to even, for |y| < 2^22: adding
 * and taking away 1.5 * 2^23 leaves no fraction bits to keep (the default
 * rounding mode does the rounding), the same result as nearbyintf without
 * its libm call (the x86-64 baseline has no ROUNDSS). IEEE arithmetic
 * in float (SSE, NEON: no excess precision) and a build that does not
 * reassociate (no -ffast-math) keep the two operations as written. */
static inline __attribute__((always_inline)) float rn_rint_small(float y)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (y + magic) - magic;
}

/* One output of an INT8 tile from its int32 sum: the requantization of
 * docs/int8.md in scalar form, which every table's vector form matches bit
 * for bit (IEEE float32, a multiply and an add, never fused; rint to
 * nearest even). res: the residual's stored value, used only when has_res;
 * zres its zero point; zout the s8 output's (0 for relu). */
static inline __attribute__((always_inline)) int rn_requant(int32_t acc, float mult, int has_res,
                                                            int res, int zres, float rmul, int relu,
                                                            int zout)
{
    float y = (float)acc * mult;
    if (has_res) {
        float r = (float)(res - zres) * rmul;
        y = y + r;
    }
    float lo = relu ? 0.0f : (float)(-128 - zout), hi = relu ? 255.0f : (float)(127 - zout);
    y = y < lo ? lo : y > hi ? hi : y;
    return (int)rn_rint_small(y) + (relu ? 0 : zout);
}

/* Zero the border (engine.h, RN_QB) of rows [y0, y1) of one bordered
 * h x w plane of 16 channels, and its top and bottom border rows when the
 * range holds the first or the last row: every op writing an INT8 tensor
 * writes its border, since buffers are reused at other sizes (qops.c). */
void rn_qborder(uint8_t *plane, int h, int w, int y0, int y1);

/* An INT8 Winograd F(2x2, 3x3) convolution (core/engine/qconv.c) as one
 * table's tiles see it: rows of 2x2 output tiles, tile (ty, tx) reading
 * the input's bordered pixels (2ty .. 2ty+3, 2tx .. 2tx+3), the border
 * being the padding; pixels past the bordered plane (odd sizes) read 0. */
typedef struct rn_qwino {
    const rn_qconv_args *a;
    int ib_n, ob_n, h, w;  /* input blocks, output blocks; the input's (= output's) size */
    int th, tw;            /* tile rows and columns */
    size_t in_plane, out_plane; /* bytes per block of one image, border included */
    int in_row, out_row;   /* bytes per row, border included */
    size_t vp, mp;         /* int16 between positions of V, int32 between those of M */
} rn_qwino;

/* Tile rows [ty0, ty1) of image img, output blocks [ob0, ob1): V = B^T d B
 * of every input block (int16), per output block and position the integer
 * products summed over the input channels (M, int32), Y = A^T M A = 4 x the
 * convolution's sums, then bias, requantization and the border of the
 * rows written, as rn_qtile_fn's epilogue does. scratch: rn_qconv_scratch_bytes. */
typedef void (*rn_qwino_fn)(const rn_qwino *j, int img, int ty0, int ty1, int ob0, int ob1,
                            void *scratch);

/* rn_qkernels.tile's first index: NCHW16c input, or the stem's NHWC4 */
enum { RN_QIN_C16, RN_QIN_NHWC4, RN_QIN_COUNT };

/* The INT8 micro-kernels of one ISA (kern_int8_*.c), chosen apart from the
 * FP32 table: an AVX-512 CPU without VNNI runs AVX-512 FP32 and AVX2 INT8. */
typedef struct rn_qkernels {
    const char *name; /* "avx512-vnni", "avx2", "neon-dotprod", "neon", "c" */
    int isa;          /* the enum rn_isa it belongs to */
    /* [RN_QIN_*][stride 2][RN_NB_*]; NULL where the table has none (every
     * table has nb 1) */
    rn_qtile_fn tile[RN_QIN_COUNT][2][RN_NB_COUNT];
    int rmax[RN_NB_COUNT]; /* widest tile, in pixels; 0: none of that nb */
    int chunk_pixels;      /* output pixels per task, about */
    /* 1: the tiles read weights packed as int16 (rn_qconv_pack's w16:
     * rn_qtile.w and w_ob then count int16 pairs as 2 bytes each), else int8 */
    int w16;
    /* Winograd F(2x2, 3x3) on the integers (rn_conv.qwu), or NULL: direct
     * convolutions only. Only where multiplies are what limits (AVX2's
     * VPMADDWD); a dot-product table does 3x3 directly (docs/int8.md). */
    rn_qwino_fn wino;
} rn_qkernels;

typedef struct rn_kernels {
    const char *name; /* "avx512", "avx2", "neon", "c" */
    int isa;          /* enum rn_isa */
    /* [input kind][stride 2][RN_NB_*]; NULL where the table has no such tile
     * (every table has F32 and NCHW for the nb with rmax > 0) */
    rn_tile_fn tile[RN_TILE_INPUTS][2][RN_NB_COUNT];
    int rmax[RN_NB_COUNT]; /* widest tile, in pixels; 0: no tiles of that nb */
    /* What a tile rmax wide is worth, in accumulators kept busy, where
     * measured to be less than its nb x rmax (a tile that spills); 0: nb x
     * rmax. The driver picks the nb whose tiles, so weighted, cover a row
     * best (core/engine/blocked.c pick_nb). */
    int worth[RN_NB_COUNT];
    /* Bit r set: a tile r pixels wide runs as one instance; the driver then
     * cuts rows into the fewest such pieces, the most even of those
     * (core/engine/blocked.c plan_row), instead of rmax-wide tiles and a remainder
     * the table splits itself. Must have bit 1 and bit rmax. 0: rmax-wide
     * tiles and the remainder. */
    unsigned pieces[RN_NB_COUNT];
    /* [0] F(2x2) FP32, [1] F(4x4) FP32, [2] F(2x2) bf16 (NULL without bf16) */
    rn_wino_in_fn wino_in[3];
    rn_wino_out_fn wino_out[2]; /* F(2x2), F(4x4) */
    /* The epilogue of a tile whose edge pixels needed extra tap columns: ReLU
     * (if relu) on r pixels x nb blocks of t->out in place, or into outb as bf16. */
    void (*finish)(const rn_tile *t, int r, int nb, int relu, uint16_t *outb);
    /* Max pool 3x3, stride 2, padding 1 of one NCHW16c block of channels: in
     * h x w pixels of 16 floats, out oh x ow (core/engine/pooling.c cuts the work). */
    void (*maxpool)(const float *in, int h, int w, float *out, int oh, int ow);
    /* out = max(in * scale + shift, 0) on `pixels` pixels of one NCHW16c block;
     * scale and shift: the block's 16 channels, 64-byte aligned. */
    void (*bn_relu)(const float *in, size_t pixels, const float *scale, const float *shift,
                    float *out);
    /* out[i] = bf16(in[i]), round to nearest even; n % 16 == 0. NULL without bf16. */
    void (*to_bf16)(const float *in, uint16_t *out, size_t n);
    int l1_weights;   /* bytes of weights per pass over a chunk of pixels */
    int chunk_pixels; /* output pixels per task, about */
    int wino_slice;   /* bytes of V_p and M_p of a Winograd chunk, about */
} rn_kernels;

/* The tables this build has; core/engine/cpu.c says which this CPU runs. */
#if defined(__x86_64__)
extern const rn_kernels rn_kernels_avx512;
extern const rn_kernels rn_kernels_avx2;
#endif
#if defined(__aarch64__)
extern const rn_kernels rn_kernels_neon;
#endif
extern const rn_kernels rn_kernels_c;

/* The table for isa (enum rn_isa, not AUTO or BLAS), or NULL when this build
 * or this CPU cannot run it (core/engine/cpu.c). */
const rn_kernels *rn_kernels_get(int isa);

#if defined(__x86_64__)
extern const rn_qkernels rn_qkernels_avx512; /* needs avx512_vnni */
extern const rn_qkernels rn_qkernels_avx2;
#endif
#if defined(__aarch64__)
extern const rn_qkernels rn_qkernels_neon_dot; /* needs asimddp (ARMv8.2 dot products) */
extern const rn_qkernels rn_qkernels_neon;     /* any aarch64 core */
#endif
extern const rn_qkernels rn_qkernels_c;

/* The INT8 table of isa, or NULL when this build or CPU cannot run it. */
const rn_qkernels *rn_qkernels_get(int isa);

#endif
