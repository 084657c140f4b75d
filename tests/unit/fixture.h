/* Reading fixture files in the cmocka tests. Include after <cmocka.h>. */
#ifndef RN_TEST_FIXTURE_H
#define RN_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file, NUL-terminated (malloc'd), or NULL if it cannot be read. */
static inline void *fixture_load(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || (long)got != n) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* The same, or the test fails naming the file. */
static inline void *fixture_read(const char *path, size_t *len)
{
    void *buf = fixture_load(path, len);
    if (!buf)
        fail_msg("cannot read %s", path);
    return buf;
}

#endif
