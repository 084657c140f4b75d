/* An inspection as JSON (the reply of POST /v1/inspect and `resnet inspect
 * --json`), and a class activation map as a PNG heat map over the model's
 * input crop. */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/model.h"

/* A class as {"index", "label", "score"}. */
static cJSON *class_json(const rn_model *m, int k, double score)
{
    cJSON *o = cJSON_CreateObject();
    char num[16];
    const char *label = rn_model_label(m, k);
    if (!label) {
        snprintf(num, sizeof num, "%d", k);
        label = num;
    }
    cJSON_AddNumberToObject(o, "index", k);
    cJSON_AddStringToObject(o, "label", label);
    cJSON_AddNumberToObject(o, "score", score);
    return o;
}

static void add_shape(cJSON *o, const char *k, const int s[3])
{
    cJSON_AddItemToObject(o, k, cJSON_CreateIntArray(s, 3));
}

/* 7 significant digits: what float32 results carry */
static double r7(double v)
{
    if (v == 0 || !isfinite(v))
        return v;
    double e = pow(10, 6 - floor(log10(fabs(v))));
    return round(v * e) / e;
}

char *rn_inspection_json(const rn_model *m, const rn_inspection *r, int topk, int cam_classes)
{
    if (!m || !r)
        return NULL;
    int nc = r->n_classes;
    int *idx = malloc(sizeof(int) * (size_t)nc);
    float *cam = malloc(sizeof(float) * ((size_t)r->map_h * r->map_w + 1));
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (!idx || !cam || !o)
        goto out;
    int k = rn_topk(r->probs, nc, topk < 1 ? 1 : topk, idx);
    int top = idx[0];
    cJSON *preds = cJSON_AddArrayToObject(o, "predictions");
    for (int i = 0; i < k; i++)
        cJSON_AddItemToArray(preds, class_json(m, idx[i], r7(r->probs[idx[i]])));
    cJSON *blocks = cJSON_AddArrayToObject(o, "blocks");
    for (int b = 0; b < r->n_blocks; b++) {
        const rn_block_report *br = &r->blocks[b];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", br->name);
        cJSON_AddBoolToObject(e, "projection", br->projection);
        cJSON_AddBoolToObject(e, "downsampling", br->out_shape[1] < br->in_shape[1] ||
                                                     br->out_shape[2] < br->in_shape[2]);
        add_shape(e, "in_shape", br->in_shape);
        add_shape(e, "out_shape", br->out_shape);
        cJSON_AddNumberToObject(e, "x_norm", r7(br->x_norm));
        cJSON_AddNumberToObject(e, "s_norm", r7(br->s_norm));
        cJSON_AddNumberToObject(e, "f_norm", r7(br->f_norm));
        cJSON_AddNumberToObject(e, "y_norm", r7(br->y_norm));
        cJSON_AddNumberToObject(e, "f_over_s", r7(br->f_over_s));
        cJSON_AddNumberToObject(e, "f_over_x", r7(br->f_over_x));
        cJSON_AddNumberToObject(e, "cos_sf", r7(br->cos_sf));
        if (isnan(br->cos_xy))
            cJSON_AddNullToObject(e, "cos_xy");
        else
            cJSON_AddNumberToObject(e, "cos_xy", r7(br->cos_xy));
        if (r->lesions) {
            cJSON *l = cJSON_AddObjectToObject(e, "lesion");
            cJSON_AddItemToObject(l, "top1", class_json(m, br->lesion_top1, r7(br->lesion_top1_prob)));
            cJSON_AddNumberToObject(l, "orig_score", r7(br->lesion_orig_prob));
            cJSON_AddNumberToObject(l, "orig_delta", r7(br->lesion_orig_prob - r->probs[top]));
            cJSON_AddNumberToObject(l, "kl", r7(br->lesion_kl));
            cJSON_AddNumberToObject(l, "embed_cos", r7(br->lesion_embed_cos));
            cJSON_AddNumberToObject(l, "recomputed_ops", br->lesion_ops);
            cJSON_AddNumberToObject(l, "recomputed_gflops", r7(br->lesion_gflops));
        }
        cJSON_AddItemToArray(blocks, e);
    }
    cJSON *c = cJSON_AddObjectToObject(o, "cam");
    cJSON_AddNumberToObject(c, "height", r->map_h);
    cJSON_AddNumberToObject(c, "width", r->map_w);
    cJSON *cl = cJSON_AddArrayToObject(c, "classes");
    int hw = r->map_h * r->map_w;
    for (int i = 0; i < k && i < cam_classes; i++) {
        if (rn_inspection_cam(m, r, idx[i], cam) < 0)
            goto out;
        cJSON *e = class_json(m, idx[i], r7(r->probs[idx[i]]));
        cJSON *g = cJSON_AddArrayToObject(e, "grid");
        for (int p = 0; p < hw; p++)
            cJSON_AddItemToArray(g, cJSON_CreateNumber(r7(cam[p])));
        cJSON_AddItemToArray(cl, e);
    }
    cJSON *comp = cJSON_AddObjectToObject(o, "computed");
    cJSON_AddNumberToObject(comp, "forward_gflops", r7(r->forward_gflops));
    cJSON_AddBoolToObject(comp, "lesions", r->lesions);
    cJSON_AddNumberToObject(comp, "lesion_gflops", r7(r->lesion_gflops));
    cJSON_AddNumberToObject(comp, "lesion_forwards",
                            r->forward_gflops > 0 ? r7(r->lesion_gflops / r->forward_gflops) : 0);
    cJSON_AddStringToObject(comp, "lesion_method",
                            "each block's residual branch set to zero; only the layers after the "
                            "block recomputed, from its saved shortcut");
    s = cJSON_PrintUnformatted(o);
out:
    cJSON_Delete(o);
    free(idx);
    free(cam);
    return s;
}

/* ---- the heat map ---- */

/* A perceptual-ish colour ramp (black-blue-red-yellow-white, like "inferno"),
 * t in [0, 1]. */
static void ramp(double t, uint8_t rgb[3])
{
    static const double stops[6][3] = {{0, 0, 4},      {40, 11, 84},   {101, 21, 110},
                                       {188, 55, 84},  {249, 142, 9},  {252, 255, 164}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double x = t * 5;
    int i = (int)x;
    if (i >= 5)
        i = 4;
    double f = x - i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lrint(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f);
}

/* Bilinear upsampling of src (sh x sw) to one value at (y, x) of dh x dw,
 * half-pixel centres (PyTorch's interpolate, align_corners=False). */
static double sample(const float *src, int sh, int sw, int dh, int dw, int y, int x)
{
    double fy = ((double)y + 0.5) * sh / dh - 0.5, fx = ((double)x + 0.5) * sw / dw - 0.5;
    fy = fy < 0 ? 0 : fy;
    fx = fx < 0 ? 0 : fx;
    int y0 = (int)fy, x0 = (int)fx;
    int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1, x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
    double ay = fy - y0, ax = fx - x0;
    return (1 - ay) * ((1 - ax) * src[y0 * sw + x0] + ax * src[y0 * sw + x1]) +
           ay * ((1 - ax) * src[y1 * sw + x0] + ax * src[y1 * sw + x1]);
}

struct membuf {
    uint8_t *p;
    size_t n, cap;
    int oom;
};

static void on_write(png_structp png, png_bytep data, size_t n)
{
    struct membuf *b = png_get_io_ptr(png);
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = (b->cap ? 2 * b->cap : 65536) + n;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void on_flush(png_structp png)
{
    (void)png;
}

static int encode_png(const uint8_t *rgb, int w, int h, void **out, size_t *len, char *err,
                      size_t errlen)
{
    struct membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (!png || !info || !rows) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        return rn_errf(err, errlen, RN_ERR_NOMEM, "heat map: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(b.p);
        return rn_errf(err, errlen, RN_ERR_INTERNAL, "heat map: libpng could not encode it");
    }
    png_set_write_fn(png, &b, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    for (int y = 0; y < h; y++)
        rows[y] = (png_bytep)(rgb + (size_t)y * w * 3);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (b.oom) {
        free(b.p);
        return rn_errf(err, errlen, RN_ERR_NOMEM, "heat map: out of memory");
    }
    *out = b.p;
    *len = b.n;
    return RN_OK;
}

int rn_inspection_png(const rn_model *m, const rn_inspection *r, int cls, const float *input,
                      int h, int w, void **png, size_t *len, char *err, size_t errlen)
{
    if (!png || !len)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "heat map: no output");
    *png = NULL;
    *len = 0;
    if (!m || !r || !input || h < 1 || w < 1 || h > 8192 || w > 8192)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "heat map: missing inspection or input");
    if (cls < 0 || cls >= m->info.n_classes)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "class %d: the model has classes 0..%d",
                       cls, m->info.n_classes - 1);
    size_t hw = (size_t)r->map_h * r->map_w, plane = (size_t)h * w;
    float *cam = malloc(sizeof(float) * (hw + 1));
    uint8_t *rgb = malloc(plane * 3);
    int rc = RN_OK;
    if (!cam || !rgb) {
        rc = rn_errf(err, errlen, RN_ERR_NOMEM, "heat map: out of memory");
        goto out;
    }
    if ((rc = rn_inspection_cam(m, r, cls, cam)) < 0) {
        rc = rn_errf(err, errlen, rc, "heat map: no class activation map for class %d", cls);
        goto out;
    }
    float lo = cam[0], hi = cam[0];
    for (size_t p = 1; p < hw; p++) {
        lo = cam[p] < lo ? cam[p] : lo;
        hi = cam[p] > hi ? cam[p] : hi;
    }
    /* the input crop, from the tensor: the inverse of the model's normalisation */
    const rn_preprocess *pp = &m->pp;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *o = rgb + ((size_t)y * w + x) * 3, heat[3];
            ramp(hi > lo ? (sample(cam, r->map_h, r->map_w, h, w, y, x) - lo) / (hi - lo) : 0, heat);
            for (int c = 0; c < 3; c++) {
                int tc = pp->bgr ? 2 - c : c;
                double v = ((double)input[tc * plane + (size_t)y * w + x] * pp->std[tc] + pp->mean[tc]) /
                           pp->scale;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                o[c] = (uint8_t)lrint(0.45 * v + 0.55 * heat[c]);
            }
        }
    rc = encode_png(rgb, w, h, png, len, err, errlen);
out:
    free(cam);
    free(rgb);
    return rc;
}
