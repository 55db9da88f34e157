/* mech_aes.c: the AES mechanisms (PKCS#11 3.0 sec. 2.15 - 2.16, 2.14 for key wrap): ECB, CBC,
 * CBC_PAD, CTR and GCM encryption, RFC 3394 / RFC 5649 key wrapping.
 *
 * Output lengths are predicted exactly (as cf_cipher releases its output: whole blocks, a padded
 * decrypt holding back its last block) so that a caller sizing its buffer from the length query
 * gets what it asked for. GCM decryption releases nothing before the tag is checked: the input
 * is gathered and decrypted at the final call (sec. 2.16.3: the last ulTagBits/8 bytes are the
 * tag).
 *
 * No reset for these operations: GCM must not run twice with one IV, and the IV and AAD of GCM
 * are behind pointers, so equal parameter bytes do not prove equal parameters. */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "hsm/mech_util.h"

#define BLOCK 16
/* GCM decryption gathers its input; this bounds what a caller can make us hold. */
#define GCM_DEC_BUF_MAX (64u * 1024 * 1024)

typedef struct {
    cf_cipher *c;
    cf_aes_mode mode;
    bool enc;
    size_t tag_len;          /* GCM */
    uint64_t total;          /* input bytes given to the cipher */
    /* CTR: the counter is the low ulCounterBits of the counter block and must not wrap
     * (sec. 2.15.5), so the data is limited to ctr_blocks blocks unless ctr_unlimited. */
    bool ctr_unlimited;
    uint64_t ctr_blocks;
    hsm_inbuf gcm_in;        /* GCM decrypt: ciphertext || tag until final */
} aes_ctx;

static bool gcm_dec(const aes_ctx *c) { return c->mode == CF_AES_GCM && !c->enc; }

static cf_err data_err(const aes_ctx *c)
{
    return c->enc ? CF_E_DATA_LEN_RANGE : CF_E_ENCRYPTED_DATA_LEN_RANGE;
}

/* What cf_cipher has released after t input bytes. */
static uint64_t produced(const aes_ctx *c, uint64_t t)
{
    switch (c->mode) {
    case CF_AES_CTR:
    case CF_AES_GCM:
    case CF_AES_CFB:   /* not offered as PKCS#11 mechanisms; stream modes all the same */
    case CF_AES_OFB:
        return t;
    case CF_AES_CBC_PAD:
        if (!c->enc)
            return t == 0 ? 0 : (t % BLOCK == 0 ? t - BLOCK : t - t % BLOCK);
        return t - t % BLOCK;
    case CF_AES_ECB:
    case CF_AES_CBC:
        return t - t % BLOCK;
    }
    return t;
}

/* Blocks available to a CTR counter of `bits` low bits starting at cb. */
static void ctr_limit(aes_ctx *c, const uint8_t cb[16], unsigned bits)
{
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | cb[i];
        lo = lo << 8 | cb[8 + i];
    }
    c->ctr_unlimited = true;
    if (bits < 64) {
        uint64_t v = lo & ((UINT64_C(1) << bits) - 1);
        c->ctr_blocks = (UINT64_C(1) << bits) - v;
        c->ctr_unlimited = false;
        return;
    }
    /* 2^bits - v >= 2^64 blocks (more than any byte count) unless every counter bit from 64 up
     * is set and the low word is not zero. */
    uint64_t himask = bits >= 128 ? UINT64_MAX : ((UINT64_C(1) << (bits - 64)) - 1);
    if ((hi & himask) == himask && lo != 0) {
        c->ctr_blocks = (~lo) + 1;
        c->ctr_unlimited = false;
    }
}

static cf_err ctr_check(const aes_ctx *c, size_t inlen)
{
    if (c->mode != CF_AES_CTR || c->ctr_unlimited)
        return CF_OK;
    CF_ENSURE(inlen <= UINT64_MAX - c->total, data_err(c));
    uint64_t t = c->total + inlen;
    uint64_t blocks = t / BLOCK + (t % BLOCK != 0);
    CF_ENSURE(blocks <= c->ctr_blocks, data_err(c));
    return CF_OK;
}

static cf_err aes_init(hsm_op *op, const CK_MECHANISM *m)
{
    CF_ENSURE(op->kind == HSM_OP_ENCRYPT || op->kind == HSM_OP_DECRYPT, CF_E_MECHANISM_INVALID);
    const hsm_key *k = &op->key;
    CF_ENSURE(k->secret, CF_E_KEY_TYPE_INCONSISTENT);
    CF_ENSURE(k->secret_len == 16 || k->secret_len == 24 || k->secret_len == 32, CF_E_KEY_SIZE_RANGE);

    cf_aes_mode mode;
    const uint8_t *iv = NULL, *aad = NULL;
    size_t ivlen = 0, aadlen = 0, tag_len = 0;
    unsigned ctr_bits = 0;
    switch (m->mechanism) {
    case CKM_AES_ECB:
        mode = CF_AES_ECB;
        CF_TRY(hsm_param_none(m));
        break;
    case CKM_AES_CBC:
    case CKM_AES_CBC_PAD:
        mode = m->mechanism == CKM_AES_CBC ? CF_AES_CBC : CF_AES_CBC_PAD;
        CF_TRY(hsm_param(m, BLOCK, (const void **)&iv));   /* the IV itself */
        ivlen = BLOCK;
        break;
    case CKM_AES_CTR: {
        const CK_AES_CTR_PARAMS *cp;
        mode = CF_AES_CTR;
        CF_TRY(hsm_param(m, sizeof *cp, (const void **)&cp));
        CF_ENSURE(cp->ulCounterBits >= 1 && cp->ulCounterBits <= 128, CF_E_MECHANISM_PARAM_INVALID);
        ctr_bits = (unsigned)cp->ulCounterBits;
        iv = cp->cb;
        ivlen = BLOCK;
        break;
    }
    case CKM_AES_GCM: {
        const CK_GCM_PARAMS *gp;
        mode = CF_AES_GCM;
        CF_TRY(hsm_param(m, sizeof *gp, (const void **)&gp));
        /* ulIvBits is ignored: clients disagree on it and ulIvLen says the same. */
        CF_ENSURE(gp->pIv && gp->ulIvLen >= 1 && gp->ulIvLen <= 256, CF_E_MECHANISM_PARAM_INVALID);
        CF_ENSURE(gp->pAAD || gp->ulAADLen == 0, CF_E_MECHANISM_PARAM_INVALID);
        switch (gp->ulTagBits) {
        case 32: case 64: case 96: case 104: case 112: case 120: case 128:   /* SP 800-38D 5.2.1.2 */
            break;
        default:
            return CF_E_MECHANISM_PARAM_INVALID;
        }
        iv = gp->pIv;
        ivlen = gp->ulIvLen;
        aad = gp->ulAADLen ? gp->pAAD : NULL;
        aadlen = gp->ulAADLen;
        tag_len = gp->ulTagBits / 8;
        break;
    }
    default:
        return CF_E_MECHANISM_INVALID;
    }

    aes_ctx *c = calloc(1, sizeof *c);
    CF_ENSURE(c, CF_E_NOMEM);
    c->mode = mode;
    c->enc = op->kind == HSM_OP_ENCRYPT;
    c->tag_len = tag_len;
    c->ctr_unlimited = true;
    if (mode == CF_AES_CTR)
        ctr_limit(c, iv, ctr_bits);
    cf_err rv = cf_cipher_new(mode, c->enc, k->secret, k->secret_len, iv, ivlen, aad, aadlen, tag_len, &c->c);
    if (rv != CF_OK) {
        free(c);
        return rv;
    }
    op->ctx = c;
    return CF_OK;
}

static size_t aes_out_len(const hsm_op *op, hsm_step step, size_t inlen)
{
    const aes_ctx *c = op->ctx;
    if (inlen > SIZE_MAX - 2 * BLOCK)
        return SIZE_MAX;
    switch (step) {
    case HSM_STEP_ONESHOT:
        if (gcm_dec(c))
            return inlen >= c->tag_len ? inlen - c->tag_len : 0;
        if (c->mode == CF_AES_CBC_PAD)
            return c->enc ? inlen - inlen % BLOCK + BLOCK : (inlen ? inlen - 1 : 0);
        return (size_t)produced(c, inlen) + c->tag_len;
    case HSM_STEP_UPDATE:
        if (gcm_dec(c))
            return 0;
        return (size_t)(produced(c, c->total + inlen) - produced(c, c->total));
    case HSM_STEP_FINAL:
        if (gcm_dec(c))
            return c->gcm_in.len >= c->tag_len ? c->gcm_in.len - c->tag_len : 0;
        if (c->mode == CF_AES_CBC_PAD)
            return c->enc ? BLOCK : (c->total ? BLOCK - 1 : 0);   /* at least one pad byte */
        return c->tag_len;   /* GCM encrypt: the tag; else nothing */
    }
    return 0;
}

/* GCM decryption of ct || tag into out: nothing is left in out unless the tag verifies. */
static cf_err gcm_open(aes_ctx *c, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    CF_ENSURE(inlen >= c->tag_len, CF_E_ENCRYPTED_DATA_LEN_RANGE);
    size_t ctlen = inlen - c->tag_len;
    if ((!out && ctlen) || *outlen < ctlen) {
        *outlen = ctlen;
        return CF_E_BUFFER_TOO_SMALL;
    }
    size_t w = *outlen, n;
    uint8_t tail[BLOCK];
    cf_err rv;
    CF_GUARD(cf_cipher_update(c->c, in, ctlen, out, &w));
    CF_GUARD(cf_cipher_set_tag(c->c, in + ctlen, c->tag_len));
    n = sizeof tail;
    CF_GUARD(cf_cipher_final(c->c, tail, &n));
    CF_CHECK(n == 0, CF_E_INTERNAL);
    *outlen = w;
out:
    if (rv != CF_OK && out) {
        cf_wipe(out, ctlen);
        *outlen = 0;
    }
    return rv;
}

static cf_err aes_oneshot(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    aes_ctx *c = op->ctx;
    static const uint8_t empty;
    if (!in)
        in = &empty;
    if (gcm_dec(c))
        return gcm_open(c, in, inlen, out, outlen);
    /* Length errors before any output is produced. */
    if (c->mode == CF_AES_ECB || c->mode == CF_AES_CBC)
        CF_ENSURE(inlen % BLOCK == 0, data_err(c));
    if (c->mode == CF_AES_CBC_PAD && !c->enc)
        CF_ENSURE(inlen % BLOCK == 0 && inlen > 0, CF_E_ENCRYPTED_DATA_LEN_RANGE);
    CF_TRY(ctr_check(c, inlen));
    size_t need = aes_out_len(op, HSM_STEP_ONESHOT, inlen);
    if (!out || *outlen < need) {
        *outlen = need;
        return CF_E_BUFFER_TOO_SMALL;
    }
    size_t cap = *outlen, w1 = cap, w2;
    CF_TRY(cf_cipher_update(c->c, in, inlen, out, &w1));
    c->total += inlen;
    w2 = cap - w1;
    cf_err rv = cf_cipher_final(c->c, out + w1, &w2);
    if (rv != CF_OK) {
        cf_wipe(out, w1);
        *outlen = 0;
        return rv;
    }
    *outlen = w1 + w2;
    return CF_OK;
}

static cf_err aes_update(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    aes_ctx *c = op->ctx;
    if (gcm_dec(c)) {
        *outlen = 0;
        return hsm_inbuf_add(&c->gcm_in, in, inlen, GCM_DEC_BUF_MAX, CF_E_ENCRYPTED_DATA_LEN_RANGE);
    }
    CF_TRY(ctr_check(c, inlen));
    static const uint8_t empty;
    CF_TRY(cf_cipher_update(c->c, in ? in : &empty, inlen, out, outlen));
    c->total += inlen;
    return CF_OK;
}

static cf_err aes_final(hsm_op *op, uint8_t *out, size_t *outlen)
{
    aes_ctx *c = op->ctx;
    if (!gcm_dec(c))
        return cf_cipher_final(c->c, out, outlen);
    static const uint8_t empty;
    cf_err rv = gcm_open(c, c->gcm_in.p ? c->gcm_in.p : &empty, c->gcm_in.len, out, outlen);
    if (rv != CF_E_BUFFER_TOO_SMALL)
        hsm_inbuf_clear(&c->gcm_in);
    return rv;
}

static void aes_cleanup(hsm_op *op)
{
    aes_ctx *c = op->ctx;
    if (!c)
        return;
    cf_cipher_free(c->c);
    hsm_inbuf_free(&c->gcm_in);
    free(c);
    op->ctx = NULL;
}

const hsm_op_impl hsm_ops_aes = {
    .init = aes_init, .out_len = aes_out_len, .oneshot = aes_oneshot, .update = aes_update,
    .final = aes_final, .cleanup = aes_cleanup,
};

/* ---- key wrap (RFC 3394, RFC 5649) ----------------------------------------------------------- */
/* The optional parameter is the initial value. Only the defaults of the RFCs are supported
 * (RFC 3394 sec. 2.2.3.1: A6A6A6A6A6A6A6A6; RFC 5649 sec. 3: the AIV prefix A65959A6), so a
 * parameter is accepted only when it names the default; anything else is
 * MECHANISM_PARAM_INVALID. */
static cf_err wrap_params(const CK_MECHANISM *m, bool *pad)
{
    static const uint8_t iv3394[8] = { 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6 };
    static const uint8_t iv5649[4] = { 0xa6, 0x59, 0x59, 0xa6 };
    CF_ENSURE(m->mechanism == CKM_AES_KEY_WRAP || m->mechanism == CKM_AES_KEY_WRAP_PAD,
              CF_E_MECHANISM_INVALID);
    *pad = m->mechanism == CKM_AES_KEY_WRAP_PAD;
    if (!m->pParameter && m->ulParameterLen == 0)
        return CF_OK;
    const uint8_t *want = *pad ? iv5649 : iv3394;
    size_t wlen = *pad ? sizeof iv5649 : sizeof iv3394;
    const void *p;
    CF_TRY(hsm_param(m, wlen, &p));
    CF_ENSURE(memcmp(p, want, wlen) == 0, CF_E_MECHANISM_PARAM_INVALID);
    return CF_OK;
}

static bool aes_key_len_ok(size_t n) { return n == 16 || n == 24 || n == 32; }

cf_err hsm_aes_wrap(const CK_MECHANISM *m, const hsm_key *wrapping, const uint8_t *in,
                    size_t inlen, uint8_t *out, size_t *outlen)
{
    bool pad;
    CF_TRY(wrap_params(m, &pad));
    CF_ENSURE(wrapping->secret && wrapping->cls == CKO_SECRET_KEY, CF_E_WRAPPING_KEY_TYPE_INCONSISTENT);
    CF_ENSURE(aes_key_len_ok(wrapping->secret_len), CF_E_KEY_SIZE_RANGE);
    /* What the RFCs can wrap: 3394 whole 64-bit blocks, at least two; 5649 at least a byte. */
    if (pad)
        CF_ENSURE(inlen >= 1 && inlen <= UINT32_MAX, CF_E_KEY_SIZE_RANGE);
    else
        CF_ENSURE(inlen >= 16 && inlen % 8 == 0, CF_E_KEY_SIZE_RANGE);
    size_t need = cf_aes_wrap_len(pad, inlen);
    CF_ENSURE(need, CF_E_KEY_SIZE_RANGE);
    if (!out || *outlen < need) {
        *outlen = need;
        return out ? CF_E_BUFFER_TOO_SMALL : CF_OK;
    }
    cf_err rv = cf_aes_key_wrap(pad, wrapping->secret, wrapping->secret_len, in, inlen, out, outlen);
    return rv == CF_E_DATA_LEN_RANGE ? CF_E_KEY_SIZE_RANGE : rv;
}

cf_err hsm_aes_unwrap(const CK_MECHANISM *m, const hsm_key *unwrapping, const uint8_t *in,
                      size_t inlen, cf_buf *out)
{
    bool pad;
    CF_TRY(wrap_params(m, &pad));
    CF_ENSURE(unwrapping->secret && unwrapping->cls == CKO_SECRET_KEY,
              CF_E_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    CF_ENSURE(aes_key_len_ok(unwrapping->secret_len), CF_E_KEY_SIZE_RANGE);
    CF_ENSURE(inlen % 8 == 0 && inlen >= (pad ? 16u : 24u), CF_E_WRAPPED_KEY_LEN_RANGE);
    size_t max = inlen - 8;
    uint8_t *buf = calloc(1, max);
    CF_ENSURE(buf, CF_E_NOMEM);
    size_t n = max;
    cf_err rv = cf_aes_key_unwrap(pad, unwrapping->secret, unwrapping->secret_len, in, inlen, buf, &n);
    if (rv != CF_OK) {
        cf_free_wiped(buf, max);
        return rv;
    }
    cf_wipe(buf + n, max - n);   /* cf_buf_free wipes only len bytes */
    out->p = buf;
    out->len = n;
    return CF_OK;
}
