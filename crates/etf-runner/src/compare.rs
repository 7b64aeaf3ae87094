//! `etf compare`: a side-by-side table of runs, grouped by experiment and variant; its
//! per-layer columns are the [`crate::figures::LAYER`] figures with a [`Compare`].

use crate::config::{ExperimentConfig, VariantKind};
use crate::figures::{Compare, Fmt, LayerFigure, LAYER};
use crate::job::Job;
use crate::output::{RunSummary, SummaryHead};
use anyhow::{bail, Context, Result};
use etf_train::Checkpoint;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The runs found under some paths, and the ones that could not be read.
#[derive(Debug, Default)]
pub struct Found {
    /// Each run directory found, once, with its summary, sorted by path.
    pub runs: Vec<(PathBuf, RunSummary)>,
    /// Run directories left out, each with why (an unreadable summary or config).
    pub skipped: Vec<(PathBuf, String)>,
}

impl Found {
    /// An error naming every skipped run, if there are any: called after the table and figures
    /// of the others are out, so one bad run costs its own row only, never silently.
    pub fn skipped_error(&self) -> Result<()> {
        if self.skipped.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = self
            .skipped
            .iter()
            .map(|(d, why)| format!("  {}: {why}", d.display()))
            .collect();
        bail!(
            "{} run(s) could not be read and were left out:\n{}",
            self.skipped.len(),
            list.join("\n")
        )
    }
}

/// Finds every `summary.json` under the given paths (a run directory or any folder above runs).
/// With `unfinished`, a run directory holding a checkpoint but no summary yet (a run still
/// going, or stopped) counts too, summarised at its last completed epoch.
///
/// Each directory is visited once, however often it is reached (the same path given twice,
/// a symbolic link to a folder already seen, a link loop). A run whose summary or
/// `config.toml` cannot be read is reported in [`Found::skipped`] and left out. Runs that share
/// an experiment and variant name but trained different configurations are told apart: their
/// variant is renamed after the keys that differ (`adaptive (model.width = 512)`), so they are
/// never averaged together.
pub fn find_summaries(paths: &[PathBuf], unfinished: bool) -> Result<Found> {
    let mut found = Found::default();
    let mut configs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in paths {
        if !p.exists() {
            bail!("{}: no such run directory", p.display());
        }
        walk(p, unfinished, &mut seen, &mut found, &mut configs)?;
    }
    distinguish(&mut found.runs, &configs);
    found.runs.sort_by(|a, b| a.0.cmp(&b.0));
    found.skipped.sort();
    Ok(found)
}

/// A run's configuration as flat `key = value` pairs, without the keys that do not change
/// what it trains or measures (where it ran, where the data lies, what else it writes).
type ConfigKeys = BTreeMap<String, String>;

/// Keys (or key prefixes ending in `.`) of a run's configuration left out of its identity.
const NOT_IDENTITY: &[&str] = &[
    "seeds",
    "description",
    "data.root",
    "train.device",
    "output.",
];

/// The identity of the run in `dir`: its `config.toml`'s values by key
/// ([`crate::config::key_values`]), less [`NOT_IDENTITY`].
fn config_keys(dir: &Path) -> Result<ConfigKeys> {
    let cfg = ExperimentConfig::load(&dir.join(crate::run::CONFIG), &[])?;
    let mut keys = crate::config::key_values(&cfg)?;
    keys.retain(|k, _| {
        !NOT_IDENTITY
            .iter()
            .any(|n| k == n || (n.ends_with('.') && k.starts_with(n)))
    });
    Ok(keys)
}

/// Renames the variant of runs that share `(experiment, variant)` with runs of another
/// configuration after the keys whose values differ among them, and warns that it did.
fn distinguish(runs: &mut [(PathBuf, RunSummary)], configs: &[ConfigKeys]) {
    let mut by_name: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, (_, s)) in runs.iter().enumerate() {
        let key = (s.head.experiment.clone(), s.head.variant.clone());
        by_name.entry(key).or_default().push(i);
    }
    for ((experiment, variant), members) in by_name {
        let distinct: std::collections::BTreeSet<&ConfigKeys> =
            members.iter().map(|&i| &configs[i]).collect();
        if distinct.len() < 2 {
            continue;
        }
        let keys: std::collections::BTreeSet<&String> =
            distinct.iter().flat_map(|c| c.keys()).collect();
        let differing: Vec<&String> = keys
            .into_iter()
            .filter(|k| {
                let values: std::collections::BTreeSet<Option<&String>> =
                    distinct.iter().map(|c| c.get(*k)).collect();
                values.len() > 1
            })
            .collect();
        tracing::warn!(
            "runs named {experiment}/{variant} trained {} different configurations (they differ \
             in {}): shown apart, never averaged",
            distinct.len(),
            differing
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for i in members {
            let values: Vec<String> = differing
                .iter()
                .map(|k| {
                    let v = configs[i].get(*k).map_or("(unset)", String::as_str);
                    format!("{k} = {v}")
                })
                .collect();
            runs[i].1.head.variant = format!("{variant} ({})", values.join(", "));
        }
    }
}

fn walk(
    dir: &Path,
    unfinished: bool,
    seen: &mut std::collections::HashSet<PathBuf>,
    found: &mut Found,
    configs: &mut Vec<ConfigKeys>,
) -> Result<()> {
    // The real path, so a folder reached twice (by a link, or given twice) counts once.
    let real =
        std::fs::canonicalize(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !seen.insert(real) {
        return Ok(());
    }
    let summary = dir.join(crate::run::SUMMARY);
    let read = if summary.is_file() {
        Some(read_summary(&summary))
    } else if unfinished && dir.join(crate::run::CHECKPOINT).is_file() {
        Some(unfinished_summary(dir))
    } else {
        None
    };
    if let Some(read) = read {
        match read.and_then(|s| Ok((s, config_keys(dir)?))) {
            Ok((s, keys)) => {
                found.runs.push((dir.to_path_buf(), s));
                configs.push(keys);
            }
            Err(e) => found.skipped.push((dir.to_path_buf(), format!("{e:#}"))),
        }
        return Ok(());
    }
    if dir.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, unfinished, seen, found, configs)?;
        }
    }
    Ok(())
}

fn read_summary(path: &Path) -> Result<RunSummary> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a run summary", path.display()))
}

/// The summary of an unfinished run at its last completed epoch, from the history its
/// checkpoint holds and the one variant and seed of its `config.toml`.
fn unfinished_summary(dir: &Path) -> Result<RunSummary> {
    let config = dir.join(crate::run::CONFIG);
    let job = Job::of_run(ExperimentConfig::load(&config, &[])?, &config)?;
    let cfg = &job.config;
    let state = Checkpoint::read(&dir.join(crate::run::CHECKPOINT))?.state;
    // The device it ran on is recorded only when a run ends; this is what it asked for.
    let device = format!("{:?}", cfg.train.device).to_lowercase();
    let head = SummaryHead::new(cfg, job.variant(), job.seed, device);
    let mut summary = RunSummary::from_history(head, &state.history)
        .with_context(|| format!("{}: unfinished run", dir.display()))?;
    summary.unfinished_of = Some(cfg.train.epochs);
    Ok(summary)
}

/// Mean and sample standard deviation.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n.max(1.0);
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Each value in `fmt`, joined by ` / `.
fn fmt_list(xs: &[f64], fmt: Fmt) -> String {
    xs.iter()
        .map(|&x| fmt.real(x))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Mean of each position over runs.
fn column_means(rows: &[&RunSummary], f: fn(&RunSummary) -> &[f64]) -> Vec<f64> {
    let n = rows.iter().map(|r| f(r).len()).min().unwrap_or(0);
    (0..n)
        .map(|i| rows.iter().map(|r| f(r)[i]).sum::<f64>() / rows.len() as f64)
        .collect()
}

fn mean_of(rows: &[&RunSummary], f: impl Fn(&RunSummary) -> f64) -> f64 {
    rows.iter().map(|r| f(r)).sum::<f64>() / rows.len() as f64
}

/// Runs of one experiment and variant.
type Groups<'r> = BTreeMap<(String, String), Vec<&'r RunSummary>>;

/// The runs grouped by experiment and variant, and the groups' order: baselines first, then
/// the other variants in the order they were found.
fn group_runs(runs: &[(PathBuf, RunSummary)]) -> (Groups<'_>, Vec<(String, String)>) {
    let mut groups = Groups::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for (_, s) in runs {
        let key = (s.head.experiment.clone(), s.head.variant.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(s);
    }
    order.sort_by_key(|k| groups[k][0].head.kind != VariantKind::Baseline);
    (groups, order)
}

/// The [`figures::LAYER`](crate::figures::LAYER) figures with a comparison column.
fn compared_figures() -> impl Iterator<Item = (&'static LayerFigure, Compare)> {
    LAYER.iter().filter_map(|f| f.compare.map(|c| (f, c)))
}

/// Which epoch's test accuracy the table shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AccuracyEpoch {
    /// Each run's last epoch (the result a run ends with).
    #[default]
    Final,
    /// Each run's best epoch: optimistic, since the test set picks the epoch.
    Best,
}

/// How `etf compare` lays the table out: which accuracy, which columns, which order.
#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    /// Final or best test accuracy (the accuracy and Δ columns).
    pub accuracy: AccuracyEpoch,
    /// Column keys to show, in this order ([`column_keys`]); empty: every column.
    pub columns: Vec<String>,
    /// `KEY`, `KEY:asc` or `KEY:desc`: the rows sorted by that column. Numbers sort
    /// descending and text ascending unless told; ties keep the default order.
    pub sort: Option<String>,
}

/// The short, stable keys of the table's columns, in the default order: what `--columns`
/// and `--sort` take.
///
/// ```
/// let keys = etf_runner::compare::column_keys();
/// assert_eq!(keys[..4], ["experiment", "variant", "seeds", "acc"]);
/// assert!(keys.contains(&"reduction") && keys.contains(&"ncc_test"));
/// ```
pub fn column_keys() -> Vec<&'static str> {
    let mut keys = vec![
        "experiment",
        "variant",
        "seeds",
        "acc",
        "delta",
        "params",
        "reduction",
        "depth",
        "locks",
        "jump",
        "recover",
    ];
    keys.extend(compared_figures().map(|(f, _)| f.name));
    keys.push("time");
    keys
}

/// The index of column `key`, or an error listing the known keys.
fn column_index(key: &str, flag: &str) -> Result<usize> {
    let keys = column_keys();
    keys.iter().position(|k| *k == key).with_context(|| {
        format!(
            "{flag}: unknown column {key:?} (the columns are: {})",
            keys.join(", ")
        )
    })
}

/// A table layout resolved to column indices: rendering it cannot fail.
struct Layout {
    accuracy: AccuracyEpoch,
    columns: Vec<usize>,
    /// The sort column and the order asked for (`None`: numbers descending, text ascending).
    sort: Option<(usize, Option<Order>)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Order {
    Asc,
    Desc,
}

impl Layout {
    /// Every column in the default order.
    fn all(accuracy: AccuracyEpoch) -> Self {
        Self {
            accuracy,
            columns: (0..column_keys().len()).collect(),
            sort: None,
        }
    }

    fn new(opts: &TableOptions) -> Result<Self> {
        let columns = if opts.columns.is_empty() {
            Self::all(opts.accuracy).columns
        } else {
            let keys = opts.columns.iter().map(|k| k.trim());
            keys.map(|k| column_index(k, "--columns"))
                .collect::<Result<_>>()?
        };
        let sort = match opts.sort.as_deref().map(str::trim) {
            None => None,
            Some(spec) => {
                let (key, order) = match spec.split_once(':') {
                    None => (spec, None),
                    Some((k, "asc")) => (k, Some(Order::Asc)),
                    Some((k, "desc")) => (k, Some(Order::Desc)),
                    Some((_, o)) => bail!("--sort {spec:?}: the order is asc or desc, not {o:?}"),
                };
                Some((column_index(key, "--sort")?, order))
            }
        };
        Ok(Self {
            accuracy: opts.accuracy,
            columns,
            sort,
        })
    }
}

/// One cell: its text and what it sorts by.
struct Cell {
    text: String,
    key: SortKey,
}

/// Numbers sort as numbers; text (names, lists) as text.
#[derive(PartialEq, PartialOrd)]
enum SortKey {
    Num(f64),
    Text(String),
}

impl Cell {
    fn num(text: String, x: f64) -> Self {
        Self {
            text,
            key: SortKey::Num(x),
        }
    }
    fn text(text: String) -> Self {
        Self {
            key: SortKey::Text(text.clone()),
            text,
        }
    }
}

/// `final epoch 5`, `final epoch 3–5` (runs that ran different epochs), or `best epoch`.
fn accuracy_epoch(runs: &[(PathBuf, RunSummary)], accuracy: AccuracyEpoch) -> String {
    if accuracy == AccuracyEpoch::Best {
        return "best epoch".into();
    }
    let epochs = runs.iter().map(|(_, r)| r.epochs);
    match (epochs.clone().min(), epochs.max()) {
        (Some(lo), Some(hi)) if lo != hi => format!("final epoch {lo}–{hi}"),
        (Some(n), _) => format!("final epoch {n}"),
        _ => "final epoch".into(),
    }
}

/// Every column's heading, in [`column_keys`] order.
fn column_heads(runs: &[(PathBuf, RunSummary)], accuracy: AccuracyEpoch) -> Vec<String> {
    let acc = format!("test acc, {} (mean ± std)", accuracy_epoch(runs, accuracy));
    let mut cols: Vec<String> = [
        "experiment",
        "variant",
        "seeds",
        &acc,
        "Δ vs baseline (pp, ± 2 SE)",
        "learnable params",
        "reduction",
        "eff. depth",
        "lock epochs",
        "first lock: probe loss before → after",
        "epochs to recover",
    ]
    .map(String::from)
    .into();
    cols.extend(compared_figures().map(|(f, _)| format!("{} per layer", f.label)));
    cols.push("epoch time (s)".into());
    cols
}

/// Test accuracy `mean ± std %` (`mean % (n = 1)` for one run: no spread to show) and the
/// difference to the baseline's mean, in points, with two standard errors of that difference
/// when both sides have two runs or more (`*` when the difference exceeds them).
fn accuracy_cells(
    rows: &[&RunSummary],
    baseline: Option<&[&RunSummary]>,
    accuracy: AccuracyEpoch,
) -> [Cell; 2] {
    let acc = |r: &&RunSummary| match accuracy {
        AccuracyEpoch::Final => r.test_accuracy,
        AccuracyEpoch::Best => r.best_test_accuracy,
    };
    let accs = |rs: &[&RunSummary]| rs.iter().map(acc).collect::<Vec<_>>();
    let (m, sd) = mean_std(&accs(rows));
    let text = if rows.len() == 1 {
        format!("{:.2} % (n = 1)", 100.0 * m)
    } else {
        format!("{:.2} ± {:.2} %", 100.0 * m, 100.0 * sd)
    };
    let delta = match baseline {
        Some(b) => {
            let (bm, bsd) = mean_std(&accs(b));
            let d = 100.0 * (m - bm);
            // Two standard errors of the difference of the means (Welch): a difference beyond
            // them is marked `*`, one within them is seed noise.
            let text = if rows.len() > 1 && b.len() > 1 {
                let se = (sd.powi(2) / rows.len() as f64 + bsd.powi(2) / b.len() as f64).sqrt();
                let two_se = 200.0 * se;
                let mark = if d.abs() > two_se { " *" } else { "" };
                format!("{d:+.2} ± {two_se:.2}{mark}")
            } else {
                format!("{d:+.2}")
            };
            Cell::num(text, d)
        }
        None => Cell::num("n/a".into(), f64::NEG_INFINITY),
    };
    [Cell::num(text, m), delta]
}

/// Mean learnable parameters and their reduction against the baseline's (or, without one,
/// against the runs' own total).
fn params_cells(rows: &[&RunSummary], baseline: Option<&[&RunSummary]>) -> [Cell; 2] {
    let learn = mean_of(rows, |r| r.learnable_params as f64);
    let base = baseline.map_or(rows[0].total_params as f64, |b| {
        b[0].learnable_params as f64
    });
    let reduction = 100.0 * (1.0 - learn / base.max(1.0));
    [
        Cell::num(format!("{learn:.0}"), learn),
        Cell::num(format!("{reduction:.1} %"), reduction),
    ]
}

/// Each run's effective depth and lock epochs, `-` for none; depth sorts by its mean over
/// the runs that reached one.
fn per_run_cells(rows: &[&RunSummary]) -> [Cell; 2] {
    let depth = |r: &&RunSummary| r.effective_depth.map_or("-".into(), |d| d.to_string());
    let locks = |r: &&RunSummary| {
        if r.lock_epochs.is_empty() {
            return "-".to_string();
        }
        let epochs: Vec<String> = r.lock_epochs.iter().map(|(e, _)| e.to_string()).collect();
        epochs.join("+")
    };
    let list = |f: &dyn Fn(&&RunSummary) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let depths: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.effective_depth.map(|d| d as f64))
        .collect();
    let mean_depth = if depths.is_empty() {
        f64::NEG_INFINITY
    } else {
        mean_std(&depths).0
    };
    [
        Cell::num(list(&depth).join(","), mean_depth),
        Cell::text(list(&locks).join(",")),
    ]
}

/// The disruption of each run's first lock (algorithms.md §7): the mean probe-batch loss
/// just before → just after it (sorting by the mean jump), and per run the epochs the test
/// accuracy took to get back to its level at the lock (`never` within the run, `not yet` in
/// an unfinished run, `-` no lock).
fn disruption_cells(rows: &[&RunSummary]) -> [Cell; 2] {
    let first: Vec<_> = rows
        .iter()
        .filter_map(|r| r.lock_disruption.first())
        .collect();
    let measured: Vec<(f64, f64)> = first
        .iter()
        .filter_map(|d| Some((d.loss_before?, d.loss_after?)))
        .collect();
    let jump = if measured.is_empty() {
        Cell::num("-".into(), f64::NEG_INFINITY)
    } else {
        let before = mean_std(&measured.iter().map(|m| m.0).collect::<Vec<_>>()).0;
        let after = mean_std(&measured.iter().map(|m| m.1).collect::<Vec<_>>()).0;
        Cell::num(format!("{before:.3} → {after:.3}"), after - before)
    };
    let recover = |r: &&RunSummary| match r.lock_disruption.first() {
        None => "-".to_string(),
        Some(d) => match (d.recovery_epochs, r.unfinished_of) {
            (Some(e), _) => e.to_string(),
            (None, Some(_)) => "not yet".into(),
            (None, None) => "never".into(),
        },
    };
    let epochs: Vec<f64> = first
        .iter()
        .map(|d| d.recovery_epochs.map_or(f64::INFINITY, |e| e as f64))
        .collect();
    let mean = if epochs.is_empty() {
        f64::NEG_INFINITY
    } else {
        mean_std(&epochs).0
    };
    let list: Vec<String> = rows.iter().map(recover).collect();
    [jump, Cell::num(list.join(","), mean)]
}

/// The cells of one experiment and variant, in [`column_keys`] order. A per-layer column
/// sorts by its last layer's mean, the layer before the classifier.
fn group_cells(
    key: &(String, String),
    rows: &[&RunSummary],
    baseline: Option<&[&RunSummary]>,
    accuracy: AccuracyEpoch,
) -> Vec<Cell> {
    let variant = match unfinished_note(rows) {
        Some(note) => format!("{} ({note})", key.1),
        None => key.1.clone(),
    };
    let seeds: Vec<String> = rows.iter().map(|r| r.head.seed.to_string()).collect();
    let mut cells = vec![
        Cell::text(key.0.clone()),
        Cell::text(variant),
        Cell::num(seeds.join(","), rows.len() as f64),
    ];
    cells.extend(accuracy_cells(rows, baseline, accuracy));
    cells.extend(params_cells(rows, baseline));
    cells.extend(per_run_cells(rows));
    cells.extend(disruption_cells(rows));
    cells.extend(compared_figures().map(|(_, c)| {
        let means = column_means(rows, c.summary);
        let last = means.last().copied().unwrap_or(f64::NEG_INFINITY);
        Cell::num(fmt_list(&means, c.fmt), last)
    }));
    let time = mean_of(rows, |r| r.mean_epoch_seconds);
    cells.push(Cell::num(format!("{time:.1}"), time));
    cells
}

/// The comparison table in Markdown, every column, final accuracy, the default order.
/// Reductions are against the `baseline`-kind variant of the same experiment (or, without
/// one, against each run's own total parameter count).
pub fn compare_table(runs: &[(PathBuf, RunSummary)]) -> String {
    render(runs, &Layout::all(AccuracyEpoch::Final))
}

/// The comparison table laid out as `opts` asks; an unknown column key is an error that
/// lists the known ones.
///
/// ```
/// use etf_runner::compare::{compare_table_with, TableOptions};
/// let opts = TableOptions { columns: vec!["nope".into()], ..Default::default() };
/// let err = compare_table_with(&[], &opts).unwrap_err().to_string();
/// assert!(err.contains("nope") && err.contains("reduction"));
/// ```
pub fn compare_table_with(runs: &[(PathBuf, RunSummary)], opts: &TableOptions) -> Result<String> {
    Ok(render(runs, &Layout::new(opts)?))
}

fn render(runs: &[(PathBuf, RunSummary)], layout: &Layout) -> String {
    let (groups, order) = group_runs(runs);
    let mut rows: Vec<Vec<Cell>> = order
        .iter()
        .map(|key| {
            let baseline = groups
                .iter()
                .find(|((e, _), rs)| e == &key.0 && rs[0].head.kind == VariantKind::Baseline)
                .map(|(_, rs)| rs.as_slice());
            group_cells(key, &groups[key], baseline, layout.accuracy)
        })
        .collect();
    if let Some((i, order)) = layout.sort {
        sort_rows(&mut rows, i, order);
    }
    let heads = column_heads(runs, layout.accuracy);
    let mut md = format!(
        "| {} |\n|{}\n",
        pick(&layout.columns, &heads, |h| h.as_str()),
        "---|".repeat(layout.columns.len())
    );
    for row in &rows {
        let _ = writeln!(
            md,
            "| {} |",
            pick(&layout.columns, row, |c| c.text.as_str())
        );
    }
    if runs.iter().any(|(_, s)| s.unfinished_of.is_some()) {
        let _ = writeln!(
            md,
            "\nUnfinished runs are shown at their last completed epoch: not final results."
        );
    }
    md
}

/// The `columns` of `cells`, joined into a Markdown row's inside.
fn pick<T>(columns: &[usize], cells: &[T], text: impl Fn(&T) -> &str) -> String {
    let picked: Vec<&str> = columns.iter().map(|&i| text(&cells[i])).collect();
    picked.join(" | ")
}

/// Sorts rows by column `i`, stably; without an `order`, numbers descending (accuracy and
/// reduction read best first) and text ascending (names read A to Z).
fn sort_rows(rows: &mut [Vec<Cell>], i: usize, order: Option<Order>) {
    let text = matches!(rows.first().map(|r| &r[i].key), Some(SortKey::Text(_)));
    let order = order.unwrap_or(if text { Order::Asc } else { Order::Desc });
    rows.sort_by(|a, b| {
        let ord = a[i]
            .key
            .partial_cmp(&b[i].key)
            .unwrap_or(std::cmp::Ordering::Equal);
        match order {
            Order::Asc => ord,
            Order::Desc => ord.reverse(),
        }
    });
}

/// `unfinished: epoch 59–62 of 400` when some runs of a group have not ended, else `None`.
fn unfinished_note(rows: &[&RunSummary]) -> Option<String> {
    let planned = rows.iter().find_map(|r| r.unfinished_of)?;
    let done = |r: &&RunSummary| r.epochs;
    let (lo, hi) = (rows.iter().map(done).min()?, rows.iter().map(done).max()?);
    let span = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    };
    Some(format!("unfinished: epoch {span} of {planned}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::sample;

    fn summary(variant: &str, kind: VariantKind, seed: u64, epochs: usize) -> RunSummary {
        let head = SummaryHead {
            experiment: "demo".into(),
            variant: variant.into(),
            kind,
            seed,
            dataset: "synthetic".into(),
            device: "cpu".into(),
        };
        RunSummary::from_history(head, &sample::history()[..epochs]).unwrap()
    }

    #[test]
    fn compare_table_is_pinned() {
        let mut unfinished = summary("adaptive", VariantKind::Adaptive, 1, 1);
        unfinished.unfinished_of = Some(5);
        let runs: Vec<(PathBuf, RunSummary)> = [
            summary("adaptive", VariantKind::Adaptive, 0, 2),
            unfinished,
            summary("baseline", VariantKind::Baseline, 0, 1),
            summary("baseline", VariantKind::Baseline, 1, 2),
        ]
        .into_iter()
        .map(|s| (PathBuf::new(), s))
        .collect();
        let md = compare_table(&runs);
        let expected = concat!(
            "| experiment | variant | seeds | test acc, final epoch 1–2 (mean ± std) | Δ vs baseline (pp, ± 2 SE) | learnable params | reduction | eff. depth | lock epochs | first lock: probe loss before → after | epochs to recover | NCC train per layer | NCC test per layer | NC1 per layer | epoch time (s) |\n",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            "| demo | baseline | 0,1 | 56.25 ± 26.52 % | +0.00 ± 53.03 | 1084 | 4.4 % | 2,- | 1,1+2 | 0.500 → 2.250 | never,1 | 0.650 / 0.750 | 0.575 / 0.625 | 1.88e0 / 3.12e0 | 1.3 |\n",
            "| demo | adaptive (unfinished: epoch 1–2 of 5) | 0,1 | 56.25 ± 26.52 % | +0.00 ± 53.03 | 1084 | 4.4 % | -,2 | 1+2,1 | 0.500 → 2.250 | 1,not yet | 0.650 / 0.750 | 0.575 / 0.625 | 1.88e0 / 3.12e0 | 1.3 |\n",
            "\n",
            "Unfinished runs are shown at their last completed epoch: not final results.\n",
        );
        assert_eq!(md, expected);
    }

    fn finished(seeds: &[u64]) -> Vec<(PathBuf, RunSummary)> {
        let mut runs = Vec::new();
        for &seed in seeds {
            runs.push(summary("baseline", VariantKind::Baseline, seed, 2));
            let mut adaptive = summary("adaptive", VariantKind::Adaptive, seed, 2);
            adaptive.test_accuracy = 0.9;
            adaptive.learnable_params = 500;
            runs.push(adaptive);
        }
        runs.into_iter().map(|s| (PathBuf::new(), s)).collect()
    }

    #[test]
    fn one_seed_has_no_spread_and_the_epoch_is_named() {
        let md = compare_table(&finished(&[0]));
        assert!(!md.contains("± 0.00"), "{md}");
        assert!(md.contains("| 75.00 % (n = 1) |"), "{md}");
        assert!(md.contains("test acc, final epoch 2 (mean ± std)"), "{md}");
        let best = TableOptions {
            accuracy: AccuracyEpoch::Best,
            ..Default::default()
        };
        let md = compare_table_with(&finished(&[0, 1]), &best).unwrap();
        assert!(md.contains("test acc, best epoch (mean ± std)"), "{md}");
        assert!(md.contains("| 75.00 ± 0.00 % |"), "{md}");
    }

    #[test]
    fn a_difference_beyond_two_standard_errors_is_marked() {
        // No spread on either side: any difference is beyond it; one seed has no error at all.
        let md = compare_table(&finished(&[0, 1]));
        assert!(md.contains("| +15.00 ± 0.00 * |"), "{md}");
        let md = compare_table(&finished(&[0]));
        assert!(md.contains("| +15.00 |"), "{md}");
        // Spread larger than the difference: noise, no mark.
        let mut runs = finished(&[0, 1, 2]);
        for (i, (_, r)) in runs.iter_mut().enumerate() {
            if r.head.kind == VariantKind::Adaptive {
                r.test_accuracy = [0.6, 0.9, 1.0][i / 2];
            }
        }
        let md = compare_table(&runs);
        let row = md.lines().find(|l| l.contains("| adaptive |")).unwrap();
        assert!(row.contains("| +8.33 ± 24.04 |"), "{row}");
    }

    #[test]
    fn columns_are_selected_and_rows_sorted() {
        let runs = finished(&[0, 1]);
        let opts = |columns: &[&str], sort: Option<&str>| TableOptions {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            sort: sort.map(String::from),
            ..Default::default()
        };
        let md = compare_table_with(&runs, &opts(&["variant", "acc", "reduction"], None)).unwrap();
        let expected = concat!(
            "| variant | test acc, final epoch 2 (mean ± std) | reduction |\n",
            "|---|---|---|\n",
            "| baseline | 75.00 ± 0.00 % | 0.0 % |\n",
            "| adaptive | 90.00 ± 0.00 % | 51.6 % |\n",
        );
        assert_eq!(md, expected);
        let order = |sort: &str| {
            let md = compare_table_with(&runs, &opts(&["variant"], Some(sort))).unwrap();
            md.lines().skip(2).collect::<Vec<_>>().join(" ")
        };
        // Accuracy and reduction read best first; names A to Z; `:asc`/`:desc` override.
        assert_eq!(order("acc"), "| adaptive | | baseline |");
        assert_eq!(order("reduction"), "| adaptive | | baseline |");
        assert_eq!(order("acc:asc"), "| baseline | | adaptive |");
        assert_eq!(order("variant"), "| adaptive | | baseline |");
        assert_eq!(order("variant:desc"), "| baseline | | adaptive |");
        assert_eq!(order("params"), "| baseline | | adaptive |");
    }

    #[test]
    fn unknown_column_keys_are_errors_listing_the_keys() {
        let runs = finished(&[0]);
        for opts in [
            TableOptions {
                columns: vec!["acc".into(), "accuracy".into()],
                ..Default::default()
            },
            TableOptions {
                sort: Some("accuracy".into()),
                ..Default::default()
            },
        ] {
            let err = format!("{:#}", compare_table_with(&runs, &opts).unwrap_err());
            assert!(err.contains("\"accuracy\""), "{err}");
            for key in column_keys() {
                assert!(err.contains(key), "{err} lacks {key}");
            }
        }
        let bad_order = TableOptions {
            sort: Some("acc:up".into()),
            ..Default::default()
        };
        assert!(compare_table_with(&runs, &bad_order).is_err());
    }
}
