/* The jobs handed to the batcher: a request's images, what to compute for
 * them (logits and embedding, one layer's output, or an inspection) and
 * where each image's results go. A route fills one in its own state
 * (infer_job_init, its images, infer_job_outputs), the transport queues it
 * (request_submit, batcher_submit), the workers compute it and call its
 * done(), the route reads the results and frees it (infer_job_free). */
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
    float *logits;          /* out: n_classes floats, in the job's outputs */
    float *embed;           /* out: embed_dim floats, in the job's outputs */
    float *layer_out;       /* out, for a job with a layer: its floats, in the outputs */
    rn_inspection *inspection; /* out, for an inspect job; freed with the job */
    void *png;              /* out, for an inspect job with png_class: the heat map;
                               freed with the job unless taken (set to NULL) */
    size_t png_len;
    enum srv_err status;    /* out: SRV_OK, or why this image failed */
    char err[256];          /* out: message when status != SRV_OK */
    double queue_s;         /* out: time from submit to the start of its batch */
    double preprocess_s;    /* out: its decode and preprocess (0: not reached) */
    double compute_s;       /* out: its batch's inference (0: not reached) */
    int batch_n;            /* out: the images of that batch */
    struct infer_job *job;
    struct infer_image *next; /* queue link */
};

/* A request's images. All are queued at once and done() is called, from a
 * worker, once the last is finished (computed, failed or timed out). */
struct infer_job {
    struct model *model;        /* referenced by the job's owner for the job's life */
    struct infer_image *images; /* n, malloc'd; owned by the job */
    int n;
    float *outputs;             /* what the images' logits, embed or layer_out point
                                   into (infer_job_outputs); owned by the job */
    size_t layer_floats;        /* floats per image of a job with a layer */
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

/* Zero job and set what it computes by default: the logits and the
 * embedding (layer -1), no inspection, no heat map (png_class -1). */
void infer_job_init(struct infer_job *job);

/* Allocate job's outputs for its n images (model, images with their h and
 * w, layer and pool set) and point each image at its share: n_classes
 * logits then embed_dim floats, or the layer's output at the first image's
 * size (layer_floats per image). Returns 0, or -1 when out of memory. */
int infer_job_outputs(struct infer_job *job);

/* Free the images (with their inspections and heat maps) and the outputs of
 * job; not its model. Accepts a job set by infer_job_init only. */
void infer_job_free(struct infer_job *job);

#endif
