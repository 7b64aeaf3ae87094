#!/usr/bin/env python3
"""PyTorch eager reference for the training dynamics of an experiment file.

Reads the same TOML experiment file as `etf run` and trains the model it describes with
PyTorch's own modules and defaults: `nn.Linear`, `nn.BatchNorm1d`, `nn.ReLU` for the MLP;
`nn.Conv2d`, `nn.LayerNorm`, `nn.Linear`, `F.scaled_dot_product_attention`, `nn.GELU`,
`nn.Dropout` for the ViT; `torch.optim.SGD` / `torch.optim.AdamW`; `MultiStepLR` per epoch or
`LinearLR` warm-up then `CosineAnnealingLR` per step; `F.cross_entropy` (mean). Nothing here
is taken from the Rust code: initialisation is whatever PyTorch's modules do by themselves.

The `adaptive` variant (MLP) follows algorithms.md §4 as written: after each probe epoch, the
training NCC accuracy of every hidden layer (class means and decisions on a fixed
class-balanced probe subset, evaluation mode); once the smallest layer l* has been >= tau for
`patience` probes, every Linear after it is overwritten by a simplex ETF map (nearest /
random / canonical, scale 1), set to `requires_grad_(False)` and removed from the optimiser
with its state.

Writes one JSON file: the initial statistics of every parameter and buffer, and per epoch the
training loss and accuracy, test loss and accuracy, learnable parameters and the layers locked.

usage: python dynamics.py CONFIG.toml --variant NAME --seed S --out FILE.json [--threads 1]
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time
import tomllib
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
warnings.filterwarnings("ignore", message="The epoch parameter in `scheduler.step\\(\\)`")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# Published per-data-set pixel statistics (torchvision's for MNIST).
NORMALISATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def fail(msg):
    print(f"dynamics.py: {msg}", file=sys.stderr)
    sys.exit(2)


def read_idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            raw = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
            break
    else:
        fail(f"{path}(.gz) not found: run scripts/fetch-data")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def load_split(root, dataset, split):
    images, labels = FILES[split]
    x = read_idx(os.path.join(root, dataset, images)).float().div_(255.0)
    mean, std = NORMALISATION[dataset]
    return ((x - mean) / std).unsqueeze(1), read_idx(os.path.join(root, dataset, labels)).long()


def balanced_subset(y, n, classes, seed):
    """n indices, as equal per class as n allows, drawn at random (fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(classes):
        idx = (y == c).nonzero().flatten()
        take = n // classes + (1 if c < n % classes else 0)
        picked.append(idx[torch.randperm(len(idx), generator=g)[:take]])
    return torch.cat(picked).sort().values


# ---------------------------------------------------------------------------- models


class Hidden(nn.Module):
    def __init__(self, fan_in, width, batch_norm):
        super().__init__()
        self.fc = nn.Linear(fan_in, width)
        self.bn = nn.BatchNorm1d(width) if batch_norm else None

    def forward(self, x):
        z = self.fc(x)
        h = torch.relu(self.bn(z) if self.bn is not None else z)
        return h, z


class Mlp(nn.Module):
    def __init__(self, fan_in, depth, width, batch_norm, classes, tap):
        super().__init__()
        self.depth, self.tap = depth, tap
        for layer in range(1, depth + 1):
            setattr(self, f"hidden{layer}", Hidden(fan_in if layer == 1 else width, width, batch_norm))
        self.classifier = nn.Linear(width, classes)

    def hidden(self, layer):
        return getattr(self, f"hidden{layer}")

    def linears(self):
        return [self.hidden(layer).fc for layer in range(1, self.depth + 1)] + [self.classifier]

    def forward(self, x, taps=False):
        h, feats = x.flatten(1), []
        for layer in range(1, self.depth + 1):
            h, z = self.hidden(layer)(h)
            feats.append(z if self.tap == "pre-bn" else h)
        logits = self.classifier(h)
        return (logits, feats) if taps else logits


class Attention(nn.Module):
    def __init__(self, dim, heads, attn_dropout, proj_dropout):
        super().__init__()
        self.heads, self.attn_dropout = heads, attn_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(proj_dropout)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=p)
        return self.drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, dropout, attn_dropout):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, attn_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm2(x))))))


class Vit(nn.Module):
    def __init__(self, chans, size, patch, dim, depth, heads, ratio, classes, dropout, attn_dropout):
        super().__init__()
        n = (size // patch) ** 2
        self.patch_embed = nn.Conv2d(chans, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.drop = nn.Dropout(dropout)
        hidden = round(dim * ratio)
        self.blocks = nn.ModuleList(
            Block(dim, heads, hidden, dropout, attn_dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x, taps=False):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(len(x), -1, -1), t], 1) + self.pos_embed
        t, feats = self.drop(t), []
        for block in self.blocks:
            t = block(t)
            feats.append(t[:, 0])
        logits = self.head(self.norm(t[:, 0]))
        return (logits, feats) if taps else logits


# ---------------------------------------------------------------------------- ETF locks


def simplex_etf_map(weight, orientation, generator):
    """The ETF map of algorithms.md §1–§2 for a weight of shape [out, in], scale 1."""
    out_dim, in_dim = weight.shape
    k, p = min(out_dim, in_dim), max(out_dim, in_dim)
    w = weight.detach().double()
    y = w if out_dim >= in_dim else w.T  # [p, k]
    centre = torch.eye(k, dtype=torch.float64) - 1.0 / k
    if orientation == "nearest":
        a, _, bt = torch.linalg.svd(y @ centre, full_matrices=False)
        u = a @ bt
    elif orientation == "random":
        q, r = torch.linalg.qr(torch.randn(p, k, dtype=torch.float64, generator=generator))
        u = q * torch.sign(torch.diagonal(r))
    elif orientation == "canonical":
        u = torch.eye(p, k, dtype=torch.float64)
    else:
        fail(f"unknown lock orientation {orientation!r}")
    m = math.sqrt(k / (k - 1)) * u @ centre
    return (m if out_dim >= in_dim else m.T).to(weight.dtype)


def lock(linear, orientation, optimizer, generator):
    with torch.no_grad():
        linear.weight.copy_(simplex_etf_map(linear.weight, orientation, generator))
    linear.weight.requires_grad_(False)
    linear.weight.grad = None
    for group in optimizer.param_groups:
        group["params"] = [p for p in group["params"] if p is not linear.weight]
    optimizer.state.pop(linear.weight, None)


def ncc_accuracy(feats, y, classes):
    """Nearest class centre accuracy, class means from the same features (the probe)."""
    means = torch.stack([feats[y == c].double().mean(0) for c in range(classes)])
    pred = torch.cdist(feats.double(), means).argmin(1)
    return (pred == y).double().mean().item()


# ---------------------------------------------------------------------------- training


def tensor_stats(t):
    t = t.detach().double()
    return {
        "shape": list(t.shape),
        "min": t.min().item(),
        "max": t.max().item(),
        "mean": t.mean().item(),
        "std": t.std(unbiased=False).item() if t.numel() > 1 else 0.0,
    }


def build(cfg, shape, classes):
    m = cfg["model"]
    if m["kind"] == "mlp":
        return Mlp(
            shape[0] * shape[1] * shape[2],
            m["depth"],
            m["width"],
            m.get("batch_norm", True),
            classes,
            m.get("tap", "pre-bn"),
        )
    if m["kind"] == "vit":
        if m.get("etf_head", False):
            fail("model.etf_head is not supported by the reference")
        return Vit(
            shape[0],
            shape[1],
            m["patch"],
            m["dim"],
            m["depth"],
            m["heads"],
            m.get("mlp_ratio", 4.0),
            classes,
            m.get("dropout", 0.0),
            m.get("attn_dropout", 0.0),
        )
    fail(f"model.kind {m['kind']!r} is not supported by the reference")


def optimizer_for(model, spec):
    kind = spec["kind"]
    if kind == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=spec["lr"],
            momentum=spec.get("momentum", 0.0),
            nesterov=spec.get("nesterov", False),
            weight_decay=spec.get("weight_decay", 0.0),
        )
    if kind == "adamw":
        # Decay on the weights of linears and the patch convolution only (≥ 2 dims, minus the
        # class token and positions), none on biases, norms and embeddings.
        decay, plain = [], []
        for name, p in model.named_parameters():
            (decay if p.ndim >= 2 and name not in ("cls_token", "pos_embed") else plain).append(p)
        return torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": spec.get("weight_decay", 0.01)},
                {"params": plain, "weight_decay": 0.0},
            ],
            lr=spec["lr"],
            betas=(spec.get("beta1", 0.9), spec.get("beta2", 0.999)),
            eps=spec.get("eps", 1e-8),
        )
    fail(f"train.optimizer.kind {kind!r} is not supported by the reference")


def scheduler_for(opt, spec, epochs, steps_per_epoch):
    """(scheduler, steps per call): per epoch for multi-step, per step for cosine."""
    kind = spec.get("kind", "constant")
    if kind == "constant":
        return None, None
    if kind == "multi-step":
        s = torch.optim.lr_scheduler.MultiStepLR(opt, spec["milestones"], spec.get("gamma", 0.1))
        return s, "epoch"
    if kind == "cosine":
        warm = spec.get("warmup_epochs", 0) * steps_per_epoch
        rest = max(1, (epochs - spec.get("warmup_epochs", 0)) * steps_per_epoch)
        eta_min = spec.get("min_factor", 0.0) * opt.param_groups[0]["lr"]
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=rest, eta_min=eta_min)
        if warm == 0:
            return cosine, "step"
        linear = torch.optim.lr_scheduler.LinearLR(
            opt, start_factor=1.0 / warm, end_factor=1.0, total_iters=max(1, warm - 1)
        )
        s = torch.optim.lr_scheduler.SequentialLR(opt, [linear, cosine], milestones=[warm])
        return s, "step"
    fail(f"train.schedule.kind {kind!r} is not supported by the reference")


def evaluate(model, x, y, batch):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i : i + batch])
            loss += F.cross_entropy(logits, y[i : i + batch], reduction="sum").item()
            correct += (logits.argmax(1) == y[i : i + batch]).sum().item()
    return loss / len(x), correct / len(x)


def probe_ncc(model, x, y, batch, classes):
    model.eval()
    with torch.no_grad():
        per_batch = [model(x[i : i + batch], taps=True)[1] for i in range(0, len(x), batch)]
    return [ncc_accuracy(torch.cat(layer), y, classes) for layer in zip(*per_batch)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--variant", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root")
    ap.add_argument("--subset-seed", type=int, default=0, help="seed of the data.train_limit subset")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.config, "rb") as f:
        cfg = tomllib.load(f)
    variant = next((v for v in cfg.get("variant", []) if v["name"] == a.variant), None)
    if variant is None:
        fail(f"{a.config}: no variant named {a.variant!r}")
    if variant["kind"] not in ("baseline", "adaptive"):
        fail(f"variant kind {variant['kind']!r} is not supported by the reference")
    if variant["kind"] == "adaptive" and cfg["model"]["kind"] != "mlp":
        fail("the reference's adaptive variant is the MLP's")
    data, train = cfg["data"], cfg["train"]
    if "augment" in train:
        fail("train.augment is not supported by the reference")
    if train.get("label_smoothing", 0.0) != 0.0:
        fail("train.label_smoothing is not supported by the reference")
    root = a.data_root or os.environ.get("ETF_DATA_DIR") or data.get("root", "data")
    xtr, ytr = load_split(root, data["dataset"], "train")
    xte, yte = load_split(root, data["dataset"], "test")
    classes = 10
    if data.get("train_limit", 0) and data["train_limit"] < len(ytr):
        keep = balanced_subset(ytr, data["train_limit"], classes, seed=a.subset_seed)
        xtr, ytr = xtr[keep], ytr[keep]
    probe = balanced_subset(ytr, min(data.get("probe_size", 10000), len(ytr)), classes, seed=1)

    torch.manual_seed(a.seed)
    model = build(cfg, xtr.shape[1:], classes)
    # Every parameter and buffer; BatchNorm's num_batches_tracked is a step counter (it only
    # matters with momentum=None), not a tensor the toolkit has.
    init = {
        name: tensor_stats(t)
        for name, t in model.state_dict().items()
        if not name.endswith("num_batches_tracked")
    }
    opt = optimizer_for(model, train["optimizer"])
    epochs, batch = train["epochs"], train["batch_size"]
    eval_batch = train.get("eval_batch_size", 1000)
    steps = math.ceil(len(ytr) / batch)
    sched, every = scheduler_for(opt, train.get("schedule", {}), epochs, steps)
    adaptive = variant["kind"] == "adaptive"
    tau = variant.get("tau", train.get("tau", 0.9))
    patience, probe_every = variant.get("patience", 5), variant.get("probe_every", 1)
    orientation = variant.get("orientation", "nearest")
    streaks, locked_after = [0] * cfg["model"].get("depth", 0), None
    lock_gen = torch.Generator().manual_seed(a.seed)
    order = torch.Generator().manual_seed(a.seed)
    records = []
    for epoch in range(epochs):
        t0 = time.time()
        model.train()
        perm = torch.randperm(len(ytr), generator=order)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(ytr), batch):
            idx = perm[i : i + batch]
            xs, ys = xtr[idx], ytr[idx]
            logits = model(xs)
            loss = F.cross_entropy(logits, ys)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if every == "step":
                sched.step()
            loss_sum += loss.item() * len(ys)
            correct += (logits.argmax(1) == ys).sum().item()
        if every == "epoch":
            sched.step()
        test_loss, test_acc = evaluate(model, xte, yte, eval_batch)
        newly = []
        if adaptive and (epoch + 1) % probe_every == 0:
            accs = probe_ncc(model, xtr[probe], ytr[probe], eval_batch, classes)
            streaks = [s + 1 if acc >= tau else 0 for s, acc in zip(streaks, accs)]
            separable = next((i + 1 for i, s in enumerate(streaks) if s >= patience), None)
            if separable is not None and (locked_after is None or separable < locked_after):
                locked_after = separable
                for layer, linear in enumerate(model.linears(), start=1):
                    if layer > separable and linear.weight.requires_grad:
                        lock(linear, orientation, opt, lock_gen)
                        newly.append(f"hidden{layer}" if layer <= model.depth else "classifier")
        records.append(
            {
                "epoch": epoch + 1,
                "train_loss": loss_sum / len(ytr),
                "train_accuracy": correct / len(ytr),
                "test_loss": test_loss,
                "test_accuracy": test_acc,
                "learnable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "newly_locked": newly,
                "seconds": time.time() - t0,
            }
        )
        print(
            f"torch {cfg['name']}/{a.variant} s{a.seed} epoch {epoch + 1}: loss {loss_sum / len(ytr):.4f} "
            f"test {test_acc:.4f} locked {newly}",
            file=sys.stderr,
        )
    out = {
        "implementation": f"pytorch {torch.__version__}",
        "config": a.config,
        "variant": a.variant,
        "seed": a.seed,
        "init": init,
        "epochs": records,
    }
    tmp = a.out + f".tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
