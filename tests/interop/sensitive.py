"""sensitive.py: one side of sensitive.sh (PyKCS11 and raw calls into the module).
  sensitive.py keys          sensitive, non-extractable keys stay so: values unreadable, no wrap,
                             no way to clear SENSITIVE or set EXTRACTABLE (copy or set)
  sensitive.py import HEX SYNC   imports a known AES key as a sensitive token key, CKA_ID 0x77, then
                             creates SYNC/imported and stays in the store until SYNC/done exists
  sensitive.py grep HEX FILE...   the key's bytes appear in none of the files (raw, hex, base64)"""
import base64
import os
import sys
import time

from p11util import (CK_UNAVAILABLE_INFORMATION, PyKCS11, Raw, check, expect_rv, fail, load, ok, open_session,
                     rv_name, say, token_slot)
from PyKCS11.LowLevel import *  # noqa: F401,F403


def session():
    lib = load()
    return lib, open_session(lib, token_slot(lib), rw=True, login=CKU_USER)


def keys():
    lib, s = session()
    raw = Raw()
    say("a sensitive, non-extractable RSA private key and AES key")
    pub, priv = s.generateKeyPair(
        [(CKA_TOKEN, True), (CKA_VERIFY, True), (CKA_MODULUS_BITS, 2048), (CKA_PUBLIC_EXPONENT, (1, 0, 1)),
         (CKA_LABEL, "sens-rsa"), (CKA_ID, (0x61,))],
        [(CKA_TOKEN, True), (CKA_PRIVATE, True), (CKA_SIGN, True), (CKA_SENSITIVE, True),
         (CKA_EXTRACTABLE, False), (CKA_LABEL, "sens-rsa"), (CKA_ID, (0x61,))],
        PyKCS11.MechanismRSAGENERATEKEYPAIR)
    aes = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
                         (CKA_TOKEN, True), (CKA_PRIVATE, True), (CKA_ENCRYPT, True), (CKA_DECRYPT, True),
                         (CKA_SENSITIVE, True), (CKA_EXTRACTABLE, False), (CKA_LABEL, "sens-aes"),
                         (CKA_ID, (0x62,))])
    kek = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
                         (CKA_TOKEN, False), (CKA_WRAP, True), (CKA_UNWRAP, True), (CKA_LABEL, "kek")])
    ok("keys generated")
    for obj, name in ((priv, "RSA private key"), (aes, "AES key")):
        sens, ext, asens, nex = s.getAttributeValue(
            obj, [CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE])
        check(sens and not ext and asens and nex,
              f"{name}: SENSITIVE, not EXTRACTABLE, ALWAYS_SENSITIVE, NEVER_EXTRACTABLE")

    say("values cannot be read")
    for obj, attr, name in ((priv, CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT"), (priv, CKA_PRIME_1, "CKA_PRIME_1"),
                            (priv, CKA_COEFFICIENT, "CKA_COEFFICIENT"), (aes, CKA_VALUE, "CKA_VALUE")):
        rv, n, val = raw.get_attribute(s, obj, attr)
        check(rv == CKR_ATTRIBUTE_SENSITIVE and n == CK_UNAVAILABLE_INFORMATION and val is None,
              f"{name}: CKR_ATTRIBUTE_SENSITIVE, length CK_UNAVAILABLE_INFORMATION (got {rv_name(rv)}, {n:#x})")
        rv, n, val = raw.get_attribute(s, obj, attr, size=4096)
        check(rv == CKR_ATTRIBUTE_SENSITIVE and n == CK_UNAVAILABLE_INFORMATION and val is None,
              f"{name}: also with a buffer supplied")
    rv, lens = raw.attribute_lengths(s, aes, [CKA_LABEL, CKA_VALUE, CKA_VALUE_LEN])
    check(rv == CKR_ATTRIBUTE_SENSITIVE and lens[0] == len("sens-aes") and lens[1] == CK_UNAVAILABLE_INFORMATION
          and lens[2] in (4, 8),
          "in a mixed template the other attributes are still answered")

    say("no way out by wrapping")
    expect_rv(CKR_KEY_UNEXTRACTABLE, "C_WrapKey of the non-extractable AES key", s.wrapKey, kek, aes,
              PyKCS11.Mechanism(CKM_AES_KEY_WRAP, None))

    say("no way to clear SENSITIVE or set EXTRACTABLE")
    for obj, name in ((priv, "RSA private key"), (aes, "AES key")):
        for attr, val, aname in ((CKA_SENSITIVE, False, "SENSITIVE=false"), (CKA_EXTRACTABLE, True, "EXTRACTABLE=true")):
            rv, new = raw.copy_object(s, obj, [(attr, val)])
            check(rv == CKR_ATTRIBUTE_READ_ONLY, f"{name}: C_CopyObject with {aname} refused (got {rv_name(rv)})")
            rv = raw.set_bools(s, obj, [(attr, val)])
            check(rv == CKR_ATTRIBUTE_READ_ONLY, f"{name}: C_SetAttributeValue {aname} refused (got {rv_name(rv)})")
        sens, ext = s.getAttributeValue(obj, [CKA_SENSITIVE, CKA_EXTRACTABLE])
        check(sens and not ext, f"{name}: still sensitive and non-extractable")
    rv, copy = raw.copy_object(s, aes, [(CKA_TOKEN, False)])
    check(rv == CKR_OK and copy != 0, "a plain copy of the AES key is allowed")
    rv, n, val = raw.get_attribute(s, copy, CKA_VALUE)
    check(rv == CKR_ATTRIBUTE_SENSITIVE and val is None, "and the copy is just as sensitive")
    s.logout()


def import_key(hexkey, sync):
    lib, s = session()
    s.createObject([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, True), (CKA_PRIVATE, True),
                    (CKA_SENSITIVE, True), (CKA_EXTRACTABLE, False), (CKA_ENCRYPT, True), (CKA_DECRYPT, True),
                    (CKA_LABEL, "known-aes"), (CKA_ID, (0x77,)), (CKA_VALUE, bytes.fromhex(hexkey))])
    ok("known AES key imported as a sensitive token key (CKA_ID 77)")
    obj, = s.findObjects([(CKA_ID, (0x77,))])
    check(Raw().get_attribute(s, obj, CKA_VALUE)[0] == CKR_ATTRIBUTE_SENSITIVE, "its value reads as sensitive")
    open(os.path.join(sync, "imported"), "w").close()
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(sync, "done")):
        if time.time() > deadline:
            fail("never told to finish")
        time.sleep(0.02)
    s.logout()


def grep(hexkey, files):
    key = bytes.fromhex(hexkey)
    needles = {"raw bytes": key, "lower-case hex": hexkey.lower().encode(), "upper-case hex": hexkey.upper().encode(),
               "base64": base64.b64encode(key).rstrip(b"="), "first half": key[:16], "second half": key[16:]}
    if not files:
        fail("no store files to search")
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        total += len(data)
        for what, needle in needles.items():
            if needle in data:
                fail(f"{f} contains the key ({what})")
    check(total > 0, f"the key is in none of the {len(files)} store files ({total} bytes searched)")


mode = sys.argv[1] if len(sys.argv) > 1 else ""
if mode == "keys":
    keys()
elif mode == "import":
    import_key(sys.argv[2], sys.argv[3])
elif mode == "grep":
    grep(sys.argv[2], sys.argv[3:])
else:
    fail("usage: sensitive.py keys | import HEX SYNC | grep HEX FILE...")
