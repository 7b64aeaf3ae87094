//! Figures of `etf compare`: the compared runs' `metrics.csv` histories, variants overlaid,
//! each drawn as the mean over its seeds with a ± one standard deviation band, written as PNG
//! and SVG beside `comparison.md`.
//!
//! Every figure is sized for one paper column (1050 × 750 px, 3.5 in at 300 dpi) with fonts of
//! at least 28 px, Okabe–Ito colours (safe for colour-blind readers) given to the variants in
//! sorted order with the baseline first, so a variant has one colour in every figure, and the
//! legend in a strip above the data, never over it.
//!
//! # Example
//! ```
//! use etf_runner::compare_figures::{band, Metrics};
//! use std::path::Path;
//!
//! let csv = "epoch,train_loss\n1,0.5\n2,0.25\n";
//! let m = Metrics::parse(Path::new("metrics.csv"), csv).unwrap();
//! assert_eq!(m.column("train_loss").unwrap(), vec![0.5, 0.25]);
//! // Two seeds: mean and sample standard deviation per epoch.
//! let b = band(&[vec![1.0, 2.0], vec![3.0, 2.0]]);
//! assert_eq!(b.mean, vec![2.0, 2.0]);
//! assert_eq!(b.std[1], 0.0);
//! ```

pub use crate::chart::Band;
use crate::chart::{
    style_entry, write_figure, ChartSpec, Curve, Entry, FigureSpec, Point, ScatterSpec, YAxis,
    OKABE_ITO, SIZE,
};
use crate::compare::mean_std;
use crate::config::VariantKind;
use crate::output::RunSummary;
use anyhow::{anyhow, bail, Context, Result};
use plotters::style::{RGBColor, WHITE};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A run's `metrics.csv`: the header and the cells of each row, as text.
#[derive(Clone, Debug)]
pub struct Metrics {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Metrics {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(path, &text)
    }

    /// Parses `text`, the contents of `path` (named in errors): a header line, then rows with
    /// as many comma-separated cells as it has.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut lines = text.lines();
        let header: Vec<String> = match lines.next() {
            Some(h) if !h.trim().is_empty() => h.split(',').map(str::to_string).collect(),
            _ => bail!("{}:1: no header line", path.display()),
        };
        let mut rows = Vec::new();
        for (i, line) in lines.enumerate() {
            let cells: Vec<String> = line.split(',').map(str::to_string).collect();
            if cells.len() != header.len() {
                bail!(
                    "{}:{}: {} cells, but the header has {} columns",
                    path.display(),
                    i + 2,
                    cells.len(),
                    header.len()
                );
            }
            rows.push(cells);
        }
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| anyhow!("{}: no column `{name}`", self.path.display()))
    }

    /// The column `name` as numbers, one per row; an empty cell is `NaN` (absent).
    pub fn column(&self, name: &str) -> Result<Vec<f64>> {
        let c = self.index(name)?;
        let parse = |(i, row): (usize, &Vec<String>)| {
            let cell = row[c].trim();
            if cell.is_empty() {
                return Ok(f64::NAN);
            }
            cell.parse::<f64>().map_err(|_| {
                anyhow!(
                    "{}:{}: column {} (`{name}`): `{cell}` is not a number",
                    self.path.display(),
                    i + 2,
                    c + 1
                )
            })
        };
        self.rows.iter().enumerate().map(parse).collect()
    }

    /// The column `name` as text, one cell per row.
    pub fn text(&self, name: &str) -> Result<Vec<&str>> {
        let c = self.index(name)?;
        Ok(self.rows.iter().map(|r| r[c].as_str()).collect())
    }

    /// The layers with an NCC column, in the file's order (the hidden layers, then the
    /// classifier's input).
    pub fn layers(&self) -> Vec<String> {
        let names = self.header.iter();
        names
            .filter_map(|h| h.strip_suffix(".ncc_train").map(str::to_string))
            .collect()
    }
}

/// The band of `series` (one per seed), as long as the longest; a position counts only the
/// seeds with a finite value there, so a shorter (unfinished) run does not drag the mean.
pub fn band(series: &[Vec<f64>]) -> Band {
    let n = series.iter().map(Vec::len).max().unwrap_or(0);
    let (mean, std) = (0..n)
        .map(|i| {
            let xs: Vec<f64> = series
                .iter()
                .filter_map(|s| s.get(i).copied())
                .filter(|x| x.is_finite())
                .collect();
            if xs.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                mean_std(&xs)
            }
        })
        .unzip();
    Band { mean, std }
}

/// The runs of one variant.
struct Group {
    label: String,
    color: RGBColor,
    /// The second round of the palette (variants 9–16) is drawn dashed in the per-epoch
    /// figures, so that no two variants look alike there.
    dashed: bool,
    runs: Vec<Metrics>,
}

/// The runs grouped by variant (by `experiment: variant` when several experiments are
/// compared), baselines first and then by name, each with its colour. Runs without a
/// readable `metrics.csv` are left out with a warning.
fn groups(runs: &[(PathBuf, RunSummary)]) -> Vec<Group> {
    let experiments: std::collections::BTreeSet<&str> = runs
        .iter()
        .map(|(_, s)| s.head.experiment.as_str())
        .collect();
    let mut by: BTreeMap<(bool, String), Vec<Metrics>> = BTreeMap::new();
    for (dir, s) in runs {
        let path = dir.join("metrics.csv");
        if !path.is_file() {
            tracing::warn!(run = %dir.display(), "no metrics.csv: left out of the figures");
            continue;
        }
        let label = if experiments.len() > 1 {
            format!("{}: {}", s.head.experiment, s.head.variant)
        } else {
            s.head.variant.clone()
        };
        let key = (s.head.kind != VariantKind::Baseline, label);
        match Metrics::read(&path) {
            Ok(m) => by.entry(key).or_default().push(m),
            Err(e) => tracing::warn!(run = %dir.display(), "left out of the figures: {e:#}"),
        }
    }
    let colored = by
        .into_iter()
        .enumerate()
        .map(|(i, ((_, label), runs))| Group {
            label,
            color: OKABE_ITO[i % OKABE_ITO.len()],
            dashed: (i / OKABE_ITO.len()) % 2 == 1,
            runs,
        });
    colored.collect()
}

impl Group {
    /// The band of column `name` over this variant's seeds, scaled by `scale`.
    fn band(&self, name: &str, scale: f64) -> Result<Band> {
        let series: Vec<Vec<f64>> = self
            .runs
            .iter()
            .map(|m| Ok(m.column(name)?.iter().map(|v| v * scale).collect()))
            .collect::<Result<_>>()?;
        Ok(band(&series))
    }

    /// The final value of `{layer}.{figure}` for each layer, as one series per seed.
    fn final_per_layer(&self, figure: &str, scale: f64) -> Result<Band> {
        let mut series = Vec::new();
        for m in &self.runs {
            let per_layer = m.layers().into_iter().map(|l| {
                let col = m.column(&format!("{l}.{figure}"))?;
                Ok(col.last().copied().unwrap_or(f64::NAN) * scale)
            });
            series.push(per_layer.collect::<Result<Vec<f64>>>()?);
        }
        Ok(band(&series))
    }

    /// Epochs at which any seed locked a layer (`newly_locked` not empty), or `layer` only.
    fn lock_epochs(&self, layer: Option<&str>) -> Result<Vec<usize>> {
        let mut epochs = std::collections::BTreeSet::new();
        for m in &self.runs {
            for (i, cell) in m.text("newly_locked")?.iter().enumerate() {
                let hit = match layer {
                    Some(l) => cell.split('+').any(|n| n == l),
                    None => !cell.is_empty(),
                };
                if hit {
                    epochs.insert(i + 1);
                }
            }
        }
        Ok(epochs.into_iter().collect())
    }
}

impl Group {
    /// Each seed's value of column `name` at its last epoch, × `scale`.
    fn finals(&self, name: &str, scale: f64) -> Result<Vec<f64>> {
        let last = |m: &Metrics| Ok(m.column(name)?.last().copied().unwrap_or(f64::NAN) * scale);
        self.runs.iter().map(last).collect()
    }
}

/// Final test accuracy against the learnable-parameter reduction (against the same network
/// unconstrained, its total count), one labelled point per variant with ± 1 std bars, the
/// Pareto front dashed and ringed: what a variant buys for the parameters it saves.
fn tradeoff_figure(groups: &[Group]) -> Result<ScatterSpec> {
    let mut points = Vec::new();
    for g in groups {
        let learnable = g.finals("learnable_params", 1.0)?;
        let total = g.finals("total_params", 1.0)?;
        let reduction: Vec<f64> = learnable
            .iter()
            .zip(&total)
            .map(|(l, t)| 100.0 * (1.0 - l / t.max(1.0)))
            .collect();
        points.push(Point {
            label: g.label.clone(),
            color: g.color,
            x: mean_std(&reduction),
            y: mean_std(&g.finals("test_accuracy", 100.0)?),
        });
    }
    let mut legend = vec![Entry {
        mark: false,
        ..style_entry("Pareto front (ringed)", true, false)
    }];
    if groups.iter().any(|g| g.runs.len() > 1) {
        legend.push(style_entry("bars: ± 1 std over seeds", false, false));
    } else {
        legend.push(Entry {
            color: WHITE,
            ..style_entry("(1 seed: no bars)", false, false)
        });
    }
    Ok(ScatterSpec {
        stem: "accuracy_vs_reduction".into(),
        // Wider than a column: a label beside every point.
        size: (1500, 1050),
        title: "Accuracy against parameters saved".into(),
        x_desc: "learnable-parameter reduction (%)".into(),
        y_desc: "final test accuracy (%)".into(),
        points,
        legend,
    })
}

fn variant_entries(groups: &[Group]) -> Vec<Entry> {
    let entry = |g: &Group| Entry {
        text: g.label.clone(),
        color: g.color,
        dashed: g.dashed,
        mark: false,
        swatch: false,
    };
    groups.iter().map(entry).collect()
}

/// The variants, then what the shaded band is, or that there is none (one seed each).
fn band_legend(groups: &[Group]) -> Vec<Entry> {
    let mut legend = variant_entries(groups);
    if groups.iter().any(|g| g.runs.len() > 1) {
        legend.push(Entry {
            swatch: true,
            ..style_entry("± 1 std over seeds", false, false)
        });
    } else {
        // A reader would otherwise look for a spread that one seed cannot have.
        legend.push(Entry {
            color: WHITE,
            ..style_entry("(1 seed: no band)", false, false)
        });
    }
    legend
}

/// A chart with one curve per variant of column `column` (× `scale`).
fn epoch_chart(groups: &[Group], column: &str, scale: f64, y_desc: &str) -> Result<ChartSpec> {
    let curves = groups.iter().map(|g| {
        Ok(Curve {
            color: g.color,
            dashed: g.dashed,
            steps: false,
            markers: false,
            band: g.band(column, scale)?,
            marks: Vec::new(),
        })
    });
    Ok(ChartSpec {
        title: String::new(),
        x_desc: "epoch".into(),
        y_desc: y_desc.into(),
        y: YAxis::Linear,
        curves: curves.collect::<Result<_>>()?,
    })
}

fn single(stem: &str, title: &str, chart: ChartSpec, legend: Vec<Entry>) -> FigureSpec {
    FigureSpec {
        stem: stem.into(),
        size: SIZE,
        cols: 1,
        charts: vec![ChartSpec {
            title: title.into(),
            ..chart
        }],
        legend,
    }
}

/// The per-epoch figures: test and train accuracy, learnable parameters, training loss.
fn epoch_figures(groups: &[Group]) -> Result<Vec<FigureSpec>> {
    let test = epoch_chart(groups, "test_accuracy", 100.0, "test accuracy (%)")?;
    let train = epoch_chart(groups, "train_accuracy", 100.0, "train accuracy (%)")?;
    let mut params = epoch_chart(
        groups,
        "learnable_params",
        1e-3,
        "learnable parameters (×10³)",
    )?;
    for (c, g) in params.curves.iter_mut().zip(groups) {
        c.steps = true;
        c.marks = g.lock_epochs(None)?;
    }
    let mut params_legend = variant_entries(groups);
    params_legend.push(style_entry("layer locked", false, true));
    let mut loss = epoch_chart(groups, "train_loss", 1.0, "training loss (cross-entropy)")?;
    loss.y = YAxis::Log;
    Ok(vec![
        single("test_accuracy", "Test accuracy", test, band_legend(groups)),
        single(
            "train_accuracy",
            "Train accuracy",
            train,
            band_legend(groups),
        ),
        single(
            "learnable_params",
            "Learnable parameters",
            params,
            params_legend,
        ),
        single(
            "train_loss",
            "Training loss (log scale)",
            loss,
            band_legend(groups),
        ),
    ])
}

/// The final-epoch figures against layer index: NCC accuracy (train probe solid, test
/// dashed) and NC1.
fn layer_figures(groups: &[Group]) -> Result<Vec<FigureSpec>> {
    let layers = groups
        .first()
        .and_then(|g| g.runs.first())
        .map_or(0, |m| m.layers().len());
    let x_desc = format!("layer ({layers} = classifier input)");
    let curve = |g: &Group, b: Band, dashed: bool| Curve {
        color: g.color,
        dashed,
        steps: false,
        markers: true,
        band: b,
        marks: Vec::new(),
    };
    let mut ncc = Vec::new();
    let mut nc1 = Vec::new();
    for g in groups {
        ncc.push(curve(g, g.final_per_layer("ncc_train", 100.0)?, false));
        ncc.push(curve(g, g.final_per_layer("ncc_test", 100.0)?, true));
        nc1.push(curve(g, g.final_per_layer("nc1", 1.0)?, g.dashed));
    }
    // Dashes mean the test probe here, whatever the variant.
    let solid = |e: Entry| Entry { dashed: false, ..e };
    let mut ncc_legend: Vec<Entry> = variant_entries(groups).into_iter().map(solid).collect();
    ncc_legend.push(style_entry("train probe", false, false));
    ncc_legend.push(style_entry("test", true, false));
    let chart = |y_desc: &str, y, curves| ChartSpec {
        title: String::new(),
        x_desc: x_desc.clone(),
        y_desc: y_desc.into(),
        y,
        curves,
    };
    Ok(vec![
        single(
            "layers_ncc",
            "NCC accuracy per layer, final epoch",
            chart("NCC accuracy (%)", YAxis::Linear, ncc),
            ncc_legend,
        ),
        single(
            "layers_nc1",
            "NC1 per layer, final epoch (log scale)",
            chart("NC1 (tr(Σ_W Σ_B⁺)/C)", YAxis::Log, nc1),
            variant_entries(groups),
        ),
    ])
}

/// The NCC accuracy of every layer per epoch for `group`, one small panel per layer, the
/// layer's lock epochs marked.
fn grid_figure(group: &Group) -> Result<FigureSpec> {
    let Some(first) = group.runs.first() else {
        bail!("variant {} has no runs", group.label);
    };
    let mut charts = Vec::new();
    for layer in first.layers() {
        let curve = |figure: &str, dashed| -> Result<Curve> {
            Ok(Curve {
                color: group.color,
                dashed,
                steps: false,
                markers: false,
                band: group.band(&format!("{layer}.{figure}"), 100.0)?,
                marks: if dashed {
                    Vec::new()
                } else {
                    group.lock_epochs(Some(&layer))?
                },
            })
        };
        charts.push(ChartSpec {
            title: layer.clone(),
            x_desc: "epoch".into(),
            y_desc: "NCC acc. (%)".into(),
            y: YAxis::Linear,
            curves: vec![curve("ncc_train", false)?, curve("ncc_test", true)?],
        });
    }
    let cols = charts.len().clamp(1, 3);
    let rows = charts.len().div_ceil(cols) as u32;
    Ok(FigureSpec {
        stem: format!("layers_ncc_per_epoch_{}", file_safe(&group.label)),
        size: (700 * cols as u32, 500 * rows + 70),
        cols,
        charts,
        legend: [
            style_entry(&format!("{}: train probe", group.label), false, false),
            style_entry("test", true, false),
            style_entry("layer locked", false, true),
        ]
        .map(|e| Entry {
            color: group.color,
            ..e
        })
        .into(),
    })
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The group `--layers-of` names, else the first adaptive variant, else the first.
fn chosen<'g>(
    groups: &'g [Group],
    runs: &[(PathBuf, RunSummary)],
    name: Option<&str>,
) -> Result<&'g Group> {
    if let Some(name) = name {
        let names: Vec<&str> = groups.iter().map(|g| g.label.as_str()).collect();
        return groups
            .iter()
            .find(|g| g.label == name)
            .ok_or_else(|| anyhow!("--layers-of {name}: no such variant among {names:?}"));
    }
    let adaptive = runs
        .iter()
        .find(|(_, s)| s.head.kind == VariantKind::Adaptive)
        .map(|(_, s)| s.head.variant.as_str());
    let by_name = adaptive.and_then(|a| groups.iter().find(|g| g.label.ends_with(a)));
    by_name
        .or(groups.first())
        .ok_or_else(|| anyhow!("no runs with a metrics.csv to draw"))
}

/// Writes the comparison figures of `runs` into `dir` as `{name}.png` and `{name}.svg`, the
/// per-layer grid for variant `layers_of` (default: the first adaptive variant, else the
/// first); returns the files written. Nothing is written when no run has a `metrics.csv`.
pub fn write_comparison_figures(
    dir: &Path,
    runs: &[(PathBuf, RunSummary)],
    layers_of: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let groups = groups(runs);
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut figures = epoch_figures(&groups)?;
    figures.extend(layer_figures(&groups)?);
    figures.push(grid_figure(chosen(&groups, runs, layers_of)?)?);
    let mut written = Vec::new();
    for f in &figures {
        written.extend(write_figure(dir, f, true)?);
    }
    written.extend(write_figure(dir, &tradeoff_figure(&groups)?, true)?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Metrics> {
        Metrics::parse(Path::new("run/metrics.csv"), text)
    }

    #[test]
    fn metrics_csv_reads_numbers_text_and_layers() {
        let m = parse(
            "epoch,newly_locked,hidden1.ncc_train,hidden1.nc1,classifier.ncc_train\n\
             1,,0.5,NaN,0.25\n2,hidden1,,1e-2,0.5\n",
        )
        .unwrap();
        assert_eq!(m.column("epoch").unwrap(), vec![1.0, 2.0]);
        let ncc = m.column("hidden1.ncc_train").unwrap();
        assert_eq!(ncc[0], 0.5);
        assert!(ncc[1].is_nan(), "an empty cell is absent");
        assert!(m.column("hidden1.nc1").unwrap()[0].is_nan());
        assert_eq!(m.text("newly_locked").unwrap(), vec!["", "hidden1"]);
        assert_eq!(m.layers(), vec!["hidden1", "classifier"]);
    }

    #[test]
    fn malformed_metrics_csv_names_file_line_and_column() {
        let e = parse("epoch,loss\n1,0.5\n2,zero\n").unwrap();
        let msg = format!("{:#}", e.column("loss").unwrap_err());
        assert_eq!(
            msg,
            "run/metrics.csv:3: column 2 (`loss`): `zero` is not a number"
        );
        let msg = format!("{:#}", parse("epoch,loss\n1,0.5,7\n").unwrap_err());
        assert_eq!(
            msg,
            "run/metrics.csv:2: 3 cells, but the header has 2 columns"
        );
        let msg = format!("{:#}", e.column("nc1").unwrap_err());
        assert_eq!(msg, "run/metrics.csv: no column `nc1`");
        assert!(parse("").is_err());
    }

    #[test]
    fn band_is_mean_and_sample_std_over_the_seeds_present() {
        let b = band(&[vec![1.0, 4.0, 5.0], vec![3.0, f64::NAN]]);
        assert_eq!(b.mean, vec![2.0, 4.0, 5.0]);
        assert!((b.std[0] - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(&b.std[1..], &[0.0, 0.0], "one seed: no spread");
        assert!(band(&[vec![f64::NAN]]).mean[0].is_nan());
        assert!(band(&[]).mean.is_empty());
    }
}
