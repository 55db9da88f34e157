/* client.c: the remote backend's calls (client.h): one function per engine call that builds the
 * request's arguments, hands it to the pool (pool.c: connections, handshake, one exchange) and
 * copies the outputs back with the PKCS#11 length protocol. What is copied is checked against
 * what was asked for: more bytes than the buffer announced, or a count over the capacity, is a
 * protocol error (CF_E_DEVICE_ERROR). */
#include "rpc/client.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rpc/found.h"
#include "rpc/lease.h"
#include "rpc/rpc.h"
#include "rpc/slots.h"

/* A call without outputs, or whose outputs the caller ignores. */
static cf_err call_status(const rpc_call *call)
{
    rpc_answer a;
    CF_TRY(rpc_client_transact(call, &a));
    cf_err st = a.reply.status;
    rpc_answer_free(&a);
    return st;
}

/* The answer's status, when it carries outputs that must be there. */
static cf_err outputs_or_status(const rpc_answer *a)
{
    if (a->reply.status == CF_OK && !a->reply.has_outputs)
        return CF_E_DEVICE_ERROR;   /* OK always has outputs (rpc_status_has_outputs) */
    return a->reply.status;
}

/* Whether a DATA or LIST answer's bytes (items) are as they must be: they travel exactly when
 * the call succeeded into a buffer we announced (the length query and BUFFER_TOO_SMALL carry
 * only the length), and fit it. An OK that announces a length without the bytes would hand the
 * application its own uninitialised buffer as the result. */
static bool contents_fit(cf_err st, bool has, bool buffer, CK_ULONG n, CK_ULONG cap)
{
    bool due = buffer && st == CF_OK;
    return has == due && (!has || n <= cap);
}

/* DATA answer into an (out, *outlen) buffer given as OUTBUF {out != NULL, *outlen}. */
static cf_err copy_data(const rpc_answer *a, const rpc_value *v, uint8_t *out, CK_ULONG cap, CK_ULONG *outlen)
{
    cf_err st = outputs_or_status(a);
    if (!a->reply.has_outputs)
        return st;
    if (!contents_fit(st, v->data.p != NULL, out != NULL, v->data.len, cap))
        return CF_E_DEVICE_ERROR;
    if (v->data.p)
        memcpy(out, v->data.p, v->data.len);
    if (outlen)
        *outlen = v->data.len;
    return st;
}

/* LIST answer into (list, *count) given as OUTBUF {list != NULL, cap}. */
static cf_err copy_list(const rpc_answer *a, const rpc_value *v, CK_ULONG *list, CK_ULONG cap, CK_ULONG *count)
{
    cf_err st = outputs_or_status(a);
    if (!a->reply.has_outputs)
        return st;
    if (!contents_fit(st, v->list.v != NULL, list != NULL, v->list.count, cap))
        return CF_E_DEVICE_ERROR;
    if (v->list.v)
        memcpy(list, v->list.v, v->list.count * sizeof *list);
    *count = v->list.count;
    return st;
}

/* A ULONG (handle, count) answer. */
static cf_err call_ulong(const rpc_call *call, size_t idx, CK_ULONG *out)
{
    rpc_answer a;
    CF_TRY(rpc_client_transact(call, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *out = a.reply.out[idx].ul;
    rpc_answer_free(&a);
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

/* Leases (lease.c): C_SignInit (C_VerifyInit) under a lease is pending here, and the next call on
 * the session for that operation carries it: OP_REARM_ONESHOT for C_Sign (REARM_VERIFY for
 * C_Verify), OP_REARM before any other call that acts on the operation. */
static cf_err send_rearm(const rpc_lease_init *li)
{
    CALL(OP_REARM);
    c.arg[0] = u(li->s);
    c.arg[1] = u(li->kind);
    c.arg[2] = mech(&li->m);
    c.arg[3] = u(li->key);
    return call_status(&c);
}

static cf_err flush_init(CK_SESSION_HANDLE s, hsm_op_kind kind)
{
    rpc_lease_init li;
    if (!rpc_lease_pop(s, kind, &li))
        return CF_OK;
    return send_rearm(&li);
}

/* ---- slots and tokens -------------------------------------------------------------------------- */
cf_err rpc_client_get_slot_list(bool token_present, CK_SLOT_ID *list, CK_ULONG *count)
{
    CALL(GET_SLOT_LIST);
    c.arg[0] = u(token_present);
    c.arg[1] = outbuf(list, *count);
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = copy_list(&a, &a.reply.out[0], list, *count, count);
    rpc_answer_free(&a);
    return st;
}

cf_err rpc_client_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
    CALL(GET_SLOT_INFO);
    c.arg[0] = u(slot);
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *info = a.reply.out[0].slot_info;
    rpc_answer_free(&a);
    return st;
}

cf_err rpc_client_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    CALL(GET_TOKEN_INFO);
    c.arg[0] = u(slot);
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *info = a.reply.out[0].token_info;
    rpc_answer_free(&a);
    return st;
}

cf_err rpc_client_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    CALL(GET_MECHANISM_LIST);
    c.arg[0] = u(slot);
    c.arg[1] = outbuf(list, *count);
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = copy_list(&a, &a.reply.out[0], list, *count, count);
    rpc_answer_free(&a);
    return st;
}

cf_err rpc_client_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    CALL(GET_MECHANISM_INFO);
    c.arg[0] = u(slot);
    c.arg[1] = u(type);
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *info = a.reply.out[0].mech_info;
    rpc_answer_free(&a);
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
/* The session's slot is kept (slots.c) for C_CloseAllSessions. */
cf_err rpc_client_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out)
{
    CALL(OPEN_SESSION);
    c.arg[0] = u(slot);
    c.arg[1] = u(flags);
    CF_TRY(call_ulong(&c, 0, out));
    rpc_slots_add(*out, slot);
    return CF_OK;
}

cf_err rpc_client_close_session(CK_SESSION_HANDLE s)
{
    rpc_lease_forget(s);   /* a pending init dies with the session */
    rpc_found_forget(s);
    rpc_slots_remove(s);
    CALL(CLOSE_SESSION);
    c.arg[0] = u(s);
    return call_status(&c);
}

typedef struct {
    CK_SLOT_ID slot;
    uint64_t mark;   /* sessions opened later (another thread) are not the closed ones */
} closed_slot;

static bool on_slot(CK_SESSION_HANDLE s, void *arg)
{
    const closed_slot *c = arg;
    return rpc_slots_maybe_on(s, c->slot, c->mark);
}

/* The pending inits and local finds of the slot's sessions go once the server closed them: those
 * of other slots' sessions, or of a call that failed, are the only copy of what they hold. */
cf_err rpc_client_close_all_sessions(CK_SLOT_ID slot)
{
    closed_slot cs = { slot, rpc_slots_mark() };
    CALL(CLOSE_ALL_SESSIONS);
    c.arg[0] = u(slot);
    CF_TRY(call_status(&c));
    rpc_lease_forget_if(on_slot, &cs);
    rpc_found_forget_if(on_slot, &cs);
    rpc_slots_remove_slot(slot, cs.mark);
    return CF_OK;
}

cf_err rpc_client_get_session_info(CK_SESSION_HANDLE s, CK_SESSION_INFO *info)
{
    CALL(GET_SESSION_INFO);
    c.arg[0] = u(s);
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK)
        *info = a.reply.out[0].session_info;
    rpc_answer_free(&a);
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
    /* inits taken before the logout happened before it: they reach the server first */
    rpc_lease_logout_begin();
    rpc_lease_init li;
    while (rpc_lease_pop_any(&li)) {
        (void)send_rearm(&li);   /* a failure shows at the session's next call */
        rpc_lease_flushed(&li);
    }
    CALL(LOGOUT);
    c.arg[0] = u(s);
    cf_err rv = call_status(&c);
    /* a C_Sign another thread sent meanwhile may have run before the LOGOUT on the server, and its
     * lease is the logged-in application's: none is installed until the logout is done */
    rpc_lease_logout_end();
    return rv;
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

/* DESTROY_OBJECT and SET_ATTRIBUTE_VALUE: a server that answers LEASED (another client holds a
 * lease on the object, protocol.md "Leases") is asked again every few milliseconds until the lease
 * has ended; it gives no new lease meanwhile, and a lease lasts at most 10 s. */
static cf_err call_after_leases(const rpc_call *c)
{
    struct timespec pause = { 0, 5 * 1000000L };
    int64_t give_up = rpc_lease_now() + 15 * 1000000000LL;
    cf_err rv;
    while ((rv = call_status(c)) == CF_E_LEASED && rpc_lease_now() < give_up)
        nanosleep(&pause, NULL);
    return rv;
}

cf_err rpc_client_destroy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    CALL(DESTROY_OBJECT);
    c.arg[0] = u(s);
    c.arg[1] = u(o);
    return call_after_leases(&c);
}

cf_err rpc_client_get_object_size(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ULONG *size)
{
    CALL(GET_OBJECT_SIZE);
    c.arg[0] = u(s);
    c.arg[1] = u(o);
    return call_ulong(&c, 0, size);
}

/* One attribute of a GET_ATTRIBUTE_VALUE answer against the application's: the same type; with
 * a buffer, the value's bytes unless its length is CK_UNAVAILABLE_INFORMATION (sensitive,
 * invalid, too small), within the buffer; without one, no bytes. */
static bool attr_fits(const CK_ATTRIBUTE *r, const CK_ATTRIBUTE *mine)
{
    bool due = mine->pValue && r->ulValueLen != CK_UNAVAILABLE_INFORMATION;
    return r->type == mine->type && (r->pValue != NULL) == due && (!due || r->ulValueLen <= mine->ulValueLen);
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
    rpc_answer a;
    cf_err st = rpc_client_transact(&c, &a);
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
            if (!attr_fits(&v->tmpl.attrs[i], &t[i])) {
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
    rpc_answer_free(&a);
    return st;
}

cf_err rpc_client_set_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    CALL(SET_ATTRIBUTE_VALUE);
    c.arg[0] = u(s);
    c.arg[1] = u(o);
    c.arg[2] = tmpl(t, n);
    return call_after_leases(&c);
}

static cf_err plain_find_final(CK_SESSION_HANDLE s)
{
    CALL(FIND_OBJECTS_FINAL);
    c.arg[0] = u(s);
    return call_status(&c);
}

/* Finds (found.c): with a server of minor 4, C_FindObjectsInit is FIND_OBJECTS_FETCH, which also
 * brings the first handles; C_FindObjects and C_FindObjectsFinal are then answered here, and go
 * to the server only for the rest of a larger result. *plain: the table had no room for s (the
 * server's find was ended): the caller uses the plain calls instead. */
static cf_err find_fetch(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n, bool *plain)
{
    *plain = false;
    CALL(FIND_OBJECTS_FETCH);
    c.arg[0] = u(s);
    c.arg[1] = tmpl(t, n);
    c.arg[2] = u(RPC_FOUND_MAX);
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    const rpc_value *v = &a.reply.out[0];
    if (st == CF_OK && (v->list.count > RPC_FOUND_MAX || (v->list.count && !v->list.v)))
        st = CF_E_DEVICE_ERROR;
    bool more = st == CF_OK && a.reply.out[1].ul != 0;
    bool kept = st == CF_OK && rpc_found_put(s, v->list.v, v->list.count, more);
    rpc_answer_free(&a);
    if (st != CF_OK || kept)
        return st;
    /* no room in the table: end the server's find and ask the plain way (its snapshot now) */
    if (more)
        CF_TRY(plain_find_final(s));
    *plain = true;
    return CF_OK;
}

cf_err rpc_client_find_objects_init(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    if (rpc_found_active(s))
        return CF_E_OPERATION_ACTIVE;
    if (rpc_client_speaks(4)) {
        bool plain;
        cf_err st = find_fetch(s, t, n, &plain);
        if (st != CF_OK || !plain)
            return st;
    }
    CALL(FIND_OBJECTS_INIT);
    c.arg[0] = u(s);
    c.arg[1] = tmpl(t, n);
    return call_status(&c);
}

cf_err rpc_client_find_objects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count)
{
    bool ask_server = false;
    if (rpc_found_take(s, out, max, count, &ask_server) && !ask_server)
        return CF_OK;
    CALL(FIND_OBJECTS);
    c.arg[0] = u(s);
    c.arg[1] = u(max);
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
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
    rpc_answer_free(&a);
    return st;
}

cf_err rpc_client_find_objects_final(CK_SESSION_HANDLE s)
{
    bool ask_server = false;
    if (rpc_found_end(s, &ask_server) && !ask_server)
        return CF_OK;
    return plain_find_final(s);
}

/* ---- cryptographic operations ------------------------------------------------------------------ */
cf_err rpc_client_op_init(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    if (kind == HSM_OP_SIGN || kind == HSM_OP_VERIFY) {
        if (rpc_lease_pending(s, kind))
            return CF_E_OPERATION_ACTIVE;
        if (rpc_lease_take(s, kind, m, key))
            return CF_OK;
    }
    CALL(OP_INIT);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    c.arg[2] = mech(m);
    c.arg[3] = u(key);
    cf_err rv = call_status(&c);
    if (rv == CF_OK && rpc_client_leases(kind))
        rpc_lease_init_ok(s, kind, m, key);
    return rv;
}

/* C_Sign with a server that leases: OP_ONESHOT_LEASE, or OP_REARM_ONESHOT carrying a pending
 * init; the answer's second output is the lease. */
static cf_err sign_leased(CK_SESSION_HANDLE s, const uint8_t *in, size_t inlen, uint8_t *out, CK_ULONG *outlen)
{
    rpc_lease_init li;
    bool rearm = rpc_lease_pop(s, HSM_OP_SIGN, &li);
    rpc_call c = { .fn = rearm ? RPC_FN_OP_REARM_ONESHOT : RPC_FN_OP_ONESHOT_LEASE };
    size_t i = 0;
    c.arg[i++] = u(s);
    c.arg[i++] = u(HSM_OP_SIGN);
    if (rearm) {
        c.arg[i++] = mech(&li.m);
        c.arg[i++] = u(li.key);
    }
    c.arg[i++] = bytes(in, inlen);
    CK_ULONG cap = outlen ? *outlen : 0;
    uint8_t *buf = outlen ? out : NULL;   /* the buffer as announced */
    c.arg[i] = outbuf(buf, cap);
    rpc_lease_stamp sent = rpc_lease_stamp_now();
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = copy_data(&a, &a.reply.out[0], buf, cap, outlen);
    CK_ULONG ms = st == CF_OK && a.reply.has_outputs ? a.reply.out[1].ul : 0;
    rpc_answer_free(&a);
    rpc_lease_granted(s, HSM_OP_SIGN, sent, ms);
    return st;
}

static cf_err data_call(rpc_call *c, size_t outbuf_idx, uint8_t *out, CK_ULONG *outlen)
{
    CK_ULONG cap = outlen ? *outlen : 0;
    uint8_t *buf = outlen ? out : NULL;   /* the buffer as announced */
    c->arg[outbuf_idx] = outbuf(buf, cap);
    rpc_answer a;
    CF_TRY(rpc_client_transact(c, &a));
    cf_err st = copy_data(&a, &a.reply.out[0], buf, cap, outlen);
    rpc_answer_free(&a);
    return st;
}

cf_err rpc_client_op_oneshot(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                             uint8_t *out, CK_ULONG *outlen)
{
    if (kind == HSM_OP_SIGN && rpc_client_leases(kind))
        return sign_leased(s, in, inlen, out, outlen);
    CALL(OP_ONESHOT);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    c.arg[2] = bytes(in, inlen);
    return data_call(&c, 3, out, outlen);
}

cf_err rpc_client_op_update(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                            uint8_t *out, CK_ULONG *outlen)
{
    CF_TRY(flush_init(s, kind));
    CALL(OP_UPDATE);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    c.arg[2] = bytes(in, inlen);
    return data_call(&c, 3, out, outlen);
}

cf_err rpc_client_op_final(CK_SESSION_HANDLE s, hsm_op_kind kind, uint8_t *out, CK_ULONG *outlen)
{
    CF_TRY(flush_init(s, kind));
    CALL(OP_FINAL);
    c.arg[0] = u(s);
    c.arg[1] = u(kind);
    return data_call(&c, 2, out, outlen);
}

/* C_Verify with a server that leases verifications: VERIFY_LEASE, or REARM_VERIFY carrying a
 * pending init; the answer's output is the lease. */
static cf_err verify_leased(CK_SESSION_HANDLE s, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen)
{
    rpc_lease_init li;
    bool rearm = rpc_lease_pop(s, HSM_OP_VERIFY, &li);
    rpc_call c = { .fn = rearm ? RPC_FN_REARM_VERIFY : RPC_FN_VERIFY_LEASE };
    size_t i = 0;
    c.arg[i++] = u(s);
    if (rearm) {
        c.arg[i++] = mech(&li.m);
        c.arg[i++] = u(li.key);
    }
    c.arg[i++] = bytes(data, len);
    c.arg[i] = bytes(sig, siglen);
    rpc_lease_stamp sent = rpc_lease_stamp_now();
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = a.reply.status;
    CK_ULONG ms = st == CF_OK && a.reply.has_outputs ? a.reply.out[0].ul : 0;
    rpc_answer_free(&a);
    rpc_lease_granted(s, HSM_OP_VERIFY, sent, ms);
    return st;
}

cf_err rpc_client_verify(CK_SESSION_HANDLE s, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen)
{
    if (rpc_client_leases(HSM_OP_VERIFY))
        return verify_leased(s, data, len, sig, siglen);
    CALL(VERIFY);
    c.arg[0] = u(s);
    c.arg[1] = bytes(data, len);
    c.arg[2] = bytes(sig, siglen);
    return call_status(&c);
}

cf_err rpc_client_verify_final(CK_SESSION_HANDLE s, const uint8_t *sig, size_t siglen)
{
    CF_TRY(flush_init(s, HSM_OP_VERIFY));
    CALL(VERIFY_FINAL);
    c.arg[0] = u(s);
    c.arg[1] = bytes(sig, siglen);
    return call_status(&c);
}

void rpc_client_op_abort(CK_SESSION_HANDLE s, hsm_op_kind kind)
{
    rpc_lease_init li;
    if (rpc_lease_pop(s, kind, &li))
        return;   /* the init never left: the server has no operation to end */
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
    rpc_answer a;
    CF_TRY(rpc_client_transact(&c, &a));
    cf_err st = outputs_or_status(&a);
    if (st == CF_OK) {
        *pub_out = a.reply.out[0].ul;
        *priv_out = a.reply.out[1].ul;
    }
    rpc_answer_free(&a);
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
        rpc_answer a;
        CF_TRY(rpc_client_transact(&c, &a));
        cf_err st = outputs_or_status(&a);
        if (st == CF_OK) {
            const rpc_value *v = &a.reply.out[0];
            if (v->data.len != n || (n && !v->data.p))
                st = CF_E_DEVICE_ERROR;
            else if (n)
                memcpy(out + done, v->data.p, n);
        }
        rpc_answer_free(&a);
        CF_TRY(st);
        done += n;
    } while (done < len);
    return CF_OK;
}
