/* mech_test.c: the mechanism table and the mechanism implementations, driven directly (no
 * sessions, no objects): an hsm_op is built by hand as op.c would build it.
 *
 * Known answers: FIPS 180-2 (SHA-256 "abc"), RFC 4231 case 2 (HMAC-SHA-256), NIST SP 800-38A
 * F.1.1 / F.2.1 / F.5.1 (AES-128 ECB, CBC, CTR), McGrew-Viega GCM test case 4, RFC 3394 sec. 4.1
 * and RFC 5649 sec. 6 (key wrap), RFC 8032 sec. 7.1 test 1 (Ed25519). Everything else is a round
 * trip or a refusal with the PKCS#11 error the spec names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "base/secmem.h"
#include "hsm/mech.h"

/* ---- helpers ------------------------------------------------------------------------------------ */
static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    while (h[0] && h[1]) {
        if (h[0] == ' ') {
            h++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(h, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

#define ASSERT_HEX(buf, len, hex) do { \
    uint8_t want_[512]; \
    size_t wl_ = unhex(hex, want_); \
    assert_int_equal((len), wl_); \
    assert_memory_equal((buf), want_, wl_); \
} while (0)

/* An operation as op.c builds it: kind, row, key snapshot; then the row's init. */
static cf_err start(hsm_op *op, hsm_op_kind kind, const CK_MECHANISM *m, cf_pkey *pk,
                    const uint8_t *secret, size_t slen)
{
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->mech = hsm_mech_find(m->mechanism);
    assert_non_null(op->mech);
    assert_non_null(op->mech->ops);
    op->key.type = op->mech->key_type;
    if (pk) {
        op->key.pkey = cf_pkey_ref(pk);
        op->key.cls = kind == HSM_OP_SIGN || kind == HSM_OP_DECRYPT ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
    } else if (secret) {
        op->key.secret = cf_secret_dup(secret, slen);
        op->key.secret_len = slen;
        op->key.cls = CKO_SECRET_KEY;
    }
    return op->mech->ops->init(op, m);
}

static void finish(hsm_op *op)
{
    op->mech->ops->cleanup(op);
    assert_null(op->ctx);
    hsm_key_release(&op->key);
}

/* init + oneshot (+ cleanup). For output kinds, checks out_len is an upper bound. */
static cf_err run1(hsm_op_kind kind, const CK_MECHANISM *m, cf_pkey *pk, const uint8_t *secret,
                   size_t slen, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    hsm_op op;
    cf_err rv = start(&op, kind, m, pk, secret, slen);
    if (rv == CF_OK) {
        size_t bound = op.mech->ops->out_len(&op, HSM_STEP_ONESHOT, inlen);
        rv = op.mech->ops->oneshot(&op, in, inlen, out, outlen);
        if (rv == CF_OK)
            assert_true(*outlen <= bound);
    }
    finish(&op);
    return rv;
}

/* init + update in `chunk`-byte pieces + final, collecting the output. */
static cf_err runN(hsm_op_kind kind, const CK_MECHANISM *m, cf_pkey *pk, const uint8_t *secret,
                   size_t slen, const uint8_t *in, size_t inlen, size_t chunk, uint8_t *out, size_t *outlen)
{
    hsm_op op;
    size_t cap = *outlen, w = 0;
    cf_err rv = start(&op, kind, m, pk, secret, slen);
    bool has_out = kind == HSM_OP_ENCRYPT || kind == HSM_OP_DECRYPT;
    for (size_t off = 0; rv == CF_OK && off < inlen; off += chunk) {
        size_t n = inlen - off < chunk ? inlen - off : chunk;
        size_t ol = has_out ? cap - w : 0;
        if (has_out) {
            size_t bound = op.mech->ops->out_len(&op, HSM_STEP_UPDATE, n);
            rv = op.mech->ops->update(&op, in + off, n, out + w, &ol);
            if (rv == CF_OK)
                assert_true(ol <= bound);
        } else {
            rv = op.mech->ops->update(&op, in + off, n, NULL, &ol);
        }
        w += ol;
    }
    if (rv == CF_OK) {
        size_t bound = op.mech->ops->out_len(&op, HSM_STEP_FINAL, 0);
        size_t ol = cap - w;
        rv = op.mech->ops->final(&op, out + w, &ol);
        if (rv == CF_OK)
            assert_true(ol <= bound);
        w += ol;
    }
    *outlen = w;
    finish(&op);
    return rv;
}

static cf_err verify1(const CK_MECHANISM *m, cf_pkey *pk, const uint8_t *secret, size_t slen,
                      const uint8_t *in, size_t inlen, const uint8_t *sig, size_t siglen)
{
    hsm_op op;
    cf_err rv = start(&op, HSM_OP_VERIFY, m, pk, secret, slen);
    if (rv == CF_OK)
        rv = op.mech->ops->verify(&op, in, inlen, sig, siglen);
    finish(&op);
    return rv;
}

static cf_err verifyN(const CK_MECHANISM *m, cf_pkey *pk, const uint8_t *secret, size_t slen,
                      const uint8_t *in, size_t inlen, size_t chunk, const uint8_t *sig, size_t siglen)
{
    hsm_op op;
    cf_err rv = start(&op, HSM_OP_VERIFY, m, pk, secret, slen);
    for (size_t off = 0; rv == CF_OK && off < inlen; off += chunk) {
        size_t n = inlen - off < chunk ? inlen - off : chunk, ol = 0;
        rv = op.mech->ops->update(&op, in + off, n, NULL, &ol);
    }
    if (rv == CF_OK)
        rv = op.mech->ops->verify_final(&op, sig, siglen);
    finish(&op);
    return rv;
}

static const uint8_t msg[] = "The quick brown fox jumps over the lazy dog, several times over.";

/* ---- the table ---------------------------------------------------------------------------------- */
static void test_table(void **state)
{
    (void)state;
    const CK_FLAGS op_flags = CKF_ENCRYPT | CKF_DECRYPT | CKF_SIGN | CKF_VERIFY | CKF_DIGEST;
    assert_true(hsm_mech_count >= 40);
    for (size_t i = 0; i < hsm_mech_count; i++) {
        const hsm_mech *r = &hsm_mechs[i];
        assert_non_null(r->name);
        assert_true(strncmp(r->name, "CKM_", 4) == 0);
        for (size_t j = i + 1; j < hsm_mech_count; j++)
            assert_true(r->type != hsm_mechs[j].type);
        assert_int_equal(r->ops != NULL, (r->flags & op_flags) != 0);
        assert_int_equal(r->keypair_gen != NULL, (r->flags & CKF_GENERATE_KEY_PAIR) != 0);
        assert_int_equal(r->wrap != NULL, (r->flags & CKF_WRAP) != 0);
        assert_int_equal(r->unwrap != NULL, (r->flags & CKF_UNWRAP) != 0);
        assert_int_equal(r->derive != NULL, (r->flags & CKF_DERIVE) != 0);
        assert_true(r->min_size <= r->max_size);
        if (r->ops) {
            assert_non_null(r->ops->init);
            assert_non_null(r->ops->cleanup);
            assert_non_null(r->ops->out_len);
            assert_non_null(r->ops->oneshot);
            if (r->flags & CKF_VERIFY)
                assert_true(r->ops->verify && r->ops->verify_final);
            if (r->flags & (CKF_SIGN | CKF_DIGEST))
                assert_non_null(r->ops->reset);
        }
        assert_ptr_equal(hsm_mech_find(r->type), r);
    }
    assert_null(hsm_mech_find(CKM_DES3_CBC));
    assert_null(hsm_mech_find(CKM_MD5));
    const hsm_mech *r = hsm_mech_find(CKM_SHA256_RSA_PKCS_PSS);
    assert_string_equal(r->name, "CKM_SHA256_RSA_PKCS_PSS");
    assert_int_equal(r->key_type, CKK_RSA);
    assert_int_equal(hsm_mech_find(CKM_SHA256)->key_type, CK_UNAVAILABLE_INFORMATION);
}

/* ---- digests and HMAC --------------------------------------------------------------------------- */
#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_digest(void **state)
{
    (void)state;
    CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
    uint8_t out[64];
    size_t ol = sizeof out;
    assert_int_equal(run1(HSM_OP_DIGEST, &m, NULL, NULL, 0, (const uint8_t *)"abc", 3, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, SHA256_ABC);
    ol = sizeof out;
    assert_int_equal(runN(HSM_OP_DIGEST, &m, NULL, NULL, 0, (const uint8_t *)"abc", 3, 1, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, SHA256_ABC);

    /* A short buffer at final leaves the digest running; reset makes it reusable. */
    hsm_op op;
    assert_int_equal(start(&op, HSM_OP_DIGEST, &m, NULL, NULL, 0), CF_OK);
    assert_int_equal(op.mech->ops->out_len(&op, HSM_STEP_FINAL, 0), 32);
    size_t z = 0;
    assert_int_equal(op.mech->ops->update(&op, (const uint8_t *)"ab", 2, NULL, &z), CF_OK);
    assert_int_equal(op.mech->ops->update(&op, (const uint8_t *)"c", 1, NULL, &z), CF_OK);
    ol = 31;
    assert_int_equal(op.mech->ops->final(&op, out, &ol), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(ol, 32);
    assert_int_equal(op.mech->ops->final(&op, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, SHA256_ABC);
    assert_int_equal(op.mech->ops->reset(&op), CF_OK);
    ol = sizeof out;
    assert_int_equal(op.mech->ops->oneshot(&op, (const uint8_t *)"abc", 3, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, SHA256_ABC);
    finish(&op);

    /* Parameters are refused. */
    uint8_t junk[4] = { 0 };
    CK_MECHANISM bad = { CKM_SHA256, junk, sizeof junk };
    assert_int_equal(start(&op, HSM_OP_DIGEST, &bad, NULL, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
}

static void test_hmac(void **state)
{
    (void)state;
    static const char data[] = "what do ya want for nothing?";
    static const uint8_t key[] = "Jefe";
    const char *mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    CK_MECHANISM m = { CKM_SHA256_HMAC, NULL, 0 };
    uint8_t out[64], tag[32];
    size_t ol = sizeof out;
    size_t dl = strlen(data);
    assert_int_equal(run1(HSM_OP_SIGN, &m, NULL, key, 4, (const uint8_t *)data, dl, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, mac);
    ol = sizeof out;
    assert_int_equal(runN(HSM_OP_SIGN, &m, NULL, key, 4, (const uint8_t *)data, dl, 10, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, mac);
    unhex(mac, tag);

    assert_int_equal(verify1(&m, NULL, key, 4, (const uint8_t *)data, dl, tag, 32), CF_OK);
    assert_int_equal(verifyN(&m, NULL, key, 4, (const uint8_t *)data, dl, 10, tag, 32), CF_OK);
    assert_int_equal(verify1(&m, NULL, key, 4, (const uint8_t *)data, dl, tag, 31), CF_E_SIGNATURE_LEN_RANGE);
    assert_int_equal(verifyN(&m, NULL, key, 4, (const uint8_t *)data, dl, 7, tag, 16), CF_E_SIGNATURE_LEN_RANGE);
    tag[5] ^= 1;
    assert_int_equal(verify1(&m, NULL, key, 4, (const uint8_t *)data, dl, tag, 32), CF_E_SIGNATURE_INVALID);
    assert_int_equal(verifyN(&m, NULL, key, 4, (const uint8_t *)data, dl, 3, tag, 32), CF_E_SIGNATURE_INVALID);

    /* Reuse: sign, reset, sign again. */
    hsm_op op;
    assert_int_equal(start(&op, HSM_OP_SIGN, &m, NULL, key, 4), CF_OK);
    for (int i = 0; i < 3; i++) {
        size_t z = 0;
        ol = sizeof out;
        assert_int_equal(op.mech->ops->update(&op, (const uint8_t *)data, 5, NULL, &z), CF_OK);
        assert_int_equal(op.mech->ops->update(&op, (const uint8_t *)data + 5, dl - 5, NULL, &z), CF_OK);
        assert_int_equal(op.mech->ops->final(&op, out, &ol), CF_OK);
        ASSERT_HEX(out, ol, mac);
        assert_int_equal(op.mech->ops->reset(&op), CF_OK);
    }
    finish(&op);

    /* SHA-512 length, and an empty key is out of range. */
    CK_MECHANISM m512 = { CKM_SHA512_HMAC, NULL, 0 };
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_SIGN, &m512, NULL, key, 4, (const uint8_t *)data, dl, out, &ol), CF_OK);
    assert_int_equal(ol, 64);
    assert_int_equal(start(&op, HSM_OP_SIGN, &m, NULL, key, 0), CF_E_KEY_SIZE_RANGE);
    finish(&op);
}

/* ---- AES ------------------------------------------------------------------------------------------ */
#define K128 "2b7e151628aed2a6abf7158809cf4f3c"
#define PT4 "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51" \
            "30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710"

static void test_aes_ecb_cbc(void **state)
{
    (void)state;
    uint8_t key[16], pt[64], iv[16], out[128], back[128];
    unhex(K128, key);
    unhex(PT4, pt);
    unhex("000102030405060708090a0b0c0d0e0f", iv);

    CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
    size_t ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &ecb, NULL, key, 16, pt, 16, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, "3ad77bb40d7a3660a89ecaf32466ef97");
    size_t bl = sizeof back;
    assert_int_equal(run1(HSM_OP_DECRYPT, &ecb, NULL, key, 16, out, 16, back, &bl), CF_OK);
    assert_int_equal(bl, 16);
    assert_memory_equal(back, pt, 16);
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &ecb, NULL, key, 16, pt, 15, out, &ol), CF_E_DATA_LEN_RANGE);
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_DECRYPT, &ecb, NULL, key, 16, pt, 17, out, &ol), CF_E_ENCRYPTED_DATA_LEN_RANGE);
    ol = sizeof out;
    assert_int_equal(runN(HSM_OP_ENCRYPT, &ecb, NULL, key, 16, pt, 33, 7, out, &ol), CF_E_DATA_LEN_RANGE);

    CK_MECHANISM cbc = { CKM_AES_CBC, iv, 16 };
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &cbc, NULL, key, 16, pt, 64, out, &ol), CF_OK);
    assert_int_equal(ol, 64);
    ASSERT_HEX(out, 16, "7649abac8119b246cee98e9b12e9197d");
    /* Multi-part in odd pieces gives the same bytes, each update bounded by out_len. */
    uint8_t out2[128];
    size_t ol2 = sizeof out2;
    assert_int_equal(runN(HSM_OP_ENCRYPT, &cbc, NULL, key, 16, pt, 64, 7, out2, &ol2), CF_OK);
    assert_int_equal(ol2, 64);
    assert_memory_equal(out, out2, 64);
    bl = sizeof back;
    assert_int_equal(runN(HSM_OP_DECRYPT, &cbc, NULL, key, 16, out, 64, 5, back, &bl), CF_OK);
    assert_int_equal(bl, 64);
    assert_memory_equal(back, pt, 64);

    /* An exact-size buffer is enough (out_len is exact for unpadded modes). */
    hsm_op op;
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &cbc, NULL, key, 16), CF_OK);
    assert_int_equal(op.mech->ops->out_len(&op, HSM_STEP_ONESHOT, 32), 32);
    ol = 32;
    assert_int_equal(op.mech->ops->oneshot(&op, pt, 32, out2, &ol), CF_OK);
    assert_int_equal(ol, 32);
    assert_memory_equal(out2, out, 32);
    finish(&op);

    /* CBC_PAD: 20 bytes make 32; decrypt in pieces gives the 20 back. */
    CK_MECHANISM pad = { CKM_AES_CBC_PAD, iv, 16 };
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &pad, NULL, key, 16, pt, 20, out, &ol), CF_OK);
    assert_int_equal(ol, 32);
    ASSERT_HEX(out, 16, "7649abac8119b246cee98e9b12e9197d");
    bl = sizeof back;
    assert_int_equal(runN(HSM_OP_DECRYPT, &pad, NULL, key, 16, out, 32, 3, back, &bl), CF_OK);
    assert_int_equal(bl, 20);
    assert_memory_equal(back, pt, 20);
    bl = sizeof back;
    assert_int_equal(run1(HSM_OP_DECRYPT, &pad, NULL, key, 16, out, 32, back, &bl), CF_OK);
    assert_int_equal(bl, 20);
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &pad, NULL, key, 16, pt, 32, out, &ol), CF_OK);
    assert_int_equal(ol, 48);
    out[47] ^= 0x55;   /* the padding no longer checks (overwhelmingly likely) */
    bl = sizeof back;
    assert_int_equal(run1(HSM_OP_DECRYPT, &pad, NULL, key, 16, out, 48, back, &bl), CF_E_ENCRYPTED_DATA_INVALID);
    bl = sizeof back;
    assert_int_equal(run1(HSM_OP_DECRYPT, &pad, NULL, key, 16, out, 47, back, &bl), CF_E_ENCRYPTED_DATA_LEN_RANGE);

    /* Bad parameters and keys. */
    CK_MECHANISM iv15 = { CKM_AES_CBC, iv, 15 };
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &iv15, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    CK_MECHANISM ivnull = { CKM_AES_CBC_PAD, NULL, 16 };
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &ivnull, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    CK_MECHANISM ecbp = { CKM_AES_ECB, iv, 16 };
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &ecbp, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &ecb, NULL, key, 15), CF_E_KEY_SIZE_RANGE);
    finish(&op);
}

static void test_aes_ctr(void **state)
{
    (void)state;
    uint8_t key[16], pt[64], out[128], back[128];
    unhex(K128, key);
    unhex(PT4, pt);
    CK_AES_CTR_PARAMS cp = { .ulCounterBits = 128 };
    unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", cp.cb);
    CK_MECHANISM m = { CKM_AES_CTR, &cp, sizeof cp };
    const char *ct = "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff"
                     "5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee";
    size_t ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &m, NULL, key, 16, pt, 64, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, ct);
    ol = sizeof out;
    assert_int_equal(runN(HSM_OP_ENCRYPT, &m, NULL, key, 16, pt, 64, 13, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, ct);
    size_t bl = sizeof back;
    assert_int_equal(runN(HSM_OP_DECRYPT, &m, NULL, key, 16, out, 61, 9, back, &bl), CF_OK);
    assert_int_equal(bl, 61);
    assert_memory_equal(back, pt, 61);

    /* An 8-bit counter at 0xff has one block before it would wrap. */
    cp.ulCounterBits = 8;
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &m, NULL, key, 16, pt, 16, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, "874d6191b620e3261bef6864990db6ce");
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &m, NULL, key, 16, pt, 17, out, &ol), CF_E_DATA_LEN_RANGE);
    ol = sizeof out;
    assert_int_equal(runN(HSM_OP_ENCRYPT, &m, NULL, key, 16, pt, 32, 8, out, &ol), CF_E_DATA_LEN_RANGE);

    hsm_op op;
    cp.ulCounterBits = 0;
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &m, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    cp.ulCounterBits = 129;
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &m, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    cp.ulCounterBits = 32;
    m.ulParameterLen = sizeof cp - 1;
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &m, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
}

/* McGrew and Viega, "The Galois/Counter Mode of Operation", test case 4. */
#define GCM_K "feffe9928665731c6d6a8f9467308308"
#define GCM_P "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
              "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
#define GCM_A "feedfacedeadbeeffeedfacedeadbeefabaddad2"
#define GCM_IV "cafebabefacedbaddecaf888"
#define GCM_C "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e" \
              "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
#define GCM_T "5bc94fbc3221a5db94fae95ae7121a47"

static void test_aes_gcm(void **state)
{
    (void)state;
    uint8_t key[16], pt[64], aad[20], iv[12], out[128], back[128];
    unhex(GCM_K, key);
    size_t ptl = unhex(GCM_P, pt);
    unhex(GCM_A, aad);
    unhex(GCM_IV, iv);
    assert_int_equal(ptl, 60);
    CK_GCM_PARAMS gp = { .pIv = iv, .ulIvLen = 12, .ulIvBits = 96, .pAAD = aad, .ulAADLen = 20, .ulTagBits = 128 };
    CK_MECHANISM m = { CKM_AES_GCM, &gp, sizeof gp };

    size_t ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &m, NULL, key, 16, pt, ptl, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, GCM_C GCM_T);
    ol = sizeof out;
    assert_int_equal(runN(HSM_OP_ENCRYPT, &m, NULL, key, 16, pt, ptl, 7, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, GCM_C GCM_T);

    size_t bl = sizeof back;
    assert_int_equal(run1(HSM_OP_DECRYPT, &m, NULL, key, 16, out, 76, back, &bl), CF_OK);
    assert_int_equal(bl, 60);
    assert_memory_equal(back, pt, 60);
    bl = sizeof back;
    assert_int_equal(runN(HSM_OP_DECRYPT, &m, NULL, key, 16, out, 76, 11, back, &bl), CF_OK);
    assert_int_equal(bl, 60);
    assert_memory_equal(back, pt, 60);

    /* Decrypt releases nothing before final, and nothing at all on a bad tag. */
    hsm_op op;
    assert_int_equal(start(&op, HSM_OP_DECRYPT, &m, NULL, key, 16), CF_OK);
    size_t w = sizeof back;
    assert_int_equal(op.mech->ops->out_len(&op, HSM_STEP_UPDATE, 76), 0);
    assert_int_equal(op.mech->ops->update(&op, out, 76, back, &w), CF_OK);
    assert_int_equal(w, 0);
    assert_int_equal(op.mech->ops->out_len(&op, HSM_STEP_FINAL, 0), 60);
    finish(&op);
    out[75] ^= 1;
    memset(back, 0xee, sizeof back);
    bl = sizeof back;
    assert_int_equal(run1(HSM_OP_DECRYPT, &m, NULL, key, 16, out, 76, back, &bl), CF_E_ENCRYPTED_DATA_INVALID);
    for (size_t i = 0; i < 60; i++)
        assert_true(back[i] == 0 || back[i] == 0xee);   /* wiped or untouched: never plaintext */
    bl = sizeof back;
    assert_int_equal(runN(HSM_OP_DECRYPT, &m, NULL, key, 16, out, 76, 20, back, &bl), CF_E_ENCRYPTED_DATA_INVALID);
    bl = sizeof back;
    assert_int_equal(run1(HSM_OP_DECRYPT, &m, NULL, key, 16, out, 15, back, &bl), CF_E_ENCRYPTED_DATA_LEN_RANGE);

    /* 96-bit tag: the first 12 bytes of the full one. */
    gp.ulTagBits = 96;
    ol = sizeof out;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &m, NULL, key, 16, pt, ptl, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, GCM_C "5bc94fbc3221a5db94fae95a");

    gp.ulTagBits = 33;
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &m, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    gp.ulTagBits = 128;
    gp.ulIvLen = 0;
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &m, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    gp.ulIvLen = 12;
    gp.pAAD = NULL;
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &m, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    gp.pAAD = aad;
    m.ulParameterLen = sizeof gp - 8;
    assert_int_equal(start(&op, HSM_OP_ENCRYPT, &m, NULL, key, 16), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
}

static void test_aes_wrap(void **state)
{
    (void)state;
    const hsm_mech *r = hsm_mech_find(CKM_AES_KEY_WRAP);
    hsm_key kek = { .cls = CKO_SECRET_KEY, .type = CKK_AES };
    uint8_t kv[32], data[32], out[64];
    kek.secret_len = unhex("000102030405060708090A0B0C0D0E0F", kv);
    kek.secret = cf_secret_dup(kv, kek.secret_len);
    size_t dl = unhex("00112233445566778899AABBCCDDEEFF", data);
    CK_MECHANISM m = { CKM_AES_KEY_WRAP, NULL, 0 };

    size_t ol = 0;
    assert_int_equal(r->wrap(&m, &kek, data, dl, NULL, &ol), CF_OK);
    assert_int_equal(ol, 24);
    ol = 23;
    assert_int_equal(r->wrap(&m, &kek, data, dl, out, &ol), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(ol, 24);
    ol = sizeof out;
    assert_int_equal(r->wrap(&m, &kek, data, dl, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5");
    cf_buf plain = { 0 };
    assert_int_equal(r->unwrap(&m, &kek, out, ol, &plain), CF_OK);
    assert_int_equal(plain.len, 16);
    assert_memory_equal(plain.p, data, 16);
    cf_buf_free(&plain);
    out[3] ^= 1;
    assert_int_equal(r->unwrap(&m, &kek, out, ol, &plain), CF_E_WRAPPED_KEY_INVALID);
    assert_int_equal(r->unwrap(&m, &kek, out, 20, &plain), CF_E_WRAPPED_KEY_LEN_RANGE);
    ol = sizeof out;
    assert_int_equal(r->wrap(&m, &kek, data, 12, out, &ol), CF_E_KEY_SIZE_RANGE);

    /* The default IV may be given; another may not. */
    uint8_t iv[8];
    memset(iv, 0xa6, sizeof iv);
    CK_MECHANISM miv = { CKM_AES_KEY_WRAP, iv, 8 };
    ol = sizeof out;
    assert_int_equal(r->wrap(&miv, &kek, data, dl, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5");
    iv[0] = 0;
    ol = sizeof out;
    assert_int_equal(r->wrap(&miv, &kek, data, dl, out, &ol), CF_E_MECHANISM_PARAM_INVALID);
    hsm_key_release(&kek);

    /* RFC 5649 sec. 6, first example (20 bytes under a 192-bit KEK). */
    const hsm_mech *rp = hsm_mech_find(CKM_AES_KEY_WRAP_PAD);
    CK_MECHANISM mp = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    kek.secret_len = unhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", kv);
    kek.secret = cf_secret_dup(kv, kek.secret_len);
    dl = unhex("c37b7e6492584340bed12207808941155068f738", data);
    ol = sizeof out;
    assert_int_equal(rp->wrap(&mp, &kek, data, dl, out, &ol), CF_OK);
    ASSERT_HEX(out, ol, "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
    assert_int_equal(rp->unwrap(&mp, &kek, out, ol, &plain), CF_OK);
    assert_int_equal(plain.len, 20);
    assert_memory_equal(plain.p, data, 20);
    cf_buf_free(&plain);

    /* A public key cannot wrap with AES. */
    hsm_key bad = { .cls = CKO_PUBLIC_KEY };
    ol = sizeof out;
    assert_int_equal(rp->wrap(&mp, &bad, data, dl, out, &ol), CF_E_WRAPPING_KEY_TYPE_INCONSISTENT);
    hsm_key_release(&kek);
}

/* ---- RSA ------------------------------------------------------------------------------------------ */
static cf_pkey *rsa_key;   /* made once by test_rsa_keygen (2048 bits) */

static void test_rsa_keygen(void **state)
{
    (void)state;
    const hsm_mech *r = hsm_mech_find(CKM_RSA_PKCS_KEY_PAIR_GEN);
    CK_MECHANISM m = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
    hsm_attrs pub = { 0 }, priv = { 0 };
    cf_pkey *k = NULL;
    assert_int_equal(r->keypair_gen(&m, &pub, &priv, &k), CF_E_TEMPLATE_INCOMPLETE);
    assert_int_equal(hsm_attrs_set_ulong(&pub, CKA_MODULUS_BITS, 1024), CF_OK);
    assert_int_equal(r->keypair_gen(&m, &pub, &priv, &k), CF_E_KEY_SIZE_RANGE);
    assert_int_equal(hsm_attrs_set_ulong(&pub, CKA_MODULUS_BITS, 8192), CF_OK);
    assert_int_equal(r->keypair_gen(&m, &pub, &priv, &k), CF_E_KEY_SIZE_RANGE);
    assert_int_equal(hsm_attrs_set_ulong(&pub, CKA_MODULUS_BITS, 2048), CF_OK);
    static const uint8_t even[] = { 0x01, 0x00, 0x00 };
    assert_int_equal(hsm_attrs_set(&pub, CKA_PUBLIC_EXPONENT, even, sizeof even, 0), CF_OK);
    assert_int_equal(r->keypair_gen(&m, &pub, &priv, &k), CF_E_ATTRIBUTE_VALUE_INVALID);
    static const uint8_t f4[] = { 0x00, 0x01, 0x00, 0x01 };
    assert_int_equal(hsm_attrs_set(&pub, CKA_PUBLIC_EXPONENT, f4, sizeof f4, 0), CF_OK);
    assert_int_equal(r->keypair_gen(&m, &pub, &priv, &k), CF_OK);
    assert_int_equal(cf_pkey_get_type(k), CF_PKEY_RSA);
    assert_int_equal(cf_pkey_bits(k), 2048);
    assert_true(cf_pkey_is_private(k));
    rsa_key = k;
    hsm_attrs_free(&pub);
    hsm_attrs_free(&priv);
}

/* Sign one-shot and multi-part; both verify either way; a flipped bit does not. */
static void rsa_sign_roundtrip(const CK_MECHANISM *m, const uint8_t *in, size_t inlen, bool deterministic)
{
    uint8_t sig[512], sig2[512];
    size_t sl = sizeof sig, sl2 = sizeof sig2;
    assert_int_equal(run1(HSM_OP_SIGN, m, rsa_key, NULL, 0, in, inlen, sig, &sl), CF_OK);
    assert_int_equal(sl, 256);
    assert_int_equal(runN(HSM_OP_SIGN, m, rsa_key, NULL, 0, in, inlen, 7, sig2, &sl2), CF_OK);
    assert_int_equal(sl2, 256);
    if (deterministic)
        assert_memory_equal(sig, sig2, 256);
    assert_int_equal(verify1(m, rsa_key, NULL, 0, in, inlen, sig, sl), CF_OK);
    assert_int_equal(verify1(m, rsa_key, NULL, 0, in, inlen, sig2, sl2), CF_OK);
    assert_int_equal(verifyN(m, rsa_key, NULL, 0, in, inlen, 5, sig, sl), CF_OK);
    assert_int_equal(verify1(m, rsa_key, NULL, 0, in, inlen, sig, sl - 1), CF_E_SIGNATURE_LEN_RANGE);
    sig[100] ^= 0x10;
    assert_int_equal(verify1(m, rsa_key, NULL, 0, in, inlen, sig, sl), CF_E_SIGNATURE_INVALID);
    assert_int_equal(verifyN(m, rsa_key, NULL, 0, in, inlen, 9, sig, sl), CF_E_SIGNATURE_INVALID);
}

static void test_rsa_sign(void **state)
{
    (void)state;
    assert_non_null(rsa_key);
    static const CK_MECHANISM_TYPE hashed[] = {
        CKM_SHA1_RSA_PKCS, CKM_SHA224_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS, CKM_SHA512_RSA_PKCS,
    };
    for (size_t i = 0; i < sizeof hashed / sizeof hashed[0]; i++) {
        CK_MECHANISM m = { hashed[i], NULL, 0 };
        rsa_sign_roundtrip(&m, msg, sizeof msg, true);
    }

    /* CKM_RSA_PKCS signs given bytes (a DigestInfo) up to k - 11. */
    uint8_t in[300];
    memset(in, 0x5a, sizeof in);
    CK_MECHANISM pk = { CKM_RSA_PKCS, NULL, 0 };
    rsa_sign_roundtrip(&pk, in, 51, true);
    uint8_t sig[512];
    size_t sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, &pk, rsa_key, NULL, 0, in, 245, sig, &sl), CF_OK);
    sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, &pk, rsa_key, NULL, 0, in, 246, sig, &sl), CF_E_DATA_LEN_RANGE);
    sl = sizeof sig;
    assert_int_equal(runN(HSM_OP_SIGN, &pk, rsa_key, NULL, 0, in, 246, 100, sig, &sl), CF_E_DATA_LEN_RANGE);

    /* CKM_RSA_X_509: raw, input up to the modulus length (left-padded with zeros). */
    CK_MECHANISM x = { CKM_RSA_X_509, NULL, 0 };
    rsa_sign_roundtrip(&x, in, 100, true);
    in[0] = 0x00;   /* 256 bytes below the modulus */
    sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, &x, rsa_key, NULL, 0, in, 256, sig, &sl), CF_OK);
    sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, &x, rsa_key, NULL, 0, in, 257, sig, &sl), CF_E_DATA_LEN_RANGE);

    /* PSS over a digest. */
    CK_RSA_PKCS_PSS_PARAMS pp = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
    CK_MECHANISM pss = { CKM_RSA_PKCS_PSS, &pp, sizeof pp };
    uint8_t dig[32];
    size_t dl = sizeof dig;
    assert_int_equal(cf_hash(CF_HASH_SHA256, msg, sizeof msg, dig, &dl), CF_OK);
    rsa_sign_roundtrip(&pss, dig, 32, false);
    sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, &pss, rsa_key, NULL, 0, dig, 31, sig, &sl), CF_E_DATA_LEN_RANGE);
    /* Its signature is the one CKM_SHA256_RSA_PKCS_PSS verifies over the message. */
    sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, &pss, rsa_key, NULL, 0, dig, 32, sig, &sl), CF_OK);
    CK_MECHANISM pss256 = { CKM_SHA256_RSA_PKCS_PSS, &pp, sizeof pp };
    assert_int_equal(verify1(&pss256, rsa_key, NULL, 0, msg, sizeof msg, sig, sl), CF_OK);

    static const struct {
        CK_MECHANISM_TYPE m, h;
        CK_RSA_PKCS_MGF_TYPE g;
        CK_ULONG s;
    } hp[] = {
        { CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1, 20 },
        { CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224, 28 },
        { CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA512, 0 },
        { CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, 48 },
        { CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA256, 64 },
    };
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++) {
        CK_RSA_PKCS_PSS_PARAMS p = { hp[i].h, hp[i].g, hp[i].s };
        CK_MECHANISM m = { hp[i].m, &p, sizeof p };
        rsa_sign_roundtrip(&m, msg, sizeof msg, hp[i].s == 0);
    }

    /* Parameter errors. */
    hsm_op op;
    CK_MECHANISM nullp = { CKM_RSA_PKCS_PSS, NULL, 0 };
    assert_int_equal(start(&op, HSM_OP_SIGN, &nullp, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    CK_MECHANISM shortp = { CKM_SHA256_RSA_PKCS_PSS, &pp, sizeof pp - 1 };
    assert_int_equal(start(&op, HSM_OP_SIGN, &shortp, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    CK_RSA_PKCS_PSS_PARAMS mism = { CKM_SHA384, CKG_MGF1_SHA256, 32 };
    CK_MECHANISM mm = { CKM_SHA256_RSA_PKCS_PSS, &mism, sizeof mism };
    assert_int_equal(start(&op, HSM_OP_SIGN, &mm, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    CK_RSA_PKCS_PSS_PARAMS badmgf = { CKM_SHA256, 0x99, 32 };
    CK_MECHANISM bm = { CKM_RSA_PKCS_PSS, &badmgf, sizeof badmgf };
    assert_int_equal(start(&op, HSM_OP_VERIFY, &bm, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    CK_RSA_PKCS_PSS_PARAMS bigsalt = { CKM_SHA256, CKG_MGF1_SHA256, 256 - 32 - 1 };
    CK_MECHANISM bs = { CKM_RSA_PKCS_PSS, &bigsalt, sizeof bigsalt };
    assert_int_equal(start(&op, HSM_OP_SIGN, &bs, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    uint8_t junk = 0;
    CK_MECHANISM hp1 = { CKM_SHA256_RSA_PKCS, &junk, 1 };
    assert_int_equal(start(&op, HSM_OP_SIGN, &hp1, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
}

/* The hot path: one init, many signatures through reset. */
static void test_rsa_reset(void **state)
{
    (void)state;
    CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
    CK_RSA_PKCS_PSS_PARAMS pp = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
    CK_MECHANISM pss = { CKM_SHA256_RSA_PKCS_PSS, &pp, sizeof pp };
    const CK_MECHANISM *ms[] = { &m, &pss };
    for (size_t k = 0; k < 2; k++) {
        hsm_op op;
        uint8_t sig[3][256];
        assert_int_equal(start(&op, HSM_OP_SIGN, ms[k], rsa_key, NULL, 0), CF_OK);
        for (int i = 0; i < 3; i++) {
            size_t sl = 256;
            if (i == 1) {   /* a multi-part run between one-shots */
                size_t z = 0;
                assert_int_equal(op.mech->ops->update(&op, msg, 10, NULL, &z), CF_OK);
                assert_int_equal(op.mech->ops->update(&op, msg + 10, sizeof msg - 10, NULL, &z), CF_OK);
                assert_int_equal(op.mech->ops->final(&op, sig[i], &sl), CF_OK);
            } else {
                assert_int_equal(op.mech->ops->oneshot(&op, msg, sizeof msg, sig[i], &sl), CF_OK);
            }
            assert_int_equal(sl, 256);
            assert_int_equal(op.mech->ops->reset(&op), CF_OK);
        }
        finish(&op);
        /* The verifier reused the same way. */
        assert_int_equal(start(&op, HSM_OP_VERIFY, ms[k], rsa_key, NULL, 0), CF_OK);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(op.mech->ops->verify(&op, msg, sizeof msg, sig[i], 256), CF_OK);
            assert_int_equal(op.mech->ops->reset(&op), CF_OK);
        }
        finish(&op);
        if (k == 0) {
            assert_memory_equal(sig[0], sig[1], 256);
            assert_memory_equal(sig[0], sig[2], 256);
        }
    }
}

static void test_rsa_encrypt(void **state)
{
    (void)state;
    uint8_t ct[512], pt[512];
    static const uint8_t secret[] = "a 32-byte secret key to protect!";
    static const char label[] = "coffer label";

    CK_MECHANISM pk = { CKM_RSA_PKCS, NULL, 0 };
    size_t cl = sizeof ct, pl = sizeof pt;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &pk, rsa_key, NULL, 0, secret, 32, ct, &cl), CF_OK);
    assert_int_equal(cl, 256);
    assert_int_equal(run1(HSM_OP_DECRYPT, &pk, rsa_key, NULL, 0, ct, cl, pt, &pl), CF_OK);
    assert_int_equal(pl, 32);
    assert_memory_equal(pt, secret, 32);
    pl = sizeof pt;
    assert_int_equal(runN(HSM_OP_DECRYPT, &pk, rsa_key, NULL, 0, ct, cl, 100, pt, &pl), CF_OK);
    assert_int_equal(pl, 32);
    pl = sizeof pt;
    assert_int_equal(run1(HSM_OP_DECRYPT, &pk, rsa_key, NULL, 0, ct, cl - 1, pt, &pl), CF_E_ENCRYPTED_DATA_LEN_RANGE);
    cl = sizeof ct;
    uint8_t big[246] = { 0 };
    assert_int_equal(run1(HSM_OP_ENCRYPT, &pk, rsa_key, NULL, 0, big, sizeof big, ct, &cl), CF_E_DATA_LEN_RANGE);

    CK_RSA_PKCS_OAEP_PARAMS op = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, (void *)label, sizeof label - 1 };
    CK_MECHANISM oaep = { CKM_RSA_PKCS_OAEP, &op, sizeof op };
    cl = sizeof ct;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &oaep, rsa_key, NULL, 0, secret, 32, ct, &cl), CF_OK);
    assert_int_equal(cl, 256);
    pl = sizeof pt;
    assert_int_equal(run1(HSM_OP_DECRYPT, &oaep, rsa_key, NULL, 0, ct, cl, pt, &pl), CF_OK);
    assert_int_equal(pl, 32);
    assert_memory_equal(pt, secret, 32);
    /* Another label, or a flipped bit, is bad padding. */
    op.ulSourceDataLen--;
    pl = sizeof pt;
    assert_int_equal(run1(HSM_OP_DECRYPT, &oaep, rsa_key, NULL, 0, ct, cl, pt, &pl), CF_E_ENCRYPTED_DATA_INVALID);
    op.ulSourceDataLen++;
    ct[10] ^= 1;
    pl = sizeof pt;
    assert_int_equal(run1(HSM_OP_DECRYPT, &oaep, rsa_key, NULL, 0, ct, cl, pt, &pl), CF_E_ENCRYPTED_DATA_INVALID);

    hsm_op o;
    CK_MECHANISM shortp = { CKM_RSA_PKCS_OAEP, &op, sizeof op - 1 };
    assert_int_equal(start(&o, HSM_OP_ENCRYPT, &shortp, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&o);
    CK_MECHANISM nullp = { CKM_RSA_PKCS_OAEP, NULL, sizeof op };
    assert_int_equal(start(&o, HSM_OP_ENCRYPT, &nullp, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&o);
    op.source = 7;
    assert_int_equal(start(&o, HSM_OP_ENCRYPT, &oaep, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&o);
    op.source = CKZ_DATA_SPECIFIED;
    op.hashAlg = CKM_MD5;
    assert_int_equal(start(&o, HSM_OP_ENCRYPT, &oaep, rsa_key, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&o);
    /* Hash and MGF hash are independent. */
    op.hashAlg = CKM_SHA512;
    op.mgf = CKG_MGF1_SHA1;
    op.pSourceData = NULL;
    op.ulSourceDataLen = 0;
    cl = sizeof ct;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &oaep, rsa_key, NULL, 0, secret, 32, ct, &cl), CF_OK);
    pl = sizeof pt;
    assert_int_equal(run1(HSM_OP_DECRYPT, &oaep, rsa_key, NULL, 0, ct, cl, pt, &pl), CF_OK);
    assert_int_equal(pl, 32);

    /* Raw RSA round trip. */
    CK_MECHANISM x = { CKM_RSA_X_509, NULL, 0 };
    cl = sizeof ct;
    assert_int_equal(run1(HSM_OP_ENCRYPT, &x, rsa_key, NULL, 0, secret, 32, ct, &cl), CF_OK);
    pl = sizeof pt;
    assert_int_equal(run1(HSM_OP_DECRYPT, &x, rsa_key, NULL, 0, ct, cl, pt, &pl), CF_OK);
    assert_int_equal(pl, 256);
    assert_memory_equal(pt + 224, secret, 32);

    /* Wrap with the public half, unwrap with the private one. */
    const hsm_mech *r = hsm_mech_find(CKM_RSA_PKCS_OAEP);
    op = (CK_RSA_PKCS_OAEP_PARAMS){ CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0 };
    hsm_key pub = { .cls = CKO_PUBLIC_KEY, .type = CKK_RSA, .pkey = rsa_key };
    hsm_key priv = { .cls = CKO_PRIVATE_KEY, .type = CKK_RSA, .pkey = rsa_key };
    size_t wl = 0;
    assert_int_equal(r->wrap(&oaep, &pub, secret, 32, NULL, &wl), CF_OK);
    assert_int_equal(wl, 256);
    assert_int_equal(r->wrap(&oaep, &pub, secret, 32, ct, &wl), CF_OK);
    cf_buf plain = { 0 };
    assert_int_equal(r->unwrap(&oaep, &priv, ct, wl, &plain), CF_OK);
    assert_int_equal(plain.len, 32);
    assert_memory_equal(plain.p, secret, 32);
    cf_buf_free(&plain);
    ct[0] ^= 0x01;
    assert_int_equal(r->unwrap(&oaep, &priv, ct, wl, &plain), CF_E_WRAPPED_KEY_INVALID);
    assert_int_equal(r->unwrap(&oaep, &priv, ct, wl - 1, &plain), CF_E_WRAPPED_KEY_LEN_RANGE);
    assert_int_equal(r->unwrap(&oaep, &pub, ct, wl, &plain), CF_E_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    const hsm_mech *r1 = hsm_mech_find(CKM_RSA_PKCS);
    wl = sizeof ct;
    assert_int_equal(r1->wrap(&pk, &pub, secret, 32, ct, &wl), CF_OK);
    assert_int_equal(r1->unwrap(&pk, &priv, ct, wl, &plain), CF_OK);
    assert_int_equal(plain.len, 32);
    assert_memory_equal(plain.p, secret, 32);
    cf_buf_free(&plain);
    wl = sizeof ct;
    assert_int_equal(r1->wrap(&pk, &priv, secret, 32, ct, &wl), CF_E_WRAPPING_KEY_TYPE_INCONSISTENT);
}

/* ---- EC ------------------------------------------------------------------------------------------- */
static cf_pkey *ec_gen(CK_MECHANISM_TYPE mech, cf_curve c)
{
    cf_buf params = { 0 };
    assert_int_equal(cf_curve_to_params(c, &params), CF_OK);
    hsm_attrs pub = { 0 }, priv = { 0 };
    assert_int_equal(hsm_attrs_set(&pub, CKA_EC_PARAMS, params.p, params.len, 0), CF_OK);
    CK_MECHANISM m = { mech, NULL, 0 };
    cf_pkey *k = NULL;
    assert_int_equal(hsm_mech_find(mech)->keypair_gen(&m, &pub, &priv, &k), CF_OK);
    hsm_attrs_free(&pub);
    cf_buf_free(&params);
    return k;
}

static void test_ec_keygen(void **state)
{
    (void)state;
    const hsm_mech *r = hsm_mech_find(CKM_EC_KEY_PAIR_GEN);
    const hsm_mech *re = hsm_mech_find(CKM_EC_EDWARDS_KEY_PAIR_GEN);
    CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_MECHANISM me = { CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0 };
    hsm_attrs pub = { 0 }, priv = { 0 };
    cf_pkey *k = NULL;
    assert_int_equal(r->keypair_gen(&m, &pub, &priv, &k), CF_E_TEMPLATE_INCOMPLETE);
    static const uint8_t secp256k1[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a };
    assert_int_equal(hsm_attrs_set(&pub, CKA_EC_PARAMS, secp256k1, sizeof secp256k1, 0), CF_OK);
    assert_int_equal(r->keypair_gen(&m, &pub, &priv, &k), CF_E_CURVE_NOT_SUPPORTED);
    cf_buf ed = { 0 };
    assert_int_equal(cf_curve_to_params(CF_CURVE_ED25519, &ed), CF_OK);
    assert_int_equal(hsm_attrs_set(&pub, CKA_EC_PARAMS, ed.p, ed.len, 0), CF_OK);
    assert_int_equal(r->keypair_gen(&m, &pub, &priv, &k), CF_E_CURVE_NOT_SUPPORTED);
    assert_int_equal(re->keypair_gen(&me, &pub, &priv, &k), CF_OK);
    assert_int_equal(cf_pkey_get_type(k), CF_PKEY_ED25519);
    cf_pkey_free(k);
    cf_buf_free(&ed);
    hsm_attrs_free(&pub);
    k = ec_gen(CKM_EC_KEY_PAIR_GEN, CF_CURVE_P384);
    assert_int_equal(cf_pkey_bits(k), 384);
    cf_pkey_free(k);
}

static void test_ecdsa(void **state)
{
    (void)state;
    static const struct {
        cf_curve c;
        size_t siglen;
    } curves[] = { { CF_CURVE_P256, 64 }, { CF_CURVE_P384, 96 }, { CF_CURVE_P521, 132 } };
    static const CK_MECHANISM_TYPE hashed[] = {
        CKM_ECDSA_SHA1, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512,
    };
    for (size_t i = 0; i < 3; i++) {
        cf_pkey *k = ec_gen(CKM_EC_KEY_PAIR_GEN, curves[i].c);
        uint8_t sig[200], dig[64];
        size_t sl;
        for (size_t j = 0; j < sizeof hashed / sizeof hashed[0]; j++) {
            CK_MECHANISM m = { hashed[j], NULL, 0 };
            sl = sizeof sig;
            assert_int_equal(run1(HSM_OP_SIGN, &m, k, NULL, 0, msg, sizeof msg, sig, &sl), CF_OK);
            assert_int_equal(sl, curves[i].siglen);
            assert_int_equal(verify1(&m, k, NULL, 0, msg, sizeof msg, sig, sl), CF_OK);
            assert_int_equal(verifyN(&m, k, NULL, 0, msg, sizeof msg, 6, sig, sl), CF_OK);
            sl = sizeof sig;
            assert_int_equal(runN(HSM_OP_SIGN, &m, k, NULL, 0, msg, sizeof msg, 11, sig, &sl), CF_OK);
            assert_int_equal(verify1(&m, k, NULL, 0, msg, sizeof msg, sig, sl), CF_OK);
            sig[3] ^= 0x80;
            assert_int_equal(verify1(&m, k, NULL, 0, msg, sizeof msg, sig, sl), CF_E_SIGNATURE_INVALID);
            assert_int_equal(verify1(&m, k, NULL, 0, msg, sizeof msg, sig, sl + 1), CF_E_SIGNATURE_LEN_RANGE);
        }
        /* CKM_ECDSA over a digest: the SHA-256 signature of the message verifies. */
        CK_MECHANISM raw = { CKM_ECDSA, NULL, 0 };
        CK_MECHANISM h256 = { CKM_ECDSA_SHA256, NULL, 0 };
        size_t dl = sizeof dig;
        assert_int_equal(cf_hash(CF_HASH_SHA256, msg, sizeof msg, dig, &dl), CF_OK);
        sl = sizeof sig;
        assert_int_equal(run1(HSM_OP_SIGN, &raw, k, NULL, 0, dig, dl, sig, &sl), CF_OK);
        assert_int_equal(verify1(&h256, k, NULL, 0, msg, sizeof msg, sig, sl), CF_OK);
        sl = sizeof sig;
        assert_int_equal(runN(HSM_OP_SIGN, &raw, k, NULL, 0, dig, dl, 5, sig, &sl), CF_OK);
        assert_int_equal(verify1(&raw, k, NULL, 0, dig, dl, sig, sl), CF_OK);
        uint8_t longd[65] = { 1 };
        sl = sizeof sig;
        assert_int_equal(run1(HSM_OP_SIGN, &raw, k, NULL, 0, longd, 64, sig, &sl), CF_OK);
        sl = sizeof sig;
        assert_int_equal(run1(HSM_OP_SIGN, &raw, k, NULL, 0, longd, 65, sig, &sl), CF_E_DATA_LEN_RANGE);

        /* Reset path. */
        hsm_op op;
        uint8_t s1[200], s2[200];
        size_t l1 = sizeof s1, l2 = sizeof s2;
        assert_int_equal(start(&op, HSM_OP_SIGN, &h256, k, NULL, 0), CF_OK);
        assert_int_equal(op.mech->ops->out_len(&op, HSM_STEP_ONESHOT, 10), curves[i].siglen);
        assert_int_equal(op.mech->ops->oneshot(&op, msg, sizeof msg, s1, &l1), CF_OK);
        assert_int_equal(op.mech->ops->reset(&op), CF_OK);
        assert_int_equal(op.mech->ops->oneshot(&op, msg, sizeof msg, s2, &l2), CF_OK);
        finish(&op);
        assert_int_equal(verify1(&h256, k, NULL, 0, msg, sizeof msg, s1, l1), CF_OK);
        assert_int_equal(verify1(&h256, k, NULL, 0, msg, sizeof msg, s2, l2), CF_OK);

        uint8_t junk = 0;
        CK_MECHANISM bad = { CKM_ECDSA, &junk, 1 };
        assert_int_equal(start(&op, HSM_OP_SIGN, &bad, k, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
        finish(&op);
        cf_pkey_free(k);
    }
    /* An RSA key is not an EC key. */
    hsm_op op;
    CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
    assert_int_equal(start(&op, HSM_OP_SIGN, &m, rsa_key, NULL, 0), CF_E_KEY_TYPE_INCONSISTENT);
    finish(&op);
}

/* RFC 8032 sec. 7.1, TEST 1, imported through attributes. */
#define ED_SK "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define ED_PK "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define ED_SIG "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"

typedef struct {
    CK_BBOOL phFlag;
    CK_ULONG ulContextDataLen;
    CK_BYTE_PTR pContextData;
} test_eddsa_params;

static void test_eddsa(void **state)
{
    (void)state;
    static const uint8_t ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
    uint8_t sk[32], pkraw[32], sig[64];
    unhex(ED_SK, sk);
    unhex(ED_PK, pkraw);
    cf_buf pkder = { 0 };
    assert_int_equal(cf_ec_point_to_der(pkraw, 32, &pkder), CF_OK);

    hsm_attrs a = { 0 }, b = { 0 };
    assert_int_equal(hsm_attrs_set_ulong(&a, CKA_CLASS, CKO_PRIVATE_KEY), CF_OK);
    assert_int_equal(hsm_attrs_set_ulong(&a, CKA_KEY_TYPE, CKK_EC_EDWARDS), CF_OK);
    assert_int_equal(hsm_attrs_set(&a, CKA_EC_PARAMS, ed_oid, sizeof ed_oid, 0), CF_OK);
    cf_pkey *priv = NULL, *pub = NULL;
    assert_int_equal(hsm_pkey_from_attrs(&a, &priv), CF_E_TEMPLATE_INCOMPLETE);
    assert_int_equal(hsm_attrs_set(&a, CKA_VALUE, sk, 31, CF_ATTR_SECRET), CF_OK);
    assert_int_equal(hsm_pkey_from_attrs(&a, &priv), CF_E_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(hsm_attrs_set(&a, CKA_VALUE, sk, 32, CF_ATTR_SECRET), CF_OK);
    assert_int_equal(hsm_pkey_from_attrs(&a, &priv), CF_OK);
    assert_int_equal(hsm_attrs_set_ulong(&b, CKA_CLASS, CKO_PUBLIC_KEY), CF_OK);
    assert_int_equal(hsm_attrs_set_ulong(&b, CKA_KEY_TYPE, CKK_EC_EDWARDS), CF_OK);
    assert_int_equal(hsm_attrs_set(&b, CKA_EC_PARAMS, ed_oid, sizeof ed_oid, 0), CF_OK);
    assert_int_equal(hsm_attrs_set(&b, CKA_EC_POINT, pkder.p, pkder.len, 0), CF_OK);
    assert_int_equal(hsm_pkey_from_attrs(&b, &pub), CF_OK);
    hsm_attrs_free(&a);
    hsm_attrs_free(&b);
    cf_buf_free(&pkder);

    CK_MECHANISM m = { CKM_EDDSA, NULL, 0 };
    size_t sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, &m, priv, NULL, 0, NULL, 0, sig, &sl), CF_OK);
    ASSERT_HEX(sig, sl, ED_SIG);
    assert_int_equal(verify1(&m, pub, NULL, 0, NULL, 0, sig, sl), CF_OK);
    assert_int_equal(verifyN(&m, pub, NULL, 0, NULL, 0, 1, sig, sl), CF_OK);
    sl = sizeof sig;
    assert_int_equal(runN(HSM_OP_SIGN, &m, priv, NULL, 0, NULL, 0, 1, sig, &sl), CF_OK);
    ASSERT_HEX(sig, sl, ED_SIG);

    /* Multi-part equals one-shot (Ed25519 is deterministic). */
    uint8_t s1[64], s2[64];
    size_t l1 = 64, l2 = 64;
    test_eddsa_params ep = { CK_FALSE, 0, NULL };
    CK_MECHANISM mp = { CKM_EDDSA, &ep, sizeof ep };
    assert_int_equal(run1(HSM_OP_SIGN, &mp, priv, NULL, 0, msg, sizeof msg, s1, &l1), CF_OK);
    assert_int_equal(runN(HSM_OP_SIGN, &m, priv, NULL, 0, msg, sizeof msg, 10, s2, &l2), CF_OK);
    assert_memory_equal(s1, s2, 64);
    assert_int_equal(verifyN(&m, pub, NULL, 0, msg, sizeof msg, 17, s1, 64), CF_OK);
    s1[0] ^= 1;
    assert_int_equal(verify1(&m, pub, NULL, 0, msg, sizeof msg, s1, 64), CF_E_SIGNATURE_INVALID);

    hsm_op op;
    ep.phFlag = CK_TRUE;
    assert_int_equal(start(&op, HSM_OP_SIGN, &mp, priv, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    ep.phFlag = CK_FALSE;
    ep.ulContextDataLen = 3;
    ep.pContextData = (CK_BYTE_PTR) "abc";
    assert_int_equal(start(&op, HSM_OP_SIGN, &mp, priv, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    mp.ulParameterLen = 1;
    assert_int_equal(start(&op, HSM_OP_SIGN, &mp, priv, NULL, 0), CF_E_MECHANISM_PARAM_INVALID);
    finish(&op);
    /* An EC key is not an Edwards key. */
    cf_pkey *ec = ec_gen(CKM_EC_KEY_PAIR_GEN, CF_CURVE_P256);
    assert_int_equal(start(&op, HSM_OP_SIGN, &m, ec, NULL, 0), CF_E_KEY_TYPE_INCONSISTENT);
    finish(&op);
    cf_pkey_free(ec);
    cf_pkey_free(priv);
    cf_pkey_free(pub);
}

static void test_ecdh(void **state)
{
    (void)state;
    cf_pkey *a = ec_gen(CKM_EC_KEY_PAIR_GEN, CF_CURVE_P256);
    cf_pkey *b = ec_gen(CKM_EC_KEY_PAIR_GEN, CF_CURVE_P256);
    cf_buf pa = { 0 }, pb = { 0 }, pbder = { 0 }, sa = { 0 }, sb = { 0 };
    cf_curve c;
    assert_int_equal(cf_pkey_ec_export(a, false, &c, &pa, NULL), CF_OK);
    assert_int_equal(cf_pkey_ec_export(b, false, &c, &pb, NULL), CF_OK);
    assert_int_equal(cf_ec_point_to_der(pb.p, pb.len, &pbder), CF_OK);

    const hsm_mech *r = hsm_mech_find(CKM_ECDH1_DERIVE);
    hsm_key ka = { .cls = CKO_PRIVATE_KEY, .type = CKK_EC, .pkey = a };
    hsm_key kb = { .cls = CKO_PRIVATE_KEY, .type = CKK_EC, .pkey = b };
    CK_ECDH1_DERIVE_PARAMS pa_ = { CKD_NULL, 0, NULL, pbder.len, pbder.p };   /* b's point, DER */
    CK_ECDH1_DERIVE_PARAMS pb_ = { CKD_NULL, 0, NULL, pa.len, pa.p };         /* a's point, raw */
    CK_MECHANISM ma = { CKM_ECDH1_DERIVE, &pa_, sizeof pa_ };
    CK_MECHANISM mb = { CKM_ECDH1_DERIVE, &pb_, sizeof pb_ };
    assert_int_equal(r->derive(&ma, &ka, &sa), CF_OK);
    assert_int_equal(r->derive(&mb, &kb, &sb), CF_OK);
    assert_int_equal(sa.len, 32);
    assert_int_equal(sb.len, 32);
    assert_memory_equal(sa.p, sb.p, 32);
    cf_buf_free(&sa);

    pa_.kdf = CKD_SHA1_KDF;
    assert_int_equal(r->derive(&ma, &ka, &sa), CF_E_MECHANISM_PARAM_INVALID);
    pa_.kdf = CKD_NULL;
    ma.ulParameterLen--;
    assert_int_equal(r->derive(&ma, &ka, &sa), CF_E_MECHANISM_PARAM_INVALID);
    ma.ulParameterLen++;
    pa_.ulPublicDataLen = 10;
    assert_int_equal(r->derive(&ma, &ka, &sa), CF_E_MECHANISM_PARAM_INVALID);
    hsm_key pubk = { .cls = CKO_PUBLIC_KEY, .type = CKK_EC, .pkey = a };
    pa_.ulPublicDataLen = pbder.len;
    assert_int_equal(r->derive(&ma, &pubk, &sa), CF_E_KEY_TYPE_INCONSISTENT);

    cf_buf_free(&pa);
    cf_buf_free(&pb);
    cf_buf_free(&pbder);
    cf_buf_free(&sb);
    cf_pkey_free(a);
    cf_pkey_free(b);
}

/* ---- keyattrs ----------------------------------------------------------------------------------- */
/* pkey -> attributes (private and public objects) -> two new keys: one signs, the other
 * verifies. */
static void attrs_roundtrip(cf_pkey *k, const CK_MECHANISM *m, CK_KEY_TYPE kt)
{
    hsm_attrs pa = { 0 }, qa = { 0 };
    assert_int_equal(hsm_pkey_to_attrs(k, CKO_PRIVATE_KEY, &pa), CF_OK);
    assert_int_equal(hsm_pkey_to_attrs(k, CKO_PUBLIC_KEY, &qa), CF_OK);
    CK_ULONG v;
    assert_int_equal(hsm_attrs_ulong(&pa, CKA_KEY_TYPE, &v), CF_OK);
    assert_int_equal(v, kt);
    assert_non_null(hsm_attrs_find(&pa, CKA_PUBLIC_KEY_INFO));
    assert_non_null(hsm_attrs_find(&qa, CKA_PUBLIC_KEY_INFO));
    if (kt == CKK_RSA) {
        assert_true(hsm_attrs_find(&pa, CKA_PRIVATE_EXPONENT)->flags & CF_ATTR_SECRET);
        assert_true(hsm_attrs_find(&pa, CKA_PRIME_1)->flags & CF_ATTR_SECRET);
        assert_true(hsm_attrs_find(&pa, CKA_COEFFICIENT)->flags & CF_ATTR_SECRET);
        assert_false(hsm_attrs_find(&pa, CKA_MODULUS)->flags & CF_ATTR_SECRET);
        assert_non_null(hsm_attrs_find(&pa, CKA_PUBLIC_EXPONENT));
        assert_null(hsm_attrs_find(&qa, CKA_PRIVATE_EXPONENT));
        assert_int_equal(hsm_attrs_ulong(&qa, CKA_MODULUS_BITS, &v), CF_OK);
        assert_int_equal(v, cf_pkey_bits(k));
    } else {
        assert_true(hsm_attrs_find(&pa, CKA_VALUE)->flags & CF_ATTR_SECRET);
        assert_non_null(hsm_attrs_find(&pa, CKA_EC_PARAMS));
        const cf_attr *pt = hsm_attrs_find(&qa, CKA_EC_POINT);
        assert_non_null(pt);
        assert_int_equal(pt->val[0], 0x04);   /* DER OCTET STRING */
        assert_null(hsm_attrs_find(&qa, CKA_VALUE));
    }
    assert_int_equal(hsm_attrs_set_ulong(&pa, CKA_CLASS, CKO_PRIVATE_KEY), CF_OK);
    assert_int_equal(hsm_attrs_set_ulong(&qa, CKA_CLASS, CKO_PUBLIC_KEY), CF_OK);
    cf_pkey *priv = NULL, *pub = NULL;
    assert_int_equal(hsm_pkey_from_attrs(&pa, &priv), CF_OK);
    assert_int_equal(hsm_pkey_from_attrs(&qa, &pub), CF_OK);
    assert_true(cf_pkey_is_private(priv));
    assert_false(cf_pkey_is_private(pub));

    uint8_t sig[512];
    size_t sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, m, priv, NULL, 0, msg, sizeof msg, sig, &sl), CF_OK);
    assert_int_equal(verify1(m, pub, NULL, 0, msg, sizeof msg, sig, sl), CF_OK);
    assert_int_equal(verify1(m, k, NULL, 0, msg, sizeof msg, sig, sl), CF_OK);
    sl = sizeof sig;
    assert_int_equal(run1(HSM_OP_SIGN, m, k, NULL, 0, msg, sizeof msg, sig, &sl), CF_OK);
    assert_int_equal(verify1(m, pub, NULL, 0, msg, sizeof msg, sig, sl), CF_OK);

    /* Missing pieces. */
    cf_pkey *x = NULL;
    if (kt == CKK_RSA) {
        hsm_attrs_remove(&pa, CKA_PRIME_2);
        assert_int_equal(hsm_pkey_from_attrs(&pa, &x), CF_E_TEMPLATE_INCOMPLETE);
        hsm_attrs_remove(&qa, CKA_MODULUS);
        assert_int_equal(hsm_pkey_from_attrs(&qa, &x), CF_E_TEMPLATE_INCOMPLETE);
    } else {
        hsm_attrs_remove(&qa, CKA_EC_POINT);
        assert_int_equal(hsm_pkey_from_attrs(&qa, &x), CF_E_TEMPLATE_INCOMPLETE);
    }
    hsm_attrs_remove(&pa, CKA_KEY_TYPE);
    assert_int_equal(hsm_pkey_from_attrs(&pa, &x), CF_E_TEMPLATE_INCOMPLETE);
    assert_null(x);
    cf_pkey_free(priv);
    cf_pkey_free(pub);
    hsm_attrs_free(&pa);
    hsm_attrs_free(&qa);
}

static void test_keyattrs(void **state)
{
    (void)state;
    CK_MECHANISM rsa = { CKM_SHA256_RSA_PKCS, NULL, 0 };
    attrs_roundtrip(rsa_key, &rsa, CKK_RSA);
    CK_MECHANISM ecdsa = { CKM_ECDSA_SHA384, NULL, 0 };
    cf_pkey *ec = ec_gen(CKM_EC_KEY_PAIR_GEN, CF_CURVE_P384);
    attrs_roundtrip(ec, &ecdsa, CKK_EC);
    cf_pkey_free(ec);
    ec = ec_gen(CKM_EC_KEY_PAIR_GEN, CF_CURVE_P521);
    attrs_roundtrip(ec, &ecdsa, CKK_EC);
    cf_pkey_free(ec);
    CK_MECHANISM eddsa = { CKM_EDDSA, NULL, 0 };
    cf_pkey *ed = ec_gen(CKM_EC_EDWARDS_KEY_PAIR_GEN, CF_CURVE_ED25519);
    attrs_roundtrip(ed, &eddsa, CKK_EC_EDWARDS);
    cf_pkey_free(ed);

    /* A P-256 scalar given without its leading zero bytes is padded. */
    uint8_t d[32] = { 0 };
    d[31] = 7;
    cf_buf params = { 0 };
    assert_int_equal(cf_curve_to_params(CF_CURVE_P256, &params), CF_OK);
    hsm_attrs a = { 0 };
    assert_int_equal(hsm_attrs_set_ulong(&a, CKA_CLASS, CKO_PRIVATE_KEY), CF_OK);
    assert_int_equal(hsm_attrs_set_ulong(&a, CKA_KEY_TYPE, CKK_EC), CF_OK);
    assert_int_equal(hsm_attrs_set(&a, CKA_EC_PARAMS, params.p, params.len, 0), CF_OK);
    assert_int_equal(hsm_attrs_set(&a, CKA_VALUE, d + 31, 1, CF_ATTR_SECRET), CF_OK);
    cf_pkey *k = NULL;
    assert_int_equal(hsm_pkey_from_attrs(&a, &k), CF_OK);
    assert_int_equal(cf_pkey_bits(k), 256);
    cf_pkey_free(k);
    /* Edwards parameters on a CKK_EC key: unsupported curve for that type. */
    static const uint8_t ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
    assert_int_equal(hsm_attrs_set(&a, CKA_EC_PARAMS, ed_oid, sizeof ed_oid, 0), CF_OK);
    assert_int_equal(hsm_pkey_from_attrs(&a, &k), CF_E_CURVE_NOT_SUPPORTED);
    assert_int_equal(hsm_attrs_set_ulong(&a, CKA_KEY_TYPE, CKK_AES), CF_OK);
    assert_int_equal(hsm_pkey_from_attrs(&a, &k), CF_E_KEY_TYPE_INCONSISTENT);
    hsm_attrs_free(&a);
    cf_buf_free(&params);
}

static int teardown(void **state)
{
    (void)state;
    cf_pkey_free(rsa_key);
    rsa_key = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_aes_ecb_cbc),
        cmocka_unit_test(test_aes_ctr),
        cmocka_unit_test(test_aes_gcm),
        cmocka_unit_test(test_aes_wrap),
        cmocka_unit_test(test_rsa_keygen),
        cmocka_unit_test(test_rsa_sign),
        cmocka_unit_test(test_rsa_reset),
        cmocka_unit_test(test_rsa_encrypt),
        cmocka_unit_test(test_ec_keygen),
        cmocka_unit_test(test_ecdsa),
        cmocka_unit_test(test_eddsa),
        cmocka_unit_test(test_ecdh),
        cmocka_unit_test(test_keyattrs),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
