/* libFuzzer target: the TF.js layers-model manifest reader (model.json text). */
#include <stddef.h>
#include <stdint.h>

#include "tfjs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    tfjs_model *m = NULL;
    if (tfjs_parse((const char *)data, size, &m, err, sizeof err) == 0)
        tfjs_free(m);
    return 0;
}
