//! Running one job (one variant, one seed) into its run directory, with checkpoints and resume.

use crate::config::{ExperimentConfig, ResolvedVariant, VariantConfig};
use crate::io::{read_checkpoint, write_atomic, write_checkpoint};
use crate::model::AnyModel;
use crate::output::{report_markdown, write_metrics_csv, RunSummary, SummaryHead};
use crate::plots::write_plots;
use adaptive_etf::{EpochRecord, Mlp, Progress, RunData, TrainSpec, Trainer, TrainerState};
use anyhow::{bail, Context, Result};
use etf_data::{Dataset, Split};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn, Device};

/// How jobs run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Training device.
    pub device: Device,
    /// Continue from the last checkpoint; finished runs are kept as they are.
    pub resume: bool,
    /// Overwrite a directory that holds a run.
    pub force: bool,
    /// Show progress bars (only when stderr is a terminal).
    pub progress: bool,
    /// Stop after this many epochs of this invocation (a test hook to simulate an interruption).
    pub stop_after: Option<usize>,
}

/// The data of an experiment, loaded once and moved to the device once.
pub struct LoadedData {
    /// The data set.
    pub dataset: Dataset,
    /// The class-balanced NCC probe subset of the training set.
    pub probe: Split,
}

/// Loads the experiment's data set, applies the limits, draws the probe set, moves all to `device`.
pub fn load_data(cfg: &ExperimentConfig, device: Device) -> Result<LoadedData> {
    let root = std::env::var_os("ETF_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cfg.data.root.clone());
    let ds = match (&cfg.data.dataset, &cfg.data.synthetic) {
        (etf_data::DatasetName::Synthetic, s) => s.clone().unwrap_or_default().generate()?,
        (name, _) => etf_data::load(*name, &root)
            .with_context(|| format!("loading data set {name} from {}", root.display()))?,
    };
    let limit = |split: &Split, n: usize, what: &str| -> Result<Split> {
        if n == 0 || n >= split.len() {
            Ok(split.shallow_clone())
        } else {
            split
                .balanced_subset(n, 0)
                .with_context(|| format!("data.{what}_limit = {n}"))
        }
    };
    let train = limit(&ds.train, cfg.data.train_limit, "train")?.to_device(device)?;
    let test = limit(&ds.test, cfg.data.test_limit, "test")?.to_device(device)?;
    let probe_n = cfg.data.probe_size.min(train.len());
    // One fixed probe set for every seed and variant, so their NCC curves are comparable.
    let probe = if probe_n == train.len() {
        train.shallow_clone()
    } else {
        train
            .balanced_subset(probe_n, 0)
            .with_context(|| format!("data.probe_size = {probe_n}"))?
    };
    let dataset = Dataset { train, test, ..ds };
    Ok(LoadedData { dataset, probe })
}

/// The directory of one job under an output directory.
pub fn job_dir(out: &Path, variant: &str, seed: u64) -> PathBuf {
    out.join(variant).join(format!("seed-{seed}"))
}

/// File names in a run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The resolved configuration of a run.
pub const CONFIG: &str = "config.toml";
/// The summary of a finished run.
pub const SUMMARY: &str = "summary.json";

/// The resolved configuration a run directory records: the experiment narrowed to one variant
/// and one seed, so `etf diagnose` and `--resume` rebuild exactly this model.
pub fn resolved_config(
    cfg: &ExperimentConfig,
    variant: &VariantConfig,
    seed: u64,
) -> ExperimentConfig {
    ExperimentConfig {
        seeds: vec![seed],
        variants: vec![variant.clone()],
        ..cfg.clone()
    }
}

/// Builds the model of `variant` in `vs` for samples of `shape` and `classes` classes.
pub fn build_model(
    cfg: &ExperimentConfig,
    variant: &VariantConfig,
    vs: &nn::VarStore,
    shape: &[i64],
    classes: i64,
) -> Result<AnyModel> {
    Ok(match (variant.resolve(&cfg.model)?, &cfg.model) {
        (ResolvedVariant::Mlp(v), crate::config::ModelConfig::Mlp(mlp)) => AnyModel::Mlp(Mlp::new(
            &vs.root(),
            mlp,
            shape.iter().product(),
            classes,
            &v,
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
            let vit = etf_transformer::Vit::new(&vs.root(), &config, shape, classes)?;
            let augment = cfg.train.augment.unwrap_or_default();
            AnyModel::Vit(Box::new(etf_transformer::VitModel::new(
                vit,
                augment,
                lock_matrices,
            )))
        }
        (ResolvedVariant::Mlp(_), _) => bail!("an MLP variant for a non-MLP model"),
    })
}

fn train_spec(cfg: &ExperimentConfig, variant: &VariantConfig, seed: u64) -> Result<TrainSpec> {
    let adaptive = variant.resolve(&cfg.model)?.adaptive();
    let t = &cfg.train;
    Ok(TrainSpec {
        epochs: t.epochs,
        batch_size: t.batch_size,
        eval_batch_size: t.eval_batch_size,
        label_smoothing: t.label_smoothing,
        optimizer: t.optimizer.clone(),
        schedule: t.schedule.clone(),
        global_mean: t.global_mean,
        tau: t.tau,
        adaptive,
        seed,
    })
}

/// A per-epoch progress bar on a terminal.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(show: bool, label: String, steps: usize) -> Self {
        if !show {
            return Bar(None);
        }
        let pb = indicatif::ProgressBar::new(steps as u64);
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        pb.set_style(style);
        pb.set_prefix(label);
        Bar(Some(pb))
    }
}

impl Progress for Bar {
    fn step(&mut self, step: usize, _steps: usize, running: Option<(f64, f64)>) {
        if let Some(pb) = &self.0 {
            pb.set_position(step as u64);
            if let Some((loss, acc)) = running {
                pb.set_message(format!("loss {loss:.4} acc {acc:.4}"));
            }
        }
    }
    fn wants_loss(&self) -> bool {
        self.0.is_some()
    }
}

/// Appends a line to the run's `run.log`.
fn log_line(dir: &Path, line: &str) -> Result<()> {
    let path = dir.join("run.log");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{line}")?;
    Ok(())
}

fn epoch_line(r: &EpochRecord) -> String {
    format!(
        "epoch {:>3}  loss {:.4}  train {:.4}  test {:.4}  learnable {}  eff.depth {}  ncc [{}]{}  {:.1}s",
        r.epoch,
        r.train_loss,
        r.train_accuracy,
        r.test_accuracy,
        r.learnable_params,
        r.effective_depth.map_or("-".into(), |d| d.to_string()),
        r.layers.iter().map(|l| format!("{:.3}", l.train.ncc_accuracy)).collect::<Vec<_>>().join(" "),
        if r.newly_locked.is_empty() { String::new() } else { format!("  locked {}", r.newly_locked.join(",")) },
        r.epoch_seconds()
    )
}

/// Prepares `dir` for a job: refuses to overwrite a run without `--force`; returns the finished
/// summary when `--resume` finds the job already done.
fn prepare_dir(dir: &Path, opts: &RunOptions) -> Result<Option<RunSummary>> {
    let summary = dir.join(SUMMARY);
    let checkpoint = dir.join(CHECKPOINT);
    if opts.force {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
    } else if summary.exists() {
        if opts.resume {
            let text = std::fs::read_to_string(&summary)?;
            return Ok(Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", summary.display()))?,
            ));
        }
        bail!(
            "{} already holds a finished run; pass --force to overwrite it",
            dir.display()
        );
    } else if checkpoint.exists() && !opts.resume {
        bail!(
            "{} holds an unfinished run; pass --resume to continue it or --force to start over",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(None)
}

/// Runs one job to the end (or to `opts.stop_after` epochs), writing everything into `dir`.
/// Returns the summary of a finished run, `None` when stopped early.
pub fn run_job(
    cfg: &ExperimentConfig,
    variant: &VariantConfig,
    seed: u64,
    data: &LoadedData,
    dir: &Path,
    opts: &RunOptions,
) -> Result<Option<RunSummary>> {
    if let Some(done) = prepare_dir(dir, opts)? {
        tracing::info!(dir = %dir.display(), "already finished; kept as it is");
        return Ok(Some(done));
    }
    let resolved = resolved_config(cfg, variant, seed);
    write_atomic(
        &dir.join(CONFIG),
        toml::to_string_pretty(&resolved)?.as_bytes(),
    )?;
    let ds = &data.dataset;
    let mut trainer = new_trainer(cfg, variant, seed, opts.device, ds)?;
    let ckpt = dir.join(CHECKPOINT);
    if opts.resume && ckpt.exists() {
        restore_checkpoint(&mut trainer, &ckpt)?;
        log_line(
            dir,
            &format!("resumed after epoch {}", trainer.epochs_done()),
        )?;
        tracing::info!(epoch = trainer.epochs_done(), "resumed");
    }
    let run = RunData {
        train: &ds.train,
        probe: &data.probe,
        test: &ds.test,
        num_classes: ds.num_classes,
    };
    let label = format!("{}/{} s{seed}", cfg.name, variant.name);
    let steps = ds.train.len().div_ceil(cfg.train.batch_size);
    let show = opts.progress && std::io::stderr().is_terminal();
    let mut ran = 0;
    while !trainer.finished() {
        if opts.stop_after.is_some_and(|n| ran >= n) {
            return Ok(None);
        }
        let epoch = trainer.epochs_done() + 1;
        let mut bar = Bar::new(
            show,
            format!("{label} epoch {epoch}/{}", cfg.train.epochs),
            steps,
        );
        let record = match trainer.run_epoch(&run, &mut bar) {
            Ok(r) => r.clone(),
            Err(e) => {
                log_line(dir, &format!("stopped in epoch {epoch}: {e}"))?;
                return Err(anyhow::Error::new(e).context(format!(
                    "{label}: training stopped in epoch {epoch}; the last good checkpoint is kept in {}",
                    ckpt.display()
                )));
            }
        };
        if let Some(pb) = bar.0 {
            pb.finish_and_clear();
        }
        let line = epoch_line(&record);
        tracing::info!("{label} {line}");
        log_line(dir, &line)?;
        write_checkpoint(
            &ckpt,
            &trainer.checkpoint_tensors(),
            &serde_json::to_value(trainer.state())?,
        )?;
        write_metrics_csv(dir, trainer.history())?;
        ran += 1;
    }
    let head = SummaryHead::new(
        cfg,
        variant,
        seed,
        format!("{:?}", opts.device).to_lowercase(),
    );
    let summary = RunSummary::from_history(head, trainer.history())?;
    write_plots(
        dir,
        &format!("{} / {}", cfg.name, variant.name),
        trainer.history(),
    )?;
    write_atomic(
        &dir.join("report.md"),
        report_markdown(&summary, trainer.history()).as_bytes(),
    )?;
    // The summary goes last: its presence marks the run finished.
    write_atomic(
        &dir.join(SUMMARY),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(Some(summary))
}

/// Every (variant, seed) job of an experiment, in a stable order.
pub fn jobs(cfg: &ExperimentConfig, seeds: &[u64]) -> Vec<(VariantConfig, u64)> {
    let mut out = Vec::new();
    for &seed in seeds {
        for v in &cfg.variants {
            out.push((v.clone(), seed));
        }
    }
    out
}

/// Runs the given jobs into `out`, returns their summaries.
pub fn run_jobs(
    cfg: &ExperimentConfig,
    jobs: &[(VariantConfig, u64)],
    out: &Path,
    opts: &RunOptions,
) -> Result<Vec<RunSummary>> {
    let t0 = Instant::now();
    let data = load_data(cfg, opts.device)?;
    tracing::info!(
        dataset = %cfg.data.dataset, train = data.dataset.train.len(), test = data.dataset.test.len(),
        probe = data.probe.len(), seconds = t0.elapsed().as_secs_f64(), "data loaded"
    );
    let mut summaries = Vec::new();
    for (variant, seed) in jobs {
        let dir = job_dir(out, &variant.name, *seed);
        if let Some(s) = run_job(cfg, variant, *seed, &data, &dir, opts)? {
            summaries.push(s);
        }
    }
    Ok(summaries)
}

/// The model a job starts from: libtorch seeded with the job's seed, then the variant's model
/// built in a fresh `VarStore` on `device` (what `etf inspect` shows).
pub fn initial_model(
    cfg: &ExperimentConfig,
    variant: &VariantConfig,
    seed: u64,
    device: Device,
    ds: &Dataset,
) -> Result<(nn::VarStore, AnyModel)> {
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(device);
    let shape = ds.train.sample_shape();
    let model = build_model(cfg, variant, &vs, &shape, ds.num_classes as i64)?;
    Ok((vs, model))
}

/// A trainer for one job, from its [`initial_model`].
fn new_trainer(
    cfg: &ExperimentConfig,
    variant: &VariantConfig,
    seed: u64,
    device: Device,
    ds: &Dataset,
) -> Result<Trainer<AnyModel>> {
    let (vs, model) = initial_model(cfg, variant, seed, device, ds)?;
    Ok(Trainer::new(model, vs, train_spec(cfg, variant, seed)?)?)
}

/// Reads a checkpoint written by [`run_job`]: its tensors and the trainer state (history,
/// lock controller, epochs done).
pub fn read_trainer_state(ckpt: &Path) -> Result<(Vec<(String, tch::Tensor)>, TrainerState)> {
    let (tensors, state) = read_checkpoint(ckpt)?;
    let state: TrainerState = serde_json::from_value(state)
        .with_context(|| format!("{}: checkpoint state", ckpt.display()))?;
    Ok((tensors, state))
}

/// Restores a checkpoint written by [`run_job`] into a freshly built trainer.
fn restore_checkpoint(trainer: &mut Trainer<AnyModel>, ckpt: &Path) -> Result<()> {
    let (tensors, state) = read_trainer_state(ckpt)?;
    trainer
        .restore(state, tensors)
        .with_context(|| format!("restoring {}", ckpt.display()))
}

/// The one variant and seed of a run directory's resolved config `cfg`, read from `config`.
pub fn run_job_of<'a>(
    cfg: &'a ExperimentConfig,
    config: &Path,
) -> Result<(&'a VariantConfig, u64)> {
    match (cfg.variants.first(), cfg.seeds.first()) {
        (Some(variant), Some(&seed)) => Ok((variant, seed)),
        _ => bail!(
            "{}: a run's config names one variant and one seed",
            config.display()
        ),
    }
}

/// Rebuilds the trainer of a run directory from its resolved config `cfg` (read from the run's
/// `config.toml`) and its checkpoint (for `etf diagnose`): the model with its locks and weights
/// as they were after the last epoch.
pub fn trainer_from_run(
    dir: &Path,
    cfg: &ExperimentConfig,
    device: Device,
    ds: &Dataset,
) -> Result<Trainer<AnyModel>> {
    let (variant, seed) = run_job_of(cfg, &dir.join(CONFIG))?;
    let mut trainer = new_trainer(cfg, variant, seed, device, ds)?;
    restore_checkpoint(&mut trainer, &dir.join(CHECKPOINT))?;
    Ok(trainer)
}
