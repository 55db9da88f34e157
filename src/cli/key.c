/* key.c: `coffer key list | generate | import | delete`: the objects of a token.
 *
 * Key material parsed on import (PEM/DER through src/crypto) goes into wiped buffers and leaves
 * this process only as a C_CreateObject template; generated keys never leave the module. */
#include <getopt.h>
#include <p11-kit/uri.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"
#include "cli/cli.h"
#include "cli/p11.h"
#include "crypto/crypto.h"

static const char key_usage[] =
    "Usage: coffer key COMMAND [OPTIONS]\n"
    "\n"
    "  list --token TOKEN [--json]                       list the objects of a token\n"
    "  generate --token TOKEN --type TYPE --label LABEL  generate a key in the token\n"
    "  import --token TOKEN --label LABEL [--aes] FILE   import a key or certificate\n"
    "  delete OBJECT-URI | --token TOKEN LABEL           delete objects\n"
    "\n"
    "TOKEN is a PKCS#11 URI (pkcs11:token=demo) or a token label; OBJECT-URI is e.g.\n"
    "pkcs11:token=demo;object=web;type=private. `coffer key COMMAND --help` describes each command.\n";

static const char list_usage[] =
    "Usage: coffer key list --token TOKEN [--json] [--login] [--pin-file FILE]\n"
    "\n"
    "Lists the objects of TOKEN: class, key type, size in bits, label, id (hex), the flags\n"
    "sensitive / extractable / local, and each object's PKCS#11 URI. Logs in as user when a PIN\n"
    "is given (--pin-file FILE or $COFFER_PIN); without one only public objects are listed.\n"
    "\n"
    "  --token TOKEN   the token (URI or label)\n"
    "  --login         ask for the user PIN on the terminal when no file or variable gives it\n"
    "  --json          print a JSON array of objects {class, key_type, label, id, bits, sensitive,\n"
    "                  extractable, local, uri} (plus curve and ec_point for EC keys)\n";

static const char generate_usage[] =
    "Usage: coffer key generate --token TOKEN --type TYPE --label LABEL [--id HEX] [--extractable]\n"
    "\n"
    "Generates a key inside TOKEN. The private or secret key is a token object that is private,\n"
    "sensitive and (unless --extractable) not extractable; a key pair gets a public key object too.\n"
    "\n"
    "  --type TYPE     rsa:2048 | rsa:3072 | rsa:4096 | ec:p256 | ec:p384 | ec:p521 | ed25519 |\n"
    "                  aes:128 | aes:192 | aes:256 | generic:BITS (an HMAC / derivation secret)\n"
    "  --label LABEL   the CKA_LABEL of the new objects\n"
    "  --id HEX        the CKA_ID (default: SHA-1 of the public key, or 8 random bytes for a\n"
    "                  secret key)\n"
    "  --extractable   allow the key to be wrapped out of the token later\n"
    "  --pin-file FILE the user PIN (else $COFFER_PIN, else asked on the terminal)\n";

static const char import_usage[] =
    "Usage: coffer key import --token TOKEN --label LABEL [--id HEX] [--aes] [--extractable] FILE\n"
    "\n"
    "Imports FILE into TOKEN:\n"
    "  - a private key, PEM or DER, PKCS#8 or traditional (RSA, EC P-256/P-384/P-521, Ed25519):\n"
    "    a private key object (sensitive, not extractable) and its public key object;\n"
    "  - an X.509 certificate, PEM or DER: a certificate object (CKC_X_509);\n"
    "  - with --aes, a raw binary AES key of 16, 24 or 32 bytes: a secret key object.\n"
    "\n"
    "  --id HEX        the CKA_ID (default: SHA-1 of the public key; for a certificate the id of\n"
    "                  the key with the same label, if any; 8 random bytes for an AES key)\n"
    "  --extractable   allow the key to be wrapped out of the token later\n"
    "  --pin-file FILE the user PIN (else $COFFER_PIN, else asked on the terminal)\n";

static const char delete_usage[] =
    "Usage: coffer key delete OBJECT-URI\n"
    "       coffer key delete --token TOKEN LABEL\n"
    "\n"
    "Deletes every object that matches: a PKCS#11 URI naming the token and the object\n"
    "(pkcs11:token=demo;object=web deletes both halves of the key pair 'web';\n"
    "add ;type=private or ;id=%01%02 to narrow it), or a label in TOKEN.\n"
    "Needs the user PIN (--pin-file FILE, else $COFFER_PIN, else asked on the terminal).\n";

/* ---- templates ------------------------------------------------------------------------- */
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

typedef struct {
    CK_ATTRIBUTE a[32];
    CK_ULONG n;
} tmpl;

static void add(tmpl *t, CK_ATTRIBUTE_TYPE type, const void *p, size_t len)
{
    if (t->n < sizeof(t->a) / sizeof(t->a[0]))
        t->a[t->n++] = (CK_ATTRIBUTE){ type, (void *)p, len };
}
static void add_bool(tmpl *t, CK_ATTRIBUTE_TYPE type, bool v)
{
    add(t, type, v ? &yes : &no, sizeof(CK_BBOOL));
}
static void add_buf(tmpl *t, CK_ATTRIBUTE_TYPE type, const cf_buf *b)
{
    add(t, type, b->p, b->len);
}

/* ---- key types --------------------------------------------------------------------------- */
typedef enum { KT_RSA, KT_EC, KT_ED25519, KT_AES, KT_GENERIC } key_kind;
typedef struct {
    key_kind kind;
    unsigned bits;
    cf_curve curve;
} key_type;

static bool parse_type(const char *s, key_type *kt)
{
    static const struct {
        const char *name;
        key_type kt;
    } fixed[] = {
        { "rsa:2048", { KT_RSA, 2048, 0 } },        { "rsa:3072", { KT_RSA, 3072, 0 } },
        { "rsa:4096", { KT_RSA, 4096, 0 } },        { "ec:p256", { KT_EC, 256, CF_CURVE_P256 } },
        { "ec:p384", { KT_EC, 384, CF_CURVE_P384 } }, { "ec:p521", { KT_EC, 521, CF_CURVE_P521 } },
        { "ed25519", { KT_ED25519, 255, CF_CURVE_ED25519 } },
        { "aes:128", { KT_AES, 128, 0 } },          { "aes:192", { KT_AES, 192, 0 } },
        { "aes:256", { KT_AES, 256, 0 } },
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strcmp(s, fixed[i].name) == 0) {
            *kt = fixed[i].kt;
            return true;
        }
    }
    if (strncmp(s, "generic:", 8) == 0) {
        char *end;
        unsigned long bits = strtoul(s + 8, &end, 10);
        if (*end || s[8] < '0' || s[8] > '9' || bits == 0 || bits % 8 || bits > 4096)
            return false;
        *kt = (key_type){ KT_GENERIC, (unsigned)bits, 0 };
        return true;
    }
    return false;
}

static unsigned curve_bits(cf_curve c)
{
    switch (c) {
    case CF_CURVE_P256: return 256;
    case CF_CURVE_P384: return 384;
    case CF_CURVE_P521: return 521;
    case CF_CURVE_ED25519: return 255;
    default: return 0;
    }
}

static const char *curve_name(cf_curve c)
{
    switch (c) {
    case CF_CURVE_P256: return "p256";
    case CF_CURVE_P384: return "p384";
    case CF_CURVE_P521: return "p521";
    case CF_CURVE_ED25519: return "ed25519";
    default: return NULL;
    }
}

/* SHA-1 of the public key as the default CKA_ID (what OpenSC and p11tool do): of the modulus
 * for RSA, of the raw public point for EC and Ed25519. */
static bool sha1_id(const uint8_t *p, size_t n, uint8_t id[20])
{
    size_t len = 20;
    return cf_hash(CF_HASH_SHA1, p, n, id, &len) == CF_OK && len == 20;
}

/* ---- shared steps ------------------------------------------------------------------------ */
/* Parses --id HEX into *id (malloc'd). */
static int parse_id(const char *cmd, const char *hex, uint8_t **id, size_t *idlen)
{
    if (!hex_decode(hex, id, idlen))
        return cli_usage_error(cmd, "--id wants hex bytes such as 01a2ff (or 01:a2:ff), not '%s'", hex);
    return CLI_OK;
}

/* Loads the module, finds the token, opens a session and logs in as user. */
static int open_token(const cli_opts *o, const char *token, bool rw, pin_mode mode, p11_module *m,
                      CK_SLOT_ID *slot, CK_TOKEN_INFO *ti, CK_SESSION_HANDLE *s, bool *logged_in)
{
    *s = CK_INVALID_HANDLE;
    int rc = p11_load(o, m);
    if (rc != CLI_OK)
        return rc;
    if ((rc = p11_find_token(m, token, slot, ti)) != CLI_OK ||
        (rc = p11_open(m, *slot, rw, s)) != CLI_OK ||
        (rc = p11_login_with(m, o, *slot, *s, PIN_USER, mode, logged_in)) != CLI_OK) {
        if (*s != CK_INVALID_HANDLE)
            m->f->C_CloseSession(*s);
        *s = CK_INVALID_HANDLE;
        p11_unload(m);
        return rc;
    }
    return CLI_OK;
}

static void close_token(p11_module *m, CK_SESSION_HANDLE s)
{
    if (s != CK_INVALID_HANDLE) {
        m->f->C_Logout(s);
        m->f->C_CloseSession(s);
    }
    p11_unload(m);
}

/* Labels name keys on the command line, so two keys of one class must not share one. */
static int check_label_free(p11_module *m, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_CLASS cls,
                            const char *token)
{
    CK_ATTRIBUTE t[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_LABEL, (void *)label, strlen(label) },
    };
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG n = 0;
    int rc = p11_find(m, s, t, 2, &objs, &n);
    free(objs);
    if (rc != CLI_OK)
        return rc;
    if (n > 0) {
        const char *what = cls == CKO_SECRET_KEY ? "secret key" : cls == CKO_CERTIFICATE ? "certificate"
                                                                                     : "private key";
        cli_error("token '%s' already holds a %s labelled '%s'; choose another label or delete it "
                  "(`coffer key delete --token '%s' '%s'`)", token, what, label, token, label);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static void print_created(const CK_TOKEN_INFO *ti, const char *label, const uint8_t *id, size_t idlen,
                          CK_OBJECT_CLASS cls)
{
    char *uri = p11_object_uri(ti, (const uint8_t *)label, strlen(label), id, idlen, cls);
    printf("  %-8s %s\n", cko_name(cls), uri);
    free(uri);
}

/* ---- key list ---------------------------------------------------------------------------- */
typedef struct {
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE ktype;
    bool has_ktype;
    uint8_t *label, *id, *ec_point;
    size_t labellen, idlen, ec_point_len;
    unsigned bits;
    cf_curve curve;
    int sensitive, extractable, local;
} obj_row;

static unsigned bits_of_integer(const uint8_t *p, size_t n)
{
    while (n > 0 && *p == 0) {
        p++;
        n--;
    }
    if (n == 0)
        return 0;
    unsigned bits = (unsigned)(n - 1) * 8;
    for (uint8_t b = *p; b; b >>= 1)
        bits++;
    return bits;
}

static void read_row(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, obj_row *r)
{
    memset(r, 0, sizeof(*r));
    r->cls = (CK_OBJECT_CLASS)-1;
    p11_attr_ulong(m, s, h, CKA_CLASS, &r->cls);
    p11_attr(m, s, h, CKA_LABEL, &r->label, &r->labellen);
    p11_attr(m, s, h, CKA_ID, &r->id, &r->idlen);
    r->sensitive = r->extractable = r->local = -1;
    bool key = r->cls == CKO_PRIVATE_KEY || r->cls == CKO_PUBLIC_KEY || r->cls == CKO_SECRET_KEY;
    if (!key)
        return;
    r->has_ktype = p11_attr_ulong(m, s, h, CKA_KEY_TYPE, &r->ktype);
    r->local = p11_attr_bool(m, s, h, CKA_LOCAL);
    if (r->cls != CKO_PUBLIC_KEY) {
        r->sensitive = p11_attr_bool(m, s, h, CKA_SENSITIVE);
        r->extractable = p11_attr_bool(m, s, h, CKA_EXTRACTABLE);
    }
    uint8_t *v = NULL;
    size_t vlen = 0;
    CK_ULONG ul = 0;
    if (!r->has_ktype)
        return;
    switch (r->ktype) {
    case CKK_RSA:
        if (p11_attr(m, s, h, CKA_MODULUS, &v, &vlen))
            r->bits = bits_of_integer(v, vlen);
        else if (p11_attr_ulong(m, s, h, CKA_MODULUS_BITS, &ul))
            r->bits = (unsigned)ul;
        break;
    case CKK_EC:
    case CKK_EC_EDWARDS:
        if (p11_attr(m, s, h, CKA_EC_PARAMS, &v, &vlen)) {
            r->curve = cf_curve_from_params(v, vlen);
            r->bits = curve_bits(r->curve);
        }
        p11_attr(m, s, h, CKA_EC_POINT, &r->ec_point, &r->ec_point_len);
        break;
    default:
        if (r->cls == CKO_SECRET_KEY && p11_attr_ulong(m, s, h, CKA_VALUE_LEN, &ul))
            r->bits = (unsigned)ul * 8;
        break;
    }
    free(v);
}

static void free_row(obj_row *r)
{
    free(r->label);
    free(r->id);
    free(r->ec_point);
}

static int row_order(const void *a, const void *b)
{
    const obj_row *x = a, *y = b;
    size_t n = x->labellen < y->labellen ? x->labellen : y->labellen;
    int c = n ? memcmp(x->label, y->label, n) : 0;
    if (c == 0 && x->labellen != y->labellen)
        c = x->labellen < y->labellen ? -1 : 1;
    if (c == 0 && x->cls != y->cls)
        c = x->cls < y->cls ? -1 : 1;
    return c;
}

static const char *class_text(CK_OBJECT_CLASS c, char *buf, size_t len)
{
    const char *n = cko_name(c);
    if (n)
        return n;
    snprintf(buf, len, "0x%lx", (unsigned long)c);
    return buf;
}

static const char *ktype_text(const obj_row *r, char *buf, size_t len)
{
    if (r->cls == CKO_CERTIFICATE)
        return "x509";
    if (!r->has_ktype)
        return "-";
    const char *n = ckk_name(r->ktype);
    if (n)
        return n;
    snprintf(buf, len, "0x%lx", (unsigned long)r->ktype);
    return buf;
}

static json_t *tri_json(int v)
{
    return v < 0 ? json_null() : json_boolean(v);
}

static int key_list(int argc, char **argv, cli_opts *o)
{
    static const struct option extra[] = {
        { "token", required_argument, NULL, OPT_CMD },
        { "login", no_argument, NULL, OPT_CMD + 1 },
        { 0 },
    };
    const struct option *opts = cli_options(extra, true);
    const char *token = NULL;
    bool login = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(list_usage, stdout);
            return CLI_OK;
        }
        if (c == OPT_CMD)
            token = optarg;
        else if (c == OPT_CMD + 1)
            login = true;
        else if (!cli_common_option(c, optarg, o))
            return cli_bad_option("key list", c, argv);
    }
    if (optind < argc)
        return cli_usage_error("key list", "unexpected argument '%s'", argv[optind]);
    if (!token)
        return cli_usage_error("key list", "--token TOKEN is required");

    p11_module m;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s;
    bool logged_in = false;
    int rc = open_token(o, token, false, login ? PIN_MAY_PROMPT : PIN_FROM_FILE_OR_ENV, &m, &slot, &ti, &s,
                        &logged_in);
    if (rc != CLI_OK)
        return rc;
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG n = 0;
    obj_row *rows = NULL;
    if ((rc = p11_find(&m, s, NULL, 0, &objs, &n)) != CLI_OK)
        goto out;
    rows = calloc(n ? n : 1, sizeof(*rows));
    if (!rows) {
        cli_error("out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++)
        read_row(&m, s, objs[i], &rows[i]);
    qsort(rows, n, sizeof(*rows), row_order);

    json_t *arr = o->json ? json_array() : NULL;
    if (!arr) {
        if (!logged_in)
            fprintf(stderr, "coffer: no user PIN given (--pin-file, $COFFER_PIN or --login): "
                            "listing public objects only\n");
        printf("%-10s %-10s %5s  %-27s %-20s %s\n", "CLASS", "TYPE", "BITS", "FLAGS", "LABEL", "ID");
    }
    for (CK_ULONG i = 0; i < n; i++) {
        obj_row *r = &rows[i];
        char cbuf[24], kbuf[24], bits[16] = "-";
        char *label = malloc(r->labellen + 1), *id = hex_encode(r->id, r->idlen);
        char *uri = p11_object_uri(&ti, r->label, r->labellen, r->id, r->idlen, r->cls);
        if (label) {
            if (r->labellen)
                memcpy(label, r->label, r->labellen);
            label[r->labellen] = '\0';
        }
        if (r->bits)
            snprintf(bits, sizeof(bits), "%u", r->bits);
        if (arr) {
            json_t *e = json_object();
            json_object_set_new(e, "class", json_string(class_text(r->cls, cbuf, sizeof(cbuf))));
            json_object_set_new(e, "key_type", r->cls == CKO_CERTIFICATE || r->has_ktype
                                                   ? json_string(ktype_text(r, kbuf, sizeof(kbuf)))
                                                   : json_null());
            json_object_set_new(e, "label", json_stringn(label ? label : "", label ? r->labellen : 0));
            json_object_set_new(e, "id", json_string(id ? id : ""));
            json_object_set_new(e, "bits", r->bits ? json_integer(r->bits) : json_null());
            json_object_set_new(e, "sensitive", tri_json(r->sensitive));
            json_object_set_new(e, "extractable", tri_json(r->extractable));
            json_object_set_new(e, "local", tri_json(r->local));
            if (curve_name(r->curve))
                json_object_set_new(e, "curve", json_string(curve_name(r->curve)));
            if (r->ec_point) {
                char *pt = hex_encode(r->ec_point, r->ec_point_len);
                json_object_set_new(e, "ec_point", json_string(pt ? pt : ""));
                free(pt);
            }
            json_object_set_new(e, "uri", json_string(uri));
            json_array_append_new(arr, e);
        } else {
            char flags[64];
            snprintf(flags, sizeof(flags), "%s%s%s", r->sensitive == 1 ? "sensitive," : "",
                     r->extractable == 1 ? "extractable," : "", r->local == 1 ? "local," : "");
            size_t fl = strlen(flags);
            if (fl)
                flags[fl - 1] = '\0';
            printf("%-10s %-10s %5s  %-27s %-20s %s\n", class_text(r->cls, cbuf, sizeof(cbuf)),
                   ktype_text(r, kbuf, sizeof(kbuf)), bits, fl ? flags : "-", label ? label : "",
                   id && *id ? id : "-");
            printf("           %s\n", uri);
        }
        free(label);
        free(id);
        free(uri);
    }
    if (arr)
        rc = json_print(arr);
out:
    for (CK_ULONG i = 0; rows && i < n; i++)
        free_row(&rows[i]);
    free(rows);
    free(objs);
    close_token(&m, s);
    return rc;
}

/* ---- key generate ------------------------------------------------------------------------ */
/* After a key pair is made without --id: CKA_ID := SHA-1 of the public key, on both halves. */
static int set_default_id(p11_module *m, CK_SESSION_HANDLE s, const key_type *kt, CK_OBJECT_HANDLE pub,
                          CK_OBJECT_HANDLE priv, uint8_t id[20])
{
    uint8_t *v = NULL;
    size_t vlen = 0;
    bool ok = false;
    if (kt->kind == KT_RSA) {
        ok = p11_attr(m, s, pub, CKA_MODULUS, &v, &vlen) && sha1_id(v, vlen, id);
    } else if (p11_attr(m, s, pub, CKA_EC_POINT, &v, &vlen)) {
        cf_buf raw = { 0 };
        ok = cf_ec_point_from_der(kt->curve, v, vlen, &raw) == CF_OK && sha1_id(raw.p, raw.len, id);
        cf_buf_free(&raw);
    }
    free(v);
    if (!ok) {
        cli_error("the key was generated but its public key could not be read to derive its id; "
                  "set one with --id next time");
        return CLI_FAIL;
    }
    CK_ATTRIBUTE a = { CKA_ID, id, 20 };
    CK_RV rv = m->f->C_SetAttributeValue(s, pub, &a, 1);
    if (rv == CKR_OK)
        rv = m->f->C_SetAttributeValue(s, priv, &a, 1);
    if (rv != CKR_OK)
        return p11_fail("the key was generated, but setting its CKA_ID", rv);
    return CLI_OK;
}

static int key_generate(int argc, char **argv, cli_opts *o)
{
    static const struct option extra[] = {
        { "token", required_argument, NULL, OPT_CMD },
        { "type", required_argument, NULL, OPT_CMD + 1 },
        { "label", required_argument, NULL, OPT_CMD + 2 },
        { "id", required_argument, NULL, OPT_CMD + 3 },
        { "extractable", no_argument, NULL, OPT_CMD + 4 },
        { 0 },
    };
    const char *cmd = "key generate";
    const struct option *opts = cli_options(extra, false);
    const char *token = NULL, *type = NULL, *label = NULL, *idhex = NULL;
    bool extractable = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: fputs(generate_usage, stdout); return CLI_OK;
        case OPT_CMD: token = optarg; break;
        case OPT_CMD + 1: type = optarg; break;
        case OPT_CMD + 2: label = optarg; break;
        case OPT_CMD + 3: idhex = optarg; break;
        case OPT_CMD + 4: extractable = true; break;
        default:
            if (!cli_common_option(c, optarg, o))
                return cli_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!token || !type || !label)
        return cli_usage_error(cmd, "--token, --type and --label are required");
    key_type kt;
    if (!parse_type(type, &kt))
        return cli_usage_error(cmd, "unknown key type '%s' (rsa:2048|3072|4096, ec:p256|p384|p521, "
                                    "ed25519, aes:128|192|256, generic:BITS)", type);
    if (!*label)
        return cli_usage_error(cmd, "the label must not be empty");
    uint8_t *id = NULL;
    size_t idlen = 0;
    if (idhex && parse_id(cmd, idhex, &id, &idlen) != CLI_OK)
        return CLI_USAGE;

    p11_module m;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s;
    int rc = open_token(o, token, true, PIN_MAY_PROMPT, &m, &slot, &ti, &s, NULL);
    if (rc != CLI_OK) {
        free(id);
        return rc;
    }
    bool secret = kt.kind == KT_AES || kt.kind == KT_GENERIC;
    cf_buf params = { 0 };
    uint8_t idbuf[20];
    CK_RV rv;
    if ((rc = check_label_free(&m, s, label, secret ? CKO_SECRET_KEY : CKO_PRIVATE_KEY, token)) != CLI_OK)
        goto out;
    if (!id && secret) {
        idlen = 8;
        id = malloc(idlen);
        if (!id || cf_random(id, idlen) != CF_OK) {
            cli_error("cannot draw random bytes for the key id; give one with --id");
            rc = CLI_FAIL;
            goto out;
        }
    }

    CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY, priv_cls = CKO_PRIVATE_KEY, sec_cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype;
    CK_ULONG bits = kt.bits, value_len = kt.bits / 8;
    static const uint8_t f4[] = { 0x01, 0x00, 0x01 };
    tmpl pub = { .n = 0 }, priv = { .n = 0 };
    CK_MECHANISM mech = { 0, NULL, 0 };
    size_t llen = strlen(label);

    if (secret) {
        ktype = kt.kind == KT_AES ? CKK_AES : CKK_GENERIC_SECRET;
        mech.mechanism = kt.kind == KT_AES ? CKM_AES_KEY_GEN : CKM_GENERIC_SECRET_KEY_GEN;
        add(&priv, CKA_CLASS, &sec_cls, sizeof(sec_cls));
        add(&priv, CKA_KEY_TYPE, &ktype, sizeof(ktype));
        add(&priv, CKA_VALUE_LEN, &value_len, sizeof(value_len));
    } else {
        ktype = kt.kind == KT_RSA ? CKK_RSA : kt.kind == KT_EC ? CKK_EC : CKK_EC_EDWARDS;
        mech.mechanism = kt.kind == KT_RSA  ? CKM_RSA_PKCS_KEY_PAIR_GEN
                       : kt.kind == KT_EC ? CKM_EC_KEY_PAIR_GEN
                                          : CKM_EC_EDWARDS_KEY_PAIR_GEN;
        add(&pub, CKA_CLASS, &pub_cls, sizeof(pub_cls));
        add(&pub, CKA_KEY_TYPE, &ktype, sizeof(ktype));
        add_bool(&pub, CKA_TOKEN, true);
        add_bool(&pub, CKA_PRIVATE, false);
        add(&pub, CKA_LABEL, label, llen);
        if (id)
            add(&pub, CKA_ID, id, idlen);
        add_bool(&pub, CKA_VERIFY, true);
        add(&priv, CKA_CLASS, &priv_cls, sizeof(priv_cls));
        add(&priv, CKA_KEY_TYPE, &ktype, sizeof(ktype));
        add_bool(&priv, CKA_SIGN, true);
        if (kt.kind == KT_RSA) {
            add(&pub, CKA_MODULUS_BITS, &bits, sizeof(bits));
            add(&pub, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
            add_bool(&pub, CKA_ENCRYPT, true);
            add_bool(&pub, CKA_WRAP, true);
            add_bool(&priv, CKA_DECRYPT, true);
            add_bool(&priv, CKA_UNWRAP, true);
        } else {
            if (cf_curve_to_params(kt.curve, &params) != CF_OK) {
                cli_error("cannot encode the curve parameters of %s", type);
                rc = CLI_FAIL;
                goto out;
            }
            add_buf(&pub, CKA_EC_PARAMS, &params);
            if (kt.kind == KT_EC)
                add_bool(&priv, CKA_DERIVE, true);
        }
    }
    add_bool(&priv, CKA_TOKEN, true);
    add_bool(&priv, CKA_PRIVATE, true);
    add_bool(&priv, CKA_SENSITIVE, true);
    add_bool(&priv, CKA_EXTRACTABLE, extractable);
    add(&priv, CKA_LABEL, label, llen);
    if (id)
        add(&priv, CKA_ID, id, idlen);
    if (kt.kind == KT_AES) {
        add_bool(&priv, CKA_ENCRYPT, true);
        add_bool(&priv, CKA_DECRYPT, true);
        add_bool(&priv, CKA_WRAP, true);
        add_bool(&priv, CKA_UNWRAP, true);
    } else if (kt.kind == KT_GENERIC) {
        add_bool(&priv, CKA_SIGN, true);
        add_bool(&priv, CKA_VERIFY, true);
        add_bool(&priv, CKA_DERIVE, true);
    }

    char what[64];
    snprintf(what, sizeof(what), "generating the %s key", type);
    if (secret) {
        CK_OBJECT_HANDLE h;
        rv = m.f->C_GenerateKey(s, &mech, priv.a, priv.n, &h);
        if (rv != CKR_OK) {
            rc = p11_fail(what, rv);
            goto out;
        }
    } else {
        CK_OBJECT_HANDLE hpub, hpriv;
        rv = m.f->C_GenerateKeyPair(s, &mech, pub.a, pub.n, priv.a, priv.n, &hpub, &hpriv);
        if (rv != CKR_OK) {
            rc = p11_fail(what, rv);
            goto out;
        }
        if (!id) {
            if ((rc = set_default_id(&m, s, &kt, hpub, hpriv, idbuf)) != CLI_OK)
                goto out;
            id = malloc(20);
            if (id) {
                memcpy(id, idbuf, 20);
                idlen = 20;
            }
        }
    }
    char *idtext = hex_encode(id, idlen);
    printf("generated %s key '%s' (id %s)\n", type, label, idtext ? idtext : "?");
    free(idtext);
    print_created(&ti, label, id, idlen, secret ? CKO_SECRET_KEY : CKO_PRIVATE_KEY);
    if (!secret)
        print_created(&ti, label, id, idlen, CKO_PUBLIC_KEY);
    rc = CLI_OK;
out:
    cf_buf_free(&params);
    free(id);
    close_token(&m, s);
    return rc;
}

/* ---- key import ----------------------------------------------------------------------------- */
static int create(p11_module *m, CK_SESSION_HANDLE s, tmpl *t, const char *what)
{
    CK_OBJECT_HANDLE h;
    CK_RV rv = m->f->C_CreateObject(s, t->a, t->n, &h);
    return rv == CKR_OK ? CLI_OK : p11_fail(what, rv);
}

/* The private key object and its public key object, from a parsed key. */
static int import_pkey(p11_module *m, CK_SESSION_HANDLE s, cf_pkey *k, const char *label, uint8_t **id,
                       size_t *idlen, bool extractable, CK_KEY_TYPE *ktype_out)
{
    CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY, priv_cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE ktype;
    tmpl pub = { .n = 0 }, priv = { .n = 0 };
    cf_rsa_parts rsa = { 0 };
    cf_buf point = { 0 }, scalar = { 0 }, point_der = { 0 }, params = { 0 };
    cf_curve curve = CF_CURVE_NONE;
    uint8_t sha[20];
    int rc = CLI_FAIL;
    size_t llen = strlen(label);

    switch (cf_pkey_get_type(k)) {
    case CF_PKEY_RSA:
        ktype = CKK_RSA;
        if (cf_pkey_rsa_export(k, true, &rsa) != CF_OK || !rsa.d.len) {
            cli_error("cannot read the RSA key's components");
            goto out;
        }
        if (!*id && !sha1_id(rsa.n.p, rsa.n.len, sha))
            goto hash_fail;
        add_buf(&pub, CKA_MODULUS, &rsa.n);
        add_buf(&pub, CKA_PUBLIC_EXPONENT, &rsa.e);
        add_bool(&pub, CKA_ENCRYPT, true);
        add_bool(&pub, CKA_WRAP, true);
        add_buf(&priv, CKA_MODULUS, &rsa.n);
        add_buf(&priv, CKA_PUBLIC_EXPONENT, &rsa.e);
        add_buf(&priv, CKA_PRIVATE_EXPONENT, &rsa.d);
        if (rsa.p.len && rsa.q.len) {
            add_buf(&priv, CKA_PRIME_1, &rsa.p);
            add_buf(&priv, CKA_PRIME_2, &rsa.q);
        }
        if (rsa.dp.len && rsa.dq.len && rsa.qinv.len) {
            add_buf(&priv, CKA_EXPONENT_1, &rsa.dp);
            add_buf(&priv, CKA_EXPONENT_2, &rsa.dq);
            add_buf(&priv, CKA_COEFFICIENT, &rsa.qinv);
        }
        add_bool(&priv, CKA_DECRYPT, true);
        add_bool(&priv, CKA_UNWRAP, true);
        break;
    case CF_PKEY_EC:
    case CF_PKEY_ED25519:
        if (cf_pkey_ec_export(k, true, &curve, &point, &scalar) != CF_OK || !scalar.len ||
            cf_ec_point_to_der(point.p, point.len, &point_der) != CF_OK ||
            cf_curve_to_params(curve, &params) != CF_OK) {
            cli_error("cannot read the key's curve and points (coffer supports P-256, P-384, P-521 and Ed25519)");
            goto out;
        }
        ktype = curve == CF_CURVE_ED25519 ? CKK_EC_EDWARDS : CKK_EC;
        if (!*id && !sha1_id(point.p, point.len, sha))
            goto hash_fail;
        add_buf(&pub, CKA_EC_PARAMS, &params);
        add_buf(&pub, CKA_EC_POINT, &point_der);
        add_buf(&priv, CKA_EC_PARAMS, &params);
        add_buf(&priv, CKA_VALUE, &scalar);
        if (ktype == CKK_EC)
            add_bool(&priv, CKA_DERIVE, true);
        break;
    default:
        cli_error("coffer imports RSA, EC (P-256, P-384, P-521) and Ed25519 keys only");
        goto out;
    }
    if (!*id) {
        if (!(*id = malloc(sizeof(sha)))) {
            cli_error("out of memory");
            goto out;
        }
        memcpy(*id, sha, sizeof(sha));
        *idlen = sizeof(sha);
    }
    *ktype_out = ktype;
    add(&pub, CKA_CLASS, &pub_cls, sizeof(pub_cls));
    add(&pub, CKA_KEY_TYPE, &ktype, sizeof(ktype));
    add_bool(&pub, CKA_TOKEN, true);
    add_bool(&pub, CKA_PRIVATE, false);
    add(&pub, CKA_LABEL, label, llen);
    add(&pub, CKA_ID, *id, *idlen);
    add_bool(&pub, CKA_VERIFY, true);
    add(&priv, CKA_CLASS, &priv_cls, sizeof(priv_cls));
    add(&priv, CKA_KEY_TYPE, &ktype, sizeof(ktype));
    add_bool(&priv, CKA_TOKEN, true);
    add_bool(&priv, CKA_PRIVATE, true);
    add_bool(&priv, CKA_SENSITIVE, true);
    add_bool(&priv, CKA_EXTRACTABLE, extractable);
    add(&priv, CKA_LABEL, label, llen);
    add(&priv, CKA_ID, *id, *idlen);
    add_bool(&priv, CKA_SIGN, true);
    if ((rc = create(m, s, &priv, "importing the private key")) != CLI_OK)
        goto out;
    rc = create(m, s, &pub, "the private key was imported, but creating its public key object");
    goto out;
hash_fail:
    cli_error("cannot compute the key id; give one with --id");
out:
    cf_rsa_parts_free(&rsa);
    cf_buf_free(&point);
    cf_buf_free(&scalar);
    cf_buf_free(&point_der);
    cf_buf_free(&params);
    return rc;
}

/* The id of a key already in the token with this label: a certificate imported under its key's
 * label gets its key's id, which is how PKCS#11 applications pair them. */
static bool id_of_label(p11_module *m, CK_SESSION_HANDLE s, const char *label, uint8_t **id, size_t *idlen)
{
    static const CK_OBJECT_CLASS classes[] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY };
    for (size_t i = 0; i < 2; i++) {
        CK_OBJECT_CLASS cls = classes[i];
        CK_ATTRIBUTE t[] = {
            { CKA_CLASS, &cls, sizeof(cls) },
            { CKA_LABEL, (void *)label, strlen(label) },
        };
        CK_OBJECT_HANDLE *objs = NULL;
        CK_ULONG n = 0;
        bool found = p11_find(m, s, t, 2, &objs, &n) == CLI_OK && n == 1 &&
                     p11_attr(m, s, objs[0], CKA_ID, id, idlen) && *idlen > 0;
        free(objs);
        if (found)
            return true;
        free(*id);
        *id = NULL;
        *idlen = 0;
    }
    return false;
}

static int import_cert(p11_module *m, CK_SESSION_HANDLE s, const cf_x509_info *x, const char *label,
                       uint8_t **id, size_t *idlen)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ctype = CKC_X_509;
    uint8_t sha[20];
    if (!*id && !id_of_label(m, s, label, id, idlen)) {
        if (!sha1_id(x->der.p, x->der.len, sha) || !(*id = malloc(sizeof(sha)))) {
            cli_error("cannot compute the certificate id; give one with --id");
            return CLI_FAIL;
        }
        memcpy(*id, sha, sizeof(sha));
        *idlen = sizeof(sha);
    }
    tmpl t = { .n = 0 };
    add(&t, CKA_CLASS, &cls, sizeof(cls));
    add(&t, CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype));
    add_bool(&t, CKA_TOKEN, true);
    add_bool(&t, CKA_PRIVATE, false);
    add(&t, CKA_LABEL, label, strlen(label));
    add(&t, CKA_ID, *id, *idlen);
    add_buf(&t, CKA_VALUE, &x->der);
    add_buf(&t, CKA_SUBJECT, &x->subject);
    add_buf(&t, CKA_ISSUER, &x->issuer);
    add_buf(&t, CKA_SERIAL_NUMBER, &x->serial);
    return create(m, s, &t, "importing the certificate");
}

static int import_aes(p11_module *m, CK_SESSION_HANDLE s, const uint8_t *key, size_t keylen,
                      const char *label, const uint8_t *id, size_t idlen, bool extractable)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_AES;
    tmpl t = { .n = 0 };
    add(&t, CKA_CLASS, &cls, sizeof(cls));
    add(&t, CKA_KEY_TYPE, &ktype, sizeof(ktype));
    add_bool(&t, CKA_TOKEN, true);
    add_bool(&t, CKA_PRIVATE, true);
    add_bool(&t, CKA_SENSITIVE, true);
    add_bool(&t, CKA_EXTRACTABLE, extractable);
    add(&t, CKA_LABEL, label, strlen(label));
    add(&t, CKA_ID, id, idlen);
    add_bool(&t, CKA_ENCRYPT, true);
    add_bool(&t, CKA_DECRYPT, true);
    add_bool(&t, CKA_WRAP, true);
    add_bool(&t, CKA_UNWRAP, true);
    add(&t, CKA_VALUE, key, keylen);
    return create(m, s, &t, "importing the AES key");
}

static bool has_pem_tag(const uint8_t *p, size_t n, const char *tag)
{
    return memmem(p, n, tag, strlen(tag)) != NULL;
}

static int key_import(int argc, char **argv, cli_opts *o)
{
    static const struct option extra[] = {
        { "token", required_argument, NULL, OPT_CMD },
        { "label", required_argument, NULL, OPT_CMD + 1 },
        { "id", required_argument, NULL, OPT_CMD + 2 },
        { "aes", no_argument, NULL, OPT_CMD + 3 },
        { "extractable", no_argument, NULL, OPT_CMD + 4 },
        { 0 },
    };
    const char *cmd = "key import";
    const struct option *opts = cli_options(extra, false);
    const char *token = NULL, *label = NULL, *idhex = NULL, *file = NULL;
    bool aes = false, extractable = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: fputs(import_usage, stdout); return CLI_OK;
        case OPT_CMD: token = optarg; break;
        case OPT_CMD + 1: label = optarg; break;
        case OPT_CMD + 2: idhex = optarg; break;
        case OPT_CMD + 3: aes = true; break;
        case OPT_CMD + 4: extractable = true; break;
        default:
            if (!cli_common_option(c, optarg, o))
                return cli_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        file = argv[optind++];
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!token || !label || !file)
        return cli_usage_error(cmd, "--token, --label and a FILE are required");
    if (!*label)
        return cli_usage_error(cmd, "the label must not be empty");
    uint8_t *id = NULL;
    size_t idlen = 0;
    if (idhex && parse_id(cmd, idhex, &id, &idlen) != CLI_OK)
        return CLI_USAGE;

    uint8_t *data = NULL;
    size_t len = 0;
    cf_pkey *k = NULL;
    cf_x509_info x = { 0 };
    bool is_cert = false;
    if (!read_file(file, &data, &len)) {
        free(id);
        return CLI_FAIL;
    }
    /* Work out what the file holds before touching the token. */
    if (aes) {
        if (len != 16 && len != 24 && len != 32) {
            cli_error("%s has %zu bytes; a raw AES key has 16, 24 or 32", file, len);
            goto bad_file;
        }
    } else if (!has_pem_tag(data, len, "-----BEGIN CERTIFICATE-----") &&
               cf_pkey_from_pem(data, len, &k) == CF_OK) {
        if (!cf_pkey_is_private(k)) {
            cli_error("%s holds only a public key; import its private key or its certificate", file);
            goto bad_file;
        }
    } else if (cf_x509_parse(data, len, &x) == CF_OK) {
        is_cert = true;
    } else {
        cli_error("%s is not a private key or an X.509 certificate in PEM or DER (an encrypted key must "
                  "be decrypted first; use --aes for a raw AES key)", file);
        goto bad_file;
    }

    p11_module m;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s;
    int rc = open_token(o, token, true, PIN_MAY_PROMPT, &m, &slot, &ti, &s, NULL);
    if (rc != CLI_OK)
        goto done;
    CK_OBJECT_CLASS cls = is_cert ? CKO_CERTIFICATE : aes ? CKO_SECRET_KEY : CKO_PRIVATE_KEY;
    CK_KEY_TYPE ktype = CKK_AES;
    if ((rc = check_label_free(&m, s, label, cls, token)) != CLI_OK)
        goto out;
    if (aes) {
        if (!id) {
            idlen = 8;
            id = malloc(idlen);
            if (!id || cf_random(id, idlen) != CF_OK) {
                cli_error("cannot draw random bytes for the key id; give one with --id");
                rc = CLI_FAIL;
                goto out;
            }
        }
        rc = import_aes(&m, s, data, len, label, id, idlen, extractable);
    } else if (is_cert) {
        rc = import_cert(&m, s, &x, label, &id, &idlen);
    } else {
        rc = import_pkey(&m, s, k, label, &id, &idlen, extractable, &ktype);
    }
    if (rc != CLI_OK)
        goto out;
    char *idtext = hex_encode(id, idlen);
    printf("imported %s '%s' (id %s)\n",
           is_cert ? "certificate" : aes ? "aes key" : ktype == CKK_RSA ? "rsa key"
                                                   : ktype == CKK_EC ? "ec key" : "ed25519 key",
           label, idtext ? idtext : "?");
    free(idtext);
    print_created(&ti, label, id, idlen, cls);
    if (cls == CKO_PRIVATE_KEY)
        print_created(&ti, label, id, idlen, CKO_PUBLIC_KEY);
out:
    close_token(&m, s);
done:
    cf_pkey_free(k);
    cf_x509_info_free(&x);
    cf_free_wiped(data, len);
    free(id);
    return rc;
bad_file:
    rc = CLI_FAIL;
    goto done;
}

/* ---- key delete ---------------------------------------------------------------------------- */
static int key_delete(int argc, char **argv, cli_opts *o)
{
    static const struct option extra[] = {
        { "token", required_argument, NULL, OPT_CMD },
        { 0 },
    };
    const char *cmd = "key delete";
    const struct option *opts = cli_options(extra, false);
    const char *token = NULL, *name = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(delete_usage, stdout);
            return CLI_OK;
        }
        if (c == OPT_CMD)
            token = optarg;
        else if (!cli_common_option(c, optarg, o))
            return cli_bad_option(cmd, c, argv);
    }
    if (optind < argc)
        name = argv[optind++];
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!name)
        return cli_usage_error(cmd, "name the object: a pkcs11: URI, or --token TOKEN and a label");

    bool uri_given = strncmp(name, "pkcs11:", 7) == 0;
    P11KitUri *uri = NULL;
    CK_ATTRIBUTE *t, label_attr = { CKA_LABEL, (void *)name, strlen(name) };
    CK_ULONG nt = 1;
    if (uri_given) {
        uri = p11_kit_uri_new();
        int r = uri ? p11_kit_uri_parse(name, P11_KIT_URI_FOR_ANY, uri) : P11_KIT_URI_NO_MEMORY;
        if (r != P11_KIT_URI_OK) {
            if (uri)
                p11_kit_uri_free(uri);
            return cli_usage_error(cmd, "'%s' is not a valid PKCS#11 URI (%s)", name, p11_kit_uri_message(r));
        }
        t = p11_kit_uri_get_attributes(uri, &nt);
        if (nt == 0) {
            p11_kit_uri_free(uri);
            return cli_usage_error(cmd, "'%s' names no object; add object=LABEL, id=%%HEX or type=", name);
        }
    } else {
        if (!token) {
            return cli_usage_error(cmd, "'%s' is not a pkcs11: URI; to delete by label give the token "
                                        "too: --token TOKEN LABEL", name);
        }
        t = &label_attr;
    }
    if (!token)
        token = name;   /* the URI's token attributes name the token */

    p11_module m;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG n = 0;
    int rc = open_token(o, token, true, PIN_MAY_PROMPT, &m, &slot, &ti, &s, NULL);
    if (rc != CLI_OK)
        goto done;
    if ((rc = p11_find(&m, s, t, nt, &objs, &n)) != CLI_OK)
        goto out;
    if (n == 0) {
        char tlabel[33];
        p11_str(tlabel, ti.label, sizeof(ti.label));
        cli_error("no object matches '%s' in token '%s'; `coffer key list --token '%s'` shows them",
                  name, tlabel, tlabel);
        rc = CLI_FAIL;
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        obj_row r;
        read_row(&m, s, objs[i], &r);
        char *objuri = p11_object_uri(&ti, r.label, r.labellen, r.id, r.idlen, r.cls);
        CK_RV rv = m.f->C_DestroyObject(s, objs[i]);
        if (rv != CKR_OK) {
            char what[64];
            snprintf(what, sizeof(what), "deleting %s", objuri);
            rc = p11_fail(what, rv);
            free(objuri);
            free_row(&r);
            goto out;
        }
        printf("deleted %s\n", objuri);
        free(objuri);
        free_row(&r);
    }
out:
    free(objs);
    close_token(&m, s);
done:
    if (uri)
        p11_kit_uri_free(uri);
    return rc;
}

int cmd_key(int argc, char **argv, cli_opts *o)
{
    static const struct {
        const char *name;
        int (*run)(int, char **, cli_opts *);
    } sub[] = {
        { "list", key_list },
        { "generate", key_generate },
        { "import", key_import },
        { "delete", key_delete },
    };
    if (argc < 2) {
        fputs(key_usage, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(key_usage, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
        if (strcmp(argv[1], sub[i].name) == 0)
            return sub[i].run(argc - 1, argv + 1, o);
    return cli_usage_error("key", "unknown command 'key %s'", argv[1]);
}
