/* crypto_test.c: src/crypto against published known-answer vectors (FIPS 180-4, RFC 4231,
 * RFC 7914, RFC 3394, RFC 5649, SP 800-38A, the GCM specification, RFC 8032) and round trips for
 * what has no fixed answer (RSA, ECDSA, ECDH), plus the error paths of the contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "crypto/crypto.h"

/* ---- helpers --------------------------------------------------------------------------- */
typedef struct {
    uint8_t b[1024];
    size_t n;
} hexbuf;

static hexbuf hx(const char *s)
{
    hexbuf h = { .n = 0 };
    size_t len = strlen(s);
    assert_true(len % 2 == 0 && len / 2 <= sizeof h.b);
    for (size_t i = 0; i < len; i += 2) {
        unsigned v;
        assert_int_equal(sscanf(s + i, "%2x", &v), 1);
        h.b[h.n++] = (uint8_t)v;
    }
    return h;
}

#define assert_err(expr, err) assert_int_equal((expr), (err))
#define assert_ok(expr) assert_err((expr), CF_OK)
#define assert_bytes(ptr_, len_, hex_)              \
    do {                                            \
        hexbuf h_ = (hex_);                         \
        assert_int_equal((len_), h_.n);             \
        assert_memory_equal((ptr_), h_.b, h_.n);    \
    } while (0)

static uint8_t *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", COFFER_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = malloc(65536);
    assert_non_null(buf);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    assert_true(*len > 0);
    return buf;
}

/* ---- hashes, HMAC, PBKDF2 -------------------------------------------------------------- */
static void test_hash_kat(void **state)
{
    (void)state;
    /* FIPS 180-4 examples (the "abc" one-block messages). */
    static const struct {
        cf_hash_alg h;
        const char *md;
    } v[] = {
        { CF_HASH_SHA1, "a9993e364706816aba3e25717850c26c9cd0d89d" },
        { CF_HASH_SHA224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7" },
        { CF_HASH_SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { CF_HASH_SHA384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                          "8086072ba1e7cc2358baeca134c825a7" },
        { CF_HASH_SHA512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                          "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t out[CF_HASH_MAX];
        size_t len = sizeof out;
        assert_ok(cf_hash(v[i].h, "abc", 3, out, &len));
        assert_bytes(out, len, hx(v[i].md));
        assert_int_equal(cf_hash_size(v[i].h), len);

        /* Streaming, split across updates, and a copy taken half-way. */
        cf_digest *d = NULL, *d2 = NULL;
        assert_ok(cf_digest_new(v[i].h, &d));
        assert_ok(cf_digest_update(d, "a", 1));
        assert_ok(cf_digest_dup(d, &d2));
        assert_ok(cf_digest_update(d, "bc", 2));
        assert_ok(cf_digest_update(d2, "b", 1));
        assert_ok(cf_digest_update(d2, NULL, 0));
        assert_ok(cf_digest_update(d2, "c", 1));
        len = 1;   /* too small: the size needed comes back, the context is unchanged */
        assert_err(cf_digest_final(d, out, &len), CF_E_BUFFER_TOO_SMALL);
        assert_int_equal(len, cf_hash_size(v[i].h));
        assert_ok(cf_digest_final(d, out, &len));
        assert_bytes(out, len, hx(v[i].md));
        len = sizeof out;
        assert_ok(cf_digest_final(d2, out, &len));
        assert_bytes(out, len, hx(v[i].md));
        assert_err(cf_digest_update(d, "x", 1), CF_E_OPERATION_NOT_INITIALIZED);
        cf_digest_free(d);
        cf_digest_free(d2);
    }
    /* SHA-256 of the empty string. */
    uint8_t out[CF_HASH_MAX];
    size_t len = sizeof out;
    assert_ok(cf_hash(CF_HASH_SHA256, NULL, 0, out, &len));
    assert_bytes(out, len, hx("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    len = 31;
    assert_err(cf_hash(CF_HASH_SHA256, "abc", 3, out, &len), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(len, 32);

    cf_digest *d = NULL;
    assert_err(cf_digest_new(CF_HASH_NONE, &d), CF_E_MECHANISM_INVALID);
    assert_null(d);
    assert_err(cf_digest_new((cf_hash_alg)99, &d), CF_E_MECHANISM_INVALID);
    assert_int_equal(cf_hash_size(CF_HASH_NONE), 0);
    assert_string_equal(cf_hash_name(CF_HASH_SHA384), "SHA384");
    cf_digest_free(NULL);
}

static void test_hmac_kat(void **state)
{
    (void)state;
    uint8_t out[CF_HASH_MAX];
    size_t len = sizeof out;
    /* RFC 4231 test case 1. */
    uint8_t key1[20];
    memset(key1, 0x0b, sizeof key1);
    assert_ok(cf_hmac_oneshot(CF_HASH_SHA256, key1, sizeof key1, "Hi There", 8, out, &len));
    assert_bytes(out, len, hx("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
    /* Test case 2, streamed. */
    const char *data = "what do ya want for nothing?";
    cf_hmac *m = NULL;
    assert_ok(cf_hmac_new(CF_HASH_SHA256, (const uint8_t *)"Jefe", 4, &m));
    assert_ok(cf_hmac_update(m, data, 10));
    assert_ok(cf_hmac_update(m, data + 10, strlen(data) - 10));
    len = 16;
    assert_err(cf_hmac_final(m, out, &len), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(len, 32);
    assert_ok(cf_hmac_final(m, out, &len));
    assert_bytes(out, len, hx("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    assert_err(cf_hmac_update(m, "x", 1), CF_E_OPERATION_NOT_INITIALIZED);
    cf_hmac_free(m);
    /* Test case 2 with SHA-512. */
    len = sizeof out;
    assert_ok(cf_hmac_oneshot(CF_HASH_SHA512, (const uint8_t *)"Jefe", 4, data, strlen(data), out, &len));
    assert_bytes(out, len, hx("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                              "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"));
    /* An empty key is legal HMAC (RFC 2104): compare with HMAC-SHA256("", "") from OpenSSL's CLI. */
    len = sizeof out;
    assert_ok(cf_hmac_oneshot(CF_HASH_SHA256, NULL, 0, NULL, 0, out, &len));
    assert_bytes(out, len, hx("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"));
    assert_err(cf_hmac_new(CF_HASH_NONE, key1, 20, &m), CF_E_MECHANISM_INVALID);
    cf_hmac_free(NULL);
}

static void test_pbkdf2_kat(void **state)
{
    (void)state;
    /* RFC 7914 section 11, first PBKDF2-HMAC-SHA256 vector. */
    uint8_t out[64];
    assert_ok(cf_pbkdf2_sha256("passwd", 6, (const uint8_t *)"salt", 4, 1, out, sizeof out));
    assert_bytes(out, sizeof out,
                 hx("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
                    "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"));
    assert_err(cf_pbkdf2_sha256("passwd", 6, (const uint8_t *)"salt", 4, 0, out, sizeof out), CF_E_ARGS);
    assert_err(cf_pbkdf2_sha256("passwd", 6, (const uint8_t *)"salt", 4, 1, out, 0), CF_E_ARGS);
}

/* ---- AES key wrap ------------------------------------------------------------------------ */
static void test_keywrap_kat(void **state)
{
    (void)state;
    uint8_t out[64], back[64];
    size_t len, blen;
    /* RFC 3394 section 4.1. */
    hexbuf kek = hx("000102030405060708090A0B0C0D0E0F"), key = hx("00112233445566778899AABBCCDDEEFF");
    len = sizeof out;
    assert_ok(cf_aes_key_wrap(false, kek.b, kek.n, key.b, key.n, out, &len));
    assert_bytes(out, len, hx("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"));
    assert_int_equal(cf_aes_wrap_len(false, key.n), len);
    blen = sizeof back;
    assert_ok(cf_aes_key_unwrap(false, kek.b, kek.n, out, len, back, &blen));
    assert_bytes(back, blen, key);
    /* Short output buffers give the size needed. */
    size_t small = 23;
    assert_err(cf_aes_key_wrap(false, kek.b, kek.n, key.b, key.n, out, &small), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(small, 24);
    small = 3;
    assert_err(cf_aes_key_unwrap(false, kek.b, kek.n, out, len, back, &small), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(small, 16);
    /* Integrity and length failures. */
    out[5] ^= 1;
    blen = sizeof back;
    assert_err(cf_aes_key_unwrap(false, kek.b, kek.n, out, len, back, &blen), CF_E_WRAPPED_KEY_INVALID);
    blen = sizeof back;
    assert_err(cf_aes_key_unwrap(false, kek.b, kek.n, out, 20, back, &blen), CF_E_WRAPPED_KEY_LEN_RANGE);
    assert_err(cf_aes_key_unwrap(false, kek.b, kek.n, out, 16, back, &blen), CF_E_WRAPPED_KEY_LEN_RANGE);
    len = sizeof out;
    assert_err(cf_aes_key_wrap(false, kek.b, kek.n, key.b, 12, out, &len), CF_E_DATA_LEN_RANGE);
    assert_err(cf_aes_key_wrap(false, kek.b, kek.n, key.b, 8, out, &len), CF_E_DATA_LEN_RANGE);
    assert_err(cf_aes_key_wrap(false, kek.b, 15, key.b, key.n, out, &len), CF_E_KEY_SIZE_RANGE);

    /* RFC 5649 section 6, both examples. */
    hexbuf kek2 = hx("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
    hexbuf k20 = hx("c37b7e6492584340bed12207808941155068f738"), k7 = hx("466f7250617369");
    len = sizeof out;
    assert_ok(cf_aes_key_wrap(true, kek2.b, kek2.n, k20.b, k20.n, out, &len));
    assert_bytes(out, len, hx("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"));
    assert_int_equal(cf_aes_wrap_len(true, k20.n), 32);
    blen = sizeof back;
    assert_ok(cf_aes_key_unwrap(true, kek2.b, kek2.n, out, len, back, &blen));
    assert_bytes(back, blen, k20);
    len = sizeof out;
    assert_ok(cf_aes_key_wrap(true, kek2.b, kek2.n, k7.b, k7.n, out, &len));
    assert_bytes(out, len, hx("afbeb0f07dfbf5419200f2ccb50bb24f"));
    assert_int_equal(cf_aes_wrap_len(true, k7.n), 16);
    /* The unpadded length is learnt by unwrapping: a short buffer reports exactly 7. */
    blen = 7;
    assert_ok(cf_aes_key_unwrap(true, kek2.b, kek2.n, out, len, back, &blen));
    assert_bytes(back, blen, k7);
    blen = 6;
    assert_err(cf_aes_key_unwrap(true, kek2.b, kek2.n, out, len, back, &blen), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(blen, 7);
    out[15] ^= 0x80;
    blen = sizeof back;
    assert_err(cf_aes_key_unwrap(true, kek2.b, kek2.n, out, len, back, &blen), CF_E_WRAPPED_KEY_INVALID);
    len = sizeof out;
    assert_err(cf_aes_key_wrap(true, kek2.b, kek2.n, k7.b, 0, out, &len), CF_E_DATA_LEN_RANGE);
}

/* ---- AES streaming ----------------------------------------------------------------------- */
/* Runs a whole message through a cipher in two updates split at `split`; returns the output. */
static cf_err run_cipher(cf_aes_mode mode, bool enc, const hexbuf *key, const hexbuf *iv, const uint8_t *in,
                         size_t inlen, size_t split, uint8_t *out, size_t *outlen)
{
    cf_cipher *c = NULL;
    cf_err rv = cf_cipher_new(mode, enc, key->b, key->n, iv ? iv->b : NULL, iv ? iv->n : 0, NULL, 0, 0, &c);
    if (rv != CF_OK)
        return rv;
    size_t total = 0, n = *outlen;
    if (split > inlen)
        split = inlen;
    rv = cf_cipher_update(c, in, split, out, &n);
    if (rv == CF_OK) {
        total += n;
        n = *outlen - total;
        rv = cf_cipher_update(c, in + split, inlen - split, out + total, &n);
    }
    if (rv == CF_OK) {
        total += n;
        n = *outlen - total;
        rv = cf_cipher_final(c, out + total, &n);
    }
    if (rv == CF_OK)
        *outlen = total + n;
    cf_cipher_free(c);
    return rv;
}

static void test_cipher_sp800_38a(void **state)
{
    (void)state;
    /* SP 800-38A F.1.1 (ECB), F.2.1 (CBC), F.5.1 (CTR), AES-128, first two blocks. */
    hexbuf key = hx("2b7e151628aed2a6abf7158809cf4f3c");
    hexbuf pt = hx("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
    hexbuf iv = hx("000102030405060708090a0b0c0d0e0f");
    hexbuf ctr = hx("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    static const struct {
        cf_aes_mode mode;
        const char *ct;
    } v[] = {
        { CF_AES_ECB, "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf" },
        { CF_AES_CBC, "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2" },
        { CF_AES_CTR, "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff" },
    };
    for (size_t i = 0; i < 3; i++) {
        const hexbuf *ivp = v[i].mode == CF_AES_ECB ? NULL : v[i].mode == CF_AES_CBC ? &iv : &ctr;
        for (size_t split = 0; split <= pt.n; split += 5) {   /* partial blocks buffered */
            uint8_t out[64], back[64];
            size_t len = sizeof out, blen = sizeof back;
            assert_ok(run_cipher(v[i].mode, true, &key, ivp, pt.b, pt.n, split, out, &len));
            assert_bytes(out, len, hx(v[i].ct));
            assert_ok(run_cipher(v[i].mode, false, &key, ivp, out, len, split, back, &blen));
            assert_bytes(back, blen, pt);
        }
    }
    /* CTR takes any length; ECB/CBC need whole blocks. */
    uint8_t out[64];
    size_t len = sizeof out;
    assert_ok(run_cipher(CF_AES_CTR, true, &key, &ctr, pt.b, 5, 2, out, &len));
    assert_bytes(out, len, hx("874d6191b6"));
    len = sizeof out;
    assert_err(run_cipher(CF_AES_ECB, true, &key, NULL, pt.b, 17, 3, out, &len), CF_E_DATA_LEN_RANGE);
    len = sizeof out;
    assert_err(run_cipher(CF_AES_CBC, false, &key, &iv, pt.b, 31, 16, out, &len), CF_E_ENCRYPTED_DATA_LEN_RANGE);

    /* Parameter errors. */
    cf_cipher *c = NULL;
    assert_err(cf_cipher_new(CF_AES_CBC, true, key.b, 15, iv.b, 16, NULL, 0, 0, &c), CF_E_KEY_SIZE_RANGE);
    assert_err(cf_cipher_new(CF_AES_CBC, true, key.b, 16, iv.b, 8, NULL, 0, 0, &c), CF_E_MECHANISM_PARAM_INVALID);
    assert_err(cf_cipher_new(CF_AES_CTR, true, key.b, 16, NULL, 0, NULL, 0, 0, &c), CF_E_MECHANISM_PARAM_INVALID);
    assert_null(c);

    /* update reports the exact output size it needs, without consuming the input. */
    assert_ok(cf_cipher_new(CF_AES_ECB, true, key.b, key.n, NULL, 0, NULL, 0, 0, &c));
    len = 4;
    assert_ok(cf_cipher_update(c, pt.b, 4, out, &len));   /* buffered: nothing out */
    assert_int_equal(len, 0);
    len = 15;
    assert_err(cf_cipher_update(c, pt.b + 4, 20, out, &len), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(len, 16);
    assert_ok(cf_cipher_update(c, pt.b + 4, 20, out, &len));   /* 24 in: one block out */
    assert_int_equal(len, 16);
    assert_bytes(out, len, hx("3ad77bb40d7a3660a89ecaf32466ef97"));
    len = 0;
    assert_err(cf_cipher_final(c, out, &len), CF_E_DATA_LEN_RANGE);   /* 8 bytes left over */
    assert_err(cf_cipher_update(c, pt.b, 8, out, &len), CF_E_OPERATION_NOT_INITIALIZED);
    cf_cipher_free(c);
}

static void test_cipher_cbc_pad(void **state)
{
    (void)state;
    hexbuf key = hx("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    hexbuf iv = hx("0f0e0d0c0b0a09080706050403020100");
    uint8_t pt[40], ct[64], back[64];
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)(i * 7);
    for (size_t n = 0; n <= sizeof pt; n++) {
        size_t len = sizeof ct, blen = sizeof back;
        assert_ok(run_cipher(CF_AES_CBC_PAD, true, &key, &iv, pt, n, n / 3, ct, &len));
        assert_int_equal(len, (n / 16 + 1) * 16);   /* PKCS#7 always adds 1..16 bytes */
        assert_ok(run_cipher(CF_AES_CBC_PAD, false, &key, &iv, ct, len, len / 2, back, &blen));
        assert_int_equal(blen, n);
        assert_memory_equal(back, pt, n);
    }
    /* A block whose last byte is 0 is never valid padding: make one with raw CBC. */
    uint8_t zero[16] = { 0 };
    size_t len = sizeof ct, blen = sizeof back;
    assert_ok(run_cipher(CF_AES_CBC, true, &key, &iv, zero, 16, 0, ct, &len));
    assert_err(run_cipher(CF_AES_CBC_PAD, false, &key, &iv, ct, len, 0, back, &blen), CF_E_ENCRYPTED_DATA_INVALID);
    blen = sizeof back;
    assert_err(run_cipher(CF_AES_CBC_PAD, false, &key, &iv, ct, 0, 0, back, &blen), CF_E_ENCRYPTED_DATA_LEN_RANGE);

    /* Decrypt final with too small a buffer keeps the result for a retry. */
    len = sizeof ct;
    assert_ok(run_cipher(CF_AES_CBC_PAD, true, &key, &iv, pt, 21, 0, ct, &len));   /* 32 bytes */
    cf_cipher *c = NULL;
    assert_ok(cf_cipher_new(CF_AES_CBC_PAD, false, key.b, key.n, iv.b, iv.n, NULL, 0, 0, &c));
    blen = sizeof back;
    assert_ok(cf_cipher_update(c, ct, len, back, &blen));
    assert_int_equal(blen, 16);   /* the last block is held back: it carries the padding */
    size_t flen = 2;
    assert_err(cf_cipher_final(c, back + 16, &flen), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(flen, 5);
    assert_ok(cf_cipher_final(c, back + 16, &flen));
    assert_int_equal(flen, 5);
    assert_memory_equal(back, pt, 21);
    assert_err(cf_cipher_final(c, back, &flen), CF_E_OPERATION_NOT_INITIALIZED);
    cf_cipher_free(c);
}

static void test_cipher_gcm(void **state)
{
    (void)state;
    /* McGrew & Viega, "The Galois/Counter Mode of Operation", test case 4 (AES-128, with AAD). */
    hexbuf key = hx("feffe9928665731c6d6a8f9467308308"), iv = hx("cafebabefacedbaddecaf888");
    hexbuf aad = hx("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    hexbuf pt = hx("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                   "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    hexbuf ct = hx("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                   "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091");
    hexbuf tag = hx("5bc94fbc3221a5db94fae95ae7121a47");
    uint8_t out[128];
    size_t len = sizeof out, n;
    cf_cipher *c = NULL;
    assert_ok(cf_cipher_new(CF_AES_GCM, true, key.b, key.n, iv.b, iv.n, aad.b, aad.n, 16, &c));
    assert_ok(cf_cipher_update(c, pt.b, 7, out, &len));
    assert_int_equal(len, 7);
    n = sizeof out - 7;
    assert_ok(cf_cipher_update(c, pt.b + 7, pt.n - 7, out + 7, &n));
    assert_int_equal(n, pt.n - 7);
    n = 15;
    assert_err(cf_cipher_final(c, out + pt.n, &n), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 16);
    assert_ok(cf_cipher_final(c, out + pt.n, &n));
    assert_int_equal(n, 16);
    assert_memory_equal(out, ct.b, ct.n);
    assert_memory_equal(out + ct.n, tag.b, tag.n);
    cf_cipher_free(c);

    /* Decrypt, with the full tag and with a 12-byte truncation of it. */
    for (size_t tl = 16; tl >= 12; tl -= 4) {
        assert_ok(cf_cipher_new(CF_AES_GCM, false, key.b, key.n, iv.b, iv.n, aad.b, aad.n, tl, &c));
        len = sizeof out;
        assert_ok(cf_cipher_update(c, ct.b, ct.n, out, &len));
        assert_ok(cf_cipher_set_tag(c, tag.b, tl));
        n = 0;
        assert_ok(cf_cipher_final(c, out + len, &n));
        assert_int_equal(n, 0);
        assert_memory_equal(out, pt.b, pt.n);
        cf_cipher_free(c);
    }
    /* A wrong tag, and wrong AAD. */
    hexbuf bad = tag;
    bad.b[0] ^= 1;
    assert_ok(cf_cipher_new(CF_AES_GCM, false, key.b, key.n, iv.b, iv.n, aad.b, aad.n, 16, &c));
    len = sizeof out;
    assert_ok(cf_cipher_update(c, ct.b, ct.n, out, &len));
    assert_ok(cf_cipher_set_tag(c, bad.b, bad.n));
    n = 0;
    assert_err(cf_cipher_final(c, out, &n), CF_E_ENCRYPTED_DATA_INVALID);
    cf_cipher_free(c);
    assert_ok(cf_cipher_new(CF_AES_GCM, false, key.b, key.n, iv.b, iv.n, aad.b, aad.n - 1, 16, &c));
    len = sizeof out;
    assert_ok(cf_cipher_update(c, ct.b, ct.n, out, &len));
    assert_ok(cf_cipher_set_tag(c, tag.b, tag.n));
    assert_err(cf_cipher_final(c, out, &n), CF_E_ENCRYPTED_DATA_INVALID);
    cf_cipher_free(c);
    /* Tag size limits. */
    assert_err(cf_cipher_new(CF_AES_GCM, true, key.b, key.n, iv.b, iv.n, NULL, 0, 3, &c), CF_E_MECHANISM_PARAM_INVALID);
    assert_err(cf_cipher_new(CF_AES_GCM, true, key.b, key.n, iv.b, iv.n, NULL, 0, 17, &c), CF_E_MECHANISM_PARAM_INVALID);
    assert_err(cf_cipher_new(CF_AES_GCM, true, key.b, key.n, iv.b, 0, NULL, 0, 16, &c), CF_E_MECHANISM_PARAM_INVALID);
}

/* ---- curves and points ------------------------------------------------------------------- */
static void test_curve_params(void **state)
{
    (void)state;
    static const struct {
        const char *der;
        cf_curve c;
        size_t fl;
    } v[] = {
        { "06082a8648ce3d030107", CF_CURVE_P256, 32 },
        { "06052b81040022", CF_CURVE_P384, 48 },
        { "06052b81040023", CF_CURVE_P521, 66 },
        { "130c656477617264733235353139", CF_CURVE_ED25519, 32 },
    };
    for (size_t i = 0; i < 4; i++) {
        hexbuf d = hx(v[i].der);
        assert_int_equal(cf_curve_from_params(d.b, d.n), v[i].c);
        cf_buf b = { 0 };
        assert_ok(cf_curve_to_params(v[i].c, &b));
        assert_bytes(b.p, b.len, d);
        cf_buf_free(&b);
        assert_null(b.p);
        assert_int_equal(cf_curve_field_len(v[i].c), v[i].fl);
        /* One byte short, one byte long. */
        assert_int_equal(cf_curve_from_params(d.b, d.n - 1), CF_CURVE_NONE);
        d.b[d.n] = 0;
        assert_int_equal(cf_curve_from_params(d.b, d.n + 1), CF_CURVE_NONE);
    }
    hexbuf oid = hx("06032b6570");
    assert_int_equal(cf_curve_from_params(oid.b, oid.n), CF_CURVE_ED25519);
    hexbuf k1 = hx("06052b8104000a");   /* secp256k1 */
    assert_int_equal(cf_curve_from_params(k1.b, k1.n), CF_CURVE_NONE);
    assert_int_equal(cf_curve_from_params(NULL, 0), CF_CURVE_NONE);
    cf_buf b = { 0 };
    assert_err(cf_curve_to_params(CF_CURVE_NONE, &b), CF_E_CURVE_NOT_SUPPORTED);
    assert_int_equal(cf_curve_field_len(CF_CURVE_NONE), 0);
    cf_buf_free(NULL);
}

static void test_point_der(void **state)
{
    (void)state;
    static const struct {
        cf_curve c;
        size_t n;
        const char *hdr;
    } v[] = {
        { CF_CURVE_P256, 65, "0441" },
        { CF_CURVE_P384, 97, "0461" },
        { CF_CURVE_P521, 133, "048185" },   /* long form length */
        { CF_CURVE_ED25519, 32, "0420" },
    };
    for (size_t i = 0; i < 4; i++) {
        uint8_t pt[133];
        for (size_t j = 0; j < v[i].n; j++)
            pt[j] = (uint8_t)(j + 1);
        if (v[i].c != CF_CURVE_ED25519)
            pt[0] = 0x04;
        cf_buf der = { 0 }, back = { 0 };
        assert_ok(cf_ec_point_to_der(pt, v[i].n, &der));
        hexbuf h = hx(v[i].hdr);
        assert_int_equal(der.len, h.n + v[i].n);
        assert_memory_equal(der.p, h.b, h.n);
        assert_memory_equal(der.p + h.n, pt, v[i].n);
        assert_ok(cf_ec_point_from_der(v[i].c, der.p, der.len, &back));
        assert_int_equal(back.len, v[i].n);
        assert_memory_equal(back.p, pt, v[i].n);
        cf_buf_free(&back);
        /* The bare point is accepted too. */
        assert_ok(cf_ec_point_from_der(v[i].c, pt, v[i].n, &back));
        assert_memory_equal(back.p, pt, v[i].n);
        cf_buf_free(&back);
        /* Truncated, extended, or on the wrong curve. */
        assert_err(cf_ec_point_from_der(v[i].c, der.p, der.len - 1, &back), CF_E_ATTRIBUTE_VALUE_INVALID);
        assert_null(back.p);
        assert_err(cf_ec_point_from_der(v[i].c, der.p, 1, &back), CF_E_ATTRIBUTE_VALUE_INVALID);
        assert_err(cf_ec_point_from_der(v[i].c, der.p, 0, &back), CF_E_ATTRIBUTE_VALUE_INVALID);
        cf_curve other = v[i].c == CF_CURVE_P256 ? CF_CURVE_P384 : CF_CURVE_P256;
        assert_err(cf_ec_point_from_der(other, der.p, der.len, &back), CF_E_ATTRIBUTE_VALUE_INVALID);
        cf_buf_free(&der);
    }
    /* A long-form length where the short form was due is not DER. */
    uint8_t nonmin[2 + 1 + 65] = { 0x04, 0x81, 0x41, 0x04 };
    cf_buf back = { 0 };
    assert_err(cf_ec_point_from_der(CF_CURVE_P256, nonmin, sizeof nonmin, &back), CF_E_ATTRIBUTE_VALUE_INVALID);
    /* A compressed point is not what CKA_EC_POINT holds here. */
    uint8_t comp[2 + 65] = { 0x04, 0x41, 0x02 };
    assert_err(cf_ec_point_from_der(CF_CURVE_P256, comp, sizeof comp, &back), CF_E_ATTRIBUTE_VALUE_INVALID);
    assert_err(cf_ec_point_from_der(CF_CURVE_NONE, comp, sizeof comp, &back), CF_E_CURVE_NOT_SUPPORTED);
}

/* ---- signatures: helpers ----------------------------------------------------------------- */
static cf_err sign_once(cf_pkey *k, cf_sig_params p, const uint8_t *in, size_t inlen, uint8_t *sig, size_t *siglen)
{
    cf_signer *s = NULL;
    cf_err rv = cf_signer_new(k, &p, true, &s);
    if (rv == CF_OK)
        rv = cf_signer_sign(s, in, inlen, sig, siglen);
    cf_signer_free(s);
    return rv;
}

static cf_err verify_once(cf_pkey *k, cf_sig_params p, const uint8_t *in, size_t inlen, const uint8_t *sig,
                          size_t siglen)
{
    cf_signer *s = NULL;
    cf_err rv = cf_signer_new(k, &p, false, &s);
    if (rv == CF_OK)
        rv = cf_signer_verify(s, in, inlen, sig, siglen);
    cf_signer_free(s);
    return rv;
}

/* ---- RSA --------------------------------------------------------------------------------- */
static cf_pkey *rsa_key;   /* generated once for the RSA tests */

static int rsa_setup(void **state)
{
    (void)state;
    return cf_pkey_generate_rsa(2048, NULL, 0, &rsa_key) == CF_OK ? 0 : -1;
}

static int rsa_teardown(void **state)
{
    (void)state;
    cf_pkey_free(rsa_key);
    return 0;
}

static void test_rsa_keys(void **state)
{
    (void)state;
    cf_pkey *k = rsa_key;
    assert_int_equal(cf_pkey_get_type(k), CF_PKEY_RSA);
    assert_int_equal(cf_pkey_bits(k), 2048);
    assert_true(cf_pkey_is_private(k));

    cf_rsa_parts parts = { 0 }, pub = { 0 };
    assert_ok(cf_pkey_rsa_export(k, true, &parts));
    assert_int_equal(parts.n.len, 256);
    assert_bytes(parts.e.p, parts.e.len, hx("010001"));
    assert_true(parts.d.len > 0 && parts.p.len > 0 && parts.q.len > 0 && parts.dp.len > 0
                && parts.dq.len > 0 && parts.qinv.len > 0);
    assert_ok(cf_pkey_rsa_export(k, false, &pub));
    assert_int_equal(pub.d.len, 0);
    assert_memory_equal(pub.n.p, parts.n.p, 256);

    /* Private import with CRT, without CRT (n, e, d), and public import. */
    cf_pkey *kp = NULL, *knd = NULL, *kpub = NULL;
    assert_ok(cf_pkey_rsa_import(&parts, &kp));
    assert_true(cf_pkey_is_private(kp));
    cf_rsa_parts nd = { .n = parts.n, .e = parts.e, .d = parts.d };
    assert_ok(cf_pkey_rsa_import(&nd, &knd));
    assert_true(cf_pkey_is_private(knd));
    assert_ok(cf_pkey_rsa_import(&pub, &kpub));
    assert_false(cf_pkey_is_private(kpub));
    assert_int_equal(cf_pkey_bits(kpub), 2048);

    /* The re-imported private key round-trips to the same components. */
    cf_rsa_parts again = { 0 };
    assert_ok(cf_pkey_rsa_export(kp, true, &again));
    assert_int_equal(again.qinv.len, parts.qinv.len);
    assert_memory_equal(again.qinv.p, parts.qinv.p, parts.qinv.len);
    assert_memory_equal(again.d.p, parts.d.p, parts.d.len);
    cf_rsa_parts_free(&again);
    assert_err(cf_pkey_rsa_export(kpub, true, &again), CF_E_KEY_TYPE_INCONSISTENT);

    /* Same deterministic PKCS#1 signature from all three private forms; verified by the public. */
    cf_sig_params p = { .scheme = CF_SIG_RSA_PKCS1, .hash = CF_HASH_SHA256 };
    uint8_t digest[32], s1[256], s2[256];
    size_t l1 = sizeof s1, l2 = sizeof s2;
    memset(digest, 0x5a, sizeof digest);
    assert_ok(sign_once(kp, p, digest, 32, s1, &l1));
    assert_ok(sign_once(knd, p, digest, 32, s2, &l2));
    assert_memory_equal(s1, s2, 256);
    assert_ok(verify_once(kpub, p, digest, 32, s1, l1));
    assert_ok(verify_once(k, p, digest, 32, s1, l1));

    /* Missing parts and bad values. */
    cf_pkey_free(kp);
    cf_rsa_parts empty = { 0 };
    assert_err(cf_pkey_rsa_import(&empty, &kp), CF_E_TEMPLATE_INCOMPLETE);
    assert_null(kp);
    cf_rsa_parts no_e = { .n = parts.n, .d = parts.d };
    assert_err(cf_pkey_rsa_import(&no_e, &kp), CF_E_TEMPLATE_INCOMPLETE);
    cf_pkey_free(knd);
    cf_pkey_free(kpub);
    cf_rsa_parts_free(&parts);
    cf_rsa_parts_free(&pub);

    cf_pkey *g = NULL;
    assert_err(cf_pkey_generate_rsa(512, NULL, 0, &g), CF_E_KEY_SIZE_RANGE);
    assert_err(cf_pkey_generate_rsa(32768, NULL, 0, &g), CF_E_KEY_SIZE_RANGE);
    static const uint8_t even[] = { 0x01, 0x00, 0x00 }, one[] = { 0x01 };
    assert_err(cf_pkey_generate_rsa(2048, even, sizeof even, &g), CF_E_ATTRIBUTE_VALUE_INVALID);
    assert_err(cf_pkey_generate_rsa(2048, one, sizeof one, &g), CF_E_ATTRIBUTE_VALUE_INVALID);
    assert_null(g);
    /* Reference counting: the key lives until the last holder lets go. */
    assert_ptr_equal(cf_pkey_ref(k), k);
    cf_pkey_free(k);
    assert_int_equal(cf_pkey_bits(k), 2048);
}

static void test_rsa_sign(void **state)
{
    (void)state;
    cf_pkey *k = rsa_key, *pubk = NULL;
    cf_rsa_parts pub = { 0 };
    assert_ok(cf_pkey_rsa_export(k, false, &pub));
    assert_ok(cf_pkey_rsa_import(&pub, &pubk));
    cf_rsa_parts_free(&pub);

    uint8_t digest[32], sig[256], sig2[256];
    size_t len;
    assert_ok(cf_hash(CF_HASH_SHA256, "coffer", 6, digest, &(size_t){ 32 }));

    /* PKCS#1 v1.5 with SHA-256; the signer is reused (the hot path) and stays deterministic. */
    cf_sig_params pk1 = { .scheme = CF_SIG_RSA_PKCS1, .hash = CF_HASH_SHA256 };
    cf_signer *s = NULL, *v = NULL;
    assert_ok(cf_signer_new(k, &pk1, true, &s));
    assert_int_equal(cf_signer_sig_len(s), 256);
    len = 255;
    assert_err(cf_signer_sign(s, digest, 32, sig, &len), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(len, 256);
    for (int i = 0; i < 3; i++) {
        len = sizeof sig2;
        assert_ok(cf_signer_sign(s, digest, 32, i == 0 ? sig : sig2, &len));
        assert_int_equal(len, 256);
    }
    assert_memory_equal(sig, sig2, 256);
    assert_err(cf_signer_sign(s, digest, 31, sig2, &len), CF_E_DATA_LEN_RANGE);
    cf_signer_free(s);
    assert_ok(cf_signer_new(pubk, &pk1, false, &v));
    for (int i = 0; i < 3; i++)
        assert_ok(cf_signer_verify(v, digest, 32, sig, 256));
    sig[100] ^= 1;
    assert_err(cf_signer_verify(v, digest, 32, sig, 256), CF_E_SIGNATURE_INVALID);
    sig[100] ^= 1;
    assert_err(cf_signer_verify(v, digest, 32, sig, 255), CF_E_SIGNATURE_LEN_RANGE);
    memset(sig2, 0xff, sizeof sig2);   /* not below the modulus */
    assert_err(cf_signer_verify(v, digest, 32, sig2, 256), CF_E_SIGNATURE_INVALID);
    assert_ok(cf_signer_verify(v, digest, 32, sig, 256));   /* still usable after failures */
    cf_signer_free(v);

    /* Hash NONE: the caller supplies the DigestInfo; same signature (RFC 8017 sec. 9.2). */
    hexbuf di = hx("3031300d060960864801650304020105000420");
    memcpy(di.b + di.n, digest, 32);
    di.n += 32;
    cf_sig_params raw1 = { .scheme = CF_SIG_RSA_PKCS1, .hash = CF_HASH_NONE };
    len = sizeof sig2;
    assert_ok(sign_once(k, raw1, di.b, di.n, sig2, &len));
    assert_memory_equal(sig, sig2, 256);
    assert_ok(verify_once(pubk, raw1, di.b, di.n, sig2, len));
    uint8_t big[256] = { 0 };
    len = sizeof sig2;
    assert_err(sign_once(k, raw1, big, 246, sig2, &len), CF_E_DATA_LEN_RANGE);

    /* X.509 (raw): the EMSA-PKCS1-v1_5 block signed raw is the PKCS#1 signature. */
    uint8_t em[256];
    em[0] = 0x00;
    em[1] = 0x01;
    memset(em + 2, 0xff, 256 - 3 - di.n);
    em[256 - di.n - 1] = 0x00;
    memcpy(em + 256 - di.n, di.b, di.n);
    cf_sig_params x509 = { .scheme = CF_SIG_RSA_X509 };
    len = sizeof sig2;
    /* Leading zero bytes are implicit: sign em without its first byte. */
    assert_ok(sign_once(k, x509, em + 1, 255, sig2, &len));
    assert_memory_equal(sig, sig2, 256);
    assert_ok(verify_once(pubk, x509, em + 1, 255, sig2, 256));
    assert_ok(verify_once(pubk, x509, em, 256, sig2, 256));
    em[200] ^= 1;
    assert_err(verify_once(pubk, x509, em, 256, sig2, 256), CF_E_SIGNATURE_INVALID);
    len = sizeof sig2;
    assert_ok(sign_once(k, x509, (const uint8_t *)"\x05", 1, sig2, &len));
    assert_ok(verify_once(pubk, x509, (const uint8_t *)"\x05", 1, sig2, len));
    assert_err(verify_once(pubk, x509, (const uint8_t *)"\x06", 1, sig2, len), CF_E_SIGNATURE_INVALID);
    len = sizeof sig2;
    assert_err(sign_once(k, x509, big, 257, sig2, &len), CF_E_DATA_LEN_RANGE);
    memset(big, 0xff, sizeof big);
    assert_err(sign_once(k, x509, big, 256, sig2, &len), CF_E_DATA_INVALID);

    /* PSS, SHA-256 / MGF1-SHA-256 / 32-byte salt, and SHA-384 with MGF1-SHA-1, no salt. */
    cf_sig_params pss = { .scheme = CF_SIG_RSA_PSS, .hash = CF_HASH_SHA256, .mgf_hash = CF_HASH_SHA256, .salt_len = 32 };
    assert_ok(cf_signer_new(k, &pss, true, &s));
    assert_ok(cf_signer_new(pubk, &pss, false, &v));
    for (int i = 0; i < 2; i++) {
        len = sizeof sig;
        assert_ok(cf_signer_sign(s, digest, 32, sig, &len));
        assert_ok(cf_signer_verify(v, digest, 32, sig, len));
    }
    sig[0] ^= 0x40;
    assert_err(cf_signer_verify(v, digest, 32, sig, 256), CF_E_SIGNATURE_INVALID);
    digest[0] ^= 1;
    sig[0] ^= 0x40;
    assert_err(cf_signer_verify(v, digest, 32, sig, 256), CF_E_SIGNATURE_INVALID);
    digest[0] ^= 1;
    cf_signer_free(s);
    cf_signer_free(v);
    /* The same signature under another salt length does not verify. */
    cf_sig_params pss0 = pss;
    pss0.salt_len = 0;
    assert_err(verify_once(pubk, pss0, digest, 32, sig, 256), CF_E_SIGNATURE_INVALID);
    uint8_t d48[48] = { 1 };
    cf_sig_params pss384 = { .scheme = CF_SIG_RSA_PSS, .hash = CF_HASH_SHA384, .mgf_hash = CF_HASH_SHA1 };
    len = sizeof sig;
    assert_ok(sign_once(k, pss384, d48, 48, sig, &len));
    assert_ok(verify_once(pubk, pss384, d48, 48, sig, len));
    cf_sig_params pss_big = pss;
    pss_big.salt_len = 256 - 32 - 1;   /* emLen - hLen - 2 = 222 is the largest */
    assert_err(cf_signer_new(k, &pss_big, true, &s), CF_E_MECHANISM_PARAM_INVALID);
    pss_big.salt_len = 222;
    len = sizeof sig;
    assert_ok(sign_once(k, pss_big, digest, 32, sig, &len));
    cf_sig_params pss_nomgf = pss;
    pss_nomgf.mgf_hash = CF_HASH_NONE;
    assert_err(cf_signer_new(k, &pss_nomgf, true, &s), CF_E_MECHANISM_PARAM_INVALID);

    /* Wrong key for the scheme; a public key cannot sign. */
    cf_sig_params ecdsa = { .scheme = CF_SIG_ECDSA };
    assert_err(cf_signer_new(k, &ecdsa, true, &s), CF_E_KEY_TYPE_INCONSISTENT);
    assert_err(cf_signer_new(pubk, &pk1, true, &s), CF_E_KEY_TYPE_INCONSISTENT);
    assert_null(s);
    cf_pkey_free(pubk);
}

static void test_rsa_encrypt(void **state)
{
    (void)state;
    cf_pkey *k = rsa_key, *pubk = NULL;
    cf_rsa_parts pub = { 0 };
    assert_ok(cf_pkey_rsa_export(k, false, &pub));
    assert_ok(cf_pkey_rsa_import(&pub, &pubk));
    cf_rsa_parts_free(&pub);
    const uint8_t msg[] = "attack at dawn";
    uint8_t ct[256], pt[256];
    size_t len, plen;

    cf_rsa_enc_params oaep = { .mode = CF_RSA_ENC_OAEP, .hash = CF_HASH_SHA256, .mgf_hash = CF_HASH_SHA256,
                               .label = (const uint8_t *)"label", .label_len = 5 };
    len = sizeof ct;
    assert_ok(cf_rsa_encrypt(pubk, &oaep, msg, sizeof msg, ct, &len));
    assert_int_equal(len, 256);
    plen = sizeof pt;
    assert_ok(cf_rsa_decrypt(k, &oaep, ct, len, pt, &plen));
    assert_int_equal(plen, sizeof msg);
    assert_memory_equal(pt, msg, sizeof msg);
    plen = 3;
    assert_err(cf_rsa_decrypt(k, &oaep, ct, len, pt, &plen), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(plen, sizeof msg);
    cf_rsa_enc_params other = oaep;
    other.label = (const uint8_t *)"labem";
    plen = sizeof pt;
    assert_err(cf_rsa_decrypt(k, &other, ct, len, pt, &plen), CF_E_ENCRYPTED_DATA_INVALID);
    other.label = NULL;
    other.label_len = 0;
    assert_err(cf_rsa_decrypt(k, &other, ct, len, pt, &plen), CF_E_ENCRYPTED_DATA_INVALID);
    assert_err(cf_rsa_decrypt(k, &oaep, ct, 255, pt, &plen), CF_E_ENCRYPTED_DATA_LEN_RANGE);
    assert_err(cf_rsa_decrypt(pubk, &oaep, ct, 256, pt, &plen), CF_E_KEY_TYPE_INCONSISTENT);
    /* OAEP-SHA256 fits 256 - 2*32 - 2 = 190 bytes. */
    uint8_t big[256] = { 0 };
    len = sizeof ct;
    assert_ok(cf_rsa_encrypt(pubk, &oaep, big, 190, ct, &len));
    assert_err(cf_rsa_encrypt(pubk, &oaep, big, 191, ct, &len), CF_E_DATA_LEN_RANGE);
    len = 10;
    assert_err(cf_rsa_encrypt(pubk, &oaep, msg, sizeof msg, ct, &len), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(len, 256);

    /* PKCS#1 v1.5: 256 - 11 = 245 bytes at most. */
    cf_rsa_enc_params pkcs1 = { .mode = CF_RSA_ENC_PKCS1 };
    len = sizeof ct;
    assert_ok(cf_rsa_encrypt(pubk, &pkcs1, msg, sizeof msg, ct, &len));
    plen = sizeof pt;
    assert_ok(cf_rsa_decrypt(k, &pkcs1, ct, len, pt, &plen));
    assert_int_equal(plen, sizeof msg);
    assert_memory_equal(pt, msg, sizeof msg);
    assert_err(cf_rsa_encrypt(pubk, &pkcs1, big, 246, ct, &len), CF_E_DATA_LEN_RANGE);

    /* Raw: left-padded in, the full modulus-length block out. */
    cf_rsa_enc_params raw = { .mode = CF_RSA_ENC_RAW };
    len = sizeof ct;
    assert_ok(cf_rsa_encrypt(pubk, &raw, msg, sizeof msg, ct, &len));
    plen = sizeof pt;
    assert_ok(cf_rsa_decrypt(k, &raw, ct, len, pt, &plen));
    assert_int_equal(plen, 256);
    for (size_t i = 0; i < 256 - sizeof msg; i++)
        assert_int_equal(pt[i], 0);
    assert_memory_equal(pt + 256 - sizeof msg, msg, sizeof msg);
    /* The raw ciphertext decrypts under PKCS#1 v1.5 rules only if it was so padded. */
    len = sizeof ct;
    assert_err(cf_rsa_encrypt(pubk, &raw, big, 257, ct, &len), CF_E_DATA_LEN_RANGE);
    memset(big, 0xff, sizeof big);
    assert_err(cf_rsa_encrypt(pubk, &raw, big, 256, ct, &len), CF_E_DATA_INVALID);
    cf_pkey_free(pubk);
}

/* ---- EC ---------------------------------------------------------------------------------- */
static void test_ec_keys_and_ecdsa(void **state)
{
    (void)state;
    const cf_curve curves[] = { CF_CURVE_P256, CF_CURVE_P384, CF_CURVE_P521 };
    const unsigned bits[] = { 256, 384, 521 };
    for (size_t i = 0; i < 3; i++) {
        cf_curve c = curves[i], got = CF_CURVE_NONE;
        size_t fl = cf_curve_field_len(c);
        cf_pkey *k = NULL, *kpriv = NULL, *kpub = NULL;
        assert_ok(cf_pkey_generate_ec(c, &k));
        assert_int_equal(cf_pkey_get_type(k), CF_PKEY_EC);
        assert_int_equal(cf_pkey_bits(k), bits[i]);
        assert_true(cf_pkey_is_private(k));

        cf_buf point = { 0 }, priv = { 0 }, point2 = { 0 }, none = { 0 };
        assert_ok(cf_pkey_ec_export(k, true, &got, &point, &priv));
        assert_int_equal(got, c);
        assert_int_equal(point.len, 1 + 2 * fl);
        assert_int_equal(point.p[0], 0x04);
        assert_int_equal(priv.len, fl);

        /* A private key imported without its point gets the same point computed. */
        assert_ok(cf_pkey_ec_import(c, NULL, 0, priv.p, priv.len, &kpriv));
        assert_true(cf_pkey_is_private(kpriv));
        assert_ok(cf_pkey_ec_export(kpriv, false, NULL, &point2, &none));
        assert_int_equal(none.len, 0);
        assert_int_equal(point2.len, point.len);
        assert_memory_equal(point2.p, point.p, point.len);
        cf_buf_free(&point2);
        /* With both, they must agree. */
        cf_pkey *kboth = NULL;
        assert_ok(cf_pkey_ec_import(c, point.p, point.len, priv.p, priv.len, &kboth));
        cf_pkey_free(kboth);
        point.p[point.len - 1] ^= 1;
        assert_err(cf_pkey_ec_import(c, point.p, point.len, priv.p, priv.len, &kboth), CF_E_TEMPLATE_INCONSISTENT);
        /* Off the curve. */
        assert_err(cf_pkey_ec_import(c, point.p, point.len, NULL, 0, &kpub), CF_E_ATTRIBUTE_VALUE_INVALID);
        assert_null(kpub);
        point.p[point.len - 1] ^= 1;
        assert_ok(cf_pkey_ec_import(c, point.p, point.len, NULL, 0, &kpub));
        assert_false(cf_pkey_is_private(kpub));
        cf_buf p3 = { 0 }, s3 = { 0 };
        assert_err(cf_pkey_ec_export(kpub, true, NULL, &p3, &s3), CF_E_KEY_TYPE_INCONSISTENT);
        assert_null(p3.p);
        assert_null(s3.p);

        /* ECDSA: r||s of 2 * field length, verified by the imported public key. */
        cf_sig_params p = { .scheme = CF_SIG_ECDSA };
        uint8_t digest[64], sig[132];
        memset(digest, 0xa5, sizeof digest);
        cf_signer *s = NULL, *v = NULL;
        assert_ok(cf_signer_new(kpriv, &p, true, &s));
        assert_ok(cf_signer_new(kpub, &p, false, &v));
        assert_int_equal(cf_signer_sig_len(s), 2 * fl);
        for (int j = 0; j < 20; j++) {   /* short r or s values get left-padded */
            size_t len = sizeof sig;
            size_t dl = j % 2 ? 32 : 64;   /* longer digests are truncated (FIPS 186-4 6.4) */
            assert_ok(cf_signer_sign(s, digest, dl, sig, &len));
            assert_int_equal(len, 2 * fl);
            assert_ok(cf_signer_verify(v, digest, dl, sig, len));
        }
        size_t len = sizeof sig;
        assert_ok(cf_signer_sign(s, digest, 32, sig, &len));
        sig[3] ^= 1;
        assert_err(cf_signer_verify(v, digest, 32, sig, len), CF_E_SIGNATURE_INVALID);
        sig[3] ^= 1;
        assert_err(cf_signer_verify(v, digest, 31, sig, len), CF_E_SIGNATURE_INVALID);
        assert_err(cf_signer_verify(v, digest, 32, sig, len - 1), CF_E_SIGNATURE_LEN_RANGE);
        uint8_t zero[132] = { 0 };
        assert_err(cf_signer_verify(v, digest, 32, zero, len), CF_E_SIGNATURE_INVALID);
        memset(zero, 0xff, sizeof zero);
        assert_err(cf_signer_verify(v, digest, 32, zero, len), CF_E_SIGNATURE_INVALID);
        assert_ok(cf_signer_verify(v, digest, 32, sig, len));
        len = 2 * fl - 1;
        assert_err(cf_signer_sign(s, digest, 32, sig, &len), CF_E_BUFFER_TOO_SMALL);
        assert_int_equal(len, 2 * fl);
        cf_signer_free(s);
        cf_signer_free(v);

        /* Bad scalars: zero, not below the order, longer than the field. */
        uint8_t bad[67] = { 0 };
        cf_pkey *kb = NULL;
        assert_err(cf_pkey_ec_import(c, NULL, 0, bad, fl, &kb), CF_E_ATTRIBUTE_VALUE_INVALID);
        memset(bad, 0xff, sizeof bad);
        assert_err(cf_pkey_ec_import(c, NULL, 0, bad, fl, &kb), CF_E_ATTRIBUTE_VALUE_INVALID);
        assert_err(cf_pkey_ec_import(c, NULL, 0, bad, fl + 1, &kb), CF_E_ATTRIBUTE_VALUE_INVALID);
        assert_err(cf_pkey_ec_import(c, point.p, point.len - 1, NULL, 0, &kb), CF_E_ATTRIBUTE_VALUE_INVALID);
        assert_null(kb);

        cf_buf_free(&point);
        cf_buf_free(&priv);
        cf_pkey_free(k);
        cf_pkey_free(kpriv);
        cf_pkey_free(kpub);
    }
    cf_pkey *k = NULL;
    assert_err(cf_pkey_generate_ec(CF_CURVE_NONE, &k), CF_E_CURVE_NOT_SUPPORTED);
    assert_err(cf_pkey_ec_import(CF_CURVE_NONE, NULL, 0, (const uint8_t *)"x", 1, &k), CF_E_CURVE_NOT_SUPPORTED);
    assert_err(cf_pkey_ec_import(CF_CURVE_P256, NULL, 0, NULL, 0, &k), CF_E_TEMPLATE_INCOMPLETE);
    assert_null(k);
}

static void test_ed25519_kat(void **state)
{
    (void)state;
    /* RFC 8032 section 7.1, TEST 1 (empty message). */
    hexbuf sk = hx("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    hexbuf pk = hx("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    hexbuf sigv = hx("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    cf_pkey *k = NULL, *kpub = NULL;
    assert_ok(cf_pkey_ec_import(CF_CURVE_ED25519, NULL, 0, sk.b, sk.n, &k));
    assert_int_equal(cf_pkey_get_type(k), CF_PKEY_ED25519);
    assert_true(cf_pkey_is_private(k));
    cf_buf point = { 0 }, priv = { 0 };
    cf_curve c = CF_CURVE_NONE;
    assert_ok(cf_pkey_ec_export(k, true, &c, &point, &priv));
    assert_int_equal(c, CF_CURVE_ED25519);
    assert_bytes(point.p, point.len, pk);
    assert_bytes(priv.p, priv.len, sk);
    cf_buf_free(&point);
    cf_buf_free(&priv);
    assert_ok(cf_pkey_ec_import(CF_CURVE_ED25519, pk.b, pk.n, NULL, 0, &kpub));
    assert_false(cf_pkey_is_private(kpub));

    cf_sig_params p = { .scheme = CF_SIG_EDDSA };
    cf_signer *s = NULL, *v = NULL;
    uint8_t sig[64];
    assert_ok(cf_signer_new(k, &p, true, &s));
    assert_int_equal(cf_signer_sig_len(s), 64);
    for (int i = 0; i < 3; i++) {   /* one context, several signatures */
        size_t len = sizeof sig;
        assert_ok(cf_signer_sign(s, NULL, 0, sig, &len));
        assert_bytes(sig, len, sigv);
        len = sizeof sig;
        assert_ok(cf_signer_sign(s, (const uint8_t *)"other", 5, sig, &len));
    }
    cf_signer_free(s);
    assert_ok(cf_signer_new(kpub, &p, false, &v));
    for (int i = 0; i < 3; i++)
        assert_ok(cf_signer_verify(v, NULL, 0, sigv.b, sigv.n));
    sigv.b[10] ^= 1;
    assert_err(cf_signer_verify(v, NULL, 0, sigv.b, sigv.n), CF_E_SIGNATURE_INVALID);
    sigv.b[10] ^= 1;
    assert_err(cf_signer_verify(v, (const uint8_t *)"x", 1, sigv.b, sigv.n), CF_E_SIGNATURE_INVALID);
    assert_err(cf_signer_verify(v, NULL, 0, sigv.b, 63), CF_E_SIGNATURE_LEN_RANGE);
    assert_ok(cf_signer_verify(v, NULL, 0, sigv.b, sigv.n));
    cf_signer_free(v);

    /* A matching point with the key is fine, a different one is not. */
    cf_pkey *k2 = NULL;
    assert_ok(cf_pkey_ec_import(CF_CURVE_ED25519, pk.b, pk.n, sk.b, sk.n, &k2));
    cf_pkey_free(k2);
    pk.b[0] ^= 1;
    assert_err(cf_pkey_ec_import(CF_CURVE_ED25519, pk.b, pk.n, sk.b, sk.n, &k2), CF_E_TEMPLATE_INCONSISTENT);
    assert_err(cf_pkey_ec_import(CF_CURVE_ED25519, NULL, 0, sk.b, 31, &k2), CF_E_ATTRIBUTE_VALUE_INVALID);
    assert_null(k2);
    /* EdDSA needs an Ed25519 key and ECDSA a NIST one. */
    cf_sig_params ecdsa = { .scheme = CF_SIG_ECDSA };
    assert_err(cf_signer_new(k, &ecdsa, true, &s), CF_E_KEY_TYPE_INCONSISTENT);
    assert_err(cf_signer_new(kpub, &p, true, &s), CF_E_KEY_TYPE_INCONSISTENT);

    /* Generation. */
    cf_pkey *g = NULL;
    assert_ok(cf_pkey_generate_ec(CF_CURVE_ED25519, &g));
    assert_int_equal(cf_pkey_get_type(g), CF_PKEY_ED25519);
    size_t len = sizeof sig;
    assert_ok(sign_once(g, p, (const uint8_t *)"msg", 3, sig, &len));
    assert_ok(verify_once(g, p, (const uint8_t *)"msg", 3, sig, len));
    assert_err(cf_pkey_rsa_export(g, false, &(cf_rsa_parts){ 0 }), CF_E_KEY_TYPE_INCONSISTENT);
    cf_pkey_free(g);
    cf_pkey_free(k);
    cf_pkey_free(kpub);
}

static void test_ecdh(void **state)
{
    (void)state;
    cf_pkey *a = NULL, *b = NULL, *ed = NULL;
    assert_ok(cf_pkey_generate_ec(CF_CURVE_P256, &a));
    assert_ok(cf_pkey_generate_ec(CF_CURVE_P256, &b));
    cf_buf pa = { 0 }, pb = { 0 }, sa = { 0 }, sb = { 0 }, sder = { 0 }, der = { 0 };
    assert_ok(cf_pkey_ec_export(a, false, NULL, &pa, NULL));
    assert_ok(cf_pkey_ec_export(b, false, NULL, &pb, NULL));
    assert_ok(cf_ecdh(a, pb.p, pb.len, &sa));
    assert_ok(cf_ecdh(b, pa.p, pa.len, &sb));
    assert_int_equal(sa.len, 32);
    assert_int_equal(sb.len, 32);
    assert_memory_equal(sa.p, sb.p, 32);
    /* The peer point may come DER-wrapped. */
    assert_ok(cf_ec_point_to_der(pb.p, pb.len, &der));
    assert_ok(cf_ecdh(a, der.p, der.len, &sder));
    assert_memory_equal(sa.p, sder.p, 32);
    /* A point off the curve, or of another curve's size. */
    cf_buf bad = { 0 };
    pb.p[40] ^= 1;
    assert_err(cf_ecdh(a, pb.p, pb.len, &bad), CF_E_MECHANISM_PARAM_INVALID);
    assert_err(cf_ecdh(a, pb.p, pb.len - 1, &bad), CF_E_MECHANISM_PARAM_INVALID);
    assert_null(bad.p);
    assert_ok(cf_pkey_generate_ec(CF_CURVE_ED25519, &ed));
    assert_err(cf_ecdh(ed, pa.p, pa.len, &bad), CF_E_KEY_TYPE_INCONSISTENT);
    cf_buf_free(&pa);
    cf_buf_free(&pb);
    cf_buf_free(&sa);
    cf_buf_free(&sb);
    cf_buf_free(&sder);
    cf_buf_free(&der);
    cf_pkey_free(a);
    cf_pkey_free(b);
    cf_pkey_free(ed);
}

/* ---- PEM, SPKI, X.509 -------------------------------------------------------------------- */
/* tests/unit/data/crypto_* were made once with the openssl 3.0 CLI:
 *   genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out crypto_rsa2048.pem
 *   pkey -traditional (crypto_rsa2048_trad.pem, crypto_p256_trad.pem), pkey -pubout (_pub.pem)
 *   genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 (crypto_p256.pem; -outform DER: .der)
 *   genpkey -algorithm ED25519 / X25519; EC secp256k1 (unsupported: must be refused)
 *   pkey -aes256 -passout pass:coffer (crypto_p256_enc.pem)
 *   req -x509 -new -key crypto_p256.pem -subj "/CN=coffer test/O=coffer" -set_serial 0x1234abcd
 */
static cf_pkey *load(const char *name, cf_err *err)
{
    size_t len;
    uint8_t *data = slurp(name, &len);
    cf_pkey *k = NULL;
    *err = cf_pkey_from_pem(data, len, &k);
    free(data);
    return k;
}

static void test_pem(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        cf_pkey_type type;
        unsigned bits;
        bool priv;
    } v[] = {
        { "crypto_rsa2048.pem", CF_PKEY_RSA, 2048, true },        /* PKCS#8 */
        { "crypto_rsa2048_trad.pem", CF_PKEY_RSA, 2048, true },   /* PKCS#1 */
        { "crypto_rsa2048_pub.pem", CF_PKEY_RSA, 2048, false },   /* SPKI */
        { "crypto_p256.pem", CF_PKEY_EC, 256, true },
        { "crypto_p256_trad.pem", CF_PKEY_EC, 256, true },        /* SEC 1 */
        { "crypto_p256.der", CF_PKEY_EC, 256, true },             /* PKCS#8 DER */
        { "crypto_ed25519.pem", CF_PKEY_ED25519, 255, true },
    };
    cf_err err;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        cf_pkey *k = load(v[i].file, &err);
        assert_ok(err);
        assert_int_equal(cf_pkey_get_type(k), v[i].type);
        assert_int_equal(cf_pkey_bits(k), v[i].bits);
        assert_int_equal(cf_pkey_is_private(k), v[i].priv);
        /* The SPKI parses back (as DER) to the same public key. */
        cf_buf spki = { 0 }, spki2 = { 0 };
        assert_ok(cf_pkey_spki(k, &spki));
        assert_int_equal(spki.p[0], 0x30);
        cf_pkey *pub = NULL;
        assert_ok(cf_pkey_from_pem(spki.p, spki.len, &pub));
        assert_false(cf_pkey_is_private(pub));
        assert_ok(cf_pkey_spki(pub, &spki2));
        assert_int_equal(spki.len, spki2.len);
        assert_memory_equal(spki.p, spki2.p, spki.len);
        if (v[i].priv) {   /* and verifies what the private key signs */
            cf_sig_params p = { .scheme = v[i].type == CF_PKEY_RSA ? CF_SIG_RSA_PKCS1
                                          : v[i].type == CF_PKEY_EC ? CF_SIG_ECDSA : CF_SIG_EDDSA,
                                .hash = CF_HASH_SHA256 };
            uint8_t d[32] = { 7 }, sig[256];
            size_t len = sizeof sig;
            assert_ok(sign_once(k, p, d, 32, sig, &len));
            assert_ok(verify_once(pub, p, d, 32, sig, len));
        }
        cf_buf_free(&spki);
        cf_buf_free(&spki2);
        cf_pkey_free(pub);
        cf_pkey_free(k);
    }
    /* The PKCS#8 and traditional files hold the same key. */
    cf_pkey *a = load("crypto_p256.pem", &err), *b = load("crypto_p256_trad.pem", &err);
    cf_buf pa = { 0 }, pb = { 0 };
    assert_ok(cf_pkey_ec_export(a, true, NULL, NULL, &pa));
    assert_ok(cf_pkey_ec_export(b, true, NULL, NULL, &pb));
    assert_int_equal(pa.len, 32);
    assert_memory_equal(pa.p, pb.p, 32);
    cf_buf_free(&pa);
    cf_buf_free(&pb);
    cf_pkey_free(a);
    cf_pkey_free(b);

    /* Unsupported algorithms and curves; encrypted keys (no prompt); garbage. */
    assert_null(load("crypto_x25519.pem", &err));
    assert_int_equal(err, CF_E_KEY_TYPE_INCONSISTENT);
    assert_null(load("crypto_secp256k1.pem", &err));
    assert_int_equal(err, CF_E_KEY_TYPE_INCONSISTENT);
    assert_null(load("crypto_p256_enc.pem", &err));
    assert_int_equal(err, CF_E_FORMAT);
    cf_pkey *k = NULL;
    static const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_err(cf_pkey_from_pem((const uint8_t *)junk, sizeof junk - 1, &k), CF_E_FORMAT);
    assert_err(cf_pkey_from_pem((const uint8_t *)"\x30\x03\x02\x01\x00", 5, &k), CF_E_FORMAT);
    assert_null(k);
}

static void test_x509(void **state)
{
    (void)state;
    size_t plen, dlen;
    uint8_t *pem = slurp("crypto_cert.pem", &plen), *der = slurp("crypto_cert.der", &dlen);
    cf_x509_info a = { 0 }, b = { 0 };
    assert_ok(cf_x509_parse(pem, plen, &a));
    assert_ok(cf_x509_parse(der, dlen, &b));
    assert_int_equal(a.der.len, dlen);
    assert_memory_equal(a.der.p, der, dlen);
    assert_int_equal(b.der.len, dlen);
    /* Self-signed: subject and issuer are the same Name, a SEQUENCE. */
    assert_true(a.subject.len > 2);
    assert_int_equal(a.subject.p[0], 0x30);
    assert_int_equal(a.subject.len, a.issuer.len);
    assert_memory_equal(a.subject.p, a.issuer.p, a.subject.len);
    assert_int_equal(b.subject.len, a.subject.len);
    /* openssl req -set_serial 0x1234abcd. */
    assert_bytes(a.serial.p, a.serial.len, hx("02041234abcd"));
    assert_true(memmem(a.subject.p, a.subject.len, "coffer test", 11) != NULL);
    cf_x509_info_free(&a);
    cf_x509_info_free(&b);
    assert_null(a.der.p);

    /* Trailing bytes, truncation, garbage. */
    der[dlen] = 0;
    assert_err(cf_x509_parse(der, dlen + 1, &a), CF_E_FORMAT);
    assert_err(cf_x509_parse(der, dlen - 1, &a), CF_E_FORMAT);
    assert_err(cf_x509_parse((const uint8_t *)"hello", 5, &a), CF_E_FORMAT);
    assert_null(a.der.p);
    free(pem);
    free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_kat),
        cmocka_unit_test(test_hmac_kat),
        cmocka_unit_test(test_pbkdf2_kat),
        cmocka_unit_test(test_keywrap_kat),
        cmocka_unit_test(test_cipher_sp800_38a),
        cmocka_unit_test(test_cipher_cbc_pad),
        cmocka_unit_test(test_cipher_gcm),
        cmocka_unit_test(test_curve_params),
        cmocka_unit_test(test_point_der),
        cmocka_unit_test(test_ec_keys_and_ecdsa),
        cmocka_unit_test(test_ed25519_kat),
        cmocka_unit_test(test_ecdh),
        cmocka_unit_test(test_pem),
        cmocka_unit_test(test_x509),
    };
    const struct CMUnitTest rsa_tests[] = {
        cmocka_unit_test(test_rsa_keys),
        cmocka_unit_test(test_rsa_sign),
        cmocka_unit_test(test_rsa_encrypt),
    };
    int failed = cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("crypto_rsa", rsa_tests, rsa_setup, rsa_teardown);
    return failed;
}
