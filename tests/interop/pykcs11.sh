#!/usr/bin/env bash
# pykcs11.sh: runs pykcs11.py (PyKCS11 against the module) with Debian's python3 on a fresh token.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool
"$PY" -c 'import PyKCS11' 2>/dev/null || fail "$PY lacks PyKCS11 (apt-get install python3-pykcs11)"
setup
init_token
py "$INTEROP_DIR/pykcs11.py"
