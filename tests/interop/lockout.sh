#!/usr/bin/env bash
# lockout.sh: the user PIN locks after 10 consecutive failures ([token] user_pin_max_tries, default
# 10), counted on the token across processes (each attempt below is its own pkcs11-tool process);
# a successful login resets the count; a locked PIN refuses even the right PIN, the token reports
# CKF_USER_PIN_LOCKED, and the SO's C_InitPIN unlocks it with a new PIN.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool
setup
init_token

# attempt PIN: one login in a new process; prints the CKR_* name (CKR_OK on success).
attempt() {
  local o
  if o=$(p11 --token-label "$TOKEN" --login --pin "$1" -O 2>&1); then echo CKR_OK; return; fi
  grep -o 'CKR_[A-Z_]*' <<<"$o" | head -n 1 || echo "unknown failure: $o"
}
expect_attempt() { # DESC PIN WANT
  local got; got=$(attempt "$2")
  [ "$got" = "$3" ] || fail "$1: got $got, want $3"
  ok "$1: $3"
}
token_flags() { p11 --token-label "$TOKEN" -T 2>&1 | grep 'token flags'; }

say "a successful login resets the failure count"
for i in 1 2 3 4 5; do expect_attempt "wrong PIN #$i" 0000 CKR_PIN_INCORRECT; done
expect_attempt "right PIN" "$PIN" CKR_OK
for i in 1 2 3 4 5 6 7 8 9; do expect_attempt "wrong PIN #$i after the reset" 0000 CKR_PIN_INCORRECT; done
flags=$(token_flags)
if grep -q 'user PIN locked' <<<"$flags"; then fail "locked after 9 failures: $flags"; fi
ok "not locked after 9 consecutive failures"
if reference_lacks "PIN lockout (it never locks a PIN)"; then echo PASS; exit 0; fi

say "the 10th consecutive failure locks the PIN"
expect_attempt "wrong PIN #10" 0000 CKR_PIN_LOCKED
expect_attempt "wrong PIN #11" 0000 CKR_PIN_LOCKED
expect_attempt "the right PIN is refused too" "$PIN" CKR_PIN_LOCKED
contains "token flags show the lock" "user PIN locked" "$(token_flags)"

say "the SO unlocks it with C_InitPIN"
run_ok "SO init-pin with a new PIN" p11 --token-label "$TOKEN" --login --login-type so --so-pin "$SO_PIN" \
  --init-pin --new-pin 5678
flags=$(token_flags)
if grep -q 'user PIN locked' <<<"$flags"; then fail "still locked after C_InitPIN: $flags"; fi
ok "lock flag cleared"
expect_attempt "the new PIN works" 5678 CKR_OK
expect_attempt "the old PIN no longer does" "$PIN" CKR_PIN_INCORRECT
expect_attempt "the new PIN works again (count reset)" 5678 CKR_OK
echo "PASS"
