/* backend.c: the two engine tables of backend.h, filled by name so that the C compiler checks
 * every pointer against hsm.h's (and rpc/client.h's) prototypes. */
#include "pkcs11/backend.h"
#include "rpc/client.h"

#define P11_BACKEND_FNS(X) \
    X(get_slot_list) X(get_slot_info) X(get_token_info) X(get_mechanism_list) X(get_mechanism_info) \
    X(init_token) X(init_pin) X(set_pin) X(delete_token) X(pin_tries_left) \
    X(open_session) X(close_session) X(close_all_sessions) X(get_session_info) X(login) X(logout) \
    X(create_object) X(copy_object) X(destroy_object) X(get_object_size) X(get_attribute_value) \
    X(set_attribute_value) X(find_objects_init) X(find_objects) X(find_objects_final) \
    X(op_init) X(op_oneshot) X(op_update) X(op_final) X(verify) X(verify_final) X(op_abort) \
    X(digest_key) X(generate_key) X(generate_key_pair) X(wrap_key) X(unwrap_key) X(derive_key) \
    X(generate_random)

#define LOCAL_FN(n) .n = hsm_##n,
#define REMOTE_FN(n) .n = rpc_client_##n,

const p11_backend p11_backend_local = {
    .name = "local",
    .initialize = hsm_initialize,
    .finalize = hsm_finalize,
    .forget_after_fork = hsm_forget_after_fork,
    .get_info = hsm_get_info,
    P11_BACKEND_FNS(LOCAL_FN)
};

/* C_GetInfo describes this library, not the daemon: the engine's answer is static. */
const p11_backend p11_backend_remote = {
    .name = "remote",
    .initialize = rpc_client_initialize,
    .finalize = rpc_client_finalize,
    .forget_after_fork = rpc_client_forget_after_fork,
    .get_info = hsm_get_info,
    P11_BACKEND_FNS(REMOTE_FN)
};

const p11_backend *p11_B = &p11_backend_local;
