/* remote_load.c: the load client of the network HSM acceptance tests (tests/interop/remote_load.sh,
 * remote_kill.sh, remote_restart.sh). A plain program, not cmocka: it loads a PKCS#11 module with
 * dlopen (the path is its first argument) and drives it through the function list only, as any
 * application does, so it relies on PKCS#11 behaviour alone and not on how cofferd or the module's
 * remote client are built.
 *
 * usage: remote_load MODULE [options]          (remote_load --help lists them)
 *
 * The process initializes the module once (CKF_OS_LOCKING_OK), picks the token (by label, or the
 * first initialized one), opens a session and logs in as the user once for the whole application,
 * then starts THREADS threads. Each thread opens its own session, checks that the application's
 * login covers it (CKS_R*_USER_FUNCTIONS), finds the private and public key by label (exactly one
 * of each, of the key type of the mechanism), optionally creates session objects, and signs SIGNS
 * times (C_SignInit + C_Sign over data unique to the process, thread and count). Every
 * VERIFY_EVERY-th signature (the first one included) is checked with the public key
 * (C_VerifyInit + C_Verify); the first check of each thread also checks that a signature with one
 * byte changed is refused (CKR_SIGNATURE_INVALID).
 *
 * At the end one summary line goes to standard output:
 *   remote_load: pid=P threads=T signs=N ok=X ok_min=Y verified=V interruptions=I int_min=J
 *                retries=R errors=E [CKR_...=count ...] seconds=S
 * and the exit status is 0 only when no error happened and every thread made its SIGNS signatures
 * (1: errors, 2: usage).
 *
 * --survive: the run must outlive a restart of the server. These codes, and only these, are then
 * "interruptions" rather than errors:
 *   CKR_DEVICE_REMOVED          the connection to the HSM is gone: the module answers so while it
 *                               is down, for calls on sessions until a slot-level call such as
 *                               C_OpenSession has reconnected (docs/remote.md "Lost connection"),
 *                               and for C_OpenSession itself while no server listens;
 *   CKR_SESSION_HANDLE_INVALID  a session of the old daemon, used after another thread's
 *                               C_OpenSession reconnected the module: the new daemon (a new
 *                               application) does not know it.
 * The thread then drops its session (C_CloseSession, result ignored) and starts over with
 * C_OpenSession, C_Login (CKR_USER_ALREADY_LOGGED_IN is fine: another thread of the application
 * logged in first) and the key lookup, retrying with a backoff (10 ms doubling to 200 ms) until it
 * signs again; if it does not within DEADLINE seconds of the interruption, that is an error. It
 * still completes all its SIGNS signatures. Not accepted, on purpose:
 *   CKR_USER_NOT_LOGGED_IN      a restart cannot produce it: a thread logs in (or sees that the
 *                               application is logged in) on every new session before it uses it,
 *                               and an application's login only ends with its sessions, which
 *                               then answer SESSION_HANDLE_INVALID / DEVICE_REMOVED instead;
 *   CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID   key handles are looked up again on every
 *                               new session; an old one is never used on a new connection;
 *   CKR_DEVICE_ERROR            the module's word for a server that refuses it or breaks the
 *                               protocol; a server that goes away, even in the middle of the
 *                               handshake, is a removed device, not a broken one;
 *   CKR_GENERAL_ERROR, CKR_SESSION_CLOSED, CKR_CRYPTOKI_NOT_INITIALIZED, ...: nothing a restart
 *                               explains (the module is never finalized by it).
 * --accept-rv NAME adds one more code to the interruptions (for investigation only; the tests do
 * not use it).
 *
 * For the scripts: --progress FILE rewrites FILE (atomically, every 50 ms and at the end) with one
 * line of counters (see write_progress); --start FILE makes the threads wait, once set up, until
 * FILE exists; --until FILE makes them keep signing past SIGNS until FILE exists; --session-count
 * only prints the token's session counts (C_GetTokenInfo) and exits. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "p11util.h"

#define MAX_THREADS 256
#define MAX_RV_KINDS 64

/* ---- options ------------------------------------------------------------------------------- */
static struct {
    const char *module;
    unsigned threads;
    unsigned long signs;
    const char *label;
    const char *pin;
    const char *token;
    bool rsa;
    unsigned long verify_every;
    bool survive;
    double deadline;
    double max_time;
    const char *progress;
    const char *start_file;
    const char *until_file;
    unsigned session_objects;
    unsigned long max_errors;
    bool session_count;
    CK_RV extra_ok[8];
    size_t n_extra_ok;
} opt = {
    .threads = 1,
    .signs = 1000,
    .label = "load",
    .pin = "1234",
    .verify_every = 100,
    .deadline = 60,
    .max_errors = 10,
};

static CK_FUNCTION_LIST_PTR F;
static CK_SLOT_ID g_slot;
static double g_t0;
static atomic_bool g_stop; /* --max-time elapsed */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec t = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

static bool file_exists(const char *path)
{
    return path != NULL && access(path, F_OK) == 0;
}

/* ---- counters per CKR code (a small table under a mutex: errors are rare) ------------------ */
typedef struct {
    CK_RV rv;
    unsigned long n;
} rv_count;

typedef struct {
    pthread_mutex_t mu;
    rv_count v[MAX_RV_KINDS];
    size_t n;
    unsigned long total;
} rv_table;

static rv_table g_errors = { .mu = PTHREAD_MUTEX_INITIALIZER };
static rv_table g_interruptions = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Codes of the program's own failures (no CKR value), counted in the same table. */
#define RV_SELF_BASE 0x7f000000UL
#define RV_DEADLINE (RV_SELF_BASE + 1)      /* survive: no recovery within --deadline */
#define RV_BAD_SIGNATURE (RV_SELF_BASE + 2) /* a signature failed C_Verify, or a bad length */
#define RV_TAMPER_OK (RV_SELF_BASE + 3)     /* a changed signature was accepted */
#define RV_KEY_MISSING (RV_SELF_BASE + 4)   /* the key label did not give exactly one key */
#define RV_NOT_USER (RV_SELF_BASE + 5)      /* a session of the logged-in application is public */
#define RV_TIMEOUT (RV_SELF_BASE + 6)       /* --max-time elapsed */
#define RV_SOBJ_MISSING (RV_SELF_BASE + 7)  /* session objects not found after creation */

static const char *rv_name(CK_RV rv, char *buf, size_t n)
{
    switch (rv) {
    case RV_DEADLINE: return "NO_RECOVERY_IN_DEADLINE";
    case RV_BAD_SIGNATURE: return "BAD_SIGNATURE";
    case RV_TAMPER_OK: return "TAMPERED_SIGNATURE_ACCEPTED";
    case RV_KEY_MISSING: return "KEY_NOT_FOUND";
    case RV_NOT_USER: return "SESSION_NOT_LOGGED_IN";
    case RV_TIMEOUT: return "MAX_TIME_ELAPSED";
    case RV_SOBJ_MISSING: return "SESSION_OBJECTS_MISSING";
    default: break;
    }
    snprintf(buf, n, "%s", p11_rv_name(rv)); /* p11_rv_name's fallback buffer is not thread-safe: copy */
    return buf;
}

static void rv_add(rv_table *t, CK_RV rv)
{
    pthread_mutex_lock(&t->mu);
    t->total++;
    size_t i;
    for (i = 0; i < t->n && t->v[i].rv != rv; i++) {
    }
    if (i == t->n && t->n < MAX_RV_KINDS)
        t->v[t->n++] = (rv_count){ rv, 0 };
    if (i < t->n)
        t->v[i].n++;
    pthread_mutex_unlock(&t->mu);
}

static void rv_print(FILE *fp, rv_table *t, const char *prefix)
{
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n; i++) {
        char b[40];
        fprintf(fp, " %s%s=%lu", prefix, rv_name(t->v[i].rv, b, sizeof b), t->v[i].n);
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- one thread's state ---------------------------------------------------------------------- */
typedef struct {
    unsigned idx;
    pthread_t th;
    CK_SESSION_HANDLE s; /* 0: none */
    CK_OBJECT_HANDLE priv, pub;
    bool connected;      /* the session is set up (survive: false while recovering) */
    bool tamper_checked;
    double lost_at;      /* when the current recovery started */
    double backoff;
    /* read by the progress writer */
    atomic_ulong ok, verified, interruptions, retries, errors, since_int;
    atomic_bool ready, down, done;
} worker;

static worker g_w[MAX_THREADS];

static bool is_interruption(CK_RV rv)
{
    if (!opt.survive)
        return false;
    if (rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID)
        return true;
    for (size_t i = 0; i < opt.n_extra_ok; i++)
        if (rv == opt.extra_ok[i])
            return true;
    return false;
}

static void log_rv(const worker *w, const char *what, CK_RV rv)
{
    char b[40];
    fprintf(stderr, "remote_load[%ld/%u]: %s: %s\n", (long)getpid(), w->idx, what, rv_name(rv, b, sizeof b));
}

/* An error: counted, reported (the first few per thread). */
static void error(worker *w, const char *what, CK_RV rv)
{
    rv_add(&g_errors, rv);
    unsigned long n = atomic_fetch_add(&w->errors, 1) + 1;
    if (n <= 3)
        log_rv(w, what, rv);
}

static void drop_session(worker *w)
{
    if (w->s != 0)
        (void)F->C_CloseSession(w->s);
    w->s = 0;
}

/* A call failed with rv: an interruption (survive mode: drop the session, back off, and return
 * true so that the caller starts over) or an error (returns false). */
static bool interrupted(worker *w, const char *what, CK_RV rv)
{
    if (!is_interruption(rv)) {
        error(w, what, rv);
        return false;
    }
    if (w->connected) {
        w->connected = false;
        w->lost_at = now();
        w->backoff = 0.01;
        rv_add(&g_interruptions, rv);
        atomic_fetch_add(&w->interruptions, 1);
        atomic_store(&w->since_int, 0);
        atomic_store(&w->down, true);
    } else {
        atomic_fetch_add(&w->retries, 1);
    }
    drop_session(w);
    return true;
}

static CK_KEY_TYPE want_key_type(void)
{
    return opt.rsa ? CKK_RSA : CKK_EC;
}

/* Exactly one object of class cls with the label and the key type; *h gets it. */
static CK_RV find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *h, CK_ULONG *count)
{
    CK_KEY_TYPE kt = want_key_type();
    CK_ATTRIBUTE t[] = {
        { CKA_CLASS, &cls, sizeof cls },
        { CKA_LABEL, (void *)opt.label, strlen(opt.label) },
        { CKA_KEY_TYPE, &kt, sizeof kt },
    };
    CK_RV rv = F->C_FindObjectsInit(s, t, 3);
    if (rv != CKR_OK)
        return rv;
    CK_OBJECT_HANDLE found[2];
    *count = 0;
    rv = F->C_FindObjects(s, found, 2, count);
    CK_RV rv2 = F->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv == CKR_OK && *count >= 1)
        *h = found[0];
    return rv;
}

/* The session objects: n data objects created in the thread's session, then all found. */
static CK_RV make_session_objects(worker *w, const char **what)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL no = CK_FALSE;
    char label[64];
    snprintf(label, sizeof label, "remote_load-sobj-%ld-%u", (long)getpid(), w->idx);
    unsigned char value[64];
    memset(value, 0x5a, sizeof value);
    for (unsigned i = 0; i < opt.session_objects; i++) {
        CK_ATTRIBUTE t[] = {
            { CKA_CLASS, &cls, sizeof cls },   { CKA_TOKEN, &no, sizeof no },
            { CKA_PRIVATE, &no, sizeof no },   { CKA_LABEL, label, strlen(label) },
            { CKA_VALUE, value, sizeof value },
        };
        CK_OBJECT_HANDLE h;
        *what = "C_CreateObject(session object)";
        CK_RV rv = F->C_CreateObject(w->s, t, 5, &h);
        if (rv != CKR_OK)
            return rv;
    }
    CK_ATTRIBUTE q[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, label, strlen(label) } };
    *what = "C_FindObjectsInit(session objects)";
    CK_RV rv = F->C_FindObjectsInit(w->s, q, 2);
    if (rv != CKR_OK)
        return rv;
    CK_OBJECT_HANDLE found[64];
    CK_ULONG n = 0;
    *what = "C_FindObjects(session objects)";
    rv = F->C_FindObjects(w->s, found, 64, &n);
    CK_RV rv2 = F->C_FindObjectsFinal(w->s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv == CKR_OK && n != (opt.session_objects < 64 ? opt.session_objects : 64)) {
        *what = "session objects";
        return RV_SOBJ_MISSING;
    }
    return rv;
}

/* Opens the thread's session and gets it ready to sign. CKR_OK, or the failing code with *what. */
static CK_RV setup_session(worker *w, const char **what)
{
    CK_RV rv;
    *what = "C_OpenSession";
    rv = F->C_OpenSession(g_slot, CKF_SERIAL_SESSION, NULL, NULL, &w->s);
    if (rv != CKR_OK) {
        w->s = 0;
        return rv;
    }
    if (opt.survive) {
        /* after a restart the application's login is gone with the old connection: log in again */
        *what = "C_Login";
        rv = F->C_Login(w->s, CKU_USER, (CK_UTF8CHAR_PTR)opt.pin, strlen(opt.pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
            return rv;
    }
    CK_SESSION_INFO si;
    *what = "C_GetSessionInfo";
    rv = F->C_GetSessionInfo(w->s, &si);
    if (rv != CKR_OK)
        return rv;
    if (si.state != CKS_RO_USER_FUNCTIONS && si.state != CKS_RW_USER_FUNCTIONS) {
        *what = "the session does not share the application's login";
        return RV_NOT_USER;
    }
    CK_ULONG n;
    *what = "find the private key";
    rv = find_one(w->s, CKO_PRIVATE_KEY, &w->priv, &n);
    if (rv == CKR_OK && n != 1)
        rv = RV_KEY_MISSING;
    if (rv != CKR_OK)
        return rv;
    *what = "find the public key";
    rv = find_one(w->s, CKO_PUBLIC_KEY, &w->pub, &n);
    if (rv == CKR_OK && n != 1)
        rv = RV_KEY_MISSING;
    if (rv != CKR_OK)
        return rv;
    if (opt.session_objects > 0)
        return make_session_objects(w, what);
    return CKR_OK;
}

/* 64-bit mixer (splitmix64): the data to sign, unique per process, thread and count. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void make_data(const worker *w, unsigned long i, unsigned char *d, size_t n)
{
    uint64_t seed = ((uint64_t)getpid() << 40) ^ ((uint64_t)w->idx << 32) ^ (uint64_t)i;
    for (size_t k = 0; k < n; k += 8) {
        uint64_t v = mix(seed + k);
        memcpy(d + k, &v, n - k < 8 ? n - k : 8);
    }
}

/* One signature (and its check when it is a sample). CKR_OK, or the failing code with *what. */
static CK_RV sign_one(worker *w, unsigned long i, const char **what, bool *checked)
{
    CK_MECHANISM m = { opt.rsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA, NULL, 0 };
    unsigned char data[48], sig[1024];
    size_t dlen = opt.rsa ? 48 : 32; /* CKM_ECDSA signs a digest: 32 bytes as SHA-256's */
    make_data(w, i, data, sizeof data);
    CK_ULONG slen = sizeof sig;
    *what = "C_SignInit";
    CK_RV rv = F->C_SignInit(w->s, &m, w->priv);
    if (rv != CKR_OK)
        return rv;
    *what = "C_Sign";
    rv = F->C_Sign(w->s, data, dlen, sig, &slen);
    if (rv != CKR_OK)
        return rv;
    *what = "signature length";
    if (opt.rsa ? (slen < 256 || slen > 512) : (slen != 64 && slen != 96 && slen != 132))
        return RV_BAD_SIGNATURE;
    *checked = opt.verify_every > 0 && i % opt.verify_every == 0;
    if (!*checked)
        return CKR_OK;
    *what = "C_VerifyInit";
    rv = F->C_VerifyInit(w->s, &m, w->pub);
    if (rv != CKR_OK)
        return rv;
    *what = "C_Verify";
    rv = F->C_Verify(w->s, data, dlen, sig, slen);
    if (rv == CKR_SIGNATURE_INVALID)
        return RV_BAD_SIGNATURE;
    if (rv != CKR_OK || w->tamper_checked)
        return rv;
    sig[slen / 3] ^= 0x01;
    *what = "C_VerifyInit (changed signature)";
    rv = F->C_VerifyInit(w->s, &m, w->pub);
    if (rv != CKR_OK)
        return rv;
    *what = "C_Verify (changed signature)";
    rv = F->C_Verify(w->s, data, dlen, sig, slen);
    if (rv == CKR_OK)
        return RV_TAMPER_OK;
    if (rv != CKR_SIGNATURE_INVALID)
        return rv;
    w->tamper_checked = true;
    return CKR_OK;
}

/* In survive mode, while recovering: false (after counting the error) once --deadline passed. */
static bool within_deadline(worker *w, CK_RV last, const char *what)
{
    if (w->connected || now() - w->lost_at <= opt.deadline)
        return true;
    char b[40], msg[160];
    snprintf(msg, sizeof msg, "no recovery within %.0f s (last: %s: %s)", opt.deadline, what, rv_name(last, b, sizeof b));
    error(w, msg, RV_DEADLINE);
    return false;
}

static void backoff(worker *w)
{
    sleep_s(w->backoff);
    w->backoff = w->backoff * 2 > 0.2 ? 0.2 : w->backoff * 2;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    const char *what = "";
    CK_RV rv, last = CKR_OK;
    /* the first setup: in survive mode the server may already be restarting (retries) */
    w->connected = false;
    w->lost_at = now();
    w->backoff = 0.01;
    while ((rv = setup_session(w, &what)) != CKR_OK) {
        if (!interrupted(w, what, rv) || !within_deadline(w, rv, what))
            goto out;
        backoff(w);
    }
    w->connected = true;
    atomic_store(&w->ready, true);
    while (opt.start_file && !file_exists(opt.start_file) && !atomic_load(&g_stop))
        sleep_s(0.01);
    unsigned long i = 0;
    while (i < opt.signs || (opt.until_file && !file_exists(opt.until_file))) {
        if (atomic_load(&g_stop)) {
            error(w, "--max-time elapsed", RV_TIMEOUT);
            break;
        }
        if (!w->connected) {
            if (!within_deadline(w, last, what))
                break;
            backoff(w);
            rv = setup_session(w, &what);
            if (rv != CKR_OK) {
                last = rv;
                if (!interrupted(w, what, rv))
                    break;
                continue;
            }
            w->connected = true;
            atomic_store(&w->down, false);
        }
        bool checked = false;
        rv = sign_one(w, i, &what, &checked);
        if (rv == CKR_OK) {
            i++;
            atomic_fetch_add(&w->ok, 1);
            atomic_fetch_add(&w->since_int, 1);
            if (checked)
                atomic_fetch_add(&w->verified, 1);
            continue;
        }
        last = rv;
        if (interrupted(w, what, rv))
            continue;
        /* not survivable: go on with the next signature until too many errors */
        if (atomic_load(&w->errors) >= opt.max_errors)
            break;
        i++;
    }
    if (w->s != 0) {
        rv = F->C_CloseSession(w->s);
        w->s = 0;
        if (rv != CKR_OK && !is_interruption(rv))
            error(w, "C_CloseSession", rv);
    }
out:
    atomic_store(&w->done, true);
    return NULL;
}

/* ---- progress file ---------------------------------------------------------------------------- *
 * One line, rewritten through a temporary file and rename (a reader never sees half of it):
 *   threads=T ready=R started=S down=D done=F ok=X ok_min=Y int=I int_min=J resumed_min=K errors=E
 * ready: threads set up (before --start); started: threads with at least one signature; down:
 * threads recovering from an interruption now; int_min: the fewest interruptions of any thread;
 * resumed_min: the fewest signatures any thread made since its last interruption. */
static void write_progress(void)
{
    if (!opt.progress)
        return;
    unsigned long ok = 0, ok_min = ~0UL, in = 0, in_min = ~0UL, res_min = ~0UL, err = 0;
    unsigned ready = 0, started = 0, down = 0, done = 0;
    for (unsigned t = 0; t < opt.threads; t++) {
        worker *w = &g_w[t];
        unsigned long o = atomic_load(&w->ok), k = atomic_load(&w->interruptions), r = atomic_load(&w->since_int);
        ok += o;
        ok_min = o < ok_min ? o : ok_min;
        in += k;
        in_min = k < in_min ? k : in_min;
        res_min = r < res_min ? r : res_min;
        err += atomic_load(&w->errors);
        ready += atomic_load(&w->ready);
        started += o > 0;
        down += atomic_load(&w->down);
        done += atomic_load(&w->done);
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%.4000s.tmp", opt.progress);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return;
    fprintf(fp, "threads=%u ready=%u started=%u down=%u done=%u ok=%lu ok_min=%lu int=%lu int_min=%lu resumed_min=%lu errors=%lu\n",
            opt.threads, ready, started, down, done, ok, ok_min, in, in_min, res_min, err);
    if (fclose(fp) == 0)
        (void)rename(tmp, opt.progress);
}

static atomic_bool g_all_done;

static void *reporter_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_all_done)) {
        write_progress();
        if (opt.max_time > 0 && now() - g_t0 > opt.max_time)
            atomic_store(&g_stop, true);
        sleep_s(0.05);
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------------------------- */
static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: remote_load MODULE [options]\n"
            "  -t, --threads N         threads, each with its own session (default 1)\n"
            "  -n, --signs N           signatures per thread (default 1000)\n"
            "  -l, --label LABEL       label of the token key pair (default load)\n"
            "  -p, --pin PIN           the user PIN (default 1234)\n"
            "      --token LABEL       the token (default: the first initialized one)\n"
            "  -m, --mech ecdsa|rsa    CKM_ECDSA over a 32-byte digest (default; an EC key), or\n"
            "                          CKM_SHA256_RSA_PKCS (an RSA key)\n"
            "      --verify-every N    check every Nth signature with C_Verify (default 100; 0: none)\n"
            "      --survive           DEVICE_REMOVED and SESSION_HANDLE_INVALID are interruptions:\n"
            "                          reopen the session, log in, find the key, and go on\n"
            "      --deadline SEC      survive: time allowed to recover from one interruption (60)\n"
            "      --accept-rv NAME    survive: one more code counted as an interruption (CKR_... or 0x..)\n"
            "      --session-objects K each thread creates K session data objects in its session\n"
            "      --progress FILE     keep FILE updated with one line of counters\n"
            "      --start FILE        threads set up, then wait for FILE to exist before signing\n"
            "      --until FILE        keep signing past the count until FILE exists\n"
            "      --max-time SEC      give up (an error) after SEC seconds (default: never)\n"
            "      --max-errors N      a thread stops after N errors (default 10)\n"
            "      --session-count     print the token's session counts and exit\n");
}

static CK_RV parse_rv(const char *s)
{
    if (strncmp(s, "0x", 2) == 0)
        return strtoul(s, NULL, 16);
    for (CK_RV rv = 0; rv < 0x200; rv++)
        if (strcmp(p11_rv_name(rv), s) == 0)
            return rv;
    fprintf(stderr, "remote_load: unknown return code %s\n", s);
    exit(2);
}

static unsigned long num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0') {
        fprintf(stderr, "remote_load: %s: not a number: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void parse(int argc, char **argv)
{
    enum { O_TOKEN = 256, O_VERIFY, O_SURVIVE, O_DEADLINE, O_ACCEPT, O_SOBJ, O_PROGRESS, O_START, O_UNTIL,
           O_MAXTIME, O_MAXERR, O_COUNT };
    static const struct option lo[] = {
        { "threads", required_argument, NULL, 't' },   { "signs", required_argument, NULL, 'n' },
        { "label", required_argument, NULL, 'l' },     { "pin", required_argument, NULL, 'p' },
        { "mech", required_argument, NULL, 'm' },      { "token", required_argument, NULL, O_TOKEN },
        { "verify-every", required_argument, NULL, O_VERIFY },
        { "survive", no_argument, NULL, O_SURVIVE },   { "deadline", required_argument, NULL, O_DEADLINE },
        { "accept-rv", required_argument, NULL, O_ACCEPT },
        { "session-objects", required_argument, NULL, O_SOBJ },
        { "progress", required_argument, NULL, O_PROGRESS }, { "start", required_argument, NULL, O_START },
        { "until", required_argument, NULL, O_UNTIL }, { "max-time", required_argument, NULL, O_MAXTIME },
        { "max-errors", required_argument, NULL, O_MAXERR },
        { "session-count", no_argument, NULL, O_COUNT }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "t:n:l:p:m:h", lo, NULL)) != -1) {
        switch (c) {
        case 't': opt.threads = (unsigned)num(optarg, "--threads"); break;
        case 'n': opt.signs = num(optarg, "--signs"); break;
        case 'l': opt.label = optarg; break;
        case 'p': opt.pin = optarg; break;
        case 'm':
            if (strcmp(optarg, "rsa") == 0)
                opt.rsa = true;
            else if (strcmp(optarg, "ecdsa") == 0)
                opt.rsa = false;
            else {
                fprintf(stderr, "remote_load: --mech: ecdsa or rsa, not %s\n", optarg);
                exit(2);
            }
            break;
        case O_TOKEN: opt.token = optarg; break;
        case O_VERIFY: opt.verify_every = num(optarg, "--verify-every"); break;
        case O_SURVIVE: opt.survive = true; break;
        case O_DEADLINE: opt.deadline = (double)num(optarg, "--deadline"); break;
        case O_ACCEPT:
            if (opt.n_extra_ok == sizeof opt.extra_ok / sizeof opt.extra_ok[0]) {
                fprintf(stderr, "remote_load: too many --accept-rv\n");
                exit(2);
            }
            opt.extra_ok[opt.n_extra_ok++] = parse_rv(optarg);
            break;
        case O_SOBJ: opt.session_objects = (unsigned)num(optarg, "--session-objects"); break;
        case O_PROGRESS: opt.progress = optarg; break;
        case O_START: opt.start_file = optarg; break;
        case O_UNTIL: opt.until_file = optarg; break;
        case O_MAXTIME: opt.max_time = (double)num(optarg, "--max-time"); break;
        case O_MAXERR: opt.max_errors = num(optarg, "--max-errors"); break;
        case O_COUNT: opt.session_count = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        exit(2);
    }
    opt.module = argv[optind];
    if (opt.threads < 1 || opt.threads > MAX_THREADS) {
        fprintf(stderr, "remote_load: --threads: 1 to %d\n", MAX_THREADS);
        exit(2);
    }
    if (opt.session_objects > 64) {
        fprintf(stderr, "remote_load: --session-objects: at most 64\n");
        exit(2);
    }
}

static bool label_is(const CK_UTF8CHAR *field, size_t w, const char *label)
{
    size_t n = strlen(label);
    if (n > w || memcmp(field, label, n) != 0)
        return false;
    for (size_t j = n; j < w; j++)
        if (field[j] != ' ')
            return false;
    return true;
}

static void die_rv(const char *what, CK_RV rv)
{
    char b[40];
    printf("remote_load: pid=%ld setup failed: %s: %s\n", (long)getpid(), what, rv_name(rv, b, sizeof b));
    fprintf(stderr, "remote_load: %s: %s\n", what, rv_name(rv, b, sizeof b));
    exit(1);
}

static void find_slot(void)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = F->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        die_rv("C_GetSlotList", rv);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        rv = F->C_GetTokenInfo(slots[i], &ti);
        if (rv != CKR_OK)
            die_rv("C_GetTokenInfo", rv);
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        if (opt.token && !label_is(ti.label, sizeof ti.label, opt.token))
            continue;
        g_slot = slots[i];
        return;
    }
    printf("remote_load: pid=%ld setup failed: no initialized token%s%s\n", (long)getpid(),
           opt.token ? " labelled " : "", opt.token ? opt.token : "");
    exit(1);
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_t0 = now();
    void *dl = dlopen(opt.module, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "remote_load: dlopen %s: %s\n", opt.module, dlerror());
        return 1;
    }
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    if (!gfl || gfl(&F) != CKR_OK || !F) {
        fprintf(stderr, "remote_load: %s: no usable C_GetFunctionList\n", opt.module);
        return 1;
    }
    CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
    CK_RV rv = F->C_Initialize(&ia);
    if (rv != CKR_OK)
        die_rv("C_Initialize", rv);
    find_slot();

    if (opt.session_count) {
        CK_TOKEN_INFO ti;
        rv = F->C_GetTokenInfo(g_slot, &ti);
        if (rv != CKR_OK)
            die_rv("C_GetTokenInfo", rv);
        printf("sessions=%lu rw=%lu\n", (unsigned long)ti.ulSessionCount, (unsigned long)ti.ulRwSessionCount);
        rv = F->C_Finalize(NULL);
        return rv == CKR_OK ? 0 : 1;
    }

    /* the application logs in once; this session stays open so that the login lasts */
    CK_SESSION_HANDLE s0;
    rv = F->C_OpenSession(g_slot, CKF_SERIAL_SESSION, NULL, NULL, &s0);
    if (rv != CKR_OK)
        die_rv("C_OpenSession", rv);
    rv = F->C_Login(s0, CKU_USER, (CK_UTF8CHAR_PTR)opt.pin, strlen(opt.pin));
    if (rv != CKR_OK)
        die_rv("C_Login", rv);

    write_progress();
    pthread_t rep;
    if (pthread_create(&rep, NULL, reporter_main, NULL) != 0) {
        fprintf(stderr, "remote_load: cannot start a thread\n");
        return 1;
    }
    for (unsigned t = 0; t < opt.threads; t++) {
        g_w[t].idx = t;
        if (pthread_create(&g_w[t].th, NULL, worker_main, &g_w[t]) != 0) {
            fprintf(stderr, "remote_load: cannot start thread %u\n", t);
            return 1;
        }
    }
    for (unsigned t = 0; t < opt.threads; t++)
        pthread_join(g_w[t].th, NULL);
    atomic_store(&g_all_done, true);
    pthread_join(rep, NULL);
    write_progress();

    /* s0 died with the connection when the server restarted: then it is an interruption code */
    rv = F->C_CloseSession(s0);
    if (rv != CKR_OK && !is_interruption(rv)) {
        rv_add(&g_errors, rv);
        fprintf(stderr, "remote_load: C_CloseSession of the login session: %s\n", p11_rv_name(rv));
    }
    rv = F->C_Finalize(NULL);
    if (rv != CKR_OK) {
        rv_add(&g_errors, rv);
        fprintf(stderr, "remote_load: C_Finalize: %s\n", p11_rv_name(rv));
    }

    unsigned long ok = 0, ok_min = ~0UL, ver = 0, in_min = ~0UL, retries = 0;
    for (unsigned t = 0; t < opt.threads; t++) {
        unsigned long o = atomic_load(&g_w[t].ok), k = atomic_load(&g_w[t].interruptions);
        ok += o;
        ok_min = o < ok_min ? o : ok_min;
        in_min = k < in_min ? k : in_min;
        ver += atomic_load(&g_w[t].verified);
        retries += atomic_load(&g_w[t].retries);
    }
    printf("remote_load: pid=%ld threads=%u signs=%lu ok=%lu ok_min=%lu verified=%lu interruptions=%lu int_min=%lu "
           "retries=%lu errors=%lu",
           (long)getpid(), opt.threads, opt.signs, ok, ok_min, ver, g_interruptions.total, in_min, retries,
           g_errors.total);
    rv_print(stdout, &g_interruptions, "int:");
    rv_print(stdout, &g_errors, "");
    printf(" seconds=%.2f\n", now() - g_t0);
    /* the module stays mapped (no dlclose): a finalized module may still have exit handlers */
    return g_errors.total == 0 && ok_min >= opt.signs ? 0 : 1;
}
