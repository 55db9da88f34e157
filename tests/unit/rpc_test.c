/* rpc_test.c: the remote-HSM wire codec (src/rpc, docs/protocol.md): the function, status and
 * mechanism tables; frames and the version handshake; a round trip of every function's request
 * and response with representative values (absent output buffers, BUFFER_TOO_SMALL answers,
 * NULL pValue entries, every mechanism parameter layout); every truncation of every frame those
 * produce (the reader does not move, nothing stays allocated); limits; and clean refusals of
 * unknown function codes and mechanism parameter layouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hsm/mech.h"
#include "rpc/rpc.h"

#ifndef CKM_EDDSA
#define CKM_EDDSA 0x1057UL
#endif

/* ---- helpers ----------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len;
} frame_bytes;

static frame_bytes take(cf_writer *w)
{
    frame_bytes f;
    f.p = cf_writer_take(w, &f.len);
    return f;
}

static rpc_frame parse_one(const frame_bytes *b)
{
    cf_reader r = cf_reader_init(b->p, b->len);
    rpc_frame f;
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    assert_true(cf_reader_done(&r));
    return f;
}

/* Every proper prefix of a frame is SHORT and leaves the reader where it was. */
static void check_frame_truncations(const frame_bytes *b)
{
    for (size_t n = 0; n < b->len; n++) {
        cf_reader r = cf_reader_init(b->p, n);
        rpc_frame f;
        assert_int_equal(rpc_frame_parse(&r, &f), CF_E_SHORT);
        assert_int_equal(r.off, 0);
    }
}

typedef cf_err (*decode_fn)(const rpc_frame *f, void *out, rpc_arena *a);
static cf_err dec_req(const rpc_frame *f, void *out, rpc_arena *a) { return rpc_decode_request(f, out, a); }
static cf_err dec_resp(const rpc_frame *f, void *out, rpc_arena *a) { return rpc_decode_response(f, out, a); }

/* Every truncation of the payload fails to decode (FORMAT) and leaves the arena empty; so does
 * one trailing byte more. */
static void check_payload_truncations(const rpc_frame *whole, decode_fn dec, void *scratch)
{
    for (size_t n = 0; n < whole->payload.len; n++) {
        rpc_frame f = *whole;
        f.payload.len = n;
        rpc_arena a = RPC_ARENA_INIT;
        cf_err e = dec(&f, scratch, &a);
        assert_int_equal(e, CF_E_FORMAT);
        assert_null(a.head);
    }
    uint8_t *longer = malloc(whole->payload.len + 1);
    assert_non_null(longer);
    memcpy(longer, whole->payload.p, whole->payload.len);
    longer[whole->payload.len] = 0;
    rpc_frame f = *whole;
    f.payload = cf_reader_init(longer, whole->payload.len + 1);
    rpc_arena a = RPC_ARENA_INIT;
    assert_int_equal(dec(&f, scratch, &a), CF_E_FORMAT);
    assert_null(a.head);
    free(longer);
}

/* Encodes the call, parses and decodes it, checks that re-encoding gives the same bytes, and
 * checks every truncation. Returns the decoded call (its pointers live in *keep and *a). */
static void request_round_trip(uint32_t id, const rpc_call *call, rpc_call *out, frame_bytes *keep, rpc_arena *a)
{
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_request(&w, id, call), CF_OK);
    *keep = take(&w);
    rpc_frame f = parse_one(keep);
    assert_int_equal(f.type, RPC_REQUEST);
    assert_int_equal(f.id, id);
    assert_int_equal(rpc_decode_request(&f, out, a), CF_OK);
    assert_int_equal(out->fn, call->fn);

    cf_writer w2 = cf_writer_heap();
    assert_int_equal(rpc_encode_request(&w2, id, out), CF_OK);
    assert_int_equal(w2.len, keep->len);
    assert_memory_equal(w2.p, keep->p, keep->len);
    cf_writer_free(&w2);

    check_frame_truncations(keep);
    rpc_call scratch;
    check_payload_truncations(&f, dec_req, &scratch);
}

static void response_round_trip(uint32_t id, const rpc_reply *reply, rpc_reply *out, frame_bytes *keep,
                                rpc_arena *a)
{
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_response(&w, id, reply), CF_OK);
    *keep = take(&w);
    rpc_frame f = parse_one(keep);
    assert_int_equal(f.type, RPC_RESPONSE);
    assert_int_equal(rpc_decode_response(&f, out, a), CF_OK);
    assert_int_equal(out->fn, reply->fn);
    assert_int_equal(out->status, reply->status);
    assert_int_equal(out->has_outputs, reply->has_outputs);

    cf_writer w2 = cf_writer_heap();
    assert_int_equal(rpc_encode_response(&w2, id, out), CF_OK);
    assert_int_equal(w2.len, keep->len);
    assert_memory_equal(w2.p, keep->p, keep->len);
    cf_writer_free(&w2);

    check_frame_truncations(keep);
    rpc_reply scratch;
    check_payload_truncations(&f, dec_resp, &scratch);
}

/* ---- sample values --------------------------------------------------------------------------- */

static uint8_t pin[] = "123456";
static uint8_t data[] = "the quick brown fox";
static uint8_t label32[32] = "coffer token                    ";
static uint8_t iv16[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static uint8_t aad[] = "header";
static uint8_t oaep_label[] = "label";
static uint8_t point[65] = { 0x04, 1, 2, 3 };
static uint8_t sig[64] = { 0x30, 0x44 };
static CK_ULONG class_secret = CKO_SECRET_KEY;
static CK_BBOOL yes = CK_TRUE;

static CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
static CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, oaep_label, 5 };
static CK_RSA_PKCS_OAEP_PARAMS oaep_nolabel = { CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
static CK_AES_CTR_PARAMS ctr = { 128, { 0xf0, 0xf1, 0xf2 } };
static CK_GCM_PARAMS gcm = { iv16, 12, 96, aad, 6, 128 };
static CK_ECDH1_DERIVE_PARAMS ecdh = { CKD_NULL, 0, NULL, sizeof point, point };
static rpc_eddsa_params eddsa = { CK_FALSE, 0, NULL };

static const CK_MECHANISM mech_samples[] = {
    { CKM_SHA256, NULL, 0 },
    { CKM_AES_CBC_PAD, iv16, sizeof iv16 },
    { CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof pss },
    { CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep },
    { CKM_RSA_PKCS_OAEP, &oaep_nolabel, sizeof oaep_nolabel },
    { CKM_AES_CTR, &ctr, sizeof ctr },
    { CKM_AES_GCM, &gcm, sizeof gcm },
    { CKM_ECDH1_DERIVE, &ecdh, sizeof ecdh },
    { CKM_EDDSA, &eddsa, sizeof eddsa },
    { CKM_EDDSA, NULL, 0 },
    { 0x80001234UL, NULL, 0 },   /* unknown to the codec, no parameter: the server decides */
};
#define N_MECHS (sizeof mech_samples / sizeof mech_samples[0])

static CK_ATTRIBUTE tmpl3[] = {
    { CKA_CLASS, &class_secret, sizeof class_secret },
    { CKA_LABEL, data, 5 },
    { CKA_TOKEN, &yes, sizeof yes },
    { CKA_ID, NULL, 0 },
};
static rpc_query_item query3[] = {
    { CKA_VALUE, true, 32 },
    { CKA_LABEL, false, 0 },           /* NULL pValue: a length query */
    { CKA_MODULUS, true, 0 },
    { CKA_ID, false, 12345 },          /* NULL pValue with a (meaningless) length */
};
static uint8_t out_label[5] = "hello";
static uint8_t out_buf[8];
static CK_ATTRIBUTE attrs4[] = {
    { CKA_LABEL, out_label, 5 },                           /* copied */
    { CKA_VALUE, NULL, CK_UNAVAILABLE_INFORMATION },       /* sensitive */
    { CKA_MODULUS, NULL, 256 },                            /* length query answered */
    { CKA_ID, out_buf, CK_UNAVAILABLE_INFORMATION },       /* buffer too small */
    { CKA_TOKEN, out_buf, 0 },                             /* empty value */
};
static CK_ULONG handles[] = { 1, 2, 0x7fffffff, CK_UNAVAILABLE_INFORMATION };

/* A value of type t; variant 0 is the typical case, 1 the edge (absent, empty, unavailable). */
static rpc_value sample(rpc_type t, int variant, const CK_MECHANISM *mech)
{
    rpc_value v;
    memset(&v, 0, sizeof v);
    switch (t) {
    case RPC_T_END:
        break;
    case RPC_T_ULONG:
        v.ul = variant ? CK_UNAVAILABLE_INFORMATION : 42;
        break;
    case RPC_T_BOOL:
        v.ul = variant ? 0 : 1;
        break;
    case RPC_T_KIND:
        v.ul = variant ? 4 : 3;
        break;
    case RPC_T_BYTES:
        if (!variant) {
            v.bytes.p = pin;
            v.bytes.len = 6;
        }
        break;
    case RPC_T_LABEL:
        v.bytes.p = label32;
        v.bytes.len = 32;
        break;
    case RPC_T_OUTBUF:
        v.outbuf.present = !variant;
        v.outbuf.cap = variant ? 0 : 256;
        break;
    case RPC_T_TEMPLATE:
        if (!variant) {
            v.tmpl.attrs = tmpl3;
            v.tmpl.count = 4;
        }
        break;
    case RPC_T_QUERY:
        if (!variant) {
            v.query.items = query3;
            v.query.count = 4;
        }
        break;
    case RPC_T_MECH:
        v.mech = *mech;
        break;
    case RPC_T_DATA:
        v.data.p = variant ? NULL : sig;
        v.data.len = variant ? 512 : sizeof sig;
        break;
    case RPC_T_LIST:
        v.list.v = variant ? NULL : handles;
        v.list.count = variant ? 7 : 4;
        break;
    case RPC_T_ATTRS:
        v.tmpl.attrs = attrs4;
        v.tmpl.count = variant ? 0 : 5;
        break;
    case RPC_T_SLOT_INFO:
        memset(v.slot_info.slotDescription, 'd', sizeof v.slot_info.slotDescription);
        memset(v.slot_info.manufacturerID, 'm', sizeof v.slot_info.manufacturerID);
        v.slot_info.flags = CKF_TOKEN_PRESENT;
        v.slot_info.hardwareVersion.major = 1;
        v.slot_info.firmwareVersion.minor = 9;
        break;
    case RPC_T_TOKEN_INFO: {
        CK_TOKEN_INFO *k = &v.token_info;
        memcpy(k->label, label32, 32);
        memset(k->manufacturerID, 'm', sizeof k->manufacturerID);
        memset(k->model, 'o', sizeof k->model);
        memset(k->serialNumber, '7', sizeof k->serialNumber);
        k->flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED;
        k->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
        k->ulSessionCount = CK_UNAVAILABLE_INFORMATION;
        k->ulMaxRwSessionCount = 3;
        k->ulMaxPinLen = 64;
        k->ulMinPinLen = 4;
        k->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
        k->firmwareVersion.major = 2;
        memset(k->utcTime, '0', sizeof k->utcTime);
        break;
    }
    case RPC_T_SESSION_INFO:
        v.session_info.slotID = 5;
        v.session_info.state = CKS_RW_USER_FUNCTIONS;
        v.session_info.flags = CKF_RW_SESSION | CKF_SERIAL_SESSION;
        break;
    case RPC_T_MECH_INFO:
        v.mech_info.ulMinKeySize = 2048;
        v.mech_info.ulMaxKeySize = 4096;
        v.mech_info.flags = CKF_SIGN | CKF_VERIFY;
        break;
    }
    return v;
}

static bool has_type(const rpc_type *types, rpc_type t)
{
    for (size_t i = 0; types[i] != RPC_T_END; i++)
        if (types[i] == t)
            return true;
    return false;
}

/* ---- tables -------------------------------------------------------------------------------- */

static void test_function_table(void **state)
{
    (void)state;
    assert_int_equal(rpc_fn_count, 45);
    for (size_t i = 0; i < rpc_fn_count; i++) {
        const rpc_fn *fn = &rpc_fns[i];
        assert_ptr_equal(rpc_fn_find(fn->code), fn);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(rpc_fns[j].code, fn->code);
        size_t n = 0;
        while (fn->args[n] != RPC_T_END)
            n++;
        assert_true(n >= 1 && n <= RPC_MAX_ARGS);
        assert_int_equal(fn->args[RPC_MAX_ARGS], RPC_T_END);
        assert_int_equal(fn->outs[RPC_MAX_OUTS], RPC_T_END);
    }
    assert_null(rpc_fn_find(0));
    assert_null(rpc_fn_find(46));
    assert_null(rpc_fn_find(UINT32_MAX));
    assert_string_equal(rpc_fn_find(RPC_FN_OP_ONESHOT)->name, "OP_ONESHOT");
    assert_int_equal(RPC_FN_GENERATE_RANDOM, 39);
    assert_int_equal(RPC_FN_OP_REARM, 42);
    assert_string_equal(rpc_fn_find(41)->name, "OP_REARM_ONESHOT");
    assert_int_equal(RPC_FN_VERIFY_LEASE, 43);
    assert_int_equal(RPC_FN_REARM_VERIFY, 44);
    assert_int_equal(RPC_FN_FIND_OBJECTS_FETCH, 45);
}

static void test_status_table(void **state)
{
    (void)state;
    uint32_t seen[CF_E__COUNT];
    for (int e = 0; e < CF_E__COUNT; e++) {
        uint32_t w = rpc_status_to_wire((cf_err)e);
        for (int j = 0; j < e; j++)
            assert_int_not_equal(seen[j], w);
        seen[e] = w;
        cf_err back;
        assert_int_equal(rpc_status_from_wire(w, &back), CF_OK);
        assert_int_equal(back, e);
    }
    /* a few numbers fixed by docs/protocol.md */
    assert_int_equal(rpc_status_to_wire(CF_OK), 0);
    assert_int_equal(rpc_status_to_wire(CF_E_NOMEM), 1);
    assert_int_equal(rpc_status_to_wire(CF_E_DEVICE_ERROR), 78);
    cf_err e;
    /* appended for the remote module's lost connection (never sent by a server) */
    assert_int_equal(rpc_status_to_wire(CF_E_DEVICE_REMOVED), 79);
    /* minor 2: a change waits for a lease, the client tries again */
    assert_int_equal(rpc_status_to_wire(CF_E_LEASED), 80);
    assert_int_equal(rpc_status_from_wire(81, &e), CF_E_FORMAT);
    assert_int_equal(rpc_status_from_wire(UINT32_MAX, &e), CF_E_FORMAT);
    assert_true(rpc_status_has_outputs(RPC_FN_WRAP_KEY, CF_E_BUFFER_TOO_SMALL));
    assert_false(rpc_status_has_outputs(RPC_FN_WRAP_KEY, CF_E_ATTRIBUTE_SENSITIVE));
    assert_true(rpc_status_has_outputs(RPC_FN_GET_ATTRIBUTE_VALUE, CF_E_ATTRIBUTE_SENSITIVE));
    assert_false(rpc_status_has_outputs(RPC_FN_GET_ATTRIBUTE_VALUE, CF_E_OBJECT_HANDLE_INVALID));
}

/* Every mechanism the engine implements is known to the codec, so none is refused at encode. */
static void test_mech_table_covers_engine(void **state)
{
    (void)state;
    for (size_t i = 0; i < hsm_mech_count; i++) {
        rpc_param_layout l;
        if (!rpc_mech_layout(hsm_mechs[i].type, &l))
            fail_msg("mechanism %s has no rpc parameter layout", hsm_mechs[i].name);
    }
    rpc_param_layout l;
    assert_false(rpc_mech_layout(0x80001234UL, &l));
    assert_true(rpc_mech_layout(CKM_AES_GCM, &l));
    assert_int_equal(l, RPC_PARAM_GCM);
}

/* ---- frames ---------------------------------------------------------------------------------- */

static void test_frame_parse(void **state)
{
    (void)state;
    /* two frames back to back, then a partial third */
    static const uint8_t two[] = {
        0, 0, 0, 7, RPC_REQUEST, 0, 0, 0, 9, 0xaa, 0xbb,
        0, 0, 0, 5, RPC_ERROR, 0xff, 0xff, 0xff, 0xff,
        0, 0, 0, 5, RPC_RESPONSE,
    };
    cf_reader r = cf_reader_init(two, sizeof two);
    rpc_frame f;
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    assert_int_equal(f.type, RPC_REQUEST);
    assert_int_equal(f.id, 9);
    assert_int_equal(f.payload.len, 2);
    assert_int_equal(f.payload.p[0], 0xaa);
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    assert_int_equal(f.type, RPC_ERROR);
    assert_int_equal(f.id, 0xffffffffu);
    assert_int_equal(f.payload.len, 0);
    size_t at = r.off;
    assert_int_equal(rpc_frame_parse(&r, &f), CF_E_SHORT);
    assert_int_equal(r.off, at);

    size_t total;
    static const uint8_t max_ok[] = { 0x00, 0x11, 0x00, 0x00 };   /* 1 MiB + 64 KiB */
    assert_int_equal(rpc_frame_size(max_ok, 4, &total), CF_OK);
    assert_int_equal(total, RPC_MAX_FRAME + 4);
    assert_int_equal(rpc_frame_size(max_ok, 3, &total), CF_E_SHORT);

    /* a length over the maximum, or under the header, or an unknown type: FORMAT, reader unmoved,
     * even when the bytes announced are not there */
    static const uint8_t bad[][9] = {
        { 0x00, 0x11, 0x00, 0x01, RPC_REQUEST, 0, 0, 0, 1 },
        { 0xff, 0xff, 0xff, 0xff, RPC_REQUEST, 0, 0, 0, 1 },
        { 0x00, 0x00, 0x00, 0x04, RPC_REQUEST, 0, 0, 0, 1 },
        { 0x00, 0x00, 0x00, 0x00, RPC_REQUEST, 0, 0, 0, 1 },
        { 0x00, 0x00, 0x00, 0x05, 0, 0, 0, 0, 1 },
        { 0x00, 0x00, 0x00, 0x05, 6, 0, 0, 0, 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = cf_reader_init(bad[i], sizeof bad[i]);
        assert_int_equal(rpc_frame_parse(&r, &f), CF_E_FORMAT);
        assert_int_equal(r.off, 0);
    }
    assert_int_equal(rpc_frame_size(bad[0], 4, &total), CF_E_FORMAT);
}

static void test_handshake(void **state)
{
    (void)state;
    char msg[160];
    rpc_hello self = rpc_hello_self();
    assert_int_equal(self.major, 1);
    assert_int_equal(self.minor, 4);
    assert_false(self.has_token);
    if (sizeof(CK_ULONG) == 8)
        assert_true(self.flags & RPC_HELLO_ULONG64);

    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_hello(&w, RPC_HELLO, &self), CF_OK);
    frame_bytes b = take(&w);
    assert_int_equal(b.len, RPC_HEADER_LEN + 12);
    assert_memory_equal(b.p + RPC_HEADER_LEN, "CFR1", 4);
    check_frame_truncations(&b);
    rpc_frame f = parse_one(&b);
    assert_int_equal(f.id, 0);
    rpc_hello got;
    assert_int_equal(rpc_decode_hello(&f, &got), CF_OK);
    assert_int_equal(got.major, self.major);
    assert_int_equal(got.flags, self.flags);
    assert_int_equal(rpc_hello_accept(&got, msg, sizeof msg), CF_OK);

    /* a newer minor version and unknown feature flags are accepted */
    rpc_hello newer = { 1, 7, self.flags | 0x100, false, { 0 } };
    assert_int_equal(rpc_hello_accept(&newer, msg, sizeof msg), CF_OK);
    assert_int_equal(rpc_hello_ok_accept(&newer, msg, sizeof msg), CF_OK);

    /* an unknown major version is refused with the sentence the ERROR frame carries */
    rpc_hello v2 = { 2, 0, self.flags, false, { 0 } };
    assert_int_equal(rpc_hello_accept(&v2, msg, sizeof msg), CF_E_NOT_SUPPORTED);
    assert_string_equal(msg, "protocol major version 2 not supported by this server (speaks 1)");
    assert_int_equal(rpc_hello_ok_accept(&v2, msg, sizeof msg), CF_E_NOT_SUPPORTED);
    assert_string_equal(msg, "server speaks protocol major version 2, this client 1");

    /* a different ABI is refused, named */
    rpc_hello other = { 1, 0, self.flags ^ RPC_HELLO_ULONG64, false, { 0 } };
    assert_int_equal(rpc_hello_accept(&other, msg, sizeof msg), CF_E_NOT_SUPPORTED);
    assert_non_null(strstr(msg, "client ABI"));
    assert_non_null(strstr(msg, "CK_ULONG"));

    /* the refusal travels as an ERROR frame */
    assert_int_equal(rpc_hello_accept(&v2, msg, sizeof msg), CF_E_NOT_SUPPORTED);
    assert_int_equal(rpc_encode_error(&w, 0, CF_E_NOT_SUPPORTED, msg), CF_OK);
    frame_bytes e = take(&w);
    check_frame_truncations(&e);
    rpc_frame ef = parse_one(&e);
    cf_err st;
    const char *m;
    size_t mlen;
    assert_int_equal(rpc_decode_error(&ef, &st, &m, &mlen), CF_OK);
    assert_int_equal(st, CF_E_NOT_SUPPORTED);
    assert_int_equal(mlen, strlen(msg));
    assert_memory_equal(m, msg, mlen);
    assert_int_equal(rpc_decode_hello(&ef, &got), CF_E_FORMAT);   /* wrong type */

    /* HELLO_OK; a wrong magic and a short or long payload are FORMAT */
    assert_int_equal(rpc_encode_hello(&w, RPC_HELLO_OK, &self), CF_OK);
    frame_bytes ok = take(&w);
    f = parse_one(&ok);
    assert_int_equal(f.type, RPC_HELLO_OK);
    assert_int_equal(rpc_decode_hello(&f, &got), CF_OK);
    ok.p[RPC_HEADER_LEN + 3] = '2';
    f = parse_one(&ok);
    assert_int_equal(rpc_decode_hello(&f, &got), CF_E_FORMAT);
    ok.p[RPC_HEADER_LEN + 3] = '1';
    f = parse_one(&ok);
    f.payload.len--;
    assert_int_equal(rpc_decode_hello(&f, &got), CF_E_FORMAT);
    ok.p[8] = 1;   /* id must be 0 */
    f = parse_one(&ok);
    assert_int_equal(rpc_decode_hello(&f, &got), CF_E_FORMAT);
    assert_int_equal(rpc_encode_hello(&w, RPC_REQUEST, &self), CF_E_ARGS);
    assert_int_equal(w.len, 0);

    /* the application token: 16 bytes after the flags, both ways; another length is FORMAT */
    rpc_hello joined = self;
    joined.has_token = true;
    for (int i = 0; i < RPC_APP_TOKEN_LEN; i++)
        joined.token[i] = (uint8_t)(0xA0 + i);
    assert_int_equal(rpc_encode_hello(&w, RPC_HELLO_OK, &joined), CF_OK);
    frame_bytes tk = take(&w);
    assert_int_equal(tk.len, RPC_HEADER_LEN + 12 + RPC_APP_TOKEN_LEN);
    check_frame_truncations(&tk);
    f = parse_one(&tk);
    assert_int_equal(rpc_decode_hello(&f, &got), CF_OK);
    assert_true(got.has_token);
    assert_memory_equal(got.token, joined.token, RPC_APP_TOKEN_LEN);
    f.payload.len--;
    assert_int_equal(rpc_decode_hello(&f, &got), CF_E_FORMAT);
    f.payload.len -= RPC_APP_TOKEN_LEN - 2;   /* 1 byte of token */
    assert_int_equal(rpc_decode_hello(&f, &got), CF_E_FORMAT);
    free(tk.p);

    free(b.p);
    free(e.p);
    free(ok.p);
    cf_writer_free(&w);
}

static void test_error_frames(void **state)
{
    (void)state;
    char long_msg[RPC_MAX_MESSAGE + 100];
    memset(long_msg, 'x', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    cf_writer w = cf_writer_heap();
    assert_int_equal(rpc_encode_error(&w, 77, CF_E_FORMAT, long_msg), CF_OK);
    assert_int_equal(rpc_encode_error(&w, 78, CF_E_NOT_SUPPORTED, NULL), CF_OK);
    frame_bytes b = take(&w);
    cf_reader r = cf_reader_init(b.p, b.len);
    rpc_frame f;
    cf_err st;
    const char *m;
    size_t n;
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    assert_int_equal(f.id, 77);
    assert_int_equal(rpc_decode_error(&f, &st, &m, &n), CF_OK);
    assert_int_equal(st, CF_E_FORMAT);
    assert_int_equal(n, RPC_MAX_MESSAGE);   /* cut */
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    assert_int_equal(rpc_decode_error(&f, &st, &m, &n), CF_OK);
    assert_int_equal(st, CF_E_NOT_SUPPORTED);
    assert_int_equal(n, 0);
    /* an unknown status number is a protocol error */
    b.p[RPC_HEADER_LEN + 8 + RPC_MAX_MESSAGE + RPC_HEADER_LEN + 3] = 200;
    r = cf_reader_init(b.p, b.len);
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    assert_int_equal(rpc_decode_error(&f, &st, &m, &n), CF_E_FORMAT);
    free(b.p);
}

/* ---- every function, both directions ---------------------------------------------------------- */

static void round_trip_fn(const rpc_fn *fn, int variant, const CK_MECHANISM *mech, uint32_t id)
{
    rpc_call call = { .fn = fn->code };
    for (size_t i = 0; fn->args[i] != RPC_T_END; i++)
        call.arg[i] = sample(fn->args[i], variant, mech);
    rpc_call got;
    frame_bytes keep;
    rpc_arena a = RPC_ARENA_INIT;
    request_round_trip(id, &call, &got, &keep, &a);
    rpc_arena_free(&a);
    free(keep.p);

    /* OK with outputs; BUFFER_TOO_SMALL with the edge outputs; an error without outputs */
    rpc_reply reply = { .fn = fn->code, .status = variant ? CF_E_BUFFER_TOO_SMALL : CF_OK, .has_outputs = true };
    for (size_t i = 0; fn->outs[i] != RPC_T_END; i++)
        reply.out[i] = sample(fn->outs[i], variant, mech);
    rpc_reply rgot;
    response_round_trip(id, &reply, &rgot, &keep, &a);
    rpc_arena_free(&a);
    free(keep.p);

    rpc_reply err = { .fn = fn->code, .status = CF_E_SESSION_HANDLE_INVALID };
    response_round_trip(id, &err, &rgot, &keep, &a);
    assert_int_equal(keep.len, RPC_HEADER_LEN + 9);
    rpc_arena_free(&a);
    free(keep.p);
}

static void test_every_function_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < rpc_fn_count; i++) {
        const rpc_fn *fn = &rpc_fns[i];
        bool mech = has_type(fn->args, RPC_T_MECH);
        for (int variant = 0; variant < 2; variant++)
            for (size_t m = 0; m < (mech ? N_MECHS : 1); m++)
                round_trip_fn(fn, variant, &mech_samples[m], (uint32_t)(i * 100 + m));
    }
}

/* The decoded values themselves, for the types whose decoding rebuilds something. */
static void test_decoded_values(void **state)
{
    (void)state;
    rpc_arena a = RPC_ARENA_INIT;
    frame_bytes keep;

    /* GET_ATTRIBUTE_VALUE: the query keeps which entries had a buffer, and the answer per
     * attribute the length (UNAVAILABLE included) and bytes only where they were copied */
    rpc_call q = { .fn = RPC_FN_GET_ATTRIBUTE_VALUE };
    q.arg[0].ul = 3;
    q.arg[1].ul = 4;
    q.arg[2] = sample(RPC_T_QUERY, 0, NULL);
    rpc_call qd;
    request_round_trip(1, &q, &qd, &keep, &a);
    assert_int_equal(qd.arg[2].query.count, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(qd.arg[2].query.items[i].type, query3[i].type);
        assert_int_equal(qd.arg[2].query.items[i].has_buf, query3[i].has_buf);
        assert_int_equal(qd.arg[2].query.items[i].cap, query3[i].cap);
    }
    rpc_arena_free(&a);
    free(keep.p);

    rpc_reply r = { .fn = RPC_FN_GET_ATTRIBUTE_VALUE, .status = CF_E_ATTRIBUTE_SENSITIVE, .has_outputs = true };
    r.out[0] = sample(RPC_T_ATTRS, 0, NULL);
    rpc_reply rd;
    response_round_trip(2, &r, &rd, &keep, &a);
    const CK_ATTRIBUTE *t = rd.out[0].tmpl.attrs;
    assert_int_equal(rd.out[0].tmpl.count, 5);
    assert_int_equal(t[0].ulValueLen, 5);
    assert_memory_equal(t[0].pValue, "hello", 5);
    assert_null(t[1].pValue);
    assert_true(t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    assert_null(t[2].pValue);
    assert_int_equal(t[2].ulValueLen, 256);
    assert_null(t[3].pValue);
    assert_true(t[3].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    assert_non_null(t[4].pValue);
    assert_int_equal(t[4].ulValueLen, 0);
    rpc_arena_free(&a);
    free(keep.p);

    /* a template: values point into the frame, NULL pValue stays NULL */
    rpc_call c = { .fn = RPC_FN_CREATE_OBJECT };
    c.arg[0].ul = 9;
    c.arg[1] = sample(RPC_T_TEMPLATE, 0, NULL);
    rpc_call cd;
    request_round_trip(3, &c, &cd, &keep, &a);
    t = cd.arg[1].tmpl.attrs;
    assert_int_equal(cd.arg[1].tmpl.count, 4);
    assert_int_equal(t[0].type, CKA_CLASS);
    assert_int_equal(t[0].ulValueLen, sizeof(CK_ULONG));
    assert_memory_equal(t[0].pValue, &class_secret, sizeof(CK_ULONG));
    assert_true((uint8_t *)t[1].pValue > keep.p && (uint8_t *)t[1].pValue < keep.p + keep.len);
    assert_null(t[3].pValue);
    assert_int_equal(t[3].ulValueLen, 0);
    rpc_arena_free(&a);
    free(keep.p);

    /* the length protocol: an absent output buffer and a too-small answer */
    rpc_call s = { .fn = RPC_FN_OP_ONESHOT };
    s.arg[0].ul = 1;
    s.arg[1].ul = HSM_OP_SIGN;
    s.arg[2] = sample(RPC_T_BYTES, 0, NULL);
    s.arg[3] = sample(RPC_T_OUTBUF, 1, NULL);
    rpc_call sd;
    request_round_trip(4, &s, &sd, &keep, &a);
    assert_false(sd.arg[3].outbuf.present);
    assert_int_equal(sd.arg[1].ul, HSM_OP_SIGN);
    assert_int_equal(sd.arg[2].bytes.len, 6);
    assert_memory_equal(sd.arg[2].bytes.p, pin, 6);
    free(keep.p);
    rpc_reply small = { .fn = RPC_FN_OP_ONESHOT, .status = CF_E_BUFFER_TOO_SMALL, .has_outputs = true };
    small.out[0].data.len = 512;
    response_round_trip(4, &small, &rd, &keep, &a);
    assert_int_equal(rd.status, CF_E_BUFFER_TOO_SMALL);
    assert_null(rd.out[0].data.p);
    assert_int_equal(rd.out[0].data.len, 512);
    free(keep.p);
    rpc_arena_free(&a);

    /* empty byte strings decode to a non-NULL pointer (the engine expects one) */
    rpc_call v = { .fn = RPC_FN_VERIFY };
    v.arg[0].ul = 1;
    rpc_call vd;
    request_round_trip(5, &v, &vd, &keep, &a);
    assert_non_null(vd.arg[1].bytes.p);
    assert_int_equal(vd.arg[1].bytes.len, 0);
    free(keep.p);

    /* lists: items, count only, and empty with items */
    rpc_reply l = { .fn = RPC_FN_FIND_OBJECTS, .status = CF_OK, .has_outputs = true };
    l.out[0] = sample(RPC_T_LIST, 0, NULL);
    response_round_trip(6, &l, &rd, &keep, &a);
    assert_int_equal(rd.out[0].list.count, 4);
    assert_memory_equal(rd.out[0].list.v, handles, sizeof handles);
    free(keep.p);
    CK_ULONG none;
    l.out[0].list.v = &none;
    l.out[0].list.count = 0;
    response_round_trip(7, &l, &rd, &keep, &a);
    assert_non_null(rd.out[0].list.v);
    assert_int_equal(rd.out[0].list.count, 0);
    free(keep.p);
    rpc_arena_free(&a);

    /* token info with CK_UNAVAILABLE_INFORMATION fields */
    rpc_reply ti = { .fn = RPC_FN_GET_TOKEN_INFO, .status = CF_OK, .has_outputs = true };
    ti.out[0] = sample(RPC_T_TOKEN_INFO, 0, NULL);
    response_round_trip(8, &ti, &rd, &keep, &a);
    assert_memory_equal(&rd.out[0].token_info.label, label32, 32);
    assert_true(rd.out[0].token_info.ulSessionCount == CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(rd.out[0].token_info.ulMinPinLen, 4);
    assert_int_equal(rd.out[0].token_info.firmwareVersion.major, 2);
    free(keep.p);
    rpc_arena_free(&a);
}

/* Each structured mechanism parameter is rebuilt field by field, its pointers into the frame. */
static void test_mechanism_parameters(void **state)
{
    (void)state;
    rpc_arena a = RPC_ARENA_INIT;
    frame_bytes keep;
    rpc_call c = { .fn = RPC_FN_OP_INIT }, d;
    c.arg[0].ul = 1;
    c.arg[1].ul = HSM_OP_ENCRYPT;
    c.arg[3].ul = 77;

    for (size_t i = 0; i < N_MECHS; i++) {
        c.arg[2].mech = mech_samples[i];
        request_round_trip(10, &c, &d, &keep, &a);
        const CK_MECHANISM *m = &d.arg[2].mech;
        assert_int_equal(m->mechanism, mech_samples[i].mechanism);
        assert_int_equal(m->ulParameterLen, mech_samples[i].ulParameterLen);
        assert_int_equal(m->pParameter == NULL, mech_samples[i].pParameter == NULL);
        assert_true(m->pParameter != mech_samples[i].pParameter || m->pParameter == NULL);
        rpc_param_layout l;
        rpc_mech_layout(m->mechanism, &l);
        if (m->pParameter == NULL)
            l = RPC_PARAM_NONE;
        switch (l) {
        case RPC_PARAM_NONE:
            break;
        case RPC_PARAM_BYTES:
            assert_memory_equal(m->pParameter, iv16, 16);
            break;
        case RPC_PARAM_RSA_PSS: {
            const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;
            assert_int_equal(p->hashAlg, CKM_SHA256);
            assert_int_equal(p->mgf, CKG_MGF1_SHA256);
            assert_int_equal(p->sLen, 32);
            break;
        }
        case RPC_PARAM_RSA_OAEP: {
            const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter, *o = mech_samples[i].pParameter;
            assert_int_equal(p->hashAlg, o->hashAlg);
            assert_int_equal(p->mgf, o->mgf);
            assert_int_equal(p->source, CKZ_DATA_SPECIFIED);
            assert_int_equal(p->ulSourceDataLen, o->ulSourceDataLen);
            if (o->ulSourceDataLen) {
                assert_memory_equal(p->pSourceData, "label", 5);
                assert_true((uint8_t *)p->pSourceData > keep.p && (uint8_t *)p->pSourceData < keep.p + keep.len);
            } else {
                assert_null(p->pSourceData);
            }
            break;
        }
        case RPC_PARAM_AES_CTR: {
            const CK_AES_CTR_PARAMS *p = m->pParameter;
            assert_int_equal(p->ulCounterBits, 128);
            assert_memory_equal(p->cb, ctr.cb, 16);
            break;
        }
        case RPC_PARAM_GCM: {
            const CK_GCM_PARAMS *p = m->pParameter;
            assert_int_equal(p->ulIvLen, 12);
            assert_memory_equal(p->pIv, iv16, 12);
            assert_int_equal(p->ulIvBits, 96);
            assert_int_equal(p->ulAADLen, 6);
            assert_memory_equal(p->pAAD, "header", 6);
            assert_int_equal(p->ulTagBits, 128);
            break;
        }
        case RPC_PARAM_ECDH1: {
            const CK_ECDH1_DERIVE_PARAMS *p = m->pParameter;
            assert_int_equal(p->kdf, CKD_NULL);
            assert_null(p->pSharedData);
            assert_int_equal(p->ulSharedDataLen, 0);
            assert_int_equal(p->ulPublicDataLen, 65);
            assert_memory_equal(p->pPublicData, point, 65);
            break;
        }
        case RPC_PARAM_EDDSA: {
            const rpc_eddsa_params *p = m->pParameter;
            assert_int_equal(p->phFlag, CK_FALSE);
            assert_int_equal(p->ulContextDataLen, 0);
            assert_null(p->pContextData);
            break;
        }
        }
        rpc_arena_free(&a);
        free(keep.p);
    }
}

/* ---- refusals ------------------------------------------------------------------------------------ */

static cf_err encode_mech(const CK_MECHANISM *m, cf_writer *w)
{
    rpc_call c = { .fn = RPC_FN_OP_INIT };
    c.arg[1].ul = HSM_OP_SIGN;
    c.arg[2].mech = *m;
    return rpc_encode_request(w, 1, &c);
}

static void test_mechanism_refusals(void **state)
{
    (void)state;
    cf_writer w = cf_writer_heap();
    /* a parameter the codec has no layout for: the mechanism is unknown, or takes none */
    CK_MECHANISM unknown = { 0x80001234UL, iv16, 16 };
    assert_int_equal(encode_mech(&unknown, &w), CF_E_MECHANISM_INVALID);
    CK_MECHANISM sha_param = { CKM_SHA256, iv16, 16 };
    assert_int_equal(encode_mech(&sha_param, &w), CF_E_MECHANISM_PARAM_INVALID);
    /* a struct of the wrong size, a NULL parameter with a length, an empty IV */
    CK_MECHANISM gcm_short = { CKM_AES_GCM, &gcm, sizeof gcm - 1 };
    assert_int_equal(encode_mech(&gcm_short, &w), CF_E_MECHANISM_PARAM_INVALID);
    CK_MECHANISM null_len = { CKM_AES_CBC, NULL, 16 };
    assert_int_equal(encode_mech(&null_len, &w), CF_E_MECHANISM_PARAM_INVALID);
    CK_MECHANISM cbc_empty = { CKM_AES_CBC, iv16, 0 };
    assert_int_equal(encode_mech(&cbc_empty, &w), CF_E_MECHANISM_PARAM_INVALID);
    /* a pointer field NULL with a length */
    CK_GCM_PARAMS bad_gcm = gcm;
    bad_gcm.pAAD = NULL;
    CK_MECHANISM gcm_null_aad = { CKM_AES_GCM, &bad_gcm, sizeof bad_gcm };
    assert_int_equal(encode_mech(&gcm_null_aad, &w), CF_E_MECHANISM_PARAM_INVALID);
    assert_int_equal(w.len, 0);   /* every refusal left the writer as it was */

    /* decoding: a layout the table does not give the mechanism, an unknown layout, or a
     * parameter for a mechanism the codec does not know */
    CK_MECHANISM cbc = { CKM_AES_CBC, iv16, 16 };
    assert_int_equal(encode_mech(&cbc, &w), CF_OK);
    frame_bytes b = take(&w);
    /* payload: fn u32, session u64, kind u8, mech type u64, layout u8 */
    size_t layout_at = RPC_HEADER_LEN + 4 + 8 + 1 + 8;
    assert_int_equal(b.p[layout_at], RPC_PARAM_BYTES);
    static const uint8_t bad_tags[] = { RPC_PARAM_GCM, RPC_PARAM_EDDSA, 8, 0xff };
    rpc_call d;
    for (size_t i = 0; i < sizeof bad_tags; i++) {
        b.p[layout_at] = bad_tags[i];
        rpc_frame f = parse_one(&b);
        rpc_arena a = RPC_ARENA_INIT;
        assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
        assert_null(a.head);
    }
    b.p[layout_at] = RPC_PARAM_BYTES;
    b.p[layout_at - 1] = 0x77;   /* mechanism type now unknown */
    rpc_frame f = parse_one(&b);
    rpc_arena a = RPC_ARENA_INIT;
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
    assert_null(a.head);
    free(b.p);
}

static void test_unknown_function(void **state)
{
    (void)state;
    cf_writer w = cf_writer_heap();
    rpc_call c = { .fn = 0 };
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_E_ARGS);
    c.fn = 1000;
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_E_ARGS);
    rpc_reply r = { .fn = 1000 };
    assert_int_equal(rpc_encode_response(&w, 1, &r), CF_E_ARGS);
    assert_int_equal(w.len, 0);

    /* a well-framed request with an unknown code: NOT_SUPPORTED (answer ERROR and carry on) */
    static uint8_t req[] = { 0, 0, 0, 13, RPC_REQUEST, 0, 0, 0, 5, 0, 0, 0x03, 0xe8, 1, 2, 3, 4 };
    frame_bytes b = { req, sizeof req };
    rpc_frame f = parse_one(&b);
    rpc_arena a = RPC_ARENA_INIT;
    rpc_call d;
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_NOT_SUPPORTED);
    assert_null(a.head);
    /* the same bytes as a response: the client never asked for it */
    req[4] = RPC_RESPONSE;
    f = parse_one(&b);
    rpc_reply rd;
    assert_int_equal(rpc_decode_response(&f, &rd, &a), CF_E_FORMAT);
    /* a request decoded as a response and the other way round */
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
    req[4] = RPC_REQUEST;
    f = parse_one(&b);
    assert_int_equal(rpc_decode_response(&f, &rd, &a), CF_E_FORMAT);
    assert_null(a.head);
}

/* Flags, kinds and counts out of range are FORMAT; nothing allocated. */
static void test_malformed_values(void **state)
{
    (void)state;
    cf_writer w = cf_writer_heap();
    rpc_call c = { .fn = RPC_FN_GET_SLOT_LIST };
    c.arg[0].ul = 1;
    c.arg[1].outbuf.present = true;
    c.arg[1].outbuf.cap = 8;
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_OK);
    frame_bytes b = take(&w);
    rpc_call d;
    rpc_arena a = RPC_ARENA_INIT;
    b.p[RPC_HEADER_LEN + 4] = 2;   /* BOOL token_present */
    rpc_frame f = parse_one(&b);
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
    b.p[RPC_HEADER_LEN + 4] = 1;
    b.p[RPC_HEADER_LEN + 5] = 2;   /* OUTBUF present */
    f = parse_one(&b);
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
    free(b.p);

    c = (rpc_call){ .fn = RPC_FN_OP_ABORT };
    c.arg[1].ul = 5;
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_E_ARGS);
    c.arg[1].ul = 4;
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_OK);
    b = take(&w);
    b.p[b.len - 1] = 5;            /* KIND */
    f = parse_one(&b);
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
    free(b.p);

    /* a template whose count exceeds the limit, or what the frame can hold */
    c = (rpc_call){ .fn = RPC_FN_FIND_OBJECTS_INIT };
    c.arg[1] = sample(RPC_T_TEMPLATE, 0, NULL);
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_OK);
    b = take(&w);
    size_t count_at = RPC_HEADER_LEN + 4 + 8;
    static const uint32_t counts[] = { 5, 1025, 0x10000, UINT32_MAX };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        b.p[count_at] = (uint8_t)(counts[i] >> 24);
        b.p[count_at + 1] = (uint8_t)(counts[i] >> 16);
        b.p[count_at + 2] = (uint8_t)(counts[i] >> 8);
        b.p[count_at + 3] = (uint8_t)counts[i];
        f = parse_one(&b);
        assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
        assert_null(a.head);
    }
    /* an attribute length past the frame; has_value 0 with a length */
    b.p[count_at + 3] = 4;
    b.p[count_at] = b.p[count_at + 1] = b.p[count_at + 2] = 0;
    size_t first_len = count_at + 4 + 8 + 1;
    b.p[first_len] = 0x7f;
    f = parse_one(&b);
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
    b.p[first_len] = 0;
    b.p[first_len - 1] = 0;
    f = parse_one(&b);
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_E_FORMAT);
    b.p[first_len - 1] = 1;
    f = parse_one(&b);
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_OK);
    rpc_arena_free(&a);
    free(b.p);

    /* a CK_ULONG all-ones travels as all-ones; a DATA with bytes cannot claim UNAVAILABLE */
    rpc_reply r = { .fn = RPC_FN_GENERATE_RANDOM, .status = CF_OK, .has_outputs = true };
    r.out[0].data.p = sig;
    r.out[0].data.len = 4;
    assert_int_equal(rpc_encode_response(&w, 1, &r), CF_OK);
    b = take(&w);
    memset(b.p + RPC_HEADER_LEN + 9, 0xff, 8);
    f = parse_one(&b);
    rpc_reply rd;
    assert_int_equal(rpc_decode_response(&f, &rd, &a), CF_E_FORMAT);
    free(b.p);
    cf_writer_free(&w);
}

static void test_limits(void **state)
{
    (void)state;
    cf_writer w = cf_writer_heap();
    /* a template over the count limit is refused when encoding, and the writer is unchanged */
    CK_ATTRIBUTE *many = calloc(RPC_MAX_TEMPLATE + 1, sizeof *many);
    assert_non_null(many);
    rpc_call c = { .fn = RPC_FN_CREATE_OBJECT };
    c.arg[1].tmpl.attrs = many;
    c.arg[1].tmpl.count = RPC_MAX_TEMPLATE;
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_OK);
    size_t len = w.len;
    c.arg[1].tmpl.count = RPC_MAX_TEMPLATE + 1;
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_E_OVERFLOW);
    assert_int_equal(w.len, len);
    /* a NULL pValue with a length in an input template is the caller's mistake */
    many[3].ulValueLen = 4;
    c.arg[1].tmpl.count = 5;
    assert_int_equal(rpc_encode_request(&w, 1, &c), CF_E_ARGS);
    assert_int_equal(w.len, len);
    free(many);

    /* the largest byte string fits a frame; a frame over the maximum is refused */
    uint8_t *big = calloc(1, RPC_MAX_FRAME + 1);
    assert_non_null(big);
    c = (rpc_call){ .fn = RPC_FN_OP_ONESHOT };
    c.arg[2].bytes.p = big;
    c.arg[2].bytes.len = RPC_MAX_DATA;
    c.arg[3].outbuf.present = true;
    c.arg[3].outbuf.cap = RPC_MAX_DATA;
    assert_int_equal(rpc_encode_request(&w, 2, &c), CF_OK);
    size_t len2 = w.len;
    c.arg[2].bytes.len = RPC_MAX_FRAME - 20;
    assert_int_equal(rpc_encode_request(&w, 3, &c), CF_E_OVERFLOW);
    assert_int_equal(w.len, len2);
    frame_bytes b = take(&w);
    cf_reader r = cf_reader_init(b.p, b.len);
    rpc_frame f;
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    assert_int_equal(rpc_frame_parse(&r, &f), CF_OK);
    rpc_call d;
    rpc_arena a = RPC_ARENA_INIT;
    assert_int_equal(rpc_decode_request(&f, &d, &a), CF_OK);
    assert_int_equal(d.arg[2].bytes.len, RPC_MAX_DATA);
    assert_true(cf_reader_done(&r));
    free(b.p);
    free(big);

    /* a fixed writer too small says how much it needs, and that much is enough */
    rpc_call s = { .fn = RPC_FN_LOGIN };
    s.arg[2].bytes.p = pin;
    s.arg[2].bytes.len = 6;
    uint8_t small[8], exact[64];
    cf_writer fw = cf_writer_fixed(small, sizeof small);
    assert_int_equal(rpc_encode_request(&fw, 1, &s), CF_E_BUFFER_TOO_SMALL);
    size_t need = fw.len;
    assert_int_equal(need, RPC_HEADER_LEN + 4 + 8 + 8 + 4 + 6);
    fw = cf_writer_fixed(exact, need);
    assert_int_equal(rpc_encode_request(&fw, 1, &s), CF_OK);
    assert_int_equal(fw.len, need);
    assert_int_equal(exact[3], need - 4);
    cf_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_function_table),
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_mech_table_covers_engine),
        cmocka_unit_test(test_frame_parse),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_error_frames),
        cmocka_unit_test(test_every_function_round_trip),
        cmocka_unit_test(test_decoded_values),
        cmocka_unit_test(test_mechanism_parameters),
        cmocka_unit_test(test_mechanism_refusals),
        cmocka_unit_test(test_unknown_function),
        cmocka_unit_test(test_malformed_values),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
