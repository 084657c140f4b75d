/* The resize's two passes, one table of them per ISA (resize.c: plain C, the
 * reference; resize_x86.c: AVX2 and AVX-512). Every table computes Pillow's
 * integer sums exactly: int32 products of a byte and a 22-bit coefficient,
 * summed in int32 (no order can overflow: the coefficients of a tap window sum
 * to 2^22), the same arithmetic shift and clamp. So every table writes the
 * same bytes; tests/unit/test_image.c checks it on every table the CPU runs. */
#ifndef RN_IMAGE_RESIZE_H
#define RN_IMAGE_RESIZE_H

#include <stddef.h>
#include <stdint.h>

/* Pillow: 8 bits for the result, two for overflow, the rest for the fraction. */
#define RN_RESIZE_PRECISION_BITS (32 - 8 - 2)

/* One axis of the resample: for each output index i of the window, taps
 * k[i*ksize .. +n[i]) applied to input samples starting at first[i]. */
typedef struct rn_resize_axis {
    int ksize;
    int *first; /* (count) first input index */
    int *n;     /* (count) number of taps */
    int32_t *k; /* (count, ksize) fixed-point coefficients, zero past n[i] */
} rn_resize_axis;

typedef struct rn_resize_kernels {
    const char *name;
    /* Horizontal pass: rows of src (stride src_stride) -> rows of cw RGB
     * pixels. Reads no byte outside the taps (a JPEG decoded around the crop
     * leaves the others unwritten). 0, or -1 when out of memory. */
    int (*pass_h)(const uint8_t *src, size_t src_stride, int rows, const rn_resize_axis *ax,
                  int cw, uint8_t *dst, size_t dst_stride);
    /* Vertical pass: output row yy of the window is the weighted sum of the
     * rows first[yy] - row0 .. of src, bytes bytes each. 0, or -1 when out of
     * memory. */
    int (*pass_v)(const uint8_t *src, size_t src_stride, int row0, const rn_resize_axis *ax,
                  int ch, int bytes, uint8_t *dst, size_t dst_stride);
} rn_resize_kernels;

extern const rn_resize_kernels rn_resize_c;
#if defined(__x86_64__)
extern const rn_resize_kernels rn_resize_avx2, rn_resize_avx512;
#endif

#endif
