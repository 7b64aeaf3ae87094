//! Running one job (one variant, one seed) into its run directory, with checkpoints and resume.
//!
//! A run directory has one writer at a time ([`crate::run_lock`]). `--resume` continues only the
//! run the directory holds: the configuration must be the run's own, but for the keys in
//! [`RESUMABLE_KEYS`], and nothing in the directory is written before the checkpoint has been
//! restored. A SIGTERM or SIGINT ([`Stop`]) ends the run after the current step with a
//! checkpoint that resumes at that step.

use crate::config::{changed_keys, ExperimentConfig};
use crate::io::write_atomic;
use crate::job::Job;
use crate::model::AnyModel;
use crate::output::{report_markdown, write_metrics_csv, RunSummary, SummaryHead};
use crate::plots::write_plots;
use crate::run_lock::{RunLock, LOCK};
use crate::tensorboard::TensorBoard;
use anyhow::{bail, Context, Result};
use etf_data::{Dataset, Split};
use etf_train::{
    Checkpoint, EpochOutcome, EpochRecord, Progress, RunData, StackMode, StackedTrainer, Trainer,
};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tch::Device;

/// The keys `--resume` lets change, each safe mid-run: `train.epochs` (to extend a run, also a
/// finished one; not below the epochs done), where the data is and which device trains, the
/// batch size of the measuring passes (memory only), the TensorBoard switch and the
/// description. Any other change is refused, naming the keys.
pub const RESUMABLE_KEYS: [&str; 6] = [
    "train.epochs",
    "train.device",
    "train.eval_batch_size",
    "data.root",
    "output.tensorboard",
    "description",
];

/// The exit status of a run stopped by a first SIGTERM or SIGINT after writing a checkpoint
/// that `--resume` continues from (`EX_TEMPFAIL`: try again).
pub const EXIT_STOPPED: u8 = 75;

/// The signal that asked the run to stop (0: none yet), set by the signal handlers the binary
/// installs; the trainer reads it after every step.
#[derive(Clone, Debug, Default)]
pub struct Stop(pub Arc<AtomicUsize>);

impl Stop {
    /// The signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            s => i32::try_from(s).ok(),
        }
    }
}

/// A run stopped by a signal, its checkpoint written: the binary exits with [`EXIT_STOPPED`].
#[derive(Debug, thiserror::Error)]
#[error("{label}: stopped by {signal} {at}; `--resume` continues from there ({dir})")]
pub struct Stopped {
    /// The job.
    pub label: String,
    /// `SIGTERM` or `SIGINT`.
    pub signal: String,
    /// Where it stopped, in words.
    pub at: String,
    /// The run directory.
    pub dir: PathBuf,
}

/// The name of a signal number.
fn signal_name(signal: i32) -> String {
    match signal {
        15 => "SIGTERM".into(),
        2 => "SIGINT".into(),
        s => format!("signal {s}"),
    }
}

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
    /// Set when a SIGTERM or SIGINT arrived: the run checkpoints after the current step and
    /// stops.
    pub stop: Stop,
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

/// The test hook `ETF_TEST_SIGTERM_AFTER_STEPS=N[,N…]`: the process sends itself a SIGTERM after
/// its N-th training step (counted over the job's epochs in this invocation), once per entry,
/// so a test can interrupt a run at a known step.
#[derive(Default)]
struct TestSignals {
    at: Vec<usize>,
    taken: usize,
}

impl TestSignals {
    fn from_env() -> Result<Self> {
        let Ok(v) = std::env::var("ETF_TEST_SIGTERM_AFTER_STEPS") else {
            return Ok(Self::default());
        };
        let at = v
            .split(',')
            .map(|x| x.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("ETF_TEST_SIGTERM_AFTER_STEPS={v:?}: expected N[,N…]"))?;
        Ok(Self { at, taken: 0 })
    }

    fn step(&mut self) {
        self.taken += 1;
        for _ in self.at.iter().filter(|&&n| n == self.taken) {
            let _ = signal_hook::low_level::raise(signal_hook::consts::SIGTERM);
        }
    }
}

/// A per-epoch progress bar on a terminal; also where the trainer learns of a stop signal.
struct Bar<'a> {
    pb: Option<indicatif::ProgressBar>,
    stop: &'a Stop,
    hook: &'a mut TestSignals,
}

impl<'a> Bar<'a> {
    fn new(
        show: bool,
        label: String,
        steps: usize,
        stop: &'a Stop,
        hook: &'a mut TestSignals,
    ) -> Self {
        let pb = show.then(|| Self::bar(label, steps));
        Bar { pb, stop, hook }
    }

    fn bar(label: String, steps: usize) -> indicatif::ProgressBar {
        let pb = indicatif::ProgressBar::new(steps as u64);
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        pb.set_style(style);
        pb.set_prefix(label);
        pb
    }
}

impl Progress for Bar<'_> {
    fn step(&mut self, step: usize, _steps: usize, running: Option<(f64, f64)>) {
        self.hook.step();
        if let Some(pb) = &self.pb {
            pb.set_position(step as u64);
            if let Some((loss, acc)) = running {
                pb.set_message(format!("loss {loss:.4} acc {acc:.4}"));
            }
        }
    }
    fn wants_loss(&self) -> bool {
        self.pb.is_some()
    }
    fn stop(&self) -> bool {
        self.stop.signal().is_some()
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

/// What a locked run directory holds for a job.
enum Prepared {
    /// A finished run that `--resume` keeps as it is.
    Finished(Box<RunSummary>),
    /// Nothing yet (or cleared by `--force`): train from the start.
    Fresh,
    /// A run to continue from its checkpoint (`finished`: a finished run whose `train.epochs`
    /// grew).
    Resume { finished: bool },
}

/// Checks what `dir` (locked) holds against the job and the options: refuses to overwrite a
/// run without `--force`, and on `--resume` refuses a configuration that differs from the run's
/// own in any key but [`RESUMABLE_KEYS`]. Writes nothing but what `--force` clears.
fn prepare_dir(dir: &Path, job: &Job, opts: &RunOptions) -> Result<Prepared> {
    let summary = dir.join(SUMMARY);
    let checkpoint = dir.join(CHECKPOINT);
    if opts.force {
        clear_dir(dir)?;
        return Ok(Prepared::Fresh);
    }
    if !opts.resume {
        if summary.exists() {
            bail!(
                "{} already holds a finished run; pass --force to overwrite it",
                dir.display()
            );
        }
        if checkpoint.exists() {
            bail!(
                "{} holds an unfinished run; pass --resume to continue it or --force to start over",
                dir.display()
            );
        }
        return Ok(Prepared::Fresh);
    }
    let saved = check_resume_config(dir, job)?;
    if !summary.exists() {
        return Ok(if checkpoint.exists() {
            Prepared::Resume { finished: false }
        } else {
            Prepared::Fresh
        });
    }
    let done = saved.map_or(0, |c| c.train.epochs);
    if job.config.train.epochs > done && checkpoint.exists() {
        return Ok(Prepared::Resume { finished: true });
    }
    let text = std::fs::read_to_string(&summary)
        .with_context(|| format!("cannot read {}", summary.display()))?;
    Ok(Prepared::Finished(Box::new(
        serde_json::from_str(&text).with_context(|| format!("reading {}", summary.display()))?,
    )))
}

/// Compares the job's configuration with the run's `config.toml` (when there is one): any key
/// that differs and is not in [`RESUMABLE_KEYS`] is an error listing every such key, and
/// `train.epochs` may not fall below the epochs the run has done. Returns the run's own.
fn check_resume_config(dir: &Path, job: &Job) -> Result<Option<ExperimentConfig>> {
    let path = dir.join(CONFIG);
    if !path.exists() {
        if dir.join(CHECKPOINT).exists() {
            bail!(
                "{} holds a checkpoint but no {CONFIG}, so --resume cannot check that it \
                 continues the same run; pass --force to start over",
                dir.display()
            );
        }
        return Ok(None);
    }
    let saved = ExperimentConfig::load(&path, &[])
        .with_context(|| format!("reading the run's own configuration {}", path.display()))?;
    let changed = changed_keys(&saved, &job.config)?;
    let refused: Vec<&String> = changed
        .iter()
        .filter(|k| !RESUMABLE_KEYS.contains(&k.as_str()))
        .collect();
    if !refused.is_empty() {
        let keys: Vec<&str> = refused.iter().map(|k| k.as_str()).collect();
        bail!(
            "--resume: the configuration differs from the run's own ({}) in {}; a run \
             continues only with the settings it started with (--resume may change only {}); \
             nothing was changed in {}",
            path.display(),
            keys.join(", "),
            RESUMABLE_KEYS.join(", "),
            dir.display()
        );
    }
    if job.config.train.epochs < saved.train.epochs && dir.join(SUMMARY).exists() {
        bail!(
            "--resume: train.epochs = {} is below the {} epochs the finished run in {} has done",
            job.config.train.epochs,
            saved.train.epochs,
            dir.display()
        );
    }
    Ok(Some(saved))
}

/// Removes everything in `dir` but its lock file (`--force`, lock held).
fn clear_dir(dir: &Path) -> Result<()> {
    let cannot = || format!("cannot clear {}", dir.display());
    for entry in std::fs::read_dir(dir).with_context(cannot)? {
        let entry = entry.with_context(cannot)?;
        if entry.file_name() == LOCK {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().with_context(cannot)?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// Runs one job to the end (or to `opts.stop_after` epochs), writing everything into `dir`,
/// whose lock it holds throughout. Returns the summary of a finished run, `None` when stopped
/// early; a stop signal is the error [`Stopped`].
pub fn run_job(
    job: &Job,
    data: &LoadedData,
    dir: &Path,
    opts: &RunOptions,
) -> Result<Option<RunSummary>> {
    let mut opened = match open_job(job, data, dir, opts)? {
        Open::Finished(done) => return Ok(Some(*done)),
        Open::Ready(o) => o,
    };
    if !train_epochs(job, &mut opened.trainer, data, dir, opts)? {
        return Ok(None);
    }
    finish(job, &opened.trainer, dir, opts).map(Some)
}

/// A job's run directory, locked (for as long as this lives) and checked, with the trainer that
/// continues it: fresh, or restored from its checkpoint.
struct Opened {
    _lock: RunLock,
    trainer: Trainer<AnyModel>,
}

/// What [`open_job`] found.
enum Open {
    /// A finished run that `--resume` keeps as it is.
    Finished(Box<RunSummary>),
    /// A run to train.
    Ready(Box<Opened>),
}

/// Locks `dir`, checks what it holds against the job ([`prepare_dir`]), builds the trainer and
/// restores the checkpoint when resuming; then (only then) writes the run's `config.toml` and,
/// when resumed, the log line saying where it continues.
fn open_job(job: &Job, data: &LoadedData, dir: &Path, opts: &RunOptions) -> Result<Open> {
    let lock = RunLock::acquire(dir)?;
    etf_train::atomic::remove_stale_temps(dir)?;
    let finished = match prepare_dir(dir, job, opts)? {
        Prepared::Finished(done) => {
            tracing::info!(dir = %dir.display(), "already finished; kept as it is");
            return Ok(Open::Finished(done));
        }
        Prepared::Fresh => None,
        Prepared::Resume { finished } => Some(finished),
    };
    let mut trainer = job.trainer(opts.device, &data.dataset)?;
    let ckpt = dir.join(CHECKPOINT);
    if let Some(finished) = finished {
        restore_checkpoint(&mut trainer, &ckpt)?;
        if trainer.epochs_done() > job.config.train.epochs {
            bail!(
                "--resume: train.epochs = {} is below the {} epochs the run in {} has done",
                job.config.train.epochs,
                trainer.epochs_done(),
                dir.display()
            );
        }
        // Restored: from here on the directory may change.
        if finished {
            std::fs::remove_file(dir.join(SUMMARY))
                .with_context(|| format!("cannot reopen the finished run in {}", dir.display()))?;
        }
    }
    write_atomic(
        &dir.join(CONFIG),
        toml::to_string_pretty(&job.config)?.as_bytes(),
    )?;
    if finished.is_some() {
        let at = match &trainer.state().in_epoch {
            Some(p) => format!(
                "in epoch {} after step {}",
                trainer.epochs_done() + 1,
                p.steps_done
            ),
            None => format!("after epoch {}", trainer.epochs_done()),
        };
        log_line(dir, &format!("resumed {at}"))?;
        tracing::info!("{} resumed {at}", job.label());
    }
    Ok(Open::Ready(Box::new(Opened {
        _lock: lock,
        trainer,
    })))
}

/// What a run directory gets after each finished epoch: the checkpoint, `metrics.csv`, the
/// TensorBoard events, then the log line (last: `run.log` names only epochs the checkpoint
/// holds).
fn write_epoch(
    job: &Job,
    trainer: &Trainer<AnyModel>,
    dir: &Path,
    tensorboard: &mut TensorBoard,
) -> Result<()> {
    trainer.checkpoint().write(&dir.join(CHECKPOINT))?;
    write_metrics_csv(dir, trainer.history())?;
    tensorboard.log(trainer.history())?;
    let record = trainer.history().last().context("no epoch to write")?;
    let line = epoch_line(record);
    tracing::info!("{} {line}", job.label());
    log_line(dir, &line)
}

/// The error of a training epoch that failed in run directory `dir`: said in its `run.log`,
/// with where its last good checkpoint is.
fn epoch_failed(job: &Job, dir: &Path, epoch: usize, e: anyhow::Error) -> anyhow::Error {
    if let Err(log) = log_line(dir, &format!("stopped in epoch {epoch}: {e:#}")) {
        return log.context(format!(
            "{}: training stopped in epoch {epoch}: {e:#}",
            job.label()
        ));
    }
    let ckpt = dir.join(CHECKPOINT);
    let kept = if ckpt.exists() {
        format!("the last good checkpoint is kept in {}", ckpt.display())
    } else {
        format!(
            "no checkpoint was written (the first epoch did not end); {} starts over with --force",
            dir.display()
        )
    };
    e.context(format!(
        "{}: training stopped in epoch {epoch}; {kept}",
        job.label()
    ))
}

/// Trains the remaining epochs (at most `opts.stop_after` of them), writing the checkpoint,
/// `metrics.csv`, the TensorBoard event file and then the log line after each. Returns whether
/// the run is finished; a stop signal writes a checkpoint inside the epoch and is the error
/// [`Stopped`].
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
    let mut hook = TestSignals::from_env()?;
    let mut ran = 0;
    while !trainer.finished() {
        if opts.stop_after.is_some_and(|n| ran >= n) {
            return Ok(false);
        }
        let epoch = trainer.epochs_done() + 1;
        if let Some(signal) = opts.stop.signal() {
            let at = format!("before epoch {epoch}");
            log_line(dir, &format!("stopped by {} {at}", signal_name(signal)))?;
            return Err(stopped(job, dir, signal, at));
        }
        let of = job.config.train.epochs;
        let mut bar = Bar::new(
            show,
            format!("{label} epoch {epoch}/{of}"),
            steps,
            &opts.stop,
            &mut hook,
        );
        let outcome = trainer.run_epoch_or_stop(&run, &mut bar);
        if let Some(pb) = bar.pb.take() {
            pb.finish_and_clear();
        }
        match outcome {
            Ok(EpochOutcome::Finished(_)) => {}
            Ok(EpochOutcome::Stopped {
                epoch,
                steps_done,
                steps,
            }) => {
                trainer.checkpoint().write(&ckpt)?;
                let signal = opts.stop.signal().unwrap_or(15);
                let at = format!("in epoch {epoch} after step {steps_done} of {steps}");
                log_line(dir, &format!("stopped by {} {at}", signal_name(signal)))?;
                return Err(stopped(job, dir, signal, at));
            }
            Err(e) => return Err(epoch_failed(job, dir, epoch, e.into())),
        }
        write_epoch(job, trainer, dir, &mut tensorboard)?;
        ran += 1;
    }
    Ok(true)
}

/// The [`Stopped`] error of `job`.
fn stopped(job: &Job, dir: &Path, signal: i32, at: String) -> anyhow::Error {
    Stopped {
        label: job.label(),
        signal: signal_name(signal),
        at,
        dir: dir.to_path_buf(),
    }
    .into()
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
        if let Some(signal) = opts.stop.signal() {
            return Err(stopped(
                job,
                &job.dir(out),
                signal,
                "before it started".into(),
            ));
        }
        if let Some(s) = run_job(job, &data, &job.dir(out), opts)? {
            summaries.push(s);
        }
    }
    Ok(summaries)
}

/// How `etf sweep --stack` stacks its runs.
#[derive(Clone, Copy, Debug)]
pub struct StackOptions {
    /// At most this many runs per stack.
    pub max_members: usize,
    /// Joint, in turn, or by the device ([`StackMode::on`]).
    pub mode: StackMode,
}

/// Runs the jobs into `out` as stacks of at most `stack.max_members` runs each
/// ([`StackedTrainer`], in `stack.mode`): `etf sweep --stack`. Every run directory is the one [`run_job`] writes
/// (and `--resume`, `diagnose` and `compare` read it as such); a stack resumes as a whole, from
/// its members' epoch-end checkpoints, and a stop signal ends it at the end of the epoch in
/// progress. Finished runs are kept (with `--resume`); runs at different epochs train in
/// different stacks. Returns the summaries of the finished runs.
pub fn run_stacked_jobs(
    cfg: &ExperimentConfig,
    jobs: &[Job],
    out: &Path,
    opts: &RunOptions,
    stack: StackOptions,
) -> Result<Vec<RunSummary>> {
    let StackOptions { max_members, mode } = stack;
    if max_members == 0 {
        bail!("--max-members must be at least 1");
    }
    if let crate::config::ModelConfig::Vit(_) = cfg.model {
        bail!(
            "--stack: only the MLP trains stacked; {} has model.kind = \"vit\" (run it \
             without --stack)",
            cfg.name
        );
    }
    let data = load_data(cfg, opts.device)?;
    for job in jobs {
        job.check_memory(opts.device, &data.dataset)?;
    }
    let mut summaries = Vec::new();
    // Opened runs by the epoch they are at: one stack each (in chunks of `max_members`).
    let mut waiting: Vec<(usize, Vec<(&Job, Opened)>)> = Vec::new();
    for job in jobs {
        match open_job(job, &data, &job.dir(out), opts)? {
            Open::Finished(s) => summaries.push(*s),
            Open::Ready(o) => {
                if o.trainer.state().in_epoch.is_some() {
                    bail!(
                        "{}: its checkpoint stopped inside an epoch; finish that epoch with \
                         `etf run --resume` (without --stack), then stack it again",
                        job.dir(out).display()
                    );
                }
                let at = o.trainer.epochs_done();
                match waiting.iter_mut().find(|(e, _)| *e == at) {
                    Some((_, group)) => group.push((job, *o)),
                    None => waiting.push((at, vec![(job, *o)])),
                }
            }
        }
    }
    for (_, group) in waiting {
        let mut group = group.into_iter().peekable();
        while group.peek().is_some() {
            let chunk: Vec<(&Job, Opened)> = group.by_ref().take(max_members).collect();
            summaries.extend(run_stack(chunk, &data, out, opts, mode)?);
        }
    }
    Ok(summaries)
}

/// Trains one stack of opened runs to the end (or `opts.stop_after` epochs).
fn run_stack(
    chunk: Vec<(&Job, Opened)>,
    data: &LoadedData,
    out: &Path,
    opts: &RunOptions,
    mode: StackMode,
) -> Result<Vec<RunSummary>> {
    let (jobs, opened): (Vec<&Job>, Vec<Opened>) = chunk.into_iter().unzip();
    let (locks, trainers): (Vec<RunLock>, Vec<Trainer<AnyModel>>) =
        opened.into_iter().map(|o| (o._lock, o.trainer)).unzip();
    let dirs: Vec<PathBuf> = jobs.iter().map(|j| j.dir(out)).collect();
    let labels: Vec<String> = jobs.iter().map(|j| j.label()).collect();
    let mut stack = StackedTrainer::with_mode(trainers, mode)
        .with_context(|| format!("cannot stack {}", labels.join(", ")))?;
    let mode = stack.mode();
    tracing::info!(members = jobs.len(), %mode, runs = %labels.join(", "), "training as one stack");
    // Which runs trained together, and how, is part of each run's record.
    let line = format!(
        "training in a stack of {} ({mode}): {}",
        jobs.len(),
        labels.join(", ")
    );
    for dir in &dirs {
        log_line(dir, &line)?;
    }
    let mut boards = Vec::with_capacity(jobs.len());
    for (job, dir) in jobs.iter().zip(&dirs) {
        boards.push(TensorBoard::open(
            dir,
            job.config.output.tensorboard,
            stack.epochs_done(),
        )?);
    }
    let steps = data
        .dataset
        .train
        .len()
        .div_ceil(jobs[0].config.train.batch_size);
    let show = opts.progress && std::io::stderr().is_terminal();
    let run = data.run_data();
    let mut hook = TestSignals::from_env()?;
    let mut ran = 0;
    while !stack.finished() {
        if opts.stop_after.is_some_and(|n| ran >= n) {
            return Ok(Vec::new());
        }
        let epoch = stack.epochs_done() + 1;
        if let Some(signal) = opts.stop.signal() {
            let at = format!("before epoch {epoch}");
            for dir in &dirs {
                log_line(dir, &format!("stopped by {} {at}", signal_name(signal)))?;
            }
            return Err(stopped(jobs[0], &dirs[0], signal, at)).with_context(|| {
                format!(
                    "the stack of {} stopped before epoch {epoch}",
                    labels.join(", ")
                )
            });
        }
        let of = jobs[0].config.train.epochs;
        let mut bar = Bar::new(
            show,
            format!("stack of {} epoch {epoch}/{of}", jobs.len()),
            steps,
            &opts.stop,
            &mut hook,
        );
        let outcome = stack.run_epoch(&run, &mut bar);
        if let Some(pb) = bar.pb.take() {
            pb.finish_and_clear();
        }
        if let Err(e) = outcome {
            let e = anyhow::Error::new(e);
            for (job, dir) in jobs.iter().zip(&dirs).skip(1) {
                log_line(
                    dir,
                    &format!("stopped in epoch {epoch} with its stack: {e:#}"),
                )?;
                tracing::warn!("{}: stopped with its stack in epoch {epoch}", job.label());
            }
            return Err(epoch_failed(jobs[0], &dirs[0], epoch, e));
        }
        let members = jobs.iter().zip(&dirs).zip(&mut boards).zip(stack.members());
        for (((job, dir), board), t) in members {
            write_epoch(job, t, dir, board)?;
        }
        ran += 1;
    }
    let mut summaries = Vec::with_capacity(jobs.len());
    for ((job, dir), t) in jobs.iter().zip(&dirs).zip(stack.members()) {
        summaries.push(finish(job, t, dir, opts)?);
    }
    drop(locks);
    Ok(summaries)
}

/// Restores a checkpoint written by [`run_job`] into a freshly built trainer.
fn restore_checkpoint(trainer: &mut Trainer<AnyModel>, ckpt: &Path) -> Result<()> {
    let saved = Checkpoint::read(ckpt)?;
    trainer
        .restore(saved)
        .with_context(|| format!("restoring {}", ckpt.display()))
}
