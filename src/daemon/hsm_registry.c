/* hsm_registry.c: the applications of the remote-HSM service (see hsm_server.h, and
 * docs/protocol.md "Handshake" for the application token).
 *
 * PKCS#11 defines login state per application (2.40 section 5.6), and a client process may open
 * several connections (its threads need not wait behind each other): the application, not the
 * connection, owns the engine application id and the sessions. Its connections share it through
 * the token HELLO_OK gave the first one; the last connection to close ends it.
 *
 * Locks: the registry mutex guards the list and every refcount; each application's mutex guards
 * its session list. Neither is held across a call into the engine, except in
 * hsrv_app_close_all_sessions (see there), so a slow engine call never stalls another application. */
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/secmem.h"
#include "crypto/crypto.h"
#include "daemon/hsm_server.h"
#include "hsm/hsm.h"

/* Engine application ids: one per application, never reused in the process (0 is the daemon's own
 * in-process application), so that a late hsm_app_end can never touch a newer application. */
static uint64_t next_app_id = 1;
static pthread_mutex_t next_app_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t new_app_id(void)
{
    pthread_mutex_lock(&next_app_mu);
    uint64_t id = next_app_id++;
    pthread_mutex_unlock(&next_app_mu);
    return id;
}

void hsrv_registry_init(hsrv_registry *r, uint32_t max_sessions)
{
    pthread_mutex_init(&r->mu, NULL);
    r->head = NULL;
    r->count = 0;
    r->max_sessions = max_sessions;
}

static void app_free(hsrv_app *a)
{
    hsm_app_end(a->id);          /* its sessions closed (with their operations and objects), logged out */
    cf_wipe(a->token, sizeof a->token);
    pthread_mutex_destroy(&a->mu);
    free(a->s);
    free(a);
}

void hsrv_registry_destroy(hsrv_registry *r)
{
    for (hsrv_app *a = r->head, *next; a; a = next) {
        next = a->next;
        app_free(a);
    }
    r->head = NULL;
    r->count = 0;
    pthread_mutex_destroy(&r->mu);
}

static bool same_peer(const hsrv_peer *a, const hsrv_peer *b)
{
    return a->kind == b->kind && memcmp(a->id, b->id, sizeof a->id) == 0;
}

/* The live application whose token is token, or NULL. Every token is compared in constant time
 * (cf_ct_equal): the time taken says nothing about how close a guess came. */
static hsrv_app *find_locked(hsrv_registry *r, const uint8_t *token)
{
    hsrv_app *hit = NULL;
    for (hsrv_app *a = r->head; a; a = a->next)
        if (cf_ct_equal(a->token, token, RPC_APP_TOKEN_LEN) && !hit)
            hit = a;
    return hit;
}

static cf_err app_new(const hsrv_peer *peer, size_t max_sessions, hsrv_app **out)
{
    hsrv_app *a = calloc(1, sizeof *a);
    if (!a)
        return CF_E_NOMEM;
    cf_err rv = cf_random(a->token, sizeof a->token);
    if (rv != CF_OK) {
        free(a);
        return rv;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->id = new_app_id();
    a->peer = *peer;
    a->max_sessions = max_sessions;
    a->refs = 1;
    *out = a;
    return CF_OK;
}

cf_err hsrv_registry_enter(hsrv_registry *r, const hsrv_peer *peer, uint16_t minor, const uint8_t *token,
                          hsrv_app **out, bool *joined)
{
    *out = NULL;
    *joined = false;
    if (token) {
        pthread_mutex_lock(&r->mu);
        hsrv_app *a = find_locked(r, token);
        if (a && same_peer(&a->peer, peer)) {
            a->refs++;
            pthread_mutex_unlock(&r->mu);
            *out = a;
            *joined = true;
            return CF_OK;
        }
        pthread_mutex_unlock(&r->mu);
        /* unknown (ended, or from before a restart) or another peer's: a new application, and the
         * client learns from the new token that its sessions are gone */
        cf_debug("hsm: a HELLO named an application that %s", a ? "belongs to another peer" : "is not known");
    }
    hsrv_app *a;
    CF_TRY(app_new(peer, r->max_sessions, &a));
    a->minor = minor;   /* before it is published: joiners read it unlocked */
    pthread_mutex_lock(&r->mu);
    a->next = r->head;
    r->head = a;
    r->count++;
    pthread_mutex_unlock(&r->mu);
    *out = a;
    return CF_OK;
}

void hsrv_registry_leave(hsrv_registry *r, hsrv_app *app)
{
    pthread_mutex_lock(&r->mu);
    bool last = --app->refs == 0;
    if (last) {
        /* unlinked before the engine call: a HELLO naming it from now on gets a new application */
        for (hsrv_app **pp = &r->head; *pp; pp = &(*pp)->next)
            if (*pp == app) {
                *pp = app->next;
                break;
            }
        r->count--;
    }
    pthread_mutex_unlock(&r->mu);
    if (!last)
        return;
    if (app->n)
        cf_debug("hsm: application %llu ended, %zu session(s) closed", (unsigned long long)app->id, app->n);
    app_free(app);
}

/* ---- sessions ---------------------------------------------------------------------------------
 * The list is sorted by handle, so that the check every request makes (hsrv_app_owns) is a binary
 * search, not a scan of up to max_sessions entries. */

/* a->mu held. The first index whose handle is not below h. */
static size_t lower_bound(const hsrv_app *a, CK_SESSION_HANDLE h)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->s[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool hsrv_app_owns(hsrv_app *a, CK_SESSION_HANDLE h)
{
    pthread_mutex_lock(&a->mu);
    size_t i = lower_bound(a, h);
    bool found = i < a->n && a->s[i].h == h;
    pthread_mutex_unlock(&a->mu);
    return found;
}

/* a->mu held. The engine's handles grow, so this is nearly always an append. */
static cf_err track_locked(hsrv_app *a, CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        hsrv_owned *p = realloc(a->s, cap * sizeof *p);
        if (!p)
            return CF_E_NOMEM;
        a->s = p;
        a->cap = cap;
    }
    size_t i = lower_bound(a, h);
    memmove(&a->s[i + 1], &a->s[i], (a->n - i) * sizeof *a->s);
    a->s[i] = (hsrv_owned){ h, slot };
    a->n++;
    return CF_OK;
}

/* At most max_sessions at once, counting those being opened by the application's other
 * connections (reserved before the engine call, which runs without a->mu): past it
 * SESSION_COUNT, and the engine is not asked. Opening sessions needs no login and costs the
 * client a few bytes each; without a bound one client could fill the engine's session map. */
cf_err hsrv_app_open_session(hsrv_app *a, CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *out)
{
    pthread_mutex_lock(&a->mu);
    bool room = a->n + a->opening < a->max_sessions;
    if (room)
        a->opening++;
    pthread_mutex_unlock(&a->mu);
    if (!room)
        return CF_E_SESSION_COUNT;
    CK_SESSION_HANDLE h = 0;
    cf_err rv = hsm_open_session_app(a->id, slot, flags, &h), tracked = CF_OK;
    pthread_mutex_lock(&a->mu);
    a->opening--;
    /* a CLOSE_ALL_SESSIONS of another connection (which holds a->mu across its engine call) may
     * have closed h since: then it is not counted, or it would hold a place until the end */
    CK_SESSION_INFO si;
    if (rv == CF_OK && hsm_get_session_info(h, &si) == CF_OK)
        tracked = track_locked(a, h, slot);
    pthread_mutex_unlock(&a->mu);
    if (tracked != CF_OK) {
        (void)hsm_close_session(h);
        return tracked;
    }
    if (rv == CF_OK)
        *out = h;
    return rv;
}

cf_err hsrv_app_close_session(hsrv_app *a, CK_SESSION_HANDLE h)
{
    cf_err rv = hsm_close_session(h);
    pthread_mutex_lock(&a->mu);
    size_t i = lower_bound(a, h);
    if (i < a->n && a->s[i].h == h) {
        a->n--;
        memmove(&a->s[i], &a->s[i + 1], (a->n - i) * sizeof *a->s);
    }
    pthread_mutex_unlock(&a->mu);
    return rv;
}

/* The mutex is held across the engine call so that the drop matches what the engine closed: a
 * session another connection of the application opens meanwhile is recorded only after the drop,
 * so a live session is never dropped (it would become unusable). A handle the engine has just
 * closed is not recorded either: the engine never reuses handles and answers it with
 * SESSION_HANDLE_INVALID (and hsrv_app_open_session does not record it). CLOSE_ALL_SESSIONS is
 * rare, and only this application's connections wait. */
cf_err hsrv_app_close_all_sessions(hsrv_app *a, CK_SLOT_ID slot)
{
    pthread_mutex_lock(&a->mu);
    cf_err rv = hsm_close_all_sessions_app(a->id, slot);
    if (rv == CF_OK) {
        size_t k = 0;   /* keeps the order */
        for (size_t i = 0; i < a->n; i++)
            if (a->s[i].slot != slot)
                a->s[k++] = a->s[i];
        a->n = k;
    }
    pthread_mutex_unlock(&a->mu);
    return rv;
}
