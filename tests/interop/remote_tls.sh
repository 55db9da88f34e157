#!/usr/bin/env bash
# remote_tls.sh: the module's remote mode over TLS 1.3 with mutual authentication (issue 4 items 1,
# 2 and 6, docs/remote.md "TLS"). `coffer tls init` makes the PKI; cofferd listens on
# `[hsm] listen = tls:127.0.0.1:PORT`; pkcs11-tool loads the module with `[client] server = tls:...`
# and cert/key/ca: token setup, an EC P-256 key pair, an ECDSA signature verified by OpenSSL.
# Refused: a client without a certificate, a client certificate of another CA, a plaintext client
# (no protocol frame comes back), TLS 1.2; `openssl s_client -tls1_3` with the right certificate
# connects.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool openssl python3
COFFERD=${COFFERD:-$COFFER_BUILD/src/cofferd}
M=${COFFER_MODULE:-$COFFER_BUILD/src/libcoffer-pkcs11.so}
CLI=${COFFER_BIN:-$COFFER_BUILD/src/coffer}
[ -f "$M" ] || fail "module not found: $M (build first, or set COFFER_MODULE)"
[ -x "$COFFERD" ] || fail "cofferd not found: $COFFERD (build first, or set COFFERD)"
[ -x "$CLI" ] || fail "coffer not found: $CLI (build first, or set COFFER_BIN)"

daemon_scratch remote-tls

say "coffer tls init"
run_ok "make the PKI" "$CLI" tls init --dir "$tmp/pki"
for f in ca.pem ca.key server.pem server.key client.pem client.key; do
  [ -s "$tmp/pki/$f" ] || fail "coffer tls init did not write $f"
done
for f in ca.key server.key client.key; do
  [ "$(stat -c %a "$tmp/pki/$f")" = 600 ] || fail "$f is not mode 0600"
done
ok "six files, keys of mode 0600"
run_ok "the server certificate chains to the CA" openssl verify -CAfile "$tmp/pki/ca.pem" "$tmp/pki/server.pem"
run_ok "the client certificate chains to the CA" openssl verify -CAfile "$tmp/pki/ca.pem" "$tmp/pki/client.pem"
contains "server SAN" "DNS:localhost, IP Address:127.0.0.1" "$(openssl x509 -in "$tmp/pki/server.pem" -noout -ext subjectAltName)"
contains "P-256 keys" "prime256v1|P-256" "$(openssl x509 -in "$tmp/pki/client.pem" -noout -text)"
run_fails "no overwrite" "$CLI" tls init --dir "$tmp/pki"
run_ok "a second CA (for the refusal below)" "$CLI" tls init --dir "$tmp/other"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/server.conf" <<EOF2
[store]
dir = $tmp/server-store
[token]
pbkdf2_iterations = 1000
[hsm]
listen = tls:127.0.0.1:$PORT
cert = pki/server.pem
key = pki/server.key
client_ca = pki/ca.pem
EOF2
COFFER_LOG=info "$COFFERD" -c "$tmp/server.conf" >>"$tmp/cofferd.log" 2>&1 &
COFFERD_PID=$!
up=
for _ in $(seq 1 100); do
  grep -q "hsm ready on tls:" "$tmp/cofferd.log" && { up=1; break; }
  kill -0 "$COFFERD_PID" 2>/dev/null || { wait "$COFFERD_PID" || true; COFFERD_PID=; fail "cofferd exited at start"; }
  sleep 0.1
done
[ -n "$up" ] || fail "cofferd did not listen on tls:127.0.0.1:$PORT within 10 s"
say "cofferd $COFFERD_PID listening on tls:127.0.0.1:$PORT"

client_conf() { # client_conf FILE [cert key]: a client configuration (relative paths)
  {
    printf '[store]\ndir = client-store\n[client]\nserver = tls:127.0.0.1:%s\nca = pki/ca.pem\n' "$PORT"
    [ $# -lt 3 ] || printf 'cert = %s\nkey = %s\n' "$2" "$3"
  } >"$1"
}
client_conf "$tmp/client.conf" pki/client.pem pki/client.key
export COFFER_CONF=$tmp/client.conf
p11() { pkcs11-tool --module "$M" "$@"; }
p11t() { pkcs11-tool --module "$M" --token-label "$TOKEN" --login --pin "$PIN" "$@"; }

say "token, key pair and ECDSA over TLS"
run_ok "init-token" p11 --init-token --label "$TOKEN" --so-pin "$SO_PIN"
run_ok "init-pin as SO" p11 --token-label "$TOKEN" --login --login-type so --so-pin "$SO_PIN" --init-pin --pin "$PIN"
run_ok "EC P-256 key pair" p11t --keypairgen --key-type EC:prime256v1 --id 02 --label ec
run_ok "read the public key" p11t --read-object --type pubkey --id 02 -o "$tmp/ec.spki"
openssl pkey -pubin -inform DER -in "$tmp/ec.spki" -out "$tmp/ec.pem" 2>/dev/null \
  || fail "the public key is not a valid SubjectPublicKeyInfo"
printf 'coffer remote tls message %s\n' "$(date +%s%N)" >"$tmp/msg"
openssl dgst -sha256 -binary "$tmp/msg" >"$tmp/msg.sha256"
run_ok "ECDSA sign" p11t --sign --id 02 --mechanism ECDSA --signature-format openssl \
  -i "$tmp/msg.sha256" -o "$tmp/ec.sig"
run_ok "openssl verifies the signature" openssl pkeyutl -verify -pubin -inkey "$tmp/ec.pem" \
  -in "$tmp/msg.sha256" -sigfile "$tmp/ec.sig"
[ ! -e "$tmp/client-store" ] || fail "remote mode created the client store dir"
ok "the client store dir was never created"

say "refusals"
client_conf "$tmp/nocert.conf"
COFFER_CONF=$tmp/nocert.conf run_fails "a client without a certificate" p11 -L
contains "the server refused it" "refused the connection" "$out"
cp "$tmp/other/client.pem" "$tmp/other-client.pem"; cp "$tmp/other/client.key" "$tmp/other-client.key"
client_conf "$tmp/othera.conf" other-client.pem other-client.key
COFFER_CONF=$tmp/othera.conf run_fails "a client certificate of another CA" p11 -L
contains "the server refused it" "refused the connection" "$out"
grep -q "TLS connection refused" "$tmp/cofferd.log" || fail "cofferd did not log the refused handshakes"
ok "cofferd logged the refused handshakes"
client_conf "$tmp/otherserver.conf" pki/client.pem pki/client.key
sed -i "s|ca = pki/ca.pem|ca = other/ca.pem|" "$tmp/otherserver.conf"
COFFER_CONF=$tmp/otherserver.conf run_fails "a server certificate of another CA (client side)" p11 -L
contains "the client refused the server" "certificate" "$out"

run_ok "a plaintext client gets no protocol frame" python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
# a coffer HELLO-like frame in the clear: 4-byte length, then bytes
s.sendall(b"\x00\x00\x00\x10" + b"hello coffer\x00\x00\x00\x00")
data = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
except (socket.timeout, ConnectionResetError):
    pass
# the only acceptable answer is nothing or a TLS alert record (content type 21)
if data and data[0] != 21:
    print("unexpected answer:", data[:32].hex()); sys.exit(1)
print("answer: %d byte(s)%s" % (len(data), " (TLS alert)" if data else ""))
PY
printf 'hello' | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$PORT" 2>/dev/null || true
run_fails "TLS 1.2 is refused" timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 \
  -cert "$tmp/pki/client.pem" -key "$tmp/pki/client.key" -CAfile "$tmp/pki/ca.pem" </dev/null
run_ok "openssl s_client -tls1_3 with the client certificate connects" timeout 10 openssl s_client \
  -connect "127.0.0.1:$PORT" -tls1_3 -cert "$tmp/pki/client.pem" -key "$tmp/pki/client.key" \
  -CAfile "$tmp/pki/ca.pem" -verify_return_error -brief </dev/null
contains "TLS 1.3 was negotiated" "TLSv1.3" "$out"

say "the server still serves after the refusals"
run_ok "list private keys" p11t -O --type privkey
[ "$(grep -c '^Private Key Object' <<<"$out")" -eq 1 ] || { echo "$out"; fail "expected 1 private key"; }

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
