/* PNG decoding with libpng, producing the pixels of PIL's Image.open(...).convert("RGB"). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image.h"
#include "rn_internal.h"

typedef struct png_src {
    const uint8_t *data;
    size_t len, pos;
    int status; /* RN_ERR_IMAGE_CORRUPT unless set before png_error */
    char msg[256];
} png_src;

static void on_read(png_structp png, png_bytep buf, size_t n)
{
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos)
        png_error(png, "truncated data (premature end of PNG file)");
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
}

static void on_error(png_structp png, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    rn_log(RN_LOG_DEBUG, "PNG: %s", msg);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One decoded row (after libpng's transforms: 8-bit samples, indices for
 * palette images) to RGB. Alpha is dropped, not composited, as PIL's
 * convert("RGB") does; palette tRNS is ignored the same way. */
static void to_rgb(const uint8_t *in, uint8_t *out, int w, int channels, int palette,
                   const uint8_t *pal)
{
    if (palette) {
        for (int x = 0; x < w; x++)
            memcpy(out + 3 * x, pal + 3 * in[x], 3);
    } else if (channels <= 2) {
        for (int x = 0; x < w; x++, in += channels)
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[0];
    } else if (channels == 4) {
        for (int x = 0; x < w; x++, in += 4)
            memcpy(out + 3 * x, in, 3);
    } else if (in != out) {
        memcpy(out, in, (size_t)w * 3);
    }
}

int rn_png_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* The limits come from IHDR, which must be the first chunk, before libpng
     * allocates anything for the image. */
    if (len < 33 || memcmp(data + 12, "IHDR", 4) != 0)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "PNG: %s",
                       len < 33 ? "truncated before the end of IHDR" : "IHDR is not first");
    uint32_t w32 = be32(data + 16), h32 = be32(data + 20);
    if (w32 == 0 || h32 == 0 || (uint64_t)w32 * h32 > (uint64_t)params->max_pixels)
        return rn_errf(err, errlen, RN_ERR_IMAGE_TOO_LARGE,
                       "PNG: %ux%u pixels, the limit is %lld and no side may be 0", w32, h32,
                       (long long)params->max_pixels);

    png_src src = {.data = data, .len = len, .status = RN_ERR_IMAGE_CORRUPT};
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    png_infop info = NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    if (!png || !(info = png_create_info_struct(png))) {
        png_destroy_read_struct(&png, NULL, NULL);
        return rn_errf(err, errlen, RN_ERR_NOMEM, "PNG: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(raw);
        free(rows);
        return rn_errf(err, errlen, src.status, "PNG: %s", src.msg);
    }
    png_set_read_fn(png, &src, on_read);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff); /* max_pixels is the limit */
    png_set_chunk_malloc_max(png, 16u << 20);         /* text chunks: no zlib bombs */
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    int palette = type == PNG_COLOR_TYPE_PALETTE;
    uint8_t pal[256 * 3] = {0}; /* indices past the PLTE read black */
    if (palette) {
        png_colorp p;
        int n = 0;
        if (!png_get_PLTE(png, info, &p, &n))
            png_error(png, "palette image without PLTE");
        for (int i = 0; i < n && i < 256; i++) {
            pal[3 * i] = p[i].red;
            pal[3 * i + 1] = p[i].green;
            pal[3 * i + 2] = p[i].blue;
        }
    }
    if (depth == 16)
        png_set_strip_16(png); /* the high byte, as PIL's ;16B unpackers */
    if (depth < 8) {
        png_set_packing(png);
        if (!palette)
            png_set_expand_gray_1_2_4_to_8(png); /* 0..15 -> 0..255 as PIL's L;4 */
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || rowbytes != (size_t)w * channels)
        png_error(png, "unexpected row layout");

    rgb = malloc((size_t)w * h * 3);
    src.status = RN_ERR_NOMEM; /* until the buffers are in place */
    if (!rgb)
        png_error(png, "out of memory for the image");
    if (passes > 1 && channels == 3) { /* interlaced RGB: libpng fills the output */
        rows = malloc(sizeof(png_bytep) * (size_t)h);
        if (!rows)
            png_error(png, "out of memory");
        for (int y = 0; y < h; y++)
            rows[y] = rgb + (size_t)y * w * 3;
        src.status = RN_ERR_IMAGE_CORRUPT;
        png_read_image(png, rows);
    } else if (passes > 1) { /* interlaced: the whole image, then convert */
        raw = malloc(rowbytes * h);
        rows = malloc(sizeof(png_bytep) * (size_t)h);
        if (!raw || !rows)
            png_error(png, "out of memory");
        for (int y = 0; y < h; y++)
            rows[y] = raw + rowbytes * y;
        src.status = RN_ERR_IMAGE_CORRUPT;
        png_read_image(png, rows);
        for (int y = 0; y < h; y++)
            to_rgb(rows[y], rgb + (size_t)y * w * 3, w, channels, palette, pal);
    } else {
        raw = malloc(rowbytes);
        if (!raw)
            png_error(png, "out of memory");
        src.status = RN_ERR_IMAGE_CORRUPT;
        for (int y = 0; y < h; y++) {
            uint8_t *o = rgb + (size_t)y * w * 3;
            png_bytep r = channels == 3 ? o : raw;
            png_read_row(png, r, NULL);
            to_rgb(r, o, w, channels, palette, pal);
        }
    }
    /* Like PIL, stop after the image data: chunks after it (and IEND) are not read. */
    png_destroy_read_struct(&png, &info, NULL);
    free(raw);
    free(rows);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return RN_OK;
}
