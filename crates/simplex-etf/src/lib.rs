//! Simplex equiangular tight frames (ETFs) and ETF-constrained linear layers.
//!
//! A simplex ETF of `K` vectors in `R^p` is `M = sqrt(K/(K−1)) U (I − 11ᵀ/K)` with orthonormal
//! `U ∈ R^{p×K}` (spec §1): unit columns, pairwise cosine `−1/(K−1)`. [`simplex_etf`] builds one
//! in three orientations ([`Orientation`]: canonical, seeded random, nearest to a given matrix),
//! [`etf_map`] turns it into an `out×in` weight (spec §2), [`EtfLinear`] is a layer constrained
//! from the start, and [`LockableLinear`] a trainable layer that can be *locked* to an ETF map
//! mid-training, dropping out of the [`optim::Optimizer`] with its state, as Adaptive-ETF does
//! (spec §4). A canonical map is applied without materialising its weight
//! ([`canonical_etf_forward`]).
//!
//! # Example
//! ```
//! use simplex_etf::{etf_gram_deviation, simplex_etf, EtfLinear, EtfSpec, Orientation};
//! use tch::{nn, nn::Module, Device, Kind, Tensor};
//!
//! // Four unit vectors in R^6 with pairwise cosine −1/3.
//! let m = simplex_etf(4, 6, Orientation::Random { seed: 7 }, Kind::Double, Device::Cpu)?;
//! assert_eq!(m.size(), [6, 4]);
//! assert!(etf_gram_deviation(&m)? < 1e-12);
//! let cos = (m.tr().matmul(&m)).double_value(&[0, 1]);
//! assert!((cos + 1.0 / 3.0).abs() < 1e-12);
//!
//! // A 10-class classifier fixed to a canonical ETF map; only its bias is learnable.
//! let vs = nn::VarStore::new(Device::Cpu);
//! let head = EtfLinear::new(&(vs.root() / "head"), 32, 10, true, &EtfSpec::default())?;
//! assert_eq!((head.learnable_params(), head.total_params()), (10, 330));
//! let logits = head.forward(&Tensor::randn([8, 32], (Kind::Float, Device::Cpu)));
//! assert_eq!(logits.size(), [8, 10]);
//! # Ok::<(), simplex_etf::EtfError>(())
//! ```

mod control;
mod error;
mod etf;
pub mod init;
mod layer;
pub mod optim;

pub use control::{control_map, Control};
pub use error::EtfError;
pub use etf::{
    canonical_etf_forward, etf_gram_deviation, etf_map, etf_map_deviation, simplex_etf, Orientation,
};
pub use layer::{
    linear_by_rows, matched_scale, EtfLinear, EtfSpec, LockOrientation, LockScale, LockableLinear,
};
