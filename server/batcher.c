/* The batcher: a bounded FIFO of images and the workers that run them.
 *
 * The loop. An HTTP thread turns a request into a job of k images and queues
 * all k at once (batcher_submit), or none: if fewer than k slots are free the
 * request is answered 503 at once, so a full server costs clients one round
 * trip, never a wait. Each worker then loops:
 *
 *   1. wait on `nonempty` until the queue holds an image and no batch runs
 *      on lent threads;
 *   2. take the oldest image and, in arrival order, every queued image of the
 *      same model, input size and outputs (logits, or one named layer), up to
 *      --max-batch (Triton's dynamic batcher);
 *   3. with --max-delay-us > 0 and a batch not yet full, wait for more images
 *      until the oldest has waited that long (0, the default: never wait);
 *   4. unlock, then for each image: answer 504 if it waited past its deadline
 *      (not computed), skip it if another image of its job already failed or
 *      its client hung up (overloaded clients give up; their work must not
 *      crowd out the others), else decode and preprocess it straight into the
 *      batch buffer;
 *   4b. then, if no other worker holds a batch and the queue is empty, the
 *      batch is the only work: its inference runs on the model's lone context
 *      (--lone-threads, every core by default) and the other workers wait for
 *      it, so that a lone request gets the whole machine and workers x
 *      threads still never exceed the cores. Decided after the decode, not
 *      before: a decode runs on one thread, and under load the other workers
 *      keep their cores busy meanwhile, often taking the requests that came
 *      in, so that the batch stays on its own thread;
 *   5. one rn_infer() (or rn_infer_outputs() for a layer) over the batch,
 *      results copied to each image's job;
 *   6. the worker that finishes a job's last image calls job->done(), which
 *      resumes the suspended HTTP connection; the reply is built there.
 *
 * The threading decision. Workers never touch sockets and HTTP threads never
 * compute: a waiting connection is suspended and holds no thread. Decoding
 * happens in the worker, not in the HTTP threads: it is CPU work of the same
 * kind as inference, so it belongs to the threads that are budgeted for the
 * cores, and with two or more workers one worker's decode overlaps another's
 * GEMMs. Each worker owns one rn_ctx per model (scratch and BLAS threads, one
 * user at a time), and workers x threads-per-worker <= cores: more would make
 * the BLAS threads of different workers preempt each other mid-GEMM, which
 * costs throughput and makes latency erratic. */
#include "batcher.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

struct worker {
    struct batcher *b;
    int id;
    pthread_t thread;
    struct infer_image **batch; /* max_batch entries */
    float *in, *logits, *embed, *layer;
    size_t in_cap, logits_cap, embed_cap, layer_cap; /* in floats */
    _Atomic int64_t busy_since_ns; /* start of the current batch, 0 when idle */
};

struct batcher {
    struct batcher_params p;
    pthread_mutex_t lock;
    pthread_cond_t nonempty; /* signalled when images are queued or on stop */
    pthread_cond_t idle;     /* broadcast when a worker finishes a batch */
    struct infer_image *head, *tail;
    int queued;              /* images in the queue */
    int running;             /* images being computed */
    int lone;                /* a batch runs on lent threads: the others wait */
    int stopping;
    struct worker *workers;
    int n_workers;
};

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

enum srv_err batcher_submit(batcher *b, struct infer_job *job)
{
    if (job->n > b->p.max_queue)
        return SRV_ERR_TOO_MANY_IMAGES;
    int64_t t = now_ns();
    job->t_submit_ns = t;
    atomic_store(&job->pending, job->n);
    atomic_store(&job->failed, 0);
    pthread_mutex_lock(&b->lock);
    if (b->stopping) {
        pthread_mutex_unlock(&b->lock);
        return SRV_ERR_NOT_READY;
    }
    if (b->queued + job->n > b->p.max_queue) {
        pthread_mutex_unlock(&b->lock);
        return SRV_ERR_QUEUE_FULL;
    }
    for (int i = 0; i < job->n; i++) {
        struct infer_image *it = &job->images[i];
        it->job = job;
        it->next = NULL;
        it->status = SRV_OK;
        it->err[0] = '\0';
        it->queue_s = it->preprocess_s = it->compute_s = 0;
        it->batch_n = 0;
        if (b->tail)
            b->tail->next = it;
        else
            b->head = it;
        b->tail = it;
    }
    b->queued += job->n;
    metrics_queue_depth(b->queued);
    pthread_cond_broadcast(&b->nonempty);
    pthread_mutex_unlock(&b->lock);
    return SRV_OK;
}

int batcher_queued(batcher *b)
{
    pthread_mutex_lock(&b->lock);
    int n = b->queued;
    pthread_mutex_unlock(&b->lock);
    return n;
}

int batcher_depth(batcher *b)
{
    pthread_mutex_lock(&b->lock);
    int n = b->queued + b->running;
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* Move queued images that can join batch[0..n) into it, in arrival order.
 * With n == 0 the oldest image starts the batch. Called with the lock held. */
static int take(struct batcher *b, struct infer_image **batch, int n)
{
    struct infer_image *prev = NULL, *it = b->head;
    while (it && n < b->p.max_batch) {
        struct infer_image *next = it->next;
        const struct infer_job *j0 = n ? batch[0]->job : NULL;
        if (n == 0 || (!it->job->inspect && !j0->inspect && it->job->model == j0->model &&
                       it->h == batch[0]->h &&
                       it->w == batch[0]->w && it->job->layer == j0->layer &&
                       (j0->layer < 0 || it->job->pool == j0->pool))) {
            if (prev)
                prev->next = next;
            else
                b->head = next;
            if (b->tail == it)
                b->tail = prev;
            it->next = NULL;
            batch[n++] = it;
            b->queued--;
        } else {
            prev = it;
        }
        it = next;
    }
    return n;
}

static int grow(float **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    float *p = realloc(*buf, need * sizeof **buf);
    if (!p)
        return -1;
    *buf = p;
    *cap = need;
    return 0;
}

static void fail_image(struct infer_image *it, enum srv_err e, const char *msg)
{
    it->status = e;
    snprintf(it->err, sizeof it->err, "%s", msg);
    atomic_store(&it->job->failed, 1);
}

/* An inspection: rn_inspect on the image, then its heat map if asked for. */
static void inspect_one(struct infer_image *it, rn_ctx *ctx, const float *x, int h, int w,
                        int lone)
{
    int64_t t0 = now_ns();
    const struct infer_job *j = it->job;
    char msg[256];
    rn_inspect_params ip = rn_inspect_default_params();
    ip.lesions = j->lesions;
    int st = rn_inspect(ctx, x, h, w, &ip, &it->inspection, msg, sizeof msg);
    if (st == RN_ERR_UNSUPPORTED) { /* the model's plan, not the image */
        fail_image(it, SRV_ERR_MODEL_FEATURE, msg);
        return;
    }
    if (st == RN_OK && j->png_class != -1) {
        int cls = j->png_class;
        if (cls < 0)
            rn_topk(it->inspection->probs, it->inspection->n_classes, 1, &cls);
        st = rn_inspection_png(j->model->m, it->inspection, cls, x, h, w, &it->png, &it->png_len,
                               msg, sizeof msg);
    }
    double dt = (double)(now_ns() - t0) / 1e9;
    it->compute_s = dt;
    it->batch_n = 1;
    if (st < 0) {
        fail_image(it, srv_err_from_rn(st), msg);
        return;
    }
    metrics_batch(j->model->name, 1, dt, lone);
}

/* Floats per image of the layer job j asks for at h x w (0: none). */
static size_t layer_floats(const struct model *m, const struct infer_job *j, int h, int w)
{
    if (j->layer < 0)
        return 0;
    int shape[3] = {0, 0, 0};
    rn_model_layer_shape(m->m, j->layer, h, w, shape);
    return (size_t)shape[0] * (j->pool == RN_POOL_AVG ? 1 : (size_t)shape[1] * shape[2]);
}

/* Step 4 of the loop: the batch's checks and decodes into w->in; idx[0..k)
 * are the images that go on, each with its queue wait and decode time.
 * Returns k. */
static int decode_batch(struct worker *w, int n, int idx[])
{
    struct infer_image **batch = w->batch;
    struct model *m = batch[0]->job->model;
    int h = batch[0]->h, wd = batch[0]->w;
    size_t sz = (size_t)3 * h * wd;
    int nc = m->info->n_classes, ed = m->info->embed_dim;
    const struct infer_job *j0 = batch[0]->job;
    int64_t t0 = now_ns();
    char msg[256];
    size_t per = layer_floats(m, j0, h, wd);

    if (grow(&w->in, &w->in_cap, sz * n) < 0 || grow(&w->logits, &w->logits_cap, (size_t)nc * n) < 0 ||
        grow(&w->embed, &w->embed_cap, (size_t)ed * n) < 0 ||
        grow(&w->layer, &w->layer_cap, per * n) < 0) {
        for (int i = 0; i < n; i++)
            fail_image(batch[i], SRV_ERR_NOMEM, "out of memory for the batch");
        return 0;
    }
    rn_image_params ip = rn_image_default_params();
    ip.max_pixels = w->b->p.max_pixels;
    int k = 0;
    for (int i = 0; i < n; i++) {
        struct infer_image *it = batch[i];
        it->queue_s = (double)(t0 - it->job->t_submit_ns) / 1e9;
        if (atomic_load(&it->job->failed))
            continue;
        if (t0 > it->job->deadline_ns) {
            fail_image(it, SRV_ERR_TIMEOUT, "request timed out in the queue");
            continue;
        }
        if (it->job->gone && it->job->gone(it->job)) {
            fail_image(it, SRV_ERR_CLIENT_GONE, "client closed the connection while queued");
            continue;
        }
        float *x = w->in + sz * k;
        ip.exif_orient = it->job->exif_orient;
        int64_t td = now_ns();
        if (it->data) {
            int st = rn_image_to_tensor(it->data, it->len, &ip, m->pp, x, msg, sizeof msg);
            it->preprocess_s = (double)(now_ns() - td) / 1e9;
            if (st < 0) {
                fail_image(it, srv_err_from_rn(st), msg);
                continue;
            }
        } else {
            memcpy(x, it->tensor, sz * sizeof *x);
            it->preprocess_s = (double)(now_ns() - td) / 1e9;
        }
        idx[k++] = i;
    }
    return k;
}

/* Step 5: infer the k decoded images idx[] (on the lone context when lone),
 * scatter the results. */
static void infer_batch(struct worker *w, const int idx[], int k, int lone)
{
    struct infer_image **batch = w->batch;
    struct model *m = batch[0]->job->model;
    int h = batch[0]->h, wd = batch[0]->w;
    int nc = m->info->n_classes, ed = m->info->embed_dim;
    const struct infer_job *j0 = batch[0]->job;
    char msg[256];
    size_t per = layer_floats(m, j0, h, wd);
    rn_ctx *ctx = lone && m->lone ? m->lone : m->ctx[w->id];
    if (j0->inspect) { /* take() gives an inspection a batch of its own */
        inspect_one(batch[idx[0]], ctx, w->in, h, wd, lone && m->lone);
        return;
    }
    int64_t t0 = now_ns();
    rn_output o = {.layer = j0->layer, .pool = j0->pool, .data = w->layer};
    int st = j0->layer >= 0 ? rn_infer_outputs(ctx, w->in, k, h, wd, &o, 1, msg, sizeof msg)
                            : rn_infer(ctx, w->in, k, h, wd, w->logits, w->embed, msg, sizeof msg);
    double dt = (double)(now_ns() - t0) / 1e9;
    for (int j = 0; j < k; j++) {
        struct infer_image *it = batch[idx[j]];
        it->compute_s = dt;
        it->batch_n = k;
        if (st < 0) {
            fail_image(it, srv_err_from_rn(st), msg);
            continue;
        }
        if (j0->layer >= 0) {
            memcpy(it->layer_out, w->layer + per * j, per * sizeof(float));
            continue;
        }
        memcpy(it->logits, w->logits + (size_t)nc * j, (size_t)nc * sizeof(float));
        memcpy(it->embed, w->embed + (size_t)ed * j, (size_t)ed * sizeof(float));
    }
    if (st >= 0)
        metrics_batch(m->name, k, dt, lone && m->lone);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct batcher *b = w->b;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        /* on: images and no lone batch; or stopping with nothing left */
        while (!(b->head && !b->lone) && !(b->stopping && !b->head))
            pthread_cond_wait(&b->nonempty, &b->lock);
        if (!b->head) {
            pthread_mutex_unlock(&b->lock);
            break;
        }
        int n = take(b, w->batch, 0);
        if (n < b->p.max_batch && b->p.max_delay_us > 0) {
            int64_t until = w->batch[0]->job->t_submit_ns + (int64_t)b->p.max_delay_us * 1000;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t left = until - now_ns();
            if (left > 0) {
                int64_t abs_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + left;
                ts.tv_sec = abs_ns / 1000000000;
                ts.tv_nsec = abs_ns % 1000000000;
                while (n < b->p.max_batch && !b->stopping &&
                       pthread_cond_timedwait(&b->nonempty, &b->lock, &ts) == 0)
                    n = take(b, w->batch, n);
                n = take(b, w->batch, n);
            }
        }
        /* Another worker may have taken the lent threads while this one
         * waited for a fuller batch: it waits for them too. */
        while (b->lone)
            pthread_cond_wait(&b->nonempty, &b->lock);
        b->running += n;
        metrics_queue_depth(b->queued);
        pthread_mutex_unlock(&b->lock);

        atomic_store(&w->busy_since_ns, now_ns());
        int idx[256];
        int k = decode_batch(w, n, idx);
        /* Step 4b, once decoded: a decode is single-threaded, so the lent
         * threads are claimed only for the inference, and only if the batch
         * is still the only work (no other worker took a batch meanwhile,
         * nothing came in) */
        pthread_mutex_lock(&b->lock);
        while (b->lone)
            pthread_cond_wait(&b->nonempty, &b->lock);
        int lone = k > 0 && b->p.lend && b->running == n && !b->head;
        if (lone)
            b->lone = 1;
        pthread_mutex_unlock(&b->lock);
        if (k > 0)
            infer_batch(w, idx, k, lone);
        atomic_store(&w->busy_since_ns, 0);

        pthread_mutex_lock(&b->lock);
        b->running -= n;
        if (lone) {
            b->lone = 0;
            pthread_cond_broadcast(&b->nonempty); /* the others may go on */
        }
        pthread_cond_broadcast(&b->idle);
        pthread_mutex_unlock(&b->lock);
        /* Step 6; after done() the job may be freed at any moment. */
        for (int i = 0; i < n; i++) {
            struct infer_job *job = w->batch[i]->job;
            if (atomic_fetch_sub(&job->pending, 1) == 1)
                job->done(job);
        }
    }
    return NULL;
}

int batcher_start(const struct batcher_params *p, batcher **out, char *err, size_t errlen)
{
    *out = NULL;
    if (p->workers < 1 || p->max_batch < 1 || p->max_batch > 256 || p->max_queue < 1) {
        snprintf(err, errlen, "batcher: invalid parameters");
        return -1;
    }
    struct batcher *b = calloc(1, sizeof *b);
    if (!b)
        goto out_nomem;
    b->p = *p;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->nonempty, &ca);
    pthread_cond_init(&b->idle, &ca);
    pthread_condattr_destroy(&ca);
    b->workers = calloc((size_t)p->workers, sizeof *b->workers);
    if (!b->workers)
        goto out_free;
    for (int i = 0; i < p->workers; i++) {
        struct worker *w = &b->workers[i];
        w->b = b;
        w->id = i;
        w->batch = calloc((size_t)p->max_batch, sizeof *w->batch);
        if (!w->batch)
            goto out_stop;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            free(w->batch);
            snprintf(err, errlen, "batcher: cannot start worker thread %d", i);
            batcher_stop(b);
            return -1;
        }
        b->n_workers++;
    }
    *out = b;
    return 0;

out_stop:
    batcher_stop(b);
    snprintf(err, errlen, "batcher: out of memory");
    return -1;
out_free:
    free(b);
out_nomem:
    snprintf(err, errlen, "batcher: out of memory");
    return -1;
}

int batcher_wait_idle(batcher *b, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t abs_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (int64_t)timeout_ms * 1000000;
    ts.tv_sec = abs_ns / 1000000000;
    ts.tv_nsec = abs_ns % 1000000000;
    int rc = 0;
    pthread_mutex_lock(&b->lock);
    while ((b->queued || b->running) && rc == 0)
        rc = pthread_cond_timedwait(&b->idle, &b->lock, &ts);
    int busy = b->queued || b->running;
    pthread_mutex_unlock(&b->lock);
    return busy ? -1 : 0;
}

void batcher_stop(batcher *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = 1;
    pthread_cond_broadcast(&b->nonempty);
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < b->n_workers; i++) {
        struct worker *w = &b->workers[i];
        pthread_join(w->thread, NULL);
        free(w->batch);
        free(w->in);
        free(w->logits);
        free(w->embed);
        free(w->layer);
    }
    free(b->workers);
    pthread_cond_destroy(&b->nonempty);
    pthread_cond_destroy(&b->idle);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

int64_t batcher_busiest_ns(batcher *b)
{
    int64_t now = now_ns(), most = 0;
    for (int i = 0; i < b->n_workers; i++) {
        int64_t t = atomic_load(&b->workers[i].busy_since_ns);
        if (t && now - t > most)
            most = now - t;
    }
    return most;
}
