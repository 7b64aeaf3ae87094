//! PNG plots of a run, drawn with `plotters`.

use adaptive_etf::EpochRecord;
use anyhow::{anyhow, Result};
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
}

fn color(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Draws line series on `area` with the lock epochs as vertical red lines.
fn line_chart(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    y_desc: &str,
    history: &[EpochRecord],
    series: &[Series],
    log_y: bool,
) -> Result<()> {
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
        lo /= 1.5;
        hi *= 1.5;
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-3);
        lo -= pad;
        hi += pad;
    }
    let locks = lock_epochs(history);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80);
    macro_rules! draw {
        ($chart:expr, $map:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(y_desc)
                .y_label_formatter(&axis_label)
                .draw()
                .map_err(err)?;
            for s in series {
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.1.is_finite())
                    .map($map)
                    .collect();
                let style = ShapeStyle::from(&s.color).stroke_width(2);
                let anno = if s.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 6, 4, style))
                        .map_err(err)?
                } else {
                    chart
                        .draw_series(LineSeries::new(pts, style))
                        .map_err(err)?
                };
                let c = s.color;
                anno.label(s.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            }
            for &e in &locks {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(e, lo), (e, hi)],
                        RED.stroke_width(1),
                    )))
                    .map_err(err)?;
            }
            if !locks.is_empty() {
                chart
                    .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                    .map_err(err)?
                    .label("lock")
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(1))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }};
    }
    if log_y {
        draw!(
            builder
                .build_cartesian_2d(epoch_range(history), (lo..hi).log_scale())
                .map_err(err)?,
            |p| p
        );
    } else {
        draw!(
            builder
                .build_cartesian_2d(epoch_range(history), lo..hi)
                .map_err(err)?,
            |p| p
        );
    }
    Ok(())
}

fn per_epoch(history: &[EpochRecord], f: impl Fn(&EpochRecord) -> f64) -> Vec<(f64, f64)> {
    history.iter().map(|r| (r.epoch as f64, f(r))).collect()
}

/// Writes `accuracy.png`, `ncc.png`, `nc1.png` and `effective_depth.png` into `dir`.
pub fn write_plots(dir: &Path, title: &str, history: &[EpochRecord]) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    let layers = history[0].layers.len();

    let path = dir.join("accuracy.png");
    let root = BitMapBackend::new(&path, (SIZE.0, SIZE.1 + 200)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2 + 100);
    let acc = [
        Series {
            label: "train".into(),
            points: per_epoch(history, |r| r.train_accuracy),
            color: color(0),
            dashed: false,
        },
        Series {
            label: "test".into(),
            points: per_epoch(history, |r| r.test_accuracy),
            color: color(1),
            dashed: false,
        },
    ];
    line_chart(
        &top,
        &format!("{title}: accuracy (red: lock epochs)"),
        "accuracy",
        history,
        &acc,
        false,
    )?;
    let params = [Series {
        label: "learnable parameters".into(),
        points: per_epoch(history, |r| r.learnable_params as f64),
        color: color(2),
        dashed: false,
    }];
    line_chart(
        &bottom,
        "learnable parameters",
        "parameters",
        history,
        &params,
        false,
    )?;
    root.present().map_err(err)?;

    let layer_series = |f: &dyn Fn(&adaptive_etf::LayerRecord) -> f64,
                        dashed: bool,
                        suffix: &str|
     -> Vec<Series> {
        (0..layers)
            .map(|l| Series {
                label: format!("{}{suffix}", history[0].layers[l].name),
                points: history
                    .iter()
                    .map(|r| (r.epoch as f64, f(&r.layers[l])))
                    .collect(),
                color: color(l),
                dashed,
            })
            .collect()
    };

    let path = dir.join("ncc.png");
    let root = BitMapBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut ncc = layer_series(&|l| l.train.ncc_accuracy, false, " train");
    ncc.extend(layer_series(&|l| l.test.ncc_accuracy, true, " test"));
    line_chart(
        &root,
        &format!("{title}: NCC accuracy per layer (dashed: test)"),
        "NCC accuracy",
        history,
        &ncc,
        false,
    )?;
    root.present().map_err(err)?;

    let path = dir.join("nc1.png");
    let root = BitMapBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let nc1 = layer_series(&|l| l.train.nc1, false, "");
    line_chart(
        &root,
        &format!("{title}: NC1 per layer (probe set, log scale)"),
        "NC1",
        history,
        &nc1,
        true,
    )?;
    root.present().map_err(err)?;

    let path = dir.join("effective_depth.png");
    let root = BitMapBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    // "No layer reaches τ" is drawn as depth L + 1, above every real layer.
    let depth = [Series {
        label: format!("effective depth ({} = none)", layers + 1),
        points: per_epoch(history, |r| {
            r.effective_depth.map_or(layers as f64 + 1.0, |d| d as f64)
        }),
        color: color(3),
        dashed: false,
    }];
    line_chart(
        &root,
        &format!("{title}: effective depth"),
        "layer",
        history,
        &depth,
        false,
    )?;
    root.present().map_err(err)?;
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
