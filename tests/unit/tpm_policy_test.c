/* tpm_policy_test.c: PolicySecret, PolicyOR and PolicyCommandCode (Part 3 sections 23.4, 23.6,
 * 23.11) through tpm_execute, and what they record enforced when the policy session authorizes
 * (Part 1 section 19.7): digests known-answer (recomputed here with OpenSSL's SHA256() from the
 * formulas of Part 3, and the TCG EK Credential Profile's PolicySecret(TPM_RH_ENDORSEMENT) digest),
 * authHandle's authorization by password and HMAC (a wrong one: TPM_RC_AUTH_FAIL / TPM_RC_BAD_AUTH
 * + session 1), nonceTPM mismatch (TPM_RC_NONCE + P1, as the reference TPM's
 * PolicyParameterChecks), cpHashA and expiration at use, PolicyOR's refusal of a digest not in the
 * list, PolicyCommandCode at use (TPM_RC_POLICY_CC) and the ADMIN role's need of it.
 *
 * The harness (client-side HMACs over cpHash, response HMAC checks) is tpm_session_test.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include "tpm/internal.h"

/* ---- harness ------------------------------------------------------------------------------ */
static uint64_t fake_clock;
static uint64_t fake_now(void *ctx) { (void)ctx; return fake_clock; }

static tpm_instance *new_tpm(void)
{
    tpm_instance *t = NULL;
    assert_int_equal(tpm_instance_new("pol", NULL, 0, NULL, NULL, &t), CF_OK);
    tpm_set_time_source(t, fake_now, NULL);
    tpm_power_on(t);
    return t;
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

typedef struct {
    uint8_t b[TPM_MAX_RESPONSE_SIZE];
    size_t len;
} resp;

static uint32_t exec(tpm_instance *t, const uint8_t *cmd, size_t len, resp *r)
{
    r->len = tpm_execute(t, 0, cmd, len, r->b, sizeof r->b);
    assert_true(r->len >= 10);
    assert_int_equal(rd32(r->b + 2), r->len);
    return rd32(r->b + 6);
}

/* ---- the client side, from the spec ------------------------------------------------------------ */
/* KDFa with SHA-256 (Part 1 section 11.4.10.2). */
static void kdfa(const uint8_t *key, size_t klen, const char *label, const uint8_t *u, size_t ul, const uint8_t *v,
                 size_t vl, uint32_t bits, uint8_t *out)
{
    size_t n = (bits + 7) / 8, done = 0;
    for (uint32_t i = 1; done < n; i++) {
        uint8_t in[512], mac[32];
        size_t m = 0;
        uint8_t be[4] = { (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
        memcpy(in + m, be, 4), m += 4;
        memcpy(in + m, label, strlen(label) + 1), m += strlen(label) + 1;
        memcpy(in + m, u, ul), m += ul;
        memcpy(in + m, v, vl), m += vl;
        uint8_t bb[4] = { (uint8_t)(bits >> 24), (uint8_t)(bits >> 16), (uint8_t)(bits >> 8), (uint8_t)bits };
        memcpy(in + m, bb, 4), m += 4;
        static const uint8_t dummy[1];
        unsigned ml = 0;
        assert_non_null(HMAC(EVP_sha256(), klen ? key : dummy, (int)klen, in, m, mac, &ml));
        size_t take = n - done < 32 ? n - done : 32;
        memcpy(out + done, mac, take);
        done += take;
    }
}

/* A session as the caller keeps it. */
typedef struct {
    TPM2_HANDLE h;
    TPM2_SE type;
    uint8_t nonce_tpm[32];
    uint8_t key[32];      /* sessionKey */
    size_t klen;
    TPM2_ALG_ID sym;      /* AES (128-bit CFB), XOR or NULL */
} csess;

/* One authorization: a session (or a password when s is NULL). */
typedef struct {
    csess *s;
    TPMA_SESSION attrs;
    const char *auth;     /* the entity's authValue (password, or folded into the HMAC key) */
    bool include_auth;    /* HMAC key = sessionKey || authValue */
    bool corrupt;         /* flip a bit of the HMAC */
    uint8_t nonce[32];
} cauth;

static size_t session_value(const cauth *a, uint8_t *out)
{
    size_t n = a->s->klen;
    memcpy(out, a->s->key, n);
    if (a->include_auth && a->auth) {
        memcpy(out + n, a->auth, strlen(a->auth));
        n += strlen(a->auth);
    }
    return n;
}

/* Part 1 section 21: AES-128-CFB or XOR with keys from the session value and the two nonces. */
static void crypt_param(const cauth *a, bool enc, const uint8_t *newer, const uint8_t *older, uint8_t *p, size_t n)
{
    uint8_t sv[96];
    size_t svl = session_value(a, sv);
    if (a->s->sym == TPM2_ALG_XOR) {
        uint8_t mask[1024];
        assert_true(n <= sizeof mask);
        kdfa(sv, svl, "XOR", newer, 32, older, 32, (uint32_t)(8 * n), mask);
        for (size_t i = 0; i < n; i++)
            p[i] ^= mask[i];
        return;
    }
    uint8_t kiv[32];
    kdfa(sv, svl, "CFB", newer, 32, older, 32, 256, kiv);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    assert_non_null(x);
    int l1 = 0, l2 = 0;
    uint8_t tmp[1024];
    assert_int_equal(EVP_CipherInit_ex(x, EVP_aes_128_cfb128(), NULL, kiv, kiv + 16, enc ? 1 : 0), 1);
    assert_int_equal(EVP_CipherUpdate(x, tmp, &l1, p, (int)n), 1);
    assert_int_equal(EVP_CipherFinal_ex(x, tmp + l1, &l2), 1);
    assert_int_equal((size_t)(l1 + l2), n);
    memcpy(p, tmp, n);
    EVP_CIPHER_CTX_free(x);
}

static void sess_hmac(const cauth *a, const uint8_t *phash, const uint8_t *newer, const uint8_t *older,
                      TPMA_SESSION attrs, uint8_t *mac)
{
    uint8_t sv[96], in[32 * 3 + 1];
    size_t svl = session_value(a, sv);
    memcpy(in, phash, 32);
    memcpy(in + 32, newer, 32);
    memcpy(in + 64, older, 32);
    in[96] = attrs;
    static const uint8_t dummy[1];
    unsigned ml = 0;
    assert_non_null(HMAC(EVP_sha256(), svl ? sv : dummy, (int)svl, in, sizeof in, mac, &ml));
}

typedef struct {
    TPM2_CC cc;
    TPM2_HANDLE handles[3];
    TPM2B_NAME names[3];
    size_t nh;
    uint8_t params[2048];
    size_t plen;
    bool r_handle;
    /* out */
    TPM2_HANDLE out_handle;
    uint8_t rparams[TPM_MAX_RESPONSE_SIZE];
    size_t rplen;
} call;

static void handle_name(TPM2_HANDLE h, TPM2B_NAME *n)
{
    n->size = 4;
    n->name[0] = (uint8_t)(h >> 24), n->name[1] = (uint8_t)(h >> 16), n->name[2] = (uint8_t)(h >> 8), n->name[3] = (uint8_t)h;
}

/* Object name = nameAlg || SHA-256(TPMT_PUBLIC) (Part 1 section 16). */
static void object_name(const TPMT_PUBLIC *p, TPM2B_NAME *n)
{
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(p, buf, sizeof buf, &off), TSS2_RC_SUCCESS);
    n->size = 34;
    n->name[0] = 0x00, n->name[1] = 0x0B;
    SHA256(buf, off, n->name + 2);
}

/* Sends the command with these authorizations; checks the response HMACs and decrypts. */
static uint32_t run(tpm_instance *t, call *c, cauth *auths, size_t na)
{
    uint8_t params[2048];
    memcpy(params, c->params, c->plen);
    for (size_t i = 0; i < na; i++) {
        if (!auths[i].s)
            continue;
        assert_int_equal(RAND_bytes(auths[i].nonce, 32), 1);
        if (auths[i].attrs & TPMA_SESSION_DECRYPT)
            crypt_param(&auths[i], true, auths[i].nonce, auths[i].s->nonce_tpm, params + 2, rd16(params));
    }
    /* cpHash = SHA-256(commandCode || names || parameters) (Part 1 section 18.7) */
    uint8_t cph[32], buf[4096];
    size_t m = 0;
    buf[m++] = (uint8_t)(c->cc >> 24), buf[m++] = (uint8_t)(c->cc >> 16), buf[m++] = (uint8_t)(c->cc >> 8), buf[m++] = (uint8_t)c->cc;
    for (size_t i = 0; i < c->nh; i++)
        memcpy(buf + m, c->names[i].name, c->names[i].size), m += c->names[i].size;
    memcpy(buf + m, params, c->plen), m += c->plen;
    SHA256(buf, m, cph);

    uint8_t cmd[4096];
    cf_writer w = cf_writer_fixed(cmd, sizeof cmd);
    cf_put_u16(&w, na ? TPM2_ST_SESSIONS : TPM2_ST_NO_SESSIONS);
    cf_put_u32(&w, 0);
    cf_put_u32(&w, c->cc);
    for (size_t i = 0; i < c->nh; i++)
        cf_put_u32(&w, c->handles[i]);
    if (na) {
        size_t at = w.len;
        cf_put_u32(&w, 0);
        for (size_t i = 0; i < na; i++) {
            cauth *a = &auths[i];
            if (!a->s) {
                cf_put_u32(&w, TPM2_RS_PW);
                cf_put_u16(&w, 0);
                cf_put_u8(&w, a->attrs);
                tpm_put_2b(&w, (const uint8_t *)a->auth, a->auth ? strlen(a->auth) : 0);
                continue;
            }
            cf_put_u32(&w, a->s->h);
            tpm_put_2b(&w, a->nonce, 32);
            cf_put_u8(&w, a->attrs);
            uint8_t mac[32];
            sess_hmac(a, cph, a->nonce, a->s->nonce_tpm, a->attrs, mac);
            if (a->corrupt)
                mac[5] ^= 1;
            tpm_put_2b(&w, mac, 32);
        }
        uint32_t asz = (uint32_t)(w.len - at - 4);
        cmd[at] = (uint8_t)(asz >> 24), cmd[at + 1] = (uint8_t)(asz >> 16), cmd[at + 2] = (uint8_t)(asz >> 8), cmd[at + 3] = (uint8_t)asz;
    }
    cf_put_bytes(&w, params, c->plen);
    assert_int_equal(cf_writer_status(&w), CF_OK);
    cmd[2] = (uint8_t)(w.len >> 24), cmd[3] = (uint8_t)(w.len >> 16), cmd[4] = (uint8_t)(w.len >> 8), cmd[5] = (uint8_t)w.len;

    resp r;
    uint32_t rc = exec(t, cmd, w.len, &r);
    if (rc != TPM2_RC_SUCCESS) {
        assert_int_equal(r.len, 10);
        return rc;
    }
    size_t off = 10;
    if (c->r_handle)
        c->out_handle = rd32(r.b + off), off += 4;
    size_t plen = r.len - off;
    if (na) {
        plen = rd32(r.b + off);
        off += 4;
    }
    memcpy(c->rparams, r.b + off, plen);
    c->rplen = plen;
    const uint8_t *ra = r.b + off + plen;
    /* rpHash = SHA-256(responseCode || commandCode || parameters) (Part 1 section 18.8) */
    uint8_t rph[32];
    m = 0;
    memset(buf, 0, 4);
    m = 4;
    buf[m++] = (uint8_t)(c->cc >> 24), buf[m++] = (uint8_t)(c->cc >> 16), buf[m++] = (uint8_t)(c->cc >> 8), buf[m++] = (uint8_t)c->cc;
    memcpy(buf + m, c->rparams, plen), m += plen;
    SHA256(buf, m, rph);
    for (size_t i = 0; i < na; i++) {
        cauth *a = &auths[i];
        uint16_t nl = rd16(ra);
        if (!a->s) {
            assert_int_equal(nl, 0);
            assert_int_equal(ra[2], a->attrs);
            assert_int_equal(rd16(ra + 3), 0);
            ra += 5;
            continue;
        }
        assert_int_equal(nl, 32);
        memcpy(a->s->nonce_tpm, ra + 2, 32);
        assert_int_equal(ra[34], a->attrs);
        uint16_t hl = rd16(ra + 35);
        uint8_t mac[32];
        sess_hmac(a, rph, a->s->nonce_tpm, a->nonce, a->attrs, mac);
        if (a->s->type == TPM2_SE_HMAC || hl) {
            assert_int_equal(hl, 32);
            assert_memory_equal(ra + 37, mac, 32);   /* the response HMAC as Part 1 19.6.5 says */
        }
        ra += 37 + hl;
        if (a->attrs & TPMA_SESSION_ENCRYPT)
            crypt_param(a, false, a->s->nonce_tpm, a->nonce, c->rparams + 2, rd16(c->rparams));
    }
    assert_ptr_equal(ra, r.b + r.len);
    return rc;
}

static void call_init(call *c, TPM2_CC cc)
{
    memset(c, 0, sizeof *c);
    c->cc = cc;
}

static void add_handle(call *c, TPM2_HANDLE h, const TPM2B_NAME *name)
{
    c->handles[c->nh] = h;
    if (name)
        c->names[c->nh] = *name;
    else
        handle_name(h, &c->names[c->nh]);
    c->nh++;
}

static void p_bytes(call *c, const void *p, size_t n) { if (n) memcpy(c->params + c->plen, p, n), c->plen += n; }
static void p_u16(call *c, uint16_t v) { uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v }; p_bytes(c, b, 2); }
static void p_u32(call *c, uint32_t v) { uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v }; p_bytes(c, b, 4); }
static void p_2b(call *c, const void *p, size_t n) { p_u16(c, (uint16_t)n); p_bytes(c, p, n); }

/* ---- commands ------------------------------------------------------------------------------- */
static void startup(tpm_instance *t)
{
    call c;
    call_init(&c, TPM2_CC_Startup);
    p_u16(&c, TPM2_SU_CLEAR);
    assert_int_equal(run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
}

/* StartAuthSession; salt (already encrypted) may be empty; bind_auth is the bind entity's. */
static uint32_t start_session(tpm_instance *t, TPM2_HANDLE tpmkey, TPM2_HANDLE bind, const uint8_t *esalt, size_t eslen,
                              const uint8_t *salt, size_t saltlen, const char *bind_auth, TPM2_SE type, TPM2_ALG_ID sym,
                              csess *s)
{
    call c;
    uint8_t nonce[32];
    assert_int_equal(RAND_bytes(nonce, 32), 1);
    call_init(&c, TPM2_CC_StartAuthSession);
    add_handle(&c, tpmkey, NULL);
    add_handle(&c, bind, NULL);
    c.r_handle = true;
    p_2b(&c, nonce, 32);
    p_2b(&c, esalt, eslen);
    p_bytes(&c, &(uint8_t){ (uint8_t)type }, 1);
    p_u16(&c, sym);
    if (sym == TPM2_ALG_AES) {
        p_u16(&c, 128);
        p_u16(&c, TPM2_ALG_CFB);
    } else if (sym == TPM2_ALG_XOR) {
        p_u16(&c, TPM2_ALG_SHA256);
    }
    p_u16(&c, TPM2_ALG_SHA256);
    uint32_t rc = run(t, &c, NULL, 0);
    if (rc != TPM2_RC_SUCCESS)
        return rc;
    memset(s, 0, sizeof *s);
    s->h = c.out_handle;
    s->type = type;
    s->sym = sym;
    assert_int_equal(c.rplen, 34);
    assert_int_equal(rd16(c.rparams), 32);
    memcpy(s->nonce_tpm, c.rparams + 2, 32);
    /* sessionKey = KDFa(SHA-256, bind.authValue || salt, "ATH", nonceTPM, nonceCaller, 256) (Part 1 19.6.8) */
    uint8_t secret[128];
    size_t sl = 0;
    if (bind_auth)
        memcpy(secret, bind_auth, strlen(bind_auth)), sl = strlen(bind_auth);
    if (saltlen)
        memcpy(secret + sl, salt, saltlen), sl += saltlen;
    if (bind != TPM2_RH_NULL || tpmkey != TPM2_RH_NULL) {
        kdfa(secret, sl, "ATH", s->nonce_tpm, 32, nonce, 32, 256, s->key);
        s->klen = 32;
    }
    return rc;
}

static TPMT_PUBLIC ecc_sign_template(TPMA_OBJECT extra, const uint8_t *policy, size_t plen)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
                         | TPMA_OBJECT_SIGN_ENCRYPT | extra;
    p.authPolicy.size = (uint16_t)plen;
    if (plen)
        memcpy(p.authPolicy.buffer, policy, plen);
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    return p;
}

/* CreatePrimary in the owner hierarchy with auth (password, or an HMAC session when a). */
static uint32_t create_primary(tpm_instance *t, const char *userauth, const TPMT_PUBLIC *tpl, cauth *a,
                               TPM2_HANDLE *h, TPMT_PUBLIC *pub)
{
    call c;
    call_init(&c, TPM2_CC_CreatePrimary);
    add_handle(&c, TPM2_RH_OWNER, NULL);
    c.r_handle = true;
    size_t ua = strlen(userauth);
    p_u16(&c, (uint16_t)(2 + ua + 2));
    p_2b(&c, userauth, ua);
    p_u16(&c, 0);
    TPM2B_PUBLIC in = { .publicArea = *tpl };
    size_t off = 0;
    uint8_t buf[1024];
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&in, buf, sizeof buf, &off), TSS2_RC_SUCCESS);
    p_bytes(&c, buf, off);
    p_u16(&c, 0);
    p_u32(&c, 0);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };
    uint32_t rc = run(t, &c, a ? a : &pw, 1);
    if (rc != TPM2_RC_SUCCESS)
        return rc;
    *h = c.out_handle;
    TPM2B_PUBLIC out;
    memset(&out, 0, sizeof out);
    off = 0;
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(c.rparams, c.rplen, &off, &out), TSS2_RC_SUCCESS);
    *pub = out.publicArea;
    return rc;
}

static uint32_t flush(tpm_instance *t, TPM2_HANDLE h)
{
    call c;
    call_init(&c, TPM2_CC_FlushContext);
    p_u32(&c, h);
    return run(t, &c, NULL, 0);
}

static void policy_get_digest(tpm_instance *t, const csess *s, uint8_t out[32])
{
    call c;
    call_init(&c, TPM2_CC_PolicyGetDigest);
    add_handle(&c, s->h, NULL);
    assert_int_equal(run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(c.rplen, 34);
    memcpy(out, c.rparams + 2, 32);
}


/* ---- policy commands and expected digests ---------------------------------------------------- */
/* TCG EK Credential Profile: PolicySecret(TPM_RH_ENDORSEMENT) from zeros, empty policyRef. */
static const uint8_t EK_POLICY[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
    0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
};
static const uint8_t ZEROS[32];

static void be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

/* Part 3 23.4 (PolicyUpdate of 23.2.3): d = H(H(d || TPM_CC_PolicySecret || name) || policyRef). */
static void ext_secret(uint8_t d[32], const TPM2B_NAME *name, const char *ref)
{
    uint8_t buf[32 + 4 + sizeof name->name + 64];
    memcpy(buf, d, 32);
    be32(buf + 32, TPM2_CC_PolicySecret);
    memcpy(buf + 36, name->name, name->size);
    SHA256(buf, 36 + name->size, d);
    memcpy(buf, d, 32);
    memcpy(buf + 32, ref, strlen(ref));
    SHA256(buf, 32 + strlen(ref), d);
}

/* Part 3 23.11: d = H(d || TPM_CC_PolicyCommandCode || code). */
static void ext_cc(uint8_t d[32], uint32_t code)
{
    uint8_t buf[40];
    memcpy(buf, d, 32);
    be32(buf + 32, TPM2_CC_PolicyCommandCode);
    be32(buf + 36, code);
    SHA256(buf, sizeof buf, d);
}

/* Part 3 23.6: d = H(0...0 || TPM_CC_PolicyOR || digests). */
static void or_digest(const uint8_t (*list)[32], size_t n, uint8_t out[32])
{
    uint8_t buf[36 + 8 * 32];
    memset(buf, 0, 32);
    be32(buf + 32, TPM2_CC_PolicyOR);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 36 + 32 * i, list[i], 32);
    SHA256(buf, 36 + 32 * n, out);
}

/* PolicySecret(authHandle, policySession; nonceTPM, cpHashA, policyRef, expiration) authorized by a;
 * the response parameters into *rp (when not NULL). */
static uint32_t policy_secret(tpm_instance *t, TPM2_HANDLE ah, const TPM2B_NAME *aname, const csess *ps,
                              const uint8_t *nonce, size_t nl, const uint8_t *cph, size_t cl, const char *ref,
                              int32_t expiration, cauth *a, call *rp)
{
    static call c;
    call_init(&c, TPM2_CC_PolicySecret);
    add_handle(&c, ah, aname);
    add_handle(&c, ps->h, NULL);
    p_2b(&c, nonce, nl);
    p_2b(&c, cph, cl);
    p_2b(&c, ref, strlen(ref));
    p_u32(&c, (uint32_t)expiration);
    uint32_t rc = run(t, &c, a, 1);
    if (rp)
        *rp = c;
    return rc;
}

static uint32_t policy_or(tpm_instance *t, const csess *ps, const uint8_t (*list)[32], size_t n)
{
    call c;
    call_init(&c, TPM2_CC_PolicyOR);
    add_handle(&c, ps->h, NULL);
    p_u32(&c, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        p_2b(&c, list[i], 32);
    return run(t, &c, NULL, 0);
}

static uint32_t policy_command_code(tpm_instance *t, const csess *ps, uint32_t code)
{
    call c;
    call_init(&c, TPM2_CC_PolicyCommandCode);
    add_handle(&c, ps->h, NULL);
    p_u32(&c, code);
    return run(t, &c, NULL, 0);
}

/* The parameters of Sign(digest = 32 x byte, scheme NULL, NULL hashcheck ticket). */
static void sign_params(call *c, uint8_t byte)
{
    uint8_t digest[32];
    memset(digest, byte, sizeof digest);
    p_2b(c, digest, 32);
    p_u16(c, TPM2_ALG_NULL);
    p_u16(c, TPM2_ST_HASHCHECK);
    p_u32(c, TPM2_RH_NULL);
    p_u16(c, 0);
}

static uint32_t sign_with(tpm_instance *t, TPM2_HANDLE key, const TPMT_PUBLIC *pub, cauth *a, uint8_t byte)
{
    call c;
    call_init(&c, TPM2_CC_Sign);
    TPM2B_NAME name;
    object_name(pub, &name);
    add_handle(&c, key, &name);
    sign_params(&c, byte);
    return run(t, &c, a, 1);
}

/* cpHash of that Sign command (Part 1 section 18.7). */
static void sign_cp_hash(TPM2_HANDLE key, const TPMT_PUBLIC *pub, uint8_t byte, uint8_t out[32])
{
    call c;
    call_init(&c, TPM2_CC_Sign);
    TPM2B_NAME name;
    object_name(pub, &name);
    add_handle(&c, key, &name);
    sign_params(&c, byte);
    uint8_t buf[4 + sizeof name.name + sizeof c.params];
    be32(buf, TPM2_CC_Sign);
    memcpy(buf + 4, name.name, name.size);
    memcpy(buf + 4 + name.size, c.params, c.plen);
    SHA256(buf, 4 + name.size + c.plen, out);
}

static uint32_t quote(tpm_instance *t, TPM2_HANDLE key, const TPMT_PUBLIC *pub, cauth *a)
{
    call c;
    call_init(&c, TPM2_CC_Quote);
    TPM2B_NAME name;
    object_name(pub, &name);
    add_handle(&c, key, &name);
    p_u16(&c, 0);               /* qualifyingData */
    p_u16(&c, TPM2_ALG_NULL);   /* inScheme: the key's */
    p_u32(&c, 0);               /* no PCRs */
    return run(t, &c, a, 1);
}

static void session(tpm_instance *t, TPM2_SE type, csess *s)
{
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, type, TPM2_ALG_NULL, s),
                     TPM2_RC_SUCCESS);
}

static void assert_digest(tpm_instance *t, const csess *s, const uint8_t want[32])
{
    uint8_t got[32];
    policy_get_digest(t, s, got);
    assert_memory_equal(got, want, 32);
}

#define RC_S1(rc) ((rc) | TPM2_RC_S | TPM2_RC_1)
#define RC_P(rc, n) ((rc) | TPM2_RC_P | ((uint32_t)(n) << 8))

/* ---- tests ------------------------------------------------------------------------------------ */
static void test_policy_secret_digest(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };

    /* trial: the EK policy, and a NULL ticket with an empty timeout */
    csess tr;
    session(t, TPM2_SE_TRIAL, &tr);
    call r;
    assert_int_equal(policy_secret(t, TPM2_RH_ENDORSEMENT, NULL, &tr, NULL, 0, NULL, 0, "", 0, &pw, &r), TPM2_RC_SUCCESS);
    static const uint8_t null_ticket[] = { 0, 0, 0x80, 0x23, 0x40, 0x00, 0x00, 0x07, 0, 0 };
    assert_int_equal(r.rplen, sizeof null_ticket);
    assert_memory_equal(r.rparams, null_ticket, sizeof null_ticket);
    uint8_t want[32];
    TPM2B_NAME en;
    handle_name(TPM2_RH_ENDORSEMENT, &en);
    memcpy(want, ZEROS, 32);
    ext_secret(want, &en, "");
    assert_memory_equal(want, EK_POLICY, 32);
    assert_digest(t, &tr, want);

    /* real session: owner with a policyRef and the session's nonceTPM; a negative expiration also
     * gets the NULL ticket */
    csess ps;
    session(t, TPM2_SE_POLICY, &ps);
    TPM2B_NAME on;
    handle_name(TPM2_RH_OWNER, &on);
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 32, NULL, 0, "coffer", -60, &pw, &r),
                     TPM2_RC_SUCCESS);
    assert_memory_equal(r.rparams, null_ticket, sizeof null_ticket);
    memcpy(want, ZEROS, 32);
    ext_secret(want, &on, "coffer");
    assert_digest(t, &ps, want);

    /* an object as authHandle, authorized by an HMAC session with its authValue: its Name counts */
    TPMT_PUBLIC tpl = ecc_sign_template(TPMA_OBJECT_USERWITHAUTH, NULL, 0), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "keypw", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    TPM2B_NAME kn;
    object_name(&pub, &kn);
    csess hs, ps2;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_NULL, &hs),
                     TPM2_RC_SUCCESS);
    session(t, TPM2_SE_POLICY, &ps2);
    cauth ha = { .s = &hs, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "keypw", .include_auth = true };
    assert_int_equal(policy_secret(t, key, &kn, &ps2, NULL, 0, NULL, 0, "", 0, &ha, NULL), TPM2_RC_SUCCESS);
    memcpy(want, ZEROS, 32);
    ext_secret(want, &kn, "");
    assert_digest(t, &ps2, want);
    /* and again: the digest chains */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps2, NULL, 0, NULL, 0, "x", 0, &pw, NULL), TPM2_RC_SUCCESS);
    ext_secret(want, &on, "x");
    assert_digest(t, &ps2, want);

    /* a policy session authorizing authHandle must prove the authValue itself (PolicyAuthValue) */
    csess pa;
    session(t, TPM2_SE_POLICY, &pa);
    cauth pauth = { .s = &pa, .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps2, NULL, 0, NULL, 0, "", 0, &pauth, NULL),
                     RC_S1(TPM2_RC_MODE));
    /* TPM_RH_NULL is no entity here */
    assert_int_equal(policy_secret(t, TPM2_RH_NULL, NULL, &ps2, NULL, 0, NULL, 0, "", 0, &pw, NULL),
                     TPM2_RC_VALUE | TPM2_RC_H | TPM2_RC_1);
    assert_digest(t, &ps2, want);
    tpm_instance_free(t);
}

static void test_policy_secret_refusals(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };
    TPMT_PUBLIC tpl = ecc_sign_template(TPMA_OBJECT_USERWITHAUTH, NULL, 0), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "keypw", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    TPM2B_NAME kn;
    object_name(&pub, &kn);
    csess ps, hs, tr;
    session(t, TPM2_SE_POLICY, &ps);
    session(t, TPM2_SE_HMAC, &hs);
    session(t, TPM2_SE_TRIAL, &tr);

    /* a wrong authValue: password or HMAC, the object's (DA-protected) and the owner's */
    cauth bad = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "nope" };
    assert_int_equal(policy_secret(t, key, &kn, &ps, NULL, 0, NULL, 0, "", 0, &bad, NULL), RC_S1(TPM2_RC_AUTH_FAIL));
    cauth ha = { .s = &hs, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "keypw", .include_auth = true, .corrupt = true };
    assert_int_equal(policy_secret(t, key, &kn, &ps, NULL, 0, NULL, 0, "", 0, &ha, NULL), RC_S1(TPM2_RC_AUTH_FAIL));
    cauth bad_owner = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "x" };
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, NULL, 0, "", 0, &bad_owner, NULL),
                     RC_S1(TPM2_RC_BAD_AUTH));
    /* a trial session still needs the authorization */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &tr, NULL, 0, NULL, 0, "", 0, &bad_owner, NULL),
                     RC_S1(TPM2_RC_BAD_AUTH));

    /* nonceTPM: not the session's (one bit, or another size) */
    uint8_t nonce[32];
    memcpy(nonce, ps.nonce_tpm, 32);
    nonce[7] ^= 1;
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, nonce, 32, NULL, 0, "", 0, &pw, NULL),
                     RC_P(TPM2_RC_NONCE, 1));
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 16, NULL, 0, "", 0, &pw, NULL),
                     RC_P(TPM2_RC_NONCE, 1));
    /* cpHashA of another size than the session's digest */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, ZEROS, 20, "", 0, &pw, NULL),
                     RC_P(TPM2_RC_SIZE, 2));
    /* an expiration already past: 1 s after the session started */
    fake_clock += 2000;
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 32, NULL, 0, "", 1, &pw, NULL),
                     RC_P(TPM2_RC_EXPIRED, 4));
    assert_digest(t, &ps, ZEROS);   /* nothing changed */
    /* a trial session does not look at nonceTPM */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &tr, nonce, 32, NULL, 0, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
}

/* A key whose authPolicy is PolicySecret(owner): cpHashA and expiration enforced at use. */
static void test_policy_secret_at_use(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };
    TPM2B_NAME on;
    handle_name(TPM2_RH_OWNER, &on);
    uint8_t pol[32];
    memcpy(pol, ZEROS, 32);
    ext_secret(pol, &on, "");
    TPMT_PUBLIC tpl = ecc_sign_template(0, pol, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    csess ps;
    session(t, TPM2_SE_POLICY, &ps);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION };

    /* without the policy: refused; with it: signs (and the session starts over) */
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), RC_S1(TPM2_RC_POLICY_FAIL));
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, NULL, 0, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), TPM2_RC_SUCCESS);
    assert_digest(t, &ps, ZEROS);

    /* cpHashA: only the command with that cpHash; another cpHashA after it is TPM_RC_CPHASH */
    uint8_t cph[32], other[32];
    sign_cp_hash(key, &pub, 0x11, cph);
    sign_cp_hash(key, &pub, 0x22, other);
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, cph, 32, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x22), RC_S1(TPM2_RC_POLICY_FAIL));
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, other, 32, "", 0, &pw, NULL), TPM2_RC_CPHASH);
    assert_int_equal(flush(t, ps.h), TPM2_RC_SUCCESS);
    session(t, TPM2_SE_POLICY, &ps);
    pa.s = &ps;
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, cph, 32, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), TPM2_RC_SUCCESS);

    /* expiration: 10 s from the session's start (nonceTPM given); good at 9 s, void at 11 s */
    assert_int_equal(flush(t, ps.h), TPM2_RC_SUCCESS);
    session(t, TPM2_SE_POLICY, &ps);
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 32, NULL, 0, "", 10, &pw, NULL),
                     TPM2_RC_SUCCESS);
    fake_clock += 9000;
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), TPM2_RC_SUCCESS);
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, ps.nonce_tpm, 32, NULL, 0, "", 10, &pw, NULL),
                     TPM2_RC_SUCCESS);
    fake_clock += 2000;
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x11), RC_S1(TPM2_RC_EXPIRED));
    tpm_instance_free(t);
}

static void test_policy_or(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    cauth pw = { .s = NULL, .attrs = TPMA_SESSION_CONTINUESESSION, .auth = "" };
    TPM2B_NAME on;
    handle_name(TPM2_RH_OWNER, &on);
    uint8_t list[2][32], rev[2][32], want[32];
    memcpy(list[0], ZEROS, 32);
    ext_secret(list[0], &on, "");
    memset(list[1], 0xAB, 32);
    memcpy(rev[0], list[1], 32);
    memcpy(rev[1], list[0], 32);

    /* trial: any current digest; the known answer */
    csess tr;
    session(t, TPM2_SE_TRIAL, &tr);
    assert_int_equal(policy_or(t, &tr, (const uint8_t (*)[32])list, 2), TPM2_RC_SUCCESS);
    or_digest((const uint8_t (*)[32])list, 2, want);
    assert_digest(t, &tr, want);
    /* one digest is not a list */
    assert_int_equal(policy_or(t, &tr, (const uint8_t (*)[32])list, 1), RC_P(TPM2_RC_SIZE, 1));

    /* real: the current digest (zeros) is not in the list */
    csess ps;
    session(t, TPM2_SE_POLICY, &ps);
    assert_int_equal(policy_or(t, &ps, (const uint8_t (*)[32])list, 2), RC_P(TPM2_RC_VALUE, 1));
    assert_digest(t, &ps, ZEROS);
    /* after PolicySecret(owner) it is, in either place */
    assert_int_equal(policy_secret(t, TPM2_RH_OWNER, NULL, &ps, NULL, 0, NULL, 0, "", 0, &pw, NULL), TPM2_RC_SUCCESS);
    assert_int_equal(policy_or(t, &ps, (const uint8_t (*)[32])rev, 2), TPM2_RC_SUCCESS);
    or_digest((const uint8_t (*)[32])rev, 2, want);
    assert_digest(t, &ps, want);

    /* a key whose policy is that OR: used through the branch */
    TPMT_PUBLIC tpl = ecc_sign_template(0, want, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x33), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x33), RC_S1(TPM2_RC_POLICY_FAIL));   /* started over */
    tpm_instance_free(t);
}

static void test_policy_command_code(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    uint8_t pol[32];
    memcpy(pol, ZEROS, 32);
    ext_cc(pol, TPM2_CC_Sign);
    TPMT_PUBLIC tpl = ecc_sign_template(0, pol, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    csess ps;
    session(t, TPM2_SE_POLICY, &ps);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION };

    /* the known answer, and the command it names works */
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Sign), TPM2_RC_SUCCESS);
    assert_digest(t, &ps, pol);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x44), TPM2_RC_SUCCESS);
    /* the same digest used for another command (Quote): TPM_RC_POLICY_CC */
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Sign), TPM2_RC_SUCCESS);
    assert_int_equal(quote(t, key, &pub, &pa), RC_S1(TPM2_RC_POLICY_CC));
    /* a second, other code: TPM_RC_VALUE; a command this TPM does not have: TPM_RC_POLICY_CC */
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Quote), RC_P(TPM2_RC_VALUE, 1));
    assert_int_equal(flush(t, ps.h), TPM2_RC_SUCCESS);
    session(t, TPM2_SE_POLICY, &ps);
    assert_int_equal(policy_command_code(t, &ps, 0x0000FFFF), RC_P(TPM2_RC_POLICY_CC, 1));
    assert_digest(t, &ps, ZEROS);
    /* PolicyRestart forgets the code */
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Quote), TPM2_RC_SUCCESS);
    call c;
    call_init(&c, TPM2_CC_PolicyRestart);
    add_handle(&c, ps.h, NULL);
    assert_int_equal(run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
    pa.s = &ps;
    assert_int_equal(policy_command_code(t, &ps, TPM2_CC_Sign), TPM2_RC_SUCCESS);
    assert_int_equal(sign_with(t, key, &pub, &pa, 0x44), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_secret_digest),
        cmocka_unit_test(test_policy_secret_refusals),
        cmocka_unit_test(test_policy_secret_at_use),
        cmocka_unit_test(test_policy_or),
        cmocka_unit_test(test_policy_command_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
