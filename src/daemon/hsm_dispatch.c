/* hsm_dispatch.c: one REQUEST frame in, one RESPONSE or ERROR frame out (see hsm_server.h). The
 * dispatch is one table from the rpc function code to a small handler that runs the hsm_* call of
 * the same name; the codec (src/rpc) does all decoding and encoding, through the bounded reader.
 *
 * Session ownership: a connection may only name the session handles its application opened (any
 * other handle is SESSION_HANDLE_INVALID), and CLOSE_ALL_SESSIONS closes only the application's
 * own sessions of the slot. The engine never reuses handles, so a stale record cannot come to name
 * another application's session.
 *
 * Decoded arguments (PINs, data to sign) live in the frame and the per-request arena, and output
 * buffers (plaintext, attribute values) in the arena: rpc_arena_free wipes it before returning;
 * the connection wipes the frame and its output buffer. */
#include <string.h>
#include "daemon/hsm_server.h"
#include "hsm/hsm.h"

/* ---- handlers: a = arguments, o = outputs (table order), ar = per-request memory ------------- */
typedef cf_err (*handler)(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar);

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

static cf_err h_get_slot_list(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[1], sizeof(CK_ULONG), &p, &n));
    cf_err rv = hsm_get_slot_list(a[0].ul != 0, p, &n);
    return list_out(&o[0], rv, p, n);
}

static cf_err h_get_slot_info(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_slot_info(a[0].ul, &o[0].slot_info);
}

/* The session limits a client meets are its application's ([hsm] max_sessions), not the
 * engine's: an application that sizes a session pool by ulMaxSessionCount is told the truth. */
static cf_err h_get_token_info(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)ar;
    CK_TOKEN_INFO *ti = &o[0].token_info;
    CF_TRY(hsm_get_token_info(a[0].ul, ti));
    ti->ulMaxSessionCount = c->max_sessions;
    ti->ulMaxRwSessionCount = c->max_sessions;
    return CF_OK;
}

static cf_err h_get_mechanism_list(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[1], sizeof(CK_ULONG), &p, &n));
    cf_err rv = hsm_get_mechanism_list(a[0].ul, p, &n);
    return list_out(&o[0], rv, p, n);
}

static cf_err h_get_mechanism_info(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_mechanism_info(a[0].ul, a[1].ul, &o[0].mech_info);
}

/* No session names the caller: its application id is passed for the audit log. */
static cf_err h_init_token(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)o, (void)ar;
    return hsm_init_token_app(c->id, a[0].ul, a[1].bytes.p, a[1].bytes.len, a[2].bytes.p);
}

static cf_err h_init_pin(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_init_pin(a[0].ul, a[1].bytes.p, a[1].bytes.len);
}

static cf_err h_set_pin(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_set_pin(a[0].ul, a[1].bytes.p, a[1].bytes.len, a[2].bytes.p, a[2].bytes.len);
}

static cf_err h_delete_token(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)o, (void)ar;
    return hsm_delete_token_app(c->id, a[0].ul, a[1].bytes.p, a[1].bytes.len);
}

static cf_err h_pin_tries_left(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_pin_tries_left(a[0].ul, a[1].ul, &o[0].ul);
}

/* The session belongs to the application: any of its connections may use it. */
static cf_err h_open_session(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)ar;
    return hsrv_app_open_session(c, a[0].ul, a[1].ul, &o[0].ul);
}

static cf_err h_close_session(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)o, (void)ar;
    return hsrv_app_close_session(c, a[0].ul);
}

/* Only this application's sessions of the slot: the others belong to other applications. */
static cf_err h_close_all_sessions(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)o, (void)ar;
    return hsrv_app_close_all_sessions(c, a[0].ul);
}

static cf_err h_get_session_info(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_session_info(a[0].ul, &o[0].session_info);
}

static cf_err h_login(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_login(a[0].ul, a[1].ul, a[2].bytes.p, a[2].bytes.len);
}

static cf_err h_logout(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_logout(a[0].ul);
}

static cf_err h_create_object(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_create_object(a[0].ul, a[1].tmpl.attrs, a[1].tmpl.count, &o[0].ul);
}

static cf_err h_copy_object(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_copy_object(a[0].ul, a[1].ul, a[2].tmpl.attrs, a[2].tmpl.count, &o[0].ul);
}

/* A change to an object that a client holds a lease on waits for the lease to end (protocol.md,
 * "Leases"). A client of minor 2 or more is told LEASED and waits by itself, then tries again: a
 * worker is not held for up to lease_ms (with as many workers as cores, a few such waits at once
 * would stall every connection). An older client is waited for here, in the engine. A client
 * that may not make the change (another's object, a read-only session...) is never told LEASED
 * and never waited for: the call fails at once. */
static bool client_waits(const hsrv_app *c, const rpc_value *a, hsm_change ch)
{
    return c->minor >= 2 && hsm_object_lease_left(a[0].ul, a[1].ul, ch) > 0;
}

static cf_err h_destroy_object(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)o, (void)ar;
    if (client_waits(c, a, HSM_CHANGE_DESTROY))
        return CF_E_LEASED;
    return hsm_destroy_object(a[0].ul, a[1].ul);
}

static cf_err h_get_object_size(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_get_object_size(a[0].ul, a[1].ul, &o[0].ul);
}

/* Every queried attribute gets a buffer of its capacity; all of them together at most
 * RPC_MAX_DATA bytes (a later attribute past the budget sees a short buffer). */
static cf_err h_get_attribute_value(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
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

static cf_err h_set_attribute_value(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)o, (void)ar;
    if (client_waits(c, a, HSM_CHANGE_SET_ATTRIBUTE))
        return CF_E_LEASED;
    return hsm_set_attribute_value(a[0].ul, a[1].ul, a[2].tmpl.attrs, a[2].tmpl.count);
}

static cf_err h_find_objects_init(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_find_objects_init(a[0].ul, a[1].tmpl.attrs, a[1].tmpl.count);
}

static cf_err h_find_objects(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    CK_ULONG max = a[1].ul > RPC_MAX_DATA / 8 ? RPC_MAX_DATA / 8 : a[1].ul, n = 0;
    CK_OBJECT_HANDLE *v = rpc_arena_alloc(ar, (max + 1) * sizeof *v);
    if (!v)
        return CF_E_NOMEM;
    cf_err rv = hsm_find_objects(a[0].ul, v, max, &n);
    return list_out(&o[0], rv, v, n);
}

/* FIND_OBJECTS_FETCH (minor 4): C_FindObjectsInit and the first handles of the result in one
 * round trip (the result is a snapshot taken at init, so handing it out early changes nothing).
 * When they are all of it (fewer than asked for) the find ends here and the client answers
 * C_FindObjects and C_FindObjectsFinal by itself; else (more = 1) it stays active for
 * FIND_OBJECTS. */
#define FETCH_MAX 64
static cf_err h_find_objects_fetch(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    CK_ULONG max = a[2].ul < FETCH_MAX ? a[2].ul : FETCH_MAX, n = 0;
    CK_OBJECT_HANDLE *v = rpc_arena_alloc(ar, (max + 1) * sizeof *v);
    if (!v)
        return CF_E_NOMEM;
    CF_TRY(hsm_find_objects_init(a[0].ul, a[1].tmpl.attrs, a[1].tmpl.count));
    cf_err rv = hsm_find_objects(a[0].ul, v, max, &n);
    bool more = rv == CF_OK && n == max;
    if (!more)
        (void)hsm_find_objects_final(a[0].ul);
    o[1].ul = more;
    return list_out(&o[0], rv, v, n);
}

static cf_err h_find_objects_final(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_find_objects_final(a[0].ul);
}

static cf_err h_op_init(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_op_init(a[0].ul, (hsm_op_kind)a[1].ul, &a[2].mech, a[3].ul);
}

static cf_err h_op_oneshot(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[3], 1, &p, &n));
    cf_err rv = hsm_op_oneshot(a[0].ul, (hsm_op_kind)a[1].ul, a[2].bytes.p, a[2].bytes.len, p, &n);
    return data_out(&o[0], rv, p, n);
}

/* Leases (docs/protocol.md, "Leases"): how long a client may take an init with the key of its
 * last signature (or verification) as valid without asking ([hsm] lease_ms; 0: never). A change
 * to that key (destroy, set attribute) waits for it, so it is short; a busy signer renews it with
 * every signature. Set once before the workers start. */
static uint32_t g_lease_ms;

void hsrv_set_lease_ms(uint32_t ms)
{
    g_lease_ms = ms;
}

/* OP_ONESHOT_LEASE and OP_REARM_ONESHOT: the single-part call, then a lease on its key when it
 * ended the operation (not a length query, not BUFFER_TOO_SMALL). Only SIGN leases. */
static cf_err oneshot_lease(hsrv_app *c, CK_SESSION_HANDLE s, hsm_op_kind kind, const rpc_value *in,
                            const rpc_value *ob, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    o[1].ul = 0;
    CF_TRY(outbuf(ar, ob, 1, &p, &n));
    cf_err rv = hsm_op_oneshot(s, kind, in->bytes.p, in->bytes.len, p, &n);
    if (rv == CF_OK && p && kind == HSM_OP_SIGN && g_lease_ms)
        o[1].ul = hsm_op_lease(s, kind, g_lease_ms);
    return data_out(&o[0], rv, p, n);
}

static cf_err h_op_oneshot_lease(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    return oneshot_lease(c, a[0].ul, (hsm_op_kind)a[1].ul, &a[2], &a[3], o, ar);
}

static cf_err h_op_rearm_oneshot(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    o[1].ul = 0;
    cf_err rv = hsm_op_rearm(a[0].ul, (hsm_op_kind)a[1].ul, &a[2].mech, a[3].ul);
    if (rv != CF_OK)
        return rv;   /* no outputs: the init's error, as C_SignInit would have had it */
    return oneshot_lease(c, a[0].ul, (hsm_op_kind)a[1].ul, &a[4], &a[5], o, ar);
}

static cf_err h_op_rearm(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_op_rearm(a[0].ul, (hsm_op_kind)a[1].ul, &a[2].mech, a[3].ul);
}

static cf_err h_op_update(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
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

static cf_err h_op_final(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[2], 1, &p, &n));
    cf_err rv = hsm_op_final(a[0].ul, (hsm_op_kind)a[1].ul, p, &n);
    return data_out(&o[0], rv, p, n);
}

static cf_err h_verify(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_verify(a[0].ul, a[1].bytes.p, a[1].bytes.len, a[2].bytes.p, a[2].bytes.len);
}

/* VERIFY_LEASE and REARM_VERIFY (minor 3): C_Verify, then a lease on its key when it verified
 * (an invalid signature also ends the operation, but gets no lease: a client that sees one is
 * not in a hot loop of valid ones). */
static cf_err verify_lease(CK_SESSION_HANDLE s, const rpc_value *data, const rpc_value *sig, rpc_value *o)
{
    o[0].ul = 0;
    cf_err rv = hsm_verify(s, data->bytes.p, data->bytes.len, sig->bytes.p, sig->bytes.len);
    if (rv == CF_OK && g_lease_ms)
        o[0].ul = hsm_op_lease(s, HSM_OP_VERIFY, g_lease_ms);
    return rv;
}

static cf_err h_verify_lease(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return verify_lease(a[0].ul, &a[1], &a[2], o);
}

static cf_err h_rearm_verify(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    o[0].ul = 0;
    cf_err rv = hsm_op_rearm(a[0].ul, HSM_OP_VERIFY, &a[1].mech, a[2].ul);
    if (rv != CF_OK)
        return rv;   /* the init's error, as C_VerifyInit would have had it */
    return verify_lease(a[0].ul, &a[3], &a[4], o);
}

static cf_err h_verify_final(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_verify_final(a[0].ul, a[1].bytes.p, a[1].bytes.len);
}

static cf_err h_op_abort(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    hsm_op_abort(a[0].ul, (hsm_op_kind)a[1].ul);
    return CF_OK;
}

static cf_err h_digest_key(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)o, (void)ar;
    return hsm_digest_key(a[0].ul, a[1].ul);
}

static cf_err h_generate_key(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_generate_key(a[0].ul, &a[1].mech, a[2].tmpl.attrs, a[2].tmpl.count, &o[0].ul);
}

static cf_err h_generate_key_pair(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_generate_key_pair(a[0].ul, &a[1].mech, a[2].tmpl.attrs, a[2].tmpl.count, a[3].tmpl.attrs,
                                 a[3].tmpl.count, &o[0].ul, &o[1].ul);
}

static cf_err h_wrap_key(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c;
    void *p;
    CK_ULONG n;
    CF_TRY(outbuf(ar, &a[4], 1, &p, &n));
    cf_err rv = hsm_wrap_key(a[0].ul, &a[1].mech, a[2].ul, a[3].ul, p, &n);
    return data_out(&o[0], rv, p, n);
}

static cf_err h_unwrap_key(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_unwrap_key(a[0].ul, &a[1].mech, a[2].ul, a[3].bytes.p, a[3].bytes.len, a[4].tmpl.attrs,
                          a[4].tmpl.count, &o[0].ul);
}

static cf_err h_derive_key(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
{
    (void)c, (void)ar;
    return hsm_derive_key(a[0].ul, &a[1].mech, a[2].ul, a[3].tmpl.attrs, a[3].tmpl.count, &o[0].ul);
}

static cf_err h_generate_random(hsrv_app *c, rpc_value *a, rpc_value *o, rpc_arena *ar)
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

/* session: argument 0 is a session handle that must be the application's. */
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
    [RPC_FN_OP_ONESHOT_LEASE] = { h_op_oneshot_lease, true },
    [RPC_FN_OP_REARM_ONESHOT] = { h_op_rearm_oneshot, true },
    [RPC_FN_OP_REARM] = { h_op_rearm, true },
    [RPC_FN_VERIFY_LEASE] = { h_verify_lease, true },
    [RPC_FN_REARM_VERIFY] = { h_rearm_verify, true },
    [RPC_FN_FIND_OBJECTS_FETCH] = { h_find_objects_fetch, true },
};

void hsrv_error(cf_writer *out, uint32_t id, cf_err status, const char *msg)
{
    /* on failure the writer is back where it was and remembers NOMEM: the connection then closes */
    if (rpc_encode_error(out, id, status, msg) != CF_OK)
        return;
}

/* Runs a decoded call: the reply's status and outputs (pointing into the call and the arena). */
static void run(hsrv_app *app, rpc_call *call, rpc_reply *reply, rpc_arena *ar)
{
    memset(reply, 0, sizeof *reply);
    reply->fn = call->fn;
    if (call->fn >= sizeof dispatch / sizeof dispatch[0] || !dispatch[call->fn].fn)
        reply->status = CF_E_NOT_SUPPORTED;
    else if (dispatch[call->fn].session && !hsrv_app_owns(app, call->arg[0].ul))
        reply->status = CF_E_SESSION_HANDLE_INVALID;
    else
        reply->status = dispatch[call->fn].fn(app, call->arg, reply->out, ar);
    reply->has_outputs = rpc_status_has_outputs(reply->fn, reply->status);
}

bool hsrv_dispatch(hsrv_app *app, const rpc_frame *f, cf_writer *out)
{
    if (f->type != RPC_REQUEST) {
        hsrv_error(out, f->type == RPC_ERROR ? 0 : f->id, CF_E_FORMAT, "expected REQUEST");
        return false;
    }
    rpc_arena ar = RPC_ARENA_INIT;
    rpc_call call;
    cf_err rv = rpc_decode_request(f, &call, &ar);
    if (rv == CF_E_NOT_SUPPORTED) { /* the frame boundary is intact: the connection stays */
        hsrv_error(out, f->id, rv, "unknown function code");
        return true;
    }
    if (rv != CF_OK) {
        hsrv_error(out, f->id, rv, rv == CF_E_NOMEM ? "out of memory" : "malformed request");
        rpc_arena_free(&ar);
        return rv == CF_E_NOMEM;
    }
    rpc_reply reply;
    run(app, &call, &reply, &ar);
    rv = rpc_encode_response(out, f->id, &reply);
    if (rv != CF_OK && rv != CF_E_NOMEM) /* an answer that does not fit a frame: say so, stay */
        hsrv_error(out, f->id, rv, "the response does not fit in a frame");
    rpc_arena_free(&ar);
    return cf_writer_status(out) == CF_OK;
}
