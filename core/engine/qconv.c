/* INT8 convolutions on the blocked engine's tables (docs/int8.md).
 *
 * Activations carry a border of RN_QB zero pixels (engine.h), which is the
 * convolutions' zero padding: every tile runs every tap on every pixel, so
 * unlike the FP32 driver (blocked.c) there are no edge columns to run
 * apart, and a tile keeps its int32 sums in registers over all its input
 * blocks and taps: no partial sums in memory, one requantizing store. The
 * weights of one output block group (ib_n * taps * 256 bytes) stream from
 * L2 while the tile reuses each load for all its pixels.
 *
 * Work is cut as the FP32 driver cuts it: tasks of (image, chunk of output
 * rows, group of nb output blocks); a task also writes the border of its
 * rows. Integer sums are exact and the requantization is one fixed sequence
 * per element (rn_requant), so neither the cut nor the table changes a bit.
 */
#include <string.h>

#include "kernels.h"

struct qconv_job {
    const rn_qconv_args *a;
    rn_qtile_fn run;
    int nb, rmax, ob_n, ib_n, obg, in_blocks;
    int oh, ow, s, cpix;
    int rows, n_chunks;      /* output rows per task, tasks per image and group */
    size_t in_plane, out_plane; /* bytes per image and block (the stem: per image) */
    int in_row, out_row;     /* bytes per row, border included */
    ptrdiff_t in_at;         /* bytes from a plane to output (0, 0)'s first tap */
    size_t w_ob;
};

static void qconv_task(void *arg, int task, int thread)
{
    const struct qconv_job *j = arg;
    const rn_qconv_args *a = j->a;
    const rn_conv *c = a->c;
    int groups = j->ob_n / j->nb, grp = task % groups;
    task /= groups;
    int chunk = task % j->n_chunks, img = task / j->n_chunks, ob = grp * j->nb;
    int y0 = chunk * j->rows, y1 = RN_MIN(j->oh, y0 + j->rows);
    size_t out_at = ((size_t)img * j->ob_n + ob) * j->out_plane;
    rn_qtile t = {
        .in_ib = j->in_plane, .ib_n = j->ib_n, .kh = c->kh, .kw = c->kw, .irow = j->in_row,
        .w = c->wq + (size_t)ob * j->w_ob, .w_ob = j->w_ob,
        .bias = c->bq + ob * 16, .mult = c->mq + ob * 16,
        .out_ob = j->out_plane, .rmul = c->rq, .res_s8 = a->res_s8, .relu = a->relu,
        .zres = a->res_zp, .zout = c->out_zp,
    };
    const uint8_t *in = a->in + ((size_t)img * j->in_blocks + (size_t)(ob / j->obg) * j->ib_n) * j->in_plane +
                        j->in_at;
    uint8_t *out = (uint8_t *)a->out + out_at;
    const uint8_t *res = a->res ? (const uint8_t *)a->res + out_at : NULL;
    for (int oy = y0; oy < y1; oy++) {
        size_t orow = (size_t)(oy + RN_QB) * j->out_row + RN_QB * 16;
        for (int ox = 0; ox < j->ow; ox += j->rmax) {
            int r = RN_MIN(j->rmax, j->ow - ox);
            t.in = in + (size_t)oy * j->s * j->in_row + (size_t)ox * j->s * j->cpix;
            t.out = out + orow + (size_t)ox * 16;
            t.res = res ? res + orow + (size_t)ox * 16 : NULL;
            j->run(&t, r);
        }
    }
    for (int b = 0; b < j->nb; b++)
        rn_qborder(out + b * j->out_plane, j->oh, j->ow, y0, y1);
}

/* The widest group of output blocks the table has tiles for that divides a
 * merged group: 4 blocks on short rows (layer 4's 7 pixels), else 2. */
static int pick_qnb(const rn_qkernels *k, int kind, int s, int obg, int ow)
{
    static const int order[2][3] = {{RN_NB_2, RN_NB_4, RN_NB_1}, {RN_NB_4, RN_NB_2, RN_NB_1}};
    const int *o = order[ow <= 8];
    for (int i = 0; i < 3; i++)
        if (k->tile[kind][s][o[i]] && k->rmax[o[i]] > 0 && obg % (1 << o[i]) == 0)
            return o[i];
    return RN_NB_1;
}

/* ---- Winograd F(2x2, 3x3) (the tables with rn_qkernels.wino) ----
 * Work is cut into rows of 2x2 output tiles of one image: as many as keep
 * V (16 positions x all input blocks x the rows' tiles, int16) within
 * QWINO_V bytes, one row at least, then groups of output blocks when that
 * leaves too few tasks for the threads. A task transforms its rows' input
 * for itself (a small share of its work: the products dominate). */
#define QWINO_V (128 * 1024)
#define QWINO_PAD 64 /* bytes between positions: slices of 4 KB multiples
                      * put every position of a tile in one L1 set */
/* Fewer tiles in the batch than this run directly: the transformed weights
 * (16 positions of int16, 1.8x the direct tiles' int16) then come from
 * memory for too little work (ResNet-50's layer 4 at batch 1: 16 tiles) */
#define QWINO_MIN_TILES 32

static int qwino_rows(int ib_n, int tw)
{
    return RN_MAX(1, QWINO_V / (16 * ib_n * tw * 32));
}

static void qwino_sizes(const rn_conv *c, int ih, int iw, rn_qwino *w)
{
    w->ib_n = rn_cblocks(c->in_c);
    w->ob_n = rn_cblocks(c->out_c);
    w->h = ih;
    w->w = iw;
    w->th = (ih + 1) / 2;
    w->tw = (iw + 1) / 2;
    int tc = qwino_rows(w->ib_n, w->tw) * w->tw; /* tiles of a task, at most */
    w->vp = ((size_t)w->ib_n * tc * 32 + QWINO_PAD) / 2;
    w->mp = ((size_t)tc * 64 + QWINO_PAD) / 4;
}

/* Bytes of V and M (16 positions each) and the alignment slack */
static size_t qwino_scratch(const rn_qwino *w)
{
    return 16 * (w->vp * 2 + w->mp * 4) + 64;
}

size_t rn_qconv_scratch_bytes(const rn_conv *c, int ih, int iw)
{
    if (!c->qwu)
        return 0;
    rn_qwino w;
    qwino_sizes(c, ih, iw, &w);
    return qwino_scratch(&w);
}

struct qwino_job {
    rn_qwino w;
    rn_qwino_fn run;
    const rn_exec *ex;
    int rows, n_chunks, n_og, og_size;
};

static void qwino_task(void *arg, int task, int thread)
{
    const struct qwino_job *j = arg;
    int og = task % j->n_og, chunk = (task / j->n_og) % j->n_chunks, img = task / j->n_og / j->n_chunks;
    int ty0 = chunk * j->rows, ty1 = RN_MIN(j->w.th, ty0 + j->rows);
    int ob0 = og * j->og_size, ob1 = RN_MIN(j->w.ob_n, ob0 + j->og_size);
    if (ob0 >= ob1)
        return;
    char *scratch = (char *)(j->ex->col + (size_t)thread * j->ex->col_stride);
    j->run(&j->w, img, ty0, ty1, ob0, ob1, scratch);
}

/* 0 without running: too few tiles for Winograd to pay, or the plan gave
 * too little scratch (rn_qconv_scratch_bytes) */
static int qwino_forward(const rn_exec *ex, const rn_qconv_args *a)
{
    const rn_conv *c = a->c;
    int nthr = rn_pool_size(ex->pool);
    struct qwino_job j = {.run = ex->qk->wino, .ex = ex};
    rn_qwino *w = &j.w;
    qwino_sizes(c, a->ih, a->iw, w);
    if ((size_t)a->n * w->th * w->tw < QWINO_MIN_TILES || !ex->col ||
        ex->col_stride * sizeof(float) < qwino_scratch(w))
        return 0;
    w->a = a;
    w->in_row = (a->iw + 2 * RN_QB) * 16;
    w->out_row = w->in_row;
    w->in_plane = rn_qplane(a->ih, a->iw);
    w->out_plane = w->in_plane;
    j.rows = RN_MIN(w->th, qwino_rows(w->ib_n, w->tw));
    j.n_chunks = (w->th + j.rows - 1) / j.rows;
    j.rows = (w->th + j.n_chunks - 1) / j.n_chunks; /* the same work in each */
    int tasks = a->n * j.n_chunks;
    j.n_og = tasks >= 2 * nthr ? 1 : RN_MIN(w->ob_n, (2 * nthr + tasks - 1) / tasks);
    j.og_size = (w->ob_n + j.n_og - 1) / j.n_og;
    j.n_og = (w->ob_n + j.og_size - 1) / j.og_size;
    rn_pool_run(ex->pool, tasks * j.n_og, qwino_task, &j);
    return 1;
}

void rn_qconv_forward(const rn_exec *ex, const rn_qconv_args *a)
{
    const rn_conv *c = a->c;
    const rn_qkernels *k = ex->qk;
    if (c->qwu && k->wino && qwino_forward(ex, a))
        return;
    int stem = c->q_stem, kind = stem ? RN_QIN_NHWC4 : RN_QIN_C16;
    struct qconv_job j = {.a = a, .ob_n = rn_cblocks(c->out_c), .ib_n = c->wp_ibg, .obg = c->wp_obg,
                          .s = c->stride, .cpix = stem ? 4 : 16};
    j.oh = rn_out_dim(a->ih, c->kh, c->stride, c->pad);
    j.ow = rn_out_dim(a->iw, c->kw, c->stride, c->pad);
    if (stem) {
        /* the image is padded by the stem's own padding: output (0, 0)'s
         * first tap is its first pixel */
        j.in_blocks = 1;
        j.in_row = (a->iw + 2 * c->pad) * 4;
        j.in_plane = (size_t)(a->ih + 2 * c->pad) * j.in_row;
        j.in_at = 0;
    } else {
        j.in_blocks = rn_cblocks(c->in_c);
        j.in_row = (a->iw + 2 * RN_QB) * 16;
        j.in_plane = rn_qplane(a->ih, a->iw);
        j.in_at = (ptrdiff_t)(RN_QB - c->pad) * j.in_row + (ptrdiff_t)(RN_QB - c->pad) * 16;
    }
    j.out_row = (j.ow + 2 * RN_QB) * 16;
    j.out_plane = rn_qplane(j.oh, j.ow);
    j.w_ob = (size_t)j.ib_n * c->kh * c->kw * j.cpix * 16 * (k->w16 ? 2 : 1);
    int nbi = pick_qnb(k, kind, c->stride == 2, j.obg, j.ow);
    j.nb = 1 << nbi;
    j.rmax = k->rmax[nbi];
    j.run = k->tile[kind][c->stride == 2][nbi];
    int n_chunks = RN_MAX(1, (j.oh * j.ow + k->chunk_pixels / 2) / k->chunk_pixels);
    j.rows = (j.oh + RN_MIN(n_chunks, j.oh) - 1) / RN_MIN(n_chunks, j.oh);
    j.n_chunks = (j.oh + j.rows - 1) / j.rows;
    rn_pool_run(ex->pool, a->n * j.n_chunks * (j.ob_n / j.nb), qconv_task, &j);
}
