//! The experiment runner behind the `etf` binary: experiment files ([`config`]), each
//! (variant, seed) resolved once into a [`job::Job`], run directories ([`run`]: checkpoints,
//! `metrics.csv`, `summary.json`, `report.md`, plots, the TensorBoard event file of
//! [`tensorboard`]), resume, sweeps, comparison tables ([`compare`]) and diagnosis of saved
//! models ([`diagnose`]). The per-epoch figures these outputs show are declared once, in
//! [`figures`]. Training itself is `etf-train`'s; how the crates fit together is in
//! `docs/architecture.md`.
//!
//! The binary is thin; everything here is a library so the per-experiment binaries
//! (`cargo run --release --bin fashion-mlp`) run the very same code path.
//!
//! # Example
//! ```
//! let cfg = etf_runner::config::ExperimentConfig::parse(r#"
//!     name = "demo"
//!     [data]
//!     dataset = "synthetic"
//!     [model]
//!     kind = "mlp"
//!     depth = 2
//!     width = 16
//!     [train]
//!     epochs = 2
//!     batch_size = 32
//!     [train.optimizer]
//!     kind = "sgd"
//!     lr = 0.05
//!     [[variant]]
//!     name = "baseline"
//!     kind = "baseline"
//! "#, &["train.epochs=3".to_string()]).unwrap();
//! assert_eq!(cfg.train.epochs, 3);
//! ```

pub mod chart;
pub mod cli;
pub mod compare;
pub mod compare_figures;
pub mod config;
pub mod diagnose;
pub mod figures;
pub mod inspect;
pub mod io;
pub mod job;
pub mod memory;
pub mod model;
pub mod output;
pub mod plots;
pub mod run;
pub mod run_lock;
pub mod tensorboard;
