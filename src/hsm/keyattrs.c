/* keyattrs.c: asymmetric keys to PKCS#11 attributes and back (PKCS#11 3.0 sec. 2.1.2 - 2.1.3 RSA,
 * 2.3.3 - 2.3.4 EC, 2.3.5 - 2.3.6 Edwards). See mech.h for the contract.
 *
 * Private components are stored CF_ATTR_SECRET (sealed by the store). On error, `out` may hold
 * some of the attributes already added: the caller discards the list. */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "hsm/mech_util.h"

static cf_err set_buf(hsm_attrs *out, CK_ATTRIBUTE_TYPE t, const cf_buf *b, uint32_t flags)
{
    return hsm_attrs_set(out, t, b->p, b->len, flags);
}

static cf_err rsa_to_attrs(const cf_pkey *k, bool priv, hsm_attrs *out)
{
    cf_rsa_parts r = { 0 };
    cf_err rv;
    CF_GUARD(cf_pkey_rsa_export(k, priv, &r));
    CF_GUARD(hsm_attrs_set_ulong(out, CKA_KEY_TYPE, CKK_RSA));
    CF_GUARD(set_buf(out, CKA_MODULUS, &r.n, 0));
    CF_GUARD(set_buf(out, CKA_PUBLIC_EXPONENT, &r.e, 0));
    if (!priv) {
        CF_GUARD(hsm_attrs_set_ulong(out, CKA_MODULUS_BITS, cf_pkey_bits(k)));
        goto out;
    }
    CF_GUARD(set_buf(out, CKA_PRIVATE_EXPONENT, &r.d, CF_ATTR_SECRET));
    /* The CRT parts exist unless the key was imported from n, e, d alone. */
    const struct {
        CK_ATTRIBUTE_TYPE t;
        const cf_buf *b;
    } crt[] = {
        { CKA_PRIME_1, &r.p }, { CKA_PRIME_2, &r.q }, { CKA_EXPONENT_1, &r.dp },
        { CKA_EXPONENT_2, &r.dq }, { CKA_COEFFICIENT, &r.qinv },
    };
    for (size_t i = 0; i < sizeof crt / sizeof crt[0]; i++)
        if (crt[i].b->len)
            CF_GUARD(set_buf(out, crt[i].t, crt[i].b, CF_ATTR_SECRET));
out:
    cf_rsa_parts_free(&r);
    return rv;
}

static cf_err ec_to_attrs(const cf_pkey *k, bool priv, hsm_attrs *out)
{
    cf_curve c = CF_CURVE_NONE;
    cf_buf point = { 0 }, scalar = { 0 }, params = { 0 }, der = { 0 };
    cf_err rv;
    CF_GUARD(cf_pkey_ec_export(k, priv, &c, &point, priv ? &scalar : NULL));
    CF_GUARD(hsm_attrs_set_ulong(out, CKA_KEY_TYPE, c == CF_CURVE_ED25519 ? CKK_EC_EDWARDS : CKK_EC));
    CF_GUARD(cf_curve_to_params(c, &params));
    CF_GUARD(set_buf(out, CKA_EC_PARAMS, &params, 0));
    if (priv) {
        CF_GUARD(set_buf(out, CKA_VALUE, &scalar, CF_ATTR_SECRET));
    } else {
        CF_GUARD(cf_ec_point_to_der(point.p, point.len, &der));
        CF_GUARD(set_buf(out, CKA_EC_POINT, &der, 0));
    }
out:
    cf_buf_free(&point);
    cf_buf_free(&scalar);
    cf_buf_free(&params);
    cf_buf_free(&der);
    return rv;
}

cf_err hsm_pkey_to_attrs(const cf_pkey *k, CK_OBJECT_CLASS cls, hsm_attrs *out)
{
    CF_ENSURE(k && out, CF_E_ARGS);
    CF_ENSURE(cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY, CF_E_ARGS);
    bool priv = cls == CKO_PRIVATE_KEY;
    CF_ENSURE(!priv || cf_pkey_is_private(k), CF_E_KEY_TYPE_INCONSISTENT);
    switch (cf_pkey_get_type(k)) {
    case CF_PKEY_RSA:
        CF_TRY(rsa_to_attrs(k, priv, out));
        break;
    case CF_PKEY_EC:
    case CF_PKEY_ED25519:
        CF_TRY(ec_to_attrs(k, priv, out));
        break;
    default:
        return CF_E_KEY_TYPE_INCONSISTENT;
    }
    cf_buf spki = { 0 };
    CF_TRY(cf_pkey_spki(k, &spki));
    cf_err rv = set_buf(out, CKA_PUBLIC_KEY_INFO, &spki, 0);
    cf_buf_free(&spki);
    return rv;
}

/* ---- attributes to key -------------------------------------------------------------------------- */
/* A value the key needs; sealed values cannot be used (the caller unseals first). */
static cf_err need(const hsm_attrs *a, CK_ATTRIBUTE_TYPE t, const cf_attr **v)
{
    *v = hsm_attrs_find(a, t);
    CF_ENSURE(*v && (*v)->len > 0, CF_E_TEMPLATE_INCOMPLETE);
    CF_ENSURE(!((*v)->flags & CF_ATTR_SEALED), CF_E_ARGS);
    return CF_OK;
}

/* An optional value: *v NULL when absent or empty. */
static cf_err maybe(const hsm_attrs *a, CK_ATTRIBUTE_TYPE t, const cf_attr **v)
{
    *v = hsm_attrs_find(a, t);
    if (*v && (*v)->len == 0)
        *v = NULL;
    CF_ENSURE(!*v || !((*v)->flags & CF_ATTR_SEALED), CF_E_ARGS);
    return CF_OK;
}

/* cf_rsa_parts views the attribute values (not owned: never cf_rsa_parts_free'd). */
static cf_buf view(const cf_attr *v)
{
    return v ? (cf_buf){ .p = v->val, .len = v->len } : (cf_buf){ 0 };
}

static cf_err rsa_from_attrs(const hsm_attrs *a, bool priv, cf_pkey **out)
{
    const cf_attr *n, *e, *d = NULL, *p = NULL, *q = NULL, *dp = NULL, *dq = NULL, *qi = NULL;
    CF_TRY(need(a, CKA_MODULUS, &n));
    if (priv) {
        CF_TRY(need(a, CKA_PRIVATE_EXPONENT, &d));
        /* PKCS#11 makes the public exponent optional on a private key, but a key without it
         * cannot be built (OpenSSL needs e, and blinding needs it): required here. */
        CF_TRY(need(a, CKA_PUBLIC_EXPONENT, &e));
        CF_TRY(maybe(a, CKA_PRIME_1, &p));
        CF_TRY(maybe(a, CKA_PRIME_2, &q));
        CF_TRY(maybe(a, CKA_EXPONENT_1, &dp));
        CF_TRY(maybe(a, CKA_EXPONENT_2, &dq));
        CF_TRY(maybe(a, CKA_COEFFICIENT, &qi));
        /* The CRT parts come all together or not at all. */
        int ncrt = !!p + !!q + !!dp + !!dq + !!qi;
        CF_ENSURE(ncrt == 0 || ncrt == 5, CF_E_TEMPLATE_INCOMPLETE);
    } else {
        CF_TRY(need(a, CKA_PUBLIC_EXPONENT, &e));
    }
    cf_rsa_parts parts = {
        .n = view(n), .e = view(e), .d = view(d), .p = view(p), .q = view(q),
        .dp = view(dp), .dq = view(dq), .qinv = view(qi),
    };
    cf_err rv = cf_pkey_rsa_import(&parts, out);
    if (rv == CF_E_CRYPTO || rv == CF_E_FORMAT)
        rv = CF_E_ATTRIBUTE_VALUE_INVALID;
    return rv;
}

static cf_err ec_from_attrs(const hsm_attrs *a, CK_KEY_TYPE kt, bool priv, cf_pkey **out)
{
    const cf_attr *params, *v;
    CF_TRY(need(a, CKA_EC_PARAMS, &params));
    cf_curve c = cf_curve_from_params(params->val, params->len);
    if (kt == CKK_EC)
        CF_ENSURE(c == CF_CURVE_P256 || c == CF_CURVE_P384 || c == CF_CURVE_P521, CF_E_CURVE_NOT_SUPPORTED);
    else
        CF_ENSURE(c == CF_CURVE_ED25519, CF_E_CURVE_NOT_SUPPORTED);
    size_t fl = cf_curve_field_len(c);
    cf_err rv;
    if (priv) {
        CF_TRY(need(a, CKA_VALUE, &v));
        const uint8_t *s = v->val;
        size_t len = v->len;
        if (c == CF_CURVE_ED25519) {
            CF_ENSURE(len == 32, CF_E_ATTRIBUTE_VALUE_INVALID);
            rv = cf_pkey_ec_import(c, NULL, 0, s, len, out);
        } else {
            /* A big-endian scalar: clients send it with or without leading zeros. */
            while (len > fl && s[0] == 0) {
                s++;
                len--;
            }
            CF_ENSURE(len <= fl, CF_E_ATTRIBUTE_VALUE_INVALID);
            uint8_t pad[66] = { 0 };
            memcpy(pad + fl - len, s, len);
            rv = cf_pkey_ec_import(c, NULL, 0, pad, fl, out);
            cf_wipe(pad, sizeof pad);
        }
    } else {
        CF_TRY(need(a, CKA_EC_POINT, &v));
        cf_buf pt = { 0 };
        CF_TRY(cf_ec_point_from_der(c, v->val, v->len, &pt));
        rv = cf_pkey_ec_import(c, pt.p, pt.len, NULL, 0, out);
        cf_buf_free(&pt);
    }
    if (rv == CF_E_CRYPTO || rv == CF_E_FORMAT)
        rv = CF_E_ATTRIBUTE_VALUE_INVALID;
    return rv;
}

cf_err hsm_pkey_from_attrs(const hsm_attrs *a, cf_pkey **out)
{
    CF_ENSURE(a && out, CF_E_ARGS);
    *out = NULL;
    CK_ULONG cls, kt;
    cf_err rv = hsm_attrs_ulong(a, CKA_CLASS, &cls);
    CF_ENSURE(rv != CF_E_NOT_FOUND, CF_E_TEMPLATE_INCOMPLETE);
    CF_TRY(rv);
    rv = hsm_attrs_ulong(a, CKA_KEY_TYPE, &kt);
    CF_ENSURE(rv != CF_E_NOT_FOUND, CF_E_TEMPLATE_INCOMPLETE);
    CF_TRY(rv);
    CF_ENSURE(cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY, CF_E_ATTRIBUTE_VALUE_INVALID);
    bool priv = cls == CKO_PRIVATE_KEY;
    switch (kt) {
    case CKK_RSA:
        return rsa_from_attrs(a, priv, out);
    case CKK_EC:
    case CKK_EC_EDWARDS:
        return ec_from_attrs(a, kt, priv, out);
    default:
        return CF_E_KEY_TYPE_INCONSISTENT;
    }
}
