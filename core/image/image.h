/* Images: bytes in, a normalised tensor out. Sniffing, the decoders (JPEG,
 * PNG, WebP, GIF, BMP, TIFF), EXIF orientation, the antialiased resize and
 * the preprocessing of the model's training pipeline; the public side is
 * rn_image_* in resnet.h. This folder knows nothing of the model, the engine
 * or weights files. May use: core/rn_internal.h. */
#ifndef RN_IMAGE_H
#define RN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

/* Decoders (jpeg.c, png.c). Same contract as rn_image_decode; the
 * format is already known from the magic bytes. The JPEG decoder may return a
 * DCT-scaled image; *full_w and *full_h always receive the declared size.
 * With for_pp (and no DCT scaling), the JPEG decoder may fill only the pixels
 * rn_preprocess_scaled(out, *full_w, *full_h, for_pp) reads (plus a margin;
 * the rest of out->rgb is left unwritten): it skips the IDCT, upsampling and
 * colour conversion of the columns and rows around them, and still
 * entropy-decodes every row, so a corrupt or truncated file fails as it does
 * without for_pp. */
int rn_jpeg_decode(const uint8_t *data, size_t len, const rn_image_params *params,
                   const rn_preprocess *for_pp, rn_image *out, int *full_w, int *full_h, char *err,
                   size_t errlen);
int rn_png_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                  char *err, size_t errlen);
/* webp.c, gif.c, bmp.c, tiff.c: the same contract, each
 * giving the pixels of PIL 9.4's Image.open(...).convert("RGB"). */
int rn_webp_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                   char *err, size_t errlen);
int rn_gif_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                  char *err, size_t errlen);
int rn_bmp_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                  char *err, size_t errlen);
int rn_tiff_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                   char *err, size_t errlen);

/* The header's declared size against params->max_pixels, before any pixel
 * memory: RN_OK, or RN_ERR_IMAGE_TOO_LARGE naming fmt and the size (a zero
 * side included). */
int rn_image_check_size(const char *fmt, uint64_t w, uint64_t h, const rn_image_params *params,
                        char *err, size_t errlen);

/* A w x h RGB buffer (w*h*3 bytes, overflow-checked), or NULL. */
uint8_t *rn_image_alloc(int w, int h);

/* core/image/exif.c: the EXIF orientation (1..8) that PIL 9.4's ImageOps.exif_transpose
 * would apply to this JPEG, PNG, WebP or TIFF file, 1 when there is none or it
 * is unreadable. Reads only the metadata, never the pixels. */
enum rn_image_kind { RN_KIND_JPEG, RN_KIND_PNG, RN_KIND_WEBP, RN_KIND_GIF, RN_KIND_BMP,
                     RN_KIND_TIFF };
int rn_exif_orientation(const uint8_t *data, size_t len, int kind);
/* The orientation tag (274) of the TIFF structure at tiff[0..len) (its IFD0),
 * as PIL's Exif reads it; 1 when absent or not a single integer in 1..8. */
int rn_exif_tiff_orientation(const uint8_t *tiff, size_t len);
/* img transposed as PIL's Image.transpose for EXIF orientation o (2..8;
 * 1 leaves it). RN_OK or RN_ERR_NOMEM; img is unchanged on failure. */
int rn_image_orient(rn_image *img, int o, char *err, size_t errlen);

/* Pillow 9.4's ImagingResample(BILINEAR) of the w x h RGB image src to
 * out_w x out_h, but only the window [x0, x0+cw) x [y0, y0+ch) of the result
 * is computed (bit-identical to cropping Pillow's full result). The window is
 * written as RGB rows of dst_stride bytes into dst. Returns RN_OK, or
 * RN_ERR_NOMEM / RN_ERR_INVALID_ARG with a message. */
int rn_resize_window(const uint8_t *src, int w, int h, int out_w, int out_h, int x0, int y0, int cw,
                     int ch, uint8_t *dst, size_t dst_stride, char *err, size_t errlen);

/* The table of rn_resize_window's passes (resize.h): isa is RN_ISA_AVX512,
 * RN_ISA_AVX2 or RN_ISA_C (enum rn_isa), or RN_ISA_AUTO: the RN_ISA
 * environment variable's table when this CPU runs it, else the best one (the
 * default). Every table gives the same bytes; the choice is for tests and
 * benchmarks, made before resizes run. RN_OK, or RN_ERR_UNSUPPORTED when this
 * CPU cannot run isa. */
int rn_resize_set_isa(int isa);
/* The name of the table resizes run on: "avx512", "avx2" or "c". */
const char *rn_resize_isa_name(void);
/* The input samples [*lo, *hi) that outputs [o0, o0+count) of an in_size ->
 * out_size resample read (rn_resize_window's taps). */
void rn_resize_span(int in_size, int out_size, int o0, int count, int *lo, int *hi);

/* The pixels of a full_w x full_h image that rn_preprocess_scaled reads for
 * pp (the crop's window through the resize's taps): columns [rect[0],
 * rect[1]), rows [rect[2], rect[3]). The whole image where pp is invalid. */
void rn_preprocess_source_rect(int full_w, int full_h, const rn_preprocess *pp, int rect[4]);

/* rn_image_preprocess for an image that stands for a larger one: geometry
 * (resize, crop) is computed from full_w x full_h, the pixels come from img
 * (a DCT-scaled decode of it). full_w == img->width is the plain case. */
int rn_preprocess_scaled(const rn_image *img, int full_w, int full_h, const rn_preprocess *pp,
                         float *out, char *err, size_t errlen);

#endif
