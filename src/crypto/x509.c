/* x509.c: the pieces of an X.509 certificate that a PKCS#11 certificate object carries
 * (CKA_VALUE, CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER), all DER. */
#include <limits.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "crypto/crypto_int.h"

static bool is_pem(const uint8_t *p, size_t len)
{
    static const char tag[] = "-----BEGIN";
    return memmem(p, len, tag, sizeof tag - 1) != NULL;
}

/* i2d_* of any type into a fresh cf_buf. */
#define I2D_BUF(fn, obj, buf)                                                   \
    do {                                                                        \
        int n_ = fn(obj, NULL);                                                 \
        CF_CHECK(n_ > 0, CF_E_FORMAT);                                          \
        CF_GUARD(cf_crypto_buf_alloc(buf, (size_t)n_));                         \
        unsigned char *p_ = (buf)->p;                                           \
        CF_CHECK(fn(obj, &p_) == n_, CF_E_CRYPTO);                              \
    } while (0)

cf_err cf_x509_parse(const uint8_t *pem_or_der, size_t len, cf_x509_info *out)
{
    CF_ENSURE(pem_or_der && out && len > 0 && len <= INT_MAX, CF_E_ARGS);
    *out = (cf_x509_info){ 0 };
    cf_err rv = CF_E_FORMAT;
    X509 *x = NULL;
    if (is_pem(pem_or_der, len)) {
        BIO *bio = BIO_new_mem_buf(pem_or_der, (int)len);
        CF_CHECK(bio, CF_E_NOMEM);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = pem_or_der;
        x = d2i_X509(NULL, &p, (long)len);
        CF_CHECK(!x || p == pem_or_der + len, CF_E_FORMAT);   /* nothing after the certificate */
    }
    CF_CHECK(x, CF_E_FORMAT);
    I2D_BUF(i2d_X509, x, &out->der);
    I2D_BUF(i2d_X509_NAME, X509_get_subject_name(x), &out->subject);
    I2D_BUF(i2d_X509_NAME, X509_get_issuer_name(x), &out->issuer);
    I2D_BUF(i2d_ASN1_INTEGER, X509_get0_serialNumber(x), &out->serial);
    rv = CF_OK;
out:
    if (rv != CF_OK) {
        cf_crypto_fail("X.509 parse", rv);
        cf_x509_info_free(out);
    }
    X509_free(x);
    return rv;
}

void cf_x509_info_free(cf_x509_info *x)
{
    if (!x)
        return;
    cf_buf_free(&x->der);
    cf_buf_free(&x->subject);
    cf_buf_free(&x->issuer);
    cf_buf_free(&x->serial);
}
