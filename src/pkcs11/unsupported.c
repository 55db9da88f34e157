/* unsupported.c: the 2.40 functions coffer does not implement, each still answering in the
 * spec's order: CRYPTOKI_NOT_INITIALIZED first, then SESSION_HANDLE_INVALID for a bad session,
 * then its documented code (docs/pkcs11.md). C_WaitForSlotEvent lives in slot.c, C_SeedRandom in
 * keys.c.
 *
 * - Operation state (5.6): saving an operation would export the state of a keyed computation
 *   (e.g. an HMAC's inner hash) out of the module.
 * - Sign/verify with recovery (5.11, 5.12): no mechanism of the table supports it.
 * - Dual-function operations (5.13): rarely used; an application can make the two calls.
 * - Parallel functions (5.16): legacy; 2.40 requires CKR_FUNCTION_NOT_PARALLEL. */
#include "pkcs11/p11.h"

#define P11_SESSION(h) do { CK_RV rv_ = p11_check_session(h); if (rv_ != CKR_OK) return rv_; } while (0)

static CK_RV not_supported(CK_SESSION_HANDLE h)
{
    P11_LIVE();
    P11_SESSION(h);
    return CKR_FUNCTION_NOT_SUPPORTED;
}

P11_EXPORT CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                     CK_ULONG_PTR pulOperationStateLen)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                     CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                                     CK_OBJECT_HANDLE hAuthenticationKey)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                               CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                                 CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                       CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                       CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                     CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                       CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return not_supported(hSession);
}

P11_EXPORT CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
    P11_LIVE();
    P11_SESSION(hSession);
    return CKR_FUNCTION_NOT_PARALLEL;
}

P11_EXPORT CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
    P11_LIVE();
    P11_SESSION(hSession);
    return CKR_FUNCTION_NOT_PARALLEL;
}
