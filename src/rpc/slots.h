/* slots.h: the slot of each session this process opened on the server (slots.c), so that
 * C_CloseAllSessions(slot) forgets the client-only state (pending inits, lease.c; finds answered
 * at init, found.c) of that slot's sessions and no other's. Internal to the remote backend. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "hsm/pkcs11.h"

/* C_OpenSession gave s on slot. Each addition is numbered (rpc_slots_mark). */
void rpc_slots_add(CK_SESSION_HANDLE s, CK_SLOT_ID slot);
/* The number the next addition gets: C_CloseAllSessions takes it before its round trip, so that a
 * session another thread opens meanwhile is not taken for one it closed. */
uint64_t rpc_slots_mark(void);
/* s closed. */
void rpc_slots_remove(CK_SESSION_HANDLE s);
/* Whether s may be a session of slot added before mark: it is, or its slot is unknown (a session
 * we could not record, for want of memory): a caller forgetting the state of slot's sessions
 * forgets s's too. */
bool rpc_slots_maybe_on(CK_SESSION_HANDLE s, CK_SLOT_ID slot, uint64_t mark);
/* C_CloseAllSessions(slot) succeeded: its sessions added before mark go. */
void rpc_slots_remove_slot(CK_SLOT_ID slot, uint64_t mark);
/* Every session goes: a new application on the server, C_Finalize. */
void rpc_slots_forget_all(void);
/* In a fork child: an empty map, its lock new. */
void rpc_slots_after_fork(void);
