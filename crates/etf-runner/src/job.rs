//! One job of an experiment: a (variant, seed) pair, resolved once into everything downstream
//! needs — the run's own narrowed configuration, the resolved variant, the training spec and
//! the model it starts from.

use crate::config::{ExperimentConfig, ModelConfig, ResolvedVariant, VariantConfig};
use crate::model::AnyModel;
use adaptive_etf::Mlp;
use anyhow::{bail, Result};
use etf_data::Dataset;
use etf_train::{AdaptiveConfig, TrainSpec, Trainer};
use std::path::{Path, PathBuf};
use tch::{nn, Device};

/// One variant trained with one seed.
#[derive(Clone, Debug)]
pub struct Job {
    /// The experiment narrowed to this variant and seed: what the run directory's
    /// `config.toml` records, so `etf diagnose` and `--resume` rebuild exactly this job.
    pub config: ExperimentConfig,
    /// The seed.
    pub seed: u64,
    /// The variant resolved against the model.
    pub resolved: ResolvedVariant,
}

impl Job {
    /// The job of `variant` with `seed` in experiment `cfg`.
    pub fn new(cfg: &ExperimentConfig, variant: &VariantConfig, seed: u64) -> Result<Self> {
        let config = ExperimentConfig {
            seeds: vec![seed],
            variants: vec![variant.clone()],
            ..cfg.clone()
        };
        let resolved = variant.resolve(&config.model)?;
        Ok(Self {
            config,
            seed,
            resolved,
        })
    }

    /// The job a run directory's configuration records (read from `path`): one variant, one
    /// seed.
    pub fn of_run(config: ExperimentConfig, path: &Path) -> Result<Self> {
        match (config.variants.as_slice(), config.seeds.as_slice()) {
            ([variant], [seed]) => Self::new(&config, &variant.clone(), *seed),
            _ => bail!(
                "{}: a run's config names one variant and one seed",
                path.display()
            ),
        }
    }

    /// Every (variant, seed) job of an experiment for `seeds`, seed by seed, in the file's
    /// variant order.
    pub fn all(cfg: &ExperimentConfig, seeds: &[u64]) -> Result<Vec<Self>> {
        seeds
            .iter()
            .flat_map(|&seed| cfg.variants.iter().map(move |v| Self::new(cfg, v, seed)))
            .collect()
    }

    /// The variant.
    pub fn variant(&self) -> &VariantConfig {
        &self.config.variants[0]
    }

    /// The job's directory under an output directory: `<out>/<variant>/seed-<seed>`.
    pub fn dir(&self, out: &Path) -> PathBuf {
        out.join(&self.variant().name)
            .join(format!("seed-{}", self.seed))
    }

    /// `experiment/variant s<seed>`, for log lines.
    pub fn label(&self) -> String {
        format!(
            "{}/{} s{}",
            self.config.name,
            self.variant().name,
            self.seed
        )
    }

    /// The adaptive settings, when the variant locks during training.
    pub fn adaptive(&self) -> Option<AdaptiveConfig> {
        self.resolved.adaptive()
    }

    /// How the trainer trains and measures this job.
    pub fn train_spec(&self) -> TrainSpec {
        let t = &self.config.train;
        TrainSpec {
            epochs: t.epochs,
            batch_size: t.batch_size,
            eval_batch_size: t.eval_batch_size,
            label_smoothing: t.label_smoothing,
            optimizer: t.optimizer,
            schedule: t.schedule.clone(),
            global_mean: t.global_mean,
            tau: t.tau,
            adaptive: self.adaptive(),
            seed: self.seed,
        }
    }

    /// Refuses the job when its model and batches cannot fit in `device`'s memory
    /// ([`crate::memory::check`]); nothing is allocated.
    pub fn check_memory(&self, device: Device, ds: &Dataset) -> Result<()> {
        let classes = ds.num_classes as i64;
        crate::memory::check(&self.config, &ds.train.sample_shape(), classes, device)
    }

    /// The model the job starts from: libtorch seeded with the job's seed, then the variant's
    /// model built in a fresh `VarStore` on `device` (what `etf inspect` shows). A model that
    /// cannot fit is refused before anything is allocated ([`Job::check_memory`]).
    pub fn initial_model(&self, device: Device, ds: &Dataset) -> Result<(nn::VarStore, AnyModel)> {
        self.check_memory(device, ds)?;
        tch::manual_seed(self.seed as i64);
        let vs = nn::VarStore::new(device);
        let model = self.build_model(&vs, &ds.train.sample_shape(), ds.num_classes as i64)?;
        Ok((vs, model))
    }

    /// A trainer for the job, from its [`Job::initial_model`].
    pub fn trainer(&self, device: Device, ds: &Dataset) -> Result<Trainer<AnyModel>> {
        let (vs, model) = self.initial_model(device, ds)?;
        Ok(Trainer::new(model, vs, self.train_spec())?)
    }

    fn build_model(&self, vs: &nn::VarStore, shape: &[i64], classes: i64) -> Result<AnyModel> {
        Ok(match (&self.resolved, &self.config.model) {
            (ResolvedVariant::Mlp(v), ModelConfig::Mlp(mlp)) => AnyModel::Mlp(Mlp::new(
                &vs.root(),
                mlp,
                shape.iter().product(),
                classes,
                v,
            )?),
            (
                ResolvedVariant::Vit {
                    config,
                    lock_matrices,
                    ..
                },
                _,
            ) => {
                let shape: [i64; 3] = shape.try_into().map_err(|_| {
                    anyhow::anyhow!("the vit model needs images (C×H×W samples); this data set's samples have shape {shape:?}")
                })?;
                let vit = etf_transformer::Vit::new(&vs.root(), config, shape, classes)?;
                let augment = self.config.train.augment.unwrap_or_default();
                AnyModel::Vit(Box::new(etf_transformer::VitModel::new(
                    vit,
                    augment,
                    *lock_matrices,
                )))
            }
            (ResolvedVariant::Mlp(_), _) => bail!("an MLP variant for a non-MLP model"),
        })
    }
}
