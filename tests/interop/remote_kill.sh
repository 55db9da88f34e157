#!/usr/bin/env bash
# remote_kill.sh: a client killed with kill -9 in the middle of its work leaves nothing behind in
# cofferd, and other clients do not notice (issue 4, docs/remote.md "cleanup"). cofferd on a Unix
# socket of its own scratch folder, a token with an ECDSA P-256 key pair (coffer CLI, remote mode).
#  - client B (2 threads) signs continuously; the token then has B's 3 sessions (its login session
#    and one per thread), as C_GetTokenInfo's ulSessionCount shows to a third client process;
#  - client A (3 threads) logs in, each thread creates 4 session objects in its own session and
#    signs in a loop that would last far longer than the test: 4 more sessions, 7 in all;
#  - once A is signing, kill -9 A. The token's session count must go back to B's 3 (the server
#    closed the sessions of the dead connection, and with them its session objects, operations and
#    login), while B goes on signing; B must then finish with zero errors;
#  - the daemon is still up and serves a new client, and no session is left at the end.
# The observable is PKCS#11 only: a server that kept a dead client's sessions fails the count.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
load_scratch remote_kill

cofferd_up debug
say "cofferd $COFFERD_PID serving on unix:$SOCK"
load_token ec:p256
ok "token $TOKEN with the ECDSA P-256 key pair 'load'"
[ "$(session_count)" -eq 0 ] || fail "sessions open before any client: $(session_count)"
ok "no session open before the clients start"

# running NAME PID: the client is still running (else its output is shown and the test fails).
running() {
  kill -0 "$2" 2>/dev/null && return 0
  cat "$tmp/$1.out" "$tmp/$1.err" >&2
  fail "client $1 exited early"
}
b_signing() { running b "$B"; [ "$(progress b started)" = 2 ]; }
a_signing() { running a "$A"; [ "$(progress a started)" = 3 ] && [ "$(progress a ok)" -ge 30 ]; }
count_is() { [ "$(session_count)" -eq "$1" ]; }

say "client B: 2 threads signing until told to stop"
load_bg b --threads 2 --signs 200 --until "$tmp/stop-b" --max-time 600
B=$LAST_PID
wait_until "client B signing" 120 b_signing
wait_until "B's 3 sessions counted" 30 count_is 3
ok "B is signing; the token counts its 3 sessions"

say "client A: 3 threads, 4 session objects each, signing in a long loop"
load_bg a --threads 3 --signs 100000000 --session-objects 4 --max-time 600
A=$LAST_PID
wait_until "client A signing in all its threads" 120 a_signing
n=$(session_count)
[ "$n" -eq 7 ] || fail "with A and B running the token should count 7 sessions, not $n"
ok "A is signing (ok=$(progress a ok)) and holds 12 session objects; the token counts 7 sessions"
before_b=$(progress b ok)

kill -KILL "$A"
rc=0
wait "$A" 2>/dev/null || rc=$?
[ $rc -eq 137 ] || fail "client A should have died of SIGKILL (exit 137), not exit $rc"
ok "client A killed with SIGKILL in the middle of its sign loop (it had signed $(progress a ok) times)"

wait_until "the token's session count back to B's 3 after A died" 30 count_is 3
ok "cofferd closed the 4 sessions of the dead client (ulSessionCount 7 -> 3)"
# for the reader (not asserted: the wording is the server's own business)
if line=$(grep -E "(connection|application [0-9]+) ended, 4 session\(s\) closed" "$tmp/cofferd.log"); then
  ok "cofferd's debug log says so: ${line#*hsm: }"
fi

b_progressed() { running b "$B"; [ "$(progress b ok)" -ge $((before_b + 200)) ]; }
wait_until "B signing on after A died" 120 b_progressed
[ "$(progress b errors)" = 0 ] || fail "client B saw errors: $(cat "$tmp/b.progress")"
touch "$tmp/stop-b"
rc=0
wait "$B" || rc=$?
line=$(load_summary b)
[ $rc -eq 0 ] || { cat "$tmp/b.err" >&2; fail "client B failed (exit $rc): $line"; }
if [ "$(summary_get "$line" errors)" != 0 ] || [ "$(summary_get "$line" ok_min)" -lt 200 ]; then
  fail "client B: $line"
fi
ok "client B finished with zero errors: $line"
LOAD_PIDS=()

kill -0 "$COFFERD_PID" 2>/dev/null || fail "cofferd died"
wait_until "no session left" 30 count_is 0
ok "no session is left open on the token"
load_bg c --threads 2 --signs 100 --max-time 300
C=$LAST_PID
rc=0
wait "$C" || rc=$?
line=$(load_summary c)
[ $rc -eq 0 ] || { cat "$tmp/c.err" >&2; fail "a new client after the kill failed (exit $rc): $line"; }
ok "the daemon serves a new client: $line"
say "done"
