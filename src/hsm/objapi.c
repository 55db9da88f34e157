/* objapi.c: C_CreateObject, C_CopyObject, C_DestroyObject, C_GetObjectSize,
 * C_GetAttributeValue, C_SetAttributeValue (PKCS#11 2.40 section 5.7). */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "hsm/audit_int.h"
#include "hsm/internal.h"

bool hsm_attr_so_only_true(CK_ATTRIBUTE_TYPE type);

/* Who may make an object with these storage attributes in this session. */
cf_err hsm_check_new_object(hsm_session *s, const hsm_attrs *a)
{
    hsm_token *t = hsm_token_get(s->slot);
    CF_ENSURE(t, CF_E_SESSION_HANDLE_INVALID);
    bool token = hsm_attrs_flag(a, CKA_TOKEN, false), priv = hsm_attrs_flag(a, CKA_PRIVATE, false);
    if (token)
        CF_ENSURE(hsm_session_rw(s), CF_E_SESSION_READ_ONLY);
    if (priv)
        CF_ENSURE(hsm_session_login(s) == CKU_USER, CF_E_USER_NOT_LOGGED_IN);
    if (hsm_attrs_flag(a, CKA_TRUSTED, false))
        CF_ENSURE(hsm_session_login(s) == CKU_SO, CF_E_ATTRIBUTE_READ_ONLY);
    return CF_OK;
}

/* For public and private key objects made from a template: the values must make a key, and an
 * RSA public key gets CKA_MODULUS_BITS from its modulus. */
static cf_err check_key_material(hsm_attrs *a)
{
    CK_ULONG cls;
    CF_TRY(hsm_attrs_ulong(a, CKA_CLASS, &cls));
    if (cls != CKO_PUBLIC_KEY && cls != CKO_PRIVATE_KEY)
        return CF_OK;
    cf_pkey *k = NULL;
    cf_err rv = hsm_pkey_from_attrs(a, &k);
    if (rv == CF_E_TEMPLATE_INCOMPLETE)
        return rv;
    if (rv != CF_OK)
        return CF_E_ATTRIBUTE_VALUE_INVALID;
    CK_ULONG kt;
    if (cls == CKO_PUBLIC_KEY && hsm_attrs_ulong(a, CKA_KEY_TYPE, &kt) == CF_OK && kt == CKK_RSA)
        rv = hsm_attrs_set_ulong(a, CKA_MODULUS_BITS, cf_pkey_bits(k));
    cf_pkey_free(k);
    return rv;
}

static cf_err hsm_create_object_impl(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    hsm_attrs a = { 0 };
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    CF_GUARD(hsm_attrs_from_template(&a, tmpl, n));
    CF_GUARD(hsm_template_build(HSM_T_CREATE, &a, CK_UNAVAILABLE_INFORMATION, CK_UNAVAILABLE_INFORMATION, 0));
    CF_GUARD(hsm_check_new_object(s, &a));
    CF_GUARD(check_key_material(&a));
    hsm_object *o = hsm_object_new(s->slot);
    CF_CHECK(o, CF_E_NOMEM);
    o->attrs = a;
    a = (hsm_attrs){ 0 };
    rv = hsm_object_add(s, o, out);
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_attrs_free(&a);
    return rv;
}

static cf_err hsm_copy_object_impl(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE src, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                       CK_OBJECT_HANDLE *out)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    hsm_attrs ch = { 0 }, a = { 0 };
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    hsm_object *o = hsm_object_visible(s, src);
    CF_CHECK(o, CF_E_OBJECT_HANDLE_INVALID);
    CF_CHECK(hsm_attrs_flag(&o->attrs, CKA_COPYABLE, true), CF_E_ACTION_PROHIBITED);
    CF_GUARD(hsm_attrs_from_template(&ch, tmpl, n));
    CF_GUARD(hsm_template_check_change(HSM_T_COPY, o, &ch));
    /* sealed values are bound to the source's id: open them to copy */
    CF_GUARD(hsm_object_unseal(hsm_session_dk(s), o));
    pthread_mutex_lock(&o->mu);
    rv = hsm_attrs_copy(&a, &o->attrs);
    pthread_mutex_unlock(&o->mu);
    CF_GUARD(rv);
    for (size_t i = 0; i < ch.n; i++)
        CF_GUARD(hsm_attrs_set(&a, ch.a[i].type, ch.a[i].val, ch.a[i].len, 0));
    /* a copy is not generated on the token, whatever the source was, but keeps its history */
    CF_GUARD(hsm_check_new_object(s, &a));
    for (size_t i = 0; i < a.n; i++) {
        a.a[i].flags &= ~(uint32_t)CF_ATTR_SEALED;
        if (hsm_attr_is_secret(o->cls, a.a[i].type) ||
            (o->cls == CKO_DATA && a.a[i].type == CKA_VALUE && hsm_attrs_flag(&a, CKA_PRIVATE, false)))
            a.a[i].flags |= CF_ATTR_SECRET;
        else
            a.a[i].flags &= ~(uint32_t)CF_ATTR_SECRET;
    }
    hsm_object *c = hsm_object_new(s->slot);
    CF_CHECK(c, CF_E_NOMEM);
    c->attrs = a;
    a = (hsm_attrs){ 0 };
    rv = hsm_object_add(s, c, out);
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_attrs_free(&ch);
    hsm_attrs_free(&a);
    return rv;
}

cf_err hsm_object_may_change(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, hsm_change c, hsm_object **out)
{
    hsm_session *s = hsm_session_get(h);
    CF_ENSURE(s, CF_E_SESSION_HANDLE_INVALID);
    hsm_object *o = hsm_object_visible(s, oh);
    CF_ENSURE(o, CF_E_OBJECT_HANDLE_INVALID);
    CF_ENSURE(!o->is_token || hsm_session_rw(s), CF_E_SESSION_READ_ONLY);
    if (c == HSM_CHANGE_DESTROY)
        CF_ENSURE(hsm_attrs_flag(&o->attrs, CKA_DESTROYABLE, true), CF_E_ACTION_PROHIBITED);
    else
        CF_ENSURE(hsm_attrs_flag(&o->attrs, CKA_MODIFIABLE, true), CF_E_ATTRIBUTE_READ_ONLY);
    *out = o;
    return CF_OK;
}

static cf_err hsm_destroy_object_impl(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_object *o;
    CF_GUARD(hsm_object_may_change(h, oh, HSM_CHANGE_DESTROY, &o));
    rv = hsm_object_remove(o);
out:
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

cf_err hsm_get_object_size(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ULONG *size)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    hsm_object *o = hsm_object_visible(s, oh);
    CF_CHECK(o, CF_E_OBJECT_HANDLE_INVALID);
    CK_ULONG total = 0;
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < o->attrs.n; i++)
        total += sizeof(CK_ATTRIBUTE_TYPE) + o->attrs.a[i].len;
    pthread_mutex_unlock(&o->mu);
    *size = total;
out:
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

cf_err hsm_get_attribute_value(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ATTRIBUTE *t, CK_ULONG n)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = CF_OK;
    bool sensitive = false, invalid = false, small = false;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    hsm_object *o = hsm_object_visible(s, oh);
    CF_CHECK(o, CF_E_OBJECT_HANDLE_INVALID);
    const uint8_t *dk = hsm_session_dk(s);
    pthread_mutex_lock(&o->mu);
    for (CK_ULONG i = 0; i < n; i++) {
        const cf_attr *a = hsm_attrs_find(&o->attrs, t[i].type);
        if (a && hsm_attr_is_sensitive(o, t[i].type)) {
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            sensitive = true;
            continue;
        }
        if (!a) {
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            invalid = true;
            continue;
        }
        /* opened by another application's login: this one is not logged in */
        if (!dk && o->sealed && hsm_attrs_find((const hsm_attrs *)o->sealed, t[i].type)) {
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            sensitive = true;
            continue;
        }
        if (a->flags & CF_ATTR_SEALED) {
            /* a readable secret (extractable, not sensitive): open it now */
            pthread_mutex_unlock(&o->mu);
            cf_err e = hsm_object_unseal(dk, o);
            pthread_mutex_lock(&o->mu);
            a = hsm_attrs_find(&o->attrs, t[i].type);
            if (e != CF_OK || !a || (a->flags & CF_ATTR_SEALED)) {
                t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
                sensitive = true;
                continue;
            }
        }
        if (!t[i].pValue) {
            t[i].ulValueLen = a->len;
        } else if (t[i].ulValueLen < a->len) {
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            small = true;
        } else {
            if (a->len)
                memcpy(t[i].pValue, a->val, a->len);
            t[i].ulValueLen = a->len;
        }
    }
    pthread_mutex_unlock(&o->mu);
    rv = sensitive ? CF_E_ATTRIBUTE_SENSITIVE : invalid ? CF_E_ATTRIBUTE_TYPE_INVALID
                                                        : small ? CF_E_BUFFER_TOO_SMALL : CF_OK;
out:
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

static cf_err hsm_set_attribute_value_impl(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    hsm_attrs ch = { 0 };
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_object *o;
    CF_GUARD(hsm_object_may_change(h, oh, HSM_CHANGE_SET_ATTRIBUTE, &o));
    hsm_session *s = hsm_session_get(h);
    CF_GUARD(hsm_attrs_from_template(&ch, t, n));
    CF_GUARD(hsm_template_check_change(HSM_T_SET, o, &ch));
    for (size_t i = 0; i < ch.n; i++)
        if (hsm_attr_so_only_true(ch.a[i].type) && hsm_attrs_flag(&ch, ch.a[i].type, false))
            CF_CHECK(hsm_session_login(s) == CKU_SO, CF_E_ATTRIBUTE_READ_ONLY);
    /* apply to a copy, persist, and only then swap, so a failure changes nothing */
    hsm_attrs next = { 0 };
    pthread_mutex_lock(&o->mu);
    rv = hsm_attrs_copy(&next, &o->attrs);
    pthread_mutex_unlock(&o->mu);
    for (size_t i = 0; rv == CF_OK && i < ch.n; i++) {
        uint32_t flags = hsm_attr_is_secret(o->cls, ch.a[i].type) ||
                                 (o->cls == CKO_DATA && ch.a[i].type == CKA_VALUE && o->is_private)
                             ? CF_ATTR_SECRET : 0;
        rv = hsm_attrs_set(&next, ch.a[i].type, ch.a[i].val, ch.a[i].len, flags);
    }
    if (rv == CF_OK && o->is_token) {
        rv = cf_store_obj_update(g.store, o->store_id, next.a, next.n, hsm_session_dk(s));
        if (rv == CF_E_ARGS)
            rv = CF_E_USER_NOT_LOGGED_IN;
    }
    if (rv == CF_OK) {
        pthread_mutex_lock(&o->mu);
        hsm_attrs_free(&o->attrs);
        o->attrs = next;
        next = (hsm_attrs){ 0 };
        pthread_mutex_unlock(&o->mu);
        hsm_object_cache_class(o);
        rv = hsm_object_persist_done(o);
    }
    hsm_attrs_free(&next);
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_attrs_free(&ch);
    return rv;
}

/* ---- audited entry points (audit.c) ------------------------------------------------------- */

cf_err hsm_create_object(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    cf_err rv = hsm_create_object_impl(h, tmpl, n, out);
    hsm_audit_session(HSM_AUDIT_CREATE, h, rv == CF_OK ? *out : 0, rv);
    return rv;
}

cf_err hsm_copy_object(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE src, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                       CK_OBJECT_HANDLE *out)
{
    cf_err rv = hsm_copy_object_impl(h, src, tmpl, n, out);
    hsm_audit_session(HSM_AUDIT_CREATE, h, rv == CF_OK ? *out : 0, rv);
    return rv;
}

cf_err hsm_destroy_object(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh)
{
    hsm_audit_event e;
    bool on = hsm_audit_prepare(&e, HSM_AUDIT_DESTROY, h, oh);   /* before: the object goes */
    cf_err rv = hsm_object_close_leases(h, oh, HSM_CHANGE_DESTROY);
    if (rv == CF_OK) {
        rv = hsm_destroy_object_impl(h, oh);
        hsm_object_open_leases(oh);   /* a no-op once it is gone */
    }
    if (on)
        hsm_audit_emit(&e, rv);
    return rv;
}

cf_err hsm_set_attribute_value(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    cf_err rv = hsm_object_close_leases(h, oh, HSM_CHANGE_SET_ATTRIBUTE);
    if (rv == CF_OK) {
        rv = hsm_set_attribute_value_impl(h, oh, t, n);
        hsm_object_open_leases(oh);
    }
    hsm_audit_session(HSM_AUDIT_SET_ATTRIBUTE, h, oh, rv);
    return rv;
}
