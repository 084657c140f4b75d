/* The OpenAPI 3 description served at GET /openapi.json. */
#ifndef RESNETD_OPENAPI_H
#define RESNETD_OPENAPI_H

/* server/openapi.json's bytes, from openapi_json up to openapi_json_end
 * (where a NUL follows). */
extern const char openapi_json[], openapi_json_end[];

#endif
