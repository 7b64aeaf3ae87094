//! The textbook implementation: every formula of [`CollapseReport`] evaluated literally, with
//! `d × d` covariances `Σ_W`, `Σ_B` and the pseudo-inverse `Σ_B^†` from an eigendecomposition.
//!
//! It needs all features in memory and `O(d²)` memory, `O(N d² + d³)` time; it exists as an
//! independent check of the streaming accumulators (tests) and as the baseline of the
//! `nc_metrics` benchmark. Use [`crate::collapse_report`] or the accumulators in real runs.
//!
//! Conventions are those of the streaming code (population std, `Σ_B^†` keeps eigenvalues above
//! `rtol · λ_max`), so the two agree to round-off whenever no eigenvalue of `Σ_B` sits near the
//! tolerance. Unlike the streaming code, the rank of `Σ_B^†` is not capped at `C − 1`.

use tch::{Device, Kind, Tensor};

use crate::geometry::Nc2;
use crate::validate::{check_counts, check_setup, host_f64, host_i64, prepare_batch, Batch};
use crate::{
    Classifier, ClassifierReport, CollapseReport, GlobalMean, MetricsError, DEFAULT_PINV_RTOL,
};

/// Features `[N, d]` and their labels `[N]`, all in memory.
#[derive(Clone, Copy, Debug)]
pub struct Labelled<'a> {
    /// `[N, d]`, any real float dtype.
    pub features: &'a Tensor,
    /// `[N]`, integer labels in `0..C`.
    pub labels: &'a Tensor,
}

/// The report of one data set measured against its own class means, with
/// [`DEFAULT_PINV_RTOL`]: the textbook twin of [`crate::collapse_report`].
pub fn collapse_report(
    features: &Tensor,
    labels: &Tensor,
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
pub fn report(
    train: Labelled<'_>,
    eval: Labelled<'_>,
    num_classes: usize,
    classifier: Option<Classifier<'_>>,
    global_mean: GlobalMean,
    rtol: f64,
) -> Result<CollapseReport, MetricsError> {
    let shape = train.features.size();
    if shape.len() != 2 {
        return Err(MetricsError::FeatureShape { shape });
    }
    let dim = shape[1] as usize;
    check_setup(num_classes, dim)?;
    let device = train.features.device();
    let c = num_classes as i64;
    let check = |data: Labelled<'_>| -> Result<Batch, MetricsError> {
        prepare_batch(data.features, data.labels, num_classes, dim, device)?.ok_or_else(|| {
            MetricsError::EmptyClasses {
                classes: (0..num_classes).collect(),
                pass: "reference",
            }
        })
    };
    let (train, eval) = (check(train)?, check(eval)?);

    // Class means μ_c = (1/n_c) Σ_{y_i=c} h_i via the one-hot matrix Y: M = Yᵀ H / n.
    let onehot = train.labels.f_one_hot(c)?.f_to_kind(Kind::Double)?;
    let counts = onehot.f_sum_dim_intlist(0, false, Kind::Double)?;
    check_counts(&host_i64(&counts)?, "reference (train)")?;
    let means = onehot
        .f_transpose(0, 1)?
        .f_matmul(&train.features)?
        .f_div(&counts.f_unsqueeze(1)?)?;
    let global = match global_mean {
        GlobalMean::Weighted => train.features.f_mean_dim(0, false, Kind::Double)?,
        GlobalMean::Unweighted => means.f_mean_dim(0, false, Kind::Double)?,
    };
    let centred = means.f_sub(&global)?;

    // Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ and Σ_B = (1/C) M̃ M̃ᵀ, both d × d.
    let eval_counts = host_i64(&eval.labels.f_bincount::<Tensor>(None, c)?)?;
    check_counts(&eval_counts, "reference (eval)")?;
    let n = eval.features.size()[0] as f64;
    let deviations = eval
        .features
        .f_sub(&means.f_index_select(0, &eval.labels)?)?;
    let sigma_w = deviations
        .f_transpose(0, 1)?
        .f_matmul(&deviations)?
        .f_div_scalar(n)?;
    let sigma_b = centred
        .f_transpose(0, 1)?
        .f_matmul(&centred)?
        .f_div_scalar(num_classes as f64)?;
    let (pinv, rank) = pseudo_inverse(&sigma_b, rtol)?;
    // tr(Σ_W Σ_B^†) = Σ_jk (Σ_W)_jk (Σ_B^†)_kj, both symmetric.
    let nc1 = if rank == 0 {
        f64::NAN
    } else {
        sigma_w
            .f_mul(&pinv)?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?
            / num_classes as f64
    };

    // V_c = (1/n_c) Σ_{y_i=c} ‖h_i − μ_c‖², class by class.
    let mut variances = Vec::with_capacity(num_classes);
    for class in 0..c {
        let rows = eval.labels.f_eq(class)?.f_nonzero()?.f_squeeze_dim(1)?;
        let dev = deviations.f_index_select(0, &rows)?;
        variances.push(
            dev.f_square()?
                .f_sum_dim_intlist(1, false, Kind::Double)?
                .f_mean(Kind::Double)?
                .f_double_value(&[])?,
        );
    }
    let mut cdnv_terms = Vec::new();
    for i in 0..c {
        for j in i + 1..c {
            let gap = means.f_get(i)?.f_sub(&means.f_get(j)?)?;
            let dist_sq = gap.f_dot(&gap)?.f_double_value(&[])?;
            cdnv_terms.push((variances[i as usize] + variances[j as usize]) / (2.0 * dist_sq));
        }
    }

    // Nearest class centre by explicit distances.
    let ncc = Tensor::f_cdist(&eval.features, &means, 2.0, None::<i64>)?.f_argmin(1, false)?;
    let ncc_accuracy = fraction_equal(&ncc, &eval.labels, n)?;

    let classifier = classifier
        .map(|clf| classifier_report(clf, &centred, &eval, &ncc, n, device))
        .transpose()?;
    let nc2 = rows_nc2(&centred)?;
    Ok(CollapseReport {
        global_mean,
        num_classes,
        dim,
        rank,
        num_samples: n as u64,
        nc1,
        nc2,
        cdnv: cdnv_terms.iter().sum::<f64>() / cdnv_terms.len() as f64,
        ncc_accuracy,
        within_trace: sigma_w.f_trace()?.f_double_value(&[])?,
        between_trace: sigma_b.f_trace()?.f_double_value(&[])?,
        class_variances: variances,
        class_counts: eval_counts.iter().map(|&k| k as u64).collect(),
        classifier,
    })
}

/// `Σ^†` of a symmetric PSD matrix from its eigendecomposition, keeping `λ > rtol · λ_max`.
fn pseudo_inverse(sigma: &Tensor, rtol: f64) -> Result<(Tensor, usize), MetricsError> {
    if !(rtol.is_finite() && rtol >= 0.0) {
        return Err(MetricsError::InvalidTolerance { rtol });
    }
    let (eigenvalues, eigenvectors) = sigma.f_linalg_eigh("L")?;
    let lambda_max = eigenvalues.f_max()?.f_double_value(&[])?;
    let keep = eigenvalues
        .f_gt(rtol * lambda_max)?
        .f_logical_and(&eigenvalues.f_gt(0.0)?)?
        .f_nonzero()?
        .f_squeeze_dim(1)?;
    let rank = keep.size()[0] as usize;
    let q = eigenvectors.f_index_select(1, &keep)?;
    let inv = eigenvalues.f_index_select(0, &keep)?.f_reciprocal()?;
    Ok((q.f_mul(&inv)?.f_matmul(&q.f_transpose(0, 1)?)?, rank))
}

/// NC2 of the rows of `v` `[C, d]` by explicit norms and cosines.
fn rows_nc2(v: &Tensor) -> Result<Nc2, MetricsError> {
    let c = v.size()[0];
    let norms = v.f_norm_scalaropt_dim(2.0, [1], false)?;
    let unit = v.f_div(&norms.f_unsqueeze(1)?)?;
    let cosines = unit.f_matmul(&unit.f_transpose(0, 1)?)?;
    let upper = Tensor::f_triu_indices(c, c, 1, (Kind::Int64, v.device()))?;
    let pairs = cosines.f_index(&[Some(upper.f_get(0)?), Some(upper.f_get(1)?)])?;
    let gram = v.f_matmul(&v.f_transpose(0, 1)?)?;
    let target = Tensor::f_eye(c, (Kind::Double, v.device()))?
        .f_sub_scalar(1.0 / c as f64)?
        .f_div_scalar((c as f64 - 1.0).sqrt())?;
    let value = |t: Tensor| t.f_double_value(&[]);
    Ok(Nc2 {
        equinorm: value(norms.f_std(false)?.f_div(&norms.f_mean(Kind::Double)?)?)?,
        equiangularity: value(pairs.f_std(false)?)?,
        max_angle: value(
            pairs
                .f_add_scalar(1.0 / (c as f64 - 1.0))?
                .f_abs()?
                .f_mean(Kind::Double)?,
        )?,
        etf_error: value(gram.f_div(&gram.f_norm()?)?.f_sub(&target)?.f_norm()?)?,
    })
}

fn classifier_report(
    clf: Classifier<'_>,
    centred: &Tensor,
    eval: &Batch,
    ncc: &Tensor,
    n: f64,
    device: Device,
) -> Result<ClassifierReport, MetricsError> {
    let (c, d) = (centred.size()[0], centred.size()[1]);
    let weight = clf.weight.f_to_device(device)?.f_to_kind(Kind::Double)?;
    if weight.size() != [c, d] {
        return Err(MetricsError::ClassifierShape {
            part: "weight",
            expected: vec![c, d],
            got: weight.size(),
        });
    }
    let mut logits = eval.features.f_matmul(&weight.f_transpose(0, 1)?)?;
    if let Some(bias) = clf.bias {
        if bias.size() != [c] {
            return Err(MetricsError::ClassifierShape {
                part: "bias",
                expected: vec![c],
                got: bias.size(),
            });
        }
        logits = logits.f_add(&bias.f_to_device(device)?.f_to_kind(Kind::Double)?)?;
    }
    let predicted = logits.f_argmax(1, false)?;
    let nc3 = weight
        .f_div(&weight.f_norm()?)?
        .f_sub(&centred.f_div(&centred.f_norm()?)?)?
        .f_norm()?
        .f_double_value(&[])?
        .powi(2);
    let nc2 = rows_nc2(&weight)?;
    let mismatches = host_f64(&predicted.f_ne_tensor(ncc)?.f_sum(Kind::Double)?)?;
    Ok(ClassifierReport {
        nc2,
        nc3,
        nc4: mismatches[0] / n,
        accuracy: fraction_equal(&predicted, &eval.labels, n)?,
    })
}

fn fraction_equal(a: &Tensor, b: &Tensor, n: f64) -> Result<f64, MetricsError> {
    Ok(a.f_eq_tensor(b)?.f_sum(Kind::Double)?.f_double_value(&[])? / n)
}
