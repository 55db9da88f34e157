/* db.c: opening the database (directory, pragmas, migrations), the connection mutex,
 * transactions and the sqlite call helpers the other store files use. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/log.h"
#include "store/store_int.h"

#define BUSY_TIMEOUT_MS 10000

/* Migration N (index N-1) brings the schema from version N-1 to N; each ends by setting
 * user_version to N, which cf_store_open checks. Never edit a released step: append one. */
static const char *const migrations[] = {
    /* 1: initial schema. next_slot is the one free slot (ids are never reused); seq is the
     * global change counter stamped on an object at every insert and update. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta(key, value) VALUES ('next_slot', 1), ('seq', 0);"
    "CREATE TABLE tokens("
    "  slot INTEGER PRIMARY KEY,"
    "  label TEXT NOT NULL,"
    "  serial TEXT NOT NULL,"
    "  so_set INTEGER NOT NULL DEFAULT 0, so_salt BLOB, so_iter INTEGER NOT NULL DEFAULT 0,"
    "  so_wrapped BLOB,"
    "  user_set INTEGER NOT NULL DEFAULT 0, user_salt BLOB, user_iter INTEGER NOT NULL DEFAULT 0,"
    "  user_wrapped BLOB,"
    "  so_fails INTEGER NOT NULL DEFAULT 0,"
    "  user_fails INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE objects("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  slot INTEGER NOT NULL REFERENCES tokens(slot) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  cls INTEGER,"
    "  ckid BLOB,"
    "  label BLOB,"
    "  record BLOB NOT NULL);"
    "CREATE INDEX objects_ckid ON objects(slot, ckid);"
    "CREATE INDEX objects_label ON objects(slot, label);"
    "CREATE INDEX objects_cls ON objects(slot, cls);"
    "PRAGMA user_version = 1;",
    /* 2: TPM instances' state: one sealed blob per instance (the daemon encrypts it). */
    "CREATE TABLE tpm_state("
    "  name TEXT PRIMARY KEY,"
    "  blob BLOB NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "PRAGMA user_version = 2;",
    /* 3: the audit log (audit.c): records chained by HMAC-SHA256 under cofferd's audit key. */
    "CREATE TABLE audit("
    "  seq INTEGER PRIMARY KEY,"
    "  time INTEGER NOT NULL,"
    "  token INTEGER NOT NULL,"
    "  object INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  detail TEXT NOT NULL,"
    "  mac BLOB NOT NULL);"
    "CREATE INDEX audit_time ON audit(time);"
    "PRAGMA user_version = 3;",
};
#define SCHEMA_VERSION ((int64_t)(sizeof migrations / sizeof migrations[0]))

/* ---- helpers ------------------------------------------------------------------------------ */

void st_lock(cf_store *s) { pthread_mutex_lock(&s->mu); }
void st_unlock(cf_store *s) { pthread_mutex_unlock(&s->mu); }

cf_err st_fail(cf_store *s, int rc, const char *what)
{
    int prim = rc & 0xff;
    cf_error("store: %s: %s (sqlite %d)", what, s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), rc);
    return prim == SQLITE_BUSY || prim == SQLITE_LOCKED ? CF_E_STORE_BUSY : CF_E_STORE;
}

cf_err st_exec(cf_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CF_OK : st_fail(s, rc, what);
}

cf_err st_begin(cf_store *s) { return st_exec(s, "BEGIN IMMEDIATE", "begin"); }
cf_err st_commit(cf_store *s) { return st_exec(s, "COMMIT", "commit"); }

void st_rollback(cf_store *s)
{
    /* A failed COMMIT or statement may already have ended the transaction. */
    if (!sqlite3_get_autocommit(s->db))
        (void)st_exec(s, "ROLLBACK", "rollback");
}

cf_err st_prepare(cf_store *s, const char *sql, sqlite3_stmt **st)
{
    int free_slot = -1;
    for (int i = 0; i < ST_CACHE; i++) {
        if (!s->cache[i].sql) {
            if (free_slot < 0)
                free_slot = i;
        } else if (!s->cache[i].busy && strcmp(s->cache[i].sql, sql) == 0) {
            s->cache[i].busy = true;
            *st = s->cache[i].st;
            return CF_OK;
        }
    }
    int rc = sqlite3_prepare_v3(s->db, sql, -1, free_slot >= 0 ? SQLITE_PREPARE_PERSISTENT : 0, st, NULL);
    if (rc != SQLITE_OK)
        return st_fail(s, rc, "prepare");
    if (free_slot >= 0 && (s->cache[free_slot].sql = strdup(sql)) != NULL) {
        s->cache[free_slot].st = *st;
        s->cache[free_slot].busy = true;
    }
    return CF_OK;
}

void st_done(cf_store *s, sqlite3_stmt *st)
{
    if (!st)
        return;
    for (int i = 0; i < ST_CACHE; i++) {
        if (s->cache[i].st == st && s->cache[i].sql) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            s->cache[i].busy = false;
            return;
        }
    }
    sqlite3_finalize(st);
}

void st_cache_free(cf_store *s)
{
    for (int i = 0; i < ST_CACHE; i++) {
        if (s->cache[i].sql) {
            sqlite3_finalize(s->cache[i].st);
            free(s->cache[i].sql);
            s->cache[i].sql = NULL;
            s->cache[i].st = NULL;
        }
    }
}

cf_err st_bind_i64(cf_store *s, sqlite3_stmt *st, int i, int64_t v)
{
    int rc = sqlite3_bind_int64(st, i, v);
    return rc == SQLITE_OK ? CF_OK : st_fail(s, rc, "bind");
}

cf_err st_bind_blob(cf_store *s, sqlite3_stmt *st, int i, const void *p, size_t n)
{
    static const uint8_t empty[1];
    if (n > INT32_MAX)
        return CF_E_ARGS;
    /* sqlite binds a NULL pointer as SQL NULL; an empty value must stay an empty blob. */
    int rc = sqlite3_bind_blob(st, i, n ? p : empty, (int)n, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? CF_OK : st_fail(s, rc, "bind");
}

cf_err st_bind_text(cf_store *s, sqlite3_stmt *st, int i, const char *p, size_t n)
{
    if (n > INT32_MAX)
        return CF_E_ARGS;
    int rc = sqlite3_bind_text(st, i, n ? p : "", (int)n, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? CF_OK : st_fail(s, rc, "bind");
}

cf_err st_bind_null(cf_store *s, sqlite3_stmt *st, int i)
{
    int rc = sqlite3_bind_null(st, i);
    return rc == SQLITE_OK ? CF_OK : st_fail(s, rc, "bind");
}

cf_err st_step_done(cf_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? CF_OK : st_fail(s, rc, what);
}

cf_err st_step_row(cf_store *s, sqlite3_stmt *st, bool *row, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *row = true;
        return CF_OK;
    }
    *row = false;
    return rc == SQLITE_DONE ? CF_OK : st_fail(s, rc, what);
}

/* One integer from constant SQL returning one row. */
static cf_err query_i64(cf_store *s, const char *sql, int64_t *v, const char *what)
{
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    CF_GUARD(st_prepare(s, sql, &st));
    CF_GUARD(st_step_row(s, st, &row, what));
    CF_CHECK(row, CF_E_STORE);
    *v = sqlite3_column_int64(st, 0);
out:
    st_done(s, st);
    return rv;
}

cf_err st_meta_get(cf_store *s, const char *key, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    CF_GUARD(st_prepare(s, "SELECT value FROM meta WHERE key = ?1", &st));
    CF_GUARD(st_bind_text(s, st, 1, key, strlen(key)));
    CF_GUARD(st_step_row(s, st, &row, "read meta"));
    if (!row) {
        cf_error("store: meta row missing");
        rv = CF_E_STORE_CORRUPT;
        goto out;
    }
    *v = sqlite3_column_int64(st, 0);
out:
    st_done(s, st);
    return rv;
}

cf_err st_meta_set(cf_store *s, const char *key, int64_t v)
{
    sqlite3_stmt *st = NULL;
    cf_err rv;
    CF_GUARD(st_prepare(s, "UPDATE meta SET value = ?2 WHERE key = ?1", &st));
    CF_GUARD(st_bind_text(s, st, 1, key, strlen(key)));
    CF_GUARD(st_bind_i64(s, st, 2, v));
    CF_GUARD(st_step_done(s, st, "write meta"));
    CF_CHECK(sqlite3_changes(s->db) == 1, CF_E_STORE_CORRUPT);
out:
    st_done(s, st);
    return rv;
}

cf_err st_meta_next(cf_store *s, const char *key, int64_t *v)
{
    int64_t cur;
    CF_TRY(st_meta_get(s, key, &cur));
    CF_ENSURE(cur >= 0 && cur < INT64_MAX, CF_E_STORE_CORRUPT);
    CF_TRY(st_meta_set(s, key, cur + 1));
    *v = cur + 1;
    return CF_OK;
}

/* ---- open ---------------------------------------------------------------------------------- */

/* mkdir -p: every missing component is created 0700; existing ones are left as they are. */
static cf_err make_dirs(const char *dir)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    CF_ENSURE(p, CF_E_NOMEM);
    memcpy(p, dir, n + 1);
    cf_err rv = CF_OK;
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            cf_error("store: cannot create directory %s: %s", p, strerror(errno));
            rv = CF_E_IO;
            goto out;
        }
        p[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        cf_error("store: %s is not a directory", dir);
        rv = CF_E_IO;
    }
out:
    free(p);
    return rv;
}

static cf_err migrate(cf_store *s, const char *path)
{
    int64_t v;
    cf_err rv;
    CF_GUARD(st_begin(s));
    CF_GUARD(query_i64(s, "PRAGMA user_version", &v, "read schema version"));
    if (v > SCHEMA_VERSION || v < 0) {
        cf_error("store: %s has schema version %lld; this coffer knows up to %lld (use a newer coffer)",
                 path, (long long)v, (long long)SCHEMA_VERSION);
        rv = CF_E_STORE;
        goto out;
    }
    for (int64_t i = v; i < SCHEMA_VERSION; i++) {
        cf_info("store: migrating %s to schema version %lld", path, (long long)(i + 1));
        CF_GUARD(st_exec(s, migrations[i], "migration"));
    }
    CF_GUARD(query_i64(s, "PRAGMA user_version", &v, "read schema version"));
    if (v != SCHEMA_VERSION) {
        cf_error("store: migration left schema version %lld, expected %lld", (long long)v,
                 (long long)SCHEMA_VERSION);
        rv = CF_E_INTERNAL;
        goto out;
    }
    CF_GUARD(st_commit(s));
out:
    if (rv != CF_OK)
        st_rollback(s);
    return rv;
}

cf_err cf_store_open(const char *dir, cf_store **out)
{
    CF_ENSURE(dir && *dir && out, CF_E_ARGS);
    *out = NULL;
    cf_err rv;
    char *path = NULL;
    sqlite3_stmt *st = NULL;
    bool row;
    int fd, rc;
    size_t n;
    cf_store *s = calloc(1, sizeof *s);
    CF_ENSURE(s, CF_E_NOMEM);
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return CF_E_INTERNAL;
    }
    CF_GUARD(make_dirs(dir));
    n = strlen(dir) + sizeof "/coffer.db";
    path = malloc(n);
    CF_CHECK(path, CF_E_NOMEM);
    snprintf(path, n, "%s/coffer.db", dir);

    /* Create the file ourselves so it is 0600 whatever the umask; sqlite gives the -wal and
     * -shm files the same mode as the database. Only when it does not exist yet: a close() of
     * any descriptor of a file drops every POSIX lock this process holds on it, and another
     * connection of this process (cofferd has two) holds SQLite's. Without them, another process
     * closing the store believes itself the last user and deletes the WAL, and this process goes
     * on writing into the deleted one: invisible to others, lost in a crash. */
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        close(fd);
    } else {
        struct stat sb;
        bool exists = errno == EEXIST && lstat(path, &sb) == 0;
        if (!exists || !S_ISREG(sb.st_mode)) {   /* O_NOFOLLOW's refusal of a link, kept */
            cf_error("store: cannot open %s: %s", path, exists ? "not a regular file" : strerror(errno));
            rv = CF_E_IO;
            goto out;
        }
    }

    /* NOMUTEX: s->mu serialises every use of the connection. */
    rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rv = st_fail(s, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    rc = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        rv = st_fail(s, rc, "busy timeout");
        goto out;
    }

    /* WAL lets readers run beside one writer across processes; journal_mode reports the mode
     * it ended in (a file system without shared memory stays in rollback mode). */
    CF_GUARD(st_prepare(s, "PRAGMA journal_mode=WAL", &st));
    rv = st_step_row(s, st, &row, "journal mode");
    if (rv == CF_OK && (!row || sqlite3_column_text(st, 0) == NULL
                        || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0))
        cf_warn("store: %s: WAL mode not available, concurrent access will be slower", path);
    st_done(s, st);
    st = NULL;
    CF_GUARD(rv);
    CF_GUARD(st_exec(s, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL", "pragmas"));
    CF_GUARD(migrate(s, path));
    CF_GUARD(query_i64(s, "PRAGMA data_version", &s->data_version, "data version"));
    *out = s;
out:
    st_done(s, st);
    free(path);
    if (rv != CF_OK)
        cf_store_close(s);
    return rv;
}

void cf_store_close(cf_store *s)
{
    if (!s)
        return;
    if (s->db) {
        st_cache_free(s);
        int rc = sqlite3_close(s->db);
        if (rc != SQLITE_OK)
            cf_error("store: close: %s", sqlite3_errstr(rc));
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

cf_err cf_store_changed(cf_store *s, bool *changed)
{
    CF_ENSURE(s && changed, CF_E_ARGS);
    int64_t v;
    st_lock(s);
    /* data_version changes only when another connection commits (SQLite pragma docs). */
    cf_err rv = query_i64(s, "PRAGMA data_version", &v, "data version");
    if (rv == CF_OK) {
        *changed = v != s->data_version;
        s->data_version = v;
    }
    st_unlock(s);
    return rv;
}
