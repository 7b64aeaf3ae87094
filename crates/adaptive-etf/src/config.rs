//! Serde configuration of the MLP and its variants (algorithms.md §4).

use etf_train::AdaptiveConfig;
use serde::{Deserialize, Serialize};
use simplex_etf::LockOrientation;

/// Which tensor of a hidden block the collapse diagnostics read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureTap {
    /// The block's Linear output, before BatchNorm (the paper author's choice).
    #[default]
    PreBn,
    /// The block's output after the ReLU.
    PostActivation,
}

/// Shape of the MLP: flatten → `depth × [Linear(→width), BatchNorm1d?, ReLU]` → `Linear(width→C)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Number of hidden blocks `L`.
    pub depth: usize,
    /// Hidden width `H`.
    pub width: i64,
    /// BatchNorm1d after each hidden Linear.
    #[serde(default = "yes")]
    pub batch_norm: bool,
    /// Where the diagnostics tap each hidden block.
    #[serde(default)]
    pub tap: FeatureTap,
}

fn yes() -> bool {
    true
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            depth: 5,
            width: 400,
            batch_norm: true,
            tap: FeatureTap::PreBn,
        }
    }
}

impl MlpConfig {
    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.depth == 0 {
            return Err("model.depth must be at least 1".into());
        }
        if self.width < 2 {
            return Err(format!(
                "model.width must be at least 2, got {}",
                self.width
            ));
        }
        Ok(())
    }
}

/// Which layers of the MLP are ETF maps, and when.
#[derive(Clone, Debug, PartialEq)]
pub enum MlpVariant {
    /// Everything trainable.
    Baseline,
    /// The classifier is a fixed ETF map from the start (Zhu et al. 2021).
    EtfClassifier {
        /// Orientation of the fixed ETF.
        orientation: LockOrientation,
    },
    /// The classifier and the last `k − 1` hidden Linear layers are ETF maps from the start.
    FixedLastK {
        /// Number of fixed layers, the classifier included.
        k: usize,
        /// Orientation of the fixed ETFs.
        orientation: LockOrientation,
    },
    /// Layers after the effective depth lock during training.
    Adaptive(AdaptiveConfig),
}
