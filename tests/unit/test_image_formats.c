/* WebP, GIF, BMP and TIFF decoding and EXIF orientation: every pixel against
 * PIL 9.4 (tests/fixtures/images/make_format_fixtures.py), and the bad-image
 * corpus of each format, built here from the fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "resnet.h"

#define DIR "tests/fixtures/images/formats"

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static int load(const char *name, buf *b)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DIR, name);
    b->p = fixture_load(path, &b->n);
    return b->p ? 0 : -1;
}

static buf must_load(const char *name)
{
    buf b = {0};
    if (load(name, &b) < 0)
        fail_msg("%s/%s: missing (make_format_fixtures.py)", DIR, name);
    return b;
}

/* ---- every fixture, every pixel, against PIL ---------------------------- */

static void test_parity(void **state)
{
    (void)state;
    FILE *f = fopen(DIR "/MANIFEST", "r");
    assert_non_null(f);
    char line[512];
    int n = 0, per_kind[6] = {0};
    static const char *ext[6] = {".webp", ".gif", ".bmp", ".tif", ".jpg", ".png"};
    while (fgets(line, sizeof line, f)) {
        char file[256], ref[256], mode[16];
        int w, h, exif;
        if (line[0] == '#' || sscanf(line, "%255s %255s %d %d %15s %d", file, ref, &w, &h, mode,
                                     &exif) != 6)
            continue;
        buf img = must_load(file), want = must_load(ref);
        assert_int_equal(want.n, (size_t)w * h * 3);
        rn_image_params ip = rn_image_default_params();
        ip.exif_orient = exif;
        rn_image im;
        char err[256];
        int rc = rn_image_decode(img.p, img.n, &ip, &im, err, sizeof err);
        if (rc != RN_OK)
            fail_msg("%s: %s", file, err);
        if (im.width != w || im.height != h)
            fail_msg("%s%s: %dx%d, PIL %dx%d", file, exif ? " (exif)" : "", im.width, im.height,
                     w, h);
        int maxd = 0;
        size_t first = (size_t)-1;
        for (size_t i = 0; i < want.n; i++) {
            int d = abs((int)im.rgb[i] - want.p[i]);
            if (d > maxd)
                maxd = d;
            if (d && first == (size_t)-1)
                first = i;
        }
        printf("# %-28s %-5s %4dx%-4d %s: max diff %d\n", file, mode, w, h,
               exif ? "orient=exif" : "default    ", maxd);
        if (maxd)
            fail_msg("%s: pixel (%zu,%zu) channel %zu is %d, PIL %d (max diff %d)", file,
                     first / 3 % (size_t)w, first / 3 / (size_t)w, first % 3, im.rgb[first],
                     want.p[first], maxd);
        for (int k = 0; k < 6; k++)
            per_kind[k] += strstr(file, ext[k]) != NULL;
        rn_image_free(&im);
        free(img.p);
        free(want.p);
        n++;
    }
    fclose(f);
    printf("# %d decodes identical to PIL: %d WebP, %d GIF, %d BMP, %d TIFF, %d JPEG, %d PNG\n", n,
           per_kind[0], per_kind[1], per_kind[2], per_kind[3], per_kind[4], per_kind[5]);
    assert_true(n >= 50 && per_kind[0] >= 5 && per_kind[1] >= 5 && per_kind[2] >= 10 &&
                per_kind[3] >= 8);
}

/* ---- the bad-image corpus ------------------------------------------------- */

/* Decode and require status want (1: any status, only no crash), a message
 * on failure and a zeroed image. Returns the status. */
static int expect(const char *what, const uint8_t *p, size_t n, int want)
{
    rn_image im;
    char err[256] = "";
    rn_image_params ip = rn_image_default_params();
    int rc = rn_image_decode(p, n, &ip, &im, err, sizeof err);
    if (want != 1 && rc != want)
        fail_msg("%s: status %d (%s), want %d (%s)", what, rc, err, want, rn_strerror(want));
    if (rc < 0) {
        assert_true(err[0] != '\0');
        assert_null(im.rgb);
        if (want != 1)
            printf("# %-34s -> %s: %s\n", what, rn_strerror(rc), err);
    } else {
        assert_true(im.width > 0 && im.height > 0 && im.rgb);
        rn_image_free(&im);
    }
    return rc;
}

/* Bit flips spread over the file, and cuts at many lengths: an error or an
 * image, never a crash (ASan and UBSan watch under make asan). */
static void shake(const char *fmt, const buf *b)
{
    uint8_t *c = malloc(b->n);
    int refused = 0, tries = 0;
    for (size_t i = 0; i < b->n; i += b->n / 211 + 1, tries++) {
        memcpy(c, b->p, b->n);
        c[i] ^= (uint8_t)(1u << (i % 8));
        refused += expect("bit flip", c, b->n, 1) < 0;
    }
    int cuts = 0;
    for (size_t n = 1; n < b->n; n += b->n / 97 + 1, cuts++)
        assert_true(expect("cut", b->p, n, 1) < 0 || n > b->n / 2);
    printf("# %s: %d of %d bit flips refused, %d cuts refused\n", fmt, refused, tries, cuts);
    free(c);
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_bad_bmp(void **state)
{
    (void)state;
    buf b = must_load("dog_24.bmp"), p = must_load("dog_8.bmp"), r = must_load("dog_rle8.bmp");
    buf r4 = must_load("eagle_rle4.bmp");
    uint8_t *c = malloc(b.n + 64);
    expect("file header only", b.p, 14, RN_ERR_IMAGE_CORRUPT);
    expect("cut in the info header", b.p, 30, RN_ERR_IMAGE_CORRUPT);
    expect("cut in the palette", p.p, 14 + 40 + 100, RN_ERR_IMAGE_CORRUPT);
    expect("cut at 50%", b.p, b.n / 2, RN_ERR_IMAGE_CORRUPT);
    expect("one byte short", b.p, b.n - 1 - (b.n - 54) % 4 * 0, 1);
    expect("last row cut", b.p, b.n - 120 * 3 / 2, RN_ERR_IMAGE_CORRUPT);
    expect("RLE8 cut at 50%", r.p, r.n / 2, RN_ERR_IMAGE_CORRUPT);
    expect("RLE4 cut at 60%", r4.p, r4.n * 6 / 10, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, r.p, r.n); /* end of bitmap after the first row */
    size_t eol = 0;
    for (size_t i = get32(r.p + 10); i + 1 < r.n; i += 2)
        if (c[i] == 0 && c[i + 1] == 0) {
            eol = i;
            break;
        }
    assert_true(eol > 0);
    c[eol + 1] = 1;
    expect("RLE8 ends after one row", c, r.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    put32(c + 18, 0x80000000u);
    expect("width 2^31", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    put32(c + 18, 65535);
    put32(c + 22, 65535);
    expect("65535x65535", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    put32(c + 22, 0xffff0001u); /* top-down, -65535 */
    expect("65535x-65535 (top-down)", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    put32(c + 18, 0);
    expect("width 0", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    put32(c + 22, 0);
    expect("height 0", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, r.p, r.n);
    put32(c + 18, 6000);
    put32(c + 22, 6000);
    expect("RLE8 6000x6000 from a few KB", c, r.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    put32(c + 10, (uint32_t)b.n + 10);
    expect("pixel offset past the end", c, b.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    put16(c + 28, 2);
    expect("2 bits per pixel", c, b.n, RN_ERR_UNSUPPORTED);
    memcpy(c, b.p, b.n);
    put32(c + 30, 4);
    expect("JPEG compression", c, b.n, RN_ERR_UNSUPPORTED);
    memcpy(c, b.p, b.n);
    put32(c + 14, 52);
    expect("52-byte header", c, b.n, RN_ERR_UNSUPPORTED);
    memcpy(c, p.p, p.n);
    put32(c + 46, 0x80000000u);
    expect("palette of 2^31 colors", c, p.n, RN_ERR_UNSUPPORTED);
    memcpy(c, b.p, 54); /* 24-bit, BITFIELDS with masks PIL does not know */
    put32(c + 30, 3);
    put32(c + 54, 0xff);
    put32(c + 58, 0xff00);
    put32(c + 62, 0xff0000);
    memcpy(c + 66, b.p + 54, b.n - 54);
    put32(c + 10, 66);
    expect("bitfields r=ff g=ff00 b=ff0000", c, b.n + 12, RN_ERR_UNSUPPORTED);
    shake("BMP 24-bit", &b);
    shake("BMP RLE8", &r);
    shake("BMP RLE4", &r4);
    free(c);
    free(b.p);
    free(p.p);
    free(r.p);
    free(r4.p);
}

/* A GIF of one w x h frame whose LZW data are the given codes at growing
 * widths (min code size 2), in one sub-block. */
static size_t lzw_gif(uint8_t *out, int w, int h, const int *codes, int n)
{
    static const uint8_t head[] = {'G', 'I', 'F', '8', '9', 'a', 4, 0, 4, 0, 0x81, 0, 0,
                                   0, 0, 0, 255, 255, 255, 0, 0, 255, 255, 0, 0};
    size_t p = sizeof head;
    memcpy(out, head, p);
    put16(out + 6, (unsigned)w);
    put16(out + 8, (unsigned)h);
    out[p++] = ',';
    memset(out + p, 0, 8);
    put16(out + p + 4, (unsigned)w);
    put16(out + p + 6, (unsigned)h);
    p += 8;
    out[p++] = 0;
    out[p++] = 2;
    size_t len_at = p++;
    uint32_t acc = 0;
    int nacc = 0, width = 3, next = 6;
    for (int i = 0; i < n; i++) {
        acc |= (uint32_t)codes[i] << nacc;
        nacc += width;
        while (nacc >= 8) {
            out[p++] = (uint8_t)acc;
            acc >>= 8;
            nacc -= 8;
        }
        if (codes[i] == 4) {
            width = 3, next = 6;
        } else if (i > 0 && codes[i - 1] != 4 && ++next == (1 << width) && width < 12) {
            width++;
        }
    }
    if (nacc)
        out[p++] = (uint8_t)acc;
    out[len_at] = (uint8_t)(p - len_at - 1);
    out[p++] = 0;
    out[p++] = ';';
    return p;
}

static void test_bad_gif(void **state)
{
    (void)state;
    buf b = must_load("scream.gif"), il = must_load("scream_interlaced.gif");
    uint8_t *c = malloc(b.n + 64);
    expect("signature only", b.p, 6, RN_ERR_IMAGE_CORRUPT);
    expect("cut in the palette", b.p, 100, RN_ERR_IMAGE_CORRUPT);
    expect("cut at 50%", b.p, b.n / 2, RN_ERR_IMAGE_CORRUPT);
    expect("interlaced cut at 90%", il.p, il.n * 9 / 10, RN_ERR_IMAGE_CORRUPT);
    expect("only the trailer missing (as PIL)", b.p, b.n - 1, RN_OK);
    memcpy(c, b.p, 13 + 768);
    c[13 + 768] = ';';
    expect("no image descriptor", c, 13 + 768 + 1, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    put16(c + 6, 65535);
    put16(c + 8, 65535);
    expect("screen 65535x65535", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    size_t desc = 13 + 768;
    while (c[desc] == '!') { /* past the extensions */
        desc += 2;
        while (c[desc])
            desc += c[desc] + 1u;
        desc++;
    }
    assert_int_equal(c[desc], ',');
    memcpy(c, b.p, b.n);
    put16(c + desc + 1, 65535); /* frame at x 65535: the canvas grows, as in PIL */
    put16(c + desc + 3, 65535);
    expect("frame at (65535,65535)", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    put16(c + 6, 0);
    put16(c + 8, 0);
    put16(c + desc + 5, 0);
    expect("screen and frame 0x0", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    put16(c + desc + 7, 0);
    expect("frame height 0", c, b.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    put16(c + 6, 6000);
    put16(c + 8, 6000);
    put16(c + desc + 5, 6000);
    put16(c + desc + 7, 6000);
    expect("6000x6000 frame from 10 KB", c, b.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    c[desc + 10] = 12;
    expect("LZW minimum code size 12", c, b.n, RN_ERR_IMAGE_CORRUPT);
    uint8_t g[256];
    int ok_codes[] = {4, 1, 2, 6, 3, 5};
    expect("hand-made LZW (control)", g, lzw_gif(g, 4, 4, ok_codes, 6), RN_OK);
    int past[] = {4, 1, 7, 5};
    expect("LZW code past the table", g, lzw_gif(g, 4, 4, past, 4), RN_ERR_IMAGE_CORRUPT);
    int first[] = {4, 6, 5};
    expect("LZW code before any entry", g, lzw_gif(g, 4, 4, first, 3), RN_ERR_IMAGE_CORRUPT);
    int early[] = {4, 1, 5};
    expect("end code before the frame is full", g, lzw_gif(g, 4, 4, early, 3), RN_OK);
    shake("GIF", &b);
    shake("GIF interlaced", &il);
    free(c);
    free(b.p);
    free(il.p);
}

/* The IFD0 entry of tag in a little-endian classic TIFF, or NULL. */
static uint8_t *tiff_tag(uint8_t *t, uint16_t tag)
{
    uint32_t off = get32(t + 4);
    unsigned n = t[off] | t[off + 1] << 8;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = t + off + 2 + 12 * i;
        if ((e[0] | e[1] << 8) == tag)
            return e;
    }
    return NULL;
}

static void set_long(uint8_t *t, uint16_t tag, uint32_t v)
{
    uint8_t *e = tiff_tag(t, tag);
    assert_non_null(e);
    put16(e + 2, 4);
    put32(e + 4, 1);
    put32(e + 8, v);
}

static void test_bad_tiff(void **state)
{
    (void)state;
    buf b = must_load("kite_lzw.tif"), t = must_load("horses_tiled_lzw.tif");
    buf raw = must_load("kite.tif");
    uint8_t *c = malloc(b.n + t.n + raw.n);
    expect("header only", b.p, 8, RN_ERR_IMAGE_CORRUPT);
    uint32_t ifd = get32(b.p + 4);
    expect("cut in IFD0", b.p, ifd + 20, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, raw.p, raw.n);
    expect("uncompressed, cut at 50%", raw.p, raw.n / 2, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, t.p, t.n);
    expect("tiled, cut at 60%", t.p, t.n * 6 / 10, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    set_long(c, 256, 0x80000000u);
    expect("width 2^31", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    set_long(c, 256, 65535);
    set_long(c, 257, 65535);
    expect("65535x65535", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    set_long(c, 256, 0);
    expect("width 0", c, b.n, 1); /* libtiff refuses it itself */
    memcpy(c, b.p, b.n);
    unsigned n = c[ifd] | c[ifd + 1] << 8;
    put32(c + ifd + 2 + 12 * n, ifd); /* the next IFD is IFD0 again */
    expect("IFD loop (IFD0 -> IFD0)", c, b.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    put32(c + ifd + 2 + 12 * n, (uint32_t)b.n + 1000);
    expect("next IFD past the end", c, b.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    put32(c + 4, (uint32_t)b.n - 4);
    expect("IFD0 past the end", c, b.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, raw.p, raw.n);
    assert_int_equal(get32(tiff_tag(c, 273) + 4), 1); /* one strip */
    set_long(c, 279, 0x7fffffffu);                      /* of 2 GB */
    set_long(c, 278, 73);
    expect("strip promises 2 GB", c, raw.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, raw.p, raw.n);
    set_long(c, 273, (uint32_t)raw.n - 10);
    set_long(c, 278, 73);
    set_long(c, 279, 110 * 73 * 3);
    expect("strip offset near the end", c, raw.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    set_long(c, 259, 7);
    expect("JPEG compression", c, b.n, RN_ERR_UNSUPPORTED);
    memcpy(c, b.p, b.n);
    set_long(c, 259, 4);
    expect("CCITT G4 compression", c, b.n, RN_ERR_UNSUPPORTED);
    memcpy(c, raw.p, raw.n);
    set_long(c, 262, 5);
    expect("CMYK", c, raw.n, RN_ERR_UNSUPPORTED);
    shake("TIFF LZW", &b);
    shake("TIFF tiled", &t);
    free(c);
    free(b.p);
    free(t.p);
    free(raw.p);
}

static void test_bad_webp(void **state)
{
    (void)state;
    buf b = must_load("dog_lossy.webp"), a = must_load("giraffe_anim.webp");
    buf l = must_load("dog_lossless.webp");
    uint8_t *c = malloc(a.n + b.n);
    expect("RIFF header only", b.p, 12, RN_ERR_IMAGE_CORRUPT);
    expect("lossy cut at 50%", b.p, b.n / 2, RN_ERR_IMAGE_CORRUPT);
    expect("lossless cut at 50%", l.p, l.n / 2, RN_ERR_IMAGE_CORRUPT);
    expect("animated cut at 70%", a.p, a.n * 7 / 10, RN_ERR_IMAGE_CORRUPT);
    /* VP8X canvas: 24-bit sizes minus one at bytes 24..29 */
    assert_memory_equal(a.p + 12, "VP8X", 4);
    memcpy(c, a.p, a.n);
    memset(c + 24, 0xff, 6);
    expect("canvas 16777216^2", c, a.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, a.p, a.n);
    c[24] = 0xfe, c[25] = 0xff, c[26] = 0; /* 65535 */
    c[27] = 0xfe, c[28] = 0xff, c[29] = 0;
    expect("canvas 65535x65535", c, a.n, RN_ERR_IMAGE_TOO_LARGE);
    /* lossy key frame: 14-bit sizes after the start code 9d 01 2a */
    assert_memory_equal(b.p + 12, "VP8 ", 4);
    assert_true(b.p[23] == 0x9d && b.p[24] == 0x01 && b.p[25] == 0x2a);
    memcpy(c, b.p, b.n);
    put16(c + 26, 0x3fff);
    put16(c + 28, 0x3fff);
    expect("lossy 16383x16383", c, b.n, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    put16(c + 26, 0);
    expect("lossy width 0", c, b.n, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    put32(c + 16, 0x7ffffff0u); /* the VP8 chunk claims 2 GB */
    expect("chunk size 2 GB", c, b.n, RN_ERR_IMAGE_CORRUPT);
    shake("WebP lossy", &b);
    shake("WebP lossless", &l);
    shake("WebP animated", &a);
    free(c);
    free(b.p);
    free(a.p);
    free(l.p);
}

/* orient=exif on an image without EXIF, and the default ignoring it. */
static void test_orientation_default(void **state)
{
    (void)state;
    buf j = must_load("eagle_exif6.jpg");
    rn_image im;
    char err[256];
    assert_int_equal(rn_image_default_params().exif_orient, 0);
    assert_int_equal(rn_image_decode(j.p, j.n, NULL, &im, err, sizeof err), RN_OK);
    assert_int_equal(im.width, 96); /* as stored: PIL's Image.open ignores it */
    rn_image_free(&im);
    rn_image_params ip = rn_image_default_params();
    ip.exif_orient = 1;
    float x[3 * 32 * 32];
    rn_preprocess pp = rn_preprocess_default();
    pp.resize = 40, pp.crop = 32;
    assert_int_equal(rn_image_to_tensor(j.p, j.n, &ip, &pp, x, err, sizeof err), RN_OK);
    ip.dct_scaling = 1; /* the declared size turns with the DCT-scaled pixels */
    assert_int_equal(rn_image_to_tensor(j.p, j.n, &ip, &pp, x, err, sizeof err), RN_OK);
    buf g = must_load("scream.gif");
    ip.dct_scaling = 0;
    assert_int_equal(rn_image_decode(g.p, g.n, &ip, &im, err, sizeof err), RN_OK);
    assert_int_equal(im.width, 96); /* GIF and BMP have no EXIF for PIL */
    rn_image_free(&im);
    for (int i = 0; rn_image_format_name(i); i++)
        assert_non_null(rn_image_format_mime(i));
    assert_string_equal(rn_image_format_name(2), "WebP");
    assert_null(rn_image_format_name(6));
    free(j.p);
    free(g.p);
}

int main(void)
{
    rn_set_log(NULL, NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity),      cmocka_unit_test(test_bad_bmp),
        cmocka_unit_test(test_bad_gif),     cmocka_unit_test(test_bad_tiff),
        cmocka_unit_test(test_bad_webp),    cmocka_unit_test(test_orientation_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
