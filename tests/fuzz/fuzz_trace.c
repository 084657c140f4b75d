/* libFuzzer target: X-Request-Id and traceparent header values as a client
 * sends them (server/trace.c). Checks what the parsers promise: a request id
 * accepted is 1 to 128 characters of the allowed set; a traceparent accepted
 * has lowercase hex ids that are not all zero, a version other than ff, and
 * is the 55 characters of version 00 or a later version's prefix. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lower_hex(const char *s, size_t n)
{
    return strspn(s, "0123456789abcdef") >= n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0'; /* a header value ends at the first NUL */
    size_t len = strlen(s);

    char why[256];
    if (trace_check_request_id(s, why, sizeof why) == 0) {
        if (len < 1 || len > TRACE_ID_MAX ||
            strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != len)
            abort();
    } else if (!why[0]) {
        abort(); /* a refusal says why */
    }

    struct traceparent tp;
    if (trace_parse_traceparent(s, &tp, why, sizeof why) == 0) {
        if (len < 55 || (len > 55 && (strncmp(s, "00", 2) == 0 || s[55] != '-')))
            abort();
        if (strncmp(s, "ff", 2) == 0 || tp.version > 254)
            abort();
        if (strlen(tp.trace_id) != 32 || !lower_hex(tp.trace_id, 32) ||
            strspn(tp.trace_id, "0") == 32 || memcmp(tp.trace_id, s + 3, 32) != 0)
            abort();
        if (strlen(tp.parent_id) != 16 || !lower_hex(tp.parent_id, 16) ||
            strspn(tp.parent_id, "0") == 16 || memcmp(tp.parent_id, s + 36, 16) != 0)
            abort();
        if (tp.flags > 255)
            abort();
    } else if (!why[0]) {
        abort();
    }
    free(s);
    return 0;
}
