/* sequence.c: Part 3 sections 15.5 (HMAC), 17.2 (HMAC_Start), 17.3 (HashSequenceStart),
 * 17.4 (SequenceUpdate), 17.5 (SequenceComplete) and 17.6 (EventSequenceComplete).
 *
 * A sequence object occupies a transient object slot like any loaded object (so it counts against
 * TPM_PT_HR_TRANSIENT_AVAIL and FlushContext drops it), marked by o->seq. Its public area has
 * nameAlg TPM_ALG_NULL, hence an empty Name (the reference TPM's EntityGetName), and the
 * attributes userWithAuth and noDA: its authValue, given at the start, is always usable and
 * failures with it do not count towards lockout (Part 1 section 19.8: sequences are DA-exempt).
 *
 * Tickets: as TPM2_Hash, a hash sequence gives a TPM_ST_HASHCHECK ticket only when its first
 * block does not start with TPM_GENERATED_VALUE; like the reference TPM's TicketIsSafe, a first
 * block shorter than 4 bytes is not safe either. */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

typedef enum { SEQ_HASH, SEQ_HMAC, SEQ_EVENT } seq_kind;

struct tpm_seq {
    seq_kind kind;
    TPMI_ALG_HASH alg;                /* hash and HMAC sequences */
    cf_digest *d[TPM_PCR_BANKS];      /* hash: d[0]; event: one per PCR bank */
    cf_hmac *m;
    bool first_seen, ticket_safe;
};

void tpm_seq_free(tpm_seq *s)
{
    if (!s)
        return;
    for (int i = 0; i < TPM_PCR_BANKS; i++)
        cf_digest_free(s->d[i]);
    cf_hmac_free(s->m);
    cf_wipe(s, sizeof *s);
    free(s);
}

static const uint8_t generated[4] = { 0xFF, 0x54, 0x43, 0x47 };   /* TPM_GENERATED_VALUE */

static bool ticket_safe(const TPM2B_MAX_BUFFER *b)
{
    return b->size >= 4 && memcmp(b->buffer, generated, 4) != 0;
}

/* An HMAC key (keyedhash, unrestricted, sign) and the hash to use (Part 3 section 15.5.3). */
static tpm_rc hmac_key(const tpm_object *o, TPMI_ALG_HASH in, unsigned pn_hash, TPMI_ALG_HASH *out)
{
    const TPMT_PUBLIC *pub = &o->pub;
    TPM_ENSURE(!tpm_object_is_sequence(o) && pub->type == TPM2_ALG_KEYEDHASH, tpm_rc_h(TPM2_RC_TYPE, 1));
    TPM_ENSURE(!(pub->objectAttributes & TPMA_OBJECT_RESTRICTED), tpm_rc_h(TPM2_RC_ATTRIBUTES, 1));
    TPM_ENSURE(pub->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT, tpm_rc_h(TPM2_RC_KEY, 1));
    TPM_ENSURE(in == TPM2_ALG_NULL || tpm_pcr_bank_index(in) >= 0, tpm_rc_p(TPM2_RC_HASH, pn_hash));
    const TPMT_KEYEDHASH_SCHEME *s = &pub->parameters.keyedHashDetail.scheme;
    TPMI_ALG_HASH h = in;
    if (s->scheme != TPM2_ALG_NULL) {
        h = s->details.hmac.hashAlg;
        if (in != TPM2_ALG_NULL && in != h)
            h = TPM2_ALG_NULL;
    }
    TPM_ENSURE(h != TPM2_ALG_NULL, tpm_rc_p(TPM2_RC_VALUE, pn_hash));
    *out = h;
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_hmac)
{
    (void)t;
    TPM2B_MAX_BUFFER data;
    TPMI_ALG_HASH in_alg, alg;
    TPM_GET(in, TPM2B_MAX_BUFFER, &data, 1);
    TPM_GET(in, UINT16, &in_alg, 2);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(data.size <= TPM_INPUT_BUFFER, tpm_rc_p(TPM2_RC_SIZE, 1));
    const tpm_object *o = c->objects[0];
    TPM_TRY(hmac_key(o, in_alg, 2, &alg));
    TPM2B_DIGEST mac = { .size = (uint16_t)tpm_hash_size(alg) };
    const TPM2B_SENSITIVE_DATA *k = &o->sens.sensitive.bits;
    TPM_TRY(tpm_hmac_v(alg, k->buffer, k->size, mac.buffer, data.buffer, (size_t)data.size, NULL));
    TPM_PUT(out, TPM2B_DIGEST, &mac);
    cf_wipe(&data, sizeof data);
    return TPM2_RC_SUCCESS;
}

/* A new sequence object in a free slot (TPM_RC_OBJECT_MEMORY when none); seq is taken over. */
static tpm_rc new_sequence(tpm_instance *t, tpm_cmd *c, const TPM2B_AUTH *auth, tpm_seq *seq)
{
    TPM2_HANDLE handle;
    tpm_object *o = tpm_object_free_slot(t, &handle);
    if (!o) {
        tpm_seq_free(seq);
        return TPM2_RC_OBJECT_MEMORY;
    }
    memset(o, 0, sizeof *o);
    o->used = true;
    o->handle = handle;
    o->hierarchy = TPM2_RH_NULL;
    o->pub.type = TPM2_ALG_NULL;
    o->pub.nameAlg = TPM2_ALG_NULL;
    o->pub.objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA;
    o->sens.authValue = *auth;
    o->seq = seq;
    c->r_handle = handle;
    return TPM2_RC_SUCCESS;
}

static tpm_seq *seq_alloc(seq_kind kind, TPMI_ALG_HASH alg)
{
    tpm_seq *s = calloc(1, sizeof *s);
    if (s) {
        s->kind = kind;
        s->alg = alg;
    }
    return s;
}

/* authValues of sequences: at most the size of the largest digest (TPM2B_AUTH), and trailing
 * zeros do not count (Part 1 section 19.6.4, as for every authValue). */
static void trim_auth(TPM2B_AUTH *a)
{
    while (a->size > 0 && a->buffer[a->size - 1] == 0)
        a->size--;
}

TPM_HANDLER(tpm_cc_hmac_start)
{
    TPM2B_AUTH auth;
    TPMI_ALG_HASH in_alg, alg;
    TPM_GET(in, TPM2B_AUTH, &auth, 1);
    TPM_GET(in, UINT16, &in_alg, 2);
    TPM_TRY(tpm_params_done(in));
    const tpm_object *o = c->objects[0];
    TPM_TRY(hmac_key(o, in_alg, 2, &alg));
    trim_auth(&auth);
    tpm_seq *s = seq_alloc(SEQ_HMAC, alg);
    TPM_ENSURE(s, TPM2_RC_MEMORY);
    const TPM2B_SENSITIVE_DATA *k = &o->sens.sensitive.bits;
    static const uint8_t nokey[1];
    if (cf_hmac_new(tpm_hash_alg(alg), k->size ? k->buffer : nokey, k->size, &s->m) != CF_OK) {
        tpm_seq_free(s);
        return TPM2_RC_FAILURE;
    }
    tpm_rc rc = new_sequence(t, c, &auth, s);
    cf_wipe(&auth, sizeof auth);
    return rc;
}

TPM_HANDLER(tpm_cc_hash_sequence_start)
{
    TPM2B_AUTH auth;
    TPMI_ALG_HASH alg;
    TPM_GET(in, TPM2B_AUTH, &auth, 1);
    TPM_GET(in, UINT16, &alg, 2);
    TPM_TRY(tpm_params_done(in));
    TPM_ENSURE(alg == TPM2_ALG_NULL || tpm_pcr_bank_index(alg) >= 0, tpm_rc_p(TPM2_RC_HASH, 2));
    trim_auth(&auth);
    /* TPM_ALG_NULL: an event sequence, hashing with every PCR bank's algorithm */
    tpm_seq *s = seq_alloc(alg == TPM2_ALG_NULL ? SEQ_EVENT : SEQ_HASH, alg);
    TPM_ENSURE(s, TPM2_RC_MEMORY);
    int n = alg == TPM2_ALG_NULL ? TPM_PCR_BANKS : 1;
    for (int i = 0; i < n; i++) {
        TPM2_ALG_ID a = alg == TPM2_ALG_NULL ? tpm_pcr_banks[i] : alg;
        if (cf_digest_new(tpm_hash_alg(a), &s->d[i]) != CF_OK) {
            tpm_seq_free(s);
            return TPM2_RC_FAILURE;
        }
    }
    tpm_rc rc = new_sequence(t, c, &auth, s);
    cf_wipe(&auth, sizeof auth);
    return rc;
}

/* Adds data to every running digest / the HMAC. */
static tpm_rc seq_update(tpm_seq *s, const uint8_t *p, size_t n)
{
    cf_err e = CF_OK;
    if (s->kind == SEQ_HMAC)
        e = cf_hmac_update(s->m, p, n);
    for (int i = 0; i < TPM_PCR_BANKS && e == CF_OK; i++)
        if (s->d[i])
            e = cf_digest_update(s->d[i], p, n);
    return tpm_rc_from_cf(e);
}

TPM_HANDLER(tpm_cc_sequence_update)
{
    (void)t;
    TPM2B_MAX_BUFFER data;
    TPM_GET(in, TPM2B_MAX_BUFFER, &data, 1);
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    TPM_ENSURE(tpm_object_is_sequence(o), tpm_rc_h(TPM2_RC_MODE, 1));
    TPM_ENSURE(data.size <= TPM_INPUT_BUFFER, tpm_rc_p(TPM2_RC_SIZE, 1));
    tpm_seq *s = o->seq;
    if (s->kind == SEQ_HASH && !s->first_seen) {
        s->first_seen = true;
        s->ticket_safe = ticket_safe(&data);
    }
    tpm_rc rc = seq_update(s, data.buffer, data.size);
    cf_wipe(&data, sizeof data);
    return rc;
}

TPM_HANDLER(tpm_cc_sequence_complete)
{
    TPM2B_MAX_BUFFER data;
    TPMI_RH_HIERARCHY hier;
    TPM_GET(in, TPM2B_MAX_BUFFER, &data, 1);
    TPM_GET(in, UINT32, &hier, 2);
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    TPM_ENSURE(tpm_object_is_sequence(o) && o->seq->kind != SEQ_EVENT, tpm_rc_h(TPM2_RC_MODE, 1));
    TPM_ENSURE(data.size <= TPM_INPUT_BUFFER, tpm_rc_p(TPM2_RC_SIZE, 1));
    TPM_ENSURE(tpm_hierarchy_index(hier) >= 0, tpm_rc_p(TPM2_RC_VALUE, 2));
    TPM_ENSURE(tpm_hierarchy_enabled(t, hier), tpm_rc_p(TPM2_RC_HIERARCHY, 2));

    tpm_seq *s = o->seq;
    TPM2B_DIGEST result = { .size = (uint16_t)tpm_hash_size(s->alg) };
    TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL };
    tpm_rc rc = seq_update(s, data.buffer, data.size);
    size_t len = sizeof result.buffer;
    if (rc == TPM2_RC_SUCCESS)
        rc = tpm_rc_from_cf(s->kind == SEQ_HMAC ? cf_hmac_final(s->m, result.buffer, &len)
                                                : cf_digest_final(s->d[0], result.buffer, &len));
    if (rc == TPM2_RC_SUCCESS && s->kind == SEQ_HASH) {
        bool safe = s->first_seen ? s->ticket_safe : ticket_safe(&data);
        if (hier != TPM2_RH_NULL && safe) {
            ticket.hierarchy = hier;
            rc = tpm_ticket(t, TPM2_ST_HASHCHECK, hier, result.buffer, result.size, NULL, 0, &ticket.digest);
        }
    }
    cf_wipe(&data, sizeof data);
    if (rc != TPM2_RC_SUCCESS) {
        /* the digest context is spent: nothing sensible is left to continue */
        tpm_object_clear(o);
        return rc;
    }
    TPM_PUT(out, TPM2B_DIGEST, &result);
    TPM_PUT(out, TPMT_TK_HASHCHECK, &ticket);
    tpm_object_clear(o);   /* TPMA_CC flushed */
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_event_sequence_complete)
{
    TPM2B_MAX_BUFFER data;
    TPM_GET(in, TPM2B_MAX_BUFFER, &data, 1);
    TPM_TRY(tpm_params_done(in));
    TPM2_HANDLE pcr = c->handles[0];
    tpm_object *o = c->objects[1];
    TPM_ENSURE(tpm_object_is_sequence(o) && o->seq->kind == SEQ_EVENT, tpm_rc_h(TPM2_RC_MODE, 2));
    TPM_ENSURE(data.size <= TPM_INPUT_BUFFER, tpm_rc_p(TPM2_RC_SIZE, 1));
    if (pcr != TPM2_RH_NULL)
        TPM_ENSURE(c->locality < 5 && (tpm_pcr_extend_localities(pcr) >> c->locality) & 1, TPM2_RC_LOCALITY);

    tpm_seq *s = o->seq;
    TPML_DIGEST_VALUES res = { .count = TPM_PCR_BANKS };
    tpm_rc rc = seq_update(s, data.buffer, data.size);
    for (int b = 0; b < TPM_PCR_BANKS && rc == TPM2_RC_SUCCESS; b++) {
        size_t len = sizeof res.digests[b].digest;
        res.digests[b].hashAlg = tpm_pcr_banks[b];
        rc = tpm_rc_from_cf(cf_digest_final(s->d[b], (uint8_t *)&res.digests[b].digest, &len));
    }
    cf_wipe(&data, sizeof data);
    tpm_object_clear(o);   /* TPMA_CC flushed, on failure too: the digests are spent */
    TPM_TRY(rc);
    if (pcr != TPM2_RH_NULL) {
        tpm_pcr_extend_digests(t, pcr, &res);
    }
    TPM_PUT(out, TPML_DIGEST_VALUES, &res);
    return TPM2_RC_SUCCESS;
}
