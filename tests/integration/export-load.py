"""export-load.py: the Python half of test-export-load.sh.

gen DIR: writes a small learnable IDX data set (8x8 images, 4 classes: a
bright 3x3 patch in one corner per class, with noise), 512 training and 200
test samples, under DIR.

check NPZ DIR WANT [RULE]: loads NPZ with memtrain_load (MEMTRAIN_LOAD_DIR
on sys.path), classifies DIR's test set with NumPy and with PyTorch, and
exits 1 unless both count WANT correct samples (memtrain's figure). With
RULE ff, also checks that the unused output layer is not in the file."""
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


def check(npz, d, want, rule):
    sys.path.insert(0, os.environ["MEMTRAIN_LOAD_DIR"])
    import memtrain_load as ml
    m = ml.load(npz)
    x, y = read_idx(os.path.join(d, "test-images")), read_idx(os.path.join(d, "test-labels"))
    got_np = m.count_correct(x, y, backend="numpy")
    got_torch = m.count_correct(x, y, backend="torch")
    print("%s: memtrain %d, numpy %d, torch %d of %d (inference %s)"
          % (npz, want, got_np, got_torch, len(y), m.inference["kind"]))
    ok = got_np == want and got_torch == want
    if rule == "ff":
        with np.load(npz) as z:
            last = "W%d" % len(m.desc["model"]["layers"])
            if last in z.files:
                print("ff's unused output layer %s is in the file" % last)
                ok = False
            if not m.desc["model"]["layers"][-1].get("unused"):
                print("memtrain.json does not mark ff's output layer unused")
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                       sys.argv[5] if len(sys.argv) > 5 else ""))
