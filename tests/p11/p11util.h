/* p11util.h: helpers for the C test programs of tests/p11, which drive the BUILT module the way an
 * application does: dlopen, C_GetFunctionList, and only the function list from then on.
 *
 * The module is COFFER_MODULE_PATH (a compile definition: the build's libcoffer-pkcs11.so), or
 * $COFFER_MODULE when set. Each test program gets its own store in a temporary folder, named by a
 * temporary configuration file in $COFFER_CONF (set before C_Initialize, which reads it). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

#define P11_SO_PIN "87654321"
#define P11_USER_PIN "1234"
#define P11_LABEL "coffer-test"

typedef struct {
    char dir[256];     /* the temporary folder: coffer.conf and store/ */
    char conf[320];    /* dir/coffer.conf, also in $COFFER_CONF */
} p11_store;

/* dlopen()s the module and returns its function list, or NULL after printing why. *handle gets
 * the dlopen handle (for dlsym of coffer_* extensions and for p11_unload). */
CK_FUNCTION_LIST_PTR p11_load(void **handle);
void p11_unload(void *handle);

/* Creates the temporary folder and the configuration file ([store] dir, a low PBKDF2 iteration
 * count so that tests are fast), plus extra INI text if not NULL, and points $COFFER_CONF at it.
 * Returns false after printing why. */
bool p11_store_create(p11_store *st, const char *extra_ini);
/* Removes the folder and everything in it, and unsets $COFFER_CONF. */
void p11_store_destroy(p11_store *st);

/* Copies s into a blank padded field of n bytes (labels, no NUL). */
void p11_pad(CK_UTF8CHAR *field, size_t n, const char *s);

/* The slot whose token is not initialized yet (the engine keeps exactly one). */
CK_RV p11_free_slot(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID *slot);
/* Initializes the token in the free slot with P11_SO_PIN and label, then sets the user PIN to
 * P11_USER_PIN (SO session, C_InitPIN). *slot gets the token's slot. */
CK_RV p11_init_token(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *slot);
/* Opens a read/write session on slot and logs in as user (CKU_USER, CKU_SO) with pin, unless pin
 * is NULL (then no login). */
CK_RV p11_open(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_USER_TYPE user, const char *pin,
               CK_SESSION_HANDLE *session);

/* "CKR_ARGUMENTS_BAD", or "CKR_0x..." for a value the table does not name. Not thread-safe for
 * unnamed values. */
const char *p11_rv_name(CK_RV rv);

/* For cmocka programs: compares return values and names both on failure. */
#ifdef assert_true
#define assert_rv(got, want) \
    do { \
        CK_RV got_ = (got), want_ = (want); \
        if (got_ != want_) \
            fail_msg("%s returned %s, expected %s", #got, p11_rv_name(got_), p11_rv_name(want_)); \
    } while (0)
#endif
