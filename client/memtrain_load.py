"""memtrain_load: a memtrain export (`mtctl ckpt export ID -O FILE.npz`) as a
PyTorch nn.Module or a NumPy forward pass.

The .npz holds the checkpoint's float32 tensors and `memtrain.json`, the
model's description (docs/export.md): the input's shape and normalisation
constants, the layers (an MLP's or a layer list's), and the learning rule's
inference path. Both backends give the logits memtrain's test accuracy
counts: ASA adds its sign term to each weight layer's input, TinyFoA and
BP+BW+BA (bp with binary: true) run the binarised forward (weights
alpha sign(W), activations beta [Z > 0], beta from the batch evaluated:
evaluate in batches of model.eval_batch, in order, to get memtrain's exact
figures), Forward-Forward classifies by accumulated goodness.

    import memtrain_load as ml
    m = ml.load("w.npz")
    x = m.normalize(pixels)            # uint8 (N, ...) -> float32, as memtrain does
    logits = m.forward_numpy(x)        # no torch needed
    net = m.torch_module()             # torch.nn.Module, eval mode
    logits = net(torch.from_numpy(x))
    hits = m.count_correct(pixels, labels, backend="torch")

Only NumPy is required; PyTorch is imported when torch_module() is called.
"""

import json

import numpy as np

FORMAT = 1
DESCRIPTION = "memtrain.json"
F32 = np.float32


class MemtrainLoadError(Exception):
    """The file is not a memtrain export this loader understands."""


# --------------------------------------------------------------------------
# The description, as one list of nodes for both model forms

def _mlp_nodes(desc):
    """An MLP's layers as layer-list nodes: dense, [batchnorm], act, [layernorm]."""
    nodes = []
    layers = [l for l in desc["model"]["layers"] if not l.get("unused")]
    for k, l in enumerate(layers):
        nodes.append({"kind": "dense", "input": len(nodes) - 1, "weight": l["weight"],
                      "bias": l["bias"], "sign_term": l.get("sign_term", "none"),
                      "flat": True})
        if l["norm"] == "batchnorm":
            nodes.append({"kind": "batchnorm", "input": len(nodes) - 1, "weight": l["gamma"],
                          "bias": l["beta"], "running_mean": l["running_mean"],
                          "running_var": l["running_var"], "flat": True})
        if l["activation"] != "identity":
            nodes.append({"kind": "act", "input": len(nodes) - 1,
                          "activation": l["activation"]})
        if l["norm"] == "layernorm":
            nodes.append({"kind": "layernorm", "input": len(nodes) - 1})
    return nodes


class Model:
    """A loaded export: `desc` (the JSON), `tensors` (name -> float32 array)."""

    def __init__(self, desc, tensors):
        if desc.get("format") != FORMAT:
            raise MemtrainLoadError("memtrain.json format %r; this loader reads %d"
                                    % (desc.get("format"), FORMAT))
        self.desc = desc
        self.tensors = tensors
        self.rule = desc["rule"]["name"]
        self.inference = desc["inference"]
        self.classes = desc["classes"]
        self.input_shape = tuple(desc["input"]["shape"])
        self.eval_batch = desc["evaluation"]["batch"]
        const = desc["constants"]
        self.norm_eps = F32(const["norm_eps"])
        self.leaky_slope = F32(const["leaky_slope"])
        if desc["model"]["form"] == "mlp":
            self.nodes = _mlp_nodes(desc)
        else:
            self.nodes = desc["model"]["nodes"]
        kind = self.inference["kind"]
        if kind == "tinyfoa" and self.inference["stage"] != self.inference["stages"]:
            raise MemtrainLoadError(
                "TinyFoA stopped in stage %d of %d: its model is layers 1..%d with a fixed "
                "random local classifier the export does not hold; only a job past its last "
                "stage loads" % (self.inference["stage"], self.inference["stages"],
                                 self.inference["stage"]))
        if kind not in ("forward", "asa", "binary", "tinyfoa", "ff"):
            raise MemtrainLoadError("unknown inference kind %r" % kind)

    def t(self, name):
        return self.tensors[name]

    # ---- input --------------------------------------------------------------

    def normalize(self, pixels):
        """Raw pixels (N, *input shape, or N images of the same count of
        bytes), uint8 0..255 -> float32 x = pixel * scale + shift, as memtrain
        feeds the model, shaped (N, *input shape)."""
        inp = self.desc["input"]
        p = np.asarray(pixels).reshape((-1,) + self.input_shape)
        x = p.astype(F32) * F32(inp["scale"])
        return (x + F32(inp["shift"])).astype(F32)

    # ---- NumPy --------------------------------------------------------------

    def forward_numpy(self, x):
        """Logits (B, classes) of normalised inputs x (B, *input shape),
        float32, along the rule's inference path. Batch-dependent paths
        (binary activations) take their scale from this batch."""
        x = np.asarray(x, dtype=F32).reshape((-1,) + self.input_shape)
        kind = self.inference["kind"]
        if kind == "ff":
            return _np_ff(self, x)
        if kind in ("binary", "tinyfoa"):
            return _np_binary(self, x)
        return _np_graph(self, x)

    # ---- PyTorch ------------------------------------------------------------

    def torch_module(self):
        """A torch.nn.Module (in eval mode) computing forward_numpy's logits."""
        return _build_torch(self)

    # ---- evaluation ---------------------------------------------------------

    def predict(self, pixels, backend="numpy", batch=None):
        """Predicted classes of raw pixels, evaluated in batches of `batch`
        (default: the job's batch, as memtrain evaluates), in order."""
        x = self.normalize(pixels)
        batch = batch or self.eval_batch
        fwd = self.forward_numpy
        if backend == "torch":
            import torch
            net = self.torch_module()

            def fwd(xb):
                with torch.no_grad():
                    return net(torch.from_numpy(np.ascontiguousarray(xb))).numpy()
        out = []
        for s in range(0, len(x), batch):
            out.append(_argmax_first(fwd(x[s:s + batch])))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def count_correct(self, pixels, labels, backend="numpy", batch=None):
        """Test samples classified right, as memtrain counts them."""
        return int((self.predict(pixels, backend, batch) == np.asarray(labels)).sum())

    def fragile(self, pixels, batch=None):
        """Binary forwards (TinyFoA, BP+BW+BA): a mask of the samples whose
        answer hangs on float rounding, so that memtrain (whose BLAS sums in
        another order) may answer otherwise; all False for the other rules.
        A count of correct samples matches memtrain's exactly when none is."""
        x = self.normalize(pixels)
        if self.inference["kind"] not in ("binary", "tinyfoa"):
            return np.zeros(len(x), dtype=bool)
        batch = batch or self.eval_batch
        masks = []
        for s in range(0, len(x), batch):
            _np_binary(self, x[s:s + batch], masks)
        return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)


def _argmax_first(z):
    """memtrain's argmax: the first maximum (a NaN never wins)."""
    z = np.asarray(z)
    am = np.zeros(len(z), dtype=np.int64)
    mx = z[:, 0].copy()
    for j in range(1, z.shape[1]):
        up = z[:, j] > mx
        am[up] = j
        mx[up] = z[up, j]
    return am


def load(path):
    """Read an export: its tensors and its description."""
    with np.load(path, allow_pickle=False) as z:
        if DESCRIPTION not in z.files:
            raise MemtrainLoadError("%s has no %s: it was exported from a checkpoint an older "
                                    "memtrain wrote, which does not describe its model"
                                    % (path, DESCRIPTION))
        desc = json.loads(bytes(z[DESCRIPTION]).decode("utf-8"))
        tensors = {k: z[k].astype(F32) for k in z.files if k != DESCRIPTION}
    return Model(desc, tensors)


# --------------------------------------------------------------------------
# NumPy kernels (float32, memtrain's order of operations where it matters)

def _np_act(z, a, slope):
    if a == "relu":
        return np.where(z > 0, z, F32(0)).astype(F32)
    if a == "leaky_relu":
        return np.where(z > 0, z, slope * z).astype(F32)
    if a == "tanh":
        return np.tanh(z).astype(F32)
    if a == "sigmoid":
        return (F32(1) / (F32(1) + np.exp(-z))).astype(F32)
    if a == "gelu":
        k, c = F32(0.7978845608028654), F32(0.044715)
        return (F32(0.5) * z * (F32(1) + np.tanh(k * (z + c * z * z * z)))).astype(F32)
    if a == "silu":
        return (z / (F32(1) + np.exp(-z))).astype(F32)
    if a == "identity":
        return z
    raise MemtrainLoadError("unknown activation %r" % a)


def _np_sign_term(x, form, eps):
    """ASA: x + eps S, S = [x > 0] (relu form) or +1/-1 (sign form)."""
    eps = F32(eps)
    if form == "relu":
        return np.where(x > 0, x + eps, x).astype(F32)
    if form == "sign":
        return np.where(x > 0, x + eps, x - eps).astype(F32)
    return x


def _np_conv(x, w, b, stride, pad):
    B, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    cols = np.empty((B, C, kh, kw, oh, ow), dtype=F32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    cols = cols.reshape(B, C * kh * kw, oh * ow)
    y = np.einsum("ok,bkp->bop", w.reshape(O, -1), cols, optimize=True).astype(F32)
    if b is not None:
        y = y + b[None, :, None]
    return y.reshape(B, O, oh, ow).astype(F32)


def _np_pool(x, kh, kw, stride, how):
    B, C, H, W = x.shape
    oh, ow = (H - kh) // stride + 1, (W - kw) // stride + 1
    win = [x[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
           for i in range(kh) for j in range(kw)]
    if how == "max":
        out = win[0]
        for w in win[1:]:
            out = np.maximum(out, w)
        return out
    s = win[0].copy()
    for w in win[1:]:
        s = s + w
    return (s * F32(1.0 / (kh * kw))).astype(F32)


def _np_layernorm(x, eps):
    B = x.shape[0]
    r = x.reshape(B, -1)
    n = r.shape[1]
    mean = (r.astype(np.float64).sum(axis=1) / n).astype(F32)
    d = r.astype(np.float64) - mean[:, None].astype(np.float64)
    v = (d * d).sum(axis=1)
    rstd = (1.0 / np.sqrt(v / n + float(eps))).astype(F32)
    return ((r - mean[:, None]) * rstd[:, None]).astype(F32).reshape(x.shape)


def _np_batchnorm(x, m, node):
    g, b = m.t(node["weight"]), m.t(node["bias"])
    mean, var = m.t(node["running_mean"]), m.t(node["running_var"])
    r = (F32(1) / np.sqrt(var + m.norm_eps)).astype(F32)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (g.reshape(shape) * (x - mean.reshape(shape)) * r.reshape(shape)
            + b.reshape(shape)).astype(F32)


def _np_node(m, node, x, x2):
    kind = node["kind"]
    if kind in ("dense", "conv") and m.inference["kind"] == "asa":
        x = _np_sign_term(x, node.get("sign_term", "none"), m.inference["epsilon"])
    b = m.t(node["bias"]) if node.get("bias") else None
    if kind == "dense":
        w = m.t(node["weight"])
        y = (x.reshape(len(x), -1) @ w.T).astype(F32)
        y = y + b if b is not None else y
        return y.astype(F32) if node.get("flat") else y.reshape(len(x), -1, 1, 1)
    if kind == "conv":
        return _np_conv(x, m.t(node["weight"]), b, node["stride"], node["padding"])
    if kind in ("maxpool", "avgpool"):
        kh, kw = node["kernel"]
        return _np_pool(x, kh, kw, node["stride"], kind[:3])
    if kind == "globalavgpool":
        B, C = x.shape[:2]
        s = x.reshape(B, C, -1).astype(F32)
        acc = np.zeros((B, C), dtype=F32)
        for i in range(s.shape[2]):   # memtrain sums in float, in order
            acc = acc + s[:, :, i]
        return (acc / F32(s.shape[2])).reshape(B, C, 1, 1).astype(F32)
    if kind == "flatten":
        return x.reshape(len(x), -1, 1, 1)
    if kind == "batchnorm":
        return _np_batchnorm(x, m, node)
    if kind == "layernorm":
        return _np_layernorm(x, m.norm_eps)
    if kind == "act":
        return _np_act(x, node["activation"], m.leaky_slope)
    if kind == "add":
        return (x + x2).astype(F32)
    raise MemtrainLoadError("unknown layer kind %r" % kind)


def _np_graph(m, x):
    if m.desc["model"]["form"] == "mlp":
        x = x.reshape(len(x), -1)
    outs = []
    for node in m.nodes:
        src = x if node["input"] < 0 else outs[node["input"]]
        src2 = None
        if node["kind"] == "add":
            src2 = x if node["input2"] < 0 else outs[node["input2"]]
        outs.append(_np_node(m, node, src, src2))
    return outs[-1].reshape(len(x), -1)


def _binary_weights(w):
    """alpha sign(W): memtrain's packed signs (W > 0 -> +1, else -1) and
    alpha = mean |W| summed in double."""
    alpha = F32(np.abs(w.astype(np.float64)).sum() / w.size)
    return alpha, np.where(w > 0, F32(1), F32(-1)).astype(F32)


def _binary_act(z):
    """ReLU(beta sign Z) = beta [Z > 0], beta = mean |Z| over the batch."""
    beta = F32(np.abs(z.astype(np.float64)).sum() / z.size) if z.size else F32(0)
    return np.where(z > 0, beta, F32(0)).astype(F32)


def _rounding_bound(h, w_abs, scale):
    """How far float32 sums of (h @ w.T) * scale may stray from one another,
    per element: 64 units in the last place (2^-24) of the sum of the terms'
    magnitudes. NumPy's sum strays from the exact one by at most 2.3 such
    units on MNIST (784 terms), so BLAS's order, FMA or not, stays well
    inside; the worst case (n units) would flag a third of MNIST."""
    return (np.abs(h).astype(np.float64) @ w_abs.T.astype(np.float64)) * float(scale) * 64 * 2.0 ** -24


def _np_binary(m, x, fragile=None):
    """BP+BW+BA (every layer binary, the last one's Z the logits) and TinyFoA
    after its last stage (hidden layers binary and activated, then W_L with
    no bias). With a list `fragile`, appends a mask of the samples whose
    answer hangs on float rounding (a binary activation's Z, or the top two
    logits, within the rounding bound: memtrain's BLAS may round the other
    way, e.g. a sum of +-beta that is 0 exactly here and 1e-8 there)."""
    layers = m.desc["model"]["layers"]
    h = x.reshape(len(x), -1)
    tiny = m.inference["kind"] == "tinyfoa"
    weak = np.zeros(len(x), dtype=bool)
    for k, l in enumerate(layers):
        last = k == len(layers) - 1
        w = m.t(l["weight"])
        if tiny and last:
            z = (h @ w.T).astype(F32)
            bound = _rounding_bound(h, np.abs(w), 1.0)
        else:
            alpha, s = _binary_weights(w)
            z = ((alpha * (h @ s.T)).astype(F32) + m.t(l["bias"])).astype(F32)
            bound = _rounding_bound(h, np.abs(s), alpha) + np.abs(m.t(l["bias"])) * 2.0 ** -23
        if last:
            top = np.sort(z.astype(np.float64), axis=1)
            weak |= top[:, -1] - top[:, -2] < 2 * bound.max(axis=1)   # 0 < 0: all terms 0
            h = z
        else:
            weak |= (np.abs(z) < bound).any(axis=1)
            h = _binary_act(z)
    if fragile is not None:
        fragile.append(weak)
    return h


def _ff_inv_rms(x):
    ss = (x.astype(np.float64) ** 2).sum(axis=1)
    return (F32(1) / (np.sqrt(ss / x.shape[1]).astype(F32) + F32(1e-8))).astype(F32)


def _np_ff(m, x):
    """Forward-Forward: for each label c written into the first C values,
    the goodness (sum of squares) of the counted layers, summed; logits are
    that sum per unit of width minus 1."""
    inf = m.inference
    layers = [l for l in m.desc["model"]["layers"] if not l.get("unused")]
    C, B = m.classes, len(x)
    x = x.reshape(B, -1)
    counted = set(inf["goodness_layers"])
    width = F32(sum(layers[l - 1]["out"] for l in counted))
    S = np.zeros((B, C), dtype=F32)
    lo, hi = F32(inf["label_off"]), F32(inf["label_on"])
    for c in range(C):
        xe = x.copy()
        xe[:, :C] = lo
        xe[:, c] = hi
        h = None
        for li, l in enumerate(layers, start=1):
            w, b = m.t(l["weight"]), m.t(l["bias"])
            if li == 1:
                z = (xe @ w.T).astype(F32) * _ff_inv_rms(xe)[:, None]
            else:
                z = (h @ w.T).astype(F32)
            h = _np_act((z + b).astype(F32), l["activation"], m.leaky_slope)
            if li in counted:
                S[:, c] += ((h.astype(np.float64) ** 2).sum(axis=1)).astype(F32)
            if li < len(layers):
                h = (h * _ff_inv_rms(h)[:, None]).astype(F32)
    return (S / width - F32(1)).astype(F32)


# --------------------------------------------------------------------------
# PyTorch: standard modules where memtrain's layer is PyTorch's, small
# modules for the rules' own steps.

def _build_torch(m):
    import torch
    from torch import nn

    def param(name):
        return nn.Parameter(torch.from_numpy(np.ascontiguousarray(m.t(name))),
                            requires_grad=False)

    class SignTerm(nn.Module):
        """ASA: x + eps [x > 0] (relu) or x + eps sign (sign, 0 -> -1)."""

        def __init__(self, eps, form):
            super().__init__()
            self.eps, self.form = float(eps), form

        def forward(self, x):
            pos = x > 0
            if self.form == "relu":
                return torch.where(pos, x + self.eps, x)
            return torch.where(pos, x + self.eps, x - self.eps)

    class LayerNormAll(nn.Module):
        """memtrain's layernorm: per sample over every value, no affine."""

        def __init__(self, eps):
            super().__init__()
            self.eps = float(eps)

        def forward(self, x):
            return nn.functional.layer_norm(x, x.shape[1:], eps=self.eps)

    def act(a):
        return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(float(m.leaky_slope)),
                "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(),
                "gelu": nn.GELU(approximate="tanh"), "silu": nn.SiLU(),
                "identity": nn.Identity()}[a]

    def module_of(node):
        kind = node["kind"]
        seq = []
        if kind in ("dense", "conv") and m.inference["kind"] == "asa" and \
                node.get("sign_term", "none") != "none":
            seq.append(SignTerm(m.inference["epsilon"], node["sign_term"]))
        if kind == "dense":
            w = m.t(node["weight"])
            lin = nn.Linear(w.shape[1], w.shape[0], bias=bool(node.get("bias")))
            lin.weight = param(node["weight"])
            if node.get("bias"):
                lin.bias = param(node["bias"])
            if not node.get("flat"):
                seq.append(nn.Flatten())
            seq.append(lin)
            if not node.get("flat"):
                seq.append(nn.Unflatten(1, (w.shape[0], 1, 1)))
        elif kind == "conv":
            w = m.t(node["weight"])
            conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]),
                             stride=node["stride"], padding=node["padding"],
                             bias=bool(node.get("bias")))
            conv.weight = param(node["weight"])
            if node.get("bias"):
                conv.bias = param(node["bias"])
            seq.append(conv)
        elif kind == "maxpool":
            seq.append(nn.MaxPool2d(tuple(node["kernel"]), stride=node["stride"]))
        elif kind == "avgpool":
            seq.append(nn.AvgPool2d(tuple(node["kernel"]), stride=node["stride"]))
        elif kind == "globalavgpool":
            seq.append(nn.AdaptiveAvgPool2d(1))
        elif kind == "flatten":
            seq.append(nn.Flatten())
            seq.append(nn.Unflatten(1, (-1, 1, 1)))
        elif kind == "batchnorm":
            c = m.t(node["weight"]).shape[0]
            bn = (nn.BatchNorm1d if node.get("flat") else nn.BatchNorm2d)(c, eps=float(m.norm_eps))
            bn.weight = param(node["weight"])
            bn.bias = param(node["bias"])
            bn.running_mean = torch.from_numpy(m.t(node["running_mean"]).copy())
            bn.running_var = torch.from_numpy(m.t(node["running_var"]).copy())
            seq.append(bn)
        elif kind == "layernorm":
            seq.append(LayerNormAll(m.norm_eps))
        elif kind == "act":
            seq.append(act(node["activation"]))
        elif kind == "add":
            return None
        else:
            raise MemtrainLoadError("unknown layer kind %r" % kind)
        return nn.Sequential(*seq)

    class MemtrainNet(nn.Module):
        """The layer list (or the MLP as one): node i reads node input[i]'s
        output (-1: the model's input); an add node sums two."""

        def __init__(self):
            super().__init__()
            self.srcs = [(n["input"], n.get("input2")) for n in m.nodes]
            self.nodes = nn.ModuleList([module_of(n) or nn.Identity() for n in m.nodes])
            self.is_add = [n["kind"] == "add" for n in m.nodes]
            self.shape = m.input_shape if m.desc["model"]["form"] == "layers" else (-1,)

        def forward(self, x):
            x = x.reshape((x.shape[0],) + tuple(self.shape))
            outs = []
            for mod, (s1, s2), add in zip(self.nodes, self.srcs, self.is_add):
                a = x if s1 < 0 else outs[s1]
                outs.append(a + (x if s2 < 0 else outs[s2]) if add else mod(a))
            return outs[-1].reshape(x.shape[0], -1)

    def weights(names):
        return nn.ParameterList([param(n) for n in names])

    class BinaryNet(nn.Module):
        """BP+BW+BA and TinyFoA's binarised forward (beta from this batch)."""

        def __init__(self):
            super().__init__()
            self.layers = m.desc["model"]["layers"]
            self.W = weights([l["weight"] for l in self.layers])
            self.b = weights([l["bias"] for l in self.layers])
            self.tiny = m.inference["kind"] == "tinyfoa"

        def forward(self, x):
            h = x.reshape(x.shape[0], -1)
            n = len(self.layers)
            for k in range(n):
                w = self.W[k]
                if self.tiny and k == n - 1:
                    return h @ w.T
                alpha = torch.tensor(np.float32(w.detach().double().abs().sum().item()
                                                / w.numel()))
                z = alpha * (h @ torch.where(w > 0, 1.0, -1.0).T) + self.b[k]
                if k == n - 1:
                    return z
                beta = (z.double().abs().sum() / z.numel()).float()
                h = torch.where(z > 0, beta, torch.zeros((), dtype=z.dtype))
            return h

    class GoodnessClassifier(nn.Module):
        """Forward-Forward: the label with the most accumulated goodness."""

        def __init__(self):
            super().__init__()
            self.layers = [l for l in m.desc["model"]["layers"] if not l.get("unused")]
            self.W = weights([l["weight"] for l in self.layers])
            self.b = weights([l["bias"] for l in self.layers])
            self.acts = nn.ModuleList([act(l["activation"]) for l in self.layers])
            inf = m.inference
            self.counted = set(inf["goodness_layers"])
            self.width = float(sum(self.layers[l - 1]["out"] for l in self.counted))
            self.lo, self.hi = float(inf["label_off"]), float(inf["label_on"])

        @staticmethod
        def inv_rms(h):
            ss = (h.double() ** 2).sum(dim=1)
            return 1.0 / (torch.sqrt(ss / h.shape[1]).float() + 1e-8)

        def forward(self, x):
            x = x.reshape(x.shape[0], -1)
            C = m.classes
            S = torch.zeros(x.shape[0], C)
            for c in range(C):
                xe = x.clone()
                xe[:, :C] = self.lo
                xe[:, c] = self.hi
                h = None
                for li in range(1, len(self.layers) + 1):
                    w, b = self.W[li - 1], self.b[li - 1]
                    z = (xe @ w.T) * self.inv_rms(xe)[:, None] if li == 1 else h @ w.T
                    h = self.acts[li - 1](z + b)
                    if li in self.counted:
                        S[:, c] += (h.double() ** 2).sum(dim=1).float()
                    if li < len(self.layers):
                        h = h * self.inv_rms(h)[:, None]
            return S / self.width - 1.0

    kind = m.inference["kind"]
    net = GoodnessClassifier() if kind == "ff" else \
        BinaryNet() if kind in ("binary", "tinyfoa") else MemtrainNet()
    return net.eval()

