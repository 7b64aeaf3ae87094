//! Helpers shared by the integration tests: tiny configs, an optimiser over the model's
//! trainable tensors, and a small image-like classification task.
#![allow(dead_code)]

use etf_transformer::{EtfBlocks, FfnEtfConfig, FfnMatrices, Vit, VitConfig};
use simplex_etf::optim::{AdamWConfig, Optimizer, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// A tiny ViT for `[1, 8, 8]` images: patch 4 (4 patches), d = 16, 2 blocks, 2 heads, r = 2.
pub fn tiny(blocks: EtfBlocks, matrices: FfnMatrices) -> VitConfig {
    VitConfig {
        patch: 4,
        dim: 16,
        depth: 2,
        heads: 2,
        mlp_ratio: 2.0,
        ffn_etf: FfnEtfConfig {
            blocks,
            matrices,
            seed: 5,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// AdamW (with weight decay on the weights) over every trainable tensor of `vit`.
pub fn adamw(vit: &Vit, lr: f64, weight_decay: f64) -> Optimizer {
    let mut opt = Optimizer::new(OptimizerConfig::AdamW(AdamWConfig {
        lr,
        weight_decay,
        ..Default::default()
    }));
    for p in vit.named_trainable() {
        opt.add(&p).expect("fresh optimiser");
    }
    opt
}

/// One cross-entropy step on `(xs, ys)`; returns the loss.
pub fn train_step(vit: &Vit, opt: &mut Optimizer, xs: &Tensor, ys: &Tensor) -> f64 {
    let logits = vit.forward_t(xs, true).expect("forward");
    let loss = logits.cross_entropy_for_logits(ys);
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss.double_value(&[])
}

/// Accuracy of `vit` (eval mode) on `(xs, ys)`.
pub fn accuracy(vit: &Vit, xs: &Tensor, ys: &Tensor) -> f64 {
    let logits = tch::no_grad(|| vit.forward_t(xs, false).expect("forward"));
    logits
        .argmax(-1, false)
        .eq_tensor(ys)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[])
}

/// An image-like task: `classes` random 1×8×8 templates, each sample its template plus Gaussian
/// noise of standard deviation `noise`. Returns images `[classes·per_class, 1, 8, 8]` and labels.
pub fn template_images(classes: i64, per_class: i64, noise: f64, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let opts = (Kind::Float, Device::Cpu);
    let templates = Tensor::randn([classes, 1, 8, 8], opts);
    let labels = Tensor::arange(classes, (Kind::Int64, Device::Cpu))
        .repeat_interleave_self_int(per_class, 0, None);
    let images = templates.index_select(0, &labels)
        + Tensor::randn([classes * per_class, 1, 8, 8], opts) * noise;
    (images, labels)
}
