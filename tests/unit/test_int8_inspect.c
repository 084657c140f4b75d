/* The inspection of INT8 models against its independent reference:
 * tests/fixtures/int8/inspect.json, made by inspect_reference.py from
 * reference.py's numpy reading of docs/int8.md (never this library), for
 * every fixture model of tests/fixtures/int8/ on every image of its cases
 * (each alone) and on a larger synthetic image. On every INT8 kernel table
 * this CPU runs: the logits and embedding are the reference's batch's to the
 * bit (an image inspected alone gives what it gave in its batch); every
 * block's norms, ratios and cosines within 1e-9 relative (they are the same
 * float32 tensors summed in double in another order); every lesion's top-1
 * exactly, its logits and embedding to the bit, its probabilities, KL and
 * embedding cosine within 1e-9; the top-1's class activation map within 1e-6 of its
 * largest value. Without lesions: the same measures and no lesion. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "fixture.h"
#include "near.h"
#include "resnet.h"

#define DIR "tests/fixtures/int8/"

static void same_bits(const char *what, const char *block, const char *field, const float *got,
                      const float *want, int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)))
            fail_msg("%s %s %s: element %d is %.9g, the reference %.9g", what, block, field, i,
                     got[i], want[i]);
}

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* inspect_reference.py's synthetic image: exact in float32 */
static float *synthetic(int h, int w)
{
    float *x = malloc((size_t)3 * h * w * sizeof(float));
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int i = 0; i < w; i++)
                x[((size_t)c * h + y) * w + i] =
                    (float)((7 * c + 13 * y + 29 * i + (i * y) % 17) % 41 - 20) / 8.0f;
    return x;
}

static int checked;

static void check_image(rn_model *m, rn_ctx *ctx, const cJSON *c, const char *what)
{
    char err[512], path[512];
    const rn_model_info *info = rn_model_info_get(m);
    int nc = info->n_classes, e = info->embed_dim;
    int n = (int)num(c, "n"), h = (int)num(c, "h"), w = (int)num(c, "w"), img = (int)num(c, "image");
    const char *input = cJSON_GetObjectItem(c, "input")->valuestring;
    size_t len, isz = (size_t)3 * h * w;
    float *batch = NULL, *x, *ref_l = NULL, *ref_e = NULL;
    if (!strcmp(input, "synthetic")) {
        x = batch = synthetic(h, w);
    } else {
        snprintf(path, sizeof path, DIR "%s", input);
        batch = fixture_read(path, &len);
        assert_int_equal(len, (size_t)n * isz * 4);
        x = batch + (size_t)img * isz;
        snprintf(path, sizeof path, DIR "%s", cJSON_GetObjectItem(c, "logits_file")->valuestring);
        ref_l = fixture_read(path, &len);
        snprintf(path, sizeof path, DIR "%s", cJSON_GetObjectItem(c, "embed_file")->valuestring);
        ref_e = fixture_read(path, &len);
    }
    rn_inspection *r;
    if (rn_inspect(ctx, x, h, w, NULL, &r, err, sizeof err) < 0)
        fail_msg("%s: %s", what, err);
    /* one image alone: its row of the reference's batch, to the bit */
    if (ref_l) {
        same_bits(what, "", "logits", r->logits, ref_l + (size_t)img * nc, nc);
        same_bits(what, "", "embedding", r->embed, ref_e + (size_t)img * e, e);
    }
    float *lg = malloc((size_t)nc * 4), *em = malloc((size_t)e * 4);
    if (rn_infer(ctx, x, 1, h, w, lg, em, err, sizeof err) < 0)
        fail_msg("%s", err);
    same_bits(what, "", "logits (rn_infer)", r->logits, lg, nc);
    same_bits(what, "", "embedding (rn_infer)", r->embed, em, e);

    const cJSON *blocks = cJSON_GetObjectItem(c, "blocks");
    assert_int_equal(r->n_blocks, cJSON_GetArraySize(blocks));
    assert_true(r->lesions && r->lesion_logits && r->lesion_embed);
    float *want = malloc((size_t)nc * 4);
    double les = 0;
    for (int i = 0; i < r->n_blocks; i++) {
        const cJSON *b = cJSON_GetArrayItem(blocks, i), *lj = cJSON_GetObjectItem(b, "lesion");
        const rn_block_report *br = &r->blocks[i];
        expect_block(what, i, br, b, "the reference");
        const char *name = br->name; /* the reference\'s too */
        static const struct {
            const char *k;
            size_t off;
        } f[] = {
#define F(x) {#x, offsetof(rn_block_report, x)}
            F(x_norm), F(s_norm), F(f_norm), F(y_norm), F(f_over_s), F(f_over_x), F(cos_sf), F(cos_xy),
#undef F
        };
        for (size_t j = 0; j < sizeof f / sizeof f[0]; j++)
            near(what, name, f[j].k, *(const double *)((const char *)br + f[j].off), num(b, f[j].k),
                 1e-9, 1e-12);
        if (br->lesion_top1 != (int)num(lj, "top1"))
            fail_msg("%s %s: lesioned top-1 %d, the reference %d", what, name, br->lesion_top1,
                     (int)num(lj, "top1"));
        const cJSON *ll = cJSON_GetObjectItem(lj, "logits");
        assert_int_equal(cJSON_GetArraySize(ll), nc);
        for (int k = 0; k < nc; k++)
            want[k] = (float)cJSON_GetArrayItem(ll, k)->valuedouble;
        same_bits(what, name, "lesioned logits", r->lesion_logits + (size_t)i * nc, want, nc);
        char hash[20];
        snprintf(hash, sizeof hash, "%016llx",
                 (unsigned long long)fnv1a(r->lesion_embed + (size_t)i * e, (size_t)e * 4));
        if (strcmp(hash, cJSON_GetObjectItem(lj, "embed_fnv1a")->valuestring))
            fail_msg("%s %s: the lesioned embedding's bits differ from the reference's", what, name);
        near(what, name, "lesion top1_prob", br->lesion_top1_prob, num(lj, "top1_prob"), 1e-9, 1e-12);
        near(what, name, "lesion orig_prob", br->lesion_orig_prob, num(lj, "orig_prob"), 1e-9, 1e-12);
        near(what, name, "lesion kl", br->lesion_kl, num(lj, "kl"), 1e-9, 1e-12);
        near(what, name, "lesion embed_cos", br->lesion_embed_cos, num(lj, "embed_cos"), 1e-9, 1e-12);
        assert_true(br->lesion_ops > 0);
        les += br->lesion_gflops;
    }
    assert_true(fabs(les - r->lesion_gflops) <= 1e-9 * les);

    /* the top-1's class activation map */
    const cJSON *cj = cJSON_GetObjectItem(c, "cam"), *grid = cJSON_GetObjectItem(cj, "grid");
    int top = (int)num(cj, "class"), hw = r->map_h * r->map_w;
    assert_int_equal(top, (int)num(c, "top1"));
    assert_int_equal(r->map_c, e);
    assert_int_equal(r->map_h, (int)num(cj, "h"));
    assert_int_equal(r->map_w, (int)num(cj, "w"));
    assert_int_equal(cJSON_GetArraySize(grid), hw);
    float *cam = malloc((size_t)hw * 4);
    assert_int_equal(rn_inspection_cam(m, r, top, cam), RN_OK);
    double md = 0, mx = 0;
    for (int i = 0; i < hw; i++) {
        double v = cJSON_GetArrayItem(grid, i)->valuedouble;
        md = fmax(md, fabs(cam[i] - v));
        mx = fmax(mx, fabs(v));
    }
    if (!(md <= 1e-6 * mx))
        fail_msg("%s: CAM of class %d: max |diff| %g, max |CAM| %g", what, top, md, mx);

    /* without lesions: the same measurements, no lesion */
    rn_inspect_params ip = rn_inspect_default_params();
    ip.lesions = 0;
    rn_inspection *r0;
    if (rn_inspect(ctx, x, h, w, &ip, &r0, err, sizeof err) < 0)
        fail_msg("%s: %s", what, err);
    assert_false(r0->lesions);
    assert_null(r0->lesion_logits);
    same_bits(what, "", "logits without lesions", r0->logits, r->logits, nc);
    for (int i = 0; i < r->n_blocks; i++) {
        assert_int_equal(r0->blocks[i].lesion_top1, -1);
        assert_true(r0->blocks[i].f_norm == r->blocks[i].f_norm);
        assert_true(r0->blocks[i].cos_sf == r->blocks[i].cos_sf);
    }
    rn_inspection_free(r0);
    free(cam);
    free(want);
    free(lg);
    free(em);
    free(ref_l);
    free(ref_e);
    free(batch);
    rn_inspection_free(r);
    checked++;
}

static cJSON *cases;

/* state: the enum rn_isa whose INT8 table runs */
static void test_int8_inspect(void **state)
{
    int isa = (int)(intptr_t)*state;
    if (!rn_isa_supported(isa))
        skip();
    char err[512], path[512], what[160];
    const char *prev = NULL;
    rn_model *m = NULL;
    rn_ctx *ctx = NULL;
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cases)
    {
        const char *model = cJSON_GetObjectItem(c, "model")->valuestring;
        if (!prev || strcmp(prev, model)) {
            rn_ctx_free(ctx);
            rn_model_free(m);
            snprintf(path, sizeof path, DIR "%s", model);
            rn_model_params mp = rn_model_default_params();
            mp.isa = isa;
            if (rn_model_load(path, &mp, &m, err, sizeof err) < 0)
                fail_msg("%s", err);
            assert_int_equal(rn_model_info_get(m)->precision, RN_PRECISION_INT8);
            rn_ctx_params cp = rn_ctx_default_params();
            const char *mt = getenv("RN_TEST_MAX_THREADS"); /* 1 under qemu-user */
            cp.n_threads = mt && !strcmp(mt, "1") ? 1 : 2;
            cp.max_size = 32; /* the inspection grows the context */
            if (rn_ctx_new(m, &cp, &ctx, err, sizeof err) < 0)
                fail_msg("%s", err);
            prev = model;
        }
        snprintf(what, sizeof what, "%s %s %s image %d (%dx%d)", model, rn_isa_name(isa),
                 cJSON_GetObjectItem(c, "input")->valuestring, (int)num(c, "image"),
                 (int)num(c, "h"), (int)num(c, "w"));
        check_image(m, ctx, c, what);
        n++;
    }
    rn_ctx_free(ctx);
    rn_model_free(m);
    assert_true(n >= 64);
    print_message("%s: %d images, every block and lesion as the reference\n", rn_isa_name(isa), n);
}

int main(int argc, char **argv)
{
    rn_set_log(NULL, NULL, 0);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    size_t len;
    char *txt = fixture_read(DIR "inspect.json", &len);
    cases = cJSON_Parse(txt);
    free(txt);
    if (!cases) {
        printf("not ok - " DIR "inspect.json does not parse\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        {"int8_inspect_avx512", test_int8_inspect, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"int8_inspect_avx2", test_int8_inspect, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"int8_inspect_neon", test_int8_inspect, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"int8_inspect_c", test_int8_inspect, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cJSON_Delete(cases);
    return rc;
}
