/* A fork-join thread pool for the layers of one inference.
 *
 * rn_pool_run publishes a loop (fn, arg, n_tasks) under a new generation
 * number and wakes the threads; every thread, the caller included, takes task
 * indices from an atomic counter until none are left, then reports done. The
 * caller returns when all threads are done. Threads spin for a short while
 * before sleeping on the condition variable: a ResNet runs ~60 dependent
 * loops per image, and waking a sleeping thread costs tens of microseconds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "threads.h"

#define SPIN_ITERS 20000

struct rn_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake, done_cv;
    atomic_uint gen;      /* loop generation; bumped by rn_pool_run */
    atomic_int next;      /* next task index */
    atomic_int pending;   /* threads that have not finished the current loop */
    int n_tasks;
    rn_task_fn fn;
    void *arg;
    int stop;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void work(rn_pool *p, int thread)
{
    int t;
    while ((t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed)) < p->n_tasks)
        p->fn(p->arg, t, thread);
    if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_signal(&p->done_cv);
        pthread_mutex_unlock(&p->lock);
    }
}

struct thread_arg {
    rn_pool *p;
    int id;
};

static void *thread_main(void *v)
{
    struct thread_arg *ta = v;
    rn_pool *p = ta->p;
    int id = ta->id;
    free(ta);
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && spins < SPIN_ITERS) {
            cpu_relax();
            spins++;
        }
        pthread_mutex_lock(&p->lock);
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && !p->stop)
            pthread_cond_wait(&p->wake, &p->lock);
        int stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        work(p, id);
    }
}

rn_pool *rn_pool_new(int n_threads)
{
    rn_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->threads = calloc((size_t)p->n, sizeof *p->threads);
    if (!p->threads)
        goto out_free;
    for (int i = 1; i < p->n; i++) {
        struct thread_arg *ta = malloc(sizeof *ta);
        if (!ta || (ta->p = p, ta->id = i, pthread_create(&p->threads[i], NULL, thread_main, ta))) {
            free(ta);
            p->n = i; /* join the ones started */
            rn_pool_free(p);
            return NULL;
        }
    }
    return p;

out_free:
    free(p);
    return NULL;
}

void rn_pool_free(rn_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p);
}

int rn_pool_size(const rn_pool *p)
{
    return p->n;
}

void rn_pool_run(rn_pool *p, int n_tasks, rn_task_fn fn, void *arg)
{
    if (p->n == 1 || n_tasks <= 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(arg, t, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n, memory_order_relaxed);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    work(p, 0);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spins < SPIN_ITERS) {
        cpu_relax();
        spins++;
    }
    pthread_mutex_lock(&p->lock);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
        pthread_cond_wait(&p->done_cv, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
