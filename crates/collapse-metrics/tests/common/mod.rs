//! Helpers shared by the integration tests: synthetic layers as plain row-major `Vec<f64>`.
#![allow(dead_code)] // each test binary uses a subset

use collapse_metrics::{
    ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean, Matrix, MetricsError,
};
use serde_json::Value;

/// Both passes over `features`/`labels` in batches of `batch` rows.
pub fn streamed(
    features: Matrix<'_>,
    labels: &[i64],
    num_classes: usize,
    classifier: Option<Classifier<'_>>,
    global_mean: GlobalMean,
    batch: usize,
) -> Result<CollapseReport, MetricsError> {
    let batches = || {
        (0..features.rows()).step_by(batch).map(move |start| {
            let len = batch.min(features.rows() - start);
            (features.slice_rows(start, len), &labels[start..start + len])
        })
    };
    let mut pass1 = ClassMeans::new(num_classes, features.cols())?;
    for (f, y) in batches() {
        pass1.update(f, y)?;
    }
    let stats = pass1.finalize(global_mean)?;
    let mut pass2 = CollapseAccumulator::new(&stats, classifier)?;
    for (f, y) in batches() {
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

/// `rows × cols` deterministic pseudo-random values in `(-1, 1)`, row-major (SplitMix64).
pub fn uniform(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..rows * cols)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

/// A labelled layer: features `[N, d]` row-major and labels `[N]`.
#[derive(Clone, Debug)]
pub struct Layer {
    pub features: Vec<f64>,
    pub labels: Vec<i64>,
    pub dim: usize,
}

impl Layer {
    pub fn matrix(&self) -> Matrix<'_> {
        Matrix::new(&self.features, self.labels.len(), self.dim).expect("consistent layer")
    }

    /// The rows at `order`, in that order.
    pub fn select(&self, order: &[usize]) -> Layer {
        Layer {
            features: order
                .iter()
                .flat_map(|&i| self.features[i * self.dim..(i + 1) * self.dim].to_vec())
                .collect(),
            labels: order.iter().map(|&i| self.labels[i]).collect(),
            dim: self.dim,
        }
    }
}

/// Indices `0..n` ordered by `n` pseudo-random keys: a seeded permutation.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let keys = uniform(1, n, seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    order
}

/// Labelled clusters: `counts[c]` samples of class `c` around random centres, in a
/// seed-dependent order. Returns the layer and the centres `[C, d]`.
pub fn clusters(counts: &[usize], dim: usize, noise: f64, seed: u64) -> (Layer, Vec<f64>) {
    let centres: Vec<f64> = uniform(counts.len(), dim, seed)
        .iter()
        .map(|x| 2.0 * x)
        .collect();
    let sorted: Vec<i64> = counts
        .iter()
        .enumerate()
        .flat_map(|(k, &n)| std::iter::repeat_n(k as i64, n))
        .collect();
    let n = sorted.len();
    let labels: Vec<i64> = permutation(n, seed ^ 0xABCD)
        .into_iter()
        .map(|i| sorted[i])
        .collect();
    let noise_values = uniform(n, dim, seed ^ 0x1234);
    let features = labels
        .iter()
        .enumerate()
        .flat_map(|(i, &y)| {
            let y = y as usize;
            (0..dim).map(move |j| (y, i, j))
        })
        .map(|(y, i, j)| centres[y * dim + j] + noise * noise_values[i * dim + j])
        .collect();
    (
        Layer {
            features,
            labels,
            dim,
        },
        centres,
    )
}

/// `a` `[n, k]` times `b` `[k, m]`, row-major.
pub fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for l in 0..k {
            let x = a[i * k + l];
            for j in 0..m {
                out[i * m + j] += x * b[l * m + j];
            }
        }
    }
    out
}

/// The transpose of a row-major `[n, m]` matrix.
pub fn transpose(a: &[f64], n: usize, m: usize) -> Vec<f64> {
    (0..m)
        .flat_map(|j| (0..n).map(move |i| a[i * m + j]))
        .collect()
}

/// `n × k` with orthonormal columns (thin Q of a QR decomposition), row-major.
pub fn orthonormal_columns(n: usize, k: usize, seed: u64) -> Vec<f64> {
    let a = uniform(n, k, seed);
    let q = faer::MatRef::from_row_major_slice(&a, n, k)
        .qr()
        .compute_thin_Q();
    (0..n)
        .flat_map(|i| (0..k).map(move |j| (i, j)))
        .map(|(i, j)| q[(i, j)])
        .collect()
}

/// The `C` vectors of a simplex ETF in `R^d` as rows `[C, d]`, scaled by `scale`:
/// `sqrt(C/(C−1)) (I − 11ᵀ/C) Uᵀ` with `U` `d × C` orthonormal.
pub fn simplex_etf_rows(c: usize, dim: usize, scale: f64, seed: u64) -> Vec<f64> {
    let u = orthonormal_columns(dim, c, seed);
    let centring: Vec<f64> = (0..c * c)
        .map(|ij| f64::from(u8::from(ij / c == ij % c)) - 1.0 / c as f64)
        .collect();
    let factor = scale * (c as f64 / (c as f64 - 1.0)).sqrt();
    matmul(&centring, &transpose(&u, dim, c), c, c, dim)
        .into_iter()
        .map(|x| x * factor)
        .collect()
}
