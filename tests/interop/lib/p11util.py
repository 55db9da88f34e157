"""p11util: what the PyKCS11 interop scripts share.

The module, token and PINs come from the environment set by common.bash (P11_MODULE, P11_TOKEN,
P11_PIN, P11_SO_PIN). PyKCS11 1.5 hides some return codes (C_GetAttributeValue on a sensitive
attribute gives None, not the code and length) and lacks C_CopyObject, so `Raw` calls those entry
points of the same loaded module through ctypes, on PyKCS11's own session and object handles.
"""
import ctypes
import os
import sys

import PyKCS11
from PyKCS11 import PyKCS11Error
from PyKCS11.LowLevel import (CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_SO, CKU_USER)

MODULE = os.environ["P11_MODULE"]
TOKEN = os.environ.get("P11_TOKEN", "t1")
PIN = os.environ.get("P11_PIN", "1234")
SO_PIN = os.environ.get("P11_SO_PIN", "12345678")
CK_UNAVAILABLE_INFORMATION = (1 << (8 * ctypes.sizeof(ctypes.c_ulong))) - 1
NAME = os.path.basename(sys.argv[0]).rsplit(".", 1)[0]
IMPL = os.environ.get("COFFER_INTEROP_IMPL", "coffer")


def ok(msg):
    print(f"[{NAME}]   ok: {msg}", flush=True)


def say(msg):
    print(f"[{NAME}] {msg}", flush=True)


def fail(msg):
    print(f"[{NAME}] FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    ok(msg)


def reference_lacks(what):
    """True (and says so) when running against SoftHSM2, which lacks `what`: the step is left out
    of the reference run. Against coffer always False."""
    if IMPL != "softhsm":
        return False
    say(f"note: SoftHSM2 lacks {what}; step left out of the reference run")
    return True


def rv_name(rv):
    return PyKCS11.CKR.get(rv, hex(rv)) if isinstance(rv, int) else str(rv)


def expect_rv(want, msg, fn, *args, **kw):
    """fn(*args) must raise PyKCS11Error with code `want` (a CKR_* value or a tuple of them)."""
    wants = want if isinstance(want, tuple) else (want,)
    try:
        fn(*args, **kw)
    except PyKCS11Error as e:
        if e.value in wants:
            ok(f"{msg} ({rv_name(e.value)})")
            return
        fail(f"{msg}: got {rv_name(e.value)}, want {' or '.join(rv_name(w) for w in wants)}")
    fail(f"{msg}: succeeded, want {' or '.join(rv_name(w) for w in wants)}")


def load():
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    return lib


def token_slot(lib, label=TOKEN):
    for s in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(s).label.strip() == label:
            return s
    fail(f"no token labelled {label!r}")


def open_session(lib, slot, rw=True, login=None, pin=None):
    """login: None, CKU_USER or CKU_SO."""
    flags = CKF_SERIAL_SESSION | (CKF_RW_SESSION if rw else 0)
    s = lib.openSession(slot, flags)
    if login is not None:
        s.login(pin if pin is not None else (SO_PIN if login == CKU_SO else PIN), login)
    return s


def handle(h):
    return h.value() if hasattr(h, "value") else int(h)


class CK_ATTRIBUTE(ctypes.Structure):
    _fields_ = [("type", ctypes.c_ulong), ("pValue", ctypes.c_void_p), ("ulValueLen", ctypes.c_ulong)]


class Raw:
    """Direct calls into the module PyKCS11 loaded (dlopen gives back the same instance)."""

    def __init__(self, path=MODULE):
        self.dll = ctypes.CDLL(path)
        ul = ctypes.c_ulong
        for name, args in (("C_GetAttributeValue", [ul, ul, ctypes.POINTER(CK_ATTRIBUTE), ul]),
                           ("C_SetAttributeValue", [ul, ul, ctypes.POINTER(CK_ATTRIBUTE), ul]),
                           ("C_CopyObject", [ul, ul, ctypes.POINTER(CK_ATTRIBUTE), ul, ctypes.POINTER(ul)])):
            f = getattr(self.dll, name)
            f.argtypes, f.restype = args, ul

    def get_attribute(self, session, obj, atype, size=None):
        """C_GetAttributeValue of one attribute: (rv, ulValueLen, bytes or None). With size None,
        asks for the length first (pValue NULL), then reads."""
        a = CK_ATTRIBUTE(atype, None, 0)
        rv = self.dll.C_GetAttributeValue(handle(session.session), handle(obj), ctypes.byref(a), 1)
        if rv != 0 or a.ulValueLen == CK_UNAVAILABLE_INFORMATION:
            return rv, a.ulValueLen, None
        n = a.ulValueLen if size is None else size
        buf = ctypes.create_string_buffer(max(n, 1))
        a = CK_ATTRIBUTE(atype, ctypes.cast(buf, ctypes.c_void_p), n)
        rv = self.dll.C_GetAttributeValue(handle(session.session), handle(obj), ctypes.byref(a), 1)
        return rv, a.ulValueLen, (buf.raw[:a.ulValueLen] if rv == 0 else None)

    def attribute_lengths(self, session, obj, types):
        """C_GetAttributeValue with every pValue NULL (the length query): (rv, [ulValueLen...])."""
        arr = (CK_ATTRIBUTE * len(types))()
        for i, t in enumerate(types):
            arr[i] = CK_ATTRIBUTE(t, None, 0)
        rv = self.dll.C_GetAttributeValue(handle(session.session), handle(obj), arr, len(types))
        return rv, [a.ulValueLen for a in arr]

    @staticmethod
    def _bool_template(attrs):
        vals = [ctypes.c_ubyte(1 if v else 0) for _, v in attrs]
        arr = (CK_ATTRIBUTE * len(attrs))()
        for i, (t, _) in enumerate(attrs):
            arr[i] = CK_ATTRIBUTE(t, ctypes.cast(ctypes.pointer(vals[i]), ctypes.c_void_p), 1)
        return arr, vals

    def copy_object(self, session, obj, bool_attrs):
        """C_CopyObject with a template of CK_BBOOL attributes: (rv, new handle)."""
        arr, keep = self._bool_template(bool_attrs)
        out = ctypes.c_ulong(0)
        rv = self.dll.C_CopyObject(handle(session.session), handle(obj), arr, len(bool_attrs), ctypes.byref(out))
        del keep
        return rv, out.value

    def set_bools(self, session, obj, bool_attrs):
        arr, keep = self._bool_template(bool_attrs)
        rv = self.dll.C_SetAttributeValue(handle(session.session), handle(obj), arr, len(bool_attrs))
        del keep
        return rv
