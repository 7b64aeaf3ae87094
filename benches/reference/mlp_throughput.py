"""PyTorch (eager) reference for the MLP training throughput.

The same model (784 → 5 × [Linear 400, BatchNorm1d, ReLU] → Linear 10), optimiser (SGD lr 0.01,
momentum 0.9, weight decay 5e-4), batch size (128) and in-memory data as
`crates/adaptive-etf/examples/mlp_throughput.rs`; each step also accumulates the loss sum and the
number of correct predictions on the device, as the Rust trainer does, and a fresh seeded
permutation per epoch gathers the batches with index_select.

usage: python mlp_throughput.py [EPOCHS] [N] [THREADS] [DEVICE]
prints: `pytorch-baseline SAMPLES_PER_SECOND` (median over the epochs after the first).
"""
import statistics
import sys
import time

import torch
from torch import nn


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 25_600
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    device = torch.device(sys.argv[4] if len(sys.argv) > 4 else "cpu")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(n, 784, device=device)
    y = torch.randint(0, 10, (n,), device=device)
    layers, width, d = [], 400, 784
    for _ in range(5):
        layers += [nn.Linear(d, width), nn.BatchNorm1d(width), nn.ReLU()]
        d = width
    model = nn.Sequential(*layers, nn.Linear(d, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rates = []
    for epoch in range(epochs):
        model.train()
        gen = torch.Generator().manual_seed(epoch)
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for start in range(0, n, 128):
            idx = order[start:start + 128]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * yb.shape[0]
            correct += (logits.argmax(-1) == yb).sum()
        float(loss_sum)  # the one read per epoch, as in the Rust trainer
        rates.append(n / (time.perf_counter() - t0))
    print(f"pytorch-baseline {statistics.median(rates[1:] or rates):.0f}")


if __name__ == "__main__":
    main()
