//! The experiment file (`experiments/*.toml`): parsing, `--set` overrides and validation.
//!
//! Every key is checked: an unknown key or an invalid value is an error that names the key and
//! what is allowed.

use adaptive_etf::{MlpConfig, MlpVariant};
use anyhow::{bail, Context, Result};
use collapse_metrics::GlobalMean;
use etf_train::{AdaptiveConfig, Schedule};
use etf_transformer::{AugmentConfig, EtfBlocks, FfnMatrices, VitConfig};
use serde::{Deserialize, Serialize};
use simplex_etf::optim::OptimizerConfig;
use simplex_etf::{LockOrientation, LockScale};
use std::path::{Path, PathBuf};

/// A whole experiment: data, model, training, and the variants compared.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Short name, used in tables and directory names.
    pub name: String,
    /// One line on what the experiment shows.
    #[serde(default)]
    pub description: String,
    /// Seeds that `etf run` trains (each variant once per seed); `--seed` overrides.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// The data set.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// Training and measuring.
    pub train: TrainConfig,
    /// The variants compared, each trained on the same data, seeds and schedule.
    #[serde(rename = "variant")]
    pub variants: Vec<VariantConfig>,
    /// Optional outputs of each run.
    #[serde(default)]
    pub output: OutputConfig,
}

/// Optional outputs of each run (`[output]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Write a TensorBoard event file in each run directory, after every epoch.
    #[serde(default = "default_true")]
    pub tensorboard: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self { tensorboard: true }
    }
}

fn default_true() -> bool {
    true
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// Which data set, where, and how much of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `mnist`, `fashion-mnist`, `digits`, `cifar10` or `synthetic`.
    pub dataset: etf_data::DatasetName,
    /// Directory holding the data sets (as `scripts/fetch-data` lays them out), relative to the
    /// working directory. The environment variable `ETF_DATA_DIR` overrides it.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Train on a seeded, class-balanced subset of this size (0 = all).
    #[serde(default)]
    pub train_limit: usize,
    /// Test on a seeded, class-balanced subset of this size (0 = all).
    #[serde(default)]
    pub test_limit: usize,
    /// Size of the class-balanced training probe set of the NCC / collapse measurements.
    #[serde(default = "default_probe")]
    pub probe_size: usize,
    /// The generator's settings when `dataset = "synthetic"`.
    #[serde(default)]
    pub synthetic: Option<etf_data::SyntheticConfig>,
}

fn default_root() -> PathBuf {
    PathBuf::from("data")
}
fn default_probe() -> usize {
    10_000
}

/// The network.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    /// The MLP of algorithms.md §4.
    Mlp(MlpConfig),
    /// The Vision Transformer of algorithms.md §5 (its `ffn_etf` table is set by the variants).
    Vit(VitConfig),
}

/// Training and measuring.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Batch size of the measuring passes.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Label smoothing (0 = off).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Threshold τ of the reported effective depth.
    #[serde(default = "default_tau")]
    pub tau: f64,
    /// Global-mean convention of the collapse reports: `weighted` or `unweighted`.
    #[serde(default)]
    pub global_mean: GlobalMean,
    /// `auto` (CUDA when available), `cpu` or `cuda`; `--device` overrides.
    #[serde(default)]
    pub device: DeviceChoice,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// Data augmentation of training batches (ViT only): `pad` for random crops, `flip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentConfig>,
}

impl TrainConfig {
    /// Checks every value that serde's types do not; messages name the key.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        self.schedule.validate().map_err(anyhow::Error::msg)?;
        if self.epochs == 0 {
            bail!("train.epochs must be at least 1");
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            bail!("train.batch_size and train.eval_batch_size must be at least 1");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            bail!(
                "train.label_smoothing must be in [0, 1), got {}",
                self.label_smoothing
            );
        }
        if !(0.0..=1.0).contains(&self.tau) {
            bail!("train.tau must be in [0, 1], got {}", self.tau);
        }
        Ok(())
    }
}

fn default_eval_batch() -> usize {
    1000
}
fn default_tau() -> f64 {
    0.9
}

/// Where to train.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// CUDA when available, else CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA device; an error when there is none.
    Cuda,
}

impl DeviceChoice {
    /// The device, or an error when CUDA is asked for and absent.
    pub fn resolve(self) -> Result<tch::Device> {
        match self {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Auto => Ok(tch::Device::cuda_if_available()),
            DeviceChoice::Cuda => {
                if tch::Cuda::is_available() {
                    Ok(tch::Device::Cuda(0))
                } else {
                    bail!("--device cuda: no CUDA device is available to libtorch on this machine")
                }
            }
        }
    }
}

/// The kind of a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantKind {
    /// Everything trainable.
    Baseline,
    /// A fixed ETF classifier.
    EtfClassifier,
    /// The classifier and the last `k − 1` hidden layers fixed from the start.
    FixedLastK,
    /// Layers after the effective depth lock during training.
    Adaptive,
    /// ViT: feed-forward layers of all (or the last `k`) blocks are ETF maps from the start.
    EtfFfn,
}

/// One variant, as written in `[[variant]]`. Which keys apply depends on `kind`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Name in tables and directories (letters, digits, `-`, `_`).
    pub name: String,
    /// `baseline`, `etf-classifier`, `fixed-last-k`, `adaptive` or `etf-ffn` (docs/config.md
    /// says which keys apply to which kind).
    pub kind: VariantKind,
    /// The frozen map: ETF orientation `canonical`, `random` (fixed layers) or `nearest`
    /// (locks), or a control `gaussian` / `orthogonal` (spec §7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<LockOrientation>,
    /// `fixed-last-k`: number of fixed layers, the classifier included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// `adaptive`: NCC threshold τ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
    /// `adaptive`: consecutive probes ≥ τ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// `adaptive`: probe every this many epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_every: Option<usize>,
    /// ViT `etf-ffn` / `adaptive`: which FFN matrices, `w1`, `w2` or `both` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrices: Option<FfnMatrices>,
    /// `adaptive`: scale of the locked maps, `fixed` (default) or `matched` (spec §7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<LockScale>,
}

/// A variant resolved against the model kind.
#[derive(Clone, Debug)]
pub enum ResolvedVariant {
    /// An MLP variant.
    Mlp(MlpVariant),
    /// A ViT: its configuration with the variant's `ffn_etf`/`etf_head` applied, and for
    /// `adaptive` the lock settings and which FFN matrices lock.
    Vit {
        /// The ViT configuration of this variant.
        config: VitConfig,
        /// Adaptive locking, if the variant is `adaptive`.
        adaptive: Option<AdaptiveConfig>,
        /// The FFN matrices an adaptive lock constrains.
        lock_matrices: FfnMatrices,
    },
}

impl ResolvedVariant {
    /// Adaptive-ETF settings, when the variant locks during training.
    pub fn adaptive(&self) -> Option<AdaptiveConfig> {
        match self {
            ResolvedVariant::Mlp(MlpVariant::Adaptive(a)) => Some(a.clone()),
            ResolvedVariant::Vit { adaptive, .. } => adaptive.clone(),
            ResolvedVariant::Mlp(_) => None,
        }
    }
}

impl VariantConfig {
    fn ctx(&self) -> String {
        format!("variant {:?} (kind {:?})", self.name, self.kind)
    }

    /// Errors on a key that is set but not in `allowed`.
    fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        for (key, set) in [
            ("orientation", self.orientation.is_some()),
            ("k", self.k.is_some()),
            ("tau", self.tau.is_some()),
            ("patience", self.patience.is_some()),
            ("probe_every", self.probe_every.is_some()),
            ("matrices", self.matrices.is_some()),
            ("scale", self.scale.is_some()),
        ] {
            if set && !allowed.contains(&key) {
                bail!(
                    "{}: key `{key}` does not apply to this kind (it takes: {})",
                    self.ctx(),
                    if allowed.is_empty() {
                        "no other keys".into()
                    } else {
                        allowed.join(", ")
                    }
                );
            }
        }
        Ok(())
    }

    /// The adaptive settings of this entry, with defaults, validated.
    fn adaptive_config(&self) -> Result<AdaptiveConfig> {
        let d = AdaptiveConfig::default();
        let a = AdaptiveConfig {
            tau: self.tau.unwrap_or(d.tau),
            patience: self.patience.unwrap_or(d.patience),
            probe_every: self.probe_every.unwrap_or(d.probe_every),
            orientation: self.orientation.unwrap_or(d.orientation),
            scale: self.scale.unwrap_or(d.scale),
        };
        a.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.ctx()))?;
        Ok(a)
    }

    /// This entry resolved against the experiment's model.
    pub fn resolve(&self, model: &ModelConfig) -> Result<ResolvedVariant> {
        match model {
            ModelConfig::Mlp(_) => Ok(ResolvedVariant::Mlp(self.mlp_variant()?)),
            ModelConfig::Vit(base) => self.vit_variant(base),
        }
    }

    /// The ViT variant: `baseline`, `etf-classifier` (a fixed ETF head), `etf-ffn` (FFNs of all
    /// or the last `k` blocks fixed from the start) or `adaptive` (FFNs after the effective
    /// depth lock during training).
    pub fn vit_variant(&self, base: &VitConfig) -> Result<ResolvedVariant> {
        let mut config = base.baseline();
        let mut adaptive = None;
        let mut lock_matrices = FfnMatrices::Both;
        match self.kind {
            VariantKind::Baseline => self.check_keys(&[])?,
            VariantKind::EtfClassifier => {
                self.check_keys(&["orientation"])?;
                config.etf_head = true;
                config.ffn_etf.orientation = self.orientation.unwrap_or(LockOrientation::Random);
            }
            VariantKind::EtfFfn => {
                self.check_keys(&["orientation", "k", "matrices"])?;
                config.ffn_etf.blocks = match self.k {
                    None => EtfBlocks::All,
                    Some(k) => EtfBlocks::LastK(k),
                };
                config.ffn_etf.matrices = self.matrices.unwrap_or(FfnMatrices::Both);
                config.ffn_etf.orientation = self.orientation.unwrap_or(LockOrientation::Random);
            }
            VariantKind::Adaptive => {
                self.check_keys(&[
                    "orientation",
                    "tau",
                    "patience",
                    "probe_every",
                    "matrices",
                    "scale",
                ])?;
                let a = self.adaptive_config()?;
                lock_matrices = self.matrices.unwrap_or(FfnMatrices::Both);
                config.ffn_etf.blocks = EtfBlocks::Adaptive;
                config.ffn_etf.matrices = lock_matrices;
                adaptive = Some(a);
            }
            VariantKind::FixedLastK => {
                bail!(
                    "{}: `fixed-last-k` is an MLP variant; for the ViT use `etf-ffn` with `k`",
                    self.ctx()
                )
            }
        }
        Ok(ResolvedVariant::Vit {
            config,
            adaptive,
            lock_matrices,
        })
    }

    /// The MLP variant this entry describes; keys that do not apply to its kind are errors.
    pub fn mlp_variant(&self) -> Result<MlpVariant> {
        let allowed: &[&str] = match self.kind {
            VariantKind::Baseline => &[],
            VariantKind::EtfClassifier => &["orientation"],
            VariantKind::FixedLastK => &["orientation", "k"],
            VariantKind::Adaptive => &["orientation", "tau", "patience", "probe_every", "scale"],
            VariantKind::EtfFfn => &[],
        };
        self.check_keys(allowed)?;
        let ctx = || self.ctx();
        let fixed = self.orientation.unwrap_or(LockOrientation::Canonical);
        Ok(match self.kind {
            VariantKind::Baseline => MlpVariant::Baseline,
            VariantKind::EtfClassifier => MlpVariant::EtfClassifier { orientation: fixed },
            VariantKind::FixedLastK => MlpVariant::FixedLastK {
                k: self
                    .k
                    .with_context(|| format!("{}: key `k` is required", ctx()))?,
                orientation: fixed,
            },
            VariantKind::Adaptive => MlpVariant::Adaptive(self.adaptive_config()?),
            VariantKind::EtfFfn => bail!("{}: `etf-ffn` applies to the vit model only", ctx()),
        })
    }
}

/// Errors on a `[model]` key of a ViT that each variant sets itself (the head, and which FFN
/// blocks and matrices are ETFs in which orientation): a value other than the default would be
/// replaced without a word. A run's own `config.toml` holds the defaults there, so it passes.
fn refuse_variant_keys(vit: &VitConfig) -> Result<()> {
    let d = VitConfig::default();
    let f = &vit.ffn_etf;
    for (key, differs, by) in [
        (
            "model.etf_head",
            vit.etf_head != d.etf_head,
            "`etf-classifier`",
        ),
        (
            "model.ffn_etf.blocks",
            f.blocks != d.ffn_etf.blocks,
            "`etf-ffn` (all blocks, or the last `k`) and `adaptive`",
        ),
        (
            "model.ffn_etf.matrices",
            f.matrices != d.ffn_etf.matrices,
            "the variant's `matrices` key",
        ),
        (
            "model.ffn_etf.orientation",
            f.orientation != d.ffn_etf.orientation,
            "the variant's `orientation` key",
        ),
    ] {
        if differs {
            bail!(
                "{key} is set by each variant (by {by}), not in [model]: remove it there and \
                 set it in the [[variant]] that needs it"
            );
        }
    }
    Ok(())
}

impl ExperimentConfig {
    /// Reads `path`, applies `overrides` (`key.path=value`), and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the experiment file {}", path.display()))?;
        Self::parse(&text, overrides)
            .with_context(|| format!("in the experiment file {}", path.display()))
    }

    /// Parses TOML text, applies `overrides`, and validates.
    pub fn parse(text: &str, overrides: &[String]) -> Result<Self> {
        let mut value: toml::Value = toml::from_str(text)?;
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        let cfg: ExperimentConfig = value.try_into()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value that serde's types do not.
    pub fn validate(&self) -> Result<()> {
        if !valid_name(&self.name) {
            bail!(
                "`name` must be non-empty letters, digits, '-' or '_', got {:?}",
                self.name
            );
        }
        check_seeds(&self.seeds, "`seeds`")?;
        if self.variants.is_empty() {
            bail!("at least one [[variant]] is required");
        }
        match &self.model {
            ModelConfig::Mlp(mlp) => {
                mlp.validate().map_err(anyhow::Error::msg)?;
                if self.train.augment.is_some() {
                    bail!("train.augment applies to the vit model only");
                }
            }
            ModelConfig::Vit(vit) => {
                refuse_variant_keys(vit)?;
                if let Some(a) = &self.train.augment {
                    a.validate()
                        .map_err(|e| anyhow::anyhow!("train.augment: {e}"))?;
                }
            }
        }
        self.train.validate()?;
        if self.data.probe_size == 0 {
            bail!("data.probe_size must be at least 1");
        }
        if self.data.synthetic.is_some() && self.data.dataset != etf_data::DatasetName::Synthetic {
            bail!("[data.synthetic] applies only to dataset = \"synthetic\"");
        }
        self.validate_data()?;
        self.validate_variants()
    }

    /// The number of classes, known from the data set's name (or the synthetic generator's
    /// settings) before any file is read.
    pub fn num_classes(&self) -> usize {
        self.data
            .dataset
            .num_classes()
            .unwrap_or_else(|| self.data.synthetic.clone().unwrap_or_default().num_classes)
    }

    /// The synthetic generator's sizes, and limits and a probe set that hold every class.
    fn validate_data(&self) -> Result<()> {
        let d = &self.data;
        if d.dataset == etf_data::DatasetName::Synthetic {
            let s = d.synthetic.clone().unwrap_or_default();
            s.validate().context("[data.synthetic]")?;
            if s.test_per_class == 0 {
                bail!(
                    "data.synthetic.test_per_class must be at least 1: every epoch is measured \
                     on the test set"
                );
            }
        }
        let classes = self.num_classes();
        for (key, n) in [
            ("data.train_limit", d.train_limit),
            ("data.test_limit", d.test_limit),
            ("data.probe_size", d.probe_size),
        ] {
            if n > 0 && n < classes {
                bail!(
                    "{key} = {n} is below the number of classes ({classes}) of {}: a \
                     class-balanced subset needs at least one sample of every class",
                    d.dataset
                );
            }
        }
        Ok(())
    }

    /// Names unique and valid; each variant resolves against the model (and a ViT fits the data).
    fn validate_variants(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for v in &self.variants {
            if !valid_name(&v.name) {
                bail!(
                    "variant name must be letters, digits, '-' or '_', got {:?}",
                    v.name
                );
            }
            if !seen.insert(v.name.as_str()) {
                bail!("two variants are named {:?}", v.name);
            }
            match (v.resolve(&self.model)?, &self.model) {
                (ResolvedVariant::Vit { config, .. }, _) => self
                    .validate_vit(&config)
                    .with_context(|| format!("variant {:?}", v.name))?,
                (ResolvedVariant::Mlp(m), ModelConfig::Mlp(mlp)) => {
                    m.validate(mlp.depth).with_context(|| {
                        format!("variant {:?} (model.depth = {})", v.name, mlp.depth)
                    })?
                }
                (ResolvedVariant::Mlp(_), ModelConfig::Vit(_)) => {}
            }
        }
        Ok(())
    }

    /// Checks a variant's ViT against the data set's image shape and class count, known from
    /// the data set's name (or the synthetic generator's settings) before any file is read.
    fn validate_vit(&self, vit: &VitConfig) -> Result<()> {
        let d = &self.data;
        let (shape, classes) = match (d.dataset.sample_shape(), d.dataset.num_classes()) {
            (Some(shape), Some(classes)) => (shape, classes),
            _ => {
                let s = d.synthetic.clone().unwrap_or_default();
                (s.sample_shape(), s.num_classes)
            }
        };
        let shape: [i64; 3] = shape.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "model.kind = \"vit\" needs images (C×H×W samples); data set {} has samples of \
                 shape {shape:?}",
                d.dataset
            )
        })?;
        vit.validate(shape, classes as i64)?;
        Ok(())
    }

    /// Writes out the defaults that optional keys stand for, so that a printed configuration
    /// (`etf config`) shows them: the synthetic generator's settings, and an `adaptive`
    /// variant's `tau`, `patience`, `probe_every` and `orientation`. What it trains is
    /// unchanged.
    ///
    /// ```
    /// # let text = r#"
    /// # name = "d"
    /// # [data]
    /// # dataset = "synthetic"
    /// # [model]
    /// # kind = "mlp"
    /// # depth = 2
    /// # width = 8
    /// # [train]
    /// # epochs = 1
    /// # batch_size = 4
    /// # [train.optimizer]
    /// # kind = "sgd"
    /// # lr = 0.1
    /// # [[variant]]
    /// # name = "a"
    /// # kind = "adaptive"
    /// # "#;
    /// let mut cfg = etf_runner::config::ExperimentConfig::parse(text, &[]).unwrap();
    /// cfg.fill_defaults();
    /// assert_eq!(cfg.variants[0].patience, Some(5));
    /// assert!(cfg.data.synthetic.is_some());
    /// ```
    pub fn fill_defaults(&mut self) {
        if self.data.dataset == etf_data::DatasetName::Synthetic && self.data.synthetic.is_none() {
            self.data.synthetic = Some(etf_data::SyntheticConfig::default());
        }
        let d = AdaptiveConfig::default();
        for v in self
            .variants
            .iter_mut()
            .filter(|v| v.kind == VariantKind::Adaptive)
        {
            v.tau.get_or_insert(d.tau);
            v.patience.get_or_insert(d.patience);
            v.probe_every.get_or_insert(d.probe_every);
            v.orientation.get_or_insert(d.orientation);
        }
    }

    /// The variant named `name`.
    pub fn variant(&self, name: &str) -> Result<&VariantConfig> {
        self.variants
            .iter()
            .find(|v| v.name == name)
            .with_context(|| {
                let names: Vec<&str> = self.variants.iter().map(|v| v.name.as_str()).collect();
                format!(
                    "no variant named {name:?} (the file has: {})",
                    names.join(", ")
                )
            })
    }
}

/// The keys (as `--set` paths, variants by name: `variant.adaptive.tau`) whose values differ
/// between two configurations, defaults written out on both sides first, so that a key left
/// at its default and the same default written out count as equal.
///
/// ```
/// # let text = r#"
/// # name = "d"
/// # [data]
/// # dataset = "synthetic"
/// # [model]
/// # kind = "mlp"
/// # depth = 2
/// # width = 8
/// # [train]
/// # epochs = 1
/// # batch_size = 4
/// # [train.optimizer]
/// # kind = "sgd"
/// # lr = 0.1
/// # [[variant]]
/// # name = "a"
/// # kind = "adaptive"
/// # "#;
/// use etf_runner::config::{changed_keys, ExperimentConfig};
/// let a = ExperimentConfig::parse(text, &[]).unwrap();
/// let b = ExperimentConfig::parse(text, &["model.width=16".into(), "variant.a.patience=5".into()]).unwrap();
/// assert_eq!(changed_keys(&a, &b).unwrap(), ["model.width"]);
/// ```
pub fn changed_keys(a: &ExperimentConfig, b: &ExperimentConfig) -> Result<Vec<String>> {
    let (a, b) = (key_values(a)?, key_values(b)?);
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Every value of `c` by its `--set` path (variants by name: `variant.adaptive.tau`), as TOML
/// text, with the defaults that optional keys stand for written out.
pub fn key_values(c: &ExperimentConfig) -> Result<std::collections::BTreeMap<String, String>> {
    let mut c = c.clone();
    c.fill_defaults();
    let mut out = std::collections::BTreeMap::new();
    flatten("", &toml::Value::try_from(&c)?, &mut out);
    Ok(out)
}

/// Leaf values of `v` by dotted path; an array of named tables is keyed by the names.
fn flatten(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&join(k), v, out);
            }
        }
        toml::Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.get("name").and_then(|n| n.as_str()).is_some()) =>
        {
            for i in items {
                flatten(&join(i["name"].as_str().unwrap_or_default()), i, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// The most seeds one invocation trains (`seeds`, `--seeds`): far more than any experiment
/// needs, and a bound that a typo such as `0..100000000000` hits at once.
pub const MAX_SEEDS: usize = 10_000;

/// Seeds are a non-empty list of at most [`MAX_SEEDS`] distinct values; `what` names where
/// they came from (`` `seeds` `` or `--seeds "…"`).
pub fn check_seeds(seeds: &[u64], what: &str) -> Result<()> {
    if seeds.is_empty() {
        bail!("{what} must list at least one seed");
    }
    if seeds.len() > MAX_SEEDS {
        bail!(
            "{what}: {} seeds, more than the {MAX_SEEDS} one invocation trains",
            seeds.len()
        );
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = seeds.iter().find(|&&s| !seen.insert(s)) {
        bail!("{what}: seed {dup} is listed twice (each seed is one run directory)");
    }
    Ok(())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Applies one `a.b.c=value` override. The value is read as TOML (`3`, `0.1`, `true`, `[1, 2]`,
/// `"text"`), else taken as a string. A numeric segment indexes an array; a segment naming a
/// variant (`variant.adaptive.tau=0.8`) selects that `[[variant]]`.
pub fn apply_override(root: &mut toml::Value, assignment: &str) -> Result<()> {
    let (path, raw) = assignment
        .split_once('=')
        .with_context(|| format!("--set {assignment:?}: expected key.path=value"))?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let keys: Vec<&str> = path.trim().split('.').collect();
    let mut cur = root;
    for (i, key) in keys.iter().enumerate() {
        let last = i + 1 == keys.len();
        cur = match cur {
            toml::Value::Table(t) => {
                if last {
                    t.insert(key.to_string(), value);
                    return Ok(());
                }
                t.entry(key.to_string())
                    .or_insert_with(|| toml::Value::Table(Default::default()))
            }
            toml::Value::Array(items) => {
                let idx = match key.parse::<usize>() {
                    Ok(i) => Some(i),
                    Err(_) => items
                        .iter()
                        .position(|v| v.get("name").and_then(|n| n.as_str()) == Some(*key)),
                };
                let n = items.len();
                let item = idx.and_then(|i| items.get_mut(i)).with_context(|| {
                    format!("--set {path}: no entry {key:?} in an array of {n}")
                })?;
                if last {
                    *item = value;
                    return Ok(());
                }
                item
            }
            _ => bail!("--set {path}: {:?} is not a table", keys[..i].join(".")),
        };
    }
    bail!("--set {assignment:?}: empty key")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[data]
dataset = "synthetic"
[model]
kind = "mlp"
depth = 2
width = 8
[train]
epochs = 1
batch_size = 4
[train.optimizer]
kind = "sgd"
lr = 0.1
[[variant]]
name = "baseline"
kind = "baseline"
[[variant]]
name = "adaptive"
kind = "adaptive"
"#;

    #[test]
    fn minimal_config_parses_with_defaults() {
        let cfg = ExperimentConfig::parse(MINIMAL, &[]).unwrap();
        assert_eq!(cfg.seeds, vec![0]);
        assert_eq!(cfg.data.probe_size, 10_000);
        match cfg.variants[1].mlp_variant().unwrap() {
            MlpVariant::Adaptive(a) => assert_eq!(a, AdaptiveConfig::default()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("epochs = 1", "epochs = 1\nepoch = 3");
        let err = format!("{:#}", ExperimentConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("epoch"), "{err}");
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn invalid_enum_value_lists_allowed_values() {
        let text = MINIMAL.replace("kind = \"sgd\"", "kind = \"adam\"");
        let err = format!("{:#}", ExperimentConfig::parse(&text, &[]).unwrap_err());
        assert!(
            err.contains("adam") && err.contains("sgd") && err.contains("adamw"),
            "{err}"
        );
    }

    #[test]
    fn key_not_applying_to_kind_is_an_error() {
        let text = MINIMAL.replace("kind = \"baseline\"", "kind = \"baseline\"\ntau = 0.5");
        let err = format!("{:#}", ExperimentConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("`tau` does not apply"), "{err}");
    }

    #[test]
    fn controls_and_lock_scale_resolve_and_scale_is_adaptive_only() {
        let text = MINIMAL.replace(
            "kind = \"adaptive\"",
            "kind = \"adaptive\"\norientation = \"gaussian\"\nscale = \"matched\"",
        );
        let cfg = ExperimentConfig::parse(&text, &[]).unwrap();
        match cfg.variants[1].mlp_variant().unwrap() {
            MlpVariant::Adaptive(a) => {
                assert_eq!(a.orientation, LockOrientation::Gaussian);
                assert_eq!(a.scale, LockScale::Matched);
            }
            other => panic!("{other:?}"),
        }
        let text = MINIMAL.replace(
            "kind = \"baseline\"",
            "kind = \"fixed-last-k\"\nk = 2\norientation = \"orthogonal\"",
        );
        let cfg = ExperimentConfig::parse(&text, &[]).unwrap();
        assert!(matches!(
            cfg.variants[0].mlp_variant().unwrap(),
            MlpVariant::FixedLastK {
                k: 2,
                orientation: LockOrientation::Orthogonal
            }
        ));
        let text = MINIMAL.replace(
            "kind = \"baseline\"",
            "kind = \"fixed-last-k\"\nk = 2\nscale = \"matched\"",
        );
        let err = format!("{:#}", ExperimentConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("`scale` does not apply"), "{err}");
        let text = MINIMAL.replace(
            "kind = \"adaptive\"",
            "kind = \"adaptive\"\nscale = \"big\"",
        );
        let err = format!("{:#}", ExperimentConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("big") && err.contains("matched"), "{err}");
    }

    #[test]
    fn vit_shapes_are_checked_against_the_data_set() {
        let vit = |dataset: &str, patch: i64| {
            format!(
                "name = \"v\"\n[data]\ndataset = \"{dataset}\"\n[model]\nkind = \"vit\"\n\
                 patch = {patch}\ndim = 16\ndepth = 2\nheads = 2\n[train]\nepochs = 1\n\
                 batch_size = 4\n[train.optimizer]\nkind = \"adamw\"\nlr = 0.001\n\
                 [[variant]]\nname = \"b\"\nkind = \"baseline\"\n"
            )
        };
        ExperimentConfig::parse(&vit("mnist", 7), &[]).unwrap();
        // 28 is not a multiple of 5: caught when the file is read, not after loading the data.
        let err = format!(
            "{:#}",
            ExperimentConfig::parse(&vit("mnist", 5), &[]).unwrap_err()
        );
        assert!(
            err.contains("vit.patch = 5") && err.contains("28x28"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            ExperimentConfig::parse(&vit("synthetic", 4), &[]).unwrap_err()
        );
        assert!(err.contains("needs images"), "{err}");
    }

    #[test]
    fn vit_keys_that_each_variant_sets_are_refused_in_the_model_table() {
        let text = "name = \"v\"\n[data]\ndataset = \"mnist\"\n[model]\nkind = \"vit\"\n\
                    patch = 7\ndim = 16\ndepth = 2\nheads = 2\n[train]\nepochs = 1\n\
                    batch_size = 4\n[train.optimizer]\nkind = \"adamw\"\nlr = 0.001\n\
                    [[variant]]\nname = \"f\"\nkind = \"etf-ffn\"\n";
        let cfg = ExperimentConfig::parse(text, &[]).unwrap();
        // A run's config.toml writes the defaults of these keys out, and must read back.
        let written = toml::to_string(&cfg).unwrap();
        assert!(written.contains("etf_head = false"), "{written}");
        ExperimentConfig::parse(&written, &[]).unwrap();
        for (set, key) in [
            ("model.etf_head=true", "model.etf_head"),
            ("model.ffn_etf.blocks=\"all\"", "model.ffn_etf.blocks"),
            ("model.ffn_etf.matrices=\"w1\"", "model.ffn_etf.matrices"),
            (
                "model.ffn_etf.orientation=\"canonical\"",
                "model.ffn_etf.orientation",
            ),
        ] {
            let err = ExperimentConfig::parse(text, &[set.to_string()]).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(key) && msg.contains("[[variant]]"), "{msg}");
        }
        // What the variants do not set stays a [model] key.
        let cfg = ExperimentConfig::parse(text, &["model.ffn_etf.alpha=2.0".into()]).unwrap();
        let ModelConfig::Vit(vit) = &cfg.model else {
            panic!("a vit")
        };
        assert_eq!(vit.ffn_etf.alpha, 2.0);
    }

    #[test]
    fn overrides_reach_tables_and_named_variants() {
        let sets = [
            "train.epochs=7".to_string(),
            "variant.adaptive.tau=0.8".to_string(),
            "train.optimizer.lr=0.5".to_string(),
            "seeds=[3, 4]".to_string(),
        ];
        let cfg = ExperimentConfig::parse(MINIMAL, &sets).unwrap();
        assert_eq!(cfg.train.epochs, 7);
        assert_eq!(cfg.variants[1].tau, Some(0.8));
        assert_eq!(cfg.train.optimizer.lr(), 0.5);
        assert_eq!(cfg.seeds, vec![3, 4]);
        let bad = ExperimentConfig::parse(MINIMAL, &["variant.nope.tau=0.8".into()]);
        assert!(format!("{:#}", bad.unwrap_err()).contains("nope"));
        let bad = ExperimentConfig::parse(MINIMAL, &["train.epochs=0".into()]);
        assert!(format!("{:#}", bad.unwrap_err()).contains("train.epochs"));
    }
}
