/* client.h: the remote backend of the PKCS#11 module (docs/remote.md, "Client side"): one
 * function per engine call of src/hsm/hsm.h, same signature, prefix rpc_client_ instead of hsm_.
 * Each encodes the call (rpc.h), sends it to cofferd over the Unix socket of `[client] server`,
 * waits for the response and copies the outputs into the caller's buffers with the engine's
 * length protocol. rpc.h stays the pure codec (no sockets); this header is the transport.
 *
 * Connection: one per process, opened at the first call (C_Initialize cannot report a device
 * error), HELLO first (an unknown major version or ABI: a sentence on stderr and
 * CF_E_DEVICE_ERROR). Calls are serialized on it by a mutex: one request in flight at a time
 * (multiplexing by request id is the next step). A connection that drops fails the call with
 * CF_E_DEVICE_REMOVED; calls on sessions fail the same way until a slot-level call (C_GetSlotList,
 * C_OpenSession...) reconnects, after which the old sessions are gone on the server.
 * Request and response buffers are wiped after use (PINs, plaintext); nothing is cached. */
#pragma once
#include "hsm/hsm.h"

/* The socket path (from `[client] server = unix:PATH`); before rpc_client_initialize. */
void rpc_client_set_server(const char *path);
/* Or `[client] server = tls:HOST:PORT` with [client] cert/key (NULL or "": none) and ca. */
void rpc_client_set_tls_server(const char *host, unsigned port, const char *cert, const char *key, const char *ca);
cf_err rpc_client_initialize(char *err, size_t errlen);
cf_err rpc_client_finalize(void);
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
