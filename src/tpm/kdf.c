/* kdf.c: the TPM's two key derivation functions, built on cf_hmac / cf_digest.
 *
 * KDFa (Part 1 section 11.4.10.2): SP 800-108 KDF in counter mode with HMAC as the PRF:
 *   K(i) = HMAC(key, [i]32 || Label || 0x00 || Context(U || V) || [bits]32)
 * KDFe (Part 1 section 11.4.10.3): SP 800-56A concatenation KDF:
 *   K(i) = H([i]32 || Z || Label || 0x00 || PartyUInfo || PartyVInfo)
 * In both, when bits is not a multiple of 8 the unused high bits of the first byte are cleared
 * (the result is a bits-long big-endian number). */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

static void be32(uint8_t b[4], uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static void mask_top(uint8_t *out, uint32_t bits)
{
    if (bits % 8)
        out[0] &= (uint8_t)((1u << (bits % 8)) - 1);
}

/* One KDFa block for counter i. */
static tpm_rc kdfa_block(TPM2_ALG_ID hash, const uint8_t *key, size_t keylen, const char *label,
                         const uint8_t *u, size_t ulen, const uint8_t *v, size_t vlen, uint32_t bits,
                         uint32_t i, uint8_t *block)
{
    uint8_t ctr[4], nbits[4];
    be32(ctr, i);
    be32(nbits, bits);
    static const uint8_t zero[1] = { 0 };
    size_t llen = label ? strlen(label) : 0;
    /* the label's terminating NUL is part of the input (Part 1 section 11.4.10.2) unless the
     * label already ends in one */
    return tpm_hmac_v(hash, key, keylen, block, ctr, (size_t)4, llen ? (const void *)label : (const void *)zero,
                      llen, zero, (size_t)1, u ? (const void *)u : (const void *)zero, u ? ulen : (size_t)0,
                      v ? (const void *)v : (const void *)zero, v ? vlen : (size_t)0, nbits, (size_t)4, NULL);
}

tpm_rc tpm_kdfa(TPM2_ALG_ID hash, const uint8_t *key, size_t keylen, const char *label,
                const uint8_t *u, size_t ulen, const uint8_t *v, size_t vlen, uint32_t bits, uint8_t *out)
{
    size_t hlen = tpm_hash_size(hash);
    TPM_ENSURE(hlen > 0, TPM2_RC_HASH);
    size_t n = (bits + 7) / 8;
    uint8_t block[CF_HASH_MAX];
    uint32_t i = 1;
    for (size_t done = 0; done < n; i++) {
        tpm_rc rc = kdfa_block(hash, key, keylen, label, u, ulen, v, vlen, bits, i, block);
        if (rc != TPM2_RC_SUCCESS) {
            cf_wipe(out, n);
            return rc;
        }
        size_t take = n - done < hlen ? n - done : hlen;
        memcpy(out + done, block, take);
        done += take;
    }
    cf_wipe(block, sizeof block);
    mask_top(out, bits);
    return TPM2_RC_SUCCESS;
}

tpm_rc tpm_kdf_draw(tpm_kdf_stream *s, uint8_t *out, size_t n)
{
    size_t hlen = tpm_hash_size(s->hash);
    TPM_ENSURE(hlen > 0, TPM2_RC_HASH);
    uint8_t block[CF_HASH_MAX];
    /* The stream is one long KDFa output with the "bits" field fixed at 0 (unbounded), drawn a
     * whole block at a time: each draw starts at a fresh counter so that draws of different sizes
     * never share bytes. */
    for (size_t done = 0; done < n;) {
        tpm_rc rc = kdfa_block(s->hash, s->key, s->keylen, s->label, s->u, s->ulen, s->v, s->vlen, 0,
                               ++s->counter, block);
        if (rc != TPM2_RC_SUCCESS)
            return rc;
        size_t take = n - done < hlen ? n - done : hlen;
        memcpy(out + done, block, take);
        done += take;
    }
    cf_wipe(block, sizeof block);
    return TPM2_RC_SUCCESS;
}

tpm_rc tpm_kdfe(TPM2_ALG_ID hash, const uint8_t *z, size_t zlen, const char *label,
                const uint8_t *u, size_t ulen, const uint8_t *v, size_t vlen, uint32_t bits, uint8_t *out)
{
    size_t hlen = tpm_hash_size(hash);
    TPM_ENSURE(hlen > 0, TPM2_RC_HASH);
    size_t n = (bits + 7) / 8;
    uint8_t block[CF_HASH_MAX], ctr[4];
    static const uint8_t zero[1] = { 0 };
    size_t llen = label ? strlen(label) : 0;
    for (size_t done = 0, i = 1; done < n; i++) {
        be32(ctr, (uint32_t)i);
        tpm_rc rc = tpm_hash_v(hash, block, ctr, (size_t)4, z ? (const void *)z : (const void *)zero,
                               z ? zlen : (size_t)0, llen ? (const void *)label : (const void *)zero, llen,
                               zero, (size_t)1, u ? (const void *)u : (const void *)zero, u ? ulen : (size_t)0,
                               v ? (const void *)v : (const void *)zero, v ? vlen : (size_t)0, NULL);
        if (rc != TPM2_RC_SUCCESS) {
            cf_wipe(out, n);
            return rc;
        }
        size_t take = n - done < hlen ? n - done : hlen;
        memcpy(out + done, block, take);
        done += take;
    }
    cf_wipe(block, sizeof block);
    mask_top(out, bits);
    return TPM2_RC_SUCCESS;
}
