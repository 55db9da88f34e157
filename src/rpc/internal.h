/* internal.h: what the files of src/rpc share (not part of rpc.h's contract). */
#pragma once
#include "rpc/rpc.h"

/* ---- arena marks: a failed decode releases what it allocated, and only that ---- */
rpc_chunk *rpc_arena_mark(const rpc_arena *a);
void rpc_arena_release(rpc_arena *a, rpc_chunk *mark);

/* ---- frames: a header with a placeholder length, patched when the payload is written ---- */
size_t rpc_frame_begin(cf_writer *w, uint8_t type, uint32_t id);
/* Patches the length; on failure puts the writer back to start (wiping). */
cf_err rpc_frame_end(cf_writer *w, size_t start, cf_err rv);

/* ---- scalars: CK_ULONG as u64, all-ones as all-ones (docs/protocol.md) ---- */
void rpc_put_ulong(cf_writer *w, CK_ULONG v);
cf_err rpc_get_ulong(cf_reader *r, CK_ULONG *v) CF_WARN_UNUSED;
/* u8 that must be 0 or 1. */
cf_err rpc_get_flag(cf_reader *r, bool *v) CF_WARN_UNUSED;
/* u32 length then bytes; the view is never NULL. */
void rpc_put_blob(cf_writer *w, const void *p, size_t n);
cf_err rpc_get_blob(cf_reader *r, const uint8_t **p, size_t *n) CF_WARN_UNUSED;

/* ---- values by table type ---- */
cf_err rpc_put_value(cf_writer *w, rpc_type t, const rpc_value *v) CF_WARN_UNUSED;
cf_err rpc_get_value(cf_reader *r, rpc_type t, rpc_value *v, rpc_arena *a) CF_WARN_UNUSED;

/* ---- mechanisms (mech.c) ---- */
cf_err rpc_put_mech(cf_writer *w, const CK_MECHANISM *m) CF_WARN_UNUSED;
cf_err rpc_get_mech(cf_reader *r, CK_MECHANISM *m, rpc_arena *a) CF_WARN_UNUSED;
