//! Forward + backward of one linear layer: a trainable dense `Linear`, a frozen dense ETF map,
//! and the canonical ETF fast path (spec §2; `simplex-etf`).
//!
//! Batch 128, width `H ∈ {256, 1024, 4096}`, square (`H → H`) and classifier (`H → 10`) shapes.
//! A fourth case, `trainable_reordered`, is the trainable layer evaluated in the product order
//! the frozen layer uses on CPU for narrowing maps (`(W xᵀ + b)ᵀ`, see `simplex-etf`), so the
//! share of the saving that comes from that order, rather than from skipping the weight
//! gradient, can be read off.
//!
//! The input requires grad in every case, as for a hidden layer, so all of them compute the
//! input gradient; only the two trainable cases also compute a weight gradient. Gradients are
//! reset to undefined before each iteration (as `zero_grad(set_to_none=True)` does), so none of
//! them pays for accumulation. Torch threads: `ETF_BENCH_THREADS`, default all cores. On CUDA
//! (when present) the device is synchronised before the timer is read.
//!
//! Run: `cargo bench -p etf-benches --bench etf_vs_dense`; results in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use simplex_etf::optim::set_grads_to_none;
use simplex_etf::{linear_by_rows, EtfLinear, EtfSpec, LockOrientation};
use std::time::Duration;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

const BATCH: i64 = 128;
const WIDTHS: [i64; 3] = [256, 1024, 4096];
const CLASSES: i64 = 10;

/// The three layers under test, built in one VarStore.
struct Layers {
    _vs: nn::VarStore,
    dense: nn::Linear,
    frozen_etf: EtfLinear,
    canonical: EtfLinear,
}

impl Layers {
    fn new(in_dim: i64, out_dim: i64, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let dense = nn::linear(&root / "dense", in_dim, out_dim, Default::default());
        let random = EtfSpec::new(LockOrientation::Random, 1);
        let frozen_etf = EtfLinear::new(&(&root / "etf"), in_dim, out_dim, true, &random)
            .expect("valid ETF dimensions");
        let canonical =
            EtfLinear::new(&(&root / "can"), in_dim, out_dim, true, &EtfSpec::default())
                .expect("valid ETF dimensions");
        Self {
            _vs: vs,
            dense,
            frozen_etf,
            canonical,
        }
    }
}

/// A trainable dense layer evaluated as `(W xᵀ + b)ᵀ` (made contiguous), the order the frozen
/// ETF layer uses for narrowing maps on CPU.
#[derive(Debug)]
struct Reordered {
    weight: Tensor,
    bias: Tensor,
}

impl Reordered {
    /// Shares `dense`'s variables (shallow clones), so both cases train the same tensors.
    fn new(dense: &nn::Linear) -> Self {
        let bias = dense.bs.as_ref().expect("bench layers have a bias");
        Self {
            weight: dense.ws.shallow_clone(),
            bias: bias.shallow_clone(),
        }
    }
}

impl Module for Reordered {
    fn forward(&self, xs: &Tensor) -> Tensor {
        linear_by_rows(xs, &self.weight, Some(&self.bias)).expect("bench shapes match")
    }
}

/// One forward + backward; gradients reset first so each iteration allocates them afresh.
fn step(layer: &dyn Module, x: &Tensor, params: &[&Tensor], device: Device) {
    let mut all = vec![x];
    all.extend_from_slice(params);
    set_grads_to_none(&all);
    layer.forward(x).sum(Kind::Float).backward();
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn bench_device(c: &mut Criterion, device: Device, label: &str) {
    for (shape, out_of) in [("square", None), ("classifier", Some(CLASSES))] {
        let mut group = c.benchmark_group(format!("etf_vs_dense/{label}/{shape}"));
        // The classifier shape's steps take well under a millisecond, so more samples cost
        // little and steady its medians on a shared machine.
        let (samples, seconds) = if out_of.is_some() { (40, 4) } else { (10, 2) };
        group
            .sample_size(samples)
            .warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(seconds));
        for h in WIDTHS {
            let out_dim = out_of.unwrap_or(h);
            let layers = Layers::new(h, out_dim, device);
            let x = Tensor::randn([BATCH, h], (Kind::Float, device)).set_requires_grad(true);
            let dense_params: Vec<&Tensor> = std::iter::once(&layers.dense.ws)
                .chain(layers.dense.bs.as_ref())
                .collect();
            let reordered = Reordered::new(&layers.dense);
            // The two cases of the headline ratio run back to back, so load drift on a shared
            // machine between them stays small.
            let cases: [(&str, &dyn Module, Vec<&Tensor>); 4] = [
                ("trainable_dense", &layers.dense, dense_params.clone()),
                (
                    "frozen_etf_dense",
                    &layers.frozen_etf,
                    layers.frozen_etf.bias().into_iter().collect(),
                ),
                (
                    "canonical_fast",
                    &layers.canonical,
                    layers.canonical.bias().into_iter().collect(),
                ),
                ("trainable_reordered", &reordered, dense_params),
            ];
            for (name, layer, params) in cases {
                group.bench_with_input(BenchmarkId::new(name, h), &h, |b, _| {
                    b.iter(|| step(layer, &x, &params, device))
                });
            }
        }
        group.finish();
    }
}

fn etf_vs_dense(c: &mut Criterion) {
    let threads = std::env::var("ETF_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as i32));
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    bench_device(c, Device::Cpu, "cpu");
    if tch::Cuda::is_available() {
        bench_device(c, Device::Cuda(0), "cuda");
    }
}

criterion_group!(benches, etf_vs_dense);
criterion_main!(benches);
