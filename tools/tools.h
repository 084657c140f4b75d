/* The subcommands of the `resnet` command, one file each. */
#ifndef RESNET_TOOLS_H
#define RESNET_TOOLS_H

#include <stddef.h>

#include "resnet.h"

int cmd_info(int argc, char **argv);     /* tools/info.c */
int cmd_infer(int argc, char **argv);    /* tools/infer.c */
int cmd_bench(int argc, char **argv);    /* tools/bench.c */
int cmd_classify(int argc, char **argv); /* tools/classify.c */
int cmd_convert(int argc, char **argv);  /* tools/convert.c */
int cmd_bench_image(int argc, char **argv); /* tools/bench_image.c */
int cmd_inspect(int argc, char **argv);  /* tools/inspect.c */
int cmd_quantize(int argc, char **argv); /* tools/quantize.c */

/* Write a formatted message into err (if not NULL) and return -1. */
int tool_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Read a whole file into a malloc'd buffer; NULL and a message on error. */
void *tool_read_file(const char *path, size_t *len, char *err, size_t errlen);
/* Parse a positive int flag value; exits 2 with a message when invalid. */
int tool_parse_int(const char *flag, const char *value, int min, int max);

/* Load a model at precision (enum rn_precision) and create a context for
 * max_batch images of size x size (0: the model's crop). On failure prints
 * why, returns -1, both NULL. */
int tool_open_model(const char *path, int precision, int threads, int max_batch, int size,
                    rn_model **m, rn_ctx **ctx);
/* "fp32" or "bf16" to enum rn_precision; exits 2 with a message otherwise. */
int tool_parse_precision(const char *value);

#endif
