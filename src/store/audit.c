/* audit.c: the chained audit log (table audit, store.h). The store computes and checks the MACs;
 * the key is the caller's (cofferd derives it from its master key). */
#include <stdlib.h>
#include <string.h>
#include "base/secmem.h"
#include "crypto/crypto.h"
#include "store/store_int.h"

#define AUDIT_DOMAIN "coffer-audit-1"

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* mac = HMAC-SHA256(key, prev || encoding(rec)) */
static cf_err audit_mac(const uint8_t key[CF_AUDIT_KEY_LEN], const uint8_t prev[CF_AUDIT_MAC_LEN],
                        const cf_audit_record *r, uint8_t mac[CF_AUDIT_MAC_LEN])
{
    cf_hmac *m = NULL;
    uint8_t hdr[4 * 8], len[4];
    const char *ev = r->event ? r->event : "", *de = r->detail ? r->detail : "";
    size_t evl = strlen(ev), del = strlen(de), outlen = CF_AUDIT_MAC_LEN;
    cf_err rv;
    CF_GUARD(cf_hmac_new(CF_HASH_SHA256, key, CF_AUDIT_KEY_LEN, &m));
    CF_GUARD(cf_hmac_update(m, prev, CF_AUDIT_MAC_LEN));
    CF_GUARD(cf_hmac_update(m, AUDIT_DOMAIN, sizeof AUDIT_DOMAIN - 1));
    put_u64(hdr, (uint64_t)r->seq);
    put_u64(hdr + 8, (uint64_t)r->time);
    put_u64(hdr + 16, (uint64_t)r->token);
    put_u64(hdr + 24, (uint64_t)r->object);
    CF_GUARD(cf_hmac_update(m, hdr, sizeof hdr));
    put_u32(len, (uint32_t)evl);
    CF_GUARD(cf_hmac_update(m, len, sizeof len));
    CF_GUARD(cf_hmac_update(m, ev, evl));
    put_u32(len, (uint32_t)del);
    CF_GUARD(cf_hmac_update(m, len, sizeof len));
    CF_GUARD(cf_hmac_update(m, de, del));
    CF_GUARD(cf_hmac_final(m, mac, &outlen));
    CF_CHECK(outlen == CF_AUDIT_MAC_LEN, CF_E_CRYPTO);
out:
    cf_hmac_free(m);
    return rv;
}

cf_err cf_store_audit_append(cf_store *s, cf_audit_record *rec, const uint8_t key[CF_AUDIT_KEY_LEN])
{
    CF_ENSURE(s && rec && key && rec->event, CF_E_ARGS);
    sqlite3_stmt *st = NULL;
    uint8_t prev[CF_AUDIT_MAC_LEN] = { 0 }, mac[CF_AUDIT_MAC_LEN];
    bool row;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_begin(s));
    CF_GUARD(st_prepare(s, "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1", &st));
    CF_GUARD(st_step_row(s, st, &row, "read last audit record"));
    rec->seq = 1;
    if (row) {
        rec->seq = sqlite3_column_int64(st, 0) + 1;
        CF_CHECK(sqlite3_column_bytes(st, 1) == CF_AUDIT_MAC_LEN, CF_E_STORE_CORRUPT);
        memcpy(prev, sqlite3_column_blob(st, 1), CF_AUDIT_MAC_LEN);
    }
    st_done(s, st);
    st = NULL;
    CF_GUARD(audit_mac(key, prev, rec, mac));
    CF_GUARD(st_prepare(s, "INSERT INTO audit(seq, time, token, object, event, detail, mac) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st));
    CF_GUARD(st_bind_i64(s, st, 1, rec->seq));
    CF_GUARD(st_bind_i64(s, st, 2, rec->time));
    CF_GUARD(st_bind_i64(s, st, 3, rec->token));
    CF_GUARD(st_bind_i64(s, st, 4, rec->object));
    CF_GUARD(st_bind_text(s, st, 5, rec->event, strlen(rec->event)));
    const char *d = rec->detail ? rec->detail : "";
    CF_GUARD(st_bind_text(s, st, 6, d, strlen(d)));
    CF_GUARD(st_bind_blob(s, st, 7, mac, sizeof mac));
    CF_GUARD(st_step_done(s, st, "append audit record"));
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

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

cf_err cf_store_audit_read(cf_store *s, const cf_audit_filter *f, cf_audit_read_fn fn, void *ctx)
{
    CF_ENSURE(s && fn, CF_E_ARGS);
    cf_audit_filter none = { 0, 0, -1, -1, NULL };
    if (!f)
        f = &none;
    sqlite3_stmt *st = NULL;
    bool row;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_prepare(s, "SELECT seq, time, token, object, event, detail FROM audit WHERE "
                           "(?1 = 0 OR time >= ?1) AND (?2 = 0 OR time <= ?2) AND "
                           "(?3 < 0 OR token = ?3) AND (?4 < 0 OR object = ?4) AND "
                           "(?5 IS NULL OR event = ?5) ORDER BY seq", &st));
    CF_GUARD(st_bind_i64(s, st, 1, f->since));
    CF_GUARD(st_bind_i64(s, st, 2, f->until));
    CF_GUARD(st_bind_i64(s, st, 3, f->token));
    CF_GUARD(st_bind_i64(s, st, 4, f->object));
    if (f->event)
        CF_GUARD(st_bind_text(s, st, 5, f->event, strlen(f->event)));
    else
        CF_GUARD(st_bind_null(s, st, 5));
    for (;;) {
        CF_GUARD(st_step_row(s, st, &row, "read audit log"));
        if (!row)
            break;
        cf_audit_record r = {
            .seq = sqlite3_column_int64(st, 0), .time = sqlite3_column_int64(st, 1),
            .token = sqlite3_column_int64(st, 2), .object = sqlite3_column_int64(st, 3),
            .event = col_text(st, 4), .detail = col_text(st, 5),
        };
        CF_GUARD(fn(ctx, &r));
    }
out:
    st_done(s, st);
    st_unlock(s);
    return rv;
}

typedef struct {
    cf_audit_record r;
    char *event, *detail;
    uint8_t mac[CF_AUDIT_MAC_LEN];
    bool mac_ok;              /* the stored mac had the right length */
} audit_row;

static void rows_free(audit_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].event);
        free(rows[i].detail);
    }
    free(rows);
}

static cf_err load_rows(cf_store *s, audit_row **out, size_t *nout)
{
    sqlite3_stmt *st = NULL;
    audit_row *rows = NULL;
    size_t n = 0, cap = 0;
    bool row;
    cf_err rv;
    st_lock(s);
    CF_GUARD(st_prepare(s, "SELECT seq, time, token, object, event, detail, mac FROM audit ORDER BY seq", &st));
    for (;;) {
        CF_GUARD(st_step_row(s, st, &row, "read audit log"));
        if (!row)
            break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            audit_row *nr = realloc(rows, nc * sizeof *nr);
            CF_CHECK(nr, CF_E_NOMEM);
            rows = nr;
            cap = nc;
        }
        audit_row *a = &rows[n];
        memset(a, 0, sizeof *a);
        a->r.seq = sqlite3_column_int64(st, 0);
        a->r.time = sqlite3_column_int64(st, 1);
        a->r.token = sqlite3_column_int64(st, 2);
        a->r.object = sqlite3_column_int64(st, 3);
        a->event = strdup(col_text(st, 4));
        a->detail = strdup(col_text(st, 5));
        n++;
        CF_CHECK(a->event && a->detail, CF_E_NOMEM);
        a->r.event = a->event;
        a->r.detail = a->detail;
        a->mac_ok = sqlite3_column_bytes(st, 6) == CF_AUDIT_MAC_LEN;
        if (a->mac_ok)
            memcpy(a->mac, sqlite3_column_blob(st, 6), CF_AUDIT_MAC_LEN);
    }
out:
    st_done(s, st);
    st_unlock(s);
    if (rv != CF_OK) {
        rows_free(rows, n);
        return rv;
    }
    *out = rows;
    *nout = n;
    return CF_OK;
}

/* Whether rows[i], unchanged, verifies at the position of another record (a reorder): tried at
 * each other record's seq, chained on the mac of a record next to that position. */
static cf_err moved(const uint8_t *key, const audit_row *rows, size_t n, size_t i, bool *yes)
{
    static const uint8_t zero[CF_AUDIT_MAC_LEN];
    uint8_t mac[CF_AUDIT_MAC_LEN];
    *yes = false;
    for (size_t j = 0; j < n && !*yes; j++) {
        if (j == i)
            continue;
        cf_audit_record r = rows[i].r;
        r.seq = rows[j].r.seq;
        const uint8_t *prevs[4];
        size_t np = 0;
        if (r.seq == 1)
            prevs[np++] = zero;
        for (size_t k = j ? j - 1 : 0; k <= j + 1 && k < n; k++)
            if (rows[k].mac_ok)
                prevs[np++] = rows[k].mac;
        for (size_t p = 0; p < np && !*yes; p++) {
            CF_TRY(audit_mac(key, prevs[p], &r, mac));
            *yes = cf_ct_equal(mac, rows[i].mac, sizeof mac);
        }
    }
    return CF_OK;
}

cf_err cf_store_audit_verify(cf_store *s, const uint8_t key[CF_AUDIT_KEY_LEN], cf_audit_verdict *v)
{
    CF_ENSURE(s && key && v, CF_E_ARGS);
    memset(v, 0, sizeof *v);
    audit_row *rows = NULL;
    size_t n = 0;
    CF_TRY(load_rows(s, &rows, &n));
    uint8_t prev[CF_AUDIT_MAC_LEN] = { 0 }, mac[CF_AUDIT_MAC_LEN];
    cf_err rv = CF_OK;
    v->records = n;
    for (size_t i = 0; i < n; i++) {
        const audit_row *a = &rows[i];
        if (a->r.seq != (int64_t)i + 1) {
            v->state = CF_AUDIT_REMOVED;
            v->first_bad_seq = a->r.seq;
            break;
        }
        CF_GUARD(audit_mac(key, prev, &a->r, mac));
        if (!a->mac_ok || !cf_ct_equal(mac, a->mac, sizeof mac)) {
            bool mv = false;
            if (a->mac_ok)
                CF_GUARD(moved(key, rows, n, i, &mv));
            v->state = mv ? CF_AUDIT_REORDERED : CF_AUDIT_CHANGED;
            v->first_bad_seq = a->r.seq;
            break;
        }
        memcpy(prev, a->mac, sizeof prev);
    }
out:
    rows_free(rows, n);
    return rv;
}

const char *cf_audit_state_name(cf_audit_state st)
{
    switch (st) {
    case CF_AUDIT_INTACT: return "intact";
    case CF_AUDIT_CHANGED: return "changed";
    case CF_AUDIT_REMOVED: return "removed";
    case CF_AUDIT_REORDERED: return "reordered";
    }
    return "unknown";
}

cf_err cf_store_audit_key(const uint8_t master[32], uint8_t key[CF_AUDIT_KEY_LEN])
{
    static const char label[] = "coffer audit v1";
    size_t len = CF_AUDIT_KEY_LEN;
    CF_TRY(cf_hmac_oneshot(CF_HASH_SHA256, master, 32, label, sizeof label - 1, key, &len));
    return len == CF_AUDIT_KEY_LEN ? CF_OK : CF_E_CRYPTO;
}
