/* p11.h: the CLI's view of a PKCS#11 module: loading it with dlopen, finding a token by RFC 7512
 * URI or label, opening sessions and logging in, finding objects and reading their attributes.
 *
 * Every function that can fail prints one sentence naming what failed and the CKR_* value, and
 * returns CLI_FAIL (or CLI_USAGE for a malformed name); callers just return the code. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "cli/cli.h"
#include "hsm/pkcs11.h"

typedef struct {
    void *dl;                  /* dlopen handle */
    CK_FUNCTION_LIST_PTR f;    /* the module's function list, after C_Initialize */
    char path[4096];           /* the file loaded */
} p11_module;

/* Loads the module (--module, else $COFFER_MODULE, else the build-tree module if that file exists,
 * else the installed one) and calls C_Initialize. */
int p11_load(const cli_opts *o, p11_module *m);
/* C_Finalize and dlclose; safe on a zeroed or failed module. */
void p11_unload(p11_module *m);

/* Prints "coffer: <what> failed: <hint> (CKR_X)" for rv. Returns CLI_FAIL. */
int p11_fail(const char *what, CK_RV rv);

/* The slots that hold a token (C_GetSlotList(CK_TRUE)). *slots is malloc'd. */
int p11_slots(p11_module *m, CK_SLOT_ID **slots, CK_ULONG *n);

/* Finds the one initialized token named by `name`: a pkcs11: URI (token attributes and slot-id
 * are matched) or a token label. Not found or ambiguous: prints why (pointing at
 * `coffer token list`) and returns CLI_FAIL. ti may be NULL. */
int p11_find_token(p11_module *m, const char *name, CK_SLOT_ID *slot, CK_TOKEN_INFO *ti);

/* "pkcs11:model=...;manufacturer=...;serial=...;token=..." for a token; free the result. */
char *p11_token_uri(const CK_TOKEN_INFO *ti);
/* The same plus object=, id= and type= for an object; label/id may be NULL/empty. */
char *p11_object_uri(const CK_TOKEN_INFO *ti, const uint8_t *label, size_t labellen,
                     const uint8_t *id, size_t idlen, CK_OBJECT_CLASS cls);

int p11_open(p11_module *m, CK_SLOT_ID slot, bool rw, CK_SESSION_HANDLE *s);
/* C_Login with the given PIN. On CKR_PIN_INCORRECT the message says how many attempts remain as
 * far as the token flags tell (count low, final try, locked). */
int p11_login(p11_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE s, CK_USER_TYPE who, const char *pin);
/* Reports a failed PIN-checking call (`what` failed) for role `who`, with the attempts left as the
 * token flags tell after CKR_PIN_INCORRECT. Returns CLI_FAIL. */
int p11_pin_fail(p11_module *m, CK_SLOT_ID slot, CK_USER_TYPE who, const char *what, CK_RV rv);
/* Gets the PIN of `kind` (pin_get with `mode`) and logs in. With PIN_FROM_FILE_OR_ENV and no PIN
 * given, does nothing and sets *logged_in false. logged_in may be NULL. */
int p11_login_with(p11_module *m, const cli_opts *o, CK_SLOT_ID slot, CK_SESSION_HANDLE s,
                   pin_kind kind, pin_mode mode, bool *logged_in);

/* All objects matching the template. *objs is malloc'd (may be NULL when *n is 0). */
int p11_find(p11_module *m, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG nt,
             CK_OBJECT_HANDLE **objs, CK_ULONG *n);

/* One attribute in a malloc'd buffer (NUL-terminated for convenience, the NUL not counted).
 * Returns false (and *val NULL, *len 0) when the attribute is absent, sensitive or unreadable. */
bool p11_attr(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
              uint8_t **val, size_t *len);
bool p11_attr_ulong(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                    CK_ULONG *v);
/* -1 when unreadable, else 0 / 1. */
int p11_attr_bool(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type);
