/* tpm_engine_test.c: the TPM engine through its only entry point, tpm_execute, with byte-level
 * commands built here: startup rules, header/handle/session errors, truncated commands at every
 * length (error, and the engine unchanged), PCRs (extend, event, read, reset localities, saved
 * state), deterministic primary keys (across a reload from the blob; different after a new seed),
 * Sign / VerifySignature (ECDSA P-256, RSA-2048 RSASSA and RSAPSS, hashcheck tickets for
 * restricted keys), password authorization and dictionary-attack lockout with a fake clock,
 * GetCapability(COMMANDS) against the command table, and corrupt blobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "tpm/internal.h"
#include "tpm_harness.h"

/* ---- harness (the rest: support/tpm_harness.h) ------------------------------------------ */
static uint32_t shutdown(tpm_instance *t, TPM2_SU su)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_Shutdown);
    cf_put_u16(&c.w, su);
    return run(t, &c, &r);
}

static size_t get_random_cmd(cmd *c, uint16_t n)
{
    begin(c, TPM2_ST_NO_SESSIONS, TPM2_CC_GetRandom);
    cf_put_u16(&c->w, n);
    return end(c);
}

static uint32_t pcr_extend(tpm_instance *t, uint8_t loc, TPM2_HANDLE pcr, const uint8_t digest[32])
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_PCR_Extend);
    cf_put_u32(&c.w, pcr);
    pw_session(&c, "");
    cf_put_u32(&c.w, 1);
    cf_put_u16(&c.w, TPM2_ALG_SHA256);
    cf_put_bytes(&c.w, digest, 32);
    return exec_loc(t, loc, c.b, end(&c), &r);
}

static uint32_t pcr_reset(tpm_instance *t, uint8_t loc, TPM2_HANDLE pcr)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_PCR_Reset);
    cf_put_u32(&c.w, pcr);
    pw_session(&c, "");
    return exec_loc(t, loc, c.b, end(&c), &r);
}

/* ---- templates ---------------------------------------------------------------------------- */
static TPMT_PUBLIC ecc_template(TPM2_ECC_CURVE curve, TPMI_ALG_SIG_SCHEME scheme, TPMA_OBJECT attrs)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = attrs;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = scheme;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = curve;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    return p;
}

static TPMT_PUBLIC rsa_template(TPMI_ALG_SIG_SCHEME scheme, TPMA_OBJECT attrs)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_RSA;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = attrs;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.rsaDetail.scheme.scheme = scheme;
    p.parameters.rsaDetail.scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.keyBits = 2048;
    return p;
}

static void put_null_ticket(cmd *c)
{
    cf_put_u16(&c->w, TPM2_ST_HASHCHECK);
    cf_put_u32(&c->w, TPM2_RH_NULL);
    cf_put_u16(&c->w, 0);
}

static uint32_t sign(tpm_instance *t, TPM2_HANDLE key, const char *pw, const uint8_t *digest, size_t dlen,
                     TPMI_ALG_SIG_SCHEME scheme, const TPMT_TK_HASHCHECK *ticket, TPMT_SIGNATURE *sig)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_Sign);
    cf_put_u32(&c.w, key);
    pw_session(&c, pw);
    tpm_put_2b(&c.w, digest, dlen);
    cf_put_u16(&c.w, scheme);
    if (scheme != TPM2_ALG_NULL)
        cf_put_u16(&c.w, TPM2_ALG_SHA256);
    if (ticket)
        tpm_put(&c.w, TPM_MARSHAL(TPMT_TK_HASHCHECK), ticket);
    else
        put_null_ticket(&c);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = 14;
        memset(sig, 0, sizeof *sig);
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Unmarshal(r.b, r.len, &off, sig), TSS2_RC_SUCCESS);
    }
    return rc;
}

static uint32_t verify(tpm_instance *t, TPM2_HANDLE key, const uint8_t *digest, size_t dlen, const TPMT_SIGNATURE *sig,
                       TPMT_TK_VERIFIED *tk)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_VerifySignature);
    cf_put_u32(&c.w, key);
    tpm_put_2b(&c.w, digest, dlen);
    tpm_put(&c.w, TPM_MARSHAL(TPMT_SIGNATURE), sig);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = 10;
        assert_int_equal(Tss2_MU_TPMT_TK_VERIFIED_Unmarshal(r.b, r.len, &off, tk), TSS2_RC_SUCCESS);
    }
    return rc;
}

/* ---- tests ----------------------------------------------------------------------------------- */
static void test_startup_required(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    cmd c;
    resp r;
    size_t n = get_random_cmd(&c, 8);
    assert_int_equal(exec_loc(t, 0, c.b, n, &r), TPM2_RC_INITIALIZE);
    assert_int_equal(startup(t, TPM2_SU_STATE), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_1);   /* nothing saved */
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_INITIALIZE);
    assert_int_equal(exec_loc(t, 0, c.b, n, &r), TPM2_RC_SUCCESS);
    assert_int_equal(r.len, 10 + 2 + 8);
    /* GetRandom is capped at the largest digest */
    n = get_random_cmd(&c, 1000);
    assert_int_equal(exec_loc(t, 0, c.b, n, &r), TPM2_RC_SUCCESS);
    assert_int_equal(r.len, 10 + 2 + TPM_MAX_RANDOM);
    assert_true(e->calls > 0);
    tpm_instance_free(t);
    free(e);
}

static void test_header_errors(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, 0x1FF);   /* not a command of this TPM */
    assert_int_equal(run(t, &c, &r), TPM2_RC_COMMAND_CODE);
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_NV_Read);
    assert_int_equal(run(t, &c, &r), TPM2_RC_COMMAND_CODE);
    begin(&c, 0x00C1, TPM2_CC_GetRandom);      /* a TPM 1.2 tag */
    cf_put_u16(&c.w, 8);
    assert_int_equal(run(t, &c, &r), TPM2_RC_BAD_TAG);
    assert_int_equal((r.b[0] << 8) | r.b[1], TPM2_ST_RSP_COMMAND);
    size_t n = get_random_cmd(&c, 8);
    c.b[5]++;                                   /* size disagrees with the buffer */
    assert_int_equal(exec_loc(t, 0, c.b, n, &r), TPM2_RC_COMMAND_SIZE);
    /* an authorization needed but none given */
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_PCR_Reset);
    cf_put_u32(&c.w, 16);
    assert_int_equal(run(t, &c, &r), TPM2_RC_AUTH_MISSING);
    /* handles: a PCR out of range, an object not loaded */
    uint8_t d[32] = { 0 };
    assert_int_equal(pcr_extend(t, 0, 24, d), TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ReadPublic);
    cf_put_u32(&c.w, 0x80000000);
    assert_int_equal(run(t, &c, &r), TPM2_RC_HANDLE | TPM2_RC_H | TPM2_RC_1);
    /* an HMAC session handle: no such session is loaded */
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_PCR_Reset);
    cf_put_u32(&c.w, 16);
    cf_put_u32(&c.w, 9);
    cf_put_u32(&c.w, 0x02000000);
    cf_put_u16(&c.w, 0);
    cf_put_u8(&c.w, 0);
    cf_put_u16(&c.w, 0);
    assert_int_equal(run(t, &c, &r), TPM2_RC_REFERENCE_S0);
    /* trailing bytes after the parameters */
    get_random_cmd(&c, 8);
    cf_put_u8(&c.w, 0);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SIZE);
    tpm_instance_free(t);
    free(e);
}

/* Every prefix of a valid command (with the header size either left alone or patched to match)
 * gives an error response and changes nothing. */
static void test_truncation(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpl = ecc_template(TPM2_ECC_NIST_P256, TPM2_ALG_ECDSA, ATTR_SIGN);
    static cmd cmds[5];
    size_t lens[5];
    lens[0] = create_primary_cmd(&cmds[0], TPM2_RH_OWNER, "", "", NULL, 0, &tpl);
    uint8_t d[32] = { 1 };
    begin(&cmds[1], TPM2_ST_SESSIONS, TPM2_CC_PCR_Extend);
    cf_put_u32(&cmds[1].w, 16);
    pw_session(&cmds[1], "");
    cf_put_u32(&cmds[1].w, 1);
    cf_put_u16(&cmds[1].w, TPM2_ALG_SHA256);
    cf_put_bytes(&cmds[1].w, d, 32);
    lens[1] = end(&cmds[1]);
    lens[2] = pcr_read_cmd(&cmds[2], TPM2_ALG_SHA256, 16);
    begin(&cmds[3], TPM2_ST_NO_SESSIONS, TPM2_CC_GetCapability);
    cf_put_u32(&cmds[3].w, TPM2_CAP_COMMANDS);
    cf_put_u32(&cmds[3].w, 0);
    cf_put_u32(&cmds[3].w, 100);
    lens[3] = end(&cmds[3]);
    begin(&cmds[4], TPM2_ST_NO_SESSIONS, TPM2_CC_Shutdown);
    cf_put_u16(&cmds[4].w, TPM2_SU_STATE);
    lens[4] = end(&cmds[4]);

    cmd pr;
    size_t prn = pcr_read_cmd(&pr, TPM2_ALG_SHA256, 16);
    resp before, after, r;
    assert_int_equal(exec_loc(t, 0, pr.b, prn, &before), TPM2_RC_SUCCESS);
    static uint8_t s0[1 << 16], s1[1 << 16];
    size_t l0 = sizeof s0;
    serialize(t, s0, &l0);
    int calls = e->calls;
    for (size_t k = 0; k < 5; k++) {
        for (size_t len = 0; len < lens[k]; len++) {
            for (int patch = 0; patch < 2; patch++) {
                uint8_t buf[TPM_MAX_COMMAND_SIZE];
                memcpy(buf, cmds[k].b, len);
                if (patch && len >= 6)
                    buf[2] = (uint8_t)(len >> 24), buf[3] = (uint8_t)(len >> 16), buf[4] = (uint8_t)(len >> 8), buf[5] = (uint8_t)len;
                uint32_t rc = exec_loc(t, 0, buf, len, &r);
                assert_int_not_equal(rc, TPM2_RC_SUCCESS);
            }
        }
    }
    assert_int_equal(e->calls, calls);
    size_t l1 = sizeof s1;
    serialize(t, s1, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(s0, s1, l0);
    assert_int_equal(exec_loc(t, 0, pr.b, prn, &after), TPM2_RC_SUCCESS);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.b, after.b, before.len);
    cmd gr;
    size_t grn = get_random_cmd(&gr, 16);
    assert_int_equal(exec_loc(t, 0, gr.b, grn, &r), TPM2_RC_SUCCESS);
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_AVAIL), TPM_OBJECT_SLOTS);
    /* and the whole commands still work */
    for (size_t k = 0; k < 4; k++)
        assert_int_equal(exec_loc(t, 0, cmds[k].b, lens[k], &r), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    free(e);
}

static void test_pcr_extend_read(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    uint8_t old[32], d[32], want[32], got[32], buf[64];
    for (int i = 0; i < 32; i++)
        d[i] = (uint8_t)(i * 3);
    pcr_value(t, TPM2_ALG_SHA256, 5, old, 32);
    uint8_t zero[32] = { 0 };
    assert_memory_equal(old, zero, 32);
    assert_int_equal(pcr_extend(t, 0, 5, d), TPM2_RC_SUCCESS);
    memcpy(buf, old, 32);
    memcpy(buf + 32, d, 32);
    size_t wl = sizeof want;
    assert_int_equal(cf_hash(CF_HASH_SHA256, buf, 64, want, &wl), CF_OK);
    pcr_value(t, TPM2_ALG_SHA256, 5, got, 32);
    assert_memory_equal(got, want, 32);
    /* twice: chained */
    assert_int_equal(pcr_extend(t, 0, 5, d), TPM2_RC_SUCCESS);
    memcpy(buf, want, 32);
    wl = sizeof want;
    assert_int_equal(cf_hash(CF_HASH_SHA256, buf, 64, want, &wl), CF_OK);
    pcr_value(t, TPM2_ALG_SHA256, 5, got, 32);
    assert_memory_equal(got, want, 32);
    /* the SHA-1 bank was not extended (only a SHA-256 digest was given) */
    uint8_t s1[20], z20[20] = { 0 };
    pcr_value(t, TPM2_ALG_SHA1, 5, s1, 20);
    assert_memory_equal(s1, z20, 20);
    /* D-RTM PCRs start at all ones */
    uint8_t ones[48];
    memset(ones, 0xFF, sizeof ones);
    uint8_t v48[48];
    pcr_value(t, TPM2_ALG_SHA384, 17, v48, 48);
    assert_memory_equal(v48, ones, 48);

    /* PCR_Event extends every bank with the event's digests */
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_PCR_Event);
    cf_put_u32(&c.w, 23);
    pw_session(&c, "");
    tpm_put_2b(&c.w, (const uint8_t *)"event", 5);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    uint8_t ev[32];
    wl = sizeof ev;
    assert_int_equal(cf_hash(CF_HASH_SHA256, "event", 5, ev, &wl), CF_OK);
    memset(buf, 0, 32);
    memcpy(buf + 32, ev, 32);
    wl = sizeof want;
    assert_int_equal(cf_hash(CF_HASH_SHA256, buf, 64, want, &wl), CF_OK);
    pcr_value(t, TPM2_ALG_SHA256, 23, got, 32);
    assert_memory_equal(got, want, 32);

    /* Shutdown(STATE) + Startup(STATE): PCR 0-15 come back, 16-23 do not; Startup(CLEAR) clears */
    assert_int_equal(shutdown(t, TPM2_SU_STATE), TPM2_RC_SUCCESS);
    uint8_t v5[32];
    pcr_value(t, TPM2_ALG_SHA256, 5, v5, 32);
    tpm_reset(t);
    assert_int_equal(startup(t, TPM2_SU_STATE), TPM2_RC_SUCCESS);
    pcr_value(t, TPM2_ALG_SHA256, 5, got, 32);
    assert_memory_equal(got, v5, 32);
    pcr_value(t, TPM2_ALG_SHA256, 23, got, 32);
    assert_memory_equal(got, zero, 32);
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_AVAIL), TPM_OBJECT_SLOTS);
    tpm_reset(t);
    assert_int_equal(startup(t, TPM2_SU_STATE), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_1);   /* used up */
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    pcr_value(t, TPM2_ALG_SHA256, 5, got, 32);
    assert_memory_equal(got, zero, 32);
    tpm_instance_free(t);
    free(e);
}

static void test_pcr_reset_locality(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    uint8_t d[32] = { 9 }, got[32], zero[32] = { 0 };
    for (uint8_t loc = 0; loc <= 4; loc++) {
        assert_int_equal(pcr_extend(t, loc, 16, d), TPM2_RC_SUCCESS);
        assert_int_equal(pcr_reset(t, loc, 16), TPM2_RC_SUCCESS);
        pcr_value(t, TPM2_ALG_SHA256, 16, got, 32);
        assert_memory_equal(got, zero, 32);
        assert_int_equal(pcr_reset(t, loc, 23), TPM2_RC_SUCCESS);
        assert_int_equal(pcr_reset(t, loc, 0), TPM2_RC_LOCALITY);
        assert_int_equal(pcr_reset(t, loc, 15), TPM2_RC_LOCALITY);
    }
    assert_int_equal(pcr_reset(t, 0, 17), TPM2_RC_LOCALITY);
    assert_int_equal(pcr_reset(t, 3, 17), TPM2_RC_LOCALITY);
    assert_int_equal(pcr_reset(t, 4, 17), TPM2_RC_SUCCESS);
    assert_int_equal(pcr_reset(t, 1, 20), TPM2_RC_LOCALITY);
    assert_int_equal(pcr_reset(t, 2, 20), TPM2_RC_SUCCESS);
    assert_int_equal(pcr_reset(t, 2, 22), TPM2_RC_SUCCESS);
    assert_int_equal(pcr_extend(t, 0, 17, d), TPM2_RC_LOCALITY);
    assert_int_equal(pcr_extend(t, 2, 17, d), TPM2_RC_SUCCESS);
    assert_int_equal(pcr_extend(t, 0, 21, d), TPM2_RC_LOCALITY);
    assert_int_equal(pcr_extend(t, 2, 21, d), TPM2_RC_SUCCESS);
    assert_int_equal(pcr_reset(t, 0, TPM2_RH_NULL), TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    tpm_instance_free(t);
    free(e);
}

static void same_public(const TPM2B_PUBLIC *a, const TPM2B_PUBLIC *b, bool same)
{
    uint8_t x[1024], y[1024];
    size_t xl = tpm_marshal_to(TPM_MARSHAL(TPMT_PUBLIC), &a->publicArea, x, sizeof x);
    size_t yl = tpm_marshal_to(TPM_MARSHAL(TPMT_PUBLIC), &b->publicArea, y, sizeof y);
    assert_true(xl > 0 && yl > 0);
    if (same) {
        assert_int_equal(xl, yl);
        assert_memory_equal(x, y, xl);
    } else {
        assert_true(xl != yl || memcmp(x, y, xl) != 0);
    }
}

static void test_primary_deterministic(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpls[3] = {
        ecc_template(TPM2_ECC_NIST_P256, TPM2_ALG_ECDSA, ATTR_SIGN),
        ecc_template(TPM2_ECC_NIST_P384, TPM2_ALG_NULL, ATTR_SIGN),
        rsa_template(TPM2_ALG_RSASSA, ATTR_SIGN),
    };
    TPM2B_PUBLIC first[3], p;
    TPM2_HANDLE h;
    for (int k = 0; k < 3; k++) {
        assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", &tpls[k], &h, &first[k]), TPM2_RC_SUCCESS);
        assert_int_equal(h, TPM_TRANSIENT_FIRST);
        assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
        assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", &tpls[k], &h, &p), TPM2_RC_SUCCESS);
        same_public(&first[k], &p, true);
        assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
        /* another hierarchy, another key; another unique, another key */
        assert_int_equal(create_primary_pw(t, TPM2_RH_ENDORSEMENT, "", &tpls[k], &h, &p), TPM2_RC_SUCCESS);
        same_public(&first[k], &p, false);
        assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    }
    TPMT_PUBLIC u = tpls[0];
    u.unique.ecc.x.size = 1;
    u.unique.ecc.x.buffer[0] = 1;
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", &u, &h, &p), TPM2_RC_SUCCESS);
    same_public(&first[0], &p, false);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, h), TPM2_RC_HANDLE | TPM2_RC_P | TPM2_RC_1);

    /* a fresh instance from the persisted blob: the same keys */
    env *e2 = calloc(1, sizeof *e2);
    tpm_instance *t2 = new_tpm(e2, e->blob, e->len);
    assert_int_equal(startup(t2, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    for (int k = 0; k < 3; k += 2) {
        assert_int_equal(create_primary_pw(t2, TPM2_RH_OWNER, "", &tpls[k], &h, &p), TPM2_RC_SUCCESS);
        same_public(&first[k], &p, true);
        assert_int_equal(flush(t2, h), TPM2_RC_SUCCESS);
    }
    /* a new TPM (new seeds): another key */
    env *e3 = calloc(1, sizeof *e3);
    tpm_instance *t3 = new_tpm(e3, NULL, 0);
    assert_int_equal(startup(t3, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(create_primary_pw(t3, TPM2_RH_OWNER, "", &tpls[0], &h, &p), TPM2_RC_SUCCESS);
    same_public(&first[0], &p, false);
    /* the null hierarchy's seed changes with every TPM Reset */
    TPM2B_PUBLIC n1, n2;
    assert_int_equal(create_primary_pw(t3, TPM2_RH_NULL, "", &tpls[0], &h, &n1), TPM2_RC_SUCCESS);
    tpm_reset(t3);
    assert_int_equal(startup(t3, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(create_primary_pw(t3, TPM2_RH_NULL, "", &tpls[0], &h, &n2), TPM2_RC_SUCCESS);
    same_public(&n1, &n2, false);
    /* slots run out */
    assert_int_equal(create_primary_pw(t3, TPM2_RH_OWNER, "", &tpls[0], &h, &p), TPM2_RC_SUCCESS);
    assert_int_equal(create_primary_pw(t3, TPM2_RH_OWNER, "", &tpls[0], &h, &p), TPM2_RC_SUCCESS);
    assert_int_equal(create_primary_pw(t3, TPM2_RH_OWNER, "", &tpls[0], &h, &p), TPM2_RC_OBJECT_MEMORY);
    /* bad templates */
    TPMT_PUBLIC bad = tpls[0];
    bad.parameters.eccDetail.curveID = TPM2_ECC_NIST_P521;
    assert_int_equal(create_primary_pw(t3, TPM2_RH_OWNER, "", &bad, &h, &p), TPM2_RC_CURVE | TPM2_RC_P | TPM2_RC_2);
    bad = tpls[2];
    bad.parameters.rsaDetail.keyBits = 1024;
    assert_int_equal(create_primary_pw(t3, TPM2_RH_OWNER, "", &bad, &h, &p), TPM2_RC_KEY_SIZE | TPM2_RC_P | TPM2_RC_2);
    tpm_instance_free(t);
    tpm_instance_free(t2);
    tpm_instance_free(t3);
    free(e);
    free(e2);
    free(e3);
}

static void sign_verify(tpm_instance *t, const TPMT_PUBLIC *tpl, TPMI_ALG_SIG_SCHEME scheme)
{
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", tpl, &h, &pub), TPM2_RC_SUCCESS);
    uint8_t digest[32];
    size_t dl = sizeof digest;
    assert_int_equal(cf_hash(CF_HASH_SHA256, "message", 7, digest, &dl), CF_OK);
    TPMT_SIGNATURE sig;
    TPMT_TK_VERIFIED tk;
    assert_int_equal(sign(t, h, "", digest, 32, scheme, NULL, &sig), TPM2_RC_SUCCESS);
    assert_int_equal(verify(t, h, digest, 32, &sig, &tk), TPM2_RC_SUCCESS);
    assert_int_equal(tk.tag, TPM2_ST_VERIFIED);
    assert_int_equal(tk.hierarchy, TPM2_RH_OWNER);
    assert_int_equal(tk.digest.size, 32);
    /* a wrong digest does not verify */
    digest[0] ^= 1;
    assert_int_equal(verify(t, h, digest, 32, &sig, &tk), TPM2_RC_SIGNATURE | TPM2_RC_P | TPM2_RC_2);
    /* a digest of the wrong size */
    assert_int_equal(sign(t, h, "", digest, 20, scheme, NULL, &sig), TPM2_RC_SIZE | TPM2_RC_P | TPM2_RC_1);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
}

static void test_sign_verify(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC ecc = ecc_template(TPM2_ECC_NIST_P256, TPM2_ALG_ECDSA, ATTR_SIGN);
    TPMT_PUBLIC ecc_null = ecc_template(TPM2_ECC_NIST_P256, TPM2_ALG_NULL, ATTR_SIGN);
    TPMT_PUBLIC rsa = rsa_template(TPM2_ALG_RSASSA, ATTR_SIGN);
    TPMT_PUBLIC rsa_null = rsa_template(TPM2_ALG_NULL, ATTR_SIGN);
    sign_verify(t, &ecc, TPM2_ALG_NULL);
    sign_verify(t, &ecc, TPM2_ALG_ECDSA);
    sign_verify(t, &ecc_null, TPM2_ALG_ECDSA);
    sign_verify(t, &rsa, TPM2_ALG_NULL);
    sign_verify(t, &rsa_null, TPM2_ALG_RSAPSS);
    sign_verify(t, &rsa_null, TPM2_ALG_RSASSA);

    /* scheme rules: a key with a scheme refuses another; a key without one needs one */
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    TPMT_SIGNATURE sig;
    uint8_t digest[32] = { 1 };
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", &rsa, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, h, "", digest, 32, TPM2_ALG_RSAPSS, NULL, &sig), TPM2_RC_SCHEME | TPM2_RC_P | TPM2_RC_2);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", &ecc_null, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, h, "", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_SCHEME | TPM2_RC_P | TPM2_RC_2);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);

    /* a restricted key signs only what the TPM hashed (with a hashcheck ticket) */
    TPMT_PUBLIC rk = ecc_template(TPM2_ECC_NIST_P256, TPM2_ALG_ECDSA, ATTR_SIGN | TPMA_OBJECT_RESTRICTED);
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", &rk, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, h, "", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_TICKET | TPM2_RC_P | TPM2_RC_3);
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_Hash);
    tpm_put_2b(&c.w, (const uint8_t *)"data", 4);
    cf_put_u16(&c.w, TPM2_ALG_SHA256);
    cf_put_u32(&c.w, TPM2_RH_OWNER);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    size_t off = 10;
    TPM2B_DIGEST hd;
    TPMT_TK_HASHCHECK tk;
    assert_int_equal(Tss2_MU_TPM2B_DIGEST_Unmarshal(r.b, r.len, &off, &hd), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPMT_TK_HASHCHECK_Unmarshal(r.b, r.len, &off, &tk), TSS2_RC_SUCCESS);
    uint8_t want[32];
    size_t wl = sizeof want;
    assert_int_equal(cf_hash(CF_HASH_SHA256, "data", 4, want, &wl), CF_OK);
    assert_memory_equal(hd.buffer, want, 32);
    assert_int_equal(tk.hierarchy, TPM2_RH_OWNER);
    assert_int_equal(sign(t, h, "", hd.buffer, 32, TPM2_ALG_NULL, &tk, &sig), TPM2_RC_SUCCESS);
    TPMT_TK_VERIFIED vt;
    assert_int_equal(verify(t, h, hd.buffer, 32, &sig, &vt), TPM2_RC_SUCCESS);
    /* the ticket is for that digest only */
    hd.buffer[0] ^= 1;
    assert_int_equal(sign(t, h, "", hd.buffer, 32, TPM2_ALG_NULL, &tk, &sig), TPM2_RC_TICKET | TPM2_RC_P | TPM2_RC_3);
    /* data that looks like a TPM attestation gets no ticket */
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_Hash);
    tpm_put_2b(&c.w, (const uint8_t *)"\xff" "TCGxyz", 7);
    cf_put_u16(&c.w, TPM2_ALG_SHA256);
    cf_put_u32(&c.w, TPM2_RH_OWNER);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    off = 10;
    assert_int_equal(Tss2_MU_TPM2B_DIGEST_Unmarshal(r.b, r.len, &off, &hd), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPMT_TK_HASHCHECK_Unmarshal(r.b, r.len, &off, &tk), TSS2_RC_SUCCESS);
    assert_int_equal(tk.hierarchy, TPM2_RH_NULL);
    assert_int_equal(tk.digest.size, 0);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    free(e);
}

static void test_password_da(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpl = ecc_template(TPM2_ECC_NIST_P256, TPM2_ALG_ECDSA, ATTR_SIGN);
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "secret", &tpl, &h, &pub), TPM2_RC_SUCCESS);
    uint8_t digest[32] = { 7 };
    TPMT_SIGNATURE sig;
    const uint32_t auth_fail = TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1;
    assert_int_equal(sign(t, h, "secret", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, h, "secret\0\0", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_SUCCESS);
    uint32_t max = property(t, TPM2_PT_MAX_AUTH_FAIL);
    assert_int_equal(max, 3);
    int calls = e->calls;
    for (uint32_t i = 0; i < max; i++) {
        assert_int_equal(sign(t, h, "wrong", digest, 32, TPM2_ALG_NULL, NULL, &sig), auth_fail);
        assert_int_equal(property(t, TPM2_PT_LOCKOUT_COUNTER), i + 1);
    }
    assert_true(e->calls >= calls + (int)max);   /* each failure persisted */
    assert_true(property(t, TPM2_PT_PERMANENT) & TPMA_PERMANENT_INLOCKOUT);
    assert_int_equal(sign(t, h, "secret", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_LOCKOUT);
    /* the count survives a restart of the process (it is in the blob) */
    env *e2 = calloc(1, sizeof *e2);
    e2->now = e->now;
    tpm_instance *t2 = new_tpm(e2, e->blob, e->len);
    assert_int_equal(startup(t2, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(property(t2, TPM2_PT_LOCKOUT_COUNTER), max);
    tpm_instance_free(t2);
    free(e2);
    /* recoveryTime later, one try is back */
    uint32_t interval = property(t, TPM2_PT_LOCKOUT_INTERVAL);
    e->now += (uint64_t)interval * 1000u;
    assert_int_equal(sign(t, h, "secret", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_SUCCESS);
    assert_int_equal(property(t, TPM2_PT_LOCKOUT_COUNTER), max - 1);
    assert_int_equal(sign(t, h, "wrong", digest, 32, TPM2_ALG_NULL, NULL, &sig), auth_fail);
    assert_int_equal(sign(t, h, "secret", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_LOCKOUT);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);

    /* a noDA object and a hierarchy: BAD_AUTH, not counted */
    e->now += (uint64_t)interval * 1000u * max;
    assert_int_equal(property(t, TPM2_PT_LOCKOUT_COUNTER), 0);
    TPMT_PUBLIC noda = ecc_template(TPM2_ECC_NIST_P256, TPM2_ALG_ECDSA, ATTR_SIGN | TPMA_OBJECT_NODA);
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "pw", &noda, &h, &pub), TPM2_RC_SUCCESS);
    for (int i = 0; i < 5; i++)
        assert_int_equal(sign(t, h, "wrong", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_BAD_AUTH | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(property(t, TPM2_PT_LOCKOUT_COUNTER), 0);
    cmd c;
    resp r;
    assert_int_equal(exec_loc(t, 0, c.b, create_primary_cmd(&c, TPM2_RH_OWNER, "wrong", "", NULL, 0, &noda), &r),
                     TPM2_RC_BAD_AUTH | TPM2_RC_S | TPM2_RC_1);
    /* an object without userWithAuth refuses password authorization */
    TPMT_PUBLIC pol = ecc_template(TPM2_ECC_NIST_P256, TPM2_ALG_ECDSA, ATTR_SIGN & ~TPMA_OBJECT_USERWITHAUTH);
    TPM2_HANDLE h2;
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", &pol, &h2, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, h2, "", digest, 32, TPM2_ALG_NULL, NULL, &sig), TPM2_RC_AUTH_UNAVAILABLE);
    tpm_instance_free(t);
    free(e);
}

static void test_capability_commands(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    for (size_t i = 1; i < tpm_n_commands; i++)
        assert_true(tpm_commands[i - 1].cc < tpm_commands[i].cc);   /* sorted: the lookup is a bisection */
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GetCapability);
    cf_put_u32(&c.w, TPM2_CAP_COMMANDS);
    cf_put_u32(&c.w, TPM2_CC_FIRST);
    cf_put_u32(&c.w, TPM2_MAX_CAP_CC);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    size_t off = 10;
    uint8_t more;
    TPMS_CAPABILITY_DATA d;
    assert_int_equal(Tss2_MU_UINT8_Unmarshal(r.b, r.len, &off, &more), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(r.b, r.len, &off, &d), TSS2_RC_SUCCESS);
    assert_int_equal(off, r.len);
    assert_int_equal(more, TPM2_NO);
    assert_int_equal(d.data.command.count, tpm_n_commands);
    for (size_t i = 0; i < tpm_n_commands; i++) {
        TPMA_CC a = d.data.command.commandAttributes[i];
        assert_int_equal(a & TPMA_CC_COMMANDINDEX_MASK, tpm_commands[i].cc);
        assert_int_equal((a & TPMA_CC_CHANDLES_MASK) >> TPMA_CC_CHANDLES_SHIFT, tpm_commands[i].n_handles);
        assert_int_equal(!!(a & TPMA_CC_RHANDLE), tpm_commands[i].r_handle);
    }
    /* paging: two at a time from the third */
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GetCapability);
    cf_put_u32(&c.w, TPM2_CAP_COMMANDS);
    cf_put_u32(&c.w, tpm_commands[2].cc);
    cf_put_u32(&c.w, 2);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    off = 10;
    assert_int_equal(Tss2_MU_UINT8_Unmarshal(r.b, r.len, &off, &more), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(r.b, r.len, &off, &d), TSS2_RC_SUCCESS);
    assert_int_equal(more, TPM2_YES);
    assert_int_equal(d.data.command.count, 2);
    assert_int_equal(d.data.command.commandAttributes[0] & 0xFFFF, tpm_commands[2].cc);
    /* other classes answer; an unknown one is a parameter error */
    static const uint32_t caps[] = { TPM2_CAP_ALGS, TPM2_CAP_HANDLES, TPM2_CAP_PP_COMMANDS, TPM2_CAP_AUDIT_COMMANDS,
                                     TPM2_CAP_PCRS, TPM2_CAP_TPM_PROPERTIES, TPM2_CAP_PCR_PROPERTIES, TPM2_CAP_ECC_CURVES };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GetCapability);
        cf_put_u32(&c.w, caps[i]);
        cf_put_u32(&c.w, caps[i] == TPM2_CAP_TPM_PROPERTIES ? TPM2_PT_FIXED : 0);
        cf_put_u32(&c.w, 1000);
        assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
        off = 10;
        assert_int_equal(Tss2_MU_UINT8_Unmarshal(r.b, r.len, &off, &more), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(r.b, r.len, &off, &d), TSS2_RC_SUCCESS);
        assert_int_equal(off, r.len);
    }
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GetCapability);
    cf_put_u32(&c.w, 0x77);
    cf_put_u32(&c.w, 0);
    cf_put_u32(&c.w, 1);
    assert_int_equal(run(t, &c, &r), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_1);
    assert_int_equal(property(t, TPM2_PT_MANUFACTURER), 0x43464652);   /* "CFFR" */
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_MIN), 3);
    assert_int_equal(property(t, TPM2_PT_PCR_COUNT), 24);
    tpm_instance_free(t);
    free(e);
}

static void test_corrupt_blob(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(shutdown(t, TPM2_SU_STATE), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    assert_true(e->len > 0);
    for (size_t n = 0; n < e->len; n++) {
        tpm_instance *bad = NULL;
        assert_int_equal(tpm_instance_new("x", e->blob, n, NULL, NULL, &bad), CF_E_STORE_CORRUPT);
        assert_null(bad);
    }
    e->blob[5] ^= 0x40;   /* version */
    tpm_instance *bad = NULL;
    assert_int_equal(tpm_instance_new("x", e->blob, e->len, NULL, NULL, &bad), CF_E_STORE_CORRUPT);
    e->blob[5] ^= 0x40;
    e->blob[e->len++] = 0;   /* trailing byte */
    assert_int_equal(tpm_instance_new("x", e->blob, e->len, NULL, NULL, &bad), CF_E_STORE_CORRUPT);
    e->len--;
    assert_int_equal(tpm_instance_new("x", e->blob, e->len, NULL, NULL, &bad), CF_OK);
    tpm_instance_free(bad);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_startup_required),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_pcr_extend_read),
        cmocka_unit_test(test_pcr_reset_locality),
        cmocka_unit_test(test_primary_deterministic),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_password_da),
        cmocka_unit_test(test_capability_commands),
        cmocka_unit_test(test_corrupt_blob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
