//! Pass 1: class means and counts, then the statistics every later measure needs.

use serde::{Deserialize, Serialize};

use crate::geometry::Nc2;
use crate::input::{check_batch, check_counts, check_setup, Label, Matrix, Values};
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

/// Pass 1 accumulator: per-class feature sums (f64) and counts.
///
/// Memory `O(C·d)`, whatever the number of samples. Feed it every batch of a layer's
/// features with [`update`](Self::update), then call [`finalize`](Self::finalize).
#[derive(Debug)]
pub struct ClassMeans {
    num_classes: usize,
    dim: usize,
    /// `C × d`, row-major.
    sums: Vec<f64>,
    counts: Vec<u64>,
    /// Sums of tensor batches, kept on their device until [`finalize`](Self::finalize).
    #[cfg(feature = "tch")]
    pub(crate) device: Option<crate::tensor::DeviceMeans>,
}

impl ClassMeans {
    /// An empty accumulator for `num_classes ≥ 2` classes of `dim ≥ 1` features.
    pub fn new(num_classes: usize, dim: usize) -> Result<Self, MetricsError> {
        check_setup(num_classes, dim)?;
        Ok(ClassMeans {
            num_classes,
            dim,
            sums: vec![0.0; num_classes * dim],
            counts: vec![0; num_classes],
            #[cfg(feature = "tch")]
            device: None,
        })
    }

    /// Adds a batch: `features` `[B, dim]` (f32 or f64) and their `labels` in
    /// `0..num_classes` (any integer type). `B` may be 0. On error the accumulator is unchanged.
    pub fn update<L: Label>(
        &mut self,
        features: Matrix<'_>,
        labels: &[L],
    ) -> Result<(), MetricsError> {
        let classes = check_batch(&features, labels, self.num_classes, self.dim)?;
        let d = self.dim;
        match features.values() {
            Values::F32(v) => add_rows(&mut self.sums, v, &classes, d),
            Values::F64(v) => add_rows(&mut self.sums, v, &classes, d),
        }
        for &y in &classes {
            self.counts[y] += 1;
        }
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
    // Over 60 lines on purpose: the steps from class sums to `Σ_B`'s factorisation follow the
    // spec's derivation in order, sharing its intermediate matrices.
    #[cfg_attr(not(feature = "tch"), allow(unused_mut))]
    pub fn finalize_with(
        mut self,
        global_mean: GlobalMean,
        rtol: f64,
    ) -> Result<MeanStats, MetricsError> {
        if !(rtol.is_finite() && rtol >= 0.0) {
            return Err(MetricsError::InvalidTolerance { rtol });
        }
        #[cfg(feature = "tch")]
        if let Some(device) = self.device.take() {
            device.add_to(&mut self.sums, &mut self.counts)?;
        }
        check_counts(&self.counts, "pass 1 (class means)")?;
        let (c, d) = (self.num_classes, self.dim);
        let total: u64 = self.counts.iter().sum();
        let mut means = self.sums.clone();
        for (row, &n) in means.chunks_exact_mut(d).zip(&self.counts) {
            row.iter_mut().for_each(|x| *x /= n as f64);
        }
        let global: Vec<f64> = match global_mean {
            GlobalMean::Weighted => column_sums(&self.sums, d)
                .into_iter()
                .map(|s| s / total as f64)
                .collect(),
            GlobalMean::Unweighted => column_sums(&means, d)
                .into_iter()
                .map(|s| s / c as f64)
                .collect(),
        };
        let centred: Vec<f64> = means
            .chunks_exact(d)
            .flat_map(|row| row.iter().zip(&global).map(|(m, g)| m - g))
            .collect();
        // Thin SVD of the C × d matrix M̃ᵀ = B S Aᵀ (cheap): A = V, d × min(C, d), holds the
        // left singular vectors of M̃, which span the class-mean subspace.
        let svd = faer::MatRef::from_row_major_slice(&centred, c, d)
            .thin_svd()
            .map_err(|_| MetricsError::NoConvergence {
                what: "SVD of the centred class means",
            })?;
        let singular_values: Vec<f64> = svd.S().column_vector().iter().copied().collect();
        let s_max = singular_values.first().copied().unwrap_or(0.0);
        let max_rank = (c - 1).min(d);
        let rank = singular_values
            .iter()
            .take(max_rank)
            .take_while(|&&x| s_max > 0.0 && x * x > rtol * s_max * s_max)
            .count();
        let v = svd.V();
        let basis: Vec<f64> = (0..rank)
            .flat_map(|k| (0..d).map(move |j| v[(j, k)]))
            .collect();
        let gram = gram(&centred, c, d);
        let nc2 = Nc2::from_gram(&gram, c);
        Ok(MeanStats {
            num_classes: c,
            dim: d,
            global_mean_kind: global_mean,
            counts: self.counts,
            means,
            global,
            centred,
            inv_singular: singular_values[..rank].iter().map(|s| 1.0 / s).collect(),
            basis,
            singular_values,
            rank,
            gram,
            nc2,
        })
    }
}

/// `sums[y_i] += row_i` for every row, in f64.
fn add_rows<T: Copy + Into<f64>>(sums: &mut [f64], rows: &[T], classes: &[usize], d: usize) {
    for (row, &y) in rows.chunks_exact(d).zip(classes) {
        for (s, &x) in sums[y * d..(y + 1) * d].iter_mut().zip(row) {
            *s += x.into();
        }
    }
}

/// Column sums of a row-major matrix with `d` columns.
fn column_sums(rows: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d];
    for row in rows.chunks_exact(d) {
        out.iter_mut().zip(row).for_each(|(o, x)| *o += x);
    }
    out
}

/// Row-major `c × c` Gram `V Vᵀ` of the rows of the row-major `c × d` matrix `v`.
pub(crate) fn gram(v: &[f64], c: usize, d: usize) -> Vec<f64> {
    let mut g = vec![0.0; c * c];
    for i in 0..c {
        for j in i..c {
            let dot = dot(&v[i * d..(i + 1) * d], &v[j * d..(j + 1) * d]);
            g[i * c + j] = dot;
            g[j * c + i] = dot;
        }
    }
    g
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The outcome of pass 1: class means `μ_c`, counts `n_c`, the global mean `μ_G`, the centred
/// means `M̃` and the thin SVD `M̃ = A S Bᵀ` truncated to the rank kept by `Σ_B^†`.
///
/// Everything is f64 on the host, at most `C × d` values per field. Matrices are row-major.
#[derive(Clone, Debug)]
pub struct MeanStats {
    num_classes: usize,
    dim: usize,
    global_mean_kind: GlobalMean,
    counts: Vec<u64>,
    means: Vec<f64>,
    global: Vec<f64>,
    centred: Vec<f64>,
    basis: Vec<f64>,
    inv_singular: Vec<f64>,
    singular_values: Vec<f64>,
    rank: usize,
    gram: Vec<f64>,
    nc2: Nc2,
}

impl MeanStats {
    /// Class means `μ_c = (1/n_c) Σ_{y_i=c} h_i`, `[C, d]` row-major.
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// Samples per class `n_c` seen in pass 1.
    pub fn counts(&self) -> &[u64] {
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

    /// Samples seen in pass 1, `N = Σ_c n_c`.
    pub fn num_samples(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The global mean `μ_G`, `[d]`, in the convention of [`global_mean_kind`](Self::global_mean_kind).
    pub fn global_mean(&self) -> &[f64] {
        &self.global
    }

    /// The global-mean convention used.
    pub fn global_mean_kind(&self) -> GlobalMean {
        self.global_mean_kind
    }

    /// Centred means `μ̃_c = μ_c − μ_G` as rows (i.e. `M̃ᵀ`), `[C, d]` row-major.
    pub fn centred_means(&self) -> &[f64] {
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

    /// The left singular vectors `A` of `M̃` kept, as rows: `Aᵀ`, `[r, d]` row-major
    /// (orthonormal rows).
    pub fn basis(&self) -> &[f64] {
        &self.basis
    }

    /// NC2 of the centred class means (see [`Nc2`]).
    pub fn nc2(&self) -> Nc2 {
        self.nc2
    }

    /// `1/s_k` for the `r` singular values kept.
    pub(crate) fn inv_singular(&self) -> &[f64] {
        &self.inv_singular
    }

    /// Row-major `C × C` Gram `M̃ᵀM̃` of the centred means; its diagonal holds `‖μ̃_c‖²`.
    pub(crate) fn gram(&self) -> &[f64] {
        &self.gram
    }
}
