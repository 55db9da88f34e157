/* secmem.h: memory that holds secrets.
 *
 * cf_wipe cannot be optimised away (explicit_bzero). cf_secret_alloc returns zeroed memory that
 * is locked into RAM where the system allows it and excluded from core dumps; cf_secret_free wipes
 * before releasing. Constant-time comparison lives in crypto.h (cf_ct_equal, CRYPTO_memcmp). */
#pragma once
#include <stddef.h>
#include <stdint.h>

void cf_wipe(void *p, size_t n);
void *cf_secret_alloc(size_t n);
void cf_secret_free(void *p, size_t n);
/* malloc'd copy of n bytes (NULL on failure or when n == 0 and p == NULL); free with cf_secret_free. */
void *cf_secret_dup(const void *p, size_t n);
/* Wipes n bytes then frees: for heap buffers that held secrets. NULL-safe. */
void cf_free_wiped(void *p, size_t n);
