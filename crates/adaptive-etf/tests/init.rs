//! The MLP starts from PyTorch's module defaults (spec §4): every Linear weight and bias
//! `U(±1/√fan_in)`, every BatchNorm `γ = 1`, `β = 0` with fresh running statistics.

use adaptive_etf::{Mlp, MlpConfig, MlpVariant};
use simplex_etf::init::{check_uniform, fan_in_bound};
use tch::{nn, Device, Kind, Tensor};

#[test]
fn every_mlp_parameter_starts_as_in_pytorch() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = MlpConfig {
        depth: 3,
        width: 1024,
        ..MlpConfig::default()
    };
    assert!(cfg.batch_norm, "the default MLP has BatchNorm");
    Mlp::new(&vs.root(), &cfg, 784, 10, &MlpVariant::Baseline).unwrap();
    let vars = vs.variables();
    let fan_in = |layer: &str| if layer == "hidden1" { 784 } else { 1024 };
    let mut seen = 0;
    for (name, t) in &vars {
        let (layer, rest) = name.split_once('.').unwrap();
        let ones = Tensor::ones_like(t);
        match rest {
            "fc.weight" | "fc.bias" | "weight" | "bias" => {
                check_uniform(t, fan_in_bound(fan_in(layer)))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            "bn.weight" | "bn.running_var" => assert!(t.equal(&ones), "{name} is not 1"),
            "bn.bias" | "bn.running_mean" => {
                assert!(t.equal(&ones.zeros_like()), "{name} is not 0")
            }
            _ => panic!("unexpected variable {name}"),
        }
        assert_eq!(t.kind(), Kind::Float, "{name}");
        seen += 1;
    }
    // 3 hidden blocks × (fc weight, bias, 4 BatchNorm tensors) + the classifier's 2.
    assert_eq!(seen, 3 * 6 + 2);
    assert_eq!(vars["classifier.weight"].size(), [10, 1024]);
}
