//! Command-line interface of `etf` and of the per-experiment binaries.

use crate::compare::{
    compare_table, compare_table_with, find_summaries, AccuracyEpoch, TableOptions,
};
use crate::compare_figures::write_comparison_figures;
use crate::config::{check_seeds, DeviceChoice, ExperimentConfig, MAX_SEEDS};
use crate::diagnose::{diagnose, DiagnoseArgs};
use crate::io::write_atomic;
use crate::job::Job;
use crate::run::{
    run_jobs, run_stacked_jobs, RunOptions, StackOptions, Stop, Stopped, EXIT_STOPPED,
};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use etf_train::StackMode;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Adaptive-ETF and ETF-Transformer experiments with neural-collapse diagnostics.
#[derive(Parser, Debug)]
#[command(name = "etf", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level filter (also from RUST_LOG), e.g. `info`, `debug`.
    #[arg(long, global = true, default_value = "info")]
    log: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train every variant of an experiment (for its seeds) and print the comparison.
    Run(RunArgs),
    /// Train every (variant, seed) of an experiment as its own run directory, optionally a shard.
    Sweep(SweepArgs),
    /// Compare finished runs side by side.
    Compare {
        /// Run directories, or folders holding runs.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Also compare unfinished runs (a checkpoint but no summary.json yet: still running,
        /// or stopped), at their last completed epoch, marked as such.
        #[arg(long)]
        partial: bool,
        /// Which epoch's test accuracy the accuracy and Δ columns show: `final` (each run's
        /// last epoch) or `best` (each run's best epoch, which the test set picks).
        #[arg(long, value_enum, default_value = "final")]
        accuracy: AccuracyEpoch,
        /// Show only these columns, in this order, by key (comma-separated): experiment,
        /// variant, seeds, acc, delta, params, reduction, depth, locks, jump (the first lock's
        /// probe loss before → after), recover (epochs until the test accuracy is back),
        /// ncc_train, ncc_test, nc1, time.
        #[arg(long, value_delimiter = ',', value_name = "KEY,...")]
        columns: Vec<String>,
        /// Sort the rows by a column key, `KEY`, `KEY:asc` or `KEY:desc`; numbers sort
        /// descending (best accuracy first) and text ascending unless told.
        #[arg(long, value_name = "KEY[:asc|:desc]")]
        sort: Option<String>,
        /// The variant whose every layer's NCC per epoch is drawn as a grid (default: the
        /// first adaptive variant, else the first).
        #[arg(long, value_name = "VARIANT")]
        layers_of: Option<String>,
        /// Where the figures go (default: the first path given, when a folder).
        #[arg(long, value_name = "DIR")]
        figures: Option<PathBuf>,
    },
    /// Print an experiment file's resolved configuration as TOML, every default filled in
    /// (after any `--set`): what `run` would train. The keys are in docs/config.md.
    Config {
        /// The experiment file (TOML).
        config: PathBuf,
        /// Override a config value, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Collapse report of a saved model; optionally dump each layer's features as `.npy`.
    Diagnose {
        /// A run directory or its checkpoint.safetensors.
        checkpoint: PathBuf,
        /// Data set to evaluate on (default: the run's own).
        #[arg(long)]
        data: Option<etf_data::DatasetName>,
        /// Data root (default: the run's).
        #[arg(long)]
        data_root: Option<PathBuf>,
        /// Write each layer's test-set features and the labels as .npy into this directory.
        #[arg(long)]
        dump_features: Option<PathBuf>,
        /// Device.
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
    /// The parameters a run starts from (built exactly as `run` builds them, before any step):
    /// per variable its shape, whether it is trained, min, max, mean and std.
    Inspect {
        /// The experiment file (TOML).
        config: PathBuf,
        /// Variant (default: the file's first).
        #[arg(long)]
        variant: Option<String>,
        /// Seed (default: the file's first).
        #[arg(long)]
        seed: Option<u64>,
        /// Override a config value, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print JSON instead of a Markdown table.
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by `run`, `sweep` and the experiment binaries.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Output directory (default: runs/<experiment name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Device: auto (CUDA when available), cpu or cuda. Overrides the config.
    #[arg(long, value_enum)]
    device: Option<DeviceChoice>,
    /// Override a config value, e.g. --set train.epochs=3 --set variant.adaptive.tau=0.8.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue unfinished runs from their last checkpoint; keep finished ones.
    #[arg(long)]
    resume: bool,
    /// Overwrite runs already in the output directory.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Only these variants (by name).
    #[arg(long = "variant")]
    variants: Vec<String>,
    /// CPU threads of libtorch (default: libtorch's choice, one per core). On a shared machine
    /// one thread per process is often faster than contended threads.
    #[arg(long)]
    threads: Option<i32>,
    /// Stop after this many epochs of each run (the run stays resumable).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The experiment file (TOML).
    config: PathBuf,
    /// Train this seed only (default: the config's `seeds`).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct SweepArgs {
    /// The experiment file (TOML).
    config: PathBuf,
    /// Seeds as a range `a..b` (b excluded) or a list `0,3,7` (default: the config's `seeds`).
    #[arg(long)]
    seeds: Option<String>,
    /// Run only shard i of n (0-based i): jobs whose index ≡ i (mod n).
    #[arg(long)]
    shard: Option<String>,
    /// Train the runs as one stack (MLP only; how: --stack-mode): each run still gets its own
    /// run directory, as it would alone. See docs/architecture.md, "Stacked sweeps".
    #[arg(long)]
    stack: bool,
    /// With --stack: at most this many runs per stack (the rest form further stacks).
    #[arg(long, requires = "stack", default_value_t = 16)]
    max_members: usize,
    /// With --stack: joint (one stacked computation per batch), in-turn (each epoch, the runs'
    /// steps one run after another) or auto (joint on an accelerator, in-turn on the CPU, where
    /// the joint computation is slower than the runs one by one).
    #[arg(long, requires = "stack", default_value_t = StackMode::Auto)]
    stack_mode: StackMode,
    #[command(flatten)]
    common: CommonArgs,
}

/// Parses `a..b` or `a,b,c`: at most [`MAX_SEEDS`] seeds, none twice; a range is checked
/// before it is expanded.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let bad = || format!("--seeds {s:?}: expected a range like 0..5 or a list like 0,3,7");
    let what = format!("--seeds {s:?}");
    if let Some((a, b)) = s.split_once("..") {
        let (a, b): (u64, u64) = (
            a.trim().parse().with_context(bad)?,
            b.trim().parse().with_context(bad)?,
        );
        if a >= b {
            bail!("--seeds {s:?}: the range is empty");
        }
        if b - a > MAX_SEEDS as u64 {
            bail!(
                "{what}: {} seeds, more than the {MAX_SEEDS} one invocation trains",
                b - a
            );
        }
        return Ok((a..b).collect());
    }
    let seeds = s
        .split(',')
        .map(|x| x.trim().parse::<u64>().with_context(bad))
        .collect::<Result<Vec<_>>>()?;
    check_seeds(&seeds, &what)?;
    Ok(seeds)
}

/// Parses `i/n` with `0 ≤ i < n`.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || format!("--shard {s:?}: expected i/n with 0 <= i < n, e.g. 0/4");
    let (i, n) = s.split_once('/').with_context(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().with_context(bad)?,
        n.trim().parse().with_context(bad)?,
    );
    if n == 0 || i >= n {
        bail!(bad());
    }
    Ok((i, n))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

fn options(cfg: &ExperimentConfig, c: &CommonArgs) -> Result<RunOptions> {
    if let Some(n) = c.threads {
        if n < 1 {
            bail!("--threads must be at least 1, got {n}");
        }
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        if n as usize > cores {
            // Oversubscribed threads contend for the cores: 1000 threads on 4 cores ran 250×
            // slower. Allowed (a machine may report fewer cores than it lends), but said.
            tracing::warn!(
                "--threads {n} is more than the {cores} CPU cores this process may use; \
                 libtorch's threads will contend and training will be slower, not faster"
            );
        }
        tch::set_num_threads(n);
    }
    Ok(RunOptions {
        device: c.device.unwrap_or(cfg.train.device).resolve()?,
        resume: c.resume,
        force: c.force,
        progress: true,
        stop_after: c.stop_after,
        stop: stop_on_signals()?,
    })
}

/// Turns the first SIGTERM or SIGINT into a request to stop after the current step (the run
/// checkpoints there and exits with [`EXIT_STOPPED`]); a second one, of either kind, exits at
/// once with the status of death by that signal (143 or 130).
fn stop_on_signals() -> Result<Stop> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Stop::default();
    let seen = Arc::new(AtomicBool::new(false));
    for (signal, status) in [(SIGTERM, 143), (SIGINT, 130)] {
        // Handlers run in the order registered: the exit checks the flag before it is set.
        signal_hook::flag::register_conditional_shutdown(signal, status, Arc::clone(&seen))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&seen)))
            .and_then(|_| {
                signal_hook::flag::register_usize(signal, Arc::clone(&stop.0), signal as usize)
            })
            .context("cannot install the SIGTERM / SIGINT handlers")?;
    }
    Ok(stop)
}

/// Runs an experiment: every selected variant for each seed (as stacks, when `stack` is
/// given), then prints and writes the table.
fn run_experiment(
    config: &Path,
    seeds: Option<Vec<u64>>,
    shard: Option<(usize, usize)>,
    stack: Option<StackOptions>,
    c: &CommonArgs,
) -> Result<()> {
    let cfg = ExperimentConfig::load(config, &c.set)?;
    for v in &c.variants {
        cfg.variant(v)?;
    }
    let seeds = seeds.unwrap_or_else(|| cfg.seeds.clone());
    let mut all = Job::all(&cfg, &seeds)?;
    all.retain(|j| c.variants.is_empty() || c.variants.contains(&j.variant().name));
    if let Some((i, n)) = shard {
        all = all
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % n == i)
            .map(|(_, j)| j)
            .collect();
    }
    let out = c
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
    let opts = options(&cfg, c)?;
    tracing::info!(experiment = %cfg.name, jobs = all.len(), out = %out.display(), device = ?opts.device, "starting");
    match stack {
        Some(stack) => run_stacked_jobs(&cfg, &all, &out, &opts, stack)?,
        None => run_jobs(&cfg, &all, &out, &opts)?,
    };
    if all
        .iter()
        .all(|j| !j.dir(&out).join(crate::run::SUMMARY).exists())
    {
        return Ok(());
    }
    write_sweep_comparison(&out)
}

/// Writes `out/comparison.md` and the figures of every finished run in `out`, not only this
/// invocation's: each shard of a sharded sweep ends here, and the one that ends last writes
/// the whole sweep. A lock on `out/comparison.lock` makes reading the runs and writing the
/// table one step, so a shard that read fewer runs cannot overwrite a fuller table.
fn write_sweep_comparison(out: &Path) -> Result<()> {
    let lock_path = out.join("comparison.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let found = find_summaries(&[out.to_path_buf()], false)?;
    for (dir, why) in &found.skipped {
        tracing::warn!(run = %dir.display(), "left out of the comparison: {why}");
    }
    let table = compare_table(&found.runs);
    println!("\n{table}");
    write_atomic(&out.join("comparison.md"), table.as_bytes())?;
    let figures = write_comparison_figures(out, &found.runs, None)?;
    drop(lock);
    println!(
        "runs in {}; table in {}",
        out.display(),
        out.join("comparison.md").display()
    );
    // Last, so the figures are what a terminal (and `make run`) ends on.
    println!("{}", figure_lines(&figures));
    Ok(())
}

/// The lines naming the figures written: PNG paths, then where the SVG copies are.
fn figure_lines(figures: &[PathBuf]) -> String {
    let png: Vec<String> = figures
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .map(|f| format!("  {}", f.display()))
        .collect();
    if png.is_empty() {
        return "no figures (no run has a metrics.csv)".to_string();
    }
    format!(
        "comparison figures (each also as .svg):\n{}",
        png.join("\n")
    )
}

/// `etf compare`: prints the table laid out as `opts` asks and writes the figures into
/// `figures` (default: the first path given, when a folder), naming them on stderr so the
/// table alone is on stdout.
fn compare(
    runs: &[PathBuf],
    partial: bool,
    opts: &TableOptions,
    layers_of: Option<&str>,
    figures: Option<PathBuf>,
) -> Result<()> {
    let found = find_summaries(runs, partial)?;
    if found.runs.is_empty() {
        found.skipped_error()?;
        if partial {
            bail!("no runs (summary.json or checkpoint) under {:?}", runs);
        }
        bail!(
            "no finished runs (summary.json) under {:?}; --partial also compares \
             unfinished ones at their last completed epoch",
            runs
        );
    }
    println!("{}", compare_table_with(&found.runs, opts)?);
    // A file given first (a summary.json, say) stands for its folder.
    let dir = figures.unwrap_or_else(|| match &runs[0] {
        d if d.is_dir() => d.clone(),
        f => f
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let written = write_comparison_figures(&dir, &found.runs, layers_of)?;
    eprintln!("{}", figure_lines(&written));
    found.skipped_error()
}

/// Prints an error with its whole context chain and turns it into the exit status: 1, or
/// [`EXIT_STOPPED`] for a run a signal stopped after writing its checkpoint.
pub fn exit_code(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Stopped>().is_some() => {
            eprintln!("stopped: {e:#}");
            std::process::ExitCode::from(EXIT_STOPPED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The experiment file at `path`, with `overrides` applied and every default filled in, as
/// TOML: serialising the loaded configuration writes each key, defaults included, and
/// [`ExperimentConfig::fill_defaults`] writes out the optional tables' defaults too.
pub fn resolved_config(path: &Path, overrides: &[String]) -> Result<String> {
    let mut cfg = ExperimentConfig::load(path, overrides)?;
    cfg.fill_defaults();
    toml::to_string(&cfg).with_context(|| {
        format!(
            "cannot write the configuration of {} as TOML",
            path.display()
        )
    })
}

/// Entry point of `etf`.
pub fn main_with(cli: Cli) -> Result<()> {
    init_logging(&cli.log);
    match cli.command {
        Command::Run(a) => {
            run_experiment(&a.config, a.seed.map(|s| vec![s]), None, None, &a.common)
        }
        Command::Sweep(a) => {
            let shard = a.shard.as_deref().map(parse_shard).transpose()?;
            let seeds = a.seeds.as_deref().map(parse_seeds).transpose()?;
            let stack = a.stack.then_some(StackOptions {
                max_members: a.max_members,
                mode: a.stack_mode,
            });
            run_experiment(&a.config, seeds, shard, stack, &a.common)
        }
        Command::Compare {
            runs,
            partial,
            accuracy,
            columns,
            sort,
            layers_of,
            figures,
        } => compare(
            &runs,
            partial,
            &TableOptions {
                accuracy,
                columns,
                sort,
            },
            layers_of.as_deref(),
            figures,
        ),
        Command::Config { config, set } => {
            print!("{}", resolved_config(&config, &set)?);
            Ok(())
        }
        Command::Diagnose {
            checkpoint,
            data,
            data_root,
            dump_features,
            device,
        } => {
            let md = diagnose(&DiagnoseArgs {
                checkpoint,
                data,
                data_root,
                dump_features,
                device,
            })?;
            println!("{md}");
            Ok(())
        }
        Command::Inspect {
            config,
            variant,
            seed,
            set,
            json,
        } => crate::inspect::inspect(&config, variant, seed, &set, json),
    }
}

/// Arguments of a per-experiment binary: `etf run`'s options without the config path.
#[derive(Parser, Debug)]
struct ExperimentBin {
    /// Train this seed only (default: the config's `seeds`).
    #[arg(long)]
    seed: Option<u64>,
    /// Log level filter.
    #[arg(long, default_value = "info")]
    log: String,
    #[command(flatten)]
    common: CommonArgs,
}

/// Entry point of the per-experiment binaries (`cargo run --release --bin fashion-mlp`): the
/// same runner as `etf run experiments/<name>.toml`.
pub fn experiment_main(name: &str) -> Result<()> {
    let args = ExperimentBin::parse();
    init_logging(&args.log);
    let file = format!("experiments/{name}.toml");
    let local = PathBuf::from(&file);
    let config = if local.exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(&file)
    };
    run_experiment(
        &config,
        args.seed.map(|s| vec![s]),
        None,
        None,
        &args.common,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_shards_parse_or_explain() {
        assert_eq!(parse_seeds("0..3").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_seeds("4,1").unwrap(), vec![4, 1]);
        assert!(parse_seeds("3..3").is_err());
        assert!(format!("{:#}", parse_seeds("x").unwrap_err()).contains("--seeds"));
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("1").is_err());
    }

    #[test]
    fn compare_help_lists_every_column_key() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("compare")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        for key in crate::compare::column_keys() {
            assert!(
                help.contains(key),
                "`etf compare --help` lacks column {key}:\n{help}"
            );
        }
    }
}
