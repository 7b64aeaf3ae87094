#!/usr/bin/env python3
"""PyTorch eager reference for crates/etf-transformer/examples/vit_throughput.rs.

Same model (pre-LN ViT: conv patch embedding, class token, learned positions, blocks
[x + MHSA(LN(x)); x + FFN(LN(x))], final LN, linear head), same optimiser (AdamW, decay on
weights of linears and the patch conv only), same batch and in-memory random data. The ETF variant
replaces W1/W2 of every FFN by fixed tensors outside the optimiser, like the Rust model.
Prints one line per variant: `variant=<name> samples_per_s=<float> ...`.

Run with the project's venv: ~/.cache/etf-toolkit/torch-2.11.0/bin/python vit_throughput.py
"""
import argparse
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Vit(nn.Module):
    def __init__(self, chans, size, patch, dim, depth, heads, ratio, classes):
        super().__init__()
        n = (size // patch) ** 2
        self.patch_embed = nn.Conv2d(chans, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, round(dim * ratio)) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), t], 1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, 0]))


def fix_ffn_weights(model):
    """Replaces every FFN weight by a fixed (non-parameter) tensor: the ETF variant's cost model.
    The values do not change the cost, so the initial weights are kept as the fixed tensors."""
    for blk in model.blocks:
        for lin in (blk.fc1, blk.fc2):
            w = lin.weight.detach().clone()
            del lin.weight
            lin.register_buffer("weight", w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp-ratio", type=float, default=4.0)
    ap.add_argument("--patch", type=int, default=7)
    ap.add_argument("--variants", default="baseline,etf")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)

    def sync():
        # CUDA runs asynchronously: wait for queued kernels before reading the clock.
        if dev.type == "cuda":
            torch.cuda.synchronize()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nb = 8
    data = torch.randn(nb, args.batch, 1, 28, 28, device=dev)
    labels = torch.randint(0, 10, (nb, args.batch), device=dev)
    for variant in args.variants.split(","):
        model = Vit(1, 28, args.patch, args.dim, args.depth, args.heads, args.mlp_ratio, 10).to(dev)
        if variant == "etf":
            fix_ffn_weights(model)
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            is_embed = name in ("cls_token", "pos_embed")
            (decay if p.dim() >= 2 and not is_embed else no_decay).append(p)
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
            lr=1e-3,
        )
        learnable = sum(p.numel() for p in model.parameters())
        model.train()
        start = None
        for step in range(args.warmup + args.steps):
            if step == args.warmup:
                sync()
                start = time.perf_counter()
            i = step % nb
            loss = F.cross_entropy(model(data[i]), labels[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()
        elapsed = time.perf_counter() - start
        rate = args.steps * args.batch / elapsed
        print(
            f"impl=pytorch variant={variant} samples_per_s={rate:.1f} steps={args.steps} "
            f"batch={args.batch} threads={args.threads} device={args.device} learnable={learnable} loss={loss.item():.4f}"
        )


if __name__ == "__main__":
    main()
