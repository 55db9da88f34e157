/* attrs.c: attribute lists. Values are heap copies owned by the list and wiped on free, because
 * a list may hold key material (templates for C_CreateObject carry private keys). */
#include "hsm/attrs.h"
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"

void hsm_attrs_free(hsm_attrs *l)
{
    if (!l)
        return;
    cf_attrs_free(l->a, l->n);
    l->a = NULL;
    l->n = l->cap = 0;
}

const cf_attr *hsm_attrs_find(const hsm_attrs *l, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->a[i].type == type)
            return &l->a[i];
    return NULL;
}

static cf_err grow(hsm_attrs *l)
{
    if (l->n < l->cap)
        return CF_OK;
    size_t cap = l->cap ? l->cap * 2 : 16;
    cf_attr *na = realloc(l->a, cap * sizeof *na);
    CF_ENSURE(na, CF_E_NOMEM);
    l->a = na;
    l->cap = cap;
    return CF_OK;
}

cf_err hsm_attrs_set(hsm_attrs *l, CK_ATTRIBUTE_TYPE type, const void *val, size_t len, uint32_t flags)
{
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        CF_ENSURE(copy, CF_E_NOMEM);
        memcpy(copy, val, len);
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->a[i].type == type) {
            cf_free_wiped(l->a[i].val, l->a[i].len);
            l->a[i].val = copy;
            l->a[i].len = len;
            l->a[i].flags = flags;
            return CF_OK;
        }
    }
    if (grow(l) != CF_OK) {
        cf_free_wiped(copy, len);
        return CF_E_NOMEM;
    }
    l->a[l->n++] = (cf_attr){ .type = type, .flags = flags, .len = len, .val = copy };
    return CF_OK;
}

cf_err hsm_attrs_set_ulong(hsm_attrs *l, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
    return hsm_attrs_set(l, type, &v, sizeof v, 0);
}

cf_err hsm_attrs_set_bool(hsm_attrs *l, CK_ATTRIBUTE_TYPE type, bool v)
{
    CK_BBOOL b = v ? CK_TRUE : CK_FALSE;
    return hsm_attrs_set(l, type, &b, sizeof b, 0);
}

void hsm_attrs_remove(hsm_attrs *l, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->a[i].type == type) {
            cf_free_wiped(l->a[i].val, l->a[i].len);
            l->a[i] = l->a[--l->n];
            return;
        }
    }
}

cf_err hsm_attrs_from_template(hsm_attrs *l, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        if (!t[i].pValue && t[i].ulValueLen)
            return CF_E_ARGS;
        if (t[i].ulValueLen > (1u << 24))
            return CF_E_ATTRIBUTE_VALUE_INVALID;
        if (hsm_attrs_find(l, t[i].type))
            return CF_E_TEMPLATE_INCONSISTENT;
        CF_TRY(hsm_attrs_set(l, t[i].type, t[i].pValue, t[i].ulValueLen, 0));
    }
    return CF_OK;
}

cf_err hsm_attrs_copy(hsm_attrs *dst, const hsm_attrs *src)
{
    for (size_t i = 0; i < src->n; i++)
        CF_TRY(hsm_attrs_set(dst, src->a[i].type, src->a[i].val, src->a[i].len, src->a[i].flags));
    return CF_OK;
}

cf_err hsm_attrs_ulong(const hsm_attrs *l, CK_ATTRIBUTE_TYPE type, CK_ULONG *v)
{
    const cf_attr *a = hsm_attrs_find(l, type);
    CF_ENSURE(a, CF_E_NOT_FOUND);
    CF_ENSURE(a->len == sizeof(CK_ULONG), CF_E_ATTRIBUTE_VALUE_INVALID);
    memcpy(v, a->val, sizeof *v);
    return CF_OK;
}

cf_err hsm_attrs_bool(const hsm_attrs *l, CK_ATTRIBUTE_TYPE type, bool *v)
{
    const cf_attr *a = hsm_attrs_find(l, type);
    CF_ENSURE(a, CF_E_NOT_FOUND);
    CF_ENSURE(a->len == sizeof(CK_BBOOL), CF_E_ATTRIBUTE_VALUE_INVALID);
    CF_ENSURE(a->val[0] == CK_TRUE || a->val[0] == CK_FALSE, CF_E_ATTRIBUTE_VALUE_INVALID);
    *v = a->val[0] == CK_TRUE;
    return CF_OK;
}

bool hsm_attrs_flag(const hsm_attrs *l, CK_ATTRIBUTE_TYPE type, bool dflt)
{
    bool v;
    return hsm_attrs_bool(l, type, &v) == CF_OK ? v : dflt;
}
