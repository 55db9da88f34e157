/* lease.h: the client's table of leased inits (lease.c; docs/protocol.md, "Leases"): signing
 * (protocol minor 2) and verifying (minor 3) operations. Internal to the remote backend
 * (client.c, pool.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "hsm/hsm.h"

/* Mechanism parameters longer than this get no lease. */
#define RPC_LEASE_PARAM_MAX 64u

/* A pending init, popped to be sent: m.pParameter points into param. */
typedef struct {
    CK_SESSION_HANDLE s;
    hsm_op_kind kind;              /* HSM_OP_SIGN or HSM_OP_VERIFY */
    CK_MECHANISM m;
    uint8_t param[RPC_LEASE_PARAM_MAX];
    size_t param_len;
    CK_OBJECT_HANDLE key;
} rpc_lease_init;

/* Monotonic nanoseconds. */
int64_t rpc_lease_now(void);
/* When a request that may bring a lease was sent: take it before sending. */
typedef struct {
    uint64_t epoch;   /* rpc_lease_drop_deadlines calls so far */
    int64_t ns;       /* rpc_lease_now() */
    bool in_logout;   /* a C_Logout was under way (rpc_lease_logout_begin .. end) */
} rpc_lease_stamp;
rpc_lease_stamp rpc_lease_stamp_now(void);
/* Each function works on the entry of session s for operation kind (HSM_OP_SIGN, HSM_OP_VERIFY):
 * a session may sign and verify, each with its own lease. */
/* A C_SignInit (C_VerifyInit) the server accepted (a round trip): remembered, without a lease yet. */
void rpc_lease_init_ok(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
/* The init under a lease: true if s holds a live lease for this very init; it is then pending
 * (to be sent with the next call on s for this kind) and the lease is used up. */
bool rpc_lease_take(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
/* Whether s has a pending init of kind (a second init is then OPERATION_ACTIVE). */
bool rpc_lease_pending(CK_SESSION_HANDLE s, hsm_op_kind kind);
/* Takes s's pending init of kind out, to send it; false if none. */
bool rpc_lease_pop(CK_SESSION_HANDLE s, hsm_op_kind kind, rpc_lease_init *out);
/* Takes any session's pending init out (C_Logout sends them all first); false if none. Until
 * rpc_lease_flushed(out), the calls above on that session and kind wait: its own next call must
 * reach the server after the init. */
bool rpc_lease_pop_any(rpc_lease_init *out);
void rpc_lease_flushed(const rpc_lease_init *li);
/* The answer to a signature (verification) on s, sent at `sent`, granted ms of lease (0: none).
 * Not installed when a drop of the deadlines came between the sending and now. */
void rpc_lease_granted(CK_SESSION_HANDLE s, hsm_op_kind kind, rpc_lease_stamp sent, CK_ULONG ms);
/* s closed: its entries go, pending inits included (the operations died with the session). */
void rpc_lease_forget(CK_SESSION_HANDLE s);
/* The entries of the sessions for which gone(s, arg) is true go (C_CloseAllSessions); gone is
 * called with the table's lock held. */
void rpc_lease_forget_if(bool (*gone)(CK_SESSION_HANDLE s, void *arg), void *arg);
/* Every entry goes: a new application on the server, C_Finalize. */
void rpc_lease_forget_all(void);
/* No new inits under the leases held, nor under those granted to requests already sent (C_Logout,
 * a lost connection); pending ones stay to be sent. */
void rpc_lease_drop_deadlines(void);
/* C_Logout's bracket: both drop the deadlines, and no lease is installed for a request sent, or
 * answered, between them (the server may have run it before or after the LOGOUT). */
void rpc_lease_logout_begin(void);
void rpc_lease_logout_end(void);
/* In a fork child: an empty table, its lock new. */
void rpc_lease_after_fork(void);
