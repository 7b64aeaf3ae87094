//! A full neural-collapse report (NC1–NC4, CDNV, NCC, classifier measures) for one layer:
//! the streaming two-pass accumulators of `collapse-metrics` against its textbook `reference`
//! module (`d × d` covariances `Σ_W`, `Σ_B` and an eigendecomposition pseudo-inverse).
//!
//! `N = 10 000` f32 features, `C = 10` classes, `d ∈ {512, 2048, 4096}`, a classifier with
//! bias, on CPU; the streaming method reads the in-memory features in batches of 1 000 rows
//! (as a training loop would hand them over). Both return the same report (tests check it).
//!
//! The textbook method takes 1–2 minutes per report at `d = 4096` on a 2-core machine and
//! criterion needs 10 samples, so the whole bench takes about 20 minutes there; set
//! `NC_METRICS_DIMS=512,2048` for a quick run.
//!
//! Run: `cargo bench -p etf-benches --bench nc_metrics`; results in docs/benchmarks.md.

use collapse_metrics::{
    reference, ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::time::Duration;
use tch::{Device, Kind, Tensor};

const SAMPLES: i64 = 10_000;
const CLASSES: i64 = 10;
const DIMS: [i64; 3] = [512, 2048, 4096];
const BATCH: i64 = 1_000;

struct Layer {
    features: Tensor,
    labels: Tensor,
    weight: Tensor,
    bias: Tensor,
}

/// Noisy clusters around random class centres, and a classifier near the centres.
fn layer(dim: i64) -> Layer {
    tch::manual_seed(0);
    let opts = (Kind::Float, Device::Cpu);
    let centres = Tensor::randn([CLASSES, dim], opts);
    let labels = Tensor::randint(CLASSES, [SAMPLES], (Kind::Int64, Device::Cpu));
    let features = centres.index_select(0, &labels) + Tensor::randn([SAMPLES, dim], opts) * 2.0;
    Layer {
        features,
        labels,
        weight: &centres + Tensor::randn([CLASSES, dim], opts) * 0.5,
        bias: Tensor::randn([CLASSES], opts),
    }
}

fn streaming(l: &Layer) -> CollapseReport {
    let dim = l.features.size()[1] as usize;
    let batches = || {
        l.features
            .split(BATCH, 0)
            .into_iter()
            .zip(l.labels.split(BATCH, 0))
    };
    let mut pass1 = ClassMeans::new(CLASSES as usize, dim, Device::Cpu).expect("valid setup");
    for (f, y) in batches() {
        pass1.update(&f, &y).expect("valid batch");
    }
    let stats = pass1
        .finalize(GlobalMean::Weighted)
        .expect("every class seen");
    let clf = Classifier {
        weight: &l.weight,
        bias: Some(&l.bias),
    };
    let mut pass2 = CollapseAccumulator::new(&stats, Some(clf)).expect("valid classifier");
    for (f, y) in batches() {
        pass2.update(&f, &y).expect("valid batch");
    }
    pass2.finalize().expect("every class seen")
}

fn textbook(l: &Layer) -> CollapseReport {
    let clf = Classifier {
        weight: &l.weight,
        bias: Some(&l.bias),
    };
    reference::collapse_report(
        &l.features,
        &l.labels,
        CLASSES as usize,
        Some(clf),
        GlobalMean::Weighted,
    )
    .expect("valid input")
}

/// `NC_METRICS_DIMS` (comma-separated) or all of [`DIMS`].
fn dims() -> Vec<i64> {
    std::env::var("NC_METRICS_DIMS")
        .ok()
        .map(|v| v.split(',').filter_map(|d| d.trim().parse().ok()).collect())
        .unwrap_or_else(|| DIMS.to_vec())
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("nc_metrics");
    // The textbook method takes a minute per report at d = 4096: one iteration per sample.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for dim in dims() {
        let l = layer(dim);
        group.bench_with_input(BenchmarkId::new("streaming", dim), &l, |b, l| {
            b.iter(|| streaming(l))
        });
        group.bench_with_input(BenchmarkId::new("textbook", dim), &l, |b, l| {
            b.iter(|| textbook(l))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
