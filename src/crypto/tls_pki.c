/* tls_pki.c: the quick-start PKI of `coffer tls init` (docs/remote.md, "TLS"): a self-signed CA,
 * a server certificate (subjectAltName: the given name, or localhost and 127.0.0.1) and a client
 * certificate, all ECDSA P-256 with SHA-256, valid for one year. Keys are PKCS#8 PEM files of
 * mode 0600; no file is overwritten. */
#include "crypto/crypto.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VALID_DAYS 365

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v;
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
    if (!e)
        return false;
    bool ok = X509_add_ext(cert, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

/* issuer/ikey NULL: self-signed. kind: 0 CA, 1 server, 2 client. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, int kind, const char *san)
{
    X509 *c = X509_new();
    BIGNUM *bn = BN_new();
    bool ok = c && bn && X509_set_version(c, 2) == 1 && BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) && X509_gmtime_adj(X509_getm_notBefore(c), -300) &&
              X509_gmtime_adj(X509_getm_notAfter(c), (long)VALID_DAYS * 86400) && X509_set_pubkey(c, key) == 1;
    BN_free(bn);
    X509_NAME *n = ok ? X509_get_subject_name(c) : NULL;
    ok = ok && X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"coffer", -1, -1, 0) == 1 &&
         X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) == 1;
    ok = ok && X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n) == 1;
    X509 *is = issuer ? issuer : c;
    ok = ok && add_ext(c, is, NID_subject_key_identifier, "hash");
    if (kind == 0) {
        ok = ok && add_ext(c, is, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
             add_ext(c, is, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        ok = ok && add_ext(c, is, NID_authority_key_identifier, "keyid:always") &&
             add_ext(c, is, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(c, is, NID_key_usage, "critical,digitalSignature") &&
             add_ext(c, is, NID_ext_key_usage, kind == 1 ? "serverAuth" : "clientAuth");
        if (san)
            ok = ok && add_ext(c, is, NID_subject_alt_name, san);
    }
    ok = ok && X509_sign(c, ikey ? ikey : key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

static bool write_pem(const char *dir, const char *name, EVP_PKEY *key, X509 *cert, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, key ? 0600 : 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return false;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1 : PEM_write_X509(f, cert) == 1;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        snprintf(err, errlen, "cannot write %s", path);
    return ok;
}

cf_err cf_tls_pki_init(const char *dir, const char *server_name, char *err, size_t errlen)
{
    static const char *const files[] = { "ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (access(path, F_OK) == 0) {
            snprintf(err, errlen, "%s exists already (nothing was written; use an empty folder)", path);
            return CF_E_ARGS;
        }
    }
    char san[400];
    if (!server_name) {
        snprintf(san, sizeof san, "DNS:localhost,IP:127.0.0.1");
    } else {
        unsigned char a[16];
        bool ip = inet_pton(AF_INET, server_name, a) == 1 || inet_pton(AF_INET6, server_name, a) == 1;
        if (!*server_name || strlen(server_name) > 253 || (strpbrk(server_name, ",:= \t") && !ip)) {
            snprintf(err, errlen, "not a host name or IP address: %s", server_name);
            return CF_E_ARGS;
        }
        snprintf(san, sizeof san, "%s:%s", ip ? "IP" : "DNS", server_name);
    }
    EVP_PKEY *k[3] = { EVP_EC_gen("P-256"), EVP_EC_gen("P-256"), EVP_EC_gen("P-256") };
    X509 *ca = NULL, *srv = NULL, *cli = NULL;
    cf_err rv = CF_E_INTERNAL;
    if (!k[0] || !k[1] || !k[2]) {
        snprintf(err, errlen, "cannot generate P-256 keys");
        goto out;
    }
    ca = make_cert(k[0], "coffer CA", NULL, NULL, 0, NULL);
    srv = ca ? make_cert(k[1], server_name ? server_name : "localhost", ca, k[0], 1, san) : NULL;
    cli = ca ? make_cert(k[2], "coffer client", ca, k[0], 2, NULL) : NULL;
    if (!ca || !srv || !cli) {
        snprintf(err, errlen, "cannot build the certificates");
        goto out;
    }
    rv = CF_E_IO;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    if (write_pem(dir, "ca.key", k[0], NULL, err, errlen) && write_pem(dir, "ca.pem", NULL, ca, err, errlen) &&
        write_pem(dir, "server.key", k[1], NULL, err, errlen) && write_pem(dir, "server.pem", NULL, srv, err, errlen) &&
        write_pem(dir, "client.key", k[2], NULL, err, errlen) && write_pem(dir, "client.pem", NULL, cli, err, errlen))
        rv = CF_OK;
out:
    ERR_clear_error();
    X509_free(ca);
    X509_free(srv);
    X509_free(cli);
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(k[i]);
    return rv;
}
