/* store.h: the persistent object store (SQLite at <dir>/coffer.db). The only code that includes
 * sqlite3.h.
 *
 * What it holds: tokens (slot id, label, serial, the PIN records that wrap each token's data key,
 * failed-PIN counters) and token objects (every attribute). Attribute values flagged
 * CF_ATTR_SECRET are encrypted with AES-256-GCM under the token's 32-byte data key, with the
 * object id and attribute type as associated data, so a value cannot be moved to another object
 * or attribute unnoticed. Nothing secret is written in plaintext.
 *
 * Concurrency: one connection per cf_store, guarded by a mutex, so a cf_store may be shared by
 * threads. Several processes may open the same file: WAL mode, a busy timeout, and every change in
 * one IMMEDIATE transaction. cf_store_changed tells a process that another one committed, so it
 * can re-read what it caches.
 *
 * Records: an object's attributes are one blob in the format of cf_store_record_encode (below),
 * version byte first; the decoder is the fuzzing target for stored bytes. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/bytes.h"
#include "base/error.h"

typedef struct cf_store cf_store;

#define CF_DATA_KEY_LEN 32

/* ---- attributes ---------------------------------------------------------------------------- */
enum {
    CF_ATTR_SECRET = 1u << 0,   /* stored encrypted (private key parts, secret key values) */
    CF_ATTR_SEALED = 1u << 1,   /* in memory: val holds iv||ciphertext||tag, not yet decrypted */
};

typedef struct {
    uint64_t type;      /* CKA_* */
    uint32_t flags;     /* CF_ATTR_* */
    size_t len;
    uint8_t *val;       /* owned (malloc), may be NULL when len == 0 */
} cf_attr;

/* Wipes and frees n attributes and the array. NULL-safe. */
void cf_attrs_free(cf_attr *a, size_t n);

/* ---- record format (exposed for tests and the fuzz harness) ------------------------------- */
/* Layout: u8 version(1) | u32 count | count x { u64 type | u8 flags | u32 len | len bytes }.
 * Values with CF_ATTR_SECRET are written sealed under dk (iv 12 | ct | tag 16) with associated
 * data u64 object_id | u64 type; dk may be NULL only if no attribute is secret. */
cf_err cf_store_record_encode(const cf_attr *a, size_t n, int64_t object_id,
                              const uint8_t dk[CF_DATA_KEY_LEN], cf_writer *w);
/* Decodes a record; secret values come back CF_ATTR_SEALED. On error nothing is allocated and the
 * reader has not moved. Rejects: unknown version, trailing bytes, duplicate types, count or
 * length beyond the input, more than 4096 attributes. */
cf_err cf_store_record_decode(cf_reader *r, cf_attr **out, size_t *n);
/* Decrypts a CF_ATTR_SEALED value in place (clears the flag). CF_E_STORE_CORRUPT on a bad tag. */
cf_err cf_store_attr_unseal(const uint8_t dk[CF_DATA_KEY_LEN], int64_t object_id, cf_attr *a);

/* ---- open / close ---------------------------------------------------------------------------- */
/* Creates dir (0700) and the database if missing, applies migrations. */
cf_err cf_store_open(const char *dir, cf_store **out);
void cf_store_close(cf_store *s);
/* True when another connection (process) committed since the last call on this handle. */
cf_err cf_store_changed(cf_store *s, bool *changed);

/* ---- tokens ----------------------------------------------------------------------------------- */
#define CF_PIN_WRAPPED_LEN (12 + CF_DATA_KEY_LEN + 16)   /* iv | AES-256-GCM(data key) | tag */
typedef struct {
    bool set;
    uint8_t salt[16];
    uint32_t iterations;
    uint8_t wrapped[CF_PIN_WRAPPED_LEN];
} cf_pin_record;

typedef enum { CF_PIN_SO = 0, CF_PIN_USER = 1 } cf_pin_who;

typedef struct {
    uint64_t slot;            /* permanent slot id */
    char label[33];           /* NUL-terminated, up to 32 bytes of UTF-8 */
    char serial[17];          /* NUL-terminated, 16 chars */
    cf_pin_record pin[2];     /* [CF_PIN_SO], [CF_PIN_USER] */
    uint32_t fails[2];        /* consecutive failed logins */
} cf_store_token;

/* All initialized tokens, by slot id ascending. Free the array with free(). */
cf_err cf_store_tokens(cf_store *s, cf_store_token **out, size_t *n);
cf_err cf_store_token_get(cf_store *s, uint64_t slot, cf_store_token *out);  /* NOT_FOUND */
/* The id of the one free (uninitialized) slot; it never held a token. */
cf_err cf_store_free_slot(cf_store *s, uint64_t *slot);
/* Initializes (t->slot is the free slot: a new token, and a new free slot appears) or
 * re-initializes (t->slot is a token: all its objects are deleted) in one transaction. */
cf_err cf_store_token_init(cf_store *s, const cf_store_token *t);
/* Deletes a token and its objects; its slot id is never reused. */
cf_err cf_store_token_delete(cf_store *s, uint64_t slot);
/* Replaces one PIN record and resets that PIN's failure counter. */
cf_err cf_store_token_set_pin(cf_store *s, uint64_t slot, cf_pin_who who, const cf_pin_record *r);
/* Records a login outcome atomically: ok resets the counter, !ok increments it; *fails gets the
 * count after the change. */
cf_err cf_store_pin_result(cf_store *s, uint64_t slot, cf_pin_who who, bool ok, uint32_t *fails);

/* ---- objects ---------------------------------------------------------------------------------- */
/* Inserts a token object; secret attributes are sealed under dk. *id is its permanent id. */
cf_err cf_store_obj_insert(cf_store *s, uint64_t slot, const cf_attr *a, size_t n,
                           const uint8_t dk[CF_DATA_KEY_LEN], int64_t *id);
/* Replaces an object's attributes (same sealing rules); NOT_FOUND if it was deleted. Sealed
 * values passed back unchanged (CF_ATTR_SEALED) are kept as they are, so an object whose secrets
 * are not decrypted can still have public attributes changed. */
cf_err cf_store_obj_update(cf_store *s, int64_t id, const cf_attr *a, size_t n,
                           const uint8_t dk[CF_DATA_KEY_LEN]);
cf_err cf_store_obj_delete(cf_store *s, int64_t id);   /* NOT_FOUND if absent */
/* Calls fn for every object of a slot with its id and change sequence number (which grows on
 * every update), in id order. fn returning non-OK stops the scan with that status. */
typedef cf_err (*cf_store_scan_fn)(void *ctx, int64_t id, int64_t seq);
cf_err cf_store_obj_scan(cf_store *s, uint64_t slot, cf_store_scan_fn fn, void *ctx);
/* Every object of a slot with its record in one pass (a token's first load): fn gets ownership
 * of attrs (secret values sealed). fn returning non-OK stops with that status. */
typedef cf_err (*cf_store_load_fn)(void *ctx, int64_t id, int64_t seq, cf_attr *attrs, size_t n);
cf_err cf_store_obj_load_all(cf_store *s, uint64_t slot, cf_store_load_fn fn, void *ctx);
/* Loads one object (secret values sealed). */
cf_err cf_store_obj_load(cf_store *s, int64_t id, cf_attr **out, size_t *n, int64_t *seq);
/* Ids of the slot's objects whose indexed columns match: CKA_ID and/or CKA_LABEL and/or CKA_CLASS
 * (NULL / negative to ignore). Free *ids with free(). */
cf_err cf_store_obj_find(cf_store *s, uint64_t slot, const uint8_t *ckid, size_t ckid_len,
                         const uint8_t *label, size_t label_len, int64_t cls,
                         int64_t **ids, size_t *n);

/* ---- TPM instances --------------------------------------------------------------------------- */
/* The state blob of a TPM instance, as cf_store_tpm_put last wrote it (sealed by the caller: the
 * store does not look inside). NOT_FOUND for an instance never stored. Free *blob with free(). */
cf_err cf_store_tpm_get(cf_store *s, const char *name, uint8_t **blob, size_t *len);
/* Replaces an instance's state blob in one transaction. */
cf_err cf_store_tpm_put(cf_store *s, const char *name, const uint8_t *blob, size_t len);

/* ---- audit log (issue 4 item 5) ---------------------------------------------------------------
 * Table audit: one row per security event. Each record's mac is
 *   HMAC-SHA256(key, prev_mac || encoding(record))
 * where prev_mac is the mac of the record seq-1 (32 zero bytes for seq 1) and the encoding is
 *   "coffer-audit-1" | u64 seq | i64 time | i64 token | i64 object | u32 len | event | u32 len | detail
 * (integers big-endian). Editing, deleting or reordering a record breaks the chain from there on;
 * cf_store_audit_verify names the first such record. Deleting records at the end of the log is
 * not detectable from the log alone (compare the record count with an external copy). */
#define CF_AUDIT_KEY_LEN 32
#define CF_AUDIT_MAC_LEN 32

typedef struct {
    int64_t seq;              /* assigned by cf_store_audit_append */
    int64_t time;             /* seconds since the epoch */
    int64_t token;            /* slot id, 0: none */
    int64_t object;           /* store id of the object, 0: none */
    const char *event;        /* "login", "keygen", ... (hsm_audit_type_name) */
    const char *detail;       /* free text, no secrets ("app=3 user=user result=OK label=x") */
} cf_audit_record;

/* Appends one record in one IMMEDIATE transaction (seq = last + 1, mac chained on the last
 * record's). rec->seq is set. */
cf_err cf_store_audit_append(cf_store *s, cf_audit_record *rec, const uint8_t key[CF_AUDIT_KEY_LEN]);

typedef struct {
    int64_t since, until;     /* time bounds, inclusive; 0: none */
    int64_t token;            /* -1: any */
    int64_t object;           /* -1: any */
    const char *event;        /* NULL: any */
} cf_audit_filter;
/* Calls fn for each matching record in seq order (strings valid during the call only). fn
 * returning non-OK stops with that status. */
typedef cf_err (*cf_audit_read_fn)(void *ctx, const cf_audit_record *rec);
cf_err cf_store_audit_read(cf_store *s, const cf_audit_filter *f, cf_audit_read_fn fn, void *ctx);

typedef enum { CF_AUDIT_INTACT = 0, CF_AUDIT_CHANGED, CF_AUDIT_REMOVED, CF_AUDIT_REORDERED } cf_audit_state;
typedef struct {
    cf_audit_state state;
    int64_t first_bad_seq;    /* the first record that does not verify (0 when intact) */
    uint64_t records;         /* records read */
} cf_audit_verdict;
/* Verifies the whole chain. CF_OK with v->state telling the outcome; a record is
 * REMOVED when its seq is not the previous one + 1 (first_bad_seq names the record after the
 * gap), REORDERED when its mac verifies at another position, CHANGED otherwise. */
cf_err cf_store_audit_verify(cf_store *s, const uint8_t key[CF_AUDIT_KEY_LEN], cf_audit_verdict *v);
const char *cf_audit_state_name(cf_audit_state st);
/* The audit key: HMAC-SHA256(master key, "coffer audit v1"). Only cofferd (and `coffer audit
 * verify`, which reads the same master.key) can compute it. */
cf_err cf_store_audit_key(const uint8_t master[32], uint8_t key[CF_AUDIT_KEY_LEN]);
