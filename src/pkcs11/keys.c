/* keys.c: key management and random numbers (PKCS#11 2.40 base spec 5.13 and 5.14). Templates
 * and mechanisms are checked for pointer sanity only; their meaning is the engine's. */
#include "pkcs11/p11.h"

P11_EXPORT CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
    P11_LIVE();
    P11_MECH(pMechanism);
    P11_TEMPLATE(pTemplate, ulCount);
    P11_ARG(phKey != NULL);
    return p11_rv(B->generate_key(hSession, pMechanism, pTemplate, ulCount, phKey));
}

P11_EXPORT CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                   CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                                   CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                                   CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
    P11_LIVE();
    P11_MECH(pMechanism);
    P11_TEMPLATE(pPublicKeyTemplate, ulPublicKeyAttributeCount);
    P11_TEMPLATE(pPrivateKeyTemplate, ulPrivateKeyAttributeCount);
    P11_ARG(phPublicKey != NULL && phPrivateKey != NULL);
    return p11_rv(B->generate_key_pair(hSession, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount,
                                        pPrivateKeyTemplate, ulPrivateKeyAttributeCount, phPublicKey,
                                        phPrivateKey));
}

/* pWrappedKey NULL asks for the length (the engine's length protocol). */
P11_EXPORT CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,
                           CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
    P11_LIVE();
    P11_MECH(pMechanism);
    P11_ARG(pulWrappedKeyLen != NULL);
    return p11_rv(B->wrap_key(hSession, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen));
}

P11_EXPORT CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                             CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
                             CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    P11_LIVE();
    P11_MECH(pMechanism);
    P11_BUF(pWrappedKey, ulWrappedKeyLen);
    P11_TEMPLATE(pTemplate, ulAttributeCount);
    P11_ARG(phKey != NULL);
    return p11_rv(B->unwrap_key(hSession, pMechanism, hUnwrappingKey, p11_in(pWrappedKey), ulWrappedKeyLen,
                                 pTemplate, ulAttributeCount, phKey));
}

P11_EXPORT CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
                             CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    P11_LIVE();
    P11_MECH(pMechanism);
    P11_TEMPLATE(pTemplate, ulAttributeCount);
    P11_ARG(phKey != NULL);
    return p11_rv(B->derive_key(hSession, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey));
}

/* The generator is OpenSSL's DRBG, seeded by the operating system; application seed material is
 * not mixed in (2.40 base spec 5.15 allows refusing it). */
P11_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
    P11_LIVE();
    P11_BUF(pSeed, ulSeedLen);
    CK_RV rv = p11_check_session(hSession);
    return rv != CKR_OK ? rv : CKR_RANDOM_SEED_NOT_SUPPORTED;
}

P11_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData, CK_ULONG ulRandomLen)
{
    P11_LIVE();
    P11_BUF(pRandomData, ulRandomLen);
    /* (NULL, 0) reaches the engine as a zero-length buffer that is never written. */
    uint8_t none;
    return p11_rv(B->generate_random(hSession, pRandomData != NULL ? pRandomData : &none, ulRandomLen));
}
