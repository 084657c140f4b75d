/* The KServe v2 inference request reader, apart from HTTP: a body (JSON, and
 * with the binary tensor data extension, raw bytes after it) in, a parsed
 * request with one job image per input element out. Apart from kserve.c (the
 * handlers) so that it can be tested and fuzzed without a connection. */
#ifndef RESNETD_KSERVE_REQUEST_H
#define RESNETD_KSERVE_REQUEST_H

#include <stddef.h>

#include "errors.h"
#include "job.h"

#define V2_VERSION "1"  /* every model's one version */
#define V2_MAX_SIDE 512 /* FP32 inputs: h, w from 32 to this */

enum { V2_OUT_LOGITS, V2_OUT_PROBS, V2_N_OUT };

/* The two input tensors a request may send, one of them: FP32 [N,3,H,W],
 * already preprocessed, or BYTES [N], encoded images the server decodes and
 * preprocesses. A tensor's name says which it is and must match its datatype. */
#define V2_IN_TENSOR "input"
#define V2_IN_IMAGE "image"

struct v2_request {
    float *tensor;              /* FP32 input, n x 3 x h x w */
    char **blobs;               /* BYTES input decoded from base64, n of them */
    struct infer_image *images;   /* n; data points into the body, blobs or tensor */
    int n, h, w;
    char id[256];
    int has_id;
    struct {
        int want, binary, cls;  /* requested; binary data; top-k classification */
    } out[V2_N_OUT];
    int order[V2_N_OUT], n_order; /* outputs in the order the request named them */
    /* an output that is neither: a model layer by name (kserve.c resolves it),
     * alone in the request; parameters {"pool": "avg" (default) | "none"} */
    char layer[64];
    int layer_pool, layer_binary; /* enum rn_pooling */
};

/* The output names, indexed by V2_OUT_*. */
extern const char *const v2_out_names[V2_N_OUT];

/* Parse a v2 inference request. body holds body_len bytes (it need not be
 * NUL-terminated); header_len is the Inference-Header-Content-Length header
 * or NULL (the whole body is JSON); crop is the model's input side, given to
 * encoded images; more than max_images inputs are refused. On SRV_OK *req is
 * filled and its images point into body, which must outlive them; on error
 * err says why. Either way the caller releases *req with v2_request_free. */
enum srv_err v2_parse_request(const char *body, size_t body_len, const char *header_len,
                              int crop, int max_images, struct v2_request *req, char *err,
                              size_t errlen);

/* Free what req holds and zero it; accepts a zeroed request. */
void v2_request_free(struct v2_request *req);

#endif
