/* internal.h: what the files of src/tpm share: the instance (persistent and volatile parts), the
 * command context handed to handlers, the command table, object slots, the bridge between tpm2-tss's
 * marshaling (libtss2-mu) and coffer's bounded reader/writer, and response-code helpers.
 *
 * Layering: engine.c parses the frame, the handle and authorization areas (session.c checks the
 * authorizations), looks the command up in table.c and calls a handler in commands/ (one file per command family) with a reader
 * over the parameter area and a writer for the response parameters. Handlers validate everything
 * before they change state, so an error leaves the TPM unchanged (except dictionary-attack counting,
 * which is meant to stick). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>
#include "base/bytes.h"
#include "crypto/crypto.h"
#include "tpm/tpm.h"

typedef uint32_t tpm_rc;

/* ---- sizes of this implementation --------------------------------------------------------- */
#define TPM_PCR_COUNT 24
#define TPM_PCR_SELECT_BYTES 3
#define TPM_PCR_BANKS 3              /* SHA-1, SHA-256, SHA-384, in that order */
#define TPM_OBJECT_SLOTS 3           /* transient objects (TPM_PT_HR_TRANSIENT_MIN) */
#define TPM_PERSISTENT_SLOTS 8       /* TPM_PT_HR_PERSISTENT_MIN */
#define TPM_SEED_LEN 48              /* primary seeds: SHA-384 strength */
#define TPM_PROOF_LEN 48
#define TPM_MAX_SESSIONS 3           /* sessions in one authorization area */
#define TPM_SESSION_SLOTS 8          /* loaded HMAC/policy sessions (TPM_PT_HR_LOADED_MIN) */
#define TPM_MAX_RANDOM 48            /* GetRandom: at most TPM_PT_MAX_DIGEST (SHA-384) bytes a call */
#define TPM_INPUT_BUFFER 1024        /* TPM_PT_INPUT_BUFFER: MAX_BUFFER for TPM2B_MAX_BUFFER */
#define TPM_CONTEXT_HASH TPM2_ALG_SHA256   /* tickets and proofs */
#define TPM_BLOB_VERSION 2           /* 2: disableClear */
/* tss2_tpm2_types.h builds TPM2_TRANSIENT_FIRST by shifting an int into the sign bit (UB) */
#define TPM_TRANSIENT_FIRST 0x80000000u

/* ---- response codes (Part 2 section 6.6) ------------------------------------------------- */
/* Format-1 codes carry the number of the parameter, handle or session they concern. Adding a
 * number to a format-0 code would change its meaning, so these helpers leave those alone. */
static inline bool tpm_rc_is_fmt1(tpm_rc rc) { return (rc & TPM2_RC_FMT1) != 0; }
static inline tpm_rc tpm_rc_p(tpm_rc rc, unsigned n)
{
    return tpm_rc_is_fmt1(rc) && (rc & 0xFC0) == TPM2_RC_FMT1 ? rc | TPM2_RC_P | ((n & 0xF) << 8) : rc;
}
static inline tpm_rc tpm_rc_h(tpm_rc rc, unsigned n)
{
    return tpm_rc_is_fmt1(rc) && (rc & 0xFC0) == TPM2_RC_FMT1 ? rc | TPM2_RC_H | ((n & 0x7) << 8) : rc;
}
static inline tpm_rc tpm_rc_s(tpm_rc rc, unsigned n)
{
    return tpm_rc_is_fmt1(rc) && (rc & 0xFC0) == TPM2_RC_FMT1 ? rc | TPM2_RC_S | ((n & 0x7) << 8) : rc;
}
/* A coffer status (from src/crypto) as a TPM code: the only place the two meet. */
tpm_rc tpm_rc_from_cf(cf_err e);

/* Guards for handlers: return a TPM code. */
#define TPM_TRY(expr) do { tpm_rc tpm_try_rc_ = (expr); if (tpm_try_rc_ != TPM2_RC_SUCCESS) return tpm_try_rc_; } while (0)
#define TPM_ENSURE(cond, rc) do { if (!(cond)) return (rc); } while (0)
#define TPM_GUARD(expr) do { rc = (expr); if (rc != TPM2_RC_SUCCESS) goto out; } while (0)
#define TPM_CHECK(cond, err) do { if (!(cond)) { rc = (err); goto out; } } while (0)

/* ---- libtss2-mu bridge ------------------------------------------------------------------- */
/* Every Tss2_MU_<T>_Unmarshal(buffer, size, &offset, T *dst) fits this shape once its last pointer
 * is seen as void *; the casts go through void (*)(void) (see TPM_GET). */
typedef TSS2_RC (*tpm_unmarshal_fn)(const uint8_t *buf, size_t len, size_t *off, void *dst);
typedef TSS2_RC (*tpm_marshal_fn)(const void *src, uint8_t *buf, size_t len, size_t *off);
/* Unmarshals at r->off; r->off advances only on success. TPM_RC_INSUFFICIENT when the input is
 * short, TPM_RC_SIZE for a TPM2B larger than its type, TPM_RC_VALUE for a bad selector. */
tpm_rc tpm_get(cf_reader *r, tpm_unmarshal_fn fn, void *dst);
/* Marshals into the writer; on overflow the writer is marked (cf_writer_status). */
void tpm_put(cf_writer *w, tpm_marshal_fn fn, const void *src);
#define TPM_UNMARSHAL(T) ((tpm_unmarshal_fn)(void (*)(void))Tss2_MU_##T##_Unmarshal)
#define TPM_MARSHAL(T) ((tpm_marshal_fn)(void (*)(void))Tss2_MU_##T##_Marshal)
/* Parameter n of a command: unmarshal or return the code with TPM_RC_P + n. */
#define TPM_GET(r, T, dst, n) do { \
        tpm_rc tpm_get_rc_ = tpm_get((r), TPM_UNMARSHAL(T), (dst)); \
        if (tpm_get_rc_ != TPM2_RC_SUCCESS) return tpm_rc_p(tpm_get_rc_, (n)); } while (0)
#define TPM_PUT(w, T, src) tpm_put((w), TPM_MARSHAL(T), (src))
/* A TPM2B of raw bytes (size then data) into a writer. */
void tpm_put_2b(cf_writer *w, const uint8_t *p, size_t n);
/* Marshals a struct into a scratch buffer (for names, hashes of templates); returns its length or
 * 0 when it did not fit. */
size_t tpm_marshal_to(tpm_marshal_fn fn, const void *src, uint8_t *buf, size_t cap);

/* ---- hashes --------------------------------------------------------------------------------- */
cf_hash_alg tpm_hash_alg(TPM2_ALG_ID alg);   /* CF_HASH_NONE for anything else */
size_t tpm_hash_size(TPM2_ALG_ID alg);        /* 0 for anything else */
tpm_rc tpm_hash(TPM2_ALG_ID alg, const void *p, size_t n, uint8_t *out);
/* Hash of several pieces (ptr, len pairs; a NULL ptr ends the list). */
tpm_rc tpm_hash_v(TPM2_ALG_ID alg, uint8_t *out, ...);
tpm_rc tpm_hmac_v(TPM2_ALG_ID alg, const uint8_t *key, size_t keylen, uint8_t *out, ...);

/* ---- KDFs (kdf.c) -------------------------------------------------------------------------- */
/* KDFa (Part 1 section 11.4.10.2, SP 800-108 counter mode with HMAC): `bits` bits into out
 * ((bits + 7) / 8 bytes; a partial last byte is masked at its top). label is NUL-terminated
 * (the NUL is part of the input); contextU / contextV may be empty. */
tpm_rc tpm_kdfa(TPM2_ALG_ID hash, const uint8_t *key, size_t keylen, const char *label,
                const uint8_t *u, size_t ulen, const uint8_t *v, size_t vlen, uint32_t bits, uint8_t *out);
/* KDFe (Part 1 section 11.4.10.3, SP 800-56A concatenation KDF): Z is the x-coordinate of the
 * shared point; partyU / partyV the x-coordinates of the two public keys. */
tpm_rc tpm_kdfe(TPM2_ALG_ID hash, const uint8_t *z, size_t zlen, const char *label,
                const uint8_t *u, size_t ulen, const uint8_t *v, size_t vlen, uint32_t bits, uint8_t *out);
/* A KDFa stream: successive draws continue the counter, as the reference TPM's
 * DRBG_InstantiateSeededKdf does for primary objects. */
typedef struct {
    TPM2_ALG_ID hash;
    const uint8_t *key;
    size_t keylen;
    const char *label;
    const uint8_t *u, *v;
    size_t ulen, vlen;
    uint32_t counter;
} tpm_kdf_stream;
tpm_rc tpm_kdf_draw(tpm_kdf_stream *s, uint8_t *out, size_t n);

/* ---- state --------------------------------------------------------------------------------- */
typedef struct {
    uint8_t seed[TPM_SEED_LEN];
    uint8_t proof[TPM_PROOF_LEN];
    TPM2B_AUTH auth;
    TPM2B_DIGEST policy;
    TPMI_ALG_HASH policy_alg;
} tpm_hierarchy;

enum { TPM_H_OWNER, TPM_H_ENDORSEMENT, TPM_H_PLATFORM, TPM_H_NULL, TPM_H_COUNT };

typedef struct {
    uint8_t value[TPM_PCR_BANKS][TPM_PCR_COUNT][48];
    uint32_t update_counter;
} tpm_pcrs;

/* A loaded object: its public and sensitive areas, its name, and the OpenSSL key ready for use. */
typedef struct {
    bool used;
    TPM2_HANDLE handle;
    TPMI_RH_HIERARCHY hierarchy;
    TPMT_PUBLIC pub;
    TPMT_SENSITIVE sens;
    TPM2B_NAME name;
    TPM2B_NAME qname;       /* qualified name (Part 1 section 16) */
    cf_pkey *key;           /* RSA / ECC; NULL for keyedhash and symcipher */
    cf_signer *signer;      /* cached for the last (scheme, hash) used */
    cf_sig_params signer_params;
    bool public_only;       /* LoadExternal without a sensitive area: sens is empty */
    struct tpm_seq *seq;    /* a hash, HMAC or event sequence (commands/sequence.c); else NULL */
} tpm_object;

/* The part serialized into the blob (state.c). Everything a TPM keeps in NV. */
typedef struct {
    tpm_hierarchy h[TPM_H_COUNT];          /* null: saved only as part of `saved` */
    TPM2B_AUTH lockout_auth;
    TPM2B_DIGEST lockout_policy;
    TPMI_ALG_HASH lockout_policy_alg;
    bool sh_enable, eh_enable;
    bool disable_clear;                    /* ClearControl (TPMA_PERMANENT disableClear) */
    /* dictionary attack (Part 1 section 19.8) */
    uint32_t failed_tries, max_tries, recovery_time, lockout_recovery;
    bool lockout_locked;                   /* lockoutAuth failed: locked until lockout_recovery */
    uint64_t lockout_locked_at;            /* clock value when it was */
    uint64_t last_da_decrement;            /* clock value of the last failedTries decrement */
    /* clock (Part 1 section 36) */
    uint64_t clock;
    uint32_t reset_count, restart_count;
    bool orderly;                          /* the last Shutdown was orderly (not yet Startup) */
    /* Shutdown(STATE) */
    bool saved;
    tpm_pcrs saved_pcrs;
    uint8_t saved_null_seed[TPM_SEED_LEN], saved_null_proof[TPM_PROOF_LEN];
    /* persistent objects (EvictControl; commands/persist.c): loaded, keys ready, handle 0x81xxxxxx */
    uint32_t n_persistent;
    tpm_object persistent[TPM_PERSISTENT_SLOTS];
} tpm_persistent;

/* A loaded HMAC, policy or trial session (Part 1 section 19; session.c). */
typedef struct {
    bool used;
    TPM2_HANDLE handle;          /* 0x02xxxxxx (HMAC) or 0x03xxxxxx (policy, trial) */
    TPM2_SE type;
    TPMI_ALG_HASH auth_hash;
    TPMT_SYM_DEF symmetric;
    TPM2B_NONCE nonce_tpm;
    TPM2B_DIGEST session_key;    /* empty when unbound and unsalted */
    bool bound;                  /* bind entity: its name and authValue at StartAuthSession */
    TPM2B_NAME bind_name;
    TPM2B_AUTH bind_auth;
    /* policy sessions */
    TPM2B_DIGEST policy_digest;
    bool pcr_checked;            /* PolicyPCR ran: the PCRs must not change before use */
    uint32_t pcr_counter;
    bool auth_value_needed;      /* PolicyAuthValue */
    bool password_needed;        /* PolicyPassword */
    TPM2_CC command_code;        /* PolicyCommandCode: the one command it may authorize (0: any) */
    TPM2B_DIGEST cp_hash;        /* PolicySecret's cpHashA: the cpHash the use must have (empty: any) */
    uint64_t start_time;         /* TPM Time (ms since Startup) at StartAuthSession */
    uint64_t timeout;            /* PolicySecret expiration: the TPM Time after which it is void (0: none) */
    /* ContextSave: the slot stays taken (the session is active, not loaded) until ContextLoad of
     * the blob with this sequence number, or FlushContext of the handle */
    bool saved;
    uint64_t saved_seq;
} tpm_session;

typedef uint64_t (*tpm_time_fn)(void *ctx);   /* milliseconds, monotonic */

struct tpm_instance {
    char *name;
    tpm_persist_fn persist;
    void *persist_ctx;
    tpm_time_fn now;
    void *now_ctx;
    bool powered, started, nv_on, cancel, established;
    bool self_tested;
    tpm_persistent nv;
    /* volatile */
    tpm_pcrs pcrs;
    tpm_object objects[TPM_OBJECT_SLOTS];
    tpm_session sessions[TPM_SESSION_SLOTS];
    uint64_t time_base;        /* now() at the last power-on / Startup: TPMS_TIME_INFO.time */
    uint64_t clock_base;       /* now() when nv.clock was last advanced */
    uint64_t clock_saved;      /* nv.clock at the last persist */
    bool nv_dirty;             /* persistent state changed: hand the blob to persist */
    uint64_t context_seq;      /* ContextSave sequence numbers (Part 1 section 30.3) */
};
/* Writes the blob through the persist callback if nv_dirty (or the clock ran far ahead). */
tpm_rc tpm_state_commit(tpm_instance *t);

/* ---- commands --------------------------------------------------------------------------------- */
/* What a handle in the handle area may be (checked by the engine before the handler runs). */
typedef enum {
    TPM_HK_NONE = 0,
    TPM_HK_OBJECT,          /* TPMI_DH_OBJECT: a loaded transient or persistent object */
    TPM_HK_HIERARCHY,       /* TPMI_RH_HIERARCHY+: owner, endorsement, platform, null */
    TPM_HK_PCR,             /* TPMI_DH_PCR+: 0..23 or TPM_RH_NULL */
    TPM_HK_OBJECT_NULL,     /* TPMI_DH_OBJECT+: a loaded object or TPM_RH_NULL */
    TPM_HK_ENTITY,          /* TPMI_DH_ENTITY+: object, hierarchy, lockout, PCR or TPM_RH_NULL */
    TPM_HK_POLICY_SESSION,  /* TPMI_SH_POLICY: a loaded policy (or trial) session */
    TPM_HK_PARENT,          /* TPMI_DH_PARENT: a loaded object or a hierarchy (CreateLoaded) */
    TPM_HK_CONTEXT,         /* TPMI_DH_CONTEXT: a transient object, or a session the handler checks */
    TPM_HK_HIERARCHY_AUTH,  /* TPMI_RH_HIERARCHY_AUTH: owner, endorsement, platform, lockout */
    TPM_HK_CLEAR,           /* TPMI_RH_CLEAR: lockout, platform */
    TPM_HK_LOCKOUT,         /* TPMI_RH_LOCKOUT */
} tpm_handle_kind;

typedef struct tpm_cmd tpm_cmd;
typedef tpm_rc (*tpm_handler)(tpm_instance *t, tpm_cmd *c, cf_reader *in, cf_writer *out);

typedef struct {
    TPM2_CC cc;
    const char *name;
    uint8_t n_handles;          /* handles in the handle area */
    uint8_t n_auth;             /* of those, how many (from the first) need an authorization */
    bool r_handle;              /* the response has a handle */
    bool nv;                    /* may write NV (TPMA_CC nv) */
    bool flushed;               /* TPMA_CC flushed */
    tpm_handle_kind kinds[3];
    tpm_handler fn;
    /* Sessions (Part 1 section 21, Part 3): TPM_SF_ENC_CMD when the first command parameter is a
     * TPM2B (a `decrypt` session may encrypt it), TPM_SF_ENC_RSP likewise for the first response
     * parameter, TPM_SF_ADMIN when handle 1 is authorized in the ADMIN role (Part 1 19.2). A row
     * that leaves the column out gets 0 (table.c allows that). */
    uint8_t sess;
} tpm_cmd_def;
#define TPM_SF_ENC_CMD 0x01
#define TPM_SF_ENC_RSP 0x02
#define TPM_SF_ADMIN 0x04

extern const tpm_cmd_def tpm_commands[];
extern const size_t tpm_n_commands;
const tpm_cmd_def *tpm_command_find(TPM2_CC cc);
TPMA_CC tpm_command_attrs(const tpm_cmd_def *d);

/* One session of the authorization area, as parsed. */
typedef struct {
    TPMI_SH_AUTH_SESSION handle;
    TPM2B_NONCE nonce;
    TPMA_SESSION attrs;
    TPM2B_AUTH hmac;
} tpm_session_in;

/* The command being executed. */
struct tpm_cmd {
    const tpm_cmd_def *def;
    uint8_t locality;
    TPM2_ST tag;
    TPM2_CC cc;
    TPM2_HANDLE handles[3];
    tpm_object *objects[3];     /* for TPM_HK_OBJECT handles */
    unsigned n_sessions;
    tpm_session_in sessions[TPM_MAX_SESSIONS];
    const uint8_t *params;      /* the parameter area (for cpHash) */
    size_t params_len;
    TPM2_HANDLE r_handle;       /* set by a handler when def->r_handle */
    /* sessions (session.c): the loaded session of each authorization (NULL for TPM_RS_PW), the
     * entity authValue each one uses, and the parameter area after decryption */
    tpm_session *sess[TPM_MAX_SESSIONS];
    TPM2B_AUTH sess_auth[TPM_MAX_SESSIONS];
    bool sess_include_auth[TPM_MAX_SESSIONS];
    uint8_t params_buf[TPM_MAX_COMMAND_SIZE];
};

/* ---- sessions (session.c) ------------------------------------------------------------------- */
/* Parses the authorization area (tag TPM_ST_SESSIONS). */
tpm_rc tpm_sessions_parse(tpm_cmd *c, cf_reader *r);
/* Checks the authorizations of the first def->n_auth handles (and the DA rules). May change the
 * dictionary-attack state even when it fails. */
tpm_rc tpm_sessions_check(tpm_instance *t, tpm_cmd *c);
/* Appends the response authorization area. */
void tpm_sessions_respond(tpm_instance *t, tpm_cmd *c, const uint8_t *rparams, size_t rlen, cf_writer *w);
/* After a successful handler, before the response parameters are written: new nonceTPM for each
 * session, then the first response parameter encrypted in place for an `encrypt` session. */
tpm_rc tpm_sessions_encrypt_response(tpm_instance *t, tpm_cmd *c, uint8_t *rparams, size_t rlen);
tpm_session *tpm_session_find(tpm_instance *t, TPM2_HANDLE h);
/* FlushContext of a session handle: TPM_RC_HANDLE when it is not loaded. */
tpm_rc tpm_session_flush(tpm_instance *t, TPM2_HANDLE h);
void tpm_sessions_flush_all(tpm_instance *t);
/* ContextSave / ContextLoad of a session (session_context.c): called by commands/context.c for
 * session handles. save writes the TPMS_CONTEXT; load gives the handle back. */
tpm_rc tpm_session_context_save(tpm_instance *t, TPM2_HANDLE h, cf_writer *out);
tpm_rc tpm_session_context_load(tpm_instance *t, const TPMS_CONTEXT *ctx, TPM2_HANDLE *h);
size_t tpm_sessions_loaded(const tpm_instance *t);   /* loaded */
size_t tpm_sessions_active(const tpm_instance *t);   /* loaded or saved */
/* The Name of an entity for cpHash / binding (Part 1 section 16): an object's Name, else the
 * handle as 4 bytes. */
void tpm_entity_name(tpm_instance *t, TPM2_HANDLE h, TPM2B_NAME *name);

/* ---- state (state.c) --------------------------------------------------------------------------- */
uint64_t tpm_now(tpm_instance *t);
void tpm_clock_update(tpm_instance *t);   /* advances nv.clock to now */
/* The hierarchy index of a hierarchy handle, -1 for others. */
int tpm_hierarchy_index(TPM2_HANDLE h);
bool tpm_hierarchy_enabled(const tpm_instance *t, TPM2_HANDLE h);
const tpm_hierarchy *tpm_hierarchy_get(const tpm_instance *t, TPM2_HANDLE h);
cf_err tpm_state_serialize(const tpm_instance *t, cf_writer *w);
cf_err tpm_state_parse(tpm_persistent *nv, const uint8_t *p, size_t len);
/* Fresh seeds and proofs for a hierarchy. */
cf_err tpm_hierarchy_new_seed(tpm_hierarchy *h);

/* ---- objects (object.c) ------------------------------------------------------------------------ */
tpm_object *tpm_object_find(tpm_instance *t, TPM2_HANDLE h);
tpm_object *tpm_object_free_slot(tpm_instance *t, TPM2_HANDLE *handle);
void tpm_object_clear(tpm_object *o);
void tpm_objects_flush_all(tpm_instance *t);
/* name = nameAlg || H_nameAlg(marshaled TPMT_PUBLIC) (Part 1 section 16). */
tpm_rc tpm_object_name(const TPMT_PUBLIC *pub, TPM2B_NAME *name);
/* Checks a template for CreatePrimary/Create (Part 3 section 12.1, Part 1 section 27); param
 * number n for the error. */
tpm_rc tpm_template_check(const TPMT_PUBLIC *pub, unsigned n);
/* Derives the object from a primary seed (Part 1 section 26.3): fills pub->unique, sens, key. */
tpm_rc tpm_object_derive(const uint8_t *seed, size_t seedlen, const TPMS_SENSITIVE_CREATE *in,
                         tpm_object *o);
/* ---- object protection and loading (protect.c, commands/load.c, commands/persist.c) ------------ */
/* A storage parent: restricted decrypt RSA / ECC / symcipher with a sensitive area. */
bool tpm_object_is_storage(const tpm_object *o);
/* Completes an object whose pub (and, unless public_only, sens) are set: checks that the two
 * belong together (TPM_RC_BINDING / TPM_RC_KEY / TPM_RC_TYPE, without a parameter number), computes
 * the name and builds the OpenSSL key. On failure o->key is NULL. */
tpm_rc tpm_object_build(tpm_object *o);
/* Part 1 section 23: outPrivate = integrityHMAC || AES-CFB(marshaled TPM2B_SENSITIVE), keys from
 * KDFa(parent nameAlg, parent seedValue, "STORAGE" / "INTEGRITY"). unprotect: TPM_RC_INTEGRITY
 * when the HMAC does not match (no parameter number), TPM_RC_SENSITIVE when the decrypted area
 * does not parse. */
tpm_rc tpm_private_protect(const tpm_object *parent, const TPM2B_NAME *name, const TPMT_SENSITIVE *s,
                           TPM2B_PRIVATE *out);
tpm_rc tpm_private_unprotect(const tpm_object *parent, const TPM2B_NAME *name, const TPM2B_PRIVATE *in,
                             TPMT_SENSITIVE *s);
/* Part 1 section 30: a context blob protected with keys from the hierarchy's proof, bound to
 * resetCount (and restartCount for savedHandle 0x80000002), the sequence and the saved handle. */
tpm_rc tpm_context_protect(const tpm_instance *t, TPMS_CONTEXT *ctx, const uint8_t *plain, size_t len);
tpm_rc tpm_context_unprotect(const tpm_instance *t, const TPMS_CONTEXT *ctx, uint8_t *plain, size_t *len);
/* A TPM2B_PUBLIC parameter whose size matches its content exactly (param n); in->off moves only
 * on success. */
tpm_rc tpm_get_public(cf_reader *in, TPMT_PUBLIC *pub, unsigned n);
/* QN = nameAlg || H_nameAlg(parent's QN || name) (Part 1 section 16; a hierarchy's QN is its handle). */
tpm_rc tpm_qualified_name(TPMI_ALG_HASH alg, const TPM2B_NAME *parent_qn, const TPM2B_NAME *name, TPM2B_NAME *qn);
/* A hierarchy handle as a name (4 bytes). */
void tpm_handle_name(TPM2_HANDLE h, TPM2B_NAME *name);
/* Persistent objects in the state blob (state.c calls these). */
void tpm_persistent_serialize(const tpm_persistent *nv, cf_writer *w);
cf_err tpm_persistent_parse(tpm_persistent *nv, cf_reader *r);
void tpm_persistent_clear(tpm_persistent *nv);

/* A signer for o->key with these parameters (cached in the object). */
tpm_rc tpm_object_signer(tpm_object *o, const cf_sig_params *p, bool sign, cf_signer **out);
/* The authValue of an entity (hierarchy, object, PCR) for password/HMAC checks. */
tpm_rc tpm_entity_auth(tpm_instance *t, TPM2_HANDLE h, tpm_object *o, TPM2B_AUTH *auth);

/* ---- PCRs (commands/pcr.c) --------------------------------------------------------------------- */
extern const TPM2_ALG_ID tpm_pcr_banks[TPM_PCR_BANKS];
int tpm_pcr_bank_index(TPM2_ALG_ID alg);
void tpm_pcrs_init(tpm_instance *t);       /* Startup(CLEAR) values */
void tpm_pcrs_restore(tpm_instance *t);    /* Startup(STATE): saved PCRs where stateSave */
/* Digest of the selected PCRs (creation data, quotes later). */
tpm_rc tpm_pcr_digest(tpm_instance *t, TPM2_ALG_ID hash, const TPML_PCR_SELECTION *sel, TPM2B_DIGEST *out);
/* PC Client localities (bit n = locality n) that may reset / extend PCR i. */
uint8_t tpm_pcr_reset_localities(unsigned pcr);
uint8_t tpm_pcr_extend_localities(unsigned pcr);

/* ---- tickets (object.c) --------------------------------------------------------------------------- */
/* HMAC(proof of hierarchy, tag || parts...) with TPM_CONTEXT_HASH (Part 2 section 10.7). */
tpm_rc tpm_ticket(const tpm_instance *t, TPM2_ST tag, TPMI_RH_HIERARCHY hier, const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen, TPM2B_DIGEST *out);

/* ---- handlers ---------------------------------------------------------------------------------- */
#define TPM_HANDLER(fn) tpm_rc fn(tpm_instance *t, tpm_cmd *c, cf_reader *in, cf_writer *out)
TPM_HANDLER(tpm_cc_startup);
TPM_HANDLER(tpm_cc_shutdown);
TPM_HANDLER(tpm_cc_self_test);
TPM_HANDLER(tpm_cc_incremental_self_test);
TPM_HANDLER(tpm_cc_get_test_result);
TPM_HANDLER(tpm_cc_get_random);
TPM_HANDLER(tpm_cc_stir_random);
TPM_HANDLER(tpm_cc_read_clock);
TPM_HANDLER(tpm_cc_get_capability);
TPM_HANDLER(tpm_cc_test_parms);
TPM_HANDLER(tpm_cc_pcr_read);
TPM_HANDLER(tpm_cc_pcr_extend);
TPM_HANDLER(tpm_cc_pcr_event);
TPM_HANDLER(tpm_cc_pcr_reset);
TPM_HANDLER(tpm_cc_create_primary);
TPM_HANDLER(tpm_cc_read_public);
TPM_HANDLER(tpm_cc_flush_context);
TPM_HANDLER(tpm_cc_sign);
TPM_HANDLER(tpm_cc_verify_signature);
TPM_HANDLER(tpm_cc_hash);
TPM_HANDLER(tpm_cc_create);
TPM_HANDLER(tpm_cc_create_loaded);
TPM_HANDLER(tpm_cc_load);
TPM_HANDLER(tpm_cc_load_external);
TPM_HANDLER(tpm_cc_object_change_auth);
TPM_HANDLER(tpm_cc_unseal);
TPM_HANDLER(tpm_cc_context_save);
TPM_HANDLER(tpm_cc_context_load);
TPM_HANDLER(tpm_cc_evict_control);
TPM_HANDLER(tpm_cc_start_auth_session);
TPM_HANDLER(tpm_cc_policy_restart);
TPM_HANDLER(tpm_cc_policy_get_digest);
TPM_HANDLER(tpm_cc_policy_pcr);
TPM_HANDLER(tpm_cc_policy_auth_value);
TPM_HANDLER(tpm_cc_policy_password);
TPM_HANDLER(tpm_cc_policy_secret);        /* commands/policy.c */
TPM_HANDLER(tpm_cc_policy_or);
TPM_HANDLER(tpm_cc_policy_command_code);

TPM_HANDLER(tpm_cc_rsa_encrypt);
TPM_HANDLER(tpm_cc_rsa_decrypt);
TPM_HANDLER(tpm_cc_ecdh_keygen);
TPM_HANDLER(tpm_cc_ecdh_zgen);
TPM_HANDLER(tpm_cc_encrypt_decrypt);
TPM_HANDLER(tpm_cc_encrypt_decrypt2);
TPM_HANDLER(tpm_cc_hmac);
TPM_HANDLER(tpm_cc_hmac_start);
TPM_HANDLER(tpm_cc_hash_sequence_start);
TPM_HANDLER(tpm_cc_sequence_update);
TPM_HANDLER(tpm_cc_sequence_complete);
TPM_HANDLER(tpm_cc_event_sequence_complete);
TPM_HANDLER(tpm_cc_quote);
TPM_HANDLER(tpm_cc_hierarchy_change_auth);
TPM_HANDLER(tpm_cc_clear);
TPM_HANDLER(tpm_cc_clear_control);
TPM_HANDLER(tpm_cc_da_lock_reset);
TPM_HANDLER(tpm_cc_da_parameters);

/* ---- sequences (commands/sequence.c) ------------------------------------------------------- */
/* A sequence object sits in a transient slot, marked by o->seq, with nameAlg
 * TPM_ALG_NULL (so its Name is empty, as the reference TPM's EntityGetName has it), noDA and
 * userWithAuth set (its authValue always usable). tpm_object_clear frees it. */
typedef struct tpm_seq tpm_seq;
void tpm_seq_free(tpm_seq *s);
static inline bool tpm_object_is_sequence(const tpm_object *o) { return o && o->seq; }

/* Extends PCR pcr (< TPM_PCR_COUNT, locality checked by the caller) with each digest whose bank
 * exists, and counts one PCR update (commands/pcr.c). */
void tpm_pcr_extend_digests(tpm_instance *t, unsigned pcr, const TPML_DIGEST_VALUES *d);

/* ---- signing (commands/sign.c), shared with Quote ---------------------------------------- */
/* The scheme to sign with: the key's own, or the caller's when the key has none (errors name
 * parameter 2, where both Sign and Quote carry inScheme). */
tpm_rc tpm_sig_scheme_select(const TPMT_PUBLIC *pub, const TPMT_SIG_SCHEME *in, TPMT_SIG_SCHEME *out);
/* Signs a digest with o's key under a scheme from tpm_sig_scheme_select. */
tpm_rc tpm_sign_digest(tpm_object *o, const TPMT_SIG_SCHEME *scheme, const uint8_t *digest, size_t len,
                       TPMT_SIGNATURE *out);

/* The parameters must be used up (Part 3: trailing bytes are TPM_RC_SIZE). */
static inline tpm_rc tpm_params_done(const cf_reader *in)
{
    return cf_reader_done(in) ? TPM2_RC_SUCCESS : TPM2_RC_SIZE;
}
