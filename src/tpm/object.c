/* object.c: objects: names, template checks, derivation of primary objects from a hierarchy seed,
 * the transient slots, and tickets.
 *
 * Primary objects (Part 1 section 26.3 / Part 3 section 24.1): everything random in the object is
 * drawn from one KDFa stream keyed by the hierarchy's primary seed, with label
 * "Primary Object Creation", contextU = the name of the template (so the unique field the caller
 * puts in the template selects a different key) and contextV = inSensitive.data. The same template
 * under the same seed therefore gives the same key across restarts; a new seed, a new key.
 *   ECC: the private scalar is drawn as field-length candidates until one lies in [1, n-1].
 *   RSA: each prime is drawn as half-length candidates with the top two bits and the low bit set,
 *        until one is a probable prime with gcd(p-1, e) = 1 (OpenSSL decides, through crypto.h).
 *   keyedhash / symcipher: the key (or, with sensitiveDataOrigin clear, the caller's data) and a
 *        seedValue; unique = H_nameAlg(seedValue || key) (Part 1 section 27.7.3).
 * The bytes drawn are this implementation's own (the reference TPM's DRBG is not reproduced), so a
 * primary key of coffer differs from the reference simulator's for the same seed. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define LABEL_PRIMARY "Primary Object Creation"
#define MAX_DRAWS 10000   /* RSA-3072 needs ~600 candidates a prime on average */

tpm_object *tpm_object_find(tpm_instance *t, TPM2_HANDLE h)
{
    for (size_t i = 0; i < TPM_OBJECT_SLOTS; i++)
        if (t->objects[i].used && t->objects[i].handle == h)
            return &t->objects[i];
    /* persistent objects (EvictControl, commands/persist.c) */
    for (size_t i = 0; i < TPM_PERSISTENT_SLOTS; i++)
        if (t->nv.persistent[i].used && t->nv.persistent[i].handle == h)
            return &t->nv.persistent[i];
    return NULL;
}

tpm_object *tpm_object_free_slot(tpm_instance *t, TPM2_HANDLE *handle)
{
    for (size_t i = 0; i < TPM_OBJECT_SLOTS; i++)
        if (!t->objects[i].used) {
            *handle = TPM_TRANSIENT_FIRST + (TPM2_HANDLE)i;
            return &t->objects[i];
        }
    return NULL;
}

void tpm_object_clear(tpm_object *o)
{
    cf_signer_free(o->signer);
    cf_pkey_free(o->key);
    tpm_seq_free(o->seq);
    cf_wipe(o, sizeof *o);
}

void tpm_objects_flush_all(tpm_instance *t)
{
    tpm_sessions_flush_all(t);   /* loaded sessions go wherever transient objects go (Startup, _TPM_Init, power) */
    for (size_t i = 0; i < TPM_OBJECT_SLOTS; i++)
        if (t->objects[i].used)
            tpm_object_clear(&t->objects[i]);
}

tpm_rc tpm_object_name(const TPMT_PUBLIC *pub, TPM2B_NAME *name)
{
    uint8_t buf[sizeof(TPMT_PUBLIC) + 16];
    size_t n = tpm_marshal_to(TPM_MARSHAL(TPMT_PUBLIC), pub, buf, sizeof buf);
    TPM_ENSURE(n > 0, TPM2_RC_FAILURE);
    size_t hl = tpm_hash_size(pub->nameAlg);
    TPM_ENSURE(hl > 0, TPM2_RC_HASH);
    name->name[0] = (uint8_t)(pub->nameAlg >> 8);
    name->name[1] = (uint8_t)pub->nameAlg;
    TPM_TRY(tpm_hash(pub->nameAlg, buf, n, name->name + 2));
    name->size = (uint16_t)(2 + hl);
    return TPM2_RC_SUCCESS;
}

tpm_rc tpm_ticket(const tpm_instance *t, TPM2_ST tag, TPMI_RH_HIERARCHY hier, const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen, TPM2B_DIGEST *out)
{
    const tpm_hierarchy *h = tpm_hierarchy_get(t, hier);
    TPM_ENSURE(h, TPM2_RC_HIERARCHY);
    uint8_t tg[2] = { (uint8_t)(tag >> 8), (uint8_t)tag };
    static const uint8_t none[1];
    TPM_TRY(tpm_hmac_v(TPM_CONTEXT_HASH, h->proof, sizeof h->proof, out->buffer, tg, (size_t)2,
                       a ? a : none, a ? alen : (size_t)0, b ? b : none, b ? blen : (size_t)0, NULL));
    out->size = (uint16_t)tpm_hash_size(TPM_CONTEXT_HASH);
    return TPM2_RC_SUCCESS;
}

/* ---- templates --------------------------------------------------------------------------- */
static bool sym_ok(const TPMT_SYM_DEF_OBJECT *s, bool allow_null)
{
    if (s->algorithm == TPM2_ALG_NULL)
        return allow_null;
    if (s->algorithm != TPM2_ALG_AES)
        return false;
    if (s->keyBits.aes != 128 && s->keyBits.aes != 192 && s->keyBits.aes != 256)
        return false;
    switch (s->mode.aes) {
    case TPM2_ALG_CFB: case TPM2_ALG_CBC: case TPM2_ALG_CTR: case TPM2_ALG_OFB: case TPM2_ALG_ECB:
    case TPM2_ALG_NULL:
        return true;
    default:
        return false;
    }
}

static bool hash_ok(TPM2_ALG_ID h)
{
    return h == TPM2_ALG_SHA1 || h == TPM2_ALG_SHA256 || h == TPM2_ALG_SHA384;
}

tpm_rc tpm_template_check(const TPMT_PUBLIC *pub, unsigned n)
{
    TPMA_OBJECT a = pub->objectAttributes;
    bool sign = a & TPMA_OBJECT_SIGN_ENCRYPT, dec = a & TPMA_OBJECT_DECRYPT, restricted = a & TPMA_OBJECT_RESTRICTED;
    TPM_ENSURE(hash_ok(pub->nameAlg), tpm_rc_p(TPM2_RC_HASH, n));
    TPM_ENSURE(!(a & (TPMA_OBJECT_RESERVED1_MASK | TPMA_OBJECT_RESERVED2_MASK | TPMA_OBJECT_RESERVED3_MASK
                      | TPMA_OBJECT_RESERVED4_MASK | TPMA_OBJECT_RESERVED5_MASK)), tpm_rc_p(TPM2_RC_RESERVED_BITS, n));
    /* Part 1 section 27.2: fixedTPM needs fixedParent; restricted needs exactly one of sign/decrypt */
    TPM_ENSURE(!(a & TPMA_OBJECT_FIXEDTPM) || (a & TPMA_OBJECT_FIXEDPARENT), tpm_rc_p(TPM2_RC_ATTRIBUTES, n));
    TPM_ENSURE(!restricted || sign != dec, tpm_rc_p(TPM2_RC_ATTRIBUTES, n));
    TPM_ENSURE(pub->authPolicy.size == 0 || pub->authPolicy.size == tpm_hash_size(pub->nameAlg),
               tpm_rc_p(TPM2_RC_SIZE, n));
    switch (pub->type) {
    case TPM2_ALG_RSA: {
        const TPMS_RSA_PARMS *p = &pub->parameters.rsaDetail;
        TPM_ENSURE(sign || dec, tpm_rc_p(TPM2_RC_ATTRIBUTES, n));
        TPM_ENSURE(a & TPMA_OBJECT_SENSITIVEDATAORIGIN, tpm_rc_p(TPM2_RC_ATTRIBUTES, n));
        TPM_ENSURE(p->keyBits == 2048 || p->keyBits == 3072, tpm_rc_p(TPM2_RC_KEY_SIZE, n));
        TPM_ENSURE(p->exponent == 0 || p->exponent == 65537 || (p->exponent >= 3 && (p->exponent & 1)),
                   tpm_rc_p(TPM2_RC_VALUE, n));
        /* a storage key (restricted decrypt) names the symmetric algorithm of its children */
        TPM_ENSURE(sym_ok(&p->symmetric, !(restricted && dec)) && (restricted && dec ? true : p->symmetric.algorithm == TPM2_ALG_NULL),
                   tpm_rc_p(TPM2_RC_SYMMETRIC, n));
        switch (p->scheme.scheme) {
        case TPM2_ALG_NULL: break;
        case TPM2_ALG_RSASSA: case TPM2_ALG_RSAPSS:
            TPM_ENSURE(sign && !dec, tpm_rc_p(TPM2_RC_SCHEME, n));
            TPM_ENSURE(hash_ok(p->scheme.details.anySig.hashAlg), tpm_rc_p(TPM2_RC_HASH, n));
            break;
        case TPM2_ALG_RSAES: case TPM2_ALG_OAEP:
            TPM_ENSURE(dec && !sign, tpm_rc_p(TPM2_RC_SCHEME, n));
            break;
        default: return tpm_rc_p(TPM2_RC_SCHEME, n);
        }
        TPM_ENSURE(!restricted || !sign || p->scheme.scheme != TPM2_ALG_NULL, tpm_rc_p(TPM2_RC_SCHEME, n));
        return TPM2_RC_SUCCESS;
    }
    case TPM2_ALG_ECC: {
        const TPMS_ECC_PARMS *p = &pub->parameters.eccDetail;
        TPM_ENSURE(sign || dec, tpm_rc_p(TPM2_RC_ATTRIBUTES, n));
        TPM_ENSURE(a & TPMA_OBJECT_SENSITIVEDATAORIGIN, tpm_rc_p(TPM2_RC_ATTRIBUTES, n));
        TPM_ENSURE(p->curveID == TPM2_ECC_NIST_P256 || p->curveID == TPM2_ECC_NIST_P384, tpm_rc_p(TPM2_RC_CURVE, n));
        TPM_ENSURE(sym_ok(&p->symmetric, !(restricted && dec)) && (restricted && dec ? true : p->symmetric.algorithm == TPM2_ALG_NULL),
                   tpm_rc_p(TPM2_RC_SYMMETRIC, n));
        TPM_ENSURE(p->kdf.scheme == TPM2_ALG_NULL, tpm_rc_p(TPM2_RC_KDF, n));
        switch (p->scheme.scheme) {
        case TPM2_ALG_NULL: break;
        case TPM2_ALG_ECDSA:
            TPM_ENSURE(sign && !dec, tpm_rc_p(TPM2_RC_SCHEME, n));
            TPM_ENSURE(hash_ok(p->scheme.details.ecdsa.hashAlg), tpm_rc_p(TPM2_RC_HASH, n));
            break;
        case TPM2_ALG_ECDH:
            TPM_ENSURE(dec && !sign, tpm_rc_p(TPM2_RC_SCHEME, n));
            break;
        default: return tpm_rc_p(TPM2_RC_SCHEME, n);
        }
        TPM_ENSURE(!restricted || !sign || p->scheme.scheme != TPM2_ALG_NULL, tpm_rc_p(TPM2_RC_SCHEME, n));
        return TPM2_RC_SUCCESS;
    }
    case TPM2_ALG_KEYEDHASH: {
        const TPMT_KEYEDHASH_SCHEME *s = &pub->parameters.keyedHashDetail.scheme;
        if (s->scheme == TPM2_ALG_HMAC) {
            TPM_ENSURE(sign && !dec, tpm_rc_p(TPM2_RC_SCHEME, n));
            TPM_ENSURE(hash_ok(s->details.hmac.hashAlg), tpm_rc_p(TPM2_RC_HASH, n));
        } else if (s->scheme == TPM2_ALG_NULL) {
            TPM_ENSURE(!(sign && dec), tpm_rc_p(TPM2_RC_ATTRIBUTES, n));
        } else {
            return tpm_rc_p(TPM2_RC_SCHEME, n);   /* XOR (derivation parents): later */
        }
        return TPM2_RC_SUCCESS;
    }
    case TPM2_ALG_SYMCIPHER:
        TPM_ENSURE(pub->parameters.symDetail.sym.algorithm != TPM2_ALG_NULL
                   && sym_ok(&pub->parameters.symDetail.sym, false), tpm_rc_p(TPM2_RC_SYMMETRIC, n));
        TPM_ENSURE(!(restricted && sign), tpm_rc_p(TPM2_RC_ATTRIBUTES, n));
        return TPM2_RC_SUCCESS;
    default:
        return tpm_rc_p(TPM2_RC_TYPE, n);
    }
}

/* ---- derivation ---------------------------------------------------------------------------- */
static cf_curve tpm_curve(TPM2_ECC_CURVE c)
{
    return c == TPM2_ECC_NIST_P256 ? CF_CURVE_P256 : c == TPM2_ECC_NIST_P384 ? CF_CURVE_P384 : CF_CURVE_NONE;
}

static tpm_rc derive_ecc(tpm_kdf_stream *ks, tpm_object *o)
{
    TPMS_ECC_PARMS *p = &o->pub.parameters.eccDetail;
    cf_curve curve = tpm_curve(p->curveID);
    size_t fl = cf_curve_field_len(curve);
    uint8_t d[66];
    tpm_rc rc = TPM2_RC_NO_RESULT;
    for (int i = 0; i < 100 && !o->key; i++) {
        TPM_GUARD(tpm_kdf_draw(ks, d, fl));
        cf_err e = cf_pkey_ec_import(curve, NULL, 0, d, fl, &o->key);
        if (e != CF_OK && e != CF_E_ATTRIBUTE_VALUE_INVALID) {
            rc = tpm_rc_from_cf(e);
            goto out;
        }
    }
    TPM_CHECK(o->key, TPM2_RC_NO_RESULT);
    cf_buf point = { 0 }, priv = { 0 };
    cf_curve got;
    cf_err e = cf_pkey_ec_export(o->key, true, &got, &point, &priv);
    if (e == CF_OK && (point.len != 1 + 2 * fl || priv.len > fl))
        e = CF_E_INTERNAL;
    if (e == CF_OK) {
        o->pub.unique.ecc.x.size = o->pub.unique.ecc.y.size = (uint16_t)fl;
        memcpy(o->pub.unique.ecc.x.buffer, point.p + 1, fl);
        memcpy(o->pub.unique.ecc.y.buffer, point.p + 1 + fl, fl);
        o->sens.sensitive.ecc.size = (uint16_t)fl;
        memset(o->sens.sensitive.ecc.buffer, 0, fl);
        memcpy(o->sens.sensitive.ecc.buffer + fl - priv.len, priv.p, priv.len);
    }
    cf_buf_free(&point);
    cf_buf_free(&priv);
    rc = tpm_rc_from_cf(e);
out:
    cf_wipe(d, sizeof d);
    return rc;
}

static bool same_params(const cf_sig_params *a, const cf_sig_params *b)
{
    return a->scheme == b->scheme && a->hash == b->hash && a->mgf_hash == b->mgf_hash && a->salt_len == b->salt_len;
}

static tpm_rc draw_prime(tpm_kdf_stream *ks, size_t len, uint32_t e, uint8_t *out)
{
    for (int i = 0; i < MAX_DRAWS; i++) {
        TPM_TRY(tpm_kdf_draw(ks, out, len));
        out[0] |= 0xC0;
        out[len - 1] |= 1;
        if (cf_rsa_prime_ok(out, len, e))
            return TPM2_RC_SUCCESS;
    }
    return TPM2_RC_NO_RESULT;
}

static tpm_rc derive_rsa(tpm_kdf_stream *ks, tpm_object *o)
{
    TPMS_RSA_PARMS *p = &o->pub.parameters.rsaDetail;
    uint32_t e = p->exponent ? p->exponent : 65537;
    size_t half = p->keyBits / 16;
    uint8_t pb[256], qb[256];
    tpm_rc rc;
    TPM_GUARD(draw_prime(ks, half, e, pb));
    for (int tries = 0;; tries++) {
        TPM_CHECK(tries < 64, TPM2_RC_NO_RESULT);
        TPM_GUARD(draw_prime(ks, half, e, qb));
        cf_err ce = cf_pkey_rsa_from_primes(pb, half, qb, half, e, p->keyBits, &o->key);
        if (ce == CF_OK)
            break;
        TPM_CHECK(ce == CF_E_KEY_SIZE_RANGE, tpm_rc_from_cf(ce));   /* too close: draw q again */
    }
    cf_rsa_parts parts = { 0 };
    cf_err ce = cf_pkey_rsa_export(o->key, false, &parts);
    if (ce == CF_OK && (parts.n.len != (size_t)p->keyBits / 8))
        ce = CF_E_INTERNAL;
    if (ce == CF_OK) {
        o->pub.unique.rsa.size = (uint16_t)parts.n.len;
        memcpy(o->pub.unique.rsa.buffer, parts.n.p, parts.n.len);
        o->sens.sensitive.rsa.size = (uint16_t)half;
        memcpy(o->sens.sensitive.rsa.buffer, pb, half);
    }
    cf_rsa_parts_free(&parts);
    rc = tpm_rc_from_cf(ce);
out:
    cf_wipe(pb, sizeof pb);
    cf_wipe(qb, sizeof qb);
    return rc;
}

/* keyedhash and symcipher: key bytes (drawn, or the caller's data) and unique = H(seedValue || key) */
static tpm_rc derive_symmetric(tpm_kdf_stream *ks, const TPMS_SENSITIVE_CREATE *in, tpm_object *o)
{
    TPMT_PUBLIC *pub = &o->pub;
    TPMT_SENSITIVE *s = &o->sens;
    size_t hl = tpm_hash_size(pub->nameAlg);
    uint8_t *key;
    uint16_t *keylen;
    size_t want;
    if (pub->type == TPM2_ALG_SYMCIPHER) {
        key = s->sensitive.sym.buffer;
        keylen = &s->sensitive.sym.size;
        want = pub->parameters.symDetail.sym.keyBits.aes / 8u;
    } else {
        key = s->sensitive.bits.buffer;
        keylen = &s->sensitive.bits.size;
        TPMI_ALG_HASH kh = pub->parameters.keyedHashDetail.scheme.scheme == TPM2_ALG_HMAC
                               ? pub->parameters.keyedHashDetail.scheme.details.hmac.hashAlg : pub->nameAlg;
        want = tpm_hash_size(kh);
    }
    if (pub->objectAttributes & TPMA_OBJECT_SENSITIVEDATAORIGIN) {
        TPM_TRY(tpm_kdf_draw(ks, key, want));
        *keylen = (uint16_t)want;
    } else {
        memcpy(key, in->data.buffer, in->data.size);
        *keylen = in->data.size;
    }
    TPM_TRY(tpm_kdf_draw(ks, s->seedValue.buffer, hl));
    s->seedValue.size = (uint16_t)hl;
    TPM2B_DIGEST *u = pub->type == TPM2_ALG_SYMCIPHER ? &pub->unique.sym : &pub->unique.keyedHash;
    TPM_TRY(tpm_hash_v(pub->nameAlg, u->buffer, s->seedValue.buffer, (size_t)hl, key, (size_t)*keylen, NULL));
    u->size = (uint16_t)hl;
    return TPM2_RC_SUCCESS;
}

tpm_rc tpm_object_derive(const uint8_t *seed, size_t seedlen, const TPMS_SENSITIVE_CREATE *in, tpm_object *o)
{
    TPM2B_NAME tname;
    TPM_TRY(tpm_object_name(&o->pub, &tname));
    tpm_kdf_stream ks = {
        .hash = o->pub.nameAlg, .key = seed, .keylen = seedlen, .label = LABEL_PRIMARY,
        .u = tname.name, .ulen = tname.size, .v = in->data.buffer, .vlen = in->data.size,
    };
    memset(&o->sens, 0, sizeof o->sens);
    o->sens.sensitiveType = o->pub.type;
    o->sens.authValue = in->userAuth;
    TPMA_OBJECT a = o->pub.objectAttributes;
    tpm_rc rc;
    switch (o->pub.type) {
    case TPM2_ALG_ECC:
        rc = derive_ecc(&ks, o);
        break;
    case TPM2_ALG_RSA:
        rc = derive_rsa(&ks, o);
        break;
    default:
        return derive_symmetric(&ks, in, o);
    }
    if (rc == TPM2_RC_SUCCESS && (a & TPMA_OBJECT_RESTRICTED) && (a & TPMA_OBJECT_DECRYPT)) {
        /* a storage parent's seedValue protects its children (Part 1 section 27.6) */
        size_t hl = tpm_hash_size(o->pub.nameAlg);
        rc = tpm_kdf_draw(&ks, o->sens.seedValue.buffer, hl);
        o->sens.seedValue.size = (uint16_t)hl;
    }
    return rc;
}

tpm_rc tpm_object_signer(tpm_object *o, const cf_sig_params *p, bool sign, cf_signer **out)
{
    TPM_ENSURE(o->key, TPM2_RC_KEY);
    if (sign && o->signer && same_params(&o->signer_params, p)) {
        *out = o->signer;
        return TPM2_RC_SUCCESS;
    }
    cf_signer *s = NULL;
    cf_err e = cf_signer_new(o->key, p, sign, &s);
    TPM_ENSURE(e == CF_OK, tpm_rc_from_cf(e));
    if (!sign) {
        *out = s;   /* verifiers are the caller's */
        return TPM2_RC_SUCCESS;
    }
    cf_signer_free(o->signer);
    o->signer = s;
    o->signer_params = *p;
    *out = s;
    return TPM2_RC_SUCCESS;
}
