/* EXIF orientation: where PIL 9.4's Image.getexif() finds tag 274 in a JPEG,
 * PNG, WebP or TIFF file, and ImageOps.exif_transpose's transposes. Only
 * metadata is read here; the decoders never see it. */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "image.h"
#include "rn_internal.h"

#define TAG_ORIENTATION 274
#define TEXT_MAX (1u << 20) /* an inflated PNG text chunk */

static uint64_t rd(const uint8_t *p, int n, int be)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

/* Tag 274 of IFD0, read entry by entry as PIL's ImageFileDirectory does: a
 * cut IFD keeps the entries read so far, a later duplicate wins, and only a
 * single integer counts (PIL's exif_transpose looks the value up as is). */
int rn_exif_tiff_orientation(const uint8_t *t, size_t len)
{
    if (len >= 6 && !memcmp(t, "Exif\0\0", 6))
        t += 6, len -= 6;
    if (len < 8 || !((t[0] == 'I' && t[1] == 'I') || (t[0] == 'M' && t[1] == 'M')))
        return 1;
    int be = t[0] == 'M';
    uint64_t magic = rd(t + 2, 2, be);
    int big = magic == 43;
    if (magic != 42 && !(big && len >= 16))
        return 1;
    uint64_t off = big ? rd(t + 8, 8, be) : rd(t + 4, 4, be);
    size_t cw = big ? 8 : 2, ew = big ? 20 : 12, vw = big ? 8 : 4;
    if (off > len || len - off < cw)
        return 1;
    uint64_t count = rd(t + off, (int)cw, be);
    int o = 1;
    const uint8_t *e = t + off + cw;
    for (uint64_t i = 0; i < count && (size_t)(e - t) + ew <= len; i++, e += ew) {
        if (rd(e, 2, be) != TAG_ORIENTATION)
            continue;
        int type = (int)rd(e + 2, 2, be);
        uint64_t n = big ? rd(e + 4, 8, be) : rd(e + 4, 4, be);
        int size = type == 1 || type == 6 ? 1 : type == 3 || type == 8 ? 2
                   : type == 4 || type == 9 ? 4 : type == 16 ? 8 : 0;
        if (!size || n != 1 || (size_t)size > vw) {
            o = 1; /* not a single integer: exif_transpose does nothing */
            continue;
        }
        int64_t v = (int64_t)rd(e + 4 + vw, size, be);
        o = v >= 1 && v <= 8 ? (int)v : 1;
    }
    return o;
}

static int jpeg_orientation(const uint8_t *d, size_t len)
{
    size_t p = 2;
    while (p + 4 <= len) {
        if (d[p] != 0xff) {
            p++;
            continue;
        }
        int m = d[p + 1];
        if (m == 0xff) {
            p++;
            continue;
        }
        if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {
            p += 2;
            continue;
        }
        if (m == 0xda || m == 0xd9)
            return 1; /* PIL reads markers up to the first scan */
        size_t n = (size_t)d[p + 2] << 8 | d[p + 3];
        if (n < 2 || n > len - p - 2)
            return 1;
        const uint8_t *s = d + p + 4;
        if (m == 0xe1 && n - 2 >= 6 && !memcmp(s, "Exif\0\0", 6))
            return rn_exif_tiff_orientation(s, n - 2); /* the first one, as PIL */
        p += 2 + n;
    }
    return 1;
}

/* zTXt/iTXt text, inflated with a cap. Returns a malloc'ed NUL-terminated
 * buffer or NULL. */
static char *inflate_text(const uint8_t *z, size_t n)
{
    size_t cap = 4096;
    char *out = malloc(cap + 1);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (!out || inflateInit(&s) != Z_OK) {
        free(out);
        return NULL;
    }
    s.next_in = (Bytef *)z;
    s.avail_in = (uInt)n;
    int rc;
    do {
        if (s.total_out == cap) {
            char *b = cap >= TEXT_MAX ? NULL : realloc(out, cap * 2 + 1);
            if (!b)
                break;
            out = b;
            cap *= 2;
        }
        s.next_out = (Bytef *)out + s.total_out;
        s.avail_out = (uInt)(cap - s.total_out);
        rc = inflate(&s, Z_NO_FLUSH);
    } while (rc == Z_OK);
    size_t got = s.total_out;
    inflateEnd(&s);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    out[got] = '\0';
    return out;
}

/* "Raw profile type exif" (ImageMagick): a header of three lines, then hex. */
static int raw_profile_orientation(const char *text)
{
    const char *p = text;
    for (int nl = 0; nl < 3 && p; nl++)
        p = strchr(p, '\n'), p = p ? p + 1 : NULL;
    if (!p)
        return 1;
    size_t n = strlen(p);
    uint8_t *b = malloc(n / 2 + 1);
    if (!b)
        return 1;
    size_t k = 0;
    int hi = -1;
    for (; *p; p++) {
        int v = *p >= '0' && *p <= '9'   ? *p - '0'
                : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                         : -1;
        if (v < 0)
            continue; /* PIL joins the lines; fromhex skips the spaces */
        if (hi < 0) {
            hi = v;
        } else {
            b[k++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    int o = rn_exif_tiff_orientation(b, k);
    free(b);
    return o;
}

/* XMP's tiff:Orientation, PIL's regex tiff:Orientation(="|>)([0-9]). */
static int xmp_orientation(const char *x, size_t n)
{
    static const char key[] = "tiff:Orientation";
    for (size_t i = 0; i + sizeof key + 1 <= n; i++) {
        if (memcmp(x + i, key, sizeof key - 1))
            continue;
        const char *p = x + i + sizeof key - 1;
        size_t left = n - i - (sizeof key - 1);
        if (left >= 3 && p[0] == '=' && p[1] == '"' && p[2] >= '0' && p[2] <= '9')
            return p[2] - '0';
        if (left >= 2 && p[0] == '>' && p[1] >= '0' && p[1] <= '9')
            return p[1] - '0';
    }
    return 0;
}

/* PNG: an eXIf chunk, else a "Raw profile type exif" text chunk; then, when
 * neither gives tag 274, XMP in an iTXt "XML:com.adobe.xmp". */
static int png_orientation(const uint8_t *d, size_t len)
{
    static const char raw_key[] = "Raw profile type exif", xmp_key[] = "XML:com.adobe.xmp";
    int exif = 0, raw = 0, xmp = 0;
    for (size_t p = 8; p + 12 <= len;) {
        size_t n = (size_t)rd(d + p, 4, 1);
        if (n > len - p - 12)
            break;
        const uint8_t *type = d + p + 4, *c = d + p + 8;
        if (!memcmp(type, "eXIf", 4) && !exif) {
            exif = rn_exif_tiff_orientation(c, n);
        } else if (!memcmp(type, "tEXt", 4) || !memcmp(type, "zTXt", 4) ||
                   !memcmp(type, "iTXt", 4)) {
            const uint8_t *z = memchr(c, 0, n);
            size_t klen = z ? (size_t)(z - c) : n;
            int is_raw = klen == sizeof raw_key - 1 && !memcmp(c, raw_key, klen);
            int is_xmp = klen == sizeof xmp_key - 1 && !memcmp(c, xmp_key, klen);
            if (z && (is_raw || is_xmp)) {
                const uint8_t *v = z + 1, *end = c + n;
                int compressed = 0;
                if (!memcmp(type, "zTXt", 4)) {
                    compressed = 1;
                    v++; /* method byte */
                } else if (!memcmp(type, "iTXt", 4)) { /* flag, method, lang\0, key\0 */
                    if (end - v < 2)
                        goto next;
                    compressed = v[0];
                    v += 2;
                    for (int k = 0; k < 2 && v < end; k++) {
                        const uint8_t *q = memchr(v, 0, (size_t)(end - v));
                        v = q ? q + 1 : end;
                    }
                }
                if (v > end)
                    goto next;
                char *text = NULL;
                if (compressed) {
                    text = inflate_text(v, (size_t)(end - v));
                } else if ((text = malloc((size_t)(end - v) + 1))) {
                    memcpy(text, v, (size_t)(end - v));
                    text[end - v] = '\0';
                }
                if (text && is_raw && !raw)
                    raw = raw_profile_orientation(text);
                else if (text && is_xmp && !xmp)
                    xmp = xmp_orientation(text, strlen(text));
                free(text);
            }
        }
    next:
        p += n + 12;
    }
    int o = exif ? exif : raw ? raw : 1; /* PIL: the eXIf chunk, else the raw profile */
    if (o > 1)
        return o;
    return xmp >= 1 && xmp <= 8 ? xmp : 1;
}

static int webp_orientation(const uint8_t *d, size_t len)
{
    for (size_t p = 12; p + 8 <= len;) {
        size_t n = (size_t)rd(d + p + 4, 4, 0);
        if (n > len - p - 8)
            return 1;
        if (!memcmp(d + p, "EXIF", 4))
            return rn_exif_tiff_orientation(d + p + 8, n);
        p += 8 + n + (n & 1);
    }
    return 1;
}

int rn_exif_orientation(const uint8_t *data, size_t len, int kind)
{
    switch (kind) {
    case RN_KIND_JPEG: return jpeg_orientation(data, len);
    case RN_KIND_PNG: return png_orientation(data, len);
    case RN_KIND_WEBP: return webp_orientation(data, len);
    case RN_KIND_TIFF: return rn_exif_tiff_orientation(data, len);
    default: return 1;
    }
}

/* Image.transpose's methods for orientations 2..8: the source pixel of each
 * destination pixel (x, y) of the dw x dh result. */
int rn_image_orient(rn_image *img, int o, char *err, size_t errlen)
{
    if (o < 2 || o > 8)
        return RN_OK;
    int w = img->width, h = img->height, swap = o >= 5;
    int dw = swap ? h : w, dh = swap ? w : h;
    uint8_t *dst = rn_image_alloc(dw, dh);
    if (!dst)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "image: out of memory to orient %dx%d", w, h);
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            int sx, sy;
            switch (o) {
            case 2: sx = w - 1 - x, sy = y; break;         /* FLIP_LEFT_RIGHT */
            case 3: sx = w - 1 - x, sy = h - 1 - y; break; /* ROTATE_180 */
            case 4: sx = x, sy = h - 1 - y; break;         /* FLIP_TOP_BOTTOM */
            case 5: sx = y, sy = x; break;                 /* TRANSPOSE */
            case 6: sx = y, sy = h - 1 - x; break;         /* ROTATE_270 */
            case 7: sx = w - 1 - y, sy = h - 1 - x; break; /* TRANSVERSE */
            default: sx = w - 1 - y, sy = x; break;        /* 8: ROTATE_90 */
            }
            memcpy(dst + ((size_t)y * dw + x) * 3, img->rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    free(img->rgb);
    img->rgb = dst;
    img->width = dw;
    img->height = dh;
    return RN_OK;
}
