/* Model loading: read the metadata, let a builder make the plan from the
 * tensors (resnetv1.c for torchvision's and timm's ResNet names, resnetv2.c
 * for timm's pre-activation ResNet v2; the reading of tensors they share is
 * loader.c), pack it for the engine (pack.c), and the model API.
 *
 * Loading runs in two steps so that a bad file never half-loads a model: a
 * builder walks the expected names, checks every shape, appends ops and
 * records where each convolution's weights come from; only then is one arena
 * allocated and filled. Any tensor left unused is an error.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/cpu.h"
#include "loader.h"

/* ---- metadata ---- */

/* resnet.quantization (docs/int8.md): this file is an INT8 model. A JSON
 * object whose "version" this build reads; the rest describes how it was
 * made, for people. The image's scale is read here too, before a builder
 * counts the tensors it did not use. */
static int read_quantization(struct loader *L)
{
    const char *v = st_meta(L->f, "resnet.quantization");
    if (!v)
        return RN_OK;
    cJSON *j = cJSON_Parse(v);
    cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    int ok = cJSON_IsObject(j) && cJSON_IsNumber(ver) && ver->valuedouble == 1;
    cJSON_Delete(j);
    if (!ok)
        return rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                       "metadata resnet.quantization: \"%.40s\", expected a JSON object with \"version\": 1",
                       v);
    /* the ONNX reader sets it for QDQ graphs only (never from a graph's own
     * metadata); a pickle cannot hold int8 tensors the loader reads */
    const char *fmt = L->f->format ? L->f->format : "safetensors";
    if (strcmp(fmt, "safetensors") && strcmp(fmt, "onnx"))
        return rn_errf(L->err, L->errlen, RN_ERR_UNSUPPORTED,
                       "metadata resnet.quantization: INT8 models are read from safetensors files and ONNX QDQ graphs");
    L->quant = 1;
    return ld_input_scale(L);
}

static int read_meta(struct loader *L)
{
    rn_model *m = L->m;
    st_file *f = L->f;
    m->info.variant = RN_VARIANT_V1_5;
    m->info.bn_eps = 1e-5f;
    m->pp = rn_preprocess_default();

    m->meta_keys = calloc((size_t)f->n_meta + 1, sizeof *m->meta_keys);
    m->meta_values = calloc((size_t)f->n_meta + 1, sizeof *m->meta_values);
    if (!m->meta_keys || !m->meta_values)
        return rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < f->n_meta; i++) {
        m->meta_keys[i] = strdup(f->meta_keys[i]);
        m->meta_values[i] = strdup(f->meta_values[i]);
        m->n_meta++;
        if (!m->meta_keys[i] || !m->meta_values[i])
            return rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");
    }

    const char *v = st_meta(f, "resnet.variant");
    if (v) {
        if (!strcmp(v, "v1"))
            m->info.variant = RN_VARIANT_V1;
        else if (strcmp(v, "v1.5"))
            return rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                           "metadata resnet.variant: \"%.32s\", expected \"v1\" or \"v1.5\"", v);
    }
    v = st_meta(f, "resnet.bn_eps");
    if (v) {
        char *end;
        double eps = strtod(v, &end);
        if (end == v || *end || !(eps > 0 && eps < 1))
            return rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                           "metadata resnet.bn_eps: \"%.32s\", expected a number in (0, 1)", v);
        m->info.bn_eps = (float)eps;
    }
    v = st_meta(f, "resnet.preprocess");
    if (v) {
        int rc = rn_preprocess_parse(v, &m->pp, L->err, L->errlen);
        if (rc < 0) {
            rn_err_prefix(L->err, L->errlen, "metadata");
            return rc;
        }
    }
    return read_quantization(L);
}

/* n class names from a JSON array or {"0": name, ...} object or, when
 * lines is set and the text is not JSON, one name per line; what names the
 * source in messages. *out: n malloc'd strings. */
static int parse_labels(const char *text, size_t len, int n, int lines, const char *what,
                        char ***out, char *err, size_t errlen)
{
    char **labels = calloc((size_t)n, sizeof *labels);
    int rc = RN_OK, got = 0;
    if (!labels)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (j && (cJSON_IsArray(j) || cJSON_IsObject(j))) {
        got = cJSON_GetArraySize(j);
        for (int i = 0; i < n && got == n; i++) {
            char key[16];
            snprintf(key, sizeof key, "%d", i);
            const cJSON *e = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, i)
                                              : cJSON_GetObjectItemCaseSensitive(j, key);
            if (!cJSON_IsString(e)) {
                rc = rn_errf(err, errlen, RN_ERR_FORMAT, "%s: class %d has no name (a string)", what, i);
                goto out;
            }
            if (!(labels[i] = strdup(e->valuestring))) {
                rc = rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
    } else if (lines && len && !memchr(text, '\0', len)) {
        const char *p = text, *end = text + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *e = nl ? nl : end;
            size_t l = (size_t)(e - p);
            if (l && p[l - 1] == '\r')
                l--;
            if (!(nl == NULL && l == 0)) { /* a final newline ends the last name */
                if (got < n && !(labels[got] = strndup(p, l))) {
                    rc = rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
                    goto out;
                }
                got++;
            }
            p = nl ? nl + 1 : end;
        }
    } else {
        rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                     lines ? "%s: neither JSON class names nor text of one name per line"
                           : "%s: expected a JSON array of %d strings (one per class)",
                     what, n);
        goto out;
    }
    if (got != n)
        rc = rn_errf(err, errlen, RN_ERR_FORMAT, "%s: %d class names, the model has %d classes",
                     what, got, n);
out:
    cJSON_Delete(j);
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            free(labels[i]);
        free(labels);
        return rc;
    }
    *out = labels;
    return RN_OK;
}

/* Labels are checked after the architecture, against the number of classes:
 * the file given (rn_model_params.labels), else the metadata's. */
static int read_labels(struct loader *L, const char *path)
{
    int n = L->m->info.n_classes;
    if (path) {
        FILE *fp = fopen(path, "rb");
        if (!fp)
            return rn_errf(L->err, L->errlen, RN_ERR_IO, "labels %s: %s", path, strerror(errno));
        char *text = NULL;
        size_t len = 0, cap = 0;
        int rc = RN_OK;
        for (;;) {
            if (len == cap) {
                size_t nc = cap ? 2 * cap : 65536;
                char *t = nc <= (64u << 20) ? realloc(text, nc) : NULL;
                if (!t) {
                    rc = rn_errf(L->err, L->errlen, nc > (64u << 20) ? RN_ERR_FORMAT : RN_ERR_NOMEM,
                                 "labels %s: %s", path, nc > (64u << 20) ? "larger than 64 MB" : "out of memory");
                    break;
                }
                text = t;
                cap = nc;
            }
            size_t r = fread(text + len, 1, cap - len, fp);
            len += r;
            if (r == 0) {
                if (ferror(fp))
                    rc = rn_errf(L->err, L->errlen, RN_ERR_IO, "labels %s: read error", path);
                break;
            }
        }
        fclose(fp);
        char what[300];
        snprintf(what, sizeof what, "labels %.280s", path);
        if (rc == RN_OK)
            rc = parse_labels(text, len, n, 1, what, &L->m->labels, L->err, L->errlen);
        free(text);
        return rc;
    }
    const char *v = st_meta(L->f, "resnet.labels");
    if (!v)
        return RN_OK;
    return parse_labels(v, strlen(v), n, 0, "metadata resnet.labels", &L->m->labels, L->err,
                        L->errlen);
}

/* ---- summary ---- */

static void summarise(rn_model *m)
{
    rn_model_info *in = &m->info;
    double flops = 0;
    int *shapes = malloc(3 * sizeof(int) * (size_t)(m->n_ops + 1));
    if (shapes) {
        size_t sizes[RN_BUF_COUNT], col;
        rn_plan_sizes(m, NULL, 224, 224, sizes, &col, shapes);
        for (int i = 0; i < m->n_ops; i++)
            flops += rn_op_flops(m, &m->ops[i], shapes + 3 * i);
        free(shapes);
    }
    in->gflops = flops / 1e9;

    int std_out[4] = {256, 512, 1024, 2048}, std_basic[4] = {64, 128, 256, 512};
    int regular = in->n_stages == 4 && in->stem_channels == 64;
    int depth = 2;
    for (int s = 0; s < in->n_stages; s++) {
        depth += in->blocks[s] * (in->block == RN_BLOCK_BOTTLENECK ? 3 : 2);
        if (s < 4 && in->out_channels[s] != (in->block == RN_BLOCK_BOTTLENECK ? std_out[s] : std_basic[s]))
            regular = 0;
        if (s > 0 && in->widths[s] != 2 * in->widths[s - 1])
            regular = 0;
    }
    int w = in->widths[0];
    const char *sfx = in->stem != RN_STEM_DEEP ? "" : in->avg_down ? "d" : "c";
    const char *pre = in->preact ? "resnetv2_" : "resnet";
    if (!regular)
        snprintf(in->arch, sizeof in->arch, "%s", in->preact ? "resnetv2" : "resnet");
    else if (in->groups > 1)
        snprintf(in->arch, sizeof in->arch, "resnext%d%s_%dx%dd", depth, sfx, in->groups, w / in->groups);
    else if (w == 64 || (in->block == RN_BLOCK_BASIC && w == 64))
        snprintf(in->arch, sizeof in->arch, "%s%d%s", pre, depth, sfx);
    else if (w % 64 == 0 && !in->preact)
        snprintf(in->arch, sizeof in->arch, "wide_resnet%d_%d", depth, w / 64);
    else
        snprintf(in->arch, sizeof in->arch, "%s", in->preact ? "resnetv2" : "resnet");
}

/* The plan, from whichever builder the tensors' names call for. */
static int describe(struct loader *L)
{
    int rc = rn_describe_v2(L);
    return rc != 0 ? (rc < 0 ? rc : RN_OK) : rn_describe_v1(L);
}

static void free_loader(struct loader *L)
{
    free(L->srcs);
    free(L->bsrcs);
}

int rn_model_from_file(st_file *f, const rn_model_params *params, rn_model **out, char *err,
                       size_t errlen)
{
    rn_model *m = calloc(1, sizeof *m);
    if (!m)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    struct loader L = {.f = f, .m = m, .err = err, .errlen = errlen};
    int rc;
    if (params && params->precision != RN_PRECISION_FP32 && params->precision != RN_PRECISION_BF16 &&
        params->precision != RN_PRECISION_INT8) {
        rc = rn_errf(err, errlen, RN_ERR_INVALID_ARG, "unknown precision %d", params->precision);
        goto out_free_model;
    }
    int isa; /* refused before anything is read when the CPU cannot run it */
    if ((rc = rn_isa_choose(params ? params->isa : RN_ISA_AUTO, &isa, err, errlen)) < 0)
        goto out_free_model;
    if ((rc = read_meta(&L)) < 0)
        goto out_free_model;
    int precision = params ? params->precision : RN_PRECISION_FP32;
    if (precision == RN_PRECISION_INT8 && !L.quant) {
        rc = rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                     "precision int8: this file holds float weights; `resnet quantize` makes an INT8 model of it");
        goto out_free_model;
    }
    if (L.quant && precision != RN_PRECISION_INT8 && precision != RN_PRECISION_FP32)
        rn_log(RN_LOG_WARN, "an INT8 model: running in INT8, not %s", rn_precision_name(precision));
    if (L.quant)
        precision = RN_PRECISION_INT8;
    if ((rc = describe(&L)) < 0 || (rc = read_labels(&L, params ? params->labels : NULL)) < 0 ||
        (rc = ld_fill(&L)) < 0)
        goto out_free_model;
    st_drop_pages(f); /* read once: the file's pages need not stay beside the packing */
    if ((rc = rn_model_pack(m, precision, isa, err, errlen)) < 0)
        goto out_free_model;
    summarise(m);
    snprintf(m->info.format, sizeof m->info.format, "%s", f->format ? f->format : "safetensors");
    free_loader(&L);
    *out = m;
    return RN_OK;

out_free_model:
    free_loader(&L);
    rn_model_free(m);
    return rc;
}

rn_model_params rn_model_default_params(void)
{
    return (rn_model_params){.precision = RN_PRECISION_FP32};
}

int rn_model_load(const char *path, const rn_model_params *params, rn_model **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    int rc = rn_blas_init(err, errlen);
    if (rc < 0)
        return rc;
    st_file f;
    if ((rc = rn_weights_open(path, &f, err, errlen)) < 0)
        return rc;
    rc = rn_model_from_file(&f, params, out, err, errlen);
    st_close(&f);
    if (rc < 0)
        rn_err_prefix(err, errlen, "%s", path);
    return rc;
}

int rn_model_load_buffer(const void *data, size_t size, const rn_model_params *params,
                         rn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = rn_blas_init(err, errlen);
    if (rc < 0)
        return rc;
    st_file f;
    if ((rc = rn_weights_parse(data, size, &f, err, errlen)) < 0)
        return rc;
    rc = rn_model_from_file(&f, params, out, err, errlen);
    st_close(&f);
    return rc;
}

void rn_model_free(rn_model *m)
{
    if (!m)
        return;
    if (m->labels)
        for (int i = 0; i < m->info.n_classes; i++)
            free(m->labels[i]);
    free(m->labels);
    for (int i = 0; i < m->n_meta; i++) {
        free(m->meta_keys[i]);
        free(m->meta_values[i]);
    }
    free(m->meta_keys);
    free(m->meta_values);
    for (int i = 0; m->conv_names && i < m->n_convs; i++)
        free(m->conv_names[i]);
    for (int i = 0; m->bn_names && i < m->n_bns; i++)
        free(m->bn_names[i]);
    free(m->conv_names);
    free(m->bn_names);
    free(m->fc_names[0]);
    free(m->fc_names[1]);
    rn_model_unpack(m);
    free(m->convs);
    free(m->bns);
    free(m->ops);
    free(m->layers);
    free(m->blocks);
    rn_free(m->arena);
    free(m);
}

const char *rn_precision_name(int precision)
{
    static const char *const names[] = {[RN_PRECISION_FP32] = "fp32", [RN_PRECISION_BF16] = "bf16",
                                        [RN_PRECISION_INT8] = "int8"};
    return precision >= 0 && precision < (int)RN_ARRAY_LEN(names) ? names[precision] : "unknown";
}

const rn_model_info *rn_model_info_get(const rn_model *m)
{
    return &m->info;
}

const char *rn_model_label(const rn_model *m, int i)
{
    if (!m->labels || i < 0 || i >= m->info.n_classes)
        return NULL;
    return m->labels[i];
}

const char *rn_model_meta(const rn_model *m, const char *key)
{
    for (int i = 0; i < m->n_meta; i++)
        if (!strcmp(m->meta_keys[i], key))
            return m->meta_values[i];
    return NULL;
}

const char *rn_model_meta_key(const rn_model *m, int i)
{
    return i >= 0 && i < m->n_meta ? m->meta_keys[i] : NULL;
}

const rn_preprocess *rn_model_preprocess(const rn_model *m)
{
    return &m->pp;
}
