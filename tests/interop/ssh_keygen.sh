#!/usr/bin/env bash
# ssh_keygen.sh: OpenSSH's PKCS#11 support (ssh-keygen -D) finds the token's RSA and EC keys and
# prints them as the OpenSSH public keys of exactly those keys.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool ssh-keygen openssl
setup
init_token

say "keys from pkcs11-tool"
run_ok "RSA-2048 key pair" p11t --keypairgen --key-type RSA:2048 --id 21 --label ssh-rsa-key
run_ok "EC P-256 key pair" p11t --keypairgen --key-type EC:prime256v1 --id 22 --label ssh-ec-key

say "ssh-keygen -D lists them"
# ssh-keygen -D logs in only when the module needs it to see keys; public keys are public objects.
run_ok "ssh-keygen -D" ssh-keygen -D "$M"
keys=$(grep -E '^(ssh-|ecdsa-)' <<<"$out" || true)
[ "$(wc -l <<<"$keys")" -eq 2 ] || { echo "$out"; fail "expected 2 keys, got $(wc -l <<<"$keys")"; }
ok "2 keys listed"
contains "an ssh-rsa key" "^ssh-rsa " "$keys"
contains "an ecdsa-sha2-nistp256 key" "^ecdsa-sha2-nistp256 " "$keys"

say "they are the token's keys"
for id in 21 22; do
  pubkey_pem $id "$tmp/$id.pem"
  want=$(ssh-keygen -i -m PKCS8 -f "$tmp/$id.pem" | awk '{print $1, $2}')
  grep -qxF "$want" <<<"$(awk '{print $1, $2}' <<<"$keys")" || { echo "$keys"; fail "key id $id not listed as $want"; }
  ok "key id $id listed as ${want%% *}"
done
echo "PASS"
