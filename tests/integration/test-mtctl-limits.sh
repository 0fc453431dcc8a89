#!/bin/sh
# test-mtctl-limits.sh: max_job_memory caps a job's memory_limit, through a
# real memtraind and mtctl: a bigger limit (mtctl -m, the spec's
# memory_limit, -m 100000T) is refused at submit naming the key, one at the
# cap is taken, and a job without a limit gets the cap as its limit. Exit
# status is the verdict.
set -eu
daemon_config=$(mktemp /tmp/memtrain-limits.XXXXXX.yaml)
echo "max_job_memory: 64M" >"$daemon_config"
. "$(dirname "$0")/mtctl-daemon.sh"
rm -f "$daemon_config"   # read at the daemon's start

cat >"$dir/s.yaml" <<YAML
dataset: {name: synthetic, synthetic_train: 256, synthetic_test: 64}
model: {input: 16, hidden: [32], classes: 2}
batch: 16
epochs: 1
threads: 1
YAML
{ echo "memory_limit: 2G"; cat "$dir/s.yaml"; } >"$dir/big.yaml"

refused() {   # ARGS...: submit must fail with exit 1, naming the cap
    rc=0; mt submit "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    [ $rc -eq 1 ] || fail "submit $* exited $rc, expected 1: $(cat "$dir/out" "$dir/err")"
    grep -q "more than the 64.00 MiB memtraind allows a job (its max_job_memory)" "$dir/err" ||
        fail "submit $* said: $(cat "$dir/err")"
}
refused -m 2G "$dir/s.yaml"
refused -m 100000T "$dir/s.yaml"
refused "$dir/big.yaml"
[ "$(mt ls --all | grep -c .)" -le 1 ] || fail "a refused job was stored: $(mt ls --all)"

limit_of() { mt --json show "$1" | sed -n 's/.*"memory_limit": *\([0-9]*\).*/\1/p' | head -1; }
out=$(mt submit -m 64M "$dir/s.yaml") || fail "submit -m 64M (the cap): $out"
id=${out#submitted job }
[ "$(limit_of "$id")" = 67108864 ] || fail "job $id's limit is $(limit_of "$id")"
out=$(mt submit "$dir/s.yaml") || fail "submit without a limit: $out"
id=${out#submitted job }
[ "$(limit_of "$id")" = 67108864 ] ||
    fail "a job without a limit got $(limit_of "$id"), expected the cap 67108864"
# An AddressSanitizer worker maps terabytes of shadow: no job with a
# memory limit starts under it (test-limits.c skips the same way).
if ldd "$MEMTRAIN_WORKER" 2>/dev/null | grep -q libasan; then
    echo "ASan build: the run under the cap is not checked (RLIMIT_DATA and its shadow memory)"
else
    mt wait "$id" >/dev/null || fail "job $id under the cap did not complete: $(mt logs "$id")"
fi
echo "ok: max_job_memory refuses bigger limits and is the default"
