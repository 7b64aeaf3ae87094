//! What a run reports per epoch (algorithms.md §6).

use collapse_metrics::CollapseReport;
use serde::{Deserialize, Serialize};

/// Collapse diagnostics of one layer after one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Layer name (`hidden3`, `classifier`, `block2`, …).
    pub name: String,
    /// Report on the training probe set (class means from the probe set).
    pub train: CollapseReport,
    /// Report on the test set, measured against the probe set's class means: its
    /// `ncc_accuracy` is the test NCC accuracy; its NC1/CDNV measure the test scatter around the
    /// training means.
    pub test: CollapseReport,
}

/// Everything measured in one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch (in training mode, as the steps ran).
    pub train_loss: f64,
    /// Training accuracy over the epoch (in training mode, as the steps ran).
    pub train_accuracy: f64,
    /// Test loss (evaluation mode).
    pub test_loss: f64,
    /// Test accuracy (evaluation mode).
    pub test_accuracy: f64,
    /// Learnable parameters at the end of the epoch (after any lock it made).
    pub learnable_params: i64,
    /// All parameters, fixed ETF weights included.
    pub total_params: i64,
    /// Bytes of optimiser state (momentum / moments) at the end of the epoch.
    pub optimizer_state_bytes: i64,
    /// Layers whose weights are ETF maps at the end of the epoch.
    pub locked_layers: Vec<String>,
    /// Layers locked at the end of this epoch.
    pub newly_locked: Vec<String>,
    /// The lock's disruption (spec §7): the training loss on the fixed lock probe batch, in
    /// evaluation mode, just before this epoch's lock; `None` in epochs without a lock (and in
    /// records written before it was measured).
    #[serde(default)]
    pub lock_loss_before: Option<f64>,
    /// The same loss just after this epoch's lock.
    #[serde(default)]
    pub lock_loss_after: Option<f64>,
    /// Effective depth: the first hidden layer (1-based) with probe NCC accuracy ≥ τ.
    pub effective_depth: Option<usize>,
    /// Per hidden layer.
    pub layers: Vec<LayerRecord>,
    /// The classifier's input features, with the classifier's NC2/NC3/NC4.
    pub classifier: LayerRecord,
    /// Seconds spent in training steps.
    pub train_seconds: f64,
    /// Seconds spent measuring (probe, test, collapse reports).
    pub metrics_seconds: f64,
    /// Training samples per second of step time.
    pub samples_per_second: f64,
}

impl EpochRecord {
    /// Wall time of the epoch: training plus measuring.
    pub fn epoch_seconds(&self) -> f64 {
        self.train_seconds + self.metrics_seconds
    }

    /// Training NCC accuracy of each hidden layer.
    pub fn train_ncc(&self) -> Vec<f64> {
        self.layers.iter().map(|l| l.train.ncc_accuracy).collect()
    }
}
