/* daemon_hsm_test.c: cofferd's remote-HSM service (src/daemon/hsm_server.c) end to end over a
 * Unix socket: the server runs in this process on a temporary socket, against the real token
 * engine; the client side is a raw socket speaking frames made with the rpc codec. Covers the
 * handshake (and a refused major version), a token initialized, a P-256 key pair generated, a
 * signature made and verified remotely, session ownership per connection, login state per
 * connection (each is one application), protocol errors that close only their own connection,
 * and sessions closed when their connection ends.
 *
 * cofferd is an executable: its hsm_server.c is compiled into this test. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/hsm_server.c"
#include "hsm_harness.h"

static cofferd_hsm *srv;
static char sock_path[CF_SOCK_PATH_MAX];

static int setup(void **state)
{
    (void)state;
    hsm_env_setup("/tmp/coffer-dhsm-XXXXXX", 0);
    cf_listen l;
    char problem[160], err[256];
    assert_int_equal(cf_config_parse_listen("unix:hsm.sock", true, dir, &l, problem, sizeof problem), CF_OK);
    memcpy(sock_path, l.path, sizeof sock_path);
    assert_int_equal(cofferd_hsm_start(&l, 0600, &srv, err, sizeof err), CF_OK);
    return 0;
}

static int down(void **state)
{
    cofferd_hsm_stop(srv);
    srv = NULL;
    return teardown(state);
}

/* ---- a raw client ------------------------------------------------------------------------------ */
static int cl_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, sock_path, sizeof sa.sun_path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_bytes(int fd, const void *p, size_t n)
{
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
    ssize_t k = recv(fd, &b, 1, 0);
    /* a server that closes with our bytes unread makes the kernel reset the connection */
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

static void hello(int fd)
{
    rpc_hello h = rpc_hello_self();
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_hello(&w, RPC_HELLO, &h), CF_OK);
    send_writer_t(fd, &w);
    uint8_t *buf;
    rpc_frame f;
    assert_true(recv_frame(fd, &buf, &f));
    assert_int_equal(f.type, RPC_HELLO_OK);
    assert_int_equal(rpc_decode_hello(&f, &h), CF_OK);
    assert_int_equal(h.major, RPC_VERSION_MAJOR);
    free(buf);
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
    assert_int_equal(c.hsm_workers, 0);
    /* listen is repeatable (a Unix socket and TLS together); the service knobs */
    cf_config_defaults(&c);
    assert_int_equal(cf_config_load_string(&c,
        "[hsm]\nlisten = unix:/run/coffer/hsm.sock\nlisten = tls:*:7000\ncert = s.pem\nkey = s.key\n"
        "client_ca = ca.pem\nsocket_group = coffer\nidle_timeout = 30\nmax_connections = 500\nworkers = 4\n",
        "/etc/coffer/coffer.conf", err, sizeof err), CF_OK);
    assert_int_equal(c.n_hsm_listen, 2);
    assert_int_equal(c.hsm_listen[0].kind, CF_LISTEN_UNIX);
    assert_int_equal(c.hsm_listen[1].kind, CF_LISTEN_TLS);
    assert_int_equal(c.hsm_listen[1].port, 7000);
    assert_string_equal(c.hsm_socket_group, "coffer");
    assert_int_equal(c.hsm_idle_timeout, 30);
    assert_int_equal(c.hsm_max_connections, 500);
    assert_int_equal(c.hsm_workers, 4);
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
        "[hsm]\nlisten = unix:1\nlisten = unix:2\nlisten = unix:3\nlisten = unix:4\nlisten = unix:5\n"
        "listen = unix:6\nlisten = unix:7\nlisten = unix:8\nlisten = unix:9\n",
        "[hsm]\nsocket_group = \n", "[hsm]\nsocket_group = a b\n", "[hsm]\nidle_timeout = -1\n",
        "[hsm]\nmax_connections = 0\n", "[hsm]\nworkers = 1000\n",
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
        cmocka_unit_test_setup_teardown(login_is_per_connection, setup, down),
        cmocka_unit_test_setup_teardown(bad_version_refused, setup, down),
        cmocka_unit_test_setup_teardown(protocol_errors_close_only_their_connection, setup, down),
        cmocka_unit_test_setup_teardown(socket_mode_applied, setup, down),
        cmocka_unit_test(hsm_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
