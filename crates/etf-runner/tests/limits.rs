//! The `etf` binary refuses what it cannot run, before anything trains, with an error naming
//! the key or flag: sizes beyond the machine, seed lists too long or repeated, variants and
//! data limits out of range, empty data sets, data paths that are not files; and the data root
//! given on the command line wins over `ETF_DATA_DIR`.

mod common;

use common::{etf, etf_env, s};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Two variants: a valid baseline first, so an error in the second one shows whether anything
/// trained before it was found.
const CONFIG: &str = r#"
name = "limits"
seeds = [0]
[data]
dataset = "synthetic"
probe_size = 40
[data.synthetic]
num_classes = 4
dim = 8
train_per_class = 20
test_per_class = 10
[model]
kind = "mlp"
depth = 2
width = 16
[train]
epochs = 1
batch_size = 16
device = "cpu"
[train.optimizer]
kind = "sgd"
lr = 0.05
[[variant]]
name = "baseline"
kind = "baseline"
[[variant]]
name = "fixed"
kind = "fixed-last-k"
k = 2
"#;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("exp.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    (dir, cfg)
}

/// Runs `etf run` with `--set`s into `dir/out`; the run must fail with a message holding every
/// needle, and no run directory may have been made (nothing trained).
fn refused(dir: &Path, cfg: &Path, extra: &[&str], needles: &[&str]) {
    let out = dir.join("out");
    let mut args = vec!["run", s(cfg), "--out", s(&out)];
    args.extend_from_slice(extra);
    let r = etf(&args);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "{extra:?} succeeded: {err}");
    for n in needles {
        assert!(err.contains(n), "{extra:?}: {err:?} lacks {n:?}");
    }
    assert!(!err.contains("panicked"), "{extra:?}: {err}");
    assert!(
        !out.join("baseline").exists(),
        "{extra:?}: the baseline trained before the error"
    );
}

#[test]
fn a_model_too_large_for_the_memory_is_refused_naming_the_key() {
    let (tmp, cfg) = setup();
    refused(
        tmp.path(),
        &cfg,
        &["--set", "model.width=1000000000"],
        &["model.width = 1000000000", "more than the", "available"],
    );
    // inspect builds the model too.
    let r = etf(&["inspect", s(&cfg), "--set", "model.width=1000000000"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("model.width = 1000000000"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn synthetic_sizes_are_bounded() {
    let (tmp, cfg) = setup();
    refused(
        tmp.path(),
        &cfg,
        &["--set", "data.synthetic.train_per_class=100000000000"],
        &["data.synthetic", "train_per_class", "8 GiB"],
    );
    refused(
        tmp.path(),
        &cfg,
        &["--set", "data.synthetic.test_per_class=0"],
        &["data.synthetic.test_per_class must be at least 1"],
    );
}

#[test]
fn seed_lists_are_bounded_and_have_no_repeats() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("out");
    for (seeds, needle) in [
        ("0..100000000000", "more than the 10000"),
        ("0,0", "seed 0 is listed twice"),
        ("3,1,3", "seed 3 is listed twice"),
    ] {
        let r = etf(&["sweep", s(&cfg), "--seeds", seeds, "--out", s(&out)]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{seeds}: {err}");
        assert!(
            err.contains(needle) && err.contains("--seeds"),
            "{seeds}: {err}"
        );
        assert!(!out.exists(), "{seeds}: something ran");
    }
    refused(
        tmp.path(),
        &cfg,
        &["--set", "seeds=[1, 1]"],
        &["`seeds`", "seed 1 is listed twice"],
    );
}

#[test]
fn threads_beyond_the_cores_warn() {
    let (tmp, cfg) = setup();
    let cores = std::thread::available_parallelism().unwrap().get();
    let many = (cores + 1).to_string();
    let r = etf(&[
        "run",
        s(&cfg),
        "--out",
        s(&tmp.path().join("out")),
        "--variant",
        "baseline",
        "--threads",
        &many,
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "--threads {many} is more than the {cores} CPU cores"
        )),
        "{err}"
    );
    let r = etf(&[
        "run",
        s(&cfg),
        "--out",
        s(&tmp.path().join("out2")),
        "--variant",
        "baseline",
        "--threads",
        "1",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success() && !err.contains("CPU cores"), "{err}");
}

#[test]
fn every_variant_and_the_data_limits_are_checked_before_training() {
    let (tmp, cfg) = setup();
    // The second variant's k is out of range for a depth-2 MLP (1..=3).
    refused(
        tmp.path(),
        &cfg,
        &["--set", "variant.fixed.k=7"],
        &["variant \"fixed\"", "k must be in 1..=3", "got 7"],
    );
    refused(
        tmp.path(),
        &cfg,
        &["--set", "variant.fixed.orientation=\"nearest\""],
        &["variant \"fixed\"", "nearest"],
    );
    for key in ["data.train_limit", "data.test_limit", "data.probe_size"] {
        refused(
            tmp.path(),
            &cfg,
            &["--set", &format!("{key}=3")],
            &[&format!("{key} = 3"), "below the number of classes (4)"],
        );
    }
    // A ViT whose `last-k` exceeds its depth, in a later variant.
    let vit = tmp.path().join("vit.toml");
    std::fs::write(
        &vit,
        "name = \"v\"\n[data]\ndataset = \"mnist\"\n[model]\nkind = \"vit\"\npatch = 7\n\
         dim = 16\ndepth = 2\nheads = 2\n[train]\nepochs = 1\nbatch_size = 4\n\
         [train.optimizer]\nkind = \"adamw\"\nlr = 0.001\n[[variant]]\nname = \"b\"\n\
         kind = \"baseline\"\n[[variant]]\nname = \"e\"\nkind = \"etf-ffn\"\nk = 5\n",
    )
    .unwrap();
    let r = etf(&["run", s(&vit), "--out", s(&tmp.path().join("vit-out"))]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("variant \"e\""),
        "{err}"
    );
    assert!(!tmp.path().join("vit-out").exists(), "{err}");
}

/// An MNIST-like data root whose training images file is `make`'s, the others valid.
fn mnist_root(dir: &Path, n_train: u32) -> PathBuf {
    let root = dir.join("data");
    let mnist = root.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let idx = |magic: u32, dims: &[u32]| -> Vec<u8> {
        let n: u32 = dims.iter().product();
        let mut b: Vec<u8> = std::iter::once(magic)
            .chain(dims.iter().copied())
            .flat_map(u32::to_be_bytes)
            .collect();
        b.extend((0..n).map(|i| (i % 10) as u8));
        b
    };
    for (prefix, n) in [("train", n_train), ("t10k", 10)] {
        std::fs::write(
            mnist.join(format!("{prefix}-images-idx3-ubyte")),
            idx(0x803, &[n, 28, 28]),
        )
        .unwrap();
        std::fs::write(
            mnist.join(format!("{prefix}-labels-idx1-ubyte")),
            idx(0x801, &[n]),
        )
        .unwrap();
    }
    root
}

fn mnist_config(dir: &Path, root: &Path) -> PathBuf {
    let start = CONFIG.find("[data.synthetic]").unwrap();
    let end = CONFIG.find("[model]").unwrap();
    let text = format!("{}{}", &CONFIG[..start], &CONFIG[end..])
        .replace("\"synthetic\"", "\"mnist\"")
        .replace(
            "probe_size = 40",
            &format!("probe_size = 10\nroot = {:?}", s(root)),
        );
    let path = dir.join("mnist.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_empty_training_set_is_an_error_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let root = mnist_root(tmp.path(), 0);
    let cfg = mnist_config(tmp.path(), &root);
    refused(
        tmp.path(),
        &cfg,
        &[],
        &["train-images-idx3-ubyte", "holds no images"],
    );
    let r = etf(&["run", s(&cfg), "--out", s(&tmp.path().join("out"))]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !err.contains("learning rate") && !err.contains("NaN"),
        "{err}"
    );
}

#[test]
fn a_directory_fifo_or_broken_link_at_a_data_path_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let root = mnist_root(tmp.path(), 20);
    let cfg = mnist_config(tmp.path(), &root);
    let file = root.join("mnist/train-labels-idx1-ubyte");
    let fifo = |p: &Path| {
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    };
    let cases: [Maker; 3] = [
        ("is a directory", &|p: &Path| {
            std::fs::create_dir(p).unwrap()
        }),
        ("is a FIFO", &fifo),
        ("is a symbolic link to", &|p: &Path| {
            std::os::unix::fs::symlink("/nonexistent/labels", p).unwrap()
        }),
    ];
    for (what, make) in cases {
        std::fs::remove_file(&file).unwrap();
        make(&file);
        refused(tmp.path(), &cfg, &[], &["train-labels-idx1-ubyte", what]);
        let r = etf(&["run", s(&cfg), "--out", s(&tmp.path().join("out"))]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!err.contains("missing"), "{what}: {err}");
        if file.is_dir() {
            std::fs::remove_dir(&file).unwrap();
        } else {
            std::fs::remove_file(&file).unwrap();
        }
        std::fs::write(&file, b"").unwrap();
    }
}

#[test]
fn diagnose_data_root_wins_over_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let root = mnist_root(tmp.path(), 20);
    let cfg = mnist_config(tmp.path(), &root);
    let out = tmp.path().join("out");
    let r = etf(&["run", s(&cfg), "--out", s(&out), "--variant", "baseline"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let run = out.join("baseline/seed-0");
    let nowhere = tmp.path().join("nowhere");
    std::fs::create_dir(&nowhere).unwrap();
    // The flag names the good root; the environment a bad one: the flag wins.
    let r = etf_env(
        &[
            "diagnose",
            s(&run),
            "--device",
            "cpu",
            "--data-root",
            s(&root),
        ],
        &[("ETF_DATA_DIR", s(&nowhere))],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // The environment wins over the config, and an empty variable counts as unset.
    let r = etf_env(
        &["diagnose", s(&run), "--device", "cpu"],
        &[("ETF_DATA_DIR", s(&nowhere))],
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("nowhere"), "{err}");
    let r = etf_env(
        &["diagnose", s(&run), "--device", "cpu"],
        &[("ETF_DATA_DIR", "")],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

/// What a case expects in the message, and how it puts that thing at a path.
type Maker<'a> = (&'a str, &'a dyn Fn(&Path));
