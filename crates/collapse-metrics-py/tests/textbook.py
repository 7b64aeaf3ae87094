"""The textbook neural-collapse report in plain numpy: every formula of the project's
specification (algorithms.md section 3) evaluated literally, with d x d covariances and a
pseudo-inverse, all features in memory. No code is shared with the Rust crate.

The oracle of the pytest suite and the baseline of benches/python_nc_metrics.py.
"""

import numpy as np

RTOL = 1e-10  # collapse_metrics.DEFAULT_PINV_RTOL, on the eigenvalues of Sigma_B


def nc2(v):
    """Equinorm, equiangularity, max-angle and ETF error of the rows of v (population std)."""
    c = v.shape[0]
    norms = np.linalg.norm(v, axis=1)
    unit = v / norms[:, None]
    cos = np.array([unit[i] @ unit[j] for i in range(c) for j in range(i + 1, c)])
    g = v @ v.T
    target = (np.eye(c) - np.ones((c, c)) / c) / np.sqrt(c - 1)
    return {
        "equinorm": norms.std() / norms.mean(),
        "equiangularity": cos.std(),
        "max_angle": np.abs(cos + 1.0 / (c - 1)).mean(),
        "etf_error": np.linalg.norm(g / np.linalg.norm(g) - target),
    }


def report(train_h, train_y, eval_h, eval_y, c, weight=None, bias=None,
           global_mean="weighted", rtol=RTOL):
    """The report of (eval_h, eval_y) against the class means of (train_h, train_y)."""
    train_h = np.asarray(train_h, dtype=np.float64)
    eval_h = np.asarray(eval_h, dtype=np.float64)
    means = np.stack([train_h[train_y == k].mean(0) for k in range(c)])
    mu_g = train_h.mean(0) if global_mean == "weighted" else means.mean(0)
    m_tilde = means - mu_g  # rows are the centred means
    n = len(eval_y)
    dev = eval_h - means[eval_y]
    sigma_w = dev.T @ dev / n
    sigma_b = m_tilde.T @ m_tilde / c
    pinv = np.linalg.pinv(sigma_b, rtol=rtol, hermitian=True)
    eig = np.linalg.eigvalsh(sigma_b)
    variances = [float(((dev[eval_y == k]) ** 2).sum(1).mean()) for k in range(c)]
    cdnv = [
        (variances[i] + variances[j]) / (2 * ((means[i] - means[j]) ** 2).sum())
        for i in range(c)
        for j in range(i + 1, c)
    ]
    # Distances class by class: an N x C x d array would not fit at large d.
    dists = np.stack([((eval_h - means[k]) ** 2).sum(1) for k in range(c)], axis=1)
    ncc = dists.argmin(1)
    out = {
        "global_mean": global_mean,
        "num_classes": c,
        "dim": train_h.shape[1],
        "rank": int((eig > rtol * eig.max()).sum()),
        "num_samples": n,
        "nc1": np.trace(sigma_w @ pinv) / c,
        **nc2(m_tilde),
        "cdnv": sum(cdnv) / len(cdnv),
        "ncc_accuracy": (ncc == eval_y).mean(),
        "within_trace": np.trace(sigma_w),
        "between_trace": np.trace(sigma_b),
        "class_variances": variances,
        "class_counts": [int((eval_y == k).sum()) for k in range(c)],
        "classifier": None,
    }
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float64)
        logits = eval_h @ weight.T + (0.0 if bias is None else np.asarray(bias, np.float64))
        pred = logits.argmax(1)
        w_hat = weight / np.linalg.norm(weight)
        m_hat = m_tilde / np.linalg.norm(m_tilde)
        out["classifier"] = {
            **nc2(weight),
            "nc3": np.linalg.norm(w_hat - m_hat) ** 2,
            "nc4": (pred != ncc).mean(),
            "accuracy": (pred == eval_y).mean(),
        }
    return out


def collapse_report(features, labels, c, weight=None, bias=None, global_mean="weighted"):
    """One data set against its own class means."""
    return report(features, labels, features, labels, c, weight, bias, global_mean)
