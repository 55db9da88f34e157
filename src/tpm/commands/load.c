/* load.c: Part 3 sections 12.2 (Load), 12.3 (LoadExternal), 12.4 (ObjectChangeAuth) and 12.7
 * (Unseal), and the step all ways of loading an object share: tpm_object_build, which checks that
 * a public and a sensitive area belong together and makes the OpenSSL key (Part 1 section 27.5:
 * the TPM must not use a sensitive area with a public area it was not made for).
 *
 *   ECC: the point computed from the private scalar must be the public point.
 *   RSA: the sensitive area holds one prime p (Part 2 section 12.2.3.2); p must divide n, and the
 *        key is rebuilt from p and n / p.
 *   keyedhash, symcipher: unique must be H_nameAlg(seedValue || key) (Part 1 section 27.7.3). */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define MAX_SYM_DATA 128   /* sealed data and HMAC keys (TPM_PT_... MAX_SYM_DATA of the reference) */

tpm_rc tpm_get_public(cf_reader *in, TPMT_PUBLIC *pub, unsigned n)
{
    cf_reader area;
    size_t start = in->off;
    TPM_ENSURE(cf_get_sized16(in, &area) == CF_OK, tpm_rc_p(TPM2_RC_INSUFFICIENT, n));
    tpm_rc rc = area.len == 0 ? TPM2_RC_SIZE : tpm_get(&area, TPM_UNMARSHAL(TPMT_PUBLIC), pub);
    if (rc == TPM2_RC_SUCCESS && !cf_reader_done(&area))
        rc = TPM2_RC_SIZE;
    if (rc != TPM2_RC_SUCCESS) {
        in->off = start;
        return tpm_rc_p(rc, n);
    }
    return TPM2_RC_SUCCESS;
}

void tpm_handle_name(TPM2_HANDLE h, TPM2B_NAME *name)
{
    name->size = 4;
    name->name[0] = (uint8_t)(h >> 24), name->name[1] = (uint8_t)(h >> 16);
    name->name[2] = (uint8_t)(h >> 8), name->name[3] = (uint8_t)h;
}

tpm_rc tpm_qualified_name(TPMI_ALG_HASH alg, const TPM2B_NAME *parent_qn, const TPM2B_NAME *name, TPM2B_NAME *qn)
{
    size_t hl = tpm_hash_size(alg);
    TPM_ENSURE(hl > 0, TPM2_RC_HASH);
    qn->name[0] = (uint8_t)(alg >> 8);
    qn->name[1] = (uint8_t)alg;
    TPM_TRY(tpm_hash_v(alg, qn->name + 2, parent_qn->name, (size_t)parent_qn->size, name->name, (size_t)name->size,
                       NULL));
    qn->size = (uint16_t)(2 + hl);
    return TPM2_RC_SUCCESS;
}

/* ---- building a loaded object ----------------------------------------------------------------- */
static cf_curve ecc_curve(TPM2_ECC_CURVE c)
{
    return c == TPM2_ECC_NIST_P256 ? CF_CURVE_P256 : c == TPM2_ECC_NIST_P384 ? CF_CURVE_P384 : CF_CURVE_NONE;
}

/* a big-endian integer of at most len bytes, left-padded to len */
static bool pad_into(uint8_t *out, size_t len, const uint8_t *p, size_t n)
{
    if (n > len)
        return false;
    memset(out, 0, len - n);
    memcpy(out + len - n, p, n);
    return true;
}

static tpm_rc build_ecc(tpm_object *o)
{
    cf_curve curve = ecc_curve(o->pub.parameters.eccDetail.curveID);
    TPM_ENSURE(curve != CF_CURVE_NONE, TPM2_RC_CURVE);
    size_t fl = cf_curve_field_len(curve);
    const TPMS_ECC_POINT *u = &o->pub.unique.ecc;
    uint8_t point[1 + 2 * 66];
    point[0] = 0x04;
    TPM_ENSURE(pad_into(point + 1, fl, u->x.buffer, u->x.size) && pad_into(point + 1 + fl, fl, u->y.buffer, u->y.size),
               TPM2_RC_ECC_POINT);
    cf_pkey *k = NULL;
    if (o->public_only) {
        TPM_ENSURE(cf_pkey_ec_import(curve, point, 1 + 2 * fl, NULL, 0, &k) == CF_OK, TPM2_RC_ECC_POINT);
        o->key = k;
        return TPM2_RC_SUCCESS;
    }
    const TPM2B_ECC_PARAMETER *d = &o->sens.sensitive.ecc;
    uint8_t priv[66];
    TPM_ENSURE(d->size > 0 && pad_into(priv, fl, d->buffer, d->size), TPM2_RC_KEY_SIZE);
    cf_err e = cf_pkey_ec_import(curve, NULL, 0, priv, fl, &k);
    cf_wipe(priv, sizeof priv);
    TPM_ENSURE(e == CF_OK, TPM2_RC_KEY);
    cf_buf pt = { 0 }, unused = { 0 };
    cf_curve got;
    e = cf_pkey_ec_export(k, false, &got, &pt, &unused);
    bool same = e == CF_OK && pt.len == 1 + 2 * fl && memcmp(pt.p, point, pt.len) == 0;
    cf_buf_free(&pt);
    cf_buf_free(&unused);
    if (!same) {
        cf_pkey_free(k);
        return e == CF_OK ? TPM2_RC_BINDING : tpm_rc_from_cf(e);
    }
    o->key = k;
    return TPM2_RC_SUCCESS;
}

static tpm_rc build_rsa(tpm_object *o)
{
    const TPMS_RSA_PARMS *p = &o->pub.parameters.rsaDetail;
    uint32_t e = p->exponent ? p->exponent : 65537;
    const TPM2B_PUBLIC_KEY_RSA *n = &o->pub.unique.rsa;
    TPM_ENSURE((p->keyBits == 2048 || p->keyBits == 3072) && n->size == p->keyBits / 8 && (n->buffer[0] & 0x80),
               TPM2_RC_KEY);
    cf_pkey *k = NULL;
    if (o->public_only) {
        uint8_t eb[4] = { (uint8_t)(e >> 24), (uint8_t)(e >> 16), (uint8_t)(e >> 8), (uint8_t)e };
        size_t skip = 0;
        while (skip < 3 && eb[skip] == 0)
            skip++;
        cf_rsa_parts parts;
        memset(&parts, 0, sizeof parts);
        parts.n.p = (uint8_t *)n->buffer;
        parts.n.len = n->size;
        parts.e.p = eb + skip;
        parts.e.len = 4 - skip;
        TPM_ENSURE(cf_pkey_rsa_import(&parts, &k) == CF_OK, TPM2_RC_KEY);
        o->key = k;
        return TPM2_RC_SUCCESS;
    }
    const TPM2B_PRIVATE_KEY_RSA *pr = &o->sens.sensitive.rsa;
    TPM_ENSURE(pr->size > 0 && pr->size <= p->keyBits / 16u, TPM2_RC_KEY_SIZE);
    uint8_t q[256];
    size_t qlen = sizeof q;
    cf_err ce = cf_rsa_cofactor(n->buffer, n->size, pr->buffer, pr->size, q, &qlen);
    if (ce == CF_OK)
        ce = cf_pkey_rsa_from_primes(pr->buffer, pr->size, q, qlen, e, p->keyBits, &k);
    cf_wipe(q, sizeof q);
    TPM_ENSURE(ce == CF_OK, TPM2_RC_BINDING);
    o->key = k;
    return TPM2_RC_SUCCESS;
}

static tpm_rc check_symmetric(const tpm_object *o)
{
    const TPMT_PUBLIC *pub = &o->pub;
    const TPMT_SENSITIVE *s = &o->sens;
    size_t hl = tpm_hash_size(pub->nameAlg);
    const TPM2B_DIGEST *u = pub->type == TPM2_ALG_SYMCIPHER ? &pub->unique.sym : &pub->unique.keyedHash;
    TPM_ENSURE(u->size == hl, TPM2_RC_KEY);
    if (o->public_only)
        return TPM2_RC_SUCCESS;
    const uint8_t *key;
    size_t keylen;
    if (pub->type == TPM2_ALG_SYMCIPHER) {
        key = s->sensitive.sym.buffer;
        keylen = s->sensitive.sym.size;
        TPM_ENSURE(keylen == pub->parameters.symDetail.sym.keyBits.aes / 8u, TPM2_RC_KEY_SIZE);
    } else {
        key = s->sensitive.bits.buffer;
        keylen = s->sensitive.bits.size;
        TPM_ENSURE(keylen <= MAX_SYM_DATA, TPM2_RC_KEY_SIZE);
    }
    uint8_t d[CF_HASH_MAX];
    static const uint8_t none[1];
    TPM_TRY(tpm_hash_v(pub->nameAlg, d, s->seedValue.size ? s->seedValue.buffer : none, (size_t)s->seedValue.size,
                       keylen ? key : none, keylen, NULL));
    TPM_ENSURE(cf_ct_equal(d, u->buffer, hl), TPM2_RC_BINDING);
    return TPM2_RC_SUCCESS;
}

tpm_rc tpm_object_build(tpm_object *o)
{
    o->key = NULL;
    o->signer = NULL;
    TPM_TRY(tpm_object_name(&o->pub, &o->name));
    if (!o->public_only) {
        size_t hl = tpm_hash_size(o->pub.nameAlg);
        TPM_ENSURE(o->sens.sensitiveType == o->pub.type, TPM2_RC_TYPE);
        TPM_ENSURE(o->sens.authValue.size <= hl && o->sens.seedValue.size <= hl, TPM2_RC_SIZE);
        bool storage = (o->pub.objectAttributes & TPMA_OBJECT_RESTRICTED) && (o->pub.objectAttributes & TPMA_OBJECT_DECRYPT);
        TPM_ENSURE(!storage || o->sens.seedValue.size == hl, TPM2_RC_SIZE);
    }
    switch (o->pub.type) {
    case TPM2_ALG_ECC: return build_ecc(o);
    case TPM2_ALG_RSA: return build_rsa(o);
    case TPM2_ALG_KEYEDHASH:
    case TPM2_ALG_SYMCIPHER: return check_symmetric(o);
    default: return TPM2_RC_TYPE;
    }
}

/* ---- Load ------------------------------------------------------------------------------------------ */
TPM_HANDLER(tpm_cc_load)
{
    TPM2B_PRIVATE priv;
    tpm_object o;
    tpm_rc rc = TPM2_RC_SUCCESS;
    memset(&o, 0, sizeof o);
    TPM_GET(in, TPM2B_PRIVATE, &priv, 1);
    TPM_TRY(tpm_get_public(in, &o.pub, 2));
    TPM_TRY(tpm_params_done(in));
    const tpm_object *parent = c->objects[0];
    TPM_ENSURE(tpm_object_is_storage(parent), tpm_rc_h(TPM2_RC_TYPE, 1));
    TPM_TRY(tpm_template_check(&o.pub, 2));
    /* a fixedTPM object can only live under a fixedTPM parent (Part 1 section 27.2) */
    TPM_ENSURE(!(o.pub.objectAttributes & TPMA_OBJECT_FIXEDTPM) || (parent->pub.objectAttributes & TPMA_OBJECT_FIXEDTPM),
               tpm_rc_p(TPM2_RC_ATTRIBUTES, 2));
    TPM2_HANDLE handle;
    tpm_object *slot = tpm_object_free_slot(t, &handle);
    TPM_ENSURE(slot, TPM2_RC_OBJECT_MEMORY);

    TPM_GUARD(tpm_object_name(&o.pub, &o.name));
    rc = tpm_private_unprotect(parent, &o.name, &priv, &o.sens);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 1));
    rc = tpm_object_build(&o);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 2));
    TPM_GUARD(tpm_qualified_name(o.pub.nameAlg, &parent->qname, &o.name, &o.qname));
    TPM_PUT(out, TPM2B_NAME, &o.name);
    o.used = true;
    o.handle = handle;
    o.hierarchy = parent->hierarchy;
    *slot = o;
    memset(&o, 0, sizeof o);   /* the slot owns the key now */
    c->r_handle = handle;
out:
    if (o.key)
        tpm_object_clear(&o);
    cf_wipe(&o, sizeof o);
    cf_wipe(&priv, sizeof priv);
    return rc;
}

/* ---- LoadExternal --------------------------------------------------------------------------------- */
TPM_HANDLER(tpm_cc_load_external)
{
    TPM2B_SENSITIVE sens;
    TPMI_RH_HIERARCHY hier;
    tpm_object o;
    tpm_rc rc = TPM2_RC_SUCCESS;
    memset(&o, 0, sizeof o);
    memset(&sens, 0, sizeof sens);
    /* inPrivate may be an empty TPM2B (public area only) */
    uint16_t psize;
    size_t start = in->off;
    TPM_ENSURE(cf_get_u16(in, &psize) == CF_OK, tpm_rc_p(TPM2_RC_INSUFFICIENT, 1));
    if (psize > 0) {
        in->off = start;
        rc = tpm_get(in, TPM_UNMARSHAL(TPM2B_SENSITIVE), &sens);
        if (rc != TPM2_RC_SUCCESS) {
            in->off = start;
            return tpm_rc_p(rc, 1);
        }
    }
    TPM_GUARD(tpm_get_public(in, &o.pub, 2));
    rc = tpm_get(in, TPM_UNMARSHAL(UINT32), &hier);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 3));
    TPM_GUARD(tpm_params_done(in));
    TPM_CHECK(tpm_hierarchy_index(hier) >= 0, tpm_rc_p(TPM2_RC_VALUE, 3));
    TPM_CHECK(tpm_hierarchy_enabled(t, hier), tpm_rc_p(TPM2_RC_HIERARCHY, 3));
    o.public_only = psize == 0;
    if (!o.public_only) {
        /* a key from outside: only in the null hierarchy, and never fixed to this TPM */
        TPM_CHECK(hier == TPM2_RH_NULL, tpm_rc_p(TPM2_RC_HIERARCHY, 3));
        TPM_CHECK(!(o.pub.objectAttributes & (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT)),
                  tpm_rc_p(TPM2_RC_ATTRIBUTES, 2));
        o.sens = sens.sensitiveArea;
    }
    /* the template rules, except that an outside key was not made by this TPM */
    TPMT_PUBLIC check = o.pub;
    check.objectAttributes |= TPMA_OBJECT_SENSITIVEDATAORIGIN;
    TPM_GUARD(tpm_template_check(&check, 2));
    TPM2_HANDLE handle;
    tpm_object *slot = tpm_object_free_slot(t, &handle);
    TPM_CHECK(slot, TPM2_RC_OBJECT_MEMORY);
    rc = tpm_object_build(&o);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, o.public_only ? 2 : 1));
    TPM2B_NAME hname;
    tpm_handle_name(hier, &hname);
    TPM_GUARD(tpm_qualified_name(o.pub.nameAlg, &hname, &o.name, &o.qname));
    TPM_PUT(out, TPM2B_NAME, &o.name);
    o.used = true;
    o.handle = handle;
    o.hierarchy = hier;
    *slot = o;
    memset(&o, 0, sizeof o);
    c->r_handle = handle;
out:
    if (o.key)
        tpm_object_clear(&o);
    cf_wipe(&o, sizeof o);
    cf_wipe(&sens, sizeof sens);
    return rc;
}

/* ---- ObjectChangeAuth ------------------------------------------------------------------------------ */
TPM_HANDLER(tpm_cc_object_change_auth)
{
    TPM2B_AUTH auth;
    TPM_GET(in, TPM2B_AUTH, &auth, 1);
    TPM_TRY(tpm_params_done(in));
    const tpm_object *o = c->objects[0], *parent = c->objects[1];
    TPM_ENSURE(!o->public_only && !tpm_object_is_sequence(o), tpm_rc_h(TPM2_RC_TYPE, 1));
    /* Part 3 section 12.4: trailing zeros beyond the digest size do not count */
    size_t hl = tpm_hash_size(o->pub.nameAlg);
    while (auth.size > hl && auth.buffer[auth.size - 1] == 0)
        auth.size--;
    TPM_ENSURE(auth.size <= hl, tpm_rc_p(TPM2_RC_SIZE, 1));
    /* parentHandle must be the object's parent: its QN and the object's name give the object's QN */
    TPM2B_NAME qn;
    TPM_TRY(tpm_qualified_name(o->pub.nameAlg, &parent->qname, &o->name, &qn));
    TPM_ENSURE(qn.size == o->qname.size && memcmp(qn.name, o->qname.name, qn.size) == 0, tpm_rc_h(TPM2_RC_TYPE, 2));
    TPMT_SENSITIVE s = o->sens;
    s.authValue = auth;
    TPM2B_PRIVATE priv;
    tpm_rc rc = tpm_private_protect(parent, &o->name, &s, &priv);
    if (rc == TPM2_RC_SUCCESS)
        TPM_PUT(out, TPM2B_PRIVATE, &priv);
    cf_wipe(&s, sizeof s);
    cf_wipe(&priv, sizeof priv);
    cf_wipe(&auth, sizeof auth);
    return rc;
}

/* ---- Unseal ---------------------------------------------------------------------------------------- */
TPM_HANDLER(tpm_cc_unseal)
{
    TPM_TRY(tpm_params_done(in));
    const tpm_object *o = c->objects[0];
    TPM_ENSURE(o->pub.type == TPM2_ALG_KEYEDHASH && !o->public_only && !tpm_object_is_sequence(o),
               tpm_rc_h(TPM2_RC_TYPE, 1));
    /* a sealed data object: neither a key (sign / decrypt) nor restricted */
    TPM_ENSURE(!(o->pub.objectAttributes & (TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_RESTRICTED)),
               tpm_rc_h(TPM2_RC_ATTRIBUTES, 1));
    tpm_put_2b(out, o->sens.sensitive.bits.buffer, o->sens.sensitive.bits.size);
    return TPM2_RC_SUCCESS;
}
