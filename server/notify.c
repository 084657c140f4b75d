/* systemd notifications through libsystemd's sd_notify (see notify.h).
 *
 * sd_notify() itself is a no-op without NOTIFY_SOCKET, so this file only
 * formats the messages and runs the watchdog thread. The thread sleeps on a
 * condition variable (CLOCK_MONOTONIC) rather than in sleep(), so that
 * notify_watchdog_stop() returns at once instead of after up to half a
 * watchdog period. */
#include "notify.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-daemon.h>

int notify_ready(void)
{
    return sd_notify(0, "READY=1");
}

int notify_status(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* One assignment per line in the protocol: a newline would end STATUS=. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return sd_notifyf(0, "STATUS=%s", buf);
}

int notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec =
        (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
    return sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

int notify_stopping(void)
{
    return sd_notify(0, "STOPPING=1");
}

int notify_watchdog(void)
{
    return sd_notify(0, "WATCHDOG=1");
}

uint64_t notify_watchdog_usec(void)
{
    uint64_t usec = 0;
    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is us. */
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec;
}

/* ---- the watchdog thread ---- */

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled by notify_watchdog_stop() */
    int running, stop;
    uint64_t period_usec;
    int (*alive)(void *);
    void *arg;
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *watchdog_main(void *unused)
{
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&wd.lock);
    while (!wd.stop) {
        pthread_mutex_unlock(&wd.lock);
        if (wd.alive(wd.arg))
            notify_watchdog();
        pthread_mutex_lock(&wd.lock);

        uint64_t ns = (uint64_t)next.tv_nsec + wd.period_usec * 1000;
        next.tv_sec += (time_t)(ns / 1000000000);
        next.tv_nsec = (long)(ns % 1000000000);
        while (!wd.stop && pthread_cond_timedwait(&wd.cond, &wd.lock, &next) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&wd.lock);
    return NULL;
}

int notify_watchdog_start(int (*alive)(void *arg), void *arg)
{
    uint64_t usec = notify_watchdog_usec();
    if (!usec || wd.running)
        return 0;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&wd.cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        return -rc;
    wd.period_usec = usec / 2 > 0 ? usec / 2 : 1;
    wd.alive = alive;
    wd.arg = arg;
    wd.stop = 0;
    rc = pthread_create(&wd.thread, NULL, watchdog_main, NULL);
    if (rc) {
        pthread_cond_destroy(&wd.cond);
        return -rc;
    }
    wd.running = 1;
    return 0;
}

void notify_watchdog_stop(void)
{
    if (!wd.running)
        return;
    pthread_mutex_lock(&wd.lock);
    wd.stop = 1;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.thread, NULL);
    pthread_cond_destroy(&wd.cond);
    wd.running = 0;
}
