/* keys.c: key generation, wrapping, unwrapping and derivation (PKCS#11 2.40 section 5.14), and
 * the random number generator (5.15). Key objects made here are born on the token, so they get
 * CKA_LOCAL (generation only), CKA_KEY_GEN_MECHANISM, and ALWAYS_SENSITIVE / NEVER_EXTRACTABLE
 * from their template (template.c).
 *
 * What a wrap carries: a secret key's CKA_VALUE, or a private key's unencrypted PKCS#8
 * PrivateKeyInfo (as SoftHSM2 does). Private keys travel only under the AES key wrap mechanisms:
 * RSA encryption has room for little more than a secret key and protects no integrity. */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "hsm/audit_int.h"
#include "hsm/internal.h"

cf_err hsm_check_key_use(const hsm_object *o, const hsm_mech *m, CK_ATTRIBUTE_TYPE usage, bool private_side);
cf_err hsm_key_snapshot(const uint8_t *dk, hsm_object *o, hsm_key *k);

/* Makes an object from a finished attribute list and registers it (write lock held). */
static cf_err add_object(hsm_session *s, hsm_attrs *a, CK_OBJECT_HANDLE *out)
{
    CF_TRY(hsm_check_new_object(s, a));
    hsm_object *o = hsm_object_new(s->slot);
    CF_ENSURE(o, CF_E_NOMEM);
    o->attrs = *a;
    *a = (hsm_attrs){ 0 };
    return hsm_object_add(s, o, out);
}

static cf_err hsm_generate_key_impl(CK_SESSION_HANDLE h, const CK_MECHANISM *m, const CK_ATTRIBUTE *t, CK_ULONG n,
                        CK_OBJECT_HANDLE *out)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    const hsm_mech *mech = hsm_mech_find(m->mechanism);
    CF_ENSURE(mech && (mech->flags & CKF_GENERATE), CF_E_MECHANISM_INVALID);
    CF_ENSURE(m->ulParameterLen == 0, CF_E_MECHANISM_PARAM_INVALID);
    hsm_attrs a = { 0 };
    uint8_t *val = NULL;
    CK_ULONG len = 0;
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    CF_GUARD(hsm_attrs_from_template(&a, t, n));
    CF_CHECK(!hsm_attrs_find(&a, CKA_VALUE), CF_E_TEMPLATE_INCONSISTENT);
    CF_GUARD(hsm_template_build(HSM_T_GENERATE, &a, CKO_SECRET_KEY, mech->key_type, mech->type));
    CF_GUARD(hsm_attrs_ulong(&a, CKA_VALUE_LEN, &len));
    CF_CHECK(len >= mech->min_size && len <= mech->max_size, CF_E_KEY_SIZE_RANGE);
    val = cf_secret_alloc(len);
    CF_CHECK(val, CF_E_NOMEM);
    CF_GUARD(cf_random(val, len));
    CF_GUARD(hsm_attrs_set(&a, CKA_VALUE, val, len, CF_ATTR_SECRET));
    rv = add_object(s, &a, out);
out:
    pthread_rwlock_unlock(&g.lock);
    cf_secret_free(val, len);
    hsm_attrs_free(&a);
    return rv;
}

static cf_err hsm_generate_key_pair_impl(CK_SESSION_HANDLE h, const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                             const CK_ATTRIBUTE *priv, CK_ULONG npriv, CK_OBJECT_HANDLE *pub_out,
                             CK_OBJECT_HANDLE *priv_out)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    const hsm_mech *mech = hsm_mech_find(m->mechanism);
    CF_ENSURE(mech && (mech->flags & CKF_GENERATE_KEY_PAIR) && mech->keypair_gen, CF_E_MECHANISM_INVALID);
    hsm_attrs pa = { 0 }, sa = { 0 };
    cf_pkey *k = NULL;
    cf_err rv = CF_OK;
    CK_OBJECT_HANDLE ph = 0;

    /* validate everything under a read lock, generate without any lock, then register */
    pthread_rwlock_rdlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_rwlock_unlock(&g.lock);
    CF_ENSURE(s, CF_E_SESSION_HANDLE_INVALID);
    CF_GUARD(hsm_attrs_from_template(&pa, pub, npub));
    CF_GUARD(hsm_attrs_from_template(&sa, priv, npriv));
    /* the private template may not carry what only the public one defines */
    CF_CHECK(!hsm_attrs_find(&sa, CKA_MODULUS_BITS) && !hsm_attrs_find(&sa, CKA_EC_POINT), CF_E_TEMPLATE_INCONSISTENT);
    hsm_attrs ptmpl = { 0 };
    CF_GUARD(hsm_attrs_copy(&ptmpl, &pa));
    rv = hsm_template_build(HSM_T_GENERATE, &pa, CKO_PUBLIC_KEY, mech->key_type, mech->type);
    if (rv == CF_OK)
        rv = hsm_template_build(HSM_T_GENERATE, &sa, CKO_PRIVATE_KEY, mech->key_type, mech->type);
    if (rv == CF_OK)
        rv = mech->keypair_gen(m, &ptmpl, &sa, &k);
    hsm_attrs_free(&ptmpl);
    CF_GUARD(rv);
    CF_GUARD(hsm_pkey_to_attrs(k, CKO_PUBLIC_KEY, &pa));
    CF_GUARD(hsm_pkey_to_attrs(k, CKO_PRIVATE_KEY, &sa));
    /* the private key carries its public parts for C_GetAttributeValue (EC params/point too) */
    const cf_attr *pt = hsm_attrs_find(&pa, CKA_EC_POINT);
    if (pt)
        CF_GUARD(hsm_attrs_set(&sa, CKA_EC_POINT, pt->val, pt->len, 0));
    pthread_rwlock_wrlock(&g.lock);
    if (!hsm_session_get(h))
        rv = CF_E_SESSION_HANDLE_INVALID;
    if (rv == CF_OK)
        rv = hsm_check_new_object(s, &pa);
    if (rv == CF_OK)
        rv = hsm_check_new_object(s, &sa);
    if (rv == CF_OK)
        rv = add_object(s, &pa, &ph);
    if (rv == CF_OK) {
        rv = add_object(s, &sa, priv_out);
        if (rv != CF_OK) {
            hsm_object *po = hsm_map_get(&g.objects, ph);
            if (po)
                (void)hsm_object_remove(po);
        } else {
            *pub_out = ph;
        }
    }
    pthread_rwlock_unlock(&g.lock);
out:
    cf_pkey_free(k);
    hsm_attrs_free(&pa);
    hsm_attrs_free(&sa);
    hsm_session_unref(s);
    return rv;
}

static cf_err hsm_wrap_key_impl(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE wh, CK_OBJECT_HANDLE kh,
                                uint8_t *wrapped, CK_ULONG *wrapped_len)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    const hsm_mech *mech = hsm_mech_find(m->mechanism);
    CF_ENSURE(mech && (mech->flags & CKF_WRAP) && mech->wrap, CF_E_MECHANISM_INVALID);
    hsm_key wk = { 0 }, target = { 0 };
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    hsm_object *w = hsm_object_visible(s, wh);
    CF_CHECK(w, CF_E_WRAPPING_KEY_HANDLE_INVALID);
    hsm_object *o = hsm_object_visible(s, kh);
    CF_CHECK(o, CF_E_KEY_HANDLE_INVALID);
    rv = hsm_check_key_use(w, mech, CKA_WRAP, false);
    if (rv == CF_E_KEY_TYPE_INCONSISTENT)
        rv = CF_E_WRAPPING_KEY_TYPE_INCONSISTENT;
    CF_GUARD(rv);
    /* secret keys, and private keys under AES key wrap; what leaves must be extractable, and a
     * key marked WRAP_WITH_TRUSTED only under a trusted wrapping key */
    CF_CHECK(o->cls == CKO_SECRET_KEY || (o->cls == CKO_PRIVATE_KEY && mech->key_type == CKK_AES),
             CF_E_KEY_NOT_WRAPPABLE);
    CF_CHECK(hsm_attrs_flag(&o->attrs, CKA_EXTRACTABLE, false), CF_E_KEY_UNEXTRACTABLE);
    if (hsm_attrs_flag(&o->attrs, CKA_WRAP_WITH_TRUSTED, false))
        CF_CHECK(hsm_attrs_flag(&w->attrs, CKA_TRUSTED, false), CF_E_KEY_NOT_WRAPPABLE);
    const uint8_t *dk = hsm_session_dk(s);
    CF_GUARD(hsm_key_snapshot(dk, w, &wk));
    CF_GUARD(hsm_key_snapshot(dk, o, &target));
    pthread_rwlock_unlock(&g.lock);
    /* the encoding and the wrap run without the engine lock */
    cf_buf der = { 0 };
    const uint8_t *in = target.secret;
    size_t inlen = target.secret_len;
    if (target.cls == CKO_PRIVATE_KEY) {
        rv = target.pkey ? cf_pkey_to_pkcs8(target.pkey, &der) : CF_E_KEY_NOT_WRAPPABLE;
        if (rv == CF_E_KEY_TYPE_INCONSISTENT)
            rv = CF_E_KEY_NOT_WRAPPABLE;
        in = der.p;
        inlen = der.len;
    }
    size_t n = wrapped ? *wrapped_len : 0;
    if (rv == CF_OK)
        rv = mech->wrap(m, &wk, in, inlen, wrapped, &n);
    if (rv == CF_OK || rv == CF_E_BUFFER_TOO_SMALL)
        *wrapped_len = n;
    cf_buf_free(&der);
    hsm_key_release(&wk);
    hsm_key_release(&target);
    return rv;
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_key_release(&wk);
    hsm_key_release(&target);
    return rv;
}

/* The secret-key object an unwrap or derive makes from raw bytes (write lock held). */
static cf_err new_secret(hsm_session *s, hsm_tmpl_op op, const CK_ATTRIBUTE *t, CK_ULONG n, const uint8_t *val,
                         size_t len, CK_OBJECT_HANDLE *out)
{
    hsm_attrs a = { 0 };
    cf_err rv = CF_OK;
    CF_GUARD(hsm_attrs_from_template(&a, t, n));
    CF_CHECK(!hsm_attrs_find(&a, CKA_VALUE), CF_E_TEMPLATE_INCONSISTENT);
    CK_ULONG want = 0;
    if (hsm_attrs_ulong(&a, CKA_VALUE_LEN, &want) == CF_OK) {
        CF_CHECK(want >= 1 && want <= len, CF_E_TEMPLATE_INCONSISTENT);
        len = want;
    } else if (op == HSM_T_DERIVE) {
        CK_ULONG kt = CKK_GENERIC_SECRET;
        (void)hsm_attrs_ulong(&a, CKA_KEY_TYPE, &kt);
        if (kt == CKK_AES && len > 32)
            len = 32; /* an ECDH secret longer than an AES key: take the leading bytes */
    }
    hsm_attrs_remove(&a, CKA_VALUE_LEN);
    CF_GUARD(hsm_attrs_set(&a, CKA_VALUE, val, len, CF_ATTR_SECRET));
    CF_GUARD(hsm_template_build(op, &a, CKO_SECRET_KEY, CK_UNAVAILABLE_INFORMATION, CK_UNAVAILABLE_INFORMATION));
    rv = add_object(s, &a, out);
out:
    hsm_attrs_free(&a);
    return rv;
}

/* The class a C_UnwrapKey template asks for. Without a well-formed CKA_CLASS it is a secret key
 * (new_secret's template checks then report a malformed or duplicate one). */
static CK_OBJECT_CLASS template_class(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].type == CKA_CLASS && t[i].pValue && t[i].ulValueLen == sizeof(CK_OBJECT_CLASS)) {
            CK_OBJECT_CLASS c;
            memcpy(&c, t[i].pValue, sizeof c);
            return c;
        }
    }
    return CKO_SECRET_KEY;
}

/* The attributes a private key object takes from its key (hsm_pkey_to_attrs), plus the public
 * point an EC or Edwards private key carries for C_GetAttributeValue, as generated ones do. */
static cf_err private_key_attrs(const cf_pkey *k, hsm_attrs *ka)
{
    CF_TRY(hsm_pkey_to_attrs(k, CKO_PRIVATE_KEY, ka));
    if (cf_pkey_get_type(k) == CF_PKEY_RSA)
        return CF_OK;
    cf_curve c = CF_CURVE_NONE;
    cf_buf point = { 0 }, der = { 0 };
    cf_err rv;
    CF_GUARD(cf_pkey_ec_export(k, false, &c, &point, NULL));
    CF_GUARD(cf_ec_point_to_der(point.p, point.len, &der));
    rv = hsm_attrs_set(ka, CKA_EC_POINT, der.p, der.len, 0);
out:
    cf_buf_free(&point);
    cf_buf_free(&der);
    return rv;
}

/* Whether a value the caller's template gave agrees with the key's own. CKA_EC_PARAMS names the
 * curve in either of its encodings (Ed25519: OID or PrintableString). */
static bool same_value(const cf_attr *given, const cf_attr *key)
{
    if (key->type == CKA_EC_PARAMS)
        return cf_curve_from_params(given->val, given->len) == cf_curve_from_params(key->val, key->len);
    return given->len == key->len && (key->len == 0 || memcmp(given->val, key->val, key->len) == 0);
}

/* C_UnwrapKey into a private key: plain is a PKCS#8 PrivateKeyInfo. The caller's template is
 * checked as for any unwrap (it may not carry key material nor CKA_MODULUS /
 * CKA_PUBLIC_EXPONENT, and a CKA_KEY_TYPE must be the key's); the key's own attributes are added
 * after that check, being the engine's. Built without the engine lock, registered under it. */
static cf_err unwrap_private(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *t, CK_ULONG n, const cf_buf *plain,
                             CK_OBJECT_HANDLE *out)
{
    hsm_attrs a = { 0 }, ka = { 0 };
    cf_pkey *k = NULL;
    cf_err rv = cf_pkey_from_pkcs8(plain->p, plain->len, &k);
    if (rv != CF_OK)
        return rv == CF_E_NOMEM ? rv : CF_E_WRAPPED_KEY_INVALID;
    CF_GUARD(private_key_attrs(k, &ka));
    CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
    CF_GUARD(hsm_attrs_ulong(&ka, CKA_KEY_TYPE, &kt));
    CF_GUARD(hsm_attrs_from_template(&a, t, n));
    /* a template CKA_KEY_TYPE other than kt: TEMPLATE_INCONSISTENT */
    CF_GUARD(hsm_template_build(HSM_T_UNWRAP, &a, CKO_PRIVATE_KEY, kt, CK_UNAVAILABLE_INFORMATION));
    for (size_t i = 0; i < ka.n; i++) {
        const cf_attr *given = hsm_attrs_find(&a, ka.a[i].type);
        CF_CHECK(!given || same_value(given, &ka.a[i]), CF_E_TEMPLATE_INCONSISTENT);
        CF_GUARD(hsm_attrs_set(&a, ka.a[i].type, ka.a[i].val, ka.a[i].len, ka.a[i].flags));
    }
    pthread_rwlock_wrlock(&g.lock);
    hsm_session *s = hsm_session_get(h);
    rv = s ? add_object(s, &a, out) : CF_E_SESSION_HANDLE_INVALID;
    pthread_rwlock_unlock(&g.lock);
out:
    cf_pkey_free(k);
    hsm_attrs_free(&ka);
    hsm_attrs_free(&a);
    return rv;
}

static cf_err hsm_unwrap_key_impl(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE uh, const uint8_t *wrapped,
                      size_t wrapped_len, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    const hsm_mech *mech = hsm_mech_find(m->mechanism);
    CF_ENSURE(mech && (mech->flags & CKF_UNWRAP) && mech->unwrap, CF_E_MECHANISM_INVALID);
    hsm_key uk = { 0 };
    cf_buf plain = { 0 };
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    hsm_object *u = hsm_object_visible(s, uh);
    CF_CHECK(u, CF_E_UNWRAPPING_KEY_HANDLE_INVALID);
    rv = hsm_check_key_use(u, mech, CKA_UNWRAP, true);
    if (rv == CF_E_KEY_TYPE_INCONSISTENT)
        rv = CF_E_UNWRAPPING_KEY_TYPE_INCONSISTENT;
    CF_GUARD(rv);
    CF_GUARD(hsm_key_snapshot(hsm_session_dk(s), u, &uk));
    pthread_rwlock_unlock(&g.lock);
    rv = mech->unwrap(m, &uk, wrapped, wrapped_len, &plain);
    hsm_key_release(&uk);
    CF_TRY(rv);
    if (template_class(t, n) == CKO_PRIVATE_KEY) {
        rv = unwrap_private(h, t, n, &plain, out);
    } else {
        pthread_rwlock_wrlock(&g.lock);
        s = hsm_session_get(h);
        rv = s ? new_secret(s, HSM_T_UNWRAP, t, n, plain.p, plain.len, out) : CF_E_SESSION_HANDLE_INVALID;
        pthread_rwlock_unlock(&g.lock);
    }
    cf_buf_free(&plain);
    return rv;
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_key_release(&uk);
    return rv;
}

static cf_err hsm_derive_key_impl(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE bh,
                                  const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    const hsm_mech *mech = hsm_mech_find(m->mechanism);
    CF_ENSURE(mech && (mech->flags & CKF_DERIVE) && mech->derive, CF_E_MECHANISM_INVALID);
    hsm_key bk = { 0 };
    cf_buf secret = { 0 };
    pthread_rwlock_rdlock(&g.lock);
    cf_err rv = CF_OK;
    hsm_session *s = hsm_session_get(h);
    CF_CHECK(s, CF_E_SESSION_HANDLE_INVALID);
    hsm_object *b = hsm_object_visible(s, bh);
    CF_CHECK(b, CF_E_KEY_HANDLE_INVALID);
    CF_GUARD(hsm_check_key_use(b, mech, CKA_DERIVE, true));
    CF_GUARD(hsm_key_snapshot(hsm_session_dk(s), b, &bk));
    pthread_rwlock_unlock(&g.lock);
    rv = mech->derive(m, &bk, &secret);
    hsm_key_release(&bk);
    CF_TRY(rv);
    pthread_rwlock_wrlock(&g.lock);
    s = hsm_session_get(h);
    rv = s ? new_secret(s, HSM_T_DERIVE, t, n, secret.p, secret.len, out) : CF_E_SESSION_HANDLE_INVALID;
    pthread_rwlock_unlock(&g.lock);
    cf_buf_free(&secret);
    return rv;
out:
    pthread_rwlock_unlock(&g.lock);
    hsm_key_release(&bk);
    return rv;
}

cf_err hsm_generate_random(CK_SESSION_HANDLE h, uint8_t *out, size_t len)
{
    CF_ENSURE(g.initialized, CF_E_NOT_INITIALIZED);
    pthread_rwlock_rdlock(&g.lock);
    bool ok = hsm_session_get(h) != NULL;
    pthread_rwlock_unlock(&g.lock);
    CF_ENSURE(ok, CF_E_SESSION_HANDLE_INVALID);
    return len ? cf_random(out, len) : CF_OK;
}

/* ---- audited entry points (audit.c) ------------------------------------------------------- */

cf_err hsm_generate_key(CK_SESSION_HANDLE h, const CK_MECHANISM *m, const CK_ATTRIBUTE *t, CK_ULONG n,
                        CK_OBJECT_HANDLE *out)
{
    cf_err rv = hsm_generate_key_impl(h, m, t, n, out);
    hsm_audit_session(HSM_AUDIT_KEYGEN, h, rv == CF_OK ? *out : 0, rv);
    return rv;
}

cf_err hsm_generate_key_pair(CK_SESSION_HANDLE h, const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                             const CK_ATTRIBUTE *priv, CK_ULONG npriv, CK_OBJECT_HANDLE *pub_out,
                             CK_OBJECT_HANDLE *priv_out)
{
    cf_err rv = hsm_generate_key_pair_impl(h, m, pub, npub, priv, npriv, pub_out, priv_out);
    hsm_audit_session(HSM_AUDIT_KEYGEN, h, rv == CF_OK ? *priv_out : 0, rv);
    return rv;
}

cf_err hsm_unwrap_key(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE uh, const uint8_t *wrapped,
                      size_t wrapped_len, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    cf_err rv = hsm_unwrap_key_impl(h, m, uh, wrapped, wrapped_len, t, n, out);
    hsm_audit_session(HSM_AUDIT_UNWRAP, h, rv == CF_OK ? *out : 0, rv);
    return rv;
}

/* A wrap exports a key: the record names it, with the wrapping key as the other. A length query
 * (no buffer) exports nothing, and PKCS#11 callers make one before each wrap: not recorded. */
cf_err hsm_wrap_key(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE wh, CK_OBJECT_HANDLE kh,
                    uint8_t *wrapped, CK_ULONG *wrapped_len)
{
    cf_err rv = hsm_wrap_key_impl(h, m, wh, kh, wrapped, wrapped_len);
    hsm_audit_event e;
    if ((wrapped || rv != CF_OK) && hsm_audit_prepare(&e, HSM_AUDIT_WRAP, h, kh)) {
        hsm_audit_other(&e, h, wh);
        hsm_audit_emit(&e, rv);
    }
    return rv;
}

/* One record per derivation, naming the new key and the base key (a private key for ECDH): unlike
 * key_use it is not batched, as each call makes a key. */
cf_err hsm_derive_key(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE bh, const CK_ATTRIBUTE *t,
                      CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    cf_err rv = hsm_derive_key_impl(h, m, bh, t, n, out);
    hsm_audit_event e;
    if (hsm_audit_prepare(&e, HSM_AUDIT_DERIVE, h, rv == CF_OK ? *out : 0)) {
        hsm_audit_other(&e, h, bh);
        hsm_audit_emit(&e, rv);
    }
    return rv;
}
