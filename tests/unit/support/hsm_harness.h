/* hsm_harness.h: the shared setup of the token engine's unit tests (hsm_test.c, wrap_test.c): a
 * temporary directory with a coffer.conf named by COFFER_CONF, the engine initialized, tokens with
 * both PINs, and logged-in user sessions. */
#ifndef COFFER_TEST_HSM_HARNESS_H
#define COFFER_TEST_HSM_HARNESS_H

#include <stdint.h>
#include "hsm/hsm.h"

/* The test's temporary directory (the store is dir/store). */
extern char dir[256];

/* The PINs every token gets. */
extern const uint8_t SO[sizeof "so-secret"], USER[sizeof "user-pin"];
#define SOL (sizeof SO - 1)
#define USERL (sizeof USER - 1)

/* Writes dir/coffer.conf (store in dir/store, 1000 PBKDF2 iterations; with tries != 0, both PINs'
 * max tries) and points COFFER_CONF at it. */
void write_conf(unsigned tries);

/* hsm_initialize, asserted to succeed. */
void init_engine(void);

/* Makes dir from a mkdtemp template, writes the conf (write_conf(tries)), initializes the engine. */
int hsm_env_setup(const char *tmpl, unsigned tries);

/* cmocka teardown: finalizes the engine if it is up and removes dir. */
int teardown(void **state);

/* A token label: s padded with spaces to 32 bytes. */
void label32(uint8_t *l, const char *s);

/* The first slot without an initialized token (fails the test when there is none). */
CK_SLOT_ID free_slot(void);

/* A fresh token with both PINs; returns its slot. */
CK_SLOT_ID make_token(const char *name);

/* A read-write session logged in as the user (or already logged in). */
CK_SESSION_HANDLE user_session(CK_SLOT_ID slot);

#endif
