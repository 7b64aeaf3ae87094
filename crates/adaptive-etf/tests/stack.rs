//! A stack of M members trains each member as its single run does: the same training losses
//! (to float tolerance), the same lock epochs and layers, the same learnable counts and
//! optimiser state, and locked slices that never move. The joint computation is tested on the
//! CPU by asking for it ([`StackMode::Joint`]); the CPU's own mode, in turn, gives every member
//! its single run's numbers bit for bit.

use adaptive_etf::{Mlp, MlpConfig, MlpVariant};
use etf_data::Dataset;
use etf_train::{
    AdaptiveConfig, CollapseModel, NoProgress, Schedule, StackMode, StackedTrainer, TrainSpec,
    Trainer,
};
use simplex_etf::optim::{AdamWConfig, OptimizerConfig, SgdConfig};
use simplex_etf::LockOrientation;
use tch::{nn, Device, Tensor};

mod common;
use common::{run_data, serial};

/// 64 training samples, batch 32: two steps an epoch, 25 epochs = 50 steps.
fn data() -> Dataset {
    common::data(16)
}

const EPOCHS: usize = 25;

fn sgd(lr: f64, momentum: f64, nesterov: bool) -> OptimizerConfig {
    OptimizerConfig::Sgd(SgdConfig {
        lr,
        momentum,
        nesterov,
        weight_decay: 5e-4,
        ..SgdConfig::default()
    })
}

fn spec(optimizer: OptimizerConfig, seed: u64, adaptive: Option<AdaptiveConfig>) -> TrainSpec {
    TrainSpec {
        epochs: EPOCHS,
        batch_size: 32,
        eval_batch_size: 100,
        label_smoothing: 0.0,
        optimizer,
        schedule: Schedule::MultiStep {
            milestones: vec![15],
            gamma: 0.1,
        },
        global_mean: Default::default(),
        tau: 0.9,
        adaptive,
        seed,
    }
}

/// Locks at the third probe (τ = 0 makes every layer separable: ℓ* = 1).
fn adaptive(orientation: LockOrientation) -> AdaptiveConfig {
    AdaptiveConfig {
        tau: 0.0,
        patience: 3,
        probe_every: 1,
        orientation,
        scale: Default::default(),
    }
}

/// A member: its variant and spec; built with its own initialisation seed.
struct Member {
    variant: MlpVariant,
    spec: TrainSpec,
    init: i64,
}

fn trainer(m: &Member) -> Trainer<Mlp> {
    tch::manual_seed(m.init);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = MlpConfig {
        depth: 3,
        width: 16,
        ..MlpConfig::default()
    };
    let mlp = Mlp::new(&vs.root(), &cfg, 12, 4, &m.variant).unwrap();
    Trainer::new(mlp, vs, m.spec.clone()).unwrap()
}

fn members(optimizer: impl Fn(f64) -> OptimizerConfig) -> Vec<Member> {
    vec![
        Member {
            variant: MlpVariant::Baseline,
            spec: spec(optimizer(0.05), 0, None),
            init: 1,
        },
        Member {
            variant: MlpVariant::FixedLastK {
                k: 2,
                orientation: LockOrientation::Canonical,
            },
            spec: spec(optimizer(0.05), 1, None),
            init: 2,
        },
        // Another learning rate, another seed, a lock to the nearest ETF.
        Member {
            variant: MlpVariant::Adaptive(adaptive(LockOrientation::Nearest)),
            spec: spec(optimizer(0.02), 2, Some(adaptive(LockOrientation::Nearest))),
            init: 3,
        },
        Member {
            variant: MlpVariant::Adaptive(adaptive(LockOrientation::Random)),
            spec: spec(optimizer(0.05), 3, Some(adaptive(LockOrientation::Random))),
            init: 4,
        },
    ]
}

fn max_rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

/// Trains the members one by one and as one stack in `mode`; checks every claim of the module
/// docs. Joint: the training losses agree within 1e-5 (relative) at every epoch, the test
/// losses within 1e-4 and the final weights within 1e-4 of their scale. In turn: every number
/// and every weight is the single run's, bit for bit.
///
/// `adam`: the biases of the Linear layers before a BatchNorm have a gradient that is zero in
/// exact arithmetic (the normalisation removes them), so what they get is rounding noise, which
/// differs between the stacked and the single products; AdamW's update `m / √v` turns any such
/// noise into steps of size `lr` (here 1e-2 per epoch). Those biases and the running means
/// that follow them are then left out of the weight comparison, and the test losses (where the
/// running means enter) compared within 2e-2.
fn check_stack_equals_single_runs(members: &[Member], adam: bool, mode: StackMode) {
    let exact = mode == StackMode::InTurn;
    let noise_driven = |name: &str| {
        !exact && adam && (name.ends_with(".fc.bias") || name.ends_with(".bn.running_mean"))
    };
    let (train_drift, test_drift, weight_drift) = match (exact, adam) {
        (true, _) => (0.0, 0.0, 0.0),
        (false, true) => (1e-5, 2e-2, 1e-4),
        (false, false) => (1e-5, 1e-4, 1e-4),
    };
    let _serial = serial();
    let ds = data();
    let rd = run_data(&ds);
    let singles: Vec<Trainer<Mlp>> = members
        .iter()
        .map(|m| {
            let mut t = trainer(m);
            for _ in 0..EPOCHS {
                t.run_epoch(&rd, &mut NoProgress).unwrap();
            }
            t
        })
        .collect();
    let mut stack = StackedTrainer::with_mode(members.iter().map(trainer).collect(), mode).unwrap();
    assert_eq!(stack.mode(), mode);
    // Each locked slice right after its lock, to compare with the end.
    let mut locked_at: Vec<Vec<(String, Tensor)>> = members.iter().map(|_| Vec::new()).collect();
    while !stack.finished() {
        stack.run_epoch(&rd, &mut NoProgress).unwrap();
        for (m, t) in stack.members().iter().enumerate() {
            if locked_at[m].is_empty() && !t.model.locked_layers().is_empty() {
                locked_at[m] = frozen_weights(t);
            }
        }
    }
    let mut worst = 0.0f64;
    for (m, (single, stacked)) in singles.iter().zip(stack.members()).enumerate() {
        assert_eq!(single.history().len(), EPOCHS);
        for (a, b) in single.history().iter().zip(stacked.history()) {
            let rel = max_rel(a.train_loss, b.train_loss);
            worst = worst.max(rel);
            assert!(
                rel <= train_drift,
                "member {m} epoch {}: train loss {} single, {} stacked (rel {rel:e})",
                a.epoch,
                a.train_loss,
                b.train_loss
            );
            assert_eq!(
                a.newly_locked, b.newly_locked,
                "member {m} epoch {}",
                a.epoch
            );
            assert_eq!(
                a.locked_layers, b.locked_layers,
                "member {m} epoch {}",
                a.epoch
            );
            assert_eq!(a.learnable_params, b.learnable_params, "member {m}");
            assert_eq!(a.total_params, b.total_params, "member {m}");
            assert_eq!(
                a.optimizer_state_bytes, b.optimizer_state_bytes,
                "member {m}"
            );
            assert_eq!(a.effective_depth, b.effective_depth, "member {m}");
            assert!(
                max_rel(a.test_loss, b.test_loss) <= test_drift,
                "member {m} epoch {}: test loss {} single, {} stacked",
                a.epoch,
                a.test_loss,
                b.test_loss
            );
        }
        // Every variable ends where the single run's does.
        let sv = single.vs.variables();
        for (name, v) in stacked.vs.variables() {
            if noise_driven(&name) {
                continue;
            }
            let d = (&v - &sv[&name]).abs().max().double_value(&[]);
            let scale = sv[&name].abs().max().double_value(&[]).max(1.0);
            assert!(
                d / scale <= weight_drift,
                "member {m} {name}: max difference {d:e}"
            );
        }
        // Learnable count: the optimiser's (the stacked one's share, or the member's own).
        let held = match stack.optimizer() {
            Some(opt) => opt.num_params(m),
            None => stacked.optimizer().num_params(),
        };
        assert_eq!(stacked.model.learnable_params(), held);
        // Locked slices are bit-identical to what they were right after the lock.
        for (name, at_lock) in &locked_at[m] {
            let now = &stacked.vs.variables()[name];
            assert!(now.equal(at_lock), "member {m}: locked {name} moved");
        }
    }
    let locks: Vec<usize> = stack
        .members()
        .iter()
        .map(|t| {
            t.history()
                .iter()
                .filter(|r| !r.newly_locked.is_empty())
                .count()
        })
        .collect();
    assert_eq!(locks, [0, 0, 1, 1], "the adaptive members lock once each");
    eprintln!("{mode}: largest relative train-loss difference over 50 steps: {worst:e}");
}

/// Copies of the weights that are ETF maps in `t` now (locked or fixed from the start).
fn frozen_weights(t: &Trainer<Mlp>) -> Vec<(String, Tensor)> {
    let trainable: Vec<String> = t
        .model
        .named_trainable()
        .into_iter()
        .map(|p| p.name)
        .collect();
    t.vs.variables()
        .into_iter()
        .filter(|(n, _)| n.ends_with("fc.weight") || n == "classifier.weight")
        .filter(|(n, _)| !trainable.contains(n))
        .map(|(n, v)| (n, v.copy()))
        .collect()
}

#[test]
fn a_stack_trains_each_member_as_its_single_run_sgd_momentum() {
    let members = members(|lr| sgd(lr, 0.9, false));
    check_stack_equals_single_runs(&members, false, StackMode::Joint);
    check_stack_equals_single_runs(&members, false, StackMode::InTurn);
}

#[test]
fn a_stack_trains_each_member_as_its_single_run_sgd_nesterov_and_plain() {
    // Per-member momentum: Nesterov needs it positive everywhere, so plain SGD runs apart.
    let nesterov = members(|lr| sgd(lr, 0.8 + lr, true));
    check_stack_equals_single_runs(&nesterov, false, StackMode::Joint);
    check_stack_equals_single_runs(&members(|lr| sgd(lr, 0.0, false)), false, StackMode::Joint);
}

#[test]
fn a_stack_trains_each_member_as_its_single_run_adamw() {
    let adamw = |lr: f64| {
        OptimizerConfig::AdamW(AdamWConfig {
            lr: lr / 10.0,
            ..AdamWConfig::default()
        })
    };
    check_stack_equals_single_runs(&members(adamw), true, StackMode::Joint);
    check_stack_equals_single_runs(&members(adamw), true, StackMode::InTurn);
}

#[test]
fn a_stack_of_one_is_its_single_run() {
    check_stack_equals_single_runs_one();
}

fn check_stack_equals_single_runs_one() {
    let _serial = serial();
    let ds = data();
    let rd = run_data(&ds);
    let m = &members(|lr| sgd(lr, 0.9, false))[2];
    let mut single = trainer(m);
    let mut stack = StackedTrainer::with_mode(vec![trainer(m)], StackMode::Joint).unwrap();
    for _ in 0..EPOCHS {
        single.run_epoch(&rd, &mut NoProgress).unwrap();
        stack.run_epoch(&rd, &mut NoProgress).unwrap();
    }
    for (a, b) in single.history().iter().zip(stack.members()[0].history()) {
        assert!(
            max_rel(a.train_loss, b.train_loss) < 1e-5,
            "epoch {}",
            a.epoch
        );
        assert_eq!(a.locked_layers, b.locked_layers);
    }
}

#[test]
fn a_cpu_stack_trains_in_turn_unless_asked_to_train_jointly() {
    let _serial = serial();
    let m = &members(|lr| sgd(lr, 0.9, false))[0];
    let auto = StackedTrainer::new(vec![trainer(m)]).unwrap();
    assert_eq!(auto.mode(), StackMode::InTurn);
    assert!(auto.optimizer().is_none());
    let joint = StackedTrainer::with_mode(vec![trainer(m)], StackMode::Joint).unwrap();
    assert_eq!(joint.mode(), StackMode::Joint);
    assert!(joint.optimizer().is_some());
}

#[test]
fn members_that_cannot_share_a_stack_are_refused_by_name() {
    for mode in [StackMode::Joint, StackMode::InTurn] {
        refused_by_name(mode);
    }
}

/// Both modes refuse the same stacks.
fn refused_by_name(mode: StackMode) {
    let _serial = serial();
    let a = Member {
        variant: MlpVariant::Baseline,
        spec: spec(sgd(0.05, 0.9, false), 0, None),
        init: 1,
    };
    let mut other = spec(sgd(0.05, 0.9, false), 1, None);
    other.batch_size = 16;
    let b = Member {
        variant: MlpVariant::Baseline,
        spec: other,
        init: 2,
    };
    let err = StackedTrainer::with_mode(vec![trainer(&a), trainer(&b)], mode)
        .err()
        .expect("different batch sizes cannot stack")
        .to_string();
    assert!(
        err.contains("member 1") && err.contains("batch_size"),
        "{err}"
    );
    let c = Member {
        variant: MlpVariant::Baseline,
        spec: spec(OptimizerConfig::AdamW(AdamWConfig::default()), 1, None),
        init: 2,
    };
    let err = StackedTrainer::with_mode(vec![trainer(&a), trainer(&c)], mode)
        .err()
        .expect("SGD and AdamW cannot stack")
        .to_string();
    assert!(err.contains("member 1"), "{err}");
    assert!(StackedTrainer::<Mlp>::with_mode(Vec::new(), mode).is_err());
}

#[test]
fn the_batched_and_the_member_by_member_stacked_passes_agree() {
    let _serial = serial();
    let ds = data();
    let trainers: Vec<Trainer<Mlp>> = members(|lr| sgd(lr, 0.9, false))
        .iter()
        .map(trainer)
        .collect();
    let m = trainers.len() as i64;
    // A batch of 16 per member.
    let xs = ds.train.features.narrow(0, 0, m * 16).view([m, 16, 12]);
    let ys = ds.train.labels.narrow(0, 0, m * 16);
    // Each run's variables stacked, two copies: one per pass.
    let stacked = || -> std::collections::HashMap<String, Tensor> {
        trainers[0]
            .vs
            .variables()
            .into_keys()
            .map(|name| {
                let parts: Vec<Tensor> = trainers
                    .iter()
                    .map(|t| t.vs.variables()[&name].detach().copy())
                    .collect();
                let v = Tensor::stack(&parts, 0);
                let trainable = !name.contains("running");
                (
                    name,
                    if trainable {
                        v.set_requires_grad(true)
                    } else {
                        v
                    },
                )
            })
            .collect()
    };
    let (a, b) = (stacked(), stacked());
    let model = &trainers[0].model;
    let mut grads = Vec::new();
    for (vars, batched) in [(&a, true), (&b, false)] {
        let logits = model.forward_stacked_by(vars, &xs, true, batched).unwrap();
        assert_eq!(logits.size(), [m, 16, 4]);
        logits
            .reshape([-1, 4])
            .cross_entropy_for_logits(&ys)
            .backward();
        grads.push(logits.detach());
    }
    let close = |x: &Tensor, y: &Tensor| (x - y).abs().max().double_value(&[]) < 1e-5;
    assert!(close(&grads[0], &grads[1]), "logits differ");
    for (name, va) in &a {
        let vb = &b[name];
        if va.requires_grad() {
            assert!(close(&va.grad(), &vb.grad()), "gradient of {name} differs");
        } else {
            assert!(close(va, vb), "running statistic {name} differs");
        }
    }
}
