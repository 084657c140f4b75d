/* The layer functions the forward pass is made of (conv.c, pool.c). */
#ifndef RN_ENGINE_H
#define RN_ENGINE_H

#include "model.h"
#include "threads.h"

/* What a layer may use: the thread pool and each thread's im2col buffer. */
typedef struct rn_exec {
    rn_pool *pool;
    float *col;        /* n_threads * col_stride floats */
    size_t col_stride; /* floats per thread */
} rn_exec;

typedef struct rn_conv_args {
    const rn_conv *c;
    const float *in; /* (n, in_c, ih, iw) */
    int n, ih, iw;
    float *out;      /* (n, out_c, oh, ow) */
    const float *bias; /* (out_c) added after the product, or NULL */
    int relu;
    int accumulate;  /* out += conv(in): out holds the residual on entry */
} rn_conv_args;

/* im2col floats one thread needs for c on an ih x iw input (0 for 1x1/1). */
size_t rn_conv_col_floats(const rn_conv *c, int ih, int iw);

/* out = [relu](conv(in) + bias [+ out]), parallel over images, groups,
 * column chunks and (when that is not enough work) output-channel chunks. */
void rn_conv_forward(const rn_exec *x, const rn_conv_args *a);

/* 3x3, stride 2, padding 1 max pooling of (n, c, h, w). */
void rn_maxpool3x3s2(const rn_exec *x, const float *in, int n, int c, int h, int w, float *out);

/* out (n, c) = mean over h*w of in (n, c, h, w). */
void rn_global_avgpool(const rn_exec *x, const float *in, int n, int c, int hw, float *out);

/* out (n, classes) = in (n, e) * wt (e, classes) + b. */
void rn_linear(const rn_exec *x, const float *in, int n, int e, const float *wt, const float *b,
               int classes, float *out);

#endif
