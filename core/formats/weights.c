/* Opening a weights file of any format: map it, tell the format from its
 * first bytes, and hand it to its reader, which makes the named tensors the
 * plan builders read (an st_file, see core/formats/weights.h):
 *
 *   "PK\3\4"                           a zip: torch.save (core/formats/pth.c)
 *   0x80 0x02 0x8a 0x0a + magic        torch.save's legacy format (core/formats/pth.c)
 *   u64 length, then '{'               safetensors (core/formats/safetensors.c)
 *   0x08 (field 1, ir_version)         an ONNX ModelProto (core/formats/onnx.c)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weights.h"

static int looks_safetensors(const uint8_t *p, size_t size)
{
    if (size < 10)
        return 0;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    return hlen >= 2 && hlen <= size - 8 && p[8] == '{';
}

static int parse(const void *data, size_t size, const char *dir, st_file *f, char *err,
                 size_t errlen)
{
    const uint8_t *p = data;
    if (pth_is_pth(data, size))
        return pth_parse(data, size, f, err, errlen);
    if (!looks_safetensors(p, size) && onnx_is_onnx(data, size))
        return onnx_parse(data, size, dir, f, err, errlen);
    return st_parse(data, size, f, err, errlen);
}

int rn_weights_parse(const void *data, size_t size, st_file *f, char *err, size_t errlen)
{
    return parse(data, size, NULL, f, err, errlen);
}

int rn_weights_open(const char *path, st_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rn_errf(err, errlen, RN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc;
    if (fstat(fd, &st) < 0) {
        rc = rn_errf(err, errlen, RN_ERR_IO, "%s: %s", path, strerror(errno));
        goto out_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rn_errf(err, errlen, RN_ERR_IO, "%s: not a regular file", path);
        goto out_fd;
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        rc = rn_errf(err, errlen, RN_ERR_FORMAT, "%s: file is %zu bytes, too short for weights",
                     path, size);
        goto out_fd;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = rn_errf(err, errlen, RN_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        goto out_fd;
    }
    close(fd);
    /* ONNX external data files are named relative to the model's folder */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        snprintf(dir, sizeof dir, ".");
    rc = parse(map, size, dir, f, err, errlen);
    if (rc < 0) {
        munmap(map, size);
        rn_err_prefix(err, errlen, "%s", path);
        return rc;
    }
    f->map = map;
    return RN_OK;

out_fd:
    close(fd);
    return rc;
}
