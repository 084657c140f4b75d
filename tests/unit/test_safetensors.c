/* The safetensors reader and model loader on a valid file and on a corpus of
 * corrupt ones made from it: each must fail with the right status and a
 * message that names the problem, and never crash or leak. */
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

#include "formats/weights.h"

#define FIXTURE "tests/fixtures/parity/bottleneck.safetensors"

static uint8_t *orig;
static size_t orig_len, data_off;
static cJSON *orig_header;

static int setup(void **state)
{
    FILE *f = fopen(FIXTURE, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    orig_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    orig = malloc(orig_len);
    if (fread(orig, 1, orig_len, f) != orig_len)
        return -1;
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | orig[i];
    data_off = 8 + hlen;
    orig_header = cJSON_ParseWithLength((char *)orig + 8, hlen);
    return orig_header ? 0 : -1;
}

static int teardown(void **state)
{
    cJSON_Delete(orig_header);
    free(orig);
    return 0;
}

/* A file image made of a header and the original data region. */
static uint8_t *build(const char *header, const uint8_t *data, size_t data_len, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    memcpy(b + 8 + h, data, data_len);
    return b;
}

/* Load a modified copy: mutate(header JSON) then load; return status, err. */
static int load_modified(void (*mutate)(cJSON *), char *err, size_t errlen)
{
    cJSON *h = cJSON_Duplicate(orig_header, 1);
    mutate(h);
    char *text = cJSON_PrintUnformatted(h);
    size_t len;
    uint8_t *img = build(text, orig + data_off, orig_len - data_off, &len);
    rn_model *m = (rn_model *)1;
    int rc = rn_model_load_buffer(img, len, NULL, &m, err, errlen);
    if (rc == RN_OK)
        rn_model_free(m);
    else
        assert_null(m);
    free(img);
    cJSON_free(text);
    cJSON_Delete(h);
    return rc;
}

#define EXPECT(rc, want_rc, err, needle)                                                      \
    do {                                                                                      \
        if ((rc) != (want_rc) || !strstr((err), (needle)))                                    \
            fail_msg("status %d (want %d), message \"%s\" (want \"%s\")", rc, want_rc, err,   \
                     needle);                                                                 \
    } while (0)

static void test_valid(void **state)
{
    char err[512] = "";
    rn_model *m;
    assert_int_equal(rn_model_load(FIXTURE, NULL, &m, err, sizeof err), RN_OK);
    const rn_model_info *in = rn_model_info_get(m);
    assert_int_equal(in->block, RN_BLOCK_BOTTLENECK);
    assert_int_equal(in->n_stages, 4);
    assert_int_equal(in->blocks[0], 2);
    assert_int_equal(in->blocks[2], 1);
    assert_int_equal(in->n_classes, 12);
    assert_string_equal(rn_model_label(m, 3), "class_3");
    assert_null(rn_model_label(m, 12));
    rn_model_free(m);

    st_file f;
    assert_int_equal(st_parse(orig, orig_len, &f, err, sizeof err), RN_OK);
    st_tensor *t = st_find(&f, "layer1.0.conv2.weight");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->dtype, ST_F32);
    st_close(&f);
}

static void test_truncated(void **state)
{
    char err[512];
    st_file f;
    size_t cuts[] = {0, 4, 7, 8, 20, data_off - 1, data_off, orig_len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        err[0] = 0;
        int rc = st_parse(orig, cuts[i], &f, err, sizeof err);
        if (cuts[i] >= data_off) {
            /* header intact: the tensors whose data was cut are out of range */
            EXPECT(rc, RN_ERR_FORMAT, err, "outside the data region");
        } else {
            assert_int_equal(rc, RN_ERR_FORMAT);
            assert_true(strlen(err) > 10);
        }
        rn_model *m;
        assert_true(rn_model_load_buffer(orig, cuts[i], NULL, &m, err, sizeof err) < 0);
        assert_null(m);
    }
}

static void test_header_length_past_end(void **state)
{
    uint8_t *b = malloc(orig_len);
    memcpy(b, orig, orig_len);
    b[5] = 0x7f; /* header length ~ 2^46 */
    char err[512];
    st_file f;
    EXPECT(st_parse(b, orig_len, &f, err, sizeof err), RN_ERR_FORMAT, err, "past the end");
    free(b);
}

static void test_invalid_json(void **state)
{
    size_t len;
    uint8_t *b = build("{\"conv1.weight\": {\"dtype\": \"F32\", ", orig + data_off, 16, &len);
    char err[512];
    st_file f;
    EXPECT(st_parse(b, len, &f, err, sizeof err), RN_ERR_FORMAT, err, "not valid JSON");
    free(b);
    b = build("[1,2,3]", orig, 0, &len);
    EXPECT(st_parse(b, len, &f, err, sizeof err), RN_ERR_FORMAT, err, "not a JSON object");
    free(b);
}

static void set_offsets(cJSON *h, const char *name, double a, double b)
{
    cJSON *off = cJSON_GetObjectItem(cJSON_GetObjectItem(h, name), "data_offsets");
    cJSON_SetNumberValue(cJSON_GetArrayItem(off, 0), a);
    cJSON_SetNumberValue(cJSON_GetArrayItem(off, 1), b);
}

static void m_offset_out_of_range(cJSON *h)
{
    double end = (double)(orig_len - data_off);
    set_offsets(h, "fc.bias", end - 24, end + 24);
}
static void m_offset_reversed(cJSON *h)
{
    set_offsets(h, "fc.bias", 100, 52);
}
static void m_overlap(cJSON *h)
{
    /* fc.bias (12 floats) moved onto the start of another tensor's data */
    set_offsets(h, "fc.bias", 16, 64);
}
static void m_dtype(cJSON *h)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "fc.bias"), "dtype", cJSON_CreateString("F33"));
}
static void m_int_dtype(cJSON *h)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "fc.bias"), "dtype", cJSON_CreateString("I32"));
}
static void m_shape_bytes(cJSON *h)
{
    cJSON *shape = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "fc.bias"), "shape");
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0), 13);
}
static void m_missing(cJSON *h)
{
    cJSON_DeleteItemFromObject(h, "layer2.0.bn1.running_var");
}
static void m_renamed(cJSON *h)
{
    cJSON *fb = cJSON_DetachItemFromObject(h, "fc.bias");
    cJSON_AddItemToObject(h, "fc.extra_bias", fb);
}
static void m_misshaped(cJSON *h)
{
    /* same byte count, wrong shape: [8,32,1,1] -> [8,2,4,4] */
    cJSON *shape = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "layer1.1.conv1.weight"), "shape");
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 1), 2);
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 2), 4);
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 3), 4);
}
static void m_not_resnet(cJSON *h)
{
    cJSON *fb = cJSON_DetachItemFromObject(h, "fc.bias");
    cJSON *child;
    while ((child = h->child))
        cJSON_Delete(cJSON_DetachItemViaPointer(h, child));
    cJSON_AddItemToObject(h, "encoder.weight", fb);
}
static void m_variant(cJSON *h)
{
    cJSON_AddItemToObject(cJSON_GetObjectItem(h, "__metadata__"), "resnet.variant",
                          cJSON_CreateString("v2"));
}
static void m_eps(cJSON *h)
{
    cJSON_AddItemToObject(cJSON_GetObjectItem(h, "__metadata__"), "resnet.bn_eps",
                          cJSON_CreateString("-1"));
}
static void m_labels(cJSON *h)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "__metadata__"), "resnet.labels",
                              cJSON_CreateString("[\"a\",\"b\"]"));
}
static void m_meta_type(cJSON *h)
{
    cJSON_AddItemToObject(cJSON_GetObjectItem(h, "__metadata__"), "resnet.bn_eps",
                          cJSON_CreateNumber(1e-5));
}
static void m_dup_name(cJSON *h)
{
    cJSON *e = cJSON_Duplicate(cJSON_GetObjectItem(h, "fc.bias"), 1);
    cJSON_AddItemToObject(h, "fc.bias", e);
}
static void m_neg_dim(cJSON *h)
{
    cJSON *shape = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "fc.bias"), "shape");
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0), -12);
}

static void test_corrupt_headers(void **state)
{
    static const struct {
        void (*mutate)(cJSON *);
        int rc;
        const char *needle;
    } cases[] = {
        {m_offset_out_of_range, RN_ERR_FORMAT, "fc.bias: data_offsets"},
        {m_offset_reversed, RN_ERR_FORMAT, "fc.bias: data_offsets [100, 52] end before begin"},
        {m_overlap, RN_ERR_FORMAT, "overlaps"},
        {m_dtype, RN_ERR_FORMAT, "fc.bias: unknown dtype \"F33\""},
        {m_int_dtype, RN_ERR_FORMAT, "fc.bias: dtype I32, expected F32"},
        {m_shape_bytes, RN_ERR_FORMAT, "fc.bias: data_offsets span 48 bytes"},
        {m_missing, RN_ERR_ARCH, "layer2.0.bn1.running_var: missing"},
        {m_renamed, RN_ERR_ARCH, "fc.bias: missing"},
        {m_misshaped, RN_ERR_ARCH, "layer1.1.conv1.weight: shape [8,2,4,4], expected [out,32,1,1]"},
        {m_not_resnet, RN_ERR_ARCH, "conv1.weight: missing"},
        {m_variant, RN_ERR_FORMAT, "resnet.variant"},
        {m_eps, RN_ERR_FORMAT, "resnet.bn_eps"},
        {m_labels, RN_ERR_FORMAT, "resnet.labels: 2 class names, the model has 12 classes"},
        {m_meta_type, RN_ERR_FORMAT, "__metadata__.resnet.bn_eps is not a string"},
        {m_dup_name, RN_ERR_FORMAT, "fc.bias: duplicate tensor name"},
        {m_neg_dim, RN_ERR_FORMAT, "fc.bias: shape[0] is not a valid dimension"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        int rc = load_modified(cases[i].mutate, err, sizeof err);
        print_message("case %zu: %s\n", i, err);
        EXPECT(rc, cases[i].rc, err, cases[i].needle);
    }
}

static void m_extra_real(cJSON *h)
{
    /* an extra, empty tensor: well-formed, but not part of a ResNet */
    cJSON *e = cJSON_Duplicate(cJSON_GetObjectItem(h, "fc.bias"), 1);
    cJSON *shape = cJSON_GetObjectItem(e, "shape");
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0), 0);
    cJSON *off = cJSON_GetObjectItem(e, "data_offsets");
    cJSON_SetNumberValue(cJSON_GetArrayItem(off, 0), 0);
    cJSON_SetNumberValue(cJSON_GetArrayItem(off, 1), 0);
    cJSON_AddItemToObject(h, "classifier.scale", e);
}

static void test_extra_tensor(void **state)
{
    char err[512] = "";
    EXPECT(load_modified(m_extra_real, err, sizeof err), RN_ERR_ARCH, err,
           "classifier.scale: unexpected tensor");
}

static void test_nan_weight(void **state)
{
    uint8_t *b = malloc(orig_len);
    memcpy(b, orig, orig_len);
    st_file f;
    char err[512];
    assert_int_equal(st_parse(b, orig_len, &f, err, sizeof err), RN_OK);
    st_tensor *t = st_find(&f, "layer3.0.conv2.weight");
    size_t off = (size_t)(t->data - b) + 8;
    st_close(&f);
    uint32_t nan = 0x7fc00000u;
    memcpy(b + off, &nan, 4);
    rn_model *m;
    EXPECT(rn_model_load_buffer(b, orig_len, NULL, &m, err, sizeof err), RN_ERR_FORMAT, err,
           "layer3.0.conv2.weight: element 2 is not a finite number");
    free(b);
}

static void test_files(void **state)
{
    char err[512];
    rn_model *m;
    EXPECT(rn_model_load("tests/fixtures/parity/no-such-file", NULL, &m, err, sizeof err),
           RN_ERR_IO, err, "no-such-file: No such file");
    EXPECT(rn_model_load("tests", NULL, &m, err, sizeof err), RN_ERR_IO, err, "not a regular file");
    EXPECT(rn_model_load("/dev/null", NULL, &m, err, sizeof err), RN_ERR_IO, err,
           "not a regular file");
    EXPECT(rn_model_load("tests/fixtures/parity/manifest.json", NULL, &m, err, sizeof err),
           RN_ERR_FORMAT, err, "manifest.json: header length");
    assert_null(m);
}

static void test_half_conversions(void **state)
{
    assert_float_equal(rn_half_to_float(0x3c00), 1.0f, 0);
    assert_float_equal(rn_half_to_float(0xc000), -2.0f, 0);
    assert_float_equal(rn_half_to_float(0x0001), 5.960464477539063e-08f, 0);
    assert_float_equal(rn_half_to_float(0x7bff), 65504.0f, 0);
    assert_true(isinf(rn_half_to_float(0x7c00)));
    assert_float_equal(rn_bf16_to_float(0x3f80), 1.0f, 0);
    assert_float_equal(rn_bf16_to_float(0xc0a0), -5.0f, 0);
}

int main(void)
{
    rn_set_log(NULL, NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_header_length_past_end),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_extra_tensor),
        cmocka_unit_test(test_nan_weight),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_half_conversions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
