/* handles.c: a small open-addressing hash map from 64-bit handles to pointers. Handles are never
 * 0 (PKCS#11's CK_INVALID_HANDLE), which marks an empty slot; deletion uses backward shifting so
 * no tombstones accumulate. */
#include <stdlib.h>
#include "hsm/internal.h"

static size_t slot_of(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

void *hsm_map_get(const hsm_map *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

static cf_err rehash(hsm_map *m, size_t cap)
{
    hsm_map n = { calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(void *)), cap, 0 };
    if (!n.keys || !n.vals) {
        free(n.keys);
        free(n.vals);
        return CF_E_NOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            (void)hsm_map_put(&n, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    *m = n;
    return CF_OK;
}

cf_err hsm_map_put(hsm_map *m, uint64_t key, void *val)
{
    CF_ENSURE(key, CF_E_ARGS);
    if ((m->n + 1) * 4 > m->cap * 3)
        CF_TRY(rehash(m, m->cap ? m->cap * 2 : 64));
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return CF_OK;
}

void *hsm_map_del(hsm_map *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] != key) {
        if (!m->keys[i])
            return NULL;
        i = (i + 1) & (m->cap - 1);
    }
    void *val = m->vals[i];
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->n--;
    /* backward-shift the cluster that follows */
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        size_t home = slot_of(m->keys[j], m->cap);
        /* move j into the hole i when home is not cyclically in (i, j] */
        bool move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->keys[j] = 0;
            m->vals[j] = NULL;
            i = j;
        }
    }
    return val;
}

/* Down to a quarter full when under an eighth: halving at an eighth and doubling at three
 * quarters leave room between them, so alternating puts and deletions never rehash each time. */
void hsm_map_shrink(hsm_map *m)
{
    if (m->cap <= 64 || m->n * 8 >= m->cap)
        return;
    size_t cap = 64;
    while (cap < m->n * 4)
        cap *= 2;
    (void)rehash(m, cap);   /* no memory: it stays as large as it was, which works as well */
}

void hsm_map_free(hsm_map *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}
