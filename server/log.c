/* stderr logging. Each line is formatted into a buffer and written with one
 * write(2) so lines from different threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"

static int fmt_json;

void log_init(int format)
{
    fmt_json = format == LOG_JSON;
}

static void timestamp(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void emit(const char *line, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, n);
        if (w <= 0)
            return;
        line += w;
        n -= (size_t)w;
    }
}

static void emit_json(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    if (s) {
        size_t n = strlen(s);
        emit(s, n);
        emit("\n", 1);
    }
    cJSON_free(s);
    cJSON_Delete(o);
}

/* A time in ms with microseconds, as a JSON number. */
static void add_ms(cJSON *o, const char *key, double ms)
{
    cJSON_AddNumberToObject(o, key, (double)(long long)(ms * 1000) / 1000.0);
}

static void add_opt(cJSON *o, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, key, v);
}

static void access_json(const struct access_entry *e, const char *ts)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "level", "info");
    cJSON_AddStringToObject(o, "request_id", e->request_id ? e->request_id : "");
    add_opt(o, "request_id_note", e->request_id_note);
    add_opt(o, "trace_id", e->trace_id);
    add_opt(o, "parent_id", e->parent_id);
    add_opt(o, "trace_note", e->trace_note);
    cJSON_AddStringToObject(o, "client", e->client ? e->client : "-");
    cJSON_AddStringToObject(o, "method", e->method);
    cJSON_AddStringToObject(o, "route", e->route ? e->route : "other");
    cJSON_AddStringToObject(o, "path", e->path);
    add_opt(o, "model", e->model);
    cJSON_AddNumberToObject(o, "status", e->status);
    cJSON_AddNumberToObject(o, "bytes", (double)e->bytes_out);
    cJSON_AddNumberToObject(o, "images", e->images);
    add_ms(o, "read_ms", e->read_ms);
    add_ms(o, "preprocess_ms", e->preprocess_ms);
    add_ms(o, "queue_ms", e->queue_ms);
    add_ms(o, "inference_ms", e->inference_ms);
    add_ms(o, "reply_ms", e->reply_ms);
    add_ms(o, "total_ms", e->total_ms);
    add_opt(o, "error", e->error);
    emit_json(o);
}

void log_access(const struct access_entry *e)
{
    char ts[40];
    timestamp(ts, sizeof ts);
    if (fmt_json) {
        access_json(e, ts);
        return;
    }
    /* The notes are ours (they quote nothing a client sent); the path and
     * the error may hold what a client sent, as the text format always did. */
    char line[1400];
    int n = snprintf(line, sizeof line,
                     "%s %s \"%s %s\" %d %zuB id=%s images=%d read_ms=%.1f preprocess_ms=%.1f "
                     "queue_ms=%.1f inference_ms=%.1f reply_ms=%.1f total_ms=%.1f"
                     "%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s\n",
                     ts, e->client ? e->client : "-", e->method, e->path, e->status,
                     e->bytes_out, e->request_id ? e->request_id : "-", e->images, e->read_ms,
                     e->preprocess_ms, e->queue_ms, e->inference_ms, e->reply_ms, e->total_ms,
                     e->model ? " model=" : "", e->model ? e->model : "",
                     e->trace_id ? " trace=" : "", e->trace_id ? e->trace_id : "",
                     e->trace_id ? "/" : "", e->parent_id ? e->parent_id : "",
                     e->error ? " error=\"" : "", e->error ? e->error : "",
                     e->error ? "\"" : "",
                     e->request_id_note ? " note=\"" : "",
                     e->request_id_note ? e->request_id_note : "",
                     e->request_id_note ? "\"" : "",
                     e->trace_note ? " note=\"" : "", e->trace_note ? e->trace_note : "",
                     e->trace_note ? "\"" : "");
    if (n >= (int)sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    emit(line, (size_t)n);
}

void log_msg(const char *level, const char *fmt, ...)
{
    char msg[1024], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    if (fmt_json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "time", ts);
        cJSON_AddStringToObject(o, "level", level);
        cJSON_AddStringToObject(o, "msg", msg);
        emit_json(o);
        return;
    }
    char line[1200];
    int n = snprintf(line, sizeof line, "%s %s: %s\n", ts, level, msg);
    if (n >= (int)sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    emit(line, (size_t)n);
}
