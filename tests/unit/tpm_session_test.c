/* tpm_session_test.c: authorization sessions through tpm_execute, with the client side computed
 * here independently of src/tpm (OpenSSL's HMAC(), SHA256(), EVP AES-CFB and RSA-OAEP, and a KDFa
 * written from Part 1 section 11.4.10.2): StartAuthSession (unsalted, RSA-salted, bound), command
 * HMACs over cpHash and response HMACs over rpHash (Part 1 sections 18.7, 18.8, 19.6.5), a wrong
 * HMAC (TPM_RC_AUTH_FAIL + session 1, DA count), parameter encryption both ways with AES-CFB and
 * XOR (Part 1 section 21), PolicyPCR's digest (Part 3 section 23.7), trial sessions, a
 * PolicyPCR-protected key used through a policy session before and after PCR_Extend, session
 * memory, continueSession and FlushContext.
 *
 * Expected values: every HMAC, KDFa output and policy digest is recomputed here from the formulas
 * of the spec sections named above; the TPM's response HMAC is checked against ours, so a wrong
 * cpHash/rpHash/key rule on either side fails the test. */
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

/* ---- commands (the harness and the client side: support/tpm_harness.h) ---------------------- */
static TPMT_PUBLIC rsa_storage_template(void)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_RSA;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
                         | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
    p.parameters.rsaDetail.symmetric.keyBits.aes = 128;
    p.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.rsaDetail.keyBits = 2048;
    return p;
}

static uint32_t sign(tpm_instance *t, TPM2_HANDLE key, const TPMT_PUBLIC *pub, cauth *a)
{
    call c;
    uint8_t digest[32];
    memset(digest, 0x5A, sizeof digest);
    call_init(&c, TPM2_CC_Sign);
    TPM2B_NAME name;
    object_name(pub, &name);
    add_handle(&c, key, &name);
    p_2b(&c, digest, 32);
    p_u16(&c, TPM2_ALG_NULL);
    p_u16(&c, TPM2_ST_HASHCHECK);
    p_u32(&c, TPM2_RH_NULL);
    p_u16(&c, 0);
    return call_run(t, &c, a, 1);
}

static uint32_t pcr_extend(tpm_instance *t, TPM2_HANDLE pcr, uint8_t byte)
{
    call c;
    call_init(&c, TPM2_CC_PCR_Extend);
    add_handle(&c, pcr, NULL);
    p_u32(&c, 1);
    p_u16(&c, TPM2_ALG_SHA256);
    uint8_t d[32];
    memset(d, byte, sizeof d);
    p_bytes(&c, d, 32);
    cauth pw = { .s = NULL, .attrs = 0, .auth = "" };
    return call_run(t, &c, &pw, 1);
}

/* PolicyPCR(sha256: PCR mask) with an empty pcrDigest. */
static uint32_t policy_pcr(tpm_instance *t, const csess *s, uint8_t mask0, const uint8_t *digest, size_t dlen)
{
    call c;
    call_init(&c, TPM2_CC_PolicyPCR);
    add_handle(&c, s->h, NULL);
    p_2b(&c, digest, dlen);
    p_u32(&c, 1);
    p_u16(&c, TPM2_ALG_SHA256);
    p_bytes(&c, (uint8_t[]){ 3, mask0, 0, 0 }, 4);
    return call_run(t, &c, NULL, 0);
}

/* The PolicyPCR digest of sha256 PCRs 0 and 1 at the given values, from zeros (Part 3 23.7). */
static void expected_policy_pcr01(const uint8_t pcr0[32], const uint8_t pcr1[32], uint8_t out[32])
{
    uint8_t vals[64], dig[32], in[32 + 4 + 10 + 32];
    memcpy(vals, pcr0, 32);
    memcpy(vals + 32, pcr1, 32);
    SHA256(vals, 64, dig);
    memset(in, 0, 32);
    static const uint8_t cc_sel[14] = { 0x00, 0x00, 0x01, 0x7F, 0, 0, 0, 1, 0x00, 0x0B, 3, 0x03, 0, 0 };
    memcpy(in + 32, cc_sel, 14);
    memcpy(in + 46, dig, 32);
    SHA256(in, sizeof in, out);
}

/* ---- tests ------------------------------------------------------------------------------------ */
static void test_unsalted_hmac_session(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("sess");
    startup_clear(t);
    csess s;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_AES, &s),
                     TPM2_RC_SUCCESS);
    assert_int_equal(s.h >> 24, TPM2_HT_HMAC_SESSION);
    assert_int_equal(s.klen, 0);   /* unbound, unsalted: empty sessionKey */
    /* PCR_Extend of PCR 16 authorized by the session: key = "" || authValue("") */
    call c;
    call_init(&c, TPM2_CC_PCR_Extend);
    add_handle(&c, 16, NULL);
    p_u32(&c, 1);
    p_u16(&c, TPM2_ALG_SHA256);
    uint8_t d[32] = { 1 };
    p_bytes(&c, d, 32);
    cauth a = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION, .include_auth = true, .auth = "" };
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    /* decrypt on a command whose first parameter is not a TPM2B */
    a.attrs |= TPMA_SESSION_DECRYPT;
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_ATTRIBUTES | TPM2_RC_S | TPM2_RC_1);
    /* audit sessions are not supported */
    a.attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_AUDIT;
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_ATTRIBUTES | TPM2_RC_S | TPM2_RC_1);
    /* continueSession clear: flushed after the command */
    a.attrs = 0;
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    assert_null(tpm_session_find(t, s.h));
    assert_int_equal(flush(t, s.h), TPM2_RC_HANDLE | TPM2_RC_P | TPM2_RC_1);
    tpm_instance_free(t);
}

/* Hash with data encrypted by the caller and the digest encrypted by the TPM (both ways). */
static void param_encryption(TPM2_ALG_ID sym)
{
    tpm_instance *t = new_volatile_tpm("sess");
    startup_clear(t);
    csess s;
    /* bound to the owner hierarchy (empty auth) and the data made non-trivial by a salt-less bind:
     * a bound session has a sessionKey, so the encryption key is not empty */
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_OWNER, NULL, 0, NULL, 0, "", TPM2_SE_HMAC, sym, &s),
                     TPM2_RC_SUCCESS);
    assert_int_equal(s.klen, 32);
    static const char msg[] = "parameter encryption: the first TPM2B of the command and of the response";
    call c;
    call_init(&c, TPM2_CC_Hash);
    p_2b(&c, msg, sizeof msg - 1);
    p_u16(&c, TPM2_ALG_SHA256);
    p_u32(&c, TPM2_RH_NULL);
    cauth a = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT };
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    uint8_t want[32];
    SHA256((const uint8_t *)msg, sizeof msg - 1, want);
    assert_int_equal(rd16(c.rparams), 32);
    assert_memory_equal(c.rparams + 2, want, 32);   /* decrypted here, so it went through both ways */
    /* again: fresh nonces, same result */
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    assert_memory_equal(c.rparams + 2, want, 32);
    /* GetRandom with the response encrypted */
    call_init(&c, TPM2_CC_GetRandom);
    p_u16(&c, 16);
    a.attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_ENCRYPT;
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    assert_int_equal(rd16(c.rparams), 16);
    tpm_instance_free(t);
}

static void test_param_encryption_cfb(void **state) { (void)state; param_encryption(TPM2_ALG_AES); }
static void test_param_encryption_xor(void **state) { (void)state; param_encryption(TPM2_ALG_XOR); }

/* An RSA-salted session: the salt is OAEP-encrypted here with the primary's public key. */
static void test_salted_rsa_session(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("sess");
    startup_clear(t);
    TPMT_PUBLIC tpl = rsa_storage_template(), pub;
    TPM2_HANDLE srk;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &srk, &pub), TPM2_RC_SUCCESS);

    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = BN_bin2bn(pub.unique.rsa.buffer, pub.unique.rsa.size, NULL), *e = BN_new();
    assert_non_null(bld);
    assert_non_null(n);
    assert_int_equal(BN_set_word(e, 65537), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *fc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(fc), 1);
    assert_int_equal(EVP_PKEY_fromdata(fc, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
    uint8_t salt[32], es[256];
    size_t eslen = sizeof es;
    assert_int_equal(RAND_bytes(salt, sizeof salt), 1);
    EVP_PKEY_CTX *ec = EVP_PKEY_CTX_new(pk, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(ec), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ec, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ec, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ec, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(ec, OPENSSL_memdup("SECRET", 7), 7), 1);
    assert_int_equal(EVP_PKEY_encrypt(ec, es, &eslen, salt, sizeof salt), 1);
    EVP_PKEY_CTX_free(ec);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(fc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    csess s;
    assert_int_equal(start_session(t, srk, TPM2_RH_NULL, es, eslen, salt, sizeof salt, NULL, TPM2_SE_HMAC, TPM2_ALG_AES, &s),
                     TPM2_RC_SUCCESS);
    /* our sessionKey = KDFa(salt, "ATH", ...) must be the TPM's: the response HMAC and the
     * decrypted GetRandom prove it (call_run() checks the HMAC) */
    call c;
    call_init(&c, TPM2_CC_GetRandom);
    p_u16(&c, 32);
    cauth a = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_ENCRYPT };
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    /* CreatePrimary with its userAuth encrypted by the salted session */
    TPMT_PUBLIC etpl = ecc_sign_template(TPMA_OBJECT_USERWITHAUTH, NULL, 0), epub;
    TPM2_HANDLE key;
    cauth ca = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT,
                 .include_auth = true, .auth = "" };
    assert_int_equal(create_primary(t, "sealed-pw", &etpl, &ca, &key, &epub), TPM2_RC_SUCCESS);
    assert_int_equal(epub.type, TPM2_ALG_ECC);   /* outPublic decrypted here */
    cauth pw = { .s = NULL, .attrs = 0, .auth = "sealed-pw" };
    assert_int_equal(sign(t, key, &epub, &pw), TPM2_RC_SUCCESS);   /* the userAuth arrived intact */
    /* a wrong salt: the session key differs and the TPM's response HMAC would not match ours;
     * a garbled encryptedSalt is refused */
    es[10] ^= 1;
    assert_int_equal(start_session(t, srk, TPM2_RH_NULL, es, eslen, salt, sizeof salt, NULL, TPM2_SE_HMAC, TPM2_ALG_AES, &s),
                     TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_2);
    tpm_instance_free(t);
}

/* A wrong HMAC: TPM_RC_AUTH_FAIL + session 1 and one more failed try; a bound session leaves
 * the bind entity's authValue out of the key. */
static void test_hmac_auth_fail_and_bound(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("sess");
    startup_clear(t);
    TPMT_PUBLIC tpl = ecc_sign_template(TPMA_OBJECT_USERWITHAUTH, NULL, 0), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "secret", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    csess s;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_NULL, &s),
                     TPM2_RC_SUCCESS);
    cauth a = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION, .include_auth = true, .auth = "secret" };
    assert_int_equal(sign(t, key, &pub, &a), TPM2_RC_SUCCESS);
    uint32_t before = t->nv.failed_tries;
    a.corrupt = true;
    assert_int_equal(sign(t, key, &pub, &a), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(t->nv.failed_tries, before + 1);
    a.corrupt = false;
    a.auth = "wrong";
    assert_int_equal(sign(t, key, &pub, &a), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(t->nv.failed_tries, before + 2);
    a.auth = "secret";
    assert_int_equal(sign(t, key, &pub, &a), TPM2_RC_SUCCESS);   /* nonces were not rolled by failures */
    /* bound to the key: key = sessionKey only for the key, sessionKey || auth for others */
    csess b;
    assert_int_equal(start_session(t, TPM2_RH_NULL, key, NULL, 0, NULL, 0, "secret", TPM2_SE_HMAC, TPM2_ALG_NULL, &b),
                     TPM2_RC_SUCCESS);
    cauth ba = { .s = &b, .attrs = TPMA_SESSION_CONTINUESESSION, .include_auth = false, .auth = "secret" };
    assert_int_equal(sign(t, key, &pub, &ba), TPM2_RC_SUCCESS);
    ba.include_auth = true;
    assert_int_equal(sign(t, key, &pub, &ba), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(flush(t, b.h), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, s.h), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
}

static void test_policy_pcr(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("sess");
    startup_clear(t);
    uint8_t zero[32] = { 0 }, want[32], got[32];
    expected_policy_pcr01(zero, zero, want);
    /* trial session: digest known answer */
    csess trial;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_TRIAL, TPM2_ALG_NULL, &trial),
                     TPM2_RC_SUCCESS);
    assert_int_equal(trial.h >> 24, TPM2_HT_POLICY_SESSION);
    policy_get_digest(t, &trial, got);
    assert_memory_equal(got, zero, 32);
    assert_int_equal(policy_pcr(t, &trial, 0x03, NULL, 0), TPM2_RC_SUCCESS);
    policy_get_digest(t, &trial, got);
    assert_memory_equal(got, want, 32);

    /* a key that only this policy may use */
    TPMT_PUBLIC tpl = ecc_sign_template(0, want, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    cauth pw = { .s = NULL, .attrs = 0, .auth = "" };
    assert_int_equal(sign(t, key, &pub, &pw), TPM2_RC_AUTH_UNAVAILABLE);   /* userWithAuth clear */
    cauth ta = { .s = &trial, .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(sign(t, key, &pub, &ta), TPM2_RC_ATTRIBUTES | TPM2_RC_S | TPM2_RC_1);   /* trials never authorize */

    csess ps;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_POLICY, TPM2_ALG_NULL, &ps),
                     TPM2_RC_SUCCESS);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_POLICY_FAIL | TPM2_RC_S | TPM2_RC_1);   /* empty policy */
    /* a pcrDigest that is not the current one */
    uint8_t bad[32];
    memset(bad, 7, sizeof bad);
    assert_int_equal(policy_pcr(t, &ps, 0x03, bad, 32), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_1);
    uint8_t cur[32];
    uint8_t vals[64] = { 0 };
    SHA256(vals, 64, cur);
    assert_int_equal(policy_pcr(t, &ps, 0x03, cur, 32), TPM2_RC_SUCCESS);
    policy_get_digest(t, &ps, got);
    assert_memory_equal(got, want, 32);
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_SUCCESS);
    /* the session starts over after use */
    policy_get_digest(t, &ps, got);
    assert_memory_equal(got, zero, 32);
    /* PolicyPCR, then the PCRs change: TPM_RC_PCR_CHANGED */
    assert_int_equal(policy_pcr(t, &ps, 0x03, NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(pcr_extend(t, 0, 0xAB), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_PCR_CHANGED);
    /* PolicyRestart, PolicyPCR at the new values: another digest, not the key's */
    call c;
    call_init(&c, TPM2_CC_PolicyRestart);
    add_handle(&c, ps.h, NULL);
    assert_int_equal(call_run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(policy_pcr(t, &ps, 0x03, NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_POLICY_FAIL | TPM2_RC_S | TPM2_RC_1);
    tpm_instance_free(t);
}

/* PolicyAuthValue: the HMAC must then include the authValue; PolicyPassword: the cleartext one. */
static void test_policy_auth_value_password(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("sess");
    startup_clear(t);
    uint8_t pol[32], in[36] = { 0 };
    in[32] = 0x00, in[33] = 0x00, in[34] = 0x01, in[35] = 0x6B;   /* TPM_CC_PolicyAuthValue */
    SHA256(in, sizeof in, pol);
    TPMT_PUBLIC tpl = ecc_sign_template(0, pol, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "pw", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    csess ps;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_POLICY, TPM2_ALG_NULL, &ps),
                     TPM2_RC_SUCCESS);
    call c;
    call_init(&c, TPM2_CC_PolicyAuthValue);
    add_handle(&c, ps.h, NULL);
    assert_int_equal(call_run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION, .include_auth = true, .auth = "nope" };
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    pa.auth = "pw";
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
}

static void test_session_memory(void **state)
{
    (void)state;
    tpm_instance *t = new_volatile_tpm("sess");
    startup_clear(t);
    csess s[TPM_SESSION_SLOTS + 1];
    for (int i = 0; i < TPM_SESSION_SLOTS; i++)
        assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL,
                                       i % 2 ? TPM2_SE_POLICY : TPM2_SE_HMAC, TPM2_ALG_NULL, &s[i]), TPM2_RC_SUCCESS);
    assert_true(TPM_SESSION_SLOTS >= 3);
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_NULL,
                                   &s[TPM_SESSION_SLOTS]), TPM2_RC_SESSION_MEMORY);
    assert_int_equal(tpm_sessions_loaded(t), TPM_SESSION_SLOTS);
    assert_int_equal(flush(t, s[3].h), TPM2_RC_SUCCESS);
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_NULL,
                                   &s[TPM_SESSION_SLOTS]), TPM2_RC_SUCCESS);
    /* a session handle that is not loaded: TPM_RC_REFERENCE_S0 */
    assert_int_equal(flush(t, s[TPM_SESSION_SLOTS].h), TPM2_RC_SUCCESS);
    call c;
    call_init(&c, TPM2_CC_GetRandom);
    p_u16(&c, 8);
    cauth a = { .s = &s[TPM_SESSION_SLOTS], .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(call_run(t, &c, &a, 1), TPM2_RC_REFERENCE_S0);
    /* bad StartAuthSession parameters */
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, (const uint8_t *)"x", 1, NULL, 0, NULL, TPM2_SE_HMAC,
                                   TPM2_ALG_NULL, &s[0]), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_2);
    /* Startup flushes every session */
    tpm_reset(t);
    startup_clear(t);
    assert_int_equal(tpm_sessions_loaded(t), 0);
    tpm_instance_free(t);
}

/* The command table stays sorted (binary search) and names the session rows. */
static void test_table(void **state)
{
    (void)state;
    for (size_t i = 1; i < tpm_n_commands; i++)
        assert_true(tpm_commands[i - 1].cc < tpm_commands[i].cc);
    assert_non_null(tpm_command_find(TPM2_CC_StartAuthSession));
    assert_non_null(tpm_command_find(TPM2_CC_PolicyPCR));
    assert_true(tpm_command_find(TPM2_CC_CreatePrimary)->sess & TPM_SF_ENC_CMD);
    assert_true(tpm_command_find(TPM2_CC_GetRandom)->sess & TPM_SF_ENC_RSP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_unsalted_hmac_session),
        cmocka_unit_test(test_param_encryption_cfb),
        cmocka_unit_test(test_param_encryption_xor),
        cmocka_unit_test(test_salted_rsa_session),
        cmocka_unit_test(test_hmac_auth_fail_and_bound),
        cmocka_unit_test(test_policy_pcr),
        cmocka_unit_test(test_policy_auth_value_password),
        cmocka_unit_test(test_session_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
