/* resnet convert: write safetensors with torchvision/timm names and the
 * metadata rn_model_load reads (variant, batch-norm epsilon, labels,
 * preprocessing, where the weights came from), from
 *   --from tfjs: a Keras ResNet saved as a TensorFlow.js layers model
 *                (model.json + weight shards, tools/tfjs.c, tools/keras_resnet.c);
 *   --from pth:  a PyTorch torch.save file (core/formats/pth.c);
 *   --from onnx: an ONNX ResNet (core/formats/onnx.c), whose initializers the library
 *                already names as torchvision/timm would.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keras_resnet.h"
#include "formats/weights.h"
#include "st_write.h"
#include "tfjs.h"
#include "tools.h"

#define ERRLEN 1024

/* Keras's "caffe" preprocessing at the torchvision eval sizes. */
static const char CAFFE_PREPROCESS[] =
    "{\"resize\":256,\"crop\":224,\"scale\":1,\"mean\":[103.939,116.779,123.68],"
    "\"std\":[1,1,1],\"order\":\"BGR\"}";

/* Class names as a JSON array text: from a JSON array of strings or an object
 * {"0": "tench", ...} (the npm package's form), exactly n of them. */
static char *load_labels(const char *path, int n, char *err)
{
    size_t len;
    char *text = tool_read_file(path, &len, err, ERRLEN), *out = NULL;
    if (!text)
        return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len), *arr = cJSON_CreateArray();
    free(text);
    if (!j || !arr || !(cJSON_IsArray(j) || cJSON_IsObject(j))) {
        tool_errf(err, ERRLEN, "%s: not a JSON array or object of class names", path);
        goto out_free;
    }
    if (cJSON_GetArraySize(j) != n) {
        tool_errf(err, ERRLEN, "%s: %d class names, the model has %d classes", path, cJSON_GetArraySize(j), n);
        goto out_free;
    }
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        const cJSON *s =
            cJSON_IsArray(j) ? cJSON_GetArrayItem(j, i) : cJSON_GetObjectItemCaseSensitive(j, key);
        if (!cJSON_IsString(s)) {
            tool_errf(err, ERRLEN, "%s: class %d has no name", path, i);
            goto out_free;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(s->valuestring));
    }
    if (cJSON_GetArraySize(arr) != n || !(out = cJSON_PrintUnformatted(arr)))
        tool_errf(err, ERRLEN, "out of memory");
out_free:
    cJSON_Delete(j);
    cJSON_Delete(arr);
    return out;
}

struct opts {
    const char *from, *input, *output, *labels, *source, *preprocess;
};

static int usage(FILE *f)
{
    fprintf(f, "usage: resnet convert --from tfjs|pth|onnx MODEL [-o] OUT.safetensors\n"
               "                      [--labels LABELS.json] [--source TEXT] "
               "[--preprocess JSON]\n"
               "  tfjs: a Keras ResNet saved as a TensorFlow.js layers model (model.json)\n"
               "  pth:  a PyTorch torch.save file (a state_dict or a checkpoint holding one)\n"
               "  onnx: an ONNX ResNet (external data files beside it)\n"
               "  --labels      class names, a JSON array or {\"0\": name, ...}\n"
               "                (tfjs default: ../assets/labels.json next to the model, if present;\n"
               "                onnx: metadata_props resnet.labels, if present)\n"
               "  --source      text for the resnet.source metadata (default: the input)\n"
               "  --preprocess  resnet.preprocess JSON (tfjs default: Keras \"caffe\" style, BGR;\n"
               "                pth, onnx: the file's, else torchvision's)\n");
    return 2;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--from")                         ? &o->from
                           : !strcmp(a, "-o") || !strcmp(a, "--output") ? &o->output
                           : !strcmp(a, "--labels")                     ? &o->labels
                           : !strcmp(a, "--source")                     ? &o->source
                           : !strcmp(a, "--preprocess")                 ? &o->preprocess
                                                                        : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "resnet convert: %s needs a value\n", a);
                return usage(stderr);
            }
            *dst = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "resnet convert: unknown option %s\n", a);
            return usage(stderr);
        } else if (o->input && !o->output) {
            o->output = a;
        } else if (o->input) {
            fprintf(stderr, "resnet convert: more than one input model\n");
            return usage(stderr);
        } else {
            o->input = a;
        }
    }
    if (!o->from || !o->input || !o->output) {
        fprintf(stderr, "resnet convert: --from, an input model and -o are required\n");
        return usage(stderr);
    }
    if (strcmp(o->from, "tfjs") && strcmp(o->from, "pth") && strcmp(o->from, "onnx")) {
        fprintf(stderr, "resnet convert: unsupported format '%s' (supported: tfjs, pth, onnx)\n",
                o->from);
        return 2;
    }
    return 0;
}

/* Metadata: variant, epsilon, labels, preprocessing, source. */
static int add_metadata(const tfjs_model *tf, const keras_resnet_info *info, const struct opts *o,
                        stw_writer *st, char *err)
{
    char buf[1024], labels_path[4096];
    const char *labels = o->labels;
    if (!labels) {
        const char *slash = strrchr(o->input, '/');
        snprintf(labels_path, sizeof labels_path, "%.*s../assets/labels.json",
                 slash ? (int)(slash - o->input + 1) : 0, o->input);
        if (access(labels_path, F_OK) == 0)
            labels = labels_path;
        else
            fprintf(stderr, "resnet convert: no %s; writing the model without class names\n",
                    labels_path);
    }
    const char *pre = o->preprocess ? o->preprocess : CAFFE_PREPROCESS;
    cJSON *pj = cJSON_Parse(pre);
    int pre_ok = cJSON_IsObject(pj);
    cJSON_Delete(pj);
    if (!pre_ok)
        return tool_errf(err, ERRLEN, "--preprocess: not a JSON object");
    snprintf(buf, sizeof buf, "%.9g", info->bn_eps);
    if (stw_add_meta(st, "resnet.variant", info->variant) < 0 ||
        stw_add_meta(st, "resnet.bn_eps", buf) < 0 ||
        stw_add_meta(st, "resnet.preprocess", pre) < 0)
        return tool_errf(err, ERRLEN, "out of memory");
    if (labels) {
        char *l = load_labels(labels, info->n_classes, err);
        int r = l ? stw_add_meta(st, "resnet.labels", l) : -1;
        free(l);
        if (r < 0)
            return l ? tool_errf(err, ERRLEN, "out of memory") : -1;
    }
    if (o->source) {
        snprintf(buf, sizeof buf, "%s", o->source);
    } else {
        const char *gen = tfjs_string(tf, "generatedBy"), *cv = tfjs_string(tf, "convertedBy");
        snprintf(buf, sizeof buf,
                 "TF.js layers model %s (generated by %s, converted by %s), "
                 "imported by resnet convert",
                 o->input, gen ? gen : "unknown", cv ? cv : "unknown");
    }
    if (stw_add_meta(st, "resnet.source", buf) < 0)
        return tool_errf(err, ERRLEN, "out of memory");
    return 0;
}

static int convert(const struct opts *o, char *err)
{
    tfjs_model *tf = NULL;
    stw_writer *st = NULL;
    float *arena = NULL;
    keras_resnet_info info;
    int rc = -1;
    if (tfjs_load(o->input, &tf, err, ERRLEN) < 0)
        return -1;
    if (!(st = stw_new())) {
        tool_errf(err, ERRLEN, "out of memory");
        goto out_free;
    }
    if (keras_resnet_to_torchvision(tf, st, &arena, &info, err, ERRLEN) < 0 ||
        add_metadata(tf, &info, o, st, err) < 0 || stw_write(st, o->output, err, ERRLEN) < 0)
        goto out_free;
    int blocks = 0;
    char stages[64] = "";
    for (int s = 0; s < info.n_stages; s++) {
        blocks += info.blocks[s];
        snprintf(stages + strlen(stages), sizeof stages - strlen(stages), "%s%d", s ? "," : "",
                 info.blocks[s]);
    }
    printf("wrote %s: %d %s blocks [%s], %d classes, %zu parameters, %s, bn_eps %g\n", o->output,
           blocks, info.bottleneck ? "bottleneck" : "basic", stages, info.n_classes, info.n_params,
           info.variant, info.bn_eps);
    rc = 0;
out_free:
    stw_free(st);
    free(arena);
    tfjs_free(tf);
    return rc;
}

/* pth / onnx: the model is loaded first (it must be a ResNet the library
 * serves), then the file's tensors are written as they are, with its
 * metadata and the options'. */
static int convert_weights(const struct opts *o, char *err)
{
    rn_model *m = NULL;
    rn_model_params mp = rn_model_default_params();
    rn_set_log(NULL, NULL, 0);
    if (rn_model_load(o->input, &mp, &m, err, ERRLEN) < 0)
        return -1;
    const rn_model_info *info = rn_model_info_get(m);
    st_file f;
    stw_writer *st = NULL;
    char *labels = NULL;
    int rc = -1;
    if (rn_weights_open(o->input, &f, err, ERRLEN) < 0)
        goto out_model;
    int want = !strcmp(o->from, "pth") ? !strncmp(f.format, "pytorch", 7) : !strcmp(f.format, "onnx");
    if (!want) {
        tool_errf(err, ERRLEN, "%s: a %s file, not --from %s", o->input, f.format, o->from);
        goto out_close;
    }
    if (!(st = stw_new())) {
        tool_errf(err, ERRLEN, "out of memory");
        goto out_close;
    }
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (stw_add_tensor(st, t->name, st_dtype_name(t->dtype), t->ndim, t->shape, t->data,
                           t->nbytes) < 0) {
            tool_errf(err, ERRLEN, "%s: cannot add the tensor (out of memory or a duplicate)", t->name);
            goto out_close;
        }
    }
    if (o->labels && !(labels = load_labels(o->labels, info->n_classes, err)))
        goto out_close;
    if (o->preprocess) {
        rn_preprocess pp;
        if (rn_preprocess_parse(o->preprocess, &pp, err, ERRLEN) < 0) {
            rn_err_prefix(err, ERRLEN, "--preprocess");
            goto out_close;
        }
    }
    char source[1024];
    snprintf(source, sizeof source, "%s", o->source ? o->source : "");
    if (!o->source && !st_meta(&f, "resnet.source"))
        snprintf(source, sizeof source, "%s file %s, converted by resnet convert", f.format, o->input);
    for (int i = 0; i < f.n_meta; i++) {
        const char *k = f.meta_keys[i];
        if ((labels && !strcmp(k, "resnet.labels")) || (o->preprocess && !strcmp(k, "resnet.preprocess")) ||
            (source[0] && !strcmp(k, "resnet.source")))
            continue;
        if (stw_add_meta(st, k, f.meta_values[i]) < 0) {
            tool_errf(err, ERRLEN, "out of memory");
            goto out_close;
        }
    }
    if ((labels && stw_add_meta(st, "resnet.labels", labels) < 0) ||
        (o->preprocess && stw_add_meta(st, "resnet.preprocess", o->preprocess) < 0) ||
        (source[0] && stw_add_meta(st, "resnet.source", source) < 0)) {
        tool_errf(err, ERRLEN, "out of memory");
        goto out_close;
    }
    if (stw_write(st, o->output, err, ERRLEN) < 0)
        goto out_close;
    printf("wrote %s: %s, %d tensors from the %s file, %d classes%s\n", o->output, info->arch,
           f.n_tensors, f.format, info->n_classes,
           labels || st_meta(&f, "resnet.labels") ? " (labelled)" : "");
    rc = 0;
out_close:
    free(labels);
    stw_free(st);
    st_close(&f);
out_model:
    rn_model_free(m);
    return rc;
}

int cmd_convert(int argc, char **argv)
{
    struct opts o;
    int r = parse_args(argc, argv, &o);
    if (r)
        return r;
    char err[ERRLEN] = "";
    if ((strcmp(o.from, "tfjs") ? convert_weights(&o, err) : convert(&o, err)) < 0) {
        fprintf(stderr, "resnet convert: %s\n", err);
        return 1;
    }
    return 0;
}
