/* mech_rsa.c: the RSA mechanisms (PKCS#11 3.0 sec. 2.1): key pair generation, PKCS#1 v1.5 and
 * raw (X.509) signatures and encryption, hash-then-sign PKCS#1 v1.5 and PSS, OAEP, and key
 * wrapping with PKCS#1 v1.5 or OAEP.
 *
 * CKM_RSA_PKCS and CKM_RSA_X_509 serve both signing and encryption with one hsm_op_impl, so their
 * functions dispatch on op->kind: SIGN/VERIFY run the shared signature engine (mech_util.c),
 * ENCRYPT/DECRYPT run rsa_enc_ctx below. */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "hsm/mech_util.h"

/* Sizes a key may have to be used (the table reports 2048..4096, the range generated): older
 * 1024-bit keys can still be imported and used, as crypto accepts them. */
#define RSA_USE_MIN_BITS 1024
#define RSA_USE_MAX_BITS 16384
#define RSA_GEN_MIN_BITS 2048
#define RSA_GEN_MAX_BITS 4096
/* Multi-part input of a raw signature is buffered; it can never usefully exceed the modulus,
 * but the cap also bounds the memory a caller can make us hold. */
#define RSA_RAW_BUF_MAX (64u * 1024)

static bool is_sig(const hsm_op *op) { return op->kind == HSM_OP_SIGN || op->kind == HSM_OP_VERIFY; }

static size_t mod_bytes(const cf_pkey *k) { return (cf_pkey_bits(k) + 7) / 8; }

/* The key an RSA operation may run with: an RSA key of a usable size, private where the
 * operation needs the private half. */
static cf_err check_key(const hsm_op *op)
{
    const cf_pkey *k = op->key.pkey;
    CF_ENSURE(k && cf_pkey_get_type(k) == CF_PKEY_RSA, CF_E_KEY_TYPE_INCONSISTENT);
    unsigned bits = cf_pkey_bits(k);
    CF_ENSURE(bits >= RSA_USE_MIN_BITS && bits <= RSA_USE_MAX_BITS, CF_E_KEY_SIZE_RANGE);
    if (op->kind == HSM_OP_SIGN || op->kind == HSM_OP_DECRYPT)
        CF_ENSURE(cf_pkey_is_private(k), CF_E_KEY_TYPE_INCONSISTENT);
    return CF_OK;
}

/* ---- encryption ------------------------------------------------------------------------------ */
typedef struct {
    cf_rsa_enc_params p;
    uint8_t *label;      /* our copy of the OAEP label (p.label points here) */
    size_t k;            /* modulus bytes */
    hsm_inbuf buf;       /* multi-part input, at most k bytes */
} rsa_enc_ctx;

/* PKCS#11 3.0 sec. 2.1.8: CK_RSA_PKCS_OAEP_PARAMS. The label is left pointing at the caller's
 * memory. source must be CKZ_DATA_SPECIFIED; 0 is also taken when there is no label, as some
 * clients (older pkcs11-tool) send it. */
static cf_err parse_oaep(const CK_MECHANISM *m, size_t k, cf_rsa_enc_params *p)
{
    const CK_RSA_PKCS_OAEP_PARAMS *op;
    CF_TRY(hsm_param(m, sizeof *op, (const void **)&op));
    cf_hash_alg h = hsm_hash_from_ckm(op->hashAlg);
    cf_hash_alg mh = hsm_hash_from_mgf(op->mgf);
    CF_ENSURE(h != CF_HASH_NONE && mh != CF_HASH_NONE, CF_E_MECHANISM_PARAM_INVALID);
    bool has_label = op->ulSourceDataLen > 0;
    CF_ENSURE(op->source == CKZ_DATA_SPECIFIED || (op->source == 0 && !has_label),
              CF_E_MECHANISM_PARAM_INVALID);
    CF_ENSURE(!has_label || op->pSourceData, CF_E_MECHANISM_PARAM_INVALID);
    /* RFC 8017 sec. 7.1.1: k >= 2 hLen + 2, or not even an empty message fits. */
    CF_ENSURE(k >= 2 * cf_hash_size(h) + 2, CF_E_KEY_SIZE_RANGE);
    *p = (cf_rsa_enc_params){ .mode = CF_RSA_ENC_OAEP, .hash = h, .mgf_hash = mh,
                              .label = has_label ? op->pSourceData : NULL,
                              .label_len = has_label ? op->ulSourceDataLen : 0 };
    return CF_OK;
}

/* The parameters of an encryption mechanism (label not copied). */
static cf_err parse_enc(const CK_MECHANISM *m, size_t k, cf_rsa_enc_params *p)
{
    switch (m->mechanism) {
    case CKM_RSA_PKCS:
        CF_TRY(hsm_param_none(m));
        *p = (cf_rsa_enc_params){ .mode = CF_RSA_ENC_PKCS1 };
        return CF_OK;
    case CKM_RSA_X_509:
        CF_TRY(hsm_param_none(m));
        *p = (cf_rsa_enc_params){ .mode = CF_RSA_ENC_RAW };
        return CF_OK;
    case CKM_RSA_PKCS_OAEP:
        return parse_oaep(m, k, p);
    default:
        return CF_E_MECHANISM_INVALID;
    }
}

static cf_err enc_init(hsm_op *op, const CK_MECHANISM *m)
{
    CF_ENSURE(op->kind == HSM_OP_ENCRYPT || op->kind == HSM_OP_DECRYPT, CF_E_MECHANISM_INVALID);
    CF_TRY(check_key(op));
    size_t k = mod_bytes(op->key.pkey);
    cf_rsa_enc_params p;
    CF_TRY(parse_enc(m, k, &p));
    rsa_enc_ctx *c = calloc(1, sizeof *c);
    CF_ENSURE(c, CF_E_NOMEM);
    if (p.label_len) {
        c->label = malloc(p.label_len);
        if (!c->label) {
            free(c);
            return CF_E_NOMEM;
        }
        memcpy(c->label, p.label, p.label_len);
        p.label = c->label;
    }
    c->p = p;
    c->k = k;
    op->ctx = c;
    return CF_OK;
}

static cf_err enc_run(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    rsa_enc_ctx *c = op->ctx;
    /* crypto wants room for the modulus even when decryption gives less; the generic code
     * provides out_len (= k) bytes and keeps what does not fit the caller as pending. */
    if (!out || *outlen < c->k) {
        *outlen = c->k;
        return CF_E_BUFFER_TOO_SMALL;
    }
    static const uint8_t empty;
    if (!in)
        in = &empty;   /* an empty multi-part input: crypto wants a pointer */
    if (op->kind == HSM_OP_ENCRYPT)
        return cf_rsa_encrypt(op->key.pkey, &c->p, in, inlen, out, outlen);
    return cf_rsa_decrypt(op->key.pkey, &c->p, in, inlen, out, outlen);
}

static cf_err enc_update(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    rsa_enc_ctx *c = op->ctx;
    if (outlen)
        *outlen = 0;
    /* Not multi-part in PKCS#11; gathered here so that a multi-part caller still works. */
    return hsm_inbuf_add(&c->buf, in, inlen, c->k,
                         op->kind == HSM_OP_ENCRYPT ? CF_E_DATA_LEN_RANGE : CF_E_ENCRYPTED_DATA_LEN_RANGE);
}

static cf_err enc_final(hsm_op *op, uint8_t *out, size_t *outlen)
{
    rsa_enc_ctx *c = op->ctx;
    cf_err rv = enc_run(op, c->buf.p, c->buf.len, out, outlen);
    if (rv != CF_E_BUFFER_TOO_SMALL)
        hsm_inbuf_clear(&c->buf);
    return rv;
}

static void enc_cleanup(hsm_op *op)
{
    rsa_enc_ctx *c = op->ctx;
    if (!c)
        return;
    free(c->label);
    hsm_inbuf_free(&c->buf);
    free(c);
    op->ctx = NULL;
}

/* ---- signatures -------------------------------------------------------------------------------- */
static cf_hash_alg mech_hash(CK_MECHANISM_TYPE t)
{
    switch (t) {
    case CKM_SHA1_RSA_PKCS:
    case CKM_SHA1_RSA_PKCS_PSS: return CF_HASH_SHA1;
    case CKM_SHA224_RSA_PKCS:
    case CKM_SHA224_RSA_PKCS_PSS: return CF_HASH_SHA224;
    case CKM_SHA256_RSA_PKCS:
    case CKM_SHA256_RSA_PKCS_PSS: return CF_HASH_SHA256;
    case CKM_SHA384_RSA_PKCS:
    case CKM_SHA384_RSA_PKCS_PSS: return CF_HASH_SHA384;
    case CKM_SHA512_RSA_PKCS:
    case CKM_SHA512_RSA_PKCS_PSS: return CF_HASH_SHA512;
    default: return CF_HASH_NONE;
    }
}

static cf_err sig_init_raw(hsm_op *op, const CK_MECHANISM *m)
{
    CF_TRY(check_key(op));
    CF_TRY(hsm_param_none(m));
    size_t k = mod_bytes(op->key.pkey);
    if (m->mechanism == CKM_RSA_PKCS) {
        /* RFC 8017 sec. 9.2 step 3: the encoded message needs 11 bytes of padding. */
        cf_sig_params p = { .scheme = CF_SIG_RSA_PKCS1 };
        return hsm_sig_start(op, &p, CF_HASH_NONE, k - 11, 0, RSA_RAW_BUF_MAX);
    }
    CF_ENSURE(m->mechanism == CKM_RSA_X_509, CF_E_MECHANISM_INVALID);
    cf_sig_params p = { .scheme = CF_SIG_RSA_X509 };
    return hsm_sig_start(op, &p, CF_HASH_NONE, k, 0, RSA_RAW_BUF_MAX);
}

static cf_err pkcs_hash_init(hsm_op *op, const CK_MECHANISM *m)
{
    CF_ENSURE(is_sig(op), CF_E_MECHANISM_INVALID);
    CF_TRY(check_key(op));
    CF_TRY(hsm_param_none(m));
    cf_hash_alg h = mech_hash(m->mechanism);
    CF_ENSURE(h != CF_HASH_NONE, CF_E_MECHANISM_INVALID);
    cf_sig_params p = { .scheme = CF_SIG_RSA_PKCS1, .hash = h };
    return hsm_sig_start(op, &p, h, 0, 0, 0);
}

/* PKCS#11 3.0 sec. 2.1.14 - 2.1.15: CK_RSA_PKCS_PSS_PARAMS. For the hash-then-sign mechanisms
 * hashAlg must name the mechanism's own hash; for CKM_RSA_PKCS_PSS the input is a digest of
 * hashAlg. */
static cf_err pss_init(hsm_op *op, const CK_MECHANISM *m)
{
    CF_ENSURE(is_sig(op), CF_E_MECHANISM_INVALID);
    CF_TRY(check_key(op));
    const CK_RSA_PKCS_PSS_PARAMS *pp;
    CF_TRY(hsm_param(m, sizeof *pp, (const void **)&pp));
    cf_hash_alg h = hsm_hash_from_ckm(pp->hashAlg);
    cf_hash_alg mh = hsm_hash_from_mgf(pp->mgf);
    CF_ENSURE(h != CF_HASH_NONE && mh != CF_HASH_NONE, CF_E_MECHANISM_PARAM_INVALID);
    cf_hash_alg mhash = CF_HASH_NONE;
    if (m->mechanism != CKM_RSA_PKCS_PSS) {
        mhash = mech_hash(m->mechanism);
        CF_ENSURE(mhash != CF_HASH_NONE, CF_E_MECHANISM_INVALID);
        CF_ENSURE(mhash == h, CF_E_MECHANISM_PARAM_INVALID);
    }
    /* RFC 8017 sec. 9.1.1: emLen = ceil((modBits - 1) / 8) >= hLen + sLen + 2. */
    size_t emlen = (cf_pkey_bits(op->key.pkey) - 1 + 7) / 8, hlen = cf_hash_size(h);
    CF_ENSURE(emlen >= hlen + 2 && pp->sLen <= emlen - hlen - 2, CF_E_MECHANISM_PARAM_INVALID);
    cf_sig_params p = { .scheme = CF_SIG_RSA_PSS, .hash = h, .mgf_hash = mh, .salt_len = pp->sLen };
    if (mhash != CF_HASH_NONE)
        return hsm_sig_start(op, &p, h, 0, 0, 0);
    return hsm_sig_start(op, &p, CF_HASH_NONE, hlen, hlen, hlen);
}

/* ---- CKM_RSA_PKCS and CKM_RSA_X_509: one table entry for both uses ------------------------ */
static cf_err raw_init(hsm_op *op, const CK_MECHANISM *m)
{
    return is_sig(op) ? sig_init_raw(op, m) : enc_init(op, m);
}

static size_t raw_out_len(const hsm_op *op, hsm_step step, size_t inlen)
{
    if (is_sig(op))
        return hsm_sig_out_len(op, step, inlen);
    const rsa_enc_ctx *c = op->ctx;
    return step == HSM_STEP_UPDATE ? 0 : c->k;
}

static cf_err raw_oneshot(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    return is_sig(op) ? hsm_sig_oneshot(op, in, inlen, out, outlen) : enc_run(op, in, inlen, out, outlen);
}

static cf_err raw_update(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    return is_sig(op) ? hsm_sig_update(op, in, inlen, out, outlen) : enc_update(op, in, inlen, out, outlen);
}

static cf_err raw_final(hsm_op *op, uint8_t *out, size_t *outlen)
{
    return is_sig(op) ? hsm_sig_final(op, out, outlen) : enc_final(op, out, outlen);
}

static cf_err raw_reset(hsm_op *op)
{
    if (is_sig(op))
        return hsm_sig_reset(op);
    rsa_enc_ctx *c = op->ctx;
    CF_ENSURE(c, CF_E_OPERATION_NOT_INITIALIZED);
    hsm_inbuf_clear(&c->buf);
    return CF_OK;
}

static void raw_cleanup(hsm_op *op)
{
    if (is_sig(op))
        hsm_sig_cleanup(op);
    else
        enc_cleanup(op);
}

const hsm_op_impl hsm_ops_rsa_pkcs = {
    .init = raw_init, .out_len = raw_out_len, .oneshot = raw_oneshot, .update = raw_update,
    .final = raw_final, .verify = hsm_sig_verify, .verify_final = hsm_sig_verify_final,
    .reset = raw_reset, .cleanup = raw_cleanup,
};
const hsm_op_impl hsm_ops_rsa_x509 = {
    .init = raw_init, .out_len = raw_out_len, .oneshot = raw_oneshot, .update = raw_update,
    .final = raw_final, .verify = hsm_sig_verify, .verify_final = hsm_sig_verify_final,
    .reset = raw_reset, .cleanup = raw_cleanup,
};
const hsm_op_impl hsm_ops_rsa_pkcs_hash = {
    .init = pkcs_hash_init, .out_len = hsm_sig_out_len, .oneshot = hsm_sig_oneshot,
    .update = hsm_sig_update, .final = hsm_sig_final, .verify = hsm_sig_verify,
    .verify_final = hsm_sig_verify_final, .reset = hsm_sig_reset, .cleanup = hsm_sig_cleanup,
};
const hsm_op_impl hsm_ops_rsa_pss = {
    .init = pss_init, .out_len = hsm_sig_out_len, .oneshot = hsm_sig_oneshot,
    .update = hsm_sig_update, .final = hsm_sig_final, .verify = hsm_sig_verify,
    .verify_final = hsm_sig_verify_final, .reset = hsm_sig_reset, .cleanup = hsm_sig_cleanup,
};

static cf_err oaep_init(hsm_op *op, const CK_MECHANISM *m) { return enc_init(op, m); }

static size_t oaep_out_len(const hsm_op *op, hsm_step step, size_t inlen)
{
    const rsa_enc_ctx *c = op->ctx;
    return step == HSM_STEP_UPDATE ? 0 : c->k;
}

/* No reset: the label is a pointer in the parameters, so equal parameter bytes do not mean an
 * equal label; the operation is rebuilt instead (cheap: no OpenSSL context is kept). */
const hsm_op_impl hsm_ops_rsa_oaep = {
    .init = oaep_init, .out_len = oaep_out_len, .oneshot = enc_run, .update = enc_update,
    .final = enc_final, .cleanup = enc_cleanup,
};

/* ---- key pair generation ------------------------------------------------------------------------ */
/* PKCS#11 3.0 sec. 2.1.4: CKA_MODULUS_BITS (required) and CKA_PUBLIC_EXPONENT (optional, 65537
 * by default) from the public key template. */
cf_err hsm_rsa_keypair_gen(const CK_MECHANISM *m, const hsm_attrs *pub_tmpl,
                           const hsm_attrs *priv_tmpl, cf_pkey **out)
{
    (void)priv_tmpl;
    CF_TRY(hsm_param_none(m));
    CK_ULONG bits;
    cf_err rv = hsm_attrs_ulong(pub_tmpl, CKA_MODULUS_BITS, &bits);
    CF_ENSURE(rv != CF_E_NOT_FOUND, CF_E_TEMPLATE_INCOMPLETE);
    CF_TRY(rv);
    CF_ENSURE(bits >= RSA_GEN_MIN_BITS && bits <= RSA_GEN_MAX_BITS, CF_E_KEY_SIZE_RANGE);

    static const uint8_t f4[] = { 0x01, 0x00, 0x01 };
    const uint8_t *e = f4;
    size_t elen = sizeof f4;
    const cf_attr *ea = hsm_attrs_find(pub_tmpl, CKA_PUBLIC_EXPONENT);
    if (ea) {
        e = ea->val;
        elen = ea->len;
        while (elen > 0 && e[0] == 0) {
            e++;
            elen--;
        }
        /* An odd exponent of at most 64 bits, at least 3. */
        CF_ENSURE(elen >= 1 && elen <= 8 && (e[elen - 1] & 1) && (elen > 1 || e[0] >= 3),
                  CF_E_ATTRIBUTE_VALUE_INVALID);
    }
    return cf_pkey_generate_rsa((unsigned)bits, e, elen, out);
}

/* ---- wrapping ------------------------------------------------------------------------------------ */
/* The public key wraps, the private key unwraps (PKCS#11 3.0 sec. 2.1.6, 2.1.8). */
cf_err hsm_rsa_wrap(const CK_MECHANISM *m, const hsm_key *wrapping, const uint8_t *in,
                    size_t inlen, uint8_t *out, size_t *outlen)
{
    const cf_pkey *k = wrapping->pkey;
    CF_ENSURE(k && cf_pkey_get_type(k) == CF_PKEY_RSA && wrapping->cls == CKO_PUBLIC_KEY,
              CF_E_WRAPPING_KEY_TYPE_INCONSISTENT);
    unsigned bits = cf_pkey_bits(k);
    CF_ENSURE(bits >= RSA_USE_MIN_BITS && bits <= RSA_USE_MAX_BITS, CF_E_KEY_SIZE_RANGE);
    size_t kb = mod_bytes(k);
    cf_rsa_enc_params p;
    CF_TRY(parse_enc(m, kb, &p));
    CF_ENSURE(p.mode != CF_RSA_ENC_RAW, CF_E_MECHANISM_INVALID);
    if (!out || *outlen < kb) {
        *outlen = kb;
        return out ? CF_E_BUFFER_TOO_SMALL : CF_OK;
    }
    cf_err rv = cf_rsa_encrypt(wrapping->pkey, &p, in, inlen, out, outlen);
    /* The key to wrap does not fit under the padding. */
    return rv == CF_E_DATA_LEN_RANGE ? CF_E_KEY_SIZE_RANGE : rv;
}

cf_err hsm_rsa_unwrap(const CK_MECHANISM *m, const hsm_key *unwrapping, const uint8_t *in,
                      size_t inlen, cf_buf *out)
{
    const cf_pkey *k = unwrapping->pkey;
    CF_ENSURE(k && cf_pkey_get_type(k) == CF_PKEY_RSA && unwrapping->cls == CKO_PRIVATE_KEY
              && cf_pkey_is_private(k), CF_E_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    unsigned bits = cf_pkey_bits(k);
    CF_ENSURE(bits >= RSA_USE_MIN_BITS && bits <= RSA_USE_MAX_BITS, CF_E_KEY_SIZE_RANGE);
    size_t kb = mod_bytes(k);
    cf_rsa_enc_params p;
    CF_TRY(parse_enc(m, kb, &p));
    CF_ENSURE(p.mode != CF_RSA_ENC_RAW, CF_E_MECHANISM_INVALID);
    CF_ENSURE(inlen == kb, CF_E_WRAPPED_KEY_LEN_RANGE);

    uint8_t *buf = calloc(1, kb);
    CF_ENSURE(buf, CF_E_NOMEM);
    size_t n = kb;
    cf_err rv = cf_rsa_decrypt(unwrapping->pkey, &p, in, inlen, buf, &n);
    if (rv != CF_OK) {
        cf_free_wiped(buf, kb);
        if (rv == CF_E_ENCRYPTED_DATA_INVALID)
            return CF_E_WRAPPED_KEY_INVALID;
        if (rv == CF_E_ENCRYPTED_DATA_LEN_RANGE)
            return CF_E_WRAPPED_KEY_LEN_RANGE;
        return rv;
    }
    cf_wipe(buf + n, kb - n);   /* cf_buf_free wipes only len bytes */
    out->p = buf;
    out->len = n;
    return CF_OK;
}
