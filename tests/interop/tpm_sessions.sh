#!/usr/bin/env bash
# tpm_sessions.sh: authorization sessions of cofferd's TPM with real clients.
#
# 1. The ESAPI program tests/tpm_esys/esys_session.c (built by CMake as
#    $COFFER_BUILD/tests/tpm_esys_session): salted HMAC sessions (RSA and ECC tpmKey), a bound
#    session, parameter encryption both ways with AES-CFB and XOR, PolicyPCR trial vs real.
# 2. tpm2-tools through the mssim TCTI: createprimary (tpm2-tools 5 wraps it in an HMAC session with
#    AES-CFB parameter encryption), startauthsession --policy-session (the session is saved to a
#    file and loaded by the next tool: session ContextSave/ContextLoad), policypcr, createpolicy
#    --policy-pcr (digest checked against one computed here), then a secret sealed to PCR 0 with
#    create/load: unseal through a policy session succeeds, and fails after a pcrextend of PCR 0.
set -euo pipefail
source "$(dirname "$0")/lib/tpm.bash"

ESYS_PROG=${ESYS_PROG:-$COFFER_BUILD/tests/tpm_esys_session}
need tpm2_startauthsession tpm2_policypcr tpm2_createpolicy tpm2_flushcontext tpm2_create tpm2_load tpm2_unseal
[ -x "$ESYS_PROG" ] || fail "the ESAPI test program is missing: $ESYS_PROG (tests/tpm_esys/esys_session.c; CMake target tpm_esys_session)"

tpm_setup
T=$T1_MSSIM
cd "$tmp"

run_ok "startup (clear)" t2 "$T" startup -c

# ---- ESAPI: salted sessions and parameter encryption ------------------------------------------
if ! out=$("$ESYS_PROG" "$T" 2>&1); then
  printf '%s\n' "$out" >&2
  fail "esys_session failed"
fi
printf '%s\n' "$out" | sed 's/^/    /'
contains "esys_session passed" '^esys_session: PASS$' "$out"

# ---- tpm2-tools ----------------------------------------------------------------------------------
run_ok "createprimary -C o -G ecc256 (HMAC session, AES-CFB parameter encryption)" \
  t2 "$T" createprimary -C o -G ecc256 -c p.ctx
run_ok "createprimary -C o -G rsa2048 with a userAuth (encrypted on the way)" \
  t2 "$T" createprimary -C o -G rsa2048 -p primarypw -c rsa.ctx
run_ok "flushcontext -t (transient objects; the saved contexts stay usable)" t2 "$T" flushcontext -t

# createpolicy --policy-pcr: a trial session; compare with the digest computed here
# (Part 3 23.7: H(zeros || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || H(PCR 0)))
run_ok "createpolicy --policy-pcr -l sha256:0" t2 "$T" createpolicy --policy-pcr -l sha256:0 -L policy.dat
PCR0=$(t2 "$T" pcrread sha256:0 | sed -nE 's/^ *0 *: 0x([0-9A-Fa-f]{64})$/\1/p')
WANT=$(python3 - "$PCR0" <<'EOF'
import hashlib, sys
pcr = bytes.fromhex(sys.argv[1])
sel = bytes.fromhex("00000001" "000b" "03" "010000")
print(hashlib.sha256(bytes(32) + bytes.fromhex("0000017f") + sel + hashlib.sha256(pcr).digest()).hexdigest())
EOF
)
GOT=$(xxd -p -c 64 policy.dat)
[ "$GOT" = "$WANT" ] || fail "createpolicy digest $GOT, expected $WANT"
ok "the PolicyPCR digest is the one computed from Part 3 23.7"

# a policy session across tool processes (ContextSave/ContextLoad of the session)
run_ok "startauthsession --policy-session" t2 "$T" startauthsession --policy-session -S session.ctx
run_ok "policypcr -l sha256:0 in that session" t2 "$T" policypcr -S session.ctx -l sha256:0 -L policy2.dat
cmp -s policy.dat policy2.dat || fail "the policy session's digest differs from the trial session's"
ok "policy session and trial session reach the same digest"
run_ok "flushcontext of the saved session" t2 "$T" flushcontext session.ctx

# seal to PCR 0, unseal through a policy session, fail after a pcrextend
printf 'coffer sealed secret' >secret.txt
run_ok "create a sealed object with the PCR policy" \
  t2 "$T" create -C p.ctx -L policy.dat -a "fixedtpm|fixedparent" -i secret.txt -u seal.pub -r seal.priv
run_ok "load the sealed object" t2 "$T" load -C p.ctx -u seal.pub -r seal.priv -c seal.ctx
# without a resource manager the tools leave what they loaded from context files in the TPM's
# three object slots: flush transient objects between steps (as tpm2-tools' own tests do)
run_ok "flushcontext -t" t2 "$T" flushcontext -t
run_ok "unseal with -p pcr:sha256:0" t2 "$T" unseal -c seal.ctx -p pcr:sha256:0 -o unsealed.txt
cmp -s secret.txt unsealed.txt || fail "unsealed data differs"
ok "unsealed data equals the sealed secret"
t2 "$T" flushcontext -t
run_ok "unseal again through an explicit policy session" bash -c "
  tpm2_startauthsession -T '$T' --policy-session -S s2.ctx &&
  tpm2_policypcr -T '$T' -S s2.ctx -l sha256:0 &&
  tpm2_unseal -T '$T' -c seal.ctx -p session:s2.ctx -o unsealed2.txt &&
  tpm2_flushcontext -T '$T' s2.ctx && tpm2_flushcontext -T '$T' -t"
cmp -s secret.txt unsealed2.txt || fail "unsealed data (explicit session) differs"
if out=$(t2 "$T" unseal -c seal.ctx -o /dev/null 2>&1); then
  fail "unseal with a password worked on an object without userWithAuth"
fi
ok "unseal by password refused (userWithAuth clear)"
t2 "$T" flushcontext -t
run_ok "pcrextend 0" t2 "$T" pcrextend "0:sha256=$(printf 'x' | sha256sum | cut -d' ' -f1)"
if out=$(t2 "$T" unseal -c seal.ctx -p pcr:sha256:0 2>&1); then
  fail "unseal succeeded after PCR 0 changed"
fi
ok "unseal fails after pcrextend of PCR 0"

cofferd_stop
say "PASS"
