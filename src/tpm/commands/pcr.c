/* pcr.c: PCR banks (SHA-1, SHA-256, SHA-384; 24 PCRs each) and Part 3 section 22 (PCR_Extend,
 * PCR_Event, PCR_Read, PCR_Reset), with the PC Client Platform TPM Profile's attributes:
 *   PCR 0-15   reset only by TPM Reset, extend from any locality, saved by Shutdown(STATE);
 *   PCR 16, 23 (debug, application) reset and extend from any locality;
 *   PCR 17-22  (D-RTM) start at all ones, reset from locality 4 (17-19) or 2 and 4 (20-22),
 *              extended from the localities of the table below.
 * The masks are the reference TPM's PC Client table (bit n = locality n). */
#include <string.h>
#include "tpm/internal.h"

const TPM2_ALG_ID tpm_pcr_banks[TPM_PCR_BANKS] = { TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384 };

static const struct {
    uint8_t reset, extend;
    bool save;
} pcr_attrs[TPM_PCR_COUNT] = {
    [0 ... 15] = { 0x00, 0x1F, true },
    [16] = { 0x1F, 0x1F, false },
    [17] = { 0x10, 0x1C, false },
    [18] = { 0x10, 0x1C, false },
    [19] = { 0x10, 0x0C, false },
    [20] = { 0x14, 0x0E, false },
    [21] = { 0x14, 0x04, false },
    [22] = { 0x14, 0x04, false },
    [23] = { 0x1F, 0x1F, false },
};

uint8_t tpm_pcr_reset_localities(unsigned pcr) { return pcr < TPM_PCR_COUNT ? pcr_attrs[pcr].reset : 0; }
uint8_t tpm_pcr_extend_localities(unsigned pcr) { return pcr < TPM_PCR_COUNT ? pcr_attrs[pcr].extend : 0; }

int tpm_pcr_bank_index(TPM2_ALG_ID alg)
{
    for (int i = 0; i < TPM_PCR_BANKS; i++)
        if (tpm_pcr_banks[i] == alg)
            return i;
    return -1;
}

static bool is_drtm(unsigned i) { return i >= 17 && i <= 22; }

static void init_pcr(tpm_instance *t, unsigned i)
{
    for (int b = 0; b < TPM_PCR_BANKS; b++)
        memset(t->pcrs.value[b][i], is_drtm(i) ? 0xFF : 0x00, sizeof t->pcrs.value[b][i]);
}

void tpm_pcrs_init(tpm_instance *t)
{
    memset(&t->pcrs, 0, sizeof t->pcrs);
    for (unsigned i = 0; i < TPM_PCR_COUNT; i++)
        init_pcr(t, i);
}

void tpm_pcrs_restore(tpm_instance *t)
{
    tpm_pcrs_init(t);
    for (unsigned i = 0; i < TPM_PCR_COUNT; i++)
        if (pcr_attrs[i].save)
            for (int b = 0; b < TPM_PCR_BANKS; b++)
                memcpy(t->pcrs.value[b][i], t->nv.saved_pcrs.value[b][i], sizeof t->pcrs.value[b][i]);
    t->pcrs.update_counter = t->nv.saved_pcrs.update_counter;
}

static bool selected(const TPMS_PCR_SELECTION *s, unsigned i)
{
    return i / 8 < s->sizeofSelect && (s->pcrSelect[i / 8] >> (i % 8)) & 1;
}

tpm_rc tpm_pcr_digest(tpm_instance *t, TPM2_ALG_ID hash, const TPML_PCR_SELECTION *sel, TPM2B_DIGEST *out)
{
    cf_hash_alg h = tpm_hash_alg(hash);
    TPM_ENSURE(h != CF_HASH_NONE, TPM2_RC_HASH);
    cf_digest *d = NULL;
    TPM_ENSURE(cf_digest_new(h, &d) == CF_OK, TPM2_RC_FAILURE);
    cf_err e = CF_OK;
    for (uint32_t s = 0; s < sel->count && e == CF_OK; s++) {
        int b = tpm_pcr_bank_index(sel->pcrSelections[s].hash);
        if (b < 0)
            continue;
        size_t len = tpm_hash_size(tpm_pcr_banks[b]);
        for (unsigned i = 0; i < TPM_PCR_COUNT && e == CF_OK; i++)
            if (selected(&sel->pcrSelections[s], i))
                e = cf_digest_update(d, t->pcrs.value[b][i], len);
    }
    size_t n = CF_HASH_MAX;
    if (e == CF_OK)
        e = cf_digest_final(d, out->buffer, &n);
    cf_digest_free(d);
    out->size = (uint16_t)n;
    return tpm_rc_from_cf(e);
}

TPM_HANDLER(tpm_cc_pcr_read)
{
    TPML_PCR_SELECTION sel;
    TPM_GET(in, TPML_PCR_SELECTION, &sel, 1);
    TPM_TRY(tpm_params_done(in));
    /* Part 3 section 22.4: at most 8 digests; the returned selection says which were read */
    TPML_PCR_SELECTION got = sel;
    TPML_DIGEST values = { .count = 0 };
    for (uint32_t s = 0; s < sel.count; s++) {
        TPMS_PCR_SELECTION *g = &got.pcrSelections[s];
        int b = tpm_pcr_bank_index(g->hash);
        for (unsigned i = 0; i < 8u * g->sizeofSelect; i++) {
            if (!selected(g, i))
                continue;
            if (b < 0 || i >= TPM_PCR_COUNT || values.count >= 8) {
                g->pcrSelect[i / 8] &= (uint8_t)~(1u << (i % 8));
                continue;
            }
            TPM2B_DIGEST *v = &values.digests[values.count++];
            v->size = (uint16_t)tpm_hash_size(tpm_pcr_banks[b]);
            memcpy(v->buffer, t->pcrs.value[b][i], v->size);
        }
    }
    cf_put_u32(out, t->pcrs.update_counter);
    TPM_PUT(out, TPML_PCR_SELECTION, &got);
    TPM_PUT(out, TPML_DIGEST, &values);
    return TPM2_RC_SUCCESS;
}

static tpm_rc check_locality(const tpm_cmd *c, uint8_t mask)
{
    TPM_ENSURE(c->locality < 5 && (mask >> c->locality) & 1, TPM2_RC_LOCALITY);
    return TPM2_RC_SUCCESS;
}

/* Extends PCR i of bank b with digest (already validated). */
static void extend(tpm_instance *t, unsigned i, int b, const uint8_t *digest)
{
    TPM2_ALG_ID alg = tpm_pcr_banks[b];
    size_t len = tpm_hash_size(alg);
    uint8_t nv[CF_HASH_MAX];
    if (tpm_hash_v(alg, nv, t->pcrs.value[b][i], len, digest, len, NULL) == TPM2_RC_SUCCESS)
        memcpy(t->pcrs.value[b][i], nv, len);
}

void tpm_pcr_extend_digests(tpm_instance *t, unsigned pcr, const TPML_DIGEST_VALUES *d)
{
    for (uint32_t k = 0; k < d->count; k++) {
        int b = tpm_pcr_bank_index(d->digests[k].hashAlg);
        if (b >= 0)
            extend(t, pcr, b, (const uint8_t *)&d->digests[k].digest);
    }
    t->pcrs.update_counter++;
}

TPM_HANDLER(tpm_cc_pcr_extend)
{
    TPML_DIGEST_VALUES d;
    TPM_GET(in, TPML_DIGEST_VALUES, &d, 1);
    TPM_TRY(tpm_params_done(in));
    TPM2_HANDLE h = c->handles[0];
    for (uint32_t k = 0; k < d.count; k++)
        TPM_ENSURE(tpm_hash_size(d.digests[k].hashAlg) > 0, tpm_rc_p(TPM2_RC_HASH, 1));
    if (h == TPM2_RH_NULL)
        return TPM2_RC_SUCCESS;
    TPM_TRY(check_locality(c, tpm_pcr_extend_localities(h)));
    /* digests for banks this TPM does not have are ignored (Part 3 section 22.2) */
    for (uint32_t k = 0; k < d.count; k++) {
        int b = tpm_pcr_bank_index(d.digests[k].hashAlg);
        if (b >= 0)
            extend(t, h, b, (const uint8_t *)&d.digests[k].digest);
    }
    t->pcrs.update_counter++;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_pcr_event)
{
    TPM2B_EVENT ev;
    TPM_GET(in, TPM2B_EVENT, &ev, 1);
    TPM_TRY(tpm_params_done(in));
    TPM2_HANDLE h = c->handles[0];
    if (h != TPM2_RH_NULL)
        TPM_TRY(check_locality(c, tpm_pcr_extend_localities(h)));
    TPML_DIGEST_VALUES out_d = { .count = TPM_PCR_BANKS };
    for (int b = 0; b < TPM_PCR_BANKS; b++) {
        out_d.digests[b].hashAlg = tpm_pcr_banks[b];
        TPM_TRY(tpm_hash(tpm_pcr_banks[b], ev.buffer, ev.size, (uint8_t *)&out_d.digests[b].digest));
    }
    if (h != TPM2_RH_NULL) {
        for (int b = 0; b < TPM_PCR_BANKS; b++)
            extend(t, h, b, (const uint8_t *)&out_d.digests[b].digest);
        t->pcrs.update_counter++;
    }
    TPM_PUT(out, TPML_DIGEST_VALUES, &out_d);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_pcr_reset)
{
    TPM_TRY(tpm_params_done(in));
    TPM2_HANDLE h = c->handles[0];
    TPM_ENSURE(h != TPM2_RH_NULL, tpm_rc_h(TPM2_RC_VALUE, 1));
    TPM_TRY(check_locality(c, tpm_pcr_reset_localities(h)));
    for (int b = 0; b < TPM_PCR_BANKS; b++)
        memset(t->pcrs.value[b][h], 0, sizeof t->pcrs.value[b][h]);
    t->pcrs.update_counter++;
    return TPM2_RC_SUCCESS;
}
