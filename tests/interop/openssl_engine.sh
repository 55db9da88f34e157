#!/usr/bin/env bash
# openssl_engine.sh: OpenSSL 3 uses token keys through libp11's pkcs11 engine (libengine-pkcs11-openssl):
# signatures with EC and RSA keys named by RFC 7512 URIs, verified with the exported public keys, and
# a self-signed certificate whose key never leaves the token, accepted by `openssl verify`.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool openssl
engine_so=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
[ -f "$engine_so" ] || fail "missing $engine_so (apt-get install libengine-pkcs11-openssl)"
setup
init_token

cat >"$tmp/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine_so
MODULE_PATH = $M
init = 0
[req]
distinguished_name = dn
[dn]
CNF
export OPENSSL_CONF=$tmp/openssl.cnf
uri="pkcs11:token=$TOKEN"

say "engine loads the module"
run_ok "openssl engine pkcs11" openssl engine -t -c pkcs11
contains "engine available" "\[ available \]" "$out"

say "keys from pkcs11-tool"
run_ok "EC P-256 key pair" p11t --keypairgen --key-type EC:prime256v1 --id 11 --label eckey
run_ok "RSA-2048 key pair" p11t --keypairgen --key-type RSA:2048 --id 12 --label rsakey
pubkey_pem 11 "$tmp/ec.pem"
pubkey_pem 12 "$tmp/rsa.pem"
printf 'signed through the engine %s\n' "$RANDOM" >"$tmp/msg"
printf 'something else\n' >"$tmp/other"

say "openssl dgst -engine pkcs11 signs with the token keys"
for k in ec rsa; do
  label=${k}key
  run_ok "$k: sign (PIN in the URI)" openssl dgst -engine pkcs11 -keyform engine -sha256 \
    -sign "$uri;object=$label;type=private;pin-value=$PIN" -out "$tmp/$k.sig" "$tmp/msg"
  run_ok "$k: verify with the exported public key" openssl dgst -sha256 -verify "$tmp/$k.pem" \
    -signature "$tmp/$k.sig" "$tmp/msg"
  run_fails "$k: signature does not verify other data" openssl dgst -sha256 -verify "$tmp/$k.pem" \
    -signature "$tmp/$k.sig" "$tmp/other"
done
run_ok "rsa: sign by id with the PIN from -passin" openssl pkeyutl -engine pkcs11 -keyform engine -sign \
  -inkey "$uri;id=%12;type=private" -passin "pass:$PIN" -pkeyopt digest:sha256 \
  -in <(openssl dgst -sha256 -binary "$tmp/msg") -out "$tmp/rsa2.sig"
run_ok "rsa: pkeyutl signature verifies" openssl dgst -sha256 -verify "$tmp/rsa.pem" -signature "$tmp/rsa2.sig" "$tmp/msg"
run_fails "a wrong PIN gives no signature" openssl dgst -engine pkcs11 -keyform engine -sha256 \
  -sign "$uri;object=eckey;type=private;pin-value=0000" -out "$tmp/bad.sig" "$tmp/msg"

say "self-signed certificates with token keys"
for k in ec rsa; do
  label=${k}key
  run_ok "$k: openssl req -x509" openssl req -new -x509 -engine pkcs11 -keyform engine \
    -key "$uri;object=$label;type=private;pin-value=$PIN" -subj "/CN=coffer $k test" -days 2 -sha256 \
    -out "$tmp/$k.crt"
  run_ok "$k: openssl verify (self-signed)" openssl verify -CAfile "$tmp/$k.crt" "$tmp/$k.crt"
  contains "$k: verify says OK" ": OK$" "$out"
  run_ok "$k: certificate public key" openssl x509 -in "$tmp/$k.crt" -noout -pubkey
  cmp -s <(openssl pkey -pubin -outform DER <<<"$out") <(openssl pkey -pubin -in "$tmp/$k.pem" -outform DER) \
    || fail "$k: certificate key is not the token key"
  ok "$k: certificate key is the token key"
done
run_fails "the EC certificate does not verify under the RSA certificate" \
  openssl verify -CAfile "$tmp/rsa.crt" "$tmp/ec.crt"
echo "PASS"
