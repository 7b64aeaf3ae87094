"""The Python package against a textbook numpy implementation (tests/textbook.py): the same
report to 1e-10, batching invariance, dtypes, and a ValueError naming the argument for every
kind of bad input."""

import math

import numpy as np
import pytest

import collapse_metrics as cm
import textbook

KEYS = {
    "global_mean", "num_classes", "dim", "rank", "num_samples", "nc1", "equinorm",
    "equiangularity", "max_angle", "etf_error", "cdnv", "ncc_accuracy", "within_trace",
    "between_trace", "class_variances", "class_counts", "classifier",
}
CLASSIFIER_KEYS = {"equinorm", "equiangularity", "max_angle", "etf_error", "nc3", "nc4", "accuracy"}


def layer(counts, d, seed, noise=1.5):
    """Features around random class centres (labels shuffled) and a classifier near them."""
    rng = np.random.default_rng(seed)
    c = len(counts)
    centres = rng.normal(size=(c, d))
    labels = rng.permutation(np.repeat(np.arange(c), counts))
    features = centres[labels] + noise * rng.normal(size=(len(labels), d))
    weight = centres + 0.7 * rng.normal(size=(c, d))
    bias = 0.3 * rng.normal(size=c)
    return features, labels, weight, bias


def assert_close(got, want, rtol=1e-10, path="report"):
    """Every number to rtol relative (1e-14 absolute near zero), everything else exactly."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for k in want:
            assert_close(got[k], want[k], rtol, f"{path}.{k}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, rtol, f"{path}[{i}]")
    elif want is None or isinstance(want, str):
        assert got == want, path
    else:
        g, w = float(got), float(want)
        assert g == w or abs(g - w) <= rtol * max(abs(g), abs(w)) or abs(g - w) <= 1e-14, (
            f"{path}: got {g!r}, want {w!r}"
        )


def streamed(features, labels, c, batch, weight=None, bias=None, global_mean="weighted",
             eval_features=None, eval_labels=None):
    """Both passes through the accumulators, in batches of `batch` rows."""
    pass1 = cm.ClassMeans(c, features.shape[1])
    for s in range(0, len(labels), batch):
        pass1.update(features[s:s + batch], labels[s:s + batch])
    stats = pass1.finalize(global_mean=global_mean)
    pass2 = cm.CollapseAccumulator(stats, weight=weight, bias=bias)
    if eval_features is None:
        eval_features, eval_labels = features, labels
    for s in range(0, len(eval_labels), batch):
        pass2.update(eval_features[s:s + batch], eval_labels[s:s + batch])
    return pass2.finalize()


CASES = [
    # counts, d, global mean, classifier, bias
    ([40, 40, 40, 40], 6, "weighted", True, True),
    ([5, 30, 12, 20, 8], 10, "unweighted", True, False),
    ([10, 9, 8, 12, 7, 11], 3, "weighted", True, True),  # d < C - 1
    ([60, 45], 32, "unweighted", False, False),
    ([120, 90, 150, 110, 100, 130, 95, 105, 140, 125], 64, "weighted", True, True),
]


@pytest.mark.parametrize("counts,d,global_mean,with_weight,with_bias", CASES)
def test_matches_textbook(counts, d, global_mean, with_weight, with_bias):
    features, labels, weight, bias = layer(counts, d, seed=len(counts) * 100 + d)
    c = len(counts)
    w = weight if with_weight else None
    b = bias if with_bias else None
    want = textbook.collapse_report(features, labels, c, w, b, global_mean)
    got = cm.collapse_report(features, labels, c, weight=w, bias=b, global_mean=global_mean)
    assert got["nc1"] > 0.01 and got["ncc_accuracy"] < 1.0, got  # a non-trivial case
    assert set(got) == KEYS
    if with_weight:
        assert set(got["classifier"]) == CLASSIFIER_KEYS
    assert_close(got, want)


def test_test_set_against_training_means():
    train_h, train_y, weight, bias = layer([30, 25, 35], 8, seed=7)
    test_h, test_y, _, _ = layer([12, 15, 9], 8, seed=8)
    want = textbook.report(train_h, train_y, test_h, test_y, 3, weight, bias)
    got = streamed(train_h, train_y, 3, 16, weight, bias,
                   eval_features=test_h, eval_labels=test_y)
    assert got["num_samples"] == 36
    assert_close(got, want)


@pytest.mark.parametrize("global_mean", ["weighted", "unweighted"])
def test_batching_changes_nothing(global_mean):
    features, labels, weight, bias = layer([50, 70, 30, 60], 12, seed=3)
    whole = cm.collapse_report(features, labels, 4, weight=weight, bias=bias,
                               global_mean=global_mean)
    for batch in [1, 7, 64, 1000]:
        got = streamed(features, labels, 4, batch, weight, bias, global_mean)
        assert_close(got, whole, rtol=1e-12)


def test_float32_and_every_integer_label_dtype():
    features, labels, weight, _ = layer([20, 25, 15], 5, seed=4)
    low, w32 = features.astype(np.float32), weight.astype(np.float32)
    want = cm.collapse_report(low.astype(np.float64), labels, 3, weight=w32.astype(np.float64))
    assert cm.collapse_report(low, labels, 3, weight=w32) == want  # f32 is widened exactly
    for dtype in [np.uint8, np.int8, np.int16, np.int32, np.uint32, np.uint64]:
        assert cm.collapse_report(low, labels.astype(dtype), 3, weight=w32) == want


def test_non_contiguous_and_list_inputs():
    features, labels, _, _ = layer([20, 25], 6, seed=5)
    want = cm.collapse_report(features, labels, 2)
    fortran = np.asfortranarray(features)
    strided = np.repeat(features, 2, axis=1)[:, ::2]
    assert not fortran.flags.c_contiguous and not strided.flags.c_contiguous
    assert cm.collapse_report(fortran, labels, 2) == want
    assert cm.collapse_report(strided, labels[::1].tolist(), 2) == want


def test_undefined_values_are_nan():
    features = np.ones((6, 2))
    r = cm.collapse_report(features, np.array([0, 1, 2, 0, 1, 2]), 3)
    assert r["rank"] == 0
    assert math.isnan(r["nc1"]) and math.isnan(r["equinorm"]) and math.isnan(r["cdnv"])


def test_mean_stats_and_effective_depth():
    features, labels, _, _ = layer([20, 25, 15], 5, seed=6)
    pass1 = cm.ClassMeans(3, 5)
    pass1.update(features, labels)
    stats = pass1.finalize(global_mean="unweighted")
    want = np.stack([features[labels == k].mean(0) for k in range(3)])
    np.testing.assert_allclose(stats.means, want, rtol=1e-12)
    np.testing.assert_allclose(stats.global_mean, want.mean(0), rtol=1e-12, atol=1e-15)
    assert stats.counts.tolist() == [20, 25, 15]
    assert (stats.rank, stats.num_classes, stats.dim) == (2, 3, 5)
    assert len(stats.singular_values) == 3
    assert cm.effective_depth([0.2, 0.95, 0.97], 0.9) == 2
    assert cm.effective_depth([0.2, 0.5], 0.9) is None


def raises(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match):
        fn(*args, **kwargs)


def test_bad_input_raises_value_error_naming_the_argument():
    features, labels, weight, bias = layer([6, 5, 7], 4, seed=9)
    report = cm.collapse_report
    raises("features must be 2-D", report, features[:, 0], labels, 3)
    raises("features must be 2-D", report, features[:, :, None], labels, 3)
    raises("features must have dtype float32 or float64", report, features.astype(int), labels, 3)
    raises("features must have dtype float32 or float64", report, features.astype(np.float16), labels, 3)
    raises("labels must be 1-D", report, features, labels[:, None], 3)
    raises("labels must have an integer dtype", report, features, labels.astype(float), 3)
    raises("labels must have an integer dtype", report, features, labels > 0, 3)
    raises("labels must have an integer dtype", report, features, ["a"] * len(labels), 3)
    raises("18 feature rows but 17 labels", report, features, labels[:-1], 3)
    raises(r"labels: 1 label\(s\) outside 0..3, e.g. -1", report, features,
           np.where(np.arange(18) == 4, -1, labels), 3)
    raises(r"labels: .* outside 0..2, e.g. 2", report, features, labels, 2 + 0)
    nan = features.copy()
    nan[2, 1] = np.nan
    nan[5, 0] = np.inf
    raises(r"features: 2 feature value\(s\) are not finite", report, nan, labels, 3)
    raises(r"labels: class\(es\) \[3\] have no sample", report, features, labels, 4)
    raises("num_classes: at least 2 classes", report, features, np.zeros(18, int), 1)
    raises("global_mean must be 'weighted' or 'unweighted'", report, features, labels, 3,
           global_mean="mean")
    raises(r"classifier weight has shape \[3, 5\], expected \[3, 4\]", report, features, labels,
           3, weight=np.zeros((3, 5)))
    raises("weight must be 2-D", report, features, labels, 3, weight=np.zeros(12))
    raises(r"classifier bias has shape \[2\], expected \[3\]", report, features, labels, 3,
           weight=weight, bias=bias[:2])
    raises("bias given without weight", report, features, labels, 3, bias=bias)
    bad_w = weight.copy()
    bad_w[0, 0] = np.nan
    raises("classifier weight: 1 value", report, features, labels, 3, weight=bad_w)

    pass1 = cm.ClassMeans(3, 4)
    raises("features have dimension 5, the accumulator expects 4", pass1.update,
           np.zeros((2, 5)), [0, 1])
    raises("dim: the feature dimension must be at least 1", cm.ClassMeans, 3, 0)
    raises("rtol", pass1.finalize, "weighted", -1.0)


def test_failed_updates_change_nothing_and_finalize_once():
    features, labels, _, _ = layer([6, 5, 7], 4, seed=10)
    pass1 = cm.ClassMeans(3, 4)
    pass1.update(features, labels)
    with pytest.raises(ValueError):
        pass1.update(features, labels + 3)
    stats = pass1.finalize()
    assert stats.counts.tolist() == [6, 5, 7]
    with pytest.raises(RuntimeError, match="already"):
        pass1.finalize()
    with pytest.raises(RuntimeError, match="already"):
        pass1.update(features, labels)
    pass2 = cm.CollapseAccumulator(stats)
    pass2.update(features, labels)
    assert pass2.finalize() == cm.collapse_report(features, labels, 3)
    with pytest.raises(RuntimeError, match="already"):
        pass2.finalize()


def test_inside_a_pytorch_loop():
    """The README's training-loop recipe: features of a torch model, batch by batch."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.randn(300, 20)
    y = torch.randint(0, 4, (300,))
    body = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU())
    fc = torch.nn.Linear(16, 4)
    loader = [(x[s:s + 64], y[s:s + 64]) for s in range(0, 300, 64)]

    with torch.no_grad():
        pass1 = cm.ClassMeans(4, 16)
        for xb, yb in loader:
            pass1.update(body(xb).detach().cpu().numpy(), yb.cpu().numpy())
        stats = pass1.finalize()
        w = fc.weight.detach().cpu().numpy()
        b = fc.bias.detach().cpu().numpy()
        pass2 = cm.CollapseAccumulator(stats, weight=w, bias=b)
        for xb, yb in loader:
            pass2.update(body(xb).detach().cpu().numpy(), yb.cpu().numpy())
        got = pass2.finalize()
        h = body(x).numpy()
    want = textbook.collapse_report(h, y.numpy(), 4, w, b)
    assert_close(got, want, rtol=1e-9)
    assert got["classifier"]["accuracy"] == pytest.approx(
        float((fc(torch.from_numpy(h)).argmax(1) == y).double().mean()), abs=1e-12)
