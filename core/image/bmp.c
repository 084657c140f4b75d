/* BMP decoding (our own reader), producing the pixels of PIL 9.4's BmpImagePlugin
 * followed by convert("RGB"): the same headers, bit depths, bitfield layouts
 * and RLE quirks, and the same refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "rn_internal.h"

#define BMP_RAW 0
#define BMP_RLE8 1
#define BMP_RLE4 2
#define BMP_BITFIELDS 3

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* How the bytes of one pixel map to R, G, B for the 16/24/32-bit layouts PIL
 * knows (its rawmodes BGR;15, BGR;16, BGR, BGRX, XBGR, ABGR, RGBA, BGRA). */
typedef struct layout {
    int bits;
    int r, g, b; /* byte index of each channel (24/32 bits) */
    int rgb565;  /* 16 bits: 1 for 5-6-5, 0 for 5-5-5 */
} layout;

static int pick_layout(int bits, int comp, const uint32_t m[4], layout *l)
{
    l->bits = bits;
    l->rgb565 = 0;
    if (comp == BMP_RAW) {
        /* BIT2MODE: 16 is BGR;15, 24 BGR, 32 BGRX */
        l->r = 2, l->g = 1, l->b = 0;
        return bits == 16 || bits == 24 || bits == 32;
    }
    if (bits == 32) {
        static const struct {
            uint32_t m[4];
            int r, g, b;
        } t[] = {
            {{0xff0000, 0xff00, 0xff, 0}, 2, 1, 0},                 /* BGRX */
            {{0xff000000, 0xff0000, 0xff00, 0}, 3, 2, 1},           /* XBGR */
            {{0xff000000, 0xff0000, 0xff00, 0xff}, 3, 2, 1},        /* ABGR */
            {{0xff, 0xff00, 0xff0000, 0xff000000}, 0, 1, 2},        /* RGBA */
            {{0xff0000, 0xff00, 0xff, 0xff000000}, 2, 1, 0},        /* BGRA */
            {{0, 0, 0, 0}, 2, 1, 0},                                /* BGRA */
        };
        for (size_t i = 0; i < RN_ARRAY_LEN(t); i++)
            if (!memcmp(t[i].m, m, sizeof t[i].m)) {
                l->r = t[i].r, l->g = t[i].g, l->b = t[i].b;
                return 1;
            }
        return 0;
    }
    if (bits == 24 && m[0] == 0xff0000 && m[1] == 0xff00 && m[2] == 0xff) {
        l->r = 2, l->g = 1, l->b = 0;
        return 1;
    }
    if (bits == 16 && m[0] == 0xf800 && m[1] == 0x7e0 && m[2] == 0x1f) {
        l->rgb565 = 1;
        return 1;
    }
    return bits == 16 && m[0] == 0x7c00 && m[1] == 0x3e0 && m[2] == 0x1f;
}

/* One row of true-colour pixels, as PIL's unpackers scale them. */
static void true_row(const uint8_t *in, uint8_t *out, int w, const layout *l)
{
    if (l->bits == 16) {
        for (int x = 0; x < w; x++, in += 2, out += 3) {
            uint32_t v = le16(in);
            if (l->rgb565) {
                out[0] = (uint8_t)(((v >> 11) & 31) * 255 / 31);
                out[1] = (uint8_t)(((v >> 5) & 63) * 255 / 63);
            } else {
                out[0] = (uint8_t)(((v >> 10) & 31) * 255 / 31);
                out[1] = (uint8_t)(((v >> 5) & 31) * 255 / 31);
            }
            out[2] = (uint8_t)((v & 31) * 255 / 31);
        }
        return;
    }
    int step = l->bits / 8;
    for (int x = 0; x < w; x++, in += step, out += 3) {
        out[0] = in[l->r];
        out[1] = in[l->g];
        out[2] = in[l->b];
    }
}

/* PIL's BmpRleDecoder, quirks included: encoded runs are cut at the end of
 * the row, absolute runs are not (they spill into the next row); an odd
 * RLE4 absolute count yields one pixel fewer than it advances x; a delta
 * skips two bytes before reading its (right, up) pair; padding aligns to the
 * file offset. The result is w*h indices, the bottom row first, or an error
 * when the data ends before every pixel is set (PIL: "not enough image data"). */
static int rle_decode(const uint8_t *data, size_t len, size_t pos, int rle4, int w, int h,
                      uint8_t *idx, char *err, size_t errlen)
{
    size_t total = (size_t)w * h, n = 0; /* n: len(data) in PIL */
    size_t x = 0;
#define PUT(v)                                                                                     \
    do {                                                                                           \
        if (n < total)                                                                             \
            idx[n] = (uint8_t)(v);                                                                 \
        n++;                                                                                       \
    } while (0)
    while (n < total) {
        if (pos + 2 > len)
            break;
        unsigned count = data[pos], byte = data[pos + 1];
        pos += 2;
        if (count) {
            if (x + count > (size_t)w)
                count = x < (size_t)w ? (unsigned)(w - x) : 0;
            for (unsigned i = 0; i < count; i++)
                PUT(rle4 ? (i % 2 ? byte & 15 : byte >> 4) : byte);
            x += count;
        } else if (byte == 0) { /* end of line */
            while (n % (size_t)w)
                PUT(0);
            x = 0;
        } else if (byte == 1) { /* end of bitmap */
            break;
        } else if (byte == 2) { /* delta */
            if (pos + 2 > len)
                break;
            pos += 2;
            if (pos + 2 > len)
                return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                               "BMP: RLE delta at offset %zu is truncated", pos - 4);
            size_t right = data[pos], up = data[pos + 1];
            pos += 2;
            size_t end = n + right + up * (size_t)w;
            while (n < end && n < total)
                PUT(0);
            n = end;
            x = n % (size_t)w;
        } else { /* absolute run of `byte` pixels */
            size_t nbytes = rle4 ? byte / 2 : byte;
            size_t got = RN_MIN(nbytes, len - pos);
            for (size_t i = 0; i < got; i++) {
                uint8_t b = data[pos + i];
                if (rle4) {
                    PUT(b >> 4);
                    PUT(b & 15);
                } else {
                    PUT(b);
                }
            }
            pos += got;
            if (got < nbytes)
                break;
            x += byte;
            if (pos % 2)
                pos++;
        }
    }
#undef PUT
    if (n < total)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "BMP: %s data ends after %zu of %zu pixels (offset %zu)",
                       rle4 ? "RLE4" : "RLE8", n, total, RN_MIN(pos, len));
    return RN_OK;
}

int rn_bmp_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len < 18)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "BMP: truncated file header (%zu bytes)", len);
    uint32_t offset = le32(data + 10), hsize = le32(data + 14);
    if (hsize != 12 && hsize != 40 && hsize != 64 && hsize != 108 && hsize != 124)
        return rn_errf(err, errlen, hsize < 12 ? RN_ERR_IMAGE_CORRUPT : RN_ERR_UNSUPPORTED,
                       "BMP: unsupported header size %u (12, 40, 64, 108 and 124 are read)",
                       hsize);
    if (len < 14 + (size_t)hsize)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "BMP: truncated in the %u-byte info header (%zu bytes)", hsize, len);
    const uint8_t *h = data + 18;
    uint64_t w, ht;
    int bits, bottom_up = 1;
    uint32_t comp = BMP_RAW, colors = 0, masks[4] = {0, 0, 0, 0};
    size_t pos = 14 + (size_t)hsize, pad = 4;
    if (hsize == 12) { /* OS/2 BITMAPCOREHEADER: 16-bit sizes, 3-byte palette */
        w = le16(h);
        ht = le16(h + 2);
        bits = (int)le16(h + 6);
        pad = 3;
    } else {
        uint32_t h32 = le32(h + 4);
        /* PIL reads both as unsigned; a height whose top byte is 0xff is
         * negative: a top-down image */
        bottom_up = h[7] != 0xff;
        w = le32(h);
        ht = bottom_up ? h32 : (uint64_t)0x100000000 - h32;
        bits = (int)le16(h + 10);
        comp = le32(h + 12);
        colors = le32(h + 28);
        if (comp == BMP_BITFIELDS) {
            if (hsize >= 56) {
                for (int i = 0; i < 4; i++)
                    masks[i] = le32(h + 36 + 4 * i);
            } else {
                if (len < pos + 12)
                    return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                                   "BMP: truncated in the bitfield masks");
                for (int i = 0; i < 3; i++)
                    masks[i] = le32(data + pos + 4 * i);
                pos += 12;
            }
        }
    }
    int rc = rn_image_check_size("BMP", w, ht, params, err, errlen);
    if (rc < 0)
        return rc;
    if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
        return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                       "BMP: %d bits per pixel (1, 4, 8, 16, 24 and 32 are read)", bits);
    if (!colors)
        colors = bits <= 8 ? 1u << bits : 0;
    if (offset == 14 + hsize && bits <= 8) /* offset points at the palette: skip it (PIL) */
        offset += 4 * colors;
    layout lay = {0};
    if (comp == BMP_BITFIELDS || (comp == BMP_RAW && bits > 8)) {
        if (!pick_layout(bits, (int)comp, masks, &lay))
            return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                           "BMP: %d-bit bitfields r=%#x g=%#x b=%#x a=%#x are not a layout PIL "
                           "reads",
                           bits, masks[0], masks[1], masks[2], masks[3]);
    } else if (comp == BMP_RLE8 || comp == BMP_RLE4) {
        if (bits != (comp == BMP_RLE8 ? 8 : 4))
            return rn_errf(err, errlen, RN_ERR_UNSUPPORTED, "BMP: %s with %d bits per pixel",
                           comp == BMP_RLE8 ? "RLE8" : "RLE4", bits);
    } else if (comp != BMP_RAW) {
        return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                       "BMP: compression %u (%s) is not supported", comp,
                       comp == 4 ? "JPEG" : comp == 5 ? "PNG" : "unknown");
    }
    /* The palette: entries past the file's (or past `colors`) keep the gray
     * ramp PIL's palettes start from. */
    uint8_t pal[256 * 3];
    for (int i = 0; i < 256; i++)
        pal[3 * i] = pal[3 * i + 1] = pal[3 * i + 2] = (uint8_t)i;
    if (bits <= 8) {
        if (colors > 65536)
            return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                           "BMP: palette of %u colors (at most 65536)", colors);
        size_t n = RN_MIN((size_t)colors, (len - RN_MIN(len, pos)) / pad);
        for (size_t i = 0; i < n && i < 256; i++) {
            const uint8_t *p = data + pos + i * pad;
            pal[3 * i] = p[2];
            pal[3 * i + 1] = p[1];
            pal[3 * i + 2] = p[0];
        }
        pos = RN_MIN(len, pos + pad * (size_t)colors);
    }
    size_t start = offset ? offset : pos;
    if (start > len)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "BMP: pixel data offset %zu is past the end of the file (%zu bytes)",
                       start, len);
    int iw = (int)w, ih = (int)ht;
    size_t stride = (((size_t)w * bits + 31) >> 3) & ~(size_t)3;
    size_t rowbytes = ((size_t)w * bits + 7) / 8;
    uint8_t *idx = NULL;
    if (comp == BMP_RAW || comp == BMP_BITFIELDS) {
        /* the rows promised must be in the file before anything is allocated */
        size_t need = stride * (ht - 1) + rowbytes;
        if (len - start < need)
            return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                           "BMP: truncated pixel data: %dx%d at %d bits needs %zu bytes from "
                           "offset %zu, the file has %zu",
                           iw, ih, bits, need, start, len - start);
    } else {
        /* an RLE pair makes at most 255 pixels: refuse a bomb early */
        if ((uint64_t)(len - start) * 255 + 255 < w * ht)
            return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                           "BMP: %zu bytes of RLE data cannot hold %dx%d pixels", len - start,
                           iw, ih);
        idx = malloc((size_t)w * ht);
        if (!idx)
            return rn_errf(err, errlen, RN_ERR_NOMEM, "BMP: out of memory for %dx%d", iw, ih);
        rc = rle_decode(data, len, start, comp == BMP_RLE4, iw, ih, idx, err, errlen);
        if (rc < 0) {
            free(idx);
            return rc;
        }
    }
    uint8_t *rgb = rn_image_alloc(iw, ih);
    if (!rgb) {
        free(idx);
        return rn_errf(err, errlen, RN_ERR_NOMEM, "BMP: out of memory for %dx%d", iw, ih);
    }
    for (int y = 0; y < ih; y++) {
        int src_row = bottom_up ? ih - 1 - y : y;
        uint8_t *o = rgb + (size_t)y * iw * 3;
        if (idx) {
            const uint8_t *r = idx + (size_t)src_row * iw;
            for (int x = 0; x < iw; x++)
                memcpy(o + 3 * x, pal + 3 * r[x], 3);
            continue;
        }
        const uint8_t *r = data + start + stride * (size_t)src_row;
        if (bits > 8) {
            true_row(r, o, iw, &lay);
            continue;
        }
        for (int x = 0; x < iw; x++) {
            int v = bits == 8   ? r[x]
                    : bits == 4 ? (r[x / 2] >> (x % 2 ? 0 : 4)) & 15
                                : (r[x / 8] >> (7 - x % 8)) & 1;
            memcpy(o + 3 * x, pal + 3 * v, 3);
        }
    }
    free(idx);
    out->width = iw;
    out->height = ih;
    out->rgb = rgb;
    return RN_OK;
}
