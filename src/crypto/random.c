/* random.c: the DRBG (OpenSSL's RAND_bytes) and constant-time comparison. See crypto.h. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "base/log.h"
#include "crypto/crypto.h"

cf_err cf_random(void *out, size_t n)
{
    CF_ENSURE(out || n == 0, CF_E_ARGS);
    uint8_t *p = out;
    while (n > 0) {
        /* RAND_bytes takes an int length. */
        int k = n > (1u << 30) ? (1 << 30) : (int)n;
        if (RAND_bytes(p, k) != 1) {
            cf_error("crypto: RAND_bytes failed");
            return CF_E_CRYPTO;
        }
        p += k;
        n -= (size_t)k;
    }
    return CF_OK;
}

bool cf_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return true;
    return CRYPTO_memcmp(a, b, n) == 0;
}
