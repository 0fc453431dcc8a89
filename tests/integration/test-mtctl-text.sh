#!/bin/sh
# test-mtctl-text.sh: how mtctl words what it prints, through a real
# memtraind: times with their zone (show, logs -t, metrics --memory, ckpt
# ls), "1 epoch" for one, one learning-rate format (the spec, the last
# epoch, the metrics table, watch), queue reasons without nested
# parentheses, and one progress-bar style in the live view (under a pty).
# Exit status is the verdict.
set -eu
export TZ=UTC
. "$(dirname "$0")/mtctl-daemon.sh"

cat >"$dir/one.yaml" <<YAML
name: one
dataset: {name: synthetic, synthetic_train: 512, synthetic_test: 64}
model: {input: 16, hidden: [32], classes: 2}
optimizer: {name: sgd, lr: 0.00123456}
batch: 16
epochs: 1
checkpoint_every: 1
threads: 1
YAML
cat >"$dir/long.yaml" <<YAML
name: long
dataset: {name: synthetic, synthetic_train: 20000, synthetic_test: 256}
model: {input: 64, hidden: [256, 256], classes: 4}
optimizer: {name: sgd, lr: 0.00123456}
schedule: {name: step, warmup_epochs: 1, step_epochs: 1}
batch: 32
epochs: 20
threads: 1
YAML
submit() { out=$(mt submit "$@") || fail "submit $*: $out"; echo "${out#submitted job }"; }

a=$(submit "$dir/one.yaml")
mt wait "$a" >/dev/null || fail "job $a did not complete"
mt show "$a" >"$dir/show.txt"
grep -q "COMPLETED: trained 1 epoch\$" "$dir/show.txt" || fail "show: $(cat "$dir/show.txt")"
grep -q "every 1 epoch\$" "$dir/show.txt" || fail "show's checkpoints: $(grep checkp "$dir/show.txt")"
if grep -q " 1 epochs" "$dir/show.txt"; then fail "show says '1 epochs'"; fi
for what in submitted started finished; do
    grep -Eq "^  $what +20[0-9-]{8} [0-9:]{8} UTC" "$dir/show.txt" ||
        fail "show's $what time has no zone: $(grep "$what" "$dir/show.txt")"
done
mt logs -t "$a" | grep -Eqv "^20[0-9-]{8} [0-9:]{8} UTC " && fail "logs -t: $(mt logs -t "$a")"
mt metrics --memory "$a" | grep -Eq "[0-9:]{8} UTC" || fail "metrics --memory: no zone"
mt ckpt ls "$a" | grep -Eq "[0-9:]{8} UTC" || fail "ckpt ls: $(mt ckpt ls "$a")"
# The learning rate, one way: 4 significant digits.
grep -q "lr 0.001235 " "$dir/show.txt" || fail "show's spec lr: $(grep lr "$dir/show.txt")"
grep -q "lr 0.001235\$" "$dir/show.txt" || fail "show's last epoch lr: $(grep lr "$dir/show.txt")"
mt metrics "$a" | grep -q " 0.001235 " || fail "metrics lr: $(mt metrics "$a")"

# One slot: b runs, c waits for the slot, d waits behind c.
# Job b runs under a limit, for the live view's limit bar; an AddressSanitizer
# worker cannot start under one (its shadow memory), so there b has none.
asan=; ldd "$MEMTRAIN_WORKER" 2>/dev/null | grep -q libasan && asan=1
if [ -n "$asan" ]; then b=$(submit "$dir/long.yaml"); else b=$(submit -m 1G "$dir/long.yaml"); fi
c=$(submit "$dir/long.yaml")
d=$(submit "$dir/long.yaml")
mt show "$c" >"$dir/c.txt"
grep -q "warm-up 1 epoch, x0.1 every 1 epoch" "$dir/c.txt" || fail "schedule: $(grep cosine\\\|step "$dir/c.txt")"
mt ls >"$dir/ls.txt"
grep -q "behind job $c, which is waiting for a free slot, 1 of 1 in use" "$dir/ls.txt" ||
    fail "ls: $(cat "$dir/ls.txt")"
if grep -q "([^)]*(" "$dir/ls.txt"; then fail "nested parentheses in ls: $(cat "$dir/ls.txt")"; fi

# The live view of the running job under a pseudo-terminal: every bar is
# "[" 20 cells "]" and a percent.
i=0
until mt show "$b" | grep -q RUNNING; do
    i=$((i + 1)); [ $i -lt 400 ] || fail "job $b never ran"; sleep 0.05
done
script -qec "\"$MTCTL\" --socket \"$sock\" watch $b" /dev/null >"$dir/live.txt" 2>&1 &
s=$!
sleep 2.5
kill -INT $s 2>/dev/null || true
wait $s 2>/dev/null || true
mt cancel "$b" "$c" "$d" >/dev/null 2>&1 || true
tr '\r' '\n' <"$dir/live.txt" >"$dir/live.lines"
grep -Eq '\[[#-]{20}\] +[0-9]+%  step' "$dir/live.lines" || fail "no epoch bar: $(head -c 2000 "$dir/live.lines")"
[ -n "$asan" ] || grep -Eq 'limit .*\[[#-]{20}\] +[0-9]+% of it at the peak' "$dir/live.lines" ||
    fail "no limit bar: $(head -c 2000 "$dir/live.lines")"
if grep -E '\[[#-]+\]' "$dir/live.lines" | grep -Evq '\[[#-]{20}\] +[0-9]+%'; then
    fail "another bar style: $(grep -E '\[[#-]+\]' "$dir/live.lines" | head -3)"
fi
# (the first epoch's line, when it came within the time: 4 digits too)
grep -Eo 'lr [0-9.e+-]+' "$dir/live.lines" | awk '{ if (sprintf("%.4g", $2) != $2) bad = $2 }
    END { if (bad != "") { print "watch prints lr " bad; exit 1 } }' || fail "watch's lr"
echo "ok: times with zones, plurals, lr, queue reasons, progress bars"
