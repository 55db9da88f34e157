/* daemon_test.c: cofferd's parts without a real engine: the framing decoders, the [tpm.NAME]
 * configuration, the master key, sealed state, and both protocols end to end over socket pairs
 * and over a running server, against a stub engine defined below.
 *
 * The daemon is an executable, so its files (all but main.c) are compiled into this test. The
 * stub defines every function of tpm/tpm.h, so nothing of the real engine library is linked in. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/conn.c"
#include "daemon/framing.c"
#include "daemon/instance.c"
#include "daemon/server.c"
#include "daemon/statekey.c"

/* ---- stub engine ------------------------------------------------------------------------------ */
/* tpm_execute answers a 16-byte response: TPM_ST_NO_SESSIONS, size 16, rc 0, then the locality,
 * a counter of executed commands (u16), and the last three bytes of the command code. Every
 * command persists the counter, so state survives a reopen. */
struct tpm_instance {
    char name[64];
    bool powered, established, cancel, nv;
    unsigned resets, delete_volatile, power_ons;
    uint32_t count;
    tpm_persist_fn persist;
    void *ctx;
};

static bool stub_refuse_state;

cf_err tpm_instance_new(const char *name, const uint8_t *state, size_t len, tpm_persist_fn persist,
                        void *persist_ctx, tpm_instance **out)
{
    if (state && (len != 4 || stub_refuse_state))
        return CF_E_FORMAT;
    tpm_instance *t = calloc(1, sizeof *t);
    if (!t)
        return CF_E_NOMEM;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->persist = persist;
    t->ctx = persist_ctx;
    t->established = true;
    if (state)
        t->count = (uint32_t)state[0] << 24 | (uint32_t)state[1] << 16 | (uint32_t)state[2] << 8 | state[3];
    *out = t;
    return CF_OK;
}
void tpm_instance_free(tpm_instance *t) { free(t); }
const char *tpm_instance_name(const tpm_instance *t) { return t->name; }
void tpm_power_on(tpm_instance *t)
{
    if (!t->powered)
        t->power_ons++;
    t->powered = true;
}
void tpm_power_off(tpm_instance *t) { t->powered = false; }
bool tpm_is_powered(const tpm_instance *t) { return t->powered; }
void tpm_nv_on(tpm_instance *t) { t->nv = true; }
void tpm_nv_off(tpm_instance *t) { t->nv = false; }
void tpm_cancel(tpm_instance *t, bool on) { t->cancel = on; }
void tpm_reset(tpm_instance *t) { t->resets++; }
void tpm_delete_volatile(tpm_instance *t) { t->delete_volatile++; }
bool tpm_established(const tpm_instance *t) { return t->established; }
void tpm_reset_established(tpm_instance *t) { t->established = false; }
size_t tpm_execute(tpm_instance *t, uint8_t locality, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap)
{
    assert_true(cap >= 16);
    t->count++;
    uint8_t st[4] = { (uint8_t)(t->count >> 24), (uint8_t)(t->count >> 16), (uint8_t)(t->count >> 8), (uint8_t)t->count };
    t->persist(t->ctx, st, sizeof st);
    uint8_t r[16] = { 0x80, 0x01, 0, 0, 0, 16, 0, 0, 0, 0, locality, (uint8_t)(t->count >> 8), (uint8_t)t->count,
                      len >= 10 ? cmd[7] : 0, len >= 10 ? cmd[8] : 0, len >= 10 ? cmd[9] : 0 };
    memcpy(resp, r, sizeof r);
    return sizeof r;
}

/* ---- helpers ----------------------------------------------------------------------------------- */
static const uint8_t getrandom_cmd[12] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 16 };

static size_t put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
    return 4;
}
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/coffer-daemon-test.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}
static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- framing ----------------------------------------------------------------------------------- */
/* Every strict prefix of a frame asks for more (the decoder never reads past len), the whole frame
 * decodes, and (unless the frame's length varies with what arrived) extra bytes are left alone. */
static void check_prefixes_only(cfd_proto proto, const uint8_t *frame_bytes, size_t n, bool extra)
{
    cfd_frame f;
    for (size_t i = 0; i < n; i++) {
        uint8_t *copy = malloc(i ? i : 1); /* exact-size copy: ASan catches any over-read */
        memcpy(copy, frame_bytes, i);
        assert_int_equal(cfd_decode(proto, copy, i, &f), CFD_NEED);
        assert_true(f.need > i);
        free(copy);
    }
    uint8_t more[CFD_MAX_FRAME + 8];
    memcpy(more, frame_bytes, n);
    memset(more + n, 0xEE, 8);
    assert_int_equal(cfd_decode(proto, more, extra ? n + 8 : n, &f), CFD_FRAME);
    assert_int_equal(f.consumed, n);
}

static void check_prefixes(cfd_proto proto, const uint8_t *frame_bytes, size_t n)
{
    check_prefixes_only(proto, frame_bytes, n, true);
}

static void test_mssim_send_command_frame(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n = put32(b, MSSIM_SEND_COMMAND);
    b[n++] = 3;
    n += put32(b + n, sizeof getrandom_cmd);
    memcpy(b + n, getrandom_cmd, sizeof getrandom_cmd);
    n += sizeof getrandom_cmd;
    check_prefixes(CFD_MSSIM_COMMAND, b, n);
    cfd_frame f;
    assert_int_equal(cfd_decode(CFD_MSSIM_COMMAND, b, n, &f), CFD_FRAME);
    assert_int_equal(f.cmd, MSSIM_SEND_COMMAND);
    assert_int_equal(f.locality, 3);
    assert_int_equal(f.body_len, sizeof getrandom_cmd);
    assert_memory_equal(f.body, getrandom_cmd, sizeof getrandom_cmd);
}

static void test_mssim_oversized_closes(void **state)
{
    (void)state;
    uint8_t b[9];
    put32(b, MSSIM_SEND_COMMAND);
    b[4] = 0;
    cfd_frame f;
    put32(b + 5, TPM_MAX_COMMAND_SIZE + 1);
    assert_int_equal(cfd_decode(CFD_MSSIM_COMMAND, b, sizeof b, &f), CFD_CLOSE);
    assert_non_null(f.why);
    put32(b + 5, 0xFFFFFFFFu);
    assert_int_equal(cfd_decode(CFD_MSSIM_COMMAND, b, sizeof b, &f), CFD_CLOSE);
    put32(b + 5, TPM_MAX_COMMAND_SIZE); /* the largest allowed: waits for it */
    assert_int_equal(cfd_decode(CFD_MSSIM_COMMAND, b, sizeof b, &f), CFD_NEED);
    assert_int_equal(f.need, 9 + TPM_MAX_COMMAND_SIZE);
}

static void test_mssim_handshake_and_others(void **state)
{
    (void)state;
    uint8_t b[8];
    cfd_frame f;
    put32(b, MSSIM_REMOTE_HANDSHAKE);
    put32(b + 4, 1);
    check_prefixes(CFD_MSSIM_COMMAND, b, 8);
    assert_int_equal(cfd_decode(CFD_MSSIM_COMMAND, b, 8, &f), CFD_FRAME);
    assert_int_equal(f.arg, 1);
    put32(b + 4, 0);
    assert_int_equal(cfd_decode(CFD_MSSIM_COMMAND, b, 8, &f), CFD_CLOSE);
    put32(b, MSSIM_SESSION_END);
    check_prefixes(CFD_MSSIM_COMMAND, b, 4);
    put32(b, 0x12345678); /* unknown: a frame of its code alone, for the caller to refuse */
    assert_int_equal(cfd_decode(CFD_MSSIM_COMMAND, b, 8, &f), CFD_FRAME);
    assert_int_equal(f.consumed, 4);
    put32(b, MSSIM_POWER_ON);
    check_prefixes(CFD_MSSIM_PLATFORM, b, 4);
    put32(b, MSSIM_ACT_GET_SIGNALED);
    put32(b + 4, 7);
    check_prefixes(CFD_MSSIM_PLATFORM, b, 8);
}

static void test_swtpm_data_frame(void **state)
{
    (void)state;
    check_prefixes(CFD_SWTPM_DATA, getrandom_cmd, sizeof getrandom_cmd);
    cfd_frame f;
    uint8_t b[10] = { 0x80, 0x01, 0, 0, 0, 9, 0, 0, 1, 0x7B };
    assert_int_equal(cfd_decode(CFD_SWTPM_DATA, b, sizeof b, &f), CFD_CLOSE); /* size < header */
    put32(b + 2, TPM_MAX_COMMAND_SIZE + 1);
    assert_int_equal(cfd_decode(CFD_SWTPM_DATA, b, sizeof b, &f), CFD_CLOSE);
    put32(b + 2, 10); /* a header alone is a frame */
    assert_int_equal(cfd_decode(CFD_SWTPM_DATA, b, sizeof b, &f), CFD_FRAME);
    assert_int_equal(f.body_len, 10);
}

static void test_swtpm_ctrl_frames(void **state)
{
    (void)state;
    uint8_t b[32];
    cfd_frame f;
    /* SET_LOCALITY: tpm2-tss sends one byte, QEMU the 4-byte union: both are one message */
    put32(b, SWTPM_SET_LOCALITY);
    b[4] = 2;
    check_prefixes_only(CFD_SWTPM_CTRL, b, 5, false);
    assert_int_equal(cfd_decode(CFD_SWTPM_CTRL, b, 5, &f), CFD_FRAME);
    assert_int_equal(f.locality, 2);
    memset(b + 5, 0, 3);
    assert_int_equal(cfd_decode(CFD_SWTPM_CTRL, b, 8, &f), CFD_FRAME);
    assert_int_equal(f.consumed, 8);
    put32(b, SWTPM_INIT);
    put32(b + 4, PTM_INIT_FLAG_DELETE_VOLATILE);
    check_prefixes(CFD_SWTPM_CTRL, b, 8);
    assert_int_equal(cfd_decode(CFD_SWTPM_CTRL, b, 8, &f), CFD_FRAME);
    assert_int_equal(f.arg, PTM_INIT_FLAG_DELETE_VOLATILE);
    put32(b, SWTPM_GET_INFO);
    memset(b + 4, 0, 16);
    b[11] = 3;
    b[15] = 5;
    check_prefixes(CFD_SWTPM_CTRL, b, 20);
    assert_int_equal(cfd_decode(CFD_SWTPM_CTRL, b, 20, &f), CFD_FRAME);
    assert_int_equal(f.arg64, 3);
    assert_int_equal(f.offset, 5);
    put32(b, SWTPM_HASH_DATA);
    put32(b + 4, 3);
    check_prefixes(CFD_SWTPM_CTRL, b, 11);
    put32(b + 4, TPM_MAX_COMMAND_SIZE + 1);
    assert_int_equal(cfd_decode(CFD_SWTPM_CTRL, b, 8, &f), CFD_CLOSE);
    put32(b, SWTPM_SET_STATEBLOB);
    put32(b + 12, 0x7FFFFFFF);
    assert_int_equal(cfd_decode(CFD_SWTPM_CTRL, b, 16, &f), CFD_CLOSE);
    put32(b, SWTPM_GET_CAPABILITY);
    check_prefixes(CFD_SWTPM_CTRL, b, 4);
}

/* ---- configuration ---------------------------------------------------------------------------- */
static cf_err load(cf_config *c, const char *text, char *err, size_t errlen)
{
    cf_config_defaults(c);
    err[0] = 0;
    return cf_config_load_string(c, text, "/etc/coffer/test.conf", err, errlen);
}

static void test_config_tpm_sections(void **state)
{
    (void)state;
    static cf_config c;
    char err[512];
    assert_int_equal(load(&c,
        "[store]\ndir = /tmp/x\n"
        "[tpm.default]\nmssim = 127.0.0.1:2321\nswtpm = 127.0.0.1:2331\n"
        "[tpm.vm-2]\nswtpm = unix:run/vm2.sock\n"
        "[tpm.v6]\nmssim = [::1]:4000\n"
        "[daemon]\nanything = 1\n[client]\nserver = unix:run/hsm.sock\n", err, sizeof err), CF_OK);
    assert_int_equal(c.client_server.kind, CF_LISTEN_UNIX);
    assert_string_equal(c.client_server.path, "/etc/coffer/run/hsm.sock"); /* relative to the file */
    assert_int_equal(c.n_tpm, 3);
    assert_string_equal(c.tpm[0].name, "default");
    assert_int_equal(c.tpm[0].mssim.kind, CF_LISTEN_TCP);
    assert_string_equal(c.tpm[0].mssim.host, "127.0.0.1");
    assert_int_equal(c.tpm[0].mssim.port, 2321);
    assert_int_equal(c.tpm[0].swtpm.port, 2331);
    assert_int_equal(c.tpm[1].mssim.kind, CF_LISTEN_NONE);
    assert_int_equal(c.tpm[1].swtpm.kind, CF_LISTEN_UNIX);
    assert_string_equal(c.tpm[1].swtpm.path, "/etc/coffer/run/vm2.sock"); /* relative to the file */
    assert_string_equal(c.tpm[2].mssim.host, "::1");
    assert_int_equal(c.tpm[2].mssim.port, 4000);
}

static void expect_error(const char *text, const char *want)
{
    static cf_config c;
    char err[512];
    assert_int_equal(load(&c, text, err, sizeof err), CF_E_CONFIG);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_config_tpm_errors(void **state)
{
    (void)state;
    expect_error("[tpm.a]\nmssim = 127.0.0.1\n", "/etc/coffer/test.conf:2: [tpm.a] mssim: expected HOST:PORT");
    expect_error("[client]\nserver = 127.0.0.1:2321\n", "test.conf:2: [client] server: expected unix:PATH");
    expect_error("[client]\nserver = unix:\n", "[client] server: the socket path after unix: is empty");
    expect_error("[client]\nserver = unix:/a\nserver = unix:/b\n", "[client] server: set twice");
    expect_error("[tpm.a]\n\nmssim = 127.0.0.1:0\n", "test.conf:3: [tpm.a] mssim: expected a port in 1..65534");
    expect_error("[tpm.a]\nmssim = 127.0.0.1:65535\n", "test.conf:2: [tpm.a] mssim: expected a port");
    expect_error("[tpm.a]\nmssim = 127.0.0.1:23x\n", "test.conf:2: [tpm.a] mssim: expected a port");
    expect_error("[tpm.a]\nmssim = :2321\n", "test.conf:2: [tpm.a] mssim: the host is empty");
    expect_error("[tpm.a]\nmssim = ::1:2321\n", "test.conf:2: [tpm.a] mssim: an IPv6 address needs brackets");
    expect_error("[tpm.a]\nmssim = unix:/tmp/s\n", "test.conf:2: [tpm.a] mssim: a Unix socket is not possible here");
    expect_error("[tpm.a]\nswtpm = unix:\n", "test.conf:2: [tpm.a] swtpm: the socket path after unix: is empty");
    expect_error("[tpm.a]\nswtpm = unix:/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                 "test.conf:2: [tpm.a] swtpm: the socket path is too long");
    expect_error("[tpm.a]\nmssim = 127.0.0.1:2321\nmssim = 127.0.0.1:2400\n", "test.conf:3: [tpm.a] mssim: set twice");
    expect_error("[tpm.a]\nport = 1\n", "test.conf:2: [tpm.a] port: unknown key");
    expect_error("[tpm.a b]\nmssim = 127.0.0.1:2321\n", "test.conf:2: [tpm.a b] mssim: the instance name");
    expect_error("[tpm.]\nmssim = 127.0.0.1:2321\n", "test.conf:2: [tpm.] mssim: the instance name");
    expect_error("[tpm.a]\nmssim = 127.0.0.1:2321\n[tpm.b]\nswtpm = 127.0.0.1:2322\n",
                 "[tpm.b] swtpm overlaps [tpm.a] mssim");
    char many[4096] = "";
    for (int i = 0; i <= CF_TPM_MAX; i++) {
        char sec[64];
        snprintf(sec, sizeof sec, "[tpm.t%d]\nmssim = 127.0.0.1:%d\n", i, 3000 + 2 * i);
        strcat(many, sec);
    }
    expect_error(many, "test.conf:34: [tpm.t16] mssim: too many TPM instances (at most 16)");
}

static void test_config_file_error_names_file_and_line(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/bad.conf", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[store]\ndir = s\n\n[tpm.x]\nswtpm = localhost:99999\n", f);
    fclose(f);
    static cf_config c;
    char err[512], want[256];
    cf_config_defaults(&c);
    assert_int_equal(cf_config_load_file(&c, path, err, sizeof err), CF_E_CONFIG);
    snprintf(want, sizeof want, "%s:5: [tpm.x] swtpm: expected a port", path);
    assert_non_null(strstr(err, want));
}

/* ---- master key and sealed state ----------------------------------------------------------- */
static void test_master_key_created_then_loaded(void **state)
{
    (void)state;
    char dir[128], path[160], err[512];
    snprintf(dir, sizeof dir, "%s/mk1", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/master.key", dir);
    uint8_t k1[32], k2[32];
    bool created;
    assert_int_equal(cf_master_key_load(dir, false, k1, &created, err, sizeof err), CF_E_NOT_FOUND);
    assert_non_null(strstr(err, "is missing"));
    assert_int_equal(cf_master_key_load(dir, true, k1, &created, err, sizeof err), CF_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(cf_master_key_load(dir, true, k2, &created, err, sizeof err), CF_OK);
    assert_false(created);
    assert_memory_equal(k1, k2, 32);

    assert_int_equal(chmod(path, 0640), 0); /* group-readable: refused */
    assert_int_equal(cf_master_key_load(dir, true, k2, &created, err, sizeof err), CF_E_CONFIG);
    assert_non_null(strstr(err, "group/other permissions (mode 0640)"));
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(cf_master_key_load(dir, true, k2, &created, err, sizeof err), CF_E_CONFIG);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(truncate(path, 31), 0); /* wrong size: refused, not replaced */
    assert_int_equal(cf_master_key_load(dir, true, k2, &created, err, sizeof err), CF_E_CONFIG);
    assert_non_null(strstr(err, "must be 32 bytes"));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 31);
}

static void test_seal_round_trip_and_tamper(void **state)
{
    (void)state;
    uint8_t key[32], other[32];
    memset(key, 0x11, sizeof key);
    memset(other, 0x22, sizeof other);
    const uint8_t blob[] = "the state of a TPM: seeds, proofs, NV";
    uint8_t *sealed, *opened;
    size_t sealed_len, opened_len;
    assert_int_equal(cf_state_seal(key, "vm1", blob, sizeof blob, &sealed, &sealed_len), CF_OK);
    assert_int_equal(sealed_len, 12 + sizeof blob + 16);
    assert_null(memmem(sealed, sealed_len, "seeds", 5)); /* no plaintext */
    assert_int_equal(cf_state_open(key, "vm1", sealed, sealed_len, &opened, &opened_len), CF_OK);
    assert_int_equal(opened_len, sizeof blob);
    assert_memory_equal(opened, blob, sizeof blob);
    cf_free_wiped(opened, opened_len);
    /* two seals of the same blob differ (random IV) */
    uint8_t *sealed2;
    size_t sealed2_len;
    assert_int_equal(cf_state_seal(key, "vm1", blob, sizeof blob, &sealed2, &sealed2_len), CF_OK);
    assert_memory_not_equal(sealed, sealed2, 12);
    free(sealed2);
    /* another instance's name, another key, any flipped bit, a truncation: refused */
    assert_int_equal(cf_state_open(key, "vm2", sealed, sealed_len, &opened, &opened_len), CF_E_STORE_CORRUPT);
    assert_int_equal(cf_state_open(other, "vm1", sealed, sealed_len, &opened, &opened_len), CF_E_STORE_CORRUPT);
    for (size_t i = 0; i < sealed_len; i++) {
        sealed[i] ^= 0x01;
        assert_int_equal(cf_state_open(key, "vm1", sealed, sealed_len, &opened, &opened_len), CF_E_STORE_CORRUPT);
        sealed[i] ^= 0x01;
    }
    for (size_t n = 0; n < sealed_len; n++)
        assert_int_equal(cf_state_open(key, "vm1", sealed, n, &opened, &opened_len), CF_E_STORE_CORRUPT);
    free(sealed);
}

/* An instance's state goes to the store sealed, comes back on reopen, and a tampered one stops the
 * instance rather than giving a fresh TPM. */
static void test_instance_state_persists_and_tamper_refused(void **state)
{
    (void)state;
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/store1", tmpdir);
    cf_store *store;
    assert_int_equal(cf_store_open(dir, &store), CF_OK);
    uint8_t key[32];
    memset(key, 0x5A, sizeof key);
    cofferd_instance in;
    assert_int_equal(cofferd_instance_open(&in, "t1", store, key, err, sizeof err), CF_OK);
    assert_true(tpm_is_powered(in.tpm));
    uint8_t resp[TPM_MAX_RESPONSE_SIZE];
    for (int i = 0; i < 3; i++)
        tpm_execute(in.tpm, 0, getrandom_cmd, sizeof getrandom_cmd, resp, sizeof resp);
    cofferd_instance_close(&in);

    uint8_t *blob;
    size_t len;
    assert_int_equal(cf_store_tpm_get(store, "t1", &blob, &len), CF_OK);
    assert_int_equal(len, 12 + 4 + 16);
    assert_int_equal(cofferd_instance_open(&in, "t1", store, key, err, sizeof err), CF_OK);
    assert_int_equal(in.tpm->count, 3);
    cofferd_instance_close(&in);

    blob[20] ^= 0x80;
    assert_int_equal(cf_store_tpm_put(store, "t1", blob, len), CF_OK);
    assert_int_equal(cofferd_instance_open(&in, "t1", store, key, err, sizeof err), CF_E_STORE_CORRUPT);
    assert_non_null(strstr(err, "does not open under this master key"));
    blob[20] ^= 0x80;
    assert_int_equal(cf_store_tpm_put(store, "t1", blob, len), CF_OK);
    uint8_t key2[32];
    memset(key2, 0x5B, sizeof key2);
    assert_int_equal(cofferd_instance_open(&in, "t1", store, key2, err, sizeof err), CF_E_STORE_CORRUPT);
    stub_refuse_state = true; /* the engine's own refusal also stops the instance */
    assert_int_equal(cofferd_instance_open(&in, "t1", store, key, err, sizeof err), CF_E_FORMAT);
    assert_non_null(strstr(err, "the engine refused its state"));
    stub_refuse_state = false;
    free(blob);
    cf_store_close(store);
}

/* ---- protocols over a socket pair --------------------------------------------------------------- */
typedef struct {
    cofferd_instance *in;
    cfd_proto proto;
    int fd;
} serve_arg;

static void *serve_thread(void *p)
{
    serve_arg *a = p;
    cofferd_serve(a->in, a->proto, a->fd);
    close(a->fd);
    return NULL;
}

typedef struct {
    pthread_t th;
    serve_arg arg;
    int client;
} session;

static void open_session(session *s, cofferd_instance *in, cfd_proto proto)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s->arg = (serve_arg){ in, proto, sv[1] };
    s->client = sv[0];
    assert_int_equal(pthread_create(&s->th, NULL, serve_thread, &s->arg), 0);
}

static void close_session(session *s)
{
    close(s->client);
    pthread_join(s->th, NULL);
}

static void send_exact(int fd, const void *p, size_t n) { assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n); }

static void recv_exact(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, (uint8_t *)p + got, n - got, 0);
        assert_true(k > 0);
        got += (size_t)k;
    }
}

static void expect_eof(int fd)
{
    uint8_t b;
    assert_int_equal(recv(fd, &b, 1, 0), 0);
}

static uint32_t recv_u32(int fd)
{
    uint8_t b[4];
    recv_exact(fd, b, 4);
    return get32(b);
}

static void send_u32(int fd, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    send_exact(fd, b, 4);
}

static void open_instance(cofferd_instance *in, cf_store **store, const char *sub)
{
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    assert_int_equal(cf_store_open(dir, store), CF_OK);
    static uint8_t key[32];
    memset(key, 0x33, sizeof key);
    assert_int_equal(cofferd_instance_open(in, "p", *store, key, err, sizeof err), CF_OK);
}

static void test_mssim_protocol(void **state)
{
    (void)state;
    cofferd_instance in;
    cf_store *store;
    open_instance(&in, &store, "mssim");
    tpm_power_off(in.tpm);

    session plat;
    open_session(&plat, &in, CFD_MSSIM_PLATFORM);
    send_u32(plat.client, MSSIM_POWER_ON);
    assert_int_equal(recv_u32(plat.client), 0);
    send_u32(plat.client, MSSIM_POWER_ON); /* a repeat is a no-op */
    assert_int_equal(recv_u32(plat.client), 0);
    send_u32(plat.client, MSSIM_NV_ON);
    assert_int_equal(recv_u32(plat.client), 0);
    assert_true(in.tpm->powered && in.tpm->nv);
    assert_int_equal(in.tpm->power_ons, 2); /* one at open, one after the power-off above */
    send_u32(plat.client, MSSIM_RESET);
    assert_int_equal(recv_u32(plat.client), 0);
    send_u32(plat.client, MSSIM_RESTART);
    assert_int_equal(recv_u32(plat.client), 0);
    assert_int_equal(in.tpm->resets, 2);
    send_u32(plat.client, MSSIM_CANCEL_ON);
    assert_int_equal(recv_u32(plat.client), 0);
    assert_true(in.tpm->cancel);
    send_u32(plat.client, MSSIM_CANCEL_OFF);
    assert_int_equal(recv_u32(plat.client), 0);
    assert_false(in.tpm->cancel);

    session cmd;
    open_session(&cmd, &in, CFD_MSSIM_COMMAND);
    uint8_t b[64];
    size_t n = put32(b, MSSIM_REMOTE_HANDSHAKE);
    n += put32(b + n, 1);
    send_exact(cmd.client, b, n);
    assert_int_equal(recv_u32(cmd.client), MSSIM_SERVER_VERSION);
    assert_int_equal(recv_u32(cmd.client), MSSIM_ENDPOINT_INFO);
    assert_int_equal(recv_u32(cmd.client), 0);
    for (uint8_t loc = 0; loc < 3; loc++) {
        n = put32(b, MSSIM_SEND_COMMAND);
        b[n++] = loc;
        n += put32(b + n, sizeof getrandom_cmd);
        memcpy(b + n, getrandom_cmd, sizeof getrandom_cmd);
        n += sizeof getrandom_cmd;
        send_exact(cmd.client, b, n);
        assert_int_equal(recv_u32(cmd.client), 16);
        uint8_t r[16];
        recv_exact(cmd.client, r, 16);
        assert_int_equal(r[10], loc);
        assert_int_equal(r[15], 0x7B);
        assert_int_equal(recv_u32(cmd.client), 0); /* the trailing acknowledgement */
    }
    send_u32(cmd.client, MSSIM_SESSION_END);
    expect_eof(cmd.client);
    close_session(&cmd);

    /* an oversized command closes the connection without reaching the engine */
    open_session(&cmd, &in, CFD_MSSIM_COMMAND);
    uint32_t before = in.tpm->count;
    n = put32(b, MSSIM_SEND_COMMAND);
    b[n++] = 0;
    n += put32(b + n, TPM_MAX_COMMAND_SIZE + 1);
    send_exact(cmd.client, b, n);
    expect_eof(cmd.client);
    assert_int_equal(in.tpm->count, before);
    close_session(&cmd);

    /* unknown platform command: answered 1, then closed (as the reference simulator) */
    send_u32(plat.client, 77);
    assert_int_equal(recv_u32(plat.client), 1);
    expect_eof(plat.client);
    close_session(&plat);
    cofferd_instance_close(&in);
    cf_store_close(store);
}

static void ctrl(int fd, const uint8_t *req, size_t n, uint8_t *resp, size_t want)
{
    send_exact(fd, req, n);
    recv_exact(fd, resp, want);
}

static void test_swtpm_protocol(void **state)
{
    (void)state;
    cofferd_instance in;
    cf_store *store;
    open_instance(&in, &store, "swtpm");
    session c;
    open_session(&c, &in, CFD_SWTPM_CTRL);
    uint8_t req[32], r[64];

    put32(req, SWTPM_GET_CAPABILITY);
    ctrl(c.client, req, 4, r, 8);
    assert_int_equal(get32(r), 0);
    assert_int_equal(get32(r + 4), COFFER_PTM_CAPS);
    assert_int_equal(COFFER_PTM_CAPS, 0x6CEF); /* exactly the implemented set */

    put32(req, SWTPM_SET_LOCALITY);
    req[4] = 3;
    ctrl(c.client, req, 5, r, 4);
    assert_int_equal(get32(r), 0);
    assert_int_equal(in.swtpm_locality, 3);
    req[4] = 5;
    ctrl(c.client, req, 5, r, 4);
    assert_int_equal(get32(r), PTM_RES_BAD_LOCALITY);
    assert_int_equal(in.swtpm_locality, 3);

    /* the data channel, one connection per command (tpm2-tss) and persistent (QEMU) */
    for (int i = 0; i < 2; i++) {
        session d;
        open_session(&d, &in, CFD_SWTPM_DATA);
        for (int j = 0; j < 1 + i * 2; j++) {
            send_exact(d.client, getrandom_cmd, sizeof getrandom_cmd);
            recv_exact(d.client, r, 16);
            assert_int_equal(get32(r + 2), 16);
            assert_int_equal(r[10], 3); /* the control channel's locality */
        }
        close_session(&d);
    }

    put32(req, SWTPM_GET_TPMESTABLISHED);
    ctrl(c.client, req, 4, r, 8);
    assert_int_equal(get32(r), 0);
    assert_int_equal(r[4], 1);
    put32(req, SWTPM_RESET_TPMESTABLISHED);
    req[4] = 0;
    ctrl(c.client, req, 5, r, 4);
    assert_int_equal(get32(r), PTM_RES_BAD_LOCALITY);
    req[4] = 3;
    ctrl(c.client, req, 5, r, 4);
    assert_int_equal(get32(r), 0);
    assert_false(in.tpm->established);

    put32(req, SWTPM_INIT);
    put32(req + 4, PTM_INIT_FLAG_DELETE_VOLATILE);
    ctrl(c.client, req, 8, r, 4);
    assert_int_equal(get32(r), 0);
    assert_int_equal(in.tpm->delete_volatile, 1);
    assert_true(in.tpm->powered);

    put32(req, SWTPM_SET_BUFFERSIZE);
    put32(req + 4, 0);
    ctrl(c.client, req, 8, r, 16);
    assert_int_equal(get32(r), 0);
    assert_int_equal(get32(r + 4), TPM_MAX_COMMAND_SIZE);
    put32(req + 4, 8192); /* while running: refused, as swtpm does */
    ctrl(c.client, req, 8, r, 4);
    assert_int_equal(get32(r), PTM_RES_BAD_ORDINAL);

    put32(req, SWTPM_GET_CONFIG);
    ctrl(c.client, req, 4, r, 8);
    assert_int_equal(get32(r), 0);

    put32(req, SWTPM_GET_INFO);
    memset(req + 4, 0, 16);
    req[11] = PTM_INFO_TPMSPECIFICATION;
    send_exact(c.client, req, 20);
    recv_exact(c.client, r, 12);
    assert_int_equal(get32(r), 0);
    uint32_t total = get32(r + 4), part = get32(r + 8);
    assert_int_equal(total, part);
    char json[256];
    assert_true(part < sizeof json);
    recv_exact(c.client, json, part);
    assert_int_equal(json[part - 1], 0);
    assert_non_null(strstr(json, "\"TPMSpecification\":{\"family\":\"2.0\""));

    put32(req, SWTPM_CANCEL_TPM_CMD);
    ctrl(c.client, req, 4, r, 4);
    assert_int_equal(get32(r), 0);
    put32(req, SWTPM_STORE_VOLATILE);
    ctrl(c.client, req, 4, r, 4);
    assert_int_equal(get32(r), 0);
    put32(req, SWTPM_HASH_START); /* not offered: refused, the connection stays */
    ctrl(c.client, req, 4, r, 4);
    assert_int_equal(get32(r), PTM_RES_BAD_ORDINAL);

    put32(req, SWTPM_STOP);
    ctrl(c.client, req, 4, r, 4);
    assert_int_equal(get32(r), 0);
    assert_false(in.tpm->powered);
    put32(req, SWTPM_GET_TPMESTABLISHED); /* not running */
    ctrl(c.client, req, 4, r, 4);
    assert_int_equal(get32(r), PTM_RES_BAD_ORDINAL);

    put32(req, 99); /* unknown: refused and closed */
    ctrl(c.client, req, 4, r, 4);
    assert_int_equal(get32(r), PTM_RES_BAD_ORDINAL);
    expect_eof(c.client);
    close_session(&c);

    open_session(&c, &in, CFD_SWTPM_CTRL);
    put32(req, SWTPM_SHUTDOWN);
    ctrl(c.client, req, 4, r, 4);
    assert_int_equal(get32(r), 0);
    expect_eof(c.client);
    close_session(&c);
    cofferd_instance_close(&in);
    cf_store_close(store);
}

/* ---- a running server ---------------------------------------------------------------------------- */
static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Two clients on one instance, a client that vanishes mid-frame, and a stop with a connection
 * still open: the stop returns, the open connection sees its end, the socket files are gone. */
static void test_server_clients_and_stop(void **state)
{
    (void)state;
    cofferd_instance in;
    cf_store *store;
    open_instance(&in, &store, "server");
    cf_tpm_config cfg = { .name = "p" };
    cfg.swtpm.kind = CF_LISTEN_UNIX;
    snprintf(cfg.swtpm.path, sizeof cfg.swtpm.path, "%s/p.sock", tmpdir);
    cofferd_instance *ins[1] = { &in };
    const cf_tpm_config *cfgs[1] = { &cfg };
    cofferd_server *srv;
    char err[512];
    assert_int_equal(cofferd_server_new(ins, cfgs, 1, &srv, err, sizeof err), CF_OK);
    assert_int_equal(cofferd_server_start(srv), CF_OK);

    int half = connect_unix(cfg.swtpm.path);
    send_exact(half, getrandom_cmd, 5); /* and never the rest */
    int persistent = connect_unix(cfg.swtpm.path);
    uint8_t r[16];
    for (int i = 0; i < 50; i++) {
        int once = connect_unix(cfg.swtpm.path);
        send_exact(once, getrandom_cmd, sizeof getrandom_cmd);
        recv_exact(once, r, 16);
        close(once);
        send_exact(persistent, getrandom_cmd, sizeof getrandom_cmd);
        recv_exact(persistent, r, 16);
    }
    close(half);
    int gone = connect_unix(cfg.swtpm.path); /* sends a command and leaves without reading */
    send_exact(gone, getrandom_cmd, sizeof getrandom_cmd);
    close(gone);
    send_exact(persistent, getrandom_cmd, sizeof getrandom_cmd);
    recv_exact(persistent, r, 16);

    char ctrl_path[160];
    snprintf(ctrl_path, sizeof ctrl_path, "%s.ctrl", cfg.swtpm.path);
    int c = connect_unix(ctrl_path);
    uint8_t req[4];
    put32(req, SWTPM_GET_CAPABILITY);
    send_exact(c, req, 4);
    recv_exact(c, r, 8);

    cofferd_server_free(srv); /* returns although two connections are open */
    expect_eof(persistent);
    expect_eof(c);
    close(persistent);
    close(c);
    struct stat st;
    assert_int_equal(stat(cfg.swtpm.path, &st), -1);
    assert_int_equal(stat(ctrl_path, &st), -1);
    cofferd_instance_close(&in);
    cf_store_close(store);
}

int main(void)
{
    cf_log_set_level(CF_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mssim_send_command_frame),
        cmocka_unit_test(test_mssim_oversized_closes),
        cmocka_unit_test(test_mssim_handshake_and_others),
        cmocka_unit_test(test_swtpm_data_frame),
        cmocka_unit_test(test_swtpm_ctrl_frames),
        cmocka_unit_test(test_config_tpm_sections),
        cmocka_unit_test(test_config_tpm_errors),
        cmocka_unit_test(test_config_file_error_names_file_and_line),
        cmocka_unit_test(test_master_key_created_then_loaded),
        cmocka_unit_test(test_seal_round_trip_and_tamper),
        cmocka_unit_test(test_instance_state_persists_and_tamper_refused),
        cmocka_unit_test(test_mssim_protocol),
        cmocka_unit_test(test_swtpm_protocol),
        cmocka_unit_test(test_server_clients_and_stop),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
