"""The Python package against a plain-numpy textbook pipeline on the same data, side by side.

N = 10 000 float32 features, C = 10 classes, d in {512, 2048, 4096} (argv), a classifier with
bias; the same data model as benches/benches/nc_metrics.rs. Methods:
- package: collapse_metrics.collapse_report on the whole array;
- package, batches: ClassMeans / CollapseAccumulator fed batches of 1 000 rows;
- textbook: crates/collapse-metrics-py/tests/textbook.py (d x d covariances, pinv, in numpy).
One BLAS thread (set before numpy is imported). Prints the median of REPEATS calls each
(textbook: fewer at large d) and the ratio, and checks that the reports agree.

Run with the package built in release mode (scripts/test-python builds a debug one):
    VIRTUAL_ENV=$VENV $VENV/bin/maturin develop --release \
        --manifest-path crates/collapse-metrics-py/Cargo.toml
    $VENV/bin/python benches/python_nc_metrics.py [DIMS] [REPEATS]
with VENV the project's virtual environment (~/.cache/etf-toolkit/torch-2.11.0).
"""

import os
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np  # noqa: E402

import collapse_metrics as cm  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates",
                                "collapse-metrics-py", "tests"))
import textbook  # noqa: E402

N, C, BATCH = 10_000, 10, 1_000


def layer(d):
    rng = np.random.default_rng(d)
    centres = rng.standard_normal((C, d), dtype=np.float32)
    labels = rng.integers(0, C, size=N)
    features = centres[labels] + 2 * rng.standard_normal((N, d), dtype=np.float32)
    weight = centres + 0.5 * rng.standard_normal((C, d), dtype=np.float32)
    bias = rng.standard_normal(C, dtype=np.float32)
    return features, labels, weight, bias


def batches(features, labels, weight, bias):
    pass1 = cm.ClassMeans(C, features.shape[1])
    for s in range(0, N, BATCH):
        pass1.update(features[s:s + BATCH], labels[s:s + BATCH])
    pass2 = cm.CollapseAccumulator(pass1.finalize(), weight=weight, bias=bias)
    for s in range(0, N, BATCH):
        pass2.update(features[s:s + BATCH], labels[s:s + BATCH])
    return pass2.finalize()


def median_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def main():
    dims = [int(d) for d in (sys.argv[1] if len(sys.argv) > 1 else "512,2048,4096").split(",")]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(f"# {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, 1 BLAS thread, numpy "
          f"{np.__version__}, N={N}, C={C}")
    print("d | package | package, batches | textbook | textbook / package | max rel. diff")
    for d in dims:
        args = layer(d)
        t_pkg, r_pkg = median_time(lambda: cm.collapse_report(*args[:2], C, *args[2:]), repeats)
        t_bat, r_bat = median_time(lambda: batches(*args), repeats)
        slow = max(1, repeats // (3 if d >= 4096 else 1))
        t_txt, r_txt = median_time(lambda: textbook.collapse_report(*args[:2], C, *args[2:]), slow)
        keys = ["nc1", "equinorm", "equiangularity", "max_angle", "etf_error", "cdnv",
                "ncc_accuracy", "within_trace", "between_trace"]
        diff = max(abs(r_pkg[k] - r_txt[k]) / max(abs(r_txt[k]), 1e-300) for k in keys)
        diff = max(diff, max(abs(r_pkg[k] - r_bat[k]) / max(abs(r_pkg[k]), 1e-300) for k in keys))
        print(f"{d} | {t_pkg:.3f} s | {t_bat:.3f} s | {t_txt:.3f} s | {t_txt / t_pkg:.1f}x | {diff:.1e}")


if __name__ == "__main__":
    main()
