/* hsm_server.c: see hsm_server.h. The dispatch is one table from the rpc function code to a small
 * handler that runs the matching hsm_* call; the codec (src/rpc) does all decoding and encoding.
 *
 * Per connection: the frames are read one at a time (read 4 bytes, rpc_frame_size, read the rest),
 * the first must be HELLO, every later one a REQUEST. A frame that cannot be parsed, or a REQUEST
 * that cannot be decoded, is answered with ERROR FORMAT (when possible) and closes the connection;
 * an unknown function code is answered with ERROR NOT_SUPPORTED and the connection stays up.
 * Frames, decoded arguments and output buffers may hold PINs or secrets: all are wiped after use.
 *
 * Session ownership: a connection may only name the session handles it opened itself (any other
 * handle is SESSION_HANDLE_INVALID), and CLOSE_ALL_SESSIONS closes only its own sessions of that
 * slot. The engine's handles are never reused, so a stale entry cannot name another's session.
 *
 * Login state: each connection is one PKCS#11 application with its own application id in the
 * engine, so a login made over one connection is not shared with any other; when the connection
 * ends, hsm_app_end closes its sessions and logs it out. */
#include "daemon/hsm_server.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "base/log.h"
#include "base/secmem.h"
#include "crypto/crypto.h"
#include "hsm/hsm.h"
#include "rpc/rpc.h"

/* ---- one connection's state --------------------------------------------------------------- */
typedef struct {
    CK_SESSION_HANDLE h;
    CK_SLOT_ID slot;
} owned_session;

typedef struct {
    uint64_t app;           /* this connection's application id (login state is per application) */
    owned_session *s;
    size_t n, cap;
} hconn;

/* Application ids: one per connection, never reused (0 is the daemon's own in-process one). */
static atomic_uint_fast64_t next_app = 1;

static bool owns(const hconn *c, CK_SESSION_HANDLE h)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->s[i].h == h)
            return true;
    return false;
}

static cf_err track(hconn *c, CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        owned_session *p = realloc(c->s, cap * sizeof *p);
        if (!p)
            return CF_E_NOMEM;
        c->s = p;
        c->cap = cap;
    }
    c->s[c->n++] = (owned_session){ h, slot };
    return CF_OK;
}

static void untrack(hconn *c, size_t i)
{
    c->s[i] = c->s[--c->n];
}

/* ---- handlers: a = arguments, o = outputs (table order), ar = per-request memory ------------- */
typedef cf_err (*handler)(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar);

/* The application's output buffer of capacity ob (in elements of elem bytes), capped at
 * RPC_MAX_DATA bytes; *p NULL for a length query (absent buffer). */
static cf_err outbuf(rpc_arena *ar, const rpc_value *ob, size_t elem, void **p, CK_ULONG *len)
{
    CK_ULONG max = RPC_MAX_DATA / elem;
    *len = ob->outbuf.cap > max ? max : ob->outbuf.cap;
    *p = NULL;
    if (!ob->outbuf.present)
        return CF_OK;
    *p = rpc_arena_alloc(ar, (size_t)*len * elem + 1);
    return *p ? CF_OK : CF_E_NOMEM;
}

/* DATA / LIST answers: bytes travel only when the call produced them. */
static cf_err data_out(rpc_value *o, cf_err rv, const void *p, CK_ULONG len)
{
    o->data.len = len;
    o->data.p = rv == CF_OK ? p : NULL;
    return rv;
}

static cf_err list_out(rpc_value *o, cf_err rv, CK_ULONG *v, CK_ULONG count)
{
    o->list.count = count;
    o->list.v = rv == CF_OK ? v : NULL;
    return rv;
}

static cf_err h_get_slot_list(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[1], sizeof(CK_ULONG), &p, &n));
    cf_err rv = hsm_get_slot_list(a[0].ul != 0, p, &n);
    return list_out(&o[0], rv, p, n);
}

static cf_err h_get_slot_info(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_slot_info(a[0].ul, &o[0].slot_info);
}

static cf_err h_get_token_info(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_token_info(a[0].ul, &o[0].token_info);
}

static cf_err h_get_mechanism_list(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[1], sizeof(CK_ULONG), &p, &n));
    cf_err rv = hsm_get_mechanism_list(a[0].ul, p, &n);
    return list_out(&o[0], rv, p, n);
}

static cf_err h_get_mechanism_info(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_mechanism_info(a[0].ul, a[1].ul, &o[0].mech_info);
}

static cf_err h_init_token(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_init_token(a[0].ul, a[1].bytes.p, a[1].bytes.len, a[2].bytes.p);
}

static cf_err h_init_pin(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_init_pin(a[0].ul, a[1].bytes.p, a[1].bytes.len);
}

static cf_err h_set_pin(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_set_pin(a[0].ul, a[1].bytes.p, a[1].bytes.len, a[2].bytes.p, a[2].bytes.len);
}

static cf_err h_delete_token(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_delete_token(a[0].ul, a[1].bytes.p, a[1].bytes.len);
}

static cf_err h_pin_tries_left(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_pin_tries_left(a[0].ul, a[1].ul, &o[0].ul);
}

static cf_err h_open_session(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)ar;
    CK_SESSION_HANDLE h;
    CF_TRY(hsm_open_session_app(c->app, a[0].ul, a[1].ul, &h));
    if (track(c, h, a[0].ul) != CF_OK) {
        (void)hsm_close_session(h);
        return CF_E_NOMEM;
    }
    o[0].ul = h;
    return CF_OK;
}

static cf_err h_close_session(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)o, (void)ar;
    cf_err rv = hsm_close_session(a[0].ul);
    for (size_t i = 0; i < c->n; i++)
        if (c->s[i].h == a[0].ul)
            untrack(c, i);
    return rv;
}

/* Only this connection's sessions of the slot: the others belong to other applications. */
static cf_err h_close_all_sessions(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)o, (void)ar;
    CF_TRY(hsm_close_all_sessions_app(c->app, a[0].ul));
    for (size_t i = c->n; i-- > 0;)
        if (c->s[i].slot == a[0].ul)
            untrack(c, i);
    return CF_OK;
}

static cf_err h_get_session_info(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_session_info(a[0].ul, &o[0].session_info);
}

static cf_err h_login(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_login(a[0].ul, a[1].ul, a[2].bytes.p, a[2].bytes.len);
}

static cf_err h_logout(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_logout(a[0].ul);
}

static cf_err h_create_object(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_create_object(a[0].ul, a[1].tmpl.attrs, a[1].tmpl.count, &o[0].ul);
}

static cf_err h_copy_object(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_copy_object(a[0].ul, a[1].ul, a[2].tmpl.attrs, a[2].tmpl.count, &o[0].ul);
}

static cf_err h_destroy_object(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_destroy_object(a[0].ul, a[1].ul);
}

static cf_err h_get_object_size(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_object_size(a[0].ul, a[1].ul, &o[0].ul);
}

/* Every queried attribute gets a buffer of its capacity; all of them together at most
 * RPC_MAX_DATA bytes (a later attribute past the budget sees a short buffer). */
static cf_err h_get_attribute_value(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    CK_ULONG n = a[2].query.count;
    CK_ATTRIBUTE *t = rpc_arena_alloc(ar, (n ? n : 1) * sizeof *t);
    if (!t)
        return CF_E_NOMEM;
    size_t budget = RPC_MAX_DATA;
    for (CK_ULONG i = 0; i < n; i++) {
        const rpc_query_item *q = &a[2].query.items[i];
        t[i].type = q->type;
        t[i].ulValueLen = q->cap;
        if (q->has_buf) {
            size_t cap = q->cap > budget ? budget : q->cap;
            budget -= cap;
            t[i].ulValueLen = cap;
            if (!(t[i].pValue = rpc_arena_alloc(ar, cap + 1)))
                return CF_E_NOMEM;
        }
    }
    cf_err rv = hsm_get_attribute_value(a[0].ul, a[1].ul, t, n);
    o[0].tmpl.attrs = t;
    o[0].tmpl.count = n;
    return rv;
}

static cf_err h_set_attribute_value(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_set_attribute_value(a[0].ul, a[1].ul, a[2].tmpl.attrs, a[2].tmpl.count);
}

static cf_err h_find_objects_init(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_find_objects_init(a[0].ul, a[1].tmpl.attrs, a[1].tmpl.count);
}

static cf_err h_find_objects(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    CK_ULONG max = a[1].ul > RPC_MAX_DATA / 8 ? RPC_MAX_DATA / 8 : a[1].ul, n = 0;
    CK_OBJECT_HANDLE *v = rpc_arena_alloc(ar, (max + 1) * sizeof *v);
    if (!v)
        return CF_E_NOMEM;
    cf_err rv = hsm_find_objects(a[0].ul, v, max, &n);
    return list_out(&o[0], rv, v, n);
}

static cf_err h_find_objects_final(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_find_objects_final(a[0].ul);
}

static cf_err h_op_init(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_op_init(a[0].ul, (hsm_op_kind)a[1].ul, &a[2].mech, a[3].ul);
}

static cf_err h_op_oneshot(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[3], 1, &p, &n));
    cf_err rv = hsm_op_oneshot(a[0].ul, (hsm_op_kind)a[1].ul, a[2].bytes.p, a[2].bytes.len, p, &n);
    return data_out(&o[0], rv, p, n);
}

static cf_err h_op_update(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    hsm_op_kind kind = (hsm_op_kind)a[1].ul;
    if (kind != HSM_OP_ENCRYPT && kind != HSM_OP_DECRYPT)
        return data_out(&o[0], hsm_op_update(a[0].ul, kind, a[2].bytes.p, a[2].bytes.len, NULL, NULL), NULL, 0);
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[3], 1, &p, &n));
    cf_err rv = hsm_op_update(a[0].ul, kind, a[2].bytes.p, a[2].bytes.len, p, &n);
    return data_out(&o[0], rv, p, n);
}

static cf_err h_op_final(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[2], 1, &p, &n));
    cf_err rv = hsm_op_final(a[0].ul, (hsm_op_kind)a[1].ul, p, &n);
    return data_out(&o[0], rv, p, n);
}

static cf_err h_verify(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_verify(a[0].ul, a[1].bytes.p, a[1].bytes.len, a[2].bytes.p, a[2].bytes.len);
}

static cf_err h_verify_final(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_verify_final(a[0].ul, a[1].bytes.p, a[1].bytes.len);
}

static cf_err h_op_abort(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    hsm_op_abort(a[0].ul, (hsm_op_kind)a[1].ul);
    return CF_OK;
}

static cf_err h_digest_key(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_digest_key(a[0].ul, a[1].ul);
}

static cf_err h_generate_key(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_generate_key(a[0].ul, &a[1].mech, a[2].tmpl.attrs, a[2].tmpl.count, &o[0].ul);
}

static cf_err h_generate_key_pair(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_generate_key_pair(a[0].ul, &a[1].mech, a[2].tmpl.attrs, a[2].tmpl.count, a[3].tmpl.attrs,
                                 a[3].tmpl.count, &o[0].ul, &o[1].ul);
}

static cf_err h_wrap_key(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[4], 1, &p, &n));
    cf_err rv = hsm_wrap_key(a[0].ul, &a[1].mech, a[2].ul, a[3].ul, p, &n);
    return data_out(&o[0], rv, p, n);
}

static cf_err h_unwrap_key(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_unwrap_key(a[0].ul, &a[1].mech, a[2].ul, a[3].bytes.p, a[3].bytes.len, a[4].tmpl.attrs,
                          a[4].tmpl.count, &o[0].ul);
}

static cf_err h_derive_key(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_derive_key(a[0].ul, &a[1].mech, a[2].ul, a[3].tmpl.attrs, a[3].tmpl.count, &o[0].ul);
}

static cf_err h_generate_random(hconn *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    if (a[1].ul > RPC_MAX_DATA)
        return CF_E_ARGS;
    uint8_t *p = rpc_arena_alloc(ar, (size_t)a[1].ul + 1);
    if (!p)
        return CF_E_NOMEM;
    cf_err rv = hsm_generate_random(a[0].ul, p, (size_t)a[1].ul);
    return data_out(&o[0], rv, p, a[1].ul);
}

/* session: argument 0 is a session handle that must be this connection's. */
static const struct {
    handler fn;
    bool session;
} dispatch[] = {
    [RPC_FN_GET_SLOT_LIST] = { h_get_slot_list, false },
    [RPC_FN_GET_SLOT_INFO] = { h_get_slot_info, false },
    [RPC_FN_GET_TOKEN_INFO] = { h_get_token_info, false },
    [RPC_FN_GET_MECHANISM_LIST] = { h_get_mechanism_list, false },
    [RPC_FN_GET_MECHANISM_INFO] = { h_get_mechanism_info, false },
    [RPC_FN_INIT_TOKEN] = { h_init_token, false },
    [RPC_FN_INIT_PIN] = { h_init_pin, true },
    [RPC_FN_SET_PIN] = { h_set_pin, true },
    [RPC_FN_DELETE_TOKEN] = { h_delete_token, false },
    [RPC_FN_PIN_TRIES_LEFT] = { h_pin_tries_left, false },
    [RPC_FN_OPEN_SESSION] = { h_open_session, false },
    [RPC_FN_CLOSE_SESSION] = { h_close_session, true },
    [RPC_FN_CLOSE_ALL_SESSIONS] = { h_close_all_sessions, false },
    [RPC_FN_GET_SESSION_INFO] = { h_get_session_info, true },
    [RPC_FN_LOGIN] = { h_login, true },
    [RPC_FN_LOGOUT] = { h_logout, true },
    [RPC_FN_CREATE_OBJECT] = { h_create_object, true },
    [RPC_FN_COPY_OBJECT] = { h_copy_object, true },
    [RPC_FN_DESTROY_OBJECT] = { h_destroy_object, true },
    [RPC_FN_GET_OBJECT_SIZE] = { h_get_object_size, true },
    [RPC_FN_GET_ATTRIBUTE_VALUE] = { h_get_attribute_value, true },
    [RPC_FN_SET_ATTRIBUTE_VALUE] = { h_set_attribute_value, true },
    [RPC_FN_FIND_OBJECTS_INIT] = { h_find_objects_init, true },
    [RPC_FN_FIND_OBJECTS] = { h_find_objects, true },
    [RPC_FN_FIND_OBJECTS_FINAL] = { h_find_objects_final, true },
    [RPC_FN_OP_INIT] = { h_op_init, true },
    [RPC_FN_OP_ONESHOT] = { h_op_oneshot, true },
    [RPC_FN_OP_UPDATE] = { h_op_update, true },
    [RPC_FN_OP_FINAL] = { h_op_final, true },
    [RPC_FN_VERIFY] = { h_verify, true },
    [RPC_FN_VERIFY_FINAL] = { h_verify_final, true },
    [RPC_FN_OP_ABORT] = { h_op_abort, true },
    [RPC_FN_DIGEST_KEY] = { h_digest_key, true },
    [RPC_FN_GENERATE_KEY] = { h_generate_key, true },
    [RPC_FN_GENERATE_KEY_PAIR] = { h_generate_key_pair, true },
    [RPC_FN_WRAP_KEY] = { h_wrap_key, true },
    [RPC_FN_UNWRAP_KEY] = { h_unwrap_key, true },
    [RPC_FN_DERIVE_KEY] = { h_derive_key, true },
    [RPC_FN_GENERATE_RANDOM] = { h_generate_random, true },
};

/* ---- the connection loop --------------------------------------------------------------------- */
/* The transport under the frames: the socket itself (Unix) or a TLS connection over it. */
typedef struct {
    int fd;
    cf_tls *tls;
} hx;

static bool read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool write_full(int fd, const uint8_t *p, size_t n)
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

static bool hx_read_full(hx *x, uint8_t *p, size_t n)
{
    if (!x->tls)
        return read_full(x->fd, p, n);
    while (n) {
        ssize_t k = cf_tls_read(x->tls, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool hx_write_full(hx *x, const uint8_t *p, size_t n)
{
    if (!x->tls)
        return write_full(x->fd, p, n);
    while (n) {
        ssize_t k = cf_tls_write(x->tls, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Sends what w holds (when it encoded) and wipes it. */
static bool send_writer(hx *fd, cf_writer *w, cf_err encoded)
{
    bool ok = encoded == CF_OK && cf_writer_status(w) == CF_OK && hx_write_full(fd, w->p, w->len);
    cf_writer_free(w);
    return ok;
}

static bool send_error(hx *fd, uint32_t id, cf_err status, const char *msg)
{
    cf_writer w = cf_writer_heap();
    return send_writer(fd, &w, rpc_encode_error(&w, id, status, msg));
}

/* One REQUEST: false when the connection must close. */
static bool serve_request(hx *fd, hconn *c, const rpc_frame *f)
{
    rpc_arena ar = RPC_ARENA_INIT;
    rpc_call call;
    cf_err rv = rpc_decode_request(f, &call, &ar);
    if (rv == CF_E_NOT_SUPPORTED)
        return send_error(fd, f->id, rv, "unknown function code");
    if (rv != CF_OK) {
        (void)send_error(fd, f->id, rv, rv == CF_E_NOMEM ? "out of memory" : "malformed request");
        rpc_arena_free(&ar);
        return rv == CF_E_NOMEM;
    }
    rpc_reply reply;
    memset(&reply, 0, sizeof reply);
    reply.fn = call.fn;
    if (call.fn >= sizeof dispatch / sizeof dispatch[0] || !dispatch[call.fn].fn)
        reply.status = CF_E_NOT_SUPPORTED;
    else if (dispatch[call.fn].session && !owns(c, call.arg[0].ul))
        reply.status = CF_E_SESSION_HANDLE_INVALID;
    else
        reply.status = dispatch[call.fn].fn(c, call.arg, reply.out, &ar);
    reply.has_outputs = rpc_status_has_outputs(reply.fn, reply.status);
    cf_writer w = cf_writer_heap();
    rv = rpc_encode_response(&w, f->id, &reply);
    bool ok;
    if (rv == CF_OK) {
        ok = send_writer(fd, &w, rv);
    } else { /* an answer that does not fit a frame: say so, keep the connection */
        cf_writer_free(&w);
        ok = send_error(fd, f->id, rv, "the response does not fit in a frame");
    }
    rpc_arena_free(&ar);
    return ok;
}

static void serve(hx *fd)
{
    hconn c = { .app = atomic_fetch_add(&next_app, 1) };
    bool hello = false;
    for (;;) {
        uint8_t head[4];
        size_t total;
        if (!hx_read_full(fd, head, sizeof head))
            break;
        if (rpc_frame_size(head, sizeof head, &total) != CF_OK) {
            (void)send_error(fd, 0, CF_E_FORMAT, "bad frame length");
            break;
        }
        uint8_t *buf = malloc(total);
        if (!buf)
            break;
        memcpy(buf, head, sizeof head);
        bool ok = hx_read_full(fd, buf + sizeof head, total - sizeof head);
        cf_reader r = cf_reader_init(buf, total);
        rpc_frame f;
        if (ok && rpc_frame_parse(&r, &f) != CF_OK) {
            (void)send_error(fd, 0, CF_E_FORMAT, "bad frame");
            ok = false;
        } else if (ok && !hello) {
            rpc_hello h;
            char msg[256];
            if (f.type != RPC_HELLO || rpc_decode_hello(&f, &h) != CF_OK) {
                (void)send_error(fd, 0, CF_E_FORMAT, "expected HELLO");
                ok = false;
            } else if (rpc_hello_accept(&h, msg, sizeof msg) != CF_OK) {
                (void)send_error(fd, 0, CF_E_NOT_SUPPORTED, msg);
                ok = false;
            } else {
                rpc_hello self = rpc_hello_self();
                cf_writer w = cf_writer_heap();
                ok = hello = send_writer(fd, &w, rpc_encode_hello(&w, RPC_HELLO_OK, &self));
            }
        } else if (ok && f.type != RPC_REQUEST) {
            (void)send_error(fd, f.type == RPC_ERROR ? 0 : f.id, CF_E_FORMAT, "expected REQUEST");
            ok = false;
        } else if (ok) {
            ok = serve_request(fd, &c, &f);
        }
        cf_free_wiped(buf, total);
        if (!ok)
            break;
    }
    hsm_app_end(c.app);
    if (c.n)
        cf_debug("hsm: connection ended, %zu session(s) closed", c.n);
    free(c.s);
}

void cofferd_hsm_serve(int fd)
{
    hx x = { fd, NULL };
    serve(&x);
}

/* ---- listener and threads ------------------------------------------------------------------ */
typedef struct hsm_thread {
    pthread_t th;
    int fd;                 /* -1 once the connection thread closed it */
    bool done;
    struct cofferd_hsm *srv;
    struct hsm_thread *next;
} hsm_thread;

struct cofferd_hsm {
    cf_tls_ctx *tls;        /* NULL: a Unix socket */
    int lfd;
    int wake[2];
    char path[CF_SOCK_PATH_MAX];
    pthread_t acceptor;
    pthread_mutex_t mu;
    hsm_thread *conns;
};

static void *conn_main(void *arg)
{
    hsm_thread *t = arg;
    if (t->srv->tls) {
        /* the handshake may not hold the thread forever (a silent or plaintext peer) */
        struct timeval tv = { 10, 0 }, none = { 0, 0 };
        int one = 1;
        (void)setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void)setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char err[400];
        cf_tls *tls;
        if (cf_tls_accept(t->srv->tls, t->fd, &tls, err, sizeof err) == CF_OK) {
            (void)setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
            hx x = { t->fd, tls };
            serve(&x);
            cf_tls_free(tls);
        } else {
            cf_info("hsm: TLS connection refused: %s", err);
        }
    } else {
        cofferd_hsm_serve(t->fd);
    }
    pthread_mutex_lock(&t->srv->mu);
    close(t->fd);
    t->fd = -1;
    t->done = true;
    pthread_mutex_unlock(&t->srv->mu);
    return NULL;
}

/* Joins and frees the connection threads that ended. */
static void reap(cofferd_hsm *h)
{
    pthread_mutex_lock(&h->mu);
    for (hsm_thread **pp = &h->conns; *pp;) {
        hsm_thread *t = *pp;
        if (t->done) {
            *pp = t->next;
            pthread_join(t->th, NULL);
            free(t);
        } else {
            pp = &t->next;
        }
    }
    pthread_mutex_unlock(&h->mu);
}

static void *accept_main(void *arg)
{
    cofferd_hsm *h = arg;
    for (;;) {
        struct pollfd p[2] = { { h->lfd, POLLIN, 0 }, { h->wake[0], POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!p[0].revents)
            continue;
        int fd = accept(h->lfd, NULL, NULL);
        reap(h);
        if (fd < 0)
            continue;
        hsm_thread *t = calloc(1, sizeof *t);
        if (!t) {
            close(fd);
            continue;
        }
        t->fd = fd;
        t->srv = h;
        pthread_mutex_lock(&h->mu);
        if (pthread_create(&t->th, NULL, conn_main, t) != 0) {
            pthread_mutex_unlock(&h->mu);
            cf_warn("hsm: cannot start a connection thread");
            close(fd);
            free(t);
            continue;
        }
        t->next = h->conns;
        h->conns = t;
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

/* A TCP listener on host:port for TLS ("*": every address). -1 with err set on failure. */
static int tcp_listen(const cf_listen *l, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)l->port);
    int g = getaddrinfo(strcmp(l->host, "*") == 0 ? NULL : l->host, port, &hints, &ai);
    if (g != 0) {
        snprintf(err, errlen, "[hsm] listen: cannot resolve %s: %s", l->host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        snprintf(err, errlen, "[hsm] listen: cannot listen on tls:%s:%u: %s", l->host, (unsigned)l->port,
                 strerror(e ? e : EADDRNOTAVAIL));
    return fd;
}

static cf_err start(const cf_listen *l, unsigned mode, cf_tls_ctx *tls, cofferd_hsm **out, char *err,
                    size_t errlen);

cf_err cofferd_hsm_start_config(const cf_config *cfg, cofferd_hsm **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->hsm_listen[0].kind != CF_LISTEN_TLS)
        return cofferd_hsm_start(&cfg->hsm_listen[0], cfg->hsm_socket_mode, out, err, errlen);
    cf_tls_ctx *tls;
    char why[400];
    if (cf_tls_server_ctx_new(cfg->hsm_cert, cfg->hsm_key, cfg->hsm_client_ca, &tls, why, sizeof why) != CF_OK) {
        snprintf(err, errlen, "[hsm] TLS: %s", why);
        return CF_E_CONFIG;
    }
    cf_err rv = start(&cfg->hsm_listen[0], 0, tls, out, err, errlen);
    if (rv != CF_OK)
        cf_tls_ctx_free(tls);
    return rv;
}

cf_err cofferd_hsm_start(const cf_listen *l, unsigned mode, cofferd_hsm **out, char *err, size_t errlen)
{
    *out = NULL;
    if (l->kind != CF_LISTEN_UNIX) {
        snprintf(err, errlen, "[hsm] listen: cofferd_hsm_start serves unix:PATH (TLS: cofferd_hsm_start_config)");
        return CF_E_CONFIG;
    }
    return start(l, mode, NULL, out, err, errlen);
}

static cf_err start(const cf_listen *l, unsigned mode, cf_tls_ctx *tls, cofferd_hsm **out, char *err,
                    size_t errlen)
{
    cofferd_hsm *h = calloc(1, sizeof *h);
    if (!h)
        return CF_E_NOMEM;
    h->lfd = h->wake[0] = h->wake[1] = -1;
    h->tls = tls;
    pthread_mutex_init(&h->mu, NULL);
    if (tls) {
        if ((h->lfd = tcp_listen(l, err, errlen)) < 0)
            goto fail;
        if (pipe(h->wake) != 0) {
            snprintf(err, errlen, "[hsm] cannot make a pipe: %s", strerror(errno));
            goto fail;
        }
        if (pthread_create(&h->acceptor, NULL, accept_main, h) != 0) {
            snprintf(err, errlen, "[hsm] cannot start the accept thread");
            goto fail;
        }
        *out = h;
        return CF_OK;
    }
    snprintf(h->path, sizeof h->path, "%s", l->path);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->path);
    struct stat st;
    if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(l->path); /* a stale socket of an earlier run */
    h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->lfd < 0 || bind(h->lfd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "[hsm] listen: cannot bind unix:%s: %s", l->path, strerror(errno));
        h->path[0] = 0;
        goto fail;
    }
    if (chmod(l->path, (mode_t)mode) != 0 || listen(h->lfd, 128) != 0 || pipe(h->wake) != 0) {
        snprintf(err, errlen, "[hsm] listen: cannot set up unix:%s: %s", l->path, strerror(errno));
        goto fail;
    }
    if (pthread_create(&h->acceptor, NULL, accept_main, h) != 0) {
        snprintf(err, errlen, "[hsm] cannot start the accept thread");
        goto fail;
    }
    *out = h;
    return CF_OK;
fail:
    if (h->lfd >= 0)
        close(h->lfd);
    if (h->wake[0] >= 0)
        close(h->wake[0]), close(h->wake[1]);
    if (h->path[0])
        unlink(h->path);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return CF_E_IO;
}

void cofferd_hsm_stop(cofferd_hsm *h)
{
    if (!h)
        return;
    ssize_t k = write(h->wake[1], "x", 1);
    (void)k;
    pthread_join(h->acceptor, NULL);
    close(h->lfd);
    if (h->path[0])
        unlink(h->path);
    pthread_mutex_lock(&h->mu);
    for (hsm_thread *t = h->conns; t; t = t->next)
        if (t->fd >= 0)
            shutdown(t->fd, SHUT_RD); /* the request in flight is answered, then the loop ends */
    pthread_mutex_unlock(&h->mu);
    for (hsm_thread *t = h->conns, *next; t; t = next) {
        next = t->next;
        pthread_join(t->th, NULL);
        free(t);
    }
    close(h->wake[0]);
    close(h->wake[1]);
    pthread_mutex_destroy(&h->mu);
    cf_tls_ctx_free(h->tls);
    free(h);
}
