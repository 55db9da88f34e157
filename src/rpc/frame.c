/* frame.c: framing (u32 length | u8 type | u32 id | payload), the HELLO handshake, ERROR frames,
 * and the scalar encodings every other file uses. docs/protocol.md is the specification. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "base/secmem.h"
#include "rpc/internal.h"

/* ---- scalars ---------------------------------------------------------------------------------- */
void rpc_put_ulong(cf_writer *w, CK_ULONG v)
{
    cf_put_u64(w, v == (CK_ULONG)-1 ? UINT64_MAX : (uint64_t)v);
}

cf_err rpc_get_ulong(cf_reader *r, CK_ULONG *v)
{
    size_t save = r->off;
    uint64_t x;
    CF_TRY(cf_get_u64(r, &x));
    if (x == UINT64_MAX) {
        *v = (CK_ULONG)-1;
        return CF_OK;
    }
    /* Any other value must fit, and a narrow all-ones must have been sent as UINT64_MAX. */
    if (x >= (uint64_t)(CK_ULONG)-1) {
        r->off = save;
        return CF_E_FORMAT;
    }
    *v = (CK_ULONG)x;
    return CF_OK;
}

cf_err rpc_get_flag(cf_reader *r, bool *v)
{
    uint8_t b;
    CF_TRY(cf_get_u8(r, &b));
    if (b > 1) {
        r->off--;
        return CF_E_FORMAT;
    }
    *v = b;
    return CF_OK;
}

void rpc_put_blob(cf_writer *w, const void *p, size_t n)
{
    cf_put_u32(w, (uint32_t)n);
    cf_put_bytes(w, p, n);
}

cf_err rpc_get_blob(cf_reader *r, const uint8_t **p, size_t *n)
{
    static const uint8_t empty[1];
    cf_reader c;
    CF_TRY(cf_get_sized32(r, &c));
    *p = c.p ? c.p : empty;
    *n = c.len;
    return CF_OK;
}

/* ---- frames ----------------------------------------------------------------------------------- */
static bool type_known(uint8_t t) { return t >= RPC_HELLO && t <= RPC_ERROR; }

cf_err rpc_frame_size(const uint8_t *p, size_t n, size_t *total)
{
    cf_reader r = cf_reader_init(p, n);
    uint32_t len;
    CF_TRY(cf_get_u32(&r, &len));
    CF_ENSURE(len >= RPC_HEADER_LEN - 4 && len <= RPC_MAX_FRAME, CF_E_FORMAT);
    *total = (size_t)len + 4;
    return CF_OK;
}

cf_err rpc_frame_parse(cf_reader *r, rpc_frame *out)
{
    size_t save = r->off, total;
    const uint8_t *p;
    CF_TRY(cf_get_view(r, &p, 4));
    r->off = save;
    CF_TRY(rpc_frame_size(p, 4, &total));
    /* the whole frame first, so that a short read is SHORT and not a half-parsed header */
    CF_ENSURE(total <= cf_reader_left(r), CF_E_SHORT);
    cf_reader f = cf_reader_init(r->p + r->off + 4, total - 4);
    uint8_t type;
    uint32_t id;
    if (cf_get_u8(&f, &type) != CF_OK || cf_get_u32(&f, &id) != CF_OK)
        return CF_E_FORMAT;   /* not reached: total - 4 >= 5 */
    CF_ENSURE(type_known(type), CF_E_FORMAT);
    out->type = type;
    out->id = id;
    out->payload = cf_reader_init(f.p + f.off, cf_reader_left(&f));
    r->off += total;
    return CF_OK;
}

size_t rpc_frame_begin(cf_writer *w, uint8_t type, uint32_t id)
{
    size_t start = w->len;
    cf_put_u32(w, 0);
    cf_put_u8(w, type);
    cf_put_u32(w, id);
    return start;
}

cf_err rpc_frame_end(cf_writer *w, size_t start, cf_err rv)
{
    size_t len = w->len - start - 4;
    if (rv == CF_OK && len > RPC_MAX_FRAME)
        rv = CF_E_OVERFLOW;
    if (rv == CF_OK)
        rv = cf_writer_status(w);
    if (rv == CF_OK) {
        uint8_t *h = w->p + start;
        h[0] = (uint8_t)(len >> 24);
        h[1] = (uint8_t)(len >> 16);
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return CF_OK;
    }
    if (rv == CF_E_BUFFER_TOO_SMALL)
        return rv;   /* w->len is the size needed */
    /* A bad value (or no memory): nothing of this frame stays, PIN bytes included. */
    if (w->p && start < w->cap)
        cf_wipe(w->p + start, (w->len < w->cap ? w->len : w->cap) - start);
    w->len = start;
    return rv;
}

/* ---- handshake -------------------------------------------------------------------------------- */
rpc_hello rpc_hello_self(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    rpc_hello h;
    memset(&h, 0, sizeof h);
    h.major = RPC_VERSION_MAJOR;
    h.minor = RPC_VERSION_MINOR;
    if (first == 1)
        h.flags |= RPC_HELLO_LITTLE_ENDIAN;
    if (sizeof(CK_ULONG) == 8)
        h.flags |= RPC_HELLO_ULONG64;
    return h;
}

cf_err rpc_encode_hello(cf_writer *w, rpc_frame_type type, const rpc_hello *h)
{
    CF_ENSURE(type == RPC_HELLO || type == RPC_HELLO_OK, CF_E_ARGS);
    size_t start = rpc_frame_begin(w, (uint8_t)type, 0);
    cf_put_bytes(w, RPC_MAGIC, 4);
    cf_put_u16(w, h->major);
    cf_put_u16(w, h->minor);
    cf_put_u32(w, h->flags);
    if (h->has_token)
        cf_put_bytes(w, h->token, RPC_APP_TOKEN_LEN);
    return rpc_frame_end(w, start, CF_OK);
}

cf_err rpc_decode_hello(const rpc_frame *f, rpc_hello *out)
{
    CF_ENSURE((f->type == RPC_HELLO || f->type == RPC_HELLO_OK) && f->id == 0, CF_E_FORMAT);
    cf_reader r = f->payload;
    r.off = 0;
    const uint8_t *magic;
    rpc_hello h;
    memset(&h, 0, sizeof h);
    CF_ENSURE(cf_get_view(&r, &magic, 4) == CF_OK && memcmp(magic, RPC_MAGIC, 4) == 0, CF_E_FORMAT);
    CF_ENSURE(cf_get_u16(&r, &h.major) == CF_OK && cf_get_u16(&r, &h.minor) == CF_OK &&
              cf_get_u32(&r, &h.flags) == CF_OK, CF_E_FORMAT);
    if (!cf_reader_done(&r)) { /* minor >= 1: the application token */
        const uint8_t *t;
        CF_ENSURE(cf_get_view(&r, &t, RPC_APP_TOKEN_LEN) == CF_OK, CF_E_FORMAT);
        memcpy(h.token, t, RPC_APP_TOKEN_LEN);
        h.has_token = true;
    }
    CF_ENSURE(cf_reader_done(&r), CF_E_FORMAT);
    *out = h;
    return CF_OK;
}

static void abi_name(uint32_t flags, char *buf, size_t n)
{
    snprintf(buf, n, "%s-bit CK_ULONG, %s-endian", (flags & RPC_HELLO_ULONG64) ? "64" : "32",
             (flags & RPC_HELLO_LITTLE_ENDIAN) ? "little" : "big");
}

static cf_err check_peer(const rpc_hello *peer, bool server, char *msg, size_t msglen)
{
    rpc_hello self = rpc_hello_self();
    if (peer->major != self.major) {
        if (server)
            snprintf(msg, msglen, "protocol major version %u not supported by this server (speaks %u)",
                     (unsigned)peer->major, (unsigned)self.major);
        else
            snprintf(msg, msglen, "server speaks protocol major version %u, this client %u",
                     (unsigned)peer->major, (unsigned)self.major);
        return CF_E_NOT_SUPPORTED;
    }
    if ((peer->flags & RPC_HELLO_ABI_MASK) != (self.flags & RPC_HELLO_ABI_MASK)) {
        char theirs[48], ours[48];
        abi_name(peer->flags, theirs, sizeof theirs);
        abi_name(self.flags, ours, sizeof ours);
        snprintf(msg, msglen, "%s ABI (%s) differs from this %s's (%s)", server ? "client" : "server",
                 theirs, server ? "server" : "client", ours);
        return CF_E_NOT_SUPPORTED;
    }
    if (msglen)
        msg[0] = '\0';
    return CF_OK;
}

cf_err rpc_hello_accept(const rpc_hello *client, char *msg, size_t msglen)
{
    return check_peer(client, true, msg, msglen);
}

cf_err rpc_hello_ok_accept(const rpc_hello *server, char *msg, size_t msglen)
{
    return check_peer(server, false, msg, msglen);
}

/* ---- ERROR frames ----------------------------------------------------------------------------- */
cf_err rpc_encode_error(cf_writer *w, uint32_t id, cf_err status, const char *msg)
{
    size_t n = msg ? strnlen(msg, RPC_MAX_MESSAGE) : 0;
    size_t start = rpc_frame_begin(w, RPC_ERROR, id);
    cf_put_u32(w, rpc_status_to_wire(status));
    rpc_put_blob(w, msg, n);
    return rpc_frame_end(w, start, CF_OK);
}

cf_err rpc_decode_error(const rpc_frame *f, cf_err *status, const char **msg, size_t *msglen)
{
    CF_ENSURE(f->type == RPC_ERROR, CF_E_FORMAT);
    cf_reader r = f->payload;
    r.off = 0;
    uint32_t wire;
    cf_err st;
    const uint8_t *p;
    size_t n;
    CF_ENSURE(cf_get_u32(&r, &wire) == CF_OK, CF_E_FORMAT);
    CF_TRY(rpc_status_from_wire(wire, &st));
    CF_ENSURE(rpc_get_blob(&r, &p, &n) == CF_OK && n <= RPC_MAX_MESSAGE && cf_reader_done(&r), CF_E_FORMAT);
    *status = st;
    *msg = (const char *)p;
    *msglen = n;
    return CF_OK;
}
