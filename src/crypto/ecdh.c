/* ecdh.c: ECDH (SP 800-56A sec. 5.7.1.2 via OpenSSL), PKCS#11 CKM_ECDH1_DERIVE with CKD_NULL:
 * the raw x coordinate of the shared point. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

/* The peer's point as a public key on our curve; fromdata rejects points off the curve. */
static cf_err peer_key(const cf_curve_info *ci, const uint8_t *point, size_t len, EVP_PKEY **out)
{
    cf_err rv = CF_E_MECHANISM_PARAM_INVALID;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    CF_CHECK(bld, CF_E_NOMEM);
    CF_CHECK(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ci->group, 0) == 1, CF_E_NOMEM);
    CF_CHECK(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, len) == 1, CF_E_NOMEM);
    params = OSSL_PARAM_BLD_to_param(bld);
    CF_CHECK(params, CF_E_NOMEM);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, CF_KEYTYPE_EC, NULL);
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(EVP_PKEY_fromdata_init(ctx) == 1, CF_E_CRYPTO);
    CF_CHECK(EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1, CF_E_MECHANISM_PARAM_INVALID);
    rv = CF_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return rv;
}

cf_err cf_ecdh(cf_pkey *priv, const uint8_t *peer_point, size_t peerlen, cf_buf *secret)
{
    CF_ENSURE(priv && peer_point && secret, CF_E_ARGS);
    *secret = (cf_buf){ 0 };
    CF_ENSURE(priv->type == CF_PKEY_EC && priv->priv, CF_E_KEY_TYPE_INCONSISTENT);
    const cf_curve_info *ci = cf_crypto_curve_info(priv->curve);
    CF_ENSURE(ci, CF_E_CURVE_NOT_SUPPORTED);
    /* PKCS#11 lets clients send the point raw or DER-wrapped; take both. */
    cf_buf pt = { 0 };
    cf_err rv = cf_ec_point_from_der(priv->curve, peer_point, peerlen, &pt);
    if (rv == CF_E_ATTRIBUTE_VALUE_INVALID)
        rv = CF_E_MECHANISM_PARAM_INVALID;
    CF_TRY(rv);

    EVP_PKEY *peer = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t len = ci->field_len;
    CF_GUARD(peer_key(ci, pt.p, pt.len, &peer));
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv->pk, NULL);
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(EVP_PKEY_derive_init(ctx) == 1, CF_E_CRYPTO);
    CF_CHECK(EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) == 1, CF_E_MECHANISM_PARAM_INVALID);
    CF_GUARD(cf_crypto_buf_alloc(secret, len));
    CF_CHECK(EVP_PKEY_derive(ctx, secret->p, &len) == 1 && len == ci->field_len, CF_E_CRYPTO);
out:
    if (rv != CF_OK) {
        cf_crypto_fail("ECDH", rv);
        cf_buf_free(secret);
    }
    cf_buf_free(&pt);
    EVP_PKEY_free(peer);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}
