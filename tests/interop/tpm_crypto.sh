#!/usr/bin/env bash
# tpm_crypto.sh: the crypto, attestation and hierarchy commands of cofferd's TPM with Debian's
# tpm2-tools (instance t1 over mssim, with a few steps through swtpm).
#
#   rsaencrypt / rsadecrypt (OAEP and RSAES round trips; an `openssl pkeyutl` OAEP ciphertext made
#   with the exported public key decrypts), encryptdecrypt (CFB and CBC round trips, and against
#   `openssl enc` with a key loaded by loadexternal), hash (TPM2_Hash and, for a file larger than
#   the input buffer, a hash sequence) against sha256sum, hmac (one-shot and sequence), quote then
#   checkquote (ECDSA and RSASSA attestation keys), changeauth of the owner and lockout
#   hierarchies, clear (a new storage primary, the same endorsement primary), dictionarylockout
#   (parameters, a wrong password repeatedly trips the lockout, clear), getcap for every class.
#
# tpm2-tools talk to the TPM directly (no resource manager): `tt` flushes what a tool left loaded.
set -euo pipefail
source "$(dirname "$0")/lib/tpm.bash"

need tpm2_create tpm2_load tpm2_loadexternal tpm2_readpublic tpm2_rsaencrypt tpm2_rsadecrypt \
  tpm2_encryptdecrypt tpm2_hash tpm2_hmac tpm2_quote tpm2_checkquote tpm2_changeauth tpm2_clear \
  tpm2_dictionarylockout tpm2_sign tpm2_flushcontext openssl cmp sha256sum xxd
tpm_setup

T=$T1_MSSIM
d=$tmp/crypto
mkdir -p "$d"

tt() { # tt TOOL ARGS...: a tpm2-tools command on $T, then the transient objects it left flushed (also when it failed)
  local rc=0
  t2 "$T" "$@" || rc=$?
  tpm2_flushcontext -T "$T" -t >/dev/null 2>&1 || true
  return $rc
}

run_ok "startup (clear)" t2 "$T" startup -c
run_ok "createprimary (owner, ecc256)" tt createprimary -C o -G ecc256 -g sha256 -c "$d/prim.ctx"

# ---- RSA ---------------------------------------------------------------------------------------
printf 'attack at dawn' >"$d/msg"
run_ok "create an RSA-2048 decryption key" tt create -C "$d/prim.ctx" -G rsa2048 -g sha256 \
  -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt" -u "$d/rsa.pub" -r "$d/rsa.priv"
run_ok "load it" tt load -C "$d/prim.ctx" -u "$d/rsa.pub" -r "$d/rsa.priv" -c "$d/rsa.ctx"
run_ok "readpublic as PEM" tt readpublic -c "$d/rsa.ctx" -f pem -o "$d/rsa.pem"
for s in oaep rsaes; do
  run_ok "rsaencrypt ($s)" tt rsaencrypt -c "$d/rsa.ctx" -s "$s" -o "$d/ct.$s" "$d/msg"
  [ "$(stat -c %s "$d/ct.$s")" = 256 ] || fail "rsaencrypt ($s): ciphertext is not 256 bytes"
  run_ok "rsadecrypt ($s)" tt rsadecrypt -c "$d/rsa.ctx" -s "$s" -o "$d/pt.$s" "$d/ct.$s"
  cmp -s "$d/msg" "$d/pt.$s" || fail "rsadecrypt ($s) gave other bytes"
  ok "rsadecrypt ($s) gives the message back"
done
run_ok "rsaencrypt (oaep, label)" tt rsaencrypt -c "$d/rsa.ctx" -s oaep -l mylabel -o "$d/ct.l" "$d/msg"
run_ok "rsadecrypt (oaep, label)" tt rsadecrypt -c "$d/rsa.ctx" -s oaep -l mylabel -o "$d/pt.l" "$d/ct.l"
cmp -s "$d/msg" "$d/pt.l" || fail "rsadecrypt with a label gave other bytes"
run_fails "rsadecrypt with another label fails" tt rsadecrypt -c "$d/rsa.ctx" -s oaep -l other -o "$d/pt.x" "$d/ct.l"
run_ok "openssl encrypts with the public key (OAEP, SHA-256)" openssl pkeyutl -encrypt -pubin -inkey "$d/rsa.pem" \
  -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$d/msg" -out "$d/ct.ossl"
run_ok "rsadecrypt the openssl ciphertext" tt rsadecrypt -c "$d/rsa.ctx" -s oaep -o "$d/pt.ossl" "$d/ct.ossl"
cmp -s "$d/msg" "$d/pt.ossl" || fail "the openssl OAEP ciphertext decrypted to other bytes"
ok "the openssl OAEP ciphertext decrypts to the message"

# ---- symmetric ---------------------------------------------------------------------------------
head -c 100 /dev/urandom >"$d/plain"
for m in cfb cbc; do
  run_ok "create an aes128$m key" tt create -C "$d/prim.ctx" -G "aes128$m" -u "$d/aes$m.pub" -r "$d/aes$m.priv"
  run_ok "load it" tt load -C "$d/prim.ctx" -u "$d/aes$m.pub" -r "$d/aes$m.priv" -c "$d/aes$m.ctx"
  head -c 96 "$d/plain" >"$d/plain96"   # CBC: whole blocks
  run_ok "encryptdecrypt ($m) encrypt" tt encryptdecrypt -c "$d/aes$m.ctx" -o "$d/enc.$m" "$d/plain96"
  run_ok "encryptdecrypt ($m) decrypt" tt encryptdecrypt -d -c "$d/aes$m.ctx" -o "$d/dec.$m" "$d/enc.$m"
  cmp -s "$d/plain96" "$d/dec.$m" || fail "encryptdecrypt ($m) round trip gave other bytes"
  cmp -s "$d/plain96" "$d/enc.$m" && fail "encryptdecrypt ($m) did not encrypt"
  ok "encryptdecrypt ($m) round trip"
done
# a key we know, loaded as an external object: the TPM's CFB matches openssl's
head -c 16 /dev/urandom >"$d/sym.key"
KEYHEX=$(xxd -p "$d/sym.key" | tr -d '\n')
IVHEX=000102030405060708090a0b0c0d0e0f
printf '%s' "$IVHEX" | xxd -r -p >"$d/iv"
run_ok "loadexternal an AES-128 key" t2 "$T" loadexternal -C n -G aes -r "$d/sym.key" -c "$d/ext.ctx"
run_ok "encryptdecrypt (cfb) with it" tt encryptdecrypt -c "$d/ext.ctx" -G cfb -t "$d/iv" -o "$d/enc.ext" "$d/plain"
openssl enc -aes-128-cfb -K "$KEYHEX" -iv "$IVHEX" -in "$d/plain" -out "$d/enc.ossl"
cmp -s "$d/enc.ext" "$d/enc.ossl" || fail "TPM AES-CFB differs from openssl's"
ok "TPM AES-128-CFB = openssl enc -aes-128-cfb"

# ---- hash and HMAC -----------------------------------------------------------------------------
head -c 3000 /dev/urandom >"$d/big"
for f in msg big; do
  run_ok "hash $f (sha256)" tt hash -C o -g sha256 -o "$d/$f.dgst" -t "$d/$f.tkt" "$d/$f"
  got=$(xxd -p "$d/$f.dgst" | tr -d '\n')
  want=$(sha256sum "$d/$f" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "hash $f: $got, expected $want"
  ok "hash $f = sha256sum"
done
run_ok "create an HMAC key" tt create -C "$d/prim.ctx" -G hmac -u "$d/hmac.pub" -r "$d/hmac.priv"
run_ok "load it" tt load -C "$d/prim.ctx" -u "$d/hmac.pub" -r "$d/hmac.priv" -c "$d/hmac.ctx"
for f in msg big; do
  run_ok "hmac $f" tt hmac -c "$d/hmac.ctx" -g sha256 -o "$d/$f.mac" "$d/$f"
  [ "$(stat -c %s "$d/$f.mac")" = 32 ] || fail "hmac $f is not 32 bytes"
  run_ok "hmac $f again" tt hmac -c "$d/hmac.ctx" -g sha256 -o "$d/$f.mac2" "$d/$f"
  cmp -s "$d/$f.mac" "$d/$f.mac2" || fail "hmac $f is not deterministic"
done
cmp -s "$d/msg.mac" "$d/big.mac" && fail "two messages gave the same HMAC"
ok "HMACs are 32 bytes, deterministic, and differ between messages"

# ---- quote -------------------------------------------------------------------------------------
run_ok "pcrextend 16" t2 "$T" pcrextend "16:sha256=$(printf 'quoted' | sha256sum | cut -d' ' -f1)"
for ak in "ecc256:ecdsa-sha256:null" "rsa2048:rsassa-sha256:null"; do
  n=${ak%%:*}
  run_ok "createprimary an attestation key ($n)" tt createprimary -C e -G "$ak" -g sha256 \
    -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign" -c "$d/ak.$n.ctx"
  run_ok "readpublic the AK ($n)" tt readpublic -c "$d/ak.$n.ctx" -f pem -o "$d/ak.$n.pem"
  run_ok "quote sha256:0,1,16 ($n)" tt quote -c "$d/ak.$n.ctx" -l sha256:0,1,16 -q 0badc0de -g sha256 \
    -m "$d/q.$n.msg" -s "$d/q.$n.sig" -o "$d/q.$n.pcrs"
  run_ok "checkquote ($n)" tpm2_checkquote -u "$d/ak.$n.pem" -m "$d/q.$n.msg" -s "$d/q.$n.sig" \
    -f "$d/q.$n.pcrs" -g sha256 -q 0badc0de
  run_fails "checkquote with another nonce fails ($n)" tpm2_checkquote -u "$d/ak.$n.pem" -m "$d/q.$n.msg" \
    -s "$d/q.$n.sig" -f "$d/q.$n.pcrs" -g sha256 -q 0badc0df
done

# ---- hierarchy authorizations, clear -----------------------------------------------------------
primary_x() { # primary_x HIERARCHY OUT [AUTH]: the x coordinate of an ECC primary
  local auth=()
  [ $# -ge 3 ] && auth=(-P "$3")
  tt createprimary -C "$1" "${auth[@]}" -G ecc256 -g sha256 >"$tmp/p.out" 2>&1 \
    || { cat "$tmp/p.out" >&2; return 1; }
  grep -E '^x: ' "$tmp/p.out" >"$2"
}
run_ok "owner primary before changeauth" primary_x o "$d/o.before"
run_ok "endorsement primary before clear" primary_x e "$d/e.before"
run_ok "changeauth owner" t2 "$T" changeauth -c owner ownerpw
run_fails "createprimary without the owner password fails" primary_x o "$d/o.x"
run_ok "createprimary with the new owner password" primary_x o "$d/o.pw" ownerpw
cmp -s "$d/o.before" "$d/o.pw" || fail "the owner's primary changed with its password"
run_ok "changeauth lockout" t2 "$T" changeauth -c lockout lockpw
run_ok "getcap properties-variable" t2 "$T" getcap properties-variable
contains "ownerAuthSet is set" 'ownerAuthSet: +1' "$out"
contains "lockoutAuthSet is set" 'lockoutAuthSet: +1' "$out"
# persisted across a restart
cofferd_stop
cofferd_start
T=$T1_SWTPM
run_ok "startup after restart (swtpm)" t2 "$T" startup -c
run_fails "after restart: no owner password still fails" primary_x o "$d/o.x"
run_ok "after restart: the owner password works" primary_x o "$d/o.pw2" ownerpw
run_fails "clear with a wrong lockout password fails" t2 "$T" clear -c l wrong
# the failed lockout authorization locked lockoutAuth for lockoutRecovery: reset it with DA params
# would need lockoutAuth too, so restart the clock by platform authorization instead
run_ok "clear (platform)" t2 "$T" clear -c p
run_ok "owner primary after clear (empty owner auth again)" primary_x o "$d/o.after"
cmp -s "$d/o.before" "$d/o.after" && fail "the storage primary key did not change with clear"
ok "clear: a new storage primary key"
run_ok "endorsement primary after clear" primary_x e "$d/e.after"
cmp -s "$d/e.before" "$d/e.after" || fail "clear changed the endorsement primary key"
ok "clear: the same endorsement primary key"
run_ok "getcap properties-variable after clear" t2 "$T" getcap properties-variable
contains "ownerAuthSet is clear" 'ownerAuthSet: +0' "$out"
contains "lockoutAuthSet is clear" 'lockoutAuthSet: +0' "$out"

# ---- dictionary attack ---------------------------------------------------------------------------
T=$T1_MSSIM
run_ok "dictionarylockout setup (3 tries, 1000 s)" t2 "$T" dictionarylockout -s -n 3 -t 1000 -l 1000
run_ok "getcap properties-variable" t2 "$T" getcap properties-variable
contains "TPM2_PT_MAX_AUTH_FAIL is 3" 'TPM2_PT_MAX_AUTH_FAIL: +0x3$' "$out"
run_ok "createprimary (owner) for the DA key" tt createprimary -C o -G ecc256 -g sha256 -c "$d/prim2.ctx"
run_ok "create a key with a password" tt create -C "$d/prim2.ctx" -G ecc256 -p keypw -u "$d/k.pub" -r "$d/k.priv"
run_ok "load it" tt load -C "$d/prim2.ctx" -u "$d/k.pub" -r "$d/k.priv" -c "$d/k.ctx"
run_ok "sign with the right password" tt sign -c "$d/k.ctx" -p keypw -g sha256 -o "$d/s" "$d/msg"
for i in 1 2 3; do
  run_fails "sign with a wrong password ($i)" tt sign -c "$d/k.ctx" -p wrong -g sha256 -o "$d/s" "$d/msg"
  contains "the TPM counts failure $i" 'DA counter incremented' "$out"
done
run_fails "sign with the right password is locked out" tt sign -c "$d/k.ctx" -p keypw -g sha256 -o "$d/s" "$d/msg"
contains "the TPM says lockout" 'lockout' "$out"
run_ok "getcap properties-variable" t2 "$T" getcap properties-variable
contains "TPM2_PT_LOCKOUT_COUNTER is 3" 'TPM2_PT_LOCKOUT_COUNTER: +0x3$' "$out"
contains "inLockout is set" 'inLockout: +1' "$out"
run_ok "dictionarylockout clear" t2 "$T" dictionarylockout -c
run_ok "sign works again" tt sign -c "$d/k.ctx" -p keypw -g sha256 -o "$d/s" "$d/msg"

# ---- getcap, every class -------------------------------------------------------------------------
for cap in $(tpm2_getcap -T "$T" -l | sed -nE 's/^- ([a-z-]+)$/\1/p'); do
  run_ok "getcap $cap" t2 "$T" getcap "$cap"
done
# ---- platformAuth is emptied by every Startup(CLEAR) (the platform firmware sets it each boot) ------
run_ok "changeauth of the platform hierarchy" t2 "$T" changeauth -c p platpw
run_fails "the old (empty) platform auth is refused" t2 "$T" changeauth -c p other
cofferd_stop
cofferd_start
run_ok "startup after the restart" t2 "$T" startup -c
run_fails "platform auth set before the restart is gone" t2 "$T" changeauth -c p -p platpw other
run_ok "the platform auth is empty again" t2 "$T" changeauth -c p other
ok "all done"
