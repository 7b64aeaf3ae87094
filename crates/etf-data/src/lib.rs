//! Data sets for the toolkit, loaded into memory as normalised tensors.
//!
//! Supported: MNIST and Fashion-MNIST (IDX files, raw or gzipped), scikit-learn's 8×8 digits
//! (`digits.csv.gz`, with a seeded stratified split), CIFAR-10 (binary batches) and seeded
//! Gaussian clusters ([`SyntheticConfig`]) that need no file. [`load`] reads the layout that
//! `scripts/fetch-data` makes under a data root (default `data/`, see [`default_data_root`]).
//! A [`Dataset`] holds a train and a test [`Split`] of `f32 [N, ...sample_shape]` features and
//! `i64 [N]` labels; a split gives class-balanced subsets (the NCC probe set) and a seeded
//! [`BatchIter`] whose order depends only on the seed, never on the device.
//! [`Dataset::limit`] and [`Dataset::probe`] are the one policy for quick-run subsets and the
//! probe set; [`augment_batch`] crops and flips image batches, seeded by `(seed, step)`; all
//! randomness comes from [`etf_rng`] (re-exported in [`rng`]). Loaders return a [`DataError`]
//! naming the file and the problem, never a partial data set.
//!
//! # Example
//!
//! ```
//! use etf_data::{DataError, SyntheticConfig};
//! use tch::Device;
//!
//! # fn main() -> Result<(), DataError> {
//! let config = SyntheticConfig { num_classes: 3, dim: 8, train_per_class: 20, ..Default::default() };
//! let data = config.generate()?;
//! assert_eq!((data.train.len(), data.num_classes), (60, 3));
//! assert_eq!(data.sample_shape, [8]);
//!
//! // A seeded epoch of shuffled mini-batches; the last one is partial (60 = 3·16 + 12).
//! let sizes: Vec<i64> = data
//!     .train
//!     .batches(16, Some(42), Device::Cpu)?
//!     .map(|(x, y)| {
//!         assert_eq!(x.size()[0], y.size()[0]);
//!         x.size()[0]
//!     })
//!     .collect();
//! assert_eq!(sizes, [16, 16, 16, 12]);
//!
//! // A class-balanced probe subset: 10 samples of each class.
//! let probe = data.train.balanced_subset(30, 7)?;
//! assert_eq!(probe.class_counts()?, [10, 10, 10]);
//! # Ok(())
//! # }
//! ```

pub mod augment;
mod cifar;
mod dataset;
pub mod digits;
mod error;
mod files;
pub mod idx;
pub mod norm;
pub mod rng;
mod split;
mod synthetic;

pub use augment::{augment_batch, AugmentConfig};
pub use cifar::load_cifar10;
pub use dataset::{
    default_data_root, env_data_root, load, Dataset, DatasetName, DatasetSpec, DEFAULT_DATA_ROOT,
};
pub use digits::load_digits;
pub use error::{DataError, Result};
pub use idx::load_idx_dataset;
pub use norm::Normalization;
pub use split::{BatchIter, Split};
pub use synthetic::{SyntheticConfig, MAX_SYNTHETIC_VALUES};
