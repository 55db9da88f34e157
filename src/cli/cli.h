/* cli.h: what the command files of `coffer` share: the options every command accepts, the exit
 * codes, the user-facing error printer, the PIN sources, hex and JSON helpers, and the name
 * tables for PKCS#11 constants.
 *
 * The CLI is a plain PKCS#11 client: it reaches the module only through p11.h, so it behaves the
 * same whether the module keeps its tokens in-process or talks to a remote cofferd. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "hsm/pkcs11.h"

/* Exit codes: 0 success, 1 an operation failed, 2 the command line was wrong. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Options accepted by every command (and before the command). */
typedef struct {
    const char *module;        /* --module PATH; NULL: $COFFER_MODULE, then the built-in paths */
    const char *pin_file;      /* --pin-file FILE: the user PIN on its first line */
    const char *so_pin_file;   /* --so-pin-file FILE: the SO PIN on its first line */
    bool json;                 /* --json (only on list commands and info) */
} cli_opts;

/* "coffer: <message>\n" on stderr. The message is one sentence a user can act on. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: the message, then "Try 'coffer <cmd> --help'."; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- option parsing (getopt_long over one command's arguments) ------------------------- */
/* Option ids shared by every command's table; command-specific ids start at OPT_CMD. */
enum {
    OPT_HELP = 'h',
    OPT_MODULE = 0x100,
    OPT_PIN_FILE,
    OPT_SO_PIN_FILE,
    OPT_JSON,
    OPT_CMD = 0x200,
};
struct option;
/* Builds a getopt_long table: the common options, then `extra` (terminated by a zero entry).
 * `with_json` adds --json. The result is static storage, valid until the next call. */
const struct option *cli_options(const struct option *extra, bool with_json);
/* Handles a common option id (help is the caller's); returns false when `id` is not common. */
bool cli_common_option(int id, const char *arg, cli_opts *o);
/* Reports what getopt_long (optstring ":h...") returned for a bad option: ':' a missing value,
 * anything else an unknown option. Returns CLI_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* ---- PINs (pin.c) ---------------------------------------------------------------------- */
typedef enum { PIN_USER, PIN_SO } pin_kind;
typedef enum {
    PIN_FROM_FILE_OR_ENV,   /* only --pin-file / --so-pin-file or the environment */
    PIN_MAY_PROMPT,         /* those, then a no-echo prompt on /dev/tty */
    PIN_PROMPT_TWICE,       /* as above, asking twice and comparing (choosing a new PIN) */
} pin_mode;
/* Gets a PIN from the sources in order: the option's file, $COFFER_PIN / $COFFER_SO_PIN, then
 * (mode permitting) the terminal. Returns CLI_OK with *pin a NUL-terminated secret buffer (free
 * with pin_free), or CLI_FAIL after printing why. With PIN_FROM_FILE_OR_ENV and no source given,
 * returns CLI_OK with *pin NULL and prints nothing. */
int pin_get(const cli_opts *o, pin_kind kind, pin_mode mode, char **pin);
void pin_free(char *pin);

/* ---- names.c: PKCS#11 constants for printing ------------------------------------------ */
const char *ckr_name(CK_RV rv);                      /* "CKR_PIN_INCORRECT" or "CKR_0x..." */
/* A sentence fragment for a return value where one helps ("the user PIN is incorrect"), else NULL. */
const char *ckr_hint(CK_RV rv);
const char *ckm_name(CK_MECHANISM_TYPE m);           /* NULL when unknown */
const char *ckk_name(CK_KEY_TYPE k);                 /* "rsa", "ec", ...; NULL when unknown */
const char *cko_name(CK_OBJECT_CLASS c);             /* "private", "public", "secret", "cert", "data" */
/* Mechanism flags as words ("sign,verify,generate_key_pair"), written into buf. */
const char *mech_flags_words(CK_FLAGS f, char *buf, size_t len);
json_t *mech_flags_json(CK_FLAGS f);

/* ---- util.c ---------------------------------------------------------------------------- */
/* Lowercase hex of n bytes into a new string (free). */
char *hex_encode(const uint8_t *p, size_t n);
/* Parses hex (optional ':' separators) into a malloc'd buffer; false when malformed or empty. */
bool hex_decode(const char *s, uint8_t **out, size_t *outlen);
/* Copies a blank-padded PKCS#11 string field into a NUL-terminated one, trailing blanks removed. */
void p11_str(char *dst, const unsigned char *src, size_t srclen);
/* Reads a whole file (at most 1 MiB); prints the error and returns false on failure. */
bool read_file(const char *path, uint8_t **data, size_t *len);
/* Prints a JSON value to stdout (indented, keys in insertion order) and frees it. */
int json_print(json_t *v);

/* ---- the commands ---------------------------------------------------------------------- */
int cmd_info(int argc, char **argv, cli_opts *o);
int cmd_token(int argc, char **argv, cli_opts *o);
int cmd_key(int argc, char **argv, cli_opts *o);
int cmd_tls(int argc, char **argv, cli_opts *o);
int cmd_audit(int argc, char **argv, cli_opts *o);
