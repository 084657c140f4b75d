/* resnet info: what a weights file holds, as text or JSON. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "resnet.h"
#include "tools.h"

static cJSON *info_json(const rn_model *m)
{
    const rn_model_info *in = rn_model_info_get(m);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", in->format);
    cJSON_AddStringToObject(o, "arch", in->arch);
    cJSON_AddStringToObject(o, "block", in->block == RN_BLOCK_BOTTLENECK ? "bottleneck" : "basic");
    cJSON_AddStringToObject(o, "variant", in->variant == RN_VARIANT_V1 ? "v1" : "v1.5");
    cJSON_AddNumberToObject(o, "bn_eps", in->bn_eps);
    cJSON_AddNumberToObject(o, "stem_channels", in->stem_channels);
    cJSON *blocks = cJSON_AddArrayToObject(o, "blocks");
    cJSON *widths = cJSON_AddArrayToObject(o, "widths");
    cJSON *outs = cJSON_AddArrayToObject(o, "out_channels");
    for (int s = 0; s < in->n_stages; s++) {
        cJSON_AddItemToArray(blocks, cJSON_CreateNumber(in->blocks[s]));
        cJSON_AddItemToArray(widths, cJSON_CreateNumber(in->widths[s]));
        cJSON_AddItemToArray(outs, cJSON_CreateNumber(in->out_channels[s]));
    }
    cJSON_AddNumberToObject(o, "groups", in->groups);
    cJSON_AddNumberToObject(o, "classes", in->n_classes);
    cJSON_AddNumberToObject(o, "embed_dim", in->embed_dim);
    cJSON_AddNumberToObject(o, "parameters", (double)in->n_params);
    cJSON_AddNumberToObject(o, "gflops_224", in->gflops);
    cJSON_AddStringToObject(o, "isa", rn_isa_name(in->isa));
    cJSON_AddBoolToObject(o, "preact", in->preact);
    cJSON_AddStringToObject(o, "stem", in->stem == RN_STEM_DEEP ? "deep" : "7x7");
    cJSON_AddBoolToObject(o, "avg_down", in->avg_down);
    int crop = rn_model_preprocess(m)->crop, shape[3];
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < rn_model_layer_count(m); i++) {
        if (rn_model_layer_shape(m, i, crop, crop, shape) < 0)
            continue;
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "name", rn_model_layer_name(m, i));
        cJSON_AddItemToObject(l, "shape", cJSON_CreateIntArray(shape, 3));
        cJSON_AddItemToArray(layers, l);
    }
    cJSON_AddStringToObject(o, "precision", rn_precision_name(in->precision));
    const rn_preprocess *pp = rn_model_preprocess(m);
    cJSON *p = cJSON_AddObjectToObject(o, "preprocess");
    cJSON_AddNumberToObject(p, "resize", pp->resize);
    cJSON_AddNumberToObject(p, "crop", pp->crop);
    cJSON_AddNumberToObject(p, "scale", pp->scale);
    cJSON_AddItemToObject(p, "mean", cJSON_CreateFloatArray(pp->mean, 3));
    cJSON_AddItemToObject(p, "std", cJSON_CreateFloatArray(pp->std, 3));
    cJSON_AddStringToObject(p, "order", pp->bgr ? "BGR" : "RGB");
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    const char *k;
    for (int i = 0; (k = rn_model_meta_key(m, i)); i++)
        if (strcmp(k, "resnet.labels"))
            cJSON_AddStringToObject(meta, k, rn_model_meta(m, k));
    cJSON_AddBoolToObject(o, "labels", rn_model_label(m, 0) != NULL);
    return o;
}

static void print_text(const rn_model *m, const char *path)
{
    const rn_model_info *in = rn_model_info_get(m);
    printf("file:         %s (%s)\n", path, in->format);
    printf("architecture: %s (%s%s blocks, %s%s%s)\n", in->arch, in->preact ? "pre-activation " : "",
           in->block == RN_BLOCK_BOTTLENECK ? "bottleneck" : "basic",
           in->variant == RN_VARIANT_V1 ? "v1: stride on the first 1x1" : "stride on the 3x3",
           in->stem == RN_STEM_DEEP ? ", deep stem" : "",
           in->avg_down ? ", average-pool shortcuts" : "");
    printf("stages:       ");
    for (int s = 0; s < in->n_stages; s++)
        printf("%s%d x %d->%d", s ? ", " : "", in->blocks[s], in->widths[s], in->out_channels[s]);
    printf("\nstem:         %d channels\n", in->stem_channels);
    if (in->groups > 1)
        printf("groups:       %d\n", in->groups);
    printf("classes:      %d%s\n", in->n_classes, rn_model_label(m, 0) ? " (labelled)" : "");
    printf("embedding:    %d\n", in->embed_dim);
    printf("parameters:   %lld\n", (long long)in->n_params);
    printf("GFLOP/image:  %.2f at 224x224\n", in->gflops);
    printf("kernels:      %s (RN_ISA to force one)\n", rn_isa_name(in->isa));
    printf("precision:    %s\n", rn_precision_name(in->precision));
    printf("bn eps:       %g\n", in->bn_eps);
    int crop = rn_model_preprocess(m)->crop, shape[3];
    printf("layers:       (outputs at %dx%d, for resnet infer --layer)\n", crop, crop);
    for (int i = 0; i < rn_model_layer_count(m); i++)
        if (rn_model_layer_shape(m, i, crop, crop, shape) == RN_OK)
            printf("  %-22s %d x %d x %d\n", rn_model_layer_name(m, i), shape[0], shape[1], shape[2]);
    const rn_preprocess *pp = rn_model_preprocess(m);
    printf("preprocess:   resize %d, crop %d, scale %g, mean [%g,%g,%g], std [%g,%g,%g], %s\n",
           pp->resize, pp->crop, pp->scale, pp->mean[0], pp->mean[1], pp->mean[2], pp->std[0],
           pp->std[1], pp->std[2], pp->bgr ? "BGR" : "RGB");
    const char *k;
    for (int i = 0; (k = rn_model_meta_key(m, i)); i++) {
        const char *v = rn_model_meta(m, k);
        if (strlen(v) > 100)
            printf("metadata:     %s = %.80s... (%zu bytes)\n", k, v, strlen(v));
        else
            printf("metadata:     %s = %s\n", k, v);
    }
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "usage: resnet info MODEL [--json]\n");
            return 2;
        } else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: resnet info MODEL [--json]\n");
        return 2;
    }
    rn_set_log(NULL, NULL, 0);
    char err[512];
    rn_model *m;
    rn_model_params mp = rn_model_default_params();
    if (rn_model_load(path, &mp, &m, err, sizeof err) < 0) {
        fprintf(stderr, "resnet: %s\n", err);
        return 1;
    }
    if (json) {
        cJSON *o = info_json(m);
        char *s = cJSON_PrintUnformatted(o);
        puts(s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        print_text(m, path);
    }
    rn_model_free(m);
    return 0;
}
