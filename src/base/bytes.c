/* bytes.c: bounded reader/writer. See bytes.h for the contract. */
#include "base/bytes.h"
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"

static inline bool have(const cf_reader *r, size_t n) { return !(n > r->len - r->off); }

cf_err cf_get_view(cf_reader *r, const uint8_t **p, size_t n)
{
    CF_ENSURE(have(r, n), CF_E_SHORT);
    *p = r->p + r->off;
    r->off += n;
    return CF_OK;
}

cf_err cf_skip(cf_reader *r, size_t n)
{
    const uint8_t *p;
    return cf_get_view(r, &p, n);
}

cf_err cf_get_bytes(cf_reader *r, void *out, size_t n)
{
    const uint8_t *p;
    CF_TRY(cf_get_view(r, &p, n));
    if (n)
        memcpy(out, p, n);
    return CF_OK;
}

cf_err cf_get_u8(cf_reader *r, uint8_t *v)
{
    const uint8_t *p;
    CF_TRY(cf_get_view(r, &p, 1));
    *v = p[0];
    return CF_OK;
}

cf_err cf_get_u16(cf_reader *r, uint16_t *v)
{
    const uint8_t *p;
    CF_TRY(cf_get_view(r, &p, 2));
    *v = (uint16_t)(p[0] << 8 | p[1]);
    return CF_OK;
}

cf_err cf_get_u32(cf_reader *r, uint32_t *v)
{
    const uint8_t *p;
    CF_TRY(cf_get_view(r, &p, 4));
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return CF_OK;
}

cf_err cf_get_u32_le(cf_reader *r, uint32_t *v)
{
    const uint8_t *p;
    CF_TRY(cf_get_view(r, &p, 4));
    *v = (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
    return CF_OK;
}

cf_err cf_get_u64(cf_reader *r, uint64_t *v)
{
    const uint8_t *p;
    CF_TRY(cf_get_view(r, &p, 8));
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    *v = x;
    return CF_OK;
}

static cf_err get_sized(cf_reader *r, cf_reader *child, int width)
{
    size_t save = r->off, n;
    if (width == 2) {
        uint16_t v;
        CF_TRY(cf_get_u16(r, &v));
        n = v;
    } else {
        uint32_t v;
        CF_TRY(cf_get_u32(r, &v));
        n = v;
    }
    const uint8_t *p;
    if (cf_get_view(r, &p, n) != CF_OK) {
        r->off = save;
        return CF_E_SHORT;
    }
    *child = cf_reader_init(p, n);
    return CF_OK;
}

cf_err cf_get_sized16(cf_reader *r, cf_reader *child) { return get_sized(r, child, 2); }
cf_err cf_get_sized32(cf_reader *r, cf_reader *child) { return get_sized(r, child, 4); }

cf_writer cf_writer_fixed(void *p, size_t cap)
{
    cf_writer w = { (uint8_t *)p, p ? cap : 0, 0, false, false, false };
    return w;
}

cf_writer cf_writer_heap(void)
{
    cf_writer w = { NULL, 0, 0, true, false, false };
    return w;
}

void cf_writer_free(cf_writer *w)
{
    if (w->growable && w->p) {
        cf_wipe(w->p, w->cap);
        free(w->p);
    }
    w->p = NULL;
    w->cap = w->len = 0;
}

uint8_t *cf_writer_take(cf_writer *w, size_t *len)
{
    uint8_t *p = w->p;
    *len = w->len;
    w->p = NULL;
    w->cap = w->len = 0;
    return p;
}

static bool reserve(cf_writer *w, size_t n)
{
    if (w->nomem || w->overflow || n > SIZE_MAX - w->len) {
        if (!w->growable)
            w->overflow = true;
        return false;
    }
    if (w->len + n <= w->cap)
        return true;
    if (!w->growable) {
        w->overflow = true;
        return false;
    }
    size_t cap = w->cap ? w->cap : 64;
    while (cap < w->len + n)
        cap *= 2;
    uint8_t *np = malloc(cap);
    if (!np) {
        w->nomem = true;
        return false;
    }
    if (w->p) {
        memcpy(np, w->p, w->len);
        cf_wipe(w->p, w->cap); /* the old buffer may hold secrets */
        free(w->p);
    }
    w->p = np;
    w->cap = cap;
    return true;
}

void cf_put_bytes(cf_writer *w, const void *p, size_t n)
{
    if (reserve(w, n) && n)
        memcpy(w->p + w->len, p, n);
    if (!w->nomem)
        w->len += n;
}

void cf_put_u8(cf_writer *w, uint8_t v) { cf_put_bytes(w, &v, 1); }
void cf_put_u16(cf_writer *w, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    cf_put_bytes(w, b, 2);
}
void cf_put_u32(cf_writer *w, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    cf_put_bytes(w, b, 4);
}
void cf_put_u64(cf_writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    cf_put_bytes(w, b, 8);
}

cf_err cf_writer_status(const cf_writer *w)
{
    if (w->nomem)
        return CF_E_NOMEM;
    if (w->overflow)
        return CF_E_BUFFER_TOO_SMALL;
    return CF_OK;
}
