//! Typed errors of the crate.

use thiserror::Error;

/// An invalid [`crate::VitConfig`]: names the key and what is allowed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// `dim` must be a positive multiple of `heads` (each head gets `d_h = dim / heads`).
    #[error("vit.dim = {dim} must be a positive multiple of vit.heads = {heads}")]
    DimNotDivisibleByHeads {
        /// Model width.
        dim: i64,
        /// Number of attention heads.
        heads: i64,
    },
    /// Image height and width must be multiples of the patch size.
    #[error("image {height}x{width} is not divisible by vit.patch = {patch}; allowed: a patch size dividing both")]
    ImageNotDivisibleByPatch {
        /// Image height.
        height: i64,
        /// Image width.
        width: i64,
        /// Patch size.
        patch: i64,
    },
    /// `last-k` needs `1 ≤ k ≤ depth`.
    #[error("vit.ffn_etf.blocks = last-k {k} with vit.depth = {depth}; allowed: 1 <= k <= depth")]
    LastKOutOfRange {
        /// Requested number of blocks.
        k: usize,
        /// Number of blocks of the model.
        depth: usize,
    },
    /// Any other value outside its allowed range.
    #[error("{field} = {value} is invalid; allowed: {allowed}")]
    OutOfRange {
        /// Configuration key, e.g. `vit.dropout`.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What the key accepts.
        allowed: &'static str,
    },
}

/// Errors of the ViT: configuration, input shapes, locking, and libtorch.
#[derive(Debug, Error)]
pub enum VitError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An image batch does not have the shape the model was built for.
    #[error("expected an image batch of shape {expected}, got {got:?}")]
    ImageShape {
        /// Description of the expected shape.
        expected: String,
        /// The shape received.
        got: Vec<i64>,
    },
    /// A token sequence does not have the shape `[B, N, dim]`.
    #[error("expected tokens of shape [B, N, {expected_dim}], got {got:?}")]
    TokenShape {
        /// Model width.
        expected_dim: i64,
        /// The shape received.
        got: Vec<i64>,
    },
    /// A block index past the model's depth.
    #[error("block {block} does not exist; the model has {depth} blocks (0-based indices)")]
    BlockOutOfRange {
        /// The requested index.
        block: usize,
        /// Number of blocks.
        depth: usize,
    },
    /// The VarStore path already holds a ViT (tch would rename the new variables).
    #[error("variable {0} already exists: build each ViT under its own path")]
    PathInUse(String),
    /// Building or locking an ETF map failed.
    #[error("ETF constraint: {0}")]
    Etf(#[from] simplex_etf::EtfError),
    /// Augmenting a batch failed.
    #[error(transparent)]
    Data(#[from] etf_data::DataError),
    /// A libtorch operation failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
