//! ETF-Transformer: a Vision Transformer whose feed-forward layers are simplex ETFs
//! (arXiv 2412.00884; definitions in `algorithms.md` §2 and §5).
//!
//! [`Vit`] is a pre-LN ViT for images `[C, H, W]` divisible by the patch size (28×28×1,
//! 32×32×3, …): patch embedding, class token, learned position embedding, `L` blocks
//! `[x + MHSA(LN(x)); x + FFN(LN(x))]` with `FFN = Linear(d→r·d) → GELU → Linear(r·d→d)`, final
//! LayerNorm and a linear head on the class token. Every FFN linear is a
//! [`simplex_etf::LockableLinear`]: [`VitConfig::ffn_etf`] makes the chosen matrices of `all` or
//! the `last-k` blocks fixed ETF maps from the start, and [`Vit::lock_ffn`] locks them during
//! training (the `adaptive` variant, decided by the trainer's lock rule from per-block
//! class-token NCC accuracy, whose features [`Vit::forward_features`] provides). A constrained weight is
//! not a trainable parameter: [`Vit::named_trainable`] never lists it, so an optimiser built from
//! that list cannot move it. [`expected_param_count`] gives the parameter counts by formula, and
//! [`augment_batch`] (from `etf-data`) the seeded crop-and-flip augmentation for CIFAR-like data.
//! [`VitModel`] wraps a [`Vit`] as an [`etf_train::CollapseModel`], so the shared
//! `etf_train::Trainer` trains, measures and (adaptively) locks it.
//!
//! # Example
//!
//! ```
//! use etf_transformer::{expected_param_count, EtfBlocks, FfnEtfConfig, Vit, VitConfig};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let cfg = VitConfig {
//!     patch: 4,
//!     dim: 16,
//!     depth: 2,
//!     heads: 2,
//!     mlp_ratio: 2.0,
//!     ffn_etf: FfnEtfConfig { blocks: EtfBlocks::All, ..Default::default() },
//!     ..Default::default()
//! };
//! let vs = nn::VarStore::new(Device::Cpu);
//! let vit = Vit::new(&vs.root(), &cfg, [1, 8, 8], 3)?;
//! let images = Tensor::randn([5, 1, 8, 8], (Kind::Float, Device::Cpu));
//! let taps = vit.forward_features(&images, false)?;
//! assert_eq!(taps.logits.size(), [5, 3]);
//! assert_eq!(taps.layers.len(), 2);
//! assert_eq!(taps.layers[1].size(), [5, 16]);
//! // Both FFN weights of both blocks are fixed ETFs: 2 × 2 × (16·32) fewer learnable scalars.
//! let count = expected_param_count(&cfg, [1, 8, 8], 3)?;
//! assert_eq!(vit.learnable_params(), count.learnable);
//! assert_eq!(count.total - count.learnable, 2 * 2 * 16 * 32);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod attention;
mod block;
mod config;
mod error;
mod model;
mod params;
mod vit;

pub use block::Block;
pub use config::{derive_seed, EtfBlocks, FfnEtfConfig, FfnMatrices, SeedSlot, VitConfig};
pub use error::{ConfigError, VitError};
pub use etf_data::augment::{augment_batch, AugmentConfig};
pub use model::{block_name, VitModel};
pub use params::{expected_param_count, ParamCount};
pub use simplex_etf::{EtfSpec, LockOrientation};
pub use vit::Vit;
