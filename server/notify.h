/* systemd's service notification protocol (sd_notify): readiness, status,
 * reload, stop and watchdog messages to the service manager. Every function
 * is a no-op returning 0 when NOTIFY_SOCKET is unset (not run by systemd, or
 * not Type=notify), so callers never need to check. */
#ifndef RESNETD_NOTIFY_H
#define RESNETD_NOTIFY_H

#include <stdint.h>

/* Each returns 1 when the message was sent, 0 when there is no service
 * manager to tell, or a negative errno when sending failed (nothing to do
 * about it but log: the service keeps running). */

/* "READY=1": the models are loaded and warmed up, requests can come. Also
 * ends a reload started with notify_reloading(). */
int notify_ready(void);

/* "STATUS=...": one line for `systemctl status`. Newlines become spaces. */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "RELOADING=1" with "MONOTONIC_USEC=" now (CLOCK_MONOTONIC), as systemd
 * expects on SIGHUP; follow with notify_ready() when the reload is over,
 * whether it succeeded or not. */
int notify_reloading(void);

/* "STOPPING=1": shutting down (SIGTERM), finishing the queued work. */
int notify_stopping(void);

/* "WATCHDOG=1": one keep-alive ping. */
int notify_watchdog(void);

/* The watchdog timeout systemd set for this process (WatchdogSec=, passed as
 * WATCHDOG_USEC and WATCHDOG_PID), in microseconds; 0 when it is off. Ping at
 * least twice per period. */
uint64_t notify_watchdog_usec(void);

/* Start a thread that, every half watchdog period, calls alive(arg) and sends
 * WATCHDOG=1 only when it returns non-zero. When alive() keeps returning 0
 * (workers stuck), the pings stop and systemd kills and restarts the service
 * after WatchdogSec=. alive() runs on that thread: it must be thread-safe and
 * quick. Starts nothing when the watchdog is off. Returns 0, or a negative
 * errno when the thread could not be started. */
int notify_watchdog_start(int (*alive)(void *arg), void *arg);

/* Stop and join the watchdog thread; a no-op when none runs. */
void notify_watchdog_stop(void);

#endif
