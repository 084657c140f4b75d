/* Model loading: read the architecture from the tensors, validate every
 * tensor, fold batch norm into the convolutions, read the metadata.
 *
 * Loading runs in two steps so that a bad file never half-loads a model:
 * describe() walks the expected torchvision names, checks every shape and
 * records where each convolution's weights come from; only then is one arena
 * allocated and filled. Any tensor left unused is an error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cpu.h"
#include "model.h"

/* Where one folded convolution comes from. */
struct conv_src {
    rn_conv *dst;
    const st_tensor *w, *bn[4]; /* weight; bn weight, bias, running_mean, running_var */
};

struct loader {
    st_file *f;
    rn_model *m;
    char *err;
    size_t errlen;
    struct conv_src *srcs;
    int n_srcs, cap_srcs;
    size_t n_floats; /* arena size */
    int max_c;       /* widest batch norm */
};

static const char *const bn_fields[4] = {"weight", "bias", "running_mean", "running_var"};

static void fmt_shape(const st_tensor *t, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

static int is_float(const st_tensor *t)
{
    return t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
}

/* Find a float tensor of ndim dimensions and mark it used. */
static int take(struct loader *L, const char *name, int ndim, const st_tensor **out)
{
    st_tensor *t = st_find(L->f, name);
    if (!t)
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: missing", name);
    if (!is_float(t))
        return rn_errf(L->err, L->errlen, RN_ERR_FORMAT, "%s: dtype %s, expected F32, F16 or BF16",
                       name, st_dtype_name(t->dtype));
    if (t->ndim != ndim) {
        char s[96];
        fmt_shape(t, s, sizeof s);
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: shape %s, expected %d dimensions",
                       name, s, ndim);
    }
    t->used = 1;
    *out = t;
    return RN_OK;
}

static int take_bn(struct loader *L, const char *prefix, int c, struct conv_src *s)
{
    char name[160];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, bn_fields[i]);
        int rc = take(L, name, 1, &s->bn[i]);
        if (rc < 0)
            return rc;
        if (s->bn[i]->shape[0] != c)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: shape [%lld], expected [%d]", name,
                           (long long)s->bn[i]->shape[0], c);
    }
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    st_tensor *t = st_find(L->f, name);
    if (t) {
        if (t->numel > 1)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: %lld elements, expected one",
                           name, (long long)t->numel);
        t->used = 1;
    }
    if (c > L->max_c)
        L->max_c = c;
    return RN_OK;
}

/* Describe conv `wname` + batch norm `bnname`. in_c is what the previous
 * layer produces; out_c and k are required values or -1 for any; groups -1
 * derives them from the weight shape. */
static int take_conv(struct loader *L, const char *wname, const char *bnname, int in_c,
                     int out_c, int k, int groups, int stride, rn_conv *c)
{
    const st_tensor *w;
    int rc = take(L, wname, 4, &w);
    if (rc < 0)
        return rc;
    int64_t o = w->shape[0], i = w->shape[1], kh = w->shape[2], kw = w->shape[3];
    if (groups < 0)
        groups = i > 0 && in_c % i == 0 ? (int)(in_c / i) : 0;
    char s[96];
    fmt_shape(w, s, sizeof s);
    if (o < 1 || o > 65536 || groups < 1 || o % groups || i * groups != in_c ||
        (out_c >= 0 && o != out_c) || kh != kw || kh < 1 || kh > 15 || !(kh & 1) ||
        (k >= 0 && kh != k)) {
        char ko[16] = "out", kk[16] = "k";
        if (out_c >= 0)
            snprintf(ko, sizeof ko, "%d", out_c);
        if (k >= 0)
            snprintf(kk, sizeof kk, "%d", k);
        if (groups > 1)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                           "%s: shape %s, expected [%s,%d,%s,%s] (%d groups)", wname, s, ko,
                           in_c / groups, kk, kk, groups);
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: shape %s, expected [%s,%d,%s,%s]",
                       wname, s, ko, in_c, kk, kk);
    }
    *c = (rn_conv){.in_c = in_c, .out_c = (int)o, .kh = (int)kh, .kw = (int)kw,
                   .stride = stride, .pad = (int)kh / 2, .groups = groups};
    if (L->n_srcs == L->cap_srcs) {
        int cap = L->cap_srcs ? 2 * L->cap_srcs : 64;
        struct conv_src *ns = realloc(L->srcs, (size_t)cap * sizeof *ns);
        if (!ns)
            return rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");
        L->srcs = ns;
        L->cap_srcs = cap;
    }
    struct conv_src *src = &L->srcs[L->n_srcs];
    src->dst = c;
    src->w = w;
    if ((rc = take_bn(L, bnname, (int)o, src)) < 0)
        return rc;
    L->n_srcs++;
    L->n_floats += (size_t)w->numel + (size_t)o;
    return RN_OK;
}

static int has(struct loader *L, const char *fmt, int a, int b)
{
    char name[160];
    snprintf(name, sizeof name, fmt, a, b);
    return st_find(L->f, name) != NULL;
}

static int describe_block(struct loader *L, int s, int i, int stride, int in_c, rn_block *b)
{
    char p[64], wn[160], bn[160];
    snprintf(p, sizeof p, "layer%d.%d", s + 1, i);
    int v1 = L->m->info.variant == RN_VARIANT_V1, rc;
#define CONV(field, n, out, k, g, st)                                                      \
    (snprintf(wn, sizeof wn, "%s.conv%d.weight", p, n),                                    \
     snprintf(bn, sizeof bn, "%s.bn%d", p, n),                                             \
     take_conv(L, wn, bn, field##_in, out, k, g, st, &b->field))
    if (b->kind == RN_BLOCK_BOTTLENECK) {
        int c1_in = in_c;
        if ((rc = CONV(c1, 1, -1, 1, 1, v1 ? stride : 1)) < 0)
            return rc;
        int c2_in = b->c1.out_c;
        if ((rc = CONV(c2, 2, b->c1.out_c, 3, -1, v1 ? 1 : stride)) < 0)
            return rc;
        int c3_in = b->c2.out_c;
        if ((rc = CONV(c3, 3, -1, 1, 1, 1)) < 0)
            return rc;
    } else {
        int c1_in = in_c;
        if ((rc = CONV(c1, 1, -1, 3, 1, stride)) < 0)
            return rc;
        int c2_in = b->c1.out_c;
        if ((rc = CONV(c2, 2, b->c1.out_c, 3, 1, 1)) < 0)
            return rc;
    }
#undef CONV
    int out_c = rn_block_last(b)->out_c;
    snprintf(wn, sizeof wn, "%s.downsample.0.weight", p);
    snprintf(bn, sizeof bn, "%s.downsample.1", p);
    if (st_find(L->f, wn)) {
        if ((rc = take_conv(L, wn, bn, in_c, out_c, 1, 1, stride, &b->ds)) < 0)
            return rc;
    } else if (stride != 1 || in_c != out_c) {
        if (has(L, "layer%d.%d.downsample.1.weight", s + 1, i) &&
            has(L, "layer%d.%d.downsample.2.weight", s + 1, i))
            return rn_errf(L->err, L->errlen, RN_ERR_UNSUPPORTED,
                           "%s.downsample: average-pool shortcut (ResNet-D) is not supported", p);
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                       "%s: missing (the block maps %d channels at stride %d to %d channels, "
                       "which needs a projection shortcut)", wn, in_c, stride, out_c);
    }
    L->n_floats += (size_t)out_c;
    return RN_OK;
}

/* Read the architecture from the tensor names and shapes. */
static int describe(struct loader *L)
{
    rn_model *m = L->m;
    rn_model_info *info = &m->info;
    int rc;
    if (!st_find(L->f, "conv1.weight")) {
        if (st_find(L->f, "conv1.0.weight"))
            return rn_errf(L->err, L->errlen, RN_ERR_UNSUPPORTED,
                           "conv1.0.weight: deep stem (ResNet-C/D) is not supported");
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                       "conv1.weight: missing; not a torchvision/timm ResNet");
    }
    if ((rc = take_conv(L, "conv1.weight", "bn1", 3, -1, -1, 1, 2, &m->stem)) < 0)
        return rc;
    info->stem_channels = m->stem.out_c;

    while (info->n_stages < RN_MAX_STAGES && has(L, "layer%d.%d.conv1.weight", info->n_stages + 1, 0))
        info->n_stages++;
    if (info->n_stages == 0)
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "layer1.0.conv1.weight: missing; not a ResNet");
    info->block = has(L, "layer%d.%d.conv3.weight", 1, 0) ? RN_BLOCK_BOTTLENECK : RN_BLOCK_BASIC;
    for (int s = 0; s < info->n_stages; s++) {
        while (info->blocks[s] < 4096 && has(L, "layer%d.%d.conv1.weight", s + 1, info->blocks[s]))
            info->blocks[s]++;
        m->n_blocks += info->blocks[s];
    }
    m->blocks = calloc((size_t)m->n_blocks, sizeof *m->blocks);
    if (!m->blocks)
        return rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");

    int in_c = m->stem.out_c, k = 0;
    info->groups = 1;
    for (int s = 0; s < info->n_stages; s++) {
        for (int i = 0; i < info->blocks[s]; i++, k++) {
            rn_block *b = &m->blocks[k];
            b->kind = info->block;
            if ((rc = describe_block(L, s, i, i == 0 && s > 0 ? 2 : 1, in_c, b)) < 0)
                return rc;
            in_c = rn_block_last(b)->out_c;
            if (i == 0) {
                info->widths[s] = b->c2.out_c;
                info->out_channels[s] = in_c;
                if (b->kind == RN_BLOCK_BOTTLENECK && s == 0)
                    info->groups = b->c2.groups;
            }
        }
    }
    info->embed_dim = in_c;

    const st_tensor *fw, *fb;
    if ((rc = take(L, "fc.weight", 2, &fw)) < 0 || (rc = take(L, "fc.bias", 1, &fb)) < 0)
        return rc;
    if (fw->shape[1] != in_c || fw->shape[0] < 1 || fw->shape[0] > 1000000 ||
        fb->shape[0] != fw->shape[0]) {
        char s1[96], s2[96];
        fmt_shape(fw, s1, sizeof s1);
        fmt_shape(fb, s2, sizeof s2);
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                       "fc.weight %s / fc.bias %s: expected [classes,%d] and [classes]", s1, s2,
                       in_c);
    }
    info->n_classes = (int)fw->shape[0];
    L->n_floats += (size_t)fw->numel + (size_t)fb->numel;

    for (int i = 0; i < L->f->n_tensors; i++)
        if (!L->f->tensors[i].used)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                           "%s: unexpected tensor (not part of a %s ResNet with %d stages)",
                           L->f->tensors[i].name,
                           info->block == RN_BLOCK_BOTTLENECK ? "bottleneck" : "basic-block",
                           info->n_stages);
    return RN_OK;
}

/* Allocate the arena and fill it: conv weights with batch norm folded in. */
static int fill(struct loader *L)
{
    rn_model *m = L->m;
    float eps = m->info.bn_eps;
    m->arena = rn_alloc(L->n_floats * sizeof(float) + 64 * (size_t)(L->n_srcs + 4));
    float *bn = malloc(4 * (size_t)L->max_c * sizeof(float));
    int rc = RN_OK;
    if (!m->arena || !bn) {
        rc = rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory for %zu weights", L->n_floats);
        goto out;
    }
    float *p = m->arena;
    for (int i = 0; i < L->n_srcs; i++) {
        struct conv_src *s = &L->srcs[i];
        rn_conv *c = s->dst;
        c->w = p;
        p += s->w->numel;
        c->b = p;
        p += c->out_c;
        if ((rc = st_read_f32(s->w, c->w, L->err, L->errlen)) < 0)
            goto out;
        for (int j = 0; j < 4; j++)
            if ((rc = st_read_f32(s->bn[j], bn + j * c->out_c, L->err, L->errlen)) < 0)
                goto out;
        size_t per = (size_t)(s->w->numel / c->out_c);
        for (int o = 0; o < c->out_c; o++) {
            float g = bn[o], beta = bn[c->out_c + o], mean = bn[2 * c->out_c + o];
            float var = bn[3 * c->out_c + o];
            if (var < 0) {
                char bname[160];
                snprintf(bname, sizeof bname, "%s", s->bn[3]->name);
                rc = rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                             "%s: element %d is negative (%g)", bname, o, var);
                goto out;
            }
            double scale = (double)g / sqrt((double)var + (double)eps);
            for (size_t j = 0; j < per; j++)
                c->w[o * per + j] = (float)(c->w[o * per + j] * scale);
            c->b[o] = (float)(beta - mean * scale);
        }
    }
    for (int k = 0; k < m->n_blocks; k++) {
        rn_block *b = &m->blocks[k];
        const rn_conv *last = rn_block_last(b);
        b->out_bias = p;
        p += last->out_c;
        for (int o = 0; o < last->out_c; o++)
            b->out_bias[o] = last->b[o] + (rn_block_has_ds(b) ? b->ds.b[o] : 0.0f);
    }
    const st_tensor *fw = st_find(L->f, "fc.weight"), *fb = st_find(L->f, "fc.bias");
    int nc = m->info.n_classes, e = m->info.embed_dim;
    m->fc_b = p;
    p += nc;
    m->fc_wt = p;
    if ((rc = st_read_f32(fb, m->fc_b, L->err, L->errlen)) < 0)
        goto out;
    float *tmp = malloc((size_t)fw->numel * sizeof(float));
    if (!tmp) {
        rc = rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = st_read_f32(fw, tmp, L->err, L->errlen)) == RN_OK)
        for (int o = 0; o < nc; o++)
            for (int j = 0; j < e; j++)
                m->fc_wt[(size_t)j * nc + o] = tmp[(size_t)o * e + j];
    free(tmp);
out:
    free(bn);
    return rc;
}

/* ---- metadata ---- */

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
    return RN_OK;
}

/* Labels are checked after the architecture, against the number of classes. */
static int read_labels(struct loader *L)
{
    const char *v = st_meta(L->f, "resnet.labels");
    if (!v)
        return RN_OK;
    int n = L->m->info.n_classes, rc = RN_OK;
    cJSON *a = cJSON_Parse(v);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) {
        rc = rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                     "metadata resnet.labels: expected a JSON array of %d strings (one per class)",
                     n);
        goto out;
    }
    L->m->labels = calloc((size_t)n, sizeof(char *));
    if (!L->m->labels) {
        rc = rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(s)) {
            rc = rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                         "metadata resnet.labels[%d]: not a string", i);
            goto out;
        }
        if (!(L->m->labels[i] = strdup(s->valuestring))) {
            rc = rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    cJSON_Delete(a);
    return rc;
}

/* ---- summary ---- */

static void summarise(rn_model *m)
{
    rn_model_info *in = &m->info;
    double macs = 0;
    int h = 224;
    const rn_conv *c = &m->stem;
    h = rn_out_dim(h, c->kh, c->stride, c->pad);
    macs += (double)c->out_c * c->in_c / c->groups * c->kh * c->kw * h * h;
    h = rn_out_dim(h, 3, 2, 1);
    int64_t np = 0;
    for (int k = 0; k < m->n_blocks; k++) {
        const rn_block *b = &m->blocks[k];
        const rn_conv *cs[4] = {&b->c1, &b->c2, b->kind == RN_BLOCK_BOTTLENECK ? &b->c3 : NULL,
                                rn_block_has_ds(b) ? &b->ds : NULL};
        int hin = h;
        for (int j = 0; j < 4; j++) {
            if (!cs[j])
                continue;
            int hi = j == 3 ? hin : h;
            int ho = rn_out_dim(hi, cs[j]->kh, cs[j]->stride, cs[j]->pad);
            macs += (double)cs[j]->out_c * cs[j]->in_c / cs[j]->groups * cs[j]->kh * cs[j]->kw * ho * ho;
            np += (int64_t)cs[j]->out_c * cs[j]->in_c / cs[j]->groups * cs[j]->kh * cs[j]->kw + 4 * cs[j]->out_c;
            if (j < 3)
                h = ho;
        }
    }
    np += (int64_t)c->out_c * c->in_c * c->kh * c->kw + 4 * c->out_c;
    np += (int64_t)in->n_classes * (in->embed_dim + 1);
    macs += (double)in->n_classes * in->embed_dim;
    in->n_params = np;
    in->gflops = 2 * macs / 1e9;

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
    if (!regular)
        snprintf(in->arch, sizeof in->arch, "resnet");
    else if (in->block == RN_BLOCK_BASIC && w == 64)
        snprintf(in->arch, sizeof in->arch, "resnet%d", depth);
    else if (in->groups > 1)
        snprintf(in->arch, sizeof in->arch, "resnext%d_%dx%dd", depth, in->groups, w / in->groups);
    else if (w == 64)
        snprintf(in->arch, sizeof in->arch, "resnet%d", depth);
    else if (w % 64 == 0)
        snprintf(in->arch, sizeof in->arch, "wide_resnet%d_%d", depth, w / 64);
    else
        snprintf(in->arch, sizeof in->arch, "resnet");
}

static int load(st_file *f, const rn_model_params *params, rn_model **out, char *err,
                size_t errlen)
{
    rn_model *m = calloc(1, sizeof *m);
    if (!m)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    struct loader L = {.f = f, .m = m, .err = err, .errlen = errlen};
    int rc;
    if (params && params->precision != RN_PRECISION_FP32 && params->precision != RN_PRECISION_BF16) {
        rc = rn_errf(err, errlen, RN_ERR_INVALID_ARG, "unknown precision %d", params->precision);
        goto out_free_model;
    }
    int isa; /* refused before anything is read when the CPU cannot run it */
    if ((rc = rn_isa_choose(params ? params->isa : RN_ISA_AUTO, &isa, err, errlen)) < 0)
        goto out_free_model;
    if ((rc = read_meta(&L)) < 0 || (rc = describe(&L)) < 0 || (rc = read_labels(&L)) < 0 ||
        (rc = fill(&L)) < 0)
        goto out_free_model;
    st_drop_pages(f); /* read once: the file's pages need not stay beside the packing */
    if ((rc = rn_model_pack(m, params ? params->precision : RN_PRECISION_FP32,
                            isa, err, errlen)) < 0)
        goto out_free_model;
    summarise(m);
    free(L.srcs);
    *out = m;
    return RN_OK;

out_free_model:
    free(L.srcs);
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
    if ((rc = st_open(path, &f, err, errlen)) < 0)
        return rc;
    rc = load(&f, params, out, err, errlen);
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
    if ((rc = st_parse(data, size, &f, err, errlen)) < 0)
        return rc;
    rc = load(&f, params, out, err, errlen);
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
    rn_model_unpack(m);
    free(m->blocks);
    rn_free(m->arena);
    free(m);
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
