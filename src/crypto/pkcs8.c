/* pkcs8.c: a private key to and from an unencrypted PKCS#8 PrivateKeyInfo (RFC 5208 sec. 5), the
 * encoding C_WrapKey / C_UnwrapKey carry a private key in (PKCS#11 3.0 sec. 5.18, as SoftHSM2
 * does). The DER passes through OpenSSL's encoder and decoder only; every copy of it that
 * coffer or OpenSSL hands back is wiped before it is freed. */
#include <limits.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "crypto/crypto_int.h"

/* RSAPrivateKey (RFC 8017 A.1.2) has no optional fields: a key imported from n, e and d alone
 * (no primes) cannot be written. */
static bool rsa_has_primes(const EVP_PKEY *pk)
{
    BIGNUM *p = NULL;
    bool ok = EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR1, &p) == 1 && p != NULL;
    BN_clear_free(p);
    ERR_clear_error();
    return ok;
}

cf_err cf_pkey_to_pkcs8(const cf_pkey *k, cf_buf *der)
{
    CF_ENSURE(k && der, CF_E_ARGS);
    der->p = NULL;
    der->len = 0;
    CF_ENSURE(k->priv, CF_E_KEY_TYPE_INCONSISTENT);
    CF_ENSURE(k->type != CF_PKEY_RSA || rsa_has_primes(k->pk), CF_E_KEY_NOT_WRAPPABLE);
    cf_err rv = CF_E_CRYPTO;
    unsigned char *data = NULL;
    size_t len = 0;
    OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(k->pk, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0, CF_E_CRYPTO);
    CF_CHECK(OSSL_ENCODER_to_data(ctx, &data, &len) == 1 && data && len > 0, CF_E_CRYPTO);
    CF_GUARD(cf_crypto_buf_set(der, data, len));
out:
    if (rv != CF_OK)
        cf_crypto_fail("PKCS#8 encode", rv);
    OPENSSL_clear_free(data, len);
    OSSL_ENCODER_CTX_free(ctx);
    return rv;
}

/* Whether der is exactly one PrivateKeyInfo: nothing before or after it, not the encrypted form
 * (the decoder alone would stop at the end of the first structure). */
static bool one_private_key_info(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    bool ok = p8 != NULL && p == der + len;
    PKCS8_PRIV_KEY_INFO_free(p8);   /* clears the private key octets */
    return ok;
}

cf_err cf_pkey_from_pkcs8(const uint8_t *der, size_t len, cf_pkey **out)
{
    CF_ENSURE(out && (der || len == 0), CF_E_ARGS);
    *out = NULL;
    CF_ENSURE(len > 0 && len <= LONG_MAX, CF_E_WRAPPED_KEY_INVALID);
    cf_err rv = CF_E_WRAPPED_KEY_INVALID;
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *check = NULL;
    cf_pkey *k = NULL;
    const unsigned char *p = der;
    size_t left = len;
    OSSL_DECODER_CTX *dctx = NULL;
    CF_CHECK(one_private_key_info(der, len), CF_E_WRAPPED_KEY_INVALID);
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pk, "DER", "PrivateKeyInfo", NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
    CF_CHECK(dctx, CF_E_NOMEM);
    CF_CHECK(OSSL_DECODER_from_data(dctx, &p, &left) == 1 && pk && left == 0, CF_E_WRAPPED_KEY_INVALID);
    /* RSA, EC on the three NIST curves, Ed25519 (cf_crypto_pkey_wrap); a private half; RSA from
     * 1024 bits as for any key made elsewhere. */
    rv = cf_crypto_pkey_wrap(pk, &k);
    pk = NULL;
    CF_CHECK(rv != CF_E_NOMEM, CF_E_NOMEM);
    CF_CHECK(rv == CF_OK && k->priv, CF_E_WRAPPED_KEY_INVALID);
    CF_CHECK(k->type != CF_PKEY_RSA || k->bits >= CF_RSA_MIN_BITS, CF_E_WRAPPED_KEY_INVALID);
    if (k->type == CF_PKEY_EC) {
        /* ECPrivateKey may carry a public point of its own: it must be the scalar's, since the
         * object's CKA_PUBLIC_KEY_INFO and CKA_EC_POINT are read from it. (An RSA key's public
         * attributes are its own n and e; Ed25519's public half is derived from the seed.) */
        check = EVP_PKEY_CTX_new_from_pkey(NULL, k->pk, NULL);
        CF_CHECK(check, CF_E_NOMEM);
        CF_CHECK(EVP_PKEY_pairwise_check(check) == 1, CF_E_WRAPPED_KEY_INVALID);
    }
    *out = k;
    k = NULL;
    rv = CF_OK;
out:
    if (rv != CF_OK)
        cf_crypto_fail("PKCS#8 decode", rv);
    ERR_clear_error();
    cf_pkey_free(k);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_free(pk);
    OSSL_DECODER_CTX_free(dctx);
    return rv;
}
