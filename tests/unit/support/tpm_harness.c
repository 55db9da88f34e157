/* tpm_harness.c: one copy of the TPM unit tests' harness (see tpm_harness.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include "tpm_harness.h"

/* ---- instances ------------------------------------------------------------------------------- */
cf_err save_blob(void *ctx, const uint8_t *blob, size_t len)
{
    env *e = ctx;
    assert_true(len <= sizeof e->blob);
    memcpy(e->blob, blob, len);
    e->len = len;
    e->calls++;
    return CF_OK;
}

static uint64_t env_now(void *ctx) { return ((env *)ctx)->now; }

tpm_instance *new_tpm(env *e, const uint8_t *blob, size_t len)
{
    tpm_instance *t = NULL;
    assert_int_equal(tpm_instance_new("test", blob, len, save_blob, e, &t), CF_OK);
    tpm_set_time_source(t, env_now, e);
    tpm_power_on(t);
    return t;
}

uint64_t fake_clock;
static uint64_t fake_now(void *ctx) { (void)ctx; return fake_clock; }

tpm_instance *new_volatile_tpm(const char *name)
{
    tpm_instance *t = NULL;
    assert_int_equal(tpm_instance_new(name, NULL, 0, NULL, NULL, &t), CF_OK);
    tpm_set_time_source(t, fake_now, NULL);
    tpm_power_on(t);
    return t;
}

void serialize(tpm_instance *t, uint8_t *out, size_t *len)
{
    cf_writer w = cf_writer_fixed(out, *len);
    assert_int_equal(tpm_state_serialize(t, &w), CF_OK);
    *len = w.len;
}

/* ---- responses -------------------------------------------------------------------------------- */
uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* tpm_execute with the header's size checked; the response code. */
static uint32_t exec_raw(tpm_instance *t, uint8_t loc, const uint8_t *buf, size_t len, resp *r)
{
    r->len = tpm_execute(t, loc, buf, len, r->b, sizeof r->b);
    assert_true(r->len >= 10);
    assert_int_equal(rd32(r->b + 2), r->len);
    return rd32(r->b + 6);
}

uint32_t exec_loc(tpm_instance *t, uint8_t loc, const uint8_t *buf, size_t len, resp *r)
{
    uint32_t rc = exec_raw(t, loc, buf, len, r);
    if (rc != TPM2_RC_SUCCESS)
        assert_int_equal(r->len, 10);
    return rc;
}

uint32_t exec(tpm_instance *t, const uint8_t *buf, size_t len, resp *r) { return exec_loc(t, 0, buf, len, r); }

/* ---- raw commands (cmd) ----------------------------------------------------------------------- */
void begin(cmd *c, TPM2_ST tag, TPM2_CC cc)
{
    c->w = cf_writer_fixed(c->b, sizeof c->b);
    cf_put_u16(&c->w, tag);
    cf_put_u32(&c->w, 0);
    cf_put_u32(&c->w, cc);
}

size_t end(cmd *c)
{
    assert_int_equal(cf_writer_status(&c->w), CF_OK);
    size_t n = c->w.len;
    c->b[2] = (uint8_t)(n >> 24), c->b[3] = (uint8_t)(n >> 16), c->b[4] = (uint8_t)(n >> 8), c->b[5] = (uint8_t)n;
    return n;
}

void put_pw(cmd *c, const char *pw)
{
    size_t n = strlen(pw);
    cf_put_u32(&c->w, TPM2_RS_PW);
    cf_put_u16(&c->w, 0);
    cf_put_u8(&c->w, TPMA_SESSION_CONTINUESESSION);
    cf_put_u16(&c->w, (uint16_t)n);
    cf_put_bytes(&c->w, pw, n);
}

void pw_session(cmd *c, const char *pw)
{
    cf_put_u32(&c->w, (uint32_t)(9 + strlen(pw)));
    put_pw(c, pw);
}

void pw_sessions2(cmd *c, const char *a, const char *b)
{
    cf_put_u32(&c->w, (uint32_t)(18 + strlen(a) + strlen(b)));
    put_pw(c, a);
    put_pw(c, b);
}

uint32_t run(tpm_instance *t, cmd *c, resp *r) { return exec_loc(t, 0, c->b, end(c), r); }

uint32_t startup(tpm_instance *t, TPM2_SU su)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_Startup);
    cf_put_u16(&c.w, su);
    return run(t, &c, &r);
}

uint32_t flush(tpm_instance *t, TPM2_HANDLE h)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_FlushContext);
    cf_put_u32(&c.w, h);
    return run(t, &c, &r);
}

uint32_t property(tpm_instance *t, TPM2_PT pt)
{
    cmd c;
    resp r;
    begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GetCapability);
    cf_put_u32(&c.w, TPM2_CAP_TPM_PROPERTIES);
    cf_put_u32(&c.w, pt);
    cf_put_u32(&c.w, 1);
    assert_int_equal(run(t, &c, &r), TPM2_RC_SUCCESS);
    assert_int_equal(rd32(r.b + 15), 1);
    assert_int_equal(rd32(r.b + 19), pt);
    return rd32(r.b + 23);
}

size_t pcr_read_cmd(cmd *c, TPM2_ALG_ID alg, unsigned pcr)
{
    begin(c, TPM2_ST_NO_SESSIONS, TPM2_CC_PCR_Read);
    cf_put_u32(&c->w, 1);
    cf_put_u16(&c->w, alg);
    cf_put_u8(&c->w, 3);
    uint8_t sel[3] = { 0 };
    sel[pcr / 8] = (uint8_t)(1u << (pcr % 8));
    cf_put_bytes(&c->w, sel, 3);
    return end(c);
}

/* The value of one PCR, through PCR_Read. */

void pcr_value(tpm_instance *t, TPM2_ALG_ID alg, unsigned pcr, uint8_t *out, size_t len)
{
    cmd c;
    resp r;
    size_t n = pcr_read_cmd(&c, alg, pcr);
    assert_int_equal(exec_loc(t, 0, c.b, n, &r), TPM2_RC_SUCCESS);
    /* counter(4) selection(4+2+1+3) count(4) size(2) digest */
    assert_int_equal(rd32(r.b + 10 + 4 + 10), 1);
    assert_int_equal((r.b[28] << 8) | r.b[29], len);
    memcpy(out, r.b + 30, len);
}

size_t create_primary_cmd(cmd *c, TPM2_HANDLE hier, const char *hpw, const char *userauth, const uint8_t *data,
                          size_t dlen, const TPMT_PUBLIC *tpl)
{
    begin(c, TPM2_ST_SESSIONS, TPM2_CC_CreatePrimary);
    cf_put_u32(&c->w, hier);
    pw_session(c, hpw);
    size_t ua = strlen(userauth);
    cf_put_u16(&c->w, (uint16_t)(2 + ua + 2 + dlen));   /* TPM2B_SENSITIVE_CREATE */
    cf_put_u16(&c->w, (uint16_t)ua);
    cf_put_bytes(&c->w, userauth, ua);
    cf_put_u16(&c->w, (uint16_t)dlen);
    if (dlen)
        cf_put_bytes(&c->w, data, dlen);
    TPM2B_PUBLIC pub = { .publicArea = *tpl };
    tpm_put(&c->w, TPM_MARSHAL(TPM2B_PUBLIC), &pub);
    cf_put_u16(&c->w, 0);   /* outsideInfo */
    cf_put_u32(&c->w, 0);   /* creationPCR */
    return end(c);
}

uint32_t primary(tpm_instance *t, TPM2_HANDLE hier, const char *hpw, const char *userauth, const uint8_t *data,
                 size_t dlen, const TPMT_PUBLIC *tpl, TPM2_HANDLE *h, TPM2B_PUBLIC *out)
{
    cmd c;
    resp r;
    uint32_t rc = exec(t, c.b, create_primary_cmd(&c, hier, hpw, userauth, data, dlen, tpl), &r);
    if (rc != TPM2_RC_SUCCESS)
        return rc;
    *h = rd32(r.b + 10);
    size_t off = 18;   /* header, handle, parameterSize */
    memset(out, 0, sizeof *out);
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(r.b, r.len, &off, out), TSS2_RC_SUCCESS);
    return rc;
}

uint32_t create_primary_pw(tpm_instance *t, TPM2_HANDLE hier, const char *userauth, const TPMT_PUBLIC *tpl,
                           TPM2_HANDLE *h, TPM2B_PUBLIC *out)
{
    return primary(t, hier, "", userauth, NULL, 0, tpl, h, out);
}

/* ---- the client side of sessions, from the spec (call) -------------------------------------------- */
void kdfa(const uint8_t *key, size_t klen, const char *label, const uint8_t *u, size_t ul, const uint8_t *v,
          size_t vl, uint32_t bits, uint8_t *out)
{
    size_t n = (bits + 7) / 8, done = 0;
    for (uint32_t i = 1; done < n; i++) {
        uint8_t in[512], mac[32];
        size_t m = 0;
        uint8_t be[4] = { (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
        memcpy(in + m, be, 4), m += 4;
        memcpy(in + m, label, strlen(label) + 1), m += strlen(label) + 1;
        if (ul)
            memcpy(in + m, u, ul), m += ul;
        if (vl)
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

size_t session_value(const cauth *a, uint8_t *out)
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
void crypt_param(const cauth *a, bool enc, const uint8_t *newer, const uint8_t *older, uint8_t *p, size_t n)
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

void sess_hmac(const cauth *a, const uint8_t *phash, const uint8_t *newer, const uint8_t *older,
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

void handle_name(TPM2_HANDLE h, TPM2B_NAME *n)
{
    n->size = 4;
    n->name[0] = (uint8_t)(h >> 24), n->name[1] = (uint8_t)(h >> 16), n->name[2] = (uint8_t)(h >> 8), n->name[3] = (uint8_t)h;
}

/* Object name = nameAlg || SHA-256(TPMT_PUBLIC) (Part 1 section 16). */
void object_name(const TPMT_PUBLIC *p, TPM2B_NAME *n)
{
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(p, buf, sizeof buf, &off), TSS2_RC_SUCCESS);
    n->size = 34;
    n->name[0] = 0x00, n->name[1] = 0x0B;
    SHA256(buf, off, n->name + 2);
}

/* Sends the command with these authorizations; checks the response HMACs and decrypts. */
uint32_t call_run(tpm_instance *t, call *c, cauth *auths, size_t na)
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

    uint8_t cbuf[4096];
    cf_writer w = cf_writer_fixed(cbuf, sizeof cbuf);
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
        cbuf[at] = (uint8_t)(asz >> 24), cbuf[at + 1] = (uint8_t)(asz >> 16), cbuf[at + 2] = (uint8_t)(asz >> 8), cbuf[at + 3] = (uint8_t)asz;
    }
    cf_put_bytes(&w, params, c->plen);
    assert_int_equal(cf_writer_status(&w), CF_OK);
    cbuf[2] = (uint8_t)(w.len >> 24), cbuf[3] = (uint8_t)(w.len >> 16), cbuf[4] = (uint8_t)(w.len >> 8), cbuf[5] = (uint8_t)w.len;

    resp r;
    uint32_t rc = exec_raw(t, 0, cbuf, w.len, &r);
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

void call_init(call *c, TPM2_CC cc)
{
    memset(c, 0, sizeof *c);
    c->cc = cc;
}

void add_handle(call *c, TPM2_HANDLE h, const TPM2B_NAME *name)
{
    c->handles[c->nh] = h;
    if (name)
        c->names[c->nh] = *name;
    else
        handle_name(h, &c->names[c->nh]);
    c->nh++;
}

void p_bytes(call *c, const void *p, size_t n) { if (n) memcpy(c->params + c->plen, p, n), c->plen += n; }
void p_u16(call *c, uint16_t v) { uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v }; p_bytes(c, b, 2); }
void p_u32(call *c, uint32_t v) { uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v }; p_bytes(c, b, 4); }
void p_2b(call *c, const void *p, size_t n) { p_u16(c, (uint16_t)n); p_bytes(c, p, n); }


void startup_clear(tpm_instance *t)
{
    call c;
    call_init(&c, TPM2_CC_Startup);
    p_u16(&c, TPM2_SU_CLEAR);
    assert_int_equal(call_run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
}

/* StartAuthSession; salt (already encrypted) may be empty; bind_auth is the bind entity's. */
uint32_t start_session(tpm_instance *t, TPM2_HANDLE tpmkey, TPM2_HANDLE bind, const uint8_t *esalt, size_t eslen,
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
    uint32_t rc = call_run(t, &c, NULL, 0);
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

TPMT_PUBLIC ecc_sign_template(TPMA_OBJECT extra, const uint8_t *policy, size_t plen)
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
uint32_t create_primary(tpm_instance *t, const char *userauth, const TPMT_PUBLIC *tpl, cauth *a,
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
    uint32_t rc = call_run(t, &c, a ? a : &pw, 1);
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

void policy_get_digest(tpm_instance *t, const csess *s, uint8_t out[32])
{
    call c;
    call_init(&c, TPM2_CC_PolicyGetDigest);
    add_handle(&c, s->h, NULL);
    assert_int_equal(call_run(t, &c, NULL, 0), TPM2_RC_SUCCESS);
    assert_int_equal(c.rplen, 34);
    memcpy(out, c.rparams + 2, 32);
}
