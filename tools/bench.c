/* resnet bench: inference speed on random input; the last line is JSON. */
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

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL;
    int batch = 1, threads = 0, size = 224, precision = RN_PRECISION_FP32;
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
        else {
            fprintf(stderr, "usage: resnet bench -m MODEL [--batch B] [--threads T] "
                            "[--seconds S] [--size S] [--precision fp32|bf16]\n");
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "usage: resnet bench -m MODEL [--batch B] [--threads T] [--seconds S] [--precision fp32|bf16]\n");
        return 2;
    }
    char err[512];
    rn_model *m = NULL;
    rn_ctx *ctx = NULL;
    float *in = NULL, *out = NULL;
    double *times = NULL;
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
    printf("{\"batch\":%d,\"threads\":%d,\"images_per_s\":%.2f,\"ms_per_batch_median\":%.3f,"
           "\"isa\":\"%s\",\"precision\":\"%s\",\"gflops_224\":%.3f,\"openblas_core\":\"%s\"}\n",
           batch, threads, batch * 1000.0 / median, median, rn_isa_name(info->isa),
           info->precision == RN_PRECISION_BF16 ? "bf16" : "fp32", info->gflops,
           rn_blas_corename());
    status = 0;
out:
    free(times);
    free(in);
    free(out);
    rn_ctx_free(ctx);
    rn_model_free(m);
    return status;
}
