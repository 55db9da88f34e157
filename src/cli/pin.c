/* pin.c: where PINs come from. Never from the command line itself (argv is visible to every user
 * through /proc): a file named by --pin-file / --so-pin-file, then $COFFER_PIN / $COFFER_SO_PIN,
 * then a no-echo prompt on the controlling terminal. PINs live in wiped, locked memory. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "base/secmem.h"
#include "cli/cli.h"

#define PIN_MAX 256

void pin_free(char *pin)
{
    if (pin)
        cf_secret_free(pin, PIN_MAX + 1);
}

static char *pin_alloc(void)
{
    char *p = cf_secret_alloc(PIN_MAX + 1);
    if (!p)
        cli_error("out of memory");
    return p;
}

/* First line of the file, without its line ending. */
static int pin_from_file(const char *path, const char *what, char **out)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        cli_error("cannot read the %s file %s: %s", what, path, strerror(errno));
        return CLI_FAIL;
    }
    char *pin = pin_alloc();
    if (!pin) {
        fclose(f);
        return CLI_FAIL;
    }
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF && c != '\n' && n < PIN_MAX)
        pin[n++] = (char)c;
    bool too_long = n == PIN_MAX && c != EOF && c != '\n';
    fclose(f);
    if (n > 0 && pin[n - 1] == '\r')
        pin[--n] = '\0';
    if (too_long || n == 0) {
        pin_free(pin);
        cli_error("the %s file %s %s", what, path,
                  too_long ? "has a first line longer than 256 bytes" : "has an empty first line");
        return CLI_FAIL;
    }
    *out = pin;
    return CLI_OK;
}

static int pin_from_env(const char *var, char **out)
{
    const char *v = getenv(var);
    size_t n = strlen(v);
    if (n == 0 || n > PIN_MAX) {
        cli_error("$%s is %s", var, n ? "longer than 256 bytes" : "empty");
        return CLI_FAIL;
    }
    char *pin = pin_alloc();
    if (!pin)
        return CLI_FAIL;
    memcpy(pin, v, n);
    *out = pin;
    return CLI_OK;
}

/* The terminal, so that Ctrl-C during a no-echo prompt restores echo before the process dies. */
static int tty_fd = -1;
static struct termios tty_saved;

static void tty_restore_and_die(int sig)
{
    if (tty_fd >= 0)
        tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Prompts on fd without echo; reads one line into pin (PIN_MAX+1 bytes). */
static int prompt_once(int fd, const char *prompt, char *pin)
{
    if (write(fd, prompt, strlen(prompt)) < 0)
        return CLI_FAIL;
    struct termios t;
    bool restore = tcgetattr(fd, &t) == 0;
    if (restore) {
        tty_saved = t;
        tty_fd = fd;
        signal(SIGINT, tty_restore_and_die);
        signal(SIGTERM, tty_restore_and_die);
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        t.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &t);
    }
    size_t n = 0;
    bool ok = false, too_long = false;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (ch == '\n' || ch == '\r') {
            ok = true;
            break;
        }
        if (n < PIN_MAX)
            pin[n++] = ch;
        else
            too_long = true;
    }
    pin[n] = '\0';
    if (restore) {
        tcsetattr(fd, TCSAFLUSH, &tty_saved);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        tty_fd = -1;
    }
    if (write(fd, "\n", 1) < 0)
        ok = false;
    if (!ok || too_long || n == 0) {
        cli_error("%s", too_long ? "the PIN is longer than 256 bytes" : "no PIN was entered");
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int pin_from_tty(pin_kind kind, pin_mode mode, char **out)
{
    const char *who = kind == PIN_SO ? "SO PIN" : "user PIN";
    char prompt[64];
    int rc = CLI_FAIL;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (kind == PIN_SO)
            cli_error("no SO PIN given and no terminal to ask on; use --so-pin-file FILE or $COFFER_SO_PIN");
        else
            cli_error("no user PIN given and no terminal to ask on; use --pin-file FILE or $COFFER_PIN");
        return CLI_FAIL;
    }
    char *pin = pin_alloc(), *again = NULL;
    if (!pin)
        goto out;
    if (mode == PIN_PROMPT_TWICE)
        snprintf(prompt, sizeof(prompt), "New %s: ", who);
    else
        snprintf(prompt, sizeof(prompt), "%s: ", kind == PIN_SO ? "SO PIN" : "User PIN");
    if (prompt_once(fd, prompt, pin) != CLI_OK)
        goto out;
    if (mode == PIN_PROMPT_TWICE) {
        if (!(again = pin_alloc()))
            goto out;
        snprintf(prompt, sizeof(prompt), "Repeat the %s: ", who);
        if (prompt_once(fd, prompt, again) != CLI_OK)
            goto out;
        if (strcmp(pin, again) != 0) {
            cli_error("the two %ss differ; nothing was changed", who);
            goto out;
        }
    }
    *out = pin;
    pin = NULL;
    rc = CLI_OK;
out:
    pin_free(pin);
    pin_free(again);
    close(fd);
    return rc;
}

int pin_get(const cli_opts *o, pin_kind kind, pin_mode mode, char **pin)
{
    *pin = NULL;
    const char *file = kind == PIN_SO ? o->so_pin_file : o->pin_file;
    const char *var = kind == PIN_SO ? "COFFER_SO_PIN" : "COFFER_PIN";
    if (file)
        return pin_from_file(file, kind == PIN_SO ? "SO PIN" : "PIN", pin);
    if (getenv(var))
        return pin_from_env(var, pin);
    if (mode == PIN_FROM_FILE_OR_ENV)
        return CLI_OK;
    return pin_from_tty(kind, mode, pin);
}
