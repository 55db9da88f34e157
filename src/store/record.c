/* record.c: an object's attributes as one blob, and the sealing of secret values.
 *
 * Layout (store.h): u8 version(1) | u32 count | count x { u64 type | u8 flags | u32 len | value }.
 * On disk the flags byte is 0 or CF_ATTR_SECRET, and a secret value is iv(12) | ct | tag(16),
 * AES-256-GCM under the token's data key with AAD = u64 object_id | u64 type (big-endian).
 * The encoding is canonical: decoding then re-encoding (sealed values kept) gives the same bytes,
 * which the fuzz harness checks.
 *
 * Every decode error is CF_E_STORE_CORRUPT: stored bytes that do not parse were damaged or
 * tampered with, and the callers (the token engine) treat both the same way. */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "crypto/crypto.h"
#include "store/store_int.h"

void cf_attrs_free(cf_attr *a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        cf_free_wiped(a[i].val, a[i].len);
    free(a);
}

static void make_aad(uint8_t aad[16], int64_t object_id, uint64_t type)
{
    cf_writer w = cf_writer_fixed(aad, 16);
    cf_put_u64(&w, (uint64_t)object_id);
    cf_put_u64(&w, type);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* True when two attributes share a type. Sorting a copy keeps this O(n log n) for 4096 attrs. */
static cf_err has_duplicates(const uint64_t *types, size_t n, bool *dup)
{
    *dup = false;
    if (n < 2)
        return CF_OK;
    uint64_t *t = malloc(n * sizeof *t);
    CF_ENSURE(t, CF_E_NOMEM);
    memcpy(t, types, n * sizeof *t);
    qsort(t, n, sizeof *t, cmp_u64);
    for (size_t i = 1; i < n && !*dup; i++)
        *dup = t[i] == t[i - 1];
    free(t);
    return CF_OK;
}

/* Writes a secret value sealed: iv | ct | tag. */
static cf_err put_sealed(cf_writer *w, const uint8_t dk[CF_DATA_KEY_LEN], int64_t object_id,
                         const cf_attr *a)
{
    uint8_t iv[CF_GCM_IV_LEN], tag[CF_GCM_TAG_LEN], aad[16];
    uint8_t *ct = NULL;
    cf_err rv;
    if (a->len) {
        ct = malloc(a->len);
        CF_ENSURE(ct, CF_E_NOMEM);
    }
    make_aad(aad, object_id, a->type);
    /* A fresh random IV per value: one data key seals many values over the token's life, and
     * 2^-32 collision bounds (SP 800-38D 8.3) are far beyond what a token stores. */
    CF_GUARD(cf_random(iv, sizeof iv));
    CF_GUARD(cf_aes_gcm_seal(dk, CF_DATA_KEY_LEN, iv, sizeof iv, aad, sizeof aad, a->val, a->len,
                             ct, tag, sizeof tag));
    cf_put_bytes(w, iv, sizeof iv);
    cf_put_bytes(w, ct, a->len);
    cf_put_bytes(w, tag, sizeof tag);
out:
    free(ct);
    return rv;
}

cf_err cf_store_record_encode(const cf_attr *a, size_t n, int64_t object_id,
                              const uint8_t dk[CF_DATA_KEY_LEN], cf_writer *w)
{
    CF_ENSURE(w && (a || n == 0) && n <= CF_STORE_MAX_ATTRS, CF_E_ARGS);
    uint64_t *types = NULL;
    bool dup;
    cf_err rv = CF_OK;

    /* Check everything before writing anything. */
    if (n) {
        types = malloc(n * sizeof *types);
        CF_ENSURE(types, CF_E_NOMEM);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t f = a[i].flags;
        CF_CHECK((f & ~(uint32_t)(CF_ATTR_SECRET | CF_ATTR_SEALED)) == 0, CF_E_ARGS);
        CF_CHECK(a[i].val || a[i].len == 0, CF_E_ARGS);
        if (f & CF_ATTR_SEALED) {
            /* Already iv | ct | tag, bound to this object id when it was sealed. */
            CF_CHECK(a[i].len >= CF_STORE_SEAL_OVERHEAD && a[i].len <= CF_STORE_MAX_VALUE, CF_E_ARGS);
        } else if (f & CF_ATTR_SECRET) {
            CF_CHECK(dk, CF_E_ARGS);
            CF_CHECK(a[i].len <= CF_STORE_MAX_VALUE - CF_STORE_SEAL_OVERHEAD, CF_E_ARGS);
        } else {
            CF_CHECK(a[i].len <= CF_STORE_MAX_VALUE, CF_E_ARGS);
        }
        types[i] = a[i].type;
    }
    CF_GUARD(has_duplicates(types, n, &dup));
    CF_CHECK(!dup, CF_E_ARGS);

    cf_put_u8(w, CF_STORE_RECORD_VERSION);
    cf_put_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const cf_attr *x = &a[i];
        cf_put_u64(w, x->type);
        if (x->flags & CF_ATTR_SEALED) {
            cf_put_u8(w, CF_ATTR_SECRET);
            cf_put_u32(w, (uint32_t)x->len);
            cf_put_bytes(w, x->val, x->len);
        } else if (x->flags & CF_ATTR_SECRET) {
            cf_put_u8(w, CF_ATTR_SECRET);
            cf_put_u32(w, (uint32_t)(x->len + CF_STORE_SEAL_OVERHEAD));
            CF_GUARD(put_sealed(w, dk, object_id, x));
        } else {
            cf_put_u8(w, 0);
            cf_put_u32(w, (uint32_t)x->len);
            cf_put_bytes(w, x->val, x->len);
        }
    }
    rv = cf_writer_status(w);
out:
    free(types);
    return rv;
}

cf_err cf_store_record_decode(cf_reader *r, cf_attr **out, size_t *n)
{
    CF_ENSURE(r && out && n, CF_E_ARGS);
    cf_reader c = *r;   /* work on a copy; r moves only on success */
    cf_attr *attrs = NULL;
    uint64_t *types = NULL;
    size_t count = 0, got = 0;
    uint8_t ver;
    uint32_t cnt;
    bool dup;
    cf_err rv = CF_OK;

    CF_CHECK(cf_get_u8(&c, &ver) == CF_OK && ver == CF_STORE_RECORD_VERSION, CF_E_STORE_CORRUPT);
    CF_CHECK(cf_get_u32(&c, &cnt) == CF_OK && cnt <= CF_STORE_MAX_ATTRS, CF_E_STORE_CORRUPT);
    count = cnt;
    /* Each attribute takes at least 13 bytes: refuse a count the input cannot hold before
     * allocating for it. */
    CF_CHECK(count <= cf_reader_left(&c) / 13, CF_E_STORE_CORRUPT);
    if (count) {
        attrs = calloc(count, sizeof *attrs);
        types = malloc(count * sizeof *types);
        CF_CHECK(attrs && types, CF_E_NOMEM);
    }
    for (got = 0; got < count; got++) {
        uint64_t type;
        uint8_t flags;
        uint32_t len;
        const uint8_t *v;
        CF_CHECK(cf_get_u64(&c, &type) == CF_OK, CF_E_STORE_CORRUPT);
        CF_CHECK(cf_get_u8(&c, &flags) == CF_OK, CF_E_STORE_CORRUPT);
        CF_CHECK(flags == 0 || flags == CF_ATTR_SECRET, CF_E_STORE_CORRUPT);
        CF_CHECK(cf_get_u32(&c, &len) == CF_OK && len <= CF_STORE_MAX_VALUE, CF_E_STORE_CORRUPT);
        CF_CHECK(!(flags & CF_ATTR_SECRET) || len >= CF_STORE_SEAL_OVERHEAD, CF_E_STORE_CORRUPT);
        CF_CHECK(cf_get_view(&c, &v, len) == CF_OK, CF_E_STORE_CORRUPT);
        cf_attr *x = &attrs[got];
        x->type = type;
        x->flags = flags & CF_ATTR_SECRET ? CF_ATTR_SECRET | CF_ATTR_SEALED : 0;
        x->len = len;
        if (len) {
            x->val = malloc(len);
            CF_CHECK(x->val, CF_E_NOMEM);
            memcpy(x->val, v, len);
        }
        types[got] = type;
    }
    CF_CHECK(cf_reader_done(&c), CF_E_STORE_CORRUPT);
    CF_GUARD(has_duplicates(types, count, &dup));
    CF_CHECK(!dup, CF_E_STORE_CORRUPT);
    *r = c;
    *out = attrs;
    *n = count;
    attrs = NULL;
out:
    free(types);
    /* calloc'd: slots not reached hold NULL values. */
    cf_attrs_free(attrs, count);
    return rv;
}

cf_err cf_store_attr_unseal(const uint8_t dk[CF_DATA_KEY_LEN], int64_t object_id, cf_attr *a)
{
    CF_ENSURE(dk && a && (a->flags & CF_ATTR_SEALED), CF_E_ARGS);
    CF_ENSURE(a->val && a->len >= CF_STORE_SEAL_OVERHEAD, CF_E_STORE_CORRUPT);
    size_t ptlen = a->len - CF_STORE_SEAL_OVERHEAD;
    uint8_t aad[16];
    uint8_t *pt = NULL;
    cf_reader r = cf_reader_init(a->val, a->len);
    const uint8_t *iv, *ct, *tag;
    /* Cannot fail: the length was checked above. */
    if (cf_get_view(&r, &iv, CF_GCM_IV_LEN) != CF_OK || cf_get_view(&r, &ct, ptlen) != CF_OK
        || cf_get_view(&r, &tag, CF_GCM_TAG_LEN) != CF_OK)
        return CF_E_STORE_CORRUPT;
    if (ptlen) {
        pt = malloc(ptlen);
        CF_ENSURE(pt, CF_E_NOMEM);
    }
    make_aad(aad, object_id, a->type);
    cf_err rv = cf_aes_gcm_open(dk, CF_DATA_KEY_LEN, iv, CF_GCM_IV_LEN, aad, sizeof aad, ct, ptlen,
                                tag, CF_GCM_TAG_LEN, pt);
    if (rv != CF_OK) {
        cf_free_wiped(pt, ptlen);   /* open zeroed it; wipe anyway, cheap */
        return rv == CF_E_ENCRYPTED_DATA_INVALID ? CF_E_STORE_CORRUPT : rv;
    }
    free(a->val);   /* ciphertext: nothing secret */
    a->val = pt;
    a->len = ptlen;
    a->flags &= ~(uint32_t)CF_ATTR_SEALED;
    return CF_OK;
}
