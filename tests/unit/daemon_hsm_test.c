/* daemon_hsm_test.c: cofferd's remote-HSM service (src/daemon/hsm_*.c) end to end: the server
 * runs in this process on temporary sockets, against the real token engine; the client side is a
 * raw socket (or a TLS connection) speaking frames made with the rpc codec. Covers the handshake
 * (and a refused major version), a token initialized, a P-256 key pair generated, a signature made
 * and verified remotely, applications (a connection alone, or several joined by the application
 * token: shared sessions and login, refused to another peer, ended with the last connection),
 * pipelined requests, many connections, a stalled peer with one worker, idle timeout and the TLS
 * handshake deadline, max_connections, several listeners (Unix and TLS), socket mode and group,
 * protocol errors that close only their own connection.
 *
 * cofferd is an executable: its service files are compiled into this test. */
#include <errno.h>
#include <signal.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/hsm_dispatch.c"
#include "daemon/hsm_listen.c"
#include "daemon/hsm_registry.c"
#include "daemon/hsm_server.c"
#include "daemon/hsm_split.c"
#include "hsm_harness.h"

static cofferd_hsm *srv;
static char sock_path[CF_SOCK_PATH_MAX];
static cf_config cfg; /* large: not on the stack */

/* The configuration of the default service: one Unix socket, dir/hsm.sock, mode 0600. */
static void default_cfg(cf_config *c)
{
    char problem[160];
    cf_config_defaults(c);
    assert_int_equal(cf_config_parse_listen("unix:hsm.sock", true, dir, &c->hsm_listen[0], problem, sizeof problem),
                     CF_OK);
    c->n_hsm_listen = 1;
    memcpy(sock_path, c->hsm_listen[0].path, sizeof sock_path);
}

/* Replaces the running service by one of cfg. */
static void restart(void)
{
    char err[512] = "";
    cofferd_hsm_stop(srv);
    srv = NULL;
    cf_err e = cofferd_hsm_start_config(&cfg, &srv, err, sizeof err);
    if (e != CF_OK)
        fprintf(stderr, "start: %s\n", err);
    assert_int_equal(e, CF_OK);
}

static int setup(void **state)
{
    (void)state;
    hsm_env_setup("/tmp/coffer-dhsm-XXXXXX", 0);
    default_cfg(&cfg);
    restart();
    return 0;
}

static int down(void **state)
{
    cofferd_hsm_stop(srv);
    srv = NULL;
    hsrv_handshake_ms = 10000;
    return teardown(state);
}

/* ---- a raw client ------------------------------------------------------------------------------ */
/* A client connection is a socket, with a TLS connection over it when cl_tls[fd] is set. */
static cf_tls *cl_tls[1024];

static void set_timeout(int fd, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static int cl_connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0 && fd < 1024);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    set_timeout(fd, 10000);
    return fd;
}

static int cl_connect(void)
{
    return cl_connect_to(sock_path);
}

static void cl_close(int fd)
{
    if (fd >= 0 && fd < 1024 && cl_tls[fd]) {
        cf_tls_free(cl_tls[fd]);
        cl_tls[fd] = NULL;
    }
    close(fd);
}

static bool read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = cl_tls[fd] ? cf_tls_read(cl_tls[fd], p, n) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static void send_bytes(int fd, const void *p, size_t n)
{
    if (cl_tls[fd])
        assert_int_equal(cf_tls_write(cl_tls[fd], p, n), (long)n);
    else
        assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void send_writer_t(int fd, cf_writer *w)
{
    assert_int_equal(cf_writer_status(w), CF_OK);
    send_bytes(fd, w->p, w->len);
    cf_writer_free(w);
}

/* One frame into *buf (freed by the caller); false on EOF. */
static bool recv_frame(int fd, uint8_t **buf, rpc_frame *f)
{
    uint8_t head[4];
    size_t total;
    *buf = NULL;
    if (!read_full(fd, head, 4))
        return false;
    assert_int_equal(rpc_frame_size(head, 4, &total), CF_OK);
    *buf = malloc(total);
    assert_non_null(*buf);
    memcpy(*buf, head, 4);
    assert_true(read_full(fd, *buf + 4, total - 4));
    cf_reader r = cf_reader_init(*buf, total);
    assert_int_equal(rpc_frame_parse(&r, f), CF_OK);
    return true;
}

static bool at_eof(int fd)
{
    uint8_t b;
    if (cl_tls[fd]) { /* the server ends TLS without close_notify: OpenSSL's "unexpected eof" */
        long k = cf_tls_read(cl_tls[fd], &b, 1);
        return k == 0 || (k < 0 && cf_tls_last_error(cl_tls[fd]) != NULL);
    }
    ssize_t k = recv(fd, &b, 1, 0);
    /* a server that closes with our bytes unread makes the kernel reset the connection */
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

/* HELLO (naming the application of token_in when not NULL); the HELLO_OK's token in token_out
 * (may be NULL). */
static void hello_token(int fd, const uint8_t *token_in, uint8_t *token_out)
{
    rpc_hello h = rpc_hello_self();
    if (token_in) {
        h.has_token = true;
        memcpy(h.token, token_in, RPC_APP_TOKEN_LEN);
    }
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_hello(&w, RPC_HELLO, &h), CF_OK);
    send_writer_t(fd, &w);
    uint8_t *buf;
    rpc_frame f;
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_HELLO_OK);
    assert_int_equal(rpc_decode_hello(&f, &h), CF_OK);
    assert_int_equal(h.major, RPC_VERSION_MAJOR);
    assert_true(h.has_token); /* a minor-1 server names the application */
    if (token_out)
        memcpy(token_out, h.token, RPC_APP_TOKEN_LEN);
    free(buf);
}

static void hello(int fd)
{
    hello_token(fd, NULL, NULL);
}

/* The last answer's frame and arena (the outputs point into them). */
static uint8_t *last_buf;
static rpc_arena last_arena = RPC_ARENA_INIT;
static uint32_t next_id = 1;

static cf_err call(int fd, rpc_call *c, rpc_reply *r)
{
    free(last_buf);
    last_buf = NULL;
    rpc_arena_free(&last_arena);
    uint32_t id = next_id++;
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_request(&w, id, c), CF_OK);
    send_writer_t(fd, &w);
    rpc_frame f;
    assert_true(recv_frame(fd, &last_buf, &f));
    assert_int_equal(f.id, id);
    assert_int_equal(f.type, RPC_RESPONSE);
    assert_int_equal(rpc_decode_response(&f, r, &last_arena), CF_OK);
    assert_int_equal(r->fn, c->fn);
    return r->status;
}

static CK_SLOT_ID free_slot_remote(int fd)
{
    rpc_call c = { .fn = RPC_FN_GET_SLOT_LIST };
    rpc_reply r;
    c.arg[0].ul = 1;
    c.arg[1].outbuf.present = false;
    assert_int_equal(call(fd, &c, &r), CF_OK); /* length query */
    assert_true(r.has_outputs);
    CK_ULONG n = r.out[0].list.count;
    assert_true(n >= 1);
    assert_null(r.out[0].list.v);
    c.arg[1].outbuf.present = true;
    c.arg[1].outbuf.cap = n;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    assert_int_equal(r.out[0].list.count, n);
    CK_SLOT_ID slots[64];
    assert_true(n <= 64);
    memcpy(slots, r.out[0].list.v, n * sizeof *slots);
    for (CK_ULONG i = 0; i < n; i++) {
        rpc_call t = { .fn = RPC_FN_GET_TOKEN_INFO };
        t.arg[0].ul = slots[i];
        assert_int_equal(call(fd, &t, &r), CF_OK);
        if (!(r.out[0].token_info.flags & CKF_TOKEN_INITIALIZED))
            return slots[i];
    }
    fail();
    return 0;
}

static void simple(int fd, uint32_t fn, CK_ULONG a0, CK_ULONG a1, const uint8_t *pin, size_t pinlen, cf_err want)
{
    rpc_call c = { .fn = fn };
    rpc_reply r;
    c.arg[0].ul = a0;
    if (fn == RPC_FN_LOGIN) {
        c.arg[1].ul = a1;
        c.arg[2].bytes.p = pin;
        c.arg[2].bytes.len = pinlen;
    } else if (fn == RPC_FN_INIT_PIN) {
        c.arg[1].bytes.p = pin;
        c.arg[1].bytes.len = pinlen;
    }
    assert_int_equal(call(fd, &c, &r), want);
}

static CK_SESSION_HANDLE open_session(int fd, CK_SLOT_ID slot)
{
    rpc_call c = { .fn = RPC_FN_OPEN_SESSION };
    rpc_reply r;
    c.arg[0].ul = slot;
    c.arg[1].ul = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    return r.out[0].ul;
}

/* ---- tests ------------------------------------------------------------------------------------ */
static void token_keypair_sign_verify(void **state)
{
    (void)state;
    int fd = cl_connect();
    hello(fd);
    CK_SLOT_ID slot = free_slot_remote(fd);

    uint8_t label[32];
    label32(label, "remote");
    rpc_call c = { .fn = RPC_FN_INIT_TOKEN };
    rpc_reply r;
    c.arg[0].ul = slot;
    c.arg[1].bytes.p = SO;
    c.arg[1].bytes.len = SOL;
    c.arg[2].bytes.p = label;
    c.arg[2].bytes.len = 32;
    assert_int_equal(call(fd, &c, &r), CF_OK);

    CK_SESSION_HANDLE s = open_session(fd, slot);
    simple(fd, RPC_FN_LOGIN, s, CKU_SO, SO, SOL, CF_OK);
    simple(fd, RPC_FN_INIT_PIN, s, 0, USER, USERL, CF_OK);
    simple(fd, RPC_FN_LOGOUT, s, 0, NULL, 0, CF_OK);
    simple(fd, RPC_FN_LOGIN, s, CKU_USER, (const uint8_t *)"wrong-pin", 9, CF_E_PIN_INCORRECT);
    simple(fd, RPC_FN_LOGIN, s, CKU_USER, USER, USERL, CF_OK);

    /* a P-256 key pair */
    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_VERIFY, &yes, 1 } };
    CK_ATTRIBUTE priv[] = { { CKA_SIGN, &yes, 1 }, { CKA_SENSITIVE, &yes, 1 } };
    c = (rpc_call){ .fn = RPC_FN_GENERATE_KEY_PAIR };
    c.arg[0].ul = s;
    c.arg[1].mech = (CK_MECHANISM){ CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    c.arg[2].tmpl.attrs = pub;
    c.arg[2].tmpl.count = 2;
    c.arg[3].tmpl.attrs = priv;
    c.arg[3].tmpl.count = 2;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    CK_OBJECT_HANDLE hpub = r.out[0].ul, hpriv = r.out[1].ul;
    assert_true(hpub != 0 && hpriv != 0 && hpub != hpriv);

    /* the private value is sensitive: GET_ATTRIBUTE_VALUE answers per attribute */
    rpc_query_item q[2] = { { CKA_VALUE, true, 64 }, { CKA_SIGN, true, 1 } };
    c = (rpc_call){ .fn = RPC_FN_GET_ATTRIBUTE_VALUE };
    c.arg[0].ul = s;
    c.arg[1].ul = hpriv;
    c.arg[2].query.items = q;
    c.arg[2].query.count = 2;
    assert_int_equal(call(fd, &c, &r), CF_E_ATTRIBUTE_SENSITIVE);
    assert_true(r.has_outputs);
    assert_int_equal(r.out[0].tmpl.count, 2);
    assert_int_equal(r.out[0].tmpl.attrs[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(r.out[0].tmpl.attrs[1].ulValueLen, 1);
    assert_int_equal(*(CK_BBOOL *)r.out[0].tmpl.attrs[1].pValue, CK_TRUE);

    /* sign: length query, then the signature */
    uint8_t hash[32], sig[64];
    memset(hash, 0x5a, sizeof hash);
    c = (rpc_call){ .fn = RPC_FN_OP_INIT };
    c.arg[0].ul = s;
    c.arg[1].ul = HSM_OP_SIGN;
    c.arg[2].mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
    c.arg[3].ul = hpriv;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    c = (rpc_call){ .fn = RPC_FN_OP_ONESHOT };
    c.arg[0].ul = s;
    c.arg[1].ul = HSM_OP_SIGN;
    c.arg[2].bytes.p = hash;
    c.arg[2].bytes.len = sizeof hash;
    c.arg[3].outbuf.present = false;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    assert_int_equal(r.out[0].data.len, 64);
    assert_null(r.out[0].data.p);
    c.arg[3].outbuf.present = true;
    c.arg[3].outbuf.cap = 10;
    assert_int_equal(call(fd, &c, &r), CF_E_BUFFER_TOO_SMALL);
    assert_true(r.has_outputs);
    assert_int_equal(r.out[0].data.len, 64);
    c.arg[3].outbuf.cap = 64;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    assert_int_equal(r.out[0].data.len, 64);
    assert_non_null(r.out[0].data.p);
    memcpy(sig, r.out[0].data.p, 64);

    /* verify with the public key, and a bad signature */
    for (int round = 0; round < 2; round++) {
        c = (rpc_call){ .fn = RPC_FN_OP_INIT };
        c.arg[0].ul = s;
        c.arg[1].ul = HSM_OP_VERIFY;
        c.arg[2].mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
        c.arg[3].ul = hpub;
        assert_int_equal(call(fd, &c, &r), CF_OK);
        c = (rpc_call){ .fn = RPC_FN_VERIFY };
        c.arg[0].ul = s;
        c.arg[1].bytes.p = hash;
        c.arg[1].bytes.len = sizeof hash;
        c.arg[2].bytes.p = sig;
        c.arg[2].bytes.len = sizeof sig;
        assert_int_equal(call(fd, &c, &r), round == 0 ? CF_OK : CF_E_SIGNATURE_INVALID);
        sig[10] ^= 1;
    }

    /* random */
    c = (rpc_call){ .fn = RPC_FN_GENERATE_RANDOM };
    c.arg[0].ul = s;
    c.arg[1].ul = 48;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    assert_int_equal(r.out[0].data.len, 48);

    /* another connection cannot use this connection's session */
    int other = cl_connect();
    hello(other);
    simple(other, RPC_FN_GET_SESSION_INFO, s, 0, NULL, 0, CF_E_SESSION_HANDLE_INVALID);
    simple(other, RPC_FN_CLOSE_SESSION, s, 0, NULL, 0, CF_E_SESSION_HANDLE_INVALID);
    CK_SESSION_HANDLE s2 = open_session(other, slot);
    simple(other, RPC_FN_CLOSE_ALL_SESSIONS, slot, 0, NULL, 0, CF_OK); /* its own only */
    CK_SESSION_INFO si;
    assert_int_equal(hsm_get_session_info(s2, &si), CF_E_SESSION_HANDLE_INVALID);
    simple(fd, RPC_FN_GET_SESSION_INFO, s, 0, NULL, 0, CF_OK);
    close(other);

    /* the connection ends: its sessions are closed in the engine */
    CK_SESSION_HANDLE s3 = open_session(fd, slot);
    assert_int_equal(hsm_get_session_info(s, &si), CF_OK);
    free(last_buf);
    last_buf = NULL;
    rpc_arena_free(&last_arena);
    close(fd);
    cf_err e = CF_OK;
    for (int i = 0; i < 500 && e == CF_OK; i++) {
        e = hsm_get_session_info(s3, &si);
        if (e == CF_OK)
            usleep(10000);
    }
    assert_int_equal(e, CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(s, &si), CF_E_SESSION_HANDLE_INVALID);
}

static CK_ULONG remote_state(int fd, CK_SESSION_HANDLE s)
{
    rpc_call c = { .fn = RPC_FN_GET_SESSION_INFO };
    rpc_reply r;
    c.arg[0].ul = s;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    return r.out[0].session_info.state;
}

/* Every handle FIND_OBJECTS lists for an empty template (at most 64). */
static CK_ULONG remote_find_all(int fd, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out)
{
    rpc_call c = { .fn = RPC_FN_FIND_OBJECTS_INIT };
    rpc_reply r;
    c.arg[0].ul = s;
    c.arg[1].tmpl.attrs = NULL;
    c.arg[1].tmpl.count = 0;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    c = (rpc_call){ .fn = RPC_FN_FIND_OBJECTS };
    c.arg[0].ul = s;
    c.arg[1].ul = 64;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    CK_ULONG n = r.out[0].list.count;
    assert_true(n <= 64);
    if (n)
        memcpy(out, r.out[0].list.v, n * sizeof *out);
    c = (rpc_call){ .fn = RPC_FN_FIND_OBJECTS_FINAL };
    c.arg[0].ul = s;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    return n;
}

/* Each connection is one application: a login over one connection is not shared with another. */
/* The audit hook's record of the calls below (the server thread reports before it replies). */
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seen_app[HSM_AUDIT__COUNT];
static void note_app(void *ctx, const hsm_audit_event *e)
{
    (void)ctx;
    pthread_mutex_lock(&seen_mu);
    seen_app[e->type] = e->app;
    pthread_mutex_unlock(&seen_mu);
}

static uint64_t app_of(hsm_audit_type t)
{
    pthread_mutex_lock(&seen_mu);
    uint64_t a = seen_app[t];
    pthread_mutex_unlock(&seen_mu);
    return a;
}

/* INIT_TOKEN and DELETE_TOKEN name no session: their records carry the client's application
 * all the same, the one its login records carry. */
static void token_calls_name_the_application(void **state)
{
    (void)state;
    hsm_set_audit(note_app, NULL);
    int fd = cl_connect();
    hello(fd);
    CK_SLOT_ID slot = free_slot_remote(fd);
    uint8_t label[32];
    label32(label, "named");
    rpc_call c = { .fn = RPC_FN_INIT_TOKEN };
    rpc_reply r;
    c.arg[0].ul = slot;
    c.arg[1].bytes.p = SO;
    c.arg[1].bytes.len = SOL;
    c.arg[2].bytes.p = label;
    c.arg[2].bytes.len = 32;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    CK_SESSION_HANDLE s = open_session(fd, slot);
    simple(fd, RPC_FN_LOGIN, s, CKU_SO, SO, SOL, CF_OK);
    simple(fd, RPC_FN_CLOSE_SESSION, s, 0, NULL, 0, CF_OK);
    c = (rpc_call){ .fn = RPC_FN_DELETE_TOKEN };
    c.arg[0].ul = slot;
    c.arg[1].bytes.p = SO;
    c.arg[1].bytes.len = SOL;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    uint64_t app = app_of(HSM_AUDIT_LOGIN);
    assert_true(app != 0);
    assert_int_equal(app_of(HSM_AUDIT_TOKEN_INIT), app);
    assert_int_equal(app_of(HSM_AUDIT_TOKEN_DELETE), app);
    hsm_set_audit(NULL, NULL);
    cl_close(fd);
}

static void login_is_per_connection(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("conns");
    int a = cl_connect(), b = cl_connect();
    hello(a);
    hello(b);
    CK_SESSION_HANDLE sa = open_session(a, slot), sb = open_session(b, slot);
    simple(a, RPC_FN_LOGIN, sa, CKU_USER, USER, USERL, CF_OK);
    assert_int_equal(remote_state(a, sa), CKS_RW_USER_FUNCTIONS);
    assert_int_equal(remote_state(b, sb), CKS_RW_PUBLIC_SESSION);

    /* A makes a private token key pair */
    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_TOKEN, &yes, 1 } };
    CK_ATTRIBUTE priv[] = { { CKA_SIGN, &yes, 1 }, { CKA_TOKEN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 } };
    rpc_call c = { .fn = RPC_FN_GENERATE_KEY_PAIR };
    rpc_reply r;
    c.arg[0].ul = sa;
    c.arg[1].mech = (CK_MECHANISM){ CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    c.arg[2].tmpl.attrs = pub;
    c.arg[2].tmpl.count = 2;
    c.arg[3].tmpl.attrs = priv;
    c.arg[3].tmpl.count = 3;
    assert_int_equal(call(a, &c, &r), CF_OK);
    CK_OBJECT_HANDLE hpub = r.out[0].ul, hpriv = r.out[1].ul;

    CK_OBJECT_HANDLE found[64];
    CK_ULONG n = remote_find_all(a, sa, found);
    bool pub_seen = false, priv_seen = false;
    for (CK_ULONG i = 0; i < n; i++)
        pub_seen |= found[i] == hpub, priv_seen |= found[i] == hpriv;
    assert_true(pub_seen && priv_seen);
    /* B lists the public key only, and cannot sign with the private one */
    n = remote_find_all(b, sb, found);
    pub_seen = priv_seen = false;
    for (CK_ULONG i = 0; i < n; i++)
        pub_seen |= found[i] == hpub, priv_seen |= found[i] == hpriv;
    assert_true(pub_seen);
    assert_false(priv_seen);
    c = (rpc_call){ .fn = RPC_FN_OP_INIT };
    c.arg[0].ul = sb;
    c.arg[1].ul = HSM_OP_SIGN;
    c.arg[2].mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
    c.arg[3].ul = hpriv;
    assert_int_equal(call(b, &c, &r), CF_E_KEY_HANDLE_INVALID);

    /* B logs in and out on its own; A stays logged in */
    simple(b, RPC_FN_LOGIN, sb, CKU_USER, USER, USERL, CF_OK);
    assert_int_equal(remote_state(b, sb), CKS_RW_USER_FUNCTIONS);
    simple(b, RPC_FN_LOGOUT, sb, 0, NULL, 0, CF_OK);
    assert_int_equal(remote_state(b, sb), CKS_RW_PUBLIC_SESSION);
    assert_int_equal(remote_state(a, sa), CKS_RW_USER_FUNCTIONS);

    /* A's connection ends: its login ends with it, B is unaffected and still public */
    free(last_buf);
    last_buf = NULL;
    rpc_arena_free(&last_arena);
    close(a);
    CK_SESSION_INFO si;
    cf_err e = CF_OK;
    for (int i = 0; i < 500 && e == CF_OK; i++) {
        e = hsm_get_session_info(sa, &si);
        if (e == CF_OK)
            usleep(10000);
    }
    assert_int_equal(e, CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(remote_state(b, sb), CKS_RW_PUBLIC_SESSION);
    simple(b, RPC_FN_LOGIN, sb, CKU_USER, USER, USERL, CF_OK);
    n = remote_find_all(b, sb, found);
    priv_seen = false;
    for (CK_ULONG i = 0; i < n; i++)
        priv_seen |= found[i] == hpriv;
    assert_true(priv_seen);
    close(b);
}

static void bad_version_refused(void **state)
{
    (void)state;
    int fd = cl_connect();
    rpc_hello h = rpc_hello_self();
    h.major = RPC_VERSION_MAJOR + 1;
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_hello(&w, RPC_HELLO, &h), CF_OK);
    send_writer_t(fd, &w);
    uint8_t *buf;
    rpc_frame f;
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_ERROR);
    assert_int_equal(f.id, 0);
    cf_err st;
    const char *msg;
    size_t len;
    assert_int_equal(rpc_decode_error(&f, &st, &msg, &len), CF_OK);
    assert_int_equal(st, CF_E_NOT_SUPPORTED);
    assert_non_null(memmem(msg, len, "major version", 13));
    free(buf);
    assert_true(at_eof(fd));
    close(fd);

    /* a REQUEST before HELLO closes too */
    fd = cl_connect();
    rpc_call c = { .fn = RPC_FN_GET_SLOT_LIST };
    w = cf_writer_heap();
    assert_int_equal(rpc_encode_request(&w, 7, &c), CF_OK);
    send_writer_t(fd, &w);
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_ERROR);
    free(buf);
    assert_true(at_eof(fd));
    close(fd);
}

static void slot_list_works(int fd)
{
    rpc_call c = { .fn = RPC_FN_GET_SLOT_LIST };
    rpc_reply r;
    c.arg[0].ul = 1;
    c.arg[1].outbuf.present = true;
    c.arg[1].outbuf.cap = 8;
    assert_int_equal(call(fd, &c, &r), CF_OK);
    assert_true(r.out[0].list.count >= 1);
}

static void protocol_errors_close_only_their_connection(void **state)
{
    (void)state;
    int good = cl_connect();
    hello(good);
    slot_list_works(good);

    /* an unknown function code: ERROR NOT_SUPPORTED, the connection stays */
    int fd = cl_connect();
    hello(fd);
    static const uint8_t unknown[] = { 0, 0, 0, 9, RPC_REQUEST, 0, 0, 0, 42, 0, 0, 3, 0xe7 };
    send_bytes(fd, unknown, sizeof unknown);
    uint8_t *buf;
    rpc_frame f;
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_ERROR);
    assert_int_equal(f.id, 42);
    cf_err st;
    const char *msg;
    size_t len;
    assert_int_equal(rpc_decode_error(&f, &st, &msg, &len), CF_OK);
    assert_int_equal(st, CF_E_NOT_SUPPORTED);
    free(buf);
    slot_list_works(fd);

    /* a malformed request (trailing garbage after GET_SLOT_INFO's argument): ERROR, closed */
    static const uint8_t bad[] = { 0, 0, 0, 5 + 4 + 8 + 2, RPC_REQUEST, 0, 0, 0, 43, 0, 0, 0, 2,
                                   0, 0, 0, 0, 0, 0, 0, 1, 0xde, 0xad };
    send_bytes(fd, bad, sizeof bad);
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_ERROR);
    assert_int_equal(rpc_decode_error(&f, &st, &msg, &len), CF_OK);
    assert_int_equal(st, CF_E_FORMAT);
    free(buf);
    assert_true(at_eof(fd));
    close(fd);

    /* a frame length out of bounds: closed */
    fd = cl_connect();
    hello(fd);
    static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, RPC_REQUEST, 0, 0, 0, 1 };
    send_bytes(fd, huge, sizeof huge);
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_ERROR);
    free(buf);
    assert_true(at_eof(fd));
    close(fd);

    /* garbage instead of HELLO: closed */
    fd = cl_connect();
    send_bytes(fd, "GET / HTTP/1.0\r\n\r\n", 18);
    while (recv_frame(fd, &buf, &f))
        free(buf);
    close(fd);

    /* a truncated frame, then the client's end: the server gives up on it */
    fd = cl_connect();
    hello(fd);
    static const uint8_t trunc[] = { 0, 0, 0, 100, RPC_REQUEST, 0, 0, 0, 1, 0, 0 };
    send_bytes(fd, trunc, sizeof trunc);
    shutdown(fd, SHUT_WR);
    assert_true(at_eof(fd));
    close(fd);

    /* the first connection never noticed */
    slot_list_works(good);
    free(last_buf);
    last_buf = NULL;
    rpc_arena_free(&last_arena);
    close(good);
}

static void socket_mode_applied(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(sock_path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* ---- the service at scale ------------------------------------------------------------------ */
static void release_last(void)
{
    free(last_buf);
    last_buf = NULL;
    rpc_arena_free(&last_arena);
}

/* Waits (5 s at most) until the engine no longer knows session s. */
static void wait_session_gone(CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO si;
    cf_err e = CF_OK;
    for (int i = 0; i < 500 && e == CF_OK; i++) {
        e = hsm_get_session_info(s, &si);
        if (e == CF_OK)
            usleep(10000);
    }
    assert_int_equal(e, CF_E_SESSION_HANDLE_INVALID);
}

static int64_t ms_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Connections joined by the application token share sessions and login; another application
 * cannot name them; an unknown token gets a new application; the application ends with its last
 * connection, not before. */
static void application_joins_by_token(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("join");
    uint8_t ta[RPC_APP_TOKEN_LEN], tb[RPC_APP_TOKEN_LEN], to[RPC_APP_TOKEN_LEN];
    int a = cl_connect(), b = cl_connect(), other = cl_connect();
    hello_token(a, NULL, ta);
    hello_token(b, ta, tb);
    assert_memory_equal(ta, tb, sizeof ta);          /* b joined a's application */
    hello_token(other, NULL, to);
    assert_memory_not_equal(ta, to, sizeof ta);      /* a HELLO without a token: a new one */

    /* a session opened on a is usable on b, and the other way round */
    CK_SESSION_HANDLE sa = open_session(a, slot);
    assert_int_equal(remote_state(b, sa), CKS_RW_PUBLIC_SESSION);
    CK_SESSION_HANDLE sb = open_session(b, slot);
    assert_int_equal(remote_state(a, sb), CKS_RW_PUBLIC_SESSION);
    /* a login on a shows on b's sessions */
    simple(a, RPC_FN_LOGIN, sa, CKU_USER, USER, USERL, CF_OK);
    assert_int_equal(remote_state(b, sb), CKS_RW_USER_FUNCTIONS);
    assert_int_equal(remote_state(b, sa), CKS_RW_USER_FUNCTIONS);

    /* another application cannot name them, and its own sessions are not logged in */
    simple(other, RPC_FN_GET_SESSION_INFO, sa, 0, NULL, 0, CF_E_SESSION_HANDLE_INVALID);
    simple(other, RPC_FN_CLOSE_SESSION, sb, 0, NULL, 0, CF_E_SESSION_HANDLE_INVALID);
    CK_SESSION_HANDLE so = open_session(other, slot);
    assert_int_equal(remote_state(other, so), CKS_RW_PUBLIC_SESSION);

    /* a token the server does not know: a new application, named by a new token */
    uint8_t bogus[RPC_APP_TOKEN_LEN], td[RPC_APP_TOKEN_LEN];
    memset(bogus, 0x42, sizeof bogus);
    int d = cl_connect();
    hello_token(d, bogus, td);
    assert_memory_not_equal(td, bogus, sizeof td);
    assert_memory_not_equal(td, ta, sizeof td);
    simple(d, RPC_FN_GET_SESSION_INFO, sa, 0, NULL, 0, CF_E_SESSION_HANDLE_INVALID);
    cl_close(d);

    /* b closes a session a opened: it is the application's */
    simple(b, RPC_FN_CLOSE_SESSION, sb, 0, NULL, 0, CF_OK);
    simple(a, RPC_FN_GET_SESSION_INFO, sb, 0, NULL, 0, CF_E_SESSION_HANDLE_INVALID);

    /* a closes: the application lives on in b (its session and its login) */
    release_last();
    cl_close(a);
    CK_SESSION_INFO si;
    for (int i = 0; i < 30; i++) {
        assert_int_equal(hsm_get_session_info(sa, &si), CF_OK);
        usleep(10000);
    }
    assert_int_equal(remote_state(b, sa), CKS_RW_USER_FUNCTIONS);

    /* b, its last connection, closes: the application ends, its sessions closed */
    release_last();
    cl_close(b);
    wait_session_gone(sa);
    assert_int_equal(hsm_get_session_info(so, &si), CF_OK); /* the other application's stays */

    /* its token names nothing now */
    uint8_t te[RPC_APP_TOKEN_LEN];
    int e = cl_connect();
    hello_token(e, ta, te);
    assert_memory_not_equal(te, ta, sizeof te);
    cl_close(e);
    cl_close(other);
    wait_session_gone(so);
}

static void put_call(cf_writer *w, uint32_t id, uint32_t fn, CK_SESSION_HANDLE s, bool login)
{
    rpc_call c = { .fn = fn };
    c.arg[0].ul = s;
    if (login) {
        c.arg[1].ul = CKU_USER;
        c.arg[2].bytes.p = USER;
        c.arg[2].bytes.len = USERL;
    }
    assert_int_equal(rpc_encode_request(w, id, &c), CF_OK);
}

/* Requests sent together in one write are run and answered in order: each GET_SESSION_INFO sees
 * the LOGIN or LOGOUT just before it. */
static void pipelined_requests_in_order(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("pipe");
    int fd = cl_connect();
    hello(fd);
    CK_SESSION_HANDLE s = open_session(fd, slot);
    enum { ROUNDS = 16 };
    cf_writer w = cf_writer_heap();
    uint32_t first = next_id;
    for (int i = 0; i < ROUNDS; i++) {
        put_call(&w, next_id++, RPC_FN_GET_SESSION_INFO, s, false);
        put_call(&w, next_id++, RPC_FN_LOGIN, s, true);
        put_call(&w, next_id++, RPC_FN_GET_SESSION_INFO, s, false);
        put_call(&w, next_id++, RPC_FN_LOGOUT, s, false);
    }
    send_writer_t(fd, &w);
    static const uint32_t fns[4] = { RPC_FN_GET_SESSION_INFO, RPC_FN_LOGIN, RPC_FN_GET_SESSION_INFO, RPC_FN_LOGOUT };
    for (uint32_t i = 0; i < 4 * ROUNDS; i++) {
        uint8_t *buf;
        rpc_frame f;
        rpc_reply r;
        rpc_arena ar = RPC_ARENA_INIT;
        assert_true(recv_frame(fd, &buf, &f));
        assert_int_equal(f.type, RPC_RESPONSE);
        assert_int_equal(f.id, first + i);
        assert_int_equal(rpc_decode_response(&f, &r, &ar), CF_OK);
        assert_int_equal(r.fn, fns[i % 4]);
        assert_int_equal(r.status, CF_OK);
        if (i % 4 == 0)
            assert_int_equal(r.out[0].session_info.state, CKS_RW_PUBLIC_SESSION);
        if (i % 4 == 2)
            assert_int_equal(r.out[0].session_info.state, CKS_RW_USER_FUNCTIONS);
        rpc_arena_free(&ar);
        free(buf);
    }
    cl_close(fd);
}

static void send_hello(int fd)
{
    rpc_hello h = rpc_hello_self();
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_hello(&w, RPC_HELLO, &h), CF_OK);
    send_writer_t(fd, &w);
}

static void expect_type(int fd, uint8_t type, uint32_t id)
{
    uint8_t *buf;
    rpc_frame f;
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, type);
    assert_int_equal(f.id, id);
    free(buf);
}

/* 300 connections open at once: every one is answered. */
static void many_connections(void **state)
{
    (void)state;
    enum { MANY = 300 };
    static int fds[MANY];
    for (int i = 0; i < MANY; i++)
        fds[i] = cl_connect();
    for (int i = 0; i < MANY; i++)
        send_hello(fds[i]);
    for (int i = 0; i < MANY; i++)
        expect_type(fds[i], RPC_HELLO_OK, 0);
    rpc_call c = { .fn = RPC_FN_GET_SLOT_LIST };
    c.arg[0].ul = 1;
    c.arg[1].outbuf.present = false;
    for (int i = 0; i < MANY; i++) {
        cf_writer w = cf_writer_heap();
        assert_int_equal(rpc_encode_request(&w, (uint32_t)i + 1, &c), CF_OK);
        send_writer_t(fds[i], &w);
    }
    for (int i = 0; i < MANY; i++)
        expect_type(fds[i], RPC_RESPONSE, (uint32_t)i + 1);
    for (int i = 0; i < MANY; i++)
        cl_close(fds[i]);
}

/* With a single worker, peers that send part of a frame and stall hold nothing up; each is served
 * when its frame is complete. */
static void stalled_peer_does_not_block(void **state)
{
    (void)state;
    cfg.hsm_workers = 1;
    restart();
    assert_int_equal(cofferd_hsm_workers(srv), 1);
    rpc_call c = { .fn = RPC_FN_GET_SLOT_LIST };
    c.arg[0].ul = 1;
    c.arg[1].outbuf.present = false;
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_request(&w, 77, &c), CF_OK);
    int half = cl_connect(), two = cl_connect();
    hello(half);
    hello(two);
    send_bytes(half, w.p, w.len / 2);  /* half a frame */
    send_bytes(two, w.p, 2);           /* half a length field */
    int good = cl_connect();
    set_timeout(good, 3000);           /* a blocked server fails this quickly */
    hello(good);
    for (int i = 0; i < 20; i++)
        slot_list_works(good);
    send_bytes(half, w.p + w.len / 2, w.len - w.len / 2);
    expect_type(half, RPC_RESPONSE, 77);
    send_bytes(two, w.p + 2, w.len - 2);
    expect_type(two, RPC_RESPONSE, 77);
    cf_writer_free(&w);
    release_last();
    cl_close(half);
    cl_close(two);
    cl_close(good);
}

/* idle_timeout = 1: a connection without requests is closed after about a second; one that keeps
 * asking stays. */
static void idle_timeout_closes_idle_connections(void **state)
{
    (void)state;
    cfg.hsm_idle_timeout = 1;
    restart();
    int idle = cl_connect(), busy = cl_connect();
    hello(idle);
    int64_t t0 = ms_now(), closed_at = 0;
    hello(busy);
    while (ms_now() - t0 < 2600) {
        slot_list_works(busy);
        struct pollfd p = { idle, POLLIN, 0 };
        if (!closed_at && poll(&p, 1, 0) == 1)
            closed_at = ms_now();
        usleep(150000);
    }
    assert_true(closed_at != 0);
    assert_true(closed_at - t0 >= 900);   /* not before its time */
    assert_true(at_eof(idle));
    slot_list_works(busy);
    release_last();
    cl_close(idle);
    cl_close(busy);
}

/* [hsm] max_sessions: an application's open sessions, all its connections together. Past it
 * OPEN_SESSION answers SESSION_COUNT and changes nothing (the engine opens no session, the
 * application owns no new handle); a close makes room; other applications are not counted. The
 * owned list stays right (hsrv_app_owns) through opens, closes and CLOSE_ALL_SESSIONS. */
static void max_sessions_per_application(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("capped");
    hsrv_registry r;
    hsrv_registry_init(&r, 3);
    hsrv_peer peer = { .kind = HSRV_PEER_UNIX };
    hsrv_app *a, *b;
    bool joined;
    assert_int_equal(hsrv_registry_enter(&r, &peer, RPC_VERSION_MINOR, NULL, &a, &joined), CF_OK);
    assert_int_equal(hsrv_registry_enter(&r, &peer, RPC_VERSION_MINOR, NULL, &b, &joined), CF_OK);
    CK_SESSION_HANDLE h[4], hb, spare = 12345;
    for (int i = 0; i < 3; i++)
        assert_int_equal(hsrv_app_open_session(a, slot, CKF_SERIAL_SESSION, &h[i]), CF_OK);
    CK_TOKEN_INFO ti;
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    h[3] = spare;
    assert_int_equal(hsrv_app_open_session(a, slot, CKF_SERIAL_SESSION, &h[3]), CF_E_SESSION_COUNT);
    assert_int_equal(h[3], spare);
    assert_int_equal(a->n, 3);
    CK_TOKEN_INFO after;
    assert_int_equal(hsm_get_token_info(slot, &after), CF_OK);
    assert_int_equal(after.ulSessionCount, ti.ulSessionCount);
    assert_int_equal(hsrv_app_open_session(b, slot, CKF_SERIAL_SESSION, &hb), CF_OK);   /* b: its own count */
    for (int i = 0; i < 3; i++) {
        assert_true(hsrv_app_owns(a, h[i]));
        assert_false(hsrv_app_owns(b, h[i]));
    }
    assert_true(hsrv_app_owns(b, hb));
    assert_false(hsrv_app_owns(a, hb));
    /* a close makes room; the list stays sorted, so every handle is still found */
    assert_int_equal(hsrv_app_close_session(a, h[1]), CF_OK);
    assert_false(hsrv_app_owns(a, h[1]));
    assert_true(hsrv_app_owns(a, h[0]) && hsrv_app_owns(a, h[2]));
    assert_int_equal(hsrv_app_open_session(a, slot, CKF_SERIAL_SESSION, &h[1]), CF_OK);
    assert_true(hsrv_app_owns(a, h[0]) && hsrv_app_owns(a, h[1]) && hsrv_app_owns(a, h[2]));
    assert_int_equal(hsrv_app_open_session(a, slot, CKF_SERIAL_SESSION, &h[3]), CF_E_SESSION_COUNT);
    assert_int_equal(hsrv_app_close_all_sessions(a, slot), CF_OK);
    assert_int_equal(a->n, 0);
    for (int i = 0; i < 3; i++)
        assert_false(hsrv_app_owns(a, h[i]));
    assert_true(hsrv_app_owns(b, hb));
    hsrv_registry_leave(&r, a);
    hsrv_registry_leave(&r, b);
    hsrv_registry_destroy(&r);

    /* the service applies the setting; past it the client is told SESSION_COUNT */
    cfg.hsm_max_sessions = 2;
    restart();
    int fd = cl_connect();
    hello(fd);
    rpc_call t = { .fn = RPC_FN_GET_TOKEN_INFO };   /* and tells it in the token's information */
    rpc_reply tr;
    t.arg[0].ul = slot;
    assert_int_equal(call(fd, &t, &tr), CF_OK);
    assert_int_equal(tr.out[0].token_info.ulMaxSessionCount, 2);
    assert_int_equal(tr.out[0].token_info.ulMaxRwSessionCount, 2);
    CK_SESSION_HANDLE s1 = open_session(fd, slot), s2 = open_session(fd, slot);
    assert_true(s1 && s2);
    rpc_call c = { .fn = RPC_FN_OPEN_SESSION };
    rpc_reply rep;
    c.arg[0].ul = slot;
    c.arg[1].ul = CKF_SERIAL_SESSION;
    assert_int_equal(call(fd, &c, &rep), CF_E_SESSION_COUNT);
    simple(fd, RPC_FN_CLOSE_SESSION, s1, 0, NULL, 0, CF_OK);
    assert_true(open_session(fd, slot) != 0);
    release_last();
    cl_close(fd);
}

/* A connection past max_connections (2 in these cases): ERROR (id 0, SESSION_COUNT, the
 * sentence naming the setting), then the end of the stream; closes fd. */
static void expect_refused(int fd)
{
    uint8_t *buf;
    rpc_frame f;
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_ERROR);
    assert_int_equal(f.id, 0);
    cf_err st;
    const char *msg;
    size_t len;
    assert_int_equal(rpc_decode_error(&f, &st, &msg, &len), CF_OK);
    assert_int_equal(st, CF_E_SESSION_COUNT);
    static const char want[] = "too many connections (max_connections = 2)";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(msg, want, len);
    free(buf);
    assert_true(at_eof(fd));
    cl_close(fd);
}

/* Past max_connections, a Unix connection gets ERROR (id 0) saying why, and is closed; a slot
 * frees when a connection ends. */
static void max_connections_refused(void **state)
{
    (void)state;
    cfg.hsm_max_connections = 2;
    restart();
    int a = cl_connect(), b = cl_connect();
    hello(a);
    hello(b);
    int c = cl_connect();
    expect_refused(c);
    slot_list_works(a);                  /* the two admitted ones are unaffected */
    slot_list_works(b);
    /* a closes: a new connection is admitted once the server has seen it (no ERROR waiting) */
    cl_close(a);
    bool admitted = false;
    for (int i = 0; i < 50 && !admitted; i++) {
        int d = cl_connect();
        struct pollfd p = { d, POLLIN, 0 };
        if (poll(&p, 1, 100) == 0) {
            hello(d);
            slot_list_works(d);
            admitted = true;
        }
        cl_close(d);
    }
    assert_true(admitted);
    release_last();
    cl_close(b);
}

/* Two Unix listeners: both served, and one application may span them (same user). */
static void two_listeners_served(void **state)
{
    (void)state;
    char problem[160];
    assert_int_equal(cf_config_parse_listen("unix:hsm2.sock", true, dir, &cfg.hsm_listen[1], problem, sizeof problem),
                     CF_OK);
    cfg.n_hsm_listen = 2;
    restart();
    int a = cl_connect(), b = cl_connect_to(cfg.hsm_listen[1].path);
    uint8_t ta[RPC_APP_TOKEN_LEN], tb[RPC_APP_TOKEN_LEN];
    hello_token(a, NULL, ta);
    hello_token(b, ta, tb);
    assert_memory_equal(ta, tb, sizeof ta);
    slot_list_works(a);
    slot_list_works(b);
    struct stat st;
    assert_int_equal(stat(cfg.hsm_listen[1].path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    release_last();
    cl_close(a);
    cl_close(b);
    /* stop removes both socket files */
    cofferd_hsm_stop(srv);
    srv = NULL;
    assert_int_equal(stat(sock_path, &st), -1);
    assert_int_equal(stat(cfg.hsm_listen[1].path, &st), -1);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0 && fd < 1024);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    set_timeout(fd, 10000);
    return fd;
}

static int tls_connect(cf_tls_ctx *ctx, uint16_t port)
{
    int fd = tcp_connect(port);
    char err[400] = "";
    cf_err e = cf_tls_connect(ctx, fd, "127.0.0.1", &cl_tls[fd], err, sizeof err);
    if (e != CF_OK)
        fprintf(stderr, "tls: %s\n", err);
    assert_int_equal(e, CF_OK);
    return fd;
}

/* A Unix socket and a TLS listener together: both served. Over TLS the peer is the client
 * certificate: a TLS connection cannot join the Unix user's application, a second one with the
 * same certificate joins the first's. A peer that never completes the handshake is closed at the
 * deadline. */
/* Restarts the service with a TLS listener on 127.0.0.1 besides the Unix socket (a fresh PKI in
 * dir/pki); *ctx gets a client context with the client certificate. Returns the port. */
static uint16_t tls_service(cf_tls_ctx **ctx)
{
    char pki[300], err[512] = "", path[400];
    snprintf(pki, sizeof pki, "%s/pki", dir);
    assert_int_equal(cf_tls_pki_init(pki, NULL, err, sizeof err), CF_OK);
    uint16_t port = free_port();
    cf_listen *t = &cfg.hsm_listen[1];
    memset(t, 0, sizeof *t);
    t->kind = CF_LISTEN_TLS;
    snprintf(t->host, sizeof t->host, "127.0.0.1");
    t->port = port;
    cfg.n_hsm_listen = 2;
    snprintf(cfg.hsm_cert, sizeof cfg.hsm_cert, "%s/server.pem", pki);
    snprintf(cfg.hsm_key, sizeof cfg.hsm_key, "%s/server.key", pki);
    snprintf(cfg.hsm_client_ca, sizeof cfg.hsm_client_ca, "%s/ca.pem", pki);
    restart();

    char cert[400], key[400];
    snprintf(cert, sizeof cert, "%s/client.pem", pki);
    snprintf(key, sizeof key, "%s/client.key", pki);
    snprintf(path, sizeof path, "%s/ca.pem", pki);
    assert_int_equal(cf_tls_client_ctx_new(cert, key, path, ctx, err, sizeof err), CF_OK);
    return port;
}

static void unix_and_tls_listeners(void **state)
{
    (void)state;
    cf_tls_ctx *ctx;
    uint16_t port = tls_service(&ctx);

    CK_SLOT_ID slot = make_token("tls");
    int u = cl_connect();
    uint8_t tu[RPC_APP_TOKEN_LEN], t1[RPC_APP_TOKEN_LEN], t2[RPC_APP_TOKEN_LEN];
    hello_token(u, NULL, tu);
    int a = tls_connect(ctx, port);
    hello_token(a, tu, t1);
    assert_memory_not_equal(t1, tu, sizeof t1);   /* the Unix user's token, another peer: refused */
    slot_list_works(a);
    slot_list_works(u);
    int b = tls_connect(ctx, port);
    hello_token(b, t1, t2);
    assert_memory_equal(t1, t2, sizeof t1);       /* the same certificate joins */
    CK_SESSION_HANDLE s = open_session(a, slot);
    assert_int_equal(remote_state(b, s), CKS_RW_PUBLIC_SESSION);
    simple(u, RPC_FN_GET_SESSION_INFO, s, 0, NULL, 0, CF_E_SESSION_HANDLE_INVALID);

    /* pipelined over TLS too: several records in flight, answered in order */
    cf_writer w = cf_writer_heap();
    uint32_t first = next_id;
    for (int i = 0; i < 8; i++)
        put_call(&w, next_id++, RPC_FN_GET_SESSION_INFO, s, false);
    send_writer_t(b, &w);
    for (uint32_t i = 0; i < 8; i++)
        expect_type(b, RPC_RESPONSE, first + i);

    /* a frame larger than a TLS record, and a small one right behind it in the same record: the
     * small one is decrypted with the big one's tail, and must be served though the socket has
     * nothing more to say */
    static uint8_t big[20000];
    memset(big, 'x', sizeof big);
    CK_ATTRIBUTE label = { CKA_LABEL, big, sizeof big };
    rpc_call fc = { .fn = RPC_FN_FIND_OBJECTS_INIT };
    fc.arg[0].ul = s;
    fc.arg[1].tmpl.attrs = &label;
    fc.arg[1].tmpl.count = 1;
    w = cf_writer_heap();
    first = next_id;
    assert_int_equal(rpc_encode_request(&w, next_id++, &fc), CF_OK);
    put_call(&w, next_id++, RPC_FN_FIND_OBJECTS_FINAL, s, false);
    send_writer_t(b, &w);
    expect_type(b, RPC_RESPONSE, first);
    expect_type(b, RPC_RESPONSE, first + 1);

    /* a protocol error closes only its TLS connection */
    static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, RPC_REQUEST, 0, 0, 0, 1 };
    send_bytes(b, huge, sizeof huge);
    expect_type(b, RPC_ERROR, 0);
    assert_true(at_eof(b));
    assert_int_equal(remote_state(a, s), CKS_RW_PUBLIC_SESSION);

    /* writing to a server that went away fails, and must not raise SIGPIPE (the module lives in
     * the application's process): with the default action restored, a SIGPIPE would end this test */
    signal(SIGPIPE, SIG_DFL);
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL);
    int d = tls_connect(ctx, port);
    hello(d);
    (void)shutdown(d, SHUT_WR);   /* the kernel now answers every write with EPIPE */
    assert_int_equal(cf_tls_write(cl_tls[d], "x", 1), -1);
    signal(SIGPIPE, SIG_IGN);
    cl_close(d);

    /* the handshake deadline: a TCP peer that says nothing is closed */
    hsrv_handshake_ms = 300;
    int raw = tcp_connect(port);
    set_timeout(raw, 5000);
    int64_t t0 = ms_now();
    uint8_t byte;
    ssize_t k = recv(raw, &byte, 1, 0);
    int64_t took = ms_now() - t0;
    assert_true(k == 0 || (k < 0 && errno == ECONNRESET));
    assert_true(took < 2500);
    close(raw);

    release_last();
    cl_close(a);
    cl_close(b);
    cl_close(u);
    wait_session_gone(s);
    cf_tls_ctx_free(ctx);
}

/* Whether the server closed fd within about a second, without a word. */
static bool closed_soon(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 1000) != 1)
        return false;
    uint8_t b;
    ssize_t k = recv(fd, &b, 1, MSG_DONTWAIT);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

/* TLS connections still in their handshake have their own limit, max_handshakes: silent TCP
 * peers past it are closed at once, and however many there are, Unix clients and TLS clients
 * with a certificate keep their max_connections. A TLS client past max_connections is told why
 * after its handshake. */
static void handshakes_have_their_own_limit(void **state)
{
    (void)state;
    cfg.hsm_max_connections = 2;
    cfg.hsm_max_handshakes = 2;
    cf_tls_ctx *ctx;
    uint16_t port = tls_service(&ctx);
    int a = tls_connect(ctx, port);             /* authenticated: a connection, not a handshake */
    hello(a);
    int quiet[2];
    for (int i = 0; i < 2; i++)
        quiet[i] = tcp_connect(port);
    int late = tcp_connect(port);               /* past max_handshakes */
    int u = cl_connect();                       /* the second connection: a Unix client */
    hello(u);
    slot_list_works(u);
    slot_list_works(a);
    assert_true(closed_soon(late));             /* closed at once */
    close(late);
    for (int i = 0; i < 2; i++)
        assert_false(closed_soon(quiet[i]));    /* the others wait for their deadline */

    /* max_connections reached: a TLS client with a handshake slot is told, after its handshake */
    close(quiet[0]);
    int b = -1;
    for (int i = 0; i < 50 && b < 0; i++) {     /* once the server has seen quiet[0] go */
        int fd = tcp_connect(port);
        char err[400];
        if (cf_tls_connect(ctx, fd, "127.0.0.1", &cl_tls[fd], err, sizeof err) == CF_OK) {
            b = fd;
            break;
        }
        cl_close(fd);
        usleep(20000);
    }
    assert_true(b >= 0);
    expect_refused(b);
    slot_list_works(a);
    slot_list_works(u);
    release_last();
    close(quiet[1]);
    cl_close(a);
    cl_close(u);
    cf_tls_ctx_free(ctx);
}

/* ---- answers a client does not read ------------------------------------------------------------ */
static void put_random(cf_writer *w, uint32_t id, CK_SESSION_HANDLE s, CK_ULONG n)
{
    rpc_call c = { .fn = RPC_FN_GENERATE_RANDOM };
    c.arg[0].ul = s;
    c.arg[1].ul = n;
    assert_int_equal(rpc_encode_request(w, id, &c), CF_OK);
}

/* The next answer is put_random's (id, n bytes); its first 16 bytes into head. */
static void expect_random(int fd, uint32_t id, CK_ULONG n, uint8_t head[16])
{
    uint8_t *buf;
    rpc_frame f;
    rpc_reply r;
    rpc_arena ar = RPC_ARENA_INIT;
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_RESPONSE);
    assert_int_equal(f.id, id);
    assert_int_equal(rpc_decode_response(&f, &r, &ar), CF_OK);
    assert_int_equal(r.fn, RPC_FN_GENERATE_RANDOM);
    assert_int_equal(r.status, CF_OK);
    assert_int_equal(r.out[0].data.len, n);
    memcpy(head, r.out[0].data.p, n < 16 ? n : 16);
    rpc_arena_free(&ar);
    free(buf);
}

/* A client that pipelines 64 GENERATE_RANDOMs of 1 MiB (5 KiB of requests) and does not read:
 * the server holds at most HSRV_OUT_HIGH plus one answer for it (not 64 MiB), and reading then
 * gets every answer, in order. */
static void unread_answers_stay_bounded(void **state)
{
    (void)state;
    enum { N = 64 };
    CK_SLOT_ID slot = make_token("flood");
    int fd = cl_connect();
    hello(fd);
    CK_SESSION_HANDLE s = open_session(fd, slot);
    atomic_store(&hsrv_out_peak, 0);
    cf_writer w = cf_writer_heap();
    uint32_t first = next_id;
    for (int i = 0; i < N; i++)
        put_random(&w, next_id++, s, RPC_MAX_DATA);
    send_writer_t(fd, &w);
    /* the socket takes far less than 64 MiB: the server's backlog reaches its high mark (waited
     * for, however loaded the machine), then it must stop there */
    for (int i = 0; i < 1000 && atomic_load(&hsrv_out_peak) < HSRV_OUT_HIGH; i++)
        usleep(10000);
    assert_true(atomic_load(&hsrv_out_peak) >= HSRV_OUT_HIGH);
    usleep(300000);                 /* time to go past the bound, if it would */
    size_t bound = HSRV_OUT_HIGH + HSRV_FRAME_MAX;
    assert_true(atomic_load(&hsrv_out_peak) <= bound);
    uint8_t prev[16] = { 0 }, head[16];
    for (uint32_t i = 0; i < N; i++) {
        expect_random(fd, first + i, RPC_MAX_DATA, head);
        assert_memory_not_equal(head, prev, sizeof head);
        memcpy(prev, head, sizeof head);
    }
    assert_true(atomic_load(&hsrv_out_peak) <= bound);
    slot_list_works(fd);
    release_last();
    cl_close(fd);
}

/* Batches of requests with answers of every size (small, around HSRV_OUT_HIGH, 1 MiB), sent
 * while earlier answers are still unread and read a few at a time: every answer comes, in order. */
static void pipelined_with_reads(int fd, CK_SESSION_HANDLE s)
{
    enum { BATCHES = 12, PER = 6 };
    uint32_t first = next_id, sent = 0, got = 0;
    CK_ULONG sizes[BATCHES * PER];
    for (uint32_t i = 0; i < BATCHES * PER; i++)
        sizes[i] = i % 5 == 0 ? RPC_MAX_DATA : i % 5 == 1 ? HSRV_OUT_HIGH - 20 : (i * 7919u) % 300000u;
    for (int b = 0; b < BATCHES; b++) {
        cf_writer w = cf_writer_heap();
        for (int i = 0; i < PER; i++, sent++)
            put_random(&w, next_id++, s, sizes[sent]);
        send_writer_t(fd, &w);
        uint8_t head[16];
        for (uint32_t stop = got + PER / 2 + (uint32_t)(b % 3); got < stop && got < sent; got++)
            expect_random(fd, first + got, sizes[got], head);
    }
    uint8_t head[16];
    for (; got < sent; got++)
        expect_random(fd, first + got, sizes[got], head);
    assert_true(atomic_load(&hsrv_out_peak) <= HSRV_OUT_HIGH + HSRV_FRAME_MAX);
}

/* The same over a Unix socket and over TLS (where decrypted bytes wait inside OpenSSL). */
static void pipelined_with_reads_in_order(void **state)
{
    (void)state;
    cf_tls_ctx *ctx;
    uint16_t port = tls_service(&ctx);
    CK_SLOT_ID slot = make_token("interleave");
    atomic_store(&hsrv_out_peak, 0);
    int u = cl_connect();
    hello(u);
    pipelined_with_reads(u, open_session(u, slot));
    int t = tls_connect(ctx, port);
    hello(t);
    pipelined_with_reads(t, open_session(t, slot));
    slot_list_works(u);
    slot_list_works(t);
    release_last();
    cl_close(u);
    cl_close(t);
    cf_tls_ctx_free(ctx);
}

/* socket_group: the Unix sockets are given to the group. Run as root, the socket is created under
 * another group (setegid) so that only the server's chown can make it the one asked for. An
 * unknown group stops the start with a clear error. */
static void socket_group_applied(void **state)
{
    (void)state;
    struct group *g = getgrgid(getgid());
    assert_non_null(g);
    snprintf(cfg.hsm_socket_group, sizeof cfg.hsm_socket_group, "%s", g->gr_name);
    cfg.hsm_socket_mode = 0660;
    gid_t other = geteuid() == 0 && getgid() != 65534 ? 65534 : (gid_t)-1;
    cofferd_hsm_stop(srv);
    srv = NULL;
    if (other != (gid_t)-1)
        assert_int_equal(setegid(other), 0);
    char err[512] = "";
    cf_err e = cofferd_hsm_start_config(&cfg, &srv, err, sizeof err);
    if (other != (gid_t)-1)
        assert_int_equal(setegid(getgid()), 0);
    assert_int_equal(e, CF_OK);
    struct stat st;
    assert_int_equal(stat(sock_path, &st), 0);
    assert_int_equal(st.st_gid, getgid());
    assert_int_equal(st.st_mode & 0777, 0660);
    if (other == (gid_t)-1)
        print_message("(not root: the socket's group is the daemon's own anyway)\n");
    int fd = cl_connect();
    hello(fd);
    slot_list_works(fd);
    release_last();
    cl_close(fd);

    cofferd_hsm_stop(srv);
    srv = NULL;
    snprintf(cfg.hsm_socket_group, sizeof cfg.hsm_socket_group, "coffer-no-such-group");
    assert_int_equal(cofferd_hsm_start_config(&cfg, &srv, err, sizeof err), CF_E_CONFIG);
    assert_null(srv);
    assert_non_null(strstr(err, "[hsm] socket_group"));
    assert_non_null(strstr(err, "coffer-no-such-group"));
}

static void hsm_config_keys(void **state)
{
    (void)state;
    static cf_config c;
    char err[512];
    cf_config_defaults(&c);
    assert_int_equal(c.hsm_socket_mode, 0600);
    assert_int_equal(c.n_hsm_listen, 0);
    assert_int_equal(cf_config_load_string(&c, "[hsm]\nlisten = unix:run/hsm.sock\nsocket_mode = 0660\n",
                                           "/etc/coffer/coffer.conf", err, sizeof err), CF_OK);
    assert_int_equal(c.hsm_listen[0].kind, CF_LISTEN_UNIX);
    assert_string_equal(c.hsm_listen[0].path, "/etc/coffer/run/hsm.sock");
    assert_int_equal(c.hsm_socket_mode, 0660);
    assert_int_equal(c.n_hsm_listen, 1);
    assert_int_equal(c.hsm_idle_timeout, 3600);
    assert_int_equal(c.hsm_max_connections, 1024);
    assert_int_equal(c.hsm_max_handshakes, 64);
    assert_int_equal(c.hsm_max_sessions, 1024);
    assert_int_equal(c.hsm_max_session_objects, 65536);
    assert_int_equal(c.hsm_workers, 0);
    /* listen is repeatable (a Unix socket and TLS together); the service knobs */
    cf_config_defaults(&c);
    assert_int_equal(cf_config_load_string(&c,
        "[hsm]\nlisten = unix:/run/coffer/hsm.sock\nlisten = tls:*:7000\ncert = s.pem\nkey = s.key\n"
        "client_ca = ca.pem\nsocket_group = coffer\nidle_timeout = 30\nmax_connections = 500\nmax_handshakes = 16\n"
        "workers = 4\nmax_sessions = 5000\nmax_session_objects = 100\n",
        "/etc/coffer/coffer.conf", err, sizeof err), CF_OK);
    assert_int_equal(c.n_hsm_listen, 2);
    assert_int_equal(c.hsm_listen[0].kind, CF_LISTEN_UNIX);
    assert_int_equal(c.hsm_listen[1].kind, CF_LISTEN_TLS);
    assert_int_equal(c.hsm_listen[1].port, 7000);
    assert_string_equal(c.hsm_socket_group, "coffer");
    assert_int_equal(c.hsm_idle_timeout, 30);
    assert_int_equal(c.hsm_max_connections, 500);
    assert_int_equal(c.hsm_max_handshakes, 16);
    assert_int_equal(c.hsm_workers, 4);
    assert_int_equal(c.hsm_max_sessions, 5000);
    assert_int_equal(c.hsm_max_session_objects, 100);
    /* TLS: tls:HOST:PORT with cert, key, client_ca (paths relative to the file's folder) */
    cf_config_defaults(&c);
    assert_int_equal(cf_config_load_string(&c,
        "[hsm]\nlisten = tls:0.0.0.0:7000\ncert = pki/server.pem\nkey = pki/server.key\nclient_ca = pki/ca.pem\n"
        "[client]\nserver = tls:hsm.example:7000\ncert = pki/client.pem\nkey = /k/client.key\nca = pki/ca.pem\n",
        "/etc/coffer/coffer.conf", err, sizeof err), CF_OK);
    assert_int_equal(c.hsm_listen[0].kind, CF_LISTEN_TLS);
    assert_string_equal(c.hsm_listen[0].host, "0.0.0.0");
    assert_int_equal(c.hsm_listen[0].port, 7000);
    assert_string_equal(c.hsm_cert, "/etc/coffer/pki/server.pem");
    assert_string_equal(c.hsm_client_ca, "/etc/coffer/pki/ca.pem");
    assert_int_equal(c.client_server.kind, CF_LISTEN_TLS);
    assert_string_equal(c.client_server.host, "hsm.example");
    assert_string_equal(c.client_key, "/k/client.key");
    assert_string_equal(c.client_ca, "/etc/coffer/pki/ca.pem");
    static const char *const bad_client[] = {
        "[client]\nserver = tls:h:1\n",                                   /* no ca */
        "[client]\nserver = tls:h:1\nca = a\ncert = c\n",                  /* cert without key */
        "[client]\nserver = 127.0.0.1:5000\n",                             /* plaintext TCP */
    };
    for (size_t i = 0; i < sizeof bad_client / sizeof bad_client[0]; i++) {
        cf_config_defaults(&c);
        assert_int_equal(cf_config_load_string(&c, bad_client[i], "/etc/coffer/coffer.conf", err, sizeof err),
                         CF_E_CONFIG);
        assert_non_null(strstr(err, "[client]"));
    }
    static const char *const bad[] = {
        "[hsm]\nlisten = tls:h:1\ncert = c\nkey = k\n", /* no client_ca */
        "[hsm]\nlisten = 127.0.0.1:5000\n", "[hsm]\nlisten = tls:host:5000\n",
        "[hsm]\nsocket_mode = 0800\n", "[hsm]\nsocket_mode = 01777\n", "[hsm]\nsocket_mode = \n",
        "[hsm]\nlisten = unix:a\nlisten = unix:a\n", "[hsm]\nport = 1\n",
        ("[hsm]\nlisten = unix:1\nlisten = unix:2\nlisten = unix:3\nlisten = unix:4\nlisten = unix:5\n"
         "listen = unix:6\nlisten = unix:7\nlisten = unix:8\nlisten = unix:9\n"), /* 9 > CF_HSM_LISTEN_MAX */
        "[hsm]\nsocket_group = \n", "[hsm]\nsocket_group = a b\n", "[hsm]\nidle_timeout = -1\n",
        "[hsm]\nmax_connections = 0\n", "[hsm]\nmax_handshakes = 0\n", "[hsm]\nworkers = 1000\n",
        "[hsm]\nmax_connections = 0\n", "[hsm]\nworkers = 1000\n", "[hsm]\nmax_sessions = 0\n",
        "[hsm]\nmax_sessions = 262145\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cf_config_defaults(&c);
        assert_int_equal(cf_config_load_string(&c, bad[i], "/etc/coffer/coffer.conf", err, sizeof err), CF_E_CONFIG);
        assert_non_null(strstr(err, "[hsm]"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(token_keypair_sign_verify, setup, down),
        cmocka_unit_test_setup_teardown(token_calls_name_the_application, setup, down),
        cmocka_unit_test_setup_teardown(login_is_per_connection, setup, down),
        cmocka_unit_test_setup_teardown(bad_version_refused, setup, down),
        cmocka_unit_test_setup_teardown(protocol_errors_close_only_their_connection, setup, down),
        cmocka_unit_test_setup_teardown(socket_mode_applied, setup, down),
        cmocka_unit_test_setup_teardown(application_joins_by_token, setup, down),
        cmocka_unit_test_setup_teardown(pipelined_requests_in_order, setup, down),
        cmocka_unit_test_setup_teardown(many_connections, setup, down),
        cmocka_unit_test_setup_teardown(stalled_peer_does_not_block, setup, down),
        cmocka_unit_test_setup_teardown(idle_timeout_closes_idle_connections, setup, down),
        cmocka_unit_test_setup_teardown(max_connections_refused, setup, down),
        cmocka_unit_test_setup_teardown(max_sessions_per_application, setup, down),
        cmocka_unit_test_setup_teardown(two_listeners_served, setup, down),
        cmocka_unit_test_setup_teardown(unix_and_tls_listeners, setup, down),
        cmocka_unit_test_setup_teardown(handshakes_have_their_own_limit, setup, down),
        cmocka_unit_test_setup_teardown(unread_answers_stay_bounded, setup, down),
        cmocka_unit_test_setup_teardown(pipelined_with_reads_in_order, setup, down),
        cmocka_unit_test_setup_teardown(socket_group_applied, setup, down),
        cmocka_unit_test(hsm_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
