/* error.h: the one status type of coffer.
 *
 * Every function that can fail returns cf_err. The list is an X-macro so names, messages and the
 * switch that maps them cannot drift apart. Subsystems translate to their wire codes only at their
 * edge: CKR_* in src/pkcs11, TPM_RC_* in src/tpm, RPC status in src/rpc. Most values are named for
 * the PKCS#11 condition they describe because the token engine speaks PKCS#11 semantics. */
#pragma once

#define CF_ERRORS(X) \
    X(OK, "success") \
    X(NOMEM, "out of memory") \
    X(INTERNAL, "internal error") \
    X(IO, "input/output error") \
    X(ARGS, "bad arguments") \
    X(SHORT, "input too short") \
    X(OVERFLOW, "value out of range") \
    X(FORMAT, "malformed data") \
    X(CONFIG, "bad configuration") \
    X(CRYPTO, "cryptographic operation failed") \
    X(STORE, "object store failure") \
    X(STORE_BUSY, "object store busy") \
    X(STORE_CORRUPT, "object store record corrupt or tampered") \
    X(NOT_FOUND, "not found") \
    X(NOT_INITIALIZED, "library not initialized") \
    X(ALREADY_INITIALIZED, "library already initialized") \
    X(NOT_SUPPORTED, "function not supported") \
    X(CANT_LOCK, "locking not possible") \
    X(SLOT_ID_INVALID, "slot ID invalid") \
    X(TOKEN_NOT_PRESENT, "token not present") \
    X(TOKEN_NOT_RECOGNIZED, "token not recognized") \
    X(TOKEN_WRITE_PROTECTED, "token write protected") \
    X(SESSION_HANDLE_INVALID, "session handle invalid") \
    X(SESSION_COUNT, "too many sessions") \
    X(SESSION_PARALLEL_NOT_SUPPORTED, "parallel sessions not supported") \
    X(SESSION_READ_ONLY, "session is read-only") \
    X(SESSION_READ_ONLY_EXISTS, "a read-only session exists") \
    X(SESSION_READ_WRITE_SO_EXISTS, "a read/write SO session exists") \
    X(SESSION_EXISTS, "a session exists") \
    X(USER_NOT_LOGGED_IN, "user not logged in") \
    X(USER_ALREADY_LOGGED_IN, "user already logged in") \
    X(USER_ANOTHER_ALREADY_LOGGED_IN, "another user already logged in") \
    X(USER_PIN_NOT_INITIALIZED, "user PIN not initialized") \
    X(USER_TYPE_INVALID, "user type invalid") \
    X(USER_TOO_MANY_TYPES, "too many user types") \
    X(PIN_INCORRECT, "PIN incorrect") \
    X(PIN_INVALID, "PIN has invalid characters") \
    X(PIN_LEN_RANGE, "PIN length out of range") \
    X(PIN_LOCKED, "PIN locked") \
    X(PIN_EXPIRED, "PIN expired") \
    X(OBJECT_HANDLE_INVALID, "object handle invalid") \
    X(KEY_HANDLE_INVALID, "key handle invalid") \
    X(WRAPPING_KEY_HANDLE_INVALID, "wrapping key handle invalid") \
    X(UNWRAPPING_KEY_HANDLE_INVALID, "unwrapping key handle invalid") \
    X(ATTRIBUTE_TYPE_INVALID, "attribute type invalid") \
    X(ATTRIBUTE_VALUE_INVALID, "attribute value invalid") \
    X(ATTRIBUTE_READ_ONLY, "attribute read-only") \
    X(ATTRIBUTE_SENSITIVE, "attribute sensitive") \
    X(TEMPLATE_INCOMPLETE, "template incomplete") \
    X(TEMPLATE_INCONSISTENT, "template inconsistent") \
    X(ACTION_PROHIBITED, "action prohibited") \
    X(KEY_TYPE_INCONSISTENT, "key type inconsistent") \
    X(KEY_SIZE_RANGE, "key size out of range") \
    X(KEY_FUNCTION_NOT_PERMITTED, "key function not permitted") \
    X(KEY_NOT_WRAPPABLE, "key not wrappable") \
    X(KEY_UNEXTRACTABLE, "key unextractable") \
    X(WRAPPING_KEY_TYPE_INCONSISTENT, "wrapping key type inconsistent") \
    X(UNWRAPPING_KEY_TYPE_INCONSISTENT, "unwrapping key type inconsistent") \
    X(WRAPPED_KEY_INVALID, "wrapped key invalid") \
    X(WRAPPED_KEY_LEN_RANGE, "wrapped key length out of range") \
    X(MECHANISM_INVALID, "mechanism invalid") \
    X(MECHANISM_PARAM_INVALID, "mechanism parameter invalid") \
    X(OPERATION_ACTIVE, "operation active") \
    X(OPERATION_NOT_INITIALIZED, "operation not initialized") \
    X(DATA_INVALID, "data invalid") \
    X(DATA_LEN_RANGE, "data length out of range") \
    X(ENCRYPTED_DATA_INVALID, "encrypted data invalid") \
    X(ENCRYPTED_DATA_LEN_RANGE, "encrypted data length out of range") \
    X(SIGNATURE_INVALID, "signature invalid") \
    X(SIGNATURE_LEN_RANGE, "signature length out of range") \
    X(BUFFER_TOO_SMALL, "buffer too small") \
    X(RANDOM_SEED_NOT_SUPPORTED, "random seeding not supported") \
    X(STATE_UNSAVEABLE, "operation state not saveable") \
    X(SAVED_STATE_INVALID, "saved state invalid") \
    X(DOMAIN_PARAMS_INVALID, "domain parameters invalid") \
    X(CURVE_NOT_SUPPORTED, "curve not supported") \
    X(FUNCTION_NOT_PARALLEL, "function not parallel") \
    X(INFORMATION_SENSITIVE, "information sensitive") \
    X(DEVICE_ERROR, "device error") \
    X(DEVICE_REMOVED, "device removed (connection to the remote HSM lost)") \
    X(LEASED, "the key is leased to a remote signer for a moment: try again")

typedef enum {
#define CF_ERR_ENUM(name, msg) CF_E_##name,
    CF_ERRORS(CF_ERR_ENUM)
#undef CF_ERR_ENUM
    CF_E__COUNT
} cf_err;

#define CF_OK CF_E_OK

/* "CF_E_PIN_LOCKED" style name, and a sentence fragment for users. Never NULL. */
const char *cf_err_name(cf_err e);
const char *cf_err_message(cf_err e);

/* Guards (s2n-style): a function returns its status; the caller guards and returns. */
#define CF_TRY(expr) do { cf_err cf_try_e_ = (expr); if (cf_try_e_ != CF_OK) return cf_try_e_; } while (0)
#define CF_ENSURE(cond, err) do { if (!(cond)) return (err); } while (0)
/* For functions with a cleanup label: sets `rv` and jumps to `out`. */
#define CF_GUARD(expr) do { rv = (expr); if (rv != CF_OK) goto out; } while (0)
#define CF_CHECK(cond, err) do { if (!(cond)) { rv = (err); goto out; } } while (0)

#if defined(__GNUC__)
#define CF_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define CF_WARN_UNUSED
#endif
