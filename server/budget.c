/* The worst-case memory of a configuration, term by term, and the check that
 * it fits. The estimates are upper bounds of what the code allocates (the
 * library's rn_ctx_bytes for a context, server/batcher.c for the batch and
 * decode buffers, server/http.c for bodies); they need not be exact, only
 * large enough that "fits" means the daemon cannot run out of memory through
 * its bounded structures. Bodies still being uploaded are bounded by
 * --max-connections x --max-body-bytes, which is not counted: that product is
 * meant to be bounded by a reverse proxy (see README, Limits). */
#include "budget.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "models.h"

#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * MIB)

/* The terms that do not depend on the models. */
static void base_terms(struct mem_budget *b, const struct config *cfg)
{
    /* One image decoded to RGB at a time per worker, plus resize scratch. */
    b->decode = (uint64_t)cfg->workers * (uint64_t)cfg->max_pixels * 3 * 2;
    /* A queued image keeps its request's body (and its outputs, counted
     * with the activations) until the reply is sent. */
    b->queue = (uint64_t)cfg->max_queue * (uint64_t)cfg->max_body_bytes;
    b->total = b->activations + b->decode + b->queue + b->weights;
}

/* The most floats one image's output can hold: logits and embedding, or the
 * largest layer asked for whole (/v1/embed?layer=...&pool=none). */
static uint64_t max_output_floats(const rn_model *m, int crop)
{
    const rn_model_info *info = rn_model_info_get(m);
    uint64_t most = (uint64_t)info->n_classes + (uint64_t)info->embed_dim;
    for (int i = 0; i < rn_model_layer_count(m); i++) {
        int sh[3];
        if (rn_model_layer_shape(m, i, crop, crop, sh) == RN_OK &&
            (uint64_t)sh[0] * sh[1] * sh[2] > most)
            most = (uint64_t)sh[0] * sh[1] * sh[2];
    }
    return most;
}

void budget_add_model(struct mem_budget *b, const struct config *cfg, const rn_model *m, int crop)
{
    const rn_model_info *info = rn_model_info_get(m);
    /* what the library allocates for a context, from the model's plan */
    rn_ctx_params cp = rn_ctx_default_params();
    cp.n_threads = cfg->threads;
    cp.max_batch = cfg->max_batch;
    cp.max_size = crop;
    uint64_t ctx = rn_ctx_bytes(m, &cp);
    uint64_t input = (uint64_t)3 * crop * crop * sizeof(float); /* the batch buffer */
    uint64_t out = max_output_floats(m, crop) * sizeof(float);
    uint64_t workers = (uint64_t)cfg->workers, batch = (uint64_t)cfg->max_batch;
    /* Every worker keeps a context per model and batch buffers; every queued
     * image an output; with threads lent, each model one more context of
     * --lone-threads. */
    /* an inspection (POST /v1/inspect) runs alone on a worker's context and
     * allocates its lesion buffers and result beside it */
    uint64_t insp = rn_inspect_bytes(m, crop, crop);
    b->activations += workers * (ctx + batch * (input + out) + insp) + (uint64_t)cfg->max_queue * out;
    if (cfg->lone_threads > cfg->threads) {
        cp.n_threads = cfg->lone_threads;
        b->activations += rn_ctx_bytes(m, &cp);
    }
    b->weights += (uint64_t)(info->n_params > 0 ? info->n_params : 0) * sizeof(float);
    base_terms(b, cfg);
}

uint64_t budget_machine_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    uint64_t mem = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    /* systemd's MemoryMax= and containers set the cgroup v2 limit. */
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    if (f) {
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1 && v > 0 && (mem == 0 || v < mem))
            mem = v;
        fclose(f);
    }
    return mem;
}

int budget_check(const struct config *cfg, uint64_t machine, char *err, size_t errlen)
{
    struct mem_budget b;
    memset(&b, 0, sizeof b);
    base_terms(&b, cfg);
    int n = models_count();
    for (int i = 0; i < n; i++) {
        struct model *m = models_acquire_index(i);
        if (!m)
            continue;
        budget_add_model(&b, cfg, m->m, m->pp->crop);
        model_release(m);
    }
    if (!machine)
        machine = budget_machine_memory();
    if (!machine || b.total <= machine)
        return 0;
    const char *why;
    if (b.queue >= b.activations && b.queue >= b.decode)
        why = "lower --max-queue or --max-body-bytes";
    else if (b.activations >= b.decode)
        why = "lower --max-batch or --workers";
    else
        why = "lower --max-pixels or --workers";
    snprintf(err, errlen,
             "these limits need up to %.1f GiB but the machine has %.1f GiB: queue %d x %.0f MiB "
             "bodies = %.1f GiB, activations %d workers x %d images = %.1f GiB, decoding %.1f GiB, "
             "weights %.1f GiB; %s",
             b.total / GIB, machine / GIB, cfg->max_queue, cfg->max_body_bytes / MIB,
             b.queue / GIB, cfg->workers, cfg->max_batch, b.activations / GIB, b.decode / GIB,
             b.weights / GIB, why);
    return -1;
}
