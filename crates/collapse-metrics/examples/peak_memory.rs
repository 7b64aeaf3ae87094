//! Peak resident memory of one full collapse report, streaming vs textbook (`reference`).
//!
//! `cargo run --release -p collapse-metrics --example peak_memory -- <streaming|textbook> <d> [batch]`
//!
//! Builds `N = 10 000` f32 features (`C = 10`) first, resets the kernel's peak-RSS mark
//! (`/proc/self/clear_refs` ← `5`, Linux ≥ 4.0) so the temporaries of data generation do not
//! count, then reads the peak resident set (`VmHWM` in `/proc/self/status`) after the report:
//! the growth over the resident set before is the memory the method itself needed on top of
//! the features. Run each method in its own process so one's peak cannot hide the other's.

use collapse_metrics::{
    reference, ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean,
};
use tch::{Device, Kind, Tensor};

const SAMPLES: i64 = 10_000;
const CLASSES: i64 = 10;

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
    let method = args.get(1).map_or("streaming", String::as_str);
    let dim: i64 = args.get(2).map_or(Ok(4096), |s| s.parse())?;
    let batch: i64 = args.get(3).map_or(Ok(1_000), |s| s.parse())?;
    tch::manual_seed(0);
    let opts = (Kind::Float, Device::Cpu);
    let centres = Tensor::randn([CLASSES, dim], opts);
    let labels = Tensor::randint(CLASSES, [SAMPLES], (Kind::Int64, Device::Cpu));
    let features = centres.index_select(0, &labels) + Tensor::randn([SAMPLES, dim], opts) * 2.0;
    let clf = Classifier {
        weight: &centres,
        bias: None,
    };
    std::fs::write("/proc/self/clear_refs", "5")?;
    let before = peak_rss_mib();
    let start = std::time::Instant::now();
    let report: CollapseReport = match method {
        "textbook" => reference::collapse_report(
            &features,
            &labels,
            CLASSES as usize,
            Some(clf),
            GlobalMean::Weighted,
        )?,
        _ => {
            let mut pass1 = ClassMeans::new(CLASSES as usize, dim as usize, Device::Cpu)?;
            let batches = || {
                features
                    .split(batch, 0)
                    .into_iter()
                    .zip(labels.split(batch, 0))
            };
            for (f, y) in batches() {
                pass1.update(&f, &y)?;
            }
            let stats = pass1.finalize(GlobalMean::Weighted)?;
            let mut pass2 = CollapseAccumulator::new(&stats, Some(clf))?;
            for (f, y) in batches() {
                pass2.update(&f, &y)?;
            }
            pass2.finalize()?
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    let after = peak_rss_mib();
    println!(
        "{method} d={dim} batch={batch}: peak RSS {before:.0} MiB before, {after:.0} MiB after, growth {:.0} MiB, \
         {elapsed:.3} s (nc1 = {:.6})",
        after - before,
        report.nc1
    );
    Ok(())
}
