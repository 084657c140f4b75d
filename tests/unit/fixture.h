/* Reading fixture files in the cmocka tests: the whole file, NUL-terminated,
 * or the test fails naming it. Include after <cmocka.h>. */
#ifndef RN_TEST_FIXTURE_H
#define RN_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

static inline void *fixture_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

#endif
