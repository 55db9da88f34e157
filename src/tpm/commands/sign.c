/* sign.c: Part 3 sections 20.2 (Sign), 20.1 (VerifySignature) and 15.4 (Hash), with the ticket
 * rules that bind them: a restricted signing key signs only a digest the TPM computed itself and
 * vouched for with a TPM_ST_HASHCHECK ticket, and Hash refuses such a ticket for data that begins
 * with TPM_GENERATED_VALUE (so the TPM cannot be made to sign something that looks like its own
 * attestation). */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

/* The signing scheme: the key's own, or the caller's when the key has none (param 2). */
tpm_rc tpm_sig_scheme_select(const TPMT_PUBLIC *pub, const TPMT_SIG_SCHEME *in, TPMT_SIG_SCHEME *out)
{
    TPMT_SIG_SCHEME key = { .scheme = TPM2_ALG_NULL };
    if (pub->type == TPM2_ALG_RSA) {
        key.scheme = pub->parameters.rsaDetail.scheme.scheme;
        key.details.any.hashAlg = pub->parameters.rsaDetail.scheme.details.anySig.hashAlg;
    } else if (pub->type == TPM2_ALG_ECC) {
        key.scheme = pub->parameters.eccDetail.scheme.scheme;
        key.details.any.hashAlg = pub->parameters.eccDetail.scheme.details.anySig.hashAlg;
    }
    if (key.scheme == TPM2_ALG_NULL) {
        key = *in;
    } else if (in->scheme != TPM2_ALG_NULL) {
        TPM_ENSURE(in->scheme == key.scheme && in->details.any.hashAlg == key.details.any.hashAlg,
                   tpm_rc_p(TPM2_RC_SCHEME, 2));
    }
    bool ok = pub->type == TPM2_ALG_RSA ? key.scheme == TPM2_ALG_RSASSA || key.scheme == TPM2_ALG_RSAPSS
                                          : key.scheme == TPM2_ALG_ECDSA;
    TPM_ENSURE(ok, tpm_rc_p(TPM2_RC_SCHEME, 2));
    TPM_ENSURE(tpm_pcr_bank_index(key.details.any.hashAlg) >= 0, tpm_rc_p(TPM2_RC_HASH, 2));
    *out = key;
    return TPM2_RC_SUCCESS;
}

static cf_sig_params sig_params(TPMI_ALG_SIG_SCHEME scheme, TPMI_ALG_HASH hash)
{
    cf_sig_params p;
    memset(&p, 0, sizeof p);
    p.hash = p.mgf_hash = tpm_hash_alg(hash);
    switch (scheme) {
    case TPM2_ALG_RSASSA: p.scheme = CF_SIG_RSA_PKCS1; break;
    case TPM2_ALG_RSAPSS:
        p.scheme = CF_SIG_RSA_PSS;
        p.salt_len = tpm_hash_size(hash);   /* FIPS 186: salt of the hash's length */
        break;
    default: p.scheme = CF_SIG_ECDSA; break;
    }
    return p;
}

tpm_rc tpm_sign_digest(tpm_object *o, const TPMT_SIG_SCHEME *scheme, const uint8_t *digest, size_t len,
                       TPMT_SIGNATURE *out)
{
    TPMI_ALG_HASH hash = scheme->details.any.hashAlg;
    cf_sig_params p = sig_params(scheme->scheme, hash);
    cf_signer *s;
    TPM_TRY(tpm_object_signer(o, &p, true, &s));
    uint8_t sig[512];
    size_t siglen = sizeof sig;
    cf_err e = cf_signer_sign(s, digest, len, sig, &siglen);
    TPM_ENSURE(e == CF_OK, tpm_rc_from_cf(e));

    memset(out, 0, sizeof *out);
    out->sigAlg = scheme->scheme;
    if (o->pub.type == TPM2_ALG_ECC) {
        size_t half = siglen / 2;
        TPMS_SIGNATURE_ECC *ec = &out->signature.ecdsa;
        ec->hash = hash;
        ec->signatureR.size = ec->signatureS.size = (uint16_t)half;
        memcpy(ec->signatureR.buffer, sig, half);
        memcpy(ec->signatureS.buffer, sig + half, half);
    } else {
        TPMS_SIGNATURE_RSA *rs = &out->signature.rsassa;
        rs->hash = hash;
        rs->sig.size = (uint16_t)siglen;
        memcpy(rs->sig.buffer, sig, siglen);
    }
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_sign)
{
    TPM2B_DIGEST digest;
    TPMT_SIG_SCHEME scheme_in;
    TPMT_TK_HASHCHECK ticket;
    TPM_GET(in, TPM2B_DIGEST, &digest, 1);
    TPM_GET(in, TPMT_SIG_SCHEME, &scheme_in, 2);
    TPM_GET(in, TPMT_TK_HASHCHECK, &ticket, 3);
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    const TPMT_PUBLIC *pub = &o->pub;
    TPM_ENSURE(pub->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT, tpm_rc_h(TPM2_RC_KEY, 1));
    TPM_ENSURE(pub->type == TPM2_ALG_RSA || pub->type == TPM2_ALG_ECC, tpm_rc_h(TPM2_RC_KEY, 1));   /* HMAC keys: later */
    TPMT_SIG_SCHEME scheme;
    TPM_TRY(tpm_sig_scheme_select(pub, &scheme_in, &scheme));
    TPMI_ALG_HASH hash = scheme.details.any.hashAlg;
    TPM_ENSURE(digest.size == tpm_hash_size(hash), tpm_rc_p(TPM2_RC_SIZE, 1));
    TPM_ENSURE(ticket.tag == TPM2_ST_HASHCHECK, tpm_rc_p(TPM2_RC_TAG, 3));
    if (pub->objectAttributes & TPMA_OBJECT_RESTRICTED) {
        TPM_ENSURE(ticket.hierarchy != TPM2_RH_NULL && tpm_hierarchy_get(t, ticket.hierarchy),
                   tpm_rc_p(TPM2_RC_TICKET, 3));
        TPM2B_DIGEST expect;
        TPM_TRY(tpm_ticket(t, TPM2_ST_HASHCHECK, ticket.hierarchy, digest.buffer, digest.size, NULL, 0, &expect));
        TPM_ENSURE(ticket.digest.size == expect.size && cf_ct_equal(ticket.digest.buffer, expect.buffer, expect.size),
                   tpm_rc_p(TPM2_RC_TICKET, 3));
    }

    TPMT_SIGNATURE out_sig;
    TPM_TRY(tpm_sign_digest(o, &scheme, digest.buffer, digest.size, &out_sig));
    TPM_PUT(out, TPMT_SIGNATURE, &out_sig);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_verify_signature)
{
    TPM2B_DIGEST digest;
    TPMT_SIGNATURE sig;
    TPM_GET(in, TPM2B_DIGEST, &digest, 1);
    TPM_GET(in, TPMT_SIGNATURE, &sig, 2);
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    const TPMT_PUBLIC *pub = &o->pub;
    TPM_ENSURE(pub->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT, tpm_rc_h(TPM2_RC_ATTRIBUTES, 1));
    TPM_ENSURE(pub->type == TPM2_ALG_RSA || pub->type == TPM2_ALG_ECC, tpm_rc_h(TPM2_RC_KEY, 1));

    uint8_t raw[512];
    size_t rawlen;
    TPMI_ALG_HASH hash;
    if (pub->type == TPM2_ALG_ECC) {
        TPM_ENSURE(sig.sigAlg == TPM2_ALG_ECDSA, tpm_rc_p(TPM2_RC_SCHEME, 2));
        const TPMS_SIGNATURE_ECC *ec = &sig.signature.ecdsa;
        size_t fl = pub->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 ? 32 : 48;
        TPM_ENSURE(ec->signatureR.size <= fl && ec->signatureS.size <= fl, tpm_rc_p(TPM2_RC_SIGNATURE, 2));
        memset(raw, 0, 2 * fl);
        memcpy(raw + fl - ec->signatureR.size, ec->signatureR.buffer, ec->signatureR.size);
        memcpy(raw + 2 * fl - ec->signatureS.size, ec->signatureS.buffer, ec->signatureS.size);
        rawlen = 2 * fl;
        hash = ec->hash;
    } else {
        TPM_ENSURE(sig.sigAlg == TPM2_ALG_RSASSA || sig.sigAlg == TPM2_ALG_RSAPSS, tpm_rc_p(TPM2_RC_SCHEME, 2));
        const TPMS_SIGNATURE_RSA *rs = &sig.signature.rsassa;
        TPM_ENSURE(rs->sig.size <= sizeof raw, tpm_rc_p(TPM2_RC_SIZE, 2));
        memcpy(raw, rs->sig.buffer, rs->sig.size);
        rawlen = rs->sig.size;
        hash = rs->hash;
    }
    TPM_ENSURE(tpm_pcr_bank_index(hash) >= 0, tpm_rc_p(TPM2_RC_HASH, 2));
    TPM_ENSURE(pub->type == TPM2_ALG_ECC || digest.size == tpm_hash_size(hash), tpm_rc_p(TPM2_RC_SIZE, 1));

    cf_sig_params p = sig_params(sig.sigAlg, hash);
    cf_signer *v = NULL;
    TPM_TRY(tpm_object_signer(o, &p, false, &v));
    cf_err e = cf_signer_verify(v, digest.buffer, digest.size, raw, rawlen);
    cf_signer_free(v);
    TPM_ENSURE(e == CF_OK, tpm_rc_p(TPM2_RC_SIGNATURE, 2));

    TPMT_TK_VERIFIED ticket = { .tag = TPM2_ST_VERIFIED, .hierarchy = o->hierarchy };
    if (o->hierarchy == TPM2_RH_NULL)
        ticket.digest.size = 0;   /* a NULL ticket */
    else
        TPM_TRY(tpm_ticket(t, TPM2_ST_VERIFIED, o->hierarchy, digest.buffer, digest.size, o->name.name,
                           o->name.size, &ticket.digest));
    TPM_PUT(out, TPMT_TK_VERIFIED, &ticket);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_hash)
{
    TPM2B_MAX_BUFFER data;
    TPMI_ALG_HASH alg;
    TPMI_RH_HIERARCHY hier;
    TPM_GET(in, TPM2B_MAX_BUFFER, &data, 1);
    TPM_GET(in, UINT16, &alg, 2);
    TPM_GET(in, UINT32, &hier, 3);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(data.size <= TPM_INPUT_BUFFER, tpm_rc_p(TPM2_RC_SIZE, 1));
    TPM_ENSURE(tpm_pcr_bank_index(alg) >= 0, tpm_rc_p(TPM2_RC_HASH, 2));
    TPM_ENSURE(tpm_hierarchy_index(hier) >= 0, tpm_rc_p(TPM2_RC_VALUE, 3));
    TPM_ENSURE(tpm_hierarchy_enabled(t, hier), tpm_rc_p(TPM2_RC_HIERARCHY, 3));

    TPM2B_DIGEST d = { .size = (uint16_t)tpm_hash_size(alg) };
    TPM_TRY(tpm_hash(alg, data.buffer, data.size, d.buffer));
    TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL };
    static const uint8_t generated[4] = { 0xFF, 0x54, 0x43, 0x47 };   /* TPM_GENERATED_VALUE */
    bool tpm_like = data.size >= 4 && memcmp(data.buffer, generated, 4) == 0;
    if (hier != TPM2_RH_NULL && !tpm_like) {
        ticket.hierarchy = hier;
        TPM_TRY(tpm_ticket(t, TPM2_ST_HASHCHECK, hier, d.buffer, d.size, NULL, 0, &ticket.digest));
    }
    TPM_PUT(out, TPM2B_DIGEST, &d);
    TPM_PUT(out, TPMT_TK_HASHCHECK, &ticket);
    cf_wipe(&data, sizeof data);
    return TPM2_RC_SUCCESS;
}
