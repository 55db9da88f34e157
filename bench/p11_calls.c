/* p11_calls.c: call patterns other than a signing loop, through a PKCS#11 module: what an
 * application pays per operation when the module is remote (bench/run, part 5, "other calls").
 *
 * usage: p11_calls [-s SECONDS] [-t THREADS] [-l LABEL] MODULE PIN
 *
 * Patterns, each thread with its own session (logged in once):
 *   find         C_FindObjectsInit (CKA_CLASS private key + CKA_LABEL) + C_FindObjects + C_FindObjectsFinal
 *   find-sign    the find, then C_SignInit + C_Sign (CKM_ECDSA, 32-byte digest) with the key found
 *   hmac-verify  C_VerifyInit + C_Verify (CKM_SHA256_HMAC over 32 bytes, a 32-byte secret key)
 * Keys: a P-256 pair labelled "p11-calls" (token objects, so that every session finds it) and a
 * generic secret as a session object of each thread's session; destroyed at the end.
 * Prints one row per (pattern, threads): "pattern thr ops/s".
 *
 * Options: -s duration of each cell (default 3), -t thread counts, comma-separated, 1..64
 * (default 1,8), -l the token's label (default: the first initialized token). */
#include <dlfcn.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <p11-kit/pkcs11.h>

#define MAX_THREADS 64
#define LABEL "p11-calls"

enum pattern { P_FIND, P_FIND_SIGN, P_HMAC_VERIFY, P__COUNT };
static const char *const pattern_name[P__COUNT] = { "find", "find-sign", "hmac-verify" };

static CK_FUNCTION_LIST *f;
static CK_SLOT_ID g_slot;
static const char *g_pin;
static volatile int g_stop;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, CK_RV rv)
{
    fprintf(stderr, "p11_calls: %s failed (0x%lx)\n", what, (unsigned long)rv);
    exit(1);
}

#define CHECK(call) \
    do { \
        CK_RV rv_ = (call); \
        if (rv_ != CKR_OK) \
            die(#call, rv_); \
    } while (0)

static CK_SESSION_HANDLE user_session(void)
{
    CK_SESSION_HANDLE s;
    CHECK(f->C_OpenSession(g_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    CK_RV rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)g_pin, strlen(g_pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
        die("C_Login", rv);
    return s;
}

typedef struct {
    enum pattern p;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE hmac;
    unsigned char mac[32];
    unsigned long count;
    pthread_t t;
} worker;

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE q[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, LABEL, sizeof LABEL - 1 } };
    CK_OBJECT_HANDLE o;
    CK_ULONG n = 0;
    CHECK(f->C_FindObjectsInit(s, q, 2));
    CHECK(f->C_FindObjects(s, &o, 1, &n));
    CHECK(f->C_FindObjectsFinal(s));
    if (n != 1)
        die("finding the key", CKR_GENERAL_ERROR);
    return o;
}

static void *run(void *arg)
{
    worker *w = arg;
    unsigned char dig[32] = { 7 }, sig[80];
    CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 }, hmac = { CKM_SHA256_HMAC, NULL, 0 };
    while (!g_stop) {
        if (w->p == P_HMAC_VERIFY) {
            CHECK(f->C_VerifyInit(w->s, &hmac, w->hmac));
            CHECK(f->C_Verify(w->s, dig, sizeof dig, w->mac, sizeof w->mac));
        } else {
            CK_OBJECT_HANDLE k = find_key(w->s);
            if (w->p == P_FIND_SIGN) {
                CK_ULONG len = sizeof sig;
                CHECK(f->C_SignInit(w->s, &ecdsa, k));
                CHECK(f->C_Sign(w->s, dig, sizeof dig, sig, &len));
            }
        }
        w->count++;
    }
    return NULL;
}

/* Each worker's HMAC key (a session object of its session) and the MAC the loop verifies. */
static void hmac_setup(worker *w)
{
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = { { CKA_VALUE_LEN, &len, sizeof len }, { CKA_SIGN, &yes, 1 }, { CKA_VERIFY, &yes, 1 } };
    CK_MECHANISM gen = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 }, m = { CKM_SHA256_HMAC, NULL, 0 };
    unsigned char dig[32] = { 7 };
    CK_ULONG n = sizeof w->mac;
    CHECK(f->C_GenerateKey(w->s, &gen, t, 3, &w->hmac));
    CHECK(f->C_SignInit(w->s, &m, w->hmac));
    CHECK(f->C_Sign(w->s, dig, sizeof dig, w->mac, &n));
}

static double cell(enum pattern p, int threads, double secs)
{
    static worker w[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){ .p = p, .s = user_session() };
        if (p == P_HMAC_VERIFY)
            hmac_setup(&w[i]);
    }
    g_stop = 0;
    double t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&w[i].t, NULL, run, &w[i]);
    struct timespec d = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
    nanosleep(&d, NULL);
    g_stop = 1;
    unsigned long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].t, NULL);
        total += w[i].count;
    }
    double el = now() - t0;
    for (int i = 0; i < threads; i++)
        CHECK(f->C_CloseSession(w[i].s));
    return (double)total / el;
}

static CK_SLOT_ID pick_slot(const char *label)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CHECK(f->C_GetSlotList(CK_TRUE, slots, &n));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        size_t l = label ? strlen(label) : 0;
        if (!label || (l <= 32 && memcmp(ti.label, label, l) == 0 && (l == 32 || ti.label[l] == ' ')))
            return slots[i];
    }
    die("finding the token", CKR_TOKEN_NOT_PRESENT);
    return 0;
}

int main(int argc, char **argv)
{
    double secs = 3;
    const char *threads = "1,8", *label = NULL;
    int c;
    while ((c = getopt(argc, argv, "s:t:l:")) != -1) {
        if (c == 's')
            secs = atof(optarg);
        else if (c == 't')
            threads = optarg;
        else if (c == 'l')
            label = optarg;
        else
            return 2;
    }
    if (argc - optind != 2 || secs <= 0) {
        fprintf(stderr, "usage: p11_calls [-s SECONDS] [-t THREADS] [-l LABEL] MODULE PIN\n");
        return 2;
    }
    void *dl = dlopen(argv[optind], RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "p11_calls: %s\n", dlerror());
        return 1;
    }
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    if (!gfl)
        die("C_GetFunctionList lookup", CKR_GENERAL_ERROR);
    CHECK(gfl(&f));
    CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
    CHECK(f->C_Initialize(&ia));
    g_pin = argv[optind + 1];
    g_slot = pick_slot(label);

    /* the key pair every session finds: token objects */
    CK_SESSION_HANDLE s0 = user_session();
    static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = { { CKA_TOKEN, &yes, 1 }, { CKA_EC_PARAMS, (void *)p256, sizeof p256 },
                           { CKA_VERIFY, &yes, 1 }, { CKA_LABEL, LABEL, sizeof LABEL - 1 } };
    CK_ATTRIBUTE priv[] = { { CKA_TOKEN, &yes, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
                            { CKA_LABEL, LABEL, sizeof LABEL - 1 } };
    CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_OBJECT_HANDLE kpub, kpriv;
    CHECK(f->C_GenerateKeyPair(s0, &gen, pub, 4, priv, 4, &kpub, &kpriv));

    printf("p11_calls: %.1f s per cell; module %s\n", secs, argv[optind]);
    printf("%-12s %3s %12s\n", "pattern", "thr", "ops/s");
    /* thread counts outside, in the order given: a remote module keeps the connections a cell
     * opened, and its waiting adapts to how many there are, so the fewest threads go first */
    char list[256];
    snprintf(list, sizeof list, "%s", threads);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int t = atoi(tok);
        if (t < 1 || t > MAX_THREADS)
            die("thread count", CKR_ARGUMENTS_BAD);
        for (int p = 0; p < P__COUNT; p++) {
            printf("%-12s %3d %12.0f\n", pattern_name[p], t, cell((enum pattern)p, t, secs));
            fflush(stdout);
        }
    }
    CHECK(f->C_DestroyObject(s0, kpriv));
    CHECK(f->C_DestroyObject(s0, kpub));
    CHECK(f->C_CloseSession(s0));
    CHECK(f->C_Finalize(NULL));
    return 0;
}
