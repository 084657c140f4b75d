/* resnet bench-image: decode + preprocess time per image and format, with and without DCT scaling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
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

/* The format's name from the magic bytes, for the table. */
static const char *format_of(const uint8_t *d, size_t n)
{
    if (n >= 3 && !memcmp(d, "\xff\xd8\xff", 3))
        return "JPEG";
    if (n >= 8 && !memcmp(d, "\x89PNG", 4))
        return "PNG";
    if (n >= 12 && !memcmp(d + 8, "WEBP", 4))
        return "WebP";
    if (n >= 4 && !memcmp(d, "GIF8", 4))
        return "GIF";
    if (n >= 2 && !memcmp(d, "BM", 2))
        return "BMP";
    return n >= 4 && (!memcmp(d, "II", 2) || !memcmp(d, "MM", 2)) ? "TIFF" : "?";
}

/* One file: the decode alone and decode + preprocess, full decode and (for
 * JPEG) with DCT scaling; one table row per mode. */
static int bench_one(const char *path, int dct_only, double seconds, const rn_preprocess *pp,
                     float *x)
{
    char err[512];
    size_t len = 0;
    void *data = tool_read_file(path, &len, err, sizeof err);
    rn_image im = {0};
    int status = 1;
    if (!data) {
        fprintf(stderr, "resnet: %s\n", err);
        return 1;
    }
    if (rn_image_decode(data, len, NULL, &im, err, sizeof err) < 0) {
        fprintf(stderr, "resnet: %s: %s\n", path, err);
        goto out;
    }
    const char *fmt = format_of(data, len), *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int jpeg = !strcmp(fmt, "JPEG");
    for (int dct = dct_only && jpeg; dct <= jpeg; dct++) {
        rn_image_params ip = rn_image_default_params();
        ip.dct_scaling = dct;
        ip.min_side = dct ? pp->resize : 0;
        double db, dm, pb, pm;
        if (run(data, len, &ip, NULL, x, seconds / 2, &db, &dm) < 0 ||
            run(data, len, &ip, pp, x, seconds / 2, &pb, &pm) < 0)
            goto out;
        rn_image s;
        rn_image_decode(data, len, &ip, &s, err, sizeof err);
        printf("%-28s %-5s %9zu  %5dx%-5d %-11s %9.3f %9.3f %11.3f %9.3f\n", base, fmt, len,
               s.width, s.height, dct ? "DCT scaling" : "full", dm, db, pm, pb);
        rn_image_free(&s);
    }
    status = 0;
out:
    rn_image_free(&im);
    free(data);
    return status;
}

int cmd_bench_image(int argc, char **argv)
{
    double seconds = 2;
    int dct_only = 0, nfiles = 0;
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
        else if (a[0] != '-')
            argv[++nfiles] = argv[i]; /* the files, packed at argv[1..] */
        else
            nfiles = 0, i = argc; /* unknown flag: usage */
    }
    if (!nfiles) {
        fprintf(stderr, "usage: resnet bench-image FILE... [--dct] [--seconds S] "
                        "[--resize R] [--crop C]\n");
        return 2;
    }
    float *x = malloc(sizeof(float) * 3 * (size_t)pp.crop * pp.crop);
    if (!x) {
        fprintf(stderr, "resnet: out of memory\n");
        return 1;
    }
    printf("resize %d crop %d, %g s per file; times in ms: mean and best of the decode alone, "
           "then of decode + preprocess\n",
           pp.resize, pp.crop, seconds);
    printf("%-28s %-5s %9s  %-11s %-11s %9s %9s %11s %9s\n", "file", "type", "bytes", "decoded",
           "mode", "decode", "best", "+preprocess", "best");
    int status = 0;
    for (int i = 1; i <= nfiles; i++)
        status |= bench_one(argv[i], dct_only, seconds, &pp, x);
    free(x);
    return status;
}
