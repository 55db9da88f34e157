/* hierarchy.c: Part 3 sections 24.8 (HierarchyChangeAuth), 24.6 (Clear), 24.7 (ClearControl),
 * 25.2 (DictionaryAttackLockReset) and 25.3 (DictionaryAttackParameters).
 *
 * What these change lives in the persistent part (nv), so each sets nv_dirty and the engine hands
 * the new blob to the persist callback before it answers. The dictionary-attack counting itself is
 * in session.c (a failed authorization of a DA-protected entity); these commands only reset and
 * configure it. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

/* The response HMAC of a command that changed the authValue of the entity it authorized uses the
 * new value (Part 1 section 19.6.5, the reference TPM's ComputeResponseHMAC reading it afresh);
 * a session bound to that entity is no longer bound to it then, so the value is included. */
static void response_auth(tpm_cmd *c, const TPM2B_AUTH *now)
{
    if (c->n_sessions == 0 || !c->sess[0])
        return;
    bool same = c->sess_auth[0].size == now->size && cf_ct_equal(c->sess_auth[0].buffer, now->buffer, now->size);
    if (!same)
        c->sess_include_auth[0] = c->sess_include_auth[0] || c->sess[0]->type == TPM2_SE_HMAC;
    c->sess_auth[0] = *now;
}

TPM_HANDLER(tpm_cc_hierarchy_change_auth)
{
    TPM2B_AUTH auth;
    TPM_GET(in, TPM2B_AUTH, &auth, 1);
    TPM_TRY(tpm_params_done(in));
    /* trailing zeros do not count (Part 1 section 19.6.4); at most the context hash's size */
    while (auth.size > 0 && auth.buffer[auth.size - 1] == 0)
        auth.size--;
    TPM_ENSURE(auth.size <= tpm_hash_size(TPM_CONTEXT_HASH), tpm_rc_p(TPM2_RC_SIZE, 1));
    TPM2_HANDLE h = c->handles[0];
    TPM2B_AUTH *dst = NULL;
    if (h == TPM2_RH_LOCKOUT) {
        dst = &t->nv.lockout_auth;
    } else {
        int i = tpm_hierarchy_index(h);
        TPM_ENSURE(i >= 0 && i != TPM_H_NULL, tpm_rc_h(TPM2_RC_VALUE, 1));
        dst = &t->nv.h[i].auth;
    }
    cf_wipe(dst, sizeof *dst);
    *dst = auth;
    response_auth(c, &auth);
    cf_wipe(&auth, sizeof auth);
    t->nv_dirty = true;
    return TPM2_RC_SUCCESS;
}

static bool cleared_hierarchy(TPMI_RH_HIERARCHY h) { return h == TPM2_RH_OWNER || h == TPM2_RH_ENDORSEMENT; }

/* Persistent objects of the storage and endorsement hierarchies go (the rest keep their order,
 * packed at the front). */
static void evict_owner_objects(tpm_persistent *nv)
{
    size_t kept = 0;
    for (size_t i = 0; i < TPM_PERSISTENT_SLOTS; i++) {
        tpm_object *o = &nv->persistent[i];
        if (!o->used)
            continue;
        if (cleared_hierarchy(o->hierarchy)) {
            tpm_object_clear(o);
            continue;
        }
        if (kept != i) {
            nv->persistent[kept] = *o;
            memset(o, 0, sizeof *o);   /* moved, not freed: the copy owns the key */
        }
        kept++;
    }
    nv->n_persistent = (uint32_t)kept;
}

TPM_HANDLER(tpm_cc_clear)
{
    TPM_TRY(tpm_params_done(in));
    tpm_persistent *nv = &t->nv;
    TPM_ENSURE(!nv->disable_clear, TPM2_RC_DISABLED);
    /* new values first: a failure changes nothing */
    tpm_hierarchy owner = nv->h[TPM_H_OWNER];
    uint8_t eh_proof[TPM_PROOF_LEN];
    if (tpm_hierarchy_new_seed(&owner) != CF_OK || cf_random(eh_proof, sizeof eh_proof) != CF_OK) {
        cf_wipe(&owner, sizeof owner);
        return TPM2_RC_FAILURE;
    }

    /* the storage primary seed and shProof, ehProof (the endorsement seed stays: the EK survives) */
    memcpy(nv->h[TPM_H_OWNER].seed, owner.seed, TPM_SEED_LEN);
    memcpy(nv->h[TPM_H_OWNER].proof, owner.proof, TPM_PROOF_LEN);
    memcpy(nv->h[TPM_H_ENDORSEMENT].proof, eh_proof, TPM_PROOF_LEN);
    cf_wipe(&owner, sizeof owner);
    cf_wipe(eh_proof, sizeof eh_proof);
    nv->sh_enable = nv->eh_enable = true;
    /* ownerAuth, endorsementAuth, lockoutAuth and their policies: empty */
    for (int i = TPM_H_OWNER; i <= TPM_H_ENDORSEMENT; i++) {
        cf_wipe(&nv->h[i].auth, sizeof nv->h[i].auth);
        memset(&nv->h[i].policy, 0, sizeof nv->h[i].policy);
        nv->h[i].policy_alg = TPM2_ALG_NULL;
    }
    cf_wipe(&nv->lockout_auth, sizeof nv->lockout_auth);
    if (c->handles[0] == TPM2_RH_LOCKOUT)
        response_auth(c, &nv->lockout_auth);   /* the new lockoutAuth: empty (Part 3 section 24.6) */
    memset(&nv->lockout_policy, 0, sizeof nv->lockout_policy);
    nv->lockout_policy_alg = TPM2_ALG_NULL;
    /* objects of those hierarchies, loaded and persistent */
    for (size_t i = 0; i < TPM_OBJECT_SLOTS; i++)
        if (t->objects[i].used && !tpm_object_is_sequence(&t->objects[i]) && cleared_hierarchy(t->objects[i].hierarchy))
            tpm_object_clear(&t->objects[i]);
    evict_owner_objects(nv);
    /* dictionary-attack counters */
    nv->failed_tries = 0;
    nv->lockout_locked = false;
    nv->lockout_locked_at = nv->last_da_decrement = 0;
    /* Clock, resetCount, restartCount to zero; Safe is YES; pcrUpdateCounter + 1 */
    nv->clock = 0;
    t->clock_saved = 0;
    nv->reset_count = nv->restart_count = 0;
    t->pcrs.update_counter++;
    t->nv_dirty = true;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_clear_control)
{
    TPMI_YES_NO disable;
    TPM_GET(in, UINT8, &disable, 1);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(disable == TPM2_YES || disable == TPM2_NO, tpm_rc_p(TPM2_RC_VALUE, 1));
    /* only the platform may enable Clear again */
    TPM_ENSURE(c->handles[0] != TPM2_RH_LOCKOUT || disable == TPM2_YES, TPM2_RC_AUTH_FAIL);
    t->nv.disable_clear = disable == TPM2_YES;
    t->nv_dirty = true;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_da_lock_reset)
{
    (void)c;
    TPM_TRY(tpm_params_done(in));
    t->nv.failed_tries = 0;
    t->nv.last_da_decrement = t->nv.clock;
    t->nv_dirty = true;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_da_parameters)
{
    (void)c;
    uint32_t max_tries, recovery, lockout_recovery;
    TPM_GET(in, UINT32, &max_tries, 1);
    TPM_GET(in, UINT32, &recovery, 2);
    TPM_GET(in, UINT32, &lockout_recovery, 3);
    TPM_TRY(tpm_params_done(in));
    /* failedTries stays (an errata of the reference TPM removed its reset here) */
    t->nv.max_tries = max_tries;
    t->nv.recovery_time = recovery;
    t->nv.lockout_recovery = lockout_recovery;
    t->nv_dirty = true;
    return TPM2_RC_SUCCESS;
}
