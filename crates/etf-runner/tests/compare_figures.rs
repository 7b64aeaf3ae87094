//! `etf compare` writes the comparison figures: a two-variant × two-seed synthetic sweep of two
//! epochs, compared into a folder of its own.

mod common;

use common::{etf, s, TINY_SWEEP};
use std::path::Path;

const FIGURES: [&str; 8] = [
    "test_accuracy",
    "train_accuracy",
    "learnable_params",
    "train_loss",
    "layers_ncc",
    "layers_nc1",
    "layers_ncc_per_epoch_adaptive",
    "accuracy_vs_reduction",
];

fn assert_figure(dir: &Path, stem: &str) {
    let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
    assert!(png.len() > 1000, "{stem}.png is {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png signature");
    let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
    assert!(svg.starts_with("<svg"), "{stem}.svg");
    if !stem.starts_with("layers_ncc_per_epoch") {
        // The grid is one variant's; every other figure overlays both, named in its legend.
        assert!(
            svg.contains("baseline") && svg.contains("adaptive"),
            "{stem}.svg"
        );
    }
}

#[test]
fn compare_writes_figures_of_a_two_variant_two_seed_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("exp.toml");
    std::fs::write(&cfg, TINY_SWEEP).unwrap();
    let out = tmp.path().join("runs");
    let r = etf(&["sweep", s(&cfg), "--out", s(&out), "--threads", "1"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // The sweep ends naming its figures.
    let said = String::from_utf8_lossy(&r.stdout);
    let last = said.lines().last().unwrap_or_default();
    assert!(last.contains("accuracy_vs_reduction.png"), "{said}");
    assert!(said.contains("layers_ncc_per_epoch_adaptive.png"), "{said}");
    let figs = tmp.path().join("figures");
    let cmp = etf(&["compare", s(&out), "--figures", s(&figs)]);
    assert!(
        cmp.status.success(),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
    for stem in FIGURES {
        assert_figure(&figs, stem);
    }
    let err = String::from_utf8_lossy(&cmp.stderr);
    assert!(err.contains("test_accuracy.png"), "{err}");
    // The grid of another variant on request; an unknown one is refused by name.
    let base = etf(&[
        "compare",
        s(&out),
        "--figures",
        s(&figs),
        "--layers-of",
        "baseline",
    ]);
    assert!(base.status.success());
    assert_figure(&figs, "layers_ncc_per_epoch_baseline");
    let bad = etf(&["compare", s(&out), "--layers-of", "nope"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--layers-of nope") && err.contains("baseline"),
        "{err}"
    );
}
