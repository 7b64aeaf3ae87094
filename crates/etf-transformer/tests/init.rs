//! The ViT starts from PyTorch's module defaults (spec §5): `nn.Linear` and the patch
//! `nn.Conv2d` weights and biases `U(±1/√fan_in)`, `nn.LayerNorm` `(1, 0)`, class token and
//! positions `N(0, 0.02²)`.

use etf_transformer::{Vit, VitConfig};
use simplex_etf::init::{check_uniform, fan_in_bound};
use tch::{nn, Device, Kind, Tensor};

#[test]
fn every_vit_parameter_starts_as_in_pytorch() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = VitConfig {
        patch: 4,
        dim: 128,
        depth: 2,
        heads: 4,
        mlp_ratio: 4.0,
        ..VitConfig::default()
    };
    Vit::new(&vs.root(), &cfg, [3, 32, 32], 10).unwrap();
    let vars = vs.variables();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for (name, t) in &vars {
        let (module, param) = name.rsplit_once('.').unwrap_or(("", name));
        let leaf = module.rsplit('.').next().unwrap();
        let kind = match (leaf, param) {
            ("norm" | "norm1" | "norm2", "weight") => {
                assert!(t.equal(&Tensor::ones_like(t)), "{name} is not 1");
                "layer norm"
            }
            ("norm" | "norm1" | "norm2", "bias") => {
                assert!(t.equal(&t.zeros_like()), "{name} is not 0");
                "layer norm"
            }
            ("qkv" | "proj" | "fc1" | "fc2" | "head" | "patch_embed", "weight" | "bias") => {
                // The fan-in is the weight's input size (times the kernel for the conv).
                let w = &vars[&format!("{module}.weight")];
                let fan_in: i64 = w.size()[1..].iter().product();
                check_uniform(t, fan_in_bound(fan_in)).unwrap_or_else(|e| panic!("{name}: {e}"));
                if leaf == "patch_embed" {
                    assert_eq!(w.size(), [128, 3, 4, 4]);
                    "conv"
                } else {
                    "linear"
                }
            }
            ("", "cls_token" | "pos_embed") => {
                let std = t.to_kind(Kind::Double).std(false).double_value(&[]);
                let n = t.numel() as f64;
                // The standard error of a normal sample's std is σ/√(2n).
                assert!(
                    (std - 0.02).abs() < 5.0 * 0.02 / (2.0 * n).sqrt(),
                    "{name}: std {std}"
                );
                assert!(t.abs().max().double_value(&[]) < 0.02 * 6.0, "{name}");
                "embedding"
            }
            _ => panic!("unexpected variable {name}"),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    // 2 blocks × (qkv, proj, fc1, fc2) + head, weight and bias each; 2 × 2 + 1 LayerNorms.
    assert_eq!(kinds["linear"], 2 * 4 * 2 + 2);
    assert_eq!(kinds["layer norm"], 2 * 5);
    assert_eq!(kinds["conv"], 2);
    assert_eq!(kinds["embedding"], 2);
}
