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

void log_access(const struct access_entry *e)
{
    char ts[40];
    timestamp(ts, sizeof ts);
    if (fmt_json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "time", ts);
        cJSON_AddStringToObject(o, "level", "info");
        cJSON_AddStringToObject(o, "client", e->client ? e->client : "-");
        cJSON_AddStringToObject(o, "method", e->method);
        cJSON_AddStringToObject(o, "path", e->path);
        cJSON_AddNumberToObject(o, "status", e->status);
        cJSON_AddNumberToObject(o, "bytes", (double)e->bytes_out);
        cJSON_AddNumberToObject(o, "images", e->images);
        cJSON_AddNumberToObject(o, "queue_ms", (int)(e->queue_ms * 1000) / 1000.0);
        cJSON_AddNumberToObject(o, "compute_ms", (int)(e->compute_ms * 1000) / 1000.0);
        cJSON_AddNumberToObject(o, "total_ms", (int)(e->total_ms * 1000) / 1000.0);
        if (e->model)
            cJSON_AddStringToObject(o, "model", e->model);
        if (e->error)
            cJSON_AddStringToObject(o, "error", e->error);
        emit_json(o);
        return;
    }
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "%s %s \"%s %s\" %d %zuB images=%d queue_ms=%.1f compute_ms=%.1f "
                     "total_ms=%.1f%s%s%s%s%s\n",
                     ts, e->client ? e->client : "-", e->method, e->path, e->status,
                     e->bytes_out, e->images, e->queue_ms, e->compute_ms, e->total_ms,
                     e->model ? " model=" : "", e->model ? e->model : "",
                     e->error ? " error=\"" : "", e->error ? e->error : "",
                     e->error ? "\"" : "");
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
