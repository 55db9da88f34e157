/* mech_digest.c: CKM_SHA_1 .. CKM_SHA512 (PKCS#11 3.0 sec. 2.20 - 2.25). One-shot digests go
 * straight to cf_hash; a multi-part digest context is created at the first update, so an
 * operation reused through reset costs nothing until it is used. */
#include <stdlib.h>
#include "hsm/mech_util.h"

typedef struct {
    cf_hash_alg h;
    cf_digest *dg;
} digest_ctx;

static cf_err digest_init(hsm_op *op, const CK_MECHANISM *m)
{
    CF_ENSURE(op->kind == HSM_OP_DIGEST, CF_E_MECHANISM_INVALID);
    cf_hash_alg h = hsm_hash_from_ckm(m->mechanism);
    CF_ENSURE(h != CF_HASH_NONE, CF_E_MECHANISM_INVALID);
    CF_TRY(hsm_param_none(m));
    digest_ctx *c = calloc(1, sizeof *c);
    CF_ENSURE(c, CF_E_NOMEM);
    c->h = h;
    op->ctx = c;
    return CF_OK;
}

static size_t digest_out_len(const hsm_op *op, hsm_step step, size_t inlen)
{
    const digest_ctx *c = op->ctx;
    return step == HSM_STEP_UPDATE ? 0 : cf_hash_size(c->h);
}

static cf_err digest_oneshot(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    const digest_ctx *c = op->ctx;
    return cf_hash(c->h, in, inlen, out, outlen);
}

static cf_err digest_update(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    digest_ctx *c = op->ctx;
    if (outlen)
        *outlen = 0;
    if (!c->dg)
        CF_TRY(cf_digest_new(c->h, &c->dg));
    return cf_digest_update(c->dg, in, inlen);
}

static cf_err digest_final(hsm_op *op, uint8_t *out, size_t *outlen)
{
    digest_ctx *c = op->ctx;
    size_t hl = cf_hash_size(c->h);
    /* Checked first: a short buffer must leave the digest running (PKCS#11 sec. 5.2). */
    if (!out || *outlen < hl) {
        *outlen = hl;
        return CF_E_BUFFER_TOO_SMALL;
    }
    if (!c->dg)
        return cf_hash(c->h, NULL, 0, out, outlen);   /* Init then Final: the empty message */
    cf_err rv = cf_digest_final(c->dg, out, outlen);
    cf_digest_free(c->dg);
    c->dg = NULL;
    return rv;
}

static cf_err digest_reset(hsm_op *op)
{
    digest_ctx *c = op->ctx;
    CF_ENSURE(c, CF_E_OPERATION_NOT_INITIALIZED);
    cf_digest_free(c->dg);
    c->dg = NULL;
    return CF_OK;
}

static void digest_cleanup(hsm_op *op)
{
    digest_ctx *c = op->ctx;
    if (!c)
        return;
    cf_digest_free(c->dg);
    free(c);
    op->ctx = NULL;
}

const hsm_op_impl hsm_ops_digest = {
    .init = digest_init, .out_len = digest_out_len, .oneshot = digest_oneshot,
    .update = digest_update, .final = digest_final, .reset = digest_reset,
    .cleanup = digest_cleanup,
};
