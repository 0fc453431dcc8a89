#!/bin/sh
# test-mtctl-socket.sh: where mtctl finds memtraind without --socket, and
# what it says when it cannot. In a private mount namespace (its own /tmp
# and /run, so the real ones are untouched): a daemon started without
# XDG_RUNTIME_DIR (su, cron) listens in /tmp/memtrain-UID/ and mtctl finds
# it there, with or without XDG_RUNTIME_DIR; a /tmp/memtrain-UID that is not
# the user's own is not used; a system socket in a 0750 directory of
# another group is reported as closed to the user, with the group to join
# (and "log in again" when the user database has the user in it already),
# and reached once the user has the group. Needs root (the namespace, the
# second user); skips otherwise. Exit status is the verdict.
set -eu
: "${MEMTRAIN_DAEMON:?}" "${MTCTL:?}"
if [ -z "${MT_SOCKET_TEST_NS:-}" ]; then
    if [ "$(id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
        echo "SKIP: needs root and unshare -m (a private /tmp and /run)"
        exit 77
    fi
    MT_SOCKET_TEST_NS=1 exec unshare -m --propagation private sh "$0" "$@"
fi
# The programs under test may live under /tmp (a clone there): keep the
# real /tmp reachable at /mnt, in this namespace only, and run them from it.
case "$MEMTRAIN_DAEMON $MTCTL ${MEMTRAIN_WORKER:-}" in
*/tmp/*)
    mkdir -p /mnt
    mount --bind /tmp /mnt
    MEMTRAIN_DAEMON=$(echo "$MEMTRAIN_DAEMON" | sed 's|^/tmp/|/mnt/|')
    MTCTL=$(echo "$MTCTL" | sed 's|^/tmp/|/mnt/|')
    [ -z "${MEMTRAIN_WORKER:-}" ] || MEMTRAIN_WORKER=$(echo "$MEMTRAIN_WORKER" | sed 's|^/tmp/|/mnt/|')
    export MEMTRAIN_WORKER
    ;;
esac
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
work=$(mktemp -d /tmp/work.XXXXXX)
chmod 0755 "$work"
unset MEMTRAIN_SOCKET XDG_RUNTIME_DIR
daemon=
stop_daemon() {
    if [ -n "$daemon" ]; then
        kill -TERM "$daemon" 2>/dev/null || true
        wait "$daemon" 2>/dev/null || true
    fi
    daemon=
}
trap stop_daemon EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/d*.log; do
        [ -f "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
    done
    exit 1
}
# start_daemon LOG [ARGS...]: memtraind in the background, until its socket
# ($1 of the remaining args after --socket, or the default) answers.
start_daemon() {
    log=$1 sockfile=$2; shift 2
    "$MEMTRAIN_DAEMON" --db "$work/state.db" --slots 1 "$@" 2>"$work/$log" &
    daemon=$!
    i=0
    until [ -S "$sockfile" ] && "$MTCTL" --socket "$sockfile" ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 200 ] || fail "daemon did not answer on $sockfile"; sleep 0.05
    done
}
NOBODY=65534
as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$@"; }

# 1. No XDG_RUNTIME_DIR: the daemon's default is /tmp/memtrain-0/, and
# mtctl finds it there, also from a session that has XDG_RUNTIME_DIR.
start_daemon d1.log /tmp/memtrain-0/memtraind.sock
out=$("$MTCTL" ping 2>&1) || fail "ping without XDG_RUNTIME_DIR: $out"
mkdir -p "$work/xdg"
out=$(XDG_RUNTIME_DIR=$work/xdg "$MTCTL" ping 2>&1) ||
    fail "ping with an XDG_RUNTIME_DIR and no daemon there: $out"
stop_daemon

# Nothing listens: exit 3, naming every place looked at.
rc=0; out=$(XDG_RUNTIME_DIR=$work/xdg "$MTCTL" ping 2>&1) || rc=$?
[ $rc -eq 3 ] || fail "ping with no daemon exited $rc: $out"
echo "$out" | grep -q "no memtraind socket at $work/xdg/memtrain/memtraind.sock, /tmp/memtrain-0/memtraind.sock or /run/memtraind/memtraind.sock" ||
    fail "ping with no daemon does not list the places: $out"

# 2. A /tmp/memtrain-65534 made by someone else (here root) is not the
# user's: mtctl as uid 65534 must not talk to what listens there.
mkdir -m 0755 /tmp/memtrain-$NOBODY
start_daemon d2.log /tmp/memtrain-$NOBODY/memtraind.sock \
    --socket /tmp/memtrain-$NOBODY/memtraind.sock
chmod 0666 /tmp/memtrain-$NOBODY/memtraind.sock
rc=0; out=$(as_nobody "$MTCTL" ping 2>&1) || rc=$?
[ $rc -eq 3 ] || fail "uid $NOBODY used a /tmp/memtrain-$NOBODY it does not own ($rc): $out"
echo "$out" | grep -q "(/tmp/memtrain-$NOBODY/memtraind.sock was not used: its directory is not yours alone)" ||
    fail "ping as uid $NOBODY does not say why /tmp/memtrain-$NOBODY was not used: $out"
stop_daemon
rm -rf /tmp/memtrain-$NOBODY

# 3. The system socket in a 0750 directory of a group the user is not in.
group=daemon
gid=$(getent group $group | cut -d: -f3) || fail "no group $group"
mkdir -m 0750 /run/memtraind
chgrp $group /run/memtraind
start_daemon d3.log /run/memtraind/memtraind.sock --socket /run/memtraind/memtraind.sock
chgrp $group /run/memtraind/memtraind.sock
mkdir -m 0700 "$work/nobody-xdg"
chown $NOBODY "$work/nobody-xdg"
for xdg in "" "$work/nobody-xdg"; do
    rc=0; out=$(XDG_RUNTIME_DIR=$xdg as_nobody "$MTCTL" ping 2>&1) || rc=$?
    [ $rc -eq 3 ] || fail "ping as uid $NOBODY (XDG_RUNTIME_DIR='$xdg') exited $rc: $out"
    echo "$out" | grep -q "the socket /run/memtraind/memtraind.sock exists, but its directory /run/memtraind (mode 0750, group $group) is closed to you; your user must be in the group $group" ||
        fail "ping as uid $NOBODY (XDG_RUNTIME_DIR='$xdg') does not say why: $out"
done
# The same with --socket, and with -o json (the message in the document).
out=$(as_nobody "$MTCTL" --socket /run/memtraind/memtraind.sock --json ping 2>/dev/null) || true
echo "$out" | grep -q '"message":"cannot reach memtraind: the socket .* must be in the group daemon' ||
    fail "ping --json as uid $NOBODY: $out"
# With the group in its session, the user gets through.
out=$(setpriv --reuid=$NOBODY --regid=$NOBODY --groups=$gid "$MTCTL" ping 2>&1) ||
    fail "ping as uid $NOBODY in group $group: $out"
# A user whose entry in the user database has the group, in a session
# started before (setpriv --clear-groups): log in again.
member=$(getent group | awk -F: '$4 != "" { split($4, m, ","); print $1, m[1]; exit }')
if [ -n "$member" ]; then
    mgroup=${member% *} muser=${member#* }
    chgrp "$mgroup" /run/memtraind
    rc=0; out=$(setpriv --reuid="$muser" --regid=$NOBODY --clear-groups "$MTCTL" ping 2>&1) || rc=$?
    [ $rc -eq 3 ] || fail "ping as $muser exited $rc: $out"
    echo "$out" | grep -q "your user $muser is in the group $mgroup, but this login session is not yet: log in again" ||
        fail "ping as $muser (in $mgroup, not in this session) does not say log in again: $out"
    chgrp $group /run/memtraind
else
    echo "no user is a listed member of a group: the log-in-again case is not run"
fi
# 4. The directory open, the socket (0660, group root) closed.
chmod 0755 /run/memtraind
chgrp root /run/memtraind/memtraind.sock
rc=0; out=$(as_nobody "$MTCTL" ping 2>&1) || rc=$?
[ $rc -eq 3 ] || fail "ping as uid $NOBODY of a 0660 socket exited $rc: $out"
echo "$out" | grep -q "the socket /run/memtraind/memtraind.sock (mode 0660, group root) is closed to you; your user must be in the group root" ||
    fail "ping of a closed socket does not say why: $out"
stop_daemon
echo "mtctl socket discovery: ok"
