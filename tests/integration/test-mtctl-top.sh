#!/bin/sh
# test-mtctl-top.sh: `mtctl top` (one table, refreshed, piped lines, JSON
# lines, on a terminal), the watch's ETA and rule figures, and the
# conventions people type: aliases and "did you mean", cancel ID..., logs
# --tail, ls's ELAPSED column, --no-headers, -o wide|name|csv, and usage
# errors as JSON under -o json. A real memtraind with one slot. Exit status
# is the verdict.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"

# quick: done in a blink; tinyfoa, so its epochs carry the rule's stage
cat >"$dir/quick.yaml" <<YAML
name: quick
dataset: {name: synthetic, synthetic_train: 512, synthetic_test: 64}
model: {input: 8, hidden: [16], classes: 4}
rule: tinyfoa
batch: 32
epochs: 3
threads: 1
YAML
# long: runs while the others queue behind it (cancelled below)
cat >"$dir/long.yaml" <<YAML
name: long
dataset: {name: synthetic, synthetic_train: 8192, synthetic_test: 64}
model: {input: 64, hidden: [256, 256], classes: 4}
batch: 32
epochs: 200
threads: 1
YAML

# ---- the watch (piped): an ETA after every epoch but the last, the rule's figures
mt submit --follow "$dir/quick.yaml" >"$dir/follow.txt" || fail "submit --follow: $(cat "$dir/follow.txt")"
grep -q 'epoch 1/3:.*stage [0-9].*, ETA [0-9]' "$dir/follow.txt" || fail "no ETA or stage: $(cat "$dir/follow.txt")"
grep -q 'epoch 2/3:.*, ETA [0-9]' "$dir/follow.txt" || fail "no ETA after epoch 2: $(cat "$dir/follow.txt")"
if grep -q 'epoch 3/3:.*ETA' "$dir/follow.txt"; then fail "an ETA after the last epoch"; fi

mt submit "$dir/long.yaml" >/dev/null || fail "submit long"
mt submit -n waiting "$dir/quick.yaml" >/dev/null || fail "submit queued"
i=0
until mt ls -s running -o name | grep -qx 2; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "job 2 did not start"; sleep 0.05
done

# ---- top --once, piped: running first, then queued, then the rest
mt top --once >"$dir/top.txt" || fail "top --once: $(cat "$dir/top.txt")"
grep -q '3 jobs: 1 running, 1 queued, 1 finished' "$dir/top.txt" || fail "top's summary: $(cat "$dir/top.txt")"
sed -n 2p "$dir/top.txt" | grep -q '^ID  *NAME  *STATE  *EPOCH  *PROGRESS  *ETA  *TEST-ACC  *MEMORY  *RATE$' ||
    fail "top's header: $(cat "$dir/top.txt")"
order=$(sed -n '3,$p' "$dir/top.txt" | awk '{print $1 ":" $3}' | tr '\n' ' ')
[ "$order" = "2:RUNNING 3:QUEUED 1:COMPLETED " ] || fail "top's rows: $order"
grep -q '^ *1 .*########## 100%' "$dir/top.txt" || fail "job 1's progress: $(cat "$dir/top.txt")"
[ "$(mt top --once -o name | tr '\n' ' ')" = "2 3 1 " ] || fail "top -o name"
mt top --once -o wide | sed -n 2p | grep -q 'RULE  *OWNER .*ELAPSED' || fail "top -o wide"
mt top --once --no-headers | grep -q '^ID' && fail "top --no-headers printed a header"

# ---- top -o json, once job 2 has an epoch: the ETA and figures
i=0
until mt top --once -o json >"$dir/top.json" && grep -q '"id":2,[^}]*"epochs_done":[1-9]' "$dir/top.json"; do
    i=$((i + 1)); [ $i -lt 300 ] || fail "job 2 did no epoch: $(cat "$dir/top.json")"; sleep 0.1
done
/usr/bin/python3 - "$dir/top.json" <<'PY' || fail "top -o json: $(cat "$dir/top.json")"
import json, sys
doc = json.loads(open(sys.argv[1]).read())
assert doc["schema_version"] == 1 and doc["time"] > 0
jobs = {j["id"]: j for j in doc["jobs"]}
done, run, queued = jobs[1], jobs[2], jobs[3]
assert done["state"] == "COMPLETED" and done["progress"] == 1 and done["eta_seconds"] == 0
assert done["test_accuracy"] is not None and done["peak_bytes"] > 0, done
assert done["samples_per_second"] > 0, done
assert run["state"] == "RUNNING" and 0 < run["progress"] < 1, run
# ETA: the run so far per epoch done times the epochs left (both figures
# from one clock reading)
per = run["elapsed_seconds"] / run["epochs_done"]
left = run["epochs"] - run["epochs_done"]
assert run["eta_seconds"] > 0 and abs(run["eta_seconds"] - per * left) <= 1e-6 * per * left, run
assert queued["state"] == "QUEUED" and queued["eta_seconds"] is None, queued
assert queued["elapsed_seconds"] is None and queued["test_accuracy"] is None, queued
PY

# ---- top refreshing: piped, a table per refresh; stopped by a signal, status 0
rc=0
timeout --preserve-status -s TERM 1.6 "$MTCTL" --socket "$sock" top -d 0.5 >"$dir/frames.txt" || rc=$?
[ $rc -eq 0 ] || fail "top ended with $rc on SIGTERM"
frames=$(grep -c '^ID ' "$dir/frames.txt")
[ "$frames" -ge 2 ] || fail "top refreshed $frames times in 1.6 s: $(cat "$dir/frames.txt")"
if command -v script >/dev/null 2>&1; then
    script -qec "stty rows 30 cols 120; timeout --preserve-status -s TERM 1.2 \"$MTCTL\" --socket \"$sock\" top -d 0.5" \
        /dev/null >"$dir/tty.txt" 2>&1 || true
    [ "$(grep -ac "$(printf '\033\\[H')" "$dir/tty.txt")" -ge 1 ] || fail "top on a terminal did not redraw"
    [ "$(tr -d '\r' <"$dir/tty.txt" | grep -ac '3 jobs:')" -ge 2 ] || fail "top on a terminal: $(cat "$dir/tty.txt")"
fi

# ---- ls: ELAPSED, --no-headers, -o name|wide|csv
mt ls >"$dir/ls.txt" || fail "ls"
sed -n 1p "$dir/ls.txt" | grep -q ' AGE  *ELAPSED  *NOTE$' || fail "ls has no ELAPSED: $(cat "$dir/ls.txt")"
# the values from the CSV (its 13th column), where a size's space splits nothing
mt ls -o csv >"$dir/ls.csv" || fail "ls -o csv"
awk -F, '$1 == 3 && $13 == "-" {ok = 1} END {exit !ok}' "$dir/ls.csv" || fail "queued job's ELAPSED: $(cat "$dir/ls.csv")"
awk -F, '$1 == 1 && $13 ~ /^[0-9]+s$/ {ok = 1} END {exit !ok}' "$dir/ls.csv" || fail "job 1's ELAPSED: $(cat "$dir/ls.csv")"
awk -F, '$1 == 2 && $13 ~ /^[0-9]+s$/ {ok = 1} END {exit !ok}' "$dir/ls.csv" || fail "job 2's ELAPSED: $(cat "$dir/ls.csv")"
mt ls --no-headers | grep -q '^ID' && fail "ls --no-headers printed a header"
[ "$(mt ls -o name | tr '\n' ' ')" = "3 2 1 " ] || fail "ls -o name"
mt ls -o wide | sed -n 1p | grep -q 'PRIORITY  *PLANNED  *LIMIT' || fail "ls -o wide"
mt ls -o csv | sed -n 1p | grep -q '^ID,NAME,OWNER,STATE,RULE,EPOCH,TEST-ACC,PEAK,PRIORITY,PLANNED,LIMIT,AGE,ELAPSED,NOTE,GROUP$' ||
    fail "ls -o csv header: $(mt ls -o csv | head -1)"
[ "$(mt ls -o csv --no-headers | wc -l)" -eq 3 ] || fail "ls -o csv --no-headers"
out=$(mt ping -o wide 2>&1) && fail "ping -o wide was accepted"
echo "$out" | grep -q 'json or text' || fail "ping -o wide: $out"

# ---- aliases and "did you mean"
[ "$(mt list -o name | tr '\n' ' ')" = "3 2 1 " ] || fail "list"
[ "$(mt ps -o name | tr '\n' ' ')" = "3 2 1 " ] || fail "ps"
[ "$(mt get -o name | tr '\n' ' ')" = "3 2 1 " ] || fail "get"
[ "$(mt get -s completed -o name)" = 1 ] || fail "get -s completed: an option's value taken for an ID"
[ "$(mt get 1 -o name)" = 1 ] || fail "get ID"
mt describe 1 | grep -q '^job 1  quick' || fail "describe"
rc=0; out=$(mt lss 2>&1) || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "did you mean 'mtctl ls'" || fail "lss: $rc $out"
if ! mt help rm >/dev/null 2>&1; then   # without rm, delete points at cancel
    rc=0; out=$(mt delete 1 2>&1) || rc=$?
    [ $rc -eq 2 ] && echo "$out" | grep -q "did you mean 'mtctl cancel'" || fail "delete: $rc $out"
fi

# ---- usage errors as JSON under -o json, wherever -o json stands
for args in "ls --bogus -o json" "-o json ls --bogus" "--json frobnicate" "top -d 0 --json"; do
    rc=0
    # shellcheck disable=SC2086
    mt $args >"$dir/err.json" 2>/dev/null || rc=$?
    [ $rc -eq 2 ] || fail "$args: exit $rc"
    /usr/bin/python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert e["status"] == "USAGE" and e["exit_code"] == 2 and e["message"], e
' "$dir/err.json" || fail "$args: not a JSON error: $(cat "$dir/err.json")"
done

# ---- logs --tail
mt logs 1 >"$dir/logs.txt" || fail "logs"
[ "$(wc -l <"$dir/logs.txt")" -ge 2 ] || fail "job 1 has under 2 log lines: $(cat "$dir/logs.txt")"
[ "$(mt logs --tail 1 1)" = "$(tail -n 1 "$dir/logs.txt")" ] || fail "logs --tail 1"
[ "$(mt logs -n 2 1)" = "$(tail -n 2 "$dir/logs.txt")" ] || fail "logs -n 2"
[ -z "$(mt logs --tail 0 1)" ] || fail "logs --tail 0"
[ "$(mt logs --tail 1 -f 1)" = "$(tail -n 1 "$dir/logs.txt")" ] || fail "logs --tail 1 -f"
[ "$(mt logs --tail 100 1)" = "$(cat "$dir/logs.txt")" ] || fail "logs --tail 100"

# ---- cancel ID...: every job is tried, the first failure's status
rc=0; mt cancel 999 3 2 >"$dir/cancel.txt" 2>"$dir/cancel.err" || rc=$?
[ $rc -eq 4 ] || fail "cancel 999 3 2 exited $rc"
grep -q '^job 3: CANCELLED' "$dir/cancel.txt" || fail "job 3 not cancelled: $(cat "$dir/cancel.txt")"
grep -q '^job 2: ' "$dir/cancel.txt" || fail "job 2 not tried: $(cat "$dir/cancel.txt")"
mt wait 2 >/dev/null 2>&1 || true
[ "$(mt ls -s cancelled -o name | tr '\n' ' ')" = "3 2 " ] || fail "cancelled: $(mt ls)"
# on a terminal, the live view has a line of the rule's figures
if command -v script >/dev/null 2>&1; then
    script -qec "stty rows 40 cols 120; \"$MTCTL\" --socket \"$sock\" submit --follow \"$dir/quick.yaml\"" \
        /dev/null >"$dir/live.txt" 2>&1 || fail "submit --follow on a terminal: $(cat "$dir/live.txt")"
    tr -d '\r' <"$dir/live.txt" | grep -aq '^rule tinyfoa  stage [0-9]' ||
        fail "no rule line in the live view: $(cat "$dir/live.txt")"
fi

# ---- labels: stored with the job, shown, selected by; checked by the daemon
mt submit -l team=vision --label exp=a1 "$dir/quick.yaml" >/dev/null || fail "submit --label"
mt submit -l team=nlp "$dir/quick.yaml" >/dev/null || fail "submit --label team=nlp"
last=$(mt ls -n 1 -o name)
mt wait "$last" >/dev/null || fail "wait $last"
[ "$(mt ls -l team=vision -o name)" = $((last - 1)) ] || fail "ls -l team=vision: $(mt ls -l team=vision -o name)"
[ "$(mt ls -l team=nlp -o name)" = "$last" ] || fail "ls -l team=nlp"
[ "$(mt top --once -l team=nlp -o name)" = "$last" ] || fail "top -l team=nlp"
[ "$(mt ls -l team=vision -l exp=a1 -o name)" = $((last - 1)) ] || fail "ls -l with two labels"
[ -z "$(mt ls -l team=vision -l exp=b2 -o name)" ] || fail "ls -l matched a wrong value"
[ -z "$(mt ls -l team=visio -o name)" ] || fail "ls -l matched a prefix"
mt show $((last - 1)) | grep -q '^  labels  *team=vision exp=a1$' || fail "show: $(mt show $((last - 1)))"
mt --json show $((last - 1)) | grep -q '"labels":{"team":"vision","exp":"a1"}' || fail "show --json labels"
long=$(head -c 64 /dev/zero | tr '\0' a)
for bad in "bad key=x" "-x=1" "k=a b" "k=$long" "$long=v"; do
    rc=0; out=$(mt submit -l "$bad" "$dir/quick.yaml" 2>&1) || rc=$?
    [ $rc -eq 1 ] && echo "$out" | grep -q 'label' || fail "label '$bad' accepted or wrong error: $rc $out"
done
rc=0; out=$(mt submit -l k=1 -l k=2 "$dir/quick.yaml" 2>&1) || rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q 'given twice' || fail "a key twice: $rc $out"
set --
for i in $(seq 17); do set -- "$@" -l "k$i=v"; done
rc=0; out=$(mt submit "$@" "$dir/quick.yaml" 2>&1) || rc=$?
[ $rc -eq 2 ] || fail "17 labels: $rc $out"
rc=0; out=$(mt submit -l novalue "$dir/quick.yaml" 2>&1) || rc=$?
[ $rc -eq 2 ] || fail "a label without '=': $rc $out"
echo "PASS"
