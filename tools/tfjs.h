/* Reader for TensorFlow.js layers models: model.json (topology and weights
 * manifest) plus the binary weight shards it lists. Only float32 weights are
 * accepted; quantized and other dtypes are refused with the weight's name.
 *
 *     tfjs_model *m = NULL;
 *     if (tfjs_load("ResNet50/model.json", &m, err, sizeof err) < 0) die("%s", err);
 *     const tfjs_weight *w = tfjs_find(m, "conv1/kernel");  // w->data: w->count floats
 *     tfjs_free(m);
 *
 * Parsing the manifest (tfjs_parse) is kept apart from file I/O
 * (tfjs_load_shards) so that the parser can be fuzzed on JSON text alone.
 */
#ifndef RESNET_TFJS_H
#define RESNET_TFJS_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define TFJS_MAX_DIMS 8

typedef struct tfjs_weight {
    const char *name; /* "res2a_branch2a/kernel", points into the JSON tree */
    int ndim;
    int64_t shape[TFJS_MAX_DIMS];
    size_t count;      /* elements: the product of shape (1 for a scalar) */
    size_t nbytes;     /* count * 4 */
    int group;         /* index into the model's groups */
    size_t offset;     /* byte offset inside its group's concatenated shards */
    const float *data; /* NULL until tfjs_load_shards succeeds */
} tfjs_weight;

typedef struct tfjs_group {
    const char **paths; /* shard file names relative to model.json's folder */
    int n_paths;
    size_t nbytes; /* what the manifest's weights of this group need */
    float *data;   /* the shards concatenated, after tfjs_load_shards */
} tfjs_group;

typedef struct tfjs_model {
    struct cJSON *root; /* the whole model.json */
    tfjs_group *groups;
    int n_groups;
    tfjs_weight *weights; /* in manifest order */
    int n_weights;
} tfjs_model;

/* Parse model.json text (len bytes, need not be NUL-terminated) and check its
 * weights manifest: every weight float32 and not quantized, shapes valid,
 * sizes without overflow, names unique, shard paths relative and without "..".
 * No file is touched. On success *out owns the model (tfjs_free); on failure
 * *out is NULL, err says what and where, and -1 is returned. */
int tfjs_parse(const char *json, size_t len, tfjs_model **out, char *err, size_t errlen);

/* Read every group's shards from dir, checking each shard file and the total
 * size of each group against the manifest, and point each weight's data into
 * them. Returns 0, or -1 with a message (the model stays valid, without data). */
int tfjs_load_shards(tfjs_model *m, const char *dir, char *err, size_t errlen);

/* tfjs_parse on the file at path, then tfjs_load_shards from its folder. */
int tfjs_load(const char *model_json, tfjs_model **out, char *err, size_t errlen);

/* The weight called name, or NULL. */
const tfjs_weight *tfjs_find(const tfjs_model *m, const char *name);

/* The Keras layer configs (modelTopology's model_config.config.layers, or
 * config.layers), a JSON array owned by m; NULL when model.json has none. */
const struct cJSON *tfjs_layers(const tfjs_model *m);

/* A top-level string field of model.json ("format", "generatedBy",
 * "convertedBy"), or NULL. */
const char *tfjs_string(const tfjs_model *m, const char *key);

void tfjs_free(tfjs_model *m); /* accepts NULL */

#endif
