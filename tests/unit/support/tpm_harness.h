/* tpm_harness.h: the shared harness of the TPM unit tests (tpm_*_test.c). Commands are built here
 * byte by byte and run through tpm_execute, the engine's only entry point, with two styles:
 *   - cmd / begin / end / run: a raw command with password sessions (tpm_engine, tpm_crypt,
 *     tpm_object tests), on an instance whose state blob is saved into an env;
 *   - call / cauth / call_run: handles, names, parameters and HMAC or policy sessions with the
 *     client side computed here from the spec with OpenSSL (tpm_session, tpm_policy tests), on a
 *     volatile instance with the global fake_clock.
 * Expected values stay in the tests; these helpers only build, send and parse. */
#ifndef COFFER_TEST_TPM_HARNESS_H
#define COFFER_TEST_TPM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tpm/internal.h"

/* ---- instances ------------------------------------------------------------------------------- */
/* Where an instance's state blob lands (save_blob) and the fake clock it reads (now, ms). */
typedef struct {
    uint8_t blob[1 << 17];
    size_t len;
    int calls;
    uint64_t now;
} env;

/* tpm_persist_fn: copies the blob into the env (ctx) and counts the calls. */
cf_err save_blob(void *ctx, const uint8_t *blob, size_t len);

/* A powered-on instance named "test" from a blob (NULL, 0: fresh), saving into e, on e->now. */
tpm_instance *new_tpm(env *e, const uint8_t *blob, size_t len);

/* The clock of instances made by new_volatile_tpm (ms). */
extern uint64_t fake_clock;

/* A powered-on fresh instance with no persistence, on fake_clock. */
tpm_instance *new_volatile_tpm(const char *name);

/* tpm_state_serialize into out (*len: its size in, the length out). */
void serialize(tpm_instance *t, uint8_t *out, size_t *len);

/* ---- responses -------------------------------------------------------------------------------- */
typedef struct {
    uint8_t b[TPM_MAX_RESPONSE_SIZE];
    size_t len;
} resp;

/* Big-endian reads. */
uint32_t rd32(const uint8_t *p);
uint16_t rd16(const uint8_t *p);

/* Runs a command at a locality: checks the response header's size, returns its code; an error
 * response must be the 10-byte header alone. */
uint32_t exec_loc(tpm_instance *t, uint8_t loc, const uint8_t *buf, size_t len, resp *r);

/* exec_loc at locality 0. */
uint32_t exec(tpm_instance *t, const uint8_t *buf, size_t len, resp *r);

/* ---- raw commands (cmd) ----------------------------------------------------------------------- */
typedef struct {
    uint8_t b[TPM_MAX_COMMAND_SIZE];
    cf_writer w;
} cmd;

/* Starts a command: tag, size (patched by end), command code. */
void begin(cmd *c, TPM2_ST tag, TPM2_CC cc);

/* Checks the writer, patches the header's size; returns the command's length. */
size_t end(cmd *c);

/* One password authorization (TPM_RS_PW, continueSession), without the area's size. */
void put_pw(cmd *c, const char *pw);

/* An authorization area of one password session. */
void pw_session(cmd *c, const char *pw);

/* An authorization area of two password sessions. */
void pw_sessions2(cmd *c, const char *a, const char *b);

/* end() and exec at locality 0. */
uint32_t run(tpm_instance *t, cmd *c, resp *r);

/* TPM2_Startup(su); the response code. */
uint32_t startup(tpm_instance *t, TPM2_SU su);

/* TPM2_FlushContext(h); the response code. */
uint32_t flush(tpm_instance *t, TPM2_HANDLE h);

/* One TPM property's value through GetCapability(TPM_PROPERTIES) (asserts it is the one asked). */
uint32_t property(tpm_instance *t, TPM2_PT pt);

/* A PCR_Read command of one PCR of one bank; returns its length. */
size_t pcr_read_cmd(cmd *c, TPM2_ALG_ID alg, unsigned pcr);

/* The value of one PCR (len bytes), through PCR_Read. */
void pcr_value(tpm_instance *t, TPM2_ALG_ID alg, unsigned pcr, uint8_t *out, size_t len);

/* Sign-only key attributes (with userWithAuth). */
#define ATTR_SIGN (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN \
                   | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT)

/* A CreatePrimary command: hierarchy password hpw, the object's userAuth and sensitive data (may be
 * empty), template tpl, no outsideInfo or creationPCR; returns its length. */
size_t create_primary_cmd(cmd *c, TPM2_HANDLE hier, const char *hpw, const char *userauth, const uint8_t *data,
                          size_t dlen, const TPMT_PUBLIC *tpl);

/* Runs that CreatePrimary; on success, the handle and the public area from the response. */
uint32_t primary(tpm_instance *t, TPM2_HANDLE hier, const char *hpw, const char *userauth, const uint8_t *data,
                 size_t dlen, const TPMT_PUBLIC *tpl, TPM2_HANDLE *h, TPM2B_PUBLIC *out);

/* primary() with an empty hierarchy password and no sensitive data. */
uint32_t create_primary_pw(tpm_instance *t, TPM2_HANDLE hier, const char *userauth, const TPMT_PUBLIC *tpl,
                           TPM2_HANDLE *h, TPM2B_PUBLIC *out);

/* ---- the client side of sessions, from the spec (call) -------------------------------------------- */
/* KDFa with SHA-256 (Part 1 section 11.4.10.2); u, v may be empty. */
void kdfa(const uint8_t *key, size_t klen, const char *label, const uint8_t *u, size_t ul, const uint8_t *v,
          size_t vl, uint32_t bits, uint8_t *out);

/* A session as the caller keeps it. */
typedef struct {
    TPM2_HANDLE h;
    TPM2_SE type;
    uint8_t nonce_tpm[32];
    uint8_t key[32];      /* sessionKey */
    size_t klen;
    TPM2_ALG_ID sym;      /* AES (128-bit CFB), XOR or NULL */
} csess;

/* One authorization: a session (or a password when s is NULL). */
typedef struct {
    csess *s;
    TPMA_SESSION attrs;
    const char *auth;     /* the entity's authValue (password, or folded into the HMAC key) */
    bool include_auth;    /* HMAC key = sessionKey || authValue */
    bool corrupt;         /* flip a bit of the HMAC */
    uint8_t nonce[32];
} cauth;

/* The session's HMAC key: sessionKey, then authValue when include_auth; returns its length. */
size_t session_value(const cauth *a, uint8_t *out);

/* Part 1 section 21: AES-128-CFB or XOR with keys from the session value and the two nonces. */
void crypt_param(const cauth *a, bool enc, const uint8_t *newer, const uint8_t *older, uint8_t *p, size_t n);

/* The session HMAC over pHash || newer || older || attrs (Part 1 section 19.6.5). */
void sess_hmac(const cauth *a, const uint8_t *phash, const uint8_t *newer, const uint8_t *older,
               TPMA_SESSION attrs, uint8_t *mac);

/* A command with its handles (and their names), its parameters, and what came back. */
typedef struct {
    TPM2_CC cc;
    TPM2_HANDLE handles[3];
    TPM2B_NAME names[3];
    size_t nh;
    uint8_t params[2048];
    size_t plen;
    bool r_handle;
    /* out */
    TPM2_HANDLE out_handle;
    uint8_t rparams[TPM_MAX_RESPONSE_SIZE];
    size_t rplen;
} call;

/* The name of a handle that is its own name (the handle, big-endian). */
void handle_name(TPM2_HANDLE h, TPM2B_NAME *n);

/* Object name = nameAlg || SHA-256(TPMT_PUBLIC) (Part 1 section 16). */
void object_name(const TPMT_PUBLIC *p, TPM2B_NAME *n);

/* Sends the command with these authorizations; checks the response HMACs and decrypts. */
uint32_t call_run(tpm_instance *t, call *c, cauth *auths, size_t na);

/* An empty call of command code cc. */
void call_init(call *c, TPM2_CC cc);

/* Adds a handle with its name (NULL: the handle's own). */
void add_handle(call *c, TPM2_HANDLE h, const TPM2B_NAME *name);

/* Appends parameters: bytes, big-endian u16 and u32, a TPM2B. */
void p_bytes(call *c, const void *p, size_t n);
void p_u16(call *c, uint16_t v);
void p_u32(call *c, uint32_t v);
void p_2b(call *c, const void *p, size_t n);

/* TPM2_Startup(CLEAR), asserted to succeed. */
void startup_clear(tpm_instance *t);

/* StartAuthSession; salt (already encrypted) may be empty; bind_auth is the bind entity's. */
uint32_t start_session(tpm_instance *t, TPM2_HANDLE tpmkey, TPM2_HANDLE bind, const uint8_t *esalt, size_t eslen,
                       const uint8_t *salt, size_t saltlen, const char *bind_auth, TPM2_SE type, TPM2_ALG_ID sym,
                       csess *s);

/* An ECDSA P-256 signing template with extra attributes and an authPolicy (may be empty). */
TPMT_PUBLIC ecc_sign_template(TPMA_OBJECT extra, const uint8_t *policy, size_t plen);

/* CreatePrimary in the owner hierarchy with auth (password, or an HMAC session when a). */
uint32_t create_primary(tpm_instance *t, const char *userauth, const TPMT_PUBLIC *tpl, cauth *a, TPM2_HANDLE *h,
                        TPMT_PUBLIC *pub);

/* PolicyGetDigest of session s, asserted to succeed. */
void policy_get_digest(tpm_instance *t, const csess *s, uint8_t out[32]);

#endif
