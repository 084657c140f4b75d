/* libFuzzer target: INT8 model files (docs/int8.md) on arbitrary bytes: the
 * safetensors reader, the INT8 loader's checks (dtypes, shapes, scales,
 * weights, biases, metadata resnet.quantization and resnet.stem_relu), the
 * plan's scale walk and packing; an accepted model then runs one small
 * image, so that whatever the checks let through the executor survives.
 * Seeds: tests/fuzz/corpus/int8 (fixture models of tests/fixtures/int8). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "resnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        rn_set_log(NULL, NULL, 0);
        quiet = 1;
    }
    char err[256] = "";
    rn_model *m;
    if (rn_model_load_buffer(data, size, NULL, &m, err, sizeof err) != RN_OK) {
        if (!err[0])
            abort(); /* every refusal says why */
        return 0;
    }
    const rn_model_info *info = rn_model_info_get(m);
    rn_ctx_params cp = rn_ctx_default_params();
    cp.max_size = 32;
    cp.n_threads = 1;
    rn_ctx *ctx;
    if (info->precision == RN_PRECISION_INT8 && info->n_classes <= 4096 &&
        rn_ctx_new(m, &cp, &ctx, err, sizeof err) == RN_OK) {
        float *in = calloc(3 * 32 * 32, sizeof(float)), *logits = malloc((size_t)info->n_classes * sizeof(float));
        for (int i = 0; in && i < 3 * 32 * 32; i++)
            in[i] = (float)(i % 7) - 3.0f;
        if (in && logits)
            rn_infer(ctx, in, 1, 32, 32, logits, NULL, err, sizeof err);
        free(in);
        free(logits);
        rn_ctx_free(ctx);
    }
    rn_model_free(m);
    return 0;
}
