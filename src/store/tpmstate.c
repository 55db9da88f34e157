/* tpmstate.c: the state blobs of TPM instances (table tpm_state). One row per instance, replaced
 * whole in one transaction, so a crash leaves either the old state or the new one. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store/store_int.h"

cf_err cf_store_tpm_get(cf_store *s, const char *name, uint8_t **blob, size_t *len)
{
    CF_ENSURE(s && name && blob && len, CF_E_ARGS);
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_prepare(s, "SELECT blob FROM tpm_state WHERE name = ?1", &st));
    CF_GUARD(st_bind_text(s, st, 1, name, strlen(name)));
    CF_GUARD(st_step_row(s, st, &row, "read tpm state"));
    CF_CHECK(row, CF_E_NOT_FOUND);
    int n = sqlite3_column_bytes(st, 0);
    const void *p = sqlite3_column_blob(st, 0);
    uint8_t *copy = malloc(n > 0 ? (size_t)n : 1);
    CF_CHECK(copy, CF_E_NOMEM);
    if (n > 0)
        memcpy(copy, p, (size_t)n);
    *blob = copy;
    *len = n > 0 ? (size_t)n : 0;
out:
    st_done(s, st);
    st_unlock(s);
    return rv;
}

cf_err cf_store_tpm_put(cf_store *s, const char *name, const uint8_t *blob, size_t len)
{
    CF_ENSURE(s && name && (blob || !len), CF_E_ARGS);
    sqlite3_stmt *st = NULL;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    CF_GUARD(st_prepare(s, "INSERT INTO tpm_state(name, blob, updated) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT(name) DO UPDATE SET blob = excluded.blob, updated = excluded.updated", &st));
    CF_GUARD(st_bind_text(s, st, 1, name, strlen(name)));
    CF_GUARD(st_bind_blob(s, st, 2, blob, len));
    CF_GUARD(st_bind_i64(s, st, 3, (int64_t)time(NULL)));
    CF_GUARD(st_step_done(s, st, "write tpm state"));
    st_done(s, st);
    st = NULL;
    CF_GUARD(st_commit(s));
out:
    st_done(s, st);
    if (rv != CF_OK)
        st_rollback(s);
    st_unlock(s);
    return rv;
}
