/* quote.c: Part 3 section 18.4 (Quote), with the common attestation fields of Part 3 section 18.1
 * and Part 2 section 10.12 (TPMS_ATTEST):
 *   magic = TPM_GENERATED_VALUE, type = TPM_ST_ATTEST_QUOTE, qualifiedSigner = the signing key's
 *   qualified name, extraData = qualifyingData, clockInfo, firmwareVersion, and attested.quote =
 *   { pcrSelect, pcrDigest = H_scheme(the selected PCR values, banks and PCRs in selection order) }.
 * The marshaled TPMS_ATTEST is hashed with the scheme's hash and signed. A key of the storage or
 * null hierarchy gets resetCount, restartCount and firmwareVersion obfuscated (Part 3 section
 * 18.1: so that keys of different owners cannot be correlated), with the reference TPM's
 * KDFa(contextHash, shProof, "OBFUSCATE", qualifiedSigner) offsets.
 * signHandle TPM_RH_NULL: the reference TPM selects the NULL scheme for it, which leaves no hash
 * for the PCR digest, so Quote answers TPM_RC_SCHEME (parameter 2) as it does. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Fills the fields common to every attestation (FillInAttestInfo). */
static tpm_rc attest_common(tpm_instance *t, const tpm_object *o, const TPM2B_DATA *qualifying, TPMS_ATTEST *a)
{
    memset(a, 0, sizeof *a);
    a->magic = TPM2_GENERATED_VALUE;
    a->qualifiedSigner = o->qname;
    a->extraData = *qualifying;
    a->clockInfo.clock = t->nv.clock;
    a->clockInfo.resetCount = t->nv.reset_count;
    a->clockInfo.restartCount = t->nv.restart_count;
    a->clockInfo.safe = TPM2_YES;
    a->firmwareVersion = (uint64_t)0x00000001 << 32;   /* TPM_PT_FIRMWARE_VERSION_1 || _2 */
    if (o->hierarchy != TPM2_RH_ENDORSEMENT && o->hierarchy != TPM2_RH_PLATFORM) {
        uint8_t ob[16];
        const tpm_hierarchy *sh = tpm_hierarchy_get(t, TPM2_RH_OWNER);
        TPM_TRY(tpm_kdfa(TPM_CONTEXT_HASH, sh->proof, sizeof sh->proof, "OBFUSCATE", a->qualifiedSigner.name,
                         a->qualifiedSigner.size, NULL, 0, 128, ob));
        uint64_t o1 = be64(ob + 8);
        a->firmwareVersion += be64(ob);
        a->clockInfo.resetCount += (uint32_t)(o1 >> 32);
        a->clockInfo.restartCount += (uint32_t)o1;
        cf_wipe(ob, sizeof ob);
    }
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_quote)
{
    TPM2B_DATA qualifying;
    TPMT_SIG_SCHEME scheme_in, scheme;
    TPML_PCR_SELECTION sel;
    TPM_GET(in, TPM2B_DATA, &qualifying, 1);
    TPM_GET(in, TPMT_SIG_SCHEME, &scheme_in, 2);
    TPM_GET(in, TPML_PCR_SELECTION, &sel, 3);
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    TPM_ENSURE(o, tpm_rc_p(TPM2_RC_SCHEME, 2));   /* TPM_RH_NULL: see the header */
    const TPMT_PUBLIC *pub = &o->pub;
    TPM_ENSURE(!tpm_object_is_sequence(o) && (pub->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT),
               tpm_rc_h(TPM2_RC_KEY, 1));
    TPM_ENSURE(pub->type == TPM2_ALG_RSA || pub->type == TPM2_ALG_ECC, tpm_rc_h(TPM2_RC_KEY, 1));
    TPM_ENSURE(o->key && cf_pkey_is_private(o->key), tpm_rc_h(TPM2_RC_KEY, 1));
    TPM_TRY(tpm_sig_scheme_select(pub, &scheme_in, &scheme));
    TPMI_ALG_HASH hash = scheme.details.any.hashAlg;
    /* PCRs this TPM does not have are left out of the selection (the reference's FilterPcr) */
    for (uint32_t s = 0; s < sel.count; s++) {
        TPMS_PCR_SELECTION *p = &sel.pcrSelections[s];
        TPM_ENSURE(tpm_pcr_bank_index(p->hash) >= 0, tpm_rc_p(TPM2_RC_HASH, 3));
        for (unsigned i = TPM_PCR_COUNT; i < 8u * p->sizeofSelect; i++)
            p->pcrSelect[i / 8] &= (uint8_t)~(1u << (i % 8));
    }

    TPMS_ATTEST a;
    TPM_TRY(attest_common(t, o, &qualifying, &a));
    a.type = TPM2_ST_ATTEST_QUOTE;
    a.attested.quote.pcrSelect = sel;
    TPM_TRY(tpm_pcr_digest(t, hash, &sel, &a.attested.quote.pcrDigest));

    uint8_t buf[sizeof(TPMS_ATTEST) + 16];
    size_t n = tpm_marshal_to(TPM_MARSHAL(TPMS_ATTEST), &a, buf, sizeof buf);
    TPM_ENSURE(n > 0 && n <= sizeof(((TPM2B_ATTEST *)0)->attestationData), TPM2_RC_FAILURE);
    uint8_t digest[CF_HASH_MAX];
    TPM_TRY(tpm_hash(hash, buf, n, digest));
    TPMT_SIGNATURE sig;
    TPM_TRY(tpm_sign_digest(o, &scheme, digest, tpm_hash_size(hash), &sig));
    tpm_put_2b(out, buf, n);
    TPM_PUT(out, TPMT_SIGNATURE, &sig);
    return TPM2_RC_SUCCESS;
}
