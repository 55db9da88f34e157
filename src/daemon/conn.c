/* conn.c: serving one connection of one channel (see daemon.h).
 *
 * Bytes are read into a buffer of CFD_MAX_FRAME, the framing decoder says what they hold, and the
 * frame is answered. Every call into the engine (commands and platform signals alike) holds the
 * instance mutex; nothing else does, so a client that stops half-way through a frame or never
 * reads its answer holds up no one but itself. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "base/bytes.h"
#include "base/log.h"
#include "daemon/daemon.h"

typedef struct {
    cofferd_instance *in;
    cfd_proto proto;
    int fd;
    bool tcp;
    uint8_t buf[CFD_MAX_FRAME];
    size_t have;
    uint8_t resp[16 + TPM_MAX_RESPONSE_SIZE];
} conn;

typedef enum { KEEP, END } verdict;

static bool send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static verdict send_bytes(conn *c, const uint8_t *p, size_t n)
{
    if (!send_all(c->fd, p, n)) {
        cf_debug("tpm %s: %s: the client went away before its answer", c->in->name, cfd_proto_name(c->proto));
        return END;
    }
    return KEEP;
}

static verdict reply(conn *c, const cf_writer *w)
{
    if (cf_writer_status(w) != CF_OK)
        return END;
    return send_bytes(c, w->p, w->len);
}

static verdict reply_u32(conn *c, uint32_t v)
{
    uint8_t b[4];
    cf_writer w = cf_writer_fixed(b, sizeof b);
    cf_put_u32(&w, v);
    return reply(c, &w);
}

/* Runs one TPM command under the instance mutex; the response goes to c->resp + off. A locality
 * above 4 means the one set on swtpm's control channel. */
static size_t execute(conn *c, unsigned locality, const uint8_t *cmd, size_t len, size_t off)
{
    cofferd_instance *in = c->in;
    pthread_mutex_lock(&in->mu);
    if (locality > 4)
        locality = in->swtpm_locality;
    size_t n = tpm_execute(in->tpm, locality, cmd, len, c->resp + off, TPM_MAX_RESPONSE_SIZE);
    in->commands++;
    pthread_mutex_unlock(&in->mu);
    return n > TPM_MAX_RESPONSE_SIZE ? TPM_MAX_RESPONSE_SIZE : n;
}

/* ---- mssim ----------------------------------------------------------------------------------- */
static verdict mssim_command(conn *c, const cfd_frame *f)
{
    switch (f->cmd) {
    case MSSIM_SEND_COMMAND: {
        if (f->locality > 4) {
            cf_warn("tpm %s: mssim: locality %u is not supported; closing the connection", c->in->name, f->locality);
            return END;
        }
        /* u32 size | response | u32 0 (the acknowledgement every command ends with), one send */
        size_t n = execute(c, f->locality, f->body, f->body_len, 4);
        cf_writer w = cf_writer_fixed(c->resp, 4);
        cf_put_u32(&w, (uint32_t)n);
        w = cf_writer_fixed(c->resp + 4 + n, 4);
        cf_put_u32(&w, 0);
        return send_bytes(c, c->resp, 8 + n);
    }
    case MSSIM_REMOTE_HANDSHAKE: {
        uint8_t b[12];
        cf_writer w = cf_writer_fixed(b, sizeof b);
        cf_put_u32(&w, MSSIM_SERVER_VERSION);
        cf_put_u32(&w, MSSIM_ENDPOINT_INFO);
        cf_put_u32(&w, 0);
        return reply(c, &w);
    }
    case MSSIM_SET_ALTERNATIVE_RESULT: /* not applicable to a simulator (the reference ignores it too) */
        return reply_u32(c, 0);
    case MSSIM_SESSION_END:
        return END;
    case MSSIM_STOP:
        cf_info("tpm %s: mssim STOP: closing this connection (cofferd keeps serving)", c->in->name);
        return END;
    case MSSIM_HASH_START:
    case MSSIM_HASH_DATA:
    case MSSIM_HASH_END:
        cf_warn("tpm %s: mssim: the H-CRTM hash signals (%u) are not supported; closing the connection",
                c->in->name, f->cmd);
        return END;
    default:
        cf_warn("tpm %s: mssim command port: unknown command %u; closing the connection", c->in->name, f->cmd);
        return END;
    }
}

static verdict mssim_platform(conn *c, const cfd_frame *f)
{
    tpm_instance *t = c->in->tpm;
    switch (f->cmd) {
    case MSSIM_SESSION_END:
        return END;
    case MSSIM_STOP:
        cf_info("tpm %s: mssim STOP: closing this connection (cofferd keeps serving)", c->in->name);
        return END;
    case MSSIM_POWER_ON:
    case MSSIM_POWER_OFF:
    case MSSIM_RESET:
    case MSSIM_RESTART:
    case MSSIM_NV_ON:
    case MSSIM_NV_OFF:
    case MSSIM_CANCEL_ON:
    case MSSIM_CANCEL_OFF:
        pthread_mutex_lock(&c->in->mu);
        switch (f->cmd) {
        case MSSIM_POWER_ON:
            if (!tpm_is_powered(t)) /* every tpm2-tss client sends one: a repeat is a no-op */
                tpm_power_on(t);
            break;
        case MSSIM_POWER_OFF: tpm_power_off(t); break;
        case MSSIM_RESET:   /* _TPM_Init */
        case MSSIM_RESTART: tpm_reset(t); break;
        case MSSIM_NV_ON: tpm_nv_on(t); break;
        case MSSIM_NV_OFF: tpm_nv_off(t); break;
        case MSSIM_CANCEL_ON: tpm_cancel(t, true); break;
        case MSSIM_CANCEL_OFF: tpm_cancel(t, false); break;
        }
        pthread_mutex_unlock(&c->in->mu);
        cf_debug("tpm %s: mssim platform signal %u", c->in->name, f->cmd);
        return reply_u32(c, 0);
    case MSSIM_PHYS_PRES_ON:
    case MSSIM_PHYS_PRES_OFF:
    case MSSIM_KEY_CACHE_ON:
    case MSSIM_KEY_CACHE_OFF: /* acknowledged; nothing in this TPM depends on them */
        return reply_u32(c, 0);
    case MSSIM_ACT_GET_SIGNALED: { /* no ACTs: never signaled; then the acknowledgement */
        uint8_t b[8];
        cf_writer w = cf_writer_fixed(b, sizeof b);
        cf_put_u32(&w, 0);
        cf_put_u32(&w, 0);
        return reply(c, &w);
    }
    default:
        /* the reference answers 1 and closes */
        cf_warn("tpm %s: mssim platform port: unsupported command %u; closing the connection", c->in->name, f->cmd);
        reply_u32(c, 1);
        return END;
    }
}

/* ---- swtpm ----------------------------------------------------------------------------------- */
static verdict swtpm_data(conn *c, const cfd_frame *f)
{
    size_t n = execute(c, 0xFF /* the control channel's */, f->body, f->body_len, 0);
    return send_bytes(c, c->resp, n);
}

/* GET_INFO's JSON, as libtpms' TPMLIB_GetInfo writes it for the flags it knows. */
static size_t info_json(uint64_t flags, char *out, size_t cap)
{
    char spec[128] = "", attrs[160] = "";
    if (flags & PTM_INFO_TPMSPECIFICATION)
        snprintf(spec, sizeof spec, "\"TPMSpecification\":{\"family\":\"2.0\",\"level\":0,\"revision\":159}");
    if (flags & PTM_INFO_TPMATTRIBUTES)
        snprintf(attrs, sizeof attrs, "\"TPMAttributes\":{\"manufacturer\":\"id:434F4646\",\"version\":\"id:00000001\",\"model\":\"coffer\"}");
    int n = snprintf(out, cap, "{%s%s%s}", spec, spec[0] && attrs[0] ? "," : "", attrs);
    return n < 0 ? 0 : (size_t)n;
}

static verdict swtpm_ctrl(conn *c, const cfd_frame *f)
{
    cofferd_instance *in = c->in;
    tpm_instance *t = in->tpm;
    uint8_t b[16 + PTM_GETINFO_SIZE];
    cf_writer w = cf_writer_fixed(b, sizeof b);
    verdict after = KEEP;
    bool powered;

    pthread_mutex_lock(&in->mu);
    powered = tpm_is_powered(t);
    switch (f->cmd) {
    case SWTPM_GET_CAPABILITY: /* ptm_cap: u64 (reads as ptm_res 0 | u32 caps) */
        cf_put_u64(&w, COFFER_PTM_CAPS);
        break;
    case SWTPM_INIT: /* a power cycle; DELETE_VOLATILE first drops the Shutdown(STATE) state */
        tpm_power_off(t);
        if (f->arg & PTM_INIT_FLAG_DELETE_VOLATILE)
            tpm_delete_volatile(t);
        tpm_power_on(t);
        tpm_nv_on(t);
        cf_put_u32(&w, PTM_RES_SUCCESS);
        break;
    case SWTPM_SHUTDOWN: /* swtpm exits; cofferd hosts other TPMs: power this one off, end the connection */
        tpm_power_off(t);
        cf_put_u32(&w, PTM_RES_SUCCESS);
        after = END;
        break;
    case SWTPM_STOP:
        tpm_power_off(t);
        cf_put_u32(&w, PTM_RES_SUCCESS);
        break;
    case SWTPM_GET_TPMESTABLISHED: /* ptm_est resp: u32 result | u8 bit | 3 bytes of padding */
        if (!powered) {
            cf_put_u32(&w, PTM_RES_BAD_ORDINAL);
            break;
        }
        cf_put_u32(&w, PTM_RES_SUCCESS);
        cf_put_u8(&w, tpm_established(t) ? 1 : 0);
        cf_put_bytes(&w, "\0\0\0", 3);
        break;
    case SWTPM_SET_LOCALITY:
        if (f->locality > 4) {
            cf_put_u32(&w, PTM_RES_BAD_LOCALITY);
        } else {
            in->swtpm_locality = f->locality;
            cf_put_u32(&w, PTM_RES_SUCCESS);
        }
        break;
    case SWTPM_RESET_TPMESTABLISHED:
        /* PC Client PTP: only localities 3 and 4 may reset tpmEstablishment (as libtpms checks) */
        if (!powered)
            cf_put_u32(&w, PTM_RES_BAD_ORDINAL);
        else if (f->locality != 3 && f->locality != 4)
            cf_put_u32(&w, PTM_RES_BAD_LOCALITY);
        else {
            tpm_reset_established(t);
            cf_put_u32(&w, PTM_RES_SUCCESS);
        }
        break;
    case SWTPM_CANCEL_TPM_CMD:
        /* Commands of this instance run under this mutex: holding it, none is in flight, so there
         * is nothing to cancel (each command runs to completion, in milliseconds). */
    case SWTPM_STORE_VOLATILE:
        /* The persistent state is stored after every command that changes it. */
        cf_put_u32(&w, powered ? PTM_RES_SUCCESS : PTM_RES_BAD_ORDINAL);
        break;
    case SWTPM_GET_CONFIG: /* u32 result | u32 flags: the state is encrypted under a key */
        cf_put_u32(&w, PTM_RES_SUCCESS);
        cf_put_u32(&w, PTM_CONFIG_FLAG_FILE_KEY);
        break;
    case SWTPM_SET_BUFFERSIZE:
        /* The buffer is fixed at TPM_MAX_COMMAND_SIZE; a request to change it while running is
         * refused as swtpm refuses it. */
        if (f->arg > 0 && powered) {
            cf_put_u32(&w, PTM_RES_BAD_ORDINAL);
            break;
        }
        cf_put_u32(&w, PTM_RES_SUCCESS);
        cf_put_u32(&w, TPM_MAX_COMMAND_SIZE); /* in use */
        cf_put_u32(&w, TPM_MAX_COMMAND_SIZE); /* min */
        cf_put_u32(&w, TPM_MAX_COMMAND_SIZE); /* max */
        break;
    case SWTPM_GET_INFO: {
        char json[512];
        size_t len = info_json(f->arg64, json, sizeof json);
        if (f->offset >= len) {
            cf_put_u32(&w, PTM_RES_BAD_PARAMETER);
            break;
        }
        size_t part = len + 1 - f->offset; /* with the NUL, as swtpm sends it */
        if (part > PTM_GETINFO_SIZE)
            part = PTM_GETINFO_SIZE;
        cf_put_u32(&w, PTM_RES_SUCCESS);
        cf_put_u32(&w, (uint32_t)(len + 1));
        cf_put_u32(&w, (uint32_t)part);
        cf_put_bytes(&w, json + f->offset, part);
        break;
    }
    case SWTPM_HASH_START:
    case SWTPM_HASH_DATA:
    case SWTPM_HASH_END:
    case SWTPM_GET_STATEBLOB:
    case SWTPM_SET_STATEBLOB:
    case SWTPM_SET_DATAFD:
        /* not offered by GET_CAPABILITY; answered as swtpm answers what it does not do */
        cf_put_u32(&w, PTM_RES_BAD_ORDINAL);
        break;
    default:
        cf_put_u32(&w, PTM_RES_BAD_ORDINAL);
        after = END; /* its body, if any, is unknown: the stream cannot be followed */
        break;
    }
    pthread_mutex_unlock(&in->mu);
    if (after == END && f->cmd != SWTPM_SHUTDOWN)
        cf_warn("tpm %s: swtpm control: unknown command %u; closing the connection", in->name, f->cmd);
    else
        cf_debug("tpm %s: swtpm control command %u", in->name, f->cmd);
    if (reply(c, &w) == END)
        return END;
    return after;
}

/* ---- the loop -------------------------------------------------------------------------------- */
static verdict dispatch(conn *c, const cfd_frame *f)
{
    switch (c->proto) {
    case CFD_MSSIM_COMMAND: return mssim_command(c, f);
    case CFD_MSSIM_PLATFORM: return mssim_platform(c, f);
    case CFD_SWTPM_DATA: return swtpm_data(c, f);
    case CFD_SWTPM_CTRL: return swtpm_ctrl(c, f);
    }
    return END;
}

/* Reads more; false at end of stream, error or shutdown. The control channel also takes what is
 * already queued, since swtpm treats one read as one message (see framing.c, ctrl_body). */
static bool fill(conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        c->have += (size_t)n;
        break;
    }
    /* tpm2-tss's mssim TCTI writes a frame in two parts without TCP_NODELAY: its second part
     * waits for our ACK of the first, which delayed ACK would hold for 40 ms. Acknowledge now (the
     * flag does not stick, hence after every read). */
    if (c->tcp) {
        int one = 1;
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    if (c->proto == CFD_SWTPM_CTRL) {
        while (c->have < sizeof c->buf) {
            ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, MSG_DONTWAIT);
            if (n <= 0)
                break;
            c->have += (size_t)n;
        }
    }
    return true;
}

void cofferd_serve(cofferd_instance *in, cfd_proto proto, int fd)
{
    static _Thread_local conn c; /* 8 KiB per worker thread rather than on its stack */
    c.in = in;
    c.proto = proto;
    c.fd = fd;
    c.have = 0;
    int domain = 0;
    socklen_t dlen = sizeof domain;
    c.tcp = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) == 0 && (domain == AF_INET || domain == AF_INET6);
    for (;;) {
        cfd_frame f;
        cfd_decision d = cfd_decode(proto, c.buf, c.have, &f);
        if (d == CFD_NEED) {
            if (c.have == sizeof c.buf || !fill(&c))
                break;
            continue;
        }
        if (d == CFD_CLOSE) {
            cf_warn("tpm %s: %s: %s; closing the connection", in->name, cfd_proto_name(proto), f.why);
            break;
        }
        verdict v = dispatch(&c, &f);
        memmove(c.buf, c.buf + f.consumed, c.have - f.consumed);
        c.have -= f.consumed;
        if (v == END)
            break;
    }
}
