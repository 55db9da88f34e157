#!/usr/bin/env bash
# cli.sh: the `coffer` admin CLI end to end against the module: token init / list / delete, key
# generate / import / list / delete, PIN sources and errors, --json output, usage and exit codes.
# Imported keys are made by the openssl CLI and checked from the outside: the public point of an
# imported EC key (CKA_EC_POINT in `key list --json`) and the id of an imported RSA key (SHA-1 of
# the modulus) must equal what openssl derives from the same file.
#
# Environment: COFFER_MODULE, COFFER_BIN (CTest sets both); COFFER_INTEROP_IMPL=softhsm runs the
# same steps against SoftHSM2 (which cannot delete tokens: that step then expects the refusal).
source "$(dirname "$0")/lib/common.bash"
need openssl xxd sha1sum setsid
setup

CLI=${COFFER_BIN:-$COFFER_BUILD/src/coffer}
[ -x "$CLI" ] || fail "coffer CLI not found: $CLI (build it, or set COFFER_BIN)"
cf() { "$CLI" --module "$M" "$@"; }
# json EXPR: evaluates a Python expression over the JSON document on stdin (bound to d).
json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# PINs come from files and the environment, never from argv.
printf '%s\n' "$PIN" >"$tmp/pin"
printf '%s\n' "$SO_PIN" >"$tmp/sopin"
printf 'wrong-pin\n' >"$tmp/badpin"
unset COFFER_PIN COFFER_SO_PIN

say "usage and exit codes"
run_ok "coffer --help exits 0" cf --help
contains "top-level usage names the commands" "token init" "$out"
run_ok "coffer key --help exits 0" cf key --help
contains "key usage names generate" "generate" "$out"
run_ok "coffer token init --help exits 0" cf token init --help
contains "token init usage names --label" "--label" "$out"
for c in "info" "token list" "token delete" "key list" "key generate" "key import" "key delete"; do
  # shellcheck disable=SC2086
  run_ok "coffer $c --help exits 0" cf $c --help
done
set +e
cf frobnicate >/dev/null 2>&1; rc=$?
cf token frobnicate >/dev/null 2>&1; rc2=$?
cf key list --no-such-option >/dev/null 2>&1; rc3=$?
err=$(cf frobnicate 2>&1 >/dev/null)
set -e
[ "$rc" -eq 2 ] || fail "an unknown command must exit 2, not $rc"
ok "an unknown command exits 2"
[ "$rc2" -eq 2 ] || fail "an unknown subcommand must exit 2, not $rc2"
ok "an unknown subcommand exits 2"
[ "$rc3" -eq 2 ] || fail "an unknown option must exit 2, not $rc3"
ok "an unknown option exits 2"
[ "$(wc -l <<<"$err")" -eq 1 ] || fail "an unknown command gives a one-line error: $err"
contains "the error points at --help" "coffer: unknown command 'frobnicate'.*--help" "$err"

say "info"
run_ok "info" cf info
contains "info prints the version" "^coffer [0-9]+\.[0-9]+" "$out"
contains "info lists key pair generation" "CKM_EC_KEY_PAIR_GEN .*generate_key_pair" "$out"
run_ok "info --json" cf info --json
[ "$(json 'any(m["name"] == "CKM_RSA_PKCS_KEY_PAIR_GEN" and "generate_key_pair" in m["flags"] for m in d["mechanisms"])' <<<"$out")" = True ] \
  || fail "info --json lacks CKM_RSA_PKCS_KEY_PAIR_GEN with generate_key_pair"
ok "info --json lists mechanisms with flags"
if [ "$IMPL" = coffer ]; then
  # the mode comes from the configuration the module reads: embedded (the store) or remote (the
  # cofferd it calls, with a call timed)
  case $MODE in
    embedded) want="mode: embedded, store " kind=embedded ;;
    remote) want="mode: remote, cofferd at unix:$SOCK \(a call takes [0-9]+ us" kind=remote ;;
    remote-tls) want="mode: remote, cofferd at tls:127\.0\.0\.1:[0-9]+ \(a call takes [0-9]+ us" kind=remote ;;
  esac
  run_ok "info (mode)" cf info
  contains "info names the $MODE mode" "^$want" "$out"
  run_ok "info --json (mode)" cf info --json
  [ "$(json 'd["mode"]["kind"]' <<<"$out")" = "$kind" ] || fail "info --json: mode.kind is not $kind: $out"
  if [ "$kind" = remote ]; then
    [ "$(json 'd["mode"]["call_us"] > 0' <<<"$out")" = True ] || fail "info --json: no call time in remote mode"
  fi
  ok "info --json names the $MODE mode"
fi

say "token init and list"
run_fails "token init without a PIN source or terminal fails" setsid -w "$CLI" --module "$M" token init --label "$TOKEN" </dev/null
contains "the error names the PIN options" "so-pin-file.*COFFER_SO_PIN" "$out"
run_ok "token init" cf token init --label "$TOKEN" --so-pin-file "$tmp/sopin" --pin-file "$tmp/pin"
contains "token init prints the slot" "initialized in slot [0-9]+" "$out"
contains "token init prints the token URI" "^uri: pkcs11:.*token=$TOKEN" "$out"
run_ok "token list" cf token list
contains "token list shows the label" "^[0-9]+ +$TOKEN " "$out"
run_ok "token list --json" cf token list --json
[ "$(json "[t['label'] for t in d if t['initialized'] and t['user_pin_set']] == ['$TOKEN']" <<<"$out")" = True ] \
  || { echo "$out"; fail "token list --json does not show exactly one initialized token $TOKEN with a user PIN"; }
ok "token list --json parses and shows the label, initialized, user_pin_set"
[ "$(json "[t['uri'] for t in d if t['label'] == '$TOKEN'][0].startswith('pkcs11:')" <<<"$out")" = True ] \
  || fail "token list --json has no pkcs11: URI"
ok "token list --json gives the token URI"
URI=$(json "[t['uri'] for t in d if t['label'] == '$TOKEN'][0]" <<<"$out")
run_fails "a second token with the same label is refused" cf token init --label "$TOKEN" --so-pin-file "$tmp/sopin" --pin-file "$tmp/pin"

say "key generate"
export COFFER_PIN=$PIN   # the environment is the second PIN source
for t in rsa:2048 ec:p256 ed25519 aes:256; do
  run_ok "generate $t" cf key generate --token "$TOKEN" --type "$t" --label "gen-${t/:/-}"
done
run_ok "generate with an explicit id by URI" cf key generate --token "$URI" --type ec:p384 --label gen-id --id 0a0b0c
run_fails "an unknown key type is refused" cf key generate --token "$TOKEN" --type rsa:1000 --label nope
run_ok "key list --json" cf key list --token "$TOKEN" --json
LIST=$out
has() { # has CLASS KEYTYPE LABEL: one such object in $LIST
  [ "$(json "sum(1 for o in d if o['class'] == '$1' and o['key_type'] == '$2' and o['label'] == '$3')" <<<"$LIST")" = 1 ] \
    || { echo "$LIST" >&2; fail "key list lacks a $1 $2 object labelled $3"; }
  ok "key list shows $1 $2 '$3'"
}
has private rsa gen-rsa-2048
has public rsa gen-rsa-2048
has private ec gen-ec-p256
has public ec gen-ec-p256
has private ec-edwards gen-ed25519
has public ec-edwards gen-ed25519
has secret-key aes gen-aes-256
[ "$(json "[(o['bits'], o['sensitive'], o['extractable'], o['local']) for o in d if o['label'] == 'gen-rsa-2048' and o['class'] == 'private'][0]" <<<"$LIST")" = "(2048, True, False, True)" ] \
  || fail "the generated RSA private key is not 2048 bits, sensitive, not extractable, local"
ok "generated RSA key: 2048 bits, sensitive, not extractable, local"
[ "$(json "[o['bits'] for o in d if o['label'] == 'gen-aes-256'][0]" <<<"$LIST")" = 256 ] || fail "AES key is not 256 bits"
ok "generated AES key is 256 bits"
[ "$(json "sorted(o['id'] for o in d if o['label'] == 'gen-id')" <<<"$LIST")" = "['0a0b0c', '0a0b0c']" ] \
  || fail "--id 0a0b0c was not set on both halves"
ok "--id sets CKA_ID on both halves"
[ "$(json "len({o['id'] for o in d if o['label'] == 'gen-ec-p256'}) == 1 and len([o for o in d if o['label'] == 'gen-ec-p256'][0]['id']) == 40" <<<"$LIST")" = True ] \
  || fail "a generated key pair does not share a 20-byte default id"
ok "default id: 20 bytes (SHA-1), the same on both halves"
run_ok "key list (text)" cf key list --token "$TOKEN"
contains "text listing shows a URI per object" "pkcs11:.*object=gen-rsa-2048;type=private" "$out"

say "key import"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ec.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.pem" 2>/dev/null
openssl rsa -in "$tmp/rsa.pem" -traditional -out "$tmp/rsa-trad.pem" 2>/dev/null
openssl req -x509 -new -key "$tmp/ec.pem" -subj /CN=cli-test -days 30 -out "$tmp/cert.pem" 2>/dev/null
head -c 32 /dev/urandom >"$tmp/aes.bin"
run_ok "import a PKCS#8 EC key" cf key import --token "$TOKEN" --label imp-ec "$tmp/ec.pem"
run_ok "import a traditional RSA key" cf key import --token "$TOKEN" --label imp-rsa "$tmp/rsa-trad.pem"
run_ok "import a certificate under its key's label" cf key import --token "$TOKEN" --label imp-ec "$tmp/cert.pem"
run_ok "import a raw AES key" cf key import --token "$TOKEN" --label imp-aes --aes "$tmp/aes.bin"
run_fails "a file that is neither key nor certificate is refused" cf key import --token "$TOKEN" --label junk "$tmp/aes.bin"
run_fails "a second private key with the same label is refused" cf key import --token "$TOKEN" --label imp-ec "$tmp/ec.pem"
run_ok "key list --json" cf key list --token "$TOKEN" --json
LIST=$out
has private ec imp-ec
has public ec imp-ec
has cert x509 imp-ec
has private rsa imp-rsa
has public rsa imp-rsa
has secret-key aes imp-aes
[ "$(json "[(o['sensitive'], o['extractable'], o['local']) for o in d if o['label'] == 'imp-ec' and o['class'] == 'private'][0]" <<<"$LIST")" = "(True, False, False)" ] \
  || fail "the imported EC private key is not sensitive / not extractable / not local"
ok "imported EC private key: sensitive, not extractable, not local"
# CKA_EC_POINT is the DER OCTET STRING (04 41) around the raw point that openssl derives.
want=0441$(openssl pkey -in "$tmp/ec.pem" -pubout -outform DER | tail -c 65 | xxd -p -c 200)
got=$(json "[o['ec_point'] for o in d if o['label'] == 'imp-ec' and o['class'] == 'public'][0]" <<<"$LIST")
[ "$got" = "$want" ] || fail "imported EC public point $got differs from openssl's $want"
ok "imported EC public point equals openssl's"
# The default id of an RSA key is the SHA-1 of its modulus: it ties the public half to the file.
mod=$(openssl rsa -in "$tmp/rsa.pem" -noout -modulus 2>/dev/null | sed 's/^Modulus=//')
want=$(printf '%s' "$mod" | xxd -r -p | sha1sum | cut -d' ' -f1)
got=$(json "sorted({o['id'] for o in d if o['label'] == 'imp-rsa'})" <<<"$LIST")
[ "$got" = "['$want']" ] || fail "imported RSA key ids $got are not SHA-1(modulus) $want"
ok "imported RSA key pair: id is SHA-1 of openssl's modulus on both halves"
[ "$(json "[o['bits'] for o in d if o['label'] == 'imp-rsa' and o['class'] == 'public'][0]" <<<"$LIST")" = 2048 ] \
  || fail "imported RSA public key is not 2048 bits"
ok "imported RSA public key is 2048 bits"
cert_id=$(json "[o['id'] for o in d if o['label'] == 'imp-ec' and o['class'] == 'cert'][0]" <<<"$LIST")
key_id=$(json "[o['id'] for o in d if o['label'] == 'imp-ec' and o['class'] == 'private'][0]" <<<"$LIST")
[ "$cert_id" = "$key_id" ] || fail "the certificate did not get its key's id ($cert_id vs $key_id)"
ok "the certificate shares its key's id"
if command -v pkcs11-tool >/dev/null; then
  run_ok "pkcs11-tool reads the imported certificate" \
    pkcs11-tool --module "$M" --token-label "$TOKEN" --read-object --type cert --label imp-ec -o "$tmp/cert.der"
  cmp -s "$tmp/cert.der" <(openssl x509 -in "$tmp/cert.pem" -outform DER) || fail "certificate bytes differ"
  ok "the stored certificate equals the file's DER"
fi

say "PIN sources and errors"
unset COFFER_PIN
run_ok "key list without a PIN lists public objects only" cf key list --token "$TOKEN" --json
[ "$(json "sorted({o['class'] for o in d})" <<<"$out")" = "['cert', 'public']" ] \
  || { echo "$out"; fail "without a PIN the listing must hold public objects only"; }
ok "without a PIN only public objects are listed"
set +e
out=$(cf key list --token "$TOKEN" --pin-file "$tmp/badpin" 2>&1); rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a wrong PIN must exit 1, not $rc"
ok "a wrong PIN exits 1"
contains "a wrong PIN names CKR_PIN_INCORRECT" "^coffer: login failed: the user PIN is incorrect \(CKR_PIN_INCORRECT\)" "$out"
run_ok "the right PIN from --pin-file works" cf key list --token "$TOKEN" --pin-file "$tmp/pin" --json
run_fails "key generate without a PIN source or terminal fails" setsid -w "$CLI" --module "$M" key generate --token "$TOKEN" --type aes:128 --label x </dev/null
contains "the error names the PIN options" "pin-file.*COFFER_PIN" "$out"
run_fails "an unknown token is reported" cf key list --token 'pkcs11:token=no-such-token'
contains "the error points at token list" "no token matches 'pkcs11:token=no-such-token'.*coffer token list" "$out"

say "key delete"
export COFFER_PIN=$PIN
run_ok "delete the private half of gen-ec-p256 by URI" cf key delete "pkcs11:token=$TOKEN;object=gen-ec-p256;type=private"
run_ok "delete imp-aes by label" cf key delete --token "$TOKEN" imp-aes
run_ok "key list --json" cf key list --token "$TOKEN" --json
LIST=$out
[ "$(json "sorted(o['class'] for o in d if o['label'] == 'gen-ec-p256')" <<<"$LIST")" = "['public']" ] \
  || fail "the private half of gen-ec-p256 was not deleted (or the public half was)"
ok "the URI deleted exactly the private half"
[ "$(json "sum(1 for o in d if o['label'] == 'imp-aes')" <<<"$LIST")" = 0 ] || fail "imp-aes was not deleted"
ok "imp-aes is gone"
run_fails "deleting a missing object fails" cf key delete --token "$TOKEN" imp-aes
contains "the error says nothing matches" "no object matches 'imp-aes'" "$out"
run_fails "a URI without an object part is refused" cf key delete "pkcs11:token=$TOKEN"

say "token delete"
run_ok "a second token" cf token init --label second --so-pin-file "$tmp/sopin" --pin-file "$tmp/pin"
if reference_lacks "coffer_delete_token"; then
  run_fails "token delete is refused" cf token delete second --so-pin-file "$tmp/sopin"
  contains "the refusal explains the alternative" "cannot delete tokens; use C_InitToken" "$out"
else
  run_fails "token delete with a wrong SO PIN fails" cf token delete second --so-pin-file "$tmp/badpin"
  contains "a wrong SO PIN names CKR_PIN_INCORRECT" "SO PIN is incorrect \(CKR_PIN_INCORRECT\)" "$out"
  run_ok "token delete" cf token delete second --so-pin-file "$tmp/sopin"
  run_ok "token list --json" cf token list --json
  [ "$(json "sorted(t['label'] for t in d if t['initialized'])" <<<"$out")" = "['$TOKEN']" ] \
    || { echo "$out"; fail "token 'second' is still listed"; }
  ok "the deleted token is gone and $TOKEN remains"
  run_ok "$TOKEN still lists its keys" cf key list --token "$TOKEN" --json
  [ "$(json "sum(1 for o in d if o['label'] == 'imp-rsa')" <<<"$out")" = 2 ] || fail "$TOKEN lost its keys"
  ok "$TOKEN keeps its keys"
fi

say "all cli checks passed"
