/* The plan builder for pre-activation ResNet v2 with timm's resnetv2 names
 * (He et al. 2016, "Identity Mappings in Deep Residual Networks"):
 *
 *   stem.conv (7x7/2) or stem.conv1+norm1, conv2+norm2, conv3 (deep), max pool
 *   stages.S.blocks.I: norm1 (batch norm + ReLU of the block input), then
 *     bottleneck: conv1 (1x1) norm2 conv2 (3x3, the stride) norm3 conv3 (1x1)
 *     basic:      conv1 (3x3, the stride) norm2 conv2 (3x3)
 *     and the sum with the shortcut: the block input itself, or
 *     downsample.conv (1x1, the stride) of the pre-activated input, after
 *     downsample.pool (2x2 average) in the avg-down variants
 *   norm (batch norm + ReLU), global average pool, head.fc (a 1x1 conv)
 *
 * The shortcut stays a pure identity: no ReLU after the sum. norm2 and norm3
 * fold into the convolution before them (with the ReLU on its output); norm1
 * and norm cannot, since the raw block input is the shortcut, and run as
 * scale-shift-ReLU ops into buffer P, which only convolutions read.
 */
#include <stdio.h>
#include <string.h>

#include "loader.h"

static int block(struct loader *L, int s, int i, int stride, int in_c, int *x, int *d, int *out_c)
{
    rn_model *m = L->m;
    char p[64], wn[200], bn[200];
    snprintf(p, sizeof p, "stages.%d.blocks.%d", s, i);
    int bottleneck = m->info.block == RN_BLOCK_BOTTLENECK, rc;
    int n1, c1, c2, c3 = -1, ds = -1;
    snprintf(bn, sizeof bn, "%s.norm1", p);
    if ((rc = ld_norm(L, bn, in_c, &n1)) < 0)
        return rc;
#define CONV(idx, n, norm, in, out, k, st)                                                 \
    (snprintf(wn, sizeof wn, "%s.conv%d.weight", p, n), snprintf(bn, sizeof bn, "%s.norm%d", p, norm), \
     ld_conv(L, wn, norm ? bn : NULL, in, out, k, 1, st, &idx))
    if (bottleneck) {
        if ((rc = CONV(c1, 1, 2, in_c, -1, 1, 1)) < 0 ||
            (rc = CONV(c2, 2, 3, m->convs[c1].out_c, -1, 3, stride)) < 0 ||
            (rc = CONV(c3, 3, 0, m->convs[c2].out_c, -1, 1, 1)) < 0)
            return rc;
    } else {
        if ((rc = CONV(c1, 1, 2, in_c, -1, 3, stride)) < 0 ||
            (rc = CONV(c2, 2, 0, m->convs[c1].out_c, -1, 3, 1)) < 0)
            return rc;
    }
#undef CONV
    int last = bottleneck ? c3 : c2;
    *out_c = m->convs[last].out_c;
    int avg = m->info.avg_down;
    snprintf(wn, sizeof wn, "%s.downsample.conv.weight", p);
    if (st_find(L->f, wn)) {
        /* timm's DownsampleAvg pools before its conv when the block strides */
        if ((rc = ld_conv(L, wn, NULL, in_c, *out_c, 1, 1, avg ? 1 : stride, &ds)) < 0)
            return rc;
    } else if (stride != 1 || in_c != *out_c) {
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                       "%s: missing (the block maps %d channels at stride %d to %d channels, "
                       "which needs a projection shortcut)", wn, in_c, stride, *out_c);
    }
    int pooled = ds >= 0 && avg && stride > 1;
    /* P is read only by convolutions (bf16 for BF16 models), except by the
     * average pool of a pooled shortcut, which reads it in FP32 */
    if ((rc = ld_op(L, (rn_op){.kind = RN_OP_BN_RELU, .bn = n1, .in = *x, .out = RN_BUF_P,
                               .write_b = !pooled})) < 0)
        return rc;
    int out = *x;
    if (ds >= 0) {
        int src = RN_BUF_P;
        if (pooled) {
            if ((rc = ld_op(L, (rn_op){.kind = RN_OP_AVGPOOL, .in = RN_BUF_P, .out = RN_BUF_T2})) < 0 ||
                (rc = ld_op(L, (rn_op){.kind = RN_OP_TO_BF16, .in = RN_BUF_T2, .out = RN_BUF_T2})) < 0 ||
                (rc = ld_op(L, (rn_op){.kind = RN_OP_TO_BF16, .in = RN_BUF_P, .out = RN_BUF_P})) < 0)
                return rc;
            src = RN_BUF_T2;
        }
        if ((rc = ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = ds, .in = src, .out = *d,
                                   .bias = 1})) < 0)
            return rc;
        out = *d;
    }
    if ((rc = ld_residual(L, RN_BUF_P, c1, bottleneck ? c2 : -1, last, out, 0)) < 0)
        return rc;
    if (ds >= 0) {
        *d = *x;
        *x = out;
    }
    return RN_OK;
}

static int stem(struct loader *L, int *out_c)
{
    rn_model *m = L->m;
    int rc, c, in0;
    if ((rc = ld_input_norm(L, &in0)) < 0)
        return rc;
    if (st_find(L->f, "stem.conv.weight")) {
        /* .bias: zero, or the convolution's own (an ONNX export's); with
         * stem.norm (MXNet's v2: pre-activation blocks after a stem that
         * normalises and activates its output), folded, and a ReLU */
        const char *relu = st_meta(L->f, "resnet.stem_relu"); /* an INT8 file: the norm is folded */
        int norm = ld_has(L, "stem.norm.weight") || (L->quant && relu && !strcmp(relu, "true"));
        if ((rc = ld_conv(L, "stem.conv.weight", norm ? "stem.norm" : NULL, 3, -1, -1, 1, 2, &c)) < 0 ||
            (rc = ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = c, .in = in0,
                                   .out = RN_BUF_T1, .bias = 1, .relu = norm})) < 0)
            return rc;
        *out_c = m->convs[c].out_c;
        return RN_OK;
    }
    static const char *const w[3] = {"stem.conv1.weight", "stem.conv2.weight", "stem.conv3.weight"};
    static const char *const b[3] = {"stem.norm1", "stem.norm2", NULL};
    int in_c = 3, buf[3] = {RN_BUF_T1, RN_BUF_T2, RN_BUF_T1};
    for (int i = 0; i < 3; i++) {
        if ((rc = ld_conv(L, w[i], b[i], in_c, -1, 3, 1, i == 0 ? 2 : 1, &c)) < 0 ||
            (rc = ld_op(L, (rn_op){.kind = RN_OP_CONV, .conv = c,
                                   .in = i ? buf[i - 1] : in0, .out = buf[i],
                                   .bias = 1, .relu = i < 2, .write_b = i < 2})) < 0)
            return rc;
        in_c = m->convs[c].out_c;
    }
    m->info.stem = RN_STEM_DEEP;
    *out_c = in_c;
    return RN_OK;
}

int rn_describe_v2(struct loader *L)
{
    rn_model *m = L->m;
    rn_model_info *info = &m->info;
    if (!st_find(L->f, "stem.conv.weight") && !st_find(L->f, "stem.conv1.weight"))
        return 0;
    if (ld_has(L, "stem.norm3.weight") || (ld_has(L, "stem.norm.weight") && !st_find(L->f, "stem.conv.weight")))
        return rn_errf(L->err, L->errlen, RN_ERR_UNSUPPORTED,
                       "stem.norm3: a resnetv2 deep stem without pre-activation is not supported");
    info->preact = 1;
    int in_c = 0, rc;
    if ((rc = stem(L, &in_c)) < 0)
        return rc;
    info->stem_channels = in_c;
    if ((rc = ld_op(L, (rn_op){.kind = RN_OP_MAXPOOL, .in = RN_BUF_T1, .out = RN_BUF_X})) < 0 ||
        (rc = ld_layer(L, RN_LAYER_BUF, RN_BUF_X, "stem")) < 0)
        return rc;
    while (info->n_stages < RN_MAX_STAGES && ld_has(L, "stages.%d.blocks.0.conv1.weight", info->n_stages))
        info->n_stages++;
    if (info->n_stages == 0)
        return rn_errf(L->err, L->errlen, RN_ERR_ARCH, "stages.0.blocks.0.conv1.weight: missing");
    info->block = ld_has(L, "stages.0.blocks.0.conv3.weight") ? RN_BLOCK_BOTTLENECK : RN_BLOCK_BASIC;
    info->groups = 1;
    /* The average pool of DownsampleAvg has no tensor, so the file cannot
     * tell it from DownsampleConv: as in every timm resnetv2 model, the deep
     * and tiered stems come with it; metadata resnet.avg_down ("true" or
     * "false") says otherwise. */
    info->avg_down = info->stem == RN_STEM_DEEP;
    const char *ad = st_meta(L->f, "resnet.avg_down");
    if (ad && strcmp(ad, "true") && strcmp(ad, "false"))
        return rn_errf(L->err, L->errlen, RN_ERR_FORMAT,
                       "metadata resnet.avg_down: \"%.32s\", expected \"true\" or \"false\"", ad);
    if (ad)
        info->avg_down = !strcmp(ad, "true");
    int x = RN_BUF_X, d = RN_BUF_D;
    for (int s = 0; s < info->n_stages; s++) {
        while (info->blocks[s] < 4096 && ld_has(L, "stages.%d.blocks.%d.conv1.weight", s, info->blocks[s]))
            info->blocks[s]++;
        for (int i = 0; i < info->blocks[s]; i++) {
            int first = m->n_convs, first_op = m->n_ops, in_buf = x, out_c;
            if ((rc = block(L, s, i, i == 0 && s > 0 ? 2 : 1, in_c, &x, &d, &out_c)) < 0)
                return rc;
            char name[48];
            snprintf(name, sizeof name, "stages.%d.blocks.%d", s, i);
            if ((rc = ld_block(L, first_op, in_buf, name)) < 0)
                return rc;
            if (i == 0) {
                info->widths[s] = m->convs[first + 1].out_c;
                info->out_channels[s] = out_c;
            }
            in_c = out_c;
        }
        char name[48];
        snprintf(name, sizeof name, "stages.%d", s);
        if ((rc = ld_layer(L, RN_LAYER_BUF, x, name)) < 0)
            return rc;
    }
    int nb;
    if ((rc = ld_norm(L, "norm", in_c, &nb)) < 0 ||
        (rc = ld_op(L, (rn_op){.kind = RN_OP_BN_RELU, .bn = nb, .in = x, .out = RN_BUF_P})) < 0 ||
        (rc = ld_layer(L, RN_LAYER_BUF, RN_BUF_P, "norm")) < 0 ||
        (rc = ld_classifier(L, "head.fc.weight", "head.fc.bias", in_c)) < 0 ||
        (rc = ld_op(L, (rn_op){.kind = RN_OP_GAP, .in = RN_BUF_P})) < 0 ||
        (rc = ld_layer(L, RN_LAYER_EMBED, -1, "head.global_pool")) < 0 ||
        (rc = ld_op(L, (rn_op){.kind = RN_OP_FC, .in = -1})) < 0 ||
        (rc = ld_layer(L, RN_LAYER_LOGITS, -1, "head.fc")) < 0)
        return rc;
    for (int i = 0; i < L->f->n_tensors; i++)
        if (!L->f->tensors[i].used)
            return rn_errf(L->err, L->errlen, RN_ERR_ARCH,
                           "%s: unexpected tensor (not part of a pre-activation %s ResNet v2 with "
                           "%d stages)", L->f->tensors[i].name,
                           info->block == RN_BLOCK_BOTTLENECK ? "bottleneck" : "basic-block",
                           info->n_stages);
    return 1;
}
