/* info.c: `coffer info`: the CLI version, the module's identity and its mechanism table (as the
 * module reports it for its first slot: C_GetMechanismList + C_GetMechanismInfo). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/version.h"
#include "cli/cli.h"
#include "cli/p11.h"

static const char usage[] =
    "Usage: coffer info [--json] [--module PATH]\n"
    "\n"
    "Prints the coffer version, the loaded PKCS#11 module and the mechanisms it offers on its first\n"
    "slot: name, minimum and maximum key size, and what each can do (sign, verify, encrypt, ...).\n"
    "\n"
    "  --json    print one JSON object {version, module, slot, mechanisms: [...]}\n";

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

    if (o->json) {
        json_t *root = json_object(), *mod = json_object(), *arr = json_array();
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
