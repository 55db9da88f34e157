/* info.c: `coffer info`: the CLI version, the module's identity, where coffer's module keeps its
 * tokens (embedded store or remote cofferd), and its mechanism table (as the module reports it for
 * its first slot: C_GetMechanismList + C_GetMechanismInfo). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/config.h"
#include "base/version.h"
#include "cli/cli.h"
#include "cli/p11.h"

static const char usage[] =
    "Usage: coffer info [--json] [--module PATH]\n"
    "\n"
    "Prints the coffer version, the loaded PKCS#11 module and the mechanisms it offers on its first\n"
    "slot: name, minimum and maximum key size, and what each can do (sign, verify, encrypt, ...).\n"
    "For coffer's module also its mode, from the same configuration it reads: embedded (the store\n"
    "folder) or remote (the cofferd it calls, and how long a call to it takes).\n"
    "\n"
    "  --json    print one JSON object {version, module, mode, slot, mechanisms: [...]}\n";

static int mechanisms(p11_module *m, CK_SLOT_ID slot, CK_MECHANISM_TYPE **list, CK_ULONG *n)
{
    *list = NULL;
    CK_RV rv = m->f->C_GetMechanismList(slot, NULL, n);
    if (rv != CKR_OK)
        return p11_fail("C_GetMechanismList", rv);
    *list = calloc(*n ? *n : 1, sizeof(**list));
    if (!*list) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    rv = m->f->C_GetMechanismList(slot, *list, n);
    if (rv != CKR_OK) {
        free(*list);
        *list = NULL;
        return p11_fail("C_GetMechanismList", rv);
    }
    return CLI_OK;
}

/* Where coffer's module keeps its tokens, read from the configuration it reads too. */
typedef struct {
    bool known;             /* coffer's module, its configuration readable */
    bool remote;
    char where[CF_PATH_MAX + 16];   /* the store folder, or unix:PATH / tls:HOST:PORT */
    double call_us;         /* remote: the median time of a call (-1: none timed) */
} mode_info;

static double mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The time a call to cofferd takes: the median of MODE_CALLS C_GetSlotInfo (a round trip with no
 * work behind it), after one to connect. */
#define MODE_CALLS 21
static double call_time(p11_module *m, CK_SLOT_ID slot)
{
    CK_SLOT_INFO si;
    double t[MODE_CALLS];
    if (m->f->C_GetSlotInfo(slot, &si) != CKR_OK)
        return -1;
    for (int i = 0; i < MODE_CALLS; i++) {
        double t0 = mono_us();
        if (m->f->C_GetSlotInfo(slot, &si) != CKR_OK)
            return -1;
        t[i] = mono_us() - t0;
    }
    qsort(t, MODE_CALLS, sizeof t[0], cmp_double);
    return t[MODE_CALLS / 2];
}

/* Only for coffer's own module (its manufacturer): another module's configuration is not ours. */
static void mode_of(p11_module *m, const char *manuf, bool have_slot, CK_SLOT_ID slot, mode_info *mi)
{
    static cf_config cfg;
    char err[512];
    memset(mi, 0, sizeof *mi);
    mi->call_us = -1;
    cf_config_defaults(&cfg);
    if (strcmp(manuf, "coffer") != 0 || cf_config_load(&cfg, err, sizeof err) != CF_OK)
        return;
    mi->known = true;
    if (cfg.client_server.kind == CF_LISTEN_UNIX) {
        mi->remote = true;
        snprintf(mi->where, sizeof mi->where, "unix:%s", cfg.client_server.path);
    } else if (cfg.client_server.kind == CF_LISTEN_TLS) {
        mi->remote = true;
        snprintf(mi->where, sizeof mi->where, "tls:%s:%u", cfg.client_server.host, cfg.client_server.port);
    } else {
        snprintf(mi->where, sizeof mi->where, "%s", cfg.store_dir);
    }
    if (mi->remote && have_slot)
        mi->call_us = call_time(m, slot);
}

int cmd_info(int argc, char **argv, cli_opts *o)
{
    const struct option *opts = cli_options(NULL, true);
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (!cli_common_option(c, optarg, o))
            return cli_bad_option("info", c, argv);
    }
    if (optind < argc)
        return cli_usage_error("info", "unexpected argument '%s'", argv[optind]);

    p11_module m;
    int rc = p11_load(o, &m);
    if (rc != CLI_OK)
        return rc;
    CK_MECHANISM_TYPE *mechs = NULL;
    CK_ULONG nmech = 0, nslots = 0;
    CK_SLOT_ID slot = 0;
    CK_INFO info;
    char manuf[33], desc[33];
    CK_RV rv = m.f->C_GetInfo(&info);
    if (rv != CKR_OK) {
        rc = p11_fail("C_GetInfo", rv);
        goto out;
    }
    p11_str(manuf, info.manufacturerID, sizeof(info.manufacturerID));
    p11_str(desc, info.libraryDescription, sizeof(info.libraryDescription));

    /* The first slot, with or without a token: mechanisms belong to the slot. */
    rv = m.f->C_GetSlotList(CK_FALSE, NULL, &nslots);
    if (rv != CKR_OK) {
        rc = p11_fail("C_GetSlotList", rv);
        goto out;
    }
    if (nslots > 0) {
        CK_SLOT_ID *slots = calloc(nslots, sizeof(*slots));
        if (!slots) {
            cli_error("out of memory");
            rc = CLI_FAIL;
            goto out;
        }
        rv = m.f->C_GetSlotList(CK_FALSE, slots, &nslots);
        slot = slots[0];
        free(slots);
        if (rv != CKR_OK) {
            rc = p11_fail("C_GetSlotList", rv);
            goto out;
        }
        if ((rc = mechanisms(&m, slot, &mechs, &nmech)) != CLI_OK)
            goto out;
    }

    mode_info mode;
    mode_of(&m, manuf, nslots > 0, slot, &mode);

    if (o->json) {
        json_t *root = json_object(), *mod = json_object(), *arr = json_array();
        if (mode.known) {
            json_t *mj = json_object();
            json_object_set_new(mj, "kind", json_string(mode.remote ? "remote" : "embedded"));
            json_object_set_new(mj, mode.remote ? "server" : "store", json_string(mode.where));
            if (mode.remote)
                json_object_set_new(mj, "call_us", mode.call_us >= 0 ? json_real(mode.call_us) : json_null());
            json_object_set_new(root, "mode", mj);
        } else {
            json_object_set_new(root, "mode", json_null());
        }
        json_object_set_new(root, "version", json_string(COFFER_VERSION));
        json_object_set_new(mod, "path", json_string(m.path));
        json_object_set_new(mod, "manufacturer", json_string(manuf));
        json_object_set_new(mod, "description", json_string(desc));
        char ver[16];
        snprintf(ver, sizeof(ver), "%u.%u", info.libraryVersion.major, info.libraryVersion.minor);
        json_object_set_new(mod, "library_version", json_string(ver));
        snprintf(ver, sizeof(ver), "%u.%u", info.cryptokiVersion.major, info.cryptokiVersion.minor);
        json_object_set_new(mod, "cryptoki_version", json_string(ver));
        json_object_set_new(root, "module", mod);
        json_object_set_new(root, "slot", nslots ? json_integer((json_int_t)slot) : json_null());
        for (CK_ULONG i = 0; i < nmech; i++) {
            CK_MECHANISM_INFO mi = { 0 };
            json_t *e = json_object();
            const char *name = ckm_name(mechs[i]);
            char hex[24];
            snprintf(hex, sizeof(hex), "0x%08lx", (unsigned long)mechs[i]);
            json_object_set_new(e, "name", json_string(name ? name : hex));
            json_object_set_new(e, "value", json_integer((json_int_t)mechs[i]));
            bool ok = m.f->C_GetMechanismInfo(slot, mechs[i], &mi) == CKR_OK;
            json_object_set_new(e, "min_key_size", ok ? json_integer((json_int_t)mi.ulMinKeySize) : json_null());
            json_object_set_new(e, "max_key_size", ok ? json_integer((json_int_t)mi.ulMaxKeySize) : json_null());
            json_object_set_new(e, "flags", ok ? mech_flags_json(mi.flags) : json_array());
            json_array_append_new(arr, e);
        }
        json_object_set_new(root, "mechanisms", arr);
        rc = json_print(root);
        goto out;
    }

    printf("coffer %s\n", COFFER_VERSION);
    printf("module: %s\n", m.path);
    printf("  %s, %s %u.%u (Cryptoki %u.%u)\n", manuf, desc, info.libraryVersion.major,
           info.libraryVersion.minor, info.cryptokiVersion.major, info.cryptokiVersion.minor);
    if (mode.known && !mode.remote)
        printf("mode: embedded, store %s\n", mode.where);
    else if (mode.known && mode.call_us >= 0)
        printf("mode: remote, cofferd at %s (a call takes %.0f us, median of %d)\n", mode.where, mode.call_us,
               MODE_CALLS);
    else if (mode.known)
        printf("mode: remote, cofferd at %s\n", mode.where);
    if (nslots == 0) {
        printf("the module has no slots, so it lists no mechanisms\n");
        goto out;
    }
    printf("mechanisms of slot %lu (%lu):\n", (unsigned long)slot, (unsigned long)nmech);
    printf("  %-34s %7s %7s  %s\n", "NAME", "MIN", "MAX", "FLAGS");
    for (CK_ULONG i = 0; i < nmech; i++) {
        CK_MECHANISM_INFO mi = { 0 };
        char hex[24], words[512];
        const char *name = ckm_name(mechs[i]);
        if (!name) {
            snprintf(hex, sizeof(hex), "0x%08lx", (unsigned long)mechs[i]);
            name = hex;
        }
        rv = m.f->C_GetMechanismInfo(slot, mechs[i], &mi);
        if (rv != CKR_OK) {
            printf("  %-34s (C_GetMechanismInfo: %s)\n", name, ckr_name(rv));
            continue;
        }
        printf("  %-34s %7lu %7lu  %s\n", name, (unsigned long)mi.ulMinKeySize,
               (unsigned long)mi.ulMaxKeySize, mech_flags_words(mi.flags, words, sizeof(words)));
    }
out:
    free(mechs);
    p11_unload(&m);
    return rc;
}
