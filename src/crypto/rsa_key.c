/* rsa_key.c: RSA keys to and from their PKCS#11 components (CKA_MODULUS ... CKA_COEFFICIENT), as
 * big-endian unsigned integers, through OSSL_PARAM (EVP_PKEY_get_bn_param / EVP_PKEY_fromdata). */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

void cf_rsa_parts_free(cf_rsa_parts *r)
{
    if (!r)
        return;
    cf_buf *all[] = { &r->n, &r->e, &r->d, &r->p, &r->q, &r->dp, &r->dq, &r->qinv };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cf_buf_free(all[i]);
}

static cf_err get_part(const EVP_PKEY *pk, const char *name, bool optional, cf_buf *out)
{
    BIGNUM *bn = NULL;
    cf_err rv = CF_OK;
    out->p = NULL;
    out->len = 0;
    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1 || !bn) {
        /* Keys built from n, e, d alone have no CRT parts: those come out empty. */
        rv = optional ? CF_OK : CF_E_CRYPTO;
        goto out;
    }
    CF_GUARD(cf_crypto_buf_alloc(out, (size_t)BN_num_bytes(bn)));
    if (out->len > 0 && BN_bn2bin(bn, out->p) != (int)out->len) {
        cf_buf_free(out);
        rv = CF_E_CRYPTO;
    }
out:
    BN_clear_free(bn);
    return rv;
}

cf_err cf_pkey_rsa_export(const cf_pkey *k, bool with_private, cf_rsa_parts *out)
{
    CF_ENSURE(k && out, CF_E_ARGS);
    *out = (cf_rsa_parts){ 0 };
    CF_ENSURE(k->type == CF_PKEY_RSA, CF_E_KEY_TYPE_INCONSISTENT);
    CF_ENSURE(!with_private || k->priv, CF_E_KEY_TYPE_INCONSISTENT);
    cf_err rv;
    CF_GUARD(get_part(k->pk, OSSL_PKEY_PARAM_RSA_N, false, &out->n));
    CF_GUARD(get_part(k->pk, OSSL_PKEY_PARAM_RSA_E, false, &out->e));
    if (with_private) {
        CF_GUARD(get_part(k->pk, OSSL_PKEY_PARAM_RSA_D, false, &out->d));
        CF_GUARD(get_part(k->pk, OSSL_PKEY_PARAM_RSA_FACTOR1, true, &out->p));
        CF_GUARD(get_part(k->pk, OSSL_PKEY_PARAM_RSA_FACTOR2, true, &out->q));
        CF_GUARD(get_part(k->pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, true, &out->dp));
        CF_GUARD(get_part(k->pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, true, &out->dq));
        CF_GUARD(get_part(k->pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, true, &out->qinv));
    }
out:
    if (rv != CF_OK) {
        cf_crypto_fail("RSA export", rv);
        cf_rsa_parts_free(out);
    }
    return rv;
}

static size_t stripped_len(const cf_buf *b)
{
    size_t i = 0;
    while (i < b->len && b->p[i] == 0)
        i++;
    return b->len - i;
}

/* Pushes one component; secret ones go through a secure-heap BIGNUM so that the OSSL_PARAM copy
 * is made in secure memory too. Every BIGNUM made is kept in bns[] for freeing. */
static bool push(OSSL_PARAM_BLD *bld, const char *name, const cf_buf *b, bool secret, BIGNUM **bns, size_t *nb)
{
    BIGNUM *bn = secret ? BN_secure_new() : BN_new();
    if (!bn)
        return false;
    bns[(*nb)++] = bn;
    if (!BN_bin2bn(b->p, (int)b->len, bn))
        return false;
    return OSSL_PARAM_BLD_push_BN(bld, name, bn) == 1;
}

cf_err cf_pkey_rsa_import(const cf_rsa_parts *parts, cf_pkey **out)
{
    CF_ENSURE(parts && out, CF_E_ARGS);
    *out = NULL;
    const cf_buf *crt[] = { &parts->p, &parts->q, &parts->dp, &parts->dq, &parts->qinv };
    static const char *const crt_names[] = {
        OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    };
    CF_ENSURE(stripped_len(&parts->n) > 0 && stripped_len(&parts->e) > 0, CF_E_TEMPLATE_INCOMPLETE);
    size_t nbits = stripped_len(&parts->n) * 8;
    CF_ENSURE(nbits <= CF_RSA_MAX_BITS, CF_E_KEY_SIZE_RANGE);
    const cf_buf *all[] = { &parts->n, &parts->e, &parts->d, crt[0], crt[1], crt[2], crt[3], crt[4] };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        CF_ENSURE((all[i]->p || all[i]->len == 0) && all[i]->len <= CF_RSA_MAX_BYTES * 2,
                  CF_E_ATTRIBUTE_VALUE_INVALID);
    bool priv = parts->d.len > 0;
    /* OpenSSL takes the CRT set whole or not at all (ossl_rsa_set0_all_params). */
    size_t ncrt = 0;
    for (size_t i = 0; i < 5; i++)
        ncrt += crt[i]->len > 0;
    bool with_crt = priv && ncrt == 5;

    cf_err rv = CF_E_CRYPTO;
    BIGNUM *bns[8] = { 0 };
    size_t nb = 0;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    CF_CHECK(bld, CF_E_NOMEM);
    CF_CHECK(push(bld, OSSL_PKEY_PARAM_RSA_N, &parts->n, false, bns, &nb), CF_E_NOMEM);
    CF_CHECK(push(bld, OSSL_PKEY_PARAM_RSA_E, &parts->e, false, bns, &nb), CF_E_NOMEM);
    if (priv)
        CF_CHECK(push(bld, OSSL_PKEY_PARAM_RSA_D, &parts->d, true, bns, &nb), CF_E_NOMEM);
    for (size_t i = 0; with_crt && i < 5; i++)
        CF_CHECK(push(bld, crt_names[i], crt[i], true, bns, &nb), CF_E_NOMEM);
    params = OSSL_PARAM_BLD_to_param(bld);
    CF_CHECK(params, CF_E_NOMEM);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, CF_KEYTYPE_RSA, NULL);
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(EVP_PKEY_fromdata_init(ctx) == 1, CF_E_CRYPTO);
    CF_CHECK(EVP_PKEY_fromdata(ctx, &pk, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) == 1,
             CF_E_ATTRIBUTE_VALUE_INVALID);
    rv = cf_crypto_pkey_wrap(pk, out);
    pk = NULL;
out:
    if (rv != CF_OK)
        cf_crypto_fail("RSA import", rv);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);   /* OSSL_PARAM_BLD_to_param puts secure BNs in the secure heap */
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < nb; i++)
        BN_clear_free(bns[i]);
    return rv;
}
