/* audit_test.c: the chained audit log (store: append, read, verify against an edit, a deletion and
 * a reorder done with raw SQL) and the engine's audit hook (the events of a token's life). */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "hsm_harness.h"
#include "store/store.h"

static const uint8_t KEY[CF_AUDIT_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* A store in a fresh directory with 10 records. */
static cf_store *ten_records(char *d)
{
    strcpy(d, "/tmp/coffer-audit-XXXXXX");
    assert_non_null(mkdtemp(d));
    cf_store *s = NULL;
    assert_int_equal(cf_store_open(d, &s), CF_OK);
    for (int i = 0; i < 10; i++) {
        char detail[32];
        snprintf(detail, sizeof detail, "app=%d result=OK", i);
        cf_audit_record r = { .time = 1000 + i, .token = 1 + i % 2, .object = i, .event = i % 3 ? "login" : "keygen",
                              .detail = detail };
        assert_int_equal(cf_store_audit_append(s, &r, KEY), CF_OK);
        assert_int_equal(r.seq, i + 1);
    }
    return s;
}

static void raw_sql(const char *d, const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/coffer.db", d);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

static void expect(cf_store *s, const uint8_t *key, cf_audit_state st, int64_t seq, uint64_t records)
{
    cf_audit_verdict v;
    assert_int_equal(cf_store_audit_verify(s, key, &v), CF_OK);
    assert_string_equal(cf_audit_state_name(v.state), cf_audit_state_name(st));
    assert_int_equal(v.first_bad_seq, seq);
    assert_int_equal(v.records, records);
}

static void finish(cf_store *s, const char *d)
{
    cf_store_close(s);
    nftw(d, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static void intact_log_verifies(void **state)
{
    char d[64];
    cf_store *s = ten_records(d);
    expect(s, KEY, CF_AUDIT_INTACT, 0, 10);
    uint8_t other[CF_AUDIT_KEY_LEN] = { 9 };
    expect(s, other, CF_AUDIT_CHANGED, 1, 10);   /* another key: nothing verifies */
    finish(s, d);
}

static cf_err count_cb(void *ctx, const cf_audit_record *r)
{
    (*(int *)ctx)++;
    assert_non_null(r->event);
    return CF_OK;
}

static void read_filters(void **state)
{
    char d[64];
    cf_store *s = ten_records(d);
    int n = 0;
    assert_int_equal(cf_store_audit_read(s, NULL, count_cb, &n), CF_OK);
    assert_int_equal(n, 10);
    cf_audit_filter f = { .since = 1002, .until = 1005, .token = -1, .object = -1 };
    n = 0;
    assert_int_equal(cf_store_audit_read(s, &f, count_cb, &n), CF_OK);
    assert_int_equal(n, 4);
    cf_audit_filter g = { .token = 2, .object = -1, .event = "keygen" };   /* seq 4 and 10: i = 3, 9 */
    n = 0;
    assert_int_equal(cf_store_audit_read(s, &g, count_cb, &n), CF_OK);
    assert_int_equal(n, 2);
    finish(s, d);
}

static void edit_is_named(void **state)
{
    char d[64];
    cf_store *s = ten_records(d);
    raw_sql(d, "UPDATE audit SET detail = 'app=4 result=PIN_INCORRECT' WHERE seq = 5");
    expect(s, KEY, CF_AUDIT_CHANGED, 5, 10);
    finish(s, d);
}

static void deletion_names_the_next(void **state)
{
    char d[64];
    cf_store *s = ten_records(d);
    raw_sql(d, "DELETE FROM audit WHERE seq = 6");
    expect(s, KEY, CF_AUDIT_REMOVED, 7, 9);
    finish(s, d);
    s = ten_records(d);
    raw_sql(d, "DELETE FROM audit WHERE seq = 1");
    expect(s, KEY, CF_AUDIT_REMOVED, 2, 9);
    finish(s, d);
}

static void swap_is_reordered(void **state)
{
    char d[64];
    cf_store *s = ten_records(d);
    raw_sql(d, "UPDATE audit SET seq = -1 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 7;"
               "UPDATE audit SET seq = 7 WHERE seq = -1");
    expect(s, KEY, CF_AUDIT_REORDERED, 3, 10);
    finish(s, d);
    s = ten_records(d);   /* neighbours */
    raw_sql(d, "UPDATE audit SET seq = -1 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 5;"
               "UPDATE audit SET seq = 5 WHERE seq = -1");
    expect(s, KEY, CF_AUDIT_REORDERED, 4, 10);
    finish(s, d);
}

static void appends_continue_the_chain(void **state)
{
    char d[64];
    cf_store *s = ten_records(d);
    cf_store_close(s);
    assert_int_equal(cf_store_open(d, &s), CF_OK);   /* the chain continues from the stored mac */
    cf_audit_record r = { .time = 2000, .event = "destroy", .detail = "" };
    assert_int_equal(cf_store_audit_append(s, &r, KEY), CF_OK);
    assert_int_equal(r.seq, 11);
    expect(s, KEY, CF_AUDIT_INTACT, 0, 11);
    finish(s, d);
}

/* ---- the engine's hook ------------------------------------------------------------------------ */

typedef struct {
    hsm_audit_event ev[64];
    int n;
} seen;

static void hook(void *ctx, const hsm_audit_event *e)
{
    seen *s = ctx;
    if (s->n < 64)
        s->ev[s->n++] = *e;
}

static int count(const seen *s, hsm_audit_type t, cf_err result)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += s->ev[i].type == t && s->ev[i].result == result;
    return n;
}

static int env_setup(void **state)
{
    return hsm_env_setup("/tmp/coffer-audit-hsm-XXXXXX", 2);
}

static void engine_reports_events(void **state)
{
    static seen s;
    memset(&s, 0, sizeof s);
    hsm_set_audit(hook, &s);
    CK_SLOT_ID slot = make_token("audited");
    assert_int_equal(count(&s, HSM_AUDIT_TOKEN_INIT, CF_OK), 1);
    assert_int_equal(count(&s, HSM_AUDIT_PIN_CHANGE, CF_OK), 1);   /* InitPIN */
    CK_SESSION_HANDLE h = user_session(slot);
    assert_true(count(&s, HSM_AUDIT_LOGIN, CF_OK) >= 1);

    CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE;
    char label[] = "signer";
    CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_TOKEN, &yes, 1 } };
    CK_ATTRIBUTE priv[] = { { CKA_TOKEN, &yes, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_LABEL, label, 6 } };
    CK_OBJECT_HANDLE pk, sk;
    assert_int_equal(hsm_generate_key_pair(h, &m, pub, 2, priv, 3, &pk, &sk), CF_OK);
    assert_int_equal(count(&s, HSM_AUDIT_KEYGEN, CF_OK), 1);
    hsm_audit_event kg = s.ev[s.n - 1];
    assert_string_equal(kg.label, "signer");
    assert_true(kg.object > 0);
    assert_int_equal(kg.slot, slot);

    CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 };
    uint8_t sig[128], msg[32] = { 0 };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hsm_op_init(h, HSM_OP_SIGN, &ecdsa, sk), CF_OK);
        CK_ULONG len = sizeof sig;
        assert_int_equal(hsm_op_oneshot(h, HSM_OP_SIGN, msg, sizeof msg, sig, &len), CF_OK);
    }
    assert_int_equal(hsm_op_init(h, HSM_OP_VERIFY, &ecdsa, pk), CF_OK);   /* public: not counted */
    hsm_op_abort(h, HSM_OP_VERIFY);
    assert_int_equal(count(&s, HSM_AUDIT_KEY_USE, CF_OK), 3);
    assert_int_equal(s.ev[s.n - 1].object, kg.object);

    CK_ATTRIBUTE newlabel = { CKA_LABEL, "renamed", 7 };
    assert_int_equal(hsm_set_attribute_value(h, sk, &newlabel, 1), CF_OK);
    assert_int_equal(count(&s, HSM_AUDIT_SET_ATTRIBUTE, CF_OK), 1);
    assert_int_equal(hsm_destroy_object(h, sk), CF_OK);
    assert_int_equal(count(&s, HSM_AUDIT_DESTROY, CF_OK), 1);
    assert_string_equal(s.ev[s.n - 1].label, "renamed");
    assert_int_equal(s.ev[s.n - 1].object, kg.object);

    /* wrong PINs until the lockout (max tries 2) */
    assert_int_equal(hsm_logout(h), CF_OK);
    const uint8_t bad[] = "wrong-pin";
    assert_int_equal(hsm_login(h, CKU_USER, bad, sizeof bad - 1), CF_E_PIN_INCORRECT);
    assert_int_equal(hsm_login(h, CKU_USER, bad, sizeof bad - 1), CF_E_PIN_LOCKED);
    assert_int_equal(count(&s, HSM_AUDIT_LOGIN, CF_E_PIN_INCORRECT), 1);
    assert_int_equal(count(&s, HSM_AUDIT_LOGIN, CF_E_PIN_LOCKED), 1);
    assert_int_equal(count(&s, HSM_AUDIT_PIN_LOCKED, CF_E_PIN_LOCKED), 1);
    assert_int_equal(hsm_login(h, CKU_USER, bad, sizeof bad - 1), CF_E_PIN_LOCKED);
    assert_int_equal(count(&s, HSM_AUDIT_PIN_LOCKED, CF_E_PIN_LOCKED), 1);   /* once */
    for (int i = 0; i < s.n; i++)
        assert_string_not_equal(hsm_audit_type_name(s.ev[i].type), "unknown");
    hsm_set_audit(NULL, NULL);
}

/* The last event of type t (fails the test when there is none). */
static const hsm_audit_event *last(const seen *s, hsm_audit_type t)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (s->ev[i].type == t)
            return &s->ev[i];
    fail_msg("no %s event", hsm_audit_type_name(t));
    return NULL;
}

/* No record carries a PIN: every byte of every event is searched, not only its strings. */
static void no_pin_in(const seen *s, const char *pin)
{
    size_t n = strlen(pin);
    for (int i = 0; i < s->n; i++) {
        const uint8_t *p = (const uint8_t *)&s->ev[i];
        for (size_t k = 0; k + n <= sizeof s->ev[i]; k++)
            assert_false(memcmp(p + k, pin, n) == 0);
    }
}

/* C_InitToken and the token deletion check the SO PIN with no session: each attempt is recorded
 * with the caller's application and the check's result, and the attempt that locks adds
 * pin_locked, so SO-PIN guesses through either call show in the log. */
static void so_pin_calls_are_audited(void **state)
{
    static seen s;
    memset(&s, 0, sizeof s);
    hsm_set_audit(hook, &s);
    static const uint8_t bad[] = "wrong-so-pin";
    CK_SLOT_ID doomed = make_token("doomed");
    assert_int_equal(hsm_delete_token_app(9, doomed, bad, sizeof bad - 1), CF_E_PIN_INCORRECT);
    const hsm_audit_event *e = last(&s, HSM_AUDIT_TOKEN_DELETE);
    assert_int_equal(e->app, 9);
    assert_int_equal(e->slot, doomed);
    assert_int_equal(e->user, CKU_SO);
    assert_int_equal(e->result, CF_E_PIN_INCORRECT);
    assert_string_equal(e->label, "doomed");
    assert_int_equal(hsm_delete_token_app(9, doomed, bad, sizeof bad - 1), CF_E_PIN_LOCKED);   /* max tries 2 */
    assert_int_equal(count(&s, HSM_AUDIT_TOKEN_DELETE, CF_E_PIN_LOCKED), 1);
    assert_int_equal(count(&s, HSM_AUDIT_PIN_LOCKED, CF_E_PIN_LOCKED), 1);
    assert_int_equal(last(&s, HSM_AUDIT_PIN_LOCKED)->app, 9);
    assert_int_equal(last(&s, HSM_AUDIT_PIN_LOCKED)->user, CKU_SO);

    CK_SLOT_ID gone = make_token("gone");
    assert_int_equal(hsm_delete_token_app(9, gone, SO, SOL), CF_OK);
    e = last(&s, HSM_AUDIT_TOKEN_DELETE);
    assert_int_equal(e->result, CF_OK);
    assert_int_equal(e->slot, gone);
    assert_string_equal(e->label, "gone");

    /* C_InitToken names its caller (cofferd passes the client's application) */
    CK_SLOT_ID again = make_token("again");
    assert_int_equal(last(&s, HSM_AUDIT_TOKEN_INIT)->app, 0);
    uint8_t l[32];
    label32(l, "renewed");
    assert_int_equal(hsm_init_token_app(7, again, bad, sizeof bad - 1, l), CF_E_PIN_INCORRECT);
    assert_int_equal(last(&s, HSM_AUDIT_TOKEN_INIT)->app, 7);
    assert_int_equal(last(&s, HSM_AUDIT_TOKEN_INIT)->result, CF_E_PIN_INCORRECT);
    assert_int_equal(hsm_init_token_app(7, again, SO, SOL, l), CF_OK);
    e = last(&s, HSM_AUDIT_TOKEN_INIT);
    assert_int_equal(e->app, 7);
    assert_int_equal(e->result, CF_OK);
    assert_string_equal(e->label, "renewed");
    no_pin_in(&s, (const char *)SO);
    no_pin_in(&s, (const char *)USER);
    no_pin_in(&s, (const char *)bad);
    hsm_set_audit(NULL, NULL);
}

static CK_OBJECT_HANDLE token_aes_key(CK_SESSION_HANDLE h, const char *label, CK_ATTRIBUTE_TYPE may)
{
    CK_MECHANISM m = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_BBOOL yes = CK_TRUE;
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[] = { { CKA_TOKEN, &yes, 1 }, { CKA_VALUE_LEN, &len, sizeof len },
                         { CKA_LABEL, (void *)label, strlen(label) }, { may, &yes, 1 } };
    CK_OBJECT_HANDLE k;
    assert_int_equal(hsm_generate_key(h, &m, t, 4, &k), CF_OK);
    return k;
}

static void ec_pair(CK_SESSION_HANDLE h, const char *label, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 } };
    CK_ATTRIBUTE st[] = { { CKA_TOKEN, &yes, 1 }, { CKA_DERIVE, &yes, 1 }, { CKA_LABEL, (void *)label, strlen(label) } };
    assert_int_equal(hsm_generate_key_pair(h, &m, pt, 1, st, 3, pub, priv), CF_OK);
}

/* C_WrapKey exports a key and C_DeriveKey makes one from a private key: both are recorded, with
 * the wrapping / base key as the event's other key. */
static void wrap_and_derive_are_audited(void **state)
{
    static seen s;
    memset(&s, 0, sizeof s);
    CK_SLOT_ID slot = make_token("keys");
    CK_SESSION_HANDLE h = user_session(slot);
    hsm_set_audit(hook, &s);
    CK_OBJECT_HANDLE kek = token_aes_key(h, "kek", CKA_WRAP);
    CK_OBJECT_HANDLE payload = token_aes_key(h, "payload", CKA_EXTRACTABLE);
    const hsm_audit_event kek_ev = s.ev[0], payload_ev = s.ev[1];

    CK_MECHANISM kw = { CKM_AES_KEY_WRAP, NULL, 0 };
    uint8_t wrapped[64];
    CK_ULONG wl = 0;
    assert_int_equal(hsm_wrap_key(h, &kw, kek, payload, NULL, &wl), CF_OK);   /* length: nothing leaves */
    assert_int_equal(count(&s, HSM_AUDIT_WRAP, CF_OK), 0);
    wl = sizeof wrapped;
    assert_int_equal(hsm_wrap_key(h, &kw, kek, payload, wrapped, &wl), CF_OK);
    assert_int_equal(count(&s, HSM_AUDIT_WRAP, CF_OK), 1);
    const hsm_audit_event *e = last(&s, HSM_AUDIT_WRAP);
    assert_int_equal(e->slot, slot);
    assert_string_equal(e->label, "payload");
    assert_int_equal(e->object, payload_ev.object);
    assert_string_equal(e->other_label, "kek");
    assert_int_equal(e->other_object, kek_ev.object);
    wl = sizeof wrapped;   /* a refused export is recorded too */
    assert_int_equal(hsm_wrap_key(h, &kw, kek, kek, wrapped, &wl), CF_E_KEY_UNEXTRACTABLE);
    assert_int_equal(count(&s, HSM_AUDIT_WRAP, CF_E_KEY_UNEXTRACTABLE), 1);

    CK_OBJECT_HANDLE apub, apriv, bpub, bpriv;
    ec_pair(h, "alice", &apub, &apriv);
    const hsm_audit_event alice_ev = *last(&s, HSM_AUDIT_KEYGEN);
    ec_pair(h, "bob", &bpub, &bpriv);
    uint8_t pb[80];
    CK_ATTRIBUTE gb = { CKA_EC_POINT, pb, sizeof pb };
    assert_int_equal(hsm_get_attribute_value(h, bpub, &gb, 1), CF_OK);
    CK_ECDH1_DERIVE_PARAMS dp = { CKD_NULL, 0, NULL, gb.ulValueLen, pb };
    CK_MECHANISM ecdh = { CKM_ECDH1_DERIVE, &dp, sizeof dp };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE dt[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &gk, sizeof gk }, { CKA_TOKEN, &yes, 1 },
                          { CKA_LABEL, "shared", 6 } };
    CK_OBJECT_HANDLE k;
    assert_int_equal(hsm_derive_key(h, &ecdh, apriv, dt, 4, &k), CF_OK);
    assert_int_equal(count(&s, HSM_AUDIT_DERIVE, CF_OK), 1);
    e = last(&s, HSM_AUDIT_DERIVE);
    assert_int_equal(e->slot, slot);
    assert_string_equal(e->label, "shared");
    assert_true(e->object > 0);
    assert_string_equal(e->other_label, "alice");
    assert_int_equal(e->other_object, alice_ev.object);
    for (int i = 0; i < s.n; i++)
        assert_string_not_equal(hsm_audit_type_name(s.ev[i].type), "unknown");
    no_pin_in(&s, (const char *)USER);
    hsm_set_audit(NULL, NULL);
}

/* A key use is recorded only for a key the session sees in its slot: inits naming another
 * application's private or session key, or a key of another slot, are refused and record nothing
 * about it (a loop of them would flood the log under the key's name); a destroy of such a handle
 * names no object. */
static void invisible_keys_are_not_recorded(void **state)
{
    (void)state;
    static seen s;
    memset(&s, 0, sizeof s);
    CK_SLOT_ID slot = make_token("owner"), other = make_token("other");
    CK_SESSION_HANDLE a1, a2, a2o;
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a1), CF_OK);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a2), CF_OK);
    assert_int_equal(hsm_open_session_app(2, other, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a2o), CF_OK);
    assert_int_equal(hsm_login(a1, CKU_USER, USER, USERL), CF_OK);
    CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 } };
    CK_ATTRIBUTE tok[] = { { CKA_TOKEN, &yes, 1 }, { CKA_LABEL, "private", 7 } };
    CK_ATTRIBUTE ses[] = { { CKA_TOKEN, &no, 1 }, { CKA_PRIVATE, &no, 1 }, { CKA_LABEL, "session", 7 } };
    CK_OBJECT_HANDLE pk, tk, spk, sk;
    assert_int_equal(hsm_generate_key_pair(a1, &gen, pub, 1, tok, 2, &pk, &tk), CF_OK);
    assert_int_equal(hsm_generate_key_pair(a1, &gen, pub, 1, ses, 3, &spk, &sk), CF_OK);
    hsm_set_audit(hook, &s);

    CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hsm_op_init(a2, HSM_OP_SIGN, &ecdsa, tk), CF_E_KEY_HANDLE_INVALID);   /* logged out */
        assert_int_equal(hsm_op_init(a2, HSM_OP_SIGN, &ecdsa, sk), CF_E_KEY_HANDLE_INVALID);   /* app 1's */
        assert_int_equal(hsm_op_init(a2o, HSM_OP_SIGN, &ecdsa, sk), CF_E_KEY_HANDLE_INVALID);  /* other slot */
    }
    assert_int_equal(hsm_login(a2, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_op_init(a2, HSM_OP_SIGN, &ecdsa, sk), CF_E_KEY_HANDLE_INVALID);
    assert_int_equal(hsm_op_init(a2o, HSM_OP_SIGN, &ecdsa, tk), CF_E_KEY_HANDLE_INVALID);
    assert_int_equal(hsm_destroy_object(a2, sk), CF_E_OBJECT_HANDLE_INVALID);
    int destroys = 0;
    for (int i = 0; i < s.n; i++) {
        assert_int_not_equal(s.ev[i].type, HSM_AUDIT_KEY_USE);
        assert_string_equal(s.ev[i].label, "");
        assert_int_equal(s.ev[i].object, 0);
        destroys += s.ev[i].type == HSM_AUDIT_DESTROY;
    }
    assert_int_equal(destroys, 1);
    /* the owner's uses are recorded, under its key */
    assert_int_equal(hsm_op_init(a1, HSM_OP_SIGN, &ecdsa, tk), CF_OK);
    hsm_op_abort(a1, HSM_OP_SIGN);
    assert_int_equal(count(&s, HSM_AUDIT_KEY_USE, CF_OK), 1);
    assert_string_equal(s.ev[s.n - 1].label, "private");
    assert_true(s.ev[s.n - 1].object > 0);
    hsm_set_audit(NULL, NULL);
    hsm_app_end(1);
    hsm_app_end(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(intact_log_verifies),
        cmocka_unit_test(read_filters),
        cmocka_unit_test(edit_is_named),
        cmocka_unit_test(deletion_names_the_next),
        cmocka_unit_test(swap_is_reordered),
        cmocka_unit_test(appends_continue_the_chain),
        cmocka_unit_test_setup_teardown(engine_reports_events, env_setup, teardown),
        cmocka_unit_test_setup_teardown(so_pin_calls_are_audited, env_setup, teardown),
        cmocka_unit_test_setup_teardown(wrap_and_derive_are_audited, env_setup, teardown),
        cmocka_unit_test_setup_teardown(invisible_keys_are_not_recorded, env_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
