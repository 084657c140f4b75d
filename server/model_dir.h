/* --model-dir: the models a folder holds, found by their file names. */
#ifndef RESNETD_MODEL_DIR_H
#define RESNETD_MODEL_DIR_H

#include <stddef.h>

#include "config.h"

/* The weights files (.safetensors, .pth, .pt, .onnx) of dir and of its
 * folders one level down (KServe's storage initializer leaves a folder's
 * files there), in name order, into out[0..max-1]: each named by its file
 * name without the extension, or, when name is not "", the one file found
 * by name. Hidden entries (".x", Kubernetes' "..data") are passed over; a
 * file whose name is no model name, a second file of the same name, or one
 * past max is logged and skipped. Returns how many were found (0 too), or -1
 * with a message when dir cannot be read or name is given and several files
 * are there. */
int model_dir_scan(const char *dir, const char *name, struct cfg_model *out, int max,
                   char *err, size_t errlen);

#endif
