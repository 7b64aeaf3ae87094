//! The serialisable per-layer report.

use serde::{Deserialize, Serialize};

use crate::geometry::{nan_null, Nc2};
use crate::GlobalMean;

/// Neural-collapse diagnostics of one layer.
///
/// Notation: `C` classes, `N` samples (of pass 2), `n_c` of class `c`, features `h_i ∈ R^d`,
/// class means `μ_c` (pass 1), global mean `μ_G`, centred means `μ̃_c = μ_c − μ_G`,
/// `M̃ = [μ̃_1 … μ̃_C] ∈ R^{d×C}`, `Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ`,
/// `Σ_B = (1/C) M̃ M̃ᵀ`. Undefined values are `NaN` (`null` in JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollapseReport {
    /// The global-mean convention that centred the means.
    pub global_mean: GlobalMean,
    /// `C`.
    pub num_classes: usize,
    /// `d`.
    pub dim: usize,
    /// Rank of `Σ_B^†` (singular values of `M̃` kept by the tolerance), at most `min(C−1, d)`.
    pub rank: usize,
    /// `N`, the samples seen in pass 2.
    pub num_samples: u64,
    /// NC1 `= tr(Σ_W Σ_B^†) / C` (Zhu et al. 2021, "A geometric analysis of neural collapse
    /// with unconstrained features"). Papyan, Han & Donoho's (2020) code reports
    /// `tr(Σ_W Σ_B^†)`, i.e. `C ×` this (see [`nc1_papyan`](Self::nc1_papyan)); Wu & Papyan's
    /// `neural_collapse` library (`covariance_ratio`, metric `"pinv"`) returns
    /// `tr(pinv(Σ_B) Σ_W) / K`, i.e. exactly this.
    /// Computed as `(1/N) Σ_i ‖S⁻¹Aᵀ(h_i − μ_{y_i})‖²` from the thin SVD `M̃ = A S Bᵀ`. `NaN`
    /// when all class means coincide (rank 0).
    #[serde(deserialize_with = "nan_null::deserialize")]
    pub nc1: f64,
    /// NC2 of the centred means `μ̃_c`: equinorm, equiangularity and max-angle (Papyan et al.
    /// 2020; population stds, see [`Nc2`] for the Bessel-corrected conversion) and the ETF error
    /// with `G = M̃ᵀM̃` (Zhu et al. 2021; 0 iff the centred means form a simplex ETF of any
    /// scale). Flattened in serde: the four keys sit at this level of the JSON.
    #[serde(flatten)]
    pub nc2: Nc2,
    /// CDNV (Galanti, György & Hutter 2022): `mean_{c<c'} (V_c + V_c') / (2‖μ_c − μ_c'‖²)`,
    /// `V_c` = [`class_variances`](Self::class_variances)`[c]`. Independent of `μ_G`.
    #[serde(deserialize_with = "nan_null::deserialize")]
    pub cdnv: f64,
    /// Nearest-class-centre accuracy: fraction of samples with `argmin_c ‖h_i − μ_c‖ = y_i`,
    /// `μ_c` from pass 1 (Papyan et al. 2020's NCC; Galanti et al. use it per layer).
    pub ncc_accuracy: f64,
    /// `tr(Σ_W) = (1/N) Σ_i ‖h_i − μ_{y_i}‖²` (scale-dependent, for context).
    pub within_trace: f64,
    /// `tr(Σ_B) = (1/C) ‖M̃‖_F²` (scale-dependent, for context).
    pub between_trace: f64,
    /// `V_c = (1/n_c) Σ_{y_i=c} ‖h_i − μ_c‖²` (Galanti et al. 2022), per class.
    pub class_variances: Vec<f64>,
    /// `n_c` in pass 2.
    pub class_counts: Vec<u64>,
    /// Measures of the classifier, when one was given.
    pub classifier: Option<ClassifierReport>,
}

impl CollapseReport {
    /// NC1 in the convention of Papyan et al.'s code, `tr(Σ_W Σ_B^†) = C · nc1` (10 × `nc1`
    /// at `C = 10`).
    pub fn nc1_papyan(&self) -> f64 {
        self.num_classes as f64 * self.nc1
    }
}

/// Measures of a linear classifier `W ∈ R^{C×d}`, `b ∈ R^C` reading the layer's features.
///
/// The NC2 measures are those of [`CollapseReport`] applied to the rows `w_c` of `W`
/// (uncentred, as in Papyan et al. 2020); `etf_error` uses `G = WWᵀ` (Zhu et al. 2021).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierReport {
    /// NC2 of the rows `w_c` (uncentred): equinorm, equiangularity, max-angle and the ETF
    /// error with `G = WWᵀ`. Flattened in serde: the four keys sit at this level of the JSON.
    #[serde(flatten)]
    pub nc2: Nc2,
    /// NC3, self-duality: `‖W/‖W‖_F − M̃ᵀ/‖M̃‖_F‖_F²` (Papyan et al. 2020, squared as in their
    /// code). Zhu et al. (2021) measure duality differently, with `WM̃` against the ETF Gram.
    #[serde(deserialize_with = "nan_null::deserialize")]
    pub nc3: f64,
    /// NC4: fraction of samples where `argmax_c (Wh + b)_c ≠ argmin_c ‖h − μ_c‖` (Papyan et al.
    /// 2020's classifier/NCC mismatch; means from pass 1). Wu & Papyan's library reports the
    /// agreement instead (`clf_ncc_agreement`, `1 −` this when the bias is zero) and decides by
    /// `argmax X Wᵀ`, without the bias.
    pub nc4: f64,
    /// Fraction of samples with `argmax_c (Wh + b)_c = y`.
    pub accuracy: f64,
}
