/* resnet infer: raw float32 NCHW in, logits or embeddings out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnet.h"
#include "tools.h"

static int usage(void)
{
    fprintf(stderr, "usage: resnet infer -m MODEL --input IN.f32 --batch N [--size S] "
                    "--output OUT.f32 [--embed] [--threads T]\n");
    return 2;
}

int cmd_infer(int argc, char **argv)
{
    const char *model = NULL, *in_path = NULL, *out_path = NULL;
    int batch = 0, size = 224, want_embed = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v, i++;
        else if (!strcmp(a, "--input"))
            in_path = v, i++;
        else if (!strcmp(a, "--output") || !strcmp(a, "-o"))
            out_path = v, i++;
        else if (!strcmp(a, "--batch"))
            batch = tool_parse_int(a, v, 1, 4096), i++;
        else if (!strcmp(a, "--size"))
            size = tool_parse_int(a, v, 32, 8192), i++;
        else if (!strcmp(a, "--threads"))
            threads = tool_parse_int(a, v, 0, 1024), i++;
        else if (!strcmp(a, "--embed"))
            want_embed = 1;
        else
            return usage();
    }
    if (!model || !in_path || !out_path || !batch)
        return usage();

    char err[512];
    size_t len = 0;
    float *in = tool_read_file(in_path, &len, err, sizeof err);
    if (!in) {
        fprintf(stderr, "resnet: %s\n", err);
        return 1;
    }
    size_t want = (size_t)batch * 3 * size * size * sizeof(float);
    if (len != want) {
        fprintf(stderr, "resnet: %s: %zu bytes, expected %zu (%d x 3 x %d x %d float32)\n",
                in_path, len, want, batch, size, size);
        free(in);
        return 1;
    }
    int status = 1;
    rn_model *m = NULL;
    rn_ctx *ctx = NULL;
    float *out = NULL;
    FILE *f = NULL;
    if (tool_open_model(model, RN_PRECISION_FP32, threads, batch, size, &m, &ctx) < 0)
        goto out;
    const rn_model_info *info = rn_model_info_get(m);
    size_t per = (size_t)(want_embed ? info->embed_dim : info->n_classes);
    out = malloc((size_t)batch * per * sizeof(float));
    if (!out) {
        fprintf(stderr, "resnet: out of memory\n");
        goto out;
    }
    if (rn_infer(ctx, in, batch, size, size, want_embed ? NULL : out, want_embed ? out : NULL,
                 err, sizeof err) < 0) {
        fprintf(stderr, "resnet: %s\n", err);
        goto out;
    }
    f = fopen(out_path, "wb");
    if (!f || fwrite(out, sizeof(float), (size_t)batch * per, f) != (size_t)batch * per ||
        fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "resnet: cannot write %s\n", out_path);
        goto out;
    }
    f = NULL;
    status = 0;
out:
    if (f)
        fclose(f);
    free(out);
    free(in);
    rn_ctx_free(ctx);
    rn_model_free(m);
    return status;
}
