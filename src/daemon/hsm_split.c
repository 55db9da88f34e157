/* hsm_split.c: where one frame ends in a connection's input, and the input buffer itself (see
 * hsm_server.h). No I/O and no locks, so that tests/fuzz/hsm_split.c can drive it with any byte
 * stream cut at any places. */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "daemon/hsm_server.h"

hsrv_split_result hsrv_split(const uint8_t *p, size_t n, size_t *len)
{
    size_t total;
    /* rpc_frame_size reads the length field through the bounded reader: SHORT below 4 bytes */
    switch (rpc_frame_size(p, n, &total)) {
    case CF_OK:
        break;
    case CF_E_SHORT:
        *len = 4;
        return HSRV_SPLIT_NEED;
    default:
        *len = 0;
        return HSRV_SPLIT_BAD;
    }
    *len = total;
    return total <= n ? HSRV_SPLIT_FRAME : HSRV_SPLIT_NEED;
}

/* Moves the bytes to a new block of cap bytes. Not realloc: the old block held PINs, and realloc
 * may free it unwiped. */
static cf_err inbuf_move(hsrv_inbuf *b, size_t cap)
{
    uint8_t *p = malloc(cap);
    if (!p)
        return CF_E_NOMEM;
    if (b->len)
        memcpy(p, b->p, b->len);
    cf_free_wiped(b->p, b->cap);
    b->p = p;
    b->cap = cap;
    return CF_OK;
}

cf_err hsrv_inbuf_room(hsrv_inbuf *b, size_t need)
{
    size_t want = need > HSRV_INBUF_DEFAULT ? need : HSRV_INBUF_DEFAULT;
    if (want > HSRV_FRAME_MAX)
        want = HSRV_FRAME_MAX;
    if (want <= b->len)            /* the front frame is whole: serve it before reading more */
        want = b->len + 1;
    if (b->cap >= want)
        return CF_OK;
    return inbuf_move(b, want);
}

void hsrv_inbuf_consume(hsrv_inbuf *b, size_t n)
{
    if (n > b->len)
        n = b->len;
    size_t rest = b->len - n;
    if (n && rest)
        memmove(b->p, b->p + n, rest);
    if (n)
        cf_wipe(b->p + rest, b->len - rest);
    b->len = rest;
    /* one large frame must not pin a megabyte to an idle connection */
    if (b->cap > HSRV_INBUF_DEFAULT && b->len == 0) {
        cf_free_wiped(b->p, b->cap);
        b->p = NULL;
        b->cap = 0;
    }
}

void hsrv_inbuf_free(hsrv_inbuf *b)
{
    cf_free_wiped(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}
