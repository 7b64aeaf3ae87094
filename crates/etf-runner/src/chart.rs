//! The one figure renderer: charts of mean lines with ± std bands over x = 1, 2, … (epochs or
//! layers), a legend strip above the data, PNG and SVG. `etf compare`'s figures and each run's
//! own plots are both drawn here, so they share fonts, palette, ticks and legend placement.
//!
//! Sized for one paper column (1050 × 750 px, 3.5 in at 300 dpi) with fonts of at least 28 px
//! and Okabe–Ito colours (safe for colour-blind readers).

use crate::io::write_atomic;
use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Mean and standard deviation over seeds at each position (epoch or layer).
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// Mean of the finite values at each position (`NaN` where none is).
    pub mean: Vec<f64>,
    /// Their sample standard deviation (0 with one value).
    pub std: Vec<f64>,
}

/// Okabe & Ito's colour-blind-safe palette, yellow last (faint on white).
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// One line of a chart: a mean with its band, at x = 1, 2, ….
pub(crate) struct Curve {
    pub(crate) color: RGBColor,
    pub(crate) dashed: bool,
    /// Drawn as a step function (a value holds for its whole epoch).
    pub(crate) steps: bool,
    /// Circles at the points (few, discrete x: layers).
    pub(crate) markers: bool,
    pub(crate) band: Band,
    /// x positions (1-based) marked with a triangle on the line.
    pub(crate) marks: Vec<usize>,
}

/// One chart (panel) of a figure.
pub(crate) struct ChartSpec {
    pub(crate) title: String,
    pub(crate) x_desc: String,
    pub(crate) y_desc: String,
    pub(crate) y: YAxis,
    pub(crate) curves: Vec<Curve>,
}

/// The kind of a chart's y axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YAxis {
    /// Linear.
    Linear,
    /// Linear, labelled at whole numbers only (a layer index, a count).
    Whole,
    /// Logarithmic (values ≤ 0 are left out).
    Log,
}

/// A legend entry: a line sample (or a mark, or a band's swatch) and its text.
pub(crate) struct Entry {
    pub(crate) text: String,
    pub(crate) color: RGBColor,
    pub(crate) dashed: bool,
    pub(crate) mark: bool,
    pub(crate) swatch: bool,
}

/// A figure: charts on a grid of `cols` columns under a legend strip.
pub(crate) struct FigureSpec {
    pub(crate) stem: String,
    pub(crate) size: (u32, u32),
    pub(crate) cols: usize,
    pub(crate) charts: Vec<ChartSpec>,
    pub(crate) legend: Vec<Entry>,
}

pub(crate) const SIZE: (u32, u32) = (1050, 750);
const FONT: u32 = 28;
const TITLE_FONT: u32 = 30;
const FAMILY: &str = "sans-serif";

pub(crate) fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e}")
}

pub(crate) fn style_entry(text: &str, dashed: bool, mark: bool) -> Entry {
    Entry {
        text: text.to_string(),
        color: RGBColor(90, 90, 90),
        dashed,
        mark,
        swatch: false,
    }
}

/// Writes `f` as `{stem}.png` (and `{stem}.svg` with `svg`), each atomically; returns the
/// files written.
pub(crate) fn write_figure(dir: &Path, f: &FigureSpec, svg: bool) -> Result<Vec<PathBuf>> {
    let png = dir.join(format!("{}.png", f.stem));
    etf_train::atomic::write_atomic_with(&png, |tmp| {
        let root = BitMapBackend::new(tmp, f.size).into_drawing_area();
        render(&root, f)?;
        root.present().map_err(err)
    })?;
    let mut written = vec![png];
    if svg {
        let path = dir.join(format!("{}.svg", f.stem));
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, f.size).into_drawing_area();
            render(&root, f)?;
            root.present().map_err(err)?;
        }
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Draws `f` on `root`: the legend strip on top, the charts on a grid below.
fn render<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &FigureSpec) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let rows = legend_rows(&f.legend, f.size.0);
    let (top, body) = root.split_vertically(14 + 44 * rows.len() as u32);
    draw_legend(&top, &f.legend, &rows)?;
    let grid_rows = f.charts.len().div_ceil(f.cols);
    for (area, chart) in body.split_evenly((grid_rows, f.cols)).iter().zip(&f.charts) {
        draw_chart(area, chart)?;
    }
    Ok(())
}

fn entry_width(e: &Entry) -> u32 {
    // A line sample of 56 px, a gap, the text (about 0.55 em a character), a gap.
    56 + 12 + (e.text.chars().count() as f64 * FONT as f64 * 0.55) as u32 + 36
}

/// The legend's entries (indices) wrapped into rows that fit `width`.
fn legend_rows(legend: &[Entry], width: u32) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut used = 20;
    for (i, e) in legend.iter().enumerate() {
        let w = entry_width(e);
        if used + w > width && !rows.last().is_some_and(Vec::is_empty) {
            rows.push(Vec::new());
            used = 20;
        }
        used += w;
        rows.last_mut().expect("one row at least").push(i);
    }
    rows
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    legend: &[Entry],
    rows: &[Vec<usize>],
) -> Result<()> {
    let font = (FAMILY, FONT).into_font();
    for (r, row) in rows.iter().enumerate() {
        let y = 30 + 44 * r as i32;
        let mut x = 20;
        for &i in row {
            let e = &legend[i];
            let style = e.color.stroke_width(4);
            if e.swatch {
                let rect =
                    Rectangle::new([(x, y - 12), (x + 56, y + 12)], e.color.mix(0.25).filled());
                area.draw(&rect).map_err(err)?;
            } else if e.mark {
                area.draw(&TriangleMarker::new((x + 28, y), 11, e.color.filled()))
                    .map_err(err)?;
            } else if e.dashed {
                for k in 0..3 {
                    let x0 = x + 20 * k;
                    area.draw(&PathElement::new(vec![(x0, y), (x0 + 12, y)], style))
                        .map_err(err)?;
                }
            } else {
                area.draw(&PathElement::new(vec![(x, y), (x + 56, y)], style))
                    .map_err(err)?;
            }
            let text = Text::new(
                e.text.clone(),
                (x + 68, y - FONT as i32 / 2 - 2),
                font.clone().color(&BLACK),
            );
            area.draw(&text).map_err(err)?;
            x += entry_width(e) as i32;
        }
    }
    Ok(())
}

/// The y range of `chart`: mean ± std of every curve, padded; a decade at least on a log axis.
fn y_range(chart: &ChartSpec) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for c in &chart.curves {
        for (m, s) in c.band.mean.iter().zip(&c.band.std) {
            let s = if s.is_finite() { *s } else { 0.0 };
            for v in [m - s, m + s, *m] {
                if v.is_finite() && (!(chart.y == YAxis::Log) || v > 0.0) {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
    }
    if !lo.is_finite() {
        return if chart.y == YAxis::Log {
            (0.1, 10.0)
        } else {
            (0.0, 1.0)
        };
    }
    if chart.y == YAxis::Log {
        let hi = hi.max(lo * 10.0);
        (lo / 1.5, hi * 1.5)
    } else {
        let pad = ((hi - lo) * 0.06).max(0.5);
        (lo - pad, hi + pad)
    }
}

fn draw_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &ChartSpec) -> Result<()> {
    let n = chart
        .curves
        .iter()
        .map(|c| c.band.mean.len())
        .max()
        .unwrap_or(1);
    let x = 0.5..n as f64 + 0.5;
    let (lo, hi) = y_range(chart);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_top(8)
        .margin_right(30)
        .margin_left(8)
        .x_label_area_size(66)
        .y_label_area_size(120);
    if !chart.title.is_empty() {
        builder.caption(&chart.title, (FAMILY, TITLE_FONT));
    }
    if chart.y == YAxis::Log {
        let (labelled, minor) = log_ticks(lo, hi);
        let y = (lo..hi)
            .log_scale()
            .with_key_points(labelled)
            .with_light_points(minor);
        let c = builder.build_cartesian_2d(x, y).map_err(err)?;
        draw_curves(c, chart, n, (lo, hi))
    } else {
        let c = builder.build_cartesian_2d(x, lo..hi).map_err(err)?;
        draw_curves(c, chart, n, (lo, hi))
    }
}

/// Ticks of a log axis over `lo..hi`: labelled ones at 1 × 10ᵏ, or at 1, 2, 5 × 10ᵏ (or every
/// integer mantissa) when fewer decades would leave under three labels; unlabelled grid lines at
/// every integer mantissa when the axis spans at most four decades.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let at = |mantissas: &[f64]| -> Vec<f64> {
        let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let mut v = Vec::new();
        for k in first..=last {
            for m in mantissas {
                let t = m * 10f64.powi(k);
                if t >= lo && t <= hi {
                    v.push(t);
                }
            }
        }
        v
    };
    let every: Vec<f64> = (1..10).map(f64::from).collect();
    let labelled = [&[1.0][..], &[1.0, 2.0, 5.0], &every]
        .iter()
        .map(|m| at(m))
        .find(|v| v.len() >= 3)
        .unwrap_or_else(|| at(&every));
    let minor = if (hi / lo).log10() <= 4.0 {
        at(&every)
    } else {
        Vec::new()
    };
    (labelled, minor)
}

type Ctx<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

/// Tick labels without float noise; integers only on the x axis (epochs, layers).
fn tick(v: &f64) -> String {
    let a = v.abs();
    if a >= 100.0 || (a >= 1.0 && v.fract() == 0.0) {
        format!("{v:.0}")
    } else if a >= 0.01 || a == 0.0 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

fn x_tick(v: &f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

// Generic over the y coordinate: a linear and a log axis are different types.
fn draw_curves<DB: DrawingBackend, Y>(
    mut c: Ctx<'_, DB, Y>,
    chart: &ChartSpec,
    n: usize,
    (lo, hi): (f64, f64),
) -> Result<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    // A whole-number axis asks for no more labels than there are whole numbers in range, so the
    // ticks plotters picks fall on them (a step of 1, 2 or 5).
    let y_labels = match chart.y {
        YAxis::Whole => ((hi.floor() - lo.ceil()) as usize + 1).clamp(2, 8),
        YAxis::Linear | YAxis::Log => 7,
    };
    c.configure_mesh()
        .x_desc(&chart.x_desc)
        .y_desc(&chart.y_desc)
        .x_labels(n.min(10) + 1)
        .x_label_formatter(&x_tick)
        .x_max_light_lines(0)
        .y_labels(y_labels)
        .y_label_formatter(&|v| {
            if chart.y == YAxis::Whole && v.fract() != 0.0 {
                String::new()
            } else {
                tick(v)
            }
        })
        .label_style((FAMILY, FONT))
        .axis_desc_style((FAMILY, FONT))
        // Minor grid lines only on a log axis (its unlabelled mantissas); none on a linear one.
        .light_line_style(if chart.y == YAxis::Log {
            RGBColor(240, 240, 240)
        } else {
            WHITE
        })
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(err)?;
    for curve in &chart.curves {
        draw_band(&mut c, curve, lo)?;
    }
    for curve in &chart.curves {
        draw_mean(&mut c, curve)?;
    }
    Ok(())
}

/// The points of a line: `(x, y)` at x = 1, 2, …, held to the next x when drawn as steps;
/// non-finite values are left out.
fn line_points(ys: &[f64], steps: bool) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    for (i, &y) in ys.iter().enumerate() {
        let x = i as f64 + 1.0;
        if !y.is_finite() {
            continue;
        }
        if steps {
            if let Some(&(_, prev)) = pts.last() {
                pts.push((x, prev));
            }
        }
        pts.push((x, y));
    }
    pts
}

fn draw_band<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    c: &mut Ctx<'_, DB, Y>,
    curve: &Curve,
    lo: f64,
) -> Result<()> {
    let b = &curve.band;
    let spread: Vec<f64> = b
        .std
        .iter()
        .map(|s| if s.is_finite() { *s } else { 0.0 })
        .collect();
    if spread.iter().all(|s| *s == 0.0) {
        return Ok(());
    }
    // Clamped to the axis floor so a log axis never sees a value ≤ 0.
    let upper: Vec<f64> = b.mean.iter().zip(&spread).map(|(m, s)| m + s).collect();
    let lower: Vec<f64> = b
        .mean
        .iter()
        .zip(&spread)
        .map(|(m, s)| (m - s).max(lo))
        .collect();
    let mut pts = line_points(&upper, curve.steps);
    pts.extend(line_points(&lower, curve.steps).into_iter().rev());
    c.draw_series(std::iter::once(Polygon::new(
        pts,
        curve.color.mix(0.18).filled(),
    )))
    .map_err(err)?;
    Ok(())
}

fn draw_mean<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    c: &mut Ctx<'_, DB, Y>,
    curve: &Curve,
) -> Result<()> {
    let pts = line_points(&curve.band.mean, curve.steps);
    let style = curve.color.stroke_width(4);
    if curve.dashed {
        c.draw_series(DashedLineSeries::new(pts, 14, 9, style))
            .map_err(err)?;
    } else {
        c.draw_series(LineSeries::new(pts, style)).map_err(err)?;
    }
    let at = |x: usize| {
        let y = curve.band.mean.get(x - 1).copied().unwrap_or(f64::NAN);
        (x as f64, y)
    };
    if curve.markers {
        let dots = (1..=curve.band.mean.len())
            .map(at)
            .filter(|p| p.1.is_finite());
        c.draw_series(dots.map(|p| Circle::new(p, 7, curve.color.filled())))
            .map_err(err)?;
    }
    let marks = curve
        .marks
        .iter()
        .map(|&x| at(x))
        .filter(|p| p.1.is_finite());
    c.draw_series(marks.map(|p| TriangleMarker::new(p, 11, curve.color.filled())))
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_hold_each_value_to_the_next_epoch() {
        let pts = line_points(&[3.0, 3.0, 1.0], true);
        assert_eq!(
            pts,
            vec![(1.0, 3.0), (2.0, 3.0), (2.0, 3.0), (3.0, 3.0), (3.0, 1.0)]
        );
        assert_eq!(
            line_points(&[1.0, f64::NAN, 2.0], false),
            vec![(1.0, 1.0), (3.0, 2.0)]
        );
    }

    #[test]
    fn legend_wraps_to_the_width() {
        let e = |t: &str| style_entry(t, false, false);
        let legend = vec![
            e("baseline"),
            e("adaptive"),
            e("a much longer entry that wraps"),
        ];
        let rows = legend_rows(&legend, 700);
        assert_eq!(rows, vec![vec![0, 1], vec![2]]);
    }
}
