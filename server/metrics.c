/* Prometheus metrics (text exposition format 0.0.4). One mutex guards them
 * all: each request takes it a handful of times, which is noise next to the
 * milliseconds of inference, and rendering sees a consistent snapshot. */
#include "metrics.h"
#include "auth.h"
#include "models.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 16

struct histogram {
    const char *name, *help;
    int n;
    double le[MAX_BUCKETS];
    unsigned long long count[MAX_BUCKETS]; /* per bucket, cumulated at render */
    unsigned long long total;
    double sum;
};

static const char *route_names[MR_COUNT] = {
    "/v1/classify", "/v1/embed", "/v1/models", "/v2", "/v2/health", "/v2/models/{m}",
    "/v2/models/{m}/infer", "/metrics", "/openapi.json", "/v1/inspect", "/", "other",
};

static const int codes[] = {200, 400, 401, 403, 404, 405, 411, 413, 415, 499, 500, 503, 504};
#define N_CODES (int)(sizeof codes / sizeof codes[0])

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long requests[MR_COUNT][N_CODES + 1]; /* last: other codes */
static unsigned long long images_total;
static unsigned long long batches_total[2]; /* on a worker's threads, on lent threads */
static int queue_depth;

#define LAT_BUCKETS {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
static struct histogram h_request = {"resnetd_request_duration_seconds",
                                     "Time from the first byte of a request to its reply.",
                                     11, LAT_BUCKETS, {0}, 0, 0};
static struct histogram h_queue = {"resnetd_queue_duration_seconds",
                                   "Time an image waited in the queue for a worker.", 13,
                                   {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5, 1, 2.5, 5},
                                   {0}, 0, 0};
static struct histogram h_infer = {"resnetd_inference_duration_seconds",
                                   "Time a worker spent on one batch (decode and inference).",
                                   11, LAT_BUCKETS, {0}, 0, 0};
static struct histogram h_batch = {"resnetd_batch_size", "Images per batch run.", 9,
                                   {1, 2, 3, 4, 6, 8, 16, 32, 64}, {0}, 0, 0};

static void observe(struct histogram *h, double v)
{
    for (int i = 0; i < h->n; i++)
        if (v <= h->le[i]) {
            h->count[i]++;
            break;
        }
    h->total++;
    h->sum += v;
}

void metrics_request(int route, int http_status, double seconds)
{
    if (route < 0 || route >= MR_COUNT)
        route = MR_OTHER;
    int c = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (codes[i] == http_status)
            c = i;
    pthread_mutex_lock(&lock);
    requests[route][c]++;
    observe(&h_request, seconds);
    pthread_mutex_unlock(&lock);
}

void metrics_queue_wait(double seconds)
{
    pthread_mutex_lock(&lock);
    observe(&h_queue, seconds);
    pthread_mutex_unlock(&lock);
}

void metrics_batch(int size, double seconds, int lone)
{
    pthread_mutex_lock(&lock);
    batches_total[lone ? 1 : 0]++;
    observe(&h_batch, size);
    observe(&h_infer, seconds);
    pthread_mutex_unlock(&lock);
}

void metrics_images(int n)
{
    pthread_mutex_lock(&lock);
    images_total += (unsigned long long)n;
    pthread_mutex_unlock(&lock);
}

void metrics_queue_depth(int images)
{
    pthread_mutex_lock(&lock);
    queue_depth = images;
    pthread_mutex_unlock(&lock);
}

/* ---- API key refusals (--api-keys) ---- */

static unsigned long long auth_failures[2][AUTH_N_GROUPS]; /* [missing][group] */

void metrics_auth_failure(int missing, int g)
{
    if (g < 0 || g >= AUTH_N_GROUPS)
        g = AUTH_OPEN;
    pthread_mutex_lock(&lock);
    auth_failures[missing ? 1 : 0][g]++;
    pthread_mutex_unlock(&lock);
}

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

static void put_histogram(struct buf *b, const struct histogram *h)
{
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    unsigned long long cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->count[i];
        put(b, "%s_bucket{le=\"%g\"} %llu\n", h->name, h->le[i], cum);
    }
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", h->name, h->total,
        h->name, h->sum, h->name, h->total);
}

char *metrics_render(size_t *len)
{
    struct buf b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return NULL;
    pthread_mutex_lock(&lock);
    put(&b, "# HELP resnetd_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE resnetd_requests_total counter\n");
    for (int r = 0; r < MR_COUNT; r++)
        for (int c = 0; c < N_CODES; c++)
            if (requests[r][c])
                put(&b, "resnetd_requests_total{route=\"%s\",code=\"%d\"} %llu\n", route_names[r],
                    codes[c], requests[r][c]);
    for (int r = 0; r < MR_COUNT; r++)
        if (requests[r][N_CODES])
            put(&b, "resnetd_requests_total{route=\"%s\",code=\"other\"} %llu\n", route_names[r],
                requests[r][N_CODES]);
    put_histogram(&b, &h_request);
    put_histogram(&b, &h_queue);
    put_histogram(&b, &h_infer);
    put_histogram(&b, &h_batch);
    put(&b, "# HELP resnetd_queue_depth Images waiting for a worker.\n"
            "# TYPE resnetd_queue_depth gauge\nresnetd_queue_depth %d\n", queue_depth);
    put(&b, "# HELP resnetd_images_total Images classified or embedded.\n"
            "# TYPE resnetd_images_total counter\nresnetd_images_total %llu\n", images_total);
    put(&b, "# HELP resnetd_auth_failures_total Requests refused for their API key: none "
            "sent (missing, 401) or not one of the route's group (invalid, 403).\n"
            "# TYPE resnetd_auth_failures_total counter\n");
    for (int m = 1; m >= 0; m--)
        for (int g = AUTH_OPEN + 1; g < AUTH_N_GROUPS; g++)
            put(&b, "resnetd_auth_failures_total{reason=\"%s\",group=\"%s\"} %llu\n",
                m ? "missing" : "invalid", auth_group_name(g), auth_failures[m][g]);
    put(&b, "# HELP resnetd_batches_total Batches run, on their worker's threads or, as the "
            "only work, on the lent threads of every worker (--lone-threads).\n"
            "# TYPE resnetd_batches_total counter\n"
            "resnetd_batches_total{threads=\"worker\"} %llu\n"
            "resnetd_batches_total{threads=\"lone\"} %llu\n", batches_total[0], batches_total[1]);
    pthread_mutex_unlock(&lock);
    put(&b, "# HELP resnetd_model_info The models served: the kernels (isa) and the precision "
            "each runs in.\n# TYPE resnetd_model_info gauge\n");
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
