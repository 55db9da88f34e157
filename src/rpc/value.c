/* value.c: the encodings of argument and output types (docs/protocol.md, "Value encodings").
 * rpc_get_value leaves r and the arena as they were when it fails, and turns every failure other
 * than NOMEM into FORMAT: to a decoder, a short field is a malformed frame. */
#include <string.h>
#include "rpc/internal.h"

/* ---- encoding ---------------------------------------------------------------------------------- */
static void put_version(cf_writer *w, CK_VERSION v)
{
    cf_put_u8(w, v.major);
    cf_put_u8(w, v.minor);
}

static cf_err put_template(cf_writer *w, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    CF_ENSURE(t || n == 0, CF_E_ARGS);
    CF_ENSURE(n <= RPC_MAX_TEMPLATE, CF_E_OVERFLOW);
    cf_put_u32(w, (uint32_t)n);
    for (CK_ULONG i = 0; i < n; i++) {
        CF_ENSURE(t[i].pValue || t[i].ulValueLen == 0, CF_E_ARGS);
        CF_ENSURE(t[i].ulValueLen <= RPC_MAX_ATTR, CF_E_OVERFLOW);
        rpc_put_ulong(w, t[i].type);
        cf_put_u8(w, t[i].pValue != NULL);
        rpc_put_blob(w, t[i].pValue, t[i].ulValueLen);
    }
    return CF_OK;
}

static cf_err put_attrs(cf_writer *w, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    CF_ENSURE(t || n == 0, CF_E_ARGS);
    CF_ENSURE(n <= RPC_MAX_TEMPLATE, CF_E_OVERFLOW);
    cf_put_u32(w, (uint32_t)n);
    for (CK_ULONG i = 0; i < n; i++) {
        bool has = t[i].pValue && t[i].ulValueLen != CK_UNAVAILABLE_INFORMATION;
        CF_ENSURE(!has || t[i].ulValueLen <= RPC_MAX_ATTR, CF_E_OVERFLOW);
        rpc_put_ulong(w, t[i].type);
        rpc_put_ulong(w, t[i].ulValueLen);
        cf_put_u8(w, has);
        if (has)
            cf_put_bytes(w, t[i].pValue, t[i].ulValueLen);
    }
    return CF_OK;
}

cf_err rpc_put_value(cf_writer *w, rpc_type t, const rpc_value *v)
{
    switch (t) {
    case RPC_T_END:
        return CF_E_INTERNAL;
    case RPC_T_ULONG:
        rpc_put_ulong(w, v->ul);
        return CF_OK;
    case RPC_T_BOOL:
        CF_ENSURE(v->ul <= 1, CF_E_ARGS);
        cf_put_u8(w, (uint8_t)v->ul);
        return CF_OK;
    case RPC_T_KIND:
        CF_ENSURE(v->ul <= 4, CF_E_ARGS);
        cf_put_u8(w, (uint8_t)v->ul);
        return CF_OK;
    case RPC_T_BYTES:
        CF_ENSURE(v->bytes.p || v->bytes.len == 0, CF_E_ARGS);
        CF_ENSURE(v->bytes.len <= RPC_MAX_FRAME, CF_E_OVERFLOW);
        rpc_put_blob(w, v->bytes.p, v->bytes.len);
        return CF_OK;
    case RPC_T_LABEL:
        CF_ENSURE(v->bytes.p && v->bytes.len == 32, CF_E_ARGS);
        cf_put_bytes(w, v->bytes.p, 32);
        return CF_OK;
    case RPC_T_OUTBUF:
        cf_put_u8(w, v->outbuf.present);
        rpc_put_ulong(w, v->outbuf.cap);
        return CF_OK;
    case RPC_T_TEMPLATE:
        return put_template(w, v->tmpl.attrs, v->tmpl.count);
    case RPC_T_QUERY:
        CF_ENSURE(v->query.items || v->query.count == 0, CF_E_ARGS);
        CF_ENSURE(v->query.count <= RPC_MAX_TEMPLATE, CF_E_OVERFLOW);
        cf_put_u32(w, (uint32_t)v->query.count);
        for (CK_ULONG i = 0; i < v->query.count; i++) {
            rpc_put_ulong(w, v->query.items[i].type);
            cf_put_u8(w, v->query.items[i].has_buf);
            rpc_put_ulong(w, v->query.items[i].cap);
        }
        return CF_OK;
    case RPC_T_MECH:
        return rpc_put_mech(w, &v->mech);
    case RPC_T_DATA:
        CF_ENSURE(!v->data.p || v->data.len <= RPC_MAX_FRAME, CF_E_OVERFLOW);
        rpc_put_ulong(w, v->data.len);
        cf_put_u8(w, v->data.p != NULL);
        if (v->data.p)
            cf_put_bytes(w, v->data.p, v->data.len);
        return CF_OK;
    case RPC_T_LIST:
        CF_ENSURE(!v->list.v || v->list.count <= RPC_MAX_FRAME / 8, CF_E_OVERFLOW);
        rpc_put_ulong(w, v->list.count);
        cf_put_u8(w, v->list.v != NULL);
        if (v->list.v)
            for (CK_ULONG i = 0; i < v->list.count; i++)
                rpc_put_ulong(w, v->list.v[i]);
        return CF_OK;
    case RPC_T_ATTRS:
        return put_attrs(w, v->tmpl.attrs, v->tmpl.count);
    case RPC_T_SLOT_INFO: {
        const CK_SLOT_INFO *s = &v->slot_info;
        cf_put_bytes(w, s->slotDescription, sizeof s->slotDescription);
        cf_put_bytes(w, s->manufacturerID, sizeof s->manufacturerID);
        rpc_put_ulong(w, s->flags);
        put_version(w, s->hardwareVersion);
        put_version(w, s->firmwareVersion);
        return CF_OK;
    }
    case RPC_T_TOKEN_INFO: {
        const CK_TOKEN_INFO *k = &v->token_info;
        cf_put_bytes(w, k->label, sizeof k->label);
        cf_put_bytes(w, k->manufacturerID, sizeof k->manufacturerID);
        cf_put_bytes(w, k->model, sizeof k->model);
        cf_put_bytes(w, k->serialNumber, sizeof k->serialNumber);
        rpc_put_ulong(w, k->flags);
        rpc_put_ulong(w, k->ulMaxSessionCount);
        rpc_put_ulong(w, k->ulSessionCount);
        rpc_put_ulong(w, k->ulMaxRwSessionCount);
        rpc_put_ulong(w, k->ulRwSessionCount);
        rpc_put_ulong(w, k->ulMaxPinLen);
        rpc_put_ulong(w, k->ulMinPinLen);
        rpc_put_ulong(w, k->ulTotalPublicMemory);
        rpc_put_ulong(w, k->ulFreePublicMemory);
        rpc_put_ulong(w, k->ulTotalPrivateMemory);
        rpc_put_ulong(w, k->ulFreePrivateMemory);
        put_version(w, k->hardwareVersion);
        put_version(w, k->firmwareVersion);
        cf_put_bytes(w, k->utcTime, sizeof k->utcTime);
        return CF_OK;
    }
    case RPC_T_SESSION_INFO:
        rpc_put_ulong(w, v->session_info.slotID);
        rpc_put_ulong(w, v->session_info.state);
        rpc_put_ulong(w, v->session_info.flags);
        rpc_put_ulong(w, v->session_info.ulDeviceError);
        return CF_OK;
    case RPC_T_MECH_INFO:
        rpc_put_ulong(w, v->mech_info.ulMinKeySize);
        rpc_put_ulong(w, v->mech_info.ulMaxKeySize);
        rpc_put_ulong(w, v->mech_info.flags);
        return CF_OK;
    }
    return CF_E_INTERNAL;
}

/* ---- decoding ---------------------------------------------------------------------------------- */
static cf_err get_version(cf_reader *r, CK_VERSION *v)
{
    CF_TRY(cf_get_u8(r, &v->major));
    return cf_get_u8(r, &v->minor);
}

/* A count that announces n items of at least min_item bytes each: bounded by the limit and by
 * what is left of the frame, so that a lying count cannot make us allocate. */
static cf_err get_count(cf_reader *r, uint32_t limit, size_t min_item, CK_ULONG *n)
{
    uint32_t c;
    CF_TRY(cf_get_u32(r, &c));
    CF_ENSURE(c <= limit && c <= cf_reader_left(r) / min_item, CF_E_FORMAT);
    *n = c;
    return CF_OK;
}

static cf_err get_template(cf_reader *r, rpc_value *v, rpc_arena *a)
{
    CK_ULONG n;
    CF_TRY(get_count(r, RPC_MAX_TEMPLATE, 8 + 1 + 4, &n));
    CK_ATTRIBUTE *t = NULL;
    if (n) {
        t = rpc_arena_alloc(a, n * sizeof *t);
        CF_ENSURE(t, CF_E_NOMEM);
    }
    for (CK_ULONG i = 0; i < n; i++) {
        bool has;
        const uint8_t *p;
        size_t len;
        CF_TRY(rpc_get_ulong(r, &t[i].type));
        CF_TRY(rpc_get_flag(r, &has));
        CF_TRY(rpc_get_blob(r, &p, &len));
        CF_ENSURE(len <= RPC_MAX_ATTR && (has || len == 0), CF_E_FORMAT);
        t[i].pValue = has ? (void *)(uintptr_t)p : NULL;
        t[i].ulValueLen = len;
    }
    v->tmpl.attrs = t;
    v->tmpl.count = n;
    return CF_OK;
}

static cf_err get_attrs(cf_reader *r, rpc_value *v, rpc_arena *a)
{
    CK_ULONG n;
    CF_TRY(get_count(r, RPC_MAX_TEMPLATE, 8 + 8 + 1, &n));
    CK_ATTRIBUTE *t = NULL;
    if (n) {
        t = rpc_arena_alloc(a, n * sizeof *t);
        CF_ENSURE(t, CF_E_NOMEM);
    }
    for (CK_ULONG i = 0; i < n; i++) {
        bool has;
        CF_TRY(rpc_get_ulong(r, &t[i].type));
        CF_TRY(rpc_get_ulong(r, &t[i].ulValueLen));
        CF_TRY(rpc_get_flag(r, &has));
        t[i].pValue = NULL;
        if (has) {
            const uint8_t *p;
            CF_ENSURE(t[i].ulValueLen != CK_UNAVAILABLE_INFORMATION && t[i].ulValueLen <= RPC_MAX_ATTR,
                      CF_E_FORMAT);
            CF_TRY(cf_get_view(r, &p, t[i].ulValueLen));
            t[i].pValue = (void *)(uintptr_t)p;
        }
    }
    v->tmpl.attrs = t;
    v->tmpl.count = n;
    return CF_OK;
}

static cf_err get_value(cf_reader *r, rpc_type t, rpc_value *v, rpc_arena *a)
{
    memset(v, 0, sizeof *v);
    switch (t) {
    case RPC_T_END:
        return CF_E_INTERNAL;
    case RPC_T_ULONG:
        return rpc_get_ulong(r, &v->ul);
    case RPC_T_BOOL: {
        bool b;
        CF_TRY(rpc_get_flag(r, &b));
        v->ul = b;
        return CF_OK;
    }
    case RPC_T_KIND: {
        uint8_t k;
        CF_TRY(cf_get_u8(r, &k));
        CF_ENSURE(k <= 4, CF_E_FORMAT);
        v->ul = k;
        return CF_OK;
    }
    case RPC_T_BYTES:
        return rpc_get_blob(r, &v->bytes.p, &v->bytes.len);
    case RPC_T_LABEL:
        v->bytes.len = 32;
        return cf_get_view(r, &v->bytes.p, 32);
    case RPC_T_OUTBUF:
        CF_TRY(rpc_get_flag(r, &v->outbuf.present));
        return rpc_get_ulong(r, &v->outbuf.cap);
    case RPC_T_TEMPLATE:
        return get_template(r, v, a);
    case RPC_T_QUERY: {
        CK_ULONG n;
        CF_TRY(get_count(r, RPC_MAX_TEMPLATE, 8 + 1 + 8, &n));
        rpc_query_item *q = NULL;
        if (n) {
            q = rpc_arena_alloc(a, n * sizeof *q);
            CF_ENSURE(q, CF_E_NOMEM);
        }
        for (CK_ULONG i = 0; i < n; i++) {
            CF_TRY(rpc_get_ulong(r, &q[i].type));
            CF_TRY(rpc_get_flag(r, &q[i].has_buf));
            CF_TRY(rpc_get_ulong(r, &q[i].cap));
        }
        v->query.items = q;
        v->query.count = n;
        return CF_OK;
    }
    case RPC_T_MECH:
        return rpc_get_mech(r, &v->mech, a);
    case RPC_T_DATA: {
        bool has;
        CF_TRY(rpc_get_ulong(r, &v->data.len));
        CF_TRY(rpc_get_flag(r, &has));
        if (has) {
            CF_ENSURE(v->data.len != CK_UNAVAILABLE_INFORMATION, CF_E_FORMAT);
            CF_TRY(cf_get_view(r, &v->data.p, v->data.len));
        }
        return CF_OK;
    }
    case RPC_T_LIST: {
        bool has;
        CF_TRY(rpc_get_ulong(r, &v->list.count));
        CF_TRY(rpc_get_flag(r, &has));
        if (!has)
            return CF_OK;
        CF_ENSURE(v->list.count <= cf_reader_left(r) / 8, CF_E_FORMAT);
        /* an empty list still has items: a non-NULL array, so it re-encodes the same */
        CK_ULONG *l = rpc_arena_alloc(a, (v->list.count ? v->list.count : 1) * sizeof *l);
        CF_ENSURE(l, CF_E_NOMEM);
        for (CK_ULONG i = 0; i < v->list.count; i++)
            CF_TRY(rpc_get_ulong(r, &l[i]));
        v->list.v = l;
        return CF_OK;
    }
    case RPC_T_ATTRS:
        return get_attrs(r, v, a);
    case RPC_T_SLOT_INFO: {
        CK_SLOT_INFO *s = &v->slot_info;
        CF_TRY(cf_get_bytes(r, s->slotDescription, sizeof s->slotDescription));
        CF_TRY(cf_get_bytes(r, s->manufacturerID, sizeof s->manufacturerID));
        CF_TRY(rpc_get_ulong(r, &s->flags));
        CF_TRY(get_version(r, &s->hardwareVersion));
        return get_version(r, &s->firmwareVersion);
    }
    case RPC_T_TOKEN_INFO: {
        CK_TOKEN_INFO *k = &v->token_info;
        CF_TRY(cf_get_bytes(r, k->label, sizeof k->label));
        CF_TRY(cf_get_bytes(r, k->manufacturerID, sizeof k->manufacturerID));
        CF_TRY(cf_get_bytes(r, k->model, sizeof k->model));
        CF_TRY(cf_get_bytes(r, k->serialNumber, sizeof k->serialNumber));
        CF_TRY(rpc_get_ulong(r, &k->flags));
        CF_TRY(rpc_get_ulong(r, &k->ulMaxSessionCount));
        CF_TRY(rpc_get_ulong(r, &k->ulSessionCount));
        CF_TRY(rpc_get_ulong(r, &k->ulMaxRwSessionCount));
        CF_TRY(rpc_get_ulong(r, &k->ulRwSessionCount));
        CF_TRY(rpc_get_ulong(r, &k->ulMaxPinLen));
        CF_TRY(rpc_get_ulong(r, &k->ulMinPinLen));
        CF_TRY(rpc_get_ulong(r, &k->ulTotalPublicMemory));
        CF_TRY(rpc_get_ulong(r, &k->ulFreePublicMemory));
        CF_TRY(rpc_get_ulong(r, &k->ulTotalPrivateMemory));
        CF_TRY(rpc_get_ulong(r, &k->ulFreePrivateMemory));
        CF_TRY(get_version(r, &k->hardwareVersion));
        CF_TRY(get_version(r, &k->firmwareVersion));
        return cf_get_bytes(r, k->utcTime, sizeof k->utcTime);
    }
    case RPC_T_SESSION_INFO:
        CF_TRY(rpc_get_ulong(r, &v->session_info.slotID));
        CF_TRY(rpc_get_ulong(r, &v->session_info.state));
        CF_TRY(rpc_get_ulong(r, &v->session_info.flags));
        return rpc_get_ulong(r, &v->session_info.ulDeviceError);
    case RPC_T_MECH_INFO:
        CF_TRY(rpc_get_ulong(r, &v->mech_info.ulMinKeySize));
        CF_TRY(rpc_get_ulong(r, &v->mech_info.ulMaxKeySize));
        return rpc_get_ulong(r, &v->mech_info.flags);
    }
    return CF_E_INTERNAL;
}

cf_err rpc_get_value(cf_reader *r, rpc_type t, rpc_value *v, rpc_arena *a)
{
    size_t save = r->off;
    rpc_chunk *mark = rpc_arena_mark(a);
    cf_err rv = get_value(r, t, v, a);
    if (rv != CF_OK) {
        r->off = save;
        rpc_arena_release(a, mark);
        if (rv != CF_E_NOMEM && rv != CF_E_INTERNAL)
            rv = CF_E_FORMAT;
    }
    return rv;
}
