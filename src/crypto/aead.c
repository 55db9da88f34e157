/* aead.c: one-shot AES-GCM (NIST SP 800-38D) for data at rest: the store's sealed attribute
 * values and the PIN-wrapped data keys. See crypto.h for the contract. */
#include <limits.h>
#include <string.h>
#include <openssl/evp.h>
#include "base/secmem.h"
#include "crypto/crypto.h"

/* EVP takes int lengths: feed longer inputs in pieces. */
#define CHUNK (1 << 30)

static const EVP_CIPHER *gcm_cipher(size_t keylen)
{
    switch (keylen) {
    case 16: return EVP_aes_128_gcm();
    case 24: return EVP_aes_192_gcm();
    case 32: return EVP_aes_256_gcm();
    default: return NULL;
    }
}

static bool args_ok(const uint8_t *key, size_t keylen, const uint8_t *iv, size_t ivlen,
                    const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t inlen,
                    const uint8_t *out, const uint8_t *tag, size_t taglen)
{
    return key && gcm_cipher(keylen) && iv && ivlen > 0 && ivlen <= INT_MAX
        && (aad || aadlen == 0) && aadlen <= INT_MAX && (in || inlen == 0) && (out || inlen == 0)
        && tag && taglen >= 4 && taglen <= 16;
}

/* Runs the AAD and the data through an initialised context. */
static bool gcm_update(EVP_CIPHER_CTX *ctx, bool enc, const uint8_t *aad, size_t aadlen,
                       const uint8_t *in, size_t inlen, uint8_t *out)
{
    int outl;
    if (aadlen > 0) {
        int ok = enc ? EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aadlen)
                     : EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadlen);
        if (ok != 1)
            return false;
    }
    size_t done = 0;
    while (done < inlen) {
        size_t n = inlen - done < CHUNK ? inlen - done : CHUNK;
        int ok = enc ? EVP_EncryptUpdate(ctx, out + done, &outl, in + done, (int)n)
                     : EVP_DecryptUpdate(ctx, out + done, &outl, in + done, (int)n);
        /* GCM is a stream mode: every byte in comes straight out. */
        if (ok != 1 || outl != (int)n)
            return false;
        done += n;
    }
    return true;
}

static bool gcm_init(EVP_CIPHER_CTX *ctx, bool enc, const uint8_t *key, size_t keylen,
                     const uint8_t *iv, size_t ivlen)
{
    const EVP_CIPHER *c = gcm_cipher(keylen);
    if (EVP_CipherInit_ex(ctx, c, NULL, NULL, NULL, enc ? 1 : 0) != 1)
        return false;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen, NULL) != 1)
        return false;
    return EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc ? 1 : 0) == 1;
}

cf_err cf_aes_gcm_seal(const uint8_t *key, size_t keylen, const uint8_t *iv, size_t ivlen,
                       const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
                       uint8_t *ct, uint8_t *tag, size_t taglen)
{
    CF_ENSURE(args_ok(key, keylen, iv, ivlen, aad, aadlen, pt, ptlen, ct, tag, taglen), CF_E_ARGS);
    cf_err rv = CF_E_CRYPTO;
    uint8_t fin[16];
    int outl = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(gcm_init(ctx, true, key, keylen, iv, ivlen), CF_E_CRYPTO);
    CF_CHECK(gcm_update(ctx, true, aad, aadlen, pt, ptlen, ct), CF_E_CRYPTO);
    CF_CHECK(EVP_EncryptFinal_ex(ctx, fin, &outl) == 1 && outl == 0, CF_E_CRYPTO);
    CF_CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, (int)taglen, tag) == 1, CF_E_CRYPTO);
    rv = CF_OK;
out:
    if (rv != CF_OK && ct)
        cf_wipe(ct, ptlen);   /* no partial output on failure */
    EVP_CIPHER_CTX_free(ctx);  /* cleanses the key schedule */
    return rv;
}

cf_err cf_aes_gcm_open(const uint8_t *key, size_t keylen, const uint8_t *iv, size_t ivlen,
                       const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
                       const uint8_t *tag, size_t taglen, uint8_t *pt)
{
    CF_ENSURE(args_ok(key, keylen, iv, ivlen, aad, aadlen, ct, ctlen, pt, tag, taglen), CF_E_ARGS);
    cf_err rv = CF_E_CRYPTO;
    uint8_t fin[16];
    uint8_t tagbuf[16];
    int outl = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    CF_CHECK(ctx, CF_E_NOMEM);
    CF_CHECK(gcm_init(ctx, false, key, keylen, iv, ivlen), CF_E_CRYPTO);
    /* The ctrl takes a non-const pointer: hand it a copy rather than cast away const. */
    memcpy(tagbuf, tag, taglen);
    CF_CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, (int)taglen, tagbuf) == 1, CF_E_CRYPTO);
    CF_CHECK(gcm_update(ctx, false, aad, aadlen, ct, ctlen, pt), CF_E_CRYPTO);
    /* Final is where the tag is checked; a mismatch is the caller's data, not our failure. */
    CF_CHECK(EVP_DecryptFinal_ex(ctx, fin, &outl) == 1 && outl == 0, CF_E_ENCRYPTED_DATA_INVALID);
    rv = CF_OK;
out:
    if (rv != CF_OK && pt)
        cf_wipe(pt, ctlen);   /* never release unauthenticated plaintext */
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}
