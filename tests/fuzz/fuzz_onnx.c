/* libFuzzer target: the ONNX reader (protobuf-c decoding, the graph matcher)
 * and the model loader on arbitrary bytes (tests/fuzz/fuzz_weights.h). */
#include "fuzz_weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* no folder: external data files are refused */
static int parse(const void *data, size_t size, st_file *f, char *err, size_t errlen)
{
    return onnx_parse(data, size, NULL, f, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_weights(parse, data, size);
}
