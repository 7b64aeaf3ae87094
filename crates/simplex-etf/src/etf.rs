//! Simplex ETFs (spec §1) and ETF-constrained linear maps (spec §2).

use crate::EtfError;
use etf_rng::{RandomSource, SplitMix64};
use tch::{Device, Kind, Tensor};

/// How the orthonormal frame `U ∈ R^{p×K}` of a simplex ETF `M = sqrt(K/(K−1)) U (I − 11ᵀ/K)`
/// is chosen (spec §1).
#[derive(Debug, Clone, Copy)]
pub enum Orientation<'a> {
    /// `U` = the first `K` columns of `I_p` (Zhu et al. 2021). Applied without materialising the
    /// weight by [`canonical_etf_forward`].
    Canonical,
    /// `U` = Q of the reduced QR of a seeded Gaussian `p×K` matrix, signs fixed so `diag(R) > 0`.
    /// The Gaussian is drawn on the CPU in f64 from the seed alone, so the frame does not depend
    /// on libtorch's global RNG nor on the device.
    Random {
        /// The seed of the Gaussian draw.
        seed: u64,
    },
    /// The ETF nearest (Frobenius) to `Y ∈ R^{p×K}`: `U = A Bᵀ` for the thin SVD
    /// `Y (I − 11ᵀ/K) = A S Bᵀ` (orthogonal Procrustes).
    Nearest(&'a Tensor),
}

/// Builds a simplex ETF `M ∈ R^{p×K}` (spec §1): unit columns with pairwise cosine `−1/(K−1)`,
/// summing to zero, Gram `MᵀM = K/(K−1) (I − 11ᵀ/K)`.
///
/// The frame is computed in f64 on the CPU and the result then cast to `kind` and moved to
/// `device`, so a seed gives the same matrix on every device.
///
/// # Errors
/// `K < 2`, `p < K`, a non-float `kind`, or for `Nearest(Y)` a `Y` that is not `p×K` or holds
/// non-finite values.
pub fn simplex_etf(
    k: i64,
    p: i64,
    orientation: Orientation<'_>,
    kind: Kind,
    device: Device,
) -> Result<Tensor, EtfError> {
    check_dims(k, p)?;
    check_float(kind)?;
    let u = match orientation {
        Orientation::Canonical => Tensor::f_eye_m(p, k, (Kind::Double, Device::Cpu))?,
        Orientation::Random { seed } => random_frame(k, p, seed)?,
        Orientation::Nearest(y) => nearest_frame(k, p, y, "Y")?,
    };
    // U (I − 11ᵀ/K) = U − (U1)1ᵀ/K: subtract each row's mean.
    let scale = (k as f64 / (k - 1) as f64).sqrt();
    let m = u
        .f_sub(&u.f_mean_dim(1, true, Kind::Double)?)?
        .f_mul_scalar(scale)?;
    Ok(m.f_to_kind(kind)?.f_to_device(device)?)
}

/// Builds an ETF-constrained weight `W ∈ R^{out×in}` (spec §2): with `K = min(out, in)`,
/// `p = max(out, in)` and `M` a `p×K` simplex ETF, `W = α M` if `out ≥ in`, else `W = α Mᵀ`.
///
/// For `Nearest(Y)`, `Y` is the `out×in` weight whose nearest ETF map is wanted (the scale does
/// not change which ETF is nearest).
///
/// # Errors
/// As [`simplex_etf`], plus a non-finite or zero `alpha`.
pub fn etf_map(
    out_dim: i64,
    in_dim: i64,
    alpha: f64,
    orientation: Orientation<'_>,
    kind: Kind,
    device: Device,
) -> Result<Tensor, EtfError> {
    let (k, p) = map_dims(out_dim, in_dim, alpha)?;
    check_float(kind)?;
    let transposed;
    let orientation = match orientation {
        Orientation::Nearest(y) => {
            check_shape(y, &[out_dim, in_dim], "weight")?;
            if out_dim >= in_dim {
                Orientation::Nearest(y)
            } else {
                transposed = y.f_tr()?;
                Orientation::Nearest(&transposed)
            }
        }
        other => other,
    };
    let m = simplex_etf(k, p, orientation, Kind::Double, Device::Cpu)?;
    let w = if out_dim >= in_dim { m } else { m.f_tr()? };
    // Row-major, as `linear` expects its weight: the QR behind `simplex_etf` returns
    // column-major factors, and a fixed weight is laid out once rather than on every product.
    Ok(w.f_mul_scalar(alpha)?
        .f_to_kind(kind)?
        .f_contiguous()?
        .f_to_device(device)?)
}

/// Applies the canonical ETF map `W` of shape `out×in` (scale `alpha`) to `xs` of shape
/// `(…, in)` without materialising `W`: with `K = min(out, in)` and `c = α sqrt(K/(K−1))`,
/// `W x = c (x_{1..K} − mean(x_{1..K}))`, zero-padded to `out` coordinates when `out > in`.
///
/// Costs `O(batch · max(in, out))` forward and backward (autograd differentiates the
/// narrow / centre / pad), against `O(batch · in · out)` for the dense product.
///
/// # Errors
/// A last dimension other than `in_dim`, invalid dimensions or `alpha`.
pub fn canonical_etf_forward(
    xs: &Tensor,
    out_dim: i64,
    in_dim: i64,
    alpha: f64,
) -> Result<Tensor, EtfError> {
    let (k, _) = map_dims(out_dim, in_dim, alpha)?;
    let size = xs.size();
    if size.last() != Some(&in_dim) {
        let mut expected = size.clone();
        match expected.last_mut() {
            Some(last) => *last = in_dim,
            None => expected.push(in_dim),
        }
        return Err(EtfError::ShapeMismatch {
            what: "input".into(),
            expected,
            got: size,
        });
    }
    let c = alpha * (k as f64 / (k - 1) as f64).sqrt();
    let head = if in_dim > k {
        xs.f_narrow(-1, 0, k)?
    } else {
        xs.shallow_clone()
    };
    let centred = head
        .f_sub(&head.f_mean_dim(-1, true, None::<Kind>)?)?
        .f_mul_scalar(c)?;
    if out_dim > k {
        Ok(centred.f_constant_pad_nd([0, out_dim - k])?)
    } else {
        Ok(centred)
    }
}

/// Largest absolute deviation of `MᵀM` from `K/(K−1) (I − 11ᵀ/K)` for a `p×K` matrix `M`,
/// computed in f64. Zero (up to rounding) exactly for simplex ETFs: the Gram identity implies
/// unit columns, cosines `−1/(K−1)`, `M1 = 0` (since `‖M1‖² = 1ᵀMᵀM1 = 0`) and rank `K−1`.
///
/// # Errors
/// `M` not 2-D with `K ≥ 2` columns and `p ≥ K` rows.
pub fn etf_gram_deviation(m: &Tensor) -> Result<f64, EtfError> {
    let (p, k) = matrix_dims(m, "M")?;
    check_dims(k, p)?;
    let m = cpu_f64(m)?;
    let gram = m.f_tr()?.f_matmul(&m)?;
    let kf = k as f64;
    let target = Tensor::f_eye(k, (Kind::Double, Device::Cpu))?
        .f_sub_scalar(1.0 / kf)?
        .f_mul_scalar(kf / (kf - 1.0))?;
    Ok(gram.f_sub(&target)?.f_abs()?.f_max()?.f_double_value(&[])?)
}

/// [`etf_gram_deviation`] of an `out×in` weight read as an ETF map of scale `alpha` (spec §2):
/// `M = W/α` if `out ≥ in`, else `Wᵀ/α`.
///
/// # Errors
/// `W` not 2-D, invalid dimensions or `alpha`.
pub fn etf_map_deviation(w: &Tensor, alpha: f64) -> Result<f64, EtfError> {
    check_alpha(alpha)?;
    let (out_dim, in_dim) = matrix_dims(w, "W")?;
    let m = if out_dim >= in_dim {
        w.shallow_clone()
    } else {
        w.f_tr()?
    };
    etf_gram_deviation(&m.f_div_scalar(alpha)?)
}

pub(crate) fn random_frame(k: i64, p: i64, seed: u64) -> Result<Tensor, EtfError> {
    let n = usize::try_from(p * k).map_err(|_| EtfError::DimensionTooSmall { k, p })?;
    let g = Tensor::from_slice(&SplitMix64::new(seed).standard_normals(n)).f_view([p, k])?;
    let (q, r) = Tensor::f_linalg_qr(&g, "reduced")?;
    // Householder QR is unique only up to column signs; making diag(R) positive fixes them.
    let d = r.f_diagonal(0, 0, 1)?;
    let signs = d
        .f_ge(0.0)?
        .f_to_kind(Kind::Double)?
        .f_mul_scalar(2.0)?
        .f_sub_scalar(1.0)?;
    Ok(q.f_mul(&signs.f_unsqueeze(0)?)?)
}

fn nearest_frame(k: i64, p: i64, y: &Tensor, what: &str) -> Result<Tensor, EtfError> {
    check_shape(y, &[p, k], what)?;
    let y = cpu_f64(y)?;
    if y.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
        return Err(EtfError::NonFinite(what.into()));
    }
    // Orthogonal Procrustes: maximise tr(Uᵀ Y P) over UᵀU = I; with Y P = A S Bᵀ, U = A Bᵀ.
    let yp = y.f_sub(&y.f_mean_dim(1, true, Kind::Double)?)?;
    // `svd` rather than `linalg_svd`: the latter rejects the CPU in this libtorch build.
    let (a, _s, b) = yp.f_svd(true, true)?;
    Ok(a.f_matmul(&b.f_tr()?)?)
}

/// The two dimensions of a matrix argument.
fn matrix_dims(t: &Tensor, what: &str) -> Result<(i64, i64), EtfError> {
    match t.size().as_slice() {
        [rows, cols] => Ok((*rows, *cols)),
        other => Err(EtfError::ShapeMismatch {
            what: what.into(),
            expected: vec![-1, -1],
            got: other.to_vec(),
        }),
    }
}

/// A detached f64 copy on the CPU, where frames are computed (deterministic, full precision).
pub(crate) fn cpu_f64(t: &Tensor) -> Result<Tensor, EtfError> {
    Ok(t.f_detach()?
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Double)?)
}

pub(crate) fn check_dims(k: i64, p: i64) -> Result<(), EtfError> {
    if k < 2 {
        Err(EtfError::TooFewVectors { k })
    } else if p < k {
        Err(EtfError::DimensionTooSmall { k, p })
    } else {
        Ok(())
    }
}

/// `(K, p) = (min, max)` of an `out×in` map of scale `alpha`, checked: a finite non-zero
/// `alpha` and `2 ≤ K ≤ p`.
pub(crate) fn map_dims(out_dim: i64, in_dim: i64, alpha: f64) -> Result<(i64, i64), EtfError> {
    check_alpha(alpha)?;
    let (k, p) = (out_dim.min(in_dim), out_dim.max(in_dim));
    check_dims(k, p)?;
    Ok((k, p))
}

pub(crate) fn check_float(kind: Kind) -> Result<(), EtfError> {
    match kind {
        Kind::Half | Kind::Float | Kind::Double | Kind::BFloat16 => Ok(()),
        other => Err(EtfError::NotFloat(other)),
    }
}

pub(crate) fn check_alpha(alpha: f64) -> Result<(), EtfError> {
    if alpha.is_finite() && alpha != 0.0 {
        Ok(())
    } else {
        Err(EtfError::InvalidAlpha(alpha))
    }
}

fn check_shape(t: &Tensor, expected: &[i64], what: &str) -> Result<(), EtfError> {
    let got = t.size();
    if got == expected {
        Ok(())
    } else {
        Err(EtfError::ShapeMismatch {
            what: what.into(),
            expected: expected.to_vec(),
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU64: (Kind, Device) = (Kind::Double, Device::Cpu);

    #[test]
    fn invalid_dimensions_are_errors() {
        let c = Orientation::Canonical;
        assert!(matches!(
            simplex_etf(1, 4, c, Kind::Float, Device::Cpu),
            Err(EtfError::TooFewVectors { k: 1 })
        ));
        assert!(matches!(
            simplex_etf(5, 4, c, Kind::Float, Device::Cpu),
            Err(EtfError::DimensionTooSmall { k: 5, p: 4 })
        ));
        assert!(matches!(
            simplex_etf(3, 4, c, Kind::Int64, Device::Cpu),
            Err(EtfError::NotFloat(Kind::Int64))
        ));
        assert!(matches!(
            etf_map(1, 7, 1.0, c, Kind::Float, Device::Cpu),
            Err(EtfError::TooFewVectors { .. })
        ));
        assert!(matches!(
            etf_map(3, 7, f64::NAN, c, Kind::Float, Device::Cpu),
            Err(EtfError::InvalidAlpha(_))
        ));
    }

    #[test]
    fn nearest_rejects_bad_y() {
        let y = Tensor::zeros([4, 2], CPU64);
        let r = simplex_etf(3, 4, Orientation::Nearest(&y), Kind::Float, Device::Cpu);
        assert!(matches!(r, Err(EtfError::ShapeMismatch { .. })), "{r:?}");
        let y = Tensor::ones([4, 3], CPU64);
        let _ = y.get(1).get(2).fill_(f64::INFINITY);
        let r = simplex_etf(3, 4, Orientation::Nearest(&y), Kind::Float, Device::Cpu);
        assert!(matches!(r, Err(EtfError::NonFinite(_))), "{r:?}");
        let w = Tensor::ones([3, 4], CPU64);
        let r = etf_map(
            4,
            3,
            1.0,
            Orientation::Nearest(&w),
            Kind::Float,
            Device::Cpu,
        );
        assert!(matches!(r, Err(EtfError::ShapeMismatch { .. })), "{r:?}");
    }

    #[test]
    fn canonical_square_is_scaled_centring() {
        let h = 5;
        let w = etf_map(h, h, 2.0, Orientation::Canonical, Kind::Double, Device::Cpu).unwrap();
        let hf = h as f64;
        let expected = (Tensor::eye(h, CPU64) - 1.0 / hf) * (2.0 * (hf / (hf - 1.0)).sqrt());
        assert!(w.allclose(&expected, 1e-14, 1e-14, false));
    }

    #[test]
    fn wide_map_rows_are_the_etf_vectors() {
        // out < in: W = α Mᵀ, so the rows of W form the ETF.
        let w = etf_map(
            3,
            8,
            1.0,
            Orientation::Random { seed: 3 },
            Kind::Double,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(w.size(), [3, 8]);
        assert!(etf_gram_deviation(&w.tr()).unwrap() < 1e-12);
        let norms = w.square().sum_dim_intlist(1, false, Kind::Double);
        assert!(norms.allclose(&Tensor::ones([3], CPU64), 1e-12, 1e-12, false));
    }

    #[test]
    fn random_is_deterministic_and_seed_dependent() {
        let a = simplex_etf(
            4,
            9,
            Orientation::Random { seed: 11 },
            Kind::Float,
            Device::Cpu,
        )
        .unwrap();
        tch::manual_seed(123); // global RNG state must not matter
        let _ = Tensor::randn([10], CPU64);
        let b = simplex_etf(
            4,
            9,
            Orientation::Random { seed: 11 },
            Kind::Float,
            Device::Cpu,
        )
        .unwrap();
        let c = simplex_etf(
            4,
            9,
            Orientation::Random { seed: 12 },
            Kind::Float,
            Device::Cpu,
        )
        .unwrap();
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
    }

    #[test]
    fn canonical_forward_checks_input_width() {
        let x = Tensor::ones([2, 5], CPU64);
        let r = canonical_etf_forward(&x, 3, 4, 1.0);
        assert!(matches!(r, Err(EtfError::ShapeMismatch { .. })), "{r:?}");
    }

    #[test]
    fn deviation_detects_non_etf() {
        let m = Tensor::eye(3, CPU64);
        assert!(etf_gram_deviation(&m).unwrap() > 0.1);
        assert!(etf_map_deviation(&Tensor::ones([2, 2, 2], CPU64), 1.0).is_err());
    }
}
