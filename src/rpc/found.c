/* found.c: finds answered at init (found.h). FIND_OBJECTS_FETCH is C_FindObjectsInit with the
 * first RPC_FOUND_MAX handles of the result; the result is a snapshot the server takes at init, so
 * the client can hand those handles to C_FindObjects itself, and when they are the whole result
 * (the server then ended its find) answer C_FindObjectsFinal too: a lookup of a key by label or
 * id is one round trip instead of three. Everything else a find call could fail on is known
 * here: the session (an application's sessions close only through its own calls, which forget
 * their entries, or with the application, which forgets them all) and a find already active.
 *
 * A small direct-mapped table, one entry per session: a session whose slot another session's
 * find holds uses the plain calls (one more round trip each, never a wrong answer). */
#include "rpc/found.h"
#include <pthread.h>
#include <string.h>

#define SLOTS 64u

typedef struct {
    CK_SESSION_HANDLE s;       /* 0: free */
    CK_OBJECT_HANDLE h[RPC_FOUND_MAX];
    size_t n, pos;
    bool more;                 /* the server's find is still active, holding the rest */
} found;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static found g_tab[SLOTS];

static found *slot_of(CK_SESSION_HANDLE s)
{
    return &g_tab[(s * 0x9E3779B97F4A7C15ull) >> 58 & (SLOTS - 1)];
}

/* g_mu held: s's entry, or NULL. */
static found *find(CK_SESSION_HANDLE s)
{
    found *e = slot_of(s);
    return s != 0 && e->s == s ? e : NULL;
}

bool rpc_found_active(CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&g_mu);
    bool active = find(s) != NULL;
    pthread_mutex_unlock(&g_mu);
    return active;
}

bool rpc_found_put(CK_SESSION_HANDLE s, const CK_OBJECT_HANDLE *h, size_t n, bool more)
{
    if (s == 0 || n > RPC_FOUND_MAX)
        return false;
    pthread_mutex_lock(&g_mu);
    found *e = slot_of(s);
    bool room = e->s == 0;
    if (room) {
        e->s = s;
        if (n)
            memcpy(e->h, h, n * sizeof *h);
        e->n = n;
        e->pos = 0;
        e->more = more;
    }
    pthread_mutex_unlock(&g_mu);
    return room;
}

bool rpc_found_take(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count, bool *ask_server)
{
    pthread_mutex_lock(&g_mu);
    found *e = find(s);
    if (e) {
        CK_ULONG k = 0;
        while (k < max && e->pos < e->n)
            out[k++] = e->h[e->pos++];
        *count = k;
        *ask_server = k == 0 && e->more;
    }
    pthread_mutex_unlock(&g_mu);
    return e != NULL;
}

bool rpc_found_end(CK_SESSION_HANDLE s, bool *ask_server)
{
    pthread_mutex_lock(&g_mu);
    found *e = find(s);
    if (e) {
        *ask_server = e->more;
        memset(e, 0, sizeof *e);
    }
    pthread_mutex_unlock(&g_mu);
    return e != NULL;
}

void rpc_found_forget(CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&g_mu);
    found *e = find(s);
    if (e)
        memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&g_mu);
}

void rpc_found_forget_if(bool (*gone)(CK_SESSION_HANDLE s, void *arg), void *arg)
{
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < SLOTS; i++)
        if (g_tab[i].s != 0 && gone(g_tab[i].s, arg))
            memset(&g_tab[i], 0, sizeof g_tab[i]);
    pthread_mutex_unlock(&g_mu);
}

void rpc_found_forget_all(void)
{
    pthread_mutex_lock(&g_mu);
    memset(g_tab, 0, sizeof g_tab);
    pthread_mutex_unlock(&g_mu);
}

void rpc_found_after_fork(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&g_mu, &fresh, sizeof g_mu);   /* a thread of the parent may have held it */
    memset(g_tab, 0, sizeof g_tab);
}
