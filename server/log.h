/* Logging to stderr (journald): one access line per request and messages for
 * people, as text or JSON (--log-format). */
#ifndef RESNETD_LOG_H
#define RESNETD_LOG_H

#include <stddef.h>

struct access_entry {
    const char *method, *path, *client;
    int status;
    size_t bytes_out;
    int images;
    double queue_ms, compute_ms, total_ms;
    const char *model;  /* NULL when none */
    const char *error;  /* the reason of a failure, NULL on success */
};

void log_init(int format); /* enum log_format; call before threads start */
void log_access(const struct access_entry *e);
/* A message for people: level is "info", "warn" or "error". */
void log_msg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
