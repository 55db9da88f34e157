/* pkey.c: the reference-counted key (cf_pkey): wrapping an EVP_PKEY, key generation, the
 * SubjectPublicKeyInfo and PEM/DER import. RSA and EC component import/export live in rsa_key.c
 * and ec_key.c. */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

/* ---- wrapping ---------------------------------------------------------------------------- */
static bool has_bn_param(const EVP_PKEY *pk, const char *name)
{
    BIGNUM *bn = NULL;
    bool ok = EVP_PKEY_get_bn_param(pk, name, &bn) == 1 && bn != NULL;
    BN_clear_free(bn);
    return ok;
}

static cf_curve curve_of(const EVP_PKEY *pk)
{
    char name[64];
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1)
        return CF_CURVE_NONE;   /* explicit parameters: not supported */
    int nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(name);
    for (cf_curve c = CF_CURVE_P256; c <= CF_CURVE_P521; c++) {
        const cf_curve_info *ci = cf_crypto_curve_info(c);
        if (ci && ci->nid == nid)
            return c;
    }
    return CF_CURVE_NONE;
}

cf_err cf_crypto_pkey_wrap(EVP_PKEY *pk, cf_pkey **out)
{
    cf_err rv = CF_E_KEY_TYPE_INCONSISTENT;
    cf_pkey *k = NULL;
    *out = NULL;
    CF_CHECK(pk, CF_E_ARGS);
    k = calloc(1, sizeof *k);
    CF_CHECK(k, CF_E_NOMEM);
    if (EVP_PKEY_is_a(pk, "RSA")) {
        k->type = CF_PKEY_RSA;
        int bits = EVP_PKEY_get_bits(pk);
        CF_CHECK(bits >= 512 && bits <= CF_RSA_MAX_BITS, CF_E_KEY_SIZE_RANGE);
        k->bits = (unsigned)bits;
        k->size = ((size_t)bits + 7) / 8;
        k->priv = has_bn_param(pk, OSSL_PKEY_PARAM_RSA_D);
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        k->type = CF_PKEY_EC;
        k->curve = curve_of(pk);
        const cf_curve_info *ci = cf_crypto_curve_info(k->curve);
        CF_CHECK(ci, CF_E_CURVE_NOT_SUPPORTED);
        k->bits = ci->bits;
        k->size = ci->field_len;
        k->priv = has_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY);
    } else if (EVP_PKEY_is_a(pk, "ED25519")) {
        size_t len = 0;
        k->type = CF_PKEY_ED25519;
        k->curve = CF_CURVE_ED25519;
        k->bits = 255;
        k->size = 32;
        k->priv = EVP_PKEY_get_raw_private_key(pk, NULL, &len) == 1 && len == 32;
    } else {
        goto out;   /* RSA-PSS-restricted keys, X25519, DSA, ... */
    }
    ERR_clear_error();   /* the probes above leave entries when a part is absent */
    atomic_init(&k->refs, 1);
    k->pk = pk;
    *out = k;
    return CF_OK;
out:
    ERR_clear_error();
    EVP_PKEY_free(pk);
    free(k);
    return rv;
}

cf_pkey *cf_pkey_ref(cf_pkey *k)
{
    if (k)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void cf_pkey_free(cf_pkey *k)
{
    if (!k)
        return;
    if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    EVP_PKEY_free(k->pk);   /* private parts live in OpenSSL's (cleansed) BIGNUMs */
    free(k);
}

cf_pkey_type cf_pkey_get_type(const cf_pkey *k) { return k->type; }
unsigned cf_pkey_bits(const cf_pkey *k) { return k->bits; }
bool cf_pkey_is_private(const cf_pkey *k) { return k->priv; }

/* ---- generation -------------------------------------------------------------------------- */
static cf_err generate(EVP_PKEY_CTX *ctx, cf_pkey **out)
{
    EVP_PKEY *pk = NULL;
    if (EVP_PKEY_generate(ctx, &pk) != 1)
        return cf_crypto_fail("EVP_PKEY_generate", CF_E_CRYPTO);
    return cf_crypto_pkey_wrap(pk, out);
}

cf_err cf_pkey_generate_rsa(unsigned bits, const uint8_t *e, size_t elen, cf_pkey **out)
{
    CF_ENSURE(out && (e || elen == 0), CF_E_ARGS);
    *out = NULL;
    CF_ENSURE(bits >= CF_RSA_MIN_BITS && bits <= CF_RSA_MAX_BITS, CF_E_KEY_SIZE_RANGE);
    /* Public exponent: default 65537; otherwise odd, >= 3, at most 64 bits (OpenSSL's bound for
     * large moduli). Leading zero bytes are allowed, as in any PKCS#11 big integer. */
    while (elen > 0 && e[0] == 0) {
        e++;
        elen--;
    }
    static const uint8_t f4[] = { 0x01, 0x00, 0x01 };
    if (elen == 0 && e == NULL) {
        e = f4;
        elen = sizeof f4;
    }
    CF_ENSURE(elen >= 1 && elen <= 8 && (e[elen - 1] & 1) && !(elen == 1 && e[0] < 3),
              CF_E_ATTRIBUTE_VALUE_INVALID);

    cf_err rv = CF_E_CRYPTO;
    BIGNUM *bn = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, CF_KEYTYPE_RSA, NULL);
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(EVP_PKEY_keygen_init(ctx) == 1, CF_E_CRYPTO);
    CF_CHECK(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1, CF_E_KEY_SIZE_RANGE);
    bn = BN_bin2bn(e, (int)elen, NULL);
    CF_CHECK(bn, CF_E_NOMEM);
    CF_CHECK(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, bn) == 1, CF_E_ATTRIBUTE_VALUE_INVALID);
    CF_GUARD(generate(ctx, out));
out:
    if (rv != CF_OK)
        cf_crypto_fail("RSA keygen", rv);
    BN_free(bn);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

cf_err cf_pkey_generate_ec(cf_curve c, cf_pkey **out)
{
    CF_ENSURE(out, CF_E_ARGS);
    *out = NULL;
    const cf_curve_info *ci = cf_crypto_curve_info(c);
    CF_ENSURE(ci || c == CF_CURVE_ED25519, CF_E_CURVE_NOT_SUPPORTED);
    cf_err rv = CF_E_CRYPTO;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, ci ? CF_KEYTYPE_EC : CF_KEYTYPE_ED25519, NULL);
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(EVP_PKEY_keygen_init(ctx) == 1, CF_E_CRYPTO);
    if (ci)
        CF_CHECK(EVP_PKEY_CTX_set_group_name(ctx, ci->group) == 1, CF_E_CRYPTO);
    CF_GUARD(generate(ctx, out));
out:
    if (rv != CF_OK)
        cf_crypto_fail("EC keygen", rv);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

/* ---- encodings --------------------------------------------------------------------------- */
cf_err cf_pkey_spki(const cf_pkey *k, cf_buf *der)
{
    CF_ENSURE(k && der, CF_E_ARGS);
    der->p = NULL;
    der->len = 0;
    int n = i2d_PUBKEY(k->pk, NULL);
    if (n <= 0)
        return cf_crypto_fail("i2d_PUBKEY", CF_E_CRYPTO);
    CF_TRY(cf_crypto_buf_alloc(der, (size_t)n));
    unsigned char *p = der->p;
    if (i2d_PUBKEY(k->pk, &p) != n) {
        cf_buf_free(der);
        return cf_crypto_fail("i2d_PUBKEY", CF_E_CRYPTO);
    }
    return CF_OK;
}

cf_err cf_pkey_from_pem(const uint8_t *data, size_t len, cf_pkey **out)
{
    CF_ENSURE(out && data && len > 0, CF_E_ARGS);
    *out = NULL;
    cf_err rv = CF_E_FORMAT;
    EVP_PKEY *pk = NULL;
    const unsigned char *p = data;
    size_t left = len;
    /* Any input type (PEM or DER), any structure (PKCS#8, traditional, SPKI, PKCS#1 public).
     * No passphrase source is given, so an encrypted key fails instead of prompting on a tty. */
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pk, NULL, NULL, NULL, 0, NULL, NULL);
    CF_CHECK(dctx, CF_E_NOMEM);
    CF_CHECK(OSSL_DECODER_from_data(dctx, &p, &left) == 1 && pk, CF_E_FORMAT);
    rv = cf_crypto_pkey_wrap(pk, out);
    pk = NULL;
    if (rv == CF_E_CURVE_NOT_SUPPORTED)
        rv = CF_E_KEY_TYPE_INCONSISTENT;
out:
    if (rv != CF_OK)
        cf_crypto_fail("decode key", rv);
    EVP_PKEY_free(pk);
    OSSL_DECODER_CTX_free(dctx);
    return rv;
}
