/* attrs.h: a growable list of attributes (an object's, or a template's once copied in), and the
 * typed accessors every part of the engine uses instead of poking at CK_ATTRIBUTE arrays. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "base/error.h"
#include "hsm/pkcs11.h"
#include "store/store.h"

typedef struct {
    cf_attr *a;
    size_t n, cap;
} hsm_attrs;

void hsm_attrs_free(hsm_attrs *l);                       /* wipes values */
/* Copies a caller template in (values copied; duplicates: TEMPLATE_INCONSISTENT; a NULL pValue
 * with a non-zero length: ARGUMENTS_BAD). */
cf_err hsm_attrs_from_template(hsm_attrs *l, const CK_ATTRIBUTE *t, CK_ULONG n);
cf_err hsm_attrs_copy(hsm_attrs *dst, const hsm_attrs *src);
const cf_attr *hsm_attrs_find(const hsm_attrs *l, CK_ATTRIBUTE_TYPE type);
/* Sets (replaces or appends) a value; flags are CF_ATTR_*. */
cf_err hsm_attrs_set(hsm_attrs *l, CK_ATTRIBUTE_TYPE type, const void *val, size_t len, uint32_t flags);
cf_err hsm_attrs_set_ulong(hsm_attrs *l, CK_ATTRIBUTE_TYPE type, CK_ULONG v);
cf_err hsm_attrs_set_bool(hsm_attrs *l, CK_ATTRIBUTE_TYPE type, bool v);
void hsm_attrs_remove(hsm_attrs *l, CK_ATTRIBUTE_TYPE type);
/* Typed reads: NOT_FOUND when absent, ATTRIBUTE_VALUE_INVALID when the size is wrong. */
cf_err hsm_attrs_ulong(const hsm_attrs *l, CK_ATTRIBUTE_TYPE type, CK_ULONG *v);
cf_err hsm_attrs_bool(const hsm_attrs *l, CK_ATTRIBUTE_TYPE type, bool *v);
/* A boolean with a default when absent (and the default when malformed). */
bool hsm_attrs_flag(const hsm_attrs *l, CK_ATTRIBUTE_TYPE type, bool dflt);
