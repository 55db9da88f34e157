/* tpm_object_test.c: the object commands through tpm_execute with byte-level commands built here:
 * the protection of the private area recomputed independently with OpenSSL (KDFa, integrity
 * HMAC, AES-CFB), Create + Load + Sign verified by OpenSSL, a tampered private area
 * (TPM_RC_INTEGRITY), every truncation of Load (error, engine unchanged), ContextSave /
 * FlushContext / ContextLoad (same name; refused after a TPM Reset), EvictControl persistence
 * across a new instance built from the blob, Unseal (and TPM_RC_AUTH_FAIL with a wrong
 * authValue), ObjectChangeAuth, CreateLoaded, LoadExternal, and the TCG EK templates. */
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
#include "tpm/internal.h"
#include "tpm_harness.h"

/* ---- templates (the harness: support/tpm_harness.h) ------------------------------------------- */
#define ATTR_STORAGE (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN \
                      | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA)
#define ATTR_SEAL (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH)

static TPMT_PUBLIC ecc_template(TPMI_ALG_SIG_SCHEME scheme, TPMA_OBJECT attrs)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = attrs;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    if (attrs & TPMA_OBJECT_RESTRICTED) {
        p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p.parameters.eccDetail.symmetric.keyBits.aes = 128;
        p.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    }
    p.parameters.eccDetail.scheme.scheme = scheme;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
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
    if (attrs & TPMA_OBJECT_RESTRICTED) {
        p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
        p.parameters.rsaDetail.symmetric.keyBits.aes = 128;
        p.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    }
    p.parameters.rsaDetail.scheme.scheme = scheme;
    p.parameters.rsaDetail.scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.keyBits = 2048;
    return p;
}

static TPMT_PUBLIC seal_template(void)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_KEYEDHASH;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = ATTR_SEAL;
    p.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    return p;
}

static void put_sensitive_create(cmd *c, const char *userauth, const uint8_t *data, size_t dlen)
{
    size_t ua = strlen(userauth);
    cf_put_u16(&c->w, (uint16_t)(2 + ua + 2 + dlen));
    cf_put_u16(&c->w, (uint16_t)ua);
    cf_put_bytes(&c->w, userauth, ua);
    cf_put_u16(&c->w, (uint16_t)dlen);
    if (dlen)
        cf_put_bytes(&c->w, data, dlen);
}

static void put_public(cmd *c, const TPMT_PUBLIC *tpl)
{
    TPM2B_PUBLIC pub = { .publicArea = *tpl };
    tpm_put(&c->w, TPM_MARSHAL(TPM2B_PUBLIC), &pub);
}

static size_t create_cmd(cmd *c, TPM2_HANDLE parent, const char *userauth, const uint8_t *data, size_t dlen,
                         const TPMT_PUBLIC *tpl)
{
    begin(c, TPM2_ST_SESSIONS, TPM2_CC_Create);
    cf_put_u32(&c->w, parent);
    pw_session(c, "");
    put_sensitive_create(c, userauth, data, dlen);
    put_public(c, tpl);
    cf_put_u16(&c->w, 0);
    cf_put_u32(&c->w, 0);
    return end(c);
}

static uint32_t create(tpm_instance *t, TPM2_HANDLE parent, const char *userauth, const uint8_t *data, size_t dlen,
                       const TPMT_PUBLIC *tpl, TPM2B_PRIVATE *priv, TPM2B_PUBLIC *pub)
{
    cmd c;
    resp r;
    uint32_t rc = exec(t, c.b, create_cmd(&c, parent, userauth, data, dlen, tpl), &r);
    if (rc != TPM2_RC_SUCCESS)
        return rc;
    size_t off = 14;
    memset(priv, 0, sizeof *priv);
    memset(pub, 0, sizeof *pub);
    assert_int_equal(Tss2_MU_TPM2B_PRIVATE_Unmarshal(r.b, r.len, &off, priv), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(r.b, r.len, &off, pub), TSS2_RC_SUCCESS);
    /* creation data, hash, ticket follow */
    TPM2B_CREATION_DATA cd;
    TPM2B_DIGEST ch;
    TPMT_TK_CREATION tk;
    memset(&cd, 0, sizeof cd);
    assert_int_equal(Tss2_MU_TPM2B_CREATION_DATA_Unmarshal(r.b, r.len, &off, &cd), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPM2B_DIGEST_Unmarshal(r.b, r.len, &off, &ch), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPMT_TK_CREATION_Unmarshal(r.b, r.len, &off, &tk), TSS2_RC_SUCCESS);
    assert_int_equal(off, r.len - 5);   /* then the password session's response */
    assert_int_equal(tk.tag, TPM2_ST_CREATION);
    assert_int_equal(cd.creationData.parentNameAlg, TPM2_ALG_SHA256);
    return rc;
}

static size_t load_cmd(cmd *c, TPM2_HANDLE parent, const TPM2B_PRIVATE *priv, const TPM2B_PUBLIC *pub)
{
    begin(c, TPM2_ST_SESSIONS, TPM2_CC_Load);
    cf_put_u32(&c->w, parent);
    pw_session(c, "");
    tpm_put(&c->w, TPM_MARSHAL(TPM2B_PRIVATE), priv);
    tpm_put(&c->w, TPM_MARSHAL(TPM2B_PUBLIC), pub);
    return end(c);
}

static uint32_t load(tpm_instance *t, TPM2_HANDLE parent, const TPM2B_PRIVATE *priv, const TPM2B_PUBLIC *pub,
                     TPM2_HANDLE *h, TPM2B_NAME *name)
{
    cmd c;
    resp r;
    uint32_t rc = exec(t, c.b, load_cmd(&c, parent, priv, pub), &r);
    if (rc != TPM2_RC_SUCCESS)
        return rc;
    *h = rd32(r.b + 10);
    size_t off = 18;
    assert_int_equal(Tss2_MU_TPM2B_NAME_Unmarshal(r.b, r.len, &off, name), TSS2_RC_SUCCESS);
    return rc;
}

static uint32_t read_public(tpm_instance *t, TPM2_HANDLE h, TPM2B_PUBLIC *pub, TPM2B_NAME *name)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ReadPublic);
    cf_put_u32(&c.w, h);
    uint32_t rc = run(t, &c, &r);
    if (rc != TPM2_RC_SUCCESS)
        return rc;
    size_t off = 10;
    memset(pub, 0, sizeof *pub);
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(r.b, r.len, &off, pub), TSS2_RC_SUCCESS);
    assert_int_equal(Tss2_MU_TPM2B_NAME_Unmarshal(r.b, r.len, &off, name), TSS2_RC_SUCCESS);
    return rc;
}

static uint32_t sign(tpm_instance *t, TPM2_HANDLE key, const uint8_t digest[32], TPMT_SIGNATURE *sig)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_Sign);
    cf_put_u32(&c.w, key);
    pw_session(&c, "");
    tpm_put_2b(&c.w, digest, 32);
    cf_put_u16(&c.w, TPM2_ALG_NULL);
    cf_put_u16(&c.w, TPM2_ST_HASHCHECK);
    cf_put_u32(&c.w, TPM2_RH_NULL);
    cf_put_u16(&c.w, 0);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = 14;
        memset(sig, 0, sizeof *sig);
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Unmarshal(r.b, r.len, &off, sig), TSS2_RC_SUCCESS);
    }
    return rc;
}

static uint32_t unseal(tpm_instance *t, TPM2_HANDLE h, const char *pw, TPM2B_SENSITIVE_DATA *out)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_Unseal);
    cf_put_u32(&c.w, h);
    pw_session(&c, pw);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = 14;
        assert_int_equal(Tss2_MU_TPM2B_SENSITIVE_DATA_Unmarshal(r.b, r.len, &off, out), TSS2_RC_SUCCESS);
    }
    return rc;
}

static uint32_t context_save(tpm_instance *t, TPM2_HANDLE h, TPMS_CONTEXT *ctx)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ContextSave);
    cf_put_u32(&c.w, h);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS) {
        size_t off = 10;
        assert_int_equal(Tss2_MU_TPMS_CONTEXT_Unmarshal(r.b, r.len, &off, ctx), TSS2_RC_SUCCESS);
        assert_int_equal(off, r.len);
    }
    return rc;
}

static uint32_t context_load(tpm_instance *t, const TPMS_CONTEXT *ctx, TPM2_HANDLE *h)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ContextLoad);
    tpm_put(&c.w, TPM_MARSHAL(TPMS_CONTEXT), ctx);
    uint32_t rc = run(t, &c, &r);
    if (rc == TPM2_RC_SUCCESS)
        *h = rd32(r.b + 10);
    return rc;
}

static uint32_t evict(tpm_instance *t, TPM2_HANDLE auth, TPM2_HANDLE obj, TPM2_HANDLE persistent)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_EvictControl);
    cf_put_u32(&c.w, auth);
    cf_put_u32(&c.w, obj);
    pw_session(&c, "");
    cf_put_u32(&c.w, persistent);
    return run(t, &c, &r);
}

/* The handles GetCapability(TPM_CAP_HANDLES, first) lists (at most 8). */
static uint32_t cap_handles(tpm_instance *t, uint32_t first, uint32_t *out)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GetCapability);
    cf_put_u32(&c.w, TPM2_CAP_HANDLES);
    cf_put_u32(&c.w, first);
    cf_put_u32(&c.w, 8);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    uint32_t n = rd32(r.b + 15);
    assert_true(n <= 8);
    for (uint32_t i = 0; i < n; i++)
        out[i] = rd32(r.b + 19 + 4 * i);
    return n;
}

/* ---- independent computations (OpenSSL only) ------------------------------------------------ */

/* ECDSA P-256 verification of a TPM signature with the public area's point. */
static bool ossl_verify_ecdsa(const TPMT_PUBLIC *pub, const uint8_t digest[32], const TPMT_SIGNATURE *sig)
{
    uint8_t point[65];
    point[0] = 4;
    memcpy(point + 1, pub->unique.ecc.x.buffer, 32);
    memcpy(point + 33, pub->unique.ecc.y.buffer, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point), 1);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
    assert_int_equal(EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig->signature.ecdsa.signatureR.buffer, sig->signature.ecdsa.signatureR.size, NULL);
    BIGNUM *s = BN_bin2bn(sig->signature.ecdsa.signatureS.buffer, sig->signature.ecdsa.signatureS.size, NULL);
    assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(es, &der);
    assert_true(dl > 0);
    EVP_PKEY_CTX *vc = EVP_PKEY_CTX_new(pk, NULL);
    assert_int_equal(EVP_PKEY_verify_init(vc), 1);
    bool ok = EVP_PKEY_verify(vc, der, (size_t)dl, digest, 32) == 1;
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(vc);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pk);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return ok;
}

static tpm_instance *started(env **e)
{
    *e = calloc(1, sizeof **e);
    assert_non_null(*e);
    tpm_instance *t = new_tpm(*e, NULL, 0);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    return t;
}

static TPM2_HANDLE storage_primary(tpm_instance *t, TPM2_HANDLE hier)
{
    TPMT_PUBLIC tpl = ecc_template(TPM2_ALG_NULL, ATTR_STORAGE);
    TPM2_HANDLE h;
    TPM2B_PUBLIC pub;
    assert_int_equal(create_primary_pw(t, hier, "", &tpl, &h, &pub), TPM2_RC_SUCCESS);
    return h;
}

static const uint8_t DIGEST[32] = { 0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };

/* ---- tests ------------------------------------------------------------------------------------- */
/* Part 1 section 23 recomputed here: KDFa keys from the parent's seedValue, the HMAC over
 * encSensitive || name, and the AES-128-CFB decryption (IV 0) giving the TPM2B_SENSITIVE. */
static void test_protection_known_answer(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPM2_HANDLE parent = storage_primary(t, TPM2_RH_OWNER);
    const tpm_object *po = tpm_object_find(t, parent);
    assert_non_null(po);
    assert_int_equal(po->sens.seedValue.size, 32);
    TPMT_PUBLIC tpl = seal_template();
    const uint8_t secret[] = "the sealed secret";
    TPM2B_PRIVATE priv;
    TPM2B_PUBLIC pub;
    assert_int_equal(create(t, parent, "auth", secret, sizeof secret, &tpl, &priv, &pub), TPM2_RC_SUCCESS);

    TPM2B_NAME name;
    object_name(&pub.publicArea, &name);
    uint8_t symkey[16], hmackey[32];
    kdfa(po->sens.seedValue.buffer, 32, "STORAGE", name.name, name.size, NULL, 0, 128, symkey);
    kdfa(po->sens.seedValue.buffer, 32, "INTEGRITY", NULL, 0, NULL, 0, 256, hmackey);
    /* layout: u16 32, HMAC, encSensitive */
    assert_int_equal((priv.buffer[0] << 8) | priv.buffer[1], 32);
    const uint8_t *enc = priv.buffer + 34;
    size_t enclen = priv.size - 34u;
    uint8_t macin[4096], mac[32];
    memcpy(macin, enc, enclen);
    memcpy(macin + enclen, name.name, name.size);
    unsigned ml = 32;
    assert_non_null(HMAC(EVP_sha256(), hmackey, 32, macin, enclen + name.size, mac, &ml));
    assert_memory_equal(mac, priv.buffer + 2, 32);
    uint8_t plain[4096], iv[16] = { 0 };
    int outl = 0, finl = 0;
    EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_DecryptInit_ex(cx, EVP_aes_128_cfb128(), NULL, symkey, iv), 1);
    assert_int_equal(EVP_DecryptUpdate(cx, plain, &outl, enc, (int)enclen), 1);
    assert_int_equal(EVP_DecryptFinal_ex(cx, plain + outl, &finl), 1);
    EVP_CIPHER_CTX_free(cx);
    assert_int_equal((size_t)(outl + finl), enclen);
    TPM2B_SENSITIVE sens;
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPM2B_SENSITIVE_Unmarshal(plain, enclen, &off, &sens), TSS2_RC_SUCCESS);
    assert_int_equal(off, enclen);
    assert_int_equal(sens.sensitiveArea.sensitiveType, TPM2_ALG_KEYEDHASH);
    assert_int_equal(sens.sensitiveArea.authValue.size, 4);
    assert_memory_equal(sens.sensitiveArea.authValue.buffer, "auth", 4);
    assert_int_equal(sens.sensitiveArea.sensitive.bits.size, sizeof secret);
    assert_memory_equal(sens.sensitiveArea.sensitive.bits.buffer, secret, sizeof secret);
    /* unique = SHA-256(seedValue || data) */
    uint8_t u[32], ubuf[512];
    memcpy(ubuf, sens.sensitiveArea.seedValue.buffer, sens.sensitiveArea.seedValue.size);
    memcpy(ubuf + sens.sensitiveArea.seedValue.size, secret, sizeof secret);
    unsigned ul = 32;
    assert_int_equal(EVP_Digest(ubuf, sens.sensitiveArea.seedValue.size + sizeof secret, u, &ul, EVP_sha256(), NULL), 1);
    assert_int_equal(pub.publicArea.unique.keyedHash.size, 32);
    assert_memory_equal(u, pub.publicArea.unique.keyedHash.buffer, 32);
    /* and the engine's own unprotect agrees */
    TPMT_SENSITIVE back;
    assert_int_equal(tpm_private_unprotect(po, &name, &priv, &back), TPM2_RC_SUCCESS);
    assert_memory_equal(back.sensitive.bits.buffer, secret, sizeof secret);
    tpm_instance_free(t);
    free(e);
}

static void test_create_load_sign(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPM2_HANDLE parent = storage_primary(t, TPM2_RH_OWNER);
    TPMT_PUBLIC tpls[2] = { ecc_template(TPM2_ALG_ECDSA, ATTR_SIGN), rsa_template(TPM2_ALG_RSASSA, ATTR_SIGN) };
    for (int k = 0; k < 2; k++) {
        TPM2B_PRIVATE priv;
        TPM2B_PUBLIC pub, pub2, rp;
        assert_int_equal(create(t, parent, "", NULL, 0, &tpls[k], &priv, &pub), TPM2_RC_SUCCESS);
        /* a second Create: another key (fresh randomness, not the seed) */
        TPM2B_PRIVATE priv2;
        assert_int_equal(create(t, parent, "", NULL, 0, &tpls[k], &priv2, &pub2), TPM2_RC_SUCCESS);
        assert_true(memcmp(&pub.publicArea.unique, &pub2.publicArea.unique, sizeof pub.publicArea.unique) != 0);
        TPM2_HANDLE h;
        TPM2B_NAME name, rn, expect;
        assert_int_equal(load(t, parent, &priv, &pub, &h, &name), TPM2_RC_SUCCESS);
        object_name(&pub.publicArea, &expect);
        assert_int_equal(name.size, expect.size);
        assert_memory_equal(name.name, expect.name, name.size);
        assert_int_equal(read_public(t, h, &rp, &rn), TPM2_RC_SUCCESS);
        assert_memory_equal(rn.name, expect.name, expect.size);
        TPMT_SIGNATURE sig;
        assert_int_equal(sign(t, h, DIGEST, &sig), TPM2_RC_SUCCESS);
        if (k == 0) {
            assert_true(ossl_verify_ecdsa(&pub.publicArea, DIGEST, &sig));
            uint8_t other[32];
            memcpy(other, DIGEST, 32);
            other[5] ^= 1;
            assert_false(ossl_verify_ecdsa(&pub.publicArea, other, &sig));
        } else {
            /* RSASSA with the modulus of the public area, through OpenSSL */
            cf_rsa_parts parts;
            memset(&parts, 0, sizeof parts);
            uint8_t ebytes[3] = { 1, 0, 1 };
            parts.n.p = pub.publicArea.unique.rsa.buffer;
            parts.n.len = pub.publicArea.unique.rsa.size;
            parts.e.p = ebytes;
            parts.e.len = 3;
            cf_pkey *k2 = NULL;
            assert_int_equal(cf_pkey_rsa_import(&parts, &k2), CF_OK);
            cf_sig_params sp = { .scheme = CF_SIG_RSA_PKCS1, .hash = CF_HASH_SHA256 };
            cf_signer *v = NULL;
            assert_int_equal(cf_signer_new(k2, &sp, false, &v), CF_OK);
            assert_int_equal(cf_signer_verify(v, DIGEST, 32, sig.signature.rsassa.sig.buffer, sig.signature.rsassa.sig.size),
                             CF_OK);
            cf_signer_free(v);
            cf_pkey_free(k2);
        }
        assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    }
    /* the parent must be a storage key: a signing key is TPM_RC_TYPE, an unloaded one TPM_RC_HANDLE */
    TPM2B_PRIVATE priv;
    TPM2B_PUBLIC pub;
    assert_int_equal(create(t, parent, "", NULL, 0, &tpls[0], &priv, &pub), TPM2_RC_SUCCESS);
    TPM2_HANDLE h;
    TPM2B_NAME name;
    assert_int_equal(load(t, parent, &priv, &pub, &h, &name), TPM2_RC_SUCCESS);
    assert_int_equal(create(t, h, "", NULL, 0, &tpls[0], &priv, &pub), TPM2_RC_TYPE | TPM2_RC_H | TPM2_RC_1);
    TPM2_HANDLE h2;
    assert_int_equal(load(t, h, &priv, &pub, &h2, &name), TPM2_RC_TYPE | TPM2_RC_H | TPM2_RC_1);
    assert_int_equal(load(t, 0x80000002, &priv, &pub, &h2, &name), TPM2_RC_HANDLE | TPM2_RC_H | TPM2_RC_1);
    /* HMAC keys and AES keys are made too */
    TPMT_PUBLIC hm = seal_template();
    hm.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
    hm.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
    hm.parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;
    assert_int_equal(create(t, parent, "", NULL, 0, &hm, &priv, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    assert_int_equal(load(t, parent, &priv, &pub, &h, &name), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    TPMT_PUBLIC aes;
    memset(&aes, 0, sizeof aes);
    aes.type = TPM2_ALG_SYMCIPHER;
    aes.nameAlg = TPM2_ALG_SHA256;
    aes.objectAttributes = ATTR_SIGN | TPMA_OBJECT_DECRYPT;
    aes.parameters.symDetail.sym.algorithm = TPM2_ALG_AES;
    aes.parameters.symDetail.sym.keyBits.aes = 256;
    aes.parameters.symDetail.sym.mode.aes = TPM2_ALG_CFB;
    assert_int_equal(create(t, parent, "", NULL, 0, &aes, &priv, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(load(t, parent, &priv, &pub, &h, &name), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    free(e);
}

static void test_tampered_private(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPM2_HANDLE parent = storage_primary(t, TPM2_RH_OWNER);
    TPMT_PUBLIC tpl = ecc_template(TPM2_ALG_ECDSA, ATTR_SIGN);
    TPM2B_PRIVATE priv, bad;
    TPM2B_PUBLIC pub, pub2;
    assert_int_equal(create(t, parent, "", NULL, 0, &tpl, &priv, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(create(t, parent, "", NULL, 0, &tpl, &bad, &pub2), TPM2_RC_SUCCESS);
    TPM2_HANDLE h;
    TPM2B_NAME name;
    const uint32_t integrity = TPM2_RC_INTEGRITY | TPM2_RC_P | TPM2_RC_1;
    /* a flipped bit anywhere in the HMAC or the encrypted area */
    for (size_t i = 2; i < priv.size; i++) {
        bad = priv;
        bad.buffer[i] ^= 0x01;
        assert_int_equal(load(t, parent, &bad, &pub, &h, &name), integrity);
    }
    /* a wrong integrity size, a truncated blob, an empty encrypted area */
    bad = priv;
    bad.buffer[1] = 20;
    assert_int_equal(load(t, parent, &bad, &pub, &h, &name), integrity);
    bad = priv;
    bad.size -= 1;
    assert_int_equal(load(t, parent, &bad, &pub, &h, &name), integrity);
    bad.size = 34;
    assert_int_equal(load(t, parent, &bad, &pub, &h, &name), integrity);
    /* another object's public area with this private area (the name is in the HMAC) */
    assert_int_equal(load(t, parent, &priv, &pub2, &h, &name), integrity);
    /* under another parent */
    TPM2_HANDLE other = storage_primary(t, TPM2_RH_ENDORSEMENT);
    assert_int_equal(load(t, other, &priv, &pub, &h, &name), integrity);
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_AVAIL), TPM_OBJECT_SLOTS - 2);
    assert_int_equal(load(t, parent, &priv, &pub, &h, &name), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    free(e);
}

/* Every prefix of a Load command (header size as is, or patched) fails and changes nothing. */
static void test_load_truncation(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPM2_HANDLE parent = storage_primary(t, TPM2_RH_OWNER);
    TPMT_PUBLIC tpl = ecc_template(TPM2_ALG_ECDSA, ATTR_SIGN);
    TPM2B_PRIVATE priv;
    TPM2B_PUBLIC pub;
    assert_int_equal(create(t, parent, "", NULL, 0, &tpl, &priv, &pub), TPM2_RC_SUCCESS);
    static cmd lc;
    size_t n = load_cmd(&lc, parent, &priv, &pub);
    static uint8_t s0[1 << 16], s1[1 << 16];
    size_t l0 = sizeof s0;
    serialize(t, s0, &l0);
    int calls = e->calls;
    resp r;
    for (size_t len = 0; len < n; len++) {
        for (int patch = 0; patch < 2; patch++) {
            uint8_t buf[TPM_MAX_COMMAND_SIZE];
            memcpy(buf, lc.b, len);
            if (patch && len >= 6)
                buf[2] = (uint8_t)(len >> 24), buf[3] = (uint8_t)(len >> 16), buf[4] = (uint8_t)(len >> 8), buf[5] = (uint8_t)len;
            assert_int_not_equal(exec(t, buf, len, &r), TPM2_RC_SUCCESS);
        }
    }
    assert_int_equal(e->calls, calls);
    size_t l1 = sizeof s1;
    serialize(t, s1, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(s0, s1, l0);
    assert_int_equal(property(t, TPM2_PT_HR_TRANSIENT_AVAIL), TPM_OBJECT_SLOTS - 1);
    uint32_t hs[8];
    assert_int_equal(cap_handles(t, TPM_TRANSIENT_FIRST, hs), 1);
    assert_int_equal(exec(t, lc.b, n, &r), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
    free(e);
}

static void test_context_round_trip(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPM2_HANDLE parent = storage_primary(t, TPM2_RH_OWNER);
    TPMT_PUBLIC tpl = ecc_template(TPM2_ALG_ECDSA, ATTR_SIGN);
    TPM2B_PRIVATE priv;
    TPM2B_PUBLIC pub, p1, p2;
    TPM2B_NAME name, n1, n2;
    TPM2_HANDLE h, h2 = 0;   /* set by context_load (keeps -Wmaybe-uninitialized quiet) */
    assert_int_equal(create(t, parent, "", NULL, 0, &tpl, &priv, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(load(t, parent, &priv, &pub, &h, &name), TPM2_RC_SUCCESS);
    assert_int_equal(read_public(t, h, &p1, &n1), TPM2_RC_SUCCESS);
    TPMS_CONTEXT ctx, ctx2;
    assert_int_equal(context_save(t, h, &ctx), TPM2_RC_SUCCESS);
    assert_int_equal(ctx.savedHandle, 0x80000000);
    assert_int_equal(ctx.hierarchy, TPM2_RH_OWNER);
    assert_int_equal(context_save(t, h, &ctx2), TPM2_RC_SUCCESS);
    assert_true(ctx2.sequence > ctx.sequence);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, parent), TPM2_RC_SUCCESS);
    assert_int_equal(context_load(t, &ctx, &h2), TPM2_RC_SUCCESS);
    assert_int_equal(read_public(t, h2, &p2, &n2), TPM2_RC_SUCCESS);
    assert_int_equal(n1.size, n2.size);
    assert_memory_equal(n1.name, n2.name, n1.size);
    TPMT_SIGNATURE sig;
    assert_int_equal(sign(t, h2, DIGEST, &sig), TPM2_RC_SUCCESS);
    assert_true(ossl_verify_ecdsa(&pub.publicArea, DIGEST, &sig));
    /* a context loads more than once (another client may load the same file) */
    TPM2_HANDLE h3 = 0;
    assert_int_equal(context_load(t, &ctx, &h3), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, h3), TPM2_RC_SUCCESS);
    /* tampering: any byte of the blob, the sequence, the handle, the hierarchy */
    const uint32_t integrity = TPM2_RC_INTEGRITY | TPM2_RC_P | TPM2_RC_1;
    for (size_t i = 2; i < ctx.contextBlob.size; i += 7) {
        TPMS_CONTEXT bad = ctx;
        bad.contextBlob.buffer[i] ^= 0x80;
        assert_int_equal(context_load(t, &bad, &h3), integrity);
    }
    TPMS_CONTEXT bad = ctx;
    bad.sequence++;
    assert_int_equal(context_load(t, &bad, &h3), integrity);
    bad = ctx;
    bad.hierarchy = TPM2_RH_ENDORSEMENT;
    assert_int_equal(context_load(t, &bad, &h3), integrity);
    bad = ctx;
    bad.savedHandle = 0x80000002;
    assert_int_equal(context_load(t, &bad, &h3), integrity);
    bad.savedHandle = 0x02000000;   /* a session that was never saved */
    assert_int_not_equal(context_load(t, &bad, &h3), TPM2_RC_SUCCESS);
    /* a primary in the null hierarchy: saved, loaded; after a TPM Reset (Startup(CLEAR) after a
     * power cycle) its context no longer loads, nor does the owner object's */
    TPMT_PUBLIC ntpl = ecc_template(TPM2_ALG_ECDSA, ATTR_SIGN);
    TPM2_HANDLE nh;
    TPM2B_PUBLIC npub;
    assert_int_equal(create_primary_pw(t, TPM2_RH_NULL, "", &ntpl, &nh, &npub), TPM2_RC_SUCCESS);
    TPMS_CONTEXT nctx;
    assert_int_equal(context_save(t, nh, &nctx), TPM2_RC_SUCCESS);
    assert_int_equal(nctx.hierarchy, TPM2_RH_NULL);
    assert_int_equal(flush(t, nh), TPM2_RC_SUCCESS);
    assert_int_equal(context_load(t, &nctx, &nh), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, nh), TPM2_RC_SUCCESS);
    tpm_power_off(t);
    tpm_power_on(t);
    assert_int_equal(startup(t, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(context_load(t, &nctx, &nh), integrity);
    assert_int_equal(context_load(t, &ctx, &nh), integrity);
    /* ContextSave of a persistent handle or nothing loaded */
    TPMS_CONTEXT none;
    assert_int_equal(context_save(t, 0x81000000, &none), TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    assert_int_equal(context_save(t, 0x80000001, &none), TPM2_RC_HANDLE | TPM2_RC_H | TPM2_RC_1);
    tpm_instance_free(t);
    free(e);
}

static void test_evict_control(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPM2_HANDLE parent = storage_primary(t, TPM2_RH_OWNER);
    TPMT_PUBLIC tpl = ecc_template(TPM2_ALG_ECDSA, ATTR_SIGN);
    TPM2B_PRIVATE priv;
    TPM2B_PUBLIC pub, rp;
    TPM2B_NAME name, rn;
    TPM2_HANDLE h;
    assert_int_equal(create(t, parent, "", NULL, 0, &tpl, &priv, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(load(t, parent, &priv, &pub, &h, &name), TPM2_RC_SUCCESS);
    assert_int_equal(property(t, TPM2_PT_HR_PERSISTENT), 0);
    const TPM2_HANDLE P1 = 0x81000001, P2 = 0x81000002;
    assert_int_equal(evict(t, TPM2_RH_OWNER, h, P1), TPM2_RC_SUCCESS);
    assert_int_equal(evict(t, TPM2_RH_OWNER, parent, P1), TPM2_RC_NV_DEFINED);
    assert_int_equal(evict(t, TPM2_RH_OWNER, parent, P2), TPM2_RC_SUCCESS);
    /* the owner range only, owner or platform auth only */
    assert_int_equal(evict(t, TPM2_RH_OWNER, h, 0x81800000), TPM2_RC_RANGE | TPM2_RC_P | TPM2_RC_1);
    assert_int_equal(evict(t, TPM2_RH_PLATFORM, h, 0x81800000), TPM2_RC_HIERARCHY | TPM2_RC_H | TPM2_RC_2);
    assert_int_equal(evict(t, TPM2_RH_ENDORSEMENT, h, 0x81000003), TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    assert_int_equal(evict(t, TPM2_RH_OWNER, h, 0x80000003), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_1);
    /* a persistent handle names only itself */
    assert_int_equal(evict(t, TPM2_RH_OWNER, P1, P2), TPM2_RC_HANDLE | TPM2_RC_H | TPM2_RC_2);
    assert_int_equal(property(t, TPM2_PT_HR_PERSISTENT), 2);
    assert_int_equal(property(t, TPM2_PT_HR_PERSISTENT_AVAIL), TPM_PERSISTENT_SLOTS - 2);
    uint32_t hs[8];
    assert_int_equal(cap_handles(t, 0x81000000, hs), 2);
    assert_int_equal(hs[0], P1);
    assert_int_equal(hs[1], P2);
    assert_int_equal(cap_handles(t, TPM_TRANSIENT_FIRST, hs), 2);
    /* the null hierarchy's objects are temporary */
    TPM2_HANDLE nh;
    TPM2B_PUBLIC npub;
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    assert_int_equal(create_primary_pw(t, TPM2_RH_NULL, "", &tpl, &nh, &npub), TPM2_RC_SUCCESS);
    assert_int_equal(evict(t, TPM2_RH_OWNER, nh, 0x81000005), TPM2_RC_ATTRIBUTES | TPM2_RC_H | TPM2_RC_2);
    /* a new instance from the blob (a restart of cofferd): the key is there and signs */
    assert_true(e->len > 0);
    env *e2 = calloc(1, sizeof *e2);
    tpm_instance *t2 = new_tpm(e2, e->blob, e->len);
    assert_int_equal(startup(t2, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(read_public(t2, P1, &rp, &rn), TPM2_RC_SUCCESS);
    assert_int_equal(rn.size, name.size);
    assert_memory_equal(rn.name, name.name, name.size);
    TPMT_SIGNATURE sig;
    assert_int_equal(sign(t2, P1, DIGEST, &sig), TPM2_RC_SUCCESS);
    assert_true(ossl_verify_ecdsa(&pub.publicArea, DIGEST, &sig));
    /* the persistent storage key is a parent: Load under it */
    assert_int_equal(load(t2, P2, &priv, &pub, &h, &rn), TPM2_RC_SUCCESS);
    assert_int_equal(property(t2, TPM2_PT_HR_PERSISTENT), 2);
    /* removal */
    assert_int_equal(evict(t2, TPM2_RH_OWNER, P1, P1), TPM2_RC_SUCCESS);
    assert_int_equal(read_public(t2, P1, &rp, &rn), TPM2_RC_HANDLE | TPM2_RC_H | TPM2_RC_1);
    assert_int_equal(cap_handles(t2, 0x81000000, hs), 1);
    env *e3 = calloc(1, sizeof *e3);
    tpm_instance *t3 = new_tpm(e3, e2->blob, e2->len);
    assert_int_equal(startup(t3, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    assert_int_equal(property(t3, TPM2_PT_HR_PERSISTENT), 1);
    /* a blob whose persistent object was altered is refused */
    memcpy(e3->blob, e2->blob, e2->len);
    e3->blob[e2->len - 40] ^= 1;   /* inside the qualified name or the sensitive area */
    tpm_instance *bad = NULL;
    cf_err ce = tpm_instance_new("bad", e3->blob, e2->len - 1, NULL, NULL, &bad);
    assert_int_equal(ce, CF_E_STORE_CORRUPT);
    tpm_instance_free(t);
    tpm_instance_free(t2);
    tpm_instance_free(t3);
    free(e);
    free(e2);
    free(e3);
}

static void test_unseal_change_auth(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPM2_HANDLE parent = storage_primary(t, TPM2_RH_OWNER);
    TPMT_PUBLIC tpl = seal_template();
    const uint8_t secret[] = { 's', 'e', 'a', 'l', 0, 0xFF };
    TPM2B_PRIVATE priv;
    TPM2B_PUBLIC pub;
    TPM2B_NAME name;
    TPM2_HANDLE h;
    assert_int_equal(create(t, parent, "pw", secret, sizeof secret, &tpl, &priv, &pub), TPM2_RC_SUCCESS);
    assert_int_equal(load(t, parent, &priv, &pub, &h, &name), TPM2_RC_SUCCESS);
    TPM2B_SENSITIVE_DATA out;
    assert_int_equal(unseal(t, h, "pw", &out), TPM2_RC_SUCCESS);
    assert_int_equal(out.size, sizeof secret);
    assert_memory_equal(out.buffer, secret, sizeof secret);
    assert_int_equal(unseal(t, h, "wrong", &out), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    /* sealed data needs data; a key is not sealed data */
    assert_int_equal(create(t, parent, "", NULL, 0, &tpl, &priv, &pub), TPM2_RC_SIZE | TPM2_RC_P | TPM2_RC_1);
    assert_int_equal(unseal(t, parent, "", &out), TPM2_RC_TYPE | TPM2_RC_H | TPM2_RC_1);

    /* ObjectChangeAuth: a new private area; loaded, the new authValue unseals */
    cmd c;
    resp r;
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_ObjectChangeAuth);
    cf_put_u32(&c.w, h);
    cf_put_u32(&c.w, parent);
    pw_session(&c, "pw");
    tpm_put_2b(&c.w, (const uint8_t *)"newpw", 5);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    TPM2B_PRIVATE npriv;
    size_t off = 14;
    assert_int_equal(Tss2_MU_TPM2B_PRIVATE_Unmarshal(r.b, r.len, &off, &npriv), TSS2_RC_SUCCESS);
    assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    assert_int_equal(load(t, parent, &npriv, &pub, &h, &name), TPM2_RC_SUCCESS);
    assert_int_equal(unseal(t, h, "newpw", &out), TPM2_RC_SUCCESS);
    assert_memory_equal(out.buffer, secret, sizeof secret);
    assert_int_equal(unseal(t, h, "pw", &out), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    /* the wrong parent */
    TPM2_HANDLE other = storage_primary(t, TPM2_RH_ENDORSEMENT);
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_ObjectChangeAuth);
    cf_put_u32(&c.w, h);
    cf_put_u32(&c.w, other);
    pw_session(&c, "newpw");
    tpm_put_2b(&c.w, (const uint8_t *)"x", 1);
    assert_int_equal(run(t, &c, &r), TPM2_RC_TYPE | TPM2_RC_H | TPM2_RC_2);
    tpm_instance_free(t);
    free(e);
}

static void test_create_loaded_load_external(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPMT_PUBLIC tpl = ecc_template(TPM2_ALG_ECDSA, ATTR_SIGN);
    cmd c;
    resp r;
    /* a hierarchy as parent: a primary object, as CreatePrimary gives it */
    TPM2_HANDLE h1, h2;
    TPM2B_PUBLIC p1, p2;
    assert_int_equal(create_primary_pw(t, TPM2_RH_OWNER, "", &tpl, &h1, &p1), TPM2_RC_SUCCESS);
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_CreateLoaded);
    cf_put_u32(&c.w, TPM2_RH_OWNER);
    pw_session(&c, "");
    put_sensitive_create(&c, "", NULL, 0);
    put_public(&c, &tpl);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    h2 = rd32(r.b + 10);
    size_t off = 18;
    TPM2B_PRIVATE priv;
    assert_int_equal(Tss2_MU_TPM2B_PRIVATE_Unmarshal(r.b, r.len, &off, &priv), TSS2_RC_SUCCESS);
    assert_int_equal(priv.size, 0);
    memset(&p2, 0, sizeof p2);
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(r.b, r.len, &off, &p2), TSS2_RC_SUCCESS);
    assert_int_equal(p2.publicArea.unique.ecc.x.size, 32);
    assert_memory_equal(p1.publicArea.unique.ecc.x.buffer, p2.publicArea.unique.ecc.x.buffer, 32);
    assert_memory_equal(p1.publicArea.unique.ecc.y.buffer, p2.publicArea.unique.ecc.y.buffer, 32);
    assert_int_equal(flush(t, h1), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, h2), TPM2_RC_SUCCESS);
    /* an ordinary object under a storage parent, loaded at once */
    TPM2_HANDLE parent = storage_primary(t, TPM2_RH_OWNER);
    begin(&c, TPM2_ST_SESSIONS, TPM2_CC_CreateLoaded);
    cf_put_u32(&c.w, parent);
    pw_session(&c, "");
    put_sensitive_create(&c, "", NULL, 0);
    put_public(&c, &tpl);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    h2 = rd32(r.b + 10);
    off = 18;
    assert_int_equal(Tss2_MU_TPM2B_PRIVATE_Unmarshal(r.b, r.len, &off, &priv), TSS2_RC_SUCCESS);
    memset(&p2, 0, sizeof p2);
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(r.b, r.len, &off, &p2), TSS2_RC_SUCCESS);
    TPMT_SIGNATURE sig;
    assert_int_equal(sign(t, h2, DIGEST, &sig), TPM2_RC_SUCCESS);
    assert_true(ossl_verify_ecdsa(&p2.publicArea, DIGEST, &sig));
    assert_int_equal(flush(t, h2), TPM2_RC_SUCCESS);

    /* LoadExternal of the public area only (owner hierarchy): VerifySignature works with it */
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_LoadExternal);
    cf_put_u16(&c.w, 0);
    put_public(&c, &p2.publicArea);
    cf_put_u32(&c.w, TPM2_RH_OWNER);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    TPM2_HANDLE ext = rd32(r.b + 10);
    TPM2B_NAME name, expect;
    off = 14;
    assert_int_equal(Tss2_MU_TPM2B_NAME_Unmarshal(r.b, r.len, &off, &name), TSS2_RC_SUCCESS);
    object_name(&p2.publicArea, &expect);
    assert_memory_equal(name.name, expect.name, expect.size);
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_VerifySignature);
    cf_put_u32(&c.w, ext);
    tpm_put_2b(&c.w, DIGEST, 32);
    tpm_put(&c.w, TPM_MARSHAL(TPMT_SIGNATURE), &sig);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    /* a public-only object cannot be made persistent */
    assert_int_equal(evict(t, TPM2_RH_OWNER, ext, 0x81000010), TPM2_RC_ATTRIBUTES | TPM2_RC_H | TPM2_RC_2);
    assert_int_equal(flush(t, ext), TPM2_RC_SUCCESS);
    /* with a sensitive area: the null hierarchy only, not fixedTPM */
    const tpm_object *po = tpm_object_find(t, parent);
    TPMT_PUBLIC xp = po->pub;   /* reuse an existing key pair: the storage primary's */
    TPM2B_SENSITIVE xs = { .sensitiveArea = po->sens };
    xp.objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;
    xp.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    xp.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    xp.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    for (int k = 0; k < 3; k++) {
        begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_LoadExternal);
        tpm_put(&c.w, TPM_MARSHAL(TPM2B_SENSITIVE), &xs);
        TPMT_PUBLIC pp = xp;
        if (k == 2)
            pp.objectAttributes |= TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;
        put_public(&c, &pp);
        cf_put_u32(&c.w, k == 1 ? TPM2_RH_OWNER : TPM2_RH_NULL);
        uint32_t rc = run(t, &c, &r);
        if (k == 0) {
            assert_int_equal(rc, TPM2_RC_SUCCESS);
            ext = rd32(r.b + 10);
            assert_int_equal(sign(t, ext, DIGEST, &sig), TPM2_RC_SUCCESS);
            assert_true(ossl_verify_ecdsa(&xp, DIGEST, &sig));
            assert_int_equal(flush(t, ext), TPM2_RC_SUCCESS);
        } else {
            assert_int_equal(rc, k == 1 ? (TPM2_RC_HIERARCHY | TPM2_RC_P | TPM2_RC_3) : (TPM2_RC_ATTRIBUTES | TPM2_RC_P | TPM2_RC_2));
        }
    }
    /* a sensitive area that does not match the public one */
    xs.sensitiveArea.sensitive.ecc.buffer[5] ^= 1;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_LoadExternal);
    tpm_put(&c.w, TPM_MARSHAL(TPM2B_SENSITIVE), &xs);
    put_public(&c, &xp);
    cf_put_u32(&c.w, TPM2_RH_NULL);
    assert_int_equal(run(t, &c, &r), TPM2_RC_BINDING | TPM2_RC_P | TPM2_RC_1);
    tpm_instance_free(t);
    free(e);
}

/* TCG EK Credential Profile 2.0, template L-1 (RSA 2048) and L-2 (ECC P-256): the standard EK
 * policy (PolicySecret(TPM_RH_ENDORSEMENT)) in authPolicy, adminWithPolicy, no userWithAuth, and a
 * `unique` of zeros (256 bytes for RSA, 32 + 32 for ECC). */
static const uint8_t EK_POLICY[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
    0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
};
#define ATTR_EK (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN \
                 | TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

static void test_ek_templates(void **state)
{
    (void)state;
    env *e;
    tpm_instance *t = started(&e);
    TPMT_PUBLIC tpl[2];
    tpl[0] = rsa_template(TPM2_ALG_NULL, ATTR_EK);
    tpl[0].parameters.rsaDetail.scheme.details.anySig.hashAlg = 0;
    tpl[0].unique.rsa.size = 256;
    tpl[1] = ecc_template(TPM2_ALG_NULL, ATTR_EK);
    tpl[1].parameters.eccDetail.scheme.details.ecdsa.hashAlg = 0;
    tpl[1].unique.ecc.x.size = tpl[1].unique.ecc.y.size = 32;
    TPM2B_PUBLIC first[2];
    for (int k = 0; k < 2; k++) {
        tpl[k].authPolicy.size = 32;
        memcpy(tpl[k].authPolicy.buffer, EK_POLICY, 32);
        TPM2_HANDLE h;
        TPM2B_PUBLIC p;
        assert_int_equal(create_primary_pw(t, TPM2_RH_ENDORSEMENT, "", &tpl[k], &h, &first[k]), TPM2_RC_SUCCESS);
        assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
        assert_int_equal(create_primary_pw(t, TPM2_RH_ENDORSEMENT, "", &tpl[k], &h, &p), TPM2_RC_SUCCESS);
        assert_memory_equal(&first[k].publicArea, &p.publicArea, sizeof p.publicArea);
        assert_memory_equal(p.publicArea.authPolicy.buffer, EK_POLICY, 32);
        assert_int_equal(flush(t, h), TPM2_RC_SUCCESS);
    }
    /* the same EK from a new instance on the stored state */
    env *e2 = calloc(1, sizeof *e2);
    tpm_instance *t2 = new_tpm(e2, e->blob, e->len);
    assert_int_equal(startup(t2, TPM2_SU_CLEAR), TPM2_RC_SUCCESS);
    for (int k = 0; k < 2; k++) {
        TPM2_HANDLE h;
        TPM2B_PUBLIC p;
        assert_int_equal(create_primary_pw(t2, TPM2_RH_ENDORSEMENT, "", &tpl[k], &h, &p), TPM2_RC_SUCCESS);
        assert_memory_equal(&first[k].publicArea, &p.publicArea, sizeof p.publicArea);
        assert_int_equal(flush(t2, h), TPM2_RC_SUCCESS);
    }
    /* the EK is a storage parent whose user role needs a policy: a password is refused */
    TPM2_HANDLE ek;
    TPM2B_PUBLIC p;
    assert_int_equal(create_primary_pw(t2, TPM2_RH_ENDORSEMENT, "", &tpl[1], &ek, &p), TPM2_RC_SUCCESS);
    TPMT_PUBLIC ak = ecc_template(TPM2_ALG_ECDSA, ATTR_SIGN | TPMA_OBJECT_RESTRICTED);
    ak.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    TPM2B_PRIVATE priv;
    TPM2B_PUBLIC pub;
    assert_int_equal(create(t2, ek, "", NULL, 0, &ak, &priv, &pub), TPM2_RC_AUTH_UNAVAILABLE);
    tpm_instance_free(t);
    tpm_instance_free(t2);
    free(e);
    free(e2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protection_known_answer),
        cmocka_unit_test(test_create_load_sign),
        cmocka_unit_test(test_tampered_private),
        cmocka_unit_test(test_load_truncation),
        cmocka_unit_test(test_context_round_trip),
        cmocka_unit_test(test_evict_control),
        cmocka_unit_test(test_unseal_change_auth),
        cmocka_unit_test(test_create_loaded_load_external),
        cmocka_unit_test(test_ek_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
