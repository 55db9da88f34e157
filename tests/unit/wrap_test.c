/* wrap_test.c: private keys through C_WrapKey / C_UnwrapKey (PKCS#8 PrivateKeyInfo under AES key
 * wrap, as SoftHSM2 does), and the PKCS#8 encoding in src/crypto underneath it.
 *
 * crypto level: cf_pkey_to_pkcs8 / cf_pkey_from_pkcs8 round trips (a signature by one verifies
 * with the other), truncated or extended DER, other algorithms and an EC key whose public point
 * is not its scalar's are rejected; an RSA key without its primes is not encoded.
 * engine level: RSA-2048, P-256 and Ed25519 private keys wrapped and unwrapped, the copy signs for
 * the original public key; the length protocol; the refusals (unextractable, public key, RSA
 * mechanism, WRAP_WITH_TRUSTED, tampered blob, bytes that are no PKCS#8, inconsistent
 * templates); the unwrapped key's attributes; a token copy that survives a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "crypto/crypto.h"
#include "hsm/hsm.h"
#include "hsm_harness.h"

static const uint8_t MSG[] = "the quick brown fox";
#define MSGL (sizeof MSG - 1)

/* ---- crypto: cf_pkey_to_pkcs8 / cf_pkey_from_pkcs8 ------------------------------------------ */
static cf_sig_params sig_params(cf_pkey_type t)
{
    switch (t) {
    case CF_PKEY_RSA: return (cf_sig_params){ .scheme = CF_SIG_RSA_PKCS1, .hash = CF_HASH_SHA256 };
    case CF_PKEY_EC: return (cf_sig_params){ .scheme = CF_SIG_ECDSA };
    default: return (cf_sig_params){ .scheme = CF_SIG_EDDSA };
    }
}

/* A signature by `signer` verifies under `verifier` (the input is a SHA-256 digest for RSA and
 * ECDSA, the message itself for EdDSA). */
static void crypto_sign_verify(cf_pkey *signer, cf_pkey *verifier)
{
    cf_sig_params p = sig_params(cf_pkey_get_type(signer));
    uint8_t in[32], sig[1024];
    size_t inlen = sizeof in, siglen = sizeof sig;
    if (p.scheme == CF_SIG_EDDSA) {
        memcpy(in, MSG, MSGL);
        inlen = MSGL;
    } else {
        assert_int_equal(cf_hash(CF_HASH_SHA256, MSG, MSGL, in, &inlen), CF_OK);
    }
    cf_signer *s = NULL, *v = NULL;
    assert_int_equal(cf_signer_new(signer, &p, true, &s), CF_OK);
    assert_int_equal(cf_signer_sign(s, in, inlen, sig, &siglen), CF_OK);
    assert_int_equal(cf_signer_new(verifier, &p, false, &v), CF_OK);
    assert_int_equal(cf_signer_verify(v, in, inlen, sig, siglen), CF_OK);
    sig[siglen / 2] ^= 1;
    assert_int_equal(cf_signer_verify(v, in, inlen, sig, siglen), CF_E_SIGNATURE_INVALID);
    cf_signer_free(s);
    cf_signer_free(v);
}

/* The public half of k, as a key of its own (from its SubjectPublicKeyInfo). */
static cf_pkey *public_of(const cf_pkey *k)
{
    cf_buf spki = { 0 };
    cf_pkey *pub = NULL;
    assert_int_equal(cf_pkey_spki(k, &spki), CF_OK);
    assert_int_equal(cf_pkey_from_pem(spki.p, spki.len, &pub), CF_OK);
    cf_buf_free(&spki);
    assert_false(cf_pkey_is_private(pub));
    return pub;
}

static void crypto_round_trip(cf_pkey *k)
{
    cf_buf der = { 0 }, again = { 0 };
    cf_pkey *back = NULL;
    assert_int_equal(cf_pkey_to_pkcs8(k, &der), CF_OK);
    assert_true(der.len > 16 && der.p[0] == 0x30);
    assert_int_equal(cf_pkey_from_pkcs8(der.p, der.len, &back), CF_OK);
    assert_true(cf_pkey_is_private(back));
    assert_int_equal(cf_pkey_get_type(back), cf_pkey_get_type(k));
    assert_int_equal(cf_pkey_bits(back), cf_pkey_bits(k));
    /* the same key: signs for the original and the original signs for it */
    crypto_sign_verify(back, k);
    crypto_sign_verify(k, back);
    /* and encodes to the same bytes */
    assert_int_equal(cf_pkey_to_pkcs8(back, &again), CF_OK);
    assert_int_equal(again.len, der.len);
    assert_memory_equal(again.p, der.p, der.len);

    /* every truncation, and a byte too many, are refused */
    cf_pkey *bad = (cf_pkey *)1;
    for (size_t n = 0; n < der.len; n++) {
        assert_int_equal(cf_pkey_from_pkcs8(der.p, n, &bad), CF_E_WRAPPED_KEY_INVALID);
        assert_null(bad);
    }
    uint8_t *longer = malloc(der.len + 1);
    assert_non_null(longer);
    memcpy(longer, der.p, der.len);
    longer[der.len] = 0;
    assert_int_equal(cf_pkey_from_pkcs8(longer, der.len + 1, &bad), CF_E_WRAPPED_KEY_INVALID);
    free(longer);
    /* a public key has no PrivateKeyInfo */
    cf_pkey *pub = public_of(k);
    cf_buf none = { 0 };
    assert_int_equal(cf_pkey_to_pkcs8(pub, &none), CF_E_KEY_TYPE_INCONSISTENT);
    assert_null(none.p);
    cf_pkey_free(pub);

    cf_buf_free(&der);
    cf_buf_free(&again);
    cf_pkey_free(back);
}

static void pkcs8_round_trip(void **state)
{
    (void)state;
    cf_pkey *k = NULL;
    assert_int_equal(cf_pkey_generate_rsa(2048, NULL, 0, &k), CF_OK);
    crypto_round_trip(k);
    cf_pkey_free(k);
    const cf_curve curves[] = { CF_CURVE_P256, CF_CURVE_P384, CF_CURVE_P521, CF_CURVE_ED25519 };
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
        assert_int_equal(cf_pkey_generate_ec(curves[i], &k), CF_OK);
        crypto_round_trip(k);
        cf_pkey_free(k);
    }
}

static void pkcs8_rejects(void **state)
{
    (void)state;
    cf_pkey *k = NULL;
    /* X25519 (RFC 8410 sec. 10.3): a well-formed PrivateKeyInfo of an algorithm coffer lacks */
    static const uint8_t x25519[] = {
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
        0xd4, 0xee, 0x72, 0xdb, 0xf9, 0x13, 0x58, 0x4a, 0xd5, 0xb6, 0xd8, 0xf1, 0xf7, 0x69, 0xf8, 0xad,
        0x3a, 0xfe, 0x7c, 0x28, 0xcb, 0xf1, 0xd4, 0xfb, 0xe0, 0x97, 0xa8, 0x8f, 0x44, 0x75, 0x58, 0x42,
    };
    assert_int_equal(cf_pkey_from_pkcs8(x25519, sizeof x25519, &k), CF_E_WRAPPED_KEY_INVALID);
    assert_null(k);
    /* the same bytes as Ed25519 are a key */
    uint8_t ed[sizeof x25519];
    memcpy(ed, x25519, sizeof ed);
    ed[11] = 0x70;
    assert_int_equal(cf_pkey_from_pkcs8(ed, sizeof ed, &k), CF_OK);
    assert_int_equal(cf_pkey_get_type(k), CF_PKEY_ED25519);
    cf_pkey_free(k);
    k = NULL;
    /* not DER at all, and an empty input */
    static const uint8_t junk[] = "this is no key";
    assert_int_equal(cf_pkey_from_pkcs8(junk, sizeof junk, &k), CF_E_WRAPPED_KEY_INVALID);
    assert_int_equal(cf_pkey_from_pkcs8(junk, 0, &k), CF_E_WRAPPED_KEY_INVALID);
    /* a SubjectPublicKeyInfo is not a PrivateKeyInfo */
    cf_pkey *a = NULL, *b = NULL;
    assert_int_equal(cf_pkey_generate_ec(CF_CURVE_P256, &a), CF_OK);
    assert_int_equal(cf_pkey_generate_ec(CF_CURVE_P256, &b), CF_OK);
    cf_buf spki = { 0 }, da = { 0 }, db = { 0 };
    assert_int_equal(cf_pkey_spki(a, &spki), CF_OK);
    assert_int_equal(cf_pkey_from_pkcs8(spki.p, spki.len, &k), CF_E_WRAPPED_KEY_INVALID);
    /* an EC key carrying another key's public point: the point ends the encoding (RFC 5915) */
    assert_int_equal(cf_pkey_to_pkcs8(a, &da), CF_OK);
    assert_int_equal(cf_pkey_to_pkcs8(b, &db), CF_OK);
    assert_int_equal(da.len, db.len);
    assert_memory_equal(da.p + da.len - 68, "\x03\x42\x00\x04", 4);
    memcpy(da.p + da.len - 64, db.p + db.len - 64, 64);
    assert_int_equal(cf_pkey_from_pkcs8(da.p, da.len, &k), CF_E_WRAPPED_KEY_INVALID);
    assert_null(k);
    cf_buf_free(&spki);
    cf_buf_free(&da);
    cf_buf_free(&db);
    cf_pkey_free(a);
    cf_pkey_free(b);

    /* an RSA key imported from n, e and d alone has no RSAPrivateKey encoding */
    cf_pkey *full = NULL, *bare = NULL;
    cf_rsa_parts r = { 0 };
    assert_int_equal(cf_pkey_generate_rsa(2048, NULL, 0, &full), CF_OK);
    assert_int_equal(cf_pkey_rsa_export(full, true, &r), CF_OK);
    cf_rsa_parts ned = { .n = r.n, .e = r.e, .d = r.d };
    assert_int_equal(cf_pkey_rsa_import(&ned, &bare), CF_OK);
    cf_buf none = { 0 };
    assert_int_equal(cf_pkey_to_pkcs8(bare, &none), CF_E_KEY_NOT_WRAPPABLE);
    assert_null(none.p);
    cf_rsa_parts_free(&r);
    cf_pkey_free(bare);
    cf_pkey_free(full);
}

/* ---- engine: C_WrapKey / C_UnwrapKey of private keys ---------------------------------------- */
/* A temporary directory and conf (default PIN tries), the engine up; the rest: support/hsm_harness.h. */
static int setup(void **state)
{
    (void)state;
    return hsm_env_setup("/tmp/coffer-wrap-test-XXXXXX", 0);
}

/* An AES-256 key encryption key (session object, sensitive, unextractable). */
static CK_OBJECT_HANDLE make_kek(CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    uint8_t value[32];
    for (int i = 0; i < 32; i++)
        value[i] = (uint8_t)(0x40 + i);
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_VALUE, value, 32 } };
    CK_OBJECT_HANDLE h;
    assert_int_equal(hsm_create_object(s, t, 3, &h), CF_OK);
    return h;
}

typedef enum { K_RSA, K_P256, K_ED25519 } key_kind;

static const uint8_t P256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t P384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t ED25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

static CK_KEY_TYPE key_type(key_kind kind)
{
    return kind == K_RSA ? CKK_RSA : kind == K_P256 ? CKK_EC : CKK_EC_EDWARDS;
}

static CK_MECHANISM_TYPE sign_mech(key_kind kind)
{
    return kind == K_RSA ? CKM_SHA256_RSA_PKCS : kind == K_P256 ? CKM_ECDSA_SHA256 : CKM_EDDSA;
}

/* A session key pair; the private half as the flags say. */
static void gen_pair(CK_SESSION_HANDLE s, key_kind kind, bool sensitive, bool extractable, CK_OBJECT_HANDLE *pub,
                     CK_OBJECT_HANDLE *priv)
{
    CK_ULONG bits = 2048;
    CK_BBOOL sens = sensitive, ext = extractable;
    CK_ATTRIBUTE pt[1];
    CK_MECHANISM m = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
    switch (kind) {
    case K_RSA:
        pt[0] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof bits };
        break;
    case K_P256:
        pt[0] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)P256, sizeof P256 };
        m.mechanism = CKM_EC_KEY_PAIR_GEN;
        break;
    case K_ED25519:
        pt[0] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)ED25519, sizeof ED25519 };
        m.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        break;
    }
    CK_ATTRIBUTE st[] = { { CKA_SENSITIVE, &sens, 1 }, { CKA_EXTRACTABLE, &ext, 1 } };
    assert_int_equal(hsm_generate_key_pair(s, &m, pt, 1, st, 2, pub, priv), CF_OK);
}

/* priv signs MSG, pub verifies it (and not a changed signature). */
static void sign_verify(CK_SESSION_HANDLE s, key_kind kind, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
    CK_MECHANISM m = { sign_mech(kind), NULL, 0 };
    uint8_t sig[512];
    CK_ULONG len = sizeof sig;
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, priv), CF_OK);
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_SIGN, MSG, MSGL, sig, &len), CF_OK);
    assert_int_equal(hsm_op_init(s, HSM_OP_VERIFY, &m, pub), CF_OK);
    assert_int_equal(hsm_verify(s, MSG, MSGL, sig, len), CF_OK);
    sig[len / 2] ^= 1;
    assert_int_equal(hsm_op_init(s, HSM_OP_VERIFY, &m, pub), CF_OK);
    assert_int_equal(hsm_verify(s, MSG, MSGL, sig, len), CF_E_SIGNATURE_INVALID);
}

/* Wraps key under kek: checks the length protocol and returns the blob (malloc'd) and its size. */
static uint8_t *wrap(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mt, CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE key,
                     CK_ULONG *len)
{
    CK_MECHANISM m = { mt, NULL, 0 };
    CK_ULONG need = 0;
    assert_int_equal(hsm_wrap_key(s, &m, kek, key, NULL, &need), CF_OK);
    assert_true(need > 8 && need % 8 == 0);
    uint8_t *out = malloc(need + 16);
    assert_non_null(out);
    CK_ULONG small = need - 1;
    assert_int_equal(hsm_wrap_key(s, &m, kek, key, out, &small), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(small, need);
    CK_ULONG got = need + 16;
    assert_int_equal(hsm_wrap_key(s, &m, kek, key, out, &got), CF_OK);
    assert_int_equal(got, need);   /* the query gave the exact length */
    *len = got;
    return out;
}

static cf_err unwrap_as(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mt, CK_OBJECT_HANDLE kek, const uint8_t *blob,
                        CK_ULONG len, CK_KEY_TYPE kt, CK_OBJECT_HANDLE *out)
{
    CK_MECHANISM m = { mt, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE ut[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_SIGN, &t, 1 } };
    return hsm_unwrap_key(s, &m, kek, blob, len, ut, 3, out);
}

static void get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, uint8_t *buf, CK_ULONG *len)
{
    CK_ATTRIBUTE a = { type, buf, *len };
    assert_int_equal(hsm_get_attribute_value(s, o, &a, 1), CF_OK);
    *len = a.ulValueLen;
}

static bool get_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = 0xff;
    CK_ULONG len = 1;
    get_attr(s, o, type, &v, &len);
    assert_true(v == CK_TRUE || v == CK_FALSE);
    return v == CK_TRUE;
}

/* The public attributes the unwrapped key shares with the original pair. */
static void same_public_parts(CK_SESSION_HANDLE s, key_kind kind, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE un)
{
    uint8_t a[1200], b[1200];
    CK_ULONG la = sizeof a, lb = sizeof b;
    get_attr(s, pub, CKA_PUBLIC_KEY_INFO, a, &la);
    get_attr(s, un, CKA_PUBLIC_KEY_INFO, b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    la = sizeof a;
    lb = sizeof b;
    get_attr(s, pub, kind == K_RSA ? CKA_MODULUS : CKA_EC_POINT, a, &la);
    get_attr(s, un, kind == K_RSA ? CKA_MODULUS : CKA_EC_POINT, b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
}

static void wrap_one(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE kek, key_kind kind)
{
    CK_OBJECT_HANDLE pub, priv, un;
    gen_pair(s, kind, true, true, &pub, &priv);
    CK_ULONG len = 0;
    uint8_t *blob = wrap(s, CKM_AES_KEY_WRAP_PAD, kek, priv, &len);
    assert_int_equal(unwrap_as(s, CKM_AES_KEY_WRAP_PAD, kek, blob, len, key_type(kind), &un), CF_OK);
    /* the copy signs for the original public key */
    sign_verify(s, kind, un, pub);
    same_public_parts(s, kind, pub, un);

    /* made by unwrapping: not local, no generation mechanism, sensitive from birth by default */
    assert_false(get_bool(s, un, CKA_LOCAL));
    CK_ULONG mech = 0, ml = sizeof mech;
    get_attr(s, un, CKA_KEY_GEN_MECHANISM, (uint8_t *)&mech, &ml);
    assert_int_equal(mech, CK_UNAVAILABLE_INFORMATION);
    assert_true(get_bool(s, un, CKA_SENSITIVE));
    assert_true(get_bool(s, un, CKA_ALWAYS_SENSITIVE));
    assert_false(get_bool(s, un, CKA_EXTRACTABLE));
    assert_true(get_bool(s, un, CKA_NEVER_EXTRACTABLE));
    assert_true(get_bool(s, un, CKA_PRIVATE));
    CK_KEY_TYPE kt = 0;
    CK_ULONG kl = sizeof kt;
    get_attr(s, un, CKA_KEY_TYPE, (uint8_t *)&kt, &kl);
    assert_int_equal(kt, key_type(kind));
    /* key material stays inside */
    uint8_t secret[600];
    CK_ATTRIBUTE mat = { kind == K_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, secret, sizeof secret };
    assert_int_equal(hsm_get_attribute_value(s, un, &mat, 1), CF_E_ATTRIBUTE_SENSITIVE);
    assert_int_equal(mat.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    /* and the copy, being unextractable, cannot be wrapped again */
    CK_MECHANISM kwp = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    CK_ULONG wl = 0;
    assert_int_equal(hsm_wrap_key(s, &kwp, kek, un, NULL, &wl), CF_E_KEY_UNEXTRACTABLE);

    /* a template naming another key type */
    CK_OBJECT_HANDLE h = 0;
    assert_int_equal(unwrap_as(s, CKM_AES_KEY_WRAP_PAD, kek, blob, len, kind == K_RSA ? CKK_EC : CKK_RSA, &h),
                     CF_E_TEMPLATE_INCONSISTENT);
    free(blob);
}

static void wrap_private_keys(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = user_session(make_token("wrap"));
    CK_OBJECT_HANDLE kek = make_kek(s);
    wrap_one(s, kek, K_RSA);
    wrap_one(s, kek, K_P256);
    wrap_one(s, kek, K_ED25519);
}

/* With SENSITIVE false the copy reveals the same key material as the original. */
static void unwrapped_material_matches(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = user_session(make_token("material"));
    CK_OBJECT_HANDLE kek = make_kek(s);
    CK_OBJECT_HANDLE pub, priv, un;
    gen_pair(s, K_P256, false, true, &pub, &priv);
    CK_ULONG len = 0;
    uint8_t *blob = wrap(s, CKM_AES_KEY_WRAP_PAD, kek, priv, &len);
    CK_MECHANISM m = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    /* the key type may be left to the key; the curve may be named, in agreement */
    CK_ATTRIBUTE ut[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_SENSITIVE, &f, 1 }, { CKA_EXTRACTABLE, &t, 1 },
                          { CKA_EC_PARAMS, (void *)P256, sizeof P256 } };
    assert_int_equal(hsm_unwrap_key(s, &m, kek, blob, len, ut, 4, &un), CF_OK);
    uint8_t a[80], b[80];
    CK_ULONG la = sizeof a, lb = sizeof b;
    get_attr(s, priv, CKA_VALUE, a, &la);
    get_attr(s, un, CKA_VALUE, b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_false(get_bool(s, un, CKA_ALWAYS_SENSITIVE));
    assert_false(get_bool(s, un, CKA_NEVER_EXTRACTABLE));
    sign_verify(s, K_P256, un, pub);
    /* a curve that is not the key's */
    ut[3].pValue = (void *)P384;
    ut[3].ulValueLen = sizeof P384;
    assert_int_equal(hsm_unwrap_key(s, &m, kek, blob, len, ut, 4, &un), CF_E_TEMPLATE_INCONSISTENT);
    /* the caller may not supply what the key defines */
    uint8_t modulus[8] = { 1 };
    CK_KEY_TYPE rsa = CKK_RSA;
    CK_ATTRIBUTE mt[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &rsa, sizeof rsa },
                          { CKA_MODULUS, modulus, sizeof modulus } };
    CK_ULONG rlen = 0;
    CK_OBJECT_HANDLE rpub, rpriv;
    gen_pair(s, K_RSA, true, true, &rpub, &rpriv);
    uint8_t *rblob = wrap(s, CKM_AES_KEY_WRAP_PAD, kek, rpriv, &rlen);
    assert_int_equal(hsm_unwrap_key(s, &m, kek, rblob, rlen, mt, 3, &un), CF_E_TEMPLATE_INCONSISTENT);
    free(rblob);
    free(blob);
}

static void wrap_refusals(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = user_session(make_token("refuse"));
    CK_OBJECT_HANDLE kek = make_kek(s);
    CK_MECHANISM kwp = { CKM_AES_KEY_WRAP_PAD, NULL, 0 }, kw = { CKM_AES_KEY_WRAP, NULL, 0 };
    uint8_t out[4096];
    CK_ULONG len = sizeof out;
    CK_OBJECT_HANDLE pub, priv, epub, epriv, rpub, rpriv;

    /* an unextractable private key */
    gen_pair(s, K_P256, true, false, &pub, &priv);
    assert_int_equal(hsm_wrap_key(s, &kwp, kek, priv, out, &len), CF_E_KEY_UNEXTRACTABLE);
    len = 0;
    assert_int_equal(hsm_wrap_key(s, &kwp, kek, priv, NULL, &len), CF_E_KEY_UNEXTRACTABLE);
    /* a public key */
    len = sizeof out;
    assert_int_equal(hsm_wrap_key(s, &kwp, kek, pub, out, &len), CF_E_KEY_NOT_WRAPPABLE);

    /* RFC 3394 wraps whole 64-bit blocks only: the 48-byte Ed25519 PrivateKeyInfo fits, a P-256
     * one (138 bytes) does not */
    gen_pair(s, K_ED25519, true, true, &epub, &epriv);
    CK_ULONG elen = 0;
    uint8_t *eblob = wrap(s, CKM_AES_KEY_WRAP, kek, epriv, &elen);
    assert_int_equal(elen, 48 + 8);
    CK_OBJECT_HANDLE un;
    assert_int_equal(unwrap_as(s, CKM_AES_KEY_WRAP, kek, eblob, elen, CKK_EC_EDWARDS, &un), CF_OK);
    sign_verify(s, K_ED25519, un, epub);
    /* a tampered blob fails the integrity check, under both wrap mechanisms (RFC 5649 failures make
     * OpenSSL 3.0 wipe the whole input length of its output: keywrap.c gives it room for that) */
    eblob[elen / 2] ^= 0x10;
    assert_int_equal(unwrap_as(s, CKM_AES_KEY_WRAP, kek, eblob, elen, CKK_EC_EDWARDS, &un), CF_E_WRAPPED_KEY_INVALID);
    free(eblob);
    eblob = wrap(s, CKM_AES_KEY_WRAP_PAD, kek, epriv, &elen);
    eblob[elen / 2] ^= 0x10;
    assert_int_equal(unwrap_as(s, CKM_AES_KEY_WRAP_PAD, kek, eblob, elen, CKK_EC_EDWARDS, &un),
                     CF_E_WRAPPED_KEY_INVALID);
    free(eblob);
    gen_pair(s, K_P256, true, true, &pub, &priv);
    len = sizeof out;
    assert_int_equal(hsm_wrap_key(s, &kw, kek, priv, out, &len), CF_E_KEY_SIZE_RANGE);

    /* private keys travel under AES key wrap only, not RSA encryption */
    gen_pair(s, K_RSA, true, true, &rpub, &rpriv);
    CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
    len = sizeof out;
    assert_int_equal(hsm_wrap_key(s, &rsa, rpub, epriv, out, &len), CF_E_KEY_NOT_WRAPPABLE);

    /* WRAP_WITH_TRUSTED: only under a trusted key, which this KEK is not */
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE wwt = { CKA_WRAP_WITH_TRUSTED, &t, 1 };
    assert_int_equal(hsm_set_attribute_value(s, priv, &wwt, 1), CF_OK);
    len = sizeof out;
    assert_int_equal(hsm_wrap_key(s, &kwp, kek, priv, out, &len), CF_E_KEY_NOT_WRAPPABLE);

    /* a valid wrap of bytes that are no PrivateKeyInfo: a secret key's value */
    CK_OBJECT_CLASS sc = CKO_SECRET_KEY;
    CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
    CK_BBOOL f = CK_FALSE;
    uint8_t value[40];
    memset(value, 0x30, sizeof value);
    CK_ATTRIBUTE st[] = { { CKA_CLASS, &sc, sizeof sc }, { CKA_KEY_TYPE, &gk, sizeof gk }, { CKA_SENSITIVE, &f, 1 },
                          { CKA_EXTRACTABLE, &t, 1 }, { CKA_VALUE, value, sizeof value } };
    CK_OBJECT_HANDLE sec;
    assert_int_equal(hsm_create_object(s, st, 5, &sec), CF_OK);
    CK_ULONG slen = 0;
    uint8_t *sblob = wrap(s, CKM_AES_KEY_WRAP_PAD, kek, sec, &slen);
    assert_int_equal(unwrap_as(s, CKM_AES_KEY_WRAP_PAD, kek, sblob, slen, CKK_RSA, &un), CF_E_WRAPPED_KEY_INVALID);
    free(sblob);
}

/* A token copy is stored sealed and comes back after a restart, still signing. */
static void token_copy_survives_restart(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("persist");
    CK_SESSION_HANDLE s = user_session(slot);
    CK_OBJECT_HANDLE kek = make_kek(s);
    CK_OBJECT_HANDLE pub, priv, un;
    gen_pair(s, K_RSA, true, true, &pub, &priv);
    uint8_t spki[600];
    CK_ULONG spl = sizeof spki;
    get_attr(s, pub, CKA_PUBLIC_KEY_INFO, spki, &spl);
    CK_ULONG len = 0;
    uint8_t *blob = wrap(s, CKM_AES_KEY_WRAP_PAD, kek, priv, &len);
    CK_MECHANISM m = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL t = CK_TRUE;
    static const char label[] = "unwrapped";
    CK_ATTRIBUTE ut[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_TOKEN, &t, 1 },
                          { CKA_LABEL, (void *)label, sizeof label - 1 } };
    assert_int_equal(hsm_unwrap_key(s, &m, kek, blob, len, ut, 3, &un), CF_OK);
    free(blob);

    assert_int_equal(hsm_finalize(), CF_OK);
    init_engine();
    s = user_session(slot);
    CK_ATTRIBUTE find = { CKA_LABEL, (void *)label, sizeof label - 1 };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG nfound = 0;
    assert_int_equal(hsm_find_objects_init(s, &find, 1), CF_OK);
    assert_int_equal(hsm_find_objects(s, found, 2, &nfound), CF_OK);
    assert_int_equal(hsm_find_objects_final(s), CF_OK);
    assert_int_equal(nfound, 1);
    /* the original pair was a session object: the copy still names its public key, and signs
     * for a public key object made from its modulus and exponent */
    uint8_t spki2[600];
    CK_ULONG spl2 = sizeof spki2;
    get_attr(s, found[0], CKA_PUBLIC_KEY_INFO, spki2, &spl2);
    assert_int_equal(spl, spl2);
    assert_memory_equal(spki, spki2, spl);
    CK_OBJECT_HANDLE pub2;
    uint8_t n[512], e[8];
    CK_ULONG nl = sizeof n, el = sizeof e;
    get_attr(s, found[0], CKA_MODULUS, n, &nl);
    get_attr(s, found[0], CKA_PUBLIC_EXPONENT, e, &el);
    assert_int_equal(nl, 256);
    CK_OBJECT_CLASS pc = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_ATTRIBUTE pt[] = { { CKA_CLASS, &pc, sizeof pc }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_MODULUS, n, nl },
                          { CKA_PUBLIC_EXPONENT, e, el } };
    assert_int_equal(hsm_create_object(s, pt, 4, &pub2), CF_OK);
    sign_verify(s, K_RSA, found[0], pub2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pkcs8_round_trip),
        cmocka_unit_test(pkcs8_rejects),
        cmocka_unit_test_setup_teardown(wrap_private_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(unwrapped_material_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(wrap_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(token_copy_survives_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
