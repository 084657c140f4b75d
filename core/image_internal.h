/* Private declarations shared by the image files of libresnet (decode, resize). */
#ifndef RN_IMAGE_INTERNAL_H
#define RN_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

/* Decoders (core/jpeg.c, core/png.c). Same contract as rn_image_decode; the
 * format is already known from the magic bytes. The JPEG decoder may return a
 * DCT-scaled image; *full_w and *full_h always receive the declared size. */
int rn_jpeg_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                   int *full_w, int *full_h, char *err, size_t errlen);
int rn_png_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                  char *err, size_t errlen);

/* Pillow 9.4's ImagingResample(BILINEAR) of the w x h RGB image src to
 * out_w x out_h, but only the window [x0, x0+cw) x [y0, y0+ch) of the result
 * is computed (bit-identical to cropping Pillow's full result). The window is
 * written as RGB rows of dst_stride bytes into dst. Returns RN_OK, or
 * RN_ERR_NOMEM / RN_ERR_INVALID_ARG with a message. */
int rn_resize_window(const uint8_t *src, int w, int h, int out_w, int out_h, int x0, int y0, int cw,
                     int ch, uint8_t *dst, size_t dst_stride, char *err, size_t errlen);

/* rn_image_preprocess for an image that stands for a larger one: geometry
 * (resize, crop) is computed from full_w x full_h, the pixels come from img
 * (a DCT-scaled decode of it). full_w == img->width is the plain case. */
int rn_preprocess_scaled(const rn_image *img, int full_w, int full_h, const rn_preprocess *pp,
                         float *out, char *err, size_t errlen);

#endif
