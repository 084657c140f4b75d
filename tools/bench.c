/* resnet bench: inference speed on random input; the last line is JSON.
 * --layers also times every op of the plan (rn_ctx_profile) and prints where
 * the time goes, op by op, with each convolution's GFLOP/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "resnet.h"
#include "tools.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The ops in plan order: time per batch (mean over the runs), the fastest
 * run per image, GFLOP/s over the mean, and the share of the total. */
static void print_layers(const rn_op_profile *p, int n, int batch)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        total += p[i].seconds;
    printf("%3s  %-18s %-42s %9s %9s %8s %6s\n", "op", "layer", "what", "ms/batch", "best ms/im",
           "GFLOP/s", "share");
    for (int i = 0; i < n; i++) {
        if (!p[i].calls)
            continue;
        double ms = p[i].seconds * 1e3 / p[i].calls;
        printf("%3d  %-18s %-42s %9.3f %9.3f ", i, p[i].layer, p[i].what, ms, p[i].best * 1e3);
        if (p[i].flops > 0)
            printf("%8.1f", p[i].flops * p[i].images / p[i].seconds * 1e-9);
        else
            printf("%8s", "");
        printf(" %5.1f%%\n", total > 0 ? 100 * p[i].seconds / total : 0.0);
    }
    printf("ops: %.2f ms per batch of %d in all (the rest of a run is the dispatch between ops)\n",
           p[0].calls ? total * 1e3 / p[0].calls : 0.0, batch);
}

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL;
    int batch = 1, threads = 0, size = 224, precision = RN_PRECISION_FP32, layers = 0;
    double seconds = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v, i++;
        else if (!strcmp(a, "--batch"))
            batch = tool_parse_int(a, v, 1, 4096), i++;
        else if (!strcmp(a, "--threads"))
            threads = tool_parse_int(a, v, 0, 1024), i++;
        else if (!strcmp(a, "--size"))
            size = tool_parse_int(a, v, 32, 8192), i++;
        else if (!strcmp(a, "--seconds"))
            seconds = tool_parse_int(a, v, 1, 86400), i++;
        else if (!strcmp(a, "--precision"))
            precision = tool_parse_precision(v), i++;
        else if (!strcmp(a, "--layers"))
            layers = 1;
        else
            model = NULL, i = argc; /* usage */
    }
    if (!model) {
        fprintf(stderr, "usage: resnet bench -m MODEL [--batch B] [--threads T] [--seconds S] "
                        "[--size S] [--precision fp32|bf16] [--layers]\n");
        return 2;
    }
    char err[512];
    rn_model *m = NULL;
    rn_ctx *ctx = NULL;
    float *in = NULL, *out = NULL;
    double *times = NULL;
    rn_op_profile *prof = NULL;
    int status = 1;
    if (tool_open_model(model, precision, threads, batch, size, &m, &ctx) < 0)
        goto out;
    const rn_model_info *info = rn_model_info_get(m);
    size_t n_in = (size_t)batch * 3 * size * size;
    in = malloc(n_in * sizeof(float));
    out = malloc((size_t)batch * info->n_classes * sizeof(float));
    int cap = 100000;
    times = malloc((size_t)cap * sizeof(double));
    if (!in || !out || !times) {
        fprintf(stderr, "resnet: out of memory\n");
        goto out;
    }
    unsigned s = 12345;
    for (size_t i = 0; i < n_in; i++) {
        s = s * 1103515245u + 12345u;
        in[i] = (float)((s >> 8) & 0xffff) / 65535.0f * 4.0f - 2.0f;
    }
    if (rn_infer(ctx, in, batch, size, size, out, NULL, err, sizeof err) < 0) { /* warm-up */
        fprintf(stderr, "resnet: %s\n", err);
        goto out;
    }
    if (layers && rn_ctx_profile(ctx, 1) < 0) {
        fprintf(stderr, "resnet: out of memory\n");
        goto out;
    }
    int runs = 0;
    double t_start = now_ms();
    while (runs < cap && (runs < 3 || now_ms() - t_start < seconds * 1e3)) {
        double t0 = now_ms();
        rn_infer(ctx, in, batch, size, size, out, NULL, NULL, 0);
        times[runs++] = now_ms() - t0;
    }
    qsort(times, (size_t)runs, sizeof *times, cmp_double);
    double median = runs % 2 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
    if (threads == 0)
        threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    printf("model %s (%s), batch %d, %dx%d, %d runs: median %.2f ms/batch, min %.2f, max %.2f\n",
           model, info->arch, batch, size, size, runs, median, times[0], times[runs - 1]);
    int n_ops = 0;
    if (layers) {
        n_ops = rn_ctx_profile_get(ctx, NULL, 0);
        if (!(prof = calloc((size_t)n_ops, sizeof *prof))) {
            fprintf(stderr, "resnet: out of memory\n");
            goto out;
        }
        rn_ctx_profile_get(ctx, prof, n_ops);
        print_layers(prof, n_ops, batch);
    }
    printf("{\"batch\":%d,\"threads\":%d,\"images_per_s\":%.2f,\"ms_per_batch_median\":%.3f,"
           "\"isa\":\"%s\",\"precision\":\"%s\",\"gflops_224\":%.3f,\"openblas_core\":\"%s\"",
           batch, threads, batch * 1000.0 / median, median, rn_isa_name(info->isa),
           rn_precision_name(info->precision), info->gflops,
           rn_blas_corename());
    if (layers) {
        printf(",\"layers\":[");
        for (int i = 0; i < n_ops; i++) {
            const rn_op_profile *p = &prof[i];
            /* layer names and descriptions hold no quotes or backslashes */
            printf("%s{\"op\":%d,\"layer\":\"%s\",\"what\":\"%s\",\"calls\":%ld,"
                   "\"ms_per_batch\":%.6g,\"best_ms_per_image\":%.6g,\"gflop_per_image\":%.6g}",
                   i ? "," : "", i, p->layer, p->what, p->calls,
                   p->calls ? p->seconds * 1e3 / p->calls : 0.0, p->best * 1e3, p->flops * 1e-9);
        }
        printf("]");
    }
    printf("}\n");
    status = 0;
out:
    free(prof);
    free(times);
    free(in);
    free(out);
    rn_ctx_free(ctx);
    rn_model_free(m);
    return status;
}
