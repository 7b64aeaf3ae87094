//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a subset

use collapse_metrics::{
    ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean, MetricsError,
};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

pub const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// Both passes over `features`/`labels` in batches of `batch` rows.
pub fn streamed(
    features: &Tensor,
    labels: &Tensor,
    num_classes: usize,
    classifier: Option<Classifier<'_>>,
    global_mean: GlobalMean,
    batch: i64,
) -> Result<CollapseReport, MetricsError> {
    let dim = features.size()[1] as usize;
    let parts = |t: &Tensor| t.split(batch, 0);
    let mut pass1 = ClassMeans::new(num_classes, dim, Device::Cpu)?;
    for (f, y) in parts(features).iter().zip(parts(labels).iter()) {
        pass1.update(f, y)?;
    }
    let stats = pass1.finalize(global_mean)?;
    let mut pass2 = CollapseAccumulator::new(&stats, classifier)?;
    for (f, y) in parts(features).iter().zip(parts(labels).iter()) {
        pass2.update(f, y)?;
    }
    pass2.finalize()
}

/// Round-off floor for quantities that are exactly zero by construction (e.g. the max-angle
/// of two classes); every measure compared is of order 1 or larger.
const ATOL: f64 = 1e-14;

/// Asserts two reports agree: every number to `rtol` relative (or [`ATOL`] absolute),
/// everything else exactly.
pub fn assert_reports_close(got: &CollapseReport, want: &CollapseReport, rtol: f64) {
    let (g, w) = (
        serde_json::to_value(got).expect("serialisable"),
        serde_json::to_value(want).expect("serialisable"),
    );
    compare("report", &g, &w, rtol);
}

fn compare(path: &str, got: &Value, want: &Value, rtol: f64) {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            let err = (a - b).abs();
            assert!(
                a == b || err <= rtol * a.abs().max(b.abs()) || err <= ATOL,
                "{path}: got {a}, want {b} (relative error {:e} > {rtol:e})",
                err / a.abs().max(b.abs())
            );
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: lengths differ");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(&format!("{path}[{i}]"), x, y, rtol);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<_> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (x, y) = (&a.get(k), &b.get(k));
                match (x, y) {
                    (Some(x), Some(y)) => compare(&format!("{path}.{k}"), x, y, rtol),
                    _ => panic!("{path}.{k}: present in only one report"),
                }
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// A deterministic pseudo-random `[rows, cols]` f64 tensor in `(-1, 1)` (SplitMix64).
pub fn uniform(rows: i64, cols: i64, seed: u64) -> Tensor {
    let mut state = seed;
    let values: Vec<f64> = (0..rows * cols)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    Tensor::from_slice(&values).reshape([rows, cols])
}

/// Labelled clusters: `counts[c]` samples of class `c` around random centres, in a
/// seed-dependent order. Returns `(features [N, d], labels [N], centres [C, d])`.
pub fn clusters(counts: &[i64], dim: i64, noise: f64, seed: u64) -> (Tensor, Tensor, Tensor) {
    let c = counts.len() as i64;
    let centres = uniform(c, dim, seed) * 2.0;
    let labels: Vec<i64> = counts
        .iter()
        .enumerate()
        .flat_map(|(k, &n)| std::iter::repeat_n(k as i64, n as usize))
        .collect();
    let n = labels.len() as i64;
    let order = uniform(1, n, seed ^ 0xABCD).reshape([n]).argsort(0, false);
    let labels = Tensor::from_slice(&labels).index_select(0, &order);
    let features = centres.index_select(0, &labels) + uniform(n, dim, seed ^ 0x1234) * noise;
    (features, labels, centres)
}

/// A `d × d` orthogonal matrix (Q of a QR decomposition).
pub fn orthogonal(dim: i64, seed: u64) -> Tensor {
    let (q, _) = Tensor::linalg_qr(&uniform(dim, dim, seed), "reduced");
    q
}

/// The `C` vectors of a simplex ETF in `R^d` as rows `[C, d]`, scaled by `scale`:
/// `sqrt(C/(C−1)) (I − 11ᵀ/C) Uᵀ` with `U` `d × C` orthonormal.
pub fn simplex_etf_rows(c: i64, dim: i64, scale: f64, seed: u64) -> Tensor {
    let (u, _) = Tensor::linalg_qr(&uniform(dim, c, seed), "reduced");
    let centring = Tensor::eye(c, F64) - 1.0 / c as f64;
    centring.matmul(&u.tr()) * (scale * (c as f64 / (c as f64 - 1.0)).sqrt())
}
