/* mech.c: mechanisms on the wire (docs/protocol.md, "Mechanism parameters"): u64 type, u8 layout,
 * then the parameter field by field. Parameters are PKCS#11 structs holding pointers and
 * CK_ULONGs, so raw struct bytes would mean nothing in the daemon; each layout is written from
 * the struct's fields and rebuilt as the struct on the other side, its pointers into the frame.
 * The table names every mechanism of the engine's table (src/hsm/mech_table.c; rpc_test checks)
 * with the layout its parameter has. */
#include <string.h>
#include "rpc/internal.h"

#ifndef CKM_EDDSA
#define CKM_EDDSA 0x1057UL
#endif
#ifndef CKM_EC_EDWARDS_KEY_PAIR_GEN
#define CKM_EC_EDWARDS_KEY_PAIR_GEN 0x1055UL
#endif
#ifndef CKM_AES_KEY_WRAP
#define CKM_AES_KEY_WRAP 0x2109UL
#endif
#ifndef CKM_AES_KEY_WRAP_PAD
#define CKM_AES_KEY_WRAP_PAD 0x210AUL
#endif

static const struct {
    CK_MECHANISM_TYPE type;
    rpc_param_layout layout;
} mechs[] = {
    { CKM_RSA_PKCS_KEY_PAIR_GEN, RPC_PARAM_NONE },
    { CKM_RSA_PKCS, RPC_PARAM_NONE },
    { CKM_RSA_X_509, RPC_PARAM_NONE },
    { CKM_SHA1_RSA_PKCS, RPC_PARAM_NONE },
    { CKM_SHA224_RSA_PKCS, RPC_PARAM_NONE },
    { CKM_SHA256_RSA_PKCS, RPC_PARAM_NONE },
    { CKM_SHA384_RSA_PKCS, RPC_PARAM_NONE },
    { CKM_SHA512_RSA_PKCS, RPC_PARAM_NONE },
    { CKM_RSA_PKCS_PSS, RPC_PARAM_RSA_PSS },
    { CKM_SHA1_RSA_PKCS_PSS, RPC_PARAM_RSA_PSS },
    { CKM_SHA224_RSA_PKCS_PSS, RPC_PARAM_RSA_PSS },
    { CKM_SHA256_RSA_PKCS_PSS, RPC_PARAM_RSA_PSS },
    { CKM_SHA384_RSA_PKCS_PSS, RPC_PARAM_RSA_PSS },
    { CKM_SHA512_RSA_PKCS_PSS, RPC_PARAM_RSA_PSS },
    { CKM_RSA_PKCS_OAEP, RPC_PARAM_RSA_OAEP },
    { CKM_EC_KEY_PAIR_GEN, RPC_PARAM_NONE },
    { CKM_ECDSA, RPC_PARAM_NONE },
    { CKM_ECDSA_SHA1, RPC_PARAM_NONE },
    { CKM_ECDSA_SHA224, RPC_PARAM_NONE },
    { CKM_ECDSA_SHA256, RPC_PARAM_NONE },
    { CKM_ECDSA_SHA384, RPC_PARAM_NONE },
    { CKM_ECDSA_SHA512, RPC_PARAM_NONE },
    { CKM_ECDH1_DERIVE, RPC_PARAM_ECDH1 },
    { CKM_ECDH1_COFACTOR_DERIVE, RPC_PARAM_ECDH1 },
    { CKM_EC_EDWARDS_KEY_PAIR_GEN, RPC_PARAM_NONE },
    { CKM_EDDSA, RPC_PARAM_EDDSA },
    { CKM_AES_KEY_GEN, RPC_PARAM_NONE },
    { CKM_AES_ECB, RPC_PARAM_NONE },
    { CKM_AES_CBC, RPC_PARAM_BYTES },
    { CKM_AES_CBC_PAD, RPC_PARAM_BYTES },
    { CKM_AES_CTR, RPC_PARAM_AES_CTR },
    { CKM_AES_GCM, RPC_PARAM_GCM },
    { CKM_AES_KEY_WRAP, RPC_PARAM_BYTES },
    { CKM_AES_KEY_WRAP_PAD, RPC_PARAM_BYTES },
    { CKM_SHA_1, RPC_PARAM_NONE },
    { CKM_SHA224, RPC_PARAM_NONE },
    { CKM_SHA256, RPC_PARAM_NONE },
    { CKM_SHA384, RPC_PARAM_NONE },
    { CKM_SHA512, RPC_PARAM_NONE },
    { CKM_GENERIC_SECRET_KEY_GEN, RPC_PARAM_NONE },
    { CKM_SHA_1_HMAC, RPC_PARAM_NONE },
    { CKM_SHA224_HMAC, RPC_PARAM_NONE },
    { CKM_SHA256_HMAC, RPC_PARAM_NONE },
    { CKM_SHA384_HMAC, RPC_PARAM_NONE },
    { CKM_SHA512_HMAC, RPC_PARAM_NONE },
};

bool rpc_mech_layout(CK_MECHANISM_TYPE type, rpc_param_layout *layout)
{
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
        if (mechs[i].type == type) {
            *layout = mechs[i].layout;
            return true;
        }
    *layout = RPC_PARAM_NONE;
    return false;
}

/* The struct size a layout's ulParameterLen must be (0: any length, raw bytes). */
static size_t layout_size(rpc_param_layout l)
{
    switch (l) {
    case RPC_PARAM_NONE: return 0;
    case RPC_PARAM_BYTES: return 0;
    case RPC_PARAM_RSA_PSS: return sizeof(CK_RSA_PKCS_PSS_PARAMS);
    case RPC_PARAM_RSA_OAEP: return sizeof(CK_RSA_PKCS_OAEP_PARAMS);
    case RPC_PARAM_AES_CTR: return sizeof(CK_AES_CTR_PARAMS);
    case RPC_PARAM_GCM: return sizeof(CK_GCM_PARAMS);
    case RPC_PARAM_ECDH1: return sizeof(CK_ECDH1_DERIVE_PARAMS);
    case RPC_PARAM_EDDSA: return sizeof(rpc_eddsa_params);
    }
    return 0;
}

/* A pointer + length field: NULL with a length is the application's mistake. */
static cf_err put_field(cf_writer *w, const void *p, CK_ULONG n)
{
    CF_ENSURE(p || n == 0, CF_E_MECHANISM_PARAM_INVALID);
    CF_ENSURE(n <= RPC_MAX_FRAME, CF_E_OVERFLOW);
    rpc_put_blob(w, p, n);
    return CF_OK;
}

/* Rebuilt as NULL when empty (the engine treats NULL and empty alike for every such field). */
static cf_err get_field(cf_reader *r, CK_BYTE_PTR *p, CK_ULONG *n)
{
    const uint8_t *v;
    size_t len;
    CF_TRY(rpc_get_blob(r, &v, &len));
    *p = len ? (CK_BYTE_PTR)(uintptr_t)v : NULL;
    *n = len;
    return CF_OK;
}

cf_err rpc_put_mech(cf_writer *w, const CK_MECHANISM *m)
{
    rpc_param_layout l;
    bool known = rpc_mech_layout(m->mechanism, &l);
    rpc_put_ulong(w, m->mechanism);
    if (!m->pParameter && m->ulParameterLen == 0) {
        cf_put_u8(w, RPC_PARAM_NONE);
        return CF_OK;
    }
    CF_ENSURE(known, CF_E_MECHANISM_INVALID);
    CF_ENSURE(l != RPC_PARAM_NONE && m->pParameter, CF_E_MECHANISM_PARAM_INVALID);
    size_t want = layout_size(l);
    CF_ENSURE(want == 0 || m->ulParameterLen == want, CF_E_MECHANISM_PARAM_INVALID);
    cf_put_u8(w, (uint8_t)l);
    switch (l) {
    case RPC_PARAM_NONE:
        break;
    case RPC_PARAM_BYTES:
        CF_ENSURE(m->ulParameterLen > 0, CF_E_MECHANISM_PARAM_INVALID);
        return put_field(w, m->pParameter, m->ulParameterLen);
    case RPC_PARAM_RSA_PSS: {
        const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;
        rpc_put_ulong(w, p->hashAlg);
        rpc_put_ulong(w, p->mgf);
        rpc_put_ulong(w, p->sLen);
        break;
    }
    case RPC_PARAM_RSA_OAEP: {
        const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter;
        rpc_put_ulong(w, p->hashAlg);
        rpc_put_ulong(w, p->mgf);
        rpc_put_ulong(w, p->source);
        return put_field(w, p->pSourceData, p->ulSourceDataLen);
    }
    case RPC_PARAM_AES_CTR: {
        const CK_AES_CTR_PARAMS *p = m->pParameter;
        rpc_put_ulong(w, p->ulCounterBits);
        cf_put_bytes(w, p->cb, sizeof p->cb);
        break;
    }
    case RPC_PARAM_GCM: {
        const CK_GCM_PARAMS *p = m->pParameter;
        CF_TRY(put_field(w, p->pIv, p->ulIvLen));
        rpc_put_ulong(w, p->ulIvBits);
        CF_TRY(put_field(w, p->pAAD, p->ulAADLen));
        rpc_put_ulong(w, p->ulTagBits);
        break;
    }
    case RPC_PARAM_ECDH1: {
        const CK_ECDH1_DERIVE_PARAMS *p = m->pParameter;
        rpc_put_ulong(w, p->kdf);
        CF_TRY(put_field(w, p->pSharedData, p->ulSharedDataLen));
        return put_field(w, p->pPublicData, p->ulPublicDataLen);
    }
    case RPC_PARAM_EDDSA: {
        const rpc_eddsa_params *p = m->pParameter;
        CF_ENSURE(p->phFlag <= 1, CF_E_MECHANISM_PARAM_INVALID);
        cf_put_u8(w, p->phFlag);
        return put_field(w, p->pContextData, p->ulContextDataLen);
    }
    }
    return CF_OK;
}

/* The parameter of layout l, rebuilt in the arena. */
static cf_err get_param(cf_reader *r, rpc_param_layout l, CK_MECHANISM *m, rpc_arena *a)
{
    size_t size = layout_size(l);
    void *mem = NULL;
    if (size) {
        mem = rpc_arena_alloc(a, size);
        CF_ENSURE(mem, CF_E_NOMEM);
    }
    switch (l) {
    case RPC_PARAM_NONE:
        break;
    case RPC_PARAM_BYTES: {
        const uint8_t *p;
        size_t n;
        CF_TRY(rpc_get_blob(r, &p, &n));
        /* Empty bytes would read back as no parameter, which is layout 0's encoding. */
        CF_ENSURE(n > 0, CF_E_FORMAT);
        m->pParameter = (void *)(uintptr_t)p;
        m->ulParameterLen = n;
        return CF_OK;
    }
    case RPC_PARAM_RSA_PSS: {
        CK_RSA_PKCS_PSS_PARAMS *p = mem;
        CF_TRY(rpc_get_ulong(r, &p->hashAlg));
        CF_TRY(rpc_get_ulong(r, &p->mgf));
        CF_TRY(rpc_get_ulong(r, &p->sLen));
        break;
    }
    case RPC_PARAM_RSA_OAEP: {
        CK_RSA_PKCS_OAEP_PARAMS *p = mem;
        CK_BYTE_PTR src;
        CF_TRY(rpc_get_ulong(r, &p->hashAlg));
        CF_TRY(rpc_get_ulong(r, &p->mgf));
        CF_TRY(rpc_get_ulong(r, &p->source));
        CF_TRY(get_field(r, &src, &p->ulSourceDataLen));
        p->pSourceData = src;
        break;
    }
    case RPC_PARAM_AES_CTR: {
        CK_AES_CTR_PARAMS *p = mem;
        CF_TRY(rpc_get_ulong(r, &p->ulCounterBits));
        CF_TRY(cf_get_bytes(r, p->cb, sizeof p->cb));
        break;
    }
    case RPC_PARAM_GCM: {
        CK_GCM_PARAMS *p = mem;
        CF_TRY(get_field(r, &p->pIv, &p->ulIvLen));
        CF_TRY(rpc_get_ulong(r, &p->ulIvBits));
        CF_TRY(get_field(r, &p->pAAD, &p->ulAADLen));
        CF_TRY(rpc_get_ulong(r, &p->ulTagBits));
        break;
    }
    case RPC_PARAM_ECDH1: {
        CK_ECDH1_DERIVE_PARAMS *p = mem;
        CF_TRY(rpc_get_ulong(r, &p->kdf));
        CF_TRY(get_field(r, &p->pSharedData, &p->ulSharedDataLen));
        CF_TRY(get_field(r, &p->pPublicData, &p->ulPublicDataLen));
        break;
    }
    case RPC_PARAM_EDDSA: {
        rpc_eddsa_params *p = mem;
        bool ph;
        CF_TRY(rpc_get_flag(r, &ph));
        p->phFlag = ph ? CK_TRUE : CK_FALSE;
        CF_TRY(get_field(r, &p->pContextData, &p->ulContextDataLen));
        break;
    }
    }
    m->pParameter = mem;
    m->ulParameterLen = size;
    return CF_OK;
}

/* Errors are FORMAT whatever went wrong inside (a short field is a malformed frame); the reader
 * and the arena are put back by the caller. */
cf_err rpc_get_mech(cf_reader *r, CK_MECHANISM *m, rpc_arena *a)
{
    uint8_t tag;
    rpc_param_layout l;
    CF_TRY(rpc_get_ulong(r, &m->mechanism));
    CF_TRY(cf_get_u8(r, &tag));
    m->pParameter = NULL;
    m->ulParameterLen = 0;
    if (tag == RPC_PARAM_NONE)
        return CF_OK;
    /* only the layout the table gives this mechanism: never a struct the engine would misread */
    CF_ENSURE(rpc_mech_layout(m->mechanism, &l) && tag == (uint8_t)l, CF_E_FORMAT);
    return get_param(r, l, m, a);
}
