//! What a run directory holds besides checkpoints: `metrics.csv`, `summary.json`, `report.md`.

use crate::config::{ExperimentConfig, VariantConfig, VariantKind};
use crate::figures::{
    self, ClassifierFigure, Fmt, LayerFigure, CLASSIFIER, LAYER, PLOT_FILES, W_ROWS,
};
use crate::io::write_atomic;
use anyhow::{Context, Result};
use collapse_metrics::ClassifierReport;
use etf_train::{EpochRecord, LayerRecord};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// The end state of one run (one variant, one seed), as `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    /// Which run this is (stored as top-level fields of `summary.json`).
    #[serde(flatten)]
    pub head: SummaryHead,
    /// Epochs run.
    pub epochs: usize,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Final training accuracy (as measured during the last epoch's steps).
    pub train_accuracy: f64,
    /// Final test loss.
    pub test_loss: f64,
    /// Best test accuracy over the epochs (for reference; the tables use the final one).
    pub best_test_accuracy: f64,
    /// Learnable parameters at the end.
    pub learnable_params: i64,
    /// All parameters (the learnable count of the same network unconstrained).
    pub total_params: i64,
    /// Effective depth at the end (first hidden layer with probe NCC ≥ τ).
    pub effective_depth: Option<usize>,
    /// Layers that are ETF maps at the end.
    pub locked_layers: Vec<String>,
    /// `(epoch, layers)` for every epoch that locked layers.
    pub lock_epochs: Vec<(usize, Vec<String>)>,
    /// What each lock of `lock_epochs` disrupted, in the same order (empty in summaries
    /// written before it was measured).
    #[serde(default)]
    pub lock_disruption: Vec<LockDisruption>,
    /// Hidden-layer names.
    pub layer_names: Vec<String>,
    /// Final training-probe NCC accuracy per hidden layer.
    pub ncc_train: Vec<f64>,
    /// Final test NCC accuracy per hidden layer.
    pub ncc_test: Vec<f64>,
    /// Final NC1 per hidden layer (probe set).
    pub nc1: Vec<f64>,
    /// Final NC1, NC3, NC4 of the classifier's input features.
    pub classifier_nc1: f64,
    /// NC3 of the classifier.
    pub classifier_nc3: Option<f64>,
    /// NC4 of the classifier.
    pub classifier_nc4: Option<f64>,
    /// Mean wall time of an epoch (training + measuring), seconds.
    pub mean_epoch_seconds: f64,
    /// Mean training throughput, samples per second.
    pub mean_samples_per_second: f64,
    /// Wall time of the whole run (all epochs, resumed ones included), seconds.
    pub total_seconds: f64,
    /// For an unfinished run read from its checkpoint (`etf compare --partial`): the epochs its
    /// configuration plans. Never stored: a `summary.json` is written only when a run ends.
    #[serde(skip)]
    pub unfinished_of: Option<usize>,
}

impl RunSummary {
    /// Builds the summary from the history of a finished run.
    pub fn from_history(head: SummaryHead, history: &[EpochRecord]) -> Result<Self> {
        let last = history.last().context("the run has no epochs")?;
        let lock_epochs = history
            .iter()
            .filter(|r| !r.newly_locked.is_empty())
            .map(|r| (r.epoch, r.newly_locked.clone()))
            .collect();
        let lock_disruption = history
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.newly_locked.is_empty())
            .map(|(i, r)| LockDisruption::of(r, &history[i + 1..]))
            .collect();
        let n = history.len() as f64;
        let total_seconds: f64 = history.iter().map(EpochRecord::epoch_seconds).sum();
        Ok(Self {
            head,
            epochs: history.len(),
            test_accuracy: last.test_accuracy,
            train_accuracy: last.train_accuracy,
            test_loss: last.test_loss,
            best_test_accuracy: history.iter().map(|r| r.test_accuracy).fold(0.0, f64::max),
            learnable_params: last.learnable_params,
            total_params: last.total_params,
            effective_depth: last.effective_depth,
            locked_layers: last.locked_layers.clone(),
            lock_epochs,
            lock_disruption,
            layer_names: last.layers.iter().map(|l| l.name.clone()).collect(),
            ncc_train: last.layers.iter().map(|l| l.train.ncc_accuracy).collect(),
            ncc_test: last.layers.iter().map(|l| l.test.ncc_accuracy).collect(),
            nc1: last.layers.iter().map(|l| l.train.nc1).collect(),
            classifier_nc1: last.classifier.train.nc1,
            classifier_nc3: last.classifier.train.classifier.as_ref().map(|c| c.nc3),
            classifier_nc4: last.classifier.train.classifier.as_ref().map(|c| c.nc4),
            mean_epoch_seconds: total_seconds / n,
            mean_samples_per_second: history.iter().map(|r| r.samples_per_second).sum::<f64>() / n,
            total_seconds,
            unfinished_of: None,
        })
    }
}

/// What one lock disrupted (algorithms.md §7): the probe-batch loss just before and just
/// after it, and how long the test accuracy took to get back to its level at the lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockDisruption {
    /// The epoch whose end locked.
    pub epoch: usize,
    /// Probe-batch loss (evaluation mode) just before the lock; `None` in records written
    /// before it was measured.
    pub loss_before: Option<f64>,
    /// The same loss just after it.
    pub loss_after: Option<f64>,
    /// Epochs after the lock until the test accuracy is at least its value at the lock
    /// epoch (measured before the lock); `None` if it never got back within the run.
    pub recovery_epochs: Option<usize>,
}

impl LockDisruption {
    /// The disruption of the lock at the end of `at`, with the epochs that followed it.
    pub fn of(at: &EpochRecord, after: &[EpochRecord]) -> Self {
        let recovery_epochs = after
            .iter()
            .position(|r| r.test_accuracy >= at.test_accuracy)
            .map(|i| i + 1);
        Self {
            epoch: at.epoch,
            loss_before: at.lock_loss_before,
            loss_after: at.lock_loss_after,
            recovery_epochs,
        }
    }

    /// `loss_after − loss_before`, when both were measured.
    pub fn jump(&self) -> Option<f64> {
        Some(self.loss_after? - self.loss_before?)
    }
}

/// The identifying fields of a [`RunSummary`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SummaryHead {
    /// Experiment name.
    pub experiment: String,
    /// Variant name.
    pub variant: String,
    /// Variant kind.
    pub kind: VariantKind,
    /// Seed.
    pub seed: u64,
    /// Data set name.
    pub dataset: String,
    /// Device it trained on (`cpu`, `cuda:0`).
    pub device: String,
}

impl SummaryHead {
    /// The head of the run of `variant` with `seed` in experiment `cfg`, on `device`.
    pub fn new(cfg: &ExperimentConfig, variant: &VariantConfig, seed: u64, device: String) -> Self {
        Self {
            experiment: cfg.name.clone(),
            variant: variant.name.clone(),
            kind: variant.kind,
            seed,
            dataset: cfg.data.dataset.to_string(),
            device,
        }
    }
}

/// `metrics.csv`: one row per epoch, one column per figure and layer (the columns of
/// [`figures::csv_columns`]).
pub fn metrics_csv(history: &[EpochRecord]) -> String {
    let Some(first) = history.first() else {
        return String::new();
    };
    let line = |cells: Vec<String>| cells.join(",") + "\n";
    let mut out = line(figures::csv_columns(first).map(|c| c.0).collect());
    for r in history {
        out.push_str(&line(figures::csv_columns(r).map(|c| c.1).collect()));
    }
    out
}

/// Writes `metrics.csv` atomically.
pub fn write_metrics_csv(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    write_atomic(&dir.join("metrics.csv"), metrics_csv(history).as_bytes())
}

/// A Markdown table of per-layer collapse figures (hidden layers, then the classifier's input)
/// with a locked column, followed by the classifier's NC2 of `W`, NC3 and NC4: the
/// [`figures::LAYER`] and [`figures::CLASSIFIER`] figures shown in the report.
pub fn collapse_table(
    layers: &[LayerRecord],
    classifier: &LayerRecord,
    locked: &[String],
) -> String {
    let shown: Vec<(&LayerFigure, Fmt)> = LAYER
        .iter()
        .filter_map(|f| f.report.map(|fmt| (f, fmt)))
        .collect();
    let labels: Vec<&str> = shown.iter().map(|(f, _)| f.label).collect();
    let mut md = format!("| layer | locked | {} |\n", labels.join(" | "));
    let _ = writeln!(md, "|---|---|{}", "---|".repeat(shown.len()));
    for l in layers.iter().chain([classifier]) {
        let lock = if row_is_locked(locked, &l.name) {
            "yes"
        } else {
            "no"
        };
        let cells: Vec<String> = shown
            .iter()
            .map(|(f, fmt)| (f.value)(l).format(*fmt))
            .collect();
        let _ = writeln!(md, "| {} | {lock} | {} |", l.name, cells.join(" | "));
    }
    if let Some(c) = &classifier.train.classifier {
        let _ = writeln!(md, "\n{}", classifier_sentence(c));
    }
    md
}

/// Whether the collapse table marks `layer`'s row as locked: a lock named by the layer or by a
/// part of it ([`etf_train::lock_belongs_to`]: `block2.ffn` locks the row `block2`).
fn row_is_locked(locked: &[String], layer: &str) -> bool {
    locked
        .iter()
        .any(|name| etf_train::lock_belongs_to(name, layer))
}

/// `Classifier W: equinorm …, …; NC3 …; NC4 ….`: the [`figures::CLASSIFIER`] figures shown in
/// the report, those of `W`'s rows together.
fn classifier_sentence(c: &ClassifierReport) -> String {
    let part = |f: &&ClassifierFigure| {
        f.report
            .map(|fmt| format!("{} {}", f.label, (f.value)(c).format(fmt)))
    };
    let (w, other): (Vec<&ClassifierFigure>, Vec<_>) =
        CLASSIFIER.iter().partition(|f| f.name.starts_with(W_ROWS));
    let w: Vec<String> = w.iter().filter_map(part).collect();
    let mut groups = Vec::new();
    if !w.is_empty() {
        groups.push(format!("W: {}", w.join(", ")));
    }
    groups.extend(other.iter().filter_map(part));
    format!("Classifier {}.", groups.join("; "))
}

/// The epoch (1-based, as `metrics.csv` numbers them) of the best test accuracy; the first
/// of equals, so a plateau names when it was reached.
fn best_epoch(history: &[EpochRecord]) -> Option<usize> {
    let best = history
        .iter()
        .map(|r| r.test_accuracy)
        .fold(f64::NAN, f64::max);
    history
        .iter()
        .find(|r| r.test_accuracy == best)
        .map(|r| r.epoch)
}

/// The `| figure | value |` table of `report.md`: the run's end state, each accuracy with
/// the epoch it is from.
fn end_state_table(s: &RunSummary, best: Option<usize>) -> String {
    let mut md = String::new();
    let best = best.map_or(String::new(), |e| format!(", epoch {e}"));
    let _ = writeln!(md, "| figure | value |\n|---|---|");
    let _ = writeln!(
        md,
        "| test accuracy (final, epoch {}) | {:.4} |",
        s.epochs, s.test_accuracy
    );
    let _ = writeln!(
        md,
        "| test accuracy (best{best}) | {:.4} |",
        s.best_test_accuracy
    );
    let _ = writeln!(
        md,
        "| train accuracy (final, epoch {}) | {:.4} |",
        s.epochs, s.train_accuracy
    );
    let _ = writeln!(
        md,
        "| learnable / total parameters | {} / {} ({:.1} % learnable) |",
        s.learnable_params,
        s.total_params,
        100.0 * s.learnable_params as f64 / s.total_params.max(1) as f64
    );
    let _ = writeln!(
        md,
        "| effective depth (τ) | {} |",
        s.effective_depth.map_or("none".into(), |d| d.to_string())
    );
    let locks: Vec<String> = s
        .lock_epochs
        .iter()
        .map(|(e, l)| format!("epoch {e}: {}", l.join(", ")))
        .collect();
    let _ = writeln!(
        md,
        "| locks | {} |",
        if locks.is_empty() {
            "none".into()
        } else {
            locks.join("; ")
        }
    );
    let _ = writeln!(md, "| mean epoch time | {:.2} s |", s.mean_epoch_seconds);
    let _ = writeln!(
        md,
        "| training throughput | {:.0} samples/s |\n",
        s.mean_samples_per_second
    );
    md
}

/// `report.md`: the run in a page a person reads.
pub fn report_markdown(s: &RunSummary, history: &[EpochRecord]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {} / {} (seed {})\n",
        s.head.experiment, s.head.variant, s.head.seed
    );
    let _ = writeln!(
        md,
        "Data set `{}`, device `{}`, {} epochs, {:.1} s in all.\n",
        s.head.dataset, s.head.device, s.epochs, s.total_seconds
    );
    md.push_str(&end_state_table(s, best_epoch(history)));
    if let Some(last) = history.last() {
        let _ = writeln!(md, "## Collapse per layer (final epoch)\n");
        md.push_str(&collapse_table(
            &last.layers,
            &last.classifier,
            &last.locked_layers,
        ));
    }
    let plots: Vec<String> = PLOT_FILES.iter().map(|(f, _)| format!("`{f}`")).collect();
    let _ = writeln!(
        md,
        "\nPlots: {}; per-epoch figures in `metrics.csv`.",
        plots.join(", ")
    );
    md
}

/// A small synthetic history shared by the output, plot and figure tests.
#[cfg(test)]
pub(crate) mod sample {
    use collapse_metrics::{ClassifierReport, CollapseReport, GlobalMean, Nc2};
    use etf_train::{EpochRecord, LayerRecord};

    fn report(x: f64, classifier: bool) -> CollapseReport {
        CollapseReport {
            global_mean: GlobalMean::Weighted,
            num_classes: 3,
            dim: 4,
            rank: 2,
            num_samples: 30,
            nc1: 1.25 * x,
            nc2: Nc2 {
                equinorm: 0.1 * x,
                equiangularity: 0.2 / x,
                max_angle: 0.3 + x,
                etf_error: 1.0 / 3.0 * x,
            },
            cdnv: 0.00123 * x,
            ncc_accuracy: 0.5 + 0.1 * x,
            within_trace: 2.0,
            between_trace: 3.0,
            class_variances: vec![1.0, 2.0, 3.0],
            class_counts: vec![10, 10, 10],
            classifier: classifier.then_some(ClassifierReport {
                nc2: Nc2 {
                    equinorm: 0.01 * x,
                    equiangularity: f64::NAN,
                    max_angle: 0.7,
                    etf_error: 0.123456789,
                },
                nc3: 0.55 * x,
                nc4: 0.125,
                accuracy: 0.9,
            }),
        }
    }

    fn layer(name: &str, x: f64, classifier: bool) -> LayerRecord {
        LayerRecord {
            name: name.into(),
            train: report(x, classifier),
            test: report(x / 2.0, classifier),
        }
    }

    /// Two epochs, two hidden layers: the first locks `hidden1` and has classifier figures,
    /// the second locks `hidden2` too and has neither classifier figures nor an effective depth.
    pub(crate) fn history() -> Vec<EpochRecord> {
        let epoch = |e: usize, x: f64, with_clf: bool| EpochRecord {
            epoch: e,
            lr: 0.05 / e as f64,
            train_loss: 1.5 / x,
            train_accuracy: 0.4 * x,
            test_loss: 1.75 / x,
            test_accuracy: 0.375 * x,
            learnable_params: 1234 - 100 * e as i64,
            total_params: 1234,
            optimizer_state_bytes: 4936,
            locked_layers: vec![],
            newly_locked: vec![],
            lock_loss_before: None,
            lock_loss_after: None,
            effective_depth: Some(2),
            layers: vec![layer("hidden1", x, false), layer("hidden2", x + 1.0, false)],
            classifier: layer("classifier", x + 2.0, with_clf),
            train_seconds: 1.23456,
            metrics_seconds: 0.1,
            samples_per_second: 4321.06,
        };
        let mut first = epoch(1, 1.0, true);
        first.locked_layers = vec!["hidden1".into()];
        first.newly_locked = vec!["hidden1".into()];
        first.lock_loss_before = Some(0.5);
        first.lock_loss_after = Some(2.25);
        let mut second = epoch(2, 2.0, false);
        second.locked_layers = vec!["hidden1".into(), "hidden2".into()];
        second.newly_locked = vec!["hidden2".into()];
        second.effective_depth = None;
        vec![first, second]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_disruption_counts_epochs_until_the_accuracy_is_back() {
        let h = sample::history();
        // The first epoch locked at 0.375; the second is back above it one epoch later.
        let d = LockDisruption::of(&h[0], &h[1..]);
        assert_eq!((d.epoch, d.recovery_epochs), (1, Some(1)));
        assert_eq!(d.jump(), Some(1.75));
        let mut worse = h[1].clone();
        worse.test_accuracy = 0.3;
        let mut back = h[1].clone();
        back.test_accuracy = 0.375;
        assert_eq!(
            LockDisruption::of(&h[0], &[worse.clone()]).recovery_epochs,
            None
        );
        let late = LockDisruption::of(&h[0], &[worse, back]);
        assert_eq!(late.recovery_epochs, Some(2));
        // The last epoch's lock has nothing after it; a record without losses has no jump.
        let last = LockDisruption::of(&h[1], &[]);
        assert_eq!((last.recovery_epochs, last.jump()), (None, None));
        let head = SummaryHead {
            experiment: "demo".into(),
            variant: "adaptive".into(),
            kind: VariantKind::Adaptive,
            seed: 0,
            dataset: "synthetic".into(),
            device: "cpu".into(),
        };
        let summary = RunSummary::from_history(head, &h).unwrap();
        assert_eq!(summary.lock_disruption, vec![d, last]);
    }

    #[test]
    fn metrics_csv_is_pinned() {
        let csv = metrics_csv(&sample::history());
        let expected = concat!(
            "epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,learnable_params,total_params,optimizer_state_bytes,effective_depth,locked_layers,newly_locked,lock_loss_before,lock_loss_after,train_seconds,metrics_seconds,samples_per_second,hidden1.ncc_train,hidden1.ncc_test,hidden1.nc1,hidden1.equinorm,hidden1.equiangularity,hidden1.max_angle,hidden1.etf_error,hidden1.cdnv,hidden2.ncc_train,hidden2.ncc_test,hidden2.nc1,hidden2.equinorm,hidden2.equiangularity,hidden2.max_angle,hidden2.etf_error,hidden2.cdnv,classifier.ncc_train,classifier.ncc_test,classifier.nc1,classifier.equinorm,classifier.equiangularity,classifier.max_angle,classifier.etf_error,classifier.cdnv,classifier.w_equinorm,classifier.w_equiangularity,classifier.w_max_angle,classifier.w_etf_error,classifier.nc3,classifier.nc4\n",
            "1,5e-2,1.5,0.4,1.75,0.375,1134,1234,4936,2,hidden1,hidden1,0.5,2.25,1.2346,0.1000,4321.1,0.6,0.55,1.25,0.1,0.2,1.3,0.3333333333333333,0.00123,0.7,0.6,2.5,0.2,0.1,2.3,0.6666666666666666,0.00246,0.8,0.65,3.75,0.30000000000000004,0.06666666666666667,3.3,1,0.0036899999999999997,0.03,NaN,0.7,0.123456789,1.6500000000000001,0.125\n",
            "2,2.5e-2,0.75,0.8,0.875,0.75,1034,1234,4936,,hidden1+hidden2,hidden2,,,1.2346,0.1000,4321.1,0.7,0.6,2.5,0.2,0.1,2.3,0.6666666666666666,0.00246,0.8,0.65,3.75,0.30000000000000004,0.06666666666666667,3.3,1,0.0036899999999999997,0.9,0.7,5,0.4,0.05,4.3,1.3333333333333333,0.00492,,,,,,\n",
        );
        assert_eq!(csv, expected);
    }

    #[test]
    fn collapse_table_is_pinned() {
        let h = sample::history();
        let with_clf = collapse_table(&h[0].layers, &h[0].classifier, &h[0].locked_layers);
        let without = collapse_table(&h[1].layers, &h[1].classifier, &h[1].locked_layers);
        let expected_with = concat!(
            "| layer | locked | NCC train | NCC test | NC1 | equinorm | equiangularity | max-angle | ETF error | CDNV |\n",
            "|---|---|---|---|---|---|---|---|---|---|\n",
            "| hidden1 | yes | 0.6000 | 0.5500 | 1.2500e0 | 0.1000 | 0.2000 | 1.3000 | 0.3333 | 1.2300e-3 |\n",
            "| hidden2 | no | 0.7000 | 0.6000 | 2.5000e0 | 0.2000 | 0.1000 | 2.3000 | 0.6667 | 2.4600e-3 |\n",
            "| classifier | no | 0.8000 | 0.6500 | 3.7500e0 | 0.3000 | 0.0667 | 3.3000 | 1.0000 | 3.6900e-3 |\n",
            "\n",
            "Classifier W: equinorm 0.0300, equiangularity NaN, max-angle 0.7000, ETF error 0.1235; NC3 1.6500; NC4 0.1250.\n",
        );
        let expected_without = concat!(
            "| layer | locked | NCC train | NCC test | NC1 | equinorm | equiangularity | max-angle | ETF error | CDNV |\n",
            "|---|---|---|---|---|---|---|---|---|---|\n",
            "| hidden1 | yes | 0.7000 | 0.6000 | 2.5000e0 | 0.2000 | 0.1000 | 2.3000 | 0.6667 | 2.4600e-3 |\n",
            "| hidden2 | yes | 0.8000 | 0.6500 | 3.7500e0 | 0.3000 | 0.0667 | 3.3000 | 1.0000 | 3.6900e-3 |\n",
            "| classifier | no | 0.9000 | 0.7000 | 5.0000e0 | 0.4000 | 0.0500 | 4.3000 | 1.3333 | 4.9200e-3 |\n",
        );
        assert_eq!(with_clf, expected_with);
        assert_eq!(without, expected_without);
    }

    #[test]
    fn report_markdown_is_pinned() {
        let head = SummaryHead {
            experiment: "demo".into(),
            variant: "adaptive".into(),
            kind: VariantKind::Adaptive,
            seed: 7,
            dataset: "synthetic".into(),
            device: "cpu".into(),
        };
        let h = sample::history();
        let md = report_markdown(&RunSummary::from_history(head, &h).unwrap(), &h);
        let expected = concat!(
            "# demo / adaptive (seed 7)\n",
            "\n",
            "Data set `synthetic`, device `cpu`, 2 epochs, 2.7 s in all.\n",
            "\n",
            "| figure | value |\n",
            "|---|---|\n",
            "| test accuracy (final, epoch 2) | 0.7500 |\n",
            "| test accuracy (best, epoch 2) | 0.7500 |\n",
            "| train accuracy (final, epoch 2) | 0.8000 |\n",
            "| learnable / total parameters | 1034 / 1234 (83.8 % learnable) |\n",
            "| effective depth (τ) | none |\n",
            "| locks | epoch 1: hidden1; epoch 2: hidden2 |\n",
            "| mean epoch time | 1.33 s |\n",
            "| training throughput | 4321 samples/s |\n",
            "\n",
            "## Collapse per layer (final epoch)\n",
            "\n",
            "| layer | locked | NCC train | NCC test | NC1 | equinorm | equiangularity | max-angle | ETF error | CDNV |\n",
            "|---|---|---|---|---|---|---|---|---|---|\n",
            "| hidden1 | yes | 0.7000 | 0.6000 | 2.5000e0 | 0.2000 | 0.1000 | 2.3000 | 0.6667 | 2.4600e-3 |\n",
            "| hidden2 | yes | 0.8000 | 0.6500 | 3.7500e0 | 0.3000 | 0.0667 | 3.3000 | 1.0000 | 3.6900e-3 |\n",
            "| classifier | no | 0.9000 | 0.7000 | 5.0000e0 | 0.4000 | 0.0500 | 4.3000 | 1.3333 | 4.9200e-3 |\n",
            "\n",
            "Plots: `accuracy.png`, `ncc.png`, `nc1.png`, `effective_depth.png`; per-epoch figures in `metrics.csv`.\n",
        );
        assert_eq!(md, expected);
    }
}
