/* hsm_split.c: libFuzzer harness for the remote-HSM service's frame splitter and input buffer
 * (src/daemon/hsm_split.c), the first code that sees a client's bytes.
 *
 * The first byte is the size of each read (1..255 bytes, 0 meaning 255); the rest is the byte
 * stream a client sent. The harness does what a connection does: asks the splitter about the
 * buffered bytes, makes room and "reads" the next chunk on NEED, serves and drops a frame on
 * FRAME, stops on BAD. Checks: NEED asks for more than is buffered and at most a whole maximal
 * frame, and the room made holds it; a FRAME lies within the bytes buffered, is at least a header
 * and at most HSRV_FRAME_MAX, its length field says so, and rpc_frame_parse takes exactly it
 * (never SHORT); BAD only for a length field out of bounds; the splitter reads nothing past what it
 * is given (it runs on an exact-size heap copy, under ASan) and gives the same answer twice; after
 * every consume the buffer holds exactly the stream's unserved bytes, in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/hsm_split.c"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The splitter's answer on an exact-size copy of the buffered bytes, checked. */
static hsrv_split_result split_checked(const hsrv_inbuf *b, size_t *len)
{
    uint8_t *copy = malloc(b->len ? b->len : 1);
    if (!copy)
        abort();
    if (b->len)   /* an empty buffer may have no storage yet (NULL): memcpy must not see it */
        memcpy(copy, b->p, b->len);
    size_t again;
    hsrv_split_result s = hsrv_split(copy, b->len, len);
    if (hsrv_split(copy, b->len, &again) != s || again != *len)
        abort();
    switch (s) {
    case HSRV_SPLIT_NEED:
        if (*len <= b->len || *len > HSRV_FRAME_MAX)
            abort();
        break;
    case HSRV_SPLIT_FRAME: {
        if (*len < RPC_HEADER_LEN || *len > b->len || *len > HSRV_FRAME_MAX || be32(copy) != *len - 4)
            abort();
        cf_reader r = cf_reader_init(copy, *len);
        rpc_frame f;
        cf_err e = rpc_frame_parse(&r, &f);
        if (e == CF_E_SHORT || (e == CF_OK && r.off != *len) || (e != CF_OK && e != CF_E_FORMAT))
            abort();
        break;
    }
    case HSRV_SPLIT_BAD: {
        if (b->len < 4)
            abort();
        uint32_t n = be32(copy);
        if (n >= RPC_HEADER_LEN - 4 && n <= RPC_MAX_FRAME)
            abort();
        break;
    }
    }
    free(copy);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = data[0] ? data[0] : 255;
    data++;
    size--;
    hsrv_inbuf b = { NULL, 0, 0 };
    size_t fed = 0, served = 0;  /* stream offsets: bytes read into b, bytes consumed from it */
    for (;;) {
        size_t len;
        hsrv_split_result s = split_checked(&b, &len);
        if (s == HSRV_SPLIT_BAD)
            break;
        if (s == HSRV_SPLIT_FRAME) {
            hsrv_inbuf_consume(&b, len);
            served += len;
        } else {
            if (fed == size)
                break;
            if (hsrv_inbuf_room(&b, len) != CF_OK)
                abort();
            if (b.cap <= b.len || (b.cap < len && len <= HSRV_FRAME_MAX))
                abort();  /* no room, or the frame could never fit */
            size_t n = size - fed;
            if (n > chunk)
                n = chunk;
            if (n > b.cap - b.len)
                n = b.cap - b.len;
            memcpy(b.p + b.len, data + fed, n);
            b.len += n;
            fed += n;
        }
        if (b.len != fed - served || (b.len && memcmp(b.p, data + served, b.len) != 0))
            abort();  /* the buffer must be exactly the unserved bytes */
    }
    hsrv_inbuf_free(&b);
    return 0;
}
