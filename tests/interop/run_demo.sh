#!/usr/bin/env bash
# run_demo.sh: `make run` without the build: scripts/run-demo, then scripts/run-daemon, in a
# temporary var folder (COFFER_VAR_DIR), never the repository's ./var. The configuration is written
# beforehand with a [store], fast PINs and the TPM "default" on free ports, but no [hsm]: run-daemon
# must add the HSM socket, write the client configuration and print them. Then, as a user would from
# another shell, the printed commands of the HSM block are run as printed (export COFFER_CONF=...,
# pkcs11-tool -L, coffer token list, ...): they must list the demo token through cofferd, and fail
# once cofferd is stopped (so they did go through the socket). The printed TPM TCTI answers
# tpm2_getrandom. SIGINT stops cofferd cleanly (exit 0, socket removed); a second start adds nothing
# to the configuration.
# shellcheck source=lib/tpm.bash
source "$(dirname "$0")/lib/tpm.bash"   # pick_ports (and lib/common.bash)
need pkcs11-tool awk grep
BUILD=${COFFER_BUILD}
M=$BUILD/src/libcoffer-pkcs11.so
[ -f "$M" ] || fail "module not found: $M (build first)"
[ -x "$BUILD/src/cofferd" ] || fail "cofferd not found in $BUILD/src (build first)"
[ -x "$BUILD/src/coffer" ] || fail "coffer not found in $BUILD/src (build first)"

daemon_scratch run-demo
VAR=$tmp/var
SOCK=$VAR/hsm.sock
LOG=$tmp/cofferd.log
mkdir -p "$VAR"
# the repository's own ./var must not be touched
real_var=$COFFER_SRC/var
var_before=$(stat -c '%Y %s' "$real_var/coffer.conf" "$real_var/client.conf" 2>/dev/null || true)

pick_ports 4
cat >"$VAR/coffer.conf" <<EOF
# written by tests/interop/run_demo.sh: no [hsm] yet
[store]
dir = $VAR/store
[token]
pbkdf2_iterations = 1000
[tpm.default]
mssim = 127.0.0.1:$PORT_BASE
swtpm = 127.0.0.1:$((PORT_BASE + 2))
EOF

say "scripts/run-demo"
COFFER_VAR_DIR=$VAR run_ok "run-demo makes the demo token" "$COFFER_SRC/scripts/run-demo" "$BUILD"
contains "run-demo lists the demo token" "demo .*initialized" "$out"

# start_daemon: scripts/run-daemon in the background (it execs cofferd: $COFFERD_PID is cofferd),
# its output in $LOG; waits for the HSM socket.
start_daemon() {
  : >"$LOG"
  COFFER_VAR_DIR=$VAR "$COFFER_SRC/scripts/run-daemon" "$BUILD" >"$LOG" 2>&1 &
  COFFERD_PID=$!
  local _
  for _ in $(seq 1 100); do
    [ -S "$SOCK" ] && grep -q 'hsm ready on unix:' "$LOG" && return 0
    kill -0 "$COFFERD_PID" 2>/dev/null || { wait "$COFFERD_PID" || true; COFFERD_PID=; fail "run-daemon exited at start"; }
    sleep 0.1
  done
  fail "cofferd did not create the HSM socket $SOCK within 10 s"
}

say "scripts/run-daemon"
start_daemon
ok "cofferd $COFFERD_PID serves the HSM on $SOCK"
grep -q "tpm default ready" "$LOG" || fail "cofferd does not serve the TPM default"
ok "cofferd serves the TPM default too"
contains "run-daemon added [hsm]" "added \\[hsm\\] to $VAR/coffer.conf" "$(cat "$LOG")"
[ "$(grep -c '^\[hsm\]' "$VAR/coffer.conf")" = 1 ] || fail "coffer.conf does not have one [hsm] section"

say "what run-daemon printed"
hsm_block=$(awk '/^The HSM from another shell/ { on = 1 } /^The TPM / || /^Stop cofferd/ { on = 0 } on' "$LOG")
[ -n "$hsm_block" ] || { cat "$LOG" >&2; fail "run-daemon printed no HSM block"; }
printed_module=$(sed -n 's/^  module: *//p' <<<"$hsm_block")
[ "$printed_module" = "$(cd "$BUILD/src" && pwd)/libcoffer-pkcs11.so" ] \
  || fail "printed module path '$printed_module' is not the absolute path of $M"
ok "module path: $printed_module"
export_line=$(grep -E '^  export COFFER_CONF=' <<<"$hsm_block" | head -n 1 | sed 's/^  //')
printed_conf=${export_line#export COFFER_CONF=}
[ "$printed_conf" = "$VAR/client.conf" ] || fail "printed client config '$printed_conf' is not $VAR/client.conf"
[ -f "$printed_conf" ] || fail "the printed client config $printed_conf does not exist"
grep -q '^\[client\]' "$printed_conf" || fail "$printed_conf has no [client] section"
grep -Eq "^server *= *unix:$SOCK\$" "$printed_conf" || { cat "$printed_conf" >&2; fail "$printed_conf does not name unix:$SOCK"; }
! grep -q '^\[store\]' "$printed_conf" || fail "$printed_conf has a [store]: it must be the remote one"
ok "client config $printed_conf: [client] server = unix:$SOCK"
mapfile -t cmds < <(grep -E '^  (pkcs11-tool|/[^ ]*/coffer) ' <<<"$hsm_block" | sed 's/^  //')
[ ${#cmds[@]} -ge 2 ] || fail "run-daemon printed fewer than two client commands"

say "the printed commands, from another shell"
# run_printed CMD: CMD as a user pastes it, after the printed export, in a shell without our COFFER_CONF
run_printed() { env -u COFFER_CONF -u COFFER_MODULE bash -c "$export_line && $1"; }
for c in "${cmds[@]}"; do
  run_ok "$c" run_printed "$c"
  case $c in
    *" -L") contains "pkcs11-tool -L lists the demo token" "token label *: demo" "$out" ;;
    *" token list") contains "coffer token list lists the demo token" "demo .*initialized" "$out" ;;
  esac
done

if command -v tpm2_getrandom >/dev/null && command -v tpm2_startup >/dev/null; then
  say "the printed TPM TCTI"
  tcti=$(sed -n 's/^  export TPM2TOOLS_TCTI=\(mssim:[^ ]*\).*/\1/p' "$LOG" | head -n 1)
  [ "$tcti" = "mssim:host=127.0.0.1,port=$PORT_BASE" ] || fail "printed mssim TCTI '$tcti' is not the configured port $PORT_BASE"
  run_ok "tpm2_startup" tpm2_startup -c -T "$tcti"
  run_ok "tpm2_getrandom" tpm2_getrandom -T "$tcti" 8 --hex
fi

say "Ctrl-C"
kill -INT "$COFFERD_PID"
rc=0
wait "$COFFERD_PID" || rc=$?
COFFERD_PID=
[ $rc = 0 ] || fail "cofferd exited with status $rc on SIGINT"
[ ! -e "$SOCK" ] || fail "the socket $SOCK is still there"
ok "cofferd stopped cleanly, socket removed"
list_cmd=$(printf '%s\n' "${cmds[@]}" | grep -E ' -L$' | head -n 1)
run_fails "without cofferd, the printed pkcs11-tool -L fails (it went through the socket)" run_printed "$list_cmd"

say "a second start keeps the configuration"
conf_before=$(cat "$VAR/coffer.conf")
start_daemon
! grep -q '^added ' "$LOG" || fail "the second start added to the configuration: $(grep '^added ' "$LOG")"
[ "$(cat "$VAR/coffer.conf")" = "$conf_before" ] || fail "the second start changed coffer.conf"
run_ok "pkcs11-tool -L again" run_printed "$list_cmd"
kill -INT "$COFFERD_PID"
rc=0
wait "$COFFERD_PID" || rc=$?
COFFERD_PID=
[ $rc = 0 ] || fail "cofferd exited with status $rc on SIGINT"
ok "stopped again"

[ "$(stat -c '%Y %s' "$real_var/coffer.conf" "$real_var/client.conf" 2>/dev/null || true)" = "$var_before" ] \
  || fail "the repository's ./var was touched"
say "done"
