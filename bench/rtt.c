/* rtt.c: the transport's own limit for the remote HSM benchmark (bench/run, part 5).
 *
 *   rtt [-s SECONDS] [-t THREADS,...] [-b BYTES]
 *
 * For each thread count N: N client threads, each with its own connection to its own echo
 * thread, send BYTES and wait for BYTES back, as the module and cofferd do for one PKCS#11 call
 * (no crypto, no protocol: the kernel's cost of a round trip and of the two wake-ups in it), each
 * side waiting as they do (a few yields, then a sleep in poll). Over
 * a Unix stream socket pair and over TCP on 127.0.0.1 (TCP_NODELAY, as TLS runs on). Prints
 *
 *   unix N ROUND_TRIPS_PER_SECOND
 *   tcp  N ROUND_TRIPS_PER_SECOND
 *
 * Client and echo threads share the machine's cores as the benchmark's application and cofferd
 * do, so a signature that costs one round trip (C_Sign carrying a C_SignInit under a lease)
 * cannot beat 1 / (1/in-process + 1/round trips): bench/run prints that bound beside the remote
 * figures. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_BYTES 4096

static size_t g_bytes = 128;
static atomic_bool g_stop;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static bool io_full(int fd, unsigned char *p, size_t n, bool writing)
{
    while (n) {
        ssize_t k = writing ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Waits for fd to be readable the way the module (5 yields, and while it is the process's only
 * call in flight another 50 us of them) and cofferd's workers (3) do: sched_yield()s with a look
 * in between, then a sleep in poll. */
static bool wait_in(int fd, int yields, double spin_s)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    double end = 0;
    for (int i = 0;; i++) {
        if (poll(&p, 1, 0) != 0)
            return true;
        if (i >= yields) {
            if (end == 0)
                end = now_s() + spin_s;
            else if (now_s() >= end)
                break;
        }
        sched_yield();
    }
    int n;
    do
        n = poll(&p, 1, -1);
    while (n < 0 && errno == EINTR);
    return n > 0;
}

static void *echo_main(void *arg)
{
    int fd = (int)(long)arg;
    unsigned char buf[MAX_BYTES];
    while (wait_in(fd, 3, 0) && io_full(fd, buf, g_bytes, false) && io_full(fd, buf, g_bytes, true)) {
    }
    close(fd);
    return NULL;
}

typedef struct {
    int fd;
    double spin_s;   /* the module's lone-call spin: a single client thread */
    unsigned long count;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    unsigned char buf[MAX_BYTES];
    memset(buf, 0x5a, sizeof buf);
    while (!atomic_load(&g_stop)) {
        if (!io_full(c->fd, buf, g_bytes, true) || !wait_in(c->fd, 5, c->spin_s) || !io_full(c->fd, buf, g_bytes, false))
            break;
        c->count++;
    }
    shutdown(c->fd, SHUT_RDWR);
    return NULL;
}

/* A connected pair: fds[0] the client's, fds[1] the echo's. */
static bool pair_unix(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0;
}

static bool pair_tcp(int lfd, const struct sockaddr_in *a, int fds[2])
{
    int one = 1;
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (const struct sockaddr *)a, sizeof *a) != 0)
        return false;
    fds[1] = accept(lfd, NULL, NULL);
    if (fds[1] < 0)
        return false;
    (void)setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return true;
}

/* Round trips per second with n client threads over kind ("unix" or "tcp"); < 0 on failure. */
static double run(const char *kind, int n, double secs)
{
    int lfd = -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (strcmp(kind, "tcp") == 0) {
        socklen_t al = sizeof a;
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, MAX_THREADS) != 0 ||
            getsockname(lfd, (struct sockaddr *)&a, &al) != 0)
            return -1;
    }
    client cl[MAX_THREADS];
    pthread_t ct[MAX_THREADS], et[MAX_THREADS];
    atomic_store(&g_stop, false);
    int made = 0;
    bool ok = true;
    for (; made < n && ok; made++) {
        int fds[2];
        ok = lfd < 0 ? pair_unix(fds) : pair_tcp(lfd, &a, fds);
        if (!ok)
            break;
        cl[made] = (client){ .fd = fds[0], .spin_s = n == 1 ? 50e-6 : 0 };
        pthread_create(&et[made], NULL, echo_main, (void *)(long)fds[1]);
    }
    double t0 = now_s();
    for (int i = 0; i < made; i++)
        pthread_create(&ct[i], NULL, client_main, &cl[i]);
    struct timespec d = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
    nanosleep(&d, NULL);
    atomic_store(&g_stop, true);
    unsigned long total = 0;
    for (int i = 0; i < made; i++) {
        pthread_join(ct[i], NULL);
        total += cl[i].count;
    }
    double took = now_s() - t0;
    for (int i = 0; i < made; i++) {
        pthread_join(et[i], NULL);
        close(cl[i].fd);
    }
    if (lfd >= 0)
        close(lfd);
    return ok ? (double)total / took : -1;
}

int main(int argc, char **argv)
{
    double secs = 2;
    char threads[256] = "1,2,8,32";
    int opt;
    while ((opt = getopt(argc, argv, "s:t:b:")) != -1) {
        switch (opt) {
        case 's':
            secs = atof(optarg);
            break;
        case 't':
            snprintf(threads, sizeof threads, "%s", optarg);
            break;
        case 'b':
            g_bytes = (size_t)atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: rtt [-s SECONDS] [-t THREADS,...] [-b BYTES]\n");
            return 2;
        }
    }
    if (secs <= 0 || g_bytes == 0 || g_bytes > MAX_BYTES) {
        fprintf(stderr, "rtt: SECONDS > 0, 1 <= BYTES <= %d\n", MAX_BYTES);
        return 2;
    }
    static const char *kinds[] = { "unix", "tcp" };
    for (size_t k = 0; k < 2; k++) {
        char list[256];
        snprintf(list, sizeof list, "%s", threads);
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int n = atoi(tok);
            if (n < 1 || n > MAX_THREADS) {
                fprintf(stderr, "rtt: THREADS: 1..%d\n", MAX_THREADS);
                return 2;
            }
            double r = run(kinds[k], n, secs);
            if (r < 0) {
                fprintf(stderr, "rtt: %s with %d threads: %s\n", kinds[k], n, strerror(errno));
                return 1;
            }
            printf("%s %d %.0f\n", kinds[k], n, r);
            fflush(stdout);
        }
    }
    return 0;
}
