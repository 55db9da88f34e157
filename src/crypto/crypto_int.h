/* crypto_int.h: what the files of src/crypto share and nobody else sees: the body of cf_pkey, the
 * hash and curve tables, and cf_buf helpers. Included only by the .c files of src/crypto. */
#pragma once
#include <stdatomic.h>
#include <openssl/evp.h>
#include "crypto/crypto.h"

/* A cf_pkey owns one EVP_PKEY. Type, curve, size and whether the private half is present are
 * read once when the key is wrapped, so the hot paths never ask OpenSSL again. */
struct cf_pkey {
    atomic_uint refs;
    EVP_PKEY *pk;
    cf_pkey_type type;
    cf_curve curve;     /* CF_CURVE_NONE for RSA */
    unsigned bits;
    size_t size;        /* RSA modulus bytes; field bytes for curves */
    bool priv;
};

/* Largest RSA modulus accepted (bits); bounds the stack buffers of rsa_enc.c and sign.c. */
/* Key type names for EVP_PKEY_CTX_new_from_name, given as OIDs on purpose: OpenSSL 3.0 looks a
 * short name ("RSA", "EC") up in the ENGINE tables first, so in a process where an application
 * made an engine the default (e.g. `openssl -engine pkcs11`, which loads this very module through
 * libp11) our key imports and generation would be routed to that engine's legacy methods, which
 * cannot import from parameters. An OID maps to no legacy type, so OpenSSL goes straight to the
 * provider's key manager. */
#define CF_KEYTYPE_RSA "1.2.840.113549.1.1.1"
#define CF_KEYTYPE_EC "1.2.840.10045.2.1"
#define CF_KEYTYPE_ED25519 "1.3.101.112"

#define CF_RSA_MAX_BITS 16384
#define CF_RSA_MIN_BITS 1024
#define CF_RSA_MAX_BYTES (CF_RSA_MAX_BITS / 8)

/* The EVP_MD for a hash, fetched once per process (implicit fetches cost a store lookup on every
 * use); NULL for NONE or an unknown value. */
const EVP_MD *cf_crypto_md(cf_hash_alg h);

typedef struct {
    cf_curve curve;
    const char *group;     /* OpenSSL group name (OSSL_PKEY_PARAM_GROUP_NAME) */
    int nid;
    unsigned bits;
    size_t field_len;
} cf_curve_info;
/* NULL for CF_CURVE_NONE and for Ed25519 (which has no EC_GROUP). */
const cf_curve_info *cf_crypto_curve_info(cf_curve c);

/* Takes ownership of pk (freed on failure): reads its type, curve and size; keys that coffer does
 * not support (RSA-PSS-only keys, other curves, explicit parameters) give KEY_TYPE_INCONSISTENT. */
cf_err cf_crypto_pkey_wrap(EVP_PKEY *pk, cf_pkey **out);

/* Logs the OpenSSL error queue at debug level, clears it, returns err. */
cf_err cf_crypto_fail(const char *what, cf_err err);

/* cf_buf helpers: malloc'd (so that cf_buf_free can free them); a 0-byte buffer has p == NULL. */
cf_err cf_crypto_buf_alloc(cf_buf *b, size_t n);
cf_err cf_crypto_buf_set(cf_buf *b, const void *p, size_t n);
