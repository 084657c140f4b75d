/* The thread pool (core/engine/threads.c): every task of every loop runs exactly
 * once, on any pool size and any task count; a thread's range goes to the
 * others when it is held up; and, left alone, each thread runs its own
 * contiguous range, which is what keeps a layer's pixels on the core that
 * wrote them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine/threads.h"

#define MAX_TASKS 5000

struct count_job {
    atomic_int runs[MAX_TASKS];
    atomic_int bad_thread;
    int threads;
};

static void count_task(void *arg, int t, int thread)
{
    struct count_job *j = arg;
    atomic_fetch_add(&j->runs[t], 1);
    if (thread < 0 || thread >= j->threads)
        atomic_store(&j->bad_thread, 1);
}

static void test_every_task_once(void **state)
{
    static const int counts[] = {0, 1, 2, 3, 5, 7, 64, 100, 1001, MAX_TASKS};
    struct count_job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    for (int threads = 1; threads <= 5; threads++) {
        rn_pool *p = rn_pool_new(threads);
        assert_non_null(p);
        assert_int_equal(rn_pool_size(p), threads);
        j->threads = threads;
        /* many loops in a row: the generations and ranges of one loop must
         * not leak into the next */
        for (int rep = 0; rep < 20; rep++)
            for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
                int n = counts[c];
                for (int t = 0; t < n; t++)
                    atomic_store(&j->runs[t], 0);
                rn_pool_run(p, n, count_task, j);
                for (int t = 0; t < n; t++)
                    if (atomic_load(&j->runs[t]) != 1)
                        fail_msg("%d threads, %d tasks: task %d ran %d times", threads, n, t,
                                 atomic_load(&j->runs[t]));
            }
        assert_int_equal(atomic_load(&j->bad_thread), 0);
        rn_pool_free(p);
    }
    free(j);
}

struct hold_job {
    atomic_int done;
    int n, holder;
    atomic_int timed_out;
};

/* The first task of the holder's range waits until every other task has run:
 * only the other threads can run the rest of the holder's range. */
static void hold_task(void *arg, int t, int thread)
{
    struct hold_job *j = arg;
    if (t == 0) {
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (atomic_load(&j->done) < j->n - 1) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec > 10) {
                atomic_store(&j->timed_out, 1);
                break;
            }
        }
        return;
    }
    atomic_fetch_add(&j->done, 1);
}

static void test_held_thread_is_relieved(void **state)
{
    for (int threads = 2; threads <= 4; threads++) {
        rn_pool *p = rn_pool_new(threads);
        assert_non_null(p);
        struct hold_job j = {.n = 40 * threads};
        rn_pool_run(p, j.n, hold_task, &j);
        assert_int_equal(atomic_load(&j.timed_out), 0);
        assert_int_equal(atomic_load(&j.done), j.n - 1);
        rn_pool_free(p);
    }
}

struct owner_job {
    int owner[64];
    atomic_int started;
    int threads;
    time_t deadline; /* CLOCK_MONOTONIC seconds: the loop's wait ends then */
};

/* Every task waits for the others' first task to start, so no thread can
 * finish its range before the rest have begun theirs; each task records the
 * thread that ran it. */
static void owner_task(void *arg, int t, int thread)
{
    struct owner_job *j = arg;
    j->owner[t] = thread;
    if (t % (64 / j->threads) == 0)
        atomic_fetch_add(&j->started, 1);
    struct timespec now;
    while (atomic_load(&j->started) < j->threads) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > j->deadline)
            break;
    }
}

static void test_contiguous_ranges(void **state)
{
    for (int threads = 2; threads <= 4; threads *= 2) {
        rn_pool *p = rn_pool_new(threads);
        assert_non_null(p);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct owner_job j = {.threads = threads, .deadline = now.tv_sec + 5};
        rn_pool_run(p, 64, owner_task, &j);
        /* thread i starts at task 64 * i / threads: its first task is its own */
        for (int i = 0; i < threads; i++)
            assert_int_equal(j.owner[64 * i / threads], i);
        rn_pool_free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_once),
        cmocka_unit_test(test_held_thread_is_relieved),
        cmocka_unit_test(test_contiguous_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
