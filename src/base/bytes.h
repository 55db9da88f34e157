/* bytes.h: the bounded reader and writer every untrusted byte goes through.
 *
 * A reader is a view (pointer, length, offset) over bytes it does not own. Every get checks the
 * bound as `n > len - off` (no overflow) and, on failure, returns CF_E_SHORT with the offset left
 * unchanged, so a caller that fails half-way can report the error without having consumed input.
 * Integers are big-endian (TPM and the store's record format); _le variants exist for the few
 * little-endian formats. A writer appends to a caller buffer (fixed) or to a growable heap buffer;
 * a fixed writer that runs out returns CF_E_BUFFER_TOO_SMALL and still counts the bytes it would
 * have needed, which gives the PKCS#11 length protocol for free. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t off;
} cf_reader;

static inline cf_reader cf_reader_init(const void *p, size_t len)
{
    cf_reader r = { (const uint8_t *)p, p ? len : 0, 0 };
    return r;
}
static inline size_t cf_reader_left(const cf_reader *r) { return r->len - r->off; }
static inline bool cf_reader_done(const cf_reader *r) { return r->off == r->len; }

cf_err cf_get_u8(cf_reader *r, uint8_t *v) CF_WARN_UNUSED;
cf_err cf_get_u16(cf_reader *r, uint16_t *v) CF_WARN_UNUSED;
cf_err cf_get_u32(cf_reader *r, uint32_t *v) CF_WARN_UNUSED;
cf_err cf_get_u64(cf_reader *r, uint64_t *v) CF_WARN_UNUSED;
cf_err cf_get_u32_le(cf_reader *r, uint32_t *v) CF_WARN_UNUSED;
/* Copies n bytes out. */
cf_err cf_get_bytes(cf_reader *r, void *out, size_t n) CF_WARN_UNUSED;
/* Points *p at the next n bytes (no copy) and advances. */
cf_err cf_get_view(cf_reader *r, const uint8_t **p, size_t n) CF_WARN_UNUSED;
cf_err cf_skip(cf_reader *r, size_t n) CF_WARN_UNUSED;
/* Length-prefixed field (u16 or u32 big-endian length, then that many bytes) as a child reader.
 * The parent advances past the whole field only if it is complete. */
cf_err cf_get_sized16(cf_reader *r, cf_reader *child) CF_WARN_UNUSED;
cf_err cf_get_sized32(cf_reader *r, cf_reader *child) CF_WARN_UNUSED;

typedef struct {
    uint8_t *p;
    size_t cap;
    size_t len;      /* bytes written, or needed when it overflowed */
    bool growable;   /* heap buffer owned by the writer */
    bool overflow;   /* a fixed writer ran out of room */
    bool nomem;
} cf_writer;

/* Fixed writer over caller memory; p may be NULL with cap 0 to only measure. */
cf_writer cf_writer_fixed(void *p, size_t cap);
/* Growable writer; free with cf_writer_free (wipes). */
cf_writer cf_writer_heap(void);
void cf_writer_free(cf_writer *w);
/* Hands the heap buffer to the caller (who frees it with cf_free_secret / free). */
uint8_t *cf_writer_take(cf_writer *w, size_t *len);

void cf_put_u8(cf_writer *w, uint8_t v);
void cf_put_u16(cf_writer *w, uint16_t v);
void cf_put_u32(cf_writer *w, uint32_t v);
void cf_put_u64(cf_writer *w, uint64_t v);
void cf_put_bytes(cf_writer *w, const void *p, size_t n);
/* The status of every put so far: OK, BUFFER_TOO_SMALL (fixed, w->len is the size needed) or NOMEM. */
cf_err cf_writer_status(const cf_writer *w);
