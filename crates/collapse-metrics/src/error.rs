//! The crate's error type.

use tch::{Device, Kind};

/// Everything that can go wrong when accumulating or finalising collapse statistics.
///
/// Bad input is always reported as one of these variants, never as a panic.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Neural-collapse measures compare classes: at least two are needed.
    #[error("at least 2 classes are needed, got {num_classes}")]
    TooFewClasses {
        /// The number of classes asked for.
        num_classes: usize,
    },
    /// The feature dimension must be at least 1.
    #[error("the feature dimension must be at least 1, got {dim}")]
    ZeroDim {
        /// The dimension asked for.
        dim: usize,
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
        got: i64,
    },
    /// Features must have a floating-point dtype.
    #[error("features must have a real floating-point dtype, got {kind:?}")]
    FeatureKind {
        /// The dtype received.
        kind: Kind,
    },
    /// Features live on another device than the accumulator.
    #[error("features are on {got:?}, the accumulator is on {expected:?}")]
    DeviceMismatch {
        /// The accumulator's device.
        expected: Device,
        /// The features' device.
        got: Device,
    },
    /// Some features are NaN or infinite.
    #[error("{count} feature value(s) are not finite (NaN or infinite)")]
    NonFinite {
        /// How many entries of the batch are not finite.
        count: i64,
    },
    /// Labels must be a 1-D tensor.
    #[error("labels must be 1-D [batch], got shape {shape:?}")]
    LabelShape {
        /// The shape received.
        shape: Vec<i64>,
    },
    /// Labels must have an integer dtype.
    #[error("labels must have an integer dtype, got {kind:?}")]
    LabelKind {
        /// The dtype received.
        kind: Kind,
    },
    /// Features and labels disagree on the batch size.
    #[error("{features} feature rows but {labels} labels")]
    LengthMismatch {
        /// Rows of the feature tensor.
        features: i64,
        /// Entries of the label tensor.
        labels: i64,
    },
    /// A label is negative or not below the number of classes.
    #[error("{count} label(s) outside 0..{num_classes}, e.g. {value}")]
    LabelOutOfRange {
        /// One offending label (the smallest if any is negative, else the largest).
        value: i64,
        /// How many labels of the batch are out of range.
        count: i64,
        /// The number of classes.
        num_classes: usize,
    },
    /// Some classes received no sample, so their mean (or variance) is undefined.
    #[error("class(es) {classes:?} have no sample in {pass}")]
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
        expected: Vec<i64>,
        /// The shape received.
        got: Vec<i64>,
    },
    /// The classifier has a non-float dtype.
    #[error("classifier {part} must have a real floating-point dtype, got {kind:?}")]
    ClassifierKind {
        /// `"weight"` or `"bias"`.
        part: &'static str,
        /// The dtype received.
        kind: Kind,
    },
    /// A relative tolerance must be finite and non-negative.
    #[error("the pseudo-inverse tolerance must be finite and >= 0, got {rtol}")]
    InvalidTolerance {
        /// The tolerance received.
        rtol: f64,
    },
    /// An error from libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
