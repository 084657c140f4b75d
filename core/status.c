/* Status codes, error messages, logging and aligned allocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rn_internal.h"

const char *rn_strerror(int status)
{
    switch (status) {
    case RN_OK: return "success";
    case RN_ERR_IO: return "input/output error";
    case RN_ERR_FORMAT: return "invalid weights file";
    case RN_ERR_ARCH: return "not a supported ResNet";
    case RN_ERR_NOMEM: return "out of memory";
    case RN_ERR_INVALID_ARG: return "invalid argument";
    case RN_ERR_IMAGE_FORMAT: return "unsupported image format";
    case RN_ERR_IMAGE_CORRUPT: return "corrupt image";
    case RN_ERR_IMAGE_TOO_LARGE: return "image too large";
    case RN_ERR_UNSUPPORTED: return "unsupported feature";
    case RN_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

int rn_errf(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

void rn_err_prefix(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    char prefix[256], old[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", err);
    snprintf(err, errlen, "%s: %s", prefix, old);
}

static void log_stderr(int level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    fprintf(stderr, "resnet: %s\n", msg);
}

static rn_log_fn log_fn = log_stderr;
static void *log_user;
static int log_max = RN_LOG_INFO;

void rn_set_log(rn_log_fn fn, void *user, int max_level)
{
    log_fn = fn;
    log_user = user;
    log_max = max_level;
}

void rn_log(int level, const char *fmt, ...)
{
    if (!log_fn || level > log_max)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}

/* Buffers of 2 MB and more (packed weights, activations, scratch) are
 * aligned to 2 MB and asked for transparent huge pages where the kernel
 * offers them (THP "madvise" mode, Debian's default). The weights of
 * ResNet-50 (176 MB) stream from memory once per image at batch 1; on 4 KB
 * pages each 4 KB of them also costs a page walk: batch 1 ran about 2%
 * faster on huge pages (Intel Xeon, 2 threads, alternated runs). A failed
 * madvise leaves 4 KB pages. */
#define HUGE_BYTES ((size_t)2 << 20)

static size_t alloc_align(size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_BYTES)
        return HUGE_BYTES;
#endif
    return 64;
}

size_t rn_alloc_bytes(size_t bytes)
{
    if (bytes == 0)
        bytes = 64;
    size_t align = alloc_align(bytes);
    return (bytes + align - 1) & ~(align - 1);
}

void *rn_alloc(size_t bytes)
{
    void *p = NULL;
    size_t align = alloc_align(bytes);
    bytes = rn_alloc_bytes(bytes);
    if (posix_memalign(&p, align, bytes) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (align == HUGE_BYTES)
        (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

void rn_free(void *p)
{
    free(p);
}
