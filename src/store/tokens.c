/* tokens.c: token rows (slot ids, labels, PIN records, failed-login counters). */
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/secmem.h"
#include "store/store_int.h"

#define TOKEN_COLS \
    "slot, label, serial, so_set, so_salt, so_iter, so_wrapped, " \
    "user_set, user_salt, user_iter, user_wrapped, so_fails, user_fails"

/* Copies a blob column of exactly n bytes (or NULL, giving zeros). */
static bool col_fixed(sqlite3_stmt *st, int col, uint8_t *dst, size_t n)
{
    memset(dst, 0, n);
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return true;
    const void *p = sqlite3_column_blob(st, col);
    if ((size_t)sqlite3_column_bytes(st, col) != n || !p)
        return false;
    memcpy(dst, p, n);
    return true;
}

static bool col_u32(sqlite3_stmt *st, int col, uint32_t *v)
{
    int64_t x = sqlite3_column_int64(st, col);
    if (x < 0 || x > UINT32_MAX)
        return false;
    *v = (uint32_t)x;
    return true;
}

static bool col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!p || n >= cap || memchr(p, 0, n))
        return false;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

/* One row of SELECT TOKEN_COLS into *t. */
static cf_err read_token(sqlite3_stmt *st, cf_store_token *t)
{
    memset(t, 0, sizeof *t);
    bool ok = true;
    int64_t slot = sqlite3_column_int64(st, 0);
    ok &= slot >= 0;
    t->slot = (uint64_t)slot;
    ok &= col_text(st, 1, t->label, sizeof t->label);
    ok &= col_text(st, 2, t->serial, sizeof t->serial);
    for (int w = 0; w < 2; w++) {
        cf_pin_record *p = &t->pin[w];
        int base = 3 + 4 * w;
        p->set = sqlite3_column_int64(st, base) != 0;
        ok &= col_fixed(st, base + 1, p->salt, sizeof p->salt);
        ok &= col_u32(st, base + 2, &p->iterations);
        ok &= col_fixed(st, base + 3, p->wrapped, sizeof p->wrapped);
        ok &= !p->set || (sqlite3_column_type(st, base + 1) == SQLITE_BLOB
                          && sqlite3_column_type(st, base + 3) == SQLITE_BLOB);
    }
    ok &= col_u32(st, 11, &t->fails[CF_PIN_SO]);
    ok &= col_u32(st, 12, &t->fails[CF_PIN_USER]);
    if (!ok) {
        cf_error("store: token row for slot %lld is corrupt", (long long)slot);
        cf_wipe(t, sizeof *t);
        return CF_E_STORE_CORRUPT;
    }
    return CF_OK;
}

cf_err cf_store_tokens(cf_store *s, cf_store_token **out, size_t *n)
{
    CF_ENSURE(s && out && n, CF_E_ARGS);
    *out = NULL;
    *n = 0;
    cf_store_token *v = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_prepare(s, "SELECT " TOKEN_COLS " FROM tokens ORDER BY slot", &st));
    for (;;) {
        CF_GUARD(st_step_row(s, st, &row, "list tokens"));
        if (!row)
            break;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 4;
            cf_store_token *nv = realloc(v, nc * sizeof *nv);
            CF_CHECK(nv, CF_E_NOMEM);
            v = nv;
            cap = nc;
        }
        CF_GUARD(read_token(st, &v[len]));
        len++;
    }
    *out = v;
    *n = len;
    v = NULL;
out:
    st_done(s, st);
    st_unlock(s);
    free(v);
    return rv;
}

static cf_err token_get_locked(cf_store *s, uint64_t slot, cf_store_token *out)
{
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    CF_CHECK(slot <= INT64_MAX, CF_E_NOT_FOUND);
    CF_GUARD(st_prepare(s, "SELECT " TOKEN_COLS " FROM tokens WHERE slot = ?1", &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    CF_GUARD(st_step_row(s, st, &row, "read token"));
    CF_CHECK(row, CF_E_NOT_FOUND);
    CF_GUARD(read_token(st, out));
out:
    st_done(s, st);
    return rv;
}

cf_err cf_store_token_get(cf_store *s, uint64_t slot, cf_store_token *out)
{
    CF_ENSURE(s && out, CF_E_ARGS);
    st_lock(s);
    cf_err rv = token_get_locked(s, slot, out);
    st_unlock(s);
    return rv;
}

cf_err cf_store_free_slot(cf_store *s, uint64_t *slot)
{
    CF_ENSURE(s && slot, CF_E_ARGS);
    int64_t v;
    st_lock(s);
    cf_err rv = st_meta_get(s, "next_slot", &v);
    st_unlock(s);
    CF_TRY(rv);
    CF_ENSURE(v >= 0, CF_E_STORE_CORRUPT);
    *slot = (uint64_t)v;
    return CF_OK;
}

static bool token_valid(const cf_store_token *t)
{
    return t->slot <= INT64_MAX && memchr(t->label, 0, sizeof t->label)
        && memchr(t->serial, 0, sizeof t->serial);
}

/* Binds one PIN record at ?base..?base+3 (set, salt, iterations, wrapped). An unset record
 * stores NULLs so that nothing stale lingers. */
static cf_err bind_pin(cf_store *s, sqlite3_stmt *st, int base, const cf_pin_record *p)
{
    CF_TRY(st_bind_i64(s, st, base, p->set ? 1 : 0));
    if (!p->set) {
        CF_TRY(st_bind_null(s, st, base + 1));
        CF_TRY(st_bind_i64(s, st, base + 2, 0));
        return st_bind_null(s, st, base + 3);
    }
    CF_TRY(st_bind_blob(s, st, base + 1, p->salt, sizeof p->salt));
    CF_TRY(st_bind_i64(s, st, base + 2, p->iterations));
    return st_bind_blob(s, st, base + 3, p->wrapped, sizeof p->wrapped);
}

static cf_err exec_slot(cf_store *s, const char *sql, uint64_t slot, const char *what)
{
    sqlite3_stmt *st = NULL;
    cf_err rv;
    CF_GUARD(st_prepare(s, sql, &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    CF_GUARD(st_step_done(s, st, what));
out:
    st_done(s, st);
    return rv;
}

cf_err cf_store_token_init(cf_store *s, const cf_store_token *t)
{
    CF_ENSURE(s && t && token_valid(t), CF_E_ARGS);
    sqlite3_stmt *st = NULL;
    int64_t next;
    bool exists = false;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    CF_GUARD(st_meta_get(s, "next_slot", &next));
    if ((int64_t)t->slot == next) {
        CF_GUARD(st_meta_set(s, "next_slot", next + 1));
    } else {
        cf_store_token old;
        rv = token_get_locked(s, t->slot, &old);
        cf_wipe(&old, sizeof old);
        CF_CHECK(rv != CF_E_NOT_FOUND, CF_E_SLOT_ID_INVALID);
        CF_GUARD(rv);
        exists = true;
        /* Re-initialisation (PKCS#11 C_InitToken) destroys every object of the token. */
        CF_GUARD(exec_slot(s, "DELETE FROM objects WHERE slot = ?1", t->slot, "delete objects"));
    }
    CF_GUARD(st_prepare(s, exists
        ? "UPDATE tokens SET label = ?2, serial = ?3, so_set = ?4, so_salt = ?5, so_iter = ?6, "
          "so_wrapped = ?7, user_set = ?8, user_salt = ?9, user_iter = ?10, user_wrapped = ?11, "
          "so_fails = ?12, user_fails = ?13 WHERE slot = ?1"
        : "INSERT INTO tokens(" TOKEN_COLS ") "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)t->slot));
    CF_GUARD(st_bind_text(s, st, 2, t->label, strlen(t->label)));
    CF_GUARD(st_bind_text(s, st, 3, t->serial, strlen(t->serial)));
    CF_GUARD(bind_pin(s, st, 4, &t->pin[CF_PIN_SO]));
    CF_GUARD(bind_pin(s, st, 8, &t->pin[CF_PIN_USER]));
    CF_GUARD(st_bind_i64(s, st, 12, t->fails[CF_PIN_SO]));
    CF_GUARD(st_bind_i64(s, st, 13, t->fails[CF_PIN_USER]));
    CF_GUARD(st_step_done(s, st, "write token"));
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

cf_err cf_store_token_delete(cf_store *s, uint64_t slot)
{
    CF_ENSURE(s, CF_E_ARGS);
    CF_ENSURE(slot <= INT64_MAX, CF_E_NOT_FOUND);
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    /* The foreign key cascades too; deleting explicitly does not depend on the pragma. */
    CF_GUARD(exec_slot(s, "DELETE FROM objects WHERE slot = ?1", slot, "delete objects"));
    CF_GUARD(exec_slot(s, "DELETE FROM tokens WHERE slot = ?1", slot, "delete token"));
    CF_CHECK(sqlite3_changes(s->db) == 1, CF_E_NOT_FOUND);
    CF_GUARD(st_commit(s));
out:
    if (rv != CF_OK)
        st_rollback(s);
    st_unlock(s);
    return rv;
}

cf_err cf_store_token_set_pin(cf_store *s, uint64_t slot, cf_pin_who who, const cf_pin_record *r)
{
    CF_ENSURE(s && r && (who == CF_PIN_SO || who == CF_PIN_USER), CF_E_ARGS);
    CF_ENSURE(slot <= INT64_MAX, CF_E_NOT_FOUND);
    static const char *const sql[2] = {
        "UPDATE tokens SET so_set = ?2, so_salt = ?3, so_iter = ?4, so_wrapped = ?5, "
        "so_fails = 0 WHERE slot = ?1",
        "UPDATE tokens SET user_set = ?2, user_salt = ?3, user_iter = ?4, user_wrapped = ?5, "
        "user_fails = 0 WHERE slot = ?1",
    };
    sqlite3_stmt *st = NULL;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    CF_GUARD(st_prepare(s, sql[who], &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    CF_GUARD(bind_pin(s, st, 2, r));
    CF_GUARD(st_step_done(s, st, "set pin"));
    CF_CHECK(sqlite3_changes(s->db) == 1, CF_E_NOT_FOUND);
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

cf_err cf_store_pin_result(cf_store *s, uint64_t slot, cf_pin_who who, bool ok, uint32_t *fails)
{
    CF_ENSURE(s && fails && (who == CF_PIN_SO || who == CF_PIN_USER), CF_E_ARGS);
    CF_ENSURE(slot <= INT64_MAX, CF_E_NOT_FOUND);
    /* The increment happens in SQL inside an IMMEDIATE transaction, so two processes failing at
     * once both count (no read-then-write race). Saturates at UINT32_MAX. */
    static const char *const upd[2] = {
        "UPDATE tokens SET so_fails = CASE WHEN ?2 THEN 0 ELSE MIN(so_fails + 1, 4294967295) END "
        "WHERE slot = ?1",
        "UPDATE tokens SET user_fails = CASE WHEN ?2 THEN 0 ELSE MIN(user_fails + 1, 4294967295) END "
        "WHERE slot = ?1",
    };
    static const char *const sel[2] = {
        "SELECT so_fails FROM tokens WHERE slot = ?1",
        "SELECT user_fails FROM tokens WHERE slot = ?1",
    };
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    CF_GUARD(st_prepare(s, upd[who], &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    CF_GUARD(st_bind_i64(s, st, 2, ok ? 1 : 0));
    CF_GUARD(st_step_done(s, st, "pin result"));
    CF_CHECK(sqlite3_changes(s->db) == 1, CF_E_NOT_FOUND);
    st_done(s, st);
    st = NULL;
    CF_GUARD(st_prepare(s, sel[who], &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    CF_GUARD(st_step_row(s, st, &row, "read pin counter"));
    CF_CHECK(row, CF_E_NOT_FOUND);
    CF_CHECK(col_u32(st, 0, fails), CF_E_STORE_CORRUPT);
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
