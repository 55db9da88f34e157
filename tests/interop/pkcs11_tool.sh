#!/usr/bin/env bash
# pkcs11_tool.sh: OpenSC's pkcs11-tool drives the module end to end (token and PIN setup, key
# generation, sign/verify, decrypt, symmetric encryption, wrap/unwrap, its own self test), and
# every result is checked by OpenSSL from the outside: signatures verified with the exported public
# key, OAEP ciphertext made by OpenSSL, AES-CBC-PAD ciphertext decrypted by OpenSSL.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool openssl cmp od
setup

say "token and PIN setup"
run_ok "init-token" p11 --init-token --label "$TOKEN" --so-pin "$SO_PIN"
run_ok "list token slots" p11 -T
contains "token is initialized with our label" "token label +: $TOKEN" "$out"
run_ok "init-pin as SO" p11 --token-label "$TOKEN" --login --login-type so --so-pin "$SO_PIN" --init-pin --pin "$PIN"
run_ok "list token slots" p11 --token-label "$TOKEN" -T
contains "user PIN is initialized" "PIN initialized" "$out"
run_fails "a wrong user PIN is refused" p11t --pin 9999 -O

say "key generation"
run_ok "RSA-2048 key pair" p11t --keypairgen --key-type RSA:2048 --id 01 --label rsa --usage-sign --usage-decrypt
run_ok "EC P-256 key pair" p11t --keypairgen --key-type EC:prime256v1 --id 02 --label ec
# opensc 0.23 names the Ed25519 curve "edwards25519" (EC:ed25519 is only accepted from 0.24).
run_ok "Ed25519 key pair" p11t --keypairgen --key-type EC:edwards25519 --id 03 --label ed
run_ok "AES-256 key (extractable, for wrapping)" p11t --keygen --key-type AES:32 --id 04 --label aes --extractable
run_ok "AES-256 key-encryption key" p11t --keygen --key-type AES:32 --id 05 --label kek --usage-wrap
run_ok "list private keys" p11t -O --type privkey
[ "$(grep -c '^Private Key Object' <<<"$out")" -eq 3 ] || { echo "$out"; fail "expected 3 private keys"; }
ok "3 private keys listed"
run_ok "list secret keys" p11t -O --type secrkey
[ "$(grep -c '^Secret Key Object' <<<"$out")" -eq 2 ] || { echo "$out"; fail "expected 2 secret keys"; }
ok "2 secret keys listed"

say "public keys export as SubjectPublicKeyInfo"
pubkey_pem 01 "$tmp/rsa.pem"
pubkey_pem 02 "$tmp/ec.pem"
pubkey_pem 03 "$tmp/ed.pem"
contains "RSA key is 2048 bits" "Public-Key: \(2048 bit\)" "$(openssl pkey -pubin -in "$tmp/rsa.pem" -text -noout)"
contains "EC key is on P-256" "NIST CURVE: P-256|prime256v1" "$(openssl pkey -pubin -in "$tmp/ec.pem" -text -noout)"
contains "Ed25519 key" "ED25519" "$(openssl pkey -pubin -in "$tmp/ed.pem" -text -noout)"

say "signatures verified by OpenSSL"
printf 'coffer interop message %s\n' "$(date +%s%N)" >"$tmp/msg"
printf 'tampered\n' >>"$tmp/msg.bad"; cat "$tmp/msg" >>"$tmp/msg.bad"
openssl dgst -sha256 -binary "$tmp/msg" >"$tmp/msg.sha256"

run_ok "RSA SHA256-RSA-PKCS sign" p11t --sign --id 01 --mechanism SHA256-RSA-PKCS -i "$tmp/msg" -o "$tmp/rsa.sig"
run_ok "openssl verifies the RSA signature" openssl dgst -sha256 -verify "$tmp/rsa.pem" -signature "$tmp/rsa.sig" "$tmp/msg"
run_fails "openssl rejects it over other data" openssl dgst -sha256 -verify "$tmp/rsa.pem" -signature "$tmp/rsa.sig" "$tmp/msg.bad"

run_ok "SHA256-RSA-PKCS-PSS sign (MGF1-SHA256, 32-byte salt)" p11t --sign --id 01 --mechanism SHA256-RSA-PKCS-PSS \
  --mgf MGF1-SHA256 -i "$tmp/msg" -o "$tmp/pss.sig"
run_ok "openssl verifies the PSS signature" openssl dgst -sha256 -verify "$tmp/rsa.pem" -sigopt rsa_padding_mode:pss \
  -sigopt rsa_pss_saltlen:32 -signature "$tmp/pss.sig" "$tmp/msg"

run_ok "ECDSA sign over a 32-byte digest" p11t --sign --id 02 --mechanism ECDSA --signature-format openssl \
  -i "$tmp/msg.sha256" -o "$tmp/ec.sig"
run_ok "openssl verifies the ECDSA signature" openssl pkeyutl -verify -pubin -inkey "$tmp/ec.pem" \
  -in "$tmp/msg.sha256" -sigfile "$tmp/ec.sig"
run_ok "same signature as a message signature" openssl dgst -sha256 -verify "$tmp/ec.pem" -signature "$tmp/ec.sig" "$tmp/msg"
run_fails "openssl rejects it over other data" openssl dgst -sha256 -verify "$tmp/ec.pem" -signature "$tmp/ec.sig" "$tmp/msg.bad"

run_ok "EdDSA sign" p11t --sign --id 03 --mechanism EDDSA -i "$tmp/msg" -o "$tmp/ed.sig"
[ "$(stat -c %s "$tmp/ed.sig")" -eq 64 ] || fail "Ed25519 signature is not 64 bytes"
run_ok "openssl verifies the Ed25519 signature" openssl pkeyutl -verify -pubin -inkey "$tmp/ed.pem" -rawin \
  -in "$tmp/msg" -sigfile "$tmp/ed.sig"
run_fails "openssl rejects it over other data" openssl pkeyutl -verify -pubin -inkey "$tmp/ed.pem" -rawin \
  -in "$tmp/msg.bad" -sigfile "$tmp/ed.sig"

say "RSA-OAEP: OpenSSL encrypts, the token decrypts"
head -c 48 /dev/urandom >"$tmp/secret"
run_ok "openssl OAEP(SHA-256) encrypt" openssl pkeyutl -encrypt -pubin -inkey "$tmp/rsa.pem" \
  -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 \
  -in "$tmp/secret" -out "$tmp/secret.oaep"
if ! reference_lacks "OAEP with SHA-256 (2.6 supports SHA-1 only)"; then
  run_ok "token OAEP decrypt" p11t --decrypt --id 01 --mechanism RSA-PKCS-OAEP --hash-algorithm SHA256 \
    --mgf MGF1-SHA256 -i "$tmp/secret.oaep" -o "$tmp/secret.out"
  cmp -s "$tmp/secret" "$tmp/secret.out" || fail "OAEP decryption does not give back the plaintext"
  ok "plaintext recovered"
fi
run_ok "openssl PKCS#1 v1.5 encrypt" openssl pkeyutl -encrypt -pubin -inkey "$tmp/rsa.pem" -in "$tmp/secret" -out "$tmp/secret.p15"
run_ok "token RSA-PKCS decrypt" p11t --decrypt --id 01 --mechanism RSA-PKCS -i "$tmp/secret.p15" -o "$tmp/secret.out2"
cmp -s "$tmp/secret" "$tmp/secret.out2" || fail "RSA-PKCS decryption does not give back the plaintext"
ok "plaintext recovered"

say "AES-CBC-PAD: the token encrypts, OpenSSL decrypts with the (extractable) key value"
iv=000102030405060708090a0b0c0d0e0f
head -c 1000 /dev/urandom >"$tmp/data"
run_ok "token AES-CBC-PAD encrypt" p11t --encrypt --id 04 --mechanism AES-CBC-PAD --iv $iv -i "$tmp/data" -o "$tmp/data.enc"
[ "$(stat -c %s "$tmp/data.enc")" -eq 1008 ] || fail "ciphertext of 1000 bytes is not 1008 bytes (PKCS#7 padding)"
ok "ciphertext is padded to 1008 bytes"
run_ok "token AES-CBC-PAD decrypt" p11t --decrypt --id 04 --mechanism AES-CBC-PAD --iv $iv -i "$tmp/data.enc" -o "$tmp/data.dec"
cmp -s "$tmp/data" "$tmp/data.dec" || fail "AES-CBC-PAD round trip differs"
ok "round trip gives back the plaintext"
run_ok "read the extractable AES key's value" p11t --read-object --type secrkey --id 04 -o "$tmp/aes.key"
[ "$(stat -c %s "$tmp/aes.key")" -eq 32 ] || fail "AES key value is not 32 bytes"
run_ok "openssl decrypts the token's ciphertext" openssl enc -d -aes-256-cbc -K "$(od -An -v -tx1 "$tmp/aes.key" | tr -d " \n")" -iv $iv \
  -in "$tmp/data.enc" -out "$tmp/data.ossl"
cmp -s "$tmp/data" "$tmp/data.ossl" || fail "OpenSSL's decryption differs"
ok "OpenSSL agrees"

say "AES key wrap (RFC 3394): wrap key 04 under key 05, unwrap as a new key 06"
run_ok "wrap" p11t --wrap --mechanism AES-KEY-WRAP --id 05 --application-id 04 -o "$tmp/wrapped"
[ "$(stat -c %s "$tmp/wrapped")" -eq 40 ] || fail "wrapped 32-byte key is not 40 bytes"
ok "wrapped key is 40 bytes"
cmp -s "$tmp/wrapped" "$tmp/aes.key" && fail "wrapped key equals the key"
run_ok "unwrap" p11t --unwrap --mechanism AES-KEY-WRAP --id 05 -i "$tmp/wrapped" --key-type AES: \
  --application-id 06 --application-label unwrapped
run_ok "the unwrapped key decrypts what key 04 encrypted" p11t --decrypt --id 06 --mechanism AES-CBC-PAD --iv $iv \
  -i "$tmp/data.enc" -o "$tmp/data.dec2"
cmp -s "$tmp/data" "$tmp/data.dec2" || fail "unwrapped key is not the wrapped key"
ok "unwrapped key is the same key"
run_fails "a non-extractable key cannot be wrapped (key 05 under itself)" \
  p11t --wrap --mechanism AES-KEY-WRAP --id 05 --application-id 05 -o "$tmp/w2"
contains "refused as CKR_KEY_UNEXTRACTABLE" "CKR_KEY_UNEXTRACTABLE" "$out"

say "pkcs11-tool's own self test"
if ! reference_lacks "OAEP with SHA-256, which the self test uses"; then
  run_ok "pkcs11-tool --test" p11t --test
  contains "no test failed" "No errors" "$out"
fi
echo "PASS"
