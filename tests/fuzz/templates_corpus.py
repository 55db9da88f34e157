#!/usr/bin/env python3
"""templates_corpus.py: writes the seed corpus of the templates fuzz harness (templates.c) into
corpus/templates/: one valid input per call it drives. Input format: op u8, sel u8, then
attributes as (type u32 big-endian, len u8, value); CK_ULONG values are 8 bytes, little-endian
(x86-64), CK_BBOOL values 1 byte. Run it again after changing the format."""
import os
import struct

CKA_CLASS, CKA_TOKEN, CKA_LABEL, CKA_VALUE = 0x0, 0x1, 0x3, 0x11
CKA_KEY_TYPE, CKA_SENSITIVE, CKA_ENCRYPT, CKA_SIGN, CKA_VERIFY = 0x100, 0x103, 0x104, 0x108, 0x10A
CKA_VALUE_LEN, CKA_EC_PARAMS = 0x161, 0x180
CKO_DATA, CKO_SECRET_KEY, CKK_AES = 0, 4, 0x1F


def ul(v):
    return struct.pack("<Q", v)


def b(v):
    return bytes([1 if v else 0])


def attr(t, v):
    assert len(v) < 256
    return struct.pack(">IB", t, len(v)) + v


def seed(op, sel, *attrs):
    return bytes([op, sel]) + b"".join(attr(t, v) for t, v in attrs)


P256 = bytes.fromhex("06082a8648ce3d030107")
ED25519 = b"\x13\x0cedwards25519"
seeds = {
    "create-data": seed(0, 0, (CKA_CLASS, ul(CKO_DATA)), (CKA_TOKEN, b(False)), (CKA_LABEL, b"seed"),
                        (CKA_VALUE, b"hello")),
    "create-aes": seed(0, 0, (CKA_CLASS, ul(CKO_SECRET_KEY)), (CKA_KEY_TYPE, ul(CKK_AES)), (CKA_TOKEN, b(True)),
                       (CKA_VALUE, bytes(range(16))), (CKA_SENSITIVE, b(True)), (CKA_ENCRYPT, b(True))),
    "keypair-ec": seed(1, 0 | 2 << 2, (CKA_EC_PARAMS, P256), (CKA_VERIFY, b(True)),
                       (CKA_SIGN, b(True)), (CKA_SENSITIVE, b(True)), (CKA_TOKEN, b(False))),
    "keypair-ed25519": seed(1, 1 | 1 << 2, (CKA_EC_PARAMS, ED25519), (CKA_SIGN, b(True))),
    "genkey-aes": seed(2, 0, (CKA_VALUE_LEN, ul(32)), (CKA_ENCRYPT, b(True)), (CKA_TOKEN, b(True)),
                       (CKA_LABEL, b"k")),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "templates")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
