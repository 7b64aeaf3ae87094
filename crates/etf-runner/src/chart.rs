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

/// A figure the renderer can draw on any backend (PNG or SVG).
pub(crate) trait Drawable {
    /// The file name without its extension.
    fn stem(&self) -> &str;
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

impl Drawable for FigureSpec {
    fn stem(&self) -> &str {
        &self.stem
    }
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        render(root, self)
    }
}

/// Writes `f` as `{stem}.png` (and `{stem}.svg` with `svg`), each atomically; returns the
/// files written.
pub(crate) fn write_figure(dir: &Path, f: &impl Drawable, svg: bool) -> Result<Vec<PathBuf>> {
    let png = dir.join(format!("{}.png", f.stem()));
    etf_train::atomic::write_atomic_with(&png, |tmp| {
        let root = BitMapBackend::new(tmp, f.size()).into_drawing_area();
        f.draw(&root)?;
        root.present().map_err(err)
    })?;
    let mut written = vec![png];
    if svg {
        let path = dir.join(format!("{}.svg", f.stem()));
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, f.size()).into_drawing_area();
            f.draw(&root)?;
            root.present().map_err(err)?;
        }
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// One labelled point of a scatter figure: a mean ± std on each axis.
pub(crate) struct Point {
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) x: (f64, f64),
    pub(crate) y: (f64, f64),
}

/// A scatter figure of labelled points with error bars, its Pareto front (largest x and y)
/// joined by a dashed line and ringed, under a legend strip.
pub(crate) struct ScatterSpec {
    pub(crate) stem: String,
    pub(crate) size: (u32, u32),
    pub(crate) title: String,
    pub(crate) x_desc: String,
    pub(crate) y_desc: String,
    pub(crate) points: Vec<Point>,
    pub(crate) legend: Vec<Entry>,
}

/// The indices of the points no other point beats on both axes (means; at least as large on
/// both and larger on one), in increasing x.
pub(crate) fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let beats =
        |a: &(f64, f64), b: &(f64, f64)| a.0 >= b.0 && a.1 >= b.1 && (a.0 > b.0 || a.1 > b.1);
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].0.is_finite() && points[i].1.is_finite())
        .filter(|&i| !points.iter().any(|q| beats(q, &points[i])))
        .collect();
    front.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    front
}

impl Drawable for ScatterSpec {
    fn stem(&self) -> &str {
        &self.stem
    }
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(err)?;
        let rows = legend_rows(&self.legend, self.size.0);
        let (top, body) = root.split_vertically(14 + 44 * rows.len() as u32);
        draw_legend(&top, &self.legend, &rows)?;
        draw_scatter(&body, self)
    }
}

/// About how wide `text` is in pixels at the chart font (0.55 em a character).
fn text_width(text: &str) -> i32 {
    (text.chars().count() as f64 * FONT as f64 * 0.55) as i32
}

/// Offsets of the labels from their points (pixels): up and to the right, moved down one
/// line at a time, highest point first, until no earlier label overlaps it.
fn label_offsets(anchors: &[(i32, i32)], widths: &[i32]) -> Vec<(i32, i32)> {
    let line = FONT as i32 + 4;
    let mut order: Vec<usize> = (0..anchors.len()).collect();
    order.sort_by_key(|&i| (anchors[i].1, anchors[i].0));
    let mut placed: Vec<(i32, i32, i32)> = Vec::new();
    let mut offsets = vec![(0, 0); anchors.len()];
    for i in order {
        let (x, y) = (anchors[i].0 + 12, anchors[i].1 - 34);
        let mut top = y;
        while placed
            .iter()
            .any(|&(px, py, pw)| (top - py).abs() < line && x < px + pw && px < x + widths[i])
        {
            top += line;
        }
        placed.push((x, top, widths[i]));
        offsets[i] = (12, top - anchors[i].1);
    }
    offsets
}

/// `lo..hi` of `values ± spreads`, padded by 8 % (at least `min_pad`).
fn padded_range(values: impl Iterator<Item = (f64, f64)>, min_pad: f64) -> (f64, f64) {
    let Some((lo, hi)) = extent(values, |_| true) else {
        return (0.0, 1.0);
    };
    let pad = ((hi - lo) * 0.08).max(min_pad);
    (lo - pad, hi + pad)
}

/// The smallest and largest of every `mean − std`, `mean + std` and `mean` that is finite and
/// that `keep` accepts (a non-finite std counts as 0); `None` when there is none.
fn extent(
    values: impl Iterator<Item = (f64, f64)>,
    keep: impl Fn(f64) -> bool,
) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (m, s) in values {
        let s = if s.is_finite() { s } else { 0.0 };
        for v in [m - s, m + s, m] {
            if v.is_finite() && keep(v) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    lo.is_finite().then_some((lo, hi))
}

fn draw_scatter<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &ScatterSpec) -> Result<()> {
    let (x_lo, x_hi) = padded_range(f.points.iter().map(|p| p.x), 2.0);
    // Room on the right for the labels of the rightmost points.
    let x_hi = x_hi + 0.18 * (x_hi - x_lo);
    let (y_lo, y_hi) = padded_range(f.points.iter().map(|p| p.y), 0.2);
    let mut c = builder(area, &f.title)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc(&f.x_desc)
        .y_desc(&f.y_desc)
        .x_labels(7)
        .y_labels(7)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FAMILY, FONT))
        .axis_desc_style((FAMILY, FONT))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(err)?;
    let means: Vec<(f64, f64)> = f.points.iter().map(|p| (p.x.0, p.y.0)).collect();
    let front = pareto_front(&means);
    let grey = RGBColor(90, 90, 90);
    let line: Vec<(f64, f64)> = front.iter().map(|&i| means[i]).collect();
    c.draw_series(DashedLineSeries::new(line, 14, 9, grey.stroke_width(3)))
        .map_err(err)?;
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let shown: Vec<&Point> = f
        .points
        .iter()
        .filter(|p| p.x.0.is_finite() && p.y.0.is_finite())
        .collect();
    for p in &shown {
        let (x, sx) = (p.x.0, finite(p.x.1));
        let (y, sy) = (p.y.0, finite(p.y.1));
        let style = p.color.stroke_width(3);
        for bar in [[(x - sx, y), (x + sx, y)], [(x, y - sy), (x, y + sy)]] {
            c.draw_series(std::iter::once(PathElement::new(bar.to_vec(), style)))
                .map_err(err)?;
        }
        c.draw_series(std::iter::once(Circle::new((x, y), 9, p.color.filled())))
            .map_err(err)?;
    }
    let anchors: Vec<(i32, i32)> = shown
        .iter()
        .map(|p| c.backend_coord(&(p.x.0, p.y.0)))
        .collect();
    let widths: Vec<i32> = shown.iter().map(|p| text_width(&p.label)).collect();
    for (p, (dx, dy)) in shown.iter().zip(label_offsets(&anchors, &widths)) {
        let font = (FAMILY, FONT).into_font().color(&BLACK);
        let label = EmptyElement::at((p.x.0, p.y.0)) + Text::new(p.label.clone(), (dx, dy), font);
        c.draw_series(std::iter::once(label)).map_err(err)?;
    }
    let ringed = front
        .iter()
        .map(|&i| Circle::new(means[i], 15, grey.stroke_width(3)));
    c.draw_series(ringed).map_err(err)?;
    Ok(())
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
    56 + 12 + text_width(&e.text) as u32 + 36
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
    let log = chart.y == YAxis::Log;
    let values = chart
        .curves
        .iter()
        .flat_map(|c| c.band.mean.iter().copied().zip(c.band.std.iter().copied()));
    let Some((lo, hi)) = extent(values, |v| !log || v > 0.0) else {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    };
    if log {
        let hi = hi.max(lo * 10.0);
        (lo / 1.5, hi * 1.5)
    } else {
        let pad = ((hi - lo) * 0.06).max(0.5);
        (lo - pad, hi + pad)
    }
}

/// A chart's margins, label areas and title (none when empty), shared by every chart kind.
fn builder<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_top(8)
        .margin_right(30)
        .margin_left(8)
        .x_label_area_size(66)
        .y_label_area_size(120);
    if !title.is_empty() {
        builder.caption(title, (FAMILY, TITLE_FONT));
    }
    builder
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
    let mut builder = builder(area, &chart.title);
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
    fn labels_of_coinciding_points_are_stacked_not_overlaid() {
        let off = label_offsets(&[(100, 200), (100, 200), (600, 200)], &[80, 80, 80]);
        assert_eq!(off[0], (12, -34));
        assert_eq!(off[1], (12, -34 + FONT as i32 + 4));
        // Far enough to the right: no need to move.
        assert_eq!(off[2], (12, -34));
    }

    #[test]
    fn the_pareto_front_keeps_the_points_nothing_beats() {
        let pts = [
            (0.0, 0.9),
            (50.0, 0.8),
            (40.0, 0.7),
            (50.0, 0.75),
            (f64::NAN, 1.0),
        ];
        assert_eq!(pareto_front(&pts), vec![0, 1]);
        // Equal points both stay; a point beaten on one axis and tied on the other goes.
        assert_eq!(
            pareto_front(&[(10.0, 0.5), (10.0, 0.5), (10.0, 0.4)]),
            vec![0, 1]
        );
        assert!(pareto_front(&[]).is_empty());
    }

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
