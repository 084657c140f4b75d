/* Image decode + preprocess: parity with PIL + torchvision, PNG variants, bad-image corpus. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <png.h>

#include "fixture.h"
#include "image/image.h"
#include "resnet.h"

#define FIXTURES "tests/fixtures/images"

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static int read_all(const char *path, buf *b)
{
    b->p = fixture_load(path, &b->n);
    return b->p ? 0 : -1;
}

static void fixture_path(const char *name, char *out, size_t n)
{
    if (name[0] == '/')
        snprintf(out, n, "%s", name);
    else
        snprintf(out, n, "%s/%s", FIXTURES, name);
}

static int load(const char *name, buf *b)
{
    char path[512];
    fixture_path(name, path, sizeof path);
    return read_all(path, b);
}

/* ---- parity against the committed torchvision references -------------- */

typedef struct entry {
    char image[256], ref[128], mode[16];
    int w, h, resize, crop;
} entry;

static int read_manifest(entry *e, int max)
{
    FILE *f = fopen(FIXTURES "/MANIFEST", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        if (sscanf(line, "%255s %127s %d %d %15s %d %d", e[n].image, e[n].ref, &e[n].w, &e[n].h,
                   e[n].mode, &e[n].resize, &e[n].crop) == 7)
            n++;
    }
    fclose(f);
    return n;
}

/* Differences in pixel levels: the max and the 99.9th percentile. */
static void diff_stats(const float *out, const uint8_t *ref, int crop, const float *lut_inv,
                       int *maxd, int *p999)
{
    int hist[256] = {0}, n = crop * crop * 3;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < crop * crop; i++) {
            float v = out[c * crop * crop + i];
            if (lut_inv)
                v = lut_inv[2 * c] * v + lut_inv[2 * c + 1];
            int d = (int)fabsf(roundf(v) - ref[i * 3 + c]);
            hist[d > 255 ? 255 : d]++;
        }
    int acc = 0, limit = n - n / 1000; /* values at or below the 99.9th percentile */
    *maxd = *p999 = -1;
    for (int d = 0; d < 256; d++) {
        acc += hist[d];
        if (*p999 < 0 && acc >= limit)
            *p999 = d;
        if (hist[d])
            *maxd = d;
    }
}

static rn_preprocess pixel_pp(int resize, int crop)
{
    rn_preprocess pp = {.resize = resize,
                        .crop = crop,
                        .scale = 1.0f,
                        .mean = {0, 0, 0},
                        .std = {1, 1, 1},
                        .bgr = 0};
    return pp;
}

/* Decode + preprocess every fixture in pixel units (scale 1, mean 0, std 1)
 * and compare with PIL + torchvision. dct: through rn_image_to_tensor with
 * DCT scaling allowed; returns how many fixtures broke the bound. */
static int run_parity(int dct, int assert_bound)
{
    entry e[64];
    int n = read_manifest(e, 64), ran = 0, broke = 0;
    char err[256];
    for (int i = 0; i < n; i++) {
        buf img = {0}, ref = {0};
        if (load(e[i].image, &img) < 0)
            fail_msg("%s: not found (the photos come from Debian's darknet package)", e[i].image);
        assert_int_equal(load(e[i].ref, &ref), 0);
        int crop = e[i].crop;
        assert_int_equal(ref.n, (size_t)crop * crop * 3);
        float *out = malloc(sizeof(float) * 3 * crop * crop);
        rn_preprocess pp = pixel_pp(e[i].resize, crop);
        rn_image_params ip = rn_image_default_params();
        ip.dct_scaling = dct;
        if (dct) {
            assert_int_equal(rn_image_to_tensor(img.p, img.n, &ip, &pp, out, err, sizeof err),
                             RN_OK);
        } else {
            rn_image im;
            int rc = rn_image_decode(img.p, img.n, &ip, &im, err, sizeof err);
            if (rc != RN_OK)
                fail_msg("%s: %s", e[i].image, err);
            assert_int_equal(im.width, e[i].w);
            assert_int_equal(im.height, e[i].h);
            assert_int_equal(rn_image_preprocess(&im, &pp, out, err, sizeof err), RN_OK);
            rn_image_free(&im);
        }
        int maxd, p999;
        diff_stats(out, ref.p, crop, NULL, &maxd, &p999);
        const char *base = strrchr(e[i].image, '/') ? strrchr(e[i].image, '/') + 1 : e[i].image;
        printf("# %s %-22s %4dx%-4d %-5s r%d c%d: max %d, p99.9 %d\n", dct ? "dct " : "full", base,
               e[i].w, e[i].h, e[i].mode, e[i].resize, crop, maxd, p999);
        if (maxd > 3 || p999 > 1) {
            broke++;
            if (assert_bound)
                fail_msg("%s: max diff %d, 99.9th pct %d", e[i].ref, maxd, p999);
        }
        ran++;
        free(out);
        free(img.p);
        free(ref.p);
    }
    assert_true(ran > 0);
    return broke;
}

static void test_parity_pixels(void **state)
{
    (void)state;
    run_parity(0, 1);
}

/* The default of dct_scaling may be on only if every fixture keeps parity. */
static void test_dct_scaling(void **state)
{
    (void)state;
    int broke = run_parity(1, 0);
    printf("# DCT scaling: %d fixtures over the bound; default %s\n", broke,
           rn_image_default_params().dct_scaling ? "on" : "off");
    if (rn_image_default_params().dct_scaling)
        assert_int_equal(broke, 0);
}

/* ---- the resize's tables: every one writes the C table's bytes ---------- */

static uint32_t rnd_state;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1664525u + 1013904223u;
    return rnd_state >> 8;
}

/* One resize of a w x h image (random, two-level, ramp or flat by kind) on
 * table isa and on the C table; the source is malloc'd to its exact size so
 * that ASan catches a vector load past its end. */
static void check_tables(int isa, int w, int h, int ow, int oh, int x0, int y0, int cw, int ch,
                         int kind)
{
    size_t n = (size_t)w * h * 3, stride = (size_t)cw * 3 + (size_t)(kind & 3);
    uint8_t *src = malloc(n), *want = calloc((size_t)ch, stride), *got = calloc((size_t)ch, stride);
    for (size_t k = 0; k < n; k++)
        src[k] = kind % 4 == 0   ? (uint8_t)rnd()
                 : kind % 4 == 1 ? (uint8_t)((rnd() & 1) * 255)
                 : kind % 4 == 2 ? (uint8_t)(k * 7)
                                 : 255;
    char err[256];
    assert_int_equal(rn_resize_set_isa(RN_ISA_C), RN_OK);
    assert_int_equal(rn_resize_window(src, w, h, ow, oh, x0, y0, cw, ch, want, stride, err,
                                      sizeof err),
                     RN_OK);
    assert_int_equal(rn_resize_set_isa(isa), RN_OK);
    assert_int_equal(
        rn_resize_window(src, w, h, ow, oh, x0, y0, cw, ch, got, stride, err, sizeof err), RN_OK);
    for (size_t k = 0; k < (size_t)ch * stride; k++)
        if (got[k] != want[k])
            fail_msg("%s: %dx%d -> %dx%d window %dx%d+%d+%d: byte %zu (row %zu) is %d, C %d",
                     rn_isa_name(isa), w, h, ow, oh, cw, ch, x0, y0, k, k / stride, got[k],
                     want[k]);
    free(src);
    free(want);
    free(got);
}

/* Every table this CPU runs against the C one: all small sizes, random
 * sizes, scales from 1/60 to 4x and windows, then the parity fixtures. */
static void test_resize_tables(void **state)
{
    (void)state;
    static const int isas[] = {RN_ISA_AVX512, RN_ISA_AVX2};
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (rn_resize_set_isa(isas[i]) != RN_OK) {
            printf("# resize table %s: this CPU cannot run it\n", rn_isa_name(isas[i]));
            continue;
        }
        rnd_state = 12345;
        int cases = 0;
        for (int w = 1; w <= 12; w++) /* every tiny shape, down and up, whole and windowed */
            for (int h = 1; h <= 12; h += 5)
                for (int ow = 1; ow <= 25; ow += 3)
                    for (int oh = 1; oh <= 25; oh += 4, cases++)
                        check_tables(isas[i], w, h, ow, oh, ow / 3, oh / 4, ow - ow / 3,
                                     oh - oh / 4, cases);
        for (int t = 0; t < 600; t++, cases++) {
            int w = 1 + (int)(rnd() % (t < 300 ? 80 : 1500));
            int h = 1 + (int)(rnd() % (t < 300 ? 80 : 700));
            int ow = 1 + (int)(rnd() % (t % 3 == 0 ? 4 * w : w + 2));
            int oh = 1 + (int)(rnd() % (t % 3 == 1 ? 4 * h : h + 2));
            if (t % 7 == 0)
                ow = w;
            if (t % 11 == 0)
                oh = h;
            if (t % 13 == 0) { /* a large reduction: many taps a pixel */
                ow = 1 + w / 60;
                oh = 1 + h / 45;
            }
            int cw = 1 + (int)(rnd() % ow), ch = 1 + (int)(rnd() % oh);
            check_tables(isas[i], w, h, ow, oh, (int)(rnd() % (ow - cw + 1)),
                         (int)(rnd() % (oh - ch + 1)), cw, ch, t);
        }
        assert_int_equal(rn_resize_set_isa(isas[i]), RN_OK);
        run_parity(0, 1);
        printf("# resize table %s: %d shapes as the C table's, fixtures in parity\n",
               rn_isa_name(isas[i]), cases);
        ran++;
    }
    assert_int_equal(rn_resize_set_isa(RN_ISA_AUTO), RN_OK);
    printf("# resizes run on the %s table (%d other tables checked)\n", rn_resize_isa_name(), ran);
}

/* ---- the JPEG decoded only where the crop reads ------------------------- */

/* data through rn_image_to_tensor (which decodes a JPEG only around the
 * crop's pixels) and through a whole decode + rn_image_preprocess: the same
 * status and, when it succeeds, the same floats. Returns the status. */
static int same_both_ways(const char *what, const uint8_t *data, size_t len,
                          const rn_preprocess *pp)
{
    size_t n = (size_t)3 * pp->crop * pp->crop;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    char err[256];
    rn_image_params ip = rn_image_default_params();
    int ra = rn_image_to_tensor(data, len, &ip, pp, a, err, sizeof err);
    rn_image im;
    int rb = rn_image_decode(data, len, &ip, &im, err, sizeof err);
    if (rb == RN_OK) {
        rb = rn_image_preprocess(&im, pp, b, err, sizeof err);
        rn_image_free(&im);
    }
    if (ra != rb)
        fail_msg("%s r%d c%d: %d through the cropped decode, %d through the whole one", what,
                 pp->resize, pp->crop, ra, rb);
    if (ra == RN_OK && memcmp(a, b, sizeof(float) * n))
        fail_msg("%s r%d c%d: the cropped decode changes the tensor", what, pp->resize, pp->crop);
    free(a);
    free(b);
    return ra;
}

/* Every JPEG fixture (4:4:4, 4:2:2, 4:2:0, 4:4:0, progressive, restart
 * markers, gray, CMYK, 20x20, 4000x300), resized up, down and not at all,
 * cropped inside and beyond the image; then dog.jpg and its progressive and
 * restart-marker copies truncated and with flipped bytes, where the decode
 * must fail (or pass) exactly as the whole decode does, also where the damage
 * lies only in rows below the crop. */
static void test_cropped_decode(void **state)
{
    (void)state;
    static const char *files[] = {
        "/usr/share/darknet/data/dog.jpg",   "/usr/share/darknet/data/kite.jpg",
        "/usr/share/darknet/data/scream.jpg", "/usr/share/darknet/data/giraffe.jpg",
        "dog_progressive.jpg", "dog_restart.jpg", "dog_tiny.jpg", "eagle_gray.jpg",
        "horses_cmyk.jpg", "horses_cmyk_im.jpg", "horses_wide.jpg", "scream_422.jpg",
    };
    static const int sizes[][2] = {{256, 224}, {224, 224}, {300, 200}, {100, 224},
                                   {999, 128}, {64, 64},   {7, 5},     {576, 576}};
    int cases = 0, failed = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        buf b = {0};
        if (load(files[f], &b) < 0)
            fail_msg("%s: not found", files[f]);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++, cases++) {
            rn_preprocess pp = rn_preprocess_default();
            pp.resize = sizes[k][0];
            pp.crop = sizes[k][1];
            assert_int_equal(same_both_ways(files[f], b.p, b.n, &pp), RN_OK);
        }
        free(b.p);
    }
    static const char *broken[] = {"/usr/share/darknet/data/dog.jpg", "dog_progressive.jpg",
                                   "dog_restart.jpg"};
    rnd_state = 777;
    for (size_t f = 0; f < sizeof broken / sizeof broken[0]; f++) {
        buf b = {0};
        assert_int_equal(load(broken[f], &b), 0);
        rn_preprocess pp = rn_preprocess_default();
        uint8_t *c = malloc(b.n);
        for (int t = 0; t < 40; t++, cases++) {
            memcpy(c, b.p, b.n);
            size_t len = b.n;
            if (t < 12) { /* cut at 5% .. 99.9%: rows below the crop missing too */
                static const int permille[] = {50, 200, 400, 600, 750, 850, 900, 950, 980, 990,
                                               995, 999};
                len = b.n * permille[t] / 1000;
            } else { /* a few bytes of the scan data changed */
                for (int i = 0; i < 1 + t % 4; i++)
                    c[b.n / 10 + rnd() % (b.n - b.n / 10 - 2)] ^= (uint8_t)(1 + rnd() % 255);
            }
            failed += same_both_ways(broken[f], c, len, &pp) != RN_OK;
            /* a small crop: most rows after it, where only the entropy decoder runs */
            rn_preprocess small = pp;
            small.crop = 32;
            same_both_ways(broken[f], c, len, &small);
            cases++;
        }
        free(c);
        free(b.p);
    }
    printf("# cropped JPEG decode: %d cases as the whole decode (%d failing both ways)\n", cases,
           failed);
    assert_true(failed > 10);
}

/* ImageNet normalisation, BGR order, through rn_image_to_tensor. */
static void test_parity_normalized_bgr(void **state)
{
    (void)state;
    buf img = {0}, ref = {0};
    if (load("/usr/share/darknet/data/dog.jpg", &img) < 0)
        fail_msg("dog.jpg: not found (the photos come from Debian's darknet package)");
    assert_int_equal(load("dog.rgb", &ref), 0);
    rn_preprocess pp = rn_preprocess_default();
    pp.bgr = 1;
    for (int c = 0; c < 3; c++) { /* per output channel: B, G, R */
        pp.mean[c] = rn_preprocess_default().mean[2 - c];
        pp.std[c] = rn_preprocess_default().std[2 - c];
    }
    float *out = malloc(sizeof(float) * 3 * 224 * 224);
    char err[256];
    assert_int_equal(rn_image_to_tensor(img.p, img.n, NULL, &pp, out, err, sizeof err), RN_OK);
    double worst = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 224 * 224; i++) {
            float v = ref.p[i * 3 + (2 - c)] / 255.0f; /* ToTensor, then Normalize */
            float want = (v - pp.mean[c]) / pp.std[c];
            double d = fabs(out[c * 224 * 224 + i] - want);
            worst = d > worst ? d : worst;
        }
    printf("# normalized BGR: max |diff| %.3g (1/255/std = %.3g)\n", worst, 1 / 255.0 / 0.225);
    assert_true(worst < 1e-5);
    free(out);
    free(img.p);
    free(ref.p);
}

/* ---- PNG variants PIL would read, written here with libpng ---------- */

typedef struct membuf {
    uint8_t *p;
    size_t n, cap;
} membuf;

static void mem_write(png_structp png, png_bytep d, size_t n)
{
    membuf *m = png_get_io_ptr(png);
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2;
        m->p = realloc(m->p, m->cap);
    }
    memcpy(m->p + m->n, d, n);
    m->n += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

/* A w x h PNG of depth/type; sample s of row y is (s*37 + y*101) mod 2^depth,
 * or (s*997 + y*7919) & 0xffff at 16 bits. */
static membuf make_png(int w, int h, int depth, int type, int interlace, const png_color *pal,
                       int npal, const png_byte *trans, int ntrans)
{
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng write failed");
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, w, h, depth, type, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal)
        png_set_PLTE(png, info, pal, npal);
    png_color_16 tc = {.gray = 3};
    if (ntrans)
        png_set_tRNS(png, info, trans, ntrans, type == PNG_COLOR_TYPE_GRAY ? &tc : NULL);
    png_write_info(png, info);
    int ch = type == PNG_COLOR_TYPE_GRAY_ALPHA  ? 2
             : type == PNG_COLOR_TYPE_RGB_ALPHA ? 4
             : type == PNG_COLOR_TYPE_RGB       ? 3
                                                : 1;
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    png_bytep data = calloc(rowbytes, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * ch; x++) {
            int v = (x * 37 + y * 101) % (1 << depth); /* sample value */
            png_bytep r = data + rowbytes * y;
            if (depth == 16) {
                v = (x * 997 + y * 7919) & 0xffff;
                r[2 * x] = (png_byte)(v >> 8);
                r[2 * x + 1] = (png_byte)v;
            } else if (depth == 8) {
                r[x] = (png_byte)v;
            } else {
                int per = 8 / depth, shift = 8 - depth * (x % per + 1);
                r[x / per] |= (png_byte)(v << shift);
            }
        }
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    for (int y = 0; y < h; y++)
        rows[y] = data + rowbytes * y;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(data);
    return m;
}

static void check_png(int depth, int type, int interlace, int ch, const png_color *pal, int npal,
                      const png_byte *trans, int ntrans)
{
    int w = 37, h = 23;
    membuf m = make_png(w, h, depth, type, interlace, pal, npal, trans, ntrans);
    rn_image im;
    char err[256];
    int rc = rn_image_decode(m.p, m.n, NULL, &im, err, sizeof err);
    if (rc != RN_OK)
        fail_msg("depth %d type %d: %s", depth, type, err);
    assert_int_equal(im.width, w);
    assert_int_equal(im.height, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                int want;
                int gray_like = type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA;
                if (type == PNG_COLOR_TYPE_PALETTE) {
                    int idx = (x * 37 + y * 101) % (1 << depth);
                    const png_color *p = &pal[idx];
                    want = idx < npal ? (c == 0 ? p->red : c == 1 ? p->green : p->blue) : 0;
                } else if (depth == 16) {
                    int sx = x * ch + (gray_like ? 0 : c);
                    want = ((sx * 997 + y * 7919) & 0xffff) >> 8;
                } else {
                    int sx = x * ch + (gray_like ? 0 : c);
                    int v = (sx * 37 + y * 101) % (1 << depth);
                    want = depth == 8 ? v : v * 255 / ((1 << depth) - 1);
                }
                if (im.rgb[(y * w + x) * 3 + c] != want)
                    fail_msg("depth %d type %d interlace %d: (%d,%d,%d) = %d, want %d", depth, type,
                             interlace, x, y, c, im.rgb[(y * w + x) * 3 + c], want);
            }
    rn_image_free(&im);
    free(m.p);
}

static void test_png_variants(void **state)
{
    (void)state;
    png_color pal[256];
    for (int i = 0; i < 256; i++)
        pal[i] = (png_color){(png_byte)i, (png_byte)(255 - i), (png_byte)(i * 7)};
    png_byte trans[3] = {0, 128, 255};
    for (int il = 0; il <= 1; il++) {
        check_png(1, PNG_COLOR_TYPE_GRAY, il, 1, NULL, 0, NULL, 0);
        check_png(2, PNG_COLOR_TYPE_GRAY, il, 1, NULL, 0, NULL, 0);
        check_png(4, PNG_COLOR_TYPE_GRAY, il, 1, NULL, 0, NULL, 0);
        check_png(8, PNG_COLOR_TYPE_GRAY, il, 1, NULL, 0, trans, 1); /* gray tRNS: ignored */
        check_png(16, PNG_COLOR_TYPE_GRAY, il, 1, NULL, 0, NULL, 0);
        check_png(8, PNG_COLOR_TYPE_GRAY_ALPHA, il, 2, NULL, 0, NULL, 0);
        check_png(16, PNG_COLOR_TYPE_GRAY_ALPHA, il, 2, NULL, 0, NULL, 0);
        check_png(8, PNG_COLOR_TYPE_RGB, il, 3, NULL, 0, NULL, 0);
        check_png(16, PNG_COLOR_TYPE_RGB, il, 3, NULL, 0, NULL, 0);
        check_png(8, PNG_COLOR_TYPE_RGB_ALPHA, il, 4, NULL, 0, NULL, 0);
        check_png(16, PNG_COLOR_TYPE_RGB_ALPHA, il, 4, NULL, 0, NULL, 0);
        check_png(1, PNG_COLOR_TYPE_PALETTE, il, 1, pal, 2, NULL, 0);
        check_png(4, PNG_COLOR_TYPE_PALETTE, il, 1, pal, 16, trans, 3);
        check_png(8, PNG_COLOR_TYPE_PALETTE, il, 1, pal, 256, trans, 3);
    }
}

/* ---- the bad-image corpus --------------------------------------------- */

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Decode data and require status want (or any image error for want == 1),
 * a message on failure, and a zeroed image. */
static int expect(const char *what, const uint8_t *p, size_t n, const rn_image_params *ip, int want)
{
    rn_image im;
    char err[256] = "";
    int rc = rn_image_decode(p, n, ip, &im, err, sizeof err);
    if (want == 1 ? !(rc == RN_OK || rc == RN_ERR_IMAGE_FORMAT || rc == RN_ERR_IMAGE_CORRUPT ||
                      rc == RN_ERR_IMAGE_TOO_LARGE || rc == RN_ERR_UNSUPPORTED)
                  : rc != want)
        fail_msg("%s: status %d (%s), want %d", what, rc, err, want);
    if (rc < 0) {
        assert_true(err[0] != '\0');
        assert_null(im.rgb);
        if (want != 1)
            printf("# %-28s -> %s: %s\n", what, rn_strerror(rc), err);
    } else {
        assert_true(im.width > 0 && im.height > 0);
        rn_image_free(&im);
    }
    return rc;
}

static size_t find(const buf *b, const char *m, size_t n)
{
    for (size_t i = 0; i + n <= b->n; i++)
        if (!memcmp(b->p + i, m, n))
            return i;
    fail_msg("marker not found");
    return 0;
}

static void test_bad_jpeg(void **state)
{
    (void)state;
    buf b = {0};
    assert_int_equal(load("dog_progressive.jpg", &b), 0);
    buf r = {0};
    assert_int_equal(load("dog_restart.jpg", &r), 0);
    rn_image_params ip = rn_image_default_params();
    expect("empty", b.p, 0, &ip, RN_ERR_IMAGE_FORMAT);
    expect("SOI only", b.p, 3, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("truncated in header", b.p, 100, &ip, RN_ERR_IMAGE_CORRUPT);
    size_t sos = find(&b, "\xff\xda", 2);
    expect("header only (cut at SOS)", b.p, sos, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("progressive cut at 50%", b.p, b.n / 2, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("progressive cut at 99%", b.p, b.n - b.n / 100, &ip, RN_ERR_IMAGE_CORRUPT);
    size_t last_sos = sos;
    for (size_t i = sos + 2; i + 1 < b.n; i++)
        if (b.p[i] == 0xff && b.p[i + 1] == 0xda)
            last_sos = i;
    assert_true(last_sos > sos);
    expect("progressive, last scan gone", b.p, last_sos, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("baseline cut at 30%", r.p, r.n * 3 / 10, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("baseline cut 10 bytes short", r.p, r.n - 10, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("only EOI missing (as PIL)", r.p, r.n - 2, &ip, RN_OK);

    uint8_t *c = malloc(r.n);
    size_t sof = find(&r, "\xff\xc0", 2); /* FFC0 len(2) P(1) H(2) W(2) */
    memcpy(c, r.p, r.n);
    c[sof + 5] = c[sof + 6] = c[sof + 7] = c[sof + 8] = 0xff;
    expect("declares 65535x65535", c, r.n, &ip, RN_ERR_IMAGE_TOO_LARGE); /* libjpeg's limit */
    c[sof + 5] = c[sof + 7] = 0xea;                                      /* 60000x60000: ours */
    c[sof + 6] = c[sof + 8] = 0x60;
    expect("declares 60000x60000", c, r.n, &ip, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, r.p, r.n);
    c[sof + 5] = c[sof + 6] = 0;
    expect("declares height 0", c, r.n, &ip, RN_ERR_IMAGE_TOO_LARGE);
    rn_image_params small = ip;
    small.max_pixels = 768 * 576 - 1;
    expect("one pixel over max_pixels", r.p, r.n, &small, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, r.p, r.n);
    c[sof + 9] = 2; /* two components */
    expect("two components", c, r.n, &ip, 1);
    /* entropy data replaced by noise / a restart marker out of order */
    memcpy(c, r.p, r.n);
    srand(7);
    for (size_t i = r.n / 2; i < r.n / 2 + 2000; i++)
        c[i] = (uint8_t)rand();
    expect("noise in entropy data", c, r.n, &ip, 1);
    memcpy(c, b.p, 4);
    for (size_t i = 4; i < r.n; i++)
        c[i] = (uint8_t)rand();
    expect("SOI then random bytes", c, r.n, &ip, RN_ERR_IMAGE_CORRUPT);
    /* single bit flips all over both files: an error or an image, never a crash */
    int errors = 0, flips = 0;
    for (int f = 0; f < 2; f++) {
        const buf *s = f ? &r : &b;
        for (size_t i = 0; i < s->n; i += s->n / 97 + 1, flips++) {
            memcpy(c, s->p, s->n);
            c[i] ^= (uint8_t)(1 << (i % 8));
            errors += expect("bit flip", c, s->n, &ip, 1) < 0;
        }
    }
    printf("# JPEG bit flips: %d of %d decodes refused\n", errors, flips);
    free(c);
    free(b.p);
    free(r.p);
}

static void test_bad_png(void **state)
{
    (void)state;
    buf b = {0};
    assert_int_equal(load("kite_rgb.png", &b), 0);
    buf il = {0};
    assert_int_equal(load("dog_interlaced.png", &il), 0);
    rn_image_params ip = rn_image_default_params();
    expect("signature only", b.p, 8, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("header only (IHDR)", b.p, 33, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("cut at 50%", b.p, b.n / 2, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("interlaced cut at 90%", il.p, il.n * 9 / 10, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("cut in the last IDAT CRC", b.p, b.n - 14, &ip, RN_ERR_IMAGE_CORRUPT);
    expect("only IEND missing (as PIL)", b.p, b.n - 12, &ip, RN_OK);

    uint8_t *c = malloc(b.n);
    memcpy(c, b.p, b.n);
    put32(c + 16, 100000);
    put32(c + 20, 100000);
    put32(c + 29, crc32_of(c + 12, 17));
    expect("declares 100000x100000", c, b.n, &ip, RN_ERR_IMAGE_TOO_LARGE);
    put32(c + 16, 0xffffffffu); /* found by fuzzing: w*h overflowed int64 */
    put32(c + 20, 0xffffffffu);
    put32(c + 29, crc32_of(c + 12, 17));
    expect("declares 4294967295x4294967295", c, b.n, &ip, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    put32(c + 16, 0);
    put32(c + 29, crc32_of(c + 12, 17));
    expect("declares width 0", c, b.n, &ip, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, b.n);
    c[30] ^= 1;
    expect("bad IHDR CRC", c, b.n, &ip, RN_ERR_IMAGE_CORRUPT);
    size_t idat = find(&b, "IDAT", 4);
    memcpy(c, b.p, b.n);
    c[idat + 100] ^= 0x10;
    expect("IDAT data byte flipped", c, b.n, &ip, RN_ERR_IMAGE_CORRUPT);
    memcpy(c, b.p, b.n);
    size_t idat_len = (size_t)c[idat - 4] << 24 | (size_t)c[idat - 3] << 16 |
                      (size_t)c[idat - 2] << 8 | c[idat - 1];
    c[idat + 4 + idat_len] ^= 1; /* the first IDAT's CRC */
    rn_image im;
    char err[256];
    assert_int_equal(rn_image_decode(c, b.n, &ip, &im, err, sizeof err), RN_ERR_IMAGE_CORRUPT);
    printf("# %-28s -> %s\n", "bad IDAT CRC", err);
    assert_non_null(strstr(err, "CRC"));
    memcpy(c, b.p, b.n);
    c[16] = 0x80; /* width >= 2^31, CRC fixed: libpng's own check */
    put32(c + 29, crc32_of(c + 12, 17));
    expect("width 2^31", c, b.n, &ip, RN_ERR_IMAGE_TOO_LARGE);
    memcpy(c, b.p, 8);
    for (size_t i = 8; i < b.n; i++)
        c[i] = (uint8_t)rand();
    expect("signature then random bytes", c, b.n, &ip, RN_ERR_IMAGE_CORRUPT);
    int errors = 0, flips = 0;
    for (size_t i = 0; i < b.n; i += b.n / 97 + 1, flips++) {
        memcpy(c, b.p, b.n);
        c[i] ^= (uint8_t)(1 << (i % 8));
        errors += expect("bit flip", c, b.n, &ip, 1) < 0;
    }
    printf("# PNG bit flips: %d of %d decodes refused\n", errors, flips);
    free(c);
    free(b.p);
    free(il.p);
}

static void test_bad_other(void **state)
{
    (void)state;
    rn_image_params ip = rn_image_default_params();
    expect("GIF header only (a decoded format)", (const uint8_t *)"GIF89a\1\0\1\0", 10, &ip,
           RN_ERR_IMAGE_CORRUPT);
    expect("HEIF", (const uint8_t *)"\0\0\0\x18" "ftypheic\0\0\0\0", 16, &ip, RN_ERR_IMAGE_FORMAT);
    expect("text", (const uint8_t *)"hello world", 11, &ip, RN_ERR_IMAGE_FORMAT);
    expect("one byte", (const uint8_t *)"\xff", 1, &ip, RN_ERR_IMAGE_FORMAT);
    uint8_t rnd[4096];
    srand(11);
    for (int i = 0; i < 4096; i++)
        rnd[i] = (uint8_t)rand();
    rnd[0] = 0x00;
    expect("random bytes", rnd, sizeof rnd, &ip, RN_ERR_IMAGE_FORMAT);
    rn_image im;
    assert_int_equal(rn_image_decode(NULL, 5, &ip, &im, NULL, 0), RN_ERR_INVALID_ARG);
    rn_image_free(NULL);
    rn_image_free(&im);
}

/* ---- preprocess parameters -------------------------------------------- */

static void test_preprocess_parse(void **state)
{
    (void)state;
    rn_preprocess pp;
    char err[256];
    assert_int_equal(rn_preprocess_parse("{\"resize\":256,\"crop\":224,\"scale\":"
                                         "0.00392156862745098,\"mean\":[0.485,0.456,0.406],"
                                         "\"std\":[0.229,0.224,0.225],\"order\":\"RGB\"}",
                                         &pp, err, sizeof err),
                     RN_OK);
    rn_preprocess d = rn_preprocess_default();
    assert_memory_equal(&pp, &d, sizeof pp);
    assert_int_equal(rn_preprocess_parse("{\"order\":\"BGR\",\"crop\":299}", &pp, err, sizeof err),
                     RN_OK);
    assert_int_equal(pp.bgr, 1);
    assert_int_equal(pp.crop, 299);
    assert_int_equal(pp.resize, 256);
    static const char *bad[] = {
        "",
        "[1,2]",
        "{\"resize\":0}",
        "{\"resize\":2.5}",
        "{\"crop\":\"224\"}",
        "{\"scale\":-1}",
        "{\"mean\":[1,2]}",
        "{\"std\":[1,0,1]}",
        "{\"std\":[1,\"a\",1]}",
        "{\"order\":\"RGBA\"}",
        "{\"means\":[0,0,0]}",
        "{\"resize\":256",
        "{\"crop\":1e9}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        pp = d;
        int rc = rn_preprocess_parse(bad[i], &pp, err, sizeof err);
        if (rc != RN_ERR_FORMAT)
            fail_msg("'%s' parsed (status %d)", bad[i], rc);
        printf("# %-24s -> %s\n", bad[i], err);
        assert_memory_equal(&pp, &d, sizeof pp); /* untouched on failure */
    }
    rn_image im = {.width = 4, .height = 4, .rgb = calloc(48, 1)};
    float out[3 * 8 * 8];
    rn_preprocess z = d;
    z.std[1] = 0;
    assert_int_equal(rn_image_preprocess(&im, &z, out, err, sizeof err), RN_ERR_INVALID_ARG);
    z = pixel_pp(4, 8); /* padding: zeros around the 4x4 image */
    memset(im.rgb, 200, 48);
    assert_int_equal(rn_image_preprocess(&im, &z, out, err, sizeof err), RN_OK);
    assert_true(out[0] == 0.0f && out[2 * 8 + 2] == 200.0f && out[5 * 8 + 5] == 200.0f &&
                out[6 * 8 + 6] == 0.0f);
    rn_image_free(&im);
}

int main(void)
{
    rn_set_log(NULL, NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_pixels), cmocka_unit_test(test_parity_normalized_bgr),
        cmocka_unit_test(test_dct_scaling),   cmocka_unit_test(test_png_variants),
        cmocka_unit_test(test_bad_jpeg),      cmocka_unit_test(test_bad_png),
        cmocka_unit_test(test_bad_other),     cmocka_unit_test(test_preprocess_parse),
        cmocka_unit_test(test_resize_tables), cmocka_unit_test(test_cropped_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
