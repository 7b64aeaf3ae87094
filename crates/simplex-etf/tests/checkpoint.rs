//! `VarStore::save`/`load` carry ETF layers and locked layers bit-exactly.

use simplex_etf::optim::{Optimizer, OptimizerConfig, SgdConfig};
use simplex_etf::{EtfLinear, EtfSpec, LockOrientation, LockableLinear};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

struct Model {
    vs: nn::VarStore,
    body: LockableLinear,
    head: EtfLinear,
}

fn build(seed: i64) -> Model {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let body = LockableLinear::new(&(vs.root() / "body"), 12, 12, true);
    let spec = EtfSpec {
        orientation: LockOrientation::Random,
        seed: 21,
        alpha: 2.5,
        freeze_bias: true,
    };
    let head = EtfLinear::new(&(vs.root() / "head"), 12, 5, true, &spec).unwrap();
    Model { vs, body, head }
}

#[test]
fn var_store_round_trips_etf_and_locked_layers_bit_exactly() {
    let mut m = build(1);
    let mut opt = Optimizer::new(OptimizerConfig::Sgd(SgdConfig {
        lr: 0.1,
        ..SgdConfig::default()
    }));
    m.body.register(&mut opt, true).unwrap();
    m.head.register(&mut opt, true).unwrap();
    let x = Tensor::randn([16, 12], (Kind::Float, Device::Cpu));
    for _ in 0..3 {
        opt.zero_grad();
        m.head
            .forward(&m.body.forward(&x).relu())
            .square()
            .mean(Kind::Float)
            .backward();
        opt.step();
    }
    let lock = EtfSpec::new(LockOrientation::Nearest, 0);
    m.body.lock(&lock, &mut opt).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.ot");
    m.vs.save(&path).unwrap();

    // A fresh model (different init) loads the checkpoint, then restores the lock as saved.
    let mut fresh = build(2);
    assert!(!fresh.body.weight().equal(m.body.weight()));
    fresh.vs.load(&path).unwrap();
    let saved = m.vs.variables();
    let loaded = fresh.vs.variables();
    assert_eq!(saved.len(), 4); // body.weight, body.bias, head.weight, head.bias
    for (name, t) in &saved {
        assert!(loaded[name].equal(t), "{name} differs after load");
    }
    let mut fresh_opt = Optimizer::new(OptimizerConfig::Sgd(SgdConfig::default()));
    fresh.body.register(&mut fresh_opt, true).unwrap();
    assert!(fresh.body.restore_lock(&lock, &mut fresh_opt).unwrap());
    assert_eq!(fresh_opt.param_names(), ["body.bias"]);
    let y = m.head.forward(&m.body.forward(&x));
    let y2 = fresh.head.forward(&fresh.body.forward(&x));
    assert!(y.equal(&y2));
}

#[test]
fn spec_and_seed_rebuild_an_etf_layer_bit_exactly() {
    let a = build(3);
    let b = build(4);
    assert!(a.head.weight().equal(b.head.weight()));
    assert!(!a.head.bias().unwrap().equal(b.head.bias().unwrap()));
    assert_eq!(a.head.spec().seed, 21);
}

#[test]
fn canonical_layer_round_trips_through_safetensors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let layer = EtfLinear::new(&(vs.root() / "sq"), 7, 7, false, &EtfSpec::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    vs.save(&path).unwrap();
    let mut vs2 = nn::VarStore::new(Device::Cpu);
    let layer2 = EtfLinear::new(&(vs2.root() / "sq"), 7, 7, false, &EtfSpec::default()).unwrap();
    vs2.load(&path).unwrap();
    assert!(layer2.weight().equal(layer.weight()));
    assert_eq!(layer2.total_params(), 49);
    assert_eq!(layer2.learnable_params(), 0);
}
