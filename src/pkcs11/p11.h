/* p11.h: what the files of the PKCS#11 ABI layer share (internal to src/pkcs11).
 *
 * The layer checks arguments and translates; it never does crypto and never touches SQLite. Every
 * entry point follows the same order, so that the codes an application sees are predictable:
 *   1. initialized in this process?        else CKR_CRYPTOKI_NOT_INITIALIZED
 *   2. pointers and lengths the spec needs? else CKR_ARGUMENTS_BAD
 *   3. the engine call (src/hsm/hsm.h), whose cf_err is mapped by p11_rv().
 * Nothing here logs an argument: PINs and key bytes pass through these functions. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "hsm/hsm.h"
#include "pkcs11/backend.h"
#include "hsm/pkcs11.h"

/* Entry points leave the module (the build uses -fvisibility=hidden; exports.map keeps C_* and
 * coffer_* only). */
#define P11_EXPORT __attribute__((visibility("default")))

/* cf_err -> CK_RV (rv.c). */
CK_RV p11_rv(cf_err e);

/* True when C_Initialize succeeded in this process and C_Finalize has not run since (module.c).
 * A child of fork() is not initialized until it calls C_Initialize itself (PKCS#11 2.40 base
 * spec 6.7.1). */
bool p11_live(void);

/* CKR_OK when h names an open session, else the engine's answer (SESSION_HANDLE_INVALID...).
 * Used by the functions that are not supported but take a session (session.c). */
CK_RV p11_check_session(CK_SESSION_HANDLE h);

/* A template the application hands in: the array is present when n > 0, and each attribute's
 * value pointer is present when its length is not 0 (object.c). */
bool p11_template_ok(const CK_ATTRIBUTE *t, CK_ULONG n);

/* An input buffer for the engine: never NULL, so that (NULL, 0) reaches it as ("", 0). */
static inline const uint8_t *p11_in(const void *p)
{
    return p != NULL ? (const uint8_t *)p : (const uint8_t *)"";
}

#define P11_LIVE() do { if (!p11_live()) return CKR_CRYPTOKI_NOT_INITIALIZED; } while (0)
#define P11_ARG(cond) do { if (!(cond)) return CKR_ARGUMENTS_BAD; } while (0)
/* An input (pointer, length) pair: the pointer may be NULL only for an empty buffer. Lengths are
 * CK_ULONG and the engine takes size_t: equal on LP64, but a length size_t cannot hold cannot
 * describe a real buffer either. */
#if ULONG_MAX > SIZE_MAX
#define P11_BUF(p, n) P11_ARG(((p) != NULL || (n) == 0) && (n) <= SIZE_MAX)
#else
#define P11_BUF(p, n) P11_ARG((p) != NULL || (n) == 0)
#endif
#define P11_TEMPLATE(t, n) P11_ARG(p11_template_ok((t), (n)))
/* A mechanism: present, and its parameter present when its length is not 0. */
#define P11_MECH(m) \
    do { \
        P11_ARG((m) != NULL); \
        P11_BUF((m)->pParameter, (m)->ulParameterLen); \
    } while (0)
