/* THE mapping from failures to HTTP: every error reply goes through here, so a
 * status code or machine code is changed in exactly one place. */
#include "errors.h"

#include "resnet.h"

static const struct {
    int http;
    const char *code;
    const char *reason; /* of resnetd_rejected_total; NULL: not a refusal */
} table[SRV_ERR_COUNT] = {
    [SRV_OK] = {200, "ok", NULL},
    [SRV_ERR_BAD_REQUEST] = {400, "bad_request", "bad_request"},
    [SRV_ERR_BAD_TENSOR] = {400, "bad_tensor", "bad_request"},
    [SRV_ERR_NO_FILE] = {400, "no_file", "bad_request"},
    [SRV_ERR_EMPTY_BODY] = {411, "empty_body", "bad_request"},
    /* Not an image type we decode; the message names the ones we do. */
    [SRV_ERR_IMAGE_FORMAT] = {415, "unsupported_image", "unsupported_media_type"},
    [SRV_ERR_IMAGE_CORRUPT] = {400, "corrupt_image", "bad_request"},
    /* The body was accepted; the image inside declares too many pixels. */
    [SRV_ERR_IMAGE_TOO_LARGE] = {413, "image_too_large", "too_large"},
    [SRV_ERR_UNSUPPORTED] = {415, "unsupported_image_feature", "unsupported_media_type"},
    [SRV_ERR_MODEL_FEATURE] = {422, "unsupported_for_model", "bad_request"},
    [SRV_ERR_UNAUTHORIZED] = {401, "unauthorized", "unauthorized"},
    [SRV_ERR_FORBIDDEN] = {403, "forbidden", "forbidden"},
    [SRV_ERR_NOT_FOUND] = {404, "not_found", "not_found"},
    [SRV_ERR_NO_MODEL] = {404, "model_not_found", "not_found"},
    [SRV_ERR_METHOD] = {405, "method_not_allowed", "method_not_allowed"},
    [SRV_ERR_TOO_LARGE] = {413, "body_too_large", "too_large"},
    [SRV_ERR_TOO_MANY_IMAGES] = {413, "too_many_images", "too_large"},
    [SRV_ERR_MEDIA_TYPE] = {415, "unsupported_media_type", "unsupported_media_type"},
    [SRV_ERR_QUEUE_FULL] = {503, "queue_full", "queue_full"},
    [SRV_ERR_NOT_READY] = {503, "not_ready", "draining"},
    [SRV_ERR_NOMEM] = {503, "out_of_memory", "out_of_memory"},
    [SRV_ERR_TIMEOUT] = {504, "timeout", "timeout"},
    [SRV_ERR_CLIENT_GONE] = {499, "client_closed_request", "client_gone"}, /* nginx's code; never sent */
    [SRV_ERR_INTERNAL] = {500, "internal", NULL},
};

int srv_err_http(enum srv_err e)
{
    return (e >= 0 && e < SRV_ERR_COUNT) ? table[e].http : 500;
}

const char *srv_err_code(enum srv_err e)
{
    return (e >= 0 && e < SRV_ERR_COUNT) ? table[e].code : "internal";
}

const char *srv_err_reason(enum srv_err e)
{
    return (e >= 0 && e < SRV_ERR_COUNT) ? table[e].reason : NULL;
}

int srv_err_retry(enum srv_err e)
{
    return srv_err_http(e) == 503;
}

enum srv_err srv_err_from_rn(int rn_status)
{
    switch (rn_status) {
    case RN_OK: return SRV_OK;
    case RN_ERR_IMAGE_FORMAT: return SRV_ERR_IMAGE_FORMAT;
    case RN_ERR_IMAGE_CORRUPT: return SRV_ERR_IMAGE_CORRUPT;
    case RN_ERR_IMAGE_TOO_LARGE: return SRV_ERR_IMAGE_TOO_LARGE;
    case RN_ERR_UNSUPPORTED: return SRV_ERR_UNSUPPORTED;
    case RN_ERR_INVALID_ARG: return SRV_ERR_BAD_TENSOR;
    case RN_ERR_NOMEM: return SRV_ERR_NOMEM;
    /* Weights, I/O and internal failures on the request path are our bugs. */
    default: return SRV_ERR_INTERNAL;
    }
}
