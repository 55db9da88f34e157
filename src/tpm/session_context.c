/* session_context.c: ContextSave / ContextLoad of HMAC and policy sessions (Part 1 section 30,
 * Part 3 sections 28.2-28.3), which tpm2-tools rely on (a session started by one tool process is
 * saved to a file and loaded by the next).
 *
 * A saved session keeps its slot and handle (it stays active, not loaded); the blob holds its state
 * and is protected by tpm_context_protect under the null hierarchy's proof, so it dies with a TPM
 * Reset. The slot remembers the sequence number of the save: only that blob loads it, once (a
 * replayed older blob gives TPM_RC_HANDLE), as Part 1 section 30.5 asks. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define SESSION_BLOB_VERSION 2   /* 2: commandCode, cpHash, start time, timeout */

static void put_session(cf_writer *w, const tpm_session *s)
{
    cf_put_u8(w, SESSION_BLOB_VERSION);
    cf_put_u8(w, s->type);
    cf_put_u16(w, s->auth_hash);
    TPM_PUT(w, TPMT_SYM_DEF, &s->symmetric);
    tpm_put_2b(w, s->nonce_tpm.buffer, s->nonce_tpm.size);
    tpm_put_2b(w, s->session_key.buffer, s->session_key.size);
    cf_put_u8(w, s->bound);
    tpm_put_2b(w, s->bind_name.name, s->bind_name.size);
    tpm_put_2b(w, s->bind_auth.buffer, s->bind_auth.size);
    tpm_put_2b(w, s->policy_digest.buffer, s->policy_digest.size);
    cf_put_u8(w, s->pcr_checked);
    cf_put_u32(w, s->pcr_counter);
    cf_put_u8(w, s->auth_value_needed);
    cf_put_u8(w, s->password_needed);
    cf_put_u32(w, s->command_code);
    tpm_put_2b(w, s->cp_hash.buffer, s->cp_hash.size);
    cf_put_u64(w, s->start_time);
    cf_put_u64(w, s->timeout);
}

static bool get_flag(cf_reader *r, bool *v)
{
    uint8_t b;
    if (cf_get_u8(r, &b) != CF_OK || b > 1)
        return false;
    *v = b;
    return true;
}

static bool get_session(cf_reader *r, tpm_session *s)
{
    uint8_t ver, type;
    return cf_get_u8(r, &ver) == CF_OK && ver == SESSION_BLOB_VERSION && cf_get_u8(r, &type) == CF_OK
           && (s->type = (TPM2_SE)type, true) && cf_get_u16(r, &s->auth_hash) == CF_OK
           && tpm_get(r, TPM_UNMARSHAL(TPMT_SYM_DEF), &s->symmetric) == TPM2_RC_SUCCESS
           && tpm_get(r, TPM_UNMARSHAL(TPM2B_NONCE), &s->nonce_tpm) == TPM2_RC_SUCCESS
           && tpm_get(r, TPM_UNMARSHAL(TPM2B_DIGEST), &s->session_key) == TPM2_RC_SUCCESS
           && get_flag(r, &s->bound) && tpm_get(r, TPM_UNMARSHAL(TPM2B_NAME), &s->bind_name) == TPM2_RC_SUCCESS
           && tpm_get(r, TPM_UNMARSHAL(TPM2B_AUTH), &s->bind_auth) == TPM2_RC_SUCCESS
           && tpm_get(r, TPM_UNMARSHAL(TPM2B_DIGEST), &s->policy_digest) == TPM2_RC_SUCCESS
           && get_flag(r, &s->pcr_checked) && cf_get_u32(r, &s->pcr_counter) == CF_OK
           && get_flag(r, &s->auth_value_needed) && get_flag(r, &s->password_needed)
           && cf_get_u32(r, &s->command_code) == CF_OK
           && tpm_get(r, TPM_UNMARSHAL(TPM2B_DIGEST), &s->cp_hash) == TPM2_RC_SUCCESS
           && cf_get_u64(r, &s->start_time) == CF_OK && cf_get_u64(r, &s->timeout) == CF_OK && cf_reader_done(r)
           && tpm_hash_size(s->auth_hash) > 0;
}

tpm_rc tpm_session_context_save(tpm_instance *t, TPM2_HANDLE h, cf_writer *out)
{
    tpm_session *s = tpm_session_find(t, h);
    TPM_ENSURE(s, tpm_rc_h(TPM2_RC_HANDLE, 1));
    uint8_t plain[512];
    cf_writer w = cf_writer_fixed(plain, sizeof plain);
    put_session(&w, s);
    tpm_rc rc = cf_writer_status(&w) == CF_OK ? TPM2_RC_SUCCESS : TPM2_RC_FAILURE;
    TPMS_CONTEXT ctx;
    memset(&ctx, 0, sizeof ctx);
    if (rc == TPM2_RC_SUCCESS) {
        ctx.sequence = ++t->context_seq;
        ctx.savedHandle = h;
        ctx.hierarchy = TPM2_RH_NULL;
        rc = tpm_context_protect(t, &ctx, plain, w.len);
    }
    if (rc == TPM2_RC_SUCCESS) {
        TPM_PUT(out, TPMS_CONTEXT, &ctx);
        s->saved = true;
        s->saved_seq = ctx.sequence;
    }
    cf_wipe(plain, sizeof plain);
    return rc;
}

tpm_rc tpm_session_context_load(tpm_instance *t, const TPMS_CONTEXT *ctx, TPM2_HANDLE *h)
{
    TPM_ENSURE(ctx->hierarchy == TPM2_RH_NULL, tpm_rc_p(TPM2_RC_HIERARCHY, 1));
    tpm_session *slot = NULL;
    for (size_t i = 0; i < TPM_SESSION_SLOTS && !slot; i++)
        if (t->sessions[i].used && t->sessions[i].saved && t->sessions[i].handle == ctx->savedHandle)
            slot = &t->sessions[i];
    TPM_ENSURE(slot && slot->saved_seq == ctx->sequence, tpm_rc_p(TPM2_RC_HANDLE, 1));
    uint8_t plain[TPM2_MAX_CONTEXT_SIZE];
    size_t n = sizeof plain;
    tpm_rc rc = tpm_context_unprotect(t, ctx, plain, &n);
    TPM_ENSURE(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 1));
    tpm_session s;
    memset(&s, 0, sizeof s);
    cf_reader r = cf_reader_init(plain, n);
    bool ok = get_session(&r, &s);
    cf_wipe(plain, sizeof plain);
    if (!ok) {
        cf_wipe(&s, sizeof s);
        return TPM2_RC_SENSITIVE;   /* past the integrity check: the TPM's own bytes */
    }
    s.used = true;
    s.handle = ctx->savedHandle;
    *slot = s;
    cf_wipe(&s, sizeof s);
    *h = ctx->savedHandle;
    return TPM2_RC_SUCCESS;
}
