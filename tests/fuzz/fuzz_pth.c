/* libFuzzer target: the torch.save reader (zip, legacy, the pickle subset)
 * and the model loader on arbitrary bytes (tests/fuzz/fuzz_weights.h). */
#include "fuzz_weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_weights(pth_parse, data, size);
}
