/* Model preprocessing: torchvision's Resize + CenterCrop + ToTensor + Normalize, into CHW floats.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "image.h"
#include "rn_internal.h"

#define PP_MAX_SIDE 8192 /* resize and crop above this are surely a typo */

rn_preprocess rn_preprocess_default(void)
{
    rn_preprocess pp = {
        .resize = 256,
        .crop = 224,
        .scale = 0.00392156862745098f,
        .mean = {0.485f, 0.456f, 0.406f},
        .std = {0.229f, 0.224f, 0.225f},
        .bgr = 0,
    };
    return pp;
}

static int parse_side(const cJSON *v, const char *key, int *out, char *err, size_t errlen)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= 1 && d <= PP_MAX_SIDE) || d != floor(d))
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "resnet.preprocess: \"%s\" must be an integer in [1, %d]", key, PP_MAX_SIDE);
    *out = (int)d;
    return RN_OK;
}

static int parse_triple(const cJSON *v, const char *key, int positive, float out[3], char *err,
                        size_t errlen)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "resnet.preprocess: \"%s\" must be an array of 3 numbers", key);
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        if (!isfinite(d) || fabs(d) > 1e6 || (positive && !(d > 0)))
            return rn_errf(err, errlen, RN_ERR_FORMAT,
                           "resnet.preprocess: \"%s\"[%d] must be a finite%s number", key, i,
                           positive ? " positive" : "");
        out[i] = (float)d;
    }
    return RN_OK;
}

int rn_preprocess_parse(const char *json, rn_preprocess *out, char *err, size_t errlen)
{
    if (!json || !out)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "resnet.preprocess: NULL argument");
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return rn_errf(err, errlen, RN_ERR_FORMAT, "resnet.preprocess: invalid JSON near '%.20s'",
                       cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "");
    rn_preprocess pp = rn_preprocess_default();
    int rc = RN_OK;
    if (!cJSON_IsObject(root)) {
        rc = rn_errf(err, errlen, RN_ERR_FORMAT, "resnet.preprocess: expected a JSON object");
        goto out_free_json;
    }
    for (const cJSON *v = root->child; v && rc == RN_OK; v = v->next) {
        const char *k = v->string;
        if (!strcmp(k, "resize")) {
            rc = parse_side(v, k, &pp.resize, err, errlen);
        } else if (!strcmp(k, "crop")) {
            rc = parse_side(v, k, &pp.crop, err, errlen);
        } else if (!strcmp(k, "scale")) {
            double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            if (!(d > 0 && d <= 1e6))
                rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                             "resnet.preprocess: \"scale\" must be a positive number");
            pp.scale = (float)d;
        } else if (!strcmp(k, "mean")) {
            rc = parse_triple(v, k, 0, pp.mean, err, errlen);
        } else if (!strcmp(k, "std")) {
            rc = parse_triple(v, k, 1, pp.std, err, errlen);
        } else if (!strcmp(k, "order")) {
            const char *s = cJSON_GetStringValue(v);
            if (s && !strcasecmp(s, "RGB"))
                pp.bgr = 0;
            else if (s && !strcasecmp(s, "BGR"))
                pp.bgr = 1;
            else
                rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                             "resnet.preprocess: \"order\" must be \"RGB\" or \"BGR\"");
        } else {
            /* an unknown step would be silently skipped: refuse instead */
            rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                         "resnet.preprocess: unknown key \"%.40s\" (known: resize, crop, scale, "
                         "mean, std, order)",
                         k);
        }
    }
    if (rc == RN_OK)
        *out = pp;
out_free_json:
    cJSON_Delete(root);
    return rc;
}

/* torchvision's CenterCrop on one axis of n pixels: which source pixels land
 * where. Smaller than the crop: zero padding, (c - n) // 2 before; otherwise
 * top = int(round((n - c) / 2.0)), Python's round (half to even). */
static void crop_axis(int n, int c, int *src0, int *dst0, int *count)
{
    if (c > n) {
        *src0 = 0;
        *dst0 = (c - n) / 2;
        *count = n;
        return;
    }
    int d = n - c, top = d / 2;
    if ((d & 1) && (top & 1))
        top++;
    *src0 = top;
    *dst0 = 0;
    *count = c;
}

static int check_pp(const rn_preprocess *pp, char *err, size_t errlen)
{
    if (!pp || pp->resize < 1 || pp->resize > PP_MAX_SIDE || pp->crop < 1 ||
        pp->crop > PP_MAX_SIDE || !(pp->scale > 0) || !(pp->std[0] > 0) || !(pp->std[1] > 0) ||
        !(pp->std[2] > 0))
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                       "preprocess: resize and crop must be in [1, %d], scale and std > 0",
                       PP_MAX_SIDE);
    return RN_OK;
}

/* torchvision's _compute_resized_output_size: the short side to pp->resize,
 * the long side truncated. -1 when the long side would not fit an int. */
static int resized_size(int full_w, int full_h, const rn_preprocess *pp, int *nw, int *nh)
{
    int shorter = RN_MIN(full_w, full_h), longer = RN_MAX(full_w, full_h);
    double nl = (double)pp->resize * longer / shorter;
    if (nl > INT_MAX / 8)
        return -1;
    *nw = full_w <= full_h ? pp->resize : (int)nl;
    *nh = full_w <= full_h ? (int)nl : pp->resize;
    return 0;
}

void rn_preprocess_source_rect(int full_w, int full_h, const rn_preprocess *pp, int rect[4])
{
    int nw, nh, sx, sy, dx, dy, cw, ch;
    rect[0] = rect[2] = 0;
    rect[1] = full_w;
    rect[3] = full_h;
    if (full_w < 1 || full_h < 1 || check_pp(pp, NULL, 0) < 0 ||
        resized_size(full_w, full_h, pp, &nw, &nh) < 0)
        return; /* rn_preprocess_scaled fails on it: any rectangle will do */
    crop_axis(nw, pp->crop, &sx, &dx, &cw);
    crop_axis(nh, pp->crop, &sy, &dy, &ch);
    rn_resize_span(full_w, nw, sx, cw, &rect[0], &rect[1]);
    rn_resize_span(full_h, nh, sy, ch, &rect[2], &rect[3]);
}

int rn_preprocess_scaled(const rn_image *img, int full_w, int full_h, const rn_preprocess *pp,
                         float *out, char *err, size_t errlen)
{
    int rc = check_pp(pp, err, errlen);
    if (rc < 0)
        return rc;
    if (!img || !img->rgb || img->width < 1 || img->height < 1 || full_w < 1 || full_h < 1 || !out)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "preprocess: empty image or output");
    int nw, nh;
    if (resized_size(full_w, full_h, pp, &nw, &nh) < 0)
        return rn_errf(err, errlen, RN_ERR_IMAGE_TOO_LARGE,
                       "preprocess: aspect ratio %dx%d too extreme to resize", full_w, full_h);
    int c = pp->crop, sx, sy, dx, dy, cw, ch;
    crop_axis(nw, c, &sx, &dx, &cw);
    crop_axis(nh, c, &sy, &dy, &ch);
    size_t plane = (size_t)c * c;
    uint8_t *buf = (cw < c || ch < c) ? calloc(plane, 3) : malloc(plane * 3);
    if (!buf)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "preprocess: out of memory");
    rc = rn_resize_window(img->rgb, img->width, img->height, nw, nh, sx, sy, cw, ch,
                          buf + ((size_t)dy * c + dx) * 3, (size_t)c * 3, err, errlen);
    if (rc == RN_OK) {
        /* ToTensor + Normalize as one table per output channel */
        float lut[3][256];
        for (int oc = 0; oc < 3; oc++)
            for (int v = 0; v < 256; v++)
                lut[oc][v] = (float)(((double)v * pp->scale - pp->mean[oc]) / pp->std[oc]);
        for (int oc = 0; oc < 3; oc++) {
            const uint8_t *p = buf + (pp->bgr ? 2 - oc : oc);
            const float *t = lut[oc];
            float *o = out + oc * plane;
            for (size_t i = 0; i < plane; i++)
                o[i] = t[p[i * 3]];
        }
    }
    free(buf);
    return rc;
}

int rn_image_preprocess(const rn_image *img, const rn_preprocess *pp, float *out, char *err,
                        size_t errlen)
{
    if (!img)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "preprocess: NULL image");
    return rn_preprocess_scaled(img, img->width, img->height, pp, out, err, errlen);
}
