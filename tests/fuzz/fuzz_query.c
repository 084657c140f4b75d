/* libFuzzer target: the request line as the router sees it. The input is a
 * URL "path?query"; the path goes to routes_match, the query is split on '&'
 * and '=' and unescaped as libmicrohttpd does, and topk values go to
 * routes_parse_topk. Model names from the path or the query are looked up in
 * the (empty) registry. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "models.h"
#include "routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void arg(char *kv)
{
    char *eq = strchr(kv, '=');
    char *v = NULL;
    if (eq) {
        *eq = '\0';
        v = eq + 1;
        MHD_http_unescape(v);
    }
    MHD_http_unescape(kv);
    if (strcmp(kv, "topk") == 0 && v) {
        int k = -7;
        if (routes_parse_topk(v, &k) == 0 && k < 1)
            abort();
        if (k == -7 && routes_parse_topk(v, &k) == 0)
            abort();
    } else if (strcmp(kv, "model") == 0) {
        struct model *m = models_acquire(v);
        if (m)
            abort(); /* no model is loaded here */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    memcpy(url, data, size);
    url[size] = '\0';
    char *q = strchr(url, '?');
    if (q)
        *q++ = '\0';
    MHD_http_unescape(url);
    char name[128];
    const struct route *rt = routes_match(url, name, sizeof name);
    if (rt && strlen(name) >= sizeof name)
        abort();
    if (rt && name[0])
        model_release(models_acquire(name));
    for (char *save = NULL, *kv = q ? strtok_r(q, "&", &save) : NULL; kv;
         kv = strtok_r(NULL, "&", &save))
        arg(kv);
    free(url);
    return 0;
}
