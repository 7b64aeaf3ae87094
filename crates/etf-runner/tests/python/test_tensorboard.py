"""The TensorBoard event files of a run, read back with the real `tensorboard` package.

A tiny synthetic adaptive run is stopped after epoch 1 and resumed (so its directory holds two
event files), then TensorBoard's own `EventAccumulator` loads the directory and every tag and
value is checked against `metrics.csv`: each numeric column is a scalar with one value per
epoch where the cell is not empty, equal to the cell up to float32 rounding (TensorBoard keeps
scalars in single precision) or the CSV's own rounding; the layer-name columns (the locks) are
text summaries in the epochs where they change.

The `etf` binary is `$ETF_BIN` (scripts/test-python sets it), else `target/debug/etf`.
"""

import csv
import math
import os
import pathlib
import re
import subprocess

import pytest
from tensorboard.backend.event_processing import event_accumulator

REPO = pathlib.Path(__file__).resolve().parents[4]
ETF = pathlib.Path(os.environ.get("ETF_BIN", REPO / "target" / "debug" / "etf"))

CONFIG = """
name = "tensorboard-test"
[data]
dataset = "synthetic"
probe_size = 120
[data.synthetic]
num_classes = 4
dim = 16
train_per_class = 60
test_per_class = 20
separation = 3.0
noise_std = 1.0
seed = 1
[model]
kind = "mlp"
depth = 3
width = 24
[train]
epochs = 3
batch_size = 32
device = "cpu"
[train.optimizer]
kind = "sgd"
lr = 0.05
momentum = 0.9
[[variant]]
name = "baseline"
kind = "baseline"
[[variant]]
name = "adaptive"
kind = "adaptive"
tau = 0.3
patience = 1
"""


def etf(*args):
    assert ETF.exists(), f"no etf binary at {ETF}: build it (cargo build --bin etf) or set ETF_BIN"
    done = subprocess.run(
        [str(ETF), *args], capture_output=True, text=True, env={**os.environ, "RUST_LOG": "warn"}
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tb")
    cfg = tmp / "exp.toml"
    cfg.write_text(CONFIG)
    out = tmp / "runs"
    etf("run", str(cfg), "--out", str(out), "--variant", "adaptive", "--stop-after", "1")
    etf("run", str(cfg), "--out", str(out), "--variant", "adaptive", "--resume")
    off = tmp / "off"
    etf("run", str(cfg), "--out", str(off), "--variant", "baseline", "--set", "output.tensorboard=false")
    return out / "adaptive" / "seed-0", off / "baseline" / "seed-0"


def read_csv(run):
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def is_number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


def tag_of(column):
    """The tag the writer gives a metrics.csv column (crates/etf-runner/src/tensorboard.rs)."""
    if "." in column:
        return "layer/" + column.replace(".", "/")
    head, _, rest = column.partition("_")
    return f"{head}/{rest}" if head in ("train", "test") and rest else column


def close(logged, cell):
    """`logged` (a float32) is the CSV cell up to float32 rounding or the cell's own decimals."""
    want = float(cell)
    if math.isnan(want):
        return math.isnan(logged)
    fixed = re.fullmatch(r"-?\d+\.(\d+)", cell)
    abs_tol = 0.5 * 10.0 ** -len(fixed.group(1)) * 1.001 if fixed else 0.0
    return math.isclose(logged, want, rel_tol=2e-7, abs_tol=abs_tol) or (
        abs(logged - want) <= abs(want) * 2.0**-23
    )


def load(run):
    acc = event_accumulator.EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_two_event_files_after_a_resume(runs):
    run, _ = runs
    files = sorted(p.name for p in run.iterdir() if "tfevents" in p.name)
    assert len(files) == 2, files


def test_every_numeric_column_is_a_scalar_with_the_csv_values(runs):
    run, _ = runs
    rows = read_csv(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    acc = load(run)
    names = [c for c in rows[0] if c != "epoch" and all(is_number(r[c]) or r[c] == "" for r in rows)]
    assert {tag_of(c) for c in names if any(r[c] for r in rows)} == set(acc.Tags()["scalars"])
    for column in names:
        want = [(int(r["epoch"]), r[column]) for r in rows if r[column] != ""]
        if not want:
            continue
        got = [(e.step, e.value) for e in acc.Scalars(tag_of(column))]
        assert [s for s, _ in got] == [s for s, _ in want], column  # each epoch once
        for (step, logged), (_, cell) in zip(got, want):
            assert close(logged, cell), (column, step, logged, cell)


def test_the_expected_tags_are_there(runs):
    run, _ = runs
    tags = set(load(run).Tags()["scalars"])
    for tag in [
        "train/loss",
        "test/loss",
        "train/accuracy",
        "test/accuracy",
        "learnable_params",
        "effective_depth",
        "layer/hidden1/ncc_train",
        "layer/hidden1/ncc_test",
        "layer/hidden1/nc1",
        "layer/hidden1/equinorm",
        "layer/hidden1/equiangularity",
        "layer/hidden1/cdnv",
        "layer/classifier/nc1",
        "layer/classifier/nc3",
    ]:
        assert tag in tags, tag


def test_the_locks_are_text_in_the_epochs_they_happen(runs):
    run, _ = runs
    rows = read_csv(run)
    acc = load(run)
    locks = [(int(r["epoch"]), r["newly_locked"]) for r in rows if r["newly_locked"]]
    assert locks, "the adaptive run locked nothing: lower tau in CONFIG"
    got = [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors("newly_locked")]
    assert got == locks
    changes, before = [], ""
    for r in rows:
        if r["locked_layers"] and r["locked_layers"] != before:
            changes.append((int(r["epoch"]), r["locked_layers"]))
        before = r["locked_layers"]
    got = [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors("locked_layers")]
    assert got == changes
    plugin = acc.SummaryMetadata("newly_locked").plugin_data.plugin_name
    assert plugin == "text"


def test_switched_off_no_event_file(runs):
    _, off = runs
    assert (off / "metrics.csv").exists()
    assert not [p for p in off.iterdir() if "tfevents" in p.name]
