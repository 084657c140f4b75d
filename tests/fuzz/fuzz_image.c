/* libFuzzer target: JPEG/PNG decoding and preprocessing on arbitrary bytes.
 * The pixel limit is lowered so that huge declared sizes are refused fast. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "resnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float out[3 * 32 * 32];
    char err[256];
    rn_image_params ip = rn_image_default_params();
    ip.max_pixels = 1 << 20;
    rn_image img;
    if (rn_image_decode(data, size, &ip, &img, err, sizeof err) == RN_OK) {
        rn_preprocess pp = rn_preprocess_default();
        pp.resize = 40;
        pp.crop = 32;
        rn_image_preprocess(&img, &pp, out, err, sizeof err);
        rn_image_free(&img);
    }
    return 0;
}
