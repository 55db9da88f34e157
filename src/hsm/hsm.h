/* hsm.h: the token engine. All PKCS#11 policy lives here: slots and tokens, PINs and lockout,
 * sessions and login state, objects and their attribute rules, the mechanism table, and the
 * cryptographic operations. The PKCS#11 ABI layer (src/pkcs11) checks pointers, converts
 * arguments and maps cf_err to CKR_*; it calls only these functions. The remote-HSM server will
 * call the same functions.
 *
 * Contract shared by every function below:
 * - Pointers were checked by the caller: required ones are non-NULL, lengths match buffers. An
 *   output buffer may be NULL only where a function says so (the PKCS#11 length protocol: a NULL
 *   buffer asks for the length; a short buffer gives CF_E_BUFFER_TOO_SMALL with *len set to the
 *   size needed, and the operation stays active).
 * - Thread safety: every function may be called from any thread at any time (CKF_OS_LOCKING_OK).
 *   No engine-wide lock is held while OpenSSL computes.
 * - Types are PKCS#11's (CK_*), so that templates and mechanisms pass through unchanged. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "hsm/pkcs11.h"

/* ---- library ---------------------------------------------------------------------------- */
/* Loads the configuration (COFFER_CONF...) and opens the store. On a configuration error, err
 * gets one sentence naming file, line and key. */
cf_err hsm_initialize(char *err, size_t errlen);
cf_err hsm_finalize(void);
bool hsm_is_initialized(void);
/* In a forked child: drops the parent's engine state without closing its store handles or
 * taking its locks (SQLite connections must not cross fork), so hsm_initialize can start fresh.
 * The parent's memory is abandoned, not freed: it may be inconsistent. */
void hsm_forget_after_fork(void);
void hsm_get_info(CK_INFO *info);

/* ---- slots and tokens ------------------------------------------------------------------ */
/* list may be NULL (count only). Slots are all initialized tokens plus the one free slot. */
cf_err hsm_get_slot_list(bool token_present, CK_SLOT_ID *list, CK_ULONG *count);
cf_err hsm_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO *info);
cf_err hsm_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info);
cf_err hsm_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count);
cf_err hsm_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);
/* label: 32 bytes, blank padded. */
cf_err hsm_init_token(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, const uint8_t *label);
cf_err hsm_init_pin(CK_SESSION_HANDLE s, const uint8_t *pin, size_t pinlen);
cf_err hsm_set_pin(CK_SESSION_HANDLE s, const uint8_t *old, size_t oldlen, const uint8_t *pin, size_t pinlen);
/* coffer extension: deletes a token and everything in it (SO PIN required); its slot id is retired. */
cf_err hsm_delete_token(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen);
/* The two above for application app (they name no session, so the audit log learns the caller
 * from this; the plain calls are application 0's). */
cf_err hsm_init_token_app(uint64_t app, CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, const uint8_t *label);
cf_err hsm_delete_token_app(uint64_t app, CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen);

/* coffer extension: how many consecutive wrong PINs (CKU_USER or CKU_SO) the token still accepts
 * before it locks; CK_UNAVAILABLE_INFORMATION when there is no limit. */
cf_err hsm_pin_tries_left(CK_SLOT_ID slot, CK_USER_TYPE user, CK_ULONG *left);

/* ---- sessions and login ---------------------------------------------------------------- */
/* Login state is per application (PKCS#11 5.6: shared by the sessions of one application). An
 * application is a uint64 id: 0 is the in-process one (hsm_open_session, hsm_close_all_sessions);
 * cofferd gives each client connection its own. A session belongs to the application that opened
 * it; C_Login/C_Logout through it change only that application's login, and private objects are
 * visible only to sessions of an application logged in as the user. Token info flags are
 * token-wide. The application's last session on a token logs it out of that token. */
/* Sessions open at once, all applications together: past it SESSION_COUNT (a bound on memory and
 * on the scans of the session map; cofferd also bounds each application, [hsm] max_sessions). */
#define HSM_SESSIONS_MAX 262144
cf_err hsm_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out);
/* cofferd: at most n session objects per application (0, the default: no limit); past it the
 * call that would make one fails with NOMEM (CKR_HOST_MEMORY). The in-process application 0 is never
 * limited. Session objects need no login: without a bound one client could fill the memory. */
void hsm_set_session_object_limit(size_t n);
cf_err hsm_open_session_app(uint64_t app, CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out);
cf_err hsm_close_session(CK_SESSION_HANDLE s);
/* Closes the application's sessions of the slot (others' stay open). */
cf_err hsm_close_all_sessions(CK_SLOT_ID slot);
cf_err hsm_close_all_sessions_app(uint64_t app, CK_SLOT_ID slot);
/* The application ended: closes all its sessions (and their session objects) and logs it out of
 * every token. */
void hsm_app_end(uint64_t app);
cf_err hsm_get_session_info(CK_SESSION_HANDLE s, CK_SESSION_INFO *info);
cf_err hsm_login(CK_SESSION_HANDLE s, CK_USER_TYPE user, const uint8_t *pin, size_t pinlen);
cf_err hsm_logout(CK_SESSION_HANDLE s);

/* ---- objects ------------------------------------------------------------------------------ */
cf_err hsm_create_object(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out);
cf_err hsm_copy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n,
                       CK_OBJECT_HANDLE *out);
cf_err hsm_destroy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o);
cf_err hsm_get_object_size(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ULONG *size);
/* PKCS#11 semantics: every attribute is processed; ulValueLen set per attribute (or
 * CK_UNAVAILABLE_INFORMATION); the return is the "worst" of SENSITIVE / TYPE_INVALID /
 * BUFFER_TOO_SMALL as the spec orders them. t may have NULL pValue entries. */
cf_err hsm_get_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *t, CK_ULONG n);
cf_err hsm_set_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n);
cf_err hsm_find_objects_init(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n);
cf_err hsm_find_objects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count);
cf_err hsm_find_objects_final(CK_SESSION_HANDLE s);

/* ---- cryptographic operations ------------------------------------------------------------ */
typedef enum {
    HSM_OP_ENCRYPT = 0,
    HSM_OP_DECRYPT,
    HSM_OP_DIGEST,
    HSM_OP_SIGN,
    HSM_OP_VERIFY,
    HSM_OP__COUNT
} hsm_op_kind;

/* key is ignored for DIGEST. */
cf_err hsm_op_init(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
/* Leases: the remote HSM's one-round-trip signing (docs/protocol.md, "Leases"). After an
 * operation ended with its key kept for reuse, hsm_op_lease promises the session that an init
 * with the same key, mechanism and parameters stays valid for ms milliseconds: until then the key
 * is neither destroyed nor changed (hsm_destroy_object and hsm_set_attribute_value wait). Returns
 * ms, or 0 when it gives none (nothing kept, a key that needs CKU_CONTEXT_SPECIFIC, a change
 * waiting). In-process callers never take leases and never wait. */
uint32_t hsm_op_lease(CK_SESSION_HANDLE s, hsm_op_kind kind, uint32_t ms);
/* What a change waiting for leases is. */
typedef enum { HSM_CHANGE_DESTROY, HSM_CHANGE_SET_ATTRIBUTE } hsm_change;
/* For a remote client that waits by itself (protocol minor 2): how many ms are left of the leases
 * on object o, which session s is about to destroy or change (c); from now on o gets no new lease
 * until a second after they end, so that the client's next try finds none (0: no lease, go on).
 * An object s cannot see or may not change so (read-only session, not destroyable or modifiable):
 * 0, and the leases are untouched (the call then fails as it would, at once). */
uint32_t hsm_object_lease_left(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, hsm_change c);
/* An init the client took as valid under a lease, arriving with the next call: re-arms the kept
 * operation when it is the one leased (m and key match), even if the key was destroyed or changed
 * since the lease ended: the init happened first, and an active operation outlives its key. Once
 * per lease; anything else is a plain hsm_op_init. */
cf_err hsm_op_rearm(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
/* Single-part: C_Encrypt, C_Decrypt, C_Digest, C_Sign. out may be NULL. Ends the operation
 * unless it returns OK with out NULL or BUFFER_TOO_SMALL. */
cf_err hsm_op_oneshot(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                      uint8_t *out, CK_ULONG *outlen);
/* Multi-part: C_*Update. out/outlen are NULL for DIGEST, SIGN, VERIFY. */
cf_err hsm_op_update(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                     uint8_t *out, CK_ULONG *outlen);
/* C_*Final (not VERIFY). out may be NULL. */
cf_err hsm_op_final(CK_SESSION_HANDLE s, hsm_op_kind kind, uint8_t *out, CK_ULONG *outlen);
/* C_Verify and C_VerifyFinal. The operation ends in every case. */
cf_err hsm_verify(CK_SESSION_HANDLE s, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen);
cf_err hsm_verify_final(CK_SESSION_HANDLE s, const uint8_t *sig, size_t siglen);
/* Ends the active operation of a kind, if any (a call failed before reaching the engine). */
void hsm_op_abort(CK_SESSION_HANDLE s, hsm_op_kind kind);
/* C_DigestKey: feeds a secret key's value into the active digest. */
cf_err hsm_digest_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key);

/* ---- keys ------------------------------------------------------------------------------------ */
cf_err hsm_generate_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, const CK_ATTRIBUTE *t, CK_ULONG n,
                        CK_OBJECT_HANDLE *out);
cf_err hsm_generate_key_pair(CK_SESSION_HANDLE s, const CK_MECHANISM *m,
                             const CK_ATTRIBUTE *pub, CK_ULONG npub,
                             const CK_ATTRIBUTE *priv, CK_ULONG npriv,
                             CK_OBJECT_HANDLE *pub_out, CK_OBJECT_HANDLE *priv_out);
/* wrapped may be NULL (length query). */
cf_err hsm_wrap_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE wrapping,
                    CK_OBJECT_HANDLE key, uint8_t *wrapped, CK_ULONG *wrapped_len);
cf_err hsm_unwrap_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapping,
                      const uint8_t *wrapped, size_t wrapped_len, const CK_ATTRIBUTE *t, CK_ULONG n,
                      CK_OBJECT_HANDLE *out);
cf_err hsm_derive_key(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE base,
                      const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out);

/* ---- random ---------------------------------------------------------------------------------- */
cf_err hsm_generate_random(CK_SESSION_HANDLE s, uint8_t *out, size_t len);

/* ---- audit hook (issue 4 item 5) ------------------------------------------------------------ */
/* Security-relevant events, reported to one hook installed by the embedder (cofferd appends them
 * to its chained audit log; the embedded module installs none). The hook is called outside the
 * engine lock, from the thread that made the call, after the outcome is known; an event never
 * carries a PIN or key material. Events of calls that fail before naming a valid session or slot
 * are not reported. */
typedef enum {
    HSM_AUDIT_TOKEN_INIT = 0,  /* C_InitToken (slot; result, including the SO PIN check's) */
    HSM_AUDIT_LOGIN,           /* C_Login (user type; result: OK, PIN_INCORRECT, PIN_LOCKED...) */
    HSM_AUDIT_PIN_CHANGE,      /* C_InitPIN / C_SetPIN (user type whose PIN changed) */
    HSM_AUDIT_PIN_LOCKED,      /* a failed login left the PIN with no tries (user type) */
    HSM_AUDIT_KEYGEN,          /* C_GenerateKey / C_GenerateKeyPair (object: the private/secret key) */
    HSM_AUDIT_CREATE,          /* C_CreateObject / C_CopyObject (import) */
    HSM_AUDIT_UNWRAP,          /* C_UnwrapKey */
    HSM_AUDIT_DESTROY,         /* C_DestroyObject */
    HSM_AUDIT_SET_ATTRIBUTE,   /* C_SetAttributeValue */
    HSM_AUDIT_KEY_USE,         /* C_SignInit / C_DecryptInit with a private or secret key */
    HSM_AUDIT_TOKEN_DELETE,    /* hsm_delete_token (slot; result, including the SO PIN check's) */
    HSM_AUDIT_WRAP,            /* C_WrapKey (object: the exported key; other: the wrapping key) */
    HSM_AUDIT_DERIVE,          /* C_DeriveKey (object: the new key; other: the base key) */
    HSM_AUDIT__COUNT
} hsm_audit_type;

typedef struct {
    int64_t time;              /* seconds since the epoch */
    uint64_t app;              /* application id (cofferd: the connection; 0 in-process) */
    uint64_t slot;             /* token slot id (0 when unknown) */
    int64_t object;            /* store id of a token object; 0: none or a session object */
    char label[65];            /* the object's CKA_LABEL (truncated, NUL-terminated) or "" */
    hsm_audit_type type;
    CK_USER_TYPE user;         /* LOGIN / PIN_CHANGE / PIN_LOCKED / TOKEN_INIT / TOKEN_DELETE; else
                                * CK_UNAVAILABLE_INFORMATION */
    CK_ULONG op;               /* KEY_USE: hsm_op_kind; else 0 */
    int64_t other_object;      /* WRAP / DERIVE: the wrapping / base key's store id (as object) */
    char other_label[65];      /* and its label (as label) */
    cf_err result;
} hsm_audit_event;

typedef void (*hsm_audit_fn)(void *ctx, const hsm_audit_event *e);
/* Installs (or with NULL removes) the hook. Set it before serving calls. */
void hsm_set_audit(hsm_audit_fn fn, void *ctx);
/* "token_init", "login", ... (stable: stored in the audit log). */
const char *hsm_audit_type_name(hsm_audit_type t);
