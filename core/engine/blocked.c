/* The blocked engine's driver: direct and Winograd convolution on NCHW16c,
 * cut into tasks and tiles for the micro-kernels of one ISA (core/engine/kernels.h).
 *
 * Direct convolution: no im2col and no padded copy. Out-of-range tap rows are
 * skipped per output row, and a tile runs the tap columns that are in range
 * for all its pixels; a tile at the left or right edge then adds each other
 * tap column on the pixels that have it (conv_row). A 1x1 stride-1
 * convolution sees the image as one row of h*w pixels. The accumulators start
 * at the bias plus the residual already in the output and get ReLU on the way
 * out: bias, residual add and ReLU cost no extra pass.
 *
 * Blocking: input channels are taken l1_weights bytes of weights at a time
 * (8 blocks of 16 for a 1x1, one block for a 3x3 on AVX-512), accumulating
 * into the output, so the weights of a pass stay in L1 while the tiles of a
 * chunk of about chunk_pixels output pixels stream past them. Tasks are
 * (image, chunk, nb output blocks), output blocks innermost: the threads
 * working at the same time read the same input chunk. Enough tasks at batch
 * 1 for 2-4 threads.
 *
 * Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3 stride-1 convolutions: the
 * output is cut into m x m tiles, each computed from the (m+2) x (m+2) input
 * patch around it: V = B^T d B per input channel (P = (m+2)^2 positions),
 * M_p = U_p V_p summed over input channels (U = G g G^T, packed by
 * core/engine/pack.c), Y = A^T M A. F(2x2) does 16 products per 4 outputs instead of
 * 36, with transforms of additions only (and halves in G): the result stays
 * within a few float ulps of the direct convolution. FP32 convolutions of up
 * to 256 channels use F(4x4) (36 products per 16 outputs instead of 144):
 * transform coefficients up to 8 cost about 1e-5 of the output's scale, far
 * inside the 1e-4 parity bound. So the engine is not the exact direct sum:
 * it is within those bounds of it, the same on every run and every batch.
 *
 * M_p = U_p V_p is a 1x1 convolution over "pixels" that are tiles: V_p is an
 * NCHW16c image of one row of tiles and runs on the same tiles as every other
 * convolution. A task takes a chunk of tiles (consecutive across images) and
 * a group of output blocks: it transforms the chunk's input into V, runs the
 * products into M, and transforms M into the output with bias, residual and
 * ReLU. V and M are the thread's scratch (rn_exec.col), sized so that the
 * slices of one position stay in L2.
 *
 * BF16 (wb, wub; tables with bf16 tiles): tiles read bf16 input and weights
 * with FP32 accumulation and may store bf16 for the next convolution
 * (rn_conv_args.out_b); Winograd transforms run in FP32 on the bf16 input, V
 * is bf16, M and the output transform FP32.
 *
 * Batch invariance: chunks, tiles, passes and tasks change which thread
 * computes a pixel and with which neighbours, never the order in which its
 * products are summed, so an image's output is the same bits in any batch.
 */
#include <limits.h>
#include <string.h>

#include "kernels.h"

static int tile_worth(const rn_kernels *k, int nbi)
{
    return k->worth[nbi] ? k->worth[nbi] : (1 << nbi) * k->rmax[nbi];
}

/* The tile shape for rows of len pixels and ob_n output blocks: of the nb
 * that divide ob_n, the one whose tiles keep the most accumulators busy over
 * the row (the table's worth of a full tile, times len / (tiles x rmax): on
 * AVX-512 a 7-pixel row runs as one tile of 7 x 4 blocks, a 49-pixel row as
 * tiles of up to 14 pixels x 2, cut by plan_row), the widest tile on a tie. */
static int pick_nb(const rn_kernels *k, int kind, int ob_n, int len)
{
    int best = -1, best_tiles = 0;
    for (int i = 0; i < RN_NB_COUNT; i++) {
        if (!k->rmax[i] || ob_n % (1 << i) || !k->tile[kind][0][i])
            continue;
        int tiles = (len + k->rmax[i] - 1) / k->rmax[i];
        if (best >= 0) {
            /* worth / (tiles x rmax) against the best's */
            long a = (long)tile_worth(k, i) * best_tiles * k->rmax[best],
                 b = (long)tile_worth(k, best) * tiles * k->rmax[i];
            if (a < b || (a == b && k->rmax[i] <= k->rmax[best]))
                continue;
        }
        best = i;
        best_tiles = tiles;
    }
    return best < 0 ? 0 : best;
}

/* How a row of len pixels is cut into tiles: `full` tiles of rmax pixels,
 * then n pieces w[]. With the table's one-instance widths
 * (rn_kernels.pieces), the last pixels (up to 4 x rmax) go into the fewest
 * pieces and, of those, the most even (widest narrowest piece): on AVX-512 a
 * 49-pixel row runs as 14 + 14 + 13 + 8 rather than 14 + 14 + 14 + 7, whose
 * 7 the table would run as 4 + 2 + 1, tiles too narrow to hide the FMA
 * latency (a 7-pixel remainder at 0.63 of a full tile's rate, an 8-pixel
 * piece at 0.96: Intel Xeon, build/bench-tiles' shapes); 16 Winograd tiles
 * of 4 blocks as 6 + 6 + 4 rather than 7 + 7 + 2. Without pieces: rmax-wide
 * tiles and the remainder. Pieces change which pixels share a tile, never
 * the order of a pixel's sum. */
#define PLAN_TAIL (4 * 14)
struct tile_plan {
    int len, full, n;
    unsigned char w[PLAN_TAIL];
};

static void plan_row(const rn_kernels *k, int nbi, int len, struct tile_plan *p)
{
    int rmax = k->rmax[nbi];
    unsigned m = k->pieces[nbi];
    p->len = len;
    if (!m || 4 * rmax > PLAN_TAIL) {
        p->full = len / rmax;
        p->n = len % rmax != 0;
        p->w[0] = (unsigned char)(len % rmax);
    } else {
        int tail = len <= 4 * rmax ? len : len - (len - 3 * rmax) / rmax * rmax;
        unsigned char calls[PLAN_TAIL + 1], narrow[PLAN_TAIL + 1], pick[PLAN_TAIL + 1];
        calls[0] = 0;
        narrow[0] = UCHAR_MAX;
        for (int n = 1; n <= tail; n++) {
            calls[n] = UCHAR_MAX;
            narrow[n] = 0;
            pick[n] = 1;
            for (int q = RN_MIN(n, rmax); q >= 1; q--) {
                if (!(m >> q & 1) || calls[n - q] == UCHAR_MAX)
                    continue;
                int c = calls[n - q] + 1, nw = RN_MIN(narrow[n - q], q);
                if (c < calls[n] || (c == calls[n] && nw > narrow[n])) {
                    calls[n] = (unsigned char)c;
                    narrow[n] = (unsigned char)nw;
                    pick[n] = (unsigned char)q;
                }
            }
        }
        p->full = (len - tail) / rmax;
        p->n = 0;
        for (int n = tail; n > 0; n -= pick[n])
            p->w[p->n++] = pick[n];
    }
}

/* Of a job's two plans (its rows or chunks, and its last chunk), the one for
 * rows of len pixels. */
static const struct tile_plan *plan_for(const struct tile_plan plan[2], int len)
{
    return plan[0].len == len ? &plan[0] : &plan[1];
}

static int plan_tiles(const struct tile_plan *p)
{
    return p->full + p->n;
}

/* The width of tile i of plan p. */
static int plan_width(const struct tile_plan *p, int rmax, int i)
{
    return i < p->full ? rmax : p->w[i - p->full];
}

/* The weights of the pass after the current one, prefetched into L2 while
 * the current pass runs: each tile of the pass gets a slice as its prefetch
 * hint (rn_tile.pf) and spreads it over its blocks of channels
 * (rn_tile_pf_lines). At batch 1 the
 * weights of layers 3 and 4 come from memory (ResNet-50's packed weights,
 * 176 MB, do not stay in the last-level cache from one image to the next),
 * and a pass that waited for its weights ran a weight-heavy 1x1 convolution
 * about 25% slower than with them in cache (Intel Xeon, AVX-512). Issued
 * all at once before a pass, the prefetches were slower than none; a slice
 * at a time between tiles cost Winograd passes with warm weights 5-15%. */
struct prefetch {
    const char *p;                /* the first stream; NULL: none */
    size_t stride, len, at, step; /* bytes: between streams, per stream, given, per tile */
};

static void prefetch_set(struct prefetch *f, const void *p, size_t stride, size_t len, int tiles)
{
    *f = (struct prefetch){.p = p, .stride = stride, .len = len};
    f->step = (len / RN_MAX(1, tiles) + 63) / 64 * 64;
}

/* The next tile's slice (the tile's nb streams). */
static void prefetch_give(struct prefetch *f, rn_tile *t)
{
    size_t n = f->p ? RN_MIN(f->step, f->len - f->at) : 0;
    t->pf = n ? f->p + f->at : NULL;
    t->pf_ob = f->stride;
    t->pf_len = n;
    f->at += n;
}

struct conv_job {
    const rn_conv_args *a;
    const rn_kernels *k;
    int ib_n, ob_n, nb, rmax; /* ib_n: input blocks an output block reads (rn_conv.wp_ibg) */
    int obg;                  /* output blocks per merged group (rn_conv.wp_obg) */
    int in_blocks;            /* input blocks of an image */
    int ih, iw, oh, ow;     /* the view: one row of h*w pixels for 1x1/1 */
    int kh, kw, s, pad, cb; /* cb: input channels per block, 16 or 1 (NCHW) */
    int kind;               /* RN_TILE_* */
    int rows, n_chunks;     /* rows per chunk (or pixels, for one-row views) */
    int ibc;                /* input blocks per pass over a chunk */
    rn_tile_fn run;
    struct tile_plan plan[2]; /* rows (or chunks) of the view, and the last chunk */
};

/* Output row oy, pixels [x0, x1), in tiles of up to rmax pixels. A tile runs
 * the tap columns in range for all its pixels; when it touches the left or
 * right edge, each other tap column then runs, on top of the stored result, on
 * the pixels that have it in range (a tile one pixel narrower for a 3x3), and
 * the tile gets its epilogue last. */
static void conv_row(const struct conv_job *j, rn_tile *t, int oy, int x0, int x1,
                     struct prefetch *f)
{
    int s = j->s, pad = j->pad, relu = t->relu;
    t->ky0 = RN_MAX(0, pad - oy * s);
    t->ky1 = RN_MIN(j->kh, j->ih + pad - oy * s);
    float *out0 = t->out;
    uint16_t *outb0 = t->outb;
    const struct tile_plan *p = plan_for(j->plan, x1 - x0);
    for (int i = 0, ox = x0; i < plan_tiles(p); i++) {
        int r = plan_width(p, j->rmax, i), last = ox + r - 1;
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
        prefetch_give(f, t);
        j->run(t, r);
        if (edges) {
            /* each remaining tap column kx, on the pixels that have it in range */
            rn_tile e = *t;
            e.pf_len = 0;
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
                j->k->finish(t, r, j->nb, relu, outb0 ? outb0 + off : NULL);
        }
        ox += r;
    }
    t->out = out0;
    t->outb = outb0;
    t->relu = relu;
}

static void conv_task(void *arg, int task, int thread)
{
    const struct conv_job *j = arg;
    const rn_conv_args *a = j->a;
    int obg_n = j->ob_n / j->nb;
    int obg = task % obg_n;
    task /= obg_n;
    int chunk = task % j->n_chunks, img = task / j->n_chunks;
    int ob = obg * j->nb;
    size_t w_ib = (size_t)j->kh * j->kw * j->cb * 16; /* elements of one input block's taps */
    rn_tile t = {
        .in_ib = (size_t)j->ih * j->iw * j->cb,
        .kw = j->kw, .taps = j->kh * j->kw, .irow = j->iw * j->cb,
        .w_ob = (size_t)j->ib_n * w_ib,
        .out = a->out + ((size_t)img * j->ob_n + ob) * j->oh * j->ow * 16,
        .out_ob = (size_t)j->oh * j->ow * 16,
        .ch0 = ob * 16, .out_c = a->c->out_c,
    };
    size_t in_at = ((size_t)img * j->in_blocks + (size_t)(ob / j->obg) * j->ib_n) * t.in_ib,
           w_at = (size_t)ob * t.w_ob;
    uint16_t *outb = a->out_b ? a->out_b + (t.out - a->out) : NULL;
    int elem = j->kind == RN_TILE_BF16 ? 2 : 4;
    const char *wbase = j->kind == RN_TILE_BF16 ? (const char *)a->c->wb : (const char *)a->c->wp;
    int x0 = chunk * j->rows, x1 = RN_MIN(j->ow, x0 + j->rows);
    int y0 = chunk * j->rows, y1 = RN_MIN(j->oh, y0 + j->rows);
    int tiles = j->oh == 1 ? plan_tiles(plan_for(j->plan, x1 - x0))
                           : (y1 - y0) * plan_tiles(&j->plan[0]);
    for (int ib0 = 0; ib0 < j->ib_n; ib0 += j->ibc) {
        int last = ib0 + j->ibc >= j->ib_n;
        size_t in_off = in_at + ib0 * t.in_ib, w_off = w_at + ib0 * w_ib;
        /* the next pass: this task's, or the first of the task after it
         * (the next output block group: a thread runs a range of tasks) */
        size_t next = last ? (size_t)(obg + 1 < obg_n ? ob + j->nb : 0) * t.w_ob
                           : w_off + j->ibc * w_ib;
        int next_ib = last ? RN_MIN(j->ibc, j->ib_n) : RN_MIN(j->ibc, j->ib_n - ib0 - j->ibc);
        struct prefetch f;
        prefetch_set(&f, wbase + next * elem, t.w_ob * elem, next_ib * w_ib * elem, tiles);
        t.ib_n = RN_MIN(j->ibc, j->ib_n - ib0);
        t.in = j->kind == RN_TILE_BF16 ? (const void *)(a->in_b + in_off)
                                        : (const void *)(a->in + in_off);
        t.w = wbase + w_off * elem;
        t.outb = last ? outb : NULL;
        t.bias = ib0 == 0 ? a->bias : NULL;
        t.accumulate = ib0 > 0 || a->accumulate;
        t.relu = last && a->relu;
        if (j->oh == 1) {
            conv_row(j, &t, 0, x0, x1, &f);
        } else {
            for (int oy = y0; oy < y1; oy++)
                conv_row(j, &t, oy, 0, j->ow, &f);
        }
    }
}

static void direct_forward(const rn_exec *ex, const rn_conv_args *a)
{
    const rn_conv *c = a->c;
    const rn_kernels *k = ex->k;
    struct conv_job j = {.a = a, .k = k, .ob_n = rn_cblocks(c->out_c), .ih = a->ih, .iw = a->iw,
                         .kh = c->kh, .kw = c->kw, .s = c->stride, .pad = c->pad,
                         .cb = c->wb ? 16 : c->wp_icb};
    j.in_blocks = (c->in_c + j.cb - 1) / j.cb;
    j.ib_n = c->wp_ibg;
    j.obg = c->wp_obg;
    j.oh = rn_out_dim(a->ih, c->kh, c->stride, c->pad);
    j.ow = rn_out_dim(a->iw, c->kw, c->stride, c->pad);
    if (c->kh == 1 && c->kw == 1 && c->stride == 1 && c->pad == 0) {
        j.iw = j.ih * j.iw;
        j.ih = 1;
        j.ow = j.oh * j.ow;
        j.oh = 1;
    }
    j.kind = c->wb ? RN_TILE_BF16 : j.cb == 1 ? RN_TILE_NCHW : RN_TILE_F32;
    int nbi = pick_nb(k, j.kind, j.obg, j.ow);
    j.nb = 1 << nbi;
    j.rmax = k->rmax[nbi];
    j.run = k->tile[j.kind][c->stride == 2][nbi];
    int elem = j.kind == RN_TILE_BF16 ? 2 : 4;
    j.ibc = RN_MAX(1, k->l1_weights / (j.nb * c->kh * c->kw * j.cb * 16 * elem));
    /* chunks of about chunk_pixels, all of the same size (load balance) */
    int n_chunks = RN_MAX(1, (j.oh * j.ow + k->chunk_pixels / 2) / k->chunk_pixels);
    if (j.oh == 1) {
        j.rows = (j.ow + n_chunks - 1) / n_chunks;
        j.rows = (j.rows + j.rmax - 1) / j.rmax * j.rmax;
        j.n_chunks = (j.ow + j.rows - 1) / j.rows;
        plan_row(k, nbi, RN_MIN(j.rows, j.ow), &j.plan[0]);
        plan_row(k, nbi, j.ow - (j.n_chunks - 1) * j.rows, &j.plan[1]);
    } else {
        j.rows = (j.oh + RN_MIN(n_chunks, j.oh) - 1) / RN_MIN(n_chunks, j.oh);
        j.n_chunks = (j.oh + j.rows - 1) / j.rows;
        plan_row(k, nbi, j.ow, &j.plan[0]);
        j.plan[1] = j.plan[0];
    }
    rn_pool_run(ex->pool, a->n * j.n_chunks * (j.ob_n / j.nb), conv_task, &j);
}

/* ---- Winograd ---- */

struct wino_job {
    rn_wino w; /* what the transforms see */
    const rn_exec *ex;
    int nt, n_og; /* tiles in the batch, output block groups */
    int nb, rmax, ibc;
    int ibg, obg; /* input blocks an output block reads, output blocks per merged group */
    rn_tile_fn run;
    struct tile_plan plan[2]; /* a chunk of T tiles, and the last chunk */
    rn_wino_in_fn input;
    rn_wino_out_fn output;
};

/* Positions of c's transform: 16 for F(2x2, 3x3), 36 for F(4x4, 3x3). */
static int wino_positions(const rn_conv *c)
{
    return (c->wu_m + 2) * (c->wu_m + 2);
}

/* Tiles per chunk: the slices of a position within wino_slice bytes, and the
 * whole scratch within 16 such slices */
static int wino_tmax(const rn_kernels *k, const rn_conv *c)
{
    int t = k->wino_slice / (64 * (rn_cblocks(c->in_c) + rn_cblocks(c->out_c)));
    t = t * 16 / wino_positions(c);
    return RN_MAX(14, RN_MIN(126, t / 14 * 14));
}

size_t rn_conv_wino_floats(const rn_kernels *k, const rn_conv *c)
{
    return (size_t)wino_positions(c) *
           (16 * wino_tmax(k, c) * (rn_cblocks(c->in_c) + rn_cblocks(c->out_c)) + 2 * RN_WINO_PAD);
}

static void wino_task(void *arg, int task, int thread)
{
    const struct wino_job *j = arg;
    const rn_wino *w = &j->w;
    const rn_conv *c = w->a->c;
    int og = task % j->n_og, chunk = task / j->n_og;
    int t0 = chunk * w->T, tc = RN_MIN(w->T, j->nt - t0);
    int ob0 = og * w->og_size, ob1 = RN_MIN(w->ob_n, ob0 + w->og_size);
    if (tc <= 0 || ob0 >= ob1)
        return;
    float *V = j->ex->col + (size_t)thread * j->ex->col_stride;
    float *M = V + w->P * w->vp;
    j->input(w, t0, tc, V);
    size_t up = (size_t)w->ob_n * j->ibg * 256;
    const struct tile_plan *plan = plan_for(j->plan, tc);
    int elem = w->bf ? 2 : 4, tiles = plan_tiles(plan);
    const char *wbase = w->bf ? (const char *)c->wub : (const char *)c->wu;
    for (int p = 0; p < w->P; p++) {
        size_t vp = p * w->vp; /* elements, floats or bf16 */
        float *Mp = M + p * w->mp;
        for (int ob = ob0; ob < ob1; ob += j->nb) {
            int ib_at = ob / j->obg * j->ibg; /* the merged group's first input block */
            for (int ib0 = 0; ib0 < j->ibg; ib0 += j->ibc) {
                size_t vi = vp + (size_t)(ib_at + ib0) * w->T * 16,
                       wi = p * up + ((size_t)ob * j->ibg + ib0) * 256;
                /* prefetch the next pass's weights (struct prefetch): the
                 * next input blocks, output blocks or position, or the
                 * first pass of the task after this one */
                int np = p, nob = ob, nib = ib0 + j->ibc;
                if (nib >= j->ibg) {
                    nib = 0;
                    nob += j->nb;
                }
                if (nob >= ob1) {
                    nob = ob0;
                    np++;
                }
                if (np >= w->P) {
                    np = 0;
                    nob = og + 1 < j->n_og ? ob1 : 0;
                }
                size_t next = (np * up + ((size_t)nob * j->ibg + nib) * 256) * elem;
                struct prefetch f;
                prefetch_set(&f, nob < w->ob_n ? wbase + next : NULL, (size_t)j->ibg * 256 * elem,
                             (size_t)RN_MIN(j->ibc, j->ibg - nib) * 256 * elem, tiles);
                rn_tile t = {
                    .in = w->bf ? (const void *)((const uint16_t *)V + vi) : (const void *)(V + vi),
                    .in_ib = (size_t)w->T * 16,
                    .ib_n = RN_MIN(j->ibc, j->ibg - ib0), .kw = 1, .taps = 1,
                    .ky1 = 1, .kx1 = 1,
                    .w = wbase + wi * elem,
                    .w_ob = (size_t)j->ibg * 256, .out_ob = (size_t)w->T * 16,
                    .out_c = c->out_c, .accumulate = ib0 > 0,
                };
                for (int i = 0, tl = 0; i < tiles; i++) {
                    int r = plan_width(plan, j->rmax, i);
                    prefetch_give(&f, &t);
                    t.at = (ptrdiff_t)tl * 16;
                    t.out = Mp + ((size_t)(ob - ob0) * w->T + tl) * 16;
                    j->run(&t, r);
                    tl += r;
                }
            }
        }
    }
    j->output(w, t0, tc, ob0, ob1, M);
}

static void wino_forward(const rn_exec *ex, const rn_conv_args *a)
{
    const rn_conv *c = a->c;
    const rn_kernels *k = ex->k;
    int nthr = rn_pool_size(ex->pool);
    struct wino_job j = {.ex = ex, .n_og = 1, .ibg = c->wp_ibg, .obg = c->wp_obg};
    rn_wino *w = &j.w;
    *w = (rn_wino){.a = a, .ib_n = rn_cblocks(c->in_c), .ob_n = rn_cblocks(c->out_c),
                   .h = a->ih, .w = a->iw, .m = c->wu_m, .bf = c->wub != NULL};
    w->P = wino_positions(c);
    w->th = (w->h + w->m - 1) / w->m;
    w->tw = (w->w + w->m - 1) / w->m;
    j.nt = a->n * w->th * w->tw;
    int tmax = wino_tmax(k, c), n_chunks = (j.nt + tmax - 1) / tmax;
    /* every thread gets the same work: chunks in multiples of the threads,
     * or, when the batch has too few tiles for that, output block groups */
    if (n_chunks % nthr) {
        if (j.nt >= 28 * nthr)
            n_chunks = (n_chunks + nthr - 1) / nthr * nthr;
        else
            j.n_og = RN_MIN(nthr, w->ob_n);
    }
    w->T = (j.nt + n_chunks - 1) / n_chunks;
    int kind = w->bf ? RN_TILE_BF16 : RN_TILE_F32;
    int nbi = pick_nb(k, kind, j.obg, w->T);
    j.nb = 1 << nbi;
    j.rmax = k->rmax[nbi];
    j.run = k->tile[kind][0][nbi];
    plan_row(k, nbi, w->T, &j.plan[0]);
    plan_row(k, nbi, j.nt - (j.nt - 1) / w->T * w->T, &j.plan[1]); /* the last non-empty chunk */
    w->og_size = (w->ob_n + j.n_og - 1) / j.n_og;
    w->og_size = (w->og_size + j.nb - 1) / j.nb * j.nb;
    w->vp = (size_t)w->ib_n * w->T * 16 + RN_WINO_PAD;
    w->mp = (size_t)w->og_size * w->T * 16 + RN_WINO_PAD;
    j.ibc = RN_MAX(1, k->l1_weights / (j.nb * 256 * (w->bf ? 2 : 4)));
    j.input = k->wino_in[w->bf ? 2 : w->m == 4];
    j.output = k->wino_out[w->m == 4];
    rn_pool_run(ex->pool, n_chunks * j.n_og, wino_task, &j);
}

void rn_conv_blocked_forward(const rn_exec *ex, const rn_conv_args *a)
{
    if (a->c->wu || a->c->wub)
        wino_forward(ex, a);
    else
        direct_forward(ex, a);
}

struct cvt_job {
    const rn_kernels *k;
    const float *in;
    uint16_t *out;
    size_t n, chunk;
};

static void cvt_task(void *arg, int t, int thread)
{
    const struct cvt_job *j = arg;
    size_t i0 = (size_t)t * j->chunk, i1 = RN_MIN(j->n, i0 + j->chunk);
    j->k->to_bf16(j->in + i0, j->out + i0, i1 - i0);
}

void rn_blocked_to_bf16(const rn_exec *ex, const float *in, size_t n, uint16_t *out)
{
    struct cvt_job j = {.k = ex->k, .in = in, .out = out, .n = n, .chunk = 16 * 4096};
    rn_pool_run(ex->pool, (int)((n + j.chunk - 1) / j.chunk), cvt_task, &j);
}
