/* rsa_cofactor.c: the second prime of an RSA key from its modulus and first prime. A TPM keeps
 * only one prime of an RSA key in the sensitive area (TPM 2.0 Part 2 section 12.2.3.2, the
 * TPM2B_PRIVATE_KEY_RSA of TPMU_SENSITIVE_COMPOSITE); loading the key needs q = n / p, and a p
 * that does not divide n shows that the public and sensitive areas do not belong together. */
#include <openssl/bn.h>
#include <openssl/err.h>
#include "crypto/crypto_int.h"

cf_err cf_rsa_cofactor(const uint8_t *nb, size_t nlen, const uint8_t *pb, size_t plen, uint8_t *qb, size_t *qlen)
{
    CF_ENSURE(nb && pb && qb && qlen && nlen && plen && nlen <= CF_RSA_MAX_BYTES && plen <= nlen, CF_E_ARGS);
    cf_err rv = CF_E_NOMEM;
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *n = BN_new(), *p = BN_secure_new(), *q = BN_secure_new(), *r = BN_secure_new();
    CF_CHECK(ctx && n && p && q && r, CF_E_NOMEM);
    CF_CHECK(BN_bin2bn(nb, (int)nlen, n) && BN_bin2bn(pb, (int)plen, p), CF_E_NOMEM);
    /* p must be a proper factor: 1 < p < n */
    CF_CHECK(!BN_is_zero(p) && !BN_is_one(p) && BN_cmp(p, n) < 0, CF_E_ATTRIBUTE_VALUE_INVALID);
    CF_CHECK(BN_div(q, r, n, p, ctx), CF_E_CRYPTO);
    CF_CHECK(BN_is_zero(r), CF_E_ATTRIBUTE_VALUE_INVALID);
    CF_CHECK((size_t)BN_num_bytes(q) <= *qlen, CF_E_BUFFER_TOO_SMALL);
    *qlen = (size_t)BN_num_bytes(q);
    CF_CHECK(BN_bn2bin(q, qb) == (int)*qlen, CF_E_CRYPTO);
    rv = CF_OK;
out:
    BN_free(n);
    BN_clear_free(p);
    BN_clear_free(q);
    BN_clear_free(r);
    BN_CTX_free(ctx);
    ERR_clear_error();
    return rv;
}
