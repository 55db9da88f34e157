/* main.c: `cofferd`, the coffer daemon: the TPM instances of the configuration, each behind its
 * mssim and/or swtpm sockets (see docs/daemon.md).
 *
 * SIGTERM and SIGINT are blocked in every thread and taken by sigwait() in the main thread, so
 * shutdown runs as ordinary code: stop accepting, let commands in flight finish, power the TPMs
 * off (their state is stored), wipe the master key, exit 0. */
#include <getopt.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/log.h"
#include "base/secmem.h"
#include "base/version.h"
#include "daemon/daemon.h"
#include "daemon/audit.h"
#include "daemon/hsm_server.h"
#include "hsm/hsm.h"

static const char usage_text[] =
    "Usage: cofferd [-c FILE]\n"
    "\n"
    "The coffer daemon: serves the TPM 2.0 instances of the configuration ([tpm.NAME] sections)\n"
    "over the Microsoft/IBM simulator protocol (mssim) and swtpm's socket protocol, in the\n"
    "foreground, logging to standard error. SIGTERM or SIGINT stops it cleanly.\n"
    "\n"
    "  -c, --config FILE   the configuration file (default: $COFFER_CONF, else\n"
    "                      $XDG_CONFIG_HOME/coffer/coffer.conf, else /etc/coffer/coffer.conf)\n"
    "  -h, --help          this help\n"
    "      --version       print the version\n"
    "\n"
    "Example configuration:\n"
    "  [store]\n"
    "  dir = /var/lib/coffer\n"
    "  [tpm.default]\n"
    "  mssim = 127.0.0.1:2321     # command port 2321, platform port 2322\n"
    "  swtpm = 127.0.0.1:2331     # data port 2331, control port 2332 (or unix:PATH)\n"
    "  [hsm]\n"
    "  listen = unix:hsm.sock     # the PKCS#11 token served to remote modules (docs/remote.md);\n"
    "  socket_mode = 0600         # repeat listen for more sockets (unix:PATH, tls:HOST:PORT)\n"
    "\n"
    "Clients: TPM2TOOLS_TCTI=mssim:host=127.0.0.1,port=2321 or swtpm:host=127.0.0.1,port=2331\n"
    "More in docs/daemon.md.\n";

static void describe(const cf_tpm_config *t)
{
    char m[CF_HOST_MAX + 64] = "", s[CF_SOCK_PATH_MAX + CF_HOST_MAX + 64] = "";
    if (t->mssim.kind == CF_LISTEN_TCP)
        snprintf(m, sizeof m, " mssim:host=%s,port=%u", t->mssim.host, t->mssim.port);
    if (t->swtpm.kind == CF_LISTEN_TCP)
        snprintf(s, sizeof s, " swtpm:host=%s,port=%u", t->swtpm.host, t->swtpm.port);
    else if (t->swtpm.kind == CF_LISTEN_UNIX)
        snprintf(s, sizeof s, " swtpm:path=%s", t->swtpm.path);
    cf_info("tpm %s ready; TCTI%s%s", t->name, m, s);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *conf_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case 'V': printf("cofferd %s\n", COFFER_VERSION); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cofferd: unexpected argument: %s\n%s", argv[optind], usage_text);
        return 2;
    }

    static cf_config cfg; /* large: not on the stack */
    char err[1024];
    cf_config_defaults(&cfg);
    cf_err e = conf_path ? cf_config_load_file(&cfg, conf_path, err, sizeof err) : cf_config_load(&cfg, err, sizeof err);
    if (e != CF_OK) {
        fprintf(stderr, "cofferd: %s\n", err);
        return 1;
    }
    cf_log_set_level(cfg.log_level >= 0 ? (cf_log_level)cfg.log_level : CF_LOG_INFO);
    cf_info("cofferd %s: configuration %s, store %s", COFFER_VERSION, cfg.source[0] ? cfg.source : "(built-in defaults)",
            cfg.store_dir);
    bool hsm_on = cfg.n_hsm_listen > 0;
    if (cfg.n_tpm == 0 && !hsm_on) {
        cf_error("nothing to serve: add a [tpm.NAME] section with mssim = HOST:PORT and/or "
                 "swtpm = HOST:PORT, or an [hsm] section with listen = unix:PATH or tls:HOST:PORT (see cofferd --help)");
        return 1;
    }

    umask(077); /* state, key and Unix sockets: the owner's only */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL); /* inherited by every thread started below */

    int status = 1;
    cf_store *store = NULL;
    uint8_t *key = NULL;
    cofferd_instance *insts = NULL, *started[CF_TPM_MAX];
    const cf_tpm_config *started_cfg[CF_TPM_MAX];
    size_t n_started = 0;
    cofferd_server *server = NULL;
    cofferd_hsm *hsm = NULL;
    bool hsm_up = false;

    e = cf_store_open(cfg.store_dir, &store);
    if (e != CF_OK) {
        cf_error("cannot open the store in %s: %s", cfg.store_dir, cf_err_message(e));
        goto out;
    }
    if (hsm_on) {
        /* the engine reads the configuration itself: make it read this very file */
        if (cfg.source[0])
            setenv("COFFER_CONF", cfg.source, 1);
        if (hsm_initialize(err, sizeof err) != CF_OK) {
            cf_error("cannot start the token engine: %s", err);
            goto out;
        }
        hsm_up = true;
        if (cofferd_audit_start(&cfg, store, err, sizeof err) != CF_OK) {
            cf_error("audit log: %s", err);
            goto out;
        }
        if (cofferd_hsm_start_config(&cfg, &hsm, err, sizeof err) != CF_OK) {
            cf_error("%s", err);
            goto out;
        }
        for (size_t i = 0; i < cfg.n_hsm_listen; i++) {
            const cf_listen *l = &cfg.hsm_listen[i];
            if (l->kind == CF_LISTEN_TLS)
                cf_info("hsm ready on tls:%s:%u (TLS 1.3, client certificates of %s)", l->host, (unsigned)l->port,
                        cfg.hsm_client_ca);
            else
                cf_info("hsm ready on unix:%s (mode %04o, group %s)", l->path, (unsigned)cfg.hsm_socket_mode,
                        cfg.hsm_socket_group[0] ? cfg.hsm_socket_group : "the daemon's");
        }
        cf_info("hsm: %u worker thread(s), max_connections %u, max_handshakes %u, max_sessions %u, "
                "max_session_objects %u, idle_timeout %u s, lease_ms %u",
                cofferd_hsm_workers(hsm), (unsigned)cfg.hsm_max_connections, (unsigned)cfg.hsm_max_handshakes,
                (unsigned)cfg.hsm_max_sessions, (unsigned)cfg.hsm_max_session_objects,
                (unsigned)cfg.hsm_idle_timeout, (unsigned)cfg.hsm_lease_ms);
    }
    if (cfg.n_tpm == 0)
        goto wait;
    key = cf_secret_alloc(CF_MASTER_KEY_LEN);
    if (!key) {
        cf_error("out of memory");
        goto out;
    }
    /* A missing key file is only created for a store without TPM state: otherwise it was lost or
     * moved, and a new key would turn every instance's state into noise. */
    bool has_state = false, created;
    for (size_t i = 0; i < cfg.n_tpm && !has_state; i++) {
        uint8_t *blob = NULL;
        size_t len;
        if (cf_store_tpm_get(store, cfg.tpm[i].name, &blob, &len) == CF_OK)
            has_state = true;
        free(blob);
    }
    if (cf_master_key_load(cfg.store_dir, !has_state, key, &created, err, sizeof err) != CF_OK) {
        cf_error("%s", err);
        goto out;
    }
    if (created)
        cf_info("created a new master key in %s/master.key", cfg.store_dir);

    insts = calloc(cfg.n_tpm, sizeof *insts);
    if (!insts)
        goto out;
    for (size_t i = 0; i < cfg.n_tpm; i++) {
        if (cofferd_instance_open(&insts[i], cfg.tpm[i].name, store, key, err, sizeof err) != CF_OK) {
            cf_error("%s", err);
            continue;
        }
        started[n_started] = &insts[i];
        started_cfg[n_started++] = &cfg.tpm[i];
    }
    if (n_started == 0) {
        cf_error("no TPM instance could be started");
        goto out;
    }
    if (cofferd_server_new(started, started_cfg, n_started, &server, err, sizeof err) != CF_OK) {
        cf_error("%s", err);
        goto out;
    }
    if (cofferd_server_start(server) != CF_OK) {
        cf_error("cannot start the accept thread");
        goto out;
    }
    for (size_t i = 0; i < n_started; i++)
        describe(started_cfg[i]);
    if (n_started < cfg.n_tpm)
        cf_warn("%zu of %zu TPM instances are not running (see the errors above)", cfg.n_tpm - n_started, cfg.n_tpm);

wait:;
    /* A signal ends the wait; each second without one, the audit log gets the key uses counted
     * in memory (cofferd_audit_tick: at most every 5 s). */
    int sig;
    const struct timespec second = { 1, 0 };
    while ((sig = sigtimedwait(&stop_signals, NULL, &second)) < 0)
        cofferd_audit_tick((int64_t)time(NULL));
    cf_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;
out:
    cofferd_server_free(server); /* listeners closed, connections ended, threads joined */
    cofferd_hsm_stop(hsm);       /* the same for the HSM service; its sessions are closed */
    cofferd_audit_stop();        /* no connection left to report events */
    if (hsm_up)
        hsm_finalize();
    for (size_t i = 0; i < n_started; i++)
        cofferd_instance_close(started[i]);
    free(insts);
    if (store)
        cf_store_close(store);
    if (key)
        cf_secret_free(key, CF_MASTER_KEY_LEN);
    if (status == 0)
        cf_info("stopped");
    return status;
}
