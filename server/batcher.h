/* The batcher: a bounded queue of images and the inference workers that take
 * batches from it (see batcher.c for the loop and the threading decision);
 * what it is given to compute is a job (job.h). */
#ifndef RESNETD_BATCHER_H
#define RESNETD_BATCHER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "job.h"

typedef struct batcher batcher;

struct batcher_params {
    int workers, max_batch, max_delay_us, max_queue;
    int64_t max_pixels;
    int lend; /* a batch that is the only work runs on its model's lone context */
};

/* Start the workers. Returns 0 and *out, or -1 with a message. */
int batcher_start(const struct batcher_params *p, batcher **out, char *err, size_t errlen);

/* Queue every image of job (job->images, n, model, deadline, done set by the
 * caller; the rest is reset here). Returns SRV_OK; SRV_ERR_QUEUE_FULL when the
 * queue lacks n free slots; SRV_ERR_TOO_MANY_IMAGES when n exceeds the queue;
 * SRV_ERR_NOT_READY after batcher_stop started. Nothing is queued on error. */
enum srv_err batcher_submit(batcher *b, struct infer_job *job);

/* Images queued and being computed. */
int batcher_depth(batcher *b);

/* Images queued, waiting for a worker (what --max-queue bounds). */
int batcher_queued(batcher *b);

/* Wait until the queue is empty and no worker is busy, at most timeout_ms.
 * Returns 0 when idle, -1 on timeout. */
int batcher_wait_idle(batcher *b, int timeout_ms);

/* Refuse new jobs, finish the queued ones, join the workers, free b.
 * Accepts NULL. */
void batcher_stop(batcher *b);

/* The longest time any worker has been in its current batch (0: all idle);
 * the systemd watchdog withholds its ping when a worker is stuck. */
int64_t batcher_busiest_ns(batcher *b);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t now_ns(void);

#endif
