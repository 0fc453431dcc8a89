#!/bin/sh
# test-mtctl-layers.sh: a layer-list job (conv, batch-norm, a residual block)
# through a real memtraind and mtctl: `plan` gives one row per node with
# every layer-list rule's kept bytes, `show` names the layers and the
# augmentation (a crop too large for the images is refused at submit), and
# `ckpt export` writes every parameter and running statistic named by layer,
# in PyTorch's shapes, with the checkpoint's bytes in the parameter block's
# order. Exit status is the verdict.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"

cat >"$dir/c.yaml" <<YAML
name: convbn
dataset:
  name: synthetic
  synthetic_train: 2048
  synthetic_test: 256
  augment: {crop: 1, flip: true}
model:
  input: [1, 8, 8]
  classes: 4
  layers:
    - conv: {channels: 4, kernel: 3, padding: 1}
    - batchnorm
    - relu
    - maxpool: 2
    - residual: {channels: 6, stride: 2}
    - flatten
    - dense: 4
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
batch: 32
epochs: 2
threads: 1
YAML

# plan: a row per node (14), columns for bp fa dfa memdfa ckpt.
mt plan "$dir/c.yaml" >"$dir/plan.txt" || fail "plan: $(cat "$dir/plan.txt")"
grep -q "KEPT bp\*.*KEPT fa.*KEPT dfa.*KEPT memdfa.*KEPT ckpt" "$dir/plan.txt" ||
    fail "plan has no kept columns: $(cat "$dir/plan.txt")"
grep -q "^ *10  \[4\] residual: shortcut  6x2x2  *24 " "$dir/plan.txt" ||
    fail "plan lacks the shortcut row: $(cat "$dir/plan.txt")"
mt --json plan "$dir/c.yaml" >"$dir/plan.json" || fail "plan --json"

out=$(mt submit "$dir/c.yaml") || fail "submit: $out"
id=$(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
mt watch "$id" >"$dir/watch.txt" || fail "watch $id exited $?"
mt show "$id" | grep -q "model *1x8x8 conv4k3p1 bn relu maxpool2 res6s2 flatten dense4" ||
    fail "show: $(mt show "$id")"
mt --json show "$id" | grep -q '"kind": *"residual"' || fail "show --json lacks the layers"
mt show "$id" | grep -q "dataset *synthetic, 2048 training samples, augment crop 1, flip" ||
    fail "show lacks the augmentation: $(mt show "$id")"
mt --json show "$id" | tr -d ' \n' | grep -q '"augment":{"crop":1,"flip":true}' ||
    fail "show --json lacks the augmentation"
# A crop as large as the 8x8 images is refused at submit, with the key named.
sed 's/augment: {crop: 1, flip: true}/augment: {crop: 8}/' "$dir/c.yaml" >"$dir/bad.yaml"
rc=0; mt submit "$dir/bad.yaml" 2>"$dir/err.txt" || rc=$?
[ $rc -ne 0 ] || fail "a crop of 8 on 8x8 images was accepted"
grep -q "dataset.augment.crop: must be at least 0 and less than the image's height and width" \
    "$dir/err.txt" || fail "message: $(cat "$dir/err.txt")"

mt ckpt export "$id" -O "$dir/w.npz" >/dev/null || fail "ckpt export"
sqlite3 "file:$db?mode=ro" \
    "select writefile('$dir/ckpt.bin', data) from checkpoints where job_id=$id order by epoch desc limit 1" \
    >/dev/null || fail "reading the checkpoint row"
/usr/bin/python3 - "$dir/w.npz" "$dir/ckpt.bin" "$dir/plan.json" <<'PY' || fail "the .npz is wrong"
import json, sys
import numpy as np
z = np.load(sys.argv[1])
blob = open(sys.argv[2], "rb").read()
plan = json.load(open(sys.argv[3]))
want = [
    ("layers.0.conv.weight", (4, 1, 3, 3)), ("layers.0.conv.bias", (4,)),
    ("layers.1.batchnorm.weight", (4,)), ("layers.1.batchnorm.bias", (4,)),
    ("layers.1.batchnorm.running_mean", (4,)), ("layers.1.batchnorm.running_var", (4,)),
    ("layers.4.bn1.weight", (4,)), ("layers.4.bn1.bias", (4,)),
    ("layers.4.bn1.running_mean", (4,)), ("layers.4.bn1.running_var", (4,)),
    ("layers.4.conv1.weight", (6, 4, 3, 3)),
    ("layers.4.bn2.weight", (6,)), ("layers.4.bn2.bias", (6,)),
    ("layers.4.bn2.running_mean", (6,)), ("layers.4.bn2.running_var", (6,)),
    ("layers.4.conv2.weight", (6, 6, 3, 3)), ("layers.4.shortcut.weight", (6, 4, 1, 1)),
    ("layers.6.dense.weight", (4, 24)), ("layers.6.dense.bias", (4,)),
]
assert sorted(z.files) == sorted([n for n, _ in want] + ["memtrain.json"]), z.files
for n, s in want:
    assert z[n].shape == s and z[n].dtype == np.float32, (n, z[n].shape)
# The parameters (no statistics) add up to the plan's per-node counts.
params = sum(z[n].size for n, _ in want if "running" not in n)
assert params == sum(l["params"] for l in plan["layers"]), params
# The values are the checkpoint's bytes, in the parameter block's order.
at = 0
for n, _ in want:
    i = blob.find(z[n].tobytes(), at)
    assert i >= at, n
    at = i + z[n].nbytes
# Trained statistics, not the initial 0 and 1.
assert np.any(z["layers.1.batchnorm.running_mean"] != 0)
assert np.all(z["layers.4.bn2.running_var"] > 0)
assert np.any(z["layers.4.bn2.running_var"] != 1)
print("npz ok:", len(want), "arrays,", params, "parameters")
PY
echo "mtctl with a layer list: ok (job $id)"
