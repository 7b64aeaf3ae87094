//! The per-epoch figures of a run, each declared once.
//!
//! Every figure is one entry of [`EPOCH`] (one value per epoch), [`LAYER`] (one per hidden
//! layer and the classifier's input) or [`CLASSIFIER`] (the classifier's own measures): its
//! `metrics.csv` column, its label, how to read it from the record, how the CSV writes it and
//! which other outputs show it. `metrics.csv`, the collapse table of `report.md`, the plots and
//! the per-layer columns of `etf compare` are all drawn from these lists, so a new figure is
//! one entry in one place.
//!
//! Only the `etf compare` columns need more: that table reads `summary.json`, not the history,
//! so a figure shown there needs its final values in [`RunSummary`] for
//! [`Figure::compare`]'s accessor to read.
//!
//! # Example
//! The within-class trace of each layer, as a CSV column (`hidden1.within_trace`, …) and a
//! column of the report's collapse table, would be this entry of [`LAYER`]:
//! ```
//! use etf_runner::figures::{Fmt, LayerFigure, Value};
//!
//! const WITHIN: LayerFigure =
//!     LayerFigure::new("within_trace", "tr(Σ_W)", |l| Value::Real(l.train.within_trace), Fmt::Plain)
//!         .report(Fmt::SciFixed(3));
//! assert_eq!(WITHIN.report, Some(Fmt::SciFixed(3)));
//! assert_eq!(Fmt::SciFixed(3).real(1234.5), "1.234e3");
//! ```

pub use crate::chart::YAxis;
use crate::output::RunSummary;
use collapse_metrics::ClassifierReport;
use etf_train::{EpochRecord, LayerRecord};

/// A figure's value in one record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A count (epoch, parameters, bytes, a layer number).
    Int(i64),
    /// A measured quantity.
    Real(f64),
    /// Not there this epoch (no layer reached τ): an empty CSV cell, a gap in a plot.
    Absent,
    /// Layer names, written joined by `+`.
    Names(&'a [String]),
}

impl Value<'_> {
    /// The value as text, reals in `fmt`.
    pub fn format(self, fmt: Fmt) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Real(x) => fmt.real(x),
            Value::Absent => String::new(),
            Value::Names(names) => names.join("+"),
        }
    }

    /// The value as a number to plot; names have none.
    pub fn number(self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(i as f64),
            Value::Real(x) => Some(x),
            Value::Absent | Value::Names(_) => None,
        }
    }
}

/// How a real number is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fmt {
    /// Rust's shortest round-trip form (`0.1`, `1.6500000000000001`, `NaN`).
    Plain,
    /// Scientific, shortest mantissa (`5e-2`).
    Sci,
    /// Fixed point with this many decimals.
    Fixed(usize),
    /// Scientific with this many decimals in the mantissa (`1.2500e0`).
    SciFixed(usize),
}

impl Fmt {
    /// `x` written in this format.
    pub fn real(self, x: f64) -> String {
        match self {
            Fmt::Plain => x.to_string(),
            Fmt::Sci => format!("{x:e}"),
            Fmt::Fixed(p) => format!("{x:.p$}"),
            Fmt::SciFixed(p) => format!("{x:.p$e}"),
        }
    }
}

/// A plot panel: one chart of the PNG files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    /// Training and test accuracy.
    Accuracy,
    /// Learnable parameters.
    Params,
    /// NCC accuracy per hidden layer.
    Ncc,
    /// NC1 per hidden layer.
    Nc1,
    /// Effective depth.
    Depth,
}

/// How a panel is drawn.
#[derive(Clone, Copy, Debug)]
pub struct PanelSpec {
    /// Caption; with `titled`, after the run's title and a colon.
    pub caption: &'static str,
    /// Whether the caption starts with the run's title.
    pub titled: bool,
    /// The y axis label, with its unit (`x` is always the epoch).
    pub y_desc: &'static str,
    /// The kind of y axis.
    pub y: YAxis,
    /// What the values are multiplied by for the axis (fractions to percent, counts to 10³).
    pub scale: f64,
}

impl Panel {
    /// How this panel is drawn.
    pub const fn spec(self) -> PanelSpec {
        let (caption, titled, y_desc, y, scale) = match self {
            Panel::Accuracy => ("accuracy", true, "accuracy (%)", YAxis::Linear, 100.0),
            Panel::Params => (
                "learnable parameters",
                false,
                "learnable parameters (×10³)",
                YAxis::Linear,
                1e-3,
            ),
            Panel::Ncc => (
                "NCC accuracy per layer",
                true,
                "NCC accuracy (%)",
                YAxis::Linear,
                100.0,
            ),
            Panel::Nc1 => (
                "NC1 per layer (probe set, log scale)",
                true,
                "NC1 (tr(Σ_W Σ_B⁺)/C)",
                YAxis::Log,
                1.0,
            ),
            Panel::Depth => ("effective depth", true, "layer", YAxis::Whole, 1.0),
        };
        PanelSpec {
            caption,
            titled,
            y_desc,
            y,
            scale,
        }
    }
}

/// The PNG files of a run directory and their panels, top to bottom.
pub const PLOT_FILES: &[(&str, &[Panel])] = &[
    ("accuracy.png", &[Panel::Accuracy, Panel::Params]),
    ("ncc.png", &[Panel::Ncc]),
    ("nc1.png", &[Panel::Nc1]),
    ("effective_depth.png", &[Panel::Depth]),
];

/// Where an absent value goes in a plot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absent {
    /// Left out (a gap).
    Gap,
    /// Drawn at `L + 1` for `L` hidden layers, above every real layer; the legend says so.
    AboveLayers,
}

/// A figure's line in a plot.
///
/// Lines of an [`EPOCH`] figure take colours in the order of the list; a [`LAYER`] figure
/// draws one line per hidden layer, coloured by layer; the legend names the layers, and a
/// panel with several layer figures names each one's line style by its `legend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// The panel it is drawn in.
    pub panel: Panel,
    /// Legend entry (for layer figures, a suffix to the layer's name).
    pub legend: &'static str,
    /// Dashed rather than solid.
    pub dashed: bool,
    /// Where absent values go.
    pub absent: Absent,
}

impl Line {
    /// A solid line in `panel`, absent values left out.
    pub const fn solid(panel: Panel, legend: &'static str) -> Self {
        Self {
            panel,
            legend,
            dashed: false,
            absent: Absent::Gap,
        }
    }

    /// The same line dashed.
    pub const fn dashed(self) -> Self {
        Self {
            dashed: true,
            ..self
        }
    }

    /// The same line with absent values drawn above the layers.
    pub const fn absent_above_layers(self) -> Self {
        Self {
            absent: Absent::AboveLayers,
            ..self
        }
    }
}

/// A per-layer column of `etf compare`: `{label} per layer`, the mean over seeds of each
/// layer's final value.
#[derive(Clone, Copy, Debug)]
pub struct Compare {
    /// How each layer's mean is written.
    pub fmt: Fmt,
    /// The final per-layer values in a run's summary.
    pub summary: fn(&RunSummary) -> &[f64],
}

/// One per-epoch figure, read from an `S` (an [`EpochRecord`], a [`LayerRecord`] or the
/// classifier's [`ClassifierReport`]).
pub struct Figure<S> {
    /// Column name in `metrics.csv` (per layer: after `{layer}.`; classifier: after
    /// `classifier.`).
    pub name: &'static str,
    /// What tables and legends call it, with the unit where it has one.
    pub label: &'static str,
    /// Its value in one record.
    pub value: fn(&S) -> Value<'_>,
    /// How `metrics.csv` writes it (every figure is in `metrics.csv`).
    pub csv: Fmt,
    /// Layer and classifier figures: shown in `report.md`'s collapse table, written so.
    pub report: Option<Fmt>,
    /// Epoch and layer figures: drawn in a plot.
    pub plot: Option<Line>,
    /// Layer figures: a column of `etf compare`.
    pub compare: Option<Compare>,
}

/// A figure with one value per epoch.
pub type EpochFigure = Figure<EpochRecord>;
/// A figure with one value per layer and epoch.
pub type LayerFigure = Figure<LayerRecord>;
/// A measure of the classifier, when the record has one.
pub type ClassifierFigure = Figure<ClassifierReport>;

impl<S> Figure<S> {
    /// A figure shown in `metrics.csv` only.
    pub const fn new(
        name: &'static str,
        label: &'static str,
        value: fn(&S) -> Value<'_>,
        csv: Fmt,
    ) -> Self {
        Self {
            name,
            label,
            value,
            csv,
            report: None,
            plot: None,
            compare: None,
        }
    }

    /// Also shown in `report.md`, written as `fmt`.
    pub const fn report(mut self, fmt: Fmt) -> Self {
        self.report = Some(fmt);
        self
    }

    /// Also drawn as `line`.
    pub const fn plot(mut self, line: Line) -> Self {
        self.plot = Some(line);
        self
    }

    /// Also a column of `etf compare`, from the final values `summary` reads.
    pub const fn compare(mut self, fmt: Fmt, summary: fn(&RunSummary) -> &[f64]) -> Self {
        self.compare = Some(Compare { fmt, summary });
        self
    }

    /// Its `metrics.csv` cell for `record`.
    pub fn cell(&self, record: &S) -> String {
        (self.value)(record).format(self.csv)
    }
}

/// Figures with one value per epoch, in `metrics.csv`'s order.
pub const EPOCH: &[EpochFigure] = &[
    EpochFigure::new("epoch", "epoch", |r| Value::Int(r.epoch as i64), Fmt::Plain),
    EpochFigure::new("lr", "learning rate", |r| Value::Real(r.lr), Fmt::Sci),
    EpochFigure::new(
        "train_loss",
        "train loss",
        |r| Value::Real(r.train_loss),
        Fmt::Plain,
    ),
    EpochFigure::new(
        "train_accuracy",
        "train accuracy",
        |r| Value::Real(r.train_accuracy),
        Fmt::Plain,
    )
    .plot(Line::solid(Panel::Accuracy, "train")),
    EpochFigure::new(
        "test_loss",
        "test loss",
        |r| Value::Real(r.test_loss),
        Fmt::Plain,
    ),
    EpochFigure::new(
        "test_accuracy",
        "test accuracy",
        |r| Value::Real(r.test_accuracy),
        Fmt::Plain,
    )
    .plot(Line::solid(Panel::Accuracy, "test")),
    EpochFigure::new(
        "learnable_params",
        "learnable parameters",
        |r| Value::Int(r.learnable_params),
        Fmt::Plain,
    )
    .plot(Line::solid(Panel::Params, "learnable parameters")),
    EpochFigure::new(
        "total_params",
        "total parameters",
        |r| Value::Int(r.total_params),
        Fmt::Plain,
    ),
    EpochFigure::new(
        "optimizer_state_bytes",
        "optimiser state (bytes)",
        |r| Value::Int(r.optimizer_state_bytes),
        Fmt::Plain,
    ),
    EpochFigure::new(
        "effective_depth",
        "effective depth (layer)",
        effective_depth,
        Fmt::Plain,
    )
    .plot(Line::solid(Panel::Depth, "effective depth").absent_above_layers()),
    EpochFigure::new(
        "locked_layers",
        "locked layers",
        |r| Value::Names(&r.locked_layers),
        Fmt::Plain,
    ),
    EpochFigure::new(
        "newly_locked",
        "newly locked",
        |r| Value::Names(&r.newly_locked),
        Fmt::Plain,
    ),
    EpochFigure::new(
        "lock_loss_before",
        "loss just before the lock",
        |r| r.lock_loss_before.map_or(Value::Absent, Value::Real),
        Fmt::Plain,
    ),
    EpochFigure::new(
        "lock_loss_after",
        "loss just after the lock",
        |r| r.lock_loss_after.map_or(Value::Absent, Value::Real),
        Fmt::Plain,
    ),
    EpochFigure::new(
        "train_seconds",
        "training time (s)",
        |r| Value::Real(r.train_seconds),
        Fmt::Fixed(4),
    ),
    EpochFigure::new(
        "metrics_seconds",
        "measuring time (s)",
        |r| Value::Real(r.metrics_seconds),
        Fmt::Fixed(4),
    ),
    EpochFigure::new(
        "samples_per_second",
        "throughput (samples/s)",
        |r| Value::Real(r.samples_per_second),
        Fmt::Fixed(1),
    ),
];

fn effective_depth(r: &EpochRecord) -> Value<'_> {
    r.effective_depth
        .map_or(Value::Absent, |d| Value::Int(d as i64))
}

/// Figures of each hidden layer and of the classifier's input, in `metrics.csv`'s order.
pub const LAYER: &[LayerFigure] = &[
    LayerFigure::new(
        "ncc_train",
        "NCC train",
        |l| Value::Real(l.train.ncc_accuracy),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4))
    .plot(Line::solid(Panel::Ncc, "train probe"))
    .compare(Fmt::Fixed(3), |s| &s.ncc_train),
    LayerFigure::new(
        "ncc_test",
        "NCC test",
        |l| Value::Real(l.test.ncc_accuracy),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4))
    .plot(Line::solid(Panel::Ncc, "test").dashed())
    .compare(Fmt::Fixed(3), |s| &s.ncc_test),
    LayerFigure::new("nc1", "NC1", |l| Value::Real(l.train.nc1), Fmt::Plain)
        .report(Fmt::SciFixed(4))
        .plot(Line::solid(Panel::Nc1, ""))
        .compare(Fmt::SciFixed(2), |s| &s.nc1),
    LayerFigure::new(
        "equinorm",
        "equinorm",
        |l| Value::Real(l.train.nc2.equinorm),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4)),
    LayerFigure::new(
        "equiangularity",
        "equiangularity",
        |l| Value::Real(l.train.nc2.equiangularity),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4)),
    LayerFigure::new(
        "max_angle",
        "max-angle",
        |l| Value::Real(l.train.nc2.max_angle),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4)),
    LayerFigure::new(
        "etf_error",
        "ETF error",
        |l| Value::Real(l.train.nc2.etf_error),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4)),
    LayerFigure::new("cdnv", "CDNV", |l| Value::Real(l.train.cdnv), Fmt::Plain)
        .report(Fmt::SciFixed(4)),
];

/// Name prefix of the [`CLASSIFIER`] figures that measure the rows of `W` (the report lists
/// them together).
pub const W_ROWS: &str = "w_";

/// The classifier's measures (empty CSV cells in an epoch without them), in `metrics.csv`'s
/// order.
pub const CLASSIFIER: &[ClassifierFigure] = &[
    ClassifierFigure::new(
        "w_equinorm",
        "equinorm",
        |c| Value::Real(c.nc2.equinorm),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4)),
    ClassifierFigure::new(
        "w_equiangularity",
        "equiangularity",
        |c| Value::Real(c.nc2.equiangularity),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4)),
    ClassifierFigure::new(
        "w_max_angle",
        "max-angle",
        |c| Value::Real(c.nc2.max_angle),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4)),
    ClassifierFigure::new(
        "w_etf_error",
        "ETF error",
        |c| Value::Real(c.nc2.etf_error),
        Fmt::Plain,
    )
    .report(Fmt::Fixed(4)),
    ClassifierFigure::new("nc3", "NC3", |c| Value::Real(c.nc3), Fmt::Plain).report(Fmt::Fixed(4)),
    ClassifierFigure::new("nc4", "NC4", |c| Value::Real(c.nc4), Fmt::Plain).report(Fmt::Fixed(4)),
];

/// The `metrics.csv` columns of `r` as `(name, cell)`: every [`EPOCH`] figure, every
/// [`LAYER`] figure of each hidden layer and the classifier's input, every [`CLASSIFIER`]
/// figure. Header and rows both come from here, so they cannot disagree.
pub fn csv_columns(r: &EpochRecord) -> impl Iterator<Item = (String, String)> + '_ {
    let epoch = EPOCH.iter().map(|f| (f.name.to_string(), f.cell(r)));
    let layers = r.layers.iter().chain([&r.classifier]).flat_map(|l| {
        LAYER
            .iter()
            .map(move |f| (format!("{}.{}", l.name, f.name), f.cell(l)))
    });
    let clf = r.classifier.train.classifier.as_ref();
    let classifier = CLASSIFIER.iter().map(move |f| {
        let cell = clf.map_or(String::new(), |c| f.cell(c));
        (format!("classifier.{}", f.name), cell)
    });
    epoch.chain(layers).chain(classifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_within_each_list() {
        let epoch: HashSet<_> = EPOCH.iter().map(|f| f.name).collect();
        let layer: HashSet<_> = LAYER.iter().map(|f| f.name).collect();
        let clf: HashSet<_> = CLASSIFIER.iter().map(|f| f.name).collect();
        assert_eq!(epoch.len(), EPOCH.len());
        assert_eq!(layer.len(), LAYER.len());
        assert_eq!(clf.len(), CLASSIFIER.len());
    }

    #[test]
    fn every_output_a_figure_asks_for_reads_it() {
        // Nothing draws classifier figures, nor puts epoch figures in report.md or compare.
        assert!(EPOCH
            .iter()
            .all(|f| f.report.is_none() && f.compare.is_none()));
        assert!(CLASSIFIER
            .iter()
            .all(|f| f.plot.is_none() && f.compare.is_none()));
    }

    #[test]
    fn every_panel_is_in_a_file_and_has_a_line() {
        let lines = EPOCH.iter().filter_map(|f| f.plot);
        let lines: Vec<Line> = lines.chain(LAYER.iter().filter_map(|f| f.plot)).collect();
        for (_, panels) in PLOT_FILES {
            for p in *panels {
                assert!(lines.iter().any(|l| l.panel == *p), "{p:?}");
            }
        }
        for l in &lines {
            assert!(PLOT_FILES.iter().any(|(_, ps)| ps.contains(&l.panel)));
        }
    }

    #[test]
    fn values_are_formatted_as_the_csv_always_was() {
        assert_eq!(Value::Real(0.05).format(Fmt::Sci), "5e-2");
        assert_eq!(Value::Real(1.23456).format(Fmt::Fixed(4)), "1.2346");
        assert_eq!(Value::Real(f64::NAN).format(Fmt::Plain), "NaN");
        assert_eq!(Value::Int(3).format(Fmt::Fixed(4)), "3");
        assert_eq!(Value::Absent.format(Fmt::Plain), "");
        let names = ["a".to_string(), "b".to_string()];
        assert_eq!(Value::Names(&names).format(Fmt::Plain), "a+b");
        assert_eq!(Value::Names(&names).number(), None);
    }

    #[test]
    fn header_and_cells_line_up() {
        let h = crate::output::sample::history();
        let n = csv_columns(&h[0]).count();
        assert_eq!(n, EPOCH.len() + 3 * LAYER.len() + CLASSIFIER.len());
        assert_eq!(csv_columns(&h[1]).count(), n);
    }
}
