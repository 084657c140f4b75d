/* ONNX models as a tensor source (placeholder until the graph matcher lands). */
#include "rn_internal.h"

int onnx_is_onnx(const void *data, size_t size)
{
    (void)data;
    (void)size;
    return 0;
}

int onnx_parse(const void *data, size_t size, const char *dir, st_file *f, char *err,
               size_t errlen)
{
    (void)data;
    (void)size;
    (void)dir;
    (void)f;
    return rn_errf(err, errlen, RN_ERR_UNSUPPORTED, "ONNX is not supported yet");
}
