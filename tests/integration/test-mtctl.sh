#!/bin/sh
# test-mtctl.sh: a real memtraind on a temporary socket and database, driven
# by the real mtctl: two jobs submitted, one watched to the end, one
# cancelled, metrics read as CSV and JSON, a checkpoint exported and read
# back, and the SQLite rows checked. Exit status is the verdict.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"

cat >"$dir/a.yaml" <<YAML
name: first
dataset: {name: synthetic, synthetic_train: 16384, synthetic_test: 256}
model: {input: 32, hidden: [256, 256], classes: 4}
optimizer: {name: adam, lr: 0.003}
batch: 32
epochs: 3
threads: 1
YAML
cat >"$dir/b.yaml" <<YAML
name: second
dataset: {name: synthetic, synthetic_train: 20000, synthetic_test: 256}
model: {input: 64, hidden: [256, 256], classes: 4}
batch: 32
epochs: 50
threads: 1
YAML

out=$(mt submit "$dir/a.yaml") || fail "submit a: $out"
a=$(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
out=$(mt submit "$dir/b.yaml") || fail "submit b: $out"
b=$(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
[ -n "$a" ] && [ -n "$b" ] || fail "no job ids in submit output"

# b waits behind a (one slot): ls says why.
mt ls | grep -q "QUEUED" || fail "job $b is not shown QUEUED"

# Watch a to the end: exit 0 for COMPLETED.
mt watch "$a" >"$dir/watch.txt" || fail "watch $a exited $?"
grep -q "epoch 3/3" "$dir/watch.txt" || fail "watch did not show epoch 3"
grep -q "COMPLETED" "$dir/watch.txt" || fail "watch did not show COMPLETED"

# Cancel b once it runs; wait exits 11 for CANCELLED.
i=0
until mt show "$b" | grep -q RUNNING; do
    i=$((i + 1)); [ $i -lt 400 ] || fail "job $b never started"; sleep 0.05
done
mt cancel "$b" >/dev/null || fail "cancel $b"
rc=0; mt wait "$b" >/dev/null || rc=$?
[ $rc -eq 11 ] || fail "wait $b exited $rc, expected 11 (CANCELLED)"

# Metrics as CSV (header + 3 rows) and JSON.
mt metrics "$a" --csv >"$dir/m.csv" || fail "metrics --csv"
[ "$(wc -l <"$dir/m.csv")" -eq 4 ] || fail "metrics --csv has $(wc -l <"$dir/m.csv") lines"
head -1 "$dir/m.csv" | grep -q "^epoch,loss,train_accuracy,test_accuracy" || fail "CSV header"
mt --json metrics "$a" >"$dir/m.json" || fail "metrics --json"
grep -q '"schema_version": *1' "$dir/m.json" || fail "JSON has no schema_version"
[ "$(grep -o '"epoch": *[0-9]*' "$dir/m.json" | wc -l)" -ge 3 ] || fail "JSON lacks 3 epochs"

# Export the last checkpoint and read it back (zip members, .npy headers).
mt ckpt ls "$a" | grep -q "3" || fail "ckpt ls shows no epoch 3"
mt ckpt export "$a" -O "$dir/w.npz" >/dev/null || fail "ckpt export"
# -o is the output format there too: -o json describes the file -O names,
# and never writes a file named "json"; the old -o FILE is a usage error
# that says so.
rc=0; (cd "$dir" && mt ckpt export "$a" -o json >/dev/null 2>"$dir/err.txt") || rc=$?
[ $rc -eq 2 ] && [ ! -e "$dir/json" ] || fail "ckpt export -o json (no -O) exited $rc"
grep -q "no output file: give -O FILE.npz" "$dir/err.txt" || fail "export without -O: $(cat "$dir/err.txt")"
(cd "$dir" && mt ckpt export "$a" -o json -O w2.npz >"$dir/export.json") ||
    fail "ckpt export -o json -O: $(cat "$dir/export.json")"
[ ! -e "$dir/json" ] || fail "ckpt export -o json wrote a file named json"
grep -q '"schema_version": *1' "$dir/export.json" || fail "export -o json: $(cat "$dir/export.json")"
grep -q '"path": *"w2.npz"' "$dir/export.json" || fail "export -o json does not name the file"
# The same members (the zip's own times may differ by a tick).
/usr/bin/python3 - "$dir/w.npz" "$dir/w2.npz" <<'PY' || fail "export -O and -O with -o json differ"
import sys, zipfile
a, b = (zipfile.ZipFile(p) for p in sys.argv[1:3])
assert a.namelist() == b.namelist(), (a.namelist(), b.namelist())
assert all(a.read(n) == b.read(n) for n in a.namelist())
PY
rc=0; mt ckpt export "$a" -o "$dir/w3.npz" >/dev/null 2>"$dir/err.txt" || rc=$?
[ $rc -eq 2 ] && [ ! -e "$dir/w3.npz" ] || fail "ckpt export -o FILE exited $rc"
grep -q "the .npz to write is -O FILE" "$dir/err.txt" || fail "export -o FILE: $(cat "$dir/err.txt")"
/usr/bin/python3 - "$dir/w.npz" <<'PY' || fail "the .npz does not read back"
import ast, struct, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = sorted(n for n in z.namelist() if n != "memtrain.json")   # the description: docs/export.md
assert names == ["W1.npy", "W2.npy", "W3.npy", "b1.npy", "b2.npy", "b3.npy"], names
assert "memtrain.json" in z.namelist(), z.namelist()
shapes = {}
for n in names:
    b = z.read(n)
    assert b[:6] == b"\x93NUMPY", n
    hl = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + hl].decode())
    assert h["descr"] == "<f4" and not h["fortran_order"], h
    count = 1
    for s in h["shape"]:
        count *= s
    assert len(b) - 10 - hl == 4 * count, n
    shapes[n] = h["shape"]
assert shapes["W1.npy"] == (256, 32) and shapes["W3.npy"] == (4, 256), shapes
print("npz ok:", shapes)
PY

# The SQLite rows, as the daemon stored them.
q() { sqlite3 "file:$db?mode=ro" "$1"; }
[ "$(q "select state_name from jobs where id=$a")" = COMPLETED ] || fail "job $a row state"
[ "$(q "select state_name from jobs where id=$b")" = CANCELLED ] || fail "job $b row state"
[ "$(q "select count(*) from epochs where job_id=$a")" -eq 3 ] || fail "epoch rows of $a"
[ "$(q "select count(*) from checkpoints where job_id=$a")" -ge 1 ] || fail "checkpoint rows"
[ "$(q "select count(*) from memory_samples where job_id=$a")" -ge 1 ] || fail "memory rows"
[ "$(q "select mem_params > 0 and rss_peak > 0 from epochs where job_id=$a and epoch=3")" = 1 ] ||
    fail "epoch 3 has no memory figures"

# The log carries the epoch lines and how the job ended; exit code 0.
mt logs "$a" >"$dir/logs.txt" || fail "logs $a"
[ "$(grep -c '^epoch [123]/3: loss [0-9.]*, train [0-9.]* %, test [0-9.]* %' "$dir/logs.txt")" -eq 3 ] ||
    fail "logs of $a lack the epoch lines: $(cat "$dir/logs.txt")"
tail -1 "$dir/logs.txt" | grep -q "^COMPLETED: trained 3 epochs" || fail "logs of $a: $(cat "$dir/logs.txt")"
mt show "$a" | grep -q "^  exit code  *0$" || fail "show $a: $(mt show "$a")"

# A job that fails in its worker (its images end early; the daemon reads
# only the headers at submit): wait exits 10, show's exit code is 10, and
# the log says why.
mkdir "$dir/short"
/usr/bin/python3 - "$dir/short" <<'PY' || fail "writing the short dataset"
import struct, sys
d = sys.argv[1]
for part, n in (("train", 64), ("t10k", 16)):
    open(d + "/%s-images-idx3-ubyte" % part, "wb").write(
        struct.pack(">IIII", 0x803, n, 28, 28) + bytes(784 * (n // 2)))
    open(d + "/%s-labels-idx1-ubyte" % part, "wb").write(struct.pack(">II", 0x801, n) + bytes(n))
PY
chmod -R a+rX "$dir/short"
cat >"$dir/f.yaml" <<YAML
name: short
dataset: {name: mnist, dir: $dir/short}
model: {input: 784, hidden: [16], classes: 10}
batch: 16
epochs: 1
threads: 1
YAML
out=$(mt submit "$dir/f.yaml") || fail "submit f: $out"
f=$(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
rc=0; mt wait "$f" >/dev/null || rc=$?
[ $rc -eq 10 ] || fail "wait $f exited $rc, expected 10 (FAILED)"
mt show "$f" | grep -q "^  exit code  *10$" || fail "show $f: $(mt show "$f")"
# a named dataset is shown by its name, not with the synthetic set's size
mt show "$f" | grep -q "^  dataset  *mnist (from $dir/short)$" || fail "show $f's dataset: $(mt show "$f" | grep dataset)"
mt --json show "$f" | grep -q '"exit_code": *10' || fail "show --json $f: $(mt --json show "$f")"
mt logs "$f" >"$dir/flogs.txt" || fail "logs $f"
grep -q "^FAILED: .*train-images-idx3-ubyte: truncated" "$dir/flogs.txt" ||
    fail "the log of $f does not say why it failed: '$(cat "$dir/flogs.txt")'"

# Errors: an unknown job is exit 4 with the daemon's message.
rc=0; mt show 999 2>"$dir/err.txt" || rc=$?
[ $rc -eq 4 ] || fail "show 999 exited $rc, expected 4"
grep -q "job 999: not found" "$dir/err.txt" || fail "message: $(cat "$dir/err.txt")"
# No daemon: exit 3.
rc=0; "$MTCTL" --socket "$dir/none.sock" ping 2>/dev/null || rc=$?
[ $rc -eq 3 ] || fail "ping with no daemon exited $rc, expected 3"
echo "mtctl end to end: ok (jobs $a completed, $b cancelled)"
