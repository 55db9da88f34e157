/* instance.c: one TPM instance of the daemon: its engine, the mutex that serializes it, and its
 * sealed state in the store (see daemon.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/secmem.h"
#include "daemon/daemon.h"

cf_err cofferd_persist(void *ctx, const uint8_t *blob, size_t len)
{
    cofferd_instance *in = ctx;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cf_err rv = cf_state_seal(in->master_key, in->name, blob, len, &sealed, &sealed_len);
    if (rv == CF_OK)
        rv = cf_store_tpm_put(in->store, in->name, sealed, sealed_len);
    free(sealed);
    if (rv != CF_OK)
        cf_error("tpm %s: cannot store the TPM state: %s", in->name, cf_err_message(rv));
    else
        cf_debug("tpm %s: state stored (%zu bytes)", in->name, len);
    return rv;
}

cf_err cofferd_instance_open(cofferd_instance *in, const char *name, cf_store *store,
                             const uint8_t *master_key, char *err, size_t errlen)
{
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", name);
    in->store = store;
    in->master_key = master_key;
    if (pthread_mutex_init(&in->mu, NULL) != 0) {
        snprintf(err, errlen, "tpm %s: cannot create a mutex", name);
        return CF_E_INTERNAL;
    }
    uint8_t *sealed = NULL, *state = NULL;
    size_t sealed_len = 0, state_len = 0;
    cf_err rv = cf_store_tpm_get(store, name, &sealed, &sealed_len);
    if (rv == CF_E_NOT_FOUND) {
        cf_info("tpm %s: no stored state: a new TPM (fresh hierarchy seeds)", name);
    } else if (rv != CF_OK) {
        snprintf(err, errlen, "tpm %s: cannot read its state from the store: %s", name, cf_err_message(rv));
        goto out;
    } else {
        rv = cf_state_open(master_key, name, sealed, sealed_len, &state, &state_len);
        if (rv != CF_OK) {
            snprintf(err, errlen, "tpm %s: its stored state does not open under this master key "
                     "(master.key replaced, or the state tampered with): %s; not starting this "
                     "instance (its state is left as it is)", name, cf_err_message(rv));
            goto out;
        }
    }
    rv = tpm_instance_new(name, state, state_len, cofferd_persist, in, &in->tpm);
    if (rv != CF_OK) {
        snprintf(err, errlen, "tpm %s: the engine refused its state: %s; not starting this instance",
                 name, cf_err_message(rv));
        goto out;
    }
    /* swtpm starts with the TPM running (its clients send no INIT); mssim clients send POWER_ON,
     * which is then a no-op. */
    tpm_power_on(in->tpm);
    tpm_nv_on(in->tpm);
out:
    free(sealed);
    if (state)
        cf_free_wiped(state, state_len);
    if (rv != CF_OK)
        pthread_mutex_destroy(&in->mu);
    return rv;
}

void cofferd_instance_close(cofferd_instance *in)
{
    if (!in->tpm)
        return;
    pthread_mutex_lock(&in->mu);
    tpm_power_off(in->tpm);
    tpm_instance_free(in->tpm);
    in->tpm = NULL;
    pthread_mutex_unlock(&in->mu);
    pthread_mutex_destroy(&in->mu);
    cf_info("tpm %s: closed after %lu commands", in->name, in->commands);
}
