/* hsm_listen.c: the remote-HSM service's listening sockets and descriptor limit (see
 * hsm_server.h). Access to a Unix socket is the authentication there (the protocol has none of its
 * own), so its owner, group and mode are set before it listens: no client can connect through
 * wider permissions than asked. */
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "base/log.h"
#include "daemon/hsm_server.h"

cf_err hsrv_group_id(const char *name, gid_t *gid, char *err, size_t errlen)
{
    long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
    size_t len = hint > 0 ? (size_t)hint : 16384;
    for (;;) {
        char *buf = malloc(len);
        if (!buf)
            return CF_E_NOMEM;
        struct group g, *found = NULL;
        int e = getgrnam_r(name, &g, buf, len, &found);
        if (e == ERANGE && len < (1u << 20)) { /* a group with many members: a larger buffer */
            free(buf);
            len *= 2;
            continue;
        }
        if (found)
            *gid = found->gr_gid;
        free(buf);
        if (found)
            return CF_OK;
        if (e)
            snprintf(err, errlen, "[hsm] socket_group: cannot look up group %s: %s", name, strerror(e));
        else
            snprintf(err, errlen, "[hsm] socket_group: no group named %s on this system", name);
        return CF_E_CONFIG;
    }
}

int hsrv_listen_unix(const cf_listen *l, unsigned mode, gid_t gid, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->path);
    struct stat st;
    if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(l->path); /* a stale socket of an earlier run */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "[hsm] listen: cannot bind unix:%s: %s", l->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* the group first, then the mode: a group-readable mode never applies to the daemon's group */
    if (gid != (gid_t)-1 && chown(l->path, (uid_t)-1, gid) != 0) {
        snprintf(err, errlen, "[hsm] socket_group: cannot give unix:%s to group %u: %s", l->path, (unsigned)gid,
                 strerror(errno));
        goto fail;
    }
    if (chmod(l->path, (mode_t)mode) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "[hsm] listen: cannot set up unix:%s: %s", l->path, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    unlink(l->path);
    return -1;
}

int hsrv_listen_tcp(const cf_listen *l, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)l->port);
    int g = getaddrinfo(strcmp(l->host, "*") == 0 ? NULL : l->host, port, &hints, &ai);
    if (g != 0) {
        snprintf(err, errlen, "[hsm] listen: cannot resolve %s: %s", l->host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        snprintf(err, errlen, "[hsm] listen: cannot listen on tls:%s:%u: %s", l->host, (unsigned)l->port,
                 strerror(e ? e : EADDRNOTAVAIL));
    return fd;
}

void hsrv_raise_nofile(size_t want)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return;
    rlim_t goal = (rlim_t)want;
    if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < goal) {
        rlim_t old = r.rlim_cur;
        r.rlim_cur = r.rlim_max == RLIM_INFINITY || r.rlim_max > goal ? goal : r.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &r) == 0)
            cf_debug("hsm: open file limit raised from %llu to %llu", (unsigned long long)old,
                     (unsigned long long)r.rlim_cur);
    }
    if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < goal)
        cf_warn("hsm: the open file limit (%llu) is below what max_connections needs (%llu): connections past "
                "it wait in the backlog", (unsigned long long)r.rlim_cur, (unsigned long long)goal);
}
