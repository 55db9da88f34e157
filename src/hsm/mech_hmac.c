/* mech_hmac.c: CKM_SHA_1_HMAC .. CKM_SHA512_HMAC (PKCS#11 3.0 sec. 2.20 - 2.25, RFC 2104) with
 * a CKK_GENERIC_SECRET key. The MAC is the full hash length; verification needs a MAC of exactly
 * that length and compares in constant time. The key is the operation's snapshot (op->key), so
 * the context only remembers the hash; a multi-part HMAC context is made at the first update. */
#include <stdlib.h>
#include "base/secmem.h"
#include "hsm/mech_util.h"

/* The sizes the table reports (bytes). */
#define HMAC_KEY_MIN 1
#define HMAC_KEY_MAX 512

typedef struct {
    cf_hash_alg h;
    size_t mac_len;
    cf_hmac *m;
} hmac_ctx;

static cf_hash_alg mech_hash(CK_MECHANISM_TYPE t)
{
    switch (t) {
    case CKM_SHA_1_HMAC: return CF_HASH_SHA1;
    case CKM_SHA224_HMAC: return CF_HASH_SHA224;
    case CKM_SHA256_HMAC: return CF_HASH_SHA256;
    case CKM_SHA384_HMAC: return CF_HASH_SHA384;
    case CKM_SHA512_HMAC: return CF_HASH_SHA512;
    default: return CF_HASH_NONE;
    }
}

static cf_err hmac_init(hsm_op *op, const CK_MECHANISM *m)
{
    CF_ENSURE(op->kind == HSM_OP_SIGN || op->kind == HSM_OP_VERIFY, CF_E_MECHANISM_INVALID);
    cf_hash_alg h = mech_hash(m->mechanism);
    CF_ENSURE(h != CF_HASH_NONE, CF_E_MECHANISM_INVALID);
    CF_TRY(hsm_param_none(m));
    CF_ENSURE(op->key.secret, CF_E_KEY_TYPE_INCONSISTENT);
    CF_ENSURE(op->key.secret_len >= HMAC_KEY_MIN && op->key.secret_len <= HMAC_KEY_MAX,
              CF_E_KEY_SIZE_RANGE);
    hmac_ctx *c = calloc(1, sizeof *c);
    CF_ENSURE(c, CF_E_NOMEM);
    c->h = h;
    c->mac_len = cf_hash_size(h);
    op->ctx = c;
    return CF_OK;
}

static size_t hmac_out_len(const hsm_op *op, hsm_step step, size_t inlen)
{
    const hmac_ctx *c = op->ctx;
    return step == HSM_STEP_UPDATE ? 0 : c->mac_len;
}

static cf_err hmac_oneshot(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    const hmac_ctx *c = op->ctx;
    return cf_hmac_oneshot(c->h, op->key.secret, op->key.secret_len, in, inlen, out, outlen);
}

static cf_err hmac_update(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    hmac_ctx *c = op->ctx;
    if (outlen)
        *outlen = 0;
    if (!c->m)
        CF_TRY(cf_hmac_new(c->h, op->key.secret, op->key.secret_len, &c->m));
    return cf_hmac_update(c->m, in, inlen);
}

/* The MAC of what update gathered (or of the empty message); ends the multi-part context. */
static cf_err mac_final(hsm_op *op, uint8_t *out, size_t *outlen)
{
    hmac_ctx *c = op->ctx;
    if (!c->m)
        return cf_hmac_oneshot(c->h, op->key.secret, op->key.secret_len, NULL, 0, out, outlen);
    cf_err rv = cf_hmac_final(c->m, out, outlen);
    cf_hmac_free(c->m);
    c->m = NULL;
    return rv;
}

static cf_err hmac_final(hsm_op *op, uint8_t *out, size_t *outlen)
{
    const hmac_ctx *c = op->ctx;
    /* Checked first: a short buffer must leave the MAC running (PKCS#11 sec. 5.2). */
    if (!out || *outlen < c->mac_len) {
        *outlen = c->mac_len;
        return CF_E_BUFFER_TOO_SMALL;
    }
    return mac_final(op, out, outlen);
}

/* The expected MAC is what a forger wants: compared in constant time, then wiped. */
static cf_err check_mac(const hmac_ctx *c, uint8_t *mac, size_t maclen, const uint8_t *sig)
{
    cf_err rv = maclen != c->mac_len ? CF_E_INTERNAL
                : cf_ct_equal(mac, sig, maclen) ? CF_OK : CF_E_SIGNATURE_INVALID;
    cf_wipe(mac, CF_HASH_MAX);
    return rv;
}

static cf_err hmac_verify(hsm_op *op, const uint8_t *in, size_t inlen, const uint8_t *sig, size_t siglen)
{
    const hmac_ctx *c = op->ctx;
    CF_ENSURE(siglen == c->mac_len, CF_E_SIGNATURE_LEN_RANGE);
    uint8_t mac[CF_HASH_MAX];
    size_t n = sizeof mac;
    CF_TRY(cf_hmac_oneshot(c->h, op->key.secret, op->key.secret_len, in, inlen, mac, &n));
    return check_mac(c, mac, n, sig);
}

static cf_err hmac_verify_final(hsm_op *op, const uint8_t *sig, size_t siglen)
{
    const hmac_ctx *c = op->ctx;
    CF_ENSURE(siglen == c->mac_len, CF_E_SIGNATURE_LEN_RANGE);
    uint8_t mac[CF_HASH_MAX];
    size_t n = sizeof mac;
    CF_TRY(mac_final(op, mac, &n));
    return check_mac(c, mac, n, sig);
}

static cf_err hmac_reset(hsm_op *op)
{
    hmac_ctx *c = op->ctx;
    CF_ENSURE(c, CF_E_OPERATION_NOT_INITIALIZED);
    cf_hmac_free(c->m);
    c->m = NULL;
    return CF_OK;
}

static void hmac_cleanup(hsm_op *op)
{
    hmac_ctx *c = op->ctx;
    if (!c)
        return;
    cf_hmac_free(c->m);
    free(c);
    op->ctx = NULL;
}

const hsm_op_impl hsm_ops_hmac = {
    .init = hmac_init, .out_len = hmac_out_len, .oneshot = hmac_oneshot, .update = hmac_update,
    .final = hmac_final, .verify = hmac_verify, .verify_final = hmac_verify_final,
    .reset = hmac_reset, .cleanup = hmac_cleanup,
};
