/* Logging to stderr (journald): one access line per request and messages for
 * people, as text or JSON (--log-format). */
#ifndef RESNETD_LOG_H
#define RESNETD_LOG_H

#include <stddef.h>

/* One request, as its access line shows it. Times in milliseconds; a phase
 * a request did not go through is 0. */
struct access_entry {
    const char *request_id;      /* X-Request-Id as echoed in the reply */
    const char *request_id_note; /* why the client's was replaced; NULL when not */
    const char *trace_id, *parent_id; /* of a valid traceparent; NULL without one */
    const char *trace_note;      /* why a traceparent sent was ignored; NULL when not */
    const char *method, *route, *path, *client; /* route: its template ("/v2/models/{m}") */
    int status;
    size_t bytes_out;
    int images;
    double read_ms;       /* first byte to the request read and parsed */
    double preprocess_ms; /* its images' decode and preprocess, summed */
    double queue_ms;      /* its images' longest wait for a worker */
    double inference_ms;  /* its images' longest batch inference */
    double reply_ms;      /* results in (or reply decided) to the reply sent */
    double total_ms;
    const char *model;    /* NULL when none */
    const char *error;    /* the reason of a failure, NULL on success */
};

void log_init(int format); /* enum log_format; call before threads start */
void log_access(const struct access_entry *e);
/* A message for people: level is "info", "warn" or "error". */
void log_msg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
