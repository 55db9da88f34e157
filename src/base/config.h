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

typedef struct {
    char source[CF_PATH_MAX];     /* the file read, or "" for built-in defaults */
    char store_dir[CF_PATH_MAX];  /* [store] dir */
    uint32_t user_pin_max_tries;  /* [token] user_pin_max_tries: consecutive failures before lock (0 = never) */
    uint32_t so_pin_max_tries;    /* [token] so_pin_max_tries */
    uint32_t pin_min_len;         /* [token] pin_min_len */
    uint32_t pin_max_len;         /* [token] pin_max_len */
    uint32_t pbkdf2_iterations;   /* [token] pbkdf2_iterations for new PINs */
    int log_level;                /* [log] level, -1 when unset */
} cf_config;

/* Fills defaults only (no file). */
void cf_config_defaults(cf_config *c);
/* Finds and parses the configuration. On failure writes one sentence (file:line: key: problem)
 * into err. */
cf_err cf_config_load(cf_config *c, char *err, size_t errlen);
/* Parses a given file (used by the above and by tests). */
cf_err cf_config_load_file(cf_config *c, const char *path, char *err, size_t errlen);
/* Parses INI text from memory (for the fuzz harness); name is used in messages. */
cf_err cf_config_load_string(cf_config *c, const char *text, const char *name, char *err, size_t errlen);
