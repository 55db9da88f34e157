/* mech_util.h: what the mechanism files of src/hsm share (internal to them and mech_table.c).
 *
 * - parameter parsing: one strict check of CK_MECHANISM.pParameter / ulParameterLen;
 * - PKCS#11 hash and MGF constants to cf_hash_alg;
 * - hsm_inbuf, a capped, wiped input buffer for mechanisms that can only compute at the end;
 * - the signature engine shared by RSA, ECDSA and EdDSA (hash-then-sign or raw input);
 * - the operation tables and the keypair / wrap / derive functions the table points at. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hsm/mech.h"

/* ---- parameters ---------------------------------------------------------------------------- */
/* *p = m->pParameter when it is non-NULL and exactly `size` bytes long, else
 * MECHANISM_PARAM_INVALID. */
cf_err hsm_param(const CK_MECHANISM *m, size_t size, const void **p);
/* MECHANISM_PARAM_INVALID unless the mechanism carries no parameter (NULL and 0). */
cf_err hsm_param_none(const CK_MECHANISM *m);

/* CKM_SHA_1 .. CKM_SHA512 to the hash; CF_HASH_NONE for anything else. */
cf_hash_alg hsm_hash_from_ckm(CK_MECHANISM_TYPE t);
/* CKG_MGF1_SHA1 .. CKG_MGF1_SHA512 to the hash; CF_HASH_NONE for anything else. */
cf_hash_alg hsm_hash_from_mgf(CK_RSA_PKCS_MGF_TYPE g);

/* ---- input buffer ---------------------------------------------------------------------------- */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} hsm_inbuf;
/* Appends; `err` (and nothing appended) when the total would pass max. */
cf_err hsm_inbuf_add(hsm_inbuf *b, const uint8_t *in, size_t n, size_t max, cf_err err);
void hsm_inbuf_clear(hsm_inbuf *b);   /* wipes the content, keeps the memory */
void hsm_inbuf_free(hsm_inbuf *b);    /* wipes and frees */

/* ---- signature engine -------------------------------------------------------------------------- */
/* op->ctx of every RSA / ECDSA / EdDSA signing operation. */
typedef struct {
    cf_signer *signer;      /* built once, reused across reset */
    cf_hash_alg prehash;    /* hash-then-sign mechanisms: the data is digested here */
    cf_digest *dg;          /* multi-part digest, created at the first update */
    size_t sig_len;
    size_t in_max;          /* raw mechanisms: largest input */
    size_t in_exact;        /* raw mechanisms: required input length (0: any up to in_max) */
    size_t buf_max;         /* raw mechanisms: largest input gathered by update */
    hsm_inbuf buf;
} hsm_sig_ctx;

/* Builds op->ctx for op->kind SIGN or VERIFY. prehash NONE: raw input checked against
 * in_max / in_exact (DATA_LEN_RANGE) and buffered by update up to buf_max. */
cf_err hsm_sig_start(hsm_op *op, const cf_sig_params *p, cf_hash_alg prehash, size_t in_max,
                     size_t in_exact, size_t buf_max);
size_t hsm_sig_out_len(const hsm_op *op, hsm_step step, size_t inlen);
cf_err hsm_sig_oneshot(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen);
cf_err hsm_sig_update(hsm_op *op, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen);
cf_err hsm_sig_final(hsm_op *op, uint8_t *out, size_t *outlen);
cf_err hsm_sig_verify(hsm_op *op, const uint8_t *in, size_t inlen, const uint8_t *sig, size_t siglen);
cf_err hsm_sig_verify_final(hsm_op *op, const uint8_t *sig, size_t siglen);
cf_err hsm_sig_reset(hsm_op *op);
void hsm_sig_cleanup(hsm_op *op);

/* ---- what the table points at ------------------------------------------------------------------ */
/* mech_rsa.c */
extern const hsm_op_impl hsm_ops_rsa_pkcs;       /* CKM_RSA_PKCS: sign/verify and encrypt/decrypt */
extern const hsm_op_impl hsm_ops_rsa_x509;       /* CKM_RSA_X_509: likewise */
extern const hsm_op_impl hsm_ops_rsa_pkcs_hash;  /* CKM_SHA*_RSA_PKCS */
extern const hsm_op_impl hsm_ops_rsa_pss;        /* CKM_RSA_PKCS_PSS and CKM_SHA*_RSA_PKCS_PSS */
extern const hsm_op_impl hsm_ops_rsa_oaep;       /* CKM_RSA_PKCS_OAEP */
cf_err hsm_rsa_keypair_gen(const CK_MECHANISM *m, const hsm_attrs *pub_tmpl,
                           const hsm_attrs *priv_tmpl, cf_pkey **out);
cf_err hsm_rsa_wrap(const CK_MECHANISM *m, const hsm_key *wrapping, const uint8_t *in,
                    size_t inlen, uint8_t *out, size_t *outlen);
cf_err hsm_rsa_unwrap(const CK_MECHANISM *m, const hsm_key *unwrapping, const uint8_t *in,
                      size_t inlen, cf_buf *out);

/* mech_ec.c */
extern const hsm_op_impl hsm_ops_ecdsa;          /* CKM_ECDSA and CKM_ECDSA_SHA* */
extern const hsm_op_impl hsm_ops_eddsa;          /* CKM_EDDSA */
cf_err hsm_ec_keypair_gen(const CK_MECHANISM *m, const hsm_attrs *pub_tmpl,
                          const hsm_attrs *priv_tmpl, cf_pkey **out);
cf_err hsm_ed_keypair_gen(const CK_MECHANISM *m, const hsm_attrs *pub_tmpl,
                          const hsm_attrs *priv_tmpl, cf_pkey **out);
cf_err hsm_ecdh_derive(const CK_MECHANISM *m, const hsm_key *base, cf_buf *out);

/* mech_aes.c */
extern const hsm_op_impl hsm_ops_aes;            /* ECB, CBC, CBC_PAD, CTR, GCM */
cf_err hsm_aes_wrap(const CK_MECHANISM *m, const hsm_key *wrapping, const uint8_t *in,
                    size_t inlen, uint8_t *out, size_t *outlen);
cf_err hsm_aes_unwrap(const CK_MECHANISM *m, const hsm_key *unwrapping, const uint8_t *in,
                      size_t inlen, cf_buf *out);

/* mech_digest.c, mech_hmac.c */
extern const hsm_op_impl hsm_ops_digest;         /* CKM_SHA_1 .. CKM_SHA512 */
extern const hsm_op_impl hsm_ops_hmac;           /* CKM_SHA*_HMAC */
