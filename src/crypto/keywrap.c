/* keywrap.c: AES key wrap, RFC 3394 (NIST SP 800-38F KW) and RFC 5649 (KWP), over OpenSSL's wrap
 * ciphers. Those must be allowed explicitly on the context (EVP_CIPHER_CTX_FLAG_WRAP_ALLOW). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

static const EVP_CIPHER *wrap_cipher(bool pad, size_t keklen)
{
    switch (keklen) {
    case 16: return pad ? EVP_aes_128_wrap_pad() : EVP_aes_128_wrap();
    case 24: return pad ? EVP_aes_192_wrap_pad() : EVP_aes_192_wrap();
    case 32: return pad ? EVP_aes_256_wrap_pad() : EVP_aes_256_wrap();
    default: return NULL;
    }
}

size_t cf_aes_wrap_len(bool pad, size_t inlen)
{
    if (inlen > SIZE_MAX - 16)
        return 0;
    return pad ? (inlen + 7) / 8 * 8 + 8 : inlen + 8;
}

/* One pass of the wrap cipher: the whole input goes through a single update. */
static bool run(bool enc, const EVP_CIPHER *ciph, const uint8_t *kek, const uint8_t *in, size_t inlen,
                uint8_t *out, size_t *outlen)
{
    bool ok = false;
    int l1 = 0, l2 = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return false;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex(ctx, ciph, NULL, kek, NULL, enc ? 1 : 0) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, out, &l1, in, (int)inlen) != 1 || l1 < 0)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + l1, &l2) != 1 || l2 < 0)
        goto out;
    *outlen = (size_t)l1 + (size_t)l2;
    ok = true;
out:
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

cf_err cf_aes_key_wrap(bool pad, const uint8_t *kek, size_t keklen, const uint8_t *in, size_t inlen,
                       uint8_t *out, size_t *outlen)
{
    CF_ENSURE(kek && in && outlen, CF_E_ARGS);
    const EVP_CIPHER *ciph = wrap_cipher(pad, keklen);
    CF_ENSURE(ciph, CF_E_KEY_SIZE_RANGE);
    if (pad)
        CF_ENSURE(inlen >= 1 && inlen <= INT_MAX - 16, CF_E_DATA_LEN_RANGE);
    else
        CF_ENSURE(inlen >= 16 && inlen % 8 == 0 && inlen <= INT_MAX - 16, CF_E_DATA_LEN_RANGE);
    size_t need = cf_aes_wrap_len(pad, inlen);
    if (!out || *outlen < need) {
        *outlen = need;
        return CF_E_BUFFER_TOO_SMALL;
    }
    size_t len = 0;
    if (!run(true, ciph, kek, in, inlen, out, &len) || len != need) {
        cf_wipe(out, need);
        return cf_crypto_fail("AES key wrap", CF_E_CRYPTO);
    }
    *outlen = len;
    return CF_OK;
}

cf_err cf_aes_key_unwrap(bool pad, const uint8_t *kek, size_t keklen, const uint8_t *in, size_t inlen,
                         uint8_t *out, size_t *outlen)
{
    CF_ENSURE(kek && in && outlen, CF_E_ARGS);
    const EVP_CIPHER *ciph = wrap_cipher(pad, keklen);
    CF_ENSURE(ciph, CF_E_KEY_SIZE_RANGE);
    CF_ENSURE(inlen % 8 == 0 && inlen >= (pad ? 16u : 24u) && inlen <= INT_MAX, CF_E_WRAPPED_KEY_LEN_RANGE);
    size_t max = inlen - 8;
    /* RFC 5649 output length is known only after unwrapping; with a big enough buffer, unwrap
     * in place, else into scratch to learn (and report) the exact size. */
    if (out && *outlen >= inlen) {   /* OpenSSL 3.0 wipes inlen bytes of out on failure */
        size_t len = 0;
        if (!run(false, ciph, kek, in, inlen, out, &len) || len > max) {
            cf_wipe(out, max);
            return cf_crypto_fail("AES key unwrap", CF_E_WRAPPED_KEY_INVALID);
        }
        *outlen = len;
        return CF_OK;
    }
    uint8_t *tmp = cf_secret_alloc(inlen);
    CF_ENSURE(tmp, CF_E_NOMEM);
    size_t len = 0;
    cf_err rv = CF_OK;
    if (!run(false, ciph, kek, in, inlen, tmp, &len) || len > max) {
        rv = cf_crypto_fail("AES key unwrap", CF_E_WRAPPED_KEY_INVALID);
    } else if (!out || *outlen < len) {
        *outlen = len;
        rv = CF_E_BUFFER_TOO_SMALL;
    } else {
        memcpy(out, tmp, len);
        *outlen = len;
    }
    cf_secret_free(tmp, inlen);
    return rv;
}
