/* API keys per route group (--api-keys FILE): which groups of routes need a
 * key, and whether a key a request presents opens a group.
 *
 * The file holds "GROUP KEY" lines; a group with no key stays open, so a
 * daemon without --api-keys lets everyone in, as before. The keys in force
 * are swapped whole on SIGHUP (auth_load) under a rwlock, so a request being
 * checked on an HTTP thread sees either the old table or the new one. Keys
 * are never logged: errors name the file and the line, not the key. */
#ifndef RESNETD_AUTH_H
#define RESNETD_AUTH_H

#include <stddef.h>

/* The groups a route belongs to (struct route's auth, request.h). */
enum auth_group {
    AUTH_OPEN = 0,  /* health and readiness: never a key */
    AUTH_INFER,     /* classify, embed without a layer, v2 infer without layer outputs */
    AUTH_FEATURES,  /* embed ?layer=, v2 infer asking for a layer's output */
    AUTH_INSPECT,   /* /v1/inspect and the page at / with its assets */
    AUTH_METADATA,  /* /v1/models, /v2, /v2/models/M, /openapi.json */
    AUTH_METRICS,   /* /metrics */
    AUTH_N_GROUPS
};

/* A key is 16 to AUTH_KEY_MAX printable ASCII characters other than space:
 * long enough that guessing over the network is hopeless, and fixed-size
 * buffers make the comparison take the same time whatever the key. */
#define AUTH_KEY_MIN 16
#define AUTH_KEY_MAX 256
#define AUTH_LINE_MAX 512   /* longer lines are refused, not cut */
#define AUTH_MAX_KEYS 1024  /* every check reads them all */

/* The name of group g as the file and the metrics spell it ("infer"). */
const char *auth_group_name(int g);

/* A parsed key file: opaque. */
struct auth_table;

/* Parse a key file's contents (len bytes, need not be NUL-terminated) into a
 * new table; name is the file's name for messages. Returns the table (free
 * with auth_table_free), or NULL with a message naming name and the line
 * (never the key): unknown group, short or long key, a character not allowed,
 * a line too long, no key at all. Pure: no I/O, no global state. */
struct auth_table *auth_parse(const char *buf, size_t len, const char *name, char *err,
                              size_t errlen);
void auth_table_free(struct auth_table *t);
/* The number of keys of group g in t. */
int auth_table_keys(const struct auth_table *t, int g);

/* Whether key (NULL: none given) opens group g of t: 1 when g has no key or
 * key is one of g's. Every key of g is compared, each over AUTH_KEY_MAX bytes,
 * with no early exit: the time taken says nothing of how close key was. */
int auth_table_allows(const struct auth_table *t, int g, const char *key);

/* Read and parse path: refused when it is not a regular file, when its group
 * or others may read or write it (mode & 077, whoever runs the daemon), or
 * when auth_parse refuses it. Returns a table, or NULL with a message. */
struct auth_table *auth_read_file(const char *path, char *err, size_t errlen);

/* ---- the keys in force, shared by every thread ---- */

/* Read path and put its keys in force in place of the previous ones; path
 * NULL or "" puts none in force (every group open). Returns 0, or -1 with a
 * message, the previous keys still in force. */
int auth_load(const char *path, char *err, size_t errlen);
/* Whether any key is in force. */
int auth_enabled(void);
/* How many keys each group has in force, for the log: "infer 2, features
 * 1, ..., metrics open" (a static buffer: the main thread's only). */
const char *auth_summary(void);

enum auth_result { AUTH_OK = 0, AUTH_MISSING, AUTH_INVALID };

/* Whether key (NULL: none was sent) lets a request into one of the groups
 * of mask (bit 1 << g per group; AUTH_OPEN or 0: always). AUTH_MISSING
 * when no key came and a group needs one, AUTH_INVALID when a key came and
 * opens none. *group is then the group refused, for the metrics. */
enum auth_result auth_check(unsigned mask, const char *key, int *group);

/* Drop the keys in force (at exit). */
void auth_shutdown(void);

#endif
