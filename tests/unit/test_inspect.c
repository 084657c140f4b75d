/* The inspection against PyTorch: for each parity fixture model (v1 basic and
 * bottleneck, ResNeXt, Keras-style v1, three stages, timm ResNet-D/T, timm
 * resnetv2), every block's norms, ratios and cosines and every lesion's top-1,
 * probabilities, KL and embedding cosine, against
 * tests/fixtures/inspect/fixtures.json (make_inspect_fixtures.py: forward
 * hooks on the PyTorch blocks, lesions by replacing a block's forward):
 * within 1e-3 relative, KL within 1e-3 absolute; the top-1 class activation
 * map within 1e-4 of the largest |CAM|. On every ISA this CPU runs, and on the
 * same weights loaded from .pth and ONNX files (manifest_formats.json). Also: the
 * logits and embedding are rn_infer's to the bit, the lesions can be turned
 * off, and bad arguments are refused. */
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

#define PARITY "tests/fixtures/parity/"
#define FIX "tests/fixtures/inspect/"

static int checked;

/* A reference case, on its safetensors file or on the same weights in another
 * format (tests/fixtures/parity/manifest_formats.json: .pth, ONNX). */
struct inspect_case {
    const cJSON *c;
    char file[96];
};

static void check_case(const struct inspect_case *ic, int isa)
{
    char path[512], err[512], what[160];
    const cJSON *c = ic->c;
    const char *file = ic->file;
    snprintf(path, sizeof path, PARITY "%s", file);
    rn_model_params mp = rn_model_default_params();
    mp.isa = isa;
    rn_model *m;
    if (rn_model_load(path, &mp, &m, err, sizeof err) < 0)
        fail_msg("%s", err);
    snprintf(what, sizeof what, "%s %s", file, rn_isa_name(rn_model_info_get(m)->isa));
    int h = (int)num(c, "h"), w = (int)num(c, "w");
    snprintf(path, sizeof path, PARITY "%s", cJSON_GetObjectItem(c, "input")->valuestring);
    size_t len;
    float *in = fixture_read(path, &len);
    assert_int_equal(len, (size_t)3 * h * w * 4);
    rn_ctx_params cp = rn_ctx_default_params();
    const char *mt = getenv("RN_TEST_MAX_THREADS"); /* 1 under qemu-user (tests/aarch64.sh) */
    cp.n_threads = mt && !strcmp(mt, "1") ? 1 : 2;
    cp.max_size = 32; /* the inspection must grow the context */
    rn_ctx *ctx;
    if (rn_ctx_new(m, &cp, &ctx, err, sizeof err) < 0)
        fail_msg("%s", err);
    rn_inspection *r;
    if (rn_inspect(ctx, in, h, w, NULL, &r, err, sizeof err) < 0)
        fail_msg("%s: %s", what, err);
    const rn_model_info *info = rn_model_info_get(m);

    /* the same forward pass as rn_infer */
    float *lg = calloc(info->n_classes, 4), *em = calloc(info->embed_dim, 4);
    if (rn_infer(ctx, in, 1, h, w, lg, em, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_memory_equal(lg, r->logits, (size_t)info->n_classes * 4);
    assert_memory_equal(em, r->embed, (size_t)info->embed_dim * 4);

    const cJSON *probs = cJSON_GetObjectItem(c, "probs"), *top5 = cJSON_GetObjectItem(c, "top5");
    int top = cJSON_GetArrayItem(top5, 0)->valueint;
    for (int i = 0; i < cJSON_GetArraySize(top5); i++) {
        int k = cJSON_GetArrayItem(top5, i)->valueint;
        near(what, "top-5", "probability", r->probs[k], cJSON_GetArrayItem(probs, i)->valuedouble,
             1e-3, 1e-6);
    }
    const cJSON *blocks = cJSON_GetObjectItem(c, "blocks");
    assert_int_equal(r->n_blocks, cJSON_GetArraySize(blocks));
    assert_true(r->lesions);
    double les = 0;
    for (int i = 0; i < r->n_blocks; i++) {
        const cJSON *b = cJSON_GetArrayItem(blocks, i);
        const rn_block_report *br = &r->blocks[i];
        expect_block(what, i, br, b, "PyTorch");
        const char *name = br->name; /* the reference\'s too */
        static const struct {
            const char *k;
            size_t off;
        } f[] = {
#define F(x) {#x, offsetof(rn_block_report, x)}
            F(x_norm), F(s_norm), F(f_norm), F(y_norm), F(f_over_s), F(f_over_x), F(cos_sf),
            F(cos_xy), F(lesion_top1_prob), F(lesion_orig_prob), F(lesion_embed_cos),
#undef F
        };
        for (size_t j = 0; j < sizeof f / sizeof f[0]; j++)
            near(what, name, f[j].k, *(const double *)((const char *)br + f[j].off), num(b, f[j].k),
                 1e-3, 1e-7);
        near(what, name, "lesion_kl", br->lesion_kl, num(b, "lesion_kl"), 0, 1e-3);
        /* a near tie may flip the lesioned top-1 within the tolerance */
        int lt = (int)num(b, "lesion_top1");
        if (br->lesion_top1 != lt && fabs(br->lesion_top1_prob - num(b, "lesion_top1_prob")) > 1e-3)
            fail_msg("%s %s: lesioned top-1 %d, PyTorch %d", what, name, br->lesion_top1, lt);
        assert_true(br->lesion_ops > 0);
        les += br->lesion_gflops;
    }
    assert_true(fabs(les - r->lesion_gflops) <= 1e-9 * les);
    assert_true(r->lesion_gflops > 0 && r->forward_gflops > 0);

    /* the top-1 class activation map */
    const cJSON *cam = cJSON_GetObjectItem(c, "cam");
    assert_int_equal((int)num(cam, "class"), top);
    assert_int_equal(r->map_h, (int)num(cam, "h"));
    assert_int_equal(r->map_w, (int)num(cam, "w"));
    int hw = r->map_h * r->map_w;
    float *g = calloc(hw, 4);
    assert_int_equal(rn_inspection_cam(m, r, top, g), RN_OK);
    const cJSON *grid = cJSON_GetObjectItem(cam, "grid");
    assert_int_equal(cJSON_GetArraySize(grid), hw);
    double md = 0, mx = 0;
    for (int i = 0; i < hw; i++) {
        double want = cJSON_GetArrayItem(grid, i)->valuedouble;
        md = fmax(md, fabs(g[i] - want));
        mx = fmax(mx, fabs(want));
    }
    if (!(md <= 1e-4 * mx))
        fail_msg("%s: CAM of class %d: max |diff| %g, max |CAM| %g", what, top, md, mx);
    assert_int_equal(rn_inspection_cam(m, r, -1, g), RN_ERR_INVALID_ARG);
    assert_int_equal(rn_inspection_cam(m, r, info->n_classes, g), RN_ERR_INVALID_ARG);
    print_message("%s: %d blocks, lesions %.3f GFLOP against %.3f for one forward pass, CAM rel err %.1e\n",
                  what, r->n_blocks, r->lesion_gflops, r->forward_gflops, md / (mx > 0 ? mx : 1));

    /* without lesions: the same measurements, no lesion fields */
    rn_inspect_params ip = rn_inspect_default_params();
    ip.lesions = 0;
    rn_inspection *r2;
    if (rn_inspect(ctx, in, h, w, &ip, &r2, err, sizeof err) < 0)
        fail_msg("%s: %s", what, err);
    assert_false(r2->lesions);
    assert_memory_equal(r2->logits, r->logits, (size_t)info->n_classes * 4);
    for (int i = 0; i < r->n_blocks; i++) {
        assert_int_equal(r2->blocks[i].lesion_top1, -1);
        assert_true(r2->blocks[i].f_norm == r->blocks[i].f_norm);
    }
    rn_inspection_free(r2);
    free(g);
    free(lg);
    free(em);
    free(in);
    rn_inspection_free(r);
    rn_ctx_free(ctx);
    rn_model_free(m);
    checked++;
}

static cJSON *cases;

static void test_inspect(void **state)
{
    const struct inspect_case *c = *state;
    static const int isas[] = {RN_ISA_AVX512, RN_ISA_AVX2, RN_ISA_NEON, RN_ISA_C, RN_ISA_BLAS};
    const char *only = getenv("RN_TEST_ISA");
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!rn_isa_supported(isas[i]) || (only && *only && strcmp(only, rn_isa_name(isas[i]))))
            continue;
        check_case(c, isas[i]);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    char err[256];
    rn_model *m;
    if (rn_model_load(PARITY "basic.safetensors", NULL, &m, err, sizeof err) < 0)
        fail_msg("%s", err);
    rn_ctx *ctx;
    rn_ctx_params cp = rn_ctx_default_params();
    cp.n_threads = 1;
    assert_int_equal(rn_ctx_new(m, &cp, &ctx, err, sizeof err), RN_OK);
    float *in = calloc(3 * 64 * 64, 4);
    rn_inspection *r = (rn_inspection *)1;
    assert_int_equal(rn_inspect(ctx, in, 16, 64, NULL, &r, err, sizeof err), RN_ERR_INVALID_ARG);
    assert_null(r);
    assert_non_null(strstr(err, "16x64"));
    assert_int_equal(rn_inspect(NULL, in, 64, 64, NULL, &r, err, sizeof err), RN_ERR_INVALID_ARG);
    assert_int_equal(rn_inspect(ctx, NULL, 64, 64, NULL, &r, err, sizeof err), RN_ERR_INVALID_ARG);
    assert_int_equal(rn_inspect(ctx, in, 64, 64, NULL, NULL, err, sizeof err), RN_ERR_INVALID_ARG);
    assert_true(rn_inspect_bytes(m, 224, 224) > 0);
    assert_int_equal(rn_inspect_bytes(m, 8, 224), 0);
    rn_inspection_free(NULL);
    free(in);
    rn_ctx_free(ctx);
    rn_model_free(m);
}

int main(void)
{
    size_t len;
    char *txt = fixture_read(FIX "fixtures.json", &len);
    cases = cJSON_Parse(txt);
    free(txt);
    if (!cases)
        return 1;
    /* the same weights as .pth and ONNX files: their n1.64x64 case is the
     * safetensors file's */
    txt = fixture_read(PARITY "manifest_formats.json", &len);
    cJSON *formats = cJSON_Parse(txt);
    free(txt);
    int nc = cJSON_GetArraySize(cases), n = nc + cJSON_GetArraySize(formats);
    struct inspect_case *ic = calloc((size_t)n, sizeof *ic);
    struct CMUnitTest *t = calloc((size_t)n + 1, sizeof *t);
    char (*names)[128] = calloc((size_t)n, sizeof *names);
    int k = 0;
    for (int i = 0; i < nc; i++) {
        ic[k].c = cJSON_GetArrayItem(cases, i);
        snprintf(ic[k].file, sizeof ic[k].file, "%s", cJSON_GetObjectItem(ic[k].c, "model")->valuestring);
        k++;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, formats)
    {
        const char *logits = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(f, "cases"), 0),
                                                 "logits")->valuestring;
        for (int i = 0; i < nc; i++) {
            char want[160];
            const char *m = cJSON_GetObjectItem(ic[i].c, "model")->valuestring;
            snprintf(want, sizeof want, "%.*s.n1.64x64.logits.f32", (int)(strlen(m) - strlen(".safetensors")), m);
            if (strcmp(want, logits))
                continue;
            ic[k].c = ic[i].c;
            snprintf(ic[k].file, sizeof ic[k].file, "%s", cJSON_GetObjectItem(f, "model")->valuestring);
            k++;
            break;
        }
    }
    if (k <= nc + 6) { /* the .pth and ONNX files must be found */
        printf("not ok - manifest_formats.json: only %d of its files have a reference\n", k - nc);
        return 1;
    }
    n = k;
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "inspect_%s", ic[i].file);
        t[i] = (struct CMUnitTest){names[i], test_inspect, NULL, NULL, &ic[i]};
    }
    t[n] = (struct CMUnitTest)cmocka_unit_test(test_refusals);
    int rc = _cmocka_run_group_tests("inspect", t, (size_t)n + 1, NULL, NULL);
    free(t);
    free(names);
    free(ic);
    cJSON_Delete(formats);
    cJSON_Delete(cases);
    return rc;
}
