/* table.c: the command table. One row per command (Part 3), sorted by command code: it drives the
 * dispatch in engine.c and TPM2_GetCapability(TPM_CAP_COMMANDS) alike, so the two cannot disagree.
 * Columns: code, name, handles in the handle area, how many of them need authorization, whether the
 * response has a handle, TPMA_CC nv / flushed, the kind of each handle, the handler, and the
 * session flags (TPM_SF_*: first command / response parameter is a TPM2B that parameter
 * encryption may cover, per Part 3's tables; handle 1 in the ADMIN role). */
#include "tpm/internal.h"

/* The session-flags column may be left out of a row (0: nothing encryptable, USER role). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define H(a, b, c) { TPM_HK_##a, TPM_HK_##b, TPM_HK_##c }

const tpm_cmd_def tpm_commands[] = {
    { TPM2_CC_EvictControl, "EvictControl", 2, 1, false, true, false, H(HIERARCHY, OBJECT, NONE), tpm_cc_evict_control },
    { TPM2_CC_Clear, "Clear", 1, 1, false, true, false, H(CLEAR, NONE, NONE), tpm_cc_clear, 0 },
    { TPM2_CC_ClearControl, "ClearControl", 1, 1, false, true, false, H(CLEAR, NONE, NONE), tpm_cc_clear_control, 0 },
    { TPM2_CC_HierarchyChangeAuth, "HierarchyChangeAuth", 1, 1, false, true, false, H(HIERARCHY_AUTH, NONE, NONE), tpm_cc_hierarchy_change_auth, TPM_SF_ENC_CMD },
    { TPM2_CC_CreatePrimary, "CreatePrimary", 1, 1, true, false, false, H(HIERARCHY, NONE, NONE), tpm_cc_create_primary, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_DictionaryAttackLockReset, "DictionaryAttackLockReset", 1, 1, false, true, false, H(LOCKOUT, NONE, NONE), tpm_cc_da_lock_reset, 0 },
    { TPM2_CC_DictionaryAttackParameters, "DictionaryAttackParameters", 1, 1, false, true, false, H(LOCKOUT, NONE, NONE), tpm_cc_da_parameters, 0 },
    { TPM2_CC_PCR_Event, "PCR_Event", 1, 1, false, true, false, H(PCR, NONE, NONE), tpm_cc_pcr_event, TPM_SF_ENC_CMD },
    { TPM2_CC_PCR_Reset, "PCR_Reset", 1, 1, false, true, false, H(PCR, NONE, NONE), tpm_cc_pcr_reset },
    { TPM2_CC_SequenceComplete, "SequenceComplete", 1, 1, false, false, true, H(OBJECT, NONE, NONE), tpm_cc_sequence_complete, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_IncrementalSelfTest, "IncrementalSelfTest", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_incremental_self_test },
    { TPM2_CC_SelfTest, "SelfTest", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_self_test },
    { TPM2_CC_Startup, "Startup", 0, 0, false, true, false, H(NONE, NONE, NONE), tpm_cc_startup },
    { TPM2_CC_Shutdown, "Shutdown", 0, 0, false, true, false, H(NONE, NONE, NONE), tpm_cc_shutdown },
    { TPM2_CC_StirRandom, "StirRandom", 0, 0, false, true, false, H(NONE, NONE, NONE), tpm_cc_stir_random, TPM_SF_ENC_CMD },
    { TPM2_CC_ObjectChangeAuth, "ObjectChangeAuth", 2, 1, false, false, false, H(OBJECT, OBJECT, NONE), tpm_cc_object_change_auth, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP | TPM_SF_ADMIN },
    { TPM2_CC_PolicySecret, "PolicySecret", 2, 1, false, false, false, H(ENTITY, POLICY_SESSION, NONE), tpm_cc_policy_secret, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_Create, "Create", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_create, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_ECDH_ZGen, "ECDH_ZGen", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_ecdh_zgen, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_HMAC, "HMAC", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_hmac, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_Load, "Load", 1, 1, true, false, false, H(OBJECT, NONE, NONE), tpm_cc_load, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_Quote, "Quote", 1, 1, false, false, false, H(OBJECT_NULL, NONE, NONE), tpm_cc_quote, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_RSA_Decrypt, "RSA_Decrypt", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_rsa_decrypt, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_HMAC_Start, "HMAC_Start", 1, 1, true, false, false, H(OBJECT, NONE, NONE), tpm_cc_hmac_start, TPM_SF_ENC_CMD },
    { TPM2_CC_SequenceUpdate, "SequenceUpdate", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_sequence_update, TPM_SF_ENC_CMD },
    { TPM2_CC_Sign, "Sign", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_sign, TPM_SF_ENC_CMD },
    { TPM2_CC_Unseal, "Unseal", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_unseal, TPM_SF_ENC_RSP },
    { TPM2_CC_ContextLoad, "ContextLoad", 0, 0, true, false, false, H(NONE, NONE, NONE), tpm_cc_context_load },
    { TPM2_CC_ContextSave, "ContextSave", 1, 0, false, false, false, H(CONTEXT, NONE, NONE), tpm_cc_context_save },
    { TPM2_CC_ECDH_KeyGen, "ECDH_KeyGen", 1, 0, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_ecdh_keygen, TPM_SF_ENC_RSP },
    { TPM2_CC_EncryptDecrypt, "EncryptDecrypt", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_encrypt_decrypt, TPM_SF_ENC_RSP },
    { TPM2_CC_FlushContext, "FlushContext", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_flush_context },
    { TPM2_CC_LoadExternal, "LoadExternal", 0, 0, true, false, false, H(NONE, NONE, NONE), tpm_cc_load_external, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_PolicyAuthValue, "PolicyAuthValue", 1, 0, false, false, false, H(POLICY_SESSION, NONE, NONE), tpm_cc_policy_auth_value, 0 },
    { TPM2_CC_PolicyCommandCode, "PolicyCommandCode", 1, 0, false, false, false, H(POLICY_SESSION, NONE, NONE), tpm_cc_policy_command_code, 0 },
    { TPM2_CC_PolicyOR, "PolicyOR", 1, 0, false, false, false, H(POLICY_SESSION, NONE, NONE), tpm_cc_policy_or, 0 },
    { TPM2_CC_ReadPublic, "ReadPublic", 1, 0, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_read_public, TPM_SF_ENC_RSP },
    { TPM2_CC_RSA_Encrypt, "RSA_Encrypt", 1, 0, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_rsa_encrypt, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_StartAuthSession, "StartAuthSession", 2, 0, true, false, false, H(OBJECT_NULL, ENTITY, NONE), tpm_cc_start_auth_session, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_VerifySignature, "VerifySignature", 1, 0, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_verify_signature, TPM_SF_ENC_CMD },
    { TPM2_CC_GetCapability, "GetCapability", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_get_capability },
    { TPM2_CC_GetRandom, "GetRandom", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_get_random, TPM_SF_ENC_RSP },
    { TPM2_CC_GetTestResult, "GetTestResult", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_get_test_result, TPM_SF_ENC_RSP },
    { TPM2_CC_Hash, "Hash", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_hash, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_PCR_Read, "PCR_Read", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_pcr_read },
    { TPM2_CC_PolicyPCR, "PolicyPCR", 1, 0, false, false, false, H(POLICY_SESSION, NONE, NONE), tpm_cc_policy_pcr, TPM_SF_ENC_CMD },
    { TPM2_CC_PolicyRestart, "PolicyRestart", 1, 0, false, false, false, H(POLICY_SESSION, NONE, NONE), tpm_cc_policy_restart, 0 },
    { TPM2_CC_ReadClock, "ReadClock", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_read_clock },
    { TPM2_CC_PCR_Extend, "PCR_Extend", 1, 1, false, true, false, H(PCR, NONE, NONE), tpm_cc_pcr_extend },
    { TPM2_CC_EventSequenceComplete, "EventSequenceComplete", 2, 2, false, true, true, H(PCR, OBJECT, NONE), tpm_cc_event_sequence_complete, TPM_SF_ENC_CMD },
    { TPM2_CC_HashSequenceStart, "HashSequenceStart", 0, 0, true, false, false, H(NONE, NONE, NONE), tpm_cc_hash_sequence_start, TPM_SF_ENC_CMD },
    { TPM2_CC_PolicyGetDigest, "PolicyGetDigest", 1, 0, false, false, false, H(POLICY_SESSION, NONE, NONE), tpm_cc_policy_get_digest, TPM_SF_ENC_RSP },
    { TPM2_CC_TestParms, "TestParms", 0, 0, false, false, false, H(NONE, NONE, NONE), tpm_cc_test_parms },
    { TPM2_CC_PolicyPassword, "PolicyPassword", 1, 0, false, false, false, H(POLICY_SESSION, NONE, NONE), tpm_cc_policy_password, 0 },
    { TPM2_CC_CreateLoaded, "CreateLoaded", 1, 1, true, false, false, H(PARENT, NONE, NONE), tpm_cc_create_loaded, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
    { TPM2_CC_EncryptDecrypt2, "EncryptDecrypt2", 1, 1, false, false, false, H(OBJECT, NONE, NONE), tpm_cc_encrypt_decrypt2, TPM_SF_ENC_CMD | TPM_SF_ENC_RSP },
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
