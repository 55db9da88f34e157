/* audit_int.h: how the engine reports audit events (audit.c). None of these may be called with
 * g.lock held: they take it briefly to read the session and the object. */
#pragma once
#include "hsm/internal.h"

bool hsm_audit_on(void);
/* Fills app, slot and (if oh names an object session h sees) object id and label from session h. False when no
 * hook is installed or the session does not exist (then nothing is reported). */
bool hsm_audit_prepare(hsm_audit_event *e, hsm_audit_type type, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh);
/* Fills other_object and other_label: the second key a call names (WRAP, DERIVE), if session h
 * sees it. */
void hsm_audit_other(hsm_audit_event *e, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh);
/* Stamps time and result and calls the hook. */
void hsm_audit_emit(hsm_audit_event *e, cf_err result);
/* prepare + emit. */
void hsm_audit_session(hsm_audit_type type, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, cf_err result);
