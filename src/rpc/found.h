/* found.h: the client's finds answered at init (found.c; docs/protocol.md, FIND_OBJECTS_FETCH).
 * Internal to the remote backend (client.c, pool.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "hsm/pkcs11.h"

/* The handles FIND_OBJECTS_FETCH asks for; the server's cap is the same. */
#define RPC_FOUND_MAX 64u

/* Whether s has a find answered here (a second C_FindObjectsInit is then OPERATION_ACTIVE). */
bool rpc_found_active(CK_SESSION_HANDLE s);
/* Keeps the n first handles of s's find (more: the server holds the rest, its find still
 * active). false when the table has no room for s: the caller ends the server's find if it is
 * active and falls back to the plain calls. */
bool rpc_found_put(CK_SESSION_HANDLE s, const CK_OBJECT_HANDLE *h, size_t n, bool more);
/* C_FindObjects on s: false if s has no find here. Else up to max handles into out (*count),
 * or, the kept ones used up, *ask_server when the server holds more. */
bool rpc_found_take(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count, bool *ask_server);
/* C_FindObjectsFinal on s: false if s has no find here; else it ends, and *ask_server says whether
 * the server's find is still active (to be ended there). */
bool rpc_found_end(CK_SESSION_HANDLE s, bool *ask_server);
/* s closed, the sessions for which gone(s, arg) is true (C_CloseAllSessions; called with the
 * table's lock held), or every session (a new application, C_Finalize): their finds go. */
void rpc_found_forget(CK_SESSION_HANDLE s);
void rpc_found_forget_if(bool (*gone)(CK_SESSION_HANDLE s, void *arg), void *arg);
void rpc_found_forget_all(void);
/* In a fork child: an empty table, its lock new. */
void rpc_found_after_fork(void);
