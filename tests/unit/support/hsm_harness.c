/* hsm_harness.c: one copy of the token engine tests' setup (see hsm_harness.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "hsm_harness.h"

char dir[256];
const uint8_t SO[sizeof "so-secret"] = "so-secret", USER[sizeof "user-pin"] = "user-pin";

void write_conf(unsigned tries)
{
    char path[300], text[600];
    snprintf(path, sizeof path, "%s/coffer.conf", dir);
    if (tries)
        snprintf(text, sizeof text,
                 "[store]\ndir = %s/store\n[token]\npbkdf2_iterations = 1000\nuser_pin_max_tries = %u\n"
                 "so_pin_max_tries = %u\n", dir, tries, tries);
    else
        snprintf(text, sizeof text, "[store]\ndir = %s/store\n[token]\npbkdf2_iterations = 1000\n", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    setenv("COFFER_CONF", path, 1);
}

void init_engine(void)
{
    char err[256] = "";
    assert_int_equal(hsm_initialize(err, sizeof err), CF_OK);
}

int hsm_env_setup(const char *tmpl, unsigned tries)
{
    snprintf(dir, sizeof dir, "%s", tmpl);
    assert_non_null(mkdtemp(dir));
    write_conf(tries);
    init_engine();
    return 0;
}

int teardown(void **state)
{
    (void)state;
    if (hsm_is_initialized())
        hsm_finalize();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

void label32(uint8_t *l, const char *s)
{
    memset(l, ' ', 32);
    memcpy(l, s, strlen(s));
}

CK_SLOT_ID free_slot(void)
{
    CK_SLOT_ID s[16];
    CK_ULONG n = 16;
    assert_int_equal(hsm_get_slot_list(true, s, &n), CF_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        assert_int_equal(hsm_get_token_info(s[i], &ti), CF_OK);
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            return s[i];
    }
    fail();
    return 0;
}

/* A fresh token with both PINs; returns its slot. */
CK_SLOT_ID make_token(const char *name)
{
    uint8_t l[32];
    label32(l, name);
    CK_SLOT_ID slot = free_slot();
    assert_int_equal(hsm_init_token(slot, SO, SOL, l), CF_OK);
    CK_SESSION_HANDLE s;
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &s), CF_OK);
    assert_int_equal(hsm_login(s, CKU_SO, SO, SOL), CF_OK);
    assert_int_equal(hsm_init_pin(s, USER, USERL), CF_OK);
    assert_int_equal(hsm_close_session(s), CF_OK);
    return slot;
}

CK_SESSION_HANDLE user_session(CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s;
    assert_int_equal(hsm_open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &s), CF_OK);
    cf_err e = hsm_login(s, CKU_USER, USER, USERL);
    assert_true(e == CF_OK || e == CF_E_USER_ALREADY_LOGGED_IN);
    return s;
}
