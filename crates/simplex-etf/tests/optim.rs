//! Our SGD and AdamW follow PyTorch's formulas (checked against libtorch's optimisers through
//! tch), and their state round-trips bit-exactly.

use simplex_etf::optim::{AdamWConfig, Layout, Optimizer, OptimizerConfig, SgdConfig};
use tch::nn;
use tch::{Device, Kind, Tensor};

const CPU64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// A loss with curvature and cross terms, so momentum and moments matter. Its data comes from
/// the step alone, not from the global RNG, which parallel tests share.
fn loss(a: &Tensor, b: &Tensor, step: i64) -> Tensor {
    let x = (Tensor::arange(15, CPU64) * (0.37 * (step + 1) as f64))
        .sin()
        .view([5, 3]);
    let h = x.matmul(a) + b;
    (h.tanh() * 2.0 - 0.3).square().sum(Kind::Double) + a.square().sum(Kind::Double) * 0.1
}

/// Runs `steps` steps of tch's optimiser and of ours from the same start; max abs difference.
fn max_diff_against_tch(
    tch_opt: impl nn::OptimizerConfig,
    ours: OptimizerConfig,
    lr: f64,
    steps: i64,
) -> f64 {
    tch::manual_seed(5);
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let a = vs.root().var(
        "a",
        &[3, 4],
        nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
    );
    let b = vs.root().var(
        "b",
        &[4],
        nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
    );
    assert_eq!(a.kind(), Kind::Double);
    let a0 = a.detach().copy();
    let mut theirs = tch_opt.build(&vs, lr).unwrap();
    let a2 = a.detach().copy().set_requires_grad(true);
    let b2 = b.detach().copy().set_requires_grad(true);
    let mut opt = Optimizer::new(ours);
    opt.add_param("a", &a2, true).unwrap();
    opt.add_param("b", &b2, true).unwrap();
    for s in 0..steps {
        theirs.backward_step(&loss(&a, &b, s));
        opt.zero_grad();
        loss(&a2, &b2, s).backward();
        opt.step();
    }
    let da = (&a - &a2).abs().max().double_value(&[]);
    let db = (&b - &b2).abs().max().double_value(&[]);
    assert!(!a.equal(&a0), "the optimisers did not move the parameters");
    da.max(db)
}

#[test]
fn sgd_matches_libtorch() {
    for (momentum, dampening, wd, nesterov) in [
        (0.0, 0.0, 0.0, false),
        (0.9, 0.0, 5e-4, false),
        (0.9, 0.1, 1e-2, false),
        (0.8, 0.0, 1e-3, true),
    ] {
        let theirs = nn::Sgd {
            momentum,
            dampening,
            wd,
            nesterov,
        };
        // Both layouts: the packed buffer computes the same formulas.
        for layout in [Layout::PerTensor, Layout::Packed] {
            let ours = OptimizerConfig::Sgd(SgdConfig {
                lr: 0.05,
                momentum,
                nesterov,
                weight_decay: wd,
                dampening,
                layout,
            });
            let d = max_diff_against_tch(theirs, ours, 0.05, 8);
            assert!(
                d < 1e-12,
                "SGD {layout:?} μ={momentum} d={dampening} wd={wd} nesterov={nesterov}: {d:e}"
            );
        }
    }
}

#[test]
fn adamw_matches_libtorch() {
    for (beta1, beta2, wd, eps) in [
        (0.9, 0.999, 1e-2, 1e-8),
        (0.5, 0.9, 0.0, 1e-6),
        (0.0, 0.99, 0.1, 1e-8),
    ] {
        let theirs = nn::AdamW {
            beta1,
            beta2,
            wd,
            eps,
            amsgrad: false,
        };
        for layout in [Layout::PerTensor, Layout::Packed] {
            let ours = OptimizerConfig::AdamW(AdamWConfig {
                lr: 0.01,
                beta1,
                beta2,
                eps,
                weight_decay: wd,
                layout,
            });
            let d = max_diff_against_tch(theirs, ours, 0.01, 8);
            assert!(
                d < 1e-12,
                "AdamW {layout:?} β1={beta1} β2={beta2} wd={wd}: {d:e}"
            );
        }
    }
}

fn fresh_params() -> (Tensor, Tensor) {
    tch::manual_seed(9);
    (
        Tensor::randn([3, 4], CPU64).set_requires_grad(true),
        Tensor::randn([4], CPU64).set_requires_grad(true),
    )
}

fn run(opt: &mut Optimizer, a: &Tensor, b: &Tensor, steps: std::ops::Range<i64>) {
    for s in steps {
        opt.zero_grad();
        loss(a, b, s).backward();
        opt.step();
    }
}

/// Train 4 steps, checkpoint (params + state through a file), train 4 more; reloading the
/// checkpoint into a fresh optimiser and training the same 4 steps gives bit-identical params.
fn check_resume(cfg: OptimizerConfig) {
    let (a, b) = fresh_params();
    let mut opt = Optimizer::new(cfg);
    opt.add_param("a", &a, true).unwrap();
    opt.add_param("b", &b, false).unwrap();
    run(&mut opt, &a, &b, 0..4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.ot");
    let mut named = opt.state_tensors();
    named.push(("param/a".into(), a.detach().copy()));
    named.push(("param/b".into(), b.detach().copy()));
    Tensor::save_multi(&named, &path).unwrap();
    run(&mut opt, &a, &b, 4..8);

    let loaded = Tensor::load_multi(&path).unwrap();
    let (params, state): (Vec<_>, Vec<_>) = loaded
        .into_iter()
        .partition(|(n, _)| n.starts_with("param/"));
    let get = |n: &str| {
        params
            .iter()
            .find(|(m, _)| m == n)
            .unwrap()
            .1
            .copy()
            .set_requires_grad(true)
    };
    let (a2, b2) = (get("param/a"), get("param/b"));
    let mut opt2 = Optimizer::new(cfg);
    opt2.add_param("a", &a2, true).unwrap();
    opt2.add_param("b", &b2, false).unwrap();
    opt2.load_state_tensors(&state).unwrap();
    assert_eq!(opt2.state_bytes(), opt.state_bytes());
    run(&mut opt2, &a2, &b2, 4..8);
    assert!(a2.equal(&a) && b2.equal(&b), "resumed training diverged");
}

#[test]
fn state_round_trips_and_resumed_training_is_bit_identical() {
    check_resume(OptimizerConfig::Sgd(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        ..SgdConfig::default()
    }));
    check_resume(OptimizerConfig::AdamW(AdamWConfig::default()));
}

#[test]
fn load_state_names_the_bad_entry() {
    let (a, b) = fresh_params();
    let cfg = OptimizerConfig::AdamW(AdamWConfig::default());
    let mut opt = Optimizer::new(cfg);
    opt.add_param("a", &a, true).unwrap();
    opt.add_param("b", &b, true).unwrap();
    run(&mut opt, &a, &b, 0..2);
    let state = opt.state_tensors();
    assert_eq!(state.len(), 6);

    let without: Vec<_> = state
        .iter()
        .filter(|(n, _)| n != "b::exp_avg_sq")
        .map(|(n, t)| (n.clone(), t.copy()))
        .collect();
    let err = opt.load_state_tensors(&without).unwrap_err().to_string();
    assert!(
        err.contains("b::exp_avg_sq") && err.contains("missing"),
        "{err}"
    );

    let mut reshaped: Vec<_> = state.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
    reshaped[1].1 = Tensor::zeros([4, 3], CPU64);
    let err = opt.load_state_tensors(&reshaped).unwrap_err().to_string();
    assert!(err.contains(&reshaped[1].0), "{err}");

    let mut unknown: Vec<_> = state.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
    unknown.push((
        "c::step".into(),
        Tensor::from_slice(&[1i64]).reshape([] as [i64; 0]),
    ));
    let err = opt.load_state_tensors(&unknown).unwrap_err().to_string();
    assert!(err.contains("c::step"), "{err}");

    // A failed load changes nothing; a good one restores the same state.
    assert_eq!(opt.state_bytes(), 2 * 8 * 16);
    opt.load_state_tensors(&state).unwrap();
    for ((n1, t1), (n2, t2)) in state.iter().zip(opt.state_tensors()) {
        assert_eq!(n1, &n2);
        assert!(t1.equal(&t2));
    }
}

#[test]
fn removing_a_param_drops_its_state() {
    let (a, b) = fresh_params();
    let mut opt = Optimizer::new(OptimizerConfig::AdamW(AdamWConfig::default()));
    opt.add_param("a", &a, true).unwrap();
    opt.add_param("b", &b, true).unwrap();
    run(&mut opt, &a, &b, 0..1);
    assert_eq!(opt.state_bytes(), 2 * 8 * 16);
    assert_eq!(opt.remove_tensor(&a.shallow_clone()).as_deref(), Some("a"));
    assert_eq!(opt.state_bytes(), 2 * 8 * 4);
    assert_eq!(opt.param_names(), ["b"]);
    let a_before = a.copy();
    run(&mut opt, &a, &b, 1..3);
    assert!(a.equal(&a_before));
}
