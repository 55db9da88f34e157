/* crypto.c: encryption, decryption, message digesting, signing and verifying (PKCS#11 2.40 base
 * spec 5.8 to 5.11): argument checks, then one engine call each. The output length protocol
 * (NULL output asks for the length, a short buffer gives BUFFER_TOO_SMALL and keeps the operation
 * active) is the engine's (hsm_op_oneshot / hsm_op_update / hsm_op_final).
 * A bad argument to a call of an active operation ends that operation, as any failure other
 * than BUFFER_TOO_SMALL does (5.2). */
#include "pkcs11/p11.h"

#define OP_ARG(cond, h, kind) \
    do { \
        if (!(cond)) { \
            B->op_abort((h), (kind)); \
            return CKR_ARGUMENTS_BAD; \
        } \
    } while (0)
#define OP_BUF(p, n, h, kind) OP_ARG((p) != NULL || (n) == 0, h, kind)

static CK_RV op_init(CK_SESSION_HANDLE h, hsm_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    P11_LIVE();
    P11_MECH(m);
    return p11_rv(B->op_init(h, kind, m, key));
}

/* C_Encrypt, C_Decrypt, C_Digest, C_Sign. */
static CK_RV oneshot(CK_SESSION_HANDLE h, hsm_op_kind kind, const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out,
                     CK_ULONG *outlen)
{
    P11_LIVE();
    OP_BUF(in, inlen, h, kind);
    OP_ARG(outlen != NULL, h, kind);
    return p11_rv(B->op_oneshot(h, kind, p11_in(in), inlen, out, outlen));
}

/* C_EncryptUpdate, C_DecryptUpdate: output may be produced. */
static CK_RV update_out(CK_SESSION_HANDLE h, hsm_op_kind kind, const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out,
                        CK_ULONG *outlen)
{
    P11_LIVE();
    OP_BUF(in, inlen, h, kind);
    OP_ARG(outlen != NULL, h, kind);
    return p11_rv(B->op_update(h, kind, p11_in(in), inlen, out, outlen));
}

/* C_DigestUpdate, C_SignUpdate, C_VerifyUpdate: no output. */
static CK_RV update(CK_SESSION_HANDLE h, hsm_op_kind kind, const CK_BYTE *in, CK_ULONG inlen)
{
    P11_LIVE();
    OP_BUF(in, inlen, h, kind);
    return p11_rv(B->op_update(h, kind, p11_in(in), inlen, NULL, NULL));
}

/* C_EncryptFinal, C_DecryptFinal, C_DigestFinal, C_SignFinal. */
static CK_RV final(CK_SESSION_HANDLE h, hsm_op_kind kind, CK_BYTE *out, CK_ULONG *outlen)
{
    P11_LIVE();
    OP_ARG(outlen != NULL, h, kind);
    return p11_rv(B->op_final(h, kind, out, outlen));
}

/* ---- encryption (5.8) ---- */
P11_EXPORT CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, HSM_OP_ENCRYPT, pMechanism, hKey);
}

P11_EXPORT CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                           CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
    return oneshot(hSession, HSM_OP_ENCRYPT, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen);
}

P11_EXPORT CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                 CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return update_out(hSession, HSM_OP_ENCRYPT, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

P11_EXPORT CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                                CK_ULONG_PTR pulLastEncryptedPartLen)
{
    return final(hSession, HSM_OP_ENCRYPT, pLastEncryptedPart, pulLastEncryptedPartLen);
}

/* ---- decryption (5.9) ---- */
P11_EXPORT CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, HSM_OP_DECRYPT, pMechanism, hKey);
}

P11_EXPORT CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
                           CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    return oneshot(hSession, HSM_OP_DECRYPT, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen);
}

P11_EXPORT CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                 CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return update_out(hSession, HSM_OP_DECRYPT, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

P11_EXPORT CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen)
{
    return final(hSession, HSM_OP_DECRYPT, pLastPart, pulLastPartLen);
}

/* ---- message digesting (5.10) ---- */
P11_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
    return op_init(hSession, HSM_OP_DIGEST, pMechanism, CK_INVALID_HANDLE);
}

P11_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
                          CK_ULONG_PTR pulDigestLen)
{
    return oneshot(hSession, HSM_OP_DIGEST, pData, ulDataLen, pDigest, pulDigestLen);
}

P11_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return update(hSession, HSM_OP_DIGEST, pPart, ulPartLen);
}

P11_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    P11_LIVE();
    return p11_rv(B->digest_key(hSession, hKey));
}

P11_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    return final(hSession, HSM_OP_DIGEST, pDigest, pulDigestLen);
}

/* ---- signing (5.11) ---- */
P11_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, HSM_OP_SIGN, pMechanism, hKey);
}

P11_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                        CK_ULONG_PTR pulSignatureLen)
{
    return oneshot(hSession, HSM_OP_SIGN, pData, ulDataLen, pSignature, pulSignatureLen);
}

P11_EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return update(hSession, HSM_OP_SIGN, pPart, ulPartLen);
}

P11_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    return final(hSession, HSM_OP_SIGN, pSignature, pulSignatureLen);
}

/* ---- verifying (5.12) ---- */
P11_EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, HSM_OP_VERIFY, pMechanism, hKey);
}

P11_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                          CK_ULONG ulSignatureLen)
{
    P11_LIVE();
    OP_BUF(pData, ulDataLen, hSession, HSM_OP_VERIFY);
    OP_BUF(pSignature, ulSignatureLen, hSession, HSM_OP_VERIFY);
    return p11_rv(B->verify(hSession, p11_in(pData), ulDataLen, p11_in(pSignature), ulSignatureLen));
}

P11_EXPORT CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return update(hSession, HSM_OP_VERIFY, pPart, ulPartLen);
}

P11_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    P11_LIVE();
    OP_BUF(pSignature, ulSignatureLen, hSession, HSM_OP_VERIFY);
    return p11_rv(B->verify_final(hSession, p11_in(pSignature), ulSignatureLen));
}
