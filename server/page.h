/* The documents resnetd serves by GET, for the route table: the inspection
 * page's files (server/ui/, compiled in), the OpenAPI description and the
 * Prometheus metrics. */
#ifndef RESNETD_PAGE_H
#define RESNETD_PAGE_H

#include "request.h"

/* GET /, /ui/app.js, /ui/style.css, /ui/icon.svg */
void page_asset(struct request *r);
/* GET /openapi.json */
void openapi_page(struct request *r);
/* GET /metrics */
void metrics_page(struct request *r);

#endif
