/* Weights files: named tensors from safetensors (the native format),
 * PyTorch's torch.save files and ONNX graphs, all filling one tensor source
 * (st_file) that the model's plan builders read. This folder knows nothing
 * of the model or the engine: it checks bytes, dtypes, shapes and offsets,
 * and hands out tensors. May use: core/rn_internal.h. */
#ifndef RN_WEIGHTS_H
#define RN_WEIGHTS_H

#include <stdint.h>

#include "rn_internal.h"

/* An st_file is the tensor source the plan builders read (model/loader.h):
 * named tensors with a dtype, a shape and their bytes, and string metadata.
 * safetensors (safetensors.c) is the native format; PyTorch's torch.save
 * files (pth.c) and ONNX graphs (onnx.c, whose graph is matched to
 * torchvision or timm names) are other sources of the same. */

enum st_dtype {
    ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U64, ST_U32,
    ST_U16, ST_U8, ST_BOOL, ST_F8_E4M3, ST_F8_E5M2, ST_DTYPE_COUNT
};

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    const char *name;      /* points into the parsed header */
    int dtype;             /* enum st_dtype */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const uint8_t *data;   /* into the file image; nbytes long */
    size_t nbytes;
    int used;              /* set by the consumer to find extra tensors */
} st_tensor;

typedef struct st_file {
    const uint8_t *base;   /* the whole file image */
    size_t size;
    void *map;             /* non-NULL when rn_weights_open mapped the file */
    const char *format;    /* "safetensors", "pytorch-zip", "pytorch-legacy", "onnx" */
    struct cJSON *header;
    st_tensor *tensors;    /* safetensors: sorted by data offset; freed by st_close */
    int n_tensors;
    const char **meta_keys;   /* __metadata__, pointers into header (or priv); freed arrays */
    const char **meta_values;
    int n_meta;
    void *priv;            /* another reader's memory (names, copies), freed by release */
    void (*release)(struct st_file *f);
} st_file;

/* Parse a safetensors image of size bytes. Every dtype, shape and offset is
 * checked against the size. The image must outlive f. On failure f is empty. */
int st_parse(const void *data, size_t size, st_file *f, char *err, size_t errlen);
void st_close(st_file *f); /* accepts an empty/zeroed f */

/* Any weights image: safetensors, a torch.save file or ONNX, told apart by
 * its first bytes (weights.c). The image must outlive f. On failure f
 * is empty. */
int rn_weights_parse(const void *data, size_t size, st_file *f, char *err, size_t errlen);
/* Map path read-only and parse it; st_close unmaps. */
int rn_weights_open(const char *path, st_file *f, char *err, size_t errlen);

/* PyTorch torch.save files, zip or legacy (pth.c). */
int pth_is_pth(const void *data, size_t size);
int pth_parse(const void *data, size_t size, st_file *f, char *err, size_t errlen);
/* ONNX models (onnx.c): the graph matched to a ResNet, its initializers
 * under torchvision or timm names, metadata from metadata_props and the
 * graph. dir: where external data files are looked for (NULL: none). */
int onnx_is_onnx(const void *data, size_t size);
int onnx_parse(const void *data, size_t size, const char *dir, st_file *f, char *err,
               size_t errlen);
/* Tell the kernel the mapped file's pages are no longer needed (they stay
 * readable, from the file again), so that they leave the resident set. */
void st_drop_pages(st_file *f);

st_tensor *st_find(st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);
const char *st_dtype_name(int dtype);
size_t st_dtype_size(int dtype); /* bytes per element, 0 for an unknown dtype */
/* Convert a F32/F16/BF16 tensor to float32 (dst has numel floats). */
int st_read_f32(const st_tensor *t, float *dst, char *err, size_t errlen);

/* fp16/bf16 helpers, shared by the reader and writers */
float rn_half_to_float(uint16_t h);
float rn_bf16_to_float(uint16_t h);

#endif
