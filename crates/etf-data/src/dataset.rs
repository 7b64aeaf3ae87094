//! Data sets by name, their in-memory form and the `load` entry point.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::error::{DataError, Result};
use crate::norm::{self, Normalization};
use crate::split::Split;
use crate::synthetic::SyntheticConfig;

/// Default data root, relative to the working directory (as laid out by `scripts/fetch-data`).
pub const DEFAULT_DATA_ROOT: &str = "data";

/// The data root to use when none is given: [`env_data_root`], else [`DEFAULT_DATA_ROOT`].
pub fn default_data_root() -> PathBuf {
    env_data_root().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT))
}

/// `$ETF_DATA_DIR`, when it is set and not empty (an empty variable is as good as unset).
pub fn env_data_root() -> Option<PathBuf> {
    std::env::var_os("ETF_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The data sets the toolkit knows. Serialised in lowercase kebab case: `"mnist"`,
/// `"fashion-mnist"`, `"digits"`, `"cifar10"`, `"synthetic"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// MNIST handwritten digits, 60 000 / 10 000 images of 1×28×28.
    Mnist,
    /// Fashion-MNIST (Zalando), 60 000 / 10 000 images of 1×28×28.
    FashionMnist,
    /// scikit-learn's digits, 1797 images of 1×8×8, split by seed.
    Digits,
    /// CIFAR-10, 50 000 / 10 000 images of 3×32×32.
    Cifar10,
    /// Gaussian clusters of [`SyntheticConfig`].
    Synthetic,
}

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
const DIGIT_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

impl DatasetName {
    /// Every name, in a fixed order.
    pub const ALL: [DatasetName; 5] = [
        Self::Mnist,
        Self::FashionMnist,
        Self::Digits,
        Self::Cifar10,
        Self::Synthetic,
    ];

    /// The canonical name, also the folder under the data root.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
            Self::Digits => "digits",
            Self::Cifar10 => "cifar10",
            Self::Synthetic => "synthetic",
        }
    }

    /// Class names of the file-based data sets (empty for synthetic, whose count is configured).
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            Self::Mnist | Self::Digits => &DIGIT_CLASSES,
            Self::FashionMnist => &FASHION_CLASSES,
            Self::Cifar10 => &CIFAR10_CLASSES,
            Self::Synthetic => &[],
        }
    }

    /// Shape of one sample, known without loading: `[1, 28, 28]` (MNIST, Fashion-MNIST),
    /// `[1, 8, 8]` (digits), `[3, 32, 32]` (CIFAR-10); `None` for synthetic data, whose shape
    /// is its configuration's ([`SyntheticConfig::sample_shape`]). Lets a configuration check
    /// e.g. a ViT's patch size before any file is read.
    ///
    /// ```
    /// use etf_data::DatasetName;
    /// assert_eq!(DatasetName::Cifar10.sample_shape(), Some(vec![3, 32, 32]));
    /// assert_eq!(DatasetName::Synthetic.sample_shape(), None);
    /// ```
    pub fn sample_shape(self) -> Option<Vec<i64>> {
        match self {
            Self::Mnist | Self::FashionMnist => Some(vec![1, 28, 28]),
            Self::Digits => Some(vec![1, 8, 8]),
            Self::Cifar10 => Some(vec![3, 32, 32]),
            Self::Synthetic => None,
        }
    }

    /// Number of classes, known without loading (10 for every file-based data set); `None` for
    /// synthetic data, whose count is [`SyntheticConfig::num_classes`].
    ///
    /// ```
    /// use etf_data::DatasetName;
    /// assert_eq!(DatasetName::Mnist.num_classes(), Some(10));
    /// assert_eq!(DatasetName::Synthetic.num_classes(), None);
    /// ```
    pub fn num_classes(self) -> Option<usize> {
        match self.class_names() {
            [] => None,
            names => Some(names.len()),
        }
    }

    /// The pixel normalisation applied when loading (none for synthetic data).
    pub fn normalization(self) -> Option<Normalization> {
        match self {
            Self::Mnist => Some(norm::MNIST),
            Self::FashionMnist => Some(norm::FASHION_MNIST),
            Self::Digits => Some(norm::DIGITS),
            Self::Cifar10 => Some(norm::CIFAR10),
            Self::Synthetic => None,
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    /// Case-insensitive; `_` may replace `-`, and `fmnist`, `fashion`, `cifar-10` are accepted.
    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        Ok(match key.as_str() {
            "mnist" => Self::Mnist,
            "fashion-mnist" | "fashionmnist" | "fmnist" | "fashion" => Self::FashionMnist,
            "digits" | "sklearn-digits" => Self::Digits,
            "cifar10" | "cifar-10" => Self::Cifar10,
            "synthetic" => Self::Synthetic,
            _ => return Err(DataError::UnknownDataset(s.to_string())),
        })
    }
}

/// What to load: a data set name and the options that apply to it.
///
/// In a TOML config: `name = "fashion-mnist"`, optionally `limit_train = 2000`, `seed = 1`,
/// `test_fraction = 0.2` (digits), and a `[synthetic]` table (synthetic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Which data set.
    pub name: DatasetName,
    /// Keep only a seeded class-balanced subset of this many training samples (quick runs);
    /// `0` or at least the split's size keeps it whole (see [`Dataset::limit`]).
    #[serde(default)]
    pub limit_train: Option<usize>,
    /// Keep only a seeded class-balanced subset of this many test samples (as `limit_train`).
    #[serde(default)]
    pub limit_test: Option<usize>,
    /// Seed of the digits split and of the `limit_*` subsets; 0 gives the runner's subsets.
    #[serde(default)]
    pub seed: u64,
    /// Fraction of each digits class held out for testing (digits only).
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// The generator (synthetic only; its own `seed` applies).
    #[serde(default)]
    pub synthetic: SyntheticConfig,
}

fn default_test_fraction() -> f64 {
    crate::digits::DEFAULT_TEST_FRACTION
}

impl DatasetSpec {
    /// The whole data set `name` with default options.
    pub fn new(name: DatasetName) -> Self {
        Self {
            name,
            limit_train: None,
            limit_test: None,
            seed: 0,
            test_fraction: default_test_fraction(),
            synthetic: SyntheticConfig::default(),
        }
    }
}

impl From<DatasetName> for DatasetSpec {
    fn from(name: DatasetName) -> Self {
        Self::new(name)
    }
}

impl From<&DatasetSpec> for DatasetSpec {
    fn from(spec: &DatasetSpec) -> Self {
        spec.clone()
    }
}

impl From<SyntheticConfig> for DatasetSpec {
    fn from(synthetic: SyntheticConfig) -> Self {
        Self {
            synthetic,
            ..Self::new(DatasetName::Synthetic)
        }
    }
}

/// A data set in memory: training and test splits plus what describes them.
#[derive(Debug)]
pub struct Dataset {
    /// Which data set this is.
    pub name: DatasetName,
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Number of classes `C`; labels are in `0..C`.
    pub num_classes: usize,
    /// Name of each class, `[C]`.
    pub class_names: Vec<String>,
    /// Shape of one sample: `[1, 28, 28]`, `[1, 8, 8]`, `[3, 32, 32]` or `[d]`.
    pub sample_shape: Vec<i64>,
}

impl Dataset {
    /// Puts together a file-based data set with the name's class names.
    pub(crate) fn assemble(
        name: DatasetName,
        train: Split,
        test: Split,
        sample_shape: Vec<i64>,
    ) -> Self {
        let class_names: Vec<String> = name.class_names().iter().map(|s| s.to_string()).collect();
        Self {
            name,
            train,
            test,
            num_classes: class_names.len(),
            class_names,
            sample_shape,
        }
    }

    /// Number of classes `C` (the same as the field).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Number of input features of a flattened sample, `prod(sample_shape)` (an MLP's width in).
    pub fn input_dim(&self) -> i64 {
        self.sample_shape.iter().product()
    }

    /// Both splits on `device` (no copy for a split already there).
    pub fn to_device(&self, device: Device) -> Result<Self> {
        Ok(self.with_splits(self.train.to_device(device)?, self.test.to_device(device)?))
    }

    /// A second handle on the same tensors (no copy).
    pub fn shallow_clone(&self) -> Self {
        self.with_splits(self.train.shallow_clone(), self.test.shallow_clone())
    }

    fn with_splits(&self, train: Split, test: Split) -> Self {
        Self {
            name: self.name,
            train,
            test,
            num_classes: self.num_classes,
            class_names: self.class_names.clone(),
            sample_shape: self.sample_shape.clone(),
        }
    }

    /// Replaces each split by its class-balanced subset of the given size,
    /// [`Split::balanced_subset`]`(n, seed)`; `None`, `Some(0)` or a size of at least the
    /// split's keeps the split whole. A limit that cannot be met is a [`DataError::Limit`]
    /// naming it.
    ///
    /// This is the toolkit's one data-limit policy, the one every committed result was trained
    /// with (seed 0). Both splits take the same seed: they are disjoint sample sets, so the
    /// same seed draws unrelated subsets of them.
    ///
    /// ```
    /// use etf_data::SyntheticConfig;
    ///
    /// let cfg = SyntheticConfig { num_classes: 3, train_per_class: 10, ..Default::default() };
    /// let whole = cfg.generate()?;
    /// let expected = whole.train.balanced_subset(9, 0)?;
    /// let limited = whole.limit(Some(9), None, 0)?;
    /// assert!(limited.train.features.equal(&expected.features));
    /// assert_eq!(limited.test.len(), 3 * 32, "no test limit: the whole split");
    /// # Ok::<(), etf_data::DataError>(())
    /// ```
    pub fn limit(
        mut self,
        limit_train: Option<usize>,
        limit_test: Option<usize>,
        seed: u64,
    ) -> Result<Self> {
        for (split, limit, key) in [
            (&mut self.train, limit_train, "limit_train"),
            (&mut self.test, limit_test, "limit_test"),
        ] {
            if let Some(n) = limit.filter(|&n| n > 0 && n < split.len()) {
                *split = split
                    .balanced_subset(n, seed)
                    .map_err(|e| DataError::Limit {
                        key,
                        limit: n,
                        source: Box::new(e),
                    })?;
            }
        }
        Ok(self)
    }

    /// The NCC probe set: the class-balanced subset [`Split::balanced_subset`]`(n, seed)` of
    /// the training split, or the whole training split when `n` is at least its size. Seed 0
    /// is the runner's probe set, one fixed set for every seed and variant so their NCC curves
    /// are comparable.
    ///
    /// ```
    /// use etf_data::SyntheticConfig;
    ///
    /// let data = SyntheticConfig { num_classes: 4, train_per_class: 10, ..Default::default() }
    ///     .generate()?;
    /// assert_eq!(data.probe(8, 0)?.class_counts()?, [2, 2, 2, 2]);
    /// assert_eq!(data.probe(1000, 0)?.len(), data.train.len());
    /// # Ok::<(), etf_data::DataError>(())
    /// ```
    pub fn probe(&self, n: usize, seed: u64) -> Result<Split> {
        if n >= self.train.len() {
            Ok(self.train.shallow_clone())
        } else {
            self.train.balanced_subset(n, seed)
        }
    }
}

/// Loads a data set (on the CPU) from the layout under `root` that `scripts/fetch-data` makes:
/// `root/mnist/`, `root/fashion-mnist/` (IDX, raw or `.gz`), `root/digits/digits.csv.gz`,
/// `root/cifar10/` (binary batches, possibly in `cifar-10-batches-bin/`). Synthetic data needs
/// no file and ignores `root`. `spec` may be a [`DatasetSpec`], `&DatasetSpec`, a
/// [`DatasetName`] or a [`SyntheticConfig`].
pub fn load(spec: impl Into<DatasetSpec>, root: impl AsRef<Path>) -> Result<Dataset> {
    let spec = spec.into();
    let dir = root.as_ref().join(spec.name.as_str());
    let ds = match spec.name {
        DatasetName::Mnist | DatasetName::FashionMnist => {
            crate::idx::load_idx_dataset(&dir, spec.name)?
        }
        DatasetName::Digits => {
            crate::digits::load_digits(&dir.join("digits.csv.gz"), spec.test_fraction, spec.seed)?
        }
        DatasetName::Cifar10 => crate::cifar::load_cifar10(&dir)?,
        DatasetName::Synthetic => spec.synthetic.generate()?,
    };
    ds.limit(spec.limit_train, spec.limit_test, spec.seed)
}
