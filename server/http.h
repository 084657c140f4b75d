/* The HTTP transport on libmicrohttpd: it frames requests, caps their
 * bodies, refuses early what will be refused, suspends a connection while
 * its job is computed and resumes it, and logs and counts each request. It
 * knows no route: it is given a table of them (request.h; main.c hands it
 * routes.c's) and calls the handlers of the one a path matches. */
#ifndef RESNETD_HTTP_H
#define RESNETD_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

#include <microhttpd.h>

#include "batcher.h"
#include "config.h"

struct route_table; /* request.h */

struct server {
    const struct config *cfg;
    const struct route_table *routes; /* set by http_start */
    batcher *batcher;
    struct MHD_Daemon *daemon;
    atomic_int draining; /* SIGTERM seen: not ready, new requests get 503 */
    atomic_int active;   /* requests between their first callback and completion */
};

/* Start listening on cfg's address, serving the routes of table (which must
 * outlive the server). Returns 0, or -1 with a message. */
int http_start(struct server *s, const struct route_table *table, char *err, size_t errlen);
/* Stop accepting connections (SIGTERM); requests in flight go on. */
void http_quiesce(struct server *s);
/* Wait until no request is in flight, at most timeout_ms: 0 idle, -1 not. */
int http_wait_idle(struct server *s, int timeout_ms);
void http_stop(struct server *s);

#endif
