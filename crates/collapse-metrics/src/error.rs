//! The crate's error type.

/// Everything that can go wrong when accumulating or finalising collapse statistics.
///
/// Bad input is always reported as one of these variants, never as a panic. Each message
/// names the argument at fault (`features`, `labels`, `weight`, `bias`, …).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Neural-collapse measures compare classes: at least two are needed.
    #[error("num_classes: at least 2 classes are needed, got {num_classes}")]
    TooFewClasses {
        /// The number of classes asked for.
        num_classes: usize,
    },
    /// The feature dimension must be at least 1.
    #[error("dim: the feature dimension must be at least 1, got {dim}")]
    ZeroDim {
        /// The dimension asked for.
        dim: usize,
    },
    /// A row-major matrix was given a number of values that is not `rows × cols`.
    #[error("{what}: a {rows} × {cols} matrix needs {} values, got {len}", rows * cols)]
    MatrixLength {
        /// Which argument: `"features"`, `"weight"`, …
        what: &'static str,
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
        /// Values given.
        len: usize,
    },
    /// Features must be a 2-D `[batch, dim]` tensor.
    #[error(
        "features must be 2-D [batch, dim], got shape {shape:?}; flatten trailing \
         dimensions first, e.g. `features.flatten(1, -1)`"
    )]
    FeatureShape {
        /// The shape received.
        shape: Vec<i64>,
    },
    /// The features' second dimension differs from the accumulator's.
    #[error("features have dimension {got}, the accumulator expects {expected}")]
    FeatureDim {
        /// The accumulator's dimension.
        expected: usize,
        /// The features' dimension.
        got: usize,
    },
    /// Some features are NaN or infinite.
    #[error("features: {count} feature value(s) are not finite (NaN or infinite)")]
    NonFinite {
        /// How many entries are not finite.
        count: u64,
    },
    /// Some tensor batches held NaN or infinite features (found on the device, so counted by
    /// batch rather than by value).
    #[cfg(feature = "tch")]
    #[error("features: {batches} batch(es) hold NaN or infinite values")]
    NonFiniteBatches {
        /// How many batches.
        batches: u64,
    },
    /// Features and labels disagree on the batch size.
    #[error("{features} feature rows but {labels} labels")]
    LengthMismatch {
        /// Rows of the features.
        features: usize,
        /// Entries of the labels.
        labels: usize,
    },
    /// A label is negative or not below the number of classes.
    #[error("labels: {count} label(s) outside 0..{num_classes}, e.g. {value}")]
    LabelOutOfRange {
        /// One offending label (the smallest if any is negative, else the largest).
        value: i64,
        /// How many labels are out of range.
        count: u64,
        /// The number of classes.
        num_classes: usize,
    },
    /// Some classes received no sample, so their mean (or variance) is undefined.
    #[error("labels: class(es) {classes:?} have no sample in {pass}")]
    EmptyClasses {
        /// The classes without any sample, ascending.
        classes: Vec<usize>,
        /// Which pass saw no sample of them.
        pass: &'static str,
    },
    /// The classifier weight is not `[num_classes, dim]` or its bias not `[num_classes]`.
    #[error("classifier {part} has shape {got:?}, expected {expected:?}")]
    ClassifierShape {
        /// `"weight"` or `"bias"`.
        part: &'static str,
        /// The shape expected.
        expected: Vec<usize>,
        /// The shape received.
        got: Vec<usize>,
    },
    /// The classifier has NaN or infinite entries.
    #[error("classifier {part}: {count} value(s) are not finite (NaN or infinite)")]
    ClassifierNonFinite {
        /// `"weight"` or `"bias"`.
        part: &'static str,
        /// How many entries are not finite.
        count: u64,
    },
    /// A relative tolerance must be finite and non-negative.
    #[error("rtol: the pseudo-inverse tolerance must be finite and >= 0, got {rtol}")]
    InvalidTolerance {
        /// The tolerance received.
        rtol: f64,
    },
    /// An iterative decomposition (SVD, eigendecomposition) did not converge.
    #[error("the {what} did not converge")]
    NoConvergence {
        /// Which decomposition.
        what: &'static str,
    },
    /// Features must have a real floating-point dtype.
    #[cfg(feature = "tch")]
    #[error("features must have a real floating-point dtype, got {kind:?}")]
    FeatureKind {
        /// The dtype received.
        kind: tch::Kind,
    },
    /// Labels must be a 1-D tensor.
    #[cfg(feature = "tch")]
    #[error("labels must be 1-D [batch], got shape {shape:?}")]
    LabelShape {
        /// The shape received.
        shape: Vec<i64>,
    },
    /// Labels must have an integer dtype.
    #[cfg(feature = "tch")]
    #[error("labels must have an integer dtype, got {kind:?}")]
    LabelKind {
        /// The dtype received.
        kind: tch::Kind,
    },
    /// The classifier has a non-float dtype.
    #[cfg(feature = "tch")]
    #[error("classifier {part} must have a real floating-point dtype, got {kind:?}")]
    ClassifierKind {
        /// `"weight"` or `"bias"`.
        part: &'static str,
        /// The dtype received.
        kind: tch::Kind,
    },
    /// Tensor batches of one accumulator came from two different devices.
    #[cfg(feature = "tch")]
    #[error("features are on {got:?}, earlier batches of this accumulator were on {expected:?}")]
    DeviceMismatch {
        /// The device of the earlier batches.
        expected: tch::Device,
        /// The features' device.
        got: tch::Device,
    },
    /// An error from libtorch.
    #[cfg(feature = "tch")]
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
