//! Pass 2: projected within-class scatter, per-class variances and NCC/classifier decisions.

use tch::{Kind, Tensor};

use crate::geometry::{cdnv, Nc2};
use crate::report::{ClassifierReport, CollapseReport};
use crate::validate::{check_counts, host_f64, host_i64, is_real_float, prepare_batch};
use crate::{MeanStats, MetricsError};

/// A linear classifier `x ↦ W x + b` on the layer's features: `weight` `[C, d]`, `bias` `[C]`.
///
/// Any real float dtype and any device: both are copied (they are small) to f64 on the
/// statistics' device.
#[derive(Clone, Copy, Debug)]
pub struct Classifier<'a> {
    /// `W`, `[C, d]`: row `c` scores class `c`.
    pub weight: &'a Tensor,
    /// `b`, `[C]`, if any.
    pub bias: Option<&'a Tensor>,
}

/// The classifier in f64 on the statistics' device, with its pass-independent measures.
struct PreparedClassifier {
    weight_t: Tensor,
    /// `W μ_G + b`: logits are computed from centred features, `W h + b = W (h − μ_G) + W μ_G + b`.
    shifted_bias: Tensor,
    nc2: Nc2,
    nc3: f64,
}

impl PreparedClassifier {
    fn new(stats: &MeanStats, clf: Classifier<'_>) -> Result<Self, MetricsError> {
        let (c, d) = (stats.num_classes() as i64, stats.dim() as i64);
        let weight = to_f64(clf.weight, "weight", &[c, d], stats)?;
        let bias = clf
            .bias
            .map(|b| to_f64(b, "bias", &[c], stats))
            .transpose()?;
        let gram = host_f64(&weight.f_matmul(&weight.f_transpose(0, 1)?)?)?;
        // NC3 (Papyan et al. 2020): ‖W/‖W‖_F − M̃ᵀ/‖M̃‖_F‖_F², rows of M̃ᵀ = centred means.
        let centred = stats.centred_means();
        let nc3 = weight
            .f_div(&weight.f_norm()?)?
            .f_sub(&centred.f_div(&centred.f_norm()?)?)?
            .f_square()?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?;
        let mut shifted_bias = weight.f_mv(stats.global_mean())?;
        if let Some(b) = &bias {
            shifted_bias = shifted_bias.f_add(b)?;
        }
        Ok(PreparedClassifier {
            weight_t: weight.f_transpose(0, 1)?,
            shifted_bias,
            nc2: Nc2::from_gram(&gram, stats.num_classes()),
            nc3,
        })
    }
}

fn to_f64(
    t: &Tensor,
    part: &'static str,
    expected: &[i64],
    stats: &MeanStats,
) -> Result<Tensor, MetricsError> {
    let kind = t.f_kind()?;
    if !is_real_float(kind) {
        return Err(MetricsError::ClassifierKind { part, kind });
    }
    if t.size() != expected {
        return Err(MetricsError::ClassifierShape {
            part,
            expected: expected.to_vec(),
            got: t.size(),
        });
    }
    Ok(t.f_to_device(stats.device())?.f_to_kind(Kind::Double)?)
}

/// Pass 2 accumulator, built from the [`MeanStats`] of pass 1.
///
/// Feed it the same data as pass 1 (a training probe: every field of the report is the
/// textbook value) or other data, e.g. a test set. On other data the class means stay the
/// training means: NCC accuracy, classifier accuracy and NC4 are then the usual test-set
/// measures, while NC1, CDNV and the class variances measure that data's scatter around the
/// *training* means. Memory `O(C·d)` plus one batch; cost `O(B·d·C)` per batch; no `d × d`
/// matrix is formed.
pub struct CollapseAccumulator {
    stats: MeanStats,
    classifier: Option<PreparedClassifier>,
    projected_sq: Tensor,
    variance_sums: Tensor,
    counts: Tensor,
    ncc_correct: Tensor,
    classifier_correct: Tensor,
    mismatches: Tensor,
}

impl CollapseAccumulator {
    /// An empty accumulator for the layer described by `stats`, with an optional classifier
    /// (`W` `[C, d]`, `b` `[C]`) that reads this layer's features.
    pub fn new(
        stats: &MeanStats,
        classifier: Option<Classifier<'_>>,
    ) -> Result<Self, MetricsError> {
        let device = stats.device();
        let scalar = |kind| Tensor::f_zeros([], (kind, device));
        let c = stats.num_classes() as i64;
        Ok(CollapseAccumulator {
            classifier: classifier
                .map(|clf| PreparedClassifier::new(stats, clf))
                .transpose()?,
            stats: stats.clone(),
            projected_sq: scalar(Kind::Double)?,
            variance_sums: Tensor::f_zeros([c], (Kind::Double, device))?,
            counts: Tensor::f_zeros([c], (Kind::Int64, device))?,
            ncc_correct: scalar(Kind::Int64)?,
            classifier_correct: scalar(Kind::Int64)?,
            mismatches: scalar(Kind::Int64)?,
        })
    }

    /// Adds a batch, with the same rules as [`ClassMeans::update`](crate::ClassMeans::update).
    pub fn update(&mut self, features: &Tensor, labels: &Tensor) -> Result<(), MetricsError> {
        let stats = &self.stats;
        let Some(batch) = prepare_batch(
            features,
            labels,
            stats.num_classes(),
            stats.dim(),
            stats.device(),
        )?
        else {
            return Ok(());
        };
        let labels = &batch.labels;
        let c = stats.num_classes() as i64;
        let centred_means = stats.centred_means();
        // h̃ = h − μ_G, in place in the batch's own f64 copy.
        let mut centred = batch.features;
        let _ = centred.f_sub_(stats.global_mean())?;
        // argmin_c ‖h − μ_c‖² = argmin_c (‖μ̃_c‖² − 2 h̃·μ̃_c), μ̃_c = μ_c − μ_G.
        let scores = stats.centred_sq_norms().f_unsqueeze(0)?.f_sub(
            &centred
                .f_matmul(&centred_means.f_transpose(0, 1)?)?
                .f_mul_scalar(2.0)?,
        )?;
        let ncc = scores.f_argmin(1, false)?;
        let predicted = match &self.classifier {
            None => None,
            Some(clf) => Some(
                centred
                    .f_matmul(&clf.weight_t)?
                    .f_add(&clf.shifted_bias)?
                    .f_argmax(1, false)?,
            ),
        };
        // h̃_i − μ̃_{y_i} = h_i − μ_{y_i}, in place as h̃ + (−Y) M̃ᵀ with Y the one-hot labels:
        // bit-identical to a subtraction (products by 0 and −1 are exact) and, unlike a
        // gather of the means, it allocates no second [B, d] tensor.
        let negated_onehot = labels.f_one_hot(c)?.f_to_kind(Kind::Double)?.f_neg()?;
        let diff = centred.f_addmm_(&negated_onehot, centred_means)?;
        let projected_sq = if stats.rank() > 0 {
            // ‖S⁻¹ Aᵀ (h_i − μ_{y_i})‖²: the NC1 summand, O(d·r) per sample.
            let projected = diff.f_matmul(stats.basis())?.f_mul(stats.inv_singular())?;
            self.projected_sq
                .f_add(&projected.f_square()?.f_sum(Kind::Double)?)?
        } else {
            self.projected_sq.shallow_clone()
        };
        let sq_dist = diff.f_norm_scalaropt_dim(2.0, [1], false)?.f_square()?;
        let variance_sums = self.variance_sums.f_index_add(0, labels, &sq_dist)?;
        let counts = self.counts.f_add(&labels.f_bincount::<Tensor>(None, c)?)?;
        let ncc_correct = self.ncc_correct.f_add(&count_equal(&ncc, labels)?)?;
        let (classifier_correct, mismatches) = match predicted {
            None => (
                self.classifier_correct.shallow_clone(),
                self.mismatches.shallow_clone(),
            ),
            Some(predicted) => (
                self.classifier_correct
                    .f_add(&count_equal(&predicted, labels)?)?,
                self.mismatches
                    .f_add(&predicted.f_ne_tensor(&ncc)?.f_sum(Kind::Int64)?)?,
            ),
        };
        // Assigned together, so a failure above leaves the accumulator unchanged.
        self.projected_sq = projected_sq;
        self.variance_sums = variance_sums;
        self.counts = counts;
        self.ncc_correct = ncc_correct;
        self.classifier_correct = classifier_correct;
        self.mismatches = mismatches;
        Ok(())
    }

    /// The report. Fails with [`MetricsError::EmptyClasses`] if a class got no sample in pass 2
    /// (its variance would be undefined).
    pub fn finalize(self) -> Result<CollapseReport, MetricsError> {
        let stats = &self.stats;
        let c = stats.num_classes();
        let counts = host_i64(&self.counts)?;
        check_counts(&counts, "pass 2 (collapse accumulator)")?;
        let n: i64 = counts.iter().sum();
        let nf = n as f64;
        let sums = host_f64(&self.variance_sums)?;
        let class_variances: Vec<f64> = sums
            .iter()
            .zip(&counts)
            .map(|(s, &k)| s / k as f64)
            .collect();
        let nc1 = if stats.rank() == 0 {
            f64::NAN
        } else {
            self.projected_sq.f_double_value(&[])? / nf
        };
        let fraction =
            |t: &Tensor| -> Result<f64, MetricsError> { Ok(t.f_int64_value(&[])? as f64 / nf) };
        let classifier = match &self.classifier {
            None => None,
            Some(clf) => Some(ClassifierReport {
                nc2: clf.nc2,
                nc3: clf.nc3,
                nc4: fraction(&self.mismatches)?,
                accuracy: fraction(&self.classifier_correct)?,
            }),
        };
        let nc2 = stats.nc2();
        Ok(CollapseReport {
            global_mean: stats.global_mean_kind(),
            num_classes: c,
            dim: stats.dim(),
            rank: stats.rank(),
            num_samples: n as u64,
            nc1,
            nc2,
            cdnv: cdnv(stats.gram(), &class_variances, c),
            ncc_accuracy: fraction(&self.ncc_correct)?,
            within_trace: sums.iter().sum::<f64>() / nf,
            between_trace: stats.singular_values().iter().map(|s| s * s).sum::<f64>() / c as f64,
            class_variances,
            class_counts: counts.iter().map(|&k| k as u64).collect(),
            classifier,
        })
    }
}

fn count_equal(a: &Tensor, b: &Tensor) -> Result<Tensor, MetricsError> {
    Ok(a.f_eq_tensor(b)?.f_sum(Kind::Int64)?)
}
