/* pin.c: PINs, login state and lockout.
 *
 * Each token has a random 32-byte data key that encrypts its secrets at rest. The key is stored
 * twice, wrapped (AES-256-GCM) under a key derived from the SO PIN and under one derived from the
 * user PIN (PBKDF2-HMAC-SHA256, per-PIN random salt, iteration count stored beside it). A PIN is
 * right exactly when its wrap opens, so there is no PIN hash to attack offline beyond PBKDF2, and
 * the comparison is the GCM tag check (constant time).
 *
 * Failed attempts are counted in the store (shared by every process, kept across restarts);
 * after the configured number in a row the PIN is locked until the SO sets the user PIN again
 * (C_InitPIN), or, for the SO PIN, until the token is deleted. PBKDF2 runs without holding the
 * engine lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/secmem.h"
#include "hsm/audit_int.h"
#include "hsm/internal.h"


static const char aad_so[] = "coffer pin so v1";
static const char aad_user[] = "coffer pin user v1";

cf_err hsm_pin_check_len(size_t len)
{
    return len < g.cfg.pin_min_len || len > g.cfg.pin_max_len ? CF_E_PIN_LEN_RANGE : CF_OK;
}

static const char *aad_for(cf_pin_who who) { return who == CF_PIN_SO ? aad_so : aad_user; }

cf_err hsm_pin_make_for(cf_pin_who who, const uint8_t *pin, size_t len, const uint8_t dk[CF_DATA_KEY_LEN],
                        cf_pin_record *r)
{
    uint8_t kek[32];
    memset(r, 0, sizeof *r);
    r->iterations = g.cfg.pbkdf2_iterations;
    CF_TRY(cf_random(r->salt, sizeof r->salt));
    CF_TRY(cf_random(r->wrapped, CF_GCM_IV_LEN));
    cf_err rv = cf_pbkdf2_sha256(pin, len, r->salt, sizeof r->salt, r->iterations, kek, sizeof kek);
    if (rv == CF_OK)
        rv = cf_aes_gcm_seal(kek, sizeof kek, r->wrapped, CF_GCM_IV_LEN, (const uint8_t *)aad_for(who),
                             strlen(aad_for(who)), dk, CF_DATA_KEY_LEN, r->wrapped + CF_GCM_IV_LEN,
                             r->wrapped + CF_GCM_IV_LEN + CF_DATA_KEY_LEN, CF_GCM_TAG_LEN);
    cf_wipe(kek, sizeof kek);
    r->set = rv == CF_OK;
    return rv;
}

cf_err hsm_pin_make(const uint8_t *pin, size_t len, const uint8_t dk[CF_DATA_KEY_LEN], cf_pin_record *r)
{
    return hsm_pin_make_for(CF_PIN_USER, pin, len, dk, r);
}

static uint32_t max_tries(cf_pin_who who)
{
    return who == CF_PIN_SO ? g.cfg.so_pin_max_tries : g.cfg.user_pin_max_tries;
}

static bool locked(uint32_t fails, cf_pin_who who)
{
    return max_tries(who) && fails >= max_tries(who);
}

/* Opens a PIN record. No lock needed: works on copies. */
static cf_err open_record(cf_pin_who who, const cf_pin_record *r, const uint8_t *pin, size_t len, uint8_t **dk)
{
    uint8_t kek[32];
    uint8_t *key = cf_secret_alloc(CF_DATA_KEY_LEN);
    CF_ENSURE(key, CF_E_NOMEM);
    cf_err rv = cf_pbkdf2_sha256(pin, len, r->salt, sizeof r->salt, r->iterations, kek, sizeof kek);
    if (rv == CF_OK)
        rv = cf_aes_gcm_open(kek, sizeof kek, r->wrapped, CF_GCM_IV_LEN, (const uint8_t *)aad_for(who),
                             strlen(aad_for(who)), r->wrapped + CF_GCM_IV_LEN, CF_DATA_KEY_LEN,
                             r->wrapped + CF_GCM_IV_LEN + CF_DATA_KEY_LEN, CF_GCM_TAG_LEN, key);
    cf_wipe(kek, sizeof kek);
    if (rv == CF_E_ENCRYPTED_DATA_INVALID)
        rv = CF_E_PIN_INCORRECT;
    if (rv != CF_OK) {
        cf_secret_free(key, CF_DATA_KEY_LEN);
        return rv;
    }
    *dk = key;
    return CF_OK;
}

/* Set by verify_slot_pin when this thread's failed attempt locked the PIN (audit). */
static _Thread_local bool pin_just_locked;

/* Verifies a PIN against the store's current record for the slot, counting the outcome. Must be
 * called WITHOUT g.lock (PBKDF2 is slow on purpose). */
static cf_err verify_slot_pin(uint64_t slot, cf_pin_who who, const uint8_t *pin, size_t len, uint8_t **dk)
{
    cf_store_token rec;
    CF_TRY(cf_store_token_get(g.store, slot, &rec));
    cf_err rv = CF_OK;
    if (!rec.pin[who].set) {
        rv = who == CF_PIN_USER ? CF_E_USER_PIN_NOT_INITIALIZED : CF_E_PIN_INCORRECT;
        goto out;
    }
    CF_CHECK(!locked(rec.fails[who], who), CF_E_PIN_LOCKED);
    rv = open_record(who, &rec.pin[who], pin, len, dk);
    if (rv == CF_E_PIN_INCORRECT) {
        uint32_t fails = 0;
        if (cf_store_pin_result(g.store, slot, who, false, &fails) == CF_OK && locked(fails, who)) {
            cf_warn("the %s PIN of slot %llu is now locked after %u failed attempts",
                    who == CF_PIN_SO ? "SO" : "user", (unsigned long long)slot, fails);
            rv = CF_E_PIN_LOCKED;
            pin_just_locked = true;
        }
    } else if (rv == CF_OK && rec.fails[who]) {
        uint32_t fails;
        (void)cf_store_pin_result(g.store, slot, who, true, &fails);
    }
out:
    cf_wipe(&rec, sizeof rec);
    return rv;
}

cf_err hsm_pin_verify(hsm_token *t, cf_pin_who who, const uint8_t *pin, size_t len, uint8_t **dk)
{
    return verify_slot_pin(t->slot, who, pin, len, dk);
}

/* Re-reads the token rows after a PIN change so token info flags are current. */
static void refresh_locked(void)
{
    (void)hsm_tokens_refresh();
}

static cf_err hsm_login_impl(CK_SESSION_HANDLE h, CK_USER_TYPE user, const uint8_t *pin, size_t pinlen)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_ENSURE(user == CKU_SO || user == CKU_USER || user == CKU_CONTEXT_SPECIFIC, CF_E_USER_TYPE_INVALID);
    uint64_t slot;
    cf_err rv = CF_OK;

    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    hsm_token *t = s ? hsm_token_get(s->slot) : NULL;
    if (!s || !t) {
        pthread_rwlock_unlock(&g.lock);
        return CF_E_SESSION_HANDLE_INVALID;
    }
    slot = s->slot;
    if (user == CKU_CONTEXT_SPECIFIC) {
        rv = hsm_session_login(s) == CKU_USER ? CF_OK : CF_E_USER_NOT_LOGGED_IN;
        bool pending = false;
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < HSM_OP__COUNT; k++)
            pending |= s->ops[k] && s->context_login[k];
        pthread_mutex_unlock(&s->mu);
        if (rv == CF_OK && !pending)
            rv = CF_E_OPERATION_NOT_INITIALIZED;
    } else if (hsm_session_login(s) == user) {
        rv = CF_E_USER_ALREADY_LOGGED_IN;
    } else if (hsm_session_login(s) != HSM_NO_LOGIN) {
        rv = CF_E_USER_ANOTHER_ALREADY_LOGGED_IN;
    } else if (user == CKU_SO) {
        /* read-only sessions of this application (login state is per application, 5.6) */
        for (size_t i = 0; i < g.sessions.cap && rv == CF_OK; i++) {
            hsm_session *o = g.sessions.keys[i] ? g.sessions.vals[i] : NULL;
            if (o && o->slot == slot && o->app == s->app && !hsm_session_rw(o))
                rv = CF_E_SESSION_READ_ONLY_EXISTS;
        }
    }
    pthread_rwlock_unlock(&g.lock);
    CF_TRY(rv);

    uint8_t *dk = NULL;
    rv = verify_slot_pin(slot, user == CKU_SO ? CF_PIN_SO : CF_PIN_USER, pin, pinlen, &dk);

    pthread_rwlock_wrlock(&g.lock);
    refresh_locked();
    s = hsm_session_get(h);
    t = s ? hsm_token_get(s->slot) : NULL;
    if (rv == CF_OK && !t)
        rv = CF_E_SESSION_HANDLE_INVALID;
    if (rv == CF_OK && user == CKU_CONTEXT_SPECIFIC) {
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < HSM_OP__COUNT; k++)
            if (s->ops[k])
                s->context_login[k] = false;
        pthread_mutex_unlock(&s->mu);
    } else if (rv == CF_OK) {
        CK_USER_TYPE now = hsm_session_login(s);
        if (now != HSM_NO_LOGIN) {
            rv = now == user ? CF_E_USER_ALREADY_LOGGED_IN : CF_E_USER_ANOTHER_ALREADY_LOGGED_IN;
        } else {
            rv = hsm_token_set_login(t, s->app, user, dk);
            dk = NULL;
        }
    }
    pthread_rwlock_unlock(&g.lock);
    cf_secret_free(dk, CF_DATA_KEY_LEN);
    return rv;
}

cf_err hsm_logout(CK_SESSION_HANDLE h)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    hsm_token *t = s ? hsm_token_get(s->slot) : NULL;
    if (!t)
        rv = CF_E_SESSION_HANDLE_INVALID;
    else if (hsm_session_login(s) == HSM_NO_LOGIN)
        rv = CF_E_USER_NOT_LOGGED_IN;
    else
        hsm_token_logout(t, s->app);
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

static cf_err hsm_init_pin_impl(CK_SESSION_HANDLE h, const uint8_t *pin, size_t pinlen)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_TRY(hsm_pin_check_len(pinlen));
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    cf_pin_record r;
    hsm_session *s = hsm_session_get(h);
    hsm_token *t = s ? hsm_token_get(s->slot) : NULL;
    CF_CHECK(t, CF_E_SESSION_HANDLE_INVALID);
    CF_CHECK(hsm_session_state(s) == CKS_RW_SO_FUNCTIONS, CF_E_USER_NOT_LOGGED_IN);
    CF_CHECK(hsm_session_dk(s), CF_E_USER_NOT_LOGGED_IN);
    CF_GUARD(hsm_pin_make_for(CF_PIN_USER, pin, pinlen, hsm_session_dk(s), &r));
    CF_GUARD(cf_store_token_set_pin(g.store, t->slot, CF_PIN_USER, &r));
    refresh_locked();
out:
    cf_wipe(&r, sizeof r);
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

static cf_err hsm_set_pin_impl(CK_SESSION_HANDLE h, const uint8_t *old, size_t oldlen, const uint8_t *pin, size_t pinlen)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    hsm_token *t = s ? hsm_token_get(s->slot) : NULL;
    cf_err rv = CF_OK;
    uint64_t slot = 0;
    cf_pin_who who = CF_PIN_USER;
    if (!t)
        rv = CF_E_SESSION_HANDLE_INVALID;
    else if (!hsm_session_rw(s))
        rv = CF_E_SESSION_READ_ONLY;
    else {
        slot = t->slot;
        who = hsm_session_login(s) == CKU_SO ? CF_PIN_SO : CF_PIN_USER;
    }
    pthread_rwlock_unlock(&g.lock);
    CF_TRY(rv);
    CF_TRY(hsm_pin_check_len(pinlen));

    uint8_t *dk = NULL;
    CF_TRY(verify_slot_pin(slot, who, old, oldlen, &dk));
    cf_pin_record r;
    rv = hsm_pin_make_for(who, pin, pinlen, dk, &r);
    if (rv == CF_OK)
        rv = cf_store_token_set_pin(g.store, slot, who, &r);
    cf_wipe(&r, sizeof r);
    cf_secret_free(dk, CF_DATA_KEY_LEN);
    pthread_rwlock_wrlock(&g.lock);
    refresh_locked();
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

/* Whether a session is open on the slot (g.lock held, any mode). */
static bool slot_has_sessions(uint64_t slot)
{
    for (size_t i = 0; i < g.sessions.cap; i++) {
        hsm_session *o = g.sessions.keys[i] ? g.sessions.vals[i] : NULL;
        if (o && o->slot == slot)
            return true;
    }
    return false;
}

void (*hsm_test_before_rewrite)(CK_SLOT_ID slot);

/* The check that decides whether a token may be re-initialized or deleted, made under the write
 * lock just before the store is rewritten (g.lock held for writing). The first checks ran under a
 * read lock dropped for the SO PIN's PBKDF2; in that gap another application may have opened a
 * session, which would outlive its token, or the slot may have changed: the token deleted, or the
 * free slot initialized by another call, whose token would be replaced without its SO PIN. */
static cf_err slot_still_unused(uint64_t slot, bool existing)
{
    if ((hsm_token_get(slot) != NULL) != existing)
        return CF_E_SLOT_ID_INVALID;
    return slot_has_sessions(slot) ? CF_E_SESSION_EXISTS : CF_OK;
}

/* Runs the test hook (no lock held) between the SO PIN check and the write lock. */
static void before_rewrite(CK_SLOT_ID slot)
{
    if (hsm_test_before_rewrite)
        hsm_test_before_rewrite(slot);
}

/* named: set once the slot is known to be the free one or a token's (the call is then audited). */
static cf_err hsm_init_token_impl(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, const uint8_t *label,
                                  bool *named)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_TRY(hsm_sync_if_changed());
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = CF_OK;
    bool existing = hsm_token_get(slot) != NULL;
    if (!existing && slot != g.free_slot)
        rv = CF_E_SLOT_ID_INVALID;
    else if (existing && slot_has_sessions(slot))
        rv = CF_E_SESSION_EXISTS;   /* refused before a PIN try is spent; decided again below */
    *named = rv != CF_E_SLOT_ID_INVALID;
    pthread_rwlock_unlock(&g.lock);
    CF_TRY(rv);
    CF_TRY(hsm_pin_check_len(pinlen));
    if (existing) {
        /* Re-initialization destroys everything: the current SO PIN must be right. */
        uint8_t *old = NULL;
        CF_TRY(verify_slot_pin(slot, CF_PIN_SO, so_pin, pinlen, &old));
        cf_secret_free(old, CF_DATA_KEY_LEN);
    }

    cf_store_token rec;
    memset(&rec, 0, sizeof rec);
    rec.slot = slot;
    size_t l = 32;
    while (l > 0 && (label[l - 1] == ' ' || label[l - 1] == 0))
        l--;
    memcpy(rec.label, label, l);
    uint8_t rnd[8];
    uint8_t *dk = cf_secret_alloc(CF_DATA_KEY_LEN);
    CF_ENSURE(dk, CF_E_NOMEM);
    rv = cf_random(rnd, sizeof rnd);
    if (rv == CF_OK)
        rv = cf_random(dk, CF_DATA_KEY_LEN);
    for (int i = 0; i < 8; i++)
        snprintf(rec.serial + 2 * i, 3, "%02x", rnd[i]);
    if (rv == CF_OK)
        rv = hsm_pin_make_for(CF_PIN_SO, so_pin, pinlen, dk, &rec.pin[CF_PIN_SO]);
    cf_secret_free(dk, CF_DATA_KEY_LEN);
    before_rewrite(slot);
    pthread_rwlock_wrlock(&g.lock);
    if (rv == CF_OK)
        rv = slot_still_unused(slot, existing);
    if (rv == CF_OK)
        rv = cf_store_token_init(g.store, &rec);
    if (rv == CF_OK)
        rv = hsm_tokens_refresh();
    pthread_rwlock_unlock(&g.lock);
    cf_wipe(&rec, sizeof rec);
    if (rv == CF_OK)
        cf_info("token initialized in slot %llu", (unsigned long long)slot);
    return rv;
}

static cf_err hsm_delete_token_impl(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, bool *named)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_TRY(hsm_sync_if_changed());
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = hsm_token_get(slot) ? CF_OK : CF_E_SLOT_ID_INVALID;
    if (rv == CF_OK && slot_has_sessions(slot))
        rv = CF_E_SESSION_EXISTS;   /* refused before a PIN try is spent; decided again below */
    *named = rv != CF_E_SLOT_ID_INVALID;
    pthread_rwlock_unlock(&g.lock);
    CF_TRY(rv);
    uint8_t *dk = NULL;
    CF_TRY(verify_slot_pin(slot, CF_PIN_SO, so_pin, pinlen, &dk));
    cf_secret_free(dk, CF_DATA_KEY_LEN);
    before_rewrite(slot);
    pthread_rwlock_wrlock(&g.lock);
    rv = slot_still_unused(slot, true);
    if (rv == CF_OK)
        rv = cf_store_token_delete(g.store, slot);
    if (rv == CF_OK)
        rv = hsm_tokens_refresh();
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

/* ---- audited entry points (audit.c) ------------------------------------------------------- */

cf_err hsm_login(CK_SESSION_HANDLE h, CK_USER_TYPE user, const uint8_t *pin, size_t pinlen)
{
    pin_just_locked = false;
    cf_err rv = hsm_login_impl(h, user, pin, pinlen);
    hsm_audit_event e;
    if (user != CKU_CONTEXT_SPECIFIC && hsm_audit_prepare(&e, HSM_AUDIT_LOGIN, h, 0)) {
        e.user = user;
        hsm_audit_event locked_ev = e;
        hsm_audit_emit(&e, rv);
        if (pin_just_locked) {
            locked_ev.type = HSM_AUDIT_PIN_LOCKED;
            hsm_audit_emit(&locked_ev, rv);
        }
    }
    return rv;
}

cf_err hsm_init_pin(CK_SESSION_HANDLE h, const uint8_t *pin, size_t pinlen)
{
    cf_err rv = hsm_init_pin_impl(h, pin, pinlen);
    hsm_audit_event e;
    if (hsm_audit_prepare(&e, HSM_AUDIT_PIN_CHANGE, h, 0)) {
        e.user = CKU_USER;
        hsm_audit_emit(&e, rv);
    }
    return rv;
}

cf_err hsm_set_pin(CK_SESSION_HANDLE h, const uint8_t *old, size_t oldlen, const uint8_t *pin, size_t pinlen)
{
    hsm_audit_event e;
    bool on = hsm_audit_prepare(&e, HSM_AUDIT_PIN_CHANGE, h, 0);
    CK_USER_TYPE who = CKU_USER;
    if (on) {
        pthread_rwlock_rdlock(&g.lock);
        hsm_session *s = hsm_session_get(h);
        if (s && hsm_token_get(s->slot) && hsm_session_login(s) == CKU_SO)
            who = CKU_SO;
        pthread_rwlock_unlock(&g.lock);
    }
    pin_just_locked = false;
    cf_err rv = hsm_set_pin_impl(h, old, oldlen, pin, pinlen);
    if (on) {
        e.user = who;
        hsm_audit_event locked_ev = e;
        hsm_audit_emit(&e, rv);
        if (pin_just_locked) {
            locked_ev.type = HSM_AUDIT_PIN_LOCKED;
            hsm_audit_emit(&locked_ev, rv);
        }
    }
    return rv;
}

/* The record of a call that names a slot, not a session, and checks the SO PIN (C_InitToken,
 * token deletion): app is the caller's, result is the PIN check's when it failed (so SO-PIN
 * guesses show), and the attempt that locked the PIN adds pin_locked. */
static void audit_so_call(hsm_audit_type type, uint64_t app, CK_SLOT_ID slot, const char *label, cf_err rv)
{
    if (!hsm_audit_on())
        return;
    hsm_audit_event e;
    memset(&e, 0, sizeof e);
    e.type = type;
    e.app = app;
    e.slot = slot;
    e.user = CKU_SO;
    snprintf(e.label, sizeof e.label, "%s", label);
    hsm_audit_event locked_ev = e;
    hsm_audit_emit(&e, rv);
    if (pin_just_locked) {
        locked_ev.type = HSM_AUDIT_PIN_LOCKED;
        hsm_audit_emit(&locked_ev, rv);
    }
}

cf_err hsm_init_token_app(uint64_t app, CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, const uint8_t *label)
{
    pin_just_locked = false;
    bool named = false;
    cf_err rv = hsm_init_token_impl(slot, so_pin, pinlen, label, &named);
    if (named) {
        char l[33] = "";   /* the new label, its blank padding cut */
        size_t n = 32;
        while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == 0))
            n--;
        memcpy(l, label, n);
        audit_so_call(HSM_AUDIT_TOKEN_INIT, app, slot, l, rv);
    }
    return rv;
}

cf_err hsm_init_token(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, const uint8_t *label)
{
    return hsm_init_token_app(0, slot, so_pin, pinlen, label);
}

cf_err hsm_delete_token_app(uint64_t app, CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen)
{
    char label[sizeof ((hsm_audit_event *)0)->label] = "";
    if (hsm_audit_on() && g.initialized) {   /* read before: the token goes */
        pthread_rwlock_rdlock(&g.lock);
        hsm_token *t = hsm_token_get(slot);
        if (t)
            snprintf(label, sizeof label, "%s", t->rec.label);
        pthread_rwlock_unlock(&g.lock);
    }
    pin_just_locked = false;
    bool named = false;
    cf_err rv = hsm_delete_token_impl(slot, so_pin, pinlen, &named);
    if (named)
        audit_so_call(HSM_AUDIT_TOKEN_DELETE, app, slot, label, rv);
    return rv;
}

cf_err hsm_delete_token(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen)
{
    return hsm_delete_token_app(0, slot, so_pin, pinlen);
}
