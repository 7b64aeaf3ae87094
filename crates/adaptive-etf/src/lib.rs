//! Adaptive-ETF training of MLPs (arXiv 2412.00884; algorithms.md §4).
//!
//! An MLP trains as usual while, after every epoch, the trainer measures the neural collapse of
//! each hidden layer on a class-balanced probe set. Once a layer's nearest-class-centre (NCC)
//! accuracy has stayed ≥ τ for `patience` probes, every Linear after it is replaced by a simplex
//! ETF map and taken out of the optimiser, so the learnable-parameter count drops while training
//! goes on. The same [`Trainer`] drives any [`CollapseModel`] (the ViT of `etf-transformer` too).
//!
//! # Example
//! ```
//! use adaptive_etf::{Mlp, MlpConfig, MlpVariant, OptimizerSpec, Schedule, TrainSpec, Trainer,
//!                    RunData, NoProgress};
//! use etf_data::SyntheticConfig;
//! let data = SyntheticConfig { num_classes: 3, dim: 8, train_per_class: 40, test_per_class: 10,
//!                              ..SyntheticConfig::default() }.generate().unwrap();
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let cfg = MlpConfig { depth: 2, width: 16, ..MlpConfig::default() };
//! let mlp = Mlp::new(&vs.root(), &cfg, 8, 3, &MlpVariant::Baseline).unwrap();
//! let spec = TrainSpec {
//!     epochs: 2, batch_size: 16, eval_batch_size: 64, label_smoothing: 0.0,
//!     optimizer: OptimizerSpec::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 5e-4 },
//!     schedule: Schedule::Constant, global_mean: Default::default(), tau: 0.9,
//!     adaptive: None, seed: 0,
//! };
//! let mut trainer = Trainer::new(mlp, vs, spec).unwrap();
//! let run = RunData { train: &data.train, probe: &data.train, test: &data.test, num_classes: 3 };
//! let record = trainer.run_epoch(&run, &mut NoProgress).unwrap();
//! assert_eq!(record.layers.len(), 2);
//! assert!(record.train_loss.is_finite());
//! ```

mod adaptive;
mod config;
mod model;
mod record;
mod schedule;
mod trainer;

pub use adaptive::LockController;
pub use config::{AdaptiveConfig, FeatureTap, MlpConfig, MlpVariant, OptimizerSpec};
pub use model::{CollapseModel, Mlp, NamedParam, Taps};
pub use record::{EpochRecord, LayerRecord};
pub use schedule::Schedule;
pub use trainer::{Evaluation, NoProgress, Progress, RunData, TrainSpec, Trainer, TrainerState};

/// Errors of model construction and training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An invalid configuration value; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The training loss became NaN or infinite.
    #[error(
        "the training loss is not finite ({loss}) in epoch {epoch}: try a lower learning rate"
    )]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// The loss.
        loss: f64,
    },
    /// A data split has no samples.
    #[error("the {0} set is empty")]
    EmptyData(&'static str),
    /// A checkpoint does not fit the model.
    #[error("checkpoint does not match the model: {0}")]
    Checkpoint(String),
    /// From the ETF layers or the optimiser.
    #[error(transparent)]
    Etf(#[from] simplex_etf::EtfError),
    /// From the collapse diagnostics.
    #[error(transparent)]
    Metrics(#[from] collapse_metrics::MetricsError),
    /// From the data loader.
    #[error(transparent)]
    Data(#[from] etf_data::DataError),
    /// From libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// From a model defined in another crate (e.g. the ViT of `etf-transformer`).
    #[error(transparent)]
    Model(Box<dyn std::error::Error + Send + Sync>),
}
