//! Frozen non-ETF control maps (spec §7): what is left of an ETF map's effect once the ETF
//! structure is taken away, at the same shape, scale and seed.

use crate::etf::{check_float, map_dims, random_frame};
use crate::EtfError;
use etf_rng::{RandomSource, SplitMix64};
use tch::{Device, Kind, Tensor};

/// Which frozen control map stands in for an ETF map (spec §7). Both have the Frobenius norm
/// of the ETF map of the same shape and scale, `‖αM‖_F = |α| √K` with `K = min(out, in)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// I.i.d. `N(0, 1)` entries rescaled to the ETF map's norm.
    Gaussian,
    /// `α V` with `V` having `K` orthonormal columns (`out ≥ in`) or rows: an ETF map without
    /// its centring, of full rank `K` instead of `K − 1`.
    Orthogonal,
}

/// Builds an `out×in` control weight (spec §7). Seeds as for the `random` orientation: the
/// seeded Gaussian `p×K` draw behind a random ETF (`p = max(out, in)`), rescaled (`Gaussian`)
/// or orthonormalised by the same sign-fixed QR (`Orthogonal`, so it equals the random ETF's
/// frame `U`), transposed when `out < in`. Computed in f64 on the CPU from the seed alone.
///
/// ```
/// use simplex_etf::{control_map, Control};
/// use tch::{Device, Kind, Tensor};
/// let w = control_map(3, 8, 2.0, Control::Orthogonal, 5, Kind::Double, Device::Cpu)?;
/// // Three orthonormal rows, scaled by α = 2.
/// let gram = w.matmul(&w.tr());
/// assert!(gram.allclose(&(Tensor::eye(3, (Kind::Double, Device::Cpu)) * 4.0), 1e-12, 1e-12, false));
/// let g = control_map(3, 8, 2.0, Control::Gaussian, 5, Kind::Double, Device::Cpu)?;
/// assert!((g.square().sum(Kind::Double).double_value(&[]) - 4.0 * 3.0).abs() < 1e-12);
/// # Ok::<(), simplex_etf::EtfError>(())
/// ```
///
/// # Errors
/// `K < 2` (as for an ETF map of that shape), a non-float `kind`, a non-finite or zero `alpha`.
pub fn control_map(
    out_dim: i64,
    in_dim: i64,
    alpha: f64,
    control: Control,
    seed: u64,
    kind: Kind,
    device: Device,
) -> Result<Tensor, EtfError> {
    let (k, p) = map_dims(out_dim, in_dim, alpha)?;
    check_float(kind)?;
    let v = match control {
        Control::Orthogonal => random_frame(k, p, seed)?,
        Control::Gaussian => {
            let n = usize::try_from(p * k).map_err(|_| EtfError::DimensionTooSmall { k, p })?;
            let g =
                Tensor::from_slice(&SplitMix64::new(seed).standard_normals(n)).f_view([p, k])?;
            let norm = g
                .f_square()?
                .f_sum(Kind::Double)?
                .f_double_value(&[])?
                .sqrt();
            g.f_mul_scalar((k as f64).sqrt() / norm)?
        }
    };
    let w = if out_dim >= in_dim { v } else { v.f_tr()? };
    Ok(w.f_mul_scalar(alpha)?
        .f_to_kind(kind)?
        .f_contiguous()?
        .f_to_device(device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{etf_map, Orientation};

    const CPU64: (Kind, Device) = (Kind::Double, Device::Cpu);

    fn frobenius_sq(t: &Tensor) -> f64 {
        t.square().sum(Kind::Double).double_value(&[])
    }

    #[test]
    fn norms_equal_the_etf_maps() {
        for (out_dim, in_dim) in [(7, 7), (9, 4), (3, 11)] {
            let alpha = 1.7;
            let etf = etf_map(
                out_dim,
                in_dim,
                alpha,
                Orientation::Random { seed: 2 },
                Kind::Double,
                Device::Cpu,
            )
            .unwrap();
            for control in [Control::Gaussian, Control::Orthogonal] {
                let w = control_map(
                    out_dim,
                    in_dim,
                    alpha,
                    control,
                    2,
                    Kind::Double,
                    Device::Cpu,
                )
                .unwrap();
                assert_eq!(w.size(), [out_dim, in_dim]);
                let k = out_dim.min(in_dim) as f64;
                assert!(
                    (frobenius_sq(&w) - alpha * alpha * k).abs() < 1e-10,
                    "{control:?}"
                );
                assert!((frobenius_sq(&w) - frobenius_sq(&etf)).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn orthogonal_is_semi_orthogonal_of_full_rank_and_the_random_frame() {
        let (out_dim, in_dim, alpha) = (10, 4, 0.5);
        let w = control_map(
            out_dim,
            in_dim,
            alpha,
            Control::Orthogonal,
            9,
            Kind::Double,
            Device::Cpu,
        )
        .unwrap();
        let gram = w.tr().matmul(&w) / (alpha * alpha);
        assert!(gram.allclose(&Tensor::eye(in_dim, CPU64), 1e-12, 1e-12, false));
        assert_eq!(w.linalg_matrix_rank(1e-8, false).int64_value(&[]), in_dim);
        // Centring it gives the random ETF of the same seed: an ETF map without its centring.
        let etf = etf_map(
            out_dim,
            in_dim,
            alpha,
            Orientation::Random { seed: 9 },
            Kind::Double,
            Device::Cpu,
        )
        .unwrap();
        let k = in_dim as f64;
        let centred = (&w - w.mean_dim(1, true, Kind::Double)) * (k / (k - 1.0)).sqrt();
        assert!(centred.allclose(&etf, 1e-12, 1e-12, false));
        // Wide maps: orthonormal rows.
        let w = control_map(3, 8, 1.0, Control::Orthogonal, 9, Kind::Double, Device::Cpu).unwrap();
        assert!(w
            .matmul(&w.tr())
            .allclose(&Tensor::eye(3, CPU64), 1e-12, 1e-12, false));
    }

    #[test]
    fn gaussian_is_seeded_and_not_structured() {
        let a = control_map(6, 6, 1.0, Control::Gaussian, 4, Kind::Float, Device::Cpu).unwrap();
        tch::manual_seed(99); // libtorch's generator must not matter
        let b = control_map(6, 6, 1.0, Control::Gaussian, 4, Kind::Float, Device::Cpu).unwrap();
        let c = control_map(6, 6, 1.0, Control::Gaussian, 5, Kind::Float, Device::Cpu).unwrap();
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
        // Neither centred (rows summing to zero) nor orthogonal.
        let a = a.to_kind(Kind::Double);
        assert!(
            a.sum_dim_intlist(1, false, Kind::Double)
                .abs()
                .max()
                .double_value(&[])
                > 1e-3
        );
        let gram = a.tr().matmul(&a);
        assert!(!gram.allclose(&Tensor::eye(6, CPU64), 1e-3, 1e-3, false));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let r = control_map(1, 5, 1.0, Control::Gaussian, 0, Kind::Float, Device::Cpu);
        assert!(matches!(r, Err(EtfError::TooFewVectors { k: 1 })), "{r:?}");
        let r = control_map(4, 5, 0.0, Control::Orthogonal, 0, Kind::Float, Device::Cpu);
        assert!(matches!(r, Err(EtfError::InvalidAlpha(_))), "{r:?}");
        let r = control_map(4, 5, 1.0, Control::Orthogonal, 0, Kind::Int64, Device::Cpu);
        assert!(matches!(r, Err(EtfError::NotFloat(Kind::Int64))), "{r:?}");
    }
}
