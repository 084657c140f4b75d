/* resnet infer: raw float32 NCHW in, logits, embeddings or a named layer's
 * output out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnet.h"
#include "tools.h"

static int usage(void)
{
    fprintf(stderr, "usage: resnet infer -m MODEL --input IN.f32 --batch N [--size S] "
                    "--output OUT.f32 [--embed | --layer NAME [--pool avg|none]] [--threads T]\n"
                    "  --layer: a layer's output by its PyTorch name (resnet info lists them),\n"
                    "  globally average-pooled (N x C, the default) or whole (N x C x H x W)\n");
    return 2;
}

int cmd_infer(int argc, char **argv)
{
    const char *model = NULL, *in_path = NULL, *out_path = NULL;
    const char *layer = NULL, *pool = "avg";
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
        else if (!strcmp(a, "--layer") && v)
            layer = v, i++;
        else if (!strcmp(a, "--pool") && v)
            pool = v, i++;
        else
            return usage();
    }
    if (!model || !in_path || !out_path || !batch || (layer && want_embed))
        return usage();
    if (strcmp(pool, "avg") && strcmp(pool, "none")) {
        fprintf(stderr, "resnet: --pool: expected avg or none, got '%s'\n", pool);
        return 2;
    }

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
    rn_output o = {.layer = layer ? rn_model_layer_find(m, layer) : -1,
                   .pool = strcmp(pool, "avg") ? RN_POOL_NONE : RN_POOL_AVG};
    if (layer) {
        int shape[3];
        if (o.layer < 0) {
            fprintf(stderr, "resnet: --layer %s: no such layer; this model has:", layer);
            for (int i = 0; i < rn_model_layer_count(m); i++)
                fprintf(stderr, " %s", rn_model_layer_name(m, i));
            fprintf(stderr, "\n");
            goto out;
        }
        rn_model_layer_shape(m, o.layer, size, size, shape);
        per = (size_t)shape[0] * (o.pool == RN_POOL_AVG ? 1 : (size_t)shape[1] * shape[2]);
        fprintf(stderr, "resnet: %s: %d x %d", layer, batch, shape[0]);
        if (o.pool == RN_POOL_NONE)
            fprintf(stderr, " x %d x %d", shape[1], shape[2]);
        fprintf(stderr, " floats\n");
    }
    out = malloc((size_t)batch * per * sizeof(float));
    if (!out) {
        fprintf(stderr, "resnet: out of memory\n");
        goto out;
    }
    o.data = out;
    if ((layer ? rn_infer_outputs(ctx, in, batch, size, size, &o, 1, err, sizeof err)
               : rn_infer(ctx, in, batch, size, size, want_embed ? NULL : out,
                          want_embed ? out : NULL, err, sizeof err)) < 0) {
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
