/* API keys at the transport: the key a request presents, checked against
 * its route's groups (struct route's auth, auth_also) from the headers
 * alone, and the 401 or 403 that refuses it. The key is never copied into a
 * message or the access log. */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "metrics.h"

/* "Authorization: Bearer KEY" (the scheme in any case, RFC 9110 11.1), else
 * "X-API-Key: KEY"; NULL when neither carries one. libmicrohttpd has
 * trimmed the blanks around a header's value. */
static const char *presented_key(struct request *r)
{
    const char *a = request_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (a && strncasecmp(a, "Bearer", 6) == 0 && (a[6] == ' ' || a[6] == '\t')) {
        a += 7;
        a += strspn(a, " \t");
        if (*a)
            return a;
    }
    const char *k = request_header(r, "X-API-Key");
    return k && *k ? k : NULL;
}

int http_authorize(struct request *r, unsigned mask)
{
    int g = AUTH_OPEN;
    enum auth_result res = auth_check(mask, presented_key(r), &g);
    if (res == AUTH_OK)
        return 0;
    metrics_auth_failure(res == AUTH_MISSING, g);
    /* The groups asked for, as the message names them: "infer", or "infer
     * or features" before the route knows which of its two it serves. */
    char groups[64] = "";
    for (int i = AUTH_OPEN + 1; i < AUTH_N_GROUPS; i++)
        if (mask & (1u << i))
            snprintf(groups + strlen(groups), sizeof groups - strlen(groups), "%s%s",
                     groups[0] ? " or " : "", auth_group_name(i));
    if (res == AUTH_MISSING) {
        reply_error(r, SRV_ERR_UNAUTHORIZED,
                    "%s %.100s needs an API key of group %s: send Authorization: Bearer KEY "
                    "or X-API-Key: KEY", r->method, r->path, groups);
        reply_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"resnetd\"");
    } else {
        reply_error(r, SRV_ERR_FORBIDDEN, "%s %.100s: the API key sent is not one of group %s",
                    r->method, r->path, groups);
    }
    return -1;
}

unsigned http_route_auth_mask(const struct route *rt)
{
    return (1u << rt->auth) | (rt->auth_also ? 1u << rt->auth_also : 0);
}

int request_authorize(struct request *r, int group)
{
    return http_authorize(r, 1u << group);
}
