//! Training-loop behaviour: learnable counts, locks, bit-exact resume, non-finite loss.

use adaptive_etf::{Mlp, MlpConfig, MlpVariant};
use etf_data::Dataset;
use etf_train::{
    AdaptiveConfig, Checkpoint, CollapseModel, NoProgress, Schedule, TrainError, TrainSpec, Trainer,
};
use simplex_etf::optim::{OptimizerConfig, SgdConfig};
use simplex_etf::LockOrientation;
use tch::{nn, Device, Tensor};

mod common;
use common::{run_data, serial};

fn data() -> Dataset {
    common::data(64)
}

fn spec(adaptive: Option<AdaptiveConfig>, epochs: usize) -> TrainSpec {
    TrainSpec {
        epochs,
        batch_size: 32,
        eval_batch_size: 100,
        label_smoothing: 0.0,
        optimizer: OptimizerConfig::Sgd(SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            ..SgdConfig::default()
        }),
        schedule: Schedule::MultiStep {
            milestones: vec![3],
            gamma: 0.1,
        },
        global_mean: Default::default(),
        tau: 0.9,
        adaptive,
        seed: 11,
    }
}

fn trainer(variant: &MlpVariant, spec: TrainSpec) -> Trainer<Mlp> {
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = MlpConfig {
        depth: 3,
        width: 16,
        ..MlpConfig::default()
    };
    let mlp = Mlp::new(&vs.root(), &cfg, 12, 4, variant).unwrap();
    Trainer::new(mlp, vs, spec).unwrap()
}

fn adaptive_now() -> AdaptiveConfig {
    // τ = 0 makes every layer separable at the first probe: ℓ* = 1 locks hidden 2, 3 and the
    // classifier after epoch 1.
    AdaptiveConfig {
        tau: 0.0,
        patience: 1,
        probe_every: 1,
        orientation: LockOrientation::Nearest,
        scale: Default::default(),
    }
}

/// Patience 2: epoch 1 trains everything (so every weight has a momentum buffer), epoch 2
/// locks hidden 2, 3 and the classifier (τ = 0: ℓ* = 1).
fn lock_at_epoch_2() -> AdaptiveConfig {
    AdaptiveConfig {
        patience: 2,
        ..adaptive_now()
    }
}

#[test]
fn learnable_count_matches_the_optimiser_before_and_after_a_lock() {
    let _serial = serial();
    let ds = data();
    let run = run_data(&ds);
    let adaptive = lock_at_epoch_2();
    let mut t = trainer(
        &MlpVariant::Adaptive(adaptive.clone()),
        spec(Some(adaptive), 3),
    );
    let before = t.model.learnable_params();
    assert_eq!(before, t.optimizer().num_params());
    assert_eq!(before, t.model.total_params());
    let r1 = t.run_epoch(&run, &mut NoProgress).unwrap().clone();
    assert!(r1.newly_locked.is_empty());
    assert_eq!(
        r1.optimizer_state_bytes,
        before * 4,
        "one f32 buffer per scalar"
    );
    let r = t.run_epoch(&run, &mut NoProgress).unwrap().clone();
    assert_eq!(r.newly_locked, vec!["hidden2", "hidden3", "classifier"]);
    // Two 16×16 weights and the 16→4 classifier weight leave the optimiser.
    let dropped = 2 * 16 * 16 + 16 * 4;
    assert_eq!(r.learnable_params, before - dropped);
    assert_eq!(t.optimizer().num_params(), r.learnable_params);
    assert_eq!(r.total_params, before);
    // Their momentum buffers go with them.
    assert_eq!(
        r.optimizer_state_bytes,
        r1.optimizer_state_bytes - dropped * 4
    );
    // Locked weights never move again; the trainable first layer does.
    let w_locked = t.model.classifier().0.copy();
    let first: Tensor = t.model.named_trainable()[0].tensor.detach().copy();
    t.run_epoch(&run, &mut NoProgress).unwrap();
    assert!(t.model.classifier().0.equal(&w_locked));
    assert!(!t.model.named_trainable()[0].tensor.equal(&first));
}

#[test]
fn fixed_variants_count_only_trainable_tensors() {
    let _serial = serial();
    let t = trainer(
        &MlpVariant::FixedLastK {
            k: 3,
            orientation: LockOrientation::Canonical,
        },
        spec(None, 1),
    );
    // hidden2, hidden3 (16×16) and the classifier (16→4) weights are fixed from the start.
    assert_eq!(
        t.model.total_params() - t.model.learnable_params(),
        2 * 16 * 16 + 16 * 4
    );
    assert_eq!(t.model.learnable_params(), t.optimizer().num_params());
    assert_eq!(
        t.model.locked_layers(),
        vec!["hidden2", "hidden3", "classifier"]
    );
    let e = trainer(
        &MlpVariant::EtfClassifier {
            orientation: LockOrientation::Random,
        },
        spec(None, 1),
    );
    assert_eq!(e.model.total_params() - e.model.learnable_params(), 16 * 4);
}

#[test]
fn nearest_cannot_fix_layers_from_the_start() {
    let _serial = serial();
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = MlpConfig {
        depth: 2,
        width: 8,
        ..MlpConfig::default()
    };
    let v = MlpVariant::EtfClassifier {
        orientation: LockOrientation::Nearest,
    };
    let err = Mlp::new(&vs.root(), &cfg, 4, 3, &v)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("nearest"), "{err}");
    let v = MlpVariant::FixedLastK {
        k: 4,
        orientation: LockOrientation::Canonical,
    };
    let err = Mlp::new(&vs.root(), &cfg, 4, 3, &v)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("1..=3"), "{err}");
}

/// Strips wall times, which differ between any two runs.
fn without_times(t: &Trainer<Mlp>) -> String {
    let mut h = t.history().to_vec();
    for r in &mut h {
        r.train_seconds = 0.0;
        r.metrics_seconds = 0.0;
        r.samples_per_second = 0.0;
    }
    serde_json::to_string(&h).unwrap()
}

#[test]
fn resume_from_a_checkpoint_is_bit_exact() {
    check_resume_is_bit_exact(AdaptiveConfig {
        tau: 0.8,
        patience: 1,
        ..adaptive_now()
    });
}

/// A matched-scale canonical lock: the resumed run re-applies the lock to a fresh weight (with
/// another `α*`), then loads the saved weight, which is what it must compute with.
#[test]
fn resume_after_a_matched_canonical_lock_is_bit_exact() {
    check_resume_is_bit_exact(AdaptiveConfig {
        tau: 0.8,
        patience: 1,
        orientation: LockOrientation::Canonical,
        scale: simplex_etf::LockScale::Matched,
        ..adaptive_now()
    });
}

fn check_resume_is_bit_exact(adaptive: AdaptiveConfig) {
    let _serial = serial();
    let ds = data();
    let run = run_data(&ds);
    let variant = MlpVariant::Adaptive(adaptive.clone());
    let mut full = trainer(&variant, spec(Some(adaptive.clone()), 4));
    for _ in 0..4 {
        full.run_epoch(&run, &mut NoProgress).unwrap();
    }
    let mut first = trainer(&variant, spec(Some(adaptive.clone()), 4));
    for _ in 0..2 {
        first.run_epoch(&run, &mut NoProgress).unwrap();
    }
    // Through a file, as a run resumes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    first.checkpoint().write(&path).unwrap();
    drop(first);
    let saved = Checkpoint::read(&path).unwrap();
    // A different global seed before building proves nothing depends on leftover RNG state.
    tch::manual_seed(999);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = MlpConfig {
        depth: 3,
        width: 16,
        ..MlpConfig::default()
    };
    let mlp = Mlp::new(&vs.root(), &cfg, 12, 4, &variant).unwrap();
    let mut resumed = Trainer::new(mlp, vs, spec(Some(adaptive), 4)).unwrap();
    resumed.restore(saved).unwrap();
    assert_eq!(resumed.epochs_done(), 2);
    while !resumed.finished() {
        resumed.run_epoch(&run, &mut NoProgress).unwrap();
    }
    for (a, b) in resumed.history().iter().zip(full.history()) {
        assert_eq!(
            (a.epoch, a.train_loss, a.test_loss, &a.locked_layers),
            (b.epoch, b.train_loss, b.test_loss, &b.locked_layers)
        );
    }
    // Collapse statistics are f64 reductions that libtorch may sum in a different order from
    // one call to the next (seen: 1-ulp differences between two identical fresh runs), so they
    // are compared to 1e-12 relative; everything else above is exact.
    let a: serde_json::Value = serde_json::from_str(&without_times(&resumed)).unwrap();
    let b: serde_json::Value = serde_json::from_str(&without_times(&full)).unwrap();
    assert_close("history", &a, &b);
    assert!(
        full.history().iter().any(|r| !r.newly_locked.is_empty()),
        "the run must lock to test locks"
    );
}

fn assert_close(path: &str, a: &serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (k, v) in x {
                assert_close(&format!("{path}.{k}"), v, &y[k]);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                assert_close(&format!("{path}[{i}]"), u, v);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                "{path}: {x} vs {y}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn a_diverging_run_stops_with_a_clear_error() {
    let _serial = serial();
    let ds = data();
    let run = run_data(&ds);
    let mut s = spec(None, 2);
    s.optimizer = OptimizerConfig::Sgd(SgdConfig {
        lr: 1e30,
        ..SgdConfig::default()
    });
    let mut t = trainer(&MlpVariant::Baseline, s);
    match t.run_epoch(&run, &mut NoProgress) {
        Err(TrainError::NonFiniteLoss { epoch: 1, .. }) => {}
        other => panic!(
            "expected a non-finite loss error, got {:?}",
            other.map(|r| r.train_loss)
        ),
    }
    assert_eq!(t.epochs_done(), 0);
}

#[test]
fn a_small_mlp_learns_the_synthetic_data() {
    let _serial = serial();
    let ds = data();
    let run = run_data(&ds);
    let mut t = trainer(&MlpVariant::Baseline, spec(None, 5));
    while !t.finished() {
        t.run_epoch(&run, &mut NoProgress).unwrap();
    }
    let last = t.history().last().unwrap();
    assert!(
        last.test_accuracy > 0.9,
        "test accuracy {}",
        last.test_accuracy
    );
    // Deeper layers collapse more: NCC accuracy of the last hidden layer is high.
    assert!(last.layers[2].train.ncc_accuracy > 0.9);
}

/// The frozen controls of spec §7 stand where ETF maps stand: fixed from the start
/// (`fixed-last-k`) and as the target of an adaptive lock, each its seeded control map,
/// bit-identical through SGD epochs with momentum and weight decay, and not learnable.
#[test]
fn frozen_controls_fixed_and_locked_never_move() {
    use simplex_etf::control_map;
    let _serial = serial();
    let ds = data();
    let run = run_data(&ds);
    for orientation in [LockOrientation::Gaussian, LockOrientation::Orthogonal] {
        let control = orientation.control().unwrap();
        let map = |out, inp, seed| {
            control_map(out, inp, 1.0, control, seed, tch::Kind::Float, Device::Cpu).unwrap()
        };
        // Fixed from the start: hidden 3 (seed 3) and the classifier (seed 4).
        let mut t = trainer(&MlpVariant::FixedLastK { k: 2, orientation }, spec(None, 2));
        assert_eq!(
            t.model.total_params() - t.model.learnable_params(),
            16 * 16 + 16 * 4
        );
        assert_eq!(t.model.learnable_params(), t.optimizer().num_params());
        let w = t.model.classifier().0.copy();
        assert!(w.equal(&map(4, 16, 4)));
        t.run_epoch(&run, &mut NoProgress).unwrap();
        t.run_epoch(&run, &mut NoProgress).unwrap();
        assert!(t.model.classifier().0.equal(&w), "a fixed control moved");

        // Locked during training: ℓ* = 1 after epoch 1 locks hidden 2, 3 and the classifier
        // to the control of seed `spec.seed + layer` (11 + 4 for the classifier).
        let adaptive = AdaptiveConfig {
            orientation,
            ..adaptive_now()
        };
        let mut t = trainer(
            &MlpVariant::Adaptive(adaptive.clone()),
            spec(Some(adaptive), 3),
        );
        let before = t.model.learnable_params();
        let r = t.run_epoch(&run, &mut NoProgress).unwrap().clone();
        assert_eq!(r.newly_locked, vec!["hidden2", "hidden3", "classifier"]);
        assert_eq!(r.learnable_params, before - (2 * 16 * 16 + 16 * 4));
        assert_eq!(t.optimizer().num_params(), r.learnable_params);
        let w = t.model.classifier().0.copy();
        assert!(w.equal(&map(4, 16, 15)));
        t.run_epoch(&run, &mut NoProgress).unwrap();
        t.run_epoch(&run, &mut NoProgress).unwrap();
        assert!(t.model.classifier().0.equal(&w), "a locked control moved");
    }
}

/// The lock's disruption (spec §7) is recorded exactly in the epochs that lock: the loss on
/// the lock probe batch just before the lock and just after it, which is what the model gives
/// on that batch once the epoch has ended (nothing trains between the lock and the epoch's end).
#[test]
fn lock_disruption_is_recorded_exactly_at_lock_epochs() {
    use simplex_etf::LockScale;
    let _serial = serial();
    let ds = data();
    let run = run_data(&ds);
    for scale in [LockScale::Fixed, LockScale::Matched] {
        // Patience 2, τ = 0: ℓ* = 1 at epoch 2, then nothing more can lock (ℓ* cannot move
        // earlier than layer 1).
        let adaptive = AdaptiveConfig {
            patience: 2,
            orientation: LockOrientation::Random,
            scale,
            ..adaptive_now()
        };
        let mut t = trainer(
            &MlpVariant::Adaptive(adaptive.clone()),
            spec(Some(adaptive), 3),
        );
        let r1 = t.run_epoch(&run, &mut NoProgress).unwrap().clone();
        let before_lock = t.lock_probe_loss(run.probe).unwrap();
        assert!(r1.newly_locked.is_empty());
        assert_eq!((r1.lock_loss_before, r1.lock_loss_after), (None, None));
        let r2 = t.run_epoch(&run, &mut NoProgress).unwrap().clone();
        assert!(!r2.newly_locked.is_empty());
        let (before, after) = (r2.lock_loss_before.unwrap(), r2.lock_loss_after.unwrap());
        assert_eq!(after, t.lock_probe_loss(run.probe).unwrap());
        assert!(
            before.is_finite() && before != after,
            "{scale:?}: {before} {after}"
        );
        assert_ne!(before, before_lock, "epoch 2 trained before it locked");
        let r3 = t.run_epoch(&run, &mut NoProgress).unwrap().clone();
        assert!(r3.newly_locked.is_empty());
        assert_eq!((r3.lock_loss_before, r3.lock_loss_after), (None, None));
    }
}

#[test]
fn the_packed_optimizer_layout_trains_as_the_per_tensor_one_through_a_lock() {
    let _serial = serial();
    let ds = data();
    let run = run_data(&ds);
    let adaptive = lock_at_epoch_2();
    let variant = MlpVariant::Adaptive(adaptive.clone());
    let per_tensor = spec(Some(adaptive.clone()), 4);
    let mut packed = spec(Some(adaptive), 4);
    if let OptimizerConfig::Sgd(c) = &mut packed.optimizer {
        c.layout = simplex_etf::optim::Layout::Packed;
    }
    let mut a = trainer(&variant, per_tensor);
    let mut b = trainer(&variant, packed);
    assert!(!a.optimizer().is_packed() && b.optimizer().is_packed());
    for _ in 0..4 {
        let ra = a.run_epoch(&run, &mut NoProgress).unwrap().clone();
        let rb = b.run_epoch(&run, &mut NoProgress).unwrap().clone();
        let rel = (ra.train_loss - rb.train_loss).abs() / ra.train_loss;
        assert!(
            rel < 1e-5,
            "epoch {}: {} vs {}",
            ra.epoch,
            ra.train_loss,
            rb.train_loss
        );
        assert_eq!(ra.newly_locked, rb.newly_locked);
        assert_eq!(ra.learnable_params, rb.learnable_params);
        assert_eq!(ra.optimizer_state_bytes, rb.optimizer_state_bytes);
    }
    assert!(b.optimizer().is_packed(), "still packed after the lock");
    assert!(
        !a.history()[1].newly_locked.is_empty(),
        "the run locks at epoch 2"
    );
}
