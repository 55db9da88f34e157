/* capability.c: Part 3 section 30.2 (GetCapability) and 10.3 (TestParms). Every list is generated
 * from what the engine actually has: the command table (table.c), the PCR banks and attributes
 * (pcr.c), the object slots, the algorithms the handlers accept. */
#include <stdlib.h>
#include <string.h>
#include "tpm/internal.h"

/* ---- algorithms (TPM_CAP_ALGS), sorted by id ------------------------------------------------- */
#define ASYM TPMA_ALGORITHM_ASYMMETRIC
#define SYM TPMA_ALGORITHM_SYMMETRIC
#define HASH TPMA_ALGORITHM_HASH
#define OBJ TPMA_ALGORITHM_OBJECT
#define SIGN TPMA_ALGORITHM_SIGNING
#define ENC TPMA_ALGORITHM_ENCRYPTING
#define METH TPMA_ALGORITHM_METHOD
static const TPMS_ALG_PROPERTY algs[] = {
    { TPM2_ALG_RSA, ASYM | OBJ },
    { TPM2_ALG_SHA1, HASH },
    { TPM2_ALG_HMAC, HASH | SIGN },
    { TPM2_ALG_AES, SYM },
    { TPM2_ALG_KEYEDHASH, HASH | OBJ | SIGN | ENC },
    { TPM2_ALG_SHA256, HASH },
    { TPM2_ALG_SHA384, HASH },
    { TPM2_ALG_NULL, 0 },
    { TPM2_ALG_RSASSA, ASYM | SIGN },
    { TPM2_ALG_RSAES, ASYM | ENC },
    { TPM2_ALG_RSAPSS, ASYM | SIGN },
    { TPM2_ALG_OAEP, ASYM | ENC },
    { TPM2_ALG_ECDSA, ASYM | SIGN | METH },
    { TPM2_ALG_ECDH, ASYM | METH },
    { TPM2_ALG_KDF1_SP800_56A, HASH | METH },
    { TPM2_ALG_KDF1_SP800_108, HASH | METH },
    { TPM2_ALG_ECC, ASYM | OBJ },
    { TPM2_ALG_SYMCIPHER, OBJ },
    { TPM2_ALG_CTR, SYM | ENC },
    { TPM2_ALG_OFB, SYM | ENC },
    { TPM2_ALG_CBC, SYM | ENC },
    { TPM2_ALG_CFB, SYM | ENC },
    { TPM2_ALG_ECB, SYM | ENC },
};

static const TPM2_ECC_CURVE curves[] = { TPM2_ECC_NIST_P256, TPM2_ECC_NIST_P384 };

/* ---- TPM properties ------------------------------------------------------------------------- */
static uint32_t be4(const char s[4])
{
    return (uint32_t)(uint8_t)s[0] << 24 | (uint32_t)(uint8_t)s[1] << 16 | (uint32_t)(uint8_t)s[2] << 8 | (uint8_t)s[3];
}

static size_t n_loaded(const tpm_instance *t)
{
    size_t n = 0;
    for (size_t i = 0; i < TPM_OBJECT_SLOTS; i++)
        n += t->objects[i].used;
    return n;
}

/* The value of property tag pt; false when this TPM does not define it. */
static bool property(const tpm_instance *t, TPM2_PT pt, uint32_t *v)
{
    const tpm_persistent *nv = &t->nv;
    switch (pt) {
    case TPM2_PT_FAMILY_INDICATOR: *v = be4("2.0\0"); return true;
    case TPM2_PT_LEVEL: *v = 0; return true;
    case TPM2_PT_REVISION: *v = 159; return true;           /* Library 1.59 */
    case TPM2_PT_DAY_OF_YEAR: *v = 312; return true;         /* 1.59: 8 Nov 2019 */
    case TPM2_PT_YEAR: *v = 2019; return true;
    case TPM2_PT_MANUFACTURER: *v = be4("CFFR"); return true;
    case TPM2_PT_VENDOR_STRING_1: *v = be4("coff"); return true;
    case TPM2_PT_VENDOR_STRING_2: *v = be4("er  "); return true;
    case TPM2_PT_VENDOR_STRING_3: *v = 0; return true;
    case TPM2_PT_VENDOR_STRING_4: *v = 0; return true;
    case TPM2_PT_VENDOR_TPM_TYPE: *v = 1; return true;
    case TPM2_PT_FIRMWARE_VERSION_1: *v = 0x00000001; return true;   /* 0.1 */
    case TPM2_PT_FIRMWARE_VERSION_2: *v = 0; return true;
    case TPM2_PT_INPUT_BUFFER: *v = TPM_INPUT_BUFFER; return true;
    case TPM2_PT_HR_TRANSIENT_MIN: *v = TPM_OBJECT_SLOTS; return true;
    case TPM2_PT_HR_PERSISTENT_MIN: *v = TPM_PERSISTENT_SLOTS; return true;
    case TPM2_PT_HR_LOADED_MIN: *v = TPM_SESSION_SLOTS; return true;
    case TPM2_PT_ACTIVE_SESSIONS_MAX: *v = TPM_SESSION_SLOTS; return true;   /* a saved session keeps its slot */
    case TPM2_PT_PCR_COUNT: *v = TPM_PCR_COUNT; return true;
    case TPM2_PT_PCR_SELECT_MIN: *v = TPM_PCR_SELECT_BYTES; return true;
    case TPM2_PT_CONTEXT_GAP_MAX: *v = 0xFFFF; return true;
    case TPM2_PT_NV_COUNTERS_MAX: *v = 0; return true;
    case TPM2_PT_NV_INDEX_MAX: *v = 2048; return true;
    case TPM2_PT_MEMORY: *v = 0; return true;
    case TPM2_PT_CLOCK_UPDATE: *v = 1u << 22; return true;
    case TPM2_PT_CONTEXT_HASH: *v = TPM_CONTEXT_HASH; return true;
    case TPM2_PT_CONTEXT_SYM: *v = TPM2_ALG_AES; return true;
    case TPM2_PT_CONTEXT_SYM_SIZE: *v = 256; return true;
    case TPM2_PT_ORDERLY_COUNT: *v = 0xFFFF; return true;
    case TPM2_PT_MAX_COMMAND_SIZE: *v = TPM_MAX_COMMAND_SIZE; return true;
    case TPM2_PT_MAX_RESPONSE_SIZE: *v = TPM_MAX_RESPONSE_SIZE; return true;
    case TPM2_PT_MAX_DIGEST: *v = 48; return true;
    case TPM2_PT_MAX_OBJECT_CONTEXT: *v = 2048; return true;
    case TPM2_PT_MAX_SESSION_CONTEXT: *v = 256; return true;
    case TPM2_PT_PS_FAMILY_INDICATOR: *v = 1; return true;   /* PC Client */
    case TPM2_PT_PS_LEVEL: *v = 0; return true;
    case TPM2_PT_PS_REVISION: *v = 0x105; return true;
    case TPM2_PT_PS_DAY_OF_YEAR: *v = 0; return true;
    case TPM2_PT_PS_YEAR: *v = 0; return true;
    case TPM2_PT_SPLIT_MAX: *v = 0; return true;
    case TPM2_PT_TOTAL_COMMANDS: *v = (uint32_t)tpm_n_commands; return true;
    case TPM2_PT_LIBRARY_COMMANDS: *v = (uint32_t)tpm_n_commands; return true;
    case TPM2_PT_VENDOR_COMMANDS: *v = 0; return true;
    case TPM2_PT_NV_BUFFER_MAX: *v = 1024; return true;
    case TPM2_PT_MODES: *v = 0; return true;
    case TPM2_PT_MAX_CAP_BUFFER: *v = TPM2_MAX_CAP_BUFFER; return true;

    case TPM2_PT_PERMANENT:
        *v = (nv->h[TPM_H_OWNER].auth.size ? TPMA_PERMANENT_OWNERAUTHSET : 0)
             | (nv->h[TPM_H_ENDORSEMENT].auth.size ? TPMA_PERMANENT_ENDORSEMENTAUTHSET : 0)
             | (nv->lockout_auth.size ? TPMA_PERMANENT_LOCKOUTAUTHSET : 0)
             | (nv->disable_clear ? TPMA_PERMANENT_DISABLECLEAR : 0)
             | (nv->recovery_time && nv->failed_tries >= nv->max_tries ? TPMA_PERMANENT_INLOCKOUT : 0)
             | TPMA_PERMANENT_TPMGENERATEDEPS;
        return true;
    case TPM2_PT_STARTUP_CLEAR:
        *v = TPMA_STARTUP_CLEAR_PHENABLE | (nv->sh_enable ? TPMA_STARTUP_CLEAR_SHENABLE : 0)
             | (nv->eh_enable ? TPMA_STARTUP_CLEAR_EHENABLE : 0) | TPMA_STARTUP_CLEAR_PHENABLENV
             | (nv->orderly ? TPMA_STARTUP_CLEAR_ORDERLY : 0);
        return true;
    case TPM2_PT_HR_NV_INDEX: *v = 0; return true;
    case TPM2_PT_HR_LOADED: *v = (uint32_t)tpm_sessions_loaded(t); return true;
    case TPM2_PT_HR_LOADED_AVAIL: *v = (uint32_t)(TPM_SESSION_SLOTS - tpm_sessions_active(t)); return true;
    case TPM2_PT_HR_ACTIVE: *v = (uint32_t)(tpm_sessions_active(t) - tpm_sessions_loaded(t)); return true;   /* saved */
    case TPM2_PT_HR_ACTIVE_AVAIL: *v = (uint32_t)(TPM_SESSION_SLOTS - tpm_sessions_active(t)); return true;
    case TPM2_PT_HR_TRANSIENT_AVAIL: *v = (uint32_t)(TPM_OBJECT_SLOTS - n_loaded(t)); return true;
    case TPM2_PT_HR_PERSISTENT: *v = nv->n_persistent; return true;
    case TPM2_PT_HR_PERSISTENT_AVAIL: *v = TPM_PERSISTENT_SLOTS - nv->n_persistent; return true;
    case TPM2_PT_NV_COUNTERS: *v = 0; return true;
    case TPM2_PT_NV_COUNTERS_AVAIL: *v = 0; return true;
    case TPM2_PT_ALGORITHM_SET: *v = 0; return true;
    case TPM2_PT_LOADED_CURVES: *v = sizeof curves / sizeof curves[0]; return true;
    case TPM2_PT_LOCKOUT_COUNTER: *v = nv->failed_tries; return true;
    case TPM2_PT_MAX_AUTH_FAIL: *v = nv->max_tries; return true;
    case TPM2_PT_LOCKOUT_INTERVAL: *v = nv->recovery_time; return true;
    case TPM2_PT_LOCKOUT_RECOVERY: *v = nv->lockout_recovery; return true;
    case TPM2_PT_NV_WRITE_RECOVERY: *v = 0; return true;
    case TPM2_PT_AUDIT_COUNTER_0: *v = 0; return true;
    case TPM2_PT_AUDIT_COUNTER_1: *v = 0; return true;
    default: return false;
    }
}

/* ---- PCR properties --------------------------------------------------------------------------- */
static bool pcr_property(TPM2_PT_PCR tag, TPMS_TAGGED_PCR_SELECT *out)
{
    memset(out, 0, sizeof *out);
    out->tag = tag;
    out->sizeofSelect = TPM_PCR_SELECT_BYTES;
    for (unsigned i = 0; i < TPM_PCR_COUNT; i++) {
        bool on;
        uint8_t rl = tpm_pcr_reset_localities(i), el = tpm_pcr_extend_localities(i);
        if (tag == TPM2_PT_PCR_SAVE)
            on = i < 16;
        else if (tag >= TPM2_PT_PCR_EXTEND_L0 && tag <= TPM2_PT_PCR_RESET_L4)
            on = (tag - TPM2_PT_PCR_EXTEND_L0) % 2 == 0 ? (el >> ((tag - TPM2_PT_PCR_EXTEND_L0) / 2)) & 1
                                                         : (rl >> ((tag - TPM2_PT_PCR_RESET_L0) / 2)) & 1;
        else if (tag == TPM2_PT_PCR_NO_INCREMENT)
            on = false;
        else if (tag == TPM2_PT_PCR_DRTM_RESET)
            on = i >= 17 && i <= 22;
        else if (tag == TPM2_PT_PCR_POLICY || tag == TPM2_PT_PCR_AUTH)
            on = false;
        else
            return false;
        if (on)
            out->pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    return true;
}

static int cmp_handle(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Handles of one type from `first` on (Part 3 section 30.2.1: the type is the top byte). */
static void handles(tpm_instance *t, uint32_t first, uint32_t max, TPML_HANDLE *l, TPMI_YES_NO *more)
{
    uint32_t all[64];
    size_t n = 0;
    switch (first >> 24) {
    case TPM2_HT_PCR:
        for (uint32_t i = 0; i < TPM_PCR_COUNT; i++)
            all[n++] = i;
        break;
    case TPM2_HT_PERMANENT: {
        static const uint32_t perm[] = { TPM2_RH_OWNER, TPM2_RH_NULL, TPM2_RS_PW, TPM2_RH_LOCKOUT,
                                         TPM2_RH_ENDORSEMENT, TPM2_RH_PLATFORM, TPM2_RH_PLATFORM_NV };
        for (size_t i = 0; i < sizeof perm / sizeof perm[0]; i++)
            all[n++] = perm[i];
        break;
    }
    case TPM2_HT_TRANSIENT:
        for (size_t i = 0; i < TPM_OBJECT_SLOTS; i++)
            if (t->objects[i].used)
                all[n++] = t->objects[i].handle;
        break;
    case TPM2_HT_PERSISTENT:
        for (size_t i = 0; i < TPM_PERSISTENT_SLOTS; i++)
            if (t->nv.persistent[i].used)
                all[n++] = t->nv.persistent[i].handle;
        break;
    case TPM2_HT_LOADED_SESSION:   /* HMAC and policy sessions alike (Part 3 section 30.2.1) */
        for (size_t i = 0; i < TPM_SESSION_SLOTS; i++)
            if (t->sessions[i].used && !t->sessions[i].saved)
                all[n++] = t->sessions[i].handle;
        break;
    case TPM2_HT_SAVED_SESSION:
        for (size_t i = 0; i < TPM_SESSION_SLOTS; i++)
            if (t->sessions[i].used && t->sessions[i].saved)
                all[n++] = t->sessions[i].handle;
        break;
    default:   /* NV indexes: none yet */
        break;
    }
    qsort(all, n, sizeof all[0], cmp_handle);
    l->count = 0;
    *more = TPM2_NO;
    for (size_t i = 0; i < n; i++) {
        if (all[i] < first)
            continue;
        if (l->count >= max || l->count >= TPM2_MAX_CAP_HANDLES) {
            *more = TPM2_YES;
            break;
        }
        l->handle[l->count++] = all[i];
    }
}

TPM_HANDLER(tpm_cc_get_capability)
{
    TPM2_CAP cap;
    uint32_t prop, count;
    TPM_GET(in, UINT32, &cap, 1);
    TPM_GET(in, UINT32, &prop, 2);
    TPM_GET(in, UINT32, &count, 3);
    TPM_TRY(tpm_params_done(in));

    TPMS_CAPABILITY_DATA d;
    memset(&d, 0, sizeof d);
    d.capability = cap;
    TPMI_YES_NO more = TPM2_NO;
    switch (cap) {
    case TPM2_CAP_ALGS: {
        TPML_ALG_PROPERTY *l = &d.data.algorithms;
        for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
            if (algs[i].alg < prop)
                continue;
            if (l->count >= count || l->count >= TPM2_MAX_CAP_ALGS) {
                more = TPM2_YES;
                break;
            }
            l->algProperties[l->count++] = algs[i];
        }
        break;
    }
    case TPM2_CAP_HANDLES:
        handles(t, prop, count, &d.data.handles, &more);
        break;
    case TPM2_CAP_COMMANDS: {
        TPML_CCA *l = &d.data.command;
        for (size_t i = 0; i < tpm_n_commands; i++) {
            if (tpm_commands[i].cc < (prop & 0xFFFF))
                continue;
            if (l->count >= count || l->count >= TPM2_MAX_CAP_CC) {
                more = TPM2_YES;
                break;
            }
            l->commandAttributes[l->count++] = tpm_command_attrs(&tpm_commands[i]);
        }
        break;
    }
    case TPM2_CAP_PP_COMMANDS:
    case TPM2_CAP_AUDIT_COMMANDS:
        d.data.ppCommands.count = 0;   /* no physical presence, no audit yet */
        break;
    case TPM2_CAP_PCRS: {
        TPML_PCR_SELECTION *l = &d.data.assignedPCR;
        l->count = TPM_PCR_BANKS;
        for (int b = 0; b < TPM_PCR_BANKS; b++) {
            l->pcrSelections[b].hash = tpm_pcr_banks[b];
            l->pcrSelections[b].sizeofSelect = TPM_PCR_SELECT_BYTES;
            memset(l->pcrSelections[b].pcrSelect, 0xFF, TPM_PCR_SELECT_BYTES);
        }
        break;
    }
    case TPM2_CAP_TPM_PROPERTIES: {
        TPML_TAGGED_TPM_PROPERTY *l = &d.data.tpmProperties;
        /* the defined tags lie in two groups of consecutive values */
        static const uint32_t groups[][2] = { { TPM2_PT_FIXED, TPM2_PT_FIXED + 0x40 }, { TPM2_PT_VAR, TPM2_PT_VAR + 0x40 } };
        for (size_t g = 0; g < 2 && !more; g++) {
            for (uint32_t pt = groups[g][0] > prop ? groups[g][0] : prop; pt < groups[g][1]; pt++) {
                uint32_t v;
                if (!property(t, pt, &v))
                    continue;
                if (l->count >= count || l->count >= TPM2_MAX_TPM_PROPERTIES) {
                    more = TPM2_YES;
                    break;
                }
                l->tpmProperty[l->count].property = pt;
                l->tpmProperty[l->count++].value = v;
            }
        }
        break;
    }
    case TPM2_CAP_PCR_PROPERTIES: {
        TPML_TAGGED_PCR_PROPERTY *l = &d.data.pcrProperties;
        for (uint32_t tag = prop; tag <= TPM2_PT_TPM2_PCR_LAST; tag++) {
            TPMS_TAGGED_PCR_SELECT s;
            if (!pcr_property(tag, &s))
                continue;
            if (l->count >= count || l->count >= TPM2_MAX_PCR_PROPERTIES) {
                more = TPM2_YES;
                break;
            }
            l->pcrProperty[l->count++] = s;
        }
        break;
    }
    case TPM2_CAP_ECC_CURVES: {
        TPML_ECC_CURVE *l = &d.data.eccCurves;
        for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
            if (curves[i] < prop)
                continue;
            if (l->count >= count) {
                more = TPM2_YES;
                break;
            }
            l->eccCurves[l->count++] = curves[i];
        }
        break;
    }
    default:
        return tpm_rc_p(TPM2_RC_VALUE, 1);
    }
    cf_put_u8(out, more);
    TPM_PUT(out, TPMS_CAPABILITY_DATA, &d);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_test_parms)
{
    TPMT_PUBLIC_PARMS p;
    TPM_GET(in, TPMT_PUBLIC_PARMS, &p, 1);
    TPM_TRY(tpm_params_done(in));
    /* checked as a template would be, with attributes that make every scheme acceptable */
    TPMT_PUBLIC pub;
    memset(&pub, 0, sizeof pub);
    pub.type = p.type;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.parameters = p.parameters;
    pub.objectAttributes = TPMA_OBJECT_SENSITIVEDATAORIGIN;
    switch (p.type) {
    case TPM2_ALG_RSA:
        pub.objectAttributes |= p.parameters.rsaDetail.scheme.scheme == TPM2_ALG_RSASSA
                                        || p.parameters.rsaDetail.scheme.scheme == TPM2_ALG_RSAPSS
                                    ? TPMA_OBJECT_SIGN_ENCRYPT : TPMA_OBJECT_DECRYPT;
        if (p.parameters.rsaDetail.symmetric.algorithm != TPM2_ALG_NULL)
            pub.objectAttributes |= TPMA_OBJECT_RESTRICTED;
        break;
    case TPM2_ALG_ECC:
        pub.objectAttributes |= p.parameters.eccDetail.scheme.scheme == TPM2_ALG_ECDSA
                                    ? TPMA_OBJECT_SIGN_ENCRYPT : TPMA_OBJECT_DECRYPT;
        if (p.parameters.eccDetail.symmetric.algorithm != TPM2_ALG_NULL)
            pub.objectAttributes |= TPMA_OBJECT_RESTRICTED;
        break;
    case TPM2_ALG_KEYEDHASH:
        if (p.parameters.keyedHashDetail.scheme.scheme == TPM2_ALG_HMAC)
            pub.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT;
        break;
    default:
        break;
    }
    return tpm_template_check(&pub, 1);
}
