/* The INT8 layers other than convolutions (docs/int8.md): the image made
 * into the stem's u8 NHWC4 input, max and average pooling, v2's batch norm
 * + ReLU, the global average pool, and floats back for a layer's output.
 * Plain C, parallel over planes (one image's block of 16 channels): they
 * move bytes and are a small part of the time; each writes its output's
 * border (engine.h). Float steps are single IEEE operations in the order
 * the page gives, so every CPU computes the same bits. */
#include <string.h>

#include "kernels.h"

struct qops_job {
    const uint8_t *in;
    const float *fin; /* rn_q_image's input */
    void *out;
    int c, h, w, oh, ow, is_s8, pad;
    int zp; /* the input's zero point (rn_q_image: the image's) */
    float q;
    const float *a, *b;
};

/* Element i of a u8 or s8 tensor, as an int. */
static inline int qload(const uint8_t *p, size_t i, int is_s8)
{
    return is_s8 ? (int8_t)p[i] : p[i];
}

static inline int qround(float y, float lo, float hi)
{
    y = y < lo ? lo : y > hi ? hi : y;
    return (int)rn_rint_small(y);
}

void rn_qborder(uint8_t *p, int h, int w, int y0, int y1)
{
    size_t row = (size_t)(w + 2 * RN_QB) * 16;
    if (y0 == 0)
        memset(p, 0, row * RN_QB);
    if (y1 == h)
        memset(p + (size_t)(h + RN_QB) * row, 0, row * RN_QB);
    for (int y = y0; y < y1; y++) {
        uint8_t *r = p + (size_t)(y + RN_QB) * row;
        memset(r, 0, RN_QB * 16);
        memset(r + (size_t)(w + RN_QB) * 16, 0, RN_QB * 16);
    }
}

/* Byte offset of pixel (y, x) of a plane w wide, inside its border. */
static inline size_t qat(int w, int y, int x)
{
    return ((size_t)(y + RN_QB) * (w + 2 * RN_QB) + x + RN_QB) * 16;
}

/* Task t: image t / (h + 2 pad), padded row t % (h + 2 pad). A channel's
 * row at a time into bytes (a loop the compiler vectorizes), then the
 * channels interleaved into the NHWC4 row. */
static void image_task(void *arg, int t, int thread)
{
    const struct qops_job *j = arg;
    int ph = j->h + 2 * j->pad, pw = j->w + 2 * j->pad, img = t / ph, y = t % ph - j->pad;
    uint8_t *o = (uint8_t *)j->out + ((size_t)img * ph + t % ph) * pw * 4;
    memset(o, j->zp, (size_t)pw * 4);
    if (y < 0 || y >= j->h)
        return;
    const float *in = j->fin + (size_t)img * j->c * j->h * j->w + (size_t)y * j->w;
    uint8_t row[512];
    const float lo = (float)-j->zp, hi = (float)(255 - j->zp);
    for (int ch = 0; ch < j->c; ch++)
        for (int x0 = 0; x0 < j->w; x0 += (int)sizeof row) {
            int n = RN_MIN((int)sizeof row, j->w - x0);
            const float *p = in + (size_t)ch * j->h * j->w + x0;
            for (int x = 0; x < n; x++) {
                float v = p[x] * j->q;
                v = v == v ? v : 0.0f; /* NaN reads as 0 (docs/int8.md) */
                v = v < lo ? lo : v > hi ? hi : v;
                row[x] = (uint8_t)(j->zp + (int)rn_rint_small(v));
            }
            for (int x = 0; x < n; x++)
                o[(size_t)(x0 + x + j->pad) * 4 + ch] = row[x];
        }
}

void rn_q_image(const rn_exec *ex, const float *in, int n, int c, int h, int w, float q, int z,
                int pad, uint8_t *out)
{
    struct qops_job j = {.fin = in, .out = out, .c = c, .h = h, .w = w,
                         .q = q, .pad = pad, .zp = z};
    rn_pool_run(ex->pool, n * (h + 2 * pad), image_task, &j);
}

/* u8: the border's zeros are no larger than any value, so every window is
 * the whole 3 x 3 in bordered coordinates, and the loop has no branch. */
static void maxpool_u8(const struct qops_job *j, const uint8_t *in, uint8_t *out)
{
    size_t row = (size_t)(j->w + 2 * RN_QB) * 16;
    for (int oy = 0; oy < j->oh; oy++)
        for (int ox = 0; ox < j->ow; ox++) {
            const uint8_t *p = in + (size_t)(oy * 2 + RN_QB - 1) * row + (size_t)(ox * 2 + RN_QB - 1) * 16;
            uint8_t m[16];
            memcpy(m, p, 16);
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++)
                    for (int k = 0; k < 16; k++)
                        m[k] = p[y * row + x * 16 + k] > m[k] ? p[y * row + x * 16 + k] : m[k];
            memcpy(out + qat(j->ow, oy, ox), m, 16);
        }
}

static void maxpool_task(void *arg, int t, int thread)
{
    const struct qops_job *j = arg;
    const uint8_t *in = j->in + (size_t)t * rn_qplane(j->h, j->w);
    uint8_t *out = (uint8_t *)j->out + (size_t)t * rn_qplane(j->oh, j->ow);
    if (!j->is_s8) {
        maxpool_u8(j, in, out);
        rn_qborder(out, j->oh, j->ow, 0, j->oh);
        return;
    }
    for (int oy = 0; oy < j->oh; oy++) {
        int y0 = RN_MAX(oy * 2 - 1, 0), y1 = RN_MIN(oy * 2 + 2, j->h);
        for (int ox = 0; ox < j->ow; ox++) {
            int x0 = RN_MAX(ox * 2 - 1, 0), x1 = RN_MIN(ox * 2 + 2, j->w);
            uint8_t *o = out + qat(j->ow, oy, ox);
            for (int k = 0; k < 16; k++) {
                int m = -128;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        int v = qload(in, qat(j->w, y, x) + k, j->is_s8);
                        m = v > m ? v : m;
                    }
                o[k] = (uint8_t)m;
            }
        }
    }
    rn_qborder(out, j->oh, j->ow, 0, j->oh);
}

void rn_q_maxpool3x3s2(const rn_exec *ex, const void *in, int n, int c, int h, int w, int is_s8,
                       void *out)
{
    struct qops_job j = {.in = in, .out = out, .c = c, .h = h, .w = w, .is_s8 = is_s8,
                         .oh = rn_out_dim(h, 3, 2, 1), .ow = rn_out_dim(w, 3, 2, 1)};
    rn_pool_run(ex->pool, n * rn_cblocks(c), maxpool_task, &j);
}

static void avgpool_task(void *arg, int t, int thread)
{
    const struct qops_job *j = arg;
    const uint8_t *in = j->in + (size_t)t * rn_qplane(j->h, j->w);
    uint8_t *out = (uint8_t *)j->out + (size_t)t * rn_qplane(j->oh, j->ow);
    float lo = j->is_s8 ? -128.0f : 0.0f, hi = j->is_s8 ? 127.0f : 255.0f;
    for (int oy = 0; oy < j->oh; oy++) {
        int y0 = oy * 2, y1 = RN_MIN(oy * 2 + 2, j->h);
        for (int ox = 0; ox < j->ow; ox++) {
            int x0 = ox * 2, x1 = RN_MIN(ox * 2 + 2, j->w);
            float cnt = (float)((y1 - y0) * (x1 - x0));
            uint8_t *o = out + qat(j->ow, oy, ox);
            for (int k = 0; k < 16; k++) {
                int s = 0;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++)
                        s += qload(in, qat(j->w, y, x) + k, j->is_s8);
                o[k] = (uint8_t)qround((float)s / cnt, lo, hi);
            }
        }
    }
    rn_qborder(out, j->oh, j->ow, 0, j->oh);
}

void rn_q_avgpool2x2(const rn_exec *ex, const void *in, int n, int c, int h, int w, int is_s8,
                     void *out)
{
    struct qops_job j = {.in = in, .out = out, .c = c, .h = h, .w = w, .is_s8 = is_s8,
                         .oh = rn_avgpool_dim(h), .ow = rn_avgpool_dim(w)};
    rn_pool_run(ex->pool, n * rn_cblocks(c), avgpool_task, &j);
}

static void bn_relu_task(void *arg, int t, int thread)
{
    const struct qops_job *j = arg;
    int cb = rn_cblocks(j->c), ch0 = t % cb * 16;
    const uint8_t *in = j->in + (size_t)t * rn_qplane(j->h, j->w);
    uint8_t *out = (uint8_t *)j->out + (size_t)t * rn_qplane(j->h, j->w);
    for (int y = 0; y < j->h; y++)
        for (int x = 0; x < j->w; x++) {
            size_t at = qat(j->w, y, x);
            for (int k = 0; k < 16; k++) {
                float v = (float)(qload(in, at + k, j->is_s8) - j->zp) * j->a[ch0 + k];
                v = v + j->b[ch0 + k];
                out[at + k] = (uint8_t)qround(v, 0.0f, 255.0f);
            }
        }
    rn_qborder(out, j->h, j->w, 0, j->h);
}

void rn_q_bn_relu(const rn_exec *ex, const void *in, int n, int c, int h, int w, int is_s8, int zp,
                  const float *a, const float *b, uint8_t *out)
{
    struct qops_job j = {.in = in, .out = out, .c = c, .h = h, .w = w, .is_s8 = is_s8, .zp = zp,
                         .a = a, .b = b};
    rn_pool_run(ex->pool, n * rn_cblocks(c), bn_relu_task, &j);
}

static void gap_task(void *arg, int t, int thread)
{
    const struct qops_job *j = arg;
    int cb = rn_cblocks(j->c), img = t / cb, ch0 = t % cb * 16;
    const uint8_t *in = j->in + (size_t)t * rn_qplane(j->h, j->w);
    int32_t s[16] = {0};
    for (int y = 0; y < j->h; y++)
        for (int x = 0; x < j->w; x++)
            for (int k = 0; k < 16; k++)
                s[k] += qload(in, qat(j->w, y, x) + k, j->is_s8);
    float *out = (float *)j->out + (size_t)img * j->c;
    for (int k = 0; k < 16 && ch0 + k < j->c; k++)
        out[ch0 + k] = (float)(s[k] - j->h * j->w * j->zp) * j->q;
}

void rn_q_global_avgpool(const rn_exec *ex, const void *in, int n, int c, int h, int w,
                         int is_s8, int zp, float scale, float *out)
{
    struct qops_job j = {.in = in, .out = out, .c = c, .h = h, .w = w, .is_s8 = is_s8, .zp = zp,
                         .q = scale / (float)(h * w)};
    rn_pool_run(ex->pool, n * rn_cblocks(c), gap_task, &j);
}

static void dequant_task(void *arg, int t, int thread)
{
    const struct qops_job *j = arg;
    int cb = rn_cblocks(j->c), img = t / cb, ch0 = t % cb * 16;
    const uint8_t *in = j->in + (size_t)t * rn_qplane(j->h, j->w);
    float *out = (float *)j->out + ((size_t)img * j->c + ch0) * j->h * j->w;
    for (int k = 0; k < 16 && ch0 + k < j->c; k++)
        for (int y = 0; y < j->h; y++)
            for (int x = 0; x < j->w; x++)
                out[((size_t)k * j->h + y) * j->w + x] = (float)(qload(in, qat(j->w, y, x) + k, j->is_s8) - j->zp) * j->q;
}

void rn_q_dequantize(const rn_exec *ex, const void *in, int n, int c, int h, int w, int is_s8,
                     int zp, float scale, float *out)
{
    struct qops_job j = {.in = in, .out = out, .c = c, .h = h, .w = w, .is_s8 = is_s8, .zp = zp,
                         .q = scale};
    rn_pool_run(ex->pool, n * rn_cblocks(c), dequant_task, &j);
}
