//! Locked weights never move, whatever the optimiser; everything else keeps training.

use simplex_etf::optim::{AdamWConfig, Optimizer, OptimizerConfig, SgdConfig};
use simplex_etf::{
    control_map, etf_map_deviation, Control, EtfLinear, EtfSpec, LockOrientation, LockableLinear,
};
use tch::nn::{self, Module, OptimizerConfig as _};
use tch::{Device, Kind, Tensor};

/// in(8) → hidden(16) → locked(16) → ETF head(4), all registered in one optimiser.
struct Net {
    vs: nn::VarStore,
    first: LockableLinear,
    middle: LockableLinear,
    head: EtfLinear,
}

impl Net {
    fn new(seed: i64) -> Self {
        Self::with_head(seed, LockOrientation::Random)
    }

    /// A net whose head is fixed from the start to the map of `head` (an ETF or a control).
    fn with_head(seed: i64, head: LockOrientation) -> Self {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let first = LockableLinear::new(&(&root / "first"), 8, 16, true);
        let middle = LockableLinear::new(&(&root / "middle"), 16, 16, true);
        let head = EtfLinear::new(&(&root / "head"), 16, 4, true, &EtfSpec::new(head, 3)).unwrap();
        Self {
            vs,
            first,
            middle,
            head,
        }
    }

    fn optimizer(&self, cfg: OptimizerConfig) -> Optimizer {
        let mut opt = Optimizer::new(cfg);
        for l in [&self.first, &self.middle, &*self.head] {
            l.register(&mut opt, true).unwrap();
        }
        opt
    }

    fn loss(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let h = self.first.forward(x).relu();
        let h = self.middle.forward(&h).relu();
        self.head.forward(&h).cross_entropy_for_logits(y)
    }

    fn learnable(&self) -> i64 {
        self.first.learnable_params()
            + self.middle.learnable_params()
            + self.head.learnable_params()
    }

    fn trainable_numel(&self) -> i64 {
        [&self.first, &self.middle, &*self.head]
            .iter()
            .flat_map(|l| l.trainable_tensors(true))
            .map(|p| p.tensor.numel() as i64)
            .sum()
    }
}

fn batch(step: i64) -> (Tensor, Tensor) {
    tch::manual_seed(1000 + step);
    (
        Tensor::randn([32, 8], (Kind::Float, Device::Cpu)),
        Tensor::randint(4, [32], (Kind::Int64, Device::Cpu)),
    )
}

fn train(net: &Net, opt: &mut Optimizer, steps: i64) {
    for s in 0..steps {
        let (x, y) = batch(s);
        opt.zero_grad();
        net.loss(&x, &y).backward();
        opt.step();
    }
}

fn check_lock_survives(cfg: OptimizerConfig, orientation: LockOrientation, freeze_bias: bool) {
    check_lock_survives_with_head(cfg, orientation, freeze_bias, LockOrientation::Random);
}

fn check_lock_survives_with_head(
    cfg: OptimizerConfig,
    orientation: LockOrientation,
    freeze_bias: bool,
    head: LockOrientation,
) {
    let mut net = Net::with_head(1, head);
    let mut opt = net.optimizer(cfg);
    train(&net, &mut opt, 5);
    let state_before = opt.state_bytes();
    let spec = EtfSpec {
        orientation,
        seed: 11,
        alpha: 1.0,
        freeze_bias,
    };
    assert!(net.middle.lock(&spec, &mut opt).unwrap());
    let expected = match orientation.control() {
        Some(control) => control_map(16, 16, 1.0, control, 11, Kind::Float, Device::Cpu).unwrap(),
        None => {
            assert!(etf_map_deviation(net.middle.weight(), 1.0).unwrap() < 1e-5);
            net.middle.weight().copy()
        }
    };
    assert!(
        net.middle.weight().equal(&expected),
        "not the map of the spec"
    );
    // The weight's state (and a frozen bias's) is gone: 16×16 (+16) floats × buffers per param.
    let buffers = if matches!(cfg, OptimizerConfig::AdamW(_)) {
        2
    } else {
        1
    };
    let freed = (256 + if freeze_bias { 16 } else { 0 }) * 4 * buffers;
    assert_eq!(state_before - opt.state_bytes(), freed);
    assert!(opt
        .state_tensors()
        .iter()
        .all(|(n, _)| !n.starts_with("middle.weight")));

    let locked_w = net.middle.weight().copy();
    let middle_b = net.middle.bias().unwrap().copy();
    let head_w = net.head.weight().copy();
    let first_w = net.first.weight().copy();
    let head_b = net.head.bias().unwrap().copy();
    train(&net, &mut opt, 50);
    assert!(net.middle.weight().equal(&locked_w), "locked weight moved");
    assert!(net.head.weight().equal(&head_w), "ETF head weight moved");
    assert!(
        !net.first.weight().equal(&first_w),
        "trainable layer did not move"
    );
    assert!(
        !net.head.bias().unwrap().equal(&head_b),
        "head bias did not move"
    );
    assert_eq!(
        net.middle.bias().unwrap().equal(&middle_b),
        freeze_bias,
        "bias moved iff not frozen"
    );
    assert!(!net.middle.weight().grad().defined());

    // The learnable count is exactly what the optimiser holds.
    assert_eq!(net.learnable(), opt.num_params());
    assert_eq!(net.trainable_numel(), opt.num_params());
    let expected = 8 * 16 + 16 + if freeze_bias { 0 } else { 16 } + 4;
    assert_eq!(opt.num_params(), expected);
    let mut names: Vec<String> = [&net.first, &net.middle, &*net.head]
        .iter()
        .flat_map(|l| l.trainable_tensors(true))
        .map(|p| p.name)
        .collect();
    let mut opt_names = opt.param_names();
    names.sort();
    opt_names.sort();
    assert_eq!(names, opt_names);
}

/// Copies `from`'s middle weight into `to`'s, as a checkpoint restore would.
fn copy_middle(from: &Net, to: &Net) {
    tch::no_grad(|| {
        to.middle
            .weight()
            .shallow_clone()
            .copy_(from.middle.weight())
    });
}

#[test]
fn locked_weight_is_bit_identical_under_sgd_momentum_and_weight_decay() {
    let cfg = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        ..SgdConfig::default()
    };
    for orientation in [
        LockOrientation::Nearest,
        LockOrientation::Canonical,
        LockOrientation::Random,
    ] {
        check_lock_survives(OptimizerConfig::Sgd(cfg), orientation, false);
    }
    check_lock_survives(OptimizerConfig::Sgd(cfg), LockOrientation::Nearest, true);
}

#[test]
fn frozen_controls_are_bit_identical_and_not_learnable_under_sgd_and_adamw() {
    let sgd = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        ..SgdConfig::default()
    });
    let adamw = OptimizerConfig::AdamW(AdamWConfig {
        lr: 1e-2,
        weight_decay: 5e-4,
        ..AdamWConfig::default()
    });
    for control in [LockOrientation::Gaussian, LockOrientation::Orthogonal] {
        for cfg in [sgd, adamw] {
            // Locked to a control mid-training, with a control head fixed from the start.
            check_lock_survives_with_head(cfg, control, false, control);
        }
        check_lock_survives_with_head(sgd, control, true, LockOrientation::Random);
    }
}

#[test]
fn a_control_fixed_from_the_start_is_its_map_and_restores() {
    for control in [LockOrientation::Gaussian, LockOrientation::Orthogonal] {
        let net = Net::with_head(5, control);
        let expected = control_map(
            4,
            16,
            1.0,
            control.control().unwrap(),
            3,
            Kind::Float,
            Device::Cpu,
        )
        .unwrap();
        assert!(net.head.weight().equal(&expected));
        assert!(!net.head.weight().requires_grad());
        assert_eq!(net.head.learnable_params(), 4);
        // A lock to a control restores from its weight, and only with its own spec.
        let mut net = Net::new(6);
        let mut opt = net.optimizer(OptimizerConfig::Sgd(SgdConfig::default()));
        net.middle
            .lock(&EtfSpec::new(control, 8), &mut opt)
            .unwrap();
        let mut other = Net::new(6);
        let mut other_opt = other.optimizer(OptimizerConfig::Sgd(SgdConfig::default()));
        copy_middle(&net, &other);
        let wrong_seed = EtfSpec::new(control, 9);
        assert!(other
            .middle
            .restore_lock(&wrong_seed, &mut other_opt)
            .is_err());
        assert!(other
            .middle
            .restore_lock(&EtfSpec::new(control, 8), &mut other_opt)
            .unwrap());
        assert_eq!(other_opt.num_params(), other.learnable());
    }
}

#[test]
fn locked_weight_is_bit_identical_under_adamw() {
    let cfg = AdamWConfig {
        lr: 1e-2,
        weight_decay: 5e-4,
        ..AdamWConfig::default()
    };
    check_lock_survives(OptimizerConfig::AdamW(cfg), LockOrientation::Nearest, false);
    check_lock_survives(OptimizerConfig::AdamW(cfg), LockOrientation::Random, true);
}

#[test]
fn nearest_lock_changes_the_function_least() {
    let run = |orientation| {
        let mut net = Net::new(2);
        let mut opt = net.optimizer(OptimizerConfig::Sgd(SgdConfig {
            lr: 0.1,
            ..SgdConfig::default()
        }));
        train(&net, &mut opt, 20);
        let before = net.middle.weight().copy();
        net.middle
            .lock(&EtfSpec::new(orientation, 4), &mut opt)
            .unwrap();
        (net.middle.weight() - before).norm().double_value(&[])
    };
    let near = run(LockOrientation::Nearest);
    assert!(near < run(LockOrientation::Random) && near < run(LockOrientation::Canonical));
}

#[test]
fn tch_optimiser_from_the_var_store_skips_released_weights() {
    let mut net = Net::new(3);
    let mut ours = net.optimizer(OptimizerConfig::Sgd(SgdConfig::default()));
    train(&net, &mut ours, 2); // gives the weight a defined gradient before the lock
    net.middle
        .lock(&EtfSpec::new(LockOrientation::Nearest, 0), &mut ours)
        .unwrap();
    let trainable_before = net.vs.trainable_variables().len();
    assert_eq!(net.middle.release_from_var_store(&net.vs), 1);
    assert_eq!(net.vs.trainable_variables().len(), trainable_before - 1);
    // tch's own optimiser with momentum and weight decay, built after the release.
    let mut sgd = nn::Sgd {
        momentum: 0.9,
        dampening: 0.0,
        wd: 5e-4,
        nesterov: false,
    }
    .build(&net.vs, 0.05)
    .unwrap();
    let locked = net.middle.weight().copy();
    let first = net.first.weight().copy();
    for s in 0..10 {
        let (x, y) = batch(s);
        sgd.backward_step(&net.loss(&x, &y));
    }
    assert!(net.middle.weight().equal(&locked));
    assert!(!net.first.weight().equal(&first));
    net.vs.unfreeze(); // must not re-enable the released weight's gradient
    assert!(!net.middle.weight().requires_grad());
}

#[test]
fn restore_lock_validates_the_loaded_weight() {
    let mut net = Net::new(4);
    let mut opt = net.optimizer(OptimizerConfig::Sgd(SgdConfig::default()));
    let spec = EtfSpec::new(LockOrientation::Nearest, 0);
    // A freshly initialised weight is no ETF map: restoring a lock on it is an error.
    let err = net.middle.restore_lock(&spec, &mut opt).unwrap_err();
    assert!(err.to_string().contains("middle.weight"), "{err}");
    assert!(!net.middle.is_locked());
    assert_eq!(opt.num_params(), net.learnable());
    // A canonical restore on a random map is also refused, though both are ETF maps.
    net.middle
        .lock(&EtfSpec::new(LockOrientation::Random, 1), &mut opt)
        .unwrap();
    let mut other = Net::new(4);
    let mut other_opt = other.optimizer(OptimizerConfig::Sgd(SgdConfig::default()));
    copy_middle(&net, &other);
    let canonical = EtfSpec::new(LockOrientation::Canonical, 0);
    assert!(other
        .middle
        .restore_lock(&canonical, &mut other_opt)
        .is_err());
    assert!(other
        .middle
        .restore_lock(&EtfSpec::new(LockOrientation::Random, 1), &mut other_opt)
        .unwrap());
    assert_eq!(other_opt.num_params(), other.learnable());
}

/// The matched lock scale (spec §7): `α* = tr(Yᵀ M)/K` with `Y = W` (`out ≥ in`) or `Wᵀ` and
/// `M` the chosen simplex ETF, computed here from the definition, for each orientation and
/// both shapes; the locked weight is `α*` times the map of scale 1, and the recorded spec's
/// `alpha` is `α*`.
#[test]
fn matched_scale_is_the_closed_form() {
    use simplex_etf::{simplex_etf, LockScale, Orientation};
    for (in_dim, out_dim) in [(16, 16), (16, 4), (4, 10)] {
        for orientation in [
            LockOrientation::Nearest,
            LockOrientation::Random,
            LockOrientation::Canonical,
            LockOrientation::Orthogonal,
        ] {
            tch::manual_seed(7);
            let vs = nn::VarStore::new(Device::Cpu);
            let mut l = LockableLinear::new(&vs.root(), in_dim, out_dim, true);
            let mut opt = Optimizer::new(OptimizerConfig::Sgd(SgdConfig::default()));
            l.register(&mut opt, true).unwrap();
            let w0 = l.weight().to_kind(Kind::Double);
            let (k, p) = (in_dim.min(out_dim), in_dim.max(out_dim));
            let y0 = if out_dim >= in_dim {
                w0.copy()
            } else {
                w0.tr()
            };
            let spec = EtfSpec::new(orientation, 5);
            assert!(l.lock_scaled(&spec, LockScale::Matched, &mut opt).unwrap());
            // The map of scale 1, from its definition (spec §1, §2, §7).
            let m = match orientation {
                LockOrientation::Orthogonal => {
                    let v = control_map(
                        out_dim,
                        in_dim,
                        1.0,
                        Control::Orthogonal,
                        5,
                        Kind::Double,
                        Device::Cpu,
                    )
                    .unwrap();
                    if out_dim >= in_dim {
                        v
                    } else {
                        v.tr()
                    }
                }
                LockOrientation::Nearest => {
                    simplex_etf(k, p, Orientation::Nearest(&y0), Kind::Double, Device::Cpu).unwrap()
                }
                LockOrientation::Random => simplex_etf(
                    k,
                    p,
                    Orientation::Random { seed: 5 },
                    Kind::Double,
                    Device::Cpu,
                )
                .unwrap(),
                _ => simplex_etf(k, p, Orientation::Canonical, Kind::Double, Device::Cpu).unwrap(),
            };
            let alpha = (y0.tr().matmul(&m)).trace().double_value(&[]) / k as f64;
            let got = l.lock_spec().unwrap().alpha;
            assert!(
                (got - alpha).abs() < 1e-6 * alpha.abs().max(1.0),
                "{orientation:?}: {got} vs {alpha}"
            );
            let expected = if out_dim >= in_dim {
                &m * alpha
            } else {
                m.tr() * alpha
            };
            let w = l.weight().to_kind(Kind::Double);
            assert!(w.allclose(&expected, 1e-6, 1e-7, false), "{orientation:?}");
            // The least-squares property: no other multiple of the map is nearer to W₀.
            let dist = |a: f64| (&w0 - &expected * (a / alpha)).norm().double_value(&[]);
            assert!(dist(alpha) <= dist(alpha * 1.01) && dist(alpha) <= dist(alpha * 0.99));
            // Applied as its weight says (also canonical: no fast path with the fixed α).
            let x = Tensor::randn([3, in_dim], (Kind::Float, Device::Cpu));
            let y = l.forward(&x);
            let dense = x.linear(l.weight(), l.bias());
            assert!(y.allclose(&dense, 1e-5, 1e-5, false), "{orientation:?}");
        }
    }
}
