/* ec_mul.c: the full point d*Q of a private scalar and a peer's point (the TPM's ECDH_ZGen and
 * ECDH_KeyGen return both coordinates, Part 3 sections 14.4 and 14.5; cf_ecdh gives x only). */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

cf_err cf_ec_point_mul(cf_pkey *priv, const uint8_t *point, size_t pointlen, cf_buf *out)
{
    CF_ENSURE(priv && point && out, CF_E_ARGS);
    *out = (cf_buf){ 0 };
    CF_ENSURE(priv->type == CF_PKEY_EC && priv->priv, CF_E_KEY_TYPE_INCONSISTENT);
    const cf_curve_info *ci = cf_crypto_curve_info(priv->curve);
    CF_ENSURE(ci, CF_E_CURVE_NOT_SUPPORTED);
    CF_ENSURE(pointlen == 1 + 2 * ci->field_len && point[0] == 0x04, CF_E_MECHANISM_PARAM_INVALID);

    cf_err rv = CF_E_CRYPTO;
    EC_GROUP *g = NULL;
    EC_POINT *q = NULL, *r = NULL;
    BIGNUM *d = NULL;
    BN_CTX *bn = BN_CTX_secure_new();
    CF_CHECK(bn, CF_E_NOMEM);
    g = EC_GROUP_new_by_curve_name(ci->nid);
    CF_CHECK(g, CF_E_CRYPTO);
    q = EC_POINT_new(g);
    r = EC_POINT_new(g);
    CF_CHECK(q && r, CF_E_NOMEM);
    /* oct2point checks that the point lies on the curve */
    CF_CHECK(EC_POINT_oct2point(g, q, point, pointlen, bn) == 1, CF_E_MECHANISM_PARAM_INVALID);
    CF_CHECK(EVP_PKEY_get_bn_param(priv->pk, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1, CF_E_CRYPTO);
    BN_set_flags(d, BN_FLG_CONSTTIME);
    CF_CHECK(EC_POINT_mul(g, r, NULL, q, d, bn) == 1, CF_E_CRYPTO);
    CF_CHECK(!EC_POINT_is_at_infinity(g, r), CF_E_DATA_INVALID);
    CF_GUARD(cf_crypto_buf_alloc(out, pointlen));
    CF_CHECK(EC_POINT_point2oct(g, r, POINT_CONVERSION_UNCOMPRESSED, out->p, out->len, bn) == pointlen, CF_E_CRYPTO);
    rv = CF_OK;
out:
    if (rv != CF_OK) {
        cf_crypto_fail("EC point multiply", rv);
        cf_buf_free(out);
    }
    BN_clear_free(d);
    EC_POINT_free(q);
    EC_POINT_clear_free(r);
    EC_GROUP_free(g);
    BN_CTX_free(bn);
    return rv;
}
