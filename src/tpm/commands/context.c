/* context.c: Part 3 sections 28.2 (ContextSave) and 28.3 (ContextLoad) for transient objects.
 *
 * The saved areas of an object (encrypted and integrity-protected by protect.c, Part 1 section 30):
 *   TPM2B_PUBLIC, u8 publicOnly, [TPM2B_SENSITIVE unless publicOnly], TPM2B_NAME qualifiedName.
 * savedHandle is 0x80000000, or 0x80000002 for an stClear object (Part 2 section 14.1); sequence is
 * a counter of this TPM. Any client that talks to the same TPM can load the blob until the next
 * TPM Reset (or, for stClear objects, TPM Restart). Session contexts are session_context.c's;
 * sequence objects are not saved yet (TPM_RC_HANDLE). */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define SAVED_OBJECT TPM_TRANSIENT_FIRST
#define SAVED_STCLEAR_OBJECT (TPM_TRANSIENT_FIRST + 2)

TPM_HANDLER(tpm_cc_context_save)
{
    TPM_TRY(tpm_params_done(in));
    if ((c->handles[0] >> 24) == TPM2_HT_HMAC_SESSION || (c->handles[0] >> 24) == TPM2_HT_POLICY_SESSION)
        return tpm_session_context_save(t, c->handles[0], out);   /* session_context.c */
    const tpm_object *o = c->objects[0];
    TPM_ENSURE(o, tpm_rc_h(TPM2_RC_HANDLE, 1));
    /* a hash / HMAC sequence (commands/sequence.c) keeps its state outside the object's areas:
     * not saved yet */
    TPM_ENSURE(!tpm_object_is_sequence(o), tpm_rc_h(TPM2_RC_HANDLE, 1));

    uint8_t plain[TPM2_MAX_CONTEXT_SIZE];
    cf_writer w = cf_writer_fixed(plain, sizeof plain);
    TPM2B_PUBLIC pub = { .publicArea = o->pub };
    TPM_PUT(&w, TPM2B_PUBLIC, &pub);
    cf_put_u8(&w, o->public_only);
    if (!o->public_only) {
        TPM2B_SENSITIVE sens = { .sensitiveArea = o->sens };
        TPM_PUT(&w, TPM2B_SENSITIVE, &sens);
        cf_wipe(&sens, sizeof sens);
    }
    TPM_PUT(&w, TPM2B_NAME, &o->qname);
    tpm_rc rc = cf_writer_status(&w) == CF_OK ? TPM2_RC_SUCCESS : TPM2_RC_FAILURE;
    TPMS_CONTEXT ctx;
    memset(&ctx, 0, sizeof ctx);
    if (rc == TPM2_RC_SUCCESS) {
        ctx.sequence = ++t->context_seq;
        ctx.savedHandle = (o->pub.objectAttributes & TPMA_OBJECT_STCLEAR) ? SAVED_STCLEAR_OBJECT : SAVED_OBJECT;
        ctx.hierarchy = o->hierarchy;
        rc = tpm_context_protect(t, &ctx, plain, w.len);
    }
    if (rc == TPM2_RC_SUCCESS)
        TPM_PUT(out, TPMS_CONTEXT, &ctx);
    cf_wipe(plain, sizeof plain);
    return rc;
}

TPM_HANDLER(tpm_cc_context_load)
{
    TPMS_CONTEXT ctx;
    TPM_GET(in, TPMS_CONTEXT, &ctx, 1);
    TPM_TRY(tpm_params_done(in));
    if ((ctx.savedHandle >> 24) == TPM2_HT_HMAC_SESSION || (ctx.savedHandle >> 24) == TPM2_HT_POLICY_SESSION)
        return tpm_session_context_load(t, &ctx, &c->r_handle);   /* session_context.c */
    TPM_ENSURE(ctx.savedHandle == SAVED_OBJECT || ctx.savedHandle == SAVED_STCLEAR_OBJECT,
               tpm_rc_p(TPM2_RC_HANDLE, 1));
    TPM_ENSURE(tpm_hierarchy_index(ctx.hierarchy) >= 0, tpm_rc_p(TPM2_RC_VALUE, 1));
    TPM_ENSURE(tpm_hierarchy_enabled(t, ctx.hierarchy), tpm_rc_p(TPM2_RC_HIERARCHY, 1));
    TPM2_HANDLE handle;
    tpm_object *slot = tpm_object_free_slot(t, &handle);
    TPM_ENSURE(slot, TPM2_RC_OBJECT_MEMORY);

    uint8_t plain[TPM2_MAX_CONTEXT_SIZE];
    size_t n = sizeof plain;
    tpm_object o;
    memset(&o, 0, sizeof o);
    tpm_rc rc = tpm_context_unprotect(t, &ctx, plain, &n);
    TPM_CHECK(rc == TPM2_RC_SUCCESS, tpm_rc_p(rc, 1));
    /* past the integrity check the areas are the TPM's own: a failure here is TPM_RC_SENSITIVE */
    cf_reader r = cf_reader_init(plain, n);
    TPM2B_PUBLIC pub;
    TPM2B_SENSITIVE sens;
    uint8_t public_only;
    memset(&pub, 0, sizeof pub);   /* libtss2-mu: a sized structure's size must start at zero */
    memset(&sens, 0, sizeof sens);
    TPM_CHECK(tpm_get(&r, TPM_UNMARSHAL(TPM2B_PUBLIC), &pub) == TPM2_RC_SUCCESS
              && cf_get_u8(&r, &public_only) == CF_OK && public_only <= 1
              && (public_only || tpm_get(&r, TPM_UNMARSHAL(TPM2B_SENSITIVE), &sens) == TPM2_RC_SUCCESS)
              && tpm_get(&r, TPM_UNMARSHAL(TPM2B_NAME), &o.qname) == TPM2_RC_SUCCESS && cf_reader_done(&r),
              TPM2_RC_SENSITIVE);
    o.pub = pub.publicArea;
    o.public_only = public_only;
    o.sens = sens.sensitiveArea;
    cf_wipe(&sens, sizeof sens);
    TPM_CHECK(((o.pub.objectAttributes & TPMA_OBJECT_STCLEAR) != 0) == (ctx.savedHandle == SAVED_STCLEAR_OBJECT),
              TPM2_RC_SENSITIVE);
    TPM_GUARD(tpm_object_build(&o));
    o.used = true;
    o.handle = handle;
    o.hierarchy = ctx.hierarchy;
    *slot = o;
    memset(&o, 0, sizeof o);
    c->r_handle = handle;
out:
    if (o.key)
        tpm_object_clear(&o);
    cf_wipe(&o, sizeof o);
    cf_wipe(plain, sizeof plain);
    return rc;
}
