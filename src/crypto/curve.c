/* curve.c: the curves coffer supports, their CKA_EC_PARAMS encodings, and the DER OCTET STRING
 * that CKA_EC_POINT holds (PKCS#11 3.0 sec. 2.3.3 / 2.3.5). The parameter encodings are fixed
 * strings, so they are recognised by comparing whole bytes against this table, never parsed. */
#include <string.h>
#include <openssl/obj_mac.h>
#include "base/bytes.h"
#include "crypto/crypto_int.h"

static const cf_curve_info nist[] = {
    { CF_CURVE_P256, "prime256v1", NID_X9_62_prime256v1, 256, 32 },
    { CF_CURVE_P384, "secp384r1", NID_secp384r1, 384, 48 },
    { CF_CURVE_P521, "secp521r1", NID_secp521r1, 521, 66 },
};

const cf_curve_info *cf_crypto_curve_info(cf_curve c)
{
    for (size_t i = 0; i < sizeof nist / sizeof nist[0]; i++)
        if (nist[i].curve == c)
            return &nist[i];
    return NULL;
}

static const uint8_t der_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t der_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t der_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const uint8_t der_ed25519_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };   /* 1.3.101.112 */
/* PrintableString "edwards25519": what OpenSC and pkcs11-tool write for Ed25519 keys. */
static const uint8_t der_ed25519_str[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9' };

static const struct {
    cf_curve curve;
    const uint8_t *der;
    size_t len;
} params[] = {
    /* The first entry of a curve is the form cf_curve_to_params writes. */
    { CF_CURVE_P256, der_p256, sizeof der_p256 },
    { CF_CURVE_P384, der_p384, sizeof der_p384 },
    { CF_CURVE_P521, der_p521, sizeof der_p521 },
    { CF_CURVE_ED25519, der_ed25519_str, sizeof der_ed25519_str },
    { CF_CURVE_ED25519, der_ed25519_oid, sizeof der_ed25519_oid },
};

cf_curve cf_curve_from_params(const uint8_t *der, size_t len)
{
    if (!der)
        return CF_CURVE_NONE;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        if (len == params[i].len && memcmp(der, params[i].der, len) == 0)
            return params[i].curve;
    return CF_CURVE_NONE;
}

cf_err cf_curve_to_params(cf_curve c, cf_buf *der)
{
    CF_ENSURE(der, CF_E_ARGS);
    der->p = NULL;
    der->len = 0;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        if (params[i].curve == c)
            return cf_crypto_buf_set(der, params[i].der, params[i].len);
    return CF_E_CURVE_NOT_SUPPORTED;
}

size_t cf_curve_field_len(cf_curve c)
{
    if (c == CF_CURVE_ED25519)
        return 32;
    const cf_curve_info *ci = cf_crypto_curve_info(c);
    return ci ? ci->field_len : 0;
}

/* Raw point length of a curve: 04||X||Y, or the 32-byte Ed25519 encoding. */
static size_t raw_point_len(cf_curve c)
{
    if (c == CF_CURVE_ED25519)
        return 32;
    size_t fl = cf_curve_field_len(c);
    return fl ? 1 + 2 * fl : 0;
}

cf_err cf_ec_point_to_der(const uint8_t *point, size_t len, cf_buf *der)
{
    CF_ENSURE(point && der && len > 0 && len <= 0xffff, CF_E_ARGS);
    der->p = NULL;
    der->len = 0;
    /* X.690 8.1.3: short form below 128, else 0x80|n followed by n length bytes. */
    uint8_t hdr[4];
    size_t h = 0;
    hdr[h++] = 0x04;
    if (len < 0x80) {
        hdr[h++] = (uint8_t)len;
    } else if (len <= 0xff) {
        hdr[h++] = 0x81;
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = 0x82;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    }
    CF_TRY(cf_crypto_buf_alloc(der, h + len));
    memcpy(der->p, hdr, h);
    memcpy(der->p + h, point, len);
    return CF_OK;
}

/* A DER OCTET STRING that fills the input exactly, with a minimal (DER) length. */
static bool parse_octet_string(const uint8_t *der, size_t len, const uint8_t **content, size_t *clen)
{
    cf_reader r = cf_reader_init(der, len);
    uint8_t tag, b;
    size_t n = 0;
    if (cf_get_u8(&r, &tag) != CF_OK || tag != 0x04 || cf_get_u8(&r, &b) != CF_OK)
        return false;
    if (b < 0x80) {
        n = b;
    } else if (b == 0x81) {
        if (cf_get_u8(&r, &b) != CF_OK || b < 0x80)
            return false;
        n = b;
    } else if (b == 0x82) {
        uint16_t v;
        if (cf_get_u16(&r, &v) != CF_OK || v < 0x100)
            return false;
        n = v;
    } else {
        return false;
    }
    if (cf_reader_left(&r) != n || cf_get_view(&r, content, n) != CF_OK)
        return false;
    *clen = n;
    return true;
}

cf_err cf_ec_point_from_der(cf_curve c, const uint8_t *der, size_t len, cf_buf *point)
{
    CF_ENSURE(point && (der || len == 0), CF_E_ARGS);
    point->p = NULL;
    point->len = 0;
    size_t want = raw_point_len(c);
    CF_ENSURE(want, CF_E_CURVE_NOT_SUPPORTED);
    const uint8_t *content = NULL;
    size_t clen = 0;
    if (parse_octet_string(der, len, &content, &clen) && clen == want
        && (c == CF_CURVE_ED25519 || content[0] == 0x04))
        return cf_crypto_buf_set(point, content, clen);
    /* A bare point, as some clients send it. The lengths cannot collide with the DER form. */
    if (len == want && (c == CF_CURVE_ED25519 || der[0] == 0x04))
        return cf_crypto_buf_set(point, der, len);
    return CF_E_ATTRIBUTE_VALUE_INVALID;
}
