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

/// Finds every `summary.json` under the given paths (a run directory or any folder above runs).
/// With `unfinished`, a run directory holding a checkpoint but no summary yet (a run still
/// going, or stopped) counts too, summarised at its last completed epoch.
pub fn find_summaries(paths: &[PathBuf], unfinished: bool) -> Result<Vec<(PathBuf, RunSummary)>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.exists() {
            bail!("{}: no such run directory", p.display());
        }
        walk(p, unfinished, &mut out)?;
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(dir: &Path, unfinished: bool, out: &mut Vec<(PathBuf, RunSummary)>) -> Result<()> {
    let summary = dir.join(crate::run::SUMMARY);
    if summary.is_file() {
        let text = std::fs::read_to_string(&summary)
            .with_context(|| format!("cannot read {}", summary.display()))?;
        let s: RunSummary = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run summary", summary.display()))?;
        out.push((dir.to_path_buf(), s));
        return Ok(());
    }
    if unfinished && dir.join(crate::run::CHECKPOINT).is_file() {
        out.push((dir.to_path_buf(), unfinished_summary(dir)?));
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
            walk(&e, unfinished, out)?;
        }
    }
    Ok(())
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

fn table_head() -> String {
    let mut cols: Vec<String> = [
        "experiment",
        "variant",
        "seeds",
        "test acc (mean ± std)",
        "Δ vs baseline (pp)",
        "learnable params",
        "reduction",
        "eff. depth",
        "lock epochs",
    ]
    .map(String::from)
    .into();
    cols.extend(compared_figures().map(|(f, _)| format!("{} per layer", f.label)));
    cols.push("epoch time (s)".into());
    format!("| {} |\n|{}\n", cols.join(" | "), "---|".repeat(cols.len()))
}

/// Test accuracy `mean ± std %` and the difference to the baseline's mean, in points.
fn accuracy_cells(rows: &[&RunSummary], baseline: Option<&[&RunSummary]>) -> [String; 2] {
    let accs = |rs: &[&RunSummary]| rs.iter().map(|r| r.test_accuracy).collect::<Vec<_>>();
    let (m, sd) = mean_std(&accs(rows));
    let delta = baseline.map(|b| format!("{:+.2}", 100.0 * (m - mean_std(&accs(b)).0)));
    [
        format!("{:.2} ± {:.2} %", 100.0 * m, 100.0 * sd),
        delta.unwrap_or_else(|| "n/a".into()),
    ]
}

/// Mean learnable parameters and their reduction against the baseline's (or, without one,
/// against the runs' own total).
fn params_cells(rows: &[&RunSummary], baseline: Option<&[&RunSummary]>) -> [String; 2] {
    let learn = mean_of(rows, |r| r.learnable_params as f64);
    let base = baseline.map_or(rows[0].total_params as f64, |b| {
        b[0].learnable_params as f64
    });
    [
        format!("{learn:.0}"),
        format!("{:.1} %", 100.0 * (1.0 - learn / base.max(1.0))),
    ]
}

/// Each run's effective depth and lock epochs, `-` for none.
fn per_run_cells(rows: &[&RunSummary]) -> [String; 2] {
    let depth = |r: &&RunSummary| r.effective_depth.map_or("-".into(), |d| d.to_string());
    let locks = |r: &&RunSummary| {
        if r.lock_epochs.is_empty() {
            return "-".to_string();
        }
        let epochs: Vec<String> = r.lock_epochs.iter().map(|(e, _)| e.to_string()).collect();
        epochs.join("+")
    };
    let list = |f: &dyn Fn(&&RunSummary) -> String| rows.iter().map(f).collect::<Vec<_>>();
    [list(&depth).join(","), list(&locks).join(",")]
}

/// The table row of one experiment and variant.
fn group_row(
    key: &(String, String),
    rows: &[&RunSummary],
    baseline: Option<&[&RunSummary]>,
) -> String {
    let variant = match unfinished_note(rows) {
        Some(note) => format!("{} ({note})", key.1),
        None => key.1.clone(),
    };
    let seeds: Vec<String> = rows.iter().map(|r| r.head.seed.to_string()).collect();
    let mut cells = vec![key.0.clone(), variant, seeds.join(",")];
    cells.extend(accuracy_cells(rows, baseline));
    cells.extend(params_cells(rows, baseline));
    cells.extend(per_run_cells(rows));
    cells.extend(compared_figures().map(|(_, c)| fmt_list(&column_means(rows, c.summary), c.fmt)));
    cells.push(format!("{:.1}", mean_of(rows, |r| r.mean_epoch_seconds)));
    format!("| {} |\n", cells.join(" | "))
}

/// The comparison table in Markdown. Reductions are against the `baseline`-kind variant of the
/// same experiment (or, without one, against each run's own total parameter count).
pub fn compare_table(runs: &[(PathBuf, RunSummary)]) -> String {
    let (groups, order) = group_runs(runs);
    let mut md = table_head();
    for key in &order {
        let baseline = groups
            .iter()
            .find(|((e, _), rs)| e == &key.0 && rs[0].head.kind == VariantKind::Baseline)
            .map(|(_, rs)| rs.as_slice());
        md.push_str(&group_row(key, &groups[key], baseline));
    }
    if runs.iter().any(|(_, s)| s.unfinished_of.is_some()) {
        let _ = writeln!(
            md,
            "\nUnfinished runs are shown at their last completed epoch: not final results."
        );
    }
    md
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
            "| experiment | variant | seeds | test acc (mean ± std) | Δ vs baseline (pp) | learnable params | reduction | eff. depth | lock epochs | NCC train per layer | NCC test per layer | NC1 per layer | epoch time (s) |\n",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            "| demo | baseline | 0,1 | 56.25 ± 26.52 % | +0.00 | 1084 | 4.4 % | 2,- | 1,1+2 | 0.650 / 0.750 | 0.575 / 0.625 | 1.88e0 / 3.12e0 | 1.3 |\n",
            "| demo | adaptive (unfinished: epoch 1–2 of 5) | 0,1 | 56.25 ± 26.52 % | +0.00 | 1084 | 4.4 % | -,2 | 1+2,1 | 0.650 / 0.750 | 0.575 / 0.625 | 1.88e0 / 3.12e0 | 1.3 |\n",
            "\n",
            "Unfinished runs are shown at their last completed epoch: not final results.\n",
        );
        assert_eq!(md, expected);
    }
}
