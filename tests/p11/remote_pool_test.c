/* remote_pool_test.c: the remote module's connection pool (src/rpc/pool.c; docs/remote.md,
 * "Client side") against a real cofferd on a Unix socket in a temporary folder. The module is
 * loaded once, in remote mode ([client] server = unix:...), and the cases run in order on it:
 *
 * - eight threads, each with its own session, sign 500 times with a token key: no error, and
 *   cofferd holds more than one connection from this process (the pool opened several);
 * - a login made by one thread is the login of the sessions the other threads opened, over
 *   whichever connections their calls take (one application on the server);
 * - a session opened by one thread is used by another while the rest are busy signing;
 * - a fork child initializes the module and signs over its own connections, and the parent's
 *   connections keep working;
 * - cofferd killed and restarted on the same store: calls on the old sessions fail with
 *   DEVICE_REMOVED or SESSION_HANDLE_INVALID, and C_OpenSession works again without reloading.
 *
 * - against a scripted server in this process (the pool's rules, whatever cofferd does): a server
 *   without application tokens gets one connection; with tokens, several connections that all
 *   join the first one's application; a server that closes the idle connections is reconnected
 *   to silently; a connection that fails during a call gives DEVICE_REMOVED, then session calls
 *   fail without reaching the server until C_GetSlotList reconnects; C_Finalize closes them all.
 *
 * The first two need a cofferd that names the application in HELLO_OK (protocol minor 1). cofferd
 * is COFFERD_PATH (a compile definition: the build's cofferd) or $COFFERD; without either, its
 * cases are skipped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "p11util.h"

#define THREADS 8
#define SIGNS 500
/* cofferd's [hsm] lease_ms here: long enough that no lease of the lease cases ends by accident on
 * a slow machine, short enough that a destroy waits it out quickly. */
#define LEASE_MS 3000

static const unsigned char p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const char key_label[] = "pool-ec";

static p11_store st;               /* the temporary folder; COFFER_CONF is the client's file */
static char server_conf[400], sock_path[400], log_path[400];
static const char *cofferd_path;
static pid_t cofferd_pid = -1;
static int server_sockets;         /* cofferd's sockets before the module connected (its listener) */
static void *dl;
static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static CK_OBJECT_HANDLE ec_priv, ec_pub;

/* ---- failures from worker threads (cmocka's asserts belong to the main thread) --------------- */
static int failures;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

static void note_failure(const char *what, int line, CK_RV rv)
{
    pthread_mutex_lock(&fail_mu);
    if (failures++ < 10)
        fprintf(stderr, "remote_pool_test.c:%d: %s -> %s\n", line, what, p11_rv_name(rv));
    pthread_mutex_unlock(&fail_mu);
}
#define CHECK(x) \
    do { \
        CK_RV r_ = (x); \
        if (r_ != CKR_OK) { \
            note_failure(#x, __LINE__, r_); \
            return NULL; \
        } \
    } while (0)

/* ---- cofferd ------------------------------------------------------------------------------------ */
static bool can_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%.107s", sock_path);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* Starts cofferd on the server configuration and waits until its socket accepts (10 s). The
 * server reads only its own file: COFFER_CONF (the client's) is removed from its environment. */
static bool start_cofferd(void)
{
    (void)unlink(sock_path);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        unsetenv("COFFER_CONF");
        setenv("COFFER_LOG", "info", 1);
        execl(cofferd_path, cofferd_path, "-c", server_conf, (char *)NULL);
        _exit(127);
    }
    cofferd_pid = pid;
    for (int i = 0; i < 200; i++) {
        if (can_connect())
            return true;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "cofferd exited at start: see %s\n", log_path);
            cofferd_pid = -1;
            return false;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "cofferd did not listen on %s within 10 s\n", sock_path);
    return false;
}

static void stop_cofferd(int sig)
{
    if (cofferd_pid > 0) {
        kill(cofferd_pid, sig);
        waitpid(cofferd_pid, NULL, 0);
    }
    cofferd_pid = -1;
}

/* Sockets cofferd holds (its listener, and one per client connection). */
static int cofferd_sockets(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)cofferd_pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char link[600], target[64];
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t k = readlink(link, target, sizeof target - 1);
        if (k > 0) {
            target[k] = '\0';
            n += strncmp(target, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

/* The count with no client connected: the least seen over a short while (the readiness probe's
 * connection may take a moment to close on the server side). */
static int idle_cofferd_sockets(void)
{
    int least = cofferd_sockets();
    for (int i = 0; i < 10; i++) {
        sleep_ms(20);
        int n = cofferd_sockets();
        if (n >= 0 && n < least)
            least = n;
    }
    return least;
}

/* ---- fixture: a token with a P-256 key pair on cofferd, the module loaded in remote mode ------ */
static CK_RV open_user_session(CK_SESSION_HANDLE *s)
{
    return p11_open(f, slot, CKU_USER, P11_USER_PIN, s);
}

static int setup(void **state)
{
    (void)state;
    cofferd_path = getenv("COFFERD");
#ifdef COFFERD_PATH
    if (!cofferd_path || !*cofferd_path)
        cofferd_path = COFFERD_PATH;
#endif
    if (!p11_store_create(&st, NULL))
        return -1;
    if (!cofferd_path || !*cofferd_path || access(cofferd_path, X_OK) != 0) {
        fprintf(stderr, "remote_pool_test: no cofferd (build it, or set COFFERD): its cases skipped\n");
        cofferd_path = NULL;
        f = p11_load(&dl);   /* the scripted-server cases need only the module */
        return f ? 0 : -1;
    }
    snprintf(sock_path, sizeof sock_path, "%s/hsm.sock", st.dir);
    snprintf(server_conf, sizeof server_conf, "%s/server.conf", st.dir);
    snprintf(log_path, sizeof log_path, "%s/cofferd.log", st.dir);
    FILE *fp = fopen(server_conf, "w");
    if (!fp)
        return -1;
    fprintf(fp, "[store]\ndir = %s/server-store\n[token]\npbkdf2_iterations = 1000\n[hsm]\nlisten = unix:%s\n"
                "lease_ms = %d\nworkers = 1\n", st.dir, sock_path, LEASE_MS);
    fclose(fp);
    fp = fopen(st.conf, "a");   /* the client's file: remote mode */
    if (!fp)
        return -1;
    fprintf(fp, "[client]\nserver = unix:%s\n", sock_path);
    fclose(fp);
    if (!start_cofferd())
        return -1;
    server_sockets = idle_cofferd_sockets();
    f = p11_load(&dl);
    if (!f)
        return -1;
    CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
    CK_SESSION_HANDLE s;
    if (f->C_Initialize(&ia) != CKR_OK || p11_init_token(f, P11_LABEL, &slot) != CKR_OK ||
        open_user_session(&s) != CKR_OK)
        return -1;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = { { CKA_TOKEN, &yes, 1 }, { CKA_VERIFY, &yes, 1 },
                           { CKA_EC_PARAMS, (void *)p256, sizeof p256 } };
    CK_ATTRIBUTE priv[] = { { CKA_TOKEN, &yes, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
                            { CKA_SENSITIVE, &yes, 1 }, { CKA_LABEL, (void *)key_label, sizeof key_label - 1 } };
    CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_RV rv = f->C_GenerateKeyPair(s, &gen, pub, 3, priv, 5, &ec_pub, &ec_priv);
    if (rv != CKR_OK) {
        fprintf(stderr, "C_GenerateKeyPair: %s\n", p11_rv_name(rv));
        return -1;
    }
    return f->C_CloseSession(s) == CKR_OK ? 0 : -1;   /* the last session: logged out */
}

static int teardown(void **state)
{
    (void)state;
    if (f)
        (void)f->C_Finalize(NULL);
    p11_unload(dl);
    stop_cofferd(SIGTERM);
    if (st.dir[0])
        p11_store_destroy(&st);
    return 0;
}

#define NEED_COFFERD() \
    do { \
        if (!cofferd_path) \
            skip(); \
    } while (0)

/* One ECDSA signature over a digest made of (a, b), verified. */
static CK_RV sign_once(CK_SESSION_HANDLE s, int a, int b)
{
    unsigned char dig[32], sig[80];
    memset(dig, a * 31 + b, sizeof dig);
    CK_ULONG len = sizeof sig;
    CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
    CK_RV rv = f->C_SignInit(s, &m, ec_priv);
    if (rv == CKR_OK)
        rv = f->C_Sign(s, dig, sizeof dig, sig, &len);
    if (rv == CKR_OK)
        rv = f->C_VerifyInit(s, &m, ec_pub);
    if (rv == CKR_OK)
        rv = f->C_Verify(s, dig, sizeof dig, sig, len);
    return rv;
}

/* ---- eight threads sign at once, over several connections -------------------------------------- */
static pthread_barrier_t start;

static void *signer(void *arg)
{
    int id = (int)(long)arg;
    CK_SESSION_HANDLE s;
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
    pthread_barrier_wait(&start);
    unsigned char dig[32], sig[80];
    CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
    for (int i = 0; i < SIGNS; i++) {
        memset(dig, id * 31 + i, sizeof dig);
        CK_ULONG len = sizeof sig;
        CHECK(f->C_SignInit(s, &m, ec_priv));
        CHECK(f->C_Sign(s, dig, sizeof dig, sig, &len));
    }
    CHECK(sign_once(s, id, SIGNS));   /* and one that verifies */
    CHECK(f->C_CloseSession(s));
    return NULL;
}

static void eight_threads_sign(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);   /* the token key is private */
    failures = 0;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, signer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    /* the pool keeps its idle connections open, and this process is cofferd's only client */
    int conns = cofferd_sockets() - server_sockets;
    assert_rv(f->C_CloseSession(s), CKR_OK);
    assert_int_equal(failures, 0);
    if (conns < 2)
        fail_msg("cofferd holds %d connection(s) from this process after %d threads signed: the pool "
                 "opened only one (a server without application tokens?)", conns, THREADS);
}

/* ---- a login is the whole application's ------------------------------------------------------ */
enum { WATCHERS = 4, LOOKS = 50 };
static pthread_barrier_t opened, logged_in, looked;
static CK_STATE want_state;

static void *watcher(void *arg)
{
    (void)arg;
    CK_SESSION_HANDLE s;
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    pthread_barrier_wait(&opened);
    pthread_barrier_wait(&logged_in);   /* the main thread logged in on its own session */
    for (int i = 0; i < LOOKS; i++) {   /* all at once: the calls spread over the connections */
        CK_SESSION_INFO si;
        CHECK(f->C_GetSessionInfo(s, &si));
        if (si.state != want_state) {
            note_failure("session state", __LINE__, CKR_USER_NOT_LOGGED_IN);
            break;
        }
    }
    pthread_barrier_wait(&looked);
    CHECK(f->C_CloseSession(s));
    return NULL;
}

static void login_is_shared(void **state)
{
    (void)state;
    NEED_COFFERD();
    failures = 0;
    want_state = CKS_RW_USER_FUNCTIONS;
    pthread_barrier_init(&opened, NULL, WATCHERS + 1);
    pthread_barrier_init(&logged_in, NULL, WATCHERS + 1);
    pthread_barrier_init(&looked, NULL, WATCHERS + 1);
    pthread_t th[WATCHERS];
    for (long i = 0; i < WATCHERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, watcher, (void *)i), 0);
    pthread_barrier_wait(&opened);   /* their sessions exist, none logged in */
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    pthread_barrier_wait(&logged_in);
    pthread_barrier_wait(&looked);
    for (int i = 0; i < WATCHERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&opened);
    pthread_barrier_destroy(&logged_in);
    pthread_barrier_destroy(&looked);
    assert_rv(f->C_Logout(s), CKR_OK);
    assert_rv(f->C_CloseSession(s), CKR_OK);
    assert_int_equal(failures, 0);
}

/* ---- one thread's session, another thread's call ------------------------------------------------ */
enum { BUSY = 6, HANDOFFS = 50 };
static volatile int stop_busy;
static CK_SESSION_HANDLE handed;
static pthread_barrier_t hand_a, hand_b;

static void *busy_signer(void *arg)
{
    int id = (int)(long)arg;
    CK_SESSION_HANDLE s;
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
    for (int i = 0; !__atomic_load_n(&stop_busy, __ATOMIC_ACQUIRE); i++)
        CHECK(sign_once(s, id, i));
    CHECK(f->C_CloseSession(s));
    return NULL;
}

/* Opens a session and starts a signature in it; the other thread finishes it. */
static void *opener(void *arg)
{
    (void)arg;
    unsigned char dig[32];
    memset(dig, 0x5a, sizeof dig);
    CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
    for (int i = 0; i < HANDOFFS; i++) {
        CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &handed));
        CHECK(f->C_SignInit(handed, &m, ec_priv));
        pthread_barrier_wait(&hand_a);
        pthread_barrier_wait(&hand_b);
    }
    return NULL;
}

static void *finisher(void *arg)
{
    (void)arg;
    unsigned char dig[32], sig[80];
    memset(dig, 0x5a, sizeof dig);
    CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
    for (int i = 0; i < HANDOFFS; i++) {
        pthread_barrier_wait(&hand_a);
        CK_ULONG len = sizeof sig;
        CK_RV rv = f->C_Sign(handed, dig, sizeof dig, sig, &len);
        if (rv == CKR_OK)
            rv = f->C_VerifyInit(handed, &m, ec_pub);
        if (rv == CKR_OK)
            rv = f->C_Verify(handed, dig, sizeof dig, sig, len);
        if (rv == CKR_OK)
            rv = f->C_CloseSession(handed);
        pthread_barrier_wait(&hand_b);
        CHECK(rv);
    }
    return NULL;
}

static void session_moves_between_threads(void **state)
{
    (void)state;
    NEED_COFFERD();
    failures = 0;
    __atomic_store_n(&stop_busy, 0, __ATOMIC_RELEASE);
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    pthread_barrier_init(&hand_a, NULL, 2);
    pthread_barrier_init(&hand_b, NULL, 2);
    pthread_t busy[BUSY], a, b;
    for (long i = 0; i < BUSY; i++)
        assert_int_equal(pthread_create(&busy[i], NULL, busy_signer, (void *)i), 0);
    assert_int_equal(pthread_create(&a, NULL, opener, NULL), 0);
    assert_int_equal(pthread_create(&b, NULL, finisher, NULL), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    __atomic_store_n(&stop_busy, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < BUSY; i++)
        pthread_join(busy[i], NULL);
    pthread_barrier_destroy(&hand_a);
    pthread_barrier_destroy(&hand_b);
    assert_rv(f->C_CloseSession(s), CKR_OK);
    assert_int_equal(failures, 0);
}

/* ---- fork: the child forgets the parent's connections ------------------------------------------ */
static int child_signs(void)
{
    CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
    CK_SESSION_HANDLE s;
    if (f->C_Initialize(&ia) != CKR_OK || open_user_session(&s) != CKR_OK)
        return 1;
    CK_RV rv = sign_once(s, 7, 7);
    (void)f->C_Finalize(NULL);
    return rv == CKR_OK ? 0 : 2;
}

static void fork_child_has_its_own_connections(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    assert_rv(sign_once(s, 1, 1), CKR_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_signs());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the child's C_Finalize closed its own connections, not the parent's */
    assert_rv(sign_once(s, 2, 2), CKR_OK);
    assert_rv(f->C_CloseSession(s), CKR_OK);
}

/* ---- cofferd restarted under the application --------------------------------------------------- */
/* The fixture's key pair by label, after a restart of cofferd (handles are the server's). */
static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls)
{
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, (void *)key_label, sizeof key_label - 1 } };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    assert_rv(f->C_FindObjectsInit(s, t, cls == CKO_PRIVATE_KEY ? 2 : 1), CKR_OK);
    assert_rv(f->C_FindObjects(s, found, 2, &n), CKR_OK);
    assert_rv(f->C_FindObjectsFinal(s), CKR_OK);
    assert_int_equal(n, 1);
    return found[0];
}

static void find_fixture_keys(CK_SESSION_HANDLE s)
{
    ec_priv = find_one(s, CKO_PRIVATE_KEY);
    ec_pub = find_one(s, CKO_PUBLIC_KEY);   /* the fixture's is the only public key */
}

static bool gone_rv(CK_RV rv)
{
    return rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID;
}

static void server_restart(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    assert_rv(sign_once(s, 3, 3), CKR_OK);
    stop_cofferd(SIGKILL);
    assert_true(start_cofferd());

    /* The old session died with the server: never OK, on every call. */
    CK_SESSION_INFO si;
    for (int i = 0; i < 3; i++) {
        CK_RV rv = f->C_GetSessionInfo(s, &si);
        if (!gone_rv(rv))
            fail_msg("C_GetSessionInfo on a session of the killed server returned %s", p11_rv_name(rv));
        CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
        rv = f->C_SignInit(s, &m, ec_priv);
        if (!gone_rv(rv))
            fail_msg("C_SignInit on a session of the killed server returned %s", p11_rv_name(rv));
    }
    /* A slot-level call starts over, on the same loaded module: the token key is in the store. */
    CK_SESSION_HANDLE s2;
    assert_rv(open_user_session(&s2), CKR_OK);
    find_fixture_keys(s2);
    assert_rv(sign_once(s2, 4, 4), CKR_OK);
    CK_RV rv = f->C_GetSessionInfo(s, &si);
    if (!gone_rv(rv))
        fail_msg("the old session after reconnecting: %s", p11_rv_name(rv));
    assert_rv(f->C_CloseSession(s2), CKR_OK);
}

/* ---- signing leases (docs/protocol.md, "Leases") --------------------------------------------- */
static CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 };

/* C_SignInit + C_Sign over a digest made of a, and the signature checked with pub. */
static CK_RV sign_with(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub, int a,
                       bool init)
{
    unsigned char dig[32], sig[80];
    memset(dig, a, sizeof dig);
    CK_ULONG len = sizeof sig;
    CK_RV rv = init ? f->C_SignInit(s, m, priv) : CKR_OK;
    if (rv == CKR_OK)
        rv = f->C_Sign(s, dig, sizeof dig, sig, &len);
    if (rv == CKR_OK)
        rv = f->C_VerifyInit(s, m, pub);
    if (rv == CKR_OK)
        rv = f->C_Verify(s, dig, sizeof dig, sig, len);
    return rv;
}

/* What C_SignInit answers under a lease is what it answers with a round trip: errors of another
 * init at C_SignInit, OPERATION_ACTIVE for a second one, the length protocol, multi-part signing,
 * and a session closed with the init pending. */
static void lease_keeps_init_semantics(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, 1, true), CKR_OK);   /* the lease */
    CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
    assert_rv(f->C_SignInit(s, &rsa, ec_priv), CKR_KEY_TYPE_INCONSISTENT);
    assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, 2, true), CKR_OK);

    assert_rv(f->C_SignInit(s, &ecdsa, ec_priv), CKR_OK);
    assert_rv(f->C_SignInit(s, &ecdsa, ec_priv), CKR_OPERATION_ACTIVE);
    unsigned char dig[32] = { 3 };
    CK_ULONG len = 0;
    assert_rv(f->C_Sign(s, dig, sizeof dig, NULL, &len), CKR_OK);
    assert_int_equal(len, 64);
    assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, 3, false), CKR_OK);   /* the same operation */

    CK_MECHANISM sha = { CKM_ECDSA_SHA256, NULL, 0 };
    assert_rv(sign_with(s, &sha, ec_priv, ec_pub, 4, true), CKR_OK);    /* a lease for this one */
    assert_rv(f->C_SignInit(s, &sha, ec_priv), CKR_OK);
    unsigned char msg[] = "multi-part under a lease", sig[80];
    assert_rv(f->C_SignUpdate(s, msg, 10), CKR_OK);
    assert_rv(f->C_SignUpdate(s, msg + 10, sizeof msg - 10), CKR_OK);
    len = sizeof sig;
    assert_rv(f->C_SignFinal(s, sig, &len), CKR_OK);
    assert_rv(f->C_VerifyInit(s, &sha, ec_pub), CKR_OK);
    assert_rv(f->C_Verify(s, msg, sizeof msg, sig, len), CKR_OK);

    assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, 5, true), CKR_OK);
    assert_rv(f->C_SignInit(s, &ecdsa, ec_priv), CKR_OK);
    assert_rv(f->C_CloseSession(s), CKR_OK);
    assert_rv(open_user_session(&s), CKR_OK);
    assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, 6, true), CKR_OK);
    assert_rv(f->C_CloseSession(s), CKR_OK);
}

/* A C_SignInit taken under a lease happened before a C_Logout that follows it: the module sends it
 * before the logout, and the operation signs afterwards, as in-process (where an operation keeps
 * its key across a logout). Sent after the logout, the init would be refused. */
static void lease_init_flushed_at_logout(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, 1, true), CKR_OK);
    assert_rv(f->C_SignInit(s, &ecdsa, ec_priv), CKR_OK);
    assert_rv(f->C_Logout(s), CKR_OK);
    unsigned char dig[32] = { 9 }, sig[80];
    CK_ULONG len = sizeof sig;
    assert_rv(f->C_Sign(s, dig, sizeof dig, sig, &len), CKR_OK);
    assert_int_equal(len, 64);
    assert_rv(f->C_SignInit(s, &ecdsa, ec_priv), CKR_KEY_HANDLE_INVALID);   /* private: not seen now */
    assert_rv(f->C_CloseSession(s), CKR_OK);
}

/* A P-256 pair: the private key a token object labelled label (another application can destroy
 * it), the public key a session object of s. */
static void lease_pair(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *priv, CK_OBJECT_HANDLE *pub)
{
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tpub[] = { { CKA_VERIFY, &yes, 1 }, { CKA_EC_PARAMS, (void *)p256, sizeof p256 } };
    CK_ATTRIBUTE tpriv[] = { { CKA_TOKEN, &yes, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
                             { CKA_LABEL, (void *)label, strlen(label) } };
    CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    assert_rv(f->C_GenerateKeyPair(s, &gen, tpub, 2, tpriv, 4, pub, priv), CKR_OK);
}

/* In a fork child, another application: destroys the token key labelled label (0: done). */
static int child_destroys(const char *label)
{
    CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
    CK_SESSION_HANDLE s;
    if (f->C_Initialize(&ia) != CKR_OK || open_user_session(&s) != CKR_OK)
        return 1;
    CK_ATTRIBUTE t[] = { { CKA_LABEL, (void *)label, strlen(label) } };
    CK_OBJECT_HANDLE o;
    CK_ULONG n = 0;
    int rc = f->C_FindObjectsInit(s, t, 1) == CKR_OK && f->C_FindObjects(s, &o, 1, &n) == CKR_OK && n == 1 &&
                     f->C_FindObjectsFinal(s) == CKR_OK && f->C_DestroyObject(s, o) == CKR_OK
                 ? 0
                 : 2;
    (void)f->C_Finalize(NULL);
    return rc;
}

static void destroy_in_child(const char *label)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_destroys(label));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Another application destroys a key this one holds a lease on. Its C_DestroyObject returns only
 * once the lease has ended, so a C_SignInit after it is a real init: KEY_HANDLE_INVALID (were the
 * destroy not to wait, the client would still hold the lease and answer OK). A C_SignInit taken
 * under the lease before the destroy happened before it: its C_Sign signs, as an operation that
 * was active when its key went. */
static void lease_holds_off_destroy(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(p11_open(f, slot, CKU_USER, P11_USER_PIN, &s), CKR_OK);
    CK_OBJECT_HANDLE k1, p1, k2, p2;
    lease_pair(s, "lease-1", &k1, &p1);
    lease_pair(s, "lease-2", &k2, &p2);

    assert_rv(sign_with(s, &ecdsa, k1, p1, 1, true), CKR_OK);
    destroy_in_child("lease-1");
    assert_rv(f->C_SignInit(s, &ecdsa, k1), CKR_KEY_HANDLE_INVALID);

    assert_rv(sign_with(s, &ecdsa, k2, p2, 2, true), CKR_OK);
    assert_rv(f->C_SignInit(s, &ecdsa, k2), CKR_OK);
    destroy_in_child("lease-2");
    assert_rv(sign_with(s, &ecdsa, k2, p2, 3, false), CKR_OK);
    assert_rv(f->C_SignInit(s, &ecdsa, k2), CKR_KEY_HANDLE_INVALID);
    assert_rv(f->C_CloseSession(s), CKR_OK);
}

/* A destroy that waits for a lease holds no worker of cofferd (this one has a single worker): the
 * destroying client is told to wait and asks again by itself, and meanwhile the server signs for
 * others. Were the worker to sleep out the lease, the signatures here would wait for the destroy
 * to end, and its end would be reported before they finish. */
static void lease_wait_holds_no_worker(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(p11_open(f, slot, CKU_USER, P11_USER_PIN, &s), CKR_OK);
    CK_OBJECT_HANDLE k, p;
    lease_pair(s, "lease-3", &k, &p);
    assert_rv(sign_with(s, &ecdsa, k, p, 1, true), CKR_OK);   /* a lease of LEASE_MS */
    int ready[2], done[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(done[0]);
        char c = 'r';
        if (write(ready[1], &c, 1) != 1)
            _exit(3);
        int rc = child_destroys("lease-3");
        c = 'd';
        _exit(write(done[1], &c, 1) == 1 ? rc : 4);
    }
    close(ready[1]);
    close(done[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    sleep_ms(300);   /* the child's C_DestroyObject has reached cofferd */
    for (int i = 0; i < 20; i++)
        assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, i, true), CKR_OK);
    struct pollfd pd = { .fd = done[0], .events = POLLIN };
    assert_int_equal(poll(&pd, 1, 0), 0);   /* the destroy is still waiting for the lease */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(ready[0]);
    close(done[0]);
    assert_rv(f->C_SignInit(s, &ecdsa, k), CKR_KEY_HANDLE_INVALID);
    assert_rv(f->C_CloseSession(s), CKR_OK);
}

/* After a case killed cofferd: it is started again, and a new session finds the fixture's keys
 * anew and signs (digest made of a). */
static void cofferd_back(int a)
{
    assert_true(start_cofferd());
    CK_SESSION_HANDLE s2;
    assert_rv(open_user_session(&s2), CKR_OK);
    find_fixture_keys(s2);
    assert_rv(sign_with(s2, &ecdsa, ec_priv, ec_pub, a, true), CKR_OK);
    assert_rv(f->C_CloseSession(s2), CKR_OK);
}

/* Under a lease C_SignInit asks nothing: with cofferd killed right after a signature it still
 * answers OK (a round trip would have found no server), and the C_Sign that carries it reports
 * the loss. cofferd is started again and the fixture's keys found anew. */
static void lease_init_is_local(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, 1, true), CKR_OK);
    stop_cofferd(SIGKILL);
    assert_rv(f->C_SignInit(s, &ecdsa, ec_priv), CKR_OK);
    unsigned char dig[32] = { 0 }, sig[80];
    CK_ULONG len = sizeof sig;
    CK_RV rv = f->C_Sign(s, dig, sizeof dig, sig, &len);
    if (!gone_rv(rv))
        fail_msg("C_Sign after the server died returned %s", p11_rv_name(rv));
    cofferd_back(2);
}

/* ---- verifying leases (protocol minor 3) ----------------------------------------------------- */
/* A signature of pub's pair over the digest made of a, for the verify cases. */
static void make_sig(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, int a, unsigned char *sig, CK_ULONG *len)
{
    unsigned char dig[32];
    memset(dig, a, sizeof dig);
    *len = 64;
    assert_rv(f->C_SignInit(s, &ecdsa, priv), CKR_OK);
    assert_rv(f->C_Sign(s, dig, sizeof dig, sig, len), CKR_OK);
}

static CK_RV verify_dig(CK_SESSION_HANDLE s, int a, const unsigned char *sig, CK_ULONG len)
{
    unsigned char dig[32];
    memset(dig, a, sizeof dig);
    return f->C_Verify(s, dig, sizeof dig, (unsigned char *)sig, len);
}

/* C_VerifyInit under a lease answers what it answers with a round trip: another init's error at
 * C_VerifyInit, OPERATION_ACTIVE for a second one, a bad signature from C_Verify, and a sign lease
 * and a verify lease of one session side by side. */
static void verify_lease_keeps_init_semantics(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    unsigned char sig[80];
    CK_ULONG len;
    make_sig(s, ec_priv, 1, sig, &len);
    assert_rv(f->C_VerifyInit(s, &ecdsa, ec_pub), CKR_OK);
    assert_rv(verify_dig(s, 1, sig, len), CKR_OK);                       /* the lease */
    CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
    assert_rv(f->C_VerifyInit(s, &rsa, ec_pub), CKR_KEY_TYPE_INCONSISTENT);
    assert_rv(f->C_VerifyInit(s, &ecdsa, ec_pub), CKR_OK);
    assert_rv(verify_dig(s, 1, sig, len), CKR_OK);
    assert_rv(f->C_VerifyInit(s, &ecdsa, ec_pub), CKR_OK);               /* under the new lease */
    assert_rv(f->C_VerifyInit(s, &ecdsa, ec_pub), CKR_OPERATION_ACTIVE);
    assert_rv(verify_dig(s, 2, sig, len), CKR_SIGNATURE_INVALID);
    assert_rv(f->C_VerifyInit(s, &ecdsa, ec_pub), CKR_OK);               /* no lease after a bad one */
    assert_rv(verify_dig(s, 1, sig, len), CKR_OK);

    /* both kinds pending on one session, each sent with its own call */
    assert_rv(sign_with(s, &ecdsa, ec_priv, ec_pub, 3, true), CKR_OK);
    assert_rv(f->C_SignInit(s, &ecdsa, ec_priv), CKR_OK);
    assert_rv(f->C_VerifyInit(s, &ecdsa, ec_pub), CKR_OK);
    unsigned char dig[32], sig2[80];
    memset(dig, 4, sizeof dig);
    CK_ULONG len2 = sizeof sig2;
    assert_rv(f->C_Sign(s, dig, sizeof dig, sig2, &len2), CKR_OK);
    assert_rv(verify_dig(s, 4, sig2, len2), CKR_OK);

    /* multi-part after a leased init: the init is sent first */
    CK_MECHANISM sha = { CKM_ECDSA_SHA256, NULL, 0 };
    unsigned char msg[] = "verified in parts under a lease";
    len2 = sizeof sig2;
    assert_rv(f->C_SignInit(s, &sha, ec_priv), CKR_OK);
    assert_rv(f->C_Sign(s, msg, sizeof msg, sig2, &len2), CKR_OK);
    assert_rv(f->C_VerifyInit(s, &sha, ec_pub), CKR_OK);
    assert_rv(f->C_Verify(s, msg, sizeof msg, sig2, len2), CKR_OK);      /* a lease for this one */
    assert_rv(f->C_VerifyInit(s, &sha, ec_pub), CKR_OK);
    assert_rv(f->C_VerifyUpdate(s, msg, 10), CKR_OK);
    assert_rv(f->C_VerifyUpdate(s, msg + 10, sizeof msg - 10), CKR_OK);
    assert_rv(f->C_VerifyFinal(s, sig2, len2), CKR_OK);
    assert_rv(f->C_VerifyInit(s, &sha, ec_pub), CKR_OK);
    assert_rv(f->C_CloseSession(s), CKR_OK);                              /* with an init pending */
}

/* A key in a verify lease is destroyed by another application: the destroy waits for the lease,
 * so the C_VerifyInit after it is a real init (KEY_HANDLE_INVALID). Were the destroy not to wait,
 * the client would still hold the lease, answer OK, and the re-arm would verify with the kept
 * operation. */
static void verify_lease_holds_off_destroy(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(p11_open(f, slot, CKU_USER, P11_USER_PIN, &s), CKR_OK);
    CK_BBOOL yes = CK_TRUE;
    const char *label = "vlease-1";
    CK_ATTRIBUTE tpub[] = { { CKA_TOKEN, &yes, 1 }, { CKA_VERIFY, &yes, 1 },
                            { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_LABEL, (void *)label, strlen(label) } };
    CK_ATTRIBUTE tpriv[] = { { CKA_SIGN, &yes, 1 } };
    CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_OBJECT_HANDLE pub, priv;
    assert_rv(f->C_GenerateKeyPair(s, &gen, tpub, 4, tpriv, 1, &pub, &priv), CKR_OK);
    unsigned char sig[80];
    CK_ULONG len;
    make_sig(s, priv, 5, sig, &len);
    assert_rv(f->C_VerifyInit(s, &ecdsa, pub), CKR_OK);
    assert_rv(verify_dig(s, 5, sig, len), CKR_OK);   /* a lease of LEASE_MS */
    destroy_in_child(label);
    assert_rv(f->C_VerifyInit(s, &ecdsa, pub), CKR_KEY_HANDLE_INVALID);
    assert_rv(f->C_CloseSession(s), CKR_OK);
}

/* Under a lease C_VerifyInit asks nothing: with cofferd killed right after a verification it
 * still answers OK, and the C_Verify that carries it reports the loss. */
static void verify_lease_init_is_local(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    unsigned char sig[80];
    CK_ULONG len;
    make_sig(s, ec_priv, 6, sig, &len);
    assert_rv(f->C_VerifyInit(s, &ecdsa, ec_pub), CKR_OK);
    assert_rv(verify_dig(s, 6, sig, len), CKR_OK);
    stop_cofferd(SIGKILL);
    assert_rv(f->C_VerifyInit(s, &ecdsa, ec_pub), CKR_OK);
    CK_RV rv = verify_dig(s, 6, sig, len);
    if (!gone_rv(rv))
        fail_msg("C_Verify after the server died returned %s", p11_rv_name(rv));
    cofferd_back(7);
}

/* ---- finds answered at init (protocol minor 4, FIND_OBJECTS_FETCH) --------------------------- */
/* n session data objects labelled label on s. */
static void make_data(CK_SESSION_HANDLE s, const char *label, int n)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    for (int i = 0; i < n; i++) {
        CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, (void *)label, strlen(label) },
                             { CKA_VALUE, &i, sizeof i } };
        CK_OBJECT_HANDLE o;
        assert_rv(f->C_CreateObject(s, t, 3, &o), CKR_OK);
    }
}

/* All the handles a find of label gives, max at a time; their count. */
static CK_ULONG find_all(CK_SESSION_HANDLE s, const char *label, CK_ULONG max, CK_OBJECT_HANDLE *seen)
{
    CK_ATTRIBUTE t[] = { { CKA_LABEL, (void *)label, strlen(label) } };
    assert_rv(f->C_FindObjectsInit(s, t, 1), CKR_OK);
    assert_rv(f->C_FindObjectsInit(s, t, 1), CKR_OPERATION_ACTIVE);
    CK_ULONG total = 0, n;
    do {
        assert_rv(f->C_FindObjects(s, seen + total, max, &n), CKR_OK);
        assert_true(n <= max);
        total += n;
    } while (n > 0 && total < 200);
    assert_rv(f->C_FindObjects(s, seen, max, &n), CKR_OK);   /* used up: stays 0 */
    assert_int_equal(n, 0);
    assert_rv(f->C_FindObjectsFinal(s), CKR_OK);
    assert_rv(f->C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    return total;
}

/* Finds of 0, 1, 64 (all of them in the first answer, and the server's find kept for the rest)
 * and 70 objects give every handle once, in any page size; a second init is OPERATION_ACTIVE, a
 * final without a find OPERATION_NOT_INITIALIZED; a session closed in the middle of a find is fine. */
static void find_fetch_semantics(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    make_data(s, "found-1", 1);
    make_data(s, "found-64", 64);
    make_data(s, "found-70", 70);
    CK_OBJECT_HANDLE seen[256];
    assert_int_equal(find_all(s, "found-none", 10, seen), 0);
    assert_int_equal(find_all(s, "found-1", 10, seen), 1);
    const struct { const char *label; CK_ULONG n; } cases[] = { { "found-64", 64 }, { "found-70", 70 } };
    const CK_ULONG pages[] = { 1, 7, 64, 100 };
    for (size_t c = 0; c < 2; c++)
        for (size_t p = 0; p < 4; p++) {
            assert_int_equal(find_all(s, cases[c].label, pages[p], seen), cases[c].n);
            for (CK_ULONG i = 0; i < cases[c].n; i++)
                for (CK_ULONG j = 0; j < i; j++)
                    assert_true(seen[i] != seen[j]);
        }
    CK_ULONG n;
    assert_rv(f->C_FindObjects(s, seen, 1, &n), CKR_OPERATION_NOT_INITIALIZED);
    CK_ATTRIBUTE t[] = { { CKA_LABEL, "found-70", 8 } };
    assert_rv(f->C_FindObjectsInit(s, t, 1), CKR_OK);
    assert_rv(f->C_FindObjects(s, seen, 3, &n), CKR_OK);
    assert_int_equal(n, 3);
    assert_rv(f->C_CloseSession(s), CKR_OK);
    assert_rv(open_user_session(&s), CKR_OK);
    assert_rv(f->C_FindObjectsInit(s, t, 1), CKR_OK);   /* the closed session's find is gone */
    assert_rv(f->C_FindObjects(s, seen, 3, &n), CKR_OK);
    assert_int_equal(n, 0);                              /* its objects went with it */
    assert_rv(f->C_FindObjectsFinal(s), CKR_OK);

    /* more finds at once than the module's table holds: those without room use the plain calls */
    make_data(s, "found-t", 1);
    enum { MANY = 80 };
    CK_SESSION_HANDLE ss[MANY];
    CK_ATTRIBUTE tt[] = { { CKA_LABEL, "found-t", 7 } };
    for (int i = 0; i < MANY; i++) {
        assert_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ss[i]), CKR_OK);
        assert_rv(f->C_FindObjectsInit(ss[i], tt, 1), CKR_OK);
    }
    for (int i = 0; i < MANY; i++) {
        assert_rv(f->C_FindObjectsInit(ss[i], tt, 1), CKR_OPERATION_ACTIVE);
        assert_rv(f->C_FindObjects(ss[i], seen, 4, &n), CKR_OK);
        assert_int_equal(n, 1);
        assert_rv(f->C_FindObjects(ss[i], seen, 4, &n), CKR_OK);
        assert_int_equal(n, 0);
        assert_rv(f->C_FindObjectsFinal(ss[i]), CKR_OK);
        assert_rv(f->C_CloseSession(ss[i]), CKR_OK);
    }
    assert_rv(f->C_CloseSession(s), CKR_OK);
}

/* A find whose result came with its init asks nothing more: with cofferd killed after
 * C_FindObjectsInit, C_FindObjects still gives the key and C_FindObjectsFinal returns OK; the
 * next call that needs the server reports the loss. A lookup by label is one round trip. */
static void find_fetch_is_one_round_trip(void **state)
{
    (void)state;
    NEED_COFFERD();
    CK_SESSION_HANDLE s;
    assert_rv(open_user_session(&s), CKR_OK);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls } };
    assert_rv(f->C_FindObjectsInit(s, t, 1), CKR_OK);
    stop_cofferd(SIGKILL);
    CK_OBJECT_HANDLE o[8];
    CK_ULONG n = 0;
    assert_rv(f->C_FindObjects(s, o, 8, &n), CKR_OK);
    assert_true(n >= 1);
    assert_rv(f->C_FindObjectsFinal(s), CKR_OK);
    CK_SESSION_INFO si;
    CK_RV rv = f->C_GetSessionInfo(s, &si);
    if (!gone_rv(rv))
        fail_msg("C_GetSessionInfo after the server died returned %s", p11_rv_name(rv));
    cofferd_back(8);
}

/* ---- a scripted server: the pool's rules, whatever cofferd does today -------------------------- */
/* A minimal server of the wire protocol (docs/protocol.md) on its own socket, in this process:
 * HELLO_OK with or without application tokens (it keeps one application, forgotten when its last
 * connection closes, as cofferd does), and answers to GET_SLOT_LIST and GET_SESSION_INFO only. It
 * counts what the pool does: connections open at once, applications made, requests seen. */
enum { MOCK_MAX_CONNS = 64 };
typedef struct {
    char path[400];
    int lfd;
    pthread_t acceptor;
    pthread_mutex_t mu;
    bool tokens;          /* names applications in HELLO_OK (minor 1); else minor 0 */
    unsigned delay_us;    /* per request, so that calls overlap */
    uint8_t app;          /* the live application's token (16 times this byte), 0: none */
    uint8_t next_app;
    int cur, max, new_apps, requests;
    bool drop_next;       /* close the connection on the next request, unanswered */
    bool stall;           /* take requests and never answer them */
    bool drop_hello;      /* close connections at their HELLO, unanswered (a server stopping) */
    int fds[MOCK_MAX_CONNS];
} mock_srv;
static mock_srv mock;

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}
static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static bool read_full(int fd, unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* One frame: u32 length, u8 type, u32 id, payload. */
static bool send_frame(int fd, int type, uint32_t id, const unsigned char *payload, size_t n)
{
    unsigned char buf[128];
    put_be(buf, 5 + n, 4);
    buf[4] = (unsigned char)type;
    put_be(buf + 5, id, 4);
    memcpy(buf + 9, payload, n);
    return send(fd, buf, 9 + n, MSG_NOSIGNAL) == (ssize_t)(9 + n);
}

/* HELLO in, HELLO_OK out: joins the live application if the HELLO names it, else makes one. */
static bool mock_hello(int fd, const unsigned char *pl, size_t n)
{
    const uint16_t one = 1;
    uint32_t abi = (*(const uint8_t *)&one == 1 ? 1u : 0u) | (sizeof(CK_ULONG) == 8 ? 2u : 0u);
    unsigned char ok[28];
    memcpy(ok, "CFR1", 4);
    put_be(ok + 4, 1, 2);
    put_be(ok + 6, mock.tokens ? 1 : 0, 2);
    put_be(ok + 8, abi, 4);
    pthread_mutex_lock(&mock.mu);
    bool drop = mock.drop_hello;
    pthread_mutex_unlock(&mock.mu);
    if (drop)
        return false;
    if (!mock.tokens)
        return send_frame(fd, 2, 0, ok, 12);
    pthread_mutex_lock(&mock.mu);
    bool joins = n == 28 && mock.app != 0;
    for (size_t i = 12; joins && i < 28; i++)
        joins = pl[i] == mock.app;
    if (!joins) {
        mock.app = ++mock.next_app;
        mock.new_apps++;
    }
    memset(ok + 12, mock.app, 16);
    pthread_mutex_unlock(&mock.mu);
    return send_frame(fd, 2, 0, ok, 28);
}

/* A REQUEST: GET_SLOT_LIST (count 1, no items) or GET_SESSION_INFO (slot 1, RW public). */
static bool mock_request(int fd, uint32_t id, const unsigned char *pl, size_t n)
{
    pthread_mutex_lock(&mock.mu);
    mock.requests++;
    bool drop = mock.drop_next, stall = mock.stall;
    mock.drop_next = false;
    pthread_mutex_unlock(&mock.mu);
    if (drop || n < 4)
        return false;
    if (stall)
        return true;
    if (mock.delay_us) {
        struct timespec t = { 0, (long)mock.delay_us * 1000 };
        nanosleep(&t, NULL);
    }
    uint32_t fn = (uint32_t)get_be(pl, 4);
    unsigned char out[64];
    put_be(out, fn, 4);
    put_be(out + 4, 0, 4);   /* OK */
    out[8] = 1;              /* has outputs */
    if (fn == 1) {           /* LIST: u64 count, u8 has_items */
        put_be(out + 9, 1, 8);
        out[17] = 0;
        return send_frame(fd, 4, id, out, 18);
    }
    if (fn == 14) {          /* SESSION_INFO: slot, state, flags, device error */
        put_be(out + 9, 1, 8);
        put_be(out + 17, CKS_RW_PUBLIC_SESSION, 8);
        put_be(out + 25, CKF_SERIAL_SESSION | CKF_RW_SESSION, 8);
        put_be(out + 33, 0, 8);
        return send_frame(fd, 4, id, out, 41);
    }
    return false;
}

static void *mock_conn(void *arg)
{
    int fd = (int)(long)arg;
    bool hello = false;
    for (;;) {
        unsigned char head[9], pl[512];
        if (!read_full(fd, head, 4))
            break;
        size_t len = (size_t)get_be(head, 4);
        if (len < 5 || len - 5 > sizeof pl || !read_full(fd, head + 4, 5) || !read_full(fd, pl, len - 5))
            break;
        uint32_t id = (uint32_t)get_be(head + 5, 4);
        bool ok = !hello ? head[4] == 1 && mock_hello(fd, pl, len - 5) : head[4] == 3 && mock_request(fd, id, pl, len - 5);
        hello = true;
        if (!ok)
            break;
    }
    pthread_mutex_lock(&mock.mu);
    for (int i = 0; i < MOCK_MAX_CONNS; i++)
        if (mock.fds[i] == fd)
            mock.fds[i] = -1;
    close(fd);
    if (--mock.cur == 0)
        mock.app = 0;   /* the application ends with its last connection */
    pthread_mutex_unlock(&mock.mu);
    return NULL;
}

static void *mock_accept(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(mock.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_mutex_lock(&mock.mu);
        int free_at = -1;
        for (int i = 0; i < MOCK_MAX_CONNS && free_at < 0; i++)
            if (mock.fds[i] < 0)
                free_at = i;
        if (free_at < 0) {
            pthread_mutex_unlock(&mock.mu);
            close(fd);
            continue;
        }
        mock.fds[free_at] = fd;
        if (++mock.cur > mock.max)
            mock.max = mock.cur;
        pthread_mutex_unlock(&mock.mu);
        pthread_t th;
        if (pthread_create(&th, NULL, mock_conn, (void *)(long)fd) == 0)
            pthread_detach(th);
    }
}

static int mock_get(const int *field)
{
    pthread_mutex_lock(&mock.mu);
    int v = *field;
    pthread_mutex_unlock(&mock.mu);
    return v;
}

/* The server ends every connection (an idle timeout, say). */
static void mock_close_all(void)
{
    pthread_mutex_lock(&mock.mu);
    for (int i = 0; i < MOCK_MAX_CONNS; i++)
        if (mock.fds[i] >= 0)
            shutdown(mock.fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&mock.mu);
}

static bool mock_wait_conns(int want)
{
    for (int i = 0; i < 200; i++) {
        if (mock_get(&mock.cur) == want)
            return true;
        sleep_ms(10);
    }
    return false;
}

/* Starts the scripted server and points the module at it (C_Finalize, new [client], C_Initialize). */
static const char *mock_conf_extra = "";   /* more [client] lines for the next mock_start */

static void mock_start(bool tokens, unsigned delay_us)
{
    pthread_mutex_init(&mock.mu, NULL);
    mock.tokens = tokens;
    mock.delay_us = delay_us;
    mock.app = mock.next_app = 0;
    mock.cur = mock.max = mock.new_apps = mock.requests = 0;
    mock.drop_next = false;
    mock.stall = false;
    mock.drop_hello = false;
    for (int i = 0; i < MOCK_MAX_CONNS; i++)
        mock.fds[i] = -1;
    snprintf(mock.path, sizeof mock.path, "%s/mock.sock", st.dir);
    (void)unlink(mock.path);
    mock.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(mock.lfd >= 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%.107s", mock.path);
    assert_int_equal(bind(mock.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(mock.lfd, 64), 0);
    assert_int_equal(pthread_create(&mock.acceptor, NULL, mock_accept, NULL), 0);
    (void)f->C_Finalize(NULL);
    FILE *fp = fopen(st.conf, "w");
    assert_non_null(fp);
    fprintf(fp, "[client]\nserver = unix:%s\n%s", mock.path, mock_conf_extra);
    fclose(fp);
    CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
    assert_rv(f->C_Initialize(&ia), CKR_OK);
}

/* C_Finalize must close every connection of the pool; then the server stops. */
static void mock_stop(void)
{
    assert_rv(f->C_Finalize(NULL), CKR_OK);
    bool closed = mock_wait_conns(0);
    shutdown(mock.lfd, SHUT_RDWR);
    pthread_join(mock.acceptor, NULL);
    close(mock.lfd);
    mock_close_all();
    (void)mock_wait_conns(0);
    (void)unlink(mock.path);
    if (!closed)
        fail_msg("C_Finalize left %d connection(s) open", mock_get(&mock.cur));
}

enum { MOCK_THREADS = 8, MOCK_CALLS = 40 };
static void *info_caller(void *arg)
{
    (void)arg;
    for (int i = 0; i < MOCK_CALLS; i++) {
        CK_SESSION_INFO si;
        CHECK(f->C_GetSessionInfo(1, &si));
    }
    return NULL;
}

static void mock_workload(int threads)
{
    failures = 0;
    pthread_t th[MOCK_THREADS];
    for (long i = 0; i < threads; i++)
        assert_int_equal(pthread_create(&th[i], NULL, info_caller, (void *)i), 0);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(failures, 0);
}

#define NEED_MODULE() \
    do { \
        if (!f) \
            skip(); \
    } while (0)

/* A server that names no application: one connection, the threads take turns on it. */
static void mock_without_tokens_one_connection(void **state)
{
    (void)state;
    NEED_MODULE();
    mock_start(false, 300);
    mock_workload(MOCK_THREADS);
    assert_int_equal(mock_get(&mock.max), 1);
    mock_stop();
}

/* With tokens: several connections, all in the one application (only the first made one). */
static void mock_with_tokens_pool_joins(void **state)
{
    (void)state;
    NEED_MODULE();
    mock_start(true, 300);
    mock_workload(MOCK_THREADS);
    int max = mock_get(&mock.max);
    if (max < 2)
        fail_msg("%d threads at once used %d connection(s)", MOCK_THREADS, max);
    assert_int_equal(mock_get(&mock.new_apps), 1);
    mock_stop();
}

/* The server closes the idle connections (and so ends the application): the next call reconnects
 * silently, and the pool adopts the new application. */
static void mock_idle_close_is_silent(void **state)
{
    (void)state;
    NEED_MODULE();
    mock_start(true, 300);
    mock_workload(4);
    sleep_ms(700);   /* idle: cofferd's idle timeout is at least 1 s (the pool trusts younger ones) */
    mock_close_all();
    assert_true(mock_wait_conns(0));
    CK_SESSION_INFO si;
    assert_rv(f->C_GetSessionInfo(1, &si), CKR_OK);
    assert_int_equal(mock_get(&mock.new_apps), 2);
    mock_workload(4);   /* the new application's pool works */
    assert_int_equal(mock_get(&mock.new_apps), 2);
    mock_stop();
}

/* A connection that fails during a call: DEVICE_REMOVED, then session calls fail without reaching
 * the server until a slot-level call reconnects. */
/* [client] timeout: a server that takes a request and never answers it. The call gives up after
 * the timeout (1 s here) with DEVICE_REMOVED, as for a lost connection, instead of hanging; a
 * slot-level call then reconnects. */
static void *stalled_call(void *arg)
{
    CK_SESSION_INFO si;
    *(CK_RV *)arg = f->C_GetSessionInfo(1, &si);
    return NULL;
}

static void mock_timeout_gives_up(void **state)
{
    (void)state;
    NEED_MODULE();
    mock_conf_extra = "timeout = 1\n";
    mock_start(true, 0);
    mock_conf_extra = "";
    CK_SESSION_INFO si;
    assert_rv(f->C_GetSessionInfo(1, &si), CKR_OK);
    pthread_mutex_lock(&mock.mu);
    mock.stall = true;
    pthread_mutex_unlock(&mock.mu);
    CK_RV rv = CKR_GENERAL_ERROR;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stalled_call, &rv), 0);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;   /* far beyond the timeout: a hang, not a slow machine */
    int joined = pthread_timedjoin_np(t, NULL, &deadline);
    pthread_mutex_lock(&mock.mu);
    mock.stall = false;
    pthread_mutex_unlock(&mock.mu);
    if (joined != 0) {
        mock_stop();   /* closes the connection: the call returns */
        pthread_join(t, NULL);
        fail_msg("a call to a server that never answers did not give up");
    }
    assert_rv(rv, CKR_DEVICE_REMOVED);
    CK_ULONG n = 0;
    assert_rv(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_rv(f->C_GetSessionInfo(1, &si), CKR_OK);
    mock_stop();
}

static void mock_lost_connection_rule(void **state)
{
    (void)state;
    NEED_MODULE();
    mock_start(true, 0);
    CK_SESSION_INFO si;
    assert_rv(f->C_GetSessionInfo(1, &si), CKR_OK);
    pthread_mutex_lock(&mock.mu);
    mock.drop_next = true;
    pthread_mutex_unlock(&mock.mu);
    assert_rv(f->C_GetSessionInfo(1, &si), CKR_DEVICE_REMOVED);
    int seen = mock_get(&mock.requests);
    assert_rv(f->C_GetSessionInfo(1, &si), CKR_DEVICE_REMOVED);
    assert_int_equal(mock_get(&mock.requests), seen);   /* answered by the module */
    CK_ULONG n = 0;
    assert_rv(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_int_equal(n, 1);
    assert_rv(f->C_GetSessionInfo(1, &si), CKR_OK);
    mock_stop();
}

/* A server that closes the connection at our HELLO is going away (cofferd stopping or restarting
 * between accept and answer): DEVICE_REMOVED, so that the application retries, and the next call
 * connects once it answers again. */
static void mock_cut_handshake_is_removed(void **state)
{
    (void)state;
    NEED_MODULE();
    mock_start(true, 0);
    pthread_mutex_lock(&mock.mu);
    mock.drop_hello = true;
    pthread_mutex_unlock(&mock.mu);
    CK_ULONG n = 0;
    assert_rv(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_DEVICE_REMOVED);
    pthread_mutex_lock(&mock.mu);
    mock.drop_hello = false;
    pthread_mutex_unlock(&mock.mu);
    assert_rv(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_int_equal(n, 1);
    mock_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eight_threads_sign),
        cmocka_unit_test(login_is_shared),
        cmocka_unit_test(session_moves_between_threads),
        cmocka_unit_test(fork_child_has_its_own_connections),
        cmocka_unit_test(lease_keeps_init_semantics),
        cmocka_unit_test(lease_init_flushed_at_logout),
        cmocka_unit_test(lease_holds_off_destroy),
        cmocka_unit_test(lease_wait_holds_no_worker),
        cmocka_unit_test(lease_init_is_local),
        cmocka_unit_test(verify_lease_keeps_init_semantics),
        cmocka_unit_test(verify_lease_holds_off_destroy),
        cmocka_unit_test(verify_lease_init_is_local),
        cmocka_unit_test(find_fetch_semantics),
        cmocka_unit_test(find_fetch_is_one_round_trip),
        cmocka_unit_test(server_restart),
        cmocka_unit_test(mock_without_tokens_one_connection),
        cmocka_unit_test(mock_with_tokens_pool_joins),
        cmocka_unit_test(mock_idle_close_is_silent),
        cmocka_unit_test(mock_lost_connection_rule),
        cmocka_unit_test(mock_timeout_gives_up),
        cmocka_unit_test(mock_cut_handshake_is_removed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
