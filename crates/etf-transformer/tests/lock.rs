//! ETF-constrained FFN weights stay bit-identical under AdamW with weight decay; the rest moves.

mod common;

use common::{adamw, template_images, tiny, train_step};
use etf_transformer::{EtfBlocks, EtfSpec, FfnMatrices, LockOrientation, Vit, VitConfig, VitError};
use tch::{nn, Device, Tensor};

fn snapshot(vit: &Vit) -> Vec<(Tensor, Tensor, Tensor)> {
    vit.blocks()
        .iter()
        .map(|b| {
            (
                b.fc1.weight().copy(),
                b.fc2.weight().copy(),
                b.attn.qkv.ws.copy(),
            )
        })
        .collect()
}

#[test]
fn constrained_from_start_weights_never_move() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = VitConfig {
        etf_head: true,
        ..tiny(EtfBlocks::LastK(1), FfnMatrices::Both)
    };
    let vit = Vit::new(&vs.root(), &cfg, [1, 8, 8], 4).unwrap();
    let mut opt = adamw(&vit, 1e-2, 0.1);
    assert_eq!(opt.num_params(), vit.learnable_params());
    let before = snapshot(&vit);
    let (head_before, head_bias_before) = vit.head_weight_bias();
    let (head_before, head_bias_before) = (head_before.copy(), head_bias_before.unwrap().copy());
    let (xs, ys) = template_images(4, 8, 0.5, 1);
    for _ in 0..5 {
        train_step(&vit, &mut opt, &xs, &ys);
    }
    let after = snapshot(&vit);
    // Block 0 is free, block 1 (the last) is an ETF in both matrices.
    assert!(!before[0].0.equal(&after[0].0) && !before[0].1.equal(&after[0].1));
    assert!(before[1].0.equal(&after[1].0), "locked W1 moved");
    assert!(before[1].1.equal(&after[1].1), "locked W2 moved");
    for (b, a) in before.iter().zip(&after) {
        assert!(!b.2.equal(&a.2), "attention weights must train");
    }
    let (head_after, head_bias_after) = vit.head_weight_bias();
    assert!(head_before.equal(&head_after), "ETF head moved");
    assert!(
        !head_bias_before.equal(&head_bias_after.unwrap()),
        "head bias must train"
    );
}

#[test]
fn locking_mid_training_freezes_and_drops_from_optimiser() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = tiny(EtfBlocks::Adaptive, FfnMatrices::Both);
    let mut vit = Vit::new(&vs.root(), &cfg, [1, 8, 8], 4).unwrap();
    let mut opt = adamw(&vit, 1e-2, 0.1);
    let (xs, ys) = template_images(4, 8, 0.5, 2);
    for _ in 0..3 {
        train_step(&vit, &mut opt, &xs, &ys);
    }
    let learnable = vit.learnable_params();
    let spec = EtfSpec {
        orientation: LockOrientation::Nearest,
        seed: 0,
        alpha: 1.0,
        freeze_bias: false,
    };
    assert_eq!(
        vit.lock_ffn(0, FfnMatrices::W2, &spec, &mut opt).unwrap(),
        1
    );
    assert_eq!(vit.ffn_locked(0), Some((false, true)));
    // Monotone: locking again changes nothing; then W1 too.
    assert_eq!(
        vit.lock_ffn(0, FfnMatrices::W2, &spec, &mut opt).unwrap(),
        0
    );
    assert_eq!(
        vit.lock_ffn(0, FfnMatrices::Both, &spec, &mut opt).unwrap(),
        1
    );
    assert_eq!(vit.ffn_locked(0), Some((true, true)));
    assert_eq!(vit.learnable_params(), learnable - 2 * 16 * 32);
    assert_eq!(opt.num_params(), vit.learnable_params());
    // lock_ffn_from(1) locks W1 of block 1 only (block 0 is done): one matrix.
    assert_eq!(
        vit.lock_ffn_from(1, FfnMatrices::W1, &spec, &mut opt)
            .unwrap(),
        1
    );
    assert_eq!(vit.ffn_locked(1), Some((true, false)));
    assert_eq!(
        vit.lock_ffn_from(5, FfnMatrices::Both, &spec, &mut opt)
            .unwrap(),
        0
    );
    let before = snapshot(&vit);
    for _ in 0..3 {
        train_step(&vit, &mut opt, &xs, &ys);
    }
    let after = snapshot(&vit);
    assert!(before[0].0.equal(&after[0].0) && before[0].1.equal(&after[0].1));
    assert!(before[1].0.equal(&after[1].0), "locked W1 of block 1 moved");
    assert!(
        !before[1].1.equal(&after[1].1),
        "unlocked W2 of block 1 must train"
    );
    assert!(
        !before[0].2.equal(&after[0].2),
        "attention of a locked block must train"
    );
}

#[test]
fn lock_past_depth_is_an_error() {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut vit = Vit::new(
        &vs.root(),
        &tiny(EtfBlocks::None, FfnMatrices::Both),
        [1, 8, 8],
        4,
    )
    .unwrap();
    let mut opt = adamw(&vit, 1e-3, 0.0);
    let spec = EtfSpec {
        orientation: LockOrientation::Random,
        seed: 1,
        alpha: 1.0,
        freeze_bias: false,
    };
    let err = vit
        .lock_ffn(2, FfnMatrices::Both, &spec, &mut opt)
        .unwrap_err();
    assert!(
        matches!(err, VitError::BlockOutOfRange { block: 2, depth: 2 }),
        "{err}"
    );
}

/// The frozen controls of spec §7 take the ETF maps' place in the FFNs: fixed from the start
/// (`etf-ffn`) and as a lock target, each its control map of the derived seed, bit-identical
/// under AdamW with weight decay and counted as non-learnable.
#[test]
fn frozen_control_ffns_never_move_and_are_not_learnable() {
    use etf_transformer::{derive_seed, SeedSlot};
    use simplex_etf::control_map;
    for orientation in [LockOrientation::Gaussian, LockOrientation::Orthogonal] {
        let control = orientation.control().unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let mut cfg = tiny(EtfBlocks::LastK(1), FfnMatrices::Both);
        cfg.ffn_etf.orientation = orientation;
        let mut vit = Vit::new(&vs.root(), &cfg, [1, 8, 8], 4).unwrap();
        let (d, hidden) = (cfg.dim, cfg.hidden_dim());
        // The control of shape `out × in` a matrix of seed slot `slot` gets (seed 5, α = 1).
        let expected = |out, inp, slot| {
            let seed = derive_seed(5, slot);
            control_map(out, inp, 1.0, control, seed, tch::Kind::Float, Device::Cpu).unwrap()
        };
        let expected_w1 = expected(hidden, d, SeedSlot::W1(1));
        assert!(vit.blocks()[1].fc1.weight().equal(&expected_w1));
        let baseline_vs = nn::VarStore::new(Device::Cpu);
        let baseline = Vit::new(
            &baseline_vs.root(),
            &tiny(EtfBlocks::None, FfnMatrices::Both),
            [1, 8, 8],
            4,
        )
        .unwrap();
        let ffn_weights = 2 * d * hidden;
        assert_eq!(
            vit.learnable_params(),
            baseline.learnable_params() - ffn_weights
        );
        let mut opt = adamw(&vit, 1e-2, 0.1);
        assert_eq!(opt.num_params(), vit.learnable_params());
        let (xs, ys) = template_images(4, 8, 0.5, 3);
        for _ in 0..2 {
            train_step(&vit, &mut opt, &xs, &ys);
        }
        // Lock block 0's FFN to the control too, mid-training.
        let spec = EtfSpec {
            orientation,
            seed: 5,
            ..EtfSpec::default()
        };
        assert_eq!(
            vit.lock_ffn(0, FfnMatrices::Both, &spec, &mut opt).unwrap(),
            2
        );
        let expected_w2 = expected(d, hidden, SeedSlot::W2(0));
        assert!(vit.blocks()[0].fc2.weight().equal(&expected_w2));
        assert_eq!(
            vit.learnable_params(),
            baseline.learnable_params() - 2 * ffn_weights
        );
        assert_eq!(opt.num_params(), vit.learnable_params());
        let before = snapshot(&vit);
        for _ in 0..5 {
            train_step(&vit, &mut opt, &xs, &ys);
        }
        for (b, a) in before.iter().zip(&snapshot(&vit)) {
            assert!(b.0.equal(&a.0) && b.1.equal(&a.1), "a frozen control moved");
            assert!(!b.2.equal(&a.2), "attention weights must train");
        }
    }
}
