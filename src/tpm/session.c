/* session.c: the authorization area (Part 1 section 19, Part 3 section 5.6), HMAC and policy
 * sessions at use time, parameter encryption (Part 1 section 21), and dictionary-attack protection
 * (Part 1 section 19.8). StartAuthSession and the policy commands are in commands/session.c.
 *
 * Per command:
 *   tpm_sessions_parse   the authorization area into c->sessions;
 *   tpm_sessions_check   resolves each session handle to a loaded session, checks the attributes
 *                        (one decrypt and one encrypt session at most, only where the command
 *                        table says the first parameter is a TPM2B; no audit), authorizes the
 *                        first def->n_auth handles (password, HMAC over cpHash, or policy digest
 *                        against the entity's authPolicy), checks the HMAC of sessions that
 *                        authorize nothing, and decrypts the first parameter into c->params_buf;
 *   tpm_sessions_encrypt_response (after the handler succeeded) rolls nonceTPM and encrypts the
 *                        first response parameter for an `encrypt` session;
 *   tpm_sessions_respond writes each session's nonceTPM, attributes and response HMAC over rpHash,
 *                        then flushes sessions whose continueSession was clear.
 * HMAC key (Part 1 section 19.6.5): sessionKey || authValue, where the authValue (trailing zeros
 * removed) is left out when an HMAC session is bound to the very entity it authorizes (same Name
 * and same authValue as at StartAuthSession), and for policy sessions is included only after
 * PolicyAuthValue. The same key is the sessionValue of parameter encryption. */
#include <string.h>
#include "base/secmem.h"
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

static bool needs_policy(const tpm_cmd *c, unsigned i);
static tpm_rc auth_failed(tpm_instance *t, tpm_cmd *c, unsigned i);
static tpm_rc lockout_check(tpm_instance *t, tpm_cmd *c, unsigned i);

static tpm_rc check_password(tpm_instance *t, tpm_cmd *c, unsigned i)
{
    const tpm_session_in *s = &c->sessions[i];
    unsigned n = i + 1;
    TPM_ENSURE(s->nonce.size == 0, tpm_rc_s(TPM2_RC_NONCE, n));
    TPM_ENSURE((s->attrs & ~TPMA_SESSION_CONTINUESESSION) == 0, tpm_rc_s(TPM2_RC_ATTRIBUTES, n));
    if (needs_policy(c, i))
        return TPM2_RC_AUTH_UNAVAILABLE;
    TPM_TRY(lockout_check(t, c, i));
    TPM2B_AUTH auth;
    TPM_TRY(tpm_entity_auth(t, c->handles[i], c->objects[i], &auth));
    bool ok = password_ok(&s->hmac, &auth);
    cf_wipe(&auth, sizeof auth);
    return ok ? TPM2_RC_SUCCESS : auth_failed(t, c, i);
}

/* ---- the session table ----------------------------------------------------------------- */
tpm_session *tpm_session_find(tpm_instance *t, TPM2_HANDLE h)
{
    for (size_t i = 0; i < TPM_SESSION_SLOTS; i++)
        if (t->sessions[i].used && !t->sessions[i].saved && t->sessions[i].handle == h)
            return &t->sessions[i];
    return NULL;
}

tpm_rc tpm_session_flush(tpm_instance *t, TPM2_HANDLE h)
{
    tpm_session *s = NULL;   /* loaded or saved (Part 3 section 28.4) */
    for (size_t i = 0; i < TPM_SESSION_SLOTS && !s; i++)
        if (t->sessions[i].used && t->sessions[i].handle == h)
            s = &t->sessions[i];
    TPM_ENSURE(s, TPM2_RC_HANDLE);
    cf_wipe(s, sizeof *s);
    return TPM2_RC_SUCCESS;
}

void tpm_sessions_flush_all(tpm_instance *t)
{
    cf_wipe(t->sessions, sizeof t->sessions);
}

size_t tpm_sessions_loaded(const tpm_instance *t)
{
    size_t n = 0;
    for (size_t i = 0; i < TPM_SESSION_SLOTS; i++)
        n += t->sessions[i].used && !t->sessions[i].saved;
    return n;
}

size_t tpm_sessions_active(const tpm_instance *t)
{
    size_t n = 0;
    for (size_t i = 0; i < TPM_SESSION_SLOTS; i++)
        n += t->sessions[i].used;
    return n;
}

void tpm_entity_name(tpm_instance *t, TPM2_HANDLE h, TPM2B_NAME *name)
{
    uint8_t type = (uint8_t)(h >> 24);
    const tpm_object *o = type == TPM2_HT_TRANSIENT || type == TPM2_HT_PERSISTENT ? tpm_object_find(t, h) : NULL;
    if (o) {
        *name = o->name;
        return;
    }
    name->size = 4;
    name->name[0] = (uint8_t)(h >> 24);
    name->name[1] = (uint8_t)(h >> 16);
    name->name[2] = (uint8_t)(h >> 8);
    name->name[3] = (uint8_t)h;
}

/* ---- hashes and HMACs of a command --------------------------------------------------------- */
/* cpHash = H(commandCode || Name(handle 1..n) || parameters as received) (Part 1 section 18.7). */
static tpm_rc cp_hash(tpm_instance *t, const tpm_cmd *c, TPMI_ALG_HASH alg, uint8_t *out)
{
    TPM2B_NAME names[3];
    static const uint8_t none[1];
    for (unsigned i = 0; i < 3; i++) {
        names[i].size = 0;
        if (i < c->def->n_handles)
            tpm_entity_name(t, c->handles[i], &names[i]);
    }
    uint8_t cc[4] = { (uint8_t)(c->cc >> 24), (uint8_t)(c->cc >> 16), (uint8_t)(c->cc >> 8), (uint8_t)c->cc };
    return tpm_hash_v(alg, out, cc, (size_t)4, names[0].name, (size_t)names[0].size, names[1].name,
                      (size_t)names[1].size, names[2].name, (size_t)names[2].size,
                      c->params_len ? c->params : none, c->params_len, NULL);
}

/* rpHash = H(responseCode (0) || commandCode || response parameters) (Part 1 section 18.8). */
static tpm_rc rp_hash(const tpm_cmd *c, TPMI_ALG_HASH alg, const uint8_t *rp, size_t rlen, uint8_t *out)
{
    static const uint8_t none[1];
    uint8_t hdr[8] = { 0, 0, 0, 0, (uint8_t)(c->cc >> 24), (uint8_t)(c->cc >> 16), (uint8_t)(c->cc >> 8), (uint8_t)c->cc };
    return tpm_hash_v(alg, out, hdr, (size_t)8, rlen ? rp : none, rlen, NULL);
}

/* An authValue without its trailing zero octets (Part 1 section 19.6.4 / 19.6.5). */
static size_t auth_len(const TPM2B_AUTH *a)
{
    size_t n = a->size;
    while (n > 0 && a->buffer[n - 1] == 0)
        n--;
    return n;
}

/* sessionValue = sessionKey || authValue (when included): the HMAC key and the parameter
 * encryption key of session i. */
static size_t session_value(const tpm_cmd *c, unsigned i, uint8_t *out)
{
    const tpm_session *s = c->sess[i];
    size_t n = s->session_key.size;
    memcpy(out, s->session_key.buffer, n);
    if (c->sess_include_auth[i]) {
        size_t a = auth_len(&c->sess_auth[i]);
        memcpy(out + n, c->sess_auth[i].buffer, a);
        n += a;
    }
    return n;
}

/* HMAC(sessionValue, pHash || nonceNewer || nonceOlder || extra1 || extra2 || attributes). */
static tpm_rc session_hmac(const tpm_cmd *c, unsigned i, const uint8_t *phash, const TPM2B_NONCE *newer,
                           const TPM2B_NONCE *older, const TPM2B_NONCE *x1, const TPM2B_NONCE *x2,
                           TPMA_SESSION attrs, uint8_t *out)
{
    const tpm_session *s = c->sess[i];
    uint8_t key[sizeof(TPM2B_DIGEST) + sizeof(TPM2B_AUTH)];
    size_t klen = session_value(c, i, key);
    static const uint8_t none[1];
    size_t hl = tpm_hash_size(s->auth_hash);
    tpm_rc rc = tpm_hmac_v(s->auth_hash, klen ? key : none, klen, out, phash, hl, newer->buffer, (size_t)newer->size,
                           older->buffer, (size_t)older->size, x1 ? x1->buffer : none, x1 ? (size_t)x1->size : (size_t)0,
                           x2 ? x2->buffer : none, x2 ? (size_t)x2->size : (size_t)0, &attrs, (size_t)1, NULL);
    cf_wipe(key, sizeof key);
    return rc;
}

/* ---- parameter encryption (Part 1 section 21) ------------------------------------------------- */
/* Encrypts (or decrypts) data in place with session i's symmetric algorithm: AES-CFB with key and
 * IV from KDFa(authHash, sessionValue, "CFB", nonceNewer, nonceOlder, keyBits + 128), or XOR with
 * the mask KDFa(authHash, sessionValue, "XOR", nonceNewer, nonceOlder, 8 * size). */
static tpm_rc param_crypt(const tpm_cmd *c, unsigned i, bool encrypt, const TPM2B_NONCE *newer,
                          const TPM2B_NONCE *older, uint8_t *data, size_t len)
{
    const tpm_session *s = c->sess[i];
    uint8_t key[sizeof(TPM2B_DIGEST) + sizeof(TPM2B_AUTH)];
    size_t klen = session_value(c, i, key);
    static const uint8_t none[1];
    tpm_rc rc = TPM2_RC_SUCCESS;
    uint8_t *mask = NULL;
    cf_cipher *cip = NULL;
    if (len == 0)
        goto out;
    if (s->symmetric.algorithm == TPM2_ALG_XOR) {
        mask = cf_secret_alloc(len);
        TPM_CHECK(mask, TPM2_RC_MEMORY);
        TPM_GUARD(tpm_kdfa(s->auth_hash, klen ? key : none, klen, "XOR", newer->buffer, newer->size, older->buffer,
                           older->size, (uint32_t)(8 * len), mask));
        for (size_t k = 0; k < len; k++)
            data[k] ^= mask[k];
    } else {
        size_t kb = s->symmetric.keyBits.aes / 8u;
        uint8_t kiv[32 + 16];
        TPM_GUARD(tpm_kdfa(s->auth_hash, klen ? key : none, klen, "CFB", newer->buffer, newer->size, older->buffer,
                           older->size, (uint32_t)(8 * (kb + 16)), kiv));
        cf_err e = cf_cipher_new(CF_AES_CFB, encrypt, kiv, kb, kiv + kb, 16, NULL, 0, 0, &cip);
        cf_wipe(kiv, sizeof kiv);
        TPM_CHECK(e == CF_OK, TPM2_RC_FAILURE);
        uint8_t buf[TPM_MAX_COMMAND_SIZE + 16];
        size_t n1 = sizeof buf, n2 = 0;   /* in: capacity; out: bytes written */
        TPM_CHECK(len <= TPM_MAX_COMMAND_SIZE, TPM2_RC_SIZE);
        e = cf_cipher_update(cip, data, len, buf, &n1);
        if (e == CF_OK) {
            n2 = sizeof buf - n1;
            e = cf_cipher_final(cip, buf + n1, &n2);
        }
        if (e == CF_OK && n1 + n2 != len)
            e = CF_E_INTERNAL;
        if (e == CF_OK)
            memcpy(data, buf, len);
        cf_wipe(buf, n1 + n2 < sizeof buf ? n1 + n2 : sizeof buf);
        TPM_CHECK(e == CF_OK, TPM2_RC_FAILURE);
    }
out:
    cf_cipher_free(cip);
    if (mask)
        cf_secret_free(mask, len);
    cf_wipe(key, sizeof key);
    return rc;
}

/* ---- authorization ------------------------------------------------------------------------------- */
/* Part 1 section 19.2: a USER-role authorization of an object without userWithAuth, or an
 * ADMIN-role one of an object with adminWithPolicy, needs a policy session. */
static bool needs_policy(const tpm_cmd *c, unsigned i)
{
    const tpm_object *o = c->objects[i];
    if (!o)
        return false;
    bool admin = i == 0 && (c->def->sess & TPM_SF_ADMIN);
    return admin ? (o->pub.objectAttributes & TPMA_OBJECT_ADMINWITHPOLICY) != 0
                 : !(o->pub.objectAttributes & TPMA_OBJECT_USERWITHAUTH);
}

/* A failed authorization of handle i (session number i + 1): the DA and lockout rules. */
static tpm_rc auth_failed(tpm_instance *t, tpm_cmd *c, unsigned i)
{
    unsigned n = i + 1;
    if (c->handles[i] == TPM2_RH_LOCKOUT) {
        t->nv.lockout_locked = true;
        t->nv.lockout_locked_at = t->nv.clock;
        t->nv_dirty = true;
        return tpm_rc_s(TPM2_RC_AUTH_FAIL, n);
    }
    if (da_protected(c, i)) {
        da_failure(t);
        return tpm_rc_s(TPM2_RC_AUTH_FAIL, n);
    }
    return tpm_rc_s(TPM2_RC_BAD_AUTH, n);
}

static tpm_rc lockout_check(tpm_instance *t, tpm_cmd *c, unsigned i)
{
    if (da_protected(c, i) && in_lockout(&t->nv))
        return TPM2_RC_LOCKOUT;
    if (c->handles[i] == TPM2_RH_LOCKOUT && t->nv.lockout_locked)
        return TPM2_RC_LOCKOUT;
    return TPM2_RC_SUCCESS;
}

/* The authPolicy of an entity and its hash (TPM2_ALG_NULL: none). */
static void entity_policy(tpm_instance *t, tpm_cmd *c, unsigned i, const TPM2B_DIGEST **pol, TPMI_ALG_HASH *alg)
{
    static const TPM2B_DIGEST empty;
    TPM2_HANDLE h = c->handles[i];
    *pol = &empty;
    *alg = TPM2_ALG_NULL;
    if (c->objects[i]) {
        *pol = &c->objects[i]->pub.authPolicy;
        *alg = c->objects[i]->pub.nameAlg;
    } else if (h == TPM2_RH_LOCKOUT) {
        *pol = &t->nv.lockout_policy;
        *alg = t->nv.lockout_policy_alg;
    } else if (tpm_hierarchy_get(t, h)) {
        *pol = &tpm_hierarchy_get(t, h)->policy;
        *alg = tpm_hierarchy_get(t, h)->policy_alg;
    }
}

static bool bound_to(const tpm_session *s, const TPM2B_NAME *name, const TPM2B_AUTH *auth)
{
    size_t a = auth_len(auth), b = auth_len(&s->bind_auth);
    return s->bound && s->bind_name.size == name->size && memcmp(s->bind_name.name, name->name, name->size) == 0
           && a == b && (a == 0 || cf_ct_equal(auth->buffer, s->bind_auth.buffer, a));
}

/* The nonces the first session's HMAC also covers (Part 1 section 19.6.5): nonceTPM of the
 * decrypt session and of the encrypt session when those are other sessions. */
static void extra_nonces(const tpm_cmd *c, unsigned i, int dec, int enc, const TPM2B_NONCE **x1,
                         const TPM2B_NONCE **x2)
{
    *x1 = *x2 = NULL;
    if (i != 0)
        return;
    if (dec > 0)
        *x1 = &c->sess[dec]->nonce_tpm;
    if (enc > 0 && enc != dec)
        *x2 = &c->sess[enc]->nonce_tpm;
}

static tpm_rc check_hmac(tpm_instance *t, tpm_cmd *c, unsigned i, int dec, int enc, bool authorizes)
{
    const tpm_session *s = c->sess[i];
    const tpm_session_in *in = &c->sessions[i];
    unsigned n = i + 1;
    uint8_t ph[CF_HASH_MAX], mac[CF_HASH_MAX];
    size_t hl = tpm_hash_size(s->auth_hash);
    const TPM2B_NONCE *x1, *x2;
    extra_nonces(c, i, dec, enc, &x1, &x2);
    TPM_TRY(cp_hash(t, c, s->auth_hash, ph));
    TPM_TRY(session_hmac(c, i, ph, &in->nonce, &s->nonce_tpm, x1, x2, in->attrs, mac));
    bool ok = in->hmac.size == hl && cf_ct_equal(mac, in->hmac.buffer, hl);
    cf_wipe(mac, sizeof mac);
    if (ok)
        return TPM2_RC_SUCCESS;
    return authorizes ? auth_failed(t, c, i) : tpm_rc_s(TPM2_RC_AUTH_FAIL, n);
}

/* A policy session at use (Part 1 section 19.7, the reference TPM's CheckPolicyAuthSession): the
 * digest against the entity's authPolicy, then what the policy commands recorded: PCRs unchanged,
 * not expired (PolicySecret), the command code (PolicyCommandCode; an ADMIN-role authorization
 * needs one), the cpHash (PolicySecret's cpHashA). */
static tpm_rc check_policy(tpm_instance *t, tpm_cmd *c, unsigned i, int dec, int enc)
{
    tpm_session *s = c->sess[i];
    unsigned n = i + 1;
    TPM_ENSURE(s->type != TPM2_SE_TRIAL, tpm_rc_s(TPM2_RC_ATTRIBUTES, n));   /* trials never authorize */
    /* PolicySecret through a policy session: that session must prove the authValue itself */
    TPM_ENSURE(c->cc != TPM2_CC_PolicySecret || s->auth_value_needed || s->password_needed,
               tpm_rc_s(TPM2_RC_MODE, n));
    const TPM2B_DIGEST *pol;
    TPMI_ALG_HASH alg;
    entity_policy(t, c, i, &pol, &alg);
    bool match = alg == s->auth_hash && pol->size == s->policy_digest.size && pol->size > 0
                 && cf_ct_equal(pol->buffer, s->policy_digest.buffer, pol->size);
    TPM_ENSURE(match, tpm_rc_s(TPM2_RC_POLICY_FAIL, n));
    TPM_ENSURE(!s->pcr_checked || s->pcr_counter == t->pcrs.update_counter, TPM2_RC_PCR_CHANGED);
    TPM_ENSURE(s->timeout == 0 || tpm_now(t) - t->time_base <= s->timeout, tpm_rc_s(TPM2_RC_EXPIRED, n));
    if (s->command_code != 0)
        TPM_ENSURE(s->command_code == c->cc, tpm_rc_s(TPM2_RC_POLICY_CC, n));
    else if (i == 0 && (c->def->sess & TPM_SF_ADMIN))
        return tpm_rc_s(TPM2_RC_POLICY_FAIL, n);   /* ADMIN role: the policy must name the command */
    if (s->cp_hash.size > 0) {
        uint8_t ph[CF_HASH_MAX];
        TPM_TRY(cp_hash(t, c, s->auth_hash, ph));
        TPM_ENSURE(s->cp_hash.size == tpm_hash_size(s->auth_hash) && cf_ct_equal(ph, s->cp_hash.buffer, s->cp_hash.size),
                   tpm_rc_s(TPM2_RC_POLICY_FAIL, n));
    }
    if (s->password_needed) {
        TPM_TRY(lockout_check(t, c, i));
        return password_ok(&c->sessions[i].hmac, &c->sess_auth[i]) ? TPM2_RC_SUCCESS : auth_failed(t, c, i);
    }
    if (s->auth_value_needed) {
        TPM_TRY(lockout_check(t, c, i));
        return check_hmac(t, c, i, dec, enc, true);
    }
    return TPM2_RC_SUCCESS;
}

/* Resolves and checks the sessions of the area (pass 1: nothing changes). */
static tpm_rc resolve(tpm_instance *t, tpm_cmd *c, int *dec, int *enc)
{
    *dec = *enc = -1;
    for (unsigned i = 0; i < c->n_sessions; i++) {
        const tpm_session_in *in = &c->sessions[i];
        unsigned n = i + 1;
        TPM2_HANDLE sh = in->handle;
        uint8_t type = (uint8_t)(sh >> 24);
        if (sh == TPM2_RS_PW) {
            /* a password session authorizes a handle; it cannot audit or encrypt */
            TPM_ENSURE(i < c->def->n_auth, tpm_rc_s(TPM2_RC_HANDLE, n));
            continue;
        }
        if (type != TPM2_HT_HMAC_SESSION && type != TPM2_HT_POLICY_SESSION)
            return tpm_rc_s(TPM2_RC_VALUE, n);
        tpm_session *s = tpm_session_find(t, sh);
        if (!s)
            return TPM2_RC_REFERENCE_S0 + i;
        for (unsigned j = 0; j < i; j++)
            TPM_ENSURE(c->sess[j] != s, tpm_rc_s(TPM2_RC_HANDLE, n));
        c->sess[i] = s;
        TPMA_SESSION a = in->attrs;
        TPM_ENSURE(!(a & (TPMA_SESSION_AUDIT | TPMA_SESSION_AUDITEXCLUSIVE | TPMA_SESSION_AUDITRESET
                          | TPMA_SESSION_RESERVED1_MASK)), tpm_rc_s(TPM2_RC_ATTRIBUTES, n));
        TPM_ENSURE(in->nonce.size >= 16 && in->nonce.size <= tpm_hash_size(s->auth_hash), tpm_rc_s(TPM2_RC_SIZE, n));
        if (a & (TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT))
            TPM_ENSURE(s->symmetric.algorithm != TPM2_ALG_NULL, tpm_rc_s(TPM2_RC_SYMMETRIC, n));
        if (a & TPMA_SESSION_DECRYPT) {
            TPM_ENSURE(*dec < 0 && (c->def->sess & TPM_SF_ENC_CMD), tpm_rc_s(TPM2_RC_ATTRIBUTES, n));
            *dec = (int)i;
        }
        if (a & TPMA_SESSION_ENCRYPT) {
            TPM_ENSURE(*enc < 0 && (c->def->sess & TPM_SF_ENC_RSP), tpm_rc_s(TPM2_RC_ATTRIBUTES, n));
            *enc = (int)i;
        }
        if (i >= c->def->n_auth)
            TPM_ENSURE(s->type == TPM2_SE_HMAC, tpm_rc_s(TPM2_RC_ATTRIBUTES, n));   /* policy: authorization only */
        /* the key rule of this session (Part 1 section 19.6.5) */
        if (i < c->def->n_auth) {
            TPM_TRY(tpm_entity_auth(t, c->handles[i], c->objects[i], &c->sess_auth[i]));
            if (s->type == TPM2_SE_HMAC) {
                TPM2B_NAME name;
                tpm_entity_name(t, c->handles[i], &name);
                c->sess_include_auth[i] = !bound_to(s, &name, &c->sess_auth[i]);
            } else {
                c->sess_include_auth[i] = s->auth_value_needed;
            }
        }
    }
    return TPM2_RC_SUCCESS;
}

tpm_rc tpm_sessions_check(tpm_instance *t, tpm_cmd *c)
{
    da_recover(t);
    int dec, enc;
    TPM_TRY(resolve(t, c, &dec, &enc));
    for (unsigned i = 0; i < c->n_sessions; i++) {
        tpm_session *s = c->sess[i];
        if (i >= c->def->n_auth) {
            if (s)   /* an HMAC session for encryption only: its HMAC with sessionKey alone */
                TPM_TRY(check_hmac(t, c, i, dec, enc, false));
            continue;
        }
        if (!s) {
            TPM_TRY(check_password(t, c, i));
            continue;
        }
        if (s->type == TPM2_SE_HMAC) {
            if (needs_policy(c, i))
                return TPM2_RC_AUTH_UNAVAILABLE;
            TPM_TRY(lockout_check(t, c, i));
            TPM_TRY(check_hmac(t, c, i, dec, enc, true));
        } else {
            TPM_TRY(check_policy(t, c, i, dec, enc));
        }
    }
    if (dec >= 0) {
        /* the first parameter is a TPM2B: decrypt its bytes (not its size) into the scratch copy */
        TPM_ENSURE(c->params_len >= 2, tpm_rc_p(TPM2_RC_INSUFFICIENT, 1));
        size_t sz = (size_t)c->params[0] << 8 | c->params[1];
        TPM_ENSURE(sz <= c->params_len - 2, tpm_rc_p(TPM2_RC_SIZE, 1));
        memcpy(c->params_buf, c->params, c->params_len);
        TPM_TRY(param_crypt(c, (unsigned)dec, false, &c->sessions[dec].nonce, &c->sess[dec]->nonce_tpm,
                            c->params_buf + 2, sz));
        c->params = c->params_buf;
    }
    return TPM2_RC_SUCCESS;
}

tpm_rc tpm_sessions_encrypt_response(tpm_instance *t, tpm_cmd *c, uint8_t *rparams, size_t rlen)
{
    (void)t;
    int enc = -1;
    for (unsigned i = 0; i < c->n_sessions; i++)
        if (c->sess[i] && (c->sessions[i].attrs & TPMA_SESSION_ENCRYPT))
            enc = (int)i;
    if (enc >= 0) {
        TPM_ENSURE(rlen >= 2, TPM2_RC_FAILURE);
        size_t sz = (size_t)rparams[0] << 8 | rparams[1];
        TPM_ENSURE(sz <= rlen - 2, TPM2_RC_FAILURE);
    }
    /* new nonceTPM for every session (Part 1 section 19.6.2) */
    for (unsigned i = 0; i < c->n_sessions; i++) {
        tpm_session *s = c->sess[i];
        if (!s)
            continue;
        s->nonce_tpm.size = (uint16_t)tpm_hash_size(s->auth_hash);
        TPM_ENSURE(cf_random(s->nonce_tpm.buffer, s->nonce_tpm.size) == CF_OK, TPM2_RC_FAILURE);
    }
    if (enc >= 0) {
        size_t sz = (size_t)rparams[0] << 8 | rparams[1];
        TPM_TRY(param_crypt(c, (unsigned)enc, true, &c->sess[enc]->nonce_tpm, &c->sessions[enc].nonce,
                            rparams + 2, sz));
    }
    return TPM2_RC_SUCCESS;
}

/* After a successful authorization with continueSession, a policy session starts over (Part 1
 * section 19.7.1). */
static void policy_reset(tpm_session *s)
{
    s->policy_digest.size = (uint16_t)tpm_hash_size(s->auth_hash);
    memset(s->policy_digest.buffer, 0, sizeof s->policy_digest.buffer);
    s->pcr_checked = s->auth_value_needed = s->password_needed = false;
    s->pcr_counter = 0;
    s->command_code = 0;
    s->cp_hash.size = 0;
    s->timeout = 0;
}

void tpm_sessions_respond(tpm_instance *t, tpm_cmd *c, const uint8_t *rparams, size_t rlen, cf_writer *w)
{
    uint8_t rph[CF_HASH_MAX];
    for (unsigned i = 0; i < c->n_sessions; i++) {
        tpm_session *s = c->sess[i];
        TPMA_SESSION attrs = c->sessions[i].attrs;
        if (!s) {
            /* password: empty nonce, the attributes as given, empty hmac (Part 1 section 19.6.4) */
            cf_put_u16(w, 0);
            cf_put_u8(w, attrs);
            cf_put_u16(w, 0);
            continue;
        }
        tpm_put_2b(w, s->nonce_tpm.buffer, s->nonce_tpm.size);
        cf_put_u8(w, attrs);
        if (s->type != TPM2_SE_HMAC && s->password_needed) {
            cf_put_u16(w, 0);   /* PolicyPassword: no response HMAC */
            continue;
        }
        uint8_t mac[CF_HASH_MAX];
        size_t hl = tpm_hash_size(s->auth_hash);
        if (rp_hash(c, s->auth_hash, rparams, rlen, rph) != TPM2_RC_SUCCESS
            || session_hmac(c, i, rph, &s->nonce_tpm, &c->sessions[i].nonce, NULL, NULL, attrs, mac) != TPM2_RC_SUCCESS) {
            w->overflow = true;   /* the engine answers TPM_RC_FAILURE */
            continue;
        }
        tpm_put_2b(w, mac, hl);
        cf_wipe(mac, sizeof mac);
    }
    for (unsigned i = 0; i < c->n_sessions; i++) {
        tpm_session *s = c->sess[i];
        if (!s)
            continue;
        if (!(c->sessions[i].attrs & TPMA_SESSION_CONTINUESESSION))
            (void)tpm_session_flush(t, s->handle);
        else if (s->type != TPM2_SE_HMAC && i < c->def->n_auth)
            policy_reset(s);
    }
    memset(c->sess_auth, 0, sizeof c->sess_auth);
}
