/* crypto.h: coffer's only door to cryptography. Typed wrappers over OpenSSL 3 (EVP); this folder
 * is the only code that includes OpenSSL headers. No primitive is implemented here by hand: these
 * functions choose algorithms, check every OpenSSL result, convert encodings (DER <-> raw), and
 * wipe what they allocate.
 *
 * Conventions: big-endian unsigned byte strings for integers (as PKCS#11 attributes hold them);
 * output buffers are sized by the caller from the *_len / *_size helpers; *outlen is in/out
 * (capacity in, bytes written out) and CF_E_BUFFER_TOO_SMALL is returned with *outlen set to the
 * size needed. All objects are safe to use from one thread at a time; a cf_pkey may be shared by
 * threads for concurrent sign/verify/decrypt (OpenSSL keys are immutable once built). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

/* ---- hashes ---------------------------------------------------------------------------- */
typedef enum {
    CF_HASH_NONE = 0,
    CF_HASH_SHA1,
    CF_HASH_SHA224,
    CF_HASH_SHA256,
    CF_HASH_SHA384,
    CF_HASH_SHA512,
} cf_hash_alg;

#define CF_HASH_MAX 64
size_t cf_hash_size(cf_hash_alg h);   /* 0 for NONE */
const char *cf_hash_name(cf_hash_alg h);

typedef struct cf_digest cf_digest;
cf_err cf_digest_new(cf_hash_alg h, cf_digest **out);
cf_err cf_digest_update(cf_digest *d, const void *p, size_t n);
/* Writes cf_hash_size bytes; the context cannot be updated afterwards (free it). */
cf_err cf_digest_final(cf_digest *d, uint8_t *out, size_t *outlen);
cf_err cf_digest_dup(const cf_digest *d, cf_digest **out);
void cf_digest_free(cf_digest *d);
cf_err cf_hash(cf_hash_alg h, const void *p, size_t n, uint8_t *out, size_t *outlen);

typedef struct cf_hmac cf_hmac;
cf_err cf_hmac_new(cf_hash_alg h, const uint8_t *key, size_t keylen, cf_hmac **out);
cf_err cf_hmac_update(cf_hmac *m, const void *p, size_t n);
cf_err cf_hmac_final(cf_hmac *m, uint8_t *out, size_t *outlen);
void cf_hmac_free(cf_hmac *m);
cf_err cf_hmac_oneshot(cf_hash_alg h, const uint8_t *key, size_t keylen, const void *p, size_t n,
                       uint8_t *out, size_t *outlen);

/* ---- randomness, comparison, KDF ----------------------------------------------------- */
cf_err cf_random(void *out, size_t n);
/* Constant-time equality of two n-byte strings (CRYPTO_memcmp): true when equal. */
bool cf_ct_equal(const void *a, const void *b, size_t n);
cf_err cf_pbkdf2_sha256(const void *pw, size_t pwlen, const uint8_t *salt, size_t saltlen,
                        uint32_t iterations, uint8_t *out, size_t outlen);

/* ---- AES-GCM one-shot (at-rest protection, PIN-wrapped data keys) ---------------------- */
#define CF_GCM_IV_LEN 12
#define CF_GCM_TAG_LEN 16
/* ct has ptlen bytes; tag has taglen (4..16) bytes. key is 16, 24 or 32 bytes. */
cf_err cf_aes_gcm_seal(const uint8_t *key, size_t keylen, const uint8_t *iv, size_t ivlen,
                       const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
                       uint8_t *ct, uint8_t *tag, size_t taglen);
/* Returns CF_E_ENCRYPTED_DATA_INVALID when the tag does not verify; pt is then zeroed. */
cf_err cf_aes_gcm_open(const uint8_t *key, size_t keylen, const uint8_t *iv, size_t ivlen,
                       const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
                       const uint8_t *tag, size_t taglen, uint8_t *pt);

/* ---- AES streaming (PKCS#11 mechanisms) ------------------------------------------------ */
/* CFB (full-block, 128-bit) and OFB are the stream modes the TPM needs (symmetric objects,
 * parameter encryption; Part 1 section 11.4.6): iv 16 bytes, any length. */
typedef enum { CF_AES_ECB, CF_AES_CBC, CF_AES_CBC_PAD, CF_AES_CTR, CF_AES_GCM, CF_AES_CFB, CF_AES_OFB } cf_aes_mode;
typedef struct cf_cipher cf_cipher;
/* iv: 16 bytes for CBC/CBC_PAD/CTR (the initial counter block), 1..256 bytes for GCM, none for
 * ECB. For GCM, aad is processed at creation and tag_len (bytes, 4..16) fixes the tag size.
 * ECB/CBC without padding require whole blocks overall; update buffers partial blocks. */
cf_err cf_cipher_new(cf_aes_mode mode, bool encrypt, const uint8_t *key, size_t keylen,
                     const uint8_t *iv, size_t ivlen, const uint8_t *aad, size_t aadlen,
                     size_t tag_len, cf_cipher **out);
/* out must hold inlen + 16 bytes; *outlen is set to the bytes produced. */
cf_err cf_cipher_update(cf_cipher *c, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen);
/* out must hold 16 bytes (+ tag_len for GCM encrypt, which appends the tag). For GCM decrypt,
 * call cf_cipher_set_tag first; a bad tag gives CF_E_ENCRYPTED_DATA_INVALID. A bad CBC_PAD
 * padding also gives CF_E_ENCRYPTED_DATA_INVALID; a partial block for ECB/CBC gives
 * CF_E_DATA_LEN_RANGE (encrypt) or CF_E_ENCRYPTED_DATA_LEN_RANGE (decrypt). */
cf_err cf_cipher_final(cf_cipher *c, uint8_t *out, size_t *outlen);
cf_err cf_cipher_set_tag(cf_cipher *c, const uint8_t *tag, size_t taglen);
void cf_cipher_free(cf_cipher *c);

/* ---- AES key wrap (RFC 3394, and RFC 5649 when pad) ------------------------------------ */
/* Wrapped length: inlen + 8 (3394, inlen a multiple of 8, >= 16) or roundup8(inlen) + 8 (5649). */
size_t cf_aes_wrap_len(bool pad, size_t inlen);
cf_err cf_aes_key_wrap(bool pad, const uint8_t *kek, size_t keklen, const uint8_t *in, size_t inlen,
                       uint8_t *out, size_t *outlen);
/* CF_E_WRAPPED_KEY_INVALID on integrity failure, CF_E_WRAPPED_KEY_LEN_RANGE on a bad length. */
cf_err cf_aes_key_unwrap(bool pad, const uint8_t *kek, size_t keklen, const uint8_t *in, size_t inlen,
                         uint8_t *out, size_t *outlen);

/* ---- owned byte buffers (wiped on free) ------------------------------------------------- */
typedef struct {
    uint8_t *p;
    size_t len;
} cf_buf;
void cf_buf_free(cf_buf *b);   /* wipes, frees, zeroes the struct; NULL-safe */

/* ---- asymmetric keys --------------------------------------------------------------------- */
typedef enum { CF_PKEY_RSA = 1, CF_PKEY_EC, CF_PKEY_ED25519 } cf_pkey_type;
typedef enum { CF_CURVE_NONE = 0, CF_CURVE_P256, CF_CURVE_P384, CF_CURVE_P521, CF_CURVE_ED25519 } cf_curve;

/* A reference-counted OpenSSL key (EVP_PKEY), private or public. */
typedef struct cf_pkey cf_pkey;
cf_pkey *cf_pkey_ref(cf_pkey *k);          /* +1, returns k */
void cf_pkey_free(cf_pkey *k);             /* -1; NULL-safe */
cf_pkey_type cf_pkey_get_type(const cf_pkey *k);
unsigned cf_pkey_bits(const cf_pkey *k);   /* RSA modulus bits, curve bits */
bool cf_pkey_is_private(const cf_pkey *k);

/* The DER of CKA_EC_PARAMS (namedCurve OID; for Ed25519 either the OID 1.3.101.112 or the
 * PrintableString "edwards25519") to a curve, and back (the OID form; Ed25519 gives the
 * PrintableString form, as pkcs11-tool and OpenSC expect). */
cf_curve cf_curve_from_params(const uint8_t *der, size_t len);
cf_err cf_curve_to_params(cf_curve c, cf_buf *der);
size_t cf_curve_field_len(cf_curve c);     /* 32, 48, 66, 32 */

cf_err cf_pkey_generate_rsa(unsigned bits, const uint8_t *e, size_t elen, cf_pkey **out);
cf_err cf_pkey_generate_ec(cf_curve c, cf_pkey **out);   /* also CF_CURVE_ED25519 */

typedef struct {
    cf_buf n, e, d, p, q, dp, dq, qinv;    /* d..qinv empty for a public key */
} cf_rsa_parts;
void cf_rsa_parts_free(cf_rsa_parts *r);
/* with_private false exports n and e only. */
cf_err cf_pkey_rsa_export(const cf_pkey *k, bool with_private, cf_rsa_parts *out);
/* Builds a key from parts: public when d is empty; CRT parts are optional (n, e, d suffice). */
cf_err cf_pkey_rsa_import(const cf_rsa_parts *parts, cf_pkey **out);

/* EC and Ed25519: point is the raw public point (uncompressed 04||X||Y for NIST curves, the 32
 * raw bytes for Ed25519); priv is the big-endian scalar (NIST, left-padded to the field length)
 * or the 32-byte raw private key (Ed25519). */
cf_err cf_pkey_ec_export(const cf_pkey *k, bool with_private, cf_curve *curve, cf_buf *point, cf_buf *priv);
/* Either point or priv may be NULL/empty (a private key without its point gets it computed). */
cf_err cf_pkey_ec_import(cf_curve c, const uint8_t *point, size_t pointlen,
                         const uint8_t *priv, size_t privlen, cf_pkey **out);
/* Wraps / unwraps a raw point in the DER OCTET STRING that CKA_EC_POINT holds. unwrap also
 * accepts a bare raw point of the right length (some clients send that). */
cf_err cf_ec_point_to_der(const uint8_t *point, size_t len, cf_buf *der);
cf_err cf_ec_point_from_der(cf_curve c, const uint8_t *der, size_t len, cf_buf *point);

/* SubjectPublicKeyInfo DER of the (public half of the) key: CKA_PUBLIC_KEY_INFO. */
cf_err cf_pkey_spki(const cf_pkey *k, cf_buf *der);
/* PKCS#8 or traditional PEM / DER private key, or a PEM/DER public key or SPKI (for the CLI). */
cf_err cf_pkey_from_pem(const uint8_t *data, size_t len, cf_pkey **out);

/* Unencrypted PKCS#8 PrivateKeyInfo DER (RFC 5208), the bytes C_WrapKey wraps for a private key.
 * to: CF_E_KEY_TYPE_INCONSISTENT for a public key, CF_E_KEY_NOT_WRAPPABLE for an RSA key without
 * its primes (imported from n, e, d alone); der is malloc'd (cf_buf_free wipes it).
 * from: exactly one PrivateKeyInfo, nothing after it; an RSA (1024 to 16384 bits), EC P-256 /
 * P-384 / P-521 (its public point, when present, must match the scalar) or Ed25519 private key.
 * Anything else, including other algorithms and curves, gives CF_E_WRAPPED_KEY_INVALID. */
cf_err cf_pkey_to_pkcs8(const cf_pkey *k, cf_buf *der);
cf_err cf_pkey_from_pkcs8(const uint8_t *der, size_t len, cf_pkey **out);

/* ---- signatures ---------------------------------------------------------------------------- */
typedef enum {
    CF_SIG_RSA_PKCS1,   /* hash == NONE: input is pre-formatted (DigestInfo) data, PKCS#1 type 1 padded;
                           hash set: input is that hash's digest, DigestInfo added */
    CF_SIG_RSA_X509,    /* raw RSA, input left-padded with zeros to the modulus length */
    CF_SIG_RSA_PSS,     /* input is a digest of `hash`; MGF1 with mgf_hash; salt_len bytes */
    CF_SIG_ECDSA,       /* input is a digest (any length, truncated per FIPS 186); output r||s */
    CF_SIG_EDDSA,       /* input is the whole message (PureEdDSA) */
} cf_sig_scheme;

typedef struct {
    cf_sig_scheme scheme;
    cf_hash_alg hash;
    cf_hash_alg mgf_hash;
    size_t salt_len;
} cf_sig_params;

/* A signer/verifier bound to one key and one parameter set, reusable for many signatures: the
 * OpenSSL context is built once (the hot path of a server signing with one key). */
typedef struct cf_signer cf_signer;
cf_err cf_signer_new(cf_pkey *k, const cf_sig_params *p, bool sign, cf_signer **out);
size_t cf_signer_sig_len(const cf_signer *s);   /* exact signature size */
cf_err cf_signer_sign(cf_signer *s, const uint8_t *in, size_t inlen, uint8_t *sig, size_t *siglen);
/* CF_E_SIGNATURE_INVALID or CF_E_SIGNATURE_LEN_RANGE when it does not verify. */
cf_err cf_signer_verify(cf_signer *s, const uint8_t *in, size_t inlen, const uint8_t *sig, size_t siglen);
void cf_signer_free(cf_signer *s);

/* ---- RSA encryption ------------------------------------------------------------------------ */
typedef enum { CF_RSA_ENC_PKCS1, CF_RSA_ENC_OAEP, CF_RSA_ENC_RAW } cf_rsa_enc_mode;
typedef struct {
    cf_rsa_enc_mode mode;
    cf_hash_alg hash, mgf_hash;     /* OAEP */
    const uint8_t *label;           /* OAEP, may be NULL */
    size_t label_len;
} cf_rsa_enc_params;
/* out holds the modulus length. Encrypt: CF_E_DATA_LEN_RANGE when the input is too long.
 * Decrypt: CF_E_ENCRYPTED_DATA_INVALID on bad padding, CF_E_ENCRYPTED_DATA_LEN_RANGE on bad length. */
cf_err cf_rsa_encrypt(cf_pkey *k, const cf_rsa_enc_params *p, const uint8_t *in, size_t inlen,
                      uint8_t *out, size_t *outlen);
cf_err cf_rsa_decrypt(cf_pkey *k, const cf_rsa_enc_params *p, const uint8_t *in, size_t inlen,
                      uint8_t *out, size_t *outlen);

/* ---- RSA keys from primes (TPM primary keys derived from a seed, src/crypto/rsa_prime.c) ---- */
/* True when cand (big-endian) is a probable prime (OpenSSL BN_check_prime: trial division and
 * Miller-Rabin at the FIPS 186-5 error bound) and gcd(cand - 1, e) == 1. */
bool cf_rsa_prime_ok(const uint8_t *cand, size_t len, uint32_t e);
/* Builds the private key (n = p*q, d = e^-1 mod lcm(p-1, q-1), CRT parts) from two primes.
 * CF_E_KEY_SIZE_RANGE when n does not have exactly `bits` bits or p and q are too close
 * (|p - q| <= 2^(bits/2 - 100), FIPS 186-5 A.1.3). */
cf_err cf_pkey_rsa_from_primes(const uint8_t *p, size_t plen, const uint8_t *q, size_t qlen, uint32_t e,
                               unsigned bits, cf_pkey **out);
/* q = n / p (big-endian; src/crypto/rsa_cofactor.c). CF_E_ATTRIBUTE_VALUE_INVALID when p is not a
 * proper factor of n; *qlen is capacity in, bytes written out. */
cf_err cf_rsa_cofactor(const uint8_t *n, size_t nlen, const uint8_t *p, size_t plen, uint8_t *q, size_t *qlen);

/* ---- ECDH ---------------------------------------------------------------------------------- */
/* Raw shared secret (x coordinate, field length) of priv with the peer's raw public point. */
cf_err cf_ecdh(cf_pkey *priv, const uint8_t *peer_point, size_t peerlen, cf_buf *secret);
/* The whole shared point priv * Q as 04||X||Y (TPM ECDH_ZGen / ECDH_KeyGen); point is 04||X||Y.
 * CF_E_MECHANISM_PARAM_INVALID for a point that is malformed or off the curve, CF_E_DATA_INVALID
 * when the product is the point at infinity. */
cf_err cf_ec_point_mul(cf_pkey *priv, const uint8_t *point, size_t pointlen, cf_buf *out);

/* ---- X.509 (the CLI's certificate import) ---------------------------------------------- */
typedef struct {
    cf_buf der, subject, issuer, serial;   /* serial: DER INTEGER (as CKA_SERIAL_NUMBER holds it) */
} cf_x509_info;
cf_err cf_x509_parse(const uint8_t *pem_or_der, size_t len, cf_x509_info *out);
void cf_x509_info_free(cf_x509_info *x);

/* ---- TLS 1.3 with mutual authentication (tls.c; docs/remote.md, "TLS") -------------------- */
/* Paths of PEM files. The server context requires a client certificate chaining to client_ca
 * (SSL_VERIFY_PEER | FAIL_IF_NO_PEER_CERT); the client context verifies the server against ca
 * and may go without cert/key (NULL or ""; such a client is refused by a coffer server). Only
 * TLS 1.3 either way. err gets one sentence on failure. */
typedef struct cf_tls_ctx cf_tls_ctx;
typedef struct cf_tls cf_tls;
cf_err cf_tls_server_ctx_new(const char *cert, const char *key, const char *client_ca, cf_tls_ctx **out,
                             char *err, size_t errlen);
cf_err cf_tls_client_ctx_new(const char *cert, const char *key, const char *ca, cf_tls_ctx **out, char *err,
                             size_t errlen);
void cf_tls_ctx_free(cf_tls_ctx *c);
/* Handshakes on the connected socket fd (blocking; fd stays the caller's). connect checks that
 * the server certificate names host (a DNS name, or an IP address literal). */
cf_err cf_tls_accept(cf_tls_ctx *c, int fd, cf_tls **out, char *err, size_t errlen);
cf_err cf_tls_connect(cf_tls_ctx *c, int fd, const char *host, cf_tls **out, char *err, size_t errlen);
/* Bytes moved (> 0), 0 at a clean end of stream (read), -1 on error. write never raises SIGPIPE. */
long cf_tls_read(cf_tls *t, void *p, size_t n);
long cf_tls_write(cf_tls *t, const void *p, size_t n);
/* OpenSSL's reason for the last failed read or write ("tlsv13 alert certificate required"), or
 * NULL. */
const char *cf_tls_last_error(const cf_tls *t);
/* Frees the connection state (no close_notify); does not close fd. NULL is a no-op. */
void cf_tls_free(cf_tls *t);

/* Non-blocking server side, for cofferd's event loop (docs/remote.md, "What the server does").
 * fd is a non-blocking socket. Every call does at most the socket I/O it needs and says what it
 * waits for: CF_TLS_WANT_READ / CF_TLS_WANT_WRITE (poll the socket for that, then call again with
 * the same arguments: a write must be retried with the same bytes, which may have moved). These
 * calls may raise SIGPIPE on a peer that went away: the caller blocks or ignores it (cofferd's
 * worker threads block it). The blocking calls above stay as they are for the client module. */
typedef enum {
    CF_TLS_DONE = 0,      /* handshake complete, or bytes moved (*n > 0) */
    CF_TLS_WANT_READ,
    CF_TLS_WANT_WRITE,
    CF_TLS_EOF,           /* read: the peer closed the stream (close_notify or TCP end) */
    CF_TLS_FAILED,        /* protocol error or reset: close the connection */
} cf_tls_io;
/* A server connection on fd in the accepting state; no I/O yet (the first handshake step does
 * it). CF_E_NOMEM on failure. */
cf_err cf_tls_server_new(cf_tls_ctx *c, int fd, cf_tls **out);
/* Advances the server handshake: DONE (the client's certificate verified), WANT_*, or FAILED
 * with one sentence in err (as cf_tls_accept's). */
cf_tls_io cf_tls_handshake_step(cf_tls *t, char *err, size_t errlen);
/* Up to cap bytes: DONE with *n > 0, EOF, WANT_*, FAILED. Decrypted bytes may stay buffered
 * inside the TLS layer where the socket no longer shows them: see cf_tls_pending. */
cf_tls_io cf_tls_read_nb(cf_tls *t, void *p, size_t cap, size_t *n);
/* Writes all len bytes (DONE, *n == len), or nothing yet (WANT_*: retry with the same bytes), or
 * FAILED. */
cf_tls_io cf_tls_write_nb(cf_tls *t, const void *p, size_t len, size_t *n);
/* Decrypted bytes already buffered (SSL_pending): readable now without waiting for the socket. */
size_t cf_tls_pending(const cf_tls *t);
/* SHA-256 of the peer certificate's DER (after a completed handshake): the identity of a TLS
 * client. CF_E_NOT_FOUND when the peer sent none. */
#define CF_TLS_PEER_ID_LEN 32
cf_err cf_tls_peer_id(const cf_tls *t, uint8_t out[CF_TLS_PEER_ID_LEN]) CF_WARN_UNUSED;
/* tls_pki.c: writes ca.pem/ca.key, server.pem/server.key, client.pem/client.key into dir (created
 * 0700 if missing; no file may exist yet): P-256, one year, keys mode 0600. The server's
 * subjectAltName is server_name (DNS name or IP address), or localhost and 127.0.0.1 when NULL. */
cf_err cf_tls_pki_init(const char *dir, const char *server_name, char *err, size_t errlen);
