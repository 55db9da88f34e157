/* mech_util.c: see mech_util.h. Also hsm_key_release (mech.h). */
#include "hsm/mech_util.h"
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"

void hsm_key_release(hsm_key *k)
{
    if (!k)
        return;
    cf_pkey_free(k->pkey);
    cf_secret_free(k->secret, k->secret_len);
    k->pkey = NULL;
    k->secret = NULL;
    k->secret_len = 0;
}

/* ---- parameters ---------------------------------------------------------------------------- */
cf_err hsm_param(const CK_MECHANISM *m, size_t size, const void **p)
{
    CF_ENSURE(m->pParameter && m->ulParameterLen == size, CF_E_MECHANISM_PARAM_INVALID);
    *p = m->pParameter;
    return CF_OK;
}

cf_err hsm_param_none(const CK_MECHANISM *m)
{
    CF_ENSURE(!m->pParameter && m->ulParameterLen == 0, CF_E_MECHANISM_PARAM_INVALID);
    return CF_OK;
}

cf_hash_alg hsm_hash_from_ckm(CK_MECHANISM_TYPE t)
{
    switch (t) {
    case CKM_SHA_1: return CF_HASH_SHA1;
    case CKM_SHA224: return CF_HASH_SHA224;
    case CKM_SHA256: return CF_HASH_SHA256;
    case CKM_SHA384: return CF_HASH_SHA384;
    case CKM_SHA512: return CF_HASH_SHA512;
    default: return CF_HASH_NONE;
    }
}

cf_hash_alg hsm_hash_from_mgf(CK_RSA_PKCS_MGF_TYPE g)
{
    switch (g) {
    case CKG_MGF1_SHA1: return CF_HASH_SHA1;
    case CKG_MGF1_SHA224: return CF_HASH_SHA224;
    case CKG_MGF1_SHA256: return CF_HASH_SHA256;
    case CKG_MGF1_SHA384: return CF_HASH_SHA384;
    case CKG_MGF1_SHA512: return CF_HASH_SHA512;
    default: return CF_HASH_NONE;
    }
}

/* ---- input buffer ---------------------------------------------------------------------------- */
cf_err hsm_inbuf_add(hsm_inbuf *b, const uint8_t *in, size_t n, size_t max, cf_err err)
{
    CF_ENSURE(b->len <= max && n <= max - b->len, err);
    if (n == 0)
        return CF_OK;
    if (n > b->cap - b->len) {
        /* Grown by copy, not realloc, so the old block can be wiped before it is freed. */
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
        if (cap > max)
            cap = max;
        uint8_t *p = malloc(cap);
        CF_ENSURE(p, CF_E_NOMEM);
        if (b->len)
            memcpy(p, b->p, b->len);
        cf_free_wiped(b->p, b->cap);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, in, n);
    b->len += n;
    return CF_OK;
}

void hsm_inbuf_clear(hsm_inbuf *b)
{
    cf_wipe(b->p, b->len);
    b->len = 0;
}

void hsm_inbuf_free(hsm_inbuf *b)
{
    cf_free_wiped(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- signature engine -------------------------------------------------------------------------- */
cf_err hsm_sig_start(hsm_op *op, const cf_sig_params *p, cf_hash_alg prehash, size_t in_max,
                     size_t in_exact, size_t buf_max)
{
    CF_ENSURE(op->kind == HSM_OP_SIGN || op->kind == HSM_OP_VERIFY, CF_E_MECHANISM_INVALID);
    CF_ENSURE(op->key.pkey, CF_E_KEY_TYPE_INCONSISTENT);
    hsm_sig_ctx *c = calloc(1, sizeof *c);
    CF_ENSURE(c, CF_E_NOMEM);
    cf_err rv = cf_signer_new(op->key.pkey, p, op->kind == HSM_OP_SIGN, &c->signer);
    if (rv != CF_OK) {
        free(c);
        return rv;
    }
    c->prehash = prehash;
    c->sig_len = cf_signer_sig_len(c->signer);
    c->in_max = in_max;
    c->in_exact = in_exact;
    c->buf_max = buf_max < in_max ? buf_max : in_max;
    op->ctx = c;
    return CF_OK;
}

size_t hsm_sig_out_len(const hsm_op *op, hsm_step step, size_t inlen)
{
    const hsm_sig_ctx *c = op->ctx;
    return step == HSM_STEP_UPDATE ? 0 : c->sig_len;
}

static cf_err check_raw(const hsm_sig_ctx *c, size_t inlen)
{
    if (c->in_exact)
        CF_ENSURE(inlen == c->in_exact, CF_E_DATA_LEN_RANGE);
    CF_ENSURE(inlen <= c->in_max, CF_E_DATA_LEN_RANGE);
    return CF_OK;
}

/* The bytes the signer sees for a whole message: its digest, or the raw input after the length
 * checks. dig holds CF_HASH_MAX bytes. */
static cf_err tbs_oneshot(const hsm_sig_ctx *c, const uint8_t *in, size_t inlen, uint8_t *dig,
                          const uint8_t **tbs, size_t *tbslen)
{
    if (c->prehash == CF_HASH_NONE) {
        CF_TRY(check_raw(c, inlen));
        *tbs = in;
        *tbslen = inlen;
        return CF_OK;
    }
    size_t dl = CF_HASH_MAX;
    CF_TRY(cf_hash(c->prehash, in, inlen, dig, &dl));
    *tbs = dig;
    *tbslen = dl;
    return CF_OK;
}

/* Likewise for what update gathered; ends the digest. */
static cf_err tbs_final(hsm_sig_ctx *c, uint8_t *dig, const uint8_t **tbs, size_t *tbslen)
{
    if (c->prehash == CF_HASH_NONE) {
        CF_TRY(check_raw(c, c->buf.len));
        *tbs = c->buf.p;
        *tbslen = c->buf.len;
        return CF_OK;
    }
    size_t dl = CF_HASH_MAX;
    cf_err rv;
    if (c->dg) {
        rv = cf_digest_final(c->dg, dig, &dl);
        cf_digest_free(c->dg);
        c->dg = NULL;
    } else {
        rv = cf_hash(c->prehash, NULL, 0, dig, &dl);   /* Init then Final: the empty message */
    }
    CF_TRY(rv);
    *tbs = dig;
    *tbslen = dl;
    return CF_OK;
}

cf_err hsm_sig_oneshot(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    hsm_sig_ctx *c = op->ctx;
    if (!out || *outlen < c->sig_len) {
        *outlen = c->sig_len;
        return CF_E_BUFFER_TOO_SMALL;
    }
    uint8_t dig[CF_HASH_MAX];
    const uint8_t *tbs;
    size_t tbslen;
    CF_TRY(tbs_oneshot(c, in, inlen, dig, &tbs, &tbslen));
    return cf_signer_sign(c->signer, tbs, tbslen, out, outlen);
}

cf_err hsm_sig_update(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    hsm_sig_ctx *c = op->ctx;
    if (outlen)
        *outlen = 0;
    if (c->prehash == CF_HASH_NONE)
        return hsm_inbuf_add(&c->buf, in, inlen, c->buf_max, CF_E_DATA_LEN_RANGE);
    if (!c->dg)
        CF_TRY(cf_digest_new(c->prehash, &c->dg));
    return cf_digest_update(c->dg, in, inlen);
}

cf_err hsm_sig_final(hsm_op *op, uint8_t *out, size_t *outlen)
{
    hsm_sig_ctx *c = op->ctx;
    /* Checked before the digest is consumed, so a retry with a larger buffer still works. */
    if (!out || *outlen < c->sig_len) {
        *outlen = c->sig_len;
        return CF_E_BUFFER_TOO_SMALL;
    }
    uint8_t dig[CF_HASH_MAX];
    const uint8_t *tbs;
    size_t tbslen;
    cf_err rv = tbs_final(c, dig, &tbs, &tbslen);
    if (rv == CF_OK)
        rv = cf_signer_sign(c->signer, tbs, tbslen, out, outlen);
    hsm_inbuf_clear(&c->buf);
    return rv;
}

cf_err hsm_sig_verify(hsm_op *op, const uint8_t *in, size_t inlen, const uint8_t *sig, size_t siglen)
{
    hsm_sig_ctx *c = op->ctx;
    CF_ENSURE(siglen == c->sig_len, CF_E_SIGNATURE_LEN_RANGE);
    uint8_t dig[CF_HASH_MAX];
    const uint8_t *tbs;
    size_t tbslen;
    CF_TRY(tbs_oneshot(c, in, inlen, dig, &tbs, &tbslen));
    return cf_signer_verify(c->signer, tbs, tbslen, sig, siglen);
}

cf_err hsm_sig_verify_final(hsm_op *op, const uint8_t *sig, size_t siglen)
{
    hsm_sig_ctx *c = op->ctx;
    cf_err rv = CF_E_SIGNATURE_LEN_RANGE;
    uint8_t dig[CF_HASH_MAX];
    const uint8_t *tbs;
    size_t tbslen;
    if (siglen == c->sig_len) {
        rv = tbs_final(c, dig, &tbs, &tbslen);
        if (rv == CF_OK)
            rv = cf_signer_verify(c->signer, tbs, tbslen, sig, siglen);
    }
    hsm_inbuf_clear(&c->buf);
    return rv;
}

cf_err hsm_sig_reset(hsm_op *op)
{
    hsm_sig_ctx *c = op->ctx;
    CF_ENSURE(c, CF_E_OPERATION_NOT_INITIALIZED);
    cf_digest_free(c->dg);
    c->dg = NULL;
    hsm_inbuf_clear(&c->buf);
    return CF_OK;
}

void hsm_sig_cleanup(hsm_op *op)
{
    hsm_sig_ctx *c = op->ctx;
    if (!c)
        return;
    cf_signer_free(c->signer);
    cf_digest_free(c->dg);
    hsm_inbuf_free(&c->buf);
    free(c);
    op->ctx = NULL;
}
