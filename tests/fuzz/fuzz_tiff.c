/* libFuzzer target: the TIFF decoder alone on arbitrary bytes, with EXIF
 * orientation (tests/fuzz/fuzz_decoder.h). */
#include "fuzz_decoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_decoder(rn_tiff_decode, data, size);
}
