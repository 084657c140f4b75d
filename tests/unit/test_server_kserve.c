/* Unit tests of the KServe v2 request reader (server/kserve_request.c) and of
 * the router's pure parts (routes_match, routes_parse_topk): accepted forms,
 * each refusal with its status, and the inputs the fuzzers found. The bodies
 * are copied to exact-size buffers without a NUL, as they come off a socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include <cmocka.h>

#include "kserve_request.h"
#include "routes.h"

static struct v2_request req;
static char err[256];

static enum srv_err parse_n(const char *body, size_t len, const char *hl, int max_images)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, body, len);
    err[0] = '\0';
    v2_request_free(&req);
    enum srv_err e = v2_parse_request(copy, len, hl, 224, max_images, &req, err, sizeof err);
    /* The images point into the body: keep it alive as long as req. */
    static char *last;
    free(last);
    last = copy;
    return e;
}

static enum srv_err parse(const char *body)
{
    return parse_n(body, strlen(body), NULL, 64);
}

static int teardown(void **state)
{
    v2_request_free(&req);
    return 0;
}

static void test_fp32_json(void **state)
{
    char body[64 * 1024];
    int n = snprintf(body, sizeof body,
                     "{\"id\":\"x1\",\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\","
                     "\"shape\":[1,3,32,32],\"data\":[");
    for (int i = 0; i < 3 * 32 * 32; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s%d", i ? "," : "", i % 7);
    snprintf(body + n, sizeof body - (size_t)n,
             "]}],\"outputs\":[{\"name\":\"probabilities\",\"parameters\":{\"classification\":3}}]}");
    assert_int_equal(parse(body), SRV_OK);
    assert_int_equal(req.n, 1);
    assert_int_equal(req.h, 32);
    assert_string_equal(req.id, "x1");
    assert_int_equal(req.n_order, 1);
    assert_int_equal(req.order[0], V2_OUT_PROBS);
    assert_int_equal(req.out[V2_OUT_PROBS].cls, 3);
    assert_non_null(req.images[0].tensor);
    assert_true(req.images[0].tensor[8] == 1.0f);
}

static void test_bytes(void **state)
{
    /* "abc" and "hello" in base64, the second nested as [[...]] */
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[2],"
                           "\"data\":[\"YWJj\",[\"aGVsbG8=\"]]}]}"),
                     SRV_OK);
    assert_int_equal(req.n, 2);
    assert_int_equal(req.images[1].len, 5);
    assert_memory_equal(req.images[1].data, "hello", 5);
    assert_int_equal(req.images[0].h, 224);
    assert_int_equal(req.n_order, 2); /* no "outputs": both */

    /* binary extension: JSON header, then 4-byte little-endian length + bytes */
    const char hdr[] = "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
                       "\"parameters\":{\"binary_data_size\":7}}]}";
    char body[256], hl[16];
    size_t n = strlen(hdr);
    memcpy(body, hdr, n);
    memcpy(body + n, "\x03\0\0\0xyz", 7);
    snprintf(hl, sizeof hl, "%zu", n);
    assert_int_equal(parse_n(body, n + 7, hl, 64), SRV_OK);
    assert_int_equal(req.images[0].len, 3);
    assert_memory_equal(req.images[0].data, "xyz", 3);
    /* an element longer than the data */
    memcpy(body + n, "\x09\0\0\0xyz", 7);
    assert_int_equal(parse_n(body, n + 7, hl, 64), SRV_ERR_BAD_TENSOR);
    assert_non_null(strstr(err, "longer"));
}

static void test_refusals(void **state)
{
    assert_int_equal(parse_n("", 0, NULL, 64), SRV_ERR_EMPTY_BODY);
    assert_int_equal(parse("[1]"), SRV_ERR_BAD_REQUEST);
    assert_int_equal(parse("{\"inputs\":"), SRV_ERR_BAD_REQUEST);
    assert_int_equal(parse_n("{}", 2, "3", 64), SRV_ERR_BAD_REQUEST);
    assert_int_equal(parse_n("{}", 2, "-1", 64), SRV_ERR_BAD_REQUEST);
    assert_int_equal(parse_n("{}", 2, "1x", 64), SRV_ERR_BAD_REQUEST);
    assert_int_equal(parse("{}"), SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,8,8],\"data\":[1]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,32,32],\"data\":[1]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"input\",\"datatype\":\"INT8\",\"shape\":[1],\"data\":[1]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"a\"]}]}"),
                     SRV_ERR_BAD_TENSOR); /* not base64 */
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"\"]}]}"),
                     SRV_ERR_BAD_TENSOR); /* empty */
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1.5],\"data\":[\"YQ\"]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"outputs\":[{\"name\":\"logits\"},{\"name\":\"logits\"}],"
                           "\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"YQ\"]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"outputs\":[{\"name\":\"logits\",\"parameters\":{\"classification\":0}}],"
                           "\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"YQ\"]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_true(strlen(err) > 0);
}

/* Inputs are matched by name, as the protocol does: an unknown name, none,
 * a name whose datatype is the other input's, or both inputs at once are
 * refused, each naming what the model takes. */
static void test_input_names(void **state)
{
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"YQ\"]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_non_null(strstr(err, "'pixels'"));
    assert_non_null(strstr(err, "\"input\" (FP32 [N,3,H,W]) and \"image\" (BYTES [N])"));
    assert_int_equal(parse("{\"inputs\":[{\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"YQ\"]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_non_null(strstr(err, "needs a \"name\""));
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"input\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"YQ\"]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_string_equal(err, "input 'input' is FP32, not BYTES");
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"YQ\"]},"
                           "{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,32,32],\"data\":[1]}]}"),
                     SRV_ERR_BAD_TENSOR);
    assert_non_null(strstr(err, "not both"));
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"YQ\"]}]}"),
                     SRV_OK);
}

/* An output that is not logits or probabilities names a model layer, which
 * kserve.c resolves: one, alone, pooled unless {"pool": "none"}. */
static void test_layer_output(void **state)
{
#define IN ",\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"YQ\"]}]}"
    assert_int_equal(parse("{\"outputs\":[{\"name\":\"layer3.1\",\"parameters\":{\"pool\":\"none\"}}]" IN),
                     SRV_OK);
    assert_string_equal(req.layer, "layer3.1");
    assert_int_equal(req.layer_pool, 0);
    assert_int_equal(req.n_order, 0);
    assert_int_equal(parse("{\"outputs\":[{\"name\":\"stem\"}]" IN), SRV_OK);
    assert_int_equal(req.layer_pool, 1);
    assert_int_equal(parse("{\"outputs\":[{\"name\":\"stem\"},{\"name\":\"logits\"}]" IN),
                     SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"outputs\":[{\"name\":\"logits\"},{\"name\":\"stem\"}]" IN),
                     SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"outputs\":[{\"name\":\"stem\",\"parameters\":{\"pool\":\"max\"}}]" IN),
                     SRV_ERR_BAD_TENSOR);
    assert_int_equal(parse("{\"outputs\":[{\"name\":\"\"}]" IN), SRV_ERR_BAD_TENSOR);
#undef IN
}

/* More inputs than the queue holds are refused before anything is allocated
 * for them: a 60-byte request used to make the server calloc a job image per
 * declared element (up to 1e6) before finding the data missing. */
static void test_too_many_images(void **state)
{
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1000000],\"data\":[]}]}"),
                     SRV_ERR_TOO_MANY_IMAGES);
    assert_non_null(strstr(err, "at most 64"));
    assert_null(req.images);
    const char *three = "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[3],"
                        "\"data\":[\"YQ\",\"YQ\",\"YQ\"]}]}";
    assert_int_equal(parse_n(three, strlen(three), NULL, 3), SRV_OK);
    assert_int_equal(parse_n(three, strlen(three), NULL, 2),
                     SRV_ERR_TOO_MANY_IMAGES);
    assert_int_equal(srv_err_http(SRV_ERR_TOO_MANY_IMAGES), 413);
}

static void test_routes(void **state)
{
    char name[128];
    assert_non_null(routes_match("/v1/classify", name, sizeof name));
    assert_string_equal(name, "");
    assert_non_null(routes_match("/v2/models/resnet50/versions/1/infer", name, sizeof name));
    assert_string_equal(name, "resnet50");
    assert_non_null(routes_match("/v2/models/m/ready", name, sizeof name));
    assert_null(routes_match("/v2/models//infer", name, sizeof name));
    assert_null(routes_match("/v2/models/m/versions//infer", name, sizeof name));
    assert_null(routes_match("/v2/models/m/bogus", name, sizeof name));
    assert_null(routes_match("/v1/classify/", name, sizeof name));
    char ver[8];
    assert_int_equal(routes_v2_version("/v2/models/m/versions/12/infer", ver, sizeof ver), 1);
    assert_string_equal(ver, "12");
    assert_int_equal(routes_v2_version("/v2/models/m/versions/123456789", ver, sizeof ver), 1);
    assert_string_equal(ver, "1234567"); /* cut to fit */
    assert_int_equal(routes_v2_version("/v2/models/m/ready", ver, sizeof ver), 0);
    assert_int_equal(routes_v2_version("/v1/classify", ver, sizeof ver), 0);
    char longname[300];
    memset(longname, 'a', sizeof longname);
    memcpy(longname, "/v2/models/", 11);
    longname[sizeof longname - 1] = '\0';
    assert_null(routes_match(longname, name, sizeof name));
    assert_true(routes_valid_name("resnet50.v1_b-2"));
    assert_false(routes_valid_name(""));
    assert_false(routes_valid_name("a%00b"));
    assert_false(routes_valid_name("a b"));
    char n64[65];
    memset(n64, 'a', 64);
    n64[64] = '\0';
    assert_false(routes_valid_name(n64));
    n64[63] = '\0';
    assert_true(routes_valid_name(n64));

    int k = 5;
    assert_int_equal(routes_parse_topk("3", &k), 0);
    assert_int_equal(k, 3);
    assert_int_equal(routes_parse_topk("1000000", &k), 0);
    assert_int_equal(routes_parse_topk("1000001", &k), 0);
    assert_int_equal(k, 1000001);
    assert_int_equal(routes_parse_topk("99999999999999999999", &k), 0);
    assert_int_equal(k, INT_MAX);
    assert_int_equal(routes_parse_topk("007", &k), 0);
    assert_int_equal(k, 7);
    const char *bad[] = {"", "0", "000", "-1", "+3", " 3", "3x", "0x10", "3%00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        k = 42;
        assert_int_equal(routes_parse_topk(bad[i], &k), -1);
        assert_int_equal(k, 42);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fp32_json, teardown),
        cmocka_unit_test_teardown(test_bytes, teardown),
        cmocka_unit_test_teardown(test_refusals, teardown),
        cmocka_unit_test_teardown(test_input_names, teardown),
        cmocka_unit_test_teardown(test_layer_output, teardown),
        cmocka_unit_test_teardown(test_too_many_images, teardown),
        cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
