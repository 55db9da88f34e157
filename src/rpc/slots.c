/* slots.c: session -> slot (slots.h). An open-addressing hash map (linear probing, deletion by
 * shifting back), grown at half full: C_OpenSession and C_CloseSession are round trips anyway,
 * and C_CloseAllSessions walks only the few sessions with client-only state. */
#include "rpc/slots.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    CK_SESSION_HANDLE s;   /* 0: free (the engine never hands out 0) */
    CK_SLOT_ID slot;
    uint64_t seq;          /* the addition's number (rpc_slots_mark) */
} entry;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static entry *g_tab;
static size_t g_cap, g_n;   /* g_cap: 0 or a power of two */
static uint64_t g_seq;      /* numbers the additions */

static size_t home(CK_SESSION_HANDLE s)
{
    return (size_t)(((uint64_t)s * 0x9E3779B97F4A7C15ull) >> 32) & (g_cap - 1);
}

/* g_mu held: s's index, or g_cap. */
static size_t index_of(CK_SESSION_HANDLE s)
{
    if (g_cap == 0 || s == 0)
        return g_cap;
    for (size_t i = home(s);; i = (i + 1) & (g_cap - 1)) {
        if (g_tab[i].s == s)
            return i;
        if (g_tab[i].s == 0)
            return g_cap;
    }
}

/* g_mu held: puts e where it belongs (s not in the map, room for it). */
static void place(entry e)
{
    size_t i = home(e.s);
    while (g_tab[i].s != 0)
        i = (i + 1) & (g_cap - 1);
    g_tab[i] = e;
}

/* g_mu held: room for one more at most half full; false when memory is short. */
static bool room(void)
{
    if (2 * (g_n + 1) <= g_cap)
        return true;
    size_t cap = g_cap ? 2 * g_cap : 64;
    entry *t = calloc(cap, sizeof *t), *old = g_tab;
    if (!t)
        return false;
    size_t old_cap = g_cap;
    g_tab = t;
    g_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].s != 0)
            place(old[i]);
    free(old);
    return true;
}

/* g_mu held: removes the entry at i, moving back the ones after it that its slot displaced. */
static void remove_at(size_t i)
{
    size_t mask = g_cap - 1;
    for (size_t j = (i + 1) & mask; g_tab[j].s != 0; j = (j + 1) & mask) {
        size_t h = home(g_tab[j].s);
        /* j's entry may fill the hole at i if its home is not in (i, j] (cyclically) */
        if (((j - h) & mask) >= ((j - i) & mask)) {
            g_tab[i] = g_tab[j];
            i = j;
        }
    }
    g_tab[i].s = 0;
    g_n--;
}

void rpc_slots_add(CK_SESSION_HANDLE s, CK_SLOT_ID slot)
{
    pthread_mutex_lock(&g_mu);
    size_t i = index_of(s);
    if (i < g_cap) {
        g_tab[i].slot = slot;
        g_tab[i].seq = g_seq++;
    } else if (s != 0 && room()) {
        place((entry){ s, slot, g_seq++ });
        g_n++;
    }
    pthread_mutex_unlock(&g_mu);
}

void rpc_slots_remove(CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&g_mu);
    size_t i = index_of(s);
    if (i < g_cap)
        remove_at(i);
    pthread_mutex_unlock(&g_mu);
}

uint64_t rpc_slots_mark(void)
{
    pthread_mutex_lock(&g_mu);
    uint64_t m = g_seq;
    pthread_mutex_unlock(&g_mu);
    return m;
}

bool rpc_slots_maybe_on(CK_SESSION_HANDLE s, CK_SLOT_ID slot, uint64_t mark)
{
    pthread_mutex_lock(&g_mu);
    size_t i = index_of(s);
    bool on = i == g_cap || (g_tab[i].slot == slot && g_tab[i].seq < mark);
    pthread_mutex_unlock(&g_mu);
    return on;
}

void rpc_slots_remove_slot(CK_SLOT_ID slot, uint64_t mark)
{
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_cap;) {
        if (g_tab[i].s != 0 && g_tab[i].slot == slot && g_tab[i].seq < mark)
            remove_at(i);   /* another entry may have moved into i: look at it again */
        else
            i++;
    }
    pthread_mutex_unlock(&g_mu);
}

void rpc_slots_forget_all(void)
{
    pthread_mutex_lock(&g_mu);
    free(g_tab);
    g_tab = NULL;
    g_cap = g_n = 0;
    pthread_mutex_unlock(&g_mu);
}

void rpc_slots_after_fork(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&g_mu, &fresh, sizeof g_mu);   /* a thread of the parent may have held it */
    free(g_tab);
    g_tab = NULL;
    g_cap = g_n = 0;
}
