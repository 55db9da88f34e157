/* sign.c: cf_signer, one key and one parameter set bound to an OpenSSL context that is built once
 * and reused for every signature (the server's hot path).
 *
 * Schemes (PKCS#11 3.0 sec. 2.1.6 - 2.1.14, 2.3.7, 2.3.14):
 *  RSA PKCS#1 v1.5: with a hash, OpenSSL builds the DigestInfo (EVP_PKEY_CTX_set_signature_md);
 *    without, the input is the DigestInfo itself and only type-1 padding is added.
 *  RSA X.509 (raw): no padding, input left-padded with zeros to the modulus length.
 *  RSA PSS: the input is the digest; hash, MGF1 hash and salt length as given.
 *  ECDSA: OpenSSL speaks DER (SEQUENCE of two INTEGERs); PKCS#11 speaks r||s, each left-padded to
 *    the field length. Converted here with the ECDSA_SIG accessors.
 *  EdDSA (Ed25519, pure): the whole message, through an EVP_MD_CTX. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

struct cf_signer {
    cf_pkey *k;            /* one reference held */
    cf_sig_params p;
    bool sign;
    EVP_PKEY_CTX *pctx;    /* RSA and ECDSA */
    EVP_MD_CTX *mctx;      /* EdDSA */
    size_t sig_len;
    size_t in_exact;       /* required input length, 0 when any length up to in_max */
    size_t in_max;
};

/* Validates the parameters against the key; fills the lengths. */
static cf_err check_params(cf_signer *s)
{
    const cf_pkey *k = s->k;
    const cf_sig_params *p = &s->p;
    switch (p->scheme) {
    case CF_SIG_RSA_PKCS1:
    case CF_SIG_RSA_X509:
    case CF_SIG_RSA_PSS:
        CF_ENSURE(k->type == CF_PKEY_RSA, CF_E_KEY_TYPE_INCONSISTENT);
        s->sig_len = k->size;
        break;
    case CF_SIG_ECDSA:
        CF_ENSURE(k->type == CF_PKEY_EC, CF_E_KEY_TYPE_INCONSISTENT);
        s->sig_len = 2 * k->size;
        s->in_max = INT_MAX;
        return CF_OK;
    case CF_SIG_EDDSA:
        CF_ENSURE(k->type == CF_PKEY_ED25519, CF_E_KEY_TYPE_INCONSISTENT);
        s->sig_len = 64;
        s->in_max = SIZE_MAX;
        return CF_OK;
    default:
        return CF_E_MECHANISM_INVALID;
    }
    size_t hlen = cf_hash_size(p->hash);
    if (p->scheme == CF_SIG_RSA_PKCS1) {
        if (p->hash == CF_HASH_NONE) {
            CF_ENSURE(k->size >= 11, CF_E_KEY_SIZE_RANGE);
            s->in_max = k->size - 11;   /* RFC 8017 sec. 9.2: emLen >= tLen + 11 */
        } else {
            CF_ENSURE(cf_crypto_md(p->hash), CF_E_MECHANISM_PARAM_INVALID);
            s->in_exact = hlen;
        }
    } else if (p->scheme == CF_SIG_RSA_X509) {
        s->in_max = k->size;
    } else {
        CF_ENSURE(cf_crypto_md(p->hash) && cf_crypto_md(p->mgf_hash), CF_E_MECHANISM_PARAM_INVALID);
        /* RFC 8017 sec. 9.1.1: emLen = ceil((modBits - 1) / 8) >= hLen + sLen + 2 */
        size_t emlen = (k->bits - 1 + 7) / 8;
        CF_ENSURE(emlen >= hlen + 2 && p->salt_len <= emlen - hlen - 2, CF_E_MECHANISM_PARAM_INVALID);
        s->in_exact = hlen;
    }
    return CF_OK;
}

static cf_err setup_pkey_ctx(cf_signer *s)
{
    const cf_sig_params *p = &s->p;
    s->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->k->pk, NULL);
    CF_ENSURE(s->pctx, CF_E_NOMEM);
    if ((s->sign ? EVP_PKEY_sign_init(s->pctx) : EVP_PKEY_verify_init(s->pctx)) != 1)
        return CF_E_CRYPTO;
    switch (p->scheme) {
    case CF_SIG_RSA_PKCS1:
        CF_ENSURE(EVP_PKEY_CTX_set_rsa_padding(s->pctx, RSA_PKCS1_PADDING) == 1, CF_E_CRYPTO);
        if (p->hash != CF_HASH_NONE)
            CF_ENSURE(EVP_PKEY_CTX_set_signature_md(s->pctx, cf_crypto_md(p->hash)) == 1, CF_E_CRYPTO);
        break;
    case CF_SIG_RSA_X509:
        CF_ENSURE(EVP_PKEY_CTX_set_rsa_padding(s->pctx, RSA_NO_PADDING) == 1, CF_E_CRYPTO);
        break;
    case CF_SIG_RSA_PSS:
        CF_ENSURE(EVP_PKEY_CTX_set_rsa_padding(s->pctx, RSA_PKCS1_PSS_PADDING) == 1, CF_E_CRYPTO);
        CF_ENSURE(EVP_PKEY_CTX_set_signature_md(s->pctx, cf_crypto_md(p->hash)) == 1, CF_E_CRYPTO);
        CF_ENSURE(EVP_PKEY_CTX_set_rsa_mgf1_md(s->pctx, cf_crypto_md(p->mgf_hash)) == 1, CF_E_CRYPTO);
        CF_ENSURE(EVP_PKEY_CTX_set_rsa_pss_saltlen(s->pctx, (int)p->salt_len) == 1,
                  CF_E_MECHANISM_PARAM_INVALID);
        break;
    case CF_SIG_ECDSA:   /* no digest: the input is the hash, truncated by ECDSA itself */
    case CF_SIG_EDDSA:
        break;
    }
    return CF_OK;
}

static cf_err init_md_ctx(cf_signer *s)
{
    int ok = s->sign ? EVP_DigestSignInit(s->mctx, NULL, NULL, NULL, s->k->pk)
                     : EVP_DigestVerifyInit(s->mctx, NULL, NULL, NULL, s->k->pk);
    return ok == 1 ? CF_OK : CF_E_CRYPTO;
}

cf_err cf_signer_new(cf_pkey *k, const cf_sig_params *p, bool sign, cf_signer **out)
{
    CF_ENSURE(k && p && out, CF_E_ARGS);
    *out = NULL;
    cf_signer *s = calloc(1, sizeof *s);
    CF_ENSURE(s, CF_E_NOMEM);
    s->k = cf_pkey_ref(k);
    s->p = *p;
    s->sign = sign;
    cf_err rv;
    CF_GUARD(check_params(s));
    CF_CHECK(!sign || k->priv, CF_E_KEY_TYPE_INCONSISTENT);
    if (p->scheme == CF_SIG_EDDSA) {
        s->mctx = EVP_MD_CTX_new();
        CF_CHECK(s->mctx, CF_E_NOMEM);
        CF_GUARD(init_md_ctx(s));
    } else {
        CF_GUARD(setup_pkey_ctx(s));
    }
    *out = s;
out:
    if (rv != CF_OK) {
        cf_crypto_fail("cf_signer_new", rv);
        cf_signer_free(s);
    }
    return rv;
}

size_t cf_signer_sig_len(const cf_signer *s) { return s->sig_len; }

static cf_err check_input(const cf_signer *s, size_t inlen)
{
    if (s->in_exact)
        CF_ENSURE(inlen == s->in_exact, CF_E_DATA_LEN_RANGE);
    else
        CF_ENSURE(inlen <= s->in_max, CF_E_DATA_LEN_RANGE);
    return CF_OK;
}

/* The raw scheme signs the input as a modulus-length integer. */
static const uint8_t *x509_input(const cf_signer *s, const uint8_t *in, size_t inlen, uint8_t *buf)
{
    size_t m = s->k->size;
    memset(buf, 0, m - inlen);
    if (inlen)
        memcpy(buf + m - inlen, in, inlen);
    return buf;
}

static cf_err ecdsa_der_to_raw(const uint8_t *der, size_t derlen, size_t fl, uint8_t *sig)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    CF_ENSURE(es, CF_E_CRYPTO);
    const BIGNUM *r = NULL, *sv = NULL;
    ECDSA_SIG_get0(es, &r, &sv);
    bool ok = r && sv && BN_bn2binpad(r, sig, (int)fl) == (int)fl
              && BN_bn2binpad(sv, sig + fl, (int)fl) == (int)fl;
    ECDSA_SIG_free(es);
    return ok ? CF_OK : CF_E_CRYPTO;
}

/* r||s to DER into der (which holds at least 2 * fl + 16 bytes); *derlen set. */
static cf_err ecdsa_raw_to_der(const uint8_t *sig, size_t fl, uint8_t *der, size_t *derlen)
{
    cf_err rv = CF_E_NOMEM;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)fl, NULL);
    BIGNUM *sv = BN_bin2bn(sig + fl, (int)fl, NULL);
    CF_CHECK(es && r && sv, CF_E_NOMEM);
    CF_CHECK(ECDSA_SIG_set0(es, r, sv) == 1, CF_E_CRYPTO);
    r = sv = NULL;   /* owned by es now */
    int n = i2d_ECDSA_SIG(es, NULL);
    CF_CHECK(n > 0 && (size_t)n <= *derlen, CF_E_CRYPTO);
    unsigned char *p = der;
    CF_CHECK(i2d_ECDSA_SIG(es, &p) == n, CF_E_CRYPTO);
    *derlen = (size_t)n;
    rv = CF_OK;
out:
    BN_free(r);
    BN_free(sv);
    ECDSA_SIG_free(es);
    return rv;
}

/* DER ECDSA-Sig-Value: SEQUENCE header (<= 3 bytes) and two INTEGERs of up to fl + 1 bytes with
 * headers of <= 3 bytes each. */
#define ECDSA_DER_MAX (2 * 66 + 16)

cf_err cf_signer_sign(cf_signer *s, const uint8_t *in, size_t inlen, uint8_t *sig, size_t *siglen)
{
    CF_ENSURE(s && (in || inlen == 0) && siglen, CF_E_ARGS);
    CF_ENSURE(s->sign, CF_E_OPERATION_NOT_INITIALIZED);
    CF_TRY(check_input(s, inlen));
    if (!sig || *siglen < s->sig_len) {
        *siglen = s->sig_len;
        return CF_E_BUFFER_TOO_SMALL;
    }
    static const uint8_t empty;
    if (!in)
        in = &empty;
    size_t len = s->sig_len;
    switch (s->p.scheme) {
    case CF_SIG_EDDSA:
        if (EVP_DigestSign(s->mctx, sig, &len, in, inlen) != 1) {
            /* Should an OpenSSL release refuse a second one-shot on the same context, start it
             * again and retry once. */
            len = s->sig_len;
            if (init_md_ctx(s) != CF_OK || EVP_DigestSign(s->mctx, sig, &len, in, inlen) != 1)
                return cf_crypto_fail("EVP_DigestSign", CF_E_CRYPTO);
        }
        break;
    case CF_SIG_ECDSA: {
        uint8_t der[ECDSA_DER_MAX];
        size_t derlen = sizeof der;
        if (EVP_PKEY_sign(s->pctx, der, &derlen, in, inlen) != 1)
            return cf_crypto_fail("EVP_PKEY_sign", CF_E_CRYPTO);
        CF_TRY(ecdsa_der_to_raw(der, derlen, s->k->size, sig));
        break;
    }
    case CF_SIG_RSA_X509: {
        uint8_t buf[CF_RSA_MAX_BYTES];
        const uint8_t *m = x509_input(s, in, inlen, buf);
        int ok = EVP_PKEY_sign(s->pctx, sig, &len, m, s->k->size);
        cf_wipe(buf, s->k->size);
        /* The only input a raw private operation refuses is one not below the modulus. */
        if (ok != 1)
            return cf_crypto_fail("EVP_PKEY_sign", CF_E_DATA_INVALID);
        break;
    }
    default:
        if (EVP_PKEY_sign(s->pctx, sig, &len, in, inlen) != 1)
            return cf_crypto_fail("EVP_PKEY_sign", CF_E_CRYPTO);
        break;
    }
    if (len != s->sig_len) {
        cf_wipe(sig, *siglen);
        return CF_E_INTERNAL;
    }
    *siglen = len;
    return CF_OK;
}

cf_err cf_signer_verify(cf_signer *s, const uint8_t *in, size_t inlen, const uint8_t *sig, size_t siglen)
{
    CF_ENSURE(s && (in || inlen == 0) && (sig || siglen == 0), CF_E_ARGS);
    CF_TRY(check_input(s, inlen));
    CF_ENSURE(siglen == s->sig_len, CF_E_SIGNATURE_LEN_RANGE);
    static const uint8_t empty;
    if (!in)
        in = &empty;
    int ok;
    switch (s->p.scheme) {
    case CF_SIG_EDDSA:
        ok = EVP_DigestVerify(s->mctx, sig, siglen, in, inlen);
        if (ok < 0 && init_md_ctx(s) == CF_OK)   /* see cf_signer_sign */
            ok = EVP_DigestVerify(s->mctx, sig, siglen, in, inlen);
        break;
    case CF_SIG_ECDSA: {
        uint8_t der[ECDSA_DER_MAX];
        size_t derlen = sizeof der;
        CF_TRY(ecdsa_raw_to_der(sig, s->k->size, der, &derlen));
        ok = EVP_PKEY_verify(s->pctx, der, derlen, in, inlen);
        break;
    }
    case CF_SIG_RSA_X509: {
        uint8_t buf[CF_RSA_MAX_BYTES];
        const uint8_t *m = x509_input(s, in, inlen, buf);
        ok = EVP_PKEY_verify(s->pctx, sig, siglen, m, s->k->size);
        break;
    }
    default:
        ok = EVP_PKEY_verify(s->pctx, sig, siglen, in, inlen);
        break;
    }
    /* 0 is "does not verify"; a negative result is a signature OpenSSL could not even process
     * (e.g. not below the modulus), which to the caller is the same thing. */
    if (ok != 1)
        return cf_crypto_fail("verify", CF_E_SIGNATURE_INVALID);
    return CF_OK;
}

void cf_signer_free(cf_signer *s)
{
    if (!s)
        return;
    EVP_PKEY_CTX_free(s->pctx);
    EVP_MD_CTX_free(s->mctx);
    cf_pkey_free(s->k);
    free(s);
}
