/* internal.h: the engine's shared state and the types that only src/hsm sees.
 *
 * Locking (one rule set, kept short so it can be checked by reading):
 * - g.lock (rwlock) guards the token list, the handle maps and every object's attributes.
 *   Readers: lookups, attribute reads, find, op init. Writers: anything that adds, removes or
 *   changes tokens, sessions or objects, and login state changes.
 * - A session's mutex guards its active operations and find state; it is held while that
 *   session computes, but never together with a wait for g.lock in write mode (lock order:
 *   g.lock first, then a session mutex, then an object mutex).
 * - An object's mutex guards its lazily built OpenSSL key and the decryption of its sealed
 *   values, which happen under g.lock in read mode.
 * - No engine-wide lock is held while OpenSSL signs, decrypts or encrypts: operations own a
 *   snapshot of the key (hsm_key) and run under their session's mutex only. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include "base/config.h"
#include "crypto/crypto.h"
#include "hsm/attrs.h"
#include "hsm/hsm.h"
#include "hsm/mech.h"
#include "store/store.h"

/* ---- handle map (handles.c): u64 key -> pointer, open addressing ---------------------------- */
typedef struct {
    uint64_t *keys;
    void **vals;
    size_t cap, n;
} hsm_map;
void *hsm_map_get(const hsm_map *m, uint64_t key);
cf_err hsm_map_put(hsm_map *m, uint64_t key, void *val);
void *hsm_map_del(hsm_map *m, uint64_t key);
void hsm_map_free(hsm_map *m);
/* Gives back memory after many deletions (a no-op when the map is not mostly empty, or on no
 * memory). Not while iterating over the map. */
void hsm_map_shrink(hsm_map *m);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->keys[i]) ... (key 0 is never used). */

#define HSM_NO_LOGIN ((CK_USER_TYPE)-1)

/* One application's login to a token (PKCS#11 5.6: login state is shared by the sessions of one
 * application). Application 0 is the in-process one; cofferd gives each connection its own id. */
typedef struct {
    uint64_t app;
    CK_USER_TYPE user;             /* CKU_USER or CKU_SO */
    uint8_t *dk;                   /* the token's data key, opened by this login (secret) */
    size_t sessions;               /* the application's sessions on the token: its last one closing
                                    * logs it out (counted from the login on, so no scan then) */
} hsm_app_login;

typedef struct hsm_token {
    uint64_t slot;
    cf_store_token rec;            /* the store's row, refreshed on change */
    hsm_app_login *apps;           /* the applications logged in to this token (only those) */
    size_t napps, capps;
    bool loaded;                   /* token objects read from the store */
    size_t n_sessions, n_rw;       /* sessions open on it, and of those read/write (C_GetTokenInfo) */
    hsm_map by_store_id;           /* store id -> hsm_object* */
} hsm_token;

typedef struct hsm_object {
    CK_OBJECT_HANDLE handle;
    uint64_t slot;
    int64_t store_id, seq;         /* token objects */
    CK_SESSION_HANDLE owner;       /* session objects: the session that made it (0 for token) */
    uint64_t app;                  /* session objects: its application, the only one that sees it */
    hsm_attrs attrs;
    CK_OBJECT_CLASS cls;
    bool is_token, is_private;
    uint64_t version;              /* grows on every change; part of an operation's reuse key */
    pthread_mutex_t mu;
    cf_pkey *pkey;                 /* the ready key, built once (wiped on logout/destroy) */
    void *sealed;                  /* hsm_attrs*: sealed values kept while they are open */
    /* Leases (op.c, hsm_op_lease): the monotonic ms until which a remote client may take an init
     * of this key as valid without asking; changes wait for it. Granted under g.lock read;
     * lease_closed (changes waiting) is raised under g.lock write, so no grant slips past. */
    _Atomic uint64_t lease_until;
    atomic_int lease_closed;
    _Atomic uint64_t lease_closed_until;   /* no grant before (hsm_object_lease_left) */
} hsm_object;

typedef struct hsm_session {
    CK_SESSION_HANDLE handle;
    uint64_t slot;
    uint64_t app;                  /* the application that opened it (0: in-process) */
    CK_FLAGS flags;
    atomic_int refs;
    pthread_mutex_t mu;
    hsm_op *ops[HSM_OP__COUNT];    /* the active operation of each kind */
    hsm_op *spare[HSM_OP__COUNT];  /* the last finished one, kept for reuse */
    /* reuse key of spare: mechanism, its parameter bytes, the key object and its version */
    CK_MECHANISM_TYPE spare_mech[HSM_OP__COUNT];
    uint8_t *spare_param[HSM_OP__COUNT];
    size_t spare_param_len[HSM_OP__COUNT];
    CK_OBJECT_HANDLE spare_key[HSM_OP__COUNT];
    uint64_t spare_ver[HSM_OP__COUNT];
    bool context_login[HSM_OP__COUNT];   /* the op needs CKU_CONTEXT_SPECIFIC first */
    bool leased[HSM_OP__COUNT];          /* spare may be re-armed once by hsm_op_rearm */
    size_t nobjects;               /* session objects it made that still exist (g.lock) */
    bool finding;
    CK_OBJECT_HANDLE *found;
    size_t nfound, foundpos;
} hsm_session;

typedef struct {
    bool initialized;
    pthread_rwlock_t lock;
    cf_config cfg;
    cf_store *store;
    hsm_token **tokens;            /* sorted by slot */
    size_t ntokens;
    uint64_t free_slot;
    hsm_map sessions;              /* handle -> hsm_session* */
    hsm_map objects;               /* handle -> hsm_object* */
    uint64_t next_session, next_object;
    size_t session_objects;        /* how many objects are session objects (find skips the scan at 0) */
    hsm_map app_objects;           /* application id -> its session objects (a count, as a pointer) */
} hsm_state;

extern hsm_state g;

/* state.c */
hsm_token *hsm_token_get(uint64_t slot);            /* under g.lock */
/* Login state of one application (g.lock held): HSM_NO_LOGIN / NULL when it is not logged in. */
CK_USER_TYPE hsm_token_login_of(const hsm_token *t, uint64_t app);
hsm_app_login *hsm_token_login_rec(hsm_token *t, uint64_t app);   /* NULL: not logged in */
const uint8_t *hsm_token_dk_of(const hsm_token *t, uint64_t app);
/* Records a login (write lock held); takes dk (freed on failure). */
cf_err hsm_token_set_login(hsm_token *t, uint64_t app, CK_USER_TYPE user, uint8_t *dk);
/* Forgets every application's login (token re-initialized elsewhere, or freed). */
void hsm_token_forget_logins(hsm_token *t);
cf_err hsm_tokens_refresh(void);                    /* write lock held: re-read tokens from the store */
cf_err hsm_sync_if_changed(void);                   /* takes the write lock if another process wrote */
cf_err hsm_token_load(hsm_token *t);                /* write lock held: load token objects once */

/* session.c */
hsm_session *hsm_session_get(CK_SESSION_HANDLE h);  /* g.lock held (any mode); no ref taken */
hsm_session *hsm_session_ref(CK_SESSION_HANDLE h);  /* takes g.lock briefly; +1 ref or NULL */
void hsm_session_unref(hsm_session *s);
bool hsm_session_rw(const hsm_session *s);
/* The session's application's login state on its token (g.lock held). */
CK_USER_TYPE hsm_session_login(const hsm_session *s);
const uint8_t *hsm_session_dk(const hsm_session *s);
CK_STATE hsm_session_state(const hsm_session *s);
void hsm_session_free_ops(hsm_session *s);          /* session mutex held */
/* Leases (op.c): the monotonic clock in ms. A change c of object oh by session h is checked
 * (hsm_object_may_change) and, when allowed, raises the object's count of waiting changes and
 * sleeps out its lease; refused, it touches no lease and waits for nothing. After the change,
 * hsm_object_open_leases lowers the count again. No lock held. */
uint64_t hsm_mono_ms(void);
cf_err hsm_object_close_leases(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, hsm_change c);
void hsm_object_open_leases(CK_OBJECT_HANDLE oh);

/* object.c */
hsm_object *hsm_object_new(uint64_t slot);
void hsm_object_free(hsm_object *o);
/* The object if it exists and the session may see it (private ones need a user login). */
hsm_object *hsm_object_visible(const hsm_session *s, CK_OBJECT_HANDLE h);
void hsm_object_cache_class(hsm_object *o);
/* Decrypts sealed values (needs the token's data key dk; NULL: not logged in). g.lock held;
 * takes o->mu. The opened values are shared by every session that may see the object. */
cf_err hsm_object_unseal(const uint8_t *dk, hsm_object *o);
/* The ready OpenSSL key (+1 ref), built on first use. */
cf_err hsm_object_pkey(const uint8_t *dk, hsm_object *o, cf_pkey **out);
/* Wipes decrypted secrets and cached keys of private/secret objects (logout). */
void hsm_object_close_secrets(hsm_object *o, int64_t store_id);
/* Registers a new object (handle assigned, persisted when token). Write lock held. On failure
 * the object is freed. */
cf_err hsm_object_add(hsm_session *s, hsm_object *o, CK_OBJECT_HANDLE *out);
/* Removes and frees (and deletes from the store when token). Write lock held. */
cf_err hsm_object_remove(hsm_object *o);
/* After a token object's record was rewritten: re-read it (sealed); session objects: version++. */
cf_err hsm_object_persist_done(hsm_object *o);
/* objapi.c: whether session h may make change c to object oh (g.lock held): the session exists,
 * sees the object, is read/write for a token object, and the object is destroyable (modifiable).
 * The object in *out. */
cf_err hsm_object_may_change(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, hsm_change c, hsm_object **out);
/* Storage checks for a new object (RW session for token objects, user login for private ones). */
cf_err hsm_check_new_object(hsm_session *s, const hsm_attrs *a);
/* Logs one application out of the token (write lock held): wipes its data key; the objects'
 * decrypted secrets and ready keys are wiped when no application remains logged in. */
void hsm_token_logout(hsm_token *t, uint64_t app);
bool hsm_attr_so_only_true(CK_ATTRIBUTE_TYPE type);
/* Registers a token object read from the store (takes ownership of attrs). */
cf_err hsm_object_adopt(hsm_token *t, int64_t id, int64_t seq, cf_attr *attrs, size_t n);
/* Loads a token object from the store (new or changed). */
cf_err hsm_object_load(hsm_token *t, int64_t id);

/* template.c: the attribute rules (PKCS#11 2.40 section 4 tables) */
typedef enum { HSM_T_CREATE, HSM_T_GENERATE, HSM_T_UNWRAP, HSM_T_DERIVE, HSM_T_COPY, HSM_T_SET } hsm_tmpl_op;
/* Validates a caller template for a new object of the operation's kind and completes it with
 * defaults: a full attribute list for the object. class/key type come from the template or the
 * given defaults (CK_UNAVAILABLE_INFORMATION: none). Marks key material CF_ATTR_SECRET. */
cf_err hsm_template_build(hsm_tmpl_op op, hsm_attrs *a, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt,
                          CK_MECHANISM_TYPE keygen_mech);
/* C_SetAttributeValue / C_CopyObject changes: checks each change against o's current values. */
cf_err hsm_template_check_change(hsm_tmpl_op op, const hsm_object *o, const hsm_attrs *changes);
/* Whether an attribute type is known for any object class (for ATTRIBUTE_TYPE_INVALID). */
bool hsm_attr_known(CK_ATTRIBUTE_TYPE type);
/* Whether reading the attribute of o is refused (sensitive or unextractable key material). */
bool hsm_attr_is_sensitive(const hsm_object *o, CK_ATTRIBUTE_TYPE type);
/* Whether a type carries key material (stored encrypted). */
bool hsm_attr_is_secret(CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type);

/* pin.c */
cf_err hsm_pin_check_len(size_t len);
cf_err hsm_pin_make(const uint8_t *pin, size_t len, const uint8_t dk[CF_DATA_KEY_LEN], cf_pin_record *r);
/* Verifies against the record, yielding the data key (secret alloc) on success; counts failures. */
cf_err hsm_pin_verify(hsm_token *t, cf_pin_who who, const uint8_t *pin, size_t len, uint8_t **dk);
/* Tests only (NULL otherwise): called with no lock held by C_InitToken of a token and by token
 * deletion after the SO PIN check, just before the write lock under which the store is rewritten,
 * so a test can open a session in that gap. */
extern void (*hsm_test_before_rewrite)(CK_SLOT_ID slot);

/* util */
void hsm_pad(uint8_t *dst, size_t n, const char *src);   /* blank-padded fixed field */
