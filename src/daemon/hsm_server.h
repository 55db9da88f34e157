/* hsm_server.h: cofferd's remote-HSM service (issue 4, docs/remote.md): the token engine
 * (src/hsm) served over the wire protocol of src/rpc (docs/protocol.md) on Unix sockets and
 * TLS 1.3, for many clients at once.
 *
 * The service is five small files behind this one header:
 *   hsm_server.c    the worker pool on one epoll, connections, timers, start/stop;
 *   hsm_listen.c    the listening sockets (Unix: mode and group; TCP for TLS), the fd limit;
 *   hsm_registry.c  applications: login state, owned sessions, the token a connection joins by;
 *   hsm_dispatch.c  one REQUEST frame in, one RESPONSE (or ERROR) frame out: the handler table;
 *   hsm_split.c     the frame splitter and the input buffer (pure functions, fuzzed).
 *
 * Threads: [hsm] workers threads (0: one per online core) wait on one epoll that holds every
 * listener and connection. A connection is armed one-shot, so exactly one worker serves it at a
 * time: it reads what arrived, runs every complete request in arrival order, writes the answers
 * in one write and re-arms. The requests of one connection therefore run one after the other, in
 * order (the protocol allows any order; clients that want parallelism open more connections of
 * the same application). The engine must be initialized (hsm_initialize) before the service
 * starts and stays so until it is stopped. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/bytes.h"
#include "base/config.h"
#include "base/error.h"
#include "hsm/pkcs11.h"
#include "rpc/rpc.h"

/* ==== the service (hsm_server.c) ================================================================ */
typedef struct cofferd_hsm cofferd_hsm;

/* Starts the service of cfg's [hsm] section: every hsm_listen[0..n_hsm_listen) (Unix sockets,
 * chmod'ed to socket_mode and chown'ed to socket_group; TLS 1.3 with client certificates of
 * client_ca), the workers and the housekeeping thread; raises RLIMIT_NOFILE's soft limit toward
 * max_connections. err gets one sentence on failure (an unknown group, a bind that fails...). */
cf_err cofferd_hsm_start_config(const cf_config *cfg, cofferd_hsm **out, char *err, size_t errlen);
/* Stops accepting, lets each worker finish the event it is serving, ends every connection (an
 * application's sessions are closed with its last connection), joins the threads, removes the
 * socket files and frees. NULL is a no-op. */
void cofferd_hsm_stop(cofferd_hsm *h);
/* The number of worker threads (for the start-up log). */
unsigned cofferd_hsm_workers(const cofferd_hsm *h);

/* ==== listening sockets (hsm_listen.c) ========================================================== */
/* The group id of [hsm] socket_group; CF_E_CONFIG with a sentence for a group the system does not
 * know. */
cf_err hsrv_group_id(const char *name, gid_t *gid, char *err, size_t errlen) CF_WARN_UNUSED;
/* A non-blocking listening Unix socket at l->path (a stale socket file there is replaced), given
 * to group gid ((gid_t)-1: the daemon's) and then chmod'ed to mode. -1 with err set on failure. */
int hsrv_listen_unix(const cf_listen *l, unsigned mode, gid_t gid, char *err, size_t errlen);
/* A non-blocking listening TCP socket on l->host:l->port for TLS ("*": every address). -1 with
 * err set on failure. */
int hsrv_listen_tcp(const cf_listen *l, char *err, size_t errlen);
/* Raises RLIMIT_NOFILE's soft limit toward its hard limit, so that want descriptors fit (each
 * connection is one); warns when the hard limit is lower. */
void hsrv_raise_nofile(size_t want);

/* ==== applications (hsm_registry.c) ============================================================= */
/* Who is at the other end of a connection: the Unix user (SO_PEERCRED), or the SHA-256 of the TLS
 * client certificate. A token joins an application only from the same peer. */
typedef enum { HSRV_PEER_UNIX = 1, HSRV_PEER_TLS = 2 } hsrv_peer_kind;
typedef struct {
    hsrv_peer_kind kind;
    uint8_t id[32];       /* UNIX: the uid (host order, then zeros); TLS: the certificate hash */
} hsrv_peer;

typedef struct {
    CK_SESSION_HANDLE h;
    CK_SLOT_ID slot;
} hsrv_owned;

/* One PKCS#11 application (a client process): its engine application id (login state), the
 * sessions it opened (only these may be named by its connections), its connections (refs) and
 * the token that names it in HELLO. The token is a bearer secret: never logged, wiped at the end. */
typedef struct hsrv_app {
    uint64_t id;
    uint8_t token[RPC_APP_TOKEN_LEN];
    hsrv_peer peer;
    uint16_t minor;             /* the protocol minor version of its first HELLO */
    unsigned refs;              /* connections; guarded by the registry's mutex */
    pthread_mutex_t mu;         /* guards the session list and opening */
    hsrv_owned *s;              /* sorted by handle */
    size_t n, cap;
    size_t opening;             /* sessions being opened by its connections (not yet in s) */
    size_t max_sessions;        /* [hsm] max_sessions: n + opening stays at most this */
    struct hsrv_app *next;
} hsrv_app;

typedef struct {
    pthread_mutex_t mu;
    hsrv_app *head;
    size_t count;
    uint32_t max_sessions;      /* each application's ([hsm] max_sessions) */
} hsrv_registry;

/* Applications get at most max_sessions open sessions each. */
void hsrv_registry_init(hsrv_registry *r, uint32_t max_sessions);
/* Ends every application left (hsm_app_end each) and frees. */
void hsrv_registry_destroy(hsrv_registry *r);
/* A connection's HELLO: with token (may be NULL) naming a live application of the same peer,
 * joins it (*joined true); otherwise makes a new one with a fresh random token, and the HELLO's
 * protocol minor version. The compare is constant-time. CF_E_NOMEM or CF_E_CRYPTO (no randomness)
 * on failure. */
cf_err hsrv_registry_enter(hsrv_registry *r, const hsrv_peer *peer, uint16_t minor, const uint8_t *token,
                          hsrv_app **out, bool *joined) CF_WARN_UNUSED;
/* A connection of app ended. The last one ends the application: hsm_app_end (its sessions closed,
 * logged out), the token wiped, freed. */
void hsrv_registry_leave(hsrv_registry *r, hsrv_app *app);
/* Session ownership, safe from any connection of the application. */
bool hsrv_app_owns(hsrv_app *a, CK_SESSION_HANDLE h);
/* hsm_open_session_app, and the handle recorded as the application's; SESSION_COUNT (and the
 * engine not asked) when the application has max_sessions open already. */
cf_err hsrv_app_open_session(hsrv_app *a, CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out);
/* hsm_close_session of an owned handle, and the record dropped. */
cf_err hsrv_app_close_session(hsrv_app *a, CK_SESSION_HANDLE h);
/* hsm_close_all_sessions_app, and the slot's records dropped (atomically with respect to other
 * connections of the application opening sessions). */
cf_err hsrv_app_close_all_sessions(hsrv_app *a, CK_SLOT_ID slot);

/* ==== requests (hsm_dispatch.c) ================================================================= */
/* [hsm] lease_ms, before the workers start. */
void hsrv_set_lease_ms(uint32_t ms);
/* Serves one parsed frame of a connection past its HELLO: a REQUEST is decoded, run against the
 * engine on behalf of app and answered (RESPONSE, or ERROR) by appending one frame to out; a frame
 * of another type is answered with ERROR FORMAT. Returns false when the connection must close
 * after what out holds is sent (a request that does not decode, or no memory). Decoded arguments
 * and output buffers are wiped before returning. */
bool hsrv_dispatch(hsrv_app *app, const rpc_frame *f, cf_writer *out);
/* Appends ERROR (id, status, msg) to out. */
void hsrv_error(cf_writer *out, uint32_t id, cf_err status, const char *msg);

/* ==== framing (hsm_split.c) ===================================================================== */
/* The largest frame on the wire: the length field plus RPC_MAX_FRAME. */
#define HSRV_FRAME_MAX ((size_t)RPC_MAX_FRAME + 4)

typedef enum {
    HSRV_SPLIT_NEED = 0,   /* no whole frame yet: *len is the size the frame needs (4 when unknown) */
    HSRV_SPLIT_FRAME,      /* p[0..*len) is one whole frame (its length field in bounds) */
    HSRV_SPLIT_BAD,        /* the length field is out of bounds: the stream has lost its framing */
} hsrv_split_result;

/* Looks at the front of the n buffered bytes at p. Pure: a function of the bytes alone; reads
 * only p[0..min(n, 4)). For FRAME, 9 <= *len <= n and *len <= HSRV_FRAME_MAX; for NEED,
 * n < *len <= HSRV_FRAME_MAX. */
hsrv_split_result hsrv_split(const uint8_t *p, size_t n, size_t *len);

/* A connection's input: bytes read, not yet served. It holds PINs: every byte dropped is wiped. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} hsrv_inbuf;

#define HSRV_INBUF_DEFAULT 16384u   /* kept for every connection that sent something */

/* Makes room for the next read when the front frame needs need bytes (hsrv_split's *len): the
 * buffer grows to hold that frame whole (at most HSRV_FRAME_MAX), or to the default; afterwards
 * cap > len. CF_E_NOMEM leaves the buffer as it was. */
cf_err hsrv_inbuf_room(hsrv_inbuf *b, size_t need) CF_WARN_UNUSED;
/* Drops the first n bytes (served frames): the rest moves to the front, everything behind it is
 * wiped, and a buffer grown for a large frame returns to the default size once it is empty. */
void hsrv_inbuf_consume(hsrv_inbuf *b, size_t n);
/* Wipes and frees. */
void hsrv_inbuf_free(hsrv_inbuf *b);
