/* The plan: appending ops, convolutions, batch norms and layer names while a
 * builder reads a model, walking it for buffer sizes, and the layer names
 * the library offers as outputs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "kernels.h"

/* Grow an array of elem-sized items to hold one more. */
static int grow(void **p, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return RN_OK;
    int c = *cap ? 2 * *cap : 32;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q)
        return RN_ERR_NOMEM;
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
    *p = q;
    *cap = c;
    return RN_OK;
}

int rn_plan_op(rn_model *m, const rn_op *op)
{
    if (grow((void **)&m->ops, m->n_ops, &m->cap_ops, sizeof *m->ops) < 0)
        return RN_ERR_NOMEM;
    m->ops[m->n_ops] = *op;
    return m->n_ops++;
}

int rn_plan_layer(rn_model *m, int kind, int buf, const char *fmt, ...)
{
    if (grow((void **)&m->layers, m->n_layers, &m->cap_layers, sizeof *m->layers) < 0)
        return RN_ERR_NOMEM;
    rn_layer *l = &m->layers[m->n_layers];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->name, sizeof l->name, fmt, ap);
    va_end(ap);
    l->kind = kind;
    l->buf = buf;
    l->after = m->n_ops - 1;
    return m->n_layers++;
}

int rn_plan_conv(rn_model *m)
{
    if (grow((void **)&m->convs, m->n_convs, &m->cap_convs, sizeof *m->convs) < 0)
        return RN_ERR_NOMEM;
    return m->n_convs++;
}

int rn_plan_bn(rn_model *m)
{
    if (grow((void **)&m->bns, m->n_bns, &m->cap_bns, sizeof *m->bns) < 0)
        return RN_ERR_NOMEM;
    return m->n_bns++;
}

void rn_plan_sizes(const rn_model *m, const rn_kernels *k, int h, int w,
                   size_t sizes[RN_BUF_COUNT], size_t *col, int *shapes)
{
    int bc[RN_BUF_COUNT] = {0}, bh[RN_BUF_COUNT] = {0}, bw[RN_BUF_COUNT] = {0};
    memset(sizes, 0, RN_BUF_COUNT * sizeof *sizes);
    *col = 0;
    int ec = 0; /* the embedding's channels */
    for (int i = 0; i < m->n_ops; i++) {
        const rn_op *op = &m->ops[i];
        int c = 3, ih = h, iw = w;
        if (op->in >= 0) {
            c = bc[op->in];
            ih = bh[op->in];
            iw = bw[op->in];
        }
        int oc = c, oh = ih, ow = iw;
        switch (op->kind) {
        case RN_OP_CONV: {
            const rn_conv *cv = &m->convs[op->conv];
            oc = cv->out_c;
            oh = rn_out_dim(ih, cv->kh, cv->stride, cv->pad);
            ow = rn_out_dim(iw, cv->kw, cv->stride, cv->pad);
            size_t s = k ? (cv->wu || cv->wub ? rn_conv_wino_floats(k, cv) : 0)
                         : rn_conv_col_floats(cv, ih, iw);
            *col = RN_MAX(*col, s);
            break;
        }
        case RN_OP_MAXPOOL:
            oh = rn_out_dim(ih, 3, 2, 1);
            ow = rn_out_dim(iw, 3, 2, 1);
            break;
        case RN_OP_AVGPOOL:
            oh = rn_avgpool_dim(ih);
            ow = rn_avgpool_dim(iw);
            break;
        case RN_OP_GAP:
            ec = c;
            oh = ow = 1;
            break;
        case RN_OP_FC:
            oc = m->info.n_classes;
            oh = ow = 1;
            (void)ec;
            break;
        default:
            break;
        }
        if (shapes) {
            shapes[3 * i] = oc;
            shapes[3 * i + 1] = oh;
            shapes[3 * i + 2] = ow;
        }
        if (op->kind != RN_OP_GAP && op->kind != RN_OP_FC && op->kind != RN_OP_TO_BF16 &&
            op->out >= 0) {
            bc[op->out] = oc;
            bh[op->out] = oh;
            bw[op->out] = ow;
            sizes[op->out] = RN_MAX(sizes[op->out], (size_t)rn_cblocks(oc) * 16 * oh * ow);
        }
    }
}

/* ---- the layers a caller may ask for (core/resnet.h) ---- */

int rn_model_layer_count(const rn_model *m)
{
    return m->n_layers;
}

const char *rn_model_layer_name(const rn_model *m, int i)
{
    return i >= 0 && i < m->n_layers ? m->layers[i].name : NULL;
}

int rn_model_layer_find(const rn_model *m, const char *name)
{
    for (int i = 0; name && i < m->n_layers; i++)
        if (!strcmp(m->layers[i].name, name))
            return i;
    return -1;
}

int rn_model_layer_shape(const rn_model *m, int layer, int h, int w, int shape[3])
{
    if (layer < 0 || layer >= m->n_layers || h < 1 || w < 1 || h > 8192 || w > 8192)
        return RN_ERR_INVALID_ARG;
    int *shapes = malloc(3 * sizeof(int) * (size_t)m->n_ops);
    if (!shapes)
        return RN_ERR_NOMEM;
    size_t sizes[RN_BUF_COUNT], col;
    rn_plan_sizes(m, NULL, h, w, sizes, &col, shapes);
    memcpy(shape, shapes + 3 * m->layers[layer].after, 3 * sizeof(int));
    free(shapes);
    return RN_OK;
}
