//! The training core of the ETF toolkit: what every model shares.
//!
//! - [`CollapseModel`]: the interface a network implements (forward passes with [`Taps`],
//!   named layers, trainable tensors, locking after a layer). `adaptive-etf`'s MLP and
//!   `etf-transformer`'s ViT implement it; neither depends on the other.
//! - [`Trainer`]: the epoch loop (seeded batch order, steps, the per-epoch measurements, the
//!   Adaptive-ETF lock rule of algorithms.md §4 through [`LockController`]), with
//!   [`Schedule`]s of the learning rate and an [`EpochRecord`] per epoch.
//! - [`evaluate`]: the measurements alone (collapse reports per layer, test loss and accuracy),
//!   needing no optimiser.
//! - [`checkpoint`]: the one place that knows the checkpoint's layout, and [`atomic`] writes.
//!
//! # Example
//! ```
//! use etf_train::{CollapseModel, NoProgress, RunData, Schedule, TrainSpec, Trainer, Taps,
//!                 NamedParam, evaluate};
//! use simplex_etf::optim::{Optimizer, OptimizerConfig, SgdConfig};
//! use simplex_etf::{LockOrientation, LockScale};
//! use tch::{nn, nn::Module, Device, Tensor};
//!
//! /// A linear classifier whose only tapped layer is its input.
//! struct Linear(nn::Linear);
//! impl CollapseModel for Linear {
//!     type Error = tch::TchError;
//!     fn forward_taps(&self, xs: &Tensor, _train: bool) -> Result<Taps, tch::TchError> {
//!         Ok(Taps { logits: self.0.forward(xs), layers: vec![xs.shallow_clone()],
//!                   penultimate: xs.shallow_clone() })
//!     }
//!     fn forward_logits(&self, xs: &Tensor, _train: bool) -> Result<Tensor, tch::TchError> {
//!         Ok(self.0.forward(xs))
//!     }
//!     fn layer_names(&self) -> Vec<String> { vec!["input".into()] }
//!     fn classifier(&self) -> (Tensor, Option<Tensor>) {
//!         (self.0.ws.detach(), self.0.bs.as_ref().map(Tensor::detach))
//!     }
//!     fn named_trainable(&self) -> Vec<NamedParam> {
//!         vec![NamedParam::new("w", &self.0.ws, true)]
//!     }
//!     fn lock_after(&mut self, _: usize, _: LockOrientation, _: LockScale, _: u64, _: &mut Optimizer)
//!         -> Result<Vec<String>, tch::TchError> { Ok(vec![]) }
//!     fn locked_layers(&self) -> Vec<String> { vec![] }
//!     fn total_params(&self) -> i64 { self.learnable_params() }
//! }
//!
//! let data = etf_data::SyntheticConfig { num_classes: 3, dim: 8, train_per_class: 40,
//!     test_per_class: 10, ..Default::default() }.generate().unwrap();
//! let vs = nn::VarStore::new(Device::Cpu);
//! let model = Linear(nn::linear(vs.root() / "fc", 8, 3, Default::default()));
//! let spec = TrainSpec {
//!     epochs: 2, batch_size: 16, eval_batch_size: 64, label_smoothing: 0.0,
//!     optimizer: OptimizerConfig::Sgd(SgdConfig { lr: 0.05, ..SgdConfig::default() }),
//!     schedule: Schedule::Constant, global_mean: Default::default(), tau: 0.9,
//!     adaptive: None, seed: 0,
//! };
//! let mut trainer = Trainer::new(model, vs, spec).unwrap();
//! let run = RunData { train: &data.train, probe: &data.train, test: &data.test };
//! let record = trainer.run_epoch(&run, &mut NoProgress).unwrap();
//! assert_eq!(record.layers[0].name, "input");
//! // Measuring again needs no optimiser, and gives the record's figures.
//! let m = trainer.spec().measure(Device::Cpu);
//! let again = evaluate(&trainer.model, &data.train, &data.test, &m).unwrap();
//! assert_eq!(again.test_accuracy, trainer.history()[0].test_accuracy);
//! ```

pub mod atomic;
pub mod checkpoint;
mod evaluate;
mod lock;
mod model;
mod record;
mod schedule;
mod stack;
mod trainer;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use evaluate::{evaluate, Evaluation, Measure};
pub use lock::{AdaptiveConfig, LockController};
pub use model::{lock_belongs_to, CollapseModel, Taps, CLASSIFIER};
pub use record::{EpochRecord, LayerRecord};
pub use schedule::Schedule;
pub use simplex_etf::optim::NamedParam;
pub use stack::{StackMode, StackedTrainer};
pub use trainer::{
    restore_model, EpochOutcome, EpochPosition, NoProgress, Progress, RunData, TrainSpec, Trainer,
    TrainerState,
};

/// Errors of training and measuring a model whose own errors are `E`
/// ([`CollapseModel::Error`]).
#[derive(Debug, thiserror::Error)]
pub enum TrainError<E: std::error::Error + 'static> {
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
    /// Writing, reading or restoring a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
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
    /// From the model.
    #[error(transparent)]
    Model(E),
}
