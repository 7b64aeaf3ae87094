//! Training throughput of a ViT, baseline vs ETF FFNs (all blocks, both matrices), on CPU or CUDA.
//!
//! Trains on in-memory random 28×28×1 inputs (8 batches, cycled) with AdamW (decay 0.05 on
//! weight matrices) and prints one line per variant and optimiser layout:
//! `impl=tch variant=… layout=… samples_per_s=…`.
//! The PyTorch twin is `benches/reference/vit_throughput.py`; `benches/compare-vit-throughput`
//! runs both.
//!
//! ```text
//! cargo run --release -p etf-transformer --example vit_throughput -- --steps 30 --threads 2
//! ```
//! Options (defaults): `--steps 30 --warmup 3 --batch 128 --threads 2 --dim 64 --depth 4
//! --heads 4 --mlp-ratio 4 --patch 7 --variants baseline,etf --layouts per-tensor,packed
//! --device cpu` (`cpu` or `cuda`; on CUDA the device is synchronised before each timer read;
//! `packed` is the flat-buffer AdamW, `train.optimizer.layout = "packed"`).

use std::collections::HashMap;
use std::error::Error;
use std::time::Instant;

use etf_transformer::{EtfBlocks, FfnEtfConfig, FfnMatrices, LockOrientation, Vit, VitConfig};
use simplex_etf::optim::{AdamWConfig, Layout, Optimizer, OptimizerConfig};
use tch::{nn, Device, Kind, Tensor};

fn parse_args() -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(key) = args.next() {
        let key = key
            .strip_prefix("--")
            .ok_or(format!("unexpected argument {key}"))?
            .to_string();
        let value = args.next().ok_or(format!("--{key} needs a value"))?;
        out.insert(key, value);
    }
    Ok(out)
}

fn get<T: std::str::FromStr>(
    args: &HashMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, String> {
    match args.get(key) {
        Some(v) => v
            .parse()
            .map_err(|_| format!("--{key}: cannot parse {v:?}")),
        None => Ok(default),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let steps: usize = get(&args, "steps", 30)?;
    let warmup: usize = get(&args, "warmup", 3)?;
    let batch: i64 = get(&args, "batch", 128)?;
    let threads: i32 = get(&args, "threads", 2)?;
    let variants: String = get(&args, "variants", "baseline,etf".to_string())?;
    let layouts: String = get(&args, "layouts", "per-tensor,packed".to_string())?;
    let layouts = layouts
        .split(',')
        .map(|l| match l {
            "per-tensor" => Ok((l, Layout::PerTensor)),
            "packed" => Ok((l, Layout::Packed)),
            other => Err(format!(
                "unknown layout {other}; allowed: per-tensor, packed"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let base = VitConfig {
        patch: get(&args, "patch", 7)?,
        dim: get(&args, "dim", 64)?,
        depth: get(&args, "depth", 4)?,
        heads: get(&args, "heads", 4)?,
        mlp_ratio: get(&args, "mlp-ratio", 4.0)?,
        ..Default::default()
    };
    let device = match get(&args, "device", "cpu".to_string())?.as_str() {
        "cpu" => Device::Cpu,
        "cuda" if tch::Cuda::is_available() => Device::Cuda(0),
        "cuda" => return Err("--device cuda: libtorch sees no CUDA device".into()),
        other => return Err(format!("--device: expected cpu or cuda, got {other:?}").into()),
    };
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let n_batches = 8;
    let data = Tensor::randn([n_batches, batch, 1, 28, 28], (Kind::Float, device));
    let labels = Tensor::randint(10, [n_batches, batch], (Kind::Int64, device));
    for variant in variants.split(',') {
        let ffn_etf = match variant {
            "baseline" => FfnEtfConfig::default(),
            "etf" => FfnEtfConfig {
                blocks: EtfBlocks::All,
                matrices: FfnMatrices::Both,
                orientation: LockOrientation::Random,
                ..Default::default()
            },
            other => return Err(format!("unknown variant {other}; allowed: baseline, etf").into()),
        };
        let cfg = VitConfig {
            ffn_etf,
            ..base.clone()
        };
        for &(layout_name, layout) in &layouts {
            let vs = nn::VarStore::new(device);
            let vit = Vit::new(&vs.root(), &cfg, [1, 28, 28], 10)?;
            let adamw = AdamWConfig {
                lr: 1e-3,
                weight_decay: 0.05,
                layout,
                ..Default::default()
            };
            let mut opt = Optimizer::new(OptimizerConfig::AdamW(adamw));
            for p in vit.named_trainable() {
                opt.add(&p)?;
            }
            let mut start = Instant::now();
            let mut loss = 0.0;
            for step in 0..warmup + steps {
                if step == warmup {
                    sync();
                    start = Instant::now();
                }
                let i = (step % n_batches as usize) as i64;
                let logits = vit.forward_t(&data.get(i), true)?;
                let l = logits.cross_entropy_for_logits(&labels.get(i));
                opt.zero_grad();
                l.backward();
                opt.step();
                if step + 1 == warmup + steps {
                    loss = l.double_value(&[]);
                }
            }
            sync();
            let elapsed = start.elapsed().as_secs_f64();
            let rate = (steps as i64 * batch) as f64 / elapsed;
            println!(
                "impl=tch variant={variant} layout={layout_name} samples_per_s={rate:.1} \
                 steps={steps} batch={batch} threads={threads} device={device:?} learnable={} \
                 loss={loss:.4}",
                vit.learnable_params()
            );
        }
    }
    Ok(())
}
