/* lease.c: the client's side of leases (docs/protocol.md, "Leases"), so that a signer's
 * C_SignInit, and a verifier's C_VerifyInit, cost no round trip. Below, "sign" stands for both.
 *
 * When C_Sign ends a signing operation, cofferd may lease the session's init to the client: for
 * a few hundred milliseconds the same init (key, mechanism, parameters) cannot fail, because the
 * key is neither destroyed nor changed before the lease ends (the server's changes wait). A
 * C_SignInit within that time is taken as done here ("pending") and travels with the session's
 * next call: OP_REARM_ONESHOT for C_Sign, OP_REARM before anything else that touches the
 * operation. Every other reason C_SignInit could fail is known on this side: the session (an
 * application's sessions close only through its own calls, which forget their entries), an
 * operation already active (the pending one), the login (C_Logout flushes the pending inits and
 * drops the deadlines, before and after its round trip, and a lease whose request was sent before
 * that is not installed) and the key, mechanism and parameters (compared with the lease's).
 *
 * One entry per session and kind in a small direct-mapped table: a collision costs the other its
 * lease (one more round trip), never a wrong answer; a pending entry is never evicted. A deadline
 * counts from before the request that got the lease was sent, less a margin for the two clocks
 * running at slightly different rates. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "rpc/lease.h"
#include "rpc/rpc.h"

#define SLOTS 256u
#define PARAM_MAX RPC_LEASE_PARAM_MAX
#define MARGIN_NS 20000000LL   /* 20 ms of the lease are not used */

typedef struct {
    CK_SESSION_HANDLE s;       /* 0: free */
    hsm_op_kind kind;
    CK_MECHANISM_TYPE mech;
    uint8_t param[PARAM_MAX];
    size_t param_len;
    CK_OBJECT_HANDLE key;
    int64_t deadline;          /* monotonic ns; 0: no lease */
    bool pending;              /* a C_SignInit taken under the lease, not yet sent */
    bool flushing;             /* C_Logout's thread is sending it (rpc_lease_pop_any): the session's
                                * own calls wait for rpc_lease_flushed, so theirs come after it */
} lease;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_flushed = PTHREAD_COND_INITIALIZER;   /* an entry stopped flushing */
static lease g_tab[SLOTS];
/* Counts rpc_lease_drop_deadlines: a grant whose request was sent before the last drop (a C_Sign
 * on the wire in another thread while C_Logout ran) may come from before the logout and is not
 * installed. Written under g_mu, read without it before a request is sent. */
static _Atomic uint64_t g_epoch;
static atomic_int g_logouts;   /* C_Logouts under way (rpc_lease_logout_begin .. end) */

int64_t rpc_lease_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

rpc_lease_stamp rpc_lease_stamp_now(void)
{
    rpc_lease_stamp t = { atomic_load(&g_epoch), rpc_lease_now(), atomic_load(&g_logouts) > 0 };
    return t;
}

static lease *slot_of(CK_SESSION_HANDLE s, hsm_op_kind kind)
{
    uint64_t k = (uint64_t)s * 2 + (kind == HSM_OP_VERIFY);
    return &g_tab[(k * 0x9E3779B97F4A7C15ull) >> 56 & (SLOTS - 1)];
}

/* g_mu held: the entry of s for kind, or NULL. */
static lease *find(CK_SESSION_HANDLE s, hsm_op_kind kind)
{
    lease *e = slot_of(s, kind);
    return s != 0 && e->s == s && e->kind == kind ? e : NULL;
}

/* g_mu held: find, after waiting out a flush of that entry by C_Logout's thread. Without the
 * wait, a C_Sign on the session would find no pending init and send its request, which could
 * reach the server before the re-arm the logout is sending on another connection. */
static lease *find_settled(CK_SESSION_HANDLE s, hsm_op_kind kind)
{
    lease *e;
    while ((e = find(s, kind)) && e->flushing)
        pthread_cond_wait(&g_flushed, &g_mu);
    return e;
}

static bool same_init(const lease *e, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    return e->key == key && e->mech == m->mechanism && e->param_len == m->ulParameterLen &&
           (m->ulParameterLen == 0 || memcmp(e->param, m->pParameter, m->ulParameterLen) == 0);
}

/* Parameters that are their bytes (no pointers inside), so that comparing and keeping the bytes
 * is comparing and keeping the parameter: none, raw bytes, or CK_RSA_PKCS_PSS_PARAMS. EdDSA's
 * points at its context data: no lease. */
static bool plain_param(const CK_MECHANISM *m)
{
    rpc_param_layout l;
    if (m->ulParameterLen == 0)
        return true;
    if (m->ulParameterLen > PARAM_MAX || !m->pParameter || !rpc_mech_layout(m->mechanism, &l))
        return false;
    return l == RPC_PARAM_BYTES || l == RPC_PARAM_RSA_PSS;
}

void rpc_lease_init_ok(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    pthread_mutex_lock(&g_mu);
    lease *e = slot_of(s, kind);
    if (s != 0 && !e->flushing && !(e->pending && (e->s != s || e->kind != kind))) {
        memset(e, 0, sizeof *e);
        if (plain_param(m)) {
            e->s = s;
            e->kind = kind;
            e->mech = m->mechanism;
            e->key = key;
            e->param_len = m->ulParameterLen;
            if (m->ulParameterLen)
                memcpy(e->param, m->pParameter, m->ulParameterLen);
        }
    }
    pthread_mutex_unlock(&g_mu);
}

bool rpc_lease_take(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    bool taken = false;
    pthread_mutex_lock(&g_mu);
    lease *e = find_settled(s, kind);
    if (e && !e->pending && e->deadline != 0 && rpc_lease_now() < e->deadline && same_init(e, m, key)) {
        e->pending = true;
        e->deadline = 0;   /* one init per lease */
        taken = true;
    }
    pthread_mutex_unlock(&g_mu);
    return taken;
}

bool rpc_lease_pending(CK_SESSION_HANDLE s, hsm_op_kind kind)
{
    pthread_mutex_lock(&g_mu);
    lease *e = find_settled(s, kind);
    bool p = e && e->pending;
    pthread_mutex_unlock(&g_mu);
    return p;
}

/* g_mu held: e's pending init into out, no longer pending. */
static void pop_locked(lease *e, rpc_lease_init *out)
{
    e->pending = false;
    out->s = e->s;
    out->kind = e->kind;
    out->key = e->key;
    out->param_len = e->param_len;
    memcpy(out->param, e->param, e->param_len);
    out->m.mechanism = e->mech;
    out->m.pParameter = e->param_len ? out->param : NULL;
    out->m.ulParameterLen = e->param_len;
}

bool rpc_lease_pop(CK_SESSION_HANDLE s, hsm_op_kind kind, rpc_lease_init *out)
{
    pthread_mutex_lock(&g_mu);
    lease *e = find_settled(s, kind);
    bool p = e && e->pending;
    if (p)
        pop_locked(e, out);
    pthread_mutex_unlock(&g_mu);
    return p;
}

bool rpc_lease_pop_any(rpc_lease_init *out)
{
    bool p = false;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < SLOTS && !p; i++)
        if (g_tab[i].pending) {
            pop_locked(&g_tab[i], out);
            g_tab[i].flushing = true;
            p = true;
        }
    pthread_mutex_unlock(&g_mu);
    return p;
}

void rpc_lease_flushed(const rpc_lease_init *li)
{
    pthread_mutex_lock(&g_mu);
    lease *e = find(li->s, li->kind);
    if (e)
        e->flushing = false;
    pthread_cond_broadcast(&g_flushed);
    pthread_mutex_unlock(&g_mu);
}

void rpc_lease_granted(CK_SESSION_HANDLE s, hsm_op_kind kind, rpc_lease_stamp sent, CK_ULONG ms)
{
    pthread_mutex_lock(&g_mu);
    lease *e = find(s, kind);
    if (e && !e->pending) {
        int64_t d = ms > 0 && ms <= 60000 ? sent.ns + (int64_t)ms * 1000000LL - MARGIN_NS : 0;
        bool current = sent.epoch == atomic_load(&g_epoch) && !sent.in_logout && atomic_load(&g_logouts) == 0;
        e->deadline = d > sent.ns && current ? d : 0;
    }
    pthread_mutex_unlock(&g_mu);
}

void rpc_lease_forget(CK_SESSION_HANDLE s)
{
    static const hsm_op_kind kinds[] = { HSM_OP_SIGN, HSM_OP_VERIFY };
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        lease *e = find(s, kinds[i]);
        if (e)
            memset(e, 0, sizeof *e);
    }
    pthread_cond_broadcast(&g_flushed);   /* a flushed entry may have gone */
    pthread_mutex_unlock(&g_mu);
}

void rpc_lease_forget_if(bool (*gone)(CK_SESSION_HANDLE s, void *arg), void *arg)
{
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < SLOTS; i++)
        if (g_tab[i].s != 0 && gone(g_tab[i].s, arg))
            memset(&g_tab[i], 0, sizeof g_tab[i]);
    pthread_cond_broadcast(&g_flushed);
    pthread_mutex_unlock(&g_mu);
}

void rpc_lease_forget_all(void)
{
    pthread_mutex_lock(&g_mu);
    memset(g_tab, 0, sizeof g_tab);
    pthread_cond_broadcast(&g_flushed);
    pthread_mutex_unlock(&g_mu);
}

void rpc_lease_drop_deadlines(void)
{
    pthread_mutex_lock(&g_mu);
    atomic_fetch_add(&g_epoch, 1);
    for (size_t i = 0; i < SLOTS; i++)
        g_tab[i].deadline = 0;
    pthread_mutex_unlock(&g_mu);
}

void rpc_lease_logout_begin(void)
{
    atomic_fetch_add(&g_logouts, 1);
    rpc_lease_drop_deadlines();
}

void rpc_lease_logout_end(void)
{
    rpc_lease_drop_deadlines();
    atomic_fetch_sub(&g_logouts, 1);
}

void rpc_lease_after_fork(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    static const pthread_cond_t fresh_cv = PTHREAD_COND_INITIALIZER;
    memcpy(&g_mu, &fresh, sizeof g_mu);   /* a thread of the parent may have held it */
    memcpy(&g_flushed, &fresh_cv, sizeof g_flushed);
    memset(g_tab, 0, sizeof g_tab);
    atomic_store(&g_logouts, 0);   /* the parent's logouts are not the child's */
}
