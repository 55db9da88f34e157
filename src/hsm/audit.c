/* audit.c: the audit hook (hsm.h). The engine reports events here after a call's outcome is
 * known and with no engine lock held; the embedder (cofferd) records them. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "hsm/audit_int.h"

static _Atomic(hsm_audit_fn) audit_fn;
static void *_Atomic audit_ctx;

void hsm_set_audit(hsm_audit_fn fn, void *ctx)
{
    atomic_store(&audit_ctx, ctx);
    atomic_store(&audit_fn, fn);
}

bool hsm_audit_on(void)
{
    return atomic_load_explicit(&audit_fn, memory_order_relaxed) != NULL;
}

const char *hsm_audit_type_name(hsm_audit_type t)
{
    static const char *const names[HSM_AUDIT__COUNT] = {
        [HSM_AUDIT_TOKEN_INIT] = "token_init",   [HSM_AUDIT_LOGIN] = "login",
        [HSM_AUDIT_PIN_CHANGE] = "pin_change",   [HSM_AUDIT_PIN_LOCKED] = "pin_locked",
        [HSM_AUDIT_KEYGEN] = "keygen",           [HSM_AUDIT_CREATE] = "create",
        [HSM_AUDIT_UNWRAP] = "unwrap",           [HSM_AUDIT_DESTROY] = "destroy",
        [HSM_AUDIT_SET_ATTRIBUTE] = "set_attribute", [HSM_AUDIT_KEY_USE] = "key_use",
        [HSM_AUDIT_TOKEN_DELETE] = "token_delete", [HSM_AUDIT_WRAP] = "wrap",
        [HSM_AUDIT_DERIVE] = "derive",
    };
    return (unsigned)t < HSM_AUDIT__COUNT ? names[t] : "unknown";
}

/* g.lock held (any mode). Only an object the session sees: a handle it cannot see (another
 * application's, a private one while logged out, another slot's) names nothing in its record. */
static void fill_object(hsm_audit_event *e, const hsm_session *s, CK_OBJECT_HANDLE oh)
{
    hsm_object *o = oh ? hsm_object_visible(s, oh) : NULL;
    if (!o)
        return;
    e->object = o->is_token ? o->store_id : 0;
    const cf_attr *l = hsm_attrs_find(&o->attrs, CKA_LABEL);
    if (l && l->len && !(l->flags & CF_ATTR_SEALED)) {
        size_t n = l->len < sizeof e->label - 1 ? l->len : sizeof e->label - 1;
        memcpy(e->label, l->val, n);
        e->label[n] = 0;
    }
}

bool hsm_audit_prepare(hsm_audit_event *e, hsm_audit_type type, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh)
{
    memset(e, 0, sizeof *e);
    e->type = type;
    e->user = CK_UNAVAILABLE_INFORMATION;
    if (!hsm_audit_on() || !g.initialized)
        return false;
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (s) {
        e->app = s->app;
        e->slot = s->slot;
        fill_object(e, s, oh);
    }
    pthread_rwlock_unlock(&g.lock);
    return s != NULL;
}

void hsm_audit_other(hsm_audit_event *e, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh)
{
    hsm_audit_event k = { 0 };   /* fill_object names the event's own object: borrow it */
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (s)
        fill_object(&k, s, oh);
    pthread_rwlock_unlock(&g.lock);
    e->other_object = k.object;
    memcpy(e->other_label, k.label, sizeof e->other_label);
}

void hsm_audit_emit(hsm_audit_event *e, cf_err result)
{
    hsm_audit_fn fn = atomic_load(&audit_fn);
    if (!fn)
        return;
    e->time = (int64_t)time(NULL);
    e->result = result;
    fn(atomic_load(&audit_ctx), e);
}

void hsm_audit_session(hsm_audit_type type, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, cf_err result)
{
    hsm_audit_event e;
    if (hsm_audit_prepare(&e, type, h, oh))
        hsm_audit_emit(&e, result);
}
