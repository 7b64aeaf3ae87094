//! What the CLI tests share: running the built `etf` binary, and a tiny synthetic sweep.

#![allow(dead_code)] // Each test file uses its own part of this.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `etf` binary built for these tests with `args`, warnings only on stderr.
pub fn etf(args: &[&str]) -> Output {
    etf_env(args, &[])
}

/// [`etf`] with these environment variables set too.
pub fn etf_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etf"));
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("runs etf")
}

/// `p` as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A two-variant × two-seed sweep on synthetic data that trains in about a second a run.
pub const TINY_SWEEP: &str = r#"
name = "synthetic-figures"
seeds = [0, 1]
[data]
dataset = "synthetic"
probe_size = 200
[data.synthetic]
num_classes = 4
dim = 16
train_per_class = 100
test_per_class = 40
separation = 3.0
noise_std = 1.0
seed = 1
[model]
kind = "mlp"
depth = 3
width = 32
[train]
epochs = 2
batch_size = 64
device = "cpu"
[train.optimizer]
kind = "sgd"
lr = 0.02
momentum = 0.9
[[variant]]
name = "baseline"
kind = "baseline"
[[variant]]
name = "adaptive"
kind = "adaptive"
tau = 0.5
patience = 1
"#;
