/* Map a Keras ResNet, read from a TF.js layers model, onto torchvision's ResNet
 * state_dict: names, tensor layouts, conv biases folded into batch norm, and the
 * facts the metadata needs (batch-norm epsilon, v1 or v1.5, classes).
 * Used by `resnet convert --from tfjs` (tools/convert.c).
 */
#ifndef RESNET_KERAS_RESNET_H
#define RESNET_KERAS_RESNET_H

#include <stddef.h>

#include "st_write.h"
#include "tfjs.h"

#define KERAS_MAX_STAGES 8

typedef struct keras_resnet_info {
    double bn_eps;       /* from the BatchNormalization configs (all equal) */
    const char *variant; /* "v1" (stride on the first 1x1) or "v1.5"; static */
    int n_classes;
    int n_stages;
    int blocks[KERAS_MAX_STAGES]; /* blocks per stage */
    int bottleneck;               /* 1: three convolutions per block, 0: two */
    size_t n_params;              /* floats written */
} keras_resnet_info;

/* Check tf's layers (names, topology, configs, shapes) and add every tensor,
 * renamed and transposed, to st in torchvision's state_dict order. The data of
 * those tensors lives in *arena, which the caller frees after stw_write, also
 * when this fails. Any unknown or missing layer or weight is an error naming it.
 * Returns 0, or -1 with a message in err. */
int keras_resnet_to_torchvision(const tfjs_model *tf, stw_writer *st, float **arena,
                                keras_resnet_info *info, char *err, size_t errlen);

#endif
