/* slot.c: slots, tokens and mechanisms (PKCS#11 2.40 base spec 5.5), PINs, and the coffer_*
 * extension the CLI reaches by dlsym. The length protocol of the list functions (NULL list asks
 * for the count, a short one gives BUFFER_TOO_SMALL) is the engine's. */
#include "pkcs11/p11.h"

P11_EXPORT CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    P11_LIVE();
    P11_ARG(pulCount != NULL);
    return p11_rv(B->get_slot_list(tokenPresent != CK_FALSE, pSlotList, pulCount));
}

P11_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    P11_LIVE();
    P11_ARG(pInfo != NULL);
    return p11_rv(B->get_slot_info(slotID, pInfo));
}

P11_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    P11_LIVE();
    P11_ARG(pInfo != NULL);
    return p11_rv(B->get_token_info(slotID, pInfo));
}

P11_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                                    CK_ULONG_PTR pulCount)
{
    P11_LIVE();
    P11_ARG(pulCount != NULL);
    return p11_rv(B->get_mechanism_list(slotID, pMechanismList, pulCount));
}

P11_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
    P11_LIVE();
    P11_ARG(pInfo != NULL);
    return p11_rv(B->get_mechanism_info(slotID, type, pInfo));
}

/* pPin NULL with length 0 would mean a protected authentication path, which coffer has not
 * (CKF_PROTECTED_AUTHENTICATION_PATH is never set): the engine sees an empty PIN and rejects its
 * length. pLabel is 32 bytes, blank padded, never NUL terminated. */
P11_EXPORT CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
    P11_LIVE();
    P11_BUF(pPin, ulPinLen);
    P11_ARG(pLabel != NULL);
    return p11_rv(B->init_token(slotID, p11_in(pPin), ulPinLen, pLabel));
}

P11_EXPORT CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    P11_LIVE();
    P11_BUF(pPin, ulPinLen);
    return p11_rv(B->init_pin(hSession, p11_in(pPin), ulPinLen));
}

P11_EXPORT CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
                          CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
    P11_LIVE();
    P11_BUF(pOldPin, ulOldLen);
    P11_BUF(pNewPin, ulNewLen);
    return p11_rv(B->set_pin(hSession, p11_in(pOldPin), ulOldLen, p11_in(pNewPin), ulNewLen));
}

/* Slot events never happen (tokens appear only through C_InitToken in a process), and a
 * blocking wait would need a thread of ours. */
P11_EXPORT CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    P11_LIVE();
    return CKR_FUNCTION_NOT_SUPPORTED;
}

/* coffer extension: deletes the token in slot and every object in it, given its SO PIN. The
 * slot id is retired. Declared for callers in the CLI (found with dlsym, as the module may be
 * loaded from any path). */
P11_EXPORT CK_RV coffer_delete_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR so_pin, CK_ULONG len);
P11_EXPORT CK_RV coffer_delete_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR so_pin, CK_ULONG len)
{
    P11_LIVE();
    P11_BUF(so_pin, len);
    return p11_rv(B->delete_token(slot, p11_in(so_pin), len));
}

/* coffer extension: wrong PINs (CKU_USER or CKU_SO) the token still accepts before it locks, or
 * CK_UNAVAILABLE_INFORMATION without a limit. PKCS#11 itself only offers the COUNT_LOW /
 * FINAL_TRY / LOCKED flags; the CLI uses this to say how many attempts are left. */
P11_EXPORT CK_RV coffer_pin_tries_left(CK_SLOT_ID slot, CK_USER_TYPE user, CK_ULONG_PTR left);
P11_EXPORT CK_RV coffer_pin_tries_left(CK_SLOT_ID slot, CK_USER_TYPE user, CK_ULONG_PTR left)
{
    P11_LIVE();
    P11_ARG(left != NULL);
    return p11_rv(B->pin_tries_left(slot, user, left));
}
