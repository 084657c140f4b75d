/* The routes resnetd serves: the table main.c hands to the transport, and
 * what the routes of more than one API share (the model a request names, the
 * query values they all read, handing a job to the batcher). */
#ifndef RESNETD_ROUTES_H
#define RESNETD_ROUTES_H

#include <stddef.h>

#include "job.h"
#include "models.h"
#include "request.h"

/* Every route of the daemon, for http_start (main.c). */
extern const struct route_table routes_table;

/* The route serving path url (no query), or NULL; a model named in a
 * /v2/models/NAME path goes to name (namelen bytes; "" otherwise). */
const struct route *routes_match(const char *url, char *name, size_t namelen);

/* /v2/models/NAME[/versions/V][/ready|/infer]: which of the three, NAME
 * into name (namelen bytes); 0 when url is none of them or NAME does not
 * fit. */
enum { ROUTES_V2_MODEL = 1, ROUTES_V2_READY, ROUTES_V2_INFER };
int routes_v2_path(const char *url, char *name, size_t namelen);

/* The V of /v2/models/NAME/versions/V/... into ver (verlen bytes, cut to
 * fit): 1, or 0 when url names no version. */
int routes_v2_version(const char *url, char *ver, size_t verlen);

/* The topk query value: decimal digits of a number of at least 1 into *k,
 * those past INT_MAX read as INT_MAX (the caller cuts it to the number of
 * classes). Returns 0, or -1 (and *k untouched) when s is anything else. */
int routes_parse_topk(const char *s, int *k);

/* Model names, in URLs and --model alike: 1 to ROUTES_MAX_NAME characters of
 * A-Z a-z 0-9 . _ - (so never a NUL, a '/' or a '%'). */
#define ROUTES_MAX_NAME 63
int routes_valid_name(const char *s);

/* A new reference to the model called name (NULL: the default one), which
 * the access log line then names; NULL after a 400 (invalid name) or a 404
 * (no such model) reply. The caller releases it (model_release). */
struct model *routes_take_model(struct request *r, const char *name);

/* ?orient=exif|none, for every route that decodes images, into *exif_orient.
 * Returns 0, or -1 after a 400 reply. */
int routes_parse_orient(struct request *r, int *exif_orient);

/* Allocate job's outputs (infer_job_outputs) and submit it (request_submit);
 * out of memory, the reply says so. Call from end() only. */
void routes_submit(struct request *r, struct infer_job *job);

#endif
