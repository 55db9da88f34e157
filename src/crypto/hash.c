/* hash.c: message digests (FIPS 180-4) and HMAC (RFC 2104) over EVP. The algorithm objects are
 * fetched once per process: OpenSSL 3's implicit fetch (EVP_sha256() and friends) looks the
 * algorithm up in the provider store on every init, which shows on short messages. */
#include <pthread.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include "base/secmem.h"
#include "crypto/crypto_int.h"

static const struct {
    const char *name;
    size_t size;
} hashes[] = {
    [CF_HASH_NONE] = { "NONE", 0 },
    [CF_HASH_SHA1] = { "SHA1", 20 },
    [CF_HASH_SHA224] = { "SHA224", 28 },
    [CF_HASH_SHA256] = { "SHA256", 32 },
    [CF_HASH_SHA384] = { "SHA384", 48 },
    [CF_HASH_SHA512] = { "SHA512", 64 },
};
#define NHASH (sizeof hashes / sizeof hashes[0])

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *fetched_md[NHASH];
static EVP_MAC *fetched_hmac;

/* Kept while the library is loaded (other threads may hold them). */
static void fetch_all(void)
{
    for (size_t i = 1; i < NHASH; i++)
        fetched_md[i] = EVP_MD_fetch(NULL, hashes[i].name, NULL);
    fetched_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ERR_clear_error();
}

/* Released when the library unloads (dlclose of the module, process exit), so a program that
 * loads and unloads the module repeatedly does not accumulate them. */
__attribute__((destructor)) static void release_all(void)
{
    for (size_t i = 1; i < NHASH; i++) {
        EVP_MD_free(fetched_md[i]);
        fetched_md[i] = NULL;
    }
    EVP_MAC_free(fetched_hmac);
    fetched_hmac = NULL;
}

static bool valid(cf_hash_alg h) { return (unsigned)h > CF_HASH_NONE && (unsigned)h < NHASH; }

size_t cf_hash_size(cf_hash_alg h) { return (unsigned)h < NHASH ? hashes[h].size : 0; }

const char *cf_hash_name(cf_hash_alg h) { return (unsigned)h < NHASH ? hashes[h].name : "UNKNOWN"; }

const EVP_MD *cf_crypto_md(cf_hash_alg h)
{
    if (!valid(h))
        return NULL;
    if (pthread_once(&fetch_once, fetch_all) != 0)
        return NULL;
    return fetched_md[h];
}

static EVP_MAC *hmac_alg(void)
{
    if (pthread_once(&fetch_once, fetch_all) != 0)
        return NULL;
    return fetched_hmac;
}

/* ---- digest ---------------------------------------------------------------------------- */
struct cf_digest {
    EVP_MD_CTX *ctx;
    cf_hash_alg h;
    bool done;
};

cf_err cf_digest_new(cf_hash_alg h, cf_digest **out)
{
    CF_ENSURE(out, CF_E_ARGS);
    *out = NULL;
    CF_ENSURE(valid(h), CF_E_MECHANISM_INVALID);
    const EVP_MD *md = cf_crypto_md(h);
    CF_ENSURE(md, CF_E_CRYPTO);
    cf_digest *d = calloc(1, sizeof *d);
    CF_ENSURE(d, CF_E_NOMEM);
    d->h = h;
    d->ctx = EVP_MD_CTX_new();
    if (!d->ctx) {
        free(d);
        return CF_E_NOMEM;
    }
    if (EVP_DigestInit_ex(d->ctx, md, NULL) != 1) {
        cf_digest_free(d);
        return cf_crypto_fail("EVP_DigestInit_ex", CF_E_CRYPTO);
    }
    *out = d;
    return CF_OK;
}

cf_err cf_digest_update(cf_digest *d, const void *p, size_t n)
{
    CF_ENSURE(d && (p || n == 0), CF_E_ARGS);
    CF_ENSURE(!d->done, CF_E_OPERATION_NOT_INITIALIZED);
    if (n == 0)
        return CF_OK;
    if (EVP_DigestUpdate(d->ctx, p, n) != 1)
        return cf_crypto_fail("EVP_DigestUpdate", CF_E_CRYPTO);
    return CF_OK;
}

cf_err cf_digest_final(cf_digest *d, uint8_t *out, size_t *outlen)
{
    CF_ENSURE(d && outlen, CF_E_ARGS);
    CF_ENSURE(!d->done, CF_E_OPERATION_NOT_INITIALIZED);
    size_t need = hashes[d->h].size;
    if (!out || *outlen < need) {
        *outlen = need;
        return CF_E_BUFFER_TOO_SMALL;
    }
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(d->ctx, out, &len) != 1 || len != need)
        return cf_crypto_fail("EVP_DigestFinal_ex", CF_E_CRYPTO);
    d->done = true;
    *outlen = len;
    return CF_OK;
}

cf_err cf_digest_dup(const cf_digest *d, cf_digest **out)
{
    CF_ENSURE(d && out, CF_E_ARGS);
    *out = NULL;
    CF_ENSURE(!d->done, CF_E_OPERATION_NOT_INITIALIZED);
    cf_digest *c = calloc(1, sizeof *c);
    CF_ENSURE(c, CF_E_NOMEM);
    c->h = d->h;
    c->ctx = EVP_MD_CTX_new();
    if (!c->ctx) {
        free(c);
        return CF_E_NOMEM;
    }
    if (EVP_MD_CTX_copy_ex(c->ctx, d->ctx) != 1) {
        cf_digest_free(c);
        return cf_crypto_fail("EVP_MD_CTX_copy_ex", CF_E_CRYPTO);
    }
    *out = c;
    return CF_OK;
}

void cf_digest_free(cf_digest *d)
{
    if (!d)
        return;
    EVP_MD_CTX_free(d->ctx);   /* cleanses the state */
    free(d);
}

cf_err cf_hash(cf_hash_alg h, const void *p, size_t n, uint8_t *out, size_t *outlen)
{
    CF_ENSURE((p || n == 0) && outlen, CF_E_ARGS);
    CF_ENSURE(valid(h), CF_E_MECHANISM_INVALID);
    size_t need = hashes[h].size;
    if (!out || *outlen < need) {
        *outlen = need;
        return CF_E_BUFFER_TOO_SMALL;
    }
    const EVP_MD *md = cf_crypto_md(h);
    CF_ENSURE(md, CF_E_CRYPTO);
    unsigned int len = 0;
    static const uint8_t empty;
    if (EVP_Digest(n ? p : &empty, n, out, &len, md, NULL) != 1 || len != need)
        return cf_crypto_fail("EVP_Digest", CF_E_CRYPTO);
    *outlen = len;
    return CF_OK;
}

/* ---- HMAC ------------------------------------------------------------------------------ */
struct cf_hmac {
    EVP_MAC_CTX *ctx;
    cf_hash_alg h;
    bool done;
};

cf_err cf_hmac_new(cf_hash_alg h, const uint8_t *key, size_t keylen, cf_hmac **out)
{
    CF_ENSURE(out && (key || keylen == 0), CF_E_ARGS);
    *out = NULL;
    CF_ENSURE(valid(h), CF_E_MECHANISM_INVALID);
    EVP_MAC *mac = hmac_alg();
    CF_ENSURE(mac, CF_E_CRYPTO);
    cf_hmac *m = calloc(1, sizeof *m);
    CF_ENSURE(m, CF_E_NOMEM);
    m->h = h;
    m->ctx = EVP_MAC_CTX_new(mac);
    if (!m->ctx) {
        free(m);
        return CF_E_NOMEM;
    }
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)hashes[h].name, 0),
        OSSL_PARAM_construct_end(),
    };
    /* A NULL key means "keep the previous key" to EVP_MAC_init; an empty key (RFC 2104 allows
     * it) must be a non-NULL pointer with length 0. */
    static const uint8_t empty;
    if (EVP_MAC_init(m->ctx, keylen ? key : &empty, keylen, params) != 1) {
        cf_hmac_free(m);
        return cf_crypto_fail("EVP_MAC_init", CF_E_CRYPTO);
    }
    *out = m;
    return CF_OK;
}

cf_err cf_hmac_update(cf_hmac *m, const void *p, size_t n)
{
    CF_ENSURE(m && (p || n == 0), CF_E_ARGS);
    CF_ENSURE(!m->done, CF_E_OPERATION_NOT_INITIALIZED);
    if (n == 0)
        return CF_OK;
    if (EVP_MAC_update(m->ctx, p, n) != 1)
        return cf_crypto_fail("EVP_MAC_update", CF_E_CRYPTO);
    return CF_OK;
}

cf_err cf_hmac_final(cf_hmac *m, uint8_t *out, size_t *outlen)
{
    CF_ENSURE(m && outlen, CF_E_ARGS);
    CF_ENSURE(!m->done, CF_E_OPERATION_NOT_INITIALIZED);
    size_t need = hashes[m->h].size;
    if (!out || *outlen < need) {
        *outlen = need;
        return CF_E_BUFFER_TOO_SMALL;
    }
    size_t len = 0;
    if (EVP_MAC_final(m->ctx, out, &len, *outlen) != 1 || len != need)
        return cf_crypto_fail("EVP_MAC_final", CF_E_CRYPTO);
    m->done = true;
    *outlen = len;
    return CF_OK;
}

void cf_hmac_free(cf_hmac *m)
{
    if (!m)
        return;
    EVP_MAC_CTX_free(m->ctx);   /* cleanses the keyed state */
    free(m);
}

cf_err cf_hmac_oneshot(cf_hash_alg h, const uint8_t *key, size_t keylen, const void *p, size_t n,
                       uint8_t *out, size_t *outlen)
{
    CF_ENSURE(outlen && (p || n == 0), CF_E_ARGS);
    CF_ENSURE(valid(h), CF_E_MECHANISM_INVALID);
    size_t need = hashes[h].size;
    if (!out || *outlen < need) {
        *outlen = need;
        return CF_E_BUFFER_TOO_SMALL;
    }
    cf_hmac *m = NULL;
    cf_err rv;
    CF_GUARD(cf_hmac_new(h, key, keylen, &m));
    CF_GUARD(cf_hmac_update(m, p, n));
    CF_GUARD(cf_hmac_final(m, out, outlen));
out:
    cf_hmac_free(m);
    return rv;
}
