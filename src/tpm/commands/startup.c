/* startup.c: Part 3 sections 9 (Startup, Shutdown), 10 (testing), 16 (random numbers) and 29.2
 * (ReadClock).
 *
 * Startup kinds (Part 1 section 12.2.3): Startup(CLEAR) after Shutdown(STATE) is a TPM Restart,
 * Startup(STATE) after Shutdown(STATE) a TPM Resume, anything else a TPM Reset (new null seed,
 * resetCount + 1). The state saved by Shutdown(STATE) holds the PCRs (those the PC Client profile
 * marks stateSave come back on Resume) and the null hierarchy's seed and proof. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

TPM_HANDLER(tpm_cc_startup)
{
    TPM2_SU su;
    TPM_GET(in, UINT16, &su, 1);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(!t->started, TPM2_RC_INITIALIZE);
    TPM_ENSURE(su == TPM2_SU_CLEAR || su == TPM2_SU_STATE, tpm_rc_p(TPM2_RC_VALUE, 1));
    TPM_ENSURE(su == TPM2_SU_CLEAR || t->nv.saved, tpm_rc_p(TPM2_RC_VALUE, 1));

    tpm_persistent *nv = &t->nv;
    bool reset = !nv->saved;
    tpm_hierarchy fresh_null = nv->h[TPM_H_NULL];
    if (reset)
        TPM_ENSURE(tpm_hierarchy_new_seed(&fresh_null) == CF_OK, TPM2_RC_FAILURE);

    /* validated: change state */
    tpm_objects_flush_all(t);
    if (reset) {
        nv->reset_count++;
        nv->restart_count = 0;
        nv->h[TPM_H_NULL] = fresh_null;
        if (nv->lockout_recovery == 0)
            nv->lockout_locked = false;   /* Part 1 section 19.8.4: only a Reset unlocks it then */
        nv->sh_enable = nv->eh_enable = true;
    } else {
        nv->restart_count++;
        memcpy(nv->h[TPM_H_NULL].seed, nv->saved_null_seed, TPM_SEED_LEN);
        memcpy(nv->h[TPM_H_NULL].proof, nv->saved_null_proof, TPM_PROOF_LEN);
    }
    if (su == TPM2_SU_STATE) {
        tpm_pcrs_restore(t);
    } else {
        tpm_pcrs_init(t);
        /* TPM Reset and TPM Restart: platformAuth and platformPolicy are emptied (Part 1 section
         * 36.x / Part 3 TPM2_Startup); the platform firmware sets them again at each boot */
        tpm_hierarchy *ph = &nv->h[TPM_H_PLATFORM];
        cf_wipe(&ph->auth, sizeof ph->auth);
        memset(&ph->policy, 0, sizeof ph->policy);
        ph->policy_alg = TPM2_ALG_NULL;
    }
    nv->saved = false;
    nv->orderly = false;
    cf_wipe(&nv->saved_pcrs, sizeof nv->saved_pcrs);
    cf_wipe(&fresh_null, sizeof fresh_null);
    t->started = true;
    t->time_base = tpm_now(t);
    t->nv_dirty = true;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_shutdown)
{
    TPM2_SU su;
    TPM_GET(in, UINT16, &su, 1);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(su == TPM2_SU_CLEAR || su == TPM2_SU_STATE, tpm_rc_p(TPM2_RC_VALUE, 1));
    tpm_persistent *nv = &t->nv;
    if (su == TPM2_SU_STATE) {
        nv->saved = true;
        nv->saved_pcrs = t->pcrs;
        memcpy(nv->saved_null_seed, nv->h[TPM_H_NULL].seed, TPM_SEED_LEN);
        memcpy(nv->saved_null_proof, nv->h[TPM_H_NULL].proof, TPM_PROOF_LEN);
    } else {
        nv->saved = false;
        cf_wipe(&nv->saved_pcrs, sizeof nv->saved_pcrs);
    }
    nv->orderly = true;
    t->nv_dirty = true;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_self_test)
{
    TPMI_YES_NO full;
    TPM_GET(in, UINT8, &full, 1);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(full <= 1, tpm_rc_p(TPM2_RC_VALUE, 1));
    /* the algorithms are OpenSSL's, which tests itself when it loads */
    t->self_tested = true;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_incremental_self_test)
{
    TPML_ALG to_test;
    TPM_GET(in, TPML_ALG, &to_test, 1);
    TPM_TRY(tpm_params_done(in));
    TPML_ALG todo = { .count = 0 };
    TPM_PUT(out, TPML_ALG, &todo);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_get_test_result)
{
    TPM_TRY(tpm_params_done(in));
    tpm_put_2b(out, NULL, 0);          /* outData */
    cf_put_u32(out, TPM2_RC_SUCCESS);  /* testResult */
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_get_random)
{
    uint16_t n;
    TPM_GET(in, UINT16, &n, 1);
    TPM_TRY(tpm_params_done(in));
    if (n > TPM_MAX_RANDOM)
        n = TPM_MAX_RANDOM;   /* Part 3 section 16.1: at most the largest digest */
    uint8_t buf[TPM_MAX_RANDOM];
    TPM_ENSURE(cf_random(buf, n) == CF_OK, TPM2_RC_FAILURE);
    tpm_put_2b(out, buf, n);
    cf_wipe(buf, sizeof buf);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_stir_random)
{
    TPM2B_SENSITIVE_DATA data;
    TPM_GET(in, TPM2B_SENSITIVE_DATA, &data, 1);
    TPM_TRY(tpm_params_done(in));
    /* OpenSSL's DRBG reseeds itself from the OS; additional input has nowhere to go through
     * crypto.h, and Part 3 allows the TPM to use it "as it sees fit". */
    cf_wipe(&data, sizeof data);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_read_clock)
{
    TPM_TRY(tpm_params_done(in));
    TPMS_TIME_INFO ti = {
        .time = tpm_now(t) - t->time_base,
        .clockInfo = { .clock = t->nv.clock, .resetCount = t->nv.reset_count,
                       .restartCount = t->nv.restart_count, .safe = TPM2_YES },
    };
    TPM_PUT(out, TPMS_TIME_INFO, &ti);
    return TPM2_RC_SUCCESS;
}
