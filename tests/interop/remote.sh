#!/usr/bin/env bash
# remote.sh: the module's remote mode over a Unix socket (issue 4, docs/remote.md). cofferd serves
# the token from its store (`[hsm] listen = unix:...`); pkcs11-tool loads the same module with a
# configuration that has `[client] server = unix:...` and a different store dir. Token and PIN
# setup, an EC P-256 key pair, an ECDSA signature verified by OpenSSL with the public key read back;
# the key is in the server's store and the client's store dir is never created; with cofferd gone,
# a call fails cleanly (non-zero exit, no crash).
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool openssl stat
COFFERD=${COFFERD:-$COFFER_BUILD/src/cofferd}
M=${COFFER_MODULE:-$COFFER_BUILD/src/libcoffer-pkcs11.so}
[ -f "$M" ] || fail "module not found: $M (build first, or set COFFER_MODULE)"
[ -x "$COFFERD" ] || fail "cofferd not found: $COFFERD (build first, or set COFFERD)"

daemon_scratch remote

SOCK=$tmp/hsm.sock
export COFFER_CONF=$tmp/client.conf
cat >"$COFFER_CONF" <<EOF
[store]
dir = $tmp/client-store
[client]
server = unix:$SOCK
EOF
p11() { pkcs11-tool --module "$M" "$@"; }
p11t() { pkcs11-tool --module "$M" --token-label "$TOKEN" --login --pin "$PIN" "$@"; }

say "remote mode with no server: calls fail cleanly"
run_fails "list slots without a server" p11 -L
contains "the module says it cannot reach the server" "cannot reach the remote HSM at $SOCK" "$out"
[ ! -e "$tmp/client-store" ] || fail "remote mode created the client store dir"
ok "the client store dir was not created"

if ! grep -q hsm_server "$COFFER_SRC"/src/daemon/*.c; then
  say "skipped: cofferd has no [hsm] listener yet"
  exit 0
fi

cat >"$tmp/server.conf" <<EOF
[store]
dir = $tmp/server-store
[token]
pbkdf2_iterations = 1000
[hsm]
listen = unix:$SOCK
EOF
COFFER_LOG=info "$COFFERD" -c "$tmp/server.conf" >>"$tmp/cofferd.log" 2>&1 &
COFFERD_PID=$!
for _ in $(seq 1 100); do
  [ -S "$SOCK" ] && break
  kill -0 "$COFFERD_PID" 2>/dev/null || { wait "$COFFERD_PID" || true; COFFERD_PID=; fail "cofferd exited at start"; }
  sleep 0.1
done
[ -S "$SOCK" ] || fail "cofferd did not create $SOCK within 10 s"
say "cofferd $COFFERD_PID listening on $SOCK"

say "token and PIN setup through the server"
run_ok "init-token" p11 --init-token --label "$TOKEN" --so-pin "$SO_PIN"
run_ok "init-pin as SO" p11 --token-label "$TOKEN" --login --login-type so --so-pin "$SO_PIN" --init-pin --pin "$PIN"
run_ok "list token slots" p11 --token-label "$TOKEN" -T
contains "user PIN is initialized" "PIN initialized" "$out"
run_fails "a wrong user PIN is refused" p11t --pin 9999 -O

DB=$tmp/server-store/coffer.db
[ -f "$DB" ] || fail "the server store has no coffer.db"
size_before=$(stat -c %s "$DB")
wal_before=$(stat -c %s "$DB-wal" 2>/dev/null || echo 0)

say "key generation and ECDSA"
run_ok "EC P-256 key pair" p11t --keypairgen --key-type EC:prime256v1 --id 02 --label ec
run_ok "read the public key" p11t --read-object --type pubkey --id 02 -o "$tmp/ec.spki"
openssl pkey -pubin -inform DER -in "$tmp/ec.spki" -out "$tmp/ec.pem" 2>/dev/null \
  || fail "the public key is not a valid SubjectPublicKeyInfo"
contains "EC key is on P-256" "NIST CURVE: P-256|prime256v1" "$(openssl pkey -pubin -in "$tmp/ec.pem" -text -noout)"
printf 'coffer remote message %s\n' "$(date +%s%N)" >"$tmp/msg"
openssl dgst -sha256 -binary "$tmp/msg" >"$tmp/msg.sha256"
run_ok "ECDSA sign over a 32-byte digest" p11t --sign --id 02 --mechanism ECDSA --signature-format openssl \
  -i "$tmp/msg.sha256" -o "$tmp/ec.sig"
run_ok "openssl verifies the ECDSA signature" openssl pkeyutl -verify -pubin -inkey "$tmp/ec.pem" \
  -in "$tmp/msg.sha256" -sigfile "$tmp/ec.sig"
printf 'tampered\n' | cat - "$tmp/msg" | openssl dgst -sha256 -binary >"$tmp/bad.sha256"
run_fails "openssl rejects it over another digest" openssl pkeyutl -verify -pubin -inkey "$tmp/ec.pem" \
  -in "$tmp/bad.sha256" -sigfile "$tmp/ec.sig"

say "the key lives in the server's store"
size_after=$(stat -c %s "$DB")
wal_after=$(stat -c %s "$DB-wal" 2>/dev/null || echo 0)
[ $((size_after + wal_after)) -gt $((size_before + wal_before)) ] \
  || fail "the server store did not grow ($size_before+$wal_before -> $size_after+$wal_after bytes)"
ok "the server store grew ($size_before+$wal_before -> $size_after+$wal_after bytes)"
run_ok "list private keys" p11t -O --type privkey
[ "$(grep -c '^Private Key Object' <<<"$out")" -eq 1 ] || { echo "$out"; fail "expected 1 private key"; }
[ ! -e "$tmp/client-store" ] || fail "remote mode created the client store dir"
ok "the client store dir was never created"

say "server gone"
kill -TERM "$COFFERD_PID"
wait "$COFFERD_PID" 2>/dev/null || true
COFFERD_PID=
rc=0
out=$(p11t -O 2>&1) || rc=$?
[ $rc -ne 0 ] || { echo "$out"; fail "a call without the server succeeded"; }
[ $rc -lt 128 ] || { echo "$out"; fail "pkcs11-tool died from signal $((rc - 128))"; }
ok "a call without the server fails cleanly (exit $rc)"
say "done"
