/* esys_session.c: coffer's TPM sessions through tpm2-tss's ESAPI (libtss2-esys), a client written
 * by others from the same spec: salted HMAC sessions (tpmKey = an RSA-2048 and an ECC P-256
 * storage primary: RSA-OAEP and ECDH/KDFe salts computed by tpm2-tss), a bound session, and
 * parameter encryption both ways (TPMA_SESSION_DECRYPT | ENCRYPT, AES-128-CFB and XOR):
 * Esys_GetRandom (response encrypted) and Esys_CreatePrimary with a sensitive userAuth (command
 * encrypted), the userAuth then shown to have arrived intact by signing with it. ESAPI checks every
 * response HMAC itself, so a wrong sessionKey, cpHash/rpHash or nonce on coffer's side fails here.
 * Then a PolicyPCR trial digest equals the one a real policy session reaches.
 *
 *   usage: esys_session TCTI          e.g. esys_session mssim:host=127.0.0.1,port=2321
 * Exit status 0 when everything passed; the first failure is printed with its TPM response code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

static int failures;

#define CHECK(what, expr) do { \
        TSS2_RC check_rc_ = (expr); \
        if (check_rc_ != TSS2_RC_SUCCESS) { \
            fprintf(stderr, "FAIL: %s: 0x%08x (%s)\n", (what), check_rc_, Tss2_RC_Decode(check_rc_)); \
            failures++; \
            goto out; \
        } \
        printf("ok: %s\n", (what)); \
    } while (0)

#define EXPECT(what, cond) do { \
        if (!(cond)) { fprintf(stderr, "FAIL: %s\n", (what)); failures++; goto out; } \
        printf("ok: %s\n", (what)); \
    } while (0)

static TPM2B_PUBLIC storage_template(TPMI_ALG_PUBLIC type)
{
    TPM2B_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.publicArea.type = type;
    p.publicArea.nameAlg = TPM2_ALG_SHA256;
    p.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
                                    | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    if (type == TPM2_ALG_RSA) {
        TPMS_RSA_PARMS *r = &p.publicArea.parameters.rsaDetail;
        r->symmetric.algorithm = TPM2_ALG_AES;
        r->symmetric.keyBits.aes = 128;
        r->symmetric.mode.aes = TPM2_ALG_CFB;
        r->scheme.scheme = TPM2_ALG_NULL;
        r->keyBits = 2048;
    } else {
        TPMS_ECC_PARMS *e = &p.publicArea.parameters.eccDetail;
        e->symmetric.algorithm = TPM2_ALG_AES;
        e->symmetric.keyBits.aes = 128;
        e->symmetric.mode.aes = TPM2_ALG_CFB;
        e->scheme.scheme = TPM2_ALG_NULL;
        e->curveID = TPM2_ECC_NIST_P256;
        e->kdf.scheme = TPM2_ALG_NULL;
    }
    return p;
}

static TPM2B_PUBLIC signing_template(void)
{
    TPM2B_PUBLIC p;
    memset(&p, 0, sizeof p);
    p.publicArea.type = TPM2_ALG_ECC;
    p.publicArea.nameAlg = TPM2_ALG_SHA256;
    p.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
                                    | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT
                                    | TPMA_OBJECT_NODA;   /* the wrong-auth checks must not trip the lockout */
    TPMS_ECC_PARMS *e = &p.publicArea.parameters.eccDetail;
    e->symmetric.algorithm = TPM2_ALG_NULL;
    e->scheme.scheme = TPM2_ALG_ECDSA;
    e->scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    e->curveID = TPM2_ECC_NIST_P256;
    e->kdf.scheme = TPM2_ALG_NULL;
    return p;
}

static const TPM2B_DATA no_outside = { .size = 0 };
static const TPML_PCR_SELECTION no_pcrs = { .count = 0 };

/* A signature with the key's auth (password session): the userAuth arrived as sent. */
static TSS2_RC sign_with(ESYS_CONTEXT *ectx, ESYS_TR key, const char *auth)
{
    TPM2B_AUTH a = { .size = (uint16_t)strlen(auth) };
    memcpy(a.buffer, auth, a.size);
    TSS2_RC rc = Esys_TR_SetAuth(ectx, key, &a);
    if (rc != TSS2_RC_SUCCESS)
        return rc;
    TPM2B_DIGEST d = { .size = 32 };
    memset(d.buffer, 0x42, 32);
    TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
    TPMT_TK_HASHCHECK tk = { .tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL };
    TPMT_SIGNATURE *sig = NULL;
    rc = Esys_Sign(ectx, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme, &tk, &sig);
    Esys_Free(sig);
    return rc;
}

/* One salted (tpmKey) session with symmetric sym: GetRandom with the response encrypted, then
 * CreatePrimary with the sensitive area encrypted and the public area returned encrypted. */
static int salted_round(ESYS_CONTEXT *ectx, ESYS_TR tpmkey, ESYS_TR bind, TPMT_SYM_DEF sym, const char *label)
{
    char what[160];
    ESYS_TR sess = ESYS_TR_NONE, key = ESYS_TR_NONE;
    TPM2B_DIGEST *rnd = NULL;
    TPM2B_PUBLIC *pub = NULL;
    int ok = 0;
    snprintf(what, sizeof what, "%s: StartAuthSession (salted HMAC session)", label);
    CHECK(what, Esys_StartAuthSession(ectx, tpmkey, bind, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                      TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &sess));
    CHECK("set session attributes decrypt|encrypt|continue",
          Esys_TRSess_SetAttributes(ectx, sess, TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION,
                                    0xff));
    snprintf(what, sizeof what, "%s: GetRandom(32) with the response encrypted", label);
    CHECK(what, Esys_GetRandom(ectx, sess, ESYS_TR_NONE, ESYS_TR_NONE, 32, &rnd));
    EXPECT("GetRandom gave 32 bytes", rnd->size == 32);

    TPM2B_SENSITIVE_CREATE in = { .size = 0 };
    static const char secret[] = "s3cret-userAuth";
    in.sensitive.userAuth.size = (uint16_t)strlen(secret);
    memcpy(in.sensitive.userAuth.buffer, secret, strlen(secret));
    TPM2B_PUBLIC tpl = signing_template();
    snprintf(what, sizeof what, "%s: CreatePrimary, userAuth encrypted, HMAC-authorized owner", label);
    CHECK(what, Esys_CreatePrimary(ectx, ESYS_TR_RH_OWNER, sess, ESYS_TR_NONE, ESYS_TR_NONE, &in, &tpl, &no_outside,
                                   &no_pcrs, &key, &pub, NULL, NULL, NULL));
    EXPECT("outPublic decrypted: an ECC point of 32-byte coordinates",
           pub->publicArea.type == TPM2_ALG_ECC && pub->publicArea.unique.ecc.x.size == 32);
    CHECK("Sign with the userAuth sent encrypted", sign_with(ectx, key, secret));
    EXPECT("Sign with another userAuth fails", sign_with(ectx, key, "not-it") != TSS2_RC_SUCCESS);
    ok = 1;
out:
    Esys_Free(rnd);
    Esys_Free(pub);
    if (key != ESYS_TR_NONE)
        Esys_FlushContext(ectx, key);
    if (sess != ESYS_TR_NONE)
        Esys_FlushContext(ectx, sess);
    return ok;
}

/* PolicyPCR(sha256:0,1) in a trial session and in a real one reach the same digest. */
static int policy_round(ESYS_CONTEXT *ectx)
{
    ESYS_TR trial = ESYS_TR_NONE, real = ESYS_TR_NONE;
    TPM2B_DIGEST *d1 = NULL, *d2 = NULL;
    TPMT_SYM_DEF none = { .algorithm = TPM2_ALG_NULL };
    TPML_PCR_SELECTION sel = { .count = 1 };
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[0] = 0x03;
    TPM2B_DIGEST empty = { .size = 0 };
    int ok = 0;
    CHECK("StartAuthSession (trial)", Esys_StartAuthSession(ectx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                                            ESYS_TR_NONE, NULL, TPM2_SE_TRIAL, &none, TPM2_ALG_SHA256, &trial));
    CHECK("PolicyPCR (trial)", Esys_PolicyPCR(ectx, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel));
    CHECK("PolicyGetDigest (trial)", Esys_PolicyGetDigest(ectx, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &d1));
    CHECK("StartAuthSession (policy)", Esys_StartAuthSession(ectx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                                             ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &none, TPM2_ALG_SHA256, &real));
    CHECK("PolicyPCR (policy)", Esys_PolicyPCR(ectx, real, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel));
    CHECK("PolicyGetDigest (policy)", Esys_PolicyGetDigest(ectx, real, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &d2));
    EXPECT("trial and real PolicyPCR digests agree", d1->size == 32 && d2->size == 32 && !memcmp(d1->buffer, d2->buffer, 32));
    ok = 1;
out:
    Esys_Free(d1);
    Esys_Free(d2);
    if (trial != ESYS_TR_NONE)
        Esys_FlushContext(ectx, trial);
    if (real != ESYS_TR_NONE)
        Esys_FlushContext(ectx, real);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s TCTI\n", argv[0]);
        return 2;
    }
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *ectx = NULL;
    ESYS_TR rsa = ESYS_TR_NONE, ecc = ESYS_TR_NONE;
    TSS2_RC rc = Tss2_TctiLdr_Initialize(argv[1], &tcti);
    if (rc != TSS2_RC_SUCCESS) {
        fprintf(stderr, "FAIL: TCTI %s: 0x%08x\n", argv[1], rc);
        return 1;
    }
    CHECK("Esys_Initialize", Esys_Initialize(&ectx, tcti, NULL));
    rc = Esys_Startup(ectx, TPM2_SU_CLEAR);
    if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)
        CHECK("Startup", rc);

    TPM2B_SENSITIVE_CREATE empty_sens = { .size = 0 };
    TPM2B_PUBLIC rsa_tpl = storage_template(TPM2_ALG_RSA), ecc_tpl = storage_template(TPM2_ALG_ECC);
    CHECK("CreatePrimary RSA-2048 storage key (salt key)",
          Esys_CreatePrimary(ectx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &empty_sens, &rsa_tpl,
                             &no_outside, &no_pcrs, &rsa, NULL, NULL, NULL, NULL));
    CHECK("CreatePrimary ECC P-256 storage key (salt key)",
          Esys_CreatePrimary(ectx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &empty_sens, &ecc_tpl,
                             &no_outside, &no_pcrs, &ecc, NULL, NULL, NULL, NULL));

    TPMT_SYM_DEF aes = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB };
    TPMT_SYM_DEF aes256 = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 256, .mode.aes = TPM2_ALG_CFB };
    TPMT_SYM_DEF xor = { .algorithm = TPM2_ALG_XOR, .keyBits.exclusiveOr = TPM2_ALG_SHA256 };
    if (!salted_round(ectx, rsa, ESYS_TR_NONE, aes, "RSA salt, AES-128-CFB"))
        goto out;
    if (!salted_round(ectx, ecc, ESYS_TR_NONE, aes, "ECC salt, AES-128-CFB"))
        goto out;
    if (!salted_round(ectx, rsa, ESYS_TR_NONE, xor, "RSA salt, XOR"))
        goto out;
    if (!salted_round(ectx, ecc, ESYS_TR_RH_OWNER, aes256, "ECC salt, bound to owner, AES-256-CFB"))
        goto out;
    if (!salted_round(ectx, ESYS_TR_NONE, ESYS_TR_NONE, aes, "unsalted, AES-128-CFB"))
        goto out;
    if (!policy_round(ectx))
        goto out;
out:
    if (ectx) {
        if (rsa != ESYS_TR_NONE)
            Esys_FlushContext(ectx, rsa);
        if (ecc != ESYS_TR_NONE)
            Esys_FlushContext(ectx, ecc);
        Esys_Finalize(&ectx);
    }
    Tss2_TctiLdr_Finalize(&tcti);
    if (failures) {
        fprintf(stderr, "esys_session: %d failure(s)\n", failures);
        return 1;
    }
    printf("esys_session: PASS\n");
    return 0;
}
