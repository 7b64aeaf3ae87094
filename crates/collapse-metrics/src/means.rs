//! Pass 1: class means and counts, then the statistics every later measure needs.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::geometry::Nc2;
use crate::validate::{check_counts, check_setup, host_f64, host_i64, prepare_batch};
use crate::MetricsError;

/// Default relative tolerance of the pseudo-inverse `Σ_B^†`: eigenvalues of `Σ_B` at or below
/// `rtol · λ_max` are dropped (singular values of `M̃` at or below `sqrt(rtol) · s_max`).
///
/// `1e-10` sits far above the round-off of an f64 `d × d` eigendecomposition
/// (`≈ d · 1e-16 · λ_max`), so the streaming and the textbook method keep the same subspace.
pub const DEFAULT_PINV_RTOL: f64 = 1e-10;

/// Which global mean `μ_G` centres the class means (`M̃ = [μ_c − μ_G]`).
///
/// NC1's between-class scatter, NC2, NC3 and the NCC decisions (which do not depend on it)
/// use it. For balanced classes both conventions agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GlobalMean {
    /// Mean of all samples, `μ_G = (1/N) Σ_i h_i = Σ_c (n_c/N) μ_c` (Zhu et al. 2021).
    #[default]
    Weighted,
    /// Mean of the class means, `μ_G = (1/C) Σ_c μ_c` (Papyan, Han & Donoho 2020; Wu &
    /// Papyan's `neural_collapse` library).
    Unweighted,
}

/// Pass 1 accumulator: per-class feature sums and counts, in f64 on the chosen device.
///
/// Memory `O(C·d)`, whatever the number of samples. Feed it every batch of a layer's
/// features with [`update`](Self::update), then call [`finalize`](Self::finalize).
#[derive(Debug)]
pub struct ClassMeans {
    num_classes: usize,
    dim: usize,
    device: Device,
    sums: Tensor,
    counts: Tensor,
}

impl ClassMeans {
    /// An empty accumulator for `num_classes ≥ 2` classes of `dim ≥ 1` features on `device`.
    pub fn new(num_classes: usize, dim: usize, device: Device) -> Result<Self, MetricsError> {
        check_setup(num_classes, dim)?;
        let (c, d) = (num_classes as i64, dim as i64);
        Ok(ClassMeans {
            num_classes,
            dim,
            device,
            sums: Tensor::f_zeros([c, d], (Kind::Double, device))?,
            counts: Tensor::f_zeros([c], (Kind::Int64, device))?,
        })
    }

    /// Adds a batch: `features` `[B, dim]` of any real float dtype on the accumulator's device,
    /// `labels` `[B]` of any integer dtype in `0..num_classes` (on any device). `B` may be 0.
    ///
    /// Higher-rank features are rejected: flatten them first (`features.flatten(1, -1)`).
    /// On error the accumulator is unchanged.
    pub fn update(&mut self, features: &Tensor, labels: &Tensor) -> Result<(), MetricsError> {
        let Some(batch) = prepare_batch(features, labels, self.num_classes, self.dim, self.device)?
        else {
            return Ok(());
        };
        // Out-of-place, assigned together, so a failure leaves the accumulator unchanged.
        let sums = self.sums.f_index_add(0, &batch.labels, &batch.features)?;
        let counts = self.counts.f_add(
            &batch
                .labels
                .f_bincount::<Tensor>(None, self.num_classes as i64)?,
        )?;
        self.sums = sums;
        self.counts = counts;
        Ok(())
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Class means and derived statistics, with the default tolerance [`DEFAULT_PINV_RTOL`].
    ///
    /// Fails with [`MetricsError::EmptyClasses`], naming them, if a class has no sample.
    pub fn finalize(self, global_mean: GlobalMean) -> Result<MeanStats, MetricsError> {
        self.finalize_with(global_mean, DEFAULT_PINV_RTOL)
    }

    /// As [`finalize`](Self::finalize), with the relative tolerance `rtol` of `Σ_B^†` (see
    /// [`DEFAULT_PINV_RTOL`]).
    pub fn finalize_with(
        self,
        global_mean: GlobalMean,
        rtol: f64,
    ) -> Result<MeanStats, MetricsError> {
        if !(rtol.is_finite() && rtol >= 0.0) {
            return Err(MetricsError::InvalidTolerance { rtol });
        }
        let counts = host_i64(&self.counts)?;
        check_counts(&counts, "pass 1 (class means)")?;
        let total: i64 = counts.iter().sum();
        let means = self
            .sums
            .f_div(&self.counts.f_to_kind(Kind::Double)?.f_unsqueeze(1)?)?;
        let global = match global_mean {
            GlobalMean::Weighted => self
                .sums
                .f_sum_dim_intlist(0, false, Kind::Double)?
                .f_div_scalar(total as f64)?,
            GlobalMean::Unweighted => means.f_mean_dim(0, false, Kind::Double)?,
        };
        let centred = means.f_sub(&global)?;
        // Thin SVD of M̃ᵀ = A S Bᵀ, taken as M̃ = B S Aᵀ (C × d, cheap): A = V below.
        let (_, s, v) = centred.f_svd(true, true)?;
        let singular_values = host_f64(&s)?;
        let s_max = singular_values.first().copied().unwrap_or(0.0);
        let max_rank = (self.num_classes - 1).min(self.dim);
        let rank = singular_values
            .iter()
            .take(max_rank)
            .take_while(|&&x| s_max > 0.0 && x * x > rtol * s_max * s_max)
            .count();
        let basis = v.f_narrow(1, 0, rank as i64)?.f_contiguous()?;
        let inv_singular = s.f_narrow(0, 0, rank as i64)?.f_reciprocal()?;
        let gram_tensor = centred.f_matmul(&centred.f_transpose(0, 1)?)?;
        let gram = host_f64(&gram_tensor)?;
        let nc2 = Nc2::from_gram(&gram, self.num_classes);
        Ok(MeanStats {
            num_classes: self.num_classes,
            dim: self.dim,
            device: self.device,
            global_mean_kind: global_mean,
            counts,
            centred_sq_norms: centred
                .f_square()?
                .f_sum_dim_intlist(1, false, Kind::Double)?,
            means,
            global,
            centred,
            basis,
            inv_singular,
            singular_values,
            rank,
            gram,
            nc2,
        })
    }
}

/// The outcome of pass 1: class means `μ_c`, counts `n_c`, the global mean `μ_G`, the centred
/// means `M̃` and the thin SVD `M̃ᵀ = A S Bᵀ` truncated to the rank kept by `Σ_B^†`.
///
/// Tensors are f64 on the accumulator's device, each at most `C × d`; cloning shares them.
#[derive(Debug)]
pub struct MeanStats {
    num_classes: usize,
    dim: usize,
    device: Device,
    global_mean_kind: GlobalMean,
    counts: Vec<i64>,
    means: Tensor,
    global: Tensor,
    centred: Tensor,
    centred_sq_norms: Tensor,
    basis: Tensor,
    inv_singular: Tensor,
    singular_values: Vec<f64>,
    rank: usize,
    gram: Vec<f64>,
    nc2: Nc2,
}

impl Clone for MeanStats {
    fn clone(&self) -> Self {
        MeanStats {
            num_classes: self.num_classes,
            dim: self.dim,
            device: self.device,
            global_mean_kind: self.global_mean_kind,
            counts: self.counts.clone(),
            means: self.means.shallow_clone(),
            global: self.global.shallow_clone(),
            centred: self.centred.shallow_clone(),
            centred_sq_norms: self.centred_sq_norms.shallow_clone(),
            basis: self.basis.shallow_clone(),
            inv_singular: self.inv_singular.shallow_clone(),
            singular_values: self.singular_values.clone(),
            rank: self.rank,
            gram: self.gram.clone(),
            nc2: self.nc2,
        }
    }
}

impl MeanStats {
    /// Class means `μ_c = (1/n_c) Σ_{y_i=c} h_i`, `[C, d]` f64.
    pub fn means(&self) -> &Tensor {
        &self.means
    }

    /// Samples per class `n_c` seen in pass 1.
    pub fn counts(&self) -> &[i64] {
        &self.counts
    }

    /// The number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The feature dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The device every tensor lives on (and pass-2 features must be on).
    pub fn device(&self) -> Device {
        self.device
    }

    /// Samples seen in pass 1, `N = Σ_c n_c`.
    pub fn num_samples(&self) -> u64 {
        self.counts.iter().map(|&n| n as u64).sum()
    }

    /// The global mean `μ_G`, `[d]` f64, in the convention of [`global_mean_kind`](Self::global_mean_kind).
    pub fn global_mean(&self) -> &Tensor {
        &self.global
    }

    /// The global-mean convention used.
    pub fn global_mean_kind(&self) -> GlobalMean {
        self.global_mean_kind
    }

    /// Centred means `M̃ᵀ = [μ_c − μ_G]_c` as rows, `[C, d]` f64.
    pub fn centred_means(&self) -> &Tensor {
        &self.centred
    }

    /// Every singular value of `M̃` (`min(C, d)` of them, descending), including dropped ones.
    pub fn singular_values(&self) -> &[f64] {
        &self.singular_values
    }

    /// The rank `r ≤ min(C − 1, d)` of `Σ_B^†`: singular values kept by the tolerance.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The left singular vectors `A` of `M̃ᵀ` kept, `[d, r]` f64 (orthonormal columns).
    pub fn basis(&self) -> &Tensor {
        &self.basis
    }

    /// NC2 of the centred class means (see [`Nc2`]).
    pub fn nc2(&self) -> Nc2 {
        self.nc2
    }

    pub(crate) fn inv_singular(&self) -> &Tensor {
        &self.inv_singular
    }

    pub(crate) fn centred_sq_norms(&self) -> &Tensor {
        &self.centred_sq_norms
    }

    /// Row-major `C × C` Gram `M̃ᵀM̃` of the centred means.
    pub(crate) fn gram(&self) -> &[f64] {
        &self.gram
    }
}
