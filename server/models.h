/* The models resnetd serves, behind reference-counted handles. A request
 * takes a reference when it starts and drops it when it is freed, so a model
 * swapped out (SIGHUP reload) lives until the last request using it is done. */
#ifndef RESNETD_MODELS_H
#define RESNETD_MODELS_H

#include <stdatomic.h>

#include "config.h"
#include "resnet.h"

struct model {
    char name[64];
    char path[4096];
    rn_model *m;
    const rn_model_info *info;
    const rn_preprocess *pp;
    rn_ctx **ctx;       /* one per worker: ctx[i] is used by worker i only */
    int n_ctx;
    rn_ctx *lone;       /* --lone-threads threads, used by one worker at a time
                         * when no other is busy (batcher.c); NULL when not lent */
    int max_batch;
    atomic_int refs;
};

/* Load every model of cfg, with one context per worker, and run one batch on
 * each context (warm-up). Returns 0, or -1 with a message naming the model.
 * With --model-dir, the models its files hold: one that does not load is
 * logged and skipped; -1 when none loads. */
int models_init(const struct config *cfg, char *err, size_t errlen);

/* Load every model again from its path, beside the ones being served, and
 * swap them all in at once. Requests already holding a model finish on it.
 * On failure nothing changes and err says which model failed and why.
 * With --model-dir, the folder is scanned again: models whose file is gone
 * are no longer served, new files are; a file that does not load is logged
 * and skipped (a model of its name served before stays as it was); -1 and
 * nothing changes when the folder holds nothing that loads. */
int models_reload(const struct config *cfg, char *err, size_t errlen);

/* Drop the registry's references (models in use live on until released). */
void models_shutdown(void);

/* A new reference to the model called name (NULL or "": the default), or NULL
 * when there is no such model. Release with model_release. */
struct model *models_acquire(const char *name);
void model_release(struct model *m); /* accepts NULL */

/* "fp32" or "bf16", the --precision names, for logs and metadata: of what a
 * model runs in, info->precision, which may be FP32 under --precision bf16
 * where the library cannot run BF16 (it logs why). */
const char *models_precision_name(int precision);

/* The number of models, and a new reference to the i-th (NULL past the end). */
int models_count(void);
struct model *models_acquire_index(int i);

#endif
