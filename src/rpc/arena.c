/* arena.c: the per-call allocations of a decoded request or response: a list of zeroed chunks,
 * wiped when freed (a rebuilt mechanism parameter or attribute array points at PIN-free data,
 * but wiping costs nothing next to a round trip). */
#include <stdlib.h>
#include "base/secmem.h"
#include "rpc/internal.h"

struct rpc_chunk {
    rpc_chunk *next;
    size_t size;
    max_align_t data[];
};

void *rpc_arena_alloc(rpc_arena *a, size_t n)
{
    if (n > SIZE_MAX - sizeof(rpc_chunk))
        return NULL;
    rpc_chunk *c = calloc(1, sizeof *c + n);
    if (!c)
        return NULL;
    c->size = n;
    c->next = a->head;
    a->head = c;
    return c->data;
}

rpc_chunk *rpc_arena_mark(const rpc_arena *a) { return a->head; }

void rpc_arena_release(rpc_arena *a, rpc_chunk *mark)
{
    while (a->head && a->head != mark) {
        rpc_chunk *c = a->head;
        a->head = c->next;
        cf_wipe(c->data, c->size);
        free(c);
    }
}

void rpc_arena_free(rpc_arena *a) { rpc_arena_release(a, NULL); }
