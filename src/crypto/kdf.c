/* kdf.c: PBKDF2-HMAC-SHA256 (RFC 8018 section 5.2), the PIN-to-key derivation. */
#include <limits.h>
#include <openssl/evp.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

cf_err cf_pbkdf2_sha256(const void *pw, size_t pwlen, const uint8_t *salt, size_t saltlen,
                        uint32_t iterations, uint8_t *out, size_t outlen)
{
    CF_ENSURE((pw || pwlen == 0) && (salt || saltlen == 0) && out && outlen > 0, CF_E_ARGS);
    CF_ENSURE(iterations > 0 && iterations <= INT_MAX, CF_E_ARGS);
    CF_ENSURE(pwlen <= INT_MAX && saltlen <= INT_MAX && outlen <= INT_MAX, CF_E_ARGS);
    const EVP_MD *md = cf_crypto_md(CF_HASH_SHA256);
    CF_ENSURE(md, CF_E_CRYPTO);
    static const uint8_t empty;
    /* PKCS5_PBKDF2_HMAC runs the KDF in "pkcs5" mode: no SP 800-132 lower bounds, which is
     * what the RFC vectors (c = 1) need; the caller chooses the iteration count. */
    if (PKCS5_PBKDF2_HMAC((const char *)(pwlen ? pw : (const void *)&empty), (int)pwlen, saltlen ? salt : &empty,
                          (int)saltlen, (int)iterations, md, (int)outlen, out) != 1) {
        cf_wipe(out, outlen);
        return cf_crypto_fail("PKCS5_PBKDF2_HMAC", CF_E_CRYPTO);
    }
    return CF_OK;
}
