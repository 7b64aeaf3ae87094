//! `etf sweep --stack`: the runs of a sweep trained as one stack write the run directories a
//! sweep writes (read by `compare`, `diagnose` and `run --resume` as single runs), agree with the
//! unstacked sweep, and resume as a whole; in both modes: joint (asked for here, since the CPU's
//! default is the other) and in turn (the CPU's, equal to the unstacked sweep bit for bit).

mod common;

use common::{etf, s, TINY_SWEEP};
use std::path::{Path, PathBuf};

const RUNS: [&str; 4] = [
    "baseline/seed-0",
    "adaptive/seed-0",
    "baseline/seed-1",
    "adaptive/seed-1",
];

fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("exp.toml");
    // Three epochs, so a stop after one leaves two to resume.
    std::fs::write(&cfg, TINY_SWEEP.replace("epochs = 2", "epochs = 3")).unwrap();
    (tmp, cfg)
}

/// The two ways to stack, and how close each run's numbers come to its single run's (the
/// joint products round differently; in turn, a run is its single run).
const MODES: [(&[&str], f64); 2] = [
    (&["--stack", "--stack-mode", "joint"], 1e-3),
    (&["--stack"], 0.0),
];

fn ok(args: &[&str]) -> String {
    let r = etf(args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout).into_owned()
}

fn sweep(cfg: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["sweep", s(cfg), "--out", s(out), "--threads", "1"];
    args.extend(extra);
    ok(&args)
}

/// `metrics.csv` as a header and rows of cells.
fn metrics(run: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

/// The metrics of two runs agree: the same cells in every column but wall times, numbers within
/// `rel` (relative; and 1e-6 absolute, for quantities of rounding size such as a locked map's
/// deviation from equal norms), text exactly. `rel = 0` asks for the same bytes.
fn assert_metrics_agree(a: &Path, b: &Path, rel: f64) {
    let ((ha, ra), (hb, rb)) = (metrics(a), metrics(b));
    assert_eq!(ha, hb);
    assert_eq!(ra.len(), rb.len(), "{} vs {}", a.display(), b.display());
    for (r, (x, y)) in ra.iter().zip(&rb).enumerate() {
        for (c, (p, q)) in x.iter().zip(y).enumerate() {
            let col = &ha[c];
            if col.ends_with("seconds") || col == "samples_per_second" {
                continue;
            }
            match (p.parse::<f64>(), q.parse::<f64>()) {
                (Ok(u), Ok(v)) if rel > 0.0 => {
                    let d = (u - v).abs();
                    let bound = rel * u.abs().max(v.abs()) + 1e-6;
                    assert!(d <= bound, "{}: row {r} {col}: {p} vs {q}", a.display());
                }
                _ => assert_eq!(p, q, "{}: row {r} {col}", a.display()),
            }
        }
    }
}

#[test]
fn a_stacked_sweep_writes_the_runs_a_sweep_writes() {
    let (tmp, cfg) = setup();
    let single = tmp.path().join("single");
    sweep(&cfg, &single, &[]);
    for (k, (mode, rel)) in MODES.into_iter().enumerate() {
        let stacked = tmp.path().join(format!("stacked-{k}"));
        writes_the_runs_a_sweep_writes(&cfg, &stacked, &single, mode, rel);
    }
}

fn writes_the_runs_a_sweep_writes(
    cfg: &Path,
    stacked: &Path,
    single: &Path,
    mode: &[&str],
    rel: f64,
) {
    let printed = sweep(cfg, stacked, mode);
    assert!(printed.contains("| adaptive |"), "{printed}");
    let how = if rel == 0.0 { "(in-turn)" } else { "(joint)" };
    for run in RUNS {
        let dir = stacked.join(run);
        for file in [
            "config.toml",
            "metrics.csv",
            "summary.json",
            "checkpoint.safetensors",
            "report.md",
            "run.log",
        ] {
            assert!(dir.join(file).is_file(), "{run}: no {file}");
        }
        // Per-epoch losses, accuracies, locks, counts and collapse metrics as the single run's.
        assert_metrics_agree(&dir, &single.join(run), rel);
        let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
        assert!(
            log.contains(&format!("training in a stack of 4 {how}")),
            "{log}"
        );
    }
    let (header, rows) = metrics(&stacked.join("adaptive/seed-0"));
    let locked = header.iter().position(|h| h == "locked_layers").unwrap();
    assert!(
        rows.iter().any(|r| !r[locked].is_empty()),
        "the adaptive run locks something: {rows:?}"
    );
    // `compare` reads the four runs as a sweep's.
    let table = ok(&["compare", s(stacked)]);
    for variant in ["baseline", "adaptive"] {
        let row = table
            .lines()
            .find(|l| l.contains(&format!("| {variant} |")))
            .unwrap_or_else(|| panic!("no {variant} row in\n{table}"));
        assert!(row.contains("| 0,1 |"), "{row}");
    }
    // `diagnose` reads a stacked run's checkpoint as a single run's.
    ok(&[
        "diagnose",
        s(&stacked.join("adaptive/seed-1")),
        "--device",
        "cpu",
    ]);
}

#[test]
fn a_stacked_sweep_resumes_as_a_whole_and_its_runs_resume_alone() {
    for (mode, rel) in MODES {
        resumes_as_a_whole_and_alone(mode, rel);
    }
}

fn resumes_as_a_whole_and_alone(mode: &[&str], rel: f64) {
    let (tmp, cfg) = setup();
    let with = |extra: &[&'static str]| [mode, extra].concat();
    let whole = tmp.path().join("whole");
    sweep(&cfg, &whole, mode);
    // Stopped after one epoch, resumed as a stack: the same metrics, bit for bit.
    let resumed = tmp.path().join("resumed");
    sweep(&cfg, &resumed, &with(&["--stop-after", "1"]));
    for run in RUNS {
        assert!(!resumed.join(run).join("summary.json").exists());
        assert_eq!(metrics(&resumed.join(run)).1.len(), 1);
    }
    sweep(&cfg, &resumed, &with(&["--resume"]));
    for run in RUNS {
        assert_metrics_agree(&resumed.join(run), &whole.join(run), 0.0);
    }
    // A stacked run's checkpoint resumes as a single run (`etf run --resume`).
    let alone = tmp.path().join("alone");
    sweep(&cfg, &alone, &with(&["--stop-after", "1"]));
    ok(&[
        "run",
        s(&cfg),
        "--out",
        s(&alone),
        "--variant",
        "adaptive",
        "--seed",
        "1",
        "--resume",
        "--threads",
        "1",
    ]);
    let run = alone.join("adaptive/seed-1");
    assert!(run.join("summary.json").exists());
    assert_metrics_agree(&run, &whole.join("adaptive/seed-1"), rel);
    // With three runs at epoch 1 and one finished, --resume stacks the three and keeps the one.
    sweep(&cfg, &alone, &with(&["--resume", "--max-members", "2"]));
    for run in RUNS {
        assert_metrics_agree(&alone.join(run), &whole.join(run), rel);
    }
}

#[test]
fn a_vit_sweep_is_refused_with_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("vit");
    let r = etf(&[
        "sweep",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../experiments/vit-fashion.toml"
        ),
        "--out",
        s(&out),
        "--stack",
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("only the MLP trains stacked"), "{err}");
}

#[test]
fn a_sigterm_ends_a_stack_at_the_end_of_its_epoch_and_it_resumes_there() {
    for (mode, _) in MODES {
        sigterm_ends_the_epoch_and_resumes(mode);
    }
}

fn sigterm_ends_the_epoch_and_resumes(mode: &[&str]) {
    let (tmp, cfg) = setup();
    let whole = tmp.path().join("whole");
    sweep(&cfg, &whole, mode);
    // 400 samples in batches of 64: 7 steps an epoch; the signal comes after step 3 of epoch 1.
    let out = tmp.path().join("stopped");
    let args = [
        &["sweep", s(&cfg), "--out", s(&out), "--threads", "1"],
        mode,
    ]
    .concat();
    let r = common::etf_env(&args, &[("ETF_TEST_SIGTERM_AFTER_STEPS", "3")]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(75), "{err}");
    for run in RUNS {
        let dir = out.join(run);
        assert_eq!(metrics(&dir).1.len(), 1, "{run}: epoch 1 finished");
        let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
        assert!(
            log.contains("stopped by SIGTERM before epoch 2"),
            "{run}: {log}"
        );
    }
    sweep(&cfg, &out, &[mode, &["--resume"]].concat());
    for run in RUNS {
        assert_metrics_agree(&out.join(run), &whole.join(run), 0.0);
    }
}

#[test]
fn a_diverging_stack_stops_every_run_and_says_so_in_each() {
    for (mode, _) in MODES {
        diverging_stack_stops(mode);
    }
}

fn diverging_stack_stops(mode: &[&str]) {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("nan");
    let args = [
        &["sweep", s(&cfg), "--out", s(&out), "--threads", "1"],
        mode,
        &["--set", "train.optimizer.lr=1e30"],
    ]
    .concat();
    let r = etf(&args);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not finite") && err.contains("no checkpoint was written"),
        "{err}"
    );
    for run in RUNS {
        let dir = out.join(run);
        let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
        assert!(log.contains("stopped in epoch 1"), "{run}: {log}");
        assert!(!dir.join("checkpoint.safetensors").exists(), "{run}");
        assert!(!dir.join("summary.json").exists(), "{run}");
    }
}

#[test]
fn a_stack_stopped_in_one_mode_resumes_in_the_other() {
    let (tmp, cfg) = setup();
    let [(joint, rel), (in_turn, _)] = MODES;
    let whole = tmp.path().join("whole");
    sweep(&cfg, &whole, joint);
    let out = tmp.path().join("switched");
    sweep(&cfg, &out, &[joint, &["--stop-after", "1"]].concat());
    sweep(&cfg, &out, &[in_turn, &["--resume"]].concat());
    for run in RUNS {
        assert!(out.join(run).join("summary.json").exists(), "{run}");
        // Epoch 1 was the joint stack's, epochs 2–3 the single runs' steps.
        assert_metrics_agree(&out.join(run), &whole.join(run), rel);
        let log = std::fs::read_to_string(out.join(run).join("run.log")).unwrap();
        assert!(
            log.contains("(joint)") && log.contains("(in-turn)"),
            "{run}: {log}"
        );
    }
}

#[test]
fn a_bad_stack_mode_is_refused_by_name() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("bad");
    let bad = |extra: &[&str]| {
        let r = etf(&[&["sweep", s(&cfg), "--out", s(&out)], extra].concat());
        assert_eq!(r.status.code(), Some(2), "usage errors exit 2");
        String::from_utf8_lossy(&r.stderr).into_owned()
    };
    let err = bad(&["--stack", "--stack-mode", "jointly"]);
    assert!(
        err.contains("--stack-mode") && err.contains("expected auto, joint or in-turn"),
        "{err}"
    );
    let err = bad(&["--stack-mode", "joint"]);
    assert!(err.contains("--stack"), "{err}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_run_stopped_inside_an_epoch_is_not_stacked_and_the_error_says_what_to_do() {
    let (tmp, cfg) = setup();
    let out = tmp.path().join("inside");
    // Unstacked, the signal after step 3 stops the first run inside epoch 1.
    let args = ["sweep", s(&cfg), "--out", s(&out), "--threads", "1"];
    let r = common::etf_env(&args, &[("ETF_TEST_SIGTERM_AFTER_STEPS", "3")]);
    assert_eq!(r.status.code(), Some(75));
    let r = etf(&[&args[..], &["--stack", "--resume"]].concat());
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(
            "baseline/seed-0: its checkpoint stopped inside an epoch; finish that epoch \
             with `etf run --resume` (without --stack), then stack it again"
        ),
        "{err}"
    );
}
