//! Measures that depend only on a `C × C` Gram matrix (computed on the host, in f64).
//!
//! The Gram of the centred class means, `G = M̃ᵀM̃`, or of the classifier rows, `G = WWᵀ`,
//! holds every norm and angle NC2 needs, so no `d`-sized quantity reaches the host.

use serde::{Deserialize, Serialize};

/// The four NC2 measures of `C` vectors `v_1 … v_C` (centred class means or classifier rows).
///
/// Undefined values (a zero vector, all vectors zero) are `NaN`; JSON stores them as `null`.
/// Every `std` is the population standard deviation (divide by the count). Papyan et al.'s
/// code uses `torch.std` (Bessel, divide by count − 1): multiply `equinorm` by
/// `sqrt(C/(C−1))` and `equiangularity` by `sqrt(m/(m−1))`, `m = C(C−1)/2`, to compare.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nc2 {
    /// `std_c ‖v_c‖ / mean_c ‖v_c‖` (Papyan, Han & Donoho 2020, Fig. 2): 0 when all norms agree.
    #[serde(deserialize_with = "nan_null::deserialize")]
    pub equinorm: f64,
    /// `std_{c<c'} cos(v_c, v_c')` over the `C(C−1)/2` pairs (Papyan et al. 2020, Fig. 3):
    /// 0 when all angles agree.
    #[serde(deserialize_with = "nan_null::deserialize")]
    pub equiangularity: f64,
    /// `mean_{c≠c'} |cos(v_c, v_c') + 1/(C−1)|` (Papyan et al. 2020, Fig. 4): 0 when every
    /// cosine is the simplex value `−1/(C−1)`.
    #[serde(deserialize_with = "nan_null::deserialize")]
    pub max_angle: f64,
    /// `‖G/‖G‖_F − (I − 11ᵀ/C)/sqrt(C−1)‖_F` with `G` the Gram of the vectors (Zhu et al.
    /// 2021, "NC2"): 0 exactly for a simplex ETF (of any scale), at most 2.
    #[serde(deserialize_with = "nan_null::deserialize")]
    pub etf_error: f64,
}

impl Nc2 {
    /// The measures of the vectors whose row-major `C × C` Gram matrix is `gram`.
    pub(crate) fn from_gram(gram: &[f64], c: usize) -> Self {
        let norms: Vec<f64> = (0..c).map(|i| gram[i * c + i].sqrt()).collect();
        let (mean_norm, std_norm) = mean_std(&norms);
        let cosines: Vec<f64> = pairs(c)
            .map(|(i, j)| gram[i * c + j] / (norms[i] * norms[j]))
            .collect();
        let (_, std_cos) = mean_std(&cosines);
        let simplex_cos = -1.0 / (c as f64 - 1.0);
        let max_angle =
            cosines.iter().map(|x| (x - simplex_cos).abs()).sum::<f64>() / cosines.len() as f64;
        let gram_norm = gram.iter().map(|x| x * x).sum::<f64>().sqrt();
        let scale = (c as f64 - 1.0).sqrt();
        let etf_sq: f64 = (0..c)
            .flat_map(|i| (0..c).map(move |j| (i, j)))
            .map(|(i, j)| {
                let target = (f64::from(u8::from(i == j)) - 1.0 / c as f64) / scale;
                (gram[i * c + j] / gram_norm - target).powi(2)
            })
            .sum();
        Nc2 {
            equinorm: std_norm / mean_norm,
            equiangularity: std_cos,
            max_angle,
            etf_error: etf_sq.sqrt(),
        }
    }
}

/// CDNV (Galanti, György & Hutter 2022): `mean_{c<c'} (V_c + V_c') / (2 ‖μ_c − μ_c'‖²)`.
///
/// `gram` is the Gram of the (centred) class means; centring cancels in the differences.
pub(crate) fn cdnv(gram: &[f64], variances: &[f64], c: usize) -> f64 {
    let terms: Vec<f64> = pairs(c)
        .map(|(i, j)| {
            let dist_sq = gram[i * c + i] + gram[j * c + j] - 2.0 * gram[i * c + j];
            (variances[i] + variances[j]) / (2.0 * dist_sq)
        })
        .collect();
    terms.iter().sum::<f64>() / terms.len() as f64
}

/// The unordered pairs `i < j` of `0..c`.
fn pairs(c: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..c).flat_map(move |i| (i + 1..c).map(move |j| (i, j)))
}

/// Mean and population standard deviation.
fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// `serde_json` writes non-finite floats as `null`; read `null` back as `NaN`.
pub(crate) mod nan_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gram of the simplex ETF of `c` vectors: `c/(c−1) (I − 11ᵀ/c)`, times `scale`.
    fn simplex_gram(c: usize, scale: f64) -> Vec<f64> {
        let k = c as f64;
        (0..c * c)
            .map(|ij| {
                let delta = f64::from(u8::from(ij / c == ij % c));
                scale * k / (k - 1.0) * (delta - 1.0 / k)
            })
            .collect()
    }

    #[test]
    fn simplex_gram_has_zero_nc2() {
        for c in [2, 3, 7] {
            let m = Nc2::from_gram(&simplex_gram(c, 3.5), c);
            for v in [m.equinorm, m.equiangularity, m.max_angle, m.etf_error] {
                assert!(v.abs() < 1e-12, "c = {c}: {m:?}");
            }
        }
    }

    #[test]
    fn orthonormal_vectors_measured_by_hand() {
        // Identity Gram, C = 3: equal norms and angles, cos = 0 vs the simplex −1/2.
        let g = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let m = Nc2::from_gram(&g, 3);
        assert_eq!(m.equinorm, 0.0);
        assert_eq!(m.equiangularity, 0.0);
        assert!((m.max_angle - 0.5).abs() < 1e-15);
        // ‖I/√3 − (I − 11ᵀ/3)/√2‖_F computed entrywise.
        let (d, o) = (
            1.0 / 3f64.sqrt() - (2.0 / 3.0) / 2f64.sqrt(),
            (1.0 / 3.0) / 2f64.sqrt(),
        );
        assert!((m.etf_error - (3.0 * d * d + 6.0 * o * o).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn zero_vector_gives_nan_not_panic() {
        let g = [0.0, 0.0, 0.0, 1.0];
        let m = Nc2::from_gram(&g, 2);
        assert!(m.max_angle.is_nan());
        assert!(m.etf_error.is_finite());
    }

    #[test]
    fn cdnv_by_hand() {
        // Means at 0 and 2 on a line (Gram of centred means ±1), variances 1 and 3.
        let g = [1.0, -1.0, -1.0, 1.0];
        assert!((cdnv(&g, &[1.0, 3.0], 2) - 4.0 / 8.0).abs() < 1e-15);
    }
}
