/* resnet classify: decode, preprocess and classify image files; a table or JSON lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "resnet.h"
#include "tools.h"

static int usage(void)
{
    fprintf(stderr, "usage: resnet classify -m MODEL [--topk K] [--json] [--threads T] "
                    "[--precision fp32|bf16] [--exif-orient] IMAGE...\n"
                    "  --exif-orient  turn each image upright by its EXIF orientation first\n"
                    "                 (PIL's ImageOps.exif_transpose); by default it is ignored,\n"
                    "                 as PIL's Image.open and torchvision ignore it\n");
    return 2;
}

/* One JSON line: {"name":..., "predictions":[...]} or {"name":..., "error":...}. */
static void print_json(const char *name, const rn_model *m, const float *p, const int *idx, int k,
                       const char *error)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    if (error) {
        cJSON_AddStringToObject(o, "error", error);
    } else {
        cJSON *preds = cJSON_AddArrayToObject(o, "predictions");
        for (int i = 0; i < k; i++) {
            char num[16];
            const char *label = rn_model_label(m, idx[i]);
            if (!label) {
                snprintf(num, sizeof num, "%d", idx[i]);
                label = num;
            }
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "index", idx[i]);
            cJSON_AddStringToObject(e, "label", label);
            cJSON_AddNumberToObject(e, "score", round(p[idx[i]] * 1e6) / 1e6);
            cJSON_AddItemToArray(preds, e);
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(o);
}

static void print_table(const char *name, const rn_model *m, const float *p, const int *idx, int k)
{
    printf("%s\n", name);
    for (int i = 0; i < k; i++) {
        const char *label = rn_model_label(m, idx[i]);
        printf("  %8.4f%%  %5d  %s\n", 100.0 * p[idx[i]], idx[i], label ? label : "");
    }
}

int cmd_classify(int argc, char **argv)
{
    const char *model = NULL;
    int topk = 5, json = 0, threads = 0, first_image = 0, precision = RN_PRECISION_FP32;
    int exif_orient = 0;
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
        else if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--exif-orient"))
            exif_orient = 1;
        else if (!strcmp(a, "--") && i + 1 < argc) {
            first_image = i + 1;
            break;
        } else if (a[0] == '-' && a[1])
            return usage();
        else {
            first_image = i;
            break;
        }
    }
    if (!model || !first_image)
        return usage();

    char err[512];
    int status = 1;
    rn_model *m = NULL;
    rn_ctx *ctx = NULL;
    float *x = NULL, *logits = NULL;
    int *idx = NULL;
    if (tool_open_model(model, precision, threads, 1, 0, &m, &ctx) < 0)
        return 1;
    const rn_preprocess *pp = rn_model_preprocess(m);
    int classes = rn_model_info_get(m)->n_classes;
    x = malloc(sizeof(float) * 3 * (size_t)pp->crop * pp->crop);
    logits = malloc(sizeof(float) * (size_t)classes);
    idx = malloc(sizeof(int) * (size_t)classes);
    if (!x || !logits || !idx) {
        fprintf(stderr, "resnet: out of memory\n");
        goto out;
    }
    rn_image_params ip = rn_image_default_params();
    ip.exif_orient = exif_orient;
    status = 0;
    for (int i = first_image; i < argc; i++) {
        const char *name = argv[i];
        size_t len = 0;
        void *data = tool_read_file(name, &len, err, sizeof err);
        int rc = data ? rn_image_to_tensor(data, len, &ip, pp, x, err, sizeof err) : RN_ERR_IO;
        if (rc == RN_OK)
            rc = rn_infer(ctx, x, 1, pp->crop, pp->crop, logits, NULL, err, sizeof err);
        if (rc < 0) { /* tool_read_file's message already names the file */
            char msg[sizeof err + 256];
            snprintf(msg, sizeof msg, "%s%s%s", data ? name : "", data ? ": " : "", err);
            fprintf(stderr, "resnet: %s\n", msg);
            if (json)
                print_json(name, m, NULL, NULL, 0, msg);
            status = 1;
            free(data);
            continue;
        }
        free(data);
        rn_softmax(logits, classes);
        int k = rn_topk(logits, classes, topk, idx);
        if (json)
            print_json(name, m, logits, idx, k, NULL);
        else
            print_table(name, m, logits, idx, k);
        fflush(stdout);
    }
out:
    free(idx);
    free(logits);
    free(x);
    rn_ctx_free(ctx);
    rn_model_free(m);
    return status;
}
