#!/bin/sh
# test-mtctl-follow.sh: following a job through a real memtraind and mtctl.
# Ctrl-C in `watch` and `submit --follow` says the job goes on and exits
# 130; `wait --timeout` exits 124; `wait` keeps waiting across a daemon
# restart (the job resumes by itself) and ends with the job's real end,
# while `wait --no-reconnect` ends with INTERRUPTED (13). Exit status is
# the verdict.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"

cat >"$dir/a.yaml" <<YAML
name: follow
dataset: {name: synthetic, synthetic_train: 20000, synthetic_test: 256}
model: {input: 64, hidden: [256, 256], classes: 4}
batch: 32
epochs: 10
threads: 1
YAML

start_daemon() {
    "$MEMTRAIN_DAEMON" --socket "$sock" --db "$db" --slots 1 2>>"$dir/daemon.log" &
    daemon=$!
    i=0
    until mt ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 200 ] || fail "daemon did not answer ping"; sleep 0.05
    done
}
until_running() {
    i=0
    until mt show "$1" | grep -q RUNNING; do
        i=$((i + 1)); [ $i -lt 400 ] || fail "job $1 never ran"; sleep 0.05
    done
}
# SIGINT to mtctl ($1, started as "$MTCTL" &: `mt ... &` would be a
# subshell) once it follows the job (it printed the job's state
# in $2: a shell without job control starts it with SIGINT ignored, until
# it sets its handler); its exit status in $rc.
interrupt() {
    i=0
    until grep -q "^job [0-9]*: " "$2"; do
        i=$((i + 1)); [ $i -lt 400 ] || fail "mtctl printed nothing in $2"; sleep 0.05
    done
    kill -INT "$1"
    rc=0; wait "$1" || rc=$?
}

# submit --follow, Ctrl-C: the job goes on.
"$MTCTL" --socket "$sock" submit --follow "$dir/a.yaml" >"$dir/sub.out" 2>"$dir/sub.err" &
interrupt $! "$dir/sub.out"
id=$(sed -n 's/^submitted job \([0-9]*\).*/\1/p' "$dir/sub.out")
[ -n "$id" ] || fail "no job id: $(cat "$dir/sub.out")"
[ "$rc" -eq 130 ] || fail "submit --follow exited $rc after SIGINT, expected 130"
grep -qx "stopped following job $id; it keeps running (mtctl cancel $id)" "$dir/sub.err" ||
    fail "submit --follow after SIGINT said: $(cat "$dir/sub.err")"

# watch, Ctrl-C, once the job runs.
until_running "$id"
"$MTCTL" --socket "$sock" watch "$id" >"$dir/watch.out" 2>"$dir/watch.err" &
interrupt $! "$dir/watch.out"
[ "$rc" -eq 130 ] || fail "watch exited $rc after SIGINT, expected 130"
grep -qx "stopped following job $id; it keeps running (mtctl cancel $id)" "$dir/watch.err" ||
    fail "watch after SIGINT said: $(cat "$dir/watch.err")"
mt show "$id" | grep -q RUNNING || fail "job $id is not running after the Ctrl-C"

# wait --timeout: 124, and the job goes on.
rc=0; mt wait --timeout 0.3s "$id" >/dev/null 2>"$dir/to.err" || rc=$?
[ $rc -eq 124 ] || fail "wait --timeout 0.3s exited $rc, expected 124: $(cat "$dir/to.err")"
grep -q "still RUNNING after --timeout" "$dir/to.err" || fail "wait --timeout said: $(cat "$dir/to.err")"
rc=0; mt wait --timeout 5parsecs "$id" 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "wait --timeout 5parsecs exited $rc, expected 2"

# A daemon restart under two waits.
mt wait "$id" >"$dir/w.out" 2>"$dir/w.err" &
w=$!
mt wait --no-reconnect "$id" >"$dir/nr.out" 2>"$dir/nr.err" &
nr=$!
sleep 0.3
kill -TERM "$daemon"
wait "$daemon" || fail "memtraind exited $? on SIGTERM"
rc=0; wait $nr || rc=$?
[ $rc -eq 13 ] || fail "wait --no-reconnect exited $rc, expected 13: $(cat "$dir/nr.out" "$dir/nr.err")"
grep -q "INTERRUPTED" "$dir/nr.out" || fail "wait --no-reconnect said: $(cat "$dir/nr.out")"
kill -0 $w 2>/dev/null || fail "wait ended with the daemon: $(cat "$dir/w.out" "$dir/w.err")"
start_daemon
rc=0; wait $w || rc=$?
[ $rc -eq 0 ] || fail "wait across the restart exited $rc: $(cat "$dir/w.out" "$dir/w.err")"
grep -q "^job $id: COMPLETED" "$dir/w.out" || fail "wait printed: $(cat "$dir/w.out")"
grep -q "memtraind stopped (job $id is INTERRUPTED); waiting for it to start again" "$dir/w.err" ||
    fail "wait did not say it waits for memtraind: $(cat "$dir/w.err")"
mt logs "$id" | grep -qi "resum" || fail "job $id did not resume: $(mt logs "$id")"
echo "ok: Ctrl-C, --timeout and a restart under wait"
