"""PyTorch reference for sweep (many-models-at-once) training throughput, fashion-mlp setting.

Written from PyTorch's own API. The model is 784 → 5 × [Linear 400, BatchNorm1d, ReLU] →
Linear 10; optimiser SGD (lr 0.01, momentum 0.9, weight decay 5e-4, PyTorch's default foreach
path); batch size 128; cross-entropy; in-memory seeded random data x ~ randn(N, 784),
y ~ randint(0, 10, (N,)) on the device. Each step accumulates the loss sum and the number of
correct predictions on the device, and there is one host read per epoch.

One ordinary eager model of this setting is benches/reference/mlp_throughput.py.

Mode:
  vmap M    M independent models of that architecture trained as one stack with
            torch.func.stack_module_state + torch.func.functional_call + torch.vmap. Each member
            is a separately constructed module (its own initialisation) and has its own seeded
            batch order per epoch, so every step gathers its [M, 128, 784] input with a single
            index_select from an [M, N] order tensor. Per-member loss = mean cross-entropy over
            its batch; the loss that is back-propagated is the sum over members, so each member
            gets exactly its own gradient. One torch.optim.SGD steps the stacked parameter
            tensors (leaf tensors with requires_grad); its update is elementwise, so it is the
            members' own SGD runs side by side.
            BatchNorm: training mode with PER-MEMBER running statistics. The BatchNorm buffers
            (running_mean, running_var, num_batches_tracked) are stacked to [M, ...] and passed
            into functional_call; under vmap the in-place running-stat updates of these batched
            buffers are supported (torch 2.11), so every member keeps its own running statistics,
            as an eager run would. torch.func.replace_all_batch_norm_modules_ is NOT used.

--check (vmap mode): with M = 2 and a tiny N (512, 2 epochs = 8 steps) trains the vmap stack
and, separately, each member as an ordinary eager module started from the same initial weights
and the same batch order with its own torch.optim.SGD; asserts the per-step losses agree to 1e-5
relative and that the final running statistics agree, and prints the max relative differences.

usage: python sweep_throughput.py MODE [M] [--epochs E] [--n N] [--threads T] [--device DEV]
                                  [--check]
       (defaults: epochs 3, n 12800, threads 1, device cpu)
prints: `pytorch-vmap-M{M} AGGREGATE_SAMPLES_PER_SECOND` (aggregate = M × N / epoch
        seconds, the samples of all members), the median over the epochs after the first.
        --check prints `check-vmap-M2 ... max_rel_loss_diff X max_rel_running_stat_diff Y ok`.
"""
import argparse
import copy
import statistics
import time

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

BATCH = 128


def make_model():
    layers, width, d = [], 400, 784
    for _ in range(5):
        layers += [nn.Linear(d, width), nn.BatchNorm1d(width), nn.ReLU()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, 10))


def make_opt(params):
    return torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)


def make_data(n, device):
    torch.manual_seed(0)
    x = torch.randn(n, 784, device=device)
    y = torch.randint(0, 10, (n,), device=device)
    return x, y


def member_orders(epoch, m, n, device):
    """[M, N] batch orders: member i's permutation for this epoch, seeded by (epoch, i)."""
    perms = [torch.randperm(n, generator=torch.Generator().manual_seed(epoch * 1_000_003 + i))
             for i in range(m)]
    return torch.stack(perms).to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class VmapStack:
    """M members of make_model() as stacked parameters/buffers, stepped by one vmapped call."""

    def __init__(self, members, device):
        params, buffers = stack_module_state([mm.to(device) for mm in members])
        self.params, self.buffers = params, buffers  # params: leaf tensors, requires_grad
        self.m = len(members)
        base = copy.deepcopy(members[0]).to("meta")
        base.train()

        def member_step(p, b, xb, yb):
            logits = functional_call(base, (p, b), (xb,))
            return nn.functional.cross_entropy(logits, yb), logits

        self.step_fn = torch.vmap(member_step, in_dims=(0, 0, 0, 0))
        self.opt = make_opt(list(params.values()))

    def step(self, x, y, idx):
        """idx: [M, B] sample indices; returns per-member losses [M] and logits [M, B, 10]."""
        m, b = idx.shape
        flat = idx.reshape(-1)
        xb = x.index_select(0, flat).view(m, b, x.shape[1])
        yb = y.index_select(0, flat).view(m, b)
        losses, logits = self.step_fn(self.params, self.buffers, xb, yb)
        self.opt.zero_grad()
        losses.sum().backward()  # members are independent: each gets its own gradient
        self.opt.step()
        return losses, logits, yb


def run_vmap(m, epochs, n, device):
    x, y = make_data(n, device)
    stack = VmapStack([make_model() for _ in range(m)], device)
    rates = []
    for epoch in range(epochs):
        orders = member_orders(epoch, m, n, device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        sync(device)
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            losses, logits, yb = stack.step(x, y, orders[:, start:start + BATCH])
            loss_sum += losses.detach().double().sum() * yb.shape[1]
            correct += (logits.argmax(-1) == yb).sum()
        float(loss_sum)  # the one host read per epoch
        rates.append(m * n / (time.perf_counter() - t0))
    print(f"pytorch-vmap-M{m} {statistics.median(rates[1:] or rates):.0f}")


def run_check(device, m=2, n=512, epochs=2):
    x, y = make_data(n, device)
    members = [make_model() for _ in range(m)]
    eager = [copy.deepcopy(mm).to(device) for mm in members]  # same initial weights
    stack = VmapStack(members, device)
    opts = [make_opt(e.parameters()) for e in eager]
    max_rel, steps = 0.0, 0
    for epoch in range(epochs):
        orders = member_orders(epoch, m, n, device)
        for start in range(0, n, BATCH):
            idx = orders[:, start:start + BATCH]
            v_losses, _, _ = stack.step(x, y, idx)
            v_losses = v_losses.detach().double().cpu()
            for i, (model, opt) in enumerate(zip(eager, opts)):
                model.train()
                xb, yb = x.index_select(0, idx[i]), y.index_select(0, idx[i])
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                e = float(loss.detach())
                rel = abs(float(v_losses[i]) - e) / max(abs(e), 1e-12)
                max_rel = max(max_rel, rel)
                assert rel <= 1e-5, f"step {steps} member {i}: vmap {float(v_losses[i])} eager {e}"
            steps += 1
    # per-member BatchNorm running statistics must match the eager runs too
    max_rs = 0.0
    for i, model in enumerate(eager):
        for name, buf in model.named_buffers():
            s = stack.buffers[name][i]
            if buf.dtype.is_floating_point:
                rel = ((s - buf).abs().max() / buf.abs().max().clamp_min(1e-12)).item()
                max_rs = max(max_rs, rel)
            else:
                assert torch.equal(s, buf), f"{name} member {i}: {s} vs {buf}"
    assert max_rs <= 1e-4, f"running stats differ: max rel {max_rs}"
    print(f"check-vmap-M{m} steps {steps} max_rel_loss_diff {max_rel:.3e} "
          f"max_rel_running_stat_diff {max_rs:.3e} ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["vmap"])
    ap.add_argument("m", nargs="?", type=int, default=None, help="number of models (vmap)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n", type=int, default=12_800)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--check", action="store_true", help="vmap vs separate eager runs, M=2")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.check:
        run_check(device)
    else:
        if args.m is None or args.m < 1:
            ap.error("vmap needs M >= 1")
        run_vmap(args.m, args.epochs, args.n, device)


if __name__ == "__main__":
    main()
