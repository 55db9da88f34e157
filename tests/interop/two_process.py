"""two_process.py: one side of two_process.sh.
  two_process.py write NAME COUNT SYNC_DIR  creates COUNT token objects named NAME-<i>, half data
                                           objects and half AES keys, starting when SYNC_DIR/go exists
  two_process.py check NAMES COUNT         every NAME-<i> (NAMES comma-separated) is present exactly
                                           once with its value"""
import hashlib
import os
import sys
import time

from p11util import check, fail, load, ok, open_session, say, token_slot
from PyKCS11.LowLevel import (CKA_CLASS, CKA_EXTRACTABLE, CKA_KEY_TYPE, CKA_LABEL, CKA_PRIVATE, CKA_SENSITIVE,
                              CKA_TOKEN, CKA_VALUE, CKA_ENCRYPT, CKK_AES, CKO_DATA, CKO_SECRET_KEY, CKU_USER)


def value_of(label):
    return hashlib.sha256(label.encode()).digest()  # 32 bytes: also a valid AES-256 key


def template(label, i):
    if i % 2 == 0:
        return [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, True), (CKA_PRIVATE, True), (CKA_LABEL, label),
                (CKA_VALUE, value_of(label))]
    return [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, True), (CKA_PRIVATE, True),
            (CKA_SENSITIVE, False), (CKA_EXTRACTABLE, True), (CKA_ENCRYPT, True), (CKA_LABEL, label),
            (CKA_VALUE, value_of(label))]


def write(name, count, sync):
    lib = load()
    s = open_session(lib, token_slot(lib), rw=True, login=CKU_USER)
    open(os.path.join(sync, "ready." + name), "w").close()
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(sync, "go")):
        if time.time() > deadline:
            fail("no start signal")
        time.sleep(0.005)
    t0 = time.time()
    for i in range(count):
        s.createObject(template(f"{name}-{i}", i))
    ok(f"{name}: created {count} token objects in {time.time() - t0:.2f}s")
    s.logout()
    s.closeSession()


def verify(names, count):
    lib = load()
    s = open_session(lib, token_slot(lib), rw=False, login=CKU_USER)
    total = 0
    for name in names:
        for i in range(count):
            label = f"{name}-{i}"
            found = s.findObjects([(CKA_LABEL, label)])
            if len(found) != 1:
                fail(f"{label}: found {len(found)} objects, want 1")
            klass, value = s.getAttributeValue(found[0], [CKA_CLASS, CKA_VALUE])
            want_class = CKO_DATA if i % 2 == 0 else CKO_SECRET_KEY
            if klass != want_class or bytes(value) != value_of(label):
                fail(f"{label}: wrong class or value")
            total += 1
    check(total == len(names) * count, f"all {total} objects present once, with their values")
    data = s.findObjects([(CKA_CLASS, CKO_DATA)])
    keys = s.findObjects([(CKA_CLASS, CKO_SECRET_KEY)])
    check(len(data) + len(keys) == len(names) * count, f"and nothing else: {len(data)} data objects, {len(keys)} keys")
    s.logout()


if sys.argv[1] == "write":
    write(sys.argv[2], int(sys.argv[3]), sys.argv[4])
elif sys.argv[1] == "check":
    say("a third process reads them back")
    verify(sys.argv[2].split(","), int(sys.argv[3]))
else:
    fail("usage: two_process.py write NAME COUNT SYNC_DIR | check NAMES COUNT")
