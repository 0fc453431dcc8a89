#!/bin/sh
# test-mtctl-tidy.sh: mtctl rm, prune, ckpt rm and df through a real
# memtraind: an MLP and a layer-list (conv) job, three checkpoints each;
# df shows both by kind, as text and JSON; ckpt rm and prune
# --keep-checkpoints thin checkpoints out; a dry run removes nothing; rm
# prints the bytes freed and the database file shrinks; usage mistakes exit
# 2. Exit status is the verdict.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"

cat >"$dir/mlp.yaml" <<YAML
name: mlp
dataset: {name: synthetic, synthetic_train: 2048, synthetic_test: 64}
model: {input: 32, hidden: [256, 256], classes: 4}
batch: 32
epochs: 3
threads: 1
checkpoint_every: 1
YAML
cat >"$dir/conv.yaml" <<YAML
name: conv
dataset: {name: synthetic, synthetic_train: 512, synthetic_test: 64}
model:
  input: [1, 8, 8]
  classes: 4
  layers:
    - conv: {channels: 4, kernel: 3, padding: 1}
    - relu
    - maxpool: 2
    - flatten
    - dense: 4
batch: 32
epochs: 3
threads: 1
checkpoint_every: 1
YAML

id_of() { sed -n 's/^submitted job \([0-9]*\).*/\1/p'; }
m=$(mt submit "$dir/mlp.yaml" | id_of)
c=$(mt submit "$dir/conv.yaml" | id_of)
[ -n "$m" ] && [ -n "$c" ] || fail "no job ids"
mt wait "$m" >/dev/null || fail "job $m did not complete"
mt wait "$c" >/dev/null || fail "job $c did not complete"

# df: a row per job, a total, the file; JSON with the kinds.
mt df >"$dir/df.txt" || fail "df: $(cat "$dir/df.txt")"
grep -q "^ *$m  mlp .*COMPLETED" "$dir/df.txt" || fail "df lacks job $m: $(cat "$dir/df.txt")"
grep -q "^ *$c  conv .*COMPLETED" "$dir/df.txt" || fail "df lacks job $c: $(cat "$dir/df.txt")"
grep -q "total" "$dir/df.txt" || fail "df has no total"
grep -q "^store file .* in use" "$dir/df.txt" || fail "df has no file line"
mt -o json df >"$dir/df.json" || fail "df -o json"
for key in '"schema_version":1' '"by_kind":{' '"memory_samples":' '"checkpoints":3' \
           '"free_bytes":' '"file_bytes":'; do
    grep -q "$key" "$dir/df.json" || fail "df JSON lacks $key: $(cat "$dir/df.json")"
done

# ckpt rm of one epoch of the conv job, then of one it lacks (exit 4).
mt ckpt rm "$c" 1 >"$dir/ck.txt" || fail "ckpt rm: $(cat "$dir/ck.txt")"
grep -q "^removed 1 checkpoint of job $c (epoch 1): " "$dir/ck.txt" || fail "ckpt rm: $(cat "$dir/ck.txt")"
grep -q " freed: the database went from " "$dir/ck.txt" || fail "ckpt rm: no bytes freed"
rc=0; mt ckpt rm "$c" 1 2>/dev/null || rc=$?
[ $rc -eq 4 ] || fail "ckpt rm of a removed epoch exited $rc, expected 4"
[ "$(mt ckpt ls "$c" | grep -c '^ *[0-9]')" -eq 2 ] || fail "job $c should have 2 checkpoints"

# prune --dry-run removes nothing; --keep-checkpoints 1 keeps the jobs.
mt prune --dry-run >"$dir/dry.txt" || fail "prune --dry-run"
grep -q "^would remove job $m (mlp, COMPLETED)" "$dir/dry.txt" || fail "dry run: $(cat "$dir/dry.txt")"
grep -q "^nothing removed (--dry-run)" "$dir/dry.txt" || fail "dry run: $(cat "$dir/dry.txt")"
mt show "$m" >/dev/null || fail "a dry run removed job $m"
mt -o json prune --keep-checkpoints 1 >"$dir/keep.json" || fail "prune -k 1"
grep -q '"bytes_freed":[1-9]' "$dir/keep.json" || fail "prune -k 1 freed nothing: $(cat "$dir/keep.json")"
[ "$(mt ckpt ls "$m" | grep -c '^ *[0-9]')" -eq 1 ] || fail "job $m should keep 1 checkpoint"
[ "$(mt ckpt ls "$c" | grep -c '^ *[0-9]')" -eq 1 ] || fail "job $c should keep 1 checkpoint"

# rm: the bytes freed, the job gone, the file smaller.
size() { stat -c %s "$db"; }
before=$(( $(size) + $(stat -c %s "$db-wal" 2>/dev/null || echo 0) ))
mt rm "$m" >"$dir/rm.txt" || fail "rm: $(cat "$dir/rm.txt")"
grep -q "^removed job $m (mlp, COMPLETED): " "$dir/rm.txt" || fail "rm: $(cat "$dir/rm.txt")"
grep -q "^[1-9][0-9.]* [KM]iB freed: the database went from" "$dir/rm.txt" || fail "rm: $(cat "$dir/rm.txt")"
after=$(( $(size) + $(stat -c %s "$db-wal" 2>/dev/null || echo 0) ))
[ "$after" -lt "$before" ] || fail "the store did not shrink: $before -> $after bytes"
rc=0; mt show "$m" >/dev/null 2>&1 || rc=$?
[ $rc -eq 4 ] || fail "show of a removed job exited $rc, expected 4"
mt prune >/dev/null || fail "prune"
mt ls | grep -q conv && fail "prune left the conv job"

# Usage mistakes: exit 2.
rc=0; mt rm 2>/dev/null || rc=$?; [ $rc -eq 2 ] || fail "rm without ids exited $rc"
rc=0; mt prune --older-than 30 2>"$dir/err.txt" || rc=$?
[ $rc -eq 2 ] || fail "prune --older-than 30 exited $rc"
grep -q "expected an age such as 30d" "$dir/err.txt" || fail "no age hint: $(cat "$dir/err.txt")"
rc=0; mt prune --state running 2>/dev/null || rc=$?; [ $rc -ne 0 ] || fail "prune --state running"
echo "ok: rm, prune, ckpt rm and df ($before -> $after bytes)"
