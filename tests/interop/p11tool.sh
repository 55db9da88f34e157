#!/usr/bin/env bash
# p11tool.sh: GnuTLS's p11tool and certtool use the module, both named directly (--provider) and
# registered the p11-kit way (a .module file in the user's p11-kit config): list the token,
# generate EC and RSA keys, list them, sign with them, and make a certificate OpenSSL accepts.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need p11tool certtool pkcs11-tool openssl
setup
init_token
export GNUTLS_PIN=$PIN GNUTLS_SO_PIN=$SO_PIN
url="pkcs11:token=$TOKEN"
pt() { p11tool --provider "$M" "$@"; }

say "the token through --provider"
run_ok "list tokens" pt --list-tokens
contains "our token is listed" "token=$TOKEN" "$out"
contains "it requires login" "Requires login" "$out"

say "key generation"
run_ok "generate an ECDSA P-256 key" pt --login --generate-privkey ecdsa --curve secp256r1 --label x "$url" --outfile "$tmp/x.pub"
run_ok "generate an RSA-2048 key" pt --login --generate-privkey rsa --bits 2048 --label r "$url" --outfile "$tmp/r.pub"
run_ok "the EC public key it printed is a P-256 key" openssl pkey -pubin -in "$tmp/x.pub" -noout -text
contains "curve P-256" "P-256|prime256v1" "$out"
run_ok "list private keys" pt --login --list-privkeys "$url"
contains "EC key x listed" "object=x;type=private" "$out"
contains "RSA key r listed" "object=r;type=private" "$out"
contains "x is an EC P-256 key" "Private key \(EC/ECDSA-SECP256R1\)" "$out"
contains "r is RSA-2048" "Private key \(RSA-2048\)" "$out"
contains "private keys are sensitive" "CKA_SENSITIVE" "$out"
[ "$(grep -c 'type=private' <<<"$out")" -eq 2 ] || fail "expected exactly 2 private keys"
ok "exactly 2 private keys"
out=$(pt --list-privkeys "$url" 2>&1) || true   # p11tool exits 1 when it finds nothing
contains "private keys are hidden without login" "^No matching objects found" "$out"

say "signing"
run_ok "test-sign with the EC key" pt --login --test-sign "$url;object=x;type=private"
contains "signature verified by GnuTLS" "Verifying against public key in the token\.\.\. ok" "$out"
run_ok "test-sign with the RSA key" pt --login --test-sign "$url;object=r;type=private"
contains "signature verified by GnuTLS" "Verifying against public key in the token\.\.\. ok" "$out"
run_ok "export the EC public key" pt --export-pubkey "$url;object=x" --outfile "$tmp/x.exp"
cmp -s <(openssl pkey -pubin -in "$tmp/x.pub" -outform DER) <(openssl pkey -pubin -in "$tmp/x.exp" -outform DER) \
  || fail "exported public key differs from the generated one"
ok "exported public key matches the generated one"

say "certtool makes a self-signed certificate with the token's key; OpenSSL verifies it"
printf 'cn = "coffer interop"\nserial = 7\nexpiration_days = 2\nca\ncert_signing_key\n' >"$tmp/cert.tmpl"
run_ok "certtool --generate-self-signed" env GNUTLS_PIN="$PIN" certtool --provider "$M" --generate-self-signed \
  --load-privkey "$url;object=x;type=private" --load-pubkey "$url;object=x;type=public" \
  --template "$tmp/cert.tmpl" --outfile "$tmp/cert.pem"
run_ok "openssl verify" openssl verify -CAfile "$tmp/cert.pem" "$tmp/cert.pem"
run_ok "certificate carries the token's public key" openssl x509 -in "$tmp/cert.pem" -noout -pubkey
cmp -s <(openssl pkey -pubin -outform DER <<<"$out") <(openssl pkey -pubin -in "$tmp/x.pub" -outform DER) \
  || fail "certificate key differs from the token key"
ok "certificate key is the token key"

# p11-kit reads user module configs (~/.config/pkcs11/modules) only for non-root programs ("skipping
# user config in program running as root"), so this part runs where the tests run unprivileged.
if [ "$(id -u)" -ne 0 ]; then
  say "registered through p11-kit (no --provider)"
  export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config
  mkdir -p "$XDG_CONFIG_HOME/pkcs11/modules"
  printf 'module: %s\n' "$M" >"$XDG_CONFIG_HOME/pkcs11/modules/coffer-test.module"
  run_ok "p11-kit sees the module" p11-kit list-modules
  contains "module listed by p11-kit" "^coffer-test:" "$out"
  run_ok "list tokens through p11-kit" p11tool --list-tokens
  contains "our token is listed" "token=$TOKEN" "$out"
  run_ok "list private keys through p11-kit" p11tool --login --list-privkeys "$url"
  contains "EC key x listed" "object=x;type=private" "$out"
else
  say "note: running as root, p11-kit ignores user module configs; registration part not run"
fi
echo "PASS"
