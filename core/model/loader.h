/* What the plan builders share while they read a weights file's tensors
 * (core/model/model.c: torchvision and timm ResNet names; core/model/resnetv2.c: timm's
 * pre-activation ResNet v2). A builder checks every shape and records where
 * each convolution and batch norm comes from; only then does fill() allocate
 * one arena and read the weights, so a bad file never half-loads a model. */
#ifndef RN_LOADER_H
#define RN_LOADER_H

#include "formats/weights.h"
#include "model.h"

/* A convolution, its own bias (b NULL: none) and the batch norm that follows
 * it (bn[0] NULL: none). */
struct conv_src {
    int conv;
    const st_tensor *w, *b, *bn[4]; /* weight; bias; bn weight, bias, running_mean, running_var */
    const st_tensor *qs, *os;       /* INT8 files: weight_scale, output_scale (b: I32) */
    int oz;                         /* ... output_zero_point, 0 when absent */
};

/* A batch norm kept as a scale and shift (rn_bn). */
struct bn_src {
    int bn;
    const st_tensor *t[4];
    const st_tensor *os; /* INT8 files: output_scale */
};

struct loader {
    st_file *f;
    rn_model *m;
    char *err;
    size_t errlen;
    struct conv_src *srcs;
    int n_srcs, cap_srcs;
    struct bn_src *bsrcs;
    int n_bsrcs, cap_bsrcs;
    size_t n_floats; /* arena size */
    int max_c;       /* widest batch norm */
    const char *fc_w, *fc_b; /* the classifier's tensors; fc_w is 2-D or a 1x1 conv's 4-D */
    int quant;               /* an INT8 file (metadata resnet.quantization, docs/int8.md):
                                convolutions are I8 weights, I32 biases and scales */
};

/* A float tensor of ndim dimensions, marked used. */
int ld_take(struct loader *L, const char *name, int ndim, const st_tensor **out);
/* 1 if a tensor of the formatted name exists. */
int ld_has(struct loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Convolution `wname` followed by batch norm `bnname` (NULL: none, the bias
 * is zero), reading in_c channels. A convolution with a bias of its own
 * (`NAME.bias` beside `NAME.weight`: an ONNX export with batch norm folded)
 * needs no batch norm after it, and has both folded when one follows; out_c and k are required values or -1 for
 * any; groups -1 derives them from the shape. In an INT8 file the weight is
 * I8 with NAME.weight_scale, NAME.output_scale and an I32 NAME.bias beside
 * it, batch norm already folded (docs/int8.md). Appends it to m->convs and
 * sets *idx. */
int ld_conv(struct loader *L, const char *wname, const char *bnname, int in_c, int out_c, int k,
            int groups, int stride, int *idx);
/* A batch norm of c channels kept as scale and shift, appended to m->bns. */
int ld_norm(struct loader *L, const char *prefix, int c, int *idx);
/* rn_plan_op and rn_plan_layer with the loader's error message. */
int ld_op(struct loader *L, rn_op op);
int ld_layer(struct loader *L, int kind, int buf, const char *name);
/* The ops since op `first` are residual block `name` reading buffer in, and
 * its output is layer `name` (rn_plan_block, rn_plan_layer). */
int ld_block(struct loader *L, int first, int in, const char *name);
/* The batch norm some graphs apply to the input itself (tensors input_norm.*,
 * MXNet's bn_data), if the file has one: an op from the input to buffer D.
 * *in: the buffer the stem reads, D or RN_BUF_INPUT. */
int ld_input_norm(struct loader *L, int *in);
/* A block's residual branch: conv c1 from buffer in to T1, then for a
 * bottleneck (c2 >= 0) c2 to T2, each with bias and ReLU (their bf16 twins
 * are all that the next convolution reads), then `last` accumulated onto
 * `out`, which holds the shortcut, with bias and, if relu, ReLU after the sum
 * (v1; v2 keeps the sum a pure identity). */
int ld_residual(struct loader *L, int in, int c1, int c2, int last, int out, int relu);
/* The classifier: fc_w (classes, e) or (classes, e, 1, 1), fc_b (classes). */
int ld_classifier(struct loader *L, const char *w, const char *b, int e);

/* INT8 files: the image's scale (tensor input_scale) into m->q_input_scale. */
int ld_input_scale(struct loader *L);

/* Allocate the arena and read every recorded tensor into it (after a
 * builder has succeeded): weights folded with their batch norms, scale and
 * shift, the classifier. */
int ld_fill(struct loader *L);

/* The builder for torchvision's and timm's ResNet names (resnetv1.c): a
 * status. */
int rn_describe_v1(struct loader *L);

/* The builder for timm's resnetv2 names (resnetv2.c); 0 if the file
 * has none (stem.conv / stem.conv1 missing), else a status. */
int rn_describe_v2(struct loader *L);

#endif
