/* TIFF decoding with libtiff: the first image (IFD0) as PIL 9.4's TiffImagePlugin
 * reads it, then convert("RGB"). 8-bit gray, gray+alpha, RGB, RGBA and palette,
 * in strips or tiles, uncompressed, LZW, Deflate or PackBits; anything else is
 * refused as unsupported. The IFD chain and every strip or tile are checked
 * against the file before libtiff decodes a byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

#include "image.h"
#include "rn_internal.h"

#define TIFF_MAX_IFDS 256 /* a longer chain is not walked further */

typedef struct tsrc {
    const uint8_t *data;
    size_t len;
    uint64_t pos;
    char msg[200];
} tsrc;

static tmsize_t t_read(thandle_t h, void *buf, tmsize_t n)
{
    tsrc *s = (tsrc *)h;
    if (n < 0 || s->pos >= s->len)
        return 0;
    size_t k = RN_MIN((size_t)n, s->len - (size_t)s->pos);
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    return (tmsize_t)k;
}

static tmsize_t t_write(thandle_t h, void *buf, tmsize_t n)
{
    (void)h, (void)buf, (void)n;
    return 0;
}

static toff_t t_seek(thandle_t h, toff_t off, int whence)
{
    tsrc *s = (tsrc *)h;
    uint64_t base = whence == SEEK_CUR ? s->pos : whence == SEEK_END ? s->len : 0;
    s->pos = base + off;
    return s->pos;
}

static int t_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t t_size(thandle_t h)
{
    return ((tsrc *)h)->len;
}

/* The whole file is "mapped": libtiff reads strips straight from it. */
static int t_map(thandle_t h, void **base, toff_t *size)
{
    tsrc *s = (tsrc *)h;
    *base = (void *)s->data;
    *size = s->len;
    return 1;
}

static void t_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h, (void)base, (void)size;
}

/* libtiff's first error for this handle becomes the message; warnings are
 * dropped. Per handle, so concurrent decodes do not share a buffer. */
static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    tsrc *s = user;
    if (!s->msg[0]) {
        char m[160];
        vsnprintf(m, sizeof m, fmt, ap);
        snprintf(s->msg, sizeof s->msg, "%s%s%s", module ? module : "", module ? ": " : "", m);
    }
    return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif, (void)user, (void)module, (void)fmt, (void)ap;
    return 1;
}

static uint64_t rd(const uint8_t *p, int n, int be)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

/* IFD0's strips or tiles as the file declares them (libtiff quietly
 * re-estimates byte counts it finds bogus): each inside the file. */
static int check_striles(const uint8_t *d, size_t len, uint64_t off, int be, int big, char *err,
                         size_t errlen)
{
    size_t cw = big ? 8 : 2, ew = big ? 20 : 12, vw = big ? 8 : 4;
    uint64_t count = rd(d + off, (int)cw, be);
    const uint8_t *arr[2] = {NULL, NULL};
    int size[2] = {0, 0};
    uint64_t n[2] = {0, 0};
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *e = d + off + cw + i * ew;
        unsigned tag = (unsigned)rd(e, 2, be), type = (unsigned)rd(e + 2, 2, be);
        int k = tag == 273 || tag == 324 ? 0 : tag == 279 || tag == 325 ? 1 : -1;
        if (k < 0)
            continue;
        int sz = type == 3 ? 2 : type == 4 ? 4 : type == 16 ? 8 : 0;
        uint64_t cnt = big ? rd(e + 4, 8, be) : rd(e + 4, 4, be);
        if (!sz || cnt == 0)
            return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                           "TIFF: tag %u has type %u and %llu values", tag, type,
                           (unsigned long long)cnt);
        if (cnt > len / (uint64_t)sz)
            return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                           "TIFF: tag %u declares %llu values, more than the file holds", tag,
                           (unsigned long long)cnt);
        const uint8_t *v = e + 4 + vw;
        if (cnt * (uint64_t)sz > vw) {
            uint64_t at = rd(v, (int)vw, be);
            if (at > len || len - at < cnt * (uint64_t)sz)
                return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                               "TIFF: the %llu values of tag %u at offset %llu are past the end "
                               "of the file (%zu bytes)",
                               (unsigned long long)cnt, tag, (unsigned long long)at, len);
            v = d + at;
        }
        arr[k] = v, size[k] = sz, n[k] = cnt;
    }
    if (!arr[0] || !arr[1])
        return RN_OK; /* libtiff says what is missing */
    for (uint64_t i = 0; i < n[0] && i < n[1]; i++) {
        uint64_t o = rd(arr[0] + i * size[0], size[0], be);
        uint64_t c = rd(arr[1] + i * size[1], size[1], be);
        if (o > len || c > len - o)
            return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                           "TIFF: strip or tile %llu of %llu (offset %llu, %llu bytes) ends past "
                           "the file (%zu bytes)",
                           (unsigned long long)i, (unsigned long long)n[0],
                           (unsigned long long)o, (unsigned long long)c, len);
    }
    return RN_OK;
}

/* Walk the IFD chain: each IFD inside the file, and no loop. */
static int check_ifds(const uint8_t *d, size_t len, char *err, size_t errlen)
{
    int be = d[0] == 'M', big = rd(d + 2, 2, be) == 43;
    if (big && len < 16)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "TIFF: truncated BigTIFF header");
    uint64_t seen[TIFF_MAX_IFDS];
    uint64_t off = big ? rd(d + 8, 8, be) : rd(d + 4, 4, be);
    for (int n = 0; off && n < TIFF_MAX_IFDS; n++) {
        for (int i = 0; i < n; i++)
            if (seen[i] == off)
                return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                               "TIFF: IFD loop: IFD %d at offset %llu is IFD %d again", n,
                               (unsigned long long)off, i);
        seen[n] = off;
        size_t cw = big ? 8 : 2, ew = big ? 20 : 12, nw = big ? 8 : 4;
        if (off > len || len - off < cw)
            return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                           "TIFF: IFD %d at offset %llu is past the end of the file (%zu bytes)",
                           n, (unsigned long long)off, len);
        uint64_t count = rd(d + off, (int)cw, be);
        if (count > (len - off - cw) / ew || (len - off - cw) - count * ew < nw) {
            if (n == 0)
                return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                               "TIFF: IFD 0 at offset %llu declares %llu entries, past the end "
                               "of the file (%zu bytes)",
                               (unsigned long long)off, (unsigned long long)count, len);
            break; /* a cut chain after the first image: PIL reads only IFD 0 */
        }
        if (n == 0) {
            int rc = check_striles(d, len, off, be, big, err, errlen);
            if (rc < 0)
                return rc;
        }
        off = rd(d + off + cw + count * ew, (int)nw, be);
    }
    return RN_OK;
}

static const char *compression_name(int c)
{
    switch (c) {
    case COMPRESSION_CCITTRLE: return "CCITT RLE";
    case COMPRESSION_CCITTFAX3: return "CCITT Group 3";
    case COMPRESSION_CCITTFAX4: return "CCITT Group 4";
    case COMPRESSION_OJPEG: return "old-style JPEG";
    case COMPRESSION_JPEG: return "JPEG";
    case COMPRESSION_LZMA: return "LZMA";
    case COMPRESSION_ZSTD: return "ZSTD";
    case COMPRESSION_WEBP: return "WebP";
    case COMPRESSION_JBIG: return "JBIG";
    default: return "unknown";
    }
}

/* What PIL's OPEN_INFO maps this layout to, as far as RGB is concerned. */
enum tkind { K_GRAY, K_GRAY_INV, K_RGB, K_RGBA_ASSOC, K_PAL };

int rn_tiff_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len < 8)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "TIFF: truncated header (%zu bytes)",
                       len);
    int rc = check_ifds(data, len, err, errlen);
    if (rc < 0)
        return rc;
    tsrc src = {.data = data, .len = len};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "TIFF: out of memory");
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, &src);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, &src);
    /* no single allocation past the pixel limit's worth (the strip buffer) */
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)RN_MIN(params->max_pixels * 8 + 65536,
                                                               (int64_t)1 << 40));
    TIFF *tif = TIFFClientOpenExt("TIFF", "rm", (thandle_t)&src, t_read, t_write, t_seek, t_close,
                                  t_size, t_map, t_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "TIFF: %s",
                       src.msg[0] ? src.msg : "cannot read the first IFD");
    uint8_t *buf = NULL, *rgb = NULL;
    uint32_t w = 0, h = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    rc = rn_image_check_size("TIFF", w, h, params, err, errlen);
    if (rc < 0)
        goto out;
    uint16_t bps = 1, spp = 1, photo = 0, comp = 1, planar = 1, fill = 1, sfmt = 1;
    uint16_t nextra = 0, *extra = NULL;
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo); /* PIL's default: 0, WhiteIsZero */
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_FILLORDER, &fill);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sfmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
    if (comp != COMPRESSION_NONE && comp != COMPRESSION_LZW && comp != COMPRESSION_ADOBE_DEFLATE &&
        comp != COMPRESSION_DEFLATE && comp != COMPRESSION_PACKBITS) {
        rc = rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                     "TIFF: compression %u (%s) is not supported (none, LZW, Deflate and "
                     "PackBits are)",
                     comp, compression_name(comp));
        goto out;
    }
    enum tkind kind;
    int ok = bps == 8 && sfmt == SAMPLEFORMAT_UINT && fill == FILLORDER_MSB2LSB &&
             (planar == PLANARCONFIG_CONTIG || spp == 1);
    int e0 = nextra ? extra[0] : -1;
    if (photo <= PHOTOMETRIC_MINISBLACK && spp == 1)
        kind = photo == PHOTOMETRIC_MINISWHITE ? K_GRAY_INV : K_GRAY;
    else if (photo == PHOTOMETRIC_MINISBLACK && spp == 2 && e0 == EXTRASAMPLE_UNASSALPHA)
        kind = K_GRAY; /* LA */
    else if (photo == PHOTOMETRIC_RGB && spp == 3 && nextra == 0)
        kind = K_RGB;
    else if (photo == PHOTOMETRIC_RGB && spp >= 4 && spp <= 6 &&
             (nextra == spp - 3 || (spp == 4 && nextra == 0)))
        kind = e0 == EXTRASAMPLE_ASSOCALPHA ? K_RGBA_ASSOC : K_RGB; /* RGBX, RGBA, RGBa */
    else if (photo == PHOTOMETRIC_PALETTE && (spp == 1 || (spp == 2 && e0 == 2)))
        kind = K_PAL;
    else
        ok = 0;
    if (!ok) {
        rc = rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                     "TIFF: photometric %u with %u samples of %u bits (format %u, fill order %u, "
                     "planar %u) is not supported: 8-bit gray, RGB, RGBA and palette are",
                     photo, spp, bps, sfmt, fill, planar);
        goto out;
    }
    uint8_t pal[768];
    if (kind == K_PAL) {
        uint16_t *r, *g, *b;
        if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &r, &g, &b)) {
            rc = rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "TIFF: palette image without a "
                                                            "colormap");
            goto out;
        }
        for (int i = 0; i < 256; i++) { /* PIL: value // 256 */
            pal[3 * i] = (uint8_t)(r[i] >> 8);
            pal[3 * i + 1] = (uint8_t)(g[i] >> 8);
            pal[3 * i + 2] = (uint8_t)(b[i] >> 8);
        }
    }
    /* every strip or tile inside the file, before decoding any */
    int tiled = TIFFIsTiled(tif);
    uint32_t n = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    if (n == 0) {
        rc = rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "TIFF: no %s", tiled ? "tiles" : "strips");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        int e = 0;
        uint64_t off = TIFFGetStrileOffsetWithErr(tif, i, &e);
        uint64_t cnt = TIFFGetStrileByteCountWithErr(tif, i, &e);
        if (e || off > len || cnt > len - off || cnt == 0) {
            rc = rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                         "TIFF: %s %u of %u (offset %llu, %llu bytes) %s the file (%zu bytes)",
                         tiled ? "tile" : "strip", i, n, (unsigned long long)off,
                         (unsigned long long)cnt, cnt == 0 && !e ? "is empty in" : "ends past",
                         len);
            goto out;
        }
    }
    tmsize_t bsize = tiled ? TIFFTileSize(tif) : TIFFStripSize(tif);
    uint32_t tw = (uint32_t)w, th = 0;
    if (tiled) {
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    } else {
        th = h;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &th);
        th = RN_MIN(th, h);
    }
    if (bsize <= 0 || tw == 0 || th == 0 || (uint64_t)tw * th * spp > (uint64_t)bsize) {
        rc = rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "TIFF: bad %s size %ux%u",
                     tiled ? "tile" : "strip", tw, th);
        goto out;
    }
    buf = malloc((size_t)bsize);
    rgb = rn_image_alloc((int)w, (int)h);
    if (!buf || !rgb) {
        rc = rn_errf(err, errlen, RN_ERR_NOMEM, "TIFF: out of memory for %ux%u", w, h);
        goto out;
    }
    uint32_t across = tiled ? (w + tw - 1) / tw : 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t x0 = tiled ? i % across * tw : 0;
        uint32_t y0 = tiled ? i / across * th : i * th;
        if (y0 >= h)
            break;
        tmsize_t got = tiled ? TIFFReadEncodedTile(tif, i, buf, bsize)
                             : TIFFReadEncodedStrip(tif, i, buf, bsize);
        uint32_t rows = RN_MIN(th, h - y0), cols = RN_MIN(tw, w - x0);
        if (got < 0 || (uint64_t)got < ((uint64_t)(rows - 1) * tw + cols) * spp) {
            rc = rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT, "TIFF: %s %u: %s",
                         tiled ? "tile" : "strip", i,
                         src.msg[0] ? src.msg : "truncated or corrupt data");
            goto out;
        }
        for (uint32_t y = 0; y < rows; y++) {
            const uint8_t *p = buf + (size_t)y * tw * spp;
            uint8_t *o = rgb + ((size_t)(y0 + y) * w + x0) * 3;
            for (uint32_t x = 0; x < cols; x++, p += spp, o += 3) {
                switch (kind) {
                case K_GRAY: o[0] = o[1] = o[2] = p[0]; break;
                case K_GRAY_INV: o[0] = o[1] = o[2] = (uint8_t)(255 - p[0]); break;
                case K_PAL: memcpy(o, pal + 3 * p[0], 3); break;
                case K_RGB: memcpy(o, p, 3); break;
                case K_RGBA_ASSOC: /* PIL's RGBa unpacker: un-premultiplied */
                    for (int c = 0; c < 3; c++)
                        o[c] = p[3] == 0 ? 0 : (uint8_t)RN_MIN(255, p[c] * 255 / p[3]);
                    break;
                }
            }
        }
    }
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = rgb;
    rgb = NULL;
    /* PIL's TiffImageFile.load_end turns the image by its orientation tag,
     * always: so did the pixels a model was trained on */
    rc = rn_image_orient(out, rn_exif_tiff_orientation(data, len), err, errlen);
    if (rc < 0)
        rn_image_free(out);
out:
    free(buf);
    free(rgb);
    TIFFClose(tif);
    return rc;
}
