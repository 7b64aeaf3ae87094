//! Serde configuration of the MLP, its variants and the optimiser (algorithms.md §4).

use serde::{Deserialize, Serialize};
use simplex_etf::optim::{AdamWConfig, OptimizerConfig, SgdConfig};
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

/// Settings of the `adaptive` variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveConfig {
    /// NCC-accuracy threshold τ for a layer to count as separable.
    pub tau: f64,
    /// Consecutive probes ≥ τ before a layer is separable.
    pub patience: usize,
    /// Probe every this many epochs.
    pub probe_every: usize,
    /// Orientation of the ETF a layer is locked to.
    pub orientation: LockOrientation,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            tau: 0.9,
            patience: 5,
            probe_every: 1,
            orientation: LockOrientation::Nearest,
        }
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

/// The optimiser, as written in a config file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OptimizerSpec {
    /// SGD with PyTorch's semantics (L2 weight decay added to the gradient).
    Sgd {
        /// Base learning rate.
        lr: f64,
        /// Momentum factor.
        #[serde(default)]
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
        /// L2 weight decay.
        #[serde(default)]
        weight_decay: f64,
    },
    /// AdamW with PyTorch's semantics (decoupled weight decay).
    Adamw {
        /// Base learning rate.
        lr: f64,
        /// First-moment decay.
        #[serde(default = "beta1")]
        beta1: f64,
        /// Second-moment decay.
        #[serde(default = "beta2")]
        beta2: f64,
        /// Denominator term.
        #[serde(default = "eps")]
        eps: f64,
        /// Decoupled weight decay.
        #[serde(default = "adamw_wd")]
        weight_decay: f64,
    },
}

fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn eps() -> f64 {
    1e-8
}
fn adamw_wd() -> f64 {
    0.01
}

impl OptimizerSpec {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerSpec::Sgd { lr, .. } | OptimizerSpec::Adamw { lr, .. } => *lr,
        }
    }

    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(format!("optimizer.lr must be a positive number, got {lr}"));
        }
        match self {
            OptimizerSpec::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => {
                if !(0.0..1.0).contains(momentum) {
                    return Err(format!(
                        "optimizer.momentum must be in [0, 1), got {momentum}"
                    ));
                }
                if *nesterov && *momentum == 0.0 {
                    return Err("optimizer.nesterov needs a positive optimizer.momentum".into());
                }
                non_negative("optimizer.weight_decay", *weight_decay)
            }
            OptimizerSpec::Adamw {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                for (key, v) in [("optimizer.beta1", beta1), ("optimizer.beta2", beta2)] {
                    if !(0.0..1.0).contains(v) {
                        return Err(format!("{key} must be in [0, 1), got {v}"));
                    }
                }
                if eps.is_nan() || *eps <= 0.0 {
                    return Err(format!("optimizer.eps must be positive, got {eps}"));
                }
                non_negative("optimizer.weight_decay", *weight_decay)
            }
        }
    }

    /// The optimiser configuration of `simplex_etf::optim`.
    pub fn to_config(&self) -> OptimizerConfig {
        match *self {
            OptimizerSpec::Sgd {
                lr,
                momentum,
                nesterov,
                weight_decay,
            } => OptimizerConfig::Sgd(SgdConfig {
                lr,
                momentum,
                nesterov,
                weight_decay,
                dampening: 0.0,
            }),
            OptimizerSpec::Adamw {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => OptimizerConfig::AdamW(AdamWConfig {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            }),
        }
    }
}

fn non_negative(key: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{key} must be a non-negative number, got {v}"))
    }
}
