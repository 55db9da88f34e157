/* pool.c: the remote backend's connections to cofferd (client.h, "Connections"): the pool, the
 * HELLO handshake with the application token, and one exchange (request out, response in).
 * client.c builds the calls and copies their outputs; everything about sockets is here.
 *
 * Locking. g_mu guards the pool's bookkeeping only (the idle stack, the counts, the token, the
 * generation, the lost flag); it is never held across a send, a receive or a handshake, so the
 * threads of an application wait behind each other only when the pool is at its cap. A connection
 * taken off the idle stack belongs to one thread until it is put back.
 *
 * Generations. g_gen changes whenever the connections of the pool stop being interchangeable: the
 * application token changed (the server's application is not the one our sessions live in), or a
 * connection failed (the "lost" rule). Each connection remembers the generation it was opened in;
 * a connection of an older one is closed when its thread puts it back, and a connection that was
 * being opened while the generation changed is closed and opened again.
 *
 * Hot path (a call on a session, over a Unix connection used in the last FRESH_MS): lock, pop,
 * unlock; one send; poll (wait for the answer, see wait_readable); usually one recv into the
 * connection's buffer; lock, push, unlock. No allocation for frames up to CONN_BUF. Over TLS: one
 * write and usually one read (read-ahead), no poll.
 *
 * Secrets. The token is a bearer secret: it lives in g_token and in the HELLO being sent, both
 * wiped after use, and is never printed. Request bytes (PINs, data to sign) are wiped from the
 * send buffer as soon as they are sent, response bytes (plaintext, attribute values) when the
 * caller frees the answer. */
#include "rpc/client.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "base/secmem.h"
#include "crypto/crypto.h"
#include "rpc/found.h"
#include "rpc/lease.h"
#include "rpc/slots.h"

/* Connections per process. Beyond it a thread waits for one to be put back: each connection costs
 * cofferd a descriptor and buffers, and 64 calls of one application in flight at once is more than
 * the cores of any machine this serves can run. */
#define POOL_MAX 64
/* Each connection's send and receive buffer: a request or response up to this size takes no
 * allocation, and a response usually arrives in one recv. Larger frames use a heap buffer. */
#define CONN_BUF 16384
/* Connections opened and then thrown away because the application changed under them, before a
 * call gives up (each such change is a server restart or a race with another thread's loss). */
#define MAX_STALE_OPENS 4
/* A connection back on the idle stack for less than this is not checked before a call on a
 * session: cofferd's idle timeout is a whole number of seconds (at least 1), so only a server
 * that died can have closed it, and a call on a session of a dead server fails anyway
 * (DEVICE_REMOVED). Saves a poll per call on the hot path (C_SignInit, C_Sign). Calls that name a
 * slot, which may reconnect silently, always check. */
#define FRESH_MS 500
/* Before a thread sleeps for an answer it yields the CPU SPIN_YIELDS times, looking for the
 * answer in between, and when it is the process's only call in flight, for SPIN_US microseconds.
 * An answer read without sleeping saves the server the wake-up of the client (on a virtual
 * machine an inter-processor interrupt, the costliest part of a round trip) and the client two
 * context switches: a single-threaded signer gets about twice the P-256 signatures per second.
 * When other threads are runnable each yield lets them run; when none is, the thread spends
 * those microseconds of CPU instead of sleeping through them, then sleeps as before (an RSA
 * signature takes longer). Only for a lone caller (lone_caller): with several callers, a thread
 * spinning on a core keeps the scheduler from moving a runnable server worker there (2 and 8
 * threads lost 5-10%). */
#define SPIN_YIELDS 5
#define SPIN_US 50
/* A call is a lone caller's when no other thread started one in the last LONE_US microseconds.
 * Not "the pool has one connection": a process that was once busy keeps its idle connections,
 * and its later lone caller would never spin (a one-thread find + sign ran at half speed after
 * an 8-thread phase). Not "one call in flight": with two callers that is often true for an
 * instant, and their spinning cost 0-3%. */
#define LONE_US 10000
/* A server that refuses another connection (cofferd at max_connections) while this process has
 * some open: calls wait for those, and the pool tries to grow again after SOFT_CAP_MS. */
#define SOFT_CAP_MS 1000

struct rpc_conn {
    int fd;                        /* -1 until connected */
    cf_tls *tls;                   /* NULL: a Unix socket */
    unsigned gen;                  /* g_gen when it joined the application */
    uint32_t next_id;              /* request ids: unique per connection, never 0 */
    bool idle;                     /* on the idle stack (under g_mu) */
    bool spin;                     /* the answer being waited for is a lone caller's (SPIN_US) */
    int64_t put_ms;                /* when it went on the idle stack (monotonic) */
    rpc_conn *prev, *next;         /* g_all (under g_mu) */
    size_t have;                   /* bytes received into in[] */
    size_t used;                   /* of which the current frame's (have > used: unsolicited bytes) */
    uint8_t *big;                  /* the current frame when larger than in[] */
    size_t big_len;
    uint8_t out[CONN_BUF];
    uint8_t in[CONN_BUF];
};

/* What a thread needs to open a connection, copied under g_mu: the generation and the token to
 * join with. Wiped after use. */
typedef struct {
    unsigned gen;
    bool has_token;
    uint8_t token[RPC_APP_TOKEN_LEN];
} join_ticket;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;   /* a connection or a slot came free */
static rpc_conn *g_idle[POOL_MAX];   /* the idle stack: the most recently used on top */
static size_t g_n_idle;
static size_t g_n_open;              /* open, being opened, busy or idle (under g_mu) */
static rpc_conn *g_all;              /* every connection of g_n_open (fork and finalize close them) */
static unsigned g_gen;
static bool g_have_token;            /* the server speaks tokens and named our application */
static uint8_t g_token[RPC_APP_TOKEN_LEN];
static bool g_lost;                  /* a connection failed: session calls fail until a slot call reconnects */
static atomic_uint g_server_minor;   /* the server's protocol minor version (leases: 2 sign, 3 verify) */
static unsigned g_timeout_s;         /* [client] timeout (0: none); set before the first call */
static size_t g_soft_cap;            /* 0, or the pool's cap until g_soft_until_ms (SOFT_CAP_MS) */
static int64_t g_soft_until_ms;
static _Atomic uintptr_t g_last_caller;   /* the thread (pthread_self) that started the last call */
static _Atomic int64_t g_shared_until;    /* monotonic µs: until then, calls are not a lone caller's */

/* The server, set at C_Initialize (before any call, which sees it through p11_live's barrier):
 * the socket path or "tls:HOST:PORT" (for messages), and for TLS the host, port and PEM paths. */
static char g_path[300];
static bool g_tls_on;
static char g_tls_host[256], g_tls_port[8];
static char g_tls_cert[4096], g_tls_key[4096], g_tls_ca[4096];
/* The TLS context, made at the first TLS connection (it reads the PEM files: not under g_mu). */
static pthread_mutex_t g_ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static cf_tls_ctx *g_tls_ctx;

/* ---- messages ------------------------------------------------------------------------------- */
static pthread_mutex_t g_say_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_last_msg[512];         /* under g_say_mu: the last sentence printed, not repeated */

/* One sentence on stderr for the person running the application (C_* cannot carry it), not
 * repeated when an application retries in a loop. */
static void say_line(const char *line)
{
    pthread_mutex_lock(&g_say_mu);
    if (strcmp(line, g_last_msg) != 0) {
        snprintf(g_last_msg, sizeof g_last_msg, "%s", line);
        fprintf(stderr, "coffer: %s\n", line);
    }
    pthread_mutex_unlock(&g_say_mu);
}
#define SAY(...) \
    do { \
        char say_[sizeof g_last_msg]; \
        snprintf(say_, sizeof say_, __VA_ARGS__); \
        say_line(say_); \
    } while (0)

/* After a connection succeeds, the next failure is news again. */
static void say_reset(void)
{
    pthread_mutex_lock(&g_say_mu);
    g_last_msg[0] = '\0';
    pthread_mutex_unlock(&g_say_mu);
}

/* ---- configuration and lifetime ------------------------------------------------------------- */
void rpc_client_set_timeout(unsigned seconds)
{
    pthread_mutex_lock(&g_mu);
    g_timeout_s = seconds;
    pthread_mutex_unlock(&g_mu);
}

/* [client] timeout on each blocking read and write of the socket (SO_RCVTIMEO / SO_SNDTIMEO): a
 * frame that stops halfway, or a TLS handshake that never ends, fails like a missing answer. Set
 * before connect(), which Linux bounds by SO_SNDTIMEO too: a TCP server behind a black-holed
 * route, or a Unix listener whose backlog is full, would otherwise hold the caller (and the
 * threads waiting for the pool) for minutes or for ever. */
static void set_io_timeout(int fd)
{
    struct timeval tv = { .tv_sec = (time_t)g_timeout_s, .tv_usec = 0 };
    if (g_timeout_s) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
}

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

/* Closes and frees a connection that is off every list. No close_notify (cf_tls_free): the
 * server sees the end of the stream, which ends that connection all the same. */
static void conn_free(rpc_conn *c)
{
    if (!c)
        return;
    cf_tls_free(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    if (c->big)
        cf_free_wiped(c->big, c->big_len);
    cf_wipe(c->in, c->have < sizeof c->in ? c->have : sizeof c->in);
    free(c);
}

/* Under g_mu: takes c out of the pool's accounts (it is closed by the caller, after unlocking). */
static void unlink_locked(rpc_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g_all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    g_n_open--;
    pthread_cond_signal(&g_cv);   /* a slot came free */
}

/* The client-only state of the application's sessions (pending inits, finds answered at init,
 * the sessions' slots) goes when the application does: a new one on the server, C_Finalize. Not
 * when a connection fails: the application may live on (another thread's busy connection keeps
 * it), and the rejoin with the same token finds its sessions and operations still there. */
static void forget_application(void)
{
    rpc_lease_forget_all();
    rpc_found_forget_all();
    rpc_slots_forget_all();
}

/* Under g_mu: a new generation. The idle connections belong to the old one: they leave the pool
 * and are returned chained by ->next for conn_free_chain after unlocking; busy ones are closed
 * when put back. Threads waiting for a connection look again. */
static rpc_conn *new_generation_locked(void)
{
    g_gen++;
    rpc_conn *chain = NULL;
    while (g_n_idle > 0) {
        rpc_conn *c = g_idle[--g_n_idle];
        unlink_locked(c);
        c->next = chain;
        chain = c;
    }
    pthread_cond_broadcast(&g_cv);
    return chain;
}

static void conn_free_chain(rpc_conn *chain)
{
    while (chain) {
        rpc_conn *next = chain->next;
        conn_free(chain);
        chain = next;
    }
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
    g_lost = false;
    g_soft_cap = 0;
    pthread_mutex_unlock(&g_mu);
    say_reset();
    return rv;
}

/* The server ends the application (its sessions, its login) when its last connection closes.
 * A connection still busy in another thread (C_Finalize during a call is the application's
 * error, PKCS#11 2.40 section 5.4) is closed when that call puts it back. */
cf_err rpc_client_finalize(void)
{
    pthread_mutex_lock(&g_mu);
    rpc_conn *chain = new_generation_locked();
    forget_application();
    cf_wipe(g_token, sizeof g_token);
    g_have_token = false;
    g_lost = false;
    g_soft_cap = 0;
    pthread_mutex_unlock(&g_mu);
    conn_free_chain(chain);
    pthread_mutex_lock(&g_ctx_mu);
    cf_tls_ctx_free(g_tls_ctx);
    g_tls_ctx = NULL;
    pthread_mutex_unlock(&g_ctx_mu);
    return CF_OK;
}

/* A child of fork(): the connections are the parent's conversations, and the token names the
 * parent's application. The child closes its copies of the descriptors (the parent's stay open;
 * no close_notify, which would end the parent's TLS sessions) and forgets the token. Only this
 * thread exists: the locks are made fresh (a parent thread may have held one at the fork). The TLS
 * state of a connection that was busy in a parent thread, and the TLS context, may be in the
 * middle of a change and are left allocated rather than freed. */
void rpc_client_forget_after_fork(void)
{
    static const pthread_mutex_t fresh_mu = PTHREAD_MUTEX_INITIALIZER;
    static const pthread_cond_t fresh_cv = PTHREAD_COND_INITIALIZER;
    memcpy(&g_mu, &fresh_mu, sizeof g_mu);
    memcpy(&g_ctx_mu, &fresh_mu, sizeof g_ctx_mu);
    memcpy(&g_say_mu, &fresh_mu, sizeof g_say_mu);
    memcpy(&g_cv, &fresh_cv, sizeof g_cv);
    while (g_all) {
        rpc_conn *c = g_all;
        g_all = c->next;
        if (!c->idle)
            c->tls = NULL;
        conn_free(c);
    }
    g_n_idle = 0;
    g_n_open = 0;
    g_gen++;
    cf_wipe(g_token, sizeof g_token);
    g_have_token = false;
    g_lost = false;
    g_soft_cap = 0;
    g_tls_ctx = NULL;
    rpc_lease_after_fork();
    rpc_found_after_fork();
    rpc_slots_after_fork();
}

/* ---- transport ------------------------------------------------------------------------------ */
static long conn_send(rpc_conn *c, const uint8_t *p, size_t n)
{
    return c->tls ? cf_tls_write(c->tls, p, n) : (long)send(c->fd, p, n, MSG_NOSIGNAL);
}

static long conn_recv(rpc_conn *c, uint8_t *p, size_t n)
{
    return c->tls ? cf_tls_read(c->tls, p, n) : (long)recv(c->fd, p, n, 0);
}

/* One send for the whole frame (a Unix socket or TLS record takes it at once); loops only when
 * the kernel takes less. */
static bool write_all(rpc_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        long k = conn_send(c, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* At least want bytes into p (up to cap). false: end of stream or error. */
static bool read_at_least(rpc_conn *c, uint8_t *p, size_t cap, size_t want, size_t *have)
{
    while (*have < want) {
        long k = conn_recv(c, p + *have, cap - *have);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        *have += (size_t)k;
    }
    return true;
}

/* Monotonic microseconds (a vDSO read, no system call). */
static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Whether the call the thread starts now is a lone caller's (LONE_US). Two relaxed atomics and
 * a vDSO clock read per call; the store is skipped while the same thread keeps calling. */
static bool lone_caller(void)
{
    /* pthread_self, not the address of a thread-local: a dlclose'd module's thread-local blocks
     * crash LeakSanitizer's scan at exit (remote_pool_test under ASan) */
    uintptr_t me = (uintptr_t)pthread_self();
    int64_t now = mono_us();
    uintptr_t last = atomic_load_explicit(&g_last_caller, memory_order_relaxed);
    if (last != me) {
        atomic_store_explicit(&g_last_caller, me, memory_order_relaxed);
        if (last != 0) {
            atomic_store_explicit(&g_shared_until, now + LONE_US, memory_order_relaxed);
            return false;
        }
    }
    return now >= atomic_load_explicit(&g_shared_until, memory_order_relaxed);
}

/* Sleeps until the server's answer (or the end of the stream) can be read, after the spin of
 * SPIN_YIELDS and SPIN_US. On a Unix socket the poll also saves a context switch per call: a thread asleep in
 * recv() is woken when the server reads the request too (Linux's unix_write_space wakes every
 * sleeper of the socket to say there is room to write), and goes back to sleep; poll() waits for
 * POLLIN only. Over TLS, bytes OpenSSL already holds are read without it (cf_tls_pending). */
static bool wait_readable(const rpc_conn *c)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    int n;
    int64_t end = 0, spin_us = c->spin ? SPIN_US : 0;
    for (int i = 0;; i++) {
        if (poll(&p, 1, 0) != 0)
            return true;   /* readable, or an error the read reports */
        if (i >= SPIN_YIELDS) {
            int64_t now = mono_us();
            if (end == 0)
                end = now + spin_us;
            else if (now >= end)
                break;
        }
        sched_yield();
    }
    int wait_ms = g_timeout_s ? (int)g_timeout_s * 1000 : -1;
    do
        n = poll(&p, 1, wait_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        SAY("no answer from the remote HSM at %s within %u s ([client] timeout): connection closed", g_path,
            g_timeout_s);
    return n > 0;
}

/* Wipes the last frame received (plaintext, attribute values) and makes room for the next. */
static void conn_clear_in(rpc_conn *c)
{
    cf_wipe(c->in, c->have);
    if (c->big)
        cf_free_wiped(c->big, c->big_len);
    c->big = NULL;
    c->big_len = 0;
    c->have = c->used = 0;
}

/* Reads one frame; f views it (in c's buffer, until conn_clear_in). A frame that fits in[] is
 * read with as few recvs as the kernel allows, usually one; a larger one continues, with an exact
 * length, in a heap buffer. DEVICE_REMOVED: the stream ended or failed; DEVICE_ERROR: a frame we
 * cannot parse (the boundary is lost); NOMEM. */
static cf_err conn_read_frame(rpc_conn *c, rpc_frame *f)
{
    conn_clear_in(c);
    if ((!c->tls || !cf_tls_pending(c->tls)) && !wait_readable(c))
        return CF_E_DEVICE_REMOVED;
    if (!read_at_least(c, c->in, sizeof c->in, 4, &c->have))
        return CF_E_DEVICE_REMOVED;
    size_t total;
    if (rpc_frame_size(c->in, c->have, &total) != CF_OK)
        return CF_E_DEVICE_ERROR;
    const uint8_t *frame = c->in;
    if (total <= sizeof c->in) {
        if (!read_at_least(c, c->in, sizeof c->in, total, &c->have))
            return CF_E_DEVICE_REMOVED;
    } else {
        c->big = malloc(total);
        if (!c->big)
            return CF_E_NOMEM;
        c->big_len = total;
        memcpy(c->big, c->in, c->have);   /* have <= sizeof in < total */
        size_t got = c->have;
        if (!read_at_least(c, c->big, total, total, &got))
            return CF_E_DEVICE_REMOVED;
        frame = c->big;
    }
    c->used = total;
    cf_reader r = cf_reader_init(frame, total);
    if (rpc_frame_parse(&r, f) != CF_OK || !cf_reader_done(&r))
        return CF_E_DEVICE_ERROR;
    return CF_OK;
}

/* Whether an idle connection is still there: a connection at rest has nothing to read, so
 * readable (a close, or an ERROR before a close) or hung up means the server ended it (an idle
 * timeout, a restart). One poll with a zero timeout. */
static bool conn_alive(const rpc_conn *c)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    int n;
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    return n == 0;
}

/* Monotonic milliseconds, the coarse clock (a vDSO read, no system call). */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- opening a connection ------------------------------------------------------------------- */
static cf_err tls_context(cf_tls_ctx **out)
{
    char err[512];
    cf_err rv = CF_OK;
    pthread_mutex_lock(&g_ctx_mu);
    if (!g_tls_ctx && cf_tls_client_ctx_new(g_tls_cert, g_tls_key, g_tls_ca, &g_tls_ctx, err, sizeof err) != CF_OK) {
        SAY("remote HSM at %.100s: [client] TLS settings: %.300s", g_path, err);
        rv = CF_E_DEVICE_ERROR;
    }
    *out = g_tls_ctx;
    pthread_mutex_unlock(&g_ctx_mu);
    return rv;
}

/* The sentence for a connect() that failed with errno e. */
static void say_unreachable(int e)
{
    if (e == EAGAIN || e == EINPROGRESS || e == ETIMEDOUT)
        SAY("the remote HSM at %.108s did not take the connection within %u s ([client] timeout)", g_path,
            g_timeout_s);
    else
        SAY("cannot reach the remote HSM at %.108s: %.200s", g_path, strerror(e));
}

/* A TCP connection to g_tls_host:g_tls_port with the TLS handshake on it (the server's
 * certificate checked against [client] ca and the host name). Each connection is its own TLS
 * session (cofferd issues no session tickets, so there is nothing to resume). */
static cf_err connect_tls(rpc_conn *c)
{
    cf_tls_ctx *ctx;
    CF_TRY(tls_context(&ctx));
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int g = getaddrinfo(g_tls_host, g_tls_port, &hints, &ai);
    if (g != 0) {
        SAY("cannot resolve the remote HSM host %.100s: %.200s", g_tls_host, gai_strerror(g));
        return CF_E_DEVICE_REMOVED;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0)
            set_io_timeout(fd);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        say_unreachable(e ? e : EHOSTUNREACH);
        return CF_E_DEVICE_REMOVED;
    }
    c->fd = fd;
    int one = 1;   /* a request is one write: do not let Nagle hold it for the previous one's ACK */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char err[512];
    if (cf_tls_connect(ctx, fd, g_tls_host, &c->tls, err, sizeof err) != CF_OK) {
        SAY("remote HSM at %.100s: %.300s", g_path, err);
        return CF_E_DEVICE_ERROR;
    }
    return CF_OK;
}

static cf_err connect_unix(rpc_conn *c)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%.107s", g_path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return CF_E_DEVICE_ERROR;
    set_io_timeout(c->fd);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        say_unreachable(errno);
        return CF_E_DEVICE_REMOVED;
    }
    return CF_OK;
}

/* The sentence for a TLS server that ended the session during our first write or read: in TLS
 * 1.3 a refused client certificate shows up there, not in the handshake. */
static void say_tls_refused(const rpc_conn *c)
{
    const char *why = cf_tls_last_error(c->tls);
    SAY("the remote HSM at %s refused the connection: %s (is [client] cert signed by the server's client_ca?)",
        g_path, why ? why : "it closed the TLS session");
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

/* The server's answer to our HELLO, in *server. DEVICE_ERROR when it refuses us (version, ABI)
 * or does not speak the protocol. */
static cf_err check_hello_ok(const rpc_frame *f, rpc_hello *server)
{
    char msg[256];
    if (f->type == RPC_ERROR) {
        (void)report_error_frame(f);
        return CF_E_DEVICE_ERROR;
    }
    if (f->type != RPC_HELLO_OK || rpc_decode_hello(f, server) != CF_OK) {
        SAY("the remote HSM at %s does not speak the coffer protocol", g_path);
        return CF_E_DEVICE_ERROR;
    }
    if (rpc_hello_ok_accept(server, msg, sizeof msg) != CF_OK) {
        SAY("remote HSM at %.108s: %.300s", g_path, msg);
        return CF_E_DEVICE_ERROR;
    }
    return CF_OK;
}

/* The stream ended before HELLO_OK. A TLS alert from the server (no client certificate, one from
 * another CA) is a refusal: DEVICE_ERROR, it will not go away by itself. A bare end of stream or
 * reset is a server going down (cofferd stopping or restarting between our connect and its
 * answer): DEVICE_REMOVED, like a lost connection, so that the application retries at its next
 * C_OpenSession instead of giving up on a device error. */
static cf_err handshake_cut(const rpc_conn *c)
{
    if (c->tls && cf_tls_last_error(c->tls)) {
        say_tls_refused(c);
        return CF_E_DEVICE_ERROR;
    }
    SAY("the remote HSM at %s closed the connection during the handshake (restarting?)", g_path);
    return CF_E_DEVICE_REMOVED;
}

/* HELLO (with the ticket's token, if any, to join the application) and HELLO_OK. */
static cf_err handshake(rpc_conn *c, const join_ticket *t, rpc_hello *server)
{
    rpc_hello self = rpc_hello_self();
    if (t->has_token) {
        self.has_token = true;
        memcpy(self.token, t->token, sizeof self.token);
    }
    cf_writer w = cf_writer_fixed(c->out, sizeof c->out);
    cf_err rv = rpc_encode_hello(&w, RPC_HELLO, &self);
    bool sent = rv == CF_OK && write_all(c, c->out, w.len);
    cf_wipe(&self, sizeof self);
    cf_wipe(c->out, w.len < sizeof c->out ? w.len : sizeof c->out);
    if (rv != CF_OK)
        return CF_E_INTERNAL;
    rpc_frame f;
    if (!sent)
        rv = CF_E_DEVICE_REMOVED;
    else if ((rv = conn_read_frame(c, &f)) == CF_OK)
        rv = check_hello_ok(&f, server);
    if (rv == CF_E_DEVICE_REMOVED)
        rv = handshake_cut(c);
    conn_clear_in(c);
    return rv;
}

/* Connects c and shakes hands. DEVICE_REMOVED when nothing listens, DEVICE_ERROR when the server
 * refuses us or does not speak the protocol (a sentence on stderr says which). */
static cf_err conn_open(rpc_conn *c, const join_ticket *t, rpc_hello *server)
{
    CF_TRY(g_tls_on ? connect_tls(c) : connect_unix(c));
    return handshake(c, t, server);
}

/* ---- the pool ------------------------------------------------------------------------------- */
/* Under g_mu. The pool's cap: a server that names our application in HELLO_OK can be spoken to
 * over many connections; until one has (the first connection), or if it does not (protocol minor
 * 0), a second connection would be a second application, with its own sessions and login. */
static size_t cap_locked(void)
{
    if (!g_have_token)
        return 1;
    return g_soft_cap && mono_ms() < g_soft_until_ms ? g_soft_cap : POOL_MAX;
}

/* A new connection failed while the pool has others of a live application: the server is at its
 * max_connections (or refused at the door). The pool stops growing for SOFT_CAP_MS and the call
 * waits for one of the others (true) instead of failing; a server that died fails those too, and
 * their loss wakes it. */
static bool pool_shrink(void)
{
    pthread_mutex_lock(&g_mu);
    bool others = g_have_token && !g_lost && g_n_open > 0;
    if (others) {
        g_soft_cap = g_n_open;
        g_soft_until_ms = mono_ms() + SOFT_CAP_MS;
    }
    pthread_mutex_unlock(&g_mu);
    return others;
}

/* Under g_mu: waits for a connection to come back, or, under a soft cap, at most until it ends
 * (the busy connections may all be in long calls, and the server may take a new one by then). */
static void wait_for_room_locked(void)
{
    int64_t left = g_soft_cap ? g_soft_until_ms - mono_ms() : 0;
    if (left <= 0) {
        pthread_cond_wait(&g_cv, &g_mu);
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);   /* the condition variable's clock */
    until.tv_sec += left / 1000;
    until.tv_nsec += (left % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(&g_cv, &g_mu, &until);
}

/* Under g_mu: an idle connection (*c), or a reserved slot for a new one (*c a fresh, unconnected
 * connection in the pool's accounts, *t what to join with). Waits while the pool is at its cap.
 * DEVICE_REMOVED: the connections were lost and this call may not reconnect. */
static cf_err checkout_locked(bool may_reconnect, rpc_conn **c, join_ticket *t)
{
    for (;;) {
        if (g_lost && !may_reconnect)
            return CF_E_DEVICE_REMOVED;
        if (g_n_idle > 0) {
            *c = g_idle[--g_n_idle];
            (*c)->idle = false;
            return CF_OK;
        }
        if (g_n_open < cap_locked())
            break;
        wait_for_room_locked();
    }
    rpc_conn *n = malloc(sizeof *n);
    if (!n)
        return CF_E_NOMEM;
    n->fd = -1;
    n->tls = NULL;
    n->gen = g_gen;
    n->next_id = 1;
    n->idle = false;
    n->spin = false;
    n->have = n->used = 0;
    n->big = NULL;
    n->big_len = 0;
    n->prev = NULL;
    n->next = g_all;   /* in g_all from now on: a fork child closes its descriptor too */
    if (g_all)
        g_all->prev = n;
    g_all = n;
    g_n_open++;
    t->gen = g_gen;
    t->has_token = g_have_token;
    memcpy(t->token, g_token, sizeof t->token);
    *c = n;
    return CF_OK;
}

/* Takes c out of the pool and closes it: not the server's doing (an idle connection the server
 * closed, a connection that failed to open, or one that was opened for a stale generation). */
static void pool_discard(rpc_conn *c)
{
    pthread_mutex_lock(&g_mu);
    unlink_locked(c);
    pthread_mutex_unlock(&g_mu);
    conn_free(c);
}

/* Under g_mu: a freshly opened connection joins the pool, given the server's HELLO_OK. The
 * token rules of docs/protocol.md, "Handshake":
 * - the same token back: joined;
 * - none sent (the first connection): the server named our application;
 * - another token back: the application we had is gone on the server (its last connection
 *   closed, or cofferd restarted), and with it its sessions and login; the server answers
 *   SESSION_HANDLE_INVALID for them from now on. We adopt the new application;
 * - none back: a server without tokens (protocol minor 0): a pool of one connection.
 * Each change of application starts a new generation (the other connections belong to the old
 * one). CF_E_DEVICE_REMOVED: the generation changed while c was being opened (another thread
 * adopted a new application, or lost the connections): c left the pool, the caller closes it and
 * opens another. *gone: the application we had was lost (the caller says so). *chain: the idle
 * connections of the old generation, for conn_free_chain. */
static cf_err adopt_locked(rpc_conn *c, const join_ticket *t, const rpc_hello *server, bool *gone,
                           rpc_conn **chain)
{
    *gone = false;
    *chain = NULL;
    if (g_gen != t->gen) {
        unlink_locked(c);
        return CF_E_DEVICE_REMOVED;
    }
    bool same = server->has_token && t->has_token && cf_ct_equal(server->token, t->token, RPC_APP_TOKEN_LEN);
    if (!same)
        forget_application();   /* a new one (a server without tokens makes one per connection) */
    if (server->has_token && !same) {
        *gone = t->has_token;
        memcpy(g_token, server->token, sizeof g_token);
        g_have_token = true;
        *chain = new_generation_locked();   /* also wakes the threads waiting on a cap of 1 */
    } else if (!server->has_token && g_have_token) {
        cf_wipe(g_token, sizeof g_token);   /* the server no longer speaks tokens */
        g_have_token = false;
        *chain = new_generation_locked();
    }
    c->gen = g_gen;
    g_lost = false;
    atomic_store(&g_server_minor, server->major == RPC_VERSION_MAJOR ? server->minor : 0);
    return CF_OK;
}

bool rpc_client_speaks(unsigned minor)
{
    return atomic_load(&g_server_minor) >= minor;
}

bool rpc_client_leases(hsm_op_kind kind)
{
    return kind == HSM_OP_SIGN ? rpc_client_speaks(2) : kind == HSM_OP_VERIFY ? rpc_client_speaks(3) : false;
}

/* Opens a connection in the slot checkout_locked reserved for c; c is closed on failure.
 * *stale: it opened, but for a generation that ended meanwhile (open another). */
static cf_err pool_open(rpc_conn *c, const join_ticket *t, bool *stale)
{
    *stale = false;
    rpc_hello server;
    memset(&server, 0, sizeof server);
    cf_err rv = conn_open(c, t, &server);
    if (rv != CF_OK) {
        pool_discard(c);
        cf_wipe(&server, sizeof server);
        return rv;
    }
    bool gone;
    rpc_conn *chain;
    pthread_mutex_lock(&g_mu);
    rv = adopt_locked(c, t, &server, &gone, &chain);
    pthread_mutex_unlock(&g_mu);
    cf_wipe(&server, sizeof server);
    conn_free_chain(chain);
    if (rv != CF_OK) {
        conn_free(c);
        *stale = true;
        return rv;
    }
    say_reset();
    if (gone)
        SAY("the remote HSM at %s no longer knows this application (cofferd restarted, or all its "
            "connections closed): its sessions and login are gone", g_path);
    return CF_OK;
}

/* A connection for one call: the most recently used idle one that is still open, or a new one
 * while the pool is under its cap (else wait). may_reconnect: the call names a slot, not a
 * session, and may start over after the connections were lost. */
static cf_err pool_get(bool may_reconnect, rpc_conn **out)
{
    for (int stale_opens = 0;;) {
        rpc_conn *c = NULL;
        join_ticket t;
        pthread_mutex_lock(&g_mu);
        cf_err rv = checkout_locked(may_reconnect, &c, &t);
        pthread_mutex_unlock(&g_mu);
        if (rv != CF_OK)
            return rv;
        if (c->fd >= 0) {   /* from the idle stack */
            if ((!may_reconnect && mono_ms() - c->put_ms < FRESH_MS) || conn_alive(c)) {
                *out = c;
                return CF_OK;
            }
            pool_discard(c);   /* the server closed it while idle: not an error */
            continue;
        }
        bool stale;
        rv = pool_open(c, &t, &stale);
        cf_wipe(&t, sizeof t);
        if (rv == CF_OK) {
            *out = c;
            return CF_OK;
        }
        if (!stale && pool_shrink())
            continue;
        if (!stale)
            return rv;
        if (++stale_opens == MAX_STALE_OPENS) {
            SAY("the remote HSM at %s: the application changed %d times while connecting", g_path,
                MAX_STALE_OPENS);
            return CF_E_DEVICE_REMOVED;
        }
    }
}

/* Back on the idle stack after a call, its received frame wiped. A connection of an older
 * generation, or one holding bytes nobody asked for, is closed instead. */
static void pool_put(rpc_conn *c)
{
    bool unsolicited = c->have > c->used;
    conn_clear_in(c);
    pthread_mutex_lock(&g_mu);
    bool keep = !unsolicited && c->gen == g_gen && g_n_idle < POOL_MAX;
    if (keep) {
        c->idle = true;
        c->put_ms = mono_ms();
        g_idle[g_n_idle++] = c;
        pthread_cond_signal(&g_cv);
    } else {
        unlink_locked(c);
    }
    pthread_mutex_unlock(&g_mu);
    if (!keep)
        conn_free(c);
}

/* A call failed on c's transport or protocol: the "lost" rule (client.h). c and every idle
 * connection are closed; calls on sessions fail until a slot-level call reconnects, and so does a
 * C_SignInit under a lease (the deadlines go). Pending inits and local finds stay: whether the
 * application lives on is known at the rejoin (adopt_locked). */
static void pool_fail(rpc_conn *c)
{
    pthread_mutex_lock(&g_mu);
    unlink_locked(c);
    g_lost = true;
    rpc_lease_drop_deadlines();
    rpc_conn *chain = new_generation_locked();
    pthread_mutex_unlock(&g_mu);
    conn_free(c);
    conn_free_chain(chain);
}

/* ---- one exchange --------------------------------------------------------------------------- */
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

/* Encodes the request into c's send buffer (a larger one into a heap buffer), sends it in one
 * write and wipes it: PINs do not wait for the answer. An encoding error (a bad argument: ARGS,
 * MECHANISM_INVALID...) is returned before any I/O; DEVICE_REMOVED: the send failed. */
static cf_err send_request(rpc_conn *c, uint32_t id, const rpc_call *call)
{
    cf_writer w = cf_writer_fixed(c->out, sizeof c->out);
    cf_err rv = rpc_encode_request(&w, id, call);
    if (rv == CF_E_BUFFER_TOO_SMALL) {
        cf_wipe(c->out, sizeof c->out);   /* the part that fitted */
        w = cf_writer_heap();
        rv = rpc_encode_request(&w, id, call);
    }
    bool sent = rv == CF_OK && write_all(c, w.p, w.len);
    if (w.growable)
        cf_writer_free(&w);
    else
        cf_wipe(c->out, w.len < sizeof c->out ? w.len : sizeof c->out);
    if (rv != CF_OK)
        return rv;
    return sent ? CF_OK : CF_E_DEVICE_REMOVED;
}

/* Whether an ERROR frame may answer call fn with st: only a failure does. A status that has
 * outputs (OK, BUFFER_TOO_SMALL...) comes in a RESPONSE with them, and LEASED in a RESPONSE that
 * the caller waits on; an ERROR{OK} taken as is would make C_Login or C_Verify succeed. */
static bool error_status(uint32_t fn, cf_err st)
{
    return !rpc_status_has_outputs(fn, st) && st != CF_E_LEASED;
}

/* The frame f, received on c for request id, into a->reply. DEVICE_ERROR: the server broke the
 * protocol or gave up on the connection (c must not be reused). NOMEM: c is fine. */
static cf_err take_answer(const rpc_frame *f, const rpc_call *call, uint32_t id, rpc_answer *a)
{
    if (f->type == RPC_ERROR && (f->id == id || f->id == 0)) {
        cf_err st;
        const char *msg;
        size_t n;
        if (rpc_decode_error(f, &st, &msg, &n) != CF_OK)
            return CF_E_DEVICE_ERROR;
        if (f->id == 0 || st == CF_E_FORMAT) {   /* the server gave up on the connection */
            (void)report_error_frame(f);
            return CF_E_DEVICE_ERROR;
        }
        if (!error_status(call->fn, st)) {
            SAY("the remote HSM at %s answered with an ERROR frame that is not an error", g_path);
            return CF_E_DEVICE_ERROR;
        }
        a->reply.fn = call->fn;
        a->reply.status = st;   /* NOT_SUPPORTED for a function the server does not know */
        a->reply.has_outputs = false;
        return CF_OK;
    }
    if (f->type != RPC_RESPONSE || f->id != id) {
        SAY("the remote HSM at %s answered out of turn", g_path);
        return CF_E_DEVICE_ERROR;
    }
    cf_err rv = rpc_decode_response(f, &a->reply, &a->arena);
    if (rv == CF_OK && (a->reply.fn != call->fn ||
                        a->reply.has_outputs != rpc_status_has_outputs(call->fn, a->reply.status)))
        rv = CF_E_FORMAT;
    if (rv != CF_OK && rv != CF_E_NOMEM) {
        SAY("malformed response from the remote HSM at %s", g_path);
        rv = CF_E_DEVICE_ERROR;
    }
    return rv;
}

cf_err rpc_client_transact(const rpc_call *call, rpc_answer *a)
{
    memset(a, 0, sizeof *a);
    a->arena = (rpc_arena)RPC_ARENA_INIT;
    bool spin = lone_caller();
    rpc_conn *c;
    CF_TRY(pool_get(slot_level(call->fn), &c));
    uint32_t id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1;   /* 0 is the connection's */
    cf_err rv = send_request(c, id, call);
    if (rv != CF_OK) {
        if (rv == CF_E_DEVICE_REMOVED)
            pool_fail(c);
        else
            pool_put(c);   /* nothing was sent */
        return rv;
    }
    rpc_frame f;
    c->spin = spin;
    rv = conn_read_frame(c, &f);
    c->spin = false;
    if (rv == CF_OK)
        rv = take_answer(&f, call, id, a);
    if (rv == CF_OK) {
        a->conn = c;   /* the reply views c's buffer until rpc_answer_free */
        return CF_OK;
    }
    rpc_arena_free(&a->arena);
    if (rv == CF_E_NOMEM && c->used > 0)
        pool_put(c);       /* the frame was read whole: the connection is still in step */
    else if (rv == CF_E_NOMEM)
        pool_discard(c);   /* the rest of the frame is unread: the connection is out of step */
    else
        pool_fail(c);
    return rv;
}

void rpc_answer_free(rpc_answer *a)
{
    rpc_arena_free(&a->arena);
    if (a->conn)
        pool_put(a->conn);
    a->conn = NULL;
}
