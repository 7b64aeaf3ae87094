//! Running one job (one variant, one seed) into its run directory, with checkpoints and resume.

use crate::config::ExperimentConfig;
use crate::io::write_atomic;
use crate::job::Job;
use crate::model::AnyModel;
use crate::output::{report_markdown, write_metrics_csv, RunSummary, SummaryHead};
use crate::plots::write_plots;
use crate::tensorboard::TensorBoard;
use anyhow::{bail, Context, Result};
use etf_data::{Dataset, Split};
use etf_train::{Checkpoint, EpochRecord, Progress, RunData, Trainer};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

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

impl LoadedData {
    /// The splits as the trainer reads them.
    pub fn run_data(&self) -> RunData<'_> {
        RunData {
            train: &self.dataset.train,
            probe: &self.probe,
            test: &self.dataset.test,
        }
    }
}

/// The data root: `flag` (a command's `--data-root`), else `ETF_DATA_DIR` when set and not
/// empty, else the config's `data.root`.
pub fn data_root(cfg: &ExperimentConfig, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(etf_data::env_data_root)
        .unwrap_or_else(|| cfg.data.root.clone())
}

/// Loads the experiment's data set with its limits and probe set (`etf-data`'s one subset
/// policy, seed 0: the same limit gives the same subset here and in the library), and moves
/// everything to `device` once. The root is [`data_root`] without a flag.
pub fn load_data(cfg: &ExperimentConfig, device: Device) -> Result<LoadedData> {
    load_data_from(cfg, &data_root(cfg, None), device)
}

/// [`load_data`] from the data root `root`. An empty training or test split is an error.
pub fn load_data_from(cfg: &ExperimentConfig, root: &Path, device: Device) -> Result<LoadedData> {
    let d = &cfg.data;
    let spec = etf_data::DatasetSpec {
        limit_train: Some(d.train_limit),
        limit_test: Some(d.test_limit),
        synthetic: d.synthetic.clone().unwrap_or_default(),
        ..etf_data::DatasetSpec::new(d.dataset)
    };
    let ds = etf_data::load(&spec, root).with_context(|| {
        format!(
            "loading data set {} from {} (data.train_limit = {}, data.test_limit = {})",
            d.dataset,
            root.display(),
            d.train_limit,
            d.test_limit
        )
    })?;
    for (split, what) in [(&ds.train, "training"), (&ds.test, "test")] {
        if split.is_empty() {
            bail!(
                "data set {} from {} has an empty {what} set: nothing to {}",
                d.dataset,
                root.display(),
                if what == "test" {
                    "measure"
                } else {
                    "train on"
                }
            );
        }
    }
    let dataset = ds.to_device(device)?;
    // One fixed probe set for every seed and variant, so their NCC curves are comparable.
    let probe = dataset
        .probe(d.probe_size, 0)
        .with_context(|| format!("data.probe_size = {}", d.probe_size))?;
    Ok(LoadedData { dataset, probe })
}

/// File names in a run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The resolved configuration of a run.
pub const CONFIG: &str = "config.toml";
/// The summary of a finished run.
pub const SUMMARY: &str = "summary.json";

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
    job: &Job,
    data: &LoadedData,
    dir: &Path,
    opts: &RunOptions,
) -> Result<Option<RunSummary>> {
    if let Some(done) = prepare_dir(dir, opts)? {
        tracing::info!(dir = %dir.display(), "already finished; kept as it is");
        return Ok(Some(done));
    }
    write_atomic(
        &dir.join(CONFIG),
        toml::to_string_pretty(&job.config)?.as_bytes(),
    )?;
    let mut trainer = job.trainer(opts.device, &data.dataset)?;
    let ckpt = dir.join(CHECKPOINT);
    if opts.resume && ckpt.exists() {
        restore_checkpoint(&mut trainer, &ckpt)?;
        log_line(
            dir,
            &format!("resumed after epoch {}", trainer.epochs_done()),
        )?;
        tracing::info!(epoch = trainer.epochs_done(), "resumed");
    }
    if !train_epochs(job, &mut trainer, data, dir, opts)? {
        return Ok(None);
    }
    finish(job, &trainer, dir, opts).map(Some)
}

/// Trains the remaining epochs (at most `opts.stop_after` of them), writing the checkpoint,
/// `metrics.csv`, the TensorBoard event file and the log after each. Returns whether the run
/// is finished.
fn train_epochs(
    job: &Job,
    trainer: &mut Trainer<AnyModel>,
    data: &LoadedData,
    dir: &Path,
    opts: &RunOptions,
) -> Result<bool> {
    let label = job.label();
    let ckpt = dir.join(CHECKPOINT);
    let steps = data
        .dataset
        .train
        .len()
        .div_ceil(job.config.train.batch_size);
    let show = opts.progress && std::io::stderr().is_terminal();
    let run = data.run_data();
    let mut tensorboard =
        TensorBoard::open(dir, job.config.output.tensorboard, trainer.epochs_done())?;
    let mut ran = 0;
    while !trainer.finished() {
        if opts.stop_after.is_some_and(|n| ran >= n) {
            return Ok(false);
        }
        let epoch = trainer.epochs_done() + 1;
        let of = job.config.train.epochs;
        let mut bar = Bar::new(show, format!("{label} epoch {epoch}/{of}"), steps);
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
        trainer.checkpoint().write(&ckpt)?;
        write_metrics_csv(dir, trainer.history())?;
        tensorboard.log(trainer.history())?;
        ran += 1;
    }
    Ok(true)
}

/// The files of a finished run: plots, `report.md`, then `summary.json`.
fn finish(
    job: &Job,
    trainer: &Trainer<AnyModel>,
    dir: &Path,
    opts: &RunOptions,
) -> Result<RunSummary> {
    let device = format!("{:?}", opts.device).to_lowercase();
    let head = SummaryHead::new(&job.config, job.variant(), job.seed, device);
    let summary = RunSummary::from_history(head, trainer.history())?;
    let title = format!("{} / {}", job.config.name, job.variant().name);
    write_plots(dir, &title, trainer.history())?;
    write_atomic(
        &dir.join("report.md"),
        report_markdown(&summary, trainer.history()).as_bytes(),
    )?;
    // The summary goes last: its presence marks the run finished.
    write_atomic(
        &dir.join(SUMMARY),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(summary)
}

/// Runs the given jobs into `out`, returns their summaries.
pub fn run_jobs(
    cfg: &ExperimentConfig,
    jobs: &[Job],
    out: &Path,
    opts: &RunOptions,
) -> Result<Vec<RunSummary>> {
    let t0 = Instant::now();
    let data = load_data(cfg, opts.device)?;
    tracing::info!(
        dataset = %cfg.data.dataset, train = data.dataset.train.len(), test = data.dataset.test.len(),
        probe = data.probe.len(), seconds = t0.elapsed().as_secs_f64(), "data loaded"
    );
    // Every job fits before the first one trains.
    for job in jobs {
        job.check_memory(opts.device, &data.dataset)?;
    }
    let mut summaries = Vec::new();
    for job in jobs {
        if let Some(s) = run_job(job, &data, &job.dir(out), opts)? {
            summaries.push(s);
        }
    }
    Ok(summaries)
}

/// Restores a checkpoint written by [`run_job`] into a freshly built trainer.
fn restore_checkpoint(trainer: &mut Trainer<AnyModel>, ckpt: &Path) -> Result<()> {
    let saved = Checkpoint::read(ckpt)?;
    trainer
        .restore(saved)
        .with_context(|| format!("restoring {}", ckpt.display()))
}
