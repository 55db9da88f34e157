/* module.c: the module's front door: C_GetFunctionList and the function list (version 2.40),
 * C_Initialize / C_Finalize / C_GetInfo, and the initialized-in-this-process state every other
 * entry point asks for (p11_live).
 *
 * Fork (PKCS#11 2.40 base spec 6.7.1): a child of fork() inherits the parent's memory but must
 * behave as if the library were not initialized until it calls C_Initialize itself, and must
 * never disturb the parent's state. We record getpid() at C_Initialize, and a pthread_atfork
 * child handler clears the "live" flag, so the hot path tests one atomic instead of making a
 * getpid() system call on every call (glibc no longer caches the pid). C_Initialize compares the
 * recorded pid with getpid() to know that the engine state it sees was inherited.
 *
 * Locking: CKF_OS_LOCKING_OK only. The application's mutex callbacks are never used; the engine
 * is thread-safe on its own (hsm.h). g_lock only orders C_Initialize / C_Finalize / fork. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/config.h"
#include "pkcs11/p11.h"
#include "rpc/client.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static atomic_bool g_live;        /* C_Initialize done in this process, no C_Finalize since */
static pid_t g_pid;               /* under g_lock: the process that initialized the engine, 0 if none */
static char g_last_err[512];      /* under g_lock: the last initialization error printed */

bool p11_live(void)
{
    return atomic_load_explicit(&g_live, memory_order_acquire);
}

/* fork() while another thread is inside C_Initialize / C_Finalize would leave g_lock held
 * forever in the child: hold it across fork so the child gets it in a known state. */
static void atfork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&g_lock); }
static void atfork_child(void)
{
    atomic_store_explicit(&g_live, false, memory_order_release);
    pthread_mutex_unlock(&g_lock);
}
static void register_atfork(void)
{
    /* glibc ties handlers registered from a dlopen'ed object to it and drops them at dlclose. */
    (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* C_Initialize has no way to carry a sentence, and an unreadable or wrong configuration must
 * reach the person who wrote it: one line on stderr, and not again for the same message when an
 * application retries in a loop. Called under g_lock. */
static void report_init_error(cf_err e, const char *msg)
{
    char line[sizeof g_last_err];
    snprintf(line, sizeof line, "%s", msg[0] != '\0' ? msg : cf_err_message(e));
    if (strcmp(line, g_last_err) == 0)
        return;
    memcpy(g_last_err, line, sizeof line);
    fprintf(stderr, "coffer: %s\n", line);
}

/* Remote mode when the configuration has `[client] server` (docs/remote.md): every engine call
 * goes to cofferd and the local store is never opened. A configuration that cannot be read picks
 * the local engine, whose hsm_initialize reports the same error. NULL: out of memory. Called
 * under g_lock. */
static const p11_backend *choose_backend(void)
{
    cf_config *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    char err[512];
    const p11_backend *b = &p11_backend_local;
    bool loaded = cf_config_load(c, err, sizeof err) == CF_OK;
    if (loaded)
        rpc_client_set_timeout(c->client_timeout);
    if (loaded && c->client_server.kind == CF_LISTEN_UNIX) {
        rpc_client_set_server(c->client_server.path);
        b = &p11_backend_remote;
    } else if (loaded && c->client_server.kind == CF_LISTEN_TLS) {
        rpc_client_set_tls_server(c->client_server.host, c->client_server.port, c->client_cert, c->client_key,
                                  c->client_ca);
        b = &p11_backend_remote;
    }
    free(c);
    return b;
}

/* PKCS#11 2.40 base spec 5.4: C_Initialize returns only OK, ARGUMENTS_BAD, CANT_LOCK,
 * CRYPTOKI_ALREADY_INITIALIZED, FUNCTION_FAILED, GENERAL_ERROR, HOST_MEMORY and
 * NEED_TO_CREATE_THREADS. Store and device failures become GENERAL_ERROR here. */
static CK_RV init_rv(cf_err e)
{
    switch (e) {
    case CF_E_OK:
    case CF_E_NOMEM:
    case CF_E_ARGS:
    case CF_E_CANT_LOCK:
    case CF_E_ALREADY_INITIALIZED:
        return p11_rv(e);
    default:
        return CKR_GENERAL_ERROR;
    }
}

P11_EXPORT CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
    if (pInitArgs != NULL) {
        const CK_C_INITIALIZE_ARGS *a = pInitArgs;
        P11_ARG(a->pReserved == NULL);
        int set = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) + (a->LockMutex != NULL) +
                  (a->UnlockMutex != NULL);
        P11_ARG(set == 0 || set == 4);
        /* Callbacks given and OS locking not allowed: the application wants us to lock with its
         * primitives only, which we cannot. CKF_LIBRARY_CANT_CREATE_OS_THREADS is fine: we
         * create none. */
        if (set == 4 && !(a->flags & CKF_OS_LOCKING_OK))
            return CKR_CANT_LOCK;
    }
    pthread_once(&g_atfork_once, register_atfork);

    CK_RV rv;
    pthread_mutex_lock(&g_lock);
    if (p11_live()) {
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto out;
    }
    if (g_pid != 0 && g_pid != getpid()) {
        /* A forked child: the engine state is the parent's copy. Forget it (without closing
         * the parent's SQLite handles or taking locks a parent thread may have held) and
         * start fresh. */
        B->forget_after_fork();
        g_pid = 0;
    }
    char err[512] = "";
    const p11_backend *b = choose_backend();
    if (!b) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    p11_B = b;
    cf_err e = B->initialize(err, sizeof err);
    if (e != CF_OK) {
        report_init_error(e, err);
        rv = init_rv(e);
        goto out;
    }
    g_pid = getpid();
    g_last_err[0] = '\0';
    atomic_store_explicit(&g_live, true, memory_order_release);
    rv = CKR_OK;
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

P11_EXPORT CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
    P11_LIVE();
    P11_ARG(pReserved == NULL);
    CK_RV rv;
    pthread_mutex_lock(&g_lock);
    if (!p11_live()) {   /* a concurrent C_Finalize won */
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto out;
    }
    atomic_store_explicit(&g_live, false, memory_order_release);
    g_pid = 0;
    rv = p11_rv(B->finalize());
out:
    pthread_mutex_unlock(&g_lock);
    return rv;
}

P11_EXPORT CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
    P11_LIVE();
    P11_ARG(pInfo != NULL);
    B->get_info(pInfo);
    /* The interface version is this layer's: the function list it hands out is 2.40. */
    pInfo->cryptokiVersion.major = 2;
    pInfo->cryptokiVersion.minor = 40;
    return CKR_OK;
}

/* The function list, in the order of PKCS#11 2.40 base spec 5.2 (and of CK_FUNCTION_LIST). Every
 * entry is set; abi_test checks that none is NULL. const: it lives in read-only memory, and the
 * cast below only follows the 2.40 prototype, which hands out a non-const pointer. */
static const CK_FUNCTION_LIST g_functions = {
    .version = { 2, 40 },
    .C_Initialize = C_Initialize,
    .C_Finalize = C_Finalize,
    .C_GetInfo = C_GetInfo,
    .C_GetFunctionList = C_GetFunctionList,
    .C_GetSlotList = C_GetSlotList,
    .C_GetSlotInfo = C_GetSlotInfo,
    .C_GetTokenInfo = C_GetTokenInfo,
    .C_GetMechanismList = C_GetMechanismList,
    .C_GetMechanismInfo = C_GetMechanismInfo,
    .C_InitToken = C_InitToken,
    .C_InitPIN = C_InitPIN,
    .C_SetPIN = C_SetPIN,
    .C_OpenSession = C_OpenSession,
    .C_CloseSession = C_CloseSession,
    .C_CloseAllSessions = C_CloseAllSessions,
    .C_GetSessionInfo = C_GetSessionInfo,
    .C_GetOperationState = C_GetOperationState,
    .C_SetOperationState = C_SetOperationState,
    .C_Login = C_Login,
    .C_Logout = C_Logout,
    .C_CreateObject = C_CreateObject,
    .C_CopyObject = C_CopyObject,
    .C_DestroyObject = C_DestroyObject,
    .C_GetObjectSize = C_GetObjectSize,
    .C_GetAttributeValue = C_GetAttributeValue,
    .C_SetAttributeValue = C_SetAttributeValue,
    .C_FindObjectsInit = C_FindObjectsInit,
    .C_FindObjects = C_FindObjects,
    .C_FindObjectsFinal = C_FindObjectsFinal,
    .C_EncryptInit = C_EncryptInit,
    .C_Encrypt = C_Encrypt,
    .C_EncryptUpdate = C_EncryptUpdate,
    .C_EncryptFinal = C_EncryptFinal,
    .C_DecryptInit = C_DecryptInit,
    .C_Decrypt = C_Decrypt,
    .C_DecryptUpdate = C_DecryptUpdate,
    .C_DecryptFinal = C_DecryptFinal,
    .C_DigestInit = C_DigestInit,
    .C_Digest = C_Digest,
    .C_DigestUpdate = C_DigestUpdate,
    .C_DigestKey = C_DigestKey,
    .C_DigestFinal = C_DigestFinal,
    .C_SignInit = C_SignInit,
    .C_Sign = C_Sign,
    .C_SignUpdate = C_SignUpdate,
    .C_SignFinal = C_SignFinal,
    .C_SignRecoverInit = C_SignRecoverInit,
    .C_SignRecover = C_SignRecover,
    .C_VerifyInit = C_VerifyInit,
    .C_Verify = C_Verify,
    .C_VerifyUpdate = C_VerifyUpdate,
    .C_VerifyFinal = C_VerifyFinal,
    .C_VerifyRecoverInit = C_VerifyRecoverInit,
    .C_VerifyRecover = C_VerifyRecover,
    .C_DigestEncryptUpdate = C_DigestEncryptUpdate,
    .C_DecryptDigestUpdate = C_DecryptDigestUpdate,
    .C_SignEncryptUpdate = C_SignEncryptUpdate,
    .C_DecryptVerifyUpdate = C_DecryptVerifyUpdate,
    .C_GenerateKey = C_GenerateKey,
    .C_GenerateKeyPair = C_GenerateKeyPair,
    .C_WrapKey = C_WrapKey,
    .C_UnwrapKey = C_UnwrapKey,
    .C_DeriveKey = C_DeriveKey,
    .C_SeedRandom = C_SeedRandom,
    .C_GenerateRandom = C_GenerateRandom,
    .C_GetFunctionStatus = C_GetFunctionStatus,
    .C_CancelFunction = C_CancelFunction,
    .C_WaitForSlotEvent = C_WaitForSlotEvent,
};

/* Callable before C_Initialize (2.40 base spec 5.4). */
P11_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    P11_ARG(ppFunctionList != NULL);
    *ppFunctionList = (CK_FUNCTION_LIST_PTR)&g_functions;
    return CKR_OK;
}
