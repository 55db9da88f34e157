/* p11_scale.c: how a PKCS#11 module copes with many token objects.
 *
 * usage: p11_scale MODULE PIN [COUNT [LOOKUPS]]      (defaults: 10000 objects, 1000 lookups)
 *
 * 1. Creates COUNT token AES-256 keys (C_GenerateKey, CKA_ID = the 8-byte big-endian index) in the
 *    first initialized token and reports the creation rate.
 * 2. Then, in a fresh process (this program re-executes itself with --lookup), so that nothing of
 *    step 1 stays in memory: the time of C_Initialize (the module opening a store that holds COUNT
 *    keys) and of C_Login, the latency of LOOKUPS finds by a random CKA_ID (C_FindObjectsInit +
 *    C_FindObjects + C_FindObjectsFinal, each must find exactly one object): median, p99 and max;
 *    and the process's resident memory (VmRSS) before C_Initialize and after the lookups.
 * Output is one "key=value" line per step, for bench/run and for humans. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *f;
static const char *path;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void ck(CK_RV rv, const char *what)
{
    if (rv != CKR_OK) {
        fprintf(stderr, "p11_scale: %s: %s -> 0x%lx\n", path, what, (unsigned long)rv);
        exit(1);
    }
}

static long vmrss_kb(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (fp)
        fclose(fp);
    return kb;
}

static void load(void)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "p11_scale: %s\n", dlerror());
        exit(1);
    }
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    if (!gfl) {
        fprintf(stderr, "p11_scale: %s has no C_GetFunctionList\n", path);
        exit(1);
    }
    ck(gfl(&f), "C_GetFunctionList");
}

static void initialize(void)
{
    CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
    ck(f->C_Initialize(&ia), "C_Initialize");
}

static CK_SESSION_HANDLE open_rw(void)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    ck(f->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList");
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && (ti.flags & CKF_TOKEN_INITIALIZED)) {
            CK_SESSION_HANDLE s;
            ck(f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), "C_OpenSession");
            return s;
        }
    }
    fprintf(stderr, "p11_scale: no initialized token\n");
    exit(1);
}

static void id_of(unsigned long i, unsigned char id[8])
{
    for (int b = 7; b >= 0; b--, i >>= 8)
        id[b] = (unsigned char)(i & 0xff);
}

static void create(const char *pin, unsigned long count)
{
    load();
    initialize();
    CK_SESSION_HANDLE s = open_rw();
    ck(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), "C_Login");
    CK_BBOOL t = CK_TRUE;
    CK_ULONG len = 32;
    unsigned char id[8];
    CK_ATTRIBUTE tmpl[] = { { CKA_TOKEN, &t, 1 }, { CKA_PRIVATE, &t, 1 }, { CKA_SENSITIVE, &t, 1 },
                            { CKA_ENCRYPT, &t, 1 }, { CKA_VALUE_LEN, &len, sizeof len }, { CKA_ID, id, sizeof id } };
    CK_MECHANISM m = { CKM_AES_KEY_GEN, NULL, 0 };
    double t0 = now();
    for (unsigned long i = 0; i < count; i++) {
        CK_OBJECT_HANDLE h;
        id_of(i, id);
        ck(f->C_GenerateKey(s, &m, tmpl, sizeof tmpl / sizeof tmpl[0], &h), "C_GenerateKey");
    }
    double dt = now() - t0;
    printf("create: objects=%lu seconds=%.2f objects_per_s=%.0f\n", count, dt, (double)count / dt);
    fflush(stdout);
    ck(f->C_Finalize(NULL), "C_Finalize");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void lookup(const char *pin, unsigned long count, unsigned long lookups)
{
    load();
    long rss0 = vmrss_kb();
    double t0 = now();
    initialize();
    double t1 = now();
    CK_SESSION_HANDLE s = open_rw();
    double t2 = now();
    ck(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), "C_Login");
    double t3 = now();
    long rss1 = vmrss_kb();
    printf("open: objects=%lu C_Initialize_ms=%.2f C_OpenSession_ms=%.2f C_Login_ms=%.2f\n", count,
           (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3);

    double *lat = malloc(lookups * sizeof *lat);
    if (!lat)
        return;
    srand(12345);
    unsigned char id[8];
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE q[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_ID, id, sizeof id } };
    for (unsigned long i = 0; i < lookups; i++) {
        id_of(((unsigned long)rand() << 16 ^ (unsigned long)rand()) % count, id);
        CK_OBJECT_HANDLE h[2];
        CK_ULONG n = 0;
        double a = now();
        ck(f->C_FindObjectsInit(s, q, 2), "C_FindObjectsInit");
        ck(f->C_FindObjects(s, h, 2, &n), "C_FindObjects");
        ck(f->C_FindObjectsFinal(s), "C_FindObjectsFinal");
        lat[i] = now() - a;
        if (n != 1) {
            fprintf(stderr, "p11_scale: lookup %lu found %lu objects, want 1\n", i, (unsigned long)n);
            exit(1);
        }
    }
    qsort(lat, lookups, sizeof *lat, cmp_double);
    double sum = 0;
    for (unsigned long i = 0; i < lookups; i++)
        sum += lat[i];
    printf("find_by_id: lookups=%lu median_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f\n", lookups,
           lat[lookups / 2] * 1e6, lat[(lookups * 99) / 100] * 1e6, lat[lookups - 1] * 1e6, sum / (double)lookups * 1e6);
    free(lat);
    long rss2 = vmrss_kb();
    printf("memory: vmrss_before_init_kb=%ld vmrss_after_login_kb=%ld vmrss_after_lookups_kb=%ld module_kb=%ld\n",
           rss0, rss1, rss2, rss2 - rss0);
    ck(f->C_Finalize(NULL), "C_Finalize");
}

int main(int argc, char **argv)
{
    bool lookup_only = argc > 1 && strcmp(argv[1], "--lookup") == 0;
    if (lookup_only) {
        argc--;
        argv++;
    }
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: p11_scale MODULE PIN [COUNT [LOOKUPS]]\n");
        return 2;
    }
    path = argv[1];
    const char *pin = argv[2];
    unsigned long count = argc > 3 ? strtoul(argv[3], NULL, 10) : 10000;
    unsigned long lookups = argc > 4 ? strtoul(argv[4], NULL, 10) : 1000;
    if (count == 0 || lookups == 0) {
        fprintf(stderr, "p11_scale: COUNT and LOOKUPS must be positive\n");
        return 2;
    }
    if (lookup_only) {
        lookup(pin, count, lookups);
        return 0;
    }
    create(pin, count);
    char c[32], l[32];
    snprintf(c, sizeof c, "%lu", count);
    snprintf(l, sizeof l, "%lu", lookups);
    execl("/proc/self/exe", argv[0], "--lookup", path, pin, c, l, (char *)NULL);
    perror("p11_scale: re-exec for the lookup phase");
    return 1;
}
