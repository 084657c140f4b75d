/* Parity with PyTorch: logits and embeddings of the fixture models, made by
 * tests/fixtures/parity/make_fixtures.py, within 1e-4 of torch relative to
 * the largest magnitude, on every ISA this CPU runs (enum rn_isa), with 1 and
 * 2 threads and batches planned both exactly and too small (the context must
 * grow); on the models of make_timm_fixtures.py (timm's ResNet-D and
 * pre-activation ResNet v2 names) also named layer outputs, pooled and whole,
 * with their shapes. Batch invariance on each: every image of a batch, computed alone and
 * in the batch reversed, gives the same bits as in the batch. */
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
#include "resnet.h"

/* RN_PARITY_DIR: another folder of fixtures with the same manifests
 * (tests/e2e/formats_convert.sh: the format fixtures after resnet convert) */
static const char *dir = "tests/fixtures/parity/";

/* name in the fixture folder */
static void *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", dir, name);
    return fixture_read(path, len);
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return md / (mb > 0 ? mb : 1);
}

/* Each image of in (n, 3, h, w) alone, then the batch in reverse order: the
 * same logits and embeddings, to the bit, as the batch gave. */
static void check_invariance(rn_ctx *ctx, const char *file, const char *isa, const float *in, int n, int h, int w,
                             const float *logits, const float *embed, int classes, int edim)
{
    char err[512];
    size_t img = (size_t)3 * h * w;
    float *l1 = calloc((size_t)n * classes, 4), *e1 = calloc((size_t)n * edim, 4);
    float *rin = malloc((size_t)n * img * 4);
    for (int i = 0; i < n; i++) {
        if (rn_infer(ctx, in + i * img, 1, h, w, l1 + (size_t)i * classes, e1 + (size_t)i * edim,
                     err, sizeof err) < 0)
            fail_msg("%s", err);
        memcpy(rin + (size_t)(n - 1 - i) * img, in + i * img, img * 4);
    }
    if (memcmp(l1, logits, (size_t)n * classes * 4) || memcmp(e1, embed, (size_t)n * edim * 4))
        fail_msg("%s %s %dx%d: an image alone differs from the same image in a batch of %d",
                 file, isa, h, w, n);
    if (rn_infer(ctx, rin, n, h, w, l1, e1, err, sizeof err) < 0)
        fail_msg("%s", err);
    for (int i = 0; i < n; i++)
        if (memcmp(l1 + (size_t)(n - 1 - i) * classes, logits + (size_t)i * classes, classes * 4) ||
            memcmp(e1 + (size_t)(n - 1 - i) * edim, embed + (size_t)i * edim, edim * 4))
            fail_msg("%s %s %dx%d: image %d of %d differs at position %d", file, isa, h, w, i, n,
                     n - 1 - i);
    free(l1);
    free(e1);
    free(rin);
}

/* A named layer's output (pooled or the whole map) against PyTorch's. */
static void check_layer(rn_ctx *ctx, const rn_model *m, const char *file, const char *isa,
                        const cJSON *l, const float *in, int n, int h, int w)
{
    char err[512];
    const char *name = cJSON_GetObjectItem(l, "name")->valuestring;
    int pool = strcmp(cJSON_GetObjectItem(l, "pool")->valuestring, "avg") ? RN_POOL_NONE : RN_POOL_AVG;
    int idx = rn_model_layer_find(m, name);
    if (idx < 0)
        fail_msg("%s: no layer %s", file, name);
    int shape[3];
    assert_int_equal(rn_model_layer_shape(m, idx, h, w, shape), RN_OK);
    const cJSON *want = cJSON_GetObjectItem(l, "shape");
    for (int k = 0; k < 3; k++)
        if (shape[k] != cJSON_GetArrayItem(want, k)->valueint)
            fail_msg("%s %s: shape [%d,%d,%d], PyTorch [%d,%d,%d]", file, name, shape[0], shape[1],
                     shape[2], cJSON_GetArrayItem(want, 0)->valueint,
                     cJSON_GetArrayItem(want, 1)->valueint, cJSON_GetArrayItem(want, 2)->valueint);
    size_t count = (size_t)n * shape[0] * (pool == RN_POOL_AVG ? 1 : (size_t)shape[1] * shape[2]), len;
    float *ref = slurp(cJSON_GetObjectItem(l, "file")->valuestring, &len);
    assert_int_equal(len, count * 4);
    float *got = calloc(count, 4);
    rn_output o = {.layer = idx, .pool = pool, .data = got};
    if (rn_infer_outputs(ctx, in, n, h, w, &o, 1, err, sizeof err) < 0)
        fail_msg("%s", err);
    double e = rel_err(got, ref, count);
    print_message("%s %s n=%d %dx%d: layer %s (%s) rel err %.2e\n", file, isa, n, h, w, name,
                  pool == RN_POOL_AVG ? "avg" : "none", e);
    if (!(e <= 1e-4))
        fail_msg("%s %s: layer %s (%s): rel err %g", file, isa, name, pool == RN_POOL_AVG ? "avg" : "none", e);
    free(got);
    free(ref);
}

static void check_model(const cJSON *entry, int isa, int threads, int planned_batch)
{
    const char *file = cJSON_GetObjectItem(entry, "model")->valuestring;
    char path[512], err[512];
    snprintf(path, sizeof path, "%s%s", dir, file);
    rn_model *m;
    rn_model_params mp = rn_model_default_params();
    mp.isa = isa;
    if (rn_model_load(path, &mp, &m, err, sizeof err) < 0)
        fail_msg("%s", err);
    int ran = rn_model_info_get(m)->isa;
    if (ran != isa)
        fail_msg("%s: asked for %s, runs on %s", file, rn_isa_name(isa), rn_isa_name(ran));
    rn_ctx_params cp = rn_ctx_default_params();
    cp.n_threads = threads;
    cp.max_batch = planned_batch;
    cp.max_size = 32;
    rn_ctx *ctx;
    if (rn_ctx_new(m, &cp, &ctx, err, sizeof err) < 0)
        fail_msg("%s", err);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(entry, "cases"))
    {
        int n = cJSON_GetObjectItem(c, "n")->valueint, h = cJSON_GetObjectItem(c, "h")->valueint,
            w = cJSON_GetObjectItem(c, "w")->valueint;
        int classes = cJSON_GetObjectItem(c, "classes")->valueint;
        int edim = cJSON_GetObjectItem(c, "embed_dim")->valueint;
        assert_int_equal(classes, rn_model_info_get(m)->n_classes);
        assert_int_equal(edim, rn_model_info_get(m)->embed_dim);
        size_t lin, llog, lemb;
        float *in = slurp(cJSON_GetObjectItem(c, "input")->valuestring, &lin);
        float *ref_logits = slurp(cJSON_GetObjectItem(c, "logits")->valuestring, &llog);
        float *ref_embed = slurp(cJSON_GetObjectItem(c, "embed")->valuestring, &lemb);
        assert_int_equal(lin, (size_t)n * 3 * h * w * 4);
        float *logits = calloc((size_t)n * classes, 4), *embed = calloc((size_t)n * edim, 4);
        if (rn_infer(ctx, in, n, h, w, logits, embed, err, sizeof err) < 0)
            fail_msg("%s", err);
        double el = rel_err(logits, ref_logits, (size_t)n * classes);
        double ee = rel_err(embed, ref_embed, (size_t)n * edim);
        print_message("%s %s n=%d %dx%d threads=%d: logits rel err %.2e, embed %.2e\n", file,
                      rn_isa_name(ran), n, h, w, threads, el, ee);
        assert_true(el <= 1e-4);
        assert_true(ee <= 1e-4);
        /* logits alone must equal the logits computed together with embeddings */
        float *logits2 = calloc((size_t)n * classes, 4);
        if (rn_infer(ctx, in, n, h, w, logits2, NULL, err, sizeof err) < 0)
            fail_msg("%s", err);
        assert_memory_equal(logits, logits2, (size_t)n * classes * 4);
        free(logits2);
        if (n > 1)
            check_invariance(ctx, file, rn_isa_name(ran), in, n, h, w, logits, embed, classes, edim);
        const cJSON *l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItem(c, "layers"))
            check_layer(ctx, m, file, rn_isa_name(ran), l, in, n, h, w);
        free(in);
        free(ref_logits);
        free(ref_embed);
        free(logits);
        free(embed);
    }
    rn_ctx_free(ctx);
    rn_model_free(m);
}

static cJSON *manifest;

static void test_parity(void **state)
{
    const cJSON *entry = *state;
    static const int isas[] = {RN_ISA_AVX512, RN_ISA_AVX2, RN_ISA_NEON, RN_ISA_C, RN_ISA_BLAS};
    /* RN_TEST_ISA=NAME: that ISA only (tests/aarch64.sh: neon under qemu) */
    const char *only = getenv("RN_TEST_ISA");
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!rn_isa_supported(isas[i]) || (only && *only && strcmp(only, rn_isa_name(isas[i]))))
            continue;
        check_model(entry, isas[i], 1, 1);
        /* RN_TEST_MAX_THREADS=1: one thread (tests/aarch64.sh, under qemu-user) */
        const char *mt = getenv("RN_TEST_MAX_THREADS");
        check_model(entry, isas[i], mt && !strcmp(mt, "1") ? 1 : 2, 3);
    }
}

int main(void)
{
    rn_set_log(NULL, NULL, 0);
    if (getenv("RN_PARITY_DIR") && *getenv("RN_PARITY_DIR"))
        dir = getenv("RN_PARITY_DIR");
    /* make_fixtures.py; make_timm_fixtures.py: timm's names, layers;
     * make_format_fixtures.py: the same weights as .pth and .onnx files */
    static const char *const files[] = {"manifest.json", "manifest_timm.json", "manifest_formats.json"};
    /* RN_PARITY_ONLY=NAME: that manifest alone */
    const char *only = getenv("RN_PARITY_ONLY");
    manifest = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (only && *only && strcmp(only, files[i]))
            continue;
        size_t len;
        char *text = slurp(files[i], &len);
        cJSON *more = cJSON_Parse(text);
        free(text);
        if (!cJSON_IsArray(more)) {
            fprintf(stderr, "bad manifest %s\n", files[i]);
            return 1;
        }
        while (cJSON_GetArraySize(more) > 0)
            cJSON_AddItemToArray(manifest, cJSON_DetachItemFromArray(more, 0));
        cJSON_Delete(more);
    }
    int n = cJSON_GetArraySize(manifest);
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    char **names = calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_GetArrayItem(manifest, i);
        names[i] = malloc(128);
        snprintf(names[i], 128, "parity_%s", cJSON_GetObjectItem(e, "model")->valuestring);
        tests[i] = (struct CMUnitTest){names[i], test_parity, NULL, NULL, e};
    }
    int rc = _cmocka_run_group_tests("parity", tests, (size_t)n, NULL, NULL);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(tests);
    cJSON_Delete(manifest);
    return rc;
}
