/* WebP decoding with libwebp's animation decoder, as PIL 9.4's WebPImagePlugin
 * does: lossy, lossless, alpha and animated files alike, the first frame
 * composed on the canvas in RGBA, then alpha dropped as convert("RGB") does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "image.h"
#include "rn_internal.h"

static int status_of(VP8StatusCode s)
{
    return s == VP8_STATUS_UNSUPPORTED_FEATURE ? RN_ERR_UNSUPPORTED
           : s == VP8_STATUS_OUT_OF_MEMORY     ? RN_ERR_NOMEM
                                               : RN_ERR_IMAGE_CORRUPT;
}

static const char *reason(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated data (not enough data)";
    default: return "unknown error";
    }
}

int rn_webp_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* The canvas size from the headers (VP8X, or the one frame's) first:
     * the animation decoder allocates the canvas as it is created. */
    /* libwebp itself refuses a VP8X canvas past 2^32 pixels as corrupt:
     * read it here, so that it is the limit that answers */
    if (len >= 30 && !memcmp(data + 12, "VP8X", 4)) {
        uint64_t cw = 1 + ((uint64_t)data[24] | (uint64_t)data[25] << 8 | (uint64_t)data[26] << 16);
        uint64_t ch = 1 + ((uint64_t)data[27] | (uint64_t)data[28] << 8 | (uint64_t)data[29] << 16);
        int rc0 = rn_image_check_size("WebP", cw, ch, params, err, errlen);
        if (rc0 < 0)
            return rc0;
    }
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(data, len, &f);
    if (st != VP8_STATUS_OK)
        return rn_errf(err, errlen, status_of(st), "WebP: %s in the headers", reason(st));
    int rc = rn_image_check_size("WebP", (uint64_t)f.width, (uint64_t)f.height, params, err,
                                 errlen);
    if (rc < 0)
        return rc;
    WebPData wd = {.bytes = data, .size = len};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, NULL); /* RGBA, as PIL asks */
    if (!dec)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "WebP: the RIFF container is truncated or corrupt (%zu bytes)", len);
    WebPAnimInfo info;
    if (!WebPAnimDecoderGetInfo(dec, &info) || info.frame_count < 1) {
        WebPAnimDecoderDelete(dec);
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "WebP: no frame in the file");
    }
    int w = (int)info.canvas_width, h = (int)info.canvas_height;
    rc = rn_image_check_size("WebP", (uint64_t)w, (uint64_t)h, params, err, errlen);
    if (rc < 0) {
        WebPAnimDecoderDelete(dec);
        return rc;
    }
    uint8_t *rgba = NULL;
    int ts = 0;
    if (!WebPAnimDecoderGetNext(dec, &rgba, &ts)) {
        WebPAnimDecoderDelete(dec);
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "WebP: the first frame is truncated or corrupt (libwebp could not decode "
                       "it)");
    }
    uint8_t *rgb = rn_image_alloc(w, h);
    if (!rgb) {
        WebPAnimDecoderDelete(dec);
        return rn_errf(err, errlen, RN_ERR_NOMEM, "WebP: out of memory for %dx%d", w, h);
    }
    for (size_t i = 0; i < (size_t)w * h; i++)
        memcpy(rgb + 3 * i, rgba + 4 * i, 3);
    WebPAnimDecoderDelete(dec);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return RN_OK;
}
