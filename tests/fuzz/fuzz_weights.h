/* The body of a libFuzzer target for one weights-file reader, then the model
 * loader, on arbitrary bytes: every input is refused with a message or gives
 * tensors whose bytes are all readable; nothing runs, nothing leaks.
 * tests/fuzz/fuzz_{pth,onnx}.c. */
#ifndef RN_FUZZ_WEIGHTS_H
#define RN_FUZZ_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "formats/weights.h"

typedef int (*fuzz_parse_fn)(const void *data, size_t size, st_file *f, char *err, size_t errlen);

static int fuzz_weights(fuzz_parse_fn parse, const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        rn_set_log(NULL, NULL, 0);
        quiet = 1;
    }
    char err[256] = "";
    st_file f;
    if (parse(data, size, &f, err, sizeof err) == RN_OK) {
        for (int i = 0; i < f.n_tensors; i++) /* every tensor's bytes are readable */
            if (f.tensors[i].nbytes &&
                (f.tensors[i].data[0] | f.tensors[i].data[f.tensors[i].nbytes - 1]) == 0x100)
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

#endif
