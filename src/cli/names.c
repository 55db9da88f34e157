/* names.c: PKCS#11 constants as text, for messages and listings. The CKR_ and CKM_ lists follow
 * the p11-kit pkcs11.h (PKCS#11 2.40) one for one, plus the PKCS#11 3.0 mechanisms that header
 * lacks (given by value, from PKCS#11 3.0 §6); an unknown value prints as hex. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    CK_RV rv;
    const char *name;
} ckr_table[] = {
#define R(x) { CKR_##x, "CKR_" #x },
    R(OK)
    R(CANCEL)
    R(HOST_MEMORY)
    R(SLOT_ID_INVALID)
    R(GENERAL_ERROR)
    R(FUNCTION_FAILED)
    R(ARGUMENTS_BAD)
    R(NO_EVENT)
    R(NEED_TO_CREATE_THREADS)
    R(CANT_LOCK)
    R(ATTRIBUTE_READ_ONLY)
    R(ATTRIBUTE_SENSITIVE)
    R(ATTRIBUTE_TYPE_INVALID)
    R(ATTRIBUTE_VALUE_INVALID)
    R(ACTION_PROHIBITED)
    R(DATA_INVALID)
    R(DATA_LEN_RANGE)
    R(DEVICE_ERROR)
    R(DEVICE_MEMORY)
    R(DEVICE_REMOVED)
    R(ENCRYPTED_DATA_INVALID)
    R(ENCRYPTED_DATA_LEN_RANGE)
    R(FUNCTION_CANCELED)
    R(FUNCTION_NOT_PARALLEL)
    R(FUNCTION_NOT_SUPPORTED)
    R(KEY_HANDLE_INVALID)
    R(KEY_SIZE_RANGE)
    R(KEY_TYPE_INCONSISTENT)
    R(KEY_NOT_NEEDED)
    R(KEY_CHANGED)
    R(KEY_NEEDED)
    R(KEY_INDIGESTIBLE)
    R(KEY_FUNCTION_NOT_PERMITTED)
    R(KEY_NOT_WRAPPABLE)
    R(KEY_UNEXTRACTABLE)
    R(MECHANISM_INVALID)
    R(MECHANISM_PARAM_INVALID)
    R(OBJECT_HANDLE_INVALID)
    R(OPERATION_ACTIVE)
    R(OPERATION_NOT_INITIALIZED)
    R(PIN_INCORRECT)
    R(PIN_INVALID)
    R(PIN_LEN_RANGE)
    R(PIN_EXPIRED)
    R(PIN_LOCKED)
    R(SESSION_CLOSED)
    R(SESSION_COUNT)
    R(SESSION_HANDLE_INVALID)
    R(SESSION_PARALLEL_NOT_SUPPORTED)
    R(SESSION_READ_ONLY)
    R(SESSION_EXISTS)
    R(SESSION_READ_ONLY_EXISTS)
    R(SESSION_READ_WRITE_SO_EXISTS)
    R(SIGNATURE_INVALID)
    R(SIGNATURE_LEN_RANGE)
    R(TEMPLATE_INCOMPLETE)
    R(TEMPLATE_INCONSISTENT)
    R(TOKEN_NOT_PRESENT)
    R(TOKEN_NOT_RECOGNIZED)
    R(TOKEN_WRITE_PROTECTED)
    R(UNWRAPPING_KEY_SIZE_RANGE)
    R(UNWRAPPING_KEY_TYPE_INCONSISTENT)
    R(USER_ALREADY_LOGGED_IN)
    R(USER_NOT_LOGGED_IN)
    R(USER_PIN_NOT_INITIALIZED)
    R(USER_TYPE_INVALID)
    R(USER_ANOTHER_ALREADY_LOGGED_IN)
    R(USER_TOO_MANY_TYPES)
    R(WRAPPED_KEY_INVALID)
    R(WRAPPED_KEY_LEN_RANGE)
    R(WRAPPING_KEY_HANDLE_INVALID)
    R(WRAPPING_KEY_SIZE_RANGE)
    R(WRAPPING_KEY_TYPE_INCONSISTENT)
    R(RANDOM_SEED_NOT_SUPPORTED)
    R(RANDOM_NO_RNG)
    R(DOMAIN_PARAMS_INVALID)
    R(CURVE_NOT_SUPPORTED)
    R(BUFFER_TOO_SMALL)
    R(SAVED_STATE_INVALID)
    R(INFORMATION_SENSITIVE)
    R(STATE_UNSAVEABLE)
    R(CRYPTOKI_NOT_INITIALIZED)
    R(CRYPTOKI_ALREADY_INITIALIZED)
    R(MUTEX_BAD)
    R(MUTEX_NOT_LOCKED)
    R(NEW_PIN_MODE)
    R(NEXT_OTP)
    R(EXCEEDED_MAX_ITERATIONS)
    R(FIPS_SELF_TEST_FAILED)
    R(LIBRARY_LOAD_FAILED)
    R(PIN_TOO_WEAK)
    R(PUBLIC_KEY_INVALID)
    R(FUNCTION_REJECTED)
#undef R
};

const char *ckr_name(CK_RV rv)
{
    for (size_t i = 0; i < sizeof(ckr_table) / sizeof(ckr_table[0]); i++)
        if (ckr_table[i].rv == rv)
            return ckr_table[i].name;
    static char buf[40];
    snprintf(buf, sizeof(buf), rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED+0x%lx" : "CKR_0x%lx",
             (unsigned long)(rv >= CKR_VENDOR_DEFINED ? rv - CKR_VENDOR_DEFINED : rv));
    return buf;
}

const char *ckr_hint(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT: return "the PIN is incorrect";
    case CKR_PIN_LOCKED: return "the PIN is locked";
    case CKR_PIN_LEN_RANGE: return "the PIN is too short or too long for this token";
    case CKR_PIN_INVALID: return "the PIN has characters the token does not accept";
    case CKR_USER_NOT_LOGGED_IN: return "this needs a login; give the user PIN (--pin-file or $COFFER_PIN)";
    case CKR_USER_PIN_NOT_INITIALIZED: return "the token has no user PIN yet";
    case CKR_SESSION_EXISTS: return "another program has a session open on this token; close it first";
    case CKR_SESSION_READ_ONLY_EXISTS: return "another program has a read-only session open on this token";
    case CKR_SLOT_ID_INVALID: return "the slot no longer exists";
    case CKR_TOKEN_NOT_PRESENT: return "the slot has no token";
    case CKR_TOKEN_WRITE_PROTECTED: return "the token is write-protected";
    case CKR_MECHANISM_INVALID: return "the module does not support this mechanism (`coffer info` lists them)";
    case CKR_KEY_SIZE_RANGE: return "the module does not support this key size (`coffer info` lists the sizes)";
    case CKR_CURVE_NOT_SUPPORTED: return "the module does not support this curve";
    case CKR_DOMAIN_PARAMS_INVALID: return "the module does not accept these key parameters";
    case CKR_TEMPLATE_INCONSISTENT: return "the module rejected the combination of attributes";
    case CKR_TEMPLATE_INCOMPLETE: return "the module wants attributes the CLI did not give";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "the module rejected an attribute value";
    case CKR_ATTRIBUTE_TYPE_INVALID: return "the module does not know an attribute the CLI gave";
    case CKR_ATTRIBUTE_READ_ONLY: return "the module does not allow setting an attribute the CLI gave";
    case CKR_ACTION_PROHIBITED: return "the token's policy forbids this";
    case CKR_DEVICE_MEMORY: return "the token is full";
    case CKR_HOST_MEMORY: return "out of memory";
    case CKR_DEVICE_ERROR: return "the module reported a device error (check its log and store)";
    case CKR_FUNCTION_NOT_SUPPORTED: return "the module does not implement this";
    case CKR_CRYPTOKI_NOT_INITIALIZED: return "the module is not initialized";
    default: return NULL;
    }
}

static const struct {
    CK_MECHANISM_TYPE m;
    const char *name;
} ckm_table[] = {
#define M(x) { CKM_##x, "CKM_" #x },
    M(RSA_PKCS_KEY_PAIR_GEN)
    M(RSA_PKCS)
    M(RSA_9796)
    M(RSA_X_509)
    M(MD2_RSA_PKCS)
    M(MD5_RSA_PKCS)
    M(SHA1_RSA_PKCS)
    M(RIPEMD128_RSA_PKCS)
    M(RIPEMD160_RSA_PKCS)
    M(RSA_PKCS_OAEP)
    M(RSA_X9_31_KEY_PAIR_GEN)
    M(RSA_X9_31)
    M(SHA1_RSA_X9_31)
    M(RSA_PKCS_PSS)
    M(SHA1_RSA_PKCS_PSS)
    M(DSA_KEY_PAIR_GEN)
    M(DSA_SHA1)
    M(DSA_SHA224)
    M(DSA_SHA256)
    M(DSA_SHA384)
    M(DSA_SHA512)
    M(DH_PKCS_KEY_PAIR_GEN)
    M(DH_PKCS_DERIVE)
    M(X9_42_DH_DERIVE)
    M(X9_42_DH_HYBRID_DERIVE)
    M(X9_42_MQV_DERIVE)
    M(SHA256_RSA_PKCS)
    M(SHA384_RSA_PKCS)
    M(SHA512_RSA_PKCS)
    M(SHA256_RSA_PKCS_PSS)
    M(SHA384_RSA_PKCS_PSS)
    M(SHA512_RSA_PKCS_PSS)
    M(SHA512_224)
    M(SHA512_224_HMAC)
    M(SHA512_224_HMAC_GENERAL)
    M(SHA512_224_KEY_DERIVATION)
    M(SHA512_256)
    M(SHA512_256_HMAC)
    M(SHA512_256_HMAC_GENERAL)
    M(SHA512_256_KEY_DERIVATION)
    M(SHA512_T)
    M(SHA512_T_HMAC)
    M(SHA512_T_HMAC_GENERAL)
    M(SHA512_T_KEY_DERIVATION)
    M(RC2_KEY_GEN)
    M(RC2_ECB)
    M(RC2_MAC_GENERAL)
    M(RC2_CBC_PAD)
    M(RC4_KEY_GEN)
    M(RC4)
    M(DES_KEY_GEN)
    M(DES_ECB)
    M(DES_CBC)
    M(DES_MAC)
    M(DES_MAC_GENERAL)
    M(DES_CBC_PAD)
    M(DES2_KEY_GEN)
    M(DES3_KEY_GEN)
    M(DES3_ECB)
    M(DES3_CBC)
    M(DES3_MAC)
    M(DES3_MAC_GENERAL)
    M(DES3_CBC_PAD)
    M(DES3_CMAC_GENERAL)
    M(DES3_CMAC)
    M(CDMF_KEY_GEN)
    M(CDMF_ECB)
    M(CDMF_CBC)
    M(CDMF_MAC)
    M(CDMF_MAC_GENERAL)
    M(CDMF_CBC_PAD)
    M(DES_OFB64)
    M(DES_OFB8)
    M(DES_CFB64)
    M(DES_CFB8)
    M(MD2)
    M(MD2_HMAC)
    M(MD2_HMAC_GENERAL)
    M(MD5)
    M(MD5_HMAC)
    M(MD5_HMAC_GENERAL)
    M(SHA_1)
    M(SHA_1_HMAC)
    M(SHA_1_HMAC_GENERAL)
    M(RIPEMD128)
    M(RIPEMD128_HMAC)
    M(RIPEMD128_HMAC_GENERAL)
    M(RIPEMD160)
    M(RIPEMD160_HMAC)
    M(RIPEMD160_HMAC_GENERAL)
    M(SHA256)
    M(SHA256_HMAC)
    M(SHA256_HMAC_GENERAL)
    M(SHA384)
    M(SHA384_HMAC)
    M(SHA384_HMAC_GENERAL)
    M(SHA512)
    M(SHA512_HMAC)
    M(SHA512_HMAC_GENERAL)
    M(SECURID_KEY_GEN)
    M(SECURID)
    M(HOTP_KEY_GEN)
    M(HOTP)
    M(ACTI)
    M(ACTI_KEY_GEN)
    M(CAST_KEY_GEN)
    M(CAST_ECB)
    M(CAST_CBC)
    M(CAST_MAC)
    M(CAST_MAC_GENERAL)
    M(CAST_CBC_PAD)
    M(CAST3_KEY_GEN)
    M(CAST3_ECB)
    M(CAST3_CBC)
    M(CAST3_MAC)
    M(CAST3_MAC_GENERAL)
    M(CAST3_CBC_PAD)
    M(CAST128_KEY_GEN)
    M(CAST128_ECB)
    M(CAST128_CBC)
    M(CAST128_MAC_GENERAL)
    M(CAST128_CBC_PAD)
    M(RC5_KEY_GEN)
    M(RC5_ECB)
    M(RC5_CBC)
    M(RC5_MAC)
    M(RC5_MAC_GENERAL)
    M(RC5_CBC_PAD)
    M(IDEA_KEY_GEN)
    M(IDEA_ECB)
    M(IDEA_MAC)
    M(IDEA_MAC_GENERAL)
    M(IDEA_CBC_PAD)
    M(GENERIC_SECRET_KEY_GEN)
    M(CONCATENATE_BASE_AND_KEY)
    M(CONCATENATE_BASE_AND_DATA)
    M(CONCATENATE_DATA_AND_BASE)
    M(XOR_BASE_AND_DATA)
    M(EXTRACT_KEY_FROM_KEY)
    M(SSL3_PRE_MASTER_KEY_GEN)
    M(SSL3_MASTER_KEY_DERIVE)
    M(SSL3_KEY_AND_MAC_DERIVE)
    M(SSL3_MASTER_KEY_DERIVE_DH)
    M(TLS_PRE_MASTER_KEY_GEN)
    M(TLS_MASTER_KEY_DERIVE)
    M(TLS_KEY_AND_MAC_DERIVE)
    M(TLS_MASTER_KEY_DERIVE_DH)
    M(TLS_PRF)
    M(SSL3_MD5_MAC)
    M(SSL3_SHA1_MAC)
    M(MD5_KEY_DERIVATION)
    M(MD2_KEY_DERIVATION)
    M(SHA1_KEY_DERIVATION)
    M(SHA256_KEY_DERIVATION)
    M(SHA384_KEY_DERIVATION)
    M(SHA512_KEY_DERIVATION)
    M(PBE_MD2_DES_CBC)
    M(PBE_MD5_DES_CBC)
    M(PBE_MD5_CAST_CBC)
    M(PBE_MD5_CAST3_CBC)
    M(PBE_MD5_CAST5_CBC)
    M(PBE_MD5_CAST128_CBC)
    M(PBE_SHA1_CAST5_CBC)
    M(PBE_SHA1_CAST128_CBC)
    M(PBE_SHA1_RC4_128)
    M(PBE_SHA1_RC4_40)
    M(PBE_SHA1_DES3_EDE_CBC)
    M(PBE_SHA1_DES2_EDE_CBC)
    M(PBE_SHA1_RC2_128_CBC)
    M(PBE_SHA1_RC2_40_CBC)
    M(PKCS5_PBKD2)
    M(PBA_SHA1_WITH_SHA1_HMAC)
    M(WTLS_PRE_MASTER_KEY_GEN)
    M(WTLS_MASTER_KEY_DERIVE)
    M(WTLS_MASTER_KEY_DERIVE_DH_ECC)
    M(WTLS_PRF)
    M(WTLS_SERVER_KEY_AND_MAC_DERIVE)
    M(WTLS_CLIENT_KEY_AND_MAC_DERIVE)
    M(TLS10_MAC_SERVER)
    M(TLS10_MAC_CLIENT)
    M(TLS12_MAC)
    M(TLS12_KDF)
    M(TLS12_MASTER_KEY_DERIVE)
    M(TLS12_KEY_AND_MAC_DERIVE)
    M(TLS12_MASTER_KEY_DERIVE_DH)
    M(TLS12_KEY_SAFE_DERIVE)
    M(TLS_MAC)
    M(TLS_KDF)
    M(KEY_WRAP_LYNKS)
    M(KEY_WRAP_SET_OAEP)
    M(CMS_SIG)
    M(KIP_DERIVE)
    M(KIP_WRAP)
    M(KIP_MAC)
    M(ARIA_KEY_GEN)
    M(ARIA_ECB)
    M(ARIA_CBC)
    M(ARIA_MAC)
    M(ARIA_MAC_GENERAL)
    M(ARIA_CBC_PAD)
    M(ARIA_ECB_ENCRYPT_DATA)
    M(ARIA_CBC_ENCRYPT_DATA)
    M(SEED_KEY_GEN)
    M(SEED_ECB)
    M(SEED_CBC)
    M(SEED_MAC)
    M(SEED_MAC_GENERAL)
    M(SEED_CBC_PAD)
    M(SEED_ECB_ENCRYPT_DATA)
    M(SEED_CBC_ENCRYPT_DATA)
    M(SKIPJACK_KEY_GEN)
    M(SKIPJACK_ECB64)
    M(SKIPJACK_CBC64)
    M(SKIPJACK_OFB64)
    M(SKIPJACK_CFB64)
    M(SKIPJACK_CFB32)
    M(SKIPJACK_CFB16)
    M(SKIPJACK_CFB8)
    M(SKIPJACK_WRAP)
    M(SKIPJACK_PRIVATE_WRAP)
    M(SKIPJACK_RELAYX)
    M(KEA_KEY_PAIR_GEN)
    M(KEA_KEY_DERIVE)
    M(FORTEZZA_TIMESTAMP)
    M(BATON_KEY_GEN)
    M(BATON_ECB128)
    M(BATON_ECB96)
    M(BATON_CBC128)
    M(BATON_COUNTER)
    M(BATON_SHUFFLE)
    M(BATON_WRAP)
    M(EC_KEY_PAIR_GEN)
    M(ECDSA)
    M(ECDSA_SHA1)
    M(ECDSA_SHA224)
    M(ECDSA_SHA256)
    M(ECDSA_SHA384)
    M(ECDSA_SHA512)
    M(ECDH1_DERIVE)
    M(ECDH1_COFACTOR_DERIVE)
    M(ECMQV_DERIVE)
    M(ECDH_AES_KEY_WRAP)
    M(RSA_AES_KEY_WRAP)
    M(JUNIPER_KEY_GEN)
    M(JUNIPER_ECB128)
    M(JUNIPER_CBC128)
    M(JUNIPER_COUNTER)
    M(JUNIPER_SHUFFLE)
    M(JUNIPER_WRAP)
    M(FASTHASH)
    M(AES_KEY_GEN)
    M(AES_ECB)
    M(AES_CBC)
    M(AES_MAC)
    M(AES_MAC_GENERAL)
    M(AES_CBC_PAD)
    M(AES_CTR)
    M(AES_GCM)
    M(AES_CCM)
    M(AES_CTS)
    M(AES_CMAC)
    M(AES_CMAC_GENERAL)
    M(AES_XCBC_MAC)
    M(AES_XCBC_MAC_96)
    M(AES_GMAC)
    M(BLOWFISH_KEY_GEN)
    M(BLOWFISH_CBC)
    M(TWOFISH_KEY_GEN)
    M(TWOFISH_CBC)
    M(BLOWFISH_CBC_PAD)
    M(TWOFISH_CBC_PAD)
    M(DES_ECB_ENCRYPT_DATA)
    M(DES_CBC_ENCRYPT_DATA)
    M(DES3_ECB_ENCRYPT_DATA)
    M(DES3_CBC_ENCRYPT_DATA)
    M(AES_ECB_ENCRYPT_DATA)
    M(AES_CBC_ENCRYPT_DATA)
    M(GOSTR3410_KEY_PAIR_GEN)
    M(GOSTR3410)
    M(GOSTR3410_WITH_GOSTR3411)
    M(GOSTR3410_KEY_WRAP)
    M(GOSTR3410_DERIVE)
    M(GOSTR3411)
    M(GOSTR3411_HMAC)
    M(GOST28147_KEY_GEN)
    M(GOST28147_ECB)
    M(GOST28147)
    M(GOST28147_MAC)
    M(GOST28147_KEY_WRAP)
    M(DSA_PARAMETER_GEN)
    M(DH_PKCS_PARAMETER_GEN)
    M(X9_42_DH_PARAMETER_GEN)
    M(DSA_PROBABLISTIC_PARAMETER_GEN)
    M(DSA_SHAWE_TAYLOR_PARAMETER_GEN)
    M(AES_OFB)
    M(AES_CFB64)
    M(AES_CFB8)
    M(AES_CFB128)
    M(AES_CFB1)
    M(SHA224)
    M(SHA224_HMAC)
    M(SHA224_HMAC_GENERAL)
    M(SHA224_RSA_PKCS)
    M(SHA224_RSA_PKCS_PSS)
    M(SHA224_KEY_DERIVATION)
    M(CAMELLIA_KEY_GEN)
    M(CAMELLIA_ECB)
    M(CAMELLIA_CBC)
    M(CAMELLIA_MAC)
    M(CAMELLIA_MAC_GENERAL)
    M(CAMELLIA_CBC_PAD)
    M(CAMELLIA_ECB_ENCRYPT_DATA)
    M(CAMELLIA_CBC_ENCRYPT_DATA)
    M(CAMELLIA_CTR)
    M(AES_KEY_WRAP)
    M(AES_KEY_WRAP_PAD)
    M(RSA_PKCS_TPM_1_1)
    M(RSA_PKCS_OAEP_TPM_1_1)
    M(EC_EDWARDS_KEY_PAIR_GEN)
    M(EDDSA)
#undef M
    /* PKCS#11 3.0 mechanisms missing from the 2.40 header. */
    { 0x1056UL, "CKM_EC_MONTGOMERY_KEY_PAIR_GEN" },
    { 0x1058UL, "CKM_XEDDSA" },
    { 0x210bUL, "CKM_AES_KEY_WRAP_KWP" },
    { 0x0060UL, "CKM_SHA3_256_RSA_PKCS" },
    { 0x0061UL, "CKM_SHA3_384_RSA_PKCS" },
    { 0x0062UL, "CKM_SHA3_512_RSA_PKCS" },
    { 0x0063UL, "CKM_SHA3_256_RSA_PKCS_PSS" },
    { 0x0064UL, "CKM_SHA3_384_RSA_PKCS_PSS" },
    { 0x0065UL, "CKM_SHA3_512_RSA_PKCS_PSS" },
    { 0x0066UL, "CKM_SHA3_224_RSA_PKCS" },
    { 0x0067UL, "CKM_SHA3_224_RSA_PKCS_PSS" },
    { 0x1047UL, "CKM_ECDSA_SHA3_224" },
    { 0x1048UL, "CKM_ECDSA_SHA3_256" },
    { 0x1049UL, "CKM_ECDSA_SHA3_384" },
    { 0x104aUL, "CKM_ECDSA_SHA3_512" },
    { 0x02b0UL, "CKM_SHA3_256" },
    { 0x02b1UL, "CKM_SHA3_256_HMAC" },
    { 0x02b2UL, "CKM_SHA3_256_HMAC_GENERAL" },
    { 0x02b3UL, "CKM_SHA3_256_KEY_GEN" },
    { 0x02b5UL, "CKM_SHA3_224" },
    { 0x02b6UL, "CKM_SHA3_224_HMAC" },
    { 0x02b7UL, "CKM_SHA3_224_HMAC_GENERAL" },
    { 0x02b8UL, "CKM_SHA3_224_KEY_GEN" },
    { 0x02c0UL, "CKM_SHA3_384" },
    { 0x02c1UL, "CKM_SHA3_384_HMAC" },
    { 0x02c2UL, "CKM_SHA3_384_HMAC_GENERAL" },
    { 0x02c3UL, "CKM_SHA3_384_KEY_GEN" },
    { 0x02d0UL, "CKM_SHA3_512" },
    { 0x02d1UL, "CKM_SHA3_512_HMAC" },
    { 0x02d2UL, "CKM_SHA3_512_HMAC_GENERAL" },
    { 0x02d3UL, "CKM_SHA3_512_KEY_GEN" },
    { 0x402aUL, "CKM_HKDF_DERIVE" },
    { 0x402bUL, "CKM_HKDF_DATA" },
    { 0x402cUL, "CKM_HKDF_KEY_GEN" },
    { 0x1225UL, "CKM_CHACHA20_KEY_GEN" },
    { 0x1226UL, "CKM_CHACHA20" },
    { 0x1227UL, "CKM_POLY1305_KEY_GEN" },
    { 0x1228UL, "CKM_POLY1305" },
    { 0x4021UL, "CKM_CHACHA20_POLY1305" },
};

const char *ckm_name(CK_MECHANISM_TYPE m)
{
    for (size_t i = 0; i < sizeof(ckm_table) / sizeof(ckm_table[0]); i++)
        if (ckm_table[i].m == m)
            return ckm_table[i].name;
    return NULL;
}

const char *ckk_name(CK_KEY_TYPE k)
{
    switch (k) {
    case CKK_RSA: return "rsa";
    case CKK_DSA: return "dsa";
    case CKK_DH: return "dh";
    case CKK_EC: return "ec";
    case CKK_EC_EDWARDS: return "ec-edwards";
    case 0x41UL: return "ec-montgomery";   /* CKK_EC_MONTGOMERY (3.0) */
    case CKK_GENERIC_SECRET: return "generic";
    case CKK_AES: return "aes";
    case CKK_DES: return "des";
    case CKK_DES2: return "des2";
    case CKK_DES3: return "des3";
    case CKK_SHA_1_HMAC: return "sha1-hmac";
    case CKK_SHA256_HMAC: return "sha256-hmac";
    case CKK_SHA384_HMAC: return "sha384-hmac";
    case CKK_SHA512_HMAC: return "sha512-hmac";
    case 0x33UL: return "chacha20";      /* CKK_CHACHA20 (3.0) */
    default: return NULL;
    }
}

const char *cko_name(CK_OBJECT_CLASS c)
{
    switch (c) {
    case CKO_DATA: return "data";
    case CKO_CERTIFICATE: return "cert";
    case CKO_PUBLIC_KEY: return "public";
    case CKO_PRIVATE_KEY: return "private";
    case CKO_SECRET_KEY: return "secret-key";
    case CKO_HW_FEATURE: return "hw-feature";
    case CKO_DOMAIN_PARAMETERS: return "domain-parameters";
    case CKO_MECHANISM: return "mechanism";
    default: return NULL;
    }
}

static const struct {
    CK_FLAGS bit;
    const char *word;
} mech_flags[] = {
    { CKF_HW, "hw" },
    { 0x2UL, "message_encrypt" },   /* PKCS#11 3.0 CKF_MESSAGE_* */
    { 0x4UL, "message_decrypt" },
    { 0x8UL, "message_sign" },
    { 0x10UL, "message_verify" },
    { 0x20UL, "multi_message" },
    { CKF_ENCRYPT, "encrypt" },
    { CKF_DECRYPT, "decrypt" },
    { CKF_DIGEST, "digest" },
    { CKF_SIGN, "sign" },
    { CKF_SIGN_RECOVER, "sign_recover" },
    { CKF_VERIFY, "verify" },
    { CKF_VERIFY_RECOVER, "verify_recover" },
    { CKF_GENERATE, "generate" },
    { CKF_GENERATE_KEY_PAIR, "generate_key_pair" },
    { CKF_WRAP, "wrap" },
    { CKF_UNWRAP, "unwrap" },
    { CKF_DERIVE, "derive" },
    { CKF_EC_F_P, "ec_f_p" },
    { 1UL << 21, "ec_f_2m" },
    { 1UL << 22, "ec_ecparameters" },
    { CKF_EC_NAMEDCURVE, "ec_oid" },
    { CKF_EC_UNCOMPRESS, "ec_uncompress" },
    { CKF_EC_COMPRESS, "ec_compress" },
    { CKF_EXTENSION, "extension" },
};

const char *mech_flags_words(CK_FLAGS f, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(mech_flags) / sizeof(mech_flags[0]); i++) {
        if (!(f & mech_flags[i].bit))
            continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? "," : "", mech_flags[i].word);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
    return buf;
}

json_t *mech_flags_json(CK_FLAGS f)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < sizeof(mech_flags) / sizeof(mech_flags[0]); i++)
        if (f & mech_flags[i].bit)
            json_array_append_new(a, json_string(mech_flags[i].word));
    return a;
}
