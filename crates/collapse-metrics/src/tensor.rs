//! `tch::Tensor` batches (feature `tch`): the accumulators' `update_tensor` methods.
//!
//! A tensor batch is accumulated on its own device (CPU or CUDA), in f64, with the same
//! formulas as the host path; only `finalize` brings the `C × d` sums to the host, where the
//! thin SVD and the report are computed by the host code. So a pass over CUDA features
//! copies nothing per batch to the host and never waits for the GPU: a pass uploads the
//! `O(C·d)` pass-1 statistics once (at its first batch) and downloads its totals once.
//!
//! For the same reason the checks that need the values (labels in range, finite features)
//! are tallied on the device and reported by `finalize`: an `update_tensor` call fails at once
//! only for what the tensors' metadata shows (dtype, shape, device). A batch with a bad value
//! makes the whole pass fail, naming the problem ([`MetricsError::LabelOutOfRange`] with the
//! count, [`MetricsError::NonFiniteBatches`] with the number of batches), instead of being
//! skipped. Host batches ([`ClassMeans::update`]) keep their immediate checks.
//!
//! ```
//! use collapse_metrics::tensor::TensorClassifier;
//! use collapse_metrics::{ClassMeans, CollapseAccumulator, GlobalMean};
//! use tch::{Device, Kind, Tensor};
//!
//! # fn main() -> Result<(), collapse_metrics::MetricsError> {
//! let etf = Tensor::eye(3, (Kind::Double, Device::Cpu)) - 1.0 / 3.0;
//! let labels = Tensor::from_slice(&[0i64, 1, 2, 2, 1, 0]);
//! let features = etf.index_select(0, &labels).to_kind(Kind::Float);
//!
//! let mut pass1 = ClassMeans::new(3, 3)?;
//! pass1.update_tensor(&features, &labels)?;
//! let stats = pass1.finalize(GlobalMean::Weighted)?;
//! let clf = TensorClassifier { weight: &etf, bias: None };
//! let mut pass2 = CollapseAccumulator::with_tensor_classifier(&stats, Some(clf))?;
//! pass2.update_tensor(&features, &labels)?;
//! let report = pass2.finalize()?;
//! assert!(report.nc1.abs() < 1e-12 && report.ncc_accuracy == 1.0);
//! assert!(report.classifier.is_some_and(|c| c.nc4 == 0.0));
//!
//! // Bad label values are found on the device and reported when the pass ends.
//! let mut pass1 = ClassMeans::new(3, 3)?;
//! pass1.update_tensor(&features, &(labels + 1))?;
//! assert!(pass1.finalize(GlobalMean::Weighted).is_err());
//! # Ok(())
//! # }
//! ```

use tch::{Device, Kind, Tensor};

use crate::accumulator::{Pass2Totals, PreparedClassifier};
use crate::{ClassMeans, Classifier, CollapseAccumulator, Matrix, MeanStats, MetricsError, Values};

/// A linear classifier given as tensors: `weight` `[C, d]`, `bias` `[C]`, any real float dtype
/// on any device. Both are copied to the host in f64 once, when the accumulator is built.
#[derive(Clone, Copy, Debug)]
pub struct TensorClassifier<'a> {
    /// `W`, `[C, d]`: row `c` scores class `c`.
    pub weight: &'a Tensor,
    /// `b`, `[C]`, if any.
    pub bias: Option<&'a Tensor>,
}

impl ClassMeans {
    /// Adds a batch of tensors: `features` `[B, dim]` of any real float dtype, `labels` `[B]`
    /// of any integer dtype (moved to the features' device; put them there to avoid a copy).
    /// All tensor batches of one accumulator must share a device.
    ///
    /// Label values and finiteness are checked by [`finalize`](Self::finalize) (see the
    /// [module docs](crate::tensor)); higher-rank features are rejected here: flatten them first
    /// (`features.flatten(1, -1)`).
    pub fn update_tensor(
        &mut self,
        features: &Tensor,
        labels: &Tensor,
    ) -> Result<(), MetricsError> {
        let (c, d) = (self.num_classes(), self.dim());
        let checks = self.device.as_ref().map(|d| &d.checks);
        let Some(batch) = TensorBatch::new(features, labels, c, d, checks)? else {
            return Ok(());
        };
        let device = match &mut self.device {
            Some(device) => device,
            None => self.device.insert(DeviceMeans::new(c, d, batch.device)?),
        };
        device.checks.record(&batch)?;
        let sums = device.sums.f_index_add(0, &batch.labels, &batch.features)?;
        let counts = device
            .counts
            .f_index_add(0, &batch.labels, &batch.labels.f_ones_like()?)?;
        device.sums = sums;
        device.counts = counts;
        Ok(())
    }
}

impl CollapseAccumulator {
    /// [`CollapseAccumulator::new`] with the classifier given as tensors (copied to the host in
    /// f64 here, once).
    pub fn with_tensor_classifier(
        stats: &MeanStats,
        classifier: Option<TensorClassifier<'_>>,
    ) -> Result<Self, MetricsError> {
        let (c, d) = (stats.num_classes(), stats.dim());
        let Some(clf) = classifier else {
            return CollapseAccumulator::new(stats, None);
        };
        let weight = classifier_values(clf.weight, "weight", &[c, d])?;
        let bias = clf
            .bias
            .map(|b| classifier_values(b, "bias", &[c]))
            .transpose()?;
        let classifier = Classifier {
            weight: Matrix::named("weight", Values::F64(&weight), c, d)?,
            bias: bias.as_deref().map(Values::F64),
        };
        CollapseAccumulator::new(stats, Some(classifier))
    }

    /// Adds a batch of tensors, with the same rules as [`ClassMeans::update_tensor`].
    pub fn update_tensor(
        &mut self,
        features: &Tensor,
        labels: &Tensor,
    ) -> Result<(), MetricsError> {
        let (c, d) = (self.stats.num_classes(), self.stats.dim());
        let checks = self.device.as_ref().map(|d| &d.checks);
        let Some(batch) = TensorBatch::new(features, labels, c, d, checks)? else {
            return Ok(());
        };
        let device = match &mut self.device {
            Some(device) => device,
            None => self.device.insert(DevicePass2::new(
                &self.stats,
                self.classifier.as_ref(),
                batch.device,
            )?),
        };
        device.add(batch)
    }
}

/// A checked tensor batch: an f64 copy of the features (callers modify it in place) and the
/// labels in i64, clamped into `0..C` so that no kernel indexes out of bounds (bad labels are
/// counted by [`DeviceChecks`] first).
struct TensorBatch {
    device: Device,
    /// The caller's features, in their own dtype (checked for finiteness).
    raw_features: Tensor,
    features: Tensor,
    raw_labels: Tensor,
    labels: Tensor,
}

impl TensorBatch {
    fn new(
        features: &Tensor,
        labels: &Tensor,
        num_classes: usize,
        dim: usize,
        earlier: Option<&DeviceChecks>,
    ) -> Result<Option<Self>, MetricsError> {
        let kind = features.f_kind()?;
        if !is_real_float(kind) {
            return Err(MetricsError::FeatureKind { kind });
        }
        let shape = features.size();
        if shape.len() != 2 {
            return Err(MetricsError::FeatureShape { shape });
        }
        if shape[1] != dim as i64 {
            return Err(MetricsError::FeatureDim {
                expected: dim,
                got: shape[1] as usize,
            });
        }
        let device = features.device();
        if let Some(expected) = earlier.map(|e| e.device).filter(|&e| e != device) {
            return Err(MetricsError::DeviceMismatch {
                expected,
                got: device,
            });
        }
        let label_shape = labels.size();
        if label_shape.len() != 1 {
            return Err(MetricsError::LabelShape { shape: label_shape });
        }
        let label_kind = labels.f_kind()?;
        if !is_integer(label_kind) {
            return Err(MetricsError::LabelKind { kind: label_kind });
        }
        if label_shape[0] != shape[0] {
            return Err(MetricsError::LengthMismatch {
                features: shape[0] as usize,
                labels: label_shape[0] as usize,
            });
        }
        if shape[0] == 0 {
            return Ok(None);
        }
        let raw_labels = labels.f_to_device(device)?.f_to_kind(Kind::Int64)?;
        let labels = raw_labels.f_clamp(0, num_classes as i64 - 1)?;
        Ok(Some(TensorBatch {
            device,
            raw_features: features.shallow_clone(),
            // Always a copy, never an alias of the caller's tensor: pass 2 works on it in place.
            features: features.f_to_dtype(Kind::Double, false, true)?,
            raw_labels,
            labels,
        }))
    }
}

fn is_real_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    )
}

fn is_integer(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64
    )
}

/// A small tensor on the host as a flat `Vec<f64>` (one device-to-host copy).
fn host_f64(t: &Tensor) -> Result<Vec<f64>, MetricsError> {
    let flat = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Double)?
        .f_contiguous()?
        .f_reshape([-1])?;
    Ok(Vec::<f64>::try_from(&flat)?)
}

fn host_u64(t: &Tensor) -> Result<Vec<u64>, MetricsError> {
    let flat = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Int64)?
        .f_contiguous()?
        .f_reshape([-1])?;
    Ok(Vec::<i64>::try_from(&flat)?
        .into_iter()
        .map(|n| n as u64)
        .collect())
}

fn device_f64(values: &[f64], shape: &[i64], device: Device) -> Result<Tensor, MetricsError> {
    Ok(Tensor::f_from_slice(values)?
        .f_reshape(shape)?
        .f_to_device(device)?)
}

fn classifier_values(
    t: &Tensor,
    part: &'static str,
    expected: &[usize],
) -> Result<Vec<f64>, MetricsError> {
    let kind = t.f_kind()?;
    if !is_real_float(kind) {
        return Err(MetricsError::ClassifierKind { part, kind });
    }
    let got: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
    if got != expected {
        return Err(MetricsError::ClassifierShape {
            part,
            expected: expected.to_vec(),
            got,
        });
    }
    host_f64(t)
}

/// Device-side tallies of what `update_tensor` cannot check without reading values.
#[derive(Debug)]
pub(crate) struct DeviceChecks {
    device: Device,
    num_classes: usize,
    bad_labels: Tensor,
    label_min: Tensor,
    label_max: Tensor,
    /// Batches with a NaN or infinite feature (a flag per batch: counting the values would
    /// cost a `[B, d]` pass with a temporary, some 15× the min/max reduction).
    non_finite_batches: Tensor,
}

impl DeviceChecks {
    fn new(num_classes: usize, device: Device) -> Result<Self, MetricsError> {
        let zero = || Tensor::f_zeros([], (Kind::Int64, device));
        Ok(DeviceChecks {
            device,
            num_classes,
            bad_labels: zero()?,
            label_min: zero()?,
            label_max: zero()?,
            non_finite_batches: zero()?,
        })
    }

    fn record(&mut self, batch: &TensorBatch) -> Result<(), MetricsError> {
        let y = &batch.raw_labels;
        let bad = y
            .f_lt(0)?
            .f_logical_or(&y.f_ge(self.num_classes as i64)?)?
            .f_sum(Kind::Int64)?;
        // NaN propagates into min and max, ±∞ is one of them: finite extremes, finite batch.
        let (min, max) = batch.raw_features.f_aminmax(None, false)?;
        let non_finite = min
            .f_isfinite()?
            .f_logical_and(&max.f_isfinite()?)?
            .f_logical_not()?
            .f_to_kind(Kind::Int64)?;
        let bad_labels = self.bad_labels.f_add(&bad)?;
        let label_min = self.label_min.f_minimum(&y.f_min()?)?;
        let label_max = self.label_max.f_maximum(&y.f_max()?)?;
        let non_finite_batches = self.non_finite_batches.f_add(&non_finite)?;
        self.bad_labels = bad_labels;
        self.label_min = label_min;
        self.label_max = label_max;
        self.non_finite_batches = non_finite_batches;
        Ok(())
    }

    /// The errors the host checks would have raised, in the same order (labels, then values).
    fn check(&self) -> Result<(), MetricsError> {
        let count = self.bad_labels.f_int64_value(&[])?;
        if count > 0 {
            let min = self.label_min.f_int64_value(&[])?;
            let value = if min < 0 {
                min
            } else {
                self.label_max.f_int64_value(&[])?
            };
            return Err(MetricsError::LabelOutOfRange {
                value,
                count: count as u64,
                num_classes: self.num_classes,
            });
        }
        match self.non_finite_batches.f_int64_value(&[])? {
            0 => Ok(()),
            batches => Err(MetricsError::NonFiniteBatches {
                batches: batches as u64,
            }),
        }
    }
}

/// Pass 1 of tensor batches: class sums and counts on the batches' device.
#[derive(Debug)]
pub(crate) struct DeviceMeans {
    checks: DeviceChecks,
    sums: Tensor,
    counts: Tensor,
}

impl DeviceMeans {
    fn new(num_classes: usize, dim: usize, device: Device) -> Result<Self, MetricsError> {
        let (c, d) = (num_classes as i64, dim as i64);
        Ok(DeviceMeans {
            checks: DeviceChecks::new(num_classes, device)?,
            sums: Tensor::f_zeros([c, d], (Kind::Double, device))?,
            counts: Tensor::f_zeros([c], (Kind::Int64, device))?,
        })
    }

    /// Checks the recorded batches, then adds their sums and counts to the host ones.
    pub(crate) fn add_to(self, sums: &mut [f64], counts: &mut [u64]) -> Result<(), MetricsError> {
        self.checks.check()?;
        for (s, x) in sums.iter_mut().zip(host_f64(&self.sums)?) {
            *s += x;
        }
        for (n, k) in counts.iter_mut().zip(host_u64(&self.counts)?) {
            *n += k;
        }
        Ok(())
    }
}

/// Pass 2 of tensor batches: the pass-1 statistics uploaded to the batches' device once, and
/// the totals of [`Pass2Totals`] kept there.
pub(crate) struct DevicePass2 {
    checks: DeviceChecks,
    global: Tensor,
    /// `M̃ᵀ`, `[C, d]`.
    centred_means: Tensor,
    centred_sq_norms: Tensor,
    /// `A`, `[d, r]`, and `S⁻¹`, `[r]`.
    basis: Tensor,
    inv_singular: Tensor,
    /// `Wᵀ` `[d, C]` and `W μ_G + b`.
    classifier: Option<(Tensor, Tensor)>,
    projected_sq: Tensor,
    variance_sums: Tensor,
    counts: Tensor,
    ncc_correct: Tensor,
    classifier_correct: Tensor,
    mismatches: Tensor,
}

impl DevicePass2 {
    fn new(
        stats: &MeanStats,
        classifier: Option<&PreparedClassifier>,
        device: Device,
    ) -> Result<Self, MetricsError> {
        let (c, d, r) = (
            stats.num_classes() as i64,
            stats.dim() as i64,
            stats.rank() as i64,
        );
        let diagonal: Vec<f64> = (0..c as usize)
            .map(|i| stats.gram()[i * c as usize + i])
            .collect();
        let classifier = classifier
            .map(|clf| -> Result<(Tensor, Tensor), MetricsError> {
                Ok((
                    device_f64(&clf.weight, &[c, d], device)?.f_transpose(0, 1)?,
                    device_f64(&clf.shifted_bias, &[c], device)?,
                ))
            })
            .transpose()?;
        let scalar = |kind| Tensor::f_zeros([], (kind, device));
        Ok(DevicePass2 {
            checks: DeviceChecks::new(stats.num_classes(), device)?,
            global: device_f64(stats.global_mean(), &[d], device)?,
            centred_means: device_f64(stats.centred_means(), &[c, d], device)?,
            centred_sq_norms: device_f64(&diagonal, &[c], device)?,
            basis: device_f64(stats.basis(), &[r, d], device)?.f_transpose(0, 1)?,
            inv_singular: device_f64(stats.inv_singular(), &[r], device)?,
            classifier,
            projected_sq: scalar(Kind::Double)?,
            variance_sums: Tensor::f_zeros([c], (Kind::Double, device))?,
            counts: Tensor::f_zeros([c], (Kind::Int64, device))?,
            ncc_correct: scalar(Kind::Int64)?,
            classifier_correct: scalar(Kind::Int64)?,
            mismatches: scalar(Kind::Int64)?,
        })
    }

    fn add(&mut self, batch: TensorBatch) -> Result<(), MetricsError> {
        self.checks.record(&batch)?;
        let labels = &batch.labels;
        let c = self.centred_sq_norms.size()[0];
        // h̃ = h − μ_G, in place in the batch's own f64 copy.
        let mut centred = batch.features;
        let _ = centred.f_sub_(&self.global)?;
        // argmin_c ‖h − μ_c‖² = argmin_c (‖μ̃_c‖² − 2 h̃·μ̃_c), μ̃_c = μ_c − μ_G.
        let scores = self.centred_sq_norms.f_unsqueeze(0)?.f_sub(
            &centred
                .f_matmul(&self.centred_means.f_transpose(0, 1)?)?
                .f_mul_scalar(2.0)?,
        )?;
        let ncc = scores.f_argmin(1, false)?;
        let predicted = match &self.classifier {
            None => None,
            Some((weight_t, shifted_bias)) => Some(
                centred
                    .f_matmul(weight_t)?
                    .f_add(shifted_bias)?
                    .f_argmax(1, false)?,
            ),
        };
        // h̃_i − μ̃_{y_i} = h_i − μ_{y_i}, in place as h̃ + (−Y) M̃ᵀ with Y the one-hot labels:
        // bit-identical to a subtraction (products by 0 and −1 are exact) and, unlike a
        // gather of the means, it allocates no second [B, d] tensor.
        let negated_onehot = labels.f_one_hot(c)?.f_to_kind(Kind::Double)?.f_neg()?;
        let diff = centred.f_addmm_(&negated_onehot, &self.centred_means)?;
        let projected_sq = if self.inv_singular.size()[0] > 0 {
            // ‖S⁻¹ Aᵀ (h_i − μ_{y_i})‖²: the NC1 summand, O(d·r) per sample.
            let projected = diff.f_matmul(&self.basis)?.f_mul(&self.inv_singular)?;
            self.projected_sq
                .f_add(&projected.f_square()?.f_sum(Kind::Double)?)?
        } else {
            self.projected_sq.shallow_clone()
        };
        let sq_dist = diff.f_norm_scalaropt_dim(2.0, [1], false)?.f_square()?;
        let variance_sums = self.variance_sums.f_index_add(0, labels, &sq_dist)?;
        let counts = self.counts.f_index_add(0, labels, &labels.f_ones_like()?)?;
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
        self.projected_sq = projected_sq;
        self.variance_sums = variance_sums;
        self.counts = counts;
        self.ncc_correct = ncc_correct;
        self.classifier_correct = classifier_correct;
        self.mismatches = mismatches;
        Ok(())
    }

    /// Checks the recorded batches, then brings the totals to the host.
    pub(crate) fn totals(&self) -> Result<Pass2Totals, MetricsError> {
        self.checks.check()?;
        let scalar = |t: &Tensor| -> Result<u64, MetricsError> { Ok(t.f_int64_value(&[])? as u64) };
        Ok(Pass2Totals {
            projected_sq: self.projected_sq.f_double_value(&[])?,
            variance_sums: host_f64(&self.variance_sums)?,
            counts: host_u64(&self.counts)?,
            ncc_correct: scalar(&self.ncc_correct)?,
            classifier_correct: scalar(&self.classifier_correct)?,
            mismatches: scalar(&self.mismatches)?,
        })
    }
}

fn count_equal(a: &Tensor, b: &Tensor) -> Result<Tensor, MetricsError> {
    Ok(a.f_eq_tensor(b)?.f_sum(Kind::Int64)?)
}
