/* client.c: the remote backend (client.h): the connection to cofferd over a Unix socket, the
 * HELLO handshake, and one function per engine call that encodes the request, waits for the
 * response and copies the outputs back with the PKCS#11 length protocol.
 *
 * One connection, one request in flight: g_mu is held from writing a request to reading its
 * response. Request ids are still unique per connection, so that the server may already answer
 * out of order once the client multiplexes (the next step: a reader thread matching ids).
 *
 * What the module keeps: the socket path and the socket. Request frames (PINs, plaintext,
 * template values) and response frames (plaintext, attribute values) are wiped when the call
 * returns. */
#include "rpc/client.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "base/secmem.h"
#include "crypto/crypto.h"
#include "rpc/rpc.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_path[300];          /* the socket path, or "tls:HOST:PORT" (for messages) */
static int g_fd = -1;            /* under g_mu */
/* TLS (`[client] server = tls:HOST:PORT`): host and port, the PEM paths, the context (made at the
 * first connection) and the connection over g_fd; g_tls_on false: a Unix socket. Under g_mu. */
static bool g_tls_on;
static char g_tls_host[256], g_tls_port[8];
static char g_tls_cert[4096], g_tls_key[4096], g_tls_ca[4096];
static cf_tls_ctx *g_tls_ctx;
static cf_tls *g_tls;
static bool g_lost;              /* under g_mu: a connection dropped; session calls fail until a slot call reconnects */
static uint32_t g_next_id = 1;   /* under g_mu */
static char g_last_msg[512];     /* under g_mu: the last sentence printed, not repeated */

/* One sentence on stderr for the person running the application (C_* cannot carry it), not
 * repeated when an application retries in a loop. Under g_mu. */
static void say_line(const char *line)
{
    if (strcmp(line, g_last_msg) == 0)
        return;
    snprintf(g_last_msg, sizeof g_last_msg, "%s", line);
    fprintf(stderr, "coffer: %s\n", line);
}
#define SAY(...) \
    do { \
        char say_[sizeof g_last_msg]; \
        snprintf(say_, sizeof say_, __VA_ARGS__); \
        say_line(say_); \
    } while (0)

void rpc_client_set_server(const char *path)
{
    pthread_mutex_lock(&g_mu);
    snprintf(g_path, sizeof g_path, "%s", path);
    g_tls_on = false;
    pthread_mutex_unlock(&g_mu);
}

void rpc_client_set_tls_server(const char *host, unsigned port, const char *cert, const char *key, const char *ca)
{
    pthread_mutex_lock(&g_mu);
    snprintf(g_path, sizeof g_path, "tls:%.255s:%u", host, port);
    snprintf(g_tls_host, sizeof g_tls_host, "%s", host);
    snprintf(g_tls_port, sizeof g_tls_port, "%u", port);
    snprintf(g_tls_cert, sizeof g_tls_cert, "%s", cert ? cert : "");
    snprintf(g_tls_key, sizeof g_tls_key, "%s", key ? key : "");
    snprintf(g_tls_ca, sizeof g_tls_ca, "%s", ca ? ca : "");
    g_tls_on = true;
    pthread_mutex_unlock(&g_mu);
}

/* Under g_mu: ends the connection (TLS state, then the socket). */
static void close_conn(void)
{
    cf_tls_free(g_tls);
    g_tls = NULL;
    if (g_fd >= 0)
        close(g_fd);
    g_fd = -1;
}

static void drop(void)
{
    close_conn();
    g_lost = true;
}

cf_err rpc_client_initialize(char *err, size_t errlen)
{
    pthread_mutex_lock(&g_mu);
    cf_err rv = CF_OK;
    if (g_path[0] == '\0') {
        snprintf(err, errlen, "remote mode without a server path ([client] server)");
        rv = CF_E_CONFIG;
    }
    /* Connected at the first call: C_Initialize may not return a device error. */
    g_fd = -1;
    g_lost = false;
    g_last_msg[0] = '\0';
    pthread_mutex_unlock(&g_mu);
    return rv;
}

cf_err rpc_client_finalize(void)
{
    pthread_mutex_lock(&g_mu);
    close_conn();   /* the server closes this connection's sessions */
    cf_tls_ctx_free(g_tls_ctx);
    g_tls_ctx = NULL;
    g_lost = false;
    pthread_mutex_unlock(&g_mu);
    return CF_OK;
}

/* A child of fork(): the socket is the parent's conversation. Close the child's copy of the
 * descriptor (the parent's stays open) and start over; g_mu may have been held by a parent
 * thread at the fork. */
void rpc_client_forget_after_fork(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&g_mu, &fresh, sizeof g_mu);
    close_conn();   /* no close_notify: the parent's TLS conversation goes on */
    g_lost = false;
}

/* ---- transport ---------------------------------------------------------------------------------- */
static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = g_tls ? cf_tls_write(g_tls, p, n) : send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = g_tls ? cf_tls_read(g_tls, p, n) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* A received frame: buf owns the bytes, f views them. */
typedef struct {
    uint8_t *buf;
    size_t len;
    rpc_frame f;
} frame_in;

static void frame_in_free(frame_in *in)
{
    if (in->buf)
        cf_free_wiped(in->buf, in->len);
    in->buf = NULL;
    in->len = 0;
}

/* DEVICE_REMOVED: the connection is gone (EOF, error); DEVICE_ERROR: a frame we cannot parse. */
static cf_err read_frame(frame_in *in)
{
    uint8_t head[4];
    size_t total;
    memset(in, 0, sizeof *in);
    if (!read_all(g_fd, head, sizeof head))
        return CF_E_DEVICE_REMOVED;
    if (rpc_frame_size(head, sizeof head, &total) != CF_OK)
        return CF_E_DEVICE_ERROR;
    in->buf = malloc(total);
    if (!in->buf)
        return CF_E_NOMEM;
    in->len = total;
    memcpy(in->buf, head, sizeof head);
    if (!read_all(g_fd, in->buf + 4, total - 4)) {
        frame_in_free(in);
        return CF_E_DEVICE_REMOVED;
    }
    cf_reader r = cf_reader_init(in->buf, in->len);
    if (rpc_frame_parse(&r, &in->f) != CF_OK || !cf_reader_done(&r)) {
        frame_in_free(in);
        return CF_E_DEVICE_ERROR;
    }
    return CF_OK;
}

/* An ERROR frame's sentence on stderr; its status. */
static cf_err report_error_frame(const rpc_frame *f)
{
    cf_err st;
    const char *msg;
    size_t n;
    if (rpc_decode_error(f, &st, &msg, &n) != CF_OK)
        return CF_E_DEVICE_ERROR;
    char text[RPC_MAX_MESSAGE + 1];
    memcpy(text, msg, n);
    text[n] = '\0';
    SAY("remote HSM at %.100s refused the connection: %.300s", g_path, n ? text : cf_err_message(st));
    return st;
}

/* Under g_mu: connects and shakes hands. DEVICE_REMOVED when nothing listens, DEVICE_ERROR when
 * the server refuses us (version, ABI) or does not speak the protocol. */
/* Under g_mu: a TCP connection to g_tls_host:g_tls_port with the TLS handshake on it (the
 * server's certificate checked against [client] ca and the host name). */
static cf_err connect_tls_locked(void)
{
    char err[512];
    if (!g_tls_ctx && cf_tls_client_ctx_new(g_tls_cert, g_tls_key, g_tls_ca, &g_tls_ctx, err, sizeof err) != CF_OK) {
        SAY("remote HSM at %.100s: [client] TLS settings: %.300s", g_path, err);
        return CF_E_DEVICE_ERROR;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int g = getaddrinfo(g_tls_host, g_tls_port, &hints, &ai);
    if (g != 0) {
        SAY("cannot resolve the remote HSM host %.100s: %.200s", g_tls_host, gai_strerror(g));
        return CF_E_DEVICE_REMOVED;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        SAY("cannot reach the remote HSM at %.108s: %.200s", g_path, strerror(e ? e : EHOSTUNREACH));
        return CF_E_DEVICE_REMOVED;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (cf_tls_connect(g_tls_ctx, fd, g_tls_host, &g_tls, err, sizeof err) != CF_OK) {
        SAY("remote HSM at %.100s: %.300s", g_path, err);
        close(fd);
        return CF_E_DEVICE_ERROR;
    }
    g_fd = fd;
    return CF_OK;
}

static cf_err connect_locked(void)
{
    if (g_tls_on) {
        cf_err e = connect_tls_locked();
        if (e != CF_OK)
            return e;
    } else {
        struct sockaddr_un a;
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        snprintf(a.sun_path, sizeof a.sun_path, "%.107s", g_path);
        int sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sfd < 0)
            return CF_E_DEVICE_ERROR;
        if (connect(sfd, (struct sockaddr *)&a, sizeof a) != 0) {
            SAY("cannot reach the remote HSM at %.108s: %.200s", g_path, strerror(errno));
            close(sfd);
            return CF_E_DEVICE_REMOVED;
        }
        g_fd = sfd;
    }
    int fd = g_fd;
    uint8_t hb[64];
    cf_writer w = cf_writer_fixed(hb, sizeof hb);
    rpc_hello self = rpc_hello_self();
    cf_err rv = rpc_encode_hello(&w, RPC_HELLO, &self);
    if (rv != CF_OK || !write_all(fd, hb, w.len)) {
        if (rv == CF_OK && g_tls) {
            SAY("the remote HSM at %s refused the connection: %s (is [client] cert signed by the server's "
                "client_ca?)", g_path, cf_tls_last_error(g_tls) ? cf_tls_last_error(g_tls) : "it closed the TLS session");
            close_conn();
            return CF_E_DEVICE_ERROR;
        }
        close_conn();
        return rv != CF_OK ? CF_E_INTERNAL : CF_E_DEVICE_REMOVED;
    }
    frame_in in;
    rv = read_frame(&in);
    if (rv == CF_OK) {
        rpc_hello server;
        char msg[256];
        if (in.f.type == RPC_ERROR) {
            (void)report_error_frame(&in.f);
            rv = CF_E_DEVICE_ERROR;
        } else if (rpc_decode_hello(&in.f, &server) != CF_OK || in.f.type != RPC_HELLO_OK) {
            SAY("the remote HSM at %s does not speak the coffer protocol", g_path);
            rv = CF_E_DEVICE_ERROR;
        } else if (rpc_hello_ok_accept(&server, msg, sizeof msg) != CF_OK) {
            SAY("remote HSM at %.108s: %.300s", g_path, msg);
            rv = CF_E_DEVICE_ERROR;
        }
        frame_in_free(&in);
    } else if (rv == CF_E_DEVICE_REMOVED && g_tls) {
        SAY("the remote HSM at %s refused the connection: %s (is [client] cert signed by the server's "
            "client_ca?)", g_path, cf_tls_last_error(g_tls) ? cf_tls_last_error(g_tls) : "it closed the TLS session");
        rv = CF_E_DEVICE_ERROR;
    } else if (rv == CF_E_DEVICE_REMOVED) {
        SAY("the remote HSM at %s closed the connection during the handshake", g_path);
        rv = CF_E_DEVICE_ERROR;
    }
    if (rv != CF_OK) {
        close_conn();
        return rv;
    }
    g_next_id = 1;
    g_lost = false;
    g_last_msg[0] = '\0';
    return CF_OK;
}

/* Calls that name a slot (not a session) may reconnect after a lost connection: they are how an
 * application starts over (C_GetSlotList, C_OpenSession). */
static bool slot_level(uint32_t fn)
{
    switch (fn) {
    case RPC_FN_GET_SLOT_LIST:
    case RPC_FN_GET_SLOT_INFO:
    case RPC_FN_GET_TOKEN_INFO:
    case RPC_FN_GET_MECHANISM_LIST:
    case RPC_FN_GET_MECHANISM_INFO:
    case RPC_FN_INIT_TOKEN:
    case RPC_FN_DELETE_TOKEN:
    case RPC_FN_PIN_TRIES_LEFT:
    case RPC_FN_OPEN_SESSION:
    case RPC_FN_CLOSE_ALL_SESSIONS:
        return true;
    default:
        return false;
    }
}

/* One call's answer: the frame and what was decoded from it (views into the frame and arena). */
typedef struct {
    frame_in in;
    rpc_arena arena;
    rpc_reply reply;
} answer;

static void answer_free(answer *a)
{
    rpc_arena_free(&a->arena);
    frame_in_free(&a->in);
}

/* Sends call, waits for its answer. Returns the transport's status (OK: a->reply.status is the
 * engine's); a->reply.has_outputs says whether outputs were decoded. The caller frees a. */
static cf_err transact(const rpc_call *call, answer *a)
{
    memset(a, 0, sizeof *a);
    a->arena = (rpc_arena)RPC_ARENA_INIT;
    cf_writer w = cf_writer_heap();
    pthread_mutex_lock(&g_mu);
    cf_err rv = CF_OK;
    if (g_fd < 0) {
        if (g_lost && !slot_level(call->fn))
            CF_CHECK(false, CF_E_DEVICE_REMOVED);
        CF_GUARD(connect_locked());
    }
    uint32_t id = g_next_id++;
    if (g_next_id == 0)
        g_next_id = 1;   /* 0 is the connection's */
    CF_GUARD(rpc_encode_request(&w, id, call));
    if (!write_all(g_fd, w.p, w.len)) {
        drop();
        CF_CHECK(false, CF_E_DEVICE_REMOVED);
    }
    cf_writer_free(&w);   /* wipes: PINs do not wait for the answer */
    rv = read_frame(&a->in);
    if (rv != CF_OK) {
        if (rv != CF_E_NOMEM)
            drop();
        goto out;
    }
    const rpc_frame *f = &a->in.f;
    if (f->type == RPC_ERROR && (f->id == id || f->id == 0)) {
        cf_err st;
        const char *msg;
        size_t n;
        if (rpc_decode_error(f, &st, &msg, &n) != CF_OK) {
            drop();
            CF_CHECK(false, CF_E_DEVICE_ERROR);
        }
        if (f->id == 0 || st == CF_E_FORMAT) {
            /* the server gave up on the connection */
            (void)report_error_frame(f);
            drop();
            CF_CHECK(false, CF_E_DEVICE_ERROR);
        }
        a->reply.fn = call->fn;
        a->reply.status = st;   /* NOT_SUPPORTED for a function the server does not know */
        a->reply.has_outputs = false;
        goto out;
    }
    if (f->type != RPC_RESPONSE || f->id != id) {
        SAY("the remote HSM at %s answered out of turn", g_path);
        drop();
        CF_CHECK(false, CF_E_DEVICE_ERROR);
    }
    rv = rpc_decode_response(f, &a->reply, &a->arena);
    if (rv == CF_OK && (a->reply.fn != call->fn ||
                        (a->reply.has_outputs && !rpc_status_has_outputs(call->fn, a->reply.status))))
        rv = CF_E_FORMAT;
    if (rv != CF_OK) {
        if (rv != CF_E_NOMEM) {
            SAY("malformed response from the remote HSM at %s", g_path);
            drop();
            rv = CF_E_DEVICE_ERROR;
        }
        goto out;
    }
out:
    pthread_mutex_unlock(&g_mu);
    cf_writer_free(&w);
    if (rv != CF_OK)
        answer_free(a);
    return rv;
}

/* A call without outputs, or whose outputs the caller ignores. */
static cf_err call_status(const rpc_call *call)
{
    answer a;
    CF_TRY(transact(call, &a));
    cf_err st = a.reply.status;
    answer_free(&a);
    return st;
}

/* The answer's status, when it carries outputs that must be there. */
static cf_err outputs_or_status(const answer *a)
{
    if (a->reply.status == CF_OK && !a->reply.has_outputs)
        return CF_E_DEVICE_ERROR;   /* OK always has outputs (rpc_status_has_outputs) */
    return a->reply.status;
}

/* DATA answer into an (out, *outlen) buffer given as OUTBUF {out != NULL, *outlen}. */
static cf_err copy_data(const answer *a, const rpc_value *v, uint8_t *out, CK_ULONG cap, CK_ULONG *outlen)
{
    cf_err st = outputs_or_status(a);
    if (!a->reply.has_outputs)
        return st;
    if (v->data.p) {
        if (!out || v->data.len > cap)
            return CF_E_DEVICE_ERROR;   /* more than the buffer we announced */
        memcpy(out, v->data.p, v->data.len);
    }
    if (outlen)
        *outlen = v->data.len;
    return st;
}

/* LIST answer into (list, *count) given as OUTBUF {list != NULL, cap}. */
static cf_err copy_list(const answer *a, const rpc_value *v, CK_ULONG *list, CK_ULONG cap, CK_ULONG *count)
{
    cf_err st = outputs_or_status(a);
    if (!a->reply.has_outputs)
        return st;
    if (v->list.v) {
        if (!list || v->list.count > cap)
            return CF_E_DEVICE_ERROR;
        memcpy(list, v->list.v, v->list.count * sizeof *list);
    }
    *count = v->list.count;
    return st;
}

/* A ULONG (handle, count) answer. */
static cf_err call_ulong(const rpc_call *call, size_t idx, CK_ULONG *out)
{
    answer a;
    CF_TRY(transact(call, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *out = a.reply.out[idx].ul;
    answer_free(&a);
    return st;
}

/* ---- argument builders ------------------------------------------------------------------------- */
#define CALL(name) rpc_call c = { .fn = RPC_FN_##name }
static rpc_value u(CK_ULONG x) { rpc_value v; memset(&v, 0, sizeof v); v.ul = x; return v; }
static rpc_value bytes(const uint8_t *p, size_t n)
{
    rpc_value v;
    memset(&v, 0, sizeof v);
    v.bytes.p = p;
    v.bytes.len = n;
    return v;
}
static rpc_value outbuf(const void *p, CK_ULONG cap)
{
    rpc_value v;
    memset(&v, 0, sizeof v);
    v.outbuf.present = p != NULL;
    v.outbuf.cap = p != NULL ? cap : 0;
    return v;
}
static rpc_value tmpl(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    rpc_value v;
    memset(&v, 0, sizeof v);
    v.tmpl.attrs = (CK_ATTRIBUTE *)(uintptr_t)t;   /* the encoder only reads */
    v.tmpl.count = n;
    return v;
}
static rpc_value mech(const CK_MECHANISM *m)
{
    rpc_value v;
    memset(&v, 0, sizeof v);
    v.mech = *m;
    return v;
}

/* ---- slots and tokens -------------------------------------------------------------------------- */
cf_err rpc_client_get_slot_list(bool token_present, CK_SLOT_ID *list, CK_ULONG *count)
{
    CALL(GET_SLOT_LIST);
    c.arg[0] = u(token_present);
    c.arg[1] = outbuf(list, *count);
    answer a;
    CF_TRY(transact(&c, &a));
    cf_err st = copy_list(&a, &a.reply.out[0], list, *count, count);
    answer_free(&a);
    return st;
}

cf_err rpc_client_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
    CALL(GET_SLOT_INFO);
    c.arg[0] = u(slot);
    answer a;
    CF_TRY(transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *info = a.reply.out[0].slot_info;
    answer_free(&a);
    return st;
}

cf_err rpc_client_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    CALL(GET_TOKEN_INFO);
    c.arg[0] = u(slot);
    answer a;
    CF_TRY(transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *info = a.reply.out[0].token_info;
    answer_free(&a);
    return st;
}

cf_err rpc_client_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    CALL(GET_MECHANISM_LIST);
    c.arg[0] = u(slot);
    c.arg[1] = outbuf(list, *count);
    answer a;
    CF_TRY(transact(&c, &a));
    cf_err st = copy_list(&a, &a.reply.out[0], list, *count, count);
    answer_free(&a);
    return st;
}

cf_err rpc_client_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    CALL(GET_MECHANISM_INFO);
    c.arg[0] = u(slot);
    c.arg[1] = u(type);
    answer a;
    CF_TRY(transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *info = a.reply.out[0].mech_info;
    answer_free(&a);
    return st;
}

cf_err rpc_client_init_token(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, const uint8_t *label)
{
    CALL(INIT_TOKEN);
    c.arg[0] = u(slot);
    c.arg[1] = bytes(so_pin, pinlen);
    c.arg[2] = bytes(label, 32);
    return call_status(&c);
}

cf_err rpc_client_init_pin(CK_SESSION_HANDLE s, const uint8_t *pin, size_t pinlen)
{
    CALL(INIT_PIN);
    c.arg[0] = u(s);
    c.arg[1] = bytes(pin, pinlen);
    return call_status(&c);
}

cf_err rpc_client_set_pin(CK_SESSION_HANDLE s, const uint8_t *old, size_t oldlen, const uint8_t *pin, size_t pinlen)
{
    CALL(SET_PIN);
    c.arg[0] = u(s);
    c.arg[1] = bytes(old, oldlen);
    c.arg[2] = bytes(pin, pinlen);
    return call_status(&c);
}

cf_err rpc_client_delete_token(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen)
{
    CALL(DELETE_TOKEN);
    c.arg[0] = u(slot);
    c.arg[1] = bytes(so_pin, pinlen);
    return call_status(&c);
}

cf_err rpc_client_pin_tries_left(CK_SLOT_ID slot, CK_USER_TYPE user, CK_ULONG *left)
{
    CALL(PIN_TRIES_LEFT);
    c.arg[0] = u(slot);
    c.arg[1] = u(user);
    return call_ulong(&c, 0, left);
}

/* ---- sessions and login ------------------------------------------------------------------------ */
cf_err rpc_client_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out)
{
    CALL(OPEN_SESSION);
    c.arg[0] = u(slot);
    c.arg[1] = u(flags);
    return call_ulong(&c, 0, out);
}

cf_err rpc_client_close_session(CK_SESSION_HANDLE s)
{
    CALL(CLOSE_SESSION);
    c.arg[0] = u(s);
    return call_status(&c);
}

cf_err rpc_client_close_all_sessions(CK_SLOT_ID slot)
{
    CALL(CLOSE_ALL_SESSIONS);
    c.arg[0] = u(slot);
    return call_status(&c);
}

cf_err rpc_client_get_session_info(CK_SESSION_HANDLE s, CK_SESSION_INFO *info)
{
    CALL(GET_SESSION_INFO);
    c.arg[0] = u(s);
    answer a;
    CF_TRY(transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *info = a.reply.out[0].session_info;
    answer_free(&a);
    return st;
}

cf_err rpc_client_login(CK_SESSION_HANDLE s, CK_USER_TYPE user, const uint8_t *pin, size_t pinlen)
{
    CALL(LOGIN);
    c.arg[0] = u(s);
    c.arg[1] = u(user);
    c.arg[2] = bytes(pin, pinlen);
    return call_status(&c);
}

cf_err rpc_client_logout(CK_SESSION_HANDLE s)
{
    CALL(LOGOUT);
    c.arg[0] = u(s);
    return call_status(&c);
}

/* ---- objects ----------------------------------------------------------------------------------- */
cf_err rpc_client_create_object(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CALL(CREATE_OBJECT);
    c.arg[0] = u(s);
    c.arg[1] = tmpl(t, n);
    return call_ulong(&c, 0, out);
}

cf_err rpc_client_copy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n,
                              CK_OBJECT_HANDLE *out)
{
    CALL(COPY_OBJECT);
    c.arg[0] = u(s);
    c.arg[1] = u(o);
    c.arg[2] = tmpl(t, n);
    return call_ulong(&c, 0, out);
}

cf_err rpc_client_destroy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    CALL(DESTROY_OBJECT);
    c.arg[0] = u(s);
    c.arg[1] = u(o);
    return call_status(&c);
}

cf_err rpc_client_get_object_size(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ULONG *size)
{
    CALL(GET_OBJECT_SIZE);
    c.arg[0] = u(s);
    c.arg[1] = u(o);
    return call_ulong(&c, 0, size);
}

cf_err rpc_client_get_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *t, CK_ULONG n)
{
    if (n > RPC_MAX_TEMPLATE)
        return CF_E_ARGS;
    rpc_query_item *q = calloc(n ? n : 1, sizeof *q);
    if (!q)
        return CF_E_NOMEM;
    for (CK_ULONG i = 0; i < n; i++) {
        q[i].type = t[i].type;
        q[i].has_buf = t[i].pValue != NULL;
        q[i].cap = t[i].ulValueLen;
    }
    CALL(GET_ATTRIBUTE_VALUE);
    c.arg[0] = u(s);
    c.arg[1] = u(o);
    c.arg[2].query.items = q;
    c.arg[2].query.count = n;
    answer a;
    cf_err st = transact(&c, &a);
    free(q);
    CF_TRY(st);
    st = outputs_or_status(&a);
    if (a.reply.has_outputs) {
        const rpc_value *v = &a.reply.out[0];
        if (v->tmpl.count != n) {
            st = CF_E_DEVICE_ERROR;
            goto out;
        }
        for (CK_ULONG i = 0; i < n; i++) {
            const CK_ATTRIBUTE *r = &v->tmpl.attrs[i];
            if (r->type != t[i].type || (r->pValue && (!t[i].pValue || r->ulValueLen > t[i].ulValueLen))) {
                st = CF_E_DEVICE_ERROR;
                goto out;
            }
        }
        for (CK_ULONG i = 0; i < n; i++) {
            const CK_ATTRIBUTE *r = &v->tmpl.attrs[i];
            if (r->pValue)
                memcpy(t[i].pValue, r->pValue, r->ulValueLen);
            t[i].ulValueLen = r->ulValueLen;
        }
    }
out:
    answer_free(&a);
    return st;
}

cf_err rpc_client_set_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    CALL(SET_ATTRIBUTE_VALUE);
    c.arg[0] = u(s);
    c.arg[1] = u(o);
    c.arg[2] = tmpl(t, n);
    return call_status(&c);
}

cf_err rpc_client_find_objects_init(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    CALL(FIND_OBJECTS_INIT);
    c.arg[0] = u(s);
    c.arg[1] = tmpl(t, n);
    return call_status(&c);
}

cf_err rpc_client_find_objects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count)
{
    CALL(FIND_OBJECTS);
    c.arg[0] = u(s);
    c.arg[1] = u(max);
    answer a;
    CF_TRY(transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK) {
        const rpc_value *v = &a.reply.out[0];
        if (v->list.count > max || (v->list.count && !v->list.v))
            st = CF_E_DEVICE_ERROR;
        else {
            if (v->list.count)
                memcpy(out, v->list.v, v->list.count * sizeof *out);
            *count = v->list.count;
        }
    }
    answer_free(&a);
    return st;
}

cf_err rpc_client_find_objects_final(CK_SESSION_HANDLE s)
{
    CALL(FIND_OBJECTS_FINAL);
    c.arg[0] = u(s);
    return call_status(&c);
}

/* ---- cryptographic operations ------------------------------------------------------------------ */
cf_err rpc_client_op_init(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    CALL(OP_INIT);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    c.arg[2] = mech(m);
    c.arg[3] = u(key);
    return call_status(&c);
}

static cf_err data_call(rpc_call *c, size_t outbuf_idx, uint8_t *out, CK_ULONG *outlen)
{
    CK_ULONG cap = outlen ? *outlen : 0;
    c->arg[outbuf_idx] = outbuf(outlen ? out : NULL, cap);
    answer a;
    CF_TRY(transact(c, &a));
    cf_err st = copy_data(&a, &a.reply.out[0], out, cap, outlen);
    answer_free(&a);
    return st;
}

cf_err rpc_client_op_oneshot(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                             uint8_t *out, CK_ULONG *outlen)
{
    CALL(OP_ONESHOT);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    c.arg[2] = bytes(in, inlen);
    return data_call(&c, 3, out, outlen);
}

cf_err rpc_client_op_update(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                            uint8_t *out, CK_ULONG *outlen)
{
    CALL(OP_UPDATE);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    c.arg[2] = bytes(in, inlen);
    return data_call(&c, 3, out, outlen);
}

cf_err rpc_client_op_final(CK_SESSION_HANDLE s, hsm_op_kind kind, uint8_t *out, CK_ULONG *outlen)
{
    CALL(OP_FINAL);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    return data_call(&c, 2, out, outlen);
}

cf_err rpc_client_verify(CK_SESSION_HANDLE s, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen)
{
    CALL(VERIFY);
    c.arg[0] = u(s);
    c.arg[1] = bytes(data, len);
    c.arg[2] = bytes(sig, siglen);
    return call_status(&c);
}

cf_err rpc_client_verify_final(CK_SESSION_HANDLE s, const uint8_t *sig, size_t siglen)
{
    CALL(VERIFY_FINAL);
    c.arg[0] = u(s);
    c.arg[1] = bytes(sig, siglen);
    return call_status(&c);
}

void rpc_client_op_abort(CK_SESSION_HANDLE s, hsm_op_kind kind)
{
    CALL(OP_ABORT);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    (void)call_status(&c);
}

cf_err rpc_client_digest_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CALL(DIGEST_KEY);
    c.arg[0] = u(s);
    c.arg[1] = u(key);
    return call_status(&c);
}

/* ---- keys -------------------------------------------------------------------------------------- */
cf_err rpc_client_generate_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, const CK_ATTRIBUTE *t, CK_ULONG n,
                               CK_OBJECT_HANDLE *out)
{
    CALL(GENERATE_KEY);
    c.arg[0] = u(s);
    c.arg[1] = mech(m);
    c.arg[2] = tmpl(t, n);
    return call_ulong(&c, 0, out);
}

cf_err rpc_client_generate_key_pair(CK_SESSION_HANDLE s, const CK_MECHANISM *m,
                                    const CK_ATTRIBUTE *pub, CK_ULONG npub,
                                    const CK_ATTRIBUTE *priv, CK_ULONG npriv,
                                    CK_OBJECT_HANDLE *pub_out, CK_OBJECT_HANDLE *priv_out)
{
    CALL(GENERATE_KEY_PAIR);
    c.arg[0] = u(s);
    c.arg[1] = mech(m);
    c.arg[2] = tmpl(pub, npub);
    c.arg[3] = tmpl(priv, npriv);
    answer a;
    CF_TRY(transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK) {
        *pub_out = a.reply.out[0].ul;
        *priv_out = a.reply.out[1].ul;
    }
    answer_free(&a);
    return st;
}

cf_err rpc_client_wrap_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE wrapping,
                           CK_OBJECT_HANDLE key, uint8_t *wrapped, CK_ULONG *wrapped_len)
{
    CALL(WRAP_KEY);
    c.arg[0] = u(s);
    c.arg[1] = mech(m);
    c.arg[2] = u(wrapping);
    c.arg[3] = u(key);
    return data_call(&c, 4, wrapped, wrapped_len);
}

cf_err rpc_client_unwrap_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapping,
                             const uint8_t *wrapped, size_t wrapped_len, const CK_ATTRIBUTE *t, CK_ULONG n,
                             CK_OBJECT_HANDLE *out)
{
    CALL(UNWRAP_KEY);
    c.arg[0] = u(s);
    c.arg[1] = mech(m);
    c.arg[2] = u(unwrapping);
    c.arg[3] = bytes(wrapped, wrapped_len);
    c.arg[4] = tmpl(t, n);
    return call_ulong(&c, 0, out);
}

cf_err rpc_client_derive_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE base,
                             const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CALL(DERIVE_KEY);
    c.arg[0] = u(s);
    c.arg[1] = mech(m);
    c.arg[2] = u(base);
    c.arg[3] = tmpl(t, n);
    return call_ulong(&c, 0, out);
}

/* ---- random ------------------------------------------------------------------------------------ */
/* At most RPC_MAX_DATA per request (docs/protocol.md): larger requests are split. */
cf_err rpc_client_generate_random(CK_SESSION_HANDLE s, uint8_t *out, size_t len)
{
    size_t done = 0;
    do {
        size_t n = len - done < RPC_MAX_DATA ? len - done : RPC_MAX_DATA;
        CALL(GENERATE_RANDOM);
        c.arg[0] = u(s);
        c.arg[1] = u(n);
        answer a;
        CF_TRY(transact(&c, &a));
        cf_err st = outputs_or_status(&a);
        if (st == CF_OK) {
            const rpc_value *v = &a.reply.out[0];
            if (v->data.len != n || (n && !v->data.p))
                st = CF_E_DEVICE_ERROR;
            else if (n)
                memcpy(out + done, v->data.p, n);
        }
        answer_free(&a);
        CF_TRY(st);
        done += n;
    } while (done < len);
    return CF_OK;
}
