/* GIF decoding (our own LZW decoder): the first frame as PIL 9.4's GifImagePlugin
 * loads it, then convert("RGB"): palette lookup, transparency only choosing
 * the fill of the canvas outside the frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "rn_internal.h"

#define LZW_MAX 4096

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* The LZW data of one frame: a chain of sub-blocks read lazily. */
typedef struct lzw_src {
    const uint8_t *data;
    size_t len, pos;  /* pos: next byte of the current sub-block */
    size_t block_end; /* end of the current sub-block */
    int ended;        /* a zero-length block ended the chain */
    int truncated;    /* the file ended inside the chain */
    uint32_t acc;
    int nacc;
} lzw_src;

/* The next byte of the chain, or -1 at its end (or the file's). */
static int next_byte(lzw_src *s)
{
    while (s->pos == s->block_end) {
        if (s->ended || s->truncated)
            return -1;
        if (s->pos >= s->len) {
            s->truncated = 1;
            return -1;
        }
        size_t n = s->data[s->pos++];
        if (n == 0) {
            s->ended = 1;
            return -1;
        }
        s->block_end = s->pos + n;
        if (s->block_end > s->len)
            s->block_end = s->len; /* the tail is read; then truncated */
    }
    return s->data[s->pos++];
}

static int read_code(lzw_src *s, int width)
{
    while (s->nacc < width) {
        int b = next_byte(s);
        if (b < 0)
            return -1;
        s->acc |= (uint32_t)b << s->nacc;
        s->nacc += 8;
    }
    int code = (int)(s->acc & ((1u << width) - 1));
    s->acc >>= width;
    s->nacc -= width;
    return code;
}

/* Where the frame's rows go: in order, or the four interlaced passes. */
typedef struct rows {
    int h, y, pass, interlaced;
} rows;

static int next_row(rows *r)
{
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    if (!r->interlaced)
        return ++r->y;
    r->y += step[r->pass];
    while (r->y >= r->h && r->pass < 3) {
        r->pass++;
        r->y = start[r->pass];
    }
    return r->y;
}

/* Decode LZW into the fw x fh frame at canvas (x0, y0), stride cw. Stops at
 * the end code, at the end of the sub-block chain, or when the frame is full,
 * as PIL's decoder does; the file ending first is an error (PIL: truncated). */
static int lzw_decode(lzw_src *s, int min_bits, uint8_t *canvas, int cw, int x0, int y0, int fw,
                      int fh, int interlaced, char *err, size_t errlen)
{
    uint16_t *pre = malloc(sizeof(uint16_t) * LZW_MAX);
    uint8_t *suf = malloc(LZW_MAX), *stack = malloc(LZW_MAX);
    int rc = RN_OK;
    if (!pre || !suf || !stack) {
        rc = rn_errf(err, errlen, RN_ERR_NOMEM, "GIF: out of memory");
        goto out;
    }
    const int clear = 1 << min_bits, eoi = clear + 1;
    int width = min_bits + 1, next = clear + 2, prev = -1;
    uint8_t first = 0;
    for (int i = 0; i < clear; i++) {
        pre[i] = 0;
        suf[i] = (uint8_t)i;
    }
    rows r = {.h = fh, .y = 0, .pass = 0, .interlaced = interlaced};
    int x = 0;
    uint8_t *row = canvas + (size_t)(y0 + r.y) * cw + x0;
    for (;;) {
        int code = read_code(s, width);
        if (code < 0)
            break;
        if (code == clear) {
            width = min_bits + 1;
            next = clear + 2;
            prev = -1;
            continue;
        }
        if (code == eoi)
            goto out;
        int sp = 0, c = code;
        if (prev < 0) {
            if (code >= clear) {
                rc = rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                             "GIF: LZW code %d before any entry of the table exists (offset %zu)",
                             code, s->pos);
                goto out;
            }
        } else if (code > next || (code == next && next >= LZW_MAX)) {
            rc = rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                         "GIF: LZW code %d past the end of the table (%d entries) at offset %zu",
                         code, next, s->pos);
            goto out;
        }
        if (prev >= 0 && code == next) { /* KwKwK: the previous string plus its first byte */
            stack[sp++] = first;
            c = prev;
        }
        while (c >= clear) {
            stack[sp++] = suf[c];
            c = pre[c];
        }
        stack[sp++] = (uint8_t)c;
        first = (uint8_t)c;
        if (prev >= 0 && next < LZW_MAX) {
            pre[next] = (uint16_t)prev;
            suf[next] = first;
            next++;
            if (next == (1 << width) && width < 12)
                width++;
        }
        prev = code;
        while (sp > 0) {
            row[x++] = stack[--sp];
            if (x == fw) {
                x = 0;
                if (next_row(&r) >= fh)
                    goto out; /* the frame is full */
                row = canvas + (size_t)(y0 + r.y) * cw + x0;
            }
        }
    }
    if (s->truncated)
        rc = rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                     "GIF: truncated in the image data (file ends at %zu bytes)", s->len);
out:
    free(pre);
    free(suf);
    free(stack);
    return rc;
}

/* PIL drops a palette that is exactly the gray ramp (the image is then "L",
 * which gives the same pixels); any other is used as read. */
static void read_palette(const uint8_t *p, size_t n, uint8_t pal[768])
{
    for (int i = 0; i < 256; i++)
        pal[3 * i] = pal[3 * i + 1] = pal[3 * i + 2] = (uint8_t)i;
    memcpy(pal, p, RN_MIN(n, (size_t)768) / 3 * 3);
}

/* The most pixels n bytes of LZW codes could ever produce: codes are at least
 * min_bits + 1 wide, and the k-th code after a clear yields at most k pixels
 * (each new table entry is one longer than an old one), at most the table. */
static uint64_t lzw_capacity(uint64_t bytes, int min_bits)
{
    uint64_t codes = bytes * 8 / (uint64_t)(min_bits + 1) + 1, full = LZW_MAX;
    if (codes <= full)
        return codes * (codes + 1) / 2;
    return full * (full + 1) / 2 + (codes - full) * full;
}

int rn_gif_decode(const uint8_t *data, size_t len, const rn_image_params *params, rn_image *out,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len < 13)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "GIF: truncated in the screen descriptor (%zu bytes)", len);
    if (memcmp(data, "GIF87a", 6) && memcmp(data, "GIF89a", 6))
        return rn_errf(err, errlen, RN_ERR_IMAGE_FORMAT, "GIF: version %.6s is not 87a or 89a",
                       (const char *)data);
    uint32_t sw = le16(data + 6), sh = le16(data + 8);
    int flags = data[10];
    size_t pos = 13;
    uint8_t gpal[768], lpal[768];
    int has_global = 0;
    if (flags & 128) {
        size_t n = (size_t)3 << ((flags & 7) + 1);
        if (len - pos < n)
            return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                           "GIF: truncated in the global color table (%zu of %zu bytes)",
                           len - pos, n);
        read_palette(data + pos, n, gpal);
        has_global = 1;
        pos = RN_MIN(len, pos + n);
    }
    int transparency = -1;
    /* Blocks up to the first image descriptor: extensions are skipped (a
     * graphic control extension gives the transparent index), any other byte
     * is skipped as PIL does; the trailer or the end of file means no image. */
    for (;;) {
        if (pos >= len || data[pos] == ';')
            return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                           "GIF: no image descriptor before the %s (offset %zu)",
                           pos >= len ? "end of the file" : "trailer", pos);
        int intro = data[pos++];
        if (intro == ',')
            break;
        if (intro != '!')
            continue;
        if (pos >= len)
            continue;
        int label = data[pos++];
        int first = 1;
        while (pos < len && data[pos]) {
            size_t n = data[pos];
            if (first && label == 0xf9 && n >= 4 && pos + 4 < len && (data[pos + 1] & 1))
                transparency = data[pos + 4];
            first = 0;
            pos += n + 1;
        }
        pos++; /* the terminator */
    }
    if (len - pos < 10)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "GIF: truncated in the image descriptor (offset %zu)", pos);
    uint32_t fx = le16(data + pos), fy = le16(data + pos + 2);
    uint32_t fw = le16(data + pos + 4), fh = le16(data + pos + 6);
    int fflags = data[pos + 8];
    pos += 9;
    /* a frame past the screen grows the canvas, as PIL does */
    uint64_t cw = RN_MAX((uint64_t)sw, (uint64_t)fx + fw);
    uint64_t ch = RN_MAX((uint64_t)sh, (uint64_t)fy + fh);
    int rc = rn_image_check_size("GIF", cw, ch, params, err, errlen);
    if (rc < 0)
        return rc;
    if (fw == 0 || fh == 0)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "GIF: the first frame is %ux%u pixels (no side may be 0)", fw, fh);
    const uint8_t *pal = has_global ? gpal : NULL;
    if (fflags & 128) {
        size_t n = (size_t)3 << ((fflags & 7) + 1);
        read_palette(data + pos, RN_MIN(n, len - pos), lpal);
        pal = lpal;
        pos = RN_MIN(len, pos + n);
    }
    if (pos >= len)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "GIF: truncated before the image data (offset %zu)", pos);
    int min_bits = data[pos++];
    if (min_bits < 1 || min_bits > 8)
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "GIF: LZW minimum code size %d at offset %zu (1 to 8)", min_bits, pos - 1);
    /* the frame must fit in the LZW data the file holds, before allocating */
    size_t avail = 0;
    for (size_t p = pos; p < len && data[p]; p += data[p] + 1u)
        avail += RN_MIN((size_t)data[p], len - p - 1);
    if ((uint64_t)fw * fh > lzw_capacity(avail, min_bits))
        return rn_errf(err, errlen, RN_ERR_IMAGE_CORRUPT,
                       "GIF: a %ux%u frame cannot come from the %zu bytes of image data the file "
                       "holds",
                       fw, fh, avail);
    int w = (int)cw, h = (int)ch;
    uint8_t *idx = malloc((size_t)w * h);
    if (!idx)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "GIF: out of memory for %dx%d", w, h);
    memset(idx, transparency >= 0 ? transparency : 0, (size_t)w * h);
    lzw_src src = {.data = data, .len = len, .pos = pos, .block_end = pos};
    rc = lzw_decode(&src, min_bits, idx, w, (int)fx, (int)fy, (int)fw, (int)fh,
                    (fflags & 64) != 0, err, errlen);
    uint8_t *rgb = rc < 0 ? NULL : rn_image_alloc(w, h);
    if (rc == RN_OK && !rgb)
        rc = rn_errf(err, errlen, RN_ERR_NOMEM, "GIF: out of memory for %dx%d", w, h);
    if (rc < 0) {
        free(idx);
        return rc;
    }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        if (pal)
            memcpy(rgb + 3 * i, pal + 3 * idx[i], 3);
        else
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = idx[i];
    }
    free(idx);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return RN_OK;
}
