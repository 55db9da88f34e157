/* rsa_prime.c: RSA keys built from given primes, for the TPM's primary keys, which are derived
 * from a hierarchy seed (TPM 2.0 Part 1 section 26): the TPM draws prime candidates from a KDFa
 * stream, this file says which candidates are primes and assembles the key from the two it keeps.
 * Primality and all big-number arithmetic are OpenSSL's (BN_check_prime, BN_mod_inverse). */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include "crypto/crypto_int.h"

bool cf_rsa_prime_ok(const uint8_t *cand, size_t len, uint32_t e)
{
    if (!cand || len == 0 || len > CF_RSA_MAX_BYTES || e < 3 || (e & 1) == 0)
        return false;
    bool ok = false;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = BN_bin2bn(cand, (int)len, NULL), *p1 = BN_new(), *be = BN_new(), *g = BN_new();
    if (!ctx || !p || !p1 || !be || !g)
        goto out;
    /* gcd(p-1, e) == 1 first: it is cheap (e need not be prime) */
    if (!BN_copy(p1, p) || !BN_sub_word(p1, 1) || !BN_set_word(be, e) || !BN_gcd(g, p1, be, ctx))
        goto out;
    if (!BN_is_one(g))
        goto out;
    ok = BN_check_prime(p, ctx, NULL) == 1;
out:
    BN_clear_free(p);
    BN_clear_free(p1);
    BN_free(be);
    BN_free(g);
    BN_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

cf_err cf_pkey_rsa_from_primes(const uint8_t *pb, size_t plen, const uint8_t *qb, size_t qlen, uint32_t e,
                               unsigned bits, cf_pkey **out)
{
    CF_ENSURE(pb && qb && out && plen && qlen && plen <= CF_RSA_MAX_BYTES && qlen <= CF_RSA_MAX_BYTES,
              CF_E_ARGS);
    CF_ENSURE(bits >= CF_RSA_MIN_BITS && bits <= CF_RSA_MAX_BITS, CF_E_KEY_SIZE_RANGE);
    *out = NULL;
    cf_err rv = CF_E_NOMEM;
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *p = BN_secure_new(), *q = BN_secure_new(), *n = BN_new(), *be = BN_new(), *d = BN_secure_new();
    BIGNUM *p1 = BN_secure_new(), *q1 = BN_secure_new(), *lcm = BN_secure_new(), *g = BN_secure_new();
    BIGNUM *dp = BN_secure_new(), *dq = BN_secure_new(), *qinv = BN_secure_new(), *diff = BN_new();
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pk = NULL;
    CF_CHECK(ctx && p && q && n && be && d && p1 && q1 && lcm && g && dp && dq && qinv && diff, CF_E_NOMEM);
    CF_CHECK(BN_bin2bn(pb, (int)plen, p) && BN_bin2bn(qb, (int)qlen, q) && BN_set_word(be, e), CF_E_NOMEM);
    rv = CF_E_CRYPTO;
    CF_CHECK(BN_mul(n, p, q, ctx), CF_E_CRYPTO);
    CF_CHECK((unsigned)BN_num_bits(n) == bits, CF_E_KEY_SIZE_RANGE);
    CF_CHECK(BN_sub(diff, p, q), CF_E_CRYPTO);
    CF_CHECK(BN_num_bits(diff) > (int)(bits / 2) - 100, CF_E_KEY_SIZE_RANGE);
    CF_CHECK(BN_sub(p1, p, BN_value_one()) && BN_sub(q1, q, BN_value_one()), CF_E_CRYPTO);
    CF_CHECK(BN_gcd(g, p1, q1, ctx) && BN_mul(lcm, p1, q1, ctx) && BN_div(lcm, NULL, lcm, g, ctx), CF_E_CRYPTO);
    CF_CHECK(BN_mod_inverse(d, be, lcm, ctx), CF_E_KEY_SIZE_RANGE);
    CF_CHECK(BN_mod(dp, d, p1, ctx) && BN_mod(dq, d, q1, ctx), CF_E_CRYPTO);
    CF_CHECK(BN_mod_inverse(qinv, q, p, ctx), CF_E_KEY_SIZE_RANGE);

    bld = OSSL_PARAM_BLD_new();
    CF_CHECK(bld, CF_E_NOMEM);
    CF_CHECK(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
             && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)
             && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d)
             && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p)
             && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q)
             && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp)
             && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq)
             && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qinv), CF_E_NOMEM);
    params = OSSL_PARAM_BLD_to_param(bld);
    CF_CHECK(params, CF_E_NOMEM);
    pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    CF_CHECK(pctx, CF_E_NOMEM);
    CF_CHECK(EVP_PKEY_fromdata_init(pctx) == 1, CF_E_CRYPTO);
    CF_CHECK(EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_KEYPAIR, params) == 1, CF_E_CRYPTO);
    rv = cf_crypto_pkey_wrap(pk, out);
    pk = NULL;
out:
    if (rv != CF_OK)
        cf_crypto_fail("RSA from primes", rv);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BIGNUM *all[] = { p, q, n, be, d, p1, q1, lcm, g, dp, dq, qinv, diff };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        BN_clear_free(all[i]);
    BN_CTX_free(ctx);
    return rv;
}
