//! The experiment file's keys: every one documented in `docs/config.md`, and `etf config`
//! printing the resolved configuration with its defaults.

mod common;

use common::etf;
use etf_runner::config::ExperimentConfig;
use std::collections::BTreeSet;
use std::path::Path;

/// Keys the docs may list that this build's configuration lacks: `output.tensorboard` comes
/// with the TensorBoard writer, merged separately.
const NOT_YET: &[&str] = &["output", "output.tensorboard"];

/// An MLP on synthetic data with SGD and a multi-step schedule; a variant with every
/// variant key set (read without validation, which would refuse the combination).
const MLP: &str = r#"
name = "all-mlp"
[data]
dataset = "synthetic"
[data.synthetic]
num_classes = 3
[model]
kind = "mlp"
depth = 2
width = 8
[train]
epochs = 1
batch_size = 4
[train.optimizer]
kind = "sgd"
lr = 0.1
[train.schedule]
kind = "multi-step"
milestones = [1]
[[variant]]
name = "every-key"
kind = "adaptive"
orientation = "nearest"
k = 1
tau = 0.9
patience = 1
probe_every = 1
matrices = "both"
scale = "matched"
"#;

/// A ViT with AdamW, a cosine schedule and augmentation.
const VIT: &str = r#"
name = "all-vit"
[data]
dataset = "mnist"
[model]
kind = "vit"
[train]
epochs = 1
batch_size = 4
[train.optimizer]
kind = "adamw"
lr = 0.001
[train.schedule]
kind = "cosine"
[train.augment]
pad = 4
[[variant]]
name = "b"
kind = "etf-ffn"
"#;

/// Every key path of a TOML value (`train.optimizer.lr`); arrays of tables share their key
/// (`variant.tau`).
fn key_paths(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                key_paths(v, &path, out);
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| key_paths(v, prefix, out)),
        _ => {}
    }
}

/// The key paths of the configurations above as serialised, with every default written out.
fn serialised_keys() -> BTreeSet<String> {
    let constant = VIT.replace("kind = \"cosine\"", "kind = \"constant\"");
    let mut keys = BTreeSet::new();
    for text in [MLP, VIT, &constant] {
        let cfg: ExperimentConfig = toml::from_str(text).expect("a complete configuration");
        let value = toml::Value::try_from(&cfg).expect("serialises");
        key_paths(&value, "", &mut keys);
    }
    keys
}

fn docs() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    std::fs::read_to_string(&path).expect("docs/config.md is readable")
}

/// The keys of the docs' `| key | …` tables: the first cell of each row, in backticks.
fn documented_keys(docs: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut in_key_table = false;
    for line in docs.lines() {
        if line.starts_with("| key |") {
            in_key_table = true;
        } else if !line.starts_with('|') {
            in_key_table = false;
        } else if in_key_table {
            let cell = line.split('|').nth(1).unwrap_or("").trim();
            if let Some(key) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
                keys.insert(key.to_string());
            }
        }
    }
    keys
}

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    let serialised = serialised_keys();
    let documented = documented_keys(&docs());
    let missing: Vec<&String> = serialised.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "docs/config.md lacks these keys: {missing:?}"
    );
    let stale: Vec<&String> = documented
        .difference(&serialised)
        .filter(|k| !NOT_YET.contains(&k.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/config.md lists keys the configuration does not have: {stale:?}"
    );
}

#[test]
fn every_enum_value_is_documented() {
    let docs = docs();
    for value in [
        "baseline",
        "etf-classifier",
        "fixed-last-k",
        "adaptive",
        "etf-ffn",
        "sgd",
        "adamw",
        "constant",
        "multi-step",
        "cosine",
        "mnist",
        "fashion-mnist",
        "digits",
        "cifar10",
        "synthetic",
        "pre-bn",
        "post-activation",
        "canonical",
        "random",
        "nearest",
        "weighted",
        "unweighted",
    ] {
        assert!(
            docs.contains(&format!("`{value}`")),
            "docs/config.md lacks `{value}`"
        );
    }
}

/// A file that leaves most keys to their defaults.
const SPARSE: &str = r#"
name = "sparse"
[data]
dataset = "synthetic"
[model]
kind = "mlp"
depth = 2
width = 8
[train]
epochs = 1
batch_size = 4
[train.optimizer]
kind = "sgd"
lr = 0.1
[[variant]]
name = "adaptive"
kind = "adaptive"
"#;

#[test]
fn etf_config_prints_defaults_and_overrides_and_refuses_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sparse.toml");
    std::fs::write(&file, SPARSE).unwrap();
    let path = file.to_str().unwrap();
    let out = etf(&["config", path, "--set", "train.epochs=7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "probe_size = 10000",
        "eval_batch_size = 1000",
        "epochs = 7",
        "momentum = 0.0",
        "patience = 5",
        "num_classes = 4",
        "kind = \"constant\"",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    // What it prints is an experiment file that reads back to the same configuration.
    let again = ExperimentConfig::parse(&text, &[]).unwrap();
    assert_eq!(toml::to_string(&again).unwrap(), text);

    let bad = etf(&["config", path, "--set", "train.epoch=3"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("epoch") && err.contains("unknown field"),
        "{err}"
    );
    let missing = etf(&["config", "no-such-file.toml"]);
    assert!(!missing.status.success());
}
