/* p11.c: loading the module and the session, token and object helpers every command uses.
 * Everything goes through the module's CK_FUNCTION_LIST so that the CLI works unchanged against
 * any PKCS#11 module (coffer in-process, coffer remote, or SoftHSM2 during development). */
#include "cli/p11.h"

#include <dlfcn.h>
#include <p11-kit/uri.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef COFFER_MODULE_BUILD_PATH
#define COFFER_MODULE_BUILD_PATH ""
#endif
#ifndef COFFER_MODULE_INSTALL_PATH
#define COFFER_MODULE_INSTALL_PATH "/usr/local/lib/pkcs11/libcoffer-pkcs11.so"
#endif

static const char *module_path(const cli_opts *o)
{
    if (o->module && *o->module)
        return o->module;
    const char *env = getenv("COFFER_MODULE");
    if (env && *env)
        return env;
    /* Beside the executable first, so a build tree or an install under any prefix finds its own
     * module: <dir>/libcoffer-pkcs11.so (build tree), <dir>/../lib/pkcs11/... (installed). */
    static char near[4096];
    char exe[3072];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(near, sizeof near, "%s/libcoffer-pkcs11.so", exe);
            if (access(near, R_OK) == 0)
                return near;
            snprintf(near, sizeof near, "%s/../lib/pkcs11/libcoffer-pkcs11.so", exe);
            if (access(near, R_OK) == 0)
                return near;
        }
    }
    if (*COFFER_MODULE_BUILD_PATH && access(COFFER_MODULE_BUILD_PATH, R_OK) == 0)
        return COFFER_MODULE_BUILD_PATH;
    return COFFER_MODULE_INSTALL_PATH;
}

int p11_fail(const char *what, CK_RV rv)
{
    const char *hint = ckr_hint(rv);
    if (hint)
        cli_error("%s failed: %s (%s)", what, hint, ckr_name(rv));
    else
        cli_error("%s failed (%s)", what, ckr_name(rv));
    return CLI_FAIL;
}

int p11_load(const cli_opts *o, p11_module *m)
{
    memset(m, 0, sizeof(*m));
    const char *path = module_path(o);
    snprintf(m->path, sizeof(m->path), "%s", path);
    /* RTLD_NODELETE: the CLI exits right after p11_unload, and a module that links OpenSSL may
     * keep state in its static data (fetched algorithms) or register atexit handlers; unmapping it
     * first turns that into leaks or a crash at exit. */
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!m->dl) {
        cli_error("cannot load the PKCS#11 module %s: %s; name another with --module or $COFFER_MODULE",
                  path, dlerror());
        return CLI_FAIL;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    if (!get) {
        cli_error("%s is not a PKCS#11 module (it has no C_GetFunctionList)", path);
        goto fail;
    }
    CK_RV rv = get(&m->f);
    if (rv != CKR_OK || !m->f) {
        m->f = NULL;
        p11_fail("C_GetFunctionList", rv);
        goto fail;
    }
    /* The CLI is single-threaded, but say that OS locking is fine so a module needs no callbacks. */
    CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
    rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK) {
        m->f = NULL;
        if (rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_ERROR)
            cli_error("the module %s failed to start (%s); check its configuration ($COFFER_CONF) "
                      "and the messages above", path, ckr_name(rv));
        else
            p11_fail("C_Initialize", rv);
        goto fail;
    }
    return CLI_OK;
fail:
    dlclose(m->dl);
    m->dl = NULL;
    return CLI_FAIL;
}

void p11_unload(p11_module *m)
{
    if (m->f)
        m->f->C_Finalize(NULL);
    if (m->dl)
        dlclose(m->dl);
    memset(m, 0, sizeof(*m));
}

int p11_slots(p11_module *m, CK_SLOT_ID **slots, CK_ULONG *n)
{
    *slots = NULL;
    *n = 0;
    /* The list can change between the two calls (a token appears): retry on BUFFER_TOO_SMALL. */
    for (int tries = 0; tries < 5; tries++) {
        CK_ULONG count = 0;
        CK_RV rv = m->f->C_GetSlotList(CK_TRUE, NULL, &count);
        if (rv != CKR_OK)
            return p11_fail("C_GetSlotList", rv);
        CK_SLOT_ID *list = calloc(count ? count : 1, sizeof(*list));
        if (!list) {
            cli_error("out of memory");
            return CLI_FAIL;
        }
        rv = m->f->C_GetSlotList(CK_TRUE, list, &count);
        if (rv == CKR_BUFFER_TOO_SMALL) {
            free(list);
            continue;
        }
        if (rv != CKR_OK) {
            free(list);
            return p11_fail("C_GetSlotList", rv);
        }
        *slots = list;
        *n = count;
        return CLI_OK;
    }
    cli_error("the slot list keeps changing; try again");
    return CLI_FAIL;
}

static bool is_uri(const char *name)
{
    return strncmp(name, "pkcs11:", 7) == 0;
}

/* Parses a pkcs11: URI for any use; prints the problem and returns NULL when malformed. */
static P11KitUri *parse_uri(const char *name)
{
    P11KitUri *uri = p11_kit_uri_new();
    if (!uri) {
        cli_error("out of memory");
        return NULL;
    }
    int r = p11_kit_uri_parse(name, P11_KIT_URI_FOR_ANY, uri);
    if (r != P11_KIT_URI_OK) {
        cli_error("'%s' is not a valid PKCS#11 URI: %s; see RFC 7512, e.g. pkcs11:token=demo;object=web",
                  name, p11_kit_uri_message(r));
        p11_kit_uri_free(uri);
        return NULL;
    }
    if (p11_kit_uri_any_unrecognized(uri)) {
        cli_error("'%s' has attributes coffer does not know; use token=, serial=, model=, "
                  "manufacturer=, slot-id=, object=, id= and type=", name);
        p11_kit_uri_free(uri);
        return NULL;
    }
    return uri;
}

int p11_find_token(p11_module *m, const char *name, CK_SLOT_ID *slot, CK_TOKEN_INFO *ti_out)
{
    P11KitUri *uri = NULL;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, found = 0;
    CK_TOKEN_INFO match;
    memset(&match, 0, sizeof(match));
    int rc = CLI_FAIL;

    if (is_uri(name)) {
        uri = parse_uri(name);
        if (!uri)
            return CLI_USAGE;
        CK_INFO info;
        if (m->f->C_GetInfo(&info) == CKR_OK && !p11_kit_uri_match_module_info(uri, &info))
            goto none;
    }
    if ((rc = p11_slots(m, &slots, &n)) != CLI_OK)
        goto out;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        bool hit;
        if (uri) {
            CK_SLOT_ID want = p11_kit_uri_get_slot_id(uri);
            hit = p11_kit_uri_match_token_info(uri, &ti) && (want == (CK_SLOT_ID)-1 || want == slots[i]);
        } else {
            char label[sizeof(ti.label) + 1];
            p11_str(label, ti.label, sizeof(ti.label));
            hit = strcmp(label, name) == 0;
        }
        if (!hit)
            continue;
        if (found++ == 0) {
            *slot = slots[i];
            match = ti;
        }
    }
    if (found == 1) {
        if (ti_out)
            *ti_out = match;
        rc = CLI_OK;
        goto out;
    }
    if (found > 1) {
        cli_error("%lu tokens match '%s'; name one by its URI with serial= (`coffer token list` shows them)",
                  (unsigned long)found, name);
        rc = CLI_FAIL;
        goto out;
    }
none:
    cli_error("no token matches '%s'; `coffer token list` shows the tokens", name);
    rc = CLI_FAIL;
out:
    free(slots);
    if (uri)
        p11_kit_uri_free(uri);
    return rc;
}

static char *format_uri(P11KitUri *uri, P11KitUriType type)
{
    char *s = NULL;
    if (p11_kit_uri_format(uri, type, &s) != P11_KIT_URI_OK)
        s = NULL;
    p11_kit_uri_free(uri);
    return s ? s : strdup("pkcs11:");
}

char *p11_token_uri(const CK_TOKEN_INFO *ti)
{
    P11KitUri *uri = p11_kit_uri_new();
    if (!uri)
        return strdup("pkcs11:");
    *p11_kit_uri_get_token_info(uri) = *ti;
    return format_uri(uri, P11_KIT_URI_FOR_TOKEN);
}

char *p11_object_uri(const CK_TOKEN_INFO *ti, const uint8_t *label, size_t labellen,
                     const uint8_t *id, size_t idlen, CK_OBJECT_CLASS cls)
{
    P11KitUri *uri = p11_kit_uri_new();
    if (!uri)
        return strdup("pkcs11:");
    *p11_kit_uri_get_token_info(uri) = *ti;
    if (label && labellen) {
        CK_ATTRIBUTE a = { CKA_LABEL, (void *)label, labellen };
        p11_kit_uri_set_attribute(uri, &a);
    }
    if (id && idlen) {
        CK_ATTRIBUTE a = { CKA_ID, (void *)id, idlen };
        p11_kit_uri_set_attribute(uri, &a);
    }
    if (cls != (CK_OBJECT_CLASS)-1) {
        CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof(cls) };
        p11_kit_uri_set_attribute(uri, &a);
    }
    return format_uri(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN);
}

int p11_open(p11_module *m, CK_SLOT_ID slot, bool rw, CK_SESSION_HANDLE *s)
{
    CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    CK_RV rv = m->f->C_OpenSession(slot, flags, NULL, NULL, s);
    if (rv != CKR_OK)
        return p11_fail("opening a session", rv);
    return CLI_OK;
}

/* The optional coffer extension that tells how many PIN attempts remain before the PIN locks;
 * the standard interface only has the coarse token flags below. */
typedef CK_RV (*pin_tries_fn)(CK_SLOT_ID, CK_USER_TYPE, CK_ULONG *);

/* What is known about the attempts left after a failed login: the exact count when the module
 * offers coffer_pin_tries_left, else the CK_TOKEN_INFO flags (PKCS#11 2.40 §5.6: COUNT_LOW means
 * at least one failure since the last success, FINAL_TRY one attempt left). */
static const char *attempts_left(p11_module *m, CK_SLOT_ID slot, CK_USER_TYPE who, char *buf, size_t len)
{
    CK_TOKEN_INFO ti;
    bool so = who == CKU_SO;
    if (m->f->C_GetTokenInfo(slot, &ti) != CKR_OK)
        return "";
    if (ti.flags & (so ? CKF_SO_PIN_LOCKED : CKF_USER_PIN_LOCKED))
        return so ? "; the SO PIN is now locked and the token must be re-initialized"
                  : "; the user PIN is now locked: the SO can set a new one with `coffer token init-pin`";
    pin_tries_fn tries = (pin_tries_fn)dlsym(m->dl, "coffer_pin_tries_left");
    CK_ULONG left = 0;
    if (tries && tries(slot, who, &left) == CKR_OK && left != CK_UNAVAILABLE_INFORMATION) {
        snprintf(buf, len, "; %lu attempt%s left before it locks", (unsigned long)left,
                 left == 1 ? " is" : "s are");
        return buf;
    }
    if (ti.flags & (so ? CKF_SO_PIN_FINAL_TRY : CKF_USER_PIN_FINAL_TRY))
        return "; 1 attempt is left before it locks";
    if (ti.flags & (so ? CKF_SO_PIN_COUNT_LOW : CKF_USER_PIN_COUNT_LOW))
        return "; the token counts the failures and locks the PIN after too many";
    return "";
}

int p11_pin_fail(p11_module *m, CK_SLOT_ID slot, CK_USER_TYPE who, const char *what, CK_RV rv)
{
    const char *role = who == CKU_SO ? "SO" : "user";
    switch (rv) {
    case CKR_PIN_INCORRECT: {
        char buf[80];
        cli_error("%s failed: the %s PIN is incorrect (%s)%s", what, role, ckr_name(rv),
                  attempts_left(m, slot, who, buf, sizeof(buf)));
        return CLI_FAIL;
    }
    case CKR_PIN_LOCKED:
        cli_error("%s failed: the %s PIN is locked (%s); %s", what, role, ckr_name(rv),
                  who == CKU_SO ? "the token must be re-initialized"
                                : "the SO can set a new one with `coffer token init-pin`");
        return CLI_FAIL;
    case CKR_USER_PIN_NOT_INITIALIZED:
        cli_error("%s failed: the token has no user PIN yet (%s); `coffer token init-pin` sets one",
                  what, ckr_name(rv));
        return CLI_FAIL;
    default:
        return p11_fail(what, rv);
    }
}

int p11_login(p11_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE s, CK_USER_TYPE who, const char *pin)
{
    CK_RV rv = m->f->C_Login(s, who, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
        return CLI_OK;
    return p11_pin_fail(m, slot, who, who == CKU_SO ? "SO login" : "login", rv);
}

int p11_login_with(p11_module *m, const cli_opts *o, CK_SLOT_ID slot, CK_SESSION_HANDLE s,
                   pin_kind kind, pin_mode mode, bool *logged_in)
{
    char *pin = NULL;
    if (logged_in)
        *logged_in = false;
    int rc = pin_get(o, kind, mode, &pin);
    if (rc != CLI_OK || !pin)
        return rc;
    rc = p11_login(m, slot, s, kind == PIN_SO ? CKU_SO : CKU_USER, pin);
    pin_free(pin);
    if (rc == CLI_OK && logged_in)
        *logged_in = true;
    return rc;
}

int p11_find(p11_module *m, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG nt,
             CK_OBJECT_HANDLE **objs, CK_ULONG *n)
{
    *objs = NULL;
    *n = 0;
    CK_RV rv = m->f->C_FindObjectsInit(s, t, nt);
    if (rv != CKR_OK)
        return p11_fail("searching the token (C_FindObjectsInit)", rv);
    CK_OBJECT_HANDLE *all = NULL;
    CK_ULONG total = 0;
    for (;;) {
        CK_OBJECT_HANDLE chunk[64];
        CK_ULONG got = 0;
        rv = m->f->C_FindObjects(s, chunk, 64, &got);
        if (rv != CKR_OK) {
            free(all);
            m->f->C_FindObjectsFinal(s);
            return p11_fail("searching the token (C_FindObjects)", rv);
        }
        if (got == 0)
            break;
        CK_OBJECT_HANDLE *grown = realloc(all, (total + got) * sizeof(*all));
        if (!grown) {
            free(all);
            m->f->C_FindObjectsFinal(s);
            cli_error("out of memory");
            return CLI_FAIL;
        }
        all = grown;
        memcpy(all + total, chunk, got * sizeof(*chunk));
        total += got;
    }
    m->f->C_FindObjectsFinal(s);
    *objs = all;
    *n = total;
    return CLI_OK;
}

bool p11_attr(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
              uint8_t **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    CK_ATTRIBUTE a = { type, NULL, 0 };
    if (m->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return false;
    uint8_t *buf = calloc(1, a.ulValueLen + 1);
    if (!buf)
        return false;
    a.pValue = buf;
    if (m->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        free(buf);
        return false;
    }
    *val = buf;
    *len = a.ulValueLen;
    return true;
}

bool p11_attr_ulong(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                    CK_ULONG *v)
{
    CK_ATTRIBUTE a = { type, v, sizeof(*v) };
    return m->f->C_GetAttributeValue(s, o, &a, 1) == CKR_OK && a.ulValueLen == sizeof(*v);
}

int p11_attr_bool(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL b = CK_FALSE;
    CK_ATTRIBUTE a = { type, &b, sizeof(b) };
    if (m->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK || a.ulValueLen != sizeof(b))
        return -1;
    return b ? 1 : 0;
}
