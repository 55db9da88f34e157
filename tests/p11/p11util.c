/* p11util.c: see p11util.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "p11util.h"
#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef COFFER_MODULE_PATH
#error "COFFER_MODULE_PATH (the built module) must be defined by the build"
#endif

CK_FUNCTION_LIST_PTR p11_load(void **handle)
{
    const char *path = getenv("COFFER_MODULE");
    if (path == NULL || *path == '\0')
        path = COFFER_MODULE_PATH;
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        fprintf(stderr, "p11util: dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f = NULL;
    if (get == NULL || get(&f) != CKR_OK || f == NULL) {
        fprintf(stderr, "p11util: %s: no usable C_GetFunctionList\n", path);
        dlclose(dl);
        return NULL;
    }
    *handle = dl;
    return f;
}

void p11_unload(void *handle)
{
    if (handle != NULL)
        dlclose(handle);
}

bool p11_store_create(p11_store *st, const char *extra_ini)
{
    memset(st, 0, sizeof *st);
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 200)
        tmp = "/tmp";
    snprintf(st->dir, sizeof st->dir, "%s/coffer-p11-XXXXXX", tmp);
    if (mkdtemp(st->dir) == NULL) {
        perror("p11util: mkdtemp");
        return false;
    }
    char store[300];
    snprintf(store, sizeof store, "%s/store", st->dir);
    if (mkdir(store, 0700) != 0) {
        perror("p11util: mkdir");
        return false;
    }
    snprintf(st->conf, sizeof st->conf, "%s/coffer.conf", st->dir);
    FILE *fp = fopen(st->conf, "w");
    if (fp == NULL) {
        perror("p11util: fopen");
        return false;
    }
    fprintf(fp, "[store]\ndir = %s\n[token]\npbkdf2_iterations = 1000\n%s", store,
            extra_ini != NULL ? extra_ini : "");
    if (fclose(fp) != 0) {
        perror("p11util: fclose");
        return false;
    }
    setenv("COFFER_CONF", st->conf, 1);
    return true;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

void p11_store_destroy(p11_store *st)
{
    if (st->dir[0] != '\0')
        (void)nftw(st->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    unsetenv("COFFER_CONF");
    memset(st, 0, sizeof *st);
}

void p11_pad(CK_UTF8CHAR *field, size_t n, const char *s)
{
    size_t len = strlen(s);
    if (len > n)
        len = n;
    memset(field, ' ', n);
    memcpy(field, s, len);
}

CK_RV p11_free_slot(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = f->C_GetSlotList(CK_FALSE, slots, &n);
    if (rv != CKR_OK)
        return rv;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        rv = f->C_GetTokenInfo(slots[i], &ti);
        if (rv != CKR_OK)
            return rv;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
            *slot = slots[i];
            return CKR_OK;
        }
    }
    return CKR_SLOT_ID_INVALID;
}

CK_RV p11_open(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, CK_USER_TYPE user, const char *pin,
               CK_SESSION_HANDLE *session)
{
    CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, session);
    if (rv != CKR_OK || pin == NULL)
        return rv;
    rv = f->C_Login(*session, user, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK)
        (void)f->C_CloseSession(*session);
    return rv;
}

CK_RV p11_init_token(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID s;
    CK_RV rv = p11_free_slot(f, &s);
    if (rv != CKR_OK)
        return rv;
    CK_UTF8CHAR lab[32];
    p11_pad(lab, sizeof lab, label);
    rv = f->C_InitToken(s, (CK_UTF8CHAR_PTR)P11_SO_PIN, strlen(P11_SO_PIN), lab);
    if (rv != CKR_OK)
        return rv;
    CK_SESSION_HANDLE h;
    rv = p11_open(f, s, CKU_SO, P11_SO_PIN, &h);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_InitPIN(h, (CK_UTF8CHAR_PTR)P11_USER_PIN, strlen(P11_USER_PIN));
    (void)f->C_Logout(h);
    (void)f->C_CloseSession(h);
    if (rv == CKR_OK)
        *slot = s;
    return rv;
}

const char *p11_rv_name(CK_RV rv)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
#define N(x) { x, #x }
        N(CKR_OK), N(CKR_CANCEL), N(CKR_HOST_MEMORY), N(CKR_SLOT_ID_INVALID), N(CKR_GENERAL_ERROR),
        N(CKR_FUNCTION_FAILED), N(CKR_ARGUMENTS_BAD), N(CKR_NEED_TO_CREATE_THREADS), N(CKR_CANT_LOCK),
        N(CKR_ATTRIBUTE_READ_ONLY), N(CKR_ATTRIBUTE_SENSITIVE), N(CKR_ATTRIBUTE_TYPE_INVALID),
        N(CKR_ATTRIBUTE_VALUE_INVALID), N(CKR_DATA_INVALID), N(CKR_DATA_LEN_RANGE), N(CKR_DEVICE_ERROR),
        N(CKR_DEVICE_MEMORY), N(CKR_DEVICE_REMOVED), N(CKR_ENCRYPTED_DATA_INVALID),
        N(CKR_ENCRYPTED_DATA_LEN_RANGE), N(CKR_FUNCTION_CANCELED), N(CKR_FUNCTION_NOT_PARALLEL),
        N(CKR_FUNCTION_NOT_SUPPORTED), N(CKR_KEY_HANDLE_INVALID), N(CKR_KEY_SIZE_RANGE),
        N(CKR_KEY_TYPE_INCONSISTENT), N(CKR_KEY_FUNCTION_NOT_PERMITTED), N(CKR_MECHANISM_INVALID),
        N(CKR_MECHANISM_PARAM_INVALID), N(CKR_OBJECT_HANDLE_INVALID), N(CKR_OPERATION_ACTIVE),
        N(CKR_OPERATION_NOT_INITIALIZED), N(CKR_PIN_INCORRECT), N(CKR_PIN_INVALID), N(CKR_PIN_LEN_RANGE),
        N(CKR_PIN_LOCKED), N(CKR_SESSION_CLOSED), N(CKR_SESSION_COUNT), N(CKR_SESSION_HANDLE_INVALID),
        N(CKR_SESSION_PARALLEL_NOT_SUPPORTED), N(CKR_SESSION_READ_ONLY), N(CKR_SESSION_EXISTS),
        N(CKR_SESSION_READ_ONLY_EXISTS), N(CKR_SESSION_READ_WRITE_SO_EXISTS), N(CKR_SIGNATURE_INVALID),
        N(CKR_SIGNATURE_LEN_RANGE), N(CKR_TEMPLATE_INCOMPLETE), N(CKR_TEMPLATE_INCONSISTENT),
        N(CKR_TOKEN_NOT_PRESENT), N(CKR_TOKEN_NOT_RECOGNIZED), N(CKR_TOKEN_WRITE_PROTECTED),
        N(CKR_USER_ALREADY_LOGGED_IN), N(CKR_USER_NOT_LOGGED_IN), N(CKR_USER_PIN_NOT_INITIALIZED),
        N(CKR_USER_TYPE_INVALID), N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN), N(CKR_USER_TOO_MANY_TYPES),
        N(CKR_WRAPPED_KEY_INVALID), N(CKR_WRAPPED_KEY_LEN_RANGE), N(CKR_WRAPPING_KEY_HANDLE_INVALID),
        N(CKR_KEY_NOT_WRAPPABLE), N(CKR_KEY_UNEXTRACTABLE), N(CKR_RANDOM_SEED_NOT_SUPPORTED),
        N(CKR_BUFFER_TOO_SMALL), N(CKR_SAVED_STATE_INVALID), N(CKR_INFORMATION_SENSITIVE),
        N(CKR_STATE_UNSAVEABLE), N(CKR_CRYPTOKI_NOT_INITIALIZED), N(CKR_CRYPTOKI_ALREADY_INITIALIZED),
        N(CKR_MUTEX_BAD), N(CKR_MUTEX_NOT_LOCKED),
#undef N
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].rv == rv)
            return names[i].name;
    static char buf[32];
    snprintf(buf, sizeof buf, "CKR_0x%lx", (unsigned long)rv);
    return buf;
}
