//! Bad configurations give typed errors naming the key; serde accepts the documented forms.

use etf_transformer::{
    expected_param_count, ConfigError, EtfBlocks, FfnEtfConfig, FfnMatrices, LockOrientation, Vit,
    VitConfig, VitError,
};
use tch::{nn, Device, Kind, Tensor};

fn build(cfg: &VitConfig, shape: [i64; 3], classes: i64) -> Result<Vit, VitError> {
    let vs = nn::VarStore::new(Device::Cpu);
    Vit::new(&vs.root(), cfg, shape, classes)
}

fn config_err(cfg: &VitConfig, shape: [i64; 3], classes: i64) -> ConfigError {
    let by_formula = expected_param_count(cfg, shape, classes).unwrap_err();
    match build(cfg, shape, classes) {
        Err(VitError::Config(e)) => {
            assert_eq!(e, by_formula);
            e
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn dim_not_divisible_by_heads() {
    let cfg = VitConfig {
        dim: 30,
        heads: 4,
        ..Default::default()
    };
    let e = config_err(&cfg, [1, 28, 28], 10);
    assert_eq!(e, ConfigError::DimNotDivisibleByHeads { dim: 30, heads: 4 });
    assert!(e.to_string().contains("vit.heads"), "{e}");
}

#[test]
fn image_not_divisible_by_patch() {
    let cfg = VitConfig {
        patch: 5,
        ..Default::default()
    };
    let e = config_err(&cfg, [3, 32, 32], 10);
    assert_eq!(
        e,
        ConfigError::ImageNotDivisibleByPatch {
            height: 32,
            width: 32,
            patch: 5
        }
    );
    assert!(e.to_string().contains("vit.patch"), "{e}");
}

#[test]
fn last_k_beyond_depth_or_zero() {
    for k in [0, 7] {
        let cfg = VitConfig {
            depth: 6,
            ffn_etf: FfnEtfConfig {
                blocks: EtfBlocks::LastK(k),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            config_err(&cfg, [1, 28, 28], 10),
            ConfigError::LastKOutOfRange { k, depth: 6 }
        );
    }
}

#[test]
fn out_of_range_values_name_their_key() {
    let cases: Vec<(VitConfig, &str)> = vec![
        (
            VitConfig {
                dropout: 1.0,
                ..Default::default()
            },
            "vit.dropout",
        ),
        (
            VitConfig {
                attn_dropout: -0.1,
                ..Default::default()
            },
            "vit.attn_dropout",
        ),
        (
            VitConfig {
                depth: 0,
                ..Default::default()
            },
            "vit.depth",
        ),
        (
            VitConfig {
                mlp_ratio: f64::NAN,
                ..Default::default()
            },
            "vit.mlp_ratio",
        ),
        (
            VitConfig {
                patch: 0,
                ..Default::default()
            },
            "vit.patch",
        ),
        (
            VitConfig {
                ffn_etf: FfnEtfConfig {
                    blocks: EtfBlocks::All,
                    orientation: LockOrientation::Nearest,
                    ..Default::default()
                },
                ..Default::default()
            },
            "vit.ffn_etf.orientation",
        ),
    ];
    for (cfg, key) in cases {
        match config_err(&cfg, [1, 28, 28], 10) {
            ConfigError::OutOfRange { field, .. } => assert_eq!(field, key),
            e => panic!("{key}: unexpected {e:?}"),
        }
    }
    let e = config_err(&VitConfig::default(), [1, 28, 28], 1);
    assert!(
        matches!(
            e,
            ConfigError::OutOfRange {
                field: "num_classes",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn wrong_input_shape_is_an_error_not_a_panic() {
    let cfg = VitConfig {
        patch: 4,
        dim: 8,
        depth: 1,
        heads: 2,
        ..Default::default()
    };
    let vit = build(&cfg, [1, 8, 8], 3).unwrap();
    for shape in [vec![2, 1, 8, 4], vec![2, 3, 8, 8], vec![1, 8, 8]] {
        let xs = Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu));
        assert!(matches!(
            vit.forward_t(&xs, false),
            Err(VitError::ImageShape { .. })
        ));
    }
}

#[test]
fn second_vit_under_the_same_path_is_an_error() {
    let cfg = VitConfig {
        patch: 4,
        dim: 8,
        depth: 1,
        heads: 2,
        ..Default::default()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    Vit::new(&vs.root(), &cfg, [1, 8, 8], 3).unwrap();
    let again = Vit::new(&vs.root(), &cfg, [1, 8, 8], 3);
    assert!(matches!(again, Err(VitError::PathInUse(n)) if n == "cls_token"));
    assert!(Vit::new(&(vs.root() / "other"), &cfg, [1, 8, 8], 3).is_ok());
}

#[test]
fn toml_round_trip_with_kebab_case_enums() {
    let text = r#"
        patch = 7
        dim = 64
        depth = 4
        heads = 4
        mlp_ratio = 4
        etf_head = true
        [ffn_etf]
        blocks = { last-k = 2 }
        matrices = "w1"
        orientation = "canonical"
    "#;
    let cfg: VitConfig = toml::from_str(text).unwrap();
    assert_eq!(cfg.ffn_etf.blocks, EtfBlocks::LastK(2));
    assert_eq!(cfg.ffn_etf.matrices, FfnMatrices::W1);
    assert_eq!(cfg.mlp_ratio, 4.0);
    assert!(cfg.etf_head);
    let back: VitConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);

    let adaptive: FfnEtfConfig =
        toml::from_str("blocks = \"adaptive\"\norientation = \"nearest\"").unwrap();
    assert_eq!(adaptive.blocks, EtfBlocks::Adaptive);
    let all: FfnEtfConfig = serde_json::from_str(r#"{"blocks":"all"}"#).unwrap();
    assert_eq!(all.blocks, EtfBlocks::All);
    assert_eq!(all.orientation, LockOrientation::Random);
}

#[test]
fn unknown_keys_and_values_are_rejected() {
    assert!(toml::from_str::<VitConfig>("dims = 3").is_err());
    assert!(toml::from_str::<FfnEtfConfig>("matrices = \"w3\"").is_err());
    assert!(
        toml::from_str::<FfnEtfConfig>("blocks = { adaptive = { tau = 0.8, k = 1 } }").is_err()
    );
}
