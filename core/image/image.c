/* Image entry points: format sniffing from magic bytes, limits, dispatch to the decoders. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "rn_internal.h"

/* DCT scaling stays opt-in: decoding at 1/2..1/8 and resizing the rest of the
 * way does not reproduce PIL's pixels within the parity bound (README). */
rn_image_params rn_image_default_params(void)
{
    rn_image_params p = {.max_pixels = 40000000, .dct_scaling = 0, .min_side = 0};
    return p;
}

void rn_image_free(rn_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

static int starts(const uint8_t *d, size_t len, const char *magic, size_t n)
{
    return len >= n && memcmp(d, magic, n) == 0;
}

static const struct {
    const char *name, *mime;
} formats[] = {
    {"JPEG", "image/jpeg"}, {"PNG", "image/png"}, {"WebP", "image/webp"},
    {"GIF", "image/gif"},   {"BMP", "image/bmp"}, {"TIFF", "image/tiff"},
};

#define FORMAT_LIST "JPEG, PNG, WebP, GIF, BMP and TIFF"

const char *rn_image_format_name(int i)
{
    return i >= 0 && i < (int)RN_ARRAY_LEN(formats) ? formats[i].name : NULL;
}

const char *rn_image_format_mime(int i)
{
    return i >= 0 && i < (int)RN_ARRAY_LEN(formats) ? formats[i].mime : NULL;
}

/* The format from the magic bytes (enum rn_image_kind), or -1. */
static int sniff(const uint8_t *d, size_t len)
{
    if (starts(d, len, "\xff\xd8\xff", 3))
        return RN_KIND_JPEG;
    if (starts(d, len, "\x89PNG\r\n\x1a\n", 8))
        return RN_KIND_PNG;
    if (len >= 12 && starts(d, len, "RIFF", 4) && memcmp(d + 8, "WEBP", 4) == 0)
        return RN_KIND_WEBP;
    if (starts(d, len, "GIF87a", 6) || starts(d, len, "GIF89a", 6))
        return RN_KIND_GIF;
    if (starts(d, len, "BM", 2))
        return RN_KIND_BMP;
    if (starts(d, len, "II*\0", 4) || starts(d, len, "MM\0*", 4) || starts(d, len, "II+\0", 4) ||
        starts(d, len, "MM\0+", 4))
        return RN_KIND_TIFF;
    return -1;
}

/* A name for formats we recognise but do not decode, for the message. */
static const char *other_format(const uint8_t *d, size_t len)
{
    if (starts(d, len, "GIF8", 4))
        return "GIF (not 87a or 89a)";
    if (len >= 12 && memcmp(d + 4, "ftyp", 4) == 0)
        return "HEIF/AVIF";
    if (starts(d, len, "\xff\x0a", 2) || starts(d, len, "\0\0\0\x0cJXL ", 8))
        return "JPEG XL";
    if (starts(d, len, "\0\0\0\x0cjP  ", 8) || starts(d, len, "\xff\x4f\xff\x51", 4))
        return "JPEG 2000";
    if (starts(d, len, "\0\0\1\0", 4))
        return "ICO";
    return NULL;
}

int rn_image_check_size(const char *fmt, uint64_t w, uint64_t h, const rn_image_params *params,
                        char *err, size_t errlen)
{
    /* each side below 2^31 too: the pixel loops index with int */
    if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX ||
        w * h > (uint64_t)params->max_pixels)
        return rn_errf(err, errlen, RN_ERR_IMAGE_TOO_LARGE,
                       "%s: %llux%llu pixels declared, the limit is %lld and no side may be 0",
                       fmt, (unsigned long long)w, (unsigned long long)h,
                       (long long)params->max_pixels);
    return RN_OK;
}

uint8_t *rn_image_alloc(int w, int h)
{
    if (w <= 0 || h <= 0 || (size_t)w > SIZE_MAX / 3 / (size_t)h)
        return NULL;
    return malloc((size_t)w * h * 3);
}

/* for_pp: the image is decoded only to be preprocessed so (rn_jpeg_decode). */
static int decode(const void *data, size_t len, const rn_image_params *params,
                  const rn_preprocess *for_pp, rn_image *out, int *full_w, int *full_h, char *err,
                  size_t errlen)
{
    if (!out)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "image: NULL output");
    memset(out, 0, sizeof *out);
    rn_image_params def = rn_image_default_params();
    if (!params)
        params = &def;
    if (!data && len)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "image: NULL data");
    if (params->max_pixels < 1)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "image: max_pixels must be positive");
    const uint8_t *d = data;
    if (len == 0)
        return rn_errf(err, errlen, RN_ERR_IMAGE_FORMAT, "image: empty data (0 bytes)");
    int kind = sniff(d, len), rc;
    *full_w = *full_h = 0;
    switch (kind) {
    case RN_KIND_JPEG:
        /* only the preprocessed pixels, when they are the decoded ones: not
         * turned by an EXIF orientation */
        if (for_pp && params->exif_orient && rn_exif_orientation(d, len, kind) != 1)
            for_pp = NULL;
        rc = rn_jpeg_decode(d, len, params, for_pp, out, full_w, full_h, err, errlen);
        break;
    case RN_KIND_PNG: rc = rn_png_decode(d, len, params, out, err, errlen); break;
    case RN_KIND_WEBP: rc = rn_webp_decode(d, len, params, out, err, errlen); break;
    case RN_KIND_GIF: rc = rn_gif_decode(d, len, params, out, err, errlen); break;
    case RN_KIND_BMP: rc = rn_bmp_decode(d, len, params, out, err, errlen); break;
    case RN_KIND_TIFF: rc = rn_tiff_decode(d, len, params, out, err, errlen); break;
    default: {
        const char *name = other_format(d, len);
        if (name)
            return rn_errf(err, errlen, RN_ERR_IMAGE_FORMAT,
                           "image: %s is not supported (" FORMAT_LIST " are)", name);
        return rn_errf(err, errlen, RN_ERR_IMAGE_FORMAT,
                       "image: unknown format (first bytes %02x %02x %02x %02x); " FORMAT_LIST
                       " are supported",
                       d[0], len > 1 ? d[1] : 0, len > 2 ? d[2] : 0, len > 3 ? d[3] : 0);
    }
    }
    if (rc < 0)
        return rc;
    if (kind != RN_KIND_JPEG) {
        *full_w = out->width;
        *full_h = out->height;
    }
    if (params->exif_orient && kind != RN_KIND_TIFF) { /* TIFF: oriented by its decoder */
        int o = rn_exif_orientation(d, len, kind);
        rc = rn_image_orient(out, o, err, errlen);
        if (rc < 0) {
            rn_image_free(out);
            return rc;
        }
        if (o >= 5) { /* the declared size turns with the pixels */
            int t = *full_w;
            *full_w = *full_h;
            *full_h = t;
        }
    }
    return RN_OK;
}

int rn_image_decode(const void *data, size_t len, const rn_image_params *params, rn_image *out,
                    char *err, size_t errlen)
{
    int fw = 0, fh = 0;
    return decode(data, len, params, NULL, out, &fw, &fh, err, errlen);
}

int rn_image_to_tensor(const void *data, size_t len, const rn_image_params *params,
                       const rn_preprocess *pp, float *out, char *err, size_t errlen)
{
    if (!pp || !out)
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "image: NULL preprocess or output");
    rn_image_params p = params ? *params : rn_image_default_params();
    /* DCT scaling only down to the resize target: the geometry still comes
     * from the declared size, the scaled pixels stand in for it. */
    if (p.dct_scaling)
        p.min_side = p.min_side > pp->resize ? p.min_side : pp->resize;
    rn_image img;
    int fw = 0, fh = 0;
    int rc = decode(data, len, &p, pp, &img, &fw, &fh, err, errlen);
    if (rc < 0)
        return rc;
    rc = rn_preprocess_scaled(&img, fw, fh, pp, out, err, errlen);
    rn_image_free(&img);
    return rc;
}
