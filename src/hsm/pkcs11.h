/* pkcs11.h: the one place coffer includes the PKCS#11 header (p11-kit's, version 2.40), plus the
 * few later definitions coffer uses that it lacks. */
#pragma once
#include <p11-kit/pkcs11.h>

#ifndef CKR_ACTION_PROHIBITED
#define CKR_ACTION_PROHIBITED 0x1bUL
#endif
#ifndef CKR_CURVE_NOT_SUPPORTED
#define CKR_CURVE_NOT_SUPPORTED 0x140UL
#endif
#ifndef CKA_UNIQUE_ID
#define CKA_UNIQUE_ID 0x4UL
#endif

/* CK_EDDSA_PARAMS (PKCS#11 3.0 section 2.3.14), which p11-kit's 2.40 header lacks. */
typedef struct {
    CK_BBOOL phFlag;
    CK_ULONG ulContextDataLen;
    CK_BYTE_PTR pContextData;
} CF_EDDSA_PARAMS;
