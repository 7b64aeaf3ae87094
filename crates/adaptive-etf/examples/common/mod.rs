//! What the timing examples share: the training set-up of the side-by-side comparisons.

use etf_train::{Schedule, TrainSpec};
use simplex_etf::optim::{OptimizerConfig, SgdConfig};

/// Batches of 128, SGD (lr 0.01, momentum 0.9, weight decay 5e-4), constant rate, no locks:
/// the set-up of `benches/reference/mlp_throughput.py`.
pub fn sgd_spec(epochs: usize, eval_batch_size: usize) -> TrainSpec {
    TrainSpec {
        epochs,
        batch_size: 128,
        eval_batch_size,
        label_smoothing: 0.0,
        optimizer: OptimizerConfig::Sgd(SgdConfig {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            ..SgdConfig::default()
        }),
        schedule: Schedule::Constant,
        global_mean: Default::default(),
        tau: 0.9,
        adaptive: None,
        seed: 0,
    }
}
