//! One optimiser step, per-tensor against packed (`Optimizer::pack`): SGD with momentum and
//! weight decay over the 5 × 400 MLP's parameter shapes, AdamW over the CPU ViT's (d = 64,
//! 4 blocks). Gradients are set once; each iteration is one `step`.
//!
//! Run: `cargo bench -p etf-benches --bench optimizer_layout`.

use criterion::{criterion_group, criterion_main, Criterion};
use simplex_etf::optim::{AdamWConfig, Optimizer, OptimizerConfig, SgdConfig};
use tch::{Device, Kind, Tensor};

/// `(shape, weight decay)` of the 5 × 400 MLP with BatchNorm and its classifier.
fn mlp_shapes() -> Vec<(Vec<i64>, bool)> {
    let mut v = Vec::new();
    let mut fan_in = 784;
    for _ in 0..5 {
        v.push((vec![400, fan_in], true));
        v.push((vec![400], false));
        v.push((vec![400], false)); // BatchNorm γ
        v.push((vec![400], false)); // BatchNorm β
        fan_in = 400;
    }
    v.push((vec![10, 400], true));
    v.push((vec![10], false));
    v
}

/// `(shape, weight decay)` of the 4-block ViT (d = 64, FFN 256, patch 7, 10 classes).
fn vit_shapes() -> Vec<(Vec<i64>, bool)> {
    let d = 64;
    let mut v = vec![
        (vec![d, 1, 7, 7], true),
        (vec![d], false),
        (vec![1, 17, d], false),
    ];
    for _ in 0..4 {
        v.extend([
            (vec![d], false),
            (vec![d], false),
            (vec![3 * d, d], true),
            (vec![3 * d], false),
            (vec![d, d], true),
            (vec![d], false),
            (vec![d], false),
            (vec![d], false),
            (vec![4 * d, d], true),
            (vec![4 * d], false),
            (vec![d, 4 * d], true),
            (vec![d], false),
        ]);
    }
    v.extend([
        (vec![d], false),
        (vec![d], false),
        (vec![10, d], true),
        (vec![10], false),
    ]);
    v
}

/// An optimiser over fresh parameters of `shapes`, each with a gradient, stepped once so the
/// state exists; packed when asked.
fn setup(
    shapes: &[(Vec<i64>, bool)],
    cfg: OptimizerConfig,
    packed: bool,
) -> (Optimizer, Vec<Tensor>) {
    let mut opt = Optimizer::new(cfg);
    let mut params = Vec::new();
    for (i, (shape, wd)) in shapes.iter().enumerate() {
        let n: i64 = shape.iter().product();
        let p = ((Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.37 + i as f64).sin() * 0.1)
            .view(shape.as_slice())
            .set_requires_grad(true);
        opt.add_param(&format!("p{i}"), &p, *wd).unwrap();
        params.push(p);
    }
    if packed {
        opt.pack().unwrap();
    }
    let loss: Tensor = params
        .iter()
        .map(|p| (p * p).sum(Kind::Float))
        .fold(Tensor::from(0f32), |a, b| a + b);
    loss.backward();
    opt.step();
    (opt, params)
}

fn bench(c: &mut Criterion) {
    tch::set_num_threads(1);
    let sgd = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 5e-4,
        ..SgdConfig::default()
    });
    let adamw = OptimizerConfig::AdamW(AdamWConfig {
        lr: 2e-3,
        weight_decay: 0.05,
        ..AdamWConfig::default()
    });
    for (name, shapes, cfg) in [
        ("mlp-sgd", mlp_shapes(), sgd),
        ("vit-adamw", vit_shapes(), adamw),
    ] {
        let mut group = c.benchmark_group(name);
        for (layout, packed) in [("per-tensor", false), ("packed", true)] {
            let (mut opt, _params) = setup(&shapes, cfg, packed);
            group.bench_function(layout, |b| b.iter(|| opt.step()));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
