//! End-to-end behaviour of the `etf` binary on synthetic data: kill and resume, refusal to
//! overwrite, one writer per run directory, strict resume, graceful stop on SIGTERM, non-finite
//! loss, missing data, CUDA requests, sweep shards, compare, diagnose.

mod common;

use common::{etf, etf_env, s};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
name = "synthetic-test"
seeds = [0]
[data]
dataset = "synthetic"
probe_size = 600
[data.synthetic]
num_classes = 6
dim = 32
train_per_class = 800
test_per_class = 100
separation = 3.0
noise_std = 1.0
seed = 1
[model]
kind = "mlp"
depth = 3
width = 96
[train]
epochs = 5
batch_size = 64
device = "cpu"
[train.optimizer]
kind = "sgd"
lr = 0.02
momentum = 0.9
weight_decay = 5e-4
[[variant]]
name = "baseline"
kind = "baseline"
[[variant]]
name = "adaptive"
kind = "adaptive"
tau = 0.9
patience = 1
"#;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("exp.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    (dir, cfg)
}

/// The metrics without the wall-time columns, as numbers where they are numbers.
fn metrics_without_times(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].ends_with("seconds") && header[i] != "samples_per_second")
        .collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i].to_string()).collect()
        })
        .collect()
}

/// The two `metrics.csv` files are the same bytes, every column but the wall times.
fn assert_same_metrics(a: &Path, b: &Path) {
    let (x, y) = (metrics_without_times(a), metrics_without_times(b));
    assert_eq!(x.len(), y.len());
    for (r, (u, v)) in x.iter().zip(&y).enumerate() {
        for (c, (p, q)) in u.iter().zip(v).enumerate() {
            assert_eq!(p, q, "row {r} col {c}");
        }
    }
}

/// The error text of a run, asserting it failed.
fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file of `dir` (not below it) with its bytes, but the lock file (which names the last
/// process that locked the directory).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with("run.lock"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_killed_run_resumes_to_the_same_metrics() {
    let (tmp, cfg) = setup();
    let full = tmp.path().join("full");
    let out = etf(&["run", s(&cfg), "--out", s(&full), "--variant", "adaptive"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let killed = tmp.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_etf"))
        .args(["run", s(&cfg), "--out", s(&killed), "--variant", "adaptive"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let ckpt = killed.join("adaptive/seed-0/checkpoint.safetensors");
    let t0 = Instant::now();
    while !ckpt.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Killed in epoch 2, after epoch 1's checkpoint.
    assert!(
        child.try_wait().unwrap().is_none(),
        "finished before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.join("adaptive/seed-0/summary.json").exists());
    let again = etf(&["run", s(&cfg), "--out", s(&killed), "--variant", "adaptive"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    let resumed = etf(&[
        "run",
        s(&cfg),
        "--out",
        s(&killed),
        "--variant",
        "adaptive",
        "--resume",
    ]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_same_metrics(
        &full.join("adaptive/seed-0/metrics.csv"),
        &killed.join("adaptive/seed-0/metrics.csv"),
    );
    let log = std::fs::read_to_string(killed.join("adaptive/seed-0/run.log")).unwrap();
    assert!(log.contains("resumed after epoch"), "{log}");
}

#[test]
fn finished_runs_are_not_overwritten_and_sweeps_shard() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("sweep");
    let quick = [
        "--set",
        "train.epochs=1",
        "--set",
        "data.synthetic.train_per_class=100",
    ];
    let mut args = vec![
        "sweep",
        s(&cfg),
        "--seeds",
        "0..2",
        "--shard",
        "1/2",
        "--out",
        s(&out),
    ];
    args.extend(quick);
    let r = etf(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // Jobs in order (baseline,0) (adaptive,0) (baseline,1) (adaptive,1): shard 1/2 takes the
    // adaptive ones.
    assert!(out.join("adaptive/seed-0/summary.json").exists());
    assert!(out.join("adaptive/seed-1/summary.json").exists());
    assert!(!out.join("baseline").exists());
    for f in [
        "metrics.csv",
        "report.md",
        "config.toml",
        "run.log",
        "accuracy.png",
        "ncc.png",
        "nc1.png",
        "effective_depth.png",
    ] {
        assert!(out.join("adaptive/seed-0").join(f).exists(), "{f} missing");
    }
    let again = etf(&args);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("finished run") && err.contains("--force"),
        "{err}"
    );
    let cmp = etf(&["compare", s(&out)]);
    assert!(cmp.status.success());
    let table = String::from_utf8_lossy(&cmp.stdout);
    assert!(
        table.contains("| synthetic-test | adaptive | 0,1 |"),
        "{table}"
    );
    let diag_dir = tmp.path().join("features");
    let d = etf(&[
        "diagnose",
        s(&out.join("adaptive/seed-0")),
        "--dump-features",
        s(&diag_dir),
        "--device",
        "cpu",
    ]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    for f in [
        "hidden1.npy",
        "hidden3.npy",
        "penultimate.npy",
        "labels.npy",
    ] {
        assert!(diag_dir.join(f).exists(), "{f} missing");
    }
    assert!(String::from_utf8_lossy(&d.stdout).contains("| hidden1 |"));
}

#[test]
fn a_sweep_without_seeds_trains_the_config_seeds() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("sweep-default");
    let r = etf(&[
        "sweep",
        s(&cfg),
        "--variant",
        "baseline",
        "--out",
        s(&out),
        "--set",
        "train.epochs=1",
        "--set",
        "data.synthetic.train_per_class=100",
        "--set",
        "seeds=[2]",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let seeds: Vec<String> = std::fs::read_dir(out.join("baseline"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(seeds, ["seed-2"]);
}

#[test]
fn compare_partial_summarises_unfinished_runs_at_their_last_epoch() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("partial");
    let r = etf(&[
        "run",
        s(&cfg),
        "--out",
        s(&out),
        "--stop-after",
        "2",
        "--set",
        "data.synthetic.train_per_class=100",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!out.join("adaptive/seed-0/summary.json").exists());

    // Without --partial there is nothing to compare, and the error says what would help.
    let plain = etf(&["compare", s(&out)]);
    assert!(!plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("--partial"));

    let cmp = etf(&["compare", "--partial", s(&out)]);
    assert!(
        cmp.status.success(),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
    let table = String::from_utf8_lossy(&cmp.stdout);
    assert!(
        table.contains("| synthetic-test | baseline (unfinished: epoch 2 of 5) | 0 |"),
        "{table}"
    );
    assert!(
        table.contains("| synthetic-test | adaptive (unfinished: epoch 2 of 5) | 0 |"),
        "{table}"
    );
    assert!(table.contains("not final results"), "{table}");
    // The test accuracy shown is the one metrics.csv holds for epoch 2.
    let csv = std::fs::read_to_string(out.join("baseline/seed-0/metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "test_accuracy").unwrap();
    let last: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    let acc: f64 = last[col].parse().unwrap();
    assert!(
        table.contains(&format!("| {:.2} % (n = 1) |", 100.0 * acc)),
        "{table}"
    );
}

#[test]
fn a_diverging_resume_keeps_the_last_good_checkpoint() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("nan");
    // Epoch 1 trains; from epoch 2 on the rate is 1e30 times larger and the loss not finite.
    let small = [
        "--set",
        "data.synthetic.train_per_class=100",
        "--set",
        "train.schedule={ kind = \"multi-step\", milestones = [1], gamma = 1e30 }",
        "--variant",
        "baseline",
    ];
    let mut first = vec!["run", s(&cfg), "--out", s(&out), "--stop-after", "1"];
    first.extend(small);
    succeeded(&etf(&first));
    let ckpt = out.join("baseline/seed-0/checkpoint.safetensors");
    let before = std::fs::read(&ckpt).unwrap();
    let mut resume = vec!["run", s(&cfg), "--out", s(&out), "--resume"];
    resume.extend(small);
    let err = failed(&etf(&resume));
    assert!(
        err.contains("not finite") && err.contains("the last good checkpoint is kept in"),
        "{err}"
    );
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);
}

#[test]
fn a_run_diverging_before_its_first_checkpoint_says_there_is_none() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("nan-first");
    let err = failed(&etf(&[
        "run",
        s(&cfg),
        "--out",
        s(&out),
        "--variant",
        "baseline",
        "--set",
        "data.synthetic.train_per_class=100",
        "--set",
        "train.optimizer.lr=1e30",
    ]));
    assert!(
        err.contains("not finite") && err.contains("no checkpoint was written"),
        "{err}"
    );
    assert!(!err.contains("last good checkpoint"), "{err}");
    assert!(!out.join("baseline/seed-0/checkpoint.safetensors").exists());
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_run_directory() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("busy");
    let run = out.join("baseline/seed-0");
    // A long run (the test ends it) holding the directory.
    let mut first = Command::new(env!("CARGO_BIN_EXE_etf"))
        .args(["run", s(&cfg), "--out", s(&out), "--variant", "baseline"])
        .args(["--set", "train.epochs=1000"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !run.join("checkpoint.safetensors").exists() {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint");
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    let config = std::fs::read(run.join("config.toml")).unwrap();
    let holder = format!("pid {} on ", first.id());
    for mode in [
        &["--force", "--set", "model.width=64"][..],
        &["--resume", "--set", "train.epochs=1000"][..],
        &["--set", "train.epochs=1000"][..],
    ] {
        let second = etf(&[
            &["run", s(&cfg), "--out", s(&out), "--variant", "baseline"][..],
            mode,
        ]
        .concat());
        let err = failed(&second);
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        assert!(
            err.contains("in use by another run")
                && err.contains(&holder)
                && err.contains("started 20"),
            "{mode:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(run.join("config.toml")).unwrap(), config);
    // Killed, the first writer's lock goes with it: the run resumes.
    first.kill().unwrap();
    first.wait().unwrap();
    succeeded(&etf(&[
        "run",
        s(&cfg),
        "--out",
        s(&out),
        "--variant",
        "baseline",
        "--resume",
        "--set",
        "train.epochs=1000",
        "--stop-after",
        "1",
    ]));
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(log.contains("resumed after epoch"), "{log}");
}

#[test]
fn resume_refuses_a_changed_configuration_and_leaves_the_run_as_it_was() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("strict");
    let run = out.join("baseline/seed-0");
    let base = [
        "--variant",
        "baseline",
        "--set",
        "data.synthetic.train_per_class=100",
    ];
    let go =
        |extra: &[&str]| etf(&[&["run", s(&cfg), "--out", s(&out)][..], &base[..], extra].concat());
    succeeded(&go(&["--set", "train.epochs=2", "--stop-after", "1"]));
    let before = files(&run);
    for (set, key) in [
        ("model.width=64", "model.width"),
        ("train.optimizer.lr=0.5", "train.optimizer.lr"),
        ("data.synthetic.seed=2", "data.synthetic.seed"),
    ] {
        let err = failed(&go(&["--resume", "--set", "train.epochs=2", "--set", set]));
        assert!(
            err.contains("differs from the run's own") && err.contains(key),
            "{set}: {err}"
        );
        assert_eq!(files(&run), before, "{set}: the run directory changed");
    }
    let d = etf(&["diagnose", s(&run), "--device", "cpu"]);
    succeeded(&d);
    // train.epochs may change: the run is extended, also once finished.
    succeeded(&go(&["--resume", "--set", "train.epochs=2"]));
    assert!(run.join("summary.json").exists());
    succeeded(&go(&["--resume", "--set", "train.epochs=3"]));
    assert!(run.join("summary.json").exists());
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("epochs = 3"), "{config}");
    let full = tmp.path().join("full");
    succeeded(&etf(&[
        &["run", s(&cfg), "--out", s(&full)][..],
        &base[..],
        &["--set", "train.epochs=3"],
    ]
    .concat()));
    assert_same_metrics(
        &full.join("baseline/seed-0/metrics.csv"),
        &run.join("metrics.csv"),
    );
    let err = failed(&go(&["--resume", "--set", "train.epochs=2"]));
    assert!(
        err.contains("train.epochs = 2 is below the 3 epochs"),
        "{err}"
    );
}

/// `etf run … --variant adaptive --set train.epochs=3` with extra arguments and environment.
fn run_adaptive(cfg: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["run", s(cfg), "--out", s(out), "--variant", "adaptive"];
    args.extend(["--set", "train.epochs=3"]);
    args.extend(extra);
    etf_env(&args, env)
}

#[test]
fn sigterm_stops_after_the_step_and_resume_continues_there_to_the_same_metrics() {
    let (tmp, cfg) = setup();
    let full = tmp.path().join("full");
    succeeded(&run_adaptive(&cfg, &full, &[], &[]));
    // 4800 samples in batches of 64: 75 steps an epoch; step 100 is step 25 of epoch 2.
    let out = tmp.path().join("stopped");
    let run = out.join("adaptive/seed-0");
    let hook = [("ETF_TEST_SIGTERM_AFTER_STEPS", "100")];
    let stopped = run_adaptive(&cfg, &out, &[], &hook);
    let err = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(75), "{err}");
    assert!(
        err.contains("stopped by SIGTERM in epoch 2 after step 25 of 75"),
        "{err}"
    );
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(
        log.contains("stopped by SIGTERM in epoch 2 after step 25 of 75"),
        "{log}"
    );
    assert!(!run.join("summary.json").exists());
    assert_eq!(metrics_without_times(&run.join("metrics.csv")).len(), 1);
    // Stopped again after 50 steps ending epoch 2 and 5 of epoch 3, then to the end.
    let again = run_adaptive(
        &cfg,
        &out,
        &["--resume"],
        &[("ETF_TEST_SIGTERM_AFTER_STEPS", "55")],
    );
    assert_eq!(again.status.code(), Some(75));
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(log.contains("resumed in epoch 2 after step 25"), "{log}");
    assert!(
        log.contains("stopped by SIGTERM in epoch 3 after step 5 of 75"),
        "{log}"
    );
    succeeded(&run_adaptive(&cfg, &out, &["--resume"], &[]));
    assert_same_metrics(
        &full.join("adaptive/seed-0/metrics.csv"),
        &run.join("metrics.csv"),
    );
}

#[test]
fn a_second_sigterm_exits_at_once_and_the_run_still_resumes() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("twice");
    let run = out.join("adaptive/seed-0");
    let hook = [("ETF_TEST_SIGTERM_AFTER_STEPS", "100,100")];
    let r = run_adaptive(&cfg, &out, &[], &hook);
    assert_eq!(
        r.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // No checkpoint inside epoch 2 was written: the log ends with epoch 1.
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(!log.contains("stopped by"), "{log}");
    assert_eq!(metrics_without_times(&run.join("metrics.csv")).len(), 1);
    succeeded(&run_adaptive(&cfg, &out, &["--resume"], &[]));
    assert_eq!(metrics_without_times(&run.join("metrics.csv")).len(), 3);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let (tmp, cfg) = setup();
    let empty = tmp.path().join("no-data");
    std::fs::create_dir(&empty).unwrap();
    let start = CONFIG.find("[data.synthetic]").unwrap();
    let end = CONFIG.find("[model]").unwrap();
    let mnist =
        format!("{}{}", &CONFIG[..start], &CONFIG[end..]).replace("\"synthetic\"", "\"mnist\"");
    let mnist_cfg = tmp.path().join("mnist.toml");
    std::fs::write(&mnist_cfg, mnist).unwrap();
    let r = etf(&[
        "run",
        s(&mnist_cfg),
        "--out",
        s(&tmp.path().join("o")),
        "--set",
        &format!("data.root={}", s(&empty)),
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("fetch-data"), "{err}");
    if !tch::Cuda::is_available() {
        let r = etf(&["run", s(&cfg), "--device", "cuda"]);
        assert!(!r.status.success());
        assert!(String::from_utf8_lossy(&r.stderr).contains("no CUDA device"));
    }
    let r = etf(&["run", s(&cfg), "--set", "train.optimizer.kind=adam"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("exp.toml") && err.contains("adamw"),
        "{err}"
    );
    let r = etf(&["run", s(&tmp.path().join("missing.toml"))]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("missing.toml"));
}

#[test]
fn every_experiment_file_is_valid_and_has_a_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            etf_runner::config::ExperimentConfig::load(&path, &[])
                .unwrap_or_else(|e| panic!("{e:#}"));
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/bin/{stem}.rs"));
            assert!(bin.exists(), "{stem} has no binary in src/bin");
            n += 1;
        }
    }
    assert!(n >= 7, "found only {n} experiment files");
}

#[test]
fn inspect_shows_the_initial_parameters_as_pytorch_draws_them() {
    let (_tmp, cfg) = setup();
    let args = ["inspect", s(&cfg), "--json", "--set", "model.width=512"];
    let r = etf(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stats: Vec<serde_json::Value> = serde_json::from_slice(&r.stdout).unwrap();
    let get = |name: &str| {
        stats
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let num = |p: &serde_json::Value, k: &str| p[k].as_f64().unwrap();
    // nn.Linear(512, 512): U(±1/√512), std 1/√(3·512).
    let w = get("hidden2.fc.weight");
    let bound = 1.0 / 512f64.sqrt();
    let max_abs = num(w, "max").max(-num(w, "min"));
    assert!(max_abs <= bound && max_abs > 0.99 * bound, "{w}");
    assert!(
        (num(w, "std") / (bound / 3f64.sqrt()) - 1.0).abs() < 0.01,
        "{w}"
    );
    assert_eq!(w["trainable"], true);
    let g = get("hidden1.bn.weight");
    assert_eq!(
        (num(g, "min"), num(g, "max")),
        (1.0, 1.0),
        "BatchNorm γ = 1"
    );
    assert_eq!(get("hidden1.bn.running_var")["trainable"], false);
    // The same seed gives the same model, another seed another one.
    assert_eq!(etf(&args).stdout, r.stdout);
    let other = etf(&["inspect", s(&cfg), "--json", "--seed", "1"]);
    assert!(other.status.success());
    assert_ne!(other.stdout, r.stdout);
    let r = etf(&["inspect", s(&cfg), "--variant", "nope"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("nope"), "{err}");
}

#[test]
fn the_dynamics_comparison_files_build_their_models() {
    // benches/compare-dynamics trains these with `etf` and with PyTorch; building each variant's
    // model here catches shape errors that parsing alone cannot. Needs the real data sets
    // (scripts/fetch-data, which `make test` runs first).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/dynamics");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let cfg = etf_runner::config::ExperimentConfig::load(&path, &[])
                .unwrap_or_else(|e| panic!("{e:#}"));
            for v in &cfg.variants {
                let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
                let r = etf_env(
                    &["inspect", s(&path), "--variant", &v.name],
                    &[("ETF_DATA_DIR", s(&root))],
                );
                assert!(
                    r.status.success(),
                    "{} / {}: {}",
                    path.display(),
                    v.name,
                    String::from_utf8_lossy(&r.stderr)
                );
            }
            n += 1;
        }
    }
    assert_eq!(n, 2, "benches/dynamics holds mlp.toml and vit.toml");
}

#[test]
fn a_checkpoint_of_format_1_still_resumes() {
    // tests/fixtures/format-1: epoch 1 of a tiny adaptive run (it locked after epoch 1),
    // written by the build before the training core had its own crate (see the README there).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("adaptive/seed-0");
    std::fs::create_dir_all(&run).unwrap();
    for f in [
        "config.toml",
        "checkpoint.safetensors",
        "metrics.csv",
        "run.log",
    ] {
        std::fs::copy(fixture.join("adaptive/seed-0").join(f), run.join(f)).unwrap();
    }
    let r = etf(&[
        "run",
        s(&run.join("config.toml")),
        "--out",
        s(tmp.path()),
        "--resume",
        "--device",
        "cpu",
        "--set",
        "train.epochs=2",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let old = metrics_without_times(&fixture.join("adaptive/seed-0/metrics.csv"));
    let new = metrics_without_times(&run.join("metrics.csv"));
    assert_eq!((old.len(), new.len()), (1, 2));
    let header = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let kept: Vec<&str> = header
        .lines()
        .next()
        .unwrap()
        .split(',')
        .filter(|h| !h.ends_with("seconds") && *h != "samples_per_second")
        .collect();
    let col = |name: &str| kept.iter().position(|h| *h == name).unwrap();
    // The lock's disruption was not measured by the build that wrote epoch 1: empty cells.
    let disruption = [col("lock_loss_before"), col("lock_loss_after")];
    assert!(disruption.iter().all(|&i| new[0][i].is_empty()));
    let epoch1: Vec<String> = (0..new[0].len())
        .filter(|i| !disruption.contains(i))
        .map(|i| new[0][i].clone())
        .collect();
    assert_eq!(
        epoch1, old[0],
        "epoch 1 comes from the checkpoint unchanged"
    );
    // The lock of epoch 1 was re-applied: epoch 2 has the locked model's learnable count.
    let learnable = col("learnable_params");
    assert_eq!(new[1][learnable], old[0][learnable]);
    assert_eq!(new[1][col("locked_layers")], "hidden2+classifier");
    assert!(run.join("summary.json").is_file());
}

/// A one-epoch ViT on 200 MNIST images; needs the real data (scripts/fetch-data, which
/// `make test` runs first).
const VIT: &str = r#"
name = "vit-lock-names"
[data]
dataset = "mnist"
train_limit = 200
test_limit = 100
probe_size = 100
[model]
kind = "vit"
patch = 7
dim = 16
depth = 3
heads = 2
mlp_ratio = 2.0
[train]
epochs = 1
batch_size = 50
device = "cpu"
[train.optimizer]
kind = "adamw"
lr = 1e-3
[[variant]]
name = "etf-ffn"
kind = "etf-ffn"
k = 2
"#;

#[test]
fn the_locked_column_names_the_vit_blocks_whose_ffn_is_an_etf() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("vit.toml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    std::fs::write(
        &cfg,
        VIT.replace("[data]", &format!("[data]\nroot = {:?}", s(&root))),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let r = etf(&["run", s(&cfg), "--out", s(&out)]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let run = out.join("etf-ffn/seed-0");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    let d = etf(&["diagnose", s(&run), "--device", "cpu"]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    let diagnosis = String::from_utf8_lossy(&d.stdout).to_string();
    for (what, table) in [("report.md", &report), ("etf diagnose", &diagnosis)] {
        // `k = 2` of 3 blocks: the FFNs of blocks 2 and 3 are ETF maps from the start.
        for (block, locked) in [("block1", "no"), ("block2", "yes"), ("block3", "yes")] {
            let row = format!("| {block} | {locked} |");
            assert!(table.contains(&row), "{what} lacks {row:?}:\n{table}");
        }
        assert!(table.contains("| classifier | no |"), "{what}:\n{table}");
    }
}
