//! Time of the trainer's measuring pass (`etf_train::evaluate`: class means of every layer on the
//! probe set, then the collapse reports on the probe and test sets, test loss and accuracy),
//! for the before/after comparison of `benches/compare-measuring-pass`.
//!
//! `cargo run --release -p adaptive-etf --example measure_pass -- [REPEATS] [THREADS] [WIDTH] [DEVICE]`
//! prints `measure_pass seconds=<median> min=<min> nc1=<layer 1 NC1>` over `REPEATS` calls
//! after one warm-up: a 784 → 5 × WIDTH MLP (BatchNorm), probe 5 000 and test 10 000
//! synthetic samples, 10 classes, evaluation batches of 1 000, as `experiments/*-cpu.toml`.
//! `DEVICE` is `cpu` (default) or `cuda`; on CUDA the device is synchronised before each
//! timer read (the pass itself ends with host reads, so it is synchronised anyway).

mod common;

use adaptive_etf::{Mlp, MlpConfig, MlpVariant};
use etf_data::Split;
use etf_train::evaluate;
use tch::{nn, Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let repeats: usize = args.get(1).map_or(Ok(7), |s| s.parse())?;
    let threads: i32 = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let width: i64 = args.get(3).map_or(Ok(400), |s| s.parse())?;
    let device = match args.get(4).map(String::as_str) {
        Some("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    };
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let split = |n: i64| {
        let y = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
        // Inputs that depend on the label, so the classes are separable to some degree.
        let x = Tensor::randn([n, 784], (Kind::Float, Device::Cpu))
            + y.to_kind(Kind::Float).unsqueeze(1) * 0.1;
        let (x, y) = (x.to_device(device), y.to_device(device));
        Split::new(x, y, 10)
    };
    let (probe, test) = (split(5_000)?, split(10_000)?);
    let cfg = MlpConfig {
        depth: 5,
        width,
        ..MlpConfig::default()
    };
    let vs = nn::VarStore::new(device);
    let mlp = Mlp::new(&vs.root(), &cfg, 784, 10, &MlpVariant::Baseline)?;
    let how = common::sgd_spec(1, 1_000).measure(device);
    let first = evaluate(&mlp, &probe, &test, &how)?; // warm-up: allocator, libtorch kernels
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = std::time::Instant::now();
        evaluate(&mlp, &probe, &test, &how)?;
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "measure_pass seconds={:.4} min={:.4} nc1={:.6}",
        times[times.len() / 2],
        times[0],
        first.layers[0].train.nc1
    );
    Ok(())
}
