#!/usr/bin/env bash
# remote_load.sh: the network HSM under load (issue 4). cofferd serves the token on a Unix socket of
# its own scratch folder; the coffer CLI, through the module in remote mode, initializes the token
# and generates an ECDSA P-256 token key pair. Then 64 client processes (tests/load/remote_load.c:
# the module loaded with dlopen, one login per process, one session per thread) are set up, wait
# at a start line, and sign 1,000 times each at the same time (C_SignInit + C_Sign over a
# 32-byte digest), every 100th signature checked with C_Verify and the first one also refused once
# changed. Every client must exit 0 with 1,000 signatures, 10 verified and zero errors; afterwards
# the daemon still runs and no session is left open on the token.
# REMOTE_LOAD_CLIENTS / REMOTE_LOAD_SIGNS change the sizes (for a quick run by hand).
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
load_scratch remote_load

CLIENTS=${REMOTE_LOAD_CLIENTS:-64}
SIGNS=${REMOTE_LOAD_SIGNS:-1000}

cofferd_up info
say "cofferd $COFFERD_PID serving on unix:$SOCK"
load_token ec:p256
ok "token $TOKEN with the ECDSA P-256 key pair 'load' (coffer CLI in remote mode)"

say "$CLIENTS client processes set up (module loaded, login, session, keys found)"
for i in $(seq 1 "$CLIENTS"); do
  load_bg "c$i" --threads 1 --signs "$SIGNS" --verify-every 100 --start "$tmp/go" --max-time 600
done
all_ready() {
  local i
  for i in $(seq 1 "$CLIENTS"); do
    [ "$(progress "c$i" ready)" = 1 ] && continue
    kill -0 "${LOAD_PIDS[$((i - 1))]}" 2>/dev/null || { cat "$tmp/c$i.out" "$tmp/c$i.err" >&2; fail "client c$i exited during its setup"; }
    return 1
  done
}
wait_until "every client set up" 180 all_ready
[ "$(session_count)" -eq $((2 * CLIENTS)) ] || fail "expected $((2 * CLIENTS)) open sessions (a login session and a signing session per client), got $(session_count)"
ok "$CLIENTS clients connected: $((2 * CLIENTS)) sessions open on the token"

say "go: $CLIENTS x $SIGNS ECDSA P-256 signatures"
t0=$(date +%s.%N)
touch "$tmp/go"
bad=0
for i in $(seq 1 "$CLIENTS"); do
  rc=0
  wait "${LOAD_PIDS[$((i - 1))]}" || rc=$?
  line=$(load_summary "c$i")
  if [ $rc -ne 0 ] || [ "$(summary_get "$line" ok)" != "$SIGNS" ] || [ "$(summary_get "$line" errors)" != 0 ] \
    || [ "$(summary_get "$line" verified)" != $(( (SIGNS + 99) / 100 )) ]; then
    printf 'client c%s: exit %s: %s\n' "$i" "$rc" "${line:-(no summary)}" >&2
    head -n 5 "$tmp/c$i.err" >&2
    bad=$((bad + 1))
  fi
done
t1=$(date +%s.%N)
LOAD_PIDS=()
[ $bad -eq 0 ] || fail "$bad of $CLIENTS clients failed"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
rate=$(awk -v a="$t0" -v b="$t1" -v n=$((CLIENTS * SIGNS)) 'BEGIN { printf "%.0f", n / (b - a) }')
ok "$CLIENTS clients x $SIGNS signatures, all verified samples good, zero errors ($secs s, $rate signatures/s)"

kill -0 "$COFFERD_PID" 2>/dev/null || fail "cofferd died under load"
no_sessions() { [ "$(session_count)" -eq 0 ]; }
wait_until "every session closed on the token" 30 no_sessions
ok "cofferd still serves and no session is left open"
say "done"
