/* backend.h: where the PKCS#11 layer's engine calls go (internal to src/pkcs11).
 *
 * One table of function pointers with exactly the signatures of src/hsm/hsm.h. C_Initialize picks
 * the table once (module.c): p11_backend_local runs the token engine in this process (the hsm_*
 * functions); p11_backend_remote carries every call to cofferd over the wire protocol
 * (src/rpc/client.h) when the configuration has `[client] server`. Every C_* function calls
 * B->xxx(...) where it used to call hsm_xxx(...); argument checks stay in the layer. */
#pragma once
#include "hsm/hsm.h"

typedef struct {
    const char *name;   /* "local" or "remote" */
    cf_err (*initialize)(char *err, size_t errlen);
    cf_err (*finalize)(void);
    void (*forget_after_fork)(void);
    void (*get_info)(CK_INFO *info);

    cf_err (*get_slot_list)(bool token_present, CK_SLOT_ID *list, CK_ULONG *count);
    cf_err (*get_slot_info)(CK_SLOT_ID slot, CK_SLOT_INFO *info);
    cf_err (*get_token_info)(CK_SLOT_ID slot, CK_TOKEN_INFO *info);
    cf_err (*get_mechanism_list)(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count);
    cf_err (*get_mechanism_info)(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);
    cf_err (*init_token)(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen, const uint8_t *label);
    cf_err (*init_pin)(CK_SESSION_HANDLE s, const uint8_t *pin, size_t pinlen);
    cf_err (*set_pin)(CK_SESSION_HANDLE s, const uint8_t *old, size_t oldlen, const uint8_t *pin, size_t pinlen);
    cf_err (*delete_token)(CK_SLOT_ID slot, const uint8_t *so_pin, size_t pinlen);
    cf_err (*pin_tries_left)(CK_SLOT_ID slot, CK_USER_TYPE user, CK_ULONG *left);

    cf_err (*open_session)(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out);
    cf_err (*close_session)(CK_SESSION_HANDLE s);
    cf_err (*close_all_sessions)(CK_SLOT_ID slot);
    cf_err (*get_session_info)(CK_SESSION_HANDLE s, CK_SESSION_INFO *info);
    cf_err (*login)(CK_SESSION_HANDLE s, CK_USER_TYPE user, const uint8_t *pin, size_t pinlen);
    cf_err (*logout)(CK_SESSION_HANDLE s);

    cf_err (*create_object)(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out);
    cf_err (*copy_object)(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n,
                          CK_OBJECT_HANDLE *out);
    cf_err (*destroy_object)(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o);
    cf_err (*get_object_size)(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ULONG *size);
    cf_err (*get_attribute_value)(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *t, CK_ULONG n);
    cf_err (*set_attribute_value)(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n);
    cf_err (*find_objects_init)(CK_SESSION_HANDLE s, const CK_ATTRIBUTE *t, CK_ULONG n);
    cf_err (*find_objects)(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count);
    cf_err (*find_objects_final)(CK_SESSION_HANDLE s);

    cf_err (*op_init)(CK_SESSION_HANDLE s, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
    cf_err (*op_oneshot)(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                         uint8_t *out, CK_ULONG *outlen);
    cf_err (*op_update)(CK_SESSION_HANDLE s, hsm_op_kind kind, const uint8_t *in, size_t inlen,
                        uint8_t *out, CK_ULONG *outlen);
    cf_err (*op_final)(CK_SESSION_HANDLE s, hsm_op_kind kind, uint8_t *out, CK_ULONG *outlen);
    cf_err (*verify)(CK_SESSION_HANDLE s, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen);
    cf_err (*verify_final)(CK_SESSION_HANDLE s, const uint8_t *sig, size_t siglen);
    void (*op_abort)(CK_SESSION_HANDLE s, hsm_op_kind kind);
    cf_err (*digest_key)(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key);

    cf_err (*generate_key)(CK_SESSION_HANDLE s, const CK_MECHANISM *m, const CK_ATTRIBUTE *t, CK_ULONG n,
                           CK_OBJECT_HANDLE *out);
    cf_err (*generate_key_pair)(CK_SESSION_HANDLE s, const CK_MECHANISM *m,
                                const CK_ATTRIBUTE *pub, CK_ULONG npub,
                                const CK_ATTRIBUTE *priv, CK_ULONG npriv,
                                CK_OBJECT_HANDLE *pub_out, CK_OBJECT_HANDLE *priv_out);
    cf_err (*wrap_key)(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE wrapping,
                       CK_OBJECT_HANDLE key, uint8_t *wrapped, CK_ULONG *wrapped_len);
    cf_err (*unwrap_key)(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapping,
                         const uint8_t *wrapped, size_t wrapped_len, const CK_ATTRIBUTE *t, CK_ULONG n,
                         CK_OBJECT_HANDLE *out);
    cf_err (*derive_key)(CK_SESSION_HANDLE s, const CK_MECHANISM *m, CK_OBJECT_HANDLE base,
                         const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out);

    cf_err (*generate_random)(CK_SESSION_HANDLE s, uint8_t *out, size_t len);
} p11_backend;

extern const p11_backend p11_backend_local;
extern const p11_backend p11_backend_remote;

/* The table C_Initialize chose (module.c); &p11_backend_local until then, so that a call before
 * C_Initialize still reaches the engine's own NOT_INITIALIZED answer. Read only after p11_live()
 * (set before g_live is published with release ordering). */
extern const p11_backend *p11_B;
#define B p11_B
