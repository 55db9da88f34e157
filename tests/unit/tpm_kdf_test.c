/* tpm_kdf_test.c: the TPM's derivation and naming functions (src/tpm/kdf.c, object.c) against
 * independent computations.
 *
 * No published KDFa/KDFe vectors were at hand (Part 1 gives none; tpm2-tss tests KDFa only through
 * its ESAPI sessions), so each expected value is recomputed here by a separate implementation of
 * the formula straight on OpenSSL's one-shot HMAC() / EVP_Digest() — a loop written from the text
 * of Part 1 sections 11.4.10.2 / 11.4.10.3, sharing no code with src/tpm. The AES-CFB/OFB additions
 * to src/crypto are checked against SP 800-38A F.3.13 / F.4.1. The name test marshals a TPMT_PUBLIC
 * by hand, byte by byte, and hashes it with OpenSSL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "tpm/internal.h"

static void be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

/* KDFa straight from the text: K(i) = HMAC(key, [i] || label || 00 || u || v || [bits]). */
static void ref_kdfa(const EVP_MD *md, const uint8_t *key, size_t keylen, const char *label, const uint8_t *u,
                     size_t ulen, const uint8_t *v, size_t vlen, uint32_t bits, uint8_t *out)
{
    uint8_t msg[1024], blk[64];
    size_t n = (bits + 7) / 8, done = 0;
    for (uint32_t i = 1; done < n; i++) {
        size_t m = 0;
        be32(msg, i);
        m = 4;
        memcpy(msg + m, label, strlen(label) + 1);   /* with its NUL */
        m += strlen(label) + 1;
        if (ulen)
            memcpy(msg + m, u, ulen), m += ulen;
        if (vlen)
            memcpy(msg + m, v, vlen), m += vlen;
        be32(msg + m, bits), m += 4;
        unsigned bl = 0;
        assert_non_null(HMAC(md, key, (int)keylen, msg, m, blk, &bl));
        size_t take = n - done < bl ? n - done : bl;
        memcpy(out + done, blk, take);
        done += take;
    }
    if (bits % 8)
        out[0] &= (uint8_t)((1u << (bits % 8)) - 1);
}

static void ref_kdfe(const EVP_MD *md, const uint8_t *z, size_t zlen, const char *label, const uint8_t *u,
                     size_t ulen, const uint8_t *v, size_t vlen, uint32_t bits, uint8_t *out)
{
    uint8_t msg[1024], blk[64];
    size_t n = (bits + 7) / 8, done = 0;
    for (uint32_t i = 1; done < n; i++) {
        size_t m = 0;
        be32(msg, i), m = 4;
        memcpy(msg + m, z, zlen), m += zlen;
        memcpy(msg + m, label, strlen(label) + 1), m += strlen(label) + 1;
        memcpy(msg + m, u, ulen), m += ulen;
        memcpy(msg + m, v, vlen), m += vlen;
        unsigned bl = 0;
        assert_int_equal(EVP_Digest(msg, m, blk, &bl, md, NULL), 1);
        size_t take = n - done < bl ? n - done : bl;
        memcpy(out + done, blk, take);
        done += take;
    }
    if (bits % 8)
        out[0] &= (uint8_t)((1u << (bits % 8)) - 1);
}

static void test_kdfa(void **state)
{
    (void)state;
    uint8_t key[32], u[20], v[16];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    memset(u, 0xA5, sizeof u);
    memset(v, 0x3C, sizeof v);
    static const struct { TPM2_ALG_ID alg; uint32_t bits; } cases[] = {
        { TPM2_ALG_SHA256, 256 }, { TPM2_ALG_SHA256, 128 }, { TPM2_ALG_SHA256, 1000 }, { TPM2_ALG_SHA1, 160 },
        { TPM2_ALG_SHA1, 333 }, { TPM2_ALG_SHA384, 384 }, { TPM2_ALG_SHA384, 1032 }, { TPM2_ALG_SHA256, 7 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const EVP_MD *md = cases[k].alg == TPM2_ALG_SHA1 ? EVP_sha1() : cases[k].alg == TPM2_ALG_SHA256 ? EVP_sha256() : EVP_sha384();
        uint8_t got[256], want[256];
        size_t n = (cases[k].bits + 7) / 8;
        assert_int_equal(tpm_kdfa(cases[k].alg, key, sizeof key, "STORAGE", u, sizeof u, v, sizeof v, cases[k].bits, got),
                         TPM2_RC_SUCCESS);
        ref_kdfa(md, key, sizeof key, "STORAGE", u, sizeof u, v, sizeof v, cases[k].bits, want);
        assert_memory_equal(got, want, n);
    }
    /* empty contexts */
    uint8_t got[32], want[32];
    assert_int_equal(tpm_kdfa(TPM2_ALG_SHA256, key, sizeof key, "ATH", NULL, 0, NULL, 0, 256, got), TPM2_RC_SUCCESS);
    ref_kdfa(EVP_sha256(), key, sizeof key, "ATH", NULL, 0, NULL, 0, 256, want);
    assert_memory_equal(got, want, 32);
    /* a hash the TPM does not know */
    assert_int_equal(tpm_kdfa(TPM2_ALG_NULL, key, sizeof key, "X", NULL, 0, NULL, 0, 256, got), TPM2_RC_HASH);
}

static void test_kdfe(void **state)
{
    (void)state;
    uint8_t z[32], u[32], v[32];
    for (size_t i = 0; i < 32; i++)
        z[i] = (uint8_t)i, u[i] = (uint8_t)(0x80 + i), v[i] = (uint8_t)(0xF0 - i);
    static const uint32_t bits[] = { 128, 256, 512, 392, 5 };
    for (size_t k = 0; k < sizeof bits / sizeof bits[0]; k++) {
        uint8_t got[64], want[64];
        assert_int_equal(tpm_kdfe(TPM2_ALG_SHA256, z, sizeof z, "SECRET", u, sizeof u, v, sizeof v, bits[k], got),
                         TPM2_RC_SUCCESS);
        ref_kdfe(EVP_sha256(), z, sizeof z, "SECRET", u, sizeof u, v, sizeof v, bits[k], want);
        assert_memory_equal(got, want, (bits[k] + 7) / 8);
    }
}

/* A stream continues the counter: two draws of one block each equal one KDFa(bits=0) run. */
static void test_kdf_stream(void **state)
{
    (void)state;
    uint8_t key[16] = { 1, 2, 3 }, a[64], b[64];
    tpm_kdf_stream s1 = { .hash = TPM2_ALG_SHA256, .key = key, .keylen = sizeof key, .label = "L" };
    tpm_kdf_stream s2 = s1;
    assert_int_equal(tpm_kdf_draw(&s1, a, 32), TPM2_RC_SUCCESS);
    assert_int_equal(tpm_kdf_draw(&s1, a + 32, 32), TPM2_RC_SUCCESS);
    assert_int_equal(tpm_kdf_draw(&s2, b, 64), TPM2_RC_SUCCESS);
    assert_memory_equal(a, b, 64);
    /* block 1 by hand: [1] || "L" || 00 || [bits = 0] */
    uint8_t want[32];
    uint8_t msg[4 + 2 + 4] = { 0, 0, 0, 1, 'L', 0, 0, 0, 0, 0 };
    unsigned bl = 0;
    HMAC(EVP_sha256(), key, sizeof key, msg, sizeof msg, want, &bl);
    assert_memory_equal(a, want, 32);
}

/* A TPMT_PUBLIC (ECC P-256 signing key) marshaled by hand (Part 2 section 12.2.4). */
static void test_name(void **state)
{
    (void)state;
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = 0x00040072;   /* fixedTPM fixedParent sensitiveDataOrigin userWithAuth sign */
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    p.unique.ecc.x.size = 2;
    p.unique.ecc.x.buffer[0] = 0xAB, p.unique.ecc.x.buffer[1] = 0xCD;
    p.unique.ecc.y.size = 1;
    p.unique.ecc.y.buffer[0] = 0xEF;
    static const uint8_t wire[] = {
        0x00, 0x23,                         /* type ECC */
        0x00, 0x0B,                         /* nameAlg SHA256 */
        0x00, 0x04, 0x00, 0x72,             /* attributes */
        0x00, 0x00,                         /* authPolicy: empty */
        0x00, 0x10,                         /* symmetric: NULL */
        0x00, 0x18, 0x00, 0x0B,             /* scheme ECDSA, SHA256 */
        0x00, 0x03,                         /* curve P-256 */
        0x00, 0x10,                         /* kdf NULL */
        0x00, 0x02, 0xAB, 0xCD,             /* x */
        0x00, 0x01, 0xEF,                   /* y */
    };
    uint8_t want[2 + 32] = { 0x00, 0x0B };
    unsigned l = 0;
    assert_int_equal(EVP_Digest(wire, sizeof wire, want + 2, &l, EVP_sha256(), NULL), 1);
    TPM2B_NAME name;
    assert_int_equal(tpm_object_name(&p, &name), TPM2_RC_SUCCESS);
    assert_int_equal(name.size, 34);
    assert_memory_equal(name.name, want, 34);
    p.nameAlg = TPM2_ALG_NULL;
    assert_int_equal(tpm_object_name(&p, &name), TPM2_RC_HASH);
}

/* SP 800-38A F.3.13 (CFB128-AES128.Encrypt) and F.4.1 (OFB-AES128.Encrypt), first two blocks, fed
 * in odd-sized pieces: the stream modes added to src/crypto for the TPM. */
static void test_cfb_ofb(void **state)
{
    (void)state;
    static const uint8_t key[16] = { 0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c };
    static const uint8_t iv[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    static const uint8_t pt[32] = { 0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a,
                                    0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03, 0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac, 0x45, 0xaf, 0x8e, 0x51 };
    static const uint8_t cfb[32] = { 0x3b, 0x3f, 0xd9, 0x2e, 0xb7, 0x2d, 0xad, 0x20, 0x33, 0x34, 0x49, 0xf8, 0xe8, 0x3c, 0xfb, 0x4a,
                                     0xc8, 0xa6, 0x45, 0x37, 0xa0, 0xb3, 0xa9, 0x3f, 0xcd, 0xe3, 0xcd, 0xad, 0x9f, 0x1c, 0xe5, 0x8b };
    static const uint8_t ofb[32] = { 0x3b, 0x3f, 0xd9, 0x2e, 0xb7, 0x2d, 0xad, 0x20, 0x33, 0x34, 0x49, 0xf8, 0xe8, 0x3c, 0xfb, 0x4a,
                                     0x77, 0x89, 0x50, 0x8d, 0x16, 0x91, 0x8f, 0x03, 0xf5, 0x3c, 0x52, 0xda, 0xc5, 0x4e, 0xd8, 0x25 };
    const uint8_t *want[2] = { cfb, ofb };
    cf_aes_mode modes[2] = { CF_AES_CFB, CF_AES_OFB };
    for (int m = 0; m < 2; m++) {
        for (int enc = 1; enc >= 0; enc--) {
            cf_cipher *c = NULL;
            assert_int_equal(cf_cipher_new(modes[m], enc, key, 16, iv, 16, NULL, 0, 0, &c), CF_OK);
            uint8_t out[64];
            size_t total = 0, n;
            const uint8_t *in = enc ? pt : want[m];
            n = sizeof out;
            assert_int_equal(cf_cipher_update(c, in, 5, out, &n), CF_OK);
            total += n;
            n = sizeof out - total;
            assert_int_equal(cf_cipher_update(c, in + 5, 27, out + total, &n), CF_OK);
            total += n;
            n = sizeof out - total;
            assert_int_equal(cf_cipher_final(c, out + total, &n), CF_OK);
            total += n;
            assert_int_equal(total, 32);
            assert_memory_equal(out, enc ? want[m] : pt, 32);
            cf_cipher_free(c);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kdfa),
        cmocka_unit_test(test_kdfe),
        cmocka_unit_test(test_kdf_stream),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_cfb_ofb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
