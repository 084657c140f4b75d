/* libFuzzer target: the KServe v2 inference request reader
 * (server/kserve_request.c). The first input line, when it starts with a
 * digit, is the Inference-Header-Content-Length header; the rest is the body,
 * copied to an exact-size buffer without a terminating NUL so that any read
 * past it is caught. Every accepted request must be self-consistent: its
 * images readable and of the right size, its outputs one of the two forms
 * outputs_consistent() states. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kserve_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What an accepted request asks for (kserve_request.c's parse_outputs): a
 * model layer by name, alone (no logits or probabilities beside it), pooled
 * or not; or no layer, and then order[0..n_order) lists each wanted output
 * once: both when "outputs" is absent, none for an empty "outputs" array. */
static int outputs_consistent(const struct v2_request *req)
{
    if (memchr(req->layer, '\0', sizeof req->layer) == NULL)
        return 0;
    if (req->layer[0]) {
        if (req->n_order != 0 || (req->layer_pool != 0 && req->layer_pool != 1) ||
            (req->layer_binary != 0 && req->layer_binary != 1))
            return 0;
        for (int k = 0; k < V2_N_OUT; k++)
            if (req->out[k].want)
                return 0;
        return 1;
    }
    if (req->n_order < 0 || req->n_order > V2_N_OUT)
        return 0;
    int listed[V2_N_OUT] = {0};
    for (int i = 0; i < req->n_order; i++) {
        int k = req->order[i];
        if (k < 0 || k >= V2_N_OUT || listed[k]++)
            return 0;
    }
    for (int k = 0; k < V2_N_OUT; k++)
        if (req->out[k].want != listed[k] || req->out[k].cls < 0 ||
            (req->out[k].binary != 0 && req->out[k].binary != 1))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char hl[32], *hlp = NULL;
    const char *nl = memchr(data, '\n', size);
    if (size && data[0] >= '0' && data[0] <= '9' && nl && (size_t)(nl - (const char *)data) < sizeof hl) {
        size_t n = (size_t)(nl - (const char *)data);
        memcpy(hl, data, n);
        hl[n] = '\0';
        hlp = hl;
        size -= n + 1;
        data = (const uint8_t *)nl + 1;
    }
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    struct v2_request req;
    char err[256];
    enum srv_err e = v2_parse_request(body, size, hlp, 224, 64, &req, err, sizeof err);
    if (e == SRV_OK) {
        if (req.n < 1 || req.n > 64 || !req.images || !outputs_consistent(&req))
            abort();
        for (int i = 0; i < req.n; i++) {
            const struct infer_image *im = &req.images[i];
            if (im->data) {
                volatile unsigned char x = 0;
                for (size_t k = 0; k < im->len; k++) /* the image bytes are readable */
                    x ^= ((const unsigned char *)im->data)[k];
                (void)x;
                if (im->len == 0 || im->h != 224 || im->w != 224)
                    abort();
            } else if (!im->tensor || im->h < 32 || im->w < 32 || im->h > V2_MAX_SIDE ||
                       im->w > V2_MAX_SIDE) {
                abort();
            } else {
                volatile float x = im->tensor[(size_t)3 * im->h * im->w - 1];
                (void)x;
            }
        }
    } else if (err[0] == '\0' || srv_err_http(e) < 400 || srv_err_http(e) == 500) {
        abort(); /* every refusal says why, and bad input is never a 500 */
    }
    v2_request_free(&req);
    free(body);
    return 0;
}
