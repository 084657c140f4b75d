/* Comparing with a reference's JSON in the cmocka tests (test_inspect.c
 * against PyTorch, test_int8_inspect.c against the INT8 reference).
 * Include after <cmocka.h> and <cjson/cJSON.h>. */
#ifndef RN_TEST_NEAR_H
#define RN_TEST_NEAR_H

#include <math.h>
#include <string.h>

#include "resnet.h"

/* Field k of the reference's object o; null reads as NaN. */
static inline double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    if (!v)
        fail_msg("reference: no field %s", k);
    return cJSON_IsNull(v) ? NAN : v->valuedouble;
}

/* |got - want| <= rel * |want| + abs_tol; NaN only where the reference has it */
static inline void near(const char *what, const char *block, const char *field, double got, double want,
                        double rel, double abs_tol)
{
    if (isnan(want) && isnan(got))
        return;
    if (!(fabs(got - want) <= rel * fabs(want) + abs_tol))
        fail_msg("%s %s %s: %.12g, the reference %.12g", what, block, field, got, want);
}

/* Block i of our report br is block b of whose reference: the same name,
 * projection flag and input and output shapes. */
static inline void expect_block(const char *what, int i, const rn_block_report *br, const cJSON *b,
                                const char *whose)
{
    const char *name = cJSON_GetObjectItem(b, "name")->valuestring;
    if (strcmp(br->name, name))
        fail_msg("%s: block %d is %s, %s's %s", what, i, br->name, whose, name);
    assert_int_equal(br->projection, cJSON_IsTrue(cJSON_GetObjectItem(b, "projection")));
    for (int k = 0; k < 3; k++) {
        assert_int_equal(br->in_shape[k], cJSON_GetArrayItem(cJSON_GetObjectItem(b, "in_shape"), k)->valueint);
        assert_int_equal(br->out_shape[k], cJSON_GetArrayItem(cJSON_GetObjectItem(b, "out_shape"), k)->valueint);
    }
}

#endif
