/* server.c: listeners, the accept thread, the worker threads, and shutdown (see daemon.h).
 *
 * Workers take turns polling the listeners (leader/follower, below), are started on demand and
 * kept for reuse, up to MAX_WORKERS: swtpm's TCTI opens a connection per command, so a thread per
 * connection, or a hand-off from an accept thread, would be paid per command. Shutdown wakes a
 * worker blocked in recv() with shutdown(SHUT_RD): a command being executed still finishes and
 * its answer is still sent. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "base/log.h"
#include "daemon/daemon.h"

#define MAX_LISTENERS (CF_TPM_MAX * 4 * 4) /* 4 channels an instance, a few addresses each */
#define MAX_WORKERS 256
#define SEND_TIMEOUT_S 10                  /* a client that does not read its answers is dropped */
#define WORKER_STACK (1024 * 1024)

typedef struct {
    int fd;
    cofferd_instance *in;
    cfd_proto proto;
    bool tcp;
    char path[CF_SOCK_PATH_MAX + 8]; /* Unix socket to remove at stop */
    char where[CF_HOST_MAX + 64];
} listener;

typedef struct {
    int fd;
    cofferd_instance *in;
    cfd_proto proto;
    bool tcp;
} pending;

struct cofferd_server {
    listener ls[MAX_LISTENERS];
    size_t n_ls;
    int wake[2];                    /* written at stop: wakes the leader */

    pthread_mutex_t mu;
    pthread_cond_t cv;              /* idle workers wait here to lead */
    pthread_t workers[MAX_WORKERS];
    int active[MAX_WORKERS];        /* the fd worker i serves, -1 when none */
    size_t n_workers, n_idle;
    bool has_leader, started, stopping;
};

/* ---- listeners ------------------------------------------------------------------------------ */
static cf_err add_listener(cofferd_server *s, int fd, cofferd_instance *in, cfd_proto proto, bool tcp,
                           const char *path, const char *where)
{
    if (s->n_ls == MAX_LISTENERS) {
        close(fd);
        return CF_E_OVERFLOW;
    }
    listener *l = &s->ls[s->n_ls++];
    memset(l, 0, sizeof *l);
    l->fd = fd;
    l->in = in;
    l->proto = proto;
    l->tcp = tcp;
    if (path)
        snprintf(l->path, sizeof l->path, "%s", path);
    snprintf(l->where, sizeof l->where, "%s", where);
    return CF_OK;
}

static cf_err listen_tcp(cofferd_server *s, cofferd_instance *in, cfd_proto proto, const char *host,
                         unsigned port, char *err, size_t errlen)
{
    char portstr[8], where[CF_HOST_MAX + 16];
    snprintf(portstr, sizeof portstr, "%u", port);
    size_t hl = strnlen(host, CF_HOST_MAX - 1);
    if (memchr(host, ':', hl))
        snprintf(where, sizeof where, "[%.*s]:%u", (int)hl, host, port);
    else
        snprintf(where, sizeof where, "%.*s:%u", (int)hl, host, port);
    struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "tpm %s: %s %s: cannot resolve the host: %s", in->name, cfd_proto_name(proto), where,
                 gai_strerror(rc));
        return CF_E_CONFIG;
    }
    size_t bound = 0;
    cf_err rv = CF_OK;
    for (struct addrinfo *a = res; a && rv == CF_OK; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (a->ai_family == AF_INET6) /* so that 0.0.0.0 and :: (or 127.0.0.1 and ::1) bind side by side */
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            int e = errno;
            close(fd);
            if (e == EADDRNOTAVAIL || e == EAFNOSUPPORT) /* e.g. ::1 on a host without IPv6 */
                continue;
            snprintf(err, errlen, "tpm %s: %s %s: cannot listen: %s", in->name, cfd_proto_name(proto), where, strerror(e));
            rv = CF_E_IO;
            break;
        }
        rv = add_listener(s, fd, in, proto, true, NULL, where);
        if (rv != CF_OK)
            snprintf(err, errlen, "too many listening sockets (at most %d)", MAX_LISTENERS);
        bound++;
    }
    freeaddrinfo(res);
    if (rv == CF_OK && bound == 0) {
        snprintf(err, errlen, "tpm %s: %s %s: no address of this host can be bound", in->name, cfd_proto_name(proto), where);
        rv = CF_E_IO;
    }
    return rv;
}

static cf_err listen_unix(cofferd_server *s, cofferd_instance *in, cfd_proto proto, const char *path,
                          char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "tpm %s: %s: the socket path is too long: %s", in->name, cfd_proto_name(proto), path);
        return CF_E_CONFIG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "tpm %s: %s: %s exists and is not a socket", in->name, cfd_proto_name(proto), path);
            return CF_E_CONFIG;
        }
        /* a socket left by a daemon that died is removed; one that answers is in use */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            snprintf(err, errlen, "tpm %s: %s: %s is in use by another process", in->name, cfd_proto_name(proto), path);
            return CF_E_IO;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "tpm %s: %s: cannot listen on %s: %s", in->name, cfd_proto_name(proto), path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CF_E_IO;
    }
    char where[CF_SOCK_PATH_MAX + 16];
    snprintf(where, sizeof where, "unix:%s", path);
    cf_err rv = add_listener(s, fd, in, proto, false, path, where);
    if (rv != CF_OK)
        snprintf(err, errlen, "too many listening sockets (at most %d)", MAX_LISTENERS);
    return rv;
}

static cf_err listen_instance(cofferd_server *s, cofferd_instance *in, const cf_tpm_config *cfg, char *err, size_t errlen)
{
    if (cfg->mssim.kind == CF_LISTEN_TCP) {
        CF_TRY(listen_tcp(s, in, CFD_MSSIM_COMMAND, cfg->mssim.host, cfg->mssim.port, err, errlen));
        CF_TRY(listen_tcp(s, in, CFD_MSSIM_PLATFORM, cfg->mssim.host, cfg->mssim.port + 1u, err, errlen));
    }
    if (cfg->swtpm.kind == CF_LISTEN_TCP) {
        CF_TRY(listen_tcp(s, in, CFD_SWTPM_DATA, cfg->swtpm.host, cfg->swtpm.port, err, errlen));
        CF_TRY(listen_tcp(s, in, CFD_SWTPM_CTRL, cfg->swtpm.host, cfg->swtpm.port + 1u, err, errlen));
    } else if (cfg->swtpm.kind == CF_LISTEN_UNIX) {
        char ctrl[CF_SOCK_PATH_MAX + 8];
        snprintf(ctrl, sizeof ctrl, "%s.ctrl", cfg->swtpm.path);
        CF_TRY(listen_unix(s, in, CFD_SWTPM_DATA, cfg->swtpm.path, err, errlen));
        CF_TRY(listen_unix(s, in, CFD_SWTPM_CTRL, ctrl, err, errlen));
    }
    return CF_OK;
}

static void close_listeners(cofferd_server *s)
{
    for (size_t i = 0; i < s->n_ls; i++) {
        if (s->ls[i].fd >= 0)
            close(s->ls[i].fd);
        s->ls[i].fd = -1;
        if (s->ls[i].path[0])
            unlink(s->ls[i].path);
        s->ls[i].path[0] = 0;
    }
}

cf_err cofferd_server_new(cofferd_instance *const *instances, const cf_tpm_config *const *cfgs, size_t n,
                          cofferd_server **out, char *err, size_t errlen)
{
    cofferd_server *s = calloc(1, sizeof *s);
    CF_ENSURE(s, CF_E_NOMEM);
    s->wake[0] = s->wake[1] = -1;
    for (size_t i = 0; i < MAX_WORKERS; i++)
        s->active[i] = -1;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return CF_E_INTERNAL;
    }
    pthread_cond_init(&s->cv, NULL);
    cf_err rv = CF_OK;
    if (pipe2(s->wake, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        rv = CF_E_IO;
    }
    for (size_t i = 0; i < n && rv == CF_OK; i++)
        rv = listen_instance(s, instances[i], cfgs[i], err, errlen);
    if (rv != CF_OK) {
        cofferd_server_free(s);
        return rv;
    }
    for (size_t i = 0; i < s->n_ls; i++)
        cf_info("tpm %s: %s channel listening on %s", s->ls[i].in->name, cfd_proto_name(s->ls[i].proto), s->ls[i].where);
    *out = s;
    return CF_OK;
}

/* ---- workers (leader/follower) ------------------------------------------------------------- */
/* One idle worker at a time, the leader, polls the listeners. When it accepts a connection it
 * hands leadership to an idle worker (or starts one) and serves the connection itself, so a
 * connection reaches its worker without a second thread wake-up (swtpm's TCTI pays one connection
 * per command). */
typedef struct {
    cofferd_server *s;
    size_t index;
} worker_arg;

static void *worker_main(void *arg);

/* Called with s->mu held. */
static void spawn_worker(cofferd_server *s)
{
    if (s->n_workers == MAX_WORKERS) {
        cf_warn("all %d worker threads are busy: new connections wait for one to end", MAX_WORKERS);
        return;
    }
    worker_arg *wa = malloc(sizeof *wa);
    if (!wa)
        return;
    wa->s = s;
    wa->index = s->n_workers;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    int e = pthread_create(&s->workers[s->n_workers], &attr, worker_main, wa);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        free(wa);
        cf_warn("cannot start a worker thread: %s", strerror(e));
        return;
    }
    s->n_workers++;
}

/* Polls the listeners once as the leader (s->mu not held). Returns an accepted connection, or
 * fd -1 when there was none (or shutdown was signalled). */
static pending lead(cofferd_server *s, struct pollfd *pfd)
{
    pending p = { .fd = -1 };
    int n = poll(pfd, s->n_ls + 1, -1);
    if (n < 0) {
        if (errno != EINTR)
            cf_error("poll: %s", strerror(errno));
        return p;
    }
    if (pfd[s->n_ls].revents)
        return p;
    for (size_t i = 0; i < s->n_ls; i++) {
        if (!(pfd[i].revents & POLLIN))
            continue;
        const listener *l = &s->ls[i];
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                cf_warn("tpm %s: accept on %s: %s", l->in->name, l->where, strerror(errno));
            if (errno == EMFILE || errno == ENFILE)
                usleep(100 * 1000); /* let connections end rather than spin */
            continue;
        }
        int one = 1;
        if (l->tcp)
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        p = (pending){ fd, l->in, l->proto, l->tcp };
        return p;
    }
    return p;
}

static void *worker_main(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    cofferd_server *s = wa.s;
    struct pollfd *pfd = calloc(s->n_ls + 1, sizeof *pfd);
    if (!pfd)
        return NULL;
    for (size_t i = 0; i < s->n_ls; i++)
        pfd[i] = (struct pollfd){ .fd = s->ls[i].fd, .events = POLLIN };
    pfd[s->n_ls] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->has_leader && !s->stopping) {
            s->n_idle++;
            pthread_cond_wait(&s->cv, &s->mu);
            s->n_idle--;
        }
        if (s->stopping)
            break;
        s->has_leader = true;
        pthread_mutex_unlock(&s->mu);

        pending p = lead(s, pfd);

        pthread_mutex_lock(&s->mu);
        s->has_leader = false;
        if (p.fd < 0)
            continue;
        if (s->stopping) {
            close(p.fd);
            break;
        }
        /* hand over leadership before serving */
        if (s->n_idle > 0)
            pthread_cond_signal(&s->cv);
        else
            spawn_worker(s);
        s->active[wa.index] = p.fd;
        pthread_mutex_unlock(&s->mu);

        cofferd_serve(p.in, p.proto, p.fd);

        pthread_mutex_lock(&s->mu);
        s->active[wa.index] = -1; /* under the lock: stop() never shuts down a reused fd number */
        close(p.fd);
    }
    pthread_mutex_unlock(&s->mu);
    free(pfd);
    return NULL;
}

cf_err cofferd_server_start(cofferd_server *s)
{
    pthread_mutex_lock(&s->mu);
    spawn_worker(s);
    bool ok = s->n_workers > 0;
    s->started = ok;
    pthread_mutex_unlock(&s->mu);
    return ok ? CF_OK : CF_E_INTERNAL;
}

void cofferd_server_stop(cofferd_server *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->started) {
        pthread_mutex_unlock(&s->mu);
        close_listeners(s);
        return;
    }
    s->stopping = true;
    size_t busy = 0;
    for (size_t i = 0; i < s->n_workers; i++)
        if (s->active[i] >= 0) {
            shutdown(s->active[i], SHUT_RD); /* recv() returns 0; a command in flight still answers */
            busy++;
        }
    pthread_cond_broadcast(&s->cv);
    size_t n = s->n_workers;
    pthread_mutex_unlock(&s->mu);
    ssize_t w;
    do /* wakes the leader out of poll (the pipe stays readable: any later leader sees it too) */
        w = write(s->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    if (busy)
        cf_info("waiting for %zu connection%s to finish", busy, busy == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
        pthread_join(s->workers[i], NULL);
    pthread_mutex_lock(&s->mu);
    s->n_workers = 0;
    s->started = false;
    pthread_mutex_unlock(&s->mu);
    close_listeners(s);
}

void cofferd_server_free(cofferd_server *s)
{
    if (!s)
        return;
    cofferd_server_stop(s);
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
