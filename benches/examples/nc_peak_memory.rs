//! Peak resident memory of one full collapse report: the streaming core on host slices, the
//! same accumulators fed tensors (`tch` feature), and the textbook method (`reference`).
//!
//! `cargo run --release -p etf-benches --example nc_peak_memory -- <core|tch|textbook> <d> [batch]`
//!
//! Builds `N = 10 000` f32 features (`C = 10`) first (the same data as `benches/nc_metrics.rs`),
//! resets the kernel's peak-RSS mark (`/proc/self/clear_refs` ← `5`, Linux ≥ 4.0) so the
//! temporaries of data generation do not count, then reads the peak resident set (`VmHWM` in
//! `/proc/self/status`) after the report: the growth over the resident set before is the
//! memory the method itself needed on top of the features. Run each method in its own process
//! so one's peak cannot hide the other's.

use collapse_metrics::tensor::TensorClassifier;
use collapse_metrics::{
    reference, ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean, Matrix,
    Values,
};
use etf_benches::CollapseLayer;
use tch::Tensor;

const SAMPLES: usize = 10_000;
const CLASSES: usize = 10;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let method = args.get(1).map_or("core", String::as_str);
    let dim: usize = args.get(2).map_or(Ok(4096), |s| s.parse())?;
    let batch: usize = args.get(3).map_or(Ok(1_000), |s| s.parse())?;
    tch::set_num_threads(1);
    let l = CollapseLayer::new(SAMPLES, dim, CLASSES);
    let features = Matrix::new(&l.features, SAMPLES, dim)?;
    let clf = Classifier {
        weight: Matrix::new(&l.weight, CLASSES, dim)?,
        bias: Some(Values::from(&l.bias)),
    };
    // Tensors only for the tch method, so the others do not carry their copy.
    let tensors = (method == "tch").then(|| {
        (
            Tensor::from_slice(&l.features).reshape([SAMPLES as i64, dim as i64]),
            Tensor::from_slice(&l.labels),
            Tensor::from_slice(&l.weight).reshape([CLASSES as i64, dim as i64]),
            Tensor::from_slice(&l.bias),
        )
    });
    std::fs::write("/proc/self/clear_refs", "5")?;
    let before = peak_rss_mib();
    let start = std::time::Instant::now();
    let report: CollapseReport = match (method, &tensors) {
        ("textbook", _) => reference::collapse_report(
            features,
            &l.labels,
            CLASSES,
            Some(clf),
            GlobalMean::Weighted,
        )?,
        ("tch", Some((f, y, w, b))) => {
            let (fs, ys) = (f.split(batch as i64, 0), y.split(batch as i64, 0));
            let mut pass1 = ClassMeans::new(CLASSES, dim)?;
            for (f, y) in fs.iter().zip(&ys) {
                pass1.update_tensor(f, y)?;
            }
            let stats = pass1.finalize(GlobalMean::Weighted)?;
            let clf = TensorClassifier {
                weight: w,
                bias: Some(b),
            };
            let mut pass2 = CollapseAccumulator::with_tensor_classifier(&stats, Some(clf))?;
            for (f, y) in fs.iter().zip(&ys) {
                pass2.update_tensor(f, y)?;
            }
            pass2.finalize()?
        }
        _ => {
            let labels = &l.labels;
            let batches = || {
                (0..SAMPLES).step_by(batch).map(move |s| {
                    let len = batch.min(SAMPLES - s);
                    (features.slice_rows(s, len), &labels[s..s + len])
                })
            };
            let mut pass1 = ClassMeans::new(CLASSES, dim)?;
            for (f, y) in batches() {
                pass1.update(f, y)?;
            }
            let stats = pass1.finalize(GlobalMean::Weighted)?;
            let mut pass2 = CollapseAccumulator::new(&stats, Some(clf))?;
            for (f, y) in batches() {
                pass2.update(f, y)?;
            }
            pass2.finalize()?
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    let after = peak_rss_mib();
    println!(
        "{method} d={dim} batch={batch}: peak RSS {before:.0} MiB before, {after:.0} MiB after, \
         growth {:.0} MiB, {elapsed:.3} s (nc1 = {:.6})",
        after - before,
        report.nc1
    );
    Ok(())
}
