/* tls.c: `coffer tls init`: a quick-start PKI for the remote HSM over TLS (docs/remote.md, "TLS"):
 * a CA, a server certificate and a client certificate in one folder. The X.509 work is
 * cf_tls_pki_init (src/crypto/tls_pki.c); this file is the command line. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

static const char usage[] =
    "Usage: coffer tls init --dir DIR [--server-name NAME]\n"
    "\n"
    "Makes a quick-start PKI for cofferd's TLS listener ([hsm] listen = tls:HOST:PORT) in DIR\n"
    "(created if missing; no file is overwritten):\n"
    "  ca.pem, ca.key           a self-signed CA (give ca.pem to [hsm] client_ca and [client] ca)\n"
    "  server.pem, server.key   the server certificate ([hsm] cert, key)\n"
    "  client.pem, client.key   a client certificate ([client] cert, key)\n"
    "ECDSA P-256 keys (files of mode 0600), certificates valid for one year.\n"
    "\n"
    "  --dir DIR            the folder to write\n"
    "  --server-name NAME   the server's DNS name or IP address as clients dial it\n"
    "                       (default: localhost and 127.0.0.1)\n";

enum { OPT_DIR = OPT_CMD, OPT_SERVER_NAME };

int cmd_tls(int argc, char **argv, cli_opts *o)
{
    static const struct option extra[] = {
        { "dir", required_argument, NULL, OPT_DIR },
        { "server-name", required_argument, NULL, OPT_SERVER_NAME },
        { 0 },
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "init") != 0)
        return cli_usage_error("tls", "unknown subcommand '%s'", argv[1]);
    const struct option *opts = cli_options(extra, false);
    const char *dir = NULL, *name = NULL;
    int c;
    optind = 0;
    argc--, argv++;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (c == OPT_DIR)
            dir = optarg;
        else if (c == OPT_SERVER_NAME)
            name = optarg;
        else if (!cli_common_option(c, optarg, o))
            return cli_bad_option("tls init", c, argv);
    }
    if (optind < argc)
        return cli_usage_error("tls init", "unexpected argument '%s'", argv[optind]);
    if (!dir || !*dir)
        return cli_usage_error("tls init", "--dir DIR is required");
    char err[600];
    if (cf_tls_pki_init(dir, name, err, sizeof err) != CF_OK) {
        cli_error("%s", err);
        return CLI_FAIL;
    }
    printf("wrote %s/ca.pem, ca.key, server.pem, server.key, client.pem, client.key (server name: %s)\n", dir,
           name ? name : "localhost, 127.0.0.1");
    return CLI_OK;
}
