#!/usr/bin/python3
"""torch_conv.py: the PyTorch CPU reference for memtrain's convolutional networks.

Two networks on 1x28x28 MNIST-format images (MNIST or Fashion-MNIST IDX files,
raw or .gz), data handled as torch_mlp.py does (bytes in memory, each batch
normalised as (pixel/255 - mean)/std with the training set's moments):

  lenet   the MEM-DFA paper's conv net 20c5-maxpool2-50c5-maxpool2-500-10, ReLU
  resnet  a pre-activation ResNet: conv3x3 16 stem; three stages of 16/32/64
          channels with --blocks N basic blocks each (BN-ReLU-conv3x3-BN-ReLU-
          conv3x3, 1x1 projection shortcut when the shape changes, stride 2 at
          stages 2 and 3); BN-ReLU, global average pool, dense 10

Speed mode (default) trains --steps N steps (or one full epoch with --steps 0)
and prints one JSON object (with --json) per run: net, samples_per_second,
test_accuracy, rss_peak (bytes, ru_maxrss), torch, threads, blas.
--train E runs E full epochs and prints one JSON line per epoch with the
test accuracy, the learning rate, the loss and the seconds.

    /usr/bin/python3 tests/bench/torch_conv.py --net resnet --data-dir DIR \\
        [--blocks 1] [--batch 128] [--optimizer sgd|adam] [--lr LR] [--momentum 0.9] \\
        [--weight-decay WD] [--schedule cosine|none] [--steps N | --train E] \\
        [--test-limit N] [--threads 2] [--seed 1] [--json]

Thread settings (OMP_WAIT_POLICY=passive, OPENBLAS_NUM_THREADS=--threads),
data loading, normalisation and the CPU/BLAS description are torch_mlp.py's.
"""

import argparse
import json
import os
import resource
import sys
import time

PROG = "torch_conv.py"


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1: %r" % text)
    return v


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="PyTorch CPU reference for memtrain's conv nets: the MEM-DFA paper's "
                    "MNIST conv net or a pre-activation ResNet, on MNIST-format IDX data.",
        epilog="Exit status: 0 on success, 1 when a data file is missing or malformed.")
    p.add_argument("--net", choices=["lenet", "resnet"], default="lenet",
                   help="lenet: 20c5-mp2-50c5-mp2-500-10; resnet: pre-activation ResNet "
                        "(default lenet)")
    p.add_argument("--blocks", type=positive_int, default=1, metavar="N",
                   help="resnet: basic blocks per stage (default 1: 8 weight layers + projections)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="directory with the four MNIST-format IDX files (raw or .gz); "
                        "default as torch_mlp.py (MNIST); Fashion-MNIST is "
                        "/usr/share/datasets/fashion-mnist here")
    p.add_argument("--batch", type=positive_int, default=0, metavar="N",
                   help="batch size (default 100 for lenet, 128 for resnet)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr", type=float, default=0.0, metavar="LR",
                   help="learning rate (default 0.01 sgd lenet, 0.1 sgd resnet, 0.001 adam)")
    p.add_argument("--momentum", type=float, default=0.9, metavar="M",
                   help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0, metavar="WD",
                   help="weight decay (L2) for every parameter (default 0)")
    p.add_argument("--schedule", choices=["none", "cosine"], default="none",
                   help="learning rate schedule over the --train epochs, stepped per batch "
                        "(default none)")
    p.add_argument("--steps", type=int, default=50, metavar="N",
                   help="speed mode: train N steps (0 = one full epoch; default 50)")
    p.add_argument("--test-limit", type=int, default=0, metavar="N",
                   help="evaluate on the first N test samples only (0 = all; memtrain's "
                        "dataset.test_limit)")
    p.add_argument("--train", type=int, default=0, metavar="E",
                   help="train E full epochs, test accuracy after each (overrides --steps)")
    p.add_argument("--threads", type=positive_int, default=2, metavar="N")
    p.add_argument("--seed", type=int, default=1, metavar="S")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line on stdout instead of a readable line")
    p.add_argument("--saved-bytes", action="store_true",
                   help="print the bytes autograd saves for the backward of one training step "
                        "(forward and cross-entropy loss on a random batch, no data read): each "
                        "saved tensor once, parameters and the input batch left out")
    a = p.parse_args(argv)
    if not a.batch:
        a.batch = 100 if a.net == "lenet" else 128
    if not a.lr:
        a.lr = 0.001 if a.optimizer == "adam" else (0.01 if a.net == "lenet" else 0.1)
    return a


ARGS = parse_args(sys.argv[1:])
# PyTorch's convolutions run on oneDNN's OpenMP threads, its dense layers on
# OpenBLAS's own pool. Each net gets the wait policy under which PyTorch ran
# faster here (2 threads, alternating runs): the ResNet, all convolutions,
# "active" (1,383-1,393 samples/s against 1,165-1,330 passive); LeNet, with
# two dense layers on OpenBLAS, "passive" (3,366-4,638 against 1,738-2,784
# active: spinning OpenMP threads take the cores from OpenBLAS's).
# OMP_WAIT_POLICY in the environment wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "active" if ARGS.net == "resnet" else "passive"
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

# torch_mlp.py parses its own command line on import: give it none.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
_argv, sys.argv = sys.argv, [sys.argv[0]]
import torch_mlp  # noqa: E402
sys.argv = _argv

import torch  # noqa: E402
from torch import nn  # noqa: E402


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(50 * 4 * 4, 500), nn.ReLU(), nn.Linear(500, 10))


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3, plus x or a 1x1 projection of x."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        out = torch.relu(self.bn1(x))
        # The projection takes the pre-activated input (as in He et al. 2016's
        # pre-activation ResNet); the identity takes x itself.
        short = self.proj(out) if self.proj is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + short


def resnet(blocks):
    layers, cin = [nn.Conv2d(1, 16, 3, 1, 1, bias=False)], 16
    for stage, cout in enumerate((16, 32, 64)):
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            layers.append(PreActBlock(cin, cout, stride))
            cin = cout
    layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


def test_accuracy(model, test_x, test_y, scale, shift):
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, test_x.shape[0], 1000):
            xt = test_x[s:s + 1000].to(torch.float32).mul_(scale).add_(shift)
            correct += int((model(xt.view(-1, 1, 28, 28)).argmax(1)
                            == test_y[s:s + 1000].long()).sum())
    model.train()
    return correct / test_x.shape[0] if test_x.shape[0] else 0.0


def saved_bytes(model, batch):
    """Bytes autograd keeps between forward and backward: every tensor a
    saved_tensors_hook sees, counted once per storage (a ReLU's output that
    the next conv also saves counts once), without parameters and the input."""
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    params = {p.data_ptr() for p in model.parameters()}
    seen, total = set(), [0, 0]

    def pack(t):
        ptr = t.untyped_storage().data_ptr() if hasattr(t, "untyped_storage") \
            else t.storage().data_ptr()
        if ptr not in params and ptr != x.data_ptr() and ptr not in seen:
            seen.add(ptr)
            total[0] += t.element_size() * t.nelement()
            total[1] += 1
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    return total[0], total[1]


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    if a.saved_bytes:
        torch.manual_seed(a.seed)
        model = lenet() if a.net == "lenet" else resnet(a.blocks)
        nbytes, count = saved_bytes(model, a.batch)
        if a.json:
            print(json.dumps({"net": a.net, "blocks": a.blocks, "batch": a.batch,
                              "saved_bytes": nbytes, "saved_tensors": count}))
        else:
            print("%s: %s, batch %d: autograd saves %d bytes in %d tensors" % (
                PROG, a.net, a.batch, nbytes, count))
        return 0
    data_dir = torch_mlp.find_data_dir(a.data_dir)
    n_ = torch_mlp.IDX_NAMES
    train_x, train_y = torch_mlp.load_split(data_dir, n_[0], n_[1])
    test_x, test_y = torch_mlp.load_split(data_dir, n_[2], n_[3])
    if a.test_limit > 0:
        test_x, test_y = test_x[:a.test_limit], test_y[:a.test_limit]
    n, dim = train_x.shape
    if dim != 784 or test_x.shape[1] != 784:
        torch_mlp.fail(data_dir, "images of %d pixels, the nets take 28x28" % dim)
    mean, std = torch_mlp.pixel_moments(train_x)
    scale = float(1.0 / (255.0 * std))
    shift = float(-mean / std)

    torch.manual_seed(a.seed)
    model = lenet() if a.net == "lenet" else resnet(a.blocks)
    loss_fn = nn.CrossEntropyLoss()
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum,
                              weight_decay=a.weight_decay, foreach=False)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.weight_decay,
                               foreach=False)
    blas = torch_mlp.cpu_description(torch.get_num_threads())
    nparams = sum(p.numel() for p in model.parameters())
    if not a.json:
        print("%s: %s (%d parameters), torch %s, %s; data %s" % (
            PROG, a.net, nparams, torch.__version__, blas, data_dir), file=sys.stderr)

    B = a.batch
    steps_per_epoch = (n + B - 1) // B
    epochs = a.train if a.train > 0 else 1
    steps = steps_per_epoch if a.train > 0 or a.steps <= 0 else min(a.steps, steps_per_epoch)
    total_steps = epochs * steps
    sched = None
    if a.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_steps)
    shuffle = torch.Generator().manual_seed(a.seed)
    xb = torch.empty((B, dim), dtype=torch.float32)

    model.train()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=shuffle)
        loss_sum, seen = 0.0, 0
        lr_now = opt.param_groups[0]["lr"]
        t0 = time.perf_counter()
        for k in range(steps):
            idx = perm[k * B:(k + 1) * B]
            nb = idx.shape[0]
            x = xb[:nb]
            x.copy_(train_x[idx]).mul_(scale).add_(shift)
            y = train_y[idx].long()
            logits = model(x.view(nb, 1, 28, 28))
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            loss_sum += loss.item() * nb
            seen += nb
        seconds = time.perf_counter() - t0
        rep = {
            "net": a.net if a.net == "lenet" else "resnet-%d" % a.blocks,
            "epoch": epoch,
            "loss": loss_sum / seen,
            "test_accuracy": test_accuracy(model, test_x, test_y, scale, shift),
            "lr": lr_now,
            "seconds": seconds,
            "samples_per_second": seen / seconds if seconds > 0 else 0.0,
            "steps": steps,
            "batch": B,
            "optimizer": a.optimizer,
            "parameters": nparams,
            "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "blas": blas,
        }
        if a.json:
            print(json.dumps(rep, separators=(",", ":")), flush=True)
        else:
            print("%s epoch %d: loss %.4f, test accuracy %.4f, lr %.4g, %.2f s, %.1f samples/s, "
                  "%d steps, peak RSS %.1f MiB (%s)"
                  % (rep["net"], epoch, rep["loss"], rep["test_accuracy"], lr_now, seconds,
                     rep["samples_per_second"], steps, rep["rss_peak"] / 2**20, blas), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
