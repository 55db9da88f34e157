/* secmem.c: see secmem.h. mlock and MADV_DONTDUMP are best effort: an unprivileged process may
 * have a small RLIMIT_MEMLOCK, and failing to lock is no reason to refuse service. */
#include "base/secmem.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void cf_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

void *cf_secret_alloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (p && n) {
        (void)mlock(p, n);
    }
    return p;
}

void cf_secret_free(void *p, size_t n)
{
    if (!p)
        return;
    cf_wipe(p, n);
    if (n)
        (void)munlock(p, n);
    free(p);
}

void *cf_secret_dup(const void *p, size_t n)
{
    void *q = cf_secret_alloc(n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

void cf_free_wiped(void *p, size_t n)
{
    if (!p)
        return;
    cf_wipe(p, n);
    free(p);
}
