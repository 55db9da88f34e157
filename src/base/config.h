/* config.h: coffer's configuration (INI, parsed by libinih).
 *
 * Lookup order (first that exists wins): $COFFER_CONF (must exist if set), then
 * $XDG_CONFIG_HOME/coffer/coffer.conf (~/.config when unset), then /etc/coffer/coffer.conf; with
 * none, built-in defaults. A relative path in the file is taken relative to the file's folder. An
 * unknown section or key, or a bad value, is an error naming the file, the line and the key. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

#define CF_PATH_MAX 4096

/* [tpm.NAME] sections: one TPM instance each (served by cofferd, see docs/daemon.md). */
#define CF_TPM_MAX 16            /* instances at most */
#define CF_TPM_NAME_MAX 64       /* NAME: 1..63 of [A-Za-z0-9_-] */
#define CF_HOST_MAX 256
#define CF_SOCK_PATH_MAX 108     /* sizeof sockaddr_un.sun_path, with the NUL */
#define CF_HSM_LISTEN_MAX 8      /* [hsm] listen lines at most */
#define CF_GROUP_MAX 64          /* a group name, with the NUL */

/* TLS: tls:HOST:PORT of [hsm] listen / [client] server (TLS 1.3, mutual authentication; only
 * PORT is used). */
typedef enum { CF_LISTEN_NONE = 0, CF_LISTEN_TCP, CF_LISTEN_UNIX, CF_LISTEN_TLS } cf_listen_kind;

/* One listening endpoint pair: TCP host:port (and port+1), or a Unix socket path (and
 * path + ".ctrl", swtpm only). host "*" means every local address. */
typedef struct {
    cf_listen_kind kind;
    char host[CF_HOST_MAX];
    uint16_t port;                   /* 1..65534: port + 1 is the second channel */
    char path[CF_SOCK_PATH_MAX];     /* absolute or relative to the process's folder at start */
} cf_listen;

typedef struct {
    char name[CF_TPM_NAME_MAX];
    cf_listen mssim;                 /* mssim = HOST:PORT (command PORT, platform PORT+1) */
    cf_listen swtpm;                 /* swtpm = HOST:PORT | unix:PATH (data, control PORT+1 | PATH.ctrl) */
} cf_tpm_config;

typedef struct {
    char source[CF_PATH_MAX];     /* the file read, or "" for built-in defaults */
    char store_dir[CF_PATH_MAX];  /* [store] dir */
    uint32_t user_pin_max_tries;  /* [token] user_pin_max_tries: consecutive failures before lock (0 = never) */
    uint32_t so_pin_max_tries;    /* [token] so_pin_max_tries */
    uint32_t pin_min_len;         /* [token] pin_min_len */
    uint32_t pin_max_len;         /* [token] pin_max_len */
    uint32_t pbkdf2_iterations;   /* [token] pbkdf2_iterations for new PINs */
    int log_level;                /* [log] level, -1 when unset */
    size_t n_tpm;                 /* [tpm.NAME] sections, in file order */
    cf_tpm_config tpm[CF_TPM_MAX];
    /* [client] server = unix:PATH | tls:HOST:PORT: the module's remote mode (NONE = the embedded
     * token). A relative PATH is relative to the file's folder. */
    cf_listen client_server;
    /* [client] cert, key, ca (PEM paths, relative to the file's folder): the TLS client
     * certificate and key (both or neither) and the CA that signed the server's certificate
     * (required with tls:). "" when unset. */
    char client_cert[CF_PATH_MAX], client_key[CF_PATH_MAX], client_ca[CF_PATH_MAX];
    uint32_t client_timeout;      /* [client] timeout: seconds to wait for an answer (0 = for ever; default 60) */
    /* [hsm] listen = unix:PATH | tls:HOST:PORT, repeatable: cofferd serves the token engine on
     * each (docs/remote.md); none = off. A relative PATH is relative to the file's folder. */
    size_t n_hsm_listen;
    cf_listen hsm_listen[CF_HSM_LISTEN_MAX];
    uint32_t hsm_socket_mode;     /* [hsm] socket_mode, octal (default 0600) */
    char hsm_socket_group[CF_GROUP_MAX]; /* [hsm] socket_group: the Unix sockets' group ("" = the daemon's) */
    uint32_t hsm_idle_timeout;    /* [hsm] idle_timeout, seconds without a request before a connection is closed (0 = never; default 3600) */
    uint32_t hsm_max_connections; /* [hsm] max_connections (default 1024): more are refused with an ERROR frame */
    uint32_t hsm_max_handshakes;  /* [hsm] max_handshakes (default 64): TLS connections before their handshake */
    uint32_t hsm_max_sessions;    /* [hsm] max_sessions: open sessions per application (default 1024); more get SESSION_COUNT */
    uint32_t hsm_max_session_objects; /* [hsm] max_session_objects: per application (default 65536); more get HOST_MEMORY */
    uint32_t hsm_workers;         /* [hsm] workers: threads that run requests (0 = one per core, the default) */
    uint32_t hsm_lease_ms;        /* [hsm] lease_ms: signing leases, docs/protocol.md "Leases" (0 = none; default 250) */
    /* [hsm] cert, key, client_ca: required with tls: (the server's certificate and key, and the
     * CA whose client certificates are accepted). "" when unset. */
    char hsm_cert[CF_PATH_MAX], hsm_key[CF_PATH_MAX], hsm_client_ca[CF_PATH_MAX];
} cf_config;

/* Fills defaults only (no file). */
void cf_config_defaults(cf_config *c);
/* Finds and parses the configuration. On failure writes one sentence (file:line: key: problem)
 * into err. */
cf_err cf_config_load(cf_config *c, char *err, size_t errlen);
/* Parses a given file (used by the above and by tests). */
cf_err cf_config_load_file(cf_config *c, const char *path, char *err, size_t errlen);
/* Parses "HOST:PORT" or "[V6ADDR]:PORT" (PORT 1..65534: PORT+1 is used too) into l; and, when
 * allow_unix, "unix:PATH" (a relative PATH is taken relative to dir). On failure returns
 * CF_E_CONFIG with one phrase in problem. Exposed for tests. */
cf_err cf_config_parse_listen(const char *value, bool allow_unix, const char *dir, cf_listen *l,
                              char *problem, size_t problemlen);
/* Parses INI text from memory (for the fuzz harness); name is used in messages. */
cf_err cf_config_load_string(cf_config *c, const char *text, const char *name, char *err, size_t errlen);
