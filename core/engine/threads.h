/* A fork-join thread pool: one parallel loop at a time, caller included. */
#ifndef RN_THREADS_H
#define RN_THREADS_H

/* Runs task t of a loop on thread `thread` (0 is the caller). */
typedef void (*rn_task_fn)(void *arg, int t, int thread);

typedef struct rn_pool rn_pool;

/* Start n_threads - 1 threads (the caller is the n-th). NULL on failure. */
rn_pool *rn_pool_new(int n_threads);
void rn_pool_free(rn_pool *p); /* accepts NULL; joins the threads */
int rn_pool_size(const rn_pool *p);

/* Run fn(arg, t, thread) for t in [0, n_tasks) across the pool and return
 * when all are done. Thread i runs the i-th of n_threads contiguous ranges
 * of tasks from its front; a thread done with its own takes tasks from the
 * back of the others'. Which thread runs a task must not change its result. */
void rn_pool_run(rn_pool *p, int n_tasks, rn_task_fn fn, void *arg);

#endif
