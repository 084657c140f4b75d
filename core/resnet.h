/* libresnet: load ResNet image classifiers from safetensors and run exact FP32
 * inference on the CPU; decode and preprocess images as the model was trained.
 *
 * Usage:
 *
 *     char err[256];
 *     rn_model *m = NULL;
 *     rn_model_params mp = rn_model_default_params();
 *     if (rn_model_load("resnet50.safetensors", &mp, &m, err, sizeof err) < 0)
 *         die("%s", err);
 *
 *     rn_ctx_params cp = rn_ctx_default_params();   // threads, max batch, size
 *     rn_ctx *ctx = NULL;
 *     if (rn_ctx_new(m, &cp, &ctx, err, sizeof err) < 0) die("%s", err);
 *
 *     const rn_preprocess *pp = rn_model_preprocess(m);
 *     float *x = malloc(sizeof(float) * 3 * pp->crop * pp->crop);
 *     rn_image_params ip = rn_image_default_params();
 *     if (rn_image_to_tensor(jpeg_bytes, jpeg_len, &ip, pp, x, err, sizeof err) < 0)
 *         die("%s", err);
 *
 *     float *logits = malloc(sizeof(float) * rn_model_info_get(m)->n_classes);
 *     if (rn_infer(ctx, x, 1, pp->crop, pp->crop, logits, NULL, err, sizeof err) < 0)
 *         die("%s", err);
 *
 *     rn_ctx_free(ctx);
 *     rn_model_free(m);
 *
 * Threading: an rn_model is immutable once loaded and may be shared by any
 * number of threads and contexts. An rn_ctx owns scratch memory and a pool of
 * threads; use one context from one thread at a time (one per server worker).
 *
 * Errors: functions that can fail return an enum rn_status (negative on
 * failure, RN_OK on success) and, when err is not NULL, write a message for
 * people into err (at most errlen bytes, always NUL-terminated) that says what
 * was wrong and where, e.g. "layer2.0.conv1.weight: shape [128,64,3,3],
 * expected [128,64,1,1]". Nothing in the library exits or aborts on bad input.
 */
#ifndef RESNET_H
#define RESNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rn_status {
    RN_OK = 0,
    RN_ERR_IO = -1,            /* a file could not be opened, read or mapped */
    RN_ERR_FORMAT = -2,        /* malformed weights file (header, offsets, dtype) */
    RN_ERR_ARCH = -3,          /* well-formed file that is not a supported ResNet */
    RN_ERR_NOMEM = -4,         /* out of memory */
    RN_ERR_INVALID_ARG = -5,   /* a caller-supplied argument is out of range */
    RN_ERR_IMAGE_FORMAT = -6,  /* bytes are not an image format we decode */
    RN_ERR_IMAGE_CORRUPT = -7, /* truncated or corrupt image data */
    RN_ERR_IMAGE_TOO_LARGE = -8, /* declared dimensions over the pixel limit, or zero */
    RN_ERR_UNSUPPORTED = -9,   /* valid input using a feature we do not implement */
    RN_ERR_INTERNAL = -10,     /* a bug or a failed system call (threads, BLAS) */
};

/* A static name for a status code ("invalid weights file", ...). Never NULL. */
const char *rn_strerror(int status);

/* ---- logging --------------------------------------------------------------
 * The library logs a few facts (which BLAS kernels are in use, the
 * architecture it read). By default lines go to stderr prefixed "resnet: ".
 * Set fn to NULL to silence the library. Not thread-safe: call before loading.
 */
enum rn_log_level { RN_LOG_ERROR = 0, RN_LOG_WARN = 1, RN_LOG_INFO = 2, RN_LOG_DEBUG = 3 };
typedef void (*rn_log_fn)(int level, const char *msg, void *user);
void rn_set_log(rn_log_fn fn, void *user, int max_level);

/* ---- BLAS -----------------------------------------------------------------
 * libresnet loads OpenBLAS itself so that it can pick the right kernels for
 * the CPU before OpenBLAS initialises (Debian's 0.3.21 falls back to generic
 * kernels on recent Xeons). Called implicitly by rn_model_load; callable early
 * to report. Returns RN_OK or RN_ERR_INTERNAL when no usable BLAS was found. */
int rn_blas_init(char *err, size_t errlen);
/* The OpenBLAS core in use ("SkylakeX", "Haswell", ...), or "unknown". */
const char *rn_blas_corename(void);

/* ---- models ---------------------------------------------------------------- */

typedef struct rn_model rn_model; /* opaque, immutable after load */

/* RN_PRECISION_BF16: bf16 weights and activations with FP32 accumulation
 * (AVX-512 BF16); FP32, with a log line, on CPUs without it.
 * RN_PRECISION_INT8: a quantized model file (docs/int8.md) runs in INT8
 * whatever was asked for; it is the file that says so, not the request. */
enum rn_precision { RN_PRECISION_FP32 = 0, RN_PRECISION_BF16 = 1, RN_PRECISION_INT8 = 2 };

/* "fp32", "bf16", "int8"; "unknown" otherwise. */
const char *rn_precision_name(int precision);

/* The micro-kernels a model runs on (the blocked engine, NCHW16c), or im2col
 * + OpenBLAS (RN_ISA_BLAS, also what grouped convolutions always use).
 * RN_ISA_AUTO: the RN_ISA environment variable (a name below) when set, else
 * the best this CPU runs. RN_ISA_C is plain C: any CPU, and the reference the
 * SIMD tables are tested against. */
enum rn_isa {
    RN_ISA_AUTO = 0,
    RN_ISA_AVX512 = 1, /* x86-64 with avx512f/bw/dq/vl */
    RN_ISA_AVX2 = 2,   /* x86-64 with avx2 and fma */
    RN_ISA_NEON = 3,   /* aarch64 */
    RN_ISA_C = 4,
    RN_ISA_BLAS = 5,
};

/* "auto", "avx512", "avx2", "neon", "c", "blas"; "unknown" otherwise. */
const char *rn_isa_name(int isa);
/* The enum rn_isa of a name above, or -1. */
int rn_isa_from_name(const char *name);
/* 1 if this build and CPU can run isa (AUTO and BLAS: always). */
int rn_isa_supported(int isa);

typedef struct rn_model_params {
    int precision; /* enum rn_precision */
    int isa;       /* enum rn_isa; rn_model_load fails with RN_ERR_UNSUPPORTED
                      when the CPU cannot run the one asked for */
    const char *labels; /* a file of class names, or NULL: the weights file's own
                           (metadata resnet.labels, ONNX metadata_props). A JSON
                           array of strings, a JSON object {"0": name, ...}, or
                           plain text, one name per line; exactly one per class */
} rn_model_params;

rn_model_params rn_model_default_params(void);

/* Load a ResNet from a weights file, its format told from its bytes: safetensors
 * or a PyTorch torch.save file (zip or legacy; a state_dict or a checkpoint
 * dict holding one) with torchvision/timm tensor names, or an ONNX graph
 * (matched to a ResNet; external data files beside it). Nothing in the file
 * is ever executed. The architecture is read from the tensors; batch norm is
 * folded into the convolutions. On success *out owns the model (free with
 * rn_model_free) and the file is no longer needed. On failure *out is NULL,
 * nothing is leaked. */
int rn_model_load(const char *path, const rn_model_params *params, rn_model **out,
                  char *err, size_t errlen);

/* The same from an image in memory (not retained after return); an ONNX
 * model's external data cannot be found from here. */
int rn_model_load_buffer(const void *data, size_t size, const rn_model_params *params,
                         rn_model **out, char *err, size_t errlen);

void rn_model_free(rn_model *m); /* accepts NULL */

enum rn_block_kind { RN_BLOCK_BASIC = 0, RN_BLOCK_BOTTLENECK = 1 };
enum rn_variant { RN_VARIANT_V1_5 = 0, RN_VARIANT_V1 = 1 };
enum rn_stem { RN_STEM_7X7 = 0, RN_STEM_DEEP = 1 }; /* DEEP: three 3x3 convs (ResNet-C/D, timm) */

#define RN_MAX_STAGES 8

typedef struct rn_model_info {
    char arch[48];                /* "resnet50", "resnext50_32x4d", "wide_resnet50_2", or "resnet" */
    int block;                    /* enum rn_block_kind */
    int variant;                  /* enum rn_variant */
    int preact;                   /* 1: pre-activation ResNet v2 (timm resnetv2 names) */
    int stem;                     /* enum rn_stem */
    int avg_down;                 /* 1: average-pool projection shortcuts (ResNet-D) */
    float bn_eps;
    int stem_channels;            /* conv1 output channels */
    int n_stages;
    int blocks[RN_MAX_STAGES];    /* blocks per stage */
    int widths[RN_MAX_STAGES];    /* inner width of the stage (conv2 channels) */
    int out_channels[RN_MAX_STAGES];
    int groups;                   /* conv2 groups (ResNeXt), 1 otherwise */
    int n_classes;
    int embed_dim;                /* channels after global pooling */
    int64_t n_params;             /* parameters as stored (BN included) */
    double gflops;                /* multiply-adds x2 for one 224x224 image */
    int precision;                /* enum rn_precision it runs in: FP32 when BF16 was
                                     asked for but is not available (logged) */
    int isa;                      /* enum rn_isa it runs on, never AUTO: BLAS for
                                     grouped convolutions whatever was asked (logged) */
    char format[24];              /* the file's: "safetensors", "pytorch-zip",
                                     "pytorch-legacy" or "onnx" */
} rn_model_info;

const rn_model_info *rn_model_info_get(const rn_model *m);

/* Class name i, or NULL when the file has no resnet.labels or i is out of range. */
const char *rn_model_label(const rn_model *m, int i);

/* A __metadata__ value by key, or NULL. Keys are listed by index until NULL. */
const char *rn_model_meta(const rn_model *m, const char *key);
const char *rn_model_meta_key(const rn_model *m, int i);

/* ---- preprocessing ------------------------------------------------------
 * Pixels (0..255) times scale, minus mean, divided by std, channels in order
 * (RGB or BGR; mean and std are per output channel). The image's shorter side
 * is resized to `resize` (antialiased bilinear, as PIL), then the center
 * crop x crop square is taken (torchvision's rounding). */
typedef struct rn_preprocess {
    int resize;
    int crop;
    float scale;
    float mean[3];
    float std[3];
    int bgr; /* 0: RGB, 1: BGR */
} rn_preprocess;

/* torchvision's ImageNet eval transform: 256, 224, 1/255, ImageNet mean/std, RGB. */
rn_preprocess rn_preprocess_default(void);

/* The model's resnet.preprocess metadata, or the default. Owned by the model. */
const rn_preprocess *rn_model_preprocess(const rn_model *m);

/* Parse a resnet.preprocess JSON text; missing keys keep their defaults. */
int rn_preprocess_parse(const char *json, rn_preprocess *out, char *err, size_t errlen);

/* ---- images -------------------------------------------------------------- */

typedef struct rn_image {
    int width, height;
    uint8_t *rgb; /* width*height*3 bytes, row-major, owned by the image */
} rn_image;

typedef struct rn_image_params {
    int64_t max_pixels; /* refuse images declaring more pixels (default 40e6) */
    int dct_scaling;    /* JPEG: allow libjpeg-turbo's 1/2..1/8 DCT scaling when
                           the result stays at least min_side (see README) */
    int min_side;       /* the resize target for DCT scaling; 0 disables it */
    int exif_orient;    /* 1: apply the EXIF orientation (JPEG, PNG, WebP, TIFF) as
                           PIL's ImageOps.exif_transpose does; 0 (default): ignore
                           it, as PIL's Image.open and torchvision do */
} rn_image_params;

rn_image_params rn_image_default_params(void);

/* The formats rn_image_decode reads, by index 0.. until NULL: their names
 * ("JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF") and MIME types. */
const char *rn_image_format_name(int i);
const char *rn_image_format_mime(int i);

/* Decode JPEG, PNG, WebP, GIF (the first frame), BMP or TIFF (the first
 * image), detected from the bytes, to 8-bit RGB: the pixels of PIL 9.4's
 * Image.open(...).convert("RGB"). On success the
 * caller owns out->rgb (free with rn_image_free). On failure out is zeroed. */
int rn_image_decode(const void *data, size_t len, const rn_image_params *params,
                    rn_image *out, char *err, size_t errlen);

void rn_image_free(rn_image *img); /* accepts NULL and zeroed images */

/* Resize, crop and normalise img into out: 3*pp->crop*pp->crop floats, CHW,
 * written straight into the caller's batch buffer. */
int rn_image_preprocess(const rn_image *img, const rn_preprocess *pp, float *out,
                        char *err, size_t errlen);

/* Decode and preprocess in one call (uses DCT scaling only if params allow). */
int rn_image_to_tensor(const void *data, size_t len, const rn_image_params *params,
                       const rn_preprocess *pp, float *out, char *err, size_t errlen);

/* ---- inference ------------------------------------------------------------ */

typedef struct rn_ctx rn_ctx; /* scratch memory and threads; one user at a time */

typedef struct rn_ctx_params {
    int n_threads; /* 0: the number of online CPUs */
    int max_batch; /* scratch is planned for batches up to this (default 1) */
    int max_size;  /* and for inputs up to max_size x max_size (default 224) */
} rn_ctx_params;

rn_ctx_params rn_ctx_default_params(void);

/* Create a context for m. m must outlive the context. Scratch memory is
 * allocated here for max_batch images of max_size; rn_infer on larger inputs
 * grows it once (the only allocation outside this call). */
int rn_ctx_new(const rn_model *m, const rn_ctx_params *params, rn_ctx **out,
               char *err, size_t errlen);

void rn_ctx_free(rn_ctx *ctx); /* accepts NULL; joins the threads */

/* The bytes rn_ctx_new(m, p) allocates for activations and scratch (its
 * threads' stacks aside), from walking m's plan: what a server's memory
 * budget should count per context. 0 for NULL arguments. */
size_t rn_ctx_bytes(const rn_model *m, const rn_ctx_params *p);

/* Run n images of h x w (h, w >= 32), input NCHW float32 (n*3*h*w). Writes
 * n*n_classes logits into logits and, if embed is not NULL, n*embed_dim
 * pooled features into embed. Either output may be NULL (not both). */
int rn_infer(rn_ctx *ctx, const float *input, int n, int h, int w, float *logits,
             float *embed, char *err, size_t errlen);

/* ---- profile: where the time of rn_infer goes ------------------------------
 * rn_ctx_profile(ctx, 1) times every op of the plan in each later rn_infer,
 * rn_infer_outputs or rn_inspect call on ctx until rn_ctx_profile(ctx, 0);
 * starting again resets the totals. It allocates once, here, and costs two
 * clock reads per op. */
typedef struct rn_op_profile {
    const char *layer; /* the named layer the op belongs to ("layer2.0", "maxpool") */
    char what[64];     /* "conv 1x1/2 256->512 direct", "conv 3x3/1 64->64 winograd F(4x4)",
                          "maxpool", "global pool", "fc", ... */
    long calls;        /* runs of the op */
    long images;       /* images over those runs */
    double seconds;    /* wall time over those runs */
    double best;       /* the fastest run, seconds per image */
    double flops;      /* multiply-adds x 2 per image at the size it last ran (0: none counted) */
} rn_op_profile;

/* RN_ERR_NOMEM if the totals cannot be allocated, RN_ERR_INVALID_ARG for a NULL ctx. */
int rn_ctx_profile(rn_ctx *ctx, int on);
/* The totals of ops 0 .. min(cap, count) - 1 into out (zero while profiling
 * is off; out may be NULL with cap 0); returns the number of ops of the plan
 * (the size out needs), 0 for a NULL ctx. */
int rn_ctx_profile_get(const rn_ctx *ctx, rn_op_profile *out, int cap);

/* ---- layers: named intermediate outputs -----------------------------------
 * Every model offers its layers' outputs by their PyTorch module names:
 * torchvision/timm ResNet "maxpool" (the stem), "layer3.5" (a block),
 * "layer3" (a stage), "avgpool" (the embedding), "fc" (the logits); timm
 * resnetv2 "stem", "stages.2.blocks.1", "stages.2", "norm", "head.global_pool",
 * "head.fc". Layers are indexed 0 .. rn_model_layer_count() - 1 in the order
 * the forward pass produces them. */
int rn_model_layer_count(const rn_model *m);
const char *rn_model_layer_name(const rn_model *m, int i); /* NULL past the end */
int rn_model_layer_find(const rn_model *m, const char *name); /* index, or -1 */
/* shape = (channels, height, width) of layer i for an h x w input (1 x 1
 * for the embedding and logits). RN_ERR_INVALID_ARG for a bad index or size. */
int rn_model_layer_shape(const rn_model *m, int layer, int h, int w, int shape[3]);

enum rn_pooling { RN_POOL_NONE = 0, RN_POOL_AVG = 1 };

typedef struct rn_output {
    int layer;   /* rn_model_layer_find() */
    int pool;    /* enum rn_pooling. RN_POOL_AVG: n x channels floats (global average);
                    RN_POOL_NONE: the whole map, n x channels x height x width (NCHW) */
    float *data; /* the caller's, of that many floats */
} rn_output;

/* Run n images of h x w as rn_infer does and write each asked-for layer
 * output; the forward pass stops after the last one needed. */
int rn_infer_outputs(rn_ctx *ctx, const float *input, int n, int h, int w,
                     const rn_output *outs, int n_outs, char *err, size_t errlen);

/* ---- inspection: what each residual block does, for one image ------------
 * For block y = [relu](s + F(x)) (x its input, s the shortcut: x itself or
 * its projection, F the residual branch before the add), the norms and
 * cosines below, and its lesion: F set to zero, so the block outputs
 * [relu](s) (v1: relu(s), which is x for an identity block; v2: s), and the
 * layers after it recomputed from that activation to new class scores. */
typedef struct rn_block_report {
    char name[48];          /* its layer name: "layer3.4", "stages.2.blocks.1" */
    int projection;         /* 1: s is a projection of x; 0: s = x */
    int in_shape[3], out_shape[3]; /* (c, h, w) of x and of y */
    double x_norm, s_norm, f_norm, y_norm; /* L2 norms */
    double f_over_s;        /* ||F|| / ||s|| */
    double f_over_x;        /* ||F|| / ||x|| */
    double cos_sf;          /* cos(s, F) */
    double cos_xy;          /* cos(x, y); NAN when their shapes differ */
    /* the lesion (when asked for; else the fields are 0 and lesion_top1 -1) */
    int lesion_top1;        /* top-1 class with the block lesioned */
    double lesion_top1_prob;
    double lesion_orig_prob; /* the unlesioned top-1 class's probability, lesioned */
    double lesion_kl;       /* KL(p || p_lesioned), nats */
    double lesion_embed_cos; /* cos(embedding, embedding lesioned) */
    int lesion_ops;         /* plan ops recomputed: the ones after the block */
    double lesion_gflops;   /* and their cost */
} rn_block_report;

typedef struct rn_inspection {
    int n_classes, embed_dim;
    float *logits, *probs;  /* (n_classes) */
    float *embed;           /* (embed_dim) */
    int n_blocks;
    rn_block_report *blocks;
    int lesions;            /* 1: the lesion fields are set */
    int map_c, map_h, map_w;
    float *map;             /* the map the global pool averages, (c, h, w) */
    double forward_gflops;  /* one forward pass at this input size */
    double lesion_gflops;   /* all lesions' recomputation together */
    /* with lesions (else NULL): block k's lesioned logits at
     * lesion_logits[k * n_classes], its embedding at lesion_embed[k * embed_dim] */
    float *lesion_logits, *lesion_embed;
} rn_inspection;

typedef struct rn_inspect_params {
    int lesions;            /* 1 (default): lesion every block */
} rn_inspect_params;

rn_inspect_params rn_inspect_default_params(void);

/* Run one image (3 x h x w NCHW, as rn_infer) and measure every residual
 * block; logits and embedding are bit for bit rn_infer's. *out is the
 * caller's, for rn_inspection_free. RN_ERR_UNSUPPORTED for a model whose plan
 * records no residual blocks. An INT8 model is measured on its tensors
 * dequantized and lesioned on its integer path (docs/int8.md, "Inspecting an
 * INT8 model"). */
int rn_inspect(rn_ctx *ctx, const float *input, int h, int w, const rn_inspect_params *params,
               rn_inspection **out, char *err, size_t errlen);
void rn_inspection_free(rn_inspection *r); /* accepts NULL */

/* The bytes rn_inspect allocates beyond its context for an h x w input. */
size_t rn_inspect_bytes(const rn_model *m, int h, int w);

/* Class activation map of class cls (Zhou et al. 2016): cam[y][x] = sum over
 * channels c of W[cls][c] * map[c][y][x], with W the classifier's weights;
 * its mean plus the class's bias is the logit. out: map_h * map_w floats.
 * RN_ERR_INVALID_ARG for a class out of range. */
int rn_inspection_cam(const rn_model *m, const rn_inspection *r, int cls, float *out);

/* The inspection as one JSON object (malloc'd string, NULL when out of
 * memory): "predictions" (the top-k classes), "blocks" (every block's
 * measurements and, if computed, its "lesion"), "cam" (the maps of the first
 * cam_classes of those classes: "height", "width", row-major "grid"s) and
 * "computed" (GFLOPs of the forward pass and of the lesions). The reply of
 * POST /v1/inspect and of resnet inspect --json. */
char *rn_inspection_json(const rn_model *m, const rn_inspection *r, int topk, int cam_classes);

/* The class activation map of cls as a PNG: the map upsampled (bilinear) to
 * the h x w input, scaled from its minimum to its maximum on a colour ramp
 * (dark: low, yellow-white: high) and laid over the input as the model saw it
 * (input: the NCHW tensor rn_inspect ran, its normalisation undone). *png is
 * malloc'd. */
int rn_inspection_png(const rn_model *m, const rn_inspection *r, int cls, const float *input,
                      int h, int w, void **png, size_t *len, char *err, size_t errlen);

/* ---- INT8 quantization: what `resnet quantize` runs (docs/int8.md) --------
 * A float model, calibration images run through it, and out come the
 * tensors of an INT8 model file: int8 weights symmetric per output channel,
 * int32 biases, one scale per activation from the calibration, the image's
 * scale from the preprocessing's range.
 *
 *     rn_quantizer *q;
 *     rn_quantizer_new("resnet50.safetensors", NULL, &q, err, sizeof err);
 *     for each batch of images, preprocessed as rn_model_preprocess(
 *             rn_quantizer_model(q)) says:
 *         rn_quantizer_observe(q, x, n, crop, crop, err, sizeof err);
 *     rn_quantizer_finish(q, err, sizeof err);
 *     for (int i = 0; i < rn_quantizer_tensor_count(q); i++)
 *         rn_quantizer_tensor(q, i, &t);  (write t; and the metadata)
 *     rn_quantizer_free(q);
 */
enum rn_calib_method {
    RN_CALIB_PERCENTILE = 0, /* the percentile of |x| (or x after a ReLU) */
    RN_CALIB_MINMAX = 1,     /* the largest |x| seen */
    RN_CALIB_MSE = 2,        /* the range whose rounding and clipping error is least */
};

typedef struct rn_quantize_params {
    int method;        /* enum rn_calib_method */
    double percentile; /* RN_CALIB_PERCENTILE: e.g. 99.999 */
    int n_threads;     /* 0: every core */
    int max_batch;     /* images per rn_quantizer_observe call, at most */
    int bias_correction; /* 1: each conv's bias corrected by the mean shift its weight
                            rounding causes on the calibration images (docs/int8.md);
                            0 (default): biases as folded. Off by default: on the
                            default model it did not bring INT8 closer to FP32 */
} rn_quantize_params;

rn_quantize_params rn_quantize_default_params(void);

typedef struct rn_quantizer rn_quantizer;

/* Open the float model at path (any format rn_model_load reads; not an INT8
 * model). On failure *out is NULL. Free with rn_quantizer_free. */
int rn_quantizer_new(const char *path, const rn_quantize_params *params, rn_quantizer **out,
                     char *err, size_t errlen);
void rn_quantizer_free(rn_quantizer *q); /* accepts NULL */

/* The float model, for its preprocessing and information. */
const rn_model *rn_quantizer_model(const rn_quantizer *q);

/* Run n preprocessed images (NCHW floats, n <= max_batch) through the
 * float model and add what every activation held to its statistics. */
int rn_quantizer_observe(rn_quantizer *q, const float *input, int n, int h, int w, char *err,
                         size_t errlen);

/* Choose every scale and quantize the weights. RN_ERR_INVALID_ARG when no
 * image was observed. */
int rn_quantizer_finish(rn_quantizer *q, char *err, size_t errlen);

/* One tensor of the INT8 model file, valid until rn_quantizer_free. */
typedef struct rn_tensor_view {
    const char *name;
    const char *dtype; /* safetensors' names: "I8", "I32", "F32" */
    int ndim;
    int64_t shape[4];
    const void *data;  /* little-endian */
    size_t nbytes;
} rn_tensor_view;

/* After rn_quantizer_finish: the tensors, and the metadata (the float
 * file's, and resnet.quantization), i from 0. */
int rn_quantizer_tensor_count(const rn_quantizer *q);
int rn_quantizer_tensor(const rn_quantizer *q, int i, rn_tensor_view *t);
int rn_quantizer_meta_count(const rn_quantizer *q);
const char *rn_quantizer_meta(const rn_quantizer *q, int i, const char **value);

/* Numerically stable softmax of n values, in place. */
void rn_softmax(float *x, int n);

/* Indices of the k largest of x[0..n) in descending order of value, ties by
 * lower index. Writes min(k, n) indices and returns that count. */
int rn_topk(const float *x, int n, int k, int *idx);

#ifdef __cplusplus
}
#endif

#endif /* RESNET_H */
