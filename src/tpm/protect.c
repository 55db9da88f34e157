/* protect.c: the protections of data that leaves the TPM: the private area of an ordinary object
 * under its storage parent (Part 1 sections 22-23) and saved contexts (Part 1 section 30).
 *
 * Private area (Part 1 section 23.3, SensitiveToPrivate / PrivateToSensitive of the reference):
 *   symKey  = KDFa(parent.nameAlg, parent.seedValue, "STORAGE", name, "", parent symmetric keyBits)
 *   encSens = AES-CFB(symKey, IV = 0, marshaled TPM2B_SENSITIVE)   (the key is unique per name, so
 *             a zero IV is what Part 1 section 22.4 prescribes)
 *   hmacKey = KDFa(parent.nameAlg, parent.seedValue, "INTEGRITY", "", "", digest size * 8)
 *   outerHMAC = HMAC_parent.nameAlg(hmacKey, encSens || name)
 *   TPM2B_PRIVATE.buffer = TPM2B_DIGEST(outerHMAC) || encSens
 * The name in both computations binds the private area to its public area: swapping either makes
 * the HMAC fail (TPM_RC_INTEGRITY), which Load checks before it decrypts anything.
 *
 * Context blobs (Part 1 section 30.2; the layout of contextBlob is the TPM's own):
 *   key || iv = KDFa(SHA-256, proof, "CONTEXT", sequence (8 bytes), savedHandle (4 bytes), 256)
 *   encData   = AES-128-CFB(key, iv, the object's areas)
 *   integrity = HMAC-SHA-256(proof, resetCount || [restartCount] || sequence || savedHandle
 *                            || hierarchy || encData)
 *   contextBlob = TPM2B_DIGEST(integrity) || encData
 * proof is the hierarchy's proof; the null hierarchy's changes at every TPM Reset, and resetCount
 * (restartCount too for stClear objects, savedHandle 0x80000002) is in the HMAC as in the
 * reference TPM, so no object context survives a TPM Reset and stClear ones no TPM Restart. */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define LABEL_STORAGE "STORAGE"
#define LABEL_INTEGRITY "INTEGRITY"
#define LABEL_CONTEXT "CONTEXT"

static tpm_rc cfb(bool enc, const uint8_t *key, size_t keylen, const uint8_t *iv, const uint8_t *in, size_t len,
                  uint8_t *out)
{
    cf_cipher *c = NULL;
    uint8_t tail[16];
    size_t n = len, m = sizeof tail;   /* capacities in, bytes written out */
    cf_err e = cf_cipher_new(CF_AES_CFB, enc, key, keylen, iv, 16, NULL, 0, 0, &c);
    if (e == CF_OK)
        e = cf_cipher_update(c, in, len, out, &n);
    if (e == CF_OK)
        e = cf_cipher_final(c, tail, &m);
    cf_cipher_free(c);
    if (e == CF_OK && n + m != len)
        e = CF_E_INTERNAL;
    if (e == CF_OK && m)
        memcpy(out + n, tail, m);
    cf_wipe(tail, sizeof tail);
    return tpm_rc_from_cf(e);
}

bool tpm_object_is_storage(const tpm_object *o)
{
    TPMA_OBJECT a = o->pub.objectAttributes;
    if (o->public_only || tpm_object_is_sequence(o) || !(a & TPMA_OBJECT_RESTRICTED) || !(a & TPMA_OBJECT_DECRYPT) || (a & TPMA_OBJECT_SIGN_ENCRYPT))
        return false;
    switch (o->pub.type) {
    case TPM2_ALG_RSA: return o->pub.parameters.rsaDetail.symmetric.algorithm == TPM2_ALG_AES;
    case TPM2_ALG_ECC: return o->pub.parameters.eccDetail.symmetric.algorithm == TPM2_ALG_AES;
    case TPM2_ALG_SYMCIPHER: return o->pub.parameters.symDetail.sym.algorithm == TPM2_ALG_AES;
    default: return false;
    }
}

/* The AES key size of a storage parent's symmetric definition, in bits. */
static unsigned parent_sym_bits(const tpm_object *parent)
{
    switch (parent->pub.type) {
    case TPM2_ALG_RSA: return parent->pub.parameters.rsaDetail.symmetric.keyBits.aes;
    case TPM2_ALG_ECC: return parent->pub.parameters.eccDetail.symmetric.keyBits.aes;
    default: return parent->pub.parameters.symDetail.sym.keyBits.aes;
    }
}

/* symKey and hmacKey of Part 1 sections 23.4-23.5 */
static tpm_rc private_keys(const tpm_object *parent, const TPM2B_NAME *name, uint8_t *symkey, size_t *symlen,
                           uint8_t *hmackey, size_t *hmaclen)
{
    TPMI_ALG_HASH ph = parent->pub.nameAlg;
    const TPM2B_DIGEST *seed = &parent->sens.seedValue;
    unsigned bits = parent_sym_bits(parent);
    TPM_ENSURE(tpm_object_is_storage(parent) && seed->size > 0, TPM2_RC_TYPE);
    TPM_ENSURE(bits == 128 || bits == 192 || bits == 256, TPM2_RC_SYMMETRIC);
    *symlen = bits / 8;
    *hmaclen = tpm_hash_size(ph);
    TPM_TRY(tpm_kdfa(ph, seed->buffer, seed->size, LABEL_STORAGE, name->name, name->size, NULL, 0, bits, symkey));
    return tpm_kdfa(ph, seed->buffer, seed->size, LABEL_INTEGRITY, NULL, 0, NULL, 0, (uint32_t)(*hmaclen * 8), hmackey);
}

tpm_rc tpm_private_protect(const tpm_object *parent, const TPM2B_NAME *name, const TPMT_SENSITIVE *s,
                           TPM2B_PRIVATE *out)
{
    uint8_t symkey[32], hmackey[CF_HASH_MAX], plain[sizeof(TPM2B_SENSITIVE) + 8];
    size_t symlen, hmaclen, n = 0;
    tpm_rc rc;
    TPM_GUARD(private_keys(parent, name, symkey, &symlen, hmackey, &hmaclen));
    TPM2B_SENSITIVE sens = { .sensitiveArea = *s };
    n = tpm_marshal_to(TPM_MARSHAL(TPM2B_SENSITIVE), &sens, plain, sizeof plain);
    cf_wipe(&sens, sizeof sens);
    TPM_CHECK(n > 0 && 2 + hmaclen + n <= sizeof out->buffer, TPM2_RC_FAILURE);
    static const uint8_t zero_iv[16];
    uint8_t *enc = out->buffer + 2 + hmaclen;
    TPM_GUARD(cfb(true, symkey, symlen, zero_iv, plain, n, enc));
    out->buffer[0] = (uint8_t)(hmaclen >> 8);
    out->buffer[1] = (uint8_t)hmaclen;
    TPM_GUARD(tpm_hmac_v(parent->pub.nameAlg, hmackey, hmaclen, out->buffer + 2, enc, n, name->name,
                         (size_t)name->size, NULL));
    out->size = (uint16_t)(2 + hmaclen + n);
out:
    cf_wipe(symkey, sizeof symkey);
    cf_wipe(hmackey, sizeof hmackey);
    cf_wipe(plain, sizeof plain);
    return rc;
}

tpm_rc tpm_private_unprotect(const tpm_object *parent, const TPM2B_NAME *name, const TPM2B_PRIVATE *in,
                             TPMT_SENSITIVE *s)
{
    uint8_t symkey[32], hmackey[CF_HASH_MAX], mac[CF_HASH_MAX], plain[sizeof(TPM2B_PRIVATE)];
    size_t symlen, hmaclen, n = 0;
    tpm_rc rc;
    TPM_GUARD(private_keys(parent, name, symkey, &symlen, hmackey, &hmaclen));
    cf_reader r = cf_reader_init(in->buffer, in->size);
    cf_reader integrity;
    /* the integrity area must be a digest of the parent's nameAlg, followed by something */
    TPM_CHECK(cf_get_sized16(&r, &integrity) == CF_OK && integrity.len == hmaclen && !cf_reader_done(&r),
              TPM2_RC_INTEGRITY);
    const uint8_t *enc = r.p + r.off;
    n = cf_reader_left(&r);
    TPM_GUARD(tpm_hmac_v(parent->pub.nameAlg, hmackey, hmaclen, mac, enc, n, name->name, (size_t)name->size, NULL));
    TPM_CHECK(cf_ct_equal(mac, integrity.p + integrity.off, hmaclen), TPM2_RC_INTEGRITY);
    static const uint8_t zero_iv[16];
    TPM_GUARD(cfb(false, symkey, symlen, zero_iv, enc, n, plain));
    TPM2B_SENSITIVE sens;
    size_t off = 0;
    memset(&sens, 0, sizeof sens);
    /* TPM_RC_SENSITIVE for every unmarshaling error, so that nothing tells where it failed */
    if (Tss2_MU_TPM2B_SENSITIVE_Unmarshal(plain, n, &off, &sens) != TSS2_RC_SUCCESS || off != n) {
        cf_wipe(&sens, sizeof sens);
        rc = TPM2_RC_SENSITIVE;
        goto out;
    }
    *s = sens.sensitiveArea;
    cf_wipe(&sens, sizeof sens);
out:
    cf_wipe(symkey, sizeof symkey);
    cf_wipe(hmackey, sizeof hmackey);
    cf_wipe(plain, sizeof plain);
    return rc;
}

/* ---- contexts ------------------------------------------------------------------------------ */
static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static tpm_rc context_mac(const tpm_instance *t, const tpm_hierarchy *h, const TPMS_CONTEXT *ctx,
                          const uint8_t *enc, size_t n, uint8_t *mac)
{
    uint8_t reset[4], restart[4], seq[8], handle[4], hier[4];
    be32(reset, t->nv.reset_count);
    be32(restart, ctx->savedHandle == TPM_TRANSIENT_FIRST + 2 ? t->nv.restart_count : 0);
    be32(seq, (uint32_t)(ctx->sequence >> 32));
    be32(seq + 4, (uint32_t)ctx->sequence);
    be32(handle, ctx->savedHandle);
    be32(hier, ctx->hierarchy);
    return tpm_hmac_v(TPM_CONTEXT_HASH, h->proof, sizeof h->proof, mac, reset, (size_t)4, restart,
                      (size_t)(ctx->savedHandle == TPM_TRANSIENT_FIRST + 2 ? 4 : 0), seq, (size_t)8, handle,
                      (size_t)4, hier, (size_t)4, enc, n, NULL);
}

static tpm_rc context_key(const tpm_hierarchy *h, const TPMS_CONTEXT *ctx, uint8_t keyiv[32])
{
    uint8_t seq[8], handle[4];
    be32(seq, (uint32_t)(ctx->sequence >> 32));
    be32(seq + 4, (uint32_t)ctx->sequence);
    be32(handle, ctx->savedHandle);
    return tpm_kdfa(TPM_CONTEXT_HASH, h->proof, sizeof h->proof, LABEL_CONTEXT, seq, 8, handle, 4, 256, keyiv);
}

tpm_rc tpm_context_protect(const tpm_instance *t, TPMS_CONTEXT *ctx, const uint8_t *plain, size_t len)
{
    const tpm_hierarchy *h = tpm_hierarchy_get(t, ctx->hierarchy);
    size_t hl = tpm_hash_size(TPM_CONTEXT_HASH);
    TPM_ENSURE(h, TPM2_RC_HIERARCHY);
    TPM_ENSURE(2 + hl + len <= sizeof ctx->contextBlob.buffer, TPM2_RC_FAILURE);
    uint8_t keyiv[32];
    uint8_t *blob = ctx->contextBlob.buffer, *enc = blob + 2 + hl;
    tpm_rc rc;
    TPM_GUARD(context_key(h, ctx, keyiv));
    TPM_GUARD(cfb(true, keyiv, 16, keyiv + 16, plain, len, enc));
    TPM_GUARD(context_mac(t, h, ctx, enc, len, blob + 2));
    blob[0] = (uint8_t)(hl >> 8);
    blob[1] = (uint8_t)hl;
    ctx->contextBlob.size = (uint16_t)(2 + hl + len);
out:
    cf_wipe(keyiv, sizeof keyiv);
    return rc;
}

tpm_rc tpm_context_unprotect(const tpm_instance *t, const TPMS_CONTEXT *ctx, uint8_t *plain, size_t *len)
{
    const tpm_hierarchy *h = tpm_hierarchy_get(t, ctx->hierarchy);
    size_t hl = tpm_hash_size(TPM_CONTEXT_HASH);
    TPM_ENSURE(h, TPM2_RC_HIERARCHY);
    cf_reader r = cf_reader_init(ctx->contextBlob.buffer, ctx->contextBlob.size);
    cf_reader integrity;
    TPM_ENSURE(cf_get_sized16(&r, &integrity) == CF_OK && integrity.len == hl && !cf_reader_done(&r),
               TPM2_RC_INTEGRITY);
    const uint8_t *enc = r.p + r.off;
    size_t n = cf_reader_left(&r);
    TPM_ENSURE(n <= *len, TPM2_RC_SIZE);
    uint8_t mac[CF_HASH_MAX], keyiv[32];
    TPM_TRY(context_mac(t, h, ctx, enc, n, mac));
    TPM_ENSURE(cf_ct_equal(mac, integrity.p + integrity.off, hl), TPM2_RC_INTEGRITY);
    tpm_rc rc;
    TPM_GUARD(context_key(h, ctx, keyiv));
    TPM_GUARD(cfb(false, keyiv, 16, keyiv + 16, enc, n, plain));
    *len = n;
out:
    cf_wipe(keyiv, sizeof keyiv);
    return rc;
}
