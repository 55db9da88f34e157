/* framing.c: the frames of the mssim and swtpm channels, decoded from bytes alone (see daemon.h).
 *
 * Every length that comes from the peer goes through the bounded reader and is checked against
 * TPM_MAX_COMMAND_SIZE before anything waits for that many bytes, so a peer cannot make a worker
 * buffer more than CFD_MAX_FRAME. */
#include <string.h>
#include "base/bytes.h"
#include "daemon/daemon.h"

static cfd_decision need(cfd_frame *f, size_t n)
{
    f->need = n;
    return CFD_NEED;
}

static cfd_decision closing(cfd_frame *f, const char *why)
{
    f->why = why;
    return CFD_CLOSE;
}

static cfd_decision frame(cfd_frame *f, const cf_reader *r)
{
    f->consumed = r->off;
    return CFD_FRAME;
}

/* mssim command port: u32 command, then per command (TpmTcpProtocol.h):
 *   SEND_COMMAND      u8 locality | u32 size | size bytes
 *   REMOTE_HANDSHAKE  u32 client version (0 is refused, as the reference does)
 *   SET_ALTERNATIVE_RESULT  u32
 * every other code stands alone (the caller closes on those it does not serve). */
static cfd_decision dec_mssim_command(const uint8_t *p, size_t len, cfd_frame *f)
{
    cf_reader r = cf_reader_init(p, len);
    if (cf_get_u32(&r, &f->cmd) != CF_OK)
        return need(f, 4);
    switch (f->cmd) {
    case MSSIM_SEND_COMMAND: {
        uint32_t size;
        if (cf_get_u8(&r, &f->locality) != CF_OK || cf_get_u32(&r, &size) != CF_OK)
            return need(f, 9);
        if (size > TPM_MAX_COMMAND_SIZE)
            return closing(f, "TPM command larger than the TPM's buffer");
        if (cf_get_view(&r, &f->body, size) != CF_OK)
            return need(f, 9 + (size_t)size);
        f->body_len = size;
        return frame(f, &r);
    }
    case MSSIM_REMOTE_HANDSHAKE:
    case MSSIM_SET_ALTERNATIVE_RESULT:
        if (cf_get_u32(&r, &f->arg) != CF_OK)
            return need(f, 8);
        if (f->cmd == MSSIM_REMOTE_HANDSHAKE && f->arg == 0)
            return closing(f, "unsupported client version 0 in REMOTE_HANDSHAKE");
        return frame(f, &r);
    default:
        return frame(f, &r);
    }
}

/* mssim platform port: u32 command; only ACT_GET_SIGNALED carries an argument (u32 handle). */
static cfd_decision dec_mssim_platform(const uint8_t *p, size_t len, cfd_frame *f)
{
    cf_reader r = cf_reader_init(p, len);
    if (cf_get_u32(&r, &f->cmd) != CF_OK)
        return need(f, 4);
    if (f->cmd == MSSIM_ACT_GET_SIGNALED && cf_get_u32(&r, &f->arg) != CF_OK)
        return need(f, 8);
    return frame(f, &r);
}

/* swtpm data channel: a bare TPM command, framed by its own header (TPM 2.0 Part 1, 18: u16 tag |
 * u32 commandSize | u32 commandCode), commandSize counting the header. */
static cfd_decision dec_swtpm_data(const uint8_t *p, size_t len, cfd_frame *f)
{
    cf_reader r = cf_reader_init(p, len);
    uint16_t tag;
    uint32_t size;
    if (cf_get_u16(&r, &tag) != CF_OK || cf_get_u32(&r, &size) != CF_OK || cf_get_u32(&r, &f->cmd) != CF_OK)
        return need(f, 10);
    if (size < 10)
        return closing(f, "TPM command size smaller than its header");
    if (size > TPM_MAX_COMMAND_SIZE)
        return closing(f, "TPM command larger than the TPM's buffer");
    r = cf_reader_init(p, len);
    if (cf_get_view(&r, &f->body, size) != CF_OK)
        return need(f, size);
    f->body_len = size;
    return frame(f, &r);
}

/* Takes between min and max bytes of a request body: swtpm reads one message per read(), and
 * clients differ in what they send for the same request (tpm2-tss sends SET_LOCALITY's u8 alone,
 * QEMU the 4-byte union of tpm_ioctl.h). */
static cfd_decision ctrl_body(cf_reader *r, size_t min, size_t max, cfd_frame *f, const uint8_t **body)
{
    size_t left = cf_reader_left(r);
    if (left < min)
        return need(f, r->off + min);
    size_t take = left < max ? left : max;
    if (cf_get_view(r, body, take) != CF_OK)
        return need(f, r->off + min);
    f->body = *body;
    f->body_len = take;
    return frame(f, r);
}

/* swtpm control channel: u32 command, then the request part of its tpm_ioctl.h struct, all
 * big-endian. Bodies of requests cofferd does not serve are still delimited (so the reply lines up
 * with the request); an unknown code stands alone and the caller closes after answering. */
static cfd_decision dec_swtpm_ctrl(const uint8_t *p, size_t len, cfd_frame *f)
{
    cf_reader r = cf_reader_init(p, len);
    const uint8_t *body;
    if (cf_get_u32(&r, &f->cmd) != CF_OK)
        return need(f, 4);
    switch (f->cmd) {
    case SWTPM_INIT:            /* u32 init_flags */
    case SWTPM_SET_BUFFERSIZE:  /* u32 buffersize */
        if (cf_get_u32(&r, &f->arg) != CF_OK)
            return need(f, 8);
        return frame(f, &r);
    case SWTPM_SET_LOCALITY:          /* u8 loc */
    case SWTPM_RESET_TPMESTABLISHED:  /* u8 loc */ {
        cfd_decision d = ctrl_body(&r, 1, 4, f, &body);
        if (d == CFD_FRAME)
            f->locality = body[0];
        return d;
    }
    case SWTPM_GET_INFO: { /* u64 flags | u32 offset | u32 pad */
        uint32_t pad;
        if (cf_get_u64(&r, &f->arg64) != CF_OK || cf_get_u32(&r, &f->offset) != CF_OK ||
            cf_get_u32(&r, &pad) != CF_OK)
            return need(f, 20);
        return frame(f, &r);
    }
    case SWTPM_HASH_DATA: { /* u32 length | data */
        uint32_t n;
        if (cf_get_u32(&r, &n) != CF_OK)
            return need(f, 8);
        if (n > TPM_MAX_COMMAND_SIZE)
            return closing(f, "HASH_DATA larger than 4096 bytes");
        if (cf_get_view(&r, &body, n) != CF_OK)
            return need(f, 8 + (size_t)n);
        return frame(f, &r);
    }
    case SWTPM_GET_STATEBLOB: /* u32 state_flags | u32 type | u32 offset */
        if (cf_skip(&r, 12) != CF_OK)
            return need(f, 16);
        return frame(f, &r);
    case SWTPM_SET_STATEBLOB: { /* u32 state_flags | u32 type | u32 length | data */
        uint32_t fl, type, n;
        if (cf_get_u32(&r, &fl) != CF_OK || cf_get_u32(&r, &type) != CF_OK || cf_get_u32(&r, &n) != CF_OK)
            return need(f, 16);
        if (n > TPM_MAX_COMMAND_SIZE)
            return closing(f, "SET_STATEBLOB is not supported (and its blob is larger than 4096 bytes)");
        if (cf_get_view(&r, &body, n) != CF_OK)
            return need(f, 16 + (size_t)n);
        return frame(f, &r);
    }
    default: /* no request body, or unknown */
        return frame(f, &r);
    }
}

cfd_decision cfd_decode(cfd_proto proto, const uint8_t *p, size_t len, cfd_frame *f)
{
    memset(f, 0, sizeof *f);
    switch (proto) {
    case CFD_MSSIM_COMMAND: return dec_mssim_command(p, len, f);
    case CFD_MSSIM_PLATFORM: return dec_mssim_platform(p, len, f);
    case CFD_SWTPM_DATA: return dec_swtpm_data(p, len, f);
    case CFD_SWTPM_CTRL: return dec_swtpm_ctrl(p, len, f);
    }
    return closing(f, "unknown channel");
}

const char *cfd_proto_name(cfd_proto proto)
{
    switch (proto) {
    case CFD_MSSIM_COMMAND: return "mssim command";
    case CFD_MSSIM_PLATFORM: return "mssim platform";
    case CFD_SWTPM_DATA: return "swtpm data";
    case CFD_SWTPM_CTRL: return "swtpm control";
    }
    return "?";
}
