//! The crate's error type.

use tch::{Kind, TchError};

/// Everything that can go wrong when building ETFs, ETF layers or optimiser state.
#[derive(Debug, thiserror::Error)]
pub enum EtfError {
    /// A simplex ETF needs at least two vectors (`K ≥ 2`).
    #[error("a simplex ETF needs K >= 2 vectors, got K = {k}")]
    TooFewVectors {
        /// The requested number of vectors.
        k: i64,
    },
    /// `K` unit vectors with pairwise cosine `−1/(K−1)` need an ambient dimension `p ≥ K`.
    #[error("a simplex ETF of K = {k} vectors needs dimension p >= K, got p = {p}")]
    DimensionTooSmall {
        /// The number of vectors.
        k: i64,
        /// The ambient dimension.
        p: i64,
    },
    /// A tensor argument has the wrong shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which argument.
        what: String,
        /// The shape that was needed.
        expected: Vec<i64>,
        /// The shape that was given.
        got: Vec<i64>,
    },
    /// A tensor argument holds NaN or infinite entries.
    #[error("{0} holds non-finite values")]
    NonFinite(String),
    /// ETF maps are real-valued: the requested kind is not a floating-point kind.
    #[error("ETF maps need a floating-point kind, got {0:?}")]
    NotFloat(Kind),
    /// The scale `α` of an ETF map must be finite and non-zero.
    #[error("the ETF scale alpha must be finite and non-zero, got {0}")]
    InvalidAlpha(f64),
    /// `nearest` needs a weight to be near to: a fresh layer has none.
    #[error("the `nearest` orientation needs an existing weight; a layer constrained from the start must use `canonical`, `random`, `gaussian` or `orthogonal`")]
    NearestNeedsWeight,
    /// A VarStore variable of that name exists already (tch would silently rename ours).
    #[error("variable {0} already exists in the VarStore")]
    DuplicateVariable(String),
    /// A loaded weight is not the ETF map its lock specification describes.
    #[error("{name} is not the ETF map of its lock spec (deviation {deviation:e} > tolerance {tolerance:e})")]
    NotAnEtfMap {
        /// The weight's VarStore name.
        name: String,
        /// Largest deviation found.
        deviation: f64,
        /// The tolerance for the weight's kind.
        tolerance: f64,
    },
    /// The optimiser already holds a parameter of that name, or the same tensor under another name.
    #[error("the optimiser already holds parameter {0} (or the same tensor)")]
    DuplicateParam(String),
    /// Only tensors that require grad can be optimised.
    #[error("parameter {0} does not require grad, so it cannot be optimised")]
    ParamNotTrainable(String),
    /// An optimiser configuration is invalid (PyTorch's own checks).
    #[error("invalid optimiser configuration: {0}")]
    InvalidConfig(String),
    /// An optimiser-state checkpoint lacks an entry.
    #[error("optimiser state entry {0} is missing")]
    MissingState(String),
    /// An optimiser-state checkpoint names a parameter or field this optimiser does not have.
    #[error("optimiser state entry {0} does not belong to this optimiser")]
    UnknownState(String),
    /// An optimiser-state entry has the wrong shape or an invalid value.
    #[error("optimiser state entry {name}: expected shape {expected:?}, got {got:?}")]
    StateShape {
        /// The entry's name.
        name: String,
        /// The parameter's shape (`[]` for the step counter).
        expected: Vec<i64>,
        /// The stored shape.
        got: Vec<i64>,
    },
    /// An error raised by libtorch.
    #[error(transparent)]
    Torch(#[from] TchError),
}
