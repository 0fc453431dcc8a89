# mtctl-daemon.sh, sourced by the mtctl shell tests: a real memtraind on a
# temporary socket and database ($dir, $sock, $db, $daemon), stopped and
# removed on exit; fail MESSAGE (prints the daemon's log, exits 1) and
# mt ARGS (mtctl on that socket); returns once the daemon answers ping.
# A test that sets $daemon_config (a file) before sourcing this gets a
# daemon started with --config on it.
: "${MEMTRAIN_DAEMON:?}" "${MTCTL:?}"
dir=$(mktemp -d /tmp/memtrain-mtctl.XXXXXX)
sock=$dir/d.sock
db=$dir/state.db
"$MEMTRAIN_DAEMON" --socket "$sock" --db "$db" --slots 1 ${daemon_config:+--config "$daemon_config"} \
    2>"$dir/daemon.log" &
daemon=$!
cleanup() {
    kill -TERM $daemon 2>/dev/null || true
    wait $daemon 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- daemon log" >&2
    cat "$dir/daemon.log" >&2
    exit 1
}
mt() { "$MTCTL" --socket "$sock" "$@"; }

i=0
until mt ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "daemon did not answer ping"; sleep 0.05
done
