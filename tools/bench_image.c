/* resnet bench-image: decode + preprocess time per image, with and without DCT scaling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resnet.h"
#include "tools.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Run decode (+ preprocess when pp) for about `seconds`; best and mean ms. */
static int run(const void *data, size_t len, const rn_image_params *ip, const rn_preprocess *pp,
               float *x, double seconds, double *best, double *mean)
{
    char err[256];
    int n = 0;
    double start = now(), t = start;
    *best = 1e30;
    do {
        double t0 = now();
        int rc;
        if (pp) {
            rc = rn_image_to_tensor(data, len, ip, pp, x, err, sizeof err);
        } else {
            rn_image im;
            rc = rn_image_decode(data, len, ip, &im, err, sizeof err);
            rn_image_free(&im);
        }
        if (rc < 0) {
            fprintf(stderr, "resnet: %s\n", err);
            return rc;
        }
        t = now();
        *best = t - t0 < *best ? t - t0 : *best;
        n++;
    } while (t - start < seconds || n < 3);
    *best *= 1e3;
    *mean = (t - start) * 1e3 / n;
    return 0;
}

int cmd_bench_image(int argc, char **argv)
{
    double seconds = 2;
    int dct_only = 0;
    const char *path = NULL;
    rn_preprocess pp = rn_preprocess_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seconds"))
            seconds = tool_parse_int(a, v, 1, 3600), i++;
        else if (!strcmp(a, "--resize"))
            pp.resize = tool_parse_int(a, v, 1, 8192), i++;
        else if (!strcmp(a, "--crop"))
            pp.crop = tool_parse_int(a, v, 1, 8192), i++;
        else if (!strcmp(a, "--dct"))
            dct_only = 1;
        else if (a[0] != '-' && !path)
            path = a;
        else
            path = NULL, i = argc; /* unknown flag or a second file: usage */
    }
    if (!path) {
        fprintf(stderr, "usage: resnet bench-image FILE [--dct] [--seconds S] "
                        "[--resize R] [--crop C]\n");
        return 2;
    }
    char err[512];
    size_t len = 0;
    void *data = tool_read_file(path, &len, err, sizeof err);
    float *x = malloc(sizeof(float) * 3 * (size_t)pp.crop * pp.crop);
    rn_image im = {0};
    int status = 1;
    if (!data || !x) {
        fprintf(stderr, "resnet: %s\n", data ? "out of memory" : err);
        goto out;
    }
    if (rn_image_decode(data, len, NULL, &im, err, sizeof err) < 0) {
        fprintf(stderr, "resnet: %s: %s\n", path, err);
        goto out;
    }
    printf("%s: %dx%d, %zu bytes, resize %d crop %d\n", path, im.width, im.height, len, pp.resize,
           pp.crop);
    for (int dct = dct_only; dct <= 1; dct++) {
        rn_image_params ip = rn_image_default_params();
        ip.dct_scaling = dct;
        ip.min_side = dct ? pp.resize : 0;
        double db, dm, pb, pm;
        if (run(data, len, &ip, NULL, x, seconds / 2, &db, &dm) < 0 ||
            run(data, len, &ip, &pp, x, seconds / 2, &pb, &pm) < 0)
            goto out;
        rn_image s;
        rn_image_decode(data, len, &ip, &s, err, sizeof err);
        printf("  %-12s decoded %5dx%-5d decode %8.2f ms (best %8.2f)   "
               "decode+preprocess %8.2f ms (best %8.2f)\n",
               dct ? "DCT scaling" : "full decode", s.width, s.height, dm, db, pm, pb);
        rn_image_free(&s);
    }
    status = 0;
out:
    rn_image_free(&im);
    free(x);
    free(data);
    return status;
}
