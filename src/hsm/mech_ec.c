/* mech_ec.c: the elliptic-curve mechanisms (PKCS#11 3.0 sec. 2.3): key pair generation on
 * P-256/384/521 and Ed25519, ECDSA (raw digest or hash-then-sign), EdDSA (pure Ed25519), and
 * ECDH1 derivation with the null KDF. Signing runs the shared engine of mech_util.c. */
#include <stdlib.h>
#include <string.h>
#include "hsm/mech_util.h"

/* CKM_ECDSA signs a digest; the longest PKCS#11 knows is SHA-512's. */
#define ECDSA_RAW_MAX 64
/* CKM_EDDSA is pure EdDSA over the whole message, so C_SignUpdate must gather it. */
#define EDDSA_BUF_MAX (1024u * 1024)


static bool is_nist(const cf_pkey *k)
{
    if (cf_pkey_get_type(k) != CF_PKEY_EC)
        return false;
    unsigned b = cf_pkey_bits(k);
    return b == 256 || b == 384 || b == 521;
}

static cf_err check_key(const hsm_op *op, cf_pkey_type want)
{
    const cf_pkey *k = op->key.pkey;
    CF_ENSURE(op->kind == HSM_OP_SIGN || op->kind == HSM_OP_VERIFY, CF_E_MECHANISM_INVALID);
    CF_ENSURE(k && cf_pkey_get_type(k) == want, CF_E_KEY_TYPE_INCONSISTENT);
    if (want == CF_PKEY_EC)
        CF_ENSURE(is_nist(k), CF_E_KEY_SIZE_RANGE);
    if (op->kind == HSM_OP_SIGN)
        CF_ENSURE(cf_pkey_is_private(k), CF_E_KEY_TYPE_INCONSISTENT);
    return CF_OK;
}

/* ---- ECDSA (sec. 2.3.7, 2.3.8) ---------------------------------------------------------------- */
static cf_err ecdsa_init(hsm_op *op, const CK_MECHANISM *m)
{
    CF_TRY(check_key(op, CF_PKEY_EC));
    CF_TRY(hsm_param_none(m));
    cf_hash_alg h;
    switch (m->mechanism) {
    case CKM_ECDSA: h = CF_HASH_NONE; break;
    case CKM_ECDSA_SHA1: h = CF_HASH_SHA1; break;
    case CKM_ECDSA_SHA224: h = CF_HASH_SHA224; break;
    case CKM_ECDSA_SHA256: h = CF_HASH_SHA256; break;
    case CKM_ECDSA_SHA384: h = CF_HASH_SHA384; break;
    case CKM_ECDSA_SHA512: h = CF_HASH_SHA512; break;
    default: return CF_E_MECHANISM_INVALID;
    }
    /* The signer takes a digest of any length (truncated per FIPS 186-5 sec. 6.4.1). */
    cf_sig_params p = { .scheme = CF_SIG_ECDSA };
    if (h == CF_HASH_NONE)
        return hsm_sig_start(op, &p, CF_HASH_NONE, ECDSA_RAW_MAX, 0, ECDSA_RAW_MAX);
    return hsm_sig_start(op, &p, h, 0, 0, 0);
}

const hsm_op_impl hsm_ops_ecdsa = {
    .init = ecdsa_init, .out_len = hsm_sig_out_len, .oneshot = hsm_sig_oneshot,
    .update = hsm_sig_update, .final = hsm_sig_final, .verify = hsm_sig_verify,
    .verify_final = hsm_sig_verify_final, .reset = hsm_sig_reset, .cleanup = hsm_sig_cleanup,
};

/* ---- EdDSA (sec. 2.3.14) ------------------------------------------------------------------------ */
/* Pure Ed25519 only: no parameter, or CK_EDDSA_PARAMS asking for neither prehash (Ed25519ph) nor
 * a context (Ed25519ctx). */
static cf_err eddsa_init(hsm_op *op, const CK_MECHANISM *m)
{
    CF_TRY(check_key(op, CF_PKEY_ED25519));
    if (m->pParameter || m->ulParameterLen) {
        const CF_EDDSA_PARAMS *ep;
        CF_TRY(hsm_param(m, sizeof *ep, (const void **)&ep));
        CF_ENSURE(ep->phFlag == CK_FALSE && ep->ulContextDataLen == 0, CF_E_MECHANISM_PARAM_INVALID);
    }
    cf_sig_params p = { .scheme = CF_SIG_EDDSA };
    return hsm_sig_start(op, &p, CF_HASH_NONE, SIZE_MAX, 0, EDDSA_BUF_MAX);
}

const hsm_op_impl hsm_ops_eddsa = {
    .init = eddsa_init, .out_len = hsm_sig_out_len, .oneshot = hsm_sig_oneshot,
    .update = hsm_sig_update, .final = hsm_sig_final, .verify = hsm_sig_verify,
    .verify_final = hsm_sig_verify_final, .reset = hsm_sig_reset, .cleanup = hsm_sig_cleanup,
};

/* ---- key pair generation (sec. 2.3.6, 2.3.10) ---------------------------------------------------- */
/* The curve named by CKA_EC_PARAMS of the public template. */
static cf_err template_curve(const hsm_attrs *pub_tmpl, cf_curve *c)
{
    const cf_attr *a = hsm_attrs_find(pub_tmpl, CKA_EC_PARAMS);
    CF_ENSURE(a, CF_E_TEMPLATE_INCOMPLETE);
    *c = cf_curve_from_params(a->val, a->len);
    return CF_OK;
}

cf_err hsm_ec_keypair_gen(const CK_MECHANISM *m, const hsm_attrs *pub_tmpl,
                          const hsm_attrs *priv_tmpl, cf_pkey **out)
{
    (void)priv_tmpl;
    CF_TRY(hsm_param_none(m));
    cf_curve c;
    CF_TRY(template_curve(pub_tmpl, &c));
    CF_ENSURE(c == CF_CURVE_P256 || c == CF_CURVE_P384 || c == CF_CURVE_P521, CF_E_CURVE_NOT_SUPPORTED);
    return cf_pkey_generate_ec(c, out);
}

cf_err hsm_ed_keypair_gen(const CK_MECHANISM *m, const hsm_attrs *pub_tmpl,
                          const hsm_attrs *priv_tmpl, cf_pkey **out)
{
    (void)priv_tmpl;
    CF_TRY(hsm_param_none(m));
    cf_curve c;
    CF_TRY(template_curve(pub_tmpl, &c));
    CF_ENSURE(c == CF_CURVE_ED25519, CF_E_CURVE_NOT_SUPPORTED);
    return cf_pkey_generate_ec(c, out);
}

/* ---- ECDH (sec. 2.3.16) ------------------------------------------------------------------------- */
/* CK_ECDH1_DERIVE_PARAMS with CKD_NULL (so no shared data); the peer's point raw or as a DER
 * OCTET STRING. The result is the raw x coordinate, which the core truncates to CKA_VALUE_LEN. */
cf_err hsm_ecdh_derive(const CK_MECHANISM *m, const hsm_key *base, cf_buf *out)
{
    const CK_ECDH1_DERIVE_PARAMS *dp;
    CF_TRY(hsm_param(m, sizeof *dp, (const void **)&dp));
    CF_ENSURE(dp->kdf == CKD_NULL, CF_E_MECHANISM_PARAM_INVALID);
    CF_ENSURE(dp->ulSharedDataLen == 0, CF_E_MECHANISM_PARAM_INVALID);
    CF_ENSURE(dp->pPublicData && dp->ulPublicDataLen > 0, CF_E_MECHANISM_PARAM_INVALID);
    const cf_pkey *k = base->pkey;
    CF_ENSURE(k && base->cls == CKO_PRIVATE_KEY && is_nist(k) && cf_pkey_is_private(k),
              CF_E_KEY_TYPE_INCONSISTENT);
    return cf_ecdh(base->pkey, dp->pPublicData, dp->ulPublicDataLen, out);
}
