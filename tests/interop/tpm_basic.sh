#!/usr/bin/env bash
# tpm_basic.sh: cofferd's two simulator protocols with Debian's tpm2-tools, and TPM state across a
# restart of cofferd.
#
# Through the mssim TCTI (instance t1) and the swtpm TCTI (instance t2, over TCP; t3 over a Unix
# socket): startup, getrandom, pcrread, pcrextend then pcrread shows the value computed here,
# pcrevent (PCR 23) and pcrreset (23 may be reset, 0 may not),
# getcap properties-fixed. The same TPM through both protocols: t1's PCR extended over mssim reads
# the same over swtpm. Then cofferd is stopped (SIGTERM, exit 0) and started again on the same
# store: the owner hierarchy's primary ECC key comes out the same (same seed), and the PCRs start
# fresh after Startup(CLEAR).
set -euo pipefail
source "$(dirname "$0")/lib/tpm.bash"

tpm_setup

ZEROS=$(printf '0%.0s' $(seq 64))
DIGEST=$(printf 'coffer' | sha256sum | cut -d' ' -f1)
EXPECTED=$(python3 -c "import hashlib,sys; print(hashlib.sha256(bytes(32) + bytes.fromhex(sys.argv[1])).hexdigest())" "$DIGEST")

# pcr_value TCTI INDEX: the sha256 PCR's value as 64 lowercase hex digits.
pcr_value() {
  # tpm2_pcrread prints "    0 : 0xABCD..." and "    16: 0xABCD..."
  t2 "$1" pcrread "sha256:$2" | sed -nE "s/^ *$2 *: 0x([0-9A-Fa-f]{64})\$/\1/p" | tr 'A-F' 'a-f'
}

basics() { # basics NAME TCTI
  local name=$1 tcti=$2
  say "== $name: $tcti"
  run_ok "$name: startup (clear)" t2 "$tcti" startup -c
  run_ok "$name: getrandom 16" t2 "$tcti" getrandom 16 --hex
  contains "$name: getrandom gives 16 bytes" '^[0-9a-f]{32}$' "$out"
  local r1=$out
  run_ok "$name: getrandom again" t2 "$tcti" getrandom 16 --hex
  [ "$out" != "$r1" ] || fail "$name: two getrandom calls gave the same bytes"
  run_ok "$name: pcrread sha256:0,1" t2 "$tcti" pcrread sha256:0,1
  contains "$name: pcrread lists PCR 0 and 1" '^ +0 : 0x[0-9A-Fa-f]{64}$' "$out"
  local p
  for p in 0 1 16; do
    [ "$(pcr_value "$tcti" $p)" = "$ZEROS" ] || fail "$name: PCR $p is not zero after startup"
  done
  ok "$name: PCR 0, 1 and 16 are zero after startup"
  run_ok "$name: pcrextend 16" t2 "$tcti" pcrextend "16:sha256=$DIGEST"
  local got
  got=$(pcr_value "$tcti" 16)
  [ "$got" = "$EXPECTED" ] || fail "$name: PCR 16 after extend is $got, expected $EXPECTED"
  ok "$name: PCR 16 = sha256(zeros || digest)"
  # pcrevent: PCR 23 = H(0 || H(data)) in the sha256 bank; pcrreset 23 (resettable at locality 0)
  printf 'event data' >"$tmp/event.bin"
  local ev
  ev=$(python3 -c "import hashlib; print(hashlib.sha256(bytes(32) + hashlib.sha256(b'event data').digest()).hexdigest())")
  run_ok "$name: pcrevent 23" t2 "$tcti" pcrevent 23 "$tmp/event.bin"
  got=$(pcr_value "$tcti" 23)
  [ "$got" = "$ev" ] || fail "$name: PCR 23 after pcrevent is $got, expected $ev"
  ok "$name: PCR 23 = sha256(zeros || sha256(data))"
  run_ok "$name: pcrreset 23" t2 "$tcti" pcrreset 23
  [ "$(pcr_value "$tcti" 23)" = "$ZEROS" ] || fail "$name: PCR 23 not zero after pcrreset"
  ok "$name: PCR 23 is zero again after pcrreset"
  if t2 "$tcti" pcrreset 0 >/dev/null 2>&1; then fail "$name: PCR 0 was reset at locality 0"; fi
  ok "$name: PCR 0 cannot be reset (PC Client rules)"
  run_ok "$name: getcap properties-fixed" t2 "$tcti" getcap properties-fixed
  contains "$name: TPM2_PT_FAMILY_INDICATOR is 2.0" 'TPM2_PT_FAMILY_INDICATOR:' "$out"
  contains "$name: family value" 'value: "2.0"' "$out"
}

basics "mssim t1" "$T1_MSSIM"
basics "swtpm t2" "$T2_SWTPM"
basics "swtpm-unix t3" "$T3_SWTPM_UNIX"

# one instance, two protocols: t1 (started and extended over mssim) read over swtpm
got=$(pcr_value "$T1_SWTPM" 16)
[ "$got" = "$EXPECTED" ] || fail "t1 over swtpm: PCR 16 is $got, expected the value extended over mssim"
ok "t1: the PCR extended over mssim reads the same over swtpm"
# and t2 is another TPM: its PCR 16 was extended once too, its t1 counterpart untouched by it
run_ok "t2: pcrextend 16 again" t2 "$T2_SWTPM" pcrextend "16:sha256=$DIGEST"
[ "$(pcr_value "$T1_MSSIM" 16)" = "$EXPECTED" ] || fail "extending t2 changed t1"
ok "instances are separate"

# the owner hierarchy's primary key before and after a restart
primary() { # primary TCTI OUT: the public part of the primary ECC P-256 key of the owner hierarchy
  t2 "$1" createprimary -C o -G ecc256 -g sha256 >"$2" 2>"$tmp/createprimary.err" \
    || { cat "$tmp/createprimary.err" >&2; fail "createprimary through $1"; }
  grep -Eq '^x: [0-9a-f]{64}$' "$2" || { cat "$2" >&2; fail "createprimary through $1 printed no ECC point"; }
}
primary "$T1_MSSIM" "$tmp/p1.before"
primary "$T2_SWTPM" "$tmp/p2.before"
cmp -s "$tmp/p1.before" "$tmp/p2.before" && fail "two TPM instances gave the same primary key (same seeds?)"
ok "t1 and t2 have different owner seeds"

cofferd_stop
cofferd_start
for i in 1 2; do
  if [ $i = 1 ]; then tcti=$T1_MSSIM; else tcti=$T2_SWTPM; fi
  run_ok "t$i after restart: startup (clear)" t2 "$tcti" startup -c
  [ "$(pcr_value "$tcti" 16)" = "$ZEROS" ] || fail "t$i after restart: PCR 16 is not zero after Startup(CLEAR)"
  ok "t$i after restart: PCRs start fresh"
  primary "$tcti" "$tmp/p$i.after"
  if ! cmp -s "$tmp/p$i.before" "$tmp/p$i.after"; then
    diff "$tmp/p$i.before" "$tmp/p$i.after" >&2 || true
    fail "t$i: the primary key changed across a restart (seed not persisted)"
  fi
  ok "t$i after restart: the same primary key (owner seed persisted)"
done
# t1's swtpm channel, after the restart, is the same started TPM
run_ok "t1 over swtpm after restart: getrandom" t2 "$T1_SWTPM" getrandom 8 --hex

[ "$(stat -c %a "$tmp/store/master.key")" = 600 ] || fail "master.key is not mode 0600"
ok "master.key is mode 0600"
cofferd_stop
say "PASS"
