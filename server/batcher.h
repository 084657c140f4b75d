/* The batcher: a bounded queue of images and the inference workers that take
 * batches from it (see batcher.c for the loop and the threading decision). */
#ifndef RESNETD_BATCHER_H
#define RESNETD_BATCHER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "models.h"

struct job;

/* One image of a job: one slot of the queue. */
struct job_image {
    const void *data;       /* encoded image bytes (JPEG, PNG), or NULL */
    size_t len;
    const float *tensor;    /* or an already preprocessed 3 x h x w tensor */
    int h, w;               /* input size; the model's crop for encoded images */
    float *logits;          /* out: n_classes floats, owned by the job's owner */
    float *embed;           /* out: embed_dim floats */
    float *layer_out;       /* out, for a job with a layer: that layer's floats */
    rn_inspection *inspection; /* out, for an inspect job (owned by the job's owner) */
    void *png;              /* out, for an inspect job with png_class: the heat map */
    size_t png_len;
    enum srv_err status;    /* out: SRV_OK, or why this image failed */
    char err[256];          /* out: message when status != SRV_OK */
    double queue_s;         /* out: time from submit to the start of its batch */
    double compute_s;       /* out: time its batch took */
    struct job *job;
    struct job_image *next; /* queue link */
};

/* A request's images. All are queued at once and done() is called, from a
 * worker, once the last is finished (computed, failed or timed out). */
struct job {
    struct model *model;        /* referenced by the owner for the job's life */
    struct job_image *images;
    int n;
    int64_t t_submit_ns;        /* CLOCK_MONOTONIC */
    int64_t deadline_ns;        /* past it, images are answered 504 uncomputed */
    atomic_int pending;
    atomic_int failed;          /* an image failed: skip the others */
    int layer, pool;            /* rn_model_layer_find and enum rn_pooling, or layer -1:
                                   the logits and the embedding */
    int inspect;                /* 1: rn_inspect each image alone (POST /v1/inspect) */
    int lesions;                /* ... with lesions */
    int png_class;              /* ... and a CAM heat map of this class (-2: the top-1),
                                   or -1: none */
    int exif_orient;            /* rn_image_params.exif_orient for the job's images */
    void (*done)(struct job *job);
    int (*gone)(struct job *job); /* optional: the client went away, skip the job */
    void *user;
};

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
enum srv_err batcher_submit(batcher *b, struct job *job);

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
