/* resnet inspect: what every residual block does for one image (norms of the
 * shortcut and the residual branch, lesions, class activation map). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnet.h"
#include "tools.h"

static int usage(void)
{
    fprintf(stderr, "usage: resnet inspect -m MODEL [--json] [--topk K] [--no-lesions] "
                    "[--png OUT.png [--class K]] [--threads T] [--precision fp32|bf16] [--exif-orient] "
                    "IMAGE\n");
    return 2;
}

static void print_table(const rn_model *m, const rn_inspection *r, int topk)
{
    int *idx = malloc(sizeof(int) * (size_t)r->n_classes);
    if (!idx)
        return;
    int k = rn_topk(r->probs, r->n_classes, topk, idx);
    for (int i = 0; i < k; i++) {
        const char *l = rn_model_label(m, idx[i]);
        printf("  %8.4f%%  %5d  %s\n", 100.0 * r->probs[idx[i]], idx[i], l ? l : "");
    }
    printf("\n%-20s %-5s %10s %10s %8s %8s %8s %8s", "block", "proj", "||s||", "||F||", "F/s",
           "F/x", "cos(s,F)", "cos(x,y)");
    if (r->lesions)
        printf("  %9s %8s %8s  %s", "KL", "p(top1)", "emb cos", "top-1 lesioned");
    printf("\n");
    for (int b = 0; b < r->n_blocks; b++) {
        const rn_block_report *br = &r->blocks[b];
        printf("%-20s %-5s %10.4g %10.4g %8.4f %8.4f %8.4f ", br->name, br->projection ? "yes" : "",
               br->s_norm, br->f_norm, br->f_over_s, br->f_over_x, br->cos_sf);
        if (isnan(br->cos_xy))
            printf("%8s", "-");
        else
            printf("%8.4f", br->cos_xy);
        if (r->lesions) {
            const char *l = rn_model_label(m, br->lesion_top1);
            printf("  %9.4f %8.4f %8.4f  %d %s %.4f", br->lesion_kl, br->lesion_orig_prob,
                   br->lesion_embed_cos, br->lesion_top1, l ? l : "", br->lesion_top1_prob);
        }
        printf("\n");
    }
    printf("\none forward pass %.3f GFLOP", r->forward_gflops);
    if (r->lesions)
        printf("; the %d lesions recompute %.3f GFLOP (%.2f forward passes): only the layers after "
               "each block",
               r->n_blocks, r->lesion_gflops, r->lesion_gflops / r->forward_gflops);
    printf("\n");
    free(idx);
}

int cmd_inspect(int argc, char **argv)
{
    const char *model = NULL, *image = NULL, *png_path = NULL;
    int topk = 5, json = 0, threads = 0, precision = RN_PRECISION_FP32, cls = -1, orient = 0;
    rn_inspect_params ip = rn_inspect_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v, i++;
        else if (!strcmp(a, "--topk"))
            topk = tool_parse_int(a, v, 1, 100000), i++;
        else if (!strcmp(a, "--threads"))
            threads = tool_parse_int(a, v, 0, 1024), i++;
        else if (!strcmp(a, "--precision"))
            precision = tool_parse_precision(v), i++;
        else if (!strcmp(a, "--png"))
            png_path = v, i++;
        else if (!strcmp(a, "--class"))
            cls = tool_parse_int(a, v, 0, 1000000), i++;
        else if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--exif-orient"))
            orient = 1;
        else if (!strcmp(a, "--no-lesions"))
            ip.lesions = 0;
        else if (a[0] == '-' && a[1])
            return usage();
        else if (!image)
            image = a;
        else
            return usage();
    }
    if (!model || !image || (png_path && !*png_path))
        return usage();

    char err[512];
    int status = 1;
    rn_model *m = NULL;
    rn_ctx *ctx = NULL;
    rn_inspection *r = NULL;
    float *x = NULL;
    void *data = NULL, *png = NULL;
    if (tool_open_model(model, precision, threads, 1, 0, &m, &ctx) < 0)
        return 1;
    const rn_preprocess *pp = rn_model_preprocess(m);
    size_t len = 0;
    x = malloc(sizeof(float) * 3 * (size_t)pp->crop * pp->crop);
    if (!x) {
        fprintf(stderr, "resnet: out of memory\n");
        goto out;
    }
    if (!(data = tool_read_file(image, &len, err, sizeof err))) {
        fprintf(stderr, "resnet: %s\n", err);
        goto out;
    }
    rn_image_params imp = rn_image_default_params();
    imp.exif_orient = orient;
    if (rn_image_to_tensor(data, len, &imp, pp, x, err, sizeof err) < 0 ||
        rn_inspect(ctx, x, pp->crop, pp->crop, &ip, &r, err, sizeof err) < 0) {
        fprintf(stderr, "resnet: %s: %s\n", image, err);
        goto out;
    }
    if (cls >= r->n_classes) {
        fprintf(stderr, "resnet: --class %d: the model has classes 0..%d\n", cls, r->n_classes - 1);
        goto out;
    }
    if (png_path) {
        size_t plen;
        int c = cls;
        if (c < 0)
            rn_topk(r->probs, r->n_classes, 1, &c);
        if (rn_inspection_png(m, r, c, x, pp->crop, pp->crop, &png, &plen, err, sizeof err) < 0) {
            fprintf(stderr, "resnet: %s\n", err);
            goto out;
        }
        FILE *f = fopen(png_path, "wb");
        if (!f || fwrite(png, 1, plen, f) != plen || fclose(f) != 0) {
            fprintf(stderr, "resnet: %s: cannot write\n", png_path);
            goto out;
        }
    }
    if (json) {
        char *s = rn_inspection_json(m, r, topk, topk);
        if (!s) {
            fprintf(stderr, "resnet: out of memory\n");
            goto out;
        }
        printf("%s\n", s);
        free(s);
    } else {
        printf("%s\n", image);
        print_table(m, r, topk);
    }
    status = 0;
out:
    free(png);
    free(data);
    free(x);
    rn_inspection_free(r);
    rn_ctx_free(ctx);
    rn_model_free(m);
    return status;
}
