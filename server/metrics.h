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
void metrics_tls_handshake_failure(void);   /* a TLS connection closed mid-handshake */
void metrics_tls_cert(double not_after);      /* the certificate served (0: TLS off) */

/* The metrics page; the caller frees it. NULL when out of memory. */
char *metrics_render(size_t *len);

#endif
