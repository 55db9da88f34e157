/* audit.c: cofferd appends the engine's audit events to the store (see audit.h). */
#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/secmem.h"
#include "daemon/audit.h"
#include "daemon/daemon.h"
#include "hsm/hsm.h"

/* Private-key operations are counted in memory and written as one key_use record per key and
 * operation with its count, FLUSH_SECONDS after the last write (by the next use, or by
 * cofferd_audit_tick when none comes) and at shutdown: an append costs a transaction (about
 * 50 us), which on every C_SignInit would cap the server's signing rate. */
#define USES_MAX 256
#define FLUSH_SECONDS 5

typedef struct {
    uint64_t slot, app;
    int64_t object;
    int op;
    cf_err result;      /* failed uses are counted too, per result: a loop of refused inits is
                         * one record every FLUSH_SECONDS, not a transaction each */
    char label[sizeof(((hsm_audit_event *)0)->label)];
    uint64_t count;
} key_uses;

static struct {
    cf_store *store;
    uint8_t *key;       /* CF_AUDIT_KEY_LEN, secret memory */
    pthread_mutex_t mu;
    key_uses uses[USES_MAX];
    size_t nuses;
    int64_t last_flush;
} A = { .mu = PTHREAD_MUTEX_INITIALIZER };

static const char *user_name(CK_USER_TYPE u)
{
    switch (u) {
    case CKU_SO: return "so";
    case CKU_USER: return "user";
    case CKU_CONTEXT_SPECIFIC: return "context";
    default: return "-";
    }
}

/* A result as the log spells it: OK, PIN_INCORRECT... */
static const char *result_name(cf_err rv)
{
    const char *res = cf_err_name(rv);
    return strncmp(res, "CF_E_", 5) == 0 ? res + 5 : res;
}

static void append(int64_t time, uint64_t slot, int64_t object, const char *event, const char *detail)
{
    cf_audit_record r = { .time = time, .token = (int64_t)slot, .object = object, .event = event, .detail = detail };
    cf_err rv = cf_store_audit_append(A.store, &r, A.key);
    if (rv != CF_OK)
        cf_error("audit: cannot append a %s event: %s", event, cf_err_message(rv));
}

/* A.mu held. */
static void flush_uses(int64_t now)
{
    for (size_t i = 0; i < A.nuses; i++) {
        key_uses *u = &A.uses[i];
        char detail[256];
        snprintf(detail, sizeof detail, "app=%" PRIu64 " result=%s op=%s count=%" PRIu64 "%s%s", u->app,
                 result_name(u->result), u->op == HSM_OP_SIGN ? "sign" : u->op == HSM_OP_DECRYPT ? "decrypt" : "other",
                 u->count, u->label[0] ? " label=" : "", u->label);
        append(now, u->slot, u->object, hsm_audit_type_name(HSM_AUDIT_KEY_USE), detail);
    }
    A.nuses = 0;
    A.last_flush = now;
}

/* Counts a key use, successful or not; true when counted (else the caller writes it as a record). */
static bool count_use(const hsm_audit_event *e)
{
    if (e->type != HSM_AUDIT_KEY_USE)
        return false;
    pthread_mutex_lock(&A.mu);
    size_t i;
    for (i = 0; i < A.nuses; i++) {
        key_uses *u = &A.uses[i];
        if (u->slot == e->slot && u->object == e->object && u->op == (int)e->op && u->app == e->app &&
            u->result == e->result && memcmp(u->label, e->label, sizeof u->label) == 0)
            break;
    }
    if (i == A.nuses) {
        if (A.nuses == USES_MAX)
            flush_uses(e->time);
        i = A.nuses++;
        A.uses[i] = (key_uses){ .slot = e->slot, .app = e->app, .object = e->object, .op = (int)e->op,
                                .result = e->result };
        memcpy(A.uses[i].label, e->label, sizeof A.uses[i].label);
    }
    A.uses[i].count++;
    if (e->time - A.last_flush >= FLUSH_SECONDS)
        flush_uses(e->time);
    pthread_mutex_unlock(&A.mu);
    return true;
}

/* WRAP and DERIVE name a second key (the wrapping / base key): its store id and label, before the
 * event's own label= (which stays last, as coffer audit show --key reads it). */
static int other_key(char *p, size_t len, const hsm_audit_event *e)
{
    const char *what = e->type == HSM_AUDIT_WRAP ? "wrapping" : e->type == HSM_AUDIT_DERIVE ? "base" : NULL;
    if (!what)
        return 0;
    if (!e->other_label[0])
        return snprintf(p, len, " %s_key=%" PRId64, what, e->other_object);
    return snprintf(p, len, " %s_key=%" PRId64 " %s_label=%s", what, e->other_object, what, e->other_label);
}

static void on_event(void *ctx, const hsm_audit_event *e)
{
    (void)ctx;
    if (count_use(e))
        return;
    char detail[256];
    int n = snprintf(detail, sizeof detail, "app=%" PRIu64 " result=%s", e->app, result_name(e->result));
    if (e->user != CK_UNAVAILABLE_INFORMATION && n > 0 && (size_t)n < sizeof detail)
        n += snprintf(detail + n, sizeof detail - (size_t)n, " user=%s", user_name(e->user));
    if (e->type == HSM_AUDIT_KEY_USE && n > 0 && (size_t)n < sizeof detail)
        n += snprintf(detail + n, sizeof detail - (size_t)n, " op=%s",
                      e->op == HSM_OP_SIGN ? "sign" : e->op == HSM_OP_DECRYPT ? "decrypt" : "other");
    if (n > 0 && (size_t)n < sizeof detail)
        n += other_key(detail + n, sizeof detail - (size_t)n, e);
    if (e->label[0] && n > 0 && (size_t)n < sizeof detail)
        snprintf(detail + n, sizeof detail - (size_t)n, " label=%s", e->label);
    append(e->time, e->slot, e->object, hsm_audit_type_name(e->type), detail);
}

cf_err cofferd_audit_start(const cf_config *cfg, cf_store *store, char *err, size_t errlen)
{
    bool has_state = false, created = false;
    for (size_t i = 0; i < cfg->n_tpm && !has_state; i++) {
        uint8_t *blob = NULL;
        size_t len;
        if (cf_store_tpm_get(store, cfg->tpm[i].name, &blob, &len) == CF_OK)
            has_state = true;
        free(blob);
    }
    uint8_t *master = cf_secret_alloc(CF_MASTER_KEY_LEN);
    A.key = cf_secret_alloc(CF_AUDIT_KEY_LEN);
    if (!master || !A.key) {
        cf_secret_free(master, CF_MASTER_KEY_LEN);
        cofferd_audit_stop();
        snprintf(err, errlen, "out of memory");
        return CF_E_NOMEM;
    }
    cf_err rv = cf_master_key_load(cfg->store_dir, !has_state, master, &created, err, errlen);
    if (rv == CF_OK) {
        rv = cf_store_audit_key(master, A.key);
        if (rv != CF_OK)
            snprintf(err, errlen, "cannot derive the audit key: %s", cf_err_message(rv));
    }
    cf_secret_free(master, CF_MASTER_KEY_LEN);
    if (rv != CF_OK) {
        cofferd_audit_stop();
        return rv;
    }
    if (created)
        cf_info("created a new master key in %s/master.key", cfg->store_dir);
    A.store = store;
    A.last_flush = (int64_t)time(NULL);
    hsm_set_audit(on_event, NULL);
    cf_info("audit log: security events are appended to the store (coffer audit show / verify)");
    return CF_OK;
}

void cofferd_audit_tick(int64_t now)
{
    pthread_mutex_lock(&A.mu);
    if (A.store && A.key && A.nuses && now - A.last_flush >= FLUSH_SECONDS)
        flush_uses(now);
    pthread_mutex_unlock(&A.mu);
}

void cofferd_audit_stop(void)
{
    hsm_set_audit(NULL, NULL);
    pthread_mutex_lock(&A.mu);
    if (A.store && A.key && A.nuses)
        flush_uses((int64_t)time(NULL));
    A.nuses = 0;
    pthread_mutex_unlock(&A.mu);
    if (A.key)
        cf_secret_free(A.key, CF_AUDIT_KEY_LEN);
    A.key = NULL;
    A.store = NULL;
}
