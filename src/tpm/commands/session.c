/* session.c (commands): Part 3 section 11.1 (StartAuthSession) and the policy commands of
 * section 23 that sealing to PCRs needs: PolicyPCR, PolicyAuthValue, PolicyPassword,
 * PolicyGetDigest, PolicyRestart (PolicySecret, PolicyOR, PolicyCommandCode: policy.c). What
 * happens when a session is used is in ../session.c.
 *
 * StartAuthSession (Part 1 sections 19.6.7-19.6.9, 11.4.10):
 *   salt: tpmKey = TPM_RH_NULL (none), an RSA decryption key (encryptedSalt is RSA-OAEP with the
 *         key's nameAlg and label "SECRET\0"), or an ECC decryption key (encryptedSalt is the
 *         caller's ephemeral point Qe; salt = KDFe(nameAlg, x(d * Qe), "SECRET", Qe.x, Qs.x,
 *         8 * digest size), Part 1 C.6.1);
 *   bind: TPM_RH_NULL or an entity whose authValue (trailing zeros removed) is folded in;
 *   sessionKey = KDFa(authHash, bind.authValue || salt, "ATH", nonceTPM, nonceCaller,
 *                8 * digest size), empty when there is neither. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

static bool hash_ok(TPMI_ALG_HASH h)
{
    return h == TPM2_ALG_SHA1 || h == TPM2_ALG_SHA256 || h == TPM2_ALG_SHA384;
}

static tpm_rc check_symmetric(const TPMT_SYM_DEF *s)
{
    switch (s->algorithm) {
    case TPM2_ALG_NULL:
        return TPM2_RC_SUCCESS;
    case TPM2_ALG_XOR:
        TPM_ENSURE(hash_ok(s->keyBits.exclusiveOr), tpm_rc_p(TPM2_RC_HASH, 4));
        return TPM2_RC_SUCCESS;
    case TPM2_ALG_AES:
        TPM_ENSURE(s->keyBits.aes == 128 || s->keyBits.aes == 192 || s->keyBits.aes == 256,
                   tpm_rc_p(TPM2_RC_KEY_SIZE, 4));
        TPM_ENSURE(s->mode.aes == TPM2_ALG_CFB, tpm_rc_p(TPM2_RC_MODE, 4));
        return TPM2_RC_SUCCESS;
    default:
        return tpm_rc_p(TPM2_RC_SYMMETRIC, 4);
    }
}

/* The salt from encryptedSalt with tpmKey (Part 1 section 11.4.10; errors are parameter 2's). */
static tpm_rc decrypt_salt(tpm_object *k, const TPM2B_ENCRYPTED_SECRET *es, uint8_t *salt, size_t *saltlen)
{
    TPMI_ALG_HASH nh = k->pub.nameAlg;
    size_t hl = tpm_hash_size(nh);
    TPM_ENSURE(es->size > 0, tpm_rc_p(TPM2_RC_VALUE, 2));
    if (k->pub.type == TPM2_ALG_RSA) {
        static const uint8_t label[] = "SECRET";   /* with its NUL (Part 1 section 11.4.10.4) */
        cf_rsa_enc_params p = { .mode = CF_RSA_ENC_OAEP, .hash = tpm_hash_alg(nh), .mgf_hash = tpm_hash_alg(nh),
                                .label = label, .label_len = sizeof label };
        uint8_t out[512];
        size_t n = sizeof out;
        cf_err e = cf_rsa_decrypt(k->key, &p, es->secret, es->size, out, &n);
        if (e != CF_OK || n > CF_HASH_MAX) {
            cf_wipe(out, sizeof out);
            return tpm_rc_p(TPM2_RC_VALUE, 2);
        }
        memcpy(salt, out, n);
        *saltlen = n;
        cf_wipe(out, sizeof out);
        return TPM2_RC_SUCCESS;
    }
    /* ECC: the secret holds a marshaled TPMS_ECC_POINT */
    TPMS_ECC_POINT q;
    cf_reader r = cf_reader_init(es->secret, es->size);
    tpm_rc rc = tpm_get(&r, TPM_UNMARSHAL(TPMS_ECC_POINT), &q);
    TPM_ENSURE(rc == TPM2_RC_SUCCESS && cf_reader_done(&r), tpm_rc_p(TPM2_RC_ECC_POINT, 2));
    size_t fl = k->pub.unique.ecc.x.size;
    TPM_ENSURE(q.x.size > 0 && q.x.size <= fl && q.y.size > 0 && q.y.size <= fl, tpm_rc_p(TPM2_RC_ECC_POINT, 2));
    uint8_t pt[1 + 2 * 48];
    memset(pt, 0, sizeof pt);
    pt[0] = 0x04;
    memcpy(pt + 1 + fl - q.x.size, q.x.buffer, q.x.size);
    memcpy(pt + 1 + 2 * fl - q.y.size, q.y.buffer, q.y.size);
    cf_buf z = { 0 };
    cf_err e = cf_ecdh(k->key, pt, 1 + 2 * fl, &z);
    TPM_ENSURE(e == CF_OK, tpm_rc_p(TPM2_RC_ECC_POINT, 2));
    rc = tpm_kdfe(nh, z.p, z.len, "SECRET", pt + 1, fl, k->pub.unique.ecc.x.buffer, fl, (uint32_t)(8 * hl), salt);
    cf_buf_free(&z);
    *saltlen = hl;
    return rc;
}

TPM_HANDLER(tpm_cc_start_auth_session)
{
    TPM2B_NONCE nonce_caller;
    TPM2B_ENCRYPTED_SECRET es;
    uint8_t se;
    TPMT_SYM_DEF sym;
    TPMI_ALG_HASH hash;
    TPM_GET(in, TPM2B_NONCE, &nonce_caller, 1);
    TPM_GET(in, TPM2B_ENCRYPTED_SECRET, &es, 2);
    TPM_GET(in, UINT8, &se, 3);
    TPM_GET(in, TPMT_SYM_DEF, &sym, 4);
    TPM_GET(in, UINT16, &hash, 5);
    TPM_TRY(tpm_params_done(in));

    TPM_ENSURE(hash_ok(hash), tpm_rc_p(TPM2_RC_HASH, 5));
    size_t hl = tpm_hash_size(hash);
    TPM_ENSURE(se == TPM2_SE_HMAC || se == TPM2_SE_POLICY || se == TPM2_SE_TRIAL, tpm_rc_p(TPM2_RC_VALUE, 3));
    TPM_TRY(check_symmetric(&sym));
    TPM_ENSURE(nonce_caller.size >= 16 && nonce_caller.size <= hl, tpm_rc_p(TPM2_RC_SIZE, 1));
    tpm_object *key = c->objects[0];
    if (!key)
        TPM_ENSURE(es.size == 0, tpm_rc_p(TPM2_RC_VALUE, 2));
    else
        TPM_ENSURE((key->pub.type == TPM2_ALG_RSA || key->pub.type == TPM2_ALG_ECC) && key->key
                   && (key->pub.objectAttributes & TPMA_OBJECT_DECRYPT), tpm_rc_h(TPM2_RC_KEY, 1));
    size_t slot = 0;
    while (slot < TPM_SESSION_SLOTS && t->sessions[slot].used)
        slot++;
    TPM_ENSURE(slot < TPM_SESSION_SLOTS, TPM2_RC_SESSION_MEMORY);

    tpm_session s;
    memset(&s, 0, sizeof s);
    tpm_rc rc = TPM2_RC_SUCCESS;
    uint8_t secret[sizeof(TPM2B_AUTH) + CF_HASH_MAX];   /* bind.authValue || salt */
    size_t slen = 0, saltlen = 0;
    if (c->handles[1] != TPM2_RH_NULL) {
        s.bound = true;
        TPM_GUARD(tpm_entity_auth(t, c->handles[1], c->objects[1], &s.bind_auth));
        while (s.bind_auth.size > 0 && s.bind_auth.buffer[s.bind_auth.size - 1] == 0)
            s.bind_auth.size--;
        tpm_entity_name(t, c->handles[1], &s.bind_name);
        memcpy(secret, s.bind_auth.buffer, s.bind_auth.size);
        slen = s.bind_auth.size;
    }
    if (key) {
        TPM_GUARD(decrypt_salt(key, &es, secret + slen, &saltlen));
        slen += saltlen;
    }
    s.type = (TPM2_SE)se;
    s.auth_hash = hash;
    s.symmetric = sym;
    s.nonce_tpm.size = (uint16_t)hl;
    TPM_CHECK(cf_random(s.nonce_tpm.buffer, hl) == CF_OK, TPM2_RC_FAILURE);
    if (s.bound || key) {
        static const uint8_t none[1];
        TPM_GUARD(tpm_kdfa(hash, slen ? secret : none, slen, "ATH", s.nonce_tpm.buffer, s.nonce_tpm.size,
                           nonce_caller.buffer, nonce_caller.size, (uint32_t)(8 * hl), s.session_key.buffer));
        s.session_key.size = (uint16_t)hl;
    }
    s.policy_digest.size = (uint16_t)hl;   /* zeros */
    s.start_time = tpm_now(t) - t->time_base;
    s.used = true;
    s.handle = ((se == TPM2_SE_HMAC ? (uint32_t)TPM2_HT_HMAC_SESSION : (uint32_t)TPM2_HT_POLICY_SESSION) << 24)
               | (uint32_t)slot;

    TPM_PUT(out, TPM2B_NONCE, &s.nonce_tpm);
    t->sessions[slot] = s;
    c->r_handle = s.handle;
out:
    cf_wipe(secret, sizeof secret);
    cf_wipe(&s, sizeof s);
    cf_wipe(&es, sizeof es);
    return rc;
}

/* policyDigest_new = H(policyDigest_old || commandCode || args...) (Part 1 section 19.7.2). */
static tpm_rc policy_extend(tpm_session *s, TPM2_CC cc, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    static const uint8_t none[1];
    uint8_t ccb[4] = { (uint8_t)(cc >> 24), (uint8_t)(cc >> 16), (uint8_t)(cc >> 8), (uint8_t)cc };
    uint8_t d[CF_HASH_MAX];
    TPM_TRY(tpm_hash_v(s->auth_hash, d, s->policy_digest.buffer, (size_t)s->policy_digest.size, ccb, (size_t)4,
                       a ? a : none, a ? alen : (size_t)0, b ? b : none, b ? blen : (size_t)0, NULL));
    memcpy(s->policy_digest.buffer, d, s->policy_digest.size);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_policy_restart)
{
    TPM_TRY(tpm_params_done(in));
    tpm_session *s = tpm_session_find(t, c->handles[0]);
    memset(s->policy_digest.buffer, 0, sizeof s->policy_digest.buffer);
    s->pcr_checked = s->auth_value_needed = s->password_needed = false;
    s->pcr_counter = 0;
    s->command_code = 0;
    s->cp_hash.size = 0;
    s->timeout = 0;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_policy_get_digest)
{
    TPM_TRY(tpm_params_done(in));
    const tpm_session *s = tpm_session_find(t, c->handles[0]);
    TPM_PUT(out, TPM2B_DIGEST, &s->policy_digest);
    return TPM2_RC_SUCCESS;
}

/* Part 3 section 23.7: digestTPM = H_authHash(selected PCR values); a pcrDigest given to a real
 * policy session must equal it (TPM_RC_VALUE); a trial session takes the caller's pcrDigest when
 * there is one. policyDigest_new = H(old || TPM_CC_PolicyPCR || pcrs || digestTPM). A real session
 * remembers the PCR update counter: a PCR change before the session is used gives
 * TPM_RC_PCR_CHANGED. */
TPM_HANDLER(tpm_cc_policy_pcr)
{
    TPM2B_DIGEST given;
    TPML_PCR_SELECTION sel;
    TPM_GET(in, TPM2B_DIGEST, &given, 1);
    TPM_GET(in, TPML_PCR_SELECTION, &sel, 2);
    TPM_TRY(tpm_params_done(in));
    tpm_session *s = tpm_session_find(t, c->handles[0]);
    for (uint32_t i = 0; i < sel.count; i++) {
        TPM_ENSURE(tpm_pcr_bank_index(sel.pcrSelections[i].hash) >= 0, tpm_rc_p(TPM2_RC_HASH, 2));
        for (unsigned p = TPM_PCR_COUNT; p < 8u * sel.pcrSelections[i].sizeofSelect; p++)
            TPM_ENSURE(!((sel.pcrSelections[i].pcrSelect[p / 8] >> (p % 8)) & 1), tpm_rc_p(TPM2_RC_VALUE, 2));
    }
    bool trial = s->type == TPM2_SE_TRIAL;
    TPM2B_DIGEST dtpm;
    if (trial && given.size > 0) {
        dtpm = given;
    } else {
        TPM_TRY(tpm_pcr_digest(t, s->auth_hash, &sel, &dtpm));
        if (!trial && given.size > 0)
            TPM_ENSURE(given.size == dtpm.size && cf_ct_equal(given.buffer, dtpm.buffer, dtpm.size),
                       tpm_rc_p(TPM2_RC_VALUE, 1));
    }
    if (!trial) {
        TPM_ENSURE(!s->pcr_checked || s->pcr_counter == t->pcrs.update_counter, TPM2_RC_PCR_CHANGED);
    }
    uint8_t selbuf[sizeof sel + 8];
    size_t sl = tpm_marshal_to(TPM_MARSHAL(TPML_PCR_SELECTION), &sel, selbuf, sizeof selbuf);
    TPM_ENSURE(sl > 0, TPM2_RC_FAILURE);
    TPM_TRY(policy_extend(s, TPM2_CC_PolicyPCR, selbuf, sl, dtpm.buffer, dtpm.size));
    if (!trial) {
        s->pcr_checked = true;
        s->pcr_counter = t->pcrs.update_counter;
    }
    return TPM2_RC_SUCCESS;
}

/* Part 3 sections 23.17 / 23.18: both extend the digest with TPM_CC_PolicyAuthValue. */
TPM_HANDLER(tpm_cc_policy_auth_value)
{
    TPM_TRY(tpm_params_done(in));
    tpm_session *s = tpm_session_find(t, c->handles[0]);
    TPM_TRY(policy_extend(s, TPM2_CC_PolicyAuthValue, NULL, 0, NULL, 0));
    s->auth_value_needed = true;
    s->password_needed = false;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_policy_password)
{
    TPM_TRY(tpm_params_done(in));
    tpm_session *s = tpm_session_find(t, c->handles[0]);
    TPM_TRY(policy_extend(s, TPM2_CC_PolicyAuthValue, NULL, 0, NULL, 0));
    s->password_needed = true;
    s->auth_value_needed = false;
    return TPM2_RC_SUCCESS;
}
