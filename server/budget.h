/* The start-up memory check: the worst case the flags allow (activations for
 * full batches on every worker, a decoded image per worker, a full queue of
 * maximal bodies, the weights) against the memory of the machine or of its
 * cgroup. A configuration that cannot fit is refused before the port is bound,
 * instead of being killed by the kernel under the first real load. */
#ifndef RESNETD_BUDGET_H
#define RESNETD_BUDGET_H

#include <stdint.h>

#include "config.h"
#include "resnet.h"

struct mem_budget {
    uint64_t activations; /* workers x (max_batch x per-image activations + im2col), outputs */
    uint64_t decode;      /* workers x one image of --max-pixels, decoded and resized */
    uint64_t queue;       /* --max-queue images, each holding a body of --max-body-bytes */
    uint64_t weights;     /* every model's parameters as floats */
    uint64_t total;
};

/* Add one model's share (weights, activations at cfg's batch and workers)
 * to b, set the terms that depend on cfg alone, and recompute b->total.
 * Start from a zeroed b; call once per model. */
void budget_add_model(struct mem_budget *b, const struct config *cfg, const rn_model *m, int crop);

/* Memory the process may use: physical memory, or the cgroup's memory.max
 * when that is lower. 0 when unknown. */
uint64_t budget_machine_memory(void);

/* Check the loaded models (models.h) under cfg against machine bytes (0: ask
 * budget_machine_memory). Returns 0 when the worst case fits, or -1 with a
 * message naming the largest term and the flags that bound it. */
int budget_check(const struct config *cfg, uint64_t machine, char *err, size_t errlen);

#endif
