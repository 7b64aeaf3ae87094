//! A tiny ViT learns an image-like task on CPU in seconds, with and without ETF FFNs.

mod common;

use common::{accuracy, adamw, template_images, tiny, train_step};
use etf_transformer::{EtfBlocks, FfnMatrices, Vit, VitConfig};
use tch::{nn, Device};

fn learns(cfg: &VitConfig) -> f64 {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let vit = Vit::new(&vs.root(), cfg, [1, 8, 8], 4).unwrap();
    let mut opt = adamw(&vit, 3e-3, 0.05);
    let (xs, ys) = template_images(4, 24, 0.8, 7);
    let first = train_step(&vit, &mut opt, &xs, &ys);
    let mut last = first;
    for _ in 0..40 {
        last = train_step(&vit, &mut opt, &xs, &ys);
    }
    assert!(last < first, "loss {first} -> {last}");
    let acc = accuracy(&vit, &xs, &ys);
    eprintln!("loss {first:.3} -> {last:.3}, train accuracy {acc:.3}");
    acc
}

#[test]
fn baseline_reaches_95_percent() {
    let acc = learns(&tiny(EtfBlocks::None, FfnMatrices::Both));
    assert!(acc >= 0.95, "train accuracy {acc}");
}

#[test]
fn etf_ffn_all_blocks_both_matrices_reaches_95_percent() {
    let acc = learns(&tiny(EtfBlocks::All, FfnMatrices::Both));
    assert!(acc >= 0.95, "train accuracy {acc}");
}

#[test]
fn etf_ffn_and_etf_head_reach_95_percent() {
    let cfg = VitConfig {
        etf_head: true,
        ..tiny(EtfBlocks::All, FfnMatrices::Both)
    };
    let acc = learns(&cfg);
    assert!(acc >= 0.95, "train accuracy {acc}");
}
