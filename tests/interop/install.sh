#!/usr/bin/env bash
# install.sh: `cmake --install BUILD --prefix P` puts the CLI, the daemon, the module and a p11-kit
# module file naming P's module under P, and the installed CLI uses the installed module.
set -euo pipefail
build=${COFFER_BUILD:?run through ctest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
fail() { echo "[install] FAIL: $*" >&2; exit 1; }
for f in bin/coffer lib/pkcs11/libcoffer-pkcs11.so share/p11-kit/modules/coffer.module; do
  [ -e "$prefix/$f" ] || fail "missing $f"
  echo "[install]   ok: $f"
done
[ -e "$prefix/bin/cofferd" ] || fail "missing bin/cofferd"
grep -qx "module: $prefix/lib/pkcs11/libcoffer-pkcs11.so" "$prefix/share/p11-kit/modules/coffer.module" \
  || fail "the p11-kit module file does not name the installed module"
echo "[install]   ok: p11-kit module file names $prefix/lib/pkcs11/libcoffer-pkcs11.so"
# the installed CLI finds the installed module beside it
printf '[store]\ndir = %s/store\n[token]\npbkdf2_iterations = 1000\n' "$tmp" >"$tmp/coffer.conf"
env -u COFFER_MODULE COFFER_CONF="$tmp/coffer.conf" "$prefix/bin/coffer" info >"$tmp/info" 2>&1 \
  || fail "installed coffer info: $(cat "$tmp/info")"
grep -q CKM_ECDSA "$tmp/info" || fail "coffer info lists no CKM_ECDSA"
echo "[install]   ok: installed coffer info lists the mechanism table"
echo "[install] passed"
