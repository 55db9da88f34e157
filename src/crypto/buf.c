/* buf.c: owned byte buffers (cf_buf). They may hold key material, so they are always wiped. */
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include "base/log.h"
#include "base/secmem.h"
#include "crypto/crypto_int.h"

void cf_buf_free(cf_buf *b)
{
    if (!b)
        return;
    cf_free_wiped(b->p, b->len);
    b->p = NULL;
    b->len = 0;
}

cf_err cf_crypto_buf_alloc(cf_buf *b, size_t n)
{
    b->p = NULL;
    b->len = 0;
    if (n == 0)
        return CF_OK;
    b->p = calloc(1, n);
    if (!b->p)
        return CF_E_NOMEM;
    b->len = n;
    return CF_OK;
}

cf_err cf_crypto_buf_set(cf_buf *b, const void *p, size_t n)
{
    CF_TRY(cf_crypto_buf_alloc(b, n));
    if (n)
        memcpy(b->p, p, n);
    return CF_OK;
}

cf_err cf_crypto_fail(const char *what, cf_err err)
{
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && cf_log_get_level() >= CF_LOG_DEBUG) {
        char msg[256];
        ERR_error_string_n(e, msg, sizeof msg);
        cf_debug("crypto: %s: %s", what, msg);
    }
    ERR_clear_error();
    return err;
}
