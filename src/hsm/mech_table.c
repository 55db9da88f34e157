/* mech_table.c: every mechanism coffer supports, in the order C_GetMechanismList reports them.
 * The same rows answer C_GetMechanismInfo and dispatch operations (mech.h). Sizes are what
 * CK_MECHANISM_INFO reports: bits for RSA and EC, bytes for AES and generic secrets. The RSA
 * range is the generated range; mech_rsa.c also uses 1024..16384-bit keys made elsewhere. */
#include "hsm/mech_util.h"

#define NA CK_UNAVAILABLE_INFORMATION
#define SV (CKF_SIGN | CKF_VERIFY)
#define ED (CKF_ENCRYPT | CKF_DECRYPT)
#define WU (CKF_WRAP | CKF_UNWRAP)
#define EC_FLAGS (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)

#define ROW(mech, kt, lo, hi, fl, ...) \
    { .type = mech, .name = #mech, .key_type = kt, .min_size = lo, .max_size = hi, .flags = fl, __VA_ARGS__ }

const hsm_mech hsm_mechs[] = {
    /* RSA (PKCS#11 3.0 sec. 2.1) */
    ROW(CKM_RSA_PKCS_KEY_PAIR_GEN, CKK_RSA, 2048, 4096, CKF_GENERATE_KEY_PAIR,
        .keypair_gen = hsm_rsa_keypair_gen),
    ROW(CKM_RSA_PKCS, CKK_RSA, 2048, 4096, ED | SV | WU,
        .ops = &hsm_ops_rsa_pkcs, .wrap = hsm_rsa_wrap, .unwrap = hsm_rsa_unwrap),
    ROW(CKM_RSA_X_509, CKK_RSA, 2048, 4096, ED | SV, .ops = &hsm_ops_rsa_x509),
    ROW(CKM_SHA1_RSA_PKCS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pkcs_hash),
    ROW(CKM_SHA224_RSA_PKCS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pkcs_hash),
    ROW(CKM_SHA256_RSA_PKCS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pkcs_hash),
    ROW(CKM_SHA384_RSA_PKCS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pkcs_hash),
    ROW(CKM_SHA512_RSA_PKCS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pkcs_hash),
    ROW(CKM_RSA_PKCS_PSS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pss),
    ROW(CKM_SHA1_RSA_PKCS_PSS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pss),
    ROW(CKM_SHA224_RSA_PKCS_PSS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pss),
    ROW(CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pss),
    ROW(CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pss),
    ROW(CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, 2048, 4096, SV, .ops = &hsm_ops_rsa_pss),
    ROW(CKM_RSA_PKCS_OAEP, CKK_RSA, 2048, 4096, ED | WU,
        .ops = &hsm_ops_rsa_oaep, .wrap = hsm_rsa_wrap, .unwrap = hsm_rsa_unwrap),

    /* EC (sec. 2.3) */
    ROW(CKM_EC_KEY_PAIR_GEN, CKK_EC, 256, 521, CKF_GENERATE_KEY_PAIR | EC_FLAGS,
        .keypair_gen = hsm_ec_keypair_gen),
    ROW(CKM_ECDSA, CKK_EC, 256, 521, SV, .ops = &hsm_ops_ecdsa),
    ROW(CKM_ECDSA_SHA1, CKK_EC, 256, 521, SV, .ops = &hsm_ops_ecdsa),
    ROW(CKM_ECDSA_SHA224, CKK_EC, 256, 521, SV, .ops = &hsm_ops_ecdsa),
    ROW(CKM_ECDSA_SHA256, CKK_EC, 256, 521, SV, .ops = &hsm_ops_ecdsa),
    ROW(CKM_ECDSA_SHA384, CKK_EC, 256, 521, SV, .ops = &hsm_ops_ecdsa),
    ROW(CKM_ECDSA_SHA512, CKK_EC, 256, 521, SV, .ops = &hsm_ops_ecdsa),
    ROW(CKM_ECDH1_DERIVE, CKK_EC, 256, 521, CKF_DERIVE, .derive = hsm_ecdh_derive),
    ROW(CKM_EC_EDWARDS_KEY_PAIR_GEN, CKK_EC_EDWARDS, 256, 256, CKF_GENERATE_KEY_PAIR,
        .keypair_gen = hsm_ed_keypair_gen),
    ROW(CKM_EDDSA, CKK_EC_EDWARDS, 256, 256, SV, .ops = &hsm_ops_eddsa),

    /* AES (sec. 2.14 - 2.16). The core generates AES keys itself from CKA_VALUE_LEN. */
    ROW(CKM_AES_KEY_GEN, CKK_AES, 16, 32, CKF_GENERATE),
    ROW(CKM_AES_ECB, CKK_AES, 16, 32, ED, .ops = &hsm_ops_aes),
    ROW(CKM_AES_CBC, CKK_AES, 16, 32, ED, .ops = &hsm_ops_aes),
    ROW(CKM_AES_CBC_PAD, CKK_AES, 16, 32, ED, .ops = &hsm_ops_aes),
    ROW(CKM_AES_CTR, CKK_AES, 16, 32, ED, .ops = &hsm_ops_aes),
    ROW(CKM_AES_GCM, CKK_AES, 16, 32, ED, .ops = &hsm_ops_aes),
    ROW(CKM_AES_KEY_WRAP, CKK_AES, 16, 32, WU, .wrap = hsm_aes_wrap, .unwrap = hsm_aes_unwrap),
    ROW(CKM_AES_KEY_WRAP_PAD, CKK_AES, 16, 32, WU, .wrap = hsm_aes_wrap, .unwrap = hsm_aes_unwrap),

    /* Digests (sec. 2.20 - 2.25) */
    ROW(CKM_SHA_1, NA, 0, 0, CKF_DIGEST, .ops = &hsm_ops_digest),
    ROW(CKM_SHA224, NA, 0, 0, CKF_DIGEST, .ops = &hsm_ops_digest),
    ROW(CKM_SHA256, NA, 0, 0, CKF_DIGEST, .ops = &hsm_ops_digest),
    ROW(CKM_SHA384, NA, 0, 0, CKF_DIGEST, .ops = &hsm_ops_digest),
    ROW(CKM_SHA512, NA, 0, 0, CKF_DIGEST, .ops = &hsm_ops_digest),

    /* Generic secrets and HMAC (sec. 2.20 - 2.25, 2.41) */
    ROW(CKM_GENERIC_SECRET_KEY_GEN, CKK_GENERIC_SECRET, 1, 512, CKF_GENERATE),
    ROW(CKM_SHA_1_HMAC, CKK_GENERIC_SECRET, 1, 512, SV, .ops = &hsm_ops_hmac),
    ROW(CKM_SHA224_HMAC, CKK_GENERIC_SECRET, 1, 512, SV, .ops = &hsm_ops_hmac),
    ROW(CKM_SHA256_HMAC, CKK_GENERIC_SECRET, 1, 512, SV, .ops = &hsm_ops_hmac),
    ROW(CKM_SHA384_HMAC, CKK_GENERIC_SECRET, 1, 512, SV, .ops = &hsm_ops_hmac),
    ROW(CKM_SHA512_HMAC, CKK_GENERIC_SECRET, 1, 512, SV, .ops = &hsm_ops_hmac),
};

const size_t hsm_mech_count = sizeof hsm_mechs / sizeof hsm_mechs[0];

const hsm_mech *hsm_mech_find(CK_MECHANISM_TYPE type)
{
    /* About 45 rows: a scan costs less than the lock around the call. */
    for (size_t i = 0; i < hsm_mech_count; i++)
        if (hsm_mechs[i].type == type)
            return &hsm_mechs[i];
    return NULL;
}
