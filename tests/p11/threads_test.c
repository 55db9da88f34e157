/* threads_test.c: many threads with many sessions on one token, through the module's function
 * list: signing with shared token keys, verifying, creating and destroying session objects,
 * searching, and opening / closing sessions, all at once. Every call must succeed and every
 * signature verify; run under ASan/TSan-style sanitizers this is the race detector's workload. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "p11util.h"

#define THREADS 8
#define ROUNDS 150

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static CK_OBJECT_HANDLE ec_priv, ec_pub, rsa_priv, rsa_pub;
static int failures;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(x) \
    do { \
        CK_RV r_ = (x); \
        if (r_ != CKR_OK) { \
            pthread_mutex_lock(&fail_mu); \
            if (failures++ < 10) \
                fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #x, p11_rv_name(r_)); \
            pthread_mutex_unlock(&fail_mu); \
            return NULL; \
        } \
    } while (0)

static void *worker(void *arg)
{
    long id = (long)arg;
    CK_SESSION_HANDLE s;
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    for (int i = 0; i < ROUNDS; i++) {
        unsigned char msg[32], sig[512];
        memset(msg, (int)(id * 31 + i), sizeof msg);
        bool rsa = (i % 10) == 0;
        CK_MECHANISM m = { rsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA, NULL, 0 };
        CK_ULONG len = sizeof sig;
        CHECK(f->C_SignInit(s, &m, rsa ? rsa_priv : ec_priv));
        CHECK(f->C_Sign(s, msg, sizeof msg, sig, &len));
        CHECK(f->C_VerifyInit(s, &m, rsa ? rsa_pub : ec_pub));
        CHECK(f->C_Verify(s, msg, sizeof msg, sig, len));
        /* a session object made and destroyed while others search */
        CK_OBJECT_CLASS cls = CKO_DATA;
        char label[32];
        snprintf(label, sizeof label, "t%ld-%d", id, i);
        CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, label, strlen(label) },
                             { CKA_VALUE, msg, sizeof msg } };
        CK_OBJECT_HANDLE o, found[4];
        CK_ULONG n = 0;
        CHECK(f->C_CreateObject(s, t, 3, &o));
        CHECK(f->C_FindObjectsInit(s, &t[1], 1));
        CHECK(f->C_FindObjects(s, found, 4, &n));
        CHECK(f->C_FindObjectsFinal(s));
        if (n != 1 || found[0] != o) {
            pthread_mutex_lock(&fail_mu);
            failures++;
            pthread_mutex_unlock(&fail_mu);
        }
        CHECK(f->C_DestroyObject(s, o));
        if (i % 50 == 49) { /* sessions come and go */
            CHECK(f->C_CloseSession(s));
            CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
        }
    }
    CHECK(f->C_CloseSession(s));
    return NULL;
}

static void many_threads(void **state)
{
    (void)state;
    void *h;
    p11_store st;
    assert_true(p11_store_create(&st, NULL));
    f = p11_load(&h);
    assert_non_null(f);
    CK_C_INITIALIZE_ARGS ia = { 0 };
    ia.flags = CKF_OS_LOCKING_OK;
    assert_rv(f->C_Initialize(&ia), CKR_OK);
    assert_rv(p11_init_token(f, P11_LABEL, &slot), CKR_OK);
    CK_SESSION_HANDLE s0;
    assert_rv(p11_open(f, slot, CKU_USER, P11_USER_PIN, &s0), CKR_OK);
    /* token keys shared by every thread */
    static const unsigned char p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE ept[] = { { CKA_TOKEN, &yes, 1 }, { CKA_EC_PARAMS, (void *)p256, sizeof p256 } };
    CK_ATTRIBUTE est[] = { { CKA_TOKEN, &yes, 1 } };
    CK_MECHANISM eg = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    assert_rv(f->C_GenerateKeyPair(s0, &eg, ept, 2, est, 1, &ec_pub, &ec_priv), CKR_OK);
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE rpt[] = { { CKA_TOKEN, &yes, 1 }, { CKA_MODULUS_BITS, &bits, sizeof bits } };
    CK_MECHANISM rg = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
    assert_rv(f->C_GenerateKeyPair(s0, &rg, rpt, 2, est, 1, &rsa_pub, &rsa_priv), CKR_OK);

    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(failures, 0);
    /* the login of the application survived the other sessions closing */
    CK_SESSION_INFO si;
    assert_rv(f->C_GetSessionInfo(s0, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);
    assert_rv(f->C_Finalize(NULL), CKR_OK);
    p11_unload(h);
    p11_store_destroy(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(many_threads) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
