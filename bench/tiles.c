/* The micro-kernels alone: GFLOP/s of each tile shape of every kernel table
 * this CPU runs (core/engine/kernels.h), on one thread, everything in L1: a 1x1
 * convolution of 8 input blocks (128 channels) over 112 pixels, the tile the
 * driver gives a 1x1 pass, run over and over. Compare the figures with the
 * 1-thread FMA peak of build/peak: the gap is what the tile's loads and
 * bookkeeping cost, before the driver and memory add theirs. (make bench;
 * build/bench-tiles [seconds per shape, default 0.5])
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* GFLOP/s of tile nbi of table k over pix pixels of ib input blocks */
static double measure(const rn_kernels *k, int nbi, int ib, int pix, double secs)
{
    int nb = 1 << nbi, r = k->rmax[nbi];
    pix = pix / r * r;
    float *in = rn_alloc((size_t)ib * pix * 16 * sizeof(float));
    float *w = rn_alloc((size_t)nb * ib * 256 * sizeof(float));
    float *out = rn_alloc((size_t)nb * pix * 16 * sizeof(float));
    if (!in || !w || !out) {
        fprintf(stderr, "bench-tiles: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)ib * pix * 16; i++)
        in[i] = (float)(i % 7) * 0.125f;
    for (size_t i = 0; i < (size_t)nb * ib * 256; i++)
        w[i] = (float)(i % 5) * 0.0625f;
    memset(out, 0, (size_t)nb * pix * 16 * sizeof(float));
    rn_tile t = {.in = in, .in_ib = (size_t)pix * 16, .ib_n = ib, .kw = 1, .taps = 1,
                 .irow = pix * 16, .ky1 = 1, .kx1 = 1, .w = w, .w_ob = (size_t)ib * 256,
                 .out = out, .out_ob = (size_t)pix * 16, .out_c = nb * 16, .accumulate = 1};
    rn_tile_fn fn = k->tile[RN_TILE_F32][0][nbi];
    long reps = 0;
    double t0 = now(), t1;
    do {
        for (int rep = 0; rep < 50; rep++)
            for (int p = 0; p < pix; p += r) {
                t.at = (ptrdiff_t)p * 16;
                t.out = out + (size_t)p * 16;
                fn(&t, r);
            }
        reps += 50;
        t1 = now();
    } while (t1 - t0 < secs);
    rn_free(in);
    rn_free(w);
    rn_free(out);
    return (double)reps * pix * nb * 16 * ib * 16 * 2 / (t1 - t0) / 1e9;
}

int main(int argc, char **argv)
{
    double secs = 0.5;
    if (argc > 2 || (argc == 2 && (secs = atof(argv[1])) <= 0)) {
        fprintf(stderr, "usage: bench-tiles [seconds per shape > 0]\n");
        return 2;
    }
    static const int isas[] = {RN_ISA_AVX512, RN_ISA_AVX2, RN_ISA_NEON, RN_ISA_C};
    printf("micro-kernel tiles, FP32 1x1, 128 input channels x 112 pixels, L1-resident, 1 thread\n");
    printf("%-8s %-22s %10s\n", "table", "tile", "GFLOP/s");
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        const rn_kernels *k = rn_kernels_get(isas[i]);
        if (!k)
            continue;
        for (int nbi = 0; nbi < RN_NB_COUNT; nbi++) {
            if (!k->rmax[nbi] || !k->tile[RN_TILE_F32][0][nbi])
                continue;
            char shape[32];
            snprintf(shape, sizeof shape, "%d px x %d blocks", k->rmax[nbi], 1 << nbi);
            printf("%-8s %-22s %10.1f\n", k->name, shape, measure(k, nbi, 8, 112, secs));
        }
    }
    return 0;
}
