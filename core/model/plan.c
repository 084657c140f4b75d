/* The plan: appending ops, convolutions, batch norms and layer names while a
 * builder reads a model, walking it for buffer sizes, and the layer names
 * the library offers as outputs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels.h"
#include "model.h"

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

int rn_plan_block(rn_model *m, int first, int in, const char *name)
{
    int add = m->n_ops - 1;
    if (first < 0 || first > add || m->ops[add].kind != RN_OP_CONV || !m->ops[add].accumulate)
        return RN_ERR_INTERNAL;
    int out = m->ops[add].out, proj = -1;
    for (int i = first; i < add; i++)
        if (rn_op_writes_buffer(&m->ops[i]) && m->ops[i].out == out)
            proj = i;
    if (proj < 0 ? out != in : m->ops[proj].kind != RN_OP_CONV)
        return RN_ERR_INTERNAL;
    if (grow((void **)&m->blocks, m->n_blocks, &m->cap_blocks, sizeof *m->blocks) < 0)
        return RN_ERR_NOMEM;
    rn_block *b = &m->blocks[m->n_blocks];
    snprintf(b->name, sizeof b->name, "%s", name);
    b->first = first;
    b->add = add;
    b->proj = proj;
    b->in = in;
    return m->n_blocks++;
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

void rn_op_shape(const rn_model *m, const rn_op *op, const int in[3], int out[3])
{
    out[0] = in[0];
    out[1] = in[1];
    out[2] = in[2];
    switch (op->kind) {
    case RN_OP_CONV: {
        const rn_conv *cv = &m->convs[op->conv];
        out[0] = cv->out_c;
        out[1] = rn_out_dim(in[1], cv->kh, cv->stride, cv->pad);
        out[2] = rn_out_dim(in[2], cv->kw, cv->stride, cv->pad);
        break;
    }
    case RN_OP_MAXPOOL:
        out[1] = rn_out_dim(in[1], 3, 2, 1);
        out[2] = rn_out_dim(in[2], 3, 2, 1);
        break;
    case RN_OP_AVGPOOL:
        out[1] = rn_avgpool_dim(in[1]);
        out[2] = rn_avgpool_dim(in[2]);
        break;
    case RN_OP_GAP:
        out[1] = out[2] = 1;
        break;
    case RN_OP_FC:
        out[0] = m->info.n_classes;
        out[1] = out[2] = 1;
        break;
    default: /* BN_RELU, NORM_INPUT, TO_BF16 keep the shape */
        break;
    }
}

double rn_op_flops(const rn_model *m, const rn_op *op, const int out[3])
{
    if (op->kind == RN_OP_FC)
        return 2.0 * m->info.n_classes * m->info.embed_dim;
    if (op->kind != RN_OP_CONV)
        return 0;
    const rn_conv *c = &m->convs[op->conv];
    return 2.0 * c->out_c * c->in_c / c->groups * c->kh * c->kw * out[1] * out[2];
}

int rn_op_writes_buffer(const rn_op *op)
{
    return op->out >= 0 && op->kind != RN_OP_GAP && op->kind != RN_OP_FC &&
           op->kind != RN_OP_TO_BF16;
}

/* Walk the plan on an h x w input up to op `last`: each buffer's shape as it
 * goes (bufs, 3 ints each), and what rn_plan_sizes reports. Returns the shape
 * of op last's output in out. */
static void walk(const rn_model *m, const rn_kernels *k, int h, int w, int last,
                 size_t sizes[RN_BUF_COUNT], size_t *col, int *shapes, int out[3])
{
    int bufs[RN_BUF_COUNT][3] = {{0}}, input[3] = {3, h, w};
    int int8 = m->info.precision == RN_PRECISION_INT8;
    memset(sizes, 0, RN_BUF_COUNT * sizeof *sizes);
    *col = 0;
    for (int i = 0; i <= last; i++) {
        const rn_op *op = &m->ops[i];
        const int *in = op->in >= 0 ? bufs[op->in] : input;
        rn_op_shape(m, op, in, out);
        if (int8) {
            /* bytes, in floats: bordered u8/s8 tensors, the stem's image in
             * RN_BUF_Q, a float NCHW image after an input batch norm */
            const rn_conv *cv = op->kind == RN_OP_CONV ? &m->convs[op->conv] : NULL;
            if (cv && cv->q_stem)
                sizes[RN_BUF_Q] = RN_MAX(sizes[RN_BUF_Q], (rn_qimage_bytes(1, in[1], in[2], cv->pad) + 3) / 4);
            if (cv)
                *col = RN_MAX(*col, (rn_qconv_scratch_bytes(cv, in[1], in[2]) + 3) / 4);
            if (shapes)
                memcpy(shapes + 3 * i, out, 3 * sizeof(int));
            if (rn_op_writes_buffer(op)) {
                memcpy(bufs[op->out], out, sizeof bufs[op->out]);
                size_t f = op->kind == RN_OP_NORM_INPUT ? (size_t)out[0] * out[1] * out[2]
                                                        : (rn_qbytes(1, out[0], out[1], out[2]) + 3) / 4;
                sizes[op->out] = RN_MAX(sizes[op->out], f);
            }
            continue;
        }
        if (op->kind == RN_OP_CONV) {
            const rn_conv *cv = &m->convs[op->conv];
            size_t s = k ? (cv->wu || cv->wub ? rn_conv_wino_floats(k, cv) : 0)
                         : rn_conv_col_floats(cv, in[1], in[2]);
            *col = RN_MAX(*col, s);
        }
        if (shapes)
            memcpy(shapes + 3 * i, out, 3 * sizeof(int));
        if (rn_op_writes_buffer(op)) {
            memcpy(bufs[op->out], out, sizeof bufs[op->out]);
            sizes[op->out] = RN_MAX(sizes[op->out], (size_t)rn_cblocks(out[0]) * 16 * out[1] * out[2]);
        }
    }
}

void rn_plan_sizes(const rn_model *m, const rn_kernels *k, int h, int w,
                   size_t sizes[RN_BUF_COUNT], size_t *col, int *shapes)
{
    int out[3];
    walk(m, k, h, w, m->n_ops - 1, sizes, col, shapes, out);
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
    size_t sizes[RN_BUF_COUNT], col;
    walk(m, NULL, h, w, m->layers[layer].after, sizes, &col, NULL, shape);
    return RN_OK;
}
