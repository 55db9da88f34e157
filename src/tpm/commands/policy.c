/* policy.c: the policy commands of Part 3 section 23 beyond those sealing to PCRs needs (which are
 * in session.c): PolicySecret (23.4), PolicyOR (23.6) and PolicyCommandCode (23.11). What they
 * record is enforced when the session authorizes (../session.c, check_policy).
 *
 * PolicySecret: authHandle is authorized (USER role) in the authorization area like any entity
 * (password, HMAC or policy session; a policy session must itself carry PolicyAuthValue or
 * PolicyPassword: TPM_RC_MODE), in trial sessions as well. Then, in a real session only, the
 * checks of the reference TPM's PolicyParameterChecks: a non-empty nonceTPM must be the policy
 * session's (TPM_RC_NONCE + P1); a non-empty cpHashA must have the digest size (TPM_RC_SIZE + P2)
 * and agree with a cpHash recorded before (TPM_RC_CPHASH), and is recorded: the authorized
 * command must then have that cpHash (TPM_RC_POLICY_FAIL); expiration != 0 sets a timeout of
 * |expiration| seconds from the session's start (with nonceTPM) or at that TPM Time in seconds
 * (without), already past: TPM_RC_EXPIRED + P4, past at use: TPM_RC_EXPIRED.
 *   policyDigest = H(H(policyDigest || TPM_CC_PolicySecret || authHandle.name) || policyRef)
 * The response has an empty timeout and a NULL ticket (TPM_ST_AUTH_SECRET, TPM_RH_NULL, no
 * digest), also for a negative expiration: there is no PolicyTicket to take a real one.
 *
 * PolicyOR: pHashList of 2..8 digests (else TPM_RC_SIZE + P1); in a real session the current
 * policyDigest must be one of them (TPM_RC_VALUE + P1).
 *   policyDigest = H(0...0 || TPM_CC_PolicyOR || digest_1 || ... || digest_n)
 *
 * PolicyCommandCode: a command this TPM has (else TPM_RC_POLICY_CC + P1), and the same as a code
 * set before (TPM_RC_VALUE + P1).
 *   policyDigest = H(policyDigest || TPM_CC_PolicyCommandCode || code) */
#include <string.h>
#include "tpm/internal.h"

static void be32(uint32_t v, uint8_t b[4])
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

/* The TPM Time (ms since Startup), the reference TPM's g_time. */
static uint64_t tpm_time(tpm_instance *t)
{
    return tpm_now(t) - t->time_base;
}

TPM_HANDLER(tpm_cc_policy_secret)
{
    TPM2B_NONCE nonce, ref;
    TPM2B_DIGEST cp;
    INT32 expiration;
    TPM_GET(in, TPM2B_NONCE, &nonce, 1);
    TPM_GET(in, TPM2B_DIGEST, &cp, 2);
    TPM_GET(in, TPM2B_NONCE, &ref, 3);
    TPM_GET(in, INT32, &expiration, 4);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(c->handles[0] != TPM2_RH_NULL, tpm_rc_h(TPM2_RC_VALUE, 1));   /* TPMI_DH_ENTITY, no + */
    tpm_session *s = tpm_session_find(t, c->handles[1]);
    size_t hl = tpm_hash_size(s->auth_hash);
    bool trial = s->type == TPM2_SE_TRIAL;
    uint64_t timeout = 0;
    if (!trial) {
        if (nonce.size > 0)
            TPM_ENSURE(nonce.size == s->nonce_tpm.size && memcmp(nonce.buffer, s->nonce_tpm.buffer, nonce.size) == 0,
                       tpm_rc_p(TPM2_RC_NONCE, 1));
        if (expiration != 0) {
            uint64_t secs = expiration < 0 ? (uint64_t)(-(int64_t)expiration) : (uint64_t)expiration;
            uint64_t now = tpm_time(t);
            timeout = secs * 1000u + (nonce.size > 0 ? s->start_time : now % 1000u);
            TPM_ENSURE(timeout >= now, tpm_rc_p(TPM2_RC_EXPIRED, 4));
        }
        if (cp.size > 0) {
            TPM_ENSURE(cp.size == hl, tpm_rc_p(TPM2_RC_SIZE, 2));
            TPM_ENSURE(s->cp_hash.size == 0 || memcmp(s->cp_hash.buffer, cp.buffer, hl) == 0, TPM2_RC_CPHASH);
        }
    }
    TPM2B_NAME name;
    tpm_entity_name(t, c->handles[0], &name);
    static const uint8_t none[1];
    uint8_t ccb[4], d[CF_HASH_MAX];
    be32(TPM2_CC_PolicySecret, ccb);
    TPM_TRY(tpm_hash_v(s->auth_hash, d, s->policy_digest.buffer, (size_t)s->policy_digest.size, ccb, (size_t)4,
                       name.name, (size_t)name.size, NULL));
    TPM_TRY(tpm_hash_v(s->auth_hash, d, d, hl, ref.size ? ref.buffer : none, (size_t)ref.size, NULL));

    TPMT_TK_AUTH ticket = { .tag = TPM2_ST_AUTH_SECRET, .hierarchy = TPM2_RH_NULL };
    cf_put_u16(out, 0);   /* TPM2B_TIMEOUT: empty */
    TPM_PUT(out, TPMT_TK_AUTH, &ticket);

    memcpy(s->policy_digest.buffer, d, hl);
    if (!trial) {
        if (cp.size > 0)
            s->cp_hash = cp;
        if (timeout != 0 && (s->timeout == 0 || timeout < s->timeout))
            s->timeout = timeout;
    }
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_policy_or)
{
    TPML_DIGEST list;
    TPM_GET(in, TPML_DIGEST, &list, 1);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(list.count >= 2, tpm_rc_p(TPM2_RC_SIZE, 1));
    tpm_session *s = tpm_session_find(t, c->handles[0]);
    size_t hl = tpm_hash_size(s->auth_hash);
    if (s->type != TPM2_SE_TRIAL) {
        bool found = false;
        for (uint32_t i = 0; i < list.count; i++)
            found |= list.digests[i].size == hl && memcmp(list.digests[i].buffer, s->policy_digest.buffer, hl) == 0;
        TPM_ENSURE(found, tpm_rc_p(TPM2_RC_VALUE, 1));
    }
    uint8_t buf[CF_HASH_MAX + 4 + 8 * sizeof(TPMU_HA)];
    size_t n = hl;
    memset(buf, 0, hl);
    be32(TPM2_CC_PolicyOR, buf + n);
    n += 4;
    for (uint32_t i = 0; i < list.count; i++) {
        memcpy(buf + n, list.digests[i].buffer, list.digests[i].size);
        n += list.digests[i].size;
    }
    uint8_t d[CF_HASH_MAX];
    TPM_TRY(tpm_hash(s->auth_hash, buf, n, d));
    memcpy(s->policy_digest.buffer, d, hl);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_policy_command_code)
{
    uint32_t code;
    TPM_GET(in, UINT32, &code, 1);
    TPM_TRY(tpm_params_done(in));
    tpm_session *s = tpm_session_find(t, c->handles[0]);
    TPM_ENSURE(s->command_code == 0 || s->command_code == code, tpm_rc_p(TPM2_RC_VALUE, 1));
    TPM_ENSURE(tpm_command_find(code) != NULL, tpm_rc_p(TPM2_RC_POLICY_CC, 1));
    uint8_t ccb[4], codeb[4], d[CF_HASH_MAX];
    be32(TPM2_CC_PolicyCommandCode, ccb);
    be32(code, codeb);
    TPM_TRY(tpm_hash_v(s->auth_hash, d, s->policy_digest.buffer, (size_t)s->policy_digest.size, ccb, (size_t)4,
                       codeb, (size_t)4, NULL));
    memcpy(s->policy_digest.buffer, d, s->policy_digest.size);
    s->command_code = code;
    return TPM2_RC_SUCCESS;
}
