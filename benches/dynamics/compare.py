#!/usr/bin/env python3
"""Reads what benches/compare-dynamics wrote and sets the toolkit beside PyTorch eager.

usage: python compare.py OUT   (OUT/<case>/toolkit/<variant>/seed-<s>/metrics.csv,
                                OUT/<case>/torch/<variant>-seed-<s>.json,
                                OUT/<case>/toolkit-init.json)

Prints a Markdown report: per case and variant the per-epoch training loss and test accuracy
(mean ± std over seeds) of both, the checks with their verdicts (and the difference in
standard errors of the difference of the means, Welch's t), and the initial statistics of
every parameter (seed 0). Exits 1 when a check fails.

Checks (the toolkit's mean against PyTorch's seed spread):
- a training loss (the first epoch's; for adaptive runs also the epoch after the first lock):
  |Δ| ≤ max(2 pooled standard deviations, 2 % of PyTorch's mean);
- the final test accuracy: |Δ| ≤ 0.15 percentage points.
Standard library only.
"""
import csv
import glob
import json
import math
import os
import re
import statistics
import sys

LOSS_REL = 0.02
ACC_PP = 0.15


def mean_sd(xs):
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt(xs, scale=1.0, digits=4):
    m, s = mean_sd([x * scale for x in xs])
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def seed_of(path):
    return int(re.search(r"seed-(\d+)", path).group(1))


def read_toolkit(case_dir, variant):
    runs = {}
    for path in glob.glob(os.path.join(case_dir, "toolkit", variant, "seed-*", "metrics.csv")):
        with open(path) as f:
            rows = list(csv.DictReader(f))
        runs[seed_of(path)] = [
            {
                "train_loss": float(r["train_loss"]),
                "test_accuracy": float(r["test_accuracy"]),
                "learnable_params": int(r["learnable_params"]),
                "newly_locked": [x for x in r["newly_locked"].split("+") if x],
            }
            for r in rows
        ]
    return runs


def read_torch(case_dir, variant):
    runs = {}
    for path in glob.glob(os.path.join(case_dir, "torch", f"{variant}-seed-*.json")):
        with open(path) as f:
            runs[seed_of(path)] = json.load(f)["epochs"]
    return runs


def first_lock(epochs):
    return next((i for i, e in enumerate(epochs) if e["newly_locked"]), None)


class Report:
    def __init__(self):
        self.lines, self.failed = [], []

    def out(self, line=""):
        self.lines.append(line)

    def check(self, what, torch_xs, ours_xs, kind):
        tm, ts = mean_sd(torch_xs)
        om, os_ = mean_sd(ours_xs)
        pooled = math.sqrt((ts**2 + os_**2) / 2)
        delta = om - tm
        # The difference in standard errors (Welch): how far the seeds resolve it.
        se = math.sqrt(ts**2 / len(torch_xs) + os_**2 / len(ours_xs))
        z = f"{delta / se:+.1f}" if se > 0 else "-"
        if kind == "loss":
            tol = max(2 * pooled, LOSS_REL * abs(tm))
            rule = f"max(2 pooled sd = {2 * pooled:.4f}, 2 % = {LOSS_REL * abs(tm):.4f})"
            cells = f"{tm:.4f} ± {ts:.4f} | {om:.4f} ± {os_:.4f} | {delta:+.4f}"
        else:
            tol = ACC_PP / 100
            rule = f"0.15 pp (2 pooled sd = {200 * pooled:.2f} pp)"
            cells = f"{100 * tm:.2f} ± {100 * ts:.2f} % | {100 * om:.2f} ± {100 * os_:.2f} % | {100 * delta:+.2f} pp"
        ok = abs(delta) <= tol
        if not ok:
            self.failed.append(what)
        self.out(f"| {what} | {cells} | {z} | {rule} | {'holds' if ok else '**fails**'} |")


def compare_case(rep, case_dir, case, variant):
    ours, torch = read_toolkit(case_dir, variant), read_torch(case_dir, variant)
    seeds = sorted(set(ours) & set(torch))
    if not seeds:
        rep.out(f"### {case} / {variant}: no runs of both implementations\n")
        rep.failed.append(f"{case}/{variant}: missing runs")
        return
    missing = sorted(set(ours) ^ set(torch))
    epochs = min(min(len(ours[s]) for s in seeds), min(len(torch[s]) for s in seeds))
    rep.out(f"### {case} / {variant} (seeds {','.join(map(str, seeds))})")
    if missing:
        rep.out(f"\nSeeds with one implementation only, left out: {missing}")
    rep.out()
    rep.out("| epoch | train loss, PyTorch | train loss, toolkit | test acc, PyTorch (%) | test acc, toolkit (%) | learnable, PyTorch | learnable, toolkit |")
    rep.out("|---|---|---|---|---|---|---|")
    for e in range(epochs):
        col = lambda runs, k, s=1.0, d=4: fmt([runs[x][e][k] for x in seeds], s, d)  # noqa: E731
        learn = lambda runs: "/".join(sorted({str(runs[x][e]["learnable_params"]) for x in seeds}))  # noqa: E731
        rep.out(
            f"| {e + 1} | {col(torch, 'train_loss')} | {col(ours, 'train_loss')} | "
            f"{col(torch, 'test_accuracy', 100, 2)} | {col(ours, 'test_accuracy', 100, 2)} | "
            f"{learn(torch)} | {learn(ours)} |"
        )
    rep.out()
    rep.out("| check | PyTorch | toolkit | Δ | Δ / s.e. | tolerance | verdict |")
    rep.out("|---|---|---|---|---|---|---|")
    rep.check(f"{case}/{variant}: epoch-1 train loss", [torch[s][0]["train_loss"] for s in seeds], [ours[s][0]["train_loss"] for s in seeds], "loss")
    if variant != "baseline":
        locks = {name: [first_lock(runs[s]) for s in seeds] for name, runs in (("PyTorch", torch), ("toolkit", ours))}
        after = {}
        for name, runs in (("PyTorch", torch), ("toolkit", ours)):
            after[name] = [runs[s][i + 1]["train_loss"] for s, i in zip(seeds, locks[name]) if i is not None and i + 1 < epochs]
        if len(after["PyTorch"]) == len(seeds) and len(after["toolkit"]) == len(seeds):
            rep.check(f"{case}/{variant}: train loss in the epoch after the first lock", after["PyTorch"], after["toolkit"], "loss")
        else:
            rep.out(f"| {case}/{variant}: epoch after the first lock | a seed did not lock in time | | | | | **fails** |")
            rep.failed.append(f"{case}/{variant}: lock")
        lock_note = "; ".join(f"{k}: {', '.join('-' if i is None else str(i + 1) for i in v)}" for k, v in locks.items())
    rep.check(f"{case}/{variant}: final (epoch {epochs}) test accuracy", [torch[s][epochs - 1]["test_accuracy"] for s in seeds], [ours[s][epochs - 1]["test_accuracy"] for s in seeds], "acc")
    if variant != "baseline":
        rep.out(f"\nFirst lock after epoch (per seed) — {lock_note}.")
    rep.out()


def init_table(rep, case_dir, case):
    path_ours = os.path.join(case_dir, "toolkit-init.json")
    torch_files = sorted(glob.glob(os.path.join(case_dir, "torch", "*-seed-0.json")))
    if not (os.path.exists(path_ours) and torch_files):
        return
    with open(path_ours) as f:
        ours = {p["name"]: p for p in json.load(f)}
    with open(torch_files[0]) as f:
        theirs = json.load(f)["init"]
    rep.out(f"### {case}: parameters at initialisation (seed 0)")
    rep.out()
    rep.out("| variable | shape | max abs, PyTorch | max abs, toolkit | mean, PyTorch | mean, toolkit | std, PyTorch | std, toolkit | std ratio |")
    rep.out("|---|---|---|---|---|---|---|---|---|")
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            rep.out(f"| {name} | only in {'the toolkit' if name in ours else 'PyTorch'} | | | | | | | |")
            rep.failed.append(f"{case}: variable {name} in one implementation only")
            continue
        o, t = ours[name], theirs[name]
        ratio = o["std"] / t["std"] if t["std"] > 0 else (1.0 if o["std"] == 0 else math.inf)
        rep.out(
            f"| {name} | {t['shape']} | {max(abs(t['min']), abs(t['max'])):.4f} | {max(abs(o['min']), abs(o['max'])):.4f} | "
            f"{t['mean']:+.5f} | {o['mean']:+.5f} | {t['std']:.5f} | {o['std']:.5f} | {ratio:.3f} |"
        )
    rep.out()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    rep = Report()
    for case_dir in sorted(glob.glob(os.path.join(out, "*", ""))):
        case = os.path.basename(os.path.dirname(case_dir))
        variants = sorted({os.path.basename(p) for p in glob.glob(os.path.join(case_dir, "toolkit", "*")) if os.path.isdir(p)})
        rep.out(f"## {case}\n")
        for variant in sorted(variants, key=lambda v: (v != "baseline", v)):
            compare_case(rep, case_dir, case, variant)
        init_table(rep, case_dir, case)
    verdict = "every check holds" if not rep.failed else "failed: " + "; ".join(rep.failed)
    rep.out(f"**Verdict: {verdict}.**")
    print("\n".join(rep.lines))
    sys.exit(1 if rep.failed else 0)


if __name__ == "__main__":
    main()
