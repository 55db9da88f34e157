/* token.c: `coffer token init | list | delete`. */
#include <dlfcn.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/p11.h"

static const char token_usage[] =
    "Usage: coffer token COMMAND [OPTIONS]\n"
    "\n"
    "  init --label LABEL [--token TOKEN]   initialize the free slot, or re-initialize TOKEN\n"
    "  init-pin --token TOKEN               set a new user PIN (as SO), e.g. after it locked\n"
    "  list [--json]                        list the tokens of the module\n"
    "  delete TOKEN                         delete a token and everything in it\n"
    "\n"
    "TOKEN is a PKCS#11 URI (pkcs11:token=demo, pkcs11:serial=...) or a token label.\n"
    "`coffer token COMMAND --help` describes each command.\n";

static const char init_usage[] =
    "Usage: coffer token init --label LABEL [--token TOKEN] [--so-pin-file FILE] [--pin-file FILE]\n"
    "\n"
    "Initializes the module's free slot (the one whose token is not initialized) with LABEL, or with\n"
    "--token re-initializes that token, erasing all its objects. Sets the SO PIN, then logs in as SO\n"
    "and sets the user PIN. Prints the slot id and the token's PKCS#11 URI.\n"
    "\n"
    "  --label LABEL        the token label (at most 32 bytes)\n"
    "  --token TOKEN        re-initialize this token (URI or label); needs its current SO PIN\n"
    "  --so-pin-file FILE   the SO PIN (else $COFFER_SO_PIN, else asked twice on the terminal)\n"
    "  --pin-file FILE      the user PIN (else $COFFER_PIN, else asked twice on the terminal)\n";

static const char init_pin_usage[] =
    "Usage: coffer token init-pin --token TOKEN [--so-pin-file FILE] [--pin-file FILE]\n"
    "\n"
    "Logs in to TOKEN as SO and sets a new user PIN (C_InitPIN), which also unlocks a user PIN\n"
    "locked by too many failed attempts. The token's objects are kept.\n"
    "\n"
    "  --token TOKEN        the token (URI or label)\n"
    "  --so-pin-file FILE   the SO PIN (else $COFFER_SO_PIN, else asked on the terminal)\n"
    "  --pin-file FILE      the new user PIN (else $COFFER_PIN, else asked twice on the terminal)\n";

static const char list_usage[] =
    "Usage: coffer token list [--json]\n"
    "\n"
    "Lists the slots that hold a token: slot id, label, serial number, flags (initialized,\n"
    "user-pin-set, locked, count-low, final-try, ...) and the token's PKCS#11 URI.\n"
    "\n"
    "  --json   print a JSON array of objects {slot, label, serial, manufacturer, model,\n"
    "           initialized, user_pin_set, flags, uri}\n";

static const char delete_usage[] =
    "Usage: coffer token delete [--so-pin-file FILE] TOKEN\n"
    "\n"
    "Deletes TOKEN (a PKCS#11 URI or a label) and every object in it; its slot disappears.\n"
    "Needs the SO PIN (--so-pin-file FILE, else $COFFER_SO_PIN, else asked on the terminal).\n"
    "This is a coffer extension (coffer_delete_token); other modules can only wipe a token by\n"
    "re-initializing it (`coffer token init --token TOKEN`).\n";

/* Parses the options of a subcommand that takes only common options (and json); the first
 * positional argument, if any, goes to *arg. Returns -1 to continue, else an exit code. */
static int parse_simple(const char *cmd, const char *usage, bool json, int argc, char **argv,
                        cli_opts *o, const char **arg)
{
    const struct option *opts = cli_options(NULL, json);
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (!cli_common_option(c, optarg, o))
            return cli_bad_option(cmd, c, argv);
    }
    if (arg && optind < argc)
        *arg = argv[optind++];
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return -1;
}

static const struct {
    CK_FLAGS bit;
    const char *word;
} token_flags[] = {
    { CKF_TOKEN_INITIALIZED, "initialized" },
    { CKF_USER_PIN_INITIALIZED, "user-pin-set" },
    { CKF_LOGIN_REQUIRED, "login-required" },
    { CKF_WRITE_PROTECTED, "write-protected" },
    { CKF_RNG, "rng" },
    { CKF_PROTECTED_AUTHENTICATION_PATH, "protected-auth-path" },
    { CKF_USER_PIN_COUNT_LOW, "user-pin-count-low" },
    { CKF_USER_PIN_FINAL_TRY, "user-pin-final-try" },
    { CKF_USER_PIN_LOCKED, "user-pin-locked" },
    { CKF_USER_PIN_TO_BE_CHANGED, "user-pin-to-be-changed" },
    { CKF_SO_PIN_COUNT_LOW, "so-pin-count-low" },
    { CKF_SO_PIN_FINAL_TRY, "so-pin-final-try" },
    { CKF_SO_PIN_LOCKED, "so-pin-locked" },
    { CKF_SO_PIN_TO_BE_CHANGED, "so-pin-to-be-changed" },
};
#define N_TOKEN_FLAGS (sizeof(token_flags) / sizeof(token_flags[0]))

static int token_list(int argc, char **argv, cli_opts *o)
{
    int rc = parse_simple("token list", list_usage, true, argc, argv, o, NULL);
    if (rc >= 0)
        return rc;
    p11_module m;
    if ((rc = p11_load(o, &m)) != CLI_OK)
        return rc;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    if ((rc = p11_slots(&m, &slots, &n)) != CLI_OK)
        goto out;
    json_t *arr = o->json ? json_array() : NULL;
    if (!o->json)
        printf("%-10s %-32s %-16s %s\n", "SLOT", "LABEL", "SERIAL", "FLAGS");
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK_RV rv = m.f->C_GetTokenInfo(slots[i], &ti);
        if (rv == CKR_TOKEN_NOT_PRESENT)
            continue;
        if (rv != CKR_OK) {
            json_decref(arr);
            rc = p11_fail("C_GetTokenInfo", rv);
            goto out;
        }
        char label[33], serial[17], manuf[33], model[17], words[512] = "";
        p11_str(label, ti.label, sizeof(ti.label));
        p11_str(serial, ti.serialNumber, sizeof(ti.serialNumber));
        p11_str(manuf, ti.manufacturerID, sizeof(ti.manufacturerID));
        p11_str(model, ti.model, sizeof(ti.model));
        bool init = ti.flags & CKF_TOKEN_INITIALIZED;
        char *uri = init ? p11_token_uri(&ti) : NULL;
        if (arr) {
            json_t *e = json_object(), *flags = json_array();
            for (size_t k = 0; k < N_TOKEN_FLAGS; k++)
                if (ti.flags & token_flags[k].bit)
                    json_array_append_new(flags, json_string(token_flags[k].word));
            json_object_set_new(e, "slot", json_integer((json_int_t)slots[i]));
            json_object_set_new(e, "label", json_string(label));
            json_object_set_new(e, "serial", json_string(serial));
            json_object_set_new(e, "manufacturer", json_string(manuf));
            json_object_set_new(e, "model", json_string(model));
            json_object_set_new(e, "initialized", json_boolean(init));
            json_object_set_new(e, "user_pin_set", json_boolean(ti.flags & CKF_USER_PIN_INITIALIZED));
            json_object_set_new(e, "flags", flags);
            json_object_set_new(e, "uri", uri ? json_string(uri) : json_null());
            json_array_append_new(arr, e);
        } else {
            size_t off = 0;
            for (size_t k = 0; k < N_TOKEN_FLAGS; k++) {
                /* Informational flags stay out of the table; they are in --json. */
                if (!(ti.flags & token_flags[k].bit) || token_flags[k].bit == CKF_RNG ||
                    token_flags[k].bit == CKF_LOGIN_REQUIRED)
                    continue;
                int w = snprintf(words + off, sizeof(words) - off, "%s%s", off ? "," : "", token_flags[k].word);
                if (w > 0 && (size_t)w < sizeof(words) - off)
                    off += (size_t)w;
            }
            printf("%-10lu %-32s %-16s %s\n", (unsigned long)slots[i], init ? label : "(free slot)",
                   serial, init ? words : "-");
            if (uri)
                printf("           %s\n", uri);
        }
        free(uri);
    }
    if (arr)
        rc = json_print(arr);
out:
    free(slots);
    p11_unload(&m);
    return rc;
}

/* The one slot whose token is not initialized: where `token init` puts a new token. */
static int free_slot(p11_module *m, CK_SLOT_ID *slot)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    int rc = p11_slots(m, &slots, &n);
    if (rc != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (m->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !(ti.flags & CKF_TOKEN_INITIALIZED)) {
            *slot = slots[i];
            rc = CLI_OK;
            break;
        }
    }
    free(slots);
    if (rc != CLI_OK)
        cli_error("the module has no free slot (every token is initialized); re-initialize one with "
                  "--token TOKEN or delete one with `coffer token delete`");
    return rc;
}

/* Another initialized token (not `self`) with this label: labels name tokens, so keep them unique. */
static bool label_taken(p11_module *m, const char *label, bool has_self, CK_SLOT_ID self, CK_SLOT_ID *other)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    bool taken = false;
    if (p11_slots(m, &slots, &n) != CLI_OK)
        return false;
    for (CK_ULONG i = 0; i < n && !taken; i++) {
        CK_TOKEN_INFO ti;
        char have[33];
        if ((has_self && slots[i] == self) || m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
            !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        p11_str(have, ti.label, sizeof(ti.label));
        if (strcmp(have, label) == 0) {
            taken = true;
            *other = slots[i];
        }
    }
    free(slots);
    return taken;
}

static int token_init(int argc, char **argv, cli_opts *o)
{
    static const struct option extra[] = {
        { "label", required_argument, NULL, OPT_CMD },
        { "token", required_argument, NULL, OPT_CMD + 1 },
        { 0 },
    };
    const struct option *opts = cli_options(extra, false);
    const char *label = NULL, *token = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(init_usage, stdout);
            return CLI_OK;
        }
        if (c == OPT_CMD)
            label = optarg;
        else if (c == OPT_CMD + 1)
            token = optarg;
        else if (!cli_common_option(c, optarg, o))
            return cli_bad_option("token init", c, argv);
    }
    if (optind < argc)
        return cli_usage_error("token init", "unexpected argument '%s'", argv[optind]);
    if (!label)
        return cli_usage_error("token init", "--label LABEL is required");
    size_t llen = strlen(label);
    if (llen == 0 || llen > 32)
        return cli_usage_error("token init", "the label must be 1 to 32 bytes long");

    p11_module m;
    int rc = p11_load(o, &m);
    if (rc != CLI_OK)
        return rc;
    char *so_pin = NULL, *user_pin = NULL;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_SLOT_ID slot = 0, other = 0;
    if (token)
        rc = p11_find_token(&m, token, &slot, NULL);
    else
        rc = free_slot(&m, &slot);
    if (rc != CLI_OK)
        goto out;
    if (label_taken(&m, label, true, slot, &other)) {
        cli_error("slot %lu already holds a token labelled '%s'; choose another label (labels name tokens)",
                  (unsigned long)other, label);
        rc = CLI_FAIL;
        goto out;
    }
    /* Both PINs first, so that a missing one leaves nothing half done. A re-initialization checks
     * the current SO PIN, so asking once is enough there. */
    if ((rc = pin_get(o, PIN_SO, token ? PIN_MAY_PROMPT : PIN_PROMPT_TWICE, &so_pin)) != CLI_OK ||
        (rc = pin_get(o, PIN_USER, PIN_PROMPT_TWICE, &user_pin)) != CLI_OK)
        goto out;

    CK_UTF8CHAR padded[32];
    memset(padded, ' ', sizeof(padded));
    memcpy(padded, label, llen);
    CK_RV rv = m.f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), padded);
    if (rv != CKR_OK) {
        rc = p11_pin_fail(&m, slot, CKU_SO, token ? "re-initializing the token" : "initializing the token", rv);
        goto out;
    }
    if ((rc = p11_open(&m, slot, true, &s)) != CLI_OK ||
        (rc = p11_login(&m, slot, s, CKU_SO, so_pin)) != CLI_OK)
        goto out;
    rv = m.f->C_InitPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
    if (rv != CKR_OK) {
        rc = p11_fail("setting the user PIN (C_InitPIN)", rv);
        goto out;
    }
    m.f->C_Logout(s);

    CK_TOKEN_INFO ti;
    rv = m.f->C_GetTokenInfo(slot, &ti);
    if (rv != CKR_OK) {
        rc = p11_fail("C_GetTokenInfo", rv);
        goto out;
    }
    char *uri = p11_token_uri(&ti);
    printf("token '%s' initialized in slot %lu\n", label, (unsigned long)slot);
    printf("uri: %s\n", uri);
    free(uri);
    rc = CLI_OK;
out:
    if (s != CK_INVALID_HANDLE)
        m.f->C_CloseSession(s);
    pin_free(so_pin);
    pin_free(user_pin);
    p11_unload(&m);
    return rc;
}

static int token_init_pin(int argc, char **argv, cli_opts *o)
{
    static const struct option extra[] = {
        { "token", required_argument, NULL, OPT_CMD },
        { 0 },
    };
    const struct option *opts = cli_options(extra, false);
    const char *token = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(init_pin_usage, stdout);
            return CLI_OK;
        }
        if (c == OPT_CMD)
            token = optarg;
        else if (!cli_common_option(c, optarg, o))
            return cli_bad_option("token init-pin", c, argv);
    }
    if (optind < argc)
        return cli_usage_error("token init-pin", "unexpected argument '%s'", argv[optind]);
    if (!token)
        return cli_usage_error("token init-pin", "--token TOKEN is required");

    p11_module m;
    int rc = p11_load(o, &m);
    if (rc != CLI_OK)
        return rc;
    char *so_pin = NULL, *user_pin = NULL;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_SLOT_ID slot;
    if ((rc = p11_find_token(&m, token, &slot, NULL)) != CLI_OK ||
        (rc = pin_get(o, PIN_SO, PIN_MAY_PROMPT, &so_pin)) != CLI_OK ||
        (rc = pin_get(o, PIN_USER, PIN_PROMPT_TWICE, &user_pin)) != CLI_OK ||
        (rc = p11_open(&m, slot, true, &s)) != CLI_OK ||
        (rc = p11_login(&m, slot, s, CKU_SO, so_pin)) != CLI_OK)
        goto out;
    CK_RV rv = m.f->C_InitPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
    m.f->C_Logout(s);
    if (rv != CKR_OK) {
        rc = p11_fail("setting the user PIN (C_InitPIN)", rv);
        goto out;
    }
    printf("user PIN of token '%s' set\n", token);
out:
    if (s != CK_INVALID_HANDLE)
        m.f->C_CloseSession(s);
    pin_free(so_pin);
    pin_free(user_pin);
    p11_unload(&m);
    return rc;
}

typedef CK_RV (*delete_token_fn)(CK_SLOT_ID, CK_UTF8CHAR_PTR, CK_ULONG);

static int token_delete(int argc, char **argv, cli_opts *o)
{
    const char *name = NULL;
    int rc = parse_simple("token delete", delete_usage, false, argc, argv, o, &name);
    if (rc >= 0)
        return rc;
    if (!name)
        return cli_usage_error("token delete", "name the token to delete (a pkcs11: URI or a label)");
    p11_module m;
    if ((rc = p11_load(o, &m)) != CLI_OK)
        return rc;
    char *so_pin = NULL;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    if ((rc = p11_find_token(&m, name, &slot, &ti)) != CLI_OK)
        goto out;
    delete_token_fn del = (delete_token_fn)dlsym(m.dl, "coffer_delete_token");
    if (!del) {
        cli_error("this module cannot delete tokens; use C_InitToken to wipe it "
                  "(`coffer token init --token TOKEN --label LABEL`)");
        rc = CLI_FAIL;
        goto out;
    }
    if ((rc = pin_get(o, PIN_SO, PIN_MAY_PROMPT, &so_pin)) != CLI_OK)
        goto out;
    CK_RV rv = del(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
    if (rv != CKR_OK) {
        rc = p11_pin_fail(&m, slot, CKU_SO, "deleting the token", rv);
        goto out;
    }
    char label[33];
    p11_str(label, ti.label, sizeof(ti.label));
    printf("token '%s' (slot %lu) deleted\n", label, (unsigned long)slot);
out:
    pin_free(so_pin);
    p11_unload(&m);
    return rc;
}

int cmd_token(int argc, char **argv, cli_opts *o)
{
    static const struct {
        const char *name;
        int (*run)(int, char **, cli_opts *);
    } sub[] = {
        { "init", token_init },
        { "init-pin", token_init_pin },
        { "list", token_list },
        { "delete", token_delete },
    };
    if (argc < 2) {
        fputs(token_usage, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(token_usage, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
        if (strcmp(argv[1], sub[i].name) == 0)
            return sub[i].run(argc - 1, argv + 1, o);
    return cli_usage_error("token", "unknown command 'token %s'", argv[1]);
}
