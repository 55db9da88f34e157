/* stdio_bridge.c: a test-only bridge that lets tpm2-tools drive the coffer TPM engine before
 * cofferd exists, through tpm2-tss's command TCTI (tss2-tcti-cmd runs a program and talks the TPM
 * command stream over its stdin/stdout).
 *
 *   stdio_bridge serve SOCK STATEFILE   holds one powered TPM instance (state persisted to
 *                                       STATEFILE) and answers commands on the unix socket SOCK;
 *   stdio_bridge relay SOCK             copies commands from stdin to SOCK and responses back:
 *   tpm2_getrandom -T "cmd:stdio_bridge relay SOCK" 8
 *
 * Not part of the build (tests/CMakeLists.txt does not glob this folder); build by hand:
 *   cc -I src tests/tpm/stdio_bridge.c build-tpm/src/libcoffer_{tpm,crypto,base}.a -ltss2-mu -lcrypto \
 *      -linih -lpthread -o build-tpm/stdio_bridge */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "tpm/tpm.h"

static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* One frame (a command or a response): 10-byte header whose bytes 2..5 are the total size. */
static ssize_t read_frame(int fd, uint8_t *buf, size_t cap)
{
    if (read_full(fd, buf, 10) != 0)
        return -1;
    size_t size = (size_t)buf[2] << 24 | (size_t)buf[3] << 16 | (size_t)buf[4] << 8 | buf[5];
    if (size < 10 || size > cap)
        return -1;
    if (read_full(fd, buf + 10, size - 10) != 0)
        return -1;
    return (ssize_t)size;
}

static int sock_at(const char *path, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s", path);
    return socket(AF_UNIX, SOCK_STREAM, 0);
}

static cf_err persist(void *ctx, const uint8_t *blob, size_t len)
{
    const char *path = ctx;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return CF_E_IO;
    bool ok = fwrite(blob, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 ? CF_OK : CF_E_IO;
}

static int serve(const char *sock, const char *state)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    FILE *f = fopen(state, "rb");
    if (f) {
        blob = malloc(1 << 20);
        len = fread(blob, 1, 1 << 20, f);
        fclose(f);
    }
    tpm_instance *t;
    cf_err e = tpm_instance_new("bridge", blob, len, persist, (void *)state, &t);
    free(blob);
    if (e != CF_OK) {
        fprintf(stderr, "state: %s\n", cf_err_name(e));
        return 1;
    }
    tpm_power_on(t);
    struct sockaddr_un a;
    int s = sock_at(sock, &a);
    unlink(sock);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 4) != 0) {
        perror("bind");
        return 1;
    }
    uint8_t cmd[TPM_MAX_COMMAND_SIZE], resp[TPM_MAX_RESPONSE_SIZE];
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        ssize_t n;
        while ((n = read_frame(c, cmd, sizeof cmd)) > 0) {
            if (n == 10 && memcmp(cmd, "\0\0\0\0\0\x0a" "STOP", 10) == 0) {
                close(c);
                tpm_instance_free(t);
                return 0;
            }
            size_t r = tpm_execute(t, 0, cmd, (size_t)n, resp, sizeof resp);
            if (write_full(c, resp, r) != 0)
                break;
        }
        close(c);
    }
}

static int relay(const char *sock)
{
    struct sockaddr_un a;
    int s = sock_at(sock, &a);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        return 1;
    }
    uint8_t buf[TPM_MAX_COMMAND_SIZE];
    ssize_t n;
    while ((n = read_frame(0, buf, sizeof buf)) > 0) {
        if (write_full(s, buf, (size_t)n) != 0)
            return 1;
        if ((n = read_frame(s, buf, sizeof buf)) < 0 || write_full(1, buf, (size_t)n) != 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "serve") == 0)
        return serve(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "relay") == 0)
        return relay(argv[2]);
    fprintf(stderr, "usage: %s serve SOCK STATEFILE | relay SOCK\n", argv[0]);
    return 2;
}
