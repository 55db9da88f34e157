/* log.c: see log.h. One fprintf per message so lines from threads do not interleave. */
#include "base/log.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_level = -1;

static const char *const names[] = { "error", "warn", "info", "debug" };

int cf_log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

cf_log_level cf_log_get_level(void)
{
    if (g_level < 0) {
        int l = cf_log_parse_level(getenv("COFFER_LOG"));
        g_level = l >= 0 ? l : CF_LOG_WARN;
    }
    return (cf_log_level)g_level;
}

void cf_log_set_level(cf_log_level lvl)
{
    /* COFFER_LOG in the environment wins over configuration, for debugging a deployed setup. */
    if (cf_log_parse_level(getenv("COFFER_LOG")) < 0)
        g_level = (int)lvl;
}

void cf_log(cf_log_level lvl, const char *fmt, ...)
{
    if ((int)lvl > (int)cf_log_get_level())
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "coffer: %s: %s\n", names[lvl], buf);
}
