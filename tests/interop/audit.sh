#!/usr/bin/env bash
# audit.sh: cofferd's tamper-evident audit log (issue 4 item 5, docs/remote.md "Audit log").
# cofferd serves the HSM on a Unix socket; pkcs11-tool, through the module in remote mode,
# initializes a token, fails a login, logs in, generates a P-256 key pair and signs twice. Then
# `coffer audit show --json` lists those events, `coffer audit verify` passes, and after a record is
# edited (python3's sqlite3), deleted or swapped with another one, verify fails naming it.
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"
need pkcs11-tool python3
COFFERD=${COFFERD:-$COFFER_BUILD/src/cofferd}
M=${COFFER_MODULE:-$COFFER_BUILD/src/libcoffer-pkcs11.so}
CLI=${COFFER_BIN:-$COFFER_BUILD/src/coffer}
[ -f "$M" ] || fail "module not found: $M (build first, or set COFFER_MODULE)"
[ -x "$COFFERD" ] || fail "cofferd not found: $COFFERD (build first, or set COFFERD)"
[ -x "$CLI" ] || fail "coffer not found: $CLI (build first, or set COFFER_BIN)"

daemon_scratch audit

SOCK=$tmp/hsm.sock
STORE=$tmp/server-store
export COFFER_CONF=$tmp/client.conf
cat >"$COFFER_CONF" <<EOF
[client]
server = unix:$SOCK
EOF
cat >"$tmp/server.conf" <<EOF
[store]
dir = $STORE
[token]
pbkdf2_iterations = 1000
[hsm]
listen = unix:$SOCK
EOF
COFFER_LOG=info "$COFFERD" -c "$tmp/server.conf" >>"$tmp/cofferd.log" 2>&1 &
COFFERD_PID=$!
for _ in $(seq 1 100); do
  [ -S "$SOCK" ] && break
  kill -0 "$COFFERD_PID" 2>/dev/null || { wait "$COFFERD_PID" || true; COFFERD_PID=; fail "cofferd exited at start"; }
  sleep 0.1
done
[ -S "$SOCK" ] || fail "cofferd did not create $SOCK within 10 s"
[ -f "$STORE/master.key" ] || fail "cofferd serving the HSM has no master key"
say "cofferd $COFFERD_PID listening on $SOCK"

p11() { pkcs11-tool --module "$M" "$@"; }
p11t() { pkcs11-tool --module "$M" --token-label "$TOKEN" --login --pin "$PIN" "$@"; }
run_ok "init-token" p11 --init-token --label "$TOKEN" --so-pin "$SO_PIN"
run_ok "init-pin as SO" p11 --token-label "$TOKEN" --login --login-type so --so-pin "$SO_PIN" --init-pin --pin "$PIN"
run_fails "a wrong user PIN" p11t --pin 9999 -O
run_ok "EC P-256 key pair" p11t --keypairgen --key-type EC:prime256v1 --id 02 --label auditkey
head -c 32 /dev/urandom >"$tmp/digest"
for i in 1 2; do
  run_ok "ECDSA sign $i" p11t --sign --id 02 --mechanism ECDSA -i "$tmp/digest" -o "$tmp/sig"
done
# refused uses of the key are counted too, per result and client, as successful ones are
for i in 1 2; do
  run_fails "RSA-PKCS with the EC key $i" p11t --sign --id 02 --mechanism RSA-PKCS -i "$tmp/digest" -o "$tmp/sig"
done

# Key uses are counted in memory and written per key 5 s after the last write (by the next use or
# by cofferd's once-a-second tick) and at shutdown: with no further use, the two signatures are in
# the log within seconds while cofferd runs on, and `coffer audit show` reading the store beside
# cofferd changes nothing (it must not take cofferd's WAL away, see store_test).
uses_logged() {
  "$CLI" audit show --event key_use --key auditkey --json --store "$STORE" 2>/dev/null \
    | python3 -c 'import json,re,sys; print(sum(int(re.search(r"count=(\d+)", r["detail"]).group(1)) for r in json.load(sys.stdin) if "result=OK" in r["detail"]))' 2>/dev/null
}
logged=
for _ in $(seq 1 40); do
  [ "$(uses_logged)" = 2 ] && { logged=1; break; }
  sleep 0.25
done
if [ -z "$logged" ]; then
  "$CLI" audit show --store "$STORE" || true
  fail "the two key uses were not in the log 10 s after the last one (cofferd still running)"
fi
ok "key uses reach the log while cofferd runs"
kill -TERM "$COFFERD_PID"
wait "$COFFERD_PID" 2>/dev/null || true
COFFERD_PID=

audit() { "$CLI" audit "$@" --store "$STORE"; }
say "coffer audit show"
run_ok "audit show --json" audit show --json
echo "$out" >"$tmp/all.json"
python3 - "$tmp/all.json" <<'EOF' || fail "the audit log does not list the expected events"
import json, sys
recs = json.load(open(sys.argv[1]))
import re
def matching(event, result=None, label=None):
    return [r for r in recs if r["event"] == event
            and (result is None or ("result=" + result) in r["detail"])
            and (label is None or r["label"] == label)]
def n(event, result=None, label=None):
    if event == "key_use":   # one record per key, operation and client, with its count
        return sum(int(re.search(r"count=(\d+)", r["detail"]).group(1)) for r in matching(event, result, label))
    return len(matching(event, result, label))
checks = {
    "token_init ok": n("token_init", "OK") == 1,
    "pin_change (InitPIN)": n("pin_change", "OK") == 1,
    "a failed login": n("login", "PIN_INCORRECT") == 1,
    "successful logins": n("login", "OK") >= 3,
    "keygen of auditkey": n("keygen", "OK", "auditkey") == 1,
    "two key uses of auditkey": n("key_use", "OK", "auditkey") == 2,
    # each pkcs11-tool run is its own client: one counted record per run
    "two refused uses of auditkey, counted": [re.sub(r"app=\d+ ", "", r["detail"]) for r in recs
                                              if r["event"] == "key_use" and "result=OK" not in r["detail"]]
                                             == ["result=KEY_TYPE_INCONSISTENT op=sign count=1 label=auditkey"] * 2,
    "seq 1..N": [r["seq"] for r in recs] == list(range(1, len(recs) + 1)),
}
bad = [k for k, v in checks.items() if not v]
if bad:
    print(json.dumps(recs, indent=1)); print("missing:", bad); sys.exit(1)
print("[audit]   ok: %d records with the expected events" % len(recs))
EOF
run_ok "audit show --key auditkey --event key_use" audit show --key auditkey --event key_use --json
[ "$(python3 -c 'import json,re,sys; print(sum(int(re.search(r"count=(\d+)", r["detail"]).group(1)) for r in json.load(sys.stdin)))' <<<"$out")" = 4 ] \
  || { echo "$out"; fail "the key filter did not give the 4 key uses (2 refused)"; }
ok "the filters select the 4 key uses (2 refused)"
run_ok "audit show (text)" audit show --event keygen
contains "text output names the key" "auditkey" "$out"

say "coffer audit verify"
run_ok "verify an untouched log" audit verify
contains "intact" "audit log intact: [0-9]+ records" "$out"

cp "$STORE/coffer.db" "$tmp/pristine.db"
for f in "$STORE/coffer.db-wal" "$STORE/coffer.db-shm"; do [ -e "$f" ] && cp "$f" "$tmp/pristine.${f##*.}"; done
restore() {
  cp "$tmp/pristine.db" "$STORE/coffer.db"
  rm -f "$STORE/coffer.db-wal" "$STORE/coffer.db-shm"
  [ -e "$tmp/pristine.db-wal" ] && cp "$tmp/pristine.db-wal" "$STORE/coffer.db-wal"
  true
}
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit(); c.close()' "$STORE/coffer.db" "$1"; }

sql "UPDATE audit SET detail = replace(detail, 'PIN_INCORRECT', 'OK') WHERE detail LIKE '%PIN_INCORRECT%'"
bad=$(python3 -c 'import json,sys; print([r["seq"] for r in json.load(open(sys.argv[1])) if "PIN_INCORRECT" in r["detail"]][0])' "$tmp/all.json")
run_fails "verify after an edit" audit verify
contains "names the edited record" "audit log broken at record $bad: changed" "$out"

restore
sql "DELETE FROM audit WHERE seq = 3"
run_fails "verify after a deletion" audit verify
contains "names the record after the deleted one" "audit log broken at record 4: removed" "$out"

restore
sql "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 5; UPDATE audit SET seq = 5 WHERE seq = -1"
run_fails "verify after a reorder" audit verify
contains "names the moved record" "audit log broken at record 2: reordered" "$out"

restore
run_ok "the restored copy verifies" audit verify
say "done"
