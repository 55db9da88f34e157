/* tpm_session_test.c: authorization sessions through tpm_execute, with the client side computed
 * here independently of src/tpm (OpenSSL's HMAC(), SHA256(), EVP AES-CFB and RSA-OAEP, and a KDFa
 * written from Part 1 section 11.4.10.2): StartAuthSession (unsalted, RSA-salted, bound), command
 * HMACs over cpHash and response HMACs over rpHash (Part 1 sections 18.7, 18.8, 19.6.5), a wrong
 * HMAC (TPM_RC_AUTH_FAIL + session 1, DA count), parameter encryption both ways with AES-CFB and
 * XOR (Part 1 section 21), PolicyPCR's digest (Part 3 section 23.7), trial sessions, a
 * PolicyPCR-protected key used through a policy session before and after PCR_Extend, session
 * memory, continueSession and FlushContext.
 *
 * Expected values: every HMAC, KDFa output and policy digest is recomputed here from the formulas
 * of the spec sections named above; the TPM's response HMAC is checked against ours, so a wrong
 * cpHash/rpHash/key rule on either side fails the test. */
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
    assert_int_equal(tpm_instance_new("sess", NULL, 0, NULL, NULL, &t), CF_OK);
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

static TPMT_PUBLIC rsa_storage_template(void)
{
    TPMT_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.type = TPM2_ALG_RSA;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
                         | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
    p.parameters.rsaDetail.symmetric.keyBits.aes = 128;
    p.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.rsaDetail.keyBits = 2048;
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

static uint32_t sign(tpm_instance *t, TPM2_HANDLE key, const TPMT_PUBLIC *pub, cauth *a)
{
    call c;
    uint8_t digest[32];
    memset(digest, 0x5A, sizeof digest);
    call_init(&c, TPM2_CC_Sign);
    TPM2B_NAME name;
    object_name(pub, &name);
    add_handle(&c, key, &name);
    p_2b(&c, digest, 32);
    p_u16(&c, TPM2_ALG_NULL);
    p_u16(&c, TPM2_ST_HASHCHECK);
    p_u32(&c, TPM2_RH_NULL);
    p_u16(&c, 0);
    return run(t, &c, a, 1);
}

static uint32_t pcr_extend(tpm_instance *t, TPM2_HANDLE pcr, uint8_t byte)
{
    call c;
    call_init(&c, TPM2_CC_PCR_Extend);
    add_handle(&c, pcr, NULL);
    p_u32(&c, 1);
    p_u16(&c, TPM2_ALG_SHA256);
    uint8_t d[32];
    memset(d, byte, sizeof d);
    p_bytes(&c, d, 32);
    cauth pw = { .s = NULL, .attrs = 0, .auth = "" };
    return run(t, &c, &pw, 1);
}

static uint32_t flush(tpm_instance *t, TPM2_HANDLE h)
{
    call c;
    call_init(&c, TPM2_CC_FlushContext);
    p_u32(&c, h);
    return run(t, &c, NULL, 0);
}

/* PolicyPCR(sha256: PCR mask) with an empty pcrDigest. */
static uint32_t policy_pcr(tpm_instance *t, const csess *s, uint8_t mask0, const uint8_t *digest, size_t dlen)
{
    call c;
    call_init(&c, TPM2_CC_PolicyPCR);
    add_handle(&c, s->h, NULL);
    p_2b(&c, digest, dlen);
    p_u32(&c, 1);
    p_u16(&c, TPM2_ALG_SHA256);
    p_bytes(&c, (uint8_t[]){ 3, mask0, 0, 0 }, 4);
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

/* The PolicyPCR digest of sha256 PCRs 0 and 1 at the given values, from zeros (Part 3 23.7). */
static void expected_policy_pcr01(const uint8_t pcr0[32], const uint8_t pcr1[32], uint8_t out[32])
{
    uint8_t vals[64], dig[32], in[32 + 4 + 10 + 32];
    memcpy(vals, pcr0, 32);
    memcpy(vals + 32, pcr1, 32);
    SHA256(vals, 64, dig);
    memset(in, 0, 32);
    static const uint8_t cc_sel[14] = { 0x00, 0x00, 0x01, 0x7F, 0, 0, 0, 1, 0x00, 0x0B, 3, 0x03, 0, 0 };
    memcpy(in + 32, cc_sel, 14);
    memcpy(in + 46, dig, 32);
    SHA256(in, sizeof in, out);
}

/* ---- tests ------------------------------------------------------------------------------------ */
static void test_unsalted_hmac_session(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    csess s;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_AES, &s),
                     TPM2_RC_SUCCESS);
    assert_int_equal(s.h >> 24, TPM2_HT_HMAC_SESSION);
    assert_int_equal(s.klen, 0);   /* unbound, unsalted: empty sessionKey */
    /* PCR_Extend of PCR 16 authorized by the session: key = "" || authValue("") */
    call c;
    call_init(&c, TPM2_CC_PCR_Extend);
    add_handle(&c, 16, NULL);
    p_u32(&c, 1);
    p_u16(&c, TPM2_ALG_SHA256);
    uint8_t d[32] = { 1 };
    p_bytes(&c, d, 32);
    cauth a = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION, .include_auth = true, .auth = "" };
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    /* decrypt on a command whose first parameter is not a TPM2B */
    a.attrs |= TPMA_SESSION_DECRYPT;
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_ATTRIBUTES | TPM2_RC_S | TPM2_RC_1);
    /* audit sessions are not supported */
    a.attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_AUDIT;
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_ATTRIBUTES | TPM2_RC_S | TPM2_RC_1);
    /* continueSession clear: flushed after the command */
    a.attrs = 0;
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    assert_null(tpm_session_find(t, s.h));
    assert_int_equal(flush(t, s.h), TPM2_RC_HANDLE | TPM2_RC_P | TPM2_RC_1);
    tpm_instance_free(t);
}

/* Hash with data encrypted by the caller and the digest encrypted by the TPM (both ways). */
static void param_encryption(TPM2_ALG_ID sym)
{
    tpm_instance *t = new_tpm();
    startup(t);
    csess s;
    /* bound to the owner hierarchy (empty auth) and the data made non-trivial by a salt-less bind:
     * a bound session has a sessionKey, so the encryption key is not empty */
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_OWNER, NULL, 0, NULL, 0, "", TPM2_SE_HMAC, sym, &s),
                     TPM2_RC_SUCCESS);
    assert_int_equal(s.klen, 32);
    static const char msg[] = "parameter encryption: the first TPM2B of the command and of the response";
    call c;
    call_init(&c, TPM2_CC_Hash);
    p_2b(&c, msg, sizeof msg - 1);
    p_u16(&c, TPM2_ALG_SHA256);
    p_u32(&c, TPM2_RH_NULL);
    cauth a = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT };
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    uint8_t want[32];
    SHA256((const uint8_t *)msg, sizeof msg - 1, want);
    assert_int_equal(rd16(c.rparams), 32);
    assert_memory_equal(c.rparams + 2, want, 32);   /* decrypted here, so it went through both ways */
    /* again: fresh nonces, same result */
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    assert_memory_equal(c.rparams + 2, want, 32);
    /* GetRandom with the response encrypted */
    call_init(&c, TPM2_CC_GetRandom);
    p_u16(&c, 16);
    a.attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_ENCRYPT;
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    assert_int_equal(rd16(c.rparams), 16);
    tpm_instance_free(t);
}

static void test_param_encryption_cfb(void **state) { (void)state; param_encryption(TPM2_ALG_AES); }
static void test_param_encryption_xor(void **state) { (void)state; param_encryption(TPM2_ALG_XOR); }

/* An RSA-salted session: the salt is OAEP-encrypted here with the primary's public key. */
static void test_salted_rsa_session(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    TPMT_PUBLIC tpl = rsa_storage_template(), pub;
    TPM2_HANDLE srk;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &srk, &pub), TPM2_RC_SUCCESS);

    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = BN_bin2bn(pub.unique.rsa.buffer, pub.unique.rsa.size, NULL), *e = BN_new();
    assert_non_null(bld);
    assert_non_null(n);
    assert_int_equal(BN_set_word(e, 65537), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *fc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(fc), 1);
    assert_int_equal(EVP_PKEY_fromdata(fc, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
    uint8_t salt[32], es[256];
    size_t eslen = sizeof es;
    assert_int_equal(RAND_bytes(salt, sizeof salt), 1);
    EVP_PKEY_CTX *ec = EVP_PKEY_CTX_new(pk, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(ec), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ec, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ec, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ec, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(ec, OPENSSL_memdup("SECRET", 7), 7), 1);
    assert_int_equal(EVP_PKEY_encrypt(ec, es, &eslen, salt, sizeof salt), 1);
    EVP_PKEY_CTX_free(ec);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(fc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    csess s;
    assert_int_equal(start_session(t, srk, TPM2_RH_NULL, es, eslen, salt, sizeof salt, NULL, TPM2_SE_HMAC, TPM2_ALG_AES, &s),
                     TPM2_RC_SUCCESS);
    /* our sessionKey = KDFa(salt, "ATH", ...) must be the TPM's: the response HMAC and the
     * decrypted GetRandom prove it (run() checks the HMAC) */
    call c;
    call_init(&c, TPM2_CC_GetRandom);
    p_u16(&c, 32);
    cauth a = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_ENCRYPT };
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_SUCCESS);
    /* CreatePrimary with its userAuth encrypted by the salted session */
    TPMT_PUBLIC etpl = ecc_sign_template(TPMA_OBJECT_USERWITHAUTH, NULL, 0), epub;
    TPM2_HANDLE key;
    cauth ca = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT,
                 .include_auth = true, .auth = "" };
    assert_int_equal(create_primary(t, "sealed-pw", &etpl, &ca, &key, &epub), TPM2_RC_SUCCESS);
    assert_int_equal(epub.type, TPM2_ALG_ECC);   /* outPublic decrypted here */
    cauth pw = { .s = NULL, .attrs = 0, .auth = "sealed-pw" };
    assert_int_equal(sign(t, key, &epub, &pw), TPM2_RC_SUCCESS);   /* the userAuth arrived intact */
    /* a wrong salt: the session key differs and the TPM's response HMAC would not match ours;
     * a garbled encryptedSalt is refused */
    es[10] ^= 1;
    assert_int_equal(start_session(t, srk, TPM2_RH_NULL, es, eslen, salt, sizeof salt, NULL, TPM2_SE_HMAC, TPM2_ALG_AES, &s),
                     TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_2);
    tpm_instance_free(t);
}

/* A wrong HMAC: TPM_RC_AUTH_FAIL + session 1 and one more failed try; a bound session leaves
 * the bind entity's authValue out of the key. */
static void test_hmac_auth_fail_and_bound(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    TPMT_PUBLIC tpl = ecc_sign_template(TPMA_OBJECT_USERWITHAUTH, NULL, 0), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "secret", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    csess s;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_NULL, &s),
                     TPM2_RC_SUCCESS);
    cauth a = { .s = &s, .attrs = TPMA_SESSION_CONTINUESESSION, .include_auth = true, .auth = "secret" };
    assert_int_equal(sign(t, key, &pub, &a), TPM2_RC_SUCCESS);
    uint32_t before = t->nv.failed_tries;
    a.corrupt = true;
    assert_int_equal(sign(t, key, &pub, &a), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(t->nv.failed_tries, before + 1);
    a.corrupt = false;
    a.auth = "wrong";
    assert_int_equal(sign(t, key, &pub, &a), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(t->nv.failed_tries, before + 2);
    a.auth = "secret";
    assert_int_equal(sign(t, key, &pub, &a), TPM2_RC_SUCCESS);   /* nonces were not rolled by failures */
    /* bound to the key: key = sessionKey only for the key, sessionKey || auth for others */
    csess b;
    assert_int_equal(start_session(t, TPM2_RH_NULL, key, NULL, 0, NULL, 0, "secret", TPM2_SE_HMAC, TPM2_ALG_NULL, &b),
                     TPM2_RC_SUCCESS);
    cauth ba = { .s = &b, .attrs = TPMA_SESSION_CONTINUESESSION, .include_auth = false, .auth = "secret" };
    assert_int_equal(sign(t, key, &pub, &ba), TPM2_RC_SUCCESS);
    ba.include_auth = true;
    assert_int_equal(sign(t, key, &pub, &ba), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    assert_int_equal(flush(t, b.h), TPM2_RC_SUCCESS);
    assert_int_equal(flush(t, s.h), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
}

static void test_policy_pcr(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    uint8_t zero[32] = { 0 }, want[32], got[32];
    expected_policy_pcr01(zero, zero, want);
    /* trial session: digest known answer */
    csess trial;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_TRIAL, TPM2_ALG_NULL, &trial),
                     TPM2_RC_SUCCESS);
    assert_int_equal(trial.h >> 24, TPM2_HT_POLICY_SESSION);
    policy_get_digest(t, &trial, got);
    assert_memory_equal(got, zero, 32);
    assert_int_equal(policy_pcr(t, &trial, 0x03, NULL, 0), TPM2_RC_SUCCESS);
    policy_get_digest(t, &trial, got);
    assert_memory_equal(got, want, 32);

    /* a key that only this policy may use */
    TPMT_PUBLIC tpl = ecc_sign_template(0, want, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    cauth pw = { .s = NULL, .attrs = 0, .auth = "" };
    assert_int_equal(sign(t, key, &pub, &pw), TPM2_RC_AUTH_UNAVAILABLE);   /* userWithAuth clear */
    cauth ta = { .s = &trial, .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(sign(t, key, &pub, &ta), TPM2_RC_ATTRIBUTES | TPM2_RC_S | TPM2_RC_1);   /* trials never authorize */

    csess ps;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_POLICY, TPM2_ALG_NULL, &ps),
                     TPM2_RC_SUCCESS);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_POLICY_FAIL | TPM2_RC_S | TPM2_RC_1);   /* empty policy */
    /* a pcrDigest that is not the current one */
    uint8_t bad[32];
    memset(bad, 7, sizeof bad);
    assert_int_equal(policy_pcr(t, &ps, 0x03, bad, 32), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_1);
    uint8_t cur[32];
    uint8_t vals[64] = { 0 };
    SHA256(vals, 64, cur);
    assert_int_equal(policy_pcr(t, &ps, 0x03, cur, 32), TPM2_RC_SUCCESS);
    policy_get_digest(t, &ps, got);
    assert_memory_equal(got, want, 32);
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_SUCCESS);
    /* the session starts over after use */
    policy_get_digest(t, &ps, got);
    assert_memory_equal(got, zero, 32);
    /* PolicyPCR, then the PCRs change: TPM_RC_PCR_CHANGED */
    assert_int_equal(policy_pcr(t, &ps, 0x03, NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(pcr_extend(t, 0, 0xAB), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_PCR_CHANGED);
    /* PolicyRestart, PolicyPCR at the new values: another digest, not the key's */
    call c;
    call_init(&c, TPM2_CC_PolicyRestart);
    add_handle(&c, ps.h, NULL);
    assert_int_equal(run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(policy_pcr(t, &ps, 0x03, NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_POLICY_FAIL | TPM2_RC_S | TPM2_RC_1);
    tpm_instance_free(t);
}

/* PolicyAuthValue: the HMAC must then include the authValue; PolicyPassword: the cleartext one. */
static void test_policy_auth_value_password(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    uint8_t pol[32], in[36] = { 0 };
    in[32] = 0x00, in[33] = 0x00, in[34] = 0x01, in[35] = 0x6B;   /* TPM_CC_PolicyAuthValue */
    SHA256(in, sizeof in, pol);
    TPMT_PUBLIC tpl = ecc_sign_template(0, pol, 32), pub;
    TPM2_HANDLE key;
    assert_int_equal(create_primary(t, "pw", &tpl, NULL, &key, &pub), TPM2_RC_SUCCESS);
    csess ps;
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_POLICY, TPM2_ALG_NULL, &ps),
                     TPM2_RC_SUCCESS);
    call c;
    call_init(&c, TPM2_CC_PolicyAuthValue);
    add_handle(&c, ps.h, NULL);
    assert_int_equal(run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
    cauth pa = { .s = &ps, .attrs = TPMA_SESSION_CONTINUESESSION, .include_auth = true, .auth = "nope" };
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1);
    pa.auth = "pw";
    assert_int_equal(sign(t, key, &pub, &pa), TPM2_RC_SUCCESS);
    tpm_instance_free(t);
}

static void test_session_memory(void **state)
{
    (void)state;
    tpm_instance *t = new_tpm();
    startup(t);
    csess s[TPM_SESSION_SLOTS + 1];
    for (int i = 0; i < TPM_SESSION_SLOTS; i++)
        assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL,
                                       i % 2 ? TPM2_SE_POLICY : TPM2_SE_HMAC, TPM2_ALG_NULL, &s[i]), TPM2_RC_SUCCESS);
    assert_true(TPM_SESSION_SLOTS >= 3);
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_NULL,
                                   &s[TPM_SESSION_SLOTS]), TPM2_RC_SESSION_MEMORY);
    assert_int_equal(tpm_sessions_loaded(t), TPM_SESSION_SLOTS);
    assert_int_equal(flush(t, s[3].h), TPM2_RC_SUCCESS);
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, NULL, 0, NULL, 0, NULL, TPM2_SE_HMAC, TPM2_ALG_NULL,
                                   &s[TPM_SESSION_SLOTS]), TPM2_RC_SUCCESS);
    /* a session handle that is not loaded: TPM_RC_REFERENCE_S0 */
    assert_int_equal(flush(t, s[TPM_SESSION_SLOTS].h), TPM2_RC_SUCCESS);
    call c;
    call_init(&c, TPM2_CC_GetRandom);
    p_u16(&c, 8);
    cauth a = { .s = &s[TPM_SESSION_SLOTS], .attrs = TPMA_SESSION_CONTINUESESSION };
    assert_int_equal(run(t, &c, &a, 1), TPM2_RC_REFERENCE_S0);
    /* bad StartAuthSession parameters */
    assert_int_equal(start_session(t, TPM2_RH_NULL, TPM2_RH_NULL, (const uint8_t *)"x", 1, NULL, 0, NULL, TPM2_SE_HMAC,
                                   TPM2_ALG_NULL, &s[0]), TPM2_RC_VALUE | TPM2_RC_P | TPM2_RC_2);
    /* Startup flushes every session */
    tpm_reset(t);
    startup(t);
    assert_int_equal(tpm_sessions_loaded(t), 0);
    tpm_instance_free(t);
}

/* The command table stays sorted (binary search) and names the session rows. */
static void test_table(void **state)
{
    (void)state;
    for (size_t i = 1; i < tpm_n_commands; i++)
        assert_true(tpm_commands[i - 1].cc < tpm_commands[i].cc);
    assert_non_null(tpm_command_find(TPM2_CC_StartAuthSession));
    assert_non_null(tpm_command_find(TPM2_CC_PolicyPCR));
    assert_true(tpm_command_find(TPM2_CC_CreatePrimary)->sess & TPM_SF_ENC_CMD);
    assert_true(tpm_command_find(TPM2_CC_GetRandom)->sess & TPM_SF_ENC_RSP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_unsalted_hmac_session),
        cmocka_unit_test(test_param_encryption_cfb),
        cmocka_unit_test(test_param_encryption_xor),
        cmocka_unit_test(test_salted_rsa_session),
        cmocka_unit_test(test_hmac_auth_fail_and_bound),
        cmocka_unit_test(test_policy_pcr),
        cmocka_unit_test(test_policy_auth_value_password),
        cmocka_unit_test(test_session_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
