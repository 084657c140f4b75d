/* Image entry points: format sniffing from magic bytes, limits, dispatch to the decoders. */
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"
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

/* A name for formats we recognise but do not decode, for the message. */
static const char *other_format(const uint8_t *d, size_t len)
{
    if (starts(d, len, "GIF8", 4))
        return "GIF";
    if (len >= 12 && starts(d, len, "RIFF", 4) && memcmp(d + 8, "WEBP", 4) == 0)
        return "WebP";
    if (starts(d, len, "BM", 2))
        return "BMP";
    if (starts(d, len, "II*\0", 4) || starts(d, len, "MM\0*", 4))
        return "TIFF";
    if (len >= 12 && memcmp(d + 4, "ftyp", 4) == 0)
        return "HEIF/AVIF";
    if (starts(d, len, "\xff\x0a", 2) || starts(d, len, "\0\0\0\x0cJXL ", 8))
        return "JPEG XL";
    return NULL;
}

static int decode(const void *data, size_t len, const rn_image_params *params, rn_image *out,
                  int *full_w, int *full_h, char *err, size_t errlen)
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
    if (starts(d, len, "\xff\xd8\xff", 3))
        return rn_jpeg_decode(d, len, params, out, full_w, full_h, err, errlen);
    if (starts(d, len, "\x89PNG\r\n\x1a\n", 8)) {
        int rc = rn_png_decode(d, len, params, out, err, errlen);
        *full_w = out->width;
        *full_h = out->height;
        return rc;
    }
    const char *name = other_format(d, len);
    if (name)
        return rn_errf(err, errlen, RN_ERR_IMAGE_FORMAT,
                       "image: %s is not supported (JPEG and PNG are)", name);
    return rn_errf(err, errlen, RN_ERR_IMAGE_FORMAT,
                   "image: unknown format (first bytes %02x %02x %02x %02x); JPEG and PNG are "
                   "supported",
                   d[0], len > 1 ? d[1] : 0, len > 2 ? d[2] : 0, len > 3 ? d[3] : 0);
}

int rn_image_decode(const void *data, size_t len, const rn_image_params *params, rn_image *out,
                    char *err, size_t errlen)
{
    int fw = 0, fh = 0;
    return decode(data, len, params, out, &fw, &fh, err, errlen);
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
    int rc = decode(data, len, &p, &img, &fw, &fh, err, errlen);
    if (rc < 0)
        return rc;
    rc = rn_preprocess_scaled(&img, fw, fh, pp, out, err, errlen);
    rn_image_free(&img);
    return rc;
}
