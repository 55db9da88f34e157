/* persist.c: Part 3 section 28.5 (EvictControl) and the persistent objects' part of the state
 * blob.
 *
 * A persistent object is a loaded object kept in tpm_persistent (keys ready, like a transient
 * one) under a handle 0x81000000..0x81FFFFFF: owner range 0x81000000..0x817FFFFF, platform range
 * 0x81800000..0x81FFFFFF (TCG Registry of Reserved Handles). In the blob each one is
 *   u32 handle, u32 hierarchy, TPM2B(marshaled TPMT_PUBLIC), TPM2B(marshaled TPMT_SENSITIVE),
 *   TPM2B_NAME qualifiedName
 * after a u32 count; the blob as a whole is sealed by the daemon, so the sensitive areas are not
 * protected again here. A blob whose objects do not parse, or whose public and sensitive areas do
 * not belong together, is refused (CF_E_FORMAT). */
#include <string.h>
#include "base/secmem.h"
#include "tpm/internal.h"

#define PERSISTENT_FIRST 0x81000000u
#define PLATFORM_PERSISTENT_FIRST 0x81800000u
#define PERSISTENT_LAST 0x81FFFFFFu

void tpm_persistent_clear(tpm_persistent *nv)
{
    for (size_t i = 0; i < TPM_PERSISTENT_SLOTS; i++)
        if (nv->persistent[i].used || nv->persistent[i].key)
            tpm_object_clear(&nv->persistent[i]);
    nv->n_persistent = 0;
}

void tpm_persistent_serialize(const tpm_persistent *nv, cf_writer *w)
{
    cf_put_u32(w, nv->n_persistent);
    uint8_t buf[sizeof(TPMT_SENSITIVE) + 16];
    for (size_t i = 0; i < TPM_PERSISTENT_SLOTS; i++) {
        const tpm_object *o = &nv->persistent[i];
        if (!o->used)
            continue;
        cf_put_u32(w, o->handle);
        cf_put_u32(w, o->hierarchy);
        size_t n = tpm_marshal_to(TPM_MARSHAL(TPMT_PUBLIC), &o->pub, buf, sizeof buf);
        if (n == 0)
            w->overflow = true;
        tpm_put_2b(w, buf, n);
        n = tpm_marshal_to(TPM_MARSHAL(TPMT_SENSITIVE), &o->sens, buf, sizeof buf);
        if (n == 0)
            w->overflow = true;
        tpm_put_2b(w, buf, n);
        cf_wipe(buf, n);
        TPM_PUT(w, TPM2B_NAME, &o->qname);
    }
}

/* One TPM2B holding exactly one marshaled T. */
static cf_err get_area(cf_reader *r, tpm_unmarshal_fn fn, void *dst)
{
    cf_reader area;
    CF_TRY(cf_get_sized16(r, &area));
    CF_ENSURE(tpm_get(&area, fn, dst) == TPM2_RC_SUCCESS && cf_reader_done(&area), CF_E_FORMAT);
    return CF_OK;
}

static tpm_object *persistent_find(tpm_persistent *nv, TPM2_HANDLE h)
{
    for (size_t i = 0; i < TPM_PERSISTENT_SLOTS; i++)
        if (nv->persistent[i].used && nv->persistent[i].handle == h)
            return &nv->persistent[i];
    return NULL;
}

cf_err tpm_persistent_parse(tpm_persistent *nv, cf_reader *r)
{
    uint32_t n;
    CF_TRY(cf_get_u32(r, &n));
    CF_ENSURE(n <= TPM_PERSISTENT_SLOTS, CF_E_FORMAT);
    nv->n_persistent = 0;
    for (uint32_t i = 0; i < n; i++) {
        tpm_object *o = &nv->persistent[i];
        uint32_t handle, hier;
        CF_TRY(cf_get_u32(r, &handle));
        CF_TRY(cf_get_u32(r, &hier));
        CF_ENSURE(handle >= PERSISTENT_FIRST && handle <= PERSISTENT_LAST && !persistent_find(nv, handle), CF_E_FORMAT);
        CF_ENSURE(hier == TPM2_RH_OWNER || hier == TPM2_RH_ENDORSEMENT || hier == TPM2_RH_PLATFORM, CF_E_FORMAT);
        memset(o, 0, sizeof *o);
        CF_TRY(get_area(r, TPM_UNMARSHAL(TPMT_PUBLIC), &o->pub));
        CF_TRY(get_area(r, TPM_UNMARSHAL(TPMT_SENSITIVE), &o->sens));
        CF_ENSURE(tpm_get(r, TPM_UNMARSHAL(TPM2B_NAME), &o->qname) == TPM2_RC_SUCCESS, CF_E_FORMAT);
        CF_ENSURE(tpm_object_build(o) == TPM2_RC_SUCCESS, CF_E_FORMAT);
        o->used = true;
        o->handle = handle;
        o->hierarchy = hier;
        nv->n_persistent++;
    }
    return CF_OK;
}

TPM_HANDLER(tpm_cc_evict_control)
{
    TPM2_HANDLE ph;
    TPM_GET(in, UINT32, &ph, 1);
    TPM_TRY(tpm_params_done(in));
    TPMI_RH_PROVISION auth = c->handles[0];
    TPM_ENSURE(auth == TPM2_RH_OWNER || auth == TPM2_RH_PLATFORM, tpm_rc_h(TPM2_RC_VALUE, 1));
    TPM_ENSURE(ph >= PERSISTENT_FIRST && ph <= PERSISTENT_LAST, tpm_rc_p(TPM2_RC_VALUE, 1));
    tpm_object *o = c->objects[1];
    bool evict = (o->handle >> 24) == TPM2_HT_PERSISTENT;
    /* temporary (null hierarchy), stClear and public-only objects cannot be made persistent */
    TPM_ENSURE(o->hierarchy != TPM2_RH_NULL && !(o->pub.objectAttributes & TPMA_OBJECT_STCLEAR) && !o->public_only
               && !tpm_object_is_sequence(o), tpm_rc_h(TPM2_RC_ATTRIBUTES, 2));
    TPM_ENSURE(!evict || o->handle == ph, tpm_rc_h(TPM2_RC_HANDLE, 2));
    bool pps = o->hierarchy == TPM2_RH_PLATFORM;
    if (auth == TPM2_RH_PLATFORM) {
        /* platformAuth may remove any persistent object, but persist only platform objects */
        TPM_ENSURE(evict || pps, tpm_rc_h(TPM2_RC_HIERARCHY, 2));
        TPM_ENSURE(evict || ph >= PLATFORM_PERSISTENT_FIRST, tpm_rc_p(TPM2_RC_RANGE, 1));
    } else {
        TPM_ENSURE(!pps, tpm_rc_h(TPM2_RC_HIERARCHY, 2));
        TPM_ENSURE(evict || ph < PLATFORM_PERSISTENT_FIRST, tpm_rc_p(TPM2_RC_RANGE, 1));
    }
    tpm_persistent *nv = &t->nv;
    if (evict) {
        tpm_object_clear(o);
        nv->n_persistent--;
        t->nv_dirty = true;
        return TPM2_RC_SUCCESS;
    }
    TPM_ENSURE(!persistent_find(nv, ph), TPM2_RC_NV_DEFINED);
    tpm_object *slot = NULL;
    for (size_t i = 0; i < TPM_PERSISTENT_SLOTS && !slot; i++)
        if (!nv->persistent[i].used)
            slot = &nv->persistent[i];
    TPM_ENSURE(slot, TPM2_RC_NV_SPACE);
    *slot = *o;
    slot->handle = ph;
    slot->key = o->key ? cf_pkey_ref(o->key) : NULL;
    slot->signer = NULL;   /* a signer is one object's cache */
    nv->n_persistent++;
    t->nv_dirty = true;
    return TPM2_RC_SUCCESS;
}
