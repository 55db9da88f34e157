/* ec_key.c: EC (P-256/384/521) and Ed25519 keys to and from their PKCS#11 components: the raw
 * public point (CKA_EC_POINT without its DER wrapping) and the private value (CKA_VALUE). */
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

/* 04||X||Y from the affine coordinates, whatever point format the key was encoded with. */
static cf_err export_point(const cf_pkey *k, cf_buf *point)
{
    BIGNUM *x = NULL, *y = NULL;
    cf_err rv = CF_E_CRYPTO;
    size_t fl = k->size;
    CF_CHECK(EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1, CF_E_CRYPTO);
    CF_CHECK(EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1, CF_E_CRYPTO);
    CF_GUARD(cf_crypto_buf_alloc(point, 1 + 2 * fl));
    point->p[0] = 0x04;
    CF_CHECK(BN_bn2binpad(x, point->p + 1, (int)fl) == (int)fl, CF_E_CRYPTO);
    CF_CHECK(BN_bn2binpad(y, point->p + 1 + fl, (int)fl) == (int)fl, CF_E_CRYPTO);
    rv = CF_OK;
out:
    if (rv != CF_OK)
        cf_buf_free(point);
    BN_free(x);
    BN_free(y);
    return rv;
}

static cf_err export_scalar(const cf_pkey *k, cf_buf *priv)
{
    BIGNUM *d = NULL;
    cf_err rv = CF_E_CRYPTO;
    CF_CHECK(EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1, CF_E_CRYPTO);
    CF_GUARD(cf_crypto_buf_alloc(priv, k->size));
    CF_CHECK(BN_bn2binpad(d, priv->p, (int)k->size) == (int)k->size, CF_E_CRYPTO);
    rv = CF_OK;
out:
    if (rv != CF_OK)
        cf_buf_free(priv);
    BN_clear_free(d);
    return rv;
}

static cf_err export_raw(const cf_pkey *k, bool private, cf_buf *out)
{
    size_t len = 32;
    CF_TRY(cf_crypto_buf_alloc(out, len));
    int ok = private ? EVP_PKEY_get_raw_private_key(k->pk, out->p, &len)
                     : EVP_PKEY_get_raw_public_key(k->pk, out->p, &len);
    if (ok != 1 || len != 32) {
        cf_buf_free(out);
        return CF_E_CRYPTO;
    }
    return CF_OK;
}

cf_err cf_pkey_ec_export(const cf_pkey *k, bool with_private, cf_curve *curve, cf_buf *point, cf_buf *priv)
{
    CF_ENSURE(k, CF_E_ARGS);
    if (point)
        *point = (cf_buf){ 0 };
    if (priv)
        *priv = (cf_buf){ 0 };
    CF_ENSURE(k->type == CF_PKEY_EC || k->type == CF_PKEY_ED25519, CF_E_KEY_TYPE_INCONSISTENT);
    CF_ENSURE(!with_private || k->priv, CF_E_KEY_TYPE_INCONSISTENT);
    if (curve)
        *curve = k->curve;
    cf_err rv = CF_OK;
    bool ed = k->type == CF_PKEY_ED25519;
    if (point)
        CF_GUARD(ed ? export_raw(k, false, point) : export_point(k, point));
    if (with_private && priv)
        CF_GUARD(ed ? export_raw(k, true, priv) : export_scalar(k, priv));
out:
    if (rv != CF_OK) {
        cf_crypto_fail("EC export", rv);
        cf_buf_free(point);
        cf_buf_free(priv);
    }
    return rv;
}

/* ---- import ------------------------------------------------------------------------------ */
static cf_err import_ed25519(const uint8_t *point, size_t pointlen, const uint8_t *priv, size_t privlen,
                             cf_pkey **out)
{
    EVP_PKEY *pk = NULL;
    if (privlen > 0) {
        CF_ENSURE(privlen == 32, CF_E_ATTRIBUTE_VALUE_INVALID);
        pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, privlen);
        if (!pk)
            return cf_crypto_fail("Ed25519 import", CF_E_CRYPTO);
        if (pointlen > 0) {   /* a point given with the key must be the key's own */
            uint8_t pub[32];
            size_t len = sizeof pub;
            if (pointlen != 32 || EVP_PKEY_get_raw_public_key(pk, pub, &len) != 1 || len != 32
                || memcmp(pub, point, 32) != 0) {
                EVP_PKEY_free(pk);
                return cf_crypto_fail("Ed25519 import", CF_E_TEMPLATE_INCONSISTENT);
            }
        }
    } else {
        /* OpenSSL 3.0 does not decode an Ed25519 point at import; a bad one fails every verify. */
        CF_ENSURE(pointlen == 32, CF_E_ATTRIBUTE_VALUE_INVALID);
        pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, point, pointlen);
        if (!pk)
            return cf_crypto_fail("Ed25519 import", CF_E_CRYPTO);
    }
    return cf_crypto_pkey_wrap(pk, out);
}

/* The public point d*G of a private scalar, uncompressed, into pub (1 + 2 * field_len bytes). */
static cf_err derive_point(const cf_curve_info *ci, const BIGNUM *d, uint8_t *pub, size_t publen)
{
    cf_err rv = CF_E_CRYPTO;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(ci->nid);
    EC_POINT *pt = NULL;
    BN_CTX *bctx = BN_CTX_new();
    CF_CHECK(g && bctx, CF_E_NOMEM);
    pt = EC_POINT_new(g);
    CF_CHECK(pt, CF_E_NOMEM);
    CF_CHECK(EC_POINT_mul(g, pt, d, NULL, NULL, bctx) == 1, CF_E_CRYPTO);
    CF_CHECK(EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, publen, bctx) == publen,
             CF_E_CRYPTO);
    rv = CF_OK;
out:
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    BN_CTX_free(bctx);
    return rv;
}

/* 0 < d < n, the order of the group (SEC 1 sec. 3.2.1). */
static bool scalar_in_range(const cf_curve_info *ci, const BIGNUM *d)
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(ci->nid);
    bool ok = g && !BN_is_zero(d) && !BN_is_negative(d) && BN_cmp(d, EC_GROUP_get0_order(g)) < 0;
    EC_GROUP_free(g);
    return ok;
}

cf_err cf_pkey_ec_import(cf_curve c, const uint8_t *point, size_t pointlen,
                         const uint8_t *priv, size_t privlen, cf_pkey **out)
{
    CF_ENSURE(out, CF_E_ARGS);
    *out = NULL;
    if (!point)
        pointlen = 0;
    if (!priv)
        privlen = 0;
    CF_ENSURE(pointlen > 0 || privlen > 0, CF_E_TEMPLATE_INCOMPLETE);
    if (c == CF_CURVE_ED25519)
        return import_ed25519(point, pointlen, priv, privlen, out);
    const cf_curve_info *ci = cf_crypto_curve_info(c);
    CF_ENSURE(ci, CF_E_CURVE_NOT_SUPPORTED);
    size_t fl = ci->field_len, publen = 1 + 2 * fl;
    if (pointlen > 0)
        CF_ENSURE(pointlen == publen && point[0] == 0x04, CF_E_ATTRIBUTE_VALUE_INVALID);
    bool has_priv = privlen > 0;
    /* The scalar may come with or without its leading zeros. */
    while (privlen > 0 && priv[0] == 0) {
        priv++;
        privlen--;
    }
    CF_ENSURE(privlen <= fl, CF_E_ATTRIBUTE_VALUE_INVALID);

    cf_err rv = CF_E_CRYPTO;
    uint8_t pub[1 + 2 * 66];
    BIGNUM *d = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    if (has_priv) {
        d = BN_secure_new();
        CF_CHECK(d, CF_E_NOMEM);
        BN_set_flags(d, BN_FLG_CONSTTIME);
        CF_CHECK(BN_bin2bn(priv, (int)privlen, d), CF_E_NOMEM);
        CF_CHECK(scalar_in_range(ci, d), CF_E_ATTRIBUTE_VALUE_INVALID);
        CF_GUARD(derive_point(ci, d, pub, publen));
        if (pointlen > 0)
            CF_CHECK(memcmp(pub, point, publen) == 0, CF_E_TEMPLATE_INCONSISTENT);
    } else {
        memcpy(pub, point, publen);
    }
    bld = OSSL_PARAM_BLD_new();
    CF_CHECK(bld, CF_E_NOMEM);
    CF_CHECK(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ci->group, 0) == 1, CF_E_NOMEM);
    CF_CHECK(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, publen) == 1, CF_E_NOMEM);
    if (has_priv)
        CF_CHECK(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1, CF_E_NOMEM);
    params = OSSL_PARAM_BLD_to_param(bld);
    CF_CHECK(params, CF_E_NOMEM);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, CF_KEYTYPE_EC, NULL);
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(EVP_PKEY_fromdata_init(ctx) == 1, CF_E_CRYPTO);
    /* fromdata decodes the point with EC_POINT_oct2point, which rejects points off the curve. */
    CF_CHECK(EVP_PKEY_fromdata(ctx, &pk, has_priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) == 1,
             CF_E_ATTRIBUTE_VALUE_INVALID);
    rv = cf_crypto_pkey_wrap(pk, out);
    pk = NULL;
out:
    if (rv != CF_OK)
        cf_crypto_fail("EC import", rv);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return rv;
}
