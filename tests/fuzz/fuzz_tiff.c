/* libFuzzer target: the TIFF decoder alone on arbitrary bytes (no format
 * sniffing in the way), with EXIF orientation. The pixel limit is lowered so
 * that huge declared sizes are refused fast. */
#include <stddef.h>
#include <stdint.h>

#include "image_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    rn_image_params ip = rn_image_default_params();
    ip.max_pixels = 1 << 20;
    rn_image img;
    if (rn_tiff_decode(data, size, &ip, &img, err, sizeof err) == RN_OK) {
        rn_image_orient(&img, 1 + (int)(size % 8), err, sizeof err);
        rn_image_free(&img);
    }
    rn_exif_orientation(data, size, (int)(size % 6));
    return 0;
}
