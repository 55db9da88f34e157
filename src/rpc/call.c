/* call.c: requests and responses, driven by the function table of rpc.h (RPC_FUNCTIONS): the
 * encoder and the decoder walk the same type lists, so an argument cannot be written by one and
 * read differently by the other. */
#include <string.h>
#include "rpc/internal.h"

#define RPC_UNPAREN(...) __VA_ARGS__
#define RPC_FN_ROW(name, code, args, outs) \
    { code, #name, { RPC_UNPAREN args }, { RPC_UNPAREN outs } },

const rpc_fn rpc_fns[] = { RPC_FUNCTIONS(RPC_FN_ROW) };
const size_t rpc_fn_count = sizeof rpc_fns / sizeof rpc_fns[0];

const rpc_fn *rpc_fn_find(uint32_t code)
{
    /* codes are 1..n in table order; the loop keeps that an implementation detail */
    if (code >= 1 && code <= rpc_fn_count && rpc_fns[code - 1].code == code)
        return &rpc_fns[code - 1];
    for (size_t i = 0; i < rpc_fn_count; i++)
        if (rpc_fns[i].code == code)
            return &rpc_fns[i];
    return NULL;
}

static cf_err put_values(cf_writer *w, const rpc_type *types, const rpc_value *v)
{
    for (size_t i = 0; types[i] != RPC_T_END; i++)
        CF_TRY(rpc_put_value(w, types[i], &v[i]));
    return CF_OK;
}

static cf_err get_values(cf_reader *r, const rpc_type *types, rpc_value *v, rpc_arena *a)
{
    for (size_t i = 0; types[i] != RPC_T_END; i++)
        CF_TRY(rpc_get_value(r, types[i], &v[i], a));
    return CF_OK;
}

cf_err rpc_encode_request(cf_writer *w, uint32_t id, const rpc_call *call)
{
    const rpc_fn *fn = rpc_fn_find(call->fn);
    CF_ENSURE(fn, CF_E_ARGS);
    size_t start = rpc_frame_begin(w, RPC_REQUEST, id);
    cf_put_u32(w, fn->code);
    return rpc_frame_end(w, start, put_values(w, fn->args, call->arg));
}

cf_err rpc_encode_response(cf_writer *w, uint32_t id, const rpc_reply *reply)
{
    const rpc_fn *fn = rpc_fn_find(reply->fn);
    CF_ENSURE(fn, CF_E_ARGS);
    size_t start = rpc_frame_begin(w, RPC_RESPONSE, id);
    cf_put_u32(w, fn->code);
    cf_put_u32(w, rpc_status_to_wire(reply->status));
    cf_put_u8(w, reply->has_outputs);
    cf_err rv = reply->has_outputs ? put_values(w, fn->outs, reply->out) : CF_OK;
    return rpc_frame_end(w, start, rv);
}

/* Decodes the body after the function code; all or nothing. */
static cf_err decode_body(cf_reader *r, const rpc_type *types, rpc_value *v, size_t nv, rpc_arena *a)
{
    rpc_chunk *mark = rpc_arena_mark(a);
    memset(v, 0, nv * sizeof *v);
    cf_err rv = get_values(r, types, v, a);
    if (rv == CF_OK && !cf_reader_done(r))
        rv = CF_E_FORMAT;   /* trailing bytes: one encoding per call */
    if (rv != CF_OK)
        rpc_arena_release(a, mark);
    return rv;
}

cf_err rpc_decode_request(const rpc_frame *f, rpc_call *call, rpc_arena *a)
{
    CF_ENSURE(f->type == RPC_REQUEST, CF_E_FORMAT);
    cf_reader r = f->payload;
    r.off = 0;
    uint32_t code;
    CF_ENSURE(cf_get_u32(&r, &code) == CF_OK, CF_E_FORMAT);
    const rpc_fn *fn = rpc_fn_find(code);
    CF_ENSURE(fn, CF_E_NOT_SUPPORTED);
    call->fn = code;
    return decode_body(&r, fn->args, call->arg, RPC_MAX_ARGS, a);
}

cf_err rpc_decode_response(const rpc_frame *f, rpc_reply *reply, rpc_arena *a)
{
    CF_ENSURE(f->type == RPC_RESPONSE, CF_E_FORMAT);
    cf_reader r = f->payload;
    r.off = 0;
    uint32_t code, wire;
    bool has;
    cf_err st;
    CF_ENSURE(cf_get_u32(&r, &code) == CF_OK && cf_get_u32(&r, &wire) == CF_OK, CF_E_FORMAT);
    const rpc_fn *fn = rpc_fn_find(code);
    /* the client asked for this function: an unknown one is the server's protocol error */
    CF_ENSURE(fn, CF_E_FORMAT);
    CF_TRY(rpc_status_from_wire(wire, &st));
    CF_ENSURE(rpc_get_flag(&r, &has) == CF_OK, CF_E_FORMAT);
    reply->fn = code;
    reply->status = st;
    reply->has_outputs = has;
    static const rpc_type none[] = { RPC_T_END };
    return decode_body(&r, has ? fn->outs : none, reply->out, RPC_MAX_OUTS, a);
}
