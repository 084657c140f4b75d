/* Helpers shared by the subcommands of the `resnet` command. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnet.h"
#include "tools.h"

int tool_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void *tool_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
    } else if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *len = n;
    return buf;
}

int tool_parse_int(const char *flag, const char *value, int min, int max)
{
    char *end;
    errno = 0;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || errno || end == value || *end || v < min || v > max) {
        fprintf(stderr, "resnet: %s: expected an integer in [%d, %d], got '%s'\n", flag, min,
                max, value ? value : "");
        exit(2);
    }
    return (int)v;
}

int tool_open_model(const char *path, int precision, int threads, int max_batch, int size,
                    rn_model **m, rn_ctx **ctx)
{
    char err[512];
    rn_model_params mp = rn_model_default_params();
    mp.precision = precision;
    *ctx = NULL;
    if (rn_model_load(path, &mp, m, err, sizeof err) < 0) {
        fprintf(stderr, "resnet: %s\n", err);
        return -1;
    }
    rn_ctx_params cp = rn_ctx_default_params();
    cp.n_threads = threads;
    cp.max_batch = max_batch;
    cp.max_size = size ? size : rn_model_preprocess(*m)->crop;
    if (rn_ctx_new(*m, &cp, ctx, err, sizeof err) < 0) {
        fprintf(stderr, "resnet: %s\n", err);
        rn_model_free(*m);
        *m = NULL;
        return -1;
    }
    return 0;
}

int tool_parse_precision(const char *value)
{
    if (value && !strcmp(value, "fp32"))
        return RN_PRECISION_FP32;
    if (value && !strcmp(value, "bf16"))
        return RN_PRECISION_BF16;
    fprintf(stderr, "resnet: --precision: expected fp32 or bf16, got '%s'\n", value ? value : "");
    exit(2);
}
