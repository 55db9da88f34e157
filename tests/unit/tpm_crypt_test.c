/* tpm_crypt_test.c: the TPM's crypto, sequence, attestation and hierarchy commands through
 * tpm_execute, with answers checked against OpenSSL computed here:
 *   RSA_Encrypt / RSA_Decrypt (OAEP with a label, RSAES; an OpenSSL ciphertext made with the public
 *   key read back decrypts; scheme conflicts), ECDH_KeyGen / ECDH_ZGen (Z agrees with OpenSSL's
 *   ECDH), EncryptDecrypt and EncryptDecrypt2 (an AES symcipher primary whose key the test chose:
 *   SP 800-38A F.3.13 for CFB, OpenSSL for CBC/CTR/OFB/ECB, IV chaining across calls), HMAC against
 *   OpenSSL's HMAC() and an HMAC sequence in pieces, hash sequences against TPM2_Hash (digest and
 *   ticket), EventSequenceComplete's PCR extension, Quote (TPMS_ATTEST fields, pcrDigest from
 *   PCR_Read values, the signature verified by OpenSSL), HierarchyChangeAuth (persisted),
 *   Clear / ClearControl, the dictionary-attack commands, and truncated commands at every length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include "tpm/internal.h"
#include "tpm_harness.h"

/* ---- harness (the rest: support/tpm_harness.h) ---------------------------------------------- */
/* Offset of the response parameters: header, the handle when there is one, parameterSize when
 * the command had sessions. */
static size_t params_at(bool handle, bool sessions) { return 10 + (handle ? 4 : 0) + (sessions ? 4 : 0); }

static void sha(cf_hash_alg h, const void *p, size_t n, uint8_t *out)
{
    size_t l = CF_HASH_MAX;
    assert_int_equal(cf_hash(h, p, n, out, &l), CF_OK);
}

/* ---- objects ------------------------------------------------------------------------------- */
#define ATTR_BASE (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH)

static TPMT_PUBLIC rsa_decrypt_template(TPMI_ALG_RSA_SCHEME scheme)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_RSA;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = ATTR_BASE | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_DECRYPT;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.rsaDetail.scheme.scheme = scheme;
    p.parameters.rsaDetail.scheme.details.oaep.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.keyBits = 2048;
    return p;
}

static TPMT_PUBLIC ecc_template(TPMA_OBJECT attrs, TPMI_ALG_ECC_SCHEME scheme)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = ATTR_BASE | TPMA_OBJECT_SENSITIVEDATAORIGIN | attrs;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = scheme;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    return p;
}

static TPMT_PUBLIC aes_template(TPMI_ALG_SYM_MODE mode)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_SYMCIPHER;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = ATTR_BASE | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN_ENCRYPT;   /* the key is ours */
    p.parameters.symDetail.sym.algorithm = TPM2_ALG_AES;
    p.parameters.symDetail.sym.keyBits.aes = 128;
    p.parameters.symDetail.sym.mode.aes = mode;
    return p;
}

static TPMT_PUBLIC hmac_template(TPMI_ALG_HASH hash)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_KEYEDHASH;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = ATTR_BASE | TPMA_OBJECT_SIGN_ENCRYPT;   /* the key is ours */
    p.parameters.keyedHashDetail.scheme.scheme = hash == TPM2_ALG_NULL ? TPM2_ALG_NULL : TPM2_ALG_HMAC;
    p.parameters.keyedHashDetail.scheme.details.hmac.hashAlg = hash;
    return p;
}

/* ---- OpenSSL keys from public areas ---------------------------------------------------------- */
static EVP_PKEY *fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;
    assert_non_null(params);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pk;
}

static EVP_PKEY *rsa_public(const TPMT_PUBLIC *p)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = BN_bin2bn(p->unique.rsa.buffer, p->unique.rsa.size, NULL);
    BIGNUM *e = BN_new();
    assert_int_equal(BN_set_word(e, 65537), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
    EVP_PKEY *pk = fromdata("RSA", bld);
    BN_free(n);
    BN_free(e);
    return pk;
}

static EVP_PKEY *ec_public(const TPMS_ECC_POINT *q)
{
    uint8_t pt[65];
    pt[0] = 4;
    assert_int_equal(q->x.size, 32);
    assert_int_equal(q->y.size, 32);
    memcpy(pt + 1, q->x.buffer, 32);
    memcpy(pt + 33, q->y.buffer, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt), 1);
    return fromdata("EC", bld);
}

/* ---- RSA ------------------------------------------------------------------------------------ */
static uint32_t rsa_encrypt(tpm_instance *t, TPM2_HANDLE key, const uint8_t *m, size_t mlen, TPMI_ALG_RSA_DECRYPT scheme,
                            const uint8_t *label, size_t llen, TPM2B_PUBLIC_KEY_RSA *ct)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_RSA_Encrypt);
    cf_put_u32(&c.w, key);
    tpm_put_2b(&c.w, m, mlen);
    cf_put_u16(&c.w, scheme);
    if (scheme == TPM2_ALG_OAEP)
        cf_put_u16(&c.w, TPM2_ALG_SHA256);
    tpm_put_2b(&c.w, label, llen);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = params_at(false, false);
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_KEY_RSA_Unmarshal(r.b, r.len, &off, ct), TSS2_RC_SUCCESS);
        assert_int_equal(off, r.len);
    }
    return rc;
}

static uint32_t rsa_decrypt(tpm_instance *t, TPM2_HANDLE key, const char *pw, const uint8_t *ct, size_t clen,
                            TPMI_ALG_RSA_DECRYPT scheme, const uint8_t *label, size_t llen, TPM2B_PUBLIC_KEY_RSA *m)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_RSA_Decrypt);
    cf_put_u32(&c.w, key);
    pw_session(&c, pw);
    tpm_put_2b(&c.w, ct, clen);
    cf_put_u16(&c.w, scheme);
    if (scheme == TPM2_ALG_OAEP)
        cf_put_u16(&c.w, TPM2_ALG_SHA256);
    tpm_put_2b(&c.w, label, llen);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = params_at(false, true);
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_KEY_RSA_Unmarshal(r.b, r.len, &off, m), TSS2_RC_SUCCESS);
    }
    return rc;
}

static void test_rsa(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpl = rsa_decrypt_template(TPM2_ALG_NULL);
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "kpw", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    static const uint8_t msg[] = "attack at dawn";
    static const uint8_t label[] = "my label";   /* with its NUL, as TPM labels are */
    TPM2B_PUBLIC_KEY_RSA ct, pt;

    /* OAEP round trip */
    assert_int_equal(rsa_encrypt(t, h, msg, sizeof msg, TPM2_ALG_OAEP, label, sizeof label, &ct), TPM2_RC_SUCCESS);
    assert_int_equal(ct.size, 256);
    assert_int_equal(rsa_decrypt(t, h, "kpw", ct.buffer, ct.size, TPM2_ALG_OAEP, label, sizeof label, &pt), TPM2_RC_SUCCESS);
    assert_int_equal(pt.size, sizeof msg);
    assert_memory_equal(pt.buffer, msg, sizeof msg);
    /* another label: no */
    assert_int_equal(rsa_decrypt(t, h, "kpw", ct.buffer, ct.size, TPM2_ALG_OAEP, NULL, 0, &pt),
                     TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_1);
    /* RSAES round trip */
    assert_int_equal(rsa_encrypt(t, h, msg, sizeof msg, TPM2_ALG_RSAES, NULL, 0, &ct), TPM2_RC_SUCCESS);
    assert_int_equal(rsa_decrypt(t, h, "kpw", ct.buffer, ct.size, TPM2_ALG_RSAES, NULL, 0, &pt), TPM2_RC_SUCCESS);
    assert_memory_equal(pt.buffer, msg, sizeof msg);

    /* a ciphertext made by OpenSSL from the public key read back */
    EVP_PKEY *pk = rsa_public(&pub.publicArea);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
    uint8_t *l = OPENSSL_memdup(label, sizeof label);
    assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, sizeof label), 1);
    uint8_t osct[256];
    size_t oslen = sizeof osct;
    assert_int_equal(EVP_PKEY_encrypt(ctx, osct, &oslen, msg, sizeof msg), 1);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    assert_int_equal(rsa_decrypt(t, h, "kpw", osct, oslen, TPM2_ALG_OAEP, label, sizeof label, &pt), TPM2_RC_SUCCESS);
    assert_int_equal(pt.size, sizeof msg);
    assert_memory_equal(pt.buffer, msg, sizeof msg);

    /* errors: a label without its NUL, a ciphertext of the wrong size, a message too long, a wrong
     * password (the key is DA-protected), no scheme at all is raw RSA */
    assert_int_equal(rsa_encrypt(t, h, msg, sizeof msg, TPM2_ALG_OAEP, label, sizeof label - 1, &ct),
                     TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_3);
    assert_int_equal(rsa_decrypt(t, h, "kpw", osct, 255, TPM2_ALG_OAEP, label, sizeof label, &pt),
                     TPM2_RC_SIZE | TPM2_RC_P | TPM2_RC_1);
    uint8_t big[256] = { 1 };
    assert_int_equal(rsa_encrypt(t, h, big, 200, TPM2_ALG_OAEP, NULL, 0, &ct), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_1);
    assert_int_equal(rsa_decrypt(t, h, "nope", osct, oslen, TPM2_ALG_OAEP, label, sizeof label, &pt),
                     TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(rsa_encrypt(t, h, big, 10, TPM2_ALG_NULL, NULL, 0, &ct), TPM2_RC_SUCCESS);
    assert_int_equal(rsa_decrypt(t, h, "kpw", ct.buffer, ct.size, TPM2_ALG_NULL, NULL, 0, &pt), TPM2_RC_SUCCESS);
    assert_int_equal(pt.size, 256);
    assert_memory_equal(pt.buffer + 246, big, 10);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);

    /* a key with its own scheme: another one is TPM_RC_SCHEME, none takes the key's */
    tpl = rsa_decrypt_template(TPM2_ALG_OAEP);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(rsa_encrypt(t, h, msg, sizeof msg, TPM2_ALG_RSAES, NULL, 0, &ct), TPM2_RC_SCHEME | TPM2_RC_P | TPM2_RC_2);
    assert_int_equal(rsa_encrypt(t, h, msg, sizeof msg, TPM2_ALG_NULL, NULL, 0, &ct), TPM2_RC_SUCCESS);
    assert_int_equal(rsa_decrypt(t, h, "", ct.buffer, ct.size, TPM2_ALG_OAEP, NULL, 0, &pt), TPM2_RC_SUCCESS);
    assert_memory_equal(pt.buffer, msg, sizeof msg);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);

    /* a signing key is no decryption key */
    tpl = ecc_template(TPMA_OBJECT_SIGN_ENCRYPT, TPM2_ALG_ECDSA);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(rsa_encrypt(t, h, msg, sizeof msg, TPM2_ALG_OAEP, NULL, 0, &ct), TPM2_RC_KEY | TPM2_RC_H | TPM2_RC_1);
    tpm_instance_free(t);
    free(e);
}

/* ---- ECDH ----------------------------------------------------------------------------------- */
static void test_ecdh(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpl = ecc_template(TPMA_OBJECT_DECRYPT, TPM2_ALG_NULL);
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "z", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);

    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ECDH_KeyGen);
    cf_put_u32(&c.w, h);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    TPM2B_ECC_POINT z1 = { .size = 0 }, qe = { .size = 0 }, z2 = { .size = 0 };
    size_t off = params_at(false, false);
    assert_int_equal(Tss2_MU_TPM2B_ECC_POINT_Unmarshal(r.b, r.len, &off, &z1), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPM2B_ECC_POINT_Unmarshal(r.b, r.len, &off, &qe), TSS2_RC_SUCCESS);
    assert_int_equal(off, r.len);

    /* ZGen with the ephemeral public point gives the same Z */
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_ECDH_ZGen);
    cf_put_u32(&c.w, h);
    pw_session(&c, "z");
    tpm_put(&c.w, TPM_MARSHAL(TPM2B_ECC_POINT), &qe);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    off = params_at(false, true);
    memset(&z2, 0, sizeof z2);
    assert_int_equal(Tss2_MU_TPM2B_ECC_POINT_Unmarshal(r.b, r.len, &off, &z2), TSS2_RC_SUCCESS);
    assert_int_equal(z1.point.x.size, 32);
    assert_memory_equal(z1.point.x.buffer, z2.point.x.buffer, 32);
    assert_memory_equal(z1.point.y.buffer, z2.point.y.buffer, 32);

    /* against OpenSSL: our key pair, the TPM's public key */
    EVP_PKEY *mine = EVP_EC_gen("P-256");
    assert_non_null(mine);
    uint8_t pt[65];
    size_t ptlen = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(mine, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &ptlen), 1);
    assert_int_equal(ptlen, 65);
    TPM2B_ECC_POINT q = { .size = 0 };
    q.point.x.size = q.point.y.size = 32;
    memcpy(q.point.x.buffer, pt + 1, 32);
    memcpy(q.point.y.buffer, pt + 33, 32);
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_ECDH_ZGen);
    cf_put_u32(&c.w, h);
    pw_session(&c, "z");
    tpm_put(&c.w, TPM_MARSHAL(TPM2B_ECC_POINT), &q);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    off = params_at(false, true);
    memset(&z2, 0, sizeof z2);
    assert_int_equal(Tss2_MU_TPM2B_ECC_POINT_Unmarshal(r.b, r.len, &off, &z2), TSS2_RC_SUCCESS);
    EVP_PKEY *theirs = ec_public(&pub.publicArea.unique.ecc);
    EVP_PKEY_CTX *dctx = EVP_PKEY_CTX_new(mine, NULL);
    assert_int_equal(EVP_PKEY_derive_init(dctx), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(dctx, theirs), 1);
    uint8_t zx[32];
    size_t zl = sizeof zx;
    assert_int_equal(EVP_PKEY_derive(dctx, zx, &zl), 1);
    assert_int_equal(zl, 32);
    assert_memory_equal(z2.point.x.buffer, zx, 32);
    EVP_PKEY_CTX_free(dctx);
    EVP_PKEY_free(theirs);
    EVP_PKEY_free(mine);

    /* a point off the curve */
    q.point.y.buffer[31] ^= 1;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_ECDH_ZGen);
    cf_put_u32(&c.w, h);
    pw_session(&c, "z");
    tpm_put(&c.w, TPM_MARSHAL(TPM2B_ECC_POINT), &q);
    assert_int_equal(run(t, &c, &r), TPM2_RC_ECC_POINT | TPM2_RC_P | TPM2_RC_1);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);

    /* a signing key: KeyGen says TPM_RC_KEY, ZGen TPM_RC_ATTRIBUTES */
    tpl = ecc_template(TPMA_OBJECT_SIGN_ENCRYPT, TPM2_ALG_ECDSA);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ECDH_KeyGen);
    cf_put_u32(&c.w, h);
    assert_int_equal(run(t, &c, &r), TPM2_RC_KEY | TPM2_RC_H | TPM2_RC_1);
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_ECDH_ZGen);
    cf_put_u32(&c.w, h);
    pw_session(&c, "");
    tpm_put(&c.w, TPM_MARSHAL(TPM2B_ECC_POINT), &qe);
    assert_int_equal(run(t, &c, &r), TPM2_RC_ATTRIBUTES | TPM2_RC_H | TPM2_RC_1);
    tpm_instance_free(t);
    free(e);
}

/* ---- EncryptDecrypt ------------------------------------------------------------------------- */
static const uint8_t aes_key[16] = { 0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                     0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c };

/* EncryptDecrypt2 (v2) or EncryptDecrypt (v1); returns the output and ivOut. */
static uint32_t encdec(tpm_instance *t, int v, TPM2_HANDLE key, bool dec, TPMI_ALG_SYM_MODE mode, const uint8_t *iv,
                       size_t ivlen, const uint8_t *in, size_t n, uint8_t *out, uint8_t *ivout)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, v == 2 ? TPM2_CC_EncryptDecrypt2 : TPM2_CC_EncryptDecrypt);
    cf_put_u32(&c.w, key);
    pw_session(&c, "");
    if (v == 2)
        tpm_put_2b(&c.w, in, n);
    cf_put_u8(&c.w, dec ? TPM2_YES : TPM2_NO);
    cf_put_u16(&c.w, mode);
    tpm_put_2b(&c.w, iv, ivlen);
    if (v != 2)
        tpm_put_2b(&c.w, in, n);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        TPM2B_MAX_BUFFER o;
        TPM2B_IV ivo;
        size_t off = params_at(false, true);
        assert_int_equal(Tss2_MU_TPM2B_MAX_BUFFER_Unmarshal(r.b, r.len, &off, &o), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPM2B_IV_Unmarshal(r.b, r.len, &off, &ivo), TSS2_RC_SUCCESS);
        assert_int_equal(o.size, n);
        assert_int_equal(ivo.size, ivlen);
        memcpy(out, o.buffer, n);
        if (ivout)
            memcpy(ivout, ivo.buffer, ivo.size);
    }
    return rc;
}

static const EVP_CIPHER *evp_mode(TPMI_ALG_SYM_MODE m)
{
    switch (m) {
    case TPM2_ALG_CFB: return EVP_aes_128_cfb128();
    case TPM2_ALG_CBC: return EVP_aes_128_cbc();
    case TPM2_ALG_CTR: return EVP_aes_128_ctr();
    case TPM2_ALG_OFB: return EVP_aes_128_ofb();
    default: return EVP_aes_128_ecb();
    }
}

static void openssl_encrypt(TPMI_ALG_SYM_MODE m, const uint8_t *iv, const uint8_t *in, size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    assert_int_equal(EVP_EncryptInit_ex(x, evp_mode(m), NULL, aes_key, m == TPM2_ALG_ECB ? NULL : iv), 1);
    assert_int_equal(EVP_CIPHER_CTX_set_padding(x, 0), 1);
    assert_int_equal(EVP_EncryptUpdate(x, out, &l1, in, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(x, out + l1, &l2), 1);
    assert_int_equal((size_t)(l1 + l2), n);
    EVP_CIPHER_CTX_free(x);
}

static void test_encrypt_decrypt(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    /* SP 800-38A F.3.13 (CFB128-AES128.Encrypt) */
    static const uint8_t iv[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    static const uint8_t p[64] = {
        0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a,
        0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03, 0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac, 0x45, 0xaf, 0x8e, 0x51,
        0x30, 0xc8, 0x1c, 0x46, 0xa3, 0x5c, 0xe4, 0x11, 0xe5, 0xfb, 0xc1, 0x19, 0x1a, 0x0a, 0x52, 0xef,
        0xf6, 0x9f, 0x24, 0x45, 0xdf, 0x4f, 0x9b, 0x17, 0xad, 0x2b, 0x41, 0x7b, 0xe6, 0x6c, 0x37, 0x10 };
    static const uint8_t cfb[64] = {
        0x3b, 0x3f, 0xd9, 0x2e, 0xb7, 0x2d, 0xad, 0x20, 0x33, 0x34, 0x49, 0xf8, 0xe8, 0x3c, 0xfb, 0x4a,
        0xc8, 0xa6, 0x45, 0x37, 0xa0, 0xb3, 0xa9, 0x3f, 0xcd, 0xe3, 0xcd, 0xad, 0x9f, 0x1c, 0xe5, 0x8b,
        0x26, 0x75, 0x1f, 0x67, 0xa3, 0xcb, 0xb1, 0x40, 0xb1, 0x80, 0x8c, 0xf1, 0x87, 0xa4, 0xf4, 0xdf,
        0xc0, 0x4b, 0x05, 0x35, 0x7c, 0x5d, 0x1c, 0x0e, 0xea, 0xc4, 0xc6, 0x6f, 0x9f, 0xf7, 0xf2, 0xe6 };
    TPMT_PUBLIC tpl = aes_template(TPM2_ALG_CFB);
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", aes_key, 16, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    uint8_t out[64], back[64], ivo[16], ivo2[16];
    for (int v = 1; v <= 2; v++) {
        assert_int_equal(encdec(t, v, h, false, TPM2_ALG_NULL, iv, 16, p, 64, out, ivo), TPM2_RC_SUCCESS);
        assert_memory_equal(out, cfb, 64);
        assert_memory_equal(ivo, cfb + 48, 16);   /* the last ciphertext block */
        assert_int_equal(encdec(t, v, h, true, TPM2_ALG_CFB, iv, 16, cfb, 64, back, NULL), TPM2_RC_SUCCESS);
        assert_memory_equal(back, p, 64);
    }
    /* chaining: two calls with ivOut passed on give the one-call result */
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_CFB, iv, 16, p, 32, out, ivo), TPM2_RC_SUCCESS);
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_CFB, ivo, 16, p + 32, 32, out + 32, ivo2), TPM2_RC_SUCCESS);
    assert_memory_equal(out, cfb, 64);
    /* the key's mode wins; another is TPM_RC_MODE; a short IV is TPM_RC_SIZE */
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_CBC, iv, 16, p, 64, out, ivo), TPM2_RC_MODE | TPM2_RC_P | TPM2_RC_3);
    assert_int_equal(encdec(t, 1, h, false, TPM2_ALG_CBC, iv, 16, p, 64, out, ivo), TPM2_RC_MODE | TPM2_RC_P | TPM2_RC_2);
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_CFB, iv, 8, p, 64, out, ivo), TPM2_RC_SIZE | TPM2_RC_P | TPM2_RC_4);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);

    /* a key without a mode: every mode, against OpenSSL, with ivOut continuing the chain */
    tpl = aes_template(TPM2_ALG_NULL);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", aes_key, 16, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    static const TPMI_ALG_SYM_MODE modes[] = { TPM2_ALG_CFB, TPM2_ALG_CBC, TPM2_ALG_CTR, TPM2_ALG_OFB, TPM2_ALG_ECB };
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        TPMI_ALG_SYM_MODE m = modes[k];
        size_t ivl = m == TPM2_ALG_ECB ? 0 : 16;
        uint8_t want[64];
        openssl_encrypt(m, iv, p, 64, want);
        assert_int_equal(encdec(t, 2, h, false, m, iv, ivl, p, 64, out, NULL), TPM2_RC_SUCCESS);
        assert_memory_equal(out, want, 64);
        assert_int_equal(encdec(t, 2, h, false, m, iv, ivl, p, 16, out, ivo), TPM2_RC_SUCCESS);
        assert_int_equal(encdec(t, 2, h, false, m, ivo, ivl, p + 16, 48, out + 16, NULL), TPM2_RC_SUCCESS);
        assert_memory_equal(out, want, 64);
        assert_int_equal(encdec(t, 2, h, true, m, iv, ivl, want, 64, back, NULL), TPM2_RC_SUCCESS);
        assert_memory_equal(back, p, 64);
    }
    /* stream modes take partial blocks; CBC and ECB do not */
    uint8_t want[64];
    openssl_encrypt(TPM2_ALG_CTR, iv, p, 21, want);
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_CTR, iv, 16, p, 21, out, NULL), TPM2_RC_SUCCESS);
    assert_memory_equal(out, want, 21);
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_CBC, iv, 16, p, 21, out, NULL), TPM2_RC_SIZE | TPM2_RC_P | TPM2_RC_1);
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_ECB, iv, 16, p, 16, out, NULL), TPM2_RC_SIZE | TPM2_RC_P | TPM2_RC_4);
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_NULL, iv, 16, p, 16, out, NULL), TPM2_RC_MODE | TPM2_RC_P | TPM2_RC_3);
    assert_int_equal(encdec(t, 2, h, false, TPM2_ALG_SHA256, iv, 16, p, 16, out, NULL), TPM2_RC_MODE | TPM2_RC_P | TPM2_RC_3);
    tpm_instance_free(t);
    free(e);
}

/* ---- HMAC and sequences --------------------------------------------------------------------- */
static uint32_t hmac_cmd(tpm_instance *t, TPM2_HANDLE key, const uint8_t *d, size_t n, TPMI_ALG_HASH alg, TPM2B_DIGEST *mac)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_HMAC);
    cf_put_u32(&c.w, key);
    pw_session(&c, "");
    tpm_put_2b(&c.w, d, n);
    cf_put_u16(&c.w, alg);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = params_at(false, true);
        assert_int_equal(Tss2_MU_TPM2B_DIGEST_Unmarshal(r.b, r.len, &off, mac), TSS2_RC_SUCCESS);
    }
    return rc;
}

static uint32_t seq_start(tpm_instance *t, TPM2_HANDLE key, const char *auth, TPMI_ALG_HASH alg, TPM2_HANDLE *seq)
{
    cmd c;
    resp r;
    if (key) {
        begin(&c, TPM2_ST_SESSIONS, TPM2_CC_HMAC_Start);
        cf_put_u32(&c.w, key);
        pw_session(&c, "");
    } else {
        begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_HashSequenceStart);
    }
    tpm_put_2b(&c.w, (const uint8_t *)auth, strlen(auth));
    cf_put_u16(&c.w, alg);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS)
        *seq = rd32(r.b + 10);
    return rc;
}

static uint32_t seq_update(tpm_instance *t, TPM2_HANDLE seq, const char *auth, const uint8_t *d, size_t n)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_SequenceUpdate);
    cf_put_u32(&c.w, seq);
    pw_session(&c, auth);
    tpm_put_2b(&c.w, d, n);
    return run(t, &c, &r);
}

static uint32_t seq_complete(tpm_instance *t, TPM2_HANDLE seq, const char *auth, const uint8_t *d, size_t n,
                             TPM2_HANDLE hier, TPM2B_DIGEST *out, TPMT_TK_HASHCHECK *tk)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_SequenceComplete);
    cf_put_u32(&c.w, seq);
    pw_session(&c, auth);
    tpm_put_2b(&c.w, d, n);
    cf_put_u32(&c.w, hier);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = params_at(false, true);
        assert_int_equal(Tss2_MU_TPM2B_DIGEST_Unmarshal(r.b, r.len, &off, out), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPMT_TK_HASHCHECK_Unmarshal(r.b, r.len, &off, tk), TSS2_RC_SUCCESS);
    }
    return rc;
}

static void test_hmac(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    static const uint8_t key[] = "a key the test knows, 32 bytes!";
    TPMT_PUBLIC tpl = hmac_template(TPM2_ALG_SHA256);
    TPM2_HANDLE h, s;
    TPM2B_PUBLIC pub;
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", key, 32, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    uint8_t want[32];
    unsigned wl = 0;
    assert_non_null(HMAC(EVP_sha256(), key, 32, data, sizeof data, want, &wl));
    TPM2B_DIGEST mac, mac2;
    assert_int_equal(hmac_cmd(t, h, data, sizeof data, TPM2_ALG_NULL, &mac), TPM2_RC_SUCCESS);
    assert_int_equal(mac.size, 32);
    assert_memory_equal(mac.buffer, want, 32);
    assert_int_equal(hmac_cmd(t, h, data, sizeof data, TPM2_ALG_SHA256, &mac), TPM2_RC_SUCCESS);
    assert_int_equal(hmac_cmd(t, h, data, sizeof data, TPM2_ALG_SHA1, &mac), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_2);

    /* the same through an HMAC sequence, in three pieces; the sequence uses a slot meanwhile */
    assert_int_equal(seq_start(t, h, "seqpw", TPM2_ALG_NULL, &s), TPM2_RC_SUCCESS);
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_AVAIL), TPM_OBJECT_SLOTS - 2);
    assert_int_equal(seq_update(t, s, "seqpw", data, 100), TPM2_RC_SUCCESS);
    assert_int_equal(seq_update(t, s, "wrong", data, 100), TPM2_RC_BAD_AUTH | TPM2_RC_S | TPM2_RC_1);   /* noDA */
    assert_int_equal(seq_update(t, s, "seqpw", data + 100, 150), TPM2_RC_SUCCESS);
    TPMT_TK_HASHCHECK tk;
    assert_int_equal(seq_complete(t, s, "seqpw", data + 250, 50, TPM2_RH_OWNER, &mac2, &tk), TPM2_RC_SUCCESS);
    assert_int_equal(mac2.size, 32);
    assert_memory_equal(mac2.buffer, want, 32);
    assert_int_equal(tk.hierarchy, TPM2_RH_NULL);   /* no ticket for an HMAC */
    assert_int_equal(tk.digest.size, 0);
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_AVAIL), TPM_OBJECT_SLOTS - 1);   /* flushed */
    assert_int_equal(seq_update(t, s, "seqpw", data, 1), TPM2_RC_HANDLE | TPM2_RC_H | TPM2_RC_1);

    /* a key with no scheme takes the caller's hash; neither is TPM_RC_VALUE */
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    tpl = hmac_template(TPM2_ALG_NULL);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", key, 32, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(hmac_cmd(t, h, data, 10, TPM2_ALG_NULL, &mac), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_2);
    assert_int_equal(hmac_cmd(t, h, data, 10, TPM2_ALG_SHA384, &mac), TPM2_RC_SUCCESS);
    uint8_t w384[48];
    assert_non_null(HMAC(EVP_sha384(), key, 32, data, 10, w384, &wl));
    assert_int_equal(mac.size, 48);
    assert_memory_equal(mac.buffer, w384, 48);
    /* SequenceUpdate on a key is TPM_RC_MODE */
    assert_int_equal(seq_update(t, h, "", data, 1), TPM2_RC_MODE | TPM2_RC_H | TPM2_RC_1);
    tpm_instance_free(t);
    free(e);
}

static uint32_t hash_cmd(tpm_instance *t, const uint8_t *d, size_t n, TPMI_ALG_HASH alg, TPM2_HANDLE hier,
                         TPM2B_DIGEST *out, TPMT_TK_HASHCHECK *tk)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_Hash);
    tpm_put_2b(&c.w, d, n);
    cf_put_u16(&c.w, alg);
    cf_put_u32(&c.w, hier);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = params_at(false, false);
        assert_int_equal(Tss2_MU_TPM2B_DIGEST_Unmarshal(r.b, r.len, &off, out), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPMT_TK_HASHCHECK_Unmarshal(r.b, r.len, &off, tk), TSS2_RC_SUCCESS);
    }
    return rc;
}

static void test_hash_sequence(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i ^ 0x5A);
    TPM2B_DIGEST d1, d2;
    TPMT_TK_HASHCHECK t1, t2;
    TPMI_ALG_HASH algs[] = { TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384 };
    for (size_t k = 0; k < 3; k++) {
        TPM2_HANDLE s;
        assert_int_equal(hash_cmd(t, data, sizeof data, algs[k], TPM2_RH_OWNER, &d1, &t1), TPM2_RC_SUCCESS);
        assert_int_equal(seq_start(t, 0, "", algs[k], &s), TPM2_RC_SUCCESS);
        assert_int_equal(seq_update(t, s, "", data, 400), TPM2_RC_SUCCESS);
        assert_int_equal(seq_update(t, s, "", data + 400, 0), TPM2_RC_SUCCESS);
        assert_int_equal(seq_update(t, s, "", data + 400, 500), TPM2_RC_SUCCESS);
        assert_int_equal(seq_complete(t, s, "", data + 900, 100, TPM2_RH_OWNER, &d2, &t2), TPM2_RC_SUCCESS);
        assert_int_equal(d1.size, d2.size);
        assert_memory_equal(d1.buffer, d2.buffer, d1.size);
        /* the same ticket: Sign will take it */
        assert_int_equal(t2.tag, TPM2_ST_HASHCHECK);
        assert_int_equal(t2.hierarchy, TPM2_RH_OWNER);
        assert_int_equal(t1.digest.size, t2.digest.size);
        assert_memory_equal(t1.digest.buffer, t2.digest.buffer, t1.digest.size);
    }
    /* data that starts with TPM_GENERATED_VALUE gets no ticket, in one piece or in several */
    static const uint8_t gen[8] = { 0xFF, 'T', 'C', 'G', 0x80, 0x18, 0, 0 };
    TPM2_HANDLE s;
    assert_int_equal(seq_start(t, 0, "", TPM2_ALG_SHA256, &s), TPM2_RC_SUCCESS);
    assert_int_equal(seq_complete(t, s, "", gen, 8, TPM2_RH_OWNER, &d2, &t2), TPM2_RC_SUCCESS);
    assert_int_equal(t2.hierarchy, TPM2_RH_NULL);
    assert_int_equal(t2.digest.size, 0);
    assert_int_equal(seq_start(t, 0, "", TPM2_ALG_SHA256, &s), TPM2_RC_SUCCESS);
    assert_int_equal(seq_update(t, s, "", gen, 8), TPM2_RC_SUCCESS);
    assert_int_equal(seq_complete(t, s, "", data, 100, TPM2_RH_OWNER, &d2, &t2), TPM2_RC_SUCCESS);
    assert_int_equal(t2.hierarchy, TPM2_RH_NULL);
    /* errors: an unknown hash; a bad hierarchy leaves the sequence usable; slots run out */
    assert_int_equal(seq_start(t, 0, "", TPM2_ALG_SHA512, &s), TPM2_RC_HASH | TPM2_RC_P | TPM2_RC_2);
    assert_int_equal(seq_start(t, 0, "", TPM2_ALG_SHA256, &s), TPM2_RC_SUCCESS);
    {
        cmd c;
        resp r;
        begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ReadPublic);   /* a sequence has no public area */
        cf_put_u32(&c.w, s);
        assert_int_equal(run(t, &c, &r), TPM2_RC_SEQUENCE | TPM2_RC_H | TPM2_RC_1);
    }
    assert_int_equal(flush(t, s), TPM2_RC_SUCCESS);
    assert_int_equal(seq_start(t, 0, "", TPM2_ALG_SHA256, &s), TPM2_RC_SUCCESS);
    assert_int_equal(seq_complete(t, s, "", data, 4, 0x40000123, &d2, &t2), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_2);
    assert_int_equal(seq_complete(t, s, "", data, 4, TPM2_RH_NULL, &d2, &t2), TPM2_RC_SUCCESS);
    TPM2_HANDLE hs[TPM_OBJECT_SLOTS];
    for (size_t i = 0; i < TPM_OBJECT_SLOTS; i++)
        assert_int_equal(seq_start(t, 0, "", TPM2_ALG_SHA256, &hs[i]), TPM2_RC_SUCCESS);
    assert_int_equal(seq_start(t, 0, "", TPM2_ALG_SHA256, &s), TPM2_RC_OBJECT_MEMORY);
    for (size_t i = 0; i < TPM_OBJECT_SLOTS; i++)
        assert_int_equal(flush(t, hs[i]), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    free(e);
}

static void test_event_sequence(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPM2_HANDLE s;
    static const uint8_t ev[] = "an event in two parts";
    assert_int_equal(seq_start(t, 0, "ev", TPM2_ALG_NULL, &s), TPM2_RC_SUCCESS);
    assert_int_equal(seq_update(t, s, "ev", ev, 5), TPM2_RC_SUCCESS);
    /* SequenceComplete is not for event sequences */
    TPM2B_DIGEST d;
    TPMT_TK_HASHCHECK tk;
    assert_int_equal(seq_complete(t, s, "ev", ev, 1, TPM2_RH_NULL, &d, &tk), TPM2_RC_MODE | TPM2_RC_H | TPM2_RC_1);
    cmd c;
    resp r;
    /* PCR 17 cannot be extended from locality 0: the sequence stays */
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_EventSequenceComplete);
    cf_put_u32(&c.w, 17);
    cf_put_u32(&c.w, s);
    pw_sessions2(&c, "", "ev");
    tpm_put_2b(&c.w, ev + 5, sizeof ev - 5);
    assert_int_equal(run(t, &c, &r), TPM2_RC_LOCALITY);
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_EventSequenceComplete);
    cf_put_u32(&c.w, 16);
    cf_put_u32(&c.w, s);
    pw_sessions2(&c, "", "ev");
    tpm_put_2b(&c.w, ev + 5, sizeof ev - 5);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    TPML_DIGEST_VALUES res;
    size_t off = params_at(false, true);
    assert_int_equal(Tss2_MU_TPML_DIGEST_VALUES_Unmarshal(r.b, r.len, &off, &res), TSS2_RC_SUCCESS);
    assert_int_equal(res.count, 3);
    static const cf_hash_alg ch[3] = { CF_HASH_SHA1, CF_HASH_SHA256, CF_HASH_SHA384 };
    static const size_t hl[3] = { 20, 32, 48 };
    for (int b = 0; b < 3; b++) {
        uint8_t want[48], buf[96] = { 0 }, pcr[48];
        assert_int_equal(res.digests[b].hashAlg, tpm_pcr_banks[b]);
        sha(ch[b], ev, sizeof ev, want);
        assert_memory_equal((const uint8_t *)&res.digests[b].digest, want, hl[b]);
        memcpy(buf + hl[b], want, hl[b]);
        sha(ch[b], buf, 2 * hl[b], want);
        pcr_value(t, tpm_pcr_banks[b], 16, pcr, hl[b]);
        assert_memory_equal(pcr, want, hl[b]);
    }
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_AVAIL), TPM_OBJECT_SLOTS);
    tpm_instance_free(t);
    free(e);
}

/* ---- Quote ---------------------------------------------------------------------------------- */
static uint32_t pcr_extend16(tpm_instance *t, const uint8_t d[32])
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_PCR_Extend);
    cf_put_u32(&c.w, 16);
    pw_session(&c, "");
    cf_put_u32(&c.w, 1);
    cf_put_u16(&c.w, TPM2_ALG_SHA256);
    cf_put_bytes(&c.w, d, 32);
    return run(t, &c, &r);
}

static uint32_t quote_pw(tpm_instance *t, TPM2_HANDLE key, const char *pw, const uint8_t *q, size_t qlen, TPMI_ALG_SIG_SCHEME scheme,
                      const TPML_PCR_SELECTION *sel, TPM2B_ATTEST *att, TPMT_SIGNATURE *sig)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_Quote);
    cf_put_u32(&c.w, key);
    pw_session(&c, pw);
    tpm_put_2b(&c.w, q, qlen);
    cf_put_u16(&c.w, scheme);
    if (scheme != TPM2_ALG_NULL)
        cf_put_u16(&c.w, TPM2_ALG_SHA256);
    tpm_put(&c.w, TPM_MARSHAL(TPML_PCR_SELECTION), sel);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = params_at(false, true);
        memset(att, 0, sizeof *att);   /* libtss2-mu wants a zero size in a sized struct */
        assert_int_equal(Tss2_MU_TPM2B_ATTEST_Unmarshal(r.b, r.len, &off, att), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Unmarshal(r.b, r.len, &off, sig), TSS2_RC_SUCCESS);
    }
    return rc;
}
#define quote(t, key, ...) quote_pw((t), (key), (key) == TPM2_RH_NULL ? "" : "ak", __VA_ARGS__)

static void test_quote(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    uint8_t d[32] = { 0xAB };
    assert_int_equal(pcr_extend16(t, d), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpl = ecc_template(TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_RESTRICTED, TPM2_ALG_ECDSA);
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(primary(t, TPM2_RH_ENDORSEMENT, "", "ak", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    /* qualified name of the key, from ReadPublic */
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ReadPublic);
    cf_put_u32(&c.w, h);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    size_t off = 10;
    TPM2B_PUBLIC p2 = { .size = 0 };
    TPM2B_NAME name, qname;
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(r.b, r.len, &off, &p2), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPM2B_NAME_Unmarshal(r.b, r.len, &off, &name), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPM2B_NAME_Unmarshal(r.b, r.len, &off, &qname), TSS2_RC_SUCCESS);

    /* sha256: PCR 0 and 16; sha1: PCR 1 */
    TPML_PCR_SELECTION sel = { .count = 2 };
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[0] = 0x01;
    sel.pcrSelections[0].pcrSelect[2] = 0x01;
    sel.pcrSelections[1].hash = TPM2_ALG_SHA1;
    sel.pcrSelections[1].sizeofSelect = 3;
    sel.pcrSelections[1].pcrSelect[0] = 0x02;
    static const uint8_t nonce[] = "fresh nonce";
    TPM2B_ATTEST att;
    TPMT_SIGNATURE sig;
    assert_int_equal(quote(t, h, nonce, sizeof nonce, TPM2_ALG_NULL, &sel, &att, &sig), TPM2_RC_SUCCESS);

    TPMS_ATTEST a;
    off = 0;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(att.attestationData, att.size, &off, &a), TSS2_RC_SUCCESS);
    assert_int_equal(off, att.size);
    assert_int_equal(a.magic, TPM2_GENERATED_VALUE);
    assert_int_equal(a.type, TPM2_ST_ATTEST_QUOTE);
    assert_int_equal(a.qualifiedSigner.size, qname.size);
    assert_memory_equal(a.qualifiedSigner.name, qname.name, qname.size);
    assert_int_equal(a.extraData.size, sizeof nonce);
    assert_memory_equal(a.extraData.buffer, nonce, sizeof nonce);
    assert_int_equal(a.clockInfo.safe, TPM2_YES);
    assert_int_equal(a.clockInfo.resetCount, 1);   /* an endorsement key: not obfuscated */
    assert_int_equal(a.attested.quote.pcrSelect.count, 2);
    /* pcrDigest: SHA-256 of the values in selection order, read back with PCR_Read */
    uint8_t cat[32 + 32 + 20], want[32];
    pcr_value(t, TPM2_ALG_SHA256, 0, cat, 32);
    pcr_value(t, TPM2_ALG_SHA256, 16, cat + 32, 32);
    pcr_value(t, TPM2_ALG_SHA1, 1, cat + 64, 20);
    sha(CF_HASH_SHA256, cat, sizeof cat, want);
    assert_int_equal(a.attested.quote.pcrDigest.size, 32);
    assert_memory_equal(a.attested.quote.pcrDigest.buffer, want, 32);

    /* the signature, by OpenSSL over the attestation bytes */
    assert_int_equal(sig.sigAlg, TPM2_ALG_ECDSA);
    assert_int_equal(sig.signature.ecdsa.hash, TPM2_ALG_SHA256);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *br = BN_bin2bn(sig.signature.ecdsa.signatureR.buffer, sig.signature.ecdsa.signatureR.size, NULL);
    BIGNUM *bs = BN_bin2bn(sig.signature.ecdsa.signatureS.buffer, sig.signature.ecdsa.signatureS.size, NULL);
    assert_int_equal(ECDSA_SIG_set0(es, br, bs), 1);
    uint8_t *der = NULL;
    int derlen = i2d_ECDSA_SIG(es, &der);
    assert_true(derlen > 0);
    EVP_PKEY *pk = ec_public(&pub.publicArea.unique.ecc);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk), 1);
    assert_int_equal(EVP_DigestVerify(md, der, (size_t)derlen, att.attestationData, att.size), 1);
    att.attestationData[att.size - 1] ^= 1;
    assert_int_not_equal(EVP_DigestVerify(md, der, (size_t)derlen, att.attestationData, att.size), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);

    /* a PCR change changes the digest */
    assert_int_equal(pcr_extend16(t, d), TPM2_RC_SUCCESS);
    TPMS_ATTEST a2;
    assert_int_equal(quote(t, h, nonce, sizeof nonce, TPM2_ALG_ECDSA, &sel, &att, &sig), TPM2_RC_SUCCESS);
    off = 0;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(att.attestationData, att.size, &off, &a2), TSS2_RC_SUCCESS);
    assert_memory_not_equal(a2.attested.quote.pcrDigest.buffer, a.attested.quote.pcrDigest.buffer, 32);
    /* errors: another scheme; a decryption key; an unknown bank */
    assert_int_equal(quote(t, h, nonce, sizeof nonce, TPM2_ALG_RSASSA, &sel, &att, &sig), TPM2_RC_SCHEME | TPM2_RC_P | TPM2_RC_2);
    sel.pcrSelections[1].hash = TPM2_ALG_SHA512;
    assert_int_equal(quote(t, h, nonce, sizeof nonce, TPM2_ALG_NULL, &sel, &att, &sig), TPM2_RC_HASH | TPM2_RC_P | TPM2_RC_3);
    sel.pcrSelections[1].hash = TPM2_ALG_SHA1;
    assert_int_equal(quote(t, TPM2_RH_NULL, nonce, sizeof nonce, TPM2_ALG_ECDSA, &sel, &att, &sig),
                     TPM2_RC_SCHEME | TPM2_RC_P | TPM2_RC_2);
    TPMT_PUBLIC dt = ecc_template(TPMA_OBJECT_DECRYPT, TPM2_ALG_NULL);
    TPM2_HANDLE h2;
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "ak", NULL, 0, &dt, &h2, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(quote(t, h2, nonce, sizeof nonce, TPM2_ALG_ECDSA, &sel, &att, &sig), TPM2_RC_KEY | TPM2_RC_H | TPM2_RC_1);
    /* an owner key: resetCount is obfuscated */
    assert_int_equal(flush(t, h2), TPM2_RC_SUCCESS);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "ak", NULL, 0, &tpl, &h2, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(quote(t, h2, NULL, 0, TPM2_ALG_NULL, &sel, &att, &sig), TPM2_RC_SUCCESS);
    off = 0;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(att.attestationData, att.size, &off, &a2), TSS2_RC_SUCCESS);
    assert_int_not_equal(a2.clockInfo.resetCount, 1);
    tpm_instance_free(t);
    free(e);
}

/* ---- hierarchies ---------------------------------------------------------------------------- */
static uint32_t change_auth(tpm_instance *t, TPM2_HANDLE h, const char *old, const char *nw)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_HierarchyChangeAuth);
    cf_put_u32(&c.w, h);
    pw_session(&c, old);
    tpm_put_2b(&c.w, (const uint8_t *)nw, strlen(nw));
    return run(t, &c, &r);
}

static uint32_t simple_auth_cmd(tpm_instance *t, TPM2_CC cc, TPM2_HANDLE h, const char *pw, const uint8_t *params, size_t n)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, cc);
    cf_put_u32(&c.w, h);
    pw_session(&c, pw);
    if (n)
        cf_put_bytes(&c.w, params, n);
    return run(t, &c, &r);
}

static void test_hierarchy_change_auth(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpl = ecc_template(TPMA_OBJECT_SIGN_ENCRYPT, TPM2_ALG_ECDSA);
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(property(t, TPM2_PT_PERMANENT) & TPMA_PERMANENT_OWNERAUTHSET, 0);
    assert_int_equal(change_auth(t, TPM2_RH_OWNER, "", "owner-pw"), TPM2_RC_SUCCESS);
    assert_int_equal(change_auth(t, TPM2_RH_ENDORSEMENT, "", "eh-pw"), TPM2_RC_SUCCESS);
    assert_int_equal(change_auth(t, TPM2_RH_LOCKOUT, "", "lock-pw"), TPM2_RC_SUCCESS);
    uint32_t perm = property(t, TPM2_PT_PERMANENT);
    assert_true(perm & TPMA_PERMANENT_OWNERAUTHSET);
    assert_true(perm & TPMA_PERMANENT_ENDORSEMENTAUTHSET);
    assert_true(perm & TPMA_PERMANENT_LOCKOUTAUTHSET);
    /* hierarchies are not DA-protected: a wrong password is TPM_RC_BAD_AUTH (reference IncrementLockout) */
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &h, &pub), TPM2_RC_BAD_AUTH | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "owner-pw", "", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    /* too long for the context hash; the null hierarchy has no auth to change */
    assert_int_equal(change_auth(t, TPM2_RH_OWNER, "owner-pw", "0123456789abcdef0123456789abcdef!"),
                     TPM2_RC_SIZE | TPM2_RC_P | TPM2_RC_1);
    assert_int_equal(change_auth(t, TPM2_RH_NULL, "", "x"), TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);

    /* persisted: a new instance from the blob */
    env *e2 = calloc(1, sizeof *e2);
    tpm_instance *t2 = new_tpm(e2, e->blob, e->len);
    assert_int_equal(startup(t2, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(primary(t2, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &h, &pub), TPM2_RC_BAD_AUTH | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(primary(t2, TPM2_RH_OWNER, "owner-pw", "", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(primary(t2, TPM2_RH_ENDORSEMENT, "eh-pw", "", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    /* back to empty */
    assert_int_equal(change_auth(t2, TPM2_RH_OWNER, "owner-pw", ""), TPM2_RC_SUCCESS);
    assert_int_equal(property(t2, TPM2_PT_PERMANENT) & TPMA_PERMANENT_OWNERAUTHSET, 0);
    /* a wrong lockout password locks lockoutAuth (for lockoutRecovery) */
    assert_int_equal(change_auth(t2, TPM2_RH_LOCKOUT, "nope", ""), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(change_auth(t2, TPM2_RH_LOCKOUT, "lock-pw", ""), TPM2_RC_LOCKOUT);
    e2->now += 1000u * 1000u;
    assert_int_equal(change_auth(t2, TPM2_RH_LOCKOUT, "lock-pw", ""), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    tpm_instance_free(t2);
    free(e);
    free(e2);
}

static void same_key(const TPM2B_PUBLIC *a, const TPM2B_PUBLIC *b, bool same)
{
    bool eq = a->publicArea.unique.ecc.x.size == b->publicArea.unique.ecc.x.size
              && memcmp(a->publicArea.unique.ecc.x.buffer, b->publicArea.unique.ecc.x.buffer, a->publicArea.unique.ecc.x.size) == 0;
    assert_int_equal(eq, same);
}

static void test_clear(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpl = ecc_template(TPMA_OBJECT_SIGN_ENCRYPT, TPM2_ALG_ECDSA);
    TPM2_HANDLE ho, he, h;
    TPM2B_PUBLIC o1, e1, o2, e2;
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &ho, &o1), TPM2_RC_SUCCESS);
    assert_int_equal(primary(t, TPM2_RH_ENDORSEMENT, "", "", NULL, 0, &tpl, &he, &e1), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, he), TPM2_RC_SUCCESS);
    assert_int_equal(change_auth(t, TPM2_RH_OWNER, "", "o"), TPM2_RC_SUCCESS);
    assert_int_equal(change_auth(t, TPM2_RH_LOCKOUT, "", "l"), TPM2_RC_SUCCESS);

    /* ClearControl: lockout may disable, only platform may enable */
    uint8_t yes = TPM2_YES, no = TPM2_NO;
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_ClearControl, TPM2_RH_LOCKOUT, "l", &yes, 1), TPM2_RC_SUCCESS);
    assert_true(property(t, TPM2_PT_PERMANENT) & TPMA_PERMANENT_DISABLECLEAR);
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_Clear, TPM2_RH_LOCKOUT, "l", NULL, 0), TPM2_RC_DISABLED);
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_ClearControl, TPM2_RH_LOCKOUT, "l", &no, 1), TPM2_RC_AUTH_FAIL);
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_ClearControl, TPM2_RH_PLATFORM, "", &no, 1), TPM2_RC_SUCCESS);
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_ClearControl, TPM2_RH_OWNER, "o", &no, 1), TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    assert_int_equal(property(t, TPM2_PT_PERMANENT) & TPMA_PERMANENT_DISABLECLEAR, 0);

    assert_int_equal(simple_auth_cmd(t, TPM2_CC_Clear, TPM2_RH_OWNER, "o", NULL, 0), TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_Clear, TPM2_RH_LOCKOUT, "l", NULL, 0), TPM2_RC_SUCCESS);
    /* the owner's loaded key is gone; auths are empty; a new storage seed, the same endorsement seed */
    {
        cmd c;
        resp r;
        begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ReadPublic);
        cf_put_u32(&c.w, ho);
        assert_int_equal(run(t, &c, &r), TPM2_RC_HANDLE | TPM2_RC_H | TPM2_RC_1);
    }
    assert_int_equal(property(t, TPM2_PT_PERMANENT) & (TPMA_PERMANENT_OWNERAUTHSET | TPMA_PERMANENT_LOCKOUTAUTHSET), 0);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &h, &o2), TPM2_RC_SUCCESS);
    same_key(&o1, &o2, false);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    assert_int_equal(primary(t, TPM2_RH_ENDORSEMENT, "", "", NULL, 0, &tpl, &h, &e2), TPM2_RC_SUCCESS);
    same_key(&e1, &e2, true);
    /* and so after a restart from the blob */
    env *ev = calloc(1, sizeof *ev);
    tpm_instance *t2 = new_tpm(ev, e->blob, e->len);
    assert_int_equal(startup(t2, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPM2B_PUBLIC o3;
    assert_int_equal(primary(t2, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &h, &o3), TPM2_RC_SUCCESS);
    same_key(&o2, &o3, true);
    /* Clear from the platform works too */
    assert_int_equal(simple_auth_cmd(t2, TPM2_CC_Clear, TPM2_RH_PLATFORM, "", NULL, 0), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    tpm_instance_free(t2);
    free(e);
    free(ev);
}

static uint32_t sign_pw(tpm_instance *t, TPM2_HANDLE key, const char *pw)
{
    cmd c;
    resp r;
    uint8_t digest[32] = { 7 };
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_Sign);
    cf_put_u32(&c.w, key);
    pw_session(&c, pw);
    tpm_put_2b(&c.w, digest, 32);
    cf_put_u16(&c.w, TPM2_ALG_NULL);
    cf_put_u16(&c.w, TPM2_ST_HASHCHECK);
    cf_put_u32(&c.w, TPM2_RH_NULL);
    cf_put_u16(&c.w, 0);
    return run(t, &c, &r);
}

static void test_dictionary_attack(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    uint8_t p[12];
    cf_writer w = cf_writer_fixed(p, sizeof p);
    cf_put_u32(&w, 4);     /* maxTries */
    cf_put_u32(&w, 100);   /* recoveryTime (s) */
    cf_put_u32(&w, 50);    /* lockoutRecovery (s) */
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_DictionaryAttackParameters, TPM2_RH_LOCKOUT, "", p, 12), TPM2_RC_SUCCESS);
    assert_int_equal(property(t, TPM2_PT_MAX_AUTH_FAIL), 4);
    assert_int_equal(property(t, TPM2_PT_LOCKOUT_INTERVAL), 100);
    assert_int_equal(property(t, TPM2_PT_LOCKOUT_RECOVERY), 50);
    /* the lockout handle only */
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_DictionaryAttackParameters, TPM2_RH_OWNER, "", p, 12),
                     TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_DictionaryAttackParameters, TPM2_RH_LOCKOUT, "", p, 8),
                     TPM2_RC_INSUFFICIENT | TPM2_RC_P | TPM2_RC_3);

    TPMT_PUBLIC tpl = ecc_template(TPMA_OBJECT_SIGN_ENCRYPT, TPM2_ALG_ECDSA);
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "secret", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    for (int i = 0; i < 4; i++)
        assert_int_equal(sign_pw(t, h, "guess"), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(property(t, TPM2_PT_LOCKOUT_COUNTER), 4);
    assert_true(property(t, TPM2_PT_PERMANENT) & TPMA_PERMANENT_INLOCKOUT);
    assert_int_equal(sign_pw(t, h, "secret"), TPM2_RC_LOCKOUT);
    /* one recoveryTime later, one try back */
    e->now += 100u * 1000u;
    assert_int_equal(sign_pw(t, h, "secret"), TPM2_RC_SUCCESS);
    assert_int_equal(property(t, TPM2_PT_LOCKOUT_COUNTER), 3);
    assert_int_equal(sign_pw(t, h, "guess"), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(sign_pw(t, h, "secret"), TPM2_RC_LOCKOUT);
    /* DictionaryAttackLockReset clears it */
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_DictionaryAttackLockReset, TPM2_RH_LOCKOUT, "", NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(property(t, TPM2_PT_LOCKOUT_COUNTER), 0);
    assert_int_equal(property(t, TPM2_PT_PERMANENT) & TPMA_PERMANENT_INLOCKOUT, 0);
    assert_int_equal(sign_pw(t, h, "secret"), TPM2_RC_SUCCESS);
    /* a wrong lockout password locks the lockout commands for lockoutRecovery */
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_DictionaryAttackLockReset, TPM2_RH_LOCKOUT, "x", NULL, 0),
                     TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_DictionaryAttackLockReset, TPM2_RH_LOCKOUT, "", NULL, 0), TPM2_RC_LOCKOUT);
    e->now += 50u * 1000u;
    assert_int_equal(simple_auth_cmd(t, TPM2_CC_DictionaryAttackLockReset, TPM2_RH_LOCKOUT, "", NULL, 0), TPM2_RC_SUCCESS);
    /* the parameters persist */
    env *e2 = calloc(1, sizeof *e2);
    tpm_instance *t2 = new_tpm(e2, e->blob, e->len);
    assert_int_equal(startup(t2, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(property(t2, TPM2_PT_MAX_AUTH_FAIL), 4);
    /* Clear resets the counter */
    assert_int_equal(primary(t2, TPM2_RH_OWNER, "", "secret", NULL, 0, &tpl, &h, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(sign_pw(t2, h, "guess"), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(property(t2, TPM2_PT_LOCKOUT_COUNTER), 1);
    assert_int_equal(simple_auth_cmd(t2, TPM2_CC_Clear, TPM2_RH_LOCKOUT, "", NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(property(t2, TPM2_PT_LOCKOUT_COUNTER), 0);
    tpm_instance_free(t);
    tpm_instance_free(t2);
    free(e);
    free(e2);
}

/* Every prefix of these commands is an error and changes nothing (the blob stays the same). */
static void test_truncation(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    tpm_instance *t = new_tpm(e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    TPMT_PUBLIC tpl = aes_template(TPM2_ALG_CFB);
    TPM2_HANDLE ha, hr, hs;
    TPM2B_PUBLIC pub;
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", aes_key, 16, &tpl, &ha, &pub), TPM2_RC_SUCCESS);
    tpl = rsa_decrypt_template(TPM2_ALG_NULL);
    assert_int_equal(primary(t, TPM2_RH_OWNER, "", "", NULL, 0, &tpl, &hr, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(seq_start(t, 0, "", TPM2_ALG_SHA256, &hs), TPM2_RC_SUCCESS);

    static cmd cmds[6];
    size_t lens[6];
    uint8_t iv[16] = { 0 }, data[40] = { 1 };
    begin(&cmds[0], TPM2_ST_SESSIONS, TPM2_CC_EncryptDecrypt2);
    cf_put_u32(&cmds[0].w, ha);
    pw_session(&cmds[0], "");
    tpm_put_2b(&cmds[0].w, data, sizeof data);
    cf_put_u8(&cmds[0].w, 0);
    cf_put_u16(&cmds[0].w, TPM2_ALG_CFB);
    tpm_put_2b(&cmds[0].w, iv, 16);
    lens[0] = end(&cmds[0]);
    begin(&cmds[1], TPM2_ST_NO_SESSIONS, TPM2_CC_RSA_Encrypt);
    cf_put_u32(&cmds[1].w, hr);
    tpm_put_2b(&cmds[1].w, data, sizeof data);
    cf_put_u16(&cmds[1].w, TPM2_ALG_OAEP);
    cf_put_u16(&cmds[1].w, TPM2_ALG_SHA256);
    tpm_put_2b(&cmds[1].w, (const uint8_t *)"l", 2);
    lens[1] = end(&cmds[1]);
    begin(&cmds[2], TPM2_ST_SESSIONS, TPM2_CC_HierarchyChangeAuth);
    cf_put_u32(&cmds[2].w, TPM2_RH_OWNER);
    pw_session(&cmds[2], "");
    tpm_put_2b(&cmds[2].w, (const uint8_t *)"new", 3);
    lens[2] = end(&cmds[2]);
    begin(&cmds[3], TPM2_ST_SESSIONS, TPM2_CC_SequenceComplete);
    cf_put_u32(&cmds[3].w, hs);
    pw_session(&cmds[3], "");
    tpm_put_2b(&cmds[3].w, data, sizeof data);
    cf_put_u32(&cmds[3].w, TPM2_RH_OWNER);
    lens[3] = end(&cmds[3]);
    begin(&cmds[4], TPM2_ST_SESSIONS, TPM2_CC_DictionaryAttackParameters);
    cf_put_u32(&cmds[4].w, TPM2_RH_LOCKOUT);
    pw_session(&cmds[4], "");
    cf_put_u32(&cmds[4].w, 1);
    cf_put_u32(&cmds[4].w, 2);
    cf_put_u32(&cmds[4].w, 3);
    lens[4] = end(&cmds[4]);
    begin(&cmds[5], TPM2_ST_SESSIONS, TPM2_CC_Clear);
    cf_put_u32(&cmds[5].w, TPM2_RH_LOCKOUT);
    pw_session(&cmds[5], "");
    lens[5] = end(&cmds[5]);

    int calls = e->calls;
    resp r;
    for (size_t k = 0; k < 6; k++) {
        for (size_t len = 0; len < lens[k]; len++) {
            for (int patch = 0; patch < 2; patch++) {
                uint8_t buf[TPM_MAX_COMMAND_SIZE];
                memcpy(buf, cmds[k].b, len);
                if (patch && len >= 6)
                    buf[2] = (uint8_t)(len >> 24), buf[3] = (uint8_t)(len >> 16), buf[4] = (uint8_t)(len >> 8), buf[5] = (uint8_t)len;
                assert_int_not_equal(exec_loc(t, 0, buf, len, &r), TPM2_RC_SUCCESS);
            }
        }
    }
    assert_int_equal(e->calls, calls);   /* nothing persisted: nothing changed */
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_AVAIL), 0);   /* the sequence is still there */
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(exec_loc(t, 0, cmds[k].b, lens[k], &r), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa),
        cmocka_unit_test(test_ecdh),
        cmocka_unit_test(test_encrypt_decrypt),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_hash_sequence),
        cmocka_unit_test(test_event_sequence),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_hierarchy_change_auth),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_dictionary_attack),
        cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
