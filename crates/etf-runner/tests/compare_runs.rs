//! Which runs `etf compare` (and a sweep's own `comparison.md`) count: each directory once,
//! runs of different configurations apart even under one name, unreadable runs reported and
//! skipped, and a sharded sweep's table of every shard's runs.

mod common;

use common::{etf, s, TINY_SWEEP};
use std::path::Path;

/// The table row of `variant` (its cells, trimmed), or `None`.
fn row(table: &str, variant: &str) -> Option<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.len() > 3 && cells[2] == variant)
}

fn seeds(table: &str, variant: &str) -> String {
    row(table, variant).unwrap_or_else(|| panic!("no row {variant:?} in\n{table}"))[3].clone()
}

fn sweep(cfg: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["sweep", s(cfg), "--out", s(out), "--threads", "1"];
    args.extend(extra);
    let r = etf(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn compare_counts_each_run_once_keeps_configurations_apart_and_skips_bad_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("exp.toml");
    std::fs::write(&cfg, TINY_SWEEP).unwrap();
    let out = tmp.path().join("runs");
    sweep(&cfg, &out, &[]);
    // The same experiment and variant names, a wider network, in a folder among the others.
    let wide = out.join("wide");
    let r = etf(&[
        "run",
        s(&cfg),
        "--out",
        s(&wide),
        "--variant",
        "adaptive",
        "--seed",
        "0",
        "--set",
        "model.width=48",
        "--threads",
        "1",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // A link back up (a loop) and the same folder given twice.
    std::os::unix::fs::symlink(&out, out.join("loop")).unwrap();
    let cmp = etf(&[
        "compare",
        s(&out),
        s(&out),
        "--figures",
        s(&tmp.path().join("f")),
    ]);
    let (table, err) = (
        String::from_utf8_lossy(&cmp.stdout).to_string(),
        String::from_utf8_lossy(&cmp.stderr).to_string(),
    );
    assert!(cmp.status.success(), "{err}");
    assert_eq!(seeds(&table, "baseline"), "0,1", "{table}");
    assert_eq!(
        seeds(&table, "adaptive (model.width = 32)"),
        "0,1",
        "{table}"
    );
    assert_eq!(seeds(&table, "adaptive (model.width = 48)"), "0", "{table}");
    assert!(row(&table, "adaptive").is_none(), "never averaged: {table}");
    assert!(
        err.contains("different configurations") && err.contains("model.width"),
        "{err}"
    );

    // An unreadable summary: reported by path, the other runs still compared, exit non-zero.
    let bad = out.join("baseline/seed-1/summary.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let cmp = etf(&["compare", s(&out), "--figures", s(&tmp.path().join("f"))]);
    let (table, err) = (
        String::from_utf8_lossy(&cmp.stdout).to_string(),
        String::from_utf8_lossy(&cmp.stderr).to_string(),
    );
    assert!(!cmp.status.success(), "a skipped run fails the command");
    assert!(
        err.contains("1 run(s) could not be read") && err.contains(s(&bad)),
        "{err}"
    );
    assert_eq!(seeds(&table, "baseline"), "0", "{table}");
    assert!(tmp.path().join("f/test_accuracy.png").is_file());
}

#[test]
fn each_shard_writes_the_comparison_of_every_finished_run_of_the_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("exp.toml");
    std::fs::write(&cfg, TINY_SWEEP).unwrap();
    let out = tmp.path().join("runs");
    let table = || std::fs::read_to_string(out.join("comparison.md")).unwrap();
    // Jobs in order (baseline,0) (adaptive,0) (baseline,1) (adaptive,1).
    sweep(&cfg, &out, &["--shard", "1/2"]);
    assert_eq!(seeds(&table(), "adaptive"), "0,1");
    assert!(row(&table(), "baseline").is_none());
    sweep(&cfg, &out, &["--shard", "0/2"]);
    let t = table();
    assert_eq!(
        (seeds(&t, "baseline"), seeds(&t, "adaptive")),
        ("0,1".into(), "0,1".into()),
        "{t}"
    );
}
