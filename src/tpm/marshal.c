/* marshal.c: the bridge between libtss2-mu (the spec's wire types) and coffer's bounded
 * reader/writer, the hash helpers every command uses, and the one mapping of coffer statuses to
 * TPM response codes. */
#include <stdarg.h>
#include <string.h>
#include "tpm/internal.h"

static tpm_rc mu_rc(TSS2_RC rc)
{
    switch (rc) {
    case TSS2_RC_SUCCESS: return TPM2_RC_SUCCESS;
    case TSS2_MU_RC_INSUFFICIENT_BUFFER: return TPM2_RC_INSUFFICIENT;
    case TSS2_MU_RC_BAD_SIZE: return TPM2_RC_SIZE;
    default: return TPM2_RC_VALUE;
    }
}

tpm_rc tpm_get(cf_reader *r, tpm_unmarshal_fn fn, void *dst)
{
    size_t off = r->off;
    if (r->off > r->len)
        return TPM2_RC_INSUFFICIENT;
    /* libtss2-mu wants a non-NULL buffer even when it is empty */
    static const uint8_t empty[1];
    TSS2_RC rc = fn(r->p ? r->p : empty, r->len, &off, dst);
    if (rc != TSS2_RC_SUCCESS)
        return mu_rc(rc);
    if (off < r->off || off > r->len)
        return TPM2_RC_INSUFFICIENT;
    r->off = off;
    return TPM2_RC_SUCCESS;
}

void tpm_put(cf_writer *w, tpm_marshal_fn fn, const void *src)
{
    uint8_t tmp[TPM_MAX_RESPONSE_SIZE];
    size_t n = tpm_marshal_to(fn, src, tmp, sizeof tmp);
    if (n == 0)
        w->overflow = true;
    else
        cf_put_bytes(w, tmp, n);
    memset(tmp, 0, n);
}

size_t tpm_marshal_to(tpm_marshal_fn fn, const void *src, uint8_t *buf, size_t cap)
{
    size_t off = 0;
    if (fn(src, buf, cap, &off) != TSS2_RC_SUCCESS || off > cap)
        return 0;
    return off;
}

void tpm_put_2b(cf_writer *w, const uint8_t *p, size_t n)
{
    cf_put_u16(w, (uint16_t)n);
    if (n)
        cf_put_bytes(w, p, n);
}

tpm_rc tpm_rc_from_cf(cf_err e)
{
    switch (e) {
    case CF_OK: return TPM2_RC_SUCCESS;
    case CF_E_NOMEM: return TPM2_RC_MEMORY;
    case CF_E_KEY_SIZE_RANGE: return TPM2_RC_KEY_SIZE;
    case CF_E_CURVE_NOT_SUPPORTED: return TPM2_RC_CURVE;
    case CF_E_SIGNATURE_INVALID:
    case CF_E_SIGNATURE_LEN_RANGE: return TPM2_RC_SIGNATURE;
    case CF_E_ATTRIBUTE_VALUE_INVALID: return TPM2_RC_KEY;
    case CF_E_DATA_LEN_RANGE: return TPM2_RC_SIZE;
    default: return TPM2_RC_FAILURE;
    }
}

cf_hash_alg tpm_hash_alg(TPM2_ALG_ID alg)
{
    switch (alg) {
    case TPM2_ALG_SHA1: return CF_HASH_SHA1;
    case TPM2_ALG_SHA256: return CF_HASH_SHA256;
    case TPM2_ALG_SHA384: return CF_HASH_SHA384;
    case TPM2_ALG_SHA512: return CF_HASH_SHA512;
    default: return CF_HASH_NONE;
    }
}

size_t tpm_hash_size(TPM2_ALG_ID alg) { return cf_hash_size(tpm_hash_alg(alg)); }

tpm_rc tpm_hash(TPM2_ALG_ID alg, const void *p, size_t n, uint8_t *out)
{
    cf_hash_alg h = tpm_hash_alg(alg);
    TPM_ENSURE(h != CF_HASH_NONE, TPM2_RC_HASH);
    size_t len = CF_HASH_MAX;
    return tpm_rc_from_cf(cf_hash(h, p, n, out, &len));
}

tpm_rc tpm_hash_v(TPM2_ALG_ID alg, uint8_t *out, ...)
{
    cf_hash_alg h = tpm_hash_alg(alg);
    TPM_ENSURE(h != CF_HASH_NONE, TPM2_RC_HASH);
    cf_digest *d = NULL;
    TPM_ENSURE(cf_digest_new(h, &d) == CF_OK, TPM2_RC_FAILURE);
    cf_err e = CF_OK;
    va_list ap;
    va_start(ap, out);
    for (;;) {
        const void *p = va_arg(ap, const void *);
        if (!p)
            break;
        size_t n = va_arg(ap, size_t);
        if (e == CF_OK && n)
            e = cf_digest_update(d, p, n);
    }
    va_end(ap);
    size_t len = CF_HASH_MAX;
    if (e == CF_OK)
        e = cf_digest_final(d, out, &len);
    cf_digest_free(d);
    return tpm_rc_from_cf(e);
}

tpm_rc tpm_hmac_v(TPM2_ALG_ID alg, const uint8_t *key, size_t keylen, uint8_t *out, ...)
{
    cf_hash_alg h = tpm_hash_alg(alg);
    TPM_ENSURE(h != CF_HASH_NONE, TPM2_RC_HASH);
    cf_hmac *m = NULL;
    static const uint8_t nokey[1];
    TPM_ENSURE(cf_hmac_new(h, keylen ? key : nokey, keylen, &m) == CF_OK, TPM2_RC_FAILURE);
    cf_err e = CF_OK;
    va_list ap;
    va_start(ap, out);
    for (;;) {
        const void *p = va_arg(ap, const void *);
        if (!p)
            break;
        size_t n = va_arg(ap, size_t);
        if (e == CF_OK && n)
            e = cf_hmac_update(m, p, n);
    }
    va_end(ap);
    size_t len = CF_HASH_MAX;
    if (e == CF_OK)
        e = cf_hmac_final(m, out, &len);
    cf_hmac_free(m);
    return tpm_rc_from_cf(e);
}
