/* A streaming multipart/form-data parser (RFC 7578 over RFC 2046): feed it the
 * body in chunks of any size; it calls back at each part's headers, data and
 * end. It never buffers a part's data, only up to one delimiter's worth. */
#ifndef RESNETD_MULTIPART_H
#define RESNETD_MULTIPART_H

#include <stddef.h>

#define MP_MAX_BOUNDARY 70   /* RFC 2046 */
#define MP_MAX_HEADERS 8192  /* all header lines of one part */

struct mp_part {
    char name[256];         /* form field name, "" when absent */
    char filename[256];     /* "" when the part is not a file */
    int has_filename;
    char content_type[128]; /* "" when absent */
};

struct mp_callbacks {
    /* Each returns 0 to go on, or non-zero to stop (mp_feed then fails with
     * the message "stopped"). */
    int (*part_begin)(void *user, const struct mp_part *part);
    int (*part_data)(void *user, const char *data, size_t len);
    int (*part_end)(void *user);
};

typedef struct mp_parser mp_parser;

/* The boundary parameter of a multipart/form-data Content-Type (quoted or
 * not) into out (MP_MAX_BOUNDARY + 1 bytes). Returns 0; -1 when ct is not
 * multipart/form-data; -2 when the boundary is missing or invalid. */
int mp_boundary(const char *content_type, char *out);

/* A parser for boundary; NULL when out of memory. Free with mp_free. */
mp_parser *mp_new(const char *boundary, const struct mp_callbacks *cb, void *user);
void mp_free(mp_parser *p); /* accepts NULL */

/* Parse the next len bytes. Returns 0, or -1 with a message in mp_error();
 * after an error every call fails. */
int mp_feed(mp_parser *p, const char *data, size_t len);

/* The body has ended: returns 0 when it ended after the closing delimiter
 * ("--boundary--"), -1 (and a message) when it was truncated. */
int mp_finish(mp_parser *p);

/* The number of parts seen so far. */
int mp_parts(const mp_parser *p);

const char *mp_error(const mp_parser *p);

#endif
