/* The plan builder for torchvision's and timm's ResNet names: v1 / v1.5
 * basic and bottleneck blocks, ResNeXt groups, timm's ResNet-C/D deep stem
 * and average-pool shortcuts (He et al. 2015; Bag of Tricks, 2019). The
 * architecture is read from the tensors: blocks per stage by counting,
 * widths from shapes, groups from conv2's shape, classes from fc. */
#include <stdio.h>

#include "loader.h"

/* Which context buffers hold the block input and the spare for a projection;
 * they swap after a block with one. */
struct bufs {
    int x, d;
};

/* The bf16 twin of buffer b for the convolutions that read it next (BF16
 * models; a no-op otherwise). */
static int to_bf16(struct loader *L, int b)
{
    return ld_op(L, (rn_op){.kind = RN_OP_TO_BF16, .in = b, .out = b});
}

static int describe_block(struct loader *L, int s, int i, int stride, int in_c, struct bufs *B,
                          int *out_c)
{
    rn_model *m = L->m;
    char p[64], wn[200], bn[200];
    snprintf(p, sizeof p, "layer%d.%d", s + 1, i);
    int v1 = m->info.variant == RN_VARIANT_V1, rc;
    int bottleneck = m->info.block == RN_BLOCK_BOTTLENECK;
    int c1, c2, c3 = -1, ds = -1;
#define CONV(idx, n, in, out, k, g, st)                                                     \
    (snprintf(wn, sizeof wn, "%s.conv%d.weight", p, n), snprintf(bn, sizeof bn, "%s.bn%d", p, n), \
     ld_conv(L, wn, bn, in, out, k, g, st, &idx))
    if (bottleneck) {
        if ((rc = CONV(c1, 1, in_c, -1, 1, 1, v1 ? stride : 1)) < 0 ||
            (rc = CONV(c2, 2, m->convs[c1].out_c, m->convs[c1].out_c, 3, -1, v1 ? 1 : stride)) < 0 ||
            (rc = CONV(c3, 3, m->convs[c2].out_c, -1, 1, 1, 1)) < 0)
            return rc;
    } else {
        if ((rc = CONV(c1, 1, in_c, -1, 3, 1, stride)) < 0 ||
            (rc = CONV(c2, 2, m->convs[c1].out_c, m->convs[c1].out_c, 3, 1, 1)) < 0)
            return rc;
    }
#undef CONV
    int last = bottleneck ? c3 : c2;
    *out_c = m->convs[last].out_c;

    /* the shortcut: a projection (downsample.0 conv, .1 bn), timm's
     * average-pool projection (downsample.0 pool, .1 conv, .2 bn), or none */
    snprintf(wn, sizeof wn, "%s.downsample.1.weight", p);
    const st_tensor *t1 = st_find(L->f, wn);
    int avg = t1 && t1->ndim == 4;
    snprintf(wn, sizeof wn, "%s.downsample.0.weight", p);
    snprintf(bn, sizeof bn, "%s.downsample.1", p);
    if (avg) {
        avg = 1;
        snprintf(wn, sizeof wn, "%s.downsample.1.weight", p);
        snprintf(bn, sizeof bn, "%s.downsample.2", p);
    }
    if (st_find(L->f, wn)) {
        if ((rc = ld_conv(L, wn, bn, in_c, *out_c, 1, 1, avg ? 1 : stride, &ds)) < 0)
            return rc;
    } else if (stride != 1 || in_c != *out_c) {
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                       "%s: missing (the block maps %d channels at stride %d to %d channels, "
                       "which needs a projection shortcut)", wn, in_c, stride, *out_c);
    }

    if ((rc = to_bf16(L, B->x)) < 0)
        return rc;
    int out = B->x;
    if (ds >= 0) {
        int src = B->x;
        if (avg)
            m->info.avg_down = 1;
        if (avg && stride > 1) {
            if ((rc = ld_op(L, (rn_op){.kind = RN_OP_AVGPOOL, .in = B->x, .out = RN_BUF_T2})) < 0 ||
                (rc = to_bf16(L, RN_BUF_T2)) < 0)
                return rc;
            src = RN_BUF_T2;
        }
        if ((rc = ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = ds, .in = src, .out = B->d,
                                   .bias = 1})) < 0)
            return rc;
        out = B->d;
    }
    if ((rc = ld_residual(L, B->x, c1, bottleneck ? c2 : -1, last, out, 1)) < 0)
        return rc;
    if (ds >= 0) {
        B->d = B->x;
        B->x = out;
    }
    return RN_OK;
}

/* torchvision's conv1 + bn1, or timm's deep stem conv1.{0,3,6} with
 * batch norms conv1.{1,4} and bn1 (ResNet-C/D/T): ops from the input to T1. */
static int describe_stem(struct loader *L, int *out_c)
{
    rn_model *m = L->m;
    int rc, c, in0;
    if ((rc = ld_input_norm(L, &in0)) < 0)
        return rc;
    if (st_find(L->f, "conv1.weight")) {
        if ((rc = ld_conv(L, "conv1.weight", "bn1", 3, -1, -1, 1, 2, &c)) < 0 ||
            (rc = ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = c, .in = in0,
                                   .out = RN_BUF_T1, .bias = 1, .relu = 1})) < 0)
            return rc;
        *out_c = m->convs[c].out_c;
        return RN_OK;
    }
    if (!st_find(L->f, "conv1.0.weight"))
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                       "conv1.weight: missing; not a torchvision/timm ResNet");
    static const char *const w[3] = {"conv1.0.weight", "conv1.3.weight", "conv1.6.weight"};
    static const char *const b[3] = {"conv1.1", "conv1.4", "bn1"};
    int in_c = 3, buf[3] = {RN_BUF_T1, RN_BUF_T2, RN_BUF_T1};
    for (int i = 0; i < 3; i++) {
        if ((rc = ld_conv(L, w[i], b[i], in_c, -1, 3, 1, i == 0 ? 2 : 1, &c)) < 0 ||
            (rc = ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = c,
                                   .in = i ? buf[i - 1] : in0, .out = buf[i], .bias = 1,
                                   .relu = 1, .write_b = i < 2})) < 0)
            return rc;
        in_c = m->convs[c].out_c;
    }
    m->info.stem = RN_STEM_DEEP;
    *out_c = in_c;
    return RN_OK;
}

/* Read the architecture from the tensor names and shapes into the plan. */
int rn_describe_v1(struct loader *L)
{
    rn_model *m = L->m;
    rn_model_info *info = &m->info;
    int rc, in_c = 0;
    if ((rc = describe_stem(L, &in_c)) < 0)
        return rc;
    info->stem_channels = in_c;
    if ((rc = ld_op(L, (rn_op){.kind = RN_OP_MAXPOOL, .in = RN_BUF_T1, .out = RN_BUF_X})) < 0 ||
        (rc = ld_layer(L, RN_LAYER_BUF, RN_BUF_X, "maxpool")) < 0)
        return rc;

    while (info->n_stages < RN_MAX_STAGES && ld_has(L, "layer%d.0.conv1.weight", info->n_stages + 1))
        info->n_stages++;
    if (info->n_stages == 0)
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "layer1.0.conv1.weight: missing; not a ResNet");
    info->block = ld_has(L, "layer1.0.conv3.weight") ? RN_BLOCK_BOTTLENECK : RN_BLOCK_BASIC;
    info->groups = 1;
    struct bufs B = {RN_BUF_X, RN_BUF_D};
    for (int s = 0; s < info->n_stages; s++) {
        while (info->blocks[s] < 4096 && ld_has(L, "layer%d.%d.conv1.weight", s + 1, info->blocks[s]))
            info->blocks[s]++;
        for (int i = 0; i < info->blocks[s]; i++) {
            int first = m->n_convs, first_op = m->n_ops, in_buf = B.x, out_c;
            if ((rc = describe_block(L, s, i, i == 0 && s > 0 ? 2 : 1, in_c, &B, &out_c)) < 0)
                return rc;
            char name[48];
            snprintf(name, sizeof name, "layer%d.%d", s + 1, i);
            if ((rc = ld_block(L, first_op, in_buf, name)) < 0)
                return rc;
            if (i == 0) {
                info->widths[s] = m->convs[first + 1].out_c;
                info->out_channels[s] = out_c;
                if (s == 0 && info->block == RN_BLOCK_BOTTLENECK)
                    info->groups = m->convs[first + 1].groups;
            }
            in_c = out_c;
        }
        char name[48];
        snprintf(name, sizeof name, "layer%d", s + 1);
        if ((rc = ld_layer(L, RN_LAYER_BUF, B.x, name)) < 0)
            return rc;
    }
    for (int k = 0; k < m->n_convs; k++)
        if (m->convs[k].groups > 1 && info->groups == 1)
            info->groups = m->convs[k].groups;
    if ((rc = ld_classifier(L, "fc.weight", "fc.bias", in_c)) < 0 ||
        (rc = ld_op(L, (rn_op){.kind = RN_OP_GAP, .in = B.x})) < 0 ||
        (rc = ld_layer(L, RN_LAYER_EMBED, -1, "avgpool")) < 0 ||
        (rc = ld_op(L, (rn_op){.kind = RN_OP_FC, .in = -1})) < 0 ||
        (rc = ld_layer(L, RN_LAYER_LOGITS, -1, "fc")) < 0)
        return rc;
    for (int i = 0; i < L->f->n_tensors; i++)
        if (!L->f->tensors[i].used)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                           "%s: unexpected tensor (not part of a %s ResNet with %d stages)",
                           L->f->tensors[i].name,
                           info->block == RN_BLOCK_BOTTLENECK ? "bottleneck" : "basic-block",
                           info->n_stages);
    return RN_OK;
}

