/* primary.c: Part 3 sections 24.1 (CreatePrimary), 12.4 (ReadPublic) and 28.4 (FlushContext). */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

/* TPM2B_PUBLIC whose size must match its content exactly (param n). */
static tpm_rc get_public(cf_reader *in, TPMT_PUBLIC *pub, unsigned n)
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

static tpm_rc check_pcr_selection(const TPML_PCR_SELECTION *sel, unsigned n)
{
    for (uint32_t s = 0; s < sel->count; s++) {
        TPM_ENSURE(tpm_pcr_bank_index(sel->pcrSelections[s].hash) >= 0, tpm_rc_p(TPM2_RC_HASH, n));
        for (unsigned i = TPM_PCR_COUNT; i < 8u * sel->pcrSelections[s].sizeofSelect; i++)
            TPM_ENSURE(!((sel->pcrSelections[s].pcrSelect[i / 8] >> (i % 8)) & 1), tpm_rc_p(TPM2_RC_VALUE, n));
    }
    return TPM2_RC_SUCCESS;
}

/* Qualified name of an object whose parent's qualified name is parent (Part 1 section 16). */
static tpm_rc qualified_name(TPMI_ALG_HASH alg, const uint8_t *parent, size_t plen, const TPM2B_NAME *name,
                             TPM2B_NAME *qn)
{
    qn->name[0] = (uint8_t)(alg >> 8);
    qn->name[1] = (uint8_t)alg;
    TPM_TRY(tpm_hash_v(alg, qn->name + 2, parent, plen, name->name, (size_t)name->size, NULL));
    qn->size = (uint16_t)(2 + tpm_hash_size(alg));
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_create_primary)
{
    TPM2B_SENSITIVE_CREATE sc;
    TPM2B_DATA outside;
    TPML_PCR_SELECTION pcrsel;
    tpm_object o;
    tpm_rc rc = TPM2_RC_SUCCESS;
    memset(&o, 0, sizeof o);
    memset(&sc, 0, sizeof sc);
    TPMI_RH_HIERARCHY hier = c->handles[0];

    rc = tpm_get(in, TPM_UNMARSHAL(TPM2B_SENSITIVE_CREATE), &sc);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 1));
    TPM_GUARD(get_public(in, &o.pub, 2));
    rc = tpm_get(in, TPM_UNMARSHAL(TPM2B_DATA), &outside);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 3));
    rc = tpm_get(in, TPM_UNMARSHAL(TPML_PCR_SELECTION), &pcrsel);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 4));
    TPM_GUARD(tpm_params_done(in));

    TPM_GUARD(tpm_template_check(&o.pub, 2));
    TPM_GUARD(check_pcr_selection(&pcrsel, 4));
    const TPMS_SENSITIVE_CREATE *s = &sc.sensitive;
    TPM_CHECK(s->userAuth.size <= tpm_hash_size(o.pub.nameAlg), tpm_rc_p(TPM2_RC_SIZE, 1));
    bool origin = o.pub.objectAttributes & TPMA_OBJECT_SENSITIVEDATAORIGIN;
    switch (o.pub.type) {
    case TPM2_ALG_RSA:
    case TPM2_ALG_ECC:
        TPM_CHECK(s->data.size == 0, tpm_rc_p(TPM2_RC_SIZE, 1));
        break;
    case TPM2_ALG_SYMCIPHER:
        TPM_CHECK(origin ? s->data.size == 0 : s->data.size == o.pub.parameters.symDetail.sym.keyBits.aes / 8u,
                  tpm_rc_p(TPM2_RC_SIZE, 1));
        break;
    default:   /* keyedhash: a sealed data object carries the caller's data */
        TPM_CHECK(origin ? s->data.size == 0 : s->data.size > 0, tpm_rc_p(TPM2_RC_SIZE, 1));
        break;
    }
    TPM2_HANDLE handle;
    tpm_object *slot = tpm_object_free_slot(t, &handle);
    TPM_CHECK(slot, TPM2_RC_OBJECT_MEMORY);

    /* the key, from the seed */
    const tpm_hierarchy *h = tpm_hierarchy_get(t, hier);
    TPM_GUARD(tpm_object_derive(h->seed, sizeof h->seed, s, &o));
    TPM_GUARD(tpm_object_name(&o.pub, &o.name));
    uint8_t hh[4] = { (uint8_t)(hier >> 24), (uint8_t)(hier >> 16), (uint8_t)(hier >> 8), (uint8_t)hier };
    TPM_GUARD(qualified_name(o.pub.nameAlg, hh, 4, &o.name, &o.qname));

    /* creation data, hash and ticket (Part 3 section 24.1, Part 2 section 10.7.3) */
    TPMS_CREATION_DATA cd;
    memset(&cd, 0, sizeof cd);
    cd.pcrSelect = pcrsel;
    TPM_GUARD(tpm_pcr_digest(t, o.pub.nameAlg, &pcrsel, &cd.pcrDigest));
    cd.locality = (TPMA_LOCALITY)(c->locality < 5 ? 1u << c->locality : c->locality);
    cd.parentNameAlg = TPM2_ALG_NULL;
    cd.parentName.size = cd.parentQualifiedName.size = 4;
    memcpy(cd.parentName.name, hh, 4);
    memcpy(cd.parentQualifiedName.name, hh, 4);
    cd.outsideInfo = outside;
    uint8_t cdbuf[sizeof cd + 16];
    size_t cdlen = tpm_marshal_to(TPM_MARSHAL(TPMS_CREATION_DATA), &cd, cdbuf, sizeof cdbuf);
    TPM_CHECK(cdlen > 0, TPM2_RC_FAILURE);
    TPM2B_DIGEST chash = { .size = (uint16_t)tpm_hash_size(o.pub.nameAlg) };
    TPM_GUARD(tpm_hash(o.pub.nameAlg, cdbuf, cdlen, chash.buffer));
    TPMT_TK_CREATION ticket = { .tag = TPM2_ST_CREATION, .hierarchy = hier };
    TPM_GUARD(tpm_ticket(t, TPM2_ST_CREATION, hier, o.name.name, o.name.size, chash.buffer, chash.size,
                         &ticket.digest));

    TPM2B_PUBLIC outpub = { .publicArea = o.pub };
    TPM2B_CREATION_DATA outcd = { .creationData = cd };
    TPM_PUT(out, TPM2B_PUBLIC, &outpub);
    TPM_PUT(out, TPM2B_CREATION_DATA, &outcd);
    TPM_PUT(out, TPM2B_DIGEST, &chash);
    TPM_PUT(out, TPMT_TK_CREATION, &ticket);
    TPM_PUT(out, TPM2B_NAME, &o.name);

    o.used = true;
    o.handle = handle;
    o.hierarchy = hier;
    *slot = o;
    memset(&o, 0, sizeof o);   /* the slot owns the key now */
    c->r_handle = handle;
out:
    if (o.key || o.signer)
        tpm_object_clear(&o);
    cf_wipe(&o, sizeof o);
    cf_wipe(&sc, sizeof sc);
    return rc;
}

TPM_HANDLER(tpm_cc_read_public)
{
    TPM_TRY(tpm_params_done(in));
    const tpm_object *o = c->objects[0];
    TPM_ENSURE(!tpm_object_is_sequence(o), tpm_rc_h(TPM2_RC_SEQUENCE, 1));   /* Part 3 section 12.4 */
    TPM2B_PUBLIC pub = { .publicArea = o->pub };
    TPM_PUT(out, TPM2B_PUBLIC, &pub);
    TPM_PUT(out, TPM2B_NAME, &o->name);
    TPM_PUT(out, TPM2B_NAME, &o->qname);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_flush_context)
{
    TPM2_HANDLE h;
    TPM_GET(in, UINT32, &h, 1);
    TPM_TRY(tpm_params_done(in));
    uint8_t type = (uint8_t)(h >> 24);
    TPM_ENSURE(type == TPM2_HT_TRANSIENT || type == TPM2_HT_HMAC_SESSION || type == TPM2_HT_POLICY_SESSION,
               tpm_rc_p(TPM2_RC_VALUE, 1));
    if (type != TPM2_HT_TRANSIENT)   /* a session (session.c) */
        return tpm_session_flush(t, h) == TPM2_RC_SUCCESS ? TPM2_RC_SUCCESS : tpm_rc_p(TPM2_RC_HANDLE, 1);
    tpm_object *o = tpm_object_find(t, h);
    TPM_ENSURE(o, tpm_rc_p(TPM2_RC_HANDLE, 1));
    tpm_object_clear(o);
    return TPM2_RC_SUCCESS;
}
