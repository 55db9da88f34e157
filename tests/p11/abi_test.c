/* abi_test.c: the PKCS#11 2.40 C ABI of the BUILT module, as an application sees it through
 * dlopen: the function list, initialization and finalization (with their argument rules, and
 * fork), the pointer checks (CKR_ARGUMENTS_BAD), session handle checks, the functions coffer does
 * not support and the codes docs/pkcs11.md promises for them, C_GetInfo, and the symbols the
 * module exports. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "p11util.h"

typedef CK_RV (*delete_token_fn)(CK_SLOT_ID, CK_UTF8CHAR_PTR, CK_ULONG);

static void *g_dl;
static CK_FUNCTION_LIST_PTR f;
static p11_store g_store;
static CK_SLOT_ID g_slot;          /* the test token, initialized once */
static bool g_have_token;
static CK_SESSION_HANDLE g_h;      /* a user session, opened by setup_session */

/* A handle no session has: the engine hands out small ones. */
#define BAD_SESSION ((CK_SESSION_HANDLE)0x7ffffff1UL)

/* The 68 functions of CK_FUNCTION_LIST, in its order (2.40 base spec 5.2). */
#define P11_FUNCTIONS(X) \
    X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetFunctionList) X(C_GetSlotList) X(C_GetSlotInfo) \
    X(C_GetTokenInfo) X(C_GetMechanismList) X(C_GetMechanismInfo) X(C_InitToken) X(C_InitPIN) X(C_SetPIN) \
    X(C_OpenSession) X(C_CloseSession) X(C_CloseAllSessions) X(C_GetSessionInfo) X(C_GetOperationState) \
    X(C_SetOperationState) X(C_Login) X(C_Logout) X(C_CreateObject) X(C_CopyObject) X(C_DestroyObject) \
    X(C_GetObjectSize) X(C_GetAttributeValue) X(C_SetAttributeValue) X(C_FindObjectsInit) X(C_FindObjects) \
    X(C_FindObjectsFinal) X(C_EncryptInit) X(C_Encrypt) X(C_EncryptUpdate) X(C_EncryptFinal) X(C_DecryptInit) \
    X(C_Decrypt) X(C_DecryptUpdate) X(C_DecryptFinal) X(C_DigestInit) X(C_Digest) X(C_DigestUpdate) \
    X(C_DigestKey) X(C_DigestFinal) X(C_SignInit) X(C_Sign) X(C_SignUpdate) X(C_SignFinal) \
    X(C_SignRecoverInit) X(C_SignRecover) X(C_VerifyInit) X(C_Verify) X(C_VerifyUpdate) X(C_VerifyFinal) \
    X(C_VerifyRecoverInit) X(C_VerifyRecover) X(C_DigestEncryptUpdate) X(C_DecryptDigestUpdate) \
    X(C_SignEncryptUpdate) X(C_DecryptVerifyUpdate) X(C_GenerateKey) X(C_GenerateKeyPair) X(C_WrapKey) \
    X(C_UnwrapKey) X(C_DeriveKey) X(C_SeedRandom) X(C_GenerateRandom) X(C_GetFunctionStatus) \
    X(C_CancelFunction) X(C_WaitForSlotEvent)

/* ---- fixtures ---------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (!p11_store_create(&g_store, NULL))
        return -1;
    f = p11_load(&g_dl);
    return f != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (f != NULL)
        (void)f->C_Finalize(NULL);
    p11_unload(g_dl);
    p11_store_destroy(&g_store);
    return 0;
}

static int setup_init(void **state)
{
    (void)state;
    CK_RV rv = f->C_Initialize(NULL);
    if (rv != CKR_OK) {
        fprintf(stderr, "C_Initialize: %s\n", p11_rv_name(rv));
        return -1;
    }
    if (!g_have_token) {
        rv = p11_init_token(f, P11_LABEL, &g_slot);
        if (rv != CKR_OK) {
            fprintf(stderr, "p11_init_token: %s\n", p11_rv_name(rv));
            return -1;
        }
        g_have_token = true;
    }
    return 0;
}

static int teardown_fini(void **state)
{
    (void)state;
    (void)f->C_Finalize(NULL);
    return 0;
}

static int setup_session(void **state)
{
    if (setup_init(state) != 0)
        return -1;
    CK_RV rv = p11_open(f, g_slot, CKU_USER, P11_USER_PIN, &g_h);
    if (rv != CKR_OK) {
        fprintf(stderr, "p11_open: %s\n", p11_rv_name(rv));
        return -1;
    }
    return 0;
}

/* ---- the function list --------------------------------------------------------------------- */

static void test_function_list(void **state)
{
    (void)state;
    CK_FUNCTION_LIST_PTR l = NULL;
    assert_rv(f->C_GetFunctionList(&l), CKR_OK);
    assert_ptr_equal(l, f);
    assert_int_equal(l->version.major, 2);
    assert_int_equal(l->version.minor, 40);

    /* 68 entries, none NULL, each the exported function of the same name. */
    size_t n = 0;
#define CHECK_ENTRY(name) \
    do { \
        n++; \
        if (l->name == NULL) \
            fail_msg("%s is NULL in the function list", #name); \
        void *sym = dlsym(g_dl, #name); \
        if (sym == NULL || (void *)l->name != sym) \
            fail_msg("%s in the list is not the exported %s", #name, #name); \
    } while (0);
    P11_FUNCTIONS(CHECK_ENTRY)
#undef CHECK_ENTRY
    assert_int_equal(n, 68);
    assert_int_equal((sizeof(CK_FUNCTION_LIST) - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void (*)(void)),
                     68);
    assert_rv(f->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
    assert_non_null(dlsym(g_dl, "coffer_delete_token"));
}

/* Every function but C_GetFunctionList and C_Initialize, before C_Initialize and after C_Finalize
 * (2.40 base spec 5.4). */
static void check_not_initialized(void)
{
    CK_INFO info;
    CK_ULONG n = 0;
    CK_SESSION_HANDLE h;
    CK_SLOT_ID slot;
    CK_BYTE buf[16] = { 0 };
    CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
    delete_token_fn del = (delete_token_fn)dlsym(g_dl, "coffer_delete_token");
    assert_non_null(del);

    assert_rv(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_GetTokenInfo(0, NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_CloseAllSessions(0), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_Login(1, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_FindObjectsInit(1, NULL, 0), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_DigestInit(1, &m), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_Sign(1, buf, sizeof buf, buf, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_Verify(1, buf, sizeof buf, buf, sizeof buf), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_GenerateRandom(1, buf, sizeof buf), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_SeedRandom(1, buf, sizeof buf), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_GetOperationState(1, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_SignRecoverInit(1, &m, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_GetFunctionStatus(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_CancelFunction(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(del(0, (CK_UTF8CHAR_PTR)P11_SO_PIN, strlen(P11_SO_PIN)), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void test_not_initialized(void **state)
{
    (void)state;
    check_not_initialized();   /* before any C_Initialize */
    assert_rv(f->C_Initialize(NULL), CKR_OK);
    assert_rv(f->C_Finalize(NULL), CKR_OK);
    check_not_initialized();   /* after C_Finalize */
}

/* ---- C_Initialize / C_Finalize ----------------------------------------------------------------- */

static void test_double_init(void **state)
{
    (void)state;
    assert_rv(f->C_Initialize(NULL), CKR_OK);
    assert_rv(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    CK_C_INITIALIZE_ARGS a = { .flags = CKF_OS_LOCKING_OK };
    assert_rv(f->C_Initialize(&a), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    int dummy;
    assert_rv(f->C_Finalize(&dummy), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Finalize(NULL), CKR_OK);   /* still initialized after the bad call */
    assert_rv(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* and again, cleanly */
    assert_rv(f->C_Initialize(NULL), CKR_OK);
    assert_rv(f->C_Finalize(NULL), CKR_OK);
}

static CK_RV mx_create(CK_VOID_PTR_PTR m) { *m = (void *)1; return CKR_OK; }
static CK_RV mx_destroy(CK_VOID_PTR m) { (void)m; return CKR_OK; }
static CK_RV mx_lock(CK_VOID_PTR m) { (void)m; return CKR_OK; }
static CK_RV mx_unlock(CK_VOID_PTR m) { (void)m; return CKR_OK; }

static void test_init_args(void **state)
{
    (void)state;
    int reserved;
    CK_C_INITIALIZE_ARGS a = { .flags = CKF_OS_LOCKING_OK, .pReserved = &reserved };
    assert_rv(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);

    /* Mutex callbacks: all or none. Every partial combination is refused. */
    for (unsigned mask = 1; mask < 15; mask++) {
        CK_C_INITIALIZE_ARGS p = {
            .CreateMutex = (mask & 1) ? mx_create : NULL,
            .DestroyMutex = (mask & 2) ? mx_destroy : NULL,
            .LockMutex = (mask & 4) ? mx_lock : NULL,
            .UnlockMutex = (mask & 8) ? mx_unlock : NULL,
            .flags = CKF_OS_LOCKING_OK,
        };
        CK_RV rv = f->C_Initialize(&p);
        if (rv != CKR_ARGUMENTS_BAD)
            fail_msg("mutex callbacks %#x: %s, expected CKR_ARGUMENTS_BAD", mask, p11_rv_name(rv));
    }

    /* All callbacks, OS locking not allowed: coffer only locks with the OS's primitives. */
    CK_C_INITIALIZE_ARGS cb = { mx_create, mx_destroy, mx_lock, mx_unlock, 0, NULL };
    assert_rv(f->C_Initialize(&cb), CKR_CANT_LOCK);
    cb.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
    assert_rv(f->C_Initialize(&cb), CKR_CANT_LOCK);
    assert_rv(f->C_GetInfo(&(CK_INFO){ 0 }), CKR_CRYPTOKI_NOT_INITIALIZED);   /* none of those initialized */

    /* All callbacks with OS locking allowed: OS locking is used, the callbacks never. */
    cb.flags = CKF_OS_LOCKING_OK;
    assert_rv(f->C_Initialize(&cb), CKR_OK);
    assert_rv(f->C_Finalize(NULL), CKR_OK);

    /* No callbacks: with or without the flags. We create no threads. */
    CK_C_INITIALIZE_ARGS none = { .flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK };
    assert_rv(f->C_Initialize(&none), CKR_OK);
    assert_rv(f->C_Finalize(NULL), CKR_OK);
    none.flags = 0;
    assert_rv(f->C_Initialize(&none), CKR_OK);
    assert_rv(f->C_Finalize(NULL), CKR_OK);
}

/* A configuration error: C_Initialize fails and the sentence naming the problem reaches stderr. */
static void test_init_config_error(void **state)
{
    (void)state;
    char conf[400], errpath[400];
    snprintf(conf, sizeof conf, "%s/bad.conf", g_store.dir);
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", g_store.dir);
    FILE *fp = fopen(conf, "w");
    assert_non_null(fp);
    fputs("[token]\nno_such_key = 1\n", fp);
    fclose(fp);

    fflush(stderr);
    int saved = dup(2);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    setenv("COFFER_CONF", conf, 1);
    CK_RV rv = f->C_Initialize(NULL);
    setenv("COFFER_CONF", g_store.conf, 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    assert_rv(rv, CKR_GENERAL_ERROR);
    char text[1024] = "";
    fp = fopen(errpath, "r");
    assert_non_null(fp);
    size_t got = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[got] = '\0';
    if (strncmp(text, "coffer: ", 8) != 0 || strstr(text, "no_such_key") == NULL)
        fail_msg("stderr was \"%s\"", text);
    assert_rv(f->C_GetInfo(&(CK_INFO){ 0 }), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* The good configuration still works afterwards. */
    assert_rv(f->C_Initialize(NULL), CKR_OK);
    assert_rv(f->C_Finalize(NULL), CKR_OK);
}

/* A child of fork() is not initialized until it calls C_Initialize, can then use the module, and
 * leaves the parent's state alone (2.40 base spec 6.7.1). */
static void test_fork(void **state)
{
    (void)state;
    CK_SESSION_INFO si;
    assert_rv(f->C_GetSessionInfo(g_h, &si), CKR_OK);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int code = 0;
        CK_INFO info;
        CK_BYTE rnd[8];
        if (f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED)
            code |= 1;
        if (f->C_GetSessionInfo(g_h, &si) != CKR_CRYPTOKI_NOT_INITIALIZED)
            code |= 2;
        if (f->C_Finalize(NULL) != CKR_CRYPTOKI_NOT_INITIALIZED)
            code |= 4;
        if (f->C_Initialize(NULL) != CKR_OK)
            code |= 8;
        /* A fresh engine: the parent's session is not ours. */
        if (f->C_GetSessionInfo(g_h, &si) != CKR_SESSION_HANDLE_INVALID)
            code |= 16;
        CK_SESSION_HANDLE h;
        if (p11_open(f, g_slot, CKU_USER, P11_USER_PIN, &h) != CKR_OK || f->C_GenerateRandom(h, rnd, sizeof rnd) != CKR_OK)
            code |= 32;
        if (f->C_Finalize(NULL) != CKR_OK)
            code |= 64;
        _exit(code);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("child failed checks %#x", WEXITSTATUS(status));
    /* The parent is untouched: its session still works. */
    CK_BYTE rnd[8];
    assert_rv(f->C_GetSessionInfo(g_h, &si), CKR_OK);
    assert_rv(f->C_GenerateRandom(g_h, rnd, sizeof rnd), CKR_OK);
}

/* ---- C_GetInfo ------------------------------------------------------------------------------- */

static bool blank_padded(const CK_UTF8CHAR *field, size_t n, const char *prefix)
{
    size_t len = strlen(prefix);
    if (memcmp(field, prefix, len) != 0)
        return false;
    for (size_t i = len; i < n; i++)
        if (field[i] != ' ')
            return false;
    return true;
}

static void test_get_info(void **state)
{
    (void)state;
    CK_INFO info;
    memset(&info, 0xa5, sizeof info);
    assert_rv(f->C_GetInfo(&info), CKR_OK);
    assert_int_equal(info.cryptokiVersion.major, 2);
    assert_int_equal(info.cryptokiVersion.minor, 40);
    assert_true(blank_padded(info.manufacturerID, sizeof info.manufacturerID, "coffer"));
    assert_int_equal(info.flags, 0);
    /* Description: printable, blank padded, no NUL. */
    for (size_t i = 0; i < sizeof info.libraryDescription; i++)
        assert_true(info.libraryDescription[i] >= 0x20 && info.libraryDescription[i] < 0x7f);
    assert_true(info.libraryDescription[0] != ' ');
    assert_rv(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
}

/* ---- pointer checks ---------------------------------------------------------------------------- */

static void test_null_args(void **state)
{
    (void)state;
    CK_SLOT_ID slot = g_slot;
    CK_SESSION_HANDLE h = g_h;
    CK_OBJECT_HANDLE o, o2;
    CK_ULONG n = 0, len = 16;
    CK_BYTE buf[64] = { 0 }, out[64];
    CK_UTF8CHAR label[32];
    p11_pad(label, sizeof label, "x");
    CK_UTF8CHAR_PTR pin = (CK_UTF8CHAR_PTR)P11_USER_PIN;
    CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
    CK_MECHANISM aes = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_MECHANISM badparam = { CKM_AES_CBC_PAD, NULL, 16 };   /* parameter length without a pointer */
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls } };
    CK_ATTRIBUTE tnull[] = { { CKA_LABEL, NULL, 4 } };       /* value length without a pointer */
    delete_token_fn del = (delete_token_fn)dlsym(g_dl, "coffer_delete_token");
    assert_non_null(del);

    /* library, slots, tokens */
    assert_rv(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetSlotList(CK_FALSE, NULL, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetSlotList(CK_TRUE, &slot, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetSlotInfo(g_slot, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetTokenInfo(g_slot, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetMechanismList(g_slot, NULL, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetMechanismInfo(g_slot, CKM_SHA256, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_InitToken(g_slot, NULL, 8, label), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_InitToken(g_slot, (CK_UTF8CHAR_PTR)P11_SO_PIN, strlen(P11_SO_PIN), NULL), CKR_ARGUMENTS_BAD);
    assert_rv(del(g_slot, NULL, 8), CKR_ARGUMENTS_BAD);
    /* sessions and PINs */
    assert_rv(f->C_OpenSession(g_slot, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetSessionInfo(h, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Login(h, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_InitPIN(h, NULL, 4), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_SetPIN(h, NULL, 4, pin, 4), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_SetPIN(h, pin, 4, NULL, 4), CKR_ARGUMENTS_BAD);
    /* objects */
    assert_rv(f->C_CreateObject(h, NULL, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_CreateObject(h, t, 1, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_CreateObject(h, tnull, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_CopyObject(h, 1, NULL, 1, &o2), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_CopyObject(h, 1, t, 1, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetObjectSize(h, 1, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GetAttributeValue(h, 1, NULL, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_SetAttributeValue(h, 1, NULL, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_SetAttributeValue(h, 1, tnull, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_FindObjectsInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_FindObjectsInit(h, tnull, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_FindObjects(h, NULL, 4, &n), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_FindObjects(h, &o, 1, NULL), CKR_ARGUMENTS_BAD);
    /* encryption and decryption */
    assert_rv(f->C_EncryptInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_EncryptInit(h, &badparam, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Encrypt(h, NULL, 16, out, &len), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Encrypt(h, buf, 16, out, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_EncryptUpdate(h, NULL, 16, out, &len), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_EncryptUpdate(h, buf, 16, out, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_EncryptFinal(h, out, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_DecryptInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Decrypt(h, NULL, 16, out, &len), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Decrypt(h, buf, 16, out, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_DecryptUpdate(h, NULL, 16, out, &len), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_DecryptFinal(h, out, NULL), CKR_ARGUMENTS_BAD);
    /* digests */
    assert_rv(f->C_DigestInit(h, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Digest(h, NULL, 4, out, &len), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Digest(h, buf, 4, out, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_DigestUpdate(h, NULL, 4), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_DigestFinal(h, out, NULL), CKR_ARGUMENTS_BAD);
    /* signatures */
    assert_rv(f->C_SignInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Sign(h, NULL, 4, out, &len), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Sign(h, buf, 4, out, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_SignUpdate(h, NULL, 4), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_SignFinal(h, out, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_VerifyInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Verify(h, NULL, 4, buf, 64), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_Verify(h, buf, 4, NULL, 64), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_VerifyUpdate(h, NULL, 4), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_VerifyFinal(h, NULL, 64), CKR_ARGUMENTS_BAD);
    /* keys and random */
    assert_rv(f->C_GenerateKey(h, NULL, t, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GenerateKey(h, &aes, NULL, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GenerateKey(h, &aes, t, 1, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GenerateKeyPair(h, NULL, NULL, 0, NULL, 0, &o, &o2), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GenerateKeyPair(h, &aes, NULL, 1, NULL, 0, &o, &o2), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GenerateKeyPair(h, &aes, NULL, 0, NULL, 0, &o, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GenerateKeyPair(h, &aes, NULL, 0, NULL, 0, NULL, &o2), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_WrapKey(h, NULL, 1, 2, out, &len), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_WrapKey(h, &aes, 1, 2, out, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_UnwrapKey(h, NULL, 1, buf, 16, t, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_UnwrapKey(h, &aes, 1, NULL, 16, t, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_UnwrapKey(h, &aes, 1, buf, 16, NULL, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_UnwrapKey(h, &aes, 1, buf, 16, t, 1, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_DeriveKey(h, NULL, 1, t, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_DeriveKey(h, &aes, 1, NULL, 1, &o), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_DeriveKey(h, &aes, 1, t, 1, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_SeedRandom(h, NULL, 8), CKR_ARGUMENTS_BAD);
    assert_rv(f->C_GenerateRandom(h, NULL, 8), CKR_ARGUMENTS_BAD);

    /* None of that disturbed the session: a digest runs from start to end. */
    assert_rv(f->C_DigestInit(h, &sha), CKR_OK);
    len = sizeof out;
    assert_rv(f->C_Digest(h, (CK_BYTE_PTR)"abc", 3, out, &len), CKR_OK);
    assert_int_equal(len, 32);
    static const CK_BYTE abc_sha256[4] = { 0xba, 0x78, 0x16, 0xbf };
    assert_memory_equal(out, abc_sha256, sizeof abc_sha256);
    /* Empty inputs are not NULL pointer errors. */
    assert_rv(f->C_GenerateRandom(h, NULL, 0), CKR_OK);
    assert_rv(f->C_FindObjectsInit(h, NULL, 0), CKR_OK);
    assert_rv(f->C_FindObjects(h, NULL, 0, &n), CKR_OK);
    assert_int_equal(n, 0);
    assert_rv(f->C_FindObjectsFinal(h), CKR_OK);
}

/* ---- session handles ------------------------------------------------------------------------------ */

static void check_bad_session(CK_SESSION_HANDLE h)
{
    CK_SESSION_INFO si;
    CK_OBJECT_HANDLE o, o2;
    CK_ULONG n = 0, len;
    CK_BYTE buf[64] = { 0 }, out[64];
    CK_UTF8CHAR_PTR pin = (CK_UTF8CHAR_PTR)P11_USER_PIN;
    CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
    CK_MECHANISM aes = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_MECHANISM ec = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_MECHANISM kw = { CKM_AES_KEY_WRAP, NULL, 0 };
    CK_ULONG vlen = 32;
    CK_ATTRIBUTE t[] = { { CKA_VALUE_LEN, &vlen, sizeof vlen } };
#define BAD(call) assert_rv(call, CKR_SESSION_HANDLE_INVALID)
    BAD(f->C_GetSessionInfo(h, &si));
    BAD(f->C_Login(h, CKU_USER, pin, strlen(P11_USER_PIN)));
    BAD(f->C_Logout(h));
    BAD(f->C_InitPIN(h, pin, strlen(P11_USER_PIN)));
    BAD(f->C_SetPIN(h, pin, strlen(P11_USER_PIN), pin, strlen(P11_USER_PIN)));
    BAD(f->C_CreateObject(h, t, 1, &o));
    BAD(f->C_CopyObject(h, 1, NULL, 0, &o));
    BAD(f->C_DestroyObject(h, 1));
    BAD(f->C_GetObjectSize(h, 1, &n));
    BAD(f->C_GetAttributeValue(h, 1, t, 1));
    BAD(f->C_SetAttributeValue(h, 1, t, 1));
    BAD(f->C_FindObjectsInit(h, NULL, 0));
    BAD(f->C_FindObjects(h, &o, 1, &n));
    BAD(f->C_FindObjectsFinal(h));
    BAD(f->C_EncryptInit(h, &aes, 1));
    len = sizeof out;
    BAD(f->C_Encrypt(h, buf, 16, out, &len));
    BAD(f->C_DecryptFinal(h, out, &len));
    BAD(f->C_DigestInit(h, &sha));
    BAD(f->C_DigestUpdate(h, buf, 4));
    BAD(f->C_DigestKey(h, 1));
    BAD(f->C_SignInit(h, &sha, 1));
    BAD(f->C_Sign(h, buf, 4, out, &len));
    BAD(f->C_SignUpdate(h, buf, 4));
    BAD(f->C_VerifyInit(h, &sha, 1));
    BAD(f->C_Verify(h, buf, 4, buf, 64));
    BAD(f->C_VerifyFinal(h, buf, 64));
    BAD(f->C_GenerateKey(h, &aes, t, 1, &o));
    BAD(f->C_GenerateKeyPair(h, &ec, NULL, 0, NULL, 0, &o, &o2));
    BAD(f->C_WrapKey(h, &kw, 1, 2, out, &len));
    BAD(f->C_GenerateRandom(h, buf, 8));
    /* unsupported functions say so only for a real session */
    BAD(f->C_SeedRandom(h, buf, 8));
    BAD(f->C_GetOperationState(h, NULL, &n));
    BAD(f->C_SetOperationState(h, buf, 8, 0, 0));
    BAD(f->C_SignRecoverInit(h, &sha, 1));
    BAD(f->C_VerifyRecover(h, buf, 8, out, &len));
    BAD(f->C_DigestEncryptUpdate(h, buf, 8, out, &len));
    BAD(f->C_GetFunctionStatus(h));
    BAD(f->C_CancelFunction(h));
    BAD(f->C_CloseSession(h));
#undef BAD
}

static void test_bad_session(void **state)
{
    (void)state;
    check_bad_session(BAD_SESSION);
    check_bad_session(CK_INVALID_HANDLE);
    /* a handle that was valid and is closed */
    CK_SESSION_HANDLE h;
    assert_rv(f->C_OpenSession(g_slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
    assert_rv(f->C_CloseSession(h), CKR_OK);
    check_bad_session(h);
}

static CK_RV notify(CK_SESSION_HANDLE h, CK_NOTIFICATION event, CK_VOID_PTR app)
{
    fail_msg("coffer called the application back");
    return CKR_OK;
}

static void test_open_session_flags(void **state)
{
    (void)state;
    CK_SESSION_HANDLE h;
    int app;
    assert_rv(f->C_OpenSession(g_slot, 0, NULL, NULL, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    assert_rv(f->C_OpenSession(g_slot, CKF_RW_SESSION, NULL, NULL, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    /* pApplication and Notify are accepted and never used. */
    assert_rv(f->C_OpenSession(g_slot, CKF_SERIAL_SESSION, &app, notify, &h), CKR_OK);
    CK_SESSION_INFO si;
    assert_rv(f->C_GetSessionInfo(h, &si), CKR_OK);
    assert_int_equal(si.slotID, g_slot);
    assert_true(si.flags & CKF_SERIAL_SESSION);
    assert_rv(f->C_CloseSession(h), CKR_OK);
}

/* ---- unsupported functions: the codes docs/pkcs11.md lists ---------------------------------------- */

static void test_unsupported(void **state)
{
    (void)state;
    CK_SESSION_HANDLE h = g_h;
    CK_ULONG len = 64;
    CK_BYTE buf[64] = { 0 }, out[64];
    CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
    CK_SLOT_ID slot;
#define NS(call) assert_rv(call, CKR_FUNCTION_NOT_SUPPORTED)
    NS(f->C_GetOperationState(h, NULL, &len));
    NS(f->C_SetOperationState(h, buf, sizeof buf, CK_INVALID_HANDLE, CK_INVALID_HANDLE));
    NS(f->C_SignRecoverInit(h, &rsa, 1));
    NS(f->C_SignRecover(h, buf, 8, out, &len));
    NS(f->C_VerifyRecoverInit(h, &rsa, 1));
    NS(f->C_VerifyRecover(h, buf, 8, out, &len));
    NS(f->C_DigestEncryptUpdate(h, buf, 8, out, &len));
    NS(f->C_DecryptDigestUpdate(h, buf, 8, out, &len));
    NS(f->C_SignEncryptUpdate(h, buf, 8, out, &len));
    NS(f->C_DecryptVerifyUpdate(h, buf, 8, out, &len));
    NS(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL));
    NS(f->C_WaitForSlotEvent(0, &slot, NULL));
#undef NS
    assert_rv(f->C_SeedRandom(h, buf, 8), CKR_RANDOM_SEED_NOT_SUPPORTED);
    assert_rv(f->C_GetFunctionStatus(h), CKR_FUNCTION_NOT_PARALLEL);
    assert_rv(f->C_CancelFunction(h), CKR_FUNCTION_NOT_PARALLEL);
    /* The token must not advertise what these functions refuse. */
    CK_TOKEN_INFO ti;
    assert_rv(f->C_GetTokenInfo(g_slot, &ti), CKR_OK);
    if (ti.flags & CKF_DUAL_CRYPTO_OPERATIONS)
        fail_msg("the token sets CKF_DUAL_CRYPTO_OPERATIONS, but the dual-function calls are not supported");
    if (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH)
        fail_msg("the token sets CKF_PROTECTED_AUTHENTICATION_PATH, but coffer has none");
}

/* The length protocol of the list functions passes through (the engine implements it). */
static void test_list_lengths(void **state)
{
    (void)state;
    CK_ULONG n = 0;
    assert_rv(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
    assert_true(n >= 2);   /* the test token and the free slot */
    CK_SLOT_ID slots[16];
    CK_ULONG small = 1;
    assert_rv(f->C_GetSlotList(CK_FALSE, slots, &small), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(small, n);
    assert_rv(f->C_GetMechanismList(g_slot, NULL, &n), CKR_OK);
    assert_true(n > 0);
    small = 0;
    CK_MECHANISM_TYPE mechs[1];
    assert_rv(f->C_GetMechanismList(g_slot, mechs, &small), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(small, n);
}

/* ---- exported symbols ------------------------------------------------------------------------------ */

/* The defined dynamic symbols of the module file (what `nm -D --defined-only` lists) must all be
 * C_* or coffer_* functions: the libraries linked in stay private. Reads the ELF file itself. */
static void test_exports(void **state)
{
    (void)state;
    Dl_info di;
    assert_true(dladdr((void *)f->C_Initialize, &di) != 0 && di.dli_fname != NULL);
    FILE *fp = fopen(di.dli_fname, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    assert_true(size > (long)sizeof(Elf64_Ehdr));
    uint8_t *img = malloc((size_t)size);
    assert_non_null(img);
    rewind(fp);
    assert_int_equal(fread(img, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);

    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) {
        free(img);
        skip();   /* the check reads 64-bit ELF only */
    }
    assert_true(eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) <= (uint64_t)size);
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    size_t exported = 0;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM)
            continue;
        assert_true(sh[i].sh_link < eh->e_shnum);
        const Elf64_Shdr *strsec = &sh[sh[i].sh_link];
        assert_true(sh[i].sh_offset + sh[i].sh_size <= (uint64_t)size);
        assert_true(strsec->sh_offset + strsec->sh_size <= (uint64_t)size);
        const Elf64_Sym *syms = (const Elf64_Sym *)(img + sh[i].sh_offset);
        const char *strs = (const char *)(img + strsec->sh_offset);
        size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
        for (size_t k = 1; k < count; k++) {
            const Elf64_Sym *s = &syms[k];
            if (s->st_shndx == SHN_UNDEF)
                continue;
            assert_true(s->st_name < strsec->sh_size);
            const char *name = strs + s->st_name;
            int bind = ELF64_ST_BIND(s->st_info), type = ELF64_ST_TYPE(s->st_info);
            if (bind == STB_LOCAL || type == STT_SECTION)
                continue;
            if (type != STT_FUNC || (strncmp(name, "C_", 2) != 0 && strncmp(name, "coffer_", 7) != 0))
                fail_msg("the module exports %s", name);
            exported++;
        }
    }
    free(img);
    assert_int_equal(exported, 68 + 2);   /* the 2.40 functions, coffer_delete_token, coffer_pin_tries_left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_initialized),
        cmocka_unit_test(test_function_list),
        cmocka_unit_test(test_exports),
        cmocka_unit_test(test_double_init),
        cmocka_unit_test(test_init_args),
        cmocka_unit_test(test_init_config_error),
        cmocka_unit_test_setup_teardown(test_get_info, setup_init, teardown_fini),
        cmocka_unit_test_setup_teardown(test_null_args, setup_session, teardown_fini),
        cmocka_unit_test_setup_teardown(test_bad_session, setup_session, teardown_fini),
        cmocka_unit_test_setup_teardown(test_open_session_flags, setup_init, teardown_fini),
        cmocka_unit_test_setup_teardown(test_unsupported, setup_session, teardown_fini),
        cmocka_unit_test_setup_teardown(test_list_lengths, setup_init, teardown_fini),
        cmocka_unit_test_setup_teardown(test_fork, setup_session, teardown_fini),
    };
    if (getenv("CMOCKA_FILTER"))
        cmocka_set_test_filter(getenv("CMOCKA_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
