//! The textbook implementation: every formula of [`CollapseReport`] evaluated literally, with
//! `d × d` covariances `Σ_W`, `Σ_B` and the pseudo-inverse `Σ_B^†` from an eigendecomposition.
//!
//! It needs all features in memory and `O(d²)` memory, `O(N d² + d³)` time; it exists as an
//! independent check of the streaming accumulators (tests) and as the baseline of the
//! `nc_metrics` benchmark. Use [`crate::collapse_report`] or the accumulators in real runs.
//! It shares no arithmetic with the streaming code, only the input checks and the report type.
//!
//! Conventions are those of the streaming code (population std, `Σ_B^†` keeps eigenvalues above
//! `rtol · λ_max`), so the two agree to round-off whenever no eigenvalue of `Σ_B` sits near the
//! tolerance. Unlike the streaming code, the rank of `Σ_B^†` is not capped at `C − 1`.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};

use crate::geometry::Nc2;
use crate::input::{check_batch, check_counts, check_setup, Label, Matrix};
use crate::{
    Classifier, ClassifierReport, CollapseReport, GlobalMean, MetricsError, DEFAULT_PINV_RTOL,
};

/// Features `[N, d]` and their labels `[N]`, all in memory.
#[derive(Clone, Copy, Debug)]
pub struct Labelled<'a, L: Label = i64> {
    /// `[N, d]`, f32 or f64.
    pub features: Matrix<'a>,
    /// `[N]`, integer labels in `0..C`.
    pub labels: &'a [L],
}

/// The report of one data set measured against its own class means, with
/// [`DEFAULT_PINV_RTOL`]: the textbook twin of [`crate::collapse_report`].
pub fn collapse_report<L: Label>(
    features: Matrix<'_>,
    labels: &[L],
    num_classes: usize,
    classifier: Option<Classifier<'_>>,
    global_mean: GlobalMean,
) -> Result<CollapseReport, MetricsError> {
    let data = Labelled { features, labels };
    report(
        data,
        data,
        num_classes,
        classifier,
        global_mean,
        DEFAULT_PINV_RTOL,
    )
}

/// The report of `eval` measured against the class means of `train` (pass 1 on `train`,
/// pass 2 on `eval`), with `Σ_B^†` keeping eigenvalues `> rtol · λ_max(Σ_B)`.
pub fn report<L: Label>(
    train: Labelled<'_, L>,
    eval: Labelled<'_, L>,
    num_classes: usize,
    classifier: Option<Classifier<'_>>,
    global_mean: GlobalMean,
    rtol: f64,
) -> Result<CollapseReport, MetricsError> {
    let (c, d) = (num_classes, train.features.cols());
    check_setup(c, d)?;
    if !(rtol.is_finite() && rtol >= 0.0) {
        return Err(MetricsError::InvalidTolerance { rtol });
    }
    let train_y = check_batch(&train.features, train.labels, c, d)?;
    let eval_y = check_batch(&eval.features, eval.labels, c, d)?;
    let train_h = train.features.values();

    // Class means μ_c = (1/n_c) Σ_{y_i=c} h_i, sample by sample.
    let mut counts = vec![0u64; c];
    let mut means = vec![vec![0.0; d]; c];
    for (i, &y) in train_y.iter().enumerate() {
        counts[y] += 1;
        for (j, m) in means[y].iter_mut().enumerate() {
            *m += train_h.get(i * d + j);
        }
    }
    check_counts(&counts, "reference (train)")?;
    for (m, &n) in means.iter_mut().zip(&counts) {
        m.iter_mut().for_each(|x| *x /= n as f64);
    }
    let global: Vec<f64> = match global_mean {
        GlobalMean::Weighted => (0..d)
            .map(|j| {
                (0..train_y.len())
                    .map(|i| train_h.get(i * d + j))
                    .sum::<f64>()
            })
            .map(|s| s / train_y.len() as f64)
            .collect(),
        GlobalMean::Unweighted => (0..d)
            .map(|j| means.iter().map(|m| m[j]).sum::<f64>() / c as f64)
            .collect(),
    };
    let centred: Vec<Vec<f64>> = means
        .iter()
        .map(|m| m.iter().zip(&global).map(|(a, g)| a - g).collect())
        .collect();

    let mut eval_counts = vec![0u64; c];
    eval_y.iter().for_each(|&y| eval_counts[y] += 1);
    check_counts(&eval_counts, "reference (eval)")?;
    let n = eval_y.len();
    let mut h = eval.features.values().to_f64();

    // Nearest class centre by explicit distances, and the classifier's logits, on h itself.
    let ncc: Vec<usize> = h
        .chunks_exact(d)
        .map(|x| {
            let dist: Vec<f64> = means.iter().map(|m| distance(x, m)).collect();
            first_index_of(&dist, |a, b| a < b)
        })
        .collect();
    let ncc_accuracy = fraction_equal(&ncc, &eval_y);
    let classifier = classifier
        .map(|clf| classifier_report(clf, &centred, &h, &eval_y, &ncc))
        .transpose()?;

    // Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ and Σ_B = (1/C) M̃ M̃ᵀ, both d × d.
    for (x, &y) in h.chunks_exact_mut(d).zip(&eval_y) {
        x.iter_mut().zip(&means[y]).for_each(|(a, m)| *a -= m);
    }
    let deviations = MatRef::from_row_major_slice(&h, n, d);
    let mut sigma_w = Mat::<f64>::zeros(d, d);
    matmul(
        &mut sigma_w,
        Accum::Replace,
        deviations.transpose(),
        deviations,
        1.0 / n as f64,
        Par::Seq,
    );
    let m_tilde = Mat::<f64>::from_fn(d, c, |j, k| centred[k][j]);
    let mut sigma_b = Mat::<f64>::zeros(d, d);
    matmul(
        &mut sigma_b,
        Accum::Replace,
        &m_tilde,
        m_tilde.transpose(),
        1.0 / c as f64,
        Par::Seq,
    );
    let (pinv, rank) = pseudo_inverse(&sigma_b, rtol)?;
    // tr(Σ_W Σ_B^†) = Σ_jk (Σ_W)_jk (Σ_B^†)_kj.
    let nc1 = if rank == 0 {
        f64::NAN
    } else {
        let mut trace = 0.0;
        for j in 0..d {
            for k in 0..d {
                trace += sigma_w[(j, k)] * pinv[(k, j)];
            }
        }
        trace / c as f64
    };

    // V_c = (1/n_c) Σ_{y_i=c} ‖h_i − μ_c‖², class by class.
    let variances: Vec<f64> = (0..c)
        .map(|k| {
            let rows: Vec<f64> = h
                .chunks_exact(d)
                .zip(&eval_y)
                .filter(|(_, &y)| y == k)
                .map(|(x, _)| x.iter().map(|v| v * v).sum())
                .collect();
            rows.iter().sum::<f64>() / rows.len() as f64
        })
        .collect();
    let mut cdnv_terms = Vec::new();
    for i in 0..c {
        for j in i + 1..c {
            let dist_sq = distance(&means[i], &means[j]).powi(2);
            cdnv_terms.push((variances[i] + variances[j]) / (2.0 * dist_sq));
        }
    }

    Ok(CollapseReport {
        global_mean,
        num_classes,
        dim: d,
        rank,
        num_samples: n as u64,
        nc1,
        nc2: rows_nc2(&centred),
        cdnv: cdnv_terms.iter().sum::<f64>() / cdnv_terms.len() as f64,
        ncc_accuracy,
        within_trace: (0..d).map(|j| sigma_w[(j, j)]).sum(),
        between_trace: (0..d).map(|j| sigma_b[(j, j)]).sum(),
        class_variances: variances,
        class_counts: eval_counts,
        classifier,
    })
}

/// `Σ^†` of a symmetric PSD matrix from its eigendecomposition, keeping `λ > rtol · λ_max`.
fn pseudo_inverse(sigma: &Mat<f64>, rtol: f64) -> Result<(Mat<f64>, usize), MetricsError> {
    let eig = sigma
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| MetricsError::NoConvergence {
            what: "eigendecomposition of Σ_B",
        })?;
    let lambda: Vec<f64> = eig.S().column_vector().iter().copied().collect();
    let lambda_max = lambda.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let keep: Vec<usize> = (0..lambda.len())
        .filter(|&i| lambda[i] > rtol * lambda_max && lambda[i] > 0.0)
        .collect();
    let u = eig.U();
    let d = sigma.nrows();
    let q = Mat::<f64>::from_fn(d, keep.len(), |j, k| u[(j, keep[k])]);
    let q_scaled = Mat::<f64>::from_fn(d, keep.len(), |j, k| q[(j, k)] / lambda[keep[k]]);
    let mut pinv = Mat::<f64>::zeros(d, d);
    matmul(
        &mut pinv,
        Accum::Replace,
        &q_scaled,
        q.transpose(),
        1.0,
        Par::Seq,
    );
    Ok((pinv, keep.len()))
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn first_index_of(values: &[f64], better: impl Fn(f64, f64) -> bool) -> usize {
    (1..values.len()).fold(0, |best, i| {
        if better(values[i], values[best]) {
            i
        } else {
            best
        }
    })
}

fn fraction_equal(a: &[usize], b: &[usize]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// NC2 of the vectors `v` by explicit norms and cosines.
fn rows_nc2(v: &[Vec<f64>]) -> Nc2 {
    let c = v.len();
    let norms: Vec<f64> = v
        .iter()
        .map(|x| x.iter().map(|a| a * a).sum::<f64>().sqrt())
        .collect();
    let unit: Vec<Vec<f64>> = v
        .iter()
        .zip(&norms)
        .map(|(x, n)| x.iter().map(|a| a / n).collect())
        .collect();
    let mut cosines = Vec::new();
    for i in 0..c {
        for j in i + 1..c {
            cosines.push(
                unit[i]
                    .iter()
                    .zip(&unit[j])
                    .map(|(a, b)| a * b)
                    .sum::<f64>(),
            );
        }
    }
    let gram: Vec<Vec<f64>> = v
        .iter()
        .map(|a| {
            v.iter()
                .map(|b| a.iter().zip(b).map(|(x, y)| x * y).sum())
                .collect()
        })
        .collect();
    let gram_norm = gram.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
    let mut etf_sq = 0.0;
    for (i, row) in gram.iter().enumerate() {
        for (j, g) in row.iter().enumerate() {
            let identity = if i == j { 1.0 } else { 0.0 };
            let target = (identity - 1.0 / c as f64) / (c as f64 - 1.0).sqrt();
            etf_sq += (g / gram_norm - target).powi(2);
        }
    }
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let std = |x: &[f64]| {
        let m = mean(x);
        (x.iter().map(|a| (a - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    };
    let simplex = 1.0 / (c as f64 - 1.0);
    let deviations: Vec<f64> = cosines.iter().map(|x| (x + simplex).abs()).collect();
    Nc2 {
        equinorm: std(&norms) / mean(&norms),
        equiangularity: std(&cosines),
        max_angle: mean(&deviations),
        etf_error: etf_sq.sqrt(),
    }
}

fn classifier_report(
    clf: Classifier<'_>,
    centred: &[Vec<f64>],
    h: &[f64],
    labels: &[usize],
    ncc: &[usize],
) -> Result<ClassifierReport, MetricsError> {
    let (c, d) = (centred.len(), centred[0].len());
    if (clf.weight.rows(), clf.weight.cols()) != (c, d) {
        return Err(MetricsError::ClassifierShape {
            part: "weight",
            expected: vec![c, d],
            got: vec![clf.weight.rows(), clf.weight.cols()],
        });
    }
    let flat = clf.weight.values().to_f64();
    let weight: Vec<Vec<f64>> = flat.chunks_exact(d).map(<[f64]>::to_vec).collect();
    let bias = match clf.bias {
        Some(b) if b.len() != c => {
            return Err(MetricsError::ClassifierShape {
                part: "bias",
                expected: vec![c],
                got: vec![b.len()],
            })
        }
        Some(b) => b.to_f64(),
        None => vec![0.0; c],
    };
    let predicted: Vec<usize> = h
        .chunks_exact(d)
        .map(|x| {
            let logits: Vec<f64> = weight
                .iter()
                .zip(&bias)
                .map(|(w, b)| w.iter().zip(x).map(|(a, v)| a * v).sum::<f64>() + b)
                .collect();
            first_index_of(&logits, |a, b| a > b)
        })
        .collect();
    let frobenius = |m: &[Vec<f64>]| m.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    let (w_norm, m_norm) = (frobenius(&weight), frobenius(centred));
    let nc3 = weight
        .iter()
        .flatten()
        .zip(centred.iter().flatten())
        .map(|(w, m)| (w / w_norm - m / m_norm).powi(2))
        .sum::<f64>();
    let mismatches = predicted.iter().zip(ncc).filter(|(p, q)| p != q).count();
    Ok(ClassifierReport {
        nc2: rows_nc2(&weight),
        nc3,
        nc4: mismatches as f64 / labels.len() as f64,
        accuracy: fraction_equal(&predicted, labels),
    })
}
