/* tls.c: TLS 1.3 with mutual authentication for the remote HSM (docs/remote.md, "TLS"): see the
 * cf_tls_* declarations in crypto.h. Only TLS 1.3; the server requires a client certificate that
 * chains to client_ca; the client verifies the server's certificate against ca and the name it
 * dialled (DNS name or IP address in the subjectAltName). Blocking I/O on a connected socket for
 * the client module; non-blocking steps (cf_tls_*_nb, cf_tls_handshake_step) for cofferd's event
 * loop. The caller owns (and closes) the descriptor. */
#include "crypto/crypto.h"
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cf_tls_ctx {
    SSL_CTX *ctx;
};

struct cf_tls {
    SSL *ssl;
    char last[256];   /* OpenSSL's reason for the last failed read or write ("" none) */
};

static void note_error(cf_tls *t, int rc)
{
    unsigned long e = ERR_peek_last_error();
    if (e && SSL_get_error(t->ssl, rc) != SSL_ERROR_ZERO_RETURN) {
        const char *r = ERR_reason_error_string(e);
        snprintf(t->last, sizeof t->last, "%s", r ? r : "TLS error");
    }
    ERR_clear_error();
}

const char *cf_tls_last_error(const cf_tls *t)
{
    return t && t->last[0] ? t->last : NULL;
}

static void tls_error(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char detail[256] = "";
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    if (path)
        snprintf(err, errlen, "%s %s%s%s", what, path, detail[0] ? ": " : "", detail);
    else
        snprintf(err, errlen, "%s%s%s", what, detail[0] ? ": " : "", detail);
}

static cf_err ctx_new(bool server, const char *cert, const char *key, const char *ca, cf_tls_ctx **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c) {
        tls_error(err, errlen, "cannot create a TLS context", NULL);
        return CF_E_NOMEM;
    }
    if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
        tls_error(err, errlen, "cannot restrict TLS to version 1.3", NULL);
        goto fail;
    }
    if (cert && *cert) {
        if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
            tls_error(err, errlen, "cannot read the certificate", cert);
            goto fail;
        }
        if (!key || !*key || SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
            tls_error(err, errlen, "cannot read the private key", key ? key : "(none)");
            goto fail;
        }
        if (SSL_CTX_check_private_key(c) != 1) {
            tls_error(err, errlen, "the private key does not match the certificate", cert);
            goto fail;
        }
    }
    if (!ca || !*ca || SSL_CTX_load_verify_locations(c, ca, NULL) != 1) {
        tls_error(err, errlen, "cannot read the CA certificate", ca ? ca : "(none)");
        goto fail;
    }
    if (server) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names)
            SSL_CTX_set_client_CA_list(c, names);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(c, 0);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    }
    SSL_CTX_set_mode(c, SSL_MODE_AUTO_RETRY);
    /* One read() per burst of records instead of two per record (header, then body): a call's
     * request or answer is one record, so this halves the reads of each round trip. Bytes read
     * ahead are inside the SSL object, where the socket no longer shows them (cf_tls_pending). */
    SSL_CTX_set_read_ahead(c, 1);
    cf_tls_ctx *t = malloc(sizeof *t);
    if (!t)
        goto fail;
    t->ctx = c;
    *out = t;
    return CF_OK;
fail:
    SSL_CTX_free(c);
    return CF_E_CONFIG;
}

cf_err cf_tls_server_ctx_new(const char *cert, const char *key, const char *client_ca, cf_tls_ctx **out,
                             char *err, size_t errlen)
{
    if (!cert || !*cert || !key || !*key) {
        snprintf(err, errlen, "a TLS server needs a certificate and a key");
        return CF_E_CONFIG;
    }
    return ctx_new(true, cert, key, client_ca, out, err, errlen);
}

cf_err cf_tls_client_ctx_new(const char *cert, const char *key, const char *ca, cf_tls_ctx **out, char *err,
                             size_t errlen)
{
    return ctx_new(false, cert, key, ca, out, err, errlen);
}

void cf_tls_ctx_free(cf_tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

/* One sentence for a failed handshake (rc from SSL_accept / SSL_connect / SSL_do_handshake). */
static void handshake_reason(SSL *ssl, int rc, const char *who, char *err, size_t errlen)
{
    int e = SSL_get_error(ssl, rc);
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK)
        snprintf(err, errlen, "TLS handshake failed: %s certificate: %s", who, X509_verify_cert_error_string(v));
    else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
        snprintf(err, errlen, "TLS handshake failed: the connection closed (%s)", errno ? strerror(errno) : "EOF");
    else
        tls_error(err, errlen, "TLS handshake failed", NULL);
    ERR_clear_error();
}

static cf_err handshake_failed(SSL *ssl, int rc, const char *who, char *err, size_t errlen)
{
    handshake_reason(ssl, rc, who, err, errlen);
    SSL_free(ssl);
    return CF_E_IO;
}

static bool set_nosig_fd(SSL *ssl, int fd);

cf_err cf_tls_accept(cf_tls_ctx *c, int fd, cf_tls **out, char *err, size_t errlen)
{
    *out = NULL;
    SSL *ssl = SSL_new(c->ctx);
    if (!ssl || !set_nosig_fd(ssl, fd)) {
        SSL_free(ssl);
        snprintf(err, errlen, "out of memory");
        return CF_E_NOMEM;
    }
    errno = 0;
    int rc = SSL_accept(ssl);
    if (rc != 1)
        return handshake_failed(ssl, rc, "the client", err, errlen);
    cf_tls *t = malloc(sizeof *t);
    if (!t) {
        SSL_free(ssl);
        return CF_E_NOMEM;
    }
    t->ssl = ssl;
    t->last[0] = 0;
    *out = t;
    return CF_OK;
}

/* ---- the client's socket BIO ---------------------------------------------------------------- */
/* OpenSSL's socket BIO with one change: it writes with send(MSG_NOSIGNAL). A server that went away
 * must not kill the application with SIGPIPE (the module lives in someone else's process), and
 * the flag costs nothing, where blocking the signal around each write cost three system calls. */
static BIO_METHOD *g_nosig_method;
static pthread_once_t g_nosig_once = PTHREAD_ONCE_INIT;

static int nosig_write(BIO *b, const char *in, int n)
{
    int fd = -1;
    (void)BIO_get_fd(b, &fd);
    errno = 0;
    ssize_t r = send(fd, in, (size_t)n, MSG_NOSIGNAL);
    BIO_clear_retry_flags(b);
    if (r <= 0 && BIO_sock_should_retry((int)r))
        BIO_set_retry_write(b);
    return (int)r;
}

static void nosig_init(void)
{
    const BIO_METHOD *base = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "coffer socket");
    if (!m)
        return;
    if (BIO_meth_set_write(m, nosig_write) != 1 || BIO_meth_set_read(m, BIO_meth_get_read(base)) != 1 ||
        BIO_meth_set_puts(m, BIO_meth_get_puts(base)) != 1 || BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(base)) != 1 ||
        BIO_meth_set_create(m, BIO_meth_get_create(base)) != 1 ||
        BIO_meth_set_destroy(m, BIO_meth_get_destroy(base)) != 1) {
        BIO_meth_free(m);
        return;
    }
    g_nosig_method = m;
}

/* ssl on fd through the BIO above (not closing fd: the caller owns it). */
static bool set_nosig_fd(SSL *ssl, int fd)
{
    pthread_once(&g_nosig_once, nosig_init);
    BIO *b = g_nosig_method ? BIO_new(g_nosig_method) : NULL;
    if (!b)
        return false;
    BIO_set_fd(b, fd, BIO_NOCLOSE);
    SSL_set_bio(ssl, b, b);
    return true;
}

cf_err cf_tls_connect(cf_tls_ctx *c, int fd, const char *host, cf_tls **out, char *err, size_t errlen)
{
    *out = NULL;
    SSL *ssl = SSL_new(c->ctx);
    if (!ssl || !set_nosig_fd(ssl, fd)) {
        SSL_free(ssl);
        snprintf(err, errlen, "out of memory");
        return CF_E_NOMEM;
    }
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1
              : (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)) {
        SSL_free(ssl);
        snprintf(err, errlen, "cannot set the server name %s for verification", host);
        return CF_E_ARGS;
    }
    errno = 0;
    int rc = SSL_connect(ssl);
    if (rc != 1)
        return handshake_failed(ssl, rc, "the server", err, errlen);
    cf_tls *t = malloc(sizeof *t);
    if (!t) {
        SSL_free(ssl);
        return CF_E_NOMEM;
    }
    t->ssl = ssl;
    t->last[0] = 0;
    *out = t;
    return CF_OK;
}

long cf_tls_read(cf_tls *t, void *p, size_t n)
{
    size_t got = 0;
    int rc = SSL_read_ex(t->ssl, p, n, &got);
    if (rc == 1)
        return (long)got;
    bool eof = SSL_get_error(t->ssl, rc) == SSL_ERROR_ZERO_RETURN;
    note_error(t, rc);
    return eof ? 0 : -1;
}

/* No SIGPIPE from a peer that went away: cf_tls_connect's BIO writes with MSG_NOSIGNAL, and
 * cf_tls_accept's caller (a server) ignores or blocks SIGPIPE. */
long cf_tls_write(cf_tls *t, const void *p, size_t n)
{
    size_t done = 0;
    int rc = SSL_write_ex(t->ssl, p, n, &done);
    if (rc != 1)
        note_error(t, rc);
    return rc == 1 ? (long)done : -1;
}

/* No close_notify: the peer sees the end of the stream, which ends its loop all the same, and no
 * write can raise SIGPIPE here. */
void cf_tls_free(cf_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

/* ---- non-blocking server side (cofferd's event loop) --------------------------------------- */
cf_err cf_tls_server_new(cf_tls_ctx *c, int fd, cf_tls **out)
{
    *out = NULL;
    cf_tls *t = malloc(sizeof *t);
    SSL *ssl = SSL_new(c->ctx);
    if (!t || !ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        free(t);
        ERR_clear_error();
        return CF_E_NOMEM;
    }
    SSL_set_accept_state(ssl);
    /* the event loop retries a write from its output buffer, which it may have compacted */
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    t->ssl = ssl;
    t->last[0] = 0;
    *out = t;
    return CF_OK;
}

/* What an SSL call that returned rc <= 0 waits for. The error queue is per thread and shared by
 * every connection a worker serves, so it is emptied before each call and after a failure. */
static cf_tls_io io_status(cf_tls *t, int rc)
{
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return CF_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return CF_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return CF_TLS_EOF;
    case SSL_ERROR_SYSCALL:
        if (!ERR_peek_error() && errno == 0) { /* TCP end without close_notify: also an end */
            ERR_clear_error();
            return CF_TLS_EOF;
        }
        /* fall through */
    default:
        note_error(t, rc);
        return CF_TLS_FAILED;
    }
}

cf_tls_io cf_tls_handshake_step(cf_tls *t, char *err, size_t errlen)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return CF_TLS_DONE;
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return CF_TLS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return CF_TLS_WANT_WRITE;
    handshake_reason(t->ssl, rc, "the client", err, errlen);
    return CF_TLS_FAILED;
}

cf_tls_io cf_tls_read_nb(cf_tls *t, void *p, size_t cap, size_t *n)
{
    *n = 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read_ex(t->ssl, p, cap, n);
    return rc == 1 ? CF_TLS_DONE : io_status(t, rc);
}

cf_tls_io cf_tls_write_nb(cf_tls *t, const void *p, size_t len, size_t *n)
{
    *n = 0;
    if (len == 0)
        return CF_TLS_DONE;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write_ex(t->ssl, p, len, n);
    if (rc == 1)
        return CF_TLS_DONE;
    cf_tls_io io = io_status(t, rc);
    return io == CF_TLS_EOF ? CF_TLS_FAILED : io; /* a write cannot end cleanly */
}

size_t cf_tls_pending(const cf_tls *t)
{
    int k = SSL_pending(t->ssl);
    if (k > 0)
        return (size_t)k;
    return SSL_has_pending(t->ssl) ? 1 : 0; /* read ahead, not yet decrypted */
}

cf_err cf_tls_peer_id(const cf_tls *t, uint8_t out[CF_TLS_PEER_ID_LEN])
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (!cert)
        return CF_E_NOT_FOUND;
    unsigned len = 0;
    if (X509_digest(cert, EVP_sha256(), out, &len) != 1 || len != CF_TLS_PEER_ID_LEN) {
        ERR_clear_error();
        return CF_E_CRYPTO;
    }
    return CF_OK;
}
