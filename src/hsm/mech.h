/* mech.h: the mechanism table and the interface a mechanism implements (internal to src/hsm).
 *
 * One row per mechanism: what C_GetMechanismList / C_GetMechanismInfo report is read from the same
 * rows that dispatch operations, so the two cannot disagree. The generic code in op.c does what
 * every mechanism shares (session and key checks, usage attributes, the output-length protocol,
 * multi-part state); a mechanism only validates its parameters and computes. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "crypto/crypto.h"
#include "hsm/attrs.h"
#include "hsm/hsm.h"

/* The key as a mechanism sees it: a snapshot taken at init, so destroying the object while an
 * operation runs is harmless. */
typedef struct {
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE type;
    cf_pkey *pkey;          /* asymmetric keys: a reference (released at cleanup) */
    uint8_t *secret;        /* secret keys: a copy of CKA_VALUE (cf_secret_alloc) */
    size_t secret_len;
} hsm_key;

void hsm_key_release(hsm_key *k);   /* drops the pkey ref, wipes the secret copy */

typedef enum { HSM_STEP_ONESHOT, HSM_STEP_UPDATE, HSM_STEP_FINAL } hsm_step;

typedef struct hsm_op hsm_op;
struct hsm_op {
    hsm_op_kind kind;
    const struct hsm_mech *mech;
    hsm_key key;
    void *ctx;              /* the mechanism's state */
    bool updated;           /* an Update ran: single-part calls are no longer allowed */
    /* Output computed for a call whose buffer was too small, delivered by the next call
     * (PKCS#11 5.2 length protocol without recomputing, e.g. for decryption). */
    uint8_t *pending;
    size_t pending_len;
    bool has_pending;
};

typedef struct {
    /* Validates m's parameters against op->key and op->kind, sets op->ctx. The generic code has
     * already checked the key type and usage attribute. Errors: MECHANISM_PARAM_INVALID,
     * KEY_TYPE_INCONSISTENT, KEY_SIZE_RANGE... */
    cf_err (*init)(hsm_op *op, const CK_MECHANISM *m);
    /* Upper bound of the bytes a step produces for inlen input (inlen 0 for FINAL). Must be exact
     * for signatures. */
    size_t (*out_len)(const hsm_op *op, hsm_step step, size_t inlen);
    /* Single-part. NULL means: update then final. */
    cf_err (*oneshot)(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen);
    /* Multi-part; NULL when the mechanism is single-part only (C_*Update then gives
     * CF_E_FUNCTION... see op.c). For SIGN/VERIFY/DIGEST, out is NULL and *outlen 0. */
    cf_err (*update)(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen);
    cf_err (*final)(hsm_op *op, uint8_t *out, size_t *outlen);
    /* VERIFY: single-part and final. NULL verify means update + verify_final. */
    cf_err (*verify)(hsm_op *op, const uint8_t *in, size_t inlen, const uint8_t *sig, size_t siglen);
    cf_err (*verify_final)(hsm_op *op, const uint8_t *sig, size_t siglen);
    /* Readies a finished operation for another run with the same key and parameters (the hot
     * path: C_SignInit with the key just used costs nothing). NULL: not reusable. */
    cf_err (*reset)(hsm_op *op);
    /* Frees op->ctx (wiping secrets). Must accept a ctx left by a failed init (NULL). */
    void (*cleanup)(hsm_op *op);
} hsm_op_impl;

/* Key pair generation: reads CKA_MODULUS_BITS / CKA_PUBLIC_EXPONENT / CKA_EC_PARAMS from the
 * public template. Errors: TEMPLATE_INCOMPLETE, KEY_SIZE_RANGE, CURVE_NOT_SUPPORTED... */
typedef cf_err (*hsm_keypair_gen_fn)(const CK_MECHANISM *m, const hsm_attrs *pub_tmpl,
                                     const hsm_attrs *priv_tmpl, cf_pkey **out);
/* Wrapping (C_WrapKey): the wrapping key and the plain bytes of the key to wrap (a secret key's
 * value, or a private key's PKCS#8 DER). out NULL asks the length. */
typedef cf_err (*hsm_wrap_fn)(const CK_MECHANISM *m, const hsm_key *wrapping, const uint8_t *in,
                              size_t inlen, uint8_t *out, size_t *outlen);
/* Unwrapping: the plain bytes into a cf_buf. */
typedef cf_err (*hsm_unwrap_fn)(const CK_MECHANISM *m, const hsm_key *unwrapping, const uint8_t *in,
                                size_t inlen, cf_buf *out);
/* Derivation (ECDH): the derived secret bytes (before truncation to CKA_VALUE_LEN). */
typedef cf_err (*hsm_derive_fn)(const CK_MECHANISM *m, const hsm_key *base, cf_buf *out);

typedef struct hsm_mech {
    CK_MECHANISM_TYPE type;
    const char *name;            /* "CKM_SHA256_RSA_PKCS" */
    CK_KEY_TYPE key_type;        /* CK_UNAVAILABLE_INFORMATION for digests */
    CK_ULONG min_size, max_size; /* as CK_MECHANISM_INFO reports: bits for RSA/EC, bytes for AES/HMAC */
    CK_FLAGS flags;              /* CKF_ENCRYPT | CKF_SIGN | ... | CKF_GENERATE | CKF_WRAP ... */
    const hsm_op_impl *ops;      /* for the ENCRYPT/DECRYPT/SIGN/VERIFY/DIGEST flags */
    hsm_keypair_gen_fn keypair_gen;   /* CKF_GENERATE_KEY_PAIR */
    hsm_wrap_fn wrap;                 /* CKF_WRAP */
    hsm_unwrap_fn unwrap;             /* CKF_UNWRAP */
    hsm_derive_fn derive;             /* CKF_DERIVE */
} hsm_mech;

/* The table (mech_table.c): every supported mechanism, in the order C_GetMechanismList reports. */
extern const hsm_mech hsm_mechs[];
extern const size_t hsm_mech_count;
const hsm_mech *hsm_mech_find(CK_MECHANISM_TYPE type);   /* NULL when unsupported */

/* Key <-> attributes (keyattrs.c). Adds the type-specific attributes of a key object of class
 * cls (CKO_PUBLIC_KEY or CKO_PRIVATE_KEY) built from k: RSA: CKA_MODULUS, CKA_PUBLIC_EXPONENT,
 * (public) CKA_MODULUS_BITS, (private) CKA_PRIVATE_EXPONENT, CKA_PRIME_1/2, CKA_EXPONENT_1/2,
 * CKA_COEFFICIENT as secret; EC and Ed25519: CKA_EC_PARAMS, (public) CKA_EC_POINT (DER OCTET
 * STRING), (private) CKA_VALUE as secret; both: CKA_KEY_TYPE and CKA_PUBLIC_KEY_INFO. */
cf_err hsm_pkey_to_attrs(const cf_pkey *k, CK_OBJECT_CLASS cls, hsm_attrs *out);
/* Builds a ready OpenSSL key from an object's attributes (secret values must be unsealed).
 * TEMPLATE_INCOMPLETE when a needed attribute is missing, ATTRIBUTE_VALUE_INVALID when they do
 * not make a key. */
cf_err hsm_pkey_from_attrs(const hsm_attrs *a, cf_pkey **out);
