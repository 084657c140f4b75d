/* INT8 models against their independent reference, to the bit: the logits
 * and embeddings of the fixture models of tests/fixtures/int8/ (quantized and
 * evaluated in numpy by make_int8_fixtures.py and reference.py, which follow
 * docs/int8.md and never call this library) on every ISA this CPU runs, and
 * on each of them every image computed alone and in the batch reversed. Named
 * layer outputs, dequantized, against the same reference's. Bad INT8 files
 * (NaN, zero and negative scales, -128 weights, wrong dtypes, biases past
 * +-2^30) are refused naming the tensor. */
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

static const char *dir = "tests/fixtures/int8/";

static void *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", dir, name);
    return fixture_read(path, len);
}

/* The index of the first element where a and b differ in their bits, or -1. */
static long first_diff(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)))
            return (long)i;
    return -1;
}

static void expect_same(const char *what, const char *model, const char *isa, const float *got,
                        const float *want, size_t n)
{
    long i = first_diff(got, want, n);
    if (i >= 0)
        fail_msg("%s %s on %s: element %ld is %.9g, the reference %.9g", model, what, isa, i, got[i], want[i]);
}

static void run_case(const char *model, const cJSON *c, int isa)
{
    char err[512], path[512];
    int n = cJSON_GetObjectItem(c, "n")->valueint, h = cJSON_GetObjectItem(c, "h")->valueint,
        w = cJSON_GetObjectItem(c, "w")->valueint;
    int classes = cJSON_GetObjectItem(c, "classes")->valueint,
        edim = cJSON_GetObjectItem(c, "embed_dim")->valueint;
    size_t len;
    float *in = slurp(cJSON_GetObjectItem(c, "input")->valuestring, &len);
    float *ref_l = slurp(cJSON_GetObjectItem(c, "logits")->valuestring, &len);
    float *ref_e = slurp(cJSON_GetObjectItem(c, "embed")->valuestring, &len);
    snprintf(path, sizeof path, "%s%s", dir, model);
    rn_model *m;
    rn_model_params mp = rn_model_default_params();
    mp.isa = isa;
    if (rn_model_load(path, &mp, &m, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(rn_model_info_get(m)->precision, RN_PRECISION_INT8);
    rn_ctx_params cp = rn_ctx_default_params();
    cp.max_batch = n;
    cp.max_size = h > w ? h : w;
    cp.n_threads = 2;
    const char *mt = getenv("RN_TEST_MAX_THREADS"); /* 1 under qemu-user (tests/aarch64.sh) */
    if (mt && atoi(mt) > 0 && cp.n_threads > atoi(mt))
        cp.n_threads = atoi(mt);
    rn_ctx *ctx;
    if (rn_ctx_new(m, &cp, &ctx, err, sizeof err) < 0)
        fail_msg("%s", err);
    size_t img = (size_t)3 * h * w;
    float *l = malloc((size_t)n * classes * 4), *e = malloc((size_t)n * edim * 4);
    if (rn_infer(ctx, in, n, h, w, l, e, err, sizeof err) < 0)
        fail_msg("%s", err);
    const char *name = rn_isa_name(isa);
    expect_same("logits", model, name, l, ref_l, (size_t)n * classes);
    expect_same("embedding", model, name, e, ref_e, (size_t)n * edim);
    /* each image alone, and the batch reversed: the same bits */
    float *rin = malloc((size_t)n * img * 4), *rl = malloc((size_t)n * classes * 4);
    for (int i = 0; i < n; i++) {
        if (rn_infer(ctx, in + i * img, 1, h, w, rl, NULL, err, sizeof err) < 0)
            fail_msg("%s", err);
        expect_same("logits of an image alone", model, name, rl, ref_l + (size_t)i * classes, (size_t)classes);
        memcpy(rin + (size_t)(n - 1 - i) * img, in + i * img, img * 4);
    }
    if (rn_infer(ctx, rin, n, h, w, rl, NULL, err, sizeof err) < 0)
        fail_msg("%s", err);
    for (int i = 0; i < n; i++)
        expect_same("logits in the reversed batch", model, name, rl + (size_t)(n - 1 - i) * classes,
                    ref_l + (size_t)i * classes, (size_t)classes);
    /* named layers the reference wrote out, dequantized */
    const cJSON *layers = cJSON_GetObjectItem(c, "layers"), *ly;
    cJSON_ArrayForEach(ly, layers)
    {
        const char *lname = cJSON_GetObjectItem(ly, "name")->valuestring;
        int li = rn_model_layer_find(m, lname), shape[3];
        if (li < 0)
            fail_msg("%s: no layer %s", model, lname);
        assert_int_equal(rn_model_layer_shape(m, li, h, w, shape), RN_OK);
        size_t cnt = (size_t)n * shape[0] * shape[1] * shape[2];
        float *want = slurp(cJSON_GetObjectItem(ly, "file")->valuestring, &len);
        assert_int_equal(len, cnt * 4);
        float *got = malloc(cnt * 4);
        rn_output o = {.layer = li, .pool = RN_POOL_NONE, .data = got};
        if (rn_infer_outputs(ctx, in, n, h, w, &o, 1, err, sizeof err) < 0)
            fail_msg("%s", err);
        expect_same(lname, model, name, got, want, cnt);
        free(got);
        free(want);
    }
    free(rin);
    free(rl);
    free(l);
    free(e);
    rn_ctx_free(ctx);
    rn_model_free(m);
    free(in);
    free(ref_l);
    free(ref_e);
}

/* Every case of the models of a manifest (a list, or the object's `key`
 * list) on isa; how many. */
static int run_manifest(const char *file, const char *key, int isa)
{
    size_t len;
    char *text = slurp(file, &len);
    cJSON *man = cJSON_Parse(text), *e;
    assert_non_null(man);
    cJSON *models = key ? cJSON_GetObjectItem(man, key) : man;
    int cases = 0;
    cJSON_ArrayForEach(e, models)
    {
        const char *model = cJSON_GetObjectItem(e, "model")->valuestring;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(e, "cases"))
        {
            run_case(model, c, isa);
            cases++;
        }
    }
    cJSON_Delete(man);
    free(text);
    return cases;
}

/* state: the enum rn_isa to run on */
static void test_int8_parity(void **state)
{
    int isa = (int)(intptr_t)*state;
    if (!rn_isa_supported(isa))
        skip();
    assert_true(run_manifest("manifest.json", NULL, isa) >= 8);
}

/* ONNX QDQ graphs (U8S8 and S8S8) of the fixture models against what
 * make_qdq_fixtures.py says they compute (docs/int8.md, "ONNX QDQ models"). */
static void test_qdq_parity(void **state)
{
    int isa = (int)(intptr_t)*state;
    if (!rn_isa_supported(isa))
        skip();
    assert_true(run_manifest("qdq_manifest.json", "models", isa) >= 16);
}

/* Broken QDQ graphs: each refused, the message saying what is wrong. */
static void test_qdq_refusals(void **state)
{
    size_t len;
    char *text = slurp("qdq_manifest.json", &len);
    cJSON *man = cJSON_Parse(text), *e;
    assert_non_null(man);
    int n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(man, "refusals"))
    {
        const char *model = cJSON_GetObjectItem(e, "model")->valuestring;
        const char *needle = cJSON_GetObjectItem(e, "needle")->valuestring;
        char path[512], err[512];
        snprintf(path, sizeof path, "%s%s", dir, model);
        rn_model *m = NULL;
        rn_model_params mp = rn_model_default_params();
        if (rn_model_load(path, &mp, &m, err, sizeof err) == RN_OK) {
            rn_model_free(m);
            fail_msg("%s: a bad graph was accepted (expected: %s)", model, needle);
        }
        if (!strstr(err, needle))
            fail_msg("%s: message \"%s\" does not say %s", model, err, needle);
        n++;
    }
    assert_true(n >= 5);
    cJSON_Delete(man);
    free(text);
}

/* ---- refusals: a fixture file with one tensor's bytes or header changed ---- */

/* The fixture's bytes with tensor `name`'s data replaced by `bytes` (len of
 * them) at element offset 0, or its dtype string replaced. */
static char *mutate(const char *model, const char *name, const void *bytes, size_t blen,
                    const char *dtype_from, const char *dtype_to, size_t *len)
{
    char *f = slurp(model, len);
    uint64_t hl;
    memcpy(&hl, f, 8);
    char *hdr = strndup(f + 8, (size_t)hl);
    cJSON *j = cJSON_Parse(hdr);
    free(hdr);
    cJSON *t = cJSON_GetObjectItem(j, name);
    if (!t)
        fail_msg("%s has no tensor %s", model, name);
    if (bytes) {
        size_t off = (size_t)cJSON_GetArrayItem(cJSON_GetObjectItem(t, "data_offsets"), 0)->valuedouble;
        memcpy(f + 8 + hl + off, bytes, blen);
    }
    if (dtype_from) {
        /* the same-length dtype name in the header text, found after the name */
        char key[256];
        snprintf(key, sizeof key, "\"%s\"", name);
        char *at = strstr(f + 8, key), *d = at ? strstr(at, dtype_from) : NULL;
        if (!d || d > f + 8 + hl)
            fail_msg("%s: cannot find %s's dtype", model, name);
        memcpy(d, dtype_to, strlen(dtype_to));
    }
    cJSON_Delete(j);
    return f;
}

/* The fixture mutated as mutate() does is refused, the message naming needle. */
static void expect_refused(const char *model, const char *name, const void *v, size_t vlen,
                           const char *dtype_from, const char *dtype_to, const char *needle)
{
    size_t len;
    char *bytes = mutate(model, name, v, vlen, dtype_from, dtype_to, &len);
    char err[512];
    rn_model *m = NULL;
    int rc = rn_model_load_buffer(bytes, len, NULL, &m, err, sizeof err);
    free(bytes);
    if (rc == RN_OK) {
        rn_model_free(m);
        fail_msg("%s: a bad file was accepted (expected: %s)", model, needle);
    }
    if (!strstr(err, needle))
        fail_msg("%s: message \"%s\" does not name %s", model, err, needle);
}

static void test_int8_refusals(void **state)
{
    const char *model = "bottleneck.int8.safetensors";
    float nan = NAN, zero = 0, neg = -1;
    int8_t m128 = -128;
    int32_t big = (1 << 30) + 1;
    expect_refused(model, "layer1.0.conv2.weight_scale", &nan, 4, NULL, NULL, "layer1.0.conv2.weight_scale");
    expect_refused(model, "layer2.0.conv1.output_scale", &zero, 4, NULL, NULL, "layer2.0.conv1.output_scale");
    expect_refused(model, "input_scale", &neg, 4, NULL, NULL, "input_scale");
    expect_refused(model, "conv1.weight", &m128, 1, NULL, NULL, "conv1.weight");
    expect_refused(model, "layer3.0.conv3.bias", &big, 4, NULL, NULL, "layer3.0.conv3.bias");
    /* an I8 weight declared U8 (same size): the dtype is refused by name */
    expect_refused(model, "layer1.0.conv1.weight", NULL, 0, "\"I8\"", "\"U8\"", "layer1.0.conv1.weight");
    /* a float file asked to run in INT8 */
    char err[512];
    rn_model *m = NULL;
    rn_model_params mp = rn_model_default_params();
    mp.precision = RN_PRECISION_INT8;
    assert_true(rn_model_load("tests/fixtures/parity/basic.safetensors", &mp, &m, err, sizeof err) < 0);
    assert_non_null(strstr(err, "quantize"));
}

int main(int argc, char **argv)
{
    rn_set_log(NULL, NULL, 0);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        {"int8_parity_avx512", test_int8_parity, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"int8_parity_avx2", test_int8_parity, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"int8_parity_neon", test_int8_parity, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"int8_parity_c", test_int8_parity, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
        cmocka_unit_test(test_int8_refusals),
        {"qdq_parity_avx512", test_qdq_parity, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX512},
        {"qdq_parity_avx2", test_qdq_parity, NULL, NULL, (void *)(intptr_t)RN_ISA_AVX2},
        {"qdq_parity_neon", test_qdq_parity, NULL, NULL, (void *)(intptr_t)RN_ISA_NEON},
        {"qdq_parity_c", test_qdq_parity, NULL, NULL, (void *)(intptr_t)RN_ISA_C},
        cmocka_unit_test(test_qdq_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
