/* rv.c: cf_err -> CK_RV, the one place coffer's errors become PKCS#11 return values.
 *
 * A switch with no default over every cf_err: a new error is a -Wswitch warning here (an error in
 * CI) until someone decides what an application should see for it. Most values are named for the
 * PKCS#11 condition and map to their CKR_ namesake. The others, and why:
 *
 * - CKR_DEVICE_ERROR ("some problem has occurred with the token and/or slot"): the token's own
 *   machinery failed, not the call: the object store (STORE, STORE_BUSY when SQLite's busy
 *   timeout ran out, STORE_CORRUPT when a record failed its integrity check), input/output on the
 *   store files (IO), and OpenSSL refusing an operation the engine had validated (CRYPTO). The
 *   application can retry later or report a broken token; its arguments were not at fault.
 * - CKR_GENERAL_ERROR ("some horrible, unrecoverable error"): coffer itself is inconsistent.
 *   INTERNAL is a bug by definition. SHORT, OVERFLOW and FORMAT are the bounded reader's and
 *   parsers' errors: the engine turns a parse failure of application data into its PKCS#11 code
 *   (ATTRIBUTE_VALUE_INVALID, WRAPPED_KEY_INVALID, ...) and of stored data into STORE_CORRUPT, so
 *   one that reaches this layer is a missed translation. NOT_FOUND is internal to the engine
 *   (the application names things by handle, and a bad handle has its own code). CONFIG only comes
 *   from C_Initialize, which prints the configuration sentence to stderr first (module.c) since no
 *   CKR_ value can carry it.
 *
 * - CKR_DEVICE_REMOVED: remote mode only (src/rpc/client.c): the connection to cofferd was lost
 *   during or before the call; the next C_OpenSession (or slot-level call) reconnects.
 *
 * C_Initialize may only return a short list of codes (2.40 base spec 5.4); module.c narrows the
 * result there. */
#include "pkcs11/p11.h"

CK_RV p11_rv(cf_err e)
{
    switch (e) {
    case CF_E_OK: return CKR_OK;
    case CF_E_NOMEM: return CKR_HOST_MEMORY;
    case CF_E_INTERNAL: return CKR_GENERAL_ERROR;
    case CF_E_IO: return CKR_DEVICE_ERROR;
    case CF_E_ARGS: return CKR_ARGUMENTS_BAD;
    case CF_E_SHORT: return CKR_GENERAL_ERROR;
    case CF_E_OVERFLOW: return CKR_GENERAL_ERROR;
    case CF_E_FORMAT: return CKR_GENERAL_ERROR;
    case CF_E_CONFIG: return CKR_GENERAL_ERROR;
    case CF_E_CRYPTO: return CKR_DEVICE_ERROR;
    case CF_E_STORE: return CKR_DEVICE_ERROR;
    case CF_E_STORE_BUSY: return CKR_DEVICE_ERROR;
    case CF_E_STORE_CORRUPT: return CKR_DEVICE_ERROR;
    case CF_E_NOT_FOUND: return CKR_GENERAL_ERROR;
    case CF_E_NOT_INITIALIZED: return CKR_CRYPTOKI_NOT_INITIALIZED;
    case CF_E_ALREADY_INITIALIZED: return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    case CF_E_NOT_SUPPORTED: return CKR_FUNCTION_NOT_SUPPORTED;
    case CF_E_CANT_LOCK: return CKR_CANT_LOCK;
    case CF_E_SLOT_ID_INVALID: return CKR_SLOT_ID_INVALID;
    case CF_E_TOKEN_NOT_PRESENT: return CKR_TOKEN_NOT_PRESENT;
    case CF_E_TOKEN_NOT_RECOGNIZED: return CKR_TOKEN_NOT_RECOGNIZED;
    case CF_E_TOKEN_WRITE_PROTECTED: return CKR_TOKEN_WRITE_PROTECTED;
    case CF_E_SESSION_HANDLE_INVALID: return CKR_SESSION_HANDLE_INVALID;
    case CF_E_SESSION_COUNT: return CKR_SESSION_COUNT;
    case CF_E_SESSION_PARALLEL_NOT_SUPPORTED: return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    case CF_E_SESSION_READ_ONLY: return CKR_SESSION_READ_ONLY;
    case CF_E_SESSION_READ_ONLY_EXISTS: return CKR_SESSION_READ_ONLY_EXISTS;
    case CF_E_SESSION_READ_WRITE_SO_EXISTS: return CKR_SESSION_READ_WRITE_SO_EXISTS;
    case CF_E_SESSION_EXISTS: return CKR_SESSION_EXISTS;
    case CF_E_USER_NOT_LOGGED_IN: return CKR_USER_NOT_LOGGED_IN;
    case CF_E_USER_ALREADY_LOGGED_IN: return CKR_USER_ALREADY_LOGGED_IN;
    case CF_E_USER_ANOTHER_ALREADY_LOGGED_IN: return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
    case CF_E_USER_PIN_NOT_INITIALIZED: return CKR_USER_PIN_NOT_INITIALIZED;
    case CF_E_USER_TYPE_INVALID: return CKR_USER_TYPE_INVALID;
    case CF_E_USER_TOO_MANY_TYPES: return CKR_USER_TOO_MANY_TYPES;
    case CF_E_PIN_INCORRECT: return CKR_PIN_INCORRECT;
    case CF_E_PIN_INVALID: return CKR_PIN_INVALID;
    case CF_E_PIN_LEN_RANGE: return CKR_PIN_LEN_RANGE;
    case CF_E_PIN_LOCKED: return CKR_PIN_LOCKED;
    case CF_E_PIN_EXPIRED: return CKR_PIN_EXPIRED;
    case CF_E_OBJECT_HANDLE_INVALID: return CKR_OBJECT_HANDLE_INVALID;
    case CF_E_KEY_HANDLE_INVALID: return CKR_KEY_HANDLE_INVALID;
    case CF_E_WRAPPING_KEY_HANDLE_INVALID: return CKR_WRAPPING_KEY_HANDLE_INVALID;
    case CF_E_UNWRAPPING_KEY_HANDLE_INVALID: return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    case CF_E_ATTRIBUTE_TYPE_INVALID: return CKR_ATTRIBUTE_TYPE_INVALID;
    case CF_E_ATTRIBUTE_VALUE_INVALID: return CKR_ATTRIBUTE_VALUE_INVALID;
    case CF_E_ATTRIBUTE_READ_ONLY: return CKR_ATTRIBUTE_READ_ONLY;
    case CF_E_ATTRIBUTE_SENSITIVE: return CKR_ATTRIBUTE_SENSITIVE;
    case CF_E_TEMPLATE_INCOMPLETE: return CKR_TEMPLATE_INCOMPLETE;
    case CF_E_TEMPLATE_INCONSISTENT: return CKR_TEMPLATE_INCONSISTENT;
    case CF_E_ACTION_PROHIBITED: return CKR_ACTION_PROHIBITED;
    case CF_E_KEY_TYPE_INCONSISTENT: return CKR_KEY_TYPE_INCONSISTENT;
    case CF_E_KEY_SIZE_RANGE: return CKR_KEY_SIZE_RANGE;
    case CF_E_KEY_FUNCTION_NOT_PERMITTED: return CKR_KEY_FUNCTION_NOT_PERMITTED;
    case CF_E_KEY_NOT_WRAPPABLE: return CKR_KEY_NOT_WRAPPABLE;
    case CF_E_KEY_UNEXTRACTABLE: return CKR_KEY_UNEXTRACTABLE;
    case CF_E_WRAPPING_KEY_TYPE_INCONSISTENT: return CKR_WRAPPING_KEY_TYPE_INCONSISTENT;
    case CF_E_UNWRAPPING_KEY_TYPE_INCONSISTENT: return CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
    case CF_E_WRAPPED_KEY_INVALID: return CKR_WRAPPED_KEY_INVALID;
    case CF_E_WRAPPED_KEY_LEN_RANGE: return CKR_WRAPPED_KEY_LEN_RANGE;
    case CF_E_MECHANISM_INVALID: return CKR_MECHANISM_INVALID;
    case CF_E_MECHANISM_PARAM_INVALID: return CKR_MECHANISM_PARAM_INVALID;
    case CF_E_OPERATION_ACTIVE: return CKR_OPERATION_ACTIVE;
    case CF_E_OPERATION_NOT_INITIALIZED: return CKR_OPERATION_NOT_INITIALIZED;
    case CF_E_DATA_INVALID: return CKR_DATA_INVALID;
    case CF_E_DATA_LEN_RANGE: return CKR_DATA_LEN_RANGE;
    case CF_E_ENCRYPTED_DATA_INVALID: return CKR_ENCRYPTED_DATA_INVALID;
    case CF_E_ENCRYPTED_DATA_LEN_RANGE: return CKR_ENCRYPTED_DATA_LEN_RANGE;
    case CF_E_SIGNATURE_INVALID: return CKR_SIGNATURE_INVALID;
    case CF_E_SIGNATURE_LEN_RANGE: return CKR_SIGNATURE_LEN_RANGE;
    case CF_E_BUFFER_TOO_SMALL: return CKR_BUFFER_TOO_SMALL;
    case CF_E_RANDOM_SEED_NOT_SUPPORTED: return CKR_RANDOM_SEED_NOT_SUPPORTED;
    case CF_E_STATE_UNSAVEABLE: return CKR_STATE_UNSAVEABLE;
    case CF_E_SAVED_STATE_INVALID: return CKR_SAVED_STATE_INVALID;
    case CF_E_DOMAIN_PARAMS_INVALID: return CKR_DOMAIN_PARAMS_INVALID;
    case CF_E_CURVE_NOT_SUPPORTED: return CKR_CURVE_NOT_SUPPORTED;
    case CF_E_FUNCTION_NOT_PARALLEL: return CKR_FUNCTION_NOT_PARALLEL;
    case CF_E_INFORMATION_SENSITIVE: return CKR_INFORMATION_SENSITIVE;
    case CF_E_DEVICE_ERROR: return CKR_DEVICE_ERROR;
    case CF_E_DEVICE_REMOVED: return CKR_DEVICE_REMOVED;
    case CF_E_LEASED: return CKR_FUNCTION_FAILED;   /* the remote client waits it out; after 15 s (a server whose leases never end) it gives up */
    case CF_E__COUNT: break;
    }
    return CKR_GENERAL_ERROR;   /* not a cf_err value: memory corruption or a cast gone wrong */
}
