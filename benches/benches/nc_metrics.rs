//! A full neural-collapse report (NC1–NC4, CDNV, NCC, classifier measures) for one layer,
//! three ways on the same data:
//!
//! - `core`: the libtorch-free streaming accumulators of `collapse-metrics` on host f32 slices;
//! - `tch`: the same accumulators fed `tch::Tensor` batches (feature `tch`), accumulated by
//!   libtorch on the tensors' device (here the CPU), as the trainer does;
//! - `textbook`: `collapse_metrics::reference` (`d × d` covariances `Σ_W`, `Σ_B` and an
//!   eigendecomposition pseudo-inverse, all in memory).
//!
//! `N = 10 000` f32 features, `C = 10` classes, `d ∈ {512, 2048, 4096}`, a classifier with
//! bias, on CPU; the streaming methods read the features in batches of 1 000 rows (as a
//! training loop would hand them over). All three return the same report (the crate's tests
//! check it).
//!
//! The textbook method takes about a minute per report at `d = 4096` on a 2-core machine and
//! criterion needs 10 samples, so the whole bench takes about 20 minutes there; set
//! `NC_METRICS_DIMS=512,2048` for a quick run. Run with one thread (`OMP_NUM_THREADS=1`; the
//! core is single-threaded):
//! `OMP_NUM_THREADS=1 cargo bench -p etf-benches --bench nc_metrics`; results in docs/benchmarks.md.

use collapse_metrics::tensor::TensorClassifier;
use collapse_metrics::{
    reference, ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean, Matrix,
    Values,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use etf_benches::CollapseLayer;
use std::time::Duration;
use tch::Tensor;

const SAMPLES: usize = 10_000;
const CLASSES: usize = 10;
const DIMS: [usize; 3] = [512, 2048, 4096];
const BATCH: usize = 1_000;

fn classifier(l: &CollapseLayer) -> Classifier<'_> {
    Classifier {
        weight: Matrix::new(&l.weight, l.classes, l.dim).expect("C × d"),
        bias: Some(Values::from(&l.bias)),
    }
}

fn core(l: &CollapseLayer) -> CollapseReport {
    let features = Matrix::new(&l.features, l.labels.len(), l.dim).expect("N × d");
    let batches = || {
        (0..l.labels.len()).step_by(BATCH).map(move |s| {
            let len = BATCH.min(l.labels.len() - s);
            (features.slice_rows(s, len), &l.labels[s..s + len])
        })
    };
    let mut pass1 = ClassMeans::new(l.classes, l.dim).expect("valid setup");
    for (f, y) in batches() {
        pass1.update(f, y).expect("valid batch");
    }
    let stats = pass1
        .finalize(GlobalMean::Weighted)
        .expect("every class seen");
    let mut pass2 =
        CollapseAccumulator::new(&stats, Some(classifier(l))).expect("valid classifier");
    for (f, y) in batches() {
        pass2.update(f, y).expect("valid batch");
    }
    pass2.finalize().expect("every class seen")
}

/// The layer as tensors: features `[N, d]`, labels, weight and bias.
struct Tensors {
    features: Tensor,
    labels: Tensor,
    weight: Tensor,
    bias: Tensor,
}

impl Tensors {
    fn new(l: &CollapseLayer) -> Self {
        let (n, d, c) = (l.labels.len() as i64, l.dim as i64, l.classes as i64);
        Tensors {
            features: Tensor::from_slice(&l.features).reshape([n, d]),
            labels: Tensor::from_slice(&l.labels),
            weight: Tensor::from_slice(&l.weight).reshape([c, d]),
            bias: Tensor::from_slice(&l.bias),
        }
    }
}

fn tch_path(t: &Tensors) -> CollapseReport {
    let dim = t.features.size()[1] as usize;
    let batch = BATCH as i64;
    let batches = || {
        t.features
            .split(batch, 0)
            .into_iter()
            .zip(t.labels.split(batch, 0))
    };
    let mut pass1 = ClassMeans::new(CLASSES, dim).expect("valid setup");
    for (f, y) in batches() {
        pass1.update_tensor(&f, &y).expect("valid batch");
    }
    let stats = pass1
        .finalize(GlobalMean::Weighted)
        .expect("every class seen");
    let clf = TensorClassifier {
        weight: &t.weight,
        bias: Some(&t.bias),
    };
    let mut pass2 =
        CollapseAccumulator::with_tensor_classifier(&stats, Some(clf)).expect("valid classifier");
    for (f, y) in batches() {
        pass2.update_tensor(&f, &y).expect("valid batch");
    }
    pass2.finalize().expect("every class seen")
}

fn textbook(l: &CollapseLayer) -> CollapseReport {
    let features = Matrix::new(&l.features, l.labels.len(), l.dim).expect("N × d");
    reference::collapse_report(
        features,
        &l.labels,
        l.classes,
        Some(classifier(l)),
        GlobalMean::Weighted,
    )
    .expect("valid input")
}

/// A comma-separated list from the environment, or `default`.
fn list(var: &str, default: &[&str]) -> Vec<String> {
    std::env::var(var).map_or_else(
        |_| default.iter().map(|s| s.to_string()).collect(),
        |v| v.split(',').map(|s| s.trim().to_string()).collect(),
    )
}

fn bench(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("nc_metrics");
    // The textbook method takes a minute per report at d = 4096: one iteration per sample.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let dims = list("NC_METRICS_DIMS", &["512", "2048", "4096"]);
    let methods = list("NC_METRICS_METHODS", &["core", "tch", "textbook"]);
    for dim in DIMS.into_iter().filter(|d| dims.contains(&d.to_string())) {
        let l = CollapseLayer::new(SAMPLES, dim, CLASSES);
        let t = Tensors::new(&l);
        for method in &methods {
            let id = BenchmarkId::new(method.as_str(), dim);
            match method.as_str() {
                "core" => group.bench_function(id, |b| b.iter(|| core(&l))),
                "tch" => group.bench_function(id, |b| b.iter(|| tch_path(&t))),
                "textbook" => group.bench_function(id, |b| b.iter(|| textbook(&l))),
                other => panic!("NC_METRICS_METHODS: unknown method {other}"),
            };
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
