/* tpm.h: the TPM 2.0 engine of coffer, one instance per emulated TPM.
 *
 * The engine does no I/O: tpm_execute takes one command buffer (TPM 2.0 Part 1 section 18
 * framing) and writes one response buffer. The daemon (src/daemon) owns the sockets (mssim,
 * swtpm) and calls these functions; it serializes the calls of one instance (an instance is not
 * thread-safe), while separate instances run in parallel.
 *
 * Persistent state (hierarchy seeds and proofs, auth values and policies, persistent objects, NV,
 * clock, dictionary-attack counters, the state saved by Shutdown(STATE)) is handed to a
 * tpm_persist callback as one opaque blob whenever it changes; the daemon seals it under its
 * master key and stores it. tpm_instance_new takes that blob back at start. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef struct tpm_instance tpm_instance;

/* Called after a command that changed persistent state, with the new blob (plaintext: the
 * callee encrypts it). A failure makes the command fail with TPM_RC_NV_UNAVAILABLE... the blob
 * is the whole state, so a failed write loses nothing already stored. */
typedef cf_err (*tpm_persist_fn)(void *ctx, const uint8_t *blob, size_t len);

/* state/len: a blob from an earlier tpm_persist (NULL for a new TPM: fresh seeds are made). */
cf_err tpm_instance_new(const char *name, const uint8_t *state, size_t len, tpm_persist_fn persist,
                        void *persist_ctx, tpm_instance **out);
void tpm_instance_free(tpm_instance *t);
const char *tpm_instance_name(const tpm_instance *t);

/* Platform signals (the mssim platform port, swtpm's control channel). */
void tpm_power_on(tpm_instance *t);    /* a repeated power-on while powered is a no-op */
void tpm_power_off(tpm_instance *t);
bool tpm_is_powered(const tpm_instance *t);
void tpm_nv_on(tpm_instance *t);
void tpm_nv_off(tpm_instance *t);
void tpm_cancel(tpm_instance *t, bool on);
/* _TPM_Init: a platform reset (the TPM then expects TPM2_Startup). */
void tpm_reset(tpm_instance *t);
/* swtpm: DELETE_VOLATILE at INIT drops the saved Shutdown(STATE) state. */
void tpm_delete_volatile(tpm_instance *t);
bool tpm_established(const tpm_instance *t);
void tpm_reset_established(tpm_instance *t);

/* The clock source of TPMS_CLOCK_INFO and of dictionary-attack recovery: milliseconds from any
 * origin, never decreasing (CLOCK_MONOTONIC when not set, or when now_ms is NULL). Tests set a
 * fake one so that the engine is fully deterministic. */
void tpm_set_time_source(tpm_instance *t, uint64_t (*now_ms)(void *ctx), void *ctx);

/* Runs one command at a locality (0..4). Writes the response (at most cap bytes; 4096 is always
 * enough) and returns its length. Never fails: errors are TPM response codes. */
size_t tpm_execute(tpm_instance *t, uint8_t locality, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap);

#define TPM_MAX_COMMAND_SIZE 4096
#define TPM_MAX_RESPONSE_SIZE 4096
