/* tpm_policy_test.c: PolicySecret, PolicyOR and PolicyCommandCode (Part 3 sections 23.4, 23.6,
 * 23.11) through tpm_execute, and what they record enforced when the policy session authorizes
 * (Part 1 section 19.7): digests known-answer (recomputed here with OpenSSL's SHA256() from the
 * formulas of Part 3, and the TCG EK Credential Profile's PolicySecret(TPM_RH_ENDORSEMENT) digest),
 * authHandle's authorization by password and HMAC (a wrong one: TPM_RC_AUTH_FAIL / TPM_RC_BAD_AUTH
 * + session 1), nonceTPM mismatch (TPM_RC_NONCE + P1, as the reference TPM's
 * PolicyParameterChecks), cpHashA and expiration at use, PolicyOR's refusal of a digest not in the
 * list, PolicyCommandCode at use (TPM_RC_POLICY_CC) and the ADMIN role's need of it.
 *
 * The harness (client-side HMACs over cpHash, response HMAC checks) is tpm_session_test.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include "tpm/internal.h"
#include "tpm_harness.h"

/* ---- policy commands and expected digests (the harness: support/tpm_harness.h) --------------- */
/* TCG EK Credential Profile: PolicySecret(TPM_RH_ENDORSEMENT) from zeros, empty policyRef. */
static const uint8_t EK_POLICY[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
    0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
};
static const uint8_t ZEROS[32];

static void be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

/* Part 3 23.4 (PolicyUpdate of 23.2.3): d = H(H(d || TPM_CC_PolicySecret || name) || policyRef). */
static void ext_secret(uint8_t d[32], const TPM2B_NAME *name, const char *ref)
{
    uint8_t buf[32 + 4 + sizeof name->name + 64];
    memcpy(buf, d, 32);
    be32(buf + 32, TPM2_CC_PolicySecret);
    memcpy(buf + 36, name->name, name->size);
    SHA256(buf, 36 + name->size, d);
    memcpy(buf, d, 32);
    memcpy(buf + 32, ref, strlen(ref));
    SHA256(buf, 32 + strlen(ref), d);
}

/* Part 3 23.11: d = H(d || TPM_CC_PolicyCommandCode || code). */
static void ext_cc(uint8_t d[32], uint32_t code)
{
    uint8_t buf[40];
    memcpy(buf, d, 32);
    be32(buf + 32, TPM2_CC_PolicyCommandCode);
    be32(buf + 36, code);
    SHA256(buf, sizeof buf, d);
}

/* Part 3 23.6: d = H(0...0 || TPM_CC_PolicyOR || digests). */
static void or_digest(const uint8_t (*list)[32], size_t n, uint8_t out[32])
{
    uint8_t buf[36 + 8 * 32];
    memset(buf, 0, 32);
    be32(buf + 32, TPM2_CC_PolicyOR);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 36 + 32 * i, list[i], 32);
    SHA256(buf, 36 + 32 * n, out);
}

/* PolicySecret(authHandle, policySession; nonceTPM, cpHashA, policyRef, expiration) authorized by a;
 * the response parameters into *rp (when not NULL). */
static uint32_t policy_secret(tpm_instance *t, TPM2_HANDLE ah, const TPM2B_NAME *aname, const csess *ps,
                              const uint8_t *nonce, size_t nl, const uint8_t *cph, size_t cl, const char *ref,
                              int32_t expiration, cauth *a, call *rp)
{
    static call c;
    call_init(&c, TPM2_CC_PolicySecret);
    add_handle(&c, ah, aname);
    add_handle(&c, ps->h, NULL);
    p_2b(&c, nonce, nl);
    p_2b(&c, cph, cl);
    p_2b(&c, ref, strlen(ref));
    p_u32(&c, (uint32_t)expiration);
    uint32_t rc = call_run(t, &c, a, 1);
    if (rp)
        *rp = c;
    return rc;
}

static uint32_t policy_or(tpm_instance *t, const csess *ps, const uint8_t (*list)[32], size_t n)
{
    call c;
    call_init(&c, TPM2_CC_PolicyOR);
    add_handle(&c, ps->h, NULL);
    p_u32(&c, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        p_2b(&c, list[i], 32);
    return call_run(t, &c, NULL, 0);
}

static uint32_t policy_command_code(tpm_instance *t, const csess *ps, uint32_t code)
{
    call c;
    call_init(&c, TPM2_CC_PolicyCommandCode);
    add_handle(&c, ps->h, NULL);
    p_u32(&c, code);
    return call_run(t, &c, NULL, 0);
}

/* The parameters of Sign(digest = 32 x byte, scheme NULL, NULL hashcheck ticket). */
static void sign_params(call *c, uint8_t byte)
{
    uint8_t digest[32];
    memset(digest, byte, sizeof digest);
    p_2b(c, digest, 32);
    p_u16(c, TPM2_ALG_NULL);
    p_u16(c, TPM2_ST_HASHCHECK);
    p_u32(c, TPM2_RH_NULL);
    p_u16(c, 0);
}

static uint32_t sign_with(tpm_instance *t, TPM2_HANDLE key, const TPMT_PUBLIC *pub, cauth *a, uint8_t byte)
{
    call c;
    call_init(&c, TPM2_CC_Sign);
    TPM2B_NAME name;
    object_name(pub, &name);
    add_handle(&c, key, &name);
    sign_params(&c, byte);
    return call_run(t, &c, a, 1);
}

/* cpHash of that Sign command (Part 1 section 18.7). */
static void sign_cp_hash(TPM2_HANDLE key, const TPMT_PUBLIC *pub, uint8_t byte, uint8_t out[32])
{
    call c;
    call_init(&c, TPM2_CC_Sign);
    TPM2B_NAME name;
    object_name(pub, &name);
    add_handle(&c, key, &name);
    sign_params(&c, byte);
    uint8_t buf[4 + sizeof name.name + sizeof c.params];
    be32(buf, TPM2_CC_Sign);
    memcpy(buf + 4, name.name, name.size);
    memcpy(buf + 4 + name.size, c.params, c.plen);
    SHA256(buf, 4 + name.size + c.plen, out);
}

static uint32_t quote(tpm_instance *t, TPM2_HANDLE key, const TPMT_PUBLIC *pub, cauth *a)
{
    call c;
    call_init(&c, TPM2_CC_Quote);
    TPM2B_NAME name;
    object_name(pub, &name);
    add_handle(&c, key, &name);
    p_u16(&c, 0);               /* qualifyingData */
    p_u16(&c, TPM2_ALG_NULL);   /* inScheme: the key's */
    p_u32(&c, 0);               /* no PCRs */
    return call_run(t, &c, a, 1);
}

static void session(tpm_instance *t, TPM2_SE type, csess *s)
{
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, type, TPM2_ALG_NULL, s),
                     TPM2_RC_SUCCESS);
}

static void assert_digest(tpm_instance *t, const csess *s, const uint8_t want[32])
{
    uint8_t got[32];
    policy_get_digest(t, s, got);
    assert_memory_equal(got, want, 32);
}

#define RC_S1(rc) ((rc) | TPM2_RC_S | TPM2_RC_1)
#define RC_P(rc, n) ((rc) | TPM2_RC_P | ((uint32_t)(n) << 8))

/* ---- tests ------------------------------------------------------------------------------------ */
static void test_policy_secret_digest(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("pol");
    startup_clear(t);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };

    /* trial: the EK policy, and a NULL ticket with an empty timeout */
    csess tr;
    session(t, TPM2_SE_TRIAL, &tr);
    call r;
    assert_int_equal(policy_secret(t, TPM2_RH_ENDORSEMENT, NULL, &tr, NULL, 0, NULL, 0, "", 0, &pw, &r), TPM2_RC_SUCCESS);
    static const uint8_t null_ticket[] = { 0, 0, 0x80, 0x23, 0x40, 0x00, 0x00, 0x07, 0, 0 };
    assert_int_equal(r.rplen, sizeof null_ticket);
    assert_memory_equal(r.rparams, null_ticket, sizeof null_ticket);
    uint8_t want[32];
    TPM2B_NAME en;
    handle_name(TPM2_RH_ENDORSEMENT, &en);
    memcpy(want, ZEROS, 32);
    ext_secret(want, &en, "");
    assert_memory_equal(want, EK_POLICY, 32);
    assert_digest(t, &tr, want);

    /* real session: owner with a policyRef and the session's nonceTPM; a negative expiration also
     * gets the NULL ticket */
    csess ps;
    session(t, TPM2_SE_POLICY, &ps);
    TPM2B_NAME on;
    handle_name(TPM2_RH_OWNER, &on);
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 32, NULL, 0, "coffer", -60, &pw, &r),
                     TPM2_RC_SUCCESS);
    assert_memory_equal(r.rparams, null_ticket, sizeof null_ticket);
    memcpy(want, ZEROS, 32);
    ext_secret(want, &on, "coffer");
    assert_digest(t, &ps, want);

    /* an object as authHandle, authorized by an HMAC session with its authValue: its Name counts */
    TPMT_PUBLIC tpl = ecc_sign_template(TPMA_OBJECT_USERWITHAUTH, NULL, 0), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "keypw", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    TPM2B_NAME kn;
    object_name(&pub, &kn);
    csess hs, ps2;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_NULL, &hs),
                     TPM2_RC_SUCCESS);
    session(t, TPM2_SE_POLICY, &ps2);
    cauth ha = { .s = &hs, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "keypw", .include_auth = true };
    assert_int_equal(policy_secret(t, key, &kn, &ps2, NULL, 0, NULL, 0, "", 0, &ha, NULL), TPM2_RC_SUCCESS);
    memcpy(want, ZEROS, 32);
    ext_secret(want, &kn, "");
    assert_digest(t, &ps2, want);
    /* and again: the digest chains */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps2, NULL, 0, NULL, 0, "x", 0, &pw, NULL), TPM2_RC_SUCCESS);
    ext_secret(want, &on, "x");
    assert_digest(t, &ps2, want);

    /* a policy session authorizing authHandle must prove the authValue itself (PolicyAuthValue) */
    csess pa;
    session(t, TPM2_SE_POLICY, &pa);
    cauth pauth = { .s = &pa, .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps2, NULL, 0, NULL, 0, "", 0, &pauth, NULL),
                     RC_S1(TPM2_RC_MODE));
    /* TPM_RH_NULL is no entity here */
    assert_int_equal(policy_secret(t, TPM2_RH_NULL, NULL, &ps2, NULL, 0, NULL, 0, "", 0, &pw, NULL),
                     TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    assert_digest(t, &ps2, want);
    tpm_instance_free(t);
}

static void test_policy_secret_refusals(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("pol");
    startup_clear(t);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };
    TPMT_PUBLIC tpl = ecc_sign_template(TPMA_OBJECT_USERWITHAUTH, NULL, 0), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "keypw", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    TPM2B_NAME kn;
    object_name(&pub, &kn);
    csess ps, hs, tr;
    session(t, TPM2_SE_POLICY, &ps);
    session(t, TPM2_SE_HMAC, &hs);
    session(t, TPM2_SE_TRIAL, &tr);

    /* a wrong authValue: password or HMAC, the object's (DA-protected) and the owner's */
    cauth bad = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "nope" };
    assert_int_equal(policy_secret(t, key, &kn, &ps, NULL, 0, NULL, 0, "", 0, &bad, NULL), RC_S1(TPM2_RC_AUTH_FAIL));
    cauth ha = { .s = &hs, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "keypw", .include_auth = true, .corrupt = true };
    assert_int_equal(policy_secret(t, key, &kn, &ps, NULL, 0, NULL, 0, "", 0, &ha, NULL), RC_S1(TPM2_RC_AUTH_FAIL));
    cauth bad_owner = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "x" };
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, NULL, 0, "", 0, &bad_owner, NULL),
                     RC_S1(TPM2_RC_BAD_AUTH));
    /* a trial session still needs the authorization */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &tr, NULL, 0, NULL, 0, "", 0, &bad_owner, NULL),
                     RC_S1(TPM2_RC_BAD_AUTH));

    /* nonceTPM: not the session's (one bit, or another size) */
    uint8_t nonce[32];
    memcpy(nonce, ps.nonce_tpm, 32);
    nonce[7] ^= 1;
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, nonce, 32, NULL, 0, "", 0, &pw, NULL),
                     RC_P(TPM2_RC_NONCE, 1));
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 16, NULL, 0, "", 0, &pw, NULL),
                     RC_P(TPM2_RC_NONCE, 1));
    /* cpHashA of another size than the session's digest */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, ZEROS, 20, "", 0, &pw, NULL),
                     RC_P(TPM2_RC_SIZE, 2));
    /* an expiration already past: 1 s after the session started */
    fake_clock += 2000;
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 32, NULL, 0, "", 1, &pw, NULL),
                     RC_P(TPM2_RC_EXPIRED, 4));
    assert_digest(t, &ps, ZEROS);   /* nothing changed */
    /* a trial session does not look at nonceTPM */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &tr, nonce, 32, NULL, 0, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
}

/* A key whose authPolicy is PolicySecret(owner): cpHashA and expiration enforced at use. */
static void test_policy_secret_at_use(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("pol");
    startup_clear(t);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };
    TPM2B_NAME on;
    handle_name(TPM2_RH_OWNER, &on);
    uint8_t pol[32];
    memcpy(pol, ZEROS, 32);
    ext_secret(pol, &on, "");
    TPMT_PUBLIC tpl = ecc_sign_template(0, pol, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    csess ps;
    session(t, TPM2_SE_POLICY, &ps);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION };

    /* without the policy: refused; with it: signs (and the session starts over) */
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), RC_S1(TPM2_RC_POLICY_FAIL));
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, NULL, 0, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), TPM2_RC_SUCCESS);
    assert_digest(t, &ps, ZEROS);

    /* cpHashA: only the command with that cpHash; another cpHashA after it is TPM_RC_CPHASH */
    uint8_t cph[32], other[32];
    sign_cp_hash(key, &pub, 0x11, cph);
    sign_cp_hash(key, &pub, 0x22, other);
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, cph, 32, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x22), RC_S1(TPM2_RC_POLICY_FAIL));
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, other, 32, "", 0, &pw, NULL), TPM2_RC_CPHASH);
    assert_int_equal(flush(t, ps.h), TPM2_RC_SUCCESS);
    session(t, TPM2_SE_POLICY, &ps);
    pa.s = &ps;
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, cph, 32, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), TPM2_RC_SUCCESS);

    /* expiration: 10 s from the session's start (nonceTPM given); good at 9 s, void at 11 s */
    assert_int_equal(flush(t, ps.h), TPM2_RC_SUCCESS);
    session(t, TPM2_SE_POLICY, &ps);
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 32, NULL, 0, "", 10, &pw, NULL),
                     TPM2_RC_SUCCESS);
    fake_clock += 9000;
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), TPM2_RC_SUCCESS);
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 32, NULL, 0, "", 10, &pw, NULL),
                     TPM2_RC_SUCCESS);
    fake_clock += 2000;
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), RC_S1(TPM2_RC_EXPIRED));
    tpm_instance_free(t);
}

static void test_policy_or(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("pol");
    startup_clear(t);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };
    TPM2B_NAME on;
    handle_name(TPM2_RH_OWNER, &on);
    uint8_t list[2][32], rev[2][32], want[32];
    memcpy(list[0], ZEROS, 32);
    ext_secret(list[0], &on, "");
    memset(list[1], 0xAB, 32);
    memcpy(rev[0], list[1], 32);
    memcpy(rev[1], list[0], 32);

    /* trial: any current digest; the known answer */
    csess tr;
    session(t, TPM2_SE_TRIAL, &tr);
    assert_int_equal(policy_or(t, &tr, (const uint8_t (*)[32])list, 2), TPM2_RC_SUCCESS);
    or_digest((const uint8_t (*)[32])list, 2, want);
    assert_digest(t, &tr, want);
    /* one digest is not a list */
    assert_int_equal(policy_or(t, &tr, (const uint8_t (*)[32])list, 1), RC_P(TPM2_RC_SIZE, 1));

    /* real: the current digest (zeros) is not in the list */
    csess ps;
    session(t, TPM2_SE_POLICY, &ps);
    assert_int_equal(policy_or(t, &ps, (const uint8_t (*)[32])list, 2), RC_P(TPM2_RC_VALUE, 1));
    assert_digest(t, &ps, ZEROS);
    /* after PolicySecret(owner) it is, in either place */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, NULL, 0, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    assert_int_equal(policy_or(t, &ps, (const uint8_t (*)[32])rev, 2), TPM2_RC_SUCCESS);
    or_digest((const uint8_t (*)[32])rev, 2, want);
    assert_digest(t, &ps, want);

    /* a key whose policy is that OR: used through the branch */
    TPMT_PUBLIC tpl = ecc_sign_template(0, want, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x33), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x33), RC_S1(TPM2_RC_POLICY_FAIL));   /* started over */
    tpm_instance_free(t);
}

static void test_policy_command_code(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("pol");
    startup_clear(t);
    uint8_t pol[32];
    memcpy(pol, ZEROS, 32);
    ext_cc(pol, TPM2_CC_Sign);
    TPMT_PUBLIC tpl = ecc_sign_template(0, pol, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    csess ps;
    session(t, TPM2_SE_POLICY, &ps);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION };

    /* the known answer, and the command it names works */
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Sign), TPM2_RC_SUCCESS);
    assert_digest(t, &ps, pol);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x44), TPM2_RC_SUCCESS);
    /* the same digest used for another command (Quote): TPM_RC_POLICY_CC */
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Sign), TPM2_RC_SUCCESS);
    assert_int_equal(quote(t, key, &pub, &pa), RC_S1(TPM2_RC_POLICY_CC));
    /* a second, other code: TPM_RC_VALUE; a command this TPM does not have: TPM_RC_POLICY_CC */
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Quote), RC_P(TPM2_RC_VALUE, 1));
    assert_int_equal(flush(t, ps.h), TPM2_RC_SUCCESS);
    session(t, TPM2_SE_POLICY, &ps);
    assert_int_equal(policy_command_code(t, &ps, 0x0000FFFF), RC_P(TPM2_RC_POLICY_CC, 1));
    assert_digest(t, &ps, ZEROS);
    /* PolicyRestart forgets the code */
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Quote), TPM2_RC_SUCCESS);
    call c;
    call_init(&c, TPM2_CC_PolicyRestart);
    add_handle(&c, ps.h, NULL);
    assert_int_equal(call_run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
    pa.s = &ps;
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Sign), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x44), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_secret_digest),
        cmocka_unit_test(test_policy_secret_refusals),
        cmocka_unit_test(test_policy_secret_at_use),
        cmocka_unit_test(test_policy_or),
        cmocka_unit_test(test_policy_command_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
