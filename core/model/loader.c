/* Reading a weights file's tensors for the plan builders (core/model/loader.h):
 * every tensor's dtype and shape checked where a builder takes it, batch
 * norms folded into the convolution before them or kept as scale and shift,
 * and the arena filled once every shape is known. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

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

/* ld_take for a tensor of dtype `dtype`, or any float one for -1. */
static int take(struct loader *L, const char *name, int ndim, int dtype, const st_tensor **out)
{
    st_tensor *t = st_find(L->f, name);
    if (!t)
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: missing", name);
    if (dtype < 0 ? !is_float(t) : t->dtype != dtype)
        return rn_errf(L->err, L->errlen, RN_ERR_FORMAT, "%s: dtype %s, expected %s", name,
                       st_dtype_name(t->dtype), dtype < 0 ? "F32, F16 or BF16" : st_dtype_name(dtype));
    if (t->ndim != ndim) {
        char s[96];
        fmt_shape(t, s, sizeof s);
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: shape %s, expected %d dimensions",
                       name, s, ndim);
    }
    if (!t->used)
        L->m->info.n_params += t->numel;
    t->used = 1;
    *out = t;
    return RN_OK;
}

int ld_take(struct loader *L, const char *name, int ndim, const st_tensor **out)
{
    return take(L, name, ndim, -1, out);
}

/* An INT8 file's scale: an F32 scalar (shape [] or [1]), finite and > 0. */
static int take_scale(struct loader *L, const char *name, const st_tensor **out)
{
    st_tensor *t = st_find(L->f, name);
    int rc = take(L, name, t && t->ndim == 0 ? 0 : 1, ST_F32, out);
    if (rc < 0)
        return rc;
    float v;
    if ((*out)->numel != 1)
        return rn_errf(L->err, L->errlen, RN_ERR_FORMAT, "%s: %lld elements, expected one scale", name,
                       (long long)(*out)->numel);
    memcpy(&v, (*out)->data, sizeof v);
    if (!(isfinite(v) && v > 0))
        return rn_errf(L->err, L->errlen, RN_ERR_FORMAT, "%s: scale %g, expected a finite number > 0",
                       name, v);
    return RN_OK;
}

static float scale_of(const st_tensor *t)
{
    float v;
    memcpy(&v, t->data, sizeof v);
    return v;
}

/* An INT8 file's optional zero point: a scalar of dtype `dtype` (U8 or I8)
 * into *zp; absent, *zp is left alone. */
static int take_zero_point(struct loader *L, const char *name, int dtype, int *zp)
{
    st_tensor *t = st_find(L->f, name);
    const st_tensor *z;
    if (!t)
        return RN_OK;
    int rc = take(L, name, t->ndim == 0 ? 0 : 1, dtype, &z);
    if (rc < 0)
        return rc;
    if (z->numel != 1)
        return rn_errf(L->err, L->errlen, RN_ERR_FORMAT, "%s: %lld elements, expected one zero point",
                       name, (long long)z->numel);
    *zp = dtype == ST_U8 ? *(const uint8_t *)z->data : *(const int8_t *)z->data;
    return RN_OK;
}

int ld_input_scale(struct loader *L)
{
    const st_tensor *t;
    int rc = take_scale(L, "input_scale", &t);
    if (rc == RN_OK)
        L->m->q_input_scale = scale_of(t);
    L->m->q_input_zp = 128;
    if (rc == RN_OK)
        rc = take_zero_point(L, "input_zero_point", ST_U8, &L->m->q_input_zp);
    return rc;
}

/* NAME.SUFFIX for a weight named NAME.weight. */
static int sibling(const char *wname, const char *suffix, char *out, size_t len)
{
    size_t wl = strlen(wname);
    if (wl <= 7 || strcmp(wname + wl - 7, ".weight"))
        return -1;
    return snprintf(out, len, "%.*s.%s", (int)(wl - 7), wname, suffix) < (int)len ? 0 : -1;
}

/* An INT8 convolution's I32 bias, per-channel weight scales and output scale. */
static int take_qconv(struct loader *L, const char *wname, int64_t o, struct conv_src *src)
{
    char name[200];
    int rc;
    const char *what[2] = {"bias", "weight_scale"};
    const st_tensor **dst[2] = {&src->b, &src->qs};
    for (int i = 0; i < 2; i++) {
        if (sibling(wname, what[i], name, sizeof name) < 0)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: not a NAME.weight", wname);
        if ((rc = take(L, name, 1, i ? ST_F32 : ST_I32, dst[i])) < 0)
            return rc;
        if ((*dst[i])->shape[0] != o)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: shape [%lld], expected [%lld]", name,
                           (long long)(*dst[i])->shape[0], (long long)o);
    }
    sibling(wname, "output_scale", name, sizeof name);
    if ((rc = take_scale(L, name, &src->os)) < 0)
        return rc;
    sibling(wname, "output_zero_point", name, sizeof name);
    src->oz = 0;
    return take_zero_point(L, name, ST_I8, &src->oz);
}
int ld_has(struct loader *L, const char *fmt, ...)
{
    char name[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return st_find(L->f, name) != NULL;
}

/* The four tensors of batch norm `prefix` over c channels. */
static int take_bn(struct loader *L, const char *prefix, int c, const st_tensor *t[4])
{
    char name[200];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, bn_fields[i]);
        int rc = ld_take(L, name, 1, &t[i]);
        if (rc < 0)
            return rc;
        if (t[i]->shape[0] != c)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: shape [%lld], expected [%d]", name,
                           (long long)t[i]->shape[0], c);
    }
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    st_tensor *nb = st_find(L->f, name);
    if (nb) {
        if (nb->numel > 1)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: %lld elements, expected one",
                           name, (long long)nb->numel);
        nb->used = 1;
    }
    if (c > L->max_c)
        L->max_c = c;
    return RN_OK;
}

static int nomem(struct loader *L)
{
    return rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");
}

int ld_conv(struct loader *L, const char *wname, const char *bnname, int in_c, int out_c, int k,
            int groups, int stride, int *idx)
{
    const st_tensor *w;
    int rc = take(L, wname, 4, L->quant ? ST_I8 : -1, &w);
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
    int c = rn_plan_conv(L->m);
    if (c < 0)
        return nomem(L);
    L->m->convs[c] = (rn_conv){.in_c = in_c, .out_c = (int)o, .kh = (int)kh, .kw = (int)kw,
                               .stride = stride, .pad = (int)kh / 2, .groups = groups};
    if (L->n_srcs == L->cap_srcs) {
        int cap = L->cap_srcs ? 2 * L->cap_srcs : 64;
        struct conv_src *ns = realloc(L->srcs, (size_t)cap * sizeof *ns);
        if (!ns)
            return nomem(L);
        L->srcs = ns;
        L->cap_srcs = cap;
    }
    struct conv_src *src = &L->srcs[L->n_srcs];
    memset(src, 0, sizeof *src);
    src->conv = c;
    src->w = w;
    if (L->quant) {
        if ((rc = take_qconv(L, wname, o, src)) < 0)
            return rc;
        L->n_srcs++;
        L->n_floats += (size_t)(w->numel + 3) / 4 + 2 * (size_t)o + 48;
        *idx = c;
        return RN_OK;
    }
    size_t wl = strlen(wname);
    char bname[200];
    if (wl > 7 && !strcmp(wname + wl - 7, ".weight") && wl < sizeof bname) {
        snprintf(bname, sizeof bname, "%.*s.bias", (int)(wl - 7), wname);
        if (st_find(L->f, bname)) {
            if ((rc = ld_take(L, bname, 1, &src->b)) < 0)
                return rc;
            if (src->b->shape[0] != o)
                return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s: shape [%lld], expected [%lld]",
                               bname, (long long)src->b->shape[0], (long long)o);
        }
    }
    if (bnname && !(src->b && !ld_has(L, "%s.weight", bnname)) &&
        (rc = take_bn(L, bnname, (int)o, src->bn)) < 0)
        return rc;
    L->n_srcs++;
    L->n_floats += (size_t)w->numel + (size_t)o + 16;
    *idx = c;
    return RN_OK;
}

/* ld_norm; scaled: in an INT8 file, it writes a u8 tensor of its own scale
 * (every batch norm but the one on the float image). */
static int norm(struct loader *L, const char *prefix, int c, int scaled, int *idx)
{
    int b = rn_plan_bn(L->m);
    if (b < 0)
        return nomem(L);
    if (L->n_bsrcs == L->cap_bsrcs) {
        int cap = L->cap_bsrcs ? 2 * L->cap_bsrcs : 64;
        struct bn_src *ns = realloc(L->bsrcs, (size_t)cap * sizeof *ns);
        if (!ns)
            return nomem(L);
        L->bsrcs = ns;
        L->cap_bsrcs = cap;
    }
    struct bn_src *src = &L->bsrcs[L->n_bsrcs];
    src->bn = b;
    int rc = take_bn(L, prefix, c, src->t);
    if (rc < 0)
        return rc;
    src->os = NULL;
    char name[200];
    snprintf(name, sizeof name, "%s.output_scale", prefix);
    if (L->quant && scaled && (rc = take_scale(L, name, &src->os)) < 0)
        return rc;
    L->m->bns[b].c = c;
    L->n_bsrcs++;
    L->n_floats += 2 * (size_t)c + 32;
    *idx = b;
    return RN_OK;
}

int ld_norm(struct loader *L, const char *prefix, int c, int *idx)
{
    return norm(L, prefix, c, 1, idx);
}

int ld_op(struct loader *L, rn_op op)
{
    return rn_plan_op(L->m, &op) < 0 ? nomem(L) : RN_OK;
}

int ld_layer(struct loader *L, int kind, int buf, const char *name)
{
    return rn_plan_layer(L->m, kind, buf, "%s", name) < 0 ? nomem(L) : RN_OK;
}

int ld_input_norm(struct loader *L, int *in)
{
    *in = RN_BUF_INPUT;
    if (!ld_has(L, "input_norm.weight"))
        return RN_OK;
    int b, rc;
    if ((rc = norm(L, "input_norm", 3, 0, &b)) < 0 ||
        (rc = ld_op(L, (rn_op){.kind = RN_OP_NORM_INPUT, .bn = b, .in = RN_BUF_INPUT,
                               .out = RN_BUF_D})) < 0)
        return rc;
    *in = RN_BUF_D;
    return RN_OK;
}

int ld_block(struct loader *L, int first, int in, const char *name)
{
    int rc = rn_plan_block(L->m, first, in, name);
    if (rc == RN_ERR_INTERNAL)
        return rn_errf(L->err, L->errlen, rc, "%s: not a residual block in the plan", name);
    if (rc < 0)
        return nomem(L);
    return ld_layer(L, RN_LAYER_BUF, L->m->ops[L->m->n_ops - 1].out, name);
}

int ld_residual(struct loader *L, int in, int c1, int c2, int last, int out, int relu)
{
    int rc, prev = RN_BUF_T1;
    if ((rc = ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = c1, .in = in, .out = RN_BUF_T1,
                               .bias = 1, .relu = 1, .write_b = 1})) < 0)
        return rc;
    if (c2 >= 0) {
        if ((rc = ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = c2, .in = RN_BUF_T1, .out = RN_BUF_T2,
                                   .bias = 1, .relu = 1, .write_b = 1})) < 0)
            return rc;
        prev = RN_BUF_T2;
    }
    return ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = last, .in = prev, .out = out, .bias = 1,
                            .relu = relu, .accumulate = 1});
}

int ld_classifier(struct loader *L, const char *wname, const char *bname, int e)
{
    st_tensor *t = st_find(L->f, wname);
    const st_tensor *fw, *fb;
    int rc;
    if ((rc = ld_take(L, wname, t && t->ndim == 4 ? 4 : 2, &fw)) < 0 ||
        (rc = ld_take(L, bname, 1, &fb)) < 0)
        return rc;
    int conv1x1 = fw->ndim == 4;
    if (fw->shape[1] != e || fw->shape[0] < 1 || fw->shape[0] > 1000000 ||
        fb->shape[0] != fw->shape[0] || (conv1x1 && (fw->shape[2] != 1 || fw->shape[3] != 1))) {
        char s1[96], s2[96];
        fmt_shape(fw, s1, sizeof s1);
        fmt_shape(fb, s2, sizeof s2);
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "%s %s / %s %s: expected [classes,%d%s] and [classes]",
                       wname, s1, bname, s2, e, conv1x1 ? ",1,1" : "");
    }
    L->m->info.n_classes = (int)fw->shape[0];
    L->m->info.embed_dim = e;
    L->fc_w = wname;
    L->fc_b = bname;
    L->n_floats += rn_fc_floats((int)fw->shape[0], e) + (size_t)fb->numel + 32;
    return RN_OK;
}


/* An INT8 convolution's tensors, each value checked: weights -127..127
 * (symmetric, docs/int8.md), scales finite and > 0, biases within +-2^30
 * (so that no int32 sum can overflow). */
static int fill_qconv(struct loader *L, const struct conv_src *s, int8_t *qw, float *qs, int32_t *qb)
{
    int o = (int)s->qs->numel, rc;
    memcpy(qw, s->w->data, (size_t)s->w->numel);
    for (int64_t i = 0; i < s->w->numel; i++)
        if (qw[i] == -128)
            return rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                           "%s: element %lld is -128; INT8 weights are symmetric, -127..127",
                           s->w->name, (long long)i);
    if ((rc = st_read_f32(s->qs, qs, L->err, L->errlen)) < 0)
        return rc;
    for (int i = 0; i < o; i++)
        if (!(isfinite(qs[i]) && qs[i] > 0))
            return rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                           "%s: element %d is %g, expected a finite scale > 0", s->qs->name, i, qs[i]);
    memcpy(qb, s->b->data, (size_t)o * sizeof(int32_t));
    for (int i = 0; i < o; i++)
        if (qb[i] < -(1 << 30) || qb[i] > (1 << 30))
            return rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                           "%s: element %d is %d, beyond +-2^30", s->b->name, i, (int)qb[i]);
    return RN_OK;
}

/* NAME of NAME.weight, malloc'd; NULL when out of memory. */
static char *module_name(const char *tensor)
{
    size_t n = strlen(tensor);
    if (n > 7 && !strcmp(tensor + n - 7, ".weight"))
        n -= 7;
    return strndup(tensor, n);
}

/* The module names of the convolutions, batch norms and the classifier. */
static int keep_names(struct loader *L)
{
    rn_model *m = L->m;
    m->conv_names = calloc((size_t)m->n_convs + 1, sizeof *m->conv_names);
    m->bn_names = calloc((size_t)m->n_bns + 1, sizeof *m->bn_names);
    if (!m->conv_names || !m->bn_names)
        return nomem(L);
    for (int i = 0; i < L->n_srcs; i++)
        if (!(m->conv_names[L->srcs[i].conv] = module_name(L->srcs[i].w->name)))
            return nomem(L);
    for (int i = 0; i < L->n_bsrcs; i++)
        if (!(m->bn_names[L->bsrcs[i].bn] = module_name(L->bsrcs[i].t[0]->name)))
            return nomem(L);
    if (!(m->fc_names[0] = strdup(L->fc_w)) || !(m->fc_names[1] = strdup(L->fc_b)))
        return nomem(L);
    return RN_OK;
}

/* Allocate the arena and fill it: conv weights with batch norm folded in,
 * unfoldable batch norms as scale and shift, the classifier. */
int ld_fill(struct loader *L)
{
    rn_model *m = L->m;
    int krc = keep_names(L);
    if (krc < 0)
        return krc;
    double eps = m->info.bn_eps;
    m->arena = rn_alloc(L->n_floats * sizeof(float));
    float *bn = malloc(4 * (size_t)(L->max_c + 1) * sizeof(float));
    int rc = RN_OK;
    if (!m->arena || !bn) {
        rc = rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory for %zu weights", L->n_floats);
        goto out;
    }
    float *p = m->arena;
#define TAKE(n) (p += ((size_t)(n) + 15) & ~(size_t)15, p - (((size_t)(n) + 15) & ~(size_t)15))
    for (int i = 0; i < L->n_srcs; i++) {
        struct conv_src *s = &L->srcs[i];
        rn_conv *c = &m->convs[s->conv];
        if (L->quant) {
            int8_t *qw = (int8_t *)TAKE((s->w->numel + 3) / 4);
            float *qs = TAKE(c->out_c);
            int32_t *qb = (int32_t *)TAKE(c->out_c);
            if ((rc = fill_qconv(L, s, qw, qs, qb)) < 0)
                goto out;
            c->qw = qw;
            c->qscale = qs;
            c->qbias = qb;
            c->out_scale = scale_of(s->os);
            c->out_zp = s->oz;
            continue;
        }
        c->w = TAKE(s->w->numel);
        c->b = TAKE(c->out_c);
        if ((rc = st_read_f32(s->w, c->w, L->err, L->errlen)) < 0)
            goto out;
        memset(c->b, 0, (size_t)c->out_c * sizeof(float));
        if (s->b && (rc = st_read_f32(s->b, c->b, L->err, L->errlen)) < 0)
            goto out;
        if (!s->bn[0])
            continue;
        for (int j = 0; j < 4; j++)
            if ((rc = st_read_f32(s->bn[j], bn + j * c->out_c, L->err, L->errlen)) < 0)
                goto out;
        size_t per = (size_t)(s->w->numel / c->out_c);
        for (int o = 0; o < c->out_c; o++) {
            float g = bn[o], beta = bn[c->out_c + o], mean = bn[2 * c->out_c + o];
            float var = bn[3 * c->out_c + o];
            if (!(var >= 0)) {
                rc = rn_errf(L->err, L->errlen, RN_ERR_FORMAT, "%s: element %d is negative (%g)",
                             s->bn[3]->name, o, var);
                goto out;
            }
            double scale = (double)g / sqrt((double)var + eps);
            for (size_t j = 0; j < per; j++)
                c->w[o * per + j] = (float)(c->w[o * per + j] * scale);
            c->b[o] = (float)(beta + (c->b[o] - mean) * scale);
        }
    }
    for (int i = 0; i < L->n_bsrcs; i++) {
        struct bn_src *s = &L->bsrcs[i];
        rn_bn *b = &m->bns[s->bn];
        b->scale = TAKE(b->c);
        b->shift = TAKE(b->c);
        for (int j = 0; j < 4; j++)
            if ((rc = st_read_f32(s->t[j], bn + j * b->c, L->err, L->errlen)) < 0)
                goto out;
        if (s->os)
            b->out_scale = scale_of(s->os);
        for (int o = 0; o < b->c; o++) {
            float var = bn[3 * b->c + o];
            if (!(var >= 0)) {
                rc = rn_errf(L->err, L->errlen, RN_ERR_FORMAT, "%s: element %d is negative (%g)",
                             s->t[3]->name, o, var);
                goto out;
            }
            double scale = (double)bn[o] / sqrt((double)var + eps);
            b->scale[o] = (float)scale;
            b->shift[o] = (float)(bn[b->c + o] - bn[2 * b->c + o] * scale);
        }
    }
    const st_tensor *fw = st_find(L->f, L->fc_w), *fb = st_find(L->f, L->fc_b);
    int nc = m->info.n_classes, e = m->info.embed_dim;
    m->fc_b = TAKE(nc);
    m->fc_wt = TAKE(rn_fc_floats(nc, e));
#undef TAKE
    if ((rc = st_read_f32(fb, m->fc_b, L->err, L->errlen)) < 0)
        goto out;
    float *tmp = malloc((size_t)fw->numel * sizeof(float));
    if (!tmp) {
        rc = rn_errf(L->err, L->errlen, RN_ERR_NOMEM, "out of memory");
        goto out;
    }
    memset(m->fc_wt, 0, rn_fc_floats(nc, e) * sizeof(float));
    if ((rc = st_read_f32(fw, tmp, L->err, L->errlen)) == RN_OK)
        for (int o = 0; o < nc; o++)
            for (int j = 0; j < e; j++)
                m->fc_wt[rn_fc_at(e, j, o)] = tmp[(size_t)o * e + j];
    free(tmp);
out:
    free(bn);
    return rc;
}
