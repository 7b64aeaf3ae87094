//! The packed (flat-buffer) layout of the optimiser computes what the per-tensor one does: the
//! same trajectory over 100 steps with a lock in the middle, a locked tensor untouched bit for
//! bit, parameters without a gradient skipped, and state that round-trips.

use simplex_etf::optim::{AdamWConfig, Optimizer, OptimizerConfig, SgdConfig};
use tch::{Device, Kind, Tensor};

const F32: (Kind, Device) = (Kind::Float, Device::Cpu);

/// A small two-layer regression with three weights, two biases (no weight decay) and shapes
/// that do not line up with vector widths. Values come from fixed formulas, not the global RNG
/// (tests run in parallel).
struct Net {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    w3: Tensor,
}

fn leaf(shape: &[i64], phase: f64) -> Tensor {
    let n: i64 = shape.iter().product();
    let t = (Tensor::arange(n, F32) * 0.731 + phase).sin() * 0.4;
    t.view(shape).set_requires_grad(true)
}

impl Net {
    fn new() -> Self {
        Self {
            w1: leaf(&[7, 5], 0.1),
            b1: leaf(&[7], 0.2),
            w2: leaf(&[3, 7], 0.3),
            b2: leaf(&[3], 0.4),
            w3: leaf(&[3, 3], 0.5),
        }
    }

    fn register(&self, opt: &mut Optimizer) {
        for (name, t, wd) in [
            ("w1", &self.w1, true),
            ("b1", &self.b1, false),
            ("w2", &self.w2, true),
            ("b2", &self.b2, false),
            ("w3", &self.w3, true),
        ] {
            opt.add_param(name, t, wd).unwrap();
        }
    }

    fn loss(&self, step: i64) -> Tensor {
        let x = (Tensor::arange(40, F32) * (0.29 * (step + 1) as f64))
            .cos()
            .view([8, 5]);
        let h = (x.matmul(&self.w1.tr()) + &self.b1).tanh();
        let out = (h.matmul(&self.w2.tr()) + &self.b2).matmul(&self.w3.tr());
        (out - 0.25).square().mean(Kind::Float)
    }

    fn values(&self) -> Vec<Vec<f32>> {
        [&self.w1, &self.b1, &self.w2, &self.b2, &self.w3]
            .iter()
            .map(|t| Vec::<f32>::try_from(&t.detach().reshape([-1])).unwrap())
            .collect()
    }
}

/// Trains `steps` steps; at `lock_at` the second weight is removed from the optimiser (as a
/// lock does). Returns the losses and the final values.
fn train(cfg: OptimizerConfig, packed: bool, steps: i64, lock_at: i64) -> (Vec<f64>, Net) {
    let net = Net::new();
    let mut opt = Optimizer::new(cfg);
    net.register(&mut opt);
    if packed {
        opt.pack().unwrap();
        assert!(opt.is_packed());
    }
    let mut losses = Vec::new();
    for step in 0..steps {
        if step == lock_at {
            let _ = net.w2.set_requires_grad(false);
            assert_eq!(opt.remove_tensor(&net.w2).as_deref(), Some("w2"));
            simplex_etf::optim::set_grads_to_none(&[&net.w2]);
        }
        opt.zero_grad();
        let loss = net.loss(step);
        losses.push(loss.double_value(&[]));
        loss.backward();
        opt.step();
    }
    (losses, net)
}

fn configs() -> Vec<OptimizerConfig> {
    let sgd = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        ..SgdConfig::default()
    };
    vec![
        OptimizerConfig::Sgd(sgd),
        OptimizerConfig::Sgd(SgdConfig {
            nesterov: true,
            ..sgd
        }),
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.0,
            ..sgd
        }),
        OptimizerConfig::AdamW(AdamWConfig {
            lr: 0.01,
            weight_decay: 0.05,
            ..AdamWConfig::default()
        }),
    ]
}

#[test]
fn packed_equals_per_tensor_over_100_steps_with_a_lock() {
    for cfg in configs() {
        let (per_tensor, a) = train(cfg, false, 100, 50);
        let (packed, b) = train(cfg, true, 100, 50);
        for (step, (x, y)) in per_tensor.iter().zip(&packed).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1e-6),
                "{cfg:?} step {step}: {x} vs {y}"
            );
        }
        for (pa, pb) in a.values().iter().zip(b.values()) {
            for (x, y) in pa.iter().zip(&pb) {
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1e-3),
                    "{cfg:?}: {x} vs {y}"
                );
            }
        }
        // The loss did go down: the comparison is of a real trajectory.
        assert!(packed[99] < 0.8 * packed[0], "{cfg:?}: {packed:?}");
    }
}

#[test]
fn a_removed_tensor_leaves_the_buffer_and_stays_bit_identical() {
    let cfg = configs()[0];
    let net = Net::new();
    let mut opt = Optimizer::new(cfg);
    net.register(&mut opt);
    opt.pack().unwrap();
    for step in 0..3 {
        opt.zero_grad();
        net.loss(step).backward();
        opt.step();
    }
    let _ = net.w2.set_requires_grad(false);
    opt.remove_tensor(&net.w2).unwrap();
    let frozen = net.w2.detach().copy();
    let w1_before = net.w1.detach().copy();
    for step in 3..20 {
        opt.zero_grad();
        net.loss(step).backward();
        opt.step();
    }
    assert!(net.w2.equal(&frozen), "the removed tensor moved");
    assert!(!net.w1.equal(&w1_before), "the others still train");
    assert!(opt.is_packed());
    assert!(!opt.param_names().contains(&"w2".to_string()));
    // Its state went with it: what is kept is the rest's (momentum = one buffer per scalar).
    let kept: i64 = [35, 7, 3, 9].iter().sum();
    assert_eq!(opt.state_bytes(), kept * 4);
    assert_eq!(opt.num_params(), kept);
}

#[test]
fn a_parameter_without_a_gradient_is_skipped_as_per_tensor() {
    for cfg in configs() {
        let run = |packed: bool| {
            let net = Net::new();
            let mut opt = Optimizer::new(cfg);
            net.register(&mut opt);
            if packed {
                opt.pack().unwrap();
            }
            for step in 0..12 {
                opt.zero_grad();
                // Every third step w3 gets no gradient (it is not in the graph).
                let loss = if step % 3 == 2 {
                    let h = (net.w1.sum(Kind::Float) + net.b1.sum(Kind::Float)).square();
                    h + net.w2.square().sum(Kind::Float) + net.b2.sum(Kind::Float)
                } else {
                    net.loss(step)
                };
                loss.backward();
                opt.step();
            }
            let steps = opt.state_tensors();
            (net.values(), steps)
        };
        let (a, sa) = run(false);
        let (b, sb) = run(true);
        for (pa, pb) in a.iter().zip(&b) {
            for (x, y) in pa.iter().zip(pb) {
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1e-3),
                    "{cfg:?}: {x} vs {y}"
                );
            }
        }
        let names = |s: &[(String, Tensor)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&sa), names(&sb));
        let step_of = |s: &[(String, Tensor)], n: &str| {
            s.iter().find(|(k, _)| k == n).unwrap().1.int64_value(&[])
        };
        assert_eq!(step_of(&sb, "w3::step"), 8, "{cfg:?}");
        assert_eq!(step_of(&sb, "w1::step"), 12, "{cfg:?}");
    }
}

#[test]
fn packed_state_round_trips_and_continues_as_uninterrupted() {
    let cfg = configs()[3];
    // Uninterrupted: 10 packed steps.
    let (_, whole) = train(cfg, true, 10, i64::MAX);
    // Interrupted after 6: state saved, a fresh packed optimiser restores it and goes on.
    let net = Net::new();
    let mut opt = Optimizer::new(cfg);
    net.register(&mut opt);
    opt.pack().unwrap();
    for step in 0..6 {
        opt.zero_grad();
        net.loss(step).backward();
        opt.step();
    }
    let saved = opt.state_tensors();
    let mut again = Optimizer::new(cfg);
    net.register(&mut again);
    again.pack().unwrap();
    again.load_state_tensors(&saved).unwrap();
    assert!(again.is_packed());
    for step in 6..10 {
        again.zero_grad();
        net.loss(step).backward();
        again.step();
    }
    assert_eq!(net.values(), whole.values());
}
