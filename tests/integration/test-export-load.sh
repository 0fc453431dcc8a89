#!/bin/sh
# test-export-load.sh: weights anywhere. A tiny job of every rule (13 MLPs,
# bp with binary weights and activations, MLPs with norms and every
# activation, conv layer lists under bp, asa and dfa, and one with a
# residual block and average pooling) trains one epoch on generated IDX
# data through a real memtraind; `mtctl ckpt export` writes its .npz with memtrain.json, and
# memtrain_load.py, in NumPy and in PyTorch, must classify the test set
# with exactly memtrain's reported count of correct samples. Skipped (exit
# 77) when /usr/bin/python3 lacks numpy; without torch only the NumPy half
# runs (said on stdout). Exit status is the verdict.
set -eu
PY=${MEMTRAIN_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import numpy' >/dev/null 2>&1; then
    echo "SKIP: $PY cannot import numpy (install python3-numpy, and python3-torch)"
    exit 77
fi
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "$PY cannot import torch (python3-torch): checking the NumPy forward only"
fi
: "${MEMTRAIN_LOAD_DIR:?}"
here=$(dirname "$0")
. "$here/mtctl-daemon.sh"
export MEMTRAIN_LOAD_DIR
"$PY" "$here/export-load.py" gen "$dir"

# spec NAME RULE MODEL [LR [BATCH]]: a job spec on the generated data (the
# rule's optimizer at learning rate LR, default 0.005, so one epoch learns;
# BATCH default 32)
spec() {
    cat >"$dir/$1.yaml" <<YAML
name: $1
dataset:
  name: idx
  train_images: $dir/train-images
  train_labels: $dir/train-labels
  test_images: $dir/test-images
  test_labels: $dir/test-labels
model:
$3
rule: $2
optimizer: {lr: ${4:-0.005}}
batch: ${5:-32}
epochs: 1
threads: 1
YAML
}
mlp="  input: 64
  hidden: [32]
  classes: 4"
mlp2="  input: 64
  hidden: [32, 32]
  classes: 4"
convhead="  input: [1, 8, 8]
  classes: 4
  layers:
    - conv: {channels: 4, kernel: 3, padding: 1}
    - batchnorm
    - relu
    - maxpool: 2"
conv="$convhead
    - flatten
    - dense: 4"

for r in bp ckpt approx8 approx4 approxbp; do
    spec "$r" "$r" "$mlp"
done
for r in fa dfa memdfa pepita mezo; do
    spec "$r" "$r" "$mlp" 0.02
done
# ASA's sign term large enough to change the answers; the binary rules with
# two hidden layers and a small batch, so that beta (taken from each
# evaluated batch) matters: evaluating the test set as one batch gives
# TinyFoA 146 where memtrain gives 147.
spec asa "{name: asa, epsilon: 0.5}" "$mlp"
spec tinyfoa tinyfoa "$mlp2" 0.02 4
sed -i 's/^epochs: 1$/epochs: 2/' "$dir/tinyfoa.yaml"     # two stages, one epoch each
spec ff ff "  input: 64
  hidden: [24, 24]
  classes: 4"
spec bpbin "{name: bp, binary: true}" "$mlp2" 0.002 4
spec bn-bp bp "  input: 64
  hidden: [{width: 32, norm: batchnorm}, {width: 16, norm: layernorm, activation: tanh}]
  classes: 4"
spec acts-bp bp "  input: 64
  hidden: [{width: 16, activation: gelu}, {width: 16, activation: silu},
           {width: 16, activation: leaky_relu}, {width: 16, activation: sigmoid}]
  classes: 4" 0.002
for r in bp dfa; do
    spec "conv-$r" "$r" "$conv"
done
# A residual block (its add and 1x1 shortcut), average and global pooling.
spec res-bp bp "$convhead
    - residual: {channels: 6, stride: 2}
    - avgpool: 2
    - conv: {channels: 6, kernel: 1}
    - silu
    - globalavgpool
    - flatten
    - dense: 4" 0.01
# ASA's two sign terms: the second conv reads a pooled ReLU map (x + eps [x > 0]),
# the dense layer a batch-norm output (x + eps sign x).
spec conv-asa "{name: asa, epsilon: 0.5}" "$convhead
    - conv: {channels: 4, kernel: 3, padding: 1}
    - batchnorm
    - flatten
    - dense: 4"

ids=""
for f in bp fa dfa memdfa ckpt asa approx8 approx4 approxbp tinyfoa pepita ff mezo bpbin \
         bn-bp acts-bp conv-bp conv-asa conv-dfa res-bp; do
    out=$(mt submit "$dir/$f.yaml") || fail "submit $f: $out"
    ids="$ids $f=$(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')"
done
: >"$dir/manifest"
for pair in $ids; do
    f=${pair%%=*} id=${pair#*=}
    mt wait "$id" >/dev/null || fail "job $f ($id) did not complete: $(mt show "$id")"
    mt --json metrics "$id" >"$dir/metrics-$f.json" || fail "metrics $f"
    mt ckpt export "$id" -O "$dir/$f.npz" >"$dir/export-$f.txt" || fail "export $f"
    echo "${f#conv-} $dir/$f.npz $dir/metrics-$f.json" >>"$dir/manifest"
done
"$PY" "$here/export-load.py" check "$dir" "$dir/manifest" ||
    fail "a loaded model's accuracy differs from memtrain's"
# The export lists the description and, for ff, the layer it left out.
grep -q "memtrain.json" "$dir/export-bp.txt" || fail "export names no memtrain.json"
grep -q "W3 *left out" "$dir/export-ff.txt" || fail "ff's export: $(cat "$dir/export-ff.txt")"
