//! A new user's crate, outside this workspace, depending on collapse-metrics by path: it
//! builds and runs the README's example with no `LIBTORCH` and none of the workspace's cargo
//! configuration, and its normal dependency tree holds no tch/torch-sys.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first ```` ```rust ```` block of the crate's README.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(crate_dir().join("README.md")).expect("README");
    let start = readme.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let len = readme[start..].find("```").expect("closed block");
    readme[start..start + len].to_string()
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo(dir: &Path, args: &[&str]) -> String {
    // Kept between runs (target/tmp), so only the first run compiles the dependencies.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("outside-crate");
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env_remove("LIBTORCH")
        .env_remove("LIBTORCH_USE_PYTORCH")
        .env_remove("RUSTFLAGS")
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn a_crate_outside_the_workspace_runs_the_readme_example_without_libtorch() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let manifest = format!(
        "[package]\nname = \"outside-user\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\ncollapse-metrics = {{ path = {:?} }}\n\
         serde_json = \"1\"\n\n[workspace]\n",
        crate_dir()
    );
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    // The workspace's lock file pins the same dependency versions (cargo drops the rest).
    std::fs::copy(
        crate_dir().join("../../Cargo.lock"),
        dir.path().join("Cargo.lock"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), readme_example()).unwrap();

    let tree = cargo(dir.path(), &["tree", "-e", "normal", "--prefix", "none"]);
    assert!(
        tree.contains("collapse-metrics") && tree.contains("faer"),
        "{tree}"
    );
    assert!(
        !tree.contains("tch") && !tree.contains("torch-sys"),
        "libtorch in the tree:\n{tree}"
    );

    let stdout = cargo(dir.path(), &["run", "--quiet"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    let nc1 = report["nc1"].as_f64().expect("nc1");
    assert!((nc1 - 1.0).abs() < 1e-12, "{stdout}");
    assert_eq!(report["classifier"]["nc4"].as_f64(), Some(0.25), "{stdout}");
}
