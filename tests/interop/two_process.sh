#!/usr/bin/env bash
# two_process.sh: two processes write 50 token objects each into the same token at the same time
# (the store is shared through the file system, not through one process); a third process then
# finds all 100, each exactly once with its value.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool
"$PY" -c 'import PyKCS11' 2>/dev/null || fail "$PY lacks PyKCS11 (apt-get install python3-pykcs11)"
setup
init_token
n=50
mkdir "$tmp/sync"

say "two writers, started together"
py "$INTEROP_DIR/two_process.py" write A $n "$tmp/sync" & pa=$!
py "$INTEROP_DIR/two_process.py" write B $n "$tmp/sync" & pb=$!
for _ in $(seq 600); do
  [ -e "$tmp/sync/ready.A" ] && [ -e "$tmp/sync/ready.B" ] && break
  sleep 0.05
done
if ! { [ -e "$tmp/sync/ready.A" ] && [ -e "$tmp/sync/ready.B" ]; }; then fail "writers did not get ready"; fi
touch "$tmp/sync/go"
ra=0; wait $pa || ra=$?
rb=0; wait $pb || rb=$?
[ $ra -eq 0 ] || fail "writer A exited $ra"
[ $rb -eq 0 ] || fail "writer B exited $rb"
ok "both writers succeeded"
py "$INTEROP_DIR/two_process.py" check A,B $n
run_ok "pkcs11-tool also sees 50 data objects" p11t -O --type data
[ "$(grep -c '^Data object' <<<"$out")" -eq $n ] || fail "pkcs11-tool lists $(grep -c '^Data object' <<<"$out") data objects"
echo "PASS"
