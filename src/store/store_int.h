/* store_int.h: what the files of src/store share (not part of the store's contract). */
#pragma once
#include <pthread.h>
#include <sqlite3.h>
#include "store/store.h"

/* Record limits (cf_store_record_encode / _decode). A value's limit applies to the bytes stored,
 * so a secret plaintext may be at most CF_STORE_MAX_VALUE - CF_STORE_SEAL_OVERHEAD bytes. */
#define CF_STORE_RECORD_VERSION 1
#define CF_STORE_MAX_ATTRS 4096u
#define CF_STORE_MAX_VALUE (16u * 1024 * 1024)
#define CF_STORE_SEAL_OVERHEAD (12 + 16)   /* iv | ... | tag */

#define ST_CACHE 24

struct cf_store {
    pthread_mutex_t mu;      /* held around every use of db */
    sqlite3 *db;
    int64_t data_version;    /* last PRAGMA data_version seen (cf_store_changed) */
    /* Prepared statements kept for reuse, keyed by their SQL text: preparing costs more than
     * running most of our queries (a find by CKA_ID runs in microseconds once prepared). */
    struct {
        char *sql;
        sqlite3_stmt *st;
        bool busy;
    } cache[ST_CACHE];
};

/* Statements: st_prepare may hand out a cached statement; st_done gives it back (reset, bindings
 * cleared) or finalizes one that was not cached. Always pair them, with the mutex held. */
void st_done(cf_store *s, sqlite3_stmt *st);
void st_cache_free(cf_store *s);

/* Mutex. */
void st_lock(cf_store *s);
void st_unlock(cf_store *s);

/* Maps an sqlite result code to cf_err (BUSY/LOCKED -> STORE_BUSY, anything else -> STORE) and
 * logs the connection's message with `what` (never values). */
cf_err st_fail(cf_store *s, int rc, const char *what);

/* Transactions: BEGIN IMMEDIATE / COMMIT; rollback is a no-op outside a transaction. */
cf_err st_begin(cf_store *s);
cf_err st_commit(cf_store *s);
void st_rollback(cf_store *s);

/* Statement helpers. Each returns a mapped, logged error. */
cf_err st_prepare(cf_store *s, const char *sql, sqlite3_stmt **st);
cf_err st_bind_i64(cf_store *s, sqlite3_stmt *st, int i, int64_t v);
/* A zero-length value binds as an empty blob (not NULL); p == NULL with n == 0 too. */
cf_err st_bind_blob(cf_store *s, sqlite3_stmt *st, int i, const void *p, size_t n);
cf_err st_bind_text(cf_store *s, sqlite3_stmt *st, int i, const char *p, size_t n);
cf_err st_bind_null(cf_store *s, sqlite3_stmt *st, int i);
/* Steps a statement that returns no row. */
cf_err st_step_done(cf_store *s, sqlite3_stmt *st, const char *what);
/* Steps expecting a row: *row false at the end of results. */
cf_err st_step_row(cf_store *s, sqlite3_stmt *st, bool *row, const char *what);
/* Runs constant SQL (no values) with no result rows wanted. */
cf_err st_exec(cf_store *s, const char *sql, const char *what);

/* Inside a transaction: increments meta[key] and returns the new value / reads it. */
cf_err st_meta_get(cf_store *s, const char *key, int64_t *v);
cf_err st_meta_set(cf_store *s, const char *key, int64_t v);
cf_err st_meta_next(cf_store *s, const char *key, int64_t *v);
