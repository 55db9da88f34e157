/* session.c: the authorization area (Part 1 section 19, Part 3 section 5.6) and dictionary-attack
 * protection (Part 1 section 19.8).
 *
 * This step knows password authorizations (TPM_RS_PW) only. HMAC and policy session handles are
 * parsed and refused with TPM_RC_REFERENCE_S0 + n ("that session is not loaded"), which is what a
 * TPM answers for a session it does not hold; with StartAuthSession they become real:
 *   - a session table (slots with handle 0x02xxxxxx / 0x03xxxxxx, hash, nonceTPM, sessionKey,
 *     bind entity, policyDigest, attributes) lives in the volatile part of tpm_instance;
 *   - tpm_sessions_check computes cpHash = H(commandCode || names of the handles || parameters)
 *     from c->cc, the handles' names and c->params / c->params_len (left untouched by the engine
 *     for exactly this), checks each HMAC session's HMAC with the entity's authValue (or the bind
 *     rule), checks policy sessions' policyDigest against the entity's authPolicy, and decrypts
 *     the first parameter in place when a session has `decrypt` (the parameter area is then copied
 *     into a scratch buffer before the handler sees it);
 *   - tpm_sessions_respond computes rpHash = H(responseCode || commandCode || parameters), rolls
 *     nonceTPM, encrypts the first response parameter for an `encrypt` session, and writes each
 *     session's nonce, attributes and response HMAC.
 * The DA rules below apply unchanged to HMAC sessions. */
#include <string.h>
#include "tpm/internal.h"

tpm_rc tpm_sessions_parse(tpm_cmd *c, cf_reader *r)
{
    cf_reader area;
    uint32_t auth_size;
    size_t start = r->off;
    if (cf_get_u32(r, &auth_size) != CF_OK)
        return TPM2_RC_AUTHSIZE;
    r->off = start;
    /* smallest session: handle, empty nonce, attributes, empty hmac */
    TPM_ENSURE(auth_size >= 9, TPM2_RC_AUTHSIZE);
    if (cf_get_sized32(r, &area) != CF_OK)
        return TPM2_RC_AUTHSIZE;
    c->n_sessions = 0;
    while (!cf_reader_done(&area)) {
        TPM_ENSURE(c->n_sessions < TPM_MAX_SESSIONS, TPM2_RC_AUTHSIZE);
        unsigned n = c->n_sessions + 1;
        tpm_session_in *s = &c->sessions[c->n_sessions];
        if (cf_get_u32(&area, &s->handle) != CF_OK)
            return TPM2_RC_AUTHSIZE;
        tpm_rc rc = tpm_get(&area, TPM_UNMARSHAL(TPM2B_NONCE), &s->nonce);
        if (rc == TPM2_RC_SUCCESS)
            rc = cf_get_u8(&area, &s->attrs) == CF_OK ? TPM2_RC_SUCCESS : TPM2_RC_INSUFFICIENT;
        if (rc == TPM2_RC_SUCCESS)
            rc = tpm_get(&area, TPM_UNMARSHAL(TPM2B_AUTH), &s->hmac);
        if (rc == TPM2_RC_INSUFFICIENT)
            return TPM2_RC_AUTHSIZE;
        if (rc != TPM2_RC_SUCCESS)
            return tpm_rc_s(rc, n);
        c->n_sessions++;
    }
    TPM_ENSURE(c->n_sessions >= c->def->n_auth, TPM2_RC_AUTH_MISSING);
    return TPM2_RC_SUCCESS;
}

/* ---- dictionary attack ------------------------------------------------------------------- */
/* Objects are DA-protected unless noDA; hierarchies and PCRs never are; lockoutAuth has its own
 * rule (one failure locks it for lockoutRecovery). */
static bool da_protected(const tpm_cmd *c, unsigned i)
{
    const tpm_object *o = c->objects[i];
    return o && !(o->pub.objectAttributes & TPMA_OBJECT_NODA);
}

/* Time-based recovery: failedTries drops by one every recoveryTime seconds of Clock; lockoutAuth
 * unlocks after lockoutRecovery seconds (never, until a TPM Reset, when that is 0). */
static void da_recover(tpm_instance *t)
{
    tpm_persistent *nv = &t->nv;
    if (nv->failed_tries > 0 && nv->recovery_time > 0) {
        uint64_t period = (uint64_t)nv->recovery_time * 1000u;
        uint64_t n = (nv->clock - nv->last_da_decrement) / period;
        if (n > 0) {
            nv->failed_tries = n >= nv->failed_tries ? 0 : nv->failed_tries - (uint32_t)n;
            nv->last_da_decrement += n * period;
            t->nv_dirty = true;
        }
    }
    if (nv->lockout_locked && nv->lockout_recovery > 0
        && nv->clock - nv->lockout_locked_at >= (uint64_t)nv->lockout_recovery * 1000u) {
        nv->lockout_locked = false;
        t->nv_dirty = true;
    }
}

static bool in_lockout(const tpm_persistent *nv)
{
    return nv->recovery_time > 0 && nv->failed_tries >= nv->max_tries;
}

static void da_failure(tpm_instance *t)
{
    tpm_persistent *nv = &t->nv;
    if (nv->recovery_time == 0)
        return;   /* DA protection disabled */
    if (nv->failed_tries == 0)
        nv->last_da_decrement = nv->clock;
    if (nv->failed_tries < UINT32_MAX)
        nv->failed_tries++;
    t->nv_dirty = true;
}

/* Password comparison per Part 1 section 19.6.4: trailing zero octets do not count. */
static bool password_ok(const TPM2B_AUTH *given, const TPM2B_AUTH *auth)
{
    size_t a = given->size, b = auth->size;
    while (a > 0 && given->buffer[a - 1] == 0)
        a--;
    while (b > 0 && auth->buffer[b - 1] == 0)
        b--;
    if (a != b)
        return false;
    return a == 0 || cf_ct_equal(given->buffer, auth->buffer, a);
}

tpm_rc tpm_entity_auth(tpm_instance *t, TPM2_HANDLE h, tpm_object *o, TPM2B_AUTH *auth)
{
    memset(auth, 0, sizeof *auth);
    if (o) {
        *auth = o->sens.authValue;
        return TPM2_RC_SUCCESS;
    }
    if (h < TPM_PCR_COUNT || h == TPM2_RH_NULL)
        return TPM2_RC_SUCCESS;   /* PCR authValues are empty (no PCR_SetAuthValue here) */
    if (h == TPM2_RH_LOCKOUT) {
        *auth = t->nv.lockout_auth;
        return TPM2_RC_SUCCESS;
    }
    const tpm_hierarchy *hi = tpm_hierarchy_get(t, h);
    TPM_ENSURE(hi, TPM2_RC_HANDLE);
    *auth = hi->auth;
    return TPM2_RC_SUCCESS;
}

static tpm_rc check_password(tpm_instance *t, tpm_cmd *c, unsigned i)
{
    const tpm_session_in *s = &c->sessions[i];
    unsigned n = i + 1;
    TPM2_HANDLE h = c->handles[i];
    tpm_object *o = c->objects[i];
    TPM_ENSURE(s->nonce.size == 0, tpm_rc_s(TPM2_RC_NONCE, n));
    TPM_ENSURE((s->attrs & ~TPMA_SESSION_CONTINUESESSION) == 0, tpm_rc_s(TPM2_RC_ATTRIBUTES, n));
    /* all object commands of this step are USER role (Part 1 section 19.2) */
    if (o && !(o->pub.objectAttributes & TPMA_OBJECT_USERWITHAUTH))
        return TPM2_RC_AUTH_UNAVAILABLE;

    bool da = da_protected(c, i);
    if (da && in_lockout(&t->nv))
        return TPM2_RC_LOCKOUT;
    if (h == TPM2_RH_LOCKOUT && t->nv.lockout_locked)
        return TPM2_RC_LOCKOUT;

    TPM2B_AUTH auth;
    TPM_TRY(tpm_entity_auth(t, h, o, &auth));
    bool ok = password_ok(&s->hmac, &auth);
    memset(&auth, 0, sizeof auth);
    if (ok)
        return TPM2_RC_SUCCESS;
    if (h == TPM2_RH_LOCKOUT) {
        t->nv.lockout_locked = true;
        t->nv.lockout_locked_at = t->nv.clock;
        t->nv_dirty = true;
        return tpm_rc_s(TPM2_RC_AUTH_FAIL, n);
    }
    if (da) {
        da_failure(t);
        return tpm_rc_s(TPM2_RC_AUTH_FAIL, n);
    }
    return tpm_rc_s(TPM2_RC_BAD_AUTH, n);
}

tpm_rc tpm_sessions_check(tpm_instance *t, tpm_cmd *c)
{
    da_recover(t);
    for (unsigned i = 0; i < c->n_sessions; i++) {
        TPM2_HANDLE sh = c->sessions[i].handle;
        uint8_t type = (uint8_t)(sh >> 24);
        if (sh == TPM2_RS_PW) {
            /* a password session authorizes a handle; it cannot audit or encrypt */
            TPM_ENSURE(i < c->def->n_auth, tpm_rc_s(TPM2_RC_HANDLE, i + 1));
            continue;
        }
        if (type == TPM2_HT_HMAC_SESSION || type == TPM2_HT_POLICY_SESSION)
            return TPM2_RC_REFERENCE_S0 + i;   /* no session is loaded: StartAuthSession comes next */
        return tpm_rc_s(TPM2_RC_VALUE, i + 1);
    }
    for (unsigned i = 0; i < c->def->n_auth; i++)
        TPM_TRY(check_password(t, c, i));
    return TPM2_RC_SUCCESS;
}

void tpm_sessions_respond(tpm_instance *t, tpm_cmd *c, const uint8_t *rparams, size_t rlen, cf_writer *w)
{
    (void)t;
    (void)rparams;
    (void)rlen;
    for (unsigned i = 0; i < c->n_sessions; i++) {
        /* password: empty nonce, the attributes as given, empty hmac (Part 1 section 19.6.4) */
        cf_put_u16(w, 0);
        cf_put_u8(w, c->sessions[i].attrs);
        cf_put_u16(w, 0);
    }
}
