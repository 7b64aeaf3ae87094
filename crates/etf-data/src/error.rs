//! The crate's error type.

use std::path::PathBuf;

/// What went wrong while loading, generating or slicing a data set.
///
/// Every variant about a file names the file and says what is wrong with it; a loader returns
/// one of these instead of a partial data set, and never panics on a bad file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A data file is not there.
    #[error("missing data file {path}: {hint}")]
    MissingFile {
        /// The file that was looked for (for IDX files, the raw name; `.gz` was tried too).
        path: PathBuf,
        /// How to get the file.
        hint: String,
    },

    /// Something other than a file is where a data file belongs.
    #[error("{path} is {what}, not a data file")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What is there, e.g. "a directory".
        what: String,
    },

    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The file starts like gzip but does not decompress.
    #[error("{path}: corrupt or truncated gzip stream: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: std::io::Error,
    },

    /// An IDX file does not start with the magic number of the expected content.
    #[error("{path}: wrong magic number: expected 0x{expected:08x} ({what}), found 0x{found:08x}")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number for this kind of file.
        expected: u32,
        /// The first four bytes of the file, big-endian.
        found: u32,
        /// What the expected number stands for, e.g. "IDX u8 images, 3 dims".
        what: &'static str,
    },

    /// The file (after decompression) ends before its header or before the data its header
    /// announces.
    #[error(
        "{path}: truncated file: its header and dims {dims:?} need {needed} bytes, it has {found}"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The dims read from the header (those read so far, when the header itself is cut).
        dims: Vec<u64>,
        /// Bytes needed (decompressed).
        needed: u64,
        /// Bytes present (decompressed).
        found: u64,
    },

    /// The file is longer than its dims say: header and contents do not match.
    #[error("{path}: dims {dims:?} do not match the file size: they imply {expected} bytes, the file has {found}")]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The dims read from the header.
        dims: Vec<u64>,
        /// Size implied by the header (decompressed bytes).
        expected: u64,
        /// Actual size (decompressed bytes).
        found: u64,
    },

    /// A header whose dims are consistent with the file but unusable: no samples, or images
    /// without a row or a column.
    #[error("{path}: dims {dims:?}: {reason}")]
    BadDims {
        /// The file.
        path: PathBuf,
        /// The dims read from the header.
        dims: Vec<u64>,
        /// What is wrong, e.g. "an image needs at least one row and one column".
        reason: &'static str,
    },

    /// A file too small for one of the splits made from it (the digits' seeded split).
    #[error("{path}: its {samples} samples leave the {split} split empty")]
    EmptySplit {
        /// The file.
        path: PathBuf,
        /// `train` or `test`.
        split: &'static str,
        /// Samples in the file.
        samples: usize,
    },

    /// A file of fixed-size records (CIFAR-10) is not a whole number of records long.
    #[error("{path}: {found} bytes is not a positive whole number of {record}-byte records; the file is truncated or of another format")]
    RecordSize {
        /// The file.
        path: PathBuf,
        /// Bytes per record.
        record: u64,
        /// Actual size in bytes.
        found: u64,
    },

    /// A label is not a valid class index.
    #[error("{path}: label {label} at index {index} is out of range 0..{num_classes}")]
    LabelOutOfRange {
        /// The file (empty for labels handed to [`crate::Split::new`]).
        path: PathBuf,
        /// Position of the sample (0-based).
        index: usize,
        /// The offending label.
        label: i64,
        /// Number of classes of the data set.
        num_classes: usize,
    },

    /// An images file and its labels file hold different numbers of samples.
    #[error("image/label count mismatch: {images_path} has {images} images, {labels_path} has {labels} labels")]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// Number of images.
        images: usize,
        /// The labels file.
        labels_path: PathBuf,
        /// Number of labels.
        labels: usize,
    },

    /// A line of a CSV file cannot be parsed.
    #[error("{path}: line {line}: {message}")]
    MalformedCsv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },

    /// The test images do not have the shape of the training images.
    #[error("{path}: sample shape {found:?} differs from the training samples' {expected:?}")]
    ShapeMismatch {
        /// The file with the odd shape.
        path: PathBuf,
        /// Shape of one training sample.
        expected: Vec<i64>,
        /// Shape of one sample of this file.
        found: Vec<i64>,
    },

    /// A class has too few samples for a class-balanced subset.
    #[error("class {class} has {available} samples, but a class-balanced subset of {requested} needs {needed} of it")]
    NotEnoughSamples {
        /// The class index.
        class: usize,
        /// Samples of that class needed.
        needed: usize,
        /// Samples of that class present.
        available: usize,
        /// Size of the requested subset.
        requested: usize,
    },

    /// A `limit_train` or `limit_test` of a [`crate::DatasetSpec`] cannot be met.
    #[error("{key} = {limit}: {source}")]
    Limit {
        /// `limit_train` or `limit_test`.
        key: &'static str,
        /// The requested size.
        limit: usize,
        /// Why (e.g. [`DataError::NotEnoughSamples`]).
        source: Box<DataError>,
    },

    /// A sample index outside the split.
    #[error("index {index} is out of range for a split of {len} samples")]
    IndexOutOfRange {
        /// The offending index.
        index: i64,
        /// Number of samples of the split.
        len: usize,
    },

    /// A configuration value outside its allowed range, named by its key.
    #[error("{key} = {value} is invalid; allowed: {allowed}")]
    OutOfRange {
        /// The configuration key, e.g. `train.augment.pad`.
        key: &'static str,
        /// The offending value.
        value: String,
        /// What the key accepts.
        allowed: &'static str,
    },

    /// A batch of images does not have the expected shape.
    #[error("expected an image batch of shape {expected}, got {got:?}")]
    BatchShape {
        /// The expected shape, e.g. `[B, C, H, W]`.
        expected: &'static str,
        /// The shape received.
        got: Vec<i64>,
    },

    /// Features and labels (or a configuration) do not fit together.
    #[error("invalid data set configuration: {0}")]
    InvalidConfig(String),

    /// A data set name that is not known.
    #[error(
        "unknown data set {0:?}: expected one of mnist, fashion-mnist, digits, cifar10, synthetic"
    )]
    UnknownDataset(String),

    /// libtorch refused an operation (e.g. a CUDA device that is not there).
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
