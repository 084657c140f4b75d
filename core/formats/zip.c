/* A zip reader for the archives torch.save writes: the central directory
 * (zip64 too) is read from the end of the image, and every entry's local
 * header is checked against it, so that a directory that lies about a name,
 * an offset or a size is refused rather than believed. Only stored entries
 * can be read (torch.save never compresses); a compressed entry is listed,
 * and refused by name when it is asked for. Nothing is copied: entries point
 * into the image.
 */
#include <stdlib.h>
#include <string.h>

#include "zip.h"

/* At most this many entries: a ResNet-152 checkpoint has about 1,000. */
#define ZIP_MAX_ENTRIES 100000

static uint32_t rd16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t rd32(const uint8_t *p)
{
    return rd16(p) | rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

int zip_is_zip(const void *data, size_t size)
{
    const uint8_t *p = data;
    return size >= 4 && p[0] == 'P' && p[1] == 'K' && p[2] == 3 && p[3] == 4;
}

/* The zip64 extended information extra field of a central entry: the fields
 * that were 0xffffffff in the entry, in order (APPNOTE 4.5.3). */
static int zip64_extra(const uint8_t *x, size_t len, uint64_t *usize, uint64_t *csize,
                       uint64_t *off, int need_u, int need_c, int need_o)
{
    while (len >= 4) {
        uint32_t id = rd16(x), n = rd16(x + 2);
        if (n > len - 4)
            return -1;
        if (id == 1) {
            const uint8_t *f = x + 4;
            uint32_t left = n;
            uint64_t *dst[3] = {usize, csize, off};
            int need[3] = {need_u, need_c, need_o};
            for (int i = 0; i < 3; i++) {
                if (!need[i])
                    continue;
                if (left < 8)
                    return -1;
                *dst[i] = rd64(f);
                f += 8;
                left -= 8;
            }
            return 0;
        }
        x += 4 + n;
        len -= 4 + n;
    }
    return need_u || need_c || need_o ? -1 : 0;
}

int zip_open(const void *data, size_t size, zip_archive *z, char *err, size_t errlen)
{
    const uint8_t *p = data;
    memset(z, 0, sizeof *z);
    if (size < 22)
        return rn_errf(err, errlen, RN_ERR_FORMAT, "zip: %zu bytes, too short for an archive", size);
    /* the end of central directory record, at most 64 KiB of comment after it */
    size_t eocd = (size_t)-1;
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t i = size - 22 + 1; i-- > lo;)
        if (rd32(p + i) == 0x06054b50 && i + 22 + rd16(p + i + 20) <= size) {
            eocd = i;
            break;
        }
    if (eocd == (size_t)-1)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "zip: no end of central directory record (truncated archive?)");
    uint64_t n = rd16(p + eocd + 10), cd_size = rd32(p + eocd + 12), cd_off = rd32(p + eocd + 16);
    if (rd16(p + eocd + 4) != 0 || rd16(p + eocd + 6) != 0)
        return rn_errf(err, errlen, RN_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
    if (n == 0xffff || cd_size == 0xffffffff || cd_off == 0xffffffff) {
        /* zip64: the locator sits just before the end record */
        if (eocd < 20 || rd32(p + eocd - 20) != 0x07064b50)
            return rn_errf(err, errlen, RN_ERR_FORMAT, "zip: zip64 end record locator missing at byte %zu",
                           eocd >= 20 ? eocd - 20 : 0);
        uint64_t r = rd64(p + eocd - 20 + 8);
        if (r > size - 56 || rd32(p + r) != 0x06064b50)
            return rn_errf(err, errlen, RN_ERR_FORMAT, "zip: no zip64 end record at byte %llu",
                           (unsigned long long)r);
        n = rd64(p + r + 32);
        cd_size = rd64(p + r + 40);
        cd_off = rd64(p + r + 48);
    }
    if (cd_off > size || cd_size > size - cd_off)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "zip: central directory [%llu, +%llu) outside the %zu-byte file",
                       (unsigned long long)cd_off, (unsigned long long)cd_size, size);
    if (n > ZIP_MAX_ENTRIES || n * 46 > cd_size)
        return rn_errf(err, errlen, RN_ERR_FORMAT,
                       "zip: %llu entries cannot fit a %llu-byte central directory",
                       (unsigned long long)n, (unsigned long long)cd_size);
    z->entries = calloc(n ? n : 1, sizeof *z->entries);
    if (!z->entries)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    z->base = p;
    z->size = size;
    const uint8_t *c = p + cd_off, *end = c + cd_size;
    int rc;
    for (uint64_t i = 0; i < n; i++) {
        size_t at = (size_t)(c - p);
        if (end - c < 46 || rd32(c) != 0x02014b50) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT, "zip: central directory entry %llu at byte %zu: bad signature",
                         (unsigned long long)i, at);
            goto out_close;
        }
        uint32_t flags = rd16(c + 8), method = rd16(c + 10);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), off = rd32(c + 42);
        uint32_t nlen = rd16(c + 28), xlen = rd16(c + 30), klen = rd16(c + 32);
        if ((size_t)(end - c) - 46 < (size_t)nlen + xlen + klen) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT, "zip: central directory entry %llu at byte %zu runs past the directory",
                         (unsigned long long)i, at);
            goto out_close;
        }
        if (zip64_extra(c + 46 + nlen, xlen, &usize, &csize, &off, usize == 0xffffffff,
                        csize == 0xffffffff, off == 0xffffffff) < 0) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT, "zip: entry at byte %zu: bad zip64 extra field", at);
            goto out_close;
        }
        zip_entry *e = &z->entries[z->n];
        e->name = (const char *)c + 46;
        e->name_len = nlen;
        e->method = (int)method;
        e->encrypted = flags & 1;
        /* the local header must agree with the directory */
        if (off > size || size - off < 30 || rd32(p + off) != 0x04034b50) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT, "zip: %.*s: local header at byte %llu missing",
                         (int)nlen, e->name, (unsigned long long)off);
            goto out_close;
        }
        uint32_t lnlen = rd16(p + off + 26), lxlen = rd16(p + off + 28);
        if (size - off - 30 < (uint64_t)lnlen + lxlen || lnlen != nlen ||
            memcmp(p + off + 30, e->name, nlen)) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                         "zip: %.*s: the local header at byte %llu names another entry",
                         (int)nlen, e->name, (unsigned long long)off);
            goto out_close;
        }
        uint64_t at_data = off + 30 + lnlen + lxlen;
        if (csize > size - at_data) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                         "zip: %.*s: %llu bytes at byte %llu run past the end of the %zu-byte file",
                         (int)nlen, e->name, (unsigned long long)csize, (unsigned long long)at_data, size);
            goto out_close;
        }
        if (method == 0 && csize != usize) {
            rc = rn_errf(err, errlen, RN_ERR_FORMAT,
                         "zip: %.*s: stored entry with sizes %llu and %llu that differ", (int)nlen,
                         e->name, (unsigned long long)csize, (unsigned long long)usize);
            goto out_close;
        }
        e->offset = (size_t)at_data;
        e->size = (size_t)csize;
        e->data = p + at_data;
        z->n++;
        c += 46 + nlen + xlen + klen;
    }
    return RN_OK;

out_close:
    zip_close(z);
    return rc;
}

void zip_close(zip_archive *z)
{
    free(z->entries);
    memset(z, 0, sizeof *z);
}

const zip_entry *zip_find(const zip_archive *z, const char *name, size_t len)
{
    for (int i = 0; i < z->n; i++)
        if (z->entries[i].name_len == len && !memcmp(z->entries[i].name, name, len))
            return &z->entries[i];
    return NULL;
}

int zip_stored(const zip_entry *e, char *err, size_t errlen)
{
    if (e->encrypted)
        return rn_errf(err, errlen, RN_ERR_UNSUPPORTED, "zip: %.*s: encrypted entry",
                       (int)e->name_len, e->name);
    if (e->method != 0)
        return rn_errf(err, errlen, RN_ERR_UNSUPPORTED,
                       "zip: %.*s: compressed entry (method %d); torch.save stores entries "
                       "uncompressed: re-save it, or unzip and zip -0 it",
                       (int)e->name_len, e->name, e->method);
    return RN_OK;
}
