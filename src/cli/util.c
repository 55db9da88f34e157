/* util.c: small helpers of the CLI: hex, blank-padded PKCS#11 strings, files, JSON output. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

char *hex_encode(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool hex_decode(const char *s, uint8_t **out, size_t *outlen)
{
    size_t len = strlen(s);
    uint8_t *buf = malloc(len / 2 + 1);
    size_t n = 0;
    if (!buf)
        return false;
    for (size_t i = 0; i < len;) {
        if (s[i] == ':') {
            i++;
            continue;
        }
        int hi = nibble(s[i]), lo = i + 1 < len ? nibble(s[i + 1]) : -1;
        if (hi < 0 || lo < 0) {
            free(buf);
            return false;
        }
        buf[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    if (n == 0) {
        free(buf);
        return false;
    }
    *out = buf;
    *outlen = n;
    return true;
}

void p11_str(char *dst, const unsigned char *src, size_t srclen)
{
    size_t n = srclen;
    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
        n--;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

#define FILE_MAX (1u << 20)

bool read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rbe");
    if (!f) {
        cli_error("cannot read %s: %s", path, strerror(errno));
        return false;
    }
    uint8_t *buf = malloc(FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        cli_error("out of memory");
        return false;
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    bool err = ferror(f);
    fclose(f);
    if (err || n > FILE_MAX || n == 0) {
        cli_error("cannot read %s: %s", path,
                  err ? "read error" : n ? "it is larger than 1 MiB" : "it is empty");
        free(buf);
        return false;
    }
    *data = buf;
    *len = n;
    return true;
}

int json_print(json_t *v)
{
    if (!v) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    int r = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(v);
    fputc('\n', stdout);
    return r == 0 ? CLI_OK : CLI_FAIL;
}
