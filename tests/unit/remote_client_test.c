/* remote_client_test.c: the remote backend's client (src/rpc/client.c, lease.c, found.c, pool.c;
 * docs/remote.md, "Client side") against a fake cofferd in this process: a Unix socket server that
 * speaks the wire protocol with the codec (src/rpc) and answers what each case scripts, so that
 * replies no real server sends, and orderings a real server makes only by chance, are exercised.
 *
 * - a reply that announces bytes (items, attribute values) for the caller's buffer and carries
 *   none, or an ERROR frame carrying a success status, is a DEVICE_ERROR, never OK;
 * - C_CloseAllSessions forgets the pending inits and local finds of that slot's sessions only,
 *   and only when it succeeded;
 * - a lease granted to a request sent before C_Logout finished is not honoured;
 * - a lost connection keeps the pending inits and local finds while the application lives on the
 *   server (same token at the rejoin), and forgets them when it is gone;
 * - [client] timeout bounds connect() too (a Unix listener whose backlog is full). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "rpc/client.h"
#include "rpc/rpc.h"

/* ---- the fake server ------------------------------------------------------------------------- */
typedef enum { AS_USUAL, REPLY, ERROR_FRAME } how;
/* A case's answer to a call: fills r (REPLY), or r->status for an ERROR frame, or leaves it to
 * answer_usual. */
typedef how (*answer_fn)(const rpc_call *c, rpc_reply *r);

static struct {
    char dir[64], path[128];
    int lfd;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t app;                  /* the live application's token (16 times this byte) */
    uint32_t seen[1024];          /* function codes received, in order */
    size_t n_seen;
    uint32_t drop_fn;             /* close the connection at the next request of this function */
    uint32_t hold_fn;             /* hold requests of this function until released */
    bool held, released;
    int conns;
    int max_conns;                /* 0, or refuse more connections (as cofferd at max_connections) */
    answer_fn answer;
    CK_SESSION_HANDLE next_session;
} fk = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static uint8_t sig8[8] = { 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a };
static CK_ULONG slot_one[1] = { 1 }, found_seven[1] = { 7 };

#define LEASE_MS 5000

/* What cofferd answers when all goes well (enough of it for these cases). */
static void answer_usual(const rpc_call *c, rpc_reply *r)
{
    r->status = CF_OK;
    switch (c->fn) {
    case RPC_FN_GET_SLOT_LIST:
        r->out[0].list.count = 1;
        r->out[0].list.v = c->arg[1].outbuf.present ? slot_one : NULL;
        break;
    case RPC_FN_OPEN_SESSION:
        r->out[0].ul = fk.next_session++;
        break;
    case RPC_FN_CLOSE_ALL_SESSIONS:
        if (c->arg[0].ul > 2)
            r->status = CF_E_SLOT_ID_INVALID;
        break;
    case RPC_FN_GET_SESSION_INFO:
        r->out[0].session_info.slotID = 1;
        break;
    case RPC_FN_OP_ONESHOT:
    case RPC_FN_OP_ONESHOT_LEASE:
    case RPC_FN_OP_REARM_ONESHOT: {
        const rpc_value *ob = &c->arg[c->fn == RPC_FN_OP_REARM_ONESHOT ? 5 : 3];
        r->out[0].data.len = sizeof sig8;
        if (ob->outbuf.present && ob->outbuf.cap < sizeof sig8)
            r->status = CF_E_BUFFER_TOO_SMALL;
        else if (ob->outbuf.present)
            r->out[0].data.p = sig8;
        r->out[1].ul = r->status == CF_OK && c->fn != RPC_FN_OP_ONESHOT ? LEASE_MS : 0;
        break;
    }
    case RPC_FN_VERIFY_LEASE:
    case RPC_FN_REARM_VERIFY:
        r->out[0].ul = LEASE_MS;
        break;
    case RPC_FN_FIND_OBJECTS_FETCH:   /* one object, the whole result: the server's find ended */
        r->out[0].list.count = 1;
        r->out[0].list.v = found_seven;
        r->out[1].ul = 0;
        break;
    case RPC_FN_FIND_OBJECTS:   /* the fake keeps no find: one that reaches it was ended */
        r->status = CF_E_OPERATION_NOT_INITIALIZED;
        break;
    default:
        break;
    }
}

static bool read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool send_writer(int fd, cf_writer *w)
{
    bool ok = cf_writer_status(w) == CF_OK && send(fd, w->p, w->len, MSG_NOSIGNAL) == (ssize_t)w->len;
    cf_writer_free(w);
    return ok;
}

static bool hello_ok(int fd)
{
    rpc_hello h = rpc_hello_self();
    h.has_token = true;
    pthread_mutex_lock(&fk.mu);
    memset(h.token, fk.app, sizeof h.token);
    pthread_mutex_unlock(&fk.mu);
    cf_writer w = cf_writer_heap();
    return rpc_encode_hello(&w, RPC_HELLO_OK, &h) == CF_OK && send_writer(fd, &w);
}

/* Records the call; false: drop the connection unanswered. Holds a call of hold_fn. */
static bool note_call(uint32_t fn)
{
    pthread_mutex_lock(&fk.mu);
    if (fk.n_seen < sizeof fk.seen / sizeof fk.seen[0])
        fk.seen[fk.n_seen++] = fn;
    bool drop = fn == fk.drop_fn;
    if (drop)
        fk.drop_fn = 0;
    if (fn == fk.hold_fn) {
        fk.held = true;
        pthread_cond_broadcast(&fk.cv);
        while (!fk.released)
            pthread_cond_wait(&fk.cv, &fk.mu);
    }
    pthread_mutex_unlock(&fk.mu);
    return !drop;
}

static bool answer(int fd, const rpc_frame *f)
{
    rpc_arena ar = RPC_ARENA_INIT;
    rpc_call c;
    memset(&c, 0, sizeof c);
    bool ok = rpc_decode_request(f, &c, &ar) == CF_OK && note_call(c.fn);
    if (ok) {
        rpc_reply r;
        memset(&r, 0, sizeof r);
        r.fn = c.fn;
        how h = fk.answer ? fk.answer(&c, &r) : AS_USUAL;
        if (h == AS_USUAL)
            answer_usual(&c, &r);
        cf_writer w = cf_writer_heap();
        if (h == ERROR_FRAME) {
            ok = rpc_encode_error(&w, f->id, r.status, NULL) == CF_OK && send_writer(fd, &w);
        } else {
            r.has_outputs = h == REPLY ? r.has_outputs : rpc_status_has_outputs(r.fn, r.status);
            ok = rpc_encode_response(&w, f->id, &r) == CF_OK && send_writer(fd, &w);
        }
    }
    rpc_arena_free(&ar);
    return ok;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static _Thread_local uint8_t buf[65536];
    for (;;) {
        size_t total;
        if (!read_full(fd, buf, 4) || rpc_frame_size(buf, 4, &total) != CF_OK || total > sizeof buf ||
            !read_full(fd, buf + 4, total - 4))
            break;
        cf_reader r = cf_reader_init(buf, total);
        rpc_frame f;
        if (rpc_frame_parse(&r, &f) != CF_OK)
            break;
        if (!(f.type == RPC_HELLO ? hello_ok(fd) : f.type == RPC_REQUEST && answer(fd, &f)))
            break;
    }
    close(fd);
    pthread_mutex_lock(&fk.mu);
    fk.conns--;
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(fk.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_mutex_lock(&fk.mu);
        bool refuse = fk.max_conns && fk.conns >= fk.max_conns;
        if (!refuse)
            fk.conns++;
        pthread_mutex_unlock(&fk.mu);
        if (refuse) {   /* what cofferd says past max_connections, then the close */
            cf_writer w = cf_writer_heap();
            if (rpc_encode_error(&w, 0, CF_E_SESSION_COUNT, "too many connections") == CF_OK)
                (void)send_writer(fd, &w);
            else
                cf_writer_free(&w);
            close(fd);
            continue;
        }
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd), 0);
        pthread_detach(t);
    }
}

static size_t count_of(uint32_t fn)
{
    size_t n = 0;
    pthread_mutex_lock(&fk.mu);
    for (size_t i = 0; i < fk.n_seen; i++)
        n += fk.seen[i] == fn;
    pthread_mutex_unlock(&fk.mu);
    return n;
}

static uint32_t last_fn(void)
{
    pthread_mutex_lock(&fk.mu);
    uint32_t fn = fk.n_seen ? fk.seen[fk.n_seen - 1] : 0;
    pthread_mutex_unlock(&fk.mu);
    return fn;
}

static size_t n_seen(void)
{
    pthread_mutex_lock(&fk.mu);
    size_t n = fk.n_seen;
    pthread_mutex_unlock(&fk.mu);
    return n;
}

static void set_drop(uint32_t fn)
{
    pthread_mutex_lock(&fk.mu);
    fk.drop_fn = fn;
    pthread_mutex_unlock(&fk.mu);
}

static void hold(uint32_t fn)
{
    pthread_mutex_lock(&fk.mu);
    fk.hold_fn = fn;
    fk.held = fk.released = false;
    pthread_mutex_unlock(&fk.mu);
}

static void wait_held(void)
{
    pthread_mutex_lock(&fk.mu);
    while (!fk.held)
        pthread_cond_wait(&fk.cv, &fk.mu);
    pthread_mutex_unlock(&fk.mu);
}

static void release(void)
{
    pthread_mutex_lock(&fk.mu);
    fk.released = true;
    fk.hold_fn = 0;
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
}

/* The fake listening, and the client pointed at it. */
static int setup(void **state)
{
    (void)state;
    snprintf(fk.dir, sizeof fk.dir, "/tmp/coffer-rcli-XXXXXX");
    if (!mkdtemp(fk.dir))
        return -1;
    snprintf(fk.path, sizeof fk.path, "%s/fake.sock", fk.dir);
    fk.app = 1;
    fk.n_seen = 0;
    fk.drop_fn = fk.hold_fn = 0;
    fk.answer = NULL;
    fk.max_conns = 0;
    fk.next_session = 100;
    fk.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", fk.path);
    if (fk.lfd < 0 || bind(fk.lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fk.lfd, 64) != 0)
        return -1;
    if (pthread_create(&fk.acceptor, NULL, accept_main, NULL) != 0)
        return -1;
    rpc_client_set_server(fk.path);
    rpc_client_set_timeout(0);
    char err[128];
    return rpc_client_initialize(err, sizeof err) == CF_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    (void)rpc_client_finalize();
    release();
    shutdown(fk.lfd, SHUT_RDWR);
    pthread_join(fk.acceptor, NULL);
    close(fk.lfd);
    pthread_mutex_lock(&fk.mu);   /* the client's connections end with C_Finalize */
    while (fk.conns > 0)
        pthread_cond_wait(&fk.cv, &fk.mu);
    pthread_mutex_unlock(&fk.mu);
    unlink(fk.path);
    rmdir(fk.dir);
    return 0;
}

/* ---- helpers for the cases ------------------------------------------------------------------- */
static const CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 };
#define KEY 9

static CK_SESSION_HANDLE open_on(CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s = 0;
    assert_int_equal(rpc_client_open_session(slot, CKF_SERIAL_SESSION, &s), CF_OK);
    return s;
}

static cf_err sign(CK_SESSION_HANDLE s)
{
    uint8_t dig[32] = { 0 }, out[64];
    CK_ULONG len = sizeof out;
    return rpc_client_op_oneshot(s, HSM_OP_SIGN, dig, sizeof dig, out, &len);
}

/* C_SignInit answered here: nothing reaches the server. */
static void init_is_local(CK_SESSION_HANDLE s)
{
    size_t before = n_seen();
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_OK);
    assert_int_equal(n_seen(), before);
}

/* A signature that leaves a lease, then a C_SignInit taken under it (pending on the client). */
static void pending_init(CK_SESSION_HANDLE s)
{
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_OK);
    assert_int_equal(sign(s), CF_OK);
    init_is_local(s);
}

/* A find answered at init (one object, the whole result). */
static void local_find(CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls } };
    assert_int_equal(rpc_client_find_objects_init(s, t, 1), CF_OK);
    assert_int_equal(last_fn(), RPC_FN_FIND_OBJECTS_FETCH);
}

/* The local find's result, without a round trip. */
static void find_is_local(CK_SESSION_HANDLE s)
{
    size_t before = n_seen();
    CK_OBJECT_HANDLE o[4];
    CK_ULONG n = 0;
    assert_int_equal(rpc_client_find_objects(s, o, 4, &n), CF_OK);
    assert_int_equal(n, 1);
    assert_int_equal(o[0], 7);
    assert_int_equal(rpc_client_find_objects_final(s), CF_OK);
    assert_int_equal(n_seen(), before);
}

/* ---- replies that announce what they do not carry -------------------------------------------- */
static CK_ULONG g_len;   /* the length the next crafted DATA / LIST / attribute announces */

static how bytes_missing(const rpc_call *c, rpc_reply *r)
{
    r->status = CF_OK;
    r->has_outputs = true;
    switch (c->fn) {
    case RPC_FN_OP_ONESHOT:
    case RPC_FN_OP_ONESHOT_LEASE:
        r->out[0].data.len = g_len;   /* and no bytes */
        return REPLY;
    case RPC_FN_GET_SLOT_LIST:
        r->out[0].list.count = g_len;   /* and no items */
        return REPLY;
    case RPC_FN_GET_ATTRIBUTE_VALUE: {
        static CK_ATTRIBUTE a;
        a.type = CKA_LABEL;
        a.pValue = NULL;
        a.ulValueLen = g_len;
        r->out[0].tmpl.attrs = &a;
        r->out[0].tmpl.count = 1;
        if (g_len == CK_UNAVAILABLE_INFORMATION)
            r->status = CF_E_ATTRIBUTE_SENSITIVE;
        return REPLY;
    }
    default:
        return AS_USUAL;
    }
}

static void replies_without_bytes(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_on(1);
    fk.answer = bytes_missing;
    uint8_t in[16] = { 0 }, out[32];
    memset(out, 0xee, sizeof out);

    /* C_Decrypt: 16 bytes announced for a 32-byte buffer, none sent; 64 announced */
    const CK_ULONG lens[] = { 16, 64 };
    for (size_t i = 0; i < 2; i++) {
        g_len = lens[i];
        CK_ULONG len = sizeof out;
        assert_int_equal(rpc_client_op_oneshot(s, HSM_OP_DECRYPT, in, sizeof in, out, &len), CF_E_DEVICE_ERROR);
        assert_int_equal(len, sizeof out);   /* nothing handed over */
    }
    /* the length query carries no bytes: fine */
    g_len = 16;
    CK_ULONG len = 0;
    assert_int_equal(rpc_client_op_oneshot(s, HSM_OP_DECRYPT, in, sizeof in, NULL, &len), CF_OK);
    assert_int_equal(len, 16);
    /* C_Sign with a leasing server */
    len = sizeof out;
    assert_int_equal(rpc_client_op_oneshot(s, HSM_OP_SIGN, in, sizeof in, out, &len), CF_E_DEVICE_ERROR);

    /* C_GetSlotList: two slots announced for a buffer of four, no items */
    g_len = 2;
    CK_SLOT_ID slots[4] = { 0 };
    CK_ULONG n = 4;
    assert_int_equal(rpc_client_get_slot_list(true, slots, &n), CF_E_DEVICE_ERROR);
    n = 0;
    assert_int_equal(rpc_client_get_slot_list(true, NULL, &n), CF_OK);
    assert_int_equal(n, 2);

    /* C_GetAttributeValue: a 4-byte value announced for a 16-byte buffer, no bytes */
    g_len = 4;
    uint8_t v[16];
    CK_ATTRIBUTE t[] = { { CKA_LABEL, v, sizeof v } };
    assert_int_equal(rpc_client_get_attribute_value(s, 5, t, 1), CF_E_DEVICE_ERROR);
    /* a sensitive attribute has no bytes, rightly */
    g_len = CK_UNAVAILABLE_INFORMATION;
    assert_int_equal(rpc_client_get_attribute_value(s, 5, t, 1), CF_E_ATTRIBUTE_SENSITIVE);
    assert_int_equal(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    fk.answer = NULL;
}

/* ---- ERROR frames are for errors ------------------------------------------------------------- */
static cf_err g_error;   /* the status the next ERROR frame carries */

static how error_frame(const rpc_call *c, rpc_reply *r)
{
    if (c->fn == RPC_FN_GET_SLOT_LIST || c->fn == RPC_FN_OPEN_SESSION)
        return AS_USUAL;
    r->status = g_error;
    return ERROR_FRAME;
}

static void error_frame_with_success(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_on(1);
    fk.answer = error_frame;
    const uint8_t pin[] = "1234";
    uint8_t in[8] = { 0 }, out[16];

    g_error = CF_E_PIN_INCORRECT;   /* a real error: passed on, the connection kept */
    assert_int_equal(rpc_client_login(s, CKU_USER, pin, 4), CF_E_PIN_INCORRECT);
    CK_SESSION_INFO si;
    assert_int_equal(rpc_client_get_session_info(s, &si), CF_E_PIN_INCORRECT);

    const cf_err bad[] = { CF_OK, CF_E_BUFFER_TOO_SMALL, CF_E_LEASED };
    for (size_t i = 0; i < 3; i++) {
        g_error = bad[i];
        assert_int_equal(rpc_client_login(s, CKU_USER, pin, 4), CF_E_DEVICE_ERROR);
        /* a protocol error: the connection is not reused (session calls fail until a slot call) */
        size_t before = n_seen();
        assert_int_equal(rpc_client_get_session_info(s, &si), CF_E_DEVICE_REMOVED);
        assert_int_equal(n_seen(), before);
        CK_ULONG n = 0;
        assert_int_equal(rpc_client_get_slot_list(true, NULL, &n), CF_OK);
        assert_int_equal(rpc_client_verify(s, in, sizeof in, in, sizeof in), CF_E_DEVICE_ERROR);
        assert_int_equal(rpc_client_get_slot_list(true, NULL, &n), CF_OK);
        CK_ULONG len = sizeof out;
        assert_int_equal(rpc_client_op_oneshot(s, HSM_OP_DECRYPT, in, sizeof in, out, &len), CF_E_DEVICE_ERROR);
        assert_int_equal(rpc_client_get_slot_list(true, NULL, &n), CF_OK);
    }
    fk.answer = NULL;
}

/* ---- C_CloseAllSessions forgets its slot's sessions only, once done ------------------------- */
static bool g_fail_close_all;

static how close_all_fails(const rpc_call *c, rpc_reply *r)
{
    if (c->fn != RPC_FN_CLOSE_ALL_SESSIONS || !g_fail_close_all)
        return AS_USUAL;
    r->status = CF_E_TOKEN_NOT_PRESENT;
    return REPLY;
}

static void close_all_sessions_of_one_slot(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s1 = open_on(1), s2 = open_on(2);
    pending_init(s1);
    local_find(s1);
    pending_init(s2);
    local_find(s2);

    /* another slot, an invalid slot, this slot with a failure: s1 keeps its init and its find */
    assert_int_equal(rpc_client_close_all_sessions(2), CF_OK);
    assert_int_equal(rpc_client_close_all_sessions(99), CF_E_SLOT_ID_INVALID);
    fk.answer = close_all_fails;
    g_fail_close_all = true;
    assert_int_equal(rpc_client_close_all_sessions(1), CF_E_TOKEN_NOT_PRESENT);
    g_fail_close_all = false;
    find_is_local(s1);
    assert_int_equal(sign(s1), CF_OK);
    assert_int_equal(last_fn(), RPC_FN_OP_REARM_ONESHOT);   /* the pending init went with it */

    /* s2's slot was closed: its entries went (its next find and signature ask the server) */
    CK_OBJECT_HANDLE o[4];
    CK_ULONG n;
    assert_int_equal(rpc_client_find_objects(s2, o, 4, &n), CF_E_OPERATION_NOT_INITIALIZED);
    assert_int_equal(last_fn(), RPC_FN_FIND_OBJECTS);
    assert_int_equal(sign(s2), CF_OK);
    assert_int_equal(last_fn(), RPC_FN_OP_ONESHOT_LEASE);

    /* and s1's slot */
    init_is_local(s1);   /* under the lease the re-arm brought */
    local_find(s1);
    assert_int_equal(rpc_client_close_all_sessions(1), CF_OK);
    assert_int_equal(rpc_client_find_objects(s1, o, 4, &n), CF_E_OPERATION_NOT_INITIALIZED);
    assert_int_equal(sign(s1), CF_OK);
    assert_int_equal(last_fn(), RPC_FN_OP_ONESHOT_LEASE);
    fk.answer = NULL;
}

/* A session opened by another thread while C_CloseAllSessions of its slot is on the wire is not
 * taken for one it closed: its pending init stays. */
static CK_SESSION_HANDLE g_opened_meanwhile;
static cf_err across(void *(*fn)(void *), uint32_t held_fn, CK_SESSION_HANDLE s, void (*now)(CK_SESSION_HANDLE));

static void *close_all_thread(void *arg)
{
    *(cf_err *)((void **)arg)[1] = rpc_client_close_all_sessions(*(CK_SESSION_HANDLE *)((void **)arg)[0]);
    return NULL;
}

static void open_with_pending_init(CK_SESSION_HANDLE slot)
{
    g_opened_meanwhile = open_on(slot);
    pending_init(g_opened_meanwhile);
}

static void close_all_spares_later_sessions(void **state)
{
    (void)state;
    CK_SESSION_HANDLE slot = 1;
    assert_int_equal(across(close_all_thread, RPC_FN_CLOSE_ALL_SESSIONS, slot, open_with_pending_init), CF_OK);
    assert_int_equal(sign(g_opened_meanwhile), CF_OK);
    assert_int_equal(last_fn(), RPC_FN_OP_REARM_ONESHOT);   /* its pending init went with it */
}

/* ---- a lease granted across C_Logout --------------------------------------------------------- */
static void *sign_thread(void *arg)
{
    *(cf_err *)((void **)arg)[1] = sign(*(CK_SESSION_HANDLE *)((void **)arg)[0]);
    return NULL;
}

static void *logout_thread(void *arg)
{
    *(cf_err *)((void **)arg)[1] = rpc_client_logout(*(CK_SESSION_HANDLE *)((void **)arg)[0]);
    return NULL;
}

/* Runs fn(s) in a thread until the fake holds its request of held_fn, then runs now(s) here,
 * lets the held request go and waits for the thread: the thread's result. */
static cf_err across(void *(*fn)(void *), uint32_t held_fn, CK_SESSION_HANDLE s, void (*now)(CK_SESSION_HANDLE))
{
    cf_err rv = CF_E_INTERNAL;
    void *args[2] = { &s, &rv };
    hold(held_fn);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, args), 0);
    wait_held();
    now(s);
    release();
    pthread_join(t, NULL);
    return rv;
}

static void logout_now(CK_SESSION_HANDLE s) { assert_int_equal(rpc_client_logout(s), CF_OK); }
static void sign_now(CK_SESSION_HANDLE s) { assert_int_equal(sign(s), CF_OK); }

static void sign_then_init_is_asked(CK_SESSION_HANDLE s)
{
    assert_int_equal(sign(s), CF_OK);
    size_t before = count_of(RPC_FN_OP_INIT);
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_OK);
    assert_int_equal(count_of(RPC_FN_OP_INIT), before + 1);
}

/* C_SignInit after the logout: a round trip (the server says whether it may be done). */
static void init_is_asked(CK_SESSION_HANDLE s)
{
    size_t before = count_of(RPC_FN_OP_INIT);
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_OK);
    assert_int_equal(count_of(RPC_FN_OP_INIT), before + 1);
    assert_int_equal(sign(s), CF_OK);   /* ends it (and leaves a lease) */
}

static void lease_across_logout(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_on(1);
    /* a C_Sign on the wire while C_Logout runs from start to end: its lease comes after */
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_OK);
    assert_int_equal(across(sign_thread, RPC_FN_OP_ONESHOT_LEASE, s, logout_now), CF_OK);
    init_is_asked(s);
    /* a C_Sign sent while the LOGOUT is on the wire: the server may have run it first */
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_OK);   /* under the lease: local */
    assert_int_equal(across(logout_thread, RPC_FN_LOGOUT, s, sign_now), CF_OK);
    init_is_asked(s);
    /* a C_Sign answered while the LOGOUT is on the wire, then a C_SignInit, still before the
     * logout ends: the init is asked (a lease taken then would outlive the logout as a pending
     * init, and the next C_Sign would fail after a C_SignInit that said OK) */
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_OK);   /* under the lease: local */
    assert_int_equal(across(logout_thread, RPC_FN_LOGOUT, s, sign_then_init_is_asked), CF_OK);
    assert_int_equal(sign(s), CF_OK);
}

/* C_Logout in one thread sends another session's pending init (OP_REARM) first; that session's
 * own C_Sign, in another thread meanwhile, waits until the re-arm is answered: sent at once, it
 * could reach the server first (another connection) and find no operation. */
static void logout_flush_comes_first(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s1 = open_on(1), s2 = open_on(1);
    pending_init(s1);
    hold(RPC_FN_OP_REARM);
    cf_err lrv = CF_E_INTERNAL, srv = CF_E_INTERNAL;
    void *largs[2] = { &s2, &lrv }, *sargs[2] = { &s1, &srv };
    pthread_t lt, st;
    assert_int_equal(pthread_create(&lt, NULL, logout_thread, largs), 0);
    wait_held();   /* the logout's re-arm of s1's init is at the server, unanswered */
    size_t before = n_seen();
    assert_int_equal(pthread_create(&st, NULL, sign_thread, sargs), 0);
    /* time for a C_Sign that does not wait to reach the fake (it answers on another thread) */
    struct timespec pause = { 0, 200 * 1000000L };
    nanosleep(&pause, NULL);
    assert_int_equal(n_seen(), before);
    release();
    pthread_join(lt, NULL);
    pthread_join(st, NULL);
    assert_int_equal(lrv, CF_OK);
    assert_int_equal(srv, CF_OK);
    /* after the re-arm: a plain signature of the operation it armed, then the logout */
    assert_int_equal(count_of(RPC_FN_OP_REARM), 1);
    assert_int_equal(count_of(RPC_FN_OP_REARM_ONESHOT), 0);
}

/* cofferd refuses another connection (max_connections) while this process has one busy: the
 * call waits for that one instead of failing. */
static void *init_thread(void *arg)
{
    *(cf_err *)((void **)arg)[1] = rpc_client_op_init(*(CK_SESSION_HANDLE *)((void **)arg)[0], HSM_OP_SIGN, &ecdsa, KEY);
    return NULL;
}

static void *info_thread(void *arg)
{
    CK_SESSION_INFO si;
    *(cf_err *)((void **)arg)[1] = rpc_client_get_session_info(*(CK_SESSION_HANDLE *)((void **)arg)[0], &si);
    return NULL;
}

static void set_max_conns(int n)
{
    pthread_mutex_lock(&fk.mu);
    fk.max_conns = n;
    pthread_mutex_unlock(&fk.mu);
}

/* The pool's one connection busy in a held GET_SESSION_INFO, and a C_SignInit in another thread
 * (waiter_fn) that needs a second connection, which the fake refuses as cofferd at
 * max_connections; refused_end lets the busy call go and checks both calls succeeded. */
typedef struct {
    CK_SESSION_HANDLE s;
    cf_err busy_rv, waiter_rv;
    void *busy_args[2], *waiter_args[2];
    pthread_t busy, waiter;
} refused;

static void refused_start(refused *r, void *(*waiter_fn)(void *))
{
    r->s = open_on(1);   /* the pool's one connection, idle */
    set_max_conns(1);
    r->busy_rv = r->waiter_rv = CF_E_INTERNAL;
    r->busy_args[0] = r->waiter_args[0] = &r->s;
    r->busy_args[1] = &r->busy_rv;
    r->waiter_args[1] = &r->waiter_rv;
    hold(RPC_FN_GET_SESSION_INFO);
    assert_int_equal(pthread_create(&r->busy, NULL, info_thread, r->busy_args), 0);
    wait_held();   /* the connection is busy: the next call opens another, which is refused */
    assert_int_equal(pthread_create(&r->waiter, NULL, waiter_fn, r->waiter_args), 0);
    struct timespec pause = { 0, 200 * 1000000L };
    nanosleep(&pause, NULL);   /* refused by now */
}

static void refused_end(refused *r)
{
    release();
    pthread_join(r->busy, NULL);
    pthread_join(r->waiter, NULL);
    assert_int_equal(r->busy_rv, CF_OK);
    assert_int_equal(r->waiter_rv, CF_OK);
}

static void refused_connection_waits_for_the_pool(void **state)
{
    (void)state;
    refused r;
    refused_start(&r, init_thread);
    refused_end(&r);   /* the waiter ran on the first connection, once it came free */
    assert_int_equal(count_of(RPC_FN_OP_INIT), 1);
}

/* The refusal ends while the one connection is still busy (a long call): the waiting call opens a
 * connection once the pool's soft cap is over, not only when the busy one comes back. */
static atomic_bool g_waiter_done;

static void *init_then_flag(void *arg)
{
    init_thread(arg);
    atomic_store(&g_waiter_done, true);
    return NULL;
}

static void soft_cap_ends_without_a_free_connection(void **state)
{
    (void)state;
    atomic_store(&g_waiter_done, false);
    refused r;
    refused_start(&r, init_then_flag);
    set_max_conns(0);   /* the server takes connections again */
    struct timespec pause = { 0, 200 * 1000000L };
    for (int i = 0; i < 50 && !atomic_load(&g_waiter_done); i++)   /* the soft cap is 1 s */
        nanosleep(&pause, NULL);
    bool done_while_busy = atomic_load(&g_waiter_done);
    refused_end(&r);
    assert_true(done_while_busy);
}

/* ---- a lost connection, the application alive or gone ---------------------------------------- */
static uint8_t g_app_of_sessions;   /* the application the sessions were opened in */

static how sessions_of_app(const rpc_call *c, rpc_reply *r)
{
    const rpc_fn *fn = rpc_fn_find(c->fn);
    bool names_session = c->fn >= RPC_FN_INIT_PIN && c->fn != RPC_FN_DELETE_TOKEN &&
                         c->fn != RPC_FN_PIN_TRIES_LEFT && c->fn != RPC_FN_OPEN_SESSION &&
                         c->fn != RPC_FN_CLOSE_ALL_SESSIONS && fn->args[0] == RPC_T_ULONG;
    pthread_mutex_lock(&fk.mu);
    bool gone = fk.app != g_app_of_sessions;
    pthread_mutex_unlock(&fk.mu);
    if (!names_session || !gone)
        return AS_USUAL;
    r->status = CF_E_SESSION_HANDLE_INVALID;
    return REPLY;
}

/* A call on s whose connection the server drops: the connections are lost. */
static void lose_connection(CK_SESSION_HANDLE s)
{
    set_drop(RPC_FN_GET_SESSION_INFO);
    CK_SESSION_INFO si;
    assert_int_equal(rpc_client_get_session_info(s, &si), CF_E_DEVICE_REMOVED);
}

static void rejoin(void)
{
    CK_ULONG n = 0;
    assert_int_equal(rpc_client_get_slot_list(true, NULL, &n), CF_OK);
}

static void lost_connection_keeps_application_state(void **state)
{
    (void)state;
    fk.answer = sessions_of_app;
    g_app_of_sessions = fk.app;
    CK_SESSION_HANDLE s = open_on(1);

    /* while lost, no init is answered here: it fails as every call on a session does */
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_OK);
    assert_int_equal(sign(s), CF_OK);   /* a lease */
    lose_connection(s);
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_E_DEVICE_REMOVED);
    rejoin();

    /* rejoined with the same token (another connection kept the application): the pending init
     * and the local find are still here */
    pending_init(s);
    local_find(s);
    lose_connection(s);
    rejoin();
    find_is_local(s);
    assert_int_equal(sign(s), CF_OK);
    assert_int_equal(last_fn(), RPC_FN_OP_REARM_ONESHOT);

    /* the application is gone (a new token at the rejoin): so are its sessions' entries, and the
     * calls on them fail cleanly */
    init_is_local(s);
    local_find(s);
    lose_connection(s);
    pthread_mutex_lock(&fk.mu);
    fk.app++;
    pthread_mutex_unlock(&fk.mu);
    rejoin();
    CK_OBJECT_HANDLE o[4];
    CK_ULONG n;
    assert_int_equal(rpc_client_find_objects(s, o, 4, &n), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(sign(s), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(last_fn(), RPC_FN_OP_ONESHOT_LEASE);
    assert_int_equal(rpc_client_op_init(s, HSM_OP_SIGN, &ecdsa, KEY), CF_E_SESSION_HANDLE_INVALID);
    fk.answer = NULL;
}

/* ---- [client] timeout bounds connect() --------------------------------------------------------- */
static void *slot_list_thread(void *arg)
{
    CK_ULONG n = 0;
    *(cf_err *)arg = rpc_client_get_slot_list(true, NULL, &n);
    return NULL;
}

/* A Unix listener whose backlog is full (listen(0), filled with connections never accepted): a
 * blocking connect() waits for room. With timeout = 1 the call gives up (DEVICE_REMOVED). */
static void connect_honours_timeout(void **state)
{
    (void)state;
    (void)rpc_client_finalize();
    char path[128];
    snprintf(path, sizeof path, "%.100s/full.sock", fk.dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    int fill[8], nfill = 0;
    for (; nfill < 8; nfill++) {
        fill[nfill] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (connect(fill[nfill], (struct sockaddr *)&a, sizeof a) != 0) {
            assert_int_equal(errno, EAGAIN);
            close(fill[nfill]);
            break;
        }
    }
    assert_true(nfill < 8);   /* the backlog is full */
    rpc_client_set_server(path);
    rpc_client_set_timeout(1);
    char err[128];
    assert_int_equal(rpc_client_initialize(err, sizeof err), CF_OK);

    cf_err rv = CF_E_INTERNAL;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slot_list_thread, &rv), 0);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;   /* far beyond the timeout: a hang, not a slow machine */
    int joined = pthread_timedjoin_np(t, NULL, &deadline);
    close(lfd);   /* wakes a connect() still waiting */
    if (joined != 0)
        pthread_join(t, NULL);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    unlink(path);
    rpc_client_set_timeout(0);
    if (joined != 0)
        fail_msg("connect() to a full backlog did not give up within 30 s with timeout = 1");
    assert_int_equal(rv, CF_E_DEVICE_REMOVED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(replies_without_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(error_frame_with_success, setup, teardown),
        cmocka_unit_test_setup_teardown(close_all_sessions_of_one_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(close_all_spares_later_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(lease_across_logout, setup, teardown),
        cmocka_unit_test_setup_teardown(logout_flush_comes_first, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_connection_waits_for_the_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(soft_cap_ends_without_a_free_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_connection_keeps_application_state, setup, teardown),
        cmocka_unit_test_setup_teardown(connect_honours_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
