/* status.c: cf_err <-> the wire status of RESPONSE and ERROR frames (docs/protocol.md, "Status
 * codes"). The numbers are the protocol's, written out here so that renumbering the engine's
 * error list (base/error.h) cannot change what goes on the wire. A new cf_err is a -Wswitch
 * error in rpc_status_to_wire until it gets the next free number here; a duplicate name is a
 * duplicate case in one switch, a duplicate number in the other. */
#include "rpc/internal.h"

/* X(cf_err name, wire number). Append only. */
#define RPC_STATUSES(X) \
    X(OK, 0) \
    X(NOMEM, 1) \
    X(INTERNAL, 2) \
    X(IO, 3) \
    X(ARGS, 4) \
    X(SHORT, 5) \
    X(OVERFLOW, 6) \
    X(FORMAT, 7) \
    X(CONFIG, 8) \
    X(CRYPTO, 9) \
    X(STORE, 10) \
    X(STORE_BUSY, 11) \
    X(STORE_CORRUPT, 12) \
    X(NOT_FOUND, 13) \
    X(NOT_INITIALIZED, 14) \
    X(ALREADY_INITIALIZED, 15) \
    X(NOT_SUPPORTED, 16) \
    X(CANT_LOCK, 17) \
    X(SLOT_ID_INVALID, 18) \
    X(TOKEN_NOT_PRESENT, 19) \
    X(TOKEN_NOT_RECOGNIZED, 20) \
    X(TOKEN_WRITE_PROTECTED, 21) \
    X(SESSION_HANDLE_INVALID, 22) \
    X(SESSION_COUNT, 23) \
    X(SESSION_PARALLEL_NOT_SUPPORTED, 24) \
    X(SESSION_READ_ONLY, 25) \
    X(SESSION_READ_ONLY_EXISTS, 26) \
    X(SESSION_READ_WRITE_SO_EXISTS, 27) \
    X(SESSION_EXISTS, 28) \
    X(USER_NOT_LOGGED_IN, 29) \
    X(USER_ALREADY_LOGGED_IN, 30) \
    X(USER_ANOTHER_ALREADY_LOGGED_IN, 31) \
    X(USER_PIN_NOT_INITIALIZED, 32) \
    X(USER_TYPE_INVALID, 33) \
    X(USER_TOO_MANY_TYPES, 34) \
    X(PIN_INCORRECT, 35) \
    X(PIN_INVALID, 36) \
    X(PIN_LEN_RANGE, 37) \
    X(PIN_LOCKED, 38) \
    X(PIN_EXPIRED, 39) \
    X(OBJECT_HANDLE_INVALID, 40) \
    X(KEY_HANDLE_INVALID, 41) \
    X(WRAPPING_KEY_HANDLE_INVALID, 42) \
    X(UNWRAPPING_KEY_HANDLE_INVALID, 43) \
    X(ATTRIBUTE_TYPE_INVALID, 44) \
    X(ATTRIBUTE_VALUE_INVALID, 45) \
    X(ATTRIBUTE_READ_ONLY, 46) \
    X(ATTRIBUTE_SENSITIVE, 47) \
    X(TEMPLATE_INCOMPLETE, 48) \
    X(TEMPLATE_INCONSISTENT, 49) \
    X(ACTION_PROHIBITED, 50) \
    X(KEY_TYPE_INCONSISTENT, 51) \
    X(KEY_SIZE_RANGE, 52) \
    X(KEY_FUNCTION_NOT_PERMITTED, 53) \
    X(KEY_NOT_WRAPPABLE, 54) \
    X(KEY_UNEXTRACTABLE, 55) \
    X(WRAPPING_KEY_TYPE_INCONSISTENT, 56) \
    X(UNWRAPPING_KEY_TYPE_INCONSISTENT, 57) \
    X(WRAPPED_KEY_INVALID, 58) \
    X(WRAPPED_KEY_LEN_RANGE, 59) \
    X(MECHANISM_INVALID, 60) \
    X(MECHANISM_PARAM_INVALID, 61) \
    X(OPERATION_ACTIVE, 62) \
    X(OPERATION_NOT_INITIALIZED, 63) \
    X(DATA_INVALID, 64) \
    X(DATA_LEN_RANGE, 65) \
    X(ENCRYPTED_DATA_INVALID, 66) \
    X(ENCRYPTED_DATA_LEN_RANGE, 67) \
    X(SIGNATURE_INVALID, 68) \
    X(SIGNATURE_LEN_RANGE, 69) \
    X(BUFFER_TOO_SMALL, 70) \
    X(RANDOM_SEED_NOT_SUPPORTED, 71) \
    X(STATE_UNSAVEABLE, 72) \
    X(SAVED_STATE_INVALID, 73) \
    X(DOMAIN_PARAMS_INVALID, 74) \
    X(CURVE_NOT_SUPPORTED, 75) \
    X(FUNCTION_NOT_PARALLEL, 76) \
    X(INFORMATION_SENSITIVE, 77) \
    X(DEVICE_ERROR, 78) \
    X(DEVICE_REMOVED, 79) \
    X(LEASED, 80) \
    /* end */

uint32_t rpc_status_to_wire(cf_err e)
{
    switch (e) {
#define TO_WIRE(name, code) case CF_E_##name: return code;
    RPC_STATUSES(TO_WIRE)
#undef TO_WIRE
    case CF_E__COUNT:
        break;
    }
    return rpc_status_to_wire(CF_E_INTERNAL);
}

cf_err rpc_status_from_wire(uint32_t wire, cf_err *out)
{
    switch (wire) {
#define FROM_WIRE(name, code) case code: *out = CF_E_##name; return CF_OK;
    RPC_STATUSES(FROM_WIRE)
#undef FROM_WIRE
    default:
        return CF_E_FORMAT;
    }
}

bool rpc_status_has_outputs(uint32_t fn, cf_err status)
{
    if (status == CF_OK || status == CF_E_BUFFER_TOO_SMALL)
        return true;
    return fn == RPC_FN_GET_ATTRIBUTE_VALUE &&
           (status == CF_E_ATTRIBUTE_SENSITIVE || status == CF_E_ATTRIBUTE_TYPE_INVALID);
}
