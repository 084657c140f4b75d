/* Prometheus metrics: counters, gauges and histograms with fixed buckets,
 * updated from any thread with atomics, rendered as the text exposition
 * format. Labels come from fixed sets only: the configured models
 * (metrics_init), the route table's metric names, the refusal reasons. */
#ifndef RESNETD_METRICS_H
#define RESNETD_METRICS_H

#include <stddef.h>

/* Route labels of resnetd_requests_total and of the per-phase histograms. */
enum metric_route {
    MR_CLASSIFY, MR_EMBED, MR_MODELS, MR_V2_META, MR_V2_HEALTH, MR_V2_MODEL, MR_V2_INFER,
    MR_METRICS, MR_OPENAPI, MR_INSPECT, MR_PAGE, MR_OTHER, MR_COUNT
};

/* The phases of a request, each a histogram labelled {model, route}:
 * per request: MP_READ (first byte to the request parsed by its route),
 * MP_REPLY (results in, or the reply decided, to the reply sent), MP_TOTAL;
 * per image: MP_PREPROCESS (decode and preprocess), MP_QUEUE (queued until a
 * worker took it), MP_INFER_IMAGE (its batch's inference over the batch's
 * images). */
enum metric_phase { MP_READ, MP_PREPROCESS, MP_QUEUE, MP_INFER_IMAGE, MP_REPLY, MP_TOTAL,
                    MP_COUNT };

/* Name the models (the model label's values) before any thread starts:
 * names[0..n), the configured set, which a reload keeps. */
void metrics_init(const char *const *names, int n);
/* The model label index of name: 1..n, or 0 (model="") for none or unknown. */
int metrics_model_index(const char *name);
/* Give model name its series too (a model found by a --model-dir scan), if
 * it has none yet and there is room; from the main thread only. */
void metrics_add_model(const char *name);
/* The route label of route (enum metric_route): its template, "/v1/classify",
 * "/v2/models/{m}/infer", ... ("other" when out of range). */
const char *metrics_route_name(int route);

/* A request answered: resnetd_requests_total{route,code}. */
void metrics_request(int route, int http_status);
void metrics_phase(enum metric_phase p, int model, int route, double seconds);
/* One batch run for model (its name): resnetd_inference_duration_seconds
 * {model} (inference only), resnetd_batch_size, resnetd_batches_total
 * {threads} (lone: on lent threads) and resnetd_images_total. */
void metrics_batch(const char *model, int size, double seconds, int lone);
void metrics_queue_depth(int images);          /* current depth */
void metrics_queue_capacity(int images);       /* --max-queue, once at start */
void metrics_in_flight(int delta);             /* +1 when a request starts, -1 when freed */

/* A request refused, by reason: resnetd_rejected_total{reason}. The reasons
 * are a fixed set: queue_full, too_large, unsupported_media_type,
 * bad_request, not_found, method_not_allowed, timeout, draining,
 * out_of_memory, client_gone, unauthorized, forbidden, too_many_connections,
 * tls_handshake; any other string counts as "other". reply_error counts the
 * refusals it answers (srv_err_reason, errors.c); code that refuses another
 * way (a connection turned away before any request) calls this itself. */
void metrics_rejected(const char *reason);
/* A request refused for its API key: missing (401) or not one of group's
 * (403); group is an enum auth_group (auth.h). */
void metrics_auth_failure(int missing, int group);

/* The metrics page; the caller frees it. NULL when out of memory. */
char *metrics_render(size_t *len);

/* TLS (server/tls.c): a connection closed mid-handshake; the certificate
 * served (its notAfter, 0: TLS off). */
void metrics_tls_handshake_failure(void);
void metrics_tls_cert(double not_after);

#endif
