/* Prometheus metrics (text exposition format 0.0.4). Every update is a few
 * relaxed-enough atomic adds: no lock on the request path, and the cost is
 * noise next to the milliseconds of inference. A scrape reads the counters
 * one by one, so it is not one instant's snapshot; a histogram is read
 * buckets first and count last while observe() adds the count first, so
 * that no bucket ever shows more than its +Inf (the exposition's rule). */
#include "metrics.h"
#include "auth.h"
#include "models.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define MAX_BUCKETS 16
#define N_MODELS (CFG_MAX_MODELS + 1) /* index 0: no model (model="") */

/* One histogram's series: its buckets (per bucket, cumulated at render),
 * its count and its sum in units of 1/scale. */
struct series {
    atomic_ullong bucket[MAX_BUCKETS];
    atomic_ullong count, sum;
};

struct hist_def {
    const char *name, *help;
    int n;
    const double *le;
    double scale; /* sum stored as value * scale, an integer */
};

/* Seconds, from half a millisecond (a small body read) to 10 s. */
static const double le_seconds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_LE_SECONDS (int)(sizeof le_seconds / sizeof le_seconds[0])
static const double le_batch[] = {1, 2, 3, 4, 6, 8, 16, 32, 64, 128, 256};

static const struct hist_def phase_defs[MP_COUNT] = {
    [MP_READ] = {"resnetd_request_read_seconds",
                 "Time from a request's first byte to its headers and body read and parsed "
                 "by its route.", N_LE_SECONDS, le_seconds, 1e9},
    [MP_PREPROCESS] = {"resnetd_preprocess_seconds",
                       "Time to decode and preprocess one image (or copy one tensor) into "
                       "its batch.", N_LE_SECONDS, le_seconds, 1e9},
    [MP_QUEUE] = {"resnetd_queue_duration_seconds",
                  "Time an image waited in the queue for a worker.", N_LE_SECONDS, le_seconds,
                  1e9},
    [MP_INFER_IMAGE] = {"resnetd_inference_image_seconds",
                        "Inference time of an image's batch divided by the images in it.",
                        N_LE_SECONDS, le_seconds, 1e9},
    [MP_REPLY] = {"resnetd_reply_seconds",
                  "Time from a request's results (or its decided reply) to the reply sent.",
                  N_LE_SECONDS, le_seconds, 1e9},
    [MP_TOTAL] = {"resnetd_request_duration_seconds",
                  "Time from the first byte of a request to its reply sent.", N_LE_SECONDS,
                  le_seconds, 1e9},
};
static const struct hist_def infer_def = {
    "resnetd_inference_duration_seconds",
    "Time a worker spent in inference on one batch (decoding is resnetd_preprocess_seconds).",
    N_LE_SECONDS, le_seconds, 1e9};
static const struct hist_def batch_def = {"resnetd_batch_size", "Images per batch run.",
                                          (int)(sizeof le_batch / sizeof le_batch[0]), le_batch,
                                          1};

static struct series phases[MP_COUNT][N_MODELS][MR_COUNT];
static struct series infer_batches[N_MODELS];
static struct series batch_sizes;

static const char *route_names[MR_COUNT] = {
    "/v1/classify", "/v1/embed", "/v1/models", "/v2", "/v2/health", "/v2/models/{m}",
    "/v2/models/{m}/infer", "/metrics", "/openapi.json", "/v1/inspect", "/", "other",
};

static const int codes[] = {200, 400, 401, 403, 404, 405, 411, 413, 415, 422, 429, 499, 500,
                            503, 504};
#define N_CODES (int)(sizeof codes / sizeof codes[0])
static atomic_ullong requests[MR_COUNT][N_CODES + 1]; /* last: other codes */

static const char *reject_reasons[] = {
    "queue_full", "too_large", "unsupported_media_type", "bad_request", "not_found",
    "method_not_allowed", "timeout", "draining", "out_of_memory", "client_gone",
    "unauthorized", "forbidden", "too_many_connections", "tls_handshake", "other",
};
#define N_REASONS (int)(sizeof reject_reasons / sizeof reject_reasons[0])
static atomic_ullong rejected[N_REASONS];

static atomic_ullong images_total;
static atomic_ullong batches_total[2]; /* on a worker's threads, on lent threads */
static atomic_int queue_depth, queue_capacity, in_flight;

/* Names are only added (a model gone keeps its series, as counters must):
 * one is written before the count that shows it is raised. */
static char model_names[N_MODELS][64]; /* [0] = "": no model */
static atomic_int n_model_names = 1;

void metrics_init(const char *const *names, int n)
{
    atomic_store(&n_model_names, 1);
    for (int i = 0; i < n; i++)
        metrics_add_model(names[i]);
}

void metrics_add_model(const char *name)
{
    int n = atomic_load(&n_model_names);
    if (n == N_MODELS || metrics_model_index(name) > 0)
        return;
    snprintf(model_names[n], sizeof model_names[0], "%s", name);
    atomic_store(&n_model_names, n + 1);
}

int metrics_model_index(const char *name)
{
    if (!name || !*name)
        return 0;
    for (int i = 1; i < n_model_names; i++)
        if (strcmp(model_names[i], name) == 0)
            return i;
    return 0;
}

const char *metrics_route_name(int route)
{
    return route >= 0 && route < MR_COUNT ? route_names[route] : route_names[MR_OTHER];
}

static void observe(struct series *s, const struct hist_def *d, double v)
{
    if (!(v >= 0))
        v = 0; /* a clock step or NaN must not wrap the sum */
    atomic_fetch_add(&s->count, 1); /* first: see the file's comment */
    for (int i = 0; i < d->n; i++)
        if (v <= d->le[i]) {
            atomic_fetch_add(&s->bucket[i], 1);
            break;
        }
    atomic_fetch_add(&s->sum, (unsigned long long)(v * d->scale + 0.5));
}

void metrics_request(int route, int http_status)
{
    if (route < 0 || route >= MR_COUNT)
        route = MR_OTHER;
    int c = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (codes[i] == http_status)
            c = i;
    atomic_fetch_add(&requests[route][c], 1);
}

void metrics_phase(enum metric_phase p, int model, int route, double seconds)
{
    if (p < 0 || p >= MP_COUNT)
        return;
    if (model < 0 || model >= n_model_names)
        model = 0;
    if (route < 0 || route >= MR_COUNT)
        route = MR_OTHER;
    observe(&phases[p][model][route], &phase_defs[p], seconds);
}

void metrics_batch(const char *model, int size, double seconds, int lone)
{
    atomic_fetch_add(&batches_total[lone ? 1 : 0], 1);
    atomic_fetch_add(&images_total, (unsigned long long)(size > 0 ? size : 0));
    observe(&batch_sizes, &batch_def, size);
    observe(&infer_batches[metrics_model_index(model)], &infer_def, seconds);
}

void metrics_queue_depth(int images)
{
    atomic_store(&queue_depth, images);
}

void metrics_queue_capacity(int images)
{
    atomic_store(&queue_capacity, images);
}

void metrics_in_flight(int delta)
{
    atomic_fetch_add(&in_flight, delta);
}

void metrics_rejected(const char *reason)
{
    int i = 0;
    while (i < N_REASONS - 1 && strcmp(reject_reasons[i], reason ? reason : "") != 0)
        i++;
    atomic_fetch_add(&rejected[i], 1);
}

/* ---- API key refusals (--api-keys) ---- */

static atomic_ullong auth_failures[2][AUTH_N_GROUPS]; /* [missing][group] */

void metrics_auth_failure(int missing, int g)
{
    if (g < 0 || g >= AUTH_N_GROUPS)
        g = AUTH_OPEN;
    atomic_fetch_add(&auth_failures[missing ? 1 : 0][g], 1);
}

/* ---- rendering ---- */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        if (b->oom)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)(n > 0 ? n : 0);
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void put_tls(struct buf *b);

static void put_head(struct buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One series of histogram d; labels: "" or `model="m",route="r"` and so on. */
static void put_series(struct buf *b, const struct hist_def *d, const char *labels,
                       struct series *s)
{
    unsigned long long cum = 0, bucket[MAX_BUCKETS];
    for (int i = 0; i < d->n; i++)
        bucket[i] = atomic_load(&s->bucket[i]);
    unsigned long long count = atomic_load(&s->count), sum = atomic_load(&s->sum);
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < d->n; i++) {
        cum += bucket[i];
        put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", d->name, labels, sep, d->le[i], cum);
    }
    put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", d->name, labels, sep, count);
    int digits = d->scale > 1 ? 6 : 0;
    if (labels[0])
        put(b, "%s_sum{%s} %.*f\n%s_count{%s} %llu\n", d->name, labels, digits,
            (double)sum / d->scale, d->name, labels, count);
    else
        put(b, "%s_sum %.*f\n%s_count %llu\n", d->name, digits, (double)sum / d->scale, d->name,
            count);
}

/* A phase histogram: the series of every (model, route) seen so far. */
static void put_phase(struct buf *b, enum metric_phase p)
{
    const struct hist_def *d = &phase_defs[p];
    put_head(b, d->name, "histogram", d->help);
    for (int m = 0; m < n_model_names; m++)
        for (int r = 0; r < MR_COUNT; r++) {
            struct series *s = &phases[p][m][r];
            if (!atomic_load(&s->count))
                continue;
            char labels[160];
            snprintf(labels, sizeof labels, "model=\"%.63s\",route=\"%.60s\"", model_names[m],
                     route_names[r]);
            put_series(b, d, labels, s);
        }
}

static void put_requests(struct buf *b)
{
    put_head(b, "resnetd_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (int r = 0; r < MR_COUNT; r++) {
        for (int c = 0; c < N_CODES; c++) {
            unsigned long long v = atomic_load(&requests[r][c]);
            if (v)
                put(b, "resnetd_requests_total{route=\"%s\",code=\"%d\"} %llu\n", route_names[r],
                    codes[c], v);
        }
        unsigned long long v = atomic_load(&requests[r][N_CODES]);
        if (v)
            put(b, "resnetd_requests_total{route=\"%s\",code=\"other\"} %llu\n", route_names[r],
                v);
    }
}

char *metrics_render(size_t *len)
{
    struct buf b = {malloc(16384), 0, 16384, 0};
    if (!b.p)
        return NULL;
    put_requests(&b);
    for (int p = 0; p < MP_COUNT; p++)
        put_phase(&b, p);
    put_head(&b, infer_def.name, "histogram", infer_def.help);
    for (int m = 0; m < n_model_names; m++) {
        if (!atomic_load(&infer_batches[m].count))
            continue;
        char labels[96];
        snprintf(labels, sizeof labels, "model=\"%.63s\"", model_names[m]);
        put_series(&b, &infer_def, labels, &infer_batches[m]);
    }
    put_head(&b, batch_def.name, "histogram", batch_def.help);
    put_series(&b, &batch_def, "", &batch_sizes);
    put_head(&b, "resnetd_rejected_total", "counter",
             "Requests refused, by reason (the status is in resnetd_requests_total).");
    for (int i = 0; i < N_REASONS; i++)
        put(&b, "resnetd_rejected_total{reason=\"%s\"} %llu\n", reject_reasons[i],
            atomic_load(&rejected[i]));
    put_head(&b, "resnetd_auth_failures_total", "counter",
             "Requests refused for their API key: none sent (missing, 401) or not one of the "
             "route's group (invalid, 403).");
    for (int m = 1; m >= 0; m--)
        for (int g = AUTH_OPEN + 1; g < AUTH_N_GROUPS; g++)
            put(&b, "resnetd_auth_failures_total{reason=\"%s\",group=\"%s\"} %llu\n",
                m ? "missing" : "invalid", auth_group_name(g), atomic_load(&auth_failures[m][g]));
    put_head(&b, "resnetd_requests_in_flight", "gauge",
             "Requests between their first byte and their reply sent (or their client gone).");
    put(&b, "resnetd_requests_in_flight %d\n", atomic_load(&in_flight));
    put_head(&b, "resnetd_queue_depth", "gauge", "Images waiting for a worker.");
    put(&b, "resnetd_queue_depth %d\n", atomic_load(&queue_depth));
    put_head(&b, "resnetd_queue_capacity", "gauge",
             "Images the queue holds at most (--max-queue): past it, requests get 503.");
    put(&b, "resnetd_queue_capacity %d\n", atomic_load(&queue_capacity));
    put_head(&b, "resnetd_images_total", "counter", "Images classified or embedded.");
    put(&b, "resnetd_images_total %llu\n", atomic_load(&images_total));
    put_head(&b, "resnetd_batches_total", "counter",
             "Batches run, on their worker's threads or, as the only work, on the lent "
             "threads of every worker (--lone-threads).");
    put(&b, "resnetd_batches_total{threads=\"worker\"} %llu\n"
            "resnetd_batches_total{threads=\"lone\"} %llu\n",
        atomic_load(&batches_total[0]), atomic_load(&batches_total[1]));
    put_tls(&b);
    put_head(&b, "resnetd_model_info", "gauge",
             "The models served: the kernels (isa) and the precision each runs in.");
    struct model *m;
    for (int i = 0; (m = models_acquire_index(i)); i++) {
        put(&b, "resnetd_model_info{model=\"%s\",arch=\"%s\",isa=\"%s\",precision=\"%s\"} 1\n",
            m->name, m->info->arch, rn_isa_name(m->info->isa),
            models_precision_name(m->info->precision));
        model_release(m);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- TLS (server/tls.c): kept apart, rendered only when TLS is on ---- */

static atomic_ullong tls_handshake_failures;
static _Atomic double tls_cert_not_after; /* 0: TLS off */

void metrics_tls_handshake_failure(void)
{
    atomic_fetch_add(&tls_handshake_failures, 1);
}

void metrics_tls_cert(double not_after)
{
    atomic_store(&tls_cert_not_after, not_after);
}

static void put_tls(struct buf *b)
{
    double not_after = atomic_load(&tls_cert_not_after);
    if (not_after <= 0)
        return;
    put_head(b, "resnetd_tls_handshake_failures_total", "counter",
             "TLS connections closed before their handshake completed (plain HTTP, an old "
             "protocol, no common cipher, a client that hung up).");
    put(b, "resnetd_tls_handshake_failures_total %llu\n", atomic_load(&tls_handshake_failures));
    put_head(b, "resnetd_tls_cert_expiry_timestamp_seconds", "gauge",
             "notAfter of the certificate served, in seconds since the epoch.");
    put(b, "resnetd_tls_cert_expiry_timestamp_seconds %.0f\n", not_after);
}
