/* The body of a libFuzzer target for one image decoder alone on arbitrary
 * bytes (no format sniffing in the way), then EXIF orientation, on the
 * decoded image and on the bytes. The pixel limit is lowered so that huge
 * declared sizes are refused fast. tests/fuzz/fuzz_{bmp,gif,tiff,webp}.c. */
#ifndef RN_FUZZ_DECODER_H
#define RN_FUZZ_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"

typedef int (*fuzz_decode_fn)(const uint8_t *d, size_t len, const rn_image_params *p, rn_image *out,
                              char *err, size_t errlen);

static int fuzz_decoder(fuzz_decode_fn decode, const uint8_t *data, size_t size)
{
    char err[256];
    rn_image_params ip = rn_image_default_params();
    ip.max_pixels = 1 << 20;
    rn_image img;
    if (decode(data, size, &ip, &img, err, sizeof err) == RN_OK) {
        rn_image_orient(&img, 1 + (int)(size % 8), err, sizeof err);
        rn_image_free(&img);
    }
    rn_exif_orientation(data, size, (int)(size % 6));
    return 0;
}

#endif
