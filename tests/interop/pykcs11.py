"""pykcs11.py: the module through PyKCS11 (run by pykcs11.sh with Debian's python3): token info,
sessions and their states, login/logout, key pair generation, finding objects by class, label and
id, reading and setting attributes, data objects, and signatures."""
import hashlib

from p11util import (PIN, PyKCS11, Raw, TOKEN, check, expect_rv, load, ok, open_session,
                     reference_lacks, say, token_slot)
from PyKCS11.LowLevel import *  # noqa: F401,F403 (CKA_*, CKO_*, CKR_*, ...)

lib = load()
raw = Raw()
slot = token_slot(lib)

say("library and token")
info = lib.getInfo()
check(info.cryptokiVersion[0] >= 2, f"cryptoki version {info.cryptokiVersion}")
tinfo = lib.getTokenInfo(slot)
check(tinfo.label.strip() == TOKEN, f"token label is {TOKEN!r}")
for name in ("CKF_TOKEN_INITIALIZED", "CKF_USER_PIN_INITIALIZED", "CKF_LOGIN_REQUIRED", "CKF_RNG"):
    check(tinfo.flags & globals()[name], f"token flag {name}")
check(not tinfo.flags & CKF_USER_PIN_LOCKED, "user PIN not locked")
mechs = lib.getMechanismList(slot)
for m in ("CKM_RSA_PKCS_KEY_PAIR_GEN", "CKM_EC_KEY_PAIR_GEN", "CKM_SHA256_RSA_PKCS", "CKM_ECDSA", "CKM_AES_KEY_GEN"):
    check(m in mechs, f"mechanism {m} listed")

say("sessions and login state")
ro = open_session(lib, slot, rw=False)
rw = open_session(lib, slot, rw=True)
check(ro.getSessionInfo().state2text() == "CKS_RO_PUBLIC_SESSION", "read-only session is RO public")
check(rw.getSessionInfo().state2text() == "CKS_RW_PUBLIC_SESSION", "read/write session is RW public")
check(not ro.getSessionInfo().flags & CKF_RW_SESSION and rw.getSessionInfo().flags & CKF_RW_SESSION,
      "session flags carry CKF_RW_SESSION only for the RW session")
expect_rv(CKR_PIN_INCORRECT, "login with a wrong PIN", rw.login, "0000")
expect_rv(CKR_SESSION_READ_ONLY_EXISTS, "SO login while a read-only session exists", rw.login, "12345678", CKU_SO)
rw.login(PIN)
check(rw.getSessionInfo().state2text() == "CKS_RW_USER_FUNCTIONS", "after login: RW user functions")
check(ro.getSessionInfo().state2text() == "CKS_RO_USER_FUNCTIONS", "login applies to every session of the application")
expect_rv(CKR_USER_ALREADY_LOGGED_IN, "second login", ro.login, PIN)
expect_rv(CKR_SESSION_READ_ONLY, "creating a token object in a read-only session",
          ro.createObject, [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, True), (CKA_LABEL, "nope")])

say("key pair generation")
pub_t = [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_TOKEN, True), (CKA_VERIFY, True), (CKA_ENCRYPT, True),
         (CKA_MODULUS_BITS, 2048), (CKA_PUBLIC_EXPONENT, (1, 0, 1)), (CKA_LABEL, "py-rsa"), (CKA_ID, (0x31,))]
priv_t = [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_TOKEN, True), (CKA_PRIVATE, True), (CKA_SENSITIVE, True),
          (CKA_SIGN, True), (CKA_DECRYPT, True), (CKA_LABEL, "py-rsa"), (CKA_ID, (0x31,))]
rsa_pub, rsa_priv = rw.generateKeyPair(pub_t, priv_t, PyKCS11.MechanismRSAGENERATEKEYPAIR)
ok("RSA-2048 key pair generated")
p256 = bytes.fromhex("06082a8648ce3d030107")
ec_pub, ec_priv = rw.generateKeyPair(
    [(CKA_TOKEN, True), (CKA_VERIFY, True), (CKA_EC_PARAMS, p256), (CKA_LABEL, "py-ec"), (CKA_ID, (0x32,))],
    [(CKA_TOKEN, True), (CKA_PRIVATE, True), (CKA_SENSITIVE, True), (CKA_SIGN, True), (CKA_LABEL, "py-ec"),
     (CKA_ID, (0x32,))],
    PyKCS11.Mechanism(CKM_EC_KEY_PAIR_GEN, None))
ok("EC P-256 key pair generated")

say("finding objects")
check(len(rw.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY)])) == 2, "2 private keys by class")
check(len(rw.findObjects([(CKA_CLASS, CKO_PUBLIC_KEY)])) == 2, "2 public keys by class")
check(len(rw.findObjects([(CKA_LABEL, "py-rsa")])) == 2, "2 objects labelled py-rsa")
found = rw.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_ID, (0x32,))])
check(len(found) == 1 and found[0].value() == ec_priv.value(), "class + id finds the EC private key")
check(rw.findObjects([(CKA_LABEL, "no such label")]) == [], "an unknown label finds nothing")
check(len(rw.findObjects([(CKA_KEY_TYPE, CKK_EC)])) == 2, "key type EC finds 2 keys")

say("attributes")
label, cid, ktype, klass = rw.getAttributeValue(rsa_priv, [CKA_LABEL, CKA_ID, CKA_KEY_TYPE, CKA_CLASS])
check(label == "py-rsa", "private key label")
check(bytes(cid) == b"\x31", "private key id")
check(ktype == CKK_RSA and klass == CKO_PRIVATE_KEY, "private key class and type")
mod_pub, bits, exp = rw.getAttributeValue(rsa_pub, [CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT])
check(len(mod_pub) == 256 and mod_pub[0] & 0x80, "modulus is 256 bytes with its top bit set")
check(bits == 2048, "CKA_MODULUS_BITS is 2048")
check(bytes(exp).lstrip(b"\0") == b"\x01\x00\x01", "public exponent 65537")
mod_priv, = rw.getAttributeValue(rsa_priv, [CKA_MODULUS])
check(bytes(mod_priv) == bytes(mod_pub), "private key carries the same modulus")
sens, always, never, local = rw.getAttributeValue(
    rsa_priv, [CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_LOCAL])
check(sens and always and local, "generated private key: sensitive, always sensitive, local")
ecp, ecpt = rw.getAttributeValue(ec_pub, [CKA_EC_PARAMS, CKA_EC_POINT])
check(bytes(ecp) == p256, "EC public key keeps CKA_EC_PARAMS")
check(bytes(ecpt)[:3] == b"\x04\x41\x04" and len(ecpt) == 67, "CKA_EC_POINT is a DER OCTET STRING of an uncompressed point")
rv, n, _ = raw.get_attribute(rw, rsa_priv, CKA_PRIVATE_EXPONENT)
check(rv == CKR_ATTRIBUTE_SENSITIVE, f"reading CKA_PRIVATE_EXPONENT gives CKR_ATTRIBUTE_SENSITIVE (got {PyKCS11.CKR.get(rv, rv)})")
check(rw.getAttributeValue(rsa_priv, [CKA_PRIVATE_EXPONENT]) == [None], "PyKCS11 sees no value for it")
rv, n, _ = raw.get_attribute(rw, rsa_priv, 0x7FFF0001)
check(rv == CKR_ATTRIBUTE_TYPE_INVALID, "an unknown attribute type gives CKR_ATTRIBUTE_TYPE_INVALID")
rw.setAttributeValue(rsa_priv, [(CKA_LABEL, "py-rsa-renamed")])
check(rw.getAttributeValue(rsa_priv, [CKA_LABEL])[0] == "py-rsa-renamed", "label changed by C_SetAttributeValue")
check(len(rw.findObjects([(CKA_LABEL, "py-rsa-renamed")])) == 1, "found under its new label")
expect_rv(CKR_ATTRIBUTE_READ_ONLY, "CKA_CLASS cannot be changed", rw.setAttributeValue, rsa_priv,
          [(CKA_CLASS, CKO_SECRET_KEY)])

say("data objects")
value = bytes(range(40))
data_t = [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, True), (CKA_PRIVATE, False), (CKA_LABEL, "py-data"),
          (CKA_APPLICATION, "coffer-interop"), (CKA_VALUE, value)]
d = rw.createObject(data_t)
ok("data object created")
got = rw.findObjects([(CKA_CLASS, CKO_DATA), (CKA_LABEL, "py-data")])
check(len(got) == 1 and got[0].value() == d.value(), "found by class and label")
v, app = rw.getAttributeValue(d, [CKA_VALUE, CKA_APPLICATION])
check(bytes(v) == value and app == "coffer-interop", "value and application read back")
ro2 = open_session(lib, slot, rw=False)
check(len(ro2.findObjects([(CKA_CLASS, CKO_DATA), (CKA_LABEL, "py-data")])) == 1, "another session sees it")
rw.destroyObject(d)
ok("data object destroyed")
check(rw.findObjects([(CKA_CLASS, CKO_DATA), (CKA_LABEL, "py-data")]) == [], "it is gone")
expect_rv(CKR_OBJECT_HANDLE_INVALID, "its handle is invalid", rw.getAttributeValue, d, [CKA_LABEL])
ro2.closeSession()

say("signatures")
msg = b"signed through PyKCS11"
sig = rw.sign(rsa_priv, msg, PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS, None))
check(len(sig) == 256, "RSA SHA256-RSA-PKCS signature is 256 bytes")
check(rw.verify(rsa_pub, msg, sig, PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS, None)), "the token verifies it")
check(not rw.verify(rsa_pub, msg + b"!", sig, PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS, None)),
      "and rejects it over other data")
digest = hashlib.sha256(msg).digest()
esig = rw.sign(ec_priv, digest, PyKCS11.Mechanism(CKM_ECDSA, None))
check(len(esig) == 64, "ECDSA signature is r||s, 64 bytes")
check(rw.verify(ec_pub, digest, esig, PyKCS11.Mechanism(CKM_ECDSA, None)), "the token verifies it")
bad = bytes(esig[:-1]) + bytes([esig[-1] ^ 1])
check(not rw.verify(ec_pub, digest, bad, PyKCS11.Mechanism(CKM_ECDSA, None)), "a flipped bit is rejected")
if not reference_lacks("a key type check in C_SignInit"):
    expect_rv(CKR_KEY_TYPE_INCONSISTENT, "an RSA mechanism with the EC key", rw.sign, ec_priv, msg,
              PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS, None))

say("logout")
rw.logout()
check(rw.getSessionInfo().state2text() == "CKS_RW_PUBLIC_SESSION", "after logout: RW public")
check(rw.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY)]) == [], "private keys are hidden again")
check(len(rw.findObjects([(CKA_CLASS, CKO_PUBLIC_KEY)])) == 2, "public keys stay visible")
if not reference_lacks("CKR_USER_NOT_LOGGED_IN from C_Logout"):
    expect_rv(CKR_USER_NOT_LOGGED_IN, "logout twice", rw.logout)
ro.closeSession()
rw.closeSession()
print("PASS")
