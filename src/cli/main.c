/* main.c: `coffer`, the admin command line. Global options, dispatch to the command files, and
 * the option and error plumbing they share. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/version.h"
#include "cli/cli.h"

static const char usage_text[] =
    "Usage: coffer [--module PATH] COMMAND [ARGS]\n"
    "\n"
    "The admin command line of coffer, a PKCS#11 client of the coffer module.\n"
    "\n"
    "Commands:\n"
    "  info [--json]                       version and the module's mechanisms\n"
    "  token init --label LABEL [--token TOKEN]\n"
    "                                      initialize the free slot (or re-initialize TOKEN)\n"
    "  token init-pin --token TOKEN        set a new user PIN as SO (unlocks a locked PIN)\n"
    "  token list [--json]                 list the tokens\n"
    "  token delete TOKEN                  delete a token and all its objects (SO PIN)\n"
    "  key list --token TOKEN [--json]     list the objects of a token\n"
    "  key generate --token TOKEN --type TYPE --label LABEL [--id HEX] [--extractable]\n"
    "  key import --token TOKEN --label LABEL [--id HEX] [--aes] FILE\n"
    "  key delete OBJECT-URI | --token TOKEN LABEL\n"
    "  tls init --dir DIR [--server-name NAME]\n"
    "                                      a CA, server and client certificates for cofferd's TLS\n"
    "  audit show [--since T] [--until T] [--token SLOT] [--key LABEL] [--event E] [--json]\n"
    "  audit verify                        cofferd's audit log (verify needs <store>/master.key)\n"
    "\n"
    "Options accepted by every command:\n"
    "  --module PATH        the PKCS#11 module to load (default: $COFFER_MODULE, else the coffer module)\n"
    "  --pin-file FILE      read the user PIN from the first line of FILE (else $COFFER_PIN, else a prompt)\n"
    "  --so-pin-file FILE   read the SO PIN from the first line of FILE (else $COFFER_SO_PIN, else a prompt)\n"
    "  -h, --help           show the usage of a command\n"
    "  --version            print the version\n"
    "\n"
    "TOKEN is a PKCS#11 URI (pkcs11:token=demo) or a token label; OBJECT-URI names an object\n"
    "(pkcs11:token=demo;object=web;type=private). `coffer COMMAND --help` describes each command.\n";

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("coffer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("coffer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "; try 'coffer%s%s --help'\n", cmd && *cmd ? " " : "", cmd ? cmd : "");
    va_end(ap);
    return CLI_USAGE;
}

static const struct option common_options[] = {
    { "help", no_argument, NULL, OPT_HELP },
    { "module", required_argument, NULL, OPT_MODULE },
    { "pin-file", required_argument, NULL, OPT_PIN_FILE },
    { "so-pin-file", required_argument, NULL, OPT_SO_PIN_FILE },
};
#define N_COMMON (sizeof(common_options) / sizeof(common_options[0]))

const struct option *cli_options(const struct option *extra, bool with_json)
{
    static struct option table[32];
    size_t n = 0;
    for (size_t i = 0; i < N_COMMON; i++)
        table[n++] = common_options[i];
    if (with_json)
        table[n++] = (struct option){ "json", no_argument, NULL, OPT_JSON };
    for (size_t i = 0; extra && extra[i].name && n < 31; i++)
        table[n++] = extra[i];
    table[n] = (struct option){ 0 };
    return table;
}

bool cli_common_option(int id, const char *arg, cli_opts *o)
{
    switch (id) {
    case OPT_MODULE: o->module = arg; return true;
    case OPT_PIN_FILE: o->pin_file = arg; return true;
    case OPT_SO_PIN_FILE: o->so_pin_file = arg; return true;
    case OPT_JSON: o->json = true; return true;
    default: return false;
    }
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':') {
        if (optopt && optopt < 0x100)
            return cli_usage_error(cmd, "option '-%c' needs a value", optopt);
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    }
    if (optopt && optopt < 0x100)
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv, cli_opts *o);
} commands[] = {
    { "info", cmd_info },
    { "token", cmd_token },
    { "key", cmd_key },
    { "tls", cmd_tls },
    { "audit", cmd_audit },
};

int main(int argc, char **argv)
{
    cli_opts o = { 0 };
    static const struct option extra[] = {
        { "version", no_argument, NULL, OPT_CMD },
        { 0 },
    };
    const struct option *opts = cli_options(extra, false);
    opterr = 0;
    int c;
    /* '+': stop at the command name; the command parses the rest. */
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage_text, stdout);
            return CLI_OK;
        }
        if (c == OPT_CMD) {
            printf("coffer %s\n", COFFER_VERSION);
            return CLI_OK;
        }
        if (!cli_common_option(c, optarg, &o))
            return cli_bad_option(NULL, c, argv);
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - optind, argv + optind, &o);
    }
    if (strcmp(name, "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    return cli_usage_error(NULL, "unknown command '%s'", name);
}
