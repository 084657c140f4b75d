/* Native TLS (libmicrohttpd over GnuTLS): the certificate and key are
 * checked here before the daemon starts, handed to GnuTLS per handshake
 * through libmicrohttpd's certificate callback, and swapped on SIGHUP
 * without touching the connections in flight. TLS 1.2 and 1.3 only. */
#ifndef RESNETD_TLS_H
#define RESNETD_TLS_H

#include <stddef.h>
#include <time.h>

#include <microhttpd.h>

/* The GnuTLS priority string: TLS 1.3 and 1.2, GnuTLS's NORMAL ciphers. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* At most this many bytes are read from a certificate or key file. */
#define TLS_MAX_FILE (1 << 20)

struct tls_creds; /* a certificate chain and its private key, reference counted */

/* Check and load a PEM chain (leaf first, then the certificates that issued
 * it, in order) and its unencrypted PEM private key from memory: every
 * certificate must be valid at `now`, the key must match the leaf. cert_name
 * and key_name (file names) head the messages. Returns a credentials pair
 * holding one reference (tls_creds_put frees it), or NULL with a message in
 * err. The buffers need not be NUL-terminated and are not kept. */
struct tls_creds *tls_creds_parse(const char *cert, size_t cert_len, const char *key,
                                  size_t key_len, const char *cert_name, const char *key_name,
                                  time_t now, char *err, size_t errlen);
/* The same from files (at most TLS_MAX_FILE bytes each). */
struct tls_creds *tls_creds_load(const char *cert_path, const char *key_path, char *err,
                                 size_t errlen);
/* Drop one reference; the last frees the pair. NULL is accepted. */
void tls_creds_put(struct tls_creds *c);
/* The leaf's notAfter, and a line naming it (subject, serial) for the log. */
time_t tls_creds_not_after(const struct tls_creds *c);
const char *tls_creds_describe(const struct tls_creds *c);

/* Load cert_path/key_path as the credentials served, keeping the paths for
 * tls_reload. Returns 0, or -1 with a message naming the file. */
int tls_init(const char *cert_path, const char *key_path, char *err, size_t errlen);
/* SIGHUP: read the files again; on success new handshakes get the new pair
 * while those under way finish with the old one. On failure the old pair
 * stays and -1 is returned with the reason. */
int tls_reload(char *err, size_t errlen);
/* A line naming the pair served now (subject, serial, notAfter), in buf. */
const char *tls_current_describe(char *buf, size_t len);
/* The libmicrohttpd options that serve the loaded credentials (certificate
 * callback, priorities), MHD_OPTION_END-terminated, for MHD_OPTION_ARRAY;
 * only MHD_OPTION_END before tls_init. */
const struct MHD_OptionItem *tls_mhd_options(void);
/* For MHD_OPTION_NOTIFY_CONNECTION on a TLS daemon: a connection's start
 * (its slot in *socket_context) and close (the reference to the pair its
 * handshake used dropped; a handshake that never completed counted). */
void tls_notify_connection(struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe);
/* After the daemon has stopped: free the credentials. */
void tls_shutdown(void);

#endif
