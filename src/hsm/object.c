/* object.c: object life cycle inside the engine (PKCS#11 2.40 section 4.4).
 *
 * Token objects mirror the store: their secret values stay sealed (encrypted) in memory until an
 * operation needs them and the token is logged in; a sealed copy is kept so logout can wipe the
 * plaintext and go back to sealed without reading the store. After every write the object is
 * re-read from the store, so memory never holds a value the store does not. */
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/secmem.h"
#include "hsm/internal.h"

hsm_object *hsm_object_new(uint64_t slot)
{
    hsm_object *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->slot = slot;
    pthread_mutex_init(&o->mu, NULL);
    return o;
}

static hsm_attrs *sealed_copy(hsm_object *o);

static _Atomic size_t g_app_object_limit;   /* hsm_set_session_object_limit; 0: none */

void hsm_set_session_object_limit(size_t n)
{
    atomic_store(&g_app_object_limit, n);
}

/* g.lock held for writing: application app's count of session objects, moved by delta (+1 or
 * -1). +1 fails past the limit or for want of memory (NOMEM), changing nothing. */
static cf_err count_app_object(uint64_t app, int delta)
{
    if (app == 0)
        return CF_OK;
    size_t n = (size_t)(uintptr_t)hsm_map_get(&g.app_objects, app);
    if (delta > 0) {
        size_t limit = atomic_load(&g_app_object_limit);
        CF_ENSURE(limit == 0 || n < limit, CF_E_NOMEM);
        return hsm_map_put(&g.app_objects, app, (void *)(uintptr_t)(n + 1));
    }
    (void)hsm_map_del(&g.app_objects, app);
    if (n > 1)   /* back where it was: the map held it, so this put does not grow it */
        (void)hsm_map_put(&g.app_objects, app, (void *)(uintptr_t)(n - 1));
    return CF_OK;
}

void hsm_object_free(hsm_object *o)
{
    if (!o)
        return;
    if (o->owner) {
        g.session_objects--;
        (void)count_app_object(o->app, -1);
        hsm_session *s = hsm_map_get(&g.sessions, o->owner);   /* NULL once the session closed */
        if (s)
            s->nobjects--;
    }
    hsm_attrs_free(&o->attrs);
    hsm_attrs *sc = sealed_copy(o);
    if (sc) {
        hsm_attrs_free(sc);
        free(sc);
    }
    cf_pkey_free(o->pkey);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* The sealed values an object had before they were opened (restored at logout). */
static hsm_attrs *sealed_copy(hsm_object *o)
{
    return (hsm_attrs *)o->sealed;
}

void hsm_object_cache_class(hsm_object *o)
{
    CK_ULONG c = CK_UNAVAILABLE_INFORMATION;
    (void)hsm_attrs_ulong(&o->attrs, CKA_CLASS, &c);
    o->cls = c;
    o->is_token = hsm_attrs_flag(&o->attrs, CKA_TOKEN, false);
    o->is_private = hsm_attrs_flag(&o->attrs, CKA_PRIVATE, false);
}

hsm_object *hsm_object_visible(const hsm_session *s, CK_OBJECT_HANDLE h)
{
    hsm_object *o = hsm_map_get(&g.objects, h);
    if (!o || o->slot != s->slot)
        return NULL;
    /* PKCS#11 v2.40 4.4: a session object is only the creating application's (in cofferd, other
     * clients' session objects are not even found) */
    if (!o->is_token && o->app != s->app)
        return NULL;
    if (o->is_private && hsm_session_login(s) != CKU_USER)
        return NULL;
    return o;
}

static bool has_sealed(const hsm_object *o)
{
    for (size_t i = 0; i < o->attrs.n; i++)
        if (o->attrs.a[i].flags & CF_ATTR_SEALED)
            return true;
    return false;
}

/* o->mu held. */
static cf_err unseal_locked(const uint8_t *dk, hsm_object *o)
{
    /* values opened by another application's login stay usable only by a logged-in one, so that
     * each application sees the same rule as with one login per process */
    if (!has_sealed(o))
        return o->sealed && !dk ? CF_E_USER_NOT_LOGGED_IN : CF_OK;
    CF_ENSURE(dk, CF_E_USER_NOT_LOGGED_IN);
    hsm_attrs *sc = calloc(1, sizeof *sc);
    CF_ENSURE(sc, CF_E_NOMEM);
    cf_err rv = CF_OK;
    for (size_t i = 0; i < o->attrs.n && rv == CF_OK; i++) {
        cf_attr *a = &o->attrs.a[i];
        if (!(a->flags & CF_ATTR_SEALED))
            continue;
        rv = hsm_attrs_set(sc, a->type, a->val, a->len, a->flags);
        if (rv == CF_OK)
            rv = cf_store_attr_unseal(dk, o->store_id, a);
    }
    if (rv != CF_OK) {
        /* put back what was opened so the object stays consistent */
        for (size_t i = 0; i < sc->n; i++)
            (void)hsm_attrs_set(&o->attrs, sc->a[i].type, sc->a[i].val, sc->a[i].len, sc->a[i].flags);
        hsm_attrs_free(sc);
        free(sc);
        if (rv == CF_E_STORE_CORRUPT)
            cf_error("object %lld: a sealed value failed its integrity check", (long long)o->store_id);
        return rv;
    }
    hsm_attrs *old = sealed_copy(o);
    if (old) {
        hsm_attrs_free(old);
        free(old);
    }
    o->sealed = sc;
    return CF_OK;
}

cf_err hsm_object_unseal(const uint8_t *dk, hsm_object *o)
{
    pthread_mutex_lock(&o->mu);
    cf_err rv = unseal_locked(dk, o);
    pthread_mutex_unlock(&o->mu);
    return rv;
}

cf_err hsm_object_pkey(const uint8_t *dk, hsm_object *o, cf_pkey **out)
{
    pthread_mutex_lock(&o->mu);
    cf_err rv = CF_OK;
    if (!o->pkey) {
        rv = unseal_locked(dk, o);
        if (rv == CF_OK)
            rv = hsm_pkey_from_attrs(&o->attrs, &o->pkey);
    } else if (o->sealed && !dk) {
        rv = CF_E_USER_NOT_LOGGED_IN; /* built from values another application's login opened */
    }
    if (rv == CF_OK)
        *out = cf_pkey_ref(o->pkey);
    pthread_mutex_unlock(&o->mu);
    return rv;
}

void hsm_object_close_secrets(hsm_object *o, int64_t store_id)
{
    (void)store_id;
    pthread_mutex_lock(&o->mu);
    if (o->cls == CKO_PRIVATE_KEY || o->cls == CKO_SECRET_KEY || o->is_private) {
        cf_pkey_free(o->pkey);
        o->pkey = NULL;
    }
    hsm_attrs *sc = sealed_copy(o);
    if (sc) {
        for (size_t i = 0; i < sc->n; i++)
            (void)hsm_attrs_set(&o->attrs, sc->a[i].type, sc->a[i].val, sc->a[i].len, sc->a[i].flags);
        hsm_attrs_free(sc);
        free(sc);
        o->sealed = NULL;
    }
    pthread_mutex_unlock(&o->mu);
}

/* Replaces a token object's attributes with the store's record. */
static cf_err reload(hsm_object *o)
{
    cf_attr *a = NULL;
    size_t n = 0;
    int64_t seq = 0;
    CF_TRY(cf_store_obj_load(g.store, o->store_id, &a, &n, &seq));
    pthread_mutex_lock(&o->mu);
    hsm_attrs_free(&o->attrs);
    o->attrs = (hsm_attrs){ a, n, n };
    hsm_attrs *sc = sealed_copy(o);
    if (sc) {
        hsm_attrs_free(sc);
        free(sc);
        o->sealed = NULL;
    }
    cf_pkey_free(o->pkey);
    o->pkey = NULL;
    o->seq = seq;
    o->version++;
    hsm_object_cache_class(o);
    pthread_mutex_unlock(&o->mu);
    return CF_OK;
}

cf_err hsm_object_adopt(hsm_token *t, int64_t id, int64_t seq, cf_attr *attrs, size_t n)
{
    hsm_object *o = hsm_object_new(t->slot);
    if (!o) {
        cf_attrs_free(attrs, n);
        return CF_E_NOMEM;
    }
    o->store_id = id;
    o->seq = seq;
    o->attrs = (hsm_attrs){ attrs, n, n };
    hsm_object_cache_class(o);
    o->is_token = true;
    o->handle = g.next_object++;
    cf_err rv = hsm_map_put(&g.objects, o->handle, o);
    if (rv == CF_OK) {
        rv = hsm_map_put(&t->by_store_id, (uint64_t)id, o);
        if (rv != CF_OK)
            hsm_map_del(&g.objects, o->handle);
    }
    if (rv != CF_OK)
        hsm_object_free(o);
    return rv;
}

cf_err hsm_object_load(hsm_token *t, int64_t id)
{
    hsm_object *o = hsm_map_get(&t->by_store_id, (uint64_t)id);
    if (o)
        return reload(o);
    o = hsm_object_new(t->slot);
    CF_ENSURE(o, CF_E_NOMEM);
    o->store_id = id;
    cf_err rv = reload(o);
    if (rv == CF_OK) {
        o->is_token = true;
        o->handle = g.next_object++;
        rv = hsm_map_put(&g.objects, o->handle, o);
        if (rv == CF_OK) {
            rv = hsm_map_put(&t->by_store_id, (uint64_t)id, o);
            if (rv != CF_OK)
                hsm_map_del(&g.objects, o->handle);
        }
    }
    if (rv != CF_OK)
        hsm_object_free(o);
    return rv;
}

static bool needs_dk(const hsm_attrs *a)
{
    for (size_t i = 0; i < a->n; i++)
        if ((a->a[i].flags & CF_ATTR_SECRET) && !(a->a[i].flags & CF_ATTR_SEALED))
            return true;
    return false;
}

cf_err hsm_object_add(hsm_session *s, hsm_object *o, CK_OBJECT_HANDLE *out)
{
    cf_err rv = CF_OK;
    hsm_object_cache_class(o);
    hsm_token *t = hsm_token_get(o->slot);
    CF_CHECK(t, CF_E_SESSION_HANDLE_INVALID);
    if (o->is_token) {
        const uint8_t *dk = hsm_session_dk(s);
        CF_CHECK(!needs_dk(&o->attrs) || dk, CF_E_USER_NOT_LOGGED_IN);
        CF_GUARD(cf_store_obj_insert(g.store, o->slot, o->attrs.a, o->attrs.n, dk, &o->store_id));
        rv = reload(o);
        if (rv == CF_OK)
            rv = hsm_map_put(&t->by_store_id, (uint64_t)o->store_id, o);
        if (rv != CF_OK) {
            (void)cf_store_obj_delete(g.store, o->store_id);
            goto out;
        }
    }
    if (!o->is_token)
        CF_GUARD(count_app_object(s->app, +1));
    o->handle = g.next_object++;
    rv = hsm_map_put(&g.objects, o->handle, o);
    if (rv != CF_OK && !o->is_token)
        (void)count_app_object(s->app, -1);
    if (rv == CF_OK && !o->is_token) {
        o->owner = s->handle;
        o->app = s->app;
        g.session_objects++;
        s->nobjects++;
    }
    if (rv != CF_OK) {
        if (o->is_token) {
            hsm_map_del(&t->by_store_id, (uint64_t)o->store_id);
            (void)cf_store_obj_delete(g.store, o->store_id);
        }
        goto out;
    }
    *out = o->handle;
    return CF_OK;
out:
    hsm_object_free(o);
    return rv;
}

cf_err hsm_object_remove(hsm_object *o)
{
    if (o->is_token) {
        cf_err rv = cf_store_obj_delete(g.store, o->store_id);
        if (rv != CF_OK && rv != CF_E_NOT_FOUND)
            return rv;
        hsm_token *t = hsm_token_get(o->slot);
        if (t)
            hsm_map_del(&t->by_store_id, (uint64_t)o->store_id);
    }
    hsm_map_del(&g.objects, o->handle);
    hsm_object_free(o);
    return CF_OK;
}

cf_err hsm_object_persist_done(hsm_object *o)
{
    o->version++;
    return o->is_token ? reload(o) : CF_OK;
}
