/* The INT8 convolutions of ResNet-50 (v1, the default model's) alone, shape
 * by shape, on one INT8 table: the fastest of many runs of each (the least
 * disturbed by whatever else the machine runs), in GMAC/s, and the network's
 * convolution time as the sum of each shape's fastest run times its count.
 * Random weights and activations; the results are not looked at (the unit
 * tests check them). On a table with Winograd tiles (AVX2), each 3x3
 * convolution it takes is also run directly on the same table, in a second
 * line, and the total is given both ways.
 *
 *   build/bench-qlayers [--isa avx512|avx2|c] [--batch N] [--threads T] [--seconds S]
 *
 * S (default 0.3) is the time spent on each shape. Compare tables, or
 * builds, in one run each, alternated, on a quiet machine or with medians.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cpu.h"
#include "engine/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

struct shape {
    const char *name;
    int k, s, in_c, out_c, ih, res, count; /* res: adds a residual (u8) */
};

/* ResNet-50 v1 (stride on the first 1x1), 224x224: what `resnet bench
 * --layers` lists for models/resnet50.safetensors */
static const struct shape shapes[] = {
    {"stem 7x7/2 3->64", 7, 2, 3, 64, 224, 0, 1},
    {"l1 1x1 64->256 (ds)", 1, 1, 64, 256, 56, 0, 1},
    {"l1 1x1 64->64", 1, 1, 64, 64, 56, 0, 1},
    {"l1 3x3 64->64", 3, 1, 64, 64, 56, 0, 3},
    {"l1 1x1 64->256 +res", 1, 1, 64, 256, 56, 1, 3},
    {"l1 1x1 256->64", 1, 1, 256, 64, 56, 0, 2},
    {"l2 1x1/2 256->512 (ds)", 1, 2, 256, 512, 56, 0, 1},
    {"l2 1x1/2 256->128", 1, 2, 256, 128, 56, 0, 1},
    {"l2 3x3 128->128", 3, 1, 128, 128, 28, 0, 4},
    {"l2 1x1 128->512 +res", 1, 1, 128, 512, 28, 1, 4},
    {"l2 1x1 512->128", 1, 1, 512, 128, 28, 0, 3},
    {"l3 1x1/2 512->1024 (ds)", 1, 2, 512, 1024, 28, 0, 1},
    {"l3 1x1/2 512->256", 1, 2, 512, 256, 28, 0, 1},
    {"l3 3x3 256->256", 3, 1, 256, 256, 14, 0, 6},
    {"l3 1x1 256->1024 +res", 1, 1, 256, 1024, 14, 1, 6},
    {"l3 1x1 1024->256", 1, 1, 1024, 256, 14, 0, 5},
    {"l4 1x1/2 1024->2048 (ds)", 1, 2, 1024, 2048, 14, 0, 1},
    {"l4 1x1/2 1024->512", 1, 2, 1024, 512, 14, 0, 1},
    {"l4 3x3 512->512", 3, 1, 512, 512, 7, 0, 3},
    {"l4 1x1 512->2048 +res", 1, 1, 512, 2048, 7, 1, 3},
    {"l4 1x1 2048->512", 1, 1, 2048, 512, 7, 0, 2},
};

static uint32_t seed = 1;
static int rnd(int lo, int hi)
{
    seed = seed * 1664525u + 1013904223u;
    return lo + (int)((seed >> 8) % (uint32_t)(hi - lo + 1));
}

static double run_shape(const rn_exec *ex0, const struct shape *s, int n, double secs, double *macs)
{
    rn_exec scratch_ex = *ex0, *ex = &scratch_ex;
    int stem = s->k == 7, pad = s->k / 2;
    rn_conv c = {.in_c = s->in_c, .out_c = s->out_c, .kh = s->k, .kw = s->k, .stride = s->s,
                 .pad = pad, .groups = 1, .in_scale = 0.02f, .out_scale = 0.05f, .in_zp = 128};
    size_t nw = (size_t)s->out_c * s->in_c * s->k * s->k;
    int8_t *w = malloc(nw);
    float *ws = malloc(s->out_c * sizeof(float));
    int32_t *b = malloc(s->out_c * sizeof(int32_t));
    for (size_t i = 0; i < nw; i++)
        w[i] = (int8_t)rnd(-127, 127);
    for (int o = 0; o < s->out_c; o++) {
        ws[o] = 0.0001f;
        b[o] = rnd(-1000, 1000);
    }
    c.qw = w;
    c.qscale = ws;
    c.qbias = b;
    c.res_scale = s->res ? 0.03f : 0.0f;
    void *packed = rn_alloc(rn_qconv_packed_bytes(&c, stem, ex->qk));
    rn_qconv_pack(&c, stem, ex->qk, packed);
    size_t col = (rn_qconv_scratch_bytes(&c, s->ih, s->ih) + 63) / 64 * 16;
    ex->col = col ? rn_alloc(col * sizeof(float) * (size_t)rn_pool_size(ex->pool)) : NULL;
    ex->col_stride = col;
    int oh = rn_out_dim(s->ih, s->k, s->s, pad);
    size_t in_bytes = stem ? rn_qimage_bytes(n, s->ih, s->ih, pad) : rn_qbytes(n, s->in_c, s->ih, s->ih);
    size_t out_bytes = rn_qbytes(n, s->out_c, oh, oh);
    uint8_t *in = rn_alloc(in_bytes), *out = rn_alloc(out_bytes), *res = s->res ? rn_alloc(out_bytes) : NULL;
    for (size_t i = 0; i < in_bytes; i++)
        in[i] = (uint8_t)rnd(0, 255);
    if (res)
        for (size_t i = 0; i < out_bytes; i++)
            res[i] = (uint8_t)rnd(0, 255);
    /* the projection shortcuts (ds) write s8, without a ReLU */
    rn_qconv_args a = {.c = &c, .in = in, .n = n, .ih = s->ih, .iw = s->ih, .out = out, .res = res,
                       .relu = !strstr(s->name, "(ds)")};
    double best = 1e9, t0 = now();
    int runs = 0;
    do {
        double t = now();
        rn_qconv_forward(ex, &a);
        t = now() - t;
        if (t < best)
            best = t;
        runs++;
    } while (runs < 5 || now() - t0 < secs);
    *macs = (double)n * oh * oh * s->out_c * (stem ? 3 : s->in_c) * s->k * s->k;
    rn_free(ex->col);
    rn_free(packed);
    rn_free(in);
    rn_free(out);
    rn_free(res);
    free(w);
    free(ws);
    free(b);
    return best;
}

int main(int argc, char **argv)
{
    int isa = RN_ISA_AUTO, n = 1, threads = 1;
    double secs = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            i++;
            isa = !strcmp(argv[i], "avx512") ? RN_ISA_AVX512 : !strcmp(argv[i], "avx2") ? RN_ISA_AVX2
                  : !strcmp(argv[i], "neon")                                             ? RN_ISA_NEON
                                                                                         : RN_ISA_C;
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            n = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            secs = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench-qlayers [--isa avx512|avx2|neon|c] [--batch N] "
                            "[--threads T] [--seconds S]\n");
            return 2;
        }
    }
    if (isa == RN_ISA_AUTO) {
        char err[128];
        if (rn_isa_choose(RN_ISA_AUTO, &isa, err, sizeof err) != 0) {
            fprintf(stderr, "bench-qlayers: %s\n", err);
            return 1;
        }
    }
    const rn_qkernels *k = rn_qkernels_get(isa);
    if (!k || n < 1 || threads < 1) {
        fprintf(stderr, "bench-qlayers: no INT8 table for that ISA on this CPU\n");
        return 1;
    }
    rn_exec ex = {.pool = rn_pool_new(threads), .qk = k};
    printf("INT8 convolutions of ResNet-50, table %s, batch %d, %d threads, fastest run of each\n",
           k->name, n, threads);
    printf("%-26s %5s %9s %8s %9s\n", "shape", "count", "ms/batch", "GMAC/s", "ms total");
    /* the same table without its Winograd tiles */
    rn_qkernels direct = *k;
    direct.wino = NULL;
    rn_exec ex_direct = ex;
    ex_direct.qk = &direct;
    double total = 0, total_direct = 0, total_macs = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const struct shape *sh = &shapes[i];
        double macs, t = run_shape(&ex, sh, n, secs, &macs), td = t;
        int wino = k->wino && sh->k == 3 && sh->s == 1;
        printf("%-26s %5d %9.3f %8.1f %9.3f\n", sh->name, sh->count, t * 1e3, macs / t / 1e9,
               t * sh->count * 1e3);
        if (wino) {
            td = run_shape(&ex_direct, sh, n, secs, &macs);
            printf("%-26s %5s %9.3f %8.1f %9.3f\n", "  the same, direct", "", td * 1e3, macs / td / 1e9,
                   td * sh->count * 1e3);
        }
        total += t * sh->count;
        total_direct += td * sh->count;
        total_macs += macs * sh->count;
    }
    printf("%-26s %5s %9s %8.1f %9.3f\n", "all convolutions", "", "", total_macs / total / 1e9, total * 1e3);
    if (k->wino)
        printf("%-26s %5s %9s %8.1f %9.3f\n", "  3x3 direct", "", "", total_macs / total_direct / 1e9,
               total_direct * 1e3);
    rn_pool_free(ex.pool);
    return 0;
}
