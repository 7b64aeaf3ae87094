//! Adaptive-ETF training of MLPs (arXiv 2412.00884; algorithms.md §4): the MLP and its
//! variants.
//!
//! An MLP trains as usual while, after every epoch, the trainer of `etf-train` measures the
//! neural collapse of each hidden layer on a class-balanced probe set. Once a layer's
//! nearest-class-centre (NCC) accuracy has stayed ≥ τ for `patience` probes, every Linear after
//! it is replaced by a simplex ETF map and taken out of the optimiser, so the
//! learnable-parameter count drops while training goes on. This crate holds the network
//! ([`Mlp`], a [`etf_train::CollapseModel`]) and which layers are ETF maps when
//! ([`MlpVariant`]); the loop, the lock rule and the records are `etf-train`'s.
//!
//! # Example
//! ```
//! use adaptive_etf::{Mlp, MlpConfig, MlpVariant};
//! use etf_train::{AdaptiveConfig, NoProgress, RunData, Schedule, TrainSpec, Trainer};
//! use etf_data::SyntheticConfig;
//! use simplex_etf::optim::{OptimizerConfig, SgdConfig};
//! let data = SyntheticConfig { num_classes: 3, dim: 8, train_per_class: 40, test_per_class: 10,
//!                              ..SyntheticConfig::default() }.generate().unwrap();
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let cfg = MlpConfig { depth: 2, width: 16, ..MlpConfig::default() };
//! let adaptive = AdaptiveConfig { tau: 0.5, patience: 1, ..AdaptiveConfig::default() };
//! let mlp = Mlp::new(&vs.root(), &cfg, 8, 3, &MlpVariant::Adaptive(adaptive.clone())).unwrap();
//! let spec = TrainSpec {
//!     epochs: 2, batch_size: 16, eval_batch_size: 64, label_smoothing: 0.0,
//!     optimizer: OptimizerConfig::Sgd(SgdConfig { lr: 0.05, momentum: 0.9,
//!                                                 weight_decay: 5e-4, ..SgdConfig::default() }),
//!     schedule: Schedule::Constant, global_mean: Default::default(), tau: 0.9,
//!     adaptive: Some(adaptive), seed: 0,
//! };
//! let mut trainer = Trainer::new(mlp, vs, spec).unwrap();
//! let run = RunData { train: &data.train, probe: &data.train, test: &data.test };
//! let record = trainer.run_epoch(&run, &mut NoProgress).unwrap();
//! assert_eq!(record.layers.len(), 2);
//! // With τ = 0.5 a layer is separable after one epoch: what follows it is locked.
//! assert!(record.newly_locked.contains(&"classifier".to_string()), "{:?}", record.newly_locked);
//! ```

mod config;
mod model;

pub use config::{FeatureTap, MlpConfig, MlpVariant};
pub use model::{layer_name, Mlp};

/// Errors of building and running the MLP.
#[derive(Debug, thiserror::Error)]
pub enum MlpError {
    /// An invalid configuration value; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// From the ETF layers or the optimiser.
    #[error(transparent)]
    Etf(#[from] simplex_etf::EtfError),
    /// From libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
