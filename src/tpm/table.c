/* table.c: the command table. One row per command (Part 3), sorted by command code: it drives the
 * dispatch in engine.c and TPM2_GetCapability(TPM_CAP_COMMANDS) alike, so the two cannot disagree.
 * Columns: code, name, handles in the handle area, how many of them need authorization, whether the
 * response has a handle, TPMA_CC nv / flushed, the kind of each handle, the handler. */
#include "tpm/internal.h"

#define H(a, b, c) { TPM_HK_##a, TPM_HK_##b, TPM_HK_##c }

const tpm_cmd_def tpm_commands[] = {
    { TPM2_CC_CreatePrimary, "CreatePrimary", 1, 1, true, false, false, H(HIERARCHY, NONE, NONE), tpm_cc_create_primary },
    { TPM2_CC_PCR_Event, "PCR_Event", 1, 1, false, true, false, H(PCR, NONE, NONE), tpm_cc_pcr_event },
    { TPM2_CC_PCR_Reset, "PCR_Reset", 1, 1, false, true, false, H(PCR, NONE, NONE), tpm_cc_pcr_reset },
    { TPM2_CC_IncrementalSelfTest, "IncrementalSelfTest", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_incremental_self_test },
    { TPM2_CC_SelfTest, "SelfTest", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_self_test },
    { TPM2_CC_Startup, "Startup", 0, 0, false, true, false, H(NONE, NONE, NONE), tpm_cc_startup },
    { TPM2_CC_Shutdown, "Shutdown", 0, 0, false, true, false, H(NONE, NONE, NONE), tpm_cc_shutdown },
    { TPM2_CC_StirRandom, "StirRandom", 0, 0, false, true, false, H(NONE, NONE, NONE), tpm_cc_stir_random },
    { TPM2_CC_Sign, "Sign", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_sign },
    { TPM2_CC_FlushContext, "FlushContext", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_flush_context },
    { TPM2_CC_ReadPublic, "ReadPublic", 1, 0, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_read_public },
    { TPM2_CC_VerifySignature, "VerifySignature", 1, 0, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_verify_signature },
    { TPM2_CC_GetCapability, "GetCapability", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_get_capability },
    { TPM2_CC_GetRandom, "GetRandom", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_get_random },
    { TPM2_CC_GetTestResult, "GetTestResult", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_get_test_result },
    { TPM2_CC_Hash, "Hash", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_hash },
    { TPM2_CC_PCR_Read, "PCR_Read", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_pcr_read },
    { TPM2_CC_ReadClock, "ReadClock", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_read_clock },
    { TPM2_CC_PCR_Extend, "PCR_Extend", 1, 1, false, true, false, H(PCR, NONE, NONE), tpm_cc_pcr_extend },
    { TPM2_CC_TestParms, "TestParms", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_test_parms },
};
const size_t tpm_n_commands = sizeof tpm_commands / sizeof tpm_commands[0];

const tpm_cmd_def *tpm_command_find(TPM2_CC cc)
{
    size_t lo = 0, hi = tpm_n_commands;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tpm_commands[mid].cc == cc)
            return &tpm_commands[mid];
        if (tpm_commands[mid].cc < cc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* TPMA_CC (Part 2 section 8.9). */
TPMA_CC tpm_command_attrs(const tpm_cmd_def *d)
{
    TPMA_CC a = d->cc & TPMA_CC_COMMANDINDEX_MASK;
    if (d->nv)
        a |= TPMA_CC_NV;
    if (d->flushed)
        a |= TPMA_CC_FLUSHED;
    a |= ((TPMA_CC)d->n_handles << TPMA_CC_CHANDLES_SHIFT) & TPMA_CC_CHANDLES_MASK;
    if (d->r_handle)
        a |= TPMA_CC_RHANDLE;
    return a;
}
