/* config.c: see config.h. The key table below is the whole configuration surface: one row per
 * key, so documentation and parser cannot disagree about what exists. */
#include "base/config.h"
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { K_PATH, K_U32, K_LOGLEVEL, K_LISTEN, K_LISTEN_UNIX, K_SERVER, K_SERVER_LIST, K_MODE, K_NAME } key_kind;

typedef struct {
    const char *section, *name;
    key_kind kind;
    size_t off;
    uint32_t min, max;
} key_def;

#define OFF(f) offsetof(cf_config, f)
#define TOFF(f) offsetof(cf_tpm_config, f)
/* A section written "tpm.*" matches every [tpm.NAME]; its offsets are into that instance's
 * cf_tpm_config. */
static const key_def keys[] = {
    { "store", "dir", K_PATH, OFF(store_dir), 0, 0 },
    { "token", "user_pin_max_tries", K_U32, OFF(user_pin_max_tries), 0, 1000 },
    { "token", "so_pin_max_tries", K_U32, OFF(so_pin_max_tries), 0, 1000 },
    { "token", "pin_min_len", K_U32, OFF(pin_min_len), 1, 255 },
    { "token", "pin_max_len", K_U32, OFF(pin_max_len), 1, 255 },
    { "token", "pbkdf2_iterations", K_U32, OFF(pbkdf2_iterations), 1000, 100000000 },
    { "log", "level", K_LOGLEVEL, OFF(log_level), 0, 0 },
    { "tpm.*", "mssim", K_LISTEN, TOFF(mssim), 0, 0 },
    { "tpm.*", "swtpm", K_LISTEN_UNIX, TOFF(swtpm), 0, 0 },
    { "client", "server", K_SERVER, OFF(client_server), 0, 0 },
    { "hsm", "listen", K_SERVER_LIST, OFF(hsm_listen), 0, CF_HSM_LISTEN_MAX },
    { "hsm", "socket_mode", K_MODE, OFF(hsm_socket_mode), 0, 0777 },
    { "hsm", "socket_group", K_NAME, OFF(hsm_socket_group), 1, CF_GROUP_MAX - 1 },
    { "hsm", "idle_timeout", K_U32, OFF(hsm_idle_timeout), 0, 7 * 86400 },
    { "hsm", "max_connections", K_U32, OFF(hsm_max_connections), 1, 65536 },
    { "hsm", "max_handshakes", K_U32, OFF(hsm_max_handshakes), 1, 65536 },
    { "hsm", "max_sessions", K_U32, OFF(hsm_max_sessions), 1, 262144 },   /* the engine's HSM_SESSIONS_MAX */
    { "hsm", "max_session_objects", K_U32, OFF(hsm_max_session_objects), 1, 16777216 },
    { "hsm", "workers", K_U32, OFF(hsm_workers), 0, 256 },
    { "hsm", "lease_ms", K_U32, OFF(hsm_lease_ms), 0, 10000 },
    { "hsm", "cert", K_PATH, OFF(hsm_cert), 0, 0 },
    { "hsm", "key", K_PATH, OFF(hsm_key), 0, 0 },
    { "hsm", "client_ca", K_PATH, OFF(hsm_client_ca), 0, 0 },
    { "client", "cert", K_PATH, OFF(client_cert), 0, 0 },
    { "client", "key", K_PATH, OFF(client_key), 0, 0 },
    { "client", "ca", K_PATH, OFF(client_ca), 0, 0 },
    { "client", "timeout", K_U32, OFF(client_timeout), 0, 86400 },
};

/* Sections that later subsystems own; accepted (and ignored here) so one file serves all. */
static const char *const foreign_sections[] = { "daemon", NULL };

static bool section_matches(const char *pattern, const char *section)
{
    size_t n = strlen(pattern);
    if (n >= 2 && strcmp(pattern + n - 2, ".*") == 0)
        return strncmp(section, pattern, n - 1) == 0;
    return strcmp(pattern, section) == 0;
}

static bool valid_tpm_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CF_TPM_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

cf_err cf_config_parse_listen(const char *value, bool allow_unix, const char *dir, cf_listen *l,
                              char *problem, size_t problemlen)
{
    memset(l, 0, sizeof *l);
    if (strncmp(value, "unix:", 5) == 0) {
        const char *path = value + 5;
        if (!allow_unix) {
            snprintf(problem, problemlen, "a Unix socket is not possible here (expected HOST:PORT)");
            return CF_E_CONFIG;
        }
        if (!*path) {
            snprintf(problem, problemlen, "the socket path after unix: is empty");
            return CF_E_CONFIG;
        }
        /* PATH and PATH.ctrl must both fit in sockaddr_un.sun_path */
        int n = path[0] == '/' || !dir ? snprintf(l->path, sizeof l->path, "%s", path)
                                       : snprintf(l->path, sizeof l->path, "%s/%s", dir, path);
        if (n < 0 || (size_t)n + 5 >= sizeof l->path) {
            snprintf(problem, problemlen, "the socket path is too long (with \".ctrl\" at most %zu characters)",
                     sizeof l->path - 1);
            return CF_E_CONFIG;
        }
        l->kind = CF_LISTEN_UNIX;
        return CF_OK;
    }
    const char *host = value, *hend, *colon;
    if (value[0] == '[') {
        host = value + 1;
        hend = strchr(host, ']');
        if (!hend || hend[1] != ':') {
            snprintf(problem, problemlen, "expected [IPV6-ADDRESS]:PORT");
            return CF_E_CONFIG;
        }
        colon = hend + 1;
    } else {
        colon = strrchr(value, ':');
        hend = colon;
        if (colon && memchr(value, ':', (size_t)(colon - value))) {
            snprintf(problem, problemlen, "an IPv6 address needs brackets: [ADDRESS]:PORT");
            return CF_E_CONFIG;
        }
    }
    if (!colon) {
        snprintf(problem, problemlen, allow_unix ? "expected HOST:PORT or unix:PATH" : "expected HOST:PORT");
        return CF_E_CONFIG;
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof l->host) {
        snprintf(problem, problemlen, "the host is empty or too long");
        return CF_E_CONFIG;
    }
    const char *ps = colon + 1;
    char *end;
    errno = 0;
    unsigned long port = strtoul(ps, &end, 10);
    if (errno || end == ps || *end || ps[0] == '-' || ps[0] == '+' || port < 1 || port > 65534) {
        snprintf(problem, problemlen, "expected a port in 1..65534 (PORT and PORT+1 are used)");
        return CF_E_CONFIG;
    }
    memcpy(l->host, host, hlen);
    l->host[hlen] = 0;
    l->port = (uint16_t)port;
    l->kind = CF_LISTEN_TCP;
    return CF_OK;
}

static void default_store_dir(char *out, size_t n)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (geteuid() == 0 && !xdg)
        snprintf(out, n, "/var/lib/coffer");
    else if (xdg && *xdg)
        snprintf(out, n, "%s/coffer", xdg);
    else if (home && *home)
        snprintf(out, n, "%s/.local/share/coffer", home);
    else
        snprintf(out, n, "/var/lib/coffer");
}

void cf_config_defaults(cf_config *c)
{
    memset(c, 0, sizeof *c);
    default_store_dir(c->store_dir, sizeof c->store_dir);
    c->user_pin_max_tries = 10;
    c->so_pin_max_tries = 10;
    c->pin_min_len = 4;
    c->pin_max_len = 255;
    c->pbkdf2_iterations = 100000;
    c->log_level = -1;
    c->hsm_socket_mode = 0600;
    c->hsm_idle_timeout = 3600;
    c->hsm_lease_ms = 250;
    c->client_timeout = 60;
    c->hsm_max_connections = 1024;
    c->hsm_max_handshakes = 64;
    c->hsm_max_sessions = 1024;
    c->hsm_max_session_objects = 65536;
}

typedef struct {
    cf_config *c;
    const char *name;
    char dir[CF_PATH_MAX]; /* folder of the file, for relative paths */
    char *err;
    size_t errlen;
    char msg[600];  /* the first problem, without its line (inih reports the line) */
    bool failed;
} parse_ctx;

/* Debian's libinih is built without INI_HANDLER_LINENO: ini_parse returns the line of the first
 * entry the handler refused, and finish() puts it in front of the message recorded here. */
static int fail(parse_ctx *p, const char *section, const char *name, const char *problem)
{
    if (!p->failed) {
        snprintf(p->msg, sizeof p->msg, "[%s] %s: %s", section, name, problem);
        p->failed = true;
    }
    return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *p = user;
    for (const char *const *f = foreign_sections; *f; f++)
        if (strcmp(section, *f) == 0)
            return 1;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const key_def *k = &keys[i];
        if (!section_matches(k->section, section) || strcmp(k->name, name))
            continue;
        char *dst = (char *)p->c + k->off;
        if (strncmp(k->section, "tpm.", 4) == 0) {
            cf_tpm_config *t = NULL;
            const char *tname = section + 4;
            if (!valid_tpm_name(tname))
                return fail(p, section, name, "the instance name (after \"tpm.\") must be 1..63 of A-Z a-z 0-9 _ -");
            for (size_t j = 0; j < p->c->n_tpm; j++)
                if (strcmp(p->c->tpm[j].name, tname) == 0)
                    t = &p->c->tpm[j];
            if (!t) {
                if (p->c->n_tpm == CF_TPM_MAX) {
                    char problem[64];
                    snprintf(problem, sizeof problem, "too many TPM instances (at most %d)", CF_TPM_MAX);
                    return fail(p, section, name, problem);
                }
                t = &p->c->tpm[p->c->n_tpm++];
                memset(t, 0, sizeof *t);
                snprintf(t->name, sizeof t->name, "%s", tname);
            }
            dst = (char *)t + k->off;
        }
        switch (k->kind) {
        case K_LISTEN:
        case K_LISTEN_UNIX:
        case K_SERVER:
        case K_SERVER_LIST: {
            cf_listen *l = (cf_listen *)dst;
            char problem[160];
            if (k->kind == K_SERVER_LIST) { /* the one list key: [hsm] listen */
                size_t *n = &p->c->n_hsm_listen;
                if (*n == k->max) {
                    snprintf(problem, sizeof problem, "at most %u listen lines", (unsigned)k->max);
                    return fail(p, section, name, problem);
                }
                l += (*n)++;
            } else if (l->kind != CF_LISTEN_NONE) {
                return fail(p, section, name, "set twice");
            }
            bool server = k->kind == K_SERVER || k->kind == K_SERVER_LIST;
            if (server && strncmp(value, "tls:", 4) == 0) {
                if (cf_config_parse_listen(value + 4, false, p->dir, l, problem, sizeof problem) != CF_OK)
                    return fail(p, section, name, problem);
                l->kind = CF_LISTEN_TLS;
                return 1;
            }
            if (server && strncmp(value, "unix:", 5) != 0)
                return fail(p, section, name, "expected unix:PATH or tls:HOST:PORT (no plaintext TCP)");
            if (cf_config_parse_listen(value, k->kind != K_LISTEN, p->dir, l, problem, sizeof problem) != CF_OK)
                return fail(p, section, name, problem);
            return 1;
        }
        case K_PATH: {
            if (!*value)
                return fail(p, section, name, "the path is empty");
            int n = value[0] == '/' ? snprintf(dst, CF_PATH_MAX, "%s", value)
                                    : snprintf(dst, CF_PATH_MAX, "%s/%s", p->dir, value);
            if (n < 0 || n >= CF_PATH_MAX)
                return fail(p, section, name, "the path is too long");
            return 1;
        }
        case K_U32: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(value, &end, 10);
            if (errno || end == value || *end || value[0] == '-' || v < k->min || v > k->max) {
                char problem[64];
                snprintf(problem, sizeof problem, "expected a whole number in %u..%u", k->min, k->max);
                return fail(p, section, name, problem);
            }
            *(uint32_t *)dst = (uint32_t)v;
            return 1;
        }
        case K_NAME: {
            size_t n = strlen(value);
            if (n < k->min || n > k->max || strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n) {
                char problem[96];
                snprintf(problem, sizeof problem, "expected a name of %u..%u characters of A-Z a-z 0-9 _ . -", k->min, k->max);
                return fail(p, section, name, problem);
            }
            memcpy(dst, value, n + 1);
            return 1;
        }
        case K_MODE: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(value, &end, 8);
            if (errno || end == value || *end || value[0] == '-' || value[0] == '+' || v > k->max)
                return fail(p, section, name, "expected an octal file mode such as 0600 or 0660");
            *(uint32_t *)dst = (uint32_t)v;
            return 1;
        }
        case K_LOGLEVEL: {
            int l = -1;
            if (strcmp(value, "error") == 0) l = 0;
            else if (strcmp(value, "warn") == 0) l = 1;
            else if (strcmp(value, "info") == 0) l = 2;
            else if (strcmp(value, "debug") == 0) l = 3;
            if (l < 0)
                return fail(p, section, name, "expected error, warn, info or debug");
            *(int *)dst = l;
            return 1;
        }
        }
    }
    char problem[160];
    snprintf(problem, sizeof problem, "unknown key (no such setting in section [%.60s])", section);
    return fail(p, section, name, problem);
}

static void set_dir_of(parse_ctx *p, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        if (!getcwd(p->dir, sizeof p->dir))
            snprintf(p->dir, sizeof p->dir, ".");
    } else if (slash == path) {
        snprintf(p->dir, sizeof p->dir, "/");
    } else if (path[0] != '/') {
        char cwd[CF_PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            snprintf(cwd, sizeof cwd, ".");
        snprintf(p->dir, sizeof p->dir, "%.*s/%.*s", 2000, cwd, (int)(slash - path) > 2000 ? 2000 : (int)(slash - path), path);
    } else {
        snprintf(p->dir, sizeof p->dir, "%.*s", (int)(slash - path), path);
    }
}

/* Two instances (or two channels of one) on the same endpoint would fail at bind time; say which
 * sections collide while the file is at hand. TCP endpoints are compared by host string and port,
 * so "localhost" against "127.0.0.1" is left to bind() to find. */
typedef struct { const cf_listen *l; const char *tpm, *key; } endpoint;

static bool same_endpoint(const endpoint *a, const endpoint *b)
{
    if (a->l->kind != b->l->kind)
        return false;
    if (a->l->kind == CF_LISTEN_UNIX)
        return strcmp(a->l->path, b->l->path) == 0;
    int d = (int)a->l->port - (int)b->l->port;
    return strcmp(a->l->host, b->l->host) == 0 && d >= -1 && d <= 1;
}

static bool check_endpoints(parse_ctx *p)
{
    endpoint e[2 * CF_TPM_MAX];
    size_t n = 0;
    for (size_t i = 0; i < p->c->n_tpm; i++) {
        const cf_tpm_config *t = &p->c->tpm[i];
        if (t->mssim.kind != CF_LISTEN_NONE)
            e[n++] = (endpoint){ &t->mssim, t->name, "mssim" };
        if (t->swtpm.kind != CF_LISTEN_NONE)
            e[n++] = (endpoint){ &t->swtpm, t->name, "swtpm" };
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (same_endpoint(&e[i], &e[j])) {
                snprintf(p->err, p->errlen, "%s: [tpm.%s] %s overlaps [tpm.%s] %s (each uses PORT and PORT+1, or PATH and PATH.ctrl)",
                         p->name, e[i].tpm, e[i].key, e[j].tpm, e[j].key);
                return true;
            }
    return false;
}

static cf_err finish(parse_ctx *p, int rc)
{
    if (p->failed) {
        snprintf(p->err, p->errlen, "%s:%d: %s", p->name, rc, p->msg);
        return CF_E_CONFIG;
    }
    if (rc > 0) { /* inih: syntax error on line rc */
        snprintf(p->err, p->errlen, "%s:%d: syntax error (expected [section] or key = value)", p->name, rc);
        return CF_E_CONFIG;
    }
    if (rc < 0) {
        snprintf(p->err, p->errlen, "%s: cannot read the file", p->name);
        return CF_E_CONFIG;
    }
    if (check_endpoints(p))
        return CF_E_CONFIG;
    const cf_config *c = p->c;
    for (size_t i = 0; i < c->n_hsm_listen; i++) {
        if (c->hsm_listen[i].kind == CF_LISTEN_TLS && (!c->hsm_cert[0] || !c->hsm_key[0] || !c->hsm_client_ca[0])) {
            snprintf(p->err, p->errlen, "%s: [hsm] listen = tls: needs cert, key and client_ca in [hsm] "
                     "(`coffer tls init` makes a set)", p->name);
            return CF_E_CONFIG;
        }
        for (size_t j = 0; j < i; j++)
            if (c->hsm_listen[i].kind == c->hsm_listen[j].kind &&
                (c->hsm_listen[i].kind == CF_LISTEN_UNIX ? strcmp(c->hsm_listen[i].path, c->hsm_listen[j].path) == 0
                                                         : c->hsm_listen[i].port == c->hsm_listen[j].port &&
                                                               strcmp(c->hsm_listen[i].host, c->hsm_listen[j].host) == 0)) {
                snprintf(p->err, p->errlen, "%s: [hsm] listen: the same endpoint twice", p->name);
                return CF_E_CONFIG;
            }
    }
    if (c->client_server.kind == CF_LISTEN_TLS && !c->client_ca[0]) {
        snprintf(p->err, p->errlen, "%s: [client] server = tls: needs ca in [client] (the CA of the server's "
                 "certificate)", p->name);
        return CF_E_CONFIG;
    }
    if (!c->client_cert[0] != !c->client_key[0]) {
        snprintf(p->err, p->errlen, "%s: [client] cert and key go together", p->name);
        return CF_E_CONFIG;
    }
    if (p->c->pin_min_len > p->c->pin_max_len) {
        snprintf(p->err, p->errlen, "%s: [token] pin_min_len is larger than pin_max_len", p->name);
        return CF_E_CONFIG;
    }
    return CF_OK;
}

cf_err cf_config_load_string(cf_config *c, const char *text, const char *name, char *err, size_t errlen)
{
    parse_ctx p = { .c = c, .name = name, .err = err, .errlen = errlen };
    set_dir_of(&p, name);
    return finish(&p, ini_parse_string(text, on_entry, &p));
}

cf_err cf_config_load_file(cf_config *c, const char *path, char *err, size_t errlen)
{
    parse_ctx p = { .c = c, .name = path, .err = err, .errlen = errlen };
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the configuration file: %s", path, strerror(errno));
        return CF_E_CONFIG;
    }
    set_dir_of(&p, path);
    int rc = ini_parse_file(f, on_entry, &p);
    fclose(f);
    cf_err e = finish(&p, rc);
    if (e == CF_OK)
        snprintf(c->source, sizeof c->source, "%s", path);
    return e;
}

cf_err cf_config_load(cf_config *c, char *err, size_t errlen)
{
    cf_config_defaults(c);
    const char *env = getenv("COFFER_CONF");
    if (env && *env)
        return cf_config_load_file(c, env, err, errlen);
    char path[CF_PATH_MAX];
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(path, sizeof path, "%s/coffer/coffer.conf", xdg);
    else if (home && *home)
        snprintf(path, sizeof path, "%s/.config/coffer/coffer.conf", home);
    else
        path[0] = 0;
    if (path[0] && access(path, F_OK) == 0)
        return cf_config_load_file(c, path, err, errlen);
    if (access("/etc/coffer/coffer.conf", F_OK) == 0)
        return cf_config_load_file(c, "/etc/coffer/coffer.conf", err, errlen);
    return CF_OK;
}
