/* The KServe v2 API's handlers (kserve.c), for the route table: server and
 * model metadata, health, and inference. The request body's reader is
 * kserve_request.h. */
#ifndef RESNETD_KSERVE_H
#define RESNETD_KSERVE_H

#include "request.h"

/* GET /v2, /v2/health/live, /v2/health/ready */
void v2_server_meta(struct request *r);
void v2_live(struct request *r);
void v2_ready(struct request *r);

/* GET /v2/models/NAME[/versions/V][/ready] */
void v2_model_begin(struct request *r);
void v2_model_meta(struct request *r);
void v2_model_ready(struct request *r);

/* POST /v2/models/NAME[/versions/V]/infer */
void v2_infer_begin(struct request *r);
void v2_infer_end(struct request *r);
void v2_infer_finish(struct request *r);

#endif
