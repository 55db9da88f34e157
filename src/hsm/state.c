/* state.c: engine life cycle (C_Initialize / C_Finalize) and the view of the store's tokens and
 * token objects, kept in step with other processes that use the same store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/secmem.h"
#include "base/version.h"
#include "hsm/internal.h"

hsm_state g = { .lock = PTHREAD_RWLOCK_INITIALIZER };

void hsm_token_forget_logins(hsm_token *t)
{
    for (size_t i = 0; i < t->napps; i++)
        cf_secret_free(t->apps[i].dk, CF_DATA_KEY_LEN);
    t->napps = 0;
}

static const hsm_app_login *login_of(const hsm_token *t, uint64_t app)
{
    for (size_t i = 0; t && i < t->napps; i++)
        if (t->apps[i].app == app)
            return &t->apps[i];
    return NULL;
}

hsm_app_login *hsm_token_login_rec(hsm_token *t, uint64_t app)
{
    return (hsm_app_login *)login_of(t, app);
}

/* The application's sessions on the token (a scan, once per login). */
static size_t sessions_of(const hsm_token *t, uint64_t app)
{
    size_t n = 0;
    for (size_t i = 0; i < g.sessions.cap; i++) {
        const hsm_session *s = g.sessions.keys[i] ? g.sessions.vals[i] : NULL;
        n += s && s->slot == t->slot && s->app == app;
    }
    return n;
}

CK_USER_TYPE hsm_token_login_of(const hsm_token *t, uint64_t app)
{
    const hsm_app_login *l = login_of(t, app);
    return l ? l->user : HSM_NO_LOGIN;
}

const uint8_t *hsm_token_dk_of(const hsm_token *t, uint64_t app)
{
    const hsm_app_login *l = login_of(t, app);
    return l ? l->dk : NULL;
}

cf_err hsm_token_set_login(hsm_token *t, uint64_t app, CK_USER_TYPE user, uint8_t *dk)
{
    if (login_of(t, app)) {
        cf_secret_free(dk, CF_DATA_KEY_LEN);
        return CF_E_USER_ALREADY_LOGGED_IN;
    }
    if (t->napps == t->capps) {
        size_t cap = t->capps ? 2 * t->capps : 4;
        hsm_app_login *p = realloc(t->apps, cap * sizeof *p);
        if (!p) {
            cf_secret_free(dk, CF_DATA_KEY_LEN);
            return CF_E_NOMEM;
        }
        t->apps = p;
        t->capps = cap;
    }
    t->apps[t->napps++] = (hsm_app_login){ app, user, dk, sessions_of(t, app) };
    return CF_OK;
}

static void token_free(hsm_token *t)
{
    if (!t)
        return;
    hsm_token_forget_logins(t);
    free(t->apps);
    hsm_map_free(&t->by_store_id);
    cf_wipe(&t->rec, sizeof t->rec);
    free(t);
}

hsm_token *hsm_token_get(uint64_t slot)
{
    for (size_t i = 0; i < g.ntokens; i++)
        if (g.tokens[i]->slot == slot)
            return g.tokens[i];
    return NULL;
}

/* Drops every object of a token from the handle map (the token was deleted or re-initialized by
 * another process). */
static void token_drop_objects(hsm_token *t)
{
    for (size_t i = 0; i < g.objects.cap; i++) {
        hsm_object *o = g.objects.keys[i] ? g.objects.vals[i] : NULL;
        if (o && o->slot == t->slot && o->is_token) {
            hsm_map_del(&g.objects, o->handle);
            hsm_object_free(o);
            i--; /* backward shift may have moved an entry into i */
        }
    }
    hsm_map_free(&t->by_store_id);
    t->loaded = false;
}

cf_err hsm_tokens_refresh(void)
{
    cf_store_token *rows = NULL;
    size_t n = 0;
    CF_TRY(cf_store_tokens(g.store, &rows, &n));
    cf_err rv = cf_store_free_slot(g.store, &g.free_slot);
    if (rv != CF_OK) {
        free(rows);
        return rv;
    }
    hsm_token **next = calloc(n ? n : 1, sizeof *next);
    if (!next) {
        free(rows);
        return CF_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        hsm_token *t = hsm_token_get(rows[i].slot);
        if (t) {
            /* Re-initialized elsewhere (the serial changes on every init): forget its objects and
             * any login made against the old PINs. */
            if (strcmp(t->rec.serial, rows[i].serial) != 0) {
                token_drop_objects(t);
                hsm_token_forget_logins(t);
            }
            t->rec = rows[i];
        } else {
            t = calloc(1, sizeof *t);
            if (!t) {
                free(next);
                cf_wipe(rows, n * sizeof *rows);
                free(rows);
                return CF_E_NOMEM;
            }
            t->slot = rows[i].slot;
            t->rec = rows[i];
        }
        next[i] = t;
    }
    /* tokens that disappeared (deleted by another process) */
    for (size_t i = 0; i < g.ntokens; i++) {
        bool kept = false;
        for (size_t j = 0; j < n; j++)
            kept |= next[j] == g.tokens[i];
        if (!kept) {
            token_drop_objects(g.tokens[i]);
            token_free(g.tokens[i]);
        }
    }
    free(g.tokens);
    g.tokens = next;
    g.ntokens = n;
    cf_wipe(rows, n * sizeof *rows);
    free(rows);
    return CF_OK;
}

typedef struct {
    hsm_token *t;
    hsm_map seen;
} sync_ctx;

static cf_err sync_one(void *ctx, int64_t id, int64_t seq)
{
    sync_ctx *c = ctx;
    CF_TRY(hsm_map_put(&c->seen, (uint64_t)id, (void *)1));
    hsm_object *o = hsm_map_get(&c->t->by_store_id, (uint64_t)id);
    if (o && o->seq == seq)
        return CF_OK;
    cf_err rv = hsm_object_load(c->t, id);
    /* deleted between scan and load: the next sync drops it */
    return rv == CF_E_NOT_FOUND ? CF_OK : rv;
}

/* Brings a loaded token's objects in line with the store: new ones loaded, changed ones reloaded
 * (same handle), vanished ones dropped. */
static cf_err token_sync(hsm_token *t)
{
    sync_ctx c = { t, { 0 } };
    cf_err rv = cf_store_obj_scan(g.store, t->slot, sync_one, &c);
    if (rv == CF_OK) {
        for (size_t i = 0; i < t->by_store_id.cap; i++) {
            uint64_t id = t->by_store_id.keys[i];
            if (id && !hsm_map_get(&c.seen, id)) {
                hsm_object *o = t->by_store_id.vals[i];
                hsm_map_del(&t->by_store_id, id);
                hsm_map_del(&g.objects, o->handle);
                hsm_object_free(o);
                i--;
            }
        }
    }
    hsm_map_free(&c.seen);
    return rv;
}

static cf_err load_one(void *ctx, int64_t id, int64_t seq, cf_attr *attrs, size_t n)
{
    hsm_token *t = ctx;
    if (hsm_map_get(&t->by_store_id, (uint64_t)id)) {
        cf_attrs_free(attrs, n);
        return CF_OK;
    }
    return hsm_object_adopt(t, id, seq, attrs, n);
}

cf_err hsm_token_load(hsm_token *t)
{
    if (t->loaded)
        return CF_OK;
    /* first load: every record in one query; later changes go through token_sync */
    CF_TRY(cf_store_obj_load_all(g.store, t->slot, load_one, t));
    t->loaded = true;
    return CF_OK;
}

cf_err hsm_sync_if_changed(void)
{
    bool changed = false;
    CF_TRY(cf_store_changed(g.store, &changed));
    if (!changed)
        return CF_OK;
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = hsm_tokens_refresh();
    for (size_t i = 0; rv == CF_OK && i < g.ntokens; i++)
        if (g.tokens[i]->loaded)
            rv = token_sync(g.tokens[i]);
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

void hsm_forget_after_fork(void)
{
    g = (hsm_state){ .lock = PTHREAD_RWLOCK_INITIALIZER };
}

bool hsm_is_initialized(void)
{
    return g.initialized;
}

cf_err hsm_initialize(char *err, size_t errlen)
{
    pthread_rwlock_wrlock(&g.lock);
    cf_err rv = CF_OK;
    CF_CHECK(!g.initialized, CF_E_ALREADY_INITIALIZED);
    CF_GUARD(cf_config_load(&g.cfg, err, errlen));
    if (g.cfg.log_level >= 0)
        cf_log_set_level((cf_log_level)g.cfg.log_level);
    rv = cf_store_open(g.cfg.store_dir, &g.store);
    if (rv != CF_OK) {
        snprintf(err, errlen, "cannot open the store in %s (%s)", g.cfg.store_dir, cf_err_message(rv));
        goto out;
    }
    /* Handles start at a random point, so a handle from before a restart of the engine (a remote
     * client reconnecting to a restarted cofferd) names nothing rather than someone else's
     * session or object. */
    uint32_t r[2] = { 0, 0 };
    (void)cf_random(r, sizeof r);
    g.next_session = 1 + (r[0] & 0x3fffffffu);
    g.next_object = 1 + (r[1] & 0x3fffffffu);
    rv = hsm_tokens_refresh();
    if (rv != CF_OK) {
        cf_store_close(g.store);
        g.store = NULL;
        goto out;
    }
    g.initialized = true;
out:
    pthread_rwlock_unlock(&g.lock);
    return rv;
}

cf_err hsm_finalize(void)
{
    pthread_rwlock_wrlock(&g.lock);
    if (!g.initialized) {
        pthread_rwlock_unlock(&g.lock);
        return CF_E_NOT_INITIALIZED;
    }
    for (size_t i = 0; i < g.sessions.cap; i++) {
        hsm_session *s = g.sessions.keys[i] ? g.sessions.vals[i] : NULL;
        if (s) {
            pthread_mutex_lock(&s->mu);
            hsm_session_free_ops(s);
            pthread_mutex_unlock(&s->mu);
            hsm_session_unref(s);
        }
    }
    hsm_map_free(&g.sessions);
    for (size_t i = 0; i < g.objects.cap; i++)
        if (g.objects.keys[i])
            hsm_object_free(g.objects.vals[i]);
    hsm_map_free(&g.objects);
    hsm_map_free(&g.app_objects);
    for (size_t i = 0; i < g.ntokens; i++)
        token_free(g.tokens[i]);
    free(g.tokens);
    g.tokens = NULL;
    g.ntokens = 0;
    cf_store_close(g.store);
    g.store = NULL;
    g.initialized = false;
    pthread_rwlock_unlock(&g.lock);
    return CF_OK;
}

void hsm_pad(uint8_t *dst, size_t n, const char *src)
{
    memset(dst, ' ', n);
    size_t l = strlen(src);
    memcpy(dst, src, l < n ? l : n);
}

void hsm_get_info(CK_INFO *info)
{
    memset(info, 0, sizeof *info);
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    hsm_pad(info->manufacturerID, sizeof info->manufacturerID, "coffer");
    hsm_pad(info->libraryDescription, sizeof info->libraryDescription, "coffer PKCS#11 token");
    info->libraryVersion.major = COFFER_VERSION_MAJOR;
    info->libraryVersion.minor = COFFER_VERSION_MINOR;
}
