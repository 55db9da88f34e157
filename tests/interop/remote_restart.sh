#!/usr/bin/env bash
# remote_restart.sh: cofferd restarted under load (issue 4, docs/remote.md "Lost connection").
# cofferd on a Unix socket of its own scratch folder, a token with an ECDSA P-256 token key pair
# (token objects persist in the store). 4 client processes of 2 threads each
# (tests/load/remote_load.c --survive) sign continuously with the token key. While they run:
#  round 1: cofferd gets SIGTERM (a clean shutdown: the socket file is removed) and is started
#           again at once, so that a thread may still hold a session of the old daemon when
#           another thread of its process has already reconnected;
#  round 2: cofferd gets SIGKILL (no cleanup at all: a stale socket file stays); the script waits
#           until every thread of every client has noticed the outage before it starts cofferd;
# each time on the same configuration and socket, and the script then waits until every thread
# has been interrupted once more (CKR_DEVICE_REMOVED / CKR_SESSION_HANDLE_INVALID) and signs
# again. Each client process loads the module once and never again: its threads get back through
# C_OpenSession (which reconnects), C_Login and a new key lookup. At the end every client (the
# same pid) must exit 0 with at least its 300 signatures in every thread, at least 2 interruptions
# in every thread (both restarts happened during its run) and no error of any other code (the
# client's --survive mode lists the accepted codes and why); then a new client signs through the
# restarted daemon. A client that cannot get back gives up after --deadline (60 s): the test fails.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
load_scratch remote_restart

CLIENTS=4
THREADS=2
SIGNS=300

cofferd_up info
say "cofferd $COFFERD_PID serving on unix:$SOCK"
load_token ec:p256
ok "token $TOKEN with the ECDSA P-256 key pair 'load'"

say "$CLIENTS clients x $THREADS threads signing in --survive mode"
for i in $(seq 1 $CLIENTS); do
  load_bg "c$i" --threads $THREADS --signs $SIGNS --survive --deadline 60 --until "$tmp/stop" --max-time 600
done
PIDS=("${LOAD_PIDS[@]}")

# every_client COND: COND NAME succeeds for every client, which must still be running and have no
# error (a client that cannot recover gives up after --deadline: the test fails then, not later).
every_client() {
  local i
  for i in $(seq 1 $CLIENTS); do
    kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null || { cat "$tmp/c$i.out" "$tmp/c$i.err" >&2; fail "client c$i exited early"; }
    no_errors "c$i"
    "$1" "c$i" || return 1
  done
}
signing() { [ "$(progress "$1" started)" = $THREADS ]; }
# all threads noticed the outage of round R: each has R interruptions or more and is recovering
all_down() { [ "$(progress "$1" int_min)" -ge "$ROUND" ] && [ "$(progress "$1" down)" = $THREADS ]; }
# all threads back: none recovering, each signed again since its last interruption
all_back() {
  [ "$(progress "$1" down)" = 0 ] && [ "$(progress "$1" int_min)" -ge "$ROUND" ] && [ "$(progress "$1" resumed_min)" -ge 5 ]
}
no_errors() { [ "$(progress "$1" errors)" = 0 ] || fail "client $1 has errors (see below)"; }

wait_until "every thread of every client signing" 120 every_client signing
ok "every client is signing"

ROUND=0
for sig in TERM KILL; do
  ROUND=$((ROUND + 1))
  old=$COFFERD_PID
  cofferd_down "$sig"
  ok "round $ROUND: cofferd $old stopped with SIG$sig while the clients sign"
  if [ "$sig" = KILL ]; then
    # this time the clients find nothing for a while, and a stale socket file
    wait_until "every thread noticed the outage (round $ROUND)" 120 every_client all_down
    ok "round $ROUND: every thread saw the connection go (interrupted, retrying)"
    [ -S "$SOCK" ] || fail "SIGKILL should have left the socket file behind"
  fi
  # round 1 restarts at once: threads may still hold sessions of the old daemon when another
  # thread of their process has already reconnected (they get SESSION_HANDLE_INVALID)
  cofferd_up info
  ok "round $ROUND: cofferd $COFFERD_PID started again on the same configuration and socket"
  wait_until "every thread signing again (round $ROUND)" 120 every_client all_back
  ok "round $ROUND: every thread of every client signs again, no error"
done

touch "$tmp/stop"
bad=0
for i in $(seq 1 $CLIENTS); do
  rc=0
  wait "${PIDS[$((i - 1))]}" || rc=$?
  line=$(load_summary "c$i")
  if [ $rc -ne 0 ] || [ "$(summary_get "$line" pid)" != "${PIDS[$((i - 1))]}" ] || [ "$(summary_get "$line" errors)" != 0 ] \
    || [ "$(summary_get "$line" ok_min)" -lt $SIGNS ] || [ "$(summary_get "$line" int_min)" -lt 2 ]; then
    printf 'client c%s: exit %s: %s\n' "$i" "$rc" "${line:-(no summary)}" >&2
    head -n 5 "$tmp/c$i.err" >&2
    bad=$((bad + 1))
  else
    ok "client c$i (pid ${PIDS[$((i - 1))]}, module loaded once): $line"
  fi
done
LOAD_PIDS=()
[ $bad -eq 0 ] || fail "$bad of $CLIENTS clients failed"
ok "every client completed its signatures through both restarts, with only interruptions"

load_bg new --threads 2 --signs 100 --max-time 300
rc=0
wait "$LAST_PID" || rc=$?
[ $rc -eq 0 ] || { cat "$tmp/new.err" >&2; fail "a new client after the restarts failed: $(load_summary new)"; }
ok "a new client signs through the restarted daemon: $(load_summary new)"
say "done"
