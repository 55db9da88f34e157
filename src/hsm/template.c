/* template.c: the attribute rules of PKCS#11 2.40 section 4, as one table.
 *
 * A row says, for one attribute and the object classes / key types it belongs to: its value
 * kind, its default, and the footnotes of the spec's attribute tables that apply (must or must not
 * be given at create / generate / unwrap, may be changed later, may only become TRUE or FALSE,
 * may only be set TRUE by the SO, cannot be revealed when sensitive). Building a new object and
 * checking a change both read this table, so the rules live in one place. */
#include <string.h>
#include "hsm/internal.h"

enum { C_DATA = 1, C_CERT = 2, C_PUB = 4, C_PRIV = 8, C_SEC = 16, C_KEYS = C_PUB | C_PRIV | C_SEC, C_ALL = 31 };
enum { T_RSA = 1, T_EC = 2, T_ED = 4, T_AES = 8, T_GEN = 16, T_ANY = 0 };
enum { K_BOOL, K_ULONG, K_BYTES, K_DATE, K_MECHS };
enum {
    F_REQ_CREATE = 1 << 0,   /* footnote 1 */
    F_NO_CREATE = 1 << 1,    /* 2 */
    F_REQ_GEN = 1 << 2,      /* 3 */
    F_NO_GEN = 1 << 3,       /* 4 */
    F_NO_UNWRAP = 1 << 5,    /* 6 */
    F_SENS = 1 << 6,         /* 7: not revealed when sensitive or unextractable */
    F_MOD = 1 << 7,          /* 8: may be changed after creation */
    F_SO_TRUE = 1 << 8,      /* 10: only the SO sets it TRUE */
    F_ONLY_TRUE = 1 << 9,    /* 11: once TRUE stays TRUE */
    F_ONLY_FALSE = 1 << 10,  /* 12: once FALSE stays FALSE */
    F_RO = 1 << 11,          /* set by the token only */
    F_SECRET = 1 << 12,      /* key material: stored encrypted */
};
enum { D_NONE, D_FALSE, D_TRUE, D_EMPTY, D_ZERO };

typedef struct {
    CK_ATTRIBUTE_TYPE type;
    unsigned classes, keytypes, kind, flags, dflt;
} rule;

#define MATERIAL (F_REQ_CREATE | F_NO_GEN | F_NO_UNWRAP | F_SENS | F_SECRET)
static const rule rules[] = {
    /* common to all objects */
    { CKA_CLASS, C_ALL, T_ANY, K_ULONG, F_REQ_CREATE, D_NONE },
    { CKA_TOKEN, C_ALL, T_ANY, K_BOOL, 0, D_FALSE },
    { CKA_PRIVATE, C_DATA | C_CERT | C_PUB, T_ANY, K_BOOL, 0, D_FALSE },
    { CKA_PRIVATE, C_PRIV | C_SEC, T_ANY, K_BOOL, 0, D_TRUE },
    { CKA_MODIFIABLE, C_ALL, T_ANY, K_BOOL, 0, D_TRUE },
    { CKA_COPYABLE, C_ALL, T_ANY, K_BOOL, F_MOD | F_ONLY_FALSE, D_TRUE },
    { CKA_DESTROYABLE, C_ALL, T_ANY, K_BOOL, 0, D_TRUE },
    { CKA_LABEL, C_ALL, T_ANY, K_BYTES, F_MOD, D_EMPTY },
    { CKA_UNIQUE_ID, C_ALL, T_ANY, K_BYTES, F_RO, D_NONE },
    /* data objects */
    { CKA_APPLICATION, C_DATA, T_ANY, K_BYTES, F_MOD, D_EMPTY },
    { CKA_OBJECT_ID, C_DATA, T_ANY, K_BYTES, F_MOD, D_EMPTY },
    { CKA_VALUE, C_DATA, T_ANY, K_BYTES, F_MOD, D_EMPTY },
    /* certificates (X.509) */
    { CKA_CERTIFICATE_TYPE, C_CERT, T_ANY, K_ULONG, F_REQ_CREATE, D_NONE },
    { CKA_TRUSTED, C_CERT | C_PUB | C_SEC, T_ANY, K_BOOL, F_MOD | F_SO_TRUE, D_FALSE },
    { CKA_CERTIFICATE_CATEGORY, C_CERT, T_ANY, K_ULONG, 0, D_ZERO },
    { CKA_CHECK_VALUE, C_CERT, T_ANY, K_BYTES, 0, D_NONE },
    { CKA_START_DATE, C_CERT | C_KEYS, T_ANY, K_DATE, F_MOD, D_EMPTY },
    { CKA_END_DATE, C_CERT | C_KEYS, T_ANY, K_DATE, F_MOD, D_EMPTY },
    { CKA_PUBLIC_KEY_INFO, C_CERT | C_PUB | C_PRIV, T_ANY, K_BYTES, 0, D_NONE },
    { CKA_SUBJECT, C_CERT | C_PUB | C_PRIV, T_ANY, K_BYTES, F_MOD, D_EMPTY },
    { CKA_ID, C_CERT | C_KEYS, T_ANY, K_BYTES, F_MOD, D_EMPTY },
    { CKA_ISSUER, C_CERT, T_ANY, K_BYTES, F_MOD, D_EMPTY },
    { CKA_SERIAL_NUMBER, C_CERT, T_ANY, K_BYTES, F_MOD, D_EMPTY },
    { CKA_VALUE, C_CERT, T_ANY, K_BYTES, F_REQ_CREATE, D_NONE },
    { CKA_URL, C_CERT, T_ANY, K_BYTES, 0, D_EMPTY },
    { CKA_HASH_OF_SUBJECT_PUBLIC_KEY, C_CERT, T_ANY, K_BYTES, 0, D_EMPTY },
    { CKA_HASH_OF_ISSUER_PUBLIC_KEY, C_CERT, T_ANY, K_BYTES, 0, D_EMPTY },
    { CKA_JAVA_MIDP_SECURITY_DOMAIN, C_CERT, T_ANY, K_ULONG, 0, D_ZERO },
    { CKA_NAME_HASH_ALGORITHM, C_CERT, T_ANY, K_ULONG, 0, D_NONE },
    /* keys */
    { CKA_KEY_TYPE, C_KEYS, T_ANY, K_ULONG, F_REQ_CREATE, D_NONE },
    { CKA_DERIVE, C_KEYS, T_ANY, K_BOOL, F_MOD, D_FALSE },
    { CKA_LOCAL, C_KEYS, T_ANY, K_BOOL, F_RO, D_NONE },
    { CKA_KEY_GEN_MECHANISM, C_KEYS, T_ANY, K_ULONG, F_RO, D_NONE },
    { CKA_ALLOWED_MECHANISMS, C_KEYS, T_ANY, K_MECHS, 0, D_EMPTY },
    { CKA_ENCRYPT, C_PUB | C_SEC, T_ANY, K_BOOL, F_MOD, D_TRUE },
    { CKA_VERIFY, C_PUB | C_SEC, T_ANY, K_BOOL, F_MOD, D_TRUE },
    { CKA_VERIFY_RECOVER, C_PUB, T_ANY, K_BOOL, F_MOD, D_FALSE },
    { CKA_WRAP, C_PUB | C_SEC, T_ANY, K_BOOL, F_MOD, D_TRUE },
    { CKA_DECRYPT, C_PRIV | C_SEC, T_ANY, K_BOOL, F_MOD, D_TRUE },
    { CKA_SIGN, C_PRIV | C_SEC, T_ANY, K_BOOL, F_MOD, D_TRUE },
    { CKA_SIGN_RECOVER, C_PRIV, T_ANY, K_BOOL, F_MOD, D_FALSE },
    { CKA_UNWRAP, C_PRIV | C_SEC, T_ANY, K_BOOL, F_MOD, D_TRUE },
    { CKA_SENSITIVE, C_PRIV | C_SEC, T_ANY, K_BOOL, F_MOD | F_ONLY_TRUE, D_TRUE },
    { CKA_EXTRACTABLE, C_PRIV | C_SEC, T_ANY, K_BOOL, F_MOD | F_ONLY_FALSE, D_FALSE },
    { CKA_ALWAYS_SENSITIVE, C_PRIV | C_SEC, T_ANY, K_BOOL, F_RO, D_NONE },
    { CKA_NEVER_EXTRACTABLE, C_PRIV | C_SEC, T_ANY, K_BOOL, F_RO, D_NONE },
    { CKA_WRAP_WITH_TRUSTED, C_PRIV | C_SEC, T_ANY, K_BOOL, F_MOD | F_ONLY_TRUE, D_FALSE },
    { CKA_ALWAYS_AUTHENTICATE, C_PRIV, T_ANY, K_BOOL, 0, D_FALSE },
    /* RSA */
    { CKA_MODULUS, C_PUB | C_PRIV, T_RSA, K_BYTES, F_REQ_CREATE | F_NO_GEN | F_NO_UNWRAP, D_NONE },
    { CKA_MODULUS_BITS, C_PUB, T_RSA, K_ULONG, F_NO_CREATE | F_REQ_GEN, D_NONE },
    { CKA_PUBLIC_EXPONENT, C_PUB, T_RSA, K_BYTES, F_REQ_CREATE, D_NONE },
    { CKA_PUBLIC_EXPONENT, C_PRIV, T_RSA, K_BYTES, F_NO_GEN | F_NO_UNWRAP, D_NONE },
    { CKA_PRIVATE_EXPONENT, C_PRIV, T_RSA, K_BYTES, MATERIAL, D_NONE },
    { CKA_PRIME_1, C_PRIV, T_RSA, K_BYTES, MATERIAL & ~F_REQ_CREATE, D_NONE },
    { CKA_PRIME_2, C_PRIV, T_RSA, K_BYTES, MATERIAL & ~F_REQ_CREATE, D_NONE },
    { CKA_EXPONENT_1, C_PRIV, T_RSA, K_BYTES, MATERIAL & ~F_REQ_CREATE, D_NONE },
    { CKA_EXPONENT_2, C_PRIV, T_RSA, K_BYTES, MATERIAL & ~F_REQ_CREATE, D_NONE },
    { CKA_COEFFICIENT, C_PRIV, T_RSA, K_BYTES, MATERIAL & ~F_REQ_CREATE, D_NONE },
    /* EC and Edwards */
    { CKA_EC_PARAMS, C_PUB, T_EC | T_ED, K_BYTES, F_REQ_CREATE | F_REQ_GEN, D_NONE },
    { CKA_EC_PARAMS, C_PRIV, T_EC | T_ED, K_BYTES, F_REQ_CREATE | F_NO_GEN, D_NONE },
    { CKA_EC_POINT, C_PUB, T_EC | T_ED, K_BYTES, F_REQ_CREATE | F_NO_GEN, D_NONE },
    { CKA_VALUE, C_PRIV, T_EC | T_ED, K_BYTES, MATERIAL, D_NONE },
    /* secret keys */
    { CKA_VALUE, C_SEC, T_AES | T_GEN, K_BYTES, MATERIAL, D_NONE },
    { CKA_VALUE_LEN, C_SEC, T_AES | T_GEN, K_ULONG, F_NO_CREATE, D_NONE },
    { CKA_CHECK_VALUE, C_SEC, T_AES | T_GEN, K_BYTES, 0, D_NONE },
};
#define NRULES (sizeof rules / sizeof rules[0])

static unsigned class_bit(CK_OBJECT_CLASS c)
{
    switch (c) {
    case CKO_DATA: return C_DATA;
    case CKO_CERTIFICATE: return C_CERT;
    case CKO_PUBLIC_KEY: return C_PUB;
    case CKO_PRIVATE_KEY: return C_PRIV;
    case CKO_SECRET_KEY: return C_SEC;
    default: return 0;
    }
}

static unsigned type_bit(CK_KEY_TYPE t)
{
    switch (t) {
    case CKK_RSA: return T_RSA;
    case CKK_EC: return T_EC;
    case CKK_EC_EDWARDS: return T_ED;
    case CKK_AES: return T_AES;
    case CKK_GENERIC_SECRET: return T_GEN;
    default: return 0;
    }
}

static const rule *find_rule(CK_ATTRIBUTE_TYPE type, unsigned cls, unsigned kt)
{
    for (size_t i = 0; i < NRULES; i++)
        if (rules[i].type == type && (rules[i].classes & cls) &&
            (rules[i].keytypes == T_ANY || (rules[i].keytypes & kt)))
            return &rules[i];
    return NULL;
}

bool hsm_attr_known(CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < NRULES; i++)
        if (rules[i].type == type)
            return true;
    return type == CKA_MODULUS_BITS || type == CKA_VALUE_LEN;
}

static bool class_key_type(const hsm_attrs *a, unsigned *cls, unsigned *kt)
{
    CK_ULONG c = 0, k = CK_UNAVAILABLE_INFORMATION;
    if (hsm_attrs_ulong(a, CKA_CLASS, &c) != CF_OK)
        return false;
    (void)hsm_attrs_ulong(a, CKA_KEY_TYPE, &k);
    *cls = class_bit(c);
    *kt = type_bit(k);
    return true;
}

bool hsm_attr_is_secret(CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < NRULES; i++)
        if (rules[i].type == type && (rules[i].classes & class_bit(cls)) && (rules[i].flags & F_SECRET))
            return true;
    return false;
}

bool hsm_attr_is_sensitive(const hsm_object *o, CK_ATTRIBUTE_TYPE type)
{
    unsigned cls, kt;
    if (!class_key_type(&o->attrs, &cls, &kt))
        return false;
    const rule *r = find_rule(type, cls, kt);
    if (!r || !(r->flags & F_SENS))
        return false;
    return hsm_attrs_flag(&o->attrs, CKA_SENSITIVE, true) || !hsm_attrs_flag(&o->attrs, CKA_EXTRACTABLE, false);
}

static cf_err check_value(const rule *r, const cf_attr *a)
{
    switch (r->kind) {
    case K_BOOL:
        return a->len == sizeof(CK_BBOOL) && (a->val[0] == CK_TRUE || a->val[0] == CK_FALSE)
                   ? CF_OK : CF_E_ATTRIBUTE_VALUE_INVALID;
    case K_ULONG:
        return a->len == sizeof(CK_ULONG) ? CF_OK : CF_E_ATTRIBUTE_VALUE_INVALID;
    case K_DATE:
        return a->len == 0 || a->len == sizeof(CK_DATE) ? CF_OK : CF_E_ATTRIBUTE_VALUE_INVALID;
    case K_MECHS:
        return a->len % sizeof(CK_MECHANISM_TYPE) == 0 ? CF_OK : CF_E_ATTRIBUTE_VALUE_INVALID;
    default:
        return CF_OK;
    }
}

static bool is_usage(CK_ATTRIBUTE_TYPE t)
{
    return t == CKA_ENCRYPT || t == CKA_DECRYPT || t == CKA_SIGN || t == CKA_VERIFY || t == CKA_WRAP ||
           t == CKA_UNWRAP;
}

/* Usage a key gets when its template is silent: what its type can do (an EC key cannot encrypt,
 * an AES key here cannot sign), like a user of SoftHSM2 would see for RSA and AES. */
static bool usage_default(CK_ATTRIBUTE_TYPE t, unsigned kt)
{
    bool sig = t == CKA_SIGN || t == CKA_VERIFY;
    switch (kt) {
    case T_RSA: return true;
    case T_EC: case T_ED: case T_GEN: return sig;
    case T_AES: return !sig;
    default: return false;
    }
}

static bool bool_val(const cf_attr *a) { return a->len == 1 && a->val[0] == CK_TRUE; }

cf_err hsm_template_build(hsm_tmpl_op op, hsm_attrs *a, CK_OBJECT_CLASS dcls, CK_KEY_TYPE dkt,
                          CK_MECHANISM_TYPE keygen_mech)
{
    /* class and key type: from the template, else the operation's default; both must agree */
    CK_ULONG c, k;
    cf_err e = hsm_attrs_ulong(a, CKA_CLASS, &c);
    if (e == CF_E_ATTRIBUTE_VALUE_INVALID)
        return e;
    if (e == CF_E_NOT_FOUND) {
        CF_ENSURE(dcls != CK_UNAVAILABLE_INFORMATION, CF_E_TEMPLATE_INCOMPLETE);
        c = dcls;
        CF_TRY(hsm_attrs_set_ulong(a, CKA_CLASS, c));
    } else if (dcls != CK_UNAVAILABLE_INFORMATION && c != dcls) {
        return CF_E_TEMPLATE_INCONSISTENT;
    }
    unsigned cls = class_bit(c);
    CF_ENSURE(cls, CF_E_ATTRIBUTE_VALUE_INVALID);
    unsigned kt = 0;
    if (cls & C_KEYS) {
        e = hsm_attrs_ulong(a, CKA_KEY_TYPE, &k);
        if (e == CF_E_ATTRIBUTE_VALUE_INVALID)
            return e;
        if (e == CF_E_NOT_FOUND) {
            CF_ENSURE(dkt != CK_UNAVAILABLE_INFORMATION, CF_E_TEMPLATE_INCOMPLETE);
            k = dkt;
            CF_TRY(hsm_attrs_set_ulong(a, CKA_KEY_TYPE, k));
        } else if (dkt != CK_UNAVAILABLE_INFORMATION && k != dkt) {
            return op == HSM_T_GENERATE ? CF_E_TEMPLATE_INCONSISTENT : CF_E_TEMPLATE_INCONSISTENT;
        }
        kt = type_bit(k);
        bool ok = (cls & (C_PUB | C_PRIV)) ? (kt & (T_RSA | T_EC | T_ED)) : (kt & (T_AES | T_GEN));
        CF_ENSURE(ok, op == HSM_T_CREATE ? CF_E_ATTRIBUTE_VALUE_INVALID : CF_E_TEMPLATE_INCONSISTENT);
    } else if (cls == C_CERT) {
        CK_ULONG ct;
        e = hsm_attrs_ulong(a, CKA_CERTIFICATE_TYPE, &ct);
        if (e == CF_E_NOT_FOUND)
            return CF_E_TEMPLATE_INCOMPLETE;
        CF_TRY(e);
        CF_ENSURE(ct == CKC_X_509, CF_E_ATTRIBUTE_VALUE_INVALID);
    }

    /* every given attribute: known for this class, well formed, allowed for this operation */
    for (size_t i = 0; i < a->n; i++) {
        const cf_attr *at = &a->a[i];
        const rule *r = find_rule(at->type, cls, kt);
        CF_ENSURE(r, CF_E_ATTRIBUTE_TYPE_INVALID);
        CF_TRY(check_value(r, at));
        /* CLASS/KEY_TYPE were settled above; values the engine itself put in (the key material of
         * an unwrapped or derived key, flagged secret already) are not the caller's to check */
        if (at->type == CKA_CLASS || at->type == CKA_KEY_TYPE || (at->flags & CF_ATTR_SECRET))
            continue;
        CF_ENSURE(!(r->flags & F_RO), CF_E_ATTRIBUTE_READ_ONLY);
        if (op == HSM_T_CREATE)
            CF_ENSURE(!(r->flags & F_NO_CREATE), CF_E_TEMPLATE_INCONSISTENT);
        if (op == HSM_T_GENERATE || op == HSM_T_DERIVE)
            CF_ENSURE(!(r->flags & F_NO_GEN), CF_E_TEMPLATE_INCONSISTENT);
        if (op == HSM_T_UNWRAP)
            CF_ENSURE(!(r->flags & F_NO_UNWRAP), CF_E_TEMPLATE_INCONSISTENT);
    }

    /* required ones */
    for (size_t i = 0; i < NRULES; i++) {
        const rule *r = &rules[i];
        if (!(r->classes & cls) || !(r->keytypes == T_ANY || (r->keytypes & kt)))
            continue;
        if (op == HSM_T_CREATE && (r->flags & F_REQ_CREATE) && !hsm_attrs_find(a, r->type))
            return CF_E_TEMPLATE_INCOMPLETE;
    }
    if (cls == C_SEC && op == HSM_T_GENERATE && !hsm_attrs_find(a, CKA_VALUE_LEN))
        return CF_E_TEMPLATE_INCOMPLETE;

    /* defaults */
    for (size_t i = 0; i < NRULES; i++) {
        const rule *r = &rules[i];
        if (!(r->classes & cls) || !(r->keytypes == T_ANY || (r->keytypes & kt)) || hsm_attrs_find(a, r->type))
            continue;
        if (r->dflt == D_TRUE && (cls & C_KEYS) && is_usage(r->type)) {
            CF_TRY(hsm_attrs_set_bool(a, r->type, usage_default(r->type, kt)));
            continue;
        }
        switch (r->dflt) {
        case D_FALSE: CF_TRY(hsm_attrs_set_bool(a, r->type, false)); break;
        case D_TRUE: CF_TRY(hsm_attrs_set_bool(a, r->type, true)); break;
        case D_EMPTY: CF_TRY(hsm_attrs_set(a, r->type, NULL, 0, 0)); break;
        case D_ZERO: CF_TRY(hsm_attrs_set_ulong(a, r->type, 0)); break;
        default: break;
        }
    }
    if (cls & C_KEYS) {
        bool local = op == HSM_T_GENERATE;
        CF_TRY(hsm_attrs_set_bool(a, CKA_LOCAL, local));
        CF_TRY(hsm_attrs_set_ulong(a, CKA_KEY_GEN_MECHANISM, local ? keygen_mech : CK_UNAVAILABLE_INFORMATION));
    }
    if (cls & (C_PRIV | C_SEC)) {
        bool sens = hsm_attrs_flag(a, CKA_SENSITIVE, true), ext = hsm_attrs_flag(a, CKA_EXTRACTABLE, false);
        bool born_here = op == HSM_T_GENERATE || op == HSM_T_DERIVE || op == HSM_T_UNWRAP;
        CF_TRY(hsm_attrs_set_bool(a, CKA_ALWAYS_SENSITIVE, born_here && sens));
        CF_TRY(hsm_attrs_set_bool(a, CKA_NEVER_EXTRACTABLE, born_here && !ext));
    }
    if (cls == C_SEC) {
        const cf_attr *v = hsm_attrs_find(a, CKA_VALUE);
        if (v)
            CF_TRY(hsm_attrs_set_ulong(a, CKA_VALUE_LEN, v->len));
        CK_ULONG len = 0;
        CF_TRY(hsm_attrs_ulong(a, CKA_VALUE_LEN, &len));
        if (kt == T_AES)
            CF_ENSURE(len == 16 || len == 24 || len == 32,
                      op == HSM_T_GENERATE ? CF_E_KEY_SIZE_RANGE : CF_E_ATTRIBUTE_VALUE_INVALID);
        else
            CF_ENSURE(len >= 1 && len <= 512,
                      op == HSM_T_GENERATE ? CF_E_KEY_SIZE_RANGE : CF_E_ATTRIBUTE_VALUE_INVALID);
    }
    /* key material and private data values are stored encrypted */
    bool priv = hsm_attrs_flag(a, CKA_PRIVATE, false);
    for (size_t i = 0; i < a->n; i++) {
        const rule *r = find_rule(a->a[i].type, cls, kt);
        if ((r && (r->flags & F_SECRET)) || (cls == C_DATA && priv && a->a[i].type == CKA_VALUE))
            a->a[i].flags |= CF_ATTR_SECRET;
    }
    return CF_OK;
}

cf_err hsm_template_check_change(hsm_tmpl_op op, const hsm_object *o, const hsm_attrs *ch)
{
    unsigned cls, kt;
    CF_ENSURE(class_key_type(&o->attrs, &cls, &kt), CF_E_INTERNAL);
    for (size_t i = 0; i < ch->n; i++) {
        const cf_attr *at = &ch->a[i];
        const rule *r = find_rule(at->type, cls, kt);
        CF_ENSURE(r, CF_E_ATTRIBUTE_TYPE_INVALID);
        CF_TRY(check_value(r, at));
        const cf_attr *cur = hsm_attrs_find(&o->attrs, at->type);
        bool same = cur && cur->len == at->len && (at->len == 0 || memcmp(cur->val, at->val, at->len) == 0);
        /* C_CopyObject may choose the copy's storage attributes (2.40 5.7, C_CopyObject) */
        bool copy_storage = op == HSM_T_COPY && (at->type == CKA_TOKEN || at->type == CKA_PRIVATE ||
                                                 at->type == CKA_MODIFIABLE || at->type == CKA_DESTROYABLE);
        if (same || copy_storage) {
            if (at->type == CKA_MODIFIABLE && op == HSM_T_COPY && cur && !bool_val(cur) && bool_val(at))
                return CF_E_ATTRIBUTE_READ_ONLY;
            continue;
        }
        CF_ENSURE(r->flags & F_MOD, CF_E_ATTRIBUTE_READ_ONLY);
        if (r->flags & F_ONLY_TRUE)
            CF_ENSURE(bool_val(at), CF_E_ATTRIBUTE_READ_ONLY);
        if (r->flags & F_ONLY_FALSE)
            CF_ENSURE(!bool_val(at), CF_E_ATTRIBUTE_READ_ONLY);
    }
    return CF_OK;
}

/* Whether setting attribute `type` TRUE needs the SO (footnote 10). */
bool hsm_attr_so_only_true(CK_ATTRIBUTE_TYPE type)
{
    return type == CKA_TRUSTED;
}
