//! Shapes and parameter counts of the ViT against the hand-written formula.

mod common;

use etf_transformer::{expected_param_count, EtfBlocks, FfnEtfConfig, FfnMatrices, Vit, VitConfig};
use tch::{nn, Device, Kind, Tensor};

fn check(cfg: &VitConfig, shape: [i64; 3], classes: i64) {
    let vs = nn::VarStore::new(Device::Cpu);
    let vit = Vit::new(&vs.root(), cfg, shape, classes).unwrap();
    let expected = expected_param_count(cfg, shape, classes).unwrap();
    assert_eq!(vit.param_count(), expected, "{cfg:?} on {shape:?}");
    // Every scalar of the VarStore is counted once by total_params.
    let in_store: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    assert_eq!(
        in_store, expected.total,
        "{cfg:?}: VarStore holds other tensors"
    );
    // Trainable list: unique names, and exactly the learnable scalars.
    let named = vit.named_trainable();
    let mut names: Vec<_> = named.iter().map(|p| p.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), named.len());
    assert!(
        named.iter().all(|p| vs.variables().contains_key(&p.name)),
        "names follow the VarStore"
    );

    let [c, h, w] = shape;
    let xs = Tensor::randn([3, c, h, w], (Kind::Float, Device::Cpu));
    let f = vit.forward_features(&xs, false).unwrap();
    assert_eq!(f.logits.size(), [3, classes]);
    assert_eq!(f.layers.len(), cfg.depth);
    for tap in &f.layers {
        assert_eq!(tap.size(), [3, cfg.dim]);
    }
    assert_eq!(f.penultimate.size(), [3, cfg.dim]);
    // The taps are pre-final-LN: the head input is the LayerNorm of the last tap.
    let (ws, bs) = vit.head_weight_bias();
    let relogits = f.penultimate.linear(&ws, bs.as_ref());
    assert!(relogits.allclose(&f.logits, 1e-5, 1e-5, false));
}

fn etf(blocks: EtfBlocks, matrices: FfnMatrices) -> FfnEtfConfig {
    FfnEtfConfig {
        blocks,
        matrices,
        ..Default::default()
    }
}

#[test]
fn counts_match_formula_for_mnist_and_cifar_shapes() {
    let base = VitConfig {
        patch: 7,
        dim: 32,
        depth: 3,
        heads: 4,
        mlp_ratio: 4.0,
        ..Default::default()
    };
    check(&base, [1, 28, 28], 10);
    check(
        &VitConfig {
            patch: 4,
            mlp_ratio: 2.0,
            ..base.clone()
        },
        [3, 32, 32],
        10,
    );
    check(
        &VitConfig {
            patch: 8,
            dim: 24,
            heads: 3,
            ..base.clone()
        },
        [3, 32, 32],
        100,
    );
    // Non-square images and ratio 1.5.
    check(
        &VitConfig {
            patch: 2,
            dim: 12,
            depth: 1,
            heads: 2,
            mlp_ratio: 1.5,
            ..base
        },
        [2, 4, 6],
        3,
    );
}

#[test]
fn counts_match_formula_with_etf_ffns_and_head() {
    let base = VitConfig {
        patch: 4,
        dim: 16,
        depth: 3,
        heads: 2,
        mlp_ratio: 3.0,
        ..Default::default()
    };
    let variants = [
        etf(EtfBlocks::All, FfnMatrices::Both),
        etf(EtfBlocks::All, FfnMatrices::W1),
        etf(EtfBlocks::LastK(2), FfnMatrices::W2),
        etf(EtfBlocks::LastK(1), FfnMatrices::Both),
        etf(EtfBlocks::Adaptive, FfnMatrices::Both),
        FfnEtfConfig {
            freeze_bias: true,
            ..etf(EtfBlocks::All, FfnMatrices::Both)
        },
        FfnEtfConfig {
            orientation: simplex_etf::LockOrientation::Canonical,
            ..etf(EtfBlocks::LastK(3), FfnMatrices::Both)
        },
    ];
    for ffn_etf in variants {
        for etf_head in [false, true] {
            let cfg = VitConfig {
                ffn_etf: ffn_etf.clone(),
                etf_head,
                ..base.clone()
            };
            check(&cfg, [1, 8, 8], 5);
        }
    }
}

#[test]
fn etf_reduces_learnable_but_not_total() {
    let shape = [1, 28, 28];
    let base = VitConfig {
        patch: 7,
        dim: 64,
        depth: 4,
        heads: 4,
        ..Default::default()
    };
    let b = expected_param_count(&base, shape, 10).unwrap();
    let cfg = VitConfig {
        ffn_etf: etf(EtfBlocks::All, FfnMatrices::Both),
        ..base
    };
    let e = expected_param_count(&cfg, shape, 10).unwrap();
    assert_eq!(b.total, e.total);
    assert_eq!(b.learnable - e.learnable, 4 * 2 * 64 * 256);
    assert!(e.reduction_vs(&b) > 0.6);
    // Cross-check: ffn_params of a built model.
    let vs = nn::VarStore::new(Device::Cpu);
    let vit = Vit::new(&vs.root(), &cfg, shape, 10).unwrap();
    let ffn = vit.ffn_params();
    assert_eq!(ffn.total, 4 * (64 * 256 + 256 + 256 * 64 + 64));
    assert_eq!(ffn.learnable, 4 * (256 + 64));
    for block in 0..4 {
        assert_eq!(vit.ffn_locked(block), Some((true, true)));
    }
    assert_eq!(vit.ffn_locked(4), None);
}

#[test]
fn weight_decay_only_on_weight_matrices() {
    let vs = nn::VarStore::new(Device::Cpu);
    let vit = Vit::new(
        &vs.root(),
        &common::tiny(EtfBlocks::None, FfnMatrices::Both),
        [1, 8, 8],
        3,
    )
    .unwrap();
    for p in vit.named_trainable() {
        let name = &p.name;
        let expect = name.ends_with(".weight") && !name.contains("norm") && p.tensor.dim() >= 2;
        assert_eq!(p.weight_decay, expect, "{name}");
    }
    let decayed: Vec<_> = vit
        .named_trainable()
        .into_iter()
        .filter(|p| p.weight_decay)
        .map(|p| p.name)
        .collect();
    assert!(
        decayed.contains(&"patch_embed.weight".to_string()),
        "{decayed:?}"
    );
    assert!(
        decayed.contains(&"blocks.1.attn.qkv.weight".to_string()),
        "{decayed:?}"
    );
}
