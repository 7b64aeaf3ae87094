//! Training throughput of the MLP through the real [`Trainer`] code path, for the side-by-side
//! comparison with `benches/reference/mlp_throughput.py` (run both with
//! `benches/compare-mlp-throughput`).
//!
//! `cargo run --release -p adaptive-etf --example mlp_throughput -- [EPOCHS] [N] [THREADS] [DEVICE]`
//! prints one line per variant: `variant samples_per_second` (median over the epochs after the
//! first, which warms up the allocator).

mod common;

use adaptive_etf::{Mlp, MlpConfig, MlpVariant};
use etf_data::Split;
use etf_train::{NoProgress, RunData, Trainer};
use simplex_etf::LockOrientation;
use tch::{nn, Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = args.get(1).map_or(Ok(4), |s| s.parse())?;
    let n: i64 = args.get(2).map_or(Ok(25_600), |s| s.parse())?;
    let threads: i32 = args.get(3).map_or(Ok(2), |s| s.parse())?;
    let device = match args.get(4).map(String::as_str) {
        Some("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    };
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    // Same shapes as the reference script: MNIST-sized inputs, 10 classes, in memory.
    let x = Tensor::randn([n, 784], (Kind::Float, device));
    let y = Tensor::randint(10, [n], (Kind::Int64, device));
    let train = Split::new(x, y, 10)?;
    let probe = train.subset(&(0..500).collect::<Vec<i64>>())?;
    let cfg = MlpConfig {
        depth: 5,
        width: 400,
        ..MlpConfig::default()
    };
    let variants = [
        ("baseline", MlpVariant::Baseline),
        // The state of an adaptive run locked after hidden layer 1: hidden 2–5 and the classifier
        // are ETF maps. Dense product (random orientation) and the canonical fast path.
        (
            "locked-after-1-dense",
            MlpVariant::FixedLastK {
                k: 5,
                orientation: LockOrientation::Random,
            },
        ),
        (
            "locked-after-1-canonical",
            MlpVariant::FixedLastK {
                k: 5,
                orientation: LockOrientation::Canonical,
            },
        ),
    ];
    for (name, variant) in variants {
        let vs = nn::VarStore::new(device);
        let mlp = Mlp::new(&vs.root(), &cfg, 784, 10, &variant)?;
        let spec = common::sgd_spec(epochs, 500);
        let mut trainer = Trainer::new(mlp, vs, spec)?;
        let run = RunData {
            train: &train,
            probe: &probe,
            test: &probe,
        };
        let mut rates = Vec::new();
        while !trainer.finished() {
            rates.push(trainer.run_epoch(&run, &mut NoProgress)?.samples_per_second);
        }
        let mut warm: Vec<f64> = rates[1.min(rates.len() - 1)..].to_vec();
        warm.sort_by(f64::total_cmp);
        println!("{name} {:.0}", warm[warm.len() / 2]);
    }
    Ok(())
}
