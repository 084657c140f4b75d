/* libFuzzer target: the torch.save reader (zip, legacy, the pickle subset)
 * and the model loader on arbitrary bytes. Every input is refused with a
 * message or loads a valid model; nothing runs, nothing leaks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "rn_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        rn_set_log(NULL, NULL, 0);
        quiet = 1;
    }
    char err[256] = "";
    st_file f;
    int rc = pth_parse(data, size, &f, err, sizeof err);
    if (rc == RN_OK) {
        for (int i = 0; i < f.n_tensors; i++) /* every tensor's bytes are readable */
            if (f.tensors[i].nbytes && (f.tensors[i].data[0] | f.tensors[i].data[f.tensors[i].nbytes - 1]) == 0x100)
                abort();
        st_close(&f);
    } else if (!err[0]) {
        abort();
    }
    rn_model *m;
    if (rn_model_load_buffer(data, size, NULL, &m, err, sizeof err) == RN_OK)
        rn_model_free(m);
    return 0;
}
