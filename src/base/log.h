/* log.h: leveled logging to stderr. Never pass secrets (PINs, keys, authValues) to these. The
 * level comes from COFFER_LOG (error|warn|info|debug) or the config's [log] level; the PKCS#11
 * module defaults to warn so that it does not chatter inside other programs. */
#pragma once

typedef enum { CF_LOG_ERROR = 0, CF_LOG_WARN, CF_LOG_INFO, CF_LOG_DEBUG } cf_log_level;

void cf_log_set_level(cf_log_level lvl);
cf_log_level cf_log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns -1 when unknown. */
int cf_log_parse_level(const char *s);
void cf_log(cf_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cf_error(...) cf_log(CF_LOG_ERROR, __VA_ARGS__)
#define cf_warn(...) cf_log(CF_LOG_WARN, __VA_ARGS__)
#define cf_info(...) cf_log(CF_LOG_INFO, __VA_ARGS__)
#define cf_debug(...) cf_log(CF_LOG_DEBUG, __VA_ARGS__)
