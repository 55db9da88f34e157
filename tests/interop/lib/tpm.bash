# tests/interop/lib/tpm.bash: what the TPM interop scripts share (sourced, never run as a test).
#
# tpm_setup writes a configuration with three TPM instances on free ports and starts cofferd;
# cofferd_stop / cofferd_start stop it cleanly (SIGTERM, exit status 0 required) and start it
# again on the same state; on exit cofferd is stopped and the temporary state removed.
#
#   t1   mssim on $MSSIM_PORT (+1) and swtpm on $SWTPM_PORT (+1)    TCTIs $T1_MSSIM, $T1_SWTPM
#   t2   swtpm on $SWTPM2_PORT (+1)                                  TCTI  $T2_SWTPM
#   t3   swtpm on the Unix socket $tmp/t3.sock (+ .ctrl)             TCTI  $T3_SWTPM_UNIX
#
# Environment: COFFER_BUILD (the build tree; CTest sets it), COFFERD (default
# $COFFER_BUILD/src/cofferd), COFFER_SRC.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

COFFERD=${COFFERD:-$COFFER_BUILD/src/cofferd}
COFFERD_PID=

# port_free PORT: no TCP socket uses PORT locally, in any state (ss when present, else by connecting).
port_free() {
  if command -v ss >/dev/null 2>&1; then
    [ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
  else
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# pick_ports N: sets PORT_BASE to the first of N consecutive free ports in 20000..32699, below
# Linux's ephemeral range (32768..60999), whose ports outgoing connections take at any moment.
pick_ports() {
  local n=$1 tries base i ok
  for tries in $(seq 1 50); do
    base=$(( 20000 + RANDOM % 12700 ))
    ok=1
    for (( i = 0; i < n; i++ )); do
      port_free $(( base + i )) || { ok=0; break; }
    done
    if [ $ok = 1 ]; then PORT_BASE=$base; return 0; fi
  done
  fail "no $n consecutive free ports found"
}

write_tpm_config() {
  pick_ports 6
  MSSIM_PORT=$PORT_BASE
  SWTPM_PORT=$(( PORT_BASE + 2 ))
  SWTPM2_PORT=$(( PORT_BASE + 4 ))
  T1_MSSIM="mssim:host=127.0.0.1,port=$MSSIM_PORT"
  T1_SWTPM="swtpm:host=127.0.0.1,port=$SWTPM_PORT"
  T2_SWTPM="swtpm:host=127.0.0.1,port=$SWTPM2_PORT"
  T3_SWTPM_UNIX="swtpm:path=$tmp/t3.sock"
  cat >"$CONF" <<EOF
# written by tests/interop/lib/tpm.bash
[store]
dir = $tmp/store
[log]
level = info
[tpm.t1]
mssim = 127.0.0.1:$MSSIM_PORT
swtpm = 127.0.0.1:$SWTPM_PORT
[tpm.t2]
swtpm = 127.0.0.1:$SWTPM2_PORT
[tpm.t3]
swtpm = unix:$tmp/t3.sock
EOF
}

tpm_cleanup() {
  local rc=$?
  if [ -n "$COFFERD_PID" ] && kill -0 "$COFFERD_PID" 2>/dev/null; then
    kill -TERM "$COFFERD_PID" 2>/dev/null || true
    wait "$COFFERD_PID" 2>/dev/null || true
  fi
  if [ $rc != 0 ] && [ -f "$tmp/cofferd.log" ]; then
    echo "---- cofferd log (last 40 lines) ----" >&2
    tail -n 40 "$tmp/cofferd.log" >&2
  fi
  rm -rf "$tmp"
  return $rc
}

# cofferd_start: starts cofferd in the background and waits until its ports accept. If a port was
# taken between choosing and binding (another test), chooses again (the state is kept by instance
# name, not by port).
cofferd_start() {
  local attempt i
  for attempt in 1 2 3; do
    COFFER_LOG=info "$COFFERD" -c "$CONF" >>"$tmp/cofferd.log" 2>&1 &
    COFFERD_PID=$!
    for i in $(seq 1 100); do
      if ! kill -0 "$COFFERD_PID" 2>/dev/null; then
        wait "$COFFERD_PID" 2>/dev/null || true
        COFFERD_PID=
        break
      fi
      if [ -S "$tmp/t3.sock.ctrl" ] && grep -q 'tpm t3 ready' "$tmp/cofferd.log"; then
        say "cofferd $COFFERD_PID listening (mssim $MSSIM_PORT, swtpm $SWTPM_PORT, $SWTPM2_PORT, unix $tmp/t3.sock)"
        return 0
      fi
      sleep 0.1
    done
    if [ -n "$COFFERD_PID" ]; then
      tail -n 20 "$tmp/cofferd.log" >&2
      fail "cofferd did not listen within 10 s"
    fi
    grep -q 'cannot listen' "$tmp/cofferd.log" || { tail -n 20 "$tmp/cofferd.log" >&2; fail "cofferd exited at start"; }
    say "a port was taken meanwhile; choosing others"
    write_tpm_config
  done
  fail "cofferd could not bind its ports"
}

# cofferd_stop: SIGTERM; cofferd must exit 0 (listeners closed, state stored).
cofferd_stop() {
  [ -n "$COFFERD_PID" ] || fail "cofferd is not running"
  kill -TERM "$COFFERD_PID"
  local rc=0
  wait "$COFFERD_PID" || rc=$?
  COFFERD_PID=
  [ $rc = 0 ] || fail "cofferd exited with status $rc on SIGTERM"
  ok "cofferd stopped cleanly (exit 0)"
}

tpm_setup() {
  need tpm2_startup tpm2_getrandom tpm2_pcrread tpm2_pcrextend tpm2_getcap tpm2_createprimary python3
  [ -x "$COFFERD" ] || fail "cofferd not found: $COFFERD (build first, or set COFFERD)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-tpm.XXXXXX")
  CONF=$tmp/coffer.conf
  trap tpm_cleanup EXIT
  write_tpm_config
  cofferd_start
}

# t2 TCTI TOOL ARGS...: runs a tpm2-tools command through the given TCTI.
t2() { local tcti=$1 tool=$2; shift 2; "tpm2_$tool" -T "$tcti" "$@"; }
