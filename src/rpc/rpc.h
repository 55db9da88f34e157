/* rpc.h: the remote-HSM wire protocol codec (docs/protocol.md): frames, the version handshake,
 * and the request and response of every engine call a remote PKCS#11 module makes. Pure
 * functions, bytes in and C values out: no sockets, no threads, no engine calls.
 *
 * One table drives everything: RPC_FUNCTIONS below names each function's code, its argument types
 * and its output types, in order. A request is an rpc_call (function code + rpc_value args[i] in
 * table order); a response is an rpc_reply (function code, status, outputs out[i] in table order).
 * The encoders walk the table's types; the decoders walk the same types, so the two cannot drift.
 *
 * Decoding contract (every rpc_decode_* and rpc_frame_parse):
 * - input only through the bounded reader; every length is checked against the frame and the
 *   limits below; the payload must be consumed exactly (one encoding per value);
 * - decoded byte strings point into the frame (the caller keeps the frame alive and wipes it when
 *   it held PINs); arrays and rebuilt mechanism parameters are allocated in an rpc_arena, which
 *   the caller frees after use (rpc_arena_free wipes);
 * - on failure: nothing allocated (the arena is back where it was), the outputs are unspecified,
 *   and the status says why: CF_E_FORMAT (malformed: close the connection), CF_E_SHORT
 *   (rpc_frame_parse only: read more), CF_E_NOT_SUPPORTED (a well-framed request with an unknown
 *   function code: answer ERROR and carry on), CF_E_NOMEM.
 *
 * Encoding contract: every rpc_encode_* appends one complete frame to a cf_writer. On a bad value
 * (CF_E_ARGS, CF_E_MECHANISM_INVALID, CF_E_MECHANISM_PARAM_INVALID, CF_E_OVERFLOW for a frame
 * over RPC_MAX_FRAME) the writer is put back where it was (bytes written wiped). A fixed writer
 * that runs out gives CF_E_BUFFER_TOO_SMALL with w->len the size needed, as cf_writer does. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/bytes.h"
#include "base/error.h"
#include "hsm/pkcs11.h"

/* ---- protocol constants ----------------------------------------------------------------------- */
#define RPC_MAGIC "CFR1"
#define RPC_VERSION_MAJOR 1
#define RPC_VERSION_MINOR 4   /* 1: the application token in HELLO / HELLO_OK; 2: signing leases (40-42);
                                 3: verifying leases (43-44); 4: FIND_OBJECTS_FETCH (45) */
#define RPC_MAX_DATA (1024u * 1024)                    /* the largest byte string a call carries */
#define RPC_MAX_FRAME (RPC_MAX_DATA + 64u * 1024)      /* largest value of a frame's length field */
#define RPC_HEADER_LEN 9u                              /* u32 length, u8 type, u32 id */
#define RPC_MAX_TEMPLATE 1024u                         /* attributes in a template or query */
#define RPC_MAX_ATTR (16u * 1024 * 1024)               /* one attribute value (and within the frame) */
#define RPC_MAX_MESSAGE 1024u                          /* ERROR frame message */

/* HELLO flags: the sender's ABI (attribute values travel in native form in version 1). */
#define RPC_HELLO_LITTLE_ENDIAN 0x1u
#define RPC_HELLO_ULONG64 0x2u
#define RPC_HELLO_ABI_MASK (RPC_HELLO_LITTLE_ENDIAN | RPC_HELLO_ULONG64)

typedef enum {
    RPC_HELLO = 1,
    RPC_HELLO_OK = 2,
    RPC_REQUEST = 3,
    RPC_RESPONSE = 4,
    RPC_ERROR = 5,
} rpc_frame_type;

/* ---- value types and the function table --------------------------------------------------- */
/* Wire encodings: docs/protocol.md, "Value encodings". */
typedef enum {
    RPC_T_END = 0,       /* terminates a type list */
    RPC_T_ULONG,         /* .ul */
    RPC_T_BOOL,          /* .ul (0 or 1) */
    RPC_T_KIND,          /* .ul (an hsm_op_kind, 0..4) */
    RPC_T_BYTES,         /* .bytes (p never NULL once decoded) */
    RPC_T_LABEL,         /* .bytes (len 32) */
    RPC_T_OUTBUF,        /* .outbuf: an application output buffer (request side) */
    RPC_T_TEMPLATE,      /* .tmpl: input attributes */
    RPC_T_QUERY,         /* .query: C_GetAttributeValue's template (request side) */
    RPC_T_MECH,          /* .mech */
    RPC_T_DATA,          /* .data: an output buffer's answer (response side) */
    RPC_T_LIST,          /* .list: a CK_ULONG array's answer (response side) */
    RPC_T_ATTRS,         /* .tmpl: C_GetAttributeValue's answer (response side) */
    RPC_T_SLOT_INFO,     /* .slot_info */
    RPC_T_TOKEN_INFO,    /* .token_info */
    RPC_T_SESSION_INFO,  /* .session_info */
    RPC_T_MECH_INFO,     /* .mech_info */
} rpc_type;

#define RPC_MAX_ARGS 6
#define RPC_MAX_OUTS 2

/* X(name, code, (argument types), (output types)). Codes are the protocol's: never renumber,
 * append. Names and argument meaning: docs/protocol.md, "Functions"; each is one hsm.h call. */
#define RPC_FUNCTIONS(X) \
    X(GET_SLOT_LIST, 1, (RPC_T_BOOL, RPC_T_OUTBUF), (RPC_T_LIST)) \
    X(GET_SLOT_INFO, 2, (RPC_T_ULONG), (RPC_T_SLOT_INFO)) \
    X(GET_TOKEN_INFO, 3, (RPC_T_ULONG), (RPC_T_TOKEN_INFO)) \
    X(GET_MECHANISM_LIST, 4, (RPC_T_ULONG, RPC_T_OUTBUF), (RPC_T_LIST)) \
    X(GET_MECHANISM_INFO, 5, (RPC_T_ULONG, RPC_T_ULONG), (RPC_T_MECH_INFO)) \
    X(INIT_TOKEN, 6, (RPC_T_ULONG, RPC_T_BYTES, RPC_T_LABEL), ()) \
    X(INIT_PIN, 7, (RPC_T_ULONG, RPC_T_BYTES), ()) \
    X(SET_PIN, 8, (RPC_T_ULONG, RPC_T_BYTES, RPC_T_BYTES), ()) \
    X(DELETE_TOKEN, 9, (RPC_T_ULONG, RPC_T_BYTES), ()) \
    X(PIN_TRIES_LEFT, 10, (RPC_T_ULONG, RPC_T_ULONG), (RPC_T_ULONG)) \
    X(OPEN_SESSION, 11, (RPC_T_ULONG, RPC_T_ULONG), (RPC_T_ULONG)) \
    X(CLOSE_SESSION, 12, (RPC_T_ULONG), ()) \
    X(CLOSE_ALL_SESSIONS, 13, (RPC_T_ULONG), ()) \
    X(GET_SESSION_INFO, 14, (RPC_T_ULONG), (RPC_T_SESSION_INFO)) \
    X(LOGIN, 15, (RPC_T_ULONG, RPC_T_ULONG, RPC_T_BYTES), ()) \
    X(LOGOUT, 16, (RPC_T_ULONG), ()) \
    X(CREATE_OBJECT, 17, (RPC_T_ULONG, RPC_T_TEMPLATE), (RPC_T_ULONG)) \
    X(COPY_OBJECT, 18, (RPC_T_ULONG, RPC_T_ULONG, RPC_T_TEMPLATE), (RPC_T_ULONG)) \
    X(DESTROY_OBJECT, 19, (RPC_T_ULONG, RPC_T_ULONG), ()) \
    X(GET_OBJECT_SIZE, 20, (RPC_T_ULONG, RPC_T_ULONG), (RPC_T_ULONG)) \
    X(GET_ATTRIBUTE_VALUE, 21, (RPC_T_ULONG, RPC_T_ULONG, RPC_T_QUERY), (RPC_T_ATTRS)) \
    X(SET_ATTRIBUTE_VALUE, 22, (RPC_T_ULONG, RPC_T_ULONG, RPC_T_TEMPLATE), ()) \
    X(FIND_OBJECTS_INIT, 23, (RPC_T_ULONG, RPC_T_TEMPLATE), ()) \
    X(FIND_OBJECTS, 24, (RPC_T_ULONG, RPC_T_ULONG), (RPC_T_LIST)) \
    X(FIND_OBJECTS_FINAL, 25, (RPC_T_ULONG), ()) \
    X(OP_INIT, 26, (RPC_T_ULONG, RPC_T_KIND, RPC_T_MECH, RPC_T_ULONG), ()) \
    X(OP_ONESHOT, 27, (RPC_T_ULONG, RPC_T_KIND, RPC_T_BYTES, RPC_T_OUTBUF), (RPC_T_DATA)) \
    X(OP_UPDATE, 28, (RPC_T_ULONG, RPC_T_KIND, RPC_T_BYTES, RPC_T_OUTBUF), (RPC_T_DATA)) \
    X(OP_FINAL, 29, (RPC_T_ULONG, RPC_T_KIND, RPC_T_OUTBUF), (RPC_T_DATA)) \
    X(VERIFY, 30, (RPC_T_ULONG, RPC_T_BYTES, RPC_T_BYTES), ()) \
    X(VERIFY_FINAL, 31, (RPC_T_ULONG, RPC_T_BYTES), ()) \
    X(OP_ABORT, 32, (RPC_T_ULONG, RPC_T_KIND), ()) \
    X(DIGEST_KEY, 33, (RPC_T_ULONG, RPC_T_ULONG), ()) \
    X(GENERATE_KEY, 34, (RPC_T_ULONG, RPC_T_MECH, RPC_T_TEMPLATE), (RPC_T_ULONG)) \
    X(GENERATE_KEY_PAIR, 35, (RPC_T_ULONG, RPC_T_MECH, RPC_T_TEMPLATE, RPC_T_TEMPLATE), \
      (RPC_T_ULONG, RPC_T_ULONG)) \
    X(WRAP_KEY, 36, (RPC_T_ULONG, RPC_T_MECH, RPC_T_ULONG, RPC_T_ULONG, RPC_T_OUTBUF), (RPC_T_DATA)) \
    X(UNWRAP_KEY, 37, (RPC_T_ULONG, RPC_T_MECH, RPC_T_ULONG, RPC_T_BYTES, RPC_T_TEMPLATE), (RPC_T_ULONG)) \
    X(DERIVE_KEY, 38, (RPC_T_ULONG, RPC_T_MECH, RPC_T_ULONG, RPC_T_TEMPLATE), (RPC_T_ULONG)) \
    X(GENERATE_RANDOM, 39, (RPC_T_ULONG, RPC_T_ULONG), (RPC_T_DATA)) \
    X(OP_ONESHOT_LEASE, 40, (RPC_T_ULONG, RPC_T_KIND, RPC_T_BYTES, RPC_T_OUTBUF), (RPC_T_DATA, RPC_T_ULONG)) \
    X(OP_REARM_ONESHOT, 41, (RPC_T_ULONG, RPC_T_KIND, RPC_T_MECH, RPC_T_ULONG, RPC_T_BYTES, RPC_T_OUTBUF), \
      (RPC_T_DATA, RPC_T_ULONG)) \
    X(OP_REARM, 42, (RPC_T_ULONG, RPC_T_KIND, RPC_T_MECH, RPC_T_ULONG), ()) \
    X(VERIFY_LEASE, 43, (RPC_T_ULONG, RPC_T_BYTES, RPC_T_BYTES), (RPC_T_ULONG)) \
    X(REARM_VERIFY, 44, (RPC_T_ULONG, RPC_T_MECH, RPC_T_ULONG, RPC_T_BYTES, RPC_T_BYTES), (RPC_T_ULONG)) \
    X(FIND_OBJECTS_FETCH, 45, (RPC_T_ULONG, RPC_T_TEMPLATE, RPC_T_ULONG), (RPC_T_LIST, RPC_T_ULONG))

typedef enum {
#define RPC_FN_ENUM(name, code, args, outs) RPC_FN_##name = code,
    RPC_FUNCTIONS(RPC_FN_ENUM)
#undef RPC_FN_ENUM
} rpc_fn_code;

typedef struct {
    uint32_t code;
    const char *name;                 /* "OP_ONESHOT" */
    rpc_type args[RPC_MAX_ARGS + 1];  /* RPC_T_END terminated */
    rpc_type outs[RPC_MAX_OUTS + 1];
} rpc_fn;

extern const rpc_fn rpc_fns[];
extern const size_t rpc_fn_count;
/* The table row of a code, or NULL. */
const rpc_fn *rpc_fn_find(uint32_t code);

/* ---- values ------------------------------------------------------------------------------------ */
typedef struct {
    CK_ATTRIBUTE_TYPE type;
    bool has_buf;       /* the application gave a buffer (pValue non-NULL) */
    CK_ULONG cap;       /* its ulValueLen */
} rpc_query_item;

/* One argument or output; which member is live is the table's type for that position. */
typedef union {
    CK_ULONG ul;
    struct { const uint8_t *p; size_t len; } bytes;
    struct { bool present; CK_ULONG cap; } outbuf;
    /* len: produced, or needed (length query, BUFFER_TOO_SMALL); p: the bytes, NULL when none. */
    struct { const uint8_t *p; CK_ULONG len; } data;
    /* v: the items, NULL when only the count travels. */
    struct { CK_ULONG *v; CK_ULONG count; } list;
    /* TEMPLATE: pValue NULL only with ulValueLen 0. ATTRS: pValue NULL when no bytes travel
     * (length query, sensitive, too small: ulValueLen says which). */
    struct { CK_ATTRIBUTE *attrs; CK_ULONG count; } tmpl;
    struct { rpc_query_item *items; CK_ULONG count; } query;
    CK_MECHANISM mech;
    CK_SLOT_INFO slot_info;
    CK_TOKEN_INFO token_info;
    CK_SESSION_INFO session_info;
    CK_MECHANISM_INFO mech_info;
} rpc_value;

typedef struct {
    uint32_t fn;                      /* an rpc_fn_code */
    rpc_value arg[RPC_MAX_ARGS];
} rpc_call;

typedef struct {
    uint32_t fn;
    cf_err status;
    bool has_outputs;                 /* see rpc_status_has_outputs */
    rpc_value out[RPC_MAX_OUTS];
} rpc_reply;

/* The status values for which a server sends outputs: OK and BUFFER_TOO_SMALL, and for
 * GET_ATTRIBUTE_VALUE also ATTRIBUTE_SENSITIVE and ATTRIBUTE_TYPE_INVALID. */
bool rpc_status_has_outputs(uint32_t fn, cf_err status);

/* CK_EDDSA_PARAMS: one definition, in src/hsm/pkcs11.h. */
typedef CF_EDDSA_PARAMS rpc_eddsa_params;

/* ---- arena ------------------------------------------------------------------------------------- */
/* Allocations of one decoded call (attribute arrays, rebuilt mechanism parameters). */
typedef struct rpc_chunk rpc_chunk;
typedef struct {
    rpc_chunk *head;
} rpc_arena;
#define RPC_ARENA_INIT { NULL }
/* Zeroed memory owned by the arena, or NULL. */
void *rpc_arena_alloc(rpc_arena *a, size_t n);
/* Wipes and frees everything; the arena is empty and reusable. */
void rpc_arena_free(rpc_arena *a);

/* ---- frames ------------------------------------------------------------------------------------ */
typedef struct {
    uint8_t type;          /* an rpc_frame_type */
    uint32_t id;
    cf_reader payload;     /* view into the parsed bytes */
} rpc_frame;

/* With at least 4 bytes of a frame at p: the frame's total size (header included) in *total.
 * CF_E_SHORT when n < 4; CF_E_FORMAT when the length field is out of bounds (close the
 * connection). For stream readers: read 4 bytes, then *total - 4 more. */
cf_err rpc_frame_size(const uint8_t *p, size_t n, size_t *total) CF_WARN_UNUSED;
/* Parses one whole frame at r's offset and advances past it. CF_E_SHORT: incomplete (read more);
 * CF_E_FORMAT: bad length or type. On failure r does not move. */
cf_err rpc_frame_parse(cf_reader *r, rpc_frame *out) CF_WARN_UNUSED;

/* ---- handshake --------------------------------------------------------------------------------- */
/* The application token (docs/protocol.md, "Handshake"): HELLO_OK carries the token of the
 * application the connection belongs to; a client opening a further connection (its pool) names
 * that token in HELLO to join the same application (login state, sessions). A token the server no
 * longer knows gets a new application and a new token: the client then knows its sessions are
 * gone. A bearer secret: random, compared in constant time, never logged. */
#define RPC_APP_TOKEN_LEN 16

typedef struct {
    uint16_t major, minor;
    uint32_t flags;
    bool has_token;                   /* HELLO: join; HELLO_OK: always (from minor 1) */
    uint8_t token[RPC_APP_TOKEN_LEN];
} rpc_hello;

/* This build's HELLO: RPC_VERSION_* and its ABI flags, no token. */
rpc_hello rpc_hello_self(void);
/* type is RPC_HELLO or RPC_HELLO_OK; id 0. */
cf_err rpc_encode_hello(cf_writer *w, rpc_frame_type type, const rpc_hello *h) CF_WARN_UNUSED;
/* f->type must be RPC_HELLO or RPC_HELLO_OK with id 0 (FORMAT otherwise, or on a wrong magic).
 * The token field is optional on the wire (a minor-0 peer sends none): has_token says. */
cf_err rpc_decode_hello(const rpc_frame *f, rpc_hello *out) CF_WARN_UNUSED;
/* Server side: whether to accept a client's HELLO. OK, or CF_E_NOT_SUPPORTED with a sentence for
 * the ERROR frame in msg ("protocol major version 2 not supported by this server (speaks 1)", or
 * an ABI mismatch). The reply to send on OK is rpc_hello_self(). */
cf_err rpc_hello_accept(const rpc_hello *client, char *msg, size_t msglen) CF_WARN_UNUSED;
/* Client side: whether the server's HELLO_OK is usable (same major, same ABI); msg as above. */
cf_err rpc_hello_ok_accept(const rpc_hello *server, char *msg, size_t msglen) CF_WARN_UNUSED;

/* ---- errors and status --------------------------------------------------------------------------- */
/* msg may be NULL; longer than RPC_MAX_MESSAGE is cut there. */
cf_err rpc_encode_error(cf_writer *w, uint32_t id, cf_err status, const char *msg) CF_WARN_UNUSED;
/* *msg points into the frame (not NUL terminated), *msglen bytes. */
cf_err rpc_decode_error(const rpc_frame *f, cf_err *status, const char **msg, size_t *msglen) CF_WARN_UNUSED;
/* The stable wire number of a status (docs/protocol.md, "Status codes"), and back: FORMAT for a
 * number this build does not know. */
uint32_t rpc_status_to_wire(cf_err e);
cf_err rpc_status_from_wire(uint32_t wire, cf_err *out) CF_WARN_UNUSED;

/* ---- calls ------------------------------------------------------------------------------------- */
/* The request of call->fn with the arguments in call->arg (table order). Client-side checks the
 * engine would also make fail early: a template attribute with NULL pValue and a length (ARGS),
 * a mechanism parameter the table has no layout for (MECHANISM_INVALID) or of the wrong size
 * (MECHANISM_PARAM_INVALID). */
cf_err rpc_encode_request(cf_writer *w, uint32_t id, const rpc_call *call) CF_WARN_UNUSED;
/* f->type must be RPC_REQUEST. */
cf_err rpc_decode_request(const rpc_frame *f, rpc_call *call, rpc_arena *a) CF_WARN_UNUSED;
/* The response; outputs are encoded only when reply->has_outputs. */
cf_err rpc_encode_response(cf_writer *w, uint32_t id, const rpc_reply *reply) CF_WARN_UNUSED;
/* f->type must be RPC_RESPONSE. */
cf_err rpc_decode_response(const rpc_frame *f, rpc_reply *reply, rpc_arena *a) CF_WARN_UNUSED;

/* ---- mechanism parameters ---------------------------------------------------------------------- */
typedef enum {
    RPC_PARAM_NONE = 0,
    RPC_PARAM_BYTES = 1,
    RPC_PARAM_RSA_PSS = 2,
    RPC_PARAM_RSA_OAEP = 3,
    RPC_PARAM_AES_CTR = 4,
    RPC_PARAM_GCM = 5,
    RPC_PARAM_ECDH1 = 6,
    RPC_PARAM_EDDSA = 7,
} rpc_param_layout;

/* Whether the codec knows a mechanism, and the layout of its parameter (RPC_PARAM_NONE for one
 * that takes none). The table (mech.c) lists every mechanism of the engine's table. */
bool rpc_mech_layout(CK_MECHANISM_TYPE type, rpc_param_layout *layout);
