/* slot.c: slots, token information and the mechanism list (PKCS#11 2.40 section 5.5).
 *
 * Slot ids are permanent: a token keeps the id of the slot it was initialized in for its whole
 * life, across restarts and other tokens' initialization, and there is always exactly one free
 * slot (the store's next id) in which C_InitToken creates a new token. */
#include <stdio.h>
#include <string.h>
#include "base/version.h"
#include "hsm/internal.h"

static cf_err slot_exists(CK_SLOT_ID slot, hsm_token **t)
{
    *t = hsm_token_get(slot);
    return *t || slot == g.free_slot ? CF_OK : CF_E_SLOT_ID_INVALID;
}

cf_err hsm_get_slot_list(bool token_present, CK_SLOT_ID *list, CK_ULONG *count)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_TRY(hsm_sync_if_changed());
    pthread_rwlock_rdlock(&g.lock);
    /* The free slot holds an uninitialized token: it is "present" too (PKCS#11 lets C_InitToken
     * target any slot with a token), which is what pkcs11-tool --init-token expects. */
    (void)token_present;
    CK_ULONG n = (CK_ULONG)g.ntokens + 1;
    cf_err rv = CF_OK;
    if (list) {
        if (*count < n) {
            rv = CF_E_BUFFER_TOO_SMALL;
        } else {
            for (size_t i = 0; i < g.ntokens; i++)
                list[i] = g.tokens[i]->slot;
            list[g.ntokens] = g.free_slot;
        }
    }
    *count = n;
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

cf_err hsm_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_rdlock(&g.lock);
    hsm_token *t;
    cf_err rv = slot_exists(slot, &t);
    if (rv == CF_OK) {
        memset(info, 0, sizeof *info);
        char desc[64];
        snprintf(desc, sizeof desc, "coffer slot %llu", (unsigned long long)slot);
        hsm_pad(info->slotDescription, sizeof info->slotDescription, desc);
        hsm_pad(info->manufacturerID, sizeof info->manufacturerID, "coffer");
        info->flags = CKF_TOKEN_PRESENT;
        info->hardwareVersion.major = COFFER_VERSION_MAJOR;
        info->hardwareVersion.minor = COFFER_VERSION_MINOR;
        info->firmwareVersion = info->hardwareVersion;
    }
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

static CK_FLAGS pin_flags(const hsm_token *t)
{
    CK_FLAGS f = 0;
    uint32_t max = g.cfg.user_pin_max_tries, fails = t->rec.fails[CF_PIN_USER];
    if (fails)
        f |= CKF_USER_PIN_COUNT_LOW;
    if (max && fails + 1 == max)
        f |= CKF_USER_PIN_FINAL_TRY;
    if (max && fails >= max)
        f |= CKF_USER_PIN_LOCKED;
    max = g.cfg.so_pin_max_tries;
    fails = t->rec.fails[CF_PIN_SO];
    if (fails)
        f |= CKF_SO_PIN_COUNT_LOW;
    if (max && fails + 1 == max)
        f |= CKF_SO_PIN_FINAL_TRY;
    if (max && fails >= max)
        f |= CKF_SO_PIN_LOCKED;
    return f;
}

cf_err hsm_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_TRY(hsm_sync_if_changed());
    pthread_rwlock_rdlock(&g.lock);
    hsm_token *t;
    cf_err rv = slot_exists(slot, &t);
    if (rv == CF_OK) {
        memset(info, 0, sizeof *info);
        hsm_pad(info->label, sizeof info->label, t ? t->rec.label : "");
        hsm_pad(info->manufacturerID, sizeof info->manufacturerID, "coffer");
        hsm_pad(info->model, sizeof info->model, "coffer token");
        hsm_pad(info->serialNumber, sizeof info->serialNumber, t ? t->rec.serial : "");
        info->flags = CKF_RNG | CKF_LOGIN_REQUIRED;
        if (t) {
            info->flags |= CKF_TOKEN_INITIALIZED | pin_flags(t);
            if (t->rec.pin[CF_PIN_USER].set)
                info->flags |= CKF_USER_PIN_INITIALIZED;
        }
        info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
        info->ulSessionCount = t ? t->n_sessions : 0;
        info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
        info->ulRwSessionCount = t ? t->n_rw : 0;
        info->ulMaxPinLen = g.cfg.pin_max_len;
        info->ulMinPinLen = g.cfg.pin_min_len;
        info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
        info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
        info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
        info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
        info->hardwareVersion.major = COFFER_VERSION_MAJOR;
        info->hardwareVersion.minor = COFFER_VERSION_MINOR;
        info->firmwareVersion = info->hardwareVersion;
        /* utcTime is only meaningful with CKF_CLOCK_ON_TOKEN, which we do not claim */
        memset(info->utcTime, ' ', sizeof info->utcTime);
    }
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

cf_err hsm_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_rdlock(&g.lock);
    hsm_token *t;
    cf_err rv = slot_exists(slot, &t);
    pthread_rwlock_unlock(&g.lock);
    CF_TRY(rv);
    if (list) {
        CF_ENSURE(*count >= hsm_mech_count, (*count = hsm_mech_count, CF_E_BUFFER_TOO_SMALL));
        for (size_t i = 0; i < hsm_mech_count; i++)
            list[i] = hsm_mechs[i].type;
    }
    *count = hsm_mech_count;
    return CF_OK;
}

cf_err hsm_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_rdlock(&g.lock);
    hsm_token *t;
    cf_err rv = slot_exists(slot, &t);
    pthread_rwlock_unlock(&g.lock);
    CF_TRY(rv);
    const hsm_mech *m = hsm_mech_find(type);
    CF_ENSURE(m, CF_E_MECHANISM_INVALID);
    info->ulMinKeySize = m->min_size;
    info->ulMaxKeySize = m->max_size;
    /* CKF_HW: done inside the token, out of the application's memory (and, remote, on another host) */
    info->flags = m->flags | CKF_HW;
    return CF_OK;
}

cf_err hsm_pin_tries_left(CK_SLOT_ID slot, CK_USER_TYPE user, CK_ULONG *left)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_ENSURE(user == CKU_USER || user == CKU_SO, CF_E_USER_TYPE_INVALID);
    CF_TRY(hsm_sync_if_changed());
    pthread_rwlock_rdlock(&g.lock);
    hsm_token *t = hsm_token_get(slot);
    cf_err rv = t ? CF_OK : CF_E_SLOT_ID_INVALID;
    if (t) {
        cf_pin_who who = user == CKU_SO ? CF_PIN_SO : CF_PIN_USER;
        uint32_t max = who == CF_PIN_SO ? g.cfg.so_pin_max_tries : g.cfg.user_pin_max_tries;
        uint32_t fails = t->rec.fails[who];
        *left = max == 0 ? CK_UNAVAILABLE_INFORMATION : fails >= max ? 0 : max - fails;
    }
    pthread_rwlock_unlock(&g.lock);
    return rv;
}
