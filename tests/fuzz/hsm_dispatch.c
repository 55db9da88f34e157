/* hsm_dispatch.c: libFuzzer harness for what a connected client can make cofferd do: request
 * frames through hsrv_dispatch (src/daemon/hsm_dispatch.c) into the token engine, as a
 * connection past its HELLO does. The frame codec has its own harness (rpc_frame.c); this one is
 * about the handlers and the engine behind them: output buffers sized by the client, handles of
 * other sessions, operations in every state, leases, finds.
 *
 * Setup once: a store in a temporary folder with a token (both PINs set, PBKDF2 at 1000
 * iterations so that logins are cheap) and cofferd's lease time. Each input runs against a fresh
 * application (as a new client process): a user session opened and logged in through the
 * dispatch, a P-256 key pair and an AES key as session objects; the application ends after the
 * input, closing what it opened. Token objects the input creates stay (a longer-lived store).
 *
 * Input: up to 16 requests, each u16 length (big-endian) then the payload of a REQUEST frame
 * (u32 function, arguments; docs/protocol.md). A payload that decodes has its ULONG arguments
 * below 5 replaced by the setup's values before it is sent (0 the session, 1 the private key, 2
 * the public key, 3 the AES key, 4 the slot), so that inputs reach past the handle checks; one
 * that does not decode goes as it is. Checks: no crash, no sanitizer report, every answer is a
 * RESPONSE or ERROR frame that decodes, of the request's id.
 *
 * Built with -DHSM_DISPATCH_CORPUS instead, this file writes seed inputs into argv[1]:
 *   cc -DHSM_DISPATCH_CORPUS -D_GNU_SOURCE -Isrc -I/usr/include/p11-kit-1 tests/fuzz/hsm_dispatch.c \
 *      $(ls src/rpc/[a-z]*.c | grep -v -e client -e pool -e lease -e found) src/base/bytes.c \
 *      src/base/error.c src/base/secmem.c -o gen && ./gen tests/fuzz/corpus/hsm_dispatch */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hsm/hsm.h"
#include "rpc/rpc.h"

enum { K_SESSION, K_PRIV, K_PUB, K_AES, K_SLOT, K_COUNT };
#define MAX_REQUESTS 16

#ifndef HSM_DISPATCH_CORPUS
#include "daemon/hsm_dispatch.c"
#include "daemon/hsm_registry.c"

static const uint8_t SO_PIN[] = "so-secret", USER_PIN[] = "user-pin";
static CK_SLOT_ID g_slot;
static char g_dir[64];   /* the store's folder, removed at exit */
static hsrv_registry g_reg;
static CK_ULONG g_known[K_COUNT];

static void die(const char *what)
{
    fprintf(stderr, "hsm_dispatch: setup failed: %s\n", what);
    abort();
}

/* Sends one encoded request frame through hsrv_dispatch; the decoded reply into *rp (arena ar), or
 * false. Checks the answer's shape. */
static bool send_frame(hsrv_app *app, const uint8_t *frame, size_t len, uint32_t id, rpc_reply *rp, rpc_arena *ar)
{
    cf_reader r = cf_reader_init(frame, len);
    rpc_frame f;
    if (rpc_frame_parse(&r, &f) != CF_OK)
        return false;
    cf_writer out = cf_writer_heap();
    (void)hsrv_dispatch(app, &f, &out);
    bool got = false;
    if (cf_writer_status(&out) == CF_OK && out.len > 0) {
        cf_reader ar2 = cf_reader_init(out.p, out.len);
        rpc_frame a;
        if (rpc_frame_parse(&ar2, &a) != CF_OK || a.id != id || (a.type != RPC_RESPONSE && a.type != RPC_ERROR))
            abort();   /* cofferd answered something that is not an answer to this request */
        if (a.type == RPC_RESPONSE) {
            if (rpc_decode_response(&a, rp, ar) != CF_OK)
                abort();
            got = true;
        }
    }
    cf_writer_free(&out);
    return got;
}

/* A call of the setup: encoded, dispatched, its status (and outputs in *rp). */
static cf_err setup_call(hsrv_app *app, const rpc_call *c, rpc_reply *rp, rpc_arena *ar)
{
    cf_writer w = cf_writer_heap();
    if (rpc_encode_request(&w, 1, c) != CF_OK)
        die("encode");
    bool got = send_frame(app, w.p, w.len, 1, rp, ar);
    cf_writer_free(&w);
    return got ? rp->status : CF_E_INTERNAL;
}

static void remove_store(void)
{
    char cmd[128];
    if (!g_dir[0])
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "hsm_dispatch: could not remove %s\n", g_dir);
    g_dir[0] = '\0';
}

static void make_store(void)
{
    char path[300], err[256];
    char *dir = g_dir;
    snprintf(g_dir, sizeof g_dir, "/tmp/coffer-fuzz-dispatch-XXXXXX");
    if (!mkdtemp(g_dir))
        die("mkdtemp");
    snprintf(path, sizeof path, "%s/coffer.conf", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        die("config");
    fprintf(f, "[store]\ndir = %s/store\n[token]\npbkdf2_iterations = 1000\nuser_pin_max_tries = 1000\n", dir);
    fclose(f);
    setenv("COFFER_CONF", path, 1);
    if (hsm_initialize(err, sizeof err) != CF_OK)
        die(err);
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    if (hsm_get_slot_list(true, slots, &n) != CF_OK || n == 0)
        die("slots");
    g_slot = slots[0];
    uint8_t label[32];
    memset(label, ' ', sizeof label);
    memcpy(label, "fuzz", 4);
    CK_SESSION_HANDLE s;
    if (hsm_init_token(g_slot, SO_PIN, sizeof SO_PIN - 1, label) != CF_OK ||
        hsm_open_session(g_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &s) != CF_OK ||
        hsm_login(s, CKU_SO, SO_PIN, sizeof SO_PIN - 1) != CF_OK ||
        hsm_init_pin(s, USER_PIN, sizeof USER_PIN - 1) != CF_OK || hsm_close_session(s) != CF_OK)
        die("token");
    hsrv_registry_init(&g_reg, 1024);
    hsrv_set_lease_ms(250);
}

/* A new application with a logged-in session and its keys in g_known; NULL when the user PIN no
 * longer works (an input changed or locked it: the caller starts a new store). */
static hsrv_app *new_app(void)
{
    hsrv_peer peer = { .kind = HSRV_PEER_UNIX };
    hsrv_app *app;
    bool joined;
    if (hsrv_registry_enter(&g_reg, &peer, RPC_VERSION_MINOR, NULL, &app, &joined) != CF_OK)
        die("application");
    rpc_arena ar = RPC_ARENA_INIT;
    rpc_reply rp;
    rpc_call c = { .fn = RPC_FN_OPEN_SESSION };
    c.arg[0].ul = g_slot;
    c.arg[1].ul = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    if (setup_call(app, &c, &rp, &ar) != CF_OK)
        die("open session");
    g_known[K_SESSION] = rp.out[0].ul;
    g_known[K_SLOT] = g_slot;
    c = (rpc_call){ .fn = RPC_FN_LOGIN };
    c.arg[0].ul = g_known[K_SESSION];
    c.arg[1].ul = CKU_USER;
    c.arg[2].bytes.p = USER_PIN;
    c.arg[2].bytes.len = sizeof USER_PIN - 1;
    cf_err rv = setup_call(app, &c, &rp, &ar);
    if (rv != CF_OK && rv != CF_E_USER_ALREADY_LOGGED_IN) {
        rpc_arena_free(&ar);
        hsrv_registry_leave(&g_reg, app);
        return NULL;
    }
    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE;
    CK_ULONG len = 32;
    CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_VERIFY, &yes, 1 } };
    CK_ATTRIBUTE priv[] = { { CKA_SIGN, &yes, 1 } };
    CK_ATTRIBUTE aes[] = { { CKA_VALUE_LEN, &len, sizeof len }, { CKA_ENCRYPT, &yes, 1 }, { CKA_DECRYPT, &yes, 1 } };
    c = (rpc_call){ .fn = RPC_FN_GENERATE_KEY_PAIR };
    c.arg[0].ul = g_known[K_SESSION];
    c.arg[1].mech = (CK_MECHANISM){ CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    c.arg[2].tmpl.attrs = pub;
    c.arg[2].tmpl.count = 2;
    c.arg[3].tmpl.attrs = priv;
    c.arg[3].tmpl.count = 1;
    if (setup_call(app, &c, &rp, &ar) != CF_OK)
        die("key pair");
    g_known[K_PUB] = rp.out[0].ul;
    g_known[K_PRIV] = rp.out[1].ul;
    c = (rpc_call){ .fn = RPC_FN_GENERATE_KEY };
    c.arg[0].ul = g_known[K_SESSION];
    c.arg[1].mech = (CK_MECHANISM){ CKM_AES_KEY_GEN, NULL, 0 };
    c.arg[2].tmpl.attrs = aes;
    c.arg[2].tmpl.count = 3;
    if (setup_call(app, &c, &rp, &ar) != CF_OK)
        die("aes key");
    g_known[K_AES] = rp.out[0].ul;
    rpc_arena_free(&ar);
    return app;
}

/* One request of the input: decoded, its small ULONGs made the setup's, sent again; or sent as
 * it is when it does not decode. */
static void one_request(hsrv_app *app, const uint8_t *payload, size_t n, uint32_t id)
{
    cf_writer raw = cf_writer_heap();
    cf_put_u32(&raw, (uint32_t)(n + RPC_HEADER_LEN - 4));
    cf_put_u8(&raw, RPC_REQUEST);
    cf_put_u32(&raw, id);
    cf_put_bytes(&raw, payload, n);
    if (cf_writer_status(&raw) != CF_OK)
        abort();
    cf_reader r = cf_reader_init(raw.p, raw.len);
    rpc_frame f;
    rpc_arena ar = RPC_ARENA_INIT;
    rpc_call c;
    rpc_reply rp;
    cf_writer w = cf_writer_heap();
    const rpc_fn *fn;
    if (rpc_frame_parse(&r, &f) == CF_OK && rpc_decode_request(&f, &c, &ar) == CF_OK &&
        (fn = rpc_fn_find(c.fn)) != NULL) {
        for (size_t i = 0; i < RPC_MAX_ARGS && fn->args[i] != RPC_T_END; i++)
            if (fn->args[i] == RPC_T_ULONG && c.arg[i].ul < K_COUNT)
                c.arg[i].ul = g_known[c.arg[i].ul];
        if (rpc_encode_request(&w, id, &c) == CF_OK && send_frame(app, w.p, w.len, id, &rp, &ar) &&
            getenv("HSM_DISPATCH_TRACE"))
            fprintf(stderr, "%s -> %s\n", fn->name, cf_err_name(rp.status));
    } else {
        (void)send_frame(app, raw.p, raw.len, id, &rp, &ar);
    }
    cf_writer_free(&w);
    rpc_arena_free(&ar);
    cf_writer_free(&raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        make_store();
        atexit(remove_store);
        ready = true;
    }
    hsrv_app *app = new_app();
    if (!app) {   /* the user PIN was changed or locked: a fresh store */
        hsrv_registry_destroy(&g_reg);
        (void)hsm_finalize();
        remove_store();
        make_store();
        app = new_app();
        if (!app)
            die("application after a new store");
    }
    cf_reader r = cf_reader_init(data, size);
    for (uint32_t id = 2; id < 2 + MAX_REQUESTS; id++) {
        uint16_t n;
        const uint8_t *p;
        if (cf_get_u16(&r, &n) != CF_OK || cf_get_view(&r, &p, n) != CF_OK)
            break;
        one_request(app, p, n, id);
    }
    hsrv_registry_leave(&g_reg, app);
    return 0;
}

#else /* HSM_DISPATCH_CORPUS: seed inputs, made by the real encoder */
static void add(cf_writer *in, const rpc_call *c)
{
    cf_writer w = cf_writer_heap();
    if (rpc_encode_request(&w, 1, c) != CF_OK)
        abort();
    cf_put_u16(in, (uint16_t)(w.len - RPC_HEADER_LEN));
    cf_put_bytes(in, w.p + RPC_HEADER_LEN, w.len - RPC_HEADER_LEN);
    cf_writer_free(&w);
}

static void put(const char *dir, const char *name, cf_writer *in)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(in->p, 1, in->len, f) != in->len)
        abort();
    fclose(f);
    in->len = 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    static uint8_t data[32] = { 1, 2, 3 };
    cf_writer in = cf_writer_heap();
    rpc_call c;

    /* sign, verify (lease path), the length query and a short buffer */
    c = (rpc_call){ .fn = RPC_FN_OP_INIT };
    c.arg[0].ul = K_SESSION;
    c.arg[1].ul = HSM_OP_SIGN;
    c.arg[2].mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
    c.arg[3].ul = K_PRIV;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_OP_ONESHOT_LEASE };
    c.arg[0].ul = K_SESSION;
    c.arg[1].ul = HSM_OP_SIGN;
    c.arg[2].bytes.p = data;
    c.arg[2].bytes.len = sizeof data;
    c.arg[3].outbuf.present = true;
    c.arg[3].outbuf.cap = 10;
    add(&in, &c);
    c.arg[3].outbuf.cap = 64;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_REARM_VERIFY };
    c.arg[0].ul = K_SESSION;
    c.arg[1].mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
    c.arg[2].ul = K_PUB;
    c.arg[3].bytes.p = data;
    c.arg[3].bytes.len = sizeof data;
    c.arg[4].bytes.p = data;
    c.arg[4].bytes.len = 64;
    add(&in, &c);
    put(argv[1], "sign-verify", &in);

    /* AES-CBC-PAD encrypt in parts, then a destroy of the key mid-operation */
    c = (rpc_call){ .fn = RPC_FN_OP_INIT };
    c.arg[0].ul = K_SESSION;
    c.arg[1].ul = HSM_OP_ENCRYPT;
    c.arg[2].mech = (CK_MECHANISM){ CKM_AES_CBC_PAD, data, 16 };
    c.arg[3].ul = K_AES;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_OP_UPDATE };
    c.arg[0].ul = K_SESSION;
    c.arg[1].ul = HSM_OP_ENCRYPT;
    c.arg[2].bytes.p = data;
    c.arg[2].bytes.len = 20;
    c.arg[3].outbuf.present = true;
    c.arg[3].outbuf.cap = 32;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_DESTROY_OBJECT };
    c.arg[0].ul = K_SESSION;
    c.arg[1].ul = K_AES;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_OP_FINAL };
    c.arg[0].ul = K_SESSION;
    c.arg[1].ul = HSM_OP_ENCRYPT;
    c.arg[2].outbuf.present = true;
    c.arg[2].outbuf.cap = 32;
    add(&in, &c);
    put(argv[1], "encrypt-destroy", &in);

    /* finds: fetch, page, final; attributes of the private key */
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls } };
    c = (rpc_call){ .fn = RPC_FN_FIND_OBJECTS_FETCH };
    c.arg[0].ul = K_SESSION;
    c.arg[1].tmpl.attrs = t;
    c.arg[1].tmpl.count = 1;
    c.arg[2].ul = 1;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_FIND_OBJECTS };
    c.arg[0].ul = K_SESSION;
    c.arg[1].ul = 8;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_FIND_OBJECTS_FINAL };
    c.arg[0].ul = K_SESSION;
    add(&in, &c);
    rpc_query_item q[] = { { CKA_EC_POINT, false, 0 }, { CKA_VALUE, true, 32 }, { CKA_LABEL, true, 0 } };
    c = (rpc_call){ .fn = RPC_FN_GET_ATTRIBUTE_VALUE };
    c.arg[0].ul = K_SESSION;
    c.arg[1].ul = K_PRIV;
    c.arg[2].query.items = q;
    c.arg[2].query.count = 3;
    add(&in, &c);
    put(argv[1], "find-attrs", &in);

    /* wrap the AES key with itself, a logout with an operation active, a closed session */
    c = (rpc_call){ .fn = RPC_FN_WRAP_KEY };
    c.arg[0].ul = K_SESSION;
    c.arg[1].mech = (CK_MECHANISM){ CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    c.arg[2].ul = K_AES;
    c.arg[3].ul = K_AES;
    c.arg[4].outbuf.present = true;
    c.arg[4].outbuf.cap = 64;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_LOGOUT };
    c.arg[0].ul = K_SESSION;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_CLOSE_SESSION };
    c.arg[0].ul = K_SESSION;
    add(&in, &c);
    c = (rpc_call){ .fn = RPC_FN_GET_SESSION_INFO };
    c.arg[0].ul = K_SESSION;
    add(&in, &c);
    put(argv[1], "wrap-logout-close", &in);
    cf_writer_free(&in);
    return 0;
}
#endif
