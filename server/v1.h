/* The /v1 API's handlers (v1.c, v1_inspect.c), for the route table, and
 * the state its image routes share. */
#ifndef RESNETD_V1_H
#define RESNETD_V1_H

#include "job.h"
#include "models.h"
#include "request.h"

/* An image route's state (request_state), made by begin(), freed with the
 * request. */
struct v1_state {
    struct model *model;  /* ?model=, referenced; released with the state */
    int topk;             /* ?topk=, 5 by default */
    struct infer_job job; /* the images and what to compute for them: ?layer=&pool=
                             (embed), ?lesions=&format=&class= (inspect), ?orient= */
};

/* POST /v1/classify, /v1/embed, /v1/inspect */
void v1_classify_begin(struct request *r);
void v1_embed_begin(struct request *r);
void v1_inspect_begin(struct request *r);
void v1_images_end(struct request *r);
void v1_inspect_end(struct request *r);
void v1_classify_finish(struct request *r);
void v1_embed_finish(struct request *r);
void v1_inspect_finish(struct request *r);

/* GET /v1/models */
void v1_models(struct request *r);

/* What every image route's begin() does: make the state, take the model,
 * read topk and orient. Returns the state, or NULL after a reply. */
struct v1_state *v1_begin(struct request *r);

/* Reply with the first failed image's error; returns 1 if there was one. */
int v1_reply_failure(struct request *r, const struct v1_state *st);

#endif
