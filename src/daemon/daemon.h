/* daemon.h: cofferd's parts, shared by its files and its tests (not an installed interface).
 *
 *   framing.c   the wire formats of the two simulator protocols as pure decoders: bytes in, a
 *               decision out (need more / one frame / close), no sockets, so they can be fuzzed
 *   statekey.c  the daemon master key (<store dir>/master.key) and the sealing of TPM state blobs
 *   instance.c  one TPM instance: the engine, its mutex, its state in the store
 *   conn.c      one connection: the mssim command and platform ports, swtpm data and control
 *   server.c    listeners, the accept loop, the worker threads, orderly shutdown
 *   main.c      command line, configuration, signals
 *
 * Threads: worker threads take turns polling every listener; the one that accepts a connection
 * hands the polling to another and serves the connection (server.c). A TPM command runs with its
 * instance's mutex held, so the commands of one instance are serialized and different instances
 * run in parallel. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/config.h"
#include "base/error.h"
#include "store/store.h"
#include "tpm/tpm.h"

/* ---- wire constants ---------------------------------------------------------------------- */
/* Microsoft/IBM simulator (ms-tpm-20-ref TpmTcpProtocol.h; tpm2-tss tcti-mssim). */
enum {
    MSSIM_POWER_ON = 1,
    MSSIM_POWER_OFF = 2,
    MSSIM_PHYS_PRES_ON = 3,
    MSSIM_PHYS_PRES_OFF = 4,
    MSSIM_HASH_START = 5,
    MSSIM_HASH_DATA = 6,
    MSSIM_HASH_END = 7,
    MSSIM_SEND_COMMAND = 8,
    MSSIM_CANCEL_ON = 9,
    MSSIM_CANCEL_OFF = 10,
    MSSIM_NV_ON = 11,
    MSSIM_NV_OFF = 12,
    MSSIM_KEY_CACHE_ON = 13,
    MSSIM_KEY_CACHE_OFF = 14,
    MSSIM_REMOTE_HANDSHAKE = 15,
    MSSIM_SET_ALTERNATIVE_RESULT = 16,
    MSSIM_RESET = 17,
    MSSIM_RESTART = 18,
    MSSIM_SESSION_END = 20,
    MSSIM_STOP = 21,
    MSSIM_GET_COMMAND_RESPONSE_SIZES = 25,
    MSSIM_ACT_GET_SIGNALED = 26,
    MSSIM_TEST_FAILURE_MODE = 30,
};
#define MSSIM_SERVER_VERSION 1u
/* TpmEndPointInfo: tpmPlatformAvailable | tpmInRawMode | tpmSupportsPP, as the reference sends. */
#define MSSIM_ENDPOINT_INFO (0x01u | 0x04u | 0x08u)

/* swtpm control channel (swtpm include/swtpm/tpm_ioctl.h: CMD_* and PTM_CAP_*). */
enum {
    SWTPM_GET_CAPABILITY = 1,
    SWTPM_INIT = 2,
    SWTPM_SHUTDOWN = 3,
    SWTPM_GET_TPMESTABLISHED = 4,
    SWTPM_SET_LOCALITY = 5,
    SWTPM_HASH_START = 6,
    SWTPM_HASH_DATA = 7,
    SWTPM_HASH_END = 8,
    SWTPM_CANCEL_TPM_CMD = 9,
    SWTPM_STORE_VOLATILE = 10,
    SWTPM_RESET_TPMESTABLISHED = 11,
    SWTPM_GET_STATEBLOB = 12,
    SWTPM_SET_STATEBLOB = 13,
    SWTPM_STOP = 14,
    SWTPM_GET_CONFIG = 15,
    SWTPM_SET_DATAFD = 16,
    SWTPM_SET_BUFFERSIZE = 17,
    SWTPM_GET_INFO = 18,
};
#define PTM_CAP_INIT (1u << 0)
#define PTM_CAP_SHUTDOWN (1u << 1)
#define PTM_CAP_GET_TPMESTABLISHED (1u << 2)
#define PTM_CAP_SET_LOCALITY (1u << 3)
#define PTM_CAP_HASHING (1u << 4)
#define PTM_CAP_CANCEL_TPM_CMD (1u << 5)
#define PTM_CAP_STORE_VOLATILE (1u << 6)
#define PTM_CAP_RESET_TPMESTABLISHED (1u << 7)
#define PTM_CAP_GET_STATEBLOB (1u << 8)
#define PTM_CAP_SET_STATEBLOB (1u << 9)
#define PTM_CAP_STOP (1u << 10)
#define PTM_CAP_GET_CONFIG (1u << 11)
#define PTM_CAP_SET_DATAFD (1u << 12)
#define PTM_CAP_SET_BUFFERSIZE (1u << 13)
#define PTM_CAP_GET_INFO (1u << 14)
/* Exactly what conn.c implements (GET_CAPABILITY must not claim more). */
#define COFFER_PTM_CAPS                                                                            \
    (PTM_CAP_INIT | PTM_CAP_SHUTDOWN | PTM_CAP_GET_TPMESTABLISHED | PTM_CAP_SET_LOCALITY |         \
     PTM_CAP_CANCEL_TPM_CMD | PTM_CAP_STORE_VOLATILE | PTM_CAP_RESET_TPMESTABLISHED | PTM_CAP_STOP | \
     PTM_CAP_GET_CONFIG | PTM_CAP_SET_BUFFERSIZE | PTM_CAP_GET_INFO)
#define PTM_INIT_FLAG_DELETE_VOLATILE 1u
#define PTM_CONFIG_FLAG_FILE_KEY 0x1u
#define PTM_GETINFO_SIZE 3072u
#define PTM_INFO_TPMSPECIFICATION 1u
#define PTM_INFO_TPMATTRIBUTES 2u
/* TPM 1.2-style result codes swtpm answers on its control channel (libtpms tpm_error.h). */
#define PTM_RES_SUCCESS 0u
#define PTM_RES_BAD_PARAMETER 0x03u
#define PTM_RES_FAIL 0x09u
#define PTM_RES_BAD_ORDINAL 0x0Au
#define PTM_RES_BAD_LOCALITY 0x3Du

/* ---- framing (framing.c): pure decoders ---------------------------------------------------- */
typedef enum {
    CFD_NEED,   /* incomplete: read more (at least f->need bytes in all) and call again */
    CFD_FRAME,  /* one frame in the first f->consumed bytes */
    CFD_CLOSE,  /* malformed or oversized: close the connection (f->why says why) */
} cfd_decision;

typedef enum { CFD_MSSIM_COMMAND, CFD_MSSIM_PLATFORM, CFD_SWTPM_DATA, CFD_SWTPM_CTRL } cfd_proto;

typedef struct {
    uint32_t cmd;            /* the protocol's command code (0 for swtpm data) */
    uint8_t locality;        /* mssim SEND_COMMAND; SET_LOCALITY / RESET_TPMESTABLISHED */
    uint32_t arg;            /* u32 argument: handshake version, INIT flags, buffer size, ACT handle */
    uint64_t arg64;          /* GET_INFO flags */
    uint32_t offset;         /* GET_INFO offset */
    const uint8_t *body;     /* the TPM command bytes (into the input) */
    size_t body_len;
    size_t consumed;         /* CFD_FRAME: bytes the frame takes */
    size_t need;             /* CFD_NEED: total bytes wanted (a lower bound) */
    const char *why;         /* CFD_CLOSE: for the log */
} cfd_frame;

/* The largest frame any decoder accepts (mssim: u32 cmd | u8 loc | u32 size | command). */
#define CFD_MAX_FRAME (4 + 1 + 4 + TPM_MAX_COMMAND_SIZE + 16)

/* Decodes the frame at the start of p[0..len) for one channel. Never reads past len; the frame
 * fields point into p. Commands a decoder does not know are returned as frames of their code alone
 * (the caller answers them as the reference does: usually by closing). */
cfd_decision cfd_decode(cfd_proto proto, const uint8_t *p, size_t len, cfd_frame *f);
const char *cfd_proto_name(cfd_proto proto);

/* ---- master key and sealed state (statekey.c) -------------------------------------------- */
#define CF_MASTER_KEY_LEN 32
#define CF_STATE_AAD "coffer tpm state v1"

/* Loads <dir>/master.key, creating it (32 random bytes, mode 0600, O_EXCL) when absent and
 * may_create (the caller says no when the store already holds sealed state). Refuses a
 * key file that is not a regular file, has group/other permissions, is owned by another user or
 * is not 32 bytes; err gets one sentence. key: CF_MASTER_KEY_LEN bytes (secret memory). */
cf_err cf_master_key_load(const char *dir, bool may_create, uint8_t *key, bool *created, char *err, size_t errlen);
/* sealed = iv(12) | AES-256-GCM ciphertext | tag(16), AAD = CF_STATE_AAD || name. Free with free(). */
cf_err cf_state_seal(const uint8_t *key, const char *name, const uint8_t *blob, size_t len,
                     uint8_t **sealed, size_t *sealed_len);
/* The reverse; CF_E_STORE_CORRUPT when the tag does not verify (wrong key, other instance's blob,
 * tampered). *blob is secret: free with cf_free_wiped(*blob, *len). */
cf_err cf_state_open(const uint8_t *key, const char *name, const uint8_t *sealed, size_t sealed_len,
                     uint8_t **blob, size_t *len);

/* ---- instances (instance.c) ----------------------------------------------------------------- */
typedef struct cofferd_instance {
    char name[CF_TPM_NAME_MAX];
    pthread_mutex_t mu;          /* held while the engine runs: one command at a time */
    tpm_instance *tpm;
    cf_store *store;             /* shared, thread-safe */
    const uint8_t *master_key;   /* owned by the daemon */
    uint8_t swtpm_locality;      /* set on swtpm's control channel, used on its data channel */
    unsigned long commands;      /* executed, for the log at exit */
} cofferd_instance;

/* Reads the instance's sealed state from the store (none: a new TPM), opens it and starts the
 * engine, powered on (as swtpm starts: its clients send no INIT). A state that cannot be opened
 * is an error, never a reset. */
cf_err cofferd_instance_open(cofferd_instance *in, const char *name, cf_store *store,
                             const uint8_t *master_key, char *err, size_t errlen);
/* Powers the TPM off (the engine persists what changed) and frees it. */
void cofferd_instance_close(cofferd_instance *in);
/* The engine's tpm_persist callback: seals and stores. */
cf_err cofferd_persist(void *ctx, const uint8_t *blob, size_t len);

/* ---- connections (conn.c) ------------------------------------------------------------------ */
/* Serves one connection until the peer closes, a protocol error, or shutdown (SHUT_RD on fd).
 * Does not close fd. */
void cofferd_serve(cofferd_instance *in, cfd_proto proto, int fd);

/* ---- server (server.c) --------------------------------------------------------------------- */
typedef struct cofferd_server cofferd_server;
/* Binds every listener of the configured instances; err names the instance and endpoint. */
cf_err cofferd_server_new(cofferd_instance *const *instances, const cf_tpm_config *const *cfgs, size_t n,
                          cofferd_server **out, char *err, size_t errlen);
/* Starts the first worker (which polls the listeners). */
cf_err cofferd_server_start(cofferd_server *s);
/* Closes the listeners, lets in-flight commands finish, ends every connection, joins all
 * threads, removes Unix socket files. */
void cofferd_server_stop(cofferd_server *s);
void cofferd_server_free(cofferd_server *s);
