/* object.c: object management (PKCS#11 2.40 base spec 5.7). Attribute rules (who may read or set
 * what, sensitive values, the per-attribute results of C_GetAttributeValue) are the engine's. */
#include "pkcs11/p11.h"

bool p11_template_ok(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    if (t == NULL)
        return n == 0;
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].pValue == NULL && t[i].ulValueLen != 0)
            return false;
#if ULONG_MAX > SIZE_MAX
        if (t[i].ulValueLen > SIZE_MAX)
            return false;
#endif
    }
    return true;
}

P11_EXPORT CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                                CK_OBJECT_HANDLE_PTR phObject)
{
    P11_LIVE();
    P11_TEMPLATE(pTemplate, ulCount);
    P11_ARG(phObject != NULL);
    return p11_rv(B->create_object(hSession, pTemplate, ulCount, phObject));
}

P11_EXPORT CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                              CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
    P11_LIVE();
    P11_TEMPLATE(pTemplate, ulCount);
    P11_ARG(phNewObject != NULL);
    return p11_rv(B->copy_object(hSession, hObject, pTemplate, ulCount, phNewObject));
}

P11_EXPORT CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    P11_LIVE();
    return p11_rv(B->destroy_object(hSession, hObject));
}

P11_EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
    P11_LIVE();
    P11_ARG(pulSize != NULL);
    return p11_rv(B->get_object_size(hSession, hObject, pulSize));
}

/* Output template: a NULL pValue asks for the length (any ulValueLen), so only the array itself
 * is checked here. */
P11_EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                     CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    P11_LIVE();
    P11_ARG(pTemplate != NULL || ulCount == 0);
    return p11_rv(B->get_attribute_value(hSession, hObject, pTemplate, ulCount));
}

P11_EXPORT CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                     CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    P11_LIVE();
    P11_TEMPLATE(pTemplate, ulCount);
    return p11_rv(B->set_attribute_value(hSession, hObject, pTemplate, ulCount));
}

P11_EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    P11_LIVE();
    P11_TEMPLATE(pTemplate, ulCount);
    return p11_rv(B->find_objects_init(hSession, pTemplate, ulCount));
}

P11_EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                               CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    P11_LIVE();
    P11_ARG(phObject != NULL || ulMaxObjectCount == 0);
    P11_ARG(pulObjectCount != NULL);
    CK_OBJECT_HANDLE none;   /* (NULL, 0) reaches the engine as an empty array, not NULL */
    return p11_rv(B->find_objects(hSession, phObject != NULL ? phObject : &none, ulMaxObjectCount,
                                   pulObjectCount));
}

P11_EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    P11_LIVE();
    return p11_rv(B->find_objects_final(hSession));
}
