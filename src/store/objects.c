/* objects.c: token objects: one row per object holding its record, plus the columns the finder
 * searches (CKA_CLASS, CKA_ID, CKA_LABEL) and the change sequence number. */
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "store/store_int.h"

/* PKCS#11 attribute types of the indexed columns (pkcs11t.h). */
#define ATTR_CLASS 0x0u
#define ATTR_LABEL 0x3u
#define ATTR_ID 0x102u

static const cf_attr *find_attr(const cf_attr *a, size_t n, uint64_t type)
{
    for (size_t i = 0; i < n; i++)
        /* A secret value is never copied into a plaintext column. */
        if (a[i].type == type && !(a[i].flags & (CF_ATTR_SECRET | CF_ATTR_SEALED)))
            return &a[i];
    return NULL;
}

/* Binds cls, ckid, label at ?first.. from the attributes (NULL when absent). CKA_CLASS holds a
 * CK_ULONG in host byte order. */
static cf_err bind_index(cf_store *s, sqlite3_stmt *st, int first, const cf_attr *a, size_t n)
{
    const cf_attr *cls = find_attr(a, n, ATTR_CLASS);
    const cf_attr *id = find_attr(a, n, ATTR_ID);
    const cf_attr *label = find_attr(a, n, ATTR_LABEL);
    if (cls && cls->len == sizeof(unsigned long)) {
        unsigned long v;
        memcpy(&v, cls->val, sizeof v);
        CF_TRY(st_bind_i64(s, st, first, (int64_t)v));
    } else {
        CF_TRY(st_bind_null(s, st, first));
    }
    CF_TRY(id ? st_bind_blob(s, st, first + 1, id->val, id->len) : st_bind_null(s, st, first + 1));
    return label ? st_bind_blob(s, st, first + 2, label->val, label->len)
                 : st_bind_null(s, st, first + 2);
}

/* Encodes the record for object `id` and writes it with the index columns and a new seq. */
static cf_err write_object(cf_store *s, int64_t id, const cf_attr *a, size_t n,
                           const uint8_t dk[CF_DATA_KEY_LEN])
{
    cf_writer w = cf_writer_heap();
    sqlite3_stmt *st = NULL;
    int64_t seq;
    cf_err rv;
    CF_GUARD(cf_store_record_encode(a, n, id, dk, &w));
    CF_GUARD(st_meta_next(s, "seq", &seq));
    CF_GUARD(st_prepare(s, "UPDATE objects SET seq = ?2, cls = ?3, ckid = ?4, label = ?5, "
                           "record = ?6 WHERE id = ?1", &st));
    CF_GUARD(st_bind_i64(s, st, 1, id));
    CF_GUARD(st_bind_i64(s, st, 2, seq));
    CF_GUARD(bind_index(s, st, 3, a, n));
    CF_GUARD(st_bind_blob(s, st, 6, w.p, w.len));
    CF_GUARD(st_step_done(s, st, "write object"));
    CF_CHECK(sqlite3_changes(s->db) == 1, CF_E_NOT_FOUND);
out:
    st_done(s, st);
    cf_writer_free(&w);
    return rv;
}

static cf_err token_exists(cf_store *s, uint64_t slot)
{
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    CF_CHECK(slot <= INT64_MAX, CF_E_SLOT_ID_INVALID);
    CF_GUARD(st_prepare(s, "SELECT 1 FROM tokens WHERE slot = ?1", &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    CF_GUARD(st_step_row(s, st, &row, "read token"));
    CF_CHECK(row, CF_E_SLOT_ID_INVALID);
out:
    st_done(s, st);
    return rv;
}

cf_err cf_store_obj_insert(cf_store *s, uint64_t slot, const cf_attr *a, size_t n,
                           const uint8_t dk[CF_DATA_KEY_LEN], int64_t *id)
{
    CF_ENSURE(s && id && (a || n == 0), CF_E_ARGS);
    sqlite3_stmt *st = NULL;
    int64_t oid;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    CF_GUARD(token_exists(s, slot));
    /* The record's AAD needs the id, which exists only once the row does: insert a placeholder,
     * then write the record, in the same transaction. */
    CF_GUARD(st_prepare(s, "INSERT INTO objects(slot, seq, record) VALUES (?1, 0, x'')", &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    CF_GUARD(st_step_done(s, st, "insert object"));
    oid = sqlite3_last_insert_rowid(s->db);
    st_done(s, st);
    st = NULL;
    CF_GUARD(write_object(s, oid, a, n, dk));
    CF_GUARD(st_commit(s));
    *id = oid;
out:
    st_done(s, st);
    if (rv != CF_OK)
        st_rollback(s);
    st_unlock(s);
    return rv;
}

cf_err cf_store_obj_update(cf_store *s, int64_t id, const cf_attr *a, size_t n,
                           const uint8_t dk[CF_DATA_KEY_LEN])
{
    CF_ENSURE(s && (a || n == 0), CF_E_ARGS);
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    /* write_object reports NOT_FOUND when no row was updated (the object was deleted). */
    CF_GUARD(write_object(s, id, a, n, dk));
    CF_GUARD(st_commit(s));
out:
    if (rv != CF_OK)
        st_rollback(s);
    st_unlock(s);
    return rv;
}

cf_err cf_store_obj_delete(cf_store *s, int64_t id)
{
    CF_ENSURE(s, CF_E_ARGS);
    sqlite3_stmt *st = NULL;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    CF_GUARD(st_prepare(s, "DELETE FROM objects WHERE id = ?1", &st));
    CF_GUARD(st_bind_i64(s, st, 1, id));
    CF_GUARD(st_step_done(s, st, "delete object"));
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

typedef struct {
    int64_t id, seq;
} id_seq;

cf_err cf_store_obj_scan(cf_store *s, uint64_t slot, cf_store_scan_fn fn, void *ctx)
{
    CF_ENSURE(s && fn, CF_E_ARGS);
    if (slot > INT64_MAX)
        return CF_OK;   /* no such token, so no objects */
    sqlite3_stmt *st = NULL;
    id_seq *v = NULL;
    size_t len = 0, cap = 0;
    bool row;
    cf_err rv;
    /* Collect first, call back after unlocking: fn may well load the objects it is told of. */
    st_lock(s);
    CF_GUARD(st_prepare(s, "SELECT id, seq FROM objects WHERE slot = ?1 ORDER BY id", &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    for (;;) {
        CF_GUARD(st_step_row(s, st, &row, "scan objects"));
        if (!row)
            break;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 64;
            id_seq *nv = realloc(v, nc * sizeof *nv);
            CF_CHECK(nv, CF_E_NOMEM);
            v = nv;
            cap = nc;
        }
        v[len].id = sqlite3_column_int64(st, 0);
        v[len].seq = sqlite3_column_int64(st, 1);
        len++;
    }
out:
    st_done(s, st);
    st_unlock(s);
    for (size_t i = 0; rv == CF_OK && i < len; i++)
        rv = fn(ctx, v[i].id, v[i].seq);
    free(v);
    return rv;
}

cf_err cf_store_obj_load_all(cf_store *s, uint64_t slot, cf_store_load_fn fn, void *ctx)
{
    CF_ENSURE(s && fn, CF_E_ARGS);
    if (slot > INT64_MAX)
        return CF_OK;
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    /* fn runs with the store mutex held: it must not call back into the store */
    st_lock(s);
    CF_GUARD(st_prepare(s, "SELECT id, seq, record FROM objects WHERE slot = ?1 ORDER BY id", &st));
    CF_GUARD(st_bind_i64(s, st, 1, (int64_t)slot));
    for (;;) {
        CF_GUARD(st_step_row(s, st, &row, "load objects"));
        if (!row)
            break;
        int64_t id = sqlite3_column_int64(st, 0);
        const void *p = sqlite3_column_blob(st, 2);
        int len = sqlite3_column_bytes(st, 2);
        cf_reader r = cf_reader_init(p, len > 0 ? (size_t)len : 0);
        cf_attr *a = NULL;
        size_t n = 0;
        rv = cf_store_record_decode(&r, &a, &n);
        if (rv == CF_E_STORE_CORRUPT)
            cf_error("store: object %lld: record corrupt", (long long)id);
        CF_GUARD(rv);
        CF_GUARD(fn(ctx, id, sqlite3_column_int64(st, 1), a, n));
    }
out:
    st_done(s, st);
    st_unlock(s);
    return rv;
}

cf_err cf_store_obj_load(cf_store *s, int64_t id, cf_attr **out, size_t *n, int64_t *seq)
{
    CF_ENSURE(s && out && n, CF_E_ARGS);
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_prepare(s, "SELECT seq, record FROM objects WHERE id = ?1", &st));
    CF_GUARD(st_bind_i64(s, st, 1, id));
    CF_GUARD(st_step_row(s, st, &row, "load object"));
    CF_CHECK(row, CF_E_NOT_FOUND);
    const void *p = sqlite3_column_blob(st, 1);
    int len = sqlite3_column_bytes(st, 1);
    cf_reader r = cf_reader_init(p, len > 0 ? (size_t)len : 0);
    rv = cf_store_record_decode(&r, out, n);
    if (rv == CF_E_STORE_CORRUPT)
        cf_error("store: object %lld: record corrupt", (long long)id);
    CF_GUARD(rv);
    if (seq)
        *seq = sqlite3_column_int64(st, 0);
out:
    st_done(s, st);
    st_unlock(s);
    return rv;
}

cf_err cf_store_obj_find(cf_store *s, uint64_t slot, const uint8_t *ckid, size_t ckid_len,
                         const uint8_t *label, size_t label_len, int64_t cls,
                         int64_t **ids, size_t *n)
{
    CF_ENSURE(s && ids && n, CF_E_ARGS);
    *ids = NULL;
    *n = 0;
    if (slot > INT64_MAX)
        return CF_OK;
    /* The query is assembled from constant fragments only; values are bound. Each present
     * criterion gets an equality the (slot, column) indexes serve. */
    char sql[160] = "SELECT id FROM objects WHERE slot = ?";
    if (ckid)
        strcat(sql, " AND ckid = ?");
    if (label)
        strcat(sql, " AND label = ?");
    if (cls >= 0)
        strcat(sql, " AND cls = ?");
    strcat(sql, " ORDER BY id");

    sqlite3_stmt *st = NULL;
    int64_t *v = NULL;
    size_t len = 0, cap = 0;
    int i = 1;
    bool row;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_prepare(s, sql, &st));
    CF_GUARD(st_bind_i64(s, st, i++, (int64_t)slot));
    if (ckid)
        CF_GUARD(st_bind_blob(s, st, i++, ckid, ckid_len));
    if (label)
        CF_GUARD(st_bind_blob(s, st, i++, label, label_len));
    if (cls >= 0)
        CF_GUARD(st_bind_i64(s, st, i++, cls));
    for (;;) {
        CF_GUARD(st_step_row(s, st, &row, "find objects"));
        if (!row)
            break;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *nv = realloc(v, nc * sizeof *nv);
            CF_CHECK(nv, CF_E_NOMEM);
            v = nv;
            cap = nc;
        }
        v[len++] = sqlite3_column_int64(st, 0);
    }
    *ids = v;
    *n = len;
    v = NULL;
out:
    st_done(s, st);
    st_unlock(s);
    free(v);
    return rv;
}
