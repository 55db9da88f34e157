/* audit.h: cofferd's side of the audit log (issue 4 item 5). When cofferd serves the HSM it
 * installs the engine's audit hook (hsm_set_audit) and appends every event to the store's chained
 * log under the audit key, derived from the master key (<store dir>/master.key). */
#pragma once
#include <stdint.h>
#include "base/config.h"
#include "base/error.h"
#include "store/store.h"

/* Loads (or, for a store without TPM state, creates) the master key, derives the audit key and
 * installs the hook. The master key itself is wiped at once. err gets one sentence. */
cf_err cofferd_audit_start(const cf_config *cfg, cf_store *store, char *err, size_t errlen);
/* Writes the key-use counts held in memory if FLUSH_SECONDS have passed since the last write
 * (now: seconds since the epoch). cofferd's main thread calls it every second, so that a key used
 * once and then left alone is in the log within seconds, not only at shutdown. */
void cofferd_audit_tick(int64_t now);
/* Removes the hook and wipes the key (after the HSM service stopped). */
void cofferd_audit_stop(void);
