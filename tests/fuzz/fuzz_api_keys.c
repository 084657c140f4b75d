/* libFuzzer target: the --api-keys file (server/auth.c's auth_parse). Any
 * bytes parse or are refused with a message; a table parsed holds at least
 * one key, each group's keys open that group, and a message never holds a
 * 16-character run of the input that could be a key. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether a blank-separated token of 16 characters or more of the input,
 * which may be a key, shows in msg (no fixed text of a message has one). */
static int leaks_token(const char *in, size_t n, const char *msg)
{
    char tok[AUTH_LINE_MAX + 1];
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && in[j] != ' ' && in[j] != '\t' && in[j] != '\n' && in[j] != '\r' &&
               in[j] != '\0')
            j++;
        if (j - i >= AUTH_KEY_MIN && j - i <= AUTH_LINE_MAX) {
            memcpy(tok, in + i, j - i);
            tok[j - i] = '\0';
            if (strstr(msg, tok))
                return 1;
        }
        i = j + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    err[0] = '\0';
    struct auth_table *t = auth_parse((const char *)data, size, "f", err, sizeof err);
    if (!t) {
        if (!err[0] || leaks_token((const char *)data, size, err))
            abort(); /* refused without saying why, or quoting what may be a key */
        return 0;
    }
    int total = 0;
    for (int g = AUTH_OPEN + 1; g < AUTH_N_GROUPS; g++)
        total += auth_table_keys(t, g);
    if (total < 1 || total > AUTH_MAX_KEYS)
        abort();
    /* the first GROUP KEY line's key opens its group, and a prefix of it not */
    char line[AUTH_LINE_MAX + 1];
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        memcpy(line, p, n); /* the parser refused longer lines */
        line[n] = '\0';
        char g[16], k[AUTH_KEY_MAX + 1];
        if (line[strspn(line, " \t\r")] != '#' && sscanf(line, " %15s %256s", g, k) == 2) {
            int grp = AUTH_OPEN + 1;
            while (grp < AUTH_N_GROUPS && strcmp(auth_group_name(grp), g) != 0)
                grp++;
            if (grp == AUTH_N_GROUPS || !auth_table_allows(t, grp, k))
                abort();
            k[strlen(k) - 1] = '\0';
            if (strlen(k) < AUTH_KEY_MIN && auth_table_allows(t, grp, k))
                abort(); /* no key that short was accepted */
            break;
        }
        p += n + 1;
    }
    auth_table_free(t);
    return 0;
}
