/* state.c: the life of an instance: creation from a blob, platform signals, the clock, the
 * hierarchies, and the versioned blob that holds the persistent part (read through the bounded
 * reader: a blob that does not parse exactly is refused as CF_E_STORE_CORRUPT).
 *
 * Blob (big-endian): "CTPM" u16 version, then the fields in the order of tpm_state_serialize,
 * ending with the persistent objects of EvictControl (a count, then the objects: see
 * commands/persist.c; a blob from before EvictControl has a count of 0 and parses the same). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/secmem.h"
#include "tpm/internal.h"

static uint64_t monotonic_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tpm_now(tpm_instance *t) { return t->now(t->now_ctx); }

void tpm_clock_update(tpm_instance *t)
{
    uint64_t now = tpm_now(t);
    if (now > t->clock_base)
        t->nv.clock += now - t->clock_base;
    t->clock_base = now;
}

int tpm_hierarchy_index(TPM2_HANDLE h)
{
    switch (h) {
    case TPM2_RH_OWNER: return TPM_H_OWNER;
    case TPM2_RH_ENDORSEMENT: return TPM_H_ENDORSEMENT;
    case TPM2_RH_PLATFORM: return TPM_H_PLATFORM;
    case TPM2_RH_NULL: return TPM_H_NULL;
    default: return -1;
    }
}

const tpm_hierarchy *tpm_hierarchy_get(const tpm_instance *t, TPM2_HANDLE h)
{
    int i = tpm_hierarchy_index(h);
    return i < 0 ? NULL : &t->nv.h[i];
}

bool tpm_hierarchy_enabled(const tpm_instance *t, TPM2_HANDLE h)
{
    switch (h) {
    case TPM2_RH_OWNER: return t->nv.sh_enable;
    case TPM2_RH_ENDORSEMENT: return t->nv.eh_enable;
    case TPM2_RH_PLATFORM:
    case TPM2_RH_NULL: return true;
    default: return false;
    }
}

cf_err tpm_hierarchy_new_seed(tpm_hierarchy *h)
{
    CF_TRY(cf_random(h->seed, sizeof h->seed));
    return cf_random(h->proof, sizeof h->proof);
}

static cf_err fresh_state(tpm_persistent *nv)
{
    memset(nv, 0, sizeof *nv);
    for (int i = 0; i < TPM_H_COUNT; i++) {
        CF_TRY(tpm_hierarchy_new_seed(&nv->h[i]));
        nv->h[i].policy_alg = TPM2_ALG_NULL;
    }
    nv->lockout_policy_alg = TPM2_ALG_NULL;
    nv->sh_enable = nv->eh_enable = true;
    /* the reference simulator's defaults (Part 1 section 19.8.3 leaves them to the platform) */
    nv->max_tries = 3;
    nv->recovery_time = 1000;
    nv->lockout_recovery = 1000;
    return CF_OK;
}

/* ---- blob -------------------------------------------------------------------------------- */
static void put_2b(cf_writer *w, const uint8_t *p, uint16_t n)
{
    cf_put_u16(w, n);
    cf_put_bytes(w, p, n);
}

static cf_err get_2b(cf_reader *r, uint8_t *p, uint16_t *n, size_t cap)
{
    cf_reader c;
    CF_TRY(cf_get_sized16(r, &c));
    CF_ENSURE(c.len <= cap, CF_E_FORMAT);
    CF_TRY(cf_get_bytes(&c, p, c.len));
    *n = (uint16_t)c.len;
    return CF_OK;
}

static void put_pcrs(cf_writer *w, const tpm_pcrs *p)
{
    for (int b = 0; b < TPM_PCR_BANKS; b++)
        for (int i = 0; i < TPM_PCR_COUNT; i++)
            cf_put_bytes(w, p->value[b][i], tpm_hash_size(tpm_pcr_banks[b]));
    cf_put_u32(w, p->update_counter);
}

static cf_err get_pcrs(cf_reader *r, tpm_pcrs *p)
{
    for (int b = 0; b < TPM_PCR_BANKS; b++)
        for (int i = 0; i < TPM_PCR_COUNT; i++)
            CF_TRY(cf_get_bytes(r, p->value[b][i], tpm_hash_size(tpm_pcr_banks[b])));
    return cf_get_u32(r, &p->update_counter);
}

static cf_err get_bool(cf_reader *r, bool *b)
{
    uint8_t v;
    CF_TRY(cf_get_u8(r, &v));
    CF_ENSURE(v <= 1, CF_E_FORMAT);
    *b = v;
    return CF_OK;
}

cf_err tpm_state_serialize(const tpm_instance *t, cf_writer *w)
{
    const tpm_persistent *nv = &t->nv;
    cf_put_bytes(w, "CTPM", 4);
    cf_put_u16(w, TPM_BLOB_VERSION);
    for (int i = 0; i < TPM_H_COUNT; i++) {
        const tpm_hierarchy *h = &nv->h[i];
        cf_put_bytes(w, h->seed, sizeof h->seed);
        cf_put_bytes(w, h->proof, sizeof h->proof);
        put_2b(w, h->auth.buffer, h->auth.size);
        put_2b(w, h->policy.buffer, h->policy.size);
        cf_put_u16(w, h->policy_alg);
    }
    put_2b(w, nv->lockout_auth.buffer, nv->lockout_auth.size);
    put_2b(w, nv->lockout_policy.buffer, nv->lockout_policy.size);
    cf_put_u16(w, nv->lockout_policy_alg);
    cf_put_u8(w, nv->sh_enable);
    cf_put_u8(w, nv->eh_enable);
    cf_put_u8(w, nv->disable_clear);      /* version 2 */
    cf_put_u32(w, nv->failed_tries);
    cf_put_u32(w, nv->max_tries);
    cf_put_u32(w, nv->recovery_time);
    cf_put_u32(w, nv->lockout_recovery);
    cf_put_u8(w, nv->lockout_locked);
    cf_put_u64(w, nv->lockout_locked_at);
    cf_put_u64(w, nv->last_da_decrement);
    cf_put_u64(w, nv->clock);
    cf_put_u32(w, nv->reset_count);
    cf_put_u32(w, nv->restart_count);
    cf_put_u8(w, nv->orderly);
    cf_put_u8(w, nv->saved);
    if (nv->saved) {
        put_pcrs(w, &nv->saved_pcrs);
        cf_put_bytes(w, nv->saved_null_seed, sizeof nv->saved_null_seed);
        cf_put_bytes(w, nv->saved_null_proof, sizeof nv->saved_null_proof);
    }
    tpm_persistent_serialize(nv, w);
    return cf_writer_status(w);
}

static cf_err parse(tpm_persistent *nv, cf_reader *r)
{
    uint8_t magic[4];
    uint16_t ver;
    CF_TRY(cf_get_bytes(r, magic, 4));
    CF_ENSURE(memcmp(magic, "CTPM", 4) == 0, CF_E_FORMAT);
    CF_TRY(cf_get_u16(r, &ver));
    CF_ENSURE(ver == 1 || ver == TPM_BLOB_VERSION, CF_E_FORMAT);   /* 1: before disableClear */
    for (int i = 0; i < TPM_H_COUNT; i++) {
        tpm_hierarchy *h = &nv->h[i];
        CF_TRY(cf_get_bytes(r, h->seed, sizeof h->seed));
        CF_TRY(cf_get_bytes(r, h->proof, sizeof h->proof));
        CF_TRY(get_2b(r, h->auth.buffer, &h->auth.size, sizeof h->auth.buffer));
        CF_TRY(get_2b(r, h->policy.buffer, &h->policy.size, sizeof h->policy.buffer));
        CF_TRY(cf_get_u16(r, &h->policy_alg));
    }
    CF_TRY(get_2b(r, nv->lockout_auth.buffer, &nv->lockout_auth.size, sizeof nv->lockout_auth.buffer));
    CF_TRY(get_2b(r, nv->lockout_policy.buffer, &nv->lockout_policy.size, sizeof nv->lockout_policy.buffer));
    CF_TRY(cf_get_u16(r, &nv->lockout_policy_alg));
    CF_TRY(get_bool(r, &nv->sh_enable));
    CF_TRY(get_bool(r, &nv->eh_enable));
    if (ver >= 2)
        CF_TRY(get_bool(r, &nv->disable_clear));
    CF_TRY(cf_get_u32(r, &nv->failed_tries));
    CF_TRY(cf_get_u32(r, &nv->max_tries));
    CF_TRY(cf_get_u32(r, &nv->recovery_time));
    CF_TRY(cf_get_u32(r, &nv->lockout_recovery));
    CF_TRY(get_bool(r, &nv->lockout_locked));
    CF_TRY(cf_get_u64(r, &nv->lockout_locked_at));
    CF_TRY(cf_get_u64(r, &nv->last_da_decrement));
    CF_TRY(cf_get_u64(r, &nv->clock));
    CF_TRY(cf_get_u32(r, &nv->reset_count));
    CF_TRY(cf_get_u32(r, &nv->restart_count));
    CF_TRY(get_bool(r, &nv->orderly));
    CF_TRY(get_bool(r, &nv->saved));
    if (nv->saved) {
        CF_TRY(get_pcrs(r, &nv->saved_pcrs));
        CF_TRY(cf_get_bytes(r, nv->saved_null_seed, sizeof nv->saved_null_seed));
        CF_TRY(cf_get_bytes(r, nv->saved_null_proof, sizeof nv->saved_null_proof));
    }
    CF_TRY(tpm_persistent_parse(nv, r));
    CF_ENSURE(cf_reader_done(r), CF_E_FORMAT);
    return CF_OK;
}

cf_err tpm_state_parse(tpm_persistent *nv, const uint8_t *p, size_t len)
{
    memset(nv, 0, sizeof *nv);
    cf_reader r = cf_reader_init(p, len);
    cf_err e = parse(nv, &r);
    if (e != CF_OK) {
        tpm_persistent_clear(nv);
        cf_wipe(nv, sizeof *nv);
        return CF_E_STORE_CORRUPT;
    }
    return CF_OK;
}

/* ---- the public face (tpm.h) ------------------------------------------------------------ */
cf_err tpm_instance_new(const char *name, const uint8_t *state, size_t len, tpm_persist_fn persist,
                        void *persist_ctx, tpm_instance **out)
{
    CF_ENSURE(out && (state || len == 0), CF_E_ARGS);
    *out = NULL;
    tpm_instance *t = cf_secret_alloc(sizeof *t);
    CF_ENSURE(t, CF_E_NOMEM);
    cf_err e = CF_OK;
    t->name = strdup(name ? name : "tpm");
    if (!t->name)
        e = CF_E_NOMEM;
    else if (state)
        e = tpm_state_parse(&t->nv, state, len);
    else
        e = fresh_state(&t->nv);
    if (e != CF_OK) {
        tpm_instance_free(t);
        return e;
    }
    t->persist = persist;
    t->persist_ctx = persist_ctx;
    t->now = monotonic_ms;
    t->nv_on = true;
    t->clock_base = tpm_now(t);
    t->clock_saved = t->nv.clock;
    *out = t;
    return CF_OK;
}

void tpm_instance_free(tpm_instance *t)
{
    if (!t)
        return;
    tpm_objects_flush_all(t);
    tpm_persistent_clear(&t->nv);
    free(t->name);
    cf_secret_free(t, sizeof *t);
}

const char *tpm_instance_name(const tpm_instance *t) { return t->name; }

void tpm_set_time_source(tpm_instance *t, uint64_t (*now_ms)(void *ctx), void *ctx)
{
    tpm_clock_update(t);
    t->now = now_ms ? now_ms : monotonic_ms;
    t->now_ctx = now_ms ? ctx : NULL;
    t->clock_base = tpm_now(t);
    t->time_base = t->clock_base;
}

void tpm_power_on(tpm_instance *t)
{
    if (t->powered)
        return;
    t->powered = true;
    tpm_reset(t);
}

void tpm_power_off(tpm_instance *t)
{
    if (!t->powered)
        return;
    tpm_clock_update(t);
    t->powered = false;
    t->started = false;
    tpm_objects_flush_all(t);
}

bool tpm_is_powered(const tpm_instance *t) { return t->powered; }
void tpm_nv_on(tpm_instance *t) { t->nv_on = true; }
void tpm_nv_off(tpm_instance *t) { t->nv_on = false; }
void tpm_cancel(tpm_instance *t, bool on) { t->cancel = on; }

void tpm_reset(tpm_instance *t)
{
    /* _TPM_Init: everything volatile goes; the TPM waits for Startup */
    tpm_clock_update(t);
    t->started = false;
    t->self_tested = false;
    tpm_objects_flush_all(t);
    memset(&t->pcrs, 0, sizeof t->pcrs);
    t->time_base = tpm_now(t);
}

void tpm_delete_volatile(tpm_instance *t)
{
    if (!t->nv.saved)
        return;
    t->nv.saved = false;
    cf_wipe(&t->nv.saved_pcrs, sizeof t->nv.saved_pcrs);
    cf_wipe(t->nv.saved_null_seed, sizeof t->nv.saved_null_seed);
    cf_wipe(t->nv.saved_null_proof, sizeof t->nv.saved_null_proof);
    if (t->persist) {
        cf_writer w = cf_writer_heap();
        if (tpm_state_serialize(t, &w) == CF_OK)
            (void)t->persist(t->persist_ctx, w.p, w.len);
        cf_writer_free(&w);
    }
}

/* TPM_ACCESS.tpmEstablishment (PC Client): set by a DRTM event, which this TPM has none of; the
 * flag is kept for swtpm's GET_TPMESTABLISHED / RESET_TPMESTABLISHED. */
bool tpm_established(const tpm_instance *t) { return t->established; }
void tpm_reset_established(tpm_instance *t) { t->established = false; }
