/* libFuzzer target: the TLS certificate and key loader (server/tls.c). The
 * input up to a line "=====" is the certificate file, the rest the key file;
 * without that line the whole input is both (a PEM file holding certificate
 * and key). Whatever the bytes, tls_creds_parse returns NULL with a message,
 * or a pair that is freed here without a leak. The clock is fixed, so that a
 * seed stays in its validity period. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000 /* 2027-01-15 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *cut = size >= 7 ? memmem(p, size, "\n=====\n", 7) : NULL;
    size_t cert_len = cut ? (size_t)(cut - p) + 1 : size;
    const char *key = cut ? cut + 7 : p;
    size_t key_len = cut ? size - (size_t)(key - p) : size;
    /* copies of exactly the input's size: ASan sees any read past them */
    char *c = malloc(cert_len ? cert_len : 1), *k = malloc(key_len ? key_len : 1);
    if (!c || !k)
        abort();
    memcpy(c, p, cert_len);
    memcpy(k, key, key_len);
    char err[1024] = "";
    struct tls_creds *cr = tls_creds_parse(c, cert_len, k, key_len, "cert.pem", "key.pem",
                                           (time_t)NOW, err, sizeof err);
    if (cr) {
        if (!tls_creds_describe(cr)[0] || tls_creds_not_after(cr) < NOW)
            abort();
        tls_creds_put(cr);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    free(c);
    free(k);
    return 0;
}
