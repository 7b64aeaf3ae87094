//! The crate's seeded randomness, from [`etf_rng`] (the toolkit's one home for it).
//!
//! Every random choice of this crate (synthetic clusters, the digits split, class-balanced
//! subsets, batch shuffling, augmentation) goes through these, so results depend only on the
//! seed: not on libtorch's global generator, the device, or the number of threads.

pub use etf_rng::{permutation, stream_seed, RandomSource, Rng};
