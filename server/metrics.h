/* Prometheus metrics: counters, gauges and histograms with fixed buckets,
 * updated from any thread, rendered as the text exposition format. */
#ifndef RESNETD_METRICS_H
#define RESNETD_METRICS_H

#include <stddef.h>

/* Route labels of resnetd_requests_total. */
enum metric_route {
    MR_CLASSIFY, MR_EMBED, MR_MODELS, MR_V2_META, MR_V2_HEALTH, MR_V2_MODEL, MR_V2_INFER,
    MR_METRICS, MR_OPENAPI, MR_INSPECT, MR_PAGE, MR_OTHER, MR_COUNT
};

void metrics_request(int route, int http_status, double seconds);
void metrics_queue_wait(double seconds);       /* per image */
void metrics_batch(int size, double seconds, int lone); /* per batch run; lone: on lent threads */
void metrics_images(int n);                    /* images computed */
void metrics_queue_depth(int images);          /* current depth */
/* A request refused for its API key: missing (401) or not one of group's
 * (403); group is an enum auth_group (auth.h). */
void metrics_auth_failure(int missing, int group);

/* The metrics page; the caller frees it. NULL when out of memory. */
char *metrics_render(size_t *len);

#endif
