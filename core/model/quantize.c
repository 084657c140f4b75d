/* INT8 quantization (docs/int8.md; `resnet quantize`): the float model runs
 * on calibration images op by op, every tensor an INT8 model keeps in 8
 * bits gets a histogram of what it held, the scales come from those, and
 * the weights are quantized symmetric per output channel.
 *
 * The float model is loaded unpacked (im2col + BLAS, NCHW), so its folded
 * weights and biases stay readable and each op's output is plain NCHW. A
 * histogram has 2048 bins of |x| from 0 to a range that doubles (merging
 * bins in pairs) when a larger value comes, so one pass over the images is
 * enough. The image's own scale comes from the preprocessing's range (every
 * pixel value fits, none is clipped), or, after an input batch norm, from
 * the largest value seen.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctx.h"
#include "formats/weights.h"

#define BINS 2048

struct hist {
    double range, max;
    uint64_t n, count[BINS];
};

struct rn_quantizer {
    rn_quantize_params p;
    st_file f;
    rn_model *m;
    rn_ctx *ctx;
    struct hist **h; /* per op: the tensor it writes, or NULL */
    double **in_sum; /* per convolution op: the sum of each input channel, or NULL */
    double *in_count; /* ... and the values summed per channel */
    int images;
    float input_scale;
    rn_tensor_view *t;
    void **data; /* t[i].data, owned */
    int n_t, cap_t;
    char **meta_k, **meta_v;
    int n_meta;
};

rn_quantize_params rn_quantize_default_params(void)
{
    return (rn_quantize_params){.method = RN_CALIB_PERCENTILE, .percentile = 99.999, .max_batch = 8};
}

/* 1 if op i writes a tensor with a scale of its own, or (an input batch
 * norm) the float image the stem reads. */
static int observed(const rn_op *op)
{
    return op->kind == RN_OP_CONV || op->kind == RN_OP_BN_RELU || op->kind == RN_OP_NORM_INPUT;
}

int rn_quantizer_new(const char *path, const rn_quantize_params *params, rn_quantizer **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    rn_quantizer *q = calloc(1, sizeof *q);
    if (!q)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    q->p = params ? *params : rn_quantize_default_params();
    int rc;
    if (q->p.method < RN_CALIB_PERCENTILE || q->p.method > RN_CALIB_MSE ||
        (q->p.method == RN_CALIB_PERCENTILE && !(q->p.percentile > 50 && q->p.percentile <= 100)) ||
        q->p.max_batch < 1 || q->p.max_batch > 256 || q->p.n_threads < 0) {
        rc = rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                     "quantize: method %d, percentile %g (50..100], max_batch %d (1..256)", q->p.method,
                     q->p.percentile, q->p.max_batch);
        goto out_free;
    }
    if ((rc = rn_blas_init(err, errlen)) < 0 || (rc = rn_weights_open(path, &q->f, err, errlen)) < 0)
        goto out_free;
    if (st_meta(&q->f, "resnet.quantization")) {
        rc = rn_errf(err, errlen, RN_ERR_INVALID_ARG, "%s: already an INT8 model", path);
        goto out_free;
    }
    rn_model_params mp = rn_model_default_params();
    mp.isa = RN_ISA_BLAS; /* unpacked: folded weights readable, NCHW outputs */
    if ((rc = rn_model_from_file(&q->f, &mp, &q->m, err, errlen)) < 0) {
        rn_err_prefix(err, errlen, "%s", path);
        goto out_free;
    }
    rn_ctx_params cp = rn_ctx_default_params();
    cp.n_threads = q->p.n_threads;
    cp.max_batch = q->p.max_batch;
    cp.max_size = q->m->pp.crop >= 32 ? q->m->pp.crop : 224;
    if ((rc = rn_ctx_new(q->m, &cp, &q->ctx, err, errlen)) < 0)
        goto out_free;
    if (!(q->h = calloc((size_t)q->m->n_ops, sizeof *q->h)))
        goto out_nomem;
    if (!(q->in_sum = calloc((size_t)q->m->n_ops, sizeof *q->in_sum)) ||
        !(q->in_count = calloc((size_t)q->m->n_ops, sizeof *q->in_count)))
        goto out_nomem;
    for (int i = 0; i < q->m->n_ops; i++) {
        const rn_op *op = &q->m->ops[i];
        if (observed(op) && !(q->h[i] = calloc(1, sizeof **q->h)))
            goto out_nomem;
        if (op->kind == RN_OP_CONV &&
            !(q->in_sum[i] = calloc((size_t)q->m->convs[op->conv].in_c, sizeof(double))))
            goto out_nomem;
    }
    *out = q;
    return RN_OK;
out_nomem:
    rc = rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
out_free:
    rn_quantizer_free(q);
    return rc;
}

void rn_quantizer_free(rn_quantizer *q)
{
    if (!q)
        return;
    for (int i = 0; q->m && i < q->m->n_ops; i++) {
        if (q->h)
            free(q->h[i]);
        if (q->in_sum)
            free(q->in_sum[i]);
    }
    free(q->h);
    free(q->in_sum);
    free(q->in_count);
    for (int i = 0; i < q->n_t; i++) {
        free(q->data[i]);
        free((char *)q->t[i].name);
    }
    free(q->t);
    free(q->data);
    for (int i = 0; i < q->n_meta; i++) {
        free(q->meta_k[i]);
        free(q->meta_v[i]);
    }
    free(q->meta_k);
    free(q->meta_v);
    rn_ctx_free(q->ctx);
    rn_model_free(q->m);
    st_close(&q->f);
    free(q);
}

const rn_model *rn_quantizer_model(const rn_quantizer *q)
{
    return q ? q->m : NULL;
}

/* ---- histograms ---- */

static void hist_add(struct hist *h, const float *x, size_t count)
{
    double mx = 0;
    for (size_t i = 0; i < count; i++)
        mx = fmax(mx, fabs((double)x[i]));
    h->max = fmax(h->max, mx);
    if (h->range == 0)
        h->range = mx;
    while (mx > h->range) { /* twice the range: bins merged in pairs */
        for (int b = 0; b < BINS / 2; b++)
            h->count[b] = h->count[2 * b] + h->count[2 * b + 1];
        memset(h->count + BINS / 2, 0, BINS / 2 * sizeof h->count[0]);
        h->range *= 2;
    }
    h->n += count;
    if (h->range == 0) {
        h->count[0] += count;
        return;
    }
    double k = BINS / h->range;
    for (size_t i = 0; i < count; i++) {
        size_t b = (size_t)(fabs((double)x[i]) * k);
        h->count[b < BINS ? b : BINS - 1]++;
    }
}

/* The largest value the scale must reach (the top of the range), for a
 * tensor of `levels` steps above zero (255 for u8, 127 for s8). */
static double threshold(const struct hist *h, const rn_quantize_params *p, int levels)
{
    if (h->max == 0)
        return 0;
    if (p->method == RN_CALIB_MINMAX)
        return h->max;
    double w = h->range / BINS;
    if (p->method == RN_CALIB_PERCENTILE) {
        double target = (double)h->n * p->percentile / 100, cum = 0;
        for (int b = 0; b < BINS; b++) {
            cum += (double)h->count[b];
            if (cum >= target)
                return fmin((b + 1) * w, h->max);
        }
        return h->max;
    }
    /* RN_CALIB_MSE: of the tops at bin edges, the one whose expected
     * squared error is least: values above it clipped to it, the others
     * off by a uniform rounding error of step^2 / 12 */
    double best = h->max, best_err = INFINITY;
    for (int k = BINS / 64; k <= BINS; k++) {
        double t = k * w, step = t / levels, e = 0, below = 0;
        for (int b = 0; b < BINS; b++) {
            double c = (b + 0.5) * w;
            if (c > t)
                e += (double)h->count[b] * (c - t) * (c - t);
            else
                below += (double)h->count[b];
        }
        e += below * step * step / 12;
        if (e < best_err) {
            best_err = e;
            best = fmin(t, h->max);
        }
    }
    return best;
}

/* The scale of a tensor of `levels` steps above zero; 1 for one that held
 * only zeros (any scale represents it). */
static float hist_scale(const struct hist *h, const rn_quantize_params *p, int levels)
{
    float s = (float)(threshold(h, p, levels) / levels);
    return s > 0 ? s : 1.0f;
}

int rn_quantizer_observe(rn_quantizer *q, const float *input, int n, int h, int w, char *err,
                         size_t errlen)
{
    if (!q || !input || n < 1 || n > q->p.max_batch || h < 32 || w < 32 || h > 8192 || w > 8192)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                       "quantize: %d images of %dx%d: need 1..%d images of 32..8192 pixels a side", n, h,
                       w, q ? q->p.max_batch : 0);
    if (q->n_t)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "quantize: already finished");
    int rc = rn_ctx_reserve(q->ctx, n, h, w, err, errlen);
    if (rc < 0)
        return rc;
    rn_walk wk;
    rn_walk_init(q->ctx, &wk, input, n, h, w, q->ctx->pooled, q->ctx->logits);
    for (int i = 0; i < q->m->n_ops; i++) {
        const rn_op *op = &q->m->ops[i];
        if (q->in_sum[i]) { /* the convolution's input, before it runs (it may write over it) */
            const float *x = op->in == RN_BUF_INPUT ? input : wk.buf[op->in];
            const int *s = op->in == RN_BUF_INPUT ? (const int[3]){3, h, w} : wk.shape[op->in];
            size_t hw = (size_t)s[1] * s[2];
            for (int b = 0; b < n; b++)
                for (int c = 0; c < s[0]; c++) {
                    const float *p = x + ((size_t)b * s[0] + c) * hw;
                    double sum = 0;
                    for (size_t k = 0; k < hw; k++)
                        sum += p[k];
                    q->in_sum[i][c] += sum;
                }
            q->in_count[i] += (double)n * hw;
        }
        rn_walk_op(q->ctx, &wk, i);
        if (q->h[i]) {
            const int *s = wk.shape[q->m->ops[i].out];
            hist_add(q->h[i], wk.buf[q->m->ops[i].out], (size_t)n * s[0] * s[1] * s[2]);
        }
    }
    q->images += n;
    return RN_OK;
}

/* ---- the INT8 file's tensors ---- */

/* Append a tensor; data (nbytes) is taken over, freed on failure too. */
static int add(rn_quantizer *q, const char *name, const char *suffix, const char *dtype, int ndim,
               const int64_t *shape, void *data, size_t nbytes)
{
    if (q->n_t == q->cap_t) {
        int cap = q->cap_t ? 2 * q->cap_t : 256;
        rn_tensor_view *t = realloc(q->t, (size_t)cap * sizeof *t);
        if (t)
            q->t = t;
        void **d = t ? realloc(q->data, (size_t)cap * sizeof *d) : NULL;
        if (d)
            q->data = d;
        if (!t || !d) {
            free(data);
            return RN_ERR_NOMEM;
        }
        q->cap_t = cap;
    }
    size_t len = strlen(name) + strlen(suffix) + 2;
    char *full = malloc(len);
    if (!full || !data) {
        free(full);
        free(data);
        return RN_ERR_NOMEM;
    }
    snprintf(full, len, "%s%s%s", name, *suffix ? "." : "", suffix);
    rn_tensor_view *t = &q->t[q->n_t];
    *t = (rn_tensor_view){.name = full, .dtype = dtype, .ndim = ndim, .data = data, .nbytes = nbytes};
    if (ndim)
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    q->data[q->n_t++] = data;
    return RN_OK;
}

static int add_scale(rn_quantizer *q, const char *name, const char *suffix, float v)
{
    float *d = malloc(sizeof v);
    if (d)
        *d = v;
    return add(q, name, suffix, "F32", 0, NULL, d, sizeof v);
}

/* A float tensor of the source file, as F32 under its own name. */
static int copy_tensor(rn_quantizer *q, const char *name, char *err, size_t errlen)
{
    const st_tensor *s = st_find(&q->f, name);
    if (!s)
        return rn_errf(err, errlen, RN_ERR_INTERNAL, "quantize: %s: not in the file", name);
    float *d = malloc((size_t)s->numel * sizeof(float));
    int rc = d ? st_read_f32(s, d, err, errlen) : RN_ERR_NOMEM;
    if (rc < 0) {
        free(d);
        return rc;
    }
    return add(q, name, "", "F32", s->ndim, s->shape, d, (size_t)s->numel * sizeof(float));
}

/* The four tensors of batch norm `name` (kept float in an INT8 file). */
static int copy_norm(rn_quantizer *q, const char *name, char *err, size_t errlen)
{
    static const char *const f[4] = {"weight", "bias", "running_mean", "running_var"};
    int rc = RN_OK;
    for (int k = 0; k < 4 && rc == RN_OK; k++) {
        char full[200];
        snprintf(full, sizeof full, "%s.%s", name, f[k]);
        rc = copy_tensor(q, full, err, errlen);
    }
    return rc;
}

/* Convolution c's int8 weights, scales and int32 bias for input scale
 * s_in and output scale s_out. With in_mean (each input channel's mean on
 * the calibration images), each output channel's bias is corrected by what
 * its weights' rounding shifts its mean by: sum over the channel's taps of
 * (w_int8 * scale - w) * mean of the tap's input channel. Padding's zeros are
 * not counted apart: the border is a small part of each image. */
static int add_conv(rn_quantizer *q, const rn_conv *c, const char *name, float s_in, float s_out,
                    const double *in_mean)
{
    int o_n = c->out_c;
    size_t per = (size_t)c->in_c / c->groups * c->kh * c->kw;
    int8_t *w = malloc((size_t)o_n * per);
    float *ws = malloc((size_t)o_n * sizeof(float));
    int32_t *b = malloc((size_t)o_n * sizeof(int32_t));
    if (!w || !ws || !b) {
        free(w);
        free(ws);
        free(b);
        return RN_ERR_NOMEM;
    }
    int clamped = 0;
    for (int o = 0; o < o_n; o++) {
        double mx = 0;
        for (size_t k = 0; k < per; k++)
            mx = fmax(mx, fabs((double)c->w[o * per + k]));
        ws[o] = mx > 0 ? (float)(mx / 127) : 1.0f; /* an all-zero channel: any scale */
        double shift = 0;
        int cpg = c->in_c / c->groups, taps = c->kh * c->kw, c0 = o / (c->out_c / c->groups) * cpg;
        for (size_t k = 0; k < per; k++) {
            w[o * per + k] = (int8_t)fmax(-127, fmin(127, nearbyint((double)c->w[o * per + k] / ws[o])));
            if (in_mean)
                shift += ((double)w[o * per + k] * ws[o] - c->w[o * per + k]) * in_mean[c0 + (int)k / taps];
        }
        double bq = nearbyint(((double)c->b[o] - shift) / ((double)s_in * ws[o]));
        if (fabs(bq) > (double)(1 << 30)) {
            bq = bq > 0 ? (1 << 30) : -(1 << 30);
            clamped++;
        }
        b[o] = (int32_t)bq;
    }
    if (clamped)
        rn_log(RN_LOG_WARN, "quantize: %s: %d biases beyond +-2^30 input steps, cut there", name, clamped);
    int64_t shape[4] = {o_n, c->in_c / c->groups, c->kh, c->kw}, one[1] = {o_n};
    int rc;
    if ((rc = add(q, name, "weight", "I8", 4, shape, w, (size_t)o_n * per)) < 0 ||
        (rc = add(q, name, "weight_scale", "F32", 1, one, ws, (size_t)o_n * sizeof(float))) < 0 ||
        (rc = add(q, name, "bias", "I32", 1, one, b, (size_t)o_n * sizeof(int32_t))) < 0)
        return rc;
    return add_scale(q, name, "output_scale", s_out);
}

/* The image's scale: the preprocessing's widest value over 127. */
static float image_scale(const rn_preprocess *pp)
{
    double mx = 0;
    for (int c = 0; c < 3; c++)
        for (int v = 0; v <= 255; v += 255)
            mx = fmax(mx, fabs((v * (double)pp->scale - pp->mean[c]) / pp->std[c]));
    return (float)(mx / 127);
}

static int add_meta(rn_quantizer *q, const char *k, const char *v)
{
    char **nk = realloc(q->meta_k, (size_t)(q->n_meta + 1) * sizeof *nk);
    if (nk)
        q->meta_k = nk;
    char **nv = nk ? realloc(q->meta_v, (size_t)(q->n_meta + 1) * sizeof *nv) : NULL;
    if (nv)
        q->meta_v = nv;
    if (!nk || !nv)
        return RN_ERR_NOMEM;
    q->meta_k[q->n_meta] = strdup(k);
    q->meta_v[q->n_meta] = strdup(v);
    q->n_meta++;
    return q->meta_k[q->n_meta - 1] && q->meta_v[q->n_meta - 1] ? RN_OK : RN_ERR_NOMEM;
}

static int metadata(rn_quantizer *q)
{
    static const char *const methods[] = {"percentile", "minmax", "mse"};
    const rn_model *m = q->m;
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta_keys[i], "resnet.quantization") && strcmp(m->meta_keys[i], "resnet.stem_relu") &&
            add_meta(q, m->meta_keys[i], m->meta_values[i]) < 0)
            return RN_ERR_NOMEM;
    /* a v2 stem whose norm (and so its ReLU) is folded away: say so */
    for (int i = 0; i < m->n_convs; i++)
        if (!strcmp(m->conv_names[i], "stem.conv"))
            for (int k = 0; k < m->n_ops; k++)
                if (m->ops[k].kind == RN_OP_CONV && m->ops[k].conv == i &&
                    add_meta(q, "resnet.stem_relu", m->ops[k].relu ? "true" : "false") < 0)
                    return RN_ERR_NOMEM;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "weights", "s8 per-channel");
    cJSON_AddStringToObject(j, "activations", "u8/s8 per-tensor");
    cJSON_AddStringToObject(j, "method", methods[q->p.method]);
    if (q->p.method == RN_CALIB_PERCENTILE)
        cJSON_AddNumberToObject(j, "percentile", q->p.percentile);
    cJSON_AddBoolToObject(j, "bias_correction", q->p.bias_correction != 0);
    cJSON_AddNumberToObject(j, "images", q->images);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int rc = s ? add_meta(q, "resnet.quantization", s) : RN_ERR_NOMEM;
    free(s);
    return rc;
}

int rn_quantizer_finish(rn_quantizer *q, char *err, size_t errlen)
{
    if (!q || q->images == 0)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "quantize: no calibration image was observed");
    if (q->n_t)
        return RN_OK;
    const rn_model *m = q->m;
    float scale[RN_BUF_COUNT] = {0};
    int image[RN_BUF_COUNT] = {0}, rc = RN_OK;
    q->input_scale = image_scale(&m->pp);
    if ((rc = add_scale(q, "input_scale", "", q->input_scale)) < 0)
        goto out;
    for (int i = 0; i < m->n_ops; i++) {
        const rn_op *op = &m->ops[i];
        int in = op->in, is_image = in == RN_BUF_INPUT || (in >= 0 && image[in]);
        float s_out = 0;
        switch (op->kind) {
        case RN_OP_NORM_INPUT: /* the stem then reads this image */
            q->input_scale = (float)(threshold(q->h[i], &(rn_quantize_params){.method = RN_CALIB_MINMAX}, 127) / 127);
            if (!(q->input_scale > 0))
                q->input_scale = 1;
            *(float *)q->data[0] = q->input_scale;
            rc = copy_norm(q, m->bn_names[op->bn], err, errlen);
            break;
        case RN_OP_CONV: {
            const rn_conv *c = &m->convs[op->conv];
            s_out = hist_scale(q->h[i], &q->p, op->relu ? 255 : 127);
            double *mean = NULL;
            if (q->p.bias_correction && q->in_count[i] > 0) {
                if (!(mean = malloc((size_t)c->in_c * sizeof *mean))) {
                    rc = RN_ERR_NOMEM;
                    break;
                }
                for (int k = 0; k < c->in_c; k++)
                    mean[k] = q->in_sum[i][k] / q->in_count[i];
            }
            rc = add_conv(q, c, m->conv_names[op->conv], is_image ? q->input_scale : scale[in], s_out, mean);
            free(mean);
            break;
        }
        case RN_OP_BN_RELU:
            s_out = hist_scale(q->h[i], &q->p, 255);
            rc = copy_norm(q, m->bn_names[op->bn], err, errlen);
            if (rc == RN_OK)
                rc = add_scale(q, m->bn_names[op->bn], "output_scale", s_out);
            break;
        case RN_OP_MAXPOOL:
        case RN_OP_AVGPOOL:
            s_out = in >= 0 ? scale[in] : 0;
            break;
        default:
            break;
        }
        if (rc < 0)
            goto out;
        if (rn_op_writes_buffer(op)) {
            scale[op->out] = s_out;
            image[op->out] = op->kind == RN_OP_NORM_INPUT;
        }
    }
    if ((rc = copy_tensor(q, m->fc_names[0], err, errlen)) < 0 ||
        (rc = copy_tensor(q, m->fc_names[1], err, errlen)) < 0 || (rc = metadata(q)) < 0)
        goto out;
    return RN_OK;
out:
    if (rc == RN_ERR_NOMEM)
        rn_errf(err, errlen, rc, "quantize: out of memory");
    return rc;
}

int rn_quantizer_tensor_count(const rn_quantizer *q)
{
    return q ? q->n_t : 0;
}

int rn_quantizer_tensor(const rn_quantizer *q, int i, rn_tensor_view *t)
{
    if (!q || i < 0 || i >= q->n_t || !t)
        return RN_ERR_INVALID_ARG;
    *t = q->t[i];
    return RN_OK;
}

int rn_quantizer_meta_count(const rn_quantizer *q)
{
    return q ? q->n_meta : 0;
}

const char *rn_quantizer_meta(const rn_quantizer *q, int i, const char **value)
{
    if (!q || i < 0 || i >= q->n_meta)
        return NULL;
    if (value)
        *value = q->meta_v[i];
    return q->meta_k[i];
}
