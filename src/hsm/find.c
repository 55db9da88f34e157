/* find.c: C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal (2.40 section 5.7).
 *
 * The result set is computed at init, as a snapshot of handles. A template naming CKA_ID or
 * CKA_LABEL is answered from the store's index for token objects (constant time in the number of
 * objects); other templates scan the token's objects. Secret values never match: a search must
 * not be a way to test guesses of a sensitive value. */
#include <stdlib.h>
#include <string.h>
#include "hsm/internal.h"

static bool matches(const hsm_object *o, const hsm_attrs *t)
{
    for (size_t i = 0; i < t->n; i++) {
        const cf_attr *want = &t->a[i];
        const cf_attr *have = hsm_attrs_find(&o->attrs, want->type);
        if (!have || (have->flags & (CF_ATTR_SEALED | CF_ATTR_SECRET)) || have->len != want->len ||
            (want->len && memcmp(have->val, want->val, want->len) != 0))
            return false;
    }
    return true;
}

typedef struct {
    CK_OBJECT_HANDLE *h;
    size_t n, cap;
} handle_list;

static cf_err push(handle_list *l, CK_OBJECT_HANDLE h)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        CK_OBJECT_HANDLE *nh = realloc(l->h, cap * sizeof *nh);
        CF_ENSURE(nh, CF_E_NOMEM);
        l->h = nh;
        l->cap = cap;
    }
    l->h[l->n++] = h;
    return CF_OK;
}

static cf_err consider(const hsm_session *s, hsm_object *o, const hsm_attrs *t, handle_list *l)
{
    if (!o || o->slot != s->slot || !hsm_object_visible(s, o->handle))
        return CF_OK;
    pthread_mutex_lock(&o->mu);
    bool m = matches(o, t);
    pthread_mutex_unlock(&o->mu);
    return m ? push(l, o->handle) : CF_OK;
}

cf_err hsm_find_objects_init(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    /* another process may have added or removed token objects */
    CF_TRY(hsm_sync_if_changed());
    hsm_attrs t = { 0 };
    handle_list l = { 0 };
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    CF_GUARD(hsm_attrs_from_template(&t, tmpl, n));
    hsm_token *tok = hsm_token_get(s->slot);
    CF_CHECK(tok, CF_E_SESSION_HANDLE_INVALID);

    const cf_attr *id = hsm_attrs_find(&t, CKA_ID), *label = hsm_attrs_find(&t, CKA_LABEL);
    bool want_token = true, want_session = true;
    bool tk;
    if (hsm_attrs_bool(&t, CKA_TOKEN, &tk) == CF_OK) {
        want_token = tk;
        want_session = !tk;
    }
    if (want_token && (id || label)) {
        int64_t *ids = NULL;
        size_t nids = 0;
        CF_GUARD(cf_store_obj_find(g.store, s->slot, id ? id->val : NULL, id ? id->len : 0,
                                   label ? label->val : NULL, label ? label->len : 0, -1, &ids, &nids));
        for (size_t i = 0; i < nids && rv == CF_OK; i++)
            rv = consider(s, hsm_map_get(&tok->by_store_id, (uint64_t)ids[i]), &t, &l);
        free(ids);
        CF_GUARD(rv);
    } else if (want_token) {
        for (size_t i = 0; i < tok->by_store_id.cap && rv == CF_OK; i++)
            if (tok->by_store_id.keys[i])
                rv = consider(s, tok->by_store_id.vals[i], &t, &l);
        CF_GUARD(rv);
    }
    if (want_session && g.session_objects) {
        for (size_t i = 0; i < g.objects.cap && rv == CF_OK; i++) {
            hsm_object *o = g.objects.keys[i] ? g.objects.vals[i] : NULL;
            if (o && !o->is_token)
                rv = consider(s, o, &t, &l);
        }
        CF_GUARD(rv);
    }
    pthread_mutex_lock(&s->mu);
    if (s->finding) {
        rv = CF_E_OPERATION_ACTIVE;
    } else {
        free(s->found);
        s->found = l.h;
        s->nfound = l.n;
        s->foundpos = 0;
        s->finding = true;
        l.h = NULL;
    }
    pthread_mutex_unlock(&s->mu);
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_attrs_free(&t);
    free(l.h);
    return rv;
}

cf_err hsm_find_objects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    hsm_session *s = hsm_session_ref(h);
    CF_ENSURE(s, CF_E_SESSION_HANDLE_INVALID);
    pthread_mutex_lock(&s->mu);
    cf_err rv = CF_OK;
    if (!s->finding) {
        rv = CF_E_OPERATION_NOT_INITIALIZED;
    } else {
        CK_ULONG k = 0;
        while (k < max && s->foundpos < s->nfound)
            out[k++] = s->found[s->foundpos++];
        *count = k;
    }
    pthread_mutex_unlock(&s->mu);
    hsm_session_unref(s);
    return rv;
}

cf_err hsm_find_objects_final(CK_SESSION_HANDLE h)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    hsm_session *s = hsm_session_ref(h);
    CF_ENSURE(s, CF_E_SESSION_HANDLE_INVALID);
    pthread_mutex_lock(&s->mu);
    cf_err rv = s->finding ? CF_OK : CF_E_OPERATION_NOT_INITIALIZED;
    free(s->found);
    s->found = NULL;
    s->nfound = s->foundpos = 0;
    s->finding = false;
    pthread_mutex_unlock(&s->mu);
    hsm_session_unref(s);
    return rv;
}
