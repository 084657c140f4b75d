/* The jobs handed to the batcher: a request's images, what to compute for
 * them (logits and embedding, one layer's output, or an inspection) and
 * where each image's results go. A route fills one, the transport queues it
 * (batcher_submit), the workers compute it and call its done(). */
#ifndef RESNETD_JOB_H
#define RESNETD_JOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "models.h"

struct infer_job;

/* One image of a job: one slot of the queue. */
struct infer_image {
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
    struct infer_job *job;
    struct infer_image *next; /* queue link */
};

/* A request's images. All are queued at once and done() is called, from a
 * worker, once the last is finished (computed, failed or timed out). */
struct infer_job {
    struct model *model;        /* referenced by the owner for the job's life */
    struct infer_image *images;
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
    void (*done)(struct infer_job *job);
    int (*gone)(struct infer_job *job); /* optional: the client went away, skip the job */
    void *user;
};

#endif
