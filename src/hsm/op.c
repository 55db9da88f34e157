/* op.c: what every cryptographic operation shares (PKCS#11 2.40 sections 5.8-5.12): the
 * session's active operation per kind, key checks at init (class, type, usage attribute,
 * allowed mechanisms, CKA_ALWAYS_AUTHENTICATE), the output-length protocol, and reuse of a
 * finished operation when the next init names the same key, mechanism and parameters.
 *
 * Output length protocol (5.2): a NULL output buffer asks for the length and leaves the
 * operation active; a short buffer gives BUFFER_TOO_SMALL with the length needed and leaves it
 * active. When a mechanism can only bound its output (decryption), the output is computed into a
 * scratch buffer and, if it does not fit, kept as `pending` and handed over by the next call, so
 * no input is processed twice. Any other error ends the operation. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/secmem.h"
#include "hsm/audit_int.h"
#include "hsm/internal.h"

static const CK_FLAGS kind_flag[HSM_OP__COUNT] = {
    [HSM_OP_ENCRYPT] = CKF_ENCRYPT, [HSM_OP_DECRYPT] = CKF_DECRYPT, [HSM_OP_DIGEST] = CKF_DIGEST,
    [HSM_OP_SIGN] = CKF_SIGN, [HSM_OP_VERIFY] = CKF_VERIFY,
};
static const CK_ATTRIBUTE_TYPE kind_usage[HSM_OP__COUNT] = {
    [HSM_OP_ENCRYPT] = CKA_ENCRYPT, [HSM_OP_DECRYPT] = CKA_DECRYPT, [HSM_OP_DIGEST] = 0,
    [HSM_OP_SIGN] = CKA_SIGN, [HSM_OP_VERIFY] = CKA_VERIFY,
};

static void op_free(hsm_op *op)
{
    if (!op)
        return;
    if (op->mech->ops->cleanup)
        op->mech->ops->cleanup(op);
    hsm_key_release(&op->key);
    cf_free_wiped(op->pending, op->pending_len);
    free(op);
}

static void drop_spare(hsm_session *s, hsm_op_kind k)
{
    s->leased[k] = false;
    op_free(s->spare[k]);
    s->spare[k] = NULL;
}

/* Ends the active operation of a kind; keeps it for reuse when the mechanism can reset. */
static void finish(hsm_session *s, hsm_op_kind k)
{
    hsm_op *op = s->ops[k];
    s->ops[k] = NULL;
    s->context_login[k] = false;
    if (!op)
        return;
    cf_free_wiped(op->pending, op->pending_len);
    op->pending = NULL;
    op->pending_len = 0;
    op->has_pending = false;
    op->updated = false;
    drop_spare(s, k);
    if (op->mech->ops->reset && op->mech->ops->reset(op) == CF_OK)
        s->spare[k] = op;
    else
        op_free(op);
}

/* Checks a key object against a mechanism and an operation kind (g.lock held). */
cf_err hsm_check_key_use(const hsm_object *o, const hsm_mech *m, CK_ATTRIBUTE_TYPE usage, bool private_side)
{
    CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
    (void)hsm_attrs_ulong(&o->attrs, CKA_KEY_TYPE, &kt);
    if (o->cls == CKO_SECRET_KEY) {
        CF_ENSURE(kt == m->key_type, CF_E_KEY_TYPE_INCONSISTENT);
    } else {
        CF_ENSURE(o->cls == (private_side ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY), CF_E_KEY_TYPE_INCONSISTENT);
        CF_ENSURE(kt == m->key_type, CF_E_KEY_TYPE_INCONSISTENT);
    }
    if (usage)
        CF_ENSURE(hsm_attrs_flag(&o->attrs, usage, false), CF_E_KEY_FUNCTION_NOT_PERMITTED);
    const cf_attr *allowed = hsm_attrs_find(&o->attrs, CKA_ALLOWED_MECHANISMS);
    if (allowed && allowed->len) {
        bool ok = false;
        for (size_t i = 0; i + sizeof(CK_MECHANISM_TYPE) <= allowed->len; i += sizeof(CK_MECHANISM_TYPE)) {
            CK_MECHANISM_TYPE t;
            memcpy(&t, allowed->val + i, sizeof t);
            ok |= t == m->type;
        }
        CF_ENSURE(ok, CF_E_MECHANISM_INVALID);
    }
    return CF_OK;
}

/* Takes the snapshot of a key an operation runs with (g.lock held). */
cf_err hsm_key_snapshot(const uint8_t *dk, hsm_object *o, hsm_key *k)
{
    memset(k, 0, sizeof *k);
    k->cls = o->cls;
    CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
    (void)hsm_attrs_ulong(&o->attrs, CKA_KEY_TYPE, &kt);
    k->type = kt;
    if (o->cls == CKO_SECRET_KEY) {
        CF_TRY(hsm_object_unseal(dk, o));
        pthread_mutex_lock(&o->mu);
        const cf_attr *v = hsm_attrs_find(&o->attrs, CKA_VALUE);
        cf_err rv = CF_OK;
        if (!v || (v->flags & CF_ATTR_SEALED)) {
            rv = CF_E_KEY_HANDLE_INVALID;
        } else {
            k->secret = cf_secret_dup(v->val, v->len);
            k->secret_len = v->len;
            if (!k->secret && v->len)
                rv = CF_E_NOMEM;
        }
        pthread_mutex_unlock(&o->mu);
        return rv;
    }
    return hsm_object_pkey(dk, o, &k->pkey);
}

/* Whether the session's kept operation of a kind was for this key, mechanism and parameters
 * (session mutex held). */
static bool spare_matches(const hsm_session *s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE keyh)
{
    return s->spare[kind] && s->spare_mech[kind] == m->mechanism && s->spare_key[kind] == keyh &&
           s->spare_param_len[kind] == m->ulParameterLen &&
           (m->ulParameterLen == 0 || memcmp(s->spare_param[kind], m->pParameter, m->ulParameterLen) == 0);
}

static cf_err hsm_op_init_impl(CK_SESSION_HANDLE h, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE keyh)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_ENSURE(kind < HSM_OP__COUNT, CF_E_ARGS);
    const hsm_mech *mech = hsm_mech_find(m->mechanism);
    hsm_key key = { 0 };
    hsm_op *op = NULL;
    cf_err rv = CF_OK;
    bool ctx_login = false;
    uint64_t ver = 0;

    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (!s) {
        pthread_rwlock_unlock(&g.lock);
        return CF_E_SESSION_HANDLE_INVALID;
    }
    atomic_fetch_add(&s->refs, 1);
    CF_CHECK(mech && mech->ops && (mech->flags & kind_flag[kind]), CF_E_MECHANISM_INVALID);
    pthread_mutex_lock(&s->mu);
    rv = s->ops[kind] ? CF_E_OPERATION_ACTIVE : CF_OK;
    pthread_mutex_unlock(&s->mu);
    CF_GUARD(rv);
    if (kind != HSM_OP_DIGEST) {
        hsm_object *o = hsm_object_visible(s, keyh);
        CF_CHECK(o, CF_E_KEY_HANDLE_INVALID);
        bool private_side = kind == HSM_OP_SIGN || kind == HSM_OP_DECRYPT;
        CF_GUARD(hsm_check_key_use(o, mech, kind_usage[kind], private_side));
        ctx_login = private_side && o->cls == CKO_PRIVATE_KEY &&
                    hsm_attrs_flag(&o->attrs, CKA_ALWAYS_AUTHENTICATE, false);
        ver = o->version;
        /* the hot path: the same key, mechanism and parameters as the last finished operation */
        pthread_mutex_lock(&s->mu);
        hsm_op *sp = s->spare[kind];
        if (spare_matches(s, kind, m, keyh) && s->spare_ver[kind] == ver) {
            s->leased[kind] = false;
            s->spare[kind] = NULL;
            s->ops[kind] = sp;
            s->context_login[kind] = ctx_login;
            pthread_mutex_unlock(&s->mu);
            goto out;
        }
        pthread_mutex_unlock(&s->mu);
        CF_GUARD(hsm_key_snapshot(hsm_session_dk(s), o, &key));
    }
    pthread_rwlock_unlock(&g.lock);

    /* building the mechanism's context (OpenSSL) happens without the engine lock */
    op = calloc(1, sizeof *op);
    if (!op) {
        hsm_key_release(&key);
        hsm_session_unref(s);
        return CF_E_NOMEM;
    }
    op->kind = kind;
    op->mech = mech;
    op->key = key;
    rv = mech->ops->init(op, m);
    if (rv != CF_OK) {
        op_free(op);
        hsm_session_unref(s);
        return rv;
    }
    pthread_mutex_lock(&s->mu);
    if (s->ops[kind]) {
        rv = CF_E_OPERATION_ACTIVE;
    } else {
        s->ops[kind] = op;
        s->context_login[kind] = ctx_login;
        drop_spare(s, kind);
        free(s->spare_param[kind]);
        s->spare_param[kind] = NULL;
        s->spare_param_len[kind] = 0;
        s->spare_mech[kind] = m->mechanism;
        s->spare_key[kind] = kind == HSM_OP_DIGEST ? 0 : keyh;
        s->spare_ver[kind] = ver;
        if (m->ulParameterLen && (s->spare_param[kind] = malloc(m->ulParameterLen)) != NULL) {
            memcpy(s->spare_param[kind], m->pParameter, m->ulParameterLen);
            s->spare_param_len[kind] = m->ulParameterLen;
        } else if (m->ulParameterLen) {
            s->spare_mech[kind] = CK_UNAVAILABLE_INFORMATION; /* cannot remember: never reuse */
        }
        op = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    op_free(op);
    hsm_session_unref(s);
    return rv;
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_session_unref(s);
    return rv;
}

void hsm_op_abort(CK_SESSION_HANDLE h, hsm_op_kind kind)
{
    if (!g.initialized || kind >= HSM_OP__COUNT)
        return;
    hsm_session *s = hsm_session_ref(h);
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    finish(s, kind);
    pthread_mutex_unlock(&s->mu);
    hsm_session_unref(s);
}

/* Runs the active op of `kind` with the session mutex held; *op set or an error. */
static cf_err active(hsm_session *s, hsm_op_kind kind, hsm_op **op)
{
    *op = s->ops[kind];
    CF_ENSURE(*op, CF_E_OPERATION_NOT_INITIALIZED);
    if (s->context_login[kind]) {
        finish(s, kind);
        return CF_E_USER_NOT_LOGGED_IN;
    }
    return CF_OK;
}

/* Hands over pending output, if any. Returns true when it answered the call. */
static bool deliver_pending(hsm_session *s, hsm_op_kind kind, hsm_op *op, uint8_t *out, CK_ULONG *outlen,
                            bool ends, cf_err *rv)
{
    if (!op->has_pending)
        return false;
    if (!out) {
        *outlen = op->pending_len;
        *rv = CF_OK;
    } else if (*outlen < op->pending_len) {
        *outlen = op->pending_len;
        *rv = CF_E_BUFFER_TOO_SMALL;
    } else {
        if (op->pending_len)
            memcpy(out, op->pending, op->pending_len);
        *outlen = op->pending_len;
        cf_free_wiped(op->pending, op->pending_len);
        op->pending = NULL;
        op->pending_len = 0;
        op->has_pending = false;
        *rv = CF_OK;
        if (ends)
            finish(s, kind);
    }
    return true;
}

typedef cf_err (*step_fn)(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen);

static cf_err run_oneshot(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    const hsm_op_impl *im = op->mech->ops;
    if (im->oneshot)
        return im->oneshot(op, in, inlen, out, outlen);
    size_t a = *outlen, b;
    CF_TRY(im->update(op, in, inlen, out, &a));
    b = *outlen - a;
    CF_TRY(im->final(op, out + a, &b));
    *outlen = a + b;
    return CF_OK;
}

static cf_err run_final(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    (void)in;
    (void)inlen;
    return op->mech->ops->final(op, out, outlen);
}

static cf_err run_update(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    return op->mech->ops->update(op, in, inlen, out, outlen);
}

/* The length protocol around one step that produces output. */
static cf_err produce(hsm_session *s, hsm_op_kind kind, hsm_op *op, hsm_step step, step_fn fn,
                      const uint8_t *in, size_t inlen, uint8_t *out, CK_ULONG *outlen, bool ends)
{
    cf_err rv;
    if (deliver_pending(s, kind, op, out, outlen, ends, &rv))
        return rv;
    size_t bound = op->mech->ops->out_len(op, step, inlen);
    if (!out) {
        *outlen = bound;
        return CF_OK;
    }
    bool exact = kind == HSM_OP_SIGN || kind == HSM_OP_DIGEST;
    if (*outlen >= bound) {
        size_t n = bound;
        rv = fn(op, in, inlen, out, &n);
        if (rv == CF_OK)
            *outlen = n;
    } else if (exact) {
        *outlen = bound;
        return CF_E_BUFFER_TOO_SMALL;
    } else {
        uint8_t *tmp = malloc(bound ? bound : 1);
        if (!tmp) {
            finish(s, kind);
            return CF_E_NOMEM;
        }
        size_t n = bound;
        rv = fn(op, in, inlen, tmp, &n);
        if (rv == CF_OK && n > *outlen) {
            op->pending = tmp;
            op->pending_len = n;
            op->has_pending = true;
            *outlen = n;
            return CF_E_BUFFER_TOO_SMALL;
        }
        if (rv == CF_OK) {
            if (n)
                memcpy(out, tmp, n);
            *outlen = n;
        }
        cf_free_wiped(tmp, bound);
    }
    if (rv != CF_OK || ends)
        finish(s, kind);
    return rv;
}

/* The arguments of one call on an active operation. */
typedef struct {
    const uint8_t *in;
    size_t inlen;
    uint8_t *out;
    CK_ULONG *outlen;
    const uint8_t *sig;
    size_t siglen;
} op_call;

typedef cf_err (*op_body)(hsm_session *s, hsm_op_kind kind, hsm_op *op, const op_call *c);

/* Runs body on the session's active operation of `kind`, the session referenced and locked: the
 * shape every call after C_*Init shares. */
static cf_err with_active(CK_SESSION_HANDLE h, hsm_op_kind kind, op_body body, const op_call *c)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    hsm_session *s = hsm_session_ref(h);
    CF_ENSURE(s, CF_E_SESSION_HANDLE_INVALID);
    pthread_mutex_lock(&s->mu);
    hsm_op *op;
    cf_err rv = active(s, kind, &op);
    if (rv == CF_OK)
        rv = body(s, kind, op, c);
    pthread_mutex_unlock(&s->mu);
    hsm_session_unref(s);
    return rv;
}

static cf_err oneshot_body(hsm_session *s, hsm_op_kind kind, hsm_op *op, const op_call *c)
{
    if (op->updated) {
        finish(s, kind);
        return CF_E_OPERATION_ACTIVE;
    }
    return produce(s, kind, op, HSM_STEP_ONESHOT, run_oneshot, c->in, c->inlen, c->out, c->outlen, true);
}

static cf_err update_body(hsm_session *s, hsm_op_kind kind, hsm_op *op, const op_call *c)
{
    cf_err rv;
    if (!op->mech->ops->update) {
        finish(s, kind);
        return CF_E_NOT_SUPPORTED;
    }
    if (kind == HSM_OP_ENCRYPT || kind == HSM_OP_DECRYPT) {
        rv = produce(s, kind, op, HSM_STEP_UPDATE, run_update, c->in, c->inlen, c->out, c->outlen, false);
    } else {
        size_t none = 0;
        rv = op->mech->ops->update(op, c->in, c->inlen, NULL, &none);
        if (rv != CF_OK)
            finish(s, kind);
    }
    if (rv == CF_OK || rv == CF_E_BUFFER_TOO_SMALL)
        op->updated = true;
    return rv;
}

static cf_err final_body(hsm_session *s, hsm_op_kind kind, hsm_op *op, const op_call *c)
{
    if (!op->mech->ops->final) {
        finish(s, kind);
        return CF_E_NOT_SUPPORTED;
    }
    return produce(s, kind, op, HSM_STEP_FINAL, run_final, NULL, 0, c->out, c->outlen, true);
}

static cf_err verify_body(hsm_session *s, hsm_op_kind kind, hsm_op *op, const op_call *c)
{
    const hsm_op_impl *im = op->mech->ops;
    cf_err rv;
    if (op->updated) {
        rv = CF_E_OPERATION_ACTIVE;
    } else if (im->verify) {
        rv = im->verify(op, c->in, c->inlen, c->sig, c->siglen);
    } else {
        size_t none = 0;
        rv = im->update(op, c->in, c->inlen, NULL, &none);
        if (rv == CF_OK)
            rv = im->verify_final(op, c->sig, c->siglen);
    }
    finish(s, kind);
    return rv;
}

static cf_err verify_final_body(hsm_session *s, hsm_op_kind kind, hsm_op *op, const op_call *c)
{
    cf_err rv = op->mech->ops->verify_final ? op->mech->ops->verify_final(op, c->sig, c->siglen) : CF_E_NOT_SUPPORTED;
    finish(s, kind);
    return rv;
}

cf_err hsm_op_oneshot(CK_SESSION_HANDLE h, hsm_op_kind kind, const uint8_t *in, size_t inlen, uint8_t *out,
                      CK_ULONG *outlen)
{
    op_call c = { .in = in, .inlen = inlen, .out = out, .outlen = outlen };
    return with_active(h, kind, oneshot_body, &c);
}

cf_err hsm_op_update(CK_SESSION_HANDLE h, hsm_op_kind kind, const uint8_t *in, size_t inlen, uint8_t *out,
                     CK_ULONG *outlen)
{
    op_call c = { .in = in, .inlen = inlen, .out = out, .outlen = outlen };
    return with_active(h, kind, update_body, &c);
}

cf_err hsm_op_final(CK_SESSION_HANDLE h, hsm_op_kind kind, uint8_t *out, CK_ULONG *outlen)
{
    op_call c = { .out = out, .outlen = outlen };
    return with_active(h, kind, final_body, &c);
}

cf_err hsm_verify(CK_SESSION_HANDLE h, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen)
{
    op_call c = { .in = data, .inlen = len, .sig = sig, .siglen = siglen };
    return with_active(h, HSM_OP_VERIFY, verify_body, &c);
}

cf_err hsm_verify_final(CK_SESSION_HANDLE h, const uint8_t *sig, size_t siglen)
{
    op_call c = { .sig = sig, .siglen = siglen };
    return with_active(h, HSM_OP_VERIFY, verify_final_body, &c);
}

cf_err hsm_digest_key(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE keyh)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    hsm_key key = { 0 };
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    hsm_object *o = hsm_object_visible(s, keyh);
    CF_CHECK(o, CF_E_KEY_HANDLE_INVALID);
    CF_CHECK(o->cls == CKO_SECRET_KEY, CF_E_KEY_TYPE_INCONSISTENT);
    CF_GUARD(hsm_key_snapshot(hsm_session_dk(s), o, &key));
    pthread_mutex_lock(&s->mu);
    hsm_op *op;
    rv = active(s, HSM_OP_DIGEST, &op);
    if (rv == CF_OK) {
        size_t none = 0;
        rv = op->mech->ops->update(op, key.secret, key.secret_len, NULL, &none);
        if (rv != CF_OK)
            finish(s, HSM_OP_DIGEST);
        else
            op->updated = true;
    }
    pthread_mutex_unlock(&s->mu);
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_key_release(&key);
    return rv;
}

/* ---- leases (hsm.h) ------------------------------------------------------------------------- */
uint64_t hsm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t hsm_op_lease(CK_SESSION_HANDLE h, hsm_op_kind kind, uint32_t ms)
{
    if (!g.initialized || kind >= HSM_OP__COUNT || kind == HSM_OP_DIGEST || ms == 0)
        return 0;
    uint32_t granted = 0;
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (s) {
        pthread_mutex_lock(&s->mu);
        hsm_object *o = s->spare[kind] && !s->ops[kind] ? hsm_object_visible(s, s->spare_key[kind]) : NULL;
        /* the same checks an init would pass now: the key unchanged since the kept operation's
         * init (its version), and no re-login needed */
        if (o && o->version == s->spare_ver[kind] && atomic_load(&o->lease_closed) == 0 &&
            hsm_mono_ms() >= atomic_load(&o->lease_closed_until) &&
            !hsm_attrs_flag(&o->attrs, CKA_ALWAYS_AUTHENTICATE, false)) {
            uint64_t until = hsm_mono_ms() + ms;
            uint64_t cur = atomic_load(&o->lease_until);
            while (cur < until && !atomic_compare_exchange_weak(&o->lease_until, &cur, until))
                ;
            s->leased[kind] = true;
            granted = ms;
        }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_rwlock_unlock(&g.lock);
    return granted;
}

/* Sleeps until the monotonic ms until. */
static void sleep_until(uint64_t until)
{
    for (uint64_t now = hsm_mono_ms(); now < until; now = hsm_mono_ms()) {
        struct timespec d = { .tv_sec = (time_t)((until - now) / 1000),
                              .tv_nsec = (long)((until - now) % 1000) * 1000000 };
        nanosleep(&d, NULL);
    }
}

/* The change is checked first, under the same lock that closes the leases: a session that may not
 * make it (another application's object, a read-only session, an object that is not destroyable
 * or modifiable) neither waits nor takes the leases away from the key's owner. */
cf_err hsm_object_close_leases(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, hsm_change c)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_wrlock(&g.lock);   /* write: no grant is between its check and its store */
    hsm_object *o;
    cf_err rv = hsm_object_may_change(h, oh, c, &o);
    uint64_t until = 0;
    if (rv == CF_OK) {
        atomic_fetch_add(&o->lease_closed, 1);
        until = atomic_load(&o->lease_until);
    }
    pthread_rwlock_unlock(&g.lock);
    if (rv == CF_OK)
        sleep_until(until);
    return rv;
}

/* By handle alone: the caller closed them, and may have lost sight of the object since (a logout
 * meanwhile) or the object may be gone (then nothing to do). */
void hsm_object_open_leases(CK_OBJECT_HANDLE oh)
{
    pthread_rwlock_wrlock(&g.lock);
    hsm_object *o = g.initialized ? hsm_map_get(&g.objects, oh) : NULL;
    if (o)
        atomic_fetch_sub(&o->lease_closed, 1);
    pthread_rwlock_unlock(&g.lock);
}

uint32_t hsm_object_lease_left(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, hsm_change c)
{
    if (!g.initialized)
        return 0;
    uint64_t left = 0;
    pthread_rwlock_wrlock(&g.lock);   /* as in hsm_object_close_leases */
    hsm_object *o;
    if (hsm_object_may_change(h, oh, c, &o) == CF_OK) {
        uint64_t now = hsm_mono_ms(), until = atomic_load(&o->lease_until);
        if (until > now) {
            left = until - now;
            atomic_store(&o->lease_closed_until, until + 1000);
        }
    }
    pthread_rwlock_unlock(&g.lock);
    return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}

static cf_err hsm_op_rearm_impl(CK_SESSION_HANDLE h, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE keyh)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    CF_ENSURE(kind < HSM_OP__COUNT && kind != HSM_OP_DIGEST, CF_E_ARGS);
    bool done = false;
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (s) {
        pthread_mutex_lock(&s->mu);
        /* the key as it was at the kept operation's init, or else (gone or changed after the
         * lease) the login it was used under still there */
        hsm_token *t = hsm_token_get(s->slot);
        hsm_object *o = hsm_object_visible(s, keyh);
        bool same_key = o && o->version == s->spare_ver[kind];
        if (s->leased[kind] && !s->ops[kind] && spare_matches(s, kind, m, keyh) &&
            (same_key || (t && hsm_token_login_of(t, s->app) == CKU_USER))) {
            s->ops[kind] = s->spare[kind];
            s->spare[kind] = NULL;
            s->context_login[kind] = false;   /* no lease for CKA_ALWAYS_AUTHENTICATE keys */
            done = true;
        }
        s->leased[kind] = false;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_rwlock_unlock(&g.lock);
    return done ? CF_OK : hsm_op_init_impl(h, kind, m, keyh);
}

/* ---- audited entry points (audit.c): private-key operations, one event per SignInit/DecryptInit.
 * Only for a key the session sees in its slot: an init refused because the handle names no key
 * of the session's (KEY_HANDLE_INVALID) records nothing, so that another client's handles, tried
 * in a loop, neither flood the log nor put records under the key's name. */
static bool audit_key_visible(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE keyh)
{
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    hsm_object *o = s ? hsm_object_visible(s, keyh) : NULL;
    bool key = o && (o->cls == CKO_PRIVATE_KEY || o->cls == CKO_SECRET_KEY);
    pthread_rwlock_unlock(&g.lock);
    return key;
}

static void audit_key_use(CK_SESSION_HANDLE h, hsm_op_kind kind, CK_OBJECT_HANDLE keyh, cf_err rv)
{
    if ((kind == HSM_OP_SIGN || kind == HSM_OP_DECRYPT) && hsm_audit_on()) {
        hsm_audit_event e;
        bool key = audit_key_visible(h, keyh) && hsm_audit_prepare(&e, HSM_AUDIT_KEY_USE, h, keyh);
        if (key) {
            e.op = kind;
            hsm_audit_emit(&e, rv);
        }
    }
}

cf_err hsm_op_init(CK_SESSION_HANDLE h, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE keyh)
{
    cf_err rv = hsm_op_init_impl(h, kind, m, keyh);
    audit_key_use(h, kind, keyh, rv);
    return rv;
}

cf_err hsm_op_rearm(CK_SESSION_HANDLE h, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE keyh)
{
    cf_err rv = hsm_op_rearm_impl(h, kind, m, keyh);
    audit_key_use(h, kind, keyh, rv);
    return rv;
}
