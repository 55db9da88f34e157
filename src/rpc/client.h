/* client.h: the remote backend of the PKCS#11 module (docs/remote.md, "Client side"): one
 * function per engine call of src/hsm/hsm.h, same signature, prefix rpc_client_ instead of hsm_.
 * Each encodes the call (rpc.h), sends it to cofferd over the Unix socket or TLS connection of
 * `[client] server`, waits for the response and copies the outputs into the caller's buffers with
 * the engine's length protocol. rpc.h stays the pure codec (no sockets); this is the transport.
 *
 * Connections (pool.c): a pool, so that the threads of one application do not wait behind each
 * other. A call takes the most recently used idle connection (a single-threaded application uses
 * one), or opens a new one, up to 64 per process (beyond, it waits for one to come back); no lock
 * is held while a call is on the wire. All connections of the process are one PKCS#11
 * application on the server (docs/protocol.md, "Handshake"): the first HELLO carries no token,
 * HELLO_OK names the application, and further connections join it with that token, so sessions
 * and login are shared by all of them. A server that names no application (protocol minor 0) is
 * spoken to over one connection. Opened at the first call (C_Initialize cannot report a device
 * error), HELLO first: an unknown major version or ABI gets a sentence on stderr and
 * CF_E_DEVICE_ERROR; no server, CF_E_DEVICE_REMOVED.
 *
 * Failures. An idle connection the server closed (idle timeout, restart) is dropped silently
 * before use. A call whose connection fails (or whose answer breaks the protocol) gets
 * CF_E_DEVICE_REMOVED (CF_E_DEVICE_ERROR); every connection is then dropped and calls on sessions
 * fail the same way until a slot-level call (C_GetSlotList, C_OpenSession...) reconnects. If the
 * server no longer knows our application when a connection joins (cofferd restarted, or all the
 * connections closed), its sessions and login are gone: the server answers
 * SESSION_HANDLE_INVALID for the old handles, and the pool moves to the new application.
 *
 * Secrets: request and response buffers are wiped after use (PINs, plaintext); the application
 * token is wiped at C_Finalize and in a fork child, and never printed. Nothing else is cached. */
#pragma once
#include "hsm/hsm.h"
#include "rpc/rpc.h"

/* The socket path (from `[client] server = unix:PATH`); before rpc_client_initialize. */
void rpc_client_set_server(const char *path);
/* Or `[client] server = tls:HOST:PORT` with [client] cert/key (NULL or "": none) and ca. */
void rpc_client_set_tls_server(const char *host, unsigned port, const char *cert, const char *key, const char *ca);
/* `[client] timeout`: seconds a call waits for the server's answer (and for each read or write of
 * it); 0 = no limit. Past it the connection is closed and the call gets CF_E_DEVICE_REMOVED, as
 * for a lost connection (what the server did with the request is unknown). Before any call. */
void rpc_client_set_timeout(unsigned seconds);
cf_err rpc_client_initialize(char *err, size_t errlen);
/* Whether the server leases inits of kind: signing from protocol minor 2, verifying from minor 3
 * (known after the first connection). */
bool rpc_client_leases(hsm_op_kind kind);
/* Whether the server's protocol minor version is at least minor (same major). */
bool rpc_client_speaks(unsigned minor);
/* Closes every connection (the server ends the application: its sessions, its login) and wipes
 * the token. */
cf_err rpc_client_finalize(void);
/* In a fork child: forgets the parent's connections (closes the child's copies of their
 * descriptors, no TLS close_notify) and its token; the child's first call connects afresh. */
void rpc_client_forget_after_fork(void);

cf_err rpc_client_get_slot_list(bool token_present, CK_SLOT_ID *list, CK_ULONG *count);
cf_err rpc_client_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO *info);
cf_err rpc_client_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info);
cf_err rpc_client_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count);
cf_err rpc_client_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);
cf_err rpc_client_init_token(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, const uint8_t *label);
cf_err rpc_client_init_pin(CK_SESSION_HANDLE s, const uint8_t *pin, size_t pinlen);
cf_err rpc_client_set_pin(CK_SESSION_HANDLE s, const uint8_t *old, size_t oldlen, const uint8_t *pin, size_t pinlen);
cf_err rpc_client_delete_token(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen);
cf_err rpc_client_pin_tries_left(CK_SLOT_ID slot, CK_USER_TYPE user, CK_ULONG *left);

cf_err rpc_client_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out);
cf_err rpc_client_close_session(CK_SESSION_HANDLE s);
cf_err rpc_client_close_all_sessions(CK_SLOT_ID slot);
cf_err rpc_client_get_session_info(CK_SESSION_HANDLE s, CK_SESSION_INFO *info);
cf_err rpc_client_login(CK_SESSION_HANDLE s, CK_USER_TYPE user, const uint8_t *pin, size_t pinlen);
cf_err rpc_client_logout(CK_SESSION_HANDLE s);

cf_err rpc_client_create_object(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out);
cf_err rpc_client_copy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n,
                              CK_OBJECT_HANDLE *out);
cf_err rpc_client_destroy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o);
cf_err rpc_client_get_object_size(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ULONG *size);
cf_err rpc_client_get_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *t, CK_ULONG n);
cf_err rpc_client_set_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n);
cf_err rpc_client_find_objects_init(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n);
cf_err rpc_client_find_objects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count);
cf_err rpc_client_find_objects_final(CK_SESSION_HANDLE s);

cf_err rpc_client_op_init(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
cf_err rpc_client_op_oneshot(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                             uint8_t *out, CK_ULONG *outlen);
cf_err rpc_client_op_update(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                            uint8_t *out, CK_ULONG *outlen);
cf_err rpc_client_op_final(CK_SESSION_HANDLE s, hsm_op_kind kind, uint8_t *out, CK_ULONG *outlen);
cf_err rpc_client_verify(CK_SESSION_HANDLE s, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen);
cf_err rpc_client_verify_final(CK_SESSION_HANDLE s, const uint8_t *sig, size_t siglen);
void rpc_client_op_abort(CK_SESSION_HANDLE s, hsm_op_kind kind);
cf_err rpc_client_digest_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key);

cf_err rpc_client_generate_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, const CK_ATTRIBUTE *t, CK_ULONG n,
                               CK_OBJECT_HANDLE *out);
cf_err rpc_client_generate_key_pair(CK_SESSION_HANDLE s, const CK_MECHANISM *m,
                                    const CK_ATTRIBUTE *pub, CK_ULONG npub,
                                    const CK_ATTRIBUTE *priv, CK_ULONG npriv,
                                    CK_OBJECT_HANDLE *pub_out, CK_OBJECT_HANDLE *priv_out);
cf_err rpc_client_wrap_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE wrapping,
                           CK_OBJECT_HANDLE key, uint8_t *wrapped, CK_ULONG *wrapped_len);
cf_err rpc_client_unwrap_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapping,
                             const uint8_t *wrapped, size_t wrapped_len, const CK_ATTRIBUTE *t, CK_ULONG n,
                             CK_OBJECT_HANDLE *out);
cf_err rpc_client_derive_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE base,
                             const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out);

cf_err rpc_client_generate_random(CK_SESSION_HANDLE s, uint8_t *out, size_t len);

/* ---- between client.c (the calls) and pool.c (the connections); not for src/pkcs11 ---------- */
typedef struct rpc_conn rpc_conn;
/* One call's answer: the decoded reply, whose byte strings view the connection's receive buffer
 * and whose arrays live in the arena. Valid until rpc_answer_free, which wipes both and gives
 * the connection back to the pool. */
typedef struct {
    rpc_conn *conn;
    rpc_arena arena;
    rpc_reply reply;
} rpc_answer;
/* Sends call on a pooled connection and waits for its answer. CF_OK: a->reply.status is the
 * engine's status (a->reply.has_outputs says whether outputs were decoded) and the caller frees a;
 * otherwise the transport's status (DEVICE_REMOVED, DEVICE_ERROR, NOMEM, or an encoding error
 * such as ARGS or MECHANISM_INVALID, found before anything is sent) and nothing to free. */
cf_err rpc_client_transact(const rpc_call *call, rpc_answer *a) CF_WARN_UNUSED;
void rpc_answer_free(rpc_answer *a);
