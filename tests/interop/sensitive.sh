#!/usr/bin/env bash
# sensitive.sh: sensitive, non-extractable keys never leave the token: their values cannot be read
# (CKR_ATTRIBUTE_SENSITIVE, length CK_UNAVAILABLE_INFORMATION), wrapped, copied or changed into
# readable keys, pkcs11-tool cannot export them, and the store on disk does not hold a known key's
# bytes in the clear.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool openssl
"$PY" -c 'import PyKCS11' 2>/dev/null || fail "$PY lacks PyKCS11 (apt-get install python3-pykcs11)"
setup
init_token

py "$INTEROP_DIR/sensitive.py" keys

say "pkcs11-tool cannot export them"
# (opensc 0.23 never reads private keys: "--read-object --type privkey" just says it is unsupported.
# The refusal for private keys is checked through the raw API above.)
run_fails "read-object --type secrkey" p11t --read-object --type secrkey --id 62 -o "$tmp/aes.bin"
contains "refused as CKR_ATTRIBUTE_SENSITIVE" "CKR_ATTRIBUTE_SENSITIVE" "$out"
[ ! -s "$tmp/aes.bin" ] || fail "secret key bytes were written"

say "the store does not hold a known sensitive key in the clear"
key=$(openssl rand -hex 32)
mkdir "$tmp/sync"
py "$INTEROP_DIR/sensitive.py" import "$key" "$tmp/sync" & importer=$!
for _ in $(seq 1200); do [ -e "$tmp/sync/imported" ] && break; kill -0 $importer 2>/dev/null || break; sleep 0.05; done
[ -e "$tmp/sync/imported" ] || fail "import failed"
# While the importing process still has the store open (its write-ahead log not yet checkpointed):
mapfile -t files < <(store_files)
say "store files while the writer is open: ${files[*]##*/}"
if [ "$IMPL" = coffer ]; then
  [ -f "$tmp/store/coffer.db" ] || fail "no $tmp/store/coffer.db"
fi
py "$INTEROP_DIR/sensitive.py" grep "$key" "${files[@]}"
touch "$tmp/sync/done"
rc=0; wait $importer || rc=$?
[ $rc -eq 0 ] || fail "importer exited $rc"
# And after it has closed the store.
mapfile -t files < <(store_files)
say "store files after: ${files[*]##*/}"
py "$INTEROP_DIR/sensitive.py" grep "$key" "${files[@]}"

# Prove the token holds exactly this key: it encrypts, OpenSSL decrypts with the known value.
iv=0f0e0d0c0b0a09080706050403020100
head -c 100 /dev/urandom >"$tmp/pt"
run_ok "the token encrypts with the imported key" p11t --encrypt --id 77 --mechanism AES-CBC-PAD --iv $iv \
  -i "$tmp/pt" -o "$tmp/ct"
run_ok "openssl decrypts with the known key" openssl enc -d -aes-256-cbc -K "$key" -iv $iv -in "$tmp/ct" -out "$tmp/pt2"
cmp -s "$tmp/pt" "$tmp/pt2" || fail "the token's key is not the imported key"
ok "the token's key is the imported key (so the search above looked for the right bytes)"
echo "PASS"
