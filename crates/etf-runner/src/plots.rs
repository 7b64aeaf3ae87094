//! PNG plots of a run: the figures of [`crate::figures`] that have a [`Line`], in the panels of
//! [`PLOT_FILES`], drawn by the one renderer of [`crate::chart`] (as the comparison figures are),
//! lock epochs marked with triangles on the lines.

use crate::chart::{
    style_entry, write_figure, Band, ChartSpec, Curve, Entry, FigureSpec, OKABE_ITO, SIZE,
};
use crate::figures::{Absent, Line, Panel, Value, EPOCH, LAYER, PLOT_FILES};
use anyhow::Result;
use etf_train::EpochRecord;
use std::path::Path;

/// Okabe–Ito colours (colour-blind safe), as in the comparison figures.
fn color(i: usize) -> plotters::style::RGBColor {
    OKABE_ITO[i % OKABE_ITO.len()]
}

/// Where `v` is drawn: absent values per the line's rule (`NaN` is left out).
fn plotted(v: Value<'_>, line: Line, hidden: usize) -> f64 {
    match (v.number(), line.absent) {
        (Some(x), _) => x,
        (None, Absent::AboveLayers) => hidden as f64 + 1.0,
        (None, Absent::Gap) => f64::NAN,
    }
}

fn legend(line: Line, hidden: usize) -> String {
    match line.absent {
        Absent::Gap => line.legend.to_string(),
        Absent::AboveLayers => format!("{} ({} = none)", line.legend, hidden + 1),
    }
}

/// Epochs (1-based) at which `layer` was locked, or any layer with `None`.
fn lock_epochs(history: &[EpochRecord], layer: Option<&str>) -> Vec<usize> {
    let hit = |r: &EpochRecord| match layer {
        Some(l) => r.newly_locked.iter().any(|n| n == l),
        None => !r.newly_locked.is_empty(),
    };
    history
        .iter()
        .enumerate()
        .filter(|(_, r)| hit(r))
        .map(|(i, _)| i + 1)
        .collect()
}

/// A curve of one run: its values as the band's mean, no spread.
fn curve(
    values: Vec<f64>,
    color: plotters::style::RGBColor,
    line: Line,
    marks: Vec<usize>,
) -> Curve {
    let std = vec![0.0; values.len()];
    Curve {
        color,
        dashed: line.dashed,
        steps: false,
        markers: false,
        band: Band { mean: values, std },
        marks,
    }
}

/// The chart of `panel` and its legend entries: its [`EPOCH`] figures' lines (coloured by
/// their place among the plotted ones), then one line per hidden layer for each of its
/// [`LAYER`] figures, coloured by layer, with one entry per layer and one per line style.
fn panel_chart(panel: Panel, title: &str, history: &[EpochRecord]) -> (ChartSpec, Vec<Entry>) {
    let spec = panel.spec();
    let hidden = history[0].layers.len();
    let scaled = |get: &dyn Fn(&EpochRecord) -> Value<'_>, line: Line| -> Vec<f64> {
        let at = |r: &EpochRecord| plotted(get(r), line, hidden) * spec.scale;
        history.iter().map(at).collect()
    };
    let mut curves = Vec::new();
    let mut entries = Vec::new();
    let plotted_epoch = EPOCH.iter().filter_map(|f| f.plot.map(|l| (f, l)));
    for (i, (f, line)) in plotted_epoch.enumerate() {
        if line.panel != panel {
            continue;
        }
        let mut c = curve(
            scaled(&|r| (f.value)(r), line),
            color(i),
            line,
            lock_epochs(history, None),
        );
        // A count that changes at an epoch (parameters, when a layer locks) is a step.
        c.steps = panel == Panel::Params;
        curves.push(c);
        entries.push(Entry {
            color: color(i),
            ..style_entry(&legend(line, hidden), line.dashed, false)
        });
    }
    let layer_lines: Vec<_> = LAYER
        .iter()
        .filter_map(|f| f.plot.map(|l| (f, l)))
        .filter(|(_, l)| l.panel == panel)
        .collect();
    for (k, (f, line)) in layer_lines.iter().enumerate() {
        for (l, rec) in history[0].layers.iter().enumerate() {
            // Marks on the first style's line only, so a lock is one triangle.
            let marks = if k == 0 {
                lock_epochs(history, Some(&rec.name))
            } else {
                Vec::new()
            };
            let values = scaled(&|r| (f.value)(&r.layers[l]), *line);
            curves.push(curve(values, color(l), *line, marks));
        }
    }
    if !layer_lines.is_empty() {
        for (l, rec) in history[0].layers.iter().enumerate() {
            entries.push(Entry {
                color: color(l),
                ..style_entry(&rec.name, false, false)
            });
        }
        if layer_lines.len() > 1 {
            for (_, line) in &layer_lines {
                entries.push(style_entry(line.legend, line.dashed, false));
            }
        }
    }
    let caption = if spec.titled {
        format!("{title}: {}", spec.caption)
    } else {
        spec.caption.to_string()
    };
    let chart = ChartSpec {
        title: caption,
        x_desc: "epoch".into(),
        y_desc: spec.y_desc.into(),
        y: spec.y,
        curves,
    };
    (chart, entries)
}

/// The figure of one of the [`PLOT_FILES`]: its panels stacked, one legend strip above.
fn figure(file: &str, title: &str, history: &[EpochRecord], panels: &[Panel]) -> FigureSpec {
    let mut charts = Vec::new();
    let mut legend: Vec<Entry> = Vec::new();
    for p in panels {
        let (chart, entries) = panel_chart(*p, title, history);
        charts.push(chart);
        legend.extend(entries);
    }
    if !lock_epochs(history, None).is_empty() {
        legend.push(style_entry("layer locked", false, true));
    }
    let extra = 600 * (panels.len() as u32).saturating_sub(1);
    FigureSpec {
        stem: file.trim_end_matches(".png").to_string(),
        size: (SIZE.0, SIZE.1 + extra),
        cols: 1,
        charts,
        legend,
    }
}

/// Writes the [`PLOT_FILES`] into `dir`: `accuracy.png` (with the learnable parameters),
/// `ncc.png`, `nc1.png` and `effective_depth.png`.
pub fn write_plots(dir: &Path, title: &str, history: &[EpochRecord]) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    for (file, panels) in PLOT_FILES {
        write_figure(dir, &figure(file, title, history, panels), false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_four_plots() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::env::var_os("ETF_TEST_PLOTS").map_or(dir.path().to_path_buf(), Into::into);
        write_plots(&out, "demo", &crate::output::sample::history()).unwrap();
        for f in ["accuracy.png", "ncc.png", "nc1.png", "effective_depth.png"] {
            assert!(out.join(f).metadata().unwrap().len() > 1000, "{f}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_layer_panel_has_one_line_per_layer_and_style_and_marks_its_locks() {
        let h = crate::output::sample::history();
        let (chart, legend) = panel_chart(Panel::Ncc, "demo", &h);
        let layers = h[0].layers.len();
        assert_eq!(chart.curves.len(), 2 * layers, "train and test per layer");
        let texts: Vec<&str> = legend.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(&texts[layers..], ["train probe", "test"]);
        for (l, rec) in h[0].layers.iter().enumerate() {
            assert_eq!(chart.curves[l].marks, lock_epochs(&h, Some(&rec.name)));
            assert!(chart.curves[layers + l].marks.is_empty());
        }
        // The accuracy panel is in percent.
        let (acc, _) = panel_chart(Panel::Accuracy, "demo", &h);
        let test = acc.curves[1].band.mean[0];
        assert!((test - 100.0 * h[0].test_accuracy).abs() < 1e-9);
    }
}
