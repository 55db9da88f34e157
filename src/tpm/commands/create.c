/* create.c: Part 3 sections 12.1 (Create) and 12.9 (CreateLoaded): ordinary objects under a
 * storage parent.
 *
 * The key material of an ordinary object is fresh from the RNG (Part 1 section 27.7): coffer draws
 * it from a KDFa stream keyed by 48 new random bytes, through the same code that derives primary
 * objects from a hierarchy seed (object.c), so every object type is made one way. The private area
 * leaves the TPM protected under the parent (protect.c); CreateLoaded also loads the object, and
 * with a hierarchy as parent makes a primary object as CreatePrimary does. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define MAX_SYM_DATA 128   /* sealed data, caller-given HMAC keys */

static tpm_rc check_pcr_selection(const TPML_PCR_SELECTION *sel, unsigned n)
{
    for (uint32_t s = 0; s < sel->count; s++) {
        TPM_ENSURE(tpm_pcr_bank_index(sel->pcrSelections[s].hash) >= 0, tpm_rc_p(TPM2_RC_HASH, n));
        for (unsigned i = TPM_PCR_COUNT; i < 8u * sel->pcrSelections[s].sizeofSelect; i++)
            TPM_ENSURE(!((sel->pcrSelections[s].pcrSelect[i / 8] >> (i % 8)) & 1), tpm_rc_p(TPM2_RC_VALUE, n));
    }
    return TPM2_RC_SUCCESS;
}

/* o->pub holds the template: checks it against the parent and the sensitive data (params 1 and
 * 2), then makes the object (fresh key, name, qualified name, hierarchy). */
static tpm_rc create_ordinary(const tpm_object *parent, const TPMS_SENSITIVE_CREATE *s, tpm_object *o)
{
    TPM_TRY(tpm_template_check(&o->pub, 2));
    TPMA_OBJECT a = o->pub.objectAttributes;
    /* Part 1 section 27.2: fixedTPM only under a fixedTPM parent */
    TPM_ENSURE(!(a & TPMA_OBJECT_FIXEDTPM) || (parent->pub.objectAttributes & TPMA_OBJECT_FIXEDTPM),
               tpm_rc_p(TPM2_RC_ATTRIBUTES, 2));
    TPM_ENSURE(s->userAuth.size <= tpm_hash_size(o->pub.nameAlg), tpm_rc_p(TPM2_RC_SIZE, 1));
    bool origin = a & TPMA_OBJECT_SENSITIVEDATAORIGIN;
    switch (o->pub.type) {
    case TPM2_ALG_RSA:
    case TPM2_ALG_ECC:
        TPM_ENSURE(s->data.size == 0, tpm_rc_p(TPM2_RC_SIZE, 1));
        break;
    case TPM2_ALG_SYMCIPHER:
        TPM_ENSURE(origin ? s->data.size == 0 : s->data.size == o->pub.parameters.symDetail.sym.keyBits.aes / 8u,
                   tpm_rc_p(TPM2_RC_SIZE, 1));
        break;
    default:   /* keyedhash: sealed data or an HMAC key the caller gives, or a fresh HMAC key */
        TPM_ENSURE(origin ? s->data.size == 0 : s->data.size > 0 && s->data.size <= MAX_SYM_DATA,
                   tpm_rc_p(TPM2_RC_SIZE, 1));
        break;
    }
    uint8_t seed[TPM_SEED_LEN];
    TPM_ENSURE(cf_random(seed, sizeof seed) == CF_OK, TPM2_RC_FAILURE);
    tpm_rc rc = tpm_object_derive(seed, sizeof seed, s, o);
    cf_wipe(seed, sizeof seed);
    TPM_TRY(rc);
    TPM_TRY(tpm_object_name(&o->pub, &o->name));
    TPM_TRY(tpm_qualified_name(o->pub.nameAlg, &parent->qname, &o->name, &o->qname));
    o->hierarchy = parent->hierarchy;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_create)
{
    TPM2B_SENSITIVE_CREATE sc;
    TPM2B_DATA outside;
    TPML_PCR_SELECTION pcrsel;
    TPM2B_PRIVATE priv;
    tpm_object o;
    tpm_rc rc = TPM2_RC_SUCCESS;
    memset(&o, 0, sizeof o);
    memset(&sc, 0, sizeof sc);
    memset(&priv, 0, sizeof priv);
    rc = tpm_get(in, TPM_UNMARSHAL(TPM2B_SENSITIVE_CREATE), &sc);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 1));
    TPM_GUARD(tpm_get_public(in, &o.pub, 2));
    rc = tpm_get(in, TPM_UNMARSHAL(TPM2B_DATA), &outside);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 3));
    rc = tpm_get(in, TPM_UNMARSHAL(TPML_PCR_SELECTION), &pcrsel);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 4));
    TPM_GUARD(tpm_params_done(in));
    const tpm_object *parent = c->objects[0];
    TPM_CHECK(tpm_object_is_storage(parent), tpm_rc_h(TPM2_RC_TYPE, 1));
    TPM_GUARD(check_pcr_selection(&pcrsel, 4));
    TPM_GUARD(create_ordinary(parent, &sc.sensitive, &o));
    TPM_GUARD(tpm_private_protect(parent, &o.name, &o.sens, &priv));

    /* creation data, hash and ticket (Part 3 section 12.1, Part 2 section 10.7.3) */
    TPMS_CREATION_DATA cd;
    memset(&cd, 0, sizeof cd);
    cd.pcrSelect = pcrsel;
    TPM_GUARD(tpm_pcr_digest(t, o.pub.nameAlg, &pcrsel, &cd.pcrDigest));
    cd.locality = (TPMA_LOCALITY)(c->locality < 5 ? 1u << c->locality : c->locality);
    cd.parentNameAlg = parent->pub.nameAlg;
    cd.parentName = parent->name;
    cd.parentQualifiedName = parent->qname;
    cd.outsideInfo = outside;
    uint8_t cdbuf[sizeof cd + 16];
    size_t cdlen = tpm_marshal_to(TPM_MARSHAL(TPMS_CREATION_DATA), &cd, cdbuf, sizeof cdbuf);
    TPM_CHECK(cdlen > 0, TPM2_RC_FAILURE);
    TPM2B_DIGEST chash = { .size = (uint16_t)tpm_hash_size(o.pub.nameAlg) };
    TPM_GUARD(tpm_hash(o.pub.nameAlg, cdbuf, cdlen, chash.buffer));
    TPMT_TK_CREATION ticket = { .tag = TPM2_ST_CREATION, .hierarchy = parent->hierarchy };
    TPM_GUARD(tpm_ticket(t, TPM2_ST_CREATION, parent->hierarchy, o.name.name, o.name.size, chash.buffer, chash.size,
                         &ticket.digest));

    TPM2B_PUBLIC outpub = { .publicArea = o.pub };
    TPM2B_CREATION_DATA outcd = { .creationData = cd };
    TPM_PUT(out, TPM2B_PRIVATE, &priv);
    TPM_PUT(out, TPM2B_PUBLIC, &outpub);
    TPM_PUT(out, TPM2B_CREATION_DATA, &outcd);
    TPM_PUT(out, TPM2B_DIGEST, &chash);
    TPM_PUT(out, TPMT_TK_CREATION, &ticket);
out:
    if (o.key)
        tpm_object_clear(&o);
    cf_wipe(&o, sizeof o);
    cf_wipe(&sc, sizeof sc);
    cf_wipe(&priv, sizeof priv);
    return rc;
}

/* CreateLoaded with a hierarchy: CreatePrimary's parameters are CreateLoaded's followed by an
 * empty outsideInfo and an empty creationPCR; its response gives outPublic and name. */
static tpm_rc create_loaded_primary(tpm_instance *t, tpm_cmd *c, const uint8_t *params, size_t n, cf_writer *out)
{
    static const uint8_t tail[6];   /* outsideInfo size 0, creationPCR count 0 */
    uint8_t buf[TPM_MAX_COMMAND_SIZE + sizeof tail];
    TPM_ENSURE(n <= TPM_MAX_COMMAND_SIZE, TPM2_RC_SIZE);
    memcpy(buf, params, n);
    memcpy(buf + n, tail, sizeof tail);
    cf_reader pin = cf_reader_init(buf, n + sizeof tail);
    uint8_t resp[TPM_MAX_RESPONSE_SIZE];
    cf_writer w = cf_writer_fixed(resp, sizeof resp);
    tpm_rc rc = tpm_cc_create_primary(t, c, &pin, &w);
    cf_wipe(buf, n);
    TPM_TRY(rc);
    TPM2B_PUBLIC pub;
    TPM2B_CREATION_DATA cd;
    TPM2B_DIGEST d;
    TPMT_TK_CREATION tk;
    TPM2B_NAME name;
    /* libtss2-mu wants the size of a sized structure zero before it unmarshals one */
    memset(&pub, 0, sizeof pub);
    memset(&cd, 0, sizeof cd);
    cf_reader r = cf_reader_init(resp, w.len);
    if (cf_writer_status(&w) != CF_OK || tpm_get(&r, TPM_UNMARSHAL(TPM2B_PUBLIC), &pub) != TPM2_RC_SUCCESS
        || tpm_get(&r, TPM_UNMARSHAL(TPM2B_CREATION_DATA), &cd) != TPM2_RC_SUCCESS
        || tpm_get(&r, TPM_UNMARSHAL(TPM2B_DIGEST), &d) != TPM2_RC_SUCCESS
        || tpm_get(&r, TPM_UNMARSHAL(TPMT_TK_CREATION), &tk) != TPM2_RC_SUCCESS
        || tpm_get(&r, TPM_UNMARSHAL(TPM2B_NAME), &name) != TPM2_RC_SUCCESS) {
        tpm_object *o = tpm_object_find(t, c->r_handle);
        if (o)
            tpm_object_clear(o);
        return TPM2_RC_FAILURE;
    }
    tpm_put_2b(out, NULL, 0);   /* outPrivate: a primary object has none */
    TPM_PUT(out, TPM2B_PUBLIC, &pub);
    TPM_PUT(out, TPM2B_NAME, &name);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_create_loaded)
{
    TPM2B_SENSITIVE_CREATE sc;
    TPM2B_PRIVATE priv;
    tpm_object o;
    tpm_rc rc = TPM2_RC_SUCCESS;
    memset(&o, 0, sizeof o);
    memset(&sc, 0, sizeof sc);
    memset(&priv, 0, sizeof priv);
    const uint8_t *params = in->p + in->off;
    size_t plen = cf_reader_left(in);
    rc = tpm_get(in, TPM_UNMARSHAL(TPM2B_SENSITIVE_CREATE), &sc);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 1));
    /* TPM2B_TEMPLATE: the marshaled TPMT_PUBLIC (derivation templates are not supported) */
    TPM_GUARD(tpm_get_public(in, &o.pub, 2));
    TPM_GUARD(tpm_params_done(in));
    const tpm_object *parent = c->objects[0];
    if (!parent) {
        rc = create_loaded_primary(t, c, params, plen, out);
        goto out;
    }
    TPM_CHECK(tpm_object_is_storage(parent), tpm_rc_h(TPM2_RC_TYPE, 1));
    TPM2_HANDLE handle;
    tpm_object *slot = tpm_object_free_slot(t, &handle);
    TPM_CHECK(slot, TPM2_RC_OBJECT_MEMORY);
    TPM_GUARD(create_ordinary(parent, &sc.sensitive, &o));
    TPM_GUARD(tpm_private_protect(parent, &o.name, &o.sens, &priv));
    TPM2B_PUBLIC outpub = { .publicArea = o.pub };
    TPM_PUT(out, TPM2B_PRIVATE, &priv);
    TPM_PUT(out, TPM2B_PUBLIC, &outpub);
    TPM_PUT(out, TPM2B_NAME, &o.name);
    o.used = true;
    o.handle = handle;
    *slot = o;
    memset(&o, 0, sizeof o);
    c->r_handle = handle;
out:
    if (o.key)
        tpm_object_clear(&o);
    cf_wipe(&o, sizeof o);
    cf_wipe(&sc, sizeof sc);
    cf_wipe(&priv, sizeof priv);
    return rc;
}
