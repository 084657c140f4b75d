/* API keys per route group: the key file's parser (pure, fuzzed by
 * tests/fuzz/fuzz_api_keys.c), the constant-time check, and the table in
 * force, swapped on SIGHUP. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const group_names[AUTH_N_GROUPS] = {
    "open", "infer", "features", "inspect", "metadata", "metrics",
};

const char *auth_group_name(int g)
{
    return g >= 0 && g < AUTH_N_GROUPS ? group_names[g] : "unknown";
}

/* Each key sits zero-padded in a buffer of AUTH_KEY_MAX bytes, so that
 * comparing it reads the same bytes whatever its length. */
struct auth_key {
    int group;
    size_t len;
    unsigned char bytes[AUTH_KEY_MAX];
};

struct auth_table {
    int n, cap;
    int per_group[AUTH_N_GROUPS];
    struct auth_key *keys;
};

void auth_table_free(struct auth_table *t)
{
    if (!t)
        return;
    /* keys are secrets: not left behind in freed memory */
    if (t->keys)
        explicit_bzero(t->keys, sizeof *t->keys * (size_t)t->cap);
    free(t->keys);
    free(t);
}

int auth_table_keys(const struct auth_table *t, int g)
{
    return t && g > AUTH_OPEN && g < AUTH_N_GROUPS ? t->per_group[g] : 0;
}

/* ---- parsing ---- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Printable ASCII other than space: what a key is made of. */
static int is_keychar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

static int group_by_name(const char *s, size_t n)
{
    for (int g = AUTH_OPEN + 1; g < AUTH_N_GROUPS; g++)
        if (strlen(group_names[g]) == n && memcmp(group_names[g], s, n) == 0)
            return g;
    return -1;
}

static int add_key(struct auth_table *t, int g, const char *key, size_t len)
{
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 8;
        struct auth_key *k = calloc((size_t)cap, sizeof *k);
        if (!k)
            return -1;
        if (t->keys) {
            memcpy(k, t->keys, sizeof *k * (size_t)t->n);
            explicit_bzero(t->keys, sizeof *k * (size_t)t->cap);
            free(t->keys);
        }
        t->keys = k;
        t->cap = cap;
    }
    struct auth_key *k = &t->keys[t->n++];
    k->group = g;
    k->len = len;
    memcpy(k->bytes, key, len);
    t->per_group[g]++;
    return 0;
}

/* One line (no '\n'; a final '\r' and blanks around are allowed), number
 * lineno: a comment, a blank line, or GROUP KEY added to t. Returns 0, or
 * -1 with a message that never quotes the line: it may hold a key. */
static int parse_line(struct auth_table *t, const char *line, size_t n, const char *name,
                      int lineno, char *err, size_t errlen)
{
    if (n > AUTH_LINE_MAX) {
        snprintf(err, errlen, "%s:%d: line longer than %d characters", name, lineno,
                 AUTH_LINE_MAX);
        return -1;
    }
    while (n && (line[n - 1] == '\r' || is_blank(line[n - 1])))
        n--;
    size_t i = 0;
    while (i < n && is_blank(line[i]))
        i++;
    if (i == n || line[i] == '#')
        return 0;
    for (size_t j = i; j < n; j++)
        if (!is_blank(line[j]) && !is_keychar((unsigned char)line[j])) {
            snprintf(err, errlen,
                     "%s:%d: column %zu: a control or non-ASCII byte (keys are printable ASCII)",
                     name, lineno, j + 1);
            return -1;
        }
    size_t gs = i;
    while (i < n && !is_blank(line[i]))
        i++;
    int g = group_by_name(line + gs, i - gs);
    if (g < 0) {
        snprintf(err, errlen,
                 "%s:%d: unknown group (expected GROUP KEY, GROUP one of infer, features, "
                 "inspect, metadata, metrics)", name, lineno);
        return -1;
    }
    while (i < n && is_blank(line[i]))
        i++;
    size_t ks = i;
    while (i < n && !is_blank(line[i]))
        i++;
    size_t klen = i - ks;
    if (klen == 0) {
        snprintf(err, errlen, "%s:%d: group %s without a key", name, lineno, group_names[g]);
        return -1;
    }
    if (i < n) {
        snprintf(err, errlen, "%s:%d: more than GROUP KEY on the line (a key holds no blank)",
                 name, lineno);
        return -1;
    }
    if (klen < AUTH_KEY_MIN || klen > AUTH_KEY_MAX) {
        snprintf(err, errlen, "%s:%d: key of group %s is %s %d characters", name, lineno,
                 group_names[g], klen < AUTH_KEY_MIN ? "shorter than" : "longer than",
                 klen < AUTH_KEY_MIN ? AUTH_KEY_MIN : AUTH_KEY_MAX);
        return -1;
    }
    if (t->n == AUTH_MAX_KEYS) {
        snprintf(err, errlen, "%s:%d: more than %d keys", name, lineno, AUTH_MAX_KEYS);
        return -1;
    }
    if (add_key(t, g, line + ks, klen) < 0) {
        snprintf(err, errlen, "%s:%d: out of memory", name, lineno);
        return -1;
    }
    return 0;
}

struct auth_table *auth_parse(const char *buf, size_t len, const char *name, char *err,
                              size_t errlen)
{
    struct auth_table *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    int lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
        if (parse_line(t, buf + pos, n, name, ++lineno, err, errlen) < 0) {
            auth_table_free(t);
            return NULL;
        }
        pos += n + (nl != NULL);
    }
    if (t->n == 0) {
        snprintf(err, errlen, "%s: no key in it (expected lines of GROUP KEY)", name);
        auth_table_free(t);
        return NULL;
    }
    return t;
}

/* ---- checking ---- */

int auth_table_allows(const struct auth_table *t, int g, const char *key)
{
    if (g <= AUTH_OPEN || g >= AUTH_N_GROUPS || !t || t->per_group[g] == 0)
        return 1;
    if (!key)
        return 0;
    /* The key sent, zero-padded to AUTH_KEY_MAX bytes (a longer one matches
     * nothing, but is compared all the same). */
    unsigned char sent[AUTH_KEY_MAX];
    size_t len = strnlen(key, AUTH_KEY_MAX + 1);
    memset(sent, 0, sizeof sent);
    memcpy(sent, key, len > AUTH_KEY_MAX ? AUTH_KEY_MAX : len);
    volatile unsigned match = 0;
    for (int i = 0; i < t->n; i++) {
        const struct auth_key *k = &t->keys[i];
        if (k->group != g)
            continue;
        unsigned diff = (unsigned)(k->len ^ len);
        for (size_t j = 0; j < AUTH_KEY_MAX; j++)
            diff |= (unsigned)(k->bytes[j] ^ sent[j]);
        match |= (unsigned)((diff - 1) >> (sizeof diff * 8 - 1)); /* 1 when diff == 0 */
    }
    explicit_bzero(sent, sizeof sent);
    return match != 0;
}

/* ---- the file ---- */

#define AUTH_FILE_MAX (AUTH_MAX_KEYS * (AUTH_LINE_MAX + 1) * 4)

struct auth_table *auth_read_file(const char *path, char *err, size_t errlen)
{
    /* O_NONBLOCK: a FIFO given by mistake is refused, not waited on */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    struct auth_table *t = NULL;
    char *buf = NULL;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto out_close;
    }
    /* The mode bits, not access(): root reads any file, yet a key file
     * others may read has leaked whoever runs the daemon. */
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s: mode %04o lets group or others read or write it; chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        goto out_close;
    }
    if (st.st_size > AUTH_FILE_MAX) {
        snprintf(err, errlen, "%s: %lld bytes, more than a key file of at most %d keys holds",
                 path, (long long)st.st_size, AUTH_MAX_KEYS);
        goto out_close;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out_close;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto out_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap) { /* grew since fstat */
            snprintf(err, errlen, "%s: changed while being read", path);
            goto out_free;
        }
    }
    t = auth_parse(buf, len, path, err, errlen);
out_free:
    explicit_bzero(buf, cap);
    free(buf);
out_close:
    close(fd);
    return t;
}

/* ---- the keys in force ---- */

/* Readers (every request) hold the read lock only while comparing; SIGHUP's
 * swap takes the write lock for a pointer store, then frees the old table
 * once no reader can hold it. Writers first: under a steady stream of
 * requests a reload would otherwise wait for a gap between readers. */
static pthread_rwlock_t lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static struct auth_table *current;

int auth_load(const char *path, char *err, size_t errlen)
{
    struct auth_table *t = NULL;
    if (path && *path) {
        t = auth_read_file(path, err, errlen);
        if (!t)
            return -1;
    }
    pthread_rwlock_wrlock(&lock);
    struct auth_table *old = current;
    current = t;
    pthread_rwlock_unlock(&lock);
    auth_table_free(old);
    return 0;
}

int auth_enabled(void)
{
    pthread_rwlock_rdlock(&lock);
    int on = current != NULL;
    pthread_rwlock_unlock(&lock);
    return on;
}

const char *auth_summary(void)
{
    static char buf[256];
    size_t n = 0;
    buf[0] = '\0';
    pthread_rwlock_rdlock(&lock);
    for (int g = AUTH_OPEN + 1; g < AUTH_N_GROUPS; g++) {
        int k = auth_table_keys(current, g);
        char cnt[32];
        snprintf(cnt, sizeof cnt, "%d key%s", k, k == 1 ? "" : "s");
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s %s", n ? ", " : "",
                              group_names[g], k ? cnt : "open");
    }
    pthread_rwlock_unlock(&lock);
    return buf;
}

enum auth_result auth_check(unsigned mask, const char *key, int *group)
{
    enum auth_result res = AUTH_OK;
    int refused = -1;
    pthread_rwlock_rdlock(&lock);
    for (int g = AUTH_OPEN + 1; current && g < AUTH_N_GROUPS; g++) {
        if (!(mask & (1u << g)))
            continue;
        if (current->per_group[g] == 0 || (key && auth_table_allows(current, g, key))) {
            refused = -1;
            break;
        }
        if (refused < 0)
            refused = g;
    }
    pthread_rwlock_unlock(&lock);
    if (refused >= 0) {
        res = key ? AUTH_INVALID : AUTH_MISSING;
        if (group)
            *group = refused;
    }
    return res;
}

void auth_shutdown(void)
{
    auth_load(NULL, NULL, 0);
}
