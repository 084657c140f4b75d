/* Native TLS: load and check the certificate chain and key, serve them per
 * handshake, swap them on SIGHUP.
 *
 * libmicrohttpd 0.9.75 reads MHD_OPTION_HTTPS_MEM_CERT once, at start. So
 * resnetd gives it a certificate callback instead (MHD_OPTION_HTTPS_CERT_-
 * CALLBACK, GnuTLS's retrieve_function2): GnuTLS asks for the certificate and
 * key during each handshake and never frees what it is given. The pair
 * loaded last is `current`; a handshake takes a reference to it, kept by its
 * connection until libmicrohttpd reports the connection closed (http.c's
 * MHD_OPTION_NOTIFY_CONNECTION calls tls_notify_connection: the reference
 * lives in the connection's socket context). A reload swaps `current` and drops the loader's reference, so
 * the old pair is freed when the last connection that used it closes.
 * `current` is read and its count raised under one mutex: with a bare atomic
 * pointer, a reload could free the pair between the read and the increment.
 *
 * A connection whose handshake never completed (no Finished message from the
 * client by the time it closes: plain HTTP, an old protocol, no common
 * cipher, a client that hung up) counts as a handshake failure. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "metrics.h"

#define MAX_CHAIN 16

struct tls_creds {
    atomic_int refs;
    gnutls_pcert_st pcert[MAX_CHAIN]; /* leaf first */
    unsigned n_pcert;
    gnutls_privkey_t key;
    time_t not_after;                 /* the leaf's */
    char describe[640];               /* subject, serial, notAfter */
};

/* ---- loading and checking ---- */

static void fmt_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, len, "%lld", (long long)t);
}

/* The subject DN of crt, or "?" (the message must still be made). */
static void crt_subject(gnutls_x509_crt_t crt, char *buf, size_t len)
{
    gnutls_datum_t dn = {NULL, 0};
    if (gnutls_x509_crt_get_dn3(crt, &dn, 0) < 0 || !dn.data) {
        snprintf(buf, len, "?");
        return;
    }
    snprintf(buf, len, "%.*s", (int)dn.size, (const char *)dn.data);
    gnutls_free(dn.data);
}

static void crt_serial(gnutls_x509_crt_t crt, char *buf, size_t len)
{
    unsigned char s[64];
    size_t n = sizeof s;
    buf[0] = '\0';
    if (gnutls_x509_crt_get_serial(crt, s, &n) < 0)
        return;
    for (size_t i = 0, w = 0; i < n && w + 3 <= len; i++, w += 2)
        snprintf(buf + w, len - w, "%02X", s[i]);
}

/* Every certificate of the chain is in its validity period at `now`. */
static int check_dates(gnutls_x509_crt_t *crts, unsigned n, const char *name, time_t now,
                       char *err, size_t errlen)
{
    for (unsigned i = 0; i < n; i++) {
        time_t from = gnutls_x509_crt_get_activation_time(crts[i]);
        time_t to = gnutls_x509_crt_get_expiration_time(crts[i]);
        if (from == (time_t)-1 || to == (time_t)-1 || now < from || now > to) {
            char subj[256], when[32];
            crt_subject(crts[i], subj, sizeof subj);
            fmt_time(now < from ? from : to, when, sizeof when);
            snprintf(err, errlen, "%s: certificate %u of the chain (%s) %s %s", name, i + 1, subj,
                     from == (time_t)-1 || to == (time_t)-1 ? "has no readable validity period:"
                     : now < from ? "is not valid before" : "expired on",
                     from == (time_t)-1 || to == (time_t)-1 ? "" : when);
            return -1;
        }
    }
    return 0;
}

/* The key pair of the leaf and of key are the same: their SHA-256 key ids. */
static int check_match(gnutls_x509_crt_t leaf, gnutls_privkey_t key, const char *cert_name,
                       const char *key_name, char *err, size_t errlen)
{
    unsigned char a[64], b[64];
    size_t la = sizeof a, lb = sizeof b;
    gnutls_pubkey_t pub;
    int rc = -1;
    if (gnutls_pubkey_init(&pub) < 0) {
        snprintf(err, errlen, "%s: out of memory", key_name);
        return -1;
    }
    if (gnutls_pubkey_import_privkey(pub, key, 0, 0) < 0 ||
        gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, b, &lb) < 0 ||
        gnutls_x509_crt_get_key_id(leaf, GNUTLS_KEYID_USE_SHA256, a, &la) < 0)
        snprintf(err, errlen, "%s: cannot compare this key with the certificate of %s", key_name,
                 cert_name);
    else if (la != lb || memcmp(a, b, la) != 0)
        snprintf(err, errlen, "%s: this private key does not match the certificate of %s "
                 "(the first certificate there)", key_name, cert_name);
    else
        rc = 0;
    gnutls_pubkey_deinit(pub);
    return rc;
}

static gnutls_privkey_t parse_key(const char *key, size_t key_len, const char *name, char *err,
                                  size_t errlen)
{
    /* PKCS#8 "ENCRYPTED PRIVATE KEY" or the traditional "Proc-Type: 4,ENCRYPTED" */
    if (memmem(key, key_len, "ENCRYPTED", 9)) {
        snprintf(err, errlen, "%s: the private key is encrypted; resnetd needs it unencrypted "
                 "(openssl pkey -in KEY -out PLAIN.key), readable by its user only", name);
        return NULL;
    }
    gnutls_privkey_t k;
    if (gnutls_privkey_init(&k) < 0) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    gnutls_datum_t d = {(unsigned char *)key, (unsigned)key_len};
    int rc = gnutls_privkey_import_x509_raw(k, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        snprintf(err, errlen, "%s: no usable PEM private key (%s)", name, gnutls_strerror(rc));
        gnutls_privkey_deinit(k);
        return NULL;
    }
    return k;
}

static void creds_free(struct tls_creds *c)
{
    for (unsigned i = 0; i < c->n_pcert; i++)
        gnutls_pcert_deinit(&c->pcert[i]);
    if (c->key)
        gnutls_privkey_deinit(c->key);
    free(c);
}

/* The chain in crts (n of them, checked) and key into a new pair. */
static struct tls_creds *creds_make(gnutls_x509_crt_t *crts, unsigned n, gnutls_privkey_t key,
                                    const char *cert_name, char *err, size_t errlen)
{
    struct tls_creds *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "%s: out of memory", cert_name);
        gnutls_privkey_deinit(key);
        return NULL;
    }
    c->key = key;
    for (; c->n_pcert < n; c->n_pcert++) {
        int rc = gnutls_pcert_import_x509(&c->pcert[c->n_pcert], crts[c->n_pcert], 0);
        if (rc < 0) {
            snprintf(err, errlen, "%s: certificate %u: %s", cert_name, c->n_pcert + 1,
                     gnutls_strerror(rc));
            creds_free(c);
            return NULL;
        }
    }
    atomic_init(&c->refs, 1);
    c->not_after = gnutls_x509_crt_get_expiration_time(crts[0]);
    char subj[256], serial[130], until[32];
    crt_subject(crts[0], subj, sizeof subj);
    crt_serial(crts[0], serial, sizeof serial);
    fmt_time(c->not_after, until, sizeof until);
    snprintf(c->describe, sizeof c->describe, "%s, serial %s, valid until %s, chain of %u",
             subj, serial, until, n);
    return c;
}

struct tls_creds *tls_creds_parse(const char *cert, size_t cert_len, const char *key,
                                  size_t key_len, const char *cert_name, const char *key_name,
                                  time_t now, char *err, size_t errlen)
{
    if (cert_len > TLS_MAX_FILE || key_len > TLS_MAX_FILE) {
        snprintf(err, errlen, "%s: larger than %d bytes", cert_len > TLS_MAX_FILE ? cert_name
                 : key_name, TLS_MAX_FILE);
        return NULL;
    }
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    gnutls_datum_t d = {(unsigned char *)cert, (unsigned)cert_len};
    int rc = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM,
                                          GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (rc == GNUTLS_E_CERTIFICATE_LIST_UNSORTED) {
        snprintf(err, errlen, "%s: the certificates are out of order: the server's own comes "
                 "first, then the one that issued it, and so on", cert_name);
        return NULL;
    }
    if (rc < 0 || n == 0) {
        snprintf(err, errlen, "%s: no PEM certificate (-----BEGIN CERTIFICATE-----) could be "
                 "read (%s)", cert_name, rc < 0 ? gnutls_strerror(rc) : "none found");
        if (rc >= 0)
            gnutls_free(crts);
        return NULL;
    }
    struct tls_creds *c = NULL;
    gnutls_privkey_t k = NULL;
    if (n > MAX_CHAIN) {
        snprintf(err, errlen, "%s: %u certificates, at most %d", cert_name, n, MAX_CHAIN);
        goto out_free_crts;
    }
    if (check_dates(crts, n, cert_name, now, err, errlen) < 0)
        goto out_free_crts;
    k = parse_key(key, key_len, key_name, err, errlen);
    if (!k)
        goto out_free_crts;
    if (check_match(crts[0], k, cert_name, key_name, err, errlen) < 0) {
        gnutls_privkey_deinit(k);
        goto out_free_crts;
    }
    c = creds_make(crts, n, k, cert_name, err, errlen); /* takes k */
out_free_crts:
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    return c;
}

/* The whole of path into a new buffer, with a message naming the file. */
static char *read_file(const char *path, const char *what, size_t *len, char *err,
                       size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s: %s", what, path,
                 S_ISDIR(st.st_mode) ? "is a directory, not a PEM file" : "not a regular file");
        goto out_close;
    }
    if (st.st_size > TLS_MAX_FILE) {
        snprintf(err, errlen, "%s %s: %lld bytes, at most %d", what, path, (long long)st.st_size,
                 TLS_MAX_FILE);
        goto out_close;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "%s %s: out of memory", what, path);
        goto out_close;
    }
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
            free(buf);
            buf = NULL;
            goto out_close;
        }
        got += (size_t)r;
        if (r == 0 || got == (size_t)st.st_size)
            break;
    }
    buf[got] = '\0';
    *len = got;
out_close:
    close(fd);
    return buf;
}

struct tls_creds *tls_creds_load(const char *cert_path, const char *key_path, char *err,
                                 size_t errlen)
{
    size_t cl = 0, kl = 0;
    char *cert = read_file(cert_path, "--tls-cert", &cl, err, errlen);
    if (!cert)
        return NULL;
    char *key = read_file(key_path, "--tls-key", &kl, err, errlen);
    struct tls_creds *c = NULL;
    if (key) {
        char cn[4200], kn[4200];
        snprintf(cn, sizeof cn, "--tls-cert %s", cert_path);
        snprintf(kn, sizeof kn, "--tls-key %s", key_path);
        c = tls_creds_parse(cert, cl, key, kl, cn, kn, time(NULL), err, errlen);
        explicit_bzero(key, kl);
        free(key);
    }
    free(cert);
    return c;
}

void tls_creds_put(struct tls_creds *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        creds_free(c);
}

time_t tls_creds_not_after(const struct tls_creds *c) { return c->not_after; }
const char *tls_creds_describe(const struct tls_creds *c) { return c->describe; }

/* ---- the pair served ---- */

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_creds *current;
static char cert_file[4096], key_file[4096];

static struct tls_creds *current_get(void)
{
    pthread_mutex_lock(&current_lock);
    struct tls_creds *c = current;
    if (c)
        atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&current_lock);
    return c;
}

static void current_set(struct tls_creds *c)
{
    pthread_mutex_lock(&current_lock);
    struct tls_creds *old = current;
    current = c;
    pthread_mutex_unlock(&current_lock);
    metrics_tls_cert(c ? (double)c->not_after : 0);
    tls_creds_put(old);
}

/* What a connection holds: the pair its handshake got, and whether the
 * handshake completed. Touched only by the connection's own thread. */
struct tls_conn {
    struct tls_creds *creds;
    int handshake_done;
};

static struct tls_conn *conn_slot(gnutls_session_t session)
{
    /* libmicrohttpd sets the session's pointer to its connection */
    struct MHD_Connection *conn = gnutls_session_get_ptr(session);
    if (!conn)
        return NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static int on_handshake_msg(gnutls_session_t session, unsigned int htype, unsigned when,
                            unsigned int incoming, const gnutls_datum_t *msg)
{
    (void)htype; /* only GNUTLS_HANDSHAKE_FINISHED is hooked */
    (void)when;
    (void)msg;
    struct tls_conn *slot = conn_slot(session);
    if (slot && incoming) /* the client's Finished: the last message of any handshake */
        slot->handshake_done = 1;
    return 0;
}

static void hook_finished(gnutls_session_t session)
{
    gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_POST,
                                       on_handshake_msg);
}

static int on_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                   const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                   gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
    struct tls_conn *slot = conn_slot(session);
    if (!slot)
        return -1; /* no slot to keep the reference in: no handshake */
    if (!slot->creds)
        slot->creds = current_get();
    if (!slot->creds)
        return -1;
    hook_finished(session);
    *pcert = slot->creds->pcert;
    *pcert_length = slot->creds->n_pcert;
    *key = slot->creds->key;
    return 0;
}

void tls_notify_connection(struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(struct tls_conn));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci && ci->tls_session)
            hook_finished(ci->tls_session);
        return;
    }
    struct tls_conn *slot = *socket_context;
    *socket_context = NULL;
    if (!slot || !slot->handshake_done)
        metrics_tls_handshake_failure();
    if (slot) {
        tls_creds_put(slot->creds);
        free(slot);
    }
}

static struct MHD_OptionItem mhd_options[3] = {{MHD_OPTION_END, 0, NULL}};

int tls_init(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
    gnutls_priority_t prio;
    const char *where = NULL;
    int rc = gnutls_priority_init(&prio, TLS_PRIORITIES, &where);
    if (rc < 0) {
        snprintf(err, errlen, "GnuTLS refuses the priority string %s at '%s': %s", TLS_PRIORITIES,
                 where ? where : "?", gnutls_strerror(rc));
        return -1;
    }
    gnutls_priority_deinit(prio);
    struct tls_creds *c = tls_creds_load(cert_path, key_path, err, errlen);
    if (!c)
        return -1;
    snprintf(cert_file, sizeof cert_file, "%s", cert_path);
    snprintf(key_file, sizeof key_file, "%s", key_path);
    current_set(c);
    mhd_options[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)on_cert};
    mhd_options[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                             (void *)TLS_PRIORITIES};
    mhd_options[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return 0;
}

int tls_reload(char *err, size_t errlen)
{
    struct tls_creds *c = tls_creds_load(cert_file, key_file, err, errlen);
    if (!c)
        return -1;
    current_set(c);
    return 0;
}

const char *tls_current_describe(char *buf, size_t len)
{
    struct tls_creds *c = current_get();
    snprintf(buf, len, "%s", c ? c->describe : "none");
    tls_creds_put(c);
    return buf;
}

const struct MHD_OptionItem *tls_mhd_options(void) { return mhd_options; }

void tls_shutdown(void)
{
    current_set(NULL);
}
