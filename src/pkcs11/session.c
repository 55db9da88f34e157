/* session.c: sessions and login (PKCS#11 2.40 base spec 5.6), and the session check that the
 * unsupported functions taking a session make before saying so. */
#include "pkcs11/p11.h"

CK_RV p11_check_session(CK_SESSION_HANDLE h)
{
    CK_SESSION_INFO info;
    return p11_rv(B->get_session_info(h, &info));
}

/* Notify and pApplication are accepted and ignored: coffer never calls back (surrender
 * notifications are optional, 2.40 base spec 5.16). */
P11_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                               CK_SESSION_HANDLE_PTR phSession)
{
    P11_LIVE();
    P11_ARG(phSession != NULL);
    /* 2.40 base spec 5.6: CKF_SERIAL_SESSION must always be set, for legacy reasons. */
    if (!(flags & CKF_SERIAL_SESSION))
        return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    return p11_rv(B->open_session(slotID, flags, phSession));
}

P11_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
    P11_LIVE();
    return p11_rv(B->close_session(hSession));
}

P11_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
    P11_LIVE();
    return p11_rv(B->close_all_sessions(slotID));
}

P11_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    P11_LIVE();
    P11_ARG(pInfo != NULL);
    return p11_rv(B->get_session_info(hSession, pInfo));
}

P11_EXPORT CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    P11_LIVE();
    P11_BUF(pPin, ulPinLen);
    return p11_rv(B->login(hSession, userType, p11_in(pPin), ulPinLen));
}

P11_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
    P11_LIVE();
    return p11_rv(B->logout(hSession));
}
