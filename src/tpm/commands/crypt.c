/* crypt.c: Part 3 sections 14.2 (RSA_Encrypt), 14.3 (RSA_Decrypt), 14.4 (ECDH_KeyGen),
 * 14.5 (ECDH_ZGen), 15.2 (EncryptDecrypt) and 15.3 (EncryptDecrypt2).
 *
 * The symmetric modes are run block by block over AES-ECB so that ivOut is exactly what the
 * reference TPM's CryptSymmetricEncrypt/Decrypt leaves in the IV (the chaining value a caller
 * passes back as ivIn to continue): CBC the last ciphertext block, CFB the last ciphertext block
 * (a partial last block zero-filled), OFB the last keystream block, CTR the counter after the
 * last block used, ECB nothing. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define BLOCK 16

/* ---- RSA ------------------------------------------------------------------------------------ */
/* CryptRsaSelectScheme: the key's scheme, or the caller's when the key has none; both given, they
 * must agree (TPM_RC_SCHEME, parameter 2). */
static tpm_rc rsa_scheme(const TPMT_PUBLIC *pub, const TPMT_RSA_DECRYPT *in, TPMT_RSA_DECRYPT *out)
{
    const TPMT_RSA_SCHEME *k = &pub->parameters.rsaDetail.scheme;
    TPM_ENSURE(in->scheme == TPM2_ALG_NULL || in->scheme == TPM2_ALG_RSAES || in->scheme == TPM2_ALG_OAEP,
               tpm_rc_p(TPM2_RC_VALUE, 2));
    if (k->scheme == TPM2_ALG_NULL) {
        *out = *in;
    } else if (in->scheme == TPM2_ALG_NULL) {
        memset(out, 0, sizeof *out);
        out->scheme = k->scheme;
        out->details.oaep.hashAlg = k->details.oaep.hashAlg;
    } else {
        TPM_ENSURE(in->scheme == k->scheme, tpm_rc_p(TPM2_RC_SCHEME, 2));
        TPM_ENSURE(in->scheme != TPM2_ALG_OAEP || in->details.oaep.hashAlg == k->details.oaep.hashAlg,
                   tpm_rc_p(TPM2_RC_SCHEME, 2));
        *out = *in;
    }
    TPM_ENSURE(out->scheme == TPM2_ALG_NULL || out->scheme == TPM2_ALG_RSAES || out->scheme == TPM2_ALG_OAEP,
               tpm_rc_p(TPM2_RC_SCHEME, 2));
    if (out->scheme == TPM2_ALG_OAEP)
        TPM_ENSURE(tpm_pcr_bank_index(out->details.oaep.hashAlg) >= 0, tpm_rc_p(TPM2_RC_HASH, 2));
    return TPM2_RC_SUCCESS;
}

/* IsLabelProperlyFormatted: empty, or NUL-terminated (the NUL is part of the OAEP label). */
static bool label_ok(const TPM2B_DATA *l) { return l->size == 0 || l->buffer[l->size - 1] == 0; }

static cf_rsa_enc_params rsa_params(const TPMT_RSA_DECRYPT *s, const TPM2B_DATA *label)
{
    cf_rsa_enc_params p;
    memset(&p, 0, sizeof p);
    switch (s->scheme) {
    case TPM2_ALG_OAEP:
        p.mode = CF_RSA_ENC_OAEP;
        p.hash = p.mgf_hash = tpm_hash_alg(s->details.oaep.hashAlg);
        p.label = label->size ? label->buffer : NULL;
        p.label_len = label->size;
        break;
    case TPM2_ALG_RSAES: p.mode = CF_RSA_ENC_PKCS1; break;
    default: p.mode = CF_RSA_ENC_RAW; break;   /* TPM_ALG_NULL: the value itself, below the modulus */
    }
    return p;
}

/* Shared prologue: an RSA key (TPM_RC_KEY), the attribute rule (TPM_RC_ATTRIBUTES), the scheme and
 * the label. */
static tpm_rc rsa_prepare(const tpm_object *o, bool decrypt, const TPMT_RSA_DECRYPT *in, const TPM2B_DATA *label,
                          TPMT_RSA_DECRYPT *scheme)
{
    const TPMT_PUBLIC *pub = &o->pub;
    TPM_ENSURE(!tpm_object_is_sequence(o) && pub->type == TPM2_ALG_RSA && o->key, tpm_rc_h(TPM2_RC_KEY, 1));
    TPMA_OBJECT a = pub->objectAttributes;
    TPM_ENSURE((a & TPMA_OBJECT_DECRYPT) && !(decrypt && (a & TPMA_OBJECT_RESTRICTED)), tpm_rc_h(TPM2_RC_ATTRIBUTES, 1));
    if (decrypt) {
        TPM_TRY(rsa_scheme(pub, in, scheme));
        TPM_ENSURE(label_ok(label), tpm_rc_p(TPM2_RC_VALUE, 3));
    } else {
        TPM_ENSURE(label_ok(label), tpm_rc_p(TPM2_RC_VALUE, 3));
        TPM_TRY(rsa_scheme(pub, in, scheme));
    }
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_rsa_encrypt)
{
    TPM2B_PUBLIC_KEY_RSA msg;
    TPMT_RSA_DECRYPT in_scheme, scheme;
    TPM2B_DATA label;
    TPM_GET(in, TPM2B_PUBLIC_KEY_RSA, &msg, 1);
    TPM_GET(in, TPMT_RSA_DECRYPT, &in_scheme, 2);
    TPM_GET(in, TPM2B_DATA, &label, 3);
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    TPM_TRY(rsa_prepare(o, false, &in_scheme, &label, &scheme));

    cf_rsa_enc_params p = rsa_params(&scheme, &label);
    TPM2B_PUBLIC_KEY_RSA ct = { .size = 0 };
    size_t len = sizeof ct.buffer;
    cf_err e = cf_rsa_encrypt(o->key, &p, msg.buffer, msg.size, ct.buffer, &len);
    /* too long for the padding, or (no padding) not below the modulus: TPM_RC_VALUE */
    TPM_ENSURE(e != CF_E_DATA_LEN_RANGE && e != CF_E_DATA_INVALID, tpm_rc_p(TPM2_RC_VALUE, 1));
    TPM_ENSURE(e == CF_OK, tpm_rc_from_cf(e));
    ct.size = (uint16_t)len;
    TPM_PUT(out, TPM2B_PUBLIC_KEY_RSA, &ct);
    cf_wipe(&msg, sizeof msg);
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_rsa_decrypt)
{
    TPM2B_PUBLIC_KEY_RSA ct;
    TPMT_RSA_DECRYPT in_scheme, scheme;
    TPM2B_DATA label;
    TPM_GET(in, TPM2B_PUBLIC_KEY_RSA, &ct, 1);
    TPM_GET(in, TPMT_RSA_DECRYPT, &in_scheme, 2);
    TPM_GET(in, TPM2B_DATA, &label, 3);
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    TPM_TRY(rsa_prepare(o, true, &in_scheme, &label, &scheme));
    TPM_ENSURE(cf_pkey_is_private(o->key), tpm_rc_h(TPM2_RC_KEY, 1));
    TPM_ENSURE(ct.size == o->pub.parameters.rsaDetail.keyBits / 8u, tpm_rc_p(TPM2_RC_SIZE, 1));

    cf_rsa_enc_params p = rsa_params(&scheme, &label);
    TPM2B_PUBLIC_KEY_RSA msg = { .size = 0 };
    size_t len = sizeof msg.buffer;
    cf_err e = cf_rsa_decrypt(o->key, &p, ct.buffer, ct.size, msg.buffer, &len);
    /* bad padding, or a value not below the modulus: TPM_RC_VALUE (CryptRsaDecrypt) */
    TPM_ENSURE(e == CF_OK || e == CF_E_NOMEM, tpm_rc_p(TPM2_RC_VALUE, 1));
    TPM_ENSURE(e == CF_OK, tpm_rc_from_cf(e));
    msg.size = (uint16_t)len;
    TPM_PUT(out, TPM2B_PUBLIC_KEY_RSA, &msg);
    cf_wipe(&msg, sizeof msg);
    return TPM2_RC_SUCCESS;
}

/* ---- ECDH ----------------------------------------------------------------------------------- */
static cf_curve ecc_curve(TPM2_ECC_CURVE c)
{
    return c == TPM2_ECC_NIST_P256 ? CF_CURVE_P256 : c == TPM2_ECC_NIST_P384 ? CF_CURVE_P384 : CF_CURVE_NONE;
}

/* 04 || X || Y with both coordinates left-padded to the field length; false when one is longer. */
static bool point_encode(const TPMS_ECC_POINT *p, size_t fl, uint8_t *out)
{
    if (p->x.size > fl || p->y.size > fl)
        return false;
    out[0] = 0x04;
    memset(out + 1, 0, 2 * fl);
    memcpy(out + 1 + fl - p->x.size, p->x.buffer, p->x.size);
    memcpy(out + 1 + 2 * fl - p->y.size, p->y.buffer, p->y.size);
    return true;
}

static void point_decode(const uint8_t *raw, size_t fl, TPM2B_ECC_POINT *out)
{
    memset(out, 0, sizeof *out);
    out->point.x.size = out->point.y.size = (uint16_t)fl;
    memcpy(out->point.x.buffer, raw + 1, fl);
    memcpy(out->point.y.buffer, raw + 1 + fl, fl);
}

/* An unrestricted ECC decryption key whose scheme allows ECDH (bad: `bad` with handle 1). */
static tpm_rc ecdh_key(const tpm_object *o, tpm_rc bad_attrs, bool check_scheme)
{
    const TPMT_PUBLIC *pub = &o->pub;
    TPM_ENSURE(!tpm_object_is_sequence(o) && pub->type == TPM2_ALG_ECC && o->key, tpm_rc_h(TPM2_RC_KEY, 1));
    TPMA_OBJECT a = pub->objectAttributes;
    TPM_ENSURE((a & TPMA_OBJECT_DECRYPT) && !(a & TPMA_OBJECT_RESTRICTED), tpm_rc_h(bad_attrs, 1));
    if (check_scheme) {
        TPM2_ALG_ID s = pub->parameters.eccDetail.scheme.scheme;
        TPM_ENSURE(s == TPM2_ALG_NULL || s == TPM2_ALG_ECDH, tpm_rc_h(TPM2_RC_SCHEME, 1));
    }
    return TPM2_RC_SUCCESS;
}

TPM_HANDLER(tpm_cc_ecdh_keygen)
{
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    TPM_TRY(ecdh_key(o, TPM2_RC_KEY, false));
    cf_curve curve = ecc_curve(o->pub.parameters.eccDetail.curveID);
    size_t fl = cf_curve_field_len(curve);
    uint8_t qs[1 + 2 * 48];
    TPM_ENSURE(curve != CF_CURVE_NONE && point_encode(&o->pub.unique.ecc, fl, qs), tpm_rc_h(TPM2_RC_KEY, 1));

    /* an ephemeral key (d_e, Q_e); zPoint = d_e * Q_s */
    cf_pkey *eph = NULL;
    cf_buf qe = { 0 }, z = { 0 };
    tpm_rc rc = TPM2_RC_SUCCESS;
    cf_err e = cf_pkey_generate_ec(curve, &eph);
    if (e == CF_OK)
        e = cf_pkey_ec_export(eph, false, NULL, &qe, NULL);
    if (e == CF_OK && qe.len != 1 + 2 * fl)
        e = CF_E_INTERNAL;
    if (e == CF_OK)
        e = cf_ec_point_mul(eph, qs, 1 + 2 * fl, &z);
    if (e == CF_OK) {
        TPM2B_ECC_POINT zp, pp;
        point_decode(z.p, fl, &zp);
        point_decode(qe.p, fl, &pp);
        TPM_PUT(out, TPM2B_ECC_POINT, &zp);
        TPM_PUT(out, TPM2B_ECC_POINT, &pp);
        cf_wipe(&zp, sizeof zp);
    } else {
        rc = e == CF_E_MECHANISM_PARAM_INVALID ? tpm_rc_h(TPM2_RC_KEY, 1)
             : e == CF_E_DATA_INVALID ? TPM2_RC_NO_RESULT : tpm_rc_from_cf(e);
    }
    cf_buf_free(&z);
    cf_buf_free(&qe);
    cf_pkey_free(eph);
    return rc;
}

TPM_HANDLER(tpm_cc_ecdh_zgen)
{
    TPM2B_ECC_POINT inp = { .size = 0 };   /* libtss2-mu wants a zero size in a sized struct */
    TPM_GET(in, TPM2B_ECC_POINT, &inp, 1);
    TPM_TRY(tpm_params_done(in));
    tpm_object *o = c->objects[0];
    TPM_TRY(ecdh_key(o, TPM2_RC_ATTRIBUTES, true));
    TPM_ENSURE(cf_pkey_is_private(o->key), tpm_rc_h(TPM2_RC_KEY, 1));
    cf_curve curve = ecc_curve(o->pub.parameters.eccDetail.curveID);
    size_t fl = cf_curve_field_len(curve);
    uint8_t q[1 + 2 * 48];
    TPM_ENSURE(curve != CF_CURVE_NONE, tpm_rc_h(TPM2_RC_KEY, 1));
    TPM_ENSURE(point_encode(&inp.point, fl, q), tpm_rc_p(TPM2_RC_ECC_POINT, 1));
    cf_buf z = { 0 };
    cf_err e = cf_ec_point_mul(o->key, q, 1 + 2 * fl, &z);
    TPM_ENSURE(e != CF_E_MECHANISM_PARAM_INVALID, tpm_rc_p(TPM2_RC_ECC_POINT, 1));
    TPM_ENSURE(e != CF_E_DATA_INVALID, TPM2_RC_NO_RESULT);
    TPM_ENSURE(e == CF_OK, tpm_rc_from_cf(e));
    TPM2B_ECC_POINT zp;
    point_decode(z.p, fl, &zp);
    cf_buf_free(&z);
    TPM_PUT(out, TPM2B_ECC_POINT, &zp);
    cf_wipe(&zp, sizeof zp);
    return TPM2_RC_SUCCESS;
}

/* ---- symmetric ------------------------------------------------------------------------------ */
static bool mode_ok(TPM2_ALG_ID m)
{
    return m == TPM2_ALG_CFB || m == TPM2_ALG_CBC || m == TPM2_ALG_CTR || m == TPM2_ALG_OFB || m == TPM2_ALG_ECB;
}

/* One AES block through an ECB context (no padding: 16 bytes in, 16 out). */
static cf_err block(cf_cipher *ecb, const uint8_t *in, uint8_t *out)
{
    size_t n = BLOCK;
    cf_err e = cf_cipher_update(ecb, in, BLOCK, out, &n);
    return e == CF_OK && n != BLOCK ? CF_E_INTERNAL : e;
}

/* Runs `mode` over n bytes (whole blocks for ECB/CBC, checked by the caller), updating iv as the
 * reference TPM does (see the header). */
static cf_err sym_run(TPM2_ALG_ID mode, bool decrypt, const uint8_t *key, size_t keylen, uint8_t iv[BLOCK],
                      const uint8_t *in, size_t n, uint8_t *out)
{
    bool inverse = decrypt && (mode == TPM2_ALG_ECB || mode == TPM2_ALG_CBC);
    cf_cipher *ecb = NULL;
    cf_err e = cf_cipher_new(CF_AES_ECB, !inverse, key, keylen, NULL, 0, NULL, 0, 0, &ecb);
    uint8_t tmp[BLOCK], ks[BLOCK];
    for (size_t off = 0; e == CF_OK && off < n; off += BLOCK) {
        size_t k = n - off < BLOCK ? n - off : BLOCK;
        const uint8_t *src = in + off;
        uint8_t *dst = out + off;
        switch (mode) {
        case TPM2_ALG_ECB:
            e = block(ecb, src, dst);
            break;
        case TPM2_ALG_CBC:
            if (decrypt) {
                memcpy(tmp, src, BLOCK);
                e = block(ecb, src, dst);
                for (size_t i = 0; i < BLOCK; i++)
                    dst[i] ^= iv[i];
                memcpy(iv, tmp, BLOCK);
            } else {
                for (size_t i = 0; i < BLOCK; i++)
                    tmp[i] = src[i] ^ iv[i];
                e = block(ecb, tmp, dst);
                memcpy(iv, dst, BLOCK);
            }
            break;
        case TPM2_ALG_CFB:
            e = block(ecb, iv, ks);
            for (size_t i = 0; i < k; i++) {
                uint8_t ctext = decrypt ? src[i] : (uint8_t)(src[i] ^ ks[i]);
                dst[i] = (uint8_t)(src[i] ^ ks[i]);
                iv[i] = ctext;
            }
            for (size_t i = k; i < BLOCK; i++)
                iv[i] = 0;   /* a partial block: the rest of the IV is zero (CryptSymmetricEncrypt) */
            break;
        case TPM2_ALG_OFB:
            e = block(ecb, iv, iv);
            for (size_t i = 0; i < k; i++)
                dst[i] = (uint8_t)(src[i] ^ iv[i]);
            break;
        case TPM2_ALG_CTR:
            e = block(ecb, iv, ks);
            for (int i = BLOCK - 1; i >= 0; i--)
                if (++iv[i] != 0)
                    break;
            for (size_t i = 0; i < k; i++)
                dst[i] = (uint8_t)(src[i] ^ ks[i]);
            break;
        default:
            e = CF_E_MECHANISM_INVALID;
            break;
        }
    }
    cf_wipe(tmp, sizeof tmp);
    cf_wipe(ks, sizeof ks);
    cf_cipher_free(ecb);
    return e;
}

/* EncryptDecryptShared of the reference TPM; pn_* are the parameter numbers of this variant. */
static tpm_rc encrypt_decrypt(tpm_cmd *c, cf_writer *out, TPMI_YES_NO dec, TPMI_ALG_SYM_MODE mode_in,
                              const TPM2B_IV *iv_in, const TPM2B_MAX_BUFFER *data, unsigned pn_dec,
                              unsigned pn_mode, unsigned pn_iv, unsigned pn_data)
{
    tpm_object *o = c->objects[0];
    const TPMT_PUBLIC *pub = &o->pub;
    TPM_ENSURE(dec == TPM2_YES || dec == TPM2_NO, tpm_rc_p(TPM2_RC_VALUE, pn_dec));
    TPM_ENSURE(mode_in == TPM2_ALG_NULL || mode_ok(mode_in), tpm_rc_p(TPM2_RC_MODE, pn_mode));
    TPM_ENSURE(data->size <= TPM_INPUT_BUFFER, tpm_rc_p(TPM2_RC_SIZE, pn_data));
    TPM_ENSURE(!tpm_object_is_sequence(o) && pub->type == TPM2_ALG_SYMCIPHER, tpm_rc_h(TPM2_RC_KEY, 1));
    TPMA_OBJECT a = pub->objectAttributes;
    bool ok = !(a & TPMA_OBJECT_RESTRICTED) && (dec == TPM2_YES ? (a & TPMA_OBJECT_DECRYPT) : (a & TPMA_OBJECT_SIGN_ENCRYPT));
    TPM_ENSURE(ok, tpm_rc_h(TPM2_RC_ATTRIBUTES, 1));
    TPM2_ALG_ID mode = pub->parameters.symDetail.sym.mode.sym;
    TPM_ENSURE(mode == TPM2_ALG_NULL || mode_ok(mode), tpm_rc_h(TPM2_RC_MODE, 1));
    if (mode == TPM2_ALG_NULL)
        mode = mode_in;
    else
        TPM_ENSURE(mode_in == TPM2_ALG_NULL || mode_in == mode, tpm_rc_p(TPM2_RC_MODE, pn_mode));
    TPM_ENSURE(mode_ok(mode), tpm_rc_p(TPM2_RC_MODE, pn_mode));
    TPM_ENSURE(mode == TPM2_ALG_ECB ? iv_in->size == 0 : iv_in->size == BLOCK, tpm_rc_p(TPM2_RC_SIZE, pn_iv));
    TPM_ENSURE(!(mode == TPM2_ALG_ECB || mode == TPM2_ALG_CBC) || data->size % BLOCK == 0,
               tpm_rc_p(TPM2_RC_SIZE, pn_data));
    TPM_ENSURE(o->sens.sensitive.sym.size == pub->parameters.symDetail.sym.keyBits.aes / 8u, tpm_rc_h(TPM2_RC_KEY, 1));

    TPM2B_MAX_BUFFER res = { .size = data->size };
    TPM2B_IV iv = *iv_in;
    uint8_t chain[BLOCK] = { 0 };
    memcpy(chain, iv.buffer, iv.size);
    cf_err e = sym_run(mode, dec == TPM2_YES, o->sens.sensitive.sym.buffer, o->sens.sensitive.sym.size, chain,
                       data->buffer, data->size, res.buffer);
    if (e == CF_OK) {
        memcpy(iv.buffer, chain, iv.size);
        TPM_PUT(out, TPM2B_MAX_BUFFER, &res);
        TPM_PUT(out, TPM2B_IV, &iv);
    }
    cf_wipe(&res, sizeof res);
    cf_wipe(chain, sizeof chain);
    return tpm_rc_from_cf(e);
}

TPM_HANDLER(tpm_cc_encrypt_decrypt)
{
    (void)t;
    TPMI_YES_NO dec;
    TPMI_ALG_SYM_MODE mode;
    TPM2B_IV iv;
    TPM2B_MAX_BUFFER data;
    TPM_GET(in, UINT8, &dec, 1);
    TPM_GET(in, UINT16, &mode, 2);
    TPM_GET(in, TPM2B_IV, &iv, 3);
    TPM_GET(in, TPM2B_MAX_BUFFER, &data, 4);
    TPM_TRY(tpm_params_done(in));
    tpm_rc rc = encrypt_decrypt(c, out, dec, mode, &iv, &data, 1, 2, 3, 4);
    cf_wipe(&data, sizeof data);
    return rc;
}

TPM_HANDLER(tpm_cc_encrypt_decrypt2)
{
    (void)t;
    TPMI_YES_NO dec;
    TPMI_ALG_SYM_MODE mode;
    TPM2B_IV iv;
    TPM2B_MAX_BUFFER data;
    TPM_GET(in, TPM2B_MAX_BUFFER, &data, 1);
    TPM_GET(in, UINT8, &dec, 2);
    TPM_GET(in, UINT16, &mode, 3);
    TPM_GET(in, TPM2B_IV, &iv, 4);
    TPM_TRY(tpm_params_done(in));
    tpm_rc rc = encrypt_decrypt(c, out, dec, mode, &iv, &data, 2, 3, 4, 1);
    cf_wipe(&data, sizeof data);
    return rc;
}
