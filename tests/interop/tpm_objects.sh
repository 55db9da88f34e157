#!/usr/bin/env bash
# tpm_objects.sh: the object commands of cofferd's TPM with Debian's tpm2-tools.
#
# Through the mssim TCTI (instance t1) and the swtpm TCTI (instance t2): createprimary, create
# (ECC P-256 and RSA-2048 signing keys) and load under it, readpublic (-f pem), sign then
# verifysignature, and the same signature verified by `openssl` with the exported public key; a
# sealed data object created with a password, unsealed with it, refused with another.
# Then on t1: evictcontrol of the signing key and of the storage primary, cofferd stopped and
# started again on the same store, the persistent key still signs (verified by openssl, through
# the swtpm TCTI this time) and is listed by getcap handles-persistent; createek twice across the
# restart gives the same public key; createak under the EK.
#
# tpm2-tools talk to the TPM directly (no resource manager): objects a tool loads stay loaded, so
# `tpm2_flushcontext -t` runs after each tool that loads one (the TPM has 3 transient slots).
set -euo pipefail
source "$(dirname "$0")/lib/tpm.bash"

need tpm2_create tpm2_load tpm2_readpublic tpm2_sign tpm2_verifysignature tpm2_unseal tpm2_evictcontrol \
  tpm2_flushcontext tpm2_createek tpm2_createak openssl cmp
tpm_setup

# tt TCTI TOOL ARGS...: a tpm2-tools command, then the transient objects it left loaded flushed.
tt() {
  local tcti=$1
  t2 "$@" || return $?
  tpm2_flushcontext -T "$tcti" -t >/dev/null 2>&1 || true
}

MSG_TEXT="coffer signs this"

keys() { # keys NAME TCTI DIR: primary, ECC and RSA keys, sign/verify, sealing
  local name=$1 tcti=$2 d=$3 alg
  mkdir -p "$d"
  printf '%s' "$MSG_TEXT" >"$d/msg"
  say "== $name: $tcti"
  run_ok "$name: startup (clear)" t2 "$tcti" startup -c
  run_ok "$name: createprimary (owner, ecc256)" tt "$tcti" createprimary -C o -G ecc256 -g sha256 -c "$d/primary.ctx"
  for alg in ecc256 rsa2048; do
    run_ok "$name: create $alg under the primary" tt "$tcti" create -C "$d/primary.ctx" -G "$alg" -g sha256 \
      -u "$d/$alg.pub" -r "$d/$alg.priv"
    run_ok "$name: load $alg" tt "$tcti" load -C "$d/primary.ctx" -u "$d/$alg.pub" -r "$d/$alg.priv" -c "$d/$alg.ctx"
    run_ok "$name: readpublic $alg as PEM" tt "$tcti" readpublic -c "$d/$alg.ctx" -f pem -o "$d/$alg.pem"
    contains "$name: $alg PEM public key" 'BEGIN PUBLIC KEY' "$(cat "$d/$alg.pem")"
    run_ok "$name: sign with $alg" tt "$tcti" sign -c "$d/$alg.ctx" -g sha256 -o "$d/$alg.sig" "$d/msg"
    run_ok "$name: verifysignature with $alg" tt "$tcti" verifysignature -c "$d/$alg.ctx" -g sha256 \
      -m "$d/msg" -s "$d/$alg.sig"
    run_ok "$name: sign with $alg (plain signature)" tt "$tcti" sign -c "$d/$alg.ctx" -g sha256 -f plain \
      -o "$d/$alg.plain" "$d/msg"
    run_ok "$name: openssl verifies the $alg signature" \
      openssl dgst -sha256 -verify "$d/$alg.pem" -signature "$d/$alg.plain" "$d/msg"
    printf 'tampered' >"$d/other"
    if openssl dgst -sha256 -verify "$d/$alg.pem" -signature "$d/$alg.plain" "$d/other" >/dev/null 2>&1; then
      fail "$name: openssl verified the $alg signature over other data"
    fi
    ok "$name: openssl refuses the $alg signature over other data"
  done
  # sealed data
  head -c 32 /dev/urandom | base64 >"$d/secret"
  run_ok "$name: create a sealed object" tt "$tcti" create -C "$d/primary.ctx" -i "$d/secret" -p sealpw \
    -u "$d/seal.pub" -r "$d/seal.priv"
  run_ok "$name: load the sealed object" tt "$tcti" load -C "$d/primary.ctx" -u "$d/seal.pub" -r "$d/seal.priv" \
    -c "$d/seal.ctx"
  run_ok "$name: unseal" tt "$tcti" unseal -c "$d/seal.ctx" -p sealpw -o "$d/unsealed"
  cmp -s "$d/secret" "$d/unsealed" || fail "$name: unseal gave other bytes than were sealed"
  ok "$name: unseal gives the sealed bytes"
  if tt "$tcti" unseal -c "$d/seal.ctx" -p wrongpw -o "$d/unsealed2" >"$d/unseal.err" 2>&1; then
    fail "$name: unseal with a wrong password succeeded"
  fi
  contains "$name: a wrong password is an authorization failure" 'authorization|0x98e|AUTH_FAIL' "$(cat "$d/unseal.err")"
}

keys "mssim t1" "$T1_MSSIM" "$tmp/t1"
keys "swtpm t2" "$T2_SWTPM" "$tmp/t2"

# ---- persistence (t1) ----------------------------------------------------------------------------
d=$tmp/t1
PKEY=0x81000010
PPRIM=0x81000011
run_ok "t1: evictcontrol the ECC key to $PKEY" tt "$T1_MSSIM" evictcontrol -C o -c "$d/ecc256.ctx" $PKEY
run_ok "t1: evictcontrol the primary to $PPRIM" tt "$T1_MSSIM" evictcontrol -C o -c "$d/primary.ctx" $PPRIM
if tt "$T1_MSSIM" evictcontrol -C o -c "$d/rsa2048.ctx" $PKEY >"$tmp/evict.err" 2>&1; then
  fail "t1: evictcontrol to a taken handle succeeded"
fi
contains "t1: a taken persistent handle is TPM_RC_NV_DEFINED" 'NV_DEFINED|0x14c|already' "$(cat "$tmp/evict.err")"
run_ok "t1: getcap handles-persistent" t2 "$T1_MSSIM" getcap handles-persistent
contains "t1: $PKEY is listed" "$PKEY" "$out"
contains "t1: $PPRIM is listed" "$PPRIM" "$out"

# the EK before the restart
run_ok "t1: createek (rsa)" tt "$T1_MSSIM" createek -c "$d/ek.ctx" -G rsa -u "$d/ek.before"

cofferd_stop
cofferd_start
run_ok "t1 after restart: startup (clear)" t2 "$T1_SWTPM" startup -c
run_ok "t1 after restart: getcap handles-persistent" t2 "$T1_SWTPM" getcap handles-persistent
contains "t1 after restart: $PKEY is still listed" "$PKEY" "$out"
run_ok "t1 after restart: the persistent key signs" tt "$T1_SWTPM" sign -c $PKEY -g sha256 -f plain \
  -o "$d/persist.plain" "$d/msg"
run_ok "t1 after restart: openssl verifies the persistent key's signature" \
  openssl dgst -sha256 -verify "$d/ecc256.pem" -signature "$d/persist.plain" "$d/msg"
run_ok "t1 after restart: create under the persistent primary" tt "$T1_SWTPM" create -C $PPRIM -G ecc256 \
  -u "$d/late.pub" -r "$d/late.priv"
run_ok "t1 after restart: load under the persistent primary" tt "$T1_SWTPM" load -C $PPRIM -u "$d/late.pub" \
  -r "$d/late.priv" -c "$d/late.ctx"
# a transient context saved before the restart belongs to the previous TPM Reset
if tt "$T1_SWTPM" readpublic -c "$d/rsa2048.ctx" >/dev/null 2>&1; then
  fail "t1 after restart: a context saved before the TPM Reset loaded"
fi
ok "t1 after restart: a context from before the TPM Reset does not load"

run_ok "t1 after restart: createek again" tt "$T1_SWTPM" createek -c "$d/ek2.ctx" -G rsa -u "$d/ek.after"
[ -s "$d/ek.before" ] || fail "t1: createek wrote no public key"
cmp -s "$d/ek.before" "$d/ek.after" || fail "t1: the EK changed across the restart"
ok "t1: createek gives the same EK across a restart"

# createak: a policy session with PolicySecret(TPM_RH_ENDORSEMENT) satisfies the EK's policy for
# Create and Load under it (quotes with the AK: tpm_attest.sh)
run_ok "t1: createak under the EK" tt "$T1_SWTPM" createak -C "$d/ek2.ctx" -c "$d/ak.ctx" -G rsa -g sha256 \
  -s rsassa -u "$d/ak.pub" -n "$d/ak.name"
[ -s "$d/ak.name" ] || fail "t1: createak wrote no AK name"
ok "t1: createak wrote the AK name"

run_ok "t1: evictcontrol removes $PKEY" tt "$T1_SWTPM" evictcontrol -C o -c $PKEY
run_ok "t1: evictcontrol removes $PPRIM" tt "$T1_SWTPM" evictcontrol -C o -c $PPRIM
run_ok "t1: getcap handles-persistent" t2 "$T1_SWTPM" getcap handles-persistent
if grep -q "$PKEY" <<<"$out"; then fail "t1: $PKEY is still listed after its removal"; fi
ok "t1: the persistent handles are gone"
cofferd_stop
say "PASS"
