/* rpc_frame.c: libFuzzer harness for the remote-HSM wire codec (src/rpc), both sides: what the
 * daemon decodes from a client (HELLO, REQUEST) and what the module decodes from the daemon
 * (HELLO_OK, RESPONSE, ERROR).
 *
 * The input is read two ways: as a bare payload, decoded as a REQUEST and as a RESPONSE (so the
 * fuzzer reaches the argument decoders without learning the length header), and as a stream of
 * frames, each decoded as what its type says and as a request and a response. Whenever a decode
 * succeeds, re-encoding the decoded value must give back the input bytes exactly (the encoding is
 * canonical, docs/protocol.md); anything else aborts. ASan sees every read, since a decoded value
 * points into the input.
 *
 * Built with -DRPC_FRAME_CORPUS instead, this file is the seed corpus generator: it writes a few
 * frames made by the real encoder into the directory named by argv[1]:
 *   cc -DRPC_FRAME_CORPUS -D_GNU_SOURCE -Isrc -I/usr/include/p11-kit-1 tests/fuzz/rpc_frame.c \
 *      $(ls src/rpc/[a-z]*.c | grep -v -e client -e pool -e lease -e found) src/base/bytes.c src/base/error.c src/base/secmem.c -o gen \
 *      && ./gen tests/fuzz/corpus/rpc_frame */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rpc/rpc.h"

static void expect_same(const cf_writer *w, size_t skip, const uint8_t *want, size_t n)
{
    if (w->len != skip + n || memcmp(w->p + skip, want, n) != 0) {
        fprintf(stderr, "rpc_frame: re-encoding differs from the input (%zu vs %zu bytes)\n", w->len - skip, n);
        abort();
    }
}

/* Decodes f's payload as a request and as a response; checks re-encoding. */
static void as_call(const rpc_frame *in)
{
    rpc_frame f = *in;
    rpc_arena a = RPC_ARENA_INIT;
    rpc_call call;
    f.type = RPC_REQUEST;
    if (rpc_decode_request(&f, &call, &a) == CF_OK) {
        cf_writer w = cf_writer_heap();
        if (rpc_encode_request(&w, f.id, &call) != CF_OK)
            abort();
        expect_same(&w, RPC_HEADER_LEN, f.payload.p, f.payload.len);
        cf_writer_free(&w);
        rpc_arena_free(&a);
    } else if (a.head) {
        abort();   /* a failed decode left something allocated */
    }

    rpc_reply reply;
    f.type = RPC_RESPONSE;
    if (rpc_decode_response(&f, &reply, &a) == CF_OK) {
        cf_writer w = cf_writer_heap();
        if (rpc_encode_response(&w, f.id, &reply) != CF_OK)
            abort();
        expect_same(&w, RPC_HEADER_LEN, f.payload.p, f.payload.len);
        cf_writer_free(&w);
        rpc_arena_free(&a);
    } else if (a.head) {
        abort();
    }
}

static void as_typed(const rpc_frame *f, const uint8_t *frame, size_t frame_len)
{
    cf_writer w = cf_writer_heap();
    if (f->type == RPC_HELLO || f->type == RPC_HELLO_OK) {
        rpc_hello h;
        if (rpc_decode_hello(f, &h) == CF_OK) {
            char msg[200];
            /* the refusal sentence is built from peer numbers: exercise it */
            if (rpc_hello_accept(&h, msg, sizeof msg) != CF_OK && strlen(msg) == 0)
                abort();
            if (rpc_hello_ok_accept(&h, msg, sizeof msg) != CF_OK && strlen(msg) == 0)
                abort();
            if (rpc_encode_hello(&w, (rpc_frame_type)f->type, &h) != CF_OK)
                abort();
            expect_same(&w, 0, frame, frame_len);
        }
    } else if (f->type == RPC_ERROR) {
        cf_err st;
        const char *msg;
        size_t n;
        if (rpc_decode_error(f, &st, &msg, &n) == CF_OK && !memchr(msg, 0, n)) {
            char buf[RPC_MAX_MESSAGE + 1];
            memcpy(buf, msg, n);
            buf[n] = '\0';
            if (rpc_encode_error(&w, f->id, st, buf) != CF_OK)
                abort();
            expect_same(&w, 0, frame, frame_len);
        }
    }
    cf_writer_free(&w);
    as_call(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > RPC_MAX_FRAME + 64)
        return 0;
    /* a bare payload */
    rpc_frame bare = { RPC_REQUEST, 7, cf_reader_init(data, size) };
    as_call(&bare);

    /* a stream of frames */
    cf_reader r = cf_reader_init(data, size);
    for (;;) {
        size_t at = r.off;
        rpc_frame f;
        cf_err e = rpc_frame_parse(&r, &f);
        if (e != CF_OK) {
            if (r.off != at)
                abort();   /* a failed parse moved the reader */
            break;
        }
        as_typed(&f, data + at, r.off - at);
    }
    return 0;
}

#ifdef RPC_FRAME_CORPUS
static const char *dir;

static void put(const char *name, cf_writer *w, size_t skip)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(w->p + skip, 1, w->len - skip, f) != w->len - skip || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    cf_writer_free(w);
    *w = cf_writer_heap();
}

#define OK(x) do { if ((x) != CF_OK) { fprintf(stderr, "%s failed\n", #x); exit(1); } } while (0)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    cf_writer w = cf_writer_heap();
    rpc_hello h = rpc_hello_self();
    OK(rpc_encode_hello(&w, RPC_HELLO, &h));
    put("hello", &w, 0);
    rpc_hello joined = h;   /* a pool connection joining its application; HELLO_OK has the same shape */
    joined.has_token = true;
    memset(joined.token, 0x5A, sizeof joined.token);
    OK(rpc_encode_hello(&w, RPC_HELLO_OK, &joined));
    put("hello-ok-token", &w, 0);
    rpc_hello v2 = { 2, 0, h.flags, false, { 0 } };
    char msg[160];
    if (rpc_hello_accept(&v2, msg, sizeof msg) != CF_E_NOT_SUPPORTED)
        return 1;
    OK(rpc_encode_error(&w, 0, CF_E_NOT_SUPPORTED, msg));
    put("error-version", &w, 0);

    static uint8_t pin[] = "123456", iv[12] = { 1, 2, 3 }, aad[] = "aad", data[] = "data to sign";
    rpc_call c = { .fn = RPC_FN_LOGIN };
    c.arg[0].ul = 1;
    c.arg[1].ul = CKU_USER;
    c.arg[2].bytes.p = pin;
    c.arg[2].bytes.len = 6;
    OK(rpc_encode_request(&w, 1, &c));
    put("req-login", &w, 0);

    CK_GCM_PARAMS gcm = { iv, 12, 96, aad, 3, 128 };
    c = (rpc_call){ .fn = RPC_FN_OP_INIT };
    c.arg[0].ul = 1;
    c.arg[1].ul = 0;
    c.arg[2].mech = (CK_MECHANISM){ CKM_AES_GCM, &gcm, sizeof gcm };
    c.arg[3].ul = 5;
    OK(rpc_encode_request(&w, 2, &c));
    put("req-init-gcm", &w, 0);
    CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, aad, 3 };
    c.arg[2].mech = (CK_MECHANISM){ CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep };
    OK(rpc_encode_request(&w, 3, &c));
    put("req-init-oaep", &w, RPC_HEADER_LEN);   /* a bare payload */

    c = (rpc_call){ .fn = RPC_FN_OP_ONESHOT };
    c.arg[0].ul = 1;
    c.arg[1].ul = 3;
    c.arg[2].bytes.p = data;
    c.arg[2].bytes.len = sizeof data - 1;
    c.arg[3].outbuf.cap = 0;   /* NULL buffer: a length query */
    OK(rpc_encode_request(&w, 4, &c));
    put("req-sign-query", &w, 0);

    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_VERIFY, &yes, 1 } };
    CK_ATTRIBUTE priv[] = { { CKA_SIGN, &yes, 1 }, { CKA_LABEL, NULL, 0 } };
    c = (rpc_call){ .fn = RPC_FN_GENERATE_KEY_PAIR };
    c.arg[0].ul = 1;
    c.arg[1].mech = (CK_MECHANISM){ CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    c.arg[2].tmpl.attrs = pub;
    c.arg[2].tmpl.count = 2;
    c.arg[3].tmpl.attrs = priv;
    c.arg[3].tmpl.count = 2;
    OK(rpc_encode_request(&w, 5, &c));
    put("req-keypair", &w, 0);

    rpc_query_item q[] = { { CKA_LABEL, false, 0 }, { CKA_VALUE, true, 32 } };
    c = (rpc_call){ .fn = RPC_FN_GET_ATTRIBUTE_VALUE };
    c.arg[0].ul = 1;
    c.arg[1].ul = 9;
    c.arg[2].query.items = q;
    c.arg[2].query.count = 2;
    OK(rpc_encode_request(&w, 6, &c));
    put("req-getattr", &w, 0);

    CK_ATTRIBUTE got[] = { { CKA_LABEL, NULL, 5 }, { CKA_VALUE, NULL, CK_UNAVAILABLE_INFORMATION } };
    rpc_reply rp = { .fn = RPC_FN_GET_ATTRIBUTE_VALUE, .status = CF_E_ATTRIBUTE_SENSITIVE, .has_outputs = true };
    rp.out[0].tmpl.attrs = got;
    rp.out[0].tmpl.count = 2;
    OK(rpc_encode_response(&w, 6, &rp));
    put("resp-getattr", &w, 0);

    rp = (rpc_reply){ .fn = RPC_FN_OP_ONESHOT, .status = CF_OK, .has_outputs = true };
    rp.out[0].data.p = data;
    rp.out[0].data.len = 12;
    OK(rpc_encode_response(&w, 4, &rp));
    put("resp-sign", &w, RPC_HEADER_LEN);   /* a bare payload */

    /* protocol 1.2, leases: a C_Sign carrying a C_SignInit taken under a lease, and its answer
     * with the next lease */
    CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
    c = (rpc_call){ .fn = RPC_FN_OP_REARM_ONESHOT };
    c.arg[0].ul = 1;
    c.arg[1].ul = 3;
    c.arg[2].mech = (CK_MECHANISM){ CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof pss };
    c.arg[3].ul = 7;
    c.arg[4].bytes.p = data;
    c.arg[4].bytes.len = sizeof data - 1;
    c.arg[5].outbuf.present = true;
    c.arg[5].outbuf.cap = 256;
    OK(rpc_encode_request(&w, 9, &c));
    put("req-rearm-sign", &w, 0);
    rp = (rpc_reply){ .fn = RPC_FN_OP_REARM_ONESHOT, .status = CF_OK, .has_outputs = true };
    rp.out[0].data.p = data;
    rp.out[0].data.len = 12;
    rp.out[1].ul = 250;
    OK(rpc_encode_response(&w, 9, &rp));
    put("resp-sign-lease", &w, 0);

    /* protocol 1.3: a C_Verify carrying a C_VerifyInit taken under a lease, and its answer */
    c = (rpc_call){ .fn = RPC_FN_REARM_VERIFY };
    c.arg[0].ul = 1;
    c.arg[1].mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
    c.arg[2].ul = 8;
    c.arg[3].bytes.p = data;
    c.arg[3].bytes.len = 12;
    c.arg[4].bytes.p = data;
    c.arg[4].bytes.len = sizeof data - 1;
    OK(rpc_encode_request(&w, 10, &c));
    put("req-rearm-verify", &w, 0);
    rp = (rpc_reply){ .fn = RPC_FN_REARM_VERIFY, .status = CF_OK, .has_outputs = true };
    rp.out[0].ul = 250;
    OK(rpc_encode_response(&w, 10, &rp));
    put("resp-verify-lease", &w, 0);

    /* protocol 1.4: C_FindObjectsInit with the first handles of its result */
    CK_ATTRIBUTE by_label[] = { { CKA_LABEL, (void *)"key", 3 } };
    c = (rpc_call){ .fn = RPC_FN_FIND_OBJECTS_FETCH };
    c.arg[0].ul = 1;
    c.arg[1].tmpl.attrs = by_label;
    c.arg[1].tmpl.count = 1;
    c.arg[2].ul = 64;
    OK(rpc_encode_request(&w, 11, &c));
    put("req-find-fetch", &w, 0);
    CK_ULONG fetched[] = { 12, 13 };
    rp = (rpc_reply){ .fn = RPC_FN_FIND_OBJECTS_FETCH, .status = CF_OK, .has_outputs = true };
    rp.out[0].list.v = fetched;
    rp.out[0].list.count = 2;
    rp.out[1].ul = 0;
    OK(rpc_encode_response(&w, 11, &rp));
    put("resp-find-fetch", &w, 0);

    CK_ULONG handles[] = { 3, 4, 5 };
    rp = (rpc_reply){ .fn = RPC_FN_FIND_OBJECTS, .status = CF_OK, .has_outputs = true };
    rp.out[0].list.v = handles;
    rp.out[0].list.count = 3;
    OK(rpc_encode_response(&w, 7, &rp));
    rp = (rpc_reply){ .fn = RPC_FN_GET_TOKEN_INFO, .status = CF_OK, .has_outputs = true };
    memset(&rp.out[0].token_info, ' ', sizeof rp.out[0].token_info);
    rp.out[0].token_info.ulSessionCount = CK_UNAVAILABLE_INFORMATION;
    OK(rpc_encode_response(&w, 8, &rp));
    put("resp-find-then-tokeninfo", &w, 0);   /* two frames in one input */
    cf_writer_free(&w);
    return 0;
}
#endif
