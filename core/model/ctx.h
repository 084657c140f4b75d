/* Inside a context: its buffers, and the plan walk that core/model/infer.c runs
 * and core/inspect/inspect.c steps through op by op. */
#ifndef RN_CTX_H
#define RN_CTX_H

#include "model.h"

struct rn_ctx {
    const rn_model *m;
    int blocked;             /* the model is packed: ops run on NCHW16c */
    int bf16;                /* ... with bf16 weights (RN_PRECISION_BF16) */
    int int8;                /* an INT8 model: the buffers hold bytes (model.h) */
    rn_exec exec;
    int n_threads;
    float *buf[RN_BUF_COUNT];
    size_t cap[RN_BUF_COUNT]; /* floats */
    uint16_t *bufb[RN_BUF_COUNT]; /* bf16 twins */
    size_t capb[RN_BUF_COUNT];
    float *pooled;           /* (max_batch, embed_dim) when the caller wants no embedding */
    size_t pooled_cap;
    float *logits;           /* (max_batch, classes) when an output wants logits only there */
    size_t logits_cap;
    size_t col_cap;          /* per thread */
    /* rn_ctx_profile: per op of the plan, while profiling is on (else NULL) */
    struct rn_op_time {
        long calls, images;
        double seconds, best, flops;
    } *prof;
};

/* Make sure the buffers hold n images of h x w (allocates only to grow). */
int rn_ctx_reserve(rn_ctx *ctx, int n, int h, int w, char *err, size_t errlen);

/* One walk of the plan over n images of h x w: the buffers it runs on (the
 * context's, or a copy's), each buffer's (c, h, w) so far, and where the
 * embedding and logits go. */
typedef struct rn_walk {
    float *buf[RN_BUF_COUNT];
    uint16_t *bufb[RN_BUF_COUNT];
    int shape[RN_BUF_COUNT][3];
    float qscale[RN_BUF_COUNT]; /* INT8 models: each buffer's scale so far */
    int qs8[RN_BUF_COUNT];      /* ... and whether it holds s8 */
    int qzp[RN_BUF_COUNT];      /* ... and its zero point */
    const float *input;
    int n, h, w;
    float *pooled, *logits;
} rn_walk;

/* A walk on the context's buffers. */
void rn_walk_init(const rn_ctx *ctx, rn_walk *wk, const float *input, int n, int h, int w,
                  float *pooled, float *logits);
/* Run op i of the plan on wk (its input buffers hold what earlier ops wrote). */
void rn_walk_op(rn_ctx *ctx, rn_walk *wk, int i);
/* A convolution on the engine the model was packed for. */
void rn_walk_conv(rn_ctx *ctx, const rn_conv_args *a);

#endif
