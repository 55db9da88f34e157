/* session.c: sessions (PKCS#11 2.40 section 5.6) and their reference counting. A session's
 * memory lives until the last thread using it lets go, so C_CloseSession racing with C_Sign on
 * another thread cannot free what that thread is using. */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "hsm/internal.h"

hsm_session *hsm_session_get(CK_SESSION_HANDLE h)
{
    return g.initialized ? hsm_map_get(&g.sessions, h) : NULL;
}

hsm_session *hsm_session_ref(CK_SESSION_HANDLE h)
{
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_rwlock_unlock(&g.lock);
    return s;
}

static void op_free(hsm_op *op)
{
    if (!op)
        return;
    if (op->mech && op->mech->ops && op->mech->ops->cleanup)
        op->mech->ops->cleanup(op);
    hsm_key_release(&op->key);
    cf_free_wiped(op->pending, op->pending_len);
    free(op);
}

void hsm_session_free_ops(hsm_session *s)
{
    for (int k = 0; k < HSM_OP__COUNT; k++) {
        op_free(s->ops[k]);
        op_free(s->spare[k]);
        s->ops[k] = s->spare[k] = NULL;
        free(s->spare_param[k]);
        s->spare_param[k] = NULL;
    }
    free(s->found);
    s->found = NULL;
    s->finding = false;
}

void hsm_session_unref(hsm_session *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1) {
        hsm_session_free_ops(s);
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
}

bool hsm_session_rw(const hsm_session *s)
{
    return (s->flags & CKF_RW_SESSION) != 0;
}

CK_USER_TYPE hsm_session_login(const hsm_session *s)
{
    return hsm_token_login_of(hsm_token_get(s->slot), s->app);
}

const uint8_t *hsm_session_dk(const hsm_session *s)
{
    return hsm_token_dk_of(hsm_token_get(s->slot), s->app);
}

CK_STATE hsm_session_state(const hsm_session *s)
{
    CK_USER_TYPE login = hsm_session_login(s);
    bool rw = hsm_session_rw(s);
    if (login == CKU_SO)
        return CKS_RW_SO_FUNCTIONS;
    if (login == CKU_USER)
        return rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    return rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
}

/* Write lock held: s opened (+1) or closed (-1) on token t (NULL: gone with its slot). Keeps the
 * token's counts (C_GetTokenInfo) and its application's login record's (the last session's close
 * logs the application out), so that neither scans the session map. Returns that record. */
static hsm_app_login *session_counted(hsm_token *t, const hsm_session *s, int delta)
{
    if (!t)
        return NULL;
    bool rw = hsm_session_rw(s);
    hsm_app_login *l = hsm_token_login_rec(t, s->app);
    if (delta > 0) {
        t->n_sessions++;
        t->n_rw += rw;
        if (l)
            l->sessions++;
    } else {
        t->n_sessions -= t->n_sessions > 0;
        t->n_rw -= rw && t->n_rw > 0;
        if (l)
            l->sessions -= l->sessions > 0;
    }
    return l;
}

cf_err hsm_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out)
{
    return hsm_open_session_app(0, slot, flags, out);
}

cf_err hsm_open_session_app(uint64_t app, CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_ENSURE(flags & CKF_SERIAL_SESSION, CF_E_SESSION_PARALLEL_NOT_SUPPORTED);
    CF_TRY(hsm_sync_if_changed());
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_token *t = hsm_token_get(slot);
    if (!t) {
        rv = slot == g.free_slot ? CF_E_TOKEN_NOT_RECOGNIZED : CF_E_SLOT_ID_INVALID;
        goto out;
    }
    /* an SO session is read/write only, and excludes new read-only sessions of the same
     * application (5.6) */
    CF_CHECK(!(hsm_token_login_of(t, app) == CKU_SO && !(flags & CKF_RW_SESSION)),
             CF_E_SESSION_READ_WRITE_SO_EXISTS);
    /* a bound on memory and on the scans of the session map, whatever the applications do (hsm.h) */
    CF_CHECK(g.sessions.n < HSM_SESSIONS_MAX, CF_E_SESSION_COUNT);
    CF_GUARD(hsm_token_load(t));
    hsm_session *s = calloc(1, sizeof *s);
    CF_CHECK(s, CF_E_NOMEM);
    pthread_mutex_init(&s->mu, NULL);
    s->handle = g.next_session++;
    s->slot = slot;
    s->app = app;
    s->flags = flags & (CKF_RW_SESSION | CKF_SERIAL_SESSION);
    atomic_init(&s->refs, 1);
    rv = hsm_map_put(&g.sessions, s->handle, s);
    if (rv != CF_OK) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        goto out;
    }
    session_counted(t, s, +1);
    *out = s->handle;
out:
    pthread_rwlock_unlock(&g.lock);
    return rv;
}


/* Logs one application out of the token: wipes its data key, and, once no application is
 * logged in to the token any more, every decrypted secret and ready key of its objects (they
 * are shared by all applications). */
void hsm_token_logout(hsm_token *t, uint64_t app)
{
    for (size_t i = 0; i < t->napps; i++)
        if (t->apps[i].app == app) {
            cf_secret_free(t->apps[i].dk, CF_DATA_KEY_LEN);
            t->apps[i] = t->apps[--t->napps];
            break;
        }
    if (t->napps)
        return;
    for (size_t i = 0; i < g.objects.cap; i++) {
        hsm_object *o = g.objects.keys[i] ? g.objects.vals[i] : NULL;
        if (o && o->slot == t->slot)
            hsm_object_close_secrets(o, o->store_id);
    }
}

/* Which session objects a close takes: those of one session (handle), or every one of an
 * application on one slot or on all of them (slot HSM_ANY_SLOT). A session object's owner,
 * application and slot are its session's. */
#define HSM_ANY_SLOT UINT64_MAX
typedef struct {
    CK_SESSION_HANDLE handle;   /* 0: by application */
    uint64_t app, slot;
} closing;

static bool closes_object(const closing *c, const hsm_object *o)
{
    if (o->is_token)
        return false;
    if (c->handle)
        return o->owner == c->handle;
    return o->app == c->app && (c->slot == HSM_ANY_SLOT || o->slot == c->slot);
}

/* Write lock held. One pass over the objects. A map entry deleted moves a later one of its
 * cluster into its place (handles.c), so the place is looked at again (i--, which wraps to 0 at
 * 0); one that moved in from the start of the map was seen already and did not match. */
static void drop_objects_locked(const closing *c)
{
    for (size_t i = 0; g.session_objects && i < g.objects.cap; i++) {
        hsm_object *o = g.objects.keys[i] ? g.objects.vals[i] : NULL;
        if (o && closes_object(c, o)) {
            hsm_map_del(&g.objects, o->handle);
            hsm_object_free(o);
            i--;
        }
    }
    hsm_map_shrink(&g.objects);
}

/* Write lock held. Closes session s (with its objects, if it made any), and logs its application
 * out of the token with that application's last session there. */
static void session_close_locked(hsm_session *s)
{
    hsm_map_del(&g.sessions, s->handle);
    hsm_map_shrink(&g.sessions);
    if (s->nobjects)
        drop_objects_locked(&(closing){ .handle = s->handle });
    hsm_token *t = hsm_token_get(s->slot);
    hsm_app_login *l = session_counted(t, s, -1);
    if (l && l->sessions == 0)
        hsm_token_logout(t, s->app);
    hsm_session_unref(s);
}

/* Write lock held. Closes every session of app on slot (HSM_ANY_SLOT: on every slot) in one pass
 * over the session map (see drop_objects_locked) and one over the objects, however many there
 * are: a client that opened thousands and went away must not hold the lock for long. */
static void app_close_locked(uint64_t app, uint64_t slot)
{
    bool objects = false;
    for (size_t i = 0; i < g.sessions.cap; i++) {
        hsm_session *s = g.sessions.keys[i] ? g.sessions.vals[i] : NULL;
        if (s && s->app == app && (slot == HSM_ANY_SLOT || s->slot == slot)) {
            hsm_map_del(&g.sessions, s->handle);
            (void)session_counted(hsm_token_get(s->slot), s, -1);
            objects |= s->nobjects != 0;
            hsm_session_unref(s);
            i--;
        }
    }
    hsm_map_shrink(&g.sessions);
    if (objects)
        drop_objects_locked(&(closing){ .app = app, .slot = slot });
}

cf_err hsm_close_session(CK_SESSION_HANDLE h)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_wrlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (s)
        session_close_locked(s);
    pthread_rwlock_unlock(&g.lock);
    return s ? CF_OK : CF_E_SESSION_HANDLE_INVALID;
}

cf_err hsm_close_all_sessions(CK_SLOT_ID slot)
{
    return hsm_close_all_sessions_app(0, slot);
}

cf_err hsm_close_all_sessions_app(uint64_t app, CK_SLOT_ID slot)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    if (!hsm_token_get(slot)) {
        rv = slot == g.free_slot ? CF_E_TOKEN_NOT_PRESENT : CF_E_SLOT_ID_INVALID;
    } else {
        app_close_locked(app, slot);
        hsm_token *t = hsm_token_get(slot);
        if (hsm_token_login_of(t, app) != HSM_NO_LOGIN)
            hsm_token_logout(t, app);   /* its last session there is gone */
    }
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

void hsm_app_end(uint64_t app)
{
    pthread_rwlock_wrlock(&g.lock);
    if (g.initialized)
        app_close_locked(app, HSM_ANY_SLOT);
    for (size_t i = 0; i < g.ntokens; i++)
        if (hsm_token_login_of(g.tokens[i], app) != HSM_NO_LOGIN)
            hsm_token_logout(g.tokens[i], app);
    pthread_rwlock_unlock(&g.lock);
}

cf_err hsm_get_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO *info)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (s) {
        memset(info, 0, sizeof *info);
        info->slotID = s->slot;
        info->state = hsm_session_state(s);
        info->flags = s->flags;
        info->ulDeviceError = 0;
    }
    pthread_rwlock_unlock(&g.lock);
    return s ? CF_OK : CF_E_SESSION_HANDLE_INVALID;
}
