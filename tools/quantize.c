/* resnet quantize: an INT8 model (docs/int8.md) from a float one and a
 * folder of calibration photos, decoded and preprocessed exactly as
 * classify and the daemon do, in one command:
 *
 *   resnet quantize -m resnet50.safetensors --calib photos/ -o resnet50-int8.safetensors
 *
 * The photos are the folder's image files (by extension: JPEG, PNG, WebP,
 * GIF, BMP, TIFF) in name order, the first --images of them; one that does
 * not decode is named and skipped. A progress bar on a
 * terminal, a line per tenth otherwise. The output is written whole or not
 * at all (tools/st_write.c). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_write.h"
#include "tools.h"

static void usage(void)
{
    fprintf(stderr, "usage: resnet quantize -m MODEL --calib DIR -o OUT.safetensors\n"
                    "       [--method percentile|minmax|mse] [--percentile P] [--images N]\n"
                    "       [--batch B] [--threads T] [--bias-correction]\n");
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 if name ends in an image file's extension (any case): a calibration
 * folder may hold a README or labels beside its photos. */
static int image_name(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && !strcasecmp(name + n - e, ext[i]))
            return 1;
    }
    return 0;
}

/* The image files of dir (regular files, image extensions), sorted, at
 * most max; *n of them. */
static char **list_files(const char *dir, int max, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return NULL;
    }
    char **v = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !image_name(e->d_name))
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(len);
        struct stat st;
        if (!path)
            break;
        snprintf(path, len, "%s/%s", dir, e->d_name);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                free(path);
                break;
            }
            v = nv;
        }
        v[(*n)++] = path;
    }
    closedir(d);
    if (*n)
        qsort(v, (size_t)*n, sizeof *v, by_name);
    for (int i = max; i < *n; i++)
        free(v[i]);
    if (*n > max)
        *n = max;
    return v;
}

static void progress(int done, int total, int tty)
{
    if (tty) {
        int w = 30, f = total ? done * w / total : w;
        fprintf(stderr, "\rquantize: [%.*s%*s] %d/%d images", f, "##############################", w - f, "",
                done, total);
        if (done == total)
            fputc('\n', stderr);
    } else if (total && (done == total || done * 10 / total != (done - 1) * 10 / total)) {
        fprintf(stderr, "quantize: %d/%d images\n", done, total);
    }
}

int cmd_quantize(int argc, char **argv)
{
    const char *model = NULL, *calib = NULL, *out = NULL;
    rn_quantize_params p = rn_quantize_default_params();
    int images = 500;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--bias-correction")) {
            p.bias_correction = 1;
            continue;
        }
        if (!v && strcmp(a, "-h") && strcmp(a, "--help")) {
            fprintf(stderr, "resnet quantize: %s needs a value\n", a);
            usage();
            return 2;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v, i++;
        else if (!strcmp(a, "--calib"))
            calib = v, i++;
        else if (!strcmp(a, "-o"))
            out = v, i++;
        else if (!strcmp(a, "--images"))
            images = tool_parse_int(a, v, 1, 1000000), i++;
        else if (!strcmp(a, "--batch"))
            p.max_batch = tool_parse_int(a, v, 1, 256), i++;
        else if (!strcmp(a, "--threads"))
            p.n_threads = tool_parse_int(a, v, 1, 1024), i++;
        else if (!strcmp(a, "--percentile")) {
            char *end;
            p.percentile = strtod(v, &end);
            if (end == v || *end || !(p.percentile > 50 && p.percentile <= 100)) {
                fprintf(stderr, "resnet quantize: --percentile: expected a number in (50, 100], got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--method")) {
            if (!strcmp(v, "percentile"))
                p.method = RN_CALIB_PERCENTILE;
            else if (!strcmp(v, "minmax"))
                p.method = RN_CALIB_MINMAX;
            else if (!strcmp(v, "mse"))
                p.method = RN_CALIB_MSE;
            else {
                fprintf(stderr, "resnet quantize: --method: expected percentile, minmax or mse, got '%s'\n", v);
                return 2;
            }
            i++;
        } else {
            usage();
            return 2;
        }
    }
    if (!model || !calib || !out) {
        usage();
        return 2;
    }
    char err[1024];
    int n_files = 0, status = 1, done = 0, used = 0, tty = isatty(2);
    char **files = list_files(calib, images, &n_files);
    if (!files || !n_files) {
        fprintf(stderr, "resnet quantize: %s: no images to calibrate with (.jpg .png .webp .gif .bmp .tif)\n", calib);
        free(files);
        return 1;
    }
    rn_quantizer *q = NULL;
    stw_writer *w = NULL;
    float *x = NULL;
    if (rn_quantizer_new(model, &p, &q, err, sizeof err) < 0) {
        fprintf(stderr, "resnet quantize: %s\n", err);
        goto out;
    }
    const rn_preprocess *pp = rn_model_preprocess(rn_quantizer_model(q));
    size_t per = (size_t)3 * pp->crop * pp->crop;
    if (!(x = malloc(per * sizeof(float) * (size_t)p.max_batch))) {
        fprintf(stderr, "resnet quantize: out of memory\n");
        goto out;
    }
    rn_image_params ip = rn_image_default_params();
    int n = 0;
    for (int i = 0; i < n_files; i++) {
        size_t len = 0;
        void *data = tool_read_file(files[i], &len, err, sizeof err);
        int rc = data ? rn_image_to_tensor(data, len, &ip, pp, x + (size_t)n * per, err, sizeof err) : RN_ERR_IO;
        free(data);
        if (rc < 0) {
            fprintf(stderr, "%sresnet quantize: skipped %s: %s\n", tty ? "\n" : "", files[i], err);
        } else {
            n++;
            used++;
        }
        done++;
        if (n == p.max_batch || (i == n_files - 1 && n > 0)) {
            if (rn_quantizer_observe(q, x, n, pp->crop, pp->crop, err, sizeof err) < 0) {
                fprintf(stderr, "resnet quantize: %s\n", err);
                goto out;
            }
            n = 0;
        }
        progress(done, n_files, tty);
    }
    if (rn_quantizer_finish(q, err, sizeof err) < 0 || !(w = stw_new())) {
        fprintf(stderr, "resnet quantize: %s\n", used ? err : "no calibration image decoded");
        goto out;
    }
    for (int i = 0; i < rn_quantizer_meta_count(q); i++) {
        const char *v, *k = rn_quantizer_meta(q, i, &v);
        if (stw_add_meta(w, k, v) < 0)
            goto nomem;
    }
    for (int i = 0; i < rn_quantizer_tensor_count(q); i++) {
        rn_tensor_view t;
        rn_quantizer_tensor(q, i, &t);
        if (stw_add_tensor(w, t.name, t.dtype, t.ndim, t.shape, t.data, t.nbytes) < 0)
            goto nomem;
    }
    if (stw_write(w, out, err, sizeof err) < 0) {
        fprintf(stderr, "resnet quantize: %s\n", err);
        goto out;
    }
    fprintf(stderr, "resnet quantize: wrote %s: INT8, calibrated on %d images\n", out, used);
    status = 0;
    goto out;
nomem:
    fprintf(stderr, "resnet quantize: out of memory\n");
out:
    stw_free(w);
    rn_quantizer_free(q);
    free(x);
    for (int i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    return status;
}
