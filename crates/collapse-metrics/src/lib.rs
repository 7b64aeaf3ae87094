//! Streaming neural-collapse diagnostics on plain host data (`&[f32]` / `&[f64]`), with
//! optional `tch::Tensor` input (feature `tch`).
//!
//! Neural collapse (Papyan, Han & Donoho 2020) describes the last-layer features of a trained
//! classifier: within-class variability vanishes (NC1), the centred class means form a simplex
//! equiangular tight frame (NC2), the classifier aligns with them (NC3) and acts as a
//! nearest-class-centre rule (NC4). This crate measures all four, plus CDNV and NCC accuracy
//! (Galanti et al. 2022) and the effective depth of a stack of layers, for any layer.
//!
//! Two passes over the data, each a `update(features, labels)` / `finalize()` accumulator:
//! [`ClassMeans`] (class means and counts), then [`CollapseAccumulator`] (within-class scatter
//! projected on the class-mean subspace, per-class variances, NCC and classifier decisions).
//! Batches are row-major [`Matrix`] views of f32 or f64 values, of any size; every statistic
//! is accumulated in f64. Features never need to be in memory at once and no `d × d` matrix is
//! formed: memory is `O(d·C)` per layer plus `O(256·d)` of scratch. [`reference`](mod@reference)
//! holds the textbook `d × d` formulas for comparison. Every measure's formula, source and
//! relation to other conventions is documented on the fields of [`CollapseReport`] and
//! [`ClassifierReport`]; reports serialise with serde.
//!
//! By default the crate needs no libtorch: its dependencies are `faer` (the thin SVD),
//! `serde` and `thiserror`. With the `tch` feature, `update_tensor` methods take
//! `tch::Tensor` batches on CPU or CUDA and accumulate them on the tensors' device, without a
//! host synchronisation per batch (see the `tensor` module, present with the feature).
//!
//! # Conventions
//!
//! | choice | this crate | Papyan, Han & Donoho's code | Wu & Papyan's `neural_collapse` |
//! |---|---|---|---|
//! | class means | divide by `n_c` | divide by `n_c` | divide by `n_c` |
//! | global mean `μ_G` | [`GlobalMean::Weighted`] (mean of all samples, Zhu et al.; default) or [`GlobalMean::Unweighted`] | unweighted (mean of the class means) | unweighted |
//! | NC1 | `nc1 = tr(Σ_W Σ_B^†) / C` (Zhu et al.) | `tr(Σ_W Σ_B^†)` = [`CollapseReport::nc1_papyan`] `= C · nc1` (10 × at `C = 10`) | `covariance_ratio(…, "pinv") = tr(pinv(Σ_B) Σ_W) / K` = `nc1` |
//! | `Σ_B^†` | eigenvalues `> rtol · λ_max`, [`DEFAULT_PINV_RTOL`], rank `≤ C − 1` | the top `C − 1` (`svds`) | `torch.linalg.pinv` |
//! | std in NC2 | population (divide by the count) | `torch.std`, sample (divide by count − 1) | (returns the norms and cosines) |
//! | NC4 | mismatch of `argmax (W h + b)` and NCC | mismatch, with the network's output (bias included) | agreement, `argmax X Wᵀ` (no bias) |
//!
//! To compare a population std with a sample one, multiply `equinorm` by `sqrt(C/(C−1))` and
//! `equiangularity` by `sqrt(m/(m−1))`, `m = C(C−1)/2` (the number of pairs). Further:
//!
//! - Pass 2 may run over the pass-1 data (a training probe) or other data such as a test set,
//!   always against the pass-1 means (see [`CollapseAccumulator`]).
//! - Undefined values (e.g. NC1 when all class means coincide) are `NaN`, written as `null`
//!   in JSON and read back as `NaN`. For a bit-exact JSON round trip enable `serde_json`'s
//!   `float_roundtrip` feature.
//!
//! # Example
//!
//! ```
//! use collapse_metrics::{ClassMeans, Classifier, CollapseAccumulator, GlobalMean, Matrix};
//!
//! # fn main() -> Result<(), collapse_metrics::MetricsError> {
//! // Three classes whose samples sit exactly on their means (perfect NC1), the means
//! // forming a simplex ETF in R^3 (rows of I − 11ᵀ/3), and a classifier equal to the means.
//! let etf: Vec<f64> = (0..9).map(|i| f64::from(u8::from(i % 4 == 0)) - 1.0 / 3.0).collect();
//! let labels = [0u8, 1, 2, 2, 1, 0];
//! let features: Vec<f32> = labels
//!     .iter()
//!     .flat_map(|&y| etf[3 * y as usize..3 * y as usize + 3].iter().map(|&x| x as f32))
//!     .collect();
//! let features = Matrix::new(&features, 6, 3)?;
//!
//! let mut pass1 = ClassMeans::new(3, 3)?;
//! for start in [0, 4] {
//!     let len = (6 - start).min(4); // batches of any size
//!     pass1.update(features.slice_rows(start, len), &labels[start..start + len])?;
//! }
//! let stats = pass1.finalize(GlobalMean::Weighted)?;
//!
//! let classifier = Classifier { weight: Matrix::new(&etf, 3, 3)?, bias: None };
//! let mut pass2 = CollapseAccumulator::new(&stats, Some(classifier))?;
//! pass2.update(features, &labels)?;
//! let report = pass2.finalize()?;
//!
//! assert!(report.nc1.abs() < 1e-12 && report.nc2.etf_error < 1e-6);
//! assert_eq!(report.ncc_accuracy, 1.0);
//! assert!(report.classifier.as_ref().is_some_and(|c| c.nc3 < 1e-12 && c.nc4 == 0.0));
//! let json = serde_json::to_string(&report).expect("serialisable");
//! assert!(json.contains("\"global_mean\":\"weighted\""));
//! # Ok(())
//! # }
//! ```

mod accumulator;
mod error;
mod geometry;
mod input;
mod means;
pub mod reference;
mod report;
#[cfg(feature = "tch")]
pub mod tensor;

pub use accumulator::{Classifier, CollapseAccumulator};
pub use error::MetricsError;
pub use geometry::Nc2;
pub use input::{Label, Matrix, Values};
pub use means::{ClassMeans, GlobalMean, MeanStats, DEFAULT_PINV_RTOL};
pub use report::{ClassifierReport, CollapseReport};

/// Effective depth (Galanti et al. 2022): the smallest 1-based layer index whose NCC accuracy
/// (on training data) is `≥ tau`, or `None` if no layer qualifies. `NaN` never qualifies.
pub fn effective_depth(ncc_accuracies: &[f64], tau: f64) -> Option<usize> {
    ncc_accuracies
        .iter()
        .position(|&acc| acc >= tau)
        .map(|i| i + 1)
}

/// [`effective_depth`] of a stack of layer reports, in layer order, from their NCC accuracy.
pub fn effective_depth_of_reports(reports: &[CollapseReport], tau: f64) -> Option<usize> {
    let accuracies: Vec<f64> = reports.iter().map(|r| r.ncc_accuracy).collect();
    effective_depth(&accuracies, tau)
}

/// Both passes over in-memory `features` `[N, d]` and their `labels` `[N]`, with the default
/// tolerance. Memory beyond the input is `O(d·C)` plus a `256 × d` f64 scratch.
pub fn collapse_report<L: Label>(
    features: Matrix<'_>,
    labels: &[L],
    num_classes: usize,
    classifier: Option<Classifier<'_>>,
    global_mean: GlobalMean,
) -> Result<CollapseReport, MetricsError> {
    let mut pass1 = ClassMeans::new(num_classes, features.cols())?;
    pass1.update(features, labels)?;
    let stats = pass1.finalize(global_mean)?;
    let mut pass2 = CollapseAccumulator::new(&stats, classifier)?;
    pass2.update(features, labels)?;
    pass2.finalize()
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_depth_is_first_layer_reaching_tau() {
        let acc = [0.2, 0.5, 0.91, 0.88, 0.95];
        assert_eq!(effective_depth(&acc, 0.9), Some(3));
        assert_eq!(effective_depth(&acc, 0.2), Some(1));
        assert_eq!(effective_depth(&acc, 0.99), None);
        assert_eq!(effective_depth(&[f64::NAN, 1.0], 0.5), Some(2));
        assert_eq!(effective_depth(&[], 0.5), None);
    }
}
