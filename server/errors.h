/* The failures resnetd answers with, and THE mapping from them (and from
 * libresnet's rn_status) to an HTTP status and a machine-readable code. */
#ifndef RESNETD_ERRORS_H
#define RESNETD_ERRORS_H

enum srv_err {
    SRV_OK = 0,
    SRV_ERR_BAD_REQUEST,     /* malformed request: query, JSON, multipart */
    SRV_ERR_BAD_TENSOR,      /* v2 input with the wrong shape, type or data */
    SRV_ERR_NO_FILE,         /* multipart body without an image part */
    SRV_ERR_EMPTY_BODY,      /* POST without a body (411) */
    SRV_ERR_IMAGE_FORMAT,    /* bytes that are not a decodable image */
    SRV_ERR_IMAGE_CORRUPT,   /* truncated or corrupt image */
    SRV_ERR_IMAGE_TOO_LARGE, /* image declaring more pixels than --max-pixels */
    SRV_ERR_UNSUPPORTED,     /* valid input using a feature we do not implement */
    SRV_ERR_MODEL_FEATURE,   /* a route this model cannot serve (inspecting a plan without residual blocks) */
    SRV_ERR_UNAUTHORIZED,    /* no API key for a route that needs one (--api-keys) */
    SRV_ERR_FORBIDDEN,       /* an API key that does not open the route's group */
    SRV_ERR_NOT_FOUND,       /* unknown route */
    SRV_ERR_NO_MODEL,        /* unknown model name */
    SRV_ERR_METHOD,          /* known route, wrong method */
    SRV_ERR_TOO_LARGE,       /* body over --max-body-bytes */
    SRV_ERR_TOO_MANY_IMAGES, /* more images in one request than the queue holds */
    SRV_ERR_MEDIA_TYPE,      /* Content-Type we do not accept */
    SRV_ERR_QUEUE_FULL,      /* batcher queue full: retry later */
    SRV_ERR_NOT_READY,       /* starting or shutting down */
    SRV_ERR_NOMEM,           /* allocation failed: retry later */
    SRV_ERR_TIMEOUT,         /* waited longer than --request-timeout-ms */
    SRV_ERR_CLIENT_GONE,     /* the client closed its connection while queued */
    SRV_ERR_INTERNAL,        /* a bug */
    SRV_ERR_COUNT
};

/* The HTTP status of e (200 for SRV_OK). */
int srv_err_http(enum srv_err e);
/* The machine code of e ("corrupt_image", ...); never NULL. */
const char *srv_err_code(enum srv_err e);
/* The reason resnetd_rejected_total counts a reply of e under ("queue_full",
 * "too_large", ...; metrics.h), or NULL for what is no refusal (SRV_OK, a
 * bug's 500). */
const char *srv_err_reason(enum srv_err e);
/* Whether the reply should carry Retry-After (503s). */
int srv_err_retry(enum srv_err e);
/* The server error for a libresnet status from the request path (decode,
 * preprocess, inference). RN_OK maps to SRV_OK. */
enum srv_err srv_err_from_rn(int rn_status);

#endif
