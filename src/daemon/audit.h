/* audit.h: cofferd's side of the audit log (issue 4 item 5). When cofferd serves the HSM it
 * installs the engine's audit hook (hsm_set_audit) and appends every event to the store's chained
 * log under the audit key, derived from the master key (<store dir>/master.key). */
#pragma once
#include "base/config.h"
#include "base/error.h"
#include "store/store.h"

/* Loads (or, for a store without TPM state, creates) the master key, derives the audit key and
 * installs the hook. The master key itself is wiped at once. err gets one sentence. */
cf_err cofferd_audit_start(const cf_config *cfg, cf_store *store, char *err, size_t errlen);
/* Removes the hook and wipes the key (after the HSM service stopped). */
void cofferd_audit_stop(void);
