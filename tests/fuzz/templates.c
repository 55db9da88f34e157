/* templates.c: libFuzzer harness for the engine's attribute template rules (src/hsm), the code
 * that decides what an application may create and how: C_CreateObject, C_GenerateKey and
 * C_GenerateKeyPair with arbitrary templates, then C_GetAttributeValue on whatever was made.
 *
 * Input: op u8, sel u8, then attributes as TLV (type u32 big-endian, len u8, value), read with
 * the bounded reader. op % 3 picks the call; for key pairs sel % 3 picks the mechanism (EC P-256,
 * Ed25519, RSA) and sel >> 2 how many attributes go to the public template (the rest are the
 * private one); for secret keys sel % 2 picks AES or generic secret key generation.
 * Each value gets its own heap buffer of exactly its length, so ASan sees any read past it.
 *
 * Setup, once: a temporary store (COFFER_CONF), a token with SO and user PINs, an RW session
 * logged in as the user. Everything an input creates is destroyed again, so inputs stay
 * independent and the store small. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/bytes.h"
#include "hsm/hsm.h"

#define MAX_ATTRS 32

static CK_SESSION_HANDLE sess;
static char tmpdir[] = "/tmp/coffer-fuzz-templates.XXXXXX";

static void die(const char *what, cf_err e)
{
    fprintf(stderr, "templates fuzz setup: %s: %s\n", what, cf_err_name(e));
    abort();
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    hsm_finalize();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The slot whose token is (want_initialized ? initialized with label : not initialized). */
static CK_SLOT_ID find_slot(bool want_initialized, const uint8_t *label)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    cf_err e = hsm_get_slot_list(true, slots, &n);
    if (e != CF_OK)
        die("get slot list", e);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (hsm_get_token_info(slots[i], &ti) != CF_OK)
            continue;
        bool init = ti.flags & CKF_TOKEN_INITIALIZED;
        if (init == want_initialized && (!want_initialized || memcmp(ti.label, label, 32) == 0))
            return slots[i];
    }
    die(want_initialized ? "no initialized fuzz token" : "no free slot", CF_E_NOT_FOUND);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    if (!mkdtemp(tmpdir))
        die("mkdtemp", CF_E_IO);
    char conf[sizeof tmpdir + 32];
    snprintf(conf, sizeof conf, "%s/coffer.conf", tmpdir);
    FILE *f = fopen(conf, "w");
    if (!f)
        die("write config", CF_E_IO);
    fprintf(f, "[store]\ndir = %s/store\n[token]\npbkdf2_iterations = 1000\n", tmpdir);
    fclose(f);
    setenv("COFFER_CONF", conf, 1);
    atexit(cleanup);

    char err[512] = "";
    cf_err e = hsm_initialize(err, sizeof err);
    if (e != CF_OK) {
        fprintf(stderr, "%s\n", err);
        die("hsm_initialize", e);
    }
    static const uint8_t so_pin[] = "12345678", pin[] = "1234";
    uint8_t label[32];
    memset(label, ' ', sizeof label);
    memcpy(label, "fuzz", 4);
    if ((e = hsm_init_token(find_slot(false, NULL), so_pin, 8, label)) != CF_OK)
        die("init token", e);
    CK_SLOT_ID slot = find_slot(true, label);
    if ((e = hsm_open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, &sess)) != CF_OK)
        die("open session", e);
    if ((e = hsm_login(sess, CKU_SO, so_pin, 8)) != CF_OK || (e = hsm_init_pin(sess, pin, 4)) != CF_OK ||
        (e = hsm_logout(sess)) != CF_OK || (e = hsm_login(sess, CKU_USER, pin, 4)) != CF_OK)
        die("set up the user PIN", e);
    return 0;
}

typedef struct {
    CK_ATTRIBUTE a[MAX_ATTRS];
    CK_ULONG n;
} template_t;

static void template_free(template_t *t)
{
    for (CK_ULONG i = 0; i < t->n; i++)
        free(t->a[i].pValue);
    t->n = 0;
}

/* Decodes TLVs until the input ends or MAX_ATTRS; a truncated last TLV is dropped. */
static void decode(cf_reader *r, template_t *t)
{
    while (t->n < MAX_ATTRS && !cf_reader_done(r)) {
        uint32_t type;
        uint8_t len;
        const uint8_t *v;
        if (cf_get_u32(r, &type) != CF_OK || cf_get_u8(r, &len) != CF_OK || cf_get_view(r, &v, len) != CF_OK)
            return;
        void *copy = malloc(len ? len : 1); /* never NULL: the ABI layer guarantees pValue for a template */
        if (!copy)
            abort();
        memcpy(copy, v, len);
        t->a[t->n++] = (CK_ATTRIBUTE){ .type = type, .pValue = copy, .ulValueLen = len };
    }
}

/* RSA key generation time grows with the cube of the size: keep inputs fast. */
static bool modulus_too_big(const CK_ATTRIBUTE *a, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        if (a[i].type != CKA_MODULUS_BITS)
            continue;
        if (a[i].ulValueLen != sizeof(CK_ULONG))
            continue;
        CK_ULONG bits;
        memcpy(&bits, a[i].pValue, sizeof bits);
        if (bits > 2048)
            return true;
    }
    return false;
}

/* Reads back every attribute the template named: lengths first, then values. */
static void read_back(CK_OBJECT_HANDLE o, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_ATTRIBUTE q[MAX_ATTRS];
    for (CK_ULONG i = 0; i < n; i++)
        q[i] = (CK_ATTRIBUTE){ .type = t[i].type, .pValue = NULL, .ulValueLen = 0 };
    (void)hsm_get_attribute_value(sess, o, q, n);
    void *bufs[MAX_ATTRS] = { 0 };
    for (CK_ULONG i = 0; i < n; i++) {
        if (q[i].ulValueLen == CK_UNAVAILABLE_INFORMATION || q[i].ulValueLen > 1 << 20) {
            q[i].ulValueLen = 0;
            continue;
        }
        bufs[i] = malloc(q[i].ulValueLen ? q[i].ulValueLen : 1);
        if (!bufs[i])
            abort();
        q[i].pValue = bufs[i];
    }
    (void)hsm_get_attribute_value(sess, o, q, n);
    for (CK_ULONG i = 0; i < n; i++)
        free(bufs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_reader r = cf_reader_init(data, size);
    uint8_t op, sel;
    if (cf_get_u8(&r, &op) != CF_OK || cf_get_u8(&r, &sel) != CF_OK)
        return 0;
    template_t t = { .n = 0 };
    decode(&r, &t);

    CK_OBJECT_HANDLE o1 = CK_INVALID_HANDLE, o2 = CK_INVALID_HANDLE;
    switch (op % 3) {
    case 0:
        if (hsm_create_object(sess, t.a, t.n, &o1) == CF_OK)
            read_back(o1, t.a, t.n);
        break;
    case 1: {
        static const CK_MECHANISM_TYPE mechs[] = { CKM_EC_KEY_PAIR_GEN, CKM_EC_EDWARDS_KEY_PAIR_GEN,
                                                   CKM_RSA_PKCS_KEY_PAIR_GEN };
        CK_MECHANISM m = { mechs[sel % 3], NULL, 0 };
        CK_ULONG npub = (CK_ULONG)(sel >> 2) < t.n ? (CK_ULONG)(sel >> 2) : t.n;
        if (m.mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN && modulus_too_big(t.a, t.n))
            break;
        if (hsm_generate_key_pair(sess, &m, t.a, npub, t.a + npub, t.n - npub, &o1, &o2) == CF_OK) {
            read_back(o1, t.a, npub);
            read_back(o2, t.a + npub, t.n - npub);
        }
        break;
    }
    case 2: {
        CK_MECHANISM m = { sel % 2 ? CKM_GENERIC_SECRET_KEY_GEN : CKM_AES_KEY_GEN, NULL, 0 };
        if (hsm_generate_key(sess, &m, t.a, t.n, &o1) == CF_OK)
            read_back(o1, t.a, t.n);
        break;
    }
    }
    /* An object that must not be destroyed (CKA_DESTROYABLE false) stays; fine for a fuzz run. */
    if (o1 != CK_INVALID_HANDLE)
        (void)hsm_destroy_object(sess, o1);
    if (o2 != CK_INVALID_HANDLE)
        (void)hsm_destroy_object(sess, o2);
    template_free(&t);
    return 0;
}
