//! PNG plots of a run, drawn with `plotters`: the figures of [`crate::figures`] that have a
//! [`Line`], in the panels of [`PLOT_FILES`].

use crate::compare_figures::OKABE_ITO;
use crate::figures::{Absent, Line, Panel, Value, EPOCH, LAYER, PLOT_FILES};
use anyhow::{anyhow, Result};
use etf_train::EpochRecord;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (960, 600);

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e}")
}

/// Axis labels without float noise: parameter counts as integers, small values in
/// scientific notation.
fn axis_label(v: &f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 0.01 || a == 0.0 {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

fn epoch_range(history: &[EpochRecord]) -> std::ops::Range<f64> {
    0.5..history.len() as f64 + 0.5
}

fn lock_epochs(history: &[EpochRecord]) -> Vec<f64> {
    history
        .iter()
        .filter(|r| !r.newly_locked.is_empty())
        .map(|r| r.epoch as f64)
        .collect()
}

/// One line series with a legend entry.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    dashed: bool,
    /// Drawn as a step function (learnable parameters).
    steps: bool,
}

/// Okabe–Ito colours (colour-blind safe), as in the comparison figures.
fn color(i: usize) -> RGBColor {
    OKABE_ITO[i % OKABE_ITO.len()]
}

/// The y range of a chart: the finite values padded, a decade at least on a log axis.
fn y_range(series: &[Series], log_y: bool) -> (f64, f64) {
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if log_y {
        lo = lo.max(1e-12);
        hi = hi.max(lo * 10.0);
        (lo / 1.5, hi * 1.5)
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-3);
        (lo - pad, hi + pad)
    }
}

/// What one chart draws, whichever its y axis.
struct Lines<'s> {
    y_desc: &'s str,
    series: &'s [Series],
    /// Epochs that locked layers, drawn as vertical red lines from `lo` to `hi`.
    locks: Vec<f64>,
    lo: f64,
    hi: f64,
}

type Chart<'a, 'b, Y> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

impl Lines<'_> {
    // Generic over the y coordinate: a linear and a log axis are different types.
    fn draw<'a, 'b: 'a, Y>(&self, mut chart: Chart<'a, 'b, Y>) -> Result<()>
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(self.y_desc)
            .y_label_formatter(&axis_label)
            .draw()
            .map_err(err)?;
        for s in self.series {
            draw_series(&mut chart, s)?;
        }
        self.draw_locks(&mut chart)
    }

    fn draw_locks<Y>(&self, chart: &mut Chart<'_, '_, Y>) -> Result<()>
    where
        Y: Ranged<ValueType = f64>,
    {
        for &e in &self.locks {
            let line = PathElement::new(vec![(e, self.lo), (e, self.hi)], RED.stroke_width(1));
            chart.draw_series(std::iter::once(line)).map_err(err)?;
        }
        Ok(())
    }
}

/// Width of the legend column right of each chart, so no entry covers data.
const LEGEND_WIDTH: u32 = 250;

/// Draws the legend of `series` (and the lock line, when there are locks) on `area`, one
/// entry a row: a line sample, solid or dashed as in the chart, and its label.
fn draw_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    series: &[Series],
    locks: bool,
) -> Result<()> {
    let lock = locks.then(|| ("lock".to_string(), RED, false, 1));
    let entries = series
        .iter()
        .map(|s| (s.label.clone(), s.color, s.dashed, 2))
        .chain(lock);
    let font = ("sans-serif", 16).into_font();
    for (i, (label, color, dashed, width)) in entries.enumerate() {
        let y = 50 + 22 * i as i32;
        let style = color.stroke_width(width);
        if dashed {
            for x0 in [4, 16] {
                area.draw(&PathElement::new(vec![(x0, y), (x0 + 8, y)], style))
                    .map_err(err)?;
            }
        } else {
            area.draw(&PathElement::new(vec![(4, y), (28, y)], style))
                .map_err(err)?;
        }
        area.draw(&Text::new(label, (36, y - 8), font.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// `s`'s finite points; a step function's each held until the next point, so a count that
/// changes at an epoch (parameters, when a layer locks) is drawn as a step, not a slope.
fn finite_points(s: &Series) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for &(x, y) in s.points.iter().filter(|p| p.1.is_finite()) {
        if let (true, Some(&(_, prev))) = (s.steps, pts.last()) {
            pts.push((x, prev));
        }
        pts.push((x, y));
    }
    pts
}

/// Draws `s`'s finite points as a line.
fn draw_series<Y>(chart: &mut Chart<'_, '_, Y>, s: &Series) -> Result<()>
where
    Y: Ranged<ValueType = f64>,
{
    let pts = finite_points(s);
    let style = ShapeStyle::from(&s.color).stroke_width(2);
    if s.dashed {
        chart
            .draw_series(DashedLineSeries::new(pts, 6, 4, style))
            .map_err(err)?;
    } else {
        chart
            .draw_series(LineSeries::new(pts, style))
            .map_err(err)?;
    }
    Ok(())
}

/// Draws `panel`'s series on `area` with the lock epochs as vertical red lines.
fn line_chart(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    panel: Panel,
    history: &[EpochRecord],
) -> Result<()> {
    let spec = panel.spec();
    let caption = if spec.titled {
        format!("{title}: {}", spec.caption)
    } else {
        spec.caption.to_string()
    };
    let series = panel_series(panel, history);
    let (lo, hi) = y_range(&series, spec.log_y);
    let lines = Lines {
        y_desc: spec.y_desc,
        series: &series,
        locks: lock_epochs(history),
        lo,
        hi,
    };
    let (plot, side) = area.split_horizontally(area.dim_in_pixel().0 - LEGEND_WIDTH);
    draw_legend(&side, &series, !lines.locks.is_empty())?;
    let mut builder = ChartBuilder::on(&plot);
    builder
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80);
    let x = epoch_range(history);
    if spec.log_y {
        lines.draw(
            builder
                .build_cartesian_2d(x, (lo..hi).log_scale())
                .map_err(err)?,
        )
    } else {
        lines.draw(builder.build_cartesian_2d(x, lo..hi).map_err(err)?)
    }
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

/// The lines of `panel`: its [`EPOCH`] figures' (coloured by their place among the plotted
/// ones), then one per hidden layer for each of its [`LAYER`] figures.
fn panel_series(panel: Panel, history: &[EpochRecord]) -> Vec<Series> {
    let hidden = history[0].layers.len();
    let points = |get: &dyn Fn(&EpochRecord) -> Value<'_>, line: Line| -> Vec<(f64, f64)> {
        let at = |r: &EpochRecord| (r.epoch as f64, plotted(get(r), line, hidden));
        history.iter().map(at).collect()
    };
    let plotted_epoch = EPOCH.iter().filter_map(|f| f.plot.map(|l| (f, l)));
    let epoch = plotted_epoch
        .enumerate()
        .filter(|(_, (_, line))| line.panel == panel)
        .map(|(i, (f, line))| Series {
            label: legend(line, hidden),
            points: points(&|r| (f.value)(r), line),
            color: color(i),
            dashed: line.dashed,
            steps: panel == Panel::Params,
        });
    let layer_lines = LAYER.iter().filter_map(|f| f.plot.map(|l| (f, l)));
    let layers = layer_lines
        .filter(|(_, line)| line.panel == panel)
        .flat_map(|(f, line)| (0..hidden).map(move |l| (f, line, l)))
        .map(|(f, line, l)| Series {
            label: format!("{}{}", history[0].layers[l].name, line.legend),
            points: points(&|r| (f.value)(&r.layers[l]), line),
            color: color(l),
            dashed: line.dashed,
            steps: false,
        });
    epoch.chain(layers).collect()
}

/// Writes one of the [`PLOT_FILES`]: its panels stacked, each 200 pixels taller than its
/// share of the first one's height so the stacked charts stay readable.
/// Written atomically, so a plot is never seen half-drawn.
fn write_file(path: &Path, title: &str, history: &[EpochRecord], panels: &[Panel]) -> Result<()> {
    let height = SIZE.1 + 200 * (panels.len() as u32 - 1);
    etf_train::atomic::write_atomic_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
            line_chart(area, title, *panel, history)?;
        }
        root.present().map_err(err)
    })
}

/// Writes the [`PLOT_FILES`] into `dir`: `accuracy.png` (with the learnable parameters),
/// `ncc.png`, `nc1.png` and `effective_depth.png`.
pub fn write_plots(dir: &Path, title: &str, history: &[EpochRecord]) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    for (file, panels) in PLOT_FILES {
        write_file(&dir.join(file), title, history, panels)?;
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
    }
}
