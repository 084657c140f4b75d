/* libFuzzer target: the safetensors reader and the model loader on arbitrary
 * bytes. Every input must be refused cleanly or load a valid model. */
#include <stddef.h>
#include <stdint.h>

#include "formats/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        rn_set_log(NULL, NULL, 0);
        quiet = 1;
    }
    char err[256];
    st_file f;
    if (st_parse(data, size, &f, err, sizeof err) == RN_OK)
        st_close(&f);
    rn_model *m;
    if (rn_model_load_buffer(data, size, NULL, &m, err, sizeof err) == RN_OK)
        rn_model_free(m);
    return 0;
}
