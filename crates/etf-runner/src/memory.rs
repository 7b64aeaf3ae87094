//! The memory a job needs, estimated from its configuration before anything is allocated, so
//! that a model too large for the machine is an error naming the keys instead of a libtorch
//! panic or an abort.
//!
//! The estimate counts, in f32: the parameters, their gradients, the optimiser's state (SGD
//! with momentum one buffer, AdamW two), and the activations of one training batch kept for
//! the backward pass (and of one measuring batch). It is a lower bound of what libtorch
//! allocates; a job is refused when even that exceeds the memory available: on the CPU
//! `MemAvailable` of `/proc/meminfo`, on CUDA [`CUDA_BOUND`].

use crate::config::{ExperimentConfig, ModelConfig};
use anyhow::{bail, Result};
use simplex_etf::optim::OptimizerConfig;
use tch::Device;

/// The bound on CUDA, where libtorch does not say how much memory is free: 192 GiB, more
/// than any one GPU has.
pub const CUDA_BOUND: f64 = 192.0 * GIB;

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes of one f32.
const F32: f64 = 4.0;

/// The estimate of one job, in bytes, by part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Parameters (every scalar of the model).
    pub params: f64,
    /// Their gradients.
    pub grads: f64,
    /// The optimiser's buffers.
    pub optimizer: f64,
    /// The activations of a training batch and a measuring batch.
    pub activations: f64,
}

impl Estimate {
    /// All parts together.
    pub fn total(&self) -> f64 {
        self.params + self.grads + self.optimizer + self.activations
    }
}

/// The estimate for `cfg`'s model on samples of `shape` with `classes` classes. Computed in
/// f64, so that no size overflows.
pub fn estimate(cfg: &ExperimentConfig, shape: &[i64], classes: i64) -> Estimate {
    let input: f64 = shape.iter().map(|&d| d as f64).product();
    let c = classes as f64;
    let t = &cfg.train;
    let (batch, eval) = (t.batch_size as f64, t.eval_batch_size as f64);
    let (params, per_sample) = match &cfg.model {
        ModelConfig::Mlp(m) => {
            let (w, l) = (m.width as f64, m.depth as f64);
            let bn = if m.batch_norm { 4.0 * w } else { 0.0 };
            let params = input * w + w + (l - 1.0) * (w * w + w) + l * bn + w * c + c;
            // Linear output, BatchNorm output and ReLU output of each hidden layer.
            (params, input + 3.0 * l * w + c)
        }
        ModelConfig::Vit(v) => {
            let (d, l, p) = (v.dim as f64, v.depth as f64, v.patch as f64);
            let h = (v.mlp_ratio * d).round();
            let (channels, rows, cols) = match shape {
                [ch, r, co] => (*ch as f64, *r as f64, *co as f64),
                _ => (1.0, input, 1.0),
            };
            let tokens = (rows / p).floor() * (cols / p).floor() + 1.0;
            let block = 4.0 * d + 4.0 * d * d + 4.0 * d + 2.0 * d * h + h + d;
            let params =
                d * channels * p * p + 2.0 * d + tokens * d + l * block + 2.0 * d + d * c + c;
            // Per block: the residual stream, LayerNorms, q, k, v, attention weights of every
            // head, the FFN's hidden layer (before and after GELU).
            let heads = v.heads as f64;
            let per_block = tokens * (8.0 * d + 2.0 * h) + 2.0 * heads * tokens * tokens;
            (params, input + l * per_block + c)
        }
    };
    let buffers = match t.optimizer {
        OptimizerConfig::Sgd(s) if s.momentum != 0.0 => 1.0,
        OptimizerConfig::Sgd(_) => 0.0,
        OptimizerConfig::AdamW(_) => 2.0,
    };
    Estimate {
        params: F32 * params,
        grads: F32 * params,
        optimizer: F32 * buffers * params,
        activations: F32 * (batch + eval) * per_sample,
    }
}

/// Memory available to a job on `device`: `MemAvailable` on the CPU (`None` where
/// `/proc/meminfo` does not say), [`CUDA_BOUND`] on CUDA.
pub fn available(device: Device) -> Option<f64> {
    if device.is_cuda() {
        return Some(CUDA_BOUND);
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Human-readable bytes.
fn bytes(b: f64) -> String {
    if b >= 1e12 {
        format!("{:.1} TB", b / 1e12)
    } else if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

/// Refuses a job whose estimate exceeds the memory available on `device`, naming the keys
/// that size it.
pub fn check(cfg: &ExperimentConfig, shape: &[i64], classes: i64, device: Device) -> Result<()> {
    let Some(free) = available(device) else {
        return Ok(());
    };
    let e = estimate(cfg, shape, classes);
    if e.total() <= free {
        return Ok(());
    }
    let keys = match &cfg.model {
        ModelConfig::Mlp(m) => format!("model.width = {}, model.depth = {}", m.width, m.depth),
        ModelConfig::Vit(v) => format!(
            "model.dim = {}, model.depth = {}, model.mlp_ratio = {}, model.patch = {}",
            v.dim, v.depth, v.mlp_ratio, v.patch
        ),
    };
    bail!(
        "{keys}, train.batch_size = {}, train.eval_batch_size = {}: the model needs at least \
         {} (parameters {}, gradients {}, optimiser state {}, activations {}), more than the \
         {} available on {device:?}; make the model or the batches smaller",
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
        bytes(e.total()),
        bytes(e.params),
        bytes(e.grads),
        bytes(e.optimizer),
        bytes(e.activations),
        bytes(free),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MLP: &str = r#"
name = "m"
[data]
dataset = "mnist"
[model]
kind = "mlp"
depth = 2
width = 100
batch_norm = false
[train]
epochs = 1
batch_size = 10
eval_batch_size = 10
[train.optimizer]
kind = "adamw"
lr = 0.001
[[variant]]
name = "b"
kind = "baseline"
"#;

    #[test]
    fn the_mlp_estimate_counts_every_parameter_and_the_adamw_buffers() {
        let cfg = ExperimentConfig::parse(MLP, &[]).unwrap();
        let e = estimate(&cfg, &[1, 28, 28], 10);
        // 784·100 + 100, 100·100 + 100, 100·10 + 10: what nn.Linear holds.
        let params = (784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10) as f64;
        assert_eq!(e.params, 4.0 * params);
        assert_eq!(e.grads, e.params);
        assert_eq!(e.optimizer, 2.0 * e.params);
        assert!(e.activations > 0.0);
    }

    #[test]
    fn a_model_beyond_the_memory_is_refused_naming_its_keys() {
        let cfg = ExperimentConfig::parse(MLP, &["model.width=1000000000".into()]).unwrap();
        let err = check(&cfg, &[1, 28, 28], 10, Device::Cuda(0)).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("model.width = 1000000000"), "{msg}");
        assert!(msg.contains("TB") && msg.contains("available"), "{msg}");
        let cfg = ExperimentConfig::parse(MLP, &[]).unwrap();
        check(&cfg, &[1, 28, 28], 10, Device::Cuda(0)).unwrap();
    }
}
