#!/usr/bin/env bash
# tpm_attest.sh: attestation keys and policy sessions of cofferd's TPM with Debian's tpm2-tools.
#
# Through the mssim TCTI (instance t1):
#   - createek (RSA) + createak (RSA/RSASSA and ECC/ECDSA): createak satisfies the EK's policy
#     (PolicySecret(TPM_RH_ENDORSEMENT)) in a policy session for Create and Load under the EK;
#   - quote of sha256 PCRs 0, 1 and 16 with each AK, checked by tpm2_checkquote against the AK's
#     public key and the qualifying data; another qualifying data, or a changed PCR file, is refused;
#   - a sealed object whose policy is PolicyOR(PolicySecret(owner) + PolicyCommandCode(Unseal),
#     PolicySecret(endorsement)), digests computed with trial sessions: each branch unseals in a
#     real policy session; a session on neither branch is refused by PolicyOR; PolicySecret with a
#     wrong owner password is refused.
set -euo pipefail
source "$(dirname "$0")/lib/tpm.bash"

need tpm2_createek tpm2_createak tpm2_quote tpm2_checkquote tpm2_startauthsession tpm2_policysecret \
  tpm2_policycommandcode tpm2_policyor tpm2_flushcontext tpm2_create tpm2_load tpm2_unseal tpm2_changeauth cmp
tpm_setup

T=$T1_MSSIM
d=$tmp/attest
mkdir -p "$d"

# tt TOOL ARGS...: a tpm2-tools command, then the transient objects it left loaded flushed.
tt() {
  t2 "$T" "$@" || return $?
  tpm2_flushcontext -T "$T" -t >/dev/null 2>&1 || true
}

run_ok "startup (clear)" t2 "$T" startup -c
run_ok "createek (rsa)" tt createek -c "$d/ek.ctx" -G rsa -u "$d/ek.pub"

# ---- AKs and quotes ---------------------------------------------------------------------------
run_ok "pcrextend 16" t2 "$T" pcrextend 16:sha256=$(printf '%064d' 7)
run_ok "pcrread sha256:16" t2 "$T" pcrread sha256:16 -o "$d/pcr16.bin"
PCR16=$(od -An -tx1 -v "$d/pcr16.bin" | tr -d ' \n')
[ ${#PCR16} = 64 ] || fail "PCR 16 read back as '$PCR16'"
printf 'attest me' >"$d/msg.txt"
QUAL=c0ffee0123456789abcdef
for ak in rsa:rsassa ecc:ecdsa; do
  alg=${ak%%:*} sig=${ak#*:}
  run_ok "createak $alg ($sig) under the EK" tt createak -C "$d/ek.ctx" -c "$d/ak_$alg.ctx" -G "$alg" -g sha256 \
    -s "$sig" -u "$d/ak_$alg.pub" -n "$d/ak_$alg.name"
  [ -s "$d/ak_$alg.name" ] || fail "createak $alg wrote no name"
  contains "createak $alg reports the loaded key's name" 'name: 000b' "$out"
  run_ok "quote sha256:0,1,16 with the $alg AK" tt quote -c "$d/ak_$alg.ctx" -l sha256:0,1,16 -q "$QUAL" \
    -m "$d/quote_$alg.msg" -s "$d/quote_$alg.sig" -o "$d/quote_$alg.pcrs" -g sha256
  run_ok "checkquote ($alg AK)" tpm2_checkquote -u "$d/ak_$alg.pub" -m "$d/quote_$alg.msg" -s "$d/quote_$alg.sig" \
    -f "$d/quote_$alg.pcrs" -g sha256 -q "$QUAL"
  run_fails "checkquote ($alg AK) refuses other qualifying data" tpm2_checkquote -u "$d/ak_$alg.pub" \
    -m "$d/quote_$alg.msg" -s "$d/quote_$alg.sig" -f "$d/quote_$alg.pcrs" -g sha256 -q 00112233
  # flip a bit of PCR 16's value in the file (tpm2-tools' layout is padded: find the value itself)
  python3 - "$d/quote_$alg.pcrs" "$d/bad.pcrs" "$PCR16" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
i = data.find(bytes.fromhex(sys.argv[3]))
assert i >= 0, "PCR 16 not in the PCR file"
data[i + 5] ^= 1
open(sys.argv[2], "wb").write(bytes(data))
PY
  run_fails "checkquote ($alg AK) refuses a changed PCR value" tpm2_checkquote -u "$d/ak_$alg.pub" \
    -m "$d/quote_$alg.msg" -s "$d/quote_$alg.sig" -f "$d/bad.pcrs" -g sha256 -q "$QUAL"
done

# ---- PolicySecret, PolicyCommandCode, PolicyOR --------------------------------------------------
# trial: branch A = PolicySecret(owner) + PolicyCommandCode(Unseal), branch B = PolicySecret(endorsement)
run_ok "trial session (A)" t2 "$T" startauthsession -S "$d/trial.ctx"
run_ok "trial PolicySecret(owner)" t2 "$T" policysecret -S "$d/trial.ctx" -c o
run_ok "trial PolicyCommandCode(Unseal)" t2 "$T" policycommandcode -S "$d/trial.ctx" -L "$d/a.policy" TPM2_CC_Unseal
run_ok "flush the trial session" t2 "$T" flushcontext "$d/trial.ctx"
run_ok "trial session (B)" t2 "$T" startauthsession -S "$d/trial.ctx"
run_ok "trial PolicySecret(endorsement)" t2 "$T" policysecret -S "$d/trial.ctx" -c e -L "$d/b.policy"
run_ok "flush the trial session" t2 "$T" flushcontext "$d/trial.ctx"
run_ok "trial session (OR)" t2 "$T" startauthsession -S "$d/trial.ctx"
run_ok "trial PolicyOR(A, B)" t2 "$T" policyor -S "$d/trial.ctx" -L "$d/or.policy" "sha256:$d/a.policy,$d/b.policy"
run_ok "flush the trial session" t2 "$T" flushcontext "$d/trial.ctx"
[ "$(stat -c %s "$d/or.policy")" = 32 ] || fail "PolicyOR's digest is not 32 bytes"

run_ok "createprimary (owner)" tt createprimary -C o -G ecc256 -g sha256 -c "$d/primary.ctx"
head -c 24 /dev/urandom | base64 >"$d/secret"
run_ok "create a sealed object with the OR policy" tt create -C "$d/primary.ctx" -L "$d/or.policy" -i "$d/secret" \
  -u "$d/seal.pub" -r "$d/seal.priv"

# branch NAME STEP...: a real policy session, the steps (each a tool invocation
# given as one quoted string), then PolicyOR and Unseal; sets $unseal_rc.
branch() {
  local desc=$1; shift
  t2 "$T" startauthsession --policy-session -S "$d/sess.ctx" >/dev/null
  local step rc=0
  for step in "$@"; do
    # shellcheck disable=SC2086
    t2 "$T" $step >"$d/step.out" 2>&1 || { rc=$?; break; }
  done
  if [ $rc = 0 ]; then
    t2 "$T" policyor -S "$d/sess.ctx" "sha256:$d/a.policy,$d/b.policy" >"$d/step.out" 2>&1 || rc=$?
  fi
  if [ $rc = 0 ]; then
    t2 "$T" load -C "$d/primary.ctx" -u "$d/seal.pub" -r "$d/seal.priv" -c "$d/seal.ctx" >/dev/null 2>&1
    t2 "$T" unseal -c "$d/seal.ctx" -p session:"$d/sess.ctx" -o "$d/unsealed" >"$d/step.out" 2>&1 || rc=$?
    tpm2_flushcontext -T "$T" -t >/dev/null 2>&1 || true
  fi
  tpm2_flushcontext -T "$T" "$d/sess.ctx" >/dev/null 2>&1 || true
  return $rc
}

rm -f "$d/unsealed"
run_ok "unseal through branch A (PolicySecret(owner), PolicyCommandCode(Unseal))" \
  branch A "policysecret -S $d/sess.ctx -c o" "policycommandcode -S $d/sess.ctx TPM2_CC_Unseal"
cmp -s "$d/secret" "$d/unsealed" || fail "branch A unsealed other bytes"
ok "branch A unseals the sealed bytes"
rm -f "$d/unsealed"
run_ok "unseal through branch B (PolicySecret(endorsement))" branch B "policysecret -S $d/sess.ctx -c e"
cmp -s "$d/secret" "$d/unsealed" || fail "branch B unsealed other bytes"
ok "branch B unseals the sealed bytes"
run_fails "PolicyOR refuses a session on neither branch" branch none "policysecret -S $d/sess.ctx -c o"
contains "a digest not in the list is TPM_RC_VALUE" 'value|0x1c4|0x184' "$(cat "$d/step.out")"

# PolicySecret checks the authorization of its authHandle
run_ok "owner password set" t2 "$T" changeauth -c o ownerpw
run_fails "PolicySecret(owner) with a wrong owner password" \
  branch A "policysecret -S $d/sess.ctx -c o wrongpw" "policycommandcode -S $d/sess.ctx TPM2_CC_Unseal"
contains "a wrong owner password is an authorization failure" 'authorization|0x9a2|BAD_AUTH|AUTH_FAIL' "$(cat "$d/step.out")"
rm -f "$d/unsealed"
run_ok "PolicySecret(owner) with the owner password" \
  branch A "policysecret -S $d/sess.ctx -c o ownerpw" "policycommandcode -S $d/sess.ctx TPM2_CC_Unseal"
cmp -s "$d/secret" "$d/unsealed" || fail "branch A (owner password) unsealed other bytes"
run_ok "owner password cleared" t2 "$T" changeauth -c o -p ownerpw

cofferd_stop
say "PASS"
