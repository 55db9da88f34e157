/* hsm_server.c: the remote-HSM service's event loop (see hsm_server.h for the whole picture).
 *
 * Workers: N threads wait in epoll_wait on one epoll set holding the listeners, the connections
 * and a wake-up eventfd. Connections and listeners are armed EPOLLONESHOT, so an event goes to
 * exactly one worker and the descriptor stays disarmed until that worker re-arms it: whoever gets
 * a connection's event serves it alone, start to end (leader/followers, with the kernel choosing
 * the next leader). There is no hand-off between threads on the hot path: per batch of requests,
 * one read, one write and one epoll_ctl.
 *
 * A connection's requests run in arrival order, one after the other: only one worker holds the
 * connection at a time, and it serves the frames of its buffer in order. Its answers are sent in
 * one write, once HSRV_OUT_HIGH bytes of them are ready or the buffered frames are all served;
 * when the socket takes only part of them, the rest waits for EPOLLOUT and no further request of
 * that connection is served or read meanwhile (a client that does not read its answers stops
 * being served, not the server, and what the server holds for it stays bounded).
 *
 * Timers: a housekeeping thread wakes every HSRV_TICK_MS and shuts down (shutdown(SHUT_RDWR)) the
 * connections past their deadline: the TLS handshake (HSM_HANDSHAKE_MS) and [hsm] idle_timeout
 * (since the last request; never while a worker serves the connection). The shut-down socket wakes
 * its connection, and the worker that gets the event closes it: only a worker closes, so a
 * descriptor is never closed under a worker using it. Descriptors are closed under h->mu, while
 * the housekeeper only calls shutdown under h->mu, so it never touches a reused number.
 *
 * Stop: the housekeeper is stopped, the wake-up eventfd becomes readable (level-triggered and never
 * read, so every worker sees it after finishing the event it holds), the workers are joined, and
 * the connections left are closed by the stopping thread. */
#include "daemon/hsm_server.h"
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "base/secmem.h"
#include "crypto/crypto.h"
#include "hsm/hsm.h"

#define HSRV_TICK_MS 250              /* housekeeping period: the resolution of the timeouts */
#define HSRV_ACCEPT_BATCH 64          /* accepts per listener event (more: the listener fires again) */
#define HSRV_OUT_KEEP (64u * 1024)    /* an output buffer larger than this is freed once sent */
#define HSRV_FD_SPARE 256             /* descriptors beyond max_connections (store, listeners, logs) */
/* A connection's answers waiting to be sent stay under OUT_HIGH plus one answer (at most a frame,
 * HSRV_FRAME_MAX): serving stops there until they are sent. Without it a client's 16 KiB of
 * pipelined 1 MiB GENERATE_RANDOMs built half a gigabyte of answers in one event. */
#define HSRV_OUT_HIGH (256u * 1024)
/* Serve-and-send rounds per event: a connection with more work then goes behind the others. */
#define HSRV_ROUNDS 16
/* A worker with nothing to do yields SPIN_YIELDS times, looking for a request in between, before
 * it sleeps in epoll_wait: a request that arrives meanwhile costs its client no wake-up of a
 * sleeping thread (an inter-processor interrupt on a virtual machine, and the wake of a halted
 * virtual CPU). When fewer connections than workers were active in the last housekeeping tick and
 * no other worker is serving, it goes on yielding for SPIN_US: the server has cores to spare, and
 * a lone caller's next request (a single-threaded signer sends it a few microseconds after its
 * answer) finds the worker awake. That took one client thread from 27-29k to 34-38k P-256
 * signatures/s over the Unix socket on a 2-core VM. With more callers the cores are in demand (by
 * the other workers, and on a shared machine by the clients) and a spinning worker takes CPU from
 * them (8 client threads lost 3% when every idle worker spun). */
#define SPIN_YIELDS 3
#define SPIN_US 50

/* The TLS handshake must complete within this (a silent or plaintext peer holds a slot no longer).
 * A variable so that tests can shorten it. */
static int64_t hsrv_handshake_ms = 10000;

/* What an epoll event's data.ptr points at: the first byte of a listener, a connection, or the
 * server's wake-up tag. */
enum { TAG_CONN = 1, TAG_LISTENER, TAG_WAKE };

typedef struct {
    uint8_t tag;                 /* TAG_LISTENER */
    int fd;
    bool tls;
    bool paused;                 /* accept ran out of descriptors: the housekeeper re-arms it */
    char path[CF_SOCK_PATH_MAX]; /* a Unix socket's file, removed at stop ("" none) */
} hsm_listener;

/* CONN_REFUSED: a TLS handshake we failed (no or a wrong client certificate). OpenSSL has written
 * its alert; we have sent our FIN and read what the client still sends until it closes (or the
 * handshake deadline). Closing at once would make the kernel answer the client's first request,
 * already on its way, with a reset, which can reach the client before it reads the alert: it
 * would see a server going away instead of a refusal naming its certificate. */
typedef enum { CONN_TLS_HANDSHAKE, CONN_REFUSED, CONN_HELLO, CONN_READY } conn_state;

/* Which limit a connection counts against. A TLS connection is a handshake until its handshake
 * completes (or for good, if refused): silent or refused peers then fill max_handshakes, never
 * the max_connections that Unix clients and authenticated TLS clients share. */
typedef enum { SLOT_NONE, SLOT_HANDSHAKE, SLOT_CONN } conn_slot;  /* NONE: not yet admitted */

typedef struct hconn {
    uint8_t tag;                 /* TAG_CONN */
    int fd;
    cf_tls *tls;                 /* NULL: a Unix socket */
    conn_state state;
    hsrv_peer peer;
    hsrv_app *app;                /* from the HELLO on */
    hsrv_inbuf in;                /* bytes read, not yet served */
    cf_writer out;               /* answers not yet sent: out.p[out_off..out.len) */
    size_t out_off;
    uint32_t read_wants;         /* what the last read waited for: EPOLLIN (TLS: maybe EPOLLOUT) */
    bool close_after;            /* a protocol error: close once out is sent */
    atomic_bool handshaking;     /* the TLS handshake deadline applies */
    atomic_bool busy;            /* a worker holds it: never idle */
    _Atomic int64_t last_ms;     /* the last request served (or the accept) */
    int64_t hs_deadline_ms;
    bool expired;                /* under h->mu: shut down by the housekeeper */
    conn_slot slot;              /* under h->mu */
    struct hconn *prev, *next;   /* h->conns, under h->mu */
} hconn;

struct cofferd_hsm {
    uint8_t wake_tag;            /* TAG_WAKE */
    int wake_fd;                 /* eventfd: readable = stop */
    int ep;
    cf_tls_ctx *tls;             /* the TLS listeners' context, NULL without one */
    hsm_listener lst[CF_HSM_LISTEN_MAX];
    size_t n_lst;
    hsrv_registry reg;
    unsigned max_conns;
    unsigned max_handshakes;
    int64_t idle_ms;             /* 0: never */
    pthread_mutex_t mu;          /* conns, n_conns, n_handshakes, slots, listener pauses, stopping;
                                  * the housekeeper's wait */
    pthread_cond_t tick;
    hconn *conns;
    size_t n_conns;
    size_t n_handshakes;
    bool stopping;
    pthread_t *workers;
    unsigned n_workers, n_started;
    pthread_t housekeeper;
    bool housekeeper_started;
    _Atomic int64_t refused_log_ms;  /* refusals are logged at most once a second */
    atomic_uint refused;
    atomic_uint serving;             /* workers handling an event (the spin's test) */
    atomic_uint recent;              /* connections served in the last tick (the spin's test) */
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Monotonic microseconds (a vDSO read, no system call). */
static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static bool arm(cofferd_hsm *h, int fd, void *tag, uint32_t events, int op)
{
    struct epoll_event ev = { .events = events | EPOLLONESHOT, .data.ptr = tag };
    return epoll_ctl(h->ep, op, fd, &ev) == 0;
}

/* ---- connections: life and death -------------------------------------------------------------- */
/* Steps of serving a connection: carry on, wait for the events given, or close it. */
typedef enum { STEP_GO, STEP_WAIT, STEP_CLOSE } step;

static hconn *conn_new(cofferd_hsm *h, const hsm_listener *l, int fd)
{
    hconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->tag = TAG_CONN;
    c->fd = fd;
    c->out = cf_writer_heap();
    c->read_wants = EPOLLIN;
    atomic_init(&c->last_ms, now_ms());
    atomic_init(&c->busy, false);
    atomic_init(&c->handshaking, l->tls);
    if (l->tls) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (cf_tls_server_new(h->tls, fd, &c->tls) != CF_OK) {
            free(c);
            return NULL;
        }
        c->state = CONN_TLS_HANDSHAKE;
        c->hs_deadline_ms = atomic_load(&c->last_ms) + hsrv_handshake_ms;
        return c;
    }
    /* the Unix peer's identity: its user, as the kernel saw it at connect() */
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        cf_warn("hsm: cannot read a Unix peer's credentials: %s", strerror(errno));
        free(c);
        return NULL;
    }
    c->peer.kind = HSRV_PEER_UNIX;
    memcpy(c->peer.id, &cred.uid, sizeof cred.uid);
    c->state = CONN_HELLO;
    return c;
}

/* Under h->mu: gives back a slot that conn_close or a failed admission no longer holds. */
static void slot_free_locked(cofferd_hsm *h, conn_slot slot)
{
    if (slot == SLOT_CONN)
        h->n_conns--;
    else if (slot == SLOT_HANDSHAKE)
        h->n_handshakes--;
}

/* Unlinks, closes and frees c; its application ends if c was its last connection. Only the worker
 * holding c (or the stopping thread, once the workers are gone) calls this. */
static void conn_close(cofferd_hsm *h, hconn *c)
{
    cf_tls_free(c->tls);
    pthread_mutex_lock(&h->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    slot_free_locked(h, c->slot);
    close(c->fd);   /* under the mutex: the housekeeper never shuts down a reused number */
    pthread_mutex_unlock(&h->mu);
    if (c->app)
        hsrv_registry_leave(&h->reg, c->app);
    hsrv_inbuf_free(&c->in);
    cf_writer_free(&c->out);
    free(c);
}

/* Counts a refusal; logs it, at most once a second. */
static void note_refused(cofferd_hsm *h, const char *msg)
{
    unsigned n = atomic_fetch_add(&h->refused, 1) + 1;
    int64_t now = now_ms(), last = atomic_load(&h->refused_log_ms);
    if (now - last >= 1000 && atomic_compare_exchange_strong(&h->refused_log_ms, &last, now))
        cf_warn("hsm: refused a connection: %s (%u refused so far)", msg, n);
}

static void too_many_msg(const cofferd_hsm *h, char *msg, size_t len)
{
    snprintf(msg, len, "too many connections (max_connections = %u)", h->max_conns);
}

/* Past max_connections, a Unix client is told why (one ERROR frame, id 0) before the close. Past
 * max_handshakes, a TLS one is closed at once: nothing can be said before its handshake (one past
 * max_connections is told after it, see refuse_tls_client). */
static void refuse(cofferd_hsm *h, const hsm_listener *l, int fd)
{
    char msg[80];
    if (!l->tls) {
        too_many_msg(h, msg, sizeof msg);
        uint8_t buf[160];
        cf_writer w = cf_writer_fixed(buf, sizeof buf);
        if (rpc_encode_error(&w, 0, CF_E_SESSION_COUNT, msg) == CF_OK)
            (void)send(fd, buf, w.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
        snprintf(msg, sizeof msg, "too many TLS handshakes (max_handshakes = %u)", h->max_handshakes);
    }
    close(fd);
    note_refused(h, msg);
}

static void admit(cofferd_hsm *h, const hsm_listener *l, int fd)
{
    conn_slot slot = l->tls ? SLOT_HANDSHAKE : SLOT_CONN;
    pthread_mutex_lock(&h->mu);
    bool full = l->tls ? h->n_handshakes >= h->max_handshakes : h->n_conns >= h->max_conns;
    if (!full) {             /* the slot is taken now; conn_close gives it back */
        if (l->tls)
            h->n_handshakes++;
        else
            h->n_conns++;
    }
    pthread_mutex_unlock(&h->mu);
    if (full) {
        refuse(h, l, fd);
        return;
    }
    hconn *c = conn_new(h, l, fd);
    pthread_mutex_lock(&h->mu);
    if (c) {
        c->slot = slot;
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
    } else {
        slot_free_locked(h, slot);
    }
    pthread_mutex_unlock(&h->mu);
    if (!c) {
        close(fd);
        return;
    }
    /* both a TLS client (ClientHello) and a Unix one (HELLO) speak first */
    if (!arm(h, fd, c, EPOLLIN, EPOLL_CTL_ADD)) {
        cf_warn("hsm: cannot watch a new connection: %s", strerror(errno));
        conn_close(h, c);
    }
}

static void on_listener(cofferd_hsm *h, hsm_listener *l)
{
    for (int i = 0; i < HSRV_ACCEPT_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(h, l, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* the listener would fire again at once: it rests until the housekeeper's next tick */
            cf_warn("hsm: cannot accept a connection: %s", strerror(errno));
            pthread_mutex_lock(&h->mu);
            l->paused = true;
            pthread_mutex_unlock(&h->mu);
            return;
        }
        /* anything else is the failed connection's own (a reset, a network error): next */
    }
    if (!arm(h, l->fd, l, EPOLLIN, EPOLL_CTL_MOD))
        cf_error("hsm: cannot re-arm a listener: %s", strerror(errno));
}

/* ---- connections: bytes in and out ------------------------------------------------------------ */
/* Sends what out holds. GO when all of it is sent (out is then wiped and emptied); WAIT with
 * *events when the socket takes no more now. One send per call on a Unix socket: a short send
 * means its buffer is full, and asking again would only cost a system call to hear EAGAIN. */
static step flush(hconn *c, uint32_t *events)
{
    if (cf_writer_status(&c->out) != CF_OK)
        return STEP_CLOSE;           /* an answer could not be encoded for want of memory */
    while (c->out_off < c->out.len) {
        const uint8_t *p = c->out.p + c->out_off;
        size_t left = c->out.len - c->out_off, n = 0;
        if (!c->tls) {
            ssize_t k = send(c->fd, p, left, MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                *events = EPOLLOUT;
                return STEP_WAIT;
            }
            if (k <= 0)
                return STEP_CLOSE;
            c->out_off += (size_t)k;
            if ((size_t)k < left) {
                *events = EPOLLOUT;
                return STEP_WAIT;
            }
            continue;
        }
        switch (cf_tls_write_nb(c->tls, p, left, &n)) {
        case CF_TLS_DONE:
            c->out_off += n;
            continue;
        case CF_TLS_WANT_READ:
            *events = EPOLLIN;
            return STEP_WAIT;
        case CF_TLS_WANT_WRITE:
            *events = EPOLLOUT;
            return STEP_WAIT;
        default:
            return STEP_CLOSE;
        }
    }
    /* answers hold plaintext and attribute values: wiped once sent */
    cf_wipe(c->out.p, c->out.len);
    c->out.len = 0;
    c->out_off = 0;
    if (c->out.cap > HSRV_OUT_KEEP) {
        cf_writer_free(&c->out);
        c->out = cf_writer_heap();
    }
    return STEP_GO;
}

/* One read into the input buffer: GO with bytes added, WAIT (nothing there now; read_wants says
 * for what), CLOSE at the end of the stream or on an error. */
static step fill(hconn *c)
{
    size_t need;
    (void)hsrv_split(c->in.p, c->in.len, &need);
    if (hsrv_inbuf_room(&c->in, need) != CF_OK)
        return STEP_CLOSE;
    uint8_t *p = c->in.p + c->in.len;
    size_t room = c->in.cap - c->in.len, n = 0;
    c->read_wants = EPOLLIN;
    if (!c->tls) {
        ssize_t k;
        do
            k = recv(c->fd, p, room, 0);
        while (k < 0 && errno == EINTR);
        if (k > 0) {
            c->in.len += (size_t)k;
            return STEP_GO;
        }
        return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? STEP_WAIT : STEP_CLOSE;
    }
    switch (cf_tls_read_nb(c->tls, p, room, &n)) {
    case CF_TLS_DONE:
        c->in.len += n;
        return STEP_GO;
    case CF_TLS_WANT_READ:
        return STEP_WAIT;
    case CF_TLS_WANT_WRITE:
        c->read_wants = EPOLLOUT;
        return STEP_WAIT;
    default:
        return STEP_CLOSE;
    }
}

/* ---- connections: frames ---------------------------------------------------------------------- */
static void conn_fail(hconn *c, uint32_t id, cf_err status, const char *msg)
{
    hsrv_error(&c->out, id, status, msg);
    c->close_after = true;
}

/* The first frame: HELLO. The connection joins the application its token names (same peer), or
 * gets a new one; HELLO_OK names it (docs/protocol.md, "Handshake"). A minor-0 client gets no
 * token: a peer never sends what the other's minor version lacks. */
static void conn_hello(cofferd_hsm *h, hconn *c, const rpc_frame *f)
{
    rpc_hello hi;
    char msg[256];
    if (f->type != RPC_HELLO || rpc_decode_hello(f, &hi) != CF_OK) {
        conn_fail(c, 0, CF_E_FORMAT, "expected HELLO");
        return;
    }
    if (rpc_hello_accept(&hi, msg, sizeof msg) != CF_OK) {
        conn_fail(c, 0, CF_E_NOT_SUPPORTED, msg);
        return;
    }
    bool joined;
    cf_err rv = hsrv_registry_enter(&h->reg, &c->peer, hi.minor, hi.has_token ? hi.token : NULL, &c->app, &joined);
    if (rv != CF_OK) {
        cf_wipe(&hi, sizeof hi);
        conn_fail(c, 0, rv, rv == CF_E_NOMEM ? "out of memory" : "cannot make an application token");
        return;
    }
    rpc_hello ok = rpc_hello_self();
    if (hi.minor >= 1) {
        ok.has_token = true;
        memcpy(ok.token, c->app->token, sizeof ok.token);
    }
    if (rpc_encode_hello(&c->out, RPC_HELLO_OK, &ok) != CF_OK)
        c->close_after = true;
    cf_debug("hsm: connection %s application %llu", joined ? "joined" : "opened", (unsigned long long)c->app->id);
    cf_wipe(&ok, sizeof ok);
    cf_wipe(&hi, sizeof hi);
    c->state = CONN_READY;
}

static void serve_frame(cofferd_hsm *h, hconn *c, const uint8_t *p, size_t len)
{
    cf_reader r = cf_reader_init(p, len);
    rpc_frame f;
    if (rpc_frame_parse(&r, &f) != CF_OK) {
        conn_fail(c, 0, CF_E_FORMAT, "bad frame");
        return;
    }
    if (c->state == CONN_HELLO)
        conn_hello(h, c, &f);
    else if (!hsrv_dispatch(c->app, &f, &c->out))
        c->close_after = true;
}

/* The largest answer backlog a connection has held (out.len after serving; tests read it). */
static _Atomic size_t hsrv_out_peak;

/* Whether the input holds a whole frame (or a bad length, which serving answers) to serve. */
static bool frame_waiting(const hconn *c)
{
    size_t len;
    return hsrv_split(c->in.p, c->in.len, &len) != HSRV_SPLIT_NEED;
}

/* Serves the whole frames buffered, in order, appending the answers to out, until out holds
 * HSRV_OUT_HIGH bytes: the frames left wait until those are sent. */
static void serve_input(cofferd_hsm *h, hconn *c)
{
    size_t off = 0, served = 0, len;
    while (!c->close_after && c->out.len < HSRV_OUT_HIGH) {
        hsrv_split_result s = hsrv_split(c->in.p + off, c->in.len - off, &len);
        if (s == HSRV_SPLIT_NEED)
            break;
        if (s == HSRV_SPLIT_BAD) {
            conn_fail(c, 0, CF_E_FORMAT, "bad frame length");
            break;
        }
        serve_frame(h, c, c->in.p + off, len);
        off += len;
        served++;
    }
    hsrv_inbuf_consume(&c->in, off);    /* served frames (PINs) wiped */
    if (served)
        atomic_store(&c->last_ms, now_ms());
    size_t peak = atomic_load_explicit(&hsrv_out_peak, memory_order_relaxed);
    while (c->out.len > peak &&
           !atomic_compare_exchange_weak_explicit(&hsrv_out_peak, &peak, c->out.len, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* A refused TLS connection: our FIN sent, the client's bytes drained (drain_refused) until it
 * closes or the handshake deadline. */
static step linger_refused(hconn *c, uint32_t *events)
{
    if (shutdown(c->fd, SHUT_WR) != 0)
        return STEP_CLOSE;
    c->state = CONN_REFUSED;
    *events = EPOLLIN;
    return STEP_WAIT;
}

/* A completed handshake trades its handshake slot for a connection slot, if one is free; false
 * leaves it a handshake (its deadline still running). */
static bool take_conn_slot(cofferd_hsm *h, hconn *c)
{
    pthread_mutex_lock(&h->mu);
    bool ok = h->n_conns < h->max_conns;
    if (ok) {
        h->n_handshakes--;
        h->n_conns++;
        c->slot = SLOT_CONN;
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}

/* An authenticated TLS client past max_connections: told why, as a Unix one is (ERROR, id 0;
 * one small frame, which a fresh socket takes), then refused. */
static step refuse_tls_client(cofferd_hsm *h, hconn *c, uint32_t *events)
{
    char msg[80];
    too_many_msg(h, msg, sizeof msg);
    hsrv_error(&c->out, 0, CF_E_SESSION_COUNT, msg);
    uint32_t ignored;
    (void)flush(c, &ignored);
    note_refused(h, msg);
    return linger_refused(c, events);
}

/* The TLS handshake, one step: GO once it is complete (the peer is then its certificate). */
static step conn_handshake(cofferd_hsm *h, hconn *c, uint32_t *events)
{
    char err[400];
    switch (cf_tls_handshake_step(c->tls, err, sizeof err)) {
    case CF_TLS_DONE:
        break;
    case CF_TLS_WANT_READ:
        *events = EPOLLIN;
        return STEP_WAIT;
    case CF_TLS_WANT_WRITE:
        *events = EPOLLOUT;
        return STEP_WAIT;
    default:
        cf_info("hsm: TLS connection refused: %s", err);
        return linger_refused(c, events);
    }
    if (cf_tls_peer_id(c->tls, c->peer.id) != CF_OK) /* not reached: a certificate is required */
        return STEP_CLOSE;
    if (!take_conn_slot(h, c))
        return refuse_tls_client(h, c, events);
    c->peer.kind = HSRV_PEER_TLS;
    c->state = CONN_HELLO;
    atomic_store(&c->handshaking, false);
    return STEP_GO;
}

/* CONN_REFUSED: the client's bytes, read and dropped (raw: the TLS session failed) until it
 * closes. EPOLLIN to wait for more, 0 to close. */
static uint32_t drain_refused(hconn *c)
{
    uint8_t sink[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return EPOLLIN;
        if (n <= 0)
            return 0;
    }
    return 0; /* a client that keeps talking to a refused session: enough */
}

/* Everything a connection's event calls for; returns the events to wait for next, 0 to close.
 * Each round sends the answers waiting, then serves the frames already buffered, or reads once
 * when none is whole: nothing is read while answers wait for the socket or frames wait to be
 * served, so neither buffer grows past its bound (the input's: one frame). A Unix socket is read
 * once per event (one recv, one send); TLS again while it holds decrypted bytes, which epoll
 * would not report. After HSRV_ROUNDS the connection waits for EPOLLOUT, which a writable socket
 * reports at once: it comes back behind the other ready connections, and serves its buffered
 * frames (or TLS's) first. */
static uint32_t conn_drive(cofferd_hsm *h, hconn *c)
{
    uint32_t events = 0;
    if (c->state == CONN_REFUSED)
        return drain_refused(c);
    if (c->state == CONN_TLS_HANDSHAKE) {
        step s = conn_handshake(h, c, &events);
        if (s != STEP_GO)
            return s == STEP_WAIT ? events : 0;
    }
    for (unsigned round = 0;; round++) {
        if (c->out_off < c->out.len || c->close_after) { /* answers waiting for the socket */
            step s = flush(c, &events);
            if (s != STEP_GO || c->close_after)
                return s == STEP_WAIT ? events : 0;
        }
        bool buffered = frame_waiting(c);
        if (!buffered && round > 0 && !(c->tls && cf_tls_pending(c->tls) > 0))
            return c->read_wants;        /* all served and sent: wait for the next request */
        if (round == HSRV_ROUNDS)
            return EPOLLOUT;
        if (!buffered) {
            step s = fill(c);
            if (s == STEP_CLOSE)
                return 0;                /* the end of the stream (out is empty: sent above) */
            if (s == STEP_WAIT)
                return c->read_wants;
        }
        serve_input(h, c);
    }
}

static void on_conn(cofferd_hsm *h, hconn *c)
{
    /* The previous holder's release of busy, before its re-arm, is what this acquire pairs with:
     * everything it wrote to c is visible here. (epoll orders the two in the kernel too, but
     * neither the C memory model nor ThreadSanitizer can see that.) */
    (void)atomic_exchange_explicit(&c->busy, true, memory_order_acquire);
    uint32_t events = conn_drive(h, c);
    if (!events) {
        conn_close(h, c);
        return;
    }
    int fd = c->fd;
    atomic_store_explicit(&c->busy, false, memory_order_release);
    /* from here c may be another worker's: not touched unless the re-arm failed (then no event
     * can hand it to anyone) */
    if (!arm(h, fd, c, events, EPOLL_CTL_MOD))
        conn_close(h, c);
}

/* ---- threads ------------------------------------------------------------------------------------ */
static void *worker_main(void *arg)
{
    cofferd_hsm *h = arg;
    for (;;) {
        struct epoll_event ev;
        /* one event at a time: the others stay for the other workers. Before sleeping, a few
         * yields with a look in between (SPIN_YIELDS): a request that comes meanwhile is taken
         * without the client's send having to wake this thread */
        int k = 0;
        bool spare = atomic_load_explicit(&h->recent, memory_order_relaxed) < h->n_workers &&
                     atomic_load_explicit(&h->serving, memory_order_relaxed) == 0;
        int64_t end = 0, spin_us = spare ? SPIN_US : 0;
        for (int i = 0;; i++) {
            k = epoll_wait(h->ep, &ev, 1, 0);
            if (k != 0)
                break;
            if (i >= SPIN_YIELDS) {
                int64_t now = now_us();
                if (end == 0)
                    end = now + spin_us;
                else if (now >= end)
                    break;
            }
            sched_yield();
        }
        if (k == 0)
            k = epoll_wait(h->ep, &ev, 1, -1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            cf_error("hsm: epoll_wait failed: %s", strerror(errno));
            break;
        }
        if (k == 0)
            continue;
        uint8_t tag = *(const uint8_t *)ev.data.ptr;
        if (tag == TAG_WAKE)
            break;
        atomic_fetch_add_explicit(&h->serving, 1, memory_order_relaxed);
        if (tag == TAG_LISTENER)
            on_listener(h, ev.data.ptr);
        else
            on_conn(h, ev.data.ptr);
        atomic_fetch_sub_explicit(&h->serving, 1, memory_order_relaxed);
    }
    return NULL;
}

/* Under h->mu: shuts down the connections past a deadline, re-arms paused listeners. */
static void sweep_locked(cofferd_hsm *h, int64_t now)
{
    unsigned recent = 0;
    for (hconn *c = h->conns; c; c = c->next) {
        if (c->expired)
            continue;
        if (now - atomic_load(&c->last_ms) < HSRV_TICK_MS)
            recent++;
        bool late = atomic_load(&c->handshaking) && now >= c->hs_deadline_ms;
        bool idle = h->idle_ms && !atomic_load(&c->busy) && now - atomic_load(&c->last_ms) >= h->idle_ms;
        if (!late && !idle)
            continue;
        if (late)
            cf_info("hsm: TLS connection refused: no handshake within %lld ms", (long long)hsrv_handshake_ms);
        else
            cf_debug("hsm: closing a connection idle for %lld s", (long long)(h->idle_ms / 1000));
        (void)shutdown(c->fd, SHUT_RDWR);
        c->expired = true;
    }
    atomic_store_explicit(&h->recent, recent, memory_order_relaxed);
    for (size_t i = 0; i < h->n_lst; i++)
        if (h->lst[i].paused) {
            h->lst[i].paused = false;
            (void)arm(h, h->lst[i].fd, &h->lst[i], EPOLLIN, EPOLL_CTL_MOD);
        }
}

static void *housekeeper_main(void *arg)
{
    cofferd_hsm *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += HSRV_TICK_MS * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&h->tick, &h->mu, &t);
        if (!h->stopping)
            sweep_locked(h, now_ms());
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------------- */
static cf_err open_listeners(cofferd_hsm *h, const cf_config *cfg, char *err, size_t errlen)
{
    gid_t gid = (gid_t)-1;
    if (cfg->hsm_socket_group[0])
        CF_TRY(hsrv_group_id(cfg->hsm_socket_group, &gid, err, errlen));
    for (size_t i = 0; i < cfg->n_hsm_listen; i++) {
        const cf_listen *l = &cfg->hsm_listen[i];
        hsm_listener *s = &h->lst[h->n_lst];
        s->tag = TAG_LISTENER;
        s->tls = l->kind == CF_LISTEN_TLS;
        if (s->tls && !h->tls) {
            char why[400];
            if (cf_tls_server_ctx_new(cfg->hsm_cert, cfg->hsm_key, cfg->hsm_client_ca, &h->tls, why, sizeof why) !=
                CF_OK) {
                snprintf(err, errlen, "[hsm] TLS: %s", why);
                return CF_E_CONFIG;
            }
        }
        s->fd = s->tls ? hsrv_listen_tcp(l, err, errlen) : hsrv_listen_unix(l, cfg->hsm_socket_mode, gid, err, errlen);
        if (s->fd < 0)
            return CF_E_IO;
        if (!s->tls)
            snprintf(s->path, sizeof s->path, "%s", l->path);
        h->n_lst++;
        if (!arm(h, s->fd, s, EPOLLIN, EPOLL_CTL_ADD)) {
            snprintf(err, errlen, "[hsm] cannot watch a listener: %s", strerror(errno));
            return CF_E_IO;
        }
    }
    return CF_OK;
}

/* The workers and the housekeeper, with SIGPIPE blocked in them (they inherit this thread's mask):
 * a TLS write to a peer that went away must not kill the daemon, and a blocked SIGPIPE costs no
 * system call per write. */
static cf_err start_threads(cofferd_hsm *h, char *err, size_t errlen)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    cf_err rv = CF_OK;
    for (; h->n_started < h->n_workers; h->n_started++)
        if (pthread_create(&h->workers[h->n_started], NULL, worker_main, h) != 0) {
            rv = CF_E_NOMEM;
            break;
        }
    if (rv == CF_OK) {
        if (pthread_create(&h->housekeeper, NULL, housekeeper_main, h) == 0)
            h->housekeeper_started = true;
        else
            rv = CF_E_NOMEM;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != CF_OK)
        snprintf(err, errlen, "[hsm] cannot start the service's threads");
    return rv;
}

static unsigned worker_count(const cf_config *cfg)
{
    if (cfg->hsm_workers)
        return cfg->hsm_workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static cofferd_hsm *hsm_new(const cf_config *cfg)
{
    cofferd_hsm *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->wake_tag = TAG_WAKE;
    h->wake_fd = h->ep = -1;
    h->max_conns = cfg->hsm_max_connections ? cfg->hsm_max_connections : 1;
    h->max_handshakes = cfg->hsm_max_handshakes ? cfg->hsm_max_handshakes : 1;
    h->idle_ms = (int64_t)cfg->hsm_idle_timeout * 1000;
    hsrv_set_lease_ms(cfg->hsm_lease_ms);
    h->n_workers = worker_count(cfg);
    hsrv_registry_init(&h->reg, cfg->hsm_max_sessions);
    hsm_set_session_object_limit(cfg->hsm_max_session_objects);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->tick, &ca);
    pthread_condattr_destroy(&ca);
    h->workers = calloc(h->n_workers, sizeof *h->workers);
    if (!h->workers) {
        cofferd_hsm_stop(h);
        return NULL;
    }
    return h;
}

cf_err cofferd_hsm_start_config(const cf_config *cfg, cofferd_hsm **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->n_hsm_listen == 0) {
        snprintf(err, errlen, "[hsm] listen: nothing to serve");
        return CF_E_CONFIG;
    }
    cofferd_hsm *h = hsm_new(cfg);
    if (!h) {
        snprintf(err, errlen, "[hsm] out of memory");
        return CF_E_NOMEM;
    }
    size_t fds = (size_t)h->max_conns + HSRV_FD_SPARE;
    for (size_t i = 0; i < cfg->n_hsm_listen; i++)
        if (cfg->hsm_listen[i].kind == CF_LISTEN_TLS) {
            fds += h->max_handshakes;   /* handshakes do not count against max_connections */
            break;
        }
    hsrv_raise_nofile(fds);
    cf_err rv = CF_E_IO;
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event wake = { .events = EPOLLIN, .data.ptr = &h->wake_tag }; /* level-triggered: for all */
    if (h->ep < 0 || h->wake_fd < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->wake_fd, &wake) != 0) {
        snprintf(err, errlen, "[hsm] cannot set up the event loop: %s", strerror(errno));
        goto fail;
    }
    if ((rv = open_listeners(h, cfg, err, errlen)) != CF_OK || (rv = start_threads(h, err, errlen)) != CF_OK)
        goto fail;
    *out = h;
    return CF_OK;
fail:
    cofferd_hsm_stop(h);
    return rv;
}

unsigned cofferd_hsm_workers(const cofferd_hsm *h)
{
    return h ? h->n_workers : 0;
}

void cofferd_hsm_stop(cofferd_hsm *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->tick);
    pthread_mutex_unlock(&h->mu);
    if (h->housekeeper_started)
        pthread_join(h->housekeeper, NULL);
    if (h->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t k = write(h->wake_fd, &one, sizeof one);
        (void)k;
    }
    for (unsigned i = 0; i < h->n_started; i++)
        pthread_join(h->workers[i], NULL);
    while (h->conns)   /* no worker left: each application ends with its last connection */
        conn_close(h, h->conns);
    for (size_t i = 0; i < h->n_lst; i++) {
        close(h->lst[i].fd);
        if (h->lst[i].path[0])
            unlink(h->lst[i].path);
    }
    hsrv_registry_destroy(&h->reg);
    if (h->ep >= 0)
        close(h->ep);
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    cf_tls_ctx_free(h->tls);
    pthread_cond_destroy(&h->tick);
    pthread_mutex_destroy(&h->mu);
    free(h->workers);
    free(h);
}
