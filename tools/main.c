/* resnet: inspect, run, benchmark and convert ResNet models from the shell. */
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
    {"classify", cmd_classify, "classify -m MODEL [--topk K] [--json] [--threads T] [--exif-orient] IMAGE...   class scores"},
    {"inspect", cmd_inspect, "inspect -m MODEL [--json] [--no-lesions] [--png OUT.png] [--exif-orient] IMAGE   what each block does"},
    {"bench-image", cmd_bench_image, "bench-image FILE... [--dct] [--seconds S]   decode + preprocess time per image"},
    {"bench", cmd_bench, "bench -m MODEL [--batch B] [--threads T] [--seconds S]   inference speed"},
    {"quantize", cmd_quantize, "quantize -m MODEL --calib DIR -o OUT.safetensors [--method percentile|minmax|mse]   an INT8 model"},
    {"convert", cmd_convert, "convert --from tfjs MODEL.json -o OUT.safetensors   import other formats"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: resnet COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  resnet %s\n", commands[i].help);
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
