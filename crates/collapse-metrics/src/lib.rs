//! Streaming neural-collapse diagnostics for features and labels held as `tch` tensors.
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
//! Batches may have any size, any real float dtype, on CPU or CUDA; every statistic is
//! accumulated in f64 on the features' device and only `C`-sized results reach the host.
//! Features never need to be in memory at once and no `d × d` matrix is formed: memory is
//! `O(d·C)` per layer. [`reference`](mod@reference) holds the textbook `d × d` formulas for comparison.
//! Every measure's formula, source and relation to other conventions is documented on the
//! fields of [`CollapseReport`] and [`ClassifierReport`]; reports serialise with serde.
//!
//! # Conventions
//!
//! - Class means divide by `n_c`; the global mean is [`GlobalMean::Weighted`] (Zhu et al.)
//!   by default, [`GlobalMean::Unweighted`] (Papyan et al.) as an option.
//! - NC1 is `tr(Σ_W Σ_B^†)/C`; Papyan et al. report `C ×` that
//!   ([`CollapseReport::nc1_papyan`]). `Σ_B^†` keeps eigenvalues above
//!   [`DEFAULT_PINV_RTOL`]` · λ_max` (see [`ClassMeans::finalize_with`]), rank `≤ C − 1`.
//! - Standard deviations are population ones (divide by the count).
//! - Features are `[batch, dim]`; flatten higher-rank activations first
//!   (`features.flatten(1, -1)`): a 3-D tensor is an error, not silently reshaped.
//! - Pass 2 may run over the pass-1 data (a training probe) or other data such as a test set,
//!   always against the pass-1 means (see [`CollapseAccumulator`]).
//! - Undefined values (e.g. NC1 when all class means coincide) are `NaN`, written as `null`
//!   in JSON and read back as `NaN`. For a bit-exact JSON round trip enable `serde_json`'s
//!   `float_roundtrip` feature.
//!
//! # Example
//!
//! ```
//! use collapse_metrics::{ClassMeans, Classifier, CollapseAccumulator, GlobalMean};
//! use tch::{Device, Kind, Tensor};
//!
//! # fn main() -> Result<(), collapse_metrics::MetricsError> {
//! // Three classes whose samples sit exactly on their means (perfect NC1), the means
//! // forming a simplex ETF in R^3, and a classifier equal to the means (NC3).
//! let etf = Tensor::eye(3, (Kind::Double, Device::Cpu)) - 1.0 / 3.0;
//! let labels = Tensor::from_slice(&[0i64, 1, 2, 2, 1, 0]);
//! let features = etf.index_select(0, &labels).to_kind(Kind::Float);
//!
//! let mut pass1 = ClassMeans::new(3, 3, Device::Cpu)?;
//! for (f, y) in features.split(4, 0).iter().zip(labels.split(4, 0).iter()) {
//!     pass1.update(f, y)?; // batches of any size
//! }
//! let stats = pass1.finalize(GlobalMean::Weighted)?;
//!
//! let classifier = Classifier { weight: &etf, bias: None };
//! let mut pass2 = CollapseAccumulator::new(&stats, Some(classifier))?;
//! pass2.update(&features, &labels)?;
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
mod means;
pub mod reference;
mod report;
mod validate;

pub use accumulator::{Classifier, CollapseAccumulator};
pub use error::MetricsError;
pub use geometry::Nc2;
pub use means::{ClassMeans, GlobalMean, MeanStats, DEFAULT_PINV_RTOL};
pub use report::{ClassifierReport, CollapseReport};

use tch::Tensor;

/// Rows per batch when [`collapse_report`] streams in-memory features, bounding the f64 copy.
const CHUNK_ROWS: i64 = 4096;

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

/// Both passes over in-memory `features` `[N, d]` and `labels` `[N]`, with the default
/// tolerance, streamed internally in chunks so at most a chunk is copied to f64.
pub fn collapse_report(
    features: &Tensor,
    labels: &Tensor,
    num_classes: usize,
    classifier: Option<Classifier<'_>>,
    global_mean: GlobalMean,
) -> Result<CollapseReport, MetricsError> {
    let shape = features.size();
    if shape.len() != 2 {
        return Err(MetricsError::FeatureShape { shape });
    }
    let n = shape[0];
    if labels.dim() != 1 {
        return Err(MetricsError::LabelShape {
            shape: labels.size(),
        });
    }
    if labels.size()[0] != n {
        return Err(MetricsError::LengthMismatch {
            features: n,
            labels: labels.size()[0],
        });
    }
    let chunks = || -> Result<Vec<(Tensor, Tensor)>, MetricsError> {
        (0..n)
            .step_by(CHUNK_ROWS as usize)
            .map(|start| {
                let len = CHUNK_ROWS.min(n - start);
                Ok((
                    features.f_narrow(0, start, len)?,
                    labels.f_narrow(0, start, len)?,
                ))
            })
            .collect()
    };
    let mut pass1 = ClassMeans::new(num_classes, shape[1] as usize, features.device())?;
    for (f, y) in chunks()? {
        pass1.update(&f, &y)?;
    }
    let stats = pass1.finalize(global_mean)?;
    let mut pass2 = CollapseAccumulator::new(&stats, classifier)?;
    for (f, y) in chunks()? {
        pass2.update(&f, &y)?;
    }
    pass2.finalize()
}

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
