/* p11_sign.c: signing throughput of a PKCS#11 module beside raw OpenSSL, measured in one run.
 *
 * usage: p11_sign [-s SECONDS] [-t THREADS] [-m MECHS] [-l LABEL] [-K] [-n] MODULE PIN [PEER_MODULE PEER_PIN]
 *
 * For RSA-2048 (CKM_SHA256_RSA_PKCS over a 32-byte message), ECDSA P-256 (CKM_ECDSA over a 32-byte
 * digest) and Ed25519 (CKM_EDDSA over a 32-byte message), with 1 and 2 threads: signs per second
 * through the module (each thread its own session; C_SignInit + C_Sign per signature, as
 * applications call it), through raw OpenSSL EVP on a key of the same type (each thread its own
 * reused EVP_PKEY_CTX: the ceiling for any EVP-based module), and optionally through a peer module
 * (SoftHSM2). The module's keys are session objects in the first slot holding an initialized
 * token whose user PIN is PIN. Prints one table row per (mechanism, threads) with the ratios.
 *
 * Options (the defaults are the above):
 *   -s SECONDS  duration of each cell (default 3)
 *   -t LIST     thread counts, comma-separated, each 1..64 (default 1,2)
 *   -m LIST     mechanisms, comma-separated: rsa2048, ecdsa-p256, ed25519 (default all three)
 *   -l LABEL    use the token with this label (default: the first initialized one)
 *   -K          token keys (CKA_TOKEN=TRUE) instead of session keys; destroyed at the end
 *   -n          the module alone: no OpenSSL reference, no peer. One column, module/s, so that a
 *               script can run it against several modules or configurations (bench/run "remote"). */
#include <dlfcn.h>
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <p11-kit/pkcs11.h>

#ifndef CKM_EC_EDWARDS_KEY_PAIR_GEN
#define CKM_EC_EDWARDS_KEY_PAIR_GEN 0x1055UL
#endif
#ifndef CKM_EDDSA
#define CKM_EDDSA 0x1057UL
#endif

enum kind { K_RSA, K_EC, K_ED, K__COUNT };
static const char *const kind_name[K__COUNT] = { "rsa2048", "ecdsa-p256", "ed25519" };

typedef struct {
    const char *path, *pin;
    void *dl;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s0; /* logged in; holds the session keys */
} module;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "p11_sign: %s\n", what);
    exit(1);
}

static void ck(CK_RV rv, const char *what, const module *m)
{
    if (rv != CKR_OK) {
        fprintf(stderr, "p11_sign: %s: %s -> 0x%lx\n", m->path, what, (unsigned long)rv);
        exit(1);
    }
}

static void ossl(int ok, const char *what)
{
    if (ok <= 0) {
        fprintf(stderr, "p11_sign: OpenSSL %s failed\n", what);
        ERR_print_errors_fp(stderr);
        exit(1);
    }
}

static void module_open(module *m, const char *path, const char *pin, const char *label)
{
    m->path = path;
    m->pin = pin;
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl) {
        fprintf(stderr, "p11_sign: %s\n", dlerror());
        exit(1);
    }
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    if (!gfl)
        die("module has no C_GetFunctionList");
    ck(gfl(&m->f), "C_GetFunctionList", m);
    CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
    ck(m->f->C_Initialize(&ia), "C_Initialize", m);
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    ck(m->f->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList", m);
    bool found = false;
    for (CK_ULONG i = 0; i < n && !found; i++) {
        CK_TOKEN_INFO ti;
        if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        if (label) { /* CK_TOKEN_INFO.label: 32 bytes padded with blanks */
            size_t ln = strlen(label), w = sizeof ti.label;
            if (ln > w || memcmp(ti.label, label, ln) != 0)
                continue;
            bool pad = true;
            for (size_t j = ln; j < w; j++)
                pad = pad && ti.label[j] == ' ';
            if (!pad)
                continue;
        }
        m->slot = slots[i];
        found = true;
    }
    if (!found) {
        fprintf(stderr, "p11_sign: %s: no initialized token%s%s\n", path, label ? " labelled " : "", label ? label : "");
        exit(1);
    }
    ck(m->f->C_OpenSession(m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &m->s0), "C_OpenSession", m);
    ck(m->f->C_Login(m->s0, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), "C_Login", m);
}

static void module_close(module *m)
{
    m->f->C_Finalize(NULL);
    /* The module stays mapped: some modules leave threads or atexit handlers behind. */
}

/* Generates a key pair of the kind, session objects unless token; returns the private key and, in
 * *pub_out, the public one. */
static CK_OBJECT_HANDLE module_keygen(module *m, enum kind k, bool token, CK_OBJECT_HANDLE *pub_out)
{
    CK_BBOOL t = CK_TRUE, tok = token ? CK_TRUE : CK_FALSE;
    CK_OBJECT_HANDLE pub, priv;
    CK_ATTRIBUTE st[] = { { CKA_TOKEN, &tok, 1 }, { CKA_SIGN, &t, 1 }, { CKA_PRIVATE, &t, 1 }, { CKA_SENSITIVE, &t, 1 } };
    if (k == K_RSA) {
        CK_ULONG bits = 2048;
        unsigned char e[] = { 1, 0, 1 };
        CK_ATTRIBUTE pt[] = { { CKA_TOKEN, &tok, 1 }, { CKA_VERIFY, &t, 1 }, { CKA_MODULUS_BITS, &bits, sizeof bits },
                              { CKA_PUBLIC_EXPONENT, e, sizeof e } };
        CK_MECHANISM gm = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
        ck(m->f->C_GenerateKeyPair(m->s0, &gm, pt, 4, st, 4, &pub, &priv), "C_GenerateKeyPair(RSA)", m);
    } else {
        static unsigned char p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
        static unsigned char ed[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9' };
        CK_ATTRIBUTE pt[] = { { CKA_TOKEN, &tok, 1 }, { CKA_VERIFY, &t, 1 },
                              { CKA_EC_PARAMS, k == K_EC ? p256 : ed, k == K_EC ? sizeof p256 : sizeof ed } };
        CK_MECHANISM gm = { k == K_EC ? CKM_EC_KEY_PAIR_GEN : CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0 };
        ck(m->f->C_GenerateKeyPair(m->s0, &gm, pt, 3, st, 4, &pub, &priv), "C_GenerateKeyPair(EC)", m);
    }
    if (pub_out)
        *pub_out = pub;
    return priv;
}

/* ---- one measurement: THREADS workers started together, each counting until the deadline ---- */
typedef struct {
    enum kind k;
    double secs;
    pthread_barrier_t *start;
    long count;
    double t0, t1; /* when this worker started and stopped counting */
    /* module side */
    module *m;
    CK_OBJECT_HANDLE key;
    /* OpenSSL side */
    EVP_PKEY *pkey;
} job;

static const unsigned char msg[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                       17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static void *module_worker(void *arg)
{
    job *j = arg;
    CK_SESSION_HANDLE s;
    ck(j->m->f->C_OpenSession(j->m->slot, CKF_SERIAL_SESSION, NULL, NULL, &s), "C_OpenSession", j->m);
    CK_MECHANISM mech = { j->k == K_RSA ? CKM_SHA256_RSA_PKCS : j->k == K_EC ? CKM_ECDSA : CKM_EDDSA, NULL, 0 };
    unsigned char sig[512];
    pthread_barrier_wait(j->start);
    j->t0 = now();
    double end = j->t0 + j->secs;
    long n = 0;
    while (now() < end) {
        CK_ULONG len = sizeof sig;
        ck(j->m->f->C_SignInit(s, &mech, j->key), "C_SignInit", j->m);
        ck(j->m->f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof msg, sig, &len), "C_Sign", j->m);
        n++;
    }
    j->t1 = now();
    j->count = n;
    j->m->f->C_CloseSession(s);
    return NULL;
}

static void *openssl_worker(void *arg)
{
    job *j = arg;
    unsigned char sig[512], dig[32];
    size_t len;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_MD_CTX *md = NULL;
    if (j->k == K_ED) {
        md = EVP_MD_CTX_new();
        ossl(md != NULL, "EVP_MD_CTX_new");
    } else {
        ctx = EVP_PKEY_CTX_new(j->pkey, NULL);
        ossl(ctx != NULL, "EVP_PKEY_CTX_new");
        ossl(EVP_PKEY_sign_init(ctx), "EVP_PKEY_sign_init");
        if (j->k == K_RSA) {
            ossl(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), "set_rsa_padding");
            ossl(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), "set_signature_md");
        }
    }
    pthread_barrier_wait(j->start);
    j->t0 = now();
    double end = j->t0 + j->secs;
    long n = 0;
    while (now() < end) {
        len = sizeof sig;
        switch (j->k) {
        case K_RSA: /* what CKM_SHA256_RSA_PKCS does: hash, then sign the DigestInfo */
            ossl(EVP_Digest(msg, sizeof msg, dig, NULL, EVP_sha256(), NULL), "EVP_Digest");
            ossl(EVP_PKEY_sign(ctx, sig, &len, dig, sizeof dig), "EVP_PKEY_sign(RSA)");
            break;
        case K_EC:
            ossl(EVP_PKEY_sign(ctx, sig, &len, msg, sizeof msg), "EVP_PKEY_sign(ECDSA)");
            break;
        case K_ED: /* Ed25519 is one-shot: one init per signature, like C_SignInit */
            ossl(EVP_DigestSignInit(md, NULL, NULL, NULL, j->pkey), "EVP_DigestSignInit");
            ossl(EVP_DigestSign(md, sig, &len, msg, sizeof msg), "EVP_DigestSign");
            break;
        case K__COUNT:
            break;
        }
        n++;
    }
    j->t1 = now();
    j->count = n;
    EVP_PKEY_CTX_free(ctx);
    EVP_MD_CTX_free(md);
    return NULL;
}

#define MAX_THREADS 64

/* Signatures per second of THREADS workers: all signatures over the time from the first worker's
 * start to the last one's end (a call in flight at the deadline is finished and counted, so the
 * time it took counts too: with many threads queued on one server this matters). */
static double run(void *(*worker)(void *), const job *proto, int threads)
{
    pthread_t th[MAX_THREADS];
    job jobs[MAX_THREADS];
    pthread_barrier_t start;
    if (pthread_barrier_init(&start, NULL, (unsigned)threads) != 0)
        die("pthread_barrier_init");
    for (int i = 0; i < threads; i++) {
        jobs[i] = *proto;
        jobs[i].start = &start;
        if (pthread_create(&th[i], NULL, worker, &jobs[i]) != 0)
            die("pthread_create");
    }
    long total = 0;
    double t0 = 0, t1 = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += jobs[i].count;
        if (i == 0 || jobs[i].t0 < t0)
            t0 = jobs[i].t0;
        if (i == 0 || jobs[i].t1 > t1)
            t1 = jobs[i].t1;
    }
    pthread_barrier_destroy(&start);
    return t1 > t0 ? (double)total / (t1 - t0) : 0;
}

static EVP_PKEY *openssl_keygen(enum kind k)
{
    EVP_PKEY *p = k == K_RSA ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                : k == K_EC  ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                             : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ossl(p != NULL, "key generation");
    return p;
}

static const char *base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Parses "a,b,c" with each item through one(item, out): false on a bad item or too many. */
static bool parse_list(const char *arg, int *out, int max, int *n, bool (*one)(const char *, int *))
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n >= max || !one(tok, &out[*n]))
            return false;
        (*n)++;
    }
    return *n > 0;
}

static bool one_thread_count(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    *out = (int)v;
    return *end == 0 && v >= 1 && v <= MAX_THREADS;
}

static bool one_kind(const char *s, int *out)
{
    for (int k = 0; k < K__COUNT; k++)
        if (strcmp(s, kind_name[k]) == 0) {
            *out = k;
            return true;
        }
    return false;
}

static void usage(void)
{
    fprintf(stderr, "usage: p11_sign [-s SECONDS] [-t THREADS,...] [-m MECH,...] [-l LABEL] [-K] [-n] MODULE PIN "
                    "[PEER_MODULE PEER_PIN]\n"
                    "  MECH: rsa2048, ecdsa-p256, ed25519; THREADS: 1..%d; -K token keys; -n the module alone\n",
            MAX_THREADS);
}

int main(int argc, char **argv)
{
    double secs = 3;
    int threads[MAX_THREADS] = { 1, 2 }, n_threads = 2;
    int kinds[K__COUNT] = { K_RSA, K_EC, K_ED }, n_kinds = K__COUNT;
    const char *label = NULL;
    bool token_keys = false, alone = false;
    int c;
    while ((c = getopt(argc, argv, "s:t:m:l:Kn")) != -1) {
        switch (c) {
        case 's':
            secs = atof(optarg);
            break;
        case 't':
            if (!parse_list(optarg, threads, MAX_THREADS, &n_threads, one_thread_count)) {
                usage();
                return 2;
            }
            break;
        case 'm':
            if (!parse_list(optarg, kinds, K__COUNT, &n_kinds, one_kind)) {
                usage();
                return 2;
            }
            break;
        case 'l':
            label = optarg;
            break;
        case 'K':
            token_keys = true;
            break;
        case 'n':
            alone = true;
            break;
        default:
            usage();
            return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if ((argc != 2 && argc != 4) || (alone && argc != 2) || secs <= 0) {
        usage();
        return 2;
    }
    module m = { 0 }, peer = { 0 };
    module_open(&m, argv[0], argv[1], label);
    bool with_peer = argc == 4;
    if (with_peer)
        module_open(&peer, argv[2], argv[3], NULL);

    if (alone) {
        printf("p11_sign: %.1f s per cell; module %s; %s keys\n", secs, base(m.path), token_keys ? "token" : "session");
        printf("%-11s %3s %12s\n", "mechanism", "thr", "module/s");
    } else {
        printf("p11_sign: %.1f s per cell; module %s%s%s; OpenSSL %s\n", secs, base(m.path),
               with_peer ? ", peer " : "", with_peer ? base(peer.path) : "", OpenSSL_version(OPENSSL_VERSION));
        printf("%-11s %3s %12s %12s %10s", "mechanism", "thr", "module/s", "openssl/s", "vs_openssl");
        if (with_peer)
            printf(" %12s %10s", "peer/s", "vs_peer");
        printf("\n");
    }
    fflush(stdout);
    for (int ki = 0; ki < n_kinds; ki++) {
        enum kind k = (enum kind)kinds[ki];
        CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, peer_pub = CK_INVALID_HANDLE;
        job mj = { .k = k, .secs = secs, .m = &m, .key = module_keygen(&m, k, token_keys, &pub) };
        job pj = { .k = k, .secs = secs, .m = &peer };
        if (with_peer)
            pj.key = module_keygen(&peer, k, token_keys, &peer_pub);
        job oj = { .k = k, .secs = secs, .pkey = alone ? NULL : openssl_keygen(k) };
        for (int ti = 0; ti < n_threads; ti++) {
            int nt = threads[ti];
            double mr = run(module_worker, &mj, nt);
            if (alone) {
                printf("%-11s %3d %12.0f\n", kind_name[k], nt, mr);
                fflush(stdout);
                continue;
            }
            double orate = run(openssl_worker, &oj, nt);
            printf("%-11s %3d %12.0f %12.0f %10.2f", kind_name[k], nt, mr, orate, orate > 0 ? mr / orate : 0);
            if (with_peer) {
                double pr = run(module_worker, &pj, nt);
                printf(" %12.0f %10.2f", pr, pr > 0 ? mr / pr : 0);
            }
            printf("\n");
            fflush(stdout);
        }
        if (token_keys) { /* leave the token as it was */
            m.f->C_DestroyObject(m.s0, mj.key);
            m.f->C_DestroyObject(m.s0, pub);
            if (with_peer) {
                peer.f->C_DestroyObject(peer.s0, pj.key);
                peer.f->C_DestroyObject(peer.s0, peer_pub);
            }
        }
        EVP_PKEY_free(oj.pkey);
    }
    module_close(&m);
    if (with_peer)
        module_close(&peer);
    return 0;
}
