/* rsa_enc.c: RSA encryption (PKCS#11 3.0 sec. 2.1.6 - 2.1.8): PKCS#1 v1.5, OAEP (RFC 8017 sec.
 * 7.1) and raw X.509. A context is made per call: unlike signing, this is not a hot path. */
#include <limits.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

/* Largest plaintext for the mode (RFC 8017 sec. 7.1.1 and 7.2.1), 0 when none fits. */
static size_t max_plain(const cf_pkey *k, const cf_rsa_enc_params *p)
{
    size_t m = k->size;
    switch (p->mode) {
    case CF_RSA_ENC_PKCS1: return m > 11 ? m - 11 : 0;
    case CF_RSA_ENC_OAEP: {
        size_t h = cf_hash_size(p->hash);
        return m > 2 * h + 2 ? m - 2 * h - 2 : 0;
    }
    case CF_RSA_ENC_RAW: return m;
    }
    return 0;
}

static cf_err make_ctx(cf_pkey *k, const cf_rsa_enc_params *p, bool enc, EVP_PKEY_CTX **out)
{
    cf_err rv = CF_E_CRYPTO;
    unsigned char *label = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pk, NULL);
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK((enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) == 1, CF_E_CRYPTO);
    switch (p->mode) {
    case CF_RSA_ENC_PKCS1:
        CF_CHECK(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1, CF_E_CRYPTO);
        break;
    case CF_RSA_ENC_RAW:
        CF_CHECK(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) == 1, CF_E_CRYPTO);
        break;
    case CF_RSA_ENC_OAEP:
        CF_CHECK(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1, CF_E_CRYPTO);
        CF_CHECK(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, cf_crypto_md(p->hash)) == 1, CF_E_CRYPTO);
        CF_CHECK(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, cf_crypto_md(p->mgf_hash)) == 1, CF_E_CRYPTO);
        if (p->label_len > 0) {
            /* set0 takes ownership of an OPENSSL_malloc'd label on success. */
            label = OPENSSL_memdup(p->label, p->label_len);
            CF_CHECK(label, CF_E_NOMEM);
            CF_CHECK(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int)p->label_len) == 1, CF_E_CRYPTO);
            label = NULL;
        }
        break;
    }
    *out = ctx;
    ctx = NULL;
    rv = CF_OK;
out:
    OPENSSL_free(label);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

static cf_err check_params(const cf_pkey *k, const cf_rsa_enc_params *p)
{
    CF_ENSURE(k->type == CF_PKEY_RSA, CF_E_KEY_TYPE_INCONSISTENT);
    switch (p->mode) {
    case CF_RSA_ENC_PKCS1:
    case CF_RSA_ENC_RAW:
        return CF_OK;
    case CF_RSA_ENC_OAEP:
        CF_ENSURE(cf_crypto_md(p->hash) && cf_crypto_md(p->mgf_hash), CF_E_MECHANISM_PARAM_INVALID);
        CF_ENSURE((p->label || p->label_len == 0) && p->label_len <= INT_MAX, CF_E_MECHANISM_PARAM_INVALID);
        CF_ENSURE(max_plain(k, p) > 0, CF_E_KEY_SIZE_RANGE);
        return CF_OK;
    }
    return CF_E_MECHANISM_INVALID;
}

cf_err cf_rsa_encrypt(cf_pkey *k, const cf_rsa_enc_params *p, const uint8_t *in, size_t inlen,
                      uint8_t *out, size_t *outlen)
{
    CF_ENSURE(k && p && (in || inlen == 0) && outlen, CF_E_ARGS);
    CF_TRY(check_params(k, p));
    CF_ENSURE(inlen <= max_plain(k, p), CF_E_DATA_LEN_RANGE);
    size_t m = k->size;
    if (!out || *outlen < m) {
        *outlen = m;
        return CF_E_BUFFER_TOO_SMALL;
    }
    static const uint8_t empty;
    uint8_t buf[CF_RSA_MAX_BYTES];
    const uint8_t *msg = in ? in : &empty;
    size_t msglen = inlen;
    if (p->mode == CF_RSA_ENC_RAW) {   /* the data is a big-endian integer: left-pad it */
        memset(buf, 0, m - inlen);
        if (inlen)
            memcpy(buf + m - inlen, in, inlen);
        msg = buf;
        msglen = m;
    }
    EVP_PKEY_CTX *ctx = NULL;
    cf_err rv;
    size_t len = m;
    CF_GUARD(make_ctx(k, p, true, &ctx));
    if (EVP_PKEY_encrypt(ctx, out, &len, msg, msglen) != 1) {
        /* Lengths were checked above: what remains is raw input not below the modulus. */
        rv = p->mode == CF_RSA_ENC_RAW ? CF_E_DATA_INVALID : CF_E_CRYPTO;
        goto out;
    }
    CF_CHECK(len == m, CF_E_INTERNAL);
    *outlen = len;
out:
    if (rv != CF_OK)
        cf_crypto_fail("RSA encrypt", rv);
    if (msg == buf)
        cf_wipe(buf, m);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

cf_err cf_rsa_decrypt(cf_pkey *k, const cf_rsa_enc_params *p, const uint8_t *in, size_t inlen,
                      uint8_t *out, size_t *outlen)
{
    CF_ENSURE(k && p && in && outlen, CF_E_ARGS);
    CF_TRY(check_params(k, p));
    CF_ENSURE(k->priv, CF_E_KEY_TYPE_INCONSISTENT);
    size_t m = k->size;
    CF_ENSURE(inlen == m, CF_E_ENCRYPTED_DATA_LEN_RANGE);
    /* The plaintext length is known only after unpadding: decrypt into a wiped stack buffer. */
    uint8_t buf[CF_RSA_MAX_BYTES];
    size_t len = m;
    EVP_PKEY_CTX *ctx = NULL;
    cf_err rv;
    CF_GUARD(make_ctx(k, p, false, &ctx));
    CF_CHECK(EVP_PKEY_decrypt(ctx, buf, &len, in, inlen) == 1 && len <= m, CF_E_ENCRYPTED_DATA_INVALID);
    if (!out || *outlen < len) {
        *outlen = len;
        rv = CF_E_BUFFER_TOO_SMALL;
        goto out;
    }
    if (len)
        memcpy(out, buf, len);
    *outlen = len;
out:
    if (rv != CF_OK && rv != CF_E_BUFFER_TOO_SMALL)
        cf_crypto_fail("RSA decrypt", rv);
    cf_wipe(buf, sizeof buf);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}
