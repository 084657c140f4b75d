/* resnet: inspect, run, benchmark and convert ResNet models from the shell. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"info", cmd_info, "info MODEL [--json]                 architecture, parameters, metadata"},
    {"infer", cmd_infer, "infer -m MODEL --input IN.f32 --batch N [--size S] --output OUT.f32 [--embed]"},
    {"classify", cmd_classify, "classify -m MODEL [--topk K] [--json] IMAGE...   class scores of images"},
    {"bench-image", cmd_bench_image, "bench-image FILE [--dct] [--seconds S]   decode + preprocess time per image"},
    {"bench", cmd_bench, "bench -m MODEL [--batch B] [--threads T] [--seconds S]   inference speed"},
    {"convert", cmd_convert, "convert --from tfjs MODEL.json -o OUT.safetensors   import other formats"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: resnet COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  resnet %s\n", commands[i].help);
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

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "resnet: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
