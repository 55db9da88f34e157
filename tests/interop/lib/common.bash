# tests/interop/lib/common.bash: what every interop script shares (sourced, never run as a test).
#
# Each script gets its own temporary state (a coffer config and store, or a SoftHSM2 token dir),
# removed on exit, and the same token: label $TOKEN, SO PIN $SO_PIN, user PIN $PIN.
#
# Environment (CTest sets the first four):
#   COFFER_MODULE   the PKCS#11 module under test (default: $COFFER_BUILD/src/libcoffer-pkcs11.so)
#   COFFER_BIN      the coffer CLI;  COFFER_SRC / COFFER_BUILD  source and build trees
#   COFFER_INTEROP_IMPL=softhsm   run the same script against SoftHSM2 instead (reference behaviour)
#   COFFER_INTEROP_MODE=remote    (coffer only) setup starts cofferd serving the token on a Unix socket
#                                 from $tmp/server-store, and the module runs in remote mode
#                                 ([client] server = unix:$tmp/hsm.sock); at exit cofferd is stopped
#                                 and the test fails if the client store dir $tmp/client-store exists.
#   COFFER_INTEROP_MODE=remote-tls  the same over TLS 1.3 with client certificates: `coffer tls init`
#                                 makes $tmp/pki, cofferd listens on tls:127.0.0.1:(a free port)
#                                 and the client has [client] server = tls:..., cert, key, ca.
#                                 Unset or "embedded": the module keeps its own store (the default).
set -euo pipefail

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COFFER_SRC=${COFFER_SRC:-$(cd "$INTEROP_DIR/../.." && pwd)}
COFFER_BUILD=${COFFER_BUILD:-$COFFER_SRC/build}
IMPL=${COFFER_INTEROP_IMPL:-coffer}
MODE=${COFFER_INTEROP_MODE:-embedded}
PY=/usr/bin/python3          # Debian's python: the one with python3-pykcs11 (PATH may hold a pyenv one)
TOKEN=t1
SO_PIN=12345678
PIN=1234
TEST_NAME=$(basename "$0" .sh)

say()  { printf '[%s] %s\n' "$TEST_NAME" "$*"; }
ok()   { printf '[%s]   ok: %s\n' "$TEST_NAME" "$*"; }
fail() { printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }

need() { # need CMD...: each command must exist (scripts/deps installs them)
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || fail "missing $c (run scripts/deps)"; done
}

# run_ok DESC CMD...: CMD must succeed; its output is kept in $out (and shown on failure).
run_ok() {
  local desc=$1; shift
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    fail "$desc: command failed: $*"
  fi
  ok "$desc"
}

# run_fails DESC CMD...: CMD must fail; its output is kept in $out.
run_fails() {
  local desc=$1; shift
  if out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    fail "$desc: command succeeded but must fail: $*"
  fi
  ok "$desc"
}

# contains DESC PATTERN TEXT: TEXT must match the extended regex PATTERN.
contains() {
  if ! grep -Eq -- "$2" <<<"$3"; then
    printf '%s\n' "$3" >&2
    fail "$1: output does not match /$2/"
  fi
  ok "$1"
}

# setup: temp dir $tmp (removed on exit), config for the implementation, $M = module path.
# In remote mode also starts cofferd ($COFFERD_PID), stopped by the same exit path.
setup() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-interop.XXXXXX")
  COFFERD_PID=
  trap interop_cleanup EXIT
  case $MODE in
    embedded|remote|remote-tls) ;;
    *) fail "COFFER_INTEROP_MODE must be embedded, remote or remote-tls, not $MODE" ;;
  esac
  [ "$MODE" = embedded ] || [ "$IMPL" = coffer ] || fail "COFFER_INTEROP_MODE=remote needs COFFER_INTEROP_IMPL=coffer"
  case $IMPL in
    coffer)
      M=${COFFER_MODULE:-$COFFER_BUILD/src/libcoffer-pkcs11.so}
      [ -f "$M" ] || fail "module not found: $M (build first, or set COFFER_MODULE)"
      export COFFER_CONF=$tmp/coffer.conf
      if [ "$MODE" = remote ]; then
        start_cofferd
        printf '[store]\ndir = %s/client-store\n[client]\nserver = unix:%s\n' "$tmp" "$SOCK" >"$COFFER_CONF"
        STORE_DIR=$tmp/server-store
      elif [ "$MODE" = remote-tls ]; then
        start_cofferd
        printf '[store]\ndir = %s/client-store\n[client]\nserver = tls:127.0.0.1:%s\ncert = pki/client.pem\nkey = pki/client.key\nca = pki/ca.pem\n' \
          "$tmp" "$TLS_PORT" >"$COFFER_CONF"
        STORE_DIR=$tmp/server-store
      else
        printf '[store]\ndir = %s/store\n[token]\npbkdf2_iterations = 1000\n' "$tmp" >"$COFFER_CONF"
        STORE_DIR=$tmp/store
      fi
      ;;
    softhsm)
      M=/usr/lib/softhsm/libsofthsm2.so
      [ -f "$M" ] || fail "SoftHSM2 not installed (apt-get install softhsm2)"
      mkdir -p "$tmp/tokens"
      export SOFTHSM2_CONF=$tmp/softhsm2.conf
      printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$tmp" >"$SOFTHSM2_CONF"
      STORE_DIR=$tmp/tokens
      ;;
    *) fail "COFFER_INTEROP_IMPL must be coffer or softhsm, not $IMPL" ;;
  esac
  export P11_MODULE=$M P11_TOKEN=$TOKEN P11_PIN=$PIN P11_SO_PIN=$SO_PIN COFFER_INTEROP_IMPL=$IMPL
  say "module $M ($IMPL, $MODE), state in $tmp"
}

# start_cofferd: cofferd serves the token from $tmp/server-store on $SOCK = $tmp/hsm.sock (remote mode).
start_cofferd() {
  COFFERD=${COFFERD:-$COFFER_BUILD/src/cofferd}
  [ -x "$COFFERD" ] || fail "cofferd not found: $COFFERD (build first, or set COFFERD)"
  SOCK=$tmp/hsm.sock
  if [ "$MODE" = remote-tls ]; then
    local cli=${COFFER_BIN:-$COFFER_BUILD/src/coffer}
    "$cli" tls init --dir "$tmp/pki" >/dev/null || fail "coffer tls init failed"
    TLS_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf '[store]\ndir = %s/server-store\n[token]\npbkdf2_iterations = 1000\n[hsm]\nlisten = tls:127.0.0.1:%s\ncert = pki/server.pem\nkey = pki/server.key\nclient_ca = pki/ca.pem\n' \
      "$tmp" "$TLS_PORT" >"$tmp/server.conf"
  else
    printf '[store]\ndir = %s/server-store\n[token]\npbkdf2_iterations = 1000\n[hsm]\nlisten = unix:%s\n' \
      "$tmp" "$SOCK" >"$tmp/server.conf"
  fi
  # The server reads only its own file (-c); the client's COFFER_CONF must not leak into it.
  env -u COFFER_CONF COFFER_LOG=info "$COFFERD" -c "$tmp/server.conf" >>"$tmp/cofferd.log" 2>&1 &
  COFFERD_PID=$!
  local _ up=
  for _ in $(seq 1 100); do
    if [ "$MODE" = remote-tls ]; then
      grep -q "hsm ready on tls:" "$tmp/cofferd.log" 2>/dev/null && { up=1; break; }
    else
      [ -S "$SOCK" ] && { up=1; break; }
    fi
    kill -0 "$COFFERD_PID" 2>/dev/null || { wait "$COFFERD_PID" || true; COFFERD_PID=; fail "cofferd exited at start"; }
    sleep 0.1
  done
  [ -n "$up" ] || fail "cofferd did not start listening within 10 s"
  if [ "$MODE" = remote-tls ]; then
    say "cofferd $COFFERD_PID serving the token on tls:127.0.0.1:$TLS_PORT"
  else
    say "cofferd $COFFERD_PID serving the token on unix:$SOCK"
  fi
}

# interop_cleanup: the EXIT trap of setup. Remote mode: stops cofferd (TERM, wait), shows its log
# on failure, and fails the test if the client store dir exists (no key material on the client).
interop_cleanup() {
  local rc=$?
  if [ -n "${COFFERD_PID:-}" ] && kill -0 "$COFFERD_PID" 2>/dev/null; then
    kill -TERM "$COFFERD_PID" 2>/dev/null || true
    wait "$COFFERD_PID" 2>/dev/null || true
  fi
  COFFERD_PID=
  if [ "$MODE" != embedded ] && [ -n "${tmp:-}" ]; then
    if [ -e "$tmp/client-store" ]; then
      printf '[%s] FAIL: remote mode created the client store dir %s/client-store:\n' "$TEST_NAME" "$tmp" >&2
      find "$tmp/client-store" >&2 || true
      rc=1
    elif [ "$rc" -eq 0 ]; then
      ok "remote mode: the client store dir was never created"
      if [ -f "$tmp/server-store/coffer.db" ]; then
        ok "remote mode: the token lives in cofferd's store"
      else
        printf '[%s] FAIL: remote mode: cofferd has no %s/server-store/coffer.db\n' "$TEST_NAME" "$tmp" >&2
        rc=1
      fi
    fi
    if [ "$rc" -ne 0 ] && [ -f "$tmp/cofferd.log" ]; then
      echo "---- cofferd log (last 40 lines) ----" >&2
      tail -n 40 "$tmp/cofferd.log" >&2
    fi
  fi
  [ -z "${tmp:-}" ] || rm -rf "$tmp"
  exit "$rc"
}

# reference_lacks WHAT: true (and says so) when running against SoftHSM2, which lacks WHAT; the
# step is then left out of the reference run. Against coffer this is always false: nothing skipped.
# daemon_scratch NAME: for scripts that run their own cofferd: $tmp (removed at exit), COFFERD_PID
# (stopped at exit), and the tail of $tmp/cofferd.log printed when the script fails.
daemon_scratch() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-$1.XXXXXX")
  COFFERD_PID=
  trap daemon_scratch_cleanup EXIT
}
daemon_scratch_cleanup() {
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

reference_lacks() {
  [ "$IMPL" = softhsm ] || return 1
  say "note: SoftHSM2 lacks $*; step left out of the reference run"
}

p11() { pkcs11-tool --module "$M" "$@"; }
# p11t ARGS: pkcs11-tool on our token (by label), logged in as the user.
p11t() { pkcs11-tool --module "$M" --token-label "$TOKEN" --login --pin "$PIN" "$@"; }

# init_token [LABEL]: the same steps for every module: pkcs11-tool initializes the token in the first
# slot (in a fresh store, the free slot) with $SO_PIN, then the SO sets the user PIN $PIN.
init_token() {
  local label=${1:-$TOKEN} o
  o=$(p11 --init-token --label "$label" --so-pin "$SO_PIN" 2>&1) || { printf '%s\n' "$o" >&2; fail "init-token $label"; }
  o=$(p11 --token-label "$label" --login --login-type so --so-pin "$SO_PIN" --init-pin --pin "$PIN" 2>&1) \
    || { printf '%s\n' "$o" >&2; fail "init-pin on $label"; }
}

# pubkey_pem ID OUT: exports the public key with CKA_ID=ID as PEM. pkcs11-tool 0.23 writes a DER
# SubjectPublicKeyInfo for RSA and EC keys, and already PEM for Ed25519.
pubkey_pem() {
  p11t --read-object --type pubkey --id "$1" -o "$tmp/pub.$1.spki" >/dev/null 2>&1 \
    || fail "read public key id $1"
  openssl pkey -pubin -inform DER -in "$tmp/pub.$1.spki" -out "$2" 2>/dev/null \
    || openssl pkey -pubin -inform PEM -in "$tmp/pub.$1.spki" -out "$2" 2>/dev/null \
    || fail "public key id $1 is not a valid SubjectPublicKeyInfo"
}

# py SCRIPT ARGS: runs a Python file with Debian's python (PyKCS11), helpers on the path.
py() { PYTHONPATH="$INTEROP_DIR/lib${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$@"; }

# store_files: every file of the persistent state (coffer: coffer.db, -wal, -shm; SoftHSM2: token files).
store_files() { find "$STORE_DIR" -type f 2>/dev/null | sort; }

# ---- the network HSM acceptance tests (remote_load.sh, remote_kill.sh, remote_restart.sh) ----------
# load_scratch NAME: daemon_scratch NAME, then M (module), COFFERD, CLI and LOAD (the load client,
# $COFFER_BUILD/tests/remote_load, built by tests/CMakeLists.txt) checked; SOCK=$tmp/hsm.sock;
# $tmp/server.conf (cofferd's) and $COFFER_CONF=$tmp/client.conf (the module's, [client] only).
# The EXIT trap also kills the load clients started with load_bg (LOAD_PIDS), before cofferd.
load_scratch() {
  COFFERD=${COFFERD:-$COFFER_BUILD/src/cofferd}
  M=${COFFER_MODULE:-$COFFER_BUILD/src/libcoffer-pkcs11.so}
  CLI=${COFFER_BIN:-$COFFER_BUILD/src/coffer}
  LOAD=${REMOTE_LOAD:-$COFFER_BUILD/tests/remote_load}
  [ -f "$M" ] || fail "module not found: $M (build first, or set COFFER_MODULE)"
  [ -x "$COFFERD" ] || fail "cofferd not found: $COFFERD (build first, or set COFFERD)"
  [ -x "$CLI" ] || fail "coffer not found: $CLI (build first, or set COFFER_BIN)"
  [ -x "$LOAD" ] || fail "load client not found: $LOAD (build first, or set REMOTE_LOAD)"
  daemon_scratch "$1"
  LOAD_PIDS=()
  trap load_scratch_cleanup EXIT
  SOCK=$tmp/hsm.sock
  printf '[store]\ndir = %s/server-store\n[token]\npbkdf2_iterations = 1000\n[hsm]\nlisten = unix:%s\n' \
    "$tmp" "$SOCK" >"$tmp/server.conf"
  export COFFER_CONF=$tmp/client.conf
  printf '[client]\nserver = unix:%s\n' "$SOCK" >"$COFFER_CONF"
}
load_scratch_cleanup() {
  local rc=$? p f
  for p in "${LOAD_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ] && [ -n "${tmp:-}" ]; then
    for f in "$tmp"/*.progress; do
      [ -f "$f" ] || continue
      p=${f%.progress}
      printf -- '---- load client %s: %s\n' "${p##*/}" "$(cat "$f")" >&2
      [ ! -s "$p.err" ] || tail -n 3 "$p.err" >&2
    done
  fi
  if [ "$rc" -eq 0 ]; then
    daemon_scratch_cleanup
  else
    (exit "$rc") || daemon_scratch_cleanup   # it reads the script's status from $?
  fi
}

# load_bg NAME ARGS...: starts the load client in the background (no `timeout` wrapper: $! is the
# client itself) with its summary in $tmp/NAME.out, stderr in $tmp/NAME.err, progress in
# $tmp/NAME.progress; LAST_PID gets its pid (also kept in LOAD_PIDS for the cleanup).
load_bg() {
  local name=$1; shift
  "$LOAD" "$M" --pin "$PIN" --progress "$tmp/$name.progress" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  LAST_PID=$!
  LOAD_PIDS+=("$LAST_PID")
}

# progress NAME KEY: the counter KEY of the load client NAME's progress line (0 before the first).
progress() {
  local line v=
  line=$(cat "$tmp/$1.progress" 2>/dev/null) && v=$(sed -n "s/.*\\b$2=\\([0-9]*\\).*/\\1/p" <<<"$line")
  echo "${v:-0}"
}

# wait_until DESC SECONDS CMD...: polls CMD (every 0.1 s) until it succeeds; fails the test after
# SECONDS. Conditions, never fixed sleeps: the machine may be slow and busy.
wait_until() {
  local desc=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $end ] || fail "timed out after ${secs}s waiting for: $desc"
    sleep 0.1
  done
}

# cofferd_up [LOGLEVEL]: starts cofferd on $tmp/server.conf (log appended to $tmp/cofferd.log),
# COFFERD_PID; returns once a PKCS#11 client gets an answer through the socket (a stale socket
# file of a killed daemon does not count: the client must reach the new one).
cofferd_up() {
  env -u COFFER_CONF COFFER_LOG="${1:-info}" "$COFFERD" -c "$tmp/server.conf" >>"$tmp/cofferd.log" 2>&1 &
  COFFERD_PID=$!
  local end=$((SECONDS + 30)) o
  until o=$("$LOAD" "$M" --session-count 2>&1); grep -Eq '^sessions=|no initialized token' <<<"$o"; do
    kill -0 "$COFFERD_PID" 2>/dev/null || { wait "$COFFERD_PID" || true; COFFERD_PID=; fail "cofferd exited at start"; }
    [ $SECONDS -lt $end ] || fail "cofferd did not answer on $SOCK within 30 s"
    sleep 0.1
  done
}

# cofferd_down SIGNAL: sends SIGNAL to cofferd and waits for it to exit.
cofferd_down() {
  kill -"$1" "$COFFERD_PID"
  wait "$COFFERD_PID" 2>/dev/null || true
  COFFERD_PID=
}

# load_token [KEYTYPE]: the coffer CLI, through the module in remote mode, initializes token $TOKEN
# (SO PIN $SO_PIN, user PIN $PIN) and generates the token key pair "load" (default ec:p256).
load_token() {
  local o
  o=$(COFFER_SO_PIN=$SO_PIN COFFER_PIN=$PIN "$CLI" --module "$M" token init --label "$TOKEN" 2>&1) \
    || { printf '%s\n' "$o" >&2; fail "coffer token init"; }
  o=$(COFFER_PIN=$PIN "$CLI" --module "$M" key generate --token "$TOKEN" --type "${1:-ec:p256}" --label load 2>&1) \
    || { printf '%s\n' "$o" >&2; fail "coffer key generate ${1:-ec:p256}"; }
}

# session_count: the token's open sessions, all clients together (C_GetTokenInfo ulSessionCount, read
# by a new client process that opens none itself).
session_count() {
  local o
  o=$("$LOAD" "$M" --session-count 2>&1) || { printf '%s\n' "$o" >&2; fail "reading the session count"; }
  sed -n 's/^sessions=\([0-9]*\) .*/\1/p' <<<"$o"
}

# load_summary NAME: the client NAME's summary line (its last line of output; empty if it has none).
load_summary() { { grep '^remote_load: ' "$tmp/$1.out" || true; } | tail -n 1; }
# summary_get LINE KEY: a counter of a summary line.
summary_get() { sed -n "s/.*\\b$2=\\([0-9]*\\).*/\\1/p" <<<"$1"; }
