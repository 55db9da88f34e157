/* audit.c: `coffer audit show` and `coffer audit verify`: cofferd's audit log (docs/remote.md,
 * "Audit log"), read straight from the store. Reading needs no key; verifying needs the audit
 * key, derived from <store dir>/master.key as cofferd derives it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "base/secmem.h"
#include "cli/cli.h"
#include "store/store.h"

static const char usage[] =
    "Usage: coffer audit show [--since T] [--until T] [--token SLOT] [--key LABEL] [--event E] [--json]\n"
    "       coffer audit verify\n"
    "\n"
    "cofferd's tamper-evident audit log (only a cofferd serving the HSM writes one; the embedded\n"
    "module does not). Both read the store of the configuration ($COFFER_CONF, [store] dir) or\n"
    "of --store DIR directly, not through the module.\n"
    "\n"
    "  show      lists the records. T is seconds since the epoch or YYYY-MM-DD[THH:MM:SS] (UTC);\n"
    "            --token is the slot id; --key the object's label; --event one of token_init,\n"
    "            token_delete, login, pin_change, pin_locked, keygen, create, unwrap, wrap, derive,\n"
    "            destroy, set_attribute, key_use\n"
    "  verify    checks the HMAC chain of the whole log with the key derived from\n"
    "            <store dir>/master.key (so it must run as the user cofferd runs as). Prints\n"
    "            \"audit log intact: N records\", or \"audit log broken at record N: changed|removed|\n"
    "            reordered\" and exits 1\n"
    "\n"
    "  --store DIR   the store directory (default: [store] dir of the configuration)\n";

enum { OPT_SINCE = OPT_CMD, OPT_UNTIL, OPT_TOKEN, OPT_KEY, OPT_EVENT, OPT_STORE };

static bool parse_time(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && !errno && v >= 0) {
        *out = v;
        return true;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *r = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!r || *r) {
        memset(&tm, 0, sizeof tm);
        r = strptime(s, "%Y-%m-%d", &tm);
    }
    if (!r || *r)
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

/* The label=... at the end of a record's detail ("" when none). */
static const char *detail_label(const char *detail)
{
    const char *p = strstr(detail, " label=");
    if (p)
        return p + 7;
    return strncmp(detail, "label=", 6) == 0 ? detail + 6 : "";
}

typedef struct {
    const char *key;
    bool json;
    json_t *arr;
    size_t n;
} show_ctx;

static cf_err show_cb(void *ctx, const cf_audit_record *r)
{
    show_ctx *c = ctx;
    const char *label = detail_label(r->detail);
    if (c->key && strcmp(c->key, label) != 0)
        return CF_OK;
    char when[32];
    time_t t = (time_t)r->time;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(when, sizeof when, "%" PRId64, r->time);
    c->n++;
    if (c->json) {
        json_t *o = json_pack("{s:I, s:I, s:s, s:I, s:I, s:s, s:s, s:s}", "seq", (json_int_t)r->seq,
                              "time", (json_int_t)r->time, "when", when, "token", (json_int_t)r->token,
                              "object", (json_int_t)r->object, "event", r->event, "label", label,
                              "detail", r->detail);
        if (!o || json_array_append_new(c->arr, o) != 0)
            return CF_E_NOMEM;
        return CF_OK;
    }
    printf("%6" PRId64 "  %s  token %-3" PRId64 " object %-5" PRId64 " %-14s %s\n", r->seq, when, r->token,
           r->object, r->event, r->detail);
    return CF_OK;
}

static bool store_dir(const char *given, char *dir, size_t len)
{
    if (given) {
        snprintf(dir, len, "%s", given);
        return true;
    }
    static cf_config cfg;
    char err[512];
    cf_config_defaults(&cfg);
    if (cf_config_load(&cfg, err, sizeof err) != CF_OK) {
        cli_error("%s", err);
        return false;
    }
    snprintf(dir, len, "%s", cfg.store_dir);
    return true;
}

static int open_store(const char *dir, cf_store **s)
{
    struct stat sb;
    char db[CF_PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/coffer.db", dir);
    if (stat(db, &sb) != 0) {   /* do not create a store by looking at it */
        cli_error("no store at %s: %s", db, strerror(errno));
        return CLI_FAIL;
    }
    cf_err e = cf_store_open(dir, s);
    if (e != CF_OK) {
        cli_error("cannot open the store in %s: %s", dir, cf_err_message(e));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* The master key, read as cofferd reads it (32 bytes, a regular file). */
static int read_master(const char *dir, uint8_t *key)
{
    char path[CF_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/master.key", dir);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        cli_error("cannot read %s: %s (verifying needs the master key: run as the user cofferd "
                  "runs as)", path, strerror(errno));
        return CLI_FAIL;
    }
    struct stat sb;
    ssize_t n = -1;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 32)
        n = read(fd, key, 32);
    close(fd);
    if (n != 32) {
        cli_error("%s is not a 32-byte master key", path);
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cmd_audit(int argc, char **argv, cli_opts *o)
{
    static const struct option extra[] = {
        { "since", required_argument, NULL, OPT_SINCE },
        { "until", required_argument, NULL, OPT_UNTIL },
        { "token", required_argument, NULL, OPT_TOKEN },
        { "key", required_argument, NULL, OPT_KEY },
        { "event", required_argument, NULL, OPT_EVENT },
        { "store", required_argument, NULL, OPT_STORE },
        { 0 },
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    bool show = strcmp(argv[1], "show") == 0, verify = strcmp(argv[1], "verify") == 0;
    if (!show && !verify)
        return cli_usage_error("audit", "unknown subcommand '%s'", argv[1]);
    const char *cmd = show ? "audit show" : "audit verify";
    cf_audit_filter f = { .token = -1, .object = -1 };
    const char *key = NULL, *store = NULL;
    const struct option *opts = cli_options(extra, show);
    optind = 2;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: fputs(usage, stdout); return CLI_OK;
        case OPT_SINCE:
        case OPT_UNTIL:
            if (!parse_time(optarg, c == OPT_SINCE ? &f.since : &f.until))
                return cli_usage_error(cmd, "bad time '%s' (seconds since the epoch or YYYY-MM-DD[THH:MM:SS])", optarg);
            break;
        case OPT_TOKEN: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 0)
                return cli_usage_error(cmd, "--token takes a slot id, not '%s'", optarg);
            f.token = v;
            break;
        }
        case OPT_KEY: key = optarg; break;
        case OPT_EVENT: f.event = optarg; break;
        case OPT_STORE: store = optarg; break;
        default:
            if (!cli_common_option(c, optarg, o))
                return cli_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (verify && (f.since || f.until || f.token >= 0 || key || f.event))
        return cli_usage_error(cmd, "verify checks the whole log and takes no filter");

    char dir[CF_PATH_MAX];
    if (!store_dir(store, dir, sizeof dir))
        return CLI_FAIL;
    cf_store *s = NULL;
    int rc = open_store(dir, &s);
    if (rc != CLI_OK)
        return rc;
    if (show) {
        show_ctx ctx = { .key = key, .json = o->json, .arr = o->json ? json_array() : NULL };
        cf_err e = cf_store_audit_read(s, &f, show_cb, &ctx);
        cf_store_close(s);
        if (e != CF_OK) {
            json_decref(ctx.arr);
            cli_error("cannot read the audit log: %s", cf_err_message(e));
            return CLI_FAIL;
        }
        if (o->json)
            return json_print(ctx.arr);
        return CLI_OK;
    }

    uint8_t *master = cf_secret_alloc(32), *akey = cf_secret_alloc(CF_AUDIT_KEY_LEN);
    cf_audit_verdict v;
    rc = master && akey ? read_master(dir, master) : CLI_FAIL;
    if (rc == CLI_OK && cf_store_audit_key(master, akey) != CF_OK)
        rc = CLI_FAIL;
    cf_err e = CF_OK;
    if (rc == CLI_OK)
        e = cf_store_audit_verify(s, akey, &v);
    cf_secret_free(master, 32);
    cf_secret_free(akey, CF_AUDIT_KEY_LEN);
    cf_store_close(s);
    if (rc != CLI_OK)
        return rc;
    if (e != CF_OK) {
        cli_error("cannot read the audit log: %s", cf_err_message(e));
        return CLI_FAIL;
    }
    if (v.state == CF_AUDIT_INTACT) {
        printf("audit log intact: %" PRIu64 " records\n", v.records);
        return CLI_OK;
    }
    printf("audit log broken at record %" PRId64 ": %s\n", v.first_bad_seq, cf_audit_state_name(v.state));
    return CLI_FAIL;
}
