/* libFuzzer target: JPEG/PNG decoding and preprocessing on arbitrary bytes.
 * The pixel limit is lowered so that huge declared sizes are refused fast.
 * Differential too: rn_image_to_tensor (which decodes a JPEG only around the
 * crop's pixels) must give the status and the tensor of a whole decode and
 * rn_image_preprocess. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float out[3 * 32 * 32], cropped[3 * 32 * 32];
    char err[256];
    rn_image_params ip = rn_image_default_params();
    ip.max_pixels = 1 << 20;
    rn_preprocess pp = rn_preprocess_default();
    pp.resize = 40;
    pp.crop = 32;
    rn_image img;
    int whole = rn_image_decode(data, size, &ip, &img, err, sizeof err);
    if (whole == RN_OK) {
        whole = rn_image_preprocess(&img, &pp, out, err, sizeof err);
        rn_image_free(&img);
    }
    int st = rn_image_to_tensor(data, size, &ip, &pp, cropped, err, sizeof err);
    if (st != whole || (st == RN_OK && memcmp(out, cropped, sizeof out)))
        abort();
    return 0;
}
