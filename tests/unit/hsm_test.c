/* hsm_test.c: the token engine's behaviour through its API (src/hsm/hsm.h): permanent slot ids,
 * PIN lockout that survives restarts, session and login rules, the attribute rules of PKCS#11
 * 2.40 section 4, the output-length protocol, context-specific login, wrapping, derivation, and
 * token objects written by another process seen without re-initializing, and login state per
 * application. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "hsm/hsm.h"
#include "hsm/internal.h"   /* hsm_test_before_rewrite */
#include "hsm_harness.h"

/* A temporary directory and conf (PINs locked after 3 tries), the engine up; the rest: support/hsm_harness.h. */
static int setup(void **state)
{
    (void)state;
    return hsm_env_setup("/tmp/coffer-hsm-test-XXXXXX", 3);
}

static void slot_ids_are_permanent(void **state)
{
    (void)state;
    CK_SLOT_ID a = make_token("a");
    CK_SLOT_ID b = make_token("b");
    CK_SLOT_ID c = make_token("c");
    assert_true(a < b && b < c);
    CK_SLOT_ID f = free_slot();
    assert_true(f > c);
    /* re-initializing a keeps its id; deleting b retires b's id */
    uint8_t l[32];
    label32(l, "a2");
    assert_int_equal(hsm_init_token(a, SO, SOL, l), CF_OK);
    assert_int_equal(hsm_delete_token(b, SO, SOL), CF_OK);
    hsm_finalize();
    init_engine();
    CK_SLOT_ID s[8];
    CK_ULONG n = 8;
    assert_int_equal(hsm_get_slot_list(true, s, &n), CF_OK);
    assert_int_equal(n, 3);
    assert_int_equal(s[0], a);
    assert_int_equal(s[1], c);
    assert_int_equal(s[2], f); /* the free slot did not move either */
    CK_TOKEN_INFO ti;
    assert_int_equal(hsm_get_token_info(a, &ti), CF_OK);
    assert_memory_equal(ti.label, "a2 ", 3);
    assert_int_equal(hsm_get_token_info(b, &ti), CF_E_SLOT_ID_INVALID);
    /* length protocol of the slot list */
    n = 1;
    assert_int_equal(hsm_get_slot_list(true, s, &n), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 3);
}

static void pin_lockout_persists(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("lock");
    CK_SESSION_HANDLE s;
    CK_TOKEN_INFO ti;
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &s), CF_OK);
    assert_int_equal(hsm_login(s, CKU_USER, (const uint8_t *)"wrong", 5), CF_E_PIN_INCORRECT);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_true(ti.flags & CKF_USER_PIN_COUNT_LOW);
    assert_false(ti.flags & CKF_USER_PIN_FINAL_TRY);
    CK_ULONG left = 0;
    assert_int_equal(hsm_pin_tries_left(slot, CKU_USER, &left), CF_OK);
    assert_int_equal(left, 2);
    assert_int_equal(hsm_login(s, CKU_USER, (const uint8_t *)"wrong", 5), CF_E_PIN_INCORRECT);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_true(ti.flags & CKF_USER_PIN_FINAL_TRY);
    assert_int_equal(hsm_pin_tries_left(slot, CKU_USER, &left), CF_OK);
    assert_int_equal(left, 1);
    assert_int_equal(hsm_login(s, CKU_USER, (const uint8_t *)"wrong", 5), CF_E_PIN_LOCKED);
    assert_int_equal(hsm_login(s, CKU_USER, USER, USERL), CF_E_PIN_LOCKED);
    /* a restart does not forget */
    hsm_finalize();
    init_engine();
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_true(ti.flags & CKF_USER_PIN_LOCKED);
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &s), CF_OK);
    assert_int_equal(hsm_login(s, CKU_USER, USER, USERL), CF_E_PIN_LOCKED);
    /* the SO sets the user PIN again: unlocked */
    assert_int_equal(hsm_login(s, CKU_SO, SO, SOL), CF_OK);
    assert_int_equal(hsm_init_pin(s, USER, USERL), CF_OK);
    assert_int_equal(hsm_logout(s), CF_OK);
    assert_int_equal(hsm_login(s, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_false(ti.flags & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_COUNT_LOW));
    /* a success resets the count: two failures, a success, two failures do not lock */
    assert_int_equal(hsm_logout(s), CF_OK);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(hsm_login(s, CKU_USER, (const uint8_t *)"bad!", 4), CF_E_PIN_INCORRECT);
        assert_int_equal(hsm_login(s, CKU_USER, (const uint8_t *)"bad!", 4), CF_E_PIN_INCORRECT);
        assert_int_equal(hsm_login(s, CKU_USER, USER, USERL), CF_OK);
        assert_int_equal(hsm_logout(s), CF_OK);
    }
    /* the SO PIN locks likewise */
    for (int i = 0; i < 2; i++)
        assert_int_equal(hsm_login(s, CKU_SO, (const uint8_t *)"nope", 4), CF_E_PIN_INCORRECT);
    assert_int_equal(hsm_login(s, CKU_SO, (const uint8_t *)"nope", 4), CF_E_PIN_LOCKED);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_true(ti.flags & CKF_SO_PIN_LOCKED);
    /* PIN length policy */
    assert_int_equal(hsm_login(s, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_set_pin(s, USER, USERL, (const uint8_t *)"123", 3), CF_E_PIN_LEN_RANGE);
    assert_int_equal(hsm_set_pin(s, USER, USERL, (const uint8_t *)"new-pin", 7), CF_OK);
    assert_int_equal(hsm_logout(s), CF_OK);
    assert_int_equal(hsm_login(s, CKU_USER, USER, USERL), CF_E_PIN_INCORRECT);
    assert_int_equal(hsm_login(s, CKU_USER, (const uint8_t *)"new-pin", 7), CF_OK);
}

static void session_rules(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("sess");
    CK_SESSION_HANDLE ro, rw;
    CK_SESSION_INFO si;
    assert_int_equal(hsm_open_session(slot, 0, &ro), CF_E_SESSION_PARALLEL_NOT_SUPPORTED);
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION, &ro), CF_OK);
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &rw), CF_OK);
    assert_int_equal(hsm_get_session_info(ro, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    /* no SO login while a read-only session exists */
    assert_int_equal(hsm_login(rw, CKU_SO, SO, SOL), CF_E_SESSION_READ_ONLY_EXISTS);
    assert_int_equal(hsm_login(ro, CKU_USER, USER, USERL), CF_OK);
    /* login is per token: every session of the application sees it */
    assert_int_equal(hsm_get_session_info(rw, &si), CF_OK);
    assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);
    assert_int_equal(hsm_login(rw, CKU_USER, USER, USERL), CF_E_USER_ALREADY_LOGGED_IN);
    assert_int_equal(hsm_login(rw, CKU_SO, SO, SOL), CF_E_USER_ANOTHER_ALREADY_LOGGED_IN);
    /* a token object needs a read/write session */
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_TOKEN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
                         { CKA_VALUE, "v", 1 } };
    CK_OBJECT_HANDLE o, so;
    assert_int_equal(hsm_create_object(ro, t, 4, &o), CF_E_SESSION_READ_ONLY);
    assert_int_equal(hsm_create_object(rw, t, 4, &o), CF_OK);
    /* a session object lives as long as its session */
    assert_int_equal(hsm_create_object(ro, t, 1, &so), CF_OK);
    CK_ULONG size;
    assert_int_equal(hsm_get_object_size(rw, so, &size), CF_OK);
    assert_int_equal(hsm_close_session(ro), CF_OK);
    assert_int_equal(hsm_get_object_size(rw, so, &size), CF_E_OBJECT_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(ro, &si), CF_E_SESSION_HANDLE_INVALID);
    /* private objects vanish at logout */
    assert_int_equal(hsm_get_object_size(rw, o, &size), CF_OK);
    assert_int_equal(hsm_logout(rw), CF_OK);
    assert_int_equal(hsm_get_object_size(rw, o, &size), CF_E_OBJECT_HANDLE_INVALID);
    assert_int_equal(hsm_logout(rw), CF_E_USER_NOT_LOGGED_IN);
    /* and a public session cannot make one */
    assert_int_equal(hsm_create_object(rw, t, 4, &o), CF_E_USER_NOT_LOGGED_IN);
    /* closing the last session logs out */
    assert_int_equal(hsm_login(rw, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_close_all_sessions(slot), CF_OK);
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION, &ro), CF_OK);
    assert_int_equal(hsm_get_session_info(ro, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
}

static CK_OBJECT_HANDLE aes_key(CK_SESSION_HANDLE s, bool token, bool sensitive, bool extractable, const char *label)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL tok = token, sens = sensitive, ext = extractable;
    uint8_t value[32];
    for (int i = 0; i < 32; i++)
        value[i] = (uint8_t)i;
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
                         { CKA_TOKEN, &tok, 1 }, { CKA_SENSITIVE, &sens, 1 }, { CKA_EXTRACTABLE, &ext, 1 },
                         { CKA_LABEL, (void *)label, strlen(label) }, { CKA_VALUE, value, 32 } };
    CK_OBJECT_HANDLE h;
    assert_int_equal(hsm_create_object(s, t, 7, &h), CF_OK);
    return h;
}

static void attribute_rules(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("attrs");
    CK_SESSION_HANDLE s = user_session(slot);
    CK_OBJECT_HANDLE k = aes_key(s, true, true, false, "k");
    uint8_t buf[64];
    CK_ATTRIBUTE get[] = { { CKA_VALUE, buf, sizeof buf }, { CKA_LABEL, buf + 40, 10 } };
    /* a sensitive value is never revealed; the other attributes still are */
    assert_int_equal(hsm_get_attribute_value(s, k, get, 2), CF_E_ATTRIBUTE_SENSITIVE);
    assert_int_equal(get[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(get[1].ulValueLen, 1);
    /* unknown attribute */
    CK_ATTRIBUTE bad = { CKA_MODULUS, buf, sizeof buf };
    assert_int_equal(hsm_get_attribute_value(s, k, &bad, 1), CF_E_ATTRIBUTE_TYPE_INVALID);
    assert_int_equal(bad.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    /* short buffer: BUFFER_TOO_SMALL and the length unavailable */
    CK_ATTRIBUTE lab = { CKA_LABEL, buf, 0 };
    assert_int_equal(hsm_get_attribute_value(s, k, &lab, 1), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(lab.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    /* sticky attributes: SENSITIVE stays TRUE, EXTRACTABLE stays FALSE, by set and by copy */
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE unsens = { CKA_SENSITIVE, &f, 1 }, ext = { CKA_EXTRACTABLE, &t, 1 };
    assert_int_equal(hsm_set_attribute_value(s, k, &unsens, 1), CF_E_ATTRIBUTE_READ_ONLY);
    assert_int_equal(hsm_set_attribute_value(s, k, &ext, 1), CF_E_ATTRIBUTE_READ_ONLY);
    CK_OBJECT_HANDLE c;
    assert_int_equal(hsm_copy_object(s, k, &unsens, 1, &c), CF_E_ATTRIBUTE_READ_ONLY);
    assert_int_equal(hsm_copy_object(s, k, &ext, 1, &c), CF_E_ATTRIBUTE_READ_ONLY);
    /* read-only by nature */
    CK_ATTRIBUTE local = { CKA_LOCAL, &t, 1 };
    assert_int_equal(hsm_set_attribute_value(s, k, &local, 1), CF_E_ATTRIBUTE_READ_ONLY);
    /* a label may change; the token object keeps it across a restart */
    CK_ATTRIBUTE relabel = { CKA_LABEL, "renamed", 7 };
    assert_int_equal(hsm_set_attribute_value(s, k, &relabel, 1), CF_OK);
    /* a created key is not LOCAL and not ALWAYS_SENSITIVE */
    CK_BBOOL l = 9, as = 9, ne = 9;
    CK_ATTRIBUTE flags[] = { { CKA_LOCAL, &l, 1 }, { CKA_ALWAYS_SENSITIVE, &as, 1 }, { CKA_NEVER_EXTRACTABLE, &ne, 1 } };
    assert_int_equal(hsm_get_attribute_value(s, k, flags, 3), CF_OK);
    assert_int_equal(l, CK_FALSE);
    assert_int_equal(as, CK_FALSE);
    assert_int_equal(ne, CK_FALSE);
    /* templates */
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE noclass[] = { { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_VALUE, buf, 16 } };
    assert_int_equal(hsm_create_object(s, noclass, 2, &h), CF_E_TEMPLATE_INCOMPLETE);
    CK_ATTRIBUTE novalue[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt } };
    assert_int_equal(hsm_create_object(s, novalue, 2, &h), CF_E_TEMPLATE_INCOMPLETE);
    CK_ATTRIBUTE badlen[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
                              { CKA_VALUE, buf, 17 } };
    assert_int_equal(hsm_create_object(s, badlen, 3, &h), CF_E_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE badbool[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
                               { CKA_VALUE, buf, 16 }, { CKA_TOKEN, buf, 2 } };
    assert_int_equal(hsm_create_object(s, badbool, 4, &h), CF_E_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE wrongtype[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
                                 { CKA_VALUE, buf, 16 }, { CKA_MODULUS, buf, 16 } };
    assert_int_equal(hsm_create_object(s, wrongtype, 4, &h), CF_E_ATTRIBUTE_TYPE_INVALID);
    CK_ATTRIBUTE setlocal[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
                                { CKA_VALUE, buf, 16 }, { CKA_LOCAL, &t, 1 } };
    assert_int_equal(hsm_create_object(s, setlocal, 4, &h), CF_E_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE dup[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_CLASS, &cls, sizeof cls } };
    assert_int_equal(hsm_create_object(s, dup, 2, &h), CF_E_TEMPLATE_INCONSISTENT);
    /* MODIFIABLE, DESTROYABLE, COPYABLE */
    CK_ATTRIBUTE locked[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
                              { CKA_VALUE, buf, 16 }, { CKA_MODIFIABLE, &f, 1 }, { CKA_DESTROYABLE, &f, 1 },
                              { CKA_COPYABLE, &f, 1 } };
    assert_int_equal(hsm_create_object(s, locked, 6, &h), CF_OK);
    assert_int_equal(hsm_set_attribute_value(s, h, &relabel, 1), CF_E_ATTRIBUTE_READ_ONLY);
    assert_int_equal(hsm_destroy_object(s, h), CF_E_ACTION_PROHIBITED);
    assert_int_equal(hsm_copy_object(s, h, NULL, 0, &c), CF_E_ACTION_PROHIBITED);
    /* a generated key is LOCAL, ALWAYS_SENSITIVE, NEVER_EXTRACTABLE, with its mechanism */
    CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_ULONG len = 32;
    CK_ATTRIBUTE gt[] = { { CKA_VALUE_LEN, &len, sizeof len } };
    assert_int_equal(hsm_generate_key(s, &gen, gt, 1, &h), CF_OK);
    CK_MECHANISM_TYPE km = 0;
    CK_ATTRIBUTE gget[] = { { CKA_LOCAL, &l, 1 }, { CKA_ALWAYS_SENSITIVE, &as, 1 }, { CKA_NEVER_EXTRACTABLE, &ne, 1 },
                            { CKA_KEY_GEN_MECHANISM, &km, sizeof km } };
    assert_int_equal(hsm_get_attribute_value(s, h, gget, 4), CF_OK);
    assert_true(l == CK_TRUE && as == CK_TRUE && ne == CK_TRUE);
    assert_int_equal(km, CKM_AES_KEY_GEN);
    len = 20;
    assert_int_equal(hsm_generate_key(s, &gen, gt, 1, &h), CF_E_KEY_SIZE_RANGE);
    /* the token object persists with its attributes, and its secret still works */
    hsm_finalize();
    init_engine();
    s = user_session(slot);
    CK_ATTRIBUTE find = { CKA_LABEL, "renamed", 7 };
    CK_OBJECT_HANDLE found[4];
    CK_ULONG nf = 0;
    assert_int_equal(hsm_find_objects_init(s, &find, 1), CF_OK);
    assert_int_equal(hsm_find_objects(s, found, 4, &nf), CF_OK);
    assert_int_equal(hsm_find_objects_final(s), CF_OK);
    assert_int_equal(nf, 1);
    uint8_t iv[16] = { 0 }, pt[16] = "0123456789abcdef", ct[32];
    CK_MECHANISM cbc = { CKM_AES_CBC, iv, 16 };
    CK_ULONG ctlen = sizeof ct;
    assert_int_equal(hsm_op_init(s, HSM_OP_ENCRYPT, &cbc, found[0]), CF_OK);
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_ENCRYPT, pt, 16, ct, &ctlen), CF_OK);
    assert_int_equal(ctlen, 16);
}

static void gen_ec(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv, bool always_auth, bool derive)
{
    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL aa = always_auth, dv = derive, f = CK_FALSE;
    CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_DERIVE, &dv, 1 } };
    CK_ATTRIBUTE st[] = { { CKA_ALWAYS_AUTHENTICATE, &aa, 1 }, { CKA_DERIVE, &dv, 1 }, { CKA_SENSITIVE, &f, 1 },
                          { CKA_TOKEN, &f, 1 } };
    CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    assert_int_equal(hsm_generate_key_pair(s, &m, pt, 2, st, 4, pub, priv), CF_OK);
}

static void sign_protocols(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("sign");
    CK_SESSION_HANDLE s = user_session(slot);
    CK_OBJECT_HANDLE pub, priv;
    gen_ec(s, &pub, &priv, false, false);
    CK_MECHANISM m = { CKM_ECDSA_SHA256, NULL, 0 };
    uint8_t sig[200], sig2[200];
    CK_ULONG len = 0;
    /* not initialized, then initialized twice */
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_SIGN, (const uint8_t *)"x", 1, sig, &len), CF_E_OPERATION_NOT_INITIALIZED);
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, priv), CF_OK);
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, priv), CF_E_OPERATION_ACTIVE);
    /* NULL buffer: the length, and the operation stays */
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_SIGN, (const uint8_t *)"msg", 3, NULL, &len), CF_OK);
    assert_int_equal(len, 64);
    len = 10;
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_SIGN, (const uint8_t *)"msg", 3, sig, &len), CF_E_BUFFER_TOO_SMALL);
    assert_int_equal(len, 64);
    len = sizeof sig;
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_SIGN, (const uint8_t *)"msg", 3, sig, &len), CF_OK);
    assert_int_equal(len, 64);
    /* the operation ended */
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_SIGN, (const uint8_t *)"msg", 3, sig, &len), CF_E_OPERATION_NOT_INITIALIZED);
    /* multi-part gives a signature the one-shot verify accepts, and vice versa */
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, priv), CF_OK);
    assert_int_equal(hsm_op_update(s, HSM_OP_SIGN, (const uint8_t *)"m", 1, NULL, NULL), CF_OK);
    assert_int_equal(hsm_op_update(s, HSM_OP_SIGN, (const uint8_t *)"sg", 2, NULL, NULL), CF_OK);
    len = sizeof sig2;
    assert_int_equal(hsm_op_final(s, HSM_OP_SIGN, sig2, &len), CF_OK);
    assert_int_equal(hsm_op_init(s, HSM_OP_VERIFY, &m, pub), CF_OK);
    assert_int_equal(hsm_verify(s, (const uint8_t *)"msg", 3, sig2, 64), CF_OK);
    assert_int_equal(hsm_op_init(s, HSM_OP_VERIFY, &m, pub), CF_OK);
    assert_int_equal(hsm_op_update(s, HSM_OP_VERIFY, (const uint8_t *)"ms", 2, NULL, NULL), CF_OK);
    assert_int_equal(hsm_op_update(s, HSM_OP_VERIFY, (const uint8_t *)"g", 1, NULL, NULL), CF_OK);
    assert_int_equal(hsm_verify_final(s, sig, 64), CF_OK);
    sig[5] ^= 1;
    assert_int_equal(hsm_op_init(s, HSM_OP_VERIFY, &m, pub), CF_OK);
    assert_int_equal(hsm_verify(s, (const uint8_t *)"msg", 3, sig, 64), CF_E_SIGNATURE_INVALID);
    assert_int_equal(hsm_op_init(s, HSM_OP_VERIFY, &m, pub), CF_OK);
    assert_int_equal(hsm_verify(s, (const uint8_t *)"msg", 3, sig, 63), CF_E_SIGNATURE_LEN_RANGE);
    /* wrong key for the mechanism or the function */
    CK_MECHANISM rsa = { CKM_SHA256_RSA_PKCS, NULL, 0 };
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &rsa, priv), CF_E_KEY_TYPE_INCONSISTENT);
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, pub), CF_E_KEY_TYPE_INCONSISTENT);
    CK_MECHANISM bogus = { 0x7fffffffUL, NULL, 0 };
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &bogus, priv), CF_E_MECHANISM_INVALID);
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, 0xdeadUL), CF_E_KEY_HANDLE_INVALID);
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE nosign = { CKA_SIGN, &f, 1 };
    assert_int_equal(hsm_set_attribute_value(s, priv, &nosign, 1), CF_OK);
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, priv), CF_E_KEY_FUNCTION_NOT_PERMITTED);

    /* CKA_ALWAYS_AUTHENTICATE: each use needs a context-specific login */
    CK_OBJECT_HANDLE apub, apriv;
    gen_ec(s, &apub, &apriv, true, false);
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, apriv), CF_OK);
    len = sizeof sig;
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_SIGN, (const uint8_t *)"msg", 3, sig, &len), CF_E_USER_NOT_LOGGED_IN);
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, apriv), CF_OK);
    assert_int_equal(hsm_login(s, CKU_CONTEXT_SPECIFIC, (const uint8_t *)"bad!", 4), CF_E_PIN_INCORRECT);
    assert_int_equal(hsm_login(s, CKU_CONTEXT_SPECIFIC, USER, USERL), CF_OK);
    assert_int_equal(hsm_op_oneshot(s, HSM_OP_SIGN, (const uint8_t *)"msg", 3, sig, &len), CF_OK);
    assert_int_equal(hsm_login(s, CKU_CONTEXT_SPECIFIC, USER, USERL), CF_E_OPERATION_NOT_INITIALIZED);
}

static void wrap_and_derive(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("wrap");
    CK_SESSION_HANDLE s = user_session(slot);
    CK_OBJECT_HANDLE kek = aes_key(s, false, true, false, "kek");
    CK_OBJECT_HANDLE locked = aes_key(s, false, true, false, "locked");
    CK_OBJECT_HANDLE open = aes_key(s, false, false, true, "open");
    CK_MECHANISM kw = { CKM_AES_KEY_WRAP, NULL, 0 };
    uint8_t wrapped[64];
    CK_ULONG wl = sizeof wrapped;
    assert_int_equal(hsm_wrap_key(s, &kw, kek, locked, wrapped, &wl), CF_E_KEY_UNEXTRACTABLE);
    wl = 0;
    assert_int_equal(hsm_wrap_key(s, &kw, kek, open, NULL, &wl), CF_OK);
    assert_int_equal(wl, 40);
    wl = sizeof wrapped;
    assert_int_equal(hsm_wrap_key(s, &kw, kek, open, wrapped, &wl), CF_OK);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE ut[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_SENSITIVE, &f, 1 },
                          { CKA_EXTRACTABLE, &t, 1 } };
    CK_OBJECT_HANDLE un;
    assert_int_equal(hsm_unwrap_key(s, &kw, kek, wrapped, wl, ut, 4, &un), CF_OK);
    uint8_t v[32];
    CK_ATTRIBUTE get = { CKA_VALUE, v, sizeof v };
    assert_int_equal(hsm_get_attribute_value(s, un, &get, 1), CF_OK);
    for (int i = 0; i < 32; i++)
        assert_int_equal(v[i], i);
    wrapped[3] ^= 1;
    assert_int_equal(hsm_unwrap_key(s, &kw, kek, wrapped, wl, ut, 4, &un), CF_E_WRAPPED_KEY_INVALID);
    /* WRAP_WITH_TRUSTED needs a trusted wrapping key */
    CK_ATTRIBUTE wwt = { CKA_WRAP_WITH_TRUSTED, &t, 1 };
    assert_int_equal(hsm_set_attribute_value(s, open, &wwt, 1), CF_OK);
    wl = sizeof wrapped;
    assert_int_equal(hsm_wrap_key(s, &kw, kek, open, wrapped, &wl), CF_E_KEY_NOT_WRAPPABLE);
    /* only the SO may mark a key trusted */
    CK_ATTRIBUTE trusted = { CKA_TRUSTED, &t, 1 };
    assert_int_equal(hsm_set_attribute_value(s, kek, &trusted, 1), CF_E_ATTRIBUTE_READ_ONLY);

    /* ECDH: both sides derive the same secret */
    CK_OBJECT_HANDLE apub, apriv, bpub, bpriv;
    gen_ec(s, &apub, &apriv, false, true);
    gen_ec(s, &bpub, &bpriv, false, true);
    uint8_t pa[80], pb[80];
    CK_ATTRIBUTE ga = { CKA_EC_POINT, pa, sizeof pa }, gb = { CKA_EC_POINT, pb, sizeof pb };
    assert_int_equal(hsm_get_attribute_value(s, apub, &ga, 1), CF_OK);
    assert_int_equal(hsm_get_attribute_value(s, bpub, &gb, 1), CF_OK);
    CK_ECDH1_DERIVE_PARAMS da = { CKD_NULL, 0, NULL, gb.ulValueLen, pb }, db = { CKD_NULL, 0, NULL, ga.ulValueLen, pa };
    CK_MECHANISM ma = { CKM_ECDH1_DERIVE, &da, sizeof da }, mb = { CKM_ECDH1_DERIVE, &db, sizeof db };
    CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE dt[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &gk, sizeof gk }, { CKA_SENSITIVE, &f, 1 },
                          { CKA_EXTRACTABLE, &t, 1 } };
    CK_OBJECT_HANDLE ka, kb;
    assert_int_equal(hsm_derive_key(s, &ma, apriv, dt, 4, &ka), CF_OK);
    assert_int_equal(hsm_derive_key(s, &mb, bpriv, dt, 4, &kb), CF_OK);
    uint8_t sa[64], sb[64];
    CK_ATTRIBUTE va = { CKA_VALUE, sa, sizeof sa }, vb = { CKA_VALUE, sb, sizeof sb };
    assert_int_equal(hsm_get_attribute_value(s, ka, &va, 1), CF_OK);
    assert_int_equal(hsm_get_attribute_value(s, kb, &vb, 1), CF_OK);
    assert_int_equal(va.ulValueLen, 32);
    assert_memory_equal(sa, sb, 32);
    /* a key without CKA_DERIVE cannot */
    CK_OBJECT_HANDLE cpub, cpriv;
    gen_ec(s, &cpub, &cpriv, false, false);
    assert_int_equal(hsm_derive_key(s, &ma, cpriv, dt, 4, &ka), CF_E_KEY_FUNCTION_NOT_PERMITTED);
}

/* Another process adds token objects while this one stays initialized: a new search sees them. */
static void other_process_objects(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("multi");
    int go[2];
    assert_int_equal(pipe(go), 0);
    hsm_finalize(); /* fork with no open store; the parent starts again right after */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char b;
        if (read(go[0], &b, 1) != 1)
            _exit(2);
        char err[256];
        if (hsm_initialize(err, sizeof err) != CF_OK)
            _exit(3);
        CK_SESSION_HANDLE s;
        if (hsm_open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &s) != CF_OK ||
            hsm_login(s, CKU_USER, USER, USERL) != CF_OK)
            _exit(4);
        for (int i = 0; i < 20; i++) {
            CK_OBJECT_CLASS cls = CKO_DATA;
            CK_BBOOL t = CK_TRUE;
            char label[16];
            snprintf(label, sizeof label, "child-%d", i);
            CK_ATTRIBUTE tt[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_TOKEN, &t, 1 },
                                  { CKA_LABEL, label, strlen(label) }, { CKA_VALUE, label, strlen(label) } };
            CK_OBJECT_HANDLE h;
            if (hsm_create_object(s, tt, 4, &h) != CF_OK)
                _exit(5);
        }
        hsm_finalize();
        _exit(0);
    }
    init_engine();
    CK_SESSION_HANDLE s = user_session(slot);
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE ft = { CKA_CLASS, &cls, sizeof cls };
    CK_OBJECT_HANDLE found[64];
    CK_ULONG n = 0;
    assert_int_equal(hsm_find_objects_init(s, &ft, 1), CF_OK);
    assert_int_equal(hsm_find_objects(s, found, 64, &n), CF_OK);
    assert_int_equal(hsm_find_objects_final(s), CF_OK);
    assert_int_equal(n, 0);
    assert_int_equal(write(go[1], "g", 1), 1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(hsm_find_objects_init(s, &ft, 1), CF_OK);
    assert_int_equal(hsm_find_objects(s, found, 64, &n), CF_OK);
    assert_int_equal(hsm_find_objects_final(s), CF_OK);
    assert_int_equal(n, 20);
    /* and by label through the index */
    CK_ATTRIBUTE byl = { CKA_LABEL, "child-7", 7 };
    assert_int_equal(hsm_find_objects_init(s, &byl, 1), CF_OK);
    assert_int_equal(hsm_find_objects(s, found, 64, &n), CF_OK);
    assert_int_equal(hsm_find_objects_final(s), CF_OK);
    assert_int_equal(n, 1);
    uint8_t v[16];
    CK_ATTRIBUTE gv = { CKA_VALUE, v, sizeof v };
    assert_int_equal(hsm_get_attribute_value(s, found[0], &gv, 1), CF_OK);
    assert_int_equal(gv.ulValueLen, 7);
    assert_memory_equal(v, "child-7", 7);
}

/* Leases (hsm.h; the remote HSM's one-round-trip signing): none until an operation has ended
 * with its key kept, none for a key that needs CKU_CONTEXT_SPECIFIC; a destroy of the key returns
 * only after the lease; a re-arm uses the kept operation once, even after the key went, and is a
 * plain init after that or after a logout. */
static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static cf_err sign_now(CK_SESSION_HANDLE s, uint8_t *sig, CK_ULONG *len)
{
    static const uint8_t dig[32] = { 7 };
    *len = 80;
    return hsm_op_oneshot(s, HSM_OP_SIGN, dig, sizeof dig, sig, len);
}

static void leases(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("lease");
    CK_SESSION_HANDLE s = user_session(slot);
    CK_OBJECT_HANDLE pub, priv, apub, apriv, pub3, priv3;
    gen_ec(s, &pub, &priv, false, false);
    gen_ec(s, &apub, &apriv, true, false);
    gen_ec(s, &pub3, &priv3, false, false);
    CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
    static const uint8_t dig[32] = { 7 };
    uint8_t sig[80];
    CK_ULONG len;

    assert_int_equal(hsm_op_lease(s, HSM_OP_SIGN, 300), 0);   /* nothing kept yet */
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, priv), CF_OK);
    assert_int_equal(hsm_op_lease(s, HSM_OP_SIGN, 300), 0);   /* still active */
    assert_int_equal(sign_now(s, sig, &len), CF_OK);
    uint64_t t0 = mono_ms();
    assert_int_equal(hsm_op_lease(s, HSM_OP_SIGN, 300), 300);
    assert_int_equal(hsm_destroy_object(s, priv), CF_OK);
    assert_true(mono_ms() >= t0 + 300);   /* it waited for the lease */
    /* the init taken under the lease comes after the destroy: the kept operation signs */
    assert_int_equal(hsm_op_rearm(s, HSM_OP_SIGN, &m, priv), CF_OK);
    assert_int_equal(sign_now(s, sig, &len), CF_OK);
    assert_int_equal(hsm_op_init(s, HSM_OP_VERIFY, &m, pub), CF_OK);
    assert_int_equal(hsm_verify(s, dig, sizeof dig, sig, len), CF_OK);
    /* once: then a plain init, which finds no key; and no lease on a key that is gone */
    assert_int_equal(hsm_op_lease(s, HSM_OP_SIGN, 300), 0);
    assert_int_equal(hsm_op_rearm(s, HSM_OP_SIGN, &m, priv), CF_E_KEY_HANDLE_INVALID);

    /* CKA_ALWAYS_AUTHENTICATE: every init needs its login, so no lease */
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, apriv), CF_OK);
    assert_int_equal(hsm_login(s, CKU_CONTEXT_SPECIFIC, USER, USERL), CF_OK);
    assert_int_equal(sign_now(s, sig, &len), CF_OK);
    assert_int_equal(hsm_op_lease(s, HSM_OP_SIGN, 300), 0);

    /* a re-arm with other parameters than the kept operation's is a plain init */
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, priv3), CF_OK);
    assert_int_equal(sign_now(s, sig, &len), CF_OK);
    assert_int_equal(hsm_op_lease(s, HSM_OP_SIGN, 1), 1);
    CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
    assert_int_equal(hsm_op_rearm(s, HSM_OP_SIGN, &rsa, priv3), CF_E_KEY_TYPE_INCONSISTENT);
    /* after a logout the kept operation is not re-armed: the init is refused as a plain one */
    assert_int_equal(hsm_op_init(s, HSM_OP_SIGN, &m, priv3), CF_OK);
    assert_int_equal(sign_now(s, sig, &len), CF_OK);
    assert_int_equal(hsm_op_lease(s, HSM_OP_SIGN, 1), 1);
    assert_int_equal(hsm_logout(s), CF_OK);
    assert_int_not_equal(hsm_op_rearm(s, HSM_OP_SIGN, &m, priv3), CF_OK);
}

/* A change the other session may not make fails at once (the error it would get anyway): it
 * waits for no lease and leaves the owner's lease as it was (its init re-arms, a new lease is
 * given), by the engine's path and by hsm_object_lease_left's (remote clients of minor 2). */
static void refused_at_once(CK_SESSION_HANDLE owner, CK_OBJECT_HANDLE key, CK_SESSION_HANDLE other,
                            cf_err want_destroy, cf_err want_set)
{
    CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
    uint8_t sig[80];
    CK_ULONG len;
    CK_ATTRIBUTE lbl = { CKA_LABEL, "x", 1 };
    assert_int_equal(hsm_op_init(owner, HSM_OP_SIGN, &m, key), CF_OK);
    assert_int_equal(sign_now(owner, sig, &len), CF_OK);
    assert_int_equal(hsm_op_lease(owner, HSM_OP_SIGN, 2000), 2000);
    uint64_t t0 = mono_ms();
    assert_int_equal(hsm_object_lease_left(other, key, HSM_CHANGE_DESTROY), 0);
    assert_int_equal(hsm_object_lease_left(other, key, HSM_CHANGE_SET_ATTRIBUTE), 0);
    assert_int_equal(hsm_destroy_object(other, key), want_destroy);
    assert_int_equal(hsm_set_attribute_value(other, key, &lbl, 1), want_set);
    assert_true(mono_ms() < t0 + 1000);
    assert_int_equal(hsm_op_rearm(owner, HSM_OP_SIGN, &m, key), CF_OK);
    assert_int_equal(sign_now(owner, sig, &len), CF_OK);
    assert_int_equal(hsm_op_lease(owner, HSM_OP_SIGN, 1), 1);
}

static void refused_changes_leave_leases_alone(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("lease-apps");
    CK_SESSION_HANDLE a1, a2, a2ro;
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a1), CF_OK);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a2), CF_OK);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION, &a2ro), CF_OK);
    assert_int_equal(hsm_login(a1, CKU_USER, USER, USERL), CF_OK);
    CK_OBJECT_HANDLE spub, spriv, tpub, tpriv, fpub, fpriv;
    gen_ec(a1, &spub, &spriv, false, false);   /* session keys of app 1 */
    static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 } };
    CK_ATTRIBUTE st[] = { { CKA_TOKEN, &yes, 1 }, { CKA_DESTROYABLE, &yes, 1 }, { CKA_MODIFIABLE, &yes, 1 } };
    CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    assert_int_equal(hsm_generate_key_pair(a1, &gen, pt, 1, st, 3, &tpub, &tpriv), CF_OK);
    st[1].pValue = st[2].pValue = &no;
    assert_int_equal(hsm_generate_key_pair(a1, &gen, pt, 1, st, 3, &fpub, &fpriv), CF_OK);

    /* app 2 not logged in: app 1's private keys are not there for it */
    refused_at_once(a1, spriv, a2, CF_E_OBJECT_HANDLE_INVALID, CF_E_OBJECT_HANDLE_INVALID);
    refused_at_once(a1, tpriv, a2, CF_E_OBJECT_HANDLE_INVALID, CF_E_OBJECT_HANDLE_INVALID);
    /* logged in: still not app 1's session key; the token key not from a read-only session, and
     * not a key that may not be destroyed or changed */
    assert_int_equal(hsm_login(a2, CKU_USER, USER, USERL), CF_OK);
    refused_at_once(a1, spriv, a2, CF_E_OBJECT_HANDLE_INVALID, CF_E_OBJECT_HANDLE_INVALID);
    refused_at_once(a1, tpriv, a2ro, CF_E_SESSION_READ_ONLY, CF_E_SESSION_READ_ONLY);
    refused_at_once(a1, fpriv, a2, CF_E_ACTION_PROHIBITED, CF_E_ATTRIBUTE_READ_ONLY);
    /* an allowed change still waits for the lease */
    CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
    uint8_t sig[80];
    CK_ULONG len;
    assert_int_equal(hsm_op_init(a1, HSM_OP_SIGN, &m, tpriv), CF_OK);
    assert_int_equal(sign_now(a1, sig, &len), CF_OK);
    assert_int_equal(hsm_op_lease(a1, HSM_OP_SIGN, 300), 300);
    uint64_t t0 = mono_ms();
    assert_true(hsm_object_lease_left(a2, tpriv, HSM_CHANGE_DESTROY) > 0);
    assert_int_equal(hsm_destroy_object(a2, tpriv), CF_OK);
    assert_true(mono_ms() >= t0 + 300);
    hsm_app_end(1);
    hsm_app_end(2);
}

/* Login state is per application (PKCS#11 5.6): cofferd's connections are applications. */
static void applications_have_their_own_login(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("apps");
    CK_SESSION_HANDLE a1, a1ro, a2, a2b, a0;
    CK_SESSION_INFO si;
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a1), CF_OK);
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &a1ro), CF_OK);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a2), CF_OK);
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION, &a0), CF_OK);
    assert_int_equal(hsm_login(a1, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_get_session_info(a1ro, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS);
    /* the other applications stay public */
    assert_int_equal(hsm_get_session_info(a2, &si), CF_OK);
    assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);
    assert_int_equal(hsm_get_session_info(a0, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    /* app 1's private objects (a key pair, a token data object) are invisible to app 2 */
    CK_OBJECT_HANDLE pub, priv, data;
    gen_ec(a1, &pub, &priv, false, false);
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE dt[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_TOKEN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
                          { CKA_VALUE, "v", 1 } };
    assert_int_equal(hsm_create_object(a1, dt, 4, &data), CF_OK);
    assert_int_equal(hsm_create_object(a2, dt, 4, &data), CF_E_USER_NOT_LOGGED_IN);
    assert_int_equal(hsm_create_object(a1, dt, 4, &data), CF_OK);
    CK_ULONG size;
    assert_int_equal(hsm_get_object_size(a1, data, &size), CF_OK);
    assert_int_equal(hsm_get_object_size(a2, data, &size), CF_E_OBJECT_HANDLE_INVALID);
    CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 };
    assert_int_equal(hsm_op_init(a2, HSM_OP_SIGN, &ecdsa, priv), CF_E_KEY_HANDLE_INVALID);
    CK_ATTRIBUTE any = { CKA_CLASS, &cls, sizeof cls };
    CK_OBJECT_HANDLE found[16];
    CK_ULONG nfound;
    assert_int_equal(hsm_find_objects_init(a2, &any, 1), CF_OK);
    assert_int_equal(hsm_find_objects(a2, found, 16, &nfound), CF_OK);
    assert_int_equal(hsm_find_objects_final(a2), CF_OK);
    assert_int_equal(nfound, 0);
    assert_int_equal(hsm_find_objects_init(a1, &any, 1), CF_OK);
    assert_int_equal(hsm_find_objects(a1, found, 16, &nfound), CF_OK);
    assert_int_equal(hsm_find_objects_final(a1), CF_OK);
    assert_int_equal(nfound, 2);
    /* a non-private token secret opened by app 1's login still needs a login in app 2 */
    CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL no = CK_FALSE;
    uint8_t val[32] = { 1 };
    CK_ATTRIBUTE at[] = { { CKA_CLASS, &sk, sizeof sk }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_TOKEN, &yes, 1 },
                          { CKA_PRIVATE, &no, 1 }, { CKA_SENSITIVE, &no, 1 }, { CKA_EXTRACTABLE, &yes, 1 },
                          { CKA_ENCRYPT, &yes, 1 }, { CKA_VALUE, val, 32 } };
    CK_OBJECT_HANDLE aes;
    assert_int_equal(hsm_create_object(a1, at, 8, &aes), CF_OK);
    CK_ATTRIBUTE vt = { CKA_VALUE, val, sizeof val };
    assert_int_equal(hsm_get_attribute_value(a1, aes, &vt, 1), CF_OK);
    vt.ulValueLen = sizeof val;
    assert_int_equal(hsm_get_attribute_value(a2, aes, &vt, 1), CF_E_ATTRIBUTE_SENSITIVE);
    CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
    assert_int_equal(hsm_op_init(a1, HSM_OP_ENCRYPT, &ecb, aes), CF_OK);
    hsm_op_abort(a1, HSM_OP_ENCRYPT);
    assert_int_equal(hsm_op_init(a2, HSM_OP_ENCRYPT, &ecb, aes), CF_E_USER_NOT_LOGGED_IN);
    assert_int_equal(hsm_destroy_object(a1, aes), CF_OK);
    /* app 2 may log in as SO while app 1 is the user (app 1's read-only session is not app 2's) */
    assert_int_equal(hsm_login(a2, CKU_SO, SO, SOL), CF_OK);
    assert_int_equal(hsm_get_session_info(a2, &si), CF_OK);
    assert_int_equal(si.state, CKS_RW_SO_FUNCTIONS);
    assert_int_equal(hsm_get_session_info(a1, &si), CF_OK);
    assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);
    assert_int_equal(hsm_login(a2, CKU_USER, USER, USERL), CF_E_USER_ANOTHER_ALREADY_LOGGED_IN);
    assert_int_equal(hsm_login(a1, CKU_USER, USER, USERL), CF_E_USER_ALREADY_LOGGED_IN);
    /* the SO rule on read-only sessions is app 2's: it cannot open one, app 1 can */
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION, &a2b), CF_E_SESSION_READ_WRITE_SO_EXISTS);
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &a2b), CF_OK);
    assert_int_equal(hsm_close_session(a2b), CF_OK);
    /* app 1's logout leaves app 2 logged in, and app 1 can sign again after a new login */
    assert_int_equal(hsm_logout(a1), CF_OK);
    assert_int_equal(hsm_get_session_info(a1, &si), CF_OK);
    assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);
    assert_int_equal(hsm_get_session_info(a2, &si), CF_OK);
    assert_int_equal(si.state, CKS_RW_SO_FUNCTIONS);
    assert_int_equal(hsm_get_object_size(a1, data, &size), CF_E_OBJECT_HANDLE_INVALID);
    assert_int_equal(hsm_login(a1, CKU_USER, USER, USERL), CF_OK);
    uint8_t sig[128];
    CK_ULONG siglen = sizeof sig;
    assert_int_equal(hsm_op_init(a1, HSM_OP_SIGN, &ecdsa, priv), CF_OK);
    assert_int_equal(hsm_op_oneshot(a1, HSM_OP_SIGN, (const uint8_t *)"abc", 3, sig, &siglen), CF_OK);
    /* closing all sessions of app 2 leaves app 1's; closing its last session logs app 2 out */
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a2b), CF_OK);
    assert_int_equal(hsm_close_all_sessions_app(2, slot), CF_OK);
    assert_int_equal(hsm_get_session_info(a2b, &si), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(a1, &si), CF_OK);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION, &a2), CF_OK);
    assert_int_equal(hsm_get_session_info(a2, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    /* hsm_app_end(1) closes app 1's sessions (and session objects) only */
    hsm_app_end(1);
    assert_int_equal(hsm_get_session_info(a1, &si), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(a1ro, &si), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(a2, &si), CF_OK);
    assert_int_equal(hsm_get_session_info(a0, &si), CF_OK);
    assert_int_equal(hsm_login(a2, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_get_object_size(a2, priv, &size), CF_E_OBJECT_HANDLE_INVALID);
    assert_int_equal(hsm_get_object_size(a2, data, &size), CF_OK);
    assert_int_equal(hsm_get_session_info(a0, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    /* a new session of app 1 starts logged out */
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &a1), CF_OK);
    assert_int_equal(hsm_get_session_info(a1, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    hsm_app_end(1);
    hsm_app_end(2);
    assert_int_equal(hsm_close_session(a0), CF_OK);
}

/* A session object is its application's alone (PKCS#11 v2.40 4.4): in cofferd another client,
 * logged in to the same token, neither finds it nor reaches it by its handle. */
static void session_objects_are_their_applications(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("sobj");
    CK_SESSION_HANDLE a1, a1b, a2, a0;
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a1), CF_OK);
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &a1b), CF_OK);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a2), CF_OK);
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a0), CF_OK);
    assert_int_equal(hsm_login(a1, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_login(a2, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_login(a0, CKU_USER, USER, USERL), CF_OK);
    CK_OBJECT_HANDLE pub, priv, data;
    gen_ec(a1, &pub, &priv, false, false);   /* session objects of app 1 */
    CK_OBJECT_CLASS dc = CKO_DATA;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE dt[] = { { CKA_CLASS, &dc, sizeof dc }, { CKA_TOKEN, &no, 1 }, { CKA_PRIVATE, &no, 1 },
                          { CKA_VALUE, "v", 1 } };
    assert_int_equal(hsm_create_object(a2, dt, 4, &data), CF_OK);   /* a public one of app 2 */
    CK_ULONG size;
    CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 };
    uint8_t buf[8];
    CK_ATTRIBUTE vt = { CKA_VALUE, buf, sizeof buf };
    CK_OBJECT_HANDLE found[16];
    CK_ULONG n;
    CK_SESSION_HANDLE others[] = { a2, a0 };
    for (size_t i = 0; i < 2; i++) {
        CK_SESSION_HANDLE o = others[i];
        assert_int_equal(hsm_get_object_size(o, priv, &size), CF_E_OBJECT_HANDLE_INVALID);
        assert_int_equal(hsm_get_object_size(o, pub, &size), CF_E_OBJECT_HANDLE_INVALID);
        assert_int_equal(hsm_op_init(o, HSM_OP_SIGN, &ecdsa, priv), CF_E_KEY_HANDLE_INVALID);
        assert_int_equal(hsm_destroy_object(o, pub), CF_E_OBJECT_HANDLE_INVALID);
        assert_int_equal(hsm_set_attribute_value(o, pub, dt + 3, 1), CF_E_OBJECT_HANDLE_INVALID);
        assert_int_equal(hsm_find_objects_init(o, NULL, 0), CF_OK);
        assert_int_equal(hsm_find_objects(o, found, 16, &n), CF_OK);
        assert_int_equal(hsm_find_objects_final(o), CF_OK);
        for (CK_ULONG k = 0; k < n; k++)
            assert_true(found[k] != priv && found[k] != pub && (o == a2 || found[k] != data));
    }
    assert_int_equal(hsm_get_attribute_value(a1, data, &vt, 1), CF_E_OBJECT_HANDLE_INVALID);
    assert_int_equal(hsm_get_attribute_value(a1b, data, &vt, 1), CF_E_OBJECT_HANDLE_INVALID);
    assert_int_equal(hsm_get_attribute_value(a2, data, &vt, 1), CF_OK);
    /* every session of the creating application sees them */
    assert_int_equal(hsm_get_object_size(a1b, priv, &size), CF_OK);
    assert_int_equal(hsm_op_init(a1b, HSM_OP_SIGN, &ecdsa, priv), CF_OK);
    hsm_op_abort(a1b, HSM_OP_SIGN);
    assert_int_equal(hsm_find_objects_init(a1b, NULL, 0), CF_OK);
    assert_int_equal(hsm_find_objects(a1b, found, 16, &n), CF_OK);
    assert_int_equal(hsm_find_objects_final(a1b), CF_OK);
    assert_int_equal(n, 2);
    hsm_app_end(1);
    hsm_app_end(2);
    assert_int_equal(hsm_close_session(a0), CF_OK);
}

/* Closing all of an application's sessions (C_CloseAllSessions, or the application ending in
 * cofferd) closes exactly those, with their session objects and its login, in one pass however
 * many there are; other applications' sessions and objects, and its sessions on another slot
 * (for C_CloseAllSessions), stay. */
#define MANY 5000
static void closing_many_sessions(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("many"), other = make_token("many2");
    static CK_SESSION_HANDLE mine[MANY];
    for (size_t i = 0; i < MANY; i++)
        assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &mine[i]), CF_OK);
    CK_SESSION_HANDLE a2, a0, a1o, extra;
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a2), CF_OK);
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION, &a0), CF_OK);
    assert_int_equal(hsm_open_session_app(1, other, CKF_SERIAL_SESSION, &a1o), CF_OK);
    assert_int_equal(hsm_login(mine[0], CKU_USER, USER, USERL), CF_OK);
    CK_OBJECT_CLASS dc = CKO_DATA;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE dt[] = { { CKA_CLASS, &dc, sizeof dc }, { CKA_TOKEN, &no, 1 }, { CKA_VALUE, "v", 1 } };
    CK_OBJECT_HANDLE d1, d1b, d2;
    assert_int_equal(hsm_create_object(mine[MANY / 2], dt, 3, &d1), CF_OK);
    assert_int_equal(hsm_create_object(mine[MANY - 1], dt, 3, &d1b), CF_OK);
    assert_int_equal(hsm_create_object(a2, dt, 3, &d2), CF_OK);
    CK_TOKEN_INFO ti;
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_int_equal(ti.ulSessionCount, MANY + 2);

    assert_int_equal(hsm_close_all_sessions_app(1, slot), CF_OK);
    CK_SESSION_INFO si;
    for (size_t i = 0; i < MANY; i++)
        assert_int_equal(hsm_get_session_info(mine[i], &si), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_int_equal(ti.ulSessionCount, 2);
    assert_int_equal(hsm_get_session_info(a2, &si), CF_OK);
    assert_int_equal(hsm_get_session_info(a0, &si), CF_OK);
    assert_int_equal(hsm_get_session_info(a1o, &si), CF_OK);
    CK_ULONG size;
    assert_int_equal(hsm_get_object_size(a2, d2, &size), CF_OK);
    /* app 1's session objects went with its sessions; it is logged out of the slot */
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &extra), CF_OK);
    assert_int_equal(hsm_get_object_size(extra, d1, &size), CF_E_OBJECT_HANDLE_INVALID);
    assert_int_equal(hsm_get_object_size(extra, d1b, &size), CF_E_OBJECT_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(extra, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);

    /* the same through the application's end, on every slot; and again with app 2 */
    for (size_t i = 0; i < MANY; i++)
        assert_int_equal(hsm_open_session_app(1, i % 2 ? slot : other, CKF_SERIAL_SESSION, &mine[i]), CF_OK);
    hsm_app_end(1);
    for (size_t i = 0; i < MANY; i++)
        assert_int_equal(hsm_get_session_info(mine[i], &si), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(a1o, &si), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(extra, &si), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_session_info(a2, &si), CF_OK);
    assert_int_equal(hsm_get_object_size(a2, d2, &size), CF_OK);
    assert_int_equal(hsm_get_session_info(a0, &si), CF_OK);
    hsm_app_end(2);
    assert_int_equal(hsm_get_session_info(a2, &si), CF_E_SESSION_HANDLE_INVALID);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_int_equal(ti.ulSessionCount, 1);
    assert_int_equal(hsm_close_session(a0), CF_OK);
}

/* The engine's bound on sessions, all applications together: the next open gets SESSION_COUNT
 * and opens nothing; one application's end closes them all (in one pass: the old restart after
 * every close took minutes at this size) and makes room. */
static void engine_session_limit(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("limit");
    CK_SESSION_HANDLE h, a2;
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION, &a2), CF_OK);
    size_t n = 1;
    while (n < HSM_SESSIONS_MAX + 10 && hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &h) == CF_OK)
        n++;
    assert_int_equal(n, HSM_SESSIONS_MAX);
    CK_TOKEN_INFO ti;
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_int_equal(ti.ulSessionCount, HSM_SESSIONS_MAX);
    h = 0;
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION, &h), CF_E_SESSION_COUNT);
    assert_int_equal(h, 0);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_int_equal(ti.ulSessionCount, HSM_SESSIONS_MAX);
    hsm_app_end(1);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_int_equal(ti.ulSessionCount, 1);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION, &h), CF_OK);
    hsm_app_end(2);
}

/* cofferd's [hsm] max_session_objects: an application's session objects, all its sessions
 * together, past the limit NOMEM (CKR_HOST_MEMORY); destroying one or closing a session makes room; other
 * applications and the in-process one are not affected. */
static void session_objects_are_limited_per_application(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("objlim");
    CK_SESSION_HANDLE a1, a1b, a2, a0;
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a1), CF_OK);
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &a1b), CF_OK);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION, &a2), CF_OK);
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION, &a0), CF_OK);
    hsm_set_session_object_limit(3);
    CK_OBJECT_CLASS dc = CKO_DATA;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE dt[] = { { CKA_CLASS, &dc, sizeof dc }, { CKA_TOKEN, &no, 1 }, { CKA_VALUE, "v", 1 } };
    CK_OBJECT_HANDLE h[4];
    assert_int_equal(hsm_create_object(a1, dt, 3, &h[0]), CF_OK);
    assert_int_equal(hsm_create_object(a1b, dt, 3, &h[1]), CF_OK);
    assert_int_equal(hsm_create_object(a1, dt, 3, &h[2]), CF_OK);
    assert_int_equal(hsm_create_object(a1b, dt, 3, &h[3]), CF_E_NOMEM);
    assert_int_equal(hsm_copy_object(a1, h[0], NULL, 0, &h[3]), CF_E_NOMEM);
    for (int i = 0; i < 3; i++)   /* another application, and the in-process one */
        assert_int_equal(hsm_create_object(a2, dt, 3, &h[3]), CF_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hsm_create_object(a0, dt, 3, &h[3]), CF_OK);
    assert_int_equal(hsm_destroy_object(a1, h[2]), CF_OK);
    assert_int_equal(hsm_create_object(a1, dt, 3, &h[2]), CF_OK);
    assert_int_equal(hsm_close_session(a1b), CF_OK);   /* its object goes with it */
    assert_int_equal(hsm_create_object(a1, dt, 3, &h[3]), CF_OK);
    assert_int_equal(hsm_create_object(a1, dt, 3, &h[3]), CF_E_NOMEM);
    hsm_app_end(1);   /* and an application's end frees its count */
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &a1), CF_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hsm_create_object(a1, dt, 3, &h[3]), CF_OK);
    hsm_set_session_object_limit(0);
    hsm_app_end(1);
    hsm_app_end(2);
    assert_int_equal(hsm_close_session(a0), CF_OK);
}

/* The token's session counts (C_GetTokenInfo) and an application's count on its login record
 * are kept as sessions open and close, so neither scans the session map: the numbers, and the
 * logout at the application's last session on the token, whatever the order of opens and login. */
static void token_counts_sessions(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("counts");
    CK_SESSION_HANDLE a, b, c, d, e;
    CK_TOKEN_INFO ti;
    CK_SESSION_INFO si;
#define COUNTS(n, rw)                                                  \
    do {                                                               \
        assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);        \
        assert_int_equal(ti.ulSessionCount, (n));                      \
        assert_int_equal(ti.ulRwSessionCount, (rw));                   \
    } while (0)
    COUNTS(0, 0);
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &a), CF_OK);
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &b), CF_OK);
    assert_int_equal(hsm_open_session_app(2, slot, CKF_SERIAL_SESSION, &c), CF_OK);
    COUNTS(3, 1);
    /* sessions opened before the login count, and one opened after */
    assert_int_equal(hsm_login(a, CKU_USER, USER, USERL), CF_OK);
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &d), CF_OK);
    COUNTS(4, 2);
    assert_int_equal(hsm_close_session(a), CF_OK);
    assert_int_equal(hsm_close_session(b), CF_OK);
    assert_int_equal(hsm_get_session_info(d, &si), CF_OK);
    assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);   /* d still holds app 1's login */
    COUNTS(2, 1);
    assert_int_equal(hsm_close_session(d), CF_OK);       /* app 1's last: logged out */
    assert_int_equal(hsm_open_session_app(1, slot, CKF_SERIAL_SESSION, &e), CF_OK);
    assert_int_equal(hsm_get_session_info(e, &si), CF_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    COUNTS(2, 0);
    /* app 2's session did not keep app 1 logged in, and closing all of app 2's leaves e */
    assert_int_equal(hsm_close_all_sessions_app(2, slot), CF_OK);
    COUNTS(1, 0);
    hsm_app_end(1);
    COUNTS(0, 0);
#undef COUNTS
}

static void config_errors_name_the_line(void **state)
{
    (void)state;
    hsm_finalize();
    char path[300];
    snprintf(path, sizeof path, "%s/bad.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("[store]\ndir = /tmp/x\n[token]\nuser_pin_max_tries = many\n", f);
    fclose(f);
    setenv("COFFER_CONF", path, 1);
    char err[512] = "";
    assert_int_equal(hsm_initialize(err, sizeof err), CF_E_CONFIG);
    assert_non_null(strstr(err, "bad.conf:4:"));
    assert_non_null(strstr(err, "user_pin_max_tries"));
    f = fopen(path, "w");
    fputs("[store]\ndirectory = /tmp/x\n", f);
    fclose(f);
    assert_int_equal(hsm_initialize(err, sizeof err), CF_E_CONFIG);
    assert_non_null(strstr(err, "bad.conf:2:"));
    assert_non_null(strstr(err, "directory"));
    write_conf(3);
    init_engine();
}

/* What another application does while C_InitToken or the deletion runs the SO PIN's PBKDF2 with
 * no lock held (hsm_test_before_rewrite): the hook runs once. */
static CK_SESSION_HANDLE gap_session;
static void open_session_in_gap(CK_SLOT_ID slot)
{
    hsm_test_before_rewrite = NULL;
    assert_int_equal(hsm_open_session_app(77, slot, CKF_SERIAL_SESSION, &gap_session), CF_OK);
}

static void init_token_in_gap(CK_SLOT_ID slot)
{
    hsm_test_before_rewrite = NULL;
    uint8_t l[32];
    label32(l, "first");
    assert_int_equal(hsm_init_token(slot, SO, SOL, l), CF_OK);
}

/* The refusal to re-initialize or delete a token with open sessions is decided under the write
 * lock the store is rewritten under: a session opened after the first check (in the PBKDF2 gap)
 * stops the call, and the token and the session stay. */
static void rewrite_rechecks_under_write_lock(void **state)
{
    (void)state;
    CK_SLOT_ID slot = make_token("busy");
    uint8_t l[32];
    label32(l, "wiped");
    CK_TOKEN_INFO ti;
    CK_SESSION_INFO si;
    hsm_test_before_rewrite = open_session_in_gap;
    assert_int_equal(hsm_init_token(slot, SO, SOL, l), CF_E_SESSION_EXISTS);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_memory_equal(ti.label, "busy ", 5);
    assert_int_equal(hsm_get_session_info(gap_session, &si), CF_OK);
    assert_int_equal(hsm_close_session(gap_session), CF_OK);

    hsm_test_before_rewrite = open_session_in_gap;
    assert_int_equal(hsm_delete_token(slot, SO, SOL), CF_E_SESSION_EXISTS);
    assert_int_equal(hsm_get_token_info(slot, &ti), CF_OK);
    assert_true(ti.flags & CKF_TOKEN_INITIALIZED);
    assert_int_equal(hsm_get_session_info(gap_session, &si), CF_OK);
    assert_int_equal(hsm_close_session(gap_session), CF_OK);
    assert_int_equal(hsm_delete_token(slot, SO, SOL), CF_OK);   /* with no session it goes */

    /* two C_InitToken of the free slot: the second finds a token it checked no SO PIN of */
    CK_SLOT_ID fresh = free_slot();
    label32(l, "second");
    hsm_test_before_rewrite = init_token_in_gap;
    assert_int_equal(hsm_init_token(fresh, SO, SOL, l), CF_E_SLOT_ID_INVALID);
    assert_int_equal(hsm_get_token_info(fresh, &ti), CF_OK);
    assert_memory_equal(ti.label, "first ", 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(slot_ids_are_permanent, setup, teardown),
        cmocka_unit_test_setup_teardown(pin_lockout_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(session_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(attribute_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(sign_protocols, setup, teardown),
        cmocka_unit_test_setup_teardown(leases, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_changes_leave_leases_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(wrap_and_derive, setup, teardown),
        cmocka_unit_test_setup_teardown(other_process_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(applications_have_their_own_login, setup, teardown),
        cmocka_unit_test_setup_teardown(session_objects_are_their_applications, setup, teardown),
        cmocka_unit_test_setup_teardown(session_objects_are_limited_per_application, setup, teardown),
        cmocka_unit_test_setup_teardown(token_counts_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(closing_many_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(engine_session_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(config_errors_name_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(rewrite_rechecks_under_write_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
