/* cipher.c: AES streaming for the PKCS#11 mechanisms (ECB, CBC, CBC_PAD, CTR, GCM) over one
 * EVP_CIPHER_CTX (NIST SP 800-38A, 800-38D; CBC_PAD is PKCS#7 padding, PKCS#11 3.0 sec. 2.15).
 *
 * The output of each call is predicted from the bytes seen so far before OpenSSL runs, so a short
 * buffer is refused (CF_E_BUFFER_TOO_SMALL with the exact size) without disturbing the stream, and
 * the prediction is checked against what OpenSSL actually produced. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

#define BLOCK 16
#define CHUNK (1u << 30)   /* EVP takes int lengths */

enum { ST_ACTIVE, ST_FINAL_PENDING, ST_DONE };

struct cf_cipher {
    EVP_CIPHER_CTX *ctx;
    cf_aes_mode mode;
    bool enc;
    bool tag_set;
    int state;
    size_t tag_len;
    uint64_t total;            /* input bytes so far */
    uint8_t pending[BLOCK];    /* CBC_PAD decrypt: final output kept for a retry after TOO_SMALL */
    size_t pending_len;
};

static const EVP_CIPHER *aes_cipher(cf_aes_mode mode, size_t keylen)
{
    int k = keylen == 16 ? 0 : keylen == 24 ? 1 : keylen == 32 ? 2 : -1;
    if (k < 0)
        return NULL;
    switch (mode) {
    case CF_AES_ECB: return (const EVP_CIPHER *[]){ EVP_aes_128_ecb(), EVP_aes_192_ecb(), EVP_aes_256_ecb() }[k];
    case CF_AES_CBC:
    case CF_AES_CBC_PAD: return (const EVP_CIPHER *[]){ EVP_aes_128_cbc(), EVP_aes_192_cbc(), EVP_aes_256_cbc() }[k];
    case CF_AES_CTR: return (const EVP_CIPHER *[]){ EVP_aes_128_ctr(), EVP_aes_192_ctr(), EVP_aes_256_ctr() }[k];
    case CF_AES_GCM: return (const EVP_CIPHER *[]){ EVP_aes_128_gcm(), EVP_aes_192_gcm(), EVP_aes_256_gcm() }[k];
    case CF_AES_CFB: return (const EVP_CIPHER *[]){ EVP_aes_128_cfb128(), EVP_aes_192_cfb128(), EVP_aes_256_cfb128() }[k];
    case CF_AES_OFB: return (const EVP_CIPHER *[]){ EVP_aes_128_ofb(), EVP_aes_192_ofb(), EVP_aes_256_ofb() }[k];
    }
    return NULL;
}

static bool is_stream(const cf_cipher *c)
{
    return c->mode == CF_AES_CTR || c->mode == CF_AES_GCM || c->mode == CF_AES_CFB || c->mode == CF_AES_OFB;
}

/* Total plaintext/ciphertext released after t input bytes. A padded decrypt holds back the last
 * whole block until final, because it may carry the padding. */
static uint64_t produced(const cf_cipher *c, uint64_t t)
{
    if (is_stream(c))
        return t;
    if (c->mode == CF_AES_CBC_PAD && !c->enc)
        return t == 0 ? 0 : (t % BLOCK == 0 ? t - BLOCK : t - t % BLOCK);
    return t - t % BLOCK;
}

cf_err cf_cipher_new(cf_aes_mode mode, bool encrypt, const uint8_t *key, size_t keylen,
                     const uint8_t *iv, size_t ivlen, const uint8_t *aad, size_t aadlen,
                     size_t tag_len, cf_cipher **out)
{
    CF_ENSURE(out && key && (aad || aadlen == 0), CF_E_ARGS);
    *out = NULL;
    CF_ENSURE((unsigned)mode <= (unsigned)CF_AES_OFB, CF_E_MECHANISM_INVALID);
    const EVP_CIPHER *ciph = aes_cipher(mode, keylen);
    CF_ENSURE(ciph, CF_E_KEY_SIZE_RANGE);
    switch (mode) {
    case CF_AES_ECB:
        break;
    case CF_AES_CBC:
    case CF_AES_CBC_PAD:
    case CF_AES_CTR:
    case CF_AES_CFB:
    case CF_AES_OFB:
        CF_ENSURE(iv && ivlen == BLOCK, CF_E_MECHANISM_PARAM_INVALID);
        break;
    case CF_AES_GCM:
        CF_ENSURE(iv && ivlen >= 1 && ivlen <= 256, CF_E_MECHANISM_PARAM_INVALID);
        CF_ENSURE(tag_len >= 4 && tag_len <= 16, CF_E_MECHANISM_PARAM_INVALID);
        CF_ENSURE(aadlen <= INT_MAX, CF_E_MECHANISM_PARAM_INVALID);
        break;
    }

    cf_err rv = CF_E_CRYPTO;
    int enc = encrypt ? 1 : 0;
    cf_cipher *c = calloc(1, sizeof *c);
    CF_ENSURE(c, CF_E_NOMEM);
    c->mode = mode;
    c->enc = encrypt;
    c->tag_len = mode == CF_AES_GCM ? tag_len : 0;
    c->state = ST_ACTIVE;
    c->ctx = EVP_CIPHER_CTX_new();
    CF_CHECK(c->ctx, CF_E_NOMEM);
    if (mode == CF_AES_GCM) {
        int outl = 0;
        CF_CHECK(EVP_CipherInit_ex(c->ctx, ciph, NULL, NULL, NULL, enc) == 1, CF_E_CRYPTO);
        CF_CHECK(EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)ivlen, NULL) == 1,
                 CF_E_MECHANISM_PARAM_INVALID);
        CF_CHECK(EVP_CipherInit_ex(c->ctx, NULL, NULL, key, iv, enc) == 1, CF_E_CRYPTO);
        if (aadlen > 0)
            CF_CHECK(EVP_CipherUpdate(c->ctx, NULL, &outl, aad, (int)aadlen) == 1, CF_E_CRYPTO);
    } else {
        CF_CHECK(EVP_CipherInit_ex(c->ctx, ciph, NULL, key, mode == CF_AES_ECB ? NULL : iv, enc) == 1,
                 CF_E_CRYPTO);
        CF_CHECK(EVP_CIPHER_CTX_set_padding(c->ctx, mode == CF_AES_CBC_PAD ? 1 : 0) == 1, CF_E_CRYPTO);
    }
    rv = CF_OK;
    *out = c;
out:
    if (rv != CF_OK) {
        cf_crypto_fail("cf_cipher_new", rv);
        cf_cipher_free(c);
    }
    return rv;
}

cf_err cf_cipher_update(cf_cipher *c, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    CF_ENSURE(c && (in || inlen == 0) && outlen, CF_E_ARGS);
    CF_ENSURE(c->state == ST_ACTIVE, CF_E_OPERATION_NOT_INITIALIZED);
    CF_ENSURE(inlen <= UINT64_MAX - c->total, CF_E_DATA_LEN_RANGE);
    size_t need = (size_t)(produced(c, c->total + inlen) - produced(c, c->total));
    if ((!out && need > 0) || *outlen < need) {
        *outlen = need;
        return CF_E_BUFFER_TOO_SMALL;
    }
    size_t done = 0, written = 0;
    while (done < inlen) {
        size_t n = inlen - done < CHUNK ? inlen - done : CHUNK;
        size_t expect = (size_t)(produced(c, c->total + n) - produced(c, c->total));
        int outl = 0;
        if (EVP_CipherUpdate(c->ctx, out + written, &outl, in + done, (int)n) != 1 || outl < 0
            || (size_t)outl != expect) {
            c->state = ST_DONE;
            cf_wipe(out, written);
            *outlen = 0;
            return cf_crypto_fail("EVP_CipherUpdate", CF_E_CRYPTO);
        }
        c->total += n;
        done += n;
        written += (size_t)outl;
    }
    *outlen = written;
    return CF_OK;
}

cf_err cf_cipher_set_tag(cf_cipher *c, const uint8_t *tag, size_t taglen)
{
    CF_ENSURE(c && tag, CF_E_ARGS);
    CF_ENSURE(c->mode == CF_AES_GCM && !c->enc, CF_E_ARGS);
    CF_ENSURE(c->state == ST_ACTIVE, CF_E_OPERATION_NOT_INITIALIZED);
    CF_ENSURE(taglen == c->tag_len, CF_E_ENCRYPTED_DATA_LEN_RANGE);
    uint8_t copy[16];   /* the ctrl takes a non-const pointer */
    memcpy(copy, tag, taglen);
    if (EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_SET_TAG, (int)taglen, copy) != 1)
        return cf_crypto_fail("EVP_CTRL_AEAD_SET_TAG", CF_E_CRYPTO);
    c->tag_set = true;
    return CF_OK;
}

/* Delivers the CBC_PAD decrypt output held back by an earlier TOO_SMALL. */
static cf_err deliver_pending(cf_cipher *c, uint8_t *out, size_t *outlen)
{
    if ((!out && c->pending_len > 0) || *outlen < c->pending_len) {
        *outlen = c->pending_len;
        return CF_E_BUFFER_TOO_SMALL;
    }
    if (c->pending_len)
        memcpy(out, c->pending, c->pending_len);
    *outlen = c->pending_len;
    cf_wipe(c->pending, sizeof c->pending);
    c->pending_len = 0;
    c->state = ST_DONE;
    return CF_OK;
}

cf_err cf_cipher_final(cf_cipher *c, uint8_t *out, size_t *outlen)
{
    CF_ENSURE(c && outlen, CF_E_ARGS);
    if (c->state == ST_FINAL_PENDING)
        return deliver_pending(c, out, outlen);
    CF_ENSURE(c->state == ST_ACTIVE, CF_E_OPERATION_NOT_INITIALIZED);

    uint8_t scratch[BLOCK];
    int outl = 0;
    size_t need = 0;
    bool partial = c->total % BLOCK != 0;
    switch (c->mode) {
    case CF_AES_ECB:
    case CF_AES_CBC:
        if (partial) {
            c->state = ST_DONE;
            return c->enc ? CF_E_DATA_LEN_RANGE : CF_E_ENCRYPTED_DATA_LEN_RANGE;
        }
        break;
    case CF_AES_CBC_PAD:
        if (c->enc) {
            need = BLOCK;
            break;
        }
        if (partial || c->total == 0) {
            c->state = ST_DONE;
            return CF_E_ENCRYPTED_DATA_LEN_RANGE;
        }
        /* The plaintext length is known only after unpadding: decrypt into `pending`. */
        c->state = ST_DONE;
        if (EVP_DecryptFinal_ex(c->ctx, c->pending, &outl) != 1 || outl < 0 || outl >= BLOCK) {
            cf_wipe(c->pending, sizeof c->pending);
            return cf_crypto_fail("EVP_DecryptFinal_ex", CF_E_ENCRYPTED_DATA_INVALID);
        }
        c->pending_len = (size_t)outl;
        c->state = ST_FINAL_PENDING;
        return deliver_pending(c, out, outlen);
    case CF_AES_CTR:
    case CF_AES_CFB:
    case CF_AES_OFB:
        break;
    case CF_AES_GCM:
        if (c->enc)
            need = c->tag_len;
        else
            CF_ENSURE(c->tag_set, CF_E_ARGS);
        break;
    }
    if ((!out && need > 0) || *outlen < need) {
        *outlen = need;
        return CF_E_BUFFER_TOO_SMALL;
    }

    c->state = ST_DONE;
    if (c->mode == CF_AES_CBC_PAD) {   /* encrypt: exactly one padded block */
        if (EVP_EncryptFinal_ex(c->ctx, out, &outl) != 1 || outl != BLOCK)
            return cf_crypto_fail("EVP_EncryptFinal_ex", CF_E_CRYPTO);
        *outlen = BLOCK;
        return CF_OK;
    }
    if (EVP_CipherFinal_ex(c->ctx, scratch, &outl) != 1 || outl != 0) {
        cf_wipe(scratch, sizeof scratch);
        if (c->mode == CF_AES_GCM && !c->enc)
            return cf_crypto_fail("GCM tag", CF_E_ENCRYPTED_DATA_INVALID);
        return cf_crypto_fail("EVP_CipherFinal_ex", CF_E_CRYPTO);
    }
    if (c->mode == CF_AES_GCM && c->enc) {
        if (EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_GET_TAG, (int)c->tag_len, out) != 1)
            return cf_crypto_fail("EVP_CTRL_AEAD_GET_TAG", CF_E_CRYPTO);
    }
    *outlen = need;
    return CF_OK;
}

void cf_cipher_free(cf_cipher *c)
{
    if (!c)
        return;
    EVP_CIPHER_CTX_free(c->ctx);   /* cleanses the key schedule */
    cf_wipe(c, sizeof *c);
    free(c);
}
