"""export-load.py: the Python half of test-export-load.sh.

gen DIR: writes a small learnable IDX data set (8x8 images, 4 classes: a
bright 3x3 patch in one corner per class, with noise), 512 training and 200
test samples, under DIR.

check DIR MANIFEST: for each line "RULE NPZ METRICS" of MANIFEST, loads NPZ
with memtrain_load (MEMTRAIN_LOAD_DIR on sys.path), classifies DIR's test
set with NumPy and with PyTorch, and exits 1 unless both count as many
correct samples as memtrain reported (the last epoch's test_accuracy in
METRICS, `mtctl -o json metrics`). For ff, also checks that the unused
output layer is not in the file. One process for all: torch loads once."""
import os
import struct
import sys

import numpy as np

N_TRAIN, N_TEST, SIDE, CLASSES = 512, 200, 8, 4


def write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, arr.ndim))
        f.write(struct.pack(">" + "I" * arr.ndim, *arr.shape))
        f.write(arr.tobytes())


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def gen(d):
    rng = np.random.default_rng(13)
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        y = rng.integers(0, CLASSES, n)
        x = rng.normal(60, 40, (n, SIDE, SIDE))
        for i, c in enumerate(y):
            r, k = (c // 2) * 5, (c % 2) * 5
            x[i, r:r + 3, k:k + 3] += 120
        write_idx(os.path.join(d, split + "-images"), np.clip(x, 0, 255).astype(np.uint8))
        write_idx(os.path.join(d, split + "-labels"), y.astype(np.uint8))


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def check_one(ml, npz, x, y, want, rule):
    m = ml.load(npz)
    got_np = m.count_correct(x, y, backend="numpy")
    torch = have_torch()
    got_torch = m.count_correct(x, y, backend="torch") if torch else got_np
    weak = int(m.fragile(x).sum())
    print("%s: memtrain %d, numpy %d, torch %s of %d (inference %s)%s"
          % (os.path.basename(npz), want, got_np, got_torch if torch else "-", len(y),
             m.inference["kind"],
             ", %d sample(s) on a rounding edge" % weak if weak else ""))
    # Equal counts, unless some answers hang on float rounding (a binary
    # forward's exact tie, which memtrain's BLAS may break the other way):
    # then at most that many apart. Here the data and seeds give none.
    ok = abs(got_np - want) <= weak and abs(got_torch - want) <= weak
    if rule == "ff":
        with np.load(npz) as z:
            last = "W%d" % len(m.desc["model"]["layers"])
            if last in z.files:
                print("ff's unused output layer %s is in the file" % last)
                ok = False
            if not m.desc["model"]["layers"][-1].get("unused"):
                print("memtrain.json does not mark ff's output layer unused")
                ok = False
    return ok


def check(d, manifest):
    sys.path.insert(0, os.environ["MEMTRAIN_LOAD_DIR"])
    import json
    import memtrain_load as ml
    x, y = read_idx(os.path.join(d, "test-images")), read_idx(os.path.join(d, "test-labels"))
    ok = True
    for line in open(manifest):
        rule, npz, metrics = line.split()
        acc = json.load(open(metrics))["epochs"][-1]["test_accuracy"]
        ok &= check_one(ml, npz, x, y, round(acc * len(y)), rule)
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3]))
