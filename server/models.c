/* The model registry: a fixed table of named slots, each holding the current
 * handle of its model. Handles are reference-counted so that a reload can swap
 * a slot's handle under the lock while requests still hold the old one. */
#include "models.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "model_dir.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct model *slots[CFG_MAX_MODELS];
static int n_slots;

static void model_destroy(struct model *m)
{
    for (int i = 0; i < m->n_ctx; i++)
        rn_ctx_free(m->ctx[i]);
    free(m->ctx);
    rn_ctx_free(m->lone);
    rn_model_free(m->m);
    free(m);
}

void model_release(struct model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        model_destroy(m);
}

const char *models_precision_name(int precision)
{
    return rn_precision_name(precision);
}

/* Load one model with n_workers contexts (and the lone context when threads
 * are lent) and warm each context up. */
static struct model *model_open(const struct cfg_model *cm, const struct config *cfg,
                                char *err, size_t errlen)
{
    char msg[512];
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "model %s: out of memory", cm->name);
        return NULL;
    }
    snprintf(m->name, sizeof m->name, "%s", cm->name);
    snprintf(m->path, sizeof m->path, "%s", cm->path);
    atomic_init(&m->refs, 1);
    rn_model_params mp = rn_model_default_params();
    mp.precision = cfg->precision; /* start-up and SIGHUP reload alike */
    mp.labels = cm->labels[0] ? cm->labels : NULL;
    if (rn_model_load(cm->path, &mp, &m->m, msg, sizeof msg) < 0) {
        snprintf(err, errlen, "model %s: %s", cm->name, msg);
        goto out_free;
    }
    m->info = rn_model_info_get(m->m);
    m->pp = rn_model_preprocess(m->m);
    m->max_batch = cfg->max_batch;
    m->ctx = calloc((size_t)cfg->workers, sizeof *m->ctx);
    if (!m->ctx) {
        snprintf(err, errlen, "model %s: out of memory", cm->name);
        goto out_free;
    }
    size_t in_n = (size_t)3 * m->pp->crop * m->pp->crop;
    float *x = calloc(in_n, sizeof *x);
    float *y = calloc((size_t)m->info->n_classes, sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        snprintf(err, errlen, "model %s: out of memory", cm->name);
        goto out_free;
    }
    for (int i = 0; i < cfg->workers; i++) {
        rn_ctx_params cp = rn_ctx_default_params();
        cp.n_threads = cfg->threads;
        cp.max_batch = cfg->max_batch;
        cp.max_size = m->pp->crop;
        if (rn_ctx_new(m->m, &cp, &m->ctx[i], msg, sizeof msg) < 0 ||
            rn_infer(m->ctx[i], x, 1, m->pp->crop, m->pp->crop, y, NULL, msg, sizeof msg) < 0) {
            snprintf(err, errlen, "model %s: worker context: %s", cm->name, msg);
            m->n_ctx = i + 1;
            free(x);
            free(y);
            goto out_free;
        }
        m->n_ctx = i + 1;
    }
    if (cfg->lone_threads > cfg->threads) {
        rn_ctx_params cp = rn_ctx_default_params();
        cp.n_threads = cfg->lone_threads;
        cp.max_batch = cfg->max_batch;
        cp.max_size = m->pp->crop;
        if (rn_ctx_new(m->m, &cp, &m->lone, msg, sizeof msg) < 0 ||
            rn_infer(m->lone, x, 1, m->pp->crop, m->pp->crop, y, NULL, msg, sizeof msg) < 0) {
            snprintf(err, errlen, "model %s: lone context: %s", cm->name, msg);
            free(x);
            free(y);
            goto out_free;
        }
    }
    free(x);
    free(y);
    return m;

out_free:
    model_destroy(m);
    return NULL;
}

/* --model-dir: the weights files it holds now into found; 0 or -1 and a
 * message when there are none. */
static int scan(const struct config *cfg, struct cfg_model *found, char *err, size_t errlen)
{
    int n = model_dir_scan(cfg->model_dir, cfg->model_name, found, CFG_MAX_MODELS, err, errlen);
    if (n == 0)
        snprintf(err, errlen, "--model-dir %s: no .safetensors, .pth, .pt or .onnx file in it "
                 "or in a folder of it", cfg->model_dir);
    return n > 0 ? n : -1;
}

/* Load the models of --model-dir into fresh: a file that does not load is
 * logged and skipped, and when a model of its name is served (the file was
 * replaced by a broken one), that one stays. Returns how many are in fresh. */
static int open_dir(const struct config *cfg, const struct cfg_model *found, int n,
                    struct model **fresh)
{
    int nf = 0;
    for (int i = 0; i < n; i++) {
        char msg[1024];
        struct model *m = model_open(&found[i], cfg, msg, sizeof msg);
        if (!m && (m = models_acquire(found[i].name)) != NULL)
            log_msg("error", "model-dir: %s does not load, model %s stays as it was: %s",
                    found[i].path, found[i].name, msg);
        else if (!m)
            log_msg("error", "model-dir: skipping %s: %s", found[i].path, msg);
        if (m)
            fresh[nf++] = m;
    }
    return nf;
}

/* Serve fresh[0..n-1] from now on, in place of every model served. */
static void swap_in(struct model **fresh, int n)
{
    struct model *old[CFG_MAX_MODELS];
    for (int i = 0; i < n; i++) /* before a request can name it */
        metrics_add_model(fresh[i]->name);
    pthread_mutex_lock(&lock);
    int n_old = n_slots;
    memcpy(old, slots, sizeof old);
    memcpy(slots, fresh, sizeof *slots * (size_t)n);
    n_slots = n;
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n_old; i++)
        model_release(old[i]); /* freed when the last request using it ends */
}

static int dir_load(const struct config *cfg, char *err, size_t errlen)
{
    struct cfg_model found[CFG_MAX_MODELS];
    struct model *fresh[CFG_MAX_MODELS];
    int n = scan(cfg, found, err, errlen);
    if (n < 0)
        return -1;
    int nf = open_dir(cfg, found, n, fresh);
    if (nf == 0) {
        snprintf(err, errlen, "--model-dir %s: none of its %d weights file%s loads (see the "
                 "lines before)", cfg->model_dir, n, n > 1 ? "s" : "");
        return -1;
    }
    swap_in(fresh, nf);
    return 0;
}

int models_init(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->model_dir[0])
        return dir_load(cfg, err, errlen);
    for (int i = 0; i < cfg->n_models; i++) {
        struct model *m = model_open(&cfg->models[i], cfg, err, errlen);
        if (!m) {
            models_shutdown();
            return -1;
        }
        slots[n_slots++] = m;
    }
    return 0;
}

int models_reload(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->model_dir[0])
        return dir_load(cfg, err, errlen);
    struct model *fresh[CFG_MAX_MODELS] = {0}, *old[CFG_MAX_MODELS];
    int n = models_count();
    for (int i = 0; i < n; i++) {
        if (!(fresh[i] = model_open(&cfg->models[i], cfg, err, errlen))) {
            for (int j = 0; j < i; j++)
                model_release(fresh[j]);
            return -1;
        }
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n; i++) {
        old[i] = slots[i];
        slots[i] = fresh[i];
    }
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++)
        model_release(old[i]); /* freed when the last request using it ends */
    return 0;
}

void models_shutdown(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_slots; i++) {
        model_release(slots[i]);
        slots[i] = NULL;
    }
    n_slots = 0;
    pthread_mutex_unlock(&lock);
}

struct model *models_acquire(const char *name)
{
    struct model *m = NULL;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_slots; i++)
        if (!name || !*name || strcmp(slots[i]->name, name) == 0) {
            m = slots[i];
            atomic_fetch_add(&m->refs, 1);
            break;
        }
    pthread_mutex_unlock(&lock);
    return m;
}

int models_count(void)
{
    pthread_mutex_lock(&lock);
    int n = n_slots;
    pthread_mutex_unlock(&lock);
    return n;
}

struct model *models_acquire_index(int i)
{
    struct model *m = NULL;
    pthread_mutex_lock(&lock);
    if (i >= 0 && i < n_slots) {
        m = slots[i];
        atomic_fetch_add(&m->refs, 1);
    }
    pthread_mutex_unlock(&lock);
    return m;
}
