/* engine.c: tpm_execute, the one entry point of a command (Part 1 section 18, Part 3 section 5):
 * header, command lookup, handle area, authorization area, handler, response. Every error gives a
 * 10-byte response and leaves the state as it was (handlers validate before they change anything;
 * only dictionary-attack counting sticks, on purpose). */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define HEADER 10
/* nv.clock is written at least this often (the reference TPM's CLOCK_UPDATE_INTERVAL is 2^22 ms) */
#define CLOCK_PERSIST_MS (1u << 22)

static size_t error_response(uint8_t *resp, size_t cap, TPM2_ST tag, tpm_rc rc)
{
    cf_writer w = cf_writer_fixed(resp, cap);
    cf_put_u16(&w, tag);
    cf_put_u32(&w, HEADER);
    cf_put_u32(&w, rc);
    return cf_writer_status(&w) == CF_OK ? HEADER : 0;
}

tpm_rc tpm_state_commit(tpm_instance *t)
{
    if (!t->nv_dirty && t->nv.clock - t->clock_saved < CLOCK_PERSIST_MS)
        return TPM2_RC_SUCCESS;
    t->nv_dirty = false;
    t->clock_saved = t->nv.clock;
    if (!t->persist)
        return TPM2_RC_SUCCESS;
    cf_writer w = cf_writer_heap();
    cf_err e = tpm_state_serialize(t, &w);
    if (e == CF_OK)
        e = t->persist(t->persist_ctx, w.p, w.len);
    cf_writer_free(&w);
    return e == CF_OK ? TPM2_RC_SUCCESS : TPM2_RC_NV_UNAVAILABLE;
}

/* Checks one handle of the handle area against what the command allows (handle number n). */
static tpm_rc check_handle(tpm_instance *t, tpm_cmd *c, unsigned i)
{
    TPM2_HANDLE h = c->handles[i];
    unsigned n = i + 1;
    switch (c->def->kinds[i]) {
    case TPM_HK_OBJECT: {
        uint8_t type = (uint8_t)(h >> 24);
        TPM_ENSURE(type == TPM2_HT_TRANSIENT || type == TPM2_HT_PERSISTENT, tpm_rc_h(TPM2_RC_VALUE, n));
        c->objects[i] = tpm_object_find(t, h);
        TPM_ENSURE(c->objects[i], tpm_rc_h(TPM2_RC_HANDLE, n));
        return TPM2_RC_SUCCESS;
    }
    case TPM_HK_HIERARCHY:
        TPM_ENSURE(tpm_hierarchy_index(h) >= 0, tpm_rc_h(TPM2_RC_VALUE, n));
        TPM_ENSURE(tpm_hierarchy_enabled(t, h), tpm_rc_h(TPM2_RC_HIERARCHY, n));
        return TPM2_RC_SUCCESS;
    case TPM_HK_PCR:
        TPM_ENSURE(h < TPM_PCR_COUNT || h == TPM2_RH_NULL, tpm_rc_h(TPM2_RC_VALUE, n));
        return TPM2_RC_SUCCESS;
    case TPM_HK_OBJECT_NULL:
    case TPM_HK_ENTITY: {
        uint8_t type = (uint8_t)(h >> 24);
        if (h == TPM2_RH_NULL)
            return TPM2_RC_SUCCESS;
        if (type == TPM2_HT_TRANSIENT || type == TPM2_HT_PERSISTENT) {
            c->objects[i] = tpm_object_find(t, h);
            TPM_ENSURE(c->objects[i], tpm_rc_h(TPM2_RC_HANDLE, n));
            return TPM2_RC_SUCCESS;
        }
        TPM_ENSURE(c->def->kinds[i] == TPM_HK_ENTITY, tpm_rc_h(TPM2_RC_VALUE, n));
        if (h < TPM_PCR_COUNT || h == TPM2_RH_LOCKOUT)
            return TPM2_RC_SUCCESS;
        TPM_ENSURE(tpm_hierarchy_index(h) >= 0, tpm_rc_h(TPM2_RC_VALUE, n));
        TPM_ENSURE(tpm_hierarchy_enabled(t, h), tpm_rc_h(TPM2_RC_HIERARCHY, n));
        return TPM2_RC_SUCCESS;
    }
    case TPM_HK_POLICY_SESSION:
        TPM_ENSURE((h >> 24) == TPM2_HT_POLICY_SESSION, tpm_rc_h(TPM2_RC_VALUE, n));
        TPM_ENSURE(tpm_session_find(t, h), tpm_rc_h(TPM2_RC_HANDLE, n));
        return TPM2_RC_SUCCESS;
    case TPM_HK_HIERARCHY_AUTH:
    case TPM_HK_CLEAR:
    case TPM_HK_LOCKOUT: {
        /* TPMI_RH_HIERARCHY_AUTH / TPMI_RH_CLEAR / TPMI_RH_LOCKOUT (Part 2 section 9.5) */
        tpm_handle_kind k = c->def->kinds[i];
        bool ok = h == TPM2_RH_LOCKOUT
                  || (k != TPM_HK_LOCKOUT && h == TPM2_RH_PLATFORM)
                  || (k == TPM_HK_HIERARCHY_AUTH && (h == TPM2_RH_OWNER || h == TPM2_RH_ENDORSEMENT));
        TPM_ENSURE(ok, tpm_rc_h(TPM2_RC_VALUE, n));
        TPM_ENSURE(h == TPM2_RH_LOCKOUT || tpm_hierarchy_enabled(t, h), tpm_rc_h(TPM2_RC_HIERARCHY, n));
        return TPM2_RC_SUCCESS;
    }
    case TPM_HK_PARENT:   /* TPMI_DH_PARENT: a hierarchy (then objects[i] stays NULL) or an object */
        if (tpm_hierarchy_index(h) >= 0) {
            TPM_ENSURE(tpm_hierarchy_enabled(t, h), tpm_rc_h(TPM2_RC_HIERARCHY, n));
            return TPM2_RC_SUCCESS;
        }
        TPM_ENSURE((h >> 24) == TPM2_HT_TRANSIENT || (h >> 24) == TPM2_HT_PERSISTENT, tpm_rc_h(TPM2_RC_VALUE, n));
        c->objects[i] = tpm_object_find(t, h);
        TPM_ENSURE(c->objects[i], tpm_rc_h(TPM2_RC_HANDLE, n));
        return TPM2_RC_SUCCESS;
    case TPM_HK_CONTEXT:  /* TPMI_DH_CONTEXT: a transient object, or a session (the handler decides) */
        if ((h >> 24) == TPM2_HT_HMAC_SESSION || (h >> 24) == TPM2_HT_POLICY_SESSION)
            return TPM2_RC_SUCCESS;
        TPM_ENSURE((h >> 24) == TPM2_HT_TRANSIENT, tpm_rc_h(TPM2_RC_VALUE, n));
        c->objects[i] = tpm_object_find(t, h);
        TPM_ENSURE(c->objects[i], tpm_rc_h(TPM2_RC_HANDLE, n));
        return TPM2_RC_SUCCESS;
    case TPM_HK_NONE:
        break;
    }
    return tpm_rc_h(TPM2_RC_VALUE, n);
}

/* Everything up to the handler. */
static tpm_rc prepare(tpm_instance *t, tpm_cmd *c, cf_reader *r, const uint8_t *cmd, size_t len)
{
    uint32_t size;
    if (cf_get_u16(r, &c->tag) != CF_OK || cf_get_u32(r, &size) != CF_OK || cf_get_u32(r, &c->cc) != CF_OK)
        return TPM2_RC_COMMAND_SIZE;
    TPM_ENSURE(c->tag == TPM2_ST_NO_SESSIONS || c->tag == TPM2_ST_SESSIONS, TPM2_RC_BAD_TAG);
    TPM_ENSURE(size == len && size <= TPM_MAX_COMMAND_SIZE, TPM2_RC_COMMAND_SIZE);
    c->def = tpm_command_find(c->cc);
    TPM_ENSURE(c->def, TPM2_RC_COMMAND_CODE);
    TPM_ENSURE(t->started || c->cc == TPM2_CC_Startup, TPM2_RC_INITIALIZE);

    for (unsigned i = 0; i < c->def->n_handles; i++) {
        if (cf_get_u32(r, &c->handles[i]) != CF_OK)
            return tpm_rc_h(TPM2_RC_INSUFFICIENT, i + 1);
        TPM_TRY(check_handle(t, c, i));
    }
    if (c->tag == TPM2_ST_SESSIONS) {
        TPM_TRY(tpm_sessions_parse(c, r));
    } else if (c->def->n_auth > 0) {
        return TPM2_RC_AUTH_MISSING;   /* reference TPM: CheckAuthNoSession */
    }
    c->params = cmd + r->off;
    c->params_len = cf_reader_left(r);
    return tpm_sessions_check(t, c);
}

size_t tpm_execute(tpm_instance *t, uint8_t locality, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap)
{
    if (!t || !resp || cap < HEADER)
        return 0;
    if (!cmd)
        len = 0;
    if (!t->powered)
        return error_response(resp, cap, TPM2_ST_NO_SESSIONS, TPM2_RC_FAILURE);
    tpm_clock_update(t);

    tpm_cmd c;
    memset(&c, 0, sizeof c);
    c.locality = locality;
    cf_reader r = cf_reader_init(cmd, len);
    tpm_rc rc = prepare(t, &c, &r, cmd, len);
    if (rc == TPM2_RC_BAD_TAG) {
        /* a TPM 1.2 style command: answered with TPM_ST_RSP_COMMAND (Part 1 section 18.2) */
        return error_response(resp, cap, TPM2_ST_RSP_COMMAND, rc);
    }
    if (rc != TPM2_RC_SUCCESS) {
        (void)tpm_state_commit(t);   /* dictionary-attack counts stick */
        return error_response(resp, cap, TPM2_ST_NO_SESSIONS, rc);
    }

    uint8_t params[TPM_MAX_RESPONSE_SIZE];
    cf_writer pw = cf_writer_fixed(params, sizeof params);
    cf_reader in = cf_reader_init(c.params, c.params_len);
    rc = c.def->fn(t, &c, &in, &pw);
    if (rc == TPM2_RC_SUCCESS && cf_writer_status(&pw) != CF_OK)
        rc = TPM2_RC_FAILURE;
    if (rc == TPM2_RC_SUCCESS && c.tag == TPM2_ST_SESSIONS)
        rc = tpm_sessions_encrypt_response(t, &c, params, pw.len);   /* nonces, then `encrypt` */
    if (rc == TPM2_RC_SUCCESS)
        rc = tpm_state_commit(t);
    else
        (void)tpm_state_commit(t);
    if (rc != TPM2_RC_SUCCESS) {
        cf_wipe(params, pw.len < sizeof params ? pw.len : sizeof params);
        return error_response(resp, cap, TPM2_ST_NO_SESSIONS, rc);
    }

    cf_writer w = cf_writer_fixed(resp, cap);
    cf_put_u16(&w, c.tag);
    cf_put_u32(&w, 0);   /* size, patched below */
    cf_put_u32(&w, TPM2_RC_SUCCESS);
    if (c.def->r_handle)
        cf_put_u32(&w, c.r_handle);
    if (c.tag == TPM2_ST_SESSIONS)
        cf_put_u32(&w, (uint32_t)pw.len);
    cf_put_bytes(&w, params, pw.len);
    if (c.tag == TPM2_ST_SESSIONS)
        tpm_sessions_respond(t, &c, params, pw.len, &w);
    cf_wipe(params, pw.len);
    if (cf_writer_status(&w) != CF_OK)
        return error_response(resp, cap, TPM2_ST_NO_SESSIONS, TPM2_RC_FAILURE);
    uint32_t total = (uint32_t)w.len;
    resp[2] = (uint8_t)(total >> 24);
    resp[3] = (uint8_t)(total >> 16);
    resp[4] = (uint8_t)(total >> 8);
    resp[5] = (uint8_t)total;
    return w.len;
}
